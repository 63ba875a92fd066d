/**
 * Hoisting the state-independent part of a step out of the time loop.
 *
 * A `let` is a sum of terms (`a + b - c`); the terms that read only inputs and params (no state, no
 * other per-step tensor) can be computed for every (batch row, step) at once, in parallel, before the
 * recurrence runs. When at least one such term reads an input (a term of params alone is cheaper to
 * recompute), those terms move to a hoisted tensor __H<k>[b, t, ...let shape] and the let keeps the
 * rest: `pre = W x + U h + b1 + b2` becomes `pre = __H0 + U h` with `__H0 = W x + b1 + b2`. A let
 * whose terms all move is removed from the step, and its reads read __H<k>.
 *
 * The hoisted tensors are computed by one kernel each: a tiled matrix product over the B*T rows when
 * one hoisted term is a contraction `sum(k) P[.., k] * x[.., k]` of a param with an input (the other
 * terms are added in its epilogue), else a plain parallel map (one thread per value).
 *
 * In blocks of steps: the hoisted buffer holds the terms of one block of TC steps ([B][TC][width]),
 * TC as large as the device's storage-binding limit allows (hoistBlockVars: all T when they fit);
 * the runtime runs the hoisting kernels and then the recurrence over the block's steps, block after
 * block (plan `blockSteps`; the kernels read the block from their step uniform).
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import { analyzePartition } from "./partition.ts";
import { StepLowering, ELEM_B } from "./step.ts";
import { lowerExpr } from "./lower-expr.ts";
import { extentK, productK, productS, sumS } from "./symbolic.ts";
import { uniformFields } from "./interface.ts";
import { modelBindings } from "./sequential.ts";
import type { KernelLaunch, SizeExpr } from "../../runtime/plan.ts";

export const hoistName = (id: number) => `__H${id}`;
/** The scratch buffer holding every hoisted tensor of one block of steps: [B][TC][HW] (HW: the hoisted floats per step, TC: the steps per block). */
export const HOISTED = "hoisted";

/**
 * The plan vars of hoisting in blocks: $TC, the steps per block (as many as a hoisted buffer of
 * B * TC * width floats within the storage-binding limit holds, all T when they fit, at least one),
 * and $HOIST_BYTES, that buffer's size. `width`: the hoisted floats per (batch row, step). A TC below
 * T is a multiple of TILE where it can be (the product's row tiles hold one batch row's steps).
 */
export function hoistBlockVars(width: SizeExpr): [string, SizeExpr][] {
  return [
    ["$TC_FIT", ["/", "LIMIT_BINDING", ["max", 1, ["*", 4, "B", width]]]],
    ["$TC", ["max", 1, ["min", "T", ["select", [">=", "$TC_FIT", TILE], ["*", TILE, ["/", "$TC_FIT", TILE]], "$TC_FIT"]]]],
    ["$HOIST_BYTES", ["*", 4, "B", "$TC", width]],
  ];
}

/** Where the hoisted terms of step t of batch row b are: float (b * TC + t - t0) * width of HOISTED (t0: the block's first step). */
export function hoistedRow(b: K.KExpr, t: K.KExpr): K.KExpr {
  return K.add(K.mul(b, K.ref(K.BLOCK_TC)), K.bin("-", t, K.ref(K.BLOCK_T0)));
}

export interface HoistedLet {
  id: number;
  /** The let whose terms moved. */
  let: string;
  /** The let statement's target variables and the let's shape. */
  vars: I.IndexVar[];
  shape: I.Extent[];
  /** The hoisted part, evaluated at `vars`. */
  terms: Term[];
  /** The whole let moved (the step no longer computes it). */
  whole: boolean;
}

export interface Term {
  e: I.Expr;
  negative: boolean;
}

export interface Hoisting {
  lets: HoistedLet[];
  /** The model with the hoisted parts replaced by reads of __H<k> and whole hoisted lets removed. */
  model: I.Model;
}

/** Split `a + b - c` into signed terms. */
export function terms(e: I.Expr, negative = false): Term[] {
  if (e.k === "bin" && (e.op === "+" || e.op === "-")) return [...terms(e.a, negative), ...terms(e.b, e.op === "-" ? !negative : negative)];
  return [{ e, negative }];
}

