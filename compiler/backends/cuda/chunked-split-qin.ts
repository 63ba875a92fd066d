/**
 * split with low rank, Q~ left out of the record (variants `chunked-split-<io>-k<KP>-v<BV>-a<N>-iw-io[s][-gf]-q[x]i[-w512]-r<R>`,
 * configs with QIN; chunked-plan.ts lowers them on request): the overlapped phase A (OVL: low rank, a scalar or no
 * decay, 2-byte operands), split's walk.
 *
 * The core's record (SeqcRec) holds Q~ = Q fq (fq = scale_q exp(G_q) a row), 16 of its 72.5 KB a chunk at K = V = 128,
 * which phase A writes and the walk reads once per value tile for y = Q~ S0 + Aq Z only. Here phase A
 * (seqc_chunk_phase_a_oq: seqc_chunk_phase_a_o's text, chunked-phase-a-ovl.ts, with its Q~ stores cut) writes fq
 * (F floats) after exp(G_n) instead (SeqcRecQ: X~, M, Aq, U0, then exp(G_n) [KP] and fq [F] floats, 56.75 KB), and the
 * walk (seqc_chunk_walk_qi) copies q's rows from the inputs as phase A's load takes them (cp.async where the row is a
 * plain input read, else through the loader) and forms y = diag(fq) (Q S0) + Aq Z, fq on the accumulators in fp32
 * (splitd's readout). The walk reads as many bytes (q's rows instead of Q~'s); phase A writes 16 KB a chunk less
 * (at K = 128). The gate's factor on Q~'s rows is folded into the readout, not rounded into bf16.
 *
 * QIN = 2 (`-qxi`): X~ = X fx (fx = scale_x exp(G_n - G_w)) out too, fx a row after fq in the record (40.75 KB a chunk
 * at K = V = 128 against the core's 72.5); the walk copies the key rows from the inputs as well and forms the state
 * update S' = exp(G_n) S0 + X^T (diag(fx) Z) from a scaled copy of Z (splitd's ZX, stored beside Z in Z's epilogue).
 *
 * Appended to a module only where one of its configs has QIN (the module then also holds CHUNK_PHASE_A_OVL_GF_SOURCE,
 * whose SeqcGfOf and seqc_chunk_gscalar_f this phase A calls; the core's and the overlapped phase A's text unchanged).
 */
import { ovlFunction, Q_STORE, STEP_G, STEP_G_FOLDED } from "./chunked-phase-a-ovl.ts";
import { inputIssueHead, recordCopyAq, walkHead, walkPipe, walkReadout, walkTail } from "./chunked-walk-parts.ts";

/** [from, to] edits of seqc_chunk_phase_a_o's text into seqc_chunk_phase_a_oq (each `from` must occur once). */
const QIN_EDITS: [string, string][] = [
  ["__device__ void seqc_chunk_phase_a_o(", "__device__ void seqc_chunk_phase_a_oq("],
  ["  typedef SeqcRec<Cfg> Rec;\n", "  typedef SeqcRecQ<Cfg> Rec;\n"],
  [STEP_G, STEP_G_FOLDED],
  // no Q~ in the record
  ["      float o[8];\n" + Q_STORE, "      float o[8];\n"],
  // QIN 2: no X~ either
  [
    String.raw`      if (Cfg::DECAY) {
        const float fx = __expf(gn - G[SEQC_G_GW + f]);`,
    String.raw`      if (Cfg::QIN == 2) {
      } else if (Cfg::DECAY) {
        const float fx = __expf(gn - G[SEQC_G_GW + f]);`,
  ],
  // exp(G_n), then fq = scale_q exp(G_q) a row (the factor the core rounds into Q~), and under QIN 2
  // fx = scale_x exp(G_n - G_w) (X~'s factor times the copied row's scale, which the walk's raw row lacks)
  [
    String.raw`    float* eg = reinterpret_cast<float*>(rec + Rec::BYTES - KP * 4);
    for (int i = ht; i < KP; i += NH) eg[i] = Cfg::DECAY ? __expf(gn) : 1.f;
`,
    String.raw`    float* eg = reinterpret_cast<float*>(rec + Rec::FO);
    for (int i = ht; i < KP; i += NH) eg[i] = Cfg::DECAY ? __expf(gn) : 1.f;
    for (int f = ht; f < F; f += NH) {
      const float sq = G[SEQC_G_SQ + f];
      eg[KP + f] = Cfg::DECAY ? sq * __expf(G[SEQC_G_GQ + f]) : sq;
      if (Cfg::QIN == 2) eg[KP + F + f] = G[SEQC_G_SX + f] * (Cfg::DECAY ? __expf(gn - G[SEQC_G_GW + f]) : 1.f);
    }
`,
  ],
];

