/**
 * The staged prep twins with their score products as bf16 mma m16n8k16 (compiler/backends/cuda/delta-prep-staged.ts,
 * config `scores: "bf16"`; the shipped twins' since H200 call C2b) on the CPU emulation (test/cuda-emu/emu.h: emu_mma's
 * m16n8k16 fragments; the other products TF32 as test/cuda-emu/mma-tf32.h) against the staged TF32 twin and the float64
 * reference (test/helpers/delta-ref.ts). The scores' operands are bf16 rows, exact in either mma, so only the order of
 * the fp32 sums changes: the outputs that do not read a score (prep_fwd's BM, NN, A; prep_bwd's M, BM, NN, A) are bit
 * for bit the twin's; TI (Tinv, from Luu with fp32 accuracy) within 1e-5 of the twin's; every output within 2e-3 of
 * float64 and within 2 x the twin's error + 1e-5. Broken copies must fail; nvcc -cubin for sm_90 where installed: no
 * spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { buildEmu, errors, expectBrokenCaught, expectNoSpills, fmt, gpp, makeCase, runEmu, worst, type Shape } from "./helpers/delta-prep-emu.ts";
import { prepAll, prepFwdChunk } from "./helpers/delta-ref.ts";
import { relativeError } from "../compiler/io/manifest.ts";

if (!gpp) console.warn("cuda-delta-prep-bf16-scores-emu.test: g++ is not installed, so the emulated runs are skipped");

const staged = (c: DeltaPrepConfig<DeltaPrepDecay>): DeltaPrepConfig<DeltaPrepDecay> => ({ ...c, tin: "bf16", math: "tf32", staged: true });
const both = (s: Shape): DeltaPrepConfig<DeltaPrepDecay>[] => (["fwd", "bwd"] as const).map((op) => staged({ op, tin: "bf16", ...s }));
const NO_SCORES = { fwd: ["BM", "NN", "A"], bwd: ["M", "BM", "NN", "A"] } as const;

function checkBf16Scores(configs: readonly DeltaPrepConfig<DeltaPrepDecay>[], seed: number): void {
  const twin = deltaPrepModule(configs), mine = deltaPrepModule(configs.map((c) => ({ ...c, scores: "bf16" as const })));
  expect(mine.kernels.map((k) => [k.entry, k.sharedBytes])).toEqual(twin.kernels.map((k) => [k.entry, k.sharedBytes]));
  const binT = buildEmu(twin.source, twin.kernels), binB = buildEmu(mine.source, mine.kernels);
  const lines: string[] = [];
  mine.kernels.forEach((k, i) => {
    const B = k.K === 128 ? 1 : 2;
    for (const [T, minLd] of k.C === 64 ? [[100, -1]] : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]) {
      const cs = () => makeCase(k, "bf16", B, T, 2, minLd, seed + T + k.K);
      const eb = errors(binB, k, cs()), et = errors(binT, twin.kernels[i], cs());
      const c0 = cs(), s = c0.s;
      const ti = Float64Array.from(new Float32Array(prepAll(s, (b, h, c) => prepFwdChunk(c0.inp, s, b, h, c), c0.inp.perKey).TI));
      const a = runEmu(binB, k, c0, ti), b = runEmu(binT, twin.kernels[i], c0, ti);
      const tiVsTwin = k.op === "fwd" ? relativeError(a.TI, b.TI) : 0;
      const line = `${k.entry} (C ${k.C}, K ${k.K}, V ${k.V}) T=${T} ld>=${minLd}: bf16 scores ${fmt(eb)}; twin worst ${worst(et).toExponential(2)}; TI vs twin ${tiVsTwin.toExponential(2)}`;
      lines.push(line);
      expect(worst(eb), line).toBeLessThan(2e-3);
      expect(worst(eb), `${line}: vs the twin`).toBeLessThan(2 * worst(et) + 1e-5);
      expect(tiVsTwin, `${line}: TI vs the twin's`).toBeLessThan(1e-5);
      for (const o of NO_SCORES[k.op]) expect(Buffer.from(a[o].buffer).equals(Buffer.from(b[o].buffer)), `${line}: ${o} as the twin's`).toBe(true);
    }
  });
  console.log(lines.join("\n"));
}

describe.skipIf(!gpp)("prep's staged twins with bf16 mma scores on the CPU emulation", () => {
  it("small shapes (C = 16 / 32 / 48, K != V) and the shipped C = 64, K = V = 64 entries, no decay and a scalar one", () => {
    const shapes: Shape[] = [
      { decay: "none", C: 16, K: 16, V: 8 },
      { decay: "scalar", C: 32, K: 16, V: 24 },
      { decay: "scalar", C: 48, K: 32, V: 16 },
      { decay: "none", C: 64, K: 64, V: 64 },
      { decay: "scalar", C: 64, K: 64, V: 64 },
    ];
    checkBf16Scores(shapes.flatMap(both), 53);
  }, 900_000);

  it("the shipped K = V = 128 entries with a scalar decay (B = 1, H = 2, T = 100)", () => {
    checkBf16Scores(both({ decay: "scalar", C: 64, K: 128, V: 128 }), 59);
  }, 900_000);

  it("deliberately broken copies fail: A's second k-half from the first; B's second k-half from the first; B's tiles a row off; a score tile's k-blocks cut short", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 32, V: 24 };
    expectBrokenCaught({ tin: "bf16", ...s, math: "tf32", staged: true, scores: "bf16" }, () => makeCase(s, "bf16", 1, 40, 2, -1, 8), [
      ["fwd", "fa[2] = *(const u32*)&hW[(r0 + g) * 40u + k0 + 2u * tg + 8u]", "fa[2] = *(const u32*)&hW[(r0 + g) * 40u + k0 + 2u * tg]", "TI"],
      ["bwd", "fb[1] = *(const u32*)&hU[(n0 + 8u * s + g) * 40u + k0 + 2u * tg + 8u]", "fb[1] = *(const u32*)&hU[(n0 + 8u * s + g) * 40u + k0 + 2u * tg]", "X"],
      ["bwd", "fb[0] = *(const u32*)&hU[(n0 + 8u * s + g) * 40u", "fb[0] = *(const u32*)&hU[(n0 + 8u * s + (g + 1u) % 8u) * 40u", "X"],
      ["fwd", "for (u32 k0 = 0u; k0 < (n0 > r0 + 15u ? 0u : 32u); k0 += 16u)", "for (u32 k0 = 0u; k0 < (n0 > r0 + 15u ? 0u : 16u); k0 += 16u)", "TI"],
    ]);
  }, 300_000);

  it("configurations it does not take are refused; the shipped twins' scores are bf16 mma (H200 call C2b)", () => {
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", scores: "bf16" }])).toThrow(/staged form only/);
    expect(DELTA_PREP_MMA_CONFIGS.every((c) => c.staged && c.scores === "bf16")).toBe(true);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped staged twins with bf16 scores (C = 64, K = V = 64 and 128) for sm_90; ptxas: no spills", () => {
    const m = deltaPrepModule(DELTA_PREP_MMA_CONFIGS);
    expect(m.kernels.length).toBe(8);
    expect(m.source).toContain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
    expectNoSpills(m);
  }, 200_000);
});
