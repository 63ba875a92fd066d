/**
 * The row structure the chunked kernels work on, derived from the matrix canonical form
 * (matrix-form.ts) once for every backend.
 *
 * Within a token the core applies micro-steps; a micro-step reads r_e = w_e^T S (low-rank pairs) and
 * adds outer products u_e r_e^T and kk_p vv_p^T. The kernels regroup these terms into *rows*: a row has
 * a key vector x, and its value z = alpha * v + beta * r (v over the value axis, r = w^T S read just
 * before the row's micro-step), and contributes x z^T. A low-rank pair and an input pair of the same
 * micro-step whose key vectors differ only by a per-token scalar (DeltaNet: u = -beta k, kk = beta k)
 * merge into one row (x = k, alpha = beta, beta = -beta): z = beta (v - k^T S), the delta rule's
 * "new value". Unmerged pairs become rows of their own (alpha = 0 or beta = 0).
 *
 * Per chunk the kernels then solve, for the rows' values Z (rows in micro-step order),
 *     (I - diag(beta) A) Z = alpha V + diag(beta) W~ S0,        A[f,f'] = w_f^T D(f <- f') x_f'
 * and compute y = Q~ S0 + Aq Z and S' = exp(G_n) S0 + X~^T Z (chunk-rows-ref.ts writes it out).
 * Value columns (normalisers) extend the value axis: a row's z there is alpha times its column value
 * (RowSpec.cols), and the kernels' value extent is V + columns. A stabilised form's parts read the pseudo
 * inputs m@t / m@prev, which the backends answer from the stabiliser pass's buffer (ChunkRows.stab).
 */
import * as I from "../ir/types.ts";
import { printExpr } from "../ir/print.ts";
import { freeVars } from "../analysis/linearize.ts";
import { extentSize } from "../ir/types.ts";
import { STAB_T, type MatrixForm } from "./matrix-form.ts";
import type { SizeExpr } from "../../runtime/plan.ts";
import { extentS, productS } from "../kernel/symbolic.ts";

/** A scalar (per token, head and loop index) or vector (also over the key or value axis) expression of a prep output statement's variables. */
export interface RowPart {
  /** The prep output statement whose variables the expression uses ([loop?, heads..., axis?]). */
  stmt: string;
  expr: I.Expr;
  vars: I.IndexVar[];
  /** Position of the loop variable in `vars` (when the statement is inside a micro-step loop). */
  loop?: number;
}

export interface RowSpec {
  /** Index into MatrixForm.steps; loop steps repeat their rows per loop index. */
  step: number;
  loop: boolean;
  x: RowPart;
  w?: RowPart;
  v?: RowPart;
  alpha?: RowPart;
  beta?: RowPart;
  /** Values of the extra value columns (MatrixForm.columns), scalars per token and head; z there = alpha * col. */
  cols?: RowPart[];
  /** How the row came about (explain, tests). */
  kind: "merged" | "low-rank" | "input";
}

export interface ChunkRows {
  form: MatrixForm;
  rows: RowSpec[];
  /** The readout vector q (over heads and key). */
  q: RowPart;
  /** Expanded micro-step count per token is `microSteps(dims)`; the readout sees micro-steps < `readoutAt(dims)`. */
  decay: "none" | "scalar" | "key";
  lowRank: boolean;
  /** ld per MicroStep entry (prep output over [loop?, heads..., key?]). */
  ld: (RowPart | undefined)[];
  /** Post outputs are pointwise over (heads, value) with y read at their own index and the column readouts and the stabiliser at their own heads. */
  postPointwise: boolean;
  /** Extra value columns: the kernels' value extent is V + columns (column readouts go to post as `form.readouts[0].cols`). */
  columns: number;
  /** The stabiliser's a and b (over heads) when the form has one: a pass before the core computes m_t = max(a_t + m_{t-1}, b_t). */
  stab?: { a: RowPart; b: RowPart };
}

export type ChunkRowsResult = { ok: true; rows: ChunkRows } | { ok: false; reason: string };

/** Multiplicative factors of an expression (through *, / and unary minus). */
function factorsOf(e: I.Expr): I.Expr[] {
  if (e.k === "neg") return [{ k: "num", value: -1 }, ...factorsOf(e.a)];
  if (e.k === "bin" && e.op === "*") return [...factorsOf(e.a), ...factorsOf(e.b)];
  if (e.k === "bin" && e.op === "/") return [...factorsOf(e.a), { k: "bin", op: "/", a: { k: "num", value: 1 }, b: e.b }];
  return [e];
}
const product = (fs: I.Expr[]): I.Expr => (fs.length === 0 ? { k: "num", value: 1 } : fs.reduce((a, b) => ({ k: "bin", op: "*", a, b })));

