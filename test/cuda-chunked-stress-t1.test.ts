/**
 * Gated DeltaNet's bf16 output at T = 1 under stress (run 20: 1.8e-2 off float64 with every phase A, 256, 384 or 512
 * threads). Why, on the CPU emulation (test/cuda-emu) against the float64 interpreter:
 *   - the reference is fed the same bf16-rounded inputs (checkChunkedEmu's rounding) and the output is not a tiny
 *     cancellation (|o| is the size of its terms exp(g) S0^T q', beta (q'.k) v, ...);
 *   - the loss is one rounding: phase A's loader copies q's bf16 row and scales it in place by the model's rsqrt(K)
 *     (chunked-core.ts, the scaleQ pass: s.Q = bf16(q rsqrt(K))), which at K = 40 (or 128) is not a power of two. At this
 *     case q is nearly orthogonal to k (sum |q_i k_i| / |q . k| = 27 and 935 at the two heads), so that rounding moves
 *     q . k, and the output term beta (q' . k) v, by 2e-2 relative. Fed q as the kernel sees it (bf16(q rsqrt K) / rsqrt K),
 *     the float64 reference agrees with the kernel to bf16 output level, and the float64 reference itself moves by > 1e-2
 *     from that one rounding alone. No exp of a large difference is involved (g = -2.0, -1.8 here).
 * So it is a real precision loss of the kernel's bf16 Q (as fla's q * scale cast to bf16), bound to ill-conditioned
 * q . k, not a bug of the decays or the inverse; the fix would apply rsqrt(K) in fp32 where Q is consumed (Aq's
 * epilogue, Q~ = Q exp(G_q)) instead of in place (not done: every model with a q scale's modules would change).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const r16 = (x: Float64Array) => x.map((y) => fromBf16(toBf16(y)));

describe.skipIf(!gpp)("Gated DeltaNet bf16 at T = 1 under stress (beta in (0, 2), log decays to -20): where the 1.8e-2 comes from", () => {
  it("the kernel's bf16(q rsqrt(K)) at ill-conditioned q . k: against a reference fed that q, <= 5e-3; the reference moves > 1e-2 by that rounding alone", () => {
    const m = loadProgram(["stdlib/gated_deltanet.seq"]).models[0];
    const variant = "chunked-split-bf16-k64-v32-a512-iw-r1";
    const b = buildEmu(m, [variant]);
    const K = 40, V = 40, H = 2;
    // the case of test/cuda-chunked-a512's stress check at T = 1 (seed 13 + T + K)
    const run = chunkInputs(m, { dims: smallDims(m, { K, V, H, P: V, N: K, J: 2 }), batch: 1, time: 1, seed: 13 + 1 + K, initialState: true, stress: true });
    for (const k of Object.keys(run.inputs)) run.inputs[k] = r16(run.inputs[k]);
    const ref = interpret(m, run);
    const got = runEmu(b, variant, run);
    expect(got.outputs.o.every(Number.isFinite)).toBe(true);
    expect(got.finalState.S.every(Number.isFinite)).toBe(true);
    const err = relativeError(got.outputs.o, ref.outputs.o);
    // the final state (no q) is at bf16 level; the output is off by more than 1e-2
    expect(relativeError(got.finalState.S, ref.finalState.S)).toBeLessThan(5e-3);
    expect(err).toBeGreaterThan(1e-2);
    // no exp of a large difference here, and q . k ill-conditioned at both heads
    const { q, k, g } = run.inputs;
    for (let h = 0; h < H; h++) {
      expect(g[h]).toBeGreaterThan(-3);
      let dot = 0, abs = 0;
      for (let i = 0; i < K; i++) (dot += q[h * K + i] * k[h * K + i]), (abs += Math.abs(q[h * K + i] * k[h * K + i]));
      expect(abs / Math.abs(dot)).toBeGreaterThan(20);
    }
    // q as the kernel's loader forms it: bf16(q rsqrt(K)), in the model's terms q = that / rsqrt(K)
    const sc = 1 / Math.sqrt(K);
    const qk = Float64Array.from(q, (x) => fromBf16(toBf16(x * sc)) / sc);
    const refQ = interpret(m, { ...run, inputs: { ...run.inputs, q: qk } });
    expect(relativeError(got.outputs.o, refQ.outputs.o)).toBeLessThan(5e-3);
    expect(relativeError(refQ.outputs.o, ref.outputs.o)).toBeGreaterThan(1e-2);
    // (the rest: the kernel's other bf16 operands, at the level of rounding the output itself)
    expect(relativeError(got.outputs.o, refQ.outputs.o)).toBeLessThan(3 * relativeError(r16(ref.outputs.o), ref.outputs.o));
  }, 600_000);
});
