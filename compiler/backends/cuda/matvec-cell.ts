/**
 * Sequential form for nonlinear cells whose state enters through matrix-vector products (LSTM, GRU):
 *   h_t = cell(W x_t, U h_{t-1}, ...)    with W, U params and the cell pointwise in the hidden unit j.
 * FlashRNN-style schedule, generated from the IR:
 *   - every `sum(i) P[.., j, i] * x[i]` that reads no state is hoisted out of the time loop into one fp32
 *     matrix product over all B*T steps (sgemm.ts);
 *   - one persistent cooperative kernel runs the time loop; block k owns hidden units [k*JB, (k+1)*JB)
 *     for every batch row and keeps its rows of each recurrent matrix U in shared memory for the whole
 *     sequence; per step it reads h_{t-1} (all units, all rows) from L2, computes its slice of U h_{t-1}
 *     with register tiles and a warp reduce-scatter, runs the pointwise cell for its units, publishes its
 *     slice of h_t, and meets the other blocks at a grid barrier.
 * Eligibility is checked on the IR: states are vectors over one dim E (the unit axis), every statement's
 * target has one E-axis (other axes literal, e.g. 4 gates), and every sum is either a hoistable input
 * projection or a recurrent matvec: a param contracted with the previous value of a state, or with a let
 * of the step that depends on the state. The param may be contracted over any of its axes, the unit axis
 * of the result being any other one: the backward core's h_bar[m] = sum(g, j) pre_bar[g, j] * W_hh[g, j, m]
 * (W_hh^T times the gate adjoints, compiler/grad/split.ts) is one; a block keeps its rows of the
 * (transposed) matrix in shared memory either way (for unit m, the 4H values W_hh[., ., m]).
 * A let vector is published in the middle of the step: phase A (the statements before the first matvec,
 * pointwise per unit, their lets kept in shared memory) writes the block's slice of the let to a global
 * double buffer; a grid barrier; then the matvecs read the whole let (through L2) and phase B (the rest)
 * finishes the step. One grid barrier per step either way.
 * matvec-cell-batch.ts renders the same recognised cells partitioned over the batch instead (small H: the whole
 * matrix in one block's shared memory, no grid barrier); both render the pointwise body with cellBody below.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import { inputBuffer, outputBuffer, initFlag, stateOffset, STATES, uniformFields, paramOffset } from "../../kernel/interface.ts";
import { lowerConst } from "../../kernel/step.ts";
import { productS } from "../../kernel/symbolic.ts";
import { overrideValues } from "./overrides.ts";
import { CudaScope, tensorsRead } from "./scope.ts";
import { renderExpr, renderStmts, type RenderContext } from "./render.ts";
import { SGEMM_ENTRY } from "./sgemm.ts";
import type { CudaFormPlan, CudaBufferRef } from "../../../runtime/cuda/plan.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";

type Read = Extract<I.Expr, { k: "read" }>;

/**
 * A hoisted input projection: Y[b,t,r] = sum_i P[r, i] * x[b,t,i], r = flat index over P's leading axes.
 * `slice`: where x is a slice of an input with leading literal axes (a packed input of a backward model,
 * compiler/grad/pack.ts: x[i] read as pack[k, i]), the slice's flat index over those axes and their count.
 */
interface XTerm { id: number; param: string; input: string; rows: I.Extent[]; k: I.Extent; slice?: { at: number; of: number } }
/** Where an index of a recurrent matvec's param comes from: a literal, a row variable (its position in `rows`), or a summed variable (its axis in the vector). */
type PIndex = { kind: "lit"; value: number } | { kind: "row"; at: number } | { kind: "k"; at: number };
/**
 * A recurrent matvec: sum_k U[.., k.., ..] * V[k..] with V a state's previous value or a let of the step
 * (`vecKind`); its result is indexed by the param's other variables (`rows`: literal extents and the unit).
 */
interface RTerm {
  id: number;
  param: string;
  vec: string;
  vecKind: "state" | "let";
  /** Extents of the param's non-summed variables, in the param's order; `unitAxis` holds the unit var. */
  rows: I.Extent[];
  unitAxis: number;
  pIdx: PIndex[];
  pShape: I.Extent[];
  /** The vector's shape: its flat index is the depth of the matvec. */
  vecShape: I.Extent[];
}

export interface CellPlan {
  unit: string; // dim name of the unit axis
  xterms: XTerm[];
  rterms: RTerm[];
  /** Statements with their sums replaced by reads of __X<k>[P leading indices] / __R<k>[row variables] */
  body: Extract<I.Stmt, { k: "let" | "assign" | "output" }>[];
  /** Statements of phase A (before the let vectors are published; 0 without let vectors). */
  phaseA: number;
}

export type CellEligibility = { ok: true; plan: CellPlan } | { ok: false; why: string };

const isDim = (e: I.Extent, name: string) => e.kind === "dim" && e.name === name;

