/**
 * The low-rank chunk readouts kernel's tensor-core twin (lowrank-readout.ts, configurations with `math` "tf32" or
 * "tf32x3"; entries end in _tf32 / _tf32x3): the same reads (see there) from the same float32 tensors, its three
 * products by mma.sync m16n8k8 with TF32 operands and fp32 accumulators instead of fp32 FMAs on the SIMT cores.
 *
 *   "tf32"    each operand rounded to TF32 (cvt.rna: 10 explicit mantissa bits, relative 2^-11) once: about 3 decimal
 *             digits per product, for bf16 tensors (whose own rounding is 2^-9);
 *   "tf32x3"  each operand split into a TF32 head and a TF32 tail (x = hi + lo + O(2^-22 x)), the product as
 *             hi hi + hi lo + lo hi: near fp32 accuracy at three times the tensor-core work.
 *
 * Per chunk (a block of 8 warps), per query vector:
 *   scores  P = Q EA^T [C, E] (E = C M events), rows in 16-row blocks rb, a block's warps (8 / (C / 16) of them) taking
 *           its 8-event tiles in turn, only the events of steps up to the block's last (16 (rb + 1) M); masked and
 *           decayed in registers (cs < a + oq: exp(G_{a+oq} - G_{cs+1})), then stored over EA's slot;
 *   output  OUT = exp(G_{a+oq}) (Q S0op) + P EB: a block's warps take its 8-column tiles in turn; the start product
 *           first, its rows scaled by exp(G_{a+oq}), then the scores' product accumulated on it.
 * Shared memory holds every operand in its global layout (row-major, cp.async 16-byte copies), rows padded so that the fragment
 * reads are conflict-free: an A operand or a B operand stored [n][k] rows of stride 4 mod 32, a B operand stored [k][n]
 * rows of stride 8 mod 32 (key axis: S0 [K][V] is the start product's B operand [k][n]; value axis: S0 [K][V] is its
 * transpose's [n][k]; EB [E][B] is [k][n]; EA [E][A] is the scores' B operand [n][k]); A fragments by ldmatrix.x4, B
 * fragments by 32-bit loads; every operand rounded (split) to TF32 as its fragment is read.
 * At C = K = V = 64, M = 2: 107.8 KB of shared memory (two blocks an SM).
 * The launch arguments rev and qs as the fp32 kernel's (lowrank-readout.ts): rev = 1 maps step a to row C - 1 - a of Q, EA,
 * EB and OUT in the global copies and stores (G in step order), qs is Q's step stride in floats.
 */
import type { LowRankReadConfig } from "./lowrank-readout.ts";
import { SEQC_CP_ASYNC, SEQC_LDSM4 } from "./ptx-copy-wrappers.ts";

export type LowRankReadMath = "tf32" | "tf32x3";

/** The mma helpers on the card (a CPU emulation provides its own: SEQC_EMU, test/cuda-emu/mma-tf32.h). */
export const MMA_TF32_PRELUDE = `#ifndef SEQC_TF32_MMA
#define SEQC_TF32_MMA 1
#ifndef SEQC_EMU
__device__ __forceinline__ u32 seqc_tf32(float x) { u32 r; asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x)); return r; }
__device__ __forceinline__ void seqc_mma_tf32(float* c, const u32* a, const u32* b) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
${SEQC_LDSM4}
${SEQC_CP_ASYNC}
#endif
// x = hi + lo, both TF32 (the tail of x - hi rounded again)
__device__ __forceinline__ void seqc_split_tf32(float x, u32& hi, u32& lo) { hi = seqc_tf32(x); lo = seqc_tf32(x - __uint_as_float(hi)); }
#endif
`;

export const MMA_WARPS = 8;

const pad = (w: number, r: number) => padStride(w, r);

/** Shared memory layout in floats: Q [C][LQ]; a slot holding EA [E][LE], then the scores [C][LP]; EB [E][LB]; S0 [K][LS];
 * G [C + 1] with a decay. */
export function mmaReadLayout(c: LowRankReadConfig): { A: number; B: number; E: number; LQ: number; LE: number; LP: number; LB: number; LS: number; slot: number; floats: number } {
  const key = c.axis === "key", A = key ? c.K : c.V, B = key ? c.V : c.K, E = c.C * c.M;
  const LQ = pad(A, 4), LE = pad(A, 4), LP = pad(E, 4), LB = pad(B, 8), LS = key ? pad(c.V, 8) : pad(c.V, 4);
  const slot = Math.max(E * LE, c.C * LP);
  return { A, B, E, LQ, LE, LP, LB, LS, slot, floats: c.C * LQ + slot + E * LB + c.K * LS + (c.decay === "none" ? 0 : c.C + 1) };
}

