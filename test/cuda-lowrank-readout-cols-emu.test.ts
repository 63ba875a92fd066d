/**
 * The low-rank chunk readouts' tensor-core twin in output-column groups (compiler/backends/cuda/lowrank-readout-cols.ts:
 * a row's block takes the output columns G at a time; K = V = 128, where the whole-row twin does not fit) on the
 * CPU emulation of CUDA (test/cuda-emu/emu.h with the TF32 mma emulation mma-tf32.h) against the recurrence in float64:
 *   S_t = exp(ld_t) S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T,  key axis y_a = S_{a+oq}^T q_a,  value axis x_a = S_{a+oq} z_a
 * from a random start state, reads before (oq = 0) and after (oq = 1) the step, one and two query vectors, no decay and
 * scalar log decays down to -20 a step, padded tails, one step in use: small configurations (C 16 / 32, K != V, M 1..3,
 * 2..5 groups) and the shipped C = 64, K = V = 128, M = 2, G = 64 ones; "tf32x3" within 1e-5, "tf32" within 1e-3 and
 * above 1e-5 (its rounding is emulated). rev = 1 (the chunk read backwards) bitwise the forward launch on the flipped
 * tensors, and qs strides Q. Broken copies (a group's output columns, EB's or S0's group offset, the mask) fail; nvcc
 * -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { lowRankReadModule } from "../compiler/backends/cuda/lowrank-readout.ts";
import { LOWRANK_READ_COLS_CONFIGS, withReadCols, type LowRankReadColsConfig, type LowRankReadColsKernel } from "../compiler/backends/cuda/lowrank-readout-cols.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { BOUND, buildEmu as buildReadEmu, data, error, expectRevBitwise, expectSmallTwins, reference, runEmu } from "./helpers/lowrank-readout-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-readout-cols-emu.test: g++ is not installed, so the emulated runs are skipped");

const buildEmu = (source: string, kernels: readonly LowRankReadColsKernel[]) => buildReadEmu(source, kernels, "lowrank-readout-cols");

const cols = (configs: readonly LowRankReadColsConfig[], patch?: (src: string) => string) => {
  const m = withReadCols(lowRankReadModule([]), configs, patch);
  return { source: m.source, kernels: m.kernels as LowRankReadColsKernel[] };
};

const SMALL: Omit<LowRankReadColsConfig, "math">[] = [
  { axis: "key", decay: "none", C: 16, K: 8, V: 16, M: 2, G: 8 },
  { axis: "value", decay: "scalar", C: 32, K: 24, V: 8, M: 1, G: 8 },
  { axis: "key", decay: "scalar", C: 32, K: 16, V: 40, M: 3, G: 8 },
  { axis: "value", decay: "none", C: 16, K: 32, V: 8, M: 3, G: 16 },
];

describe.skipIf(!gpp)("low-rank chunk readouts' tensor-core twin in column groups on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations (2..5 groups a row): both axes, before / after, one and two query vectors, log decays to -20, padded tails, one step in use; tf32x3 within 1e-5, tf32 within 1e-3 and above 1e-5", () => {
    for (const math of ["tf32", "tf32x3"] as const) {
      const m = cols(SMALL.map((c) => ({ ...c, math })));
      const bin = buildEmu(m.source, m.kernels);
      expectSmallTwins(m.kernels, bin, math);
    }
  }, 400_000);

  it("the shipped configurations (C = 64, K = V = 128, M = 2, G = 64; LOWRANK_READ_COLS_CONFIGS): full and padded chunks, both axes and decay modes, both maths", () => {
    expect(LOWRANK_READ_COLS_CONFIGS.length).toBe(8);
    const m = cols(LOWRANK_READ_COLS_CONFIGS);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [used, mq, oq, minLd] of (k.math === "tf32" ? [[64, 2, 1, -1], [37, 1, 0, -20]] : [[64, 1, 1, -1]]) as [number, number, number, number][]) {
        const e = error(k, bin, data(k, 1, mq, used, minLd, 5 + i + used), oq);
        expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq}`).toBeLessThan(BOUND[k.math]);
      }
  }, 900_000);

  it("rev = 1 reads the chunk backwards: bitwise the forward launch on the flipped tensors, within the bound of the float64 recurrence run backwards; qs strides Q", () => {
    const m = cols([{ ...SMALL[0], math: "tf32" }, { ...SMALL[1], math: "tf32x3" }, { ...SMALL[2], math: "tf32" }, { ...SMALL[3], math: "tf32x3" }]);
    const bin = buildEmu(m.source, m.kernels);
    expectRevBitwise(m.kernels, bin);
  }, 400_000);

  it("broken copies fail: a group's outputs stored at the first group's columns; the later groups without their own operands; EB's group offset dropped; S0's group offset dropped (both axes); the mask sees a read's own step", () => {
    const broken = (c: LowRankReadColsConfig, from: string, to: string, oq: number) => {
      const m = cols([c], (src) => {
        expect(src).toContain(from);
        return src.split(from).join(to);
      });
      const k = m.kernels[0], d = data(k, 2, 2, k.C, -1, 3);
      const got = runEmu(buildEmu(m.source, m.kernels), k, d, oq);
      return relativeError(got.map((x) => (Number.isFinite(x) ? x : 1e30)), reference(k, d, oq));
    };
    const key = { ...SMALL[2], math: "tf32x3" as const }, value = { ...SMALL[3], math: "tf32x3" as const };
    expect(broken(key, "cs < a + oq ?", "cs < a + oq ?", 1)).toBeLessThan(1e-5); // the control: unchanged, it passes
    expect(broken(key, `* ${key.V}u + c0 + 8u * ct`, `* ${key.V}u + 8u * ct`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, "c0 += ${G}u) {\n      if (c0) {".replace("${G}", String(key.G)), `c0 += ${key.G}u) {\n      if (false) {`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, `(r)) * ${key.V}u + c0 + 4u * c4`, `(r)) * ${key.V}u + 4u * c4`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, `+ r * ${key.V}u + c0 + 4u * c4`, `+ r * ${key.V}u + 4u * c4`, 0)).toBeGreaterThan(1e-2);
    expect(broken(value, `(c0 + r) * ${value.V}u`, `(r) * ${value.V}u`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, "cs < a + oq ?", "cs <= a + oq ?", 0)).toBeGreaterThan(1e-2);
  }, 300_000);

  it("the module: withReadCols appends the twins' kernels (G, rev, one block an SM at K = V = 128) after the readout module's; configurations that do not fit or do not divide are refused", () => {
    const base = lowRankReadModule([{ axis: "key", decay: "none", C: 64, K: 64, V: 64, M: 2, math: "tf32" }]);
    const m = withReadCols(base);
    expect(m.kernels.length).toBe(base.kernels.length + 8);
    expect(m.source.startsWith(base.source)).toBe(true);
    expect(m.source.split("#define SEQC_TF32_MMA").length).toBe(2);
    for (const k of m.kernels.slice(1) as LowRankReadColsKernel[]) {
      expect([k.G, k.rev, k.K, k.V, k.C, k.M], k.entry).toEqual([64, true, 128, 128, 64, 2]);
      expect(k.sharedBytes, k.entry).toBeGreaterThan(113 * 1024);
      expect(k.sharedBytes, k.entry).toBeLessThanOrEqual(227 * 1024);
    }
    expect(() => cols([{ axis: "key", decay: "none", C: 64, K: 128, V: 128, M: 2, math: "tf32", G: 128 }])).toThrow(/shared memory/);
    expect(() => cols([{ axis: "key", decay: "none", C: 64, K: 128, V: 120, M: 2, math: "tf32", G: 48 }])).toThrow(/dividing/);
    expect(() => cols([{ axis: "key", decay: "none", C: 48, K: 128, V: 128, M: 2, math: "tf32", G: 64 }])).toThrow(/16, 32 or 64/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped twins for sm_90; ptxas: no spills", () => {
    const m = cols(LOWRANK_READ_COLS_CONFIGS);
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
    }
  }, 600_000);
});
