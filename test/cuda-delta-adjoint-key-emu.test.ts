/**
 * The delta backward's adjoint kernel with a per-key log decay (compiler/backends/cuda/delta-adjoint-key.ts, RWKV-7:
 * ld [B, T, H, K]) on the CPU emulation of CUDA (test/cuda-emu/emu.h) against test/helpers/delta-ref.ts's float64
 * `adjoint` with `perKey` (adjointPerKey; tmp/s13/delta_ref_key.py checks those formulas against autograd): dq, du, dw,
 * dk, dv and dld [B, T, H, K] from random q, u, w, k, v, dy (float32, or bf16 words with the reference taking the rounded
 * values), R, S0, SF, LE, DR (float32, any values: the formulas are what is checked). B = 2, H = 3, T = 100 (a ragged
 * second chunk: its R / DR rows past T hold random values the kernel must not let through) and T = 1, log decays a key
 * in [-0.3, 0], [-20, 0] (no NaN / Inf: every exp of the kernel is of a difference <= 0) and [-5, 0], each a multiple of
 * 2^-10 so that the kernel's fp32 prefix sums G are exact (the reference sums in float64). Within 1e-5 relative (L2).
 * Also RWKV-7's range, ld in [-0.6065, 0] as any fp32 values (G's sums rounded), within 1e-5.
 * Deliberately broken copies must fail: the factors between tiles from the wrong slot, the key scores' diagonal
 * tiles with f <= a on the r side, the r side's own tiles decayed from G[a], dk's own-row factor left out, dx's
 * between-tile factor always the first tile's, x~ from the wrong reference, dld's suffix without w dw, aC a partial short.
 * nvcc -cubin for sm_90 (where installed): no spills.
 * The TF32 twin (delta-adjoint-key-mma.ts, bf16 inputs) with the TF32 rounding and the m16n8k8 fragments emulated
 * (test/cuda-emu/mma-tf32.h; __expf is expf here): the same cases within 1e-3 and above 1e-5 (the rounding shows).
 * Broken twins must fail: the key scores' and dx's factors between 16-slot blocks always block 0's, dk's own-row factor
 * Y left out, the y side's diagonal products without f = a, the second row group's dk sums not added, the r side's
 * diagonal key scores' f = a left unzeroed, the y side's f = a entries on every other row, x~ from the half block's
 * start, dld without w dw, dld's suffix a segment short. nvcc -cubin sm_90: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DELTA_ADJ_PRELUDE } from "../compiler/backends/cuda/delta-adjoint.ts";
import { DELTA_ADJ_KEY_CONFIGS, deltaAdjKeyKernel, deltaAdjKeySource, type DeltaAdjKeyKernel } from "../compiler/backends/cuda/delta-adjoint-key.ts";
import { DELTA_ADJ_KEY_MMA_CONFIGS, deltaAdjKeyMmaKernel, deltaAdjKeyMmaSource, type DeltaAdjKeyMmaKernel } from "../compiler/backends/cuda/delta-adjoint-key-mma.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { adjoint, nChunks, type DeltaGrads, type DeltaInputs, type DeltaShape } from "./helpers/delta-ref.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-adjoint-key-emu.test: g++ is not installed, so the emulated runs are skipped");

const TOK = ["Q", "U", "W", "KK", "VV", "DY"] as const;
const FILES = [...TOK, "LD", "R", "S0", "SF", "LE", "DR", "dQ", "dU", "dW", "dK", "dV", "dLD"] as const;

/** An emulator executable: argv dir, entry, B, T, H, threads, smem, blocks; reads dir/<FILES[i]>.bin, writes the outputs' .out. */
function buildEmu(kernels: DeltaAdjKeyKernel[], patch?: (src: string) => string): string {
  const mma = kernels.some((k) => "math" in k);
  let source = DELTA_ADJ_PRELUDE + kernels.map((k) => ("math" in k ? deltaAdjKeyMmaSource(k as DeltaAdjKeyMmaKernel) : deltaAdjKeySource(k))).join("");
  if (patch) {
    const before = source;
    source = patch(source);
    expect(source, "the patch changed nothing").not.toBe(before);
  }
  const tramp = kernels.map((k) => {
    const T = k.tin === "f32" ? "float" : "unsigned short";
    const args = [...TOK.map((_, i) => `(const ${T}*)P[${i}]`), "(const float*)P[6]", ...[7, 8, 9, 10, 11].map((i) => `(const float*)P[${i}]`),
      "BB", "TT", "HH", ...[12, 13, 14, 15, 16, 17].map((i) => `(float*)P[${i}]`)];
    return `static void body_${k.entry}() { ${k.entry}(${args.join(", ")}); }`;
  });
  const main = `
static void* P[${FILES.length}]; static int BB, TT, HH;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  BB = atoi(argv[3]); TT = atoi(argv[4]); HH = atoi(argv[5]);
  unsigned threads = (unsigned)atoi(argv[6]), smem = (unsigned)atoi(argv[7]), blocks = (unsigned)atoi(argv[8]);
  const char* names[${FILES.length}] = {${FILES.map((f) => `"${f}"`).join(", ")}};
  std::vector<char> b[${FILES.length}];
  for (int i = 0; i < ${FILES.length}; ++i) { b[i] = readf(dir + "/" + names[i] + ".bin"); P[i] = b[i].data(); }
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = blocks; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  for (int i = 12; i < ${FILES.length}; ++i) { FILE* f = fopen((dir + "/" + names[i] + ".out").c_str(), "wb"); fwrite(b[i].data(), 1, b[i].size(), f); fclose(f); }
  return 0;
}
`;
  return compileLowRankEmu(source, main, mma ? "delta-adjoint-key-mma" : "delta-adjoint-key", mma);
}

