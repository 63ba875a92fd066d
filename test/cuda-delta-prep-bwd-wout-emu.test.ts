/**
 * prep_bwd's bf16-output twins (compiler/backends/cuda/delta-prep-staged.ts, config `wout`: the operands of the bf16
 * reverse walk, delta-walk-bf16.ts) on the CPU emulation (test/cuda-emu/emu.h) against the staged twin they come from
 * (DELTA_PREP_MMA_CONFIGS' prep_bwd, itself checked against float64 by test/cuda-delta-prep-staged-emu and
 * -bf16-scores-emu) on the same inputs: M [N, C, K] bit for bit the twin's M rounded to bf16 (nearest even), NN^T
 * [N, K, C] the twin's NN transposed and rounded, X and BM the twin's rounded (wout "all") or bit for bit the twin's
 * (wout "mn"), A bit for bit; and every output within 1e-2 of float64 (test/helpers/delta-ref.ts). No decay and a scalar
 * one, small shapes (C = 16 / 32 / 48, K != V) at T = 1, ragged chunks and log decays down to -20, the shipped C = 64
 * shapes (K = V = 64, 128) at T = 100. Broken copies fail; nvcc -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay, type DeltaPrepKernel } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { buildEmu, expectNoSpills, gpp, makeCase, runEmu, type Case, type Shape } from "./helpers/delta-prep-emu.ts";
import { nChunks, prepAll, prepBwdChunk, prepFwdChunk } from "./helpers/delta-ref.ts";

if (!gpp) console.warn("cuda-delta-prep-bwd-wout-emu.test: g++ is not installed, so the emulated runs are skipped");

const twinOf = (s: Shape): DeltaPrepConfig<DeltaPrepDecay> => ({ op: "bwd", tin: "bf16", ...s, math: "tf32", staged: true, scores: "bf16" });

/** The first n bf16 words of an output buffer read back as float32 values (runEmu's float64 copy of the file's words). */
function halves(x: Float64Array, n: number): Uint16Array {
  return new Uint16Array(new Float32Array(x).buffer, 0, n);
}
const words = (x: Float64Array) => new Uint16Array(bf16(x).words.buffer.slice(bf16(x).words.byteOffset, bf16(x).words.byteOffset + 2 * x.length));
const bits32 = (x: Float64Array) => Buffer.from(new Float32Array(x).buffer);
const vals = (w: Uint16Array) => Float64Array.from(new Float32Array(Uint32Array.from(w, (v) => v << 16).buffer));

/** One case: the wout twin vs the staged twin (bit for bit, as the header says) and vs float64; returns the worst error
 * vs float64 (throws on a mismatch: the broken copies' test counts it as caught). */
