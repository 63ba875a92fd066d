/**
 * The backward of a scan is a reverse scan, derived rather than written: for a model whose states
 * are elementwise affine (X_t = a_t X_{t-1} + b_t), the adjoint recurrence of its backward model is
 * elementwise affine too (Xbar_{t-1} = a_t Xbar_t + g_t), so the analysis makes the backward model
 * scan-eligible and the WGSL scan form runs it (with param adjoints as per-step outputs, summed after). Gradients through that path (forward and backward
 * both in the scan form, on lavapipe in CI) agree with the float64 reference gradients.
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { analyzeModel } from "../compiler/analysis/index.ts";
import { buildBackward } from "../compiler/grad/backward.ts";
import { gradients, trainingBackward } from "../compiler/grad/run.ts";
import { runWebgpu } from "../compiler/backends/wgsl/run-backend.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { randomRun, smallDims, randomCotangents } from "./helpers/random.ts";

const DIMS = { K: 4, V: 3, D: 5, N: 3, H: 2, I: 3 };
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];

describe("the backward model of a scan-eligible model is scan-eligible", () => {
  it.each(["hgrn", "mamba", "mamba2", "gla", "simple_gla", "retnet", "linear_attention"])("%s", (name) => {
    const model = load(name);
    expect(analyzeModel(model).scanEligible).toBe(true);
    // param adjoints as per-step outputs (summed after the scan): accumulated in backward states they
    // would read the adjoint state, a coupling no elementwise scan takes
    const bw = buildBackward(model, smallDims(model, DIMS), { paramAdjoints: "output" });
    const a = analyzeModel(bw.model);
    expect(a.scanEligible, a.forms.map((f) => f.why).join("; ")).toBe(true);
  });

  it.each(["hgrn", "mamba", "mamba2", "gla", "simple_gla"])("%s: with param adjoints split out of the recurrence (the default), the core and every param pass are scan-eligible too", (name) => {
    const model = load(name);
    const bw = trainingBackward(model, smallDims(model, DIMS));
    const a = analyzeModel(bw.model);
    expect(a.scanEligible, a.forms.map((f) => f.why).join("; ")).toBe(true);
    for (const p of bw.passes) expect(analyzeModel(p.model).scanEligible, p.param).toBe(true);
  });

  it("and a dense one's is not (lstm: the adjoint goes through the transposed Jacobian)", () => {
    const model = load("lstm");
    expect(analyzeModel(buildBackward(model, smallDims(model, DIMS)).model).scanEligible).toBe(false);
  });
});

describe("gradients with forward and backward in the WGSL scan form vs the float64 reference", () => {
  it.each([
    ["hgrn", 2, 9],
    ["mamba", 1, 7],
    ["simple_gla", 2, 300],
    ["mamba2", 1, 1],
  ] as const)("%s B=%i T=%i", async (name, B, T) => {
    const model = load(name);
    const dims = smallDims(model, DIMS);
    const run = randomRun(model, { dims, batch: B, time: T, seed: 33, initialState: true });
    // log decays <= 0 (gates of the gated models), so long sequences stay finite
    for (const gate of ["g", "gk"]) if (run.inputs[gate]) run.inputs[gate] = run.inputs[gate].map((x) => -Math.abs(x) - 0.05);
    const ref = interpret(model, run);
    const cot = randomCotangents(ref, 8);
    const want = await gradients(model, run, cot);
    // per-step param outputs, and the default: param adjoints in passes after the core (each in the scan form too)
    for (const paramAdjoints of ["output", "state"] as const) {
      const got = await gradients(model, run, cot, (m, x) => runWebgpu(m, x, "scan"), { paramAdjoints });
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(got.inputs[k], v), `${paramAdjoints}: d/d input ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.params)) if (run.params?.[k]) expect(relativeError(got.params[k], v), `${paramAdjoints}: d/d param ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(got.initialState[k], v), `${paramAdjoints}: d/d initial ${k}`).toBeLessThanOrEqual(1e-4);
    }
  }, 300_000); // two lavapipe pipelines per model; slow on a loaded machine
});