export function matvecCellPlan(model: I.Model): CellEligibility {
  const states = I.tensorsOfKind(model, "state");
  if (!states.length) return { ok: false, why: "no state" };
  const s0 = states[0].shape;
  if (s0.length !== 1 || s0[0].kind !== "dim") return { ok: false, why: "states are not vectors over a named dim" };
  const unit = s0[0].name;
  for (const s of states) if (s.shape.length !== 1 || !isDim(s.shape[0], unit)) return { ok: false, why: `state ${s.name} is not a vector over ${unit}` };
  const stateNames = new Set(states.map((s) => s.name));
  const xterms: XTerm[] = [];
  const rterms: RTerm[] = [];
  const body: CellPlan["body"] = [];
  const updated = new Set<string>();
  const defined = new Set<string>();
  const stateDependent = new Set<string>([...stateNames]);
  let why: string | undefined;
  const fail = (w: string) => {
    why ??= w;
  };

  const dependsOnState = (e: I.Expr) => {
    let d = false;
    I.walkExpr(e, (x) => {
      if (x.k === "read" && stateDependent.has(x.tensor)) d = true;
    });
    return d;
  };

  const rewrite = (e: I.Expr, targetVars: I.IndexVar[]): I.Expr => {
    switch (e.k) {
      case "sum": {
        const b = e.body;
        if (b.k !== "bin" || b.op !== "*" || b.a.k !== "read" || b.b.k !== "read") {
          fail("a sum that is not a product of two tensors");
          return e;
        }
        const reads = [b.a, b.b] as Read[];
        const p = reads.find((r) => I.findTensor(model, r.tensor)?.kind === "param");
        const other = reads.find((r) => r !== p);
        if (!p || !other) {
          fail("a sum without a param matrix");
          return e;
        }
        const pd = I.findTensor(model, p.tensor)!;
        const od = I.findTensor(model, other.tensor)!;
        if (od.kind === "input") {
          if (e.vars.length !== 1) {
            fail("an input projection summed over several indices");
            return e;
          }
          const v = e.vars[0];
          const last = p.idx[p.idx.length - 1];
          if (last.kind !== "var" || last.v.id !== v.id || p.idx.slice(0, -1).some((ix) => ix.kind !== "var" || ix.v.id === v.id)) {
            fail(`param ${p.tensor} is not indexed [rows.., ${v.name}]`);
            return e;
          }
          // a vector [v], or a slice of one at literal leading indices (pack[k, v]: a packed input)
          const lead = other.idx.slice(0, -1);
          const lastX = other.idx[other.idx.length - 1];
          const leadExt = od.shape.slice(0, -1);
          if (!lastX || lastX.kind !== "var" || lastX.v.id !== v.id || lead.some((ix) => ix.kind !== "lit") || leadExt.some((x) => x.kind !== "lit")) {
            fail(`${other.tensor} is not read as a vector [${v.name}] or a slice of one at literal leading indices`);
            return e;
          }
          const sizes = leadExt.map((x) => (x as { value: number }).value);
          const at = lead.reduce((a, ix, i) => a * sizes[i] + (ix as { value: number }).value, 0);
          const of = sizes.reduce((a, n) => a * n, 1);
          const id = xterms.length;
          xterms.push({ id, param: p.tensor, input: other.tensor, rows: pd.shape.slice(0, -1), k: pd.shape[pd.shape.length - 1], ...(of > 1 ? { slice: { at, of } } : {}) });
          return { k: "read", tensor: `__X${id}`, idx: p.idx.slice(0, -1) };
        }
        const isLet = od.kind === "let" && stateDependent.has(other.tensor) && defined.has(other.tensor);
        if (od.kind !== "state" && !isLet) {
          fail(`a sum over ${od.kind} ${other.tensor}`);
          return e;
        }
        if (od.kind === "state" && updated.has(other.tensor)) {
          fail(`matvec reads the updated ${other.tensor}`);
          return e;
        }
        // the vector is read at the summed variables, each once (its flat index is the matvec's depth)
        const ks = new Map(e.vars.map((v) => [v.id, -1]));
        other.idx.forEach((ix, a) => {
          if (ix.kind === "var" && ks.get(ix.v.id) === -1) ks.set(ix.v.id, a);
        });
        if (other.idx.length !== e.vars.length || [...ks.values()].some((a) => a < 0)) {
          fail(`${other.tensor} is not read at the summed indices`);
          return e;
        }
        const pIdx: PIndex[] = [];
        const rows: I.Extent[] = [];
        const rowIdx: I.Index[] = [];
        const seen = new Set<number>();
        for (const ix of p.idx) {
          if (ix.kind === "lit") pIdx.push({ kind: "lit", value: ix.value });
          else if (ks.has(ix.v.id) && !seen.has(ix.v.id)) {
            seen.add(ix.v.id);
            pIdx.push({ kind: "k", at: ks.get(ix.v.id)! });
          } else if (!ks.has(ix.v.id) && targetVars.some((t) => t.id === ix.v.id)) {
            pIdx.push({ kind: "row", at: rows.length });
            rows.push(ix.v.extent);
            rowIdx.push(ix);
          } else {
            fail(`param ${p.tensor} is not indexed by the summed and the statement's variables, each once`);
            return e;
          }
        }
        if (seen.size !== ks.size) {
          fail(`param ${p.tensor} does not take every summed index`);
          return e;
        }
        const unitAxis = rows.findIndex((x) => isDim(x, unit));
        if (unitAxis < 0 || rows.some((x, a) => a !== unitAxis && x.kind !== "lit")) {
          fail(`recurrent matrix ${p.tensor} has no single unit axis beside literal ones`);
          return e;
        }
        const id = rterms.length;
        rterms.push({ id, param: p.tensor, vec: other.tensor, vecKind: od.kind === "state" ? "state" : "let", rows, unitAxis, pIdx, pShape: pd.shape, vecShape: od.shape });
        return { k: "read", tensor: `__R${id}`, idx: rowIdx };
      }
      case "bin":
        return { ...e, a: rewrite(e.a, targetVars), b: rewrite(e.b, targetVars) };
      case "neg":
        return { ...e, a: rewrite(e.a, targetVars) };
      case "call":
        return { ...e, args: e.args.map((x) => rewrite(x, targetVars)) };
      default:
        return e;
    }
  };

  for (const s of model.body) {
    if (s.k === "for") return { ok: false, why: "micro-step loops" };
    const unitVars = s.vars.filter((v) => isDim(v.extent, unit));
    if (unitVars.length !== 1) return { ok: false, why: `statement for ${s.target} has no single ${unit} axis` };
    if (s.vars.some((v) => v !== unitVars[0] && v.extent.kind !== "lit")) return { ok: false, why: `statement for ${s.target} has a non-literal axis beside ${unit}` };
    const expr = rewrite(s.expr, s.vars);
    if (why) return { ok: false, why };
    // every other read of a local tensor must be at the unit var in its unit axis
    let bad: string | undefined;
    I.walkExpr(expr, (x) => {
      if (x.k !== "read" || x.tensor.startsWith("__")) return;
      const t = I.findTensor(model, x.tensor)!;
      if (t.kind === "input" || t.kind === "param") return;
      t.shape.forEach((ext, a) => {
        const ix = x.idx[a];
        if (isDim(ext, unit) && !(ix.kind === "var" && ix.v.id === unitVars[0].id)) bad = `${x.tensor} is read at another unit`;
        if (!isDim(ext, unit) && ext.kind !== "lit") bad = `${x.tensor} has a non-literal axis`;
      });
    });
    if (bad) return { ok: false, why: bad };
    if (s.k === "assign") updated.add(s.target);
    if (s.k === "let") defined.add(s.target);
    if (s.k === "let" && dependsOnState(s.expr)) stateDependent.add(s.target);
    body.push({ ...s, expr });
  }
  if (!rterms.length) return { ok: false, why: "no recurrent matvec (use the scan or generic sequential form)" };
  // with let vectors, phase A is everything before the first matvec, and it must compute every let vector
  const phaseA = phaseOfLets({ rterms }, body);
  if (rterms.some((r) => r.vecKind === "let")) {
    const inA = new Set(body.slice(0, phaseA).map((s) => s.target));
    const late = rterms.find((r) => r.vecKind === "let" && !inA.has(r.vec));
    if (late) return { ok: false, why: `matvec over ${late.vec}, which is computed after another matvec of the step` };
  }
  for (const t of I.tensorsOfKind(model, "let").concat(I.tensorsOfKind(model, "output"))) {
    if (t.shape.filter((e) => isDim(e, unit)).length !== 1 || t.shape.some((e) => !isDim(e, unit) && e.kind !== "lit")) return { ok: false, why: `${t.name} is not over ${unit} with literal extra axes` };
  }
  return { ok: true, plan: { unit, xterms, rterms, body, phaseA } };
}

