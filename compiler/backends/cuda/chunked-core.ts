/**
 * The chunked form's CUDA core, written once for every model of the matrix canonical form
 * (compiler/forms/matrix-form.ts, rows from compiler/forms/chunk-rows.ts). Templates over a config
 * struct (operand type, padded key size KP, value tile BV, row slots per token RTP, decay kind,
 * low-rank rows, shared-memory offsets) and a per-model row loader (chunked-model.ts generates it from
 * the prep/post IR). No includes: nvcc and NVRTC both take it as is.
 *
 * Per chunk of F = 64 row slots (C = F / RTP tokens), in shared memory:
 *   A  = w_f . D x_f'  (reads, strictly before f's micro-step)     Aq = q_t . D x_f'  (readout slots)
 *   T  = (I - diag(beta) A)^-1 (16x16 blocks, fp32)                (rows with low-rank reads only)
 *   Z  = T (alpha V + diag(beta) W~ S0)     y = Q~ S0 + Aq Z     S' = exp(G_n) S0 + X~^T Z
 * Decays: scalar -> log space from the chunk start, exp(G_a - G_b) per pair (a >= b, <= 1);
 * per key -> products of d = exp(ld): 16-row sub-blocks I, for J < I the boundary split
 * exp(G_a - G_ref) exp(G_ref - G_b) (both <= 1), inside the diagonal block the quotient
 * P_a / P_b of block-local prefix products when every column's block product is >= 1e-30, else
 * pairwise products (exact for any decay, slower). Nothing is ever divided by an underflowed product.
 * Matrix products: mma.sync m16n8k16 (bf16 or f16 operands, fp32 accumulation) from ldmatrix'd shared
 * tiles; fp32 operands use a SIMT path with the same fragment layout.
 * Kernels: fused (one block per batch x head x value tile walks all chunks; the state stays in registers),
 * and split (phase A: every chunk in parallel writes Q~, X~, Aq, M = T diag(beta) W~, U0 = T alpha V,
 * exp(G_n); the walk then only does Z = U0 + M S0, y, S' per chunk, parallel over batch x head x value tiles),
 * and split3 (phase A as in split; a state-only walk that per chunk stores its start state S0 (and, low rank,
 * Z over U0 in the record) and does Z = U0 + M S0, S' = exp(G_n) S0 + X~^T Z, reading only X~, M, its U0 tile;
 * then the readout y = Q~ S0 + Aq Z over every chunk in parallel), and splitd (scalar or no decay: split whose record
 * holds per-row factors instead of Q~ and X~, and no alpha v without low rank; its walk reads those rows from the inputs).
 * Phase A options (config flags, 2-byte operands): INV = 1 inverts by one warp per 16x16 block product
 * (seqc_chunk_inverse_w), MATS = 1 forms a per-key decay's A and Aq block pairs as warp tasks (SeqcKeyTiles).
 */
import { GSCALAR_TOKEN_PREFIX } from "./chunked-gscalar-prefix.ts";
import { SEQC_CP_ASYNC, SEQC_LDSM4 } from "./ptx-copy-wrappers.ts";
import { inverseFirstRound, inverseSecondRound } from "./chunked-inverse-rounds.ts";
import { inputIssueHead, phaseAHead, recordCopyAq, walkHead, walkPipe, walkReadout, walkStage, walkTail } from "./chunked-walk-parts.ts";

