/**
 * The low-rank chain (compiler/grad/chunked-chain-lowrank.ts, runtime/chunked-backward-lowrank.ts) on the
 * float64 interpreter vs the reference gradients (gradients(): the whole model's adjoint recurrence): the
 * delta-rule family (beta in (0, 2), unit and unnormalised keys), T = 1, T and the micro-step timeline not
 * multiples of the folded chunk, chunk 1, given and declared initial states, outputs' cotangents only,
 * two low-rank and two input pairs in one update with readouts before and after, low rank in a micro-step
 * loop. The generated models have the forms the chain runs them in (chunked-eligible on WGSL and CUDA).
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import type * as I from "../compiler/ir/types.ts";
import { gradients, type Cotangents } from "../compiler/grad/run.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { lowRankChain, lowRankChainGradients, lowRankModels, lrShape, LR_FORMS } from "../compiler/grad/chunked-chain-lowrank.ts";
import { wgslChunkedEligible } from "../compiler/backends/wgsl/chunked-plan.ts";
import { chunkedEligible } from "../compiler/backends/cuda/chunked-plan.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { randomRun, rng, smallDims, unit } from "./helpers/random.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const fromSource = (src: string) => {
  const p = loadProgram(["inline.seq"], new Map([["inline.seq", src]]));
  expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return p.models[0];
};

function cotangents(model: I.Model, run: RunInputs, seed: number, noFinal = false): Cotangents {
  const ref = interpret(model, run);
  const r = rng(seed);
  return {
    outputs: Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, v.map(() => r())])),
    finalState: noFinal ? {} : Object.fromEntries(Object.entries(ref.finalState).map(([k, v]) => [k, v.map(() => r())])),
  };
}

async function check(model: I.Model, run: RunInputs, cot: Cotangents, chunk: number) {
  const ref = await gradients(model, run, cot);
  const got = await lowRankChainGradients(model, run, cot, undefined, { chunk });
  for (const kind of ["inputs", "params", "initialState"] as const) {
    expect(Object.keys(got[kind]).sort(), kind).toEqual(Object.keys(ref[kind]).sort());
    for (const [k, v] of Object.entries(ref[kind])) {
      expect(v.some((x) => x !== 0), `reference ${kind} ${k} is not all zero`).toBe(true);
      expect(relativeError(got[kind][k], v), `${kind} ${k}`).toBeLessThan(1e-9);
    }
  }
}

/** beta in (0, 2), log decays in (-decay, 0], keys L2-normalised per (token, head[, n]). */
function shaped(run: RunInputs, seed: number, decay: number): RunInputs {
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
}

describe("low-rank chunked backward chain (float64) matches the reference gradients", () => {
  describe.each(["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"])("%s", (name) => {
    const model = load(name);
    it.each([
      ["T=1, B=1, chunk 4", 1, 1, 4, true, 1],
      ["T=11, B=2, chunk 4", 11, 2, 4, true, 1],
      ["T=37, B=2, chunk 16, declared initial state", 37, 2, 16, false, 3],
      ["T=9, B=1, chunk 1", 9, 1, 1, true, 1],
      ["T=40, B=1, chunk 64 (one chunk), log decays down to -20", 40, 1, 64, true, 20],
    ])("%s", async (_label, T, B, chunk, init, decay) => {
      const dims = smallDims(model, { K: 5, V: 3, J: 2 });
      const run = shaped(randomRun(model, { dims, batch: B, time: T, seed: 21 + T, initialState: init }), 7 + T, decay);
      await check(model, run, cotangents(model, run, 50 + T), chunk);
    });
    it("outputs' cotangents only, beta in (1, 3), unnormalised keys, J = 3", async () => {
      const dims = smallDims(model, { K: 4, V: 5, J: 3 });
      const run = randomRun(model, { dims, batch: 2, time: 13, seed: 3, initialState: true });
      if (run.inputs.beta) run.inputs.beta = run.inputs.beta.map((x) => 1 + 2 * x);
      await check(model, run, cotangents(model, run, 8, true), 5);
    });
  });

  it("two low-rank pairs and two input pairs in one update, per-key decay, readouts before and after", async () => {
    const model = fromSource(`model TwoRanks {
  dims H, K, V
  input q0[H,K], k[H,K], v[H,V], a[H,K], b[H,K], c[H,K], e[H,K], ld1[H,K], v2[H,V]
  param u2[K]
  state S[H,K,V] = 0
  output y0[h,j] = sum(i) c[h,i] * S[h,i,j]
  S[h,i,j] = exp(ld1[h,i]) * S[h,i,j] + b[h,i] * u2[i] * sum(m) a[h,m] * S[h,m,j] + tanh(e[h,i]) * sum(m) c[h,m] * S[h,m,j] + k[h,i] * v[h,j] + e[h,i] * v2[h,j]
  output o[h,j] = sum(i) q0[h,i] * S[h,i,j]
}`);
    for (const [T, chunk] of [[1, 3], [10, 3], [17, 4]]) {
      const run = randomRun(model, { dims: { H: 2, K: 4, V: 3 }, batch: 2, time: T, seed: 9 + T, initialState: true });
      await check(model, run, cotangents(model, run, 3 * T), chunk);
    }
  });

  it("a per-key decay micro-step, then a loop of delta steps, readouts before and after", async () => {
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
    for (const [T, chunk] of [[1, 2], [9, 4], [14, 1]]) {
      const run = randomRun(model, { dims: { H: 2, K: 4, V: 3 }, batch: 2, time: T, seed: 30 + T, initialState: true });
      run.inputs.beta = run.inputs.beta.map((x) => 1 + 2 * x);
      await check(model, run, cotangents(model, run, 4 * T), chunk);
    }
  });

  it("the generated models run in their forms: aug chunked-eligible on WGSL and CUDA", () => {
    for (const name of ["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"]) {
      const mf = matrixForm(load(name));
      if (!mf.ok) throw new Error(mf.reason);
      const ms = lowRankModels(lrShape(mf.form));
      for (const part of ["augF", "augA"] as const) {
        expect(LR_FORMS[part]).toBe("chunked");
        const w = wgslChunkedEligible(ms[part]);
        expect(w.ok ? "" : w.why, `${name} ${part} (WGSL)`).toBe("");
        const c = chunkedEligible(ms[part]);
        expect(c.ok ? "" : c.why, `${name} ${part} (CUDA)`).toBe("");
      }
    }
  });

  it("a model without low-rank terms or with a stabiliser is refused with the reason", () => {
    expect(() => lowRankChain(load("mlstm"), { H: 2, K: 3, V: 3 })).toThrow(/stabili/);
    expect(() => lowRankChain(load("lstm"), { H: 2, I: 3 })).toThrow(/no chunked form/);
  });
});
