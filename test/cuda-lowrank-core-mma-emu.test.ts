/**
 * The low-rank chunk transitions kernel's tensor-core twins (compiler/backends/cuda/lowrank-core-mma.ts, math "tf32" /
 * "tf32x3"; runtime/torch/seqc_chunked_lowrank.py LR_CORE_MMA) on the CPU emulation of CUDA (test/cuda-emu/emu.h with
 * the TF32 rounding and the m16n8k8 fragments emulated, test/cuda-emu/mma-tf32.h) against the recurrence itself in
 * float64 (the fp32 kernel's test's data and reference, test/helpers/lowrank-core-emu.ts):
 *   S_0 = [I | 0],  r_s = S_{s-1}^T w_s,  S_s = exp(ld_s) S_{s-1} + u_s r_s^T + k_s [0 | v_s]^T
 * on delta-rule inputs (unit keys, beta in (0, 2)) and generic ones, no and a scalar log decay down to -20 a step, padded
 * tails, one step in use, small configurations (C 16 / 32 / 48, K != V) and the shipped C = 64, K = V = 64 / 128: tf32x3 within
 * 1e-5, tf32 within 2e-3 (and above 1e-6: the rounding is there); broken twins (the scores' diagonal kept, the right-hand
 * side's reduction one block short, the end state without its v term) must fail; nvcc for sm_90 where installed: no
 * spills, registers within two blocks an SM.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { LOWRANK_CORE_MMA_CONFIGS, lowRankCoreModule, type LowRankCoreConfig, type LowRankCoreKernel } from "../compiler/backends/cuda/lowrank-core.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { buildEmu, data, errors } from "./helpers/lowrank-core-emu.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-core-mma-emu.test: g++ is not installed, so the emulated runs are skipped");

const SMALL: LowRankCoreConfig[] = [
  { decay: "none", C: 16, K: 16, V: 24 },
  { decay: "scalar", C: 32, K: 32, V: 16 },
  { decay: "scalar", C: 48, K: 16, V: 40 },
];
const both = (cs: readonly LowRankCoreConfig[]) => cs.flatMap((c) => (["tf32", "tf32x3"] as const).map((math) => ({ ...c, math })));
const tol = (k: LowRankCoreKernel) => (k.math === "tf32x3" ? 1e-5 : 2e-3);

describe.skipIf(!gpp)("low-rank chunk transitions, tensor-core twins, on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations: delta-rule and generic inputs, log decays to -20, padded tails, one step in use", () => {
    const m = lowRankCoreModule(both(SMALL));
    const bin = buildEmu(m.source, m.kernels, true);
    for (const [i, k] of m.kernels.entries()) {
      for (const [used, kind, minLd] of [[k.C, "delta", -1], [k.C - 3, "generic", -20], [1, "delta", -20], [k.C, "generic", -0.1]] as const) {
        const e = errors(k, bin, data(k, 3, used, kind, minLd, 11 + 7 * i + used));
        const label = `${k.entry} used=${used} ${kind} ld>=${minLd}`;
        expect(e.r, `${label}: reads`).toBeLessThan(tol(k));
        expect(e.end, `${label}: end state`).toBeLessThan(tol(k));
        expect(e.vSlot, `${label}: the values' slot untouched`).toBe(0);
      }
    }
  }, 300_000);

  const worst: Record<string, number> = {};
  it("the shipped twins (C = 64, K = V = 64 and 128, no and a scalar decay, tf32) and their tf32x3 siblings: full and padded chunks", () => {
    expect(LOWRANK_CORE_MMA_CONFIGS.map((c) => [c.decay, c.C, c.K, c.V, c.math])).toEqual([["none", 64, 64, 64, "tf32"], ["none", 64, 128, 128, "tf32"], ["scalar", 64, 64, 64, "tf32"], ["scalar", 64, 128, 128, "tf32"]]);
    const m = lowRankCoreModule(both(LOWRANK_CORE_MMA_CONFIGS.map((c) => ({ ...c, math: undefined }))));
    const bin = buildEmu(m.source, m.kernels, true);
    for (const [i, k] of m.kernels.entries()) {
      for (const [used, minLd] of [[64, -1], [37, -20]] as const) {
        const e = errors(k, bin, data(k, 2, used, "delta", minLd, 5 + (i >> 1) + used));
        expect(e.r, `${k.entry} used=${used}: reads`).toBeLessThan(tol(k));
        expect(e.end, `${k.entry} used=${used}: end state`).toBeLessThan(tol(k));
        worst[k.entry] = Math.max(worst[k.entry] ?? 0, e.r, e.end);
      }
    }
    console.log("lowrank-core twins vs float64 (worst of reads, end state):", JSON.stringify(worst));
    // the TF32 rounding is really there (tf32 well above tf32x3)
    for (const k of m.kernels) if (k.math === "tf32") expect(worst[k.entry], k.entry).toBeGreaterThan(1e-6);
  }, 600_000);

  for (const [what, from, to] of [
    ["the scores' diagonal kept (c <= a)", "cc < a ?", "cc <= a ?"],
    ["the right-hand side's reduction one block short", "ks < 2u * (rb + 1u)", "ks < 2u * rb"],
    ["the end state without its v term", "if (nj >= 8u) {", "if (nj >= 16u) {"],
  ] as const) {
    it(`a broken twin fails: ${what}`, () => {
      const k0 = { decay: "scalar" as const, C: 64, K: 64, V: 64, math: "tf32" as const };
      const m = lowRankCoreModule([k0], (src) => {
        expect(src).toContain(from);
        return src.split(from).join(to);
      });
      const bin = buildEmu(m.source, m.kernels, true);
      const e = errors(m.kernels[0], bin, data(k0, 2, 64, "delta", -1, 3));
      expect(Math.max(e.r, e.end)).toBeGreaterThan(1e-2);
    }, 100_000);
  }

  it("configurations without a twin are refused (a per-key decay, K not a multiple of 16, too much shared memory)", () => {
    expect(() => lowRankCoreModule([{ decay: "key", C: 64, K: 64, V: 64, math: "tf32" }])).toThrow(/per-key/);
    expect(() => lowRankCoreModule([{ decay: "none", C: 64, K: 24, V: 64, math: "tf32" }])).toThrow(/multiple of 16/);
    expect(() => lowRankCoreModule([{ decay: "none", C: 64, K: 256, V: 256, math: "tf32" }])).toThrow(/shared memory/);
  });

  it("the shipped twins fit two blocks an SM (shared memory <= 113 KiB) at K = 64, one (<= 227 KiB) at K = 128", () => {
    for (const k of lowRankCoreModule(LOWRANK_CORE_MMA_CONFIGS).kernels) expect(k.sharedBytes, k.entry).toBeLessThanOrEqual((k.K === 64 ? 113 : 227) * 1024);
  });

  it.skipIf(!findNvcc())("ptxas for sm_90: the shipped twins (and tf32x3) compile with no spills, <= 128 registers (two 256-thread blocks an SM)", () => {
    const m = lowRankCoreModule(both(LOWRANK_CORE_MMA_CONFIGS.map((c) => ({ ...c, math: undefined }))));
    const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) {
      console.log(`ptxas ${e}: ${u.registers} registers, spills ${u.spillStores} / ${u.spillLoads}`);
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
    }
    expect(usage.size).toBe(m.kernels.length);
  }, 300_000);
});
