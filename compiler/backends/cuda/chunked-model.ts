/**
 * The model-specific half of the CUDA chunked form: from a model's matrix form and rows
 * (compiler/forms/chunk-rows.ts) it generates the row loader the core templates call (x, w, q,
 * alpha v, beta, decays per token, the initial/final state and the post outputs, all lowered from the
 * prep/post IR with the same expression lowering as the other CUDA kernels), the shared-memory layout
 * of each configuration, and the extern "C" wrappers. Inputs that are plain reads of a model input along
 * the key or value axis are loaded 16 bytes at a time.
 * Value columns (normalisers) are value indices V, V + 1, ... of the core (loadV, loadS, storeS address the
 * column states there; post stores y into the workspace `ybuf` and postOut runs in a launch after the walk);
 * a stabilised form reads m_t and m_{t-1} from the workspace `stab` (the stabiliser launch writes it from
 * stabA / stabB / stabInit / stabFinal), and loadS scales the initial state (compiler/forms/stabiliser.ts).
 * Both launches are chunked-extra.ts.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import { lowerConst } from "../../kernel/step.ts";
import { inputBuffer, outputBuffer, stateOffset, initFlag, STATES, uniformFields } from "../../kernel/interface.ts";
import { extentK, flatIndex, productK } from "../../kernel/symbolic.ts";
import type { ChunkRows, RowPart, RowSpec } from "../../forms/chunk-rows.ts";
import { freeVars as freeVarsOf } from "../../analysis/linearize.ts";
import { CudaScope } from "./scope.ts";
import { STAB_PREV, STAB_T } from "../../forms/matrix-form.ts";
import { renderExpr, renderStmts, type RenderContext } from "./render.ts";
import { overrideValues } from "./overrides.ts";

export type ChunkDtype = "f32" | "bf16" | "f16";
export type ChunkKind = "fused" | "phaseA" | "walk" | "walkS" | "out" | "carry";

export interface ChunkCfg {
  kind: ChunkKind;
  dtype: ChunkDtype;
  KP: number;
  /** Value tile (fused, walk, walkS, out). */
  BV: number;
  /** Padded value size (phase A, walk). */
  VP: number;
  RTP: number;
  decay: 0 | 1 | 2;
  lr: boolean;
  /** Threads per block (default CHUNK_THREADS) and the blocks per SM its registers are bounded for
   *  (__launch_bounds__; default 1). Phase A takes more warps where its shared memory allows few blocks per SM. */
  NT?: number;
  minBlocks?: number;
  /** Phase A of a low-rank model: T = (I - N)^-1 by one warp per 16x16 block product (seqc_chunk_inverse_w, three
   *  block barriers) instead of block rows over every thread (seven). */
  inv?: "w";
  /** Phase A with a per-key decay: the block pairs of A and Aq as warp tasks (SeqcKeyTiles, one barrier) instead of
   *  four rounds of block rows (eight). 2-byte operands. */
  mats?: "w";
  /** Grouped split3 (walkS, out, carry; a diagonal chunk transition): the chunks split into `grp` groups walked in
   *  parallel from zero states, a carry kernel over the groups in order, and a readout that adds each chunk's carried
   *  part (CHUNK_GROUP_SOURCE in chunked-core.ts). */
  grp?: number;
  /** Grouped split3's carry and readout with S_in(g) in the operand type (variants `-g<G>t`): the carry rounds it once,
   *  the readout loads half the bytes into registers before its record's wait. Default fp32 S_in. */
  grpT?: boolean;
  /** Grouped split3's readout (with grpT) over runs of `grpM` consecutive chunks of a group per block (variants
   *  `-g<G>t<M>`): the group's S_in tile is loaded once per run instead of once per chunk. */
  grpM?: number;
  /** split3's low-rank walk (walkS, 2-byte operands) with Z = U0 + M S0 spread over the block's warps
   *  (CHUNK_WALK_K_SOURCE, seqc_chunk_walk_k): 1 = split-K over every warp, partials through shared memory (variants
   *  `-wk`); 2 = the warps without a Z tile issue the next record's copies (`-wc`). */
  wsplit?: 1 | 2;
  /** Phase A software-pipelined (low rank, a scalar or no decay, 2-byte operands; variants `-ap<M>`): a block takes every
   *  ceil(items / M)-th (batch, head, chunk) item, at most `pipe` = M of them, and copies the next item's rows into a
   *  second [W; Q; X] buffer (O_B1) with cp.async while it computes the current one (chunked-phase-a-pipe.ts). */
  pipe?: number;
  /** split's low-rank walk (walk, 2-byte operands) with the readout's Q~ S0 on the warps without a Z tile, beside
   *  Z = U0 + M S0, and Aq Z added after Z's barrier (CHUNK_WALK_Q_SOURCE, seqc_chunk_walk_q; variants `-wq`). */
  rq?: boolean;
  /** Phase A (low rank, a scalar or no decay, 2-byte operands, inv "w", alpha v late; variants `-iw-io`): the warps the
   *  inverse leaves idle write the record's Q~, X~ and Aq, scale W and load alpha v (into X's place) beside it
   *  (CHUNK_PHASE_A_OVL_SOURCE, seqc_chunk_phase_a_o); 2 (`-iw-ios`): M and U0 also staged in shared memory and stored
   *  16 bytes a thread. */
  ovl?: 1 | 2;
  /** With `ovl` and a scalar decay (variants `-iw-ios-gf`): the decays' prefix over the chunk and the rows' G_r, G_w, G_q
   *  computed by warps 0-1 (each scanning every token) beside the load's scale pass, instead of by warp 0 between two
   *  more barriers (seqc_chunk_gscalar): two barriers fewer, the same sums in the same order (chunked-phase-a-ovl.ts). */
  gfold?: boolean;
  /** splitd (phase A and walk): the walk reads q and the key rows raw from the inputs (scalar or no decay). */
  direct?: boolean;
  /** split without low rank (phase A and walk; a scalar or no decay, 2-byte operands; variants `-vi`, `-vib`): phase A
   *  loads no alpha v and its record (SeqcRecV) leaves it out, the walk copies v's tile from the inputs
   *  (CHUNK_SPLIT_VIN_SOURCE, seqc_chunk_phase_a_v / seqc_chunk_walk_v); 2 (`-vib`): the walk's readout in warp tiles of
   *  half the width where the block has twice as many warps as tiles. */
  vin?: 1 | 2;
  /** split with low rank after the overlapped phase A (phase A and walk; `ovl`, a scalar or no decay, 2-byte operands;
   *  variants `-qi`): phase A's record (SeqcRecQ) leaves Q~ out and holds fq = scale_q exp(G_q) a row instead, the walk
   *  copies q's rows from the inputs and scales Q S0's rows by fq (CHUNK_SPLIT_QIN_SOURCE, seqc_chunk_phase_a_oq /
   *  seqc_chunk_walk_qi); 2 (`-qxi`): X~ too, fx = scale_x exp(G_n - G_w) a row in the record instead, the walk copying
   *  the key rows from the inputs and the state update taking diag(fx) Z (splitd's ZX). */
  qin?: 1 | 2;
  /** With `ovl` = 2 (variants `-iw-ios[-gf]-nb`, also before `-qi` / `-qxi`): the inverse's warps and the helpers on their
   *  own named barriers until M / U0's block barrier, the helpers issuing alpha v's copies before Aq's record copy
   *  (CHUNK_PHASE_A_NBAR_SOURCE, seqc_chunk_phase_a_on / _oqn); the record bitwise the same. */
  nbar?: boolean;
  /** split's low-rank walk (512 threads; after an `ovl` phase A, with or without `qin`; variants `-wc-w512`): the next
   *  record's copies issued by the warps without a Z tile beside Z = U0 + M S0, instead of by every thread before the
   *  chunk's wait (CHUNK_SPLIT_WC_SOURCE, seqc_chunk_walk_c). */
  wcopy?: boolean;
  /** split's walk (walk, with or without `wcopy`; variants `...-st-r<R>`) also storing each chunk's start state S0 to the
   *  workspace `chunkS` (wsS; [B][nH][nc][KP][VP] of T, split3's layout), for the delta backward (chunked-walk-states.ts,
   *  seqc_chunk_walk_st / _cst). */
  sst?: boolean;
  /** Element type of the outputs (default `dtype`): a 2-byte-input configuration that stores fp32 outputs (mixed I/O,
   *  e.g. the torch target's transposed cores, whose dq / dk feed cancelling sums). Operands and accumulation follow `dtype`. */
  out?: ChunkDtype;
}

