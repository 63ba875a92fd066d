/**
 * What a matvec cell's step computes without the state, taken out of the recurrence (the batch cell's second
 * version, `-batch2`, matvec-cell-batch.ts). In a backward core most of a step's pointwise work does not depend on the
 * state adjoints: the recomputed gates (sigmoid(pre), tanh(pre), c, tanh(c)) and the factors the adjoints are
 * multiplied by (`sigmoid(pre_o) * (1 - tanh(c)^2)`, `tanh(c) * sigmoid'(pre_o)`, ...) read only the step's inputs,
 * the hoisted projections and the params. Inside the recurrence they sit on the serial chain of every step, one
 * warp of accurate expf/tanhf per batch row; here:
 *   - every maximal state-free subexpression of a state-dependent statement that reads only the unit variable
 *     (literal indices otherwise) and holds a call becomes a per-unit value `__K<k>[j]` (equal subexpressions
 *     share one: common-subexpression elimination, with `x ^ 2` read as `x * x`);
 *   - an elementwise kernel computes them for every (b, t, j) at once, in parallel, before the recurrence (with
 *     the state-free lets they read: the gates recomputed once, not once per use);
 *   - the recurrence reads them like the hoisted projections (staged ahead), and keeps only what depends on the
 *     state: at an LSTM core, a few multiply-adds a step.
 * Found on the cell plan's IR (matvecCellPlan), not by model name; it applies where some value moved holds a call.
 */
import * as I from "../../ir/types.ts";
import { mapChildren } from "../../ir/map.ts";
import { tensorsRead } from "./scope.ts";
import type { CellPlan } from "./matvec-cell.ts";

type Body = CellPlan["body"];
type Stmt = Body[number];

export interface HoistedCell {
  /** The model with the per-unit values declared (lets `__K<k>` over the unit dim). */
  model: I.Model;
  /** Statements of the elementwise kernel: the state-free lets the values read, then the values (`let __K<k>[j]`). */
  pre: Body;
  /** The values, in order. */
  keys: string[];
  /** The recurrence's statements: the values read where their subexpressions were, the state-free lets no longer read dropped. */
  body: Body;
}

export const K_PREFIX = "__K";

/** `x ^ 2` as `x * x` (an algebraic simplification: one multiply, no powf). */
function square(e: I.Expr): I.Expr {
  const m = mapChildren(e, square);
  return m.k === "bin" && m.op === "^" && m.b.k === "num" && m.b.value === 2 ? { k: "bin", op: "*", a: m.a, b: m.a } : m;
}

/** The index variables an expression uses (in reads, `idx` nodes and sums). */
function varsOf(e: I.Expr): Set<number> {
  const out = new Set<number>();
  I.walkExpr(e, (x) => {
    if (x.k === "idx") out.add(x.v.id);
    if (x.k === "read") for (const ix of x.idx) if (ix.kind === "var") out.add(ix.v.id);
    if (x.k === "sum") for (const v of x.vars) out.add(v.id);
  });
  return out;
}

/** `e` with index variable `from` replaced by `to`. */
function renameVar(e: I.Expr, from: number, to: I.IndexVar): I.Expr {
  if (e.k === "idx") return e.v.id === from ? { k: "idx", v: to } : e;
  if (e.k === "read") return { ...e, idx: e.idx.map((ix) => (ix.kind === "var" && ix.v.id === from ? { kind: "var", v: to } : ix)) };
  return mapChildren(e, (x) => renameVar(x, from, to));
}

export function hoistStateFree(model: I.Model, plan: CellPlan): HoistedCell | undefined {
  const { unit, body } = plan;
  const kindOf = (name: string) => I.findTensor(model, name)?.kind;
  // state-free lets, in order: every read an input, a param, a hoisted projection or an earlier state-free let
  const free = new Set<string>();
  const isFree = (e: I.Expr) => {
    let ok = true;
    I.walkExpr(e, (x) => {
      if (x.k !== "read") return;
      if (x.tensor.startsWith("__X")) return;
      if (x.tensor.startsWith("__")) ok = false; // a matvec result (__R) reads the state
      else if (kindOf(x.tensor) === "let") ok &&= free.has(x.tensor);
      else ok &&= kindOf(x.tensor) === "input" || kindOf(x.tensor) === "param";
    });
    return ok;
  };
  for (const s of body) if (s.k === "let" && isFree(s.expr)) free.add(s.target);

  const span = model.span;
  const unitExt: I.Extent = { kind: "dim", name: unit };
  const keys = new Map<string, { name: string; expr: I.Expr }>();
  const kv: I.IndexVar = { id: 3_000_000, name: "kj", extent: unitExt }; // the values' unit variable
  let holdsCall = false;
  const extract = (e: I.Expr, u: I.IndexVar): I.Expr => {
    const vs = varsOf(e);
    const trivial = e.k === "num" || e.k === "dim" || e.k === "idx" || (e.k === "read" && kindOf(e.tensor) !== "let");
    if (!trivial && isFree(e) && [...vs].every((v) => v === u.id)) {
      const expr = renameVar(e, u.id, kv);
      const key = JSON.stringify(expr, (k, x) => (k === "span" ? undefined : x));
      if (!keys.has(key)) keys.set(key, { name: `${K_PREFIX}${keys.size}`, expr });
      let call = false;
      I.walkExpr(e, (x) => void (x.k === "call" && (call = true)));
      holdsCall ||= call;
      return { k: "read", tensor: keys.get(key)!.name, idx: [{ kind: "var", v: u }] };
    }
    return mapChildren(e, (x) => extract(x, u));
  };
  const rest: Body = [];
  for (const s0 of body) {
    if (s0.k === "let" && free.has(s0.target)) {
      rest.push(s0);
      continue;
    }
    const u = s0.vars.find((v) => v.extent.kind === "dim" && v.extent.name === unit)!;
    rest.push({ ...s0, expr: extract(square(s0.expr), u) });
  }
  if (!holdsCall) return undefined;
  // the state-free lets the recurrence still reads stay in it; the elementwise kernel gets those its values read
  const needed = (roots: I.Expr[]) => {
    const need = new Set<string>();
    for (const e of roots) tensorsRead(e, need);
    for (let i = body.length - 1; i >= 0; i--) {
      const s = body[i];
      if (s.k === "let" && free.has(s.target) && need.has(s.target)) tensorsRead(s.expr, need);
    }
    return need;
  };
  const kept = needed(rest.filter((s) => !(s.k === "let" && free.has(s.target))).map((s) => s.expr));
  const newBody = rest.filter((s) => !(s.k === "let" && free.has(s.target)) || kept.has(s.target));
  const kList = [...keys.values()];
  const forK = needed(kList.map((k) => k.expr));
  const kDefs: Stmt[] = kList.map((k) => ({ k: "let", target: k.name, vars: [kv], expr: k.expr, span }));
  const pre: Body = [...body.filter((s) => s.k === "let" && free.has(s.target) && forK.has(s.target)).map((s) => ({ ...s, expr: square(s.expr) })), ...kDefs];
  const decls: I.TensorDecl[] = kList.map((k) => ({ name: k.name, kind: "let", shape: [unitExt], span }));
  return { model: { ...model, tensors: [...model.tensors, ...decls] }, pre, keys: kList.map((k) => k.name), body: newBody };
}
