/**
 * Sequential form, `grid` variant: one launch per time step, the step's work spread over a grid of
 * workgroups. For cells whose state enters through contractions with params (LSTM, GRU, sLSTM:
 * `sum(m) U[g, j, m] * h[m]` with h from step t-1), where one workgroup per batch row would redo a
 * whole matrix-vector product per step.
 *
 *  1. hoist (hoist.ts): the state-independent, input-dependent terms of lets (`W x + b`) are computed
 *     for all (b, t) of a block of TC steps before the recurrence over those steps, by a tiled matrix
 *     product (or a parallel map); TC: as many steps as the device's binding limit holds (all T
 *     where they fit), steps 1 and 3 repeated block after block;
 *  2. init: the initial states (given or declared) go to the state ping-pong buffer;
 *  3. step, dispatched T times in one compute pass (the step index t is a uniform at a dynamic
 *     offset): the states of step t-1 are read from one half of the ping-pong buffer, those of step t
 *     written to the other. Workgroup (unit tile, batch tile) owns JB partition points (units) x BB
 *     batch rows: it computes the recurrent contractions its units need as a small matrix product
 *     (param rows and previous-state vectors staged in KC-deep slices of workgroup memory, 4 batch
 *     rows per thread), then runs the rest of the step (pointwise per unit) with the model's own
 *     statements, writes its outputs and the new states.
 *
 * The partition allows reads of a state's previous value at any index (partition.ts,
 * previousStateReadsFree): every workgroup reads it from global memory. No grid-wide barrier is
 * needed (the launch boundary is one), so nothing can hang where workgroups lack forward progress.
 *
 * Passes: hoist -> contractions -> partition -> slots -> phases -> kernels -> plan.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import { analyzePartition, type Partition } from "./partition.ts";
import { runPasses, type Pass, type PassTrace } from "./passes.ts";
import { StepLowering, ELEM_B, lowerConst, type Slot } from "./step.ts";
import { lowerExpr, type ExprScope } from "./lower-expr.ts";
import { extentK, flatIndex, maxS, mulS, productK, productS, sumS } from "./symbolic.ts";
import { initFlag, STATES, STATES_IN, stateOffset, uniformFields } from "./interface.ts";
import { buildKernel, launchBindings, modelBindings, modelOverrides, trafficBytes, type LoweredForm } from "./sequential.ts";
import { decodeIndex, hoistBlockVars, hoistedRow, hoistLayout, HOISTED, hoistName, planHoisting, pushHoistKernels, type Hoisting } from "./hoist.ts";
import type { FormPlan, KernelLaunch, SizeExpr } from "../../runtime/plan.ts";

/** The state ping-pong buffer: [2][states packed as in STATES]. */
export const PINGPONG = "pingpong";
export const recurrentName = (id: number) => `__R${id}`;

type Read = Extract<I.Expr, { k: "read" }>;

/** A recurrent contraction `sum(m) P[.., m, ..] * S[.., m, ..]` of a param with a state's previous value. */
export interface Recurrent {
  id: number;
  target: string;
  vars: I.IndexVar[];
  m: I.IndexVar;
  param: Read;
  state: Read;
  /** The state vector depends on the unit (its index uses a partitioned target variable). */
  perUnit: boolean;
}

/** Batch rows per thread in the contraction (the slice depth KC is an override, see the plan's $KC). */
const TB = 4;
/**
 * Latency model (ns), fitted on the H100 (bench/RESULTS.md, run 5: the steps alone at H=256 and
 * H=1024): a step's fixed cost (dispatch, barriers, the dependent loads of the cell) and one unit of
 * the contraction per thread (a multiply-add with its share of the staging).
 */
export const GRID_COST_NS = { launch: 7200, work: 15.5 };

export type GridEligibility = { ok: true; hoisting: Hoisting; model: I.Model; recurrent: Recurrent[] } | { ok: false; why: string };

