/**
 * The token-aligned delta backward's adjoint kernel (compiler/backends/cuda/delta-adjoint.ts) on the CPU emulation of
 * CUDA (test/cuda-emu/emu.h) against the float64 formulas of test/helpers/delta-ref.ts's `adjoint` (docs/delta-backward.md):
 * dq, du, dw, dk, dv and (scalar decay) dld from random q, u, w, k, v, dy (float32, or bf16 words with the reference
 * taking the rounded values), R, S0, SF, LE, DR (float32; the formulas are what is checked, so any values). B = 2, H = 3,
 * T = 100 (a ragged second chunk: its R / DR rows past T hold random values the kernel must not let through) and T = 1,
 * log decays in [-0.3, 0] (the decays mix within a chunk) and in [-20, 0] a step (no NaN / Inf), each a multiple of
 * 2^-10 so that the kernel's fp32 prefix sums G are exact (the reference sums in float64). Within 1e-5 relative (L2).
 * Deliberately broken copies must fail: the r side's first scores (Luk) with f <= a; the y side's S0 term scaled by
 * exp(G[a - 1]); dld's suffix sum without its own slot; B^T x over the rows from one block late. nvcc -cubin for
 * sm_90 (where installed): no spills, at most 128 registers (two blocks of 256 threads an SM). The K = V = 128 entries
 * (the "wide" plan, DELTA_ADJ_K128_CONFIGS) the same way; their broken copies (dld without the y side's saved partials,
 * du's LE term from the v rows' slot, A k from the transposed k's view) must fail. The TF32 tensor-core
 * twins (delta-adjoint-mma.ts, bf16 inputs) with the TF32 rounding and the m16n8k8 fragments emulated
 * (test/cuda-emu/mma-tf32.h): within 1e-3 and above 1e-5; broken twins (a row block's second diagonal score tile
 * skipped, Ay k's sum a 16-row block short, Ar's mask f <= a) must fail; the K = V = 128 twins (DELTA_ADJ_K128_MMA_CONFIGS,
 * 16 warps) likewise, a broken one (a diagonal score tile skipped) failing.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_ADJ_CONFIGS, DELTA_ADJ_K128_CONFIGS, DELTA_ADJ_K128_MMA_CONFIGS, DELTA_ADJ_MMA_CONFIGS, DELTA_ADJ_PRELUDE, deltaAdjKernel, deltaAdjSource, type DeltaAdjKernel } from "../compiler/backends/cuda/delta-adjoint.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { adjData as data, adjEmu, adjErrors as errors, expectBrokenFail as expectBroken, fmt, worst, type AdjData } from "./helpers/delta-adjoint-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-adjoint-emu.test: g++ is not installed, so the emulated runs are skipped");

/** An emulator of the kernels (test/helpers/delta-adjoint-emu.ts adjEmu), its source patched where given. */
const buildEmu = (kernels: DeltaAdjKernel[], patch?: (src: string) => string) =>
  adjEmu(DELTA_ADJ_PRELUDE + kernels.map(deltaAdjSource).join(""), kernels, "delta-adjoint", kernels.some((k) => k.math), patch);

/** Every kernel of `ks` (one emulator build) at T = 100 (ragged) and T = 1, no decay or decays in [-0.3, 0] and [-20, 0]
 * a step: the worst output's error below `bound` (and above `floor`, the TF32 rounding showing). */