/** Phase A of a cell body with let vectors: the statements before the first matvec (0 without let vectors). */
export function phaseOfLets(plan: { rterms: { vecKind: string }[] }, body: { expr: I.Expr }[]): number {
  if (!plan.rterms.some((r) => r.vecKind === "let")) return 0;
  return body.findIndex((s) => [...tensorsRead(s.expr)].some((n) => n.startsWith("__R")));
}

const litSize = (shape: I.Extent[], unit: string) => shape.reduce((a, e) => a * (isDim(e, unit) ? 1 : (e as { value: number }).value), 1);

export interface CellConfig { THREADS: number; TB: number; TR: number; suffix: string }
/** Threads per block and the batch x row register tile of each warp (TB*TR = 32 or 64). The first is the default. */
export const CELL_CONFIGS: CellConfig[] = [
  { THREADS: 512, TB: 4, TR: 8, suffix: "" },
  { THREADS: 256, TB: 8, TR: 8, suffix: "-256" },
];

export interface MatvecCell {
  source: string;
  form: CudaFormPlan;
}

/** What both cell kernels share: the matvecs' and lets' layout, and the pointwise cell rendered per (b, j). */
export interface CellBodyOptions {
  /** Override names of the kernel (dims, param offsets, its own): rendered as SEQC_<name> (JB is added: the batch cell declares it as E). */
  overrides: string[];
  /** The name of the global batch row in the emitted code (b: one block holds every row; bg = b0 + b: a block holds some). */
  bg: string;
  /** Reads answered from shared memory (the batch cell's staged per-step inputs and input projections). */
  staged?: (tensor: string, idx: K.KExpr[]) => K.KExpr | undefined;
  /** How a matvec result at s_M index `at` is read (default s_M[at]; the batch cell sums its depth slices). */
  mRead?: (at: string) => string;
  /**
   * Mirror the element's own states and phase A lets in registers (R_S<i>, R_A_<let>[q], declared by `mirrorDecls` at the
   * top of each (b, j) iteration from shared memory): reads come from the registers, writes go to both, so a value
   * written and read in the same step waits for no shared store and load (the batch cell's `-batch4`).
   */
  mirror?: boolean;
  /** Math functions rendered by another name (RenderContext.fns). */
  fns?: Readonly<Record<string, string>>;
}

