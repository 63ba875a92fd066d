/**
 * Scan form, for models whose states form an elementwise affine system (analysis.scanSystem):
 *     X_t[v] = A_t[v] X_{t-1}[v] + b_t[v]      (A: k x k per element, k = number of states)
 * Pairs (A, b) compose associatively, (A2, b2) o (A1, b1) = (A2 A1, A2 b1 + b2), so time splits into
 * segments that run in parallel. One kernel, one pass over the inputs:
 *
 *   workgroup = E elements x S time segments; time advances in tiles of S * TS steps.
 *   per tile: 1. each thread composes (A, b) over its TS steps (per local state element);
 *             2. per element, a serial pass over the S segments turns the carry into each
 *                segment's start state (written into that thread's state slots) and the next carry;
 *             3. each thread replays its TS steps with the model's own step body (lets, updates,
 *                outputs), from its start state: the readout is fused, the inputs are read again
 *                from cache.
 * The composition is generated from the analysis (A, b expressions), never written per model.
 *
 * Passes: analysis -> partition -> slots -> compose -> carry -> replay -> kernel -> plan.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import { analyzeModel } from "../analysis/index.ts";
import type { ScanSystem } from "../analysis/scan-system.ts";
import { analyzePartition, type Partition } from "./partition.ts";
import { runPasses, type Pass, type PassTrace } from "./passes.ts";
import { StepLowering, ELEM_B, elemCoord } from "./step.ts";
import { lowerExpr } from "./lower-expr.ts";
import { flatIndex, mulS, productK, productS, sumS } from "./symbolic.ts";
import { initFlag, STATES, STATES_IN } from "./interface.ts";
import { lowerConst } from "./step.ts";
import { buildKernel, COST_NS, launchBindings, modelOverrides, stepWork, trafficBytes, type LoweredForm } from "./sequential.ts";
import { registerScanLowering } from "./compile.ts";
import type { FormPlan, KernelLaunch, SizeExpr } from "../../runtime/plan.ts";

interface ScanCtx {
  model: I.Model;
  system?: ScanSystem;
  partition?: Partition;
  step?: StepLowering;
  /** Local extents shared by every state of the system. */
  local?: I.Extent[];
  localAxes?: number[];
  compose?: K.KStmt[];
  carry?: K.KStmt[];
  replay?: K.KStmt[];
  kernel?: K.Kernel;
  plan?: FormPlan;
}

const aName = (s: number, r: number) => `sa_${s}_${r}`;
const bName = (s: number) => `sb_${s}`;
const carryName = (s: number) => `c_${s}`;

/** Why the scan form does not apply, or undefined when it does. */
export function scanBlocker(model: I.Model): string | undefined {
  const a = analyzeModel(model);
  if (!a.scanSystem) return a.forms.find((f) => f.form === "scan")?.why ?? "no elementwise affine system of states";
  const part = analyzePartition(model);
  const first = a.scanSystem.states[0];
  const axes = part.localAxes(first).join(",");
  for (const s of a.scanSystem.states) if (part.localAxes(s).join(",") !== axes) return `states ${first} and ${s} split differently across threads`;
  return undefined;
}