/** seqc_chunk_phase_a_oq's text (chunked-phase-a-nbar.ts edits it again into its named-barrier twin). */
export function qinPhaseA(): string {
  let src = ovlFunction();
  for (const [from, to] of QIN_EDITS) {
    const i = src.indexOf(from);
    if (i < 0 || src.indexOf(from, i + 1) >= 0) throw new Error(`chunked-split-qin: the overlapped phase A's text moved (${JSON.stringify(from.slice(0, 60))})`);
    src = src.slice(0, i) + to + src.slice(i + from.length);
  }
  if (src.includes("Rec::QO")) throw new Error("chunked-split-qin: a Q~ store is left");
  return src;
}

/** The end of seqc_walkq_issue and seqc_walkc_issue: X~ from the record (QIN < 2), M, Aq, the U0 tile, the floats. */
const ISSUE_TAIL = String.raw`    } else for (int k = 0; k < 8; k += E) seqc_cp16(x + f * LDK + i0 + k, r + Rec::XO + f * KP + i0 + k);
    for (int k = 0; k < 8; k += E) seqc_cp16(m + f * LDK + i0 + k, r + Rec::MO + f * KP + i0 + k);
  }
${recordCopyAq("a")}
  for (int e = tid; e < F * (BV / E); e += nt) {
    const int f = e / (BV / E), jj = (e % (BV / E)) * E;
    seqc_cp16(u + f * Cfg::LDV + jj, r + Rec::UO + f * Cfg::VP + j0 + jj);
  }
  for (int e = tid; e < (int)Rec::NFL / 4; e += nt) seqc_cp16(eg + e * 4, rec + Rec::FO + e * 16);
}`;