/** Whether the grid variant applies: no micro-step loops, and at least one recurrent contraction. */
export function stepGridPlan(model: I.Model): GridEligibility {
  let loops = false;
  I.walkStmts(model.body, (s) => void (s.k === "for" && (loops = true)));
  if (loops) return { ok: false, why: "micro-step loops (a step is not one launch)" };
  const hoisting = planHoisting(model);
  const m0 = hoisting.model;
  const recurrent: Recurrent[] = [];
  const updated = new Set<string>();
  const body: I.Stmt[] = [];
  for (const s of m0.body) {
    if (s.k === "for") return { ok: false, why: "micro-step loops" };
    const isTarget = (v: I.IndexVar) => s.vars.some((x) => x.id === v.id);
    const rewrite = (e: I.Expr): I.Expr => {
      switch (e.k) {
        case "sum": {
          const hit = matchRecurrent(m0, e, updated, isTarget);
          if (hit) {
            const id = recurrent.length;
            recurrent.push({ id, target: s.target, vars: s.vars, ...hit, perUnit: false });
            return { k: "read", tensor: recurrentName(id), idx: s.vars.map((v) => ({ kind: "var", v })) };
          }
          return e;
        }
        case "bin": return { ...e, a: rewrite(e.a), b: rewrite(e.b) };
        case "neg": return { ...e, a: rewrite(e.a) };
        case "call": return { ...e, args: e.args.map(rewrite) };
        default: return e;
      }
    };
    body.push({ ...s, expr: rewrite(s.expr) });
    if (s.k === "assign") updated.add(s.target);
  }
  if (!recurrent.length) return { ok: false, why: "no contraction of a param with a previous state (nothing to spread over workgroups)" };
  const rewritten: I.Model = { ...m0, body };
  const partition = analyzePartition(rewritten, { previousStateReadsFree: true });
  for (const r of recurrent) {
    for (const ix of r.state.idx) {
      if (ix.kind !== "var" || ix.v.id === r.m.id) continue;
      const a = r.vars.findIndex((v) => v.id === ix.v.id);
      if (!partition.classOf(r.target, a)) return { ok: false, why: `the state vector ${r.state.tensor} of a contraction depends on the local index ${ix.v.name}` };
      r.perUnit = true;
    }
  }
  return { ok: true, hoisting, model: rewritten, recurrent };
}

function matchRecurrent(model: I.Model, e: Extract<I.Expr, { k: "sum" }>, updated: Set<string>, isTarget: (v: I.IndexVar) => boolean): { m: I.IndexVar; param: Read; state: Read } | undefined {
  if (e.vars.length !== 1 || e.body.k !== "bin" || e.body.op !== "*" || e.body.a.k !== "read" || e.body.b.k !== "read") return undefined;
  const m = e.vars[0];
  const kind = (r: Read) => I.findTensor(model, r.tensor)?.kind;
  const [a, b] = [e.body.a, e.body.b];
  const param = kind(a) === "param" ? a : kind(b) === "param" ? b : undefined;
  const state = kind(a) === "state" ? a : kind(b) === "state" ? b : undefined;
  if (!param || !state || updated.has(state.tensor)) return undefined;
  const ok = (r: Read) => r.idx.filter((ix) => ix.kind === "var" && ix.v.id === m.id).length === 1 && r.idx.every((ix) => ix.kind === "lit" || ix.v.id === m.id || isTarget(ix.v));
  return ok(param) && ok(state) ? { m, param, state } : undefined;
}

interface GridCtx {
  model: I.Model;
  plan?: Extract<GridEligibility, { ok: true }>;
  partition?: Partition;
  step?: StepLowering;
  stepBody?: K.KStmt[];
  kernels: K.Kernel[];
  launches: KernelLaunch[];
  /** Flops of each hoisting kernel (cost model). */
  hoistFlops: SizeExpr[];
  form?: FormPlan;
}

/** Row stride of a staged slice (KC + 1: no bank conflicts between rows). */
const S = K.add(K.ref("KC"), K.u32(1));
const KC = K.ref("KC");
const scratchNames = (c: GridCtx) => [PINGPONG, ...(c.plan!.hoisting.lets.length ? [HOISTED] : [])];

/** The first two passes of the grid and stream variants: the hoisting/contraction analysis, then the partition of the hoisted model. */
export function analysisPasses<C extends { model: I.Model; plan?: Extract<GridEligibility, { ok: true }>; partition?: Partition }>(variant: string): Pass<C>[] {
  return [
    {
      name: "hoist+contractions",
      run: (c) => {
        const p = stepGridPlan(c.model);
        if (!p.ok) throw new Error(`the ${variant} variant does not apply to ${c.model.name}: ${p.why}`);
        c.plan = p;
      },
    },
    { name: "partition", run: (c) => (c.partition = analyzePartition(c.plan!.model, { previousStateReadsFree: true })) },
  ];
}

