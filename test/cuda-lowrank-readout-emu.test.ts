/**
 * The low-rank chunk readouts kernel (compiler/backends/cuda/lowrank-readout.ts; runtime/torch/seqc_chunked_lowrank.py
 * LR_FUSED_READ "cuda") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against the recurrence itself in float64:
 *   S_t = exp(ld_t) S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T,  key axis y_a = S_{a+oq}^T q_a,  value axis x_a = S_{a+oq} z_a
 * from a random start state S_0, every read before (oq = 0) and after (oq = 1) its step, one and two query vectors per
 * step: no decay and a scalar log decay down to -20 per step, padded tails (zero events, zero log decay), one step in
 * use, small configurations (C 16 / 32 / 48, K != V, M 1 / 2 / 3) and the shipped C = K = V = 64, M = 2 ones; deliberately
 * broken copies (the outputs skip the last step's events of their tile; the mask lets a read see its own step before it)
 * must fail; nvcc -cubin for sm_90 where installed: no spills, registers within two blocks an SM. The same for the
 * opt-in float4 loads (loads "vec4", entries _v4; a transposed store one row off must fail). The tensor-core twins
 * (math "tf32" / "tf32x3", compiler/backends/cuda/lowrank-readout-mma.ts) with their TF32 rounding and mma.sync m16n8k8
 * fragments emulated (test/cuda-emu/mma-tf32.h): "tf32x3" within 1e-5 like the fp32 kernel, "tf32" within 1e-3 and
 * above 1e-5 (its rounding is really there); broken twins (the mask, the last event tile, a fragment's row, the tails'
 * product) must fail.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { LOWRANK_READ_CONFIGS, LOWRANK_READ_MMA_CONFIGS, LOWRANK_READ_SCALAR_CONFIGS, LOWRANK_READ_VEC4_CONFIGS, lowRankReadModule, type LowRankReadConfig, type LowRankReadKernel } from "../compiler/backends/cuda/lowrank-readout.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { BOUND, buildEmu as buildReadEmu, data, error, expectRevBitwise, expectSmallTwins, flipSteps, reference, runEmu } from "./helpers/lowrank-readout-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-readout-emu.test: g++ is not installed, so the emulated runs are skipped");

const buildEmu = (source: string, kernels: LowRankReadKernel[]) => buildReadEmu(source, kernels, "lowrank-readout");

const SMALL: LowRankReadConfig[] = [
  { axis: "key", decay: "none", C: 16, K: 8, V: 12, M: 2 },
  { axis: "value", decay: "scalar", C: 32, K: 12, V: 20, M: 1 },
  { axis: "key", decay: "scalar", C: 48, K: 16, V: 8, M: 3 },
  { axis: "value", decay: "none", C: 16, K: 20, V: 4, M: 2 },
];

describe.skipIf(!gpp)("low-rank chunk readouts kernel on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations: both axes, before / after the step, one and two query vectors, log decays to -20, padded tails, one step in use", () => {
    const m = lowRankReadModule([...SMALL, ...SMALL.map((c) => ({ ...c, loads: "vec4" as const }))]);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [used, mq, minLd] of [[k.C, 2, -1], [k.C - 3, 1, -20], [1, 2, -20], [k.C, 1, -0.1]] as const)
        for (const oq of [0, 1]) {
          const e = error(k, bin, data(k, 3, mq, used, minLd, 11 + 7 * i + used + mq), oq);
          expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}`).toBeLessThan(1e-5);
        }
  }, 300_000);

  it("every C = K = V = 64, M = 2 configuration, scalar loads and float4 loads (entries _v4): no decay and scalar, both axes, full and padded chunks", () => {
    const scalar = lowRankReadModule(LOWRANK_READ_SCALAR_CONFIGS), v4 = lowRankReadModule(LOWRANK_READ_VEC4_CONFIGS);
    expect(scalar.kernels.map((k) => `${k.axis} ${k.decay}`)).toEqual(["key none", "value none", "key scalar", "value scalar"]);
    expect(v4.kernels.map((k) => k.entry)).toEqual(scalar.kernels.map((k) => `${k.entry}_v4`));
    for (const m of [scalar, v4]) {
      const bin = buildEmu(m.source, m.kernels);
      for (const [i, k] of m.kernels.entries())
        for (const [used, mq, oq, minLd] of [[64, 2, 1, -1], [37, 1, 0, -20]] as const) {
          const e = error(k, bin, data(k, 2, mq, used, minLd, 5 + i + used), oq);
          expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq}`).toBeLessThan(1e-5);
        }
    }
  }, 400_000);

  it("the shipped module (lowRankReadModule()) takes float4 loads with no decay and scalar loads with a scalar decay, then the tensor-core twins", () => {
    const fp32 = ["seqc_lr_read_key_none_c64k64v64m2", "seqc_lr_read_value_none_c64k64v64m2", "seqc_lr_read_key_scalar_c64k64v64m2", "seqc_lr_read_value_scalar_c64k64v64m2"];
    expect(lowRankReadModule().kernels.map((k) => k.entry)).toEqual([
      "seqc_lr_read_key_none_c64k64v64m2_v4", "seqc_lr_read_value_none_c64k64v64m2_v4", fp32[2], fp32[3],
      ...fp32.map((e) => `${e}_tf32`), ...fp32.map((e) => `${e}_tf32x3`)]);
    expect(LOWRANK_READ_CONFIGS.map((c) => c.math ?? c.loads ?? "scalar")).toEqual(["vec4", "vec4", "scalar", "scalar", ...Array(4).fill("tf32"), ...Array(4).fill("tf32x3")]);
  });

  // the tensor-core twins: small configurations (C 16 / 32, K != V, M 1..3) and the shipped ones
  const SMALL_MMA: LowRankReadConfig[] = [
    { axis: "key", decay: "none", C: 16, K: 8, V: 16, M: 2 },
    { axis: "value", decay: "scalar", C: 32, K: 24, V: 8, M: 1 },
    { axis: "key", decay: "scalar", C: 32, K: 16, V: 40, M: 3 },
    { axis: "value", decay: "none", C: 16, K: 16, V: 8, M: 3 },
  ];

  it("tensor-core twins, small configurations: tf32x3 within 1e-5, tf32 within 1e-3 (and above 1e-5: its rounding is emulated); both axes, before / after, log decays to -20, padded tails", () => {
    for (const math of ["tf32", "tf32x3"] as const) {
      const m = lowRankReadModule(SMALL_MMA.map((c) => ({ ...c, math })));
      const bin = buildEmu(m.source, m.kernels);
      expectSmallTwins(m.kernels, bin, math);
    }
  }, 400_000);

  it("tensor-core twins, every C = K = V = 64, M = 2 configuration (LOWRANK_READ_MMA_CONFIGS): full and padded chunks", () => {
    const m = lowRankReadModule(LOWRANK_READ_MMA_CONFIGS);
    expect(m.kernels.map((k) => k.entry)).toEqual(["tf32", "tf32x3"].flatMap((x) => LOWRANK_READ_SCALAR_CONFIGS.map((c) => `${lowRankReadModule([c]).kernels[0].entry}_${x}`)));
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [used, mq, oq, minLd] of [[64, 2, 1, -1], [37, 1, 0, -20]] as const) {
        const e = error(k, bin, data(k, 2, mq, used, minLd, 5 + i + used), oq);
        expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq}`).toBeLessThan(BOUND[k.math!]);
      }
  }, 600_000);

  it("broken tensor-core twins fail: the mask sees a read's own step before it; the mix skips the last event tile; an A fragment's second row half; tf32x3 without one tail product", () => {
    const k0 = { ...SMALL_MMA[2], math: "tf32x3" as const };
    const broken = (k: LowRankReadConfig, from: string, to: string, oq: number) => {
      const m = lowRankReadModule([k], (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      return error(m.kernels[0], buildEmu(m.source, m.kernels), data(k, 2, 2, k.C, -1, 3), oq);
    };
    expect(broken(k0, "cs < a + oq ?", "cs <= a + oq ?", 0)).toBeGreaterThan(1e-2);
    expect(broken(k0, "ks < ntile;", "ks + 1u < ntile;", 1)).toBeGreaterThan(1e-2);
    expect(broken({ ...k0, math: "tf32" }, "((l >> 3u) & 1u) * 8u)", "((l >> 3u) & 1u) * 0u)", 1)).toBeGreaterThan(1e-2);
    const tail = broken(k0, "seqc_mma_tf32(o[j], fa, fbl);", "", 1);
    expect(tail).toBeGreaterThan(1e-5);
  }, 200_000);

  it("deliberately broken copies fail: the outputs skip their tile's last step's events; a read sees its own step before it", () => {
    const k0 = SMALL[2];
    const skip = lowRankReadModule([k0], (src) => {
      expect(src).toContain("const u32 ne = (4u * ta + 4u)");
      return src.replace("const u32 ne = (4u * ta + 4u)", "const u32 ne = (4u * ta + 3u)");
    });
    const e1 = error(skip.kernels[0], buildEmu(skip.source, skip.kernels), data(k0, 2, 2, k0.C, -1, 3), 1);
    expect(e1).toBeGreaterThan(1e-2);
    const mask = lowRankReadModule([k0], (src) => {
      expect(src).toContain("cs < a + oq ?");
      return src.replace("cs < a + oq ?", "cs <= a + oq ?");
    });
    const e2 = error(mask.kernels[0], buildEmu(mask.source, mask.kernels), data(k0, 2, 2, k0.C, -1, 3), 0);
    expect(e2).toBeGreaterThan(1e-2);
    // the float4 loads: the queries' transposed store of each float4's last entry one row up
    const k4 = { ...k0, loads: "vec4" as const }, LQ = k4.C + 4;
    const row = lowRankReadModule([k4], (src) => {
      const at = `+ 3u) * ${LQ}u + x % ${k4.C}u] = v.w;`;
      expect(src).toContain(at);
      return src.replace(at, `+ 2u) * ${LQ}u + x % ${k4.C}u] = v.w;`);
    });
    const e3 = error(row.kernels[0], buildEmu(row.source, row.kernels), data(k4, 2, 2, k4.C, -1, 3), 1);
    expect(e3).toBeGreaterThan(1e-2);
  }, 100_000);

  it("rev = 1 reads the chunk backwards (the kernel's step a is row C - 1 - a of Q, EA, EB, OUT; G in step order) and qs strides Q: bitwise the forward launch on the flipped tensors, within the bounds of the float64 recurrence run backwards; fp32, float4 loads, both twins, small and shipped configurations", () => {
    const mods = [
      lowRankReadModule([SMALL[0], SMALL[2], { ...SMALL[1], loads: "vec4" as const }, { ...SMALL[3], loads: "vec4" as const }]),
      lowRankReadModule([{ ...SMALL_MMA[0], math: "tf32" as const }, { ...SMALL_MMA[1], math: "tf32x3" as const }, { ...SMALL_MMA[2], math: "tf32" as const }, { ...SMALL_MMA[3], math: "tf32x3" as const }]),
      lowRankReadModule(),
    ];
    for (const m of mods) {
      const bin = buildEmu(m.source, m.kernels);
      expectRevBitwise(m.kernels, bin);
    }
  }, 600_000);

  it("broken rev copies fail: the outputs stored forward (fp32 and the twin); the twin's events read forward", () => {
    const broken = (k: LowRankReadConfig, cut: (src: string) => string) => {
      const m = lowRankReadModule([k], (src) => {
        const out = cut(src);
        expect(out).not.toEqual(src);
        return out;
      });
      const d = data(k, 2, 2, k.C, -1, 7), f = flipSteps(k, d);
      return relativeError(runEmu(buildEmu(m.source, m.kernels), m.kernels[0], d, 1, 1), f.back(reference(k, f.d, 1)));
    };
    const C0 = SMALL[2].C - 1, C1 = SMALL_MMA[2].C - 1;
    expect(broken(SMALL[2], (s) => s.replace(`out[((rev ? ${C0}u - (a) : (a)) * mq`, "out[((a) * mq"))).toBeGreaterThan(1e-2);
    expect(broken({ ...SMALL_MMA[2], math: "tf32x3" }, (s) => s.replace(new RegExp(`\\(rev \\? ${C1}u - \\((a0 \\+ g[^)]*)\\) : \\(\\1\\)\\)`, "g"), "($1)"))).toBeGreaterThan(1e-2);
    expect(broken({ ...SMALL_MMA[2], math: "tf32x3" }, (s) => s.replace(`ea[(rev ? (${C1}u - (r) / 3u) * 3u + (r) % 3u : (r))`, "ea[(r)"))).toBeGreaterThan(1e-2);
  }, 200_000);

  it("configurations that do not fit are refused; the shipped ones fit two blocks an SM (<= 113 KiB each)", () => {
    expect(() => lowRankReadModule([{ axis: "key", decay: "none", C: 64, K: 10, V: 20, M: 2 }])).toThrow(/multiples of 4/);
    expect(() => lowRankReadModule([{ axis: "key", decay: "none", C: 80, K: 8, V: 8, M: 2 }])).toThrow(/C <= 64/);
    expect(() => lowRankReadModule([{ axis: "key", decay: "none", C: 64, K: 128, V: 128, M: 4 }])).toThrow(/shared memory/);
    expect(() => lowRankReadModule([{ axis: "key", decay: "none", C: 48, K: 8, V: 8, M: 2, math: "tf32" }])).toThrow(/16, 32 or 64/);
    expect(() => lowRankReadModule([{ axis: "key", decay: "none", C: 64, K: 12, V: 8, M: 2, math: "tf32" }])).toThrow(/multiples of 8/);
    for (const k of lowRankReadModule([...LOWRANK_READ_SCALAR_CONFIGS, ...LOWRANK_READ_VEC4_CONFIGS, ...LOWRANK_READ_MMA_CONFIGS]).kernels) expect(k.sharedBytes, k.entry).toBeLessThanOrEqual(113 * 1024);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped module for sm_90; ptxas: no spills, <= 128 registers (two 256-thread blocks an SM)", () => {
    const m = lowRankReadModule([...LOWRANK_READ_SCALAR_CONFIGS, ...LOWRANK_READ_VEC4_CONFIGS, ...LOWRANK_READ_MMA_CONFIGS]);
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
    }
  }, 600_000);
});