export const CHUNK_SPLIT_QIN_SOURCE =
  String.raw`
// ==== seqc chunked split with low rank, Q~ (QIN 2: and X~) left out of the record (QIN) ====
// record (elements of T): X~ [F][KP] (QIN 1), M [F][KP], Aq [F][F], U0 [F][VP]; then floats exp(G_n) [KP], fq [F] and
// (QIN 2) fx [F], at FO
template <class Cfg> struct SeqcRecQ {
  static constexpr size_t XO = 0, MO = XO + (Cfg::QIN == 1 ? (size_t)Cfg::F * Cfg::KP : 0), AO = MO + (size_t)Cfg::F * Cfg::KP, UO = AO + (size_t)Cfg::F * Cfg::F;
  static constexpr size_t END = UO + (size_t)Cfg::F * Cfg::VP, NFL = Cfg::KP + Cfg::QIN * Cfg::F;
  static constexpr size_t FO = ((END * sizeof(typename Cfg::T) + 15) / 16) * 16, BYTES = FO + NFL * 4;
};
` +
  qinPhaseA() +
  String.raw`
// one chunk's stage of the QIN walk: q's rows (QIN 2: and the key rows) from the inputs as phase A's load takes them,
// the record's X~ (QIN 1), M, Aq, the U0 tile, exp(G_n), fq (and fx)
${inputIssueHead("seqc_walkq_issue", "SeqcRecQ", "eg")}
  const bool kvec = (rows.keyDim() % 8u) == 0u;
  for (int e = tid; e < F * (KP / 8); e += nt) {
    const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, tl = f / RTP, rr = f % RTP;
    const u32 t = t0 + tl;
    const bool qreal = rr == 0 && t < T, inK = kvec && (u32)i0 + 8u <= rows.keyDim();
    const T_* src = qreal && kvec ? rows.srcQ(b, t, h) : nullptr;
    if (src && inK) for (int k = 0; k < 8; k += E) seqc_cp16(q + f * LDK + i0 + k, src + i0 + k);
    else {
      float o[8];
      if (qreal && !src) rows.loadQ(b, t, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
      seqc_sst8(q + f * LDK + i0, o);
    }
    if (Cfg::QIN == 2) {
      const bool real = seqc_real<Cfg>(s.I, f, t0, T);
      const T_* xs = real && kvec ? rows.srcX(b, t, rr, h) : nullptr;
      if (xs && inK) for (int k = 0; k < 8; k += E) seqc_cp16(x + f * LDK + i0 + k, xs + i0 + k);
      else {
        float o[8];
        if (real && !xs) rows.loadX(b, t, rr, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(x + f * LDK + i0, o);
      }
${ISSUE_TAIL}

template <class Cfg, class R>
__device__ void seqc_chunk_walk_qi(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRecQ<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV, KP = Cfg::KP;
  static_assert(Cfg::LR && Cfg::DECAY < 2 && sizeof(T_) == 2, "QIN: low rank, a scalar or no decay, 2-byte operands");
${walkHead(true)}
${walkPipe({ issue: "seqc_walkq_issue", inputs: true, m: true, floats: "eg" })}
    const float* fq = eg + KP;
    // Z = U0 + M S0 (QIN 2: and its copy scaled by fx for the state update, splitd's ZX)
    const float* fx = eg + KP + F;
    seqc_bmm<T_, false, false, SeqcWN<BV>::N, KP>(F, BV, m, Cfg::LDK, s.SB, LDV, [&](int mm, int n, float v0, float v1) {
      const float z0 = seqc_f32(u[mm * LDV + n]) + v0, z1 = seqc_f32(u[mm * LDV + n + 1]) + v1;
      seqc_sst2(s.Z + mm * LDV + n, z0, z1);
      if (Cfg::QIN == 2) seqc_sst2(s.ZX + mm * LDV + n, fx[mm] * z0, fx[mm] * z1);
    });
    __syncthreads();
${walkReadout({ what: "y = diag(fq) (Q SB) + Aq Z", tiles: true, step: "Cfg::NT / 32", kp: "KP", fq: true, z: "s.Z" })}
${walkTail("Cfg::QIN == 2 ? s.ZX : s.Z", "eg")}
`;

/** The -wc walk's readout: fq's factors only with QIN (1 where Q~ is in the record). */
const walkcReadout = walkReadout({ what: "y = diag(fq) (Q SB) + Aq Z (QIN 0: Q~ SB + Aq Z)", tiles: true, step: "NW", kp: "KP", fq: true, z: "s.Z" });
const FQ_LINE = "        const float f0 = fq[m0 + g], f1 = fq[m0 + g + 8];";
if (!walkcReadout.includes(FQ_LINE)) throw new Error("chunked-split-qin: the readout's fq line moved");

/**
 * split's low-rank walk with the next record's copies on the warps without a Z tile (walk configs with `wcopy`,
 * variants `...-iw-io[s][-gf][-q[x]i]-wc-w512`): the core's walk (and seqc_chunk_walk_qi) issue chunk c + 1's copies on
 * every thread at the top of chunk c, before its wait and barrier, so the copies' address and cp.async instructions
 * sit on the chain of the warps that then form Z = U0 + M S0 (8 of 16 at 64 values, 4 at 32) and the readout. Here
 * the warps without a Z tile issue them after chunk c's barrier, beside Z (stage (c + 1) % 2 held chunk c - 1, done
 * before that barrier), and every thread waits for all of its copies (wait 0) at the top of chunk c + 1: split3's
 * `-wc` (chunked-core.ts CHUNK_WALK_K_SOURCE) for split's walk. The record as phase A wrote it: the core's (QIN 0,
 * after seqc_chunk_phase_a_o) or SeqcRecQ (QIN 1, 2). Appended (after CHUNK_SPLIT_QIN_SOURCE, whose SeqcRecQ it names)
 * only to modules where a config has `wcopy`.
 */
