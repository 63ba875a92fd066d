/**
 * The rows readout (rows-readout.ts's contract for one pair and one readout) in the chunked form on tensor cores: the
 * torch target's per-key-decay transposed cores in the bf16 step (GLA: dq = S dy in forward time with a = k, b = v,
 * c = dy; dk = G v in reversed time with a = q, b = dy, c = v), where b and c are bf16 tensors:
 *
 *   S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T,   out_t = S_t c_t      (per batch and head; S_0 given or zero)
 *
 * ld: [B, T, H*K] float32 (log decays <= 0); a: [B, T, H*K] float32 or bf16 (entry suffix _la); b, c: [B, T, H*V] bf16;
 * S_0: [B, H, K, V] float32; out: [B, T, H*K] float32. K, V <= 64 (padded to 64 inside; the wide entries _v128: K, V <= 128,
 * below). One block per (batch, head)
 * walks the chunks of C = 64 tokens in order, the state in float32 registers (mma C-fragment layout). Per chunk, with
 * g the decays' cumulative sum from the chunk's start (g_t <= 0, decreasing) and sub-chunks of 16 tokens (J, L):
 *
 *   M[t, s]  = c_t . b_s                                         (bf16 x bf16, fp32 accumulation: exact products)
 *   out_t[i] = exp(g_t[i]) (S c_t)[i]                              inter:   c (S_hi + S_lo)^T
 *            + sum_{L < J} exp(g_t[i] - e_L[i]) sum_{s in L} M[t, s] a_s[i] exp(e_L[i] - g_s[i])   (e_L = g at L's end)
 *            + sum_{s in J, s <= t} M[t, s] a_s[i] exp(g_t[i] - g_s[i])        the diagonal sub-chunk, in fp32 FMA
 *   S'       = exp(g_end) S + sum_s (a_s exp(g_end - g_s)) b_s^T    (g_end = g at the chunk's last token)
 *
 * Every exponent taken is of a difference g_t - g_s with s <= t (<= 0: every factor <= 1, no overflow), except in the
 * diagonal sub-chunk's quotient form: per key column and sub-chunk, where the sub-chunk's decays sum to >= -60
 * (RC_QUOTIENT_FLOOR), exp(g_t - r) exp(r - g_s) from the sub-chunk's start r (the second factor <= e^60, its products in
 * float32 range); else each pair's exp (exact for any decay, more exps). Operands that are not bf16 values (M, the decayed
 * a, the state) enter the tensor cores as two bf16 words, hi = bf16(x) and lo = bf16(x - hi), their products hi.hi + hi.lo +
 * lo.hi (b and c are bf16 values: one word): about 2^-16 relative, near float32, not the 2^-9 of one bf16 rounding (which
 * the decays' adjoint's cancelling sums q.dq - k.dk would feel: rows-readout.ts's note). The rows readout kernel walks
 * each token (a dependent chain per token, latency-bound); here a chunk is a few matrix products.
 *
 * Reversed time (the last argument rev, RC_REV_BITS): the transposed adjoint walks the reversed sequence; with rev its
 * operands stay where the forward wrote them and the kernel maps token t of its walk to the stored token: a, b, c and out
 * at T - 1 - t (bits 2, 4, 8, 16) and ld as the adjoint's decays from the forward's log decays, ld[T - t] for t >= 1 and
 * 0 at t = 0 (bit 1: each decay moved one step earlier, then reversed). Bitwise the run on the flipped tensors (the same
 * values in the same order), without the glue's flips and gather.
 *
 * The decay adjoint's terms (entries _t, RowsChunkConfig.terms): the transposed adjoint's dk (out) is also what the
 * per-key decay's terms q.dq - k.dk take, with q = a (the readout's q) at dk's token; such an entry reads dq (float32) and
 * k (bf16) at out's stored row as it stores, writes terms = q dq - k dk there (float32: each product rounded, then their
 * difference, as decay-terms.ts's kernel computes them: bitwise its output) and out as bf16 (dk rounded once, as the glue
 * converts an input's whole gradient). a and out must be stored in the same time direction (rev's bits 2 and 16 alike):
 * q is taken from the chunk's a in shared memory. At K = 64 the chunk's dq and k rows are copied to shared memory by
 * cp.async at the chunk's start, in flight while its products run (each 16-byte row piece aligned: the runtime checks);
 * at K < 64 they are read from global memory as the outputs are stored.
 *
 * The wide entries (RowsChunkConfig.wide, infix _v128; GLA at K = V = 128): the rows are independent (out_t[i] reads S's
 * row i, which only key i's a and decays update), so a block takes one group of 64 key rows (blockIdx.y; grid (B H,
 * ceil(K / 64))) and all of V <= 128 value columns: c, b and the state's hi / lo tiles [64][136], M = c b^T and the
 * readout S c summed over 128 values, the state 64 x 128 in registers (32 floats a thread). M is formed in each group's
 * block (twice at K = 128: 64 x 64 x 128 products, a quarter of a chunk's work). 199,680 bytes of shared memory (226,304
 * with terms): one block an SM. The same sums as a 64-wide block but for V's length.
 */
import { CHUNK_CORE_SOURCE } from "./chunked-core.ts";

