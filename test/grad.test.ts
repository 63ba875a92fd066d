import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { planMemory } from "../runtime/train.ts";
import { randomRun, smallDims, randomCotangents } from "./helpers/random.ts";

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
    const w = randomCotangents(ref, 99);
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

describe("memory policies and param adjoints give the same gradients", () => {
  it.each(names)("%s: store, checkpoints every 2 and 3 steps, per-step param outputs", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 3, V: 2, D: 2, N: 2, H: 2, I: 2, P: 2 });
    const run = randomRun(model, { dims, batch: 2, time: 7, seed: 8, initialState: name !== "softmax_attention" });
    if (run.initialState!.m) run.initialState!.m = run.initialState!.m.map((x) => x - 1);
    const ref = interpret(model, run);
    const cot = randomCotangents(ref, 3);
    const want = await gradients(model, run, cot);
    for (const opts of [{ memory: { every: 2 } }, { memory: { every: 3 } }, { memory: "recompute" as const }, { paramAdjoints: "output" as const }]) {
      const got = await gradients(model, run, cot, undefined, opts);
      const label = JSON.stringify(opts);
      for (const k of Object.keys(run.inputs)) expect(relativeError(got.inputs[k], want.inputs[k]), `${label} input ${k}`).toBeLessThan(1e-12);
      for (const k of Object.keys(run.params ?? {})) expect(relativeError(got.params[k], want.params[k]), `${label} param ${k}`).toBeLessThan(1e-12);
      for (const k of Object.keys(want.initialState)) expect(relativeError(got.initialState[k], want.initialState[k]), `${label} initial ${k}`).toBeLessThan(1e-12);
    }
  });

  it("the cost model stores every step while it fits the budget, else checkpoints every ceil(sqrt(T)) steps", () => {
    expect(planMemory(4, 1000, 64, "auto", 2 ** 20)).toMatchObject({ policy: "store", every: 1000, bytes: 4 * 4 * 1000 * 64 });
    const big = planMemory(4, 10_000, 64, "auto", 2 ** 20);
    expect(big).toMatchObject({ policy: "recompute", every: 100, bytes: 4 * 4 * 64 * (100 + 100) });
    expect(big.why).toMatch(/over the budget/);
    expect(planMemory(4, 10, 64, { every: 4 })).toMatchObject({ policy: "recompute", every: 4 });
    expect(planMemory(4, 10_000, 64, "store", 1)).toMatchObject({ policy: "store" });
    expect(() => planMemory(1, 10, 1, { every: 0 })).toThrow(/every must be a positive integer/);
    expect(() => planMemory(1, 10, 1, "sometimes" as never)).toThrow(/memory must be 'auto', 'store', 'recompute' or \{ every: steps \}/);
  });
});