function check(bin: string, k: DeltaPrepKernel<DeltaPrepDecay>, binT: string, kt: DeltaPrepKernel<DeltaPrepDecay>, cs: Case): number {
  const { s } = cs, { C, K, V } = s, N = s.B * s.H * nChunks(s);
  const fwd = prepAll(s, (b, h, c) => prepFwdChunk(cs.inp, s, b, h, c), cs.inp.perKey);
  const ti = Float64Array.from(new Float32Array(fwd.TI));
  const got = runEmu(bin, k, cs, ti), tw = runEmu(binT, kt, cs, ti);
  const NNt = new Float64Array(N * K * C);
  for (let n = 0; n < N; n++) for (let a = 0; a < C; a++) for (let i = 0; i < K; i++) NNt[(n * K + i) * C + a] = tw.NN[(n * C + a) * K + i];
  const same = (a: Uint16Array, b: Uint16Array) => a.length === b.length && a.every((v, i) => v === b[i]);
  const mine: Record<string, Float64Array> = { M: vals(halves(got.M, N * C * K)), NN: vals(halves(got.NN, N * K * C)) };
  if (!same(halves(got.M, N * C * K), words(tw.M))) throw new Error(`${k.entry} T=${s.T}: M is not the twin's rounded`);
  if (!same(halves(got.NN, N * K * C), words(NNt))) throw new Error(`${k.entry} T=${s.T}: NN^T is not the twin's NN transposed and rounded`);
  for (const [o, n] of [["X", N * C * V], ["BM", N * K * V]] as const) {
    if (o === "BM" && k.bmMma === "bf16") {
      // BM as bf16 mma (bmMma): the same exact products summed in the mma's order, not the TF32 twin's: float32 within
      // 1e-5 of the twin's (wout "mn"), bf16 words within one unit in the last place of the twin's rounded ("all")
      if (k.wout === "all") {
        const a = halves(got.BM, n), b = words(tw.BM);
        const far = a.findIndex((v, i) => Math.abs(v - b[i]) > 1 || ((v ^ b[i]) & 0x8000) !== 0 && v !== b[i]);
        if (far >= 0) throw new Error(`${k.entry} T=${s.T}: BM is not the twin's within one bf16 ulp (word ${far}: ${a[far]} vs ${b[far]})`);
        mine.BM = vals(a);
      } else {
        const e = relativeError(Float64Array.from(got.BM.subarray(0, n)), Float64Array.from(tw.BM.subarray(0, n)));
        if (!(e < 1e-5)) throw new Error(`${k.entry} T=${s.T}: BM is not the twin's within 1e-5 (${e})`);
        mine.BM = got.BM;
      }
      continue;
    }
    if (k.wout === "all") {
      if (!same(halves(got[o], n), words(tw[o]))) throw new Error(`${k.entry} T=${s.T}: ${o} is not the twin's rounded`);
      mine[o] = vals(halves(got[o], n));
    } else {
      if (!bits32(got[o]).equals(bits32(tw[o]))) throw new Error(`${k.entry} T=${s.T}: ${o} is not the twin's`);
      mine[o] = got[o];
    }
  }
  if (!bits32(got.A).equals(bits32(tw.A))) throw new Error(`${k.entry} T=${s.T}: A is not the twin's`);
  // vs float64
  const nC = nChunks(s), CC = C * C;
  const want = prepAll(s, (b, h, c) => prepBwdChunk(cs.inp, cs.dY, ti.subarray(((b * s.H + h) * nC + c) * CC, ((b * s.H + h) * nC + c + 1) * CC), s, b, h, c), cs.inp.perKey);
  const wNNt = new Float64Array(N * K * C);
  for (let n = 0; n < N; n++) for (let a = 0; a < C; a++) for (let i = 0; i < K; i++) wNNt[(n * K + i) * C + a] = want.NN[(n * C + a) * K + i];
  return Math.max(relativeError(mine.M, want.M), relativeError(mine.NN, wNNt), relativeError(mine.X, want.X), relativeError(mine.BM, want.BM));
}

function checkAll(shapes: Shape[], seed: number, wstore?: "quad", bmMma?: "bf16"): void {
  const twins = shapes.map(twinOf), mineCfg = (["mn", "all"] as const).flatMap((wout) => twins.map((c) => ({ ...c, wout, ...(wstore ? { wstore } : {}), ...(bmMma ? { bmMma } : {}) })));
  const twin = deltaPrepModule(twins), mine = deltaPrepModule(mineCfg);
  const binT = buildEmu(twin.source, twin.kernels), bin = buildEmu(mine.source, mine.kernels);
  const lines: string[] = [];
  mine.kernels.forEach((k, j) => {
    const kt = twin.kernels[j % twins.length];
    expect(k.entry).toBe(`${kt.entry}_${k.wout === "all" ? "wbx" : "wb"}${wstore ? "q" : ""}${bmMma ? "_bm16" : ""}`);
    expect(k.sharedBytes).toBe(kt.sharedBytes);
    const B = k.K === 128 ? 1 : 2;
    for (const [T, minLd] of k.C === 64 ? [[100, -1]] : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]) {
      const e = check(bin, k, binT, kt, makeCase(k, "bf16", B, T, 2, minLd, seed + T + k.K));
      lines.push(`${k.entry} T=${T} ld>=${minLd}: bit for bit the twin's rounded${bmMma ? " (BM within 1e-5 / one bf16 ulp)" : ""}; vs float64 ${e.toExponential(2)}`);
      expect(e, lines[lines.length - 1]).toBeLessThan(1e-2);
    }
  });
  console.log(lines.join("\n"));
}