/** One entry: warps per block (4: a warp per sub-chunk of 16 tokens and 16 key rows; 8: two warps each, halving the
 * columns) and whether a is bf16. */
export interface RowsChunkConfig {
  warps: 4 | 8 | 16;
  /** a read as bf16 words (GLA's dq: a = k); else float32 (its dk: a = q scaled by prep) */
  lowA: boolean;
  /** the next chunk's ld, a, b, c loaded into registers (16-byte loads) while this one computes, stored to shared memory
   * at the next chunk's start (entry suffix _p; K = V = 64 and 16-byte aligned rows only: the runtime checks). Without it
   * each chunk's loads are waited for before its products (the H200 profile: 0.54 ms a product with 4 warps, about 17 us a
   * chunk, far above its products' work: the loads' latency, read from the times, not profiled) */
  pipe?: boolean;
  /** (entry suffix _t) the decay adjoint's terms q.dq - k.dk written beside out, out stored as bf16 */
  terms?: boolean;
  /** (with terms, 8 warps, not split; entry suffix _ts) the terms' running sums along the walk in place of the terms: token
   * t's value is carry0 + the terms of walk tokens <= t (carry0 [B, H*K] float32 per key row, the extra last argument, or
   * null for 0), summed per chunk in 4 parts of 16 tokens, then the carry and the earlier parts in order. Under rev 31 the
   * walk is reversed time, so these are the decay adjoint's reverse sums dld_t = a_T + sum_{s >= t} (q.dq - k.dk)_s with
   * carry0 = a_T: no terms tensor for seqc_decay_adjoint.reverse_sums to read back (ROWS_TERMS "scan") */
  scan?: boolean;
  /** (entry infix _v128, 8 warps only) the wide entries: 128 value columns a block (V <= 128), one group of 64 key rows a
   * block (grid (B H, ceil(K / 64)): blockIdx.y the group; K <= 128), for GLA at K = V = 128. Their pipe form takes
   * K = 128 (or 64), V = 128 */
  wide?: boolean;
  /** (entry infix _vs, 8 warps, no terms) the split entries: a block per group of 64 key rows and group of 64 value columns
   * (grid (B H, ceil(K / 64) ceil(V / 64)): blockIdx.y = key group + ceil(K / 64) value group), each group's partial
   * outputs to its own slice of out ([ceil(V / 64), B, T, H K]; the runtime sums them): 4 blocks a head at K = V = 128,
   * for few heads (B H = 8). Their pipe form takes K, V multiples of 64 */
  split?: boolean;
}

export interface RowsChunkKernel extends RowsChunkConfig {
  entry: string;
  threads: number;
  sharedBytes: number;
  /** tokens per chunk and the largest K, V */
  chunk: number;
  maxK: number;
  maxV: number;
  /** the entry takes the last argument rev (RC_REV_BITS); modules built before it have none */
  rev: true;
  /** (wide and split entries) key rows a block: the grid's second dimension is ceil(K / keyGroup) (times ceil(V /
   * valueGroup) for the split ones); absent: one block per (batch, head), K <= maxK */
  keyGroup?: 64;
  /** (split entries) value columns a block; out holds ceil(V / valueGroup) slices of partial sums */
  valueGroup?: 64;
}

/** Every entry (the runtime takes the one with seqc_chunked.ROWS_CHUNK_WARPS warps and its a's dtype). On the H200 at
 * (8, 2048, 16, 64) GLA's eager bf16 step took 2.563 ms with 4 warps, 2.213 with 8 (the token walk 2.676; bench/RESULTS.md
 * "GLA's transposed cores in the chunked form"): 8 is the runtime's default. */
export const ROWS_CHUNK_CONFIGS: readonly RowsChunkConfig[] = [
  { warps: 4, lowA: false },
  { warps: 4, lowA: true },
  { warps: 8, lowA: false },
  { warps: 8, lowA: true },
  { warps: 8, lowA: false, pipe: true },
  { warps: 8, lowA: true, pipe: true },
  { warps: 8, lowA: false, terms: true },
  { warps: 8, lowA: false, pipe: true, terms: true },
  { warps: 8, lowA: false, wide: true },
  { warps: 8, lowA: true, wide: true },
  { warps: 8, lowA: false, pipe: true, wide: true },
  { warps: 8, lowA: true, pipe: true, wide: true },
  { warps: 8, lowA: false, terms: true, wide: true },
  { warps: 8, lowA: false, pipe: true, terms: true, wide: true },
  { warps: 8, lowA: false, split: true },
  { warps: 8, lowA: true, split: true },
  { warps: 8, lowA: false, pipe: true, split: true },
  { warps: 8, lowA: true, pipe: true, split: true },
  // 16 warps (ROWS_CHUNK_WARPS 16): the prefetching entries the runtime takes at K = V = 64 and 128, and their twins without
  { warps: 16, lowA: false },
  { warps: 16, lowA: true },
  { warps: 16, lowA: false, pipe: true },
  { warps: 16, lowA: true, pipe: true },
  { warps: 16, lowA: false, pipe: true, terms: true },
  { warps: 16, lowA: false, wide: true },
  { warps: 16, lowA: true, wide: true },
  { warps: 16, lowA: false, pipe: true, wide: true },
  { warps: 16, lowA: true, pipe: true, wide: true },
  { warps: 16, lowA: false, pipe: true, terms: true, wide: true },
  // the terms' running sums (ROWS_TERMS "scan"): the terms entries' twins at K = 64, the prefetching one wide (the wide one
  // without prefetch spilled at 128 registers: where the prefetching entry does not apply the runtime takes _t and the sums apart)
  { warps: 8, lowA: false, terms: true, scan: true },
  { warps: 8, lowA: false, pipe: true, terms: true, scan: true },
  { warps: 8, lowA: false, pipe: true, terms: true, wide: true, scan: true },
];

