/**
 * Classify a state's transition operator A_t in  X_t = A_t(X_{t-1}) + b_t:
 * identity, scalar (one number per head slice), diagonal, diagonal+low-rank, dense, nonlinear.
 */
import * as I from "../ir/types.ts";
import { printExpr } from "../ir/print.ts";
import type { Def } from "./inline.ts";
import { allReads, freeVars, linearize, tensorsRead, type Term } from "./linearize.ts";
import type { StateAnalysis, TransitionClass } from "./types.ts";

export interface TransitionContext {
  model: I.Model;
  stateNames: Set<string>;
  updates: number;
  symbolicLoops: { v: string; extent: string }[];
}

export function analyzeTransition(decl: I.TensorDecl, def: Def | undefined, ctx: TransitionContext): StateAnalysis {
  const base = { name: decl.name, shape: I.shapeText(decl.shape), coefficientStates: [] as string[], coupledTo: [] as string[], updates: ctx.updates, notes: [] as string[], headAxes: [] as string[] };
  if (!def) {
    return { ...base, affine: true, class: "identity", notes: ["never updated: constant over time"] };
  }
  const X = decl.name;
  const L = def.vars;
  const heads = headVars(def, L);
  base.headAxes = L.filter((v) => heads.has(v.id)).map((v) => I.extentText(v.extent));
  const lin = linearize(def.expr, (t) => t === X);
  if (!lin.ok) {
    const notes = [...base.notes];
    const mp = maxPlus(def.expr, X);
    if (mp) notes.push(mp);
    return { ...base, affine: false, class: "nonlinear", reason: lin.reason, notes };
  }
  const otherStates = (e: I.Expr) => [...tensorsRead(e)].filter((t) => ctx.stateNames.has(t) && t !== X);
  const coefficientStates = new Set<string>();
  for (const t of lin.terms) for (const f of t.factors) otherStates(f).forEach((s) => coefficientStates.add(s));
  const coupledTo = lin.c ? [...new Set(otherStates(lin.c))] : [];
  base.coefficientStates = [...coefficientStates];
  base.coupledTo = coupledTo;

  const Lid = L.map((v) => v.id);
  const diag: Term[] = [];
  const mixing: Term[] = [];
  let dense: string | undefined;
  for (const t of lin.terms) {
    const kind = termKind(t, Lid);
    if (kind === "aligned") diag.push(t);
    else if (kind === "mixing") {
      const sep = separable(t, Lid);
      if (sep) mixing.push(t);
      else dense ??= `the coefficient of ${printExpr(t.read)} couples the written and read indices inseparably`;
    } else dense ??= `${printExpr(t.read)} is read at a permuted or fixed position`;
  }

  const diagClass = diagonalClass(diag, L, heads);
  let cls: TransitionClass;
  const notes = base.notes;
  if (dense) {
    cls = "dense";
    notes.push(dense);
  } else if (mixing.length) {
    cls = "diagonal+low-rank";
  } else cls = diagClass === "zero" ? "scalar" : diagClass;
  if (diagClass === "zero" && !mixing.length && !dense) notes.push("does not depend on its previous value (A_t = 0)");

  let rank: number | string | undefined;
  if (cls === "diagonal+low-rank") {
    const r = lowRank(mixing, Lid);
    rank = ctx.symbolicLoops.length ? `${r === 1 ? "" : r + "*"}${ctx.symbolicLoops.map((l) => l.extent).join("*")}` : r;
  }

  if (coefficientStates.size) {
    notes.push(`affine in ${X} given ${[...coefficientStates].join(", ")}: the coefficients depend on ${coefficientStates.size > 1 ? "those states" : "that state"}, so strictly not affine; its structure given them is ${cls}${rank !== undefined ? ` (rank ${rank})` : ""}`);
    return { ...base, affine: false, class: "nonlinear", reason: `coefficients depend on state ${[...coefficientStates].join(", ")}`, notes, diagonalPart: cls === "diagonal+low-rank" ? diagClass : undefined, rank };
  }
  const others = new Set(coupledTo);
  const joint = lin.c && coupledTo.length ? linearize(lin.c, (t) => others.has(t)) : undefined;
  if (joint && !joint.ok) {
    notes.push(`affine in ${X} alone (structure ${cls}${rank !== undefined ? `, rank ${rank}` : ""}), but its input term depends nonlinearly on state ${coupledTo.join(", ")}`);
    return { ...base, affine: false, class: "nonlinear", reason: `input term is nonlinear in state ${coupledTo.join(", ")} (${joint.reason})`, notes };
  }
  if (coupledTo.length) notes.push(`input term reads state ${coupledTo.join(", ")}: coupled with ${coupledTo.length > 1 ? "them" : "it"} (jointly affine system)`);

  const out: StateAnalysis = { ...base, affine: true, class: cls, notes };
  if (cls === "diagonal+low-rank") {
    out.diagonalPart = diagClass;
    out.rank = rank;
  }
  if ((cls === "identity" || cls === "scalar" || cls === "diagonal") && !coupledTo.length) {
    out.elementwise = { vars: L, a: coefficientSum(diag), b: lin.c ?? { k: "num", value: 0 } };
  }
  return out;
}

/** How a term's read of X relates to the written position. */
function termKind(t: Term, L: number[]): "aligned" | "mixing" | "general" {
  const sums = new Set(t.sums.map((v) => v.id));
  const seen = new Set<number>();
  let mixing = false;
  for (let p = 0; p < t.read.idx.length; p++) {
    const ix = t.read.idx[p];
    if (ix.kind !== "var") return "general";
    if (ix.v.id === L[p]) continue;
    if (sums.has(ix.v.id) && !seen.has(ix.v.id)) {
      seen.add(ix.v.id);
      mixing = true;
      continue;
    }
    return "general";
  }
  return mixing ? "mixing" : "aligned";
}