/** The sum of signed terms as an expression. */
export function sumOf(ts: Term[]): I.Expr {
  let acc: I.Expr | undefined;
  for (const t of ts) {
    if (!acc) acc = t.negative ? { k: "neg", a: t.e } : t.e;
    else acc = { k: "bin", op: t.negative ? "-" : "+", a: acc, b: t.e };
  }
  return acc ?? { k: "num", value: 0 };
}

const readsOnly = (model: I.Model, e: I.Expr, kinds: I.TensorKind[]) => {
  let ok = true;
  I.walkExpr(e, (x) => {
    if (x.k === "read" && !kinds.includes(I.findTensor(model, x.tensor)?.kind as I.TensorKind)) ok = false;
  });
  return ok;
};
const readsInput = (model: I.Model, e: I.Expr) => {
  let yes = false;
  I.walkExpr(e, (x) => void (x.k === "read" && I.findTensor(model, x.tensor)?.kind === "input" && (yes = true)));
  return yes;
};

function mapReads(e: I.Expr, f: (r: Extract<I.Expr, { k: "read" }>) => I.Expr): I.Expr {
  switch (e.k) {
    case "read": return f(e);
    case "bin": return { ...e, a: mapReads(e.a, f), b: mapReads(e.b, f) };
    case "neg": return { ...e, a: mapReads(e.a, f) };
    case "call": return { ...e, args: e.args.map((a) => mapReads(a, f)) };
    case "sum": return { ...e, body: mapReads(e.body, f) };
    default: return e;
  }
}

/** Which top-level lets have an input-dependent, state-independent part, and the model without it. */
export function planHoisting(model: I.Model): Hoisting {
  const lets: HoistedLet[] = [];
  const whole = new Map<string, number>();
  const body: I.Stmt[] = [];
  for (const s of model.body) {
    if (s.k === "for") {
      body.push(s);
      continue;
    }
    const expr = mapReads(s.expr, (r) => (whole.has(r.tensor) ? { ...r, tensor: hoistName(whole.get(r.tensor)!) } : r));
    if (s.k !== "let") {
      body.push({ ...s, expr });
      continue;
    }
    const ts = terms(expr);
    const free = ts.filter((t) => readsOnly(model, t.e, ["input", "param"]));
    if (!free.some((t) => readsInput(model, t.e))) {
      body.push({ ...s, expr });
      continue;
    }
    const id = lets.length;
    const decl = I.findTensor(model, s.target)!;
    const all = free.length === ts.length;
    lets.push({ id, let: s.target, vars: s.vars, shape: decl.shape, terms: free, whole: all });
    if (all) {
      whole.set(s.target, id);
      continue;
    }
    const h: I.Expr = { k: "read", tensor: hoistName(id), idx: s.vars.map((v) => ({ kind: "var", v })) };
    body.push({ ...s, expr: sumOf([{ e: h, negative: false }, ...ts.filter((t) => !free.includes(t))]) });
  }
  return { lets, model: { ...model, tensors: model.tensors.filter((t) => !whole.has(t.name)), body } };
}

/** Floats per (batch row, step) of the hoisted tensors, and each one's first column (kernel expressions). */
export function hoistLayout(h: Hoisting): { width: K.KExpr; widthS: SizeExpr; offset: K.KExpr[] } {
  let acc: K.KExpr = K.u32(0);
  const offset: K.KExpr[] = [];
  for (const l of h.lets) {
    offset.push(acc);
    acc = K.add(acc, productK(l.shape));
  }
  return { width: acc, widthS: sumS(h.lets.map((l) => productS(l.shape))), offset };
}

/** A contraction `sum(k) P[.., k, ..] * x[.., k, ..]` of a param with an input, k read once in each. */
interface Contraction {
  term: Term;
  k: I.IndexVar;
  param: Extract<I.Expr, { k: "read" }>;
  input: Extract<I.Expr, { k: "read" }>;
}

