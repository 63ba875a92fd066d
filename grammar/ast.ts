/** The .seq abstract syntax tree, produced from the CST by cst-to-ast.ts. */
import type { Span } from "./span.ts";

export interface Ident { name: string; span: Span }

export interface SeqFile { file: string; imports: ImportDecl[]; fns: FnDecl[]; models: ModelDecl[] }
export interface ImportDecl { path: string; span: Span }
export interface FnDecl { name: Ident; params: Ident[]; body: Expr; span: Span }
export interface ModelDecl { name: Ident; items: Item[]; span: Span }

export type Item = DimsDecl | TensorDecl | LetStmt | OutputStmt | AssignStmt | ForStmt;

/** `dims K = 64` fixes a size; `dims L = T` defaults L to the sequence length T of the call. */
export interface DimsDecl { kind: "dims"; dims: { name: Ident; value?: number; defaultDim?: Ident }[]; span: Span }
/** A shape entry is a dim name or an integer literal. */
export type ShapeEntry = { kind: "dim"; name: string; span: Span } | { kind: "lit"; value: number; span: Span };
export interface TensorDecl {
  kind: "input" | "param" | "state";
  name: Ident;
  shape: ShapeEntry[];
  init?: Expr;
  span: Span;
}
export interface Binder { name: Ident; extent?: ShapeEntry }
export interface LetStmt { kind: "let"; name: Ident; binders: Binder[]; expr: Expr; span: Span }
export interface OutputStmt { kind: "output"; name: Ident; binders: Binder[]; expr: Expr; span: Span }
export interface AssignStmt { kind: "assign"; name: Ident; binders: Binder[]; expr: Expr; span: Span }
export interface ForStmt { kind: "for"; var: Ident; extent: ShapeEntry; body: Item[]; span: Span }

export type IndexExpr = { kind: "var"; name: string; span: Span } | { kind: "lit"; value: number; span: Span };

export type Expr =
  | { kind: "num"; value: number; span: Span }
  | { kind: "ref"; name: string; span: Span }
  | { kind: "access"; name: string; indices: IndexExpr[]; span: Span }
  | { kind: "call"; fn: string; args: Expr[]; span: Span }
  | { kind: "unary"; op: "-"; arg: Expr; span: Span }
  | { kind: "binary"; op: BinOp; lhs: Expr; rhs: Expr; span: Span }
  | { kind: "sum"; vars: Ident[]; body: Expr; span: Span };

export type BinOp = "+" | "-" | "*" | "/" | "^" | "<" | "<=" | ">" | ">=" | "==" | "!=";
