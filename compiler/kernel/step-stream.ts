/**
 * Sequential form, `stream` variant: one dispatch runs the whole time loop, one workgroup per BB
 * batch rows (batch rows are independent, so no workgroup waits for another). For the cells the grid
 * variant serves (LSTM, GRU, sLSTM: recurrent contractions `sum(m) U[.., m] * h[m]` of a param with a
 * previous state), where the grid variant pays a dispatch per step.
 *
 *  1. hoist (hoist.ts): the state-independent, input-dependent let terms (`W x + b`) for all (b, t),
 *     the grid variant's kernels;
 *  2. pack: each recurrent param is written once per forward, transposed, to a scratch buffer
 *     WT[m][row] (row = unit x local index, the grid's row order), so that in the loop consecutive
 *     threads read consecutive addresses;
 *  3. init: the initial states to the ping-pong buffer (the grid's kernel);
 *  4. main, one dispatch: for t in 0..T, the workgroup stages its rows' previous states in workgroup
 *     memory, each thread computes RT contraction rows x BB batch rows at once from the packed param
 *     (U-deep unrolled: RT * U independent coalesced loads in flight per thread, the param streamed
 *     from L2 every step), then the rest of the step runs with the model's own statements (the grid
 *     variant's step lowering with JB = all units), and the new states go to the other half of the
 *     ping-pong buffer, ordered for the next step by a storage barrier.
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
import { stateOffset, uniformFields } from "./interface.ts";
import { buildKernel, launchBindings, modelBindings, modelOverrides, trafficBytes, type LoweredForm } from "./sequential.ts";
import { hoistKernelBody, hoistLayout, HOISTED } from "./hoist.ts";
import { analysisPasses, bindUnit, cellAndStates, GridStep, initBody, PINGPONG, recurrentName, type GridEligibility, type Recurrent } from "./step-grid.ts";
import type { FormPlan, KernelLaunch, SizeExpr } from "../../runtime/plan.ts";

/** The packed (transposed) recurrent params: per contraction r, [M][P * L] at its offset. */
export const PACKED = "wpacked";
/** Contraction rows a thread computes at once, contraction depth unrolled, most batch rows per workgroup. */
const RT = 4;
/** Default unroll depth (the loads of one unrolled slice are in flight together). */
export const STREAM_UNROLL = 8;
const NB = 2;
/**
 * Latency model (ns), fitted on the H100 (bench/RESULTS.md, run 6: lstm H=256 18.2 us per step, H=1024
 * 246 us): a step's fixed cost (barriers, the dependent loads of the hoisted terms and states) and one
 * param float streamed per workgroup (~65 GB/s from L2 into one multiprocessor with 4-byte loads).
 * Multiprocessors of the nominal device (workgroups beyond them share one's L2 bandwidth).
 */
export const STREAM_COST_NS = { step: 1000, float: 0.06 };
const NOMINAL_SMS = 132;

interface StreamCtx {
  model: I.Model;
  unroll: number;
  plan?: Extract<GridEligibility, { ok: true }>;
  partition?: Partition;
  step?: GridStep;
  body?: K.KStmt[];
  kernels: K.Kernel[];
  launches: KernelLaunch[];
  hoistFlops: SizeExpr[];
  form?: FormPlan;
}

const variantName = (c: StreamCtx) => (c.unroll === STREAM_UNROLL ? "stream" : `stream-u${c.unroll}`);
type SharedSlot = Extract<Slot, { kind: "shared" | "global" }>;
const slotOf = (c: StreamCtx, r: Recurrent) => c.step!.slots.get(recurrentName(r.id)) as SharedSlot;
/** Workgroup array holding the previous state of contraction r for the BB batch rows. */
const stagedName = (r: Recurrent) => `ss_${r.id}`;
const scratchNames = (c: StreamCtx) => [PINGPONG, PACKED, ...(c.plan!.hoisting.lets.length ? [HOISTED] : [])];

/** Offsets of each contraction's packed param in PACKED (kernel expressions). */
function packedOffsets(c: StreamCtx): K.KExpr[] {
  let acc: K.KExpr = K.u32(0);
  return c.plan!.recurrent.map((r) => {
    const o = acc;
    acc = K.add(acc, K.mul(K.mul(K.ref("P"), productK(slotOf(c, r).local)), extentK(r.m.extent)));
    return o;
  });
}