interface Data { s: DeltaShape; inp: DeltaInputs; dY: Float64Array; R: Float64Array; S0: Float64Array; SF: Float64Array; LE: Float64Array; DR: Float64Array; words: Record<string, Buffer> | null }

/** Random inputs, per-token ones rounded to bf16 for tin "bf16"; log decays a key, multiples of 2^-10 in [minLd, 0]. */
function data(k: DeltaAdjKeyKernel, T: number, minLd: number, seed: number, dyadic = true): Data {
  const s: DeltaShape = { B: 2, T, H: 3, K: k.K, V: k.V, C: k.C };
  const r = rng(seed), f = Math.fround, N = s.B * s.H * nChunks(s), BTH = s.B * T * s.H;
  const n = (m: number, scale: number) => Float64Array.from({ length: m }, () => f(scale * 2 * r()));
  const raw = { q: n(BTH * s.K, 1), u: n(BTH * s.K, 1 / Math.sqrt(s.K)), w: n(BTH * s.K, 1 / Math.sqrt(s.K)), k: n(BTH * s.K, 1), v: n(BTH * s.V, 1), dy: n(BTH * s.V, 1) };
  const ld = Float64Array.from({ length: BTH * s.K }, () => (dyadic ? -Math.round((r() + 0.5) * -minLd * 1024) / 1024 : f((r() + 0.5) * minLd)));
  let words: Record<string, Buffer> | null = null;
  const vals: Record<string, Float64Array> = { ...raw };
  if (k.tin === "bf16") {
    words = {};
    for (const [name, x] of Object.entries(raw)) { const b = bf16(x); vals[name] = b.values; words[name] = b.words; }
  }
  const inp: DeltaInputs = { q: vals.q, u: vals.u, w: vals.w, k: vals.k, v: vals.v, ld, S: null, perKey: true };
  return { s, inp, dY: vals.dy, R: n(N * s.C * s.V, 1), S0: n(N * s.K * s.V, 1), SF: n(s.B * s.H * s.K * s.V, 1), LE: n(N * s.K * s.V, 1), DR: n(N * s.C * s.V, 1), words };
}

const OUTS = ["dq", "du", "dw", "dk", "dv", "dld"] as const;

