/**
 * The chunk-state backward's per-chunk kernels (compiler/backends/cuda/lowrank-wy.ts; runtime/torch/seqc_lowrank_wy.py
 * with LR_FUSED_WY "cuda") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against their definitions in float64:
 *   pre  BQ = P1^T dY (P1[a, c] = exp(G_{a+1} - G_{c+1}) q_a . u_c, c <= a), BP = sum_a exp(G_{a+1}) q_a dy_a^T + XI^T BQ
 *   dr   (I - Luu^T) DR = BQ + exp(G_C - G_{c+1}) L^T u_c (Luu[a, c] = exp(G_a - G_{c+1}) w_a . u_c, c < a)
 * with strided rows as the glue hands them (U slot 0 of [N, C, 2, K], XI the first K columns of slot 0 of [N, C, 2, K + V]),
 * no decay and a scalar log decay down to -20 a step, padded tails (zero vectors, zero log decay), small configurations
 * (K != V != C) and the shipped C = 64, K = V = 64 and 128 (T = 1 among them); deliberately broken copies (the readouts' scores missing the
 * diagonal; the solve skipping the chunk's last step; at K = 128 dr's L^T u_c over the first 64 keys only and pre's
 * XI^T BQ over the first 32 steps only) must fail; nvcc -cubin for sm_90 where installed: no spills. The "pre" kernel's
 * tensor-core twins (math "tf32" / "tf32x3", compiler/backends/cuda/lowrank-wy-mma.ts) with the TF32 rounding and the
 * m16n8k8 fragments emulated (test/cuda-emu/mma-tf32.h): tf32x3 within 1e-5, tf32 within 1e-3 (and above 1e-5); broken
 * twins (the diagonal masked, BQ's reduction from one block late, BP without its XI^T BQ term) must fail. The same for the
 * "dr" twins (lowrank-wy-dr-mma.ts; small configurations and the shipped K = V = 128 ones), whose broken copies (Luu's
 * decay a step late, a 16-step block's triangle a step short, the blocks' update without its first 8 steps or over the
 * first 16 rows only, rhs without BQ or its decay) must fail.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOWRANK_WY_CONFIGS, LOWRANK_WY_MMA_CONFIGS, lowRankWyModule, type LowRankWyConfig, type LowRankWyKernel } from "../compiler/backends/cuda/lowrank-wy.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-wy-emu.test: g++ is not installed, so the emulated runs are skipped");

type Shape = Pick<LowRankWyConfig, "C" | "K" | "V" | "decay">;
interface Data { N: number; qs: number; us: number; xs: number; ws: number; ds: number; Q: Float64Array; U: Float64Array; DY: Float64Array; XI: Float64Array; W: Float64Array; G: Float64Array; L: Float64Array }

/** N chunks; rows of Q (stride K), U (2K), XI (2(K + V)), W (K), DY (ds, default V); G [N, C + 1] float32-rounded prefix sums of log
 * decays uniform in [minLd, 0]; steps past `used` padding. Every value float32-exact. */
function data(c: Shape, N: number, used: number, minLd: number, seed: number, ds = c.V): Data {
  const { C, K, V } = c, r = rng(seed), f = Math.fround;
  const qs = K, us = 2 * K, xs = 2 * (K + V), ws = K;
  const rows = (s: number, w: number, scale: number) => {
    const a = new Float64Array(N * C * s);
    for (let n = 0; n < N; n++) for (let x = 0; x < used; x++) for (let i = 0; i < w; i++) a[(n * C + x) * s + i] = f(scale * (2 * r() - 1));
    return a;
  };
  const Q = rows(qs, K, 1), U = rows(us, K, 1 / Math.sqrt(K)), XI = rows(xs, K, 1), W = rows(ws, K, 1 / Math.sqrt(K)), DY = rows(ds, V, 1);
  const G = new Float64Array(N * (C + 1));
  for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let s = 0; s < C; s++) {
      if (c.decay !== "none" && s < used) acc = f(acc + f((r() + 0.5) * minLd));
      G[n * (C + 1) + s + 1] = acc;
    }
  }
  const L = Float64Array.from({ length: N * K * V }, () => f(2 * r() - 1));
  return { N, qs, us, xs, ws, ds, Q, U, DY, XI, W, G, L };
}