/** The bits of the kernel's last argument `rev`: ld read as the adjoint's shifted, reversed decays (token t: ld[T - t],
 * 0 at t = 0), a, b, c read and out stored at token T - 1 - t. */
export const RC_REV_BITS = { ld: 1, a: 2, b: 4, c: 8, out: 16 } as const;

/** A sub-chunk's decay sum above which its diagonal block takes the quotient form (exp(60) ~ 1.1e26). */
export const RC_QUOTIENT_FLOOR = -60;

const C = 64, P = 72, PF = 68, PD = 20;

export function rowsChunkEntry(c: RowsChunkConfig): string {
  return `seqc_rows_chunk_w${c.warps}${c.wide ? "_v128" : ""}${c.split ? "_vs" : ""}${c.pipe ? "_p" : ""}${c.lowA ? "_la" : ""}${c.terms ? (c.scan ? "_ts" : "_t") : ""}`;
}

/** Shared memory: ten bf16 tiles [64][72] (c, b, M hi/lo, decayed a hi/lo per sub-chunk end, decayed a hi/lo to the
 * chunk's end, the state hi/lo), four float32 [64][68] (g, a, the diagonal sums, and the first pass's column totals'
 * row), the diagonal blocks of M [64][20]; with terms also the chunk's dq [64][68] float32 and k [64][72] bf16. The wide
 * entries' c, b and state tiles are [64][136] (199,680 bytes; 226,304 with terms, within the 227 KB a block may take). */
export function rowsChunkShared(terms = false, wide = false): number {
  const pv = wide ? 136 : P;
  return 6 * C * P * 2 + 4 * C * pv * 2 + 4 * C * PF * 4 + C * PD * 4 + (terms ? C * PF * 4 + C * P * 2 : 0);
}

