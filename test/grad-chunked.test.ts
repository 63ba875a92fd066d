import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import type * as I from "../compiler/ir/types.ts";
import { gradients, type Cotangents } from "../compiler/grad/run.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { runMatrixForm } from "../compiler/forms/matrix-run.ts";
import { chunkedBackwardRefusal, chunkedGradients } from "../compiler/grad/chunked.ts";
import { chainGradients, chainRefusal, modelChain } from "../compiler/grad/chunked-chain.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { randomRun, rng, smallDims, unit } from "./helpers/random.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const fromSource = (src: string) => {
  const p = loadProgram(["inline.seq"], new Map([["inline.seq", src]]));
  expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return p.models[0];
};

/** Random cotangents on every output and (unless `noFinal`) every final state. */
function cotangents(model: I.Model, run: RunInputs, seed: number, noFinal = false): Cotangents {
  const ref = interpret(model, run);
  const r = rng(seed);
  return {
    outputs: Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, v.map(() => r())])),
    finalState: noFinal ? {} : Object.fromEntries(Object.entries(ref.finalState).map(([k, v]) => [k, v.map(() => r())])),
  };
}

async function check(model: I.Model, run: RunInputs, cot: Cotangents, chunk: number, chain = false) {
  const ref = await gradients(model, run, cot);
  for (const schedule of ["sequential", "chunked", ...(chain ? ["chain"] as const : [])] as const) {
    const got = schedule === "chain" ? await chainGradients(model, run, cot) : chunkedGradients(model, run, cot, { chunk, schedule });
    for (const kind of ["inputs", "params", "initialState"] as const) {
      expect(Object.keys(got[kind]).sort(), `${schedule} ${kind}`).toEqual(Object.keys(ref[kind]).sort());
      for (const [k, v] of Object.entries(ref[kind])) {
        expect(v.some((x) => x !== 0), `reference ${kind} ${k} is not all zero`).toBe(true);
        expect(relativeError(got[kind][k], v), `${schedule} ${kind} ${k}`).toBeLessThan(1e-9);
      }
    }
  }
}

const COVERED = ["linear_attention", "retnet", "simple_gla", "gla", "mamba2"];

