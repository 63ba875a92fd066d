/**
 * Phase A with the record's copies and alpha v's load under the inverse (variants `...-iw-io`, configs with OVL = 1;
 * chunked-plan.ts lowers them on request): low rank with a scalar or no decay, 2-byte operands, the warp-product
 * inverse (INV = 1), alpha v loaded late (VLATE), at least 8 warps. The inverse by warp products keeps warps 0-5 busy
 * (seqc_chunk_inverse_diag on 0-3, then two rounds on 0-5 and 0-3) while the other warps wait at its three barriers;
 * here those warps ("helpers", 6 and up) do, beside it:
 *   - beside the diagonal blocks: Q~ = Q fq and X~ = X fx straight into the record (global), Aq's record copy, exp(G_n),
 *     W -> diag(beta) W~ in place (the inverse reads only A and T);
 *   - beside the first round (X read by every helper: the diagonal's barrier): alpha v's cp.async copies into X's place
 *     (this layout's O_V = O_X, where the core's phase A waits for the inverse to load them into A's place);
 *   - after the last round: each helper waits for its own copies and scales them, while warps 0-5 write T's operand.
 * Then one barrier and the core's M = T diag(beta) W~, U0 = T alpha V, stored from the mma fragments (OVL = 1, variants
 * `-iw-io`) or staged in shared memory and stored 16 bytes a thread (OVL = 2, `-iw-ios`: one more barrier, whole
 * 16-byte pieces instead of 4-byte ones). The core's phase A does the scale pass, the
 * record's copies and alpha v's load (its wait and two barriers) after the inverse, in series. Same products and
 * roundings as the core's phase A: the record is bitwise the same (test/cuda-chunked-phase-a-ovl.test.ts).
 * The inverse's rounds are seqc_chunk_inverse_w's (chunked-core.ts): both kernels take their text from
 * chunked-inverse-rounds.ts, here with the helpers' stages between them. Appended to a module only where one of its
 * configs has OVL.
 */
import { GSCALAR_TOKEN_PREFIX } from "./chunked-gscalar-prefix.ts";
import { inverseFirstRound, inverseSecondRound } from "./chunked-inverse-rounds.ts";

/** seqc_chunk_phase_a_o's Q~ store (Q~ = Q fq, fq = scale_q exp(G_q), a row), which chunked-split-qin.ts cuts. */
export const Q_STORE = `      const float sq = G[SEQC_G_SQ + f];
      if (Cfg::DECAY || sq != 1.f) {
        const float fq = Cfg::DECAY ? sq * __expf(G[SEQC_G_GQ + f]) : sq;
        seqc_sld8(s.Q + f * LDK + i0, o);
        for (int k = 0; k < 8; ++k) o[k] *= fq;
        seqc_sst8(r + Rec::QO + f * KP + i0, o);
      } else *reinterpret_cast<uint4*>(r + Rec::QO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.Q + f * LDK + i0);
`;