const scanPasses: Pass<ScanCtx>[] = [
  {
    name: "analysis",
    run: (c) => {
      c.system = analyzeModel(c.model).scanSystem!;
    },
  },
  {
    name: "partition",
    run: (c) => {
      c.partition = analyzePartition(c.model);
      const first = I.findTensor(c.model, c.system!.states[0])!;
      c.localAxes = c.partition.localAxes(first.name);
      c.local = c.localAxes.map((a) => first.shape[a]);
    },
  },
  {
    name: "slots",
    run: (c) => {
      // thread-owned slots, WG columns; states stay in workgroup memory (step 2 writes other threads' start states)
      c.step = new StepLowering({ model: c.model, partition: c.partition!, variant: "thread", owner: K.ref("lid"), columns: K.ref("WG"), t: K.ref("t") });
      c.step.assignSlots(true, false, new Set(c.system!.states));
    },
  },
  {
    name: "compose",
    run: (c) => {
      // each thread: (A, b) over its TS steps, per local state element
      const sys = c.system!;
      const k = sys.states.length;
      const s = c.step!;
      const body = s.elementLoop(c.local!, (l) => {
        const out: K.KStmt[] = [];
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) out.push(K.decl(`A${i}${j}`, "f32", K.f32(i === j ? 1 : 0), true));
          out.push(K.decl(`b${i}`, "f32", K.f32(0), true));
        }
        const step: K.KStmt[] = [];
        const vars = s.bindTarget(sys.states[0], sys.vars, l, step);
        const scope = s.scope(vars, () => s.timeRow());
        const a = sys.A.map((row) => row.map((e) => lowerExpr(e, scope, step)));
        const b = sys.b.map((e) => lowerExpr(e, scope, step));
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) step.push(K.decl(`a${i}${j}`, "f32", a[i][j]));
          step.push(K.decl(`bt${i}`, "f32", b[i]));
        }
        // (A, b) <- (a A, a b + bt)
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) step.push(K.decl(`n${i}${j}`, "f32", sumK(Array.from({ length: k }, (_, m) => K.mul(K.ref(`a${i}${m}`, "f32"), K.ref(`A${m}${j}`, "f32"))))));
          step.push(K.decl(`nb${i}`, "f32", K.bin("+", sumK(Array.from({ length: k }, (_, m) => K.mul(K.ref(`a${i}${m}`, "f32"), K.ref(`b${m}`, "f32")))), K.ref(`bt${i}`, "f32"), "f32")));
        }
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) step.push(K.set(`A${i}${j}`, K.ref(`n${i}${j}`, "f32")));
          step.push(K.set(`b${i}`, K.ref(`nb${i}`, "f32")));
        }
        out.push(timeLoop(step));
        const col = K.add(K.mul(l, K.ref("WG")), K.ref("lid"));
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) out.push(K.store(aName(i, j), col, K.ref(`A${i}${j}`, "f32")));
          out.push(K.store(bName(i), col, K.ref(`b${i}`, "f32")));
        }
        return out;
      });
      c.compose = [K.ifThen(K.ref("act", "bool"), body)];
    },
  },
  {
    name: "carry",
    run: (c) => {
      // per (element, local index): walk the S segments from the carry; write each segment's start state
      const sys = c.system!;
      const k = sys.states.length;
      const L = productK(c.local!);
      const inner: K.KStmt[] = [
        K.decl("ce", "u32", K.bin("%", K.ref("cf"), K.ref("E"))),
        K.decl("cl", "u32", K.bin("/", K.ref("cf"), K.ref("E"))),
      ];
      const work: K.KStmt[] = [];
      for (let i = 0; i < k; i++) work.push(K.decl(`h${i}`, "f32", K.load(carryName(i), K.add(K.mul(K.ref("cl"), K.ref("E")), K.ref("ce"))), true));
      const seg: K.KStmt[] = [K.decl("col", "u32", K.add(K.mul(K.ref("sg"), K.ref("E")), K.ref("ce"))), K.decl("at", "u32", K.add(K.mul(K.ref("cl"), K.ref("WG")), K.ref("col")))];
      sys.states.forEach((name, i) => {
        const slot = c.step!.slots.get(name)!;
        if (slot.kind !== "shared") throw new Error(`state ${name} is not in workgroup memory`);
        seg.push(K.store(slot.array, K.ref("at"), K.ref(`h${i}`, "f32")));
      });
      for (let i = 0; i < k; i++) {
        seg.push(K.decl(`g${i}`, "f32", K.bin("+", sumK(Array.from({ length: k }, (_, m) => K.mul(K.load(aName(i, m), K.ref("at")), K.ref(`h${m}`, "f32")))), K.load(bName(i), K.ref("at")), "f32")));
      }
      for (let i = 0; i < k; i++) seg.push(K.set(`h${i}`, K.ref(`g${i}`, "f32")));
      work.push(K.forLoop("sg", K.u32(0), K.ref("S"), seg));
      for (let i = 0; i < k; i++) work.push(K.store(carryName(i), K.add(K.mul(K.ref("cl"), K.ref("E")), K.ref("ce")), K.ref(`h${i}`, "f32")));
      inner.push(K.ifThen(K.bin("<", K.add(K.mul(K.ref("wg"), K.ref("E")), K.ref("ce")), K.ref("BP")), work));
      c.carry = [K.forLoop("cf", K.ref("lid"), K.mul(K.ref("E"), L), inner, K.ref("WG"))];
    },
  },
  {
    name: "replay",
    run: (c) => {
      const s = c.step!;
      const body = s.lowerStmts(c.model.body, new Map(), () => []);
      c.replay = [K.ifThen(K.ref("act", "bool"), [timeLoop(body)])];
    },
  },
  {
    name: "kernel",
    run: (c) => {
      const sys = c.system!;
      const k = sys.states.length;
      const s = c.step!;
      const L = productK(c.local!);
      const body: K.KStmt[] = [
        K.decl("BP", "u32", K.mul(K.uni("B"), K.ref("P"))),
        K.decl("e", "u32", K.bin("%", K.ref("lid"), K.ref("E"))),
        K.decl("sgm", "u32", K.bin("/", K.ref("lid"), K.ref("E"))),
        K.decl("q0", "u32", K.add(K.mul(K.ref("wg"), K.ref("E")), K.ref("e"))),
        K.decl("act", "bool", K.bin("<", K.ref("q0"), K.ref("BP"))),
        K.decl("q", "u32", K.bin("min", K.ref("q0"), K.bin("-", K.ref("BP"), K.u32(1)), "u32")),
        ...s.elementPrelude(K.ref("q")),
      ];
      for (const r of s.registers()) body.push(K.decl(r, "f32", K.f32(0), true));
      body.push({ k: "comment", text: "carry := initial state" });
      body.push(...carryStates(c, "load"), { k: "barrier" });
      const tile: K.KStmt[] = [
        K.decl("t0", "u32", K.add(K.mul(K.ref("tile"), K.mul(K.ref("S"), K.ref("TS"))), K.mul(K.ref("sgm"), K.ref("TS")))),
        { k: "comment", text: "1. compose (A, b) over this thread's segment" },
        ...c.compose!,
        { k: "barrier" },
        { k: "comment", text: "2. segment start states from the carry" },
        ...c.carry!,
        { k: "barrier" },
        { k: "comment", text: "3. replay the segment with the step body (outputs)" },
        ...c.replay!,
      ];
      body.push(K.forLoop("tile", K.u32(0), K.bin("/", K.add(K.uni("T"), K.bin("-", K.mul(K.ref("S"), K.ref("TS")), K.u32(1))), K.mul(K.ref("S"), K.ref("TS"))), tile));
      body.push({ k: "barrier" }, { k: "comment", text: "final state := carry" }, ...carryStates(c, "store"));
      const shared: K.KShared[] = [];
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) shared.push({ name: aName(i, j), length: K.mul(K.ref("WG"), L) });
        shared.push({ name: bName(i), length: K.mul(K.ref("WG"), L) });
        shared.push({ name: carryName(i), length: K.mul(K.ref("E"), L) });
      }
      const kern = buildKernel(c.model, `${c.model.name}_scan_tile`, s, body, { overrides: ["E", "S", "TS"], shared });
      // the step's slot arrays are sized G * local; here G is the workgroup size
      kern.shared = kern.shared.map((a) => (a.name.startsWith("s_") || a.name.startsWith("n_") ? { ...a, length: replaceRef(a.length, "G", "WG") } : a));
      kern.overrides = kern.overrides.filter((o) => o.name !== "G");
      c.kernel = kern;
    },
  },
  { name: "plan", run: (c) => (c.plan = scanPlan(c)) },
];

