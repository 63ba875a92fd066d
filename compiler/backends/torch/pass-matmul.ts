/**
 * Adjoint passes the torch runtime runs as one torch matrix product over all B x T steps (seqc_torch.py
 * `_param_pass` / `_input_pass`, PASS_MATMUL "torch") instead of their CUDA pass plans. Found on the pass models'
 * IR, not by model name:
 *   param pass  `W__bar[r.., c..] += A[r..] * X[c..]` (compiler/kernel/outer-sum.ts outerSum) where A and X are
 *               each one read of a pass input at exactly the row / column variables (full tensors, in order), the
 *               row variables before the columns in W's layout and the adjoint starting at 0:
 *               W__bar = A^T X with A [B T, |r..|], X [B T, |c..|] (an LSTM's dW_ih, dW_hh);
 *   input pass  `x__bar[c..] = sum(k..) A[k..] * P[k.., c..]` (compiler/kernel/param-product.ts paramProduct) where A
 *               is one read of a pass input at exactly the summed variables and P one read of a param at the summed
 *               then the output's variables: x__bar = A P with A [B T, |k..|], P [|k..|, |c..|] (an LSTM's dx).
 * Any other pass keeps its plans. The runtime's own layout of A / X over [B, T] does not matter (both sides of a
 * param pass are read over the same reversed steps; an input pass writes its rows in the order it reads them).
 */
import * as I from "../../ir/types.ts";
import { outerSum } from "../../kernel/outer-sum.ts";
import { paramProduct } from "../../kernel/param-product.ts";

/** A param pass as A^T X (`a`, `b`: pass input names, keys of its `reads`). */
export interface OuterMatmul { a: string; b: string }
/** An input pass as A P (`a`: a pass input name, `param`: the param). */
export interface ParamMatmul { a: string; param: string }

/** `e` is one read of a tensor of `kind` at exactly `vars` (every index a variable, in order, the whole tensor). */
function readAt(model: I.Model, e: I.Expr, vars: I.IndexVar[], kind: I.TensorKind): string | undefined {
  if (e.k !== "read") return undefined;
  const t = I.findTensor(model, e.tensor);
  if (!t || t.kind !== kind || t.shape.length !== vars.length || e.idx.length !== vars.length) return undefined;
  return e.idx.every((ix, i) => ix.kind === "var" && ix.v.id === vars[i].id) ? e.tensor : undefined;
}

const sameVars = (a: I.IndexVar[], b: I.IndexVar[]) => a.length === b.length && a.every((v, i) => v.id === b[i].id);

/** A param pass's outer product as A^T X, or undefined where it is not that shape. */
export function outerMatmul(model: I.Model): OuterMatmul | undefined {
  const o = outerSum(model);
  if ("why" in o || o.negative) return undefined;
  if (o.state.init && !(o.state.init.k === "num" && o.state.init.value === 0)) return undefined;
  if (!sameVars(o.stmt.vars, [...o.rowVars, ...o.colVars])) return undefined;
  const a = readAt(model, o.a, o.rowVars, "input");
  const b = readAt(model, o.b, o.colVars, "input");
  return a && b ? { a, b } : undefined;
}

/** An input pass's contraction with a param as A P, or undefined where it is not that shape. */
export function paramMatmul(model: I.Model): ParamMatmul | undefined {
  const p = paramProduct(model);
  if ("why" in p || p.negative) return undefined;
  const a = readAt(model, p.a, p.ks, "input");
  const param = readAt(model, p.p, [...p.ks, ...p.stmt.vars], "param");
  const out = I.findTensor(model, p.stmt.target);
  if (!out || out.shape.length !== p.stmt.vars.length) return undefined;
  return a && param ? { a, param } : undefined;
}