export const CHUNK_CORE_SOURCE = String.raw`
// ==== seqc chunked core (model-independent) ====
typedef unsigned int u32;
#ifndef SEQC_EMU
struct seqc_bf16 { unsigned short x; };
struct seqc_f16 { unsigned short x; };
#define SEQC_SMEM_DECL(name) extern __shared__ __align__(16) char name[]
#endif

__device__ __forceinline__ float seqc_f32(float v) { return v; }
__device__ __forceinline__ float seqc_f32(seqc_bf16 v) { return __uint_as_float(((u32)v.x) << 16); }
template <typename T> __device__ __forceinline__ T seqc_cvt(float v);
template <> __device__ __forceinline__ float seqc_cvt<float>(float v) { return v; }

// PTX conversions, tensor-core fragments and async copies (a CPU emulation provides its own: SEQC_EMU)
#ifndef SEQC_EMU
__device__ __forceinline__ float seqc_f32(seqc_f16 v) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.x)); return f; }
template <> __device__ __forceinline__ seqc_bf16 seqc_cvt<seqc_bf16>(float v) { seqc_bf16 r; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.x) : "f"(v)); return r; }
template <> __device__ __forceinline__ seqc_f16 seqc_cvt<seqc_f16>(float v) { seqc_f16 r; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.x) : "f"(v)); return r; }
__device__ __forceinline__ void seqc_unpack2(seqc_f16*, u32 w, float& lo, float& hi) {
  asm("{ .reg .f16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h; }" : "=f"(lo), "=f"(hi) : "r"(w));
}
__device__ __forceinline__ u32 seqc_pack2(seqc_bf16*, float lo, float hi) { u32 r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }
__device__ __forceinline__ u32 seqc_pack2(seqc_f16*, float lo, float hi) { u32 r; asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }
// ---- tensor-core fragments (mma.sync m16n8k16, fp32 accumulators) ----
__device__ __forceinline__ void seqc_mma(seqc_bf16*, float* c, const u32* a, const u32* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void seqc_mma(seqc_f16*, float* c, const u32* a, const u32* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
${SEQC_LDSM4}
__device__ __forceinline__ void seqc_ldsm4t(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((u32)__cvta_generic_to_shared(p)) : "memory");
}

${SEQC_CP_ASYNC}
__device__ __forceinline__ void seqc_prefetch_l2(const void* g) { asm volatile("prefetch.global.L2 [%0];\n" :: "l"(g)); }

#endif

template <typename T> struct SeqcIn {
  const T* __restrict__ p;
  __device__ __forceinline__ float operator[](size_t i) const { return seqc_f32(p[i]); }
};
template <typename T> __device__ __forceinline__ void seqc_st(T* p, size_t i, float v) { p[i] = seqc_cvt<T>(v); }

// 8 consecutive values from global memory (p 16-byte aligned for 2-byte types, 32 for float)
__device__ __forceinline__ void seqc_gld8(const float* p, float* o) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p)), b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
}
__device__ __forceinline__ void seqc_unpack2(seqc_bf16*, u32 w, float& lo, float& hi) { lo = __uint_as_float(w << 16); hi = __uint_as_float(w & 0xffff0000u); }
template <typename T> __device__ __forceinline__ void seqc_gld8(const T* p, float* o) {
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  seqc_unpack2((T*)0, v.x, o[0], o[1]); seqc_unpack2((T*)0, v.y, o[2], o[3]);
  seqc_unpack2((T*)0, v.z, o[4], o[5]); seqc_unpack2((T*)0, v.w, o[6], o[7]);
}
// 8 values to / from shared memory (16-byte aligned)
__device__ __forceinline__ void seqc_sst8(float* s, const float* o) {
  reinterpret_cast<float4*>(s)[0] = make_float4(o[0], o[1], o[2], o[3]);
  reinterpret_cast<float4*>(s)[1] = make_float4(o[4], o[5], o[6], o[7]);
}
template <typename T> __device__ __forceinline__ void seqc_sst8(T* s, const float* o) {
  *reinterpret_cast<uint4*>(s) = make_uint4(seqc_pack2((T*)0, o[0], o[1]), seqc_pack2((T*)0, o[2], o[3]), seqc_pack2((T*)0, o[4], o[5]), seqc_pack2((T*)0, o[6], o[7]));
}
__device__ __forceinline__ void seqc_sld8(const float* s, float* o) {
  const float4 a = reinterpret_cast<const float4*>(s)[0], b = reinterpret_cast<const float4*>(s)[1];
  o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
}
template <typename T> __device__ __forceinline__ void seqc_sld8(const T* s, float* o) {
  const uint4 v = *reinterpret_cast<const uint4*>(s);
  seqc_unpack2((T*)0, v.x, o[0], o[1]); seqc_unpack2((T*)0, v.y, o[2], o[3]);
  seqc_unpack2((T*)0, v.z, o[4], o[5]); seqc_unpack2((T*)0, v.w, o[6], o[7]);
}
// two adjacent values to shared memory
__device__ __forceinline__ void seqc_sst2(float* s, float a, float b) { *reinterpret_cast<float2*>(s) = make_float2(a, b); }
template <typename T> __device__ __forceinline__ void seqc_sst2(T* s, float a, float b) { *reinterpret_cast<u32*>(s) = seqc_pack2((T*)0, a, b); }

// Warp tile: acc[WN][4] (16 rows x 8*WN columns at (m0, n0), mma C-fragment layout) += A(m, k) B(k, n), k < KD.
// A stored [m][k] (AKM false) or [k][m]; B stored [k][n] (BNK false) or [n][k]. Strides in elements.
template <typename T> struct SeqcMM {
  template <bool AKM, bool BNK, int WN, int KD>
  static __device__ __forceinline__ void run(float (&acc)[WN][4], const T* A, int lda, const T* B, int ldb, int m0, int n0) {
    const int l = threadIdx.x & 31;
#pragma unroll
    for (int k0 = 0; k0 < KD; k0 += 16) {
      u32 a[4];
      if (!AKM) seqc_ldsm4(a, A + (m0 + (l & 15)) * lda + k0 + ((l >> 4) << 3));
      else seqc_ldsm4t(a, A + (k0 + (l & 7) + ((l >> 4) << 3)) * lda + m0 + (((l >> 3) & 1) << 3));
#pragma unroll
      for (int p = 0; p < WN / 2; ++p) {
        u32 b[4];
        const int nb = n0 + p * 16;
        if (BNK) seqc_ldsm4(b, B + (nb + (l & 7) + ((l >> 4) << 3)) * ldb + k0 + (((l >> 3) & 1) << 3));
        else seqc_ldsm4t(b, B + (k0 + (l & 7) + (((l >> 3) & 1) << 3)) * ldb + nb + ((l >> 4) << 3));
        seqc_mma((T*)0, acc[2 * p], a, b);
        seqc_mma((T*)0, acc[2 * p + 1], a, b + 2);
      }
      if (WN == 1) {
        // one 8-column tile: lanes 16-31 address the same two 8x8 matrices again (b[2], b[3] unused)
        u32 b[4];
        if (BNK) seqc_ldsm4(b, B + (n0 + (l & 7)) * ldb + k0 + (((l >> 3) & 1) << 3));
        else seqc_ldsm4t(b, B + (k0 + (l & 7) + (((l >> 3) & 1) << 3)) * ldb + n0);
        seqc_mma((T*)0, acc[0], a, b);
      }
    }
  }
};
template <> struct SeqcMM<float> {
  template <bool AKM, bool BNK, int WN, int KD>
  static __device__ __forceinline__ void run(float (&acc)[WN][4], const float* A, int lda, const float* B, int ldb, int m0, int n0) {
    const int l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
#pragma unroll 4
    for (int k = 0; k < KD; ++k) {
      const float a0 = AKM ? A[k * lda + m0 + g] : A[(m0 + g) * lda + k];
      const float a1 = AKM ? A[k * lda + m0 + g + 8] : A[(m0 + g + 8) * lda + k];
#pragma unroll
      for (int nt = 0; nt < WN; ++nt) {
        const int n = n0 + nt * 8 + q;
        const float b0 = BNK ? B[n * ldb + k] : B[k * ldb + n];
        const float b1 = BNK ? B[(n + 1) * ldb + k] : B[k * ldb + n + 1];
        acc[nt][0] = fmaf(a0, b0, acc[nt][0]);
        acc[nt][1] = fmaf(a0, b1, acc[nt][1]);
        acc[nt][2] = fmaf(a1, b0, acc[nt][2]);
        acc[nt][3] = fmaf(a1, b1, acc[nt][3]);
      }
    }
  }
};

// fragment columns per warp tile for a value tile of BV columns: 32, 16 or 8 (a walk over 8 values)
template <int BV> struct SeqcWN { static constexpr int N = BV % 32 == 0 ? 4 : BV % 16 == 0 ? 2 : 1; };

// Block product C[M][N] = A B over the block's warps; epi(row, col, v(col), v(col + 1)) per fragment pair.
template <typename T, bool AKM, bool BNK, int WN, int KD, class Epi>
__device__ __forceinline__ void seqc_bmm(int M, int N, const T* A, int lda, const T* B, int ldb, Epi epi) {
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
  const int tn = N / (8 * WN), tiles = (M >> 4) * tn;
  const int g = l >> 2, q = (l & 3) << 1;
  for (int tile = w; tile < tiles; tile += nw) {
    const int m0 = (tile / tn) << 4, n0 = (tile % tn) * 8 * WN;
    float acc[WN][4];
#pragma unroll
    for (int i = 0; i < WN; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    SeqcMM<T>::template run<AKM, BNK, WN, KD>(acc, A, lda, B, ldb, m0, n0);
#pragma unroll
    for (int nt = 0; nt < WN; ++nt) {
      epi(m0 + g, n0 + nt * 8 + q, acc[nt][0], acc[nt][1]);
      epi(m0 + g + 8, n0 + nt * 8 + q, acc[nt][2], acc[nt][3]);
    }
  }
}

#define SEQC_SLOW_DECAY 1e-30f
// the diagonal quotient X / P must fit the operand type: f16 holds at most 65504
template <typename T> __device__ __forceinline__ float seqc_slow_decay() { return SEQC_SLOW_DECAY; }
template <> __device__ __forceinline__ float seqc_slow_decay<seqc_f16>() { return 1e-3f; }

// ---- shared memory of one chunk (offsets from the generated config) ----
template <class Cfg> struct SeqcSm {
  typedef typename Cfg::T T;
  T *X, *W, *Q, *V, *L, *XI, *XS, *R, *TB, *AQB, *SB, *Z, *ZX;
  float *D, *A, *TT, *Y, *P, *BT, *G;
  int* I;
  __device__ SeqcSm(char* s) {
    X = (T*)(s + Cfg::O_X); W = (T*)(s + Cfg::O_W); Q = (T*)(s + Cfg::O_Q); V = (T*)(s + Cfg::O_V);
    L = (T*)(s + Cfg::O_L); XI = (T*)(s + Cfg::O_XI); XS = (T*)(s + Cfg::O_XS); R = (T*)(s + Cfg::O_R);
    TB = (T*)(s + Cfg::O_TB); AQB = (T*)(s + Cfg::O_AQB); SB = (T*)(s + Cfg::O_SB); Z = (T*)(s + Cfg::O_Z); ZX = (T*)(s + Cfg::O_ZX);
    D = (float*)(s + Cfg::O_D); A = (float*)(s + Cfg::O_A); TT = (float*)(s + Cfg::O_TT);
    Y = (float*)(s + Cfg::O_Y); P = (float*)(s + Cfg::O_P); BT = (float*)(s + Cfg::O_BT); G = (float*)(s + Cfg::O_G);
    I = (int*)(s + Cfg::O_I);
  }
};
// small per-chunk arrays inside G (floats): beta, Gr, Gw, Gq (F each), pre, own (F), tot, qpre (C), Gend (C + 1), eGn (KP), misc
#define SEQC_G_BETA 0
#define SEQC_G_GR (Cfg::F)
#define SEQC_G_GW (2 * Cfg::F)
#define SEQC_G_GQ (3 * Cfg::F)
#define SEQC_G_PRE (4 * Cfg::F)
#define SEQC_G_OWN (5 * Cfg::F)
#define SEQC_G_TOT (6 * Cfg::F)
#define SEQC_G_QPRE (7 * Cfg::F)
#define SEQC_G_GEND (8 * Cfg::F)
#define SEQC_G_EGN (9 * Cfg::F + 8)
#define SEQC_G_SX (9 * Cfg::F + 8 + Cfg::KP)
#define SEQC_G_SW (SEQC_G_SX + Cfg::F)
#define SEQC_G_SQ (SEQC_G_SX + 2 * Cfg::F)
#define SEQC_G_SV (SEQC_G_SX + 3 * Cfg::F)
#define SEQC_G_SLD (SEQC_G_SX + 4 * Cfg::F)
// ints inside I: micro-step of row slot r (RTP), readout point, slow-block flags (NB)
#define SEQC_I_MICRO 0
#define SEQC_I_READ (Cfg::RTP)
#define SEQC_I_SLOW (Cfg::RTP + 1)

template <class Cfg> __device__ __forceinline__ bool seqc_real(const int* I, int f, u32 t0, u32 T) {
  return I[SEQC_I_MICRO + f % Cfg::RTP] >= 0 && t0 + (u32)(f / Cfg::RTP) < T;
}
// row n is seen by the read of row m (strictly earlier micro-step)
template <class Cfg> __device__ __forceinline__ bool seqc_sees_row(const int* I, int m, int n, u32 t0, u32 T) {
  if (!seqc_real<Cfg>(I, m, t0, T) || !seqc_real<Cfg>(I, n, t0, T)) return false;
  const int tm = m / Cfg::RTP, tn = n / Cfg::RTP;
  return tn < tm || (tn == tm && I[SEQC_I_MICRO + n % Cfg::RTP] < I[SEQC_I_MICRO + m % Cfg::RTP]);
}
// row n is seen by the readout in slot m (slot rows: m % RTP == 0)
template <class Cfg> __device__ __forceinline__ bool seqc_sees_readout(const int* I, int m, int n, u32 t0, u32 T) {
  if (m % Cfg::RTP != 0 || t0 + (u32)(m / Cfg::RTP) >= T || !seqc_real<Cfg>(I, n, t0, T)) return false;
  const int tm = m / Cfg::RTP, tn = n / Cfg::RTP;
  return tn < tm || (tn == tm && I[SEQC_I_MICRO + n % Cfg::RTP] < I[SEQC_I_READ]);
}

// ---- 1. loads: rows (x, w, q, alpha*v for value columns [j0, j0 + NV)), beta, decays ----
// A row that is a plain read of an input (times a per-row scalar) is copied with cp.async straight into its
// operand tile (all copies in flight at once) and scaled afterwards; other rows go through the generated loader.
#define SEQC_NO_SCALE 3.0e38f
template <class Cfg, int NV, int LDV, class R>
__device__ __forceinline__ void seqc_chunk_issue_v(const R& rows, const SeqcSm<Cfg>& s, u32 b, u32 h, u32 t0, u32 T, u32 j0) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, RTP = Cfg::RTP, E = 16 / (int)sizeof(T_);
  const int tid = threadIdx.x, nt = blockDim.x;
  const u32 V = rows.valueDim();
  const bool vvec = (V % 8u) == 0u;
  float* G = s.G;
  for (int e = tid; e < F * (NV / 8); e += nt) {
    const int f = e / (NV / 8), jj = (e % (NV / 8)) * 8, tl = f / RTP, r = f % RTP;
    const bool real = seqc_real<Cfg>(s.I, f, t0, T);
    const T_* src = real && vvec ? rows.srcV(b, t0 + tl, r, h) : nullptr;
    if (src && j0 + jj + 8u <= V) for (int c = 0; c < 8; c += E) seqc_cp16(s.V + f * LDV + jj + c, src + j0 + jj + c);
    else {
      float o[8];
      if (real && !src) rows.loadV(b, t0 + tl, r, h, j0 + jj, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
      seqc_sst8(s.V + f * LDV + jj, o);
    }
    if (jj == 0) G[SEQC_G_SV + f] = src ? rows.scaleV(b, t0 + tl, r, h) : 1.f;
  }
}
template <class Cfg, int NV, int LDV> __device__ __forceinline__ void seqc_chunk_scale_v(const SeqcSm<Cfg>& s) {
  constexpr int F = Cfg::F;
  const int tid = threadIdx.x, nt = blockDim.x;
  const float* G = s.G;
  for (int e = tid; e < F * (NV / 8); e += nt) {
    const int f = e / (NV / 8), jj = (e % (NV / 8)) * 8;
    const float sv = G[SEQC_G_SV + f];
    if (sv != 1.f) {
      float o[8];
      seqc_sld8(s.V + f * LDV + jj, o);
      for (int k = 0; k < 8; ++k) o[k] *= sv;
      seqc_sst8(s.V + f * LDV + jj, o);
    }
  }
}
template <class Cfg, int NV, int LDV, class R>
__device__ void seqc_chunk_load(const R& rows, const SeqcSm<Cfg>& s, u32 b, u32 h, u32 t0, u32 T, u32 j0) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, LDK = Cfg::LDK, E = 16 / (int)sizeof(T_);
  const int tid = threadIdx.x, nt = blockDim.x;
  const u32 K = rows.keyDim(), V = rows.valueDim();
  float* G = s.G;
  const bool kvec = (K % 8u) == 0u, vvec = (V % 8u) == 0u;
  for (int e = tid; e < F * (KP / 8); e += nt) {
    const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, tl = f / RTP, r = f % RTP;
    const u32 t = t0 + tl;
    const bool real = seqc_real<Cfg>(s.I, f, t0, T), inK = kvec && (u32)i0 + 8u <= K;
    float o[8];
    {
      const T_* src = real && kvec ? rows.srcX(b, t, r, h) : nullptr;
      if (src && inK) for (int c = 0; c < 8; c += E) seqc_cp16(s.X + f * LDK + i0 + c, src + i0 + c);
      else {
        if (real && !src) rows.loadX(b, t, r, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(s.X + f * LDK + i0, o);
      }
      if (i0 == 0) G[SEQC_G_SX + f] = src ? rows.scaleX(b, t, r, h) : 1.f;
    }
    if (Cfg::LR) {
      const T_* src = real && kvec ? rows.srcW(b, t, r, h) : nullptr;
      if (src && inK) for (int c = 0; c < 8; c += E) seqc_cp16(s.W + f * LDK + i0 + c, src + i0 + c);
      else {
        if (real && !src) rows.loadW(b, t, r, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(s.W + f * LDK + i0, o);
      }
      if (i0 == 0) G[SEQC_G_SW + f] = src ? rows.scaleW(b, t, r, h) : 1.f;
    }
    {
      const bool qreal = r == 0 && t < T;
      const T_* src = qreal && kvec ? rows.srcQ(b, t, h) : nullptr;
      if (src && inK) for (int c = 0; c < 8; c += E) seqc_cp16(s.Q + f * LDK + i0 + c, src + i0 + c);
      else {
        if (qreal && !src) rows.loadQ(b, t, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(s.Q + f * LDK + i0, o);
      }
      if (i0 == 0) G[SEQC_G_SQ + f] = src ? rows.scaleQ(b, t, h) : 1.f;
    }
    if (Cfg::DECAY == 2 && r == 0) {
      // per-key log decays: copied raw into R (free during loads) and exponentiated below, or exp(ld) directly
      const T_* src = t < T && kvec ? rows.srcLd(b, t, h) : nullptr;
      if (src && inK) for (int c = 0; c < 8; c += E) seqc_cp16(s.R + tl * LDK + i0 + c, src + i0 + c);
      else {
        if (t < T && !src) rows.decayKey(b, t, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        for (int k = 0; k < 8; ++k) o[k] = __expf(o[k]);
        seqc_sst8(s.D + tl * KP + i0, o);
      }
      if (i0 == 0) G[SEQC_G_SLD + tl] = src ? rows.scaleLd(b, t, h) : SEQC_NO_SCALE;
    }
  }
  if (!Cfg::VLATE) seqc_chunk_issue_v<Cfg, NV, LDV>(rows, s, b, h, t0, T, j0);
  else if ((V % 8u) == 0u) {
    // alpha v is loaded after the inverse (into A's place): start its rows towards L2 now, one 128-byte line each
    constexpr int LPR = (NV * (int)sizeof(T_) + 127) / 128, EL = 128 / (int)sizeof(T_);
    for (int e = tid; e < F * LPR; e += nt) {
      const int f = e / LPR, k = e % LPR;
      if (!seqc_real<Cfg>(s.I, f, t0, T)) continue;
      const T_* src = rows.srcV(b, t0 + f / RTP, f % RTP, h);
      if (src && j0 + (u32)(k * EL) < V) seqc_prefetch_l2(src + j0 + k * EL);
    }
  }
  seqc_cp_commit();
  if (tid < F) {
    const int f = tid;
    if (Cfg::LR) G[SEQC_G_BETA + f] = seqc_real<Cfg>(s.I, f, t0, T) ? rows.beta(b, t0 + f / RTP, f % RTP, h) : 0.f;
  }
  if (Cfg::DECAY == 1 && tid < F / RTP) {
    const int tl = tid;
    float pre[RTP], own[RTP], qpre = 0.f, tot = 0.f;
    for (int r = 0; r < RTP; ++r) pre[r] = own[r] = 0.f;
    if (t0 + tl < T) rows.template decayScalar<RTP>(b, t0 + tl, h, pre, own, qpre, tot);
    for (int r = 0; r < RTP; ++r) { G[SEQC_G_PRE + tl * RTP + r] = pre[r]; G[SEQC_G_OWN + tl * RTP + r] = own[r]; }
    G[SEQC_G_TOT + tl] = tot;
    G[SEQC_G_QPRE + tl] = qpre;
  }
  seqc_cp_wait<0>();
  __syncthreads();
  // scales of the copied rows; exp of copied log decays
  for (int e = tid; e < F * (KP / 8); e += nt) {
    const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, tl = f / RTP, r = f % RTP;
    float o[8];
    const float sx = G[SEQC_G_SX + f], sq = G[SEQC_G_SQ + f];
    if (sx != 1.f) { seqc_sld8(s.X + f * LDK + i0, o); for (int k = 0; k < 8; ++k) o[k] *= sx; seqc_sst8(s.X + f * LDK + i0, o); }
    if (Cfg::LR) {
      const float sw = G[SEQC_G_SW + f];
      if (sw != 1.f) { seqc_sld8(s.W + f * LDK + i0, o); for (int k = 0; k < 8; ++k) o[k] *= sw; seqc_sst8(s.W + f * LDK + i0, o); }
    }
    // (a scalar or no decay keeps q's copied row as it is, bf16(q) exactly: Aq's epilogue and Q~ = Q exp(G_q) apply
    // sq in fp32, so that a q nearly orthogonal to k loses no product to a second rounding, bf16(q sq); a per-key
    // decay's L rows take Q scaled)
    if (Cfg::DECAY == 2 && sq != 1.f) { seqc_sld8(s.Q + f * LDK + i0, o); for (int k = 0; k < 8; ++k) o[k] *= sq; seqc_sst8(s.Q + f * LDK + i0, o); }
    if (Cfg::DECAY == 2 && r == 0) {
      const float sl = G[SEQC_G_SLD + tl];
      if (sl != SEQC_NO_SCALE) {
        if ((u32)i0 + 8u <= K) seqc_sld8(s.R + tl * LDK + i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        for (int k = 0; k < 8; ++k) o[k] = __expf(sl * o[k]);
        seqc_sst8(s.D + tl * KP + i0, o);
      }
    }
  }
  if (!Cfg::VLATE) seqc_chunk_scale_v<Cfg, NV, LDV>(s);
}

// alpha v (value columns [j0, j0 + NV)) of a chunk: in the loads, or after the inverse where V lives in A's place (VLATE)
template <class Cfg, int NV, int LDV, class R>
__device__ void seqc_chunk_load_v(const R& rows, const SeqcSm<Cfg>& s, u32 b, u32 h, u32 t0, u32 T, u32 j0) {
  seqc_chunk_issue_v<Cfg, NV, LDV>(rows, s, b, h, t0, T, j0);
  seqc_cp_commit();
  seqc_cp_wait<0>();
  __syncthreads();
  seqc_chunk_scale_v<Cfg, NV, LDV>(s);
  __syncthreads();
}

// ---- 2. scalar decays: G per row (read Gr, write Gw), per readout slot, chunk total (warp 0) ----
template <class Cfg> __device__ void seqc_chunk_gscalar(const SeqcSm<Cfg>& s) {
  constexpr int C = Cfg::F / Cfg::RTP;
  float* G = s.G;
  if (threadIdx.x < 32) {
    const int l = threadIdx.x;
    // exclusive prefix over tokens (C <= 64: two per lane)
${GSCALAR_TOKEN_PREFIX}
    if (l < C) G[SEQC_G_GEND + l + 1] = a;
    if (l + 32 < C) G[SEQC_G_GEND + l + 33] = c;
    if (l == 0) G[SEQC_G_GEND] = 0.f;
  }
  __syncthreads();
  if (threadIdx.x < Cfg::F) {
    const int f = threadIdx.x, tl = f / Cfg::RTP;
    const float gr = G[SEQC_G_GEND + tl] + G[SEQC_G_PRE + f];
    G[SEQC_G_GR + f] = gr;
    G[SEQC_G_GW + f] = gr + G[SEQC_G_OWN + f];
    G[SEQC_G_GQ + f] = G[SEQC_G_GEND + tl] + G[SEQC_G_QPRE + tl];
  }
}

// ---- 3. A (row reads, fp32) and Aq (readouts, written as an operand), decayed and masked; A is stored as N = diag(beta) A ----
template <class Cfg> __device__ void seqc_chunk_mats_scalar(const SeqcSm<Cfg>& s, u32 t0, u32 T) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, LDK = Cfg::LDK, LDA = Cfg::LDA;
  const float* G = s.G;
  const int* I = s.I;
  // [W; Q] (W directly before Q) times X^T
  const T_* Aop = Cfg::LR ? s.W : s.Q;
  seqc_bmm<T_, false, true, 4, Cfg::KP>(Cfg::LR ? 2 * F : F, F, Aop, LDK, s.X, LDK, [&](int m, int n, float v0, float v1) {
    float vv[2] = {v0, v1};
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int c = n + k;
      if (Cfg::LR && m < F) {
        float a = 0.f;
        if (seqc_sees_row<Cfg>(I, m, c, t0, T)) a = G[SEQC_G_BETA + m] * vv[k] * (Cfg::DECAY ? __expf(G[SEQC_G_GR + m] - G[SEQC_G_GW + c]) : 1.f);
        s.A[m * LDA + c] = a;
      } else {
        const int mq = Cfg::LR ? m - F : m;
        float a = 0.f;
        if (seqc_sees_readout<Cfg>(I, mq, c, t0, T)) a = vv[k] * G[SEQC_G_SQ + mq] * (Cfg::DECAY ? __expf(G[SEQC_G_GQ + mq] - G[SEQC_G_GW + c]) : 1.f);
        s.AQB[mq * Cfg::LDF + c] = seqc_cvt<T_>(a);
      }
    }
  });
}

// (b) of the per-key decay by warp tasks (configs with MATS = 1, 2-byte operands): every block pair J <= I of
// [W_I; Q_I] D X^T at once, one 16x16 tile a task, no barrier between them: A_IJ = (L_I s_IJ) XS_J^T with
// s_IJ = prod_{J < m < I} BT_m applied to L's fragments in registers, A_II = L_I XI_I^T (fast blocks). Replaces the
// block rows' four rounds of building R and a product (eight barriers, 2 to 8 tiles a round).
template <class Cfg, class C = void> struct SeqcMatsOf { static constexpr int v = 0; };
template <class Cfg> struct SeqcMatsOf<Cfg, decltype((void)Cfg::MATS, void())> { static constexpr int v = Cfg::MATS; };
// two packed 2-byte values times (s0, s1), packed again
template <typename T> __device__ __forceinline__ u32 seqc_scale2(u32 v, float s0, float s1) {
  T lo, hi;
  lo.x = (unsigned short)(v & 0xffffu);
  hi.x = (unsigned short)(v >> 16);
  return seqc_pack2((T*)0, seqc_f32(lo) * s0, seqc_f32(hi) * s1);
}
template <class Cfg, bool W> struct SeqcKeyTiles { static __device__ __forceinline__ void run(const SeqcSm<Cfg>&, u32, u32) {} };
template <class Cfg> struct SeqcKeyTiles<Cfg, true> {
  static __device__ void run(const SeqcSm<Cfg>& s, u32 t0, u32 T) {
    typedef typename Cfg::T T_;
    constexpr int KP = Cfg::KP, LDK = Cfg::LDK, LDA = Cfg::LDA, NB = Cfg::F / 16, H = Cfg::LR ? 2 : 1, LROWS = 16 * H;
    const int w = threadIdx.x >> 5, nw = blockDim.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
    const int* I = s.I;
    const int* slow = s.I + SEQC_I_SLOW;
    for (int task = w; task < NB * (NB + 1) / 2 * H; task += nw) {
      // block pair p = I (I + 1) / 2 + J (J <= I), then the W half (low rank) or the Q half of L_I
      const int p = task / H, half = task % H;
      const int ib = p >= 6 ? 3 : p >= 3 ? 2 : p >= 1 ? 1 : 0, jb = p - ib * (ib + 1) / 2;
      const bool diag = jb == ib;
      if (diag && slow[ib]) continue;  // pairwise in (c)
      const T_* Lp = s.L + (ib * LROWS + half * 16) * LDK;
      const T_* Bp = (diag ? s.XI : s.XS) + jb * 16 * LDK;
      float acc[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
#pragma unroll
      for (int k0 = 0; k0 < KP; k0 += 16) {
        u32 a[4], b[4];
        seqc_ldsm4(a, Lp + (l & 15) * LDK + k0 + ((l >> 4) << 3));
        if (ib > jb + 1) {
          // a[0], a[1]: columns k0 + q, + 1; a[2], a[3]: k0 + q + 8, + 9
          float s0 = 1.f, s1 = 1.f, s2 = 1.f, s3 = 1.f;
          for (int m = jb + 1; m < ib; ++m) {
            const float* bt = s.BT + m * KP + k0 + q;
            s0 *= bt[0]; s1 *= bt[1]; s2 *= bt[8]; s3 *= bt[9];
          }
          a[0] = seqc_scale2<T_>(a[0], s0, s1);
          a[1] = seqc_scale2<T_>(a[1], s0, s1);
          a[2] = seqc_scale2<T_>(a[2], s2, s3);
          a[3] = seqc_scale2<T_>(a[3], s2, s3);
        }
        seqc_ldsm4(b, Bp + ((l & 7) + ((l >> 4) << 3)) * LDK + k0 + (((l >> 3) & 1) << 3));
        seqc_mma((T_*)0, acc[0], a, b);
        seqc_mma((T_*)0, acc[1], a, b + 2);
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = ib * 16 + g + (e >> 1) * 8, c = jb * 16 + nt * 8 + q + (e & 1);
          const float v = acc[nt][e];
          if (Cfg::LR && half == 0) s.A[row * LDA + c] = seqc_sees_row<Cfg>(I, row, c, t0, T) ? s.G[SEQC_G_BETA + row] * v : 0.f;
          else s.AQB[row * Cfg::LDF + c] = seqc_cvt<T_>(seqc_sees_readout<Cfg>(I, row, c, t0, T) ? v : 0.f);
        }
    }
  }
};

// per-key decay (one micro-step per token): see the file comment
template <class Cfg> __device__ void seqc_chunk_mats_key(const SeqcSm<Cfg>& s, u32 t0, u32 T) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, LDK = Cfg::LDK, LDA = Cfg::LDA;
  constexpr int NB = F / 16, TB = 16 / RTP, LROWS = Cfg::LR ? 32 : 16;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int* I = s.I;
  int* slow = s.I + SEQC_I_SLOW;
  const bool qAfter = I[SEQC_I_READ] > 0;
  // block rows below fill only the columns up to their own block: clear the rest
  for (int e = tid; e < F * LDA; e += nt)
    if (Cfg::LR) s.A[e] = 0.f;
  for (int e = tid; e < F * Cfg::LDF; e += nt) s.AQB[e] = seqc_cvt<T_>(0.f);
  // (a) per (sub-block, column): block-local prefix products -> left operands L (rows [W; Q] per block) and
  //     X / P (XI, diagonal quotient form), suffix products -> XS = X * prod_{(t, block end]} d, block totals BT
  for (int e = tid; e < NB * KP; e += nt) {
    const int ib = e / KP, i = e % KP;
    float p = 1.f;
#pragma unroll
    for (int k = 0; k < TB; ++k) {
      const int tl = ib * TB + k;
      const float d = s.D[tl * KP + i];
      const float pa = p * d;
#pragma unroll
      for (int r = 0; r < RTP; ++r) {
        const int f = tl * RTP + r;
        if (Cfg::LR) s.L[(ib * LROWS + (f - ib * 16)) * LDK + i] = seqc_cvt<T_>(seqc_f32(s.W[f * LDK + i]) * p);
        if (r == 0) s.L[(ib * LROWS + (Cfg::LR ? 16 : 0) + (f - ib * 16)) * LDK + i] = seqc_cvt<T_>(seqc_f32(s.Q[f * LDK + i]) * (qAfter ? pa : p));
        s.XI[f * LDK + i] = seqc_cvt<T_>(seqc_f32(s.X[f * LDK + i]) * (1.f / fmaxf(pa, seqc_slow_decay<T_>())));
      }
      if (RTP > 1) {
        // readout rows only in slot 0: zero the other slots of L's Q part
#pragma unroll
        for (int r = 1; r < RTP; ++r) s.L[(ib * LROWS + (Cfg::LR ? 16 : 0) + (tl * RTP + r - ib * 16)) * LDK + i] = seqc_cvt<T_>(0.f);
      }
      p = pa;
    }
    s.BT[ib * KP + i] = p;
    if (p < seqc_slow_decay<T_>()) slow[ib] = 1;
    float q = 1.f;
#pragma unroll
    for (int k = TB - 1; k >= 0; --k) {
      const int tl = ib * TB + k;
#pragma unroll
      for (int r = 0; r < RTP; ++r) {
        const int f = tl * RTP + r;
        s.XS[f * LDK + i] = seqc_cvt<T_>(seqc_f32(s.X[f * LDK + i]) * q);
      }
      q *= s.D[tl * KP + i];
    }
  }
  __syncthreads();
  SeqcKeyTiles<Cfg, SeqcMatsOf<Cfg>::v != 0>::run(s, t0, T);
  // (b) block rows: R = [XS of blocks J < I scaled to the boundary of I ; XI of block I], then [W_I; Q_I] R^T
#pragma unroll
  for (int ib = 0; ib < NB && !SeqcMatsOf<Cfg>::v; ++ib) {
    const bool fast = slow[ib] == 0;
    const int nrow = 16 * (ib + 1);
    for (int e = tid; e < nrow * (KP / 8); e += nt) {
      const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, jb = f / 16;
      float o[8];
      if (jb < ib) {
        seqc_sld8(s.XS + f * LDK + i0, o);
        for (int m = jb + 1; m < ib; ++m)
#pragma unroll
          for (int k = 0; k < 8; ++k) o[k] *= s.BT[m * KP + i0 + k];
      } else if (fast) seqc_sld8(s.XI + f * LDK + i0, o);
      else for (int k = 0; k < 8; ++k) o[k] = 0.f;
      seqc_sst8(s.R + f * LDK + i0, o);
    }
    __syncthreads();
    seqc_bmm<T_, false, true, 2, KP>(LROWS, nrow, s.L + ib * LROWS * LDK, LDK, s.R, LDK, [&](int m, int n, float v0, float v1) {
      float vv[2] = {v0, v1};
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int c = n + k;
        if (c >= ib * 16 && !fast) continue;  // diagonal block of a slow block: pairwise below
        if (Cfg::LR && m < 16) {
          const int row = ib * 16 + m;
          s.A[row * LDA + c] = seqc_sees_row<Cfg>(I, row, c, t0, T) ? s.G[SEQC_G_BETA + row] * vv[k] : 0.f;
        } else {
          const int row = ib * 16 + (Cfg::LR ? m - 16 : m);
          s.AQB[row * Cfg::LDF + c] = seqc_cvt<T_>(seqc_sees_readout<Cfg>(I, row, c, t0, T) ? vv[k] : 0.f);
        }
      }
    });
    __syncthreads();
  }
  // (c) slow diagonal blocks: pairwise products (exact for any decay)
  for (int e = tid; e < NB * 16 * 16 * (Cfg::LR ? 2 : 1); e += nt) {
    const int which = e / (NB * 256), rem = e % (NB * 256), ib = rem / 256, m = (rem % 256) / 16, n = rem % 16;
    if (slow[ib] == 0) continue;
    const int row = ib * 16 + m, col = ib * 16 + n;
    const bool isA = Cfg::LR && which == 0;
    const bool vis = isA ? seqc_sees_row<Cfg>(I, row, col, t0, T) : seqc_sees_readout<Cfg>(I, row, col, t0, T);
    float a = 0.f;
    if (vis) {
      // ratio = prod over tokens (t_col, tau] of d, tau = t_row - 1 (reads) or the readout's point
      const int tc = col / RTP, tau = isA ? row / RTP - 1 : (qAfter ? row / RTP : row / RTP - 1);
      const T_* Lr = (isA ? s.W : s.Q) + row * LDK;
      const T_* Xr = s.X + col * LDK;
      for (int i = 0; i < KP; ++i) {
        float rr = 1.f;
        for (int tk = tc + 1; tk <= tau; ++tk) rr *= s.D[tk * KP + i];
        a += seqc_f32(Lr[i]) * seqc_f32(Xr[i]) * rr;
      }
    }
    if (isA) s.A[row * LDA + col] = s.G[SEQC_G_BETA + row] * a;
    else s.AQB[row * Cfg::LDF + col] = seqc_cvt<T_>(a);
  }
}

// ---- 4. T = (I - N)^-1, N = diag(beta) A strictly lower: 16x16 diagonal blocks by forward substitution, then block rows ----
// the diagonal blocks T_II = (I - N_II)^-1: warp I, lane c < 16 solves column c by forward substitution
template <class Cfg> __device__ __forceinline__ void seqc_chunk_inverse_diag(const SeqcSm<Cfg>& s) {
  constexpr int NB = Cfg::F / 16, LDA = Cfg::LDA;
  const int tid = threadIdx.x, w = tid >> 5, l = tid & 31;
  float* Tt = s.TT;
  const float* N = s.A;
  if (w < NB && l < 16) {
    const int o = w * 16, c = l;
    float t[16];
#pragma unroll
    for (int a = 0; a < 16; ++a) {
      float v = a == c ? 1.f : 0.f;
#pragma unroll
      for (int k = 0; k < a; ++k) v = fmaf(N[(o + a) * LDA + o + k], t[k], v);
      t[a] = a >= c ? v : 0.f;
      Tt[(o + a) * LDA + o + c] = t[a];
    }
  }
}
template <class Cfg> __device__ void seqc_chunk_inverse(const SeqcSm<Cfg>& s) {
  constexpr int F = Cfg::F, NB = F / 16, LDA = Cfg::LDA;
  const int tid = threadIdx.x;
  float* Tt = s.TT;
  const float* N = s.A;
  seqc_chunk_inverse_diag<Cfg>(s);
  __syncthreads();
#pragma unroll
  for (int ib = 1; ib < NB; ++ib) {
    // P_J = sum_{K=J}^{I-1} N_IK T_KJ for every J < I (256 threads: one (a, c) each, loop over J)
    for (int e = tid; e < ib * 256; e += blockDim.x) {
      const int jb = e / 256, a = (e % 256) / 16, c = e % 16;
      float v = 0.f;
      for (int kb = jb; kb < ib; ++kb)
#pragma unroll
        for (int k = 0; k < 16; ++k) v = fmaf(N[(ib * 16 + a) * LDA + kb * 16 + k], Tt[(kb * 16 + k) * LDA + jb * 16 + c], v);
      s.P[jb * 256 + a * 16 + c] = v;
    }
    __syncthreads();
    for (int e = tid; e < ib * 256; e += blockDim.x) {
      const int jb = e / 256, a = (e % 256) / 16, c = e % 16;
      float v = 0.f;
#pragma unroll
      for (int k = 0; k < 16; ++k) v = fmaf(Tt[(ib * 16 + a) * LDA + ib * 16 + k], s.P[jb * 256 + k * 16 + c], v);
      Tt[(ib * 16 + a) * LDA + jb * 16 + c] = v;
    }
    __syncthreads();
  }
}

// ---- 4w. the same T by one warp per 16x16 block product (fp32, SIMT), three block barriers instead of seven
// (configs with INV = 1). With the 32x32 halves T1 = (I - N1)^-1, T2 = (I - N2)^-1 of the 64-row chunk:
//   T_10 = T_11 N_10 T_00, T_32 = T_33 N_32 T_22 (T1 and T2), and beside them N_21 T_11, N_31 T_11, N_20 T_00, N_30 T_00;
//   then T21 = T2 (N21 T1): T_20 = T_22 Y_20, T_21 = T_22 Y_21, T_30 = T_32 Y_20 + T_33 Y_30, T_31 = T_32 Y_21 + T_33 Y_31,
//   Y_20 = N_20 T_00 + N_21 T_10, Y_21 = N_21 T_11, Y_30 = N_30 T_00 + N_31 T_10, Y_31 = N_31 T_11.
// Intermediates live in T's unused upper blocks (and P): a warp's chained products sync with __syncwarp only.
template <class Cfg, class C = void> struct SeqcInvOf { static constexpr int v = 0; };
template <class Cfg> struct SeqcInvOf<Cfg, decltype((void)Cfg::INV, void())> { static constexpr int v = Cfg::INV; };
// one warp: c (rows 2 (l >> 2) + {0, 1}, columns 4 (l & 3) + {0..3} of a 16x16 tile) += A B, A and B 16x16 fp32
__device__ __forceinline__ void seqc_w16_mm(float (&c)[2][4], const float* A, int lda, const float* B, int ldb) {
  const int l = threadIdx.x & 31, r = (l >> 2) << 1, n = (l & 3) << 2;
#pragma unroll
  for (int k = 0; k < 16; k += 4) {
    const float4 a0 = *reinterpret_cast<const float4*>(A + r * lda + k), a1 = *reinterpret_cast<const float4*>(A + (r + 1) * lda + k);
    const float x0[4] = {a0.x, a0.y, a0.z, a0.w}, x1[4] = {a1.x, a1.y, a1.z, a1.w};
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const float4 b = *reinterpret_cast<const float4*>(B + (k + kk) * ldb + n);
      c[0][0] = fmaf(x0[kk], b.x, c[0][0]); c[0][1] = fmaf(x0[kk], b.y, c[0][1]); c[0][2] = fmaf(x0[kk], b.z, c[0][2]); c[0][3] = fmaf(x0[kk], b.w, c[0][3]);
      c[1][0] = fmaf(x1[kk], b.x, c[1][0]); c[1][1] = fmaf(x1[kk], b.y, c[1][1]); c[1][2] = fmaf(x1[kk], b.z, c[1][2]); c[1][3] = fmaf(x1[kk], b.w, c[1][3]);
    }
  }
}
__device__ __forceinline__ void seqc_w16_ld(float (&c)[2][4], const float* src, int ld) {
  const int l = threadIdx.x & 31, r = (l >> 2) << 1, n = (l & 3) << 2;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float4 v = src ? *reinterpret_cast<const float4*>(src + (r + i) * ld + n) : make_float4(0.f, 0.f, 0.f, 0.f);
    c[i][0] = v.x; c[i][1] = v.y; c[i][2] = v.z; c[i][3] = v.w;
  }
}
__device__ __forceinline__ void seqc_w16_st(const float (&c)[2][4], float* dst, int ld) {
  const int l = threadIdx.x & 31, r = (l >> 2) << 1, n = (l & 3) << 2;
#pragma unroll
  for (int i = 0; i < 2; ++i) *reinterpret_cast<float4*>(dst + (r + i) * ld + n) = make_float4(c[i][0], c[i][1], c[i][2], c[i][3]);
}
template <class Cfg> __device__ void seqc_chunk_inverse_w(const SeqcSm<Cfg>& s) {
  static_assert(Cfg::F == 64 && Cfg::NT >= 192, "the warp-product inverse is written for 64-row chunks and >= 6 warps");
  constexpr int LDA = Cfg::LDA;
  const int w = threadIdx.x >> 5;
  float* Tt = s.TT;
  float* N = s.A;
  float* const Pz = s.P;
  auto Tb = [&](int i, int j) { return Tt + i * 16 * LDA + j * 16; };
  auto Nb = [&](int i, int j) { return N + i * 16 * LDA + j * 16; };
  seqc_chunk_inverse_diag<Cfg>(s);
  __syncthreads();
  float c[2][4];
  // scratch: U(0,1) N_10 T_00, U(0,2) N_32 T_22, U(0,3) Y_21, U(1,2) Y_31, U(1,3) N_20 T_00, U(2,3) N_30 T_00
  if (w < 6) {
    // warp w: N_ik T_kk into U(a, b) (warps 0 and 1 then T_ik = T_ii U(a, b))
${inverseFirstRound("c", "b")}
  }
  __syncthreads();
${inverseSecondRound("c")}
  __syncthreads();
}

// ---- 5. in place: Q -> Q~, W -> diag(beta) W~, X -> X~; exp(G_n); T and Aq as operands ----
template <class Cfg> __device__ void seqc_chunk_scale(const SeqcSm<Cfg>& s) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, LDK = Cfg::LDK, LDA = Cfg::LDA, LDF = Cfg::LDF;
  constexpr int NB = F / 16;
  const int tid = threadIdx.x, nt = blockDim.x;
  float* G = s.G;
  if (Cfg::DECAY == 2) {
    for (int e = tid; e < F * (KP / 8); e += nt) {
      const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, ib = f / 16;
      constexpr int LROWS = Cfg::LR ? 32 : 16;
      float pre[8], post[8], o[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) pre[k] = post[k] = 1.f;
      for (int m = 0; m < ib; ++m)
#pragma unroll
        for (int k = 0; k < 8; ++k) pre[k] *= s.BT[m * KP + i0 + k];
      for (int m = ib + 1; m < NB; ++m)
#pragma unroll
        for (int k = 0; k < 8; ++k) post[k] *= s.BT[m * KP + i0 + k];
      seqc_sld8(s.L + (ib * LROWS + (Cfg::LR ? 16 : 0) + f - ib * 16) * LDK + i0, o);
#pragma unroll
      for (int k = 0; k < 8; ++k) o[k] *= pre[k];
      seqc_sst8(s.Q + f * LDK + i0, o);
      if (Cfg::LR) {
        seqc_sld8(s.L + (ib * LROWS + f - ib * 16) * LDK + i0, o);
        const float bt = G[SEQC_G_BETA + f];
#pragma unroll
        for (int k = 0; k < 8; ++k) o[k] *= pre[k] * bt;
        seqc_sst8(s.W + f * LDK + i0, o);
      }
      seqc_sld8(s.XS + f * LDK + i0, o);
#pragma unroll
      for (int k = 0; k < 8; ++k) o[k] *= post[k];
      seqc_sst8(s.X + f * LDK + i0, o);
    }
    for (int i = tid; i < KP; i += nt) {
      float p = 1.f;
      for (int m = 0; m < NB; ++m) p *= s.BT[m * KP + i];
      G[SEQC_G_EGN + i] = p;
    }
  } else {
    const float gn = Cfg::DECAY ? G[SEQC_G_GEND + F / RTP] : 0.f;
    for (int e = tid; e < F * (KP / 8); e += nt) {
      const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8;
      float o[8];
      // (Q as copied: its row scale sq with the decay, one rounding of q sq exp(G_q))
      const float sq = G[SEQC_G_SQ + f];
      if (Cfg::DECAY) {
        const float fq = sq * __expf(G[SEQC_G_GQ + f]), fx = __expf(gn - G[SEQC_G_GW + f]);
        seqc_sld8(s.Q + f * LDK + i0, o);
        for (int k = 0; k < 8; ++k) o[k] *= fq;
        seqc_sst8(s.Q + f * LDK + i0, o);
        seqc_sld8(s.X + f * LDK + i0, o);
        for (int k = 0; k < 8; ++k) o[k] *= fx;
        seqc_sst8(s.X + f * LDK + i0, o);
      } else if (sq != 1.f) {
        seqc_sld8(s.Q + f * LDK + i0, o);
        for (int k = 0; k < 8; ++k) o[k] *= sq;
        seqc_sst8(s.Q + f * LDK + i0, o);
      }
      if (Cfg::LR) {
        const float fw = G[SEQC_G_BETA + f] * (Cfg::DECAY ? __expf(G[SEQC_G_GR + f]) : 1.f);
        seqc_sld8(s.W + f * LDK + i0, o);
        for (int k = 0; k < 8; ++k) o[k] *= fw;
        seqc_sst8(s.W + f * LDK + i0, o);
      }
    }
    for (int i = tid; i < KP; i += nt) G[SEQC_G_EGN + i] = Cfg::DECAY ? __expf(gn) : 1.f;
  }
  // operand copy of T (lower block triangle; zero above); Aq was written as an operand by the mats. Where T's
  // operand lives in XS's place (phase A's layout, chunked-model.ts), every thread first has to be past the pass above
  if (Cfg::LR && Cfg::DECAY == 2 && Cfg::O_TB == Cfg::O_XS) __syncthreads();
  if (Cfg::LR)
    for (int e = tid; e < F * (F / 2); e += nt) {
      const int m = e / (F / 2), n = (e % (F / 2)) * 2;
      const bool lower = (n / 16) <= (m / 16);
      seqc_sst2(s.TB + m * LDF + n, lower ? s.TT[m * LDA + n] : 0.f, lower ? s.TT[m * LDA + n + 1] : 0.f);
    }
}

// S0-independent preparation of one chunk (everything before the walk)
template <class Cfg, int NV, int LDV, class R>
__device__ void seqc_chunk_prepare(const R& rows, const SeqcSm<Cfg>& s, u32 b, u32 h, u32 t0, u32 T, u32 j0) {
  if (Cfg::DECAY == 2 && threadIdx.x < Cfg::F / 16) s.I[SEQC_I_SLOW + threadIdx.x] = 0;
  seqc_chunk_load<Cfg, NV, LDV>(rows, s, b, h, t0, T, j0);
  __syncthreads();
  if (Cfg::DECAY == 2) seqc_chunk_mats_key<Cfg>(s, t0, T);
  else {
    if (Cfg::DECAY == 1) seqc_chunk_gscalar<Cfg>(s);
    __syncthreads();
    seqc_chunk_mats_scalar<Cfg>(s, t0, T);
  }
  __syncthreads();
  if (Cfg::LR) {
    if (SeqcInvOf<Cfg>::v) seqc_chunk_inverse_w<Cfg>(s);
    else seqc_chunk_inverse<Cfg>(s);
  }
  seqc_chunk_scale<Cfg>(s);
  __syncthreads();
  if (Cfg::VLATE) seqc_chunk_load_v<Cfg, NV, LDV>(rows, s, b, h, t0, T, j0);
}

// ---- the state: a KP x BV fp32 tile in registers (mma C-fragment layout), warp w owns tiles w, w + NW, ... ----
template <class Cfg> struct SeqcState {
  static constexpr int WN = SeqcWN<Cfg::BV>::N;
  static constexpr int TN = Cfg::BV / (8 * WN), TILES = (Cfg::KP / 16) * TN, NW = Cfg::NT / 32, ST = (TILES + NW - 1) / NW;
  float acc[ST][WN][4];
};

template <class Cfg, class R> __device__ void seqc_state_load(SeqcState<Cfg>& S, const R& rows, u32 b, u32 h, u32 j0, u32 K, u32 V) {
  typedef SeqcState<Cfg> St;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
#pragma unroll
  for (int s = 0; s < St::ST; ++s) {
    const int tile = w + s * St::NW;
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const u32 i = (tile / St::TN) * 16 + g + (c >> 1) * 8, j = j0 + (tile % St::TN) * 8 * St::WN + nt * 8 + q + (c & 1);
        S.acc[s][nt][c] = (tile < St::TILES && i < K && j < V) ? rows.loadS(b, h, i, j) : 0.f;
      }
  }
}
template <class Cfg, class R> __device__ void seqc_state_store(const SeqcState<Cfg>& S, const R& rows, u32 b, u32 h, u32 j0, u32 K, u32 V) {
  typedef SeqcState<Cfg> St;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
#pragma unroll
  for (int s = 0; s < St::ST; ++s) {
    const int tile = w + s * St::NW;
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const u32 i = (tile / St::TN) * 16 + g + (c >> 1) * 8, j = j0 + (tile % St::TN) * 8 * St::WN + nt * 8 + q + (c & 1);
        if (tile < St::TILES && i < K && j < V) rows.storeS(b, h, i, j, S.acc[s][nt][c]);
      }
  }
}
// S as an operand: SB[i][j] (KP x BV)
template <class Cfg> __device__ __forceinline__ void seqc_state_operand(const SeqcState<Cfg>& S, typename Cfg::T* SB) {
  typedef SeqcState<Cfg> St;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
#pragma unroll
  for (int s = 0; s < St::ST; ++s) {
    const int tile = w + s * St::NW;
    if (tile >= St::TILES) continue;
    const int i = (tile / St::TN) * 16 + g, j = (tile % St::TN) * 8 * St::WN + q;
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt) {
      seqc_sst2(SB + i * Cfg::LDV + j + nt * 8, S.acc[s][nt][0], S.acc[s][nt][1]);
      seqc_sst2(SB + (i + 8) * Cfg::LDV + j + nt * 8, S.acc[s][nt][2], S.acc[s][nt][3]);
    }
  }
}
// S <- exp(G_n) S + X~^T Z   (X~ stored [f][i]: a [k][m] operand)
template <class Cfg> __device__ __forceinline__ void seqc_state_update(SeqcState<Cfg>& S, const typename Cfg::T* Xt, const typename Cfg::T* Z, const float* eGn) {
  typedef SeqcState<Cfg> St;
  typedef typename Cfg::T T_;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2;
#pragma unroll
  for (int s = 0; s < St::ST; ++s) {
    const int tile = w + s * St::NW;
    if (tile >= St::TILES) continue;
    const int m0 = (tile / St::TN) * 16, n0 = (tile % St::TN) * 8 * St::WN;
    const float e0 = eGn[m0 + g], e1 = eGn[m0 + g + 8];
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt) {
      S.acc[s][nt][0] *= e0; S.acc[s][nt][1] *= e0; S.acc[s][nt][2] *= e1; S.acc[s][nt][3] *= e1;
    }
    SeqcMM<T_>::template run<true, false, St::WN, Cfg::F>(S.acc[s], Xt, Cfg::LDK, Z, Cfg::LDV, m0, n0);
  }
}

// y = Q~ SB + Aq Z into Y (readout slots), fp32
template <class Cfg> __device__ __forceinline__ void seqc_readout(const SeqcSm<Cfg>& s, const typename Cfg::T* Z) {
  typedef typename Cfg::T T_;
  constexpr int WN = SeqcWN<Cfg::BV>::N, TN = Cfg::BV / (8 * WN), TILES = (Cfg::F / 16) * TN;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
  for (int tile = w; tile < TILES; tile += Cfg::NT / 32) {
    const int m0 = (tile / TN) * 16, n0 = (tile % TN) * 8 * WN;
    float acc[WN][4];
#pragma unroll
    for (int i = 0; i < WN; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    SeqcMM<T_>::template run<false, false, WN, Cfg::KP>(acc, s.Q, Cfg::LDK, s.SB, Cfg::LDV, m0, n0);
    SeqcMM<T_>::template run<false, false, WN, Cfg::F>(acc, s.AQB, Cfg::LDF, Z, Cfg::LDV, m0, n0);
#pragma unroll
    for (int nt = 0; nt < WN; ++nt) {
      const int n = n0 + nt * 8 + q;
      seqc_sst2(s.Y + (m0 + g) * Cfg::LDY + n, acc[nt][0], acc[nt][1]);
      seqc_sst2(s.Y + (m0 + g + 8) * Cfg::LDY + n, acc[nt][2], acc[nt][3]);
    }
  }
}

// y's rows of one chunk to the post outputs. Where the block's threads cover whole rows (NT a multiple of BV) each
// thread keeps one column and steps over rows by NT / BV (compile-time strides, no per-element division)
template <class Cfg, class R> __device__ __forceinline__ void seqc_post(const R& rows, const SeqcSm<Cfg>& s, u32 b, u32 h, u32 t0, u32 T, u32 j0, u32 V) {
  constexpr u32 C = Cfg::F / Cfg::RTP, BV = Cfg::BV, NT = Cfg::NT;
  if (NT % BV == 0) {
    const u32 j = threadIdx.x % BV, tl0 = threadIdx.x / BV;
    if (j0 + j >= V) return;
    const u32 n = t0 + C <= T ? C : T - t0;
#pragma unroll 4
    for (u32 tl = tl0; tl < n; tl += NT / BV) rows.post(b, t0 + tl, h, j0 + j, s.Y[tl * Cfg::RTP * Cfg::LDY + j]);
  } else {
    for (u32 e = threadIdx.x; e < C * BV; e += NT) {
      const u32 tl = e / BV, j = e % BV;
      if (t0 + tl < T && j0 + j < V) rows.post(b, t0 + tl, h, j0 + j, s.Y[tl * Cfg::RTP * Cfg::LDY + j]);
    }
  }
}

// ---- fused kernel body: one block per (b, h, value tile) walks every chunk ----
template <class Cfg, class R>
__device__ void seqc_chunk_fused(const R& rows, char* smem, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV;
  const SeqcSm<Cfg> s(smem);
  const u32 nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, h = (blk / nvt) % nH, b = blk / (nvt * nH);
  const u32 T = rows.u.T, j0 = vt * BV;
  if (threadIdx.x < Cfg::RTP) s.I[SEQC_I_MICRO + threadIdx.x] = rows.micro(threadIdx.x);
  if (threadIdx.x == 0) s.I[SEQC_I_READ] = rows.readoutAt();
  SeqcState<Cfg> S;
  seqc_state_load<Cfg>(S, rows, b, h, j0, K, V);
  __syncthreads();
  for (u32 t0 = 0; t0 < T; t0 += C) {
    seqc_chunk_prepare<Cfg, BV, LDV>(rows, s, b, h, t0, T, j0);
    seqc_state_operand<Cfg>(S, s.SB);
    __syncthreads();
    const T_* Z = s.V;
    if (Cfg::LR) {
      // V <- alpha V + diag(beta) W~ S0, then Z = T V
      seqc_bmm<T_, false, false, SeqcWN<BV>::N, Cfg::KP>(F, BV, s.W, Cfg::LDK, s.SB, LDV, [&](int m, int n, float v0, float v1) {
        float o[2] = {seqc_f32(s.V[m * LDV + n]) + v0, seqc_f32(s.V[m * LDV + n + 1]) + v1};
        seqc_sst2(s.V + m * LDV + n, o[0], o[1]);
      });
      __syncthreads();
      seqc_bmm<T_, false, false, SeqcWN<BV>::N, F>(F, BV, s.TB, Cfg::LDF, s.V, LDV, [&](int m, int n, float v0, float v1) {
        seqc_sst2(s.Z + m * LDV + n, v0, v1);
      });
      __syncthreads();
      Z = s.Z;
    }
    seqc_readout<Cfg>(s, Z);
    seqc_state_update<Cfg>(S, s.X, Z, s.G + SEQC_G_EGN);
    __syncthreads();
    seqc_post<Cfg>(rows, s, b, h, t0, T, j0, V);
  }
  seqc_state_store<Cfg>(S, rows, b, h, j0, K, V);
}

// ---- split kernels: phase A writes one record per (b, h, chunk); the walk reads them ----
// record (elements of T): Q~ [F][KP], X~ [F][KP], M [F][KP] (low rank), Aq [F][F], U0 [F][VP]; then exp(G_n) [KP] floats
template <class Cfg> struct SeqcRec {
  static constexpr size_t QO = 0, XO = QO + (size_t)Cfg::F * Cfg::KP, MO = XO + (size_t)Cfg::F * Cfg::KP;
  static constexpr size_t AO = MO + (Cfg::LR ? (size_t)Cfg::F * Cfg::KP : 0), UO = AO + (size_t)Cfg::F * Cfg::F, END = UO + (size_t)Cfg::F * Cfg::VP;
  static constexpr size_t BYTES = ((END * sizeof(typename Cfg::T) + 15) / 16) * 16 + Cfg::KP * 4;
};

template <class Cfg, class R>
__device__ void seqc_chunk_phase_a(const R& rows, char* smem, typename Cfg::T* ws, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, KP = Cfg::KP, VP = Cfg::VP, LDK = Cfg::LDK;
${phaseAHead()}
  seqc_chunk_prepare<Cfg, VP, Cfg::LDVA>(rows, s, b, h, c * C, T, 0);
  char* rec = reinterpret_cast<char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES;
  T_* r = reinterpret_cast<T_*>(rec);
  const int tid = threadIdx.x, nt = blockDim.x;
  constexpr int E = 16 / sizeof(T_);
  for (int e = tid; e < F * (KP / E); e += nt) {
    const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
    *reinterpret_cast<uint4*>(r + Rec::QO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.Q + f * LDK + i0);
    *reinterpret_cast<uint4*>(r + Rec::XO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.X + f * LDK + i0);
  }
  for (int e = tid; e < F * (F / E); e += nt) {
    const int f = e / (F / E), n0 = (e % (F / E)) * E;
    *reinterpret_cast<uint4*>(r + Rec::AO + f * F + n0) = *reinterpret_cast<const uint4*>(s.AQB + f * Cfg::LDF + n0);
  }
  if (Cfg::LR) {
    // M = T diag(beta) W~, U0 = T alpha V
    seqc_bmm<T_, false, false, 4, F>(F, KP, s.TB, Cfg::LDF, s.W, LDK, [&](int m, int n, float v0, float v1) {
      seqc_sst2(r + Rec::MO + m * KP + n, v0, v1);
    });
    seqc_bmm<T_, false, false, SeqcWN<VP>::N, F>(F, VP, s.TB, Cfg::LDF, s.V, Cfg::LDVA, [&](int m, int n, float v0, float v1) {
      seqc_sst2(r + Rec::UO + m * VP + n, v0, v1);
    });
  } else {
    for (int e = tid; e < F * (VP / E); e += nt) {
      const int f = e / (VP / E), j0 = (e % (VP / E)) * E;
      *reinterpret_cast<uint4*>(r + Rec::UO + f * VP + j0) = *reinterpret_cast<const uint4*>(s.V + f * Cfg::LDVA + j0);
    }
  }
  float* eg = reinterpret_cast<float*>(rec + Rec::BYTES - KP * 4);
  for (int i = tid; i < KP; i += nt) eg[i] = s.G[SEQC_G_EGN + i];
}

// walk: per (b, h, value tile), chunks in order, records double-buffered with cp.async
template <class Cfg> __device__ __forceinline__ void seqc_walk_issue(const SeqcSm<Cfg>& s, int stage, const char* rec, u32 j0) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, E = 16 / sizeof(T_), LDK = Cfg::LDK, BV = Cfg::BV;
${walkStage({ m: true, floats: "eg" })}
  for (int e = tid; e < F * (KP / E); e += nt) {
    const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
    seqc_cp16(q + f * LDK + i0, r + Rec::QO + f * KP + i0);
    seqc_cp16(x + f * LDK + i0, r + Rec::XO + f * KP + i0);
    if (Cfg::LR) seqc_cp16(m + f * LDK + i0, r + Rec::MO + f * KP + i0);
  }
${recordCopyAq("a")}
  for (int e = tid; e < F * (BV / E); e += nt) {
    const int f = e / (BV / E), jj = (e % (BV / E)) * E;
    seqc_cp16(u + f * Cfg::LDV + jj, r + Rec::UO + f * Cfg::VP + j0 + jj);
  }
  for (int e = tid; e < KP / 4; e += nt) seqc_cp16(eg + e * 4, rec + Rec::BYTES - KP * 4 + e * 16);
}

template <class Cfg, class R>
__device__ void seqc_chunk_walk(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV;
${walkHead(false)}
  // NSTAGE-deep pipeline: records of the next NSTAGE - 1 chunks are in flight while one is used
${walkPipe({ issue: "seqc_walk_issue", inputs: false, m: true, floats: "eg" })}
    const T_* Z = u;
    if (Cfg::LR) {
      seqc_bmm<T_, false, false, SeqcWN<BV>::N, Cfg::KP>(F, BV, m, Cfg::LDK, s.SB, LDV, [&](int mm, int n, float v0, float v1) {
        seqc_sst2(s.Z + mm * LDV + n, seqc_f32(u[mm * LDV + n]) + v0, seqc_f32(u[mm * LDV + n + 1]) + v1);
      });
      __syncthreads();
      Z = s.Z;
    }
${walkReadout({ what: "y = Q~ SB + Aq Z", tiles: true, step: "Cfg::NT / 32", kp: "Cfg::KP", fq: false, z: "Z" })}
${walkTail("Z", "eg")}
// ---- splitd: split with the raw q and key rows (scalar or no decay) ----
// With a scalar decay Q~ and X~ are the input rows times per-row factors (fq = scale_q exp(G_q), fx = scale_x
// exp(G_n - G_w)), so phase A stores only those factors, and the walk copies q and the key rows from the inputs:
// y = diag(fq) (Q SB) + Aq Z (fq on the accumulators), S' = exp(G_n) S + X^T (diag(fx) Z) (ZX, a scaled copy of
// the Z tile). Without low rank the walk also reads alpha v from the inputs (Z = diag(scale_v) V), so the record
// holds only Aq, exp(G_n) and the factors (with low rank also M and U0).
// record: Aq [F][F], M [F][KP] (low rank), U0 [F][VP] (low rank); then floats exp(G_n) [KP], fq [F], fx [F]
template <class Cfg> struct SeqcRecD {
  static constexpr size_t AO = 0, MO = AO + (size_t)Cfg::F * Cfg::F, UO = MO + (Cfg::LR ? (size_t)Cfg::F * Cfg::KP : 0);
  static constexpr size_t END = UO + (Cfg::LR ? (size_t)Cfg::F * Cfg::VP : 0);
  static constexpr size_t FO = ((END * sizeof(typename Cfg::T) + 15) / 16) * 16, BYTES = FO + (size_t)(Cfg::KP + 2 * Cfg::F) * 4;
};

template <class Cfg, class R>
__device__ void seqc_chunk_phase_a_d(const R& rows, char* smem, typename Cfg::T* ws, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRecD<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, KP = Cfg::KP, VP = Cfg::VP, LDK = Cfg::LDK;
  static_assert(Cfg::DECAY != 2, "splitd: scalar or no decay");
${phaseAHead()}
  // alpha v only where it enters U0 (low rank); otherwise the walk reads it from the inputs
  seqc_chunk_prepare<Cfg, Cfg::LR ? VP : 0, Cfg::LDVA>(rows, s, b, h, c * C, T, 0);
  char* rec = reinterpret_cast<char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES;
  T_* r = reinterpret_cast<T_*>(rec);
  const int tid = threadIdx.x, nt = blockDim.x;
  constexpr int E = 16 / sizeof(T_);
  for (int e = tid; e < F * (F / E); e += nt) {
    const int f = e / (F / E), n0 = (e % (F / E)) * E;
    *reinterpret_cast<uint4*>(r + Rec::AO + f * F + n0) = *reinterpret_cast<const uint4*>(s.AQB + f * Cfg::LDF + n0);
  }
  if (Cfg::LR) {
    seqc_bmm<T_, false, false, 4, F>(F, KP, s.TB, Cfg::LDF, s.W, LDK, [&](int m, int n, float v0, float v1) {
      seqc_sst2(r + Rec::MO + m * KP + n, v0, v1);
    });
    seqc_bmm<T_, false, false, SeqcWN<VP>::N, F>(F, VP, s.TB, Cfg::LDF, s.V, Cfg::LDVA, [&](int m, int n, float v0, float v1) {
      seqc_sst2(r + Rec::UO + m * VP + n, v0, v1);
    });
  }
  float* fl = reinterpret_cast<float*>(rec + Rec::FO);
  const float* G = s.G;
  for (int i = tid; i < KP; i += nt) fl[i] = G[SEQC_G_EGN + i];
  const float gn = Cfg::DECAY ? G[SEQC_G_GEND + F / Cfg::RTP] : 0.f;
  for (int f = tid; f < F; f += nt) {
    float fq = G[SEQC_G_SQ + f], fx = G[SEQC_G_SX + f];
    if (Cfg::DECAY) { fq *= __expf(G[SEQC_G_GQ + f]); fx *= __expf(gn - G[SEQC_G_GW + f]); }
    fl[KP + f] = fq;
    fl[KP + F + f] = fx;
  }
}

// one chunk's stage of the splitd walk: raw q and key rows (as the loads of phase A take them: copied where they are
// plain input reads, else through the loader; their scales are in fq / fx), the record's Aq (M, U0 tile), alpha v's
// tile from the inputs without low rank (its scale per row at fl[KP + 2F + f]), exp(G_n) and the factors
${inputIssueHead("seqc_walkd_issue", "SeqcRecD", "fl")}
  const u32 K = rows.keyDim(), V = rows.valueDim();
  const bool kvec = (K % 8u) == 0u, vvec = (V % 8u) == 0u;
  for (int e = tid; e < F * (KP / 8); e += nt) {
    const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, tl = f / RTP, rr = f % RTP;
    const u32 t = t0 + tl;
    const bool real = seqc_real<Cfg>(s.I, f, t0, T), inK = kvec && (u32)i0 + 8u <= K;
    float o[8];
    {
      const T_* src = real && kvec ? rows.srcX(b, t, rr, h) : nullptr;
      if (src && inK) for (int k = 0; k < 8; k += E) seqc_cp16(x + f * LDK + i0 + k, src + i0 + k);
      else {
        if (real && !src) rows.loadX(b, t, rr, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(x + f * LDK + i0, o);
      }
    }
    {
      const bool qreal = rr == 0 && t < T;
      const T_* src = qreal && kvec ? rows.srcQ(b, t, h) : nullptr;
      if (src && inK) for (int k = 0; k < 8; k += E) seqc_cp16(q + f * LDK + i0 + k, src + i0 + k);
      else {
        if (qreal && !src) rows.loadQ(b, t, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(q + f * LDK + i0, o);
      }
    }
    if (Cfg::LR) for (int k = 0; k < 8; k += E) seqc_cp16(m + f * LDK + i0 + k, r + Rec::MO + f * KP + i0 + k);
  }
${recordCopyAq("a")}
  if (Cfg::LR) {
    for (int e = tid; e < F * (BV / E); e += nt) {
      const int f = e / (BV / E), jj = (e % (BV / E)) * E;
      seqc_cp16(u + f * Cfg::LDV + jj, r + Rec::UO + f * Cfg::VP + j0 + jj);
    }
  } else {
    for (int e = tid; e < F * (BV / 8); e += nt) {
      const int f = e / (BV / 8), jj = (e % (BV / 8)) * 8, tl = f / RTP, rr = f % RTP;
      const bool real = seqc_real<Cfg>(s.I, f, t0, T);
      const T_* src = real && vvec ? rows.srcV(b, t0 + tl, rr, h) : nullptr;
      if (src && j0 + jj + 8u <= V) for (int k = 0; k < 8; k += E) seqc_cp16(u + f * Cfg::LDV + jj + k, src + j0 + jj + k);
      else {
        float o[8];
        if (real && !src) rows.loadV(b, t0 + tl, rr, h, j0 + jj, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(u + f * Cfg::LDV + jj, o);
      }
      if (jj == 0) fl[KP + 2 * F + f] = src ? rows.scaleV(b, t0 + tl, rr, h) : 1.f;
    }
  }
  for (int e = tid; e < (KP + 2 * F) / 4; e += nt) seqc_cp16(fl + e * 4, rec + Rec::FO + e * 16);
}

template <class Cfg, class R>
__device__ void seqc_chunk_walk_d(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRecD<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV;
${walkHead(true)}
${walkPipe({ issue: "seqc_walkd_issue", inputs: true, m: true, floats: "fl" })}
    const float* fq = fl + KP;
    const float* fx = fl + KP + F;
    if (Cfg::LR) {
      // Z = U0 + M S0, and its copy scaled by fx for the state update
      seqc_bmm<T_, false, false, SeqcWN<BV>::N, KP>(F, BV, m, Cfg::LDK, s.SB, LDV, [&](int mm, int n, float v0, float v1) {
        const float z0 = seqc_f32(u[mm * LDV + n]) + v0, z1 = seqc_f32(u[mm * LDV + n + 1]) + v1;
        seqc_sst2(s.Z + mm * LDV + n, z0, z1);
        seqc_sst2(s.ZX + mm * LDV + n, fx[mm] * z0, fx[mm] * z1);
      });
    } else {
      // Z = diag(scale_v) V, ZX = diag(fx) Z
      const float* sv = fl + KP + 2 * F;
      for (int e = threadIdx.x; e < F * (BV / 8); e += blockDim.x) {
        const int f = e / (BV / 8), jj = (e % (BV / 8)) * 8;
        float o[8];
        seqc_sld8(u + f * LDV + jj, o);
        const float a0 = sv[f], a1 = a0 * fx[f];
        float z[8];
        for (int k = 0; k < 8; ++k) { z[k] = o[k] * a0; o[k] *= a1; }
        seqc_sst8(s.Z + f * LDV + jj, z);
        seqc_sst8(s.ZX + f * LDV + jj, o);
      }
    }
    __syncthreads();
${walkReadout({ what: "y = diag(fq) (Q SB) + Aq Z", tiles: true, step: "Cfg::NT / 32", kp: "KP", fq: true, z: "s.Z" })}
${walkTail("s.ZX", "fl")}

// ---- split3: state-only walk, then the readout over every chunk in parallel ----
// per-chunk start states: [B][nH][nc][KP][VP] elements of T (the walk's operand rounding of S0)
template <class Cfg> __device__ __forceinline__ void seqc_state_put(const SeqcState<Cfg>& S, typename Cfg::T* dst) {
  typedef SeqcState<Cfg> St;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
#pragma unroll
  for (int s = 0; s < St::ST; ++s) {
    const int tile = w + s * St::NW;
    if (tile >= St::TILES) continue;
    const int i = (tile / St::TN) * 16 + g, j = (tile % St::TN) * 8 * St::WN + q;
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt) {
      seqc_sst2(dst + (size_t)i * Cfg::VP + j + nt * 8, S.acc[s][nt][0], S.acc[s][nt][1]);
      seqc_sst2(dst + (size_t)(i + 8) * Cfg::VP + j + nt * 8, S.acc[s][nt][2], S.acc[s][nt][3]);
    }
  }
}

// a ROWS x BV tile from shared memory (row stride lds) to global memory (row stride ldd), 16 bytes a thread
template <typename T, int ROWS, int BV> __device__ __forceinline__ void seqc_tile_out(const T* src, int lds, T* dst, size_t ldd) {
  constexpr int E = 16 / sizeof(T), PR = BV / E;
  for (int e = threadIdx.x; e < ROWS * PR; e += blockDim.x) {
    const int r = e / PR, j = (e % PR) * E;
    *reinterpret_cast<uint4*>(dst + r * ldd + j) = *reinterpret_cast<const uint4*>(src + r * lds + j);
  }
}

// the walks' copies (cp.async) of a chunk's record into pipeline stage "stage": NTH = 0, over every thread of the block
// (split3's and the grouped walks); else over the threads [32 W0, NTH), a compile-time stride (split3's walk with Z over
// every warp, CHUNK_WALK_K_SOURCE: W0 = 0 under -wk, the first warp without a Z tile under -wc)
template <class Cfg, int W0 = 0, int NTH = 0> __device__ __forceinline__ void seqc_walks_issue(const SeqcSm<Cfg>& s, int stage, const char* rec, u32 j0) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, E = 16 / sizeof(T_), LDK = Cfg::LDK, BV = Cfg::BV;
  static_assert(W0 == 0 || NTH > 32 * W0, "threads past the first W0 warps need their count");
  const T_* r = reinterpret_cast<const T_*>(rec);
  char* base = reinterpret_cast<char*>(s.X) + stage * Cfg::STAGE;
  T_* x = reinterpret_cast<T_*>(base + Cfg::W_X);
  T_* m = reinterpret_cast<T_*>(base + Cfg::W_M);
  T_* u = reinterpret_cast<T_*>(base + Cfg::W_U);
  float* eg = reinterpret_cast<float*>(base + Cfg::W_E);
  const int tid = (int)threadIdx.x - 32 * W0;
  const int nt = NTH ? NTH - 32 * W0 : (int)blockDim.x;
  if (NTH && tid < 0) return;
  for (int e = tid; e < F * (KP / E); e += nt) {
    const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
    seqc_cp16(x + f * LDK + i0, r + Rec::XO + f * KP + i0);
    if (Cfg::LR) seqc_cp16(m + f * LDK + i0, r + Rec::MO + f * KP + i0);
  }
  for (int e = tid; e < F * (BV / E); e += nt) {
    const int f = e / (BV / E), jj = (e % (BV / E)) * E;
    seqc_cp16(u + f * Cfg::LDV + jj, r + Rec::UO + f * Cfg::VP + j0 + jj);
  }
  for (int e = tid; e < KP / 4; e += nt) seqc_cp16(eg + e * 4, rec + Rec::BYTES - KP * 4 + e * 16);
}

// per (b, h, value tile), chunks in order: store S0, (low rank) Z = U0 + M S0 into the record, S' = exp(G_n) S0 + X~^T Z
template <class Cfg, class R>
__device__ void seqc_chunk_walk_s(const R& rows, char* smem, typename Cfg::T* ws, typename Cfg::T* wsS, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV, NS = Cfg::NSTAGE;
  const SeqcSm<Cfg> s(smem);
  const u32 nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, h = (blk / nvt) % nH, b = blk / (nvt * nH);
  const u32 T = rows.u.T, j0 = vt * BV, nc = (T + C - 1) / C;
  char* recs = reinterpret_cast<char*>(ws) + (size_t)(b * nH + h) * nc * Rec::BYTES;
  T_* sts = wsS + (size_t)(b * nH + h) * nc * Cfg::KP * Cfg::VP + j0;
  SeqcState<Cfg> S;
  seqc_state_load<Cfg>(S, rows, b, h, j0, K, V);
#pragma unroll
  for (int k = 0; k < NS - 1; ++k) {
    if ((u32)k < nc) seqc_walks_issue<Cfg>(s, k, recs + (size_t)k * Rec::BYTES, j0);
    seqc_cp_commit();
  }
  // S0 and (low rank) Z to their slots: with 8-value walks from their shared operand copies, 16 bytes a thread
  // (the fragments' 4-byte stores write 16-byte row pieces there), else from the fragments (bench/RESULTS.md run 7b:
  // each way 2-4% faster at the walk it is used for)
  constexpr bool VEC = Cfg::LR && BV < 16;
  for (u32 c = 0; c < nc; ++c) {
    if (!VEC) seqc_state_put<Cfg>(S, sts + (size_t)c * Cfg::KP * Cfg::VP);
    if (Cfg::LR) seqc_state_operand<Cfg>(S, s.SB);
    seqc_cp_wait<NS - 2>();
    __syncthreads();
    // every thread is past chunk c - 1: its stage takes chunk c + NS - 1
    if (c + NS - 1 < nc) seqc_walks_issue<Cfg>(s, (c + NS - 1) % NS, recs + (size_t)(c + NS - 1) * Rec::BYTES, j0);
    seqc_cp_commit();
    char* base = reinterpret_cast<char*>(s.X) + (c % NS) * Cfg::STAGE;
    const T_* x = reinterpret_cast<const T_*>(base + Cfg::W_X);
    const T_* m = reinterpret_cast<const T_*>(base + Cfg::W_M);
    const T_* u = reinterpret_cast<const T_*>(base + Cfg::W_U);
    const float* eg = reinterpret_cast<const float*>(base + Cfg::W_E);
    const T_* Z = u;
    if (Cfg::LR) {
      // Z over U0 in the record, for the readout. (SB and Z are rewritten only after the next barrier: the copies
      // read them beside the products.)
      T_* zr = reinterpret_cast<T_*>(recs + (size_t)c * Rec::BYTES) + Rec::UO + j0;
      if (VEC) seqc_tile_out<T_, Cfg::KP, BV>(s.SB, LDV, sts + (size_t)c * Cfg::KP * Cfg::VP, Cfg::VP);
      seqc_bmm<T_, false, false, SeqcWN<BV>::N, Cfg::KP>(F, BV, m, Cfg::LDK, s.SB, LDV, [&](int mm, int n, float v0, float v1) {
        const float z0 = seqc_f32(u[mm * LDV + n]) + v0, z1 = seqc_f32(u[mm * LDV + n + 1]) + v1;
        seqc_sst2(s.Z + mm * LDV + n, z0, z1);
        if (!VEC) seqc_sst2(zr + mm * Cfg::VP + n, z0, z1);
      });
      __syncthreads();
      if (VEC) seqc_tile_out<T_, F, BV>(s.Z, LDV, zr, Cfg::VP);
      Z = s.Z;
    }
    seqc_state_update<Cfg>(S, x, Z, eg);
  }
  seqc_state_store<Cfg>(S, rows, b, h, j0, K, V);
}

// a readout's copies of chunk c's record (Q~, Aq, Z = U0 or the walk's Z) and its start state S0 tile (row stride VP
// from st) into shared memory, cp.async, committed as one group (split3's readout and the grouped ones)
template <class Cfg> __device__ __forceinline__ void seqc_out_issue(const SeqcSm<Cfg>& s, const typename Cfg::T* r, const typename Cfg::T* st, u32 j0) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, BV = Cfg::BV, VP = Cfg::VP, LDK = Cfg::LDK, LDV = Cfg::LDV, E = 16 / sizeof(T_);
  const int tid = threadIdx.x, nt = blockDim.x;
  for (int e = tid; e < F * (KP / E); e += nt) {
    const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
    seqc_cp16(s.Q + f * LDK + i0, r + Rec::QO + f * KP + i0);
  }
${recordCopyAq("s.AQB")}
  for (int e = tid; e < F * (BV / E); e += nt) {
    const int f = e / (BV / E), jj = (e % (BV / E)) * E;
    seqc_cp16(s.Z + f * LDV + jj, r + Rec::UO + f * VP + j0 + jj);
  }
  for (int e = tid; e < KP * (BV / E); e += nt) {
    const int i = e / (BV / E), jj = (e % (BV / E)) * E;
    seqc_cp16(s.SB + i * LDV + jj, st + (size_t)i * VP + jj);
  }
  seqc_cp_commit();
}

// per (b, h, chunk, value tile of BV): y = Q~ S0 + Aq Z, then the post outputs
template <class Cfg, class R>
__device__ void seqc_chunk_out(const R& rows, char* smem, const typename Cfg::T* ws, const typename Cfg::T* wsS, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int C = Cfg::F / Cfg::RTP, KP = Cfg::KP, BV = Cfg::BV, VP = Cfg::VP;
  const SeqcSm<Cfg> s(smem);
  const u32 T = rows.u.T, nc = (T + C - 1) / C, nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, c = (blk / nvt) % nc, h = (blk / (nvt * nc)) % nH, b = blk / (nvt * nc * nH);
  const u32 j0 = vt * BV;
  const T_* r = reinterpret_cast<const T_*>(reinterpret_cast<const char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES);
  const T_* st = wsS + ((size_t)(b * nH + h) * nc + c) * KP * VP + j0;
  seqc_out_issue<Cfg>(s, r, st, j0);
  seqc_cp_wait<0>();
  __syncthreads();
  seqc_readout<Cfg>(s, s.Z);
  __syncthreads();
  seqc_post<Cfg>(rows, s, b, h, c * C, T, j0, V);
}
`;

