/**
 * A model without state whose one output is a contraction of per-step values with a param,
 *   O[c..] = sum(k..) a(k..) * p(k.., c..)        (a: a product of reads of the step's inputs at k..;
 *                                                   p: a product of reads of params)
 * is, over all B x T steps at once, one matrix product: rows the (batch row, step) pairs, columns O's
 * elements, depth k... An input's adjoint pass is this shape (compiler/grad/split.ts: an LSTM's
 * x_bar[i] = sum(g, j) pre_bar[g, j] * W_ih[g, j, i], W_ih^T times the gate adjoints). The per-element
 * sequential form reads the param once per (row, element); this form runs the forward hoisting's tiled
 * product (hoist.ts tiledProduct), which stages each param slice once per tile of 64 rows.
 *
 * The split comes from the IR: the sum's factors (a product tree) are grouped by what they read; the
 * row side reads only inputs and only at the summed indices (and literals), the column side reads only
 * params. Anything else keeps the per-element forms.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import { analyzePartition } from "./partition.ts";
import { StepLowering } from "./step.ts";
import { lowerExpr } from "./lower-expr.ts";
import { productK, productS, mulS } from "./symbolic.ts";
import { terms, tiledProduct, decodeIndex, TILE } from "./hoist.ts";
import { outputBuffer } from "./interface.ts";
import type { LoweredForm } from "./sequential.ts";
import { factors, matmulForm, productOf } from "./outer-sum.ts";

export interface ParamProduct {
  stmt: Exclude<I.Stmt, { k: "for" }>;
  out: I.TensorDecl;
  /** The summed variables: the product's depth, row-major. */
  ks: I.IndexVar[];
  /** Product of the row-side (per-step) factors and of the column-side (param) factors. */
  a: I.Expr;
  p: I.Expr;
  negative: boolean;
}

/** The param-product shape of `model`, or why it is not one. */
export function paramProduct(model: I.Model): ParamProduct | { why: string } {
  if (I.tensorsOfKind(model, "state").length) return { why: "the model has a state" };
  const stmt = model.body[0];
  if (model.body.length !== 1 || stmt.k !== "output") return { why: "not one output statement" };
  const ts = terms(stmt.expr);
  let negative = ts.length === 1 && ts[0].negative;
  let e = ts[0].e;
  while (e.k === "neg") {
    negative = !negative;
    e = e.a;
  }
  if (ts.length !== 1 || e.k !== "sum") return { why: "the output is not one sum" };
  const sum = e;
  const ks = new Set(sum.vars.map((v) => v.id));
  const rowF: I.Expr[] = [];
  const colF: I.Expr[] = [];
  for (const f of factors(sum.body)) {
    let input = false;
    let param = false;
    let other = false;
    let outVar = false;
    I.walkExpr(f, (x) => {
      if (x.k === "sum" || x.k === "has") other = true;
      if (x.k === "idx" && !ks.has(x.v.id)) outVar = true;
      if (x.k !== "read") return;
      const kind = I.findTensor(model, x.tensor)?.kind;
      if (kind === "input") input = true;
      else if (kind === "param") param = true;
      else other = true;
      for (const ix of x.idx) if (ix.kind === "var" && !ks.has(ix.v.id)) outVar = true;
    });
    if (other) return { why: "a factor sums, tests presence or reads something other than an input or a param" };
    if (input && param) return { why: "a factor reads both an input and a param" };
    if (param) colF.push(f);
    else if (input && !outVar) rowF.push(f);
    else if (input) return { why: "a per-step factor is indexed by the output's own indices" };
    else colF.push(f);
  }
  if (!rowF.length || !colF.some((f) => JSON.stringify(f).includes('"read"'))) return { why: "not a product of per-step values and a param" };
  return { stmt, out: I.findTensor(model, stmt.target)!, ks: sum.vars, a: productOf(rowF), p: productOf(colF), negative };
}

/** The matrix-product form of a param product (form "sequential", variant "matmul"), or why not. */
export function lowerParamProduct(model: I.Model): LoweredForm | { why: string } {
  const o = paramProduct(model);
  if ("why" in o) return o;
  const step = new StepLowering({ model, partition: analyzePartition(model), variant: "workgroup", owner: K.u32(0), columns: K.u32(1), t: K.ref("t") });
  const colsK = productK(o.out.shape);
  const depthK = productK(o.ks.map((v) => v.extent));
  const body: K.KStmt[] = [
    K.decl("MR", "u32", K.mul(K.uni("B"), K.uni("T"))),
    K.decl("NC", "u32", colsK),
    K.decl("NCT", "u32", K.bin("/", K.add(K.ref("NC"), K.u32(TILE - 1)), K.u32(TILE))),
    // workgroup -> (row tile over the B x T steps, column tile)
    K.decl("rowBase", "u32", K.mul(K.bin("/", K.ref("wg"), K.ref("NCT")), K.u32(TILE))),
    K.decl("colBase", "u32", K.mul(K.bin("%", K.ref("wg"), K.ref("NCT")), K.u32(TILE))),
  ];
  const tp = tiledProduct({
    depth: depthK,
    kFastest: true,
    // the per-step values at (row = b T + t, k): inputs are laid out [B, T, ...], so the row is the time base
    rows: { bound: K.ref("MR"), load: (pre) => lowerExpr(o.a, step.scope(decodeIndex(o.ks, K.ref("k"), pre, "ka"), () => K.ref("xrow")), pre) },
    cols: {
      bound: K.ref("NC"),
      load: (pre) => {
        const vars = decodeIndex(o.stmt.vars, K.ref("pcol"), pre, "c");
        decodeIndex(o.ks, K.ref("k"), pre, "kc", vars);
        return lowerExpr(o.p, step.scope(vars, () => K.u32(0)), pre);
      },
    },
    // the column is the output's flat index (its statement's variables are its axes, row-major)
    store: (row, col, acc) => [K.store(outputBuffer(o.out.name), K.add(K.mul(row, K.ref("NC")), col), o.negative ? { k: "neg", a: acc, t: "f32" } : acc)],
  });
  const colsS = productS(o.out.shape);
  const depthS = productS(o.ks.map((v) => v.extent));
  return matmulForm(model, step, `${model.name}_param_matmul`, [...body, ...tp.body], tp, {
    workgroups: ["*", ["ceilDiv", ["*", "B", "T"], TILE], ["ceilDiv", colsS, TILE]],
    depth: depthS,
    flops: mulS(2, "B", "T", colsS, depthS),
  });
}
