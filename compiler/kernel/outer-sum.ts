/**
 * A model of one accumulating statement whose increment is an outer product of per-step values,
 *   S[i.., j..] = S[i.., j..] + a(i..) * b(j..)        (a, b: expressions of the step's inputs)
 * computes, per batch row, S_final = S_init + A^T B with A [T, |i..|] and B [T, |j..|]: a matrix product
 * whose depth is the steps. A param's adjoint pass is this shape (compiler/grad/split.ts: an LSTM's
 * dW_hh[g, i, m] = sum_t pre_bar_t[g, i] h_t[m]); its lanes-per-element sequential form reads every step's
 * a and b once per element, this form runs the tiled product of the hoisting (hoist.ts tiledProduct),
 * k over the steps (the runtime folds time into the batch, so the depth is the folded length).
 *
 * The split comes from the IR: the increment's factors (a product tree) are grouped by the index
 * variables they share; the columns are the group holding the statement's last variable (contiguous in
 * the state), the rows every other variable. Anything else (a bias's sum of one factor, a factor
 * reading a state or a param, a sum inside) keeps the per-element form.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import { analyzePartition } from "./partition.ts";
import { StepLowering, lowerConst } from "./step.ts";
import { lowerExpr } from "./lower-expr.ts";
import { flatIndex, productK, productS, mulS, sumS } from "./symbolic.ts";
import { terms, tiledProduct, decodeIndex, TILE, HOIST_THREADS, KC, type TiledProduct } from "./hoist.ts";
import { initFlag, stateOffset, STATES, STATES_IN, uniformFields } from "./interface.ts";
import { launchBindings, modelBindings, modelOverrides, trafficBytes, type LoweredForm } from "./sequential.ts";
import type { FormPlan, SizeExpr } from "../../runtime/plan.ts";

export interface OuterSum {
  stmt: Exclude<I.Stmt, { k: "for" }>;
  state: I.TensorDecl;
  /** Row / column variables of the product (in the statement's order). */
  rowVars: I.IndexVar[];
  colVars: I.IndexVar[];
  /** Product of the row-side / column-side factors (1 where a side has none). */
  a: I.Expr;
  b: I.Expr;
  negative: boolean;
}

/** The factors of a product tree (param-product.ts splits its sums the same way). */
export function factors(e: I.Expr): I.Expr[] {
  return e.k === "bin" && e.op === "*" ? [...factors(e.a), ...factors(e.b)] : [e];
}

export const productOf = (fs: I.Expr[]): I.Expr => fs.reduce<I.Expr | undefined>((acc, f) => (acc ? { k: "bin", op: "*", a: acc, b: f } : f), undefined) ?? { k: "num", value: 1 };

/** The outer-product-sum shape of `model`, or why it is not one. */
export function outerSum(model: I.Model): OuterSum | { why: string } {
  if (model.body.length !== 1 || model.body[0].k !== "assign") return { why: "not one assignment" };
  const stmt = model.body[0];
  const state = I.findTensor(model, stmt.target);
  if (!state || state.kind !== "state" || I.tensorsOfKind(model, "state").length !== 1 || I.tensorsOfKind(model, "output").length) return { why: "not one state and no outputs" };
  const ts = terms(stmt.expr);
  const isSelf = (e: I.Expr) => e.k === "read" && e.tensor === stmt.target && e.idx.length === stmt.vars.length && e.idx.every((ix, p) => ix.kind === "var" && ix.v.id === stmt.vars[p].id);
  const self = ts.filter((t) => isSelf(t.e) && !t.negative);
  const inc = ts.filter((t) => !isSelf(t.e));
  if (self.length !== 1 || inc.length !== 1) return { why: "not S = S + increment" };
  const fs = factors(inc[0].e);
  const varsOf: Set<number>[] = [];
  for (const f of fs) {
    const vs = new Set<number>();
    let ok = true;
    I.walkExpr(f, (x) => {
      if (x.k === "sum" || x.k === "has") ok = false;
      if (x.k !== "read") return;
      if (I.findTensor(model, x.tensor)?.kind !== "input") ok = false;
      for (const ix of x.idx) {
        if (ix.kind === "var" && stmt.vars.some((v) => v.id === ix.v.id)) vs.add(ix.v.id);
        else if (ix.kind !== "lit") ok = false;
      }
    });
    if (!ok) return { why: "a factor reads something other than a step input at the statement's indices" };
    varsOf.push(vs);
  }
  // the column group: the last variable and every variable a factor ties to it
  const cols = new Set<number>([stmt.vars[stmt.vars.length - 1].id]);
  for (let grown = true; grown; ) {
    grown = false;
    for (const vs of varsOf) {
      if ([...vs].some((v) => cols.has(v)) && [...vs].some((v) => !cols.has(v))) {
        for (const v of vs) cols.add(v);
        grown = true;
      }
    }
  }
  if (cols.size === stmt.vars.length) return { why: "the increment is not an outer product (one factor group spans every index)" };
  const colF = fs.filter((_, i) => [...varsOf[i]].some((v) => cols.has(v)));
  const rowF = fs.filter((f) => !colF.includes(f));
  return {
    stmt,
    state,
    rowVars: stmt.vars.filter((v) => !cols.has(v.id)),
    colVars: stmt.vars.filter((v) => cols.has(v.id)),
    a: productOf(rowF),
    b: productOf(colF),
    negative: inc[0].negative,
  };
}