/** The outputs' element type of a configuration. */
export const outOf = (c: { dtype: ChunkDtype; out?: ChunkDtype }): ChunkDtype => c.out ?? c.dtype;
/** The I/O tag of a configuration in kernel, variant and module names: `bf16`, or `bf16-of32` for bf16 inputs and fp32 outputs. */
export const ioTag = (dtype: ChunkDtype, out: ChunkDtype = dtype): string => (out === dtype ? dtype : `${dtype}-o${out}`);

export const CHUNK_F = 64;
export const CHUNK_THREADS = 256;
/** The state-only walk takes three records in flight when they fit this much shared memory (else two). */
const WALKS_SMEM_MAX = 200 * 1024;
const ELT: Record<ChunkDtype, string> = { f32: "float", bf16: "seqc_bf16", f16: "seqc_f16" };
export const ioType = (d: ChunkDtype) => ELT[d];

/** Shared-memory layout of a configuration (byte offsets; every region 16-byte aligned). */
export function chunkLayout(c: ChunkCfg): Record<string, number> {
  const F = CHUNK_F;
  const sz = c.dtype === "f32" ? 4 : 2;
  const pad = 16 / sz;
  const LDK = c.KP + pad, LDF = F + pad, LDV = c.BV + (c.BV === 8 ? 2 * pad : pad), LDVA = c.VP + pad, LDA = F + 4, LDY = c.BV + 4;
  const C = F / c.RTP, NB = F / 16;
  const o: Record<string, number> = { LDK, LDF, LDV, LDVA, LDA, LDY };
  let at = 0;
  const put = (name: string, bytes: number) => {
    o[name] = at;
    at += Math.ceil(bytes / 16) * 16;
  };
  const none = ["O_X", "O_W", "O_Q", "O_V", "O_L", "O_XI", "O_XS", "O_R", "O_TB", "O_AQB", "O_SB", "O_Z", "O_ZX", "O_D", "O_A", "O_TT", "O_Y", "O_P", "O_BT", "O_G", "O_I"];
  for (const n of none) o[n] = 0;
  for (const n of ["STAGE", "W_Q", "W_X", "W_M", "W_A", "W_U", "W_E"]) o[n] = 0;
  o.NSTAGE = 2;
  o.VLATE = 0;
  // grouped split3's carry: no shared memory
  if (c.kind === "carry") {
    o.SMEM = 0;
    return o;
  }
  if (c.kind === "walkS") {
    // split3's state-only walk: per stage X~ (and M), the U0 tile, exp(G_n); three stages where they fit
    let s = 0;
    const sput = (name: string, bytes: number) => {
      o[name] = s;
      s += Math.ceil(bytes / 16) * 16;
    };
    sput("W_X", F * LDK * sz);
    sput("W_M", c.lr ? F * LDK * sz : 0);
    sput("W_U", F * LDV * sz);
    sput("W_E", c.KP * 4);
    o.STAGE = s;
    const rest = (c.lr ? Math.ceil((c.KP * LDV * sz) / 16) * 16 + Math.ceil((F * LDV * sz) / 16) * 16 : 0) + 64;
    o.NSTAGE = 3 * s + rest <= WALKS_SMEM_MAX ? 3 : 2;
    put("O_X", o.NSTAGE * s);
    if (c.lr) {
      put("O_SB", c.KP * LDV * sz);
      put("O_Z", F * LDV * sz);
    }
    // split-K walk: the k-slices' fp32 partials of Z (slices 1..) in the Y region
    if (c.wsplit === 1) put("O_Y", (walkKSlices(c) - 1) * F * LDY * 4);
    put("O_I", 16 * 4);
    o.SMEM = at;
    return o;
  }
  if (c.kind === "out") {
    // split3's readout: Q~, Aq, the Z tile and S0's value tile in, y (fp32) out
    put("O_Q", F * LDK * sz);
    put("O_AQB", F * LDF * sz);
    put("O_Z", F * LDV * sz);
    put("O_SB", c.KP * LDV * sz);
    put("O_Y", F * LDY * 4);
    put("O_I", 16 * 4);
    o.SMEM = at;
    return o;
  }
  if (c.kind === "walk") {
    let s = 0;
    const sput = (name: string, bytes: number) => {
      o[name] = s;
      s += Math.ceil(bytes / 16) * 16;
    };
    sput("W_Q", F * LDK * sz);
    sput("W_X", F * LDK * sz);
    sput("W_M", c.lr ? F * LDK * sz : 0);
    sput("W_A", F * LDF * sz);
    sput("W_U", F * LDV * sz);
    // splitd: exp(G_n), then fq, fx and alpha v's scale per row
    sput("W_E", (c.KP + (c.direct ? 3 * F : (c.qin ?? 0) * F)) * 4);
    o.STAGE = s;
    const rest = Math.ceil((c.KP * LDV * sz) / 16) * 16 + Math.ceil(((c.lr ? F * LDV * sz : 0)) / 16) * 16 + F * LDY * 4 + 64;
    // three records in flight when they fit the opt-in shared memory, else two
    // two records in flight (a three-deep pipeline passed the CPU emulation but its first GPU run, with
    // 64-value tiles, ended the process without an error; not used until that is understood)
    o.NSTAGE = 2;
    void rest;
    put("O_X", o.NSTAGE * s);
    put("O_SB", c.KP * LDV * sz);
    put("O_Z", c.lr || c.direct ? F * LDV * sz : 0);
    if (c.direct || c.qin === 2) put("O_ZX", F * LDV * sz);
    put("O_Y", F * LDY * 4);
    put("O_I", 16 * 4);
    o.SMEM = at;
    return o;
  }
  // W directly before Q: [W; Q] is one operand
  if (c.lr) put("O_W", F * LDK * sz);
  put("O_Q", F * LDK * sz);
  if (!c.lr) o.O_W = o.O_Q;
  put("O_X", F * LDK * sz);
  // phase A of a low-rank model loads alpha v after the inverse, into A's place (A is dead by then): one
  // region less, so that K = 128 fits two blocks per SM
  o.VLATE = c.kind === "phaseA" && c.lr && F * LDVA * sz <= F * LDA * 4 ? 1 : 0;
  // (a VIN phase A loads no alpha v: the walk copies it from the inputs)
  if (!o.VLATE && !(c.kind === "phaseA" && c.vin)) put("O_V", F * (c.kind === "phaseA" ? LDVA : LDV) * sz);
  const inv = F * LDA * 4 + (NB - 1) * 256 * 4 + F * LDF * sz; // TT, P, TB
  if (c.decay === 2) {
    put("O_D", C * c.KP * 4);
    put("O_L", (c.lr ? 2 * F : F) * LDK * sz);
    put("O_XS", F * LDK * sz);
    const xiR = 2 * F * LDK * sz;
    // phase A of a low-rank model: P in D's place (the decays are dead once A and Aq are formed) and T's operand
    // in XS's place (dead after the scale's first pass, which then syncs: seqc_chunk_scale), so that XI only has to
    // hold T: RWKV-7's phase A at K = 64 fits two blocks per SM (113 instead of 124 KiB)
    const tight = c.kind === "phaseA" && c.lr && C * c.KP * 4 >= (NB - 1) * 256 * 4 && LDK >= LDF;
    put("O_XI", Math.max(xiR, c.lr ? (tight ? F * LDA * 4 : inv) : 0));
    o.O_R = o.O_XI + F * LDK * sz;
    if (c.lr) {
      // T, P and TB live where XI and R were (dead once A and Aq are formed)
      o.O_TT = o.O_XI;
      o.O_P = tight ? o.O_D : o.O_TT + F * LDA * 4;
      o.O_TB = tight ? o.O_XS : o.O_P + (NB - 1) * 256 * 4;
    }
    put("O_BT", NB * c.KP * 4);
  } else if (c.lr) {
    put("O_TT", F * LDA * 4);
    put("O_P", (NB - 1) * 256 * 4);
    put("O_TB", F * LDF * sz);
  }
  if (c.lr) put("O_A", F * LDA * 4);
  // (the overlapped phase A loads it into X's place while the inverse still reads A: X is dead once its record copy is out)
  if (o.VLATE) o.O_V = c.ovl && LDVA <= LDK ? o.O_X : o.O_A;
  if (c.kind === "fused") put("O_Y", F * LDY * 4);
  put("O_AQB", F * LDF * sz);
  if (c.kind === "fused") {
    put("O_SB", c.KP * LDV * sz);
    if (c.lr) put("O_Z", F * LDV * sz);
  }
  put("O_G", (9 * F + 8 + c.KP + 5 * F) * 4);
  put("O_I", 16 * 4);
  // pipelined phase A: the staged item's [W; Q; X] (the same relative layout as the first buffer's)
  if (c.pipe) put("O_B1", (o.O_X - o.O_W) + F * LDK * sz);
  o.SMEM = at;
  return o;
}

