/**
 * The overlapped phase A with its two warp groups on their own barriers (variants `...-iw-ios[-gf]-nb`, configs with
 * NBAR; chunked-plan.ts lowers them on request): seqc_chunk_phase_a_o's text (chunked-phase-a-ovl.ts) and
 * seqc_chunk_phase_a_oq's (chunked-split-qin.ts, `-nb-qi` / `-nb-qxi`) with the three block barriers between the
 * inverse's stages replaced by named barriers.
 *
 * In seqc_chunk_phase_a_o the inverse's warps (0-5) and the helpers (6 and up) meet at a block barrier after each of
 * the inverse's stages (the diagonal blocks, round 1, round 2), so each stage takes the longer of the two groups' parts:
 * max(diag, record copies) + max(round 1, alpha v's copies issued) + round 2 + max(T's operand, alpha v's wait and
 * scale). The two groups share no shared memory in those stages: the inverse writes T, P and T's operand and reads A;
 * the helpers read Q, X, W, Aq's operand and the decays, write the record, W and alpha v (in X's place). So here
 *   - warps 0-5: diagonal blocks, bar.sync 1 (192 threads), round 1, bar.sync 1, round 2, bar.sync 1, T's operand;
 *   - helpers: Q~ / X~ / W~ (the record's first loop), then (only where a helper's alpha v pieces are not the X pieces
 *     it read itself: VP != KP or LDVA != LDK) bar.sync 2 (the helpers), alpha v's cp.async copies, then Aq's copy and
 *     the floats (exp(G_n), and fq / fx for QIN) while the copies fly, then each helper's wait and scale;
 *   - one block barrier, then M and U0 as before.
 * The chain is max(inverse, helpers) instead of the sum of each stage's longer part, and alpha v's load latency sits
 * under Aq's copy and the inverse. Same products, roundings and stores: the record is bitwise -iw-ios's (the emulation,
 * test/cuda-chunked-phase-a-nbar.test.ts). The shared-memory regions' disjointness is a static_assert in the kernel.
 * Appended to a module only where one of its configs has NBAR (after CHUNK_PHASE_A_OVL_GF_SOURCE and, with QIN,
 * CHUNK_SPLIT_QIN_SOURCE, whose helpers it uses); the other phase A texts unchanged.
 */
import { ovlFunction, STEP_G, STEP_G_FOLDED } from "./chunked-phase-a-ovl.ts";
import { inverseFirstRound, inverseSecondRound } from "./chunked-inverse-rounds.ts";
import { qinPhaseA } from "./chunked-split-qin.ts";

/** the text strictly between the unique markers a and b of src */
function between(src: string, a: string, b: string): string {
  const i = src.indexOf(a);
  if (i < 0 || src.indexOf(a, i + 1) >= 0) throw new Error(`chunked-phase-a-nbar: marker moved (${JSON.stringify(a.slice(0, 60))})`);
  const j = src.indexOf(b, i + a.length);
  if (j < 0) throw new Error(`chunked-phase-a-nbar: marker moved (${JSON.stringify(b.slice(0, 60))})`);
  return src.slice(i + a.length, j);
}

const ROUND1 = inverseFirstRound("cc", "bb");
const ROUND2 = inverseSecondRound("cc");
const M_START = "  seqc_chunk_inverse_diag<Cfg>(s);\n  if (ht >= 0) {\n";
const M_AQ = "    for (int e = ht; e < F * (F / E); e += NH) {\n";
const M_STAGE1 = "  }\n  __syncthreads();\n  // ---- stage 1";
const M_VLOOP = `${ROUND1}\n  } else {\n`;
const M_COMMIT = "    seqc_cp_commit();\n  }\n  __syncthreads();\n  // ---- stage 2";
const M_STAGE3 = "  if (w < IW) {\n    for (int e = tid; e < F * (F / 2); e += 32 * IW) {\n";
const M_WAIT = "  } else {\n    seqc_cp_wait<0>();\n";
const M_END = "  }\n  __syncthreads();\n  // M = T diag";