/** Split a prep output into (vector part over the statement's last variable) x (scalar part). */
function splitVector(stmt: { target: string; vars: I.IndexVar[]; expr: I.Expr }, loop: number | undefined): { vec: RowPart; scale: RowPart } {
  const axis = stmt.vars[stmt.vars.length - 1].id;
  const fs = factorsOf(stmt.expr);
  const vec = fs.filter((f) => freeVars(f).has(axis));
  const sca = fs.filter((f) => !freeVars(f).has(axis));
  return {
    vec: { stmt: stmt.target, expr: product(vec), vars: stmt.vars, loop },
    scale: { stmt: stmt.target, expr: product(sca), vars: stmt.vars.slice(0, -1), loop },
  };
}

/** Print an expression with the statement's variables replaced by their positions (to compare parts of different statements). */
function canonical(p: RowPart): string {
  const pos = new Map(p.vars.map((v, i) => [v.id, i]));
  const ren = (e: I.Expr): I.Expr => {
    switch (e.k) {
      case "idx": return pos.has(e.v.id) ? { k: "idx", v: { ...e.v, name: `#${pos.get(e.v.id)}` } } : e;
      case "read": return { ...e, idx: e.idx.map((ix) => (ix.kind === "var" && pos.has(ix.v.id) ? { kind: "var", v: { ...ix.v, name: `#${pos.get(ix.v.id)}` } } : ix)) };
      case "neg": return { k: "neg", a: ren(e.a) };
      case "bin": return { ...e, a: ren(e.a), b: ren(e.b) };
      case "call": return { ...e, args: e.args.map(ren) };
      case "sum": return { ...e, body: ren(e.body) };
      default: return e;
    }
  };
  return printExpr(ren(p.expr));
}

const isOne = (p: RowPart | undefined) => !p || (p.expr.k === "num" && p.expr.value === 1);

export function chunkRows(form: MatrixForm): ChunkRowsResult {
  const stmts = new Map<string, { target: string; vars: I.IndexVar[]; expr: I.Expr }>();
  for (const s of form.prep.body) if (s.k === "output") stmts.set(s.target, s);
  const get = (name: string) => {
    const s = stmts.get(name);
    if (!s) throw new Error(`chunk rows: no prep output ${name}`);
    return s;
  };
  if (form.readouts.length !== 1) return { ok: false, reason: `the chunked kernels take one readout per token (this model has ${form.readouts.length})` };
  if (form.decay === "key" && (form.steps.length !== 1 || form.steps[0].loop)) return { ok: false, reason: "a per-key decay is supported with one micro-step per token" };
  if (form.columns.length && form.lowRank) return { ok: false, reason: "value columns (normalisers) are supported without low-rank terms" };
  if (form.stabiliser && (form.decay === "key" || form.steps.length !== 1)) return { ok: false, reason: "a stabiliser is supported with a scalar decay and one micro-step per token" };
  const rows: RowSpec[] = [];
  form.steps.forEach((st, si) => {
    const loop = st.loop ? 0 : undefined;
    const whole = (name: string): RowPart => ({ stmt: name, expr: get(name).expr, vars: get(name).vars, loop });
    const inputs = st.inputs.map((p) => ({ p, split: splitVector(get(p.k), loop), used: false }));
    for (const lr of st.lowRank) {
      const us = splitVector(get(lr.u), loop);
      const mate = inputs.find((x) => !x.used && canonical(x.split.vec) === canonical(us.vec));
      if (mate) {
        mate.used = true;
        rows.push({ step: si, loop: !!st.loop, kind: "merged", x: us.vec, w: whole(lr.w), v: whole(mate.p.v), alpha: mate.split.scale, beta: us.scale });
      } else rows.push({ step: si, loop: !!st.loop, kind: "low-rank", x: whole(lr.u), w: whole(lr.w) });
    }
    for (const x of inputs) if (!x.used) rows.push({ step: si, loop: !!st.loop, kind: "input", x: whole(x.p.k), v: whole(x.p.v), cols: x.p.cols?.map(whole) });
  });
  for (const r of rows) {
    if (isOne(r.alpha)) r.alpha = undefined;
    if (isOne(r.beta)) r.beta = undefined;
  }
  const qs = get(form.readouts[0].q);
  const ld = form.steps.map((st) => (st.ld ? { stmt: st.ld.name, expr: get(st.ld.name).expr, vars: get(st.ld.name).vars, loop: st.loop ? 0 : undefined } : undefined));
  return {
    ok: true,
    rows: {
      form,
      rows,
      q: { stmt: qs.target, expr: qs.expr, vars: qs.vars },
      decay: form.decay,
      lowRank: rows.some((r) => r.w),
      ld,
      postPointwise: postIsPointwise(form),
      columns: form.columns.length,
      stab: form.stabiliser ? stabParts(form) : undefined,
    },
  };
}