export const threadsOf = (c: ChunkCfg) => c.NT ?? CHUNK_THREADS;
/** split3's low-rank walk: the warp tiles of Z = U0 + M S0 ((F / 16) x BV / (8 WN), chunked-core.ts SeqcWalkK::ZT). */
export const walkZTiles = (c: ChunkCfg): number => (CHUNK_F / 16) * (c.BV / (8 * (c.BV % 32 === 0 ? 4 : c.BV % 16 === 0 ? 2 : 1)));
/** The split-K walk's k-slices (SeqcWalkK::KS): the block's warps over Z's tiles. */
export const walkKSlices = (c: ChunkCfg): number => Math.floor(threadsOf(c) / 32 / walkZTiles(c));

export function cfgName(c: ChunkCfg): string {
  const v = c.kind === "fused" ? `v${c.BV}` : c.kind === "phaseA" ? `p${c.VP}` : `v${c.BV}p${c.VP}`;
  return `${c.kind}${c.direct ? "d" : ""}_${ioTag(c.dtype, outOf(c)).replace("-", "_")}_k${c.KP}_${v}_r${c.RTP}${threadsOf(c) !== CHUNK_THREADS ? `_t${threadsOf(c)}` : ""}${c.inv ? `_i${c.inv}` : ""}${c.mats ? `_m${c.mats}` : ""}${c.grp ? `_g${c.grp}${c.grpT ? "t" : ""}${c.grpM ? c.grpM : ""}` : ""}${c.wsplit ? `_w${c.wsplit === 1 ? "k" : "c"}` : ""}${c.pipe ? `_ap${c.pipe}` : ""}${c.rq ? "_wq" : ""}${c.ovl ? (c.ovl === 2 ? "_ios" : "_io") : ""}${c.gfold ? "_gf" : ""}${c.nbar ? "_nb" : ""}${c.vin ? (c.vin === 2 ? "_vib" : "_vi") : ""}${c.qin ? (c.qin === 2 ? "_qxi" : "_qi") : ""}${c.wcopy ? "_wcp" : ""}${c.sst ? "_st" : ""}`;
}

export function cfgStruct(c: ChunkCfg, name: string): string {
  const L = chunkLayout(c);
  const ints = Object.entries(L).map(([k, v]) => `${k} = ${v}`).join(", ");
  return `struct ${name} {
  typedef ${ELT[c.dtype]} T;
  static constexpr int F = ${CHUNK_F}, NT = ${threadsOf(c)}, KP = ${c.KP}, BV = ${c.BV}, VP = ${c.VP}, RTP = ${c.RTP}, DECAY = ${c.decay};
  static constexpr bool LR = ${c.lr};${c.inv ? "\n  static constexpr int INV = 1;" : ""}${c.mats ? "\n  static constexpr int MATS = 1;" : ""}${c.grp ? `\n  static constexpr int GRP = ${c.grp}, GRPT = ${c.grpT ? 1 : 0}${c.grpM ? `, GRPM = ${c.grpM}` : ""};` : ""}${c.wsplit ? `\n  static constexpr int WSPLIT = ${c.wsplit};` : ""}${c.pipe ? `\n  static constexpr int PIPE = ${c.pipe};` : ""}${c.rq ? "\n  static constexpr int RQ = 1;" : ""}${c.ovl ? `\n  static constexpr int OVL = ${c.ovl};` : ""}${c.gfold ? "\n  static constexpr int GF = 1;" : ""}${c.vin ? `\n  static constexpr int VIN = ${c.vin};` : ""}${c.qin ? `\n  static constexpr int QIN = ${c.qin};` : ""}
  static constexpr int ${ints};
};`;
}