function sumK(xs: K.KExpr[]): K.KExpr {
  return xs.reduce((a, b) => K.bin("+", a, b, "f32"));
}

/**
 * for tau in [0, TS): t = t0 + tau, only while t < T. A full segment (every tile but the last) takes
 * a loop without the bound check, so that the compiler can issue its loads back to back.
 */
function timeLoop(body: K.KStmt[]): K.KStmt {
  const t = K.decl("t", "u32", K.add(K.ref("t0"), K.ref("tau")));
  const full = K.forLoop("tau", K.u32(0), K.ref("TS"), [t, ...body]);
  // the last tile: a trip count known only at run time (min(TS, T - t0), 0 past the end), so that
  // compilers do not unroll this copy of the body too
  const left = K.sel(K.bin("<", K.ref("t0"), K.uni("T")), K.bin("-", K.uni("T"), K.ref("t0"), "u32"), K.u32(0));
  const partial = K.forLoop("tau", K.u32(0), K.bin("min", K.ref("TS"), left, "u32"), [t, ...body]);
  return K.ifThen(K.bin("<=", K.add(K.ref("t0"), K.ref("TS")), K.uni("T")), [full], [partial]);
}

function replaceRef(e: K.KExpr, from: string, to: string): K.KExpr {
  if (e.k === "ref" && e.name === from) return K.ref(to);
  if (e.k === "bin") return { ...e, a: replaceRef(e.a, from, to), b: replaceRef(e.b, from, to) };
  return e;
}

