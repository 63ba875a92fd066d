/**
 * prep_bwd's per-key twin writing the bf16 walk's operands (compiler/backends/cuda/delta-prep-mma.ts with
 * delta-prep-key.ts, config wout "mn", entries <twin's entry>_wb; for delta-walk-bf16.ts DELTA_WALK_BF16_KEY_CONFIGS) on
 * the CPU emulation (test/cuda-emu/emu.h) against the twin it comes from (DELTA_PREP_KEY_MMA_CONFIGS' prep_bwd, itself
 * checked against float64 by test/cuda-delta-prep-key-emu) on the same inputs: M [N, C, K] bit for bit the twin's M
 * rounded to bf16 (nearest even), NN^T [N, K, C] the twin's NN transposed and rounded, X, BM and A [N, K] bit for bit
 * the twin's; and every output within 1e-2 of float64 (test/helpers/delta-ref.ts, per-key decay). Small shapes (C = 16 /
 * 32 / 48, K != V) at T = 1, ragged chunks and per-key log decays down to -20 a step, the shipped C = 64 shapes (K = V =
 * 64, 128) at T = 100. prep_fwd's twin with wout the same way (the forward walk's M, NN^T; TI, X, BM, A bit for bit).
 * Broken copies fail; nvcc -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_KEY_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay, type DeltaPrepKernel } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { buildEmu, expectNoSpills, gpp, makeCase, runEmu, type Case, type Shape } from "./helpers/delta-prep-emu.ts";
import { nChunks, prepAll, prepBwdChunk, prepFwdChunk } from "./helpers/delta-ref.ts";

if (!gpp) console.warn("cuda-delta-prep-key-wout-emu.test: g++ is not installed, so the emulated runs are skipped");

/** The per-key twin of a shape: the shipped twins' fields (tf32, batched loads). */
const twinOf = (s: Shape, op: "fwd" | "bwd" = "bwd"): DeltaPrepConfig<DeltaPrepDecay> => ({ op, tin: "bf16", ...s, decay: "key", math: "tf32", batched: true });

const halves = (x: Float64Array, n: number) => new Uint16Array(new Float32Array(x).buffer, 0, n);
const words = (x: Float64Array) => { const b = bf16(x).words; return new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + 2 * x.length)); };
const bits32 = (x: Float64Array) => Buffer.from(new Float32Array(x).buffer);
const vals = (w: Uint16Array) => Float64Array.from(new Float32Array(Uint32Array.from(w, (v) => v << 16).buffer));
const transpose = (x: Float64Array, N: number, C: number, K: number) => {
  const t = new Float64Array(N * K * C);
  for (let n = 0; n < N; n++) for (let a = 0; a < C; a++) for (let i = 0; i < K; i++) t[(n * K + i) * C + a] = x[(n * C + a) * K + i];
  return t;
};

/** One case: the wout twin vs the twin (bit for bit, as the header says; throws on a mismatch) and vs float64 (returned). */
function check(bin: string, k: DeltaPrepKernel<DeltaPrepDecay>, binT: string, kt: DeltaPrepKernel<DeltaPrepDecay>, cs: Case): number {
  const { s } = cs, { C, K, V } = s, N = s.B * s.H * nChunks(s);
  const fwd = prepAll(s, (b, h, c) => prepFwdChunk(cs.inp, s, b, h, c), cs.inp.perKey);
  const ti = Float64Array.from(new Float32Array(fwd.TI));
  const got = runEmu(bin, k, cs, ti), tw = runEmu(binT, kt, cs, ti), fw = k.op === "fwd";
  const same = (a: Uint16Array, b: Uint16Array) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (!same(halves(got.M, N * C * K), words(tw.M))) throw new Error(`${k.entry} T=${s.T}: M is not the twin's rounded`);
  if (!same(halves(got.NN, N * K * C), words(transpose(tw.NN, N, C, K)))) throw new Error(`${k.entry} T=${s.T}: NN^T is not the twin's NN transposed and rounded`);
  for (const o of fw ? (["TI", "X", "BM", "A"] as const) : (["X", "BM", "A"] as const)) if (!bits32(got[o]).equals(bits32(tw[o]))) throw new Error(`${k.entry} T=${s.T}: ${o} is not the twin's`);
  const nC = nChunks(s), CC = C * C;
  const want = fw ? fwd : prepAll(s, (b, h, c) => prepBwdChunk(cs.inp, cs.dY, ti.subarray(((b * s.H + h) * nC + c) * CC, ((b * s.H + h) * nC + c + 1) * CC), s, b, h, c), cs.inp.perKey);
  const M = vals(halves(got.M, N * C * K)), NNt = vals(halves(got.NN, N * K * C));
  void V;
  return Math.max(relativeError(M, want.M), relativeError(NNt, transpose(want.NN, N, C, K)), relativeError(got.X, want.X), relativeError(got.BM, want.BM), relativeError(got.A, want.A));
}