const dot = (a: Float64Array, ao: number, b: Float64Array, bo: number, K: number) => { let s = 0; for (let i = 0; i < K; i++) s += a[ao + i] * b[bo + i]; return s; };

/** The definitions in float64: BQ [N, C, V], BP [N, K, V], DR [N, C, V] (DR from the float64 BQ). */
function reference(c: Shape, d: Data): { BQ: Float64Array; BP: Float64Array; DR: Float64Array } {
  const { C, K, V } = c, { N } = d;
  const g = (n: number, t: number) => d.G[n * (C + 1) + t];
  const BQ = new Float64Array(N * C * V), BP = new Float64Array(N * K * V), DR = new Float64Array(N * C * V);
  for (let n = 0; n < N; n++) {
    for (let cc = 0; cc < C; cc++)
      for (let a = cc; a < C; a++) {
        const p = Math.exp(g(n, a + 1) - g(n, cc + 1)) * dot(d.Q, (n * C + a) * d.qs, d.U, (n * C + cc) * d.us, K);
        for (let j = 0; j < V; j++) BQ[(n * C + cc) * V + j] += p * d.DY[(n * C + a) * d.ds + j];
      }
    for (let i = 0; i < K; i++)
      for (let j = 0; j < V; j++) {
        let s = 0;
        for (let a = 0; a < C; a++) s += Math.exp(g(n, a + 1)) * d.Q[(n * C + a) * d.qs + i] * d.DY[(n * C + a) * d.ds + j] + d.XI[(n * C + a) * d.xs + i] * BQ[(n * C + a) * V + j];
        BP[(n * K + i) * V + j] = s;
      }
    for (let cc = C - 1; cc >= 0; cc--)
      for (let j = 0; j < V; j++) {
        let s = BQ[(n * C + cc) * V + j];
        for (let i = 0; i < K; i++) s += Math.exp(g(n, C) - g(n, cc + 1)) * d.U[(n * C + cc) * d.us + i] * d.L[(n * K + i) * V + j];
        for (let a = cc + 1; a < C; a++) s += Math.exp(g(n, a) - g(n, cc + 1)) * dot(d.W, (n * C + a) * d.ws, d.U, (n * C + cc) * d.us, K) * DR[(n * C + a) * V + j];
        DR[(n * C + cc) * V + j] = s;
      }
  }
  return { BQ, BP, DR };
}

/** An emulator executable: argv dir (Q, U, DY, XI, W, G, L, BQ, BP, DR .bin float32), entry, N, qs, us, xs, ws, threads, smem, ds. */
function buildEmu(source: string, kernels: LowRankWyKernel[]): string {
  const tramp = kernels.map((k) => k.op === "pre"
    ? `static void body_${k.entry}() { ${k.entry}((const float*)P[0], QS, (const float*)P[1], US, (const float*)P[2],${k.dyStride ? " DS," : ""} (const float*)P[3], XS, (const float*)P[5], (float*)P[7], (float*)P[8], NN); }`
    : `static void body_${k.entry}() { ${k.entry}((const float*)P[4], WS, (const float*)P[1], US, (const float*)P[7], (const float*)P[6], (const float*)P[5], (float*)P[9], NN); }`);
  const names = ["Q", "U", "DY", "XI", "W", "G", "L", "BQ", "BP", "DR"];
  const main = `
static void* P[10]; static unsigned NN, QS, US, XS, WS, DS;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  NN = (unsigned)atoi(argv[3]); QS = (unsigned)atoi(argv[4]); US = (unsigned)atoi(argv[5]); XS = (unsigned)atoi(argv[6]); WS = (unsigned)atoi(argv[7]);
  unsigned threads = (unsigned)atoi(argv[8]), smem = (unsigned)atoi(argv[9]); DS = (unsigned)atoi(argv[10]);
  const char* names[10] = {${names.map((x) => `"${x}"`).join(", ")}};
  std::vector<char> b[10];
  for (int i = 0; i < 10; ++i) { b[i] = readf(dir + "/" + names[i] + ".bin"); P[i] = b[i].data(); }
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = NN; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  for (int i = 7; i < 10; ++i) { FILE* f = fopen((dir + "/" + names[i] + ".out").c_str(), "wb"); fwrite(b[i].data(), 1, b[i].size(), f); fclose(f); }
  return 0;
}
`;
  return compileLowRankEmu(source, main, "lowrank-wy", true);
}

