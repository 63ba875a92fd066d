/**
 * Decompose an expression as   c + sum over terms of (coefficient * X[read indices])
 * with respect to one state X, or explain why that is impossible (X inside a nonlinearity,
 * X times X, division by X). Coefficients are kept as lists of factors with their summation
 * indices, which is what the transition classifier needs to spot diagonal and low-rank terms.
 */
import type * as I from "../ir/types.ts";
import { printExpr } from "../ir/print.ts";

export interface Term {
  factors: I.Expr[];
  /** Summation indices enclosing this term (from sum(...) around it). */
  sums: I.IndexVar[];
  read: Extract<I.Expr, { k: "read" }>;
}

/** `c` is null when the constant part is zero. */
export type Lin = { ok: true; c: I.Expr | null; terms: Term[] } | { ok: false; reason: string };

const num = (value: number): I.Expr => ({ k: "num", value });
const add = (a: I.Expr | null, b: I.Expr | null): I.Expr | null => (a && b ? { k: "bin", op: "+", a, b } : (a ?? b));
const mul = (a: I.Expr | null, b: I.Expr | null): I.Expr | null => (a && b ? { k: "bin", op: "*", a, b } : null);
const neg = (a: I.Expr | null): I.Expr | null => (a ? { k: "neg", a } : null);

export function linearize(e: I.Expr, isX: (tensor: string) => boolean): Lin {
  const L = (x: I.Expr): Lin => linearize(x, isX);
  const constant = (x: I.Expr): Lin => ({ ok: true, c: x, terms: [] });
  switch (e.k) {
    case "num":
    case "dim":
    case "idx":
    case "has":
      return constant(e);
    case "read":
      return isX(e.tensor) ? { ok: true, c: null, terms: [{ factors: [], sums: [], read: e }] } : constant(e);
    case "neg": {
      const a = L(e.a);
      if (!a.ok) return a;
      if (!a.terms.length) return constant(e);
      return { ok: true, c: neg(a.c), terms: a.terms.map((t) => ({ ...t, factors: [num(-1), ...t.factors] })) };
    }
    case "sum": {
      const b = L(e.body);
      if (!b.ok) return b;
      if (!b.terms.length) return constant(e);
      return { ok: true, c: b.c ? { k: "sum", vars: e.vars, body: b.c } : null, terms: b.terms.map((t) => ({ ...t, sums: [...e.vars, ...t.sums] })) };
    }
    case "bin": {
      const a = L(e.a);
      if (!a.ok) return a;
      const b = L(e.b);
      if (!b.ok) return b;
      const stateIn = (x: Lin & { ok: true }) => x.terms.length > 0;
      if (!stateIn(a) && !stateIn(b)) return constant(e);
      switch (e.op) {
        case "+":
          return { ok: true, c: add(a.c, b.c), terms: [...a.terms, ...b.terms] };
        case "-":
          return { ok: true, c: add(a.c, neg(b.c)), terms: [...a.terms, ...b.terms.map((t) => ({ ...t, factors: [num(-1), ...t.factors] }))] };
        case "*": {
          if (stateIn(a) && stateIn(b)) return { ok: false, reason: `state multiplied by state in ${short(e)}` };
          if (!stateIn(a) && !stateIn(b)) return constant(e);
          const [lin, k] = stateIn(a) ? [a, b.c] : [b, a.c];
          if (!k) return { ok: true, c: null, terms: [] };
          return { ok: true, c: mul(lin.c, k), terms: lin.terms.map((t) => ({ ...t, factors: [...t.factors, k] })) };
        }
        case "/": {
          if (stateIn(b)) return { ok: false, reason: `division by the state in ${short(e)}` };
          if (!stateIn(a)) return constant(e);
          const inv: I.Expr = { k: "bin", op: "/", a: num(1), b: e.b };
          return { ok: true, c: mul(a.c, inv), terms: a.terms.map((t) => ({ ...t, factors: [...t.factors, inv] })) };
        }
        default:
          if (stateIn(a) || stateIn(b)) return { ok: false, reason: `state inside '${e.op}' in ${short(e)}` };
          return constant(e);
      }
    }
    case "call": {
      const args = e.args.map(L);
      for (const a of args) if (!a.ok) return a;
      const lins = args as (Lin & { ok: true })[];
      if (!lins.some((a) => a.terms.length)) return constant(e);
      if (e.fn === "select" && lins[0].terms.length === 0) {
        const [c, x, y] = lins;
        const cond = e.args[0];
        const pick = (w: number[]): I.Expr => ({ k: "call", fn: "select", args: [cond, num(w[0]), num(w[1])] });
        return {
          ok: true,
          c: { k: "call", fn: "select", args: [cond, x.c ?? num(0), y.c ?? num(0)] },
          terms: [...x.terms.map((t) => ({ ...t, factors: [...t.factors, pick([1, 0])] })), ...y.terms.map((t) => ({ ...t, factors: [...t.factors, pick([0, 1])] }))],
        };
      }
      void lins;
      return { ok: false, reason: `state inside ${e.fn}(): ${short(e)}` };
    }
  }
}

function short(e: I.Expr): string {
  const s = printExpr(e);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

/** Index vars an expression depends on (free vars: sum-bound ones excluded). */
export function freeVars(e: I.Expr, out = new Set<number>(), bound = new Set<number>()): Set<number> {
  switch (e.k) {
    case "idx":
      if (!bound.has(e.v.id)) out.add(e.v.id);
      break;
    case "read":
      for (const ix of e.idx) if (ix.kind === "var" && !bound.has(ix.v.id)) out.add(ix.v.id);
      break;
    case "neg":
      freeVars(e.a, out, bound);
      break;
    case "bin":
      freeVars(e.a, out, bound);
      freeVars(e.b, out, bound);
      break;
    case "call":
      e.args.forEach((a) => freeVars(a, out, bound));
      break;
    case "sum": {
      const inner = new Set(bound);
      e.vars.forEach((v) => inner.add(v.id));
      freeVars(e.body, out, inner);
      break;
    }
  }
  return out;
}

/** Tensors read anywhere in an expression. */
export function tensorsRead(e: I.Expr, out = new Set<string>()): Set<string> {
  for (const r of allReads(e)) out.add(r.tensor);
  return out;
}

/** Every read in an expression (for head-axis detection). */
export function allReads(e: I.Expr, out: Extract<I.Expr, { k: "read" }>[] = []): Extract<I.Expr, { k: "read" }>[] {
  const walk = (x: I.Expr): void => {
    switch (x.k) {
      case "read": out.push(x); break;
      case "neg": walk(x.a); break;
      case "bin": walk(x.a); walk(x.b); break;
      case "call": x.args.forEach(walk); break;
      case "sum": walk(x.body); break;
    }
  };
  walk(e);
  return out;
}