const BODY = String.raw`
// ==== seqc rows readout, chunked on tensor cores (compiler/backends/cuda/rows-chunk.ts) ====
__device__ __forceinline__ float seqc_rc_in(float x) { return x; }
__device__ __forceinline__ float seqc_rc_in(seqc_bf16 x) { return seqc_f32(x); }
// token tt of the walk as stored: T - 1 - tt where r (rev's bit for the operand), else tt
__device__ __forceinline__ u32 seqc_rc_tok(u32 tt, u32 T, u32 r) { return r ? T - 1u - tt : tt; }
// the row of ld for token tt of the walk, or -1 for none (zero): rev's bit 1 reads the adjoint's decays ld[T - tt] (0 at tt = 0)
__device__ __forceinline__ long long seqc_rc_ldtok(u32 tt, u32 T, u32 rev) { return (rev & 1u) ? (tt ? (long long)(T - tt) : -1ll) : (long long)tt; }
// (TERMS) the decay adjoint's per-key term q dq - k dk: each product rounded, then the difference (no contraction)
#ifdef SEQC_EMU
__device__ __forceinline__ float seqc_rc_term(float q, float dq, float k, float dk) { volatile float p = q * dq, r = k * dk; return p - r; }
#else
__device__ __forceinline__ float seqc_rc_term(float q, float dq, float k, float dk) { return __fsub_rn(__fmul_rn(q, dq), __fmul_rn(k, dk)); }
#endif
// x0, x1 as bf16 words: hi = bf16(x), lo = bf16(x - hi) (two adjacent columns a u32)
__device__ __forceinline__ void seqc_rc_split2(float x0, float x1, u32& hi, u32& lo) {
  hi = seqc_pack2((seqc_bf16*)0, x0, x1);
  float h0, h1;
  seqc_unpack2((seqc_bf16*)0, hi, h0, h1);
  lo = seqc_pack2((seqc_bf16*)0, x0 - h0, x1 - h1);
}

// (PIPE) a chunk's ld, a, b, c in registers, 16-byte vectors: K = V = 64, rows 16-byte aligned
template <typename TA> struct SeqcRcVec { typedef float4 type; };
template <> struct SeqcRcVec<seqc_bf16> { typedef uint4 type; };
__device__ __forceinline__ void seqc_rc_zero(float4& v) { v = make_float4(0.f, 0.f, 0.f, 0.f); }
__device__ __forceinline__ void seqc_rc_zero(uint4& v) { v = make_uint4(0u, 0u, 0u, 0u); }
__device__ __forceinline__ void seqc_rc_sta(float* A, const float4& v) { *reinterpret_cast<float4*>(A) = v; }
__device__ __forceinline__ void seqc_rc_sta(float* A, const uint4& v) {
  float f[8];
  seqc_unpack2((seqc_bf16*)0, v.x, f[0], f[1]); seqc_unpack2((seqc_bf16*)0, v.y, f[2], f[3]);
  seqc_unpack2((seqc_bf16*)0, v.z, f[4], f[5]); seqc_unpack2((seqc_bf16*)0, v.w, f[6], f[7]);
  reinterpret_cast<float4*>(A)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(A)[1] = make_float4(f[4], f[5], f[6], f[7]);
}
template <typename TA, int NT, int VD> struct SeqcRcPre {
  static constexpr int EA = 16 / (int)sizeof(TA), NL = 1024 / NT, NA = 64 * 64 / EA / NT, NB = 8 * VD / NT, VQ = VD / 8;
  float4 l[NL];
  typename SeqcRcVec<TA>::type av[NA];
  uint4 bv[NB], cv[NB];
  // tokens [t0, t0 + n) of the walk, head h: stored token rows (seqc_rc_tok / _ldtok for rev) at ld / a + (b T + row) HK + rk,
  // b / c + (b T + row) HV + rv; rk = b T HK + h K + the block's first key, rv = b T HV + h V (VD values a row)
  __device__ __forceinline__ void load(const float* ld, const TA* a, const seqc_bf16* bq, const seqc_bf16* cq, size_t rk, size_t rv, size_t HK, size_t HV, u32 t0, u32 n, u32 T, u32 rev, u32 tid) {
#pragma unroll
    for (int r = 0; r < NL; ++r) {
      const u32 x = tid + r * NT, t = x >> 4, q = x & 15;
      const long long row = seqc_rc_ldtok(t0 + t, T, rev);
      if (t < n && row >= 0) l[r] = __ldg(reinterpret_cast<const float4*>(ld + rk + (size_t)row * HK + 4 * q));
      else seqc_rc_zero(l[r]);
    }
#pragma unroll
    for (int r = 0; r < NA; ++r) {
      const u32 x = tid + r * NT, t = x / (64 / EA), q = x % (64 / EA);
      if (t < n) av[r] = __ldg(reinterpret_cast<const typename SeqcRcVec<TA>::type*>(a + rk + (size_t)seqc_rc_tok(t0 + t, T, rev & 2u) * HK + EA * q));
      else seqc_rc_zero(av[r]);
    }
#pragma unroll
    for (int r = 0; r < NB; ++r) {
      const u32 x = tid + r * NT, t = x / VQ, q = x % VQ;
      if (t < n) {
        bv[r] = __ldg(reinterpret_cast<const uint4*>(bq + rv + (size_t)seqc_rc_tok(t0 + t, T, rev & 4u) * HV + 8 * q));
        cv[r] = __ldg(reinterpret_cast<const uint4*>(cq + rv + (size_t)seqc_rc_tok(t0 + t, T, rev & 8u) * HV + 8 * q));
      } else {
        seqc_rc_zero(bv[r]);
        seqc_rc_zero(cv[r]);
      }
    }
  }
  // to shared memory: ld raw into G [t][i] (summed there after), a as float32 into Af, b and c into their bf16 tiles (row stride PV)
  __device__ __forceinline__ void store(float* G, float* Af, seqc_bf16* bb, seqc_bf16* cb, int PF, int PV, u32 tid) const {
#pragma unroll
    for (int r = 0; r < NL; ++r) {
      const u32 x = tid + r * NT;
      *reinterpret_cast<float4*>(G + (x >> 4) * PF + 4 * (x & 15)) = l[r];
    }
#pragma unroll
    for (int r = 0; r < NA; ++r) {
      const u32 x = tid + r * NT;
      seqc_rc_sta(Af + (x / (64 / EA)) * PF + EA * (x % (64 / EA)), av[r]);
    }
#pragma unroll
    for (int r = 0; r < NB; ++r) {
      const u32 x = tid + r * NT;
      *reinterpret_cast<uint4*>(bb + (x / VQ) * PV + 8 * (x % VQ)) = bv[r];
      *reinterpret_cast<uint4*>(cb + (x / VQ) * PV + 8 * (x % VQ)) = cv[r];
    }
  }
};

template <typename TA, int NW, bool PIPE, bool TERMS, typename TO, int VD, bool SPLIT, bool SCAN = false>
__device__ __forceinline__ void seqc_rows_chunk_body(const float* __restrict__ ld, const TA* __restrict__ a, const seqc_bf16* __restrict__ bq,
                                                     const seqc_bf16* __restrict__ cq, const float* __restrict__ S0, TO* __restrict__ out,
                                                     u32 B, u32 T, u32 H, u32 K, u32 V, u32 init, u32 rev,
                                                     const float* __restrict__ dq, const seqc_bf16* __restrict__ kk, float* __restrict__ terms,
                                                     const float* __restrict__ carry0 = nullptr) {
  constexpr int C = ${C}, P = ${P}, PF = ${PF}, PD = ${PD}, NT = NW * 32, NS = NW / 4, WN = 8 / NS, PARTS = NT / 64 < 4 ? NT / 64 : 4, R = C / PARTS;
  // (16 warps) the decays' cumulative sum stays in 4 parts of 64 threads (the 8-warp entries' sums, bit for bit); each diagonal
  // column's rows are split over DS threads (rows t = dh, dh + DS, ..: each row's sum as with one thread)
  constexpr int DS = NT / 64 / PARTS;
  // VD: the value columns a block holds (64, or 128: the wide entries, each block one group of 64 key rows, blockIdx.y)
  constexpr int PV = VD + 8, WNV = VD / 8 / NS;
  typedef seqc_bf16 bf;
  SEQC_SMEM_DECL(raw);
  bf* cb = (bf*)raw;
  bf* bb = cb + C * PV;
  bf* Mh = bb + C * PV;
  bf* Ml = Mh + C * P;
  bf* Ah = Ml + C * P;
  bf* Al = Ah + C * P;
  bf* Uh = Al + C * P;
  bf* Ul = Uh + C * P;
  bf* Sh = Ul + C * P;
  bf* Sl = Sh + C * PV;
  float* G = (float*)(Sl + C * PV);  // g [t][i]
  float* Af = G + C * PF;           // a [t][i]
  float* Od = Af + C * PF;          // the diagonal sub-chunks' sums [t][i]
  float* Tot = Od + C * PF;         // the cumulative sum's part totals [part][i]
  float* Md = Tot + C * PF;         // M's diagonal blocks [t][s - 16 J]
  float* Dq = Md + C * PD;          // (TERMS, K = 64) the chunk's dq [t][i] at out's rows
  bf* Kk = (bf*)(Dq + C * PF);      // (TERMS, K = 64) the chunk's k [t][i]
  // (VD > 64 or SPLIT) the block's key group: blockIdx.y % ceil(K / 64); (SPLIT) its value group: blockIdx.y / ceil(K / 64)
  constexpr bool KG = VD > 64 || SPLIT;
  const u32 nkg = KG ? (K + 63u) >> 6 : 1u, kg = KG ? blockIdx.y % nkg : 0u, vg = SPLIT ? blockIdx.y / nkg : 0u;
  const u32 k0 = 64u * kg;  // the block's first key row (its keys [k0, k0 + Kb))
  const u32 Kb = KG ? (K - k0 < 64u ? K - k0 : 64u) : K;
  const u32 v0 = 64u * vg;  // (SPLIT) its first value column (its values [v0, v0 + Vb)); its outputs to slice vg of out
  const u32 Vb = SPLIT ? (V - v0 < 64u ? V - v0 : 64u) : V;
  const bool cpq = TERMS && (VD > 64 ? (K & 63u) == 0u : K == 64u);  // (every group 64 keys, rows 16-byte aligned)
  const u32 bh = blockIdx.x, b = bh / H, h = bh % H;
  const u32 tid = threadIdx.x, w = tid >> 5, l = tid & 31, gq = l >> 2, q2 = (l & 3) << 1;
  const u32 j = w & 3, n0 = (w >> 2) * 8 * WN;  // the warp's sub-chunk (rows 16 j ..) and first column
  const u32 n0v = (w >> 2) * 8 * WNV;           // the first of its state's value columns
  const size_t HK = (size_t)H * K, HV = (size_t)H * V;
  // the state's rows 16 j + gq (+ 8) (keys k0 + ..), columns n0v + 8 nt + q2 (+ 1)
  float S[WNV][4];
#pragma unroll
  for (int nt = 0; nt < WNV; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const u32 i = 16 * j + gq + (e >> 1) * 8, v = n0v + nt * 8 + q2 + (e & 1);
      S[nt][e] = (init && i < Kb && v < Vb) ? S0[(((size_t)b * H + h) * K + k0 + i) * V + v0 + v] : 0.f;
    }
  // (SCAN) the terms' running sum along the walk for column tid % 64 (thread (column, part): every part holds it), from carry0
  float carry = 0.f;
  if (SCAN && carry0 != nullptr && (tid & 63u) < Kb) carry = carry0[((size_t)b * H + h) * K + k0 + (tid & 63u)];
  SeqcRcPre<TA, NT, VD> pre;  // (PIPE) the next chunk's inputs, in flight while this one computes
  const size_t rk0 = (size_t)b * T * HK + (size_t)h * K + k0, rv0 = (size_t)b * T * HV + (size_t)h * V + v0;
  if (PIPE) pre.load(ld, a, bq, cq, rk0, rv0, HK, HV, 0u, T < (u32)C ? T : (u32)C, T, rev, tid);
  for (u32 t0 = 0; t0 < T; t0 += C) {
    const u32 n = T - t0 < (u32)C ? T - t0 : (u32)C;
    __syncthreads();
    // the state as hi / lo bf16 words for this chunk's inter product
#pragma unroll
    for (int nt = 0; nt < WNV; ++nt)
#pragma unroll
      for (int e = 0; e < 4; e += 2) {
        const u32 i = 16 * j + gq + (e >> 1) * 8, v = n0v + nt * 8 + q2;
        u32 hi, lo;
        seqc_rc_split2(S[nt][e], S[nt][e + 1], hi, lo);
        *reinterpret_cast<u32*>(Sh + i * PV + v) = hi;
        *reinterpret_cast<u32*>(Sl + i * PV + v) = lo;
      }
    if (cpq) {
      // (TERMS) this chunk's dq and k at out's rows, copied while the products run (waited for before the stores)
      for (u32 x = tid; x < (u32)(C * 16); x += NT) {
        const u32 t = x >> 4, q = x & 15;
        if (t < n) seqc_cp16(Dq + t * PF + 4 * q, dq + ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 16u)) * HK + (size_t)h * K + k0 + 4 * q);
      }
      for (u32 x = tid; x < (u32)(C * 8); x += NT) {
        const u32 t = x >> 3, q = x & 7;
        if (t < n) seqc_cp16(Kk + t * P + 8 * q, kk + ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 16u)) * HK + (size_t)h * K + k0 + 8 * q);
      }
      seqc_cp_commit();
    }
    if (PIPE) {
      // this chunk's inputs (loaded during the last) to shared memory, the next chunk's loads issued
      pre.store(G, Af, bb, cb, PF, PV, tid);
      if (t0 + C < T) pre.load(ld, a, bq, cq, rk0, rv0, HK, HV, t0 + C, T - t0 - C < (u32)C ? T - t0 - C : (u32)C, T, rev, tid);
      __syncthreads();
      // g's first pass in place: column i = tid % 64, tokens [part R, part R + R) summed from the part's start
      const u32 i = tid & 63, part = tid >> 6;
      if (DS == 1 || part < (u32)PARTS) {
        float acc = 0.f;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const u32 t = part * R + r;
          acc += G[t * PF + i];
          G[t * PF + i] = acc;
        }
        Tot[part * PF + i] = acc;
      }
    }
    // g's first pass: column i = tid % 64, tokens [part R, part R + R) summed from the part's start
    if (!PIPE && (DS == 1 || (tid >> 6) < (u32)PARTS)) {
      const u32 i = tid & 63, part = tid >> 6;
      float acc = 0.f;
#pragma unroll 8
      for (int r = 0; r < R; ++r) {
        const u32 t = part * R + r;
        const long long row = seqc_rc_ldtok(t0 + t, T, rev);
        acc += (t < n && i < Kb && row >= 0) ? ld[((size_t)b * T + (size_t)row) * HK + (size_t)h * K + k0 + i] : 0.f;
        G[t * PF + i] = acc;
      }
      Tot[part * PF + i] = acc;
    }
    // a as float32, b and c as their bf16 words ([t][i], [t][v]; zero past n, K, V)
    for (u32 x = tid; !PIPE && x < (u32)(C * 64); x += NT) {
      const u32 t = x >> 6, i = x & 63;
      Af[t * PF + i] = (t < n && i < Kb) ? seqc_rc_in(a[((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 2u)) * HK + (size_t)h * K + k0 + i]) : 0.f;
      if (VD > 64) continue;
      const bool ok = t < n && i < Vb;
      const size_t ob = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 4u)) * HV + (size_t)h * V + v0 + i;
      const size_t oc = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 8u)) * HV + (size_t)h * V + v0 + i;
      bb[t * P + i] = ok ? bq[ob] : bf{0};
      cb[t * P + i] = ok ? cq[oc] : bf{0};
    }
    // (VD > 64) b and c, VD columns a row
    for (u32 x = tid; VD > 64 && !PIPE && x < (u32)(C * VD); x += NT) {
      const u32 t = x / VD, v = x % VD;
      const bool ok = t < n && v < V;
      const size_t ob = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 4u)) * HV + (size_t)h * V + v;
      const size_t oc = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 8u)) * HV + (size_t)h * V + v;
      bb[t * PV + v] = ok ? bq[ob] : bf{0};
      cb[t * PV + v] = ok ? cq[oc] : bf{0};
    }
    __syncthreads();
    // g's second pass: the earlier parts' totals added
    if (PARTS > 1) {
      const u32 i = tid & 63, part = tid >> 6;
      if (DS == 1 || part < (u32)PARTS) {
        float off = 0.f;
        for (u32 p = 0; p < part; ++p) off += Tot[p * PF + i];
        if (part > 0)
          for (int r = 0; r < R; ++r) G[(part * R + r) * PF + i] += off;
      }
      __syncthreads();
    }
    // M's blocks (J, L <= J): warp (j, half) takes L = half, half + NS, ...; below the diagonal as hi / lo words, the
    // diagonal block in float32
    for (u32 L = w >> 2; L <= j; L += NS) {
      float m[2][4];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) m[nt][e] = 0.f;
      SeqcMM<bf>::template run<false, true, 2, VD>(m, cb, PV, bb, PV, 16 * j, 16 * L);
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {
          const u32 t = 16 * j + gq + (e >> 1) * 8, s = 16 * L + nt * 8 + q2;
          if (L < j) {
            u32 hi, lo;
            seqc_rc_split2(m[nt][e], m[nt][e + 1], hi, lo);
            *reinterpret_cast<u32*>(Mh + t * P + s) = hi;
            *reinterpret_cast<u32*>(Ml + t * P + s) = lo;
          } else {
            Md[t * PD + s - 16 * j] = m[nt][e];
            Md[t * PD + s - 16 * j + 1] = m[nt][e + 1];
          }
        }
    }
    // the decayed a: to the chunk's end (U, for the state) and to its sub-chunk's end (A, for the later sub-chunks)
    for (u32 x = tid; x < (u32)(C * 32); x += NT) {
      const u32 s = x >> 5, i = (x & 31) * 2, L = s >> 4;
      const float a0 = Af[s * PF + i], a1 = Af[s * PF + i + 1], g0 = G[s * PF + i], g1 = G[s * PF + i + 1];
      u32 hi, lo;
      seqc_rc_split2(a0 * expf(G[(C - 1) * PF + i] - g0), a1 * expf(G[(C - 1) * PF + i + 1] - g1), hi, lo);
      *reinterpret_cast<u32*>(Uh + s * P + i) = hi;
      *reinterpret_cast<u32*>(Ul + s * P + i) = lo;
      if (L < 3) {
        const u32 e = (16 * L + 15) * PF + i;
        seqc_rc_split2(a0 * expf(G[e] - g0), a1 * expf(G[e + 1] - g1), hi, lo);
        *reinterpret_cast<u32*>(Ah + s * P + i) = hi;
        *reinterpret_cast<u32*>(Al + s * P + i) = lo;
      }
    }
    __syncthreads();
    // the diagonal sub-chunks in float32: thread (column i, sub-chunks J = part, part + PARTS, ...)
    const u32 dh = DS > 1 ? (tid >> 6) / PARTS : 0u;  // (16 warps) the thread's rows of its column: t = dh, dh + DS, ..
    for (u32 J = DS > 1 ? (tid >> 6) % PARTS : tid >> 6; J < 4; J += PARTS) {
      const u32 i = tid & 63, s0 = 16 * J;
      const float r = s0 ? G[(s0 - 1) * PF + i] : 0.f;
      if (G[(s0 + 15) * PF + i] - r >= ${RC_QUOTIENT_FLOOR}.f) {
        // quotient form: exp(g_t - r) sum_s M[t, s] (a_s exp(r - g_s))
        float as[16];
#pragma unroll
        for (int s = 0; s < 16; ++s) as[s] = Af[(s0 + s) * PF + i] * expf(r - G[(s0 + s) * PF + i]);
#pragma unroll
        for (int t = 0; t < 16; ++t) {
          if (DS > 1 && (u32)(t % DS) != dh) continue;
          float acc = 0.f;
#pragma unroll
          for (int s = 0; s <= t; ++s) acc = fmaf(Md[(s0 + t) * PD + s], as[s], acc);
          Od[(s0 + t) * PF + i] = acc * expf(G[(s0 + t) * PF + i] - r);
        }
      } else {
        // each pair's exp(g_t - g_s) <= 1
        for (int t = dh; t < 16; t += DS) {
          const float gt = G[(s0 + t) * PF + i];
          float acc = 0.f;
          for (int s = 0; s <= t; ++s) acc = fmaf(Md[(s0 + t) * PD + s], Af[(s0 + s) * PF + i] * expf(gt - G[(s0 + s) * PF + i]), acc);
          Od[(s0 + t) * PF + i] = acc;
        }
      }
    }
    // the warp's outputs: rows 16 j .., columns n0 ..
    float o[WN][4], tm[WN][4];
#pragma unroll
    for (int nt = 0; nt < WN; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) tm[nt][e] = 0.f;
    SeqcMM<bf>::template run<false, true, WN, VD>(tm, cb, PV, Sh, PV, 16 * j, n0);
    SeqcMM<bf>::template run<false, true, WN, VD>(tm, cb, PV, Sl, PV, 16 * j, n0);
#pragma unroll
    for (int nt = 0; nt < WN; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const u32 t = 16 * j + gq + (e >> 1) * 8, i = n0 + nt * 8 + q2 + (e & 1);
        o[nt][e] = tm[nt][e] * expf(G[t * PF + i]);
      }
    for (u32 L = 0; L < j; ++L) {
#pragma unroll
      for (int nt = 0; nt < WN; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) tm[nt][e] = 0.f;
      SeqcMM<bf>::template run<false, false, WN, 16>(tm, Mh + 16 * L, P, Ah + 16 * L * P, P, 16 * j, n0);
      SeqcMM<bf>::template run<false, false, WN, 16>(tm, Mh + 16 * L, P, Al + 16 * L * P, P, 16 * j, n0);
      SeqcMM<bf>::template run<false, false, WN, 16>(tm, Ml + 16 * L, P, Ah + 16 * L * P, P, 16 * j, n0);
#pragma unroll
      for (int nt = 0; nt < WN; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const u32 t = 16 * j + gq + (e >> 1) * 8, i = n0 + nt * 8 + q2 + (e & 1);
          o[nt][e] = fmaf(tm[nt][e], expf(G[t * PF + i] - G[(16 * L + 15) * PF + i]), o[nt][e]);
        }
    }
    // the state to the chunk's end: S' = exp(g_end) S + U^T b (rows 16 j .. of S are the warp's)
#pragma unroll
    for (int nt = 0; nt < WNV; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[nt][e] *= expf(G[(C - 1) * PF + 16 * j + gq + (e >> 1) * 8]);
    SeqcMM<bf>::template run<true, false, WNV, 64>(S, Uh, P, bb, PV, 16 * j, n0v);
    SeqcMM<bf>::template run<true, false, WNV, 64>(S, Ul, P, bb, PV, 16 * j, n0v);
    if (cpq) seqc_cp_wait<0>();
    __syncthreads();
    // the diagonal sums added, the outputs stored (t < n, i < Kb)
#pragma unroll
    for (int nt = 0; nt < WN; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const u32 t = 16 * j + gq + (e >> 1) * 8, i = n0 + nt * 8 + q2 + (e & 1);
        if (t < n && i < Kb) {
          const size_t r = ((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 16u)) * HK + (size_t)h * K + k0 + i;
          const float v = o[nt][e] + Od[t * PF + i];
          out[r + (SPLIT ? (size_t)vg * B * T * HK : (size_t)0)] = seqc_cvt<TO>(v);
          if (TERMS) {
            const float tv = seqc_rc_term(Af[t * PF + i], cpq ? Dq[t * PF + i] : dq[r], seqc_f32(cpq ? Kk[t * P + i] : kk[r]), v);
            if (SCAN) Od[t * PF + i] = tv;  // (its own element: read above by this thread only)
            else terms[r] = tv;
          }
        }
      }
    if (SCAN) {
      // the terms' running sum along the walk: thread (column i, part) sums its R rows in place, then adds the carry and the
      // earlier parts' totals (in order) and stores; the carry becomes the chunk's last running sum
      __syncthreads();
      const u32 i = tid & 63, part = tid >> 6;
      if (DS == 1 || part < (u32)PARTS) {
        float acc = 0.f;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const u32 t = part * R + r;
          acc += t < n ? Od[t * PF + i] : 0.f;
          Od[t * PF + i] = acc;
        }
        Tot[(PARTS + part) * PF + i] = acc;
      }
      __syncthreads();
      if (DS == 1 || part < (u32)PARTS) {
        float off = carry, run = carry;
#pragma unroll
        for (int p = 0; p < PARTS; ++p) {
          if ((u32)p == part) off = run;
          run += Tot[(PARTS + p) * PF + i];
        }
        carry = run;
        if (i < Kb)
#pragma unroll 4
          for (int r = 0; r < R; ++r) {
            const u32 t = part * R + r;
            if (t < n) terms[((size_t)b * T + seqc_rc_tok(t0 + t, T, rev & 16u)) * HK + (size_t)h * K + k0 + i] = off + Od[t * PF + i];
          }
      }
    }
  }
}
`;

