/**
 * Sequential form, `stream` variant: one dispatch runs the whole time loop, one workgroup per BB
 * batch rows (batch rows are independent, so no workgroup waits for another). For the cells the grid
 * variant serves (LSTM, GRU, sLSTM: recurrent contractions `sum(m) U[.., m] * h[m]` of a param with a
 * previous state), where the grid variant pays a dispatch per step.
 *
 *  1. hoist (hoist.ts): the state-independent, input-dependent let terms (`W x + b`) for all (b, t)
 *     of a block of TC steps (as many as the binding limit holds, all T where they fit), the grid
 *     variant's kernels; steps 1 and 4 run block after block, the main kernel once per block over
 *     its steps, the states carried from block to block through STATES;
 *  2. pack: each recurrent param is written once per forward, transposed, to a scratch buffer
 *     WT[m][row] (row = unit x local index, the grid's row order), so that in the loop consecutive
 *     threads read consecutive addresses;
 *  3. init: the initial states to the ping-pong buffer (the grid's kernel);
 *  4. main, one dispatch: the workgroup's initial states into workgroup memory (a ping-pong pair of
 *     halves there: its batch rows' states are written and read by it alone), then for t in 0..T: the
 *     hoisted terms of step t are loaded into registers (prefetch: their latency overlaps the
 *     contraction), each thread computes quads of 4 consecutive contraction rows x BB batch rows from
 *     the packed param with one 16-byte load (vec4) per depth m (U-deep unrolled: U loads in flight per
 *     thread, the param streamed from L2 every step), the prefetched terms go to workgroup memory, the
 *     rest of the step runs with the model's own statements (the grid variant's step lowering with
 *     JB = all units) reading previous states and hoisted terms from workgroup memory, and the new
 *     states go to the other half (the final states to STATES after the last step).
 *
 * The packed layout for vec4 loads: per contraction [M][NQ][4] with NQ = ceil(rows / 4) quads, the
 * padding rows zero. Options (tuning runs, variant `stream-<tag>`): `scalar` (one 4-byte load per row
 * and depth, rows lid + k * WG: the run-6 kernel), `global` (states through the global ping-pong
 * buffer with a storage barrier per step), `noprefetch`, the unroll depth.
 *
 * The cost of a step is the param bytes one workgroup streams (per step and workgroup the whole
 * recurrent matrix) at the L2-to-multiprocessor rate, plus a fixed part (barriers, the dependent
 * loads of the hoisted terms): good where the recurrent matrix is small (H=256: 1 MB per step) and the
 * per-step dispatch of the grid variant dominates; the grid variant wins where the matrix is large.
 *
 * Passes: hoist+contractions -> partition -> slots -> main -> kernels -> plan.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import type { Partition } from "./partition.ts";
import { runPasses, type Pass, type PassTrace } from "./passes.ts";
import { ELEM_B, type Slot } from "./step.ts";
import { lowerExpr } from "./lower-expr.ts";
import { extentK, flatIndex, maxS, mulS, productK, productS, sumS } from "./symbolic.ts";
import { STATES, stateOffset, uniformFields } from "./interface.ts";
import { buildKernel, launchBindings, modelBindings, modelOverrides, trafficBytes, type LoweredForm } from "./sequential.ts";
import { hoistBlockVars, hoistedRow, hoistLayout, HOISTED, pushHoistKernels } from "./hoist.ts";
import { analysisPasses, bindUnit, cellAndStates, globalStorage, GridStep, kernelParts, PINGPONG, pushInitKernel, recurrentName, type GridEligibility, type Recurrent, type StepStorage } from "./step-grid.ts";
import type { FormPlan, KernelLaunch, SizeExpr } from "../../runtime/plan.ts";

/** The packed (transposed) recurrent params: per contraction r, [M][P * L] at its offset. */
export const PACKED = "wpacked";
/** Contraction rows a thread computes at once (a quad: one vec4 per depth), most batch rows per workgroup. */
const RT = 4;
/** Default unroll depth (the loads of one unrolled slice are in flight together; 16 vec4s per thread: run 8, 28.9 ms vs 30.8 at 8). */
export const STREAM_UNROLL = 16;
const NB = 2;
/** Hoisted terms per thread and step prefetched into registers (more are copied after the contraction). */
const PF = 4;
/** Workgroup array of the state ping-pong pair, and of the hoisted terms of the step. */
const SPP = "spp";
const SHOIST = "s_hoist";

export interface StreamOptions {
  /** Contraction depth per unrolled slice. */
  unroll: number;
  /** 16-byte loads of 4 rows at once (false: one 4-byte load per row, the run-6 kernel). */
  vec4: boolean;
  /** States in workgroup memory (false: the global ping-pong buffer and a storage barrier per step). */
  sharedStates: boolean;
  /** Hoisted terms loaded into registers before the contraction. */
  prefetch: boolean;
}
export const STREAM_DEFAULTS: StreamOptions = { unroll: STREAM_UNROLL, vec4: true, sharedStates: true, prefetch: true };
/**
 * Latency model (ns), fitted on the H100 (bench/RESULTS.md, run 8, vec4 loads, states in workgroup
 * memory: lstm H=256 11.8 us per step, gru H=256 10.4, lstm H=128 5.3): a step's fixed cost (barriers,
 * the cell's statements) and one param float streamed per workgroup (~110 GB/s from L2 into one
 * multiprocessor with 16-byte loads). Multiprocessors of the nominal device (workgroups beyond them
 * share one's L2 bandwidth).
 */