function contraction(model: I.Model, l: HoistedLet): Contraction | undefined {
  for (const term of l.terms) {
    const e = term.e;
    if (e.k !== "sum" || e.vars.length !== 1 || e.body.k !== "bin" || e.body.op !== "*") continue;
    const k = e.vars[0];
    const { a, b } = e.body;
    if (a.k !== "read" || b.k !== "read") continue;
    const kind = (r: Extract<I.Expr, { k: "read" }>) => I.findTensor(model, r.tensor)?.kind;
    const param = kind(a) === "param" ? a : kind(b) === "param" ? b : undefined;
    const input = kind(a) === "input" ? a : kind(b) === "input" ? b : undefined;
    if (!param || !input) continue;
    const usesK = (ix: I.Index) => ix.kind === "var" && ix.v.id === k.id;
    // k once in each; the input's other indices constant (the row of the product is (b, t))
    if (param.idx.filter(usesK).length !== 1 || input.idx.filter(usesK).length !== 1) continue;
    if (input.idx.some((ix) => !usesK(ix) && ix.kind !== "lit")) continue;
    if (param.idx.some((ix) => ix.kind === "var" && !usesK(ix) && !l.vars.some((v) => v.id === ix.v.id))) continue;
    return { term, k, param, input };
  }
  return undefined;
}

/** Tile of the hoisting matrix product: TILE rows x TILE columns per workgroup, KC-deep slices. */
export const TILE = 64;
export const KC = 16;
export const HOIST_THREADS = 256;

/**
 * Bind index variables `vars` to the decoded flat index `at` (row-major, the last variable fastest): declares
 * one u32 per variable (named `${tag}_${name}_${id}`) into `pre`; returns the map from variable id to its value.
 */
export function decodeIndex(vars: I.IndexVar[], at: K.KExpr, pre: K.KStmt[], tag: string, map = new Map<number, K.KExpr>()): Map<number, K.KExpr> {
  let rest = at;
  for (let i = vars.length - 1; i >= 0; i--) {
    const v = vars[i];
    const name = `${tag}_${v.name}_${v.id}`;
    if (i === 0) pre.push(K.decl(name, "u32", rest));
    else {
      pre.push(K.decl(name, "u32", K.bin("%", rest, extentK(v.extent))));
      pre.push(K.decl(`${name}_r`, "u32", K.bin("/", rest, extentK(v.extent))));
      rest = K.ref(`${name}_r`);
    }
    map.set(v.id, K.ref(name));
  }
  return map;
}

export interface HoistKernel {
  kernel: K.Kernel["body"];
  shared: K.KShared[];
  /** Workgroups as a plan size expression. */
  workgroups: SizeExpr;
  threads: number;
  sharedBytes: number;
  /** "matmul" or "map". */
  kind: "matmul" | "map";
  flops: SizeExpr;
}