// ---------------------------------------------------------------------------------------------
// the row loader of one model

interface Gen {
  model: I.Model;
  cr: ChunkRows;
  cx: RenderContext;
  overrides: string[];
  uniforms: string[];
}

const R = (g: Gen, e: K.KExpr) => renderExpr(e, g.cx);
const S = (g: Gen, body: K.KStmt[], ind: string) => renderStmts(body, g.cx, ind).join("\n");

/** Kernel expressions for the state's head coordinates from the flat head index `h`. */
let hcN = 0;
function headCoords(g: Gen, out: K.KStmt[]): K.KExpr[] {
  const u = hcN++;
  const Sd = g.model.tensors.find((t) => t.name === g.cr.form.state)!;
  const hs = g.cr.form.heads.map((p) => Sd.shape[p]);
  const coords: K.KExpr[] = new Array(hs.length);
  let rest: K.KExpr = K.ref("h");
  for (let a = hs.length - 1; a >= 0; a--) {
    if (a === 0) coords[a] = rest;
    else {
      out.push(K.decl(`hc${u}_${a}`, "u32", K.bin("%", rest, extentK(hs[a]))));
      out.push(K.decl(`hr${u}_${a}`, "u32", K.bin("/", rest, extentK(hs[a]))));
      coords[a] = K.ref(`hc${u}_${a}`);
      rest = K.ref(`hr${u}_${a}`);
    }
  }
  return coords;
}

/** A scope binding a part's variables: [loop?] -> n, heads -> head coords, axis -> `axis`. */
function partScope(g: Gen, p: RowPart, axis: K.KExpr | undefined, heads: K.KExpr[], prefix: string): CudaScope {
  const vars = new Map<number, K.KExpr>();
  let k = 0;
  if (p.loop !== undefined) vars.set(p.vars[k++].id, K.ref("n"));
  for (const hk of heads) vars.set(p.vars[k++].id, hk);
  if (axis && k < p.vars.length) vars.set(p.vars[k].id, axis);
  return new CudaScope({ model: g.model, b: K.ref("b"), t: K.ref("t"), vars, prefix, local: (t, idx) => stabRead(g, t, idx) });
}

/** The heads' sizes of the state (product: the flat head count). */
function headShape(g: Gen): I.Extent[] {
  const Sd = g.model.tensors.find((t) => t.name === g.cr.form.state)!;
  return g.cr.form.heads.map((p) => Sd.shape[p]);
}
/** Reads of the stabiliser's pseudo inputs: the workspace `stab`, [B][H][T + 2] = (log initial scale, m^, m_0 ... m_{T-1}). */
function stabRead(g: Gen, tensor: string, idx: K.KExpr[]): K.KExpr | undefined {
  if (tensor !== STAB_T && tensor !== STAB_PREV) return undefined;
  const base = K.mul(K.add(K.mul(K.ref("b"), productK(headShape(g))), flatIndex(idx, headShape(g))), K.add(K.uni("T"), K.u32(2)));
  return K.load("stab", K.add(base, K.add(K.ref("t"), K.u32(tensor === STAB_T ? 2 : 1))));
}
/** Address of another state (a value column over [heads, key], or the stabiliser over heads) at head h (and key i). */
function otherStateAddr(g: Gen, name: string, pre: K.KStmt[], key?: K.KExpr): K.KExpr {
  const d = g.model.tensors.find((t) => t.name === name)!;
  const heads = headCoords(g, pre);
  return K.add(K.add(K.uni(stateOffset(name)), K.mul(K.ref("b"), productK(d.shape))), flatIndex(key ? [...heads, key] : heads, d.shape));
}

/** Scalar value of a part (no axis). */
function scalarCode(g: Gen, p: RowPart | undefined, dflt: string, prefix: string, ind: string): { pre: string; v: string } {
  if (!p) return { pre: "", v: dflt };
  const pre: K.KStmt[] = [];
  const heads = headCoords(g, pre);
  const v = partScope(g, p, undefined, heads, prefix).lower(p.expr, pre);
  return { pre: S(g, pre, ind), v: R(g, v) };
}

/** A plain read of a non-optional input, contiguous along the part's last variable: its element-0 index. */
function aliasBase(g: Gen, p: RowPart, heads: K.KExpr[]): { tensor: string; base: K.KExpr } | undefined {
  const e = p.expr;
  if (e.k !== "read") return undefined;
  const t = I.findTensor(g.model, e.tensor);
  if (!t || t.kind !== "input" || t.init) return undefined;
  const axis = p.vars[p.vars.length - 1];
  const last = e.idx[e.idx.length - 1];
  if (last.kind !== "var" || last.v.id !== axis.id) return undefined;
  if (e.idx.slice(0, -1).some((ix) => ix.kind === "var" && ix.v.id === axis.id)) return undefined;
  const sc = partScope(g, p, K.u32(0), heads, "al");
  const idx = e.idx.map((ix) => (ix.kind === "lit" ? K.u32(ix.value) : sc.indexValue(ix.v)));
  const row = K.add(K.mul(K.ref("b"), K.uni("T")), K.ref("t"));
  return { tensor: e.tensor, base: K.add(K.mul(row, productK(t.shape)), flatIndex(idx, t.shape)) };
}

/** Multiplicative factors of an expression (through *, / and unary minus). */
function factorsOf(e: I.Expr): I.Expr[] {
  if (e.k === "neg") return [{ k: "num", value: -1 }, ...factorsOf(e.a)];
  if (e.k === "bin" && e.op === "*") return [...factorsOf(e.a), ...factorsOf(e.b)];
  if (e.k === "bin" && e.op === "/") return [...factorsOf(e.a), { k: "bin", op: "/", a: { k: "num", value: 1 }, b: e.b }];
  return [e];
}
const prodExpr = (fs: I.Expr[]): I.Expr => (fs.length ? fs.reduce((a, b) => ({ k: "bin", op: "*", a, b })) : { k: "num", value: 1 });

/**
 * A vector part that is one plain input read along its axis times factors free of the axis: the code of
 * its row pointer (`src`) and of the scalar factor, or undefined.
 */
function aliasCode(g: Gen, p: RowPart, extra: RowPart | undefined, prefix: string, ind: string): { src: string; scale: string } | undefined {
  const axis = p.vars[p.vars.length - 1].id;
  const fs = factorsOf(p.expr);
  const vec = fs.filter((f) => freeVarsOf(f).has(axis));
  if (vec.length !== 1) return undefined;
  const pre: K.KStmt[] = [];
  const heads = headCoords(g, pre);
  const al = aliasBase(g, { ...p, expr: vec[0] }, heads);
  if (!al) return undefined;
  const sc = partScope(g, { ...p, vars: p.vars.slice(0, -1) }, undefined, heads, `${prefix}s`);
  const sv = sc.lower(prodExpr(fs.filter((f) => !freeVarsOf(f).has(axis))), pre);
  let scale = R(g, sv);
  if (extra) {
    const e = scalarCode(g, extra, "1.f", `${prefix}x`, ind);
    return { src: `${S(g, pre, ind)}\n${e.pre}\n${ind}return ${inputBuffer(al.tensor)}.p + (${R(g, al.base)});`, scale: `${S(g, pre, ind)}\n${e.pre}\n${ind}return (${scale}) * (${e.v});` };
  }
  return { src: `${S(g, pre, ind)}\n${ind}return ${inputBuffer(al.tensor)}.p + (${R(g, al.base)});`, scale: `${S(g, pre, ind)}\n${ind}return ${scale};` };
}

