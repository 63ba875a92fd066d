/**
 * The low-rank chunk transitions kernels' emulation harness (compiler/backends/cuda/lowrank-core.ts and its tensor-core
 * twins, lowrank-core-mma.ts), shared by test/cuda-lowrank-core-emu.test.ts and test/cuda-lowrank-core-mma-emu.test.ts:
 * inputs in the kernel's layouts, the recurrence itself in float64
 *   S_0 = [I | 0],  r_s = S_{s-1}^T w_s,  S_s = diag(exp(ld_s)) S_{s-1} + u_s r_s^T + k_s [0 | v_s]^T
 * (the reads r_s and S_C), a g++ build of a module on the CPU emulation of CUDA (test/cuda-emu/emu.h) and the errors of
 * its outputs against the reference.
 */
import { expect } from "vitest";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LowRankCoreConfig, LowRankCoreKernel } from "../../compiler/backends/cuda/lowrank-core.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import { compileLowRankEmu, emuGridMain, f32Bytes, inScratchDir, readF32 } from "./lowrank-emu.ts";
import { rng } from "./random.ts";

export interface Data { N: number; used: number; KK: Float64Array; Wq: Float64Array; VV: Float64Array; G: Float64Array; ld: Float64Array }

/** N chunks of inputs in the kernel's layouts (KK [N, C, 2, K], Wq [N, C, K], VV [N, C, 2, W] with slot 1 = [0 | v],
 * G [N, C + 1, LW]); steps past `used` are padding. kind "delta": w a unit vector, u = -beta (w + small noise), k unit,
 * beta in (0, 2); "generic": every entry uniform, scaled by 1 / K. Log decays uniform in [minLd, 0]. */
export function data(c: LowRankCoreConfig, N: number, used: number, kind: "delta" | "generic", minLd: number, seed: number): Data {
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
export function reference(c: LowRankCoreConfig, d: Data): { r: Float64Array; end: Float64Array } {
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

/** An emulator executable for a module: argv dir (KK, Wq, VV, G .bin float32), entry, N; writes VV.out, END.out.
 * `mma`: the tensor-core twins' module (includes mma-tf32.h, the TF32 rounding and m16n8k8 fragments emulated). */
export function buildEmu(source: string, kernels: LowRankCoreKernel[], mma = false): string {
  const main = emuGridMain(kernels.map((k) => k.entry), "(const float*)P[0], (const float*)P[1], (float*)P[2], (const float*)P[3], (float*)P[4], NN", ["KK", "Wq", "VV", "G", "END"], [], [2, 4]);
  return compileLowRankEmu(source, main, mma ? "lowrank-core-mma" : "lowrank-core", mma);
}

export function runEmu(bin: string, k: LowRankCoreKernel, d: Data): { VV: Float64Array; end: Float64Array } {
  return inScratchDir("seqc-lrcore-", (dir) => {
    const W = k.K + k.V;
    writeFileSync(join(dir, "KK.bin"), f32Bytes(d.KK));
    writeFileSync(join(dir, "Wq.bin"), f32Bytes(d.Wq));
    writeFileSync(join(dir, "VV.bin"), f32Bytes(d.VV)); // slot 0 NaN: the kernel must write every read
    writeFileSync(join(dir, "G.bin"), k.decay === "none" ? Buffer.alloc(4) : f32Bytes(d.G));
    writeFileSync(join(dir, "END.bin"), f32Bytes(new Float64Array(d.N * k.K * W).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(d.N), String(k.threads), String(k.sharedBytes)], { stdio: "pipe" });
    return { VV: readF32(join(dir, "VV.out")), end: readF32(join(dir, "END.out")) };
  });
}

/** Max relative errors (norm) of the reads (VV slot 0) and the end state against the float64 recurrence. */
export function errors(k: LowRankCoreKernel, bin: string, d: Data): { r: number; end: number; vSlot: number } {
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