const passes: Pass<GridCtx>[] = [
  ...analysisPasses<GridCtx>("grid"),
  {
    name: "slots",
    run: (c) => {
      c.step = new GridStep(c.plan!, {
        model: c.plan!.model,
        partition: c.partition!,
        variant: "workgroup",
        owner: K.ref("g"),
        columns: K.ref("G"),
        t: K.ref("t"),
        element: (g) => ({
          prelude: c.step!.decodeElement(K.add(K.mul(K.ref("bt"), K.ref("BB")), K.bin("/", g, K.ref("JB"))), K.add(K.mul(K.ref("ut"), K.ref("JB")), K.bin("%", g, K.ref("JB")))),
          valid: K.bin("&&", K.bin("<", K.ref(ELEM_B), K.uni("B")), K.bin("<", K.ref("e_p"), K.ref("P"))),
        }),
      });
      c.step.assignSlots(false);
      for (const r of c.plan!.recurrent) {
        const localAxes = r.vars.map((_, a) => a).filter((a) => !c.partition!.classOf(r.target, a));
        c.step.slots.set(recurrentName(r.id), { kind: "shared", array: `s_R${r.id}`, local: localAxes.map((a) => r.vars[a].extent), localAxes });
      }
    },
  },
  { name: "phases", run: (c) => (c.stepBody = stepBody(c)) },
  { name: "kernels", run: (c) => buildKernels(c) },
  { name: "plan", run: (c) => (c.form = gridPlan(c)) },
];

export function lowerStepGrid(model: I.Model): LoweredForm {
  const trace: PassTrace[] = [];
  const c = runPasses<GridCtx>({ model, kernels: [], launches: [], hoistFlops: [] }, passes, trace);
  return { plan: c.form!, kernels: c.kernels, trace };
}

/**
 * Where a step's previous states and hoisted terms are read and its new states written. The grid
 * variant's: the global ping-pong buffer (halves at prevBase / nextBase) and HOISTED; the stream
 * variant keeps its states in workgroup memory and prefetches the hoisted terms (step-stream.ts).
 */
export interface StepStorage {
  /** State `t` of step t-1 at full index idx, batch row b. */
  prevState(t: I.TensorDecl, b: K.KExpr, idx: K.KExpr[]): K.KExpr;
  /** Statements writing `value` as state `t` of step t (and the final state after the last step). */
  writeState(t: I.TensorDecl, b: K.KExpr, idx: K.KExpr[], value: K.KExpr, fresh: (p: string) => string): K.KStmt[];
  /** Hoisted term at float `at` of the row of (batch row ELEM_B, step t) (the let's offset plus its flat index); `row` is the inputs' row b * T + t. */
  hoisted(at: K.KExpr, row: K.KExpr): K.KExpr;
}

/** The grid variant's storage: the global ping-pong buffer and HOISTED. */
export function globalStorage(width: K.KExpr): StepStorage {
  return {
    prevState: (t, b, idx) => K.load(PINGPONG, K.add(K.ref("prevBase"), GridStep.stateAddr(t, b, idx))),
    writeState: (t, b, idx, value, fresh) => {
      const a = fresh("sa");
      const val = fresh("sv");
      return [
        K.decl(a, "u32", GridStep.stateAddr(t, b, idx)),
        K.decl(val, "f32", value),
        K.store(PINGPONG, K.add(K.ref("nextBase"), K.ref(a)), K.ref(val, "f32")),
        K.ifThen(K.bin("==", K.add(K.ref("t"), K.u32(1)), K.uni("T")), [K.store(STATES, K.ref(a), K.ref(val, "f32"))]),
      ];
    },
    hoisted: (at) => K.load(HOISTED, K.add(K.mul(hoistedRow(K.ref(ELEM_B), K.ref("t")), width), at)),
  };
}

/** The step lowering with the grid's storage: previous states from the ping-pong buffer, hoisted terms from HOISTED, contractions from their slots. */
export class GridStep extends StepLowering {
  readonly updated = new Set<string>();
  private readonly layout: ReturnType<typeof hoistLayout>;
  readonly storage: StepStorage;

  constructor(private readonly grid: Extract<GridEligibility, { ok: true }>, cfg: ConstructorParameters<typeof StepLowering>[0], storage?: StepStorage) {
    super(cfg);
    this.layout = hoistLayout(grid.hoisting);
    this.storage = storage ?? globalStorage(this.layout.width);
  }

  /** Address of state `t` at full index idx for batch row b, in the packed layout (add a ping-pong half). */
  static stateAddr(t: I.TensorDecl, b: K.KExpr, idx: K.KExpr[]): K.KExpr {
    return K.add(K.add(K.uni(stateOffset(t.name)), K.mul(b, productK(t.shape))), flatIndex(idx, t.shape));
  }

