/**
 * Inputs in the ranges the stdlib's matrix-state models are meant for (decays <= 0, write strengths in
 * (0, 1), unit keys for the delta rule, RWKV-7's a = -kk and b = kk * iclr), optionally stressed
 * (log decays down to -20 per step, saturated gates, beta in (0, 2)). Used by the chunked-form tests on
 * the CPU emulation and by the GPU check, so both see inputs the models are stable on.
 */
import type { RunInputs } from "../../compiler/ir/interpret.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { interpret } from "../../compiler/ir/interpret.ts";
import { rng, sizeOf } from "./random.ts";

export interface ChunkInputOptions {
  dims: Record<string, number>;
  batch: number;
  time: number;
  seed: number;
  /** A reachable initial state: the final state after a few steps on other inputs. */
  initialState?: boolean;
  /** log decays down to -20 per step, gates saturated, beta in (0, 2). */
  stress?: boolean;
}

export function chunkInputs(model: Model, o: ChunkInputOptions): RunInputs {
  const make = (time: number, seed: number): RunInputs => {
    const r = rng(seed);
    const p = () => r() + 0.5;
    const u = (lo: number, hi: number) => lo + (hi - lo) * p();
    const run: RunInputs = { dims: o.dims, batch: o.batch, time, inputs: {}, params: {} };
    const dims = o.dims;
    const last = (name: string) => {
      const t = model.tensors.find((x) => x.name === name)!;
      const e = t.shape[t.shape.length - 1];
      return e.kind === "lit" ? e.value : dims[e.name];
    };
    const logDecay = () => (o.stress ? (p() < 0.1 ? -20 : p() < 0.3 ? -u(0, 1e-6) : -u(0, 3)) : -u(0.01, 1));
    const name = model.name.toLowerCase();
    for (const t of model.tensors) {
      const n = sizeOf(t, dims);
      if (t.kind === "param" && t.shape.length) run.params![t.name] = Float64Array.from({ length: n }, () => (t.name === "A" ? -u(0.5, 2) : u(-1, 1)));
      if (t.kind !== "input") continue;
      const total = o.batch * time * n;
      let x: Float64Array;
      switch (t.name) {
        case "gk": case "g": case "w":
          x = Float64Array.from({ length: total }, logDecay);
          break;
        case "beta":
          x = Float64Array.from({ length: total }, () => (o.stress ? u(0.001, 1.999) : u(0.05, 1)));
          break;
        case "i": // mLSTM's input gate (log space, stabilised): large positive under stress
          x = Float64Array.from({ length: total }, () => (o.stress ? (p() < 0.2 ? u(10, 30) : u(-5, 5)) : u(-2, 2)));
          break;
        case "f": // mLSTM's forget gate: logsigmoid(f) down to -20 under stress
          x = Float64Array.from({ length: total }, () => (o.stress ? (p() < 0.1 ? -20 : u(-3, 8)) : u(-1, 4)));
          break;
        case "dt":
          x = Float64Array.from({ length: total }, () => (o.stress ? (p() < 0.1 ? 10 : u(0, 0.5)) : u(0.01, 0.3)));
          break;
        default:
          x = Float64Array.from({ length: total }, () => u(-1, 1));
      }
      run.inputs[t.name] = x;
    }
    const normalize = (x: Float64Array, len: number) => {
      for (let i = 0; i < x.length; i += len) {
        let s = 0;
        for (let j = 0; j < len; j++) s += x[i + j] ** 2;
        const f = 1 / Math.sqrt(s || 1);
        for (let j = 0; j < len; j++) x[i + j] *= f;
      }
    };
    if (name.includes("delta")) normalize(run.inputs.k, last("k"));
    if (name === "rwkv7") {
      // a = -kk, b = kk * iclr with kk a unit vector and iclr in (0, 1); k, r arbitrary
      const K = last("k");
      const kk = Float64Array.from(run.inputs.a);
      normalize(kk, K);
      for (let i = 0; i < kk.length; i++) {
        run.inputs.a[i] = -kk[i];
        run.inputs.b[i] = kk[i] * (o.stress ? (p() < 0.5 ? 1 : 0) : u(0, 1));
      }
    }
    return run;
  };
  const run = make(o.time, o.seed);
  if (o.initialState) {
    const warm = make(3, o.seed + 1000);
    warm.params = run.params;
    run.initialState = interpret(model, warm).finalState;
  }
  return run;
}
