/**
 * The delta backward's walk with bf16 operands (compiler/backends/cuda/delta-walk-bf16.ts) on the CPU emulation of CUDA
 * (test/cuda-emu/emu.h: emu_mma's m16n8k16 bf16 fragments, cp.async as copies):
 *   Z = Z0 (or 0); per chunk c in order or reversed: ZS[c] = Z, Yc = X[c] + M[c] Z, Y[c] = Yc, Z = A[c] Z + BM[c] + NN[c]^T Yc;
 *   ZF = Z
 * with M and NN^T ([N, K, C]) given as bf16 (X and BM too with win "all"). Two references in float64 on the same bf16
 * inputs: the exact walk (every output within 2e-2: the operands Z and Yc are rounded to bf16 in the products, and ZS
 * and Y are stored as bf16; above 1e-4 where Z is not 0 from the start) and the walk that rounds Z and Yc to bf16 where the kernel does (ZF, float32, within 1e-4:
 * only the fp32 accumulation differs; a misplaced fragment or copy is off by O(1)). Both directions, nC = 1 and 5
 * (17 on the shipped K = 64), Z0 null and given; small configurations (C = 16 / 32, K = 2 C, column groups, three
 * buffer sets) and the shipped ones (DELTA_WALK_BF16_CONFIGS); deliberately broken copies fail; nvcc -cubin for sm_90
 * where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DELTA_WALK_BF16_CONFIGS, DELTA_WALK_BF16_KEY_CONFIGS, deltaWalkBf16Module, type DeltaWalkBf16Config, type DeltaWalkBf16Kernel } from "../compiler/backends/cuda/delta-walk-bf16.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-walk-bf16-emu.test: g++ is not installed, so the emulated runs are skipped");

/** The inputs as float64 values (bf16-exact where the kernel reads bf16) and the bytes the kernel reads. */
interface Data { BH: number; nC: number; M: Float64Array; X: Float64Array; BM: Float64Array; NN: Float64Array; A: Float64Array; Z0: Float64Array | null; bytes: Record<string, Buffer> }
interface Walk { ZS: Float64Array; Y: Float64Array; ZF: Float64Array }

const FILES = ["M", "X", "BM", "NN", "A", "Z0", "ZS", "Y", "ZF"];

/** BH rows of nC chunks: M, NN uniform in (-1, 1) / sqrt(K), X, BM, Z0 in (-1, 1), A in [0.525, 1]; M and NN rounded to
 * bf16 (NN handed over transposed, [N, K, C]); X and BM rounded too with win "all", else float32. */
function data(c: DeltaWalkBf16Config, BH: number, nC: number, z0: boolean, seed: number): Data {
  const { C, K, V } = c, r = rng(seed), f = Math.fround, N = BH * nC;
  const u = (n: number, s: number) => Float64Array.from({ length: n }, () => f((2 * r() - 1) * s));
  const M = bf16(u(N * C * K, 1 / Math.sqrt(K))), NNraw = u(N * C * K, 1 / Math.sqrt(K));
  const NNt = new Float64Array(N * K * C); // [n][i][a] = NN[n][a][i]
  for (let n = 0; n < N; n++) for (let a = 0; a < C; a++) for (let i = 0; i < K; i++) NNt[(n * K + i) * C + a] = NNraw[(n * C + a) * K + i];
  const NNb = bf16(NNt), NN = new Float64Array(N * C * K);
  for (let n = 0; n < N; n++) for (let a = 0; a < C; a++) for (let i = 0; i < K; i++) NN[(n * C + a) * K + i] = NNb.values[(n * K + i) * C + a];
  const xr = u(N * C * V, 1), br = u(N * K * V, 1), xb = c.win === "all";
  const X = xb ? bf16(xr) : { values: xr, words: f32Bytes(xr) }, BM = xb ? bf16(br) : { values: br, words: f32Bytes(br) };
  // per key (RWKV-7): exp of a chunk's summed log decays, each step's in [-20, 0]: mostly near 1, some tiny, some 0
  const A = c.perKey
    ? Float64Array.from({ length: N * K }, (_, i) => f(i % 7 === 3 ? Math.exp(-20 * 64 * (r() + 0.5)) : i % 7 === 5 ? Math.exp(-20 * (r() + 0.5)) : 0.525 + 0.475 * r()))
    : Float64Array.from({ length: N }, () => f(0.525 + 0.475 * r()));
  const Z0 = z0 ? u(BH * K * V, 1) : null;
  return {
    BH, nC, M: M.values, X: X.values, BM: BM.values, NN, A, Z0,
    bytes: { M: M.words, X: X.words, BM: BM.words, NN: NNb.words, A: f32Bytes(A), Z0: Z0 ? f32Bytes(Z0) : Buffer.alloc(4) },
  };
}