/**
 * Grouped split3 (variants `-g<G>`, a diagonal chunk transition: no low rank; scalar, per-key or no decay; appended to a
 * module only where one of its variants uses it, so the other modules' sources are unchanged). The chunks split into
 * Cfg::GRP groups of ceil(nc / GRP); the walk runs the groups in parallel, each from a zero state, and stores each chunk's
 * local start state S0_local(c) as split3's walk does. Then a carry kernel walks the groups in order per state element:
 * S_in(0) = the initial state, S_in(g + 1) = D_g S_in(g) + E_g (D_g = the product of the group's exp(G_n), E_g its local
 * end state; the final state likewise). The readout forms S0(c) = S0_local(c) + diag(P_c) S_in(g(c)) in fp32 (P_c = the
 * product of exp(G_n) from the group's start to c: factors <= 1, never overflowing) before its products.
 * Workspace wsG (floats) per batch x head: P [nc][KP], D [GRP][KP], E [GRP][KP][VP], S_in [GRP][KP][VP] (Cfg::GRPT,
 * variants `-g<G>t`: S_in in the operand type over the first half of its floats, loaded by the readout into registers
 * before its record's wait; Cfg::GRPM, `-g<G>t<M>`: a readout block over M consecutive chunks of a group).
 */
export const CHUNK_GROUP_SOURCE = String.raw`
// ---- grouped split3: groups of chunks walked in parallel, a carry over the groups, the readout adds the carry ----
template <class Cfg> __device__ __forceinline__ float* seqc_group_ws(float* wsG, u32 bh, u32 nc) {
  return wsG + (size_t)bh * ((size_t)nc * Cfg::KP + (size_t)Cfg::GRP * Cfg::KP * (2u * Cfg::VP + 1u));
}
// S_in(g)'s element at e: fp32, or (Cfg::GRPT) in the operand type over the first half of the same floats
template <class Cfg> __device__ __forceinline__ void seqc_group_put_in(float* wI, size_t e, float v) {
  if (Cfg::GRPT) seqc_st(reinterpret_cast<typename Cfg::T*>(wI), e, v);
  else wI[e] = v;
}
// the state's fp32 fragments to dst[i][j] (row stride VP)
template <class Cfg> __device__ __forceinline__ void seqc_state_put_f32(const SeqcState<Cfg>& S, float* dst) {
  typedef SeqcState<Cfg> St;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
#pragma unroll
  for (int s = 0; s < St::ST; ++s) {
    const int tile = w + s * St::NW;
    if (tile >= St::TILES) continue;
    const int i = (tile / St::TN) * 16 + g, j = (tile % St::TN) * 8 * St::WN + q;
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt) {
      seqc_sst2(dst + (size_t)i * Cfg::VP + j + nt * 8, S.acc[s][nt][0], S.acc[s][nt][1]);
      seqc_sst2(dst + (size_t)(i + 8) * Cfg::VP + j + nt * 8, S.acc[s][nt][2], S.acc[s][nt][3]);
    }
  }
}

// per (b, h, group, value tile): the group's chunks in order from a zero state; S0_local per chunk, then (value tile 0)
// P_c and D_g, and the local end state E_g
template <class Cfg, class R>
__device__ void seqc_chunk_walk_g(const R& rows, char* smem, typename Cfg::T* ws, typename Cfg::T* wsS, float* wsG, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  typedef SeqcState<Cfg> St;
  static_assert(!Cfg::LR, "a grouped walk needs a diagonal chunk transition");
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, NS = Cfg::NSTAGE, KP = Cfg::KP, VP = Cfg::VP, G = Cfg::GRP;
  static_assert(KP <= Cfg::NT, "one thread per key carries the decay product");
  const SeqcSm<Cfg> s(smem);
  const u32 nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, g = (blk / nvt) % G, h = (blk / (nvt * G)) % nH, b = blk / (nvt * G * nH);
  const u32 T = rows.u.T, j0 = vt * BV, nc = (T + C - 1) / C, cpg = (nc + G - 1) / G;
  const u32 c0 = g * cpg < nc ? g * cpg : nc, c1 = c0 + cpg < nc ? c0 + cpg : nc;
  char* recs = reinterpret_cast<char*>(ws) + (size_t)(b * nH + h) * nc * Rec::BYTES;
  T_* sts = wsS + (size_t)(b * nH + h) * nc * KP * VP + j0;
  float* wg = seqc_group_ws<Cfg>(wsG, b * nH + h, nc);
  float* wD = wg + (size_t)nc * KP;
  float* wE = wD + (size_t)G * KP + (size_t)g * KP * VP + j0;
  (void)K;
  SeqcState<Cfg> S;
#pragma unroll
  for (int x = 0; x < St::ST; ++x)
#pragma unroll
    for (int nt = 0; nt < St::WN; ++nt) S.acc[x][nt][0] = S.acc[x][nt][1] = S.acc[x][nt][2] = S.acc[x][nt][3] = 0.f;
  const int tid = threadIdx.x;
  float pk = 1.f;
#pragma unroll
  for (int k = 0; k < NS - 1; ++k) {
    if (c0 + k < c1) seqc_walks_issue<Cfg>(s, k, recs + (size_t)(c0 + k) * Rec::BYTES, j0);
    seqc_cp_commit();
  }
  for (u32 c = c0; c < c1; ++c) {
    const u32 n = c - c0;
    seqc_state_put<Cfg>(S, sts + (size_t)c * KP * VP);
    seqc_cp_wait<NS - 2>();
    __syncthreads();
    // every thread is past chunk c - 1: its stage takes chunk c + NS - 1
    if (c + NS - 1 < c1) seqc_walks_issue<Cfg>(s, (n + NS - 1) % NS, recs + (size_t)(c + NS - 1) * Rec::BYTES, j0);
    seqc_cp_commit();
    char* base = reinterpret_cast<char*>(s.X) + (n % NS) * Cfg::STAGE;
    const T_* x = reinterpret_cast<const T_*>(base + Cfg::W_X);
    const T_* u = reinterpret_cast<const T_*>(base + Cfg::W_U);
    const float* eg = reinterpret_cast<const float*>(base + Cfg::W_E);
    if (vt == 0 && tid < KP) {
      wg[(size_t)c * KP + tid] = pk;
      pk *= eg[tid];
    }
    seqc_state_update<Cfg>(S, x, u, eg);
  }
  if (vt == 0 && tid < KP) wD[(size_t)g * KP + tid] = pk;
  seqc_state_put_f32<Cfg>(S, wE);
}

// per state element (b, h, i, j), the groups in order: S_in(g) stored, S_in(g + 1) = D_g S_in(g) + E_g; the final state
template <class Cfg, class R>
__device__ void seqc_chunk_carry(const R& rows, float* wsG, u32 K, u32 V, u32 nH) {
  constexpr int C = Cfg::F / Cfg::RTP, KP = Cfg::KP, VP = Cfg::VP, G = Cfg::GRP;
  const u32 nc = (rows.u.T + C - 1) / C;
  const size_t e = ((size_t)blockIdx.x + (size_t)gridDim.x * blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= (size_t)rows.u.B * nH * KP * VP) return;
  const u32 bh = (u32)(e / (KP * VP)), r = (u32)(e % (KP * VP)), i = r / VP, j = r % VP;
  const u32 h = bh % nH, b = bh / nH;
  float* wg = seqc_group_ws<Cfg>(wsG, bh, nc);
  const float* wD = wg + (size_t)nc * KP;
  const float* wE = wD + (size_t)G * KP;
  float* wI = const_cast<float*>(wE) + (size_t)G * KP * VP;
  // (rows and columns past K and V carry zeros: the walks leave E there unwritten or zero)
  const bool in = i < K && j < V;
  float st = in ? rows.loadS(b, h, i, j) : 0.f;
  for (int g = 0; g < G; ++g) {
    seqc_group_put_in<Cfg>(wI, (size_t)g * KP * VP + r, st);
    if (in) st = wD[(size_t)g * KP + i] * st + wE[(size_t)g * KP * VP + r];
  }
  if (in) rows.storeS(b, h, i, j, st);
}

// S0 += diag(P_c) S_in in fp32 over the S0 tile in shared memory, S_in in the operand type: each thread's 16-byte
// pieces of it in a[l] (element tid + l NT of the tile's KP x BV / E pieces), their rows' P_c in p[l] (Cfg::GRPT)
template <class Cfg, int NL> __device__ __forceinline__ void seqc_group_add_t(const SeqcSm<Cfg>& s, const uint4 (&a)[NL], const float (&p)[NL]) {
  typedef typename Cfg::T T_;
  constexpr int KP = Cfg::KP, BV = Cfg::BV, LDV = Cfg::LDV, E = 16 / sizeof(T_);
  const int tid = threadIdx.x;
#pragma unroll
  for (int l = 0; l < NL; ++l) {
    const int e = tid + l * Cfg::NT, i = e / (BV / E), jj = (e % (BV / E)) * E;
    if (e < KP * (BV / E)) {
      const T_* x = reinterpret_cast<const T_*>(&a[l]);
      T_* d = s.SB + i * LDV + jj;
#pragma unroll
      for (int k = 0; k < E; k += 2) seqc_sst2(d + k, seqc_f32(d[k]) + p[l] * seqc_f32(x[k]), seqc_f32(d[k + 1]) + p[l] * seqc_f32(x[k + 1]));
    }
  }
}

// per (b, h, chunk, value tile of BV): S0 = S0_local + diag(P_c) S_in(g(c)) in fp32, y = Q~ S0 + Aq Z, the post outputs
template <class Cfg, class R>
__device__ void seqc_chunk_out_g(const R& rows, char* smem, const typename Cfg::T* ws, const typename Cfg::T* wsS, float* wsG, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int C = Cfg::F / Cfg::RTP, KP = Cfg::KP, BV = Cfg::BV, VP = Cfg::VP, LDV = Cfg::LDV, E = 16 / sizeof(T_), G = Cfg::GRP;
  const SeqcSm<Cfg> s(smem);
  const u32 T = rows.u.T, nc = (T + C - 1) / C, nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, c = (blk / nvt) % nc, h = (blk / (nvt * nc)) % nH, b = blk / (nvt * nc * nH);
  const u32 j0 = vt * BV;
  const T_* r = reinterpret_cast<const T_*>(reinterpret_cast<const char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES);
  const T_* st = wsS + ((size_t)(b * nH + h) * nc + c) * KP * VP + j0;
  const int tid = threadIdx.x, nt = blockDim.x;
  seqc_out_issue<Cfg>(s, r, st, j0);
  const u32 g = c / ((nc + G - 1) / G);
  const float* wg = seqc_group_ws<Cfg>(wsG, b * nH + h, nc);
  const float* pc = wg + (size_t)c * KP;
  const float* sIn = wg + (size_t)nc * KP + (size_t)G * KP * (1u + VP) + (size_t)g * KP * VP + j0;
  if (Cfg::GRPT) {
    // S_in in the operand type: each thread's 16-byte pieces and their rows' P_c loaded before the record's wait
    constexpr int NL = (KP * (BV / E) + Cfg::NT - 1) / Cfg::NT;
    const T_* sInT = reinterpret_cast<const T_*>(wg + (size_t)nc * KP + (size_t)G * KP * (1u + VP)) + (size_t)g * KP * VP + j0;
    uint4 a[NL];
    float p[NL];
#pragma unroll
    for (int l = 0; l < NL; ++l) {
      const int e = tid + l * Cfg::NT, i = e / (BV / E), jj = (e % (BV / E)) * E;
      if (e < KP * (BV / E)) {
        a[l] = *reinterpret_cast<const uint4*>(sInT + (size_t)i * VP + jj);
        p[l] = pc[i];
      }
    }
    seqc_cp_wait<0>();
    __syncthreads();
    seqc_group_add_t<Cfg>(s, a, p);
    __syncthreads();
    seqc_readout<Cfg>(s, s.Z);
    __syncthreads();
    seqc_post<Cfg>(rows, s, b, h, c * C, T, j0, V);
    return;
  }
  seqc_cp_wait<0>();
  __syncthreads();
  for (int e = tid; e < KP * (BV / 4); e += nt) {
    const int i = e / (BV / 4), jj = (e % (BV / 4)) * 4;
    const float4 a = *reinterpret_cast<const float4*>(sIn + (size_t)i * VP + jj);
    const float p = pc[i];
    T_* d = s.SB + i * LDV + jj;
    const float d0 = seqc_f32(d[0]), d1 = seqc_f32(d[1]), d2 = seqc_f32(d[2]), d3 = seqc_f32(d[3]);
    seqc_sst2(d, d0 + p * a.x, d1 + p * a.y);
    seqc_sst2(d + 2, d2 + p * a.z, d3 + p * a.w);
  }
  __syncthreads();
  seqc_readout<Cfg>(s, s.Z);
  __syncthreads();
  seqc_post<Cfg>(rows, s, b, h, c * C, T, j0, V);
}

// per (b, h, group, run of Cfg::GRPM consecutive chunks of the group, value tile of BV), S_in in the operand type
// (Cfg::GRPT): the group's S_in tile loaded into registers once for the run; per chunk S0 = S0_local + diag(P_c) S_in,
// y = Q~ S0 + Aq Z, the post outputs
template <class Cfg, class R>
__device__ void seqc_chunk_out_gm(const R& rows, char* smem, const typename Cfg::T* ws, const typename Cfg::T* wsS, float* wsG, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int C = Cfg::F / Cfg::RTP, KP = Cfg::KP, BV = Cfg::BV, VP = Cfg::VP, E = 16 / sizeof(T_), G = Cfg::GRP, M = Cfg::GRPM;
  static_assert(Cfg::GRPT, "runs of chunks read S_in in the operand type");
  const SeqcSm<Cfg> s(smem);
  const u32 T = rows.u.T, nc = (T + C - 1) / C, nvt = (V + BV - 1) / BV, cpg = (nc + G - 1) / G, rpg = (cpg + M - 1) / M;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, q = (blk / nvt) % (G * rpg), h = (blk / (nvt * G * rpg)) % nH, b = blk / (nvt * G * rpg * nH);
  const u32 g = q / rpg, ge = (g + 1) * cpg < nc ? (g + 1) * cpg : nc;
  const u32 c0 = g * cpg + (q % rpg) * M, c1 = c0 + M < ge ? c0 + M : ge;
  if (c0 >= c1) return;
  const u32 j0 = vt * BV;
  const int tid = threadIdx.x;
  const float* wg = seqc_group_ws<Cfg>(wsG, b * nH + h, nc);
  constexpr int NL = (KP * (BV / E) + Cfg::NT - 1) / Cfg::NT;
  const T_* sInT = reinterpret_cast<const T_*>(wg + (size_t)nc * KP + (size_t)G * KP * (1u + VP)) + (size_t)g * KP * VP + j0;
  uint4 a[NL];
#pragma unroll
  for (int l = 0; l < NL; ++l) {
    const int e = tid + l * Cfg::NT, i = e / (BV / E), jj = (e % (BV / E)) * E;
    if (e < KP * (BV / E)) a[l] = *reinterpret_cast<const uint4*>(sInT + (size_t)i * VP + jj);
  }
  for (u32 c = c0; c < c1; ++c) {
    const T_* r = reinterpret_cast<const T_*>(reinterpret_cast<const char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES);
    const T_* st = wsS + ((size_t)(b * nH + h) * nc + c) * KP * VP + j0;
    seqc_out_issue<Cfg>(s, r, st, j0);
    const float* pc = wg + (size_t)c * KP;
    float p[NL];
#pragma unroll
    for (int l = 0; l < NL; ++l) {
      const int e = tid + l * Cfg::NT, i = e / (BV / E);
      if (e < KP * (BV / E)) p[l] = pc[i];
    }
    seqc_cp_wait<0>();
    __syncthreads();
    seqc_group_add_t<Cfg>(s, a, p);
    __syncthreads();
    seqc_readout<Cfg>(s, s.Z);
    __syncthreads();
    seqc_post<Cfg>(rows, s, b, h, c * C, T, j0, V);
    // every thread is past this chunk's shared tiles before the next chunk's copies land
    __syncthreads();
  }
}
`;

