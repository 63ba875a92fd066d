/**
 * Float64 reference data for bench/torch/check.py: per model, random inputs/params/initial states,
 * random cotangents, and seqc's reference outputs, final states and gradients (the interpreter and
 * compiler/grad, which agree with finite differences to 1e-6: test/grad.test.ts).
 *   npx tsx bench/torch/make-reference.ts dist/torch/ref [model ...]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../../compiler/ir/interpret.ts";
import { gradients } from "../../compiler/grad/run.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { randomRun, rng, smallDims } from "../../test/helpers/random.ts";

export const CHECK_MODELS = ["deltanet", "gated_deltanet", "gla", "mamba", "lstm", "gru", "hgrn", "mamba2"];
/** Odd sizes; K = 16 so the chunked forms (tiles of 32 keys) run with partial tiles. */
/** SEQC_REF_DIMS (JSON) overrides sizes, e.g. '{"H":8,"I":8}': H = 3 keeps LSTM/GRU on the generic kernels, a
 *  multiple of 4 reaches the persistent matvec cell (float4 rows). */
const DIMS = { H: 3, K: 16, V: 7, D: 5, N: 4, P: 6, I: 5, ...(process.env.SEQC_REF_DIMS ? JSON.parse(process.env.SEQC_REF_DIMS) : {}) };

/** Inputs in the ranges the models are used in: log decays < 0, write strengths in (0, 1), unit keys for the delta rule. */
function shape(model: Model, run: RunInputs, dims: Record<string, number>): void {
  const ins = run.inputs;
  for (const g of ["gk", "g"]) if (ins[g] && model.name !== "Gru") ins[g] = ins[g].map((x) => -Math.abs(x) - 0.05);
  if (ins.beta) ins.beta = ins.beta.map((x) => x + 0.5);
  if (ins.dt) ins.dt = ins.dt.map((x) => Math.abs(x) + 0.05);
  if (run.params?.A) run.params.A = run.params.A.map((x) => -Math.abs(x) - 0.1);
  if (ins.k && (model.name === "DeltaNet" || model.name === "GatedDeltaNet")) {
    const K = dims.K;
    for (let r = 0; r < ins.k.length / K; r++) {
      const v = ins.k.subarray(r * K, (r + 1) * K);
      const n = Math.hypot(...v) || 1;
      for (let i = 0; i < K; i++) v[i] /= n;
    }
  }
}

const list = (a: Float64Array) => Array.from(a);
const map = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, list(v)]));

export async function reference(name: string, B: number, T: number, seed: number) {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const dims = smallDims(model, DIMS);
  const run = randomRun(model, { dims, batch: B, time: T, seed, initialState: true });
  shape(model, run, dims);
  const ref = interpret(model, run);
  const r = rng(seed + 1);
  const cot = {
    outputs: Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, v.map(() => r())])),
    finalState: Object.fromEntries(Object.entries(ref.finalState).map(([k, v]) => [k, v.map(() => r())])),
  };
  const g = await gradients(model, run, cot);
  return {
    model: model.name, name, dims, B, T, seed,
    inputs: map(run.inputs), params: map(run.params), initialState: map(run.initialState),
    cotOutputs: map(cot.outputs), cotFinal: map(cot.finalState),
    outputs: map(ref.outputs), finalState: map(ref.finalState),
    grads: { inputs: map(g.inputs), params: map(g.params), initialState: map(g.initialState) },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? "dist/torch/ref";
  const names = process.argv.slice(3).length ? process.argv.slice(3) : CHECK_MODELS;
  mkdirSync(out, { recursive: true });
  for (const name of names) {
    const cases = [await reference(name, 2, 37, 11), await reference(name, 3, 1, 12)];
    writeFileSync(join(out, `${name}.json`), JSON.stringify(cases));
    console.log(`wrote ${join(out, `${name}.json`)}`);
  }
}
