import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { randomRun, rng, smallDims } from "./helpers/random.ts";

const names = readdirSync("stdlib").filter((f) => f.endsWith(".seq")).map((f) => f.replace(/\.seq$/, "")).sort();

/** Scalar loss: random weights on every output and final state. */
function lossOf(model: I.Model, run: RunInputs, w: { outputs: Record<string, Float64Array>; finalState: Record<string, Float64Array> }): number {
  const r = interpret(model, run);
  let L = 0;
  for (const [k, v] of Object.entries(r.outputs)) v.forEach((x, i) => (L += x * w.outputs[k][i]));
  for (const [k, v] of Object.entries(r.finalState)) v.forEach((x, i) => (L += x * w.finalState[k][i]));
  return L;
}

describe("reference gradients (backward model) agree with central finite differences", () => {
  it.each(names)("%s", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 3, V: 2, D: 2, N: 2, H: 2, I: 2, P: 2 });
    const B = 2, T = 3;
    // softmax_attention's state is a KV cache with a position counter: start it empty
    const run = randomRun(model, { dims, batch: B, time: T, seed: 5, initialState: name !== "softmax_attention" });
    // keep gates and decays in ranges where the models are smooth and well scaled
    if (run.initialState!.m) run.initialState!.m = run.initialState!.m.map((x) => x - 1);
    const ref = interpret(model, run);
    const r = rng(99);
    const w = {
      outputs: Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, v.map(() => r())])),
      finalState: Object.fromEntries(Object.entries(ref.finalState).map(([k, v]) => [k, v.map(() => r())])),
    };
    const g = await gradients(model, run, w);
    const h = 1e-6;
    const check = (what: string, arr: Float64Array, grad: Float64Array) => {
      const idx = [...Array(arr.length).keys()].filter((i) => i % Math.max(1, Math.floor(arr.length / 5)) === 0);
      const fd: number[] = [];
      const an: number[] = [];
      for (const i of idx) {
        const x = arr[i];
        arr[i] = x + h;
        const up = lossOf(model, run, w);
        arr[i] = x - h;
        const dn = lossOf(model, run, w);
        arr[i] = x;
        fd.push((up - dn) / (2 * h));
        an.push(grad[i]);
      }
      const num = Math.hypot(...fd.map((f, i) => f - an[i]));
      const den = Math.hypot(...fd) || 1;
      expect(num / den, `${name}: d/d ${what} fd=${fd.map((x) => x.toExponential(3))} an=${an.map((x) => x.toExponential(3))}`).toBeLessThan(1e-6);
    };
    for (const [k, v] of Object.entries(run.inputs)) check(`input ${k}`, v, g.inputs[k]);
    for (const [k, v] of Object.entries(run.params ?? {})) check(`param ${k}`, v, g.params[k]);
    for (const [k, v] of Object.entries(run.initialState ?? {})) if (model.tensors.some((t) => t.name === k)) check(`initial ${k}`, v, g.initialState[k]);
  });
});