function stabParts(form: MatrixForm): { a: RowPart; b: RowPart } {
  const st = form.stabiliser!;
  const part = (name: string): RowPart => {
    const s = st.prep.body.find((x) => x.k === "output" && x.target === name) as { target: string; vars: I.IndexVar[]; expr: I.Expr };
    return { stmt: s.target, expr: s.expr, vars: s.vars };
  };
  return { a: part(st.a), b: part(st.b) };
}

/** Rows per token for given dims (loop rows repeat J times). */
export function rowsPerToken(cr: ChunkRows, dims: Record<string, number>): number {
  return cr.rows.reduce((a, r) => a + (r.loop ? loopExtent(cr, r.step, dims) : 1), 0);
}
export function loopExtent(cr: ChunkRows, step: number, dims: Record<string, number>): number {
  const l = cr.form.steps[step].loop;
  return l ? extentSize(l, dims) : 1;
}
/** Expanded micro-steps per token, the first micro-step of every MicroStep entry, and the readout point. */
export function microSteps(cr: ChunkRows, dims: Record<string, number>): { count: number; first: number[]; readoutAt: number } {
  const first: number[] = [];
  let m = 0;
  cr.form.steps.forEach((_, s) => {
    first.push(m);
    m += loopExtent(cr, s, dims);
  });
  const after = cr.form.readouts[0].after;
  return { count: m, first, readoutAt: after < first.length ? first[after] : m };
}

/** The expanded rows of one token: row r -> spec, loop index and micro-step. */
export function expandRows(cr: ChunkRows, dims: Record<string, number>): { spec: RowSpec; n: number; micro: number }[] {
  const ms = microSteps(cr, dims);
  const out: { spec: RowSpec; n: number; micro: number }[] = [];
  // rows in micro-step order: per MicroStep entry, per loop index, its rows
  cr.form.steps.forEach((_, s) => {
    const specs = cr.rows.filter((r) => r.step === s);
    for (let n = 0; n < loopExtent(cr, s, dims); n++) for (const spec of specs) out.push({ spec, n, micro: ms.first[s] + n });
  });
  return out;
}

/**
 * Post can run in the kernel's epilogue when every post output has the shape [heads..., value] of y and
 * reads every y at its own index.
 */
function postIsPointwise(form: MatrixForm): boolean {
  const ys = new Set(form.readouts.map((r) => r.y));
  const perHead = new Set([...form.readouts.flatMap((r) => r.cols), ...(form.stabiliser ? [STAB_T] : [])]);
  for (const s of form.post.body) {
    if (s.k !== "output") return false;
    if (s.vars.length !== form.heads.length + 1) return false;
    let ok = true;
    I.walkExpr(s.expr, (e) => {
      if (e.k === "read" && ys.has(e.tensor) && (e.idx.length !== s.vars.length || e.idx.some((ix, p) => ix.kind !== "var" || ix.v.id !== s.vars[p].id))) ok = false;
      if (e.k === "read" && perHead.has(e.tensor) && (e.idx.length !== form.heads.length || e.idx.some((ix, p) => ix.kind !== "var" || ix.v.id !== s.vars[p].id))) ok = false;
    });
    if (!ok) return false;
  }
  return true;
}

/** One line per row for explain and tests. */
export function describeRows(cr: ChunkRows): string[] {
  return cr.rows.map((r) => {
    const p = (x?: RowPart) => (x ? printExpr(x.expr) : "");
    const z = [r.v ? `${r.alpha ? `(${p(r.alpha)}) * ` : ""}${p(r.v)}` : "", r.w ? `${r.beta ? `(${p(r.beta)}) * ` : ""}(${p(r.w)})^T S` : ""].filter(Boolean).join(" + ");
    const cols = r.cols?.length ? `, columns ${r.cols.map((c) => `${r.alpha ? `(${p(r.alpha)}) * ` : ""}${p(c)}`).join(", ")}` : "";
    return `${r.kind} row${r.loop ? " (per loop index)" : ""}: x = ${p(r.x)}, z = ${z}${cols}`;
  });
}

/**
 * The state's sizes as launch-plan expressions, shared by every backend's chunked plan: key and value
 * extents (the value extent counts the extra value columns), the number of head slices, the decay class (0 none, 1 scalar, 2 per key) and low rank.
 */
export function chunkSizes(model: I.Model, cr: ChunkRows): { Kd: SizeExpr; Vd: SizeExpr; nH: SizeExpr; decay: 0 | 1 | 2; lr: boolean } {
  const form = cr.form;
  const S = model.tensors.find((t) => t.name === form.state)!;
  return {
    Kd: extentS(S.shape[form.key]),
    Vd: cr.columns ? ["+", extentS(S.shape[form.value]), cr.columns] : extentS(S.shape[form.value]),
    nH: productS(form.heads.map((p) => S.shape[p])),
    decay: cr.decay === "key" ? 2 : cr.decay === "scalar" ? 1 : 0,
    lr: cr.lowRank,
  };
}