/**
 * split3's state walk with the chunk's low-rank product spread over the block's warps (variants `-wk` / `-wc`, config
 * flag WSPLIT; appended only to modules that use it, so the other modules' sources are unchanged). In split3's walk
 * (seqc_chunk_walk_s) `Z = U0 + M S0` has (F / 16) x (BV / 8 WN) warp tiles: 4 at 8-, 16- and 32-value walks, so 4 of
 * the 8 warps run its KP / 16 dependent k-steps (8 at K = 128) while the other 4 wait at the block barrier after it
 * (bench/RESULTS.md run 13: barrier stalls first in the walk's profile).
 *   WSPLIT = 1 (`-wk`): split-K. Warp w takes tile w % ZT and k-slice w / ZT of KS = warps / ZT slices (KP / KS k-steps
 *     each); slices 1.. store their fp32 partials to shared memory (the Y region), one barrier, slice 0 adds them, U0,
 *     and writes Z. The chain halves at K = 128 with 8 warps, for one more barrier.
 *   WSPLIT = 2 (`-wc`): the warps without a Z tile issue the next record's copies (cp.async) while Z's warps start its
 *     product, instead of every warp issuing its share first.
 * Everything else (stores of S0 and Z, the state update) is seqc_chunk_walk_s's.
 */
