/**
 * split's low-rank walk with the readout's S0 part first (variants `...-wq-w512`, configs with RQ = 1; chunked-plan.ts
 * lowers them on request; H200 run 25: walk 0.506 -> 0.489 ms on average at (4, 8192, 16, 128), forwards not faster in
 * both rounds): low rank, 2-byte operands, a block of at least twice as many warps as Z = U0 + M S0 has warp
 * tiles (ZT = (F / 16) x BV / (8 WN): 8 at 64-value tiles, 4 at 32).
 *
 * The core's walk (seqc_chunk_walk) runs, per chunk, Z's tiles on warps 0..ZT-1 while the others wait at the next
 * barrier, then the readout y = Q~ S0 + Aq Z on warps 0..ZT-1 again (K + F deep: 12 k-steps at K = 128) and the state
 * update on every warp: warps 0..ZT-1 carry a chain of 8 + 12 + 4 k-steps a chunk at K = 128. Q~ S0 does not depend
 * on Z, so here warps ZT..2 ZT-1 form it beside Z's tiles, keep it in registers over the barrier and add Aq Z after it:
 * the chain is 8 + 4 + 4 k-steps. Same record (SeqcRec), same shared memory and barriers as the core's walk; the
 * state's tiles, the post and the record copies are the core's (seqc_state_*, seqc_post, seqc_walk_issue).
 * Appended to a module only where one of its configs uses it (CHUNK_CORE_SOURCE is unchanged).
 */
import { tileAccZero, tileStoreY, walkHead, walkPipe, walkTail } from "./chunked-walk-parts.ts";

export const CHUNK_WALK_Q_SOURCE = String.raw`
// ==== seqc chunked split walk with the readout's Q~ S0 beside Z (RQ) ====
template <class Cfg, class R>
__device__ void seqc_chunk_walk_q(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {
  typedef typename Cfg::T T_;
  typedef SeqcRec<Cfg> Rec;
  constexpr int F = Cfg::F, C = F / Cfg::RTP, BV = Cfg::BV, LDV = Cfg::LDV, KP = Cfg::KP;
  constexpr int WN = SeqcWN<BV>::N, TN = BV / (8 * WN), ZT = (F / 16) * TN, NW = Cfg::NT / 32;
  static_assert(Cfg::LR, "the Q~ S0-first walk is written for low-rank models (a Z tile per readout tile)");
  static_assert(2 * ZT <= NW, "the Q~ S0-first walk needs a warp for every Z tile and every readout tile");
${walkHead(false)}
${walkPipe({ issue: "seqc_walk_issue", inputs: false, m: true, floats: "eg" })}
    // this warp's tile of Z (w < ZT) or of y (ZT <= w < 2 ZT)
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31, g = l >> 2, qq = (l & 3) << 1;
    const int tw = w < ZT ? w : w - ZT;
    const int m0 = (tw / TN) * 16, n0 = (tw % TN) * 8 * WN;
${tileAccZero("    ")}
    if (w < ZT) {
      // Z = U0 + M S0 (this warp's tile)
      SeqcMM<T_>::template run<false, false, WN, KP>(acc, m, Cfg::LDK, s.SB, LDV, m0, n0);
#pragma unroll
      for (int nt = 0; nt < WN; ++nt) {
        const int n = n0 + nt * 8 + qq;
        seqc_sst2(s.Z + (m0 + g) * LDV + n, seqc_f32(u[(m0 + g) * LDV + n]) + acc[nt][0], seqc_f32(u[(m0 + g) * LDV + n + 1]) + acc[nt][1]);
        seqc_sst2(s.Z + (m0 + g + 8) * LDV + n, seqc_f32(u[(m0 + g + 8) * LDV + n]) + acc[nt][2], seqc_f32(u[(m0 + g + 8) * LDV + n + 1]) + acc[nt][3]);
      }
    } else if (w < 2 * ZT) {
      // y's S0 part, Q~ S0 (this warp's tile; kept in registers)
      SeqcMM<T_>::template run<false, false, WN, KP>(acc, q, Cfg::LDK, s.SB, LDV, m0, n0);
    }
    __syncthreads();
    if (w >= ZT && w < 2 * ZT) {
      // y = Q~ S0 + Aq Z
      SeqcMM<T_>::template run<false, false, WN, F>(acc, a, Cfg::LDF, s.Z, LDV, m0, n0);
${tileStoreY("      ")}
    }
${walkTail("s.Z", "eg")}
`;
