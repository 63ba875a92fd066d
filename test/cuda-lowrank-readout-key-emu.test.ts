/**
 * The fused readouts with a per-key log decay (compiler/backends/cuda/lowrank-readout-key.ts; runtime/torch/
 * seqc_chunked_lowrank.py LR_READ_KEY "cuda", RWKV-7) on the CPU emulation of CUDA (test/cuda-emu/emu.h) against the
 * recurrence itself in float64:
 *   S_t = diag(exp(ld_t)) S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T,  key axis y_a = S_{a+oq}^T q_a,  value axis x_a = S_{a+oq} z_a
 * from a random start state S_0, every read before (oq = 0) and after (oq = 1) its step, one and two query vectors per
 * step, per-key log decays uniform in [minLd, 0] down to -20 a step (some keys near 0, others far below: every exp of a
 * difference must stay finite), padded tails (zero events, zero log decay), one step in use, small configurations (C 4 /
 * 16 / 32 / 48, K != V, M 1 / 2 / 3) and the shipped C = K = V = 64, M = 2 ones. Besides the whole output's relative
 * error, each step's output row against its own norm (a read dominated by its last steps must be right too); every
 * output finite (a NaN or an infinity counts as an infinite error).
 * Deliberately broken copies must fail (the key axis's split of an off-diagonal ratio at the wrong time, the diagonal
 * tile seeing its own step before it, the start term without its decay; the value axis's Horner carry one step off, the
 * tile's own steps without their decay). The pre-decayed forms of both axes (form "pre", entries _pre) the same way,
 * with their own broken copies. nvcc -cubin for sm_90 where installed: no spills, <= 128 registers.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOWRANK_READ_KEY_CONFIGS, lowRankReadKeyModule, type LowRankReadKeyConfig, type LowRankReadKeyKernel } from "../compiler/backends/cuda/lowrank-readout-key.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { data, reference, type Data } from "./helpers/lowrank-readout-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-readout-key-emu.test: g++ is not installed, so the emulated runs are skipped");

/** An emulator executable for a module: argv dir (Q, EA, EB, S0, G, OUT .bin float32), entry, N, threads, smem, oq, mq[,
 * mirror]; writes OUT.out. */
function buildEmu(source: string, kernels: LowRankReadKeyKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)P[0], (const float*)P[1], (const float*)P[2], (const float*)P[3], (const float*)P[4], (float*)P[5], NN, OQ, MQ, MIRROR); }`);
  const main = `