/** seqc_chunk_phase_a_o's (or _oq's) text with the inverse's three block barriers replaced by the two groups' own. */
export function nbarPhaseA(fn: string, from: string, to: string): string {
  if (!fn.includes(ROUND1) || !fn.includes(ROUND2)) throw new Error("chunked-phase-a-nbar: the inverse's rounds moved");
  const head = between(fn, M_START, M_AQ); // gn, then the record's first loop (Q~, X~, W~)
  const rest = M_AQ + between(fn, M_AQ, M_STAGE1); // Aq's copy, the floats
  const vLoop = between(fn, M_VLOOP, M_COMMIT); // alpha v's copies
  const top = "    for (int e = tid; e < F * (F / 2); e += 32 * IW) {\n" + between(fn, M_STAGE3, M_WAIT); // T's operand
  const scale = "    seqc_cp_wait<0>();\n" + between(fn, M_WAIT, M_END); // each helper's wait and scale
  const M_NOTE = "  // ---- stage 0: the diagonal blocks (warps 0-3) | Q~, X~, Aq, exp(G_n) to the record, W -> diag(beta) W~ (helpers)\n";
  if (!fn.includes(M_NOTE + M_START)) throw new Error("chunked-phase-a-nbar: stage 0's note moved");
  const start = fn.indexOf(M_NOTE + M_START), end = fn.indexOf(M_END, start);
  const body = `  // the inverse's warps and the helpers on their own barriers (NBAR): no block barrier until M / U0's
  static_assert(seqc_nbar_apart<Cfg>(), "NBAR: the inverse's and the helpers' shared memory regions overlap");
  if (w < IW) {
    seqc_chunk_inverse_diag<Cfg>(s);
    seqc_bar_named(1, 32 * IW);
    {
${ROUND1}
    }
    seqc_bar_named(1, 32 * IW);
    float* const Pz = s.P;
${ROUND2}
    seqc_bar_named(1, 32 * IW);
${top}  } else {
${head}    // a helper's alpha v pieces are the X pieces it read itself where VP = KP and LDVA = LDK; else the helpers meet
    if (VP != KP || LDVA != LDK) seqc_bar_named(2, NH);
${vLoop}    seqc_cp_commit();
${rest}${scale}`;
  const out = fn.slice(0, start) + body + fn.slice(end);
  const i = out.indexOf(from);
  if (i < 0 || out.indexOf(from, i + 1) >= 0) throw new Error("chunked-phase-a-nbar: the function's name moved");
  const r = out.slice(0, i) + to + out.slice(i + from.length);
  if (r.includes("__syncthreads();\n  // ---- stage")) throw new Error("chunked-phase-a-nbar: a stage barrier is left");
  return r;
}

/** seqc_chunk_phase_a_o's function with the folded load step (chunked-split-qin.ts does the same for _oq). */
const ovlFolded = (): string => ovlFunction().replace(STEP_G, STEP_G_FOLDED);

export const CHUNK_PHASE_A_NBAR_SOURCE =
  String.raw`
// ==== seqc chunked phase A (OVL), the inverse's warps and the helpers on their own barriers (NBAR) ====
#ifdef SEQC_EMU
inline void seqc_bar_named(int id, int n) { emu::namedbar(id, n); }
#else
// bar.sync id, n: the n threads (whole warps) that name barrier id meet; 0 is __syncthreads'
__device__ __forceinline__ void seqc_bar_named(int id, int n) { asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(n) : "memory"); }
#endif
__host__ __device__ constexpr bool seqc_nbar_apart1(int a, int na, int b, int nb) { return a + na <= b || b + nb <= a; }
// the inverse's regions (T, P, T's operand written; A read) apart from the helpers' (Q, X / alpha v, W, Aq's operand, G)
template <class Cfg> __host__ __device__ constexpr bool seqc_nbar_apart() {
  constexpr int F = Cfg::F, S = (int)sizeof(typename Cfg::T);
  const int inv[4][2] = {{Cfg::O_TT, F * Cfg::LDA * 4}, {Cfg::O_P, (F / 16 - 1) * 256 * 4}, {Cfg::O_TB, F * Cfg::LDF * S}, {Cfg::O_A, F * Cfg::LDA * 4}};
  const int hlp[5][2] = {{Cfg::O_Q, F * Cfg::LDK * S}, {Cfg::O_X, F * (Cfg::LDK > Cfg::LDVA ? Cfg::LDK : Cfg::LDVA) * S}, {Cfg::O_W, F * Cfg::LDK * S},
                         {Cfg::O_AQB, F * Cfg::LDF * S}, {Cfg::O_G, (9 * F + 8 + Cfg::KP + 5 * F) * 4}};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j)
      if (!seqc_nbar_apart1(inv[i][0], inv[i][1], hlp[j][0], hlp[j][1])) return false;
  return Cfg::O_V == Cfg::O_X;
}
` +
  nbarPhaseA(ovlFolded(), "__device__ void seqc_chunk_phase_a_o(", "__device__ void seqc_chunk_phase_a_on(") +
  nbarPhaseA(qinPhaseA(), "__device__ void seqc_chunk_phase_a_oq(", "__device__ void seqc_chunk_phase_a_oqn(");