/** Runs `k` (its inputs from d; "dr" reads BQ = bq) and returns its outputs. */
function runEmu(bin: string, k: LowRankWyKernel, d: Data, bq: Float64Array): Record<"BQ" | "BP" | "DR", Float64Array> {
  return inScratchDir("seqc-lrwy-", (dir) => {
    const { C, K, V } = k, N = d.N;
    if (k.op === "pre" && !k.dyStride && d.ds !== V) throw new Error(`${k.entry} reads DY contiguous (stride ${V}), not ${d.ds}`);
    for (const [name, x] of Object.entries({ Q: d.Q, U: d.U, DY: d.DY, XI: d.XI, W: d.W, G: d.G, L: d.L })) writeFileSync(join(dir, `${name}.bin`), f32Bytes(x));
    writeFileSync(join(dir, "BQ.bin"), f32Bytes(k.op === "dr" ? bq : new Float64Array(N * C * V).fill(NaN)));
    writeFileSync(join(dir, "BP.bin"), f32Bytes(new Float64Array(N * K * V).fill(NaN)));
    writeFileSync(join(dir, "DR.bin"), f32Bytes(new Float64Array(N * C * V).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(N), String(d.qs), String(d.us), String(d.xs), String(d.ws), String(k.threads), String(k.sharedBytes), String(d.ds)], { stdio: "pipe" });
    const read = (name: string) => readF32(join(dir, `${name}.out`));
    return { BQ: read("BQ"), BP: read("BP"), DR: read("DR") };
  });
}

/** The pair's errors against float64: pre's BQ and BP, dr's DR (from the float64 BQ). */
function errors(pre: LowRankWyKernel, dr: LowRankWyKernel, bin: string, d: Data): [number, number, number] {
  const want = reference(pre, d);
  const a = runEmu(bin, pre, d, want.BQ), b = runEmu(bin, dr, d, want.BQ);
  for (const x of [a.BQ, a.BP, b.DR]) expect(x.every(Number.isFinite), `${pre.entry}: finite outputs`).toBe(true);
  return [relativeError(a.BQ, want.BQ), relativeError(a.BP, want.BP), relativeError(b.DR, want.DR)];
}

const SMALL: Shape[] = [
  { decay: "none", C: 16, K: 8, V: 12 },
  { decay: "scalar", C: 12, K: 20, V: 8 },
  { decay: "scalar", C: 32, K: 16, V: 24 },
];
const pair = (s: Shape): LowRankWyConfig[] => [{ ...s, op: "pre" }, { ...s, op: "dr" }];