export function cellBody(model: I.Model, plan: CellPlan, opts: CellBodyOptions) {
  const { unit, xterms, rterms, body } = plan;
  const states = I.tensorsOfKind(model, "state");
  const outputs = I.tensorsOfKind(model, "output");
  const lets = I.tensorsOfKind(model, "let");
  const uniforms = uniformFields(model);
  const cx: RenderContext = { overrides: new Set([...opts.overrides, "JB"]), uniforms: new Set(uniforms), fns: opts.fns };
  const R = (e: K.KExpr) => renderExpr(e, cx);
  const bg = opts.bg;
  const E = `SEQC_D_${unit}`;
  // recurrent states read by matvecs get a global double buffer hbuf[2][nRS][B][E]; let vectors one of their
  // own, vbuf[2][B][sum of their sizes] (published in the middle of the step)
  const rStates = [...new Set(rterms.filter((r) => r.vecKind === "state").map((r) => r.vec))];
  const rsIndex = new Map(rStates.map((s, i) => [s, i]));
  const stIndex = new Map(states.map((s, i) => [s.name, i]));
  const lVecs = [...new Set(rterms.filter((r) => r.vecKind === "let").map((r) => r.vec))];
  const extS = (e: I.Extent): SizeExpr => (e.kind === "lit" ? e.value : e.name);
  const lvOff = new Map<string, string>();
  let lvTotal = "0u";
  for (const v of lVecs) {
    lvOff.set(v, lvTotal);
    lvTotal = `${lvTotal} + ${productC(I.findTensor(model, v)!.shape)}`;
  }
  const lvTotalS: SizeExpr = ["+", 0, ...lVecs.map((v) => ["*", ...I.findTensor(model, v)!.shape.map(extS)] as SizeExpr)];
  // phase A's lets live in shared memory (phase B reads them): [slot][B][JB]
  const phaseALets = body.slice(0, plan.phaseA).filter((s) => s.k === "let").map((s) => s.target);
  const aOff = new Map<string, number>();
  let aTotal = 0;
  for (const l of phaseALets) {
    aOff.set(l, aTotal);
    aTotal += litSize(I.findTensor(model, l)!.shape, unit);
  }
  // element q of phase A's let l for (b, jl)
  const sA = (l: string, q: string) => `s_A[(${aOff.get(l)}u + ${q}) * B * SEQC_JB + b * SEQC_JB + jl]`;
  const mirror = !!opts.mirror;
  const rA = (l: string, q: string) => (mirror ? `R_A_${l}[${q}]` : sA(l, q));
  const sS = (si: number) => `s_S[${si}u * B * SEQC_JB + b * SEQC_JB + jl]`;
  const rS = (si: number) => (mirror ? `R_S${si}` : sS(si));
  // rows of each rterm held by a block: product of literal axes x JB
  const rowsLocal = (r: RTerm) => litSize(r.rows, unit);
  // offsets of each rterm's slice in shared memory
  const wOff: string[] = [];
  const mOff: string[] = [];
  {
    let w = "0u";
    let m = "0u";
    for (const r of rterms) {
      wOff.push(w);
      mOff.push(m);
      w = `${w} + ${rowsLocal(r)}u * SEQC_JB * (${productC(r.vecShape)})`;
      m = `${m} + B * ${rowsLocal(r)}u * SEQC_JB`;
    }
    wOff.push(w);
    mOff.push(m);
  }
  const localRow = (r: RTerm, idx: K.KExpr[], jl: K.KExpr): K.KExpr => {
    // row-major over the literal axes with the unit axis replaced by jl in [0, JB)
    let acc: K.KExpr = K.u32(0);
    r.rows.forEach((ext, a) => {
      const size = a === r.unitAxis ? K.ref("JB") : K.u32((ext as { value: number }).value);
      const v = a === r.unitAxis ? jl : idx[a];
      acc = a === 0 ? v : K.add(K.mul(acc, size), v);
    });
    return acc;
  };
  const flatRows = (shape: I.Extent[], idx: K.KExpr[]): K.KExpr => {
    let acc: K.KExpr = K.u32(0);
    shape.forEach((ext, a) => {
      const size = ext.kind === "lit" ? K.u32(ext.value) : K.ref(`D_${ext.name}`);
      acc = a === 0 ? idx[a] : K.add(K.mul(acc, size), idx[a]);
    });
    return acc;
  };
  const localFlat = (t: I.TensorDecl, idx: K.KExpr[]): K.KExpr => {
    let acc: K.KExpr = K.u32(0);
    let first = true;
    t.shape.forEach((ext, a) => {
      if (isDim(ext, unit)) return;
      acc = first ? idx[a] : K.add(K.mul(acc, K.u32((ext as { value: number }).value)), idx[a]);
      first = false;
    });
    return acc;
  };

  // ---- the pointwise cell for element (b, jl), unit j = j0 + jl ----
  const cellLines: string[] = [];
  const cellLinesA: string[] = [];
  const bK = K.ref(bg);
  const tK = K.ref("t");
  for (const t of lets) if (!aOff.has(t.name)) cellLines.push(`      float L_${t.name}[${litSize(t.shape, unit)}];`);
  for (const [si, s] of body.entries()) {
    const target = I.findTensor(model, s.target)!;
    const loopVars = s.vars.filter((v) => !isDim(v.extent, unit));
    const unitVar = s.vars.find((v) => isDim(v.extent, unit))!;
    const vars = new Map<number, K.KExpr>([[unitVar.id, K.ref("j")]]);
    loopVars.forEach((v) => vars.set(v.id, K.ref(`g_${v.id}`)));
    const sc = new CudaScope({
      model,
      b: bK,
      t: tK,
      vars,
      prefix: `s${s.target}`,
      local: (tensor, idx) => {
        const st = opts.staged?.(tensor, idx);
        if (st) return st;
        if (tensor.startsWith("__X")) {
          const x = xterms[Number(tensor.slice(3))];
          return K.load(`ws_X${x.id}`, K.add(K.mul(K.add(K.mul(bK, K.uni("T")), tK), K.ref(`XR${x.id}`)), flatRows(x.rows, idx)));
        }
        if (tensor.startsWith("__R")) {
          const r = rterms[Number(tensor.slice(3))];
          const at = K.add(K.add(K.ref(`MO${r.id}`), K.mul(K.ref("b"), K.ref(`RL${r.id}`))), localRow(r, idx, K.ref("jl")));
          return opts.mRead ? K.ref(opts.mRead(R(at)), "f32") : K.load("s_M", at);
        }
        const t = I.findTensor(model, tensor)!;
        if (t.kind === "let" && aOff.has(tensor)) return K.ref(rA(tensor, R(localFlat(t, idx))), "f32");
        if (t.kind === "let") return K.ref(`L_${tensor}[${R(localFlat(t, idx))}]`, "f32");
        if (t.kind === "state") return K.ref(rS(stIndex.get(tensor)!), "f32");
        if (t.kind === "output") return K.ref(`O_${tensor}[${R(localFlat(t, idx))}]`, "f32");
        return undefined;
      },
    });
    const pre: K.KStmt[] = [];
    const v = sc.lower(s.expr, pre);
    const inner = [...renderStmts(pre, cx, "        "), `        const float val = ${R(v)};`];
    const tIdx = s.vars.map((x) => (isDim(x.extent, unit) ? K.ref("j") : K.ref(`g_${x.id}`)));
    if (s.k === "let" && aOff.has(s.target)) {
      inner.push(`        ${sA(s.target, R(localFlat(target, tIdx)))} = val;`);
      if (mirror) inner.push(`        ${rA(s.target, R(localFlat(target, tIdx)))} = val;`);
    } else if (s.k === "let") inner.push(`        L_${s.target}[${R(localFlat(target, tIdx))}] = val;`);
    else if (s.k === "assign") {
      inner.push(`        ${sS(stIndex.get(s.target)!)} = val;`);
      if (mirror) inner.push(`        ${rS(stIndex.get(s.target)!)} = val;`);
    }
    else {
      const osize = R(K.ref(`D_${unit}`)) + ` * ${litSize(target.shape, unit)}u`;
      inner.push(`        ${outputBuffer(s.target)}[((size_t)${bg} * T + t) * (${osize}) + ${R(flatRows(target.shape, tIdx))}] = val;`);
    }
    let block = inner;
    for (const lv of loopVars) {
      const n = (lv.extent as { value: number }).value;
      block = [`#pragma unroll`, `      for (unsigned int g_${lv.id} = 0; g_${lv.id} < ${n}u; ++g_${lv.id}) {`, ...block, `      }`];
    }
    (si < plan.phaseA ? cellLinesA : cellLines).push(`      { // ${s.k} ${s.target}`, ...block, `      }`);
  }

  const initVals = states.map((s) => {
    const sc = new CudaScope({ model, b: bK, t: K.u32(0), prefix: `init${s.name}` });
    const init = s.init ? lowerConst(s.init, sc) : K.f32(0);
    return `(u.${initFlag(s.name)} != 0u ? ${STATES}[u.${stateOffset(s.name)} + (size_t)${bg} * E + j] : ${R(init)})`;
  });
  const outLocals = outputs.filter((o) => body.some((s) => tensorsRead(s.expr).has(o.name))).map((o) => `      float O_${o.name}[${litSize(o.shape, unit)}];`);
  // phase A (let vectors only): after the statements before the first matvec, element (b, j) of each let vector
  // goes to dst[b][let vectors' flat index] (the unit cell's global vbuf[t & 1], the batch cell's shared copy)
  const publish = (dst: string) => lVecs.map((v) => {
    const t = I.findTensor(model, v)!;
    const n = litSize(t.shape, unit);
    const lit = t.shape.map((e, a) => ({ e, a })).filter((x) => !isDim(x.e, unit));
    const decode = [...lit].reverse().map((x) => `unsigned int c${x.a} = r % ${(x.e as { value: number }).value}u; r /= ${(x.e as { value: number }).value}u;`).join(" ");
    let k = "";
    t.shape.forEach((e, a) => {
      const ix = isDim(e, unit) ? "j" : `c${a}`;
      k = a === 0 ? ix : `(${k}) * ${extC(e)} + ${ix}`;
    });
    return `${mirror ? "#pragma unroll\n" : ""}      for (unsigned int q = 0; q < ${n}u; ++q) { unsigned int r = q; ${decode} (void)r; ${dst}[(size_t)b * (${lvTotal}) + ${lvOff.get(v)!} + ${k}] = ${rA(v, "q")}; }`;
  });
  // `mirror`: the registers, loaded from shared memory at the top of a (b, j) iteration (off the step's chain)
  const mirrorDecls = mirror
    ? [
        ...states.map((_, si) => `      float R_S${si} = ${sS(si)};`),
        ...[...aOff.keys()].map((l) => {
          const n = litSize(I.findTensor(model, l)!.shape, unit);
          return `      float R_A_${l}[${n}];\n#pragma unroll\n      for (unsigned int q = 0; q < ${n}u; ++q) R_A_${l}[q] = ${sA(l, "q")};`;
        }),
      ]
    : [];
  return { E, rStates, rsIndex, stIndex, lVecs, lvOff, lvTotal, lvTotalS, aTotal, rowsLocal, wOff, mOff, cellLines, cellLinesA, initVals, outLocals, publish, extS, mirrorDecls };
}

