/**
 * Gated DeltaNet's bf16 output at T = 1 under stress (run 20: 1.8e-2 off float64 with every phase A, 256, 384 or 512
 * threads). The cause, on the CPU emulation (test/cuda-emu) against the float64 interpreter:
 *   - not the reference: it is fed the same bf16-rounded inputs (checkChunkedEmu's rounding), and the output is not a
 *     tiny cancellation (|o| is the size of its terms exp(g) S0^T q', beta (q'.k) v, ...); no exp of a large difference
 *     either (g = -2.0, -1.8 here);
 *   - a second rounding of q: phase A's loader copied q's bf16 row and scaled it in place by the model's rsqrt(K)
 *     (s.Q = bf16(q rsqrt(K)); rsqrt(40), like rsqrt(128), is not a power of two). Here q is nearly orthogonal to k
 *     (sum |q_i k_i| / |q . k| = 27 and 935 at the two heads), so that rounding moved q . k, and the output term
 *     beta (q' . k) v, by 2e-2: the float64 reference fed bf16(q rsqrt K) / rsqrt K moves 1.7e-2 by it alone.
 * Fixed (chunked-core.ts): with a scalar or no decay Q stays as copied (bf16(q), exact) and rsqrt(K) is applied in fp32
 * in Aq's epilogue and in Q~ = Q sq exp(G_q); 1.8e-2 -> 4.3e-3. Putting the old in-place scaling back fails the check.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { CHUNK_CORE_SOURCE } from "../compiler/backends/cuda/chunked-core.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const r16 = (x: Float64Array) => x.map((y) => fromBf16(toBf16(y)));

describe.skipIf(!gpp)("Gated DeltaNet bf16 at T = 1 under stress (beta in (0, 2), log decays to -20): where the 1.8e-2 comes from", () => {
  it("q . k ill-conditioned, rsqrt(K) not a power of two: the output within 6e-3 of float64 (Q not rounded twice); the old in-place bf16(q rsqrt K) fails it", () => {
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
    // the final state (no q) and the output at bf16 level (<= 1e-2 as issue 5 asks; the old kernel: 1.8e-2)
    expect(relativeError(got.finalState.S, ref.finalState.S)).toBeLessThan(5e-3);
    expect(relativeError(got.outputs.o, ref.outputs.o)).toBeLessThan(6e-3);
    // no exp of a large difference, and q . k ill-conditioned at both heads
    const { q, k, g } = run.inputs;
    for (let h = 0; h < H; h++) {
      expect(g[h]).toBeGreaterThan(-3);
      let dot = 0, abs = 0;
      for (let i = 0; i < K; i++) (dot += q[h * K + i] * k[h * K + i]), (abs += Math.abs(q[h * K + i] * k[h * K + i]));
      expect(abs / Math.abs(dot)).toBeGreaterThan(20);
    }
    // q as the old loader formed it, bf16(q rsqrt(K)) (in the model's terms q = that / rsqrt(K)): that rounding alone
    // moves the float64 output by > 1e-2
    const sc = 1 / Math.sqrt(K);
    const qk = Float64Array.from(q, (x) => fromBf16(toBf16(x * sc)) / sc);
    const refQ = interpret(m, { ...run, inputs: { ...run.inputs, q: qk } });
    expect(relativeError(refQ.outputs.o, ref.outputs.o)).toBeGreaterThan(1e-2);
    // the old kernel (Q scaled in place, no sq in Aq's epilogue or Q~) fails the same check, and matches that reference
    const edits: [string, string][] = [
      ["if (Cfg::DECAY == 2 && sq != 1.f) { seqc_sld8(s.Q", "if (sq != 1.f) { seqc_sld8(s.Q"],
      ["a = vv[k] * G[SEQC_G_SQ + mq] * (", "a = vv[k] * ("],
      ["      const float sq = G[SEQC_G_SQ + f];\n      if (Cfg::DECAY) {", "      const float sq = 1.f;\n      if (Cfg::DECAY) {"],
    ];
    const old = (src: string) => edits.reduce((x, [from, to]) => { expect(x).toContain(from); return x.replace(from, to); }, src);
    old(CHUNK_CORE_SOURCE);
    const gotOld = runEmu(buildEmu(m, [variant], undefined, old), variant, run);
    expect(relativeError(gotOld.outputs.o, ref.outputs.o)).toBeGreaterThan(1e-2);
    expect(relativeError(gotOld.outputs.o, refQ.outputs.o)).toBeLessThan(5e-3);
  }, 600_000);
});
