/**
 * split without low rank, alpha v left out of the record (variants `chunked-split-<io>-k<KP>-v<BV>[-a<N>]-vi[b][-w512]-r<R>`,
 * configs with VIN = 1 or 2; chunked-plan.ts lowers them): a scalar or no decay, no stabiliser or value columns, 2-byte
 * operands.
 *
 * Without low rank the core's record (SeqcRec) holds U0 = alpha v as phase A loaded it: phase A reads v and writes it
 * again, and the walk reads it back, so at K = V = 128 a quarter of the record's bytes and a third of phase A's input
 * bytes are a copy. Here phase A (seqc_chunk_phase_a_v) loads no v (no V region: at K = 128 its shared memory fits four
 * blocks per SM instead of three) and writes Q~, X~, Aq and exp(G_n) only (SeqcRecV); the walk (seqc_chunk_walk_v)
 * copies v's value tile for each chunk from the inputs (cp.async where the row is a plain input read, else through the
 * loader, as splitd's walk does). A copied row's scalar alpha (scaleV) multiplies, in the record, the row of X~ and the
 * column of Aq that meet it (y = Q~ S0 + (Aq diag(alpha)) V, S' = exp(G_n) S0 + (diag(alpha) X~)^T V); rows through the
 * loader carry it already (alpha 1 in the record).
 *
 * VIN = 2 (`-vib`): the walk's readout y = Q~ S0 + Aq V in warp tiles of half the width where the block has at least
 * twice as many warps as the readout has tiles (512 threads over 64 values: 16 tiles of 16 x 16 instead of 8 of
 * 16 x 32, one a warp beside the warp's state-update tile, instead of the first 8 warps taking both).
 *
 * The loads, the decays, Aq, the state's tiles and the post are the core's (seqc_chunk_prepare, seqc_state_*,
 * seqc_post). Appended to a module only where one of its configs uses it (CHUNK_CORE_SOURCE is unchanged).
 */
import { phaseAHead, recordCopyAq, walkHead, walkPipe, walkReadout, walkStage, walkTail } from "./chunked-walk-parts.ts";

