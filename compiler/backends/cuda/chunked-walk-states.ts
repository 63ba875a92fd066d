/**
 * split's walk that also stores each chunk's start state (walk configs with `sst`, variants `chunked-split-...-st-r<R>`):
 * the delta backward's chunk states (runtime/torch/seqc_chunked_lowrank.py LR_FWD_STATES, docs/delta-backward.md "Chunk
 * states from the forward") from auto's split forward, instead of switching the forward to split3 for its chunkS.
 *
 * The walk carries the state S (fp32, the mma C-fragment layout) over the chunks; at the top of chunk c it holds the
 * chunk's start state S0 and writes it as the readout's operand SB (seqc_state_operand). Here the walk also writes S0
 * to the workspace `chunkS` ([B][nH][nc][KP][VP] elements of T, split3's layout and rounding: chunked-core.ts
 * seqc_state_put), right before that: K x BV elements a chunk and value tile, 2 bytes each for 2-byte operands (B = 4,
 * H = 16, T = 8192, K = V = 128: 268 MB a forward). Nothing else changes: records, readout, state update and outputs are
 * the walk's own (bitwise).
 *
 * The text is the walk's (chunked-core.ts seqc_chunk_walk, chunked-split-qin.ts seqc_chunk_walk_c) with two edits
 * (the name and parameters, the store), so the two stay one text; each edit's `from` must occur once. Two
 * sources, each appended (last) only to modules where a config has `sst`: CHUNK_WALK_ST_SOURCE (seqc_chunk_walk_st) and,
 * where that config has `wcopy` too, CHUNK_WALK_CST_SOURCE (seqc_chunk_walk_cst, after CHUNK_SPLIT_WC_SOURCE, whose
 * issue and record types it uses). The other kernels' text is unchanged.
 */
import { CHUNK_CORE_SOURCE } from "./chunked-core.ts";
import { CHUNK_SPLIT_WC_SOURCE } from "./chunked-split-qin.ts";

/** The text of the device function `name` (from its template line to its closing brace) in src. */
function functionText(src: string, name: string): string {
  const head = `template <class Cfg, class R>\n__device__ void ${name}(`;
  const i = src.indexOf(head);
  if (i < 0 || src.indexOf(head, i + 1) >= 0) throw new Error(`chunked-walk-states: ${name} not found once`);
  const j = src.indexOf("\n}\n", i);
  if (j < 0) throw new Error(`chunked-walk-states: ${name}'s end not found`);
  return src.slice(i, j + 3);
}

/** name's text, renamed to, with the store of each chunk's start state (the edits' `from` once each). */
function storing(src: string, name: string, to: string): string {
  let text = functionText(src, name);
  const edits: [string, string][] = [
    [`__device__ void ${name}(const R& rows, char* smem, const typename Cfg::T* ws, u32 K, u32 V, u32 nH) {`, `__device__ void ${to}(const R& rows, char* smem, const typename Cfg::T* ws, typename Cfg::T* wsS, u32 K, u32 V, u32 nH) {`],
    // chunk c's start state, as the walk puts it into SB, at (b, h, c) offset by the value tile (split3's
    // seqc_chunk_walk_s layout; the address formed here, not kept across the chunks: the -wc walk runs at its register limit)
    ["    seqc_state_operand<Cfg>(S, s.SB);\n", "    seqc_state_put<Cfg>(S, wsS + ((size_t)(b * nH + h) * nc + c) * Cfg::KP * Cfg::VP + j0);\n    seqc_state_operand<Cfg>(S, s.SB);\n"],
  ];
  for (const [from, to] of edits) {
    const i = text.indexOf(from);
    if (i < 0 || text.indexOf(from, i + 1) >= 0) throw new Error(`chunked-walk-states: ${name}'s text moved (${JSON.stringify(from.slice(0, 60))})`);
    text = text.slice(0, i) + to + text.slice(i + from.length);
  }
  return text;
}

/** seqc_chunk_walk_st: the core's split walk storing each chunk's start state (after seqc_state_put in the core). */
export const CHUNK_WALK_ST_SOURCE = `
// ---- split's walk, each chunk's start state also stored (sst; chunked-walk-states.ts) ----
${storing(CHUNK_CORE_SOURCE, "seqc_chunk_walk", "seqc_chunk_walk_st")}`;

/** seqc_chunk_walk_cst: the -wc walk (wcopy) storing each chunk's start state. */
export const CHUNK_WALK_CST_SOURCE = `
// ---- split's -wc walk, each chunk's start state also stored (sst + wcopy; chunked-walk-states.ts) ----
${storing(CHUNK_SPLIT_WC_SOURCE, "seqc_chunk_walk_c", "seqc_chunk_walk_cst")}`;
