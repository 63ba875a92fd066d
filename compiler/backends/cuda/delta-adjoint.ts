/**
 * The token-aligned delta backward's adjoint kernel (docs/delta-backward.md, kernel 4 "adjoint"; runtime
 * seqc_delta_bwd.py): one block per chunk of C tokens (aligned to t = 0) forms every per-token adjoint of the chunk and,
 * with a scalar log decay, the log decay's adjoint, from the per-token inputs q, u, w, k [.., K], v, dy [.., V] (TIN:
 * float or bf16), the forward walk's reads R [N, C, V] and start states S0 [N, K, V], the backward walk's chunk-end
 * adjoints LE [N, K, V] and DR [N, C, V], and the forward walk's final state SF [B H, K, V] (S_C of the chunk holding
 * token T - 1; every other chunk's S_C is the next chunk's S0). With G[a] the chunk's log decays summed over slots
 * 0..a (G[-1] = 0, G_C = G[C - 1]; fp32, summed in slot order):
 *
 *   Ay[a,f] = exp(G[a] - G[f]) (dy_a . v_f)   f <= a      Ar[a,f] = exp(G[a-1] - G[f]) (DR_a . v_f)   f < a
 *   By[a,f] = exp(G[a] - G[f]) (dy_a . r_f)   f <= a      Br[a,f] = exp(G[a-1] - G[f]) (DR_a . r_f)   f < a
 *   Pk[a,f] = exp(G[a] - G[f]) (q_a . k_f)    f <= a      Luk[a,f] = exp(G[a-1] - G[f]) (w_a . k_f)   f < a
 *   dv_f = sum_a Pk[a,f] dy_a + sum_a Luk[a,f] DR_a + exp(G_C - G[f]) LE^T k_f
 *   dk_f = sum_a Ay[a,f] q_a + sum_a Ar[a,f] w_a + exp(G_C - G[f]) LE v_f
 *   du_f = sum_a By[a,f] q_a + sum_a Br[a,f] w_a + exp(G_C - G[f]) LE r_f
 *   dq_a = exp(G[a]) S0 dy_a + sum_f (By[a,f] u_f + Ay[a,f] k_f)
 *   dw_a = exp(G[a-1]) S0 DR_a + sum_f (Br[a,f] u_f + Ar[a,f] k_f)
 *   scalar decay: terms_a = q_a.dq_a + w_a.dw_a - u_a.du_a - k_a.dk_a, aC = <LE, S_C>,
 *                 dld_a = aC + sum_{s >= a} terms_s - w_a.dw_a
 *
 * The "y" side (x = q, g = dy, scores f <= a) and the "r" side (x = w, g = DR, f < a) are one sequence of steps,
 * each 64 x 64 x 64 at C = K = V = 64 (21 products a chunk; the score products' sums run only over the scores' nonzero
 * triangle and the scores' tiles above the diagonal are not computed):
 *   LE    dv = k LE, dk = v LE^T, du = r LE^T, each row f scaled by exp(G_C - G[f]);  aC's partial sums
 *   side  dx = g S0^T, row a scaled by exp(G[a]) (y) / exp(G[a-1]) (r);  P = (x k^T) masked and decayed
 *         dv += P^T g;  A = (g v^T) masked and decayed
 *         dx += A k;  dk += A^T x
 *         B = (g r^T) masked and decayed
 *         dx += B u;  du += B^T x;  dx stored (dq / dw)
 * Every thread owns one 4 x 4 tile of each [C, K] output (K = V, C K / 16 threads): dk, du, dv and the side's dx stay
 * in registers from the first step to the last. Shared memory holds six [max(C, K)][max(C, K) + 4] fp32 slots, reloaded
 * from global memory (L2) in the layout each step reads (rows, or transposed), so that every product reads its right
 * operand as float4 rows: 106,016 bytes at C = K = V = 64; __launch_bounds__(threads, 2): two blocks an SM, at most 128
 * registers a thread. K = V = 128 (K > C, the "wide" plan): 512 threads (one tile each still), the same products in a
 * sequence split to fit 216,608 bytes (x and g rows, one big slot for S0^T / LE / LE^T or two transposed operands, two
 * score slots, u rows; the y side's dld partials saved to shared memory: one block an SM). Global loads take 4 values a
 * thread (float4, or 4 bf16 words). Slots t >= T of the chunk read as zeros
 * (per-token inputs, and the rows of R and DR), and nothing is written for them.
 *
 * Inputs of type TIN: float, or bf16 passed as its 16-bit words (`unsigned short`, the same bits as __nv_bfloat16).
 * Math fp32 (fmaf on the SIMT cores; the TF32 tensor-core twins, math "tf32", in delta-adjoint-mma.ts: the same steps
 * through AdjOps). Every exponent is a difference G[x] - G[y] with x >= y, or G[x] - 0 <= 0.
 */