  override scope(vars: Map<number, K.KExpr>, timeBase: () => K.KExpr): ExprScope {
    const base = super.scope(vars, timeBase);
    const read = base.read;
    return {
      ...base,
      read: (tensor, idx, pre) => {
        const h = this.grid.hoisting.lets.find((l) => hoistName(l.id) === tensor);
        if (h) return this.storage.hoisted(K.add(this.layout.offset[h.id], flatIndex(idx, h.shape)), timeBase());
        const slot = this.slots.get(tensor);
        if (tensor.startsWith("__R") && slot && slot.kind === "shared") return K.load(slot.array, this.slotIndex(slot, idx));
        const t = I.findTensor(this.model, tensor);
        if (t?.kind === "state" && !this.updated.has(tensor)) return this.storage.prevState(t, K.ref(ELEM_B), idx);
        return read(tensor, idx, pre);
      },
    };
  }
}

/** Bind a statement's target variables for unit p (decoded with `prefix`) and local flat index l. */
export function bindUnit(step: StepLowering, partition: Partition, target: string, vars: I.IndexVar[], p: K.KExpr, l: K.KExpr, prefix: string, out: K.KStmt[]): Map<number, K.KExpr> {
  out.push(...step.decodeElement(K.u32(0), p, prefix));
  const map = new Map<number, K.KExpr>();
  const locals: I.IndexVar[] = [];
  vars.forEach((v, a) => {
    const cl = partition.classOf(target, a);
    if (cl) map.set(v.id, K.ref(`${prefix}_c${cl.id}`));
    else locals.push(v);
  });
  return decodeIndex(locals, l, out, prefix, map);
}