function entrySource(c: RowsChunkConfig): string {
  const ta = c.lowA ? "seqc_bf16" : "float", to = c.terms ? "seqc_bf16" : "float";
  const extra = c.terms ? `, const float* __restrict__ dq, const seqc_bf16* __restrict__ kk, float* __restrict__ terms${c.scan ? ", const float* __restrict__ carry0" : ""}` : "";
  return `
extern "C" __global__ void __launch_bounds__(${c.warps * 32}) ${rowsChunkEntry(c)}(const float* __restrict__ ld, const ${ta}* __restrict__ a0, const seqc_bf16* __restrict__ b0, const seqc_bf16* __restrict__ c0, const float* __restrict__ S0, ${to}* __restrict__ o0, u32 B, u32 T, u32 H, u32 K, u32 V, u32 init, u32 rev${extra}) {
  seqc_rows_chunk_body<${ta}, ${c.warps}, ${c.pipe ? "true" : "false"}, ${c.terms ? "true" : "false"}, ${to}, ${c.wide ? 128 : 64}, ${c.split ? "true" : "false"}${c.scan ? ", true" : ""}>(ld, a0, b0, c0, S0, o0, B, T, H, K, V, init, rev, ${c.terms ? "dq, kk, terms" : "nullptr, nullptr, nullptr"}${c.scan ? ", carry0" : ""});
}
`;
}