function checkAll(ks: DeltaAdjKernel[], seed: number, bound: number, floor = 0): void {
  const bin = buildEmu(ks);
  ks.forEach((k, i) => {
    const cases = k.decay === "none" ? [[100, 0], [1, 0]] : [[100, -0.3], [100, -20], [1, -5]];
    for (const [T, minLd] of cases) {
      const e = errors(bin, k, data(k, T, minLd, seed + T + i));
      expect(worst(e), `${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(bound);
      if (floor) expect(worst(e), `${k.entry} T=${T}: the rounding shows`).toBeGreaterThan(floor);
      console.log(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
    }
  });
}

/** Broken copies of k fail: each change (from, to, the output, the nth occurrence) above 1e-2. */
const expectBrokenFail = (k: DeltaAdjKernel, d: AdjData, changes: [from: string, to: string, which: string, nth?: number][]) => expectBroken(buildEmu, k, d, changes);

describe.skipIf(!gpp)("the delta backward's adjoint kernel on the CPU emulation vs float64", () => {
  const kernels = DELTA_ADJ_CONFIGS.map(deltaAdjKernel);
  const wide = DELTA_ADJ_K128_CONFIGS.map(deltaAdjKernel);
  const twins = DELTA_ADJ_MMA_CONFIGS.map(deltaAdjKernel);
  const twins128 = DELTA_ADJ_K128_MMA_CONFIGS.map(deltaAdjKernel);

  it("the configurations: entries, threads, shared memory", () => {
    const rows = (ks: DeltaAdjKernel[]) => ks.map((k) => [k.entry, k.threads, k.sharedBytes]);
    const names = (K: number, suffix = "") => ["none_f32", "none_bf16", "scalar_f32", "scalar_bf16"].map((x) => x.replace("_", `_c64k${K}v${K}_`)).map((x) => `seqc_delta_adj_${x}${suffix}`);
    expect(rows(kernels)).toEqual(names(64).map((e) => [e, 256, 106016]));
    expect(rows(wide)).toEqual(names(128).map((e) => [e, 512, 216608]));
    expect(rows(twins)).toEqual(names(64, "_tf32").filter((e) => e.includes("bf16")).map((e) => [e, 256, 112160]));
    expect(rows(twins128)).toEqual(names(128, "_tf32").filter((e) => e.includes("bf16")).map((e) => [e, 512, 225824]));
  });

  it("every entry at C = K = V = 64: T = 100 (ragged) and T = 1, decays in [-0.3, 0] and [-20, 0] a step, within 1e-5", () => checkAll(kernels, 11, 1e-5), 900_000);

  it("deliberately broken copies fail", () => {
    expectBrokenFail(kernels[2], data(kernels[2], 100, -0.3, 5), [
      // the r side's first scores (Luk: w . k) with the diagonal
      ["f < a + 0u ?", "f <= a + 0u ?", "dv"],
      // the y side's S0 term scaled by exp(G[a - 1]) instead of exp(G[a])
      ["expf(sG[(4u * oti + p) + 1u])", "expf(sG[(4u * oti + p)])", "dq"],
      // dld's suffix sums without the slot's own terms
      ["s += sRow[t];", "", "dld"],
      // the r side's B^T x (Br^T w) over rows from one 4-row block late
      ["for (u32 m0 = 4u * oti; m0 < 64u; m0 += 4u)", "for (u32 m0 = 4u * oti + 4u; m0 < 64u; m0 += 4u)", "du", 5],
    ]);
  }, 600_000);

  it("K = V = 128 (the wide plan, 512 threads): every entry at T = 100 and T = 1, within 1e-5", () => checkAll(wide, 51, 1e-5), 900_000);

  it("broken K = 128 copies fail: dld without the saved y-side partials; du = r LE^T from the v rows' slot; dx += A k from the transposed k", () => {
    expectBrokenFail(wide[2], data(wide[2], 100, -0.3, 6), [
      [" + sPY[t * 32u + j]", "", "dld"],
      ["&sU[(4u * oti + p) * 132u + m0]", "&sGr[(4u * oti + p) * 132u + m0]", "du"],
      ["&sT1r[(m0 + q) * 132u + 4u * otj]", "&sT1[(m0 + q) * 68u + 4u * otj]", "dq"],
    ]);
  }, 600_000);

  it("the TF32 twins (bf16 inputs), K = V = 64 and 128: T = 100 and T = 1, decays in [-0.3, 0] and [-20, 0] a step, within 1e-3 (and above 1e-5: the rounding shows)", () => checkAll([...twins, ...twins128], 31, 1e-3, 1e-5), 900_000);

  it("broken twins fail: a row block's second diagonal score tile skipped (Pk; K = 64 and 128); Ay k's sum a block short; Ar's mask f <= a", () => {
    const k = twins[1], d = data(k, 100, -0.3, 9);
    // (the y side's first scores, Pk: dv)
    expectBrokenFail(k, d, [["if (4u * hf + j <= 2u * rb + 1u)", "if (4u * hf + j <= 2u * rb)", "dv"]]);
    expectBrokenFail(twins128[1], data(twins128[1], 100, -0.3, 9), [["if (2u * hf + j <= 2u * rb + 1u)", "if (2u * hf + j <= 2u * rb)", "dv"]]);
    expectBrokenFail(k, d, [
      ["for (u32 ks = 0u; ks < 2u * rb + 2u; ++ks)", "for (u32 ks = 0u; ks < 2u * rb + 1u; ++ks)", "dq"],
      // the r side's second scores (Ar = DR v^T) with the diagonal
      ["f < a + 0u ?", "f <= a + 0u ?", "dk", 1],
    ]);
  }, 600_000);

  it("configurations that do not fit are refused", () => {
    expect(() => deltaAdjKernel({ decay: "none", tin: "f32", C: 64, K: 64, V: 64, math: "tf32" })).toThrow(/bf16 inputs only/);
    expect(() => deltaAdjKernel({ decay: "none", tin: "f32", C: 64, K: 64, V: 32 })).toThrow(/must equal/);
    expect(() => deltaAdjKernel({ decay: "none", tin: "f32", C: 64, K: 10, V: 10 })).toThrow(/multiples of 4/);
    expect(() => deltaAdjKernel({ decay: "none", tin: "f32", C: 64, K: 256, V: 256 })).toThrow(/shared memory/);
    expect(() => deltaAdjKernel({ decay: "none", tin: "bf16", C: 32, K: 64, V: 64, math: "tf32" })).toThrow(/C = 64, K = V = 64 or 128/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles every entry (and the twins) for sm_90; ptxas: no spills, <= 128 registers", () => {
    const all = [...kernels, ...wide, ...twins, ...twins128];
    const src = DELTA_ADJ_PRELUDE + all.map(deltaAdjSource).join("");
    for (const [e, u] of ptxasUsage(findNvcc()!, src, all.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
      console.log(`${e}: ${u.registers} registers`);
    }
  }, 200_000);
});
