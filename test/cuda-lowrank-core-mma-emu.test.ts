/**
 * The low-rank chunk transitions kernel's tensor-core twins (compiler/backends/cuda/lowrank-core-mma.ts, math "tf32" /
 * "tf32x3"; runtime/torch/seqc_chunked_lowrank.py LR_CORE_MMA) on the CPU emulation of CUDA (test/cuda-emu/emu.h with
 * the TF32 rounding and the m16n8k8 fragments emulated, test/cuda-emu/mma-tf32.h) against the recurrence itself in
 * float64 (the fp32 kernel's test's data and reference, test/cuda-lowrank-core-emu.test.ts):
 *   S_0 = [I | 0],  r_s = S_{s-1}^T w_s,  S_s = exp(ld_s) S_{s-1} + u_s r_s^T + k_s [0 | v_s]^T
 * on delta-rule inputs (unit keys, beta in (0, 2)) and generic ones, no and a scalar log decay down to -20 a step, padded
 * tails, one step in use, small configurations (C 16 / 32 / 48, K != V) and the shipped C = K = V = 64: tf32x3 within
 * 1e-5, tf32 within 2e-3 (and above 1e-6: the rounding is there); broken twins (the scores' diagonal kept, the right-hand
 * side's reduction one block short, the end state without its v term) must fail; nvcc for sm_90 where installed: no
 * spills, registers within two blocks an SM.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOWRANK_CORE_MMA_CONFIGS, lowRankCoreModule, type LowRankCoreConfig, type LowRankCoreKernel } from "../compiler/backends/cuda/lowrank-core.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-core-mma-emu.test: g++ is not installed, so the emulated runs are skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

interface Data { N: number; used: number; KK: Float64Array; Wq: Float64Array; VV: Float64Array; G: Float64Array; ld: Float64Array }

/** N chunks of inputs in the kernel's layouts (KK [N, C, 2, K], Wq [N, C, K], VV [N, C, 2, W] with slot 1 = [0 | v],
 * G [N, C + 1, LW]); steps past `used` are padding. kind "delta": w a unit vector, u = -beta (w + small noise), k unit,
 * beta in (0, 2); "generic": every entry uniform, scaled by 1 / K. Log decays uniform in [minLd, 0]. */
function data(c: LowRankCoreConfig, N: number, used: number, kind: "delta" | "generic", minLd: number, seed: number): Data {
  const { C, K, V } = c, W = K + V, LW = c.decay === "key" ? K : 1;
  const r = rng(seed);
  const KK = new Float64Array(N * C * 2 * K), Wq = new Float64Array(N * C * K), VV = new Float64Array(N * C * 2 * W).fill(NaN);
  const ld = new Float64Array(N * C * LW), G = new Float64Array(N * (C + 1) * LW);
  const unit = () => {
    const x = Float64Array.from({ length: K }, () => r());
    const nrm = Math.hypot(...x);
    return x.map((v) => v / nrm);
  };
  for (let n = 0; n < N; n++)
    for (let s = 0; s < C; s++) {
      const on = s < used;
      let w: Float64Array, u: Float64Array, k: Float64Array;
      if (kind === "delta") {
        const beta = 1 + 1.9 * r(); // (0.05, 1.95)
        w = unit();
        u = w.map((x) => -beta * (x + 0.05 * r()));
        k = unit().map((x) => x * beta);
      } else {
        w = Float64Array.from({ length: K }, () => (2 * r()) / Math.sqrt(K));
        u = Float64Array.from({ length: K }, () => (2 * r()) / Math.sqrt(K));
        k = Float64Array.from({ length: K }, () => 2 * r());
      }
      for (let i = 0; i < K; i++) {
        KK[((n * C + s) * 2) * K + i] = on ? u[i] : 0;
        KK[((n * C + s) * 2 + 1) * K + i] = on ? k[i] : 0;
        Wq[(n * C + s) * K + i] = on ? w[i] : 0;
      }
      for (let j = 0; j < W; j++) VV[((n * C + s) * 2 + 1) * W + j] = j < K || !on ? 0 : 2 * r();
      for (let i = 0; i < LW; i++) ld[(n * C + s) * LW + i] = c.decay === "none" || !on ? 0 : (r() + 0.5) * minLd;
    }
  // G in float64 from the float32-rounded log decays, then rounded (what ChunkCore's cumsum hands the kernel)
  for (let n = 0; n < N; n++)
    for (let i = 0; i < LW; i++) {
      let acc = 0;
      for (let s = 0; s < C; s++) {
        acc += Math.fround(ld[(n * C + s) * LW + i]);
        G[(n * (C + 1) + s + 1) * LW + i] = acc;
      }
    }
  return { N, used, KK, Wq, VV, G, ld };
}

