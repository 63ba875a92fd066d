/**
 * Float64 reference data for bench/torch/check.py on the delta-rule family (the low-rank chunked backward's GPU
 * check): the same format as make-reference.ts, with inputs in the models' ranges (test/helpers/chunk-inputs.ts:
 * unit keys, beta in (0, 1), log decays < 0, RWKV-7's a = -kk, b = kk * iclr) and a reachable initial state.
 *   npx tsx bench/torch/lowrank-reference.ts <out>/ref [model ...]    (default deltanet gated_deltanet rwkv7)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret } from "../../compiler/ir/interpret.ts";
import { gradients } from "../../compiler/grad/run.ts";
import { randomCotangents, smallDims } from "../../test/helpers/random.ts";
import { chunkInputs } from "../../test/helpers/chunk-inputs.ts";

/** Odd sizes; K = 16 so the chunked forms run partial tiles, V = 7 (the aug runs' value axis K + V = 23). */
const DIMS = { H: 3, K: 16, V: 7 };
const map = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));

export async function lowRankReference(name: string, B: number, T: number, seed: number) {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const dims = smallDims(model, DIMS);
  const run = chunkInputs(model, { dims, batch: B, time: T, seed, initialState: true });
  const ref = interpret(model, run);
  const cot = randomCotangents(ref, seed + 1);
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
  const out = process.argv[2] ?? "dist/torch-lowrank/ref";
  const names = process.argv.slice(3).length ? process.argv.slice(3) : ["deltanet", "gated_deltanet", "rwkv7"];
  mkdirSync(out, { recursive: true });
  for (const name of names) {
    // T = 150: the chain's timeline (151 steps) spans three chunks of 64, the last one partial
    const cases = [await lowRankReference(name, 2, 37, 11), await lowRankReference(name, 3, 1, 12), await lowRankReference(name, 1, 150, 13)];
    writeFileSync(join(out, `${name}.json`), JSON.stringify(cases));
    console.log(`wrote ${join(out, `${name}.json`)}`);
  }
}
