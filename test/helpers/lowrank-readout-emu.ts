/**
 * What the low-rank chunk readouts' emulation tests (cuda-lowrank-readout-emu: the fp32 kernel and its whole-row
 * tensor-core twin; cuda-lowrank-readout-cols-emu: the column-group twin) share: the chunks' data in ChunkCore's layouts,
 * the recurrence in float64, the emulator of kernels with the readouts' launch arguments (Q, EA, EB, S0, G, OUT; N, oq,
 * mq, rev, qs), a run of one entry and the chunk with its steps reversed. cuda-lowrank-readout-key-emu (a per-key
 * decay) takes the data and the recurrence with perKey.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LowRankReadConfig, LowRankReadKernel } from "../../compiler/backends/cuda/lowrank-readout.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import { compileLowRankEmu, emuGridMain, f32Bytes, inScratchDir, readF32 } from "./lowrank-emu.ts";
import { rng } from "./random.ts";
import { expect } from "vitest";

/** What data and reference read of a readouts configuration (or of a per-key one: decay "key" or absent). */
type ReadShape = Pick<LowRankReadConfig, "axis" | "C" | "K" | "V" | "M"> & { decay?: LowRankReadConfig["decay"] | "key" };

export interface Data { N: number; mq: number; KK: Float64Array; VV: Float64Array; Q: Float64Array; S0: Float64Array; G: Float64Array }

/** N chunks in ChunkCore's layouts: KK [N, C, M, K], VV [N, C, M, V], S0 [N, K, V], G [N, C + 1, 1] (perKey: [N, C + 1,
 * K], a prefix sum per key) (float32-rounded prefix sums of log decays uniform in [minLd, 0]), Q [N, C, mq, A] (A = K on
 * the key axis, V on the value axis); steps past `used` are padding (zero events and queries, zero log decay). Every
 * value float32-exact. */
export function data(c: ReadShape, N: number, mq: number, used: number, minLd: number, seed: number, perKey = false): Data {
  const { C, K, V, M } = c, A = c.axis === "key" ? K : V;
  const r = rng(seed), f = Math.fround;
  const KK = new Float64Array(N * C * M * K), VV = new Float64Array(N * C * M * V), Q = new Float64Array(N * C * mq * A);
  const S0 = Float64Array.from({ length: N * K * V }, () => f(2 * r()));
  const W = perKey ? K : 1, G = new Float64Array(N * (C + 1) * W);
  for (let n = 0; n < N; n++) {
    const acc = new Float64Array(W);
    for (let s = 0; s < C; s++) {
      const on = s < used;
      for (let x = 0; x < M * K; x++) KK[(n * C + s) * M * K + x] = on ? f((2 * r()) / Math.sqrt(K)) : 0;
      for (let x = 0; x < M * V; x++) VV[(n * C + s) * M * V + x] = on ? f(2 * r()) : 0;
      for (let x = 0; x < mq * A; x++) Q[(n * C + s) * mq * A + x] = on ? f(2 * r()) : 0;
      for (let i = 0; i < W; i++) {
        if (c.decay !== "none" && on) acc[i] = f(acc[i] + f((r() + 0.5) * minLd));
        G[(n * (C + 1) + s + 1) * W + i] = acc[i];
      }
    }
  }
  return { N, mq, KK, VV, Q, S0, G };
}

