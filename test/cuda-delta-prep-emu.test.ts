/**
 * The token-aligned delta backward's per-chunk prep kernels (compiler/backends/cuda/delta-prep.ts, docs/delta-backward.md
 * kernels 1 and 2) on the CPU emulation of CUDA (test/cuda-emu/emu.h) against the float64 reference
 * (test/helpers/delta-ref.ts: prepFwdChunk / prepBwdChunk):
 *   prep_fwd  TI = (I - Luu)^-1, M = Tinv Wd, X = Tinv (Luk V), BM = Kd^T V, NN = Ud, A = exp(G_C)
 *   prep_bwd  M = Tinv^T Ud, X = Tinv^T (Pu^T dY), BM = Qd^T dY, NN = Wd, A = exp(G_C)   (TI: the float64 Tinv, fp32)
 * per-token inputs [B, T, H, w] in fp32 or bf16 (the reference takes the bf16-rounded values), B = 2, H = 3, T = 1 and
 * T = 100 (a ragged last chunk: M and X rows past T must be exactly 0), no decay (LD nullptr) and a scalar log decay
 * down to -20 a step; the shipped C = 64 entries (K = V = 64 and 128) and small configurations (K != V, C = 16 and 32).
 * Deliberately broken copies (Luu's exponent a slot late, Tinv without its last block row, the diagonal blocks' solve
 * a term short, Pu without its diagonal,
 * BM's decay one slot early) must fail. The tensor-core twins (delta-prep-mma.ts, math "tf32" / "tf32x3") with the TF32
 * rounding and the m16n8k8 fragments emulated (test/cuda-emu/mma-tf32.h): tf32x3 within 1e-5, tf32 within 2e-3 (and
 * above 1e-5); broken twins (Luu's diagonal tiles skipped, X's triangular product a k-block short, Tinv's block row a
 * k-block short, prep_bwd's TI read a row off) must fail. nvcc -cubin for sm_90 where installed (the fp32 kernels and the bf16 tf32 twins): no spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_CONFIGS, DELTA_PREP_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { checkEntries, checkTwins, expectBrokenCaught, expectNoSpills, gpp, makeCase, type Shape } from "./helpers/delta-prep-emu.ts";

if (!gpp) console.warn("cuda-delta-prep-emu.test: g++ is not installed, so the emulated runs are skipped");

const SMALL: Shape[] = [
  { decay: "none", C: 16, K: 8, V: 12 },
  { decay: "scalar", C: 32, K: 16, V: 24 },
  { decay: "scalar", C: 16, K: 12, V: 8 },
];
const all = (s: Shape): DeltaPrepConfig<DeltaPrepDecay>[] => (["fwd", "bwd"] as const).flatMap((op) => (["f32", "bf16"] as const).map((tin) => ({ op, tin, ...s })));

describe.skipIf(!gpp)("the delta backward's prep kernels on the CPU emulation vs float64", () => {
  it("small configurations (C = 16 / 32, K != V): fp32 and bf16 inputs, T = 1, ragged chunks, log decays down to -20", () => {
    checkEntries(deltaPrepModule(SMALL.flatMap(all)), { B: 2, H: 3, cases: (k) => [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]], seed: (k, T) => 11 + T + k.K }, false);
  }, 300_000);

  it("the shipped C = 64, K = V = 64 entries: B = 2, H = 3, T = 1 and 100, fp32 and bf16, no decay and one down to -20", () => {
    const m = deltaPrepModule(DELTA_PREP_CONFIGS.filter((c) => c.K === 64));
    expect(m.kernels.map((k) => k.entry)).toEqual(["fwd", "bwd"].flatMap((op) => ["none", "scalar"].flatMap((d) => ["f32", "bf16"].map((t) => `seqc_delta_prep_${op}_${d}_c64k64v64_${t}`))));
    checkEntries(m, { B: 2, H: 3, cases: (k) => (k.decay === "none" ? [[1, 0], [100, 0]] : [[1, -5], [100, -1], [100, -20]]), seed: (_, T) => 5 + T });
  }, 600_000);

  it("the shipped K = V = 128 entries and their tf32 twins: B = 1, H = 2, T = 100 (a ragged chunk), fp32 and bf16, no decay and one down to -1", () => {
    const m = deltaPrepModule([...DELTA_PREP_CONFIGS, ...DELTA_PREP_MMA_CONFIGS].filter((c) => c.K === 128));
    expect(m.kernels.length).toBe(12);
    checkEntries(m, { B: 1, H: 2, cases: (k) => [[100, k.decay === "none" ? 0 : -1]], seed: () => 13, bound: (k) => (k.math ? 2e-3 : 1e-5) });
  }, 600_000);

  it("deliberately broken copies fail: Luu's exponent a slot late; Tinv without its last block row; the diagonal blocks' solve a term short; Pu without its diagonal; BM's decay a slot early", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 16, V: 24 };
    expectBrokenCaught({ tin: "f32", ...s }, () => makeCase(s, "f32", 1, 40, 2, -1, 3), [
      ["fwd", "m[j] = f < a ? expf((float)(sG[a] - sG[f + 1u]))", "m[j] = f < a ? expf((float)(sG[a + 1u] - sG[f + 1u]))", "TI"],
      ["fwd", "for (u32 r = 1; r < 2u; ++r)", "for (u32 r = 1; r < 1u; ++r)", "TI"],
      ["fwd", "for (u32 f = 0; f < a; ++f) s = fmaf(sL[(d0 + a)", "for (u32 f = 0; f + 1u < a; ++f) s = fmaf(sL[(d0 + a)", "TI"],
      ["bwd", "m[j] = f <= a ?", "m[j] = f < a ?", "X"],
      ["bwd", "sE[32u + a] * sQT", "sE[a] * sQT", "BM"],
    ]);
  }, 300_000);

  // the tensor-core twins (delta-prep-mma.ts), the TF32 rounding and the m16n8k8 fragments emulated (test/cuda-emu/mma-tf32.h)
  const SMALL_MMA: Shape[] = [
    { decay: "none", C: 16, K: 16, V: 8 },
    { decay: "scalar", C: 32, K: 16, V: 24 },
    { decay: "scalar", C: 48, K: 32, V: 16 },
  ];

  it("the twins, small configurations and the shipped K = V = 64 ones: tf32x3 within 1e-5, tf32 within 2e-3 (and above 1e-5: its rounding is emulated)", () => {
    const shipped = DELTA_PREP_MMA_CONFIGS.filter((c) => c.K === 64 && c.op === "fwd").map((c) => ({ decay: c.decay, C: c.C, K: c.K, V: c.V }));
    expect(shipped.length).toBe(2);
    checkTwins([...SMALL_MMA, ...shipped].flatMap(all), 23);
  }, 900_000);

  it("broken twins fail: Luu's diagonal tiles skipped; X's triangular product a k-block short; Tinv's block row a k-block short; prep_bwd's TI read a row off", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 16, V: 24 };
    expectBrokenCaught({ tin: "f32", ...s, math: "tf32x3" }, () => makeCase(s, "f32", 1, 40, 2, -1, 8), [
      // Luu's tiles on the diagonal skipped (only the tiles wholly below it computed)
      ["fwd", "(n0 > r0 + 15u ? 0u : 16u)", "(n0 + 15u > r0 ? 0u : 16u)", "TI"],
      // X = Tinv LV (the module's last triangular product) without its diagonal k-block
      ["fwd", "for (u32 k0 = 0u; k0 < r0 + 16u; k0 += 8u)", "for (u32 k0 = 0u; k0 < r0 + 8u; k0 += 8u)", "X", true],
      // Tinv's block row (mma, 3xTF32): Tinv[r, 0:r] = Tinv[r, r] P without the diagonal block's first 8 columns
      ["fwd", "for (u32 k0 = 0u; k0 < 16u; k0 += 8u)", "for (u32 k0 = 8u; k0 < 16u; k0 += 8u)", "TI"],
      // prep_bwd's TI load a row off
      ["bwd", "*(float4*)&sTi[a * 40u + 4u * f4] = *(const float4*)&TI[", "*(float4*)&sTi[(a + 1u) % 32u * 40u + 4u * f4] = *(const float4*)&TI[", "M"],
    ]);
  }, 300_000);

  it("configurations that do not fit are refused", () => {
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 24, K: 16, V: 16 }])).toThrow(/multiple of 16/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 64, K: 10, V: 16 }])).toThrow(/multiples of 4/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 64, K: 192, V: 192 }])).toThrow(/shared memory/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 24, V: 16, math: "tf32" }])).toThrow(/multiples of 16/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "none", tin: "bf16", C: 64, K: 192, V: 192, math: "tf32" }])).toThrow(/shared memory/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped module (C = 64, K = V = 64 and 128, and the bf16 tf32 twins) for sm_90; ptxas: no spills", () => {
    const m = deltaPrepModule([...DELTA_PREP_CONFIGS, ...DELTA_PREP_MMA_CONFIGS]);
    expect(m.kernels.length).toBe(24);
    expectNoSpills(m);
  }, 200_000);
});
