/**
 * The resolved, shape-checked IR of one model's per-step computation.
 *
 * Semantics (defined by interpret.ts): for every batch element and every time step t, the
 * statements run in order. A state holds its current value: reading it before its update in
 * step t gives its value from step t-1; an update writes the whole state at once (all reads in
 * the right-hand side see the value before the statement); reads after the update see the new
 * value. `let`s and outputs are recomputed every step; outputs are recorded per step.
 */
import type { Span } from "../../grammar/index.ts";

/** The size of one axis: a named dim (bound at create time or fixed) or a literal. */
export type Extent = { kind: "dim"; name: string } | { kind: "lit"; value: number };

/** `fixed`: a constant size. `sequenceDefault`: when not given, the size is the call's sequence length T. */
export interface DimDecl { name: string; fixed?: number; sequenceDefault?: boolean; span: Span }

export type TensorKind = "input" | "param" | "state" | "let" | "output";

export interface TensorDecl {
  name: string;
  kind: TensorKind;
  shape: Extent[];
  /** Default for optional inputs/params, initial value for states: a scalar expression. */
  init?: Expr;
  span: Span;
}

/** An index variable; `id` is unique within a model. */
export interface IndexVar { id: number; name: string; extent: Extent }

export type Index = { kind: "var"; v: IndexVar } | { kind: "lit"; value: number };

export type Expr =
  | { k: "num"; value: number }
  | { k: "dim"; name: string }
  | { k: "idx"; v: IndexVar }
  | { k: "read"; tensor: string; idx: Index[] }
  | { k: "call"; fn: string; args: Expr[] }
  | { k: "bin"; op: BinOp; a: Expr; b: Expr }
  | { k: "neg"; a: Expr }
  | { k: "sum"; vars: IndexVar[]; body: Expr }
  /** 1 when the optional input/param was supplied, else 0. */
  | { k: "has"; tensor: string };

export type BinOp = "+" | "-" | "*" | "/" | "^" | "<" | "<=" | ">" | ">=" | "==" | "!=";

export type Stmt =
  | { k: "let" | "assign" | "output"; target: string; vars: IndexVar[]; expr: Expr; span: Span }
  | { k: "for"; v: IndexVar; body: Stmt[]; span: Span };

export interface Model {
  name: string;
  file: string;
  span: Span;
  dims: DimDecl[];
  /** Every named tensor: inputs, params, states, lets and outputs, in declaration order. */
  tensors: TensorDecl[];
  body: Stmt[];
}

export const tensorsOfKind = (m: Model, kind: TensorKind): TensorDecl[] => m.tensors.filter((t) => t.kind === kind);
export const findTensor = (m: Model, name: string): TensorDecl | undefined => m.tensors.find((t) => t.name === name);

export function extentSize(e: Extent, dims: Record<string, number>): number {
  if (e.kind === "lit") return e.value;
  const v = dims[e.name];
  if (v === undefined) throw new Error(`dim ${e.name} is not bound`);
  return v;
}

export function extentText(e: Extent): string {
  return e.kind === "lit" ? String(e.value) : e.name;
}

export function shapeText(shape: Extent[]): string {
  return `[${shape.map(extentText).join(", ")}]`;
}

export function sameExtent(a: Extent, b: Extent, dims: DimDecl[]): boolean {
  const val = (e: Extent) => (e.kind === "lit" ? e.value : dims.find((d) => d.name === e.name)?.fixed);
  if (a.kind === "dim" && b.kind === "dim" && a.name === b.name) return true;
  const va = val(a);
  const vb = val(b);
  return va !== undefined && va === vb;
}

/** Walk every statement, descending into for-loops. */
export function walkStmts(body: Stmt[], f: (s: Stmt, loopVars: IndexVar[]) => void, loopVars: IndexVar[] = []): void {
  for (const s of body) {
    f(s, loopVars);
    if (s.k === "for") walkStmts(s.body, f, [...loopVars, s.v]);
  }
}

/** Visit every sub-expression (pre-order). */
export function walkExpr(e: Expr, f: (e: Expr) => void): void {
  f(e);
  switch (e.k) {
    case "call": e.args.forEach((a) => walkExpr(a, f)); break;
    case "bin": walkExpr(e.a, f); walkExpr(e.b, f); break;
    case "neg": walkExpr(e.a, f); break;
    case "sum": walkExpr(e.body, f); break;
  }
}
