/**
 * The chunked backward chain of a stabilised form (mLSTM: a max-plus stabiliser and a normaliser value column) on
 * WebGPU (lavapipe): chainGradients with every core model (forward, transposed forward, adjoint, transposed adjoint
 * at value extent V + 1) in the WGSL chunked kernels (split3, 32 row slots), the log-decay adjoint in the scan
 * form, prep, post, the stabiliser's prep and their backward models in the sequential form, the stabiliser's pass
 * and adjoint in the host glue (runtime/chunked-backward-stab.ts); fp32 within 1e-4 of the float64 reference
 * gradients (gradients(): the step backward) at T = 11 (given C, n, m) and T = 70 (three chunks, the last partial,
 * declared m = -inf); under the stress inputs (input gates up to +30, log forget gates down to -20, T = 300) within
 * 5e-4: the problem is ill-conditioned there (the readout divides by max(|n . q|, exp(-m))): the float64 gradients at
 * the fp32-rounded inputs are 1.1e-4 off, the step backward on WebGPU 1.6e-4, this chain 1.2e-4 (inputs, eps). The
 * initial m's gradient, within 1e-2 there: it is nearly 0 (norm 1.2e-4; raising m with C and n fixed scales C and n
 * alike, which the readout's ratio cancels but for eps and the exp(-m) branch), and its adjoint sums per-step
 * terms -<y, dy> whose value and normaliser parts cancel, each with fp32 error: 3.0e-3 relative (3.8e-7 absolute;
 * 8.2e-3 with prep's pseudo-input adjoints instead of the frame's), where the step backward on WebGPU gets 5.9e-7.
 * T = 1 and the glue's other edges are checked in float64 (grad-chunked-stabiliser.test.ts, the chain through the
 * interpreter). About 4 minutes per case on lavapipe (each case builds its ten models' pipelines).
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs, type RunResult } from "../compiler/ir/interpret.ts";
import type { Model } from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { type ChainForm } from "../compiler/grad/chunked-chain.ts";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { ModelRunner } from "../runtime/index.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));

/** Runs one model of the chain on WebGPU in the form asked for (the chunked form: one variant). */
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

describe("mlstm: the chunked backward chain on WebGPU vs the float64 reference gradients", () => {
  const model = loadProgram(["stdlib/mlstm.seq"]).models[0];
  const dims = smallDims(model, { K: 5, V: 3 });
  it.each([
    ["B=2, T=11, given (C, n, m)", 2, 11, true, false, 1e-4],
    ["B=2, T=70, declared (m = -inf)", 2, 70, false, false, 1e-4],
    ["B=1, T=300, stress (i up to +30, log forget gates to -20), given (C, n, m)", 1, 300, true, true, 5e-4],
  ])("%s: finite and within the bound", async (_label, B, T, init, stress, tol0) => {
    const run = chunkInputs(model, { dims, batch: B, time: T, seed: 7 + T, initialState: init, stress });
    const cot = randomCotangents(interpret(model, run), T);
    const want = await gradients(model, run, cot);
    const got = await gradients(model, run, cot, onWebgpu, { backward: "chunked" });
    for (const kind of ["inputs", "params", "initialState"] as const)
      for (const [k, v] of Object.entries(want[kind])) {
        const tol = stress && kind === "initialState" && k === "m" ? 1e-2 : tol0;
        expect(got[kind][k].every(Number.isFinite), `${kind} ${k} finite`).toBe(true);
        expect(relativeError(got[kind][k], v), `B=${B} T=${T}: ${kind} ${k}`).toBeLessThanOrEqual(tol);
      }
  }, 600_000);
});
