/**
 * The low-rank chain (compiler/grad/chunked-chain-lowrank.ts) on WebGPU (lavapipe in CI): the chunk
 * transitions by the WGSL chunked kernels (the split3 variant with 32 row slots), the pass over chunks and the
 * per-chunk readouts by the sequential form (time folded into the batch), the log-decay adjoint by the scan
 * form, prep's and post's backward by the sequential form; fp32 <= 1e-4 against the float64 reference
 * gradients for the delta-rule family (beta in (0, 2), unit keys, log decays <= 0): T = 1, T not a multiple of
 * the folded chunk, several chunks, given and declared initial states, no final-state cotangent; a numerics
 * stress (log decays down to -20, T = 300) finite and within the same bound.
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs, type RunResult } from "../compiler/ir/interpret.ts";
import type { Model } from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { chainGradients, type ChainForm } from "../compiler/grad/chunked-chain.ts";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { ModelRunner } from "../runtime/index.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));

const forms: string[] = [];
async function onWebgpu(m: Model, run: RunInputs, form: ChainForm = "sequential"): Promise<RunResult> {
  const plan = compileWgsl(m, form === "chunked" ? [] : [form]);
  if (form === "chunked") addChunked(plan, m, (v) => v.startsWith("chunked-s3-slots32-k32-v32-"));
  const runner = await ModelRunner.create(plan, { dims: run.dims, params: f32(run.params), tune: false, form });
  try {
    const r = await runner.forward(f32(run.inputs), { batch: run.batch, initialState: f32(run.initialState), returnFinalState: true });
    expect(r.form.startsWith(form), `${m.name} ran in ${r.form}`).toBe(true);
    forms.push(`${m.name}:${form}`);
    if (process.env.LR_TRACE) console.log(m.name, form, run.batch, run.time);
    return { outputs: f64(r.outputs), finalState: f64(r.finalState) };
  } finally {
    runner.dispose();
  }
}

describe("low-rank chunked backward chain on WebGPU vs the float64 reference gradients", () => {
  it.each(["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"])("%s", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 5, V: 3, J: 2 });
    for (const [B, T, init, chunk, final] of [[2, 11, true, 8, true], [1, 1, true, 8, true], [2, 37, false, 16, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 7 + T, initialState: init });
      if (run.inputs.beta) run.inputs.beta = run.inputs.beta.map((x, i) => (i % 3 === 0 ? 1.5 + 0.4 * x : x + x));
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T);
      if (!final) cot.finalState = {};
      const want = await gradients(model, run, cot);
      forms.length = 0;
      const got = await chainGradients(model, run, cot, onWebgpu, { chunk });
      expect(forms.filter((f) => f.endsWith(":chunked")).sort()).toEqual(["LrAugA:chunked", "LrAugF:chunked"]);
      for (const kind of ["inputs", "params", "initialState"] as const)
        for (const [k, v] of Object.entries(want[kind])) {
          expect(v.some((x) => x !== 0), `reference ${kind} ${k} is not all zero`).toBe(true);
          expect(relativeError(got[kind][k], v), `B=${B} T=${T}: ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
        }
    }
  }, 600_000);

  it.each(["gated_deltanet", "rwkv7"])("%s: stress (log decays down to -20, beta in (0, 2), T = 300 over 64-micro-step chunks): finite and <= 1e-4", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 5, V: 3 });
    const run = chunkInputs(model, { dims, batch: 1, time: 300, seed: 17, initialState: true, stress: true });
    const ref = interpret(model, run);
    const cot = randomCotangents(ref, 3);
    const want = await gradients(model, run, cot);
    const got = await chainGradients(model, run, cot, onWebgpu, { chunk: 64 });
    for (const kind of ["inputs", "params", "initialState"] as const)
      for (const [k, v] of Object.entries(want[kind])) {
        expect(got[kind][k].every(Number.isFinite), `${kind} ${k} finite`).toBe(true);
        expect(relativeError(got[kind][k], v), `${kind} ${k}`).toBeLessThanOrEqual(1e-4);
      }
  }, 600_000);
});