export const STREAM_COST_NS = { step: 2800, float: 0.035 };
const NOMINAL_SMS = 132;

interface StreamCtx {
  model: I.Model;
  opts: StreamOptions;
  plan?: Extract<GridEligibility, { ok: true }>;
  partition?: Partition;
  step?: GridStep;
  body?: K.KStmt[];
  kernels: K.Kernel[];
  launches: KernelLaunch[];
  hoistFlops: SizeExpr[];
  form?: FormPlan;
}

/** `stream`, or `stream-<tags>` naming the options that differ from the defaults (tuning runs). */
export function streamVariantName(o: StreamOptions): string {
  const tags: string[] = [];
  if (!o.vec4) tags.push("scalar");
  if (!o.sharedStates) tags.push("global");
  if (!o.prefetch) tags.push("noprefetch");
  if (o.unroll !== STREAM_UNROLL) tags.push(`u${o.unroll}`);
  return tags.length ? `stream-${tags.join("-")}` : "stream";
}
const variantName = (c: StreamCtx) => streamVariantName(c.opts);
const hasHoisted = (c: StreamCtx) => c.plan!.hoisting.lets.length > 0;
const prefetching = (c: StreamCtx) => c.opts.prefetch && hasHoisted(c);
type SharedSlot = Extract<Slot, { kind: "shared" | "global" }>;
const slotOf = (c: StreamCtx, r: Recurrent) => c.step!.slots.get(recurrentName(r.id)) as SharedSlot;
/** Workgroup array holding the previous state of contraction r for the BB batch rows. */
const stagedName = (r: Recurrent) => `ss_${r.id}`;
const scratchNames = (c: StreamCtx) => [PINGPONG, PACKED, ...(c.plan!.hoisting.lets.length ? [HOISTED] : [])];

/** Contraction rows (units x local elements) of r. */
const rowsK = (c: StreamCtx, r: Recurrent) => K.mul(K.ref("P"), productK(slotOf(c, r).local));
/** Packed rows per depth: the rows, rounded up to whole quads for vec4 loads. */
const packedRowsK = (c: StreamCtx, r: Recurrent) => (c.opts.vec4 ? K.mul(K.u32(RT), K.bin("/", K.add(rowsK(c, r), K.u32(RT - 1)), K.u32(RT))) : rowsK(c, r));

/** packedRowsK as a size expression, with P given. */
const packedRowsS = (c: StreamCtx, r: Recurrent, P: SizeExpr): SizeExpr => {
  const rows = mulS(P, productS(slotOf(c, r).local));
  return c.opts.vec4 ? ["*", RT, ["ceilDiv", rows, RT]] : rows;
};

/** Offsets (floats) of each contraction's packed param in PACKED (kernel expressions; multiples of 4 with vec4). */
function packedOffsets(c: StreamCtx): K.KExpr[] {
  let acc: K.KExpr = K.u32(0);
  return c.plan!.recurrent.map((r) => {
    const o = acc;
    acc = K.add(acc, K.mul(packedRowsK(c, r), extentK(r.m.extent)));
    return o;
  });
}

/** Floats of all states of one batch row, and each state's offset in a half of the workgroup ping-pong pair ([state][BB][shape]). */
function stateLayout(model: I.Model): { srow: K.KExpr; offset: Map<string, K.KExpr> } {
  let acc: K.KExpr = K.u32(0);
  const offset = new Map<string, K.KExpr>();
  for (const t of I.tensorsOfKind(model, "state")) {
    offset.set(t.name, K.mul(K.ref("BB"), acc));
    acc = K.add(acc, productK(t.shape));
  }
  return { srow: acc, offset };
}

/** Batch row b of this workgroup, local index (0..BB). */
const localRow = (b: K.KExpr) => K.bin("-", b, K.mul(K.ref("wg"), K.ref("BB")));