/** Move every state between the carry arrays and the state buffers, element by element. */
function carryStates(c: ScanCtx, dir: "load" | "store"): K.KStmt[] {
  const sys = c.system!;
  const L = productK(c.local!);
  const inner: K.KStmt[] = [
    K.decl("ce", "u32", K.bin("%", K.ref("cf"), K.ref("E"))),
    K.decl("cl", "u32", K.bin("/", K.ref("cf"), K.ref("E"))),
    K.decl("cq", "u32", K.add(K.mul(K.ref("wg"), K.ref("E")), K.ref("ce"))),
  ];
  const work: K.KStmt[] = [...c.step!.elementPrelude(K.ref("cq"))];
  sys.states.forEach((name, i) => {
    const t = I.findTensor(c.model, name)!;
    const idx: K.KExpr[] = new Array(t.shape.length);
    let rest: K.KExpr = K.ref("cl");
    for (let j = c.localAxes!.length - 1; j >= 0; j--) {
      const a = c.localAxes![j];
      const ext = c.local![j];
      const n = `cx${i}_${a}`;
      const extK = ext.kind === "lit" ? K.u32(ext.value) : K.ref(`D_${ext.name}`);
      work.push(K.decl(n, "u32", j === 0 ? rest : K.bin("%", rest, extK)));
      if (j > 0) {
        work.push(K.decl(`${n}r`, "u32", K.bin("/", rest, extK)));
        rest = K.ref(`${n}r`);
      }
      idx[a] = K.ref(n);
    }
    t.shape.forEach((_, a) => {
      if (!idx[a]) idx[a] = K.ref(elemCoord(c.partition!.classOf(name, a)!.id));
    });
    const addr = c.step!.stateAddress(t, idx);
    const at = K.add(K.mul(K.ref("cl"), K.ref("E")), K.ref("ce"));
    if (dir === "load") {
      const init = t.init ? lowerConst(t.init, c.step!) : K.f32(0);
      work.push(K.store(carryName(i), at, K.sel(K.bin("!=", K.uni(initFlag(name)), K.u32(0)), K.load(STATES_IN, addr), init)));
    } else work.push(K.store(STATES, addr, K.load(carryName(i), at)));
  });
  void flatIndex;
  void ELEM_B;
  inner.push(K.ifThen(K.bin("<", K.ref("cq"), K.ref("BP")), work));
  return [K.forLoop("cf", K.ref("lid"), K.mul(K.ref("E"), L), inner, K.ref("WG"))];
}