function runEmu(bin: string, k: DeltaAdjKeyKernel, d: Data): DeltaGrads {
  return inScratchDir("seqc-dadjk-", (dir) => {
    const { s, inp } = d, BTH = s.B * s.T * s.H;
    const tok: Record<string, Float64Array> = { Q: inp.q, U: inp.u, W: inp.w, KK: inp.k, VV: inp.v, DY: d.dY };
    const wordName: Record<string, string> = { Q: "q", U: "u", W: "w", KK: "k", VV: "v", DY: "dy" };
    for (const name of TOK) writeFileSync(join(dir, `${name}.bin`), d.words ? d.words[wordName[name]] : f32Bytes(tok[name]));
    writeFileSync(join(dir, "LD.bin"), f32Bytes(inp.ld!));
    for (const [name, x] of Object.entries({ R: d.R, S0: d.S0, SF: d.SF, LE: d.LE, DR: d.DR })) writeFileSync(join(dir, `${name}.bin`), f32Bytes(x));
    for (const [name, w] of [["dQ", s.K], ["dU", s.K], ["dW", s.K], ["dK", s.K], ["dV", s.V], ["dLD", s.K]] as const) writeFileSync(join(dir, `${name}.bin`), f32Bytes(new Float64Array(BTH * w).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(s.B), String(s.T), String(s.H), String(k.threads), String(k.sharedBytes), String(s.B * s.H * nChunks(s))], { stdio: "pipe" });
    const read = (name: string) => readF32(join(dir, `${name}.out`));
    return { dq: read("dQ"), du: read("dU"), dw: read("dW"), dk: read("dK"), dv: read("dV"), dld: read("dLD") };
  });
}

/** Each output's relative error against float64; non-finite outputs fail, or (`broken`) count as an infinite error. */
function errors(bin: string, k: DeltaAdjKeyKernel, d: Data, broken = false): Record<string, number> {
  const want = adjoint(d.inp, d.dY, d.R, d.S0, d.SF, d.LE, d.DR, d.s), got = runEmu(bin, k, d);
  const e: Record<string, number> = {};
  for (const o of OUTS) {
    const g = got[o]!, w = want[o]!;
    expect(g.length, `${o} length`).toBe(w.length);
    const finite = g.every(Number.isFinite);
    if (!broken) expect(finite, `${k.entry} ${o}: finite`).toBe(true);
    e[o] = finite ? relativeError(g, w) : Infinity;
  }
  return e;
}

const fmt = (e: Record<string, number>) => Object.entries(e).map(([o, x]) => `${o} ${x.toExponential(2)}`).join(", ");
const worst = (e: Record<string, number>) => Math.max(...Object.values(e));

function brokenError(k: DeltaAdjKeyKernel, d: Data, from: string, to: string, which: string, nth = 0): number {
  const bin = buildEmu([k], (src) => {
    let at = -1;
    for (let i = 0; i <= nth; i++) at = src.indexOf(from, at + 1);
    expect(at, `"${from}" #${nth}`).toBeGreaterThanOrEqual(0);
    return src.slice(0, at) + to + src.slice(at + from.length);
  });
  return errors(bin, k, d, true)[which];
}