/** The stream variant's storage: states in the workgroup ping-pong pair, hoisted terms in SHOIST (prefetched). */
function streamStorage(c: StreamCtx): StepStorage {
  const model = c.plan!.model;
  const { offset } = stateLayout(model);
  const width = hoistLayout(c.plan!.hoisting).width;
  const global = globalStorage(width);
  const at = (base: string, t: I.TensorDecl, b: K.KExpr, idx: K.KExpr[]) => K.add(K.add(K.ref(base), offset.get(t.name)!), K.add(K.mul(localRow(b), productK(t.shape)), flatIndex(idx, t.shape)));
  return {
    prevState: c.opts.sharedStates ? (t, b, idx) => K.load(SPP, at("prevBase", t, b, idx)) : global.prevState,
    writeState: c.opts.sharedStates
      ? (t, b, idx, value, fresh) => {
          const val = fresh("sv");
          return [
            K.decl(val, "f32", value),
            K.store(SPP, at("nextBase", t, b, idx), K.ref(val, "f32")),
            // after the block's last step (the next block starts from these; the final states after step T - 1)
            K.ifThen(K.bin("==", K.add(K.ref("t"), K.u32(1)), K.ref(K.BLOCK_T1)), [K.store(STATES, GridStep.stateAddr(t, b, idx), K.ref(val, "f32"))]),
          ];
        }
      : global.writeState,
    hoisted: prefetching(c) ? (a) => K.load(SHOIST, K.add(K.mul(localRow(K.ref(ELEM_B)), width), a)) : global.hoisted,
  };
}

const passes: Pass<StreamCtx>[] = [
  ...analysisPasses<StreamCtx>("stream"),
  {
    name: "slots",
    run: (c) => {
      // element g of the workgroup: batch row wg * BB + g / JB, unit g % JB (JB = P: every unit)
      c.step = new GridStep(
        c.plan!,
        {
        model: c.plan!.model,
        partition: c.partition!,
        variant: "workgroup",
        owner: K.ref("g"),
        columns: K.ref("G"),
        t: K.ref("t"),
        element: (g) => ({
          prelude: c.step!.decodeElement(K.add(K.mul(K.ref("wg"), K.ref("BB")), K.bin("/", g, K.ref("JB"))), K.bin("%", g, K.ref("JB"))),
          valid: K.bin("&&", K.bin("<", K.ref(ELEM_B), K.uni("B")), K.bin("<", K.ref("e_p"), K.ref("P"))),
        }),
        },
        streamStorage(c),
      );
      c.step.assignSlots(false);
      for (const r of c.plan!.recurrent) {
        const localAxes = r.vars.map((_, a) => a).filter((a) => !c.partition!.classOf(r.target, a));
        c.step.slots.set(recurrentName(r.id), { kind: "shared", array: `s_R${r.id}`, local: localAxes.map((a) => r.vars[a].extent), localAxes });
      }
    },
  },
  { name: "main", run: (c) => (c.body = mainBody(c)) },
  { name: "kernels", run: (c) => buildKernels(c) },
  { name: "plan", run: (c) => (c.form = streamPlan(c)) },
];

/** Options other than the defaults name the variant `stream-<tags>` (tuning runs). */
export function lowerStepStream(model: I.Model, options: Partial<StreamOptions> = {}): LoweredForm {
  const trace: PassTrace[] = [];
  const opts = { ...STREAM_DEFAULTS, ...options };
  const c = runPasses<StreamCtx>({ model, opts, kernels: [], launches: [], hoistFlops: [] }, passes, trace);
  return { plan: c.form!, kernels: c.kernels, trace };
}

/** The previous state read by contraction r, for the workgroup's BB batch rows, into workgroup memory. */
function stageState(c: StreamCtx, r: Recurrent): K.KStmt[] {
  const st = I.findTensor(c.model, r.state.tensor)!;
  const SF = productK(st.shape);
  const body: K.KStmt[] = [
    K.decl("sb", "u32", K.bin("/", K.ref("y"), SF)),
    K.decl("sf", "u32", K.bin("%", K.ref("y"), SF)),
    K.decl("svb", "u32", K.add(K.mul(K.ref("wg"), K.ref("BB")), K.ref("sb"))),
    K.decl("sv", "f32", K.f32(0), true),
    K.ifThen(K.bin("<", K.ref("svb"), K.uni("B")), [K.set("sv", K.load(PINGPONG, K.add(K.add(K.ref("prevBase"), K.uni(stateOffset(st.name))), K.add(K.mul(K.ref("svb"), SF), K.ref("sf")))))]),
    K.store(stagedName(r), K.ref("y"), K.ref("sv", "f32")),
  ];
  return [K.forLoop("y", K.ref("lid"), K.mul(K.ref("BB"), SF), body, K.ref("WG"))];
}

/**
 * Contraction r for the workgroup's batch rows into its slot: thread lid takes rows lid + k * WG
 * (k < RT) of the P * L rows, all BB batch rows; the packed param is read at [m][row] (consecutive
 * threads, consecutive addresses), the previous state from workgroup memory (one address per warp).
 */