export const CHUNK_PHASE_A_OVL_SOURCE = String.raw`
// ==== seqc chunked phase A, the record's copies and alpha v's load under the inverse (OVL) ====
template <class Cfg, class R>
__device__ void seqc_chunk_phase_a_o(const R& rows, char* smem, typename Cfg::T* ws, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  static_assert(Cfg::LR && Cfg::DECAY < 2 && Cfg::VLATE && SeqcInvOf<Cfg>::v && sizeof(T_) == 2 && Cfg::F == 64 && Cfg::NT >= 256,
                "the overlapped phase A: low rank, a scalar or no decay, 2-byte operands, the warp-product inverse, alpha v late, >= 8 warps");
  static_assert(Cfg::O_V == Cfg::O_X && Cfg::LDVA <= Cfg::LDK, "the overlapped phase A loads alpha v into X's place");
  constexpr int F = Cfg::F, C = F / Cfg::RTP, RTP = Cfg::RTP, KP = Cfg::KP, VP = Cfg::VP, LDK = Cfg::LDK, LDA = Cfg::LDA, LDVA = Cfg::LDVA;
  constexpr int E = 16 / sizeof(T_), IW = 6, NH = Cfg::NT - 32 * IW;
  const SeqcSm<Cfg> s(smem);
  const u32 T = rows.u.T, nc = (T + C - 1) / C;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 c = blk % nc, h = (blk / nc) % nH, b = blk / (nc * nH), t0 = c * C;
  const int tid = threadIdx.x, w = tid >> 5, ht = tid - 32 * IW;
  if (tid < RTP) s.I[SEQC_I_MICRO + tid] = rows.micro(tid);
  if (tid == 0) s.I[SEQC_I_READ] = rows.readoutAt();
  __syncthreads();
  seqc_chunk_load<Cfg, VP, LDVA>(rows, s, b, h, t0, T, 0);
  __syncthreads();
  if (Cfg::DECAY == 1) seqc_chunk_gscalar<Cfg>(s);
  __syncthreads();
  seqc_chunk_mats_scalar<Cfg>(s, t0, T);
  __syncthreads();
  char* rec = reinterpret_cast<char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES;
  T_* r = reinterpret_cast<T_*>(rec);
  const float* G = s.G;
  const u32 V = rows.valueDim();
  const bool vvec = (V % 8u) == 0u;
  float* Tt = s.TT;
  const float* N = s.A;
  auto Tb = [&](int i, int j) { return Tt + i * 16 * LDA + j * 16; };
  auto Nb = [&](int i, int j) { return N + i * 16 * LDA + j * 16; };
  float cc[2][4];
  // ---- stage 0: the diagonal blocks (warps 0-3) | Q~, X~, Aq, exp(G_n) to the record, W -> diag(beta) W~ (helpers)
  seqc_chunk_inverse_diag<Cfg>(s);
  if (ht >= 0) {
    const float gn = Cfg::DECAY ? G[SEQC_G_GEND + F / RTP] : 0.f;
    for (int e = ht; e < F * (KP / 8); e += NH) {
      const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8;
      float o[8];
${Q_STORE}      if (Cfg::DECAY) {
        const float fx = __expf(gn - G[SEQC_G_GW + f]);
        seqc_sld8(s.X + f * LDK + i0, o);
        for (int k = 0; k < 8; ++k) o[k] *= fx;
        seqc_sst8(r + Rec::XO + f * KP + i0, o);
      } else *reinterpret_cast<uint4*>(r + Rec::XO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.X + f * LDK + i0);
      const float fw = G[SEQC_G_BETA + f] * (Cfg::DECAY ? __expf(G[SEQC_G_GR + f]) : 1.f);
      seqc_sld8(s.W + f * LDK + i0, o);
      for (int k = 0; k < 8; ++k) o[k] *= fw;
      seqc_sst8(s.W + f * LDK + i0, o);
    }
    for (int e = ht; e < F * (F / E); e += NH) {
      const int f = e / (F / E), n0 = (e % (F / E)) * E;
      *reinterpret_cast<uint4*>(r + Rec::AO + f * F + n0) = *reinterpret_cast<const uint4*>(s.AQB + f * Cfg::LDF + n0);
    }
    float* eg = reinterpret_cast<float*>(rec + Rec::BYTES - KP * 4);
    for (int i = ht; i < KP; i += NH) eg[i] = Cfg::DECAY ? __expf(gn) : 1.f;
  }
  __syncthreads();
  // ---- stage 1: seqc_chunk_inverse_w's first round (warps 0-5) | alpha v's copies into X's place (helpers)
  // scratch: U(0,1) N_10 T_00, U(0,2) N_32 T_22, U(0,3) Y_21, U(1,2) Y_31, U(1,3) N_20 T_00, U(2,3) N_30 T_00
  if (w < IW) {
${inverseFirstRound("cc", "bb")}
  } else {
    for (int e = ht; e < F * (VP / 8); e += NH) {
      const int f = e / (VP / 8), jj = (e % (VP / 8)) * 8, tl = f / RTP, rr = f % RTP;
      const bool real = seqc_real<Cfg>(s.I, f, t0, T);
      const T_* src = real && vvec ? rows.srcV(b, t0 + tl, rr, h) : nullptr;
      if (src && (u32)jj + 8u <= V) for (int k = 0; k < 8; k += E) seqc_cp16(s.V + f * LDVA + jj + k, src + jj + k);
      else {
        float o[8];
        if (real && !src) rows.loadV(b, t0 + tl, rr, h, jj, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(s.V + f * LDVA + jj, o);
      }
    }
    seqc_cp_commit();
  }
  __syncthreads();
  // ---- stage 2: the second round (warps 0-3)
  float* const Pz = s.P;
${inverseSecondRound("cc")}
  __syncthreads();
  // ---- stage 3: T's operand (lower block triangle, zero above; warps 0-5) | each helper's own alpha v copies, scaled
  if (w < IW) {
    for (int e = tid; e < F * (F / 2); e += 32 * IW) {
      const int m = e / (F / 2), n = (e % (F / 2)) * 2;
      const bool lower = (n / 16) <= (m / 16);
      seqc_sst2(s.TB + m * Cfg::LDF + n, lower ? Tt[m * LDA + n] : 0.f, lower ? Tt[m * LDA + n + 1] : 0.f);
    }
  } else {
    seqc_cp_wait<0>();
    for (int e = ht; e < F * (VP / 8); e += NH) {
      const int f = e / (VP / 8), jj = (e % (VP / 8)) * 8, tl = f / RTP, rr = f % RTP;
      const T_* src = seqc_real<Cfg>(s.I, f, t0, T) && vvec ? rows.srcV(b, t0 + tl, rr, h) : nullptr;
      if (!src) continue;
      const float sv = rows.scaleV(b, t0 + tl, rr, h);
      if (sv != 1.f) {
        float o[8];
        seqc_sld8(s.V + f * LDVA + jj, o);
        for (int k = 0; k < 8; ++k) o[k] *= sv;
        seqc_sst8(s.V + f * LDVA + jj, o);
      }
    }
  }
  __syncthreads();
  // M = T diag(beta) W~, U0 = T alpha V (split's record): stored from the fragments (OVL 1), or (OVL 2) staged in Q's
  // place (its record copy is out) and T's fp32 place (dead after its operand copy), then 16 bytes a thread
  if (Cfg::OVL == 1) {
    seqc_bmm<T_, false, false, 4, F>(F, KP, s.TB, Cfg::LDF, s.W, LDK, [&](int m, int n, float v0, float v1) {
      seqc_sst2(r + Rec::MO + m * KP + n, v0, v1);
    });
    seqc_bmm<T_, false, false, SeqcWN<VP>::N, F>(F, VP, s.TB, Cfg::LDF, s.V, LDVA, [&](int m, int n, float v0, float v1) {
      seqc_sst2(r + Rec::UO + m * VP + n, v0, v1);
    });
  } else {
    static_assert(Cfg::OVL != 2 || F * LDVA * (int)sizeof(T_) <= F * LDA * 4, "U0's stage in T's place");
    T_* const Ms = s.Q;
    T_* const Us = reinterpret_cast<T_*>(Tt);
    seqc_bmm<T_, false, false, 4, F>(F, KP, s.TB, Cfg::LDF, s.W, LDK, [&](int m, int n, float v0, float v1) { seqc_sst2(Ms + m * LDK + n, v0, v1); });
    seqc_bmm<T_, false, false, SeqcWN<VP>::N, F>(F, VP, s.TB, Cfg::LDF, s.V, LDVA, [&](int m, int n, float v0, float v1) { seqc_sst2(Us + m * LDVA + n, v0, v1); });
    __syncthreads();
    for (int e = tid; e < F * (KP / E); e += Cfg::NT) {
      const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
      *reinterpret_cast<uint4*>(r + Rec::MO + f * KP + i0) = *reinterpret_cast<const uint4*>(Ms + f * LDK + i0);
    }
    for (int e = tid; e < F * (VP / E); e += Cfg::NT) {
      const int f = e / (VP / E), j0 = (e % (VP / E)) * E;
      *reinterpret_cast<uint4*>(r + Rec::UO + f * VP + j0) = *reinterpret_cast<const uint4*>(Us + f * LDVA + j0);
    }
  }
}
`;