describe.skipIf(!gpp)("the chunk-state backward's per-chunk kernels on the CPU emulation vs float64", () => {
  it("small configurations: no decay and a scalar one down to -20 a step, full and padded chunks, one step in use", () => {
    const m = lowRankWyModule(SMALL.flatMap(pair));
    const bin = buildEmu(m.source, m.kernels);
    for (let i = 0; i < SMALL.length; i++) {
      const [pre, dr] = [m.kernels[2 * i], m.kernels[2 * i + 1]], s = SMALL[i];
      for (const [used, minLd] of [[s.C, -1], [s.C - 3, -20], [1, -5]] as const) {
        const e = errors(pre, dr, bin, data(s, 3, used, minLd, 7 + i + used));
        expect(Math.max(...e), `${pre.entry} used=${used} ld>=${minLd}: BQ ${e[0]} BP ${e[1]} DR ${e[2]}`).toBeLessThan(1e-5);
      }
    }
  }, 300_000);

  it("the shipped C = 64 configurations (K = V = 64 and 128), full and padded chunks, one step in use", () => {
    const m = lowRankWyModule();
    expect(m.kernels.map((k) => k.entry)).toEqual([
      "seqc_lr_wy_pre_none_c64k64v64", "seqc_lr_wy_dr_none_c64k64v64", "seqc_lr_wy_pre_none_c64k128v128", "seqc_lr_wy_dr_none_c64k128v128",
      "seqc_lr_wy_pre_scalar_c64k64v64", "seqc_lr_wy_dr_scalar_c64k64v64", "seqc_lr_wy_pre_scalar_c64k128v128", "seqc_lr_wy_dr_scalar_c64k128v128",
      "seqc_lr_wy_pre_none_c64k64v64_tf32", "seqc_lr_wy_pre_scalar_c64k64v64_tf32",
      "seqc_lr_wy_pre_none_c64k128v128_tf32", "seqc_lr_wy_dr_none_c64k128v128_tf32", "seqc_lr_wy_pre_scalar_c64k128v128_tf32", "seqc_lr_wy_dr_scalar_c64k128v128_tf32"]);
    expect(LOWRANK_WY_CONFIGS.length).toBe(14);
    expect(m.kernels.filter((k) => k.math).map((k) => k.sharedBytes)).toEqual([109060, 109060, 190980, 190724, 190980, 190724]);
    expect(m.kernels.filter((k) => k.K === 128 && !k.math).map((k) => k.sharedBytes)).toEqual([185604, 185604, 185604, 185604]);
    const bin = buildEmu(m.source, m.kernels.filter((k) => !k.math));
    for (const i of [0, 2, 4, 6]) {
      const cases = m.kernels[i].K === 128 ? [[64, -0.5], [37, -20], [1, -20]] as const : [[64, -0.5], [37, -20]] as const;
      for (const [used, minLd] of cases) {
        const e = errors(m.kernels[i], m.kernels[i + 1], bin, data(m.kernels[i], 2, used, minLd, 3 + i + used));
        expect(Math.max(...e), `${m.kernels[i].entry} used=${used}: BQ ${e[0]} BP ${e[1]} DR ${e[2]}`).toBeLessThan(1e-5);
      }
    }
  }, 600_000);

  it("broken K = 128 copies fail: dr's L^T u_c over the first 64 keys only; pre's XI^T BQ over the first 32 steps", () => {
    const s: Shape = { decay: "scalar", C: 64, K: 128, V: 128 };
    const broken = (from: string, to: string, which: 1 | 2) => {
      const m = lowRankWyModule(pair(s), (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      return errors(m.kernels[0], m.kernels[1], buildEmu(m.source, m.kernels), data(s, 1, s.C, -1, 8))[which];
    };
    broken("const float4 a4 = (*(const float4*)&sUT[i * 68u + 4u * ti]), b4 = (*(const float4*)&sL[", "if (i >= 64u) break;\n      const float4 a4 = (*(const float4*)&sUT[i * 68u + 4u * ti]), b4 = (*(const float4*)&sL[", 2);
    broken("for (u32 cc = 0; cc < 64u; ++cc) {\n      const float4 a4 = (*(const float4*)&sX[cc * 128u", "for (u32 cc = 0; cc < 32u; ++cc) {\n      const float4 a4 = (*(const float4*)&sX[cc * 128u", 1);
  }, 300_000);

  it("the fp32 pre reads a strided dY (ds, seqc_chunked_lowrank LR_EV_LINES: slot 0 of wy's [N, C, R + E, V] events): within 1e-5; one reading it at stride V fails", () => {
    for (const s of [SMALL[1], SMALL[SMALL.length - 1], { decay: "scalar", C: 64, K: 64, V: 64 } as Shape]) {
      const m = lowRankWyModule(pair(s));
      expect(m.kernels.map((k) => k.dyStride)).toEqual([true, undefined]);
      const bin = buildEmu(m.source, m.kernels);
      for (const ds of [2 * s.V, 2 * s.V + 4]) {
        const e = errors(m.kernels[0], m.kernels[1], bin, data(s, 2, s.C - 1, -5, 41 + ds, ds));
        expect(Math.max(...e), `${m.kernels[0].entry} ds=${ds}: BQ ${e[0]} BP ${e[1]} DR ${e[2]}`).toBeLessThan(1e-5);
      }
      const at = `DY[(size_t)n * ${s.C}u * ds + a * ds + i]`;
      const broken = lowRankWyModule(pair(s), (src) => {
        expect(src).toContain(at);
        return src.replace(at, `DY[(size_t)n * ${s.C}u * ${s.V}u + a * ${s.V}u + i]`);
      });
      expect(errors(broken.kernels[0], broken.kernels[1], buildEmu(broken.source, broken.kernels), data(s, 2, s.C, -1, 6, 2 * s.V))[0], `${m.kernels[0].entry}: DY at stride V`).toBeGreaterThan(1e-2);
    }
  }, 300_000);

  it("deliberately broken copies fail: the readouts' scores without the diagonal; the solve skipping the chunk's last step", () => {
    const s = SMALL[1];
    const diag = lowRankWyModule(pair(s), (src) => {
      expect(src).toContain("cc < a + 1u ?");
      return src.replace("cc < a + 1u ?", "cc < a ?");
    });
    expect(errors(diag.kernels[0], diag.kernels[1], buildEmu(diag.source, diag.kernels), data(s, 2, s.C, -1, 4))[0]).toBeGreaterThan(1e-2);
    const last = lowRankWyModule(pair(s), (src) => {
      const at = `for (; a < ${s.C}u; ++a) s0 =`;
      expect(src).toContain(at);
      return src.replace(at, `for (; a < ${s.C - 1}u; ++a) s0 =`);
    });
    expect(errors(last.kernels[0], last.kernels[1], buildEmu(last.source, last.kernels), data(s, 2, s.C, -1, 5))[2]).toBeGreaterThan(1e-2);
  }, 100_000);

  // the "pre" twins, each run beside the fp32 "dr" of its shape (DR from the float64 BQ, so its error is dr's alone)
  const SMALL_MMA: Shape[] = [
    { decay: "none", C: 16, K: 16, V: 8 },
    { decay: "scalar", C: 32, K: 16, V: 24 },
    { decay: "scalar", C: 16, K: 32, V: 16 },
  ];
  const BOUND = { tf32: 1e-3, tf32x3: 1e-5 } as const;
  const twin = (s: Shape, math: "tf32" | "tf32x3"): LowRankWyConfig[] => [{ ...s, op: "pre", math }, { ...s, op: "dr" }];

  it("the pre twins, small configurations and the shipped ones: tf32x3 within 1e-5, tf32 within 1e-3 (and above 1e-5: its rounding is emulated)", () => {
    for (const math of ["tf32", "tf32x3"] as const) {
      const shapes = [...SMALL_MMA, ...LOWRANK_WY_MMA_CONFIGS.filter((c) => c.op === "pre").map((c) => ({ decay: c.decay, C: c.C, K: c.K, V: c.V }))];
      const m = lowRankWyModule(shapes.flatMap((s) => twin(s, math)));
      const bin = buildEmu(m.source, m.kernels);
      for (let i = 0; i < shapes.length; i++) {
        const [pre, dr] = [m.kernels[2 * i], m.kernels[2 * i + 1]], s = shapes[i];
        for (const [used, minLd] of [[s.C, -1], [s.C - 3, -20], [1, -5]] as const) {
          const e = errors(pre, dr, bin, data(s, 2, used, minLd, 17 + i + used));
          expect(Math.max(e[0], e[1]), `${pre.entry} used=${used} ld>=${minLd}: BQ ${e[0]} BP ${e[1]}`).toBeLessThan(BOUND[math]);
          if (math === "tf32" && used > 1) expect(Math.max(e[0], e[1]), `${pre.entry}: TF32 rounding shows`).toBeGreaterThan(1e-5);
        }
      }
    }
  }, 600_000);

  it("broken pre twins fail: the diagonal masked; BQ's reduction from one block late; BP without its XI^T BQ term", () => {
    const s = SMALL_MMA[1];
    const broken = (from: string, to: string, which: 0 | 1) => {
      const m = lowRankWyModule(twin(s, "tf32"), (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      return errors(m.kernels[0], m.kernels[1], buildEmu(m.source, m.kernels), data(s, 2, s.C, -1, 6))[which];
    };
    broken("cc < a + 1u ?", "cc < a ?", 0);
    broken("ks = c0 / 8u;", "ks = c0 / 8u + 1u;", 0);
    broken("seqc_mma_tf32(acc, fa, fb);\n    }\n    const u32 i = i0", "}\n    const u32 i = i0", 1);
  }, 200_000);

  // the "dr" twins (lowrank-wy-dr-mma.ts), each run beside the fp32 "pre" of its shape (DR from the float64 BQ)
  const drTwin = (s: Shape, math: "tf32" | "tf32x3"): LowRankWyConfig[] => [{ ...s, op: "pre" }, { ...s, op: "dr", math }];
  const SMALL_DR: Shape[] = [
    { decay: "none", C: 16, K: 16, V: 8 },
    { decay: "scalar", C: 32, K: 16, V: 24 },
    { decay: "scalar", C: 48, K: 32, V: 16 },
  ];
  const DR_BOUND = { tf32: 1e-3, tf32x3: 1e-5 } as const;

  it("the dr twins, small configurations and the shipped K = 128 ones: tf32x3 within 1e-5, tf32 within 1e-3 (and above 1e-5)", () => {
    const shipped = LOWRANK_WY_MMA_CONFIGS.filter((c) => c.op === "dr").map((c) => ({ decay: c.decay, C: c.C, K: c.K, V: c.V }));
    expect(shipped.map((s) => s.K)).toEqual([128, 128]);
    for (const math of ["tf32", "tf32x3"] as const) {
      const shapes = [...SMALL_DR, ...shipped];
      const m = lowRankWyModule(shapes.flatMap((s) => drTwin(s, math)));
      const bin = buildEmu(m.source, m.kernels);
      for (let i = 0; i < shapes.length; i++) {
        const [pre, dr] = [m.kernels[2 * i], m.kernels[2 * i + 1]], s = shapes[i];
        const cases = s.K === 128 ? [[s.C, -0.5], [37, -20]] as const : [[s.C, -1], [s.C - 3, -20], [1, -5]] as const;
        for (const [used, minLd] of cases) {
          const e = errors(pre, dr, bin, data(s, 2, used, minLd, 29 + i + used));
          expect(e[2], `${dr.entry} used=${used} ld>=${minLd}: DR ${e[2]}`).toBeLessThan(DR_BOUND[math]);
          if (math === "tf32" && used > 1) expect(e[2], `${dr.entry}: TF32 rounding shows`).toBeGreaterThan(1e-5);
        }
      }
    }
  }, 900_000);

  it("broken dr twins fail: Luu's decay a step late; a block's triangle a step short; the blocks' update without its first 8 steps or over the first 16 rows only; rhs without BQ or its decay", () => {
    const s = SMALL_DR[2];
    const broken = (from: string, to: string) => {
      const m = lowRankWyModule(drTwin(s, "tf32x3"), (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      return errors(m.kernels[0], m.kernels[1], buildEmu(m.source, m.kernels), data(s, 2, s.C, -1, 9))[2];
    };
    expect(broken("cc < a ? acc[r] * expf(sG[a] -", "cc < a ? acc[r] * expf(sG[a + 1u] -")).toBeGreaterThan(1e-2);
    expect(broken("for (u32 a = i + 1u; a < 16u; ++a)", "for (u32 a = i + 1u; a < 15u; ++a)")).toBeGreaterThan(1e-2);
    expect(broken("for (u32 ks = 0; ks < 2u; ++ks)", "for (u32 ks = 1; ks < 2u; ++ks)")).toBeGreaterThan(1e-2);
    expect(broken("for (u32 x = w; x < b * 2u; x += 8u)", "for (u32 x = w; x < 2u; x += 8u)")).toBeGreaterThan(1e-2);
    expect(broken("fmaf(e, acc[2u * h], b.x)", "fmaf(e, acc[2u * h], 0.f)")).toBeGreaterThan(1e-2);
    expect(broken("expf(sG[48u] - sG[cc + 1u])", "expf(sG[47u] - sG[cc + 1u])")).toBeGreaterThan(1e-2);
  }, 300_000);

  it("configurations that do not fit are refused", () => {
    expect(() => lowRankWyModule([{ op: "pre", decay: "none", C: 24, K: 16, V: 8, math: "tf32" }])).toThrow(/multiples of 16/);
    expect(() => lowRankWyModule([{ op: "dr", decay: "none", C: 24, K: 16, V: 8, math: "tf32" }])).toThrow(/multiples of 16/);
    expect(() => lowRankWyModule([{ op: "dr", decay: "none", C: 16, K: 16, V: 264, math: "tf32" }])).toThrow(/one value column a thread/);
    expect(() => lowRankWyModule([{ op: "pre", decay: "none", C: 64, K: 10, V: 8 }])).toThrow(/multiples of 4/);
    expect(() => lowRankWyModule([{ op: "pre", decay: "none", C: 256, K: 128, V: 128 }])).toThrow(/shared memory/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped module for sm_90; ptxas: no spills", () => {
    const m = lowRankWyModule();
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
    }
  }, 200_000);
});
