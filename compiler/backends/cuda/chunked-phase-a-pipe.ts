/**
 * Phase A software-pipelined (variants `...-ap<M>`, configs with PIPE = M; chunked-plan.ts lowers them on request):
 * low rank with a scalar or no decay, 2-byte operands, alpha v loaded late (VLATE). A block takes the (batch, head,
 * chunk) items blk, blk + nblk, blk + 2 nblk, ... (nblk = ceil(items / M): M or M - 1 items a block) and, before it
 * computes an item, issues the next item's cp.async copies of its rows (w, q, x) into the other of two [W; Q; X]
 * buffers (O_W.. and O_B1..), so the copies run under the current item's products and inverse instead of in front of
 * them (chunked run 13: 0.09-0.14 ms of phase A's loads at K = 64 overlapped nothing). The staged item's per-row
 * values (the copied rows' scales, beta, the scalar decays) are read into registers of the threads that load them and
 * written to G only after the previous item is done with G. alpha v's copies (into A's place) are issued right after
 * the inverse and run under the scale pass (the core's phase A issues them after it). Everything else is the core's
 * (seqc_chunk_gscalar, _mats_scalar, _inverse(_w), _scale, _issue_v, _scale_v) and the record is split's (SeqcRec).
 * Appended to a module only where one of its configs pipelines (CHUNK_CORE_SOURCE is unchanged).
 */