export function renderMatvecCell(model: I.Model, CELL: CellConfig = CELL_CONFIGS[0]): MatvecCell {
  const el = matvecCellPlan(model);
  if (!el.ok) throw new Error(`matvec cell form of ${model.name}: ${el.why}`);
  const { unit, xterms, rterms } = el.plan;
  const states = I.tensorsOfKind(model, "state");
  const name = `seqc_${model.name}_cell_persistent${CELL.suffix.replace(/-/g, "_")}`;
  const gridSync = `seqc_grid_sync_${model.name}${CELL.suffix.replace(/-/g, "_")}`;
  const uniforms = uniformFields(model);
  const overrides = [...model.dims.map((d) => `D_${d.name}`), ...I.tensorsOfKind(model, "param").map((p) => `PO_${p.name}`), "JB"];
  const parts = cellBody(model, el.plan, { overrides, bg: "b" });
  const { E, rStates, rsIndex, stIndex, lVecs, lvOff, lvTotal, lvTotalS, aTotal, rowsLocal, wOff, mOff, cellLines, cellLinesA, initVals, outLocals, publish, extS } = parts;
  const { bufs: shared, structs, uo, ovDecls } = cellDecls(model, xterms, name, overrides);
  const bufs: CellBuffer[] = [
    ...shared,
    ...(rStates.length ? [{ ref: { kind: "workspace", name: "hbuf" } as CudaBufferRef, decl: `float* __restrict__ hbuf` }] : []),
    ...(lVecs.length ? [{ ref: { kind: "workspace", name: "vbuf" } as CudaBufferRef, decl: `float* __restrict__ vbuf` }] : []),
    { ref: { kind: "workspace", name: "barrier" }, decl: `unsigned int* __restrict__ barrier` },
  ];
  const nRS = rStates.length;
  const TB = CELL.TB;
  const TR = CELL.TR;
  const NV = TB * TR;

  const matvec = rterms
    .map((r) => {
      const RL = `${rowsLocal(r)}u * SEQC_JB`;
      // the vector: a state's previous value from s_H, or a let of this step straight from vbuf (L2)
      const H = r.vecKind === "state" ? `s_H + ${rsIndex.get(r.vec)}u * B * E` : `vin + ${lvOff.get(r.vec)!}`;
      const HS = r.vecKind === "state" ? "E" : `(${lvTotal})`;
      const ldH = r.vecKind === "state" ? (x: string) => x : (x: string) => `__ldcg(&${x})`;
      return `    { // ${r.param} . ${r.vec}${r.vecKind === "state" ? "(t-1)" : ""}  ->  s_M[${mOff[r.id]} + b * RL + row]
      const unsigned int RL = ${RL}, KV = ${productC(r.vecShape)}, HS = ${HS};
      const float* W = s_W + ${wOff[r.id]};
      const float* H = ${H};
      const unsigned int tilesB = (B + ${TB - 1}u) / ${TB}u, tilesR = (RL + ${TR - 1}u) / ${TR}u;
      for (unsigned int tile = warp; tile < tilesB * tilesR; tile += nwarps) {
        const unsigned int b0 = (tile / tilesR) * ${TB}u, r0 = (tile % tilesR) * ${TR}u;
        float acc[${NV}];
#pragma unroll
        for (int q = 0; q < ${NV}; ++q) acc[q] = 0.f;
        for (unsigned int m4 = lane; m4 < KV / 4u; m4 += 32u) {
          float4 w[${TR}], h[${TB}];
#pragma unroll
          for (int rr = 0; rr < ${TR}; ++rr) w[rr] = reinterpret_cast<const float4*>(W + (size_t)min(r0 + rr, RL - 1u) * KV)[m4];
#pragma unroll
          for (int bb = 0; bb < ${TB}; ++bb) h[bb] = ${ldH(`reinterpret_cast<const float4*>(H + (size_t)min(b0 + bb, B - 1u) * HS)[m4]`)};
#pragma unroll
          for (int bb = 0; bb < ${TB}; ++bb)
#pragma unroll
            for (int rr = 0; rr < ${TR}; ++rr) {
              float a = acc[bb * ${TR} + rr];
              a = fmaf(w[rr].x, h[bb].x, a); a = fmaf(w[rr].y, h[bb].y, a); a = fmaf(w[rr].z, h[bb].z, a); a = fmaf(w[rr].w, h[bb].w, a);
              acc[bb * ${TR} + rr] = a;
            }
        }
        // reduce-scatter over the 32 lanes: lane keeps 2 of the ${NV} sums
${reduceRounds(NV)}
        const unsigned int base = ${[0, 1, 2, 3, 4].map((k) => `((lane >> ${4 - k}) & 1u) * ${NV / 2 >> k}u`).join(" + ")};
#pragma unroll
        for (int q = 0; q < ${NV / 32}; ++q) {
          const unsigned int idx = base + q, bb = idx / ${TR}u, rr = idx % ${TR}u;
          if (b0 + bb < B && r0 + rr < RL) s_M[${mOff[r.id]} + (b0 + bb) * RL + r0 + rr] = acc[q];
        }
      }
    }`;
    })
    .join("\n");

  const loadW = rterms
    .map((r) => {
      const { decode, index } = weightIndex(r, (a) => `      unsigned int rv${a}; { const unsigned int jl = rest % SEQC_JB; rest /= SEQC_JB; rv${a} = j0 + jl; ok = ok && rv${a} < E; }`);
      return `  { // rows of ${r.param} owned by this block, each the ${productC(r.vecShape)} values it contracts with ${r.vec}
    const unsigned int RL = ${rowsLocal(r)}u * SEQC_JB, KV = ${productC(r.vecShape)};
    for (unsigned int i = threadIdx.x; i < RL * KV; i += blockDim.x) {
      // local row -> (literal axes.., jl); depth -> the vector's axes
      unsigned int rest = i / KV, kr = i % KV; bool ok = true;
${decode}
      s_W[${wOff[r.id]} + i] = ok ? __ldg(params + SEQC_${paramOffset(r.param)} + (${index})) : 0.f;
    }
  }`;
    })
    .join("\n");

  const phaseALoop = lVecs.length
    ? `    float* vout = vbuf + (size_t)(t & 1u) * B * (${lvTotal});
    const float* vin = vout;
    for (unsigned int i = threadIdx.x; i < B * SEQC_JB; i += blockDim.x) {
      const unsigned int b = i / SEQC_JB, jl = i % SEQC_JB, j = j0 + jl;
      if (j >= E) continue;
${outLocals.join("\n")}
${cellLinesA.join("\n")}
${publish("vout").join("\n")}
    }
    ${gridSync}(barrier, target);
`
    : "";
  const xrDecls = xterms.map((x) => `  const unsigned int XR${x.id} = ${productC(x.rows)};`).join("\n");
  const rDecls = rterms.map((r) => `  const unsigned int RL${r.id} = ${rowsLocal(r)}u * SEQC_JB; const unsigned int MO${r.id} = ${mOff[r.id]}; (void)MO${r.id}; (void)RL${r.id};`).join("\n");

  const src = `
// ==== ${model.name}: persistent sequential cell (recurrent matvec with weights in shared memory) ====
${structs}
__device__ __forceinline__ void ${gridSync}(unsigned int* bar, unsigned int& target) {
#ifdef SEQC_EMU
  emu_coop::gridsync(); (void)bar; (void)target;  // the CPU emulation (test/cuda-emu/cooperative.h)
#else
  __syncthreads();
  if (threadIdx.x == 0) {
    target += gridDim.x;
    __threadfence();
    atomicAdd(bar, 1u);
    unsigned int v;
    do { asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory"); } while (v < target);
  }
  __syncthreads();
#endif
}
extern "C" __global__ void __launch_bounds__(${CELL.THREADS}, 1) ${name}(${[...bufs.map((b) => b.decl), ...uo].join(", ")}) {
${ovDecls}
  const unsigned int B = u.B, T = u.T, E = ${E};
  const unsigned int j0 = blockIdx.x * SEQC_JB;
  const unsigned int lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  extern __shared__ float4 seqc_smem4[];
  float* s_W = reinterpret_cast<float*>(seqc_smem4);                 // recurrent rows of this block
  float* s_H = s_W + (${wOff[rterms.length]});                       // h_{t-1}, all units: [${nRS}][B][E]
  float* s_M = s_H + ${nRS}u * B * E;                                 // matvec results [B][rows]
  float* s_S = s_M + (${mOff[rterms.length]});                       // states of this block's units [${states.length}][B][JB]${aTotal ? `\n  float* s_A = s_S + ${states.length}u * B * SEQC_JB;                 // phase A's lets of this block's units [${aTotal}][B][JB]` : ""}
${xrDecls}
${rDecls}
${loadW}
  // initial states
  for (unsigned int i = threadIdx.x; i < B * SEQC_JB; i += blockDim.x) {
    const unsigned int b = i / SEQC_JB, jl = i % SEQC_JB, j = j0 + jl;
    if (j >= E) continue;
${states.map((s, si) => `    { const float v = ${initVals[si]}; s_S[${si}u * B * SEQC_JB + i] = v;${rsIndex.has(s.name) ? ` hbuf[(size_t)${rsIndex.get(s.name)}u * B * E + (size_t)b * E + j] = v;` : ""} }`).join("\n")}
  }
  unsigned int target = 0u;
  ${gridSync}(barrier, target);
  for (unsigned int t = 0; t < T; ++t) {
${phaseALoop}${nRS ? `    const float* hin = hbuf + (size_t)(t & 1u) * ${nRS}u * B * E;
    float* hout = hbuf + (size_t)((t + 1u) & 1u) * ${nRS}u * B * E;
    for (unsigned int i = threadIdx.x; i < ${nRS}u * B * E / 4u; i += blockDim.x)
      reinterpret_cast<float4*>(s_H)[i] = __ldcg(reinterpret_cast<const float4*>(hin) + i);
` : ""}    __syncthreads();
${matvec}
    __syncthreads();
    for (unsigned int i = threadIdx.x; i < B * SEQC_JB; i += blockDim.x) {
      const unsigned int b = i / SEQC_JB, jl = i % SEQC_JB, j = j0 + jl;
      if (j >= E) continue;
${outLocals.join("\n")}
${cellLines.join("\n")}
${rStates.map((s, k) => `      hout[(size_t)${k}u * B * E + (size_t)b * E + j] = s_S[${stIndex.get(s)}u * B * SEQC_JB + i];`).join("\n")}
    }
${nRS ? `    ${gridSync}(barrier, target);\n` : ""}  }
  for (unsigned int i = threadIdx.x; i < B * SEQC_JB; i += blockDim.x) {
    const unsigned int b = i / SEQC_JB, jl = i % SEQC_JB, j = j0 + jl;
    if (j >= E) continue;
${states.map((s, si) => `    ${STATES}[u.${stateOffset(s.name)} + (size_t)b * E + j] = s_S[${si}u * B * SEQC_JB + i];`).join("\n")}
  }
}
`;

  // ---- the plan: GEMMs for hoisted projections, then the persistent kernel ----
  const Esz: SizeExpr = unit;
  const smemFloats: SizeExpr = [
    "+",
    ...rterms.map((r) => ["*", rowsLocal(r), "JB", ...r.vecShape.map(extS)] as SizeExpr),
    ["*", nRS, "B", Esz],
    ...rterms.map((r) => ["*", "B", rowsLocal(r), "JB"] as SizeExpr),
    ["*", states.length, "B", "JB"],
    ["*", aTotal, "B", "JB"],
  ];
  const steps: CudaFormPlan["steps"] = hoistedGemms(model, xterms);
  steps.push({ kind: "zero", workspace: "barrier" });
  steps.push({ kind: "launch", entry: name, grid: "CELL_BLOCKS", threads: CELL.THREADS, sharedBytes: ["*", 4, "CELL_SMEM_FLOATS"], cooperative: true, buffers: bufs.map((b) => b.ref), uniforms, overrides: overrideValues(model, overrides) });
  const form: CudaFormPlan = {
    form: "sequential",
    variant: `persistent-matvec${CELL.suffix}`,
    note: `${xterms.length} input projection(s) hoisted into fp32 GEMMs; one persistent cooperative kernel keeps each block's rows of ${rterms.map((r) => r.param).join(", ")} in shared memory over all T steps${lVecs.length ? ` (contracted with ${lVecs.join(", ")}, published mid-step)` : ""}`,
    vars: [
      ["JB", ["ceilDiv", Esz, "LIMIT_SMS"]],
      ["CELL_BLOCKS", ["ceilDiv", Esz, "JB"]],
      ["CELL_SMEM_FLOATS", smemFloats],
    ],
    applicable: cellApplicable(el.plan, extS),
    workspaces: [
      ...xterms.map((x) => ({ name: `X${x.id}`, words: ["*", "B", "T", productS(x.rows)] as SizeExpr })),
      ...(nRS ? [{ name: "hbuf", words: ["*", 2, nRS, "B", Esz] as SizeExpr }] : []),
      ...(lVecs.length ? [{ name: "vbuf", words: ["*", 2, "B", lvTotalS] as SizeExpr }] : []),
      { name: "barrier", words: 1 },
    ],
    steps,
  };
  return { source: src, form };
}