/** The recurrence in float64: OUT [N, C, mq, B] (perKey: d.G per key, as data's perKey). */
export function reference(c: ReadShape, d: Data, oq: number, perKey = false): Float64Array {
  const { C, K, V, M } = c, key = c.axis === "key", A = key ? K : V, B = key ? V : K, mq = d.mq;
  const out = new Float64Array(d.N * C * mq * B), W = perKey ? K : 1;
  const S = new Float64Array(K * V);
  const read = (n: number, a: number) => {
    for (let x = 0; x < mq; x++)
      for (let j = 0; j < B; j++) {
        let s = 0;
        for (let i = 0; i < A; i++) s += d.Q[((n * C + a) * mq + x) * A + i] * (key ? S[i * V + j] : S[j * V + i]);
        out[((n * C + a) * mq + x) * B + j] = s;
      }
  };
  for (let n = 0; n < d.N; n++) {
    S.set(d.S0.subarray(n * K * V, (n + 1) * K * V));
    for (let t = 0; t < C; t++) {
      if (oq === 0) read(n, t);
      for (let i = 0; i < K; i++) {
        const g = (n * (C + 1) + t) * W + (perKey ? i : 0), e = Math.exp(d.G[g + W] - d.G[g]);
        for (let j = 0; j < V; j++) {
          let s = e * S[i * V + j];
          for (let y = 0; y < M; y++) s += d.KK[((n * C + t) * M + y) * K + i] * d.VV[((n * C + t) * M + y) * V + j];
          S[i * V + j] = s;
        }
      }
      if (oq === 1) read(n, t);
    }
  }
  return out;
}

/** An emulator executable for a module (with the TF32 mma emulation; its cache file named after `name`): argv dir (Q, EA,
 * EB, S0, G, OUT .bin float32), entry, N, threads, smem, oq, mq, rev, qs; writes OUT.out. */
export function buildEmu(source: string, kernels: readonly LowRankReadKernel[], name: string): string {
  const main = emuGridMain(kernels.map((k) => k.entry), "(const float*)P[0], (const float*)P[1], (const float*)P[2], (const float*)P[3], (const float*)P[4], (float*)P[5], NN, OQ, MQ, REV, QS", ["Q", "EA", "EB", "S0", "G", "OUT"], ["OQ", "MQ", "REV", "QS"], [5]);
  return compileLowRankEmu(source, main, name, true);
}

/** The kernel's OUT on the emulation: the key axis takes EA = KK, EB = VV; the value axis EA = VV, EB = KK. OUT starts
 * NaN (the kernel must write every output). rev: the launch's rev argument (the tensors as given); qsPad: Q stored with
 * its step stride qs = mq A + qsPad (the gaps NaN, which would show if read). */
export function runEmu(bin: string, k: LowRankReadKernel, d: Data, oq: number, rev = 0, qsPad = 0): Float64Array {
  return inScratchDir("seqc-lrread-", (dir) => {
    const key = k.axis === "key", B = key ? k.V : k.K, A = key ? k.K : k.V, w = d.mq * A, qs = w + qsPad;
    const Qs = new Float64Array(d.N * k.C * qs).fill(NaN);
    for (let r = 0; r < d.N * k.C; r++) Qs.set(d.Q.subarray(r * w, (r + 1) * w), r * qs);
    writeFileSync(join(dir, "Q.bin"), f32Bytes(Qs));
    writeFileSync(join(dir, "EA.bin"), f32Bytes(key ? d.KK : d.VV));
    writeFileSync(join(dir, "EB.bin"), f32Bytes(key ? d.VV : d.KK));
    writeFileSync(join(dir, "S0.bin"), f32Bytes(d.S0));
    writeFileSync(join(dir, "G.bin"), k.decay === "none" ? Buffer.alloc(4) : f32Bytes(d.G));
    writeFileSync(join(dir, "OUT.bin"), f32Bytes(new Float64Array(d.N * k.C * d.mq * B).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(d.N), String(k.threads), String(k.sharedBytes), String(oq), String(d.mq), String(rev), String(qs)], { stdio: "pipe" });
    return readF32(join(dir, "OUT.out"));
  });
}

/** The relative error of the kernel's forward run against the float64 recurrence; every output written and finite. */
export function error(k: LowRankReadKernel, bin: string, d: Data, oq: number): number {
  const got = runEmu(bin, k, d, oq);
  expect(got.every(Number.isFinite), `${k.entry} oq=${oq}: every output written, finite`).toBe(true);
  return relativeError(got, reference(k, d, oq));
}

