/**
 * Pieces of CUDA source that several chunked split kernels share, written once and spliced into their String.raw
 * sources: phase A's block head (chunked-core.ts seqc_chunk_phase_a / _d, chunked-split-vin.ts seqc_chunk_phase_a_v),
 * the walk's block head, record pipeline, readout tiles and tail (chunked-core.ts seqc_chunk_walk / _d,
 * chunked-split-vin.ts seqc_chunk_walk_v, chunked-walk-q.ts seqc_chunk_walk_q), and its record copies' stage pointers
 * and Aq copy (seqc_walk_issue / _walkd_ / _walkv_, seqc_out_issue). Each returns whole lines (indented as
 * at its call sites, no final newline); the parameters name what differs between the kernels. The emitted text is
 * the kernels' as written before these helpers (byte-identical modules).
 */

/** Lines joined with newlines, leaving out the false ones. */
const lines = (...ls: (string | false)[]): string => ls.filter((l): l is string => l !== false).join("\n");

/** Phase A's block: (chunk, head, batch) from the grid, the row micro-steps and readout slot published, a barrier. */
export function phaseAHead(): string {
  return String.raw`  const SeqcSm<Cfg> s(smem);
  const u32 T = rows.u.T, nc = (T + C - 1) / C;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 c = blk % nc, h = (blk / nc) % nH, b = blk / (nc * nH);
  if (threadIdx.x < Cfg::RTP) s.I[SEQC_I_MICRO + threadIdx.x] = rows.micro(threadIdx.x);
  if (threadIdx.x == 0) s.I[SEQC_I_READ] = rows.readoutAt();
  __syncthreads();`;
}

/**
 * The walk's block: (value tile, head, batch) from the grid, the head's records, the state tile loaded. inputs: the
 * walk also reads rows from the inputs (its issue takes rows, b, h, t0, T), so it publishes the row micro-steps and
 * readout slot and waits for them.
 */
export function walkHead(inputs: boolean): string {
  return lines(
    String.raw`  const SeqcSm<Cfg> s(smem);
  const u32 nvt = (V + BV - 1) / BV;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  const u32 vt = blk % nvt, h = (blk / nvt) % nH, b = blk / (nvt * nH);
  const u32 T = rows.u.T, j0 = vt * BV, nc = (T + C - 1) / C;
  const char* recs = reinterpret_cast<const char*>(ws) + (size_t)(b * nH + h) * nc * Rec::BYTES;`,
    inputs && String.raw`  if (threadIdx.x < Cfg::RTP) s.I[SEQC_I_MICRO + threadIdx.x] = rows.micro(threadIdx.x);
  if (threadIdx.x == 0) s.I[SEQC_I_READ] = rows.readoutAt();`,
    String.raw`  SeqcState<Cfg> S;
  seqc_state_load<Cfg>(S, rows, b, h, j0, K, V);`,
    inputs && "  __syncthreads();",
  );
}

/**
 * The walk's NSTAGE-deep record pipeline, up to chunk c's stage pointers q, x, (m,) a, u and the floats: issue is
 * the kernel's record-copy function (inputs: it takes rows, b, h, t0, T, as in walkHead), m: the stage has M (low
 * rank), floats: the name of the stage's float pointer.
 */
export function walkPipe(o: { issue: string; inputs: boolean; m: boolean; floats: string }): string {
  const call = (stage: string, k: string, t0: string) =>
    o.inputs ? `${o.issue}<Cfg>(rows, s, ${stage}, recs + (size_t)${k} * Rec::BYTES, b, h, ${t0}, T, j0)` : `${o.issue}<Cfg>(s, ${stage}, recs + (size_t)${k} * Rec::BYTES, j0)`;
  return lines(
    String.raw`  constexpr int NS = Cfg::NSTAGE;
#pragma unroll
  for (int k = 0; k < NS - 1; ++k) {
    if ((u32)k < nc) ${call("k", "k", "(u32)k * C")};
    seqc_cp_commit();
  }
  for (u32 c = 0; c < nc; ++c) {
    const int st = c % NS;
    if (c + NS - 1 < nc) ${call("(c + NS - 1) % NS", "(c + NS - 1)", "(c + NS - 1) * C")};
    seqc_cp_commit();
    seqc_state_operand<Cfg>(S, s.SB);
    seqc_cp_wait<NS - 1>();
    __syncthreads();
    char* base = reinterpret_cast<char*>(s.X) + st * Cfg::STAGE;
    const T_* q = reinterpret_cast<const T_*>(base + Cfg::W_Q);
    const T_* x = reinterpret_cast<const T_*>(base + Cfg::W_X);`,
    o.m && "    const T_* m = reinterpret_cast<const T_*>(base + Cfg::W_M);",
    String.raw`    const T_* a = reinterpret_cast<const T_*>(base + Cfg::W_A);
    const T_* u = reinterpret_cast<const T_*>(base + Cfg::W_U);
    const float* ${o.floats} = reinterpret_cast<const float*>(base + Cfg::W_E);`,
  );
}

/** A warp tile's accumulators acc[WN][4], zeroed (pad: the indentation). */
export function tileAccZero(pad: string): string {
  return String.raw`${pad}float acc[WN][4];
#pragma unroll
${pad}for (int i = 0; i < WN; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;`;
}

