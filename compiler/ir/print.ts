/** Pretty-print IR expressions and statements back in .seq syntax (explain output, notes, baselines). */
import type * as I from "./types.ts";

const PREC: Record<string, number> = { "<": 1, "<=": 1, ">": 1, ">=": 1, "==": 1, "!=": 1, "+": 2, "-": 2, "*": 3, "/": 3, "^": 5 };

export function printIndex(ix: I.Index): string {
  return ix.kind === "lit" ? String(ix.value) : ix.v.name;
}

export function printExpr(e: I.Expr, parent = 0): string {
  switch (e.k) {
    case "num":
      return e.value === Infinity ? "inf" : e.value === -Infinity ? "-inf" : Number.isNaN(e.value) ? "nan" : String(e.value);
    case "dim":
      return e.name;
    case "idx":
      return e.v.name;
    case "has":
      return `has(${e.tensor})`;
    case "read":
      return e.idx.length ? `${e.tensor}[${e.idx.map(printIndex).join(",")}]` : e.tensor;
    case "call":
      return `${e.fn}(${e.args.map((a) => printExpr(a)).join(", ")})`;
    case "neg": {
      const s = `-${printExpr(e.a, 4)}`;
      return parent >= 4 ? `(${s})` : s;
    }
    case "bin": {
      const p = PREC[e.op];
      const right = e.op === "^" ? p : p + 1;
      const s = `${printExpr(e.a, e.op === "^" ? p + 1 : p)} ${e.op} ${printExpr(e.b, right)}`.replace(/ \^ /g, "^");
      return p < parent ? `(${s})` : s;
    }
    case "sum": {
      const s = `sum(${e.vars.map((v) => v.name).join(", ")}) ${printExpr(e.body, 3)}`;
      return parent > 2 ? `(${s})` : s;
    }
  }
}

export function printStmt(s: I.Stmt, indent = ""): string {
  if (s.k === "for") return `${indent}for ${s.v.name} in ${s.v.extent.kind === "lit" ? s.v.extent.value : s.v.extent.name} {\n${s.body.map((b) => printStmt(b, indent + "  ")).join("\n")}\n${indent}}`;
  const lhs = s.vars.length ? `${s.target}[${s.vars.map((v) => v.name).join(",")}]` : s.target;
  const kw = s.k === "let" ? "let " : s.k === "output" ? "output " : "";
  return `${indent}${kw}${lhs} = ${printExpr(s.expr)}`;
}