function contractionScalar(c: StreamCtx, r: Recurrent, offset: K.KExpr): K.KStmt[] {
  const step = c.step!;
  const slot = slotOf(c, r);
  const L = productK(slot.local);
  const st = I.findTensor(c.model, r.state.tensor)!;
  const M = extentK(r.m.extent);
  const NR = K.mul(K.ref("P"), L);
  const U = c.opts.unroll;
  const out: K.KStmt[] = [{ k: "comment", text: `contraction ${r.param.tensor} x ${r.state.tensor} (step t-1) for ${r.target}: ${RT} rows x ${NB} batch rows per thread` }];
  const acc = (k: number, i: number) => `acc_${k}_${i}`;
  const rows: K.KStmt[] = [];
  /** Address in the staged state of element m for row k (batch row 0). */
  const stateAt: ((m: K.KExpr) => K.KExpr)[] = [];
  for (let k = 0; k < RT; k++) {
    rows.push(K.decl(`rw_${k}`, "u32", K.add(K.ref("rw0"), K.mul(K.u32(k), K.ref("WG")))));
    rows.push(K.decl(`rc_${k}`, "u32", K.bin("min", K.ref(`rw_${k}`), K.bin("-", NR, K.u32(1)), "u32")));
    let vars = new Map<number, K.KExpr>();
    if (r.perUnit) vars = bindUnit(step, c.partition!, r.target, r.vars, K.bin("/", K.ref(`rc_${k}`), L), K.u32(0), `w${k}`, rows);
    const v = vars;
    stateAt.push((m) => flatIndex(r.state.idx.map((ix) => (ix.kind === "lit" ? K.u32(ix.value) : ix.v.id === r.m.id ? m : v.get(ix.v.id)!)), st.shape));
    for (let i = 0; i < NB; i++) rows.push(K.decl(acc(k, i), "f32", K.f32(0), true));
  }
  /** The FMAs of depth m (expression) given the loaded param values w(k). */
  const fmas = (m: K.KExpr, w: (k: number) => K.KExpr): K.KStmt[] => {
    const s: K.KStmt[] = [];
    for (let i = 0; i < NB; i++) {
      const inner: K.KStmt[] = [];
      for (let k = 0; k < RT; k++) {
        const h = stateVector(c, r)(i, stateAt[k](m));
        inner.push(K.set(acc(k, i), K.bin("+", K.ref(acc(k, i), "f32"), K.bin("*", w(k), h, "f32"), "f32")));
      }
      // BB is an override: the branch folds away when the pipeline is made
      s.push(...(i === 0 ? inner : [K.ifThen(K.bin("<", K.u32(i), K.ref("BB")), inner)]));
    }
    return s;
  };
  const packed = (m: K.KExpr, k: number) => K.load(PACKED, K.add(K.add(offset, K.mul(m, NR)), K.ref(`rc_${k}`)));
  // U-deep unrolled: every load of the slice issued before its multiply-adds
  const unrolled: K.KStmt[] = [];
  for (let u = 0; u < U; u++) for (let k = 0; k < RT; k++) unrolled.push(K.decl(`w_${k}_${u}`, "f32", packed(K.add(K.ref("m0"), K.u32(u)), k)));
  for (let u = 0; u < U; u++) unrolled.push(...fmas(K.add(K.ref("m0"), K.u32(u)), (k) => K.ref(`w_${k}_${u}`, "f32")));
  rows.push(K.decl("MU", "u32", K.bin("-", M, K.bin("%", M, K.u32(U)))));
  rows.push(K.forLoop("m0", K.u32(0), K.ref("MU"), unrolled, K.u32(U)));
  const tail: K.KStmt[] = [];
  for (let k = 0; k < RT; k++) tail.push(K.decl(`wt_${k}`, "f32", packed(K.ref("mt"), k)));
  tail.push(...fmas(K.ref("mt"), (k) => K.ref(`wt_${k}`, "f32")));
  rows.push(K.forLoop("mt", K.ref("MU"), M, tail));
  rows.push(...storeResults(slot.array, L, NR));
  out.push(K.forLoop("rw0", K.ref("lid"), NR, rows, K.mul(K.u32(RT), K.ref("WG"))));
  return out;
}

/** A contraction's results (accumulators acc_k_i): row rw_k (unit ju, local lr) of batch row i -> slot[lr][i * JB + ju]. */
function storeResults(slot: string, L: K.KExpr, NR: K.KExpr): K.KStmt[] {
  const out: K.KStmt[] = [];
  for (let k = 0; k < RT; k++) {
    const st: K.KStmt[] = [K.decl(`ju_${k}`, "u32", K.bin("/", K.ref(`rw_${k}`), L)), K.decl(`lr_${k}`, "u32", K.bin("%", K.ref(`rw_${k}`), L))];
    for (let i = 0; i < NB; i++) {
      const s = K.store(slot, K.add(K.mul(K.ref(`lr_${k}`), K.ref("G")), K.add(K.mul(K.u32(i), K.ref("JB")), K.ref(`ju_${k}`))), K.ref(`acc_${k}_${i}`, "f32"));
      st.push(i === 0 ? s : K.ifThen(K.bin("<", K.u32(i), K.ref("BB")), [s]));
    }
    out.push(K.ifThen(K.bin("<", K.ref(`rw_${k}`), NR), st));
  }
  return out;
}

/** Element `flat` of batch row i (local) of the previous state read by contraction r: staged copy or the workgroup ping-pong half. */
function stateVector(c: StreamCtx, r: Recurrent): (i: number, flat: K.KExpr) => K.KExpr {
  const st = I.findTensor(c.model, r.state.tensor)!;
  const SF = productK(st.shape);
  if (!c.opts.sharedStates) return (i, flat) => K.load(stagedName(r), K.add(K.mul(K.u32(i), SF), flat));
  const base = K.add(K.ref("prevBase"), stateLayout(c.plan!.model).offset.get(st.name)!);
  return (i, flat) => K.load(SPP, K.add(base, K.add(K.mul(K.u32(i), SF), flat)));
}