describe.skipIf(!gpp)("prep_bwd's bf16-output twins on the CPU emulation", () => {
  it("small shapes (C = 16 / 32 / 48, K != V) and the shipped C = 64, K = V = 64 entries, no decay and a scalar one", () => {
    checkAll([
      { decay: "none", C: 16, K: 16, V: 8 },
      { decay: "scalar", C: 32, K: 16, V: 24 },
      { decay: "scalar", C: 48, K: 32, V: 16 },
      { decay: "none", C: 64, K: 64, V: 64 },
      { decay: "scalar", C: 64, K: 64, V: 64 },
    ], 71);
  }, 900_000);

  it("the shipped K = V = 128 entries with a scalar decay (B = 1, H = 2, T = 100)", () => {
    checkAll([{ decay: "scalar", C: 64, K: 128, V: 128 }], 73);
  }, 900_000);

  it("deliberately broken copies fail: NN^T's slots a pair off; the odd lanes' slots not put back; M stored at the wrong row; the decay of NN^T's second slot taken from the first", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 32, V: 24 };
    const twin = deltaPrepModule([twinOf(s)]), binT = buildEmu(twin.source, twin.kernels);
    const cases: [string, string][] = [
      ["const u32 a = a0 + 2u * (e ^ (p << 1u));", "const u32 a = a0 + 2u * ((e ^ (p << 1u)) ^ 1u);"],
      // (the odd lanes' pairs, read in the order 2, 3, 0, 1, not put back)
      ["p ? make_uint4(o[2], o[3], o[0], o[1])", "p ? make_uint4(o[0], o[1], o[2], o[3])"],
      ["((unsigned short*)M)[(size_t)n * 1024u + row * 32u + col]", "((unsigned short*)M)[(size_t)n * 1024u + (row ^ 1u) * 32u + col]"],
      ["hi = sE[(a + 1u)] * hi;", "hi = sE[a] * hi;"],
    ];
    for (const [from, to] of cases) {
      const m = deltaPrepModule([{ ...twinOf(s), wout: "all" }], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      const bin = buildEmu(m.source, m.kernels);
      expect(() => check(bin, m.kernels[0], binT, twin.kernels[0], makeCase(s, "bf16", 1, 40, 2, -1, 8)), from).toThrow(/is not the twin/);
    }
  }, 300_000);

  it("wstore \"quad\" (16-byte stores of the bf16 products after the quad's shuffles): bit for bit the same, small shapes (tiles 8 / 16 / 32 wide) and the shipped C = 64 entries", () => {
    checkAll([
      { decay: "scalar", C: 32, K: 32, V: 24 },
      { decay: "none", C: 48, K: 16, V: 32 },
      { decay: "none", C: 64, K: 64, V: 64 },
      { decay: "scalar", C: 64, K: 64, V: 64 },
    ], 75, "quad");
    checkAll([{ decay: "none", C: 64, K: 128, V: 128 }], 77, "quad");
  }, 900_000);

  it("wstore \"quad\": broken copies fail (a round's pair sent from the wrong slot; the pairs stored in the rounds' order)", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 32, V: 32 };
    const twin = deltaPrepModule([twinOf(s)]), binT = buildEmu(twin.source, twin.kernels);
    const cases: [string, string][] = [
      ["seqc_shfl_u32(seqc_sel4((tg + 3u) & 3u,", "seqc_shfl_u32(seqc_sel4((tg + 1u) & 3u,"],
      ["make_uint4(seqc_sel4(tg, v0, v3, v2, v1), seqc_sel4(tg, v1, v0, v3, v2), seqc_sel4(tg, v2, v1, v0, v3), seqc_sel4(tg, v3, v2, v1, v0))", "make_uint4(v0, v1, v2, v3)"],
    ];
    for (const [from, to] of cases) {
      const m = deltaPrepModule([{ ...twinOf(s), wout: "all", wstore: "quad" }], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      const bin = buildEmu(m.source, m.kernels);
      expect(() => check(bin, m.kernels[0], binT, twin.kernels[0], makeCase(s, "bf16", 1, 40, 2, -1, 8)), from).toThrow(/is not the twin/);
    }
  }, 300_000);

  it("bmMma \"bf16\" (BM = Q^T dY as bf16 mma m16n8k16 with ldmatrix.trans fragments), decay none, with and without quad stores", () => {
    checkAll([{ decay: "none", C: 32, K: 16, V: 32 }, { decay: "none", C: 64, K: 64, V: 64 }], 79, "quad", "bf16");
    checkAll([{ decay: "none", C: 48, K: 32, V: 64 }, { decay: "none", C: 64, K: 128, V: 128 }], 81, undefined, "bf16");
  }, 900_000);

  it("bmMma \"bf16\": broken copies fail (B's value subtiles swapped with its slot halves; A's key halves swapped with its slot halves)", () => {
    const s: Shape = { decay: "none", C: 32, K: 32, V: 64 };
    const twin = deltaPrepModule([twinOf(s)]), binT = buildEmu(twin.source, twin.kernels);
    const cases: [string, string][] = [
      ["(k0 + 8u * (lm & 1u) + lr) * 72u + n0 + 8u * (s + (lm >> 1u))", "(k0 + 8u * (lm >> 1u) + lr) * 72u + n0 + 8u * (s + (lm & 1u))"],
      ["(k0 + 8u * (lm >> 1u) + lr) * 40u + r0 + 8u * (lm & 1u)", "(k0 + 8u * (lm & 1u) + lr) * 40u + r0 + 8u * (lm >> 1u)"],
    ];
    for (const [from, to] of cases) for (const wout of ["mn", "all"] as const) {
      const m = deltaPrepModule([{ ...twinOf(s), wout, bmMma: "bf16" }], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      const bin = buildEmu(m.source, m.kernels);
      expect(() => check(bin, m.kernels[0], binT, twin.kernels[0], makeCase(s, "bf16", 1, 40, 2, -1, 8)), from).toThrow(/BM is not the twin/);
    }
  }, 300_000);

  it("configurations it does not take are refused", () => {
    expect(() => deltaPrepModule([{ op: "bwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", staged: true, wstore: "quad" }])).toThrow(/wstore/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "scalar", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", staged: true, scores: "bf16", wout: "all", bmMma: "bf16" }])).toThrow(/bmMma/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", staged: true, scores: "bf16", bmMma: "bf16" }])).toThrow(/bmMma/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", staged: true, wout: "mn" }])).toThrow(/wout/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", wout: "all" }])).toThrow(/wout/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped twins with wout (C = 64, K = V = 64 and 128, none / scalar, mn / all; 4-byte and quad stores) for sm_90 (and decay none's with BM as bf16 mma); ptxas: no spills", () => {
    const bwd = DELTA_PREP_MMA_CONFIGS.filter((c) => c.op === "bwd");
    const m = deltaPrepModule([undefined, "quad" as const].flatMap((wstore) => (["mn", "all"] as const).flatMap((wout) => bwd.map((c) => ({ ...c, wout, ...(wstore ? { wstore } : {}) }))))
      .concat(bwd.filter((c) => c.decay === "none").flatMap((c) => [{ ...c, wout: "all" as const, wstore: "quad" as const, bmMma: "bf16" as const }, { ...c, wout: "mn" as const, wstore: "quad" as const, bmMma: "bf16" as const }])));
    expect(m.kernels.length).toBe(20);
    expectNoSpills(m);
  }, 300_000);
});
