/**
 * The lowered kernel IR: one compute kernel, backend-neutral. The WGSL renderer (and later the
 * CUDA one) prints it; nothing here knows a backend's syntax.
 *
 * - buffers: global arrays of f32 with an access mode (storage buffers / pointers);
 * - uniforms: u32 values set per launch (B, T, presence flags);
 * - overrides: u32 specialisation constants fixed when the pipeline is made (dims, offsets,
 *   workgroup size; WGSL `override`, CUDA template/NVRTC constants);
 * - shared: workgroup arrays of f32 whose length is an override expression;
 * - body: structured statements; `barrier` is a workgroup barrier and must be in uniform control flow.
 * Thread coordinates come from builtins: `lid` (thread in workgroup) and `wg` (flat workgroup index,
 * the renderer folds a 3-D grid into it).
 */

/** `vec4f`: four f32 lanes, the value of a `load4` (16-byte loads); only `lane` reads it. */
export type KType = "f32" | "u32" | "i32" | "bool" | "vec4f";

export type KBinOp = "+" | "-" | "*" | "/" | "%" | "<" | "<=" | ">" | ">=" | "==" | "!=" | "&&" | "||" | "min" | "max";

/** Language-level math functions (names as in compiler/ir/builtins.ts) plus a few kernel helpers. */
export type KMathFn = string;

export type KExpr =
  | { k: "f32"; v: number }
  | { k: "u32"; v: number }
  | { k: "bool"; v: boolean }
  /** A local variable, a loop variable, an override constant, a builtin (lid, wg) or a uniform (u.name). */
  | { k: "ref"; name: string; t: KType }
  | { k: "uniform"; name: string }
  | { k: "load"; array: string; index: KExpr }
  /**
   * Four consecutive f32 of a buffer in one 16-byte load: elements 4 * index .. 4 * index + 3 (index
   * counts vec4s). A kernel that reads an array this way reads it only this way (the renderers declare
   * it as an array of vec4); its byte size must be a multiple of 16.
   */
  | { k: "load4"; array: string; index: KExpr }
  /** Lane i (0..3) of a vec4f value. */
  | { k: "lane"; a: KExpr; i: number }
  | { k: "bin"; op: KBinOp; a: KExpr; b: KExpr; t: KType }
  | { k: "neg"; a: KExpr; t: KType }
  | { k: "not"; a: KExpr }
  | { k: "call"; fn: KMathFn; args: KExpr[] }
  | { k: "cast"; to: KType; a: KExpr }
  | { k: "select"; cond: KExpr; then: KExpr; else: KExpr; t: KType }
  /** +infinity as f32 (not a literal in every backend). */
  | { k: "inf" };

export type KStmt =
  | { k: "decl"; name: string; t: KType; init?: KExpr; mutable: boolean }
  | { k: "set"; name: string; value: KExpr }
  | { k: "store"; array: string; index: KExpr; value: KExpr }
  /** for (var v: u32 = from; v < to; v += step) */
  | { k: "for"; v: string; from: KExpr; to: KExpr; step: KExpr; body: KStmt[] }
  | { k: "if"; cond: KExpr; then: KStmt[]; else?: KStmt[] }
  /** Workgroup barrier; `storage`: also orders storage-buffer accesses of the workgroup. */
  | { k: "barrier"; storage?: boolean }
  | { k: "return" }
  | { k: "comment"; text: string };

export interface KBuffer {
  name: string;
  binding: number;
  access: "read" | "read_write";
}

export interface KShared {
  name: string;
  /** Element count, an override expression. */
  length: KExpr;
}

export interface KOverride {
  name: string;
  /** Default when the launch plan gives none. */
  init?: number;
}

/** A private (per-thread) array of constant length, for values kept in registers. */
export interface KPrivateArray {
  name: string;
  length: number;
}

export interface Kernel {
  name: string;
  /** Threads per workgroup: an override name or a constant. */
  workgroupSize: KExpr;
  buffers: KBuffer[];
  uniformBinding: number;
  uniforms: string[];
  overrides: KOverride[];
  shared: KShared[];
  body: KStmt[];
  /** Optional capabilities the kernel needs (e.g. "subgroups"); the renderer checks them. */
  needs: string[];
  /**
   * A kernel launched once per step (plan `steps`) or once per block of steps (plan `block`): the
   * binding of the uniform holding the step index and its block of steps, which the body reads as the
   * variables STEP_INDEX, BLOCK_T0, BLOCK_T1 and BLOCK_TC.
   */
  stepUniform?: number;
}

/** The step index of a kernel with `stepUniform` (a block's kernel: the block's first step). */
export const STEP_INDEX = "step_index";
/** The block of steps holding STEP_INDEX: its first step, one past its last, and the steps per whole block (the hoisted rows per batch row). */
export const BLOCK_T0 = "block_t0";
export const BLOCK_T1 = "block_t1";
export const BLOCK_TC = "block_tc";