/** The module: the chunked core's helpers (mma fragments, SeqcMM), the body and one entry per configuration. */
export function rowsChunkModule(configs: readonly RowsChunkConfig[] = ROWS_CHUNK_CONFIGS, patch?: (src: string) => string): { source: string; kernels: RowsChunkKernel[] } {
  for (const c of configs) {
    if ((c.wide || c.split) && c.warps === 4) throw new Error("rowsChunkModule: the wide and split entries take 8 or 16 warps");
    if (c.split && (c.wide || c.terms)) throw new Error("rowsChunkModule: a split entry is neither wide nor a terms entry");
    if (c.scan && (!c.terms || c.warps !== 8)) throw new Error("rowsChunkModule: a scan entry is an 8-warp terms entry");
  }
  const kernels = configs.map((c) => ({
    ...c, entry: rowsChunkEntry(c), threads: c.warps * 32, sharedBytes: rowsChunkShared(!!c.terms, !!c.wide), chunk: C,
    maxK: c.wide || c.split ? 128 : 64, maxV: c.wide || c.split ? 128 : 64, rev: true as const, ...(c.wide || c.split ? { keyGroup: 64 as const } : {}),
    ...(c.split ? { valueGroup: 64 as const } : {}),
  }));
  const source = CHUNK_CORE_SOURCE + BODY + configs.map(entrySource).join("");
  if (patch) {
    const p = patch(source);
    if (p === source) throw new Error("rowsChunkModule: the patch changed nothing");
    return { source: p, kernels };
  }
  return { source, kernels };
}