/**
 * Contraction r with 16-byte loads: thread lid takes quads q = lid + j * WG of the rows (rows 4q..4q+3,
 * all BB batch rows); per depth m one vec4 of the packed param PACKED[m][q] holds the 4 rows' values
 * (consecutive threads, consecutive 16 bytes); the previous state from workgroup memory (one address
 * per warp when the vector does not depend on the row's unit).
 */
function contractionVec4(c: StreamCtx, r: Recurrent, offset: K.KExpr): K.KStmt[] {
  const step = c.step!;
  const slot = slotOf(c, r);
  const L = productK(slot.local);
  const st = I.findTensor(c.model, r.state.tensor)!;
  const M = extentK(r.m.extent);
  const NR = rowsK(c, r);
  const NQ = K.bin("/", packedRowsK(c, r), K.u32(RT));
  const U = c.opts.unroll;
  const hAt = stateVector(c, r);
  const out: K.KStmt[] = [{ k: "comment", text: `contraction ${r.param.tensor} x ${r.state.tensor} (step t-1) for ${r.target}: quads of ${RT} rows (one vec4 per depth) x ${NB} batch rows per thread` }];
  const acc = (k: number, i: number) => `acc_${k}_${i}`;
  const rows: K.KStmt[] = [];
  const stateAt: ((m: K.KExpr) => K.KExpr)[] = [];
  for (let k = 0; k < RT; k++) {
    rows.push(K.decl(`rw_${k}`, "u32", K.add(K.mul(K.ref("q"), K.u32(RT)), K.u32(k))));
    let vars = new Map<number, K.KExpr>();
    if (r.perUnit) {
      // padding rows (weight zero) read the last row's vector
      rows.push(K.decl(`rc_${k}`, "u32", K.bin("min", K.ref(`rw_${k}`), K.bin("-", NR, K.u32(1)), "u32")));
      vars = bindUnit(step, c.partition!, r.target, r.vars, K.bin("/", K.ref(`rc_${k}`), L), K.u32(0), `w${k}`, rows);
    }
    const v = vars;
    stateAt.push((m) => flatIndex(r.state.idx.map((ix) => (ix.kind === "lit" ? K.u32(ix.value) : ix.v.id === r.m.id ? m : v.get(ix.v.id)!)), st.shape));
    for (let i = 0; i < NB; i++) rows.push(K.decl(acc(k, i), "f32", K.f32(0), true));
  }
  const fmas = (m: K.KExpr, w: K.KExpr): K.KStmt[] => {
    const s: K.KStmt[] = [];
    for (let i = 0; i < NB; i++) {
      const inner: K.KStmt[] = [];
      for (let k = 0; k < RT; k++) inner.push(K.set(acc(k, i), K.bin("+", K.ref(acc(k, i), "f32"), K.bin("*", K.lane(w, k), hAt(i, stateAt[k](m)), "f32"), "f32")));
      // BB is an override: the branch folds away when the pipeline is made
      s.push(...(i === 0 ? inner : [K.ifThen(K.bin("<", K.u32(i), K.ref("BB")), inner)]));
    }
    return s;
  };
  const packed = (m: K.KExpr) => K.load4(PACKED, K.add(K.add(K.bin("/", offset, K.u32(RT)), K.mul(m, NQ)), K.ref("q")));
  const unrolled: K.KStmt[] = [];
  for (let u = 0; u < U; u++) unrolled.push(K.decl(`w_${u}`, "vec4f", packed(K.add(K.ref("m0"), K.u32(u)))));
  for (let u = 0; u < U; u++) unrolled.push(...fmas(K.add(K.ref("m0"), K.u32(u)), K.ref(`w_${u}`, "vec4f")));
  rows.push(K.decl("MU", "u32", K.bin("-", M, K.bin("%", M, K.u32(U)))));
  rows.push(K.forLoop("m0", K.u32(0), K.ref("MU"), unrolled, K.u32(U)));
  rows.push(K.forLoop("mt", K.ref("MU"), M, [K.decl("wt", "vec4f", packed(K.ref("mt"))), ...fmas(K.ref("mt"), K.ref("wt", "vec4f"))]));
  rows.push(...storeResults(slot.array, L, NR));
  out.push(K.forLoop("q", K.ref("lid"), NQ, rows, K.ref("WG")));
  return out;
}

/** Hoisted terms of step t for the workgroup's batch rows: element y of [BB][width] at HOISTED[(b * TC + t - t0) * width + y % width]. */
function hoistedAt(c: StreamCtx, y: K.KExpr, out: K.KStmt[], tag: string): K.KExpr {
  const width = hoistLayout(c.plan!.hoisting).width;
  out.push(K.decl(`hb${tag}`, "u32", K.add(K.mul(K.ref("wg"), K.ref("BB")), K.bin("/", y, width))));
  return K.load(HOISTED, K.add(K.mul(hoistedRow(K.ref(`hb${tag}`), K.ref("t")), width), K.bin("%", y, width)));
}