/** A warp tile's accumulators (rows m0 + g, m0 + g + 8; columns n0 + 8 nt + qq) into Y's readout slots. */
export function tileStoreY(pad: string): string {
  return String.raw`#pragma unroll
${pad}for (int nt = 0; nt < WN; ++nt) {
${pad}  const int n = n0 + nt * 8 + qq;
${pad}  seqc_sst2(s.Y + (m0 + g) * Cfg::LDY + n, acc[nt][0], acc[nt][1]);
${pad}  seqc_sst2(s.Y + (m0 + g + 8) * Cfg::LDY + n, acc[nt][2], acc[nt][3]);
${pad}}`;
}

/**
 * The walk's readout y = Q~ SB + Aq Z over 16 x 8 WN warp tiles taken in turn by the warps: what is the comment, tiles
 * whether the block declares WN, TN, TILES here (else the kernel has), step the warp stride, kp the key depth's name,
 * fq whether the rows of Q SB are scaled by fq before Aq Z is added (splitd), z the value operand.
 */
export function walkReadout(o: { what: string; tiles: boolean; step: string; kp: string; fq: boolean; z: string }): string {
  return lines(
    "    {",
    `      // ${o.what}`,
    o.tiles && "      constexpr int WN = SeqcWN<BV>::N, TN = BV / (8 * WN), TILES = (F / 16) * TN;",
    "      const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, qq = (l & 3) << 1;",
    `      for (int tile = w; tile < TILES; tile += ${o.step}) {`,
    "        const int m0 = (tile / TN) * 16, n0 = (tile % TN) * 8 * WN;",
    tileAccZero("        "),
    `        SeqcMM<T_>::template run<false, false, WN, ${o.kp}>(acc, q, Cfg::LDK, s.SB, LDV, m0, n0);`,
    o.fq &&
      String.raw`        const float f0 = fq[m0 + g], f1 = fq[m0 + g + 8];
#pragma unroll
        for (int i = 0; i < WN; ++i) { acc[i][0] *= f0; acc[i][1] *= f0; acc[i][2] *= f1; acc[i][3] *= f1; }`,
    `        SeqcMM<T_>::template run<false, false, WN, F>(acc, a, Cfg::LDF, ${o.z}, LDV, m0, n0);`,
    tileStoreY("        "),
    "      }",
    "    }",
  );
}

/** The walk's end of chunk c (state update with the value operand z and the floats, the post) and of the kernel. */
export function walkTail(z: string, floats: string): string {
  return String.raw`    seqc_state_update<Cfg>(S, x, ${z}, ${floats});
    __syncthreads();
    seqc_post<Cfg>(rows, s, b, h, c * C, T, j0, V);
  }
  seqc_state_store<Cfg>(S, rows, b, h, j0, K, V);
}`;
}

/**
 * A walk's record copy (seqc_walk_issue / _walkd_ / _walkv_): the record's elements r and stage's pointers q, x, (m,)
 * a, u and the floats (m: the stage has M; floats: the float pointer's name), then the thread's index and stride.
 */
export function walkStage(o: { m: boolean; floats: string }): string {
  return lines(
    String.raw`  const T_* r = reinterpret_cast<const T_*>(rec);
  char* base = reinterpret_cast<char*>(s.X) + stage * Cfg::STAGE;
  T_* q = reinterpret_cast<T_*>(base + Cfg::W_Q);
  T_* x = reinterpret_cast<T_*>(base + Cfg::W_X);`,
    o.m && "  T_* m = reinterpret_cast<T_*>(base + Cfg::W_M);",
    String.raw`  T_* a = reinterpret_cast<T_*>(base + Cfg::W_A);
  T_* u = reinterpret_cast<T_*>(base + Cfg::W_U);
  float* ${o.floats} = reinterpret_cast<float*>(base + Cfg::W_E);
  const int tid = threadIdx.x, nt = blockDim.x;`,
  );
}

/**
 * The head of a walk's issue that reads rows from the inputs (seqc_walkd_issue, chunked-core.ts; seqc_walkq_issue,
 * chunked-split-qin.ts): its signature, the record type rec, then walkStage with M and the floats' pointer.
 */
export function inputIssueHead(name: string, rec: string, floats: string): string {
  return String.raw`template <class Cfg, class R>
__device__ __forceinline__ void ${name}(const R& rows, const SeqcSm<Cfg>& s, int stage, const char* rec, u32 b, u32 h, u32 t0, u32 T, u32 j0) {
  typedef typename Cfg::T T_;
  typedef ${rec}<Cfg> Rec;
  constexpr int F = Cfg::F, KP = Cfg::KP, RTP = Cfg::RTP, E = 16 / sizeof(T_), LDK = Cfg::LDK, BV = Cfg::BV;
${walkStage({ m: true, floats })}`;
}

/** The record's Aq [F][F] (at r + Rec::AO) to dst (row stride LDF), cp.async, threads tid of nt. */
export function recordCopyAq(dst: string): string {
  return String.raw`  for (int e = tid; e < F * (F / E); e += nt) {
    const int f = e / (F / E), n0 = (e % (F / E)) * E;
    seqc_cp16(${dst} + f * Cfg::LDF + n0, r + Rec::AO + f * F + n0);
  }`;
}
