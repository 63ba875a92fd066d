/**
 * The rows readout in the chunked form on tensor cores (compiler/backends/cuda/rows-chunk.ts; the torch target's GLA
 * transposed cores in the bf16 step, runtime/torch/seqc_chunked.py ROWS_FORM "chunk") on the CPU emulation of CUDA
 * (test/cuda-emu/emu.h: mma.sync and ldmatrix as the PTX ISA lays out their fragments) against a float64 walk of
 *   S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T,  out_t = S_t c_t
 * at the values the kernel reads (b, c and a bf16 entry's a rounded to bf16): T = 1, T within a chunk, T past several
 * chunks and not a multiple of 64, B and H > 1, K and V below 64 and at 64, initial states, log decays down to -20 per
 * step (the diagonal sub-chunks' pairwise form) and mild ones (their quotient form), every entry. Broken twins (the
 * state's low bf16 word dropped, the diagonal's own token left out) fail. Reversed time (rev, RC_REV_BITS): every entry
 * run on the forward-stored tensors with all five bits gives bitwise the run on the flipped tensors with the shifted,
 * reversed decays (its output flipped back); twins that drop the decays' shift or the output's bit fail. nvcc -cubin for
 * sm_90: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROWS_CHUNK_CONFIGS, rowsChunkModule, type RowsChunkConfig, type RowsChunkKernel } from "../compiler/backends/cuda/rows-chunk.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { rng } from "./helpers/random.ts";
import { type Case, type Data, data, flipT, reference, REV_ALL, shiftRev } from "./helpers/rows-chunk-emu.ts";
import { bf16 } from "./helpers/bf16-round.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-rows-chunk-emu.test: g++ is not installed, so the emulated runs are skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

/** An emulator executable for the module's entries: argv[1] a directory with launch.txt (entry, grid, threads, shared,
 * then B T H K V init rev) and ld, a, b, c, S0, o as raw buffers; runs the one launch and writes o.out. */
function buildEmu(source: string, kernels: RowsChunkKernel[]): string {
  const extra = (k: RowsChunkKernel) => (k.terms ? `, (const float*)BUF["dq"].data(), (const seqc_bf16*)BUF["kk"].data(), (float*)BUF["terms"].data()${k.scan ? `, BUF["carry"].size() > 4 ? (const float*)BUF["carry"].data() : nullptr` : ""}` : "");
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)BUF["ld"].data(), (${k.lowA ? "const seqc_bf16*" : "const float*"})BUF["a"].data(), (const seqc_bf16*)BUF["b"].data(), (const seqc_bf16*)BUF["c"].data(), (const float*)BUF["S0"].data(), (${k.terms ? "seqc_bf16" : "float"}*)BUF["o"].data(), U[0], U[1], U[2], U[3], U[4], U[5], U[6]${extra(k)}); }`);
  const main = `
#include <map>
static std::map<std::string, std::vector<char>> BUF; static unsigned U[7];
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  FILE* lf = fopen((dir + "/launch.txt").c_str(), "r");
  char name[256]; unsigned gx, gy, nthr, smem;
  if (fscanf(lf, "%255s %u %u %u %u", name, &gx, &gy, &nthr, &smem) != 5) return 2;
  for (int i = 0; i < 7; ++i) if (fscanf(lf, "%u", &U[i]) != 1) return 2;
  for (const char* b : {"ld", "a", "b", "c", "S0", "o", "dq", "kk", "terms", "carry"}) BUF[b] = readf(dir + "/" + b + ".bin");
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (!strcmp(name, "${k.entry}")) fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
  emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
  emu::launch(fn, g, blk, smem);
  for (const char* b : {"o", "terms"}) { FILE* f = fopen((dir + "/" + b + ".out").c_str(), "wb"); fwrite(BUF[b].data(), 1, BUF[b].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "rows-chunk");
}

/** One launch as runtime/torch/seqc_chunked.py rows_chunk_kernel makes it: grid B H (by ceil(K / 64) key groups for the
 * wide entries), the output NaN first (every element must be written). */
function runEmu(bin: string, k: RowsChunkKernel, c: Case, d: Data, rev = 0): Float64Array {
  return runEmuT(bin, k, c, d, rev).o;
}

/** runEmu with the terms entries' operands (dq float32, kk bf16 values, [B, T, H*K]): out (as float64; a terms entry's bf16
 * words widened) and the terms (NaN where not written). */