import { MMA_TF32_PRELUDE } from "./lowrank-readout-mma.ts";
import { adjMmaOps, adjMmaThreads } from "./delta-adjoint-mma.ts";
import { deltaAdjBf16Kernel, deltaAdjBf16Source } from "./delta-adjoint-bf16.ts";
import { maskedRows, zeroTile } from "./register-tiles.ts";

export type DeltaAdjDecay = "none" | "scalar";
export type DeltaTin = "f32" | "bf16";

export interface DeltaAdjConfig {
  decay: DeltaAdjDecay;
  tin: DeltaTin;
  C: number;
  K: number;
  V: number;
  /** fp32 FMAs on the SIMT cores (absent) or the tensor-core twin "tf32" (delta-adjoint-mma.ts; entries end in _tf32;
   * bf16 inputs, C = K = V = 64), or the bf16 twin "bf16" (delta-adjoint-bf16.ts; entries end in _bf16_bf16). */
  math?: "tf32" | "bf16";
  /** The bf16 twin's R, S0, LE, DR type (absent: float32): "bf16" reads them as bf16 (the walks' zout "bf16", entries end
   * in _zb; SF stays float32); delta-adjoint-bf16.ts only. */
  zin?: "bf16";
  /** The bf16 twin's dQ, dU, dW, dK, dV type (absent: float32): "bf16" stores them as bf16 words rounded to nearest even
   * (entries end in _ob; dLD stays float32); delta-adjoint-bf16.ts only. */
  aout?: "bf16";
  /** The zin twins' loads (absent: as above): "ca" copies every chunk input by cp.async (R, LE, S0 and DR too: bf16 words
   * as they are), in two groups (step 1's operands, then the rest), aC from LE's shared copy, dld's suffix sums one
   * thread's chain (entries end in _ca; seqc_delta_bwd LR_DELTA_ADJ_LOAD); delta-adjoint-bf16.ts only. */
  load?: "ca";
}