type CellBuffer = { ref: CudaBufferRef; decl: string };
/**
 * What both cell kernels declare alike: the buffers both bind (inputs, outputs, params, states, the hoisted
 * projections' workspaces; the unit cell adds its exchange buffers and barrier), the uniform and override structs
 * and the kernel's parameters of those types (`uo`), and the overrides as constants (compiled in where
 * SEQC_<name>_CONST is defined).
 */
export function cellDecls(model: I.Model, xterms: XTerm[], name: string, overrides: string[]) {
  const bufs: CellBuffer[] = [
    ...I.tensorsOfKind(model, "input").map((t) => ({ ref: { kind: "input", name: t.name } as CudaBufferRef, decl: `const float* __restrict__ ${inputBuffer(t.name)}` })),
    ...I.tensorsOfKind(model, "output").map((t) => ({ ref: { kind: "output", name: t.name } as CudaBufferRef, decl: `float* __restrict__ ${outputBuffer(t.name)}` })),
    { ref: { kind: "params" }, decl: `const float* __restrict__ params` },
    { ref: { kind: "states" }, decl: `float* __restrict__ ${STATES}` },
    ...xterms.map((x) => ({ ref: { kind: "workspace", name: `X${x.id}` } as CudaBufferRef, decl: `const float* __restrict__ ws_X${x.id}` })),
  ];
  const us = `SeqcUniforms_${name}`;
  const os = `SeqcOverrides_${name}`;
  const structs = `struct ${us} { ${uniformFields(model).map((u) => `unsigned int ${u};`).join(" ")} };
struct ${os} { ${overrides.map((o) => `unsigned int ${o};`).join(" ")} };`;
  const ovDecls = overrides.map((o) => `#ifndef SEQC_${o}_CONST\n  const unsigned int SEQC_${o} = ov.${o};\n#else\n  constexpr unsigned int SEQC_${o} = SEQC_${o}_CONST;\n#endif`).join("\n");
  return { bufs, structs, uo: [`const ${us} u`, `const ${os} ov`], ovDecls };
}