function runEmuT(bin: string, k: RowsChunkKernel, c: Case, d: Data, rev = 0, dq?: Float64Array, kk?: Float64Array, carry?: Float64Array): { o: Float64Array; terms: Float64Array } {
  const dir = mkdtempSync(join(tmpdir(), "seqc-rows-chunk-"));
  try {
    const f32 = (x: Float64Array) => Buffer.from(Float32Array.from(x).buffer);
    const n = c.B * c.T * c.H * c.K, slices = k.valueGroup ? Math.ceil(c.V / k.valueGroup) : 1;
    const nan = new Float64Array(n).fill(NaN), nanS = new Float64Array(slices * n).fill(NaN);
    const bufs: Record<string, Buffer> = {
      ld: f32(d.ld), a: k.lowA ? bf16(d.a).words : f32(d.a), b: bf16(d.b).words, c: bf16(d.c).words,
      S0: d.S0 ? f32(d.S0) : Buffer.alloc(4), o: k.terms ? Buffer.alloc(2 * n, 0xff) : f32(nanS),
      dq: dq ? f32(dq) : Buffer.alloc(4), kk: kk ? bf16(kk).words : Buffer.alloc(4), terms: f32(nan), carry: carry ? f32(carry) : Buffer.alloc(4),
    };
    for (const [name, b] of Object.entries(bufs)) writeFileSync(join(dir, `${name}.bin`), b);
    const gy = (k.keyGroup ? Math.ceil(c.K / k.keyGroup) : 1) * slices;
    writeFileSync(join(dir, "launch.txt"), `${k.entry} ${c.B * c.H} ${gy} ${k.threads} ${k.sharedBytes} ${c.B} ${c.T} ${c.H} ${c.K} ${c.V} ${c.init ? 1 : 0} ${rev}\n`);
    execFileSync(bin, [dir], { stdio: "pipe" });
    const raw = readFileSync(join(dir, "o.out")), tr = readFileSync(join(dir, "terms.out"));
    const o = k.terms
      ? Float64Array.from(new Uint16Array(raw.buffer, raw.byteOffset, n), (w) => new Float32Array(new Uint32Array([w << 16]).buffer)[0])
      : Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, n));
    // (split entries) the value groups' slices summed in order in float32, as the runtime sums them
    for (let g = 1; g < slices; g++) {
      const sl = new Float32Array(raw.buffer, raw.byteOffset + 4 * g * n, n);
      for (let j = 0; j < n; j++) o[j] = Math.fround(o[j] + sl[j]);
    }
    return { o, terms: Float64Array.from(new Float32Array(tr.buffer, tr.byteOffset, n)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function error(bin: string, k: RowsChunkKernel, c: Case, seed: number): number {
  const d = data(k, c, seed);
  const got = runEmu(bin, k, c, d);
  if (!got.every(Number.isFinite)) return Infinity;
  return relativeError(got, reference(c, d));
}

const TOL = 1e-4;


const same = (x: Float64Array, y: Float64Array) => x.length === y.length && x.every((v, j) => Object.is(v, y[j]));
/** The flipped tensors a reversed run (rev = 31) on d equals, its output flipped back. */
const flipped = (c: Case, d: Data): Data => ({ ld: shiftRev(d.ld, c), a: flipT(d.a, c, c.K), b: flipT(d.b, c, c.V), c: flipT(d.c, c, c.V), S0: d.S0 });

/** The K = 128 entries' (wide, split) cases: K = V = 128 over chunks (two key groups), then ragged K / V. */
const K128_FULL: Case[] = [
  { B: 1, T: 150, H: 2, K: 128, V: 128, init: true, minLd: -0.3 },
  { B: 2, T: 70, H: 1, K: 128, V: 128, init: false, minLd: -20 },
];
const K128_RAGGED: Case[] = [
  { B: 1, T: 100, H: 2, K: 100, V: 72, init: true, minLd: -0.2 },
  { B: 2, T: 37, H: 1, K: 40, V: 128, init: true, minLd: -1 },
];

/** Each entry vs float64 on K128_FULL (and K128_RAGGED but for the prefetching ones), a prefetching one bitwise its
 * twin, and rev = 31 on K128_FULL[0] bitwise the flipped run; seeds seed + i, then seedRev. */
function checkK128Entries(bin: string, ks: RowsChunkKernel[], twinOf: (k: RowsChunkKernel) => RowsChunkKernel, seed: number, seedRev: number): void {
  for (const k of ks) {
    for (const [i, c] of [...K128_FULL, ...(k.pipe ? [] : K128_RAGGED)].entries()) {
      const d = data(k, c, seed + i);
      const got = runEmu(bin, k, c, d);
      expect(got.every(Number.isFinite), `${k.entry} K=${c.K} V=${c.V}: finite`).toBe(true);
      expect(relativeError(got, reference(c, d)), `${k.entry} K=${c.K} V=${c.V} T=${c.T}`).toBeLessThan(TOL);
      if (k.pipe) expect(same(got, runEmu(bin, twinOf(k), c, d)), `${k.entry} vs its twin`).toBe(true);
    }
    // reversed time on the forward-stored tensors
    const c = K128_FULL[0], d = data(k, c, seedRev);
    expect(same(runEmu(bin, k, c, d, REV_ALL), flipT(runEmu(bin, k, c, flipped(c, d)), c, c.K)), `${k.entry} rev vs flipped`).toBe(true);
  }
}

/** Each broken twin (patch on the module of one config) misses float64 by more than TOL on K128_FULL[0]. */
function expectK128Broken(what: string, patch: (src: string) => string, cfgs: readonly RowsChunkConfig[], seed: number): void {
  for (const cfg of cfgs) {
    const b = rowsChunkModule([cfg], patch);
    const k = b.kernels[0], c = K128_FULL[0], d = data(k, c, seed);
    const got = runEmu(buildEmu(b.source, b.kernels), k, c, d);
    const err = got.every(Number.isFinite) ? relativeError(got, reference(c, d)) : Infinity;
    expect(err > TOL, `${what} ${k.entry}: error ${err}`).toBe(true);
  }
}

describe.skipIf(!gpp)("rows readout, chunked on tensor cores: CPU emulation vs float64", () => {
  const m = rowsChunkModule();
  const bin = buildEmu(m.source, m.kernels);
  it("every entry: T = 1, T = 37 (one partial chunk), T = 150 (three chunks, the last partial), B and H > 1, K, V < 64, init", () => {
    const cases: Case[] = [
      { B: 1, T: 1, H: 1, K: 5, V: 7, init: true, minLd: -1 },
      { B: 2, T: 37, H: 1, K: 16, V: 7, init: true, minLd: -0.5 },
      { B: 1, T: 150, H: 2, K: 13, V: 24, init: false, minLd: -0.3 },
    ];
    for (const k of m.kernels.filter((x) => !x.pipe && !x.terms))
      for (const [i, c] of cases.entries()) {
        const err = error(bin, k, c, 11 + 7 * i + c.T);
        expect(err, `${k.entry} B=${c.B} T=${c.T} H=${c.H} K=${c.K} V=${c.V}`).toBeLessThan(TOL);
      }
  }, 600_000);
  it("K = V = 64 over two chunks with mild decays (the quotient form) and decays down to -20 per step (pairwise exps, the state forgets: no NaN / Inf)", () => {
    for (const k of m.kernels.filter((x) => (x.warps === 4 || x.lowA || x.pipe) && !x.terms && !x.wide && !x.split))
      for (const [i, c] of ([
        { B: 1, T: 128, H: 1, K: 64, V: 64, init: true, minLd: -0.1 },
        { B: 1, T: 100, H: 1, K: 64, V: 64, init: true, minLd: -20 },
      ] as Case[]).entries()) {
        const err = error(bin, k, c, 5 + i);
        expect(err, `${k.entry} T=${c.T} ld>=${c.minLd}`).toBeLessThan(TOL);
      }
  }, 600_000);
  it("8 warps (two a sub-chunk, each half the columns) give the 4-warp entries' outputs but for rounding (the same products; the decays' cumulative sum in 4 parts, not 2)", () => {
    const c: Case = { B: 2, T: 100, H: 1, K: 64, V: 40, init: true, minLd: -0.2 };
    for (const lowA of [false, true]) {
      const w4 = m.kernels.find((k) => k.warps === 4 && k.lowA === lowA)!, w8 = m.kernels.find((k) => k.warps === 8 && k.lowA === lowA && !k.pipe && !k.terms && !k.wide && !k.split)!;
      const d = data(w4, c, 17);
      const a = runEmu(bin, w4, c, d), b = runEmu(bin, w8, c, d);
      expect(b.every(Number.isFinite)).toBe(true);
      expect(relativeError(b, a), `${w8.entry} vs ${w4.entry}`).toBeLessThan(1e-6);
    }
  }, 600_000);
  it("the prefetching entries (_p: K = V = 64 only) vs float64, and bitwise their 8-warp twins: T = 1, T = 150 (three chunks, the last partial), B and H > 1, init; a prefetch of the wrong chunk fails", () => {
    const cases: Case[] = [
      { B: 1, T: 1, H: 1, K: 64, V: 64, init: true, minLd: -1 },
      { B: 2, T: 150, H: 2, K: 64, V: 64, init: true, minLd: -0.3 },
      { B: 1, T: 130, H: 1, K: 64, V: 64, init: false, minLd: -20 },
    ];
    for (const k of m.kernels.filter((x) => x.pipe && !x.terms && !x.wide && !x.split)) {
      const twin = m.kernels.find((x) => !x.pipe && !x.terms && x.warps === k.warps && x.lowA === k.lowA)!;
      for (const [i, c] of cases.entries()) {
        const d = data(k, c, 31 + i);
        const got = runEmu(bin, k, c, d);
        expect(got.every(Number.isFinite), `${k.entry} T=${c.T}: finite`).toBe(true);
        expect(relativeError(got, reference(c, d)), `${k.entry} T=${c.T}`).toBeLessThan(TOL);
        const w = runEmu(bin, twin, c, d);
        expect(got.every((x, j) => Object.is(x, w[j])), `${k.entry} T=${c.T} vs ${twin.entry}`).toBe(true);
      }
    }
    const broken = rowsChunkModule([{ warps: 8, lowA: false, pipe: true }], (src) => src.replace("pre.load(ld, a, bq, cq, rk0, rv0, HK, HV, t0 + C,", "pre.load(ld, a, bq, cq, rk0, rv0, HK, HV, t0,"));
    const err = error(buildEmu(broken.source, broken.kernels), broken.kernels[0], cases[1], 3);
    expect(err > TOL, `error ${err}`).toBe(true);
  }, 600_000);
  it("reversed time: rev = 31 on the forward-stored tensors is bitwise the run on the flipped ones (ldn = the shifted, reversed decays, the output flipped back), every entry; T = 1, 37, 150, B and H > 1; twins that drop the decays' shift or the output's bit fail", () => {
    const cases: Case[] = [
      { B: 1, T: 1, H: 1, K: 64, V: 64, init: true, minLd: -1 },
      { B: 2, T: 37, H: 2, K: 64, V: 64, init: true, minLd: -0.5 },
      { B: 2, T: 150, H: 1, K: 64, V: 64, init: false, minLd: -0.3 },
    ];
    for (const k of m.kernels.filter((x) => !x.terms && !x.wide && !x.split))
      for (const [i, c] of cases.entries()) {
        const d = data(k, c, 41 + i);
        const got = runEmu(bin, k, c, d, REV_ALL);
        expect(got.every(Number.isFinite), `${k.entry} T=${c.T}: finite`).toBe(true);
        expect(same(got, flipT(runEmu(bin, k, c, flipped(c, d)), c, c.K)), `${k.entry} T=${c.T} rev vs flipped`).toBe(true);
      }
    const c = cases[2];
    for (const [what, patch] of [
      ["ld read at T - 1 - t (no shift)", (s: string) => s.replace("(tt ? (long long)(T - tt) : -1ll)", "(long long)(T - 1u - tt)")],
      ["out stored forward", (s: string) => s.replace("const size_t r = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 16u))", "const size_t r = ((size_t)b * T + seqc_rc_tok(t0 + t, T, 0u))")],
    ] as const)
      for (const cfg of [{ warps: 8, lowA: false }, { warps: 8, lowA: false, pipe: true }] as const) {
        const b = rowsChunkModule([cfg], patch);
        const k = b.kernels[0], d = data(k, c, 43);
        const got = runEmu(buildEmu(b.source, b.kernels), k, c, d, REV_ALL);
        const want = flipT(runEmu(bin, m.kernels.find((x) => x.entry === k.entry)!, c, flipped(c, d)), c, c.K);
        expect(relativeError(got, want) > TOL, `${what} ${k.entry}`).toBe(true);
      }
  }, 600_000);
  it("the terms entries (_t): out as bf16 bitwise the rounded output of their twin, terms = q dq - k dk bitwise (q = a at out's row, each product rounded to float32, then the difference), forward (rev 0) and reversed (rev 31), T = 1, 150, B and H > 1, K = 64 (dq, k copied to shared memory) and K < 64 (read as stored: the plain entry); twins taking dk's bf16 rounding into the terms or copying dq at the walk's token fail", () => {
    const cases: Case[] = [
      { B: 1, T: 1, H: 1, K: 64, V: 64, init: true, minLd: -1 },
      { B: 2, T: 150, H: 2, K: 64, V: 64, init: true, minLd: -0.3 },
      { B: 2, T: 70, H: 2, K: 40, V: 24, init: true, minLd: -0.3 },
    ];
    const f = Math.fround;
    const check = (b: string, k: RowsChunkKernel, twinBin: string, twin: RowsChunkKernel, c: Case, seed: number, rev: number) => {
      const d = data(k, c, seed), r = rng(seed + 100), n = c.B * c.T * c.H * c.K;
      const dq = Float64Array.from({ length: n }, () => f(2 * r() - 1)), kk = bf16(Float64Array.from({ length: n }, () => f(2 * r() - 1))).values;
      const got = runEmuT(b, k, c, d, rev, dq, kk), want = runEmuT(twinBin, twin, c, d, rev).o;
      const o = want.every(Number.isFinite) && bf16(want).values.every((x, j) => Object.is(x, got.o[j]));
      const terms = got.terms.every((x, j) => Object.is(x, f(f(d.a[j] * dq[j]) - f(kk[j] * want[j]))));
      return { o, terms };
    };
    for (const k of m.kernels.filter((x) => x.terms && !x.wide && !x.scan)) {
      const twin = m.kernels.find((x) => !x.terms && !x.wide && x.warps === k.warps && x.lowA === k.lowA && !!x.pipe === !!k.pipe)!;
      for (const [i, c] of cases.entries()) {
        if (k.pipe && c.K !== 64) continue;  // (the prefetching entries take K = V = 64 only)
        for (const rev of [0, REV_ALL]) expect(check(bin, k, bin, twin, c, 61 + i, rev), `${k.entry} T=${c.T} K=${c.K} rev=${rev}`).toEqual({ o: true, terms: true });
      }
    }
    const twin = m.kernels.find((x) => !x.terms && !x.pipe && !x.wide && !x.split && x.warps === 8 && !x.lowA)!;
    for (const [what, patch] of [
      ["dk's bf16 rounding in the terms", (src: string) => src.replace("kk[r]), v);", "kk[r]), seqc_f32(seqc_cvt<seqc_bf16>(v)));")],
      ["dq copied at the walk's token", (src: string) => src.replace("seqc_cp16(Dq + t * PF + 4 * q, dq + ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 16u))", "seqc_cp16(Dq + t * PF + 4 * q, dq + ((size_t)b * T + (t0 + t))")],
    ] as const) {
      const broken = rowsChunkModule([{ warps: 8, lowA: false, terms: true }], patch);
      expect(check(buildEmu(broken.source, broken.kernels), broken.kernels[0], bin, twin, cases[1], 62, REV_ALL).terms, what).toBe(false);
    }
  }, 600_000);
  it("the wide entries (_v128: 128 value columns a block, a block per group of 64 key rows): vs float64 at K = V = 128 (two key groups), K = 100 / V = 72 and K = 40 / V = 128 (ragged), decays to -20; the prefetching ones (K = V = 128) bitwise their twins; rev = 31 bitwise the flipped run; the terms entries bitwise; twins with M over 64 values, the key group's offset dropped, or the state's update over half its columns fail", () => {
    const wide = m.kernels.filter((x) => x.wide && x.warps === 8 && !x.scan);
    expect(wide.map((k) => k.entry)).toEqual(["seqc_rows_chunk_w8_v128", "seqc_rows_chunk_w8_v128_la", "seqc_rows_chunk_w8_v128_p", "seqc_rows_chunk_w8_v128_p_la", "seqc_rows_chunk_w8_v128_t", "seqc_rows_chunk_w8_v128_p_t"]);
    const twinOf = (k: RowsChunkKernel) => wide.find((x) => !x.pipe && !x.terms && x.lowA === k.lowA)!;
    checkK128Entries(bin, wide.filter((x) => !x.terms), twinOf, 71, 81);
    // the terms entries: out bitwise bf16(twin's out), terms bitwise, forward and reversed, K = V = 128 and (plain) K = 40
    const f = Math.fround;
    for (const k of wide.filter((x) => x.terms)) {
      const twin = wide.find((x) => !x.terms && !x.lowA && !!x.pipe === !!k.pipe)!;
      for (const [i, c] of [K128_FULL[0], ...(k.pipe ? [] : [K128_RAGGED[1]])].entries())
        for (const rev of [0, REV_ALL]) {
          const d = data(k, c, 91 + i), r = rng(191 + i), n = c.B * c.T * c.H * c.K;
          const dq = Float64Array.from({ length: n }, () => f(2 * r() - 1)), kk = bf16(Float64Array.from({ length: n }, () => f(2 * r() - 1))).values;
          const got = runEmuT(bin, k, c, d, rev, dq, kk), want = runEmuT(bin, twin, c, d, rev).o;
          expect(want.every(Number.isFinite) && bf16(want).values.every((x, j) => Object.is(x, got.o[j])), `${k.entry} K=${c.K} rev=${rev} out`).toBe(true);
          expect(got.terms.every((x, j) => Object.is(x, f(f(d.a[j] * dq[j]) - f(kk[j] * want[j])))), `${k.entry} K=${c.K} rev=${rev} terms`).toBe(true);
        }
    }
    for (const [what, patch] of [
      ["M over the first 64 values", (src: string) => src.replace("run<false, true, 2, VD>(m, cb, PV, bb, PV,", "run<false, true, 2, 64>(m, cb, PV, bb, PV,")],
      ["the key group's offset dropped from the stores", (src: string) => src.replace("* HK + (size_t)h * K + k0 + i;\n          const float v", "* HK + (size_t)h * K + i;\n          const float v")],
      ["the state's update over half its columns", (src: string) => src.replace("run<true, false, WNV, 64>(S, Uh, P, bb, PV, 16 * j, n0v);", "run<true, false, WNV / 2, 64>(reinterpret_cast<float(&)[WNV / 2][4]>(S), Uh, P, bb, PV, 16 * j, n0v);")],
    ] as const)
      expectK128Broken(what, patch, [{ warps: 8, lowA: false, wide: true }, { warps: 8, lowA: false, pipe: true, wide: true }], 101);
  }, 900_000);
  it("the split entries (_vs: a block per group of 64 keys and group of 64 values, partial outputs per value group summed): vs float64 at K = V = 128 (4 blocks a head), K = 100 / V = 72, K = 40 / V = 128, decays to -20; the prefetching ones bitwise their twins; rev = 31 bitwise the flipped run; twins without the value group's offset in b, c or in the output's slice fail", () => {
    const split = m.kernels.filter((x) => x.split);
    expect(split.map((k) => k.entry)).toEqual(["seqc_rows_chunk_w8_vs", "seqc_rows_chunk_w8_vs_la", "seqc_rows_chunk_w8_vs_p", "seqc_rows_chunk_w8_vs_p_la"]);
    checkK128Entries(bin, split, (k) => split.find((x) => !x.pipe && x.lowA === k.lowA)!, 121, 131);
    for (const [what, patch, cfgs] of [
      ["b and c without the value group's offset", (src: string) => src.replace("rv0 = (size_t)b * T * HV + (size_t)h * V + v0;", "rv0 = (size_t)b * T * HV + (size_t)h * V;").replace("* HV + (size_t)h * V + v0 + i;\n      const size_t oc = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 8u)) * HV + (size_t)h * V + v0 + i;", "* HV + (size_t)h * V + i;\n      const size_t oc = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 8u)) * HV + (size_t)h * V + i;"), [{ warps: 8, lowA: false, split: true }, { warps: 8, lowA: false, pipe: true, split: true }]],
      ["every group's outputs to slice 0", (src: string) => src.replace("out[r + (SPLIT ? (size_t)vg * B * T * HK : (size_t)0)]", "out[r]"), [{ warps: 8, lowA: false, split: true }]],
    ] as const)
      expectK128Broken(what, patch, cfgs, 141);
  }, 900_000);
  it("16 warps (ROWS_CHUNK_WARPS 16: four a sub-chunk, the decays' sums in 4 parts, each diagonal column's rows over two threads): every entry bitwise its 8-warp twin, forward and reversed (rev 31), the terms entries' out and terms too; K = V = 64 (decays to -0.3 and -20), ragged K 40 / V 24, K = V = 128 (two key groups) and ragged K 100 / V 72; vs float64; twins that leave the odd diagonal rows to no thread or let the idle parts add to the sums fail", () => {
    const w16 = m.kernels.filter((x) => x.warps === 16);
    expect(w16.map((k) => k.entry)).toEqual(["seqc_rows_chunk_w16", "seqc_rows_chunk_w16_la", "seqc_rows_chunk_w16_p", "seqc_rows_chunk_w16_p_la", "seqc_rows_chunk_w16_p_t",
      "seqc_rows_chunk_w16_v128", "seqc_rows_chunk_w16_v128_la", "seqc_rows_chunk_w16_v128_p", "seqc_rows_chunk_w16_v128_p_la", "seqc_rows_chunk_w16_v128_p_t"]);
    const twinOf = (k: RowsChunkKernel) => m.kernels.find((x) => x.warps === 8 && x.lowA === k.lowA && !!x.pipe === !!k.pipe && !!x.terms === !!k.terms && !!x.wide === !!k.wide && !x.split && !x.scan)!;
    const K64: Case[] = [
      { B: 2, T: 150, H: 2, K: 64, V: 64, init: true, minLd: -0.3 },
      { B: 1, T: 130, H: 1, K: 64, V: 64, init: false, minLd: -20 },
    ];
    const f = Math.fround;
    for (const k of w16) {
      const twin = twinOf(k);
      expect(twin.threads * 2, twin.entry).toBe(k.threads);
      const cases = k.wide ? [...K128_FULL, ...(k.pipe ? [] : K128_RAGGED)] : [...K64, ...(k.pipe ? [] : [{ B: 2, T: 70, H: 2, K: 40, V: 24, init: true, minLd: -0.3 }])];
      for (const [i, c] of cases.entries())
        for (const rev of [0, REV_ALL]) {
          const d = data(k, c, 151 + i), r = rng(251 + i), n = c.B * c.T * c.H * c.K;
          const dq = k.terms ? Float64Array.from({ length: n }, () => f(2 * r() - 1)) : undefined;
          const kk = k.terms ? bf16(Float64Array.from({ length: n }, () => f(2 * r() - 1))).values : undefined;
          const got = runEmuT(bin, k, c, d, rev, dq, kk), want = runEmuT(bin, twin, c, d, rev, dq, kk);
          expect(got.o.every(Number.isFinite), `${k.entry} K=${c.K} V=${c.V} T=${c.T} rev=${rev}: finite`).toBe(true);
          expect(same(got.o, want.o), `${k.entry} K=${c.K} V=${c.V} T=${c.T} rev=${rev} vs ${twin.entry}`).toBe(true);
          if (k.terms) expect(same(got.terms, want.terms), `${k.entry} K=${c.K} rev=${rev} terms`).toBe(true);
          if (rev === 0 && !k.terms) expect(relativeError(got.o, reference(c, d)), `${k.entry} K=${c.K} V=${c.V} T=${c.T} vs float64`).toBeLessThan(TOL);
        }
    }
    for (const [what, patch] of [
      ["the odd diagonal rows left to no thread", (src: string) => src.replace("if (DS > 1 && (u32)(t % DS) != dh) continue;", "if (DS > 1 && (u32)(t % DS) != 0u) continue;")],
      ["the idle parts' sums added", (src: string) => src.replace("if (DS == 1 || part < (u32)PARTS) {\n        float acc = 0.f;", "{\n        float acc = 0.f;")],
    ] as const)
      for (const cfg of [{ warps: 16, lowA: true, pipe: true }, { warps: 16, lowA: false, pipe: true, wide: true }] as const) {
        const b = rowsChunkModule([cfg], patch);
        const k = b.kernels[0], c = cfg.wide ? K128_FULL[0] : K64[0], d = data(k, c, 161);
        const got = runEmu(buildEmu(b.source, b.kernels), k, c, d);
        const err = got.every(Number.isFinite) ? relativeError(got, reference(c, d)) : Infinity;
        expect(err > TOL, `${what} ${k.entry}: error ${err}`).toBe(true);
      }
  }, 1_800_000);
  it("the terms' running sums (_ts, ROWS_TERMS \"scan\"): out bitwise the _t twin's, the sums within 1e-6 of the float64 running sum along the walk of the twin's terms from carry0 (given or null), forward and reversed (rev 31: the reverse sums over stored time), K = V = 64 over three chunks, ragged K 40 / V 24, K = V = 128 (two key groups); twins that drop the carry between chunks, ignore carry0 or skip the earlier parts' totals fail", () => {
    const scans = m.kernels.filter((x) => x.scan);
    expect(scans.map((k) => k.entry)).toEqual(["seqc_rows_chunk_w8_ts", "seqc_rows_chunk_w8_p_ts", "seqc_rows_chunk_w8_v128_p_ts"]);
    const f = Math.fround;
    // the float64 running sum of x [B, T, H*K] along the walk (rev 31: t = T - 1 down to 0) from carry [B, H*K] (or 0)
    const runSum = (x: Float64Array, c: Case, rev: number, carry?: Float64Array) => {
      const out = new Float64Array(x.length), w = c.H * c.K;
      for (let b = 0; b < c.B; b++)
        for (let col = 0; col < w; col++) {
          let s = carry ? carry[b * w + col] : 0;
          for (let tt = 0; tt < c.T; tt++) {
            const t = rev & 16 ? c.T - 1 - tt : tt, at = (b * c.T + t) * w + col;
            s += x[at];
            out[at] = s;
          }
        }
      return out;
    };
    const check = (b: string, k: RowsChunkKernel, twin: RowsChunkKernel, c: Case, seed: number, rev: number, withCarry: boolean) => {
      const d = data(k, c, seed), r = rng(seed + 100), n = c.B * c.T * c.H * c.K;
      const dq = Float64Array.from({ length: n }, () => f(2 * r() - 1)), kk = bf16(Float64Array.from({ length: n }, () => f(2 * r() - 1))).values;
      const carry = withCarry ? Float64Array.from({ length: c.B * c.H * c.K }, () => f(4 * r() - 2)) : undefined;
      const got = runEmuT(b, k, c, d, rev, dq, kk, carry), want = runEmuT(bin, twin, c, d, rev, dq, kk);
      return { o: same(got.o, want.o), err: got.terms.every(Number.isFinite) ? relativeError(got.terms, runSum(want.terms, c, rev, carry)) : Infinity };
    };
    const K64: Case[] = [
      { B: 2, T: 150, H: 2, K: 64, V: 64, init: true, minLd: -0.3 },
      { B: 2, T: 70, H: 2, K: 40, V: 24, init: true, minLd: -0.3 },
    ];
    for (const k of scans) {
      const twin = m.kernels.find((x) => x.terms && !x.scan && x.warps === 8 && !!x.pipe === !!k.pipe && !!x.wide === !!k.wide)!;
      const cases = k.wide ? [K128_FULL[0]] : k.pipe ? [K64[0]] : K64;
      for (const [i, c] of cases.entries())
        for (const rev of [0, REV_ALL])
          for (const withCarry of [true, false]) {
            const r = check(bin, k, twin, c, 171 + i, rev, withCarry);
            expect(r.o, `${k.entry} K=${c.K} rev=${rev} out vs ${twin.entry}`).toBe(true);
            expect(r.err, `${k.entry} K=${c.K} rev=${rev} carry ${withCarry}`).toBeLessThan(1e-6);
          }
    }
    for (const [what, patch] of [
      ["the carry dropped between chunks", (src: string) => src.replace("        carry = run;\n", "\n")],
      ["carry0 ignored", (src: string) => src.replace("if (SCAN && carry0 != nullptr && (tid & 63u) < Kb) carry =", "if (SCAN && carry0 != nullptr && (tid & 63u) < Kb) (void)")],
      ["the earlier parts' totals skipped", (src: string) => src.replace("if ((u32)p == part) off = run;", "if ((u32)p == part) off = carry;")],
    ] as const)
      for (const cfg of [{ warps: 8, lowA: false, pipe: true, terms: true, scan: true }, { warps: 8, lowA: false, pipe: true, terms: true, wide: true, scan: true }] as const) {
        const b = rowsChunkModule([cfg], patch);
        const k = b.kernels[0], twin = m.kernels.find((x) => x.terms && !x.scan && x.warps === 8 && !!x.pipe && !!x.wide === !!k.wide)!;
        const r = check(buildEmu(b.source, b.kernels), k, twin, cfg.wide ? K128_FULL[0] : K64[0], 181, REV_ALL, true);
        expect(r.err > 1e-4, `${what} ${k.entry}: error ${r.err}`).toBe(true);
      }
  }, 1_800_000);
  it("broken twins fail: the state's low bf16 word dropped (one rounding of the state: about 2^-9), the diagonal's own token left out", () => {
    const c: Case = { B: 1, T: 100, H: 1, K: 32, V: 32, init: true, minLd: -0.05 };
    for (const patch of [
      (s: string) => s.replace("SeqcMM<bf>::template run<false, true, WN, VD>(tm, cb, PV, Sl, PV, 16 * j, n0);", ""),
      (s: string) => s.replace("for (int s = 0; s <= t; ++s) acc = fmaf(Md[(s0 + t) * PD + s], as[s], acc);", "for (int s = 0; s < t; ++s) acc = fmaf(Md[(s0 + t) * PD + s], as[s], acc);"),
    ]) {
      const b = rowsChunkModule(ROWS_CHUNK_CONFIGS.slice(0, 1), patch);
      const err = error(buildEmu(b.source, b.kernels), b.kernels[0], c, 3);
      expect(err > TOL, `error ${err}`).toBe(true);
    }
  }, 600_000);
});

describe.skipIf(!findNvcc())("rows readout, chunked on tensor cores: nvcc", () => {
  it("every entry compiles to an sm_90 cubin without spills, within 168 registers (the wide entries 255: one block an SM)", () => {
    const dir = mkdtempSync(join(tmpdir(), "seqc-rows-chunk-nvcc-"));
    try {
      const m = rowsChunkModule();
      writeFileSync(join(dir, "m.cu"), m.source);
      const r = spawnSync(findNvcc()!, ["-cubin", "-arch=sm_90", "-Xptxas", "-v", join(dir, "m.cu"), "-o", join(dir, "m.cubin")], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      for (const k of m.kernels) {
        const at = r.stderr.indexOf(`Compiling entry function '${k.entry}'`);
        expect(at, k.entry).toBeGreaterThanOrEqual(0);
        const info = r.stderr.slice(at, at + 400);
        expect(info).toContain("0 bytes spill stores, 0 bytes spill loads");
        expect(Number(/Used (\d+) registers/.exec(info)![1])).toBeLessThanOrEqual(k.wide ? 255 : 168);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