/** Phase 1: recurrent contraction r into its slot, as a small matrix product over this workgroup's rows and batch rows. */
function contraction(c: GridCtx, r: Recurrent): K.KStmt[] {
  const step = c.step!;
  const part = c.partition!;
  const slot = step.slots.get(recurrentName(r.id)) as Extract<Slot, { kind: "shared" | "global" }>;
  const L = productK(slot.local);
  const NR = K.mul(K.ref("JB"), L);
  const NV = r.perUnit ? K.ref("G") : K.ref("BB");
  const total = K.mul(NR, K.ref("NBT"));
  const M = extentK(r.m.extent);
  const stateDecl = I.findTensor(c.model, r.state.tensor)!;
  const out: K.KStmt[] = [{ k: "comment", text: `contraction ${r.param.tensor} x ${r.state.tensor} (step t-1) for ${r.target}` }];

  // staging of the param rows: row rr = (unit ju, local l)
  const stageP: K.KStmt[] = [K.decl("rr", "u32", K.bin("/", K.ref("y"), KC)), K.decl("kk", "u32", K.bin("%", K.ref("y"), KC)), K.decl("m", "u32", K.add(K.ref("m0"), K.ref("kk")))];
  stageP.push(K.decl("wp", "u32", K.add(K.mul(K.ref("ut"), K.ref("JB")), K.bin("/", K.ref("rr"), L))));
  {
    const pre: K.KStmt[] = [];
    const vars = bindUnit(step, part, r.target, r.vars, K.ref("wp"), K.bin("%", K.ref("rr"), L), "w", pre);
    vars.set(r.m.id, K.ref("m"));
    const v = lowerExpr(r.param, step.scope(vars, () => K.u32(0)), pre);
    stageP.push(K.decl("wv", "f32", K.f32(0), true));
    stageP.push(K.ifThen(K.bin("&&", K.bin("<", K.ref("m"), M), K.bin("<", K.ref("wp"), K.ref("P"))), [...pre, K.set("wv", v)]));
    stageP.push(K.decl("wi", "u32", K.add(K.mul(K.ref("rr"), S), K.ref("kk"))));
  }
  // staging of the previous-state vectors: vector vv = batch row (and unit when the vector depends on it)
  const stageS: K.KStmt[] = [K.decl("vv", "u32", K.bin("/", K.ref("y"), KC)), K.decl("kk", "u32", K.bin("%", K.ref("y"), KC)), K.decl("m", "u32", K.add(K.ref("m0"), K.ref("kk")))];
  {
    const pre: K.KStmt[] = [];
    const bi = r.perUnit ? K.bin("/", K.ref("vv"), K.ref("JB")) : K.ref("vv");
    stageS.push(K.decl("vb", "u32", K.add(K.mul(K.ref("bt"), K.ref("BB")), bi)));
    let valid = K.bin("&&", K.bin("<", K.ref("m"), M), K.bin("<", K.ref("vb"), K.uni("B")));
    let vars = new Map<number, K.KExpr>();
    if (r.perUnit) {
      stageS.push(K.decl("vp", "u32", K.add(K.mul(K.ref("ut"), K.ref("JB")), K.bin("%", K.ref("vv"), K.ref("JB")))));
      valid = K.bin("&&", valid, K.bin("<", K.ref("vp"), K.ref("P")));
      vars = bindUnit(step, part, r.target, r.vars, K.ref("vp"), K.u32(0), "v", pre);
    }
    vars.set(r.m.id, K.ref("m"));
    const idx = r.state.idx.map((ix) => (ix.kind === "lit" ? K.u32(ix.value) : vars.get(ix.v.id)!));
    stageS.push(K.decl("sv", "f32", K.f32(0), true));
    stageS.push(K.ifThen(valid, [...pre, K.set("sv", K.load(PINGPONG, K.add(K.ref("prevBase"), GridStep.stateAddr(stateDecl, K.ref("vb"), idx))))]));
    stageS.push(K.decl("si", "u32", K.add(K.mul(K.ref("vv"), S), K.ref("kk"))));
  }
  // each thread: one param row x TB batch rows
  const acc = (i: number) => `acc_${i}`;
  const vec = (i: number) => {
    const bi = K.bin("min", K.add(K.mul(K.ref("bq"), K.u32(TB)), K.u32(i)), K.bin("-", K.ref("BB"), K.u32(1)), "u32");
    return r.perUnit ? K.add(K.mul(bi, K.ref("JB")), K.ref("ju")) : bi;
  };
  const fma: K.KStmt[] = [K.decl("w", "f32", K.load("gw", K.add(K.mul(K.ref("rw"), S), K.ref("kq"))))];
  for (let i = 0; i < TB; i++) fma.push(K.set(acc(i), K.bin("+", K.ref(acc(i), "f32"), K.bin("*", K.ref("w", "f32"), K.load("gs", K.add(K.mul(K.ref(`vi_${i}`), S), K.ref("kq"))), "f32"), "f32")));
  const active = K.bin("<", K.ref("x"), total);
  const stores: K.KStmt[] = [];
  for (let i = 0; i < TB; i++) {
    const bi = K.add(K.mul(K.ref("bq"), K.u32(TB)), K.u32(i));
    const g = K.add(K.mul(bi, K.ref("JB")), K.ref("ju"));
    stores.push(K.ifThen(K.bin("<", bi, K.ref("BB")), [K.store(slot.array, K.add(K.mul(K.ref("lr"), K.ref("G")), g), K.ref(acc(i), "f32"))]));
  }
  const round: K.KStmt[] = [
    K.decl("x", "u32", K.add(K.ref("x0"), K.ref("lid"))),
    K.decl("rw", "u32", K.bin("%", K.ref("x"), NR)),
    K.decl("bq", "u32", K.bin("/", K.ref("x"), NR)),
    K.decl("ju", "u32", K.bin("/", K.ref("rw"), L)),
    K.decl("lr", "u32", K.bin("%", K.ref("rw"), L)),
    ...Array.from({ length: TB }, (_, i) => K.decl(`vi_${i}`, "u32", vec(i))),
    ...Array.from({ length: TB }, (_, i) => K.decl(acc(i), "f32", K.f32(0), true)),
    K.forLoop("m0", K.u32(0), M, [
      unrolledStage(K.mul(NR, KC), stageP, "wv", "wi", "gw", "p"),
      unrolledStage(K.mul(NV, KC), stageS, "sv", "si", "gs", "s"),
      { k: "barrier" },
      // a run-time trip count (the slice's real depth): a constant one is unrolled, which costs a software rasteriser seconds of compile
      K.ifThen(active, [K.forLoop("kq", K.u32(0), K.bin("min", KC, K.bin("-", M, K.ref("m0")), "u32"), fma)]),
      { k: "barrier" },
    ], KC),
    K.ifThen(active, stores),
  ];
  out.push(K.forLoop("x0", K.u32(0), total, round, K.ref("WG")));
  return out;
}

/** Loads in flight per thread while staging a slice (independent loads, then the stores). */
const STAGE_UNROLL = 8;

/**
 * `for (y = lid; y < n; y += WG) shared[idx] = value` with STAGE_UNROLL copies of the body per
 * iteration: every copy's global load is issued before any result is stored, so a thread waits for
 * one memory round trip per STAGE_UNROLL loads, not one per load. `body` computes element y into the
 * variables `value` and `index`.
 */
