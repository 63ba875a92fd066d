/**
 * The low-rank walks over the chunks (compiler/backends/cuda/lowrank-pass.ts; runtime/torch/seqc_chunked_lowrank.py
 * LR_PASS "cuda") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against the recurrences in float64:
 *   "fwd"  S_{c+1} = A_c S_c + B_c (OUT[c] = S_c),   "adj"  L_c = A_c^T L_{c+1} + B_c (OUT[c] = L_{c+1}),   FIN the last
 * with B_c inside the transitions' rows (wb = wa = K + V, the glue's [A | B]) and as a tensor of its own (wb = V), one
 * chunk and several, small configurations (K != V, tiles not a multiple of the threads) and the shipped K = V = 64 and
 * 128; the value-column groups (a (R, V / G) grid: small G dividing V, the shipped K = V = 128 G = 32 / 16, one chunk
 * and 33); deliberately broken copies (the forward walk reading A untransposed; the next chunk's transition not
 * prefetched; a group's B_c, start state or FIN without its column offset) must fail; nvcc -cubin for sm_90 where
 * installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOWRANK_PASS_COL_CONFIGS, LOWRANK_PASS_CONFIGS, lowRankPassModule, type LowRankPassConfig, type LowRankPassKernel } from "../compiler/backends/cuda/lowrank-pass.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-pass-emu.test: g++ is not installed, so the emulated runs are skipped");

interface Data { R: number; nC: number; wa: number; wb: number; inline: boolean; A: Float64Array; B: Float64Array; S0: Float64Array }

/** R rows of nC chunks: A [R, nC, K, wa] (wa = K + V: B_c in columns K.. when inline, else wa = K and B [R, nC, K, V]),
 * S0 [R, K, V]; transitions near a decayed identity (so that the walk neither dies out nor blows up), float32-exact. */
function data(c: LowRankPassConfig, R: number, nC: number, inline: boolean, seed: number): Data {
  const { K, V } = c, r = rng(seed), f = Math.fround;
  const wa = inline ? K + V : K, wb = inline ? K + V : V;
  const A = new Float64Array(R * nC * K * wa), B = inline ? A : new Float64Array(R * nC * K * V);
  for (let x = 0; x < R * nC * K; x++) {
    const i = x % K;
    for (let l = 0; l < K; l++) A[x * wa + l] = f((l === i ? 0.9 : 0) + (r() - 0.5) / Math.sqrt(K));
    for (let j = 0; j < V; j++) B[x * wb + (inline ? K : 0) + j] = f(2 * r() - 1);
  }
  const S0 = Float64Array.from({ length: R * K * V }, () => f(2 * r() - 1));
  return { R, nC, wa, wb, inline, A, B, S0 };
}

/** The recurrence in float64: OUT [R, nC, K, V] and FIN [R, K, V]. */
function reference(c: LowRankPassConfig, d: Data): { out: Float64Array; fin: Float64Array } {
  const { K, V } = c, { R, nC, wa, wb } = d, bo = d.inline ? K : 0;
  const out = new Float64Array(R * nC * K * V), fin = new Float64Array(R * K * V);
  for (let r = 0; r < R; r++) {
    let S = d.S0.slice(r * K * V, (r + 1) * K * V);
    for (let s = 0; s < nC; s++) {
      const ch = c.dir === "fwd" ? s : nC - 1 - s;
      out.set(S, (r * nC + ch) * K * V);
      const N = new Float64Array(K * V);
      for (let i = 0; i < K; i++)
        for (let j = 0; j < V; j++) {
          let acc = d.B[((r * nC + ch) * K + i) * wb + bo + j];
          for (let l = 0; l < K; l++) acc += (c.dir === "fwd" ? d.A[((r * nC + ch) * K + i) * wa + l] : d.A[((r * nC + ch) * K + l) * wa + i]) * S[l * V + j];
          N[i * V + j] = acc;
        }
      S = N;
    }
    fin.set(S, r * K * V);
  }
  return { out, fin };
}

/** An emulator executable for a module: argv dir (A, B, S0, OUT, FIN .bin float32), entry, R, nC, wa, wb, boff (B's
 * offset in floats into the A buffer when inline, else -1: its own buffer), threads, smem; writes OUT.out, FIN.out. */
function buildEmu(source: string, kernels: LowRankPassKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)P[0], WA, BP, WB, (const float*)P[2], (float*)P[3], (float*)P[4], RR, NC); }`);
  const main = `