/** Code filling o[0..7] with a vector part at axis positions a0 + m (zero past the axis extent), times `scale`. */
function vectorCode(g: Gen, p: RowPart, a0: string, extent: K.KExpr, scale: string, prefix: string, ind: string): string {
  const pre: K.KStmt[] = [];
  const heads = headCoords(g, pre);
  const lines = [S(g, pre, ind)];
  const ext = R(g, extent);
  const al = aliasBase(g, p, heads);
  const generic = () => {
    const body: K.KStmt[] = [];
    const v = partScope(g, p, K.ref("ax"), heads, prefix).lower(p.expr, body);
    return [
      `${ind}for (u32 m = 0; m < 8u; ++m) {`,
      `${ind}  const u32 ax = ${a0} + m;`,
      `${ind}  float val = 0.f;`,
      `${ind}  if (ax < ${ext}) {`,
      S(g, body, ind + "    "),
      `${ind}    val = ${R(g, v)};`,
      `${ind}  }`,
      `${ind}  o[m] = val * (${scale});`,
      `${ind}}`,
    ].join("\n");
  };
  if (al) {
    lines.push(`${ind}if ((${ext} & 7u) == 0u && ${a0} + 8u <= ${ext}) {`);
    lines.push(`${ind}  seqc_gld8(${inputBuffer(al.tensor)}.p + (${R(g, al.base)}) + ${a0}, o);`);
    lines.push(`${ind}  const float sc = ${scale};`);
    lines.push(`${ind}  for (int m = 0; m < 8; ++m) o[m] *= sc;`);
    lines.push(`${ind}} else {`);
    lines.push(generic());
    lines.push(`${ind}}`);
  } else lines.push(generic());
  return lines.filter((x) => x.trim()).join("\n");
}

/** Row decode: sets `spec` (index into rows), `n` (loop index) and `mic` (micro-step) from row slot r. */
function rowDecode(g: Gen, ind: string): string {
  const out: string[] = [`${ind}int spec = -1; u32 n = 0; int mic = -1;`, `${ind}{`, `${ind}  u32 rr = r, first = 0;`];
  g.cr.form.steps.forEach((st, s) => {
    const specs = g.cr.rows.map((x, i) => ({ x, i })).filter((x) => x.x.step === s);
    const ext = st.loop ? R(g, extentK(st.loop)) : "1u";
    if (specs.length) {
      out.push(`${ind}  if (spec < 0 && rr < ${specs.length}u * ${ext}) { n = rr / ${specs.length}u; const u32 k = rr % ${specs.length}u; mic = (int)(first + n);`);
      specs.forEach((x, k) => out.push(`${ind}    if (k == ${k}u) spec = ${x.i};`));
      out.push(`${ind}  } else if (spec < 0) rr -= ${specs.length}u * ${ext};`);
    }
    out.push(`${ind}  first += ${ext};`);
  });
  out.push(`${ind}  (void)first;`, `${ind}}`);
  return out.join("\n");
}