function unrolledStage(n: K.KExpr, body: K.KStmt[], value: string, index: string, shared: string, tag: string): K.KStmt {
  const y0 = `${tag}y0`;
  const at = (u: number) => K.add(K.ref(y0), K.mul(K.u32(u), K.ref("WG")));
  const inner: K.KStmt[] = [];
  for (let u = 0; u < STAGE_UNROLL; u++) inner.push(K.decl(`${tag}v${u}`, "f32", K.f32(0), true), K.decl(`${tag}i${u}`, "u32", K.u32(0), true));
  for (let u = 0; u < STAGE_UNROLL; u++) {
    inner.push(K.ifThen({ k: "bool", v: true }, [K.decl("y", "u32", at(u)), ...body, K.set(`${tag}v${u}`, K.ref(value, "f32")), K.set(`${tag}i${u}`, K.ref(index))]));
  }
  for (let u = 0; u < STAGE_UNROLL; u++) inner.push(K.ifThen(K.bin("<", at(u), n), [K.store(shared, K.ref(`${tag}i${u}`), K.ref(`${tag}v${u}`, "f32"))]));
  return K.forLoop(y0, K.ref("lid"), n, inner, K.mul(K.u32(STAGE_UNROLL), K.ref("WG")));
}

/**
 * One step's cell after the recurrent contractions (the model's statements, a barrier for each
 * sync) and the write of every state of step t to the other half of the ping-pong buffer (and to
 * the final states after the last step). Shared by the grid and stream variants.
 */
export function cellAndStates(model: I.Model, step: GridStep): K.KStmt[] {
  const body: K.KStmt[] = [];
  const states = I.tensorsOfKind(model, "state");
  const sync = () => [{ k: "barrier" } as K.KStmt];
  for (const s of model.body) {
    body.push(...step.lowerStmts([s], new Map(), sync));
    if (s.k === "assign") step.updated.add(s.target);
  }
  body.push({ k: "comment", text: "the states of step t: to the other half of the ping-pong buffer (and the final state after the last step)" });
  for (const t of states) {
    const slot = step.slots.get(t.name)!;
    const shared = slot.kind !== "register" ? slot : undefined;
    body.push(
      ...step.elementLoop(shared ? shared.local : [], (l) => {
        const pre: K.KStmt[] = [];
        const idx = step.stateIndex(t, shared, l, pre);
        const v = step.updated.has(t.name) && shared ? K.load(shared.array, step.slotAt(shared, l)) : step.storage.prevState(t, K.ref(ELEM_B), idx);
        pre.push(...step.storage.writeState(t, K.ref(ELEM_B), idx, v, (p) => step.fresh(p)));
        return pre;
      }),
    );
  }
  return body;
}

function stepBody(c: GridCtx): K.KStmt[] {
  const step = c.step as GridStep;
  const model = c.plan!.model;
  const states = I.tensorsOfKind(model, "state");
  const srow = states.reduce<K.KExpr>((acc, t) => K.add(acc, productK(t.shape)), K.u32(0));
  const body: K.KStmt[] = [
    K.decl("t", "u32", K.ref(K.STEP_INDEX)),
    K.decl("STOT", "u32", K.mul(K.uni("B"), srow)),
    K.decl("prevBase", "u32", K.mul(K.bin("%", K.ref("t"), K.u32(2)), K.ref("STOT"))),
    K.decl("nextBase", "u32", K.bin("-", K.ref("STOT"), K.ref("prevBase"))),
    K.decl("NUT", "u32", K.bin("/", K.add(K.ref("P"), K.bin("-", K.ref("JB"), K.u32(1))), K.ref("JB"))),
    K.decl("ut", "u32", K.bin("%", K.ref("wg"), K.ref("NUT"))),
    K.decl("bt", "u32", K.bin("/", K.ref("wg"), K.ref("NUT"))),
  ];
  for (const r of c.plan!.recurrent) body.push(...contraction(c, r));
  body.push({ k: "barrier" });
  body.push(...cellAndStates(model, step));
  return body;
}

/** The kernel copying every batch row's initial states into the ping-pong buffer (initBody), once before the steps. */
export function pushInitKernel(c: { model: I.Model; kernels: K.Kernel[]; launches: KernelLaunch[] }, name: string, used: (body: K.KStmt[]) => K.KBuffer[], overrides: K.KOverride[]): void {
  const model = c.model;
  const init = initBody(model);
  c.kernels.push({ name, workgroupSize: K.u32(256), buffers: used(init), uniformBinding: 0, uniforms: uniformFields(model), overrides, shared: [], body: init, needs: [] });
  c.launches.push({ name, shader: name, entry: "main", overrides: {}, workgroups: ["ceilDiv", ["*", "B", sumS(I.tensorsOfKind(model, "state").map((t) => productS(t.shape)))], 256], sharedBytes: 0, threads: 256, bindings: [] });
}

