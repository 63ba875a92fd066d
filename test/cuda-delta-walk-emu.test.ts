/**
 * The delta backward's walk over the chunks (compiler/backends/cuda/delta-walk.ts; docs/delta-backward.md "The walk") on
 * the CPU emulation of CUDA (test/cuda-emu/emu.h) against the walk in float64:
 *   Z = Z0 (or 0); per chunk c in order or reversed: ZS[c] = Z, Yc = X[c] + M[c] Z, Y[c] = Yc, Z = A[c] Z + BM[c] + NN[c]^T Yc;
 *   ZF = Z
 * both directions, nC = 1 and 5 (and 33 at K = V = 64), Z0 null and given, random M, X, BM, NN and A in (0, 1]; small
 * configurations (C = 4 / 8, the key sum split in two, several column groups) and the shipped K = V = 64 and 128;
 * deliberately broken copies (M read without its swizzle, the reversed walk prefetching the wrong next chunk, BM
 * without the group's column offset, the split's partials dropped) must fail; a per-key decay (A [N, K], Z's row i
 * scaled by A[n, i]) on the small configurations and the shipped ones, with a broken copy; the walks for few rows (each
 * phase's sum split over more thread groups: small configurations, the shipped ones, two broken copies); the tensor-core
 * twins (delta-walk-mma.ts, m16n8k8 TF32 emulated by test/cuda-emu/mma-tf32.h): 3xTF32 on small configurations and the
 * shipped ones (scalar and per-key decay) within 1e-6, three broken copies; over 512 chunks of a bounded walk 3xTF32
 * within 1e-6, plain TF32's drift measured (~1.4e-4 / 2.2e-4 relative); the twins' options (warps along the columns,
 * two accumulator sets a product, two sets of buffers) on small configurations, and the walks for many rows
 * (DELTA_WALK_WIDE_CONFIGS: 64 columns over two warp groups at K = 128, 3xTF32 within 1e-6, plain TF32's error
 * measured), over 512 chunks 3xTF32 within 1e-6, four broken copies; nvcc -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DELTA_WALK_CONFIGS, DELTA_WALK_FEW_CONFIGS, DELTA_WALK_KEY_CONFIGS, DELTA_WALK_KEY_FEW_CONFIGS, deltaWalkModule, type DeltaWalkConfig, type DeltaWalkKernel } from "../compiler/backends/cuda/delta-walk.ts";
import { DELTA_WALK_KEY_MMA_CONFIGS, DELTA_WALK_KEY_WIDE_CONFIGS, DELTA_WALK_MMA_CONFIGS, DELTA_WALK_WIDE_CONFIGS, deltaWalkMmaModule, type DeltaWalkMmaConfig } from "../compiler/backends/cuda/delta-walk-mma.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-walk-emu.test: g++ is not installed, so the emulated runs are skipped");

interface Data { BH: number; nC: number; M: Float64Array; X: Float64Array; BM: Float64Array; NN: Float64Array; A: Float64Array; Z0: Float64Array | null }
interface Walk { ZS: Float64Array; Y: Float64Array; ZF: Float64Array }

/** BH rows of nC chunks, float32-exact: M, NN uniform in (-1, 1) / sqrt(K) (so that the walk neither dies out nor blows
 * up), X, BM, Z0 in (-1, 1), A in [0.05, 1] ([N, K] with a per-key decay). */
function data(c: DeltaWalkConfig, BH: number, nC: number, z0: boolean, seed: number, long?: { mn: number; a0: number }): Data {
  const { C, K, V } = c, r = rng(seed), f = Math.fround, N = BH * nC;
  const u = (n: number, s: number) => Float64Array.from({ length: n }, () => f(2 * r() * s));
  // long walks: M, NN scaled by mn, A in [a0, 1] (a walk that stays bounded over hundreds of chunks)
  const mn = long ? long.mn : 1, [a0, aw] = long ? [long.a0, 1 - long.a0] : [0.525, 0.95];
  return {
    BH, nC,
    M: u(N * C * K, mn / Math.sqrt(K)), X: u(N * C * V, 1), BM: u(N * K * V, 1), NN: u(N * C * K, mn / Math.sqrt(K)),
    A: Float64Array.from({ length: c.perKey ? N * K : N }, () => f(a0 + aw * r())),
    Z0: z0 ? u(BH * K * V, 1) : null,
  };
}