function rowsStruct(g: Gen, name: string): string {
  const { model, cr } = g;
  const form = cr.form;
  const Sd = model.tensors.find((t) => t.name === form.state)!;
  const inputs = I.tensorsOfKind(model, "input");
  const outputs = I.tensorsOfKind(model, "output");
  const keyExt = extentK(Sd.shape[form.key]);
  const valExt = extentK(Sd.shape[form.value]);
  const ind = "    ";
  const rowsWith = (pick: (r: RowSpec) => boolean) => cr.rows.map((r, i) => ({ r, i })).filter((x) => pick(x.r));
  const perRowVec = (fn: string, part: (r: RowSpec) => RowPart | undefined, scale: (r: RowSpec) => RowPart | undefined, ext: K.KExpr) => {
    const cases = rowsWith((r) => !!part(r)).map(({ r, i }) => {
      const sc = scalarCode(g, scale(r), "1.f", `${fn}s${i}`, ind + "    ");
      return `${ind}  case ${i}: {\n${sc.pre}\n${vectorCode(g, part(r)!, "a0", ext, sc.v, `${fn}${i}`, ind + "    ")}\n${ind}    return;\n${ind}  }`;
    });
    return `  __device__ void ${fn}(u32 b, u32 t, u32 r, u32 h, u32 a0, float* o) const {
${rowDecode(g, ind)}
    (void)n; (void)mic; (void)b; (void)t; (void)h;
    switch (spec) {
${cases.join("\n")}
    default: break;
    }
    for (int m = 0; m < 8; ++m) o[m] = 0.f;
  }`;
  };
  // row pointers and scalar factors of rows that are plain input reads (copied with cp.async by the core)
  const perRowAlias = (fn: string, part: (r: RowSpec) => RowPart | undefined, extra: (r: RowSpec) => RowPart | undefined) => {
    const cases: string[] = [];
    const scales: string[] = [];
    for (const { r, i } of rowsWith((x) => !!part(x))) {
      const a = aliasCode(g, part(r)!, extra(r), `${fn}${i}`, ind + "    ");
      if (!a) continue;
      cases.push(`${ind}  case ${i}: {\n${a.src}\n${ind}  }`);
      scales.push(`${ind}  case ${i}: {\n${a.scale}\n${ind}  }`);
    }
    const head = `${rowDecode(g, ind)}\n    (void)n; (void)mic; (void)b; (void)t; (void)h;`;
    return `  __device__ const Tio* src${fn}(u32 b, u32 t, u32 r, u32 h) const {
${head}
    switch (spec) {
${cases.join("\n")}
    default: return nullptr;
    }
  }
  __device__ float scale${fn}(u32 b, u32 t, u32 r, u32 h) const {
${head}
    switch (spec) {
${scales.join("\n")}
    default: return 1.f;
    }
  }`;
  };
  const tokenAlias = (fn: string, p: RowPart | undefined) => {
    const a = p ? aliasCode(g, p, undefined, fn, ind) : undefined;
    return `  __device__ const Tio* src${fn}(u32 b, u32 t, u32 h) const {
    const u32 n = 0; (void)n; (void)b; (void)t; (void)h;
${a ? a.src : `${ind}return nullptr;`}
  }
  __device__ float scale${fn}(u32 b, u32 t, u32 h) const {
    const u32 n = 0; (void)n; (void)b; (void)t; (void)h;
${a ? a.scale : `${ind}return 1.f;`}
  }`;
  };
  // scalar per row: beta (1 when the row reads and has no coefficient, 0 without a read)
  const betaCases = rowsWith((r) => !!r.w).map(({ r, i }) => {
    const sc = scalarCode(g, r.beta, "1.f", `be${i}`, ind + "    ");
    return `${ind}  case ${i}: {\n${sc.pre}\n${ind}    return ${sc.v};\n${ind}  }`;
  });
  // decays
  const ms = form.steps.map((st) => (st.loop ? R(g, extentK(st.loop)) : "1u"));
  const ldScalar = cr.ld.map((p, s) => {
    if (!p || cr.decay === "key") return "";
    const sc = scalarCode(g, p, "0.f", `ld${s}`, ind + "    ");
    return `${ind}for (u32 n = 0; n < ${ms[s]}; ++n, ++m) {\n${sc.pre}\n${ind}  const float l = ${sc.v};\n${ind}  for (int r = 0; r < RTP; ++r) { const int mr = micro((u32)r); if (mr > (int)m) pre[r] += l; else if (mr == (int)m) own[r] = l; }\n${ind}  if ((int)m < at) qpre += l;\n${ind}  tot += l;\n${ind}}`;
  });
  const ldSkip = cr.ld.map((p, s) => (p && cr.decay !== "key" ? "" : `${ind}m += ${ms[s]};`));
  const keyLd = cr.decay === "key" ? cr.ld.find((x) => x) : undefined;
  // state addressing
  const sStmts: K.KStmt[] = [];
  const heads = headCoords(g, sStmts);
  const sIdx: K.KExpr[] = Sd.shape.map((_, p) => {
    const hp = form.heads.indexOf(p);
    if (hp >= 0) return heads[hp];
    return p === form.key ? K.ref("i") : K.ref("j");
  });
  const sAddr = K.add(K.add(K.uni(stateOffset(Sd.name)), K.mul(K.ref("b"), productK(Sd.shape))), flatIndex(sIdx, Sd.shape));
  const initScope = new CudaScope({ model, b: K.ref("b"), t: K.u32(0), prefix: "si" });
  const initVal = Sd.init ? R(g, lowerConst(Sd.init, initScope)) : "0.f";
  // post
  const postCode = form.post.body.map((s, k) => {
    if (s.k !== "output") return "";
    const pre: K.KStmt[] = [];
    const hk = headCoords(g, pre);
    const vars = new Map<number, K.KExpr>();
    s.vars.forEach((v, p) => vars.set(v.id, p < form.heads.length ? hk[p] : K.ref("j")));
    const sc = new CudaScope({
      model: form.post,
      b: K.ref("b"),
      t: K.ref("t"),
      vars,
      prefix: `po${k}`,
      local: (tensor, idx) => {
        const ro = form.readouts[0];
        const yAt = (j: K.KExpr) => K.load("ybuf", K.add(K.mul(K.add(K.mul(K.add(K.mul(K.ref("b"), K.uni("T")), K.ref("t")), productK(headShape(g))), K.ref("h")), K.ref("VX")), j));
        if (tensor === ro.y) return cr.columns ? yAt(K.ref("j")) : K.ref("y", "f32");
        const c = ro.cols.indexOf(tensor);
        if (c >= 0) return yAt(K.add(K.ref("V0"), K.u32(c)));
        return stabRead(g, tensor, idx);
      },
    });
    const v = sc.lower(s.expr, pre);
    const o = outputs.find((x) => x.name === s.target)!;
    const idx = K.add(K.mul(K.add(K.mul(K.ref("b"), K.uni("T")), K.ref("t")), productK(o.shape)), flatIndex(s.vars.map((x) => vars.get(x.id)!), o.shape));
    return `    {\n${S(g, pre, "      ")}\n      seqc_st(${outputBuffer(o.name)}, ${R(g, idx)}, ${R(g, v)});\n    }`;
  });
  return `template <typename Tio, typename Tout = Tio> struct ${name} {
${inputs.map((t) => `  SeqcIn<Tio> ${inputBuffer(t.name)};`).join("\n")}
${outputs.map((t) => `  Tout* __restrict__ ${outputBuffer(t.name)};`).join("\n")}
  const float* __restrict__ params;
  float* __restrict__ ${STATES};
  float* __restrict__ stab;
  float* __restrict__ ybuf;
  SeqcU_${model.name} u;
  SeqcO_${model.name} ov;
  __device__ int micro(u32 r) const {
${rowDecode(g, ind)}
    (void)n; (void)spec;
    return mic;
  }
  __device__ int readoutAt() const {
    u32 at = 0;
${form.steps.map((_, s) => (s < form.readouts[0].after ? `    at += ${ms[s]};` : "")).filter(Boolean).join("\n")}
    return (int)at;
  }
${perRowVec("loadX", (r) => r.x, () => undefined, keyExt)}
${perRowVec("loadW", (r) => r.w, () => undefined, keyExt)}
${cr.columns ? loadVColumns(g) : perRowVec("loadV", (r) => r.v, (r) => r.alpha, valExt)}
${perRowAlias("X", (r) => r.x, () => undefined)}
${perRowAlias("W", (r) => r.w, () => undefined)}
${perRowAlias("V", (r) => (cr.columns ? undefined : r.v), (r) => r.alpha)}
${tokenAlias("Q", cr.q)}
${tokenAlias("Ld", keyLd)}
  __device__ u32 keyDim() const { return ${R(g, keyExt)}; }
  __device__ u32 valueDim() const { return ${R(g, valExt)}${cr.columns ? ` + ${cr.columns}u` : ""}; }
  __device__ u32 valueDim0() const { return ${R(g, valExt)}; }
  __device__ void loadQ(u32 b, u32 t, u32 h, u32 a0, float* o) const {
    const u32 n = 0; (void)n;
${vectorCode(g, cr.q, "a0", keyExt, "1.f", "q", ind)}
  }
  __device__ float beta(u32 b, u32 t, u32 r, u32 h) const {
${rowDecode(g, ind)}
    (void)n; (void)mic; (void)b; (void)t; (void)h;
    switch (spec) {
${betaCases.join("\n")}
    default: return 0.f;
    }
  }
  __device__ void decayKey(u32 b, u32 t, u32 h, u32 a0, float* o) const {
    const u32 n = 0; (void)n;
${keyLd ? vectorCode(g, keyLd, "a0", keyExt, "1.f", "ldk", ind) : `${ind}for (int m = 0; m < 8; ++m) o[m] = 0.f;`}
  }
  template <int RTP> __device__ void decayScalar(u32 b, u32 t, u32 h, float* pre, float* own, float& qpre, float& tot) const {
    const int at = readoutAt();
    u32 m = 0;
${form.steps.map((_, s) => ldScalar[s] || ldSkip[s]).join("\n")}
    (void)at; (void)m; (void)pre; (void)own; (void)qpre; (void)tot; (void)b; (void)t; (void)h;
  }
  __device__ u32 heads() const { return ${R(g, productK(headShape(g)))}; }
  __device__ float loadS0(u32 b, u32 h, u32 i, u32 j) const {
${columnLoads(g, ind)}
${S(g, sStmts, ind)}
    return u.${initFlag(Sd.name)} != 0u ? ${STATES}[${R(g, sAddr)}] : ${initVal};
  }
  __device__ float loadS(u32 b, u32 h, u32 i, u32 j) const {
${cr.stab ? `    const float sc = __expf(stab[((size_t)b * ${R(g, productK(headShape(g)))} + h) * (u.T + 2u)]);
    return sc == 0.f ? 0.f : sc * loadS0(b, h, i, j);` : "    return loadS0(b, h, i, j);"}
  }
  __device__ void storeS(u32 b, u32 h, u32 i, u32 j, float v) const {
${columnStores(g, ind)}
${S(g, sStmts, ind)}
    ${STATES}[${R(g, sAddr)}] = v;
  }
${stabMethods(g)}
${cr.columns
  ? `  __device__ void post(u32 b, u32 t, u32 h, u32 j, float y) const {
    ybuf[(((size_t)b * u.T + t) * ${R(g, productK(headShape(g)))} + h) * valueDim() + j] = y;
  }
  __device__ void postOut(u32 b, u32 t, u32 h, u32 j) const {
    const u32 VX = valueDim(), V0 = valueDim0(); (void)VX; (void)V0;
${postCode.join("\n")}
  }`
  : `  __device__ void post(u32 b, u32 t, u32 h, u32 j, float y) const {
${postCode.join("\n")}
  }`}
};`;
}