describe.skipIf(!gpp)("the delta backward's adjoint kernel with a per-key decay on the CPU emulation vs float64", () => {
  const kernels = DELTA_ADJ_KEY_CONFIGS.map(deltaAdjKeyKernel);

  it("the configurations: entries, threads, shared memory", () => {
    expect(kernels.map((k) => [k.entry, k.threads, k.sharedBytes])).toEqual(["f32", "bf16"].map((x) => [`seqc_delta_adj_key_c64k64v64_${x}`, 256, 184832]));
  });

  it("both entries at C = K = V = 64: T = 100 (ragged) and T = 1, decays a key in [-0.3, 0], [-20, 0], [-5, 0], within 1e-5", () => {
    const bin = buildEmu(kernels);
    kernels.forEach((k, i) => {
      for (const [T, minLd] of [[100, -0.3], [100, -20], [1, -5]]) {
        const e = errors(bin, k, data(k, T, minLd, 17 + T + i));
        console.log(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
        expect(worst(e), `${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-5);
      }
    });
  }, 900_000);

  it("RWKV-7's range of log decays, ld a key in [-0.6065, 0] as any fp32 values (G's fp32 sums rounded): within 1e-5", () => {
    const bin = buildEmu(kernels);
    kernels.forEach((k, i) => {
      const e = errors(bin, k, data(k, 100, -0.6065, 41 + i, false));
      console.log(`${k.entry} T=100 ld>=-0.6065 (not dyadic): ${fmt(e)}`);
      expect(worst(e), fmt(e)).toBeLessThan(1e-5);
    });
  }, 600_000);

  it("deliberately broken copies fail", () => {
    const k = kernels[0], d = data(k, 100, -0.3, 5);
    // the factors between tiles from the wrong slot: exp(G[4 ta - 1] - G[4 tf + 2]) (the key scores: dv)
    expect(brokenError(k, d, "sG[(4u * tf + 4u) * 64u + (i)]", "sG[(4u * tf + 3u) * 64u + (i)]", "dv")).toBeGreaterThan(1e-2);
    // the r side's diagonal score tiles (Luk) with f <= a
    expect(brokenError(k, d, "if (f < a + 0u && a < nv) {", "if (f <= a + 0u && a < nv) {", "dv")).toBeGreaterThan(1e-2);
    // dk += A^T x: the other tiles' sum without the output row's own factor exp(G[4 oti + 3] - G[f])
    expect(brokenError(k, d, "dk[p][j] = fmaf(tp[p][j], expf(sG[(4u * oti + 4u) * 64u + (4u * otj + j)] - sG[(4u * oti + p + 1u) * 64u + (4u * otj + j)]), dk[p][j]);", "dk[p][j] += tp[p][j];", "dk")).toBeGreaterThan(1e-2);
    // dx += A k: the factor between tiles always the first tile's, exp(G[4 oti - 1] - G[3])
    expect(brokenError(k, d, "(((oti) * ((oti) - 1u)) >> 1u) + (m0 >> 2u))", "(((oti) * ((oti) - 1u)) >> 1u))", "dq")).toBeGreaterThan(1e-2);
    // the r side's own tiles (dw, dk, du) decayed from G[a] instead of G[a - 1]
    expect(brokenError(k, d, "const float e = expf(sG[(a + 0u)", "const float e = expf(sG[(a + 1u)", "dw")).toBeGreaterThan(1e-2);
    // x~ (q's first column of each 4) scaled from the previous slot instead of the tile's start
    expect(brokenError(k, d, "(a & ~3u)", "(a)", "dk")).toBeGreaterThan(1e-2);
    // dld's suffix sums without w dw
    expect(brokenError(k, d, "s += tm + sF[4096u + a * 64u + i];", "s += tm;", "dld")).toBeGreaterThan(1e-2);
    // aC without its first 4 columns' partial
    expect(brokenError(k, d, "for (u32 j4 = 0; j4 < 16u; ++j4) s += sF", "for (u32 j4 = 1u; j4 < 16u; ++j4) s += sF", "dld")).toBeGreaterThan(1e-2);
  }, 600_000);

  it("configurations that do not fit are refused", () => {
    expect(() => deltaAdjKeyKernel({ decay: "key", tin: "f32", C: 64, K: 64, V: 32 })).toThrow(/must equal/);
    expect(() => deltaAdjKeyKernel({ decay: "key", tin: "f32", C: 64, K: 128, V: 128 })).toThrow(/six-slot plan/);
    expect(() => deltaAdjKeyKernel({ decay: "key", tin: "f32", C: 64, K: 10, V: 10 })).toThrow(/multiples of 4/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles both entries for sm_90; ptxas: no spills", () => {
    const src = DELTA_ADJ_PRELUDE + kernels.map(deltaAdjKeySource).join("");
    for (const [e, u] of ptxasUsage(findNvcc()!, src, kernels.map((k) => k.entry))) {
      console.log(`${e}: ${u.registers} registers`);
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
    }
  }, 200_000);
});

describe.skipIf(!gpp)("the per-key adjoint's TF32 twin (bf16 inputs) on the CPU emulation with TF32 rounding vs float64", () => {
  const twins = DELTA_ADJ_KEY_MMA_CONFIGS.map(deltaAdjKeyMmaKernel);

  it("the configuration: entry, threads, shared memory", () => {
    expect(twins.map((k) => [k.entry, k.threads, k.sharedBytes, k.math])).toEqual([["seqc_delta_adj_key_c64k64v64_bf16_tf32", 512, 221184, "tf32"]]);
  });

  it("T = 100 (ragged) and T = 1, decays a key in [-0.3, 0], [-20, 0], [-5, 0] and RWKV-7's [-0.6065, 0] (any fp32): within 1e-3, above 1e-5 (the rounding shows)", () => {
    const bin = buildEmu(twins);
    for (const k of twins) {
      for (const [T, minLd, dyadic] of [[100, -0.3, true], [100, -20, true], [1, -5, true], [100, -0.6065, false]] as const) {
        const e = errors(bin, k, data(k, T, minLd, 23 + T, dyadic));
        console.log(`${k.entry} T=${T} ld>=${minLd}${dyadic ? "" : " (not dyadic)"}: ${fmt(e)}`);
        expect(worst(e), `${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-3);
        if (T > 1) expect(worst(e), `${k.entry} T=${T}: TF32 rounding visible`).toBeGreaterThan(1e-5);
      }
    }
  }, 900_000);

  it("deliberately broken twins fail", () => {
    const k = twins[0], d = data(k, 100, -0.3, 7);
    const b = (from: string, to: string, which: string, nth = 0) => brokenError(k, d, from, to, which, nth);
    // the key scores' factor between blocks always from block 0 (Pk: dv)
    expect(b("+ (bf)) * 64u + (8u * ks + tg)]", "+ (0u)) * 64u + (8u * ks + tg)]", "dv")).toBeGreaterThan(1e-2);
    // dx += A k^: the factor between blocks always from block 0 (dq)
    expect(b("+ (ks >> 1u)) * 64u + (n0 + g)]", "+ (0u)) * 64u + (n0 + g)]", "dq")).toBeGreaterThan(1e-2);
    // dk += Y (A^T x~): the output row's own factor Y left out
    expect(b("dk[j][2u * hh + e1] = fmaf(tp[j][2u * hh + e1], __expf(", "dk[j][2u * hh + e1] = fmaf(tp[j][2u * hh + e1], 1.f + 0.f * (", "dk")).toBeGreaterThan(1e-2);
    // the y side's diagonal blocks of dx / dk / du without f = a (the r side's A, B are zero there already)
    expect(b("if (pf < (q < 4u ? q : q + 8u) + 1u) {", "if (pf < (q < 4u ? q : q + 8u) + 0u) {", "dq")).toBeGreaterThan(1e-2);
    // the y side's second row group's dk sums (Dk2) not added: Dk added twice instead
    expect(b("*(const float2*)&sS5[", "*(const float2*)&sS2[", "dk")).toBeGreaterThan(1e-2);
    // the r side's diagonal key scores (Luk): the diagonal f = a not zeroed (the y side's values left there)
    expect(b("if (f >= a + 0u) sS4[", "if (f > a + 0u) sS4[", "dv")).toBeGreaterThan(1e-2);
    // the y side's diagonal key scores f = a (x_a . k_a) on every other row only
    expect(b("a < 2u * (t - 480u) + 2u; ++a)", "a < 2u * (t - 480u) + 1u; ++a)", "dv")).toBeGreaterThan(1e-2);
    // x~ scaled from the 8-slot half block's start instead of the 16-slot block's
    expect(b("(a & ~15u)", "(a & ~7u)", "dk")).toBeGreaterThan(1e-2);
    // dld's suffix sums without w dw
    expect(b("s += tm + sF[4096u + a * 64u + i];", "s += tm;", "dld")).toBeGreaterThan(1e-2);
    // dld's suffix a segment of rows short
    expect(b("for (u32 q = sg + 1u;", "for (u32 q = sg + 2u;", "dld")).toBeGreaterThan(1e-2);
  }, 900_000);

  it("configurations it does not cover are refused", () => {
    expect(() => deltaAdjKeyMmaKernel({ decay: "key", tin: "f32", C: 64, K: 64, V: 64, math: "tf32" })).toThrow(/bf16 inputs only/);
    expect(() => deltaAdjKeyMmaKernel({ decay: "key", tin: "bf16", C: 64, K: 128, V: 128, math: "tf32" })).toThrow(/C = K = V = 64/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the twin for sm_90; ptxas: no spills", () => {
    const src = DELTA_ADJ_PRELUDE + twins.map(deltaAdjKeyMmaSource).join("");
    for (const [e, u] of ptxasUsage(findNvcc()!, src, twins.map((k) => k.entry))) {
      console.log(`${e}: ${u.registers} registers`);
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
    }
  }, 200_000);
});