static void* P[6]; static unsigned NN, OQ, MQ, MIRROR;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  NN = (unsigned)atoi(argv[3]);
  unsigned threads = (unsigned)atoi(argv[4]), smem = (unsigned)atoi(argv[5]);
  OQ = (unsigned)atoi(argv[6]); MQ = (unsigned)atoi(argv[7]); MIRROR = argc > 8 ? (unsigned)atoi(argv[8]) : 0u;
  std::vector<char> b[6] = {readf(dir + "/Q.bin"), readf(dir + "/EA.bin"), readf(dir + "/EB.bin"), readf(dir + "/S0.bin"), readf(dir + "/G.bin"), readf(dir + "/OUT.bin")};
  for (int i = 0; i < 6; ++i) P[i] = b[i].data();
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = NN; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  FILE* f = fopen((dir + "/OUT.out").c_str(), "wb"); fwrite(b[5].data(), 1, b[5].size(), f); fclose(f);
  return 0;
}
`;
  return compileLowRankEmu(source, main, "lowrank-readout-key", false);
}

/** The kernel's OUT on the emulation: the key axis takes EA = KK, EB = VV; the value axis EA = VV, EB = KK. */
function runEmu(bin: string, k: LowRankReadKeyKernel, d: Data, oq: number, mirror = 0): Float64Array {
  return inScratchDir("seqc-lrreadkey-", (dir) => {
    const key = k.axis === "key", B = key ? k.V : k.K;
    writeFileSync(join(dir, "Q.bin"), f32Bytes(d.Q));
    writeFileSync(join(dir, "EA.bin"), f32Bytes(key ? d.KK : d.VV));
    writeFileSync(join(dir, "EB.bin"), f32Bytes(key ? d.VV : d.KK));
    writeFileSync(join(dir, "S0.bin"), f32Bytes(d.S0));
    writeFileSync(join(dir, "G.bin"), f32Bytes(d.G));
    writeFileSync(join(dir, "OUT.bin"), f32Bytes(new Float64Array(d.N * k.C * d.mq * B).fill(NaN))); // the kernel must write every output
    execFileSync(bin, [dir, k.entry, String(d.N), String(k.threads), String(k.sharedBytes), String(oq), String(d.mq), String(mirror)], { stdio: "pipe" });
    return readF32(join(dir, "OUT.out"));
  });
}

/** The whole output's relative error and the largest of each output row's error against that row's norm (rows whose
 * reference is all zero: padding, which must come out zero). */
function errors(k: LowRankReadKeyKernel, bin: string, d: Data, oq: number): { all: number; row: number } {
  const got = runEmu(bin, k, d, oq), want = reference(k, d, oq, true);
  if (!got.every(Number.isFinite)) return { all: Infinity, row: Infinity };
  const B = k.axis === "key" ? k.V : k.K;
  let row = 0;
  for (let r = 0; r < got.length / B; r++) {
    const g = got.subarray(r * B, (r + 1) * B), w = want.subarray(r * B, (r + 1) * B);
    row = Math.max(row, w.every((x) => x === 0) ? (g.every((x) => x === 0) ? 0 : Infinity) : relativeError(g, w));
  }
  return { all: relativeError(got, want), row };
}

/** Rows [N, C, w] (w = the rest of a row's step) of lines of nC chunks in the reversed order: row n's step a becomes row
 * n - n % nC + nC - 1 - n % nC's step C - 1 - a (the chain's reversed timeline of a line; its own inverse). */
function mirrorRows(x: Float64Array, N: number, C: number, nC: number): Float64Array {
  const w = x.length / (N * C), out = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    const nm = n - (n % nC) + nC - 1 - (n % nC);
    for (let a = 0; a < C; a++) out.set(x.subarray((n * C + a) * w, (n * C + a + 1) * w), (nm * C + C - 1 - a) * w);
  }
  return out;
}

/** The kernel with mirror = nC on Q stored mirrored, its OUT mirrored back: bitwise the plain run's OUT? (the largest
 * difference; 0 where bitwise). */
function mirrorDiff(k: LowRankReadKeyKernel, bin: string, d: Data, oq: number, nC: number): number {
  const want = runEmu(bin, k, d, oq);
  const got = mirrorRows(runEmu(bin, k, { ...d, Q: mirrorRows(d.Q, d.N, k.C, nC) }, oq, nC), d.N, k.C, nC);
  let m = 0;
  for (let i = 0; i < got.length; i++) m = Math.max(m, Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - want[i]));
  return m;
}

const SMALL: LowRankReadKeyConfig[] = [
  { axis: "key", C: 16, K: 8, V: 12, M: 2 },
  { axis: "value", C: 32, K: 12, V: 20, M: 1 },
  { axis: "key", C: 48, K: 16, V: 8, M: 3 },
  { axis: "value", C: 16, K: 20, V: 4, M: 2 },
  { axis: "key", C: 4, K: 4, V: 8, M: 1 },
  { axis: "value", C: 4, K: 8, V: 4, M: 3 },
  // the pre-decayed forms
  { axis: "key", C: 16, K: 8, V: 12, M: 2, form: "pre" },
  { axis: "key", C: 48, K: 16, V: 8, M: 3, form: "pre" },
  { axis: "key", C: 4, K: 4, V: 8, M: 1, form: "pre" },
  { axis: "key", C: 32, K: 12, V: 20, M: 1, form: "pre" },
  { axis: "value", C: 32, K: 12, V: 20, M: 1, form: "pre" },
  { axis: "value", C: 16, K: 20, V: 4, M: 2, form: "pre" },
  { axis: "value", C: 4, K: 8, V: 4, M: 3, form: "pre" },
  { axis: "value", C: 48, K: 16, V: 8, M: 2, form: "pre" },
];

describe.skipIf(!gpp)("low-rank chunk readouts with a per-key decay on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations: both axes, before / after the step, one and two query vectors, per-key log decays to -20, padded tails, one step in use", () => {
    const m = lowRankReadKeyModule(SMALL);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [used, mq, minLd] of [[k.C, 2, -1], [k.C - 3, 1, -20], [1, 2, -20], [k.C, 1, -0.1], [k.C, 2, -5]] as const)
        for (const oq of [0, 1]) {
          const e = errors(k, bin, data(k, 3, mq, Math.max(used, 1), minLd, 11 + 7 * i + used + mq, true), oq);
          expect(e.all, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}`).toBeLessThan(1e-5);
          expect(e.row, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}: rows`).toBeLessThan(1e-4);
        }
  }, 300_000);

  it("the shipped C = K = V = 64, M = 2 configurations (both axes, plain and pre-decayed): full and padded chunks, log decays to -1 / -20", () => {
    const m = lowRankReadKeyModule();
    expect(m.kernels.map((k) => k.entry)).toEqual(["seqc_lr_read_key_key_c64k64v64m2", "seqc_lr_read_value_key_c64k64v64m2", "seqc_lr_read_key_key_c64k64v64m2_pre", "seqc_lr_read_value_key_c64k64v64m2_pre"]);
    expect(LOWRANK_READ_KEY_CONFIGS.map((c) => `${c.axis}${c.form ? ` ${c.form}` : ""}`)).toEqual(["key", "value", "key pre", "value pre"]);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [used, mq, oq, minLd] of [[64, 2, 1, -1], [37, 1, 0, -20], [64, 1, 0, -0.05], [64, 2, 0, -20]] as const) {
        const e = errors(k, bin, data(k, 2, mq, used, minLd, 5 + i + used, true), oq);
        expect(e.all, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}`).toBeLessThan(1e-5);
        expect(e.row, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}: rows`).toBeLessThan(1e-4);
      }
  }, 400_000);

  it("deliberately broken copies fail", () => {
    const broken = (k: LowRankReadKeyConfig, from: string, to: string, oq: number, minLd = -1): number => {
      const m = lowRankReadKeyModule([k], (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      const e = errors(m.kernels[0], buildEmu(m.source, m.kernels), data(k, 2, 2, k.C, minLd, 3, true), oq);
      return Math.max(e.all, e.row);
    };
    const kk = SMALL[2], kv = { ...SMALL[1], M: 2 };
    // key axis: an off-diagonal ratio split at the chunk's end instead of the tile's first query (the same product in
    // exact arithmetic, but exp(G_{a+oq} - G_C) overflows and exp(G_C - G_{c+1}) underflows at log decays of -20)
    expect(broken(kk, "const float g0 = sG[(4u * ta) *", `const float g0 = sG[(${kk.C}u) *`, 1, -20)).toBe(Infinity);
    // key axis: the diagonal tile sees a read's own step before it
    expect(broken(kk, "if (s < p + oq) {", "if (s <= p + oq) {", 0)).toBeGreaterThan(1e-2);
    // key axis: the start term without its decay
    expect(broken(kk, "*= expf(sG[(a + oq) *", "*= 1.f + 0.f * (sG[(a + oq) *", 1)).toBeGreaterThan(1e-2);
    // value axis: the Horner carry by the next step's decay
    expect(broken(kv, `sG[(c + 1u) * ${kv.K + 4}u + (4u * tj)]`, `sG[(c + 2u) * ${kv.K + 4}u + (4u * tj)]`, 1)).toBeGreaterThan(1e-2);
    // value axis: the tile's own steps without their decay
    expect(broken(kv, "ae[p][j] = fmaf(expf(gq[j] - gc[j]), tm[p][j], ae[p][j]);", "ae[p][j] = fmaf(1.f, tm[p][j], ae[p][j]);", 1)).toBeGreaterThan(1e-2);
    // value axis: the start term without its decay
    expect(broken(kv, "fmaf(expf(ga.x), as[p][0]", "fmaf(1.f, as[p][0]", 0)).toBeGreaterThan(1e-2);
    // the pre-decayed form: the tile pair's factor one tile short; the events decayed to their own time instead of their
    // tile's end; a diagonal row sees its own step before it; the start term rescaled from the query's time
    const kp = { ...kk, form: "pre" as const }, LG = kp.K + 1;
    expect(broken(kp, `- sG[(4u * tc + 4u) * ${LG}u + (i)]`, `- sG[(4u * tc + 8u) * ${LG}u + (i)]`, 1)).toBeGreaterThan(1e-2);
    expect(broken(kp, `expf(sG[((cs | 3u) + 1u) * ${LG}u + (i)]`, `expf(sG[(cs + 1u) * ${LG}u + (i)]`, 1)).toBeGreaterThan(1e-2);
    expect(broken(kp, "if (s < p0 + oq) {", "if (s <= p0 + oq) {", 0)).toBeGreaterThan(1e-2);
    expect(broken(kp, `*= expf(sG[(a & ~3u) * ${LG}u + (i)]);`, `*= expf(sG[(a + oq) * ${LG}u + (i)]);`, 1)).toBeGreaterThan(1e-2);
    // the value axis's pre-decayed form: the tile carry one step short (exp(G_{4tc+3} - G_{4tc})); EB decayed to its own
    // time; the tile's own steps from the pre-decayed EB in shared memory instead of the raw one
    const vp = { ...kv, form: "pre" as const }, LV = vp.K + 4;
    expect(broken(vp, `sG[(4u * tc + 4u) * ${LV}u + (4u * tj)]`, `sG[(4u * tc + 3u) * ${LV}u + (4u * tj)]`, 1)).toBeGreaterThan(1e-2);
    expect(broken(vp, `expf(sG[((cs | 3u) + 1u) * ${LV}u + (j)]`, `expf(sG[(cs + 1u) * ${LV}u + (j)]`, 1)).toBeGreaterThan(1e-2);
    expect(broken(vp, `b4 = (*(const float4*)&ebg[(cs * ${vp.M}u + y) * ${vp.K}u + 4u * tj]);`, `b4 = (*(const float4*)&sB[(cs * ${vp.M}u + y) * ${vp.K}u + 4u * tj]);`, 1)).toBeGreaterThan(1e-2);
  }, 200_000);

  it("mirror (the chain's reversed timeline, LR_CHAIN_REV \"kernel\"): Q read and OUT written in the line's reversed order give bitwise the plain run's outputs; a copy that mirrors the steps but not the chunks fails", () => {
    const cfgs = [SMALL[0], SMALL[3], SMALL[6], SMALL[12], ...LOWRANK_READ_KEY_CONFIGS];
    const m = lowRankReadKeyModule(cfgs);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) {
      expect(k.mirror, k.entry).toBe(true);
      const big = k.C === 64;
      for (const [nL, nC, mq, oq, used] of (big ? [[1, 2, 2, 1, 64]] : [[2, 3, 2, 1, k.C], [1, 2, 1, 0, k.C - 3], [3, 1, 2, 0, k.C]]) as [number, number, number, number, number][]) {
        const d = data(k, nL * nC, mq, used, -5, 29 + i + nC, true);
        expect(mirrorDiff(k, bin, d, oq, nC), `${k.entry} lines ${nL} chunks ${nC} mq ${mq} oq ${oq} used ${used}`).toBe(0);
      }
    }
    for (const k of [SMALL[0], SMALL[3], SMALL[6]]) {
      const b = lowRankReadKeyModule([k], (src) => {
        expect(src).toContain("(mirror - 1u - n % mirror)");
        return src.replace("(mirror - 1u - n % mirror)", "(n % mirror)");
      });
      expect(mirrorDiff(b.kernels[0], buildEmu(b.source, b.kernels), data(k, 4, 2, k.C, -5, 41, true), 1, 2), `${k.axis} ${k.form ?? ""}: chunks not mirrored`).toBeGreaterThan(1e-3);
    }
  }, 600_000);

  it("configurations that do not fit are refused; the shipped ones fit two blocks an SM (<= 113 KiB each)", () => {
    expect(() => lowRankReadKeyModule([{ axis: "key", C: 64, K: 10, V: 20, M: 2 }])).toThrow(/multiples of 4/);
    expect(() => lowRankReadKeyModule([{ axis: "key", C: 80, K: 8, V: 8, M: 2 }])).toThrow(/C <= 64/);
    expect(() => lowRankReadKeyModule([{ axis: "key", C: 64, K: 128, V: 128, M: 4 }])).toThrow(/shared memory/);
    for (const k of lowRankReadKeyModule().kernels) expect(k.sharedBytes, k.entry).toBeLessThanOrEqual(113 * 1024);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped module for sm_90; ptxas: no spills, <= 128 registers (two 256-thread blocks an SM)", () => {
    const m = lowRankReadKeyModule();
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
    }
  }, 600_000);
});