/** The body of the kernel computing hoisted tensor `l` for every (b, t) into HOISTED. */
export function hoistKernelBody(model: I.Model, l: HoistedLet, width: K.KExpr, offset: K.KExpr): HoistKernel {
  const step = new StepLowering({ model, partition: analyzePartition(model), variant: "workgroup", owner: K.u32(0), columns: K.u32(1), t: K.ref("t") });
  const C = productK(l.shape);
  const size = productS(l.shape);
  // the rows of this block: (b, step t0 + i) for i < TC; rows past the last step (a last partial block) are computed from step T - 1 and never read
  const out: K.KStmt[] = [K.decl("C", "u32", C)];
  /** The value at (batch row b, block step i) of the terms `ts` plus `extra`, stored into HOISTED at row b * TC + i; `t` its step. */
  const storeValue = (b: K.KExpr, i: K.KExpr, col: K.KExpr, ts: Term[], extra: K.KExpr | undefined, tag: string): K.KStmt[] => {
    const pre: K.KStmt[] = [K.decl(ELEM_B, "u32", b), K.decl("t", "u32", K.bin("min", K.add(K.ref(K.BLOCK_T0), i), K.bin("-", K.uni("T"), K.u32(1)), "u32"))];
    const inputRow = K.add(K.mul(K.ref(ELEM_B), K.uni("T")), K.ref("t"));
    const row = K.add(K.mul(K.ref(ELEM_B), K.ref(K.BLOCK_TC)), i);
    const vars = decodeIndex(l.vars, col, pre, tag);
    let v: K.KExpr | undefined = extra;
    if (ts.length) {
      const rest = lowerExpr(sumOf(ts), step.scope(vars, () => inputRow), pre);
      v = v ? K.bin("+", v, rest, "f32") : rest;
    }
    pre.push(K.store(HOISTED, K.add(K.add(K.mul(row, width), offset), col), v ?? K.f32(0)));
    return pre;
  };
  const c = contraction(model, l);
  if (!c) {
    out.push(K.decl("BT", "u32", K.mul(K.uni("B"), K.ref(K.BLOCK_TC))));
    out.push(K.decl("i", "u32", K.add(K.mul(K.ref("wg"), K.u32(HOIST_THREADS)), K.ref("lid"))));
    out.push(K.decl("row", "u32", K.bin("/", K.ref("i"), K.ref("C"))));
    out.push(K.decl("col", "u32", K.bin("%", K.ref("i"), K.ref("C"))));
    out.push(K.ifThen(K.bin("<", K.ref("row"), K.ref("BT")), storeValue(K.bin("/", K.ref("row"), K.ref(K.BLOCK_TC)), K.bin("%", K.ref("row"), K.ref(K.BLOCK_TC)), K.ref("col"), l.terms, undefined, "c")));
    return { kernel: out, shared: [], workgroups: ["ceilDiv", ["*", "B", "$TC", size], HOIST_THREADS], threads: HOIST_THREADS, sharedBytes: 0, kind: "map", flops: ["*", "B", "T", size] };
  }
  // tiled product: rows (the block's steps of one batch row) x columns (let elements), k in slices of
  // KC staged in workgroup memory; a workgroup's rows are steps t0 + rowBase + .. of batch row hbb (the
  // inputs' rows hbb * T + t0 + ..: no division per row)
  out.push(K.decl("NCT", "u32", K.bin("/", K.add(K.ref("C"), K.u32(TILE - 1)), K.u32(TILE))));
  out.push(K.decl("NRT", "u32", K.bin("/", K.add(K.ref(K.BLOCK_TC), K.u32(TILE - 1)), K.u32(TILE))));
  out.push(K.decl("NSB", "u32", K.bin("-", K.ref(K.BLOCK_T1), K.ref(K.BLOCK_T0))));
  out.push(K.decl("rowTile", "u32", K.bin("/", K.ref("wg"), K.ref("NCT"))));
  out.push(K.decl("hbb", "u32", K.bin("/", K.ref("rowTile"), K.ref("NRT"))));
  out.push(K.decl("hinRow", "u32", K.add(K.mul(K.ref("hbb"), K.uni("T")), K.ref(K.BLOCK_T0))));
  out.push(K.decl("rowBase", "u32", K.mul(K.bin("%", K.ref("rowTile"), K.ref("NRT")), K.u32(TILE))));
  out.push(K.decl("colBase", "u32", K.mul(K.bin("%", K.ref("wg"), K.ref("NCT")), K.u32(TILE))));
  const rest = l.terms.filter((t) => t !== c.term);
  const tp = tiledProduct({
    depth: extentK(c.k.extent),
    kFastest: true,
    rows: {
      bound: K.ref("NSB"),
      // the input value x[row, k]
      load: (pre) => lowerExpr(c.input, step.scope(new Map<number, K.KExpr>([[c.k.id, K.ref("k")]]), () => K.add(K.ref("hinRow"), K.ref("xrow"))), pre),
    },
    cols: {
      bound: K.ref("C"),
      // the param value P[col's indices, k]
      load: (pre) => {
        const vars = decodeIndex(l.vars, K.ref("pcol"), pre, "p");
        vars.set(c.k.id, K.ref("k"));
        return lowerExpr(c.param, step.scope(vars, () => K.u32(0)), pre);
      },
    },
    store: (row, col, a) => storeValue(K.ref("hbb"), row, col, rest, c.term.negative ? { k: "neg", a, t: "f32" } : a, "c"),
  });
  out.push(...tp.body);
  const kSize = c.k.extent.kind === "lit" ? c.k.extent.value : c.k.extent.name;
  return {
    kernel: out,
    shared: tp.shared,
    workgroups: ["*", "B", ["ceilDiv", "$TC", TILE], ["ceilDiv", size, TILE]],
    threads: HOIST_THREADS,
    sharedBytes: tp.sharedBytes,
    kind: "matmul",
    flops: ["*", 2, "B", "T", size, kSize],
  };
}