/** Where either cell form applies: its CELL_SMEM_FLOATS fit, every vector's length a multiple of 4 (float4 rows), the units too. */
export function cellApplicable({ unit, rterms }: CellPlan, extS: (e: I.Extent) => SizeExpr): SizeExpr {
  const mult4 = (x: SizeExpr): SizeExpr => [">=", 0, ["-", x, ["*", 4, ["/", x, 4]]]];
  return ["*", [">=", "LIMIT_SMEM_OPTIN", ["*", 4, "CELL_SMEM_FLOATS"]], mult4(unit), ...rterms.map((r) => mult4(["*", ...r.vecShape.map(extS)] as SizeExpr))];
}

/** The hoisted input projections as fp32 GEMMs over all B*T steps, into workspaces X<k> [B, T, rows]. */
export function hoistedGemms(model: I.Model, xterms: CellPlan["xterms"]): CudaFormPlan["steps"] {
  return xterms.map((x) => {
    const kk: SizeExpr = x.k.kind === "lit" ? x.k.value : x.k.name;
    return { kind: "gemm", entry: SGEMM_ENTRY, a: { kind: "input", name: x.input }, b: { kind: "params" }, bOffset: overrideValues(model, [`PO_${x.param}`])[`PO_${x.param}`], c: { kind: "workspace", name: `X${x.id}` }, M: ["*", "B", "T"], N: productS(x.rows), K: kk, ...(x.slice ? { aOffset: ["*", x.slice.at, kk], lda: ["*", x.slice.of, kk] } : {}) };
  });
}