/** Out-side, in-side and scalar groups of a mixing term's factors, or null when not separable. */
function groups(t: Term, L: number[]): { out: I.Expr[]; in: I.Expr[] } | null {
  const outVars = new Set<number>();
  const inVars = new Set<number>();
  t.read.idx.forEach((ix, p) => {
    if (ix.kind === "var" && ix.v.id !== L[p]) {
      outVars.add(L[p]);
      inVars.add(ix.v.id);
    }
  });
  const inner = new Set(t.sums.map((v) => v.id).filter((id) => !inVars.has(id)));
  // union-find over factors connected through inner summation vars
  const n = t.factors.length;
  const parent = t.factors.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const fv = t.factors.map((f) => freeVars(f));
  const owner = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    for (const v of fv[i]) {
      if (!inner.has(v)) continue;
      const o = owner.get(v);
      if (o === undefined) owner.set(v, i);
      else parent[find(i)] = find(o);
    }
  }
  const comp = new Map<number, { hasOut: boolean; hasIn: boolean; fs: I.Expr[] }>();
  for (let i = 0; i < n; i++) {
    const r = find(i);
    const c = comp.get(r) ?? { hasOut: false, hasIn: false, fs: [] };
    for (const v of fv[i]) {
      if (outVars.has(v)) c.hasOut = true;
      if (inVars.has(v)) c.hasIn = true;
    }
    c.fs.push(t.factors[i]);
    comp.set(r, c);
  }
  const out: I.Expr[] = [];
  const inn: I.Expr[] = [];
  for (const c of comp.values()) {
    if (c.hasOut && c.hasIn) return null;
    if (c.hasOut) out.push(...c.fs);
    else if (c.hasIn) inn.push(...c.fs);
  }
  return { out, in: inn };
}

function separable(t: Term, L: number[]): boolean {
  return groups(t, L) !== null;
}

/** Rank of the low-rank part: distinct out-side vectors vs distinct in-side vectors. */
function lowRank(mixing: Term[], L: number[]): number {
  const outs = new Set<string>();
  const ins = new Set<string>();
  for (const t of mixing) {
    const g = groups(t, L)!;
    outs.add(key(g.out));
    ins.add(key(g.in));
  }
  return Math.min(outs.size, ins.size);
}

/** A printable key of a factor group (same vector -> same key, up to the names of summation letters). */
function key(fs: I.Expr[]): string {
  return fs.map((f) => printExpr(f)).sort().join("*");
}

function coefficientSum(diag: Term[]): I.Expr {
  const one: I.Expr = { k: "num", value: 1 };
  const terms = diag.map((t): I.Expr => {
    const prod = t.factors.reduce<I.Expr | null>((acc, f) => (acc ? { k: "bin", op: "*", a: acc, b: f } : f), null) ?? one;
    return t.sums.length ? { k: "sum", vars: t.sums, body: prod } : prod;
  });
  return terms.reduce<I.Expr | null>((acc, x) => (acc ? { k: "bin", op: "+", a: acc, b: x } : x), null) ?? { k: "num", value: 0 };
}

function diagonalClass(diag: Term[], L: I.IndexVar[], heads: Set<number>): "identity" | "scalar" | "diagonal" | "zero" {
  if (!diag.length) return "zero";
  if (diag.length === 1 && !diag[0].sums.length && diag[0].factors.every((f) => f.k === "num") && diag[0].factors.reduce((p, f) => p * (f as { value: number }).value, 1) === 1) {
    return "identity";
  }
  const Lids = new Set(L.map((v) => v.id));
  const used = new Set<number>();
  for (const t of diag) for (const f of t.factors) for (const v of freeVars(f)) if (Lids.has(v)) used.add(v);
  const nonHead = L.filter((v) => !heads.has(v.id));
  if ([...used].every((v) => heads.has(v)) && nonHead.length > 0) return "scalar";
  return "diagonal";
}

/** Written indices carried by every read in the update: the computation is independent and uniform along them. */
function headVars(def: Def, L: I.IndexVar[]): Set<number> {
  const heads = new Set(L.map((v) => v.id));
  for (const r of allReads(def.expr)) {
    const carried = new Set(r.idx.filter((ix): ix is { kind: "var"; v: I.IndexVar } => ix.kind === "var").map((ix) => ix.v.id));
    for (const h of [...heads]) if (!carried.has(h)) heads.delete(h);
  }
  return heads;
}

/** Recognise m_t = max(m_{t-1} + a_t, b_t) (or min): associative in the (max, +) semiring. */
function maxPlus(e: I.Expr, X: string): string | undefined {
  if (e.k !== "call" || (e.fn !== "max" && e.fn !== "min")) return undefined;
  const parts = e.args.map((a) => linearize(a, (t) => t === X));
  const isShift = (l: ReturnType<typeof linearize>) =>
    l.ok && l.terms.length === 1 && l.terms[0].factors.every((f) => f.k === "num" && f.value === 1) && !l.terms[0].sums.length;
  const isFree = (l: ReturnType<typeof linearize>) => l.ok && l.terms.length === 0;
  if ((isShift(parts[0]) && isFree(parts[1])) || (isShift(parts[1]) && isFree(parts[0]))) {
    return `${e.fn}-plus recurrence ${X}_t = ${e.fn}(${X}_{t-1} + a_t, b_t): not affine in the ordinary sense, but associative in the (${e.fn}, +) semiring, so it can be scanned`;
  }
  return undefined;
}