/** loadV of a form with value columns: value indices >= V give the row's column values (times alpha). */
function loadVColumns(g: Gen): string {
  const { cr } = g;
  const Sd = g.model.tensors.find((t) => t.name === cr.form.state)!;
  const ind = "    ";
  const cases = cr.rows.map((r, i) => {
    if (!r.v) return "";
    const pre: K.KStmt[] = [];
    const heads = headCoords(g, pre);
    const body: K.KStmt[] = [];
    const v = partScope(g, r.v, K.ref("ax"), heads, `lv${i}`).lower(r.v.expr, body);
    const cols = (r.cols ?? []).map((c, k) => {
      const cb: K.KStmt[] = [];
      const cv = partScope(g, c, undefined, heads, `lvc${i}_${k}`).lower(c.expr, cb);
      return `${ind}      else if (ax == V0 + ${k}u) {\n${S(g, cb, ind + "        ")}\n${ind}        val = ${R(g, cv)};\n${ind}      }`;
    });
    const sc = scalarCode(g, r.alpha, "1.f", `lva${i}`, ind + "    ");
    return `${ind}  case ${i}: {\n${S(g, pre, ind + "    ")}\n${sc.pre}\n${ind}    for (u32 m = 0; m < 8u; ++m) {\n${ind}      const u32 ax = a0 + m;\n${ind}      float val = 0.f;\n${ind}      if (ax < V0) {\n${S(g, body, ind + "        ")}\n${ind}        val = ${R(g, v)};\n${ind}      }\n${cols.join("\n")}\n${ind}      o[m] = val * (${sc.v});\n${ind}    }\n${ind}    return;\n${ind}  }`;
  });
  return `  __device__ void loadV(u32 b, u32 t, u32 r, u32 h, u32 a0, float* o) const {
    const u32 V0 = ${R(g, extentK(Sd.shape[cr.form.value]))};
${rowDecode(g, ind)}
    (void)n; (void)mic; (void)b; (void)t; (void)h;
    switch (spec) {
${cases.filter(Boolean).join("\n")}
    default: break;
    }
    for (int m = 0; m < 8; ++m) o[m] = 0.f;
  }`;
}

/** loadS0 / storeS at value indices >= V: the column states (their initial value when none is given). */
function columnLoads(g: Gen, ind: string): string {
  return columnCases(g, ind, "return 0.f;", (c, k) => {
    const d = g.model.tensors.find((t) => t.name === c)!;
    const init = d.init ? R(g, lowerConst(d.init, new CudaScope({ model: g.model, b: K.ref("b"), t: K.u32(0), prefix: `ci${k}` }))) : "0.f";
    return (a) => `return u.${initFlag(c)} != 0u ? ${STATES}[${a}] : ${init};`;
  });
}
function columnStores(g: Gen, ind: string): string {
  return columnCases(g, ind, "return;", () => (a) => `${STATES}[${a}] = v;`);
}
/** `if (j >= valueDim0())` with one case per value column; `access(c, k)` gives the case's statement from the column state's address. */
function columnCases(g: Gen, ind: string, fallthrough: string, access: (c: string, k: number) => (addr: string) => string): string {
  const cols = g.cr.form.columns;
  if (!cols.length) return "";
  const lines = [`${ind}if (j >= valueDim0()) {`];
  cols.forEach((c, k) => {
    const pre: K.KStmt[] = [];
    const a = otherStateAddr(g, c, pre, K.ref("i"));
    const stmt = access(c, k);
    lines.push(`${ind}  if (j - valueDim0() == ${k}u) {`, S(g, pre, ind + "    "), `${ind}    ${stmt(R(g, a))}`, `${ind}  }`);
  });
  lines.push(`${ind}  ${fallthrough}`, `${ind}}`);
  return lines.join("\n");
}

/** The stabiliser launch's per-model half: a_t and b_t, the initial m and the final store. */
function stabMethods(g: Gen): string {
  const { cr } = g;
  if (!cr.stab) return "";
  const st = cr.form.stabiliser!;
  const ind = "    ";
  const part = (p: RowPart, prefix: string) => {
    const pre: K.KStmt[] = [];
    const heads = headCoords(g, pre);
    const vars = new Map<number, K.KExpr>(p.vars.map((v, k) => [v.id, heads[k]]));
    const v = new CudaScope({ model: st.prep, b: K.ref("b"), t: K.ref("t"), vars, prefix }).lower(p.expr, pre);
    return `${S(g, pre, ind)}\n${ind}return ${R(g, v)};`;
  };
  const pre: K.KStmt[] = [];
  const a = otherStateAddr(g, st.state, pre);
  const d = g.model.tensors.find((t) => t.name === st.state)!;
  const init = d.init ? R(g, lowerConst(d.init, new CudaScope({ model: g.model, b: K.ref("b"), t: K.u32(0), prefix: "smi" }))) : "0.f";
  return `  __device__ float stabA(u32 b, u32 t, u32 h) const {
${part(cr.stab.a, "sa")}
  }
  __device__ float stabB(u32 b, u32 t, u32 h) const {
${part(cr.stab.b, "sb")}
  }
  __device__ float stabInit(u32 b, u32 h) const {
${S(g, pre, ind)}
    return u.${initFlag(st.state)} != 0u ? ${STATES}[${R(g, a)}] : ${init};
  }
  __device__ void stabFinal(u32 b, u32 h, float v) const {
${S(g, pre, ind)}
    ${STATES}[${R(g, a)}] = v;
  }`;
}

export interface ChunkModelSource {
  /** Structs, #defines and the row loader (one per model), without the core. */
  loader: string;
  /** Kernel name of a configuration. */
  entry: (c: ChunkCfg) => string;
  /** The extern "C" wrapper of a configuration. */
  wrapper: (c: ChunkCfg) => string;
  overrides: string[];
  uniforms: string[];
  /** Buffer order of every chunked kernel: inputs, outputs, params, states (and the workspaces: records for phase A and the walks, per-chunk states for split3's walk and readout). */
  inputs: string[];
  outputs: string[];
}