export const CHUNK_SPLIT_VIN_SOURCE = String.raw`
// ==== seqc chunked split without alpha v in the record (VIN) ====
// record (elements of T): Q~ [F][KP], X~ [F][KP], Aq [F][F]; then exp(G_n) [KP] floats
template <class Cfg> struct SeqcRecV {
  static constexpr size_t QO = 0, XO = QO + (size_t)Cfg::F * Cfg::KP, AO = XO + (size_t)Cfg::F * Cfg::KP, END = AO + (size_t)Cfg::F * Cfg::F;
  static constexpr size_t BYTES = ((END * sizeof(typename Cfg::T) + 15) / 16) * 16 + Cfg::KP * 4;
};

// alpha v's row f as the walk takes it: the input row (scaled by alpha in the record), or nullptr (the loader's value)
template <class Cfg, class R> __device__ __forceinline__ const typename Cfg::T* seqc_vin_src(const R& rows, const int* I, int f, u32 b, u32 h, u32 t0, u32 T) {
  const bool real = seqc_real<Cfg>(I, f, t0, T);
  return real && (rows.valueDim() % 8u) == 0u ? rows.srcV(b, t0 + f / Cfg::RTP, f % Cfg::RTP, h) : nullptr;
}

template <class Cfg, class R>
__device__ void seqc_chunk_phase_a_v(const R& rows, char* smem, typename Cfg::T* ws, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRecV<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, KP = Cfg::KP, LDK = Cfg::LDK;
  static_assert(!Cfg::LR && Cfg::DECAY != 2, "VIN: no low rank, a scalar or no decay");
${phaseAHead()}
  // alpha of the rows the walk copies raw (1 for the loader's rows and padding); prepare's barriers publish it
  if (threadIdx.x < F) {
    const int f = threadIdx.x;
    const T_* src = seqc_vin_src<Cfg>(rows, s.I, f, b, h, c * C, T);
    s.G[SEQC_G_SV + f] = src ? rows.scaleV(b, c * C + f / Cfg::RTP, f % Cfg::RTP, h) : 1.f;
  }
  seqc_chunk_prepare<Cfg, 0, Cfg::LDVA>(rows, s, b, h, c * C, T, 0);
  char* rec = reinterpret_cast<char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES;
  T_* r = reinterpret_cast<T_*>(rec);
  const float* sv = s.G + SEQC_G_SV;
  const int tid = threadIdx.x, nt = blockDim.x;
  constexpr int E = 16 / sizeof(T_);
  static_assert(E == 8, "VIN: 2-byte operands");
  for (int e = tid; e < F * (KP / E); e += nt) {
    const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
    *reinterpret_cast<uint4*>(r + Rec::QO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.Q + f * LDK + i0);
    // X~'s row times alpha
    const float a = sv[f];
    if (a != 1.f) {
      float o[8];
      seqc_sld8(s.X + f * LDK + i0, o);
#pragma unroll
      for (int k = 0; k < 8; ++k) o[k] *= a;
      seqc_sst8(r + Rec::XO + f * KP + i0, o);
    } else *reinterpret_cast<uint4*>(r + Rec::XO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.X + f * LDK + i0);
  }
  for (int e = tid; e < F * (F / E); e += nt) {
    const int f = e / (F / E), n0 = (e % (F / E)) * E;
    // Aq's columns times alpha
    bool one = true;
#pragma unroll
    for (int k = 0; k < 8; ++k) one = one && sv[n0 + k] == 1.f;
    if (!one) {
      float o[8];
      seqc_sld8(s.AQB + f * Cfg::LDF + n0, o);
#pragma unroll
      for (int k = 0; k < 8; ++k) o[k] *= sv[n0 + k];
      seqc_sst8(r + Rec::AO + f * F + n0, o);
    } else *reinterpret_cast<uint4*>(r + Rec::AO + f * F + n0) = *reinterpret_cast<const uint4*>(s.AQB + f * Cfg::LDF + n0);
  }
  float* eg = reinterpret_cast<float*>(rec + Rec::BYTES - KP * 4);
  for (int i = tid; i < KP; i += nt) eg[i] = s.G[SEQC_G_EGN + i];
}

// one chunk's stage: the record's Q~, X~, Aq and exp(G_n), and v's value tile [j0, j0 + BV) from the inputs
template <class Cfg, class R>
__device__ __forceinline__ void seqc_walkv_issue(const R& rows, const SeqcSm<Cfg>& s, int stage, const char* rec, u32 b, u32 h, u32 t0, u32 T, u32 j0) {
  typedef typename Cfg::T T_;
  typedef SeqcRecV<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, E = 16 / sizeof(T_), LDK = Cfg::LDK, BV = Cfg::BV;
${walkStage({ m: false, floats: "eg" })}
  const u32 V = rows.valueDim();
  for (int e = tid; e < F * (KP / E); e += nt) {
    const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
    seqc_cp16(q + f * LDK + i0, r + Rec::QO + f * KP + i0);
    seqc_cp16(x + f * LDK + i0, r + Rec::XO + f * KP + i0);
  }
${recordCopyAq("a")}
  for (int e = tid; e < F * (BV / 8); e += nt) {
    const int f = e / (BV / 8), jj = (e % (BV / 8)) * 8;
    const T_* src = seqc_vin_src<Cfg>(rows, s.I, f, b, h, t0, T);
    if (src && j0 + jj + 8u <= V) seqc_cp16(u + f * Cfg::LDV + jj, src + j0 + jj);
    else {
      float o[8];
      if (!src && seqc_real<Cfg>(s.I, f, t0, T)) rows.loadV(b, t0 + f / Cfg::RTP, f % Cfg::RTP, h, j0 + jj, o);
      else for (int k = 0; k < 8; ++k) o[k] = 0.f;
      seqc_sst8(u + f * Cfg::LDV + jj, o);
    }
  }
  for (int e = tid; e < KP / 4; e += nt) seqc_cp16(eg + e * 4, rec + Rec::BYTES - KP * 4 + e * 16);
}

template <class Cfg, class R>
__device__ void seqc_chunk_walk_v(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRecV<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV, NW = Cfg::NT / 32;
  static_assert(!Cfg::LR && Cfg::DECAY != 2, "VIN: no low rank, a scalar or no decay");
  // the readout's warp tiles: 16 x 8 WN, WN halved under VIN = 2 where the block has >= twice as many warps as tiles
  constexpr int WN0 = SeqcWN<BV>::N, TILES0 = (F / 16) * (BV / (8 * WN0));
  constexpr int WN = Cfg::VIN == 2 && WN0 > 1 && 2 * TILES0 <= NW ? WN0 / 2 : WN0, TN = BV / (8 * WN), TILES = (F / 16) * TN;
${walkHead(true)}
${walkPipe({ issue: "seqc_walkv_issue", inputs: true, m: false, floats: "eg" })}
${walkReadout({ what: "y = Q~ SB + Aq V", tiles: false, step: "NW", kp: "Cfg::KP", fq: false, z: "u" })}
${walkTail("u", "eg")}
`;