function initBody(model: I.Model): K.KStmt[] {
  const states = I.tensorsOfKind(model, "state");
  const srow = states.reduce<K.KExpr>((acc, t) => K.add(acc, productK(t.shape)), K.u32(0));
  const out: K.KStmt[] = [K.decl("i", "u32", K.add(K.mul(K.ref("wg"), K.u32(256)), K.ref("lid"))), K.decl("STOT", "u32", K.mul(K.uni("B"), srow))];
  const inner: K.KStmt[] = [];
  let n = 0;
  for (const t of states) {
    const lo = K.uni(stateOffset(t.name));
    const hi = K.add(lo, K.mul(K.uni("B"), productK(t.shape)));
    const v = K.sel(K.bin("!=", K.uni(initFlag(t.name)), K.u32(0)), K.load(STATES_IN, K.ref("i")), t.init ? lowerConst(t.init, { fresh: (p) => `${p}_${n++}` }) : K.f32(0));
    inner.push(K.ifThen(K.bin("&&", K.bin(">=", K.ref("i"), lo), K.bin("<", K.ref("i"), hi)), [K.store(PINGPONG, K.ref("i"), v)]));
  }
  out.push(K.ifThen(K.bin("<", K.ref("i"), K.ref("STOT")), inner));
  return out;
}

/** For the kernels of a grid or stream plan: the model's buffers a body uses, and the overrides every kernel declares. */
export function kernelParts(model: I.Model, partition: Partition, scratch: string[]): { used: (body: K.KStmt[]) => K.KBuffer[]; baseOverrides: K.KOverride[] } {
  const { kernelBuffers } = modelBindings(model, scratch);
  const used = (body: K.KStmt[]) => {
    const u = K.usedArrays(body);
    return kernelBuffers.filter((b) => u.has(b.name));
  };
  return { used, baseOverrides: Object.keys(modelOverrides(model, partition)).map((name) => ({ name })) };
}

function buildKernels(c: GridCtx): void {
  const model = c.model;
  const scratch = scratchNames(c);
  const { used, baseOverrides } = kernelParts(model, c.partition!, scratch);
  pushHoistKernels(c, c.plan!.hoisting, `${model.name}_grid`, scratch, used, baseOverrides);
  pushInitKernel(c, `${model.name}_grid_init`, used, baseOverrides);
  const maxL = c.plan!.recurrent.map((r) => productK((c.step!.slots.get(recurrentName(r.id)) as Extract<Slot, { kind: "shared" | "global" }>).local));
  const lmax = maxL.reduce((a, b) => K.bin("max", a, b));
  const anyPerUnit = c.plan!.recurrent.some((r) => r.perUnit);
  const stepName = `${model.name}_grid_step`;
  const k = buildKernel(model, stepName, c.step!, c.stepBody!, {
    scratch,
    overrides: ["JB", "BB", "NBT", "KC"],
    shared: [
      { name: "gw", length: K.mul(K.mul(K.ref("JB"), lmax), S) },
      { name: "gs", length: K.mul(anyPerUnit ? K.ref("G") : K.ref("BB"), S) },
    ],
  });
  k.buffers = used(c.stepBody!);
  k.stepUniform = modelBindings(model, scratch).bindings.length;
  c.kernels.push(k);
}