/**
 * The hoisting kernels of a plan, one per hoisted let (named `${prefix}_hoist_${let}`), pushed onto `c` with
 * their flops: each dispatched once per block of steps, reading its block from the step uniform bound after
 * the model's bindings; `used` picks the buffers a body reads.
 */
export function pushHoistKernels(
  c: { model: I.Model; kernels: K.Kernel[]; launches: KernelLaunch[]; hoistFlops: SizeExpr[] },
  hoisting: Hoisting,
  prefix: string,
  scratch: string[],
  used: (body: K.KStmt[]) => K.KBuffer[],
  overrides: K.KOverride[],
): void {
  const layout = hoistLayout(hoisting);
  const stepUniform = modelBindings(c.model, scratch).bindings.length;
  for (const l of hoisting.lets) {
    const h = hoistKernelBody(c.model, l, layout.width, layout.offset[l.id]);
    const name = `${prefix}_hoist_${l.let}`;
    c.kernels.push({ name, workgroupSize: K.u32(h.threads), buffers: used(h.kernel), uniformBinding: 0, uniforms: uniformFields(c.model), overrides, shared: h.shared, body: h.kernel, needs: [], stepUniform });
    c.launches.push({ name, shader: name, entry: "main", overrides: {}, workgroups: h.workgroups, sharedBytes: h.sharedBytes, threads: h.threads, bindings: [], block: { binding: stepUniform } });
    c.hoistFlops.push(h.flops);
  }
}

/** One side of a tiled product: its index runs below `bound`; `load` gives its value at (index, k) (the index in `xrow` for rows, `pcol` for columns; k in `k`). */
export interface ProductSide {
  bound: K.KExpr;
  load: (pre: K.KStmt[]) => K.KExpr;
}

export interface TiledProduct {
  /** Statements after the caller's `rowBase` / `colBase` (the tile's first row and column). */
  body: K.KStmt[];
  shared: K.KShared[];
  sharedBytes: number;
}

/**
 * The tiled matrix product out[row, col] = sum_k rows(row, k) * cols(col, k) of one TILE x TILE tile (at
 * the caller's rowBase / colBase) by HOIST_THREADS threads, each holding (TILE/16)^2 accumulators, k in
 * KC-deep slices staged in workgroup memory (hx: rows, hp: columns), then `store` of each value through
 * workgroup memory (consecutive threads take consecutive columns). `kFastest`: consecutive threads stage
 * consecutive k of one row / column (operands contiguous in k, as the hoisting's inputs); otherwise
 * consecutive rows / columns of one k (operands contiguous in the row / column index, as a param pass's
 * per-step values).
 */