export interface DeltaAdjKernel extends DeltaAdjConfig {
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** The shipped configurations: C = K = V = 64, each decay and input type. */
export const DELTA_ADJ_CONFIGS: readonly DeltaAdjConfig[] = (["none", "scalar"] as const).flatMap((decay) =>
  (["f32", "bf16"] as const).map((tin) => ({ decay, tin, C: 64, K: 64, V: 64 })));

/** K = V = 128 (the "wide" plan: 512 threads, 216,608 bytes of shared memory, one block an SM), each decay and input
 * type; not in DELTA_ADJ_CONFIGS (the torch module's records) yet. */
export const DELTA_ADJ_K128_CONFIGS: readonly DeltaAdjConfig[] = DELTA_ADJ_CONFIGS.map((c) => ({ ...c, K: 128, V: 128 }));

/** The tensor-core twins (TF32), for bf16 inputs: each decay at C = K = V = 64. */
export const DELTA_ADJ_MMA_CONFIGS: readonly DeltaAdjConfig[] = DELTA_ADJ_CONFIGS.filter((c) => c.tin === "bf16").map((c) => ({ ...c, math: "tf32" as const }));

/** The K = V = 128 twins (16 warps, 225,824 bytes of shared memory, one block an SM); not in the torch module yet. */
export const DELTA_ADJ_K128_MMA_CONFIGS: readonly DeltaAdjConfig[] = DELTA_ADJ_MMA_CONFIGS.map((c) => ({ ...c, K: 128, V: 128 }));

export function deltaAdjEntry(c: DeltaAdjConfig): string {
  return `seqc_delta_adj_${c.decay}_c${c.C}k${c.K}v${c.V}_${c.tin}${c.math ? `_${c.math}` : ""}`;
}

const SLOTS = 6;

/** A shared buffer: its pointer's name, offset and row stride (floats). */
interface Slot { p: string; off: number; ld: number }

/** Shared memory. "six" (K <= C): six slots of [max(C, K)][max(C, K) + pad] (pad 4, 8 for the twins: conflict-free
 * fragment reads), sS0..sS5. "wide" (K > C, one block an SM): x and g rows [C][K + pad] (sX, sGr), a big slot for S0^T /
 * LE / LE^T [K][V + pad] or two transposed [K][C + pad] operands (sBig, sT2), two score slots [C][C + pad] (sC1, sC2),
 * u rows (sU). Then G [C + 1], the aC partials [threads], the row terms [C + 1]. */
function layout(c: DeltaAdjConfig): { plan: "six" | "wide"; NT: number; slots: Record<string, Slot>; floats: number } {
  const pad = c.math ? 8 : 4, W = Math.max(c.C, c.K);
  const NT = c.math ? adjMmaThreads(c) : (c.C / 4) * (c.K / 4);
  const up4 = (x: number) => Math.ceil(x / 4) * 4;
  const slots: Record<string, Slot> = {};
  let off = 0;
  const add = (p: string, floats: number, ld: number) => { slots[p] = { p, off, ld }; off += floats; };
  const plan = c.K > c.C ? "wide" : "six";
  if (plan === "six") for (let i = 0; i < SLOTS; i++) add(`sS${i}`, W * (W + pad), W + pad);
  else {
    const R = c.K + pad, Tt = c.C + pad;
    add("sX", c.C * R, R);
    add("sGr", c.C * R, R);
    // views of the big slot: transposed k / v / r [K][C + pad] (sT1, sT2), k rows in sT1's place (sT1r)
    slots.sT1 = { p: "sT1", off, ld: Tt };
    slots.sT1r = { p: "sT1r", off, ld: R };
    slots.sT2 = { p: "sT2", off: off + c.K * Tt, ld: Tt };
    add("sBig", Math.max(c.K * (c.V + pad), 2 * c.K * Tt), c.V + pad);
    add("sC1", c.C * Tt, Tt);
    add("sC2", c.C * Tt, Tt);
    add("sU", c.C * R, R);
    add("sPY", c.C * (c.K / 4), c.K / 4);  // the y side's dld partials (q.dq), saved so that they are not live in registers over the r side
  }
  return { plan, NT, slots, floats: off + up4(c.C + 1) + up4(NT) + up4(c.C + 1) };
}

function check(c: DeltaAdjConfig): void {
  if (c.zin) throw new Error(`delta-adjoint: bf16 R, S0, LE, DR (zin) on the bf16 twin only (math "bf16")`);
  if (c.math && (c.C !== 64 || (c.K !== 64 && c.K !== 128) || c.tin !== "bf16")) throw new Error(`delta-adjoint (${c.math}): C = 64, K = V = 64 or 128 and bf16 inputs only (warps of a 16-row block and four 8-column tiles)`);
  if (c.K !== c.V) throw new Error(`delta-adjoint: K ${c.K} must equal V ${c.V} (a thread owns one tile of each output)`);
  if (c.C % 4 || c.K % 4 || c.C < 4 || c.K < 4) throw new Error(`delta-adjoint: C ${c.C} and K ${c.K} must be multiples of 4 (4 x 4 register tiles)`);
  const { NT, floats } = layout(c);
  if (NT > 1024) throw new Error(`delta-adjoint: C ${c.C}, K ${c.K} needs ${NT} threads (> 1024)`);
  if (floats * 4 > 227 * 1024) throw new Error(`delta-adjoint: C ${c.C}, K ${c.K} needs ${floats * 4} bytes of shared memory (> 227 KiB)`);
}

export function deltaAdjKernel(c: DeltaAdjConfig): DeltaAdjKernel {
  if (c.math === "bf16") return deltaAdjBf16Kernel(c);
  check(c);
  const { NT, floats } = layout(c);
  return { ...c, entry: deltaAdjEntry(c), threads: NT, sharedBytes: floats * 4 };
}

/** Helpers the kernels share (guarded: a module may hold several kernels and other preludes). */
export const DELTA_ADJ_PRELUDE = `#ifndef SEQC_DELTA_ADJ_IO
#define SEQC_DELTA_ADJ_IO 1
typedef unsigned int u32;
#ifndef SEQC_SMEM_DECL
#define SEQC_SMEM_DECL(name) extern __shared__ __align__(16) char name[]
#endif
__device__ __forceinline__ float seqc_dadj_in(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float seqc_dadj_in(const unsigned short* p, size_t i) { return __uint_as_float(((u32)p[i]) << 16); }
// 4 consecutive values from p + i (16-byte aligned for float, 8 for bf16)
__device__ __forceinline__ float4 seqc_dadj_in4(const float* p, size_t i) { return __ldg((const float4*)(p + i)); }
__device__ __forceinline__ float4 seqc_dadj_in4(const unsigned short* p, size_t i) {
#ifdef SEQC_EMU
  const u32 lo = ((const u32*)(p + i))[0], hi = ((const u32*)(p + i))[1];
#else
  const uint2 w = __ldg((const uint2*)(p + i));
  const u32 lo = w.x, hi = w.y;
#endif
  return make_float4(__uint_as_float(lo << 16), __uint_as_float(lo & 0xffff0000u), __uint_as_float(hi << 16), __uint_as_float(hi & 0xffff0000u));
}
#endif
`;

const unroll = "#pragma unroll";

/** acc[p][j] += sum_{m in [lo, hi)} X(4 ti + p, m) Y(m, 4 tj + j) (lo, hi multiples of 4), X stored [i][m] ("N") or
 * [m][i] ("T"), Y stored [m][j]; row stride ld. */
export function prod(acc: string, X: string, ldx: number, xT: boolean, Y: string, ldy: number, ti: string, tj: string, lo: string, hi: string): string {
  const xs = xT
    ? `${unroll}
      for (u32 q = 0; q < 4u; ++q) { const float4 v = *(const float4*)&${X}[(m0 + q) * ${ldx}u + 4u * ${ti}]; xa[0][q] = v.x; xa[1][q] = v.y; xa[2][q] = v.z; xa[3][q] = v.w; }`
    : `${unroll}
      for (u32 p = 0; p < 4u; ++p) { const float4 v = *(const float4*)&${X}[(4u * ${ti} + p) * ${ldx}u + m0]; xa[p][0] = v.x; xa[p][1] = v.y; xa[p][2] = v.z; xa[p][3] = v.w; }`;
  return `    for (u32 m0 = ${lo}; m0 < ${hi}; m0 += 4u) {
      float xa[4][4];
${xs}
${unroll}
      for (u32 q = 0; q < 4u; ++q) {
        const float4 y4 = *(const float4*)&${Y}[(m0 + q) * ${ldy}u + 4u * ${tj}];
        const float yb[4] = {y4.x, y4.y, y4.z, y4.w};
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) ${acc}[p][j] = fmaf(xa[p][q], yb[j], ${acc}[p][j]);
      }
    }
`;
}

/** Row-major index of (a, i) in the chunk's rows of a per-token [B, T, H, w] tensor (slot a is token t0 + a). */
export const adjTok = (a: string, i: string, w: number): string => `(((size_t)b * T + t0 + ${a}) * H + h) * ${w}u + ${i}`;

/** How a kernel computes (fp32 SIMT tiles here, tensor-core fragments in delta-adjoint-mma.ts): a thread's share of
 * each [C, K] output ("acc", registers), the products into it, the score tiles, row scales, stores and dld's per-row
 * partial dot products (PR partials a row, "pt" / "pw"). Shared memory: six slots of rows of stride LD floats. */
export interface AdjOps {
  NT: number;
  PR: number;
  /** This thread's indices. */
  own: string;
  zero(acc: string, decl?: boolean): string;
  /** acc += X Y over m: all of [0, w) ("full"), or where a score operand X is nonzero: m <= the row ("lower": X stored
   * [row][m], scores with f <= a) or m >= the row ("upper": X stored [m][row], transposed scores). */
  prod(acc: string, X: string, ldx: number, xT: boolean, Y: string, ldy: number, range: "full" | "lower" | "upper", w: number): string;
  /** dst [a][f] = X(a, .) . Y(., f) over m < w, masked f < a + oq and decayed exp(G[a - 1 + oq] - G[f]). */
  scores(dst: string, ldd: number, X: string, ldx: number, Y: string, ldy: number, w: number, oq: number): string;
  scaleRows(acc: string, e: (row: string) => string): string;
  store(acc: string, dst: string): string;
  dots(acc: string, src: string, part: string, sign: string): string;
  /** pt / pw declared zero; their writes into sPT / sPW [C][PR]. */
  parts: string;
  partStore: string;
  /** part written into dst [C][PR] and zeroed. */
  partSave(dst: string, part: string): string;
}

/** The fp32 SIMT kernel's ops: thread t owns the 4 x 4 tile (oti, otj) = (t / (K / 4), t % (K / 4)) of each output. */
function simtOps(c: DeltaAdjConfig): AdjOps {
  const { C, K } = c;
  const { NT } = layout(c);
  const dec = c.decay !== "none";
  const KT = K / 4, CT = C / 4;
  const tok = adjTok;
  const zero = (acc: string, decl = true) => `${decl ? `  float ${acc}[4][4];\n` : ""}${unroll}
  for (u32 p = 0; p < 4u; ++p)
${unroll}
    for (u32 j = 0; j < 4u; ++j) ${acc}[p][j] = 0.f;
`;
  const range = { full: (w: number) => ["0u", `${w}u`], lower: () => ["0u", "4u * oti + 4u"], upper: () => ["4u * oti", `${C}u`] };
  return {
    NT, PR: KT,
    own: `  const u32 oti = t / ${KT}u, otj = t % ${KT}u;  // this thread's tile of each [C, K] output\n`,
    zero,
    prod: (acc, X, ldx, xT, Y, ldy, r, w) => { const [lo, hi] = range[r](w); return prod(acc, X, ldx, xT, Y, ldy, "oti", "otj", lo, hi); },
    // (tiles above the diagonal are zeros)
    scores: (dst, ldd, X, ldx, Y, ldy, w, oq) => `  for (u32 x = t; x < ${CT * CT}u; x += ${NT}u) {
    const u32 sti = x / ${CT}u, stj = x % ${CT}u;
    ${zeroTile("sc")}
    if (stj <= sti) {
${prod("sc", X, ldx, false, Y, ldy, "sti", "stj", "0u", `${w}u`)}    }
${maskedRows(dst, ldd, "f", `f < a + ${oq}u`, dec ? `expf(sG[a + ${oq}u] - sG[f + 1u])` : "1.f", { acc: "sc", ti: "sti", tj: "stj" })}
  }
`,
    scaleRows: (acc, e) => `${unroll}
  for (u32 p = 0; p < 4u; ++p) {
    const float e = ${e("(4u * oti + p)")};
${unroll}
    for (u32 j = 0; j < 4u; ++j) ${acc}[p][j] *= e;
  }
`,
    // stores of a [C, K] output's tile rows (valid rows only)
    store: (acc, dst) => `${unroll}
  for (u32 p = 0; p < 4u; ++p) {
    const u32 a = 4u * oti + p;
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) ${dst}[${tok("a", "4u * otj + j", K)}] = ${acc}[p][j];
    }
  }
`,
    // per-row partial dot products x_a . acc_a over the tile's columns, added into part[p] with a sign (x from global)
    dots: (acc, src, part, sign) => `${unroll}
  for (u32 p = 0; p < 4u; ++p) {
    const u32 a = 4u * oti + p;
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) ${part}[p] ${sign}= seqc_dadj_in(${src}, ${tok("a", "4u * otj + j", K)}) * ${acc}[p][j];
    }
  }
`,
    parts: "  float pt[4] = {0.f, 0.f, 0.f, 0.f}, pw[4] = {0.f, 0.f, 0.f, 0.f};\n",
    partStore: `${unroll}
  for (u32 p = 0; p < 4u; ++p) { sPT[(4u * oti + p) * ${KT}u + otj] = pt[p]; sPW[(4u * oti + p) * ${KT}u + otj] = pw[p]; }
`,
    partSave: (dst, part) => `${unroll}
  for (u32 p = 0; p < 4u; ++p) { ${dst}[(4u * oti + p) * ${KT}u + otj] = ${part}[p]; ${part}[p] = 0.f; }
`,
  };
}

/** An adjoint kernel's head (the signature every adjoint shares: inputs of type TIN, `minBlocks` blocks an SM): chunk n's
 * (b, h), its index cix and first token t0, and its slots in use nv. */
export function adjHead(entry: string, TIN: string, NT: number, minBlocks: number, C: number, ZT = "float", OT = "float"): string {
  return `
extern "C" __global__ void __launch_bounds__(${NT}, ${minBlocks}) ${entry}(const ${TIN}* __restrict__ Q, const ${TIN}* __restrict__ U, const ${TIN}* __restrict__ W, const ${TIN}* __restrict__ KK, const ${TIN}* __restrict__ VV, const ${TIN}* __restrict__ DY, const float* __restrict__ LD,
    const ${ZT}* __restrict__ R, const ${ZT}* __restrict__ S0, const float* __restrict__ SF, const ${ZT}* __restrict__ LE, const ${ZT}* __restrict__ DR, int B, int T, int H,
    ${OT}* __restrict__ dQ, ${OT}* __restrict__ dU, ${OT}* __restrict__ dW, ${OT}* __restrict__ dK, ${OT}* __restrict__ dV, float* __restrict__ dLD) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  const u32 nC = ((u32)T + ${C - 1}u) / ${C}u, n = blockIdx.x, t = threadIdx.x;
  if (n >= (u32)B * (u32)H * nC) return;
  const u32 bh = n / nC, cix = n % nC, b = bh / (u32)H, h = bh % (u32)H, t0 = cix * ${C}u;
  const u32 nv = (u32)T - t0 < ${C}u ? (u32)T - t0 : ${C}u;  // slots in use
`;
}

export function deltaAdjSource(c: DeltaAdjConfig): string {
  if (c.math === "bf16") return deltaAdjBf16Source(c);
  check(c);
  const { C, K, V, decay, tin } = c;
  const ops = c.math ? adjMmaOps(c) : simtOps(c);
  const L = layout(c), sl = L.slots;
  const { NT, PR } = ops;
  const dec = decay !== "none";
  const TIN = tin === "f32" ? "float" : "unsigned short";
  // the chunk's token rows: slot a is token t0 + a (valid below T)
  const tok = adjTok;
  const chk = (a: string, i: string, w: number) => `((size_t)n * ${C}u + ${a}) * ${w}u + ${i}`;
  // 4 values v of row r, columns 4 c4.. into shared: as they are (dst[r][4 c4..], one float4) or transposed (dst[4 c4 + q][r])
  const put = (d: Slot, r: string, c4: string, T_: boolean) => T_
    ? `${d.p}[(4u * ${c4}) * ${d.ld}u + ${r}] = v.x; ${d.p}[(4u * ${c4} + 1u) * ${d.ld}u + ${r}] = v.y; ${d.p}[(4u * ${c4} + 2u) * ${d.ld}u + ${r}] = v.z; ${d.p}[(4u * ${c4} + 3u) * ${d.ld}u + ${r}] = v.w;`
    : `*(float4*)&${d.p}[${r} * ${d.ld}u + 4u * ${c4}] = v;`;
  // loads of 4 values a thread (two loop steps at a time: more spill at 128 registers): rows [a][i] (N) or transposed [i][a] (T; consecutive threads take consecutive rows, so
  // that the transposed stores are conflict-free) of a per-token input (src name, width w) or of a chunk tensor
  const load = (dst: Slot, src: string, w: number, kind: "tok" | "chunk", T_: boolean) => {
    const at = `seqc_dadj_in4(${src}, ${kind === "tok" ? tok("a", "4u * i4", w) : chk("a", "4u * i4", w)})`;
    const idx = T_ ? `const u32 a = x % ${C}u, i4 = x / ${C}u;` : `const u32 a = x / ${w / 4}u, i4 = x % ${w / 4}u;`;
    return `${unroll} 2\n  for (u32 x = t; x < ${(C * w) / 4}u; x += ${NT}u) { ${idx} const float4 v = a < nv ? ${at} : make_float4(0.f, 0.f, 0.f, 0.f); ${put(dst, "a", "i4", T_)} }\n`;
  };
  // a [K][V] chunk tensor (S0, LE) as it is ([i][j]) or transposed ([j][i])
  const loadKV = (dst: Slot, src: string, T_: boolean) => {
    const idx = T_ ? `const u32 i = x % ${K}u, j4 = x / ${K}u;` : `const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u;`;
    return `${unroll} 2\n  for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) { ${idx} const float4 v = seqc_dadj_in4(${src}, (size_t)n * ${K * V}u + i * ${V}u + 4u * j4); ${put(dst, "i", "j4", T_)} }\n`;
  };
  const { zero, store } = ops;
  const prod = (acc: string, X: Slot, xT: boolean, Y: Slot, r: "full" | "lower" | "upper", w = 0) => ops.prod(acc, X.p, X.ld, xT, Y.p, Y.ld, r, w);
  const scores = (dst: Slot, X: Slot, Y: Slot, w: number, oq: number) => ops.scores(dst.p, dst.ld, X.p, X.ld, Y.p, Y.ld, w, oq);
  // rows of acc scaled by e(row) (decay only)
  const scaleRows = (acc: string, e: (a: string) => string) => dec ? ops.scaleRows(acc, e) : "";
  const dots = (acc: string, src: string, part: string, sign: string) => dec ? ops.dots(acc, src, part, sign) : "";
  const eC = (a: string) => `expf(sG[${C}u] - sG[${a} + 1u])`;
  // aC's partial sums: LE (in `le`, as it is) . S_C
  const aC = (le: Slot) => dec ? `  {
    const float* SC = cix + 1u < nC ? S0 + (size_t)(n + 1u) * ${K * V}u : SF + (size_t)bh * ${K * V}u;
    float s = 0.f;
    for (u32 x = t; x < ${K * V}u; x += ${NT}u) s = fmaf(${le.p}[(x / ${V}u) * ${le.ld}u + x % ${V}u], SC[x], s);
    sRed[t] = s;
  }
` : "";
  const sideHead = (y: boolean) => `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----\n`;
  const gLoad = (y: boolean, dst: Slot) => y ? load(dst, "DY", V, "tok", false) : load(dst, "DR", V, "chunk", false);
  const eS0 = (oq: number) => (a: string) => `expf(sG[${a}${oq ? " + 1u" : ""}])`;
  const sideEnd = (y: boolean, x: string) => `${store("dx", y ? "dQ" : "dW")}${dots("dx", x, "pt", "+")}${y ? "" : dots("dx", "W", "pw", "+")}  __syncthreads();\n`;
  let body: string, first: Slot;
  if (L.plan === "six") {
    const S = (i: number) => sl[`sS${i}`];
    first = S(0);
    const side = (y: boolean) => {
      const oq = y ? 1 : 0, x = y ? "Q" : "W";
      return `${sideHead(y)}${load(S(0), x, K, "tok", false)}${gLoad(y, S(1))}${loadKV(S(2), "S0", true)}${load(S(3), "KK", K, "tok", true)}${load(S(5), "VV", V, "tok", true)}  __syncthreads();
${zero("dx", false)}${prod("dx", S(1), false, S(2), "full", V)}${scaleRows("dx", eS0(oq))}${scores(S(4), S(0), S(3), K, oq)}  __syncthreads();
  // dv += P^T g; A = g v^T
${load(S(3), "KK", K, "tok", false)}${prod("dv", S(4), true, S(1), "upper")}${scores(S(2), S(1), S(5), V, oq)}  __syncthreads();
  // dx += A k; dk += A^T x
${load(S(5), "R", V, "chunk", true)}${load(S(4), "U", K, "tok", false)}${prod("dx", S(2), false, S(3), "lower")}${prod("dk", S(2), true, S(0), "upper")}  __syncthreads();
  // B = g r^T
${scores(S(3), S(1), S(5), V, oq)}  __syncthreads();
  // dx += B u; du += B^T x
${prod("dx", S(3), false, S(4), "lower")}${prod("du", S(3), true, S(0), "upper")}${sideEnd(y, x)}`;
    };
    body = `  // ---- LE: dv = k LE, dk = v LE^T, du = r LE^T (rows scaled by exp(G_C - G[f])); aC's partials ----
${load(S(0), "KK", K, "tok", false)}${loadKV(S(1), "LE", false)}${load(S(2), "VV", V, "tok", false)}${load(S(3), "R", V, "chunk", false)}${loadKV(S(4), "LE", true)}  __syncthreads();
${zero("dv")}${zero("dk")}${zero("du")}  float dx[4][4];
${dec ? ops.parts : ""}${prod("dv", S(0), false, S(1), "full", K)}${prod("dk", S(2), false, S(4), "full", V)}${prod("du", S(3), false, S(4), "full", V)}${scaleRows("dv", eC)}${scaleRows("dk", eC)}${scaleRows("du", eC)}${aC(S(1))}  __syncthreads();
${side(true)}${side(false)}`;
  } else {
    const { sX, sGr, sBig, sT1, sT1r, sT2, sC1, sC2, sU } = sl;
    first = sX;
    const side = (y: boolean) => {
      const oq = y ? 1 : 0, x = y ? "Q" : "W";
      return `${sideHead(y)}${load(sX, x, K, "tok", false)}${gLoad(y, sGr)}${loadKV(sBig, "S0", true)}  __syncthreads();
${zero("dx", false)}${prod("dx", sGr, false, sBig, "full", V)}${scaleRows("dx", eS0(oq))}  __syncthreads();
  // P = x k^T
${load(sT1, "KK", K, "tok", true)}${load(sT2, "VV", V, "tok", true)}  __syncthreads();
${scores(sC1, sX, sT1, K, oq)}  __syncthreads();
  // dv += P^T g; A = g v^T
${load(sT1r, "KK", K, "tok", false)}${prod("dv", sC1, true, sGr, "upper")}${scores(sC2, sGr, sT2, V, oq)}  __syncthreads();
  // dx += A k; dk += A^T x
${load(sT2, "R", V, "chunk", true)}${load(sU, "U", K, "tok", false)}${prod("dx", sC2, false, sT1r, "lower")}${prod("dk", sC2, true, sX, "upper")}  __syncthreads();
  // B = g r^T
${scores(sC1, sGr, sT2, V, oq)}  __syncthreads();
  // dx += B u; du += B^T x
${prod("dx", sC1, false, sU, "lower")}${prod("du", sC1, true, sX, "upper")}${sideEnd(y, x)}${y && dec ? ops.partSave("sPY", "pt") : ""}`;
    };
    body = `  // ---- LE: dv = k LE; aC's partials; then dk = v LE^T, du = r LE^T (rows scaled by exp(G_C - G[f])) ----
${load(sX, "KK", K, "tok", false)}${loadKV(sBig, "LE", false)}  __syncthreads();
${zero("dv")}${zero("dk")}${zero("du")}  float dx[4][4];
${dec ? ops.parts : ""}${prod("dv", sX, false, sBig, "full", K)}${scaleRows("dv", eC)}${aC(sBig)}  __syncthreads();
${loadKV(sBig, "LE", true)}${load(sGr, "VV", V, "tok", false)}${load(sU, "R", V, "chunk", false)}  __syncthreads();
${prod("dk", sGr, false, sBig, "full", V)}${prod("du", sU, false, sBig, "full", V)}${scaleRows("dk", eC)}${scaleRows("du", eC)}  __syncthreads();
${side(true)}${side(false)}`;
  }
  const slots = Object.values(sl).map((x) => `  float* ${x.p} = (float*)seqc_smem_raw + ${x.off};\n`).join("");
  const tail = dec ? `  // dld: rows' terms and w.dw summed over the tiles' columns, aC, suffix sums
  float* sPT = ${first.p};          // [C][K / 4] terms partials
  float* sPW = ${first.p} + ${C * PR}; // [C][K / 4] w.dw partials
${ops.partStore}  __syncthreads();
  float wdw = 0.f;
  if (t < ${C}u) {
    float s = 0.f;
    for (u32 j = 0; j < ${PR}u; ++j) { s += sPT[t * ${PR}u + j]${L.plan === "wide" ? ` + sPY[t * ${PR}u + j]` : ""}; wdw += sPW[t * ${PR}u + j]; }
    sRow[t] = s;
  }
  if (t == 0u) {
    float s = 0.f;
    for (u32 j = 0; j < ${NT}u; ++j) s += sRed[j];
    sRow[${C}u] = s;  // aC
  }
  __syncthreads();
  if (t < nv) {
    float s = sRow[${C}u];
    for (u32 a = ${C - 1}u; a > t; --a) s += sRow[a];
    s += sRow[t];
    dLD[((size_t)b * T + t0 + t) * H + h] = s - wdw;
  }
` : "";
  const end = Object.values(sl).reduce((m, x) => Math.max(m, x.off), 0);
  const sGoff = L.floats - (Math.ceil((C + 1) / 4) * 4 + Math.ceil(NT / 4) * 4 + Math.ceil((C + 1) / 4) * 4);
  if (sGoff <= end) throw new Error("delta-adjoint: layout");
  return `${c.math ? `\n${MMA_TF32_PRELUDE}` : ""}${adjHead(deltaAdjEntry(c), TIN, NT, L.plan === "six" ? 2 : 1, C)}${ops.own}${slots}  float* sG = (float*)seqc_smem_raw + ${sGoff};  // [C + 1]: sG[a + 1] = G[a], sG[0] = 0
  float* sRed = sG + ${Math.ceil((C + 1) / 4) * 4};  // [threads] aC partials
  float* sRow = sRed + ${Math.ceil(NT / 4) * 4};      // [C] row terms, then aC
${dec ? `  if (t == 0u) {
    float s = 0.f;
    sG[0] = 0.f;
    for (u32 a = 0; a < ${C}u; ++a) { if (a < nv) s += LD[((size_t)b * T + t0 + a) * H + h]; sG[a + 1u] = s; }
  }
` : ""}${body}${dots("du", "U", "pt", "-")}${dots("dk", "KK", "pt", "-")}${store("dk", "dK")}${store("du", "dU")}${store("dv", "dV")}${tail}}
`;
}