/** seqc_chunk_phase_a_o's first steps: the load, then the scalar decays' prefix between two barriers (every OVL config). */
export const STEP_G = `  seqc_chunk_load<Cfg, VP, LDVA>(rows, s, b, h, t0, T, 0);
  __syncthreads();
  if (Cfg::DECAY == 1) seqc_chunk_gscalar<Cfg>(s);
  __syncthreads();
`;
/** The same where a config has GF (variants `-iw-ios-gf`): the prefix on warps 0-1 beside the load's scale pass. */
export const STEP_G_FOLDED = `  seqc_chunk_load<Cfg, VP, LDVA>(rows, s, b, h, t0, T, 0);
  if (Cfg::DECAY == 1 && SeqcGfOf<Cfg>::v) seqc_chunk_gscalar_f<Cfg>(s);
  else {
    __syncthreads();
    if (Cfg::DECAY == 1) seqc_chunk_gscalar<Cfg>(s);
  }
  __syncthreads();
`;
if (!CHUNK_PHASE_A_OVL_SOURCE.includes(STEP_G)) throw new Error("chunked-phase-a-ovl: the load step's text moved");
/** seqc_chunk_phase_a_o's function (its text from the template line on), which chunked-split-qin.ts and chunked-phase-a-nbar.ts edit. */
export const ovlFunction = (): string => {
  const at = CHUNK_PHASE_A_OVL_SOURCE.indexOf("template <class Cfg, class R>");
  if (at < 0) throw new Error("chunked-phase-a-ovl: the overlapped phase A's template line moved");
  return CHUNK_PHASE_A_OVL_SOURCE.slice(at);
};
/**
 * The overlapped phase A for modules where a config folds the scalar decays' prefix (ChunkCfg.gfold, variants
 * `-iw-ios-gf`, on request): seqc_chunk_gscalar_f ahead of it, and the load step that calls it for configs with GF (the
 * others keep both barriers). Modules without such a config get CHUNK_PHASE_A_OVL_SOURCE, byte for byte as before.
 */