export function mmaReadCheck(c: LowRankReadConfig): void {
  if (![16, 32, 64].includes(c.C) || c.K % 8 || c.V % 8 || c.M < 1 || c.M > 3)
    throw new Error(`lowrank-readout (${c.math}): C ${c.C} must be 16, 32 or 64 (16-row blocks on ${MMA_WARPS} warps), K ${c.K} and V ${c.V} multiples of 8, M ${c.M} in 1..3`);
  if (mmaReadLayout(c).floats * 4 > 227 * 1024) throw new Error(`lowrank-readout (${c.math}): C ${c.C}, K ${c.K}, V ${c.V}, M ${c.M} needs ${mmaReadLayout(c).floats * 4} bytes of shared memory (> 227 KiB)`);
}

/** Code for TF32 fragments (x3: heads and tails): frag(ind, name, values) declares u32 name[n] (and name`l`[n]) from
 * float expressions; mma(ind, acc, a, b) accumulates one m16n8k8 product (three with x3). The operand loaders from shared
 * memory (the kernel names the lane l = t & 31, g = l >> 2, tg = l & 3): fragA, A rows r0.. of X [row][k] (stride ld),
 * k0..: (g, tg), (g + 8, tg), (g, tg + 4), (g + 8, tg + 4), by one ldmatrix.x4 (its four 8 x 8 b16 matrices the 8 x 4
 * fp32 blocks: lane l gives row l % 8 of block l / 8), then rounded; fragAt, A from a [k][m] layout (each value optionally
 * scaled by s(k)); fragBnk / fragBkn, B (k0.., n0..): (k tg, n g), (k tg + 4, n g), stored [n][k] / [k][n]. */
export function tf32Ops(x3: boolean): {
  frag: (ind: string, name: string, at: string[]) => string;
  mma: (ind: string, acc: string, a: string, b: string) => string;
  fragA: (ind: string, name: string, X: string, ld: number, r0: string, k0: string) => string;
  fragAt: (ind: string, name: string, X: string, ld: number, m0: string, k0: string, s?: (k: string) => string) => string;
  fragBnk: (ind: string, name: string, X: string, ld: number, n0: string, k0: string) => string;
  fragBkn: (ind: string, name: string, X: string, ld: number, n0: string, k0: string) => string;
} {
  const frag = (ind: string, name: string, at: string[]) =>
    x3
      ? `${ind}u32 ${name}[${at.length}], ${name}l[${at.length}];\n` + at.map((p, i) => `${ind}seqc_split_tf32(${p}, ${name}[${i}], ${name}l[${i}]);\n`).join("")
      : `${ind}u32 ${name}[${at.length}];\n` + at.map((p, i) => `${ind}${name}[${i}] = seqc_tf32(${p});\n`).join("");
  return {
    frag,
    mma: (ind, acc, a, b) =>
      x3 ? `${ind}seqc_mma_tf32(${acc}, ${a}l, ${b}); seqc_mma_tf32(${acc}, ${a}, ${b}l); seqc_mma_tf32(${acc}, ${a}, ${b});\n` : `${ind}seqc_mma_tf32(${acc}, ${a}, ${b});\n`,
    fragA: (ind, name, X, ld, r0, k0) =>
      `${ind}u32 ${name}w[4];\n${ind}seqc_ldsm4(${name}w, &${X}[(${r0} + (l & 7u) + ((l >> 3u) & 1u) * 8u) * ${ld}u + ${k0} + (l >> 4u) * 4u]);\n` +
      frag(ind, name, [0, 1, 2, 3].map((i) => `__uint_as_float(${name}w[${i}])`)),
    fragAt: (ind, name, X, ld, m0, k0, s) =>
      frag(ind, name, [[0, 0], [8, 0], [0, 4], [8, 4]].map(([dm, dk]) => {
        const k = `${k0} + tg + ${dk}u`, v = `${X}[(${k}) * ${ld}u + ${m0} + g + ${dm}u]`;
        return s ? `${s(k)} * ${v}` : v;
      })),
    fragBnk: (ind, name, X, ld, n0, k0) => frag(ind, name, [`${X}[(${n0} + g) * ${ld}u + ${k0} + tg]`, `${X}[(${n0} + g) * ${ld}u + ${k0} + tg + 4u]`]),
    fragBkn: (ind, name, X, ld, n0, k0) => frag(ind, name, [`${X}[(${k0} + tg) * ${ld}u + ${n0} + g]`, `${X}[(${k0} + tg + 4u) * ${ld}u + ${n0} + g]`]),
  };
}

/** A row stride >= w (w a multiple of 8) that is r mod 32. */
export const padStride = (w: number, r: number) => w + ((((r - w) % 32) + 32) % 32);

