/**
 * The tensor-core twin of the delta backward's walk over the chunks (delta-walk.ts; math "tf32x3", entries ending
 * _tf32x3; "tf32" on request, _tf32): the same arguments, outputs and recurrence, per (b, h) row and chunk
 *   ZS[n] = Z;   Yc = X[n] + M[n] Z   [C, cols];   Y[n] = Yc;   Z = A[n] Z + BM[n] + NN[n]^T Yc   [K, cols]
 * with both products on mma.sync m16n8k8 TF32. tf32x3: every operand split into a TF32 head and tail (a = ah + al),
 * three products (al bh + ah bl + ah bh): fp32-level accuracy, which the state recurrence needs over hundreds of chunks.
 * C / 16 warps: phase 1, warp w the 16 rows 16 w.. of Yc (all cols); phase 2, warp w the K / C row blocks of Z from
 * 16 (K / C) w on. Z stays in the mma accumulators of its owners across the chunks (z[m][s][e]: row 16 (mt) + g + 8 (e >> 1),
 * column 8 s + 2 tg + (e & 1)); phase 2 accumulates into it directly after scaling by A and adding BM, and writes it to
 * shared memory ([K][LZ]) for the next chunk's phase 1, where it is the B operand. Yc goes through shared memory
 * ([C][LZ]) to phase 2's B operand. Operands are read as scalars in fragment order with strides that put a warp's
 * loads on distinct banks: M [C][K + 4] ([m][k] reads: 4 mod 32), NN [C][LN], Z and Yc [.][LZ] ([k][m] / [k][n] reads:
 * 8 mod 32). Every chunk's operands come by cp.async as in delta-walk.ts: the next chunk's M and X issued when phase 1
 * is done with them (hidden by phase 2), this chunk's NN and BM at the chunk's start (hidden by phase 1). Two block
 * barriers a chunk. A per-key decay (perKey) scales Z's row i by A[n, i] (each thread's rows' decays from global).
 */
import { DELTA_WALK_PRELUDE, deltaWalkCols, deltaWalkEntry, type DeltaWalkConfig, type DeltaWalkKernel } from "./delta-walk.ts";
import { padStride, tf32Ops } from "./lowrank-readout-mma.ts";

export interface DeltaWalkMmaConfig extends DeltaWalkConfig {
  math: "tf32" | "tf32x3";
}

export interface DeltaWalkMmaKernel extends DeltaWalkKernel {
  math: "tf32" | "tf32x3";
}

/** The twins of the torch modules' walks: C = 64, K = V = 64 and 128, 3xTF32 (cols as the fp32 walks': 32 at V = 64,
 * 16 at V = 128). */
export const DELTA_WALK_MMA_CONFIGS: readonly DeltaWalkMmaConfig[] = [64, 128].map((K) => ({ C: 64, K, V: K, math: "tf32x3" as const }));

/** The same with a per-key decay. */
export const DELTA_WALK_KEY_MMA_CONFIGS: readonly DeltaWalkMmaConfig[] = DELTA_WALK_MMA_CONFIGS.map((c) => ({ ...c, perKey: true }));

function mmaLayout(c: DeltaWalkMmaConfig): { G: number; W: number; MT: number; NB: number; LM: number; LN: number; LZ: number; floats: number } {
  const { C, K, V } = c, G = c.cols ?? deltaWalkCols(K, V);
  if (c.split && c.split > 1) throw new Error(`delta-walk (${c.math}): no split walks`);
  if (C % 16 || C < 16 || C > 512) throw new Error(`delta-walk (${c.math}): C ${C} must be a multiple of 16 (a warp a 16-row block), at most 512`);
  if (K % C) throw new Error(`delta-walk (${c.math}): K ${K} must be a multiple of C ${C} (a warp K / C row blocks of Z)`);
  if (G % 8 || V % G) throw new Error(`delta-walk (${c.math}): cols ${G} must be a multiple of 8 that divides V ${V}`);
  const W = C / 16, MT = K / C, NB = G / 8, LM = K + 4, LN = padStride(K, 8), LZ = padStride(G, 8);
  const floats = C * LM + C * LN + C * G + C * LZ + K * G + K * LZ;
  if (floats * 4 > 227 * 1024) throw new Error(`delta-walk (${c.math}): C ${C}, K ${K}, cols ${G} needs ${floats * 4} bytes of shared memory (> 227 KiB)`);
  return { G, W, MT, NB, LM, LN, LZ, floats };
}

/** seqc_delta_walk_[key_]c{C}k{K}v{V}[_g{cols}]_{math}. */
export function deltaWalkMmaEntry(c: DeltaWalkMmaConfig): string {
  return `${deltaWalkEntry({ ...c, split: 1 })}_${c.math}`;
}

export function deltaWalkMmaKernel(c: DeltaWalkMmaConfig): DeltaWalkMmaKernel {
  const l = mmaLayout(c);
  return { ...c, op: "walk", entry: deltaWalkMmaEntry(c), threads: 32 * l.W, sharedBytes: l.floats * 4, cols: l.G, split: 1, math: c.math };
}