const rb = (x: number) => bf16(Float64Array.of(x)).values[0];

/** The walk in float64; `round`: Z and Yc rounded to bf16 where the kernel takes them as mma operands. */
function reference(c: DeltaWalkBf16Config, d: Data, reverse: boolean, round: boolean): Walk {
  const { C, K, V } = c, { BH, nC } = d;
  const ZS = new Float64Array(BH * nC * K * V), Y = new Float64Array(BH * nC * C * V), ZF = new Float64Array(BH * K * V);
  const op = (x: Float64Array) => (round ? x.map(rb) : x);
  for (let bh = 0; bh < BH; bh++) {
    let Z = d.Z0 ? Float64Array.from(d.Z0.subarray(bh * K * V, (bh + 1) * K * V), Math.fround) : new Float64Array(K * V);
    for (let s = 0; s < nC; s++) {
      const n = bh * nC + (reverse ? nC - 1 - s : s);
      ZS.set(Z, n * K * V);
      const Zo = op(Z), Yc = new Float64Array(C * V);
      for (let a = 0; a < C; a++)
        for (let j = 0; j < V; j++) {
          let acc = d.X[(n * C + a) * V + j];
          for (let l = 0; l < K; l++) acc += d.M[(n * C + a) * K + l] * Zo[l * V + j];
          Yc[a * V + j] = acc;
        }
      Y.set(Yc, n * C * V);
      const Yo = op(Yc), Zn = new Float64Array(K * V);
      for (let i = 0; i < K; i++)
        for (let j = 0; j < V; j++) {
          let acc = (c.perKey ? d.A[n * K + i] : d.A[n]) * Z[i * V + j] + d.BM[(n * K + i) * V + j];
          for (let a = 0; a < C; a++) acc += d.NN[(n * C + a) * K + i] * Yo[a * V + j];
          Zn[i * V + j] = acc;
        }
      Z = Zn;
    }
    ZF.set(Z, bh * K * V);
  }
  return { ZS, Y, ZF };
}

/** An emulator executable: argv dir (the FILES .bin), entry, BH, nC, reverse, z0 (0: Z0 nullptr), threads, smem, grid y;
 * writes ZS.out, Y.out, ZF.out. */
function buildEmu(source: string, kernels: DeltaWalkBf16Kernel[]): string {
  const main = `
static void* P[9]; static int BH_, NC_, REV_, Z0_;
${kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)P[0], (const float*)P[1], (const float*)P[2], (const float*)P[3], (const float*)P[4], Z0_ ? (const float*)P[5] : nullptr, (${k.zout === "f32" ? "float" : "unsigned short"}*)P[6], (${k.zout === "f32" ? "float" : "unsigned short"}*)P[7], (float*)P[8], BH_, NC_, REV_); }`).join("\n")}
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
  return compileLowRankEmu(source, main, "delta-walk-bf16", true);
}

function runEmu(bin: string, k: DeltaWalkBf16Kernel, d: Data, reverse: boolean): Walk {
  return inScratchDir("seqc-dwalkb-", (dir) => {
    const { C, K, V } = k, { BH, nC } = d;
    const zf = k.zout === "f32";
    const nan = (n: number) => Buffer.alloc((zf ? 4 : 2) * n, 0xff); // NaNs: the kernel must write every output
    const bufs: Record<string, Buffer> = { ...d.bytes, ZS: nan(BH * nC * K * V), Y: nan(BH * nC * C * V), ZF: f32Bytes(new Float64Array(BH * K * V).fill(NaN)) };
    for (const f of FILES) writeFileSync(join(dir, `${f}.bin`), bufs[f]);
    execFileSync(bin, [dir, k.entry, String(BH), String(nC), reverse ? "1" : "0", d.Z0 ? "1" : "0", String(k.threads), String(k.sharedBytes), String(V / k.cols)], { stdio: "pipe" });
    const h = (name: string, n: number) => {
      const raw = readFileSync(join(dir, `${name}.out`)), w = new Uint16Array(raw.buffer, raw.byteOffset, n), u32 = new Uint32Array(n);
      for (let i = 0; i < n; i++) u32[i] = w[i] << 16;
      return Float64Array.from(new Float32Array(u32.buffer));
    };
    return zf
      ? { ZS: readF32(join(dir, "ZS.out")), Y: readF32(join(dir, "Y.out")), ZF: readF32(join(dir, "ZF.out")) }
      : { ZS: h("ZS", BH * nC * K * V), Y: h("Y", BH * nC * C * V), ZF: readF32(join(dir, "ZF.out")) };
  });
}