/** Prefetch: PF hoisted terms per thread into registers (issued before the contraction, stored after it). */
function prefetchLoads(c: StreamCtx): K.KStmt[] {
  const NH = K.mul(K.ref("BB"), hoistLayout(c.plan!.hoisting).width);
  const out: K.KStmt[] = [];
  for (let j = 0; j < PF; j++) {
    const y = `py_${j}`;
    out.push(K.decl(y, "u32", K.add(K.ref("lid"), K.mul(K.u32(j), K.ref("WG")))), K.decl(`pv_${j}`, "f32", K.f32(0), true));
    const pre: K.KStmt[] = [];
    const v = hoistedAt(c, K.ref(y), pre, `${j}`);
    out.push(K.ifThen(K.bin("<", K.ref(y), NH), [...pre, K.ifThen(K.bin("<", K.ref(`hb${j}`), K.uni("B")), [K.set(`pv_${j}`, v)])]));
  }
  return out;
}

function prefetchStores(c: StreamCtx): K.KStmt[] {
  const NH = K.mul(K.ref("BB"), hoistLayout(c.plan!.hoisting).width);
  const out: K.KStmt[] = [];
  for (let j = 0; j < PF; j++) out.push(K.ifThen(K.bin("<", K.ref(`py_${j}`), NH), [K.store(SHOIST, K.ref(`py_${j}`), K.ref(`pv_${j}`, "f32"))]));
  // terms beyond PF per thread: loaded and stored here
  const pre: K.KStmt[] = [];
  const v = hoistedAt(c, K.ref("y"), pre, "r");
  out.push(K.forLoop("y", K.add(K.ref("lid"), K.mul(K.u32(PF), K.ref("WG"))), NH, [K.decl("hv", "f32", K.f32(0), true), ...pre, K.ifThen(K.bin("<", K.ref("hbr"), K.uni("B")), [K.set("hv", v)]), K.store(SHOIST, K.ref("y"), K.ref("hv", "f32"))], K.ref("WG")));
  return out;
}

/**
 * Before the block's time loop: the workgroup's states (the init kernel's ping-pong half before the
 * first block, the previous block's last states in STATES after it) into the workgroup half that
 * step t0 reads.
 */
function loadInitialStates(c: StreamCtx): K.KStmt[] {
  const model = c.plan!.model;
  const { srow, offset } = stateLayout(model);
  const out: K.KStmt[] = [K.decl("ibase", "u32", K.mul(K.bin("%", K.ref(K.BLOCK_T0), K.u32(2)), K.mul(K.ref("BB"), srow)))];
  for (const t of I.tensorsOfKind(model, "state")) {
    const SF = productK(t.shape);
    out.push(
      K.forLoop("y", K.ref("lid"), K.mul(K.ref("BB"), SF), [
        K.decl("ib", "u32", K.add(K.mul(K.ref("wg"), K.ref("BB")), K.bin("/", K.ref("y"), SF))),
        K.decl("iv", "f32", K.f32(0), true),
        K.ifThen(K.bin("<", K.ref("ib"), K.uni("B")), [
          K.decl("ia", "u32", K.add(K.add(K.uni(stateOffset(t.name)), K.mul(K.ref("ib"), SF)), K.bin("%", K.ref("y"), SF))),
          K.ifThen(K.bin("==", K.ref(K.BLOCK_T0), K.u32(0)), [K.set("iv", K.load(PINGPONG, K.ref("ia")))], [K.set("iv", K.load(STATES, K.ref("ia")))]),
        ]),
        K.store(SPP, K.add(K.ref("ibase"), K.add(offset.get(t.name)!, K.ref("y"))), K.ref("iv", "f32")),
      ], K.ref("WG")),
    );
  }
  out.push({ k: "barrier" });
  return out;
}

function mainBody(c: StreamCtx): K.KStmt[] {
  const step = c.step!;
  const model = c.plan!.model;
  const states = I.tensorsOfKind(model, "state");
  const srow = states.reduce<K.KExpr>((acc, t) => K.add(acc, productK(t.shape)), K.u32(0));
  const offsets = packedOffsets(c);
  const shared = c.opts.sharedStates;
  // a half of the ping-pong pair: all states of the batch (global) or of the workgroup's BB rows (workgroup memory)
  const half = shared ? K.mul(K.ref("BB"), stateLayout(model).srow) : K.ref("STOT");
  const loop: K.KStmt[] = [
    K.decl("prevBase", "u32", K.mul(K.bin("%", K.ref("t"), K.u32(2)), half)),
    K.decl("nextBase", "u32", K.bin("-", half, K.ref("prevBase"))),
  ];
  if (prefetching(c)) loop.push(...prefetchLoads(c));
  if (!shared) {
    for (const r of c.plan!.recurrent) loop.push(...stageState(c, r));
    loop.push({ k: "barrier" });
  }
  for (const r of c.plan!.recurrent) loop.push(...(c.opts.vec4 ? contractionVec4 : contractionScalar)(c, r, offsets[r.id]));
  if (prefetching(c)) loop.push(...prefetchStores(c));
  loop.push({ k: "barrier" });
  loop.push(...cellAndStates(model, step as GridStep));
  // the next step reads these states (written by other invocations of this workgroup): from
  // workgroup memory, or from storage (a storage barrier)
  loop.push({ k: "barrier", storage: !shared });
  // the steps of this block (the runtime dispatches the kernel once per block)
  return [...(shared ? loadInitialStates(c) : [K.decl("STOT", "u32", K.mul(K.uni("B"), srow))]), K.forLoop("t", K.ref(K.BLOCK_T0), K.ref(K.BLOCK_T1), loop)];
}