/** The recurrence in float64 at the float32-rounded inputs (G as given, rounded): the reads r [N, C, W] and S_C [N, K, W]. */
function reference(c: LowRankCoreConfig, d: Data): { r: Float64Array; end: Float64Array } {
  const { C, K, V } = c, W = K + V, LW = c.decay === "key" ? K : 1;
  const f = Math.fround;
  const r = new Float64Array(d.N * C * W), end = new Float64Array(d.N * K * W);
  const S = new Float64Array(K * W);
  for (let n = 0; n < d.N; n++) {
    for (let i = 0; i < K; i++) for (let j = 0; j < W; j++) S[i * W + j] = i === j ? 1 : 0;
    for (let s = 0; s < C; s++) {
      const rs = new Float64Array(W);
      for (let i = 0; i < K; i++) {
        const w = f(d.Wq[(n * C + s) * K + i]);
        for (let j = 0; j < W; j++) rs[j] += w * S[i * W + j];
      }
      r.set(rs, (n * C + s) * W);
      for (let i = 0; i < K; i++) {
        const li = c.decay === "none" ? 0 : f(d.G[(n * (C + 1) + s + 1) * LW + (LW > 1 ? i : 0)]) - f(d.G[(n * (C + 1) + s) * LW + (LW > 1 ? i : 0)]);
        const e = Math.exp(li), u = f(d.KK[((n * C + s) * 2) * K + i]), k = f(d.KK[((n * C + s) * 2 + 1) * K + i]);
        for (let j = 0; j < W; j++) S[i * W + j] = e * S[i * W + j] + u * rs[j] + k * f(d.VV[((n * C + s) * 2 + 1) * W + j]);
      }
    }
    end.set(S, n * K * W);
  }
  return { r, end };
}

/** An emulator executable for a module: argv dir (KK, Wq, VV, G .bin float32), entry, N; writes VV.out, END.out. */
function buildEmu(source: string, kernels: LowRankCoreKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)P[0], (const float*)P[1], (float*)P[2], (const float*)P[3], (float*)P[4], NN); }`);
  const main = `
static void* P[5]; static unsigned NN;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  NN = (unsigned)atoi(argv[3]);
  unsigned threads = (unsigned)atoi(argv[4]), smem = (unsigned)atoi(argv[5]);
  std::vector<char> b[5] = {readf(dir + "/KK.bin"), readf(dir + "/Wq.bin"), readf(dir + "/VV.bin"), readf(dir + "/G.bin"), readf(dir + "/END.bin")};
  for (int i = 0; i < 5; ++i) P[i] = b[i].data();
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (entry == "${k.entry}") fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", entry.c_str()); return 2; }
  emu::Dim g; g.x = NN; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  FILE* f = fopen((dir + "/VV.out").c_str(), "wb"); fwrite(b[2].data(), 1, b[2].size(), f); fclose(f);
  f = fopen((dir + "/END.out").c_str(), "wb"); fwrite(b[4].data(), 1, b[4].size(), f); fclose(f);
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include "${join(HERE, "mma-tf32.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "lowrank-core-mma");
}