/** The readout kernels' pieces that the whole-row twin (mmaReadSource) and the column-group twin
 * (lowrank-readout-cols.ts) share, for a block of MMA_WARPS warps over C / 16 row blocks of WPR warps each, layout L's
 * strides (the start operand's rows of stride LS: key [k][n], value [n][k]). `ind` is each piece's base indent.
 *   row, evRow  rev (a launch argument): step a's rows in global memory (Q, EA, EB, OUT) are row C - 1 - a (the chunk
 *               stored in forward time, read as reversed); an event e = c M + y of step c is row evRow(e); G stays in
 *               the kernel's step order;
 *   copy        16-byte asynchronous copies (cp.async) of a row-major [rows][w] global block into shared rows of stride ld;
 *   rowBlockTiles  acc[n][4]: the products of Q's row block a0.. (over the A axis) with the warp's tiles it = h, h + WPR,
 *               ... below `limit` (the scores' event tiles, the outputs' column tiles); fragB: the B fragment of tile
 *               `it` at step ks;
 *   head        the block's row n, thread, warp and lane indices, its row block and the row n's Q, EA and OUT;
 *   scores      P = Q EA^T, masked and decayed in registers, stored over EA's slot (TS tiles a warp; no barrier after);
 *   outputs     exp(G_{a+oq}) Q S0op + P EB over `ncol` 8-column tiles (TO a warp) of the operands in sS / sB, stored
 *               at OUT's columns colOff + 8 ct. */
export function mmaReadPieces(c: LowRankReadConfig, L: { A: number; B: number; E: number; LQ: number; LE: number; LP: number; LB: number; LS: number }) {
  const { C, M } = c;
  const x3 = c.math === "tf32x3", dec = c.decay !== "none", key = c.axis === "key";
  const { A, B, E, LQ, LE, LP, LB, LS } = L;
  const NT = MMA_WARPS * 32, RB = C / 16, WPR = MMA_WARPS / RB;
  const unroll = "#pragma unroll";
  const { mma, fragA, fragBnk, fragBkn } = tf32Ops(x3);
  const row = (a: string) => `(rev ? ${C - 1}u - (${a}) : (${a}))`;
  const evRow = (e: string) => `(rev ? (${C - 1}u - (${e}) / ${M}u) * ${M}u + (${e}) % ${M}u : (${e}))`;
  const rowBlockTiles = (ind: string, acc: string, n: number, it: string, limit: string, fragB: string) => `${ind}float ${acc}[${n}][4];
${unroll}
${ind}for (u32 j = 0; j < ${n}u; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;
${unroll} 2
${ind}for (u32 ks = 0; ks < ${A / 8}u; ++ks) {
${fragA(`${ind}  `, "fa", "sQ", LQ, "a0", "8u * ks")}${unroll}
${ind}  for (u32 j = 0; j < ${n}u; ++j) {
${ind}    const u32 ${it} = h + ${WPR}u * j;
${ind}    if (${it} < ${limit}) {
${fragB}${mma(`${ind}      `, `${acc}[j]`, "fa", "fb")}${ind}    }
${ind}  }
${ind}}
`;
  const copy = (ind: string, dst: string, ld: number, rows: number, w: number, src: (r: string, c4: string, x: string) => string) =>
    `${ind}for (u32 x = t; x < ${(rows * w) / 4}u; x += ${NT}u) { const u32 r = x / ${w / 4}u, c4 = x % ${w / 4}u; seqc_cp16(&${dst}[r * ${ld}u + 4u * c4], &${src("r", "c4", "x")}); }\n`;
  const head = `  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
  const u32 rb = w / ${WPR}u, h = w % ${WPR}u, a0 = 16u * rb;
  const u32 ntile = ${2 * M}u * (rb + 1u);  // the 8-event tiles of the steps up to the row block's last
  const float* q = Q + (size_t)n * ${C}u * qs;
  const float* ea = EA + (size_t)n * ${E * A}u;
  float* out = OUT + (size_t)n * ${C}u * mq * ${B}u;
`;
  const scores = (ind: string, TS: number) => `${rowBlockTiles(ind, "sc", TS, "et", "ntile", fragBnk(`${ind}      `, "fb", "sX", LE, "8u * et", "8u * ks"))}${unroll}
${ind}for (u32 j = 0; j < ${TS}u; ++j)
${unroll}
${ind}  for (u32 r = 0; r < 4u; ++r) {
${ind}    const u32 a = a0 + g + 8u * (r >> 1u), cs = (8u * (h + ${WPR}u * j) + 2u * tg + (r & 1u)) / ${M}u;
${dec ? `${ind}    sc[j][r] *= cs < a + oq ? expf(sG[a + oq] - sG[cs + 1u]) : 0.f;` : `${ind}    sc[j][r] = cs < a + oq ? sc[j][r] : 0.f;`}
${ind}  }
${ind}__syncthreads();
${unroll}
${ind}for (u32 j = 0; j < ${TS}u; ++j) {
${ind}  const u32 et = h + ${WPR}u * j;
${ind}  if (et < ntile) {
${ind}    *(float2*)&sX[(a0 + g) * ${LP}u + 8u * et + 2u * tg] = make_float2(sc[j][0], sc[j][1]);
${ind}    *(float2*)&sX[(a0 + g + 8u) * ${LP}u + 8u * et + 2u * tg] = make_float2(sc[j][2], sc[j][3]);
${ind}  }
${ind}}
`;
  const outputs = (ind: string, TO: number, ncol: number, colOff: string) => `${rowBlockTiles(ind, "o", TO, "ct", `${ncol}u`, (key ? fragBkn : fragBnk)(`${ind}      `, "fb", "sS", LS, "8u * ct", "8u * ks"))}${dec ? `${ind}{
${ind}  const float d0 = expf(sG[a0 + g + oq]), d1 = expf(sG[a0 + g + 8u + oq]);
${unroll}
${ind}  for (u32 j = 0; j < ${TO}u; ++j) { o[j][0] *= d0; o[j][1] *= d0; o[j][2] *= d1; o[j][3] *= d1; }
${ind}}
` : ""}${ind}for (u32 ks = 0; ks < ntile; ++ks) {
${fragA(`${ind}  `, "fa", "sX", LP, "a0", "8u * ks")}${unroll}
${ind}  for (u32 j = 0; j < ${TO}u; ++j) {
${ind}    const u32 ct = h + ${WPR}u * j;
${ind}    if (ct < ${ncol}u) {
${fragBkn(`${ind}      `, "fb", "sB", LB, "8u * ct", "8u * ks")}${mma(`${ind}      `, "o[j]", "fa", "fb")}${ind}    }
${ind}  }
${ind}}
${unroll}
${ind}for (u32 j = 0; j < ${TO}u; ++j) {
${ind}  const u32 ct = h + ${WPR}u * j;
${ind}  if (ct < ${ncol}u) {
${ind}    *(float2*)&out[(${row("a0 + g")} * mq + xq) * ${B}u + ${colOff}8u * ct + 2u * tg] = make_float2(o[j][0], o[j][1]);
${ind}    *(float2*)&out[(${row("a0 + g + 8u")} * mq + xq) * ${B}u + ${colOff}8u * ct + 2u * tg] = make_float2(o[j][2], o[j][3]);
${ind}  }
${ind}}
`;
  return { NT, RB, WPR, row, evRow, copy, rowBlockTiles, head, scores, outputs };
}