/** The walk in float64. */
function reference(c: DeltaWalkConfig, d: Data, reverse: boolean): Walk {
  const { C, K, V } = c, { BH, nC } = d;
  const ZS = new Float64Array(BH * nC * K * V), Y = new Float64Array(BH * nC * C * V), ZF = new Float64Array(BH * K * V);
  for (let bh = 0; bh < BH; bh++) {
    let Z = d.Z0 ? d.Z0.slice(bh * K * V, (bh + 1) * K * V) : new Float64Array(K * V);
    for (let s = 0; s < nC; s++) {
      const n = bh * nC + (reverse ? nC - 1 - s : s);
      ZS.set(Z, n * K * V);
      const Yc = new Float64Array(C * V);
      for (let a = 0; a < C; a++)
        for (let j = 0; j < V; j++) {
          let acc = d.X[(n * C + a) * V + j];
          for (let l = 0; l < K; l++) acc += d.M[(n * C + a) * K + l] * Z[l * V + j];
          Yc[a * V + j] = acc;
        }
      Y.set(Yc, n * C * V);
      const Zn = new Float64Array(K * V);
      for (let i = 0; i < K; i++)
        for (let j = 0; j < V; j++) {
          let acc = d.A[c.perKey ? n * K + i : n] * Z[i * V + j] + d.BM[(n * K + i) * V + j];
          for (let a = 0; a < C; a++) acc += d.NN[(n * C + a) * K + i] * Yc[a * V + j];
          Zn[i * V + j] = acc;
        }
      Z = Zn;
    }
    ZF.set(Z, bh * K * V);
  }
  return { ZS, Y, ZF };
}

const FILES = ["M", "X", "BM", "NN", "A", "Z0", "ZS", "Y", "ZF"];

/** An emulator executable: argv dir (the FILES .bin float32), entry, BH, nC, reverse, z0 (0: Z0 nullptr), threads, smem,
 * grid y; writes ZS.out, Y.out, ZF.out. */