/** [the largest relative error of ZS, Y, ZF vs the exact walk, ZF's vs the rounding walk] (Infinity: an output not written). */
function errors(k: DeltaWalkBf16Kernel, bin: string, d: Data, reverse: boolean): [number, number] {
  const got = runEmu(bin, k, d, reverse), exact = reference(k, d, reverse, false), rounded = reference(k, d, reverse, true);
  const outs = ["ZS", "Y", "ZF"] as const;
  if (!outs.every((o) => got[o].every(Number.isFinite))) return [Infinity, Infinity];
  return [Math.max(...outs.map((o) => relativeError(got[o], exact[o]))), relativeError(got.ZF, rounded.ZF)];
}

/** Every direction, nC and Z0 case of one kernel: the worst errors, each within its bound. */
function worst(k: DeltaWalkBf16Kernel, bin: string, BH: number, nCs: number[], seed: number): [number, number] {
  let e: [number, number] = [0, 0];
  for (const nC of nCs)
    for (const z0 of [false, true])
      for (const reverse of [false, true]) {
        const [x, y] = errors(k, bin, data(k, BH, nC, z0, seed + 7 * nC + (z0 ? 1 : 0)), reverse);
        const what = `${k.entry} nC=${nC} z0=${z0} reverse=${reverse}: exact ${x.toExponential(2)}, rounding walk's ZF ${y.toExponential(2)}`;
        expect(x, what).toBeLessThan(2e-2);
        if (z0 || nC > 1) expect(x, `${what}: the bf16 rounding shows`).toBeGreaterThan(1e-4);
        expect(y, what).toBeLessThan(1e-4);
        e = [Math.max(e[0], x), Math.max(e[1], y)];
      }
  return e;
}

const SMALL: DeltaWalkBf16Config[] = [
  { C: 16, K: 32, V: 16, cols: 8, win: "mn", walkFor: "few" },                            // two row blocks of Z a warp, two column blocks
  { C: 32, K: 32, V: 32, cols: 16, warpCols: 2, win: "all", walkFor: "many" },            // two row groups x two column groups
  { C: 16, K: 32, V: 32, cols: 16, win: "mn", stages: 3, walkFor: "few" },                // two n-tiles a warp, three sets
  { C: 32, K: 64, V: 32, cols: 32, warpCols: 2, win: "all", stages: 3, walkFor: "many" }, // K = 2 C, n-tiles 2 a warp, three sets
];

/** The error of a copy of c's kernel with every `from` in its source replaced by `to` (`from` must occur), on 2 rows
 * of 4 chunks with Z0 given: the larger of its two errors over their bounds. */
function brokenError(c: DeltaWalkBf16Config, from: string, to: string, reverse: boolean): number {
  const m = deltaWalkBf16Module([c], (src) => {
    expect(src).toContain(from);
    return src.replaceAll(from, to);
  });
  const [x, y] = errors(m.kernels[0], buildEmu(m.source, m.kernels), data(c, 2, 4, true, 3), reverse);
  return Math.max(x / 2e-2, y / 1e-4);
}