/** The workspaces every chunked kernel of a form with a stabiliser or value columns takes after its own (chunked-extra.ts). */
export function extraWorkspaces(cr: ChunkRows): string[] {
  return [...(cr.stab ? ["stab"] : []), ...(cr.columns ? ["ybuf"] : [])];
}
export function extraParams(cr: ChunkRows): string[] {
  return extraWorkspaces(cr).map((w) => `void* __restrict__ p_${w}`);
}
export function extraInit(cr: ChunkRows): string {
  return ["stab", "ybuf"].map((w) => `  rows.${w} = ${extraWorkspaces(cr).includes(w) ? `(float*)p_${w}` : "nullptr"};`).join("\n");
}

/** A chunked kernel's opening: shared memory and the row loader bound to the kernel's buffers (shared by the core and
 *  the extra launches); inputs of element type T, outputs of Tout. */
export function rowsSetup(rowsName: string, T: string, inputs: string[], outputs: string[], cr: ChunkRows, Tout: string = T): string {
  return `  SEQC_SMEM_DECL(seqc_smem);
  ${rowsName}<${T}, ${Tout}> rows;
${inputs.map((n) => `  rows.${inputBuffer(n)}.p = p_in_${n};`).join("\n")}
${outputs.map((n) => `  rows.${outputBuffer(n)} = p_out_${n};`).join("\n")}
  rows.params = params;
  rows.${STATES} = states;
${extraInit(cr)}
  rows.u = u;
  rows.ov = ov;`;
}

export function chunkModelSource(model: I.Model, cr: ChunkRows): ChunkModelSource {
  const overrides = [...model.dims.map((d) => `D_${d.name}`), ...I.tensorsOfKind(model, "param").map((p) => `PO_${p.name}`)];
  const uniforms = uniformFields(model);
  const g: Gen = { model, cr, cx: { overrides: new Set(overrides), uniforms: new Set(uniforms) }, overrides, uniforms };
  const rowsName = `SeqcRows_${model.name}`;
  const defs = overrides.map((o) => `#define SEQC_${o} (ov.${o})`).join("\n");
  const undefs = overrides.map((o) => `#undef SEQC_${o}`).join("\n");
  const loader = [
    `// ==== ${model.name}: chunked-form row loader (generated from the matrix form) ====`,
    `struct SeqcU_${model.name} { ${uniforms.map((u) => `unsigned int ${u};`).join(" ")} };`,
    `struct SeqcO_${model.name} { ${overrides.map((o) => `unsigned int ${o};`).join(" ") || "unsigned int _unused;"} };`,
    defs,
    rowsStruct(g, rowsName),
    undefs,
  ].join("\n");
  const inputs = I.tensorsOfKind(model, "input").map((t) => t.name);
  const outputs = I.tensorsOfKind(model, "output").map((t) => t.name);
  const Sd = model.tensors.find((t) => t.name === cr.form.state)!;
  const dimOf = (e: I.Extent) => (e.kind === "lit" ? `${e.value}u` : `ov.D_${e.name}`);
  const headsExpr = cr.form.heads.map((p) => dimOf(Sd.shape[p])).join(" * ") || "1u";
  /** The core's value extent: the state's value axis plus the value columns. */
  const valueDim = `${dimOf(Sd.shape[cr.form.value])}${cr.columns ? ` + ${cr.columns}u` : ""}`;
  const entry = (c: ChunkCfg) => `seqc_${model.name}_chunk_${cfgName(c)}`;
  const wrapper = (c: ChunkCfg) => {
    const T = ELT[c.dtype];
    const Tout = ELT[outOf(c)];
    const cfg = `SeqcCfg_${model.name}_${cfgName(c)}`;
    const params = [
      ...inputs.map((n) => `const ${T}* __restrict__ p_in_${n}`),
      ...outputs.map((n) => `${Tout}* __restrict__ p_out_${n}`),
      "const float* __restrict__ params",
      "float* __restrict__ states",
      ...(c.kind === "fused" || c.kind === "carry" ? [] : [`${T}* __restrict__ ws`]),
      ...(c.kind === "walkS" || c.kind === "out" || c.sst ? [`${T}* __restrict__ wsS`] : []),
      ...(c.grp ? ["float* __restrict__ wsG"] : []),
      ...extraParams(cr),
      `const SeqcU_${model.name} u`,
      `const SeqcO_${model.name} ov`,
    ];
    const call =
      c.kind === "fused"
        ? `seqc_chunk_fused<${cfg}>(rows, seqc_smem, ${dimOf(Sd.shape[cr.form.key])}, ${valueDim}, ${headsExpr});`
        : c.kind === "phaseA"
          ? `seqc_chunk_phase_a${c.direct ? "_d" : c.pipe ? "_p" : c.ovl ? (c.qin ? "_oq" : "_o") + (c.nbar ? "n" : "") : c.vin ? "_v" : ""}<${cfg}>(rows, seqc_smem, ws, ${headsExpr});`
          : c.kind === "walkS"
            ? `seqc_chunk_walk_${c.grp ? "g" : c.wsplit ? "k" : "s"}<${cfg}>(rows, seqc_smem, ws, wsS, ${c.grp ? "wsG, " : ""}${dimOf(Sd.shape[cr.form.key])}, ${valueDim}, ${headsExpr});`
            : c.kind === "out"
              ? `seqc_chunk_out${c.grp ? (c.grpM ? "_gm" : "_g") : ""}<${cfg}>(rows, seqc_smem, ws, wsS, ${c.grp ? "wsG, " : ""}${valueDim}, ${headsExpr});`
              : c.kind === "carry"
              ? `seqc_chunk_carry<${cfg}>(rows, wsG, ${dimOf(Sd.shape[cr.form.key])}, ${valueDim}, ${headsExpr});`
              : c.sst
                ? `seqc_chunk_walk_${c.wcopy ? "cst" : "st"}<${cfg}>(rows, seqc_smem, ws, wsS, ${dimOf(Sd.shape[cr.form.key])}, ${valueDim}, ${headsExpr});`
                : `seqc_chunk_walk${c.direct ? "_d" : c.rq ? "_q" : c.vin ? "_v" : c.wcopy ? "_c" : c.qin ? "_qi" : ""}<${cfg}>(rows, seqc_smem, ws, ${dimOf(Sd.shape[cr.form.key])}, ${valueDim}, ${headsExpr});`;
    return `${cfgStruct(c, cfg)}
extern "C" __global__ void __launch_bounds__(${threadsOf(c)}, ${c.minBlocks ?? 1}) ${entry(c)}(${params.join(", ")}) {
${rowsSetup(rowsName, T, inputs, outputs, cr, Tout)}
  ${call}
}`;
  };
  return { loader, entry, wrapper, overrides, uniforms, inputs, outputs };
}

export { overrideValues };