function gridPlan(c: GridCtx): FormPlan {
  const model = c.model;
  const step = c.step!;
  const scratch = scratchNames(c);
  const rec = c.plan!.recurrent;
  const slotL = rec.map((r) => productS((step.slots.get(recurrentName(r.id)) as Extract<Slot, { kind: "shared" | "global" }>).local));
  const anyPerUnit = rec.some((r) => r.perUnit);
  const base = modelOverrides(model, c.partition!);
  const stateFloats = sumS(I.tensorsOfKind(model, "state").map((t) => productS(t.shape)));
  const layout = hoistLayout(c.plan!.hoisting);
  const perElem = mulS(4, sumS(step.sharedArrays().map((a) => productS(a.local))));
  const mExt = (r: Recurrent): SizeExpr => (r.m.extent.kind === "lit" ? r.m.extent.value : r.m.extent.name);
  const vars: [string, SizeExpr][] = [
    ["$P", base.P],
    ["$LR", maxS(slotL)],
    ["$THREADS", 128],
    // batch rows per workgroup: a multiple of the TB rows a thread takes (B <= TB share one pipeline)
    ["$BB", ["max", TB, ["min", 16, ["pow2ceil", "B"]]]],
    ["$NBT", ["ceilDiv", "$BB", TB]],
    ["$JB", ["max", 1, ["min", ["pow2ceil", "$P"], ["pow2floor", ["max", 1, ["/", "$THREADS", ["*", "$LR", "$NBT"]]]]]]],
    ["$G", ["*", "$BB", "$JB"]],
    ["$WG", ["max", 32, ["min", 256, ["pow2ceil", ["*", "$JB", "$LR", "$NBT"]]]]],
    ["$SHARED_PER_ELEM", perElem],
    // slice depth: up to 128 (fewer dependent load rounds per step) as far as workgroup memory allows
    ["$KCFIT", ["pow2floor", ["max", 1, ["-", ["/", ["max", 0, ["-", "LIMIT_SHARED", ["*", "$G", "$SHARED_PER_ELEM"]]], ["*", 4, ["+", ["*", "$JB", "$LR"], anyPerUnit ? "$G" : "$BB"]]], 1]]]],
    ["$KC", ["max", 8, ["min", 128, ["pow2ceil", maxS(rec.map(mExt))], "$KCFIT"]]],
    ["$SHARED_BYTES", ["+", ["*", "$G", "$SHARED_PER_ELEM"], ["*", 4, ["+", "$KC", 1], ["+", ["*", "$JB", "$LR"], anyPerUnit ? "$G" : "$BB"]]]],
    ["$WGS", ["*", ["ceilDiv", "$P", "$JB"], ["ceilDiv", "B", "$BB"]]],
    ...hoistBlockVars(layout.widthS),
  ];
  const overrides: Record<string, SizeExpr> = { ...base, G: "$G", WG: "$WG", JB: "$JB", BB: "$BB", NBT: "$NBT", KC: "$KC" };
  const baseOnly: Record<string, SizeExpr> = { ...base };
  const launches: KernelLaunch[] = c.launches.map((l) => {
    const kernel = c.kernels.find((k) => k.name === l.name)!;
    return { ...l, overrides: pick(baseOnly, kernel.overrides.map((o) => o.name)), bindings: launchBindings(model, kernel, scratch) };
  });
  const stepKernel = c.kernels[c.kernels.length - 1];
  launches.push({
    name: stepKernel.name,
    shader: stepKernel.name,
    entry: "main",
    overrides,
    workgroups: "$WGS",
    sharedBytes: "$SHARED_BYTES",
    threads: "$WG",
    bindings: launchBindings(model, stepKernel, scratch),
    steps: { count: "T", binding: stepKernel.stepUniform! },
  });
  // cost: per step a launch, then (rounds of) the contraction's multiply-adds per thread; the hoisted product at a nominal rate
  const perStep = sumS(rec.map((r) => ["*", ["ceilDiv", ["*", "$JB", productS((step.slots.get(recurrentName(r.id)) as Extract<Slot, { kind: "shared" | "global" }>).local), "$NBT"], "$WG"], ["*", "$KC", ["ceilDiv", mExt(r), "$KC"]], TB] as SizeExpr));
  const hoistFlops = sumS(c.hoistFlops);
  const recFlops = sumS(rec.map((r) => ["*", 2, "B", "T", "$P", productS((step.slots.get(recurrentName(r.id)) as Extract<Slot, { kind: "shared" | "global" }>).local), mExt(r)] as SizeExpr));
  return {
    form: "sequential",
    variant: "grid",
    // the hoisted terms in blocks of $TC steps (the binding limit need only hold one step's)
    applicable: ["*", [">=", "LIMIT_SHARED", "$SHARED_BYTES"], [">=", "LIMIT_BINDING", mulS(4, "B", layout.widthS)]],
    vars,
    ...(c.plan!.hoisting.lets.length ? { blockSteps: "$TC" } : {}),
    scratch: [{ name: PINGPONG, floats: mulS(2, "B", stateFloats) }, ...(c.plan!.hoisting.lets.length ? [{ name: HOISTED, floats: mulS("B", "$TC", layout.widthS) }] : [])],
    kernels: launches,
    cost: {
      bytes: sumS([trafficBytes(model), mulS(8, "B", "T", layout.widthS)]),
      // the hoisted product at ~10 TFLOP/s (run 5: 7.4 at H=256, 15 at H=1024), in units of serial work
      serialSteps: sumS([mulS("T", perStep), ["/", hoistFlops, Math.round(1e4 * GRID_COST_NS.work)]]),
      syncs: "T",
      syncNs: GRID_COST_NS.launch,
      workNs: GRID_COST_NS.work,
      threads: ["*", "$WGS", "$WG"],
      flops: sumS([hoistFlops, recFlops]),
    },
  };
}

const pick = (o: Record<string, SizeExpr>, names: string[]) => Object.fromEntries(Object.entries(o).filter(([k]) => names.includes(k)));