describe.skipIf(!gpp)("the delta walk with bf16 operands on the CPU emulation vs float64", () => {
  it("small configurations: both directions, nC = 1 and 5, Z0 null and given", () => {
    const m = deltaWalkBf16Module(SMALL);
    expect(m.kernels.map((k) => k.threads)).toEqual([32, 128, 32, 128]);
    const bin = buildEmu(m.source, m.kernels);
    const lines = m.kernels.map((k, i) => { const [x, y] = worst(k, bin, 2, [1, 5], 11 + 100 * i); return `${k.entry}: exact ${x.toExponential(2)}, rounding walk ${y.toExponential(2)}`; });
    console.log(lines.join("\n"));
  }, 600_000);

  it("the shipped configurations (C = 64, K = V = 64 and 128; many rows and few; M and NN bf16, or all four operands): both directions, nC = 1 and 5 (17 at K = 64 many), Z0 null and given", () => {
    const m = deltaWalkBf16Module();
    expect(m.kernels.map((k) => [k.entry, k.cols, k.threads, k.walkFor])).toEqual([
      ["seqc_delta_walk_c64k64v64_g32_bf16_zb", 32, 128, "many"],
      ["seqc_delta_walk_c64k64v64_g8_bf16_zb", 8, 128, "few"],
      ["seqc_delta_walk_c64k128v128_g64_w2_bf16_zb", 64, 256, "many"],
      ["seqc_delta_walk_c64k128v128_g8_p3_bf16_zb", 8, 128, "few"],
      ["seqc_delta_walk_c64k64v64_g32_bf16x_zb", 32, 128, "many"],
      ["seqc_delta_walk_c64k64v64_g8_bf16x_zb", 8, 128, "few"],
      ["seqc_delta_walk_c64k128v128_g64_w2_bf16x_zb", 64, 256, "many"],
      ["seqc_delta_walk_c64k128v128_g8_p3_bf16x_zb", 8, 128, "few"],
    ]);
    expect(DELTA_WALK_BF16_CONFIGS.length).toBe(8);
    const bin = buildEmu(m.source, m.kernels);
    const lines = m.kernels.map((k, i) => {
      const [x, y] = worst(k, bin, k.K === 128 ? 1 : 2, k.K === 64 && k.walkFor === "many" ? [1, 17] : [1, 5], 5 + 31 * i);
      return `${k.entry}: exact ${x.toExponential(2)}, rounding walk ${y.toExponential(2)}`;
    });
    console.log(lines.join("\n"));
  }, 1_800_000);

  it("per-key decay (A [N, K], RWKV-7's range: exp of [-20, 0] a step summed over a chunk, 0 included) with float32 ZS and Y: small configurations and the shipped key walks, both directions, nC = 1 and 5, Z0 null and given", () => {
    const small = deltaWalkBf16Module(SMALL.map((c) => ({ ...c, perKey: true, zout: "f32" as const })));
    const m = deltaWalkBf16Module(DELTA_WALK_BF16_KEY_CONFIGS);
    expect(m.kernels.map((k) => [k.entry, k.cols, k.threads, k.walkFor, k.zout])).toEqual([
      ["seqc_delta_walk_key_c64k64v64_g32_bf16", 32, 128, "many", "f32"],
      ["seqc_delta_walk_key_c64k64v64_g8_bf16", 8, 128, "few", "f32"],
      ["seqc_delta_walk_key_c64k128v128_g64_w2_bf16", 64, 256, "many", "f32"],
      ["seqc_delta_walk_key_c64k128v128_g8_p3_bf16", 8, 128, "few", "f32"],
    ]);
    const lines: string[] = [];
    for (const mod of [small, m]) {
      const bin = buildEmu(mod.source, mod.kernels);
      mod.kernels.forEach((k, i) => {
        const [x, y] = worst(k, bin, k.K === 128 ? 1 : 2, [1, 5], 17 + 13 * i);
        lines.push(`${k.entry}: exact ${x.toExponential(2)}, rounding walk ${y.toExponential(2)}`);
      });
    }
    console.log(lines.join("\n"));
  }, 1_800_000);

  it("per-key broken copies fail: a row block scaled by another row's decay; Y's float32 pair swapped", () => {
    const c = { ...SMALL[3], perKey: true, zout: "f32" as const };
    expect(brokenError(c, "an[1][0] = A[n * 64u + (2u * wr + 1u) * 16u + g + 0u];", "an[1][0] = A[n * 64u + g];", false)).toBeGreaterThan(1);
    expect(brokenError(c, "make_float2(y[0][0], y[0][1]);", "make_float2(y[0][1], y[0][0]);", true)).toBeGreaterThan(1);
  }, 300_000);

  it("deliberately broken copies fail: phase 2's A fragment without its second k half; Z^T's second column staged into the first; the reversed walk's copies of the chunk forwards; BM without the block's column offset; the third set reused a step early", () => {
    const [c0, c1, c2, c3] = SMALL;
    const cases: [DeltaWalkBf16Config, string, string, boolean][] = [
      [c0, "fa[2] = *(const u32*)&sN[((2u * w + 0u) * 16u + g) * 24u + k0 + 2u * tg + 8u]", "fa[2] = *(const u32*)&sN[((2u * w + 0u) * 16u + g) * 24u + k0 + 2u * tg]", false],
      [c1, "sZt[(col + 1u) * 40u + row] = (unsigned short)(p >> 16);", "sZt[col * 40u + row] = (unsigned short)(p >> 16);", false],
      [c2, "(reverse ? nC - 1 - (s + 2) : (s + 2))", "(s + 2)", true],
      [c1, "gB + (size_t)r * 32u + j0 + q", "gB + (size_t)r * 32u + q", false],
      [c3, "(u32)(s + 2) % 3u", "(u32)(s + 1) % 3u", false],
    ];
    for (const [c, from, to, reverse] of cases) expect(brokenError(c, from, to, reverse), from).toBeGreaterThan(1);
  }, 300_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped bf16 walks (the per-key ones too) for sm_90; ptxas: no spills", () => {
    const m = deltaWalkBf16Module([...DELTA_WALK_BF16_CONFIGS, ...DELTA_WALK_BF16_KEY_CONFIGS]);
    expect(m.source).toContain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
    const use = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const k of m.kernels) expect(use.get(k.entry)!.spillStores + use.get(k.entry)!.spillLoads, `${k.entry}: spills`).toBe(0);
  }, 200_000);
});