export const CHUNK_WALK_K_SOURCE = String.raw`
// ---- split3's walk with the low-rank product over every warp (WSPLIT 1: split-K; 2: copies on Z's idle warps) ----
template <class Cfg> struct SeqcWalkK {
  static constexpr int WN = SeqcWN<Cfg::BV>::N, TN = Cfg::BV / (8 * WN), ZT = (Cfg::F / 16) * TN, NW = Cfg::NT / 32;
  static constexpr int KS = Cfg::WSPLIT == 1 ? NW / ZT : 1, KD = Cfg::KP / KS;
  // warps that issue the next record's copies: all, or (WSPLIT 2) those past Z's tiles
  static constexpr int CW0 = Cfg::WSPLIT == 2 ? ZT : 0;
  static_assert(Cfg::LR, "the split walk spreads the low-rank product Z = U0 + M S0");
  static_assert(Cfg::WSPLIT != 1 || (KS >= 2 && Cfg::KP % (16 * KS) == 0), "split-K needs >= 2 k-slices of whole k-steps");
  static_assert(Cfg::WSPLIT != 2 || ZT < NW, "the copies need warps without a Z tile");
};
template <class Cfg, class R>
__device__ void seqc_chunk_walk_k(const R& rows, char* smem, typename Cfg::T* ws, typename Cfg::T* wsS, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  typedef SeqcWalkK<Cfg> WK;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV, LDY = Cfg::LDY, NS = Cfg::NSTAGE, WN = WK::WN;
  const SeqcSm<Cfg> s(smem);
  const u32 nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, h = (blk / nvt) % nH, b = blk / (nvt * nH);
  const u32 T = rows.u.T, j0 = vt * BV, nc = (T + C - 1) / C;
  char* recs = reinterpret_cast<char*>(ws) + (size_t)(b * nH + h) * nc * Rec::BYTES;
  T_* sts = wsS + (size_t)(b * nH + h) * nc * Cfg::KP * Cfg::VP + j0;
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, q = (l & 3) << 1;
  // this warp's Z tile and k-slice (ks >= KS: no Z work)
  const int zt = w % WK::ZT, ks = w / WK::ZT;
  const int m0 = (zt / WK::TN) * 16, n0 = (zt % WK::TN) * 8 * WN;
  SeqcState<Cfg> S;
  seqc_state_load<Cfg>(S, rows, b, h, j0, K, V);
#pragma unroll
  for (int k = 0; k < NS - 1; ++k) {
    if ((u32)k < nc) seqc_walks_issue<Cfg, WK::CW0, Cfg::NT>(s, k, recs + (size_t)k * Rec::BYTES, j0);
    seqc_cp_commit();
  }
  constexpr bool VEC = BV < 16;
  for (u32 c = 0; c < nc; ++c) {
    if (!VEC) seqc_state_put<Cfg>(S, sts + (size_t)c * Cfg::KP * Cfg::VP);
    seqc_state_operand<Cfg>(S, s.SB);
    seqc_cp_wait<NS - 2>();
    __syncthreads();
    if (c + NS - 1 < nc) seqc_walks_issue<Cfg, WK::CW0, Cfg::NT>(s, (c + NS - 1) % NS, recs + (size_t)(c + NS - 1) * Rec::BYTES, j0);
    seqc_cp_commit();
    char* base = reinterpret_cast<char*>(s.X) + (c % NS) * Cfg::STAGE;
    const T_* x = reinterpret_cast<const T_*>(base + Cfg::W_X);
    const T_* m = reinterpret_cast<const T_*>(base + Cfg::W_M);
    const T_* u = reinterpret_cast<const T_*>(base + Cfg::W_U);
    const float* eg = reinterpret_cast<const float*>(base + Cfg::W_E);
    T_* zr = reinterpret_cast<T_*>(recs + (size_t)c * Rec::BYTES) + Rec::UO + j0;
    if (VEC) seqc_tile_out<T_, Cfg::KP, BV>(s.SB, LDV, sts + (size_t)c * Cfg::KP * Cfg::VP, Cfg::VP);
    float acc[WN][4];
#pragma unroll
    for (int i = 0; i < WN; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    if (ks < WK::KS) SeqcMM<T_>::template run<false, false, WN, WK::KD>(acc, m + ks * WK::KD, Cfg::LDK, s.SB + ks * WK::KD * LDV, LDV, m0, n0);
    if (WK::KS > 1) {
      // slices 1..: partials to Y; slice 0 adds them after the barrier
      if (ks > 0 && ks < WK::KS) {
        float* y = s.Y + (ks - 1) * F * LDY;
#pragma unroll
        for (int nt = 0; nt < WN; ++nt) {
          *reinterpret_cast<float2*>(y + (m0 + g) * LDY + n0 + nt * 8 + q) = make_float2(acc[nt][0], acc[nt][1]);
          *reinterpret_cast<float2*>(y + (m0 + g + 8) * LDY + n0 + nt * 8 + q) = make_float2(acc[nt][2], acc[nt][3]);
        }
      }
      __syncthreads();
    }
    if (ks == 0) {
#pragma unroll
      for (int p = 1; p < WK::KS; ++p) {
        const float* y = s.Y + (p - 1) * F * LDY;
#pragma unroll
        for (int nt = 0; nt < WN; ++nt) {
          const float2 a = *reinterpret_cast<const float2*>(y + (m0 + g) * LDY + n0 + nt * 8 + q);
          const float2 a8 = *reinterpret_cast<const float2*>(y + (m0 + g + 8) * LDY + n0 + nt * 8 + q);
          acc[nt][0] += a.x; acc[nt][1] += a.y; acc[nt][2] += a8.x; acc[nt][3] += a8.y;
        }
      }
      // Z = U0 + M S0 for the shared operand and (16 values and more) the record, for the readout
#pragma unroll
      for (int nt = 0; nt < WN; ++nt) {
        const int n = n0 + nt * 8 + q;
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int mm = m0 + g + hh * 8;
          const float z0 = seqc_f32(u[mm * LDV + n]) + acc[nt][2 * hh], z1 = seqc_f32(u[mm * LDV + n + 1]) + acc[nt][2 * hh + 1];
          seqc_sst2(s.Z + mm * LDV + n, z0, z1);
          if (!VEC) seqc_sst2(zr + mm * Cfg::VP + n, z0, z1);
        }
      }
    }
    __syncthreads();
    if (VEC) seqc_tile_out<T_, F, BV>(s.Z, LDV, zr, Cfg::VP);
    seqc_state_update<Cfg>(S, x, s.Z, eg);
  }
  seqc_state_store<Cfg>(S, rows, b, h, j0, K, V);
}
`;