export function mmaReadSource(c: LowRankReadConfig, entry: string): string {
  const { C, K, V, M, decay } = c;
  const dec = decay !== "none";
  const L = mmaReadLayout(c);
  const { A, B, E, LQ, LE, LB, LS } = L;
  const { NT, RB, WPR, row, evRow, copy, head, scores, outputs } = mmaReadPieces(c, L);
  const TS = Math.ceil((2 * RB * M) / WPR), TO = Math.ceil(B / 8 / WPR);
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 2) ${entry}(const float* __restrict__ Q, const float* __restrict__ EA, const float* __restrict__ EB, const float* __restrict__ S0, const float* __restrict__ Gg, float* __restrict__ OUT, u32 N, u32 oq, u32 mq, u32 rev, u32 qs) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sQ = (float*)seqc_smem_raw;  // Q [C][LQ] (one query vector)
  float* sX = sQ + ${C * LQ};         // EA [E][LE] -> the scores [C][LP]
  float* sB = sX + ${L.slot};         // EB [E][LB]
  float* sS = sB + ${E * LB};         // S0 [K][LS]
  float* sG = sS + ${K * LS};         // G [C + 1]
${head}${copy("  ", "sB", LB, E, B, (r, c4) => `EB[(size_t)n * ${E * B}u + ${evRow(r)} * ${B}u + 4u * ${c4}]`)}${copy("  ", "sS", LS, K, V, (_r, _c, x) => `S0[(size_t)n * ${K * V}u + 4u * ${x}]`)}${dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n` : ""}  for (u32 xq = 0; xq < mq; ++xq) {
${copy("    ", "sQ", LQ, C, A, (r, c4) => `q[${row(r)} * qs + xq * ${A}u + 4u * ${c4}]`)}${copy("    ", "sX", LE, E, A, (r, c4) => `ea[${evRow(r)} * ${A}u + 4u * ${c4}]`)}    seqc_cp_commit();
    seqc_cp_wait<0>();
    __syncthreads();
    // scores: rows a0.., the row block's event tiles h, h + ${WPR}, ...
${scores("    ", TS)}    __syncthreads();
    // the outputs: rows a0.., the column tiles h, h + ${WPR}, ...: exp(G_{a+oq}) Q S0op, then + P EB
${outputs("    ", TO, B / 8, "")}    __syncthreads();
  }
}
`;
}