/** The matrix-product form of an outer-product sum (form "sequential", variant "matmul"), or why not. */
export function lowerOuterSum(model: I.Model): LoweredForm | { why: string } {
  const o = outerSum(model);
  if ("why" in o) return o;
  const step = new StepLowering({ model, partition: analyzePartition(model), variant: "workgroup", owner: K.u32(0), columns: K.u32(1), t: K.ref("t") });
  const rowsK = productK(o.rowVars.map((v) => v.extent));
  const colsK = productK(o.colVars.map((v) => v.extent));
  const body: K.KStmt[] = [
    K.decl("MR", "u32", rowsK),
    K.decl("NC", "u32", colsK),
    K.decl("NRT", "u32", K.bin("/", K.add(K.ref("MR"), K.u32(TILE - 1)), K.u32(TILE))),
    K.decl("NCT", "u32", K.bin("/", K.add(K.ref("NC"), K.u32(TILE - 1)), K.u32(TILE))),
    // workgroup -> (batch row, row tile, column tile)
    K.decl("pb", "u32", K.bin("/", K.ref("wg"), K.mul(K.ref("NRT"), K.ref("NCT")))),
    K.decl("tile", "u32", K.bin("%", K.ref("wg"), K.mul(K.ref("NRT"), K.ref("NCT")))),
    K.decl("rowBase", "u32", K.mul(K.bin("/", K.ref("tile"), K.ref("NCT")), K.u32(TILE))),
    K.decl("colBase", "u32", K.mul(K.bin("%", K.ref("tile"), K.ref("NCT")), K.u32(TILE))),
  ];
  const stepRow = () => K.add(K.mul(K.ref("pb"), K.uni("T")), K.ref("k"));
  const size = productK(o.state.shape);
  const tp = tiledProduct({
    depth: K.uni("T"),
    kFastest: false,
    rows: { bound: K.ref("MR"), load: (pre) => lowerExpr(o.a, step.scope(decodeIndex(o.rowVars, K.ref("xrow"), pre, "r"), stepRow), pre) },
    cols: { bound: K.ref("NC"), load: (pre) => lowerExpr(o.b, step.scope(decodeIndex(o.colVars, K.ref("pcol"), pre, "c"), stepRow), pre) },
    store: (row, col, acc) => {
      const pre: K.KStmt[] = [];
      const vars = decodeIndex(o.rowVars, row, pre, "er");
      decodeIndex(o.colVars, col, pre, "ec", vars);
      const flat = flatIndex(o.stmt.vars.map((v) => vars.get(v.id)!), o.stmt.vars.map((v) => v.extent));
      pre.push(K.decl("si", "u32", K.add(K.add(K.uni(stateOffset(o.state.name)), K.mul(K.ref("pb"), size)), flat)));
      let n = 0;
      const init = K.sel(K.bin("!=", K.uni(initFlag(o.state.name)), K.u32(0)), K.load(STATES_IN, K.ref("si")), o.state.init ? lowerConst(o.state.init, { fresh: (p) => `${p}_${n++}` }) : K.f32(0));
      pre.push(K.store(STATES, K.ref("si"), K.bin(o.negative ? "-" : "+", init, acc, "f32")));
      return pre;
    },
  });
  const rowsS = productS(o.rowVars.map((v) => v.extent));
  const colsS = productS(o.colVars.map((v) => v.extent));
  return matmulForm(model, step, `${model.name}_outer_matmul`, [...body, ...tp.body], tp, {
    workgroups: ["*", "B", ["ceilDiv", rowsS, TILE], ["ceilDiv", colsS, TILE]],
    depth: "T",
    flops: mulS(2, "B", "T", rowsS, colsS),
  });
}

/** Nominal cost constants (ns): a slice's barrier round and one multiply-add of a thread. */
const MATMUL_COST_NS = { sync: 450, work: 1 };

/**
 * The kernel and plan (form "sequential", variant "matmul") of a tiled product over `depth` (steps, or a
 * param product's summed extent) whose body is `body`: the outer sum's and param-product.ts's.
 */
export function matmulForm(model: I.Model, step: StepLowering, name: string, body: K.KStmt[], tp: TiledProduct, o: { workgroups: SizeExpr; depth: SizeExpr; flops: SizeExpr }): LoweredForm {
  const overrides = modelOverrides(model, step.cfg.partition);
  const used = K.usedArrays(body);
  const buffers = modelBindings(model).kernelBuffers.filter((b) => used.has(b.name));
  const kernel: K.Kernel = { name, workgroupSize: K.u32(HOIST_THREADS), buffers, uniformBinding: 0, uniforms: uniformFields(model), overrides: Object.keys(overrides).map((n) => ({ name: n })), shared: tp.shared, body, needs: [] };
  const N = TILE / 16;
  const plan: FormPlan = {
    form: "sequential",
    variant: "matmul",
    vars: [],
    scratch: [],
    kernels: [{ name, shader: name, entry: "main", overrides, workgroups: o.workgroups, sharedBytes: tp.sharedBytes, threads: HOIST_THREADS, bindings: launchBindings(model, kernel) }],
    cost: {
      bytes: trafficBytes(model),
      // per thread: N x N multiply-adds per unit of depth; a dependent round per slice of KC (its loads) and the stores
      serialSteps: mulS(o.depth, N * N),
      syncs: sumS([["ceilDiv", o.depth, KC], 1]),
      syncNs: MATMUL_COST_NS.sync,
      workNs: MATMUL_COST_NS.work,
      threads: ["*", o.workgroups, HOIST_THREADS],
      flops: o.flops,
    },
  };
  return { plan, kernels: [kernel], trace: [] };
}