/** Kernel writing contraction r's param transposed: PACKED[offset + m * NRP + row] (NRP packed rows per depth, padding rows zero). */
function packBody(c: StreamCtx, r: Recurrent, offset: K.KExpr): K.KStmt[] {
  const L = productK(slotOf(c, r).local);
  const NR = rowsK(c, r);
  const NRP = packedRowsK(c, r);
  const inner: K.KStmt[] = [];
  const vars = bindUnit(c.step!, c.partition!, r.target, r.vars, K.bin("/", K.ref("row"), L), K.bin("%", K.ref("row"), L), "w", inner);
  vars.set(r.m.id, K.ref("m"));
  const v = lowerExpr(r.param, c.step!.scope(vars, () => K.u32(0)), inner);
  inner.push(K.set("pv", v));
  return [
    K.decl("x", "u32", K.add(K.mul(K.ref("wg"), K.u32(256)), K.ref("lid"))),
    K.ifThen(K.bin("<", K.ref("x"), K.mul(NRP, extentK(r.m.extent))), [
      K.decl("row", "u32", K.bin("%", K.ref("x"), NRP)),
      K.decl("m", "u32", K.bin("/", K.ref("x"), NRP)),
      K.decl("pv", "f32", K.f32(0), true),
      ...(c.opts.vec4 ? [K.ifThen(K.bin("<", K.ref("row"), NR), inner)] : inner),
      K.store(PACKED, K.add(offset, K.ref("x")), K.ref("pv", "f32")),
    ]),
  ];
}

function buildKernels(c: StreamCtx): void {
  const model = c.model;
  const scratch = scratchNames(c);
  const { used, baseOverrides } = kernelParts(model, c.partition!, scratch);
  pushHoistKernels(c, c.plan!.hoisting, `${model.name}_${variantName(c)}`, scratch, used, baseOverrides);
  const offsets = packedOffsets(c);
  const base = modelOverrides(model, c.partition!);
  for (const r of c.plan!.recurrent) {
    const body = packBody(c, r, offsets[r.id]);
    const name = `${model.name}_${variantName(c)}_pack_${r.param.tensor}_${r.id}`;
    c.kernels.push({ name, workgroupSize: K.u32(256), buffers: used(body), uniformBinding: 0, uniforms: uniformFields(model), overrides: baseOverrides, shared: [], body, needs: [] });
    const rows = mulS(packedRowsS(c, r, base.P), r.m.extent.kind === "lit" ? r.m.extent.value : r.m.extent.name);
    c.launches.push({ name, shader: name, entry: "main", overrides: {}, workgroups: ["ceilDiv", rows, 256], sharedBytes: 0, threads: 256, bindings: [] });
  }
  pushInitKernel(c, `${model.name}_${variantName(c)}_init`, used, baseOverrides);
  const width = hoistLayout(c.plan!.hoisting).width;
  const k = buildKernel(model, `${model.name}_${variantName(c)}_main`, c.step!, c.body!, {
    scratch,
    overrides: ["JB", "BB"],
    shared: [
      ...(c.opts.sharedStates
        ? [{ name: SPP, length: K.mul(K.u32(2), K.mul(K.ref("BB"), stateLayout(c.plan!.model).srow)) }]
        : c.plan!.recurrent.map((r) => ({ name: stagedName(r), length: K.mul(K.ref("BB"), productK(I.findTensor(model, r.state.tensor)!.shape)) }))),
      ...(prefetching(c) ? [{ name: SHOIST, length: K.mul(K.ref("BB"), width) }] : []),
    ],
  });
  k.buffers = used(c.body!);
  k.stepUniform = modelBindings(model, scratch).bindings.length;
  c.kernels.push(k);
}