// ---------- builders ----------
export const f32 = (v: number): KExpr => ({ k: "f32", v });
export const u32 = (v: number): KExpr => ({ k: "u32", v });
export const ref = (name: string, t: KType = "u32"): KExpr => ({ k: "ref", name, t });
export const uni = (name: string): KExpr => ({ k: "uniform", name });
export const bin = (op: KBinOp, a: KExpr, b: KExpr, t?: KType): KExpr => ({ k: "bin", op, a, b, t: t ?? (["<", "<=", ">", ">=", "==", "!=", "&&", "||"].includes(op) ? "bool" : typeOf(a)) });
export const add = (a: KExpr, b: KExpr): KExpr => (isZero(b) ? a : isZero(a) ? b : bin("+", a, b));
export const mul = (a: KExpr, b: KExpr): KExpr => (isOne(b) ? a : isOne(a) ? b : bin("*", a, b));
export const call = (fn: string, ...args: KExpr[]): KExpr => ({ k: "call", fn, args });
export const cast = (to: KType, a: KExpr): KExpr => (typeOf(a) === to ? a : { k: "cast", to, a });
export const sel = (cond: KExpr, then: KExpr, els: KExpr): KExpr => ({ k: "select", cond, then, else: els, t: typeOf(then) });
export const load = (array: string, index: KExpr): KExpr => ({ k: "load", array, index });
export const load4 = (array: string, index: KExpr): KExpr => ({ k: "load4", array, index });
export const lane = (a: KExpr, i: number): KExpr => {
  if (!(Number.isInteger(i) && i >= 0 && i < 4)) throw new Error(`lane ${i} of a vec4 (0..3)`);
  return { k: "lane", a, i };
};
export const decl = (name: string, t: KType, init?: KExpr, mutable = false): KStmt => ({ k: "decl", name, t, init, mutable });
export const set = (name: string, value: KExpr): KStmt => ({ k: "set", name, value });
export const store = (array: string, index: KExpr, value: KExpr): KStmt => ({ k: "store", array, index, value });
export const forLoop = (v: string, from: KExpr, to: KExpr, body: KStmt[], step: KExpr = u32(1)): KStmt => ({ k: "for", v, from, to, step, body });
export const ifThen = (cond: KExpr, then: KStmt[], els?: KStmt[]): KStmt => ({ k: "if", cond, then, else: els });

const isZero = (e: KExpr) => (e.k === "u32" || e.k === "f32") && e.v === 0;
const isOne = (e: KExpr) => (e.k === "u32" || e.k === "f32") && e.v === 1;

export function typeOf(e: KExpr): KType {
  switch (e.k) {
    case "f32":
    case "inf":
    case "load":
    case "call":
    case "lane":
      return "f32";
    case "load4":
      return "vec4f";
    case "u32":
    case "uniform":
      return "u32";
    case "bool":
    case "not":
      return "bool";
    case "ref":
    case "bin":
    case "neg":
    case "select":
      return e.t;
    case "cast":
      return e.to;
  }
}

/** Visit every statement (pre-order), descending into loops and branches. */
export function walkKStmts(body: KStmt[], f: (s: KStmt) => void): void {
  for (const s of body) {
    f(s);
    if (s.k === "for") walkKStmts(s.body, f);
    if (s.k === "if") {
      walkKStmts(s.then, f);
      if (s.else) walkKStmts(s.else, f);
    }
  }
}

export function walkKExpr(e: KExpr, f: (e: KExpr) => void): void {
  f(e);
  switch (e.k) {
    case "load":
    case "load4": walkKExpr(e.index, f); break;
    case "lane": walkKExpr(e.a, f); break;
    case "bin": walkKExpr(e.a, f); walkKExpr(e.b, f); break;
    case "neg":
    case "not":
    case "cast": walkKExpr(e.a, f); break;
    case "call": e.args.forEach((a) => walkKExpr(a, f)); break;
    case "select": walkKExpr(e.cond, f); walkKExpr(e.then, f); walkKExpr(e.else, f); break;
  }
}

/** Every expression directly held by a statement. */
export function stmtExprs(s: KStmt): KExpr[] {
  switch (s.k) {
    case "decl": return s.init ? [s.init] : [];
    case "set": return [s.value];
    case "store": return [s.index, s.value];
    case "for": return [s.from, s.to, s.step];
    case "if": return [s.cond];
    default: return [];
  }
}

/** Names of the arrays (buffers or shared) a kernel body reads or writes. */
export function usedArrays(body: KStmt[]): Set<string> {
  const used = new Set<string>();
  const visit = (e: KExpr) => walkKExpr(e, (x) => (x.k === "load" || x.k === "load4") && used.add(x.array));
  walkKStmts(body, (s) => {
    if (s.k === "store") used.add(s.array);
    stmtExprs(s).forEach(visit);
  });
  return used;
}

/**
 * The arrays a kernel body reads with `load4` (declared as arrays of vec4 by the renderers). An array
 * also read or written element-wise in the same body is an error: one declaration cannot serve both.
 */
export function vec4Arrays(body: KStmt[]): Set<string> {
  const vec = new Set<string>();
  const scalar = new Set<string>();
  const visit = (e: KExpr) =>
    walkKExpr(e, (x) => {
      if (x.k === "load4") vec.add(x.array);
      if (x.k === "load") scalar.add(x.array);
    });
  walkKStmts(body, (s) => {
    if (s.k === "store") scalar.add(s.array);
    stmtExprs(s).forEach(visit);
  });
  for (const a of vec) if (scalar.has(a)) throw new Error(`array ${a} is read with load4 and element-wise in one kernel`);
  return vec;
}