export const CHUNK_SPLIT_WC_SOURCE = String.raw`
// ---- split's walk, the next record's copies on the warps without a Z tile (wcopy) ----
template <class Cfg, class C = void> struct SeqcQinOf { static constexpr int v = 0; };
template <class Cfg> struct SeqcQinOf<Cfg, decltype((void)Cfg::QIN, void())> { static constexpr int v = Cfg::QIN; };
// the record of a QIN config: the core's (QO: Q~; floats exp(G_n) [KP] at its end) or SeqcRecQ (no Q~; floats at FO)
template <class Cfg, int Q = SeqcQinOf<Cfg>::v> struct SeqcRecOf {
  typedef SeqcRecQ<Cfg> R;
  static constexpr size_t QO = 0, XO = R::XO, MO = R::MO, AO = R::AO, UO = R::UO, BYTES = R::BYTES, FO = R::FO, NFL = R::NFL;
};
template <class Cfg> struct SeqcRecOf<Cfg, 0> {
  typedef SeqcRec<Cfg> R;
  static constexpr size_t QO = R::QO, XO = R::XO, MO = R::MO, AO = R::AO, UO = R::UO, BYTES = R::BYTES, FO = R::BYTES - Cfg::KP * 4, NFL = Cfg::KP;
};

// a q row's (rr < 0) or key row's (row rr of token t) 8 values at i0 through the loader (load), else zeros, to dst: the
// issue's rare path, out of line (the walk runs at its register limit)
#ifndef SEQC_NOINLINE
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SEQC_NOINLINE __noinline__
#else
#define SEQC_NOINLINE
#endif
#endif
template <class Cfg, class R>
__device__ SEQC_NOINLINE void seqc_walkc_slow(const R& rows, typename Cfg::T* dst, bool load, int rr, u32 b, u32 t, u32 h, u32 i0) {
  float o[8];
  if (load && rr < 0) rows.loadQ(b, t, h, i0, o);
  else if (load) rows.loadX(b, t, (u32)rr, h, i0, o);
  else for (int k = 0; k < 8; ++k) o[k] = 0.f;
  seqc_sst8(dst, o);
}

// chunk t0's stage: q (QIN >= 1) and the key rows (QIN 2) from the inputs as phase A's load takes them, else Q~ and X~
// from the record; M, Aq, the U0 tile and the floats from the record; threads tid of nt (the issuing warps')
template <class Cfg, class R>
__device__ __forceinline__ void seqc_walkc_issue(const R& rows, const SeqcSm<Cfg>& s, int stage, const char* rec, u32 b, u32 h, u32 t0, u32 T, u32 j0, int tid, int nt) {
  typedef typename Cfg::T T_;
  typedef SeqcRecOf<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, E = 16 / sizeof(T_), LDK = Cfg::LDK, BV = Cfg::BV, QIN = SeqcQinOf<Cfg>::v;
  const T_* r = reinterpret_cast<const T_*>(rec);
  char* base = reinterpret_cast<char*>(s.X) + stage * Cfg::STAGE;
  T_* q = reinterpret_cast<T_*>(base + Cfg::W_Q);
  T_* x = reinterpret_cast<T_*>(base + Cfg::W_X);
  T_* m = reinterpret_cast<T_*>(base + Cfg::W_M);
  T_* a = reinterpret_cast<T_*>(base + Cfg::W_A);
  T_* u = reinterpret_cast<T_*>(base + Cfg::W_U);
  float* eg = reinterpret_cast<float*>(base + Cfg::W_E);
  const bool kvec = (rows.keyDim() % 8u) == 0u;
  for (int e = tid; e < F * (KP / 8); e += nt) {
    const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8, tl = f / RTP, rr = f % RTP;
    const u32 t = t0 + tl;
    const bool inK = kvec && (u32)i0 + 8u <= rows.keyDim();
    if (QIN >= 1) {
      const bool qreal = rr == 0 && t < T;
      const T_* src = qreal && kvec ? rows.srcQ(b, t, h) : nullptr;
      if (src && inK) for (int k = 0; k < 8; k += E) seqc_cp16(q + f * LDK + i0 + k, src + i0 + k);
      else seqc_walkc_slow<Cfg>(rows, q + f * LDK + i0, qreal && !src, -1, b, t, h, i0);
    } else for (int k = 0; k < 8; k += E) seqc_cp16(q + f * LDK + i0 + k, r + Rec::QO + f * KP + i0 + k);
    if (QIN == 2) {
      const bool real = seqc_real<Cfg>(s.I, f, t0, T);
      const T_* xs = real && kvec ? rows.srcX(b, t, rr, h) : nullptr;
      if (xs && inK) for (int k = 0; k < 8; k += E) seqc_cp16(x + f * LDK + i0 + k, xs + i0 + k);
      else seqc_walkc_slow<Cfg>(rows, x + f * LDK + i0, real && !xs, rr, b, t, h, i0);
${ISSUE_TAIL}

template <class Cfg, class R>
__device__ void seqc_chunk_walk_c(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRecOf<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV, KP = Cfg::KP, NW = Cfg::NT / 32, NS = Cfg::NSTAGE;
  constexpr int QIN = SeqcQinOf<Cfg>::v;
  // Z's warp tiles (seqc_bmm's 16 x 8 WN tiles, taken by warps 0 .. ZT - 1); the others issue the copies
  constexpr int ZT = (F / 16) * (BV / (8 * SeqcWN<BV>::N));
  static_assert(Cfg::LR && Cfg::DECAY < 2 && sizeof(T_) == 2 && NS == 2 && ZT < NW, "wcopy: low rank, a scalar or no decay, 2-byte operands, two stages, warps without a Z tile");
${walkHead(true)}
  if (nc > 0u) seqc_walkc_issue<Cfg>(rows, s, 0, recs, b, h, 0u, T, j0, threadIdx.x, Cfg::NT);
  seqc_cp_commit();
  for (u32 c = 0; c < nc; ++c) {
    const int st = c % NS;
    seqc_state_operand<Cfg>(S, s.SB);
    seqc_cp_wait<0>();
    __syncthreads();
    char* base = reinterpret_cast<char*>(s.X) + st * Cfg::STAGE;
    const T_* q = reinterpret_cast<const T_*>(base + Cfg::W_Q);
    const T_* x = reinterpret_cast<const T_*>(base + Cfg::W_X);
    const T_* m = reinterpret_cast<const T_*>(base + Cfg::W_M);
    const T_* a = reinterpret_cast<const T_*>(base + Cfg::W_A);
    const T_* u = reinterpret_cast<const T_*>(base + Cfg::W_U);
    const float* eg = reinterpret_cast<const float*>(base + Cfg::W_E);
    // chunk c + 1's copies on the warps without a Z tile, beside Z (its stage held chunk c - 1, done before the barrier above)
    if ((int)(threadIdx.x >> 5) >= ZT) {
      if (c + 1 < nc) seqc_walkc_issue<Cfg>(rows, s, (c + 1) % NS, recs + (size_t)(c + 1) * Rec::BYTES, b, h, (c + 1) * C, T, j0, (int)threadIdx.x - 32 * ZT, Cfg::NT - 32 * ZT);
      seqc_cp_commit();
    }
    const float* fq = eg + KP;
    // Z = U0 + M S0 (QIN 2: and its copy scaled by fx for the state update)
    const float* fx = eg + KP + F;
    seqc_bmm<T_, false, false, SeqcWN<BV>::N, KP>(F, BV, m, Cfg::LDK, s.SB, LDV, [&](int mm, int n, float v0, float v1) {
      const float z0 = seqc_f32(u[mm * LDV + n]) + v0, z1 = seqc_f32(u[mm * LDV + n + 1]) + v1;
      seqc_sst2(s.Z + mm * LDV + n, z0, z1);
      if (QIN == 2) seqc_sst2(s.ZX + mm * LDV + n, fx[mm] * z0, fx[mm] * z1);
    });
    __syncthreads();
${walkcReadout.replace(FQ_LINE, "        const float f0 = QIN ? fq[m0 + g] : 1.f, f1 = QIN ? fq[m0 + g + 8] : 1.f;")}
${walkTail("QIN == 2 ? s.ZX : s.Z", "eg")}
`;