export function tiledProduct(o: { depth: K.KExpr; kFastest: boolean; rows: ProductSide; cols: ProductSide; store: (row: K.KExpr, col: K.KExpr, acc: K.KExpr) => K.KStmt[] }): TiledProduct {
  const S = KC + 1;
  const N = TILE / 16;
  const out: K.KStmt[] = [];
  out.push(K.decl("tx", "u32", K.bin("%", K.ref("lid"), K.u32(16))));
  out.push(K.decl("ty", "u32", K.bin("/", K.ref("lid"), K.u32(16))));
  const acc = (i: number, j: number) => `acc_${i}_${j}`;
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) out.push(K.decl(acc(i, j), "f32", K.f32(0), true));
  // staging: element y of the TILE x KC slice -> row/column rr, depth kk
  const stage: K.KStmt[] = o.kFastest
    ? [K.decl("rr", "u32", K.bin("/", K.ref("y"), K.u32(KC))), K.decl("kk", "u32", K.bin("%", K.ref("y"), K.u32(KC)))]
    : [K.decl("rr", "u32", K.bin("%", K.ref("y"), K.u32(TILE))), K.decl("kk", "u32", K.bin("/", K.ref("y"), K.u32(TILE)))];
  stage.push(K.decl("k", "u32", K.add(K.ref("k0"), K.ref("kk"))));
  const inK = K.bin("<", K.ref("k"), o.depth);
  {
    const pre: K.KStmt[] = [];
    const xv = o.rows.load(pre);
    stage.push(K.decl("xrow", "u32", K.add(K.ref("rowBase"), K.ref("rr"))));
    stage.push(K.decl("xv", "f32", K.f32(0), true));
    stage.push(K.ifThen(K.bin("&&", K.bin("<", K.ref("xrow"), o.rows.bound), inK), [...pre, K.set("xv", xv)]));
    stage.push(K.store("hx", K.add(K.mul(K.ref("rr"), K.u32(S)), K.ref("kk")), K.ref("xv", "f32")));
  }
  {
    const pre: K.KStmt[] = [];
    const pv = o.cols.load(pre);
    stage.push(K.decl("pcol", "u32", K.add(K.ref("colBase"), K.ref("rr"))));
    stage.push(K.decl("pv", "f32", K.f32(0), true));
    stage.push(K.ifThen(K.bin("&&", K.bin("<", K.ref("pcol"), o.cols.bound), inK), [...pre, K.set("pv", pv)]));
    stage.push(K.store("hp", K.add(K.mul(K.ref("rr"), K.u32(S)), K.ref("kk")), K.ref("pv", "f32")));
  }
  const fma: K.KStmt[] = [];
  for (let i = 0; i < N; i++) fma.push(K.decl(`a_${i}`, "f32", K.load("hx", K.add(K.mul(K.add(K.ref("ty"), K.u32(16 * i)), K.u32(S)), K.ref("kq")))));
  for (let j = 0; j < N; j++) fma.push(K.decl(`b_${j}`, "f32", K.load("hp", K.add(K.mul(K.add(K.ref("tx"), K.u32(16 * j)), K.u32(S)), K.ref("kq")))));
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) fma.push(K.set(acc(i, j), K.bin("+", K.ref(acc(i, j), "f32"), K.bin("*", K.ref(`a_${i}`, "f32"), K.ref(`b_${j}`, "f32"), "f32"), "f32")));
  out.push(
    K.forLoop("k0", K.u32(0), o.depth, [
      K.forLoop("y", K.ref("lid"), K.u32(TILE * KC), stage, K.u32(HOIST_THREADS)),
      { k: "barrier" },
      K.forLoop("kq", K.u32(0), K.bin("min", K.u32(KC), K.bin("-", o.depth, K.ref("k0")), "u32"), fma),
      { k: "barrier" },
    ], K.u32(KC)),
  );
  // epilogue, a row group at a time: the accumulators through workgroup memory (coalesced stores, one
  // copy of the caller's epilogue code)
  const pick = (j: number) => {
    let v: K.KExpr = K.ref(acc(N - 1, j), "f32");
    for (let i = N - 2; i >= 0; i--) v = K.sel(K.bin("==", K.ref("ri"), K.u32(i)), K.ref(acc(i, j), "f32"), v);
    return v;
  };
  out.push(
    K.forLoop("ri", K.u32(0), K.u32(N), [
      { k: "barrier" },
      ...Array.from({ length: N }, (_, j) => K.store("hx", K.add(K.mul(K.ref("ty"), K.u32(TILE)), K.add(K.ref("tx"), K.u32(16 * j))), pick(j))),
      { k: "barrier" },
      K.forLoop("e", K.ref("lid"), K.u32(16 * TILE), [
        K.decl("erow", "u32", K.add(K.add(K.ref("rowBase"), K.mul(K.ref("ri"), K.u32(16))), K.bin("/", K.ref("e"), K.u32(TILE)))),
        K.decl("ecol", "u32", K.add(K.ref("colBase"), K.bin("%", K.ref("e"), K.u32(TILE)))),
        K.ifThen(K.bin("&&", K.bin("<", K.ref("erow"), o.rows.bound), K.bin("<", K.ref("ecol"), o.cols.bound)), o.store(K.ref("erow"), K.ref("ecol"), K.load("hx", K.ref("e")))),
      ], K.u32(HOIST_THREADS)),
    ]),
  );
  const hx = Math.max(TILE * S, 16 * TILE);
  return { body: out, shared: [{ name: "hx", length: K.u32(hx) }, { name: "hp", length: K.u32(TILE * S) }], sharedBytes: (hx + TILE * S) * 4 };
}