function buildEmu(source: string, kernels: DeltaWalkKernel[]): string {
  const main = `
static void* P[9]; static int BH_, NC_, REV_, Z0_;
${kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)P[0], (const float*)P[1], (const float*)P[2], (const float*)P[3], (const float*)P[4], Z0_ ? (const float*)P[5] : nullptr, (${k.zout ? "unsigned short" : "float"}*)P[6], (${k.zout ? "unsigned short" : "float"}*)P[7], (float*)P[8], BH_, NC_, REV_); }`).join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  BH_ = atoi(argv[3]); NC_ = atoi(argv[4]); REV_ = atoi(argv[5]); Z0_ = atoi(argv[6]);
  unsigned threads = (unsigned)atoi(argv[7]), smem = (unsigned)atoi(argv[8]), gy = (unsigned)atoi(argv[9]);
  std::vector<char> b[9] = {${FILES.map((f) => `readf(dir + "/${f}.bin")`).join(", ")}};
  for (int i = 0; i < 9; ++i) P[i] = b[i].data();
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = (unsigned)BH_; g.y = gy; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
${[6, 7, 8].map((i, j) => `  ${j ? "" : "FILE* "}f = fopen((dir + "/${FILES[i]}.out").c_str(), "wb"); fwrite(b[${i}].data(), 1, b[${i}].size(), f); fclose(f);`).join("\n")}
  return 0;
}
`;
  return compileLowRankEmu(source, main, "delta-walk", true);
}

function runEmu(bin: string, k: DeltaWalkKernel, d: Data, reverse: boolean): Walk {
  return inScratchDir("seqc-dwalk-", (dir) => {
    const { C, K, V } = k, { BH, nC } = d;
    const nan = (n: number) => f32Bytes(new Float64Array(n).fill(NaN)); // the kernel must write every output
    const bufs: Record<string, Buffer> = {
      M: f32Bytes(d.M), X: f32Bytes(d.X), BM: f32Bytes(d.BM), NN: f32Bytes(d.NN), A: f32Bytes(d.A), Z0: d.Z0 ? f32Bytes(d.Z0) : Buffer.alloc(4),
      ZS: nan(BH * nC * K * V), Y: nan(BH * nC * C * V), ZF: nan(BH * K * V),
    };
    for (const f of FILES) writeFileSync(join(dir, `${f}.bin`), bufs[f]);
    execFileSync(bin, [dir, k.entry, String(BH), String(nC), reverse ? "1" : "0", d.Z0 ? "1" : "0", String(k.threads), String(k.sharedBytes), String(V / k.cols)], { stdio: "pipe" });
    // zout "bf16": ZS and Y as bf16 words in the first half of their files (the rest NaN as written)
    const zread = (name: string, n: number) => {
      if (!k.zout) return readF32(join(dir, `${name}.out`));
      const raw = readFileSync(join(dir, `${name}.out`)), w = new Uint16Array(raw.buffer, raw.byteOffset, n), u = new Uint32Array(n);
      for (let i = 0; i < n; i++) u[i] = w[i] << 16;
      return Float64Array.from(new Float32Array(u.buffer));
    };
    return { ZS: zread("ZS", BH * nC * K * V), Y: zread("Y", BH * nC * C * V), ZF: readF32(join(dir, "ZF.out")) };
  });
}

/** The largest relative error of ZS, Y and ZF (Infinity where an output is not finite: never written). */
function error(k: DeltaWalkKernel, bin: string, d: Data, reverse: boolean): number {
  const got = runEmu(bin, k, d, reverse), want = reference(k, d, reverse);
  const outs = ["ZS", "Y", "ZF"] as const;
  if (!outs.every((o) => got[o].every(Number.isFinite))) return Infinity;
  return Math.max(...outs.map((o) => relativeError(got[o], want[o])));
}

/** Every direction, nC and Z0 case of one kernel: the worst error. */
function worst(k: DeltaWalkKernel, bin: string, BH: number, nCs: number[], seed: number): number {
  let e = 0;
  for (const nC of nCs)
    for (const z0 of [false, true])
      for (const reverse of [false, true]) {
        const x = error(k, bin, data(k, BH, nC, z0, seed + 7 * nC + (z0 ? 1 : 0)), reverse);
        expect(x, `${k.entry} nC=${nC} z0=${z0} reverse=${reverse}`).toBeLessThan(1e-5);
        e = Math.max(e, x);
      }
  return e;
}

/** The error of a copy of c's kernel with every `from` in its source replaced by `to` (`mark`, `from` unless given, must
 * occur in it), on 2 rows of 4 chunks with Z0 given. */
function brokenError(c: DeltaWalkConfig, from: string, to: string, reverse: boolean, mark = from): number {
  const m = deltaWalkModule([c], (src) => {
    expect(src).toContain(mark);
    return src.replaceAll(from, to);
  });
  return error(m.kernels[0], buildEmu(m.source, m.kernels), data(c, 2, 4, true, 3), reverse);
}

const SMALL: DeltaWalkConfig[] = [
  { C: 8, K: 8, V: 12, cols: 4 },   // three column groups, one key part
  { C: 8, K: 16, V: 8, cols: 8 },   // the key sum split in two (K = 2 C), the swizzle over 4 columns
  { C: 4, K: 16, V: 16, cols: 8 },  // split in four, two column groups
  { C: 8, K: 32, V: 16, cols: 16 }, // split in four, the full 8-way swizzle
];

describe.skipIf(!gpp)("delta backward walk kernel on the CPU emulation vs the float64 walk", () => {
  it("small configurations: both directions, nC = 1 and 5, Z0 null and given", () => {
    const m = deltaWalkModule(SMALL);
    expect(m.kernels.map((k) => [k.threads, k.sharedBytes])).toEqual([[2, 4 * (2 * 64 + 2 * 32 + 2 * 32)], [8, 4 * (2 * 128 + 2 * 64 + 2 * 128 + 64)], [8, 4 * (2 * 64 + 2 * 32 + 2 * 128 + 3 * 32)], [32, 4 * (2 * 256 + 2 * 128 + 2 * 512 + 3 * 128)]]);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) worst(k, bin, 3, [1, 5], 11 + 100 * i);
  }, 300_000);

  it("the shipped C = 64, K = V = 64 (32 columns a block) and 128 (16 columns): both directions, nC = 1 and 5 (33 at 64), Z0 null and given", () => {
    const m = deltaWalkModule();
    expect(m.kernels.map((k) => [k.entry, k.cols, k.threads, k.sharedBytes])).toEqual([
      ["seqc_delta_walk_c64k64v64", 32, 128, 65536],
      ["seqc_delta_walk_c64k128v128", 16, 128, 94208],
    ]);
    expect(DELTA_WALK_CONFIGS.length).toBe(2);
    const bin = buildEmu(m.source, m.kernels);
    const e64 = worst(m.kernels[0], bin, 2, [1, 5, 33], 5);
    const e128 = worst(m.kernels[1], bin, 2, [1, 5], 9);
    console.log(`delta walk emulation: worst relative error K = 64 ${e64.toExponential(2)}, K = 128 ${e128.toExponential(2)}`);
  }, 600_000);

  it("deliberately broken copies fail: M read unswizzled; the reversed walk prefetching the next chunk forwards; BM without the group's column offset; the split's partials dropped", () => {
    const cases: [DeltaWalkConfig, string, string, boolean][] = [
      [SMALL[3], "4u * (q ^ sw)]", "4u * q]", false],
      [SMALL[0], "(reverse ? nC - 1 - (s + 1) : (s + 1))", "(s + 1)", true],
      [SMALL[0], "gB + (size_t)(x / 1u) * 12u + j0 +", "gB + (size_t)(x / 1u) * 12u +", false],
      [SMALL[1], "acc[r][0] += v.x;", "acc[r][0] += 0.f * v.x;", false],
    ];
    for (const [c, from, to, reverse] of cases) expect(brokenError(c, from, to, reverse), from).toBeGreaterThan(1e-2);
  }, 200_000);

  it("a per-key decay (A [N, K]): small configurations and the shipped K = V = 64 and 128, both directions, nC = 1 and 5, Z0 null and given; a broken copy (every row of a tile scaled by its first row's decay) fails", () => {
    const small = SMALL.map((c) => ({ ...c, perKey: true }));
    const m = deltaWalkModule([...small, ...DELTA_WALK_KEY_CONFIGS]);
    expect(m.kernels.slice(small.length).map((k) => [k.entry, k.cols, k.threads, k.sharedBytes])).toEqual([
      ["seqc_delta_walk_key_c64k64v64", 32, 128, 65536],
      ["seqc_delta_walk_key_c64k128v128", 16, 128, 94208],
    ]);
    const bin = buildEmu(m.source, m.kernels);
    const e = m.kernels.map((k, i) => worst(k, bin, i < small.length ? 3 : 2, [1, 5], 23 + 100 * i));
    console.log(`delta walk, per-key decay, emulation: worst relative error ${e.map((x) => x.toExponential(2)).join(", ")}`);
    expect(brokenError(small[2], "an[r], z[r]", "an[0], z[r]", false, "an[r], z[r][0]")).toBeGreaterThan(1e-2);
  }, 600_000);

  it("the walks for few rows (each phase's sum split over more threads): small configurations and the shipped ones (K = V = 64: 8 columns, split 4; 128: 8 columns, split 2), scalar and per-key decay, both directions, nC = 1 and 5, Z0 null and given; broken copies (phase 2's slot range a slot short, its partials not added) fail", () => {
    const small: DeltaWalkConfig[] = [
      { C: 8, K: 8, V: 12, cols: 4, split: 2 },    // 4 threads: phase 1 in 2 key parts, phase 2 in 2 slot parts
      { C: 8, K: 16, V: 8, cols: 8, split: 2 },    // phase 1 in 4 parts
      { C: 16, K: 16, V: 16, cols: 8, split: 4 },  // 32 threads, 4 parts each, two column groups
      { C: 8, K: 8, V: 16, cols: 4, split: 2, perKey: true },
    ];
    const few = [...DELTA_WALK_FEW_CONFIGS, ...DELTA_WALK_KEY_FEW_CONFIGS];
    const m = deltaWalkModule([...small, ...few]);
    expect(m.kernels.map((k) => [k.threads, k.split])).toEqual([[4, 2], [16, 2], [32, 4], [4, 2], [128, 4], [128, 2], [128, 4], [128, 2]]);
    expect(m.kernels.slice(small.length).map((k) => [k.entry, k.cols, k.sharedBytes])).toEqual([
      ["seqc_delta_walk_c64k64v64_g8_s4", 8, 4 * (2 * 64 * 64 + 2 * 64 * 8 + 2 * 64 * 8 + 3 * 64 * 8)],
      ["seqc_delta_walk_c64k128v128_g8_s2", 8, 4 * (2 * 64 * 128 + 2 * 64 * 8 + 2 * 128 * 8 + 3 * 64 * 8)],
      ["seqc_delta_walk_key_c64k64v64_g8_s4", 8, 4 * (2 * 64 * 64 + 2 * 64 * 8 + 2 * 64 * 8 + 3 * 64 * 8)],
      ["seqc_delta_walk_key_c64k128v128_g8_s2", 8, 4 * (2 * 64 * 128 + 2 * 64 * 8 + 2 * 128 * 8 + 3 * 64 * 8)],
    ]);
    const bin = buildEmu(m.source, m.kernels);
    const e = m.kernels.map((k, i) => worst(k, bin, i < small.length ? 3 : 2, [1, 5], 31 + 100 * i));
    console.log(`delta walk for few rows, emulation: worst relative error ${m.kernels.map((k, i) => `${k.entry} ${e[i].toExponential(2)}`).join(", ")}`);
    const cases: [DeltaWalkConfig, string, string][] = [
      [small[0], "a < (h2 + 1u) * 4u;", "a < (h2 + 1u) * 4u - 1u;"],
      [small[1], "if (h2 == 0u) {\n      for (u32 o = 0; o < 1u;", "if (h2 == 0u) {\n      for (u32 o = 0; o < 0u;"],
    ];
    for (const [c, from, to] of cases) expect(brokenError(c, from, to, true), from).toBeGreaterThan(1e-2);
  }, 600_000);

  it("configurations that do not fit are refused", () => {
    expect(() => deltaWalkModule([{ C: 64, K: 10, V: 8 }])).toThrow(/multiples of 4/);
    expect(() => deltaWalkModule([{ C: 64, K: 64, V: 64, cols: 24 }])).toThrow(/divides V/);
    expect(() => deltaWalkModule([{ C: 64, K: 32, V: 64 }])).toThrow(/multiple of C/);
    expect(() => deltaWalkModule([{ C: 64, K: 256, V: 256, cols: 64 }])).toThrow(/threads|shared memory/);
    expect(() => deltaWalkModule([{ C: 64, K: 64, V: 64, cols: 8, split: 3 }])).toThrow(/dividing C/);
    expect(() => deltaWalkModule([{ C: 64, K: 64, V: 64, cols: 8, split: 32 }])).toThrow(/multiple of 4 keys a part/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped walks (scalar and per-key decay, default and few rows) for sm_90; ptxas: no spills", () => {
    const m = deltaWalkModule([...DELTA_WALK_CONFIGS, ...DELTA_WALK_KEY_CONFIGS, ...DELTA_WALK_FEW_CONFIGS, ...DELTA_WALK_KEY_FEW_CONFIGS]);
    const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
    }
    console.log(`delta walk ptxas sm_90: ${[...usage].map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
  }, 500_000);
});