function runEmu(bin: string, k: LowRankCoreKernel, d: Data): { VV: Float64Array; end: Float64Array } {
  const dir = mkdtempSync(join(tmpdir(), "seqc-lrcore-"));
  try {
    const f32 = (x: Float64Array) => Buffer.from(Float32Array.from(x).buffer);
    const W = k.K + k.V;
    writeFileSync(join(dir, "KK.bin"), f32(d.KK));
    writeFileSync(join(dir, "Wq.bin"), f32(d.Wq));
    writeFileSync(join(dir, "VV.bin"), f32(d.VV)); // slot 0 NaN: the kernel must write every read
    writeFileSync(join(dir, "G.bin"), k.decay === "none" ? Buffer.alloc(4) : f32(d.G));
    writeFileSync(join(dir, "END.bin"), f32(new Float64Array(d.N * k.K * W).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(d.N), String(k.threads), String(k.sharedBytes)], { stdio: "pipe" });
    const rd = (name: string) => {
      const raw = readFileSync(join(dir, name));
      return Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
    };
    return { VV: rd("VV.out"), end: rd("END.out") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Max relative errors (norm) of the reads (VV slot 0) and the end state against the float64 recurrence. */
function errors(k: LowRankCoreKernel, bin: string, d: Data): { r: number; end: number; vSlot: number } {
  const got = runEmu(bin, k, d);
  const ref = reference(k, d);
  const { C, K, V } = k, W = K + V;
  const r = new Float64Array(d.N * C * W), vs = new Float64Array(d.N * C * W), vsIn = new Float64Array(d.N * C * W);
  for (let x = 0; x < d.N * C; x++)
    for (let j = 0; j < W; j++) {
      r[x * W + j] = got.VV[(x * 2) * W + j];
      vs[x * W + j] = got.VV[(x * 2 + 1) * W + j];
      vsIn[x * W + j] = Math.fround(d.VV[(x * 2 + 1) * W + j]);
    }
  expect(r.every(Number.isFinite) && got.end.every(Number.isFinite), `${k.entry}: finite outputs`).toBe(true);
  return { r: relativeError(r, ref.r), end: relativeError(got.end, ref.end), vSlot: relativeError(vs, vsIn) };
}


const SMALL: LowRankCoreConfig[] = [
  { decay: "none", C: 16, K: 16, V: 24 },
  { decay: "scalar", C: 32, K: 32, V: 16 },
  { decay: "scalar", C: 48, K: 16, V: 40 },
];
const both = (cs: readonly LowRankCoreConfig[]) => cs.flatMap((c) => (["tf32", "tf32x3"] as const).map((math) => ({ ...c, math })));
const tol = (k: LowRankCoreKernel) => (k.math === "tf32x3" ? 1e-5 : 2e-3);

describe.skipIf(!gpp)("low-rank chunk transitions, tensor-core twins, on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations: delta-rule and generic inputs, log decays to -20, padded tails, one step in use", () => {
    const m = lowRankCoreModule(both(SMALL));
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) {
      for (const [used, kind, minLd] of [[k.C, "delta", -1], [k.C - 3, "generic", -20], [1, "delta", -20], [k.C, "generic", -0.1]] as const) {
        const e = errors(k, bin, data(k, 3, used, kind, minLd, 11 + 7 * i + used));
        const label = `${k.entry} used=${used} ${kind} ld>=${minLd}`;
        expect(e.r, `${label}: reads`).toBeLessThan(tol(k));
        expect(e.end, `${label}: end state`).toBeLessThan(tol(k));
        expect(e.vSlot, `${label}: the values' slot untouched`).toBe(0);
      }
    }
  }, 300_000);

  const worst: Record<string, number> = {};
  it("the shipped twins (C = K = V = 64, no and a scalar decay, tf32) and their tf32x3 siblings: full and padded chunks", () => {
    expect(LOWRANK_CORE_MMA_CONFIGS.map((c) => [c.decay, c.C, c.K, c.V, c.math])).toEqual([["none", 64, 64, 64, "tf32"], ["scalar", 64, 64, 64, "tf32"]]);
    const m = lowRankCoreModule(both(LOWRANK_CORE_MMA_CONFIGS.map((c) => ({ ...c, math: undefined }))));
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) {
      for (const [used, minLd] of [[64, -1], [37, -20]] as const) {
        const e = errors(k, bin, data(k, 2, used, "delta", minLd, 5 + (i >> 1) + used));
        expect(e.r, `${k.entry} used=${used}: reads`).toBeLessThan(tol(k));
        expect(e.end, `${k.entry} used=${used}: end state`).toBeLessThan(tol(k));
        worst[k.entry] = Math.max(worst[k.entry] ?? 0, e.r, e.end);
      }
    }
    console.log("lowrank-core twins vs float64 (worst of reads, end state):", JSON.stringify(worst));
    // the TF32 rounding is really there (tf32 well above tf32x3)
    for (const k of m.kernels) if (k.math === "tf32") expect(worst[k.entry], k.entry).toBeGreaterThan(1e-6);
  }, 300_000);

  for (const [what, from, to] of [
    ["the scores' diagonal kept (c <= a)", "cc < a ?", "cc <= a ?"],
    ["the right-hand side's reduction one block short", "ks < 2u * (rb + 1u)", "ks < 2u * rb"],
    ["the end state without its v term", "if (nj >= 8u) {", "if (nj >= 16u) {"],
  ] as const) {
    it(`a broken twin fails: ${what}`, () => {
      const k0 = { decay: "scalar" as const, C: 64, K: 64, V: 64, math: "tf32" as const };
      const m = lowRankCoreModule([k0], (src) => {
        expect(src).toContain(from);
        return src.split(from).join(to);
      });
      const bin = buildEmu(m.source, m.kernels);
      const e = errors(m.kernels[0], bin, data(k0, 2, 64, "delta", -1, 3));
      expect(Math.max(e.r, e.end)).toBeGreaterThan(1e-2);
    }, 100_000);
  }

  it("configurations without a twin are refused (a per-key decay, K not a multiple of 16, too much shared memory)", () => {
    expect(() => lowRankCoreModule([{ decay: "key", C: 64, K: 64, V: 64, math: "tf32" }])).toThrow(/per-key/);
    expect(() => lowRankCoreModule([{ decay: "none", C: 64, K: 24, V: 64, math: "tf32" }])).toThrow(/multiple of 16/);
    expect(() => lowRankCoreModule([{ decay: "none", C: 64, K: 256, V: 256, math: "tf32" }])).toThrow(/shared memory/);
  });

  it("the shipped twins fit two blocks an SM (shared memory <= 113 KiB)", () => {
    for (const k of lowRankCoreModule(LOWRANK_CORE_MMA_CONFIGS).kernels) expect(k.sharedBytes, k.entry).toBeLessThanOrEqual(113 * 1024);
  });

  it.skipIf(!findNvcc())("ptxas for sm_90: the shipped twins (and tf32x3) compile with no spills, <= 128 registers (two 256-thread blocks an SM)", () => {
    const m = lowRankCoreModule(both(LOWRANK_CORE_MMA_CONFIGS.map((c) => ({ ...c, math: undefined }))));
    const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) {
      console.log(`ptxas ${e}: ${u.registers} registers, spills ${u.spillStores} / ${u.spillLoads}`);
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
    }
    expect(usage.size).toBe(m.kernels.length);
  }, 300_000);
});
