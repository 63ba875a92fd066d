/**
 * The low-rank chunk transitions kernel (compiler/backends/cuda/lowrank-core.ts; runtime/torch/seqc_chunked_lowrank.py
 * LR_FUSED "cuda") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against the recurrence itself in float64:
 *   S_0 = [I | 0],  r_s = S_{s-1}^T w_s,  S_s = diag(exp(ld_s)) S_{s-1} + u_s r_s^T + k_s [0 | v_s]^T
 * (the reads r_s and S_C), on delta-rule inputs (unit keys, beta in (0, 2)) and generic small ones: no decay, scalar
 * and per-key log decays down to -20 per step, a chunk whose last steps are padding (zero vectors, zero log decay:
 * T not a multiple of the chunk), one step in use (T = 1), small configurations (C 16 / 32 / 48, K and V not multiples
 * of 8) and the shipped C = K = V = 64 ones; a deliberately broken copy (a diagonal block's substitution skips a row) must
 * fail; nvcc -ptx for sm_90 where installed: no spills, registers within two blocks an SM.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { LOWRANK_CORE_CONFIGS, lowRankCoreModule, type LowRankCoreConfig } from "../compiler/backends/cuda/lowrank-core.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { buildEmu, data, errors } from "./helpers/lowrank-core-emu.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-core-emu.test: g++ is not installed, so the emulated runs are skipped");

const SMALL: LowRankCoreConfig[] = [
  { decay: "none", C: 16, K: 8, V: 24 },
  { decay: "scalar", C: 32, K: 16, V: 12 },
  { decay: "key", C: 48, K: 12, V: 56 },
];

describe.skipIf(!gpp)("low-rank chunk transitions kernel on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations: delta-rule and generic inputs, log decays to -20, padded tails, one step in use", () => {
    const m = lowRankCoreModule(SMALL);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) {
      for (const [used, kind, minLd] of [[k.C, "delta", -1], [k.C - 3, "generic", -20], [1, "delta", -20], [k.C, "generic", -0.1]] as const) {
        const e = errors(k, bin, data(k, 3, used, kind, minLd, 11 + 7 * i + used));
        const label = `${k.entry} used=${used} ${kind} ld>=${minLd}`;
        expect(e.r, `${label}: reads`).toBeLessThan(1e-5);
        expect(e.end, `${label}: end state`).toBeLessThan(1e-5);
        expect(e.vSlot, `${label}: the values' slot untouched`).toBe(0);
      }
    }
  }, 200_000);

  it("the shipped configurations (C = 64, K = V = 64 and 128): no decay, scalar, per key; full and padded chunks", () => {
    const m = lowRankCoreModule();
    expect(m.kernels.map((k) => [k.decay, k.K, k.V])).toEqual([["none", 64, 64], ["none", 128, 128], ["scalar", 64, 64], ["scalar", 128, 128], ["key", 64, 64], ["key", 128, 128]]);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) {
      for (const [used, minLd] of [[64, -1], [37, -20]] as const) {
        const e = errors(k, bin, data(k, 2, used, "delta", minLd, 5 + i + used));
        expect(e.r, `${k.entry} used=${used}: reads`).toBeLessThan(1e-5);
        expect(e.end, `${k.entry} used=${used}: end state`).toBeLessThan(1e-5);
      }
    }
  }, 200_000);

  it("a deliberately broken copy (the diagonal blocks' substitution skips their second row: an off-by-one) fails", () => {
    const k0 = SMALL[1];
    const m = lowRankCoreModule([k0], (src) => {
      expect(src).toContain("for (u32 r = 1u; r < 16u; ++r)");
      return src.replace("for (u32 r = 1u; r < 16u; ++r)", "for (u32 r = 2u; r < 16u; ++r)");
    });
    const bin = buildEmu(m.source, m.kernels);
    const e = errors(m.kernels[0], bin, data(k0, 2, k0.C, "delta", -1, 3));
    expect(e.r).toBeGreaterThan(1e-2);
  }, 100_000);

  it("configurations that do not fit are refused", () => {
    expect(() => lowRankCoreModule([{ decay: "none", C: 64, K: 10, V: 20 }])).toThrow(/multiples of 4/);
    expect(() => lowRankCoreModule([{ decay: "none", C: 40, K: 8, V: 8 }])).toThrow(/one of 16, 32, 48, 64/);
    expect(() => lowRankCoreModule([{ decay: "key", C: 64, K: 192, V: 192 }])).toThrow(/shared memory/);
  });

  it("the shipped configurations fit two blocks an SM at K = 64 (shared memory <= 113 KiB each on sm_90's 228 KiB), one at K = 128 (<= 227 KiB)", () => {
    for (const k of lowRankCoreModule().kernels) expect(k.sharedBytes, k.entry).toBeLessThanOrEqual((k.K <= 64 ? 113 : 227) * 1024);
  });

  it.skipIf(!findNvcc())("nvcc -ptx compiles the shipped module for sm_90; ptxas: no spills, <= 128 registers (two 256-thread blocks an SM)", () => {
    const m = lowRankCoreModule(LOWRANK_CORE_CONFIGS);
    const { ptx } = nvccPtx(m.source, 90, findNvcc(), { lowPriority: true });
    for (const k of m.kernels) expect(ptx).toContain(`.entry ${k.entry}`);
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
    }
  }, 200_000);
});
