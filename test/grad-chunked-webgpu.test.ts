/**
 * The chunked backward on WebGPU (lavapipe in CI; gradients(..., { backward: "chunked" })): the chain of compiler/grad/chunked-chain.ts with every
 * core model (forward, transposed forward, adjoint and transposed adjoint in reversed time) run by the WGSL
 * chunked kernels unchanged (the split3 variant with 32 row slots: chunks of 32 tokens), the log-decay
 * adjoint by the WGSL scan form, prep's and post's backward by the sequential form; fp32 <= 1e-4 against the
 * float64 reference gradients (gradients(), the whole model's adjoint recurrence) on inputs in the models'
 * ranges (log decays <= 0: the chunked kernels' factors exp(G_a - G_b) assume it), T < a chunk, T = 1,
 * T = 70 (three chunks, the last partial), from given and declared initial states; a numerics stress (log decays down
 * to -20 per step, T = 600) finite and within the same bound.
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs, type RunResult } from "../compiler/ir/interpret.ts";
import type { Model } from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { chainModels, chainRefusal, type ChainForm } from "../compiler/grad/chunked-chain.ts";
import { wgslChunkedEligible } from "../compiler/backends/wgsl/chunked-plan.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { ModelRunner } from "../runtime/index.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));

/** Runs one model of the chain on WebGPU in the form asked for (the chunked form: one variant, as auto picks at most shapes). */
async function onWebgpu(m: Model, run: RunInputs, form: ChainForm = "sequential"): Promise<RunResult> {
  const plan = compileWgsl(m, form === "chunked" ? [] : [form]);
  if (form === "chunked") addChunked(plan, m, (v) => v.startsWith("chunked-s3-slots32-k32-v32-"));
  const runner = await ModelRunner.create(plan, { dims: run.dims, params: f32(run.params), tune: false, form });
  try {
    const r = await runner.forward(f32(run.inputs), { batch: run.batch, initialState: f32(run.initialState), returnFinalState: true });
    expect(r.form.startsWith(form), `${m.name} ran in ${r.form}`).toBe(true);
    return { outputs: f64(r.outputs), finalState: f64(r.finalState) };
  } finally {
    runner.dispose();
  }
}

const COVERED = ["linear_attention", "retnet", "simple_gla", "mamba2", "gla"];

describe("chunked backward on WebGPU (chain of chunked cores) vs the float64 reference gradients", () => {
  it.each(COVERED)("%s", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 5, V: 3, P: 3, N: 4 });
    for (const [B, T, init] of [[2, 11, true], [1, 1, true], [2, 70, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 7 + T, initialState: init });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T);
      const want = await gradients(model, run, cot);
      const got = await gradients(model, run, cot, onWebgpu, { backward: "chunked" });
      for (const kind of ["inputs", "params", "initialState"] as const)
        for (const [k, v] of Object.entries(want[kind])) expect(relativeError(got[kind][k], v), `B=${B} T=${T}: ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
    }
  }, 600_000);

  it.each(["simple_gla", "gla"])("%s: stress (log decays down to -20 per step, T = 600 over 19 chunks): finite and <= 1e-4", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 5, V: 3 });
    const run = chunkInputs(model, { dims, batch: 1, time: 600, seed: 17, initialState: true, stress: true });
    const ref = interpret(model, run);
    const cot = randomCotangents(ref, 3);
    const want = await gradients(model, run, cot);
    const got = await gradients(model, run, cot, onWebgpu, { backward: "chunked" });
    for (const kind of ["inputs", "params", "initialState"] as const)
      for (const [k, v] of Object.entries(want[kind])) {
        expect(got[kind][k].every(Number.isFinite), `${kind} ${k} finite`).toBe(true);
        expect(relativeError(got[kind][k], v), `${kind} ${k}`).toBeLessThanOrEqual(1e-4);
      }
  }, 600_000);

  it("every chain model of a covered form has the matrix form (GLA's transposed models: one head per key row)", () => {
    for (const name of COVERED) {
      const mf = matrixForm(loadProgram([`stdlib/${name}.seq`]).models[0]);
      if (!mf.ok) throw new Error(mf.reason);
      expect(chainRefusal(mf.form)).toBe(undefined);
      const ms = chainModels(mf.form);
      for (const m of [ms.core, ms.coreT, ms.adjoint, ms.adjointT]) {
        const el = wgslChunkedEligible(m);
        expect(el.ok ? "" : el.why, `${name}: ${m.name}`).toBe("");
        if (el.ok) expect(el.rows.decay, `${name}: ${m.name}`).toBe(name === "linear_attention" ? "none" : m.name.endsWith("T") || name !== "gla" ? "scalar" : "key");
      }
    }
  });
});