static void* P[5]; static const float* BP; static unsigned RR, NC, WA, WB;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  RR = (unsigned)atoi(argv[3]); NC = (unsigned)atoi(argv[4]); WA = (unsigned)atoi(argv[5]); WB = (unsigned)atoi(argv[6]);
  int boff = atoi(argv[7]);
  unsigned threads = (unsigned)atoi(argv[8]), smem = (unsigned)atoi(argv[9]), gy = (unsigned)atoi(argv[10]);
  std::vector<char> b[5] = {readf(dir + "/A.bin"), readf(dir + "/B.bin"), readf(dir + "/S0.bin"), readf(dir + "/OUT.bin"), readf(dir + "/FIN.bin")};
  for (int i = 0; i < 5; ++i) P[i] = b[i].data();
  BP = boff >= 0 ? (const float*)P[0] + boff : (const float*)P[1];
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = RR; g.y = gy; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  FILE* f = fopen((dir + "/OUT.out").c_str(), "wb"); fwrite(b[3].data(), 1, b[3].size(), f); fclose(f);
  f = fopen((dir + "/FIN.out").c_str(), "wb"); fwrite(b[4].data(), 1, b[4].size(), f); fclose(f);
  return 0;
}
`;
  return compileLowRankEmu(source, main, "lowrank-pass", false);
}

function runEmu(bin: string, k: LowRankPassKernel, d: Data): { out: Float64Array; fin: Float64Array } {
  return inScratchDir("seqc-lrpass-", (dir) => {
    const { K, V } = k;
    writeFileSync(join(dir, "A.bin"), f32Bytes(d.A));
    writeFileSync(join(dir, "B.bin"), d.inline ? Buffer.alloc(4) : f32Bytes(d.B));
    writeFileSync(join(dir, "S0.bin"), f32Bytes(d.S0));
    writeFileSync(join(dir, "OUT.bin"), f32Bytes(new Float64Array(d.R * d.nC * K * V).fill(NaN))); // the kernel must write every output
    writeFileSync(join(dir, "FIN.bin"), f32Bytes(new Float64Array(d.R * K * V).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(d.R), String(d.nC), String(d.wa), String(d.wb), String(d.inline ? K : -1), String(k.threads), String(k.sharedBytes), String(k.G ? k.V / k.G : 1)], { stdio: "pipe" });
    return { out: readF32(join(dir, "OUT.out")), fin: readF32(join(dir, "FIN.out")) };
  });
}

function error(k: LowRankPassKernel, bin: string, d: Data): number {
  const got = runEmu(bin, k, d), want = reference(k, d);
  expect(got.out.every(Number.isFinite) && got.fin.every(Number.isFinite), `${k.entry}: finite outputs`).toBe(true);
  return Math.max(relativeError(got.out, want.out), relativeError(got.fin, want.fin));
}

const SMALL: LowRankPassConfig[] = [
  { dir: "fwd", K: 8, V: 12 },
  { dir: "adj", K: 12, V: 8 },
  { dir: "fwd", K: 36, V: 40 }, // 90 tiles: fewer than the threads
  { dir: "adj", K: 4, V: 4 },
];

describe.skipIf(!gpp)("low-rank walks over the chunks kernel on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations: both directions, B inside the transitions' rows and on its own, one chunk and several", () => {
    const m = lowRankPassModule(SMALL);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [R, nC, inline] of [[3, 5, true], [2, 1, false], [1, 7, false]] as const) {
        const e = error(k, bin, data(k, R, nC, inline, 3 + 5 * i + nC));
        expect(e, `${k.entry} R=${R} nC=${nC} inline=${inline}`).toBeLessThan(1e-5);
      }
  }, 300_000);

  it("the shipped K = V = 64 and 128 configurations: both directions, B inline ([A | B] of width K + V) and separate, 33 chunks", () => {
    const m = lowRankPassModule(LOWRANK_PASS_CONFIGS);
    expect(m.kernels.map((k) => k.entry)).toEqual(["seqc_lr_pass_fwd_k64v64", "seqc_lr_pass_fwd_k128v128", "seqc_lr_pass_adj_k64v64", "seqc_lr_pass_adj_k128v128"]);
    expect(LOWRANK_PASS_CONFIGS.length).toBe(4);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const inline of [true, false]) expect(error(k, bin, data(k, 2, 33, inline, 17 + i)), `${k.entry} inline=${inline}`).toBeLessThan(1e-5);
  }, 400_000);

  const SMALL_COLS: LowRankPassConfig[] = [
    { dir: "fwd", K: 12, V: 16, G: 8 },
    { dir: "adj", K: 8, V: 24, G: 12 },
    { dir: "fwd", K: 20, V: 12, G: 4 },
  ];

  it("value-column groups: small configurations and the shipped K = V = 128 G = 32 / 16, both directions, B inline and separate, one chunk and 33", () => {
    const module = lowRankPassModule();
    expect(module.kernels.map((k) => k.entry).slice(4)).toEqual(["seqc_lr_pass_fwd_k128v128_g32", "seqc_lr_pass_fwd_k128v128_g16", "seqc_lr_pass_adj_k128v128_g32", "seqc_lr_pass_adj_k128v128_g16"]);
    expect(module.kernels.slice(4).map((k) => k.sharedBytes)).toEqual([83968, 75776, 83968, 75776]);
    const m = lowRankPassModule([...SMALL_COLS, ...LOWRANK_PASS_COL_CONFIGS]);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [R, nC, inline] of (k.K === 128 ? [[1, 33, true], [2, 1, false]] : [[3, 5, true], [2, 1, false], [1, 7, false]]) as [number, number, boolean][]) {
        const e = error(k, bin, data(k, R, nC, inline, 29 + 3 * i + nC));
        expect(e, `${k.entry} R=${R} nC=${nC} inline=${inline}`).toBeLessThan(1e-5);
      }
  }, 600_000);

  it("broken value-column groups fail: B_c, the start state or FIN without the group's column offset", () => {
    const k0 = SMALL_COLS[0];
    for (const [from, to] of [
      ["Bp + (size_t)r * nC * KK * wb + j0;", "Bp + (size_t)r * nC * KK * wb;"],
      ["+ (x / 8u) * 16u + j0 + x % 8u];", "+ (x / 8u) * 16u + x % 8u];"],
      ["* 16u + j0 + 4u * (x % 2u)] =", "* 16u + 4u * (x % 2u)] ="],
    ]) {
      const m = lowRankPassModule([k0], (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      // outputs a broken copy never writes stay NaN: counted as an infinite error
      const d = data(k0, 2, 3, false, 7), got = runEmu(buildEmu(m.source, m.kernels), m.kernels[0], d), want = reference(k0, d);
      const e = got.out.every(Number.isFinite) && got.fin.every(Number.isFinite) ? Math.max(relativeError(got.out, want.out), relativeError(got.fin, want.fin)) : Infinity;
      expect(e, from).toBeGreaterThan(1e-2);
    }
  }, 200_000);

  it("deliberately broken copies fail: the forward walk reads A untransposed; the next chunk's transition is not prefetched", () => {
    const k0 = SMALL[0];
    const untr = lowRankPassModule([k0], (src) => {
      expect(src).toContain("sM[(x % KK) * LM + x / KK] = pre[q]");
      return src.replace("sM[(x % KK) * LM + x / KK] = pre[q]", "sM[(x / KK) * LM + x % KK] = pre[q]");
    });
    expect(error(untr.kernels[0], buildEmu(untr.source, untr.kernels), data(k0, 2, 4, true, 5))).toBeGreaterThan(1e-2);
    const stale = lowRankPassModule([k0], (src) => {
      expect(src).toContain("if (s + 1u < nC) {");
      return src.replace("if (s + 1u < nC) {", "if (false) {");
    });
    expect(error(stale.kernels[0], buildEmu(stale.source, stale.kernels), data(k0, 2, 4, false, 6))).toBeGreaterThan(1e-2);
  }, 100_000);

  it("configurations that do not fit are refused", () => {
    expect(() => lowRankPassModule([{ dir: "fwd", K: 10, V: 8 }])).toThrow(/multiples of 4/);
    expect(() => lowRankPassModule([{ dir: "fwd", K: 256, V: 256 }])).toThrow(/tiles|shared memory/);
    expect(() => lowRankPassModule([{ dir: "fwd", K: 128, V: 128, G: 24 }])).toThrow(/divides V/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped module for sm_90; ptxas: no spills", () => {
    const m = lowRankPassModule();
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
    }
  }, 500_000);
});
