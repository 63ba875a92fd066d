/**
 * The shared pieces of the delta reads' emulation tests (test/cuda-delta-r-emu.test.ts: the FMA kernels of delta-r.ts;
 * test/cuda-delta-r-mma-emu.test.ts: their tensor-core twins of delta-r-mma.ts): R = X + M S per chunk, S0 = S as written.
 * Random data, the float64 reference, the emulation's build and one run.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DeltaRConfig, DeltaRKernel } from "../../compiler/backends/cuda/delta-r.ts";
import { compileLowRankEmu, emuGridMain, f32Bytes, inScratchDir, readF32 } from "./lowrank-emu.ts";
import { rng } from "./random.ts";

export interface DeltaRData { N: number; M: Float64Array; X: Float64Array; S: Float64Array }

/** M uniform in (-1, 1) / sqrt(K), X and S in (-1, 1); S bf16-exact with sin "bf16", else float32-exact. */
export function deltaRData(c: DeltaRConfig, N: number, seed: number): DeltaRData {
  const { C, K, V } = c, r = rng(seed), f = Math.fround;
  const bf = (x: number) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([x]).buffer)[0] & 0xffff0000]).buffer)[0];
  const u = (n: number, s: number, g: (x: number) => number) => Float64Array.from({ length: n }, () => g((2 * r() - 1) * s));
  return { N, M: u(N * C * K, 1 / Math.sqrt(K), f), X: u(N * C * V, 1, f), S: u(N * K * V, 1, c.sin === "bf16" ? bf : f) };
}

/** R = X + M S per chunk in float64. */
export function deltaRReference(c: DeltaRConfig, d: DeltaRData): Float64Array {
  const { C, K, V } = c, R = new Float64Array(d.N * C * V);
  for (let n = 0; n < d.N; n++)
    for (let a = 0; a < C; a++)
      for (let j = 0; j < V; j++) {
        let acc = d.X[(n * C + a) * V + j];
        for (let l = 0; l < K; l++) acc += d.M[(n * C + a) * K + l] * d.S[(n * K + l) * V + j];
        R[(n * C + a) * V + j] = acc;
      }
  return R;
}

const FILES = ["M", "X", "S", "R", "S0"];

/** The emulation binary of a delta-r module (mma: with the TF32 mma emulation, for the twins). */
export function buildDeltaR(source: string, kernels: DeltaRKernel[], name: string, mma: boolean): string {
  const k = (e: string) => kernels.find((x) => x.entry === e)!;
  const call = (e: string) => {
    const ot = k(e).zout ? "unsigned short" : "float";
    return `(const float*)P[0], (const float*)P[1], (const ${k(e).sin === "bf16" ? "__nv_bfloat16" : "float"}*)P[2], (${ot}*)P[3], S0_ ? (${ot}*)P[4] : nullptr, (int)NN`;
  };
  return compileLowRankEmu(source, emuGridMain(kernels.map((x) => x.entry), call, FILES, ["S0_"], [3, 4]), name, mma);
}

/** bf16 bytes of bf16-exact values. */
const bf16Bytes = (x: Float64Array) => Buffer.from(Uint16Array.from(new Uint32Array(Float32Array.from(x).buffer), (w) => w >>> 16).buffer);

/** One run of entry k over d: R and S0 as read back (NaN where unwritten; zout "bf16": the bf16 words widened). */
export function runDeltaR(bin: string, k: DeltaRKernel, d: DeltaRData, s0: boolean): { R: Float64Array; S0: Float64Array } {
  return inScratchDir("seqc-dr-", (dir) => {
    const { C, K, V } = k, nan = (n: number) => f32Bytes(new Float64Array(n).fill(NaN));
    const bufs: Record<string, Buffer> = { M: f32Bytes(d.M), X: f32Bytes(d.X), S: k.sin === "bf16" ? bf16Bytes(d.S) : f32Bytes(d.S), R: nan(d.N * C * V), S0: nan(d.N * K * V) };
    for (const f of FILES) writeFileSync(join(dir, `${f}.bin`), bufs[f]);
    execFileSync(bin, [dir, k.entry, String(d.N), String(k.threads), String(k.sharedBytes), s0 ? "1" : "0"], { stdio: "pipe" });
    // zout "bf16": bf16 words in the first half of each file (the rest NaN as written)
    const zread = (name: string, n: number) => {
      if (!k.zout) return readF32(join(dir, `${name}.out`));
      const raw = readFileSync(join(dir, `${name}.out`)), w = new Uint16Array(raw.buffer, raw.byteOffset, n), u = new Uint32Array(n);
      for (let i = 0; i < n; i++) u[i] = w[i] << 16;
      return Float64Array.from(new Float32Array(u.buffer));
    };
    return { R: zread("R", d.N * C * V), S0: zread("S0", d.N * K * V) };
  });
}
