/**
 * The delta adjoint's bf16 tensor-core twin (compiler/backends/cuda/delta-adjoint-bf16.ts, math "bf16") on the CPU
 * emulation of CUDA (test/cuda-emu/emu.h: ldmatrix, mma.sync m16n8k16 bf16 from the lanes' fragments, cp.async) against
 * the float64 formulas of test/helpers/delta-ref.ts's `adjoint`, on test/helpers/delta-adjoint-emu.ts's cases (B 2, H 3,
 * T 100 ragged and T 1, decays none or in [-0.3, 0], [-20, 0] and [-5, 0] a step; bf16 per-token inputs, the reference
 * taking the rounded values; R, S0, SF, LE, DR any fp32 values).
 *
 * Tolerance 1e-2 relative (L2) and above 1e-4 (the rounding shows): the kernel rounds R, DR, S0, LE and the masked and
 * decayed scores to bf16 (8 bits, 2^-9 relative a value) before they meet the tensor cores; the sums over 64-128
 * products of independently rounded terms leave about 2^-9 / 2 relative (~1e-3 to 3e-3 measured here). Broken copies
 * (a score pair on the diagonal skipped, Ar's mask f <= a, the y side's S0 term with exp(G[a - 1]), dk's A^T x a block
 * short, dld's suffix sums without their own slot, aC's warp sums over half the lanes, w's copy into the wrong slot,
 * dv's LE product over half the keys) fail above 1e-2. nvcc -cubin for sm_90 (where installed): no spills, <= 128
 * registers.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_ADJ_PRELUDE, type DeltaAdjKernel } from "../compiler/backends/cuda/delta-adjoint.ts";
import { DELTA_ADJ_BF16_CONFIGS, DELTA_ADJ_BF16_PRELUDE, DELTA_ADJ_BF16_ZIN_CONFIGS, deltaAdjBf16Kernel, deltaAdjBf16Source } from "../compiler/backends/cuda/delta-adjoint-bf16.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { adjData as data, adjEmu, adjErrors as errors, adjRun, expectBrokenFail as expectBroken, fmt, worst, type AdjData } from "./helpers/delta-adjoint-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-adjoint-bf16-emu.test: g++ is not installed, so the emulated runs are skipped");

const source = (ks: DeltaAdjKernel[]) => DELTA_ADJ_PRELUDE + DELTA_ADJ_BF16_PRELUDE + ks.map(deltaAdjBf16Source).join("");
const buildEmu = (ks: DeltaAdjKernel[], patch?: (src: string) => string) => adjEmu(source(ks), ks, "delta-adjoint-bf16", false, patch);

function checkAll(ks: DeltaAdjKernel[], seed: number): void {
  const bin = buildEmu(ks);
  ks.forEach((k, i) => {
    const cases = k.decay === "none" ? [[100, 0], [1, 0]] : [[100, -0.3], [100, -20], [1, -5]];
    for (const [T, minLd] of cases) {
      const e = errors(bin, k, data(k, T, minLd, seed + T + i));
      expect(worst(e), `${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-2);
      expect(worst(e), `${k.entry} T=${T}: the rounding shows`).toBeGreaterThan(1e-4);
      console.log(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
    }
  });
}

const expectBrokenFail = (k: DeltaAdjKernel, d: AdjData, changes: [from: string, to: string, which: string, nth?: number][]) => expectBroken(buildEmu, k, d, changes);

describe.skipIf(!gpp)("the delta adjoint's bf16 tensor-core twin on the CPU emulation vs float64", () => {
  const ks = DELTA_ADJ_BF16_CONFIGS.map(deltaAdjBf16Kernel);
  const k64 = ks.filter((k) => k.K === 64), k128 = ks.filter((k) => k.K === 128);

  it("the configurations: entries, threads, shared memory", () => {
    expect(ks.map((k) => [k.entry, k.threads, k.sharedBytes])).toEqual([
      ["seqc_delta_adj_none_c64k64v64_bf16_bf16", 256, 112160],
      ["seqc_delta_adj_scalar_c64k64v64_bf16_bf16", 256, 112160],
      ["seqc_delta_adj_none_c64k128v128_bf16_bf16", 512, 204320],
      ["seqc_delta_adj_scalar_c64k128v128_bf16_bf16", 512, 204320],
    ]);
    expect(() => deltaAdjBf16Kernel({ decay: "none", tin: "f32", C: 64, K: 64, V: 64, math: "bf16" })).toThrow(/bf16 inputs/);
    expect(() => deltaAdjBf16Kernel({ decay: "none", tin: "bf16", C: 64, K: 96, V: 96, math: "bf16" })).toThrow(/K = V = 64 or 128/);
  });

  it("K = V = 64: T = 100 (ragged) and T = 1, decays none, [-0.3, 0], [-20, 0] a step: within 1e-2 (above 1e-4)", () => checkAll(k64, 41), 900_000);

  it("K = V = 128 (16 warps): the same cases", () => checkAll(k128, 61), 900_000);

  it("broken copies fail", () => {
    const k = k64[1], d = data(k, 100, -0.3, 13);
    expectBrokenFail(k, d, [
      // the diagonal 16-column pair of every score skipped (Pk feeds dv)
      ["if (2u * cg + p <= rb)", "if (2u * cg + p < rb)", "dv"],
      // the r side's second scores (Ar = DR v^T) with the diagonal
      ["f < a + 0u ?", "f <= a + 0u ?", "dk", 1],
      // the y side's S0 term scaled by exp(G[a - 1])
      ["__expf(sG[(16u * rb + g) + 1u])", "__expf(sG[(16u * rb + g)])", "dq"],
      // dk += A^T q from one 16-row block late
      ["for (u32 k0 = 16u * rb; k0 < 64u; k0 += 16u)", "for (u32 k0 = 16u * rb + 16u; k0 < 64u; k0 += 16u)", "dk", 1],
      // dld's suffix sums without the slot's own terms
      ["s += sRow[t];", "", "dld"],
      // aC's warp sums over half the lanes
      ["for (u32 o = 16u; o > 0u;", "for (u32 o = 8u; o > 0u;", "dld"],
    ]);
    const w = k128[0], dw = data(w, 100, 0, 14);
    expectBrokenFail(w, dw, [
      // w's rows copied over DR's slot
      ["seqc_dab_cp16(d, W +", "seqc_dab_cp16(d + 8192, W +", "dv"],
      // dv's LE product over half the keys
      ["for (u32 k0 = 0u; k0 < 128u; k0 += 16u)", "for (u32 k0 = 0u; k0 < 64u; k0 += 16u)", "dv"],
    ]);
  }, 900_000);

  const zs = DELTA_ADJ_BF16_ZIN_CONFIGS.map(deltaAdjBf16Kernel);

  it("bf16 R, S0, LE, DR (zin, the walks' zout): vs float64 within 1e-2, and bit-identical to the fp32-input twin on the same values (dld too where R, S0, LE, DR are bf16 values already: aC's sums alike); broken copies fail", () => {
    expect(zs.map((k) => [k.entry, k.threads, k.sharedBytes])).toEqual(ks.map((k) => [`${k.entry}_zb`, k.threads, k.sharedBytes]));
    expect(() => deltaAdjBf16Kernel({ ...DELTA_ADJ_BF16_CONFIGS[0], zin: "f16" as "bf16" })).toThrow(/zin/);
    const bin = buildEmu([...ks, ...zs]);
    const rounded = (d: AdjData): AdjData => ({ ...d, R: bf16(d.R).values, S0: bf16(d.S0).values, LE: bf16(d.LE).values, DR: bf16(d.DR).values });
    zs.forEach((z, i) => {
      const k = ks[i];
      for (const [T, minLd] of (z.decay === "none" ? [[100, 0], [1, 0]] : [[100, -0.3], [100, -20], [1, -5]])) {
        const raw = data(z, T, minLd, 71 + T + i), d = rounded(raw);
        const e = errors(bin, z, d);
        expect(worst(e), `${z.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-2);
        console.log(`${z.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
        for (const [dd, what] of [[d, "bf16 values"], [raw, "fp32 values"]] as const) {
          const a = adjRun(bin, z, dd), b = adjRun(bin, k, dd);
          for (const o of ["dq", "du", "dw", "dk", "dv", "dld"] as const) {
            if (!a[o] || !b[o] || (o === "dld" && dd === raw)) continue;  // aC from fp32 S_C, LE in the fp32-input twin
            const diff = a[o]!.findIndex((x, j) => !Object.is(x, b[o]![j]));
            expect(diff, `${z.entry} T=${T} ${what}: ${o} bit-identical to ${k.entry}`).toBe(-1);
          }
        }
      }
    });
    // broken copies: S0 from the neighbouring chunk (the y side's S0 term), DR's 4-value groups swapped in pairs, aC's S_C from this chunk's S0
    const z = zs[1], d = rounded(data(z, 100, -0.3, 17));
    const broken = (from: string, to: string, nth = 0) => buildEmu([z], (src) => {
      let at = -1;
      for (let j = 0; j <= nth; j++) at = src.indexOf(from, at + 1);
      expect(at, from).toBeGreaterThanOrEqual(0);
      return src.slice(0, at) + to + src.slice(at + from.length);
    });
    const cases: [string, string, string, number][] = [
      ["const unsigned short* src = S0 + (size_t)n * 4096u;", "const unsigned short* src = S0 + (size_t)(n ^ 1u) * 4096u;", "dq", 0],
      ["seqc_dab_ld4(pre[i], DR + (size_t)n * 4096u + 4u * x)", "seqc_dab_ld4(pre[i], DR + (size_t)n * 4096u + 4u * (x ^ 1u))", "dw", 0],
      ["seqc_dab_ld4(w, S0 + (size_t)(n + 1u) * 4096u", "seqc_dab_ld4(w, S0 + (size_t)n * 4096u", "dld", 0],
    ];
    for (const [from, to, which, nth] of cases) expect(errors(broken(from, to, nth), z, d, true)[which], `${from} -> ${to}`).toBeGreaterThan(1e-2);
  }, 900_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles every entry for sm_90; ptxas: no spills, <= 128 registers", () => {
    for (const [e, u] of ptxasUsage(findNvcc()!, source([...ks, ...zs]), [...ks, ...zs].map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
      console.log(`${e}: ${u.registers} registers`);
    }
  }, 200_000);
});