const U = "#pragma unroll";

/** The kernel's source (after delta-walk.ts's DELTA_WALK_PRELUDE, which holds the TF32 helpers). */
export function deltaWalkMmaSource(c: DeltaWalkMmaConfig): string {
  const { C, K, V } = c, { G, W, MT, NB, LM, LN, LZ } = mmaLayout(c), NT = 32 * W;
  const { frag, mma } = tf32Ops(c.math === "tf32x3");
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const zRow = (m: number, h: number) => `(${MT}u * w + ${m}u) * 16u + g + ${8 * h}u`;
  const col = (s: number) => `${8 * s}u + 2u * tg`;
  /** every (m, s, h) pair of Z's accumulators: code(m, s, h, row, col) */
  const zPairs = (code: (m: number, s: number, h: number, row: string, cl: string) => string, ind: string) =>
    range(MT).flatMap((m) => range(NB).flatMap((s) => [0, 1].map((h) => `${ind}{ const u32 row = ${zRow(m, h)}, col = ${col(s)}; ${code(m, s, h, "row", "col")} }\n`))).join("");
  const pair = (a: string, m: number, s: number, h: number) => `make_float2(${a}[${m}][${s}][${2 * h}], ${a}[${m}][${s}][${2 * h + 1}])`;
  const gZ = (buf: string, rowBase: string) => (m: number, s: number, h: number, row: string, cl: string) => `*(float2*)&${buf}[(${rowBase} + ${row}) * ${V}u + j0 + ${cl}] = ${pair("z", m, s, h)};`;
  const sZstore = (ind: string) => zPairs((m, s, h, row, cl) => `*(float2*)&sZ[${row} * ${LZ}u + ${cl}] = ${pair("z", m, s, h)};`, ind);
  // a chunk's R rows of width Wd floats (source stride, offset) into dst [R][ld] by 16-byte copies
  const copy = (dst: string, ld: number, src: string, R: number, Wd: number, stride: number, off: string, ind: string) =>
    `${ind}for (u32 x = t; x < ${R * (Wd / 4)}u; x += ${NT}u) { const u32 r = x / ${Wd / 4}u, q = 4u * (x % ${Wd / 4}u); seqc_cp16(&${dst}[r * ${ld}u + q], ${src} + (size_t)r * ${stride}u${off} + q); }\n`;
  const copyMX = (ind: string, nv: string) => `${ind}{
${ind}  const float* gM = M + ${nv} * ${C * K}u;
${ind}  const float* gX = X + ${nv} * ${C * V}u;
${copy("sM", LM, "gM", C, K, K, "", ind + "  ")}${copy("sX", G, "gX", C, G, V, " + j0", ind + "  ")}${ind}}
`;
  const chunkOf = (s: string) => `(reverse ? nC - 1 - ${s} : ${s})`;
  const decay = c.perKey
    ? (m: number, h: number) => `A[n * ${K}u + ${zRow(m, h)}]`
    : () => "an";
  // phase 1: warp w's rows 16 w.. of Yc = X + M Z
  const p1 = `    float y[${NB}][4];
${range(NB).flatMap((s) => [0, 1].map((h) => `    { const float2 v = *(const float2*)&sX[(16u * w + g + ${8 * h}u) * ${G}u + ${col(s)}]; y[${s}][${2 * h}] = v.x; y[${s}][${2 * h + 1}] = v.y; }\n`)).join("")}${U} 2
    for (u32 k0 = 0; k0 < ${K}u; k0 += 8u) {
${frag("      ", "fa", [[0, 0], [8, 0], [0, 4], [8, 4]].map(([dr, dk]) => `sM[(16u * w + g + ${dr}u) * ${LM}u + k0 + tg + ${dk}u]`))}${range(NB).map((s) => `      {
${frag("        ", "fb", [0, 4].map((dk) => `sZ[(k0 + tg + ${dk}u) * ${LZ}u + ${8 * s}u + g]`))}${mma("        ", `y[${s}]`, "fa", "fb")}      }
`).join("")}    }
${range(NB).flatMap((s) => [0, 1].map((h) => `    { const u32 row = 16u * w + g + ${8 * h}u, col = ${col(s)}; const float2 v = make_float2(y[${s}][${2 * h}], y[${s}][${2 * h + 1}]); *(float2*)&sY[row * ${LZ}u + col] = v; *(float2*)&Y[(n * ${C}u + row) * ${V}u + j0 + col] = v; }\n`)).join("")}`;
  // phase 2: Z = A Z + BM + NN^T Yc on warp w's row blocks, in the accumulators
  const p2 = `${zPairs((m, s, h, row, cl) => `const float2 b = *(const float2*)&sB[${row} * ${G}u + ${cl}]; const float a = ${decay(m, h)}; z[${m}][${s}][${2 * h}] = fmaf(a, z[${m}][${s}][${2 * h}], b.x); z[${m}][${s}][${2 * h + 1}] = fmaf(a, z[${m}][${s}][${2 * h + 1}], b.y);`, "    ")}${U} 2
    for (u32 k0 = 0; k0 < ${C}u; k0 += 8u) {
${range(NB).map((s) => frag("      ", `fb${s}`, [0, 4].map((dk) => `sY[(k0 + tg + ${dk}u) * ${LZ}u + ${8 * s}u + g]`))).join("")}${range(MT).map((m) => `      {
${frag("        ", "fa", [[0, 0], [8, 0], [0, 4], [8, 4]].map(([dr, dk]) => `sN[(k0 + tg + ${dk}u) * ${LN}u + ${MT * 16}u * w + ${16 * m + dr}u + g]`))}${range(NB).map((s) => mma("        ", `z[${m}][${s}]`, "fa", `fb${s}`)).join("")}      }
`).join("")}    }
${sZstore("    ")}`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${deltaWalkMmaEntry(c)}(const float* __restrict__ M, const float* __restrict__ X, const float* __restrict__ BM, const float* __restrict__ NN, const float* __restrict__ A, const float* __restrict__ Z0, float* __restrict__ ZS, float* __restrict__ Y, float* __restrict__ ZF, int BH, int nC, int reverse) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sM = (float*)seqc_smem_raw;  // M [C][${LM}]
  float* sN = sM + ${C * LM};         // NN [C][${LN}]
  float* sX = sN + ${C * LN};         // X [C][cols]
  float* sY = sX + ${C * G};          // Yc [C][${LZ}]
  float* sB = sY + ${C * LZ};         // BM [K][cols]
  float* sZ = sB + ${K * G};          // Z [K][${LZ}]
  const u32 t = threadIdx.x, w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
  const int bh = blockIdx.x;
  if (bh >= BH) return;
  const u32 j0 = blockIdx.y * ${G}u;  // this block's value columns j0 .. j0 + ${G - 1}
  float z[${MT}][${NB}][4];  // Z's rows 16 (${MT} w + m) + g + 8 (e >> 1), columns 8 s + 2 tg + (e & 1)
  if (Z0) {
${zPairs((m, s, h, row, cl) => `const float2 v = *(const float2*)&Z0[((size_t)bh * ${K}u + ${row}) * ${V}u + j0 + ${cl}]; z[${m}][${s}][${2 * h}] = v.x; z[${m}][${s}][${2 * h + 1}] = v.y;`, "    ")}  } else {
${U}
    for (u32 m = 0; m < ${MT}u; ++m)
${U}
      for (u32 s = 0; s < ${NB}u; ++s)
${U}
        for (u32 e = 0; e < 4u; ++e) z[m][s][e] = 0.f;
  }
${sZstore("  ")}  if (nC > 0) {  // the first chunk's M and X
    const size_t n0 = (size_t)bh * nC + ${chunkOf("0")};
${copyMX("    ", "n0")}  }
  seqc_cp_commit();
  for (int s = 0; s < nC; ++s) {
    const size_t n = (size_t)bh * nC + ${chunkOf("s")};
    seqc_cp_wait<0>();  // this chunk's M and X
    __syncthreads();    // ... every thread's copies, Z; the previous phase 2 done with NN, BM and Yc
    {  // this chunk's NN and BM, hidden by phase 1
      const float* gN = NN + n * ${C * K}u;
      const float* gB = BM + n * ${K * V}u;
${copy("sN", LN, "gN", C, K, K, "", "      ")}${copy("sB", G, "gB", K, G, V, " + j0", "      ")}    }
    seqc_cp_commit();
${c.perKey ? "" : "    const float an = A[n];\n"}${zPairs(gZ("ZS", `n * ${K}u`), "    ")}    // phase 1: Yc = X + M Z
${p1}    seqc_cp_wait<0>();  // this chunk's NN and BM
    __syncthreads();    // ... and Yc; phase 1 done with M, X and Z
    if (s + 1 < nC) {  // the next chunk's M and X, hidden by phase 2
      const size_t nn = (size_t)bh * nC + ${chunkOf("(s + 1)")};
${copyMX("      ", "nn")}    }
    seqc_cp_commit();
    // phase 2: Z = A Z + BM + NN^T Yc
${p2}  }
${zPairs(gZ("ZF", `(size_t)bh * ${K}u`), "  ")}}
`;
}

/** The twins of these configurations as one translation unit after delta-walk.ts's DELTA_WALK_PRELUDE; `patch` edits the
 * source (the tests' broken copies). */
export function deltaWalkMmaModule(configs: readonly DeltaWalkMmaConfig[] = DELTA_WALK_MMA_CONFIGS, patch?: (src: string) => string): { source: string; kernels: DeltaWalkMmaKernel[] } {
  const source = DELTA_WALK_PRELUDE + configs.map(deltaWalkMmaSource).join("");
  return { source: patch ? patch(source) : source, kernels: configs.map(deltaWalkMmaKernel) };
}
