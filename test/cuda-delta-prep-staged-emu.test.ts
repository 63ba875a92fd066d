/**
 * The staged form of prep's TF32 twins (compiler/backends/cuda/delta-prep-staged.ts: bf16 operands in shared memory,
 * cp.async copies, Tinv over Luu, prep_bwd's X = (Tinv^T Pu^T) dY) on the CPU emulation (test/cuda-emu/emu.h, the TF32
 * rounding and m16n8k8 fragments of test/cuda-emu/mma-tf32.h) against the float64 reference (test/helpers/delta-ref.ts),
 * as test/cuda-delta-prep-emu.test.ts checks the twin: B = 2, H = 2; small shapes at T = 1, ragged chunks and log decays
 * down to -20, the shipped C = 64 ones at T = 100 (K = 128: B = 1) with decays down to -1. Every output within 2e-3 (the
 * twin's bound: TF32 operands, 2^-11 relative a rounding) and above 1e-5 past T = 1 (the rounding is emulated); and no
 * worse than twice the twin's own error on the same case + 1e-5 (the staged form rounds the same operands, bar
 * prep_bwd's TP). M and X rows past T exactly 0, every output written (errors() in the helper). Deliberately broken
 * copies must fail; nvcc -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { buildEmu, errors, expectBrokenCaught, expectNoSpills, fmt, gpp, makeCase, worst, type Shape } from "./helpers/delta-prep-emu.ts";

if (!gpp) console.warn("cuda-delta-prep-staged-emu.test: g++ is not installed, so the emulated runs are skipped");

const staged = (c: DeltaPrepConfig<DeltaPrepDecay>, threads?: number) => ({ ...c, math: "tf32" as const, staged: true, ...(threads ? { threads } : {}) });
const both = (s: Shape): DeltaPrepConfig<DeltaPrepDecay>[] => (["fwd", "bwd"] as const).map((op) => ({ op, tin: "bf16", ...s }));

/** The staged kernels of `configs` and the twins (unstaged) on the same cases: the staged form within 2e-3, above
 * 1e-5 past T = 1, and within 2 x the twin's worst error + 1e-5. */
function checkStaged(configs: readonly DeltaPrepConfig<DeltaPrepDecay>[], seed: number, threads?: number): void {
  const twin = deltaPrepModule(configs.map((c) => ({ ...c, math: "tf32" as const })));
  const mine = deltaPrepModule(configs.map((c) => staged(c, threads)));
  if (threads) expect(mine.kernels.every((k) => k.threads === threads)).toBe(true);
  const binT = buildEmu(twin.source, twin.kernels), binS = buildEmu(mine.source, mine.kernels);
  const lines: string[] = [];
  mine.kernels.forEach((k, i) => {
    const B = k.K === 128 ? 1 : 2;
    for (const [T, minLd] of k.C === 64 ? [[100, -1]] : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]) {
      const cs = () => makeCase(k, "bf16", B, T, 2, minLd, seed + T + k.K);
      const es = errors(binS, k, cs()), et = errors(binT, twin.kernels[i], cs());
      const line = `${k.entry} (C ${k.C}, K ${k.K}, V ${k.V}) T=${T} ld>=${minLd}: staged ${fmt(es)}; twin worst ${worst(et).toExponential(2)}`;
      lines.push(line);
      expect(worst(es), line).toBeLessThan(2e-3);
      if (T > 1) expect(worst(es), `${line}: TF32 rounding shows`).toBeGreaterThan(1e-5);
      expect(worst(es), `${line}: vs the twin`).toBeLessThan(2 * worst(et) + 1e-5);
    }
  });
  console.log(lines.join("\n"));
}

describe.skipIf(!gpp)("prep's staged TF32 twins on the CPU emulation vs float64", () => {
  it("small shapes (C = 16 / 32 / 48, K != V) and the shipped C = 64, K = V = 64 entries, no decay and a scalar one", () => {
    const shapes: Shape[] = [
      { decay: "none", C: 16, K: 16, V: 8 },
      { decay: "scalar", C: 32, K: 16, V: 24 },
      { decay: "scalar", C: 48, K: 32, V: 16 },
      { decay: "none", C: 64, K: 64, V: 64 },
      { decay: "scalar", C: 64, K: 64, V: 64 },
    ];
    checkStaged(shapes.flatMap(both), 31);
  }, 900_000);

  it("512 threads a block (config threads): small shapes and the shipped K = V = 64 entries with a scalar decay", () => {
    const shapes: Shape[] = [
      { decay: "none", C: 16, K: 16, V: 8 },
      { decay: "scalar", C: 48, K: 32, V: 16 },
      { decay: "scalar", C: 64, K: 64, V: 64 },
    ];
    checkStaged(shapes.flatMap(both), 43, 512);
  }, 900_000);

  it("the shipped K = V = 128 entries with a scalar decay (B = 1, H = 2, T = 100)", () => {
    checkStaged(both({ decay: "scalar", C: 64, K: 128, V: 128 }), 37);
  }, 900_000);

  it("deliberately broken copies fail: rows past T not zeroed; a block row a k-block short; TP a k-block short; NN's decay a slot early; BM's decay a slot early", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 16, V: 24 };
    expectBrokenCaught({ tin: "bf16", ...s, math: "tf32", staged: true }, () => makeCase(s, "bf16", 1, 40, 2, -1, 8), [
      // the zero fill of slots past T left out (the emulator's shared memory starts NaN)
      ["fwd", "else *(uint4*)d = make_uint4(0u, 0u, 0u, 0u);", "", "X"],
      // Tinv[r, 0:r] = Tinv[r, r] P without the diagonal block's first 8 columns
      ["fwd", "for (u32 k0 = 0u; k0 < 16u; k0 += 8u)", "for (u32 k0 = 8u; k0 < 16u; k0 += 8u)", "TI"],
      // TP without its first k-block (f = e's block)
      ["bwd", "for (u32 k0 = r0; k0 < n0 + 32u; k0 += 8u)", "for (u32 k0 = r0 + 8u; k0 < n0 + 32u; k0 += 8u)", "X"],
      // NN = Wd with exp(G[a]) for exp(G[a-1])
      ["bwd", "const float e = sE[a];", "const float e = sE[32u + a];", "NN"],
      // BM = Qd^T dY with eW for eQ
      ["bwd", "sE[32u + (k0 + tg)]", "sE[(k0 + tg)]", "BM"],
    ]);
  }, 300_000);

  it("configurations it does not take are refused", () => {
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 64, K: 64, V: 64, math: "tf32", staged: true }])).toThrow(/bf16 inputs/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 24, V: 16, math: "tf32", staged: true }])).toThrow(/multiples of 16/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "none", tin: "bf16", C: 64, K: 384, V: 384, math: "tf32", staged: true }])).toThrow(/shared memory/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", threads: 512 }])).toThrow(/staged form only/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", staged: true, threads: 48 }])).toThrow(/multiple of 32/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped staged twins (C = 64, K = V = 64 and 128; 256 and 512 threads) for sm_90; ptxas: no spills", () => {
    const m = deltaPrepModule(DELTA_PREP_MMA_CONFIGS.map((c) => staged(c)));
    expect(m.kernels.length).toBe(8);
    expect(m.kernels.map((k) => k.sharedBytes)).toEqual([72704, 74000, 72704, 74000, 105472, 106768, 105472, 106768]);
    expectNoSpills(m);
    expectNoSpills(deltaPrepModule(DELTA_PREP_MMA_CONFIGS.map((c) => staged(c, 512))));
  }, 200_000);
});
