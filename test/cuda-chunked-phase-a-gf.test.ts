/**
 * The overlapped phase A with the scalar decays' prefix folded beside the load's scale pass (`-iw-ios-gf`,
 * chunked-phase-a-ovl.ts seqc_chunk_gscalar_f; low rank with a scalar decay, 2-byte operands, on request only): warps
 * 0-1 each scan every token's decay and write their rows' G_r, G_w, G_q, so the two barriers around warp 0's scan go.
 * On the CPU emulation (test/cuda-emu): Gated DeltaNet at K = 128 (split's 512-thread 64-value walk) and Gated
 * DeltaProduct at two rows per token (K = 64): outputs and final states bitwise those after -iw-ios (the same sums in
 * the same order); against the float64 interpreter under beta in (0, 2) and log decays to -20, T = 1 and ragged T
 * (bf16, <= 1e-2). A fold that takes token tl - 1's prefix from the wrong half (tokens 33-63) fails. Plans: only under
 * `only`, only with a scalar decay. ptxas (sm_90): no spills, at most 64 registers at 512 threads.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import type { Model } from "../compiler/ir/types.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_PHASE_A_OVL_GF_SOURCE, CHUNK_PHASE_A_OVL_SOURCE } from "../compiler/backends/cuda/chunked-phase-a-ovl.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";
import { loadStdlib as load, lowered, variantUsage } from "./helpers/chunked-lowered.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-phase-a-gf.test: g++ is not installed, so the emulated runs are skipped");
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 31, exactForms: true, patch });
/** outputs and final states of `gf` bitwise those of `ref` on one bf16-rounded input set */
function sameBits(name: string, ref: string, gf: string, o: { K: number; V: number; T: number; B: number }) {
  const model = load(name);
  const b = buildEmu(model, [gf, ref]);
  const dims = smallDims(model, { K: o.K, V: o.V, H: 2, P: o.V, N: o.K, J: 2 });
  const run = chunkInputs(model, { dims, batch: o.B, time: o.T, seed: 37, initialState: true });
  for (const k of Object.keys(run.inputs)) run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
  const y = runEmu(b, ref, run);
  const x = runEmu(b, gf, run);
  for (const k of Object.keys(y.outputs)) expect(Array.from(x.outputs[k]), `${gf} ${k}`).toEqual(Array.from(y.outputs[k]));
  for (const k of Object.keys(y.finalState)) expect(Array.from(x.finalState[k]), `${gf} ${k}`).toEqual(Array.from(y.finalState[k]));
}

describe.skipIf(!gpp)("-iw-ios-gf (the decays' prefix beside the scale pass) on the CPU emulation", () => {
  it("gated_deltanet K = 128 (V = 100, T = 150, batch 2) and gated_deltaproduct at two rows per token (K = 64, V = 40, T = 77): bitwise -iw-ios's", () => {
    sameBits("gated_deltanet", "chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-gf-w512-r1", { K: 128, V: 100, T: 150, B: 2 });
    sameBits("gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-r2", "chunked-split-bf16-k64-v32-a512-iw-ios-gf-r2", { K: 64, V: 40, T: 77, B: 2 });
  }, 600_000);
  it("gated_deltanet K = 128 against float64 under beta in (0, 2) and log decays to -20: T = 150 (ragged) and T = 1 (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-ios-gf-w512-r1"], [{ T: 150, B: 1, K: 128, V: 72, stress: true, init: true }, { T: 1, B: 1, K: 128, V: 72, stress: true, init: true }], 1e-2);
  }, 600_000);
  // the check can fail: G_end of tokens 33-63 from the first half's lane
  it("a deliberately broken fold (token tl - 1's prefix always from the first 32 tokens) fails the same check", () => {
    const from = "const float ge = tl == 0 ? 0.f : p < 32 ? pa : pc;";
    const patch = (src: string) => src.replace(from, "const float ge = tl == 0 ? 0.f : pa;");
    expect(CHUNK_PHASE_A_OVL_GF_SOURCE.includes(from)).toBe(true);
    expect(() => check(load("gated_deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-ios-gf-w512-r1"], [{ T: 77, B: 1, K: 128, V: 72, init: true }], 1e-2, patch)).toThrow();
  }, 600_000);
});

describe("-gf in the plans", () => {
  it("only under `only`, only with low rank and a scalar decay, 2-byte operands; its entry and config say so", () => {
    // default plans: no -gf form, and the overlapped phase A's text as before (no seqc_chunk_gscalar_f), but in the modules
    // with auto's -nb-wc-w512 (H200 run 31), whose phase A (chunked-phase-a-nbar.ts) is built on the GF text
    for (const name of ["deltanet", "gated_deltanet", "gated_deltaproduct", "simple_gla", "rwkv7"]) {
      expect(lowered(name).forms.some((f) => f.variant.includes("-gf")), name).toBe(false);
      for (const m of Object.values(lowered(name).modules)) {
        expect(m.source.includes("GF = 1"), name).toBe(false);
        expect(m.source.includes("seqc_chunk_gscalar_f"), name).toBe(m.source.includes("seqc_chunk_phase_a_on<"));
      }
    }
    expect(CHUNK_PHASE_A_OVL_SOURCE.includes("seqc_chunk_gscalar_f")).toBe(false);
    for (const name of ["deltanet", "simple_gla", "rwkv7"]) expect(lowered(name, { only: (v) => v.includes("-gf") }).forms, name).toEqual([]);
    expect(lowered("gated_deltanet", { only: (v) => v.includes("-gf") && v.includes("-f32-") }).forms).toEqual([]);
    const v = "chunked-split-bf16-k128-v64-a512-iw-ios-gf-w512-r1";
    const one = lowered("gated_deltanet", { only: (x) => x === v });
    expect(one.forms.map((f) => f.variant)).toEqual([v]);
    const a = one.forms[0].steps[0] as { threads: number; entry: string };
    expect(a.threads).toBe(512);
    expect(a.entry).toMatch(/_iw_ios_gf$/);
    expect(one.modules.bf16.source).toMatch(/static constexpr int OVL = 2;\n  static constexpr int GF = 1;/);
    expect(one.modules.bf16.source).toContain(CHUNK_PHASE_A_OVL_GF_SOURCE);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-gf phase A for sm_90 (ptxas)", () => {
  it.each([
    ["gated_deltanet", "chunked-split-bf16-k128-v64-a512-iw-ios-gf-w512-r1", 64],
    ["gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-gf-r2", 64],
  ] as const)("%s %s: no spills, <= %d registers", (name, variant, regs) => {
    const u = variantUsage(nvcc!, name, variant);
    expect(u.spillStores + u.spillLoads, u.entry).toBe(0);
    expect(u.registers, u.entry).toBeLessThanOrEqual(regs);
  }, 300_000);
});