describe.skipIf(!gpp)("the walk's tensor-core twins (delta-walk-mma.ts; TF32 rounding and m16n8k8 fragments emulated by test/cuda-emu/mma-tf32.h) vs the float64 walk", () => {
  const SMALL_MMA: DeltaWalkMmaConfig[] = [
    { C: 16, K: 16, V: 16, cols: 8, math: "tf32x3" },              // one warp, two column groups
    { C: 16, K: 32, V: 16, cols: 16, math: "tf32x3" },             // two row blocks of Z a warp, two column tiles
    { C: 32, K: 64, V: 8, cols: 8, math: "tf32x3", perKey: true }, // two warps, a per-key decay
  ];
  /** a twin's worst error over both directions, Z0 null / given, nC (long: the bounded walk's data) */
  const worstOf = (k: DeltaWalkKernel, bin: string, BH: number, nCs: number[], seed: number, long?: { mn: number; a0: number }) => {
    let e = 0;
    for (const nC of nCs)
      for (const z0 of [false, true])
        for (const reverse of [false, true]) e = Math.max(e, error(k, bin, data(k, BH, nC, z0, seed + 7 * nC + (z0 ? 1 : 0), long), reverse));
    return e;
  };

  it("3xTF32: small configurations and the shipped K = V = 64 and 128 (scalar and per-key decay), both directions, nC = 1 and 5, Z0 null and given: within 1e-6; broken copies fail", () => {
    const m = deltaWalkMmaModule([...SMALL_MMA, ...DELTA_WALK_MMA_CONFIGS, ...DELTA_WALK_KEY_MMA_CONFIGS]);
    expect(m.kernels.slice(SMALL_MMA.length).map((k) => [k.entry, k.cols, k.threads, k.sharedBytes])).toEqual([
      ["seqc_delta_walk_c64k64v64_tf32x3", 32, 128, 72704],
      ["seqc_delta_walk_c64k128v128_tf32x3", 16, 128, 111616],
      ["seqc_delta_walk_key_c64k64v64_tf32x3", 32, 128, 72704],
      ["seqc_delta_walk_key_c64k128v128_tf32x3", 16, 128, 111616],
    ]);
    const bin = buildEmu(m.source, m.kernels);
    const e = m.kernels.map((k, i) => worstOf(k, bin, 2, [1, 5], 41 + 100 * i));
    console.log(`delta walk twins (tf32x3), emulation: ${m.kernels.map((k, i) => `${k.entry} ${e[i].toExponential(2)}`).join(", ")}`);
    for (const [i, x] of e.entries()) expect(x, m.kernels[i].entry).toBeLessThan(1e-6);
    // broken: phase 2's NN read untransposed; the tails dropped from phase 1's M (plain TF32 there); Z's second row block not kept
    const cases: [DeltaWalkMmaConfig, string, string, number][] = [
      [SMALL_MMA[1], "sN[(k0 + tg + 0u) * 40u + 32u * w + 0u + g]", "sN[(32u * w + 0u + g) * 40u + k0 + tg + 0u]", 1e-2],
      [SMALL_MMA[0], "seqc_mma_tf32(y[0], fal, fb);", "", 1e-5],
      [SMALL_MMA[1], "z[1][0][0] = fmaf(a, z[1][0][0], b.x);", "z[1][0][0] = b.x;", 1e-2],
    ];
    for (const [c, from, to, bound] of cases) {
      const b = deltaWalkMmaModule([c], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      expect(error(b.kernels[0], buildEmu(b.source, b.kernels), data(c, 2, 4, true, 3), true), from).toBeGreaterThan(bound);
    }
  }, 600_000);

  it("over 512 chunks (bounded walks: M, NN 0.5 / sqrt(K), A in [0.8, 1] and [0.95, 1]), both directions: 3xTF32 stays within 1e-6 of float64; plain TF32's drift measured (> 1e-5)", () => {
    const cs: DeltaWalkMmaConfig[] = [{ C: 64, K: 128, V: 16, cols: 16, math: "tf32x3" }, { C: 64, K: 128, V: 16, cols: 16, math: "tf32" }];
    const m = deltaWalkMmaModule(cs);
    const bin = buildEmu(m.source, m.kernels);
    for (const a0 of [0.8, 0.95]) {
      const d = data(cs[0], 1, 512, true, 77, { mn: 0.5, a0 });
      const e = m.kernels.map((k) => [false, true].map((reverse) => error(k, bin, d, reverse)));
      const zf = Math.sqrt(reference(cs[0], d, false).ZF.reduce((a, x) => a + x * x, 0) / (128 * 16));
      console.log(`delta walk twins over 512 chunks (K = 128, 16 columns, A in [${a0}, 1], final state rms ${zf.toFixed(2)}), emulation, forward / reverse: ${m.kernels.map((k, i) => `${k.entry} ${e[i].map((x) => x.toExponential(2)).join(" / ")}`).join(", ")}`);
      for (const x of e[0]) expect(x).toBeLessThan(1e-6);
      for (const x of e[1]) expect(x).toBeGreaterThan(1e-5);
    }
  }, 600_000);

  it("the twins' options (warpCols column groups of warps, ilp: two accumulator sets a product, stages 2: two sets of buffers) on small configurations and the walks for many rows (64 columns at K = 128), both directions, nC = 1 and 5, Z0 null and given: 3xTF32 within 1e-6, plain TF32 within 1e-3; over 512 chunks within 1e-6; broken copies fail", () => {
    const small: DeltaWalkMmaConfig[] = [
      { C: 16, K: 16, V: 32, cols: 16, warpCols: 2, ilp: true, math: "tf32x3" },              // 2 warps, one 8-column tile each, two column groups of blocks
      { C: 32, K: 64, V: 32, cols: 32, warpCols: 2, ilp: true, math: "tf32x3", perKey: true }, // 4 warps, two row blocks and two column tiles a warp
      { C: 16, K: 32, V: 32, cols: 32, warpCols: 4, math: "tf32x3" },                          // 4 column groups, one accumulator set
      { C: 32, K: 32, V: 16, cols: 16, warpCols: 2, ilp: true, stages: 2, math: "tf32x3" },    // two sets of buffers
    ];
    const shipped = DELTA_WALK_WIDE_CONFIGS;
    const m = deltaWalkMmaModule([...small, ...shipped]);
    expect(m.kernels.map((k) => [k.entry, k.cols, k.threads, k.walkFor])).toEqual([
      ["seqc_delta_walk_c16k16v32_g16_w2_i2_tf32x3", 16, 64, undefined],
      ["seqc_delta_walk_key_c32k64v32_w2_i2_tf32x3", 32, 128, undefined],
      ["seqc_delta_walk_c16k32v32_w4_tf32x3", 32, 128, undefined],
      ["seqc_delta_walk_c32k32v16_w2_i2_p2_tf32x3", 16, 128, undefined],
      ["seqc_delta_walk_c64k128v128_g64_w2_tf32x3", 64, 256, "many"],
      ["seqc_delta_walk_c64k128v128_g64_w2_i2_tf32", 64, 256, "many"],
    ]);
    // M [64][132], NN [64][136], X [64][64], Yc [64][72], BM [128][64], Z [128][72]; two sets of M, NN, X, BM with stages 2
    expect(m.kernels.slice(small.length).map((k) => k.sharedBytes)).toEqual([173056, 173056]);
    expect(m.kernels[3].sharedBytes).toBe(4 * (2 * (32 * 36 + 32 * 40 + 32 * 16 + 32 * 16) + 32 * 40 + 32 * 40));
    const bin = buildEmu(m.source, m.kernels);
    const e = m.kernels.map((k, i) => worstOf(k, bin, i < small.length ? 3 : 2, [1, 5], 51 + 100 * i));
    console.log(`delta walk twins' options and the walks for many rows, emulation: ${m.kernels.map((k, i) => `${k.entry} ${e[i].toExponential(2)}`).join(", ")}`);
    // 3xTF32 within 1e-6; plain TF32 (the shipped one LR_DELTA_WALK "tf32" takes) within 1e-3, and above 1e-6: the TF32
    // rounding is there
    for (const [i, x] of e.entries()) {
      if (m.kernels[i].math === "tf32x3") expect(x, m.kernels[i].entry).toBeLessThan(1e-6);
      else expect([x < 1e-3, x > 1e-6], m.kernels[i].entry).toEqual([true, true]);
    }
    // 512 chunks of a bounded walk at K = 128: the shipped 3xTF32 walk's layout (64 columns over two warp groups) at V = 64
    const longs: DeltaWalkMmaConfig[] = [{ C: 64, K: 128, V: 64, cols: 64, warpCols: 2, math: "tf32x3" }];
    const ml = deltaWalkMmaModule(longs), lbin = buildEmu(ml.source, ml.kernels);
    for (const [i, k] of ml.kernels.entries()) {
      const d = data(longs[i], 1, 512, true, 78, { mn: 0.5, a0: 0.8 });
      const el = [false, true].map((reverse) => error(k, lbin, d, reverse));
      console.log(`delta walk twin over 512 chunks (K = 128, ${k.entry}), emulation, forward / reverse: ${el.map((x) => x.toExponential(2)).join(" / ")}`);
      for (const x of el) expect(x).toBeLessThan(1e-6);
    }
    // broken: phase 1's odd k steps not added; phase 2's odd slots not added; every warp group on the first group's columns
    const cases: [DeltaWalkMmaConfig, string, string, number][] = [
      [small[0], "y[i0][i1] += y2[i0][i1];", "", 1e-2],
      [small[1], "z[i0][i1][i2] += z2[i0][i1][i2];", "", 1e-2],
      [small[2], "cb = (w / 1u) * 8u;", "cb = 0u * (w / 1u) * 8u;", 1e-2],
      [small[3], "float* sM = sS + ((u32)(s + 1) & 1)", "float* sM = sS + ((u32)s & 1)", 1e-2], // the next chunk into this chunk's set
    ];
    for (const [c, from, to, bound] of cases) {
      const b = deltaWalkMmaModule([c], (src) => {
        expect(src).toContain(from);
        return src.replaceAll(from, to);
      });
      expect(error(b.kernels[0], buildEmu(b.source, b.kernels), data(c, 2, 4, true, 3), true), from).toBeGreaterThan(bound);
    }
    expect(() => deltaWalkMmaModule([{ C: 64, K: 64, V: 64, cols: 16, warpCols: 4, math: "tf32x3" }])).toThrow(/warpCols/);
  }, 900_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped twins (scalar and per-key decay; tf32x3 and tf32; the walks for many rows) for sm_90; ptxas: no spills", () => {
    const m = deltaWalkMmaModule([...DELTA_WALK_MMA_CONFIGS, ...DELTA_WALK_KEY_MMA_CONFIGS, ...DELTA_WALK_MMA_CONFIGS.map((c) => ({ ...c, math: "tf32" as const })), ...DELTA_WALK_WIDE_CONFIGS]);
    const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 128], `${e}`).toEqual([0, 0, true]);
    console.log(`delta walk twins ptxas sm_90: ${[...usage].map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
  }, 300_000);
});

describe.skipIf(!gpp)("the walks writing bf16 ZS and Y (zout \"bf16\", the bf16 adjoint's zin inputs)", () => {
  const SMALL_MMA: DeltaWalkMmaConfig[] = [
    { C: 16, K: 32, V: 16, cols: 16, math: "tf32x3" },
    { C: 16, K: 16, V: 32, cols: 16, warpCols: 2, ilp: true, math: "tf32" },
  ];
  /** zb's outputs against its fp32 twin's on the same data: ZS and Y the fp32 values rounded to nearest even, bit for
   * bit; ZF the same bits. */
  const same = (f: DeltaWalkKernel, z: DeltaWalkKernel, bin: string, d: Data, reverse: boolean) => {
    const a = runEmu(bin, f, d, reverse), b = runEmu(bin, z, d, reverse);
    for (const o of ["ZS", "Y"] as const) {
      expect(a[o].every(Number.isFinite), `${f.entry} ${o} finite`).toBe(true);
      const want = bf16(a[o]).values, diff = b[o].findIndex((x, i) => !Object.is(x, want[i]));
      expect(diff, `${z.entry} ${o}: round(${f.entry}'s) at ${diff}`).toBe(-1);
    }
    expect(b.ZF.findIndex((x, i) => !Object.is(x, a.ZF[i])), `${z.entry} ZF`).toBe(-1);
    expect(relativeError(b.ZS, a.ZS), `${z.entry}: the rounding shows`).toBeGreaterThan(1e-4);
  };

  it("fp32 walks (small, the shipped default and few-row walks) and tensor-core twins (small, the shipped 3xTF32 twins, the walks for many rows): ZS and Y = bf16(fp32 twin's), ZF identical, both directions, nC = 1 and 5; entries _zb; a broken copy (Y rounded from the next row) fails", () => {
    const fp: DeltaWalkConfig[] = [SMALL[0], SMALL[1], { C: 8, K: 16, V: 8, cols: 8, split: 2 }, ...DELTA_WALK_CONFIGS, ...DELTA_WALK_FEW_CONFIGS];
    const mm: DeltaWalkMmaConfig[] = [...SMALL_MMA, ...DELTA_WALK_MMA_CONFIGS, ...DELTA_WALK_WIDE_CONFIGS];
    const zb = <T extends DeltaWalkConfig>(cs: T[]) => cs.map((c) => ({ ...c, zout: "bf16" as const }));
    const m1 = deltaWalkModule([...fp, ...zb(fp)]), m2 = deltaWalkMmaModule([...mm, ...zb(mm)]);
    expect(m1.kernels.slice(fp.length).map((k) => k.entry)).toEqual(m1.kernels.slice(0, fp.length).map((k) => `${k.entry}_zb`));
    expect(m2.kernels.slice(mm.length).map((k) => k.entry)).toEqual(m2.kernels.slice(0, mm.length).map((k) => `${k.entry}_zb`));
    expect(m1.kernels.slice(fp.length).map((k) => k.sharedBytes)).toEqual(m1.kernels.slice(0, fp.length).map((k) => k.sharedBytes));
    for (const [m, n] of [[m1, fp.length], [m2, mm.length]] as const) {
      const bin = buildEmu(m.source, m.kernels);
      for (let i = 0; i < n; i++) {
        const f = m.kernels[i], z = m.kernels[n + i];
        for (const nC of f.K >= 64 ? [3] : [1, 5])
          for (const reverse of [false, true]) same(f, z, bin, data(f, 2, nC, true, 91 + 7 * i + nC), reverse);
      }
    }
    // broken: the fp32 walk's Y stored from the tile's next row (a row's stores shifted)
    const c = { ...SMALL[0], zout: "bf16" as const }, f = deltaWalkModule([SMALL[0]]);
    const b = deltaWalkModule([c], (src) => {
      const from = "seqc_dz_st4(&Y[(n * 8u + 4u * yi + r) * 12u + j0 + 4u * cq], acc[r][0], acc[r][1], acc[r][2], acc[r][3]);";
      expect(src).toContain(from);
      return src.replace(from, "seqc_dz_st4(&Y[(n * 8u + 4u * yi + r) * 12u + j0 + 4u * cq], acc[(r + 1u) & 3u][0], acc[r][1], acc[r][2], acc[r][3]);");
    });
    const d = data(SMALL[0], 2, 4, true, 3), bin = buildEmu(f.source + b.source.slice(b.source.indexOf("#ifndef SEQC_DELTA_ZOUT")), [...f.kernels, ...b.kernels]);
    expect(() => same(f.kernels[0], b.kernels[0], bin, d, false)).toThrow();
  }, 900_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped _zb walks (none / scalar decay: default, few rows, 3xTF32 twins, the walks for many rows) for sm_90; ptxas: no spills", () => {
    const zb = <T extends DeltaWalkConfig>(cs: readonly T[]) => cs.map((c) => ({ ...c, zout: "bf16" as const }));
    const m1 = deltaWalkModule(zb([...DELTA_WALK_CONFIGS, ...DELTA_WALK_FEW_CONFIGS])), m2 = deltaWalkMmaModule(zb([...DELTA_WALK_MMA_CONFIGS, ...DELTA_WALK_WIDE_CONFIGS]));
    const usage = [...ptxasUsage(findNvcc()!, m1.source, m1.kernels.map((k) => k.entry)), ...ptxasUsage(findNvcc()!, m2.source, m2.kernels.map((k) => k.entry))];
    for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 255], `${e}`).toEqual([0, 0, true]);
    console.log(`delta _zb walks ptxas sm_90: ${usage.map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
  }, 300_000);
});

describe.skipIf(!gpp)("the per-key 3xTF32 walk for many rows (DELTA_WALK_KEY_WIDE_CONFIGS, RWKV-7 at K = V = 128; LR_DELTA_KEY_WALK \"many\")", () => {
  it("both directions, nC = 1 and 3, Z0 null and given: within 1e-6 of float64; a broken copy (every row of a block scaled by row 0's decay) fails; nvcc sm_90: no spills", () => {
    const m = deltaWalkMmaModule(DELTA_WALK_KEY_WIDE_CONFIGS);
    expect(m.kernels.map((k) => [k.entry, k.cols, k.threads, k.sharedBytes, k.walkFor])).toEqual([["seqc_delta_walk_key_c64k128v128_g64_w2_tf32x3", 64, 256, 173056, "many"]]);
    const k = m.kernels[0], bin = buildEmu(m.source, m.kernels);
    let e = 0;
    for (const nC of [1, 3])
      for (const z0 of [false, true])
        for (const reverse of [false, true]) e = Math.max(e, error(k, bin, data(k, 2, nC, z0, 61 + nC + (z0 ? 1 : 0)), reverse));
    console.log(`per-key walk for many rows, emulation: ${k.entry} ${e.toExponential(2)}`);
    expect(e).toBeLessThan(1e-6);
    const from = "A[n * 128u + (2u * wr + 1u) * 16u + g + 8u]", b = deltaWalkMmaModule(DELTA_WALK_KEY_WIDE_CONFIGS, (src) => {
      expect(src).toContain(from);
      return src.replaceAll(from, "A[n * 128u + (2u * wr + 0u) * 16u + g + 0u]");
    });
    expect(error(b.kernels[0], buildEmu(b.source, b.kernels), data(k, 2, 3, true, 3), true)).toBeGreaterThan(1e-2);
    if (findNvcc()) for (const [en, u] of ptxasUsage(findNvcc()!, m.source, [k.entry])) expect([u.spillStores, u.spillLoads, u.registers <= 255], en).toEqual([0, 0, true]);
  }, 900_000);
});