export const CHUNK_PHASE_A_OVL_GF_SOURCE = String.raw`
// ==== seqc chunked phase A (OVL): the scalar decays' prefix beside the load's scale pass (GF) ====
template <class Cfg, class C = void> struct SeqcGfOf { static constexpr int v = 0; };
template <class Cfg> struct SeqcGfOf<Cfg, decltype((void)Cfg::GF, void())> { static constexpr int v = Cfg::GF; };
// seqc_chunk_gscalar without its barriers (configs with GF, variants -gf): called right after seqc_chunk_load, whose
// barrier made tot, pre, own and qpre visible; warps 0 .. F/32 - 1 each scan every token (the same shuffles, so the same
// sums as warp 0's) and write G_r, G_w, G_q of their own 32 rows, warp 0 also G_end, beside the load's scale pass (which
// reads and writes none of these); the caller's one barrier then serves both
template <class Cfg> __device__ __forceinline__ void seqc_chunk_gscalar_f(const SeqcSm<Cfg>& s) {
  constexpr int C = Cfg::F / Cfg::RTP;
  static_assert(Cfg::F % 32 == 0 && C <= 64, "the folded prefix: whole warps of rows, at most 64 tokens");
  float* G = s.G;
  if (threadIdx.x < Cfg::F) {
    const int l = threadIdx.x & 31, f = threadIdx.x, tl = f / Cfg::RTP;
${GSCALAR_TOKEN_PREFIX}
    if (threadIdx.x < 32) {
      if (l < C) G[SEQC_G_GEND + l + 1] = a;
      if (l + 32 < C) G[SEQC_G_GEND + l + 33] = c;
      if (l == 0) G[SEQC_G_GEND] = 0.f;
    }
    // G_end[tl]: 0 at the first token, else the inclusive prefix of token tl - 1 (lane (tl - 1) % 32's a or c)
    const int p = tl > 0 ? tl - 1 : 0;
    const float pa = __shfl_sync(0xffffffffu, a, p & 31), pc = __shfl_sync(0xffffffffu, c, p & 31);
    const float ge = tl == 0 ? 0.f : p < 32 ? pa : pc;
    const float gr = ge + G[SEQC_G_PRE + f];
    G[SEQC_G_GR + f] = gr;
    G[SEQC_G_GW + f] = gr + G[SEQC_G_OWN + f];
    G[SEQC_G_GQ + f] = ge + G[SEQC_G_QPRE + tl];
  }
}
` + CHUNK_PHASE_A_OVL_SOURCE.replace(STEP_G, STEP_G_FOLDED);
