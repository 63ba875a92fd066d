import type { Expr } from "./types.ts";

/** `e` with `f` applied to each direct sub-expression (the node itself is rebuilt, leaves returned as they are). */
export function mapChildren(e: Expr, f: (x: Expr) => Expr): Expr {
  switch (e.k) {
    case "neg": return { k: "neg", a: f(e.a) };
    case "bin": return { k: "bin", op: e.op, a: f(e.a), b: f(e.b) };
    case "call": return { k: "call", fn: e.fn, args: e.args.map(f) };
    case "sum": return { k: "sum", vars: e.vars, body: f(e.body) };
    default: return e;
  }
}