const passes: Pass<StreamCtx>[] = [
  ...analysisPasses<StreamCtx>("stream"),
  {
    name: "slots",
    run: (c) => {
      // element g of the workgroup: batch row wg * BB + g / JB, unit g % JB (JB = P: every unit)
      c.step = new GridStep(c.plan!, {
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
      });
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

/** `unroll`: contraction depth per unrolled slice; other than the default it names the variant `stream-u<n>` (tuning runs). */
export function lowerStepStream(model: I.Model, unroll = STREAM_UNROLL): LoweredForm {
  const trace: PassTrace[] = [];
  const c = runPasses<StreamCtx>({ model, unroll, kernels: [], launches: [], hoistFlops: [] }, passes, trace);
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
function contraction(c: StreamCtx, r: Recurrent, offset: K.KExpr): K.KStmt[] {
  const step = c.step!;
  const slot = slotOf(c, r);
  const L = productK(slot.local);
  const st = I.findTensor(c.model, r.state.tensor)!;
  const SF = productK(st.shape);
  const M = extentK(r.m.extent);
  const NR = K.mul(K.ref("P"), L);
  const U = c.unroll;
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
        const h = K.load(stagedName(r), K.add(K.mul(K.u32(i), SF), stateAt[k](m)));
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
  // results: row (unit ju, local lr) of batch row i -> slot[lr][i * JB + ju]
  for (let k = 0; k < RT; k++) {
    const st: K.KStmt[] = [K.decl(`ju_${k}`, "u32", K.bin("/", K.ref(`rw_${k}`), L)), K.decl(`lr_${k}`, "u32", K.bin("%", K.ref(`rw_${k}`), L))];
    for (let i = 0; i < NB; i++) {
      const s = K.store(slot.array, K.add(K.mul(K.ref(`lr_${k}`), K.ref("G")), K.add(K.mul(K.u32(i), K.ref("JB")), K.ref(`ju_${k}`))), K.ref(acc(k, i), "f32"));
      st.push(i === 0 ? s : K.ifThen(K.bin("<", K.u32(i), K.ref("BB")), [s]));
    }
    rows.push(K.ifThen(K.bin("<", K.ref(`rw_${k}`), NR), st));
  }
  out.push(K.forLoop("rw0", K.ref("lid"), NR, rows, K.mul(K.u32(RT), K.ref("WG"))));
  return out;
}

function mainBody(c: StreamCtx): K.KStmt[] {
  const step = c.step!;
  const model = c.plan!.model;
  const states = I.tensorsOfKind(model, "state");
  const srow = states.reduce<K.KExpr>((acc, t) => K.add(acc, productK(t.shape)), K.u32(0));
  const offsets = packedOffsets(c);
  const loop: K.KStmt[] = [
    K.decl("prevBase", "u32", K.mul(K.bin("%", K.ref("t"), K.u32(2)), K.ref("STOT"))),
    K.decl("nextBase", "u32", K.bin("-", K.ref("STOT"), K.ref("prevBase"))),
  ];
  for (const r of c.plan!.recurrent) loop.push(...stageState(c, r));
  loop.push({ k: "barrier" });
  for (const r of c.plan!.recurrent) loop.push(...contraction(c, r, offsets[r.id]));
  loop.push({ k: "barrier" });
  loop.push(...cellAndStates(model, step as GridStep));
  // the next step reads these states (written by other invocations of this workgroup) from storage
  loop.push({ k: "barrier", storage: true });
  return [K.decl("STOT", "u32", K.mul(K.uni("B"), srow)), K.forLoop("t", K.u32(0), K.uni("T"), loop)];
}

/** Kernel writing contraction r's param transposed: PACKED[offset + m * NR + row]. */
function packBody(c: StreamCtx, r: Recurrent, offset: K.KExpr): K.KStmt[] {
  const L = productK(slotOf(c, r).local);
  const NR = K.mul(K.ref("P"), L);
  const inner: K.KStmt[] = [K.decl("row", "u32", K.bin("%", K.ref("x"), NR)), K.decl("m", "u32", K.bin("/", K.ref("x"), NR))];
  const vars = bindUnit(c.step!, c.partition!, r.target, r.vars, K.bin("/", K.ref("row"), L), K.bin("%", K.ref("row"), L), "w", inner);
  vars.set(r.m.id, K.ref("m"));
  const v = lowerExpr(r.param, c.step!.scope(vars, () => K.u32(0)), inner);
  inner.push(K.store(PACKED, K.add(offset, K.ref("x")), v));
  return [
    K.decl("x", "u32", K.add(K.mul(K.ref("wg"), K.u32(256)), K.ref("lid"))),
    K.ifThen(K.bin("<", K.ref("x"), K.mul(NR, extentK(r.m.extent))), inner),
  ];
}

function buildKernels(c: StreamCtx): void {
  const model = c.model;
  const scratch = scratchNames(c);
  const { kernelBuffers } = modelBindings(model, scratch);
  const used = (body: K.KStmt[]) => {
    const u = K.usedArrays(body);
    return kernelBuffers.filter((b) => u.has(b.name));
  };
  const baseOverrides = Object.keys(modelOverrides(model, c.partition!)).map((name) => ({ name }));
  const layout = hoistLayout(c.plan!.hoisting);
  for (const l of c.plan!.hoisting.lets) {
    const h = hoistKernelBody(model, l, layout.width, layout.offset[l.id]);
    const name = `${model.name}_${variantName(c)}_hoist_${l.let}`;
    c.kernels.push({ name, workgroupSize: K.u32(h.threads), buffers: used(h.kernel), uniformBinding: 0, uniforms: uniformFields(model), overrides: baseOverrides, shared: h.shared, body: h.kernel, needs: [] });
    c.launches.push({ name, shader: name, entry: "main", overrides: {}, workgroups: h.workgroups, sharedBytes: h.sharedBytes, threads: h.threads, bindings: [] });
    c.hoistFlops.push(h.flops);
  }
  const offsets = packedOffsets(c);
  const base = modelOverrides(model, c.partition!);
  for (const r of c.plan!.recurrent) {
    const body = packBody(c, r, offsets[r.id]);
    const name = `${model.name}_${variantName(c)}_pack_${r.param.tensor}_${r.id}`;
    c.kernels.push({ name, workgroupSize: K.u32(256), buffers: used(body), uniformBinding: 0, uniforms: uniformFields(model), overrides: baseOverrides, shared: [], body, needs: [] });
    const rows = mulS(base.P, productS(slotOf(c, r).local), r.m.extent.kind === "lit" ? r.m.extent.value : r.m.extent.name);
    c.launches.push({ name, shader: name, entry: "main", overrides: {}, workgroups: ["ceilDiv", rows, 256], sharedBytes: 0, threads: 256, bindings: [] });
  }
  const init = initBody(model);
  const initName = `${model.name}_${variantName(c)}_init`;
  c.kernels.push({ name: initName, workgroupSize: K.u32(256), buffers: used(init), uniformBinding: 0, uniforms: uniformFields(model), overrides: baseOverrides, shared: [], body: init, needs: [] });
  c.launches.push({ name: initName, shader: initName, entry: "main", overrides: {}, workgroups: ["ceilDiv", ["*", "B", sumS(I.tensorsOfKind(model, "state").map((t) => productS(t.shape)))], 256], sharedBytes: 0, threads: 256, bindings: [] });
  const k = buildKernel(model, `${model.name}_${variantName(c)}_main`, c.step!, c.body!, {
    scratch,
    overrides: ["JB", "BB"],
    shared: c.plan!.recurrent.map((r) => ({ name: stagedName(r), length: K.mul(K.ref("BB"), productK(I.findTensor(model, r.state.tensor)!.shape)) })),
  });
  k.buffers = used(c.body!);
  c.kernels.push(k);
}

function streamPlan(c: StreamCtx): FormPlan {
  const model = c.model;
  const step = c.step!;
  const scratch = scratchNames(c);
  const rec = c.plan!.recurrent;
  const base = modelOverrides(model, c.partition!);
  const mExt = (r: Recurrent): SizeExpr => (r.m.extent.kind === "lit" ? r.m.extent.value : r.m.extent.name);
  const rowsOf = (r: Recurrent): SizeExpr => mulS("$P", productS(slotOf(c, r).local));
  const packedFloats = sumS(rec.map((r) => mulS(rowsOf(r), mExt(r))));
  const stagedFloats = sumS(rec.map((r) => productS(I.findTensor(model, r.state.tensor)!.shape)));
  const stateFloats = sumS(I.tensorsOfKind(model, "state").map((t) => productS(t.shape)));
  const layout = hoistLayout(c.plan!.hoisting);
  const perElem = mulS(4, sumS(step.sharedArrays().map((a) => productS(a.local))));
  const vars: [string, SizeExpr][] = [
    ["$P", base.P],
    ["$NR", maxS(rec.map(rowsOf))],
    // batch rows per workgroup: one while the batch fits the multiprocessors, up to NB beyond
    ["$BB", ["min", NB, ["max", 1, ["ceilDiv", "B", NOMINAL_SMS]]]],
    ["$G", ["*", "$BB", "$P"]],
    ["$WG", ["max", 32, ["min", 256, ["pow2ceil", ["ceilDiv", "$NR", RT]]]]],
    ["$SHARED_PER_ELEM", perElem],
    ["$SHARED_BYTES", ["+", ["*", "$G", "$SHARED_PER_ELEM"], ["*", 4, "$BB", stagedFloats]]],
    ["$WGS", ["ceilDiv", "B", "$BB"]],
    ["$HOIST_BYTES", mulS(4, "B", "T", layout.widthS)],
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
  launches.push({ name: main.name, shader: main.name, entry: "main", overrides, workgroups: "$WGS", sharedBytes: "$SHARED_BYTES", threads: "$WG", bindings: launchBindings(model, main, scratch) });
  const hoistFlops = sumS(c.hoistFlops);
  const recFlops = sumS(rec.map((r) => mulS(2, "B", "T", rowsOf(r), mExt(r))));
  return {
    form: "sequential",
    variant: variantName(c),
    applicable: ["*", [">=", "LIMIT_SHARED", "$SHARED_BYTES"], [">=", "LIMIT_BINDING", "$HOIST_BYTES"], [">=", "LIMIT_BINDING", ["*", 4, "$PACKED_FLOATS"]]],
    vars,
    scratch: [
      { name: PINGPONG, floats: mulS(2, "B", stateFloats) },
      { name: PACKED, floats: "$PACKED_FLOATS" },
      ...(c.plan!.hoisting.lets.length ? [{ name: HOISTED, floats: mulS("B", "T", layout.widthS) }] : []),
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