function streamPlan(c: StreamCtx): FormPlan {
  const model = c.model;
  const step = c.step!;
  const scratch = scratchNames(c);
  const rec = c.plan!.recurrent;
  const base = modelOverrides(model, c.partition!);
  const mExt = (r: Recurrent): SizeExpr => (r.m.extent.kind === "lit" ? r.m.extent.value : r.m.extent.name);
  const rowsOf = (r: Recurrent): SizeExpr => packedRowsS(c, r, "$P");
  const packedFloats = sumS(rec.map((r) => mulS(rowsOf(r), mExt(r))));
  const stagedFloats = sumS(rec.map((r) => productS(I.findTensor(model, r.state.tensor)!.shape)));
  const stateFloats = sumS(I.tensorsOfKind(model, "state").map((t) => productS(t.shape)));
  const layout = hoistLayout(c.plan!.hoisting);
  const perElem = mulS(4, sumS(step.sharedArrays().map((a) => productS(a.local))));
  // workgroup memory per batch row: the slots, then the state ping-pong pair (or the staged vectors), the prefetched hoisted terms
  const perRowExtra = sumS([c.opts.sharedStates ? mulS(2, stateFloats) : stagedFloats, prefetching(c) ? layout.widthS : 0]);
  const vars: [string, SizeExpr][] = [
    ["$P", base.P],
    ["$NR", maxS(rec.map(rowsOf))],
    ["$SHARED_PER_ELEM", perElem],
    ["$ROW_BYTES", ["+", ["*", "$P", "$SHARED_PER_ELEM"], mulS(4, perRowExtra)]],
    // batch rows per workgroup: one while the batch fits the multiprocessors, up to NB beyond (as workgroup memory allows)
    ["$BB", ["min", NB, ["max", 1, ["ceilDiv", "B", NOMINAL_SMS]], ["max", 1, ["/", "LIMIT_SHARED", "$ROW_BYTES"]]]],
    ["$G", ["*", "$BB", "$P"]],
    ["$WG", ["max", 32, ["min", 256, ["pow2ceil", ["ceilDiv", "$NR", RT]]]]],
    ["$SHARED_BYTES", ["*", "$BB", "$ROW_BYTES"]],
    ["$WGS", ["ceilDiv", "B", "$BB"]],
    ...hoistBlockVars(layout.widthS),
    ["$PACKED_FLOATS", packedFloats],
  ];
  const overrides: Record<string, SizeExpr> = { ...base, G: "$G", WG: "$WG", JB: "$P", BB: "$BB" };
  const launches: KernelLaunch[] = c.launches.map((l) => {
    const kernel = c.kernels.find((k) => k.name === l.name)!;
    // a kernel that reads no uniform (the pack kernel) has no uniform binding in its layout
    let readsUniform = false;
    K.walkKStmts(kernel.body, (s) => K.stmtExprs(s).forEach((e) => K.walkKExpr(e, (x) => void (x.k === "uniform" && (readsUniform = true)))));
    const bindings = launchBindings(model, kernel, scratch).filter((b) => readsUniform || b.access !== "uniform");
    return { ...l, overrides: Object.fromEntries(Object.entries(base).filter(([n]) => kernel.overrides.some((o) => o.name === n))), bindings };
  });
  const main = c.kernels[c.kernels.length - 1];
  launches.push({ name: main.name, shader: main.name, entry: "main", overrides, workgroups: "$WGS", sharedBytes: "$SHARED_BYTES", threads: "$WG", bindings: launchBindings(model, main, scratch), block: { binding: main.stepUniform! } });
  const hoistFlops = sumS(c.hoistFlops);
  const recFlops = sumS(rec.map((r) => mulS(2, "B", "T", "$P", productS(slotOf(c, r).local), mExt(r))));
  return {
    form: "sequential",
    variant: variantName(c),
    // the hoisted terms in blocks of $TC steps, one dispatch of the main kernel per block (the binding limit need only hold one step's)
    applicable: ["*", [">=", "LIMIT_SHARED", "$SHARED_BYTES"], [">=", "LIMIT_BINDING", mulS(4, "B", layout.widthS)], [">=", "LIMIT_BINDING", ["*", 4, "$PACKED_FLOATS"]]],
    vars,
    ...(c.plan!.hoisting.lets.length ? { blockSteps: "$TC" } : {}),
    scratch: [
      // the global ping-pong pair (only the initial states with states in workgroup memory)
      { name: PINGPONG, floats: mulS(c.opts.sharedStates ? 1 : 2, "B", stateFloats) },
      { name: PACKED, floats: "$PACKED_FLOATS" },
      ...(c.plan!.hoisting.lets.length ? [{ name: HOISTED, floats: mulS("B", "$TC", layout.widthS) }] : []),
    ],
    kernels: launches,
    cost: {
      bytes: sumS([trafficBytes(model), mulS(8, "B", "T", layout.widthS)]),
      // per step every workgroup streams the packed params (workgroups beyond the multiprocessors
      // share one's bandwidth); the hoisted product at ~10 TFLOP/s, as in the grid variant
      serialSteps: sumS([mulS("T", "$PACKED_FLOATS", ["ceilDiv", "$WGS", NOMINAL_SMS]), ["/", hoistFlops, Math.round(1e4 * STREAM_COST_NS.float)]]),
      syncs: "T",
      syncNs: STREAM_COST_NS.step,
      workNs: STREAM_COST_NS.float,
      threads: ["*", "$WGS", "$WG"],
      flops: sumS([hoistFlops, recFlops]),
    },
  };
}
