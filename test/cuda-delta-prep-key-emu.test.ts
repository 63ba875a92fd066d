/**
 * The delta prep kernels with a per-key log decay (decay "key", RWKV-7; compiler/backends/cuda/delta-prep-key.ts) on
 * the CPU emulation of CUDA (test/cuda-emu/emu.h) against the float64 reference (test/helpers/delta-ref.ts prepFwdChunk
 * / prepBwdChunk with perKey: ld [B, T, H, K], A [N, K]): per-token inputs in fp32 or bf16, T = 1 and ragged chunks,
 * per-key log decays uniform in [minLd, 0) down to -20 a step (keys near 0 beside keys far below); small configurations (C = 16 / 32 / 48, K != V) and the
 * shipped DELTA_PREP_KEY_CONFIGS (C = 64, K = V = 64 and 128). Deliberately broken copies (the between-tile factor a
 * tile off, the diagonal tiles' mask f <= a, the diagonal exp a slot off, pass 1's a-side factor dropped, pass 2's
 * tail factor a tile off, prep_bwd's NN with G[a] for G[a-1]) must fail. The tensor-core twins (math "tf32" / "tf32x3":
 * the same decay passes on row layouts, fp32 SIMT scores, the other products as delta-prep-mma.ts's m16n8k8 TF32 mma,
 * emulated by test/cuda-emu/mma-tf32.h): tf32x3 within 1e-5, tf32 within 2e-3; broken twins (the rows' between-tile
 * factor a tile off, pass 1's f-side factor from the wrong slot, pass 2's a-side factor a tile off) must fail. nvcc
 * -cubin for sm_90 where installed (the fp32 kernels and the bf16 tf32 twins): no spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_KEY_CONFIGS, DELTA_PREP_KEY_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { checkEntries, checkTwins, expectBrokenCaught, expectNoSpills, gpp, makeCase, type Shape } from "./helpers/delta-prep-emu.ts";

if (!gpp) console.warn("cuda-delta-prep-key-emu.test: g++ is not installed, so the emulated runs are skipped");

const all = (s: Omit<Shape, "decay">): DeltaPrepConfig<"key">[] => (["fwd", "bwd"] as const).flatMap((op) => (["f32", "bf16"] as const).map((tin) => ({ op, tin, decay: "key" as const, ...s })));

const SMALL = [
  { C: 16, K: 12, V: 8 },
  { C: 32, K: 16, V: 24 },
  { C: 48, K: 32, V: 16 },
];

describe.skipIf(!gpp)("the delta prep kernels with a per-key decay on the CPU emulation vs float64", () => {
  it("small configurations (C = 16 / 32 / 48, K != V): fp32 and bf16 inputs, T = 1, ragged chunks, per-key log decays down to -20", () => {
    checkEntries(deltaPrepModule(SMALL.flatMap(all)), { B: 2, H: 3, cases: (k) => [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20], [2 * k.C + 7, -20]], seed: (k, T) => 31 + T + k.K }, false);
  }, 300_000);

  it("the shipped K = V = 64 entries: B = 2, H = 3, T = 1 and 100, fp32 and bf16, per-key log decays down to -1 and -20", () => {
    const m = deltaPrepModule(DELTA_PREP_KEY_CONFIGS.filter((c) => c.K === 64));
    expect(m.kernels.map((k) => k.entry)).toEqual(["fwd", "bwd"].flatMap((op) => ["f32", "bf16"].map((t) => `seqc_delta_prep_${op}_key_c64k64v64_${t}`)));
    checkEntries(m, { B: 2, H: 3, cases: () => [[1, -5], [100, -1], [100, -20]], seed: (_, T) => 7 + T });
  }, 600_000);

  it("the shipped K = V = 128 entries: B = 1, H = 2, T = 100 (a ragged chunk), fp32 and bf16, per-key log decays down to -1", () => {
    const m = deltaPrepModule(DELTA_PREP_KEY_CONFIGS.filter((c) => c.K === 128));
    expect(m.kernels.length).toBe(4);
    checkEntries(m, { B: 1, H: 2, cases: () => [[100, -1]], seed: () => 17 });
  }, 600_000);

  it("deliberately broken copies fail", () => {
    const s = { C: 32, K: 16, V: 24 };
    expectBrokenCaught({ tin: "f32", decay: "key", ...s }, () => makeCase({ decay: "key", ...s }, "f32", 1, 40, 2, -1, 3), [
      // the between-tile factor a tile off (exp(Gb[tau_a] - Gb[tau_f]))
      ["fwd", "sGb[(ti) * 16u + i] - sGb[(tj + 1u) * 16u + i]", "sGb[(ti) * 16u + i] - sGb[(tj) * 16u + i]", "TI"],
      ["bwd", "sGb[(ti) * 16u + i] - sGb[(tj + 1u) * 16u + i]", "sGb[(ti) * 16u + i] - sGb[(tj) * 16u + i]", "X"],
      // the diagonal tiles' mask f <= a (Luu's diagonal kept)
      ["fwd", "df < da;", "df <= da;", "TI"],
      // the diagonal exp from G[a] (for G[a-1])
      ["fwd", "sGl[(i) * 36u + da - 1u]", "sGl[(i) * 36u + da]", "X"],
      // pass 1's a-side factor of a tile's second slot dropped
      ["fwd", "v.y *= expf(g.x); v.z", "v.z", "M"],
      // pass 2's tail factor a tile off (Ud / Kd times exp(G_C - G[4 tau - 1]))
      ["bwd", "sGb[(8u) * 16u + i] - sGb[(j + 1u) * 16u + i]", "sGb[(8u) * 16u + i] - sGb[(j) * 16u + i]", "M"],
      // prep_bwd's NN = Wd with G[a] for G[a - 1]
      ["bwd", "sGl[(i) * 36u + a - 1u]", "sGl[(i) * 36u + a]", "NN"],
    ]);
  }, 300_000);

  const SMALL_MMA = [
    { C: 16, K: 16, V: 8 },
    { C: 32, K: 16, V: 24 },
    { C: 48, K: 32, V: 16 },
  ];

  it("the twins, small configurations and the shipped K = V = 64 and 128 ones: tf32x3 within 1e-5, tf32 within 2e-3 (and above 1e-5: its rounding is emulated)", () => {
    const shipped = DELTA_PREP_KEY_MMA_CONFIGS.filter((c) => c.op === "fwd").map((c) => ({ C: c.C, K: c.K, V: c.V }));
    expect(shipped.length).toBe(2);
    checkTwins([...SMALL_MMA, ...shipped].flatMap(all), 41);
  }, 900_000);

  it("broken twins fail", () => {
    const s = { C: 32, K: 16, V: 24 };
    expectBrokenCaught({ tin: "f32", decay: "key", ...s, math: "tf32x3" }, () => makeCase({ decay: "key", ...s }, "f32", 1, 40, 2, -1, 9), [
      // the rows' between-tile factor a tile off
      ["fwd", "sGb[(ti) * 16u + i + q] - sGb[(tj + 1u) * 16u + i + q]", "sGb[(ti) * 16u + i + q] - sGb[(tj) * 16u + i + q]", "TI"],
      ["bwd", "sGb[(ti) * 16u + i + q] - sGb[(tj + 1u) * 16u + i + q]", "sGb[(ti) * 16u + i + q] - sGb[(tj) * 16u + i + q]", "X"],
      // pass 1's f-side factor from the tile's first slot (for its end)
      ["fwd", "ge = *(const float4*)&sGl[((a | 3u)) * 20u + 4u * i4]", "ge = *(const float4*)&sGl[((a & ~3u)) * 20u + 4u * i4]", "X"],
      // pass 2's a-side factor a tile off (Qd times exp(G[4 tau + 3]))
      ["bwd", "expf((float)sGb[(a / 4u) * 16u + 4u * i4 + 0u])", "expf((float)sGb[(a / 4u + 1u) * 16u + 4u * i4 + 0u])", "BM"],
    ]);
  }, 300_000);

  it("configurations that do not fit are refused", () => {
    expect(() => deltaPrepModule([{ op: "fwd", decay: "key", tin: "bf16", C: 64, K: 24, V: 64, math: "tf32" }])).toThrow(/multiples of 16/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "key", tin: "f32", C: 80, K: 16, V: 16 }])).toThrow(/one a thread/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "key", tin: "f32", C: 16, K: 48, V: 8 }])).toThrow(/too large for Gl/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles DELTA_PREP_KEY_CONFIGS and their bf16 tf32 twins (C = 64, K = V = 64 and 128) for sm_90; ptxas: no spills", () => {
    const m = deltaPrepModule([...DELTA_PREP_KEY_CONFIGS, ...DELTA_PREP_KEY_MMA_CONFIGS]);
    expect(m.kernels.length).toBe(12);
    expectNoSpills(m);
  }, 200_000);
});
