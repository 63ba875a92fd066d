/**
 * The emulation harness of R as prep_fwd's epilogue (compiler/backends/cuda/delta-prep-r.ts; test/cuda-delta-prep-r-emu):
 * an emulator executable of a delta-prep-r module (test/cuda-emu/emu.h with the TF32 mma), random states S (bf16
 * [N, K, V]) beside delta-prep-emu's random per-token inputs, one run (TI fp32, R bf16 widened), and the float64
 * reference: TI and R = X + M S per chunk from test/helpers/delta-ref.ts's prepFwdChunk.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DELTA_PRELUDE } from "../../compiler/backends/cuda/delta-prep.ts";
import type { DeltaPrepRKernel } from "../../compiler/backends/cuda/delta-prep-r.ts";
import { MMA_TF32_PRELUDE } from "../../compiler/backends/cuda/lowrank-readout-mma.ts";
import { bf16 } from "./bf16-round.ts";
import type { Case } from "./delta-prep-emu.ts";
import { nChunks, prepAll, prepFwdChunk } from "./delta-ref.ts";
import { compileLowRankEmu, emuGridMain, f32Bytes, inScratchDir, readF32 } from "./lowrank-emu.ts";
import { rng } from "./random.ts";

const FILES = ["U", "W", "KK", "VV", "LD", "S", "TI", "R"] as const;

/** The emulator of a module's kernels (its source without preludes: DELTA_PRELUDE and the TF32 helpers put first):
 * argv dir, entry, N, threads, smem, B, T, H; decay "none" gets LD = nullptr. */
export function buildPrepR(source: string, kernels: readonly DeltaPrepRKernel[]): string {
  const p = (i: number) => `AnyP{P[${i}]}`;
  const call = (entry: string) => {
    const k = kernels.find((x) => x.entry === entry)!;
    return `${p(0)}, ${p(1)}, ${p(2)}, ${p(3)}, ${k.decay === "none" ? "nullptr" : "(const float*)P[4]"}, (const __nv_bfloat16*)P[5], SB, ST, SH, (float*)P[6], (unsigned short*)P[7]`;
  };
  const main = `
struct AnyP { void* p; template <class T> operator const T*() const { return (const T*)p; } };
${emuGridMain(kernels.map((k) => k.entry), call, FILES, ["SB", "ST", "SH"], [6, 7])}`;
  return compileLowRankEmu(DELTA_PRELUDE + MMA_TF32_PRELUDE + source, main, "delta-prep-r", true);
}

/** Random bf16 states [N, K, V] uniform in (-scale, scale): values and words. */
export function randomStates(cs: Case, scale: number, seed: number): { values: Float64Array; words: Buffer } {
  const { K, V } = cs.s, N = cs.s.B * cs.s.H * nChunks(cs.s), r = rng(seed);
  return bf16(Float64Array.from({ length: N * K * V }, () => scale * (2 * r() - 1)));
}

/** One run of entry k: TI (fp32) and R (bf16 widened; NaN-filled before, so unwritten shows as NaN in TI). */
export function runPrepR(bin: string, k: DeltaPrepRKernel, cs: Case, S: Buffer): { TI: Float64Array; R: Float64Array } {
  return inScratchDir("seqc-dpr-", (dir) => {
    const { B, T, H, C, V } = cs.s, N = B * H * nChunks(cs.s);
    const bufs: Record<string, Buffer> = { ...cs.words, S, TI: f32Bytes(new Float64Array(N * C * C).fill(NaN)), R: Buffer.alloc(N * C * V * 2, 0xff) };
    for (const f of FILES) writeFileSync(join(dir, `${f}.bin`), bufs[f]);
    execFileSync(bin, [dir, k.entry, String(N), String(k.threads), String(k.sharedBytes), String(B), String(T), String(H)], { stdio: "pipe" });
    const raw = readFileSync(join(dir, "R.out")), w = new Uint16Array(raw.buffer, raw.byteOffset, N * C * V), u = new Uint32Array(w.length);
    for (let i = 0; i < w.length; i++) u[i] = w[i] << 16;
    return { TI: readF32(join(dir, "TI.out")), R: Float64Array.from(new Float32Array(u.buffer)) };
  });
}

/** The float64 reference: TI, M, X (prepFwdChunk) and R = X + M S per chunk. */
export function prepRReference(cs: Case, S: Float64Array): { TI: Float64Array; M: Float64Array; X: Float64Array; R: Float64Array } {
  const { s } = cs, { C, K, V } = s, N = s.B * s.H * nChunks(s);
  const p = prepAll(s, (b, h, c) => prepFwdChunk(cs.inp, s, b, h, c));
  const R = new Float64Array(N * C * V);
  for (let n = 0; n < N; n++)
    for (let a = 0; a < C; a++)
      for (let j = 0; j < V; j++) {
        let acc = p.X[(n * C + a) * V + j];
        for (let i = 0; i < K; i++) acc += p.M[(n * C + a) * K + i] * S[(n * K + i) * V + j];
        R[(n * C + a) * V + j] = acc;
      }
  return { TI: p.TI, M: p.M, X: p.X, R };
}