/**
 * A recurrent matrix's element of (local row, depth) when both cell kernels load it into shared memory: the lines
 * decoding `rest` into the row axes (last first; `unitRow(a)` renders the unit axis's line, a block's own units or
 * every unit) and `kr` into the vector's axes (kv<a>), and the param's flat index over them.
 */
export function weightIndex(r: RTerm, unitRow: (a: number) => string): { decode: string; index: string } {
  const decodeRows = r.rows
    .map((_, a) => r.rows.length - 1 - a)
    .map((a) => {
      if (a === r.unitAxis) return unitRow(a);
      const n = (r.rows[a] as { value: number }).value;
      return `      const unsigned int rv${a} = rest % ${n}u; rest /= ${n}u;`;
    });
  const decodeK = r.vecShape
    .map((_, a) => r.vecShape.length - 1 - a)
    .map((a) => `      const unsigned int kv${a} = kr % ${extC(r.vecShape[a])}; kr /= ${extC(r.vecShape[a])};`);
  const idxC = (x: PIndex) => (x.kind === "lit" ? `${x.value}u` : x.kind === "row" ? `rv${x.at}` : `kv${x.at}`);
  let index = "";
  r.pIdx.forEach((x, a) => (index = a === 0 ? idxC(x) : `(size_t)(${index}) * ${extC(r.pShape[a])} + ${idxC(x)}`));
  return { decode: `${decodeRows.join("\n")}\n${decodeK.join("\n")}`, index };
}

/** An extent, and a product of extents, as CUDA expressions (SEQC_D_<dim> for a dim). */
const extC = (e: I.Extent) => (e.kind === "lit" ? `${e.value}u` : `SEQC_D_${e.name}`);
export const productC = (shape: I.Extent[]) => shape.map(extC).join(" * ");

/** Unrolled reduce-scatter of `nv` per-lane sums over a warp: after log2(32) rounds each lane keeps nv/32 sums. */
function reduceRounds(nv: number): string {
  const out: string[] = [];
  let half = nv / 2;
  for (let off = 16; off >= 1; off >>= 1, half >>= 1) {
    out.push(`        {\n          const bool up = (lane & ${off}u) != 0u;`);
    out.push(`#pragma unroll\n          for (int q = 0; q < ${half}; ++q) { const float send = up ? acc[q] : acc[q + ${half}]; const float keep = up ? acc[q + ${half}] : acc[q]; acc[q] = keep + __shfl_xor_sync(0xffffffffu, send, ${off}); }`);
    out.push(`        }`);
  }
  return out.join("\n");
}