/** d with its steps in reversed order (Q, KK, VV rows; G as it is), and back: the map of outputs [N, C, mq, B] back. */
export function flipSteps(k: LowRankReadConfig, d: Data): { d: Data; back: (o: Float64Array) => Float64Array } {
  const A = k.axis === "key" ? k.K : k.V;
  const flip = (x: Float64Array, w: number) => {
    const y = new Float64Array(x.length);
    for (let n = 0; n < d.N; n++) for (let s = 0; s < k.C; s++) y.set(x.subarray((n * k.C + s) * w, (n * k.C + s + 1) * w), (n * k.C + k.C - 1 - s) * w);
    return y;
  };
  return { d: { ...d, Q: flip(d.Q, d.mq * A), KK: flip(d.KK, k.M * k.K), VV: flip(d.VV, k.M * k.V) }, back: (o: Float64Array) => flip(o, d.mq * (k.axis === "key" ? k.V : k.K)) };
}

/** The tensor-core twins' bounds against float64: "tf32" within 1e-3 (and above 1e-5: its rounding is emulated),
 * "tf32x3" within 1e-5. */
export const BOUND = { tf32: 1e-3, tf32x3: 1e-5 } as const;

/** Each kernel of a module of small twin configurations (one math, run by the emulator bin) vs float64 on 2 chunks: all
 * steps after the step with two query vectors, C - 3 steps before it with log decays to -20, one step, mild decays; within
 * BOUND[math], and "tf32" above 1e-5 where more than one step is in use. */
export function expectSmallTwins(kernels: readonly LowRankReadKernel[], bin: string, math: keyof typeof BOUND): void {
  for (const [i, k] of kernels.entries())
    for (const [used, mq, minLd, oq] of [[k.C, 2, -1, 1], [k.C - 3, 1, -20, 0], [1, 2, -20, 1], [k.C, 1, -0.1, 0]] as const) {
      const e = error(k, bin, data(k, 2, mq, used, minLd, 13 + 7 * i + used + mq), oq);
      expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}`).toBeLessThan(BOUND[math]);
      if (math === "tf32" && used > 1) expect(e, `${k.entry}: TF32 rounding shows`).toBeGreaterThan(1e-5);
    }
}

/** rev = 1 on each kernel (rev: true) of a module run by bin, two chunks, all steps read after their step with two query
 * vectors and C - 5 before with one, log decays to -2: bitwise the forward launch on the flipped tensors (its outputs
 * flipped back), within the bound of the float64 recurrence run backwards ("tf32" 1e-3, else 1e-5); Q stored with a
 * padded step stride (qs) gives the same outputs. */
export function expectRevBitwise(kernels: readonly LowRankReadKernel[], bin: string): void {
  for (const [i, k] of kernels.entries()) {
    expect(k.rev, k.entry).toBe(true);
    for (const [used, mq, oq] of [[k.C, 2, 1], [k.C - 5, 1, 0]] as const) {
      const d = data(k, 2, mq, used, -2, 41 + 5 * i + used), f = flipSteps(k, d);
      const got = runEmu(bin, k, d, oq, 1, 4);
      expect(got.every(Number.isFinite), `${k.entry} rev: finite`).toBe(true);
      expect(Array.from(got), `${k.entry} used=${used} oq=${oq}: rev bitwise the flipped forward launch`).toEqual(Array.from(f.back(runEmu(bin, k, f.d, oq))));
      expect(relativeError(got, f.back(reference(k, f.d, oq))), `${k.entry} used=${used} oq=${oq} vs float64`).toBeLessThan(k.math === "tf32" ? 1e-3 : 1e-5);
      expect(Array.from(runEmu(bin, k, d, oq, 0, 8)), `${k.entry}: qs strides Q`).toEqual(Array.from(runEmu(bin, k, d, oq)));
    }
  }
}