describe("chunked backward (float64) matches the reference gradients", () => {
  describe.each(COVERED)("%s", (name) => {
    const model = load(name);
    it.each([
      ["T=1, B=1, chunk 4", 1, 1, 4, true],
      ["T=11, B=2, chunk 4 (T not a multiple)", 11, 2, 4, true],
      ["T=37, B=2, chunk 16, declared initial state", 37, 2, 16, false],
      ["T=9, B=1, chunk 1", 9, 1, 1, true],
    ])("%s", async (_label, T, B, chunk, init) => {
      const dims = smallDims(model, { K: 5, V: 3, P: 3, N: 4 });
      const run = randomRun(model, { dims, batch: B, time: T, seed: 11 + T, initialState: init });
      await check(model, run, cotangents(model, run, 40 + T), chunk, true);
    });
    it("outputs' cotangents only (no final-state term)", async () => {
      const dims = smallDims(model, { K: 4, V: 5, P: 5, N: 4 });
      const run = randomRun(model, { dims, batch: 2, time: 13, seed: 3, initialState: true });
      await check(model, run, cotangents(model, run, 8, true), 5);
    });
  });

  // the delta-rule family: low-rank terms (the adjoint runs the UT path with u and w swapped)
  describe.each(["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"])("%s (low-rank)", (name) => {
    const model = load(name);
    /** beta in (0, 2) (eigenvalues of I - beta k k^T in [-1, 1] for unit k), log decays in (-decay, 0], keys L2-normalised per (token, head[, n]). */
    const shaped = (run: RunInputs, seed: number, decay: number): RunInputs => {
      const u = unit(seed);
      const inputs = { ...run.inputs };
      if (inputs.beta) inputs.beta = inputs.beta.map(() => 2 * u());
      for (const ld of ["g", "w"]) if (inputs[ld]) inputs[ld] = inputs[ld].map(() => -decay * u());
      const K = run.dims.K;
      if (inputs.k) {
        inputs.k = Float64Array.from(inputs.k);
        for (let o = 0; o < inputs.k.length; o += K) {
          const n = Math.hypot(...inputs.k.subarray(o, o + K));
          for (let i = 0; i < K; i++) inputs.k[o + i] /= n;
        }
      }
      return { ...run, inputs };
    };
    it.each([
      ["T=1, B=1, chunk 4", 1, 1, 4, true, 1],
      ["T=11, B=2, chunk 4 (T not a multiple)", 11, 2, 4, true, 1],
      ["T=37, B=2, chunk 16, declared initial state", 37, 2, 16, false, 3],
      ["T=9, B=1, chunk 1", 9, 1, 1, true, 1],
      ["T=40, B=1, chunk 8, log decays down to -20", 40, 1, 8, true, 20],
      ["T=300, B=1, chunk 32, log decays down to -2 (long: stays finite and exact)", 300, 1, 32, true, 2],
    ])("%s", async (_label, T, B, chunk, init, decay) => {
      const dims = smallDims(model, { K: 5, V: 3, J: 2 });
      const run = shaped(randomRun(model, { dims, batch: B, time: T, seed: 21 + T, initialState: init }), 7 + T, decay);
      await check(model, run, cotangents(model, run, 50 + T), chunk);
    });
    it("outputs' cotangents only (no final-state term), beta in (0, 2), unnormalised keys", async () => {
      const dims = smallDims(model, { K: 4, V: 5, J: 3 });
      const run = randomRun(model, { dims, batch: 2, time: 13, seed: 3, initialState: true });
      if (run.inputs.beta) run.inputs.beta = run.inputs.beta.map((x) => 1 + 2 * x);
      await check(model, run, cotangents(model, run, 8, true), 5);
    });
  });

  it("two low-rank pairs and two input pairs in one update, per-key decay, readouts before and after (tensor names like the form's own)", async () => {
    // y0, q0, ld1, u2 are also the names the matrix form would give its readout and prep outputs
    const model = fromSource(`model TwoRanks {
  dims H, K, V
  input q0[H,K], k[H,K], v[H,V], a[H,K], b[H,K], c[H,K], e[H,K], ld1[H,K], v2[H,V]
  param u2[K]
  state S[H,K,V] = 0
  output y0[h,j] = sum(i) c[h,i] * S[h,i,j]
  S[h,i,j] = exp(ld1[h,i]) * S[h,i,j] + b[h,i] * u2[i] * sum(m) a[h,m] * S[h,m,j] + tanh(e[h,i]) * sum(m) c[h,m] * S[h,m,j] + k[h,i] * v[h,j] + e[h,i] * v2[h,j]
  output o[h,j] = sum(i) q0[h,i] * S[h,i,j]
}`);
    const mf = matrixForm(model);
    expect(mf.ok && mf.form.steps[0].lowRank.length).toBe(2);
    for (const [T, chunk] of [[1, 3], [10, 3], [17, 4]]) {
      const run = randomRun(model, { dims: { H: 2, K: 4, V: 3 }, batch: 2, time: T, seed: 9 + T, initialState: true });
      if (mf.ok) for (const schedule of ["sequential", "chunked"] as const) {
        const ref = interpret(model, run), got = runMatrixForm(model, mf.form, run, { schedule, chunk });
        for (const k of ["y0", "o"]) expect(relativeError(got.outputs[k], ref.outputs[k]), `${schedule} forward ${k}`).toBeLessThan(1e-12);
      }
      await check(model, run, cotangents(model, run, 3 * T), chunk);
    }
  });

  it("a per-key decay micro-step, then a loop of delta steps, readouts before and after (low rank in a micro-step loop)", async () => {
    const model = fromSource(`model KeyLoop {
  dims H, K, V
  input q[H,K], k[H,2,K], v[H,2,V], beta[H,2], gk[H,K]
  state S[H,K,V] = 0
  output pre[h,j] = sum(i) q[h,i] * S[h,i,j]
  S[h,i,j] = exp(gk[h,i]) * S[h,i,j]
  for n in 2 {
    let u[h,j] = beta[h,n] * (v[h,n,j] - sum(i) S[h,i,j] * k[h,n,i])
    S[h,i,j] = S[h,i,j] + k[h,n,i] * u[h,j]
  }
  output o[h,j] = sum(i) k[h,0,i] * S[h,i,j] * v[h,1,j]
}`);
    const mf = matrixForm(model);
    expect(mf.ok && [mf.form.decay, mf.form.steps.length, !!mf.form.steps[1].loop, mf.form.steps[1].lowRank.length]).toEqual(["key", 2, true, 1]);
    for (const [T, chunk] of [[1, 2], [9, 4], [14, 1]]) {
      const run = randomRun(model, { dims: { H: 2, K: 4, V: 3 }, batch: 2, time: T, seed: 30 + T, initialState: true });
      run.inputs.beta = run.inputs.beta.map((x) => 1 + 2 * x);
      await check(model, run, cotangents(model, run, 4 * T), chunk);
    }
  });

  it("two input pairs, a readout before the update and one after, nonlinear prep and post", async () => {
    const model = fromSource(`model TwoPairs {
  dims H, K, V
  input q[H,K], k[H,K], v[H,V], k2[H,K], v2[H,V], gk[H,K]
  param w[V]
  state S[H,K,V] = 0
  output a[h,j] = sum(i) q[h,i] * S[h,i,j]
  S[h,i,j] = exp(gk[h,i]) * S[h,i,j] + k[h,i] * v[h,j] + tanh(k2[h,i]) * v2[h,j] * v2[h,j]
  output o[h,j] = sum(i) k[h,i] * S[h,i,j] * sigmoid(v[h,j]) + w[j] * v[h,j]
}`);
    const dims = { H: 2, K: 5, V: 3 };
    for (const [T, chunk] of [[1, 3], [10, 3], [16, 4]]) {
      const run = randomRun(model, { dims, batch: 2, time: T, seed: T, initialState: true });
      await check(model, run, cotangents(model, run, 2 * T), chunk);
    }
  });

  it("the chain of core models (chunked-chain.ts, interpreter): two pairs, two readouts, nonlinear post", async () => {
    const model = fromSource(`model TwoReadouts {
  dims H, K, V
  input q[H,K], q2[H,K], k[H,K], v[H,V], k2[H,K], v2[H,V], g[H]
  state S[H,K,V] = 0
  S[h,i,j] = exp(g[h]) * S[h,i,j] + k[h,i] * v[h,j] + k2[h,i] * tanh(v2[h,j])
  output o[h,j] = sum(i) q[h,i] * S[h,i,j]
  output o2[h,j] = sum(i) q2[h,i] * S[h,i,j] * v[h,j]
}`);
    const mf = matrixForm(model);
    expect(mf.ok && chainRefusal(mf.form)).toBe(undefined);
    for (const T of [1, 12]) {
      const run = randomRun(model, { dims: { H: 2, K: 4, V: 3 }, batch: 2, time: T, seed: T, initialState: true });
      await check(model, run, cotangents(model, run, 5 * T), 5, true);
    }
  });

  it("gradients(..., { backward: \"chunked\" }) runs the chain, and names why a model is not covered", async () => {
    const model = load("mamba2");
    const dims = smallDims(model, { P: 3, N: 4 });
    const run = randomRun(model, { dims, batch: 2, time: 6, seed: 4, initialState: true });
    const cot = cotangents(model, run, 6);
    const ref = await gradients(model, run, cot);
    const got = await gradients(model, run, cot, undefined, { backward: "chunked" });
    for (const kind of ["inputs", "params", "initialState"] as const)
      for (const [k, v] of Object.entries(ref[kind])) expect(relativeError(got[kind][k], v), `${kind} ${k}`).toBeLessThan(1e-9);
    const lstm = load("lstm");
    const lrun = randomRun(lstm, { dims: smallDims(lstm), batch: 1, time: 2, seed: 1 });
    await expect(gradients(lstm, lrun, {}, undefined, { backward: "chunked" })).rejects.toThrow(/no chunked form/);
  });

  it("the chain refuses readouts before the update, with the reason", async () => {
    const before = fromSource(`model Before {
  dims H, K, V
  input q[H,K], k[H,K], v[H,V]
  state S[H,K,V] = 0
  output a[h,j] = sum(i) q[h,i] * S[h,i,j]
  S[h,i,j] = S[h,i,j] + k[h,i] * v[h,j]
}`);
    const run = randomRun(before, { dims: { H: 1, K: 2, V: 2 }, batch: 1, time: 2, seed: 1 });
    await expect(chainGradients(before, run, {})).rejects.toThrow(/readouts after the update/);
  });

  it("micro-step loops: two scalar-decay updates per token", async () => {
    const model = fromSource(`model Twice {
  dims H, K, V
  input q[H,K], k[H,2,K], v[H,2,V], g[H,2]
  state S[H,K,V] = 0
  for n in 2 {
    S[h,i,j] = exp(g[h,n]) * S[h,i,j] + k[h,n,i] * v[h,n,j]
  }
  output o[h,j] = sum(i) q[h,i] * S[h,i,j]
}`);
    const form = matrixForm(model);
    expect(form.ok && form.form.steps[0].loop).toBeTruthy();
    const dims = { H: 2, K: 3, V: 4 };
    for (const [T, chunk] of [[1, 2], [7, 3]]) {
      const run = randomRun(model, { dims, batch: 2, time: T, seed: 5 + T, initialState: true });
      await check(model, run, cotangents(model, run, 3 * T), chunk);
    }
  });

  it("long sequences with strong decays stay finite and exact (T=300, log decays down to -8)", async () => {
    const model = load("gla");
    const dims = { H: 1, K: 4, V: 3 };
    const run = randomRun(model, { dims, batch: 1, time: 300, seed: 2, initialState: true });
    run.inputs.gk = run.inputs.gk.map((x) => -8 * (x + 0.5));
    await check(model, run, cotangents(model, run, 1), 32);
  });

  it.each(["deltanet", "gated_deltanet", "rwkv7"])("the transposed-core chain refuses %s (low-rank) with the reason; chainGradients runs the low-rank chain instead", async (name) => {
    const model = load(name);
    const mf = matrixForm(model);
    expect(mf.ok && chunkedBackwardRefusal(mf.form)).toBe(undefined);
    if (mf.ok) expect(chainRefusal(mf.form)).toMatch(/low-rank/);
    const run = randomRun(model, { dims: smallDims(model), batch: 1, time: 2, seed: 1 });
    expect(() => modelChain(model, run.dims)).toThrow(/low-rank/);
    const cot = cotangents(model, run, 5);
    const want = await gradients(model, run, cot), got = await chainGradients(model, run, cot);
    for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(got.inputs[k], v), k).toBeLessThan(1e-9);
  });

  it.each([
    ["mlstm", /stabili/],
  ])("%s is refused by the low-rank chain with a reason; the transposed-core chain (every embedder's) covers it (grad-chunked-stabiliser.test.ts)", (name, why) => {
    const model = load(name);
    const mf = matrixForm(model);
    expect(mf.ok).toBe(true);
    if (mf.ok) expect(chunkedBackwardRefusal(mf.form)).toMatch(why);
    expect(modelChain(model, smallDims(model)).names.stab).toBeDefined();
  });

  it("a model without a matrix form is refused with the form's reason", () => {
    const model = load("lstm");
    const run = randomRun(model, { dims: smallDims(model), batch: 1, time: 2, seed: 1 });
    expect(() => chunkedGradients(model, run, {})).toThrow(/no chunked form/);
  });
});