function scanPlan(c: ScanCtx): FormPlan {
  const step = c.step!;
  const k = c.system!.states.length;
  const overrides: Record<string, SizeExpr> = { ...modelOverrides(c.model, c.partition!), E: "$E", S: "$S", TS: "$TS", WG: "$WG" };
  const L = productS(c.local!);
  // floats per thread: slot arrays (states, lets, update scratch) + (A, b) aggregates; per element: the carry
  const perThread = sumS([...step.sharedArrays().map((a) => productS(a.local)), mulS(k * (k + 1), L)]);
  const perElem = mulS(k, L);
  const work = stepWork(c.model, step);
  const vars: [string, SizeExpr][] = [
    ["$P", overrides.P],
    ["$BP", ["*", "B", "$P"]],
    ["$TS", 8],
    ["$FLOATS_PER_THREAD", perThread],
    // threads per workgroup: what workgroup memory allows, at most 256
    ["$WGMAX", ["min", 256, ["pow2floor", ["/", "LIMIT_SHARED", ["*", 4, ["+", "$FLOATS_PER_THREAD", perElem]]]]]],
    // segments: enough threads in flight (~128k) without more segments than the sequence has, and at
    // least 32 elements side by side (a full 128-byte row of each input) when there are that many
    ["$S", ["max", 1, ["min", 32, ["/", "$WGMAX", 2], ["pow2floor", ["/", 131072, "$BP"]], ["pow2ceil", ["ceilDiv", "T", "$TS"]], ["select", [">=", "$BP", 32], ["max", 1, ["/", "$WGMAX", 32]], 32]]]],
    // elements per workgroup: the rest of the workgroup (idle threads when there are few elements;
    // keeping E independent of B spares a pipeline per batch size)
    ["$E", ["max", 1, ["/", "$WGMAX", "$S"]]],
    ["$WG", ["*", "$E", "$S"]],
    ["$TILES", ["ceilDiv", "T", ["*", "$S", "$TS"]]],
    ["TILE", ["*", "$S", "$TS"]],
  ];
  const kern = c.kernel!;
  const launch: KernelLaunch = {
    name: kern.name,
    shader: kern.name,
    entry: "main",
    overrides,
    workgroups: ["ceilDiv", "$BP", "$E"],
    sharedBytes: ["*", 4, ["+", ["*", "$WG", "$FLOATS_PER_THREAD"], ["*", "$E", perElem]]],
    threads: "$WG",
    bindings: launchBindings(c.model, kern),
  };
  return {
    form: "scan",
    variant: "tile",
    applicable: [">=", "$WGMAX", 2],
    vars,
    scratch: [],
    kernels: [launch],
    cost: {
      bytes: trafficBytes(c.model),
      // per tile: TS compose steps, S carry steps, TS replay steps (times the local work)
      serialSteps: mulS("$TILES", sumS([mulS("$TS", L, 2 * (k * k + k)), mulS("$S", L), mulS("$TS", sumS(work))])),
      syncs: mulS("$TILES", 3),
      syncNs: COST_NS.scan.sync,
      workNs: COST_NS.scan.work,
      threads: ["*", ["ceilDiv", "$BP", "$E"], "$WG"],
      flops: mulS("B", "T", "$P", sumS(work)),
    },
  };
}

export function lowerScan(model: I.Model): LoweredForm {
  const trace: PassTrace[] = [];
  const c = runPasses<ScanCtx>({ model }, scanPasses, trace);
  return { plan: c.plan!, kernels: [c.kernel!], trace };
}

registerScanLowering((model) => {
  const why = scanBlocker(model);
  return why ? { reason: why } : [lowerScan(model)];
});