export const CHUNK_PHASE_A_PIPE_SOURCE = String.raw`
// ==== seqc chunked phase A, software-pipelined (PIPE items a block) ====
// the staged item's per-row values, in registers of the threads that read them: element e = tid + l NT of the F x KP/8
// row pieces (its row's scales where e starts a row), beta (tid < F), scalar decays (tid < C)
template <class Cfg> struct SeqcPipeStage {
  static constexpr int NL = (Cfg::F * (Cfg::KP / 8) + Cfg::NT - 1) / Cfg::NT;
  float sx[NL], sw[NL], sq[NL];
  float beta, pre[Cfg::RTP], own[Cfg::RTP], qpre, tot;
};
// issue one item's row copies into s's W, Q, X (rows that are not plain copies go through the loader and are stored
// now), start its alpha v rows towards L2, read its per-row values into st; one commit group
template <class Cfg, class R>
__device__ __forceinline__ void seqc_pipe_issue(const R& rows, const SeqcSm<Cfg>& s, SeqcPipeStage<Cfg>& st, u32 b, u32 h, u32 t0, u32 T) {
  typedef typename Cfg::T T_;
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, LDK = Cfg::LDK, E = 16 / (int)sizeof(T_), NL = SeqcPipeStage<Cfg>::NL;
  const int tid = threadIdx.x;
  const u32 K = rows.keyDim(), V = rows.valueDim();
  const bool kvec = (K % 8u) == 0u;
#pragma unroll
  for (int l = 0; l < NL; ++l) {
    const int e = tid + l * Cfg::NT;
    st.sx[l] = st.sw[l] = st.sq[l] = 1.f;
    if (e >= F * (KP / 8)) continue;
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
      if (i0 == 0 && src) st.sx[l] = rows.scaleX(b, t, r, h);
    }
    {
      const T_* src = real && kvec ? rows.srcW(b, t, r, h) : nullptr;
      if (src && inK) for (int c = 0; c < 8; c += E) seqc_cp16(s.W + f * LDK + i0 + c, src + i0 + c);
      else {
        if (real && !src) rows.loadW(b, t, r, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(s.W + f * LDK + i0, o);
      }
      if (i0 == 0 && src) st.sw[l] = rows.scaleW(b, t, r, h);
    }
    {
      const bool qreal = r == 0 && t < T;
      const T_* src = qreal && kvec ? rows.srcQ(b, t, h) : nullptr;
      if (src && inK) for (int c = 0; c < 8; c += E) seqc_cp16(s.Q + f * LDK + i0 + c, src + i0 + c);
      else {
        if (qreal && !src) rows.loadQ(b, t, h, i0, o); else for (int k = 0; k < 8; ++k) o[k] = 0.f;
        seqc_sst8(s.Q + f * LDK + i0, o);
      }
      if (i0 == 0 && src) st.sq[l] = rows.scaleQ(b, t, h);
    }
  }
  if ((V % 8u) == 0u) {
    // alpha v is loaded after the inverse (into A's place): its rows towards L2, one 128-byte line each
    constexpr int LPR = (Cfg::VP * (int)sizeof(T_) + 127) / 128, EL = 128 / (int)sizeof(T_);
    for (int e = tid; e < F * LPR; e += Cfg::NT) {
      const int f = e / LPR, k = e % LPR;
      if (!seqc_real<Cfg>(s.I, f, t0, T)) continue;
      const T_* src = rows.srcV(b, t0 + f / RTP, f % RTP, h);
      if (src && (u32)(k * EL) < V) seqc_prefetch_l2(src + k * EL);
    }
  }
  seqc_cp_commit();
  st.beta = 0.f;
  if (tid < F && seqc_real<Cfg>(s.I, tid, t0, T)) st.beta = rows.beta(b, t0 + tid / RTP, tid % RTP, h);
  if (Cfg::DECAY == 1) {
    st.qpre = st.tot = 0.f;
    for (int r = 0; r < RTP; ++r) st.pre[r] = st.own[r] = 0.f;
    if (tid < F / RTP && t0 + tid < T) rows.template decayScalar<RTP>(b, t0 + tid, h, st.pre, st.own, st.qpre, st.tot);
  }
}
// the staged item's per-row values to G (G free: the previous item is done)
template <class Cfg> __device__ __forceinline__ void seqc_pipe_put(const SeqcSm<Cfg>& s, const SeqcPipeStage<Cfg>& st) {
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, NL = SeqcPipeStage<Cfg>::NL;
  const int tid = threadIdx.x;
  float* G = s.G;
#pragma unroll
  for (int l = 0; l < NL; ++l) {
    const int e = tid + l * Cfg::NT;
    if (e < F * (KP / 8) && e % (KP / 8) == 0) {
      const int f = e / (KP / 8);
      G[SEQC_G_SX + f] = st.sx[l];
      G[SEQC_G_SW + f] = st.sw[l];
      G[SEQC_G_SQ + f] = st.sq[l];
    }
  }
  if (tid < F) G[SEQC_G_BETA + tid] = st.beta;
  if (Cfg::DECAY == 1 && tid < F / RTP) {
    for (int r = 0; r < RTP; ++r) { G[SEQC_G_PRE + tid * RTP + r] = st.pre[r]; G[SEQC_G_OWN + tid * RTP + r] = st.own[r]; }
    G[SEQC_G_TOT + tid] = st.tot;
    G[SEQC_G_QPRE + tid] = st.qpre;
  }
}
// scales of the copied key rows, in place (q keeps bf16(q): sq is applied in fp32 by the mats and the scale pass)
template <class Cfg> __device__ __forceinline__ void seqc_pipe_scale_rows(const SeqcSm<Cfg>& s) {
  constexpr int F = Cfg::F, KP = Cfg::KP, LDK = Cfg::LDK;
  const float* G = s.G;
  for (int e = threadIdx.x; e < F * (KP / 8); e += Cfg::NT) {
    const int f = e / (KP / 8), i0 = (e % (KP / 8)) * 8;
    float o[8];
    const float sx = G[SEQC_G_SX + f], sw = G[SEQC_G_SW + f];
    if (sx != 1.f) { seqc_sld8(s.X + f * LDK + i0, o); for (int k = 0; k < 8; ++k) o[k] *= sx; seqc_sst8(s.X + f * LDK + i0, o); }
    if (sw != 1.f) { seqc_sld8(s.W + f * LDK + i0, o); for (int k = 0; k < 8; ++k) o[k] *= sw; seqc_sst8(s.W + f * LDK + i0, o); }
  }
}
template <class Cfg, class R>
__device__ void seqc_chunk_phase_a_p(const R& rows, char* smem, typename Cfg::T* ws, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  static_assert(Cfg::LR && Cfg::DECAY < 2 && Cfg::VLATE && sizeof(T_) == 2, "the pipelined phase A: low rank, a scalar or no decay, 2-byte operands, alpha v late");
  constexpr int F = Cfg::F, C = F / Cfg::RTP, KP = Cfg::KP, VP = Cfg::VP, LDK = Cfg::LDK, E = 16 / sizeof(T_);
  const u32 T = rows.u.T, nc = (T + C - 1) / C, n = rows.u.B * nH * nc, nblk = (n + Cfg::PIPE - 1) / Cfg::PIPE;
  u32 it = blockIdx.x + gridDim.x * blockIdx.y;
  if (it >= nblk) return;
  SeqcSm<Cfg> s(smem);
  // buffer k & 1 of item k: [W; Q; X] at O_W, or the same layout at O_B1
  T_* const w0 = s.W;
  T_* const w1 = reinterpret_cast<T_*>(smem + Cfg::O_B1);
  constexpr int OQ = (Cfg::O_Q - Cfg::O_W) / (int)sizeof(T_), OX = (Cfg::O_X - Cfg::O_W) / (int)sizeof(T_);
  if (threadIdx.x < Cfg::RTP) s.I[SEQC_I_MICRO + threadIdx.x] = rows.micro(threadIdx.x);
  if (threadIdx.x == 0) s.I[SEQC_I_READ] = rows.readoutAt();
  __syncthreads();
  SeqcPipeStage<Cfg> st;
  {
    const u32 c = it % nc, h = (it / nc) % nH, b = it / (nc * nH);
    seqc_pipe_issue<Cfg>(rows, s, st, b, h, c * C, T);
  }
  for (u32 k = 0; it < n; ++k, it += nblk) {
    const u32 c = it % nc, h = (it / nc) % nH, b = it / (nc * nH), t0 = c * C;
    T_* const wb = (k & 1u) ? w1 : w0;
    s.W = wb; s.Q = wb + OQ; s.X = wb + OX;
    seqc_pipe_put<Cfg>(s, st);
    if (it + nblk < n) {
      // the next item's copies into the other buffer (free: its item ended at the last barrier)
      const u32 nx = it + nblk, c2 = nx % nc, h2 = (nx / nc) % nH, b2 = nx / (nc * nH);
      T_* const wn = (k & 1u) ? w0 : w1;
      s.W = wn; s.Q = wn + OQ; s.X = wn + OX;
      seqc_pipe_issue<Cfg>(rows, s, st, b2, h2, c2 * C, T);
      s.W = wb; s.Q = wb + OQ; s.X = wb + OX;
      seqc_cp_wait<1>();
    } else seqc_cp_wait<0>();
    __syncthreads();
    seqc_pipe_scale_rows<Cfg>(s);
    __syncthreads();
    if (Cfg::DECAY == 1) seqc_chunk_gscalar<Cfg>(s);
    __syncthreads();
    seqc_chunk_mats_scalar<Cfg>(s, t0, T);
    __syncthreads();
    if (SeqcInvOf<Cfg>::v) seqc_chunk_inverse_w<Cfg>(s);
    else seqc_chunk_inverse<Cfg>(s);
    // alpha v into A's place (N is dead: the inverse ends at a barrier), copied while the scale pass runs
    seqc_chunk_issue_v<Cfg, VP, Cfg::LDVA>(rows, s, b, h, t0, T, 0);
    seqc_cp_commit();
    seqc_chunk_scale<Cfg>(s);
    seqc_cp_wait<0>();
    __syncthreads();
    seqc_chunk_scale_v<Cfg, VP, Cfg::LDVA>(s);
    __syncthreads();
    // the record (split's)
    char* rec = reinterpret_cast<char*>(ws) + ((size_t)(b * nH + h) * nc + c) * Rec::BYTES;
    T_* r = reinterpret_cast<T_*>(rec);
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int e = tid; e < F * (KP / E); e += nt) {
      const int f = e / (KP / E), i0 = (e % (KP / E)) * E;
      *reinterpret_cast<uint4*>(r + Rec::QO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.Q + f * LDK + i0);
      *reinterpret_cast<uint4*>(r + Rec::XO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.X + f * LDK + i0);
    }
    for (int e = tid; e < F * (F / E); e += nt) {
      const int f = e / (F / E), n0 = (e % (F / E)) * E;
      *reinterpret_cast<uint4*>(r + Rec::AO + f * F + n0) = *reinterpret_cast<const uint4*>(s.AQB + f * Cfg::LDF + n0);
    }
    // M = T diag(beta) W~, U0 = T alpha V
    seqc_bmm<T_, false, false, 4, F>(F, KP, s.TB, Cfg::LDF, s.W, LDK, [&](int m, int n2, float v0, float v1) {
      seqc_sst2(r + Rec::MO + m * KP + n2, v0, v1);
    });
    seqc_bmm<T_, false, false, SeqcWN<VP>::N, F>(F, VP, s.TB, Cfg::LDF, s.V, Cfg::LDVA, [&](int m, int n2, float v0, float v1) {
      seqc_sst2(r + Rec::UO + m * VP + n2, v0, v1);
    });
    float* eg = reinterpret_cast<float*>(rec + Rec::BYTES - KP * 4);
    for (int i = tid; i < KP; i += nt) eg[i] = s.G[SEQC_G_EGN + i];
    // every thread past this item's reads of G, its buffer, A / V and T before the next item's writes
    __syncthreads();
  }
}
`;