function checkAll(shapes: Shape[], seed: number, op: "fwd" | "bwd" = "bwd"): void {
  const twins = shapes.map((s) => twinOf(s, op)), mineCfg = twins.map((c) => ({ ...c, wout: "mn" as const }));
  const twin = deltaPrepModule(twins), mine = deltaPrepModule(mineCfg);
  const binT = buildEmu(twin.source, twin.kernels), bin = buildEmu(mine.source, mine.kernels);
  const lines: string[] = [];
  mine.kernels.forEach((k, j) => {
    const kt = twin.kernels[j];
    expect(k.entry).toBe(`${kt.entry}_wb`);
    expect(k.sharedBytes).toBe(kt.sharedBytes);
    const B = k.K === 128 ? 1 : 2;
    for (const [T, minLd] of k.C === 64 ? [[100, -1], [70, -20]] : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]) {
      const e = check(bin, k, binT, kt, makeCase(k, "bf16", B, T, 2, minLd, seed + T + k.K));
      lines.push(`${k.entry} T=${T} ld>=${minLd}: bit for bit the twin's rounded; vs float64 ${e.toExponential(2)}`);
      expect(e, lines[lines.length - 1]).toBeLessThan(1e-2);
    }
  });
  console.log(lines.join("\n"));
}

describe.skipIf(!gpp)("prep_bwd's per-key bf16-output twin on the CPU emulation", () => {
  it("small shapes (C = 16 / 32 / 48, K != V) and the shipped C = 64, K = V = 64 entry", () => {
    checkAll([
      { decay: "key", C: 16, K: 16, V: 8 },
      { decay: "key", C: 32, K: 16, V: 24 },
      { decay: "key", C: 48, K: 32, V: 16 },
      { decay: "key", C: 64, K: 64, V: 64 },
    ], 81);
  }, 900_000);

  it("the shipped K = V = 128 entry (B = 1, H = 2, T = 100 and 70)", () => {
    checkAll([{ decay: "key", C: 64, K: 128, V: 128 }], 83);
  }, 900_000);

  it("prep_fwd's per-key twin with wout (the forward walk's M, NN^T; TI, X, BM, A bit for bit): small shapes and the shipped K = V = 64 and 128 entries", () => {
    checkAll([
      { decay: "key", C: 16, K: 16, V: 8 },
      { decay: "key", C: 48, K: 32, V: 16 },
      { decay: "key", C: 64, K: 64, V: 64 },
      { decay: "key", C: 64, K: 128, V: 128 },
    ], 85, "fwd");
  }, 900_000);

  it("prep_fwd's broken copies fail: NN^T's slots and keys swapped; M's pair at the wrong row", () => {
    const s: Shape = { decay: "key", C: 32, K: 32, V: 24 };
    const twin = deltaPrepModule([twinOf(s, "fwd")]), binT = buildEmu(twin.source, twin.kernels);
    for (const [from, to] of [
      ["const u32 a = x % 32u, i = x / 32u;", "const u32 i = x % 32u, a = x / 32u;"],
      ["((unsigned short*)M)[(size_t)n * 1024u + row * 32u + col]", "((unsigned short*)M)[(size_t)n * 1024u + (row ^ 1u) * 32u + col]"],
    ]) {
      const m = deltaPrepModule([{ ...twinOf(s, "fwd"), wout: "mn" }], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      const bin = buildEmu(m.source, m.kernels);
      expect(() => check(bin, m.kernels[0], binT, twin.kernels[0], makeCase(s, "bf16", 1, 40, 2, -1, 8)), from).toThrow(/is not the twin/);
    }
  }, 300_000);

  it("deliberately broken copies fail: NN^T's second key a slot off; M stored at the wrong row; the third key's value the fourth's", () => {
    const s: Shape = { decay: "key", C: 32, K: 32, V: 24 };
    const twin = deltaPrepModule([twinOf(s)]), binT = buildEmu(twin.source, twin.kernels);
    const cases: [string, string][] = [
      ["nt[32u] = (unsigned short)(p0 >> 16);", "nt[33u] = (unsigned short)(p0 >> 16);"],
      ["((unsigned short*)M)[(size_t)n * 1024u + row * 32u + col]", "((unsigned short*)M)[(size_t)n * 1024u + (row ^ 1u) * 32u + col]"],
      ["nt[64u] = (unsigned short)(p1 & 0xffffu);", "nt[64u] = (unsigned short)(p1 >> 16);"],
    ];
    for (const [from, to] of cases) {
      const m = deltaPrepModule([{ ...twinOf(s), wout: "mn" }], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      const bin = buildEmu(m.source, m.kernels);
      expect(() => check(bin, m.kernels[0], binT, twin.kernels[0], makeCase(s, "bf16", 1, 40, 2, -1, 8)), from).toThrow(/is not the twin/);
    }
  }, 300_000);

  it("configurations it does not take are refused", () => {
    expect(() => deltaPrepModule([{ ...twinOf({ decay: "key", C: 64, K: 64, V: 64 }), wout: "all" }])).toThrow(/wout/);
    expect(() => deltaPrepModule([{ ...twinOf({ decay: "key", C: 64, K: 64, V: 64 }), math: undefined, batched: undefined, wout: "mn" }])).toThrow(/wout/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "scalar", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", wout: "mn" }])).toThrow(/wout/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped per-key twins with wout (prep_fwd and prep_bwd, C = 64, K = V = 64 and 128) for sm_90; ptxas: no spills", () => {
    const m = deltaPrepModule(DELTA_PREP_KEY_MMA_CONFIGS.map((c) => ({ ...c, wout: "mn" as const })));
    expect(m.kernels.map((k) => k.entry).sort()).toEqual(["fwd", "bwd"].flatMap((op) => [64, 128].map((K) => `seqc_delta_prep_${op}_key_c64k${K}v${K}_bf16_tf32_wb`)).sort());
    expectNoSpills(m);
  }, 300_000);
});
