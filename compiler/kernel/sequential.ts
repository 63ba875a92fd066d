/**
 * Sequential form: one kernel, one dispatch per forward. Each partition element (batch row x
 * partition point) keeps its state on chip (workgroup memory or registers) for the whole sequence;
 * input preparation (lets) and readout (outputs) are fused into the time loop.
 *
 * Passes: partition -> slots -> body -> kernel -> plan.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import { analyzePartition, type Partition } from "./partition.ts";
import { runPasses, type Pass, type PassTrace } from "./passes.ts";
import { GSLOTS, StepLowering, type Variant } from "./step.ts";
import { dimOverride, extentS, maxS, mulS, productS, sumS } from "./symbolic.ts";
import { inputBuffer, outputBuffer, paramOffset, PARAMS, STATES, STATES_IN, uniformFields } from "./interface.ts";
import type { Binding, FormPlan, KernelLaunch, SizeExpr } from "../../runtime/plan.ts";

export interface LoweredForm {
  plan: FormPlan;
  kernels: K.Kernel[];
  trace: PassTrace[];
}

interface SeqCtx {
  model: I.Model;
  variant: Variant;
  partition?: Partition;
  step?: StepLowering;
  body?: K.KStmt[];
  kernel?: K.Kernel;
  plan?: FormPlan;
}

const seqPasses: Pass<SeqCtx>[] = [
  { name: "partition", run: (c) => (c.partition = analyzePartition(c.model)) },
  {
    name: "slots",
    run: (c) => {
      const thread = c.variant === "thread";
      c.step = new StepLowering({
        model: c.model,
        partition: c.partition!,
        variant: c.variant,
        owner: thread ? K.ref("lid") : K.ref("g"),
        columns: K.ref("G"),
        t: K.ref("t"),
        groupBase: K.mul(K.ref("wg"), K.ref("G")),
      });
      c.step.assignSlots(thread, c.variant === "global");
    },
  },
  {
    name: "body",
    run: (c) => {
      const s = c.step!;
      const thread = c.variant === "thread";
      const sync = () => (thread ? [] : [{ k: "barrier", storage: c.variant === "global" } as K.KStmt]);
      const body: K.KStmt[] = [K.decl("BP", "u32", K.mul(K.uni("B"), K.ref("P")))];
      const main: K.KStmt[] = [];
      if (thread) {
        main.push(...s.elementPrelude(K.ref("q")));
        for (const r of s.registers()) main.push(K.decl(r, "f32", K.f32(0), true));
      }
      main.push({ k: "comment", text: "load the initial state" });
      main.push(...s.loadStates(), ...sync());
      main.push(K.forLoop("t", K.u32(0), K.uni("T"), s.lowerStmts(c.model.body, new Map(), sync)));
      main.push({ k: "comment", text: "write the final state" });
      main.push(...s.storeStates());
      if (thread) {
        // the thread owning element q; no early return (lavapipe mishandles it before a later barrier kernel)
        body.push(K.decl("q", "u32", K.add(K.mul(K.ref("wg"), K.ref("G")), K.ref("lid"))));
        body.push(K.ifThen(K.bin("<", K.ref("q"), K.ref("BP")), main));
      } else body.push(...main);
      c.body = body;
    },
  },
  { name: "kernel", run: (c) => (c.kernel = buildKernel(c.model, `${c.model.name}_seq_${c.variant}`, c.step!, c.body!, { scratch: globalScratch(c.step!).map((a) => a.name) })) },
  { name: "plan", run: (c) => (c.plan = seqPlan(c)) },
];

export function lowerSequential(model: I.Model, variant: Variant): LoweredForm {
  const trace: PassTrace[] = [];
  const c = runPasses<SeqCtx>({ model, variant }, seqPasses, trace);
  return { plan: c.plan!, kernels: [c.kernel!], trace };
}

/** Buffers in binding order: uniforms 0, inputs, params, states, outputs (the same for every kernel of a model). */
export function modelBindings(model: I.Model, scratch: string[] = []): { kernelBuffers: K.KBuffer[]; bindings: Binding[] } {
  const kernelBuffers: K.KBuffer[] = [];
  const bindings: Binding[] = [{ binding: 0, buffer: { kind: "uniforms" }, access: "uniform" }];
  let n = 1;
  for (const t of I.tensorsOfKind(model, "input")) {
    kernelBuffers.push({ name: inputBuffer(t.name), binding: n, access: "read" });
    bindings.push({ binding: n++, buffer: { kind: "input", name: t.name }, access: "read" });
  }
  if (I.tensorsOfKind(model, "param").length) {
    kernelBuffers.push({ name: PARAMS, binding: n, access: "read" });
    bindings.push({ binding: n++, buffer: { kind: "params" }, access: "read" });
  }
  if (I.tensorsOfKind(model, "state").length) {
    kernelBuffers.push({ name: STATES, binding: n, access: "read_write" });
    bindings.push({ binding: n++, buffer: { kind: "states" }, access: "read_write" });
    kernelBuffers.push({ name: STATES_IN, binding: n, access: "read" });
    bindings.push({ binding: n++, buffer: { kind: "initialStates" }, access: "read" });
  }
  for (const t of I.tensorsOfKind(model, "output")) {
    kernelBuffers.push({ name: outputBuffer(t.name), binding: n, access: "read_write" });
    bindings.push({ binding: n++, buffer: { kind: "output", name: t.name }, access: "read_write" });
  }
  for (const s of scratch) {
    kernelBuffers.push({ name: s, binding: n, access: "read_write" });
    bindings.push({ binding: n++, buffer: { kind: "scratch", name: s }, access: "read_write" });
  }
  return { kernelBuffers, bindings };
}

/** The bindings of a kernel's launch: the uniforms and the buffers its body uses. */
export function launchBindings(model: I.Model, kernel: K.Kernel, scratch: string[] = []): Binding[] {
  const { kernelBuffers, bindings } = modelBindings(model, scratch);
  const used = new Set(kernel.buffers.map((b) => b.binding));
  return bindings.filter((b) => b.access === "uniform" || (used.has(b.binding) && kernelBuffers.some((k) => k.binding === b.binding)));
}

/** Override constants every kernel of a model declares: dims, param offsets, P. */
export function modelOverrides(model: I.Model, partition: Partition): Record<string, SizeExpr> {
  const o: Record<string, SizeExpr> = {};
  for (const d of model.dims) o[dimOverride(d.name)] = d.name;
  let acc: SizeExpr[] = [];
  for (const t of I.tensorsOfKind(model, "param")) {
    o[paramOffset(t.name)] = sumS(acc);
    acc = [...acc, productS(t.shape)];
  }
  o.P = productS(partition.classes.map((c) => c.extent));
  return o;
}

export function buildKernel(model: I.Model, name: string, step: StepLowering, body: K.KStmt[], extra: { scratch?: string[]; overrides?: string[]; shared?: K.KShared[] } = {}): K.Kernel {
  const used = K.usedArrays(body);
  const kernelBuffers = modelBindings(model, extra.scratch).kernelBuffers.filter((b) => used.has(b.name));
  const overrides = Object.keys(modelOverrides(model, step.cfg.partition)).map((n) => ({ name: n }));
  for (const n of ["G", "WG", ...(extra.overrides ?? [])]) overrides.push({ name: n });
  const shared: K.KShared[] = step.sharedArrays().map((a) => ({ name: a.name, length: K.mul(K.ref("G"), a.local.reduce<K.KExpr>((acc, e) => K.mul(acc, e.kind === "lit" ? K.u32(e.value) : K.ref(dimOverride(e.name))), K.u32(1))) }));
  shared.push(...(extra.shared ?? []));
  return { name, workgroupSize: K.ref("WG"), buffers: kernelBuffers, uniformBinding: 0, uniforms: uniformFields(model), overrides, shared, body, needs: [] };
}

/** Scratch buffer of the global variant: every global slot array (and update scratch) in one buffer. */
export function globalScratch(step: StepLowering): { name: string; local: I.Extent[] }[] {
  const arrays = step.sharedArrays("global");
  return arrays.length ? [{ name: GSLOTS, local: [] }] : [];
}

function globalScratchFloats(step: StepLowering): SizeExpr {
  return mulS(sumS(step.sharedArrays("global").map((a) => productS(a.local))), "$BP");
}

/** Floats per element kept in workgroup memory, as a size expression. */
export function sharedFloatsPerElement(step: StepLowering): SizeExpr {
  return sumS(step.sharedArrays().map((a) => productS(a.local)));
}

/** Bytes a forward moves at minimum: inputs and outputs once, params once, states in and out. */
export function trafficBytes(model: I.Model): SizeExpr {
  const io = sumS([...I.tensorsOfKind(model, "input"), ...I.tensorsOfKind(model, "output")].map((t) => productS(t.shape)));
  const st = sumS(I.tensorsOfKind(model, "state").map((t) => productS(t.shape)));
  const pa = sumS(I.tensorsOfKind(model, "param").map((t) => productS(t.shape)));
  return mulS(4, sumS([mulS("B", "T", io), mulS(2, "B", st), pa]));
}

/** Per statement of one step: its local size (elements one partition element computes) and its summation length. */
export function stepTerms(model: I.Model, step: StepLowering): { local: SizeExpr; sum: SizeExpr }[] {
  const out: { local: SizeExpr; sum: SizeExpr }[] = [];
  I.walkStmts(model.body, (s) => {
    if (s.k === "for") return;
    // sibling sums add up (nested ones are rare and counted once each)
    const sums: SizeExpr[] = [];
    I.walkExpr(s.expr, (e) => {
      if (e.k === "sum") sums.push(productS(e.vars.map((v) => v.extent)));
    });
    out.push({ local: productS(step.localExtents(s.target, s.vars)), sum: sums.length ? sumS(sums) : 1 });
  });
  return out;
}

/** Serial work of one element per step: local size times summation length, per statement. */
export function stepWork(model: I.Model, step: StepLowering): SizeExpr[] {
  return stepTerms(model, step).map((t) => mulS(t.local, t.sum));
}

/**
 * Latency constants of the cost model (nanoseconds), calibrated on an H100 through Dawn/Vulkan
 * (bench/RESULTS.md, run 1): a dependent round (a step's loads, or a barrier with the loads before
 * it) and one unit of serial work inside it.
 */
export const COST_NS = {
  thread: { sync: 450, work: 12 },
  workgroup: { sync: 600, work: 12 },
  global: { sync: 1200, work: 20 },
  scan: { sync: 450, work: 10 },
};

function seqPlan(c: SeqCtx): FormPlan {
  const step = c.step!;
  const overrides: Record<string, SizeExpr> = { ...modelOverrides(c.model, c.partition!), G: "$G", WG: "$WG" };
  const perElem = mulS(4, sharedFloatsPerElement(step));
  const work = stepWork(c.model, step);
  const localSizes: SizeExpr[] = [];
  I.walkStmts(c.model.body, (s) => {
    if (s.k !== "for") localSizes.push(productS(step.localExtents(s.target, s.vars)));
  });
  for (const t of I.tensorsOfKind(c.model, "state")) localSizes.push(productS(step.partitionLocal(t.name)));
  const vars: [string, SizeExpr][] = [
    ["$P", overrides.P],
    ["$BP", ["*", "B", "$P"]],
    ["$SHARED_PER_ELEM", perElem],
  ];
  let applicable: SizeExpr;
  let serialSteps: SizeExpr;
  let syncs: SizeExpr;
  const terms = stepTerms(c.model, step);
  if (c.variant === "thread") {
    // one thread per element; enough workgroups to spread over the device's multiprocessors
    vars.push(["$G", ["min", 256, ["pow2floor", ["/", "LIMIT_SHARED", ["max", 1, "$SHARED_PER_ELEM"]]], ["max", 32, ["pow2floor", ["ceilDiv", "$BP", 128]]]]]);
    vars.push(["$WG", "$G"]);
    applicable = [">=", "$G", 32];
    serialSteps = mulS("T", sumS(work));
    syncs = "T";
  } else if (c.variant === "global") {
    vars.push(["$LWORK", maxS(localSizes)]);
    vars.push(["$G", ["max", 1, ["min", ["/", 256, "$LWORK"], "$BP"]]]);
    vars.push(["$WG", ["max", 32, ["min", 256, ["pow2ceil", ["*", "$G", "$LWORK"]]]]]);
    applicable = 1;
    serialSteps = mulS("T", sumS(terms.map((t) => mulS(["ceilDiv", ["*", "$G", t.local], "$WG"], t.sum))));
    syncs = mulS("T", terms.length);
  } else {
    vars.push(["$LWORK", maxS(localSizes)]);
    vars.push(["$G", ["max", 1, ["min", ["/", 256, "$LWORK"], ["/", "LIMIT_SHARED", ["max", 1, "$SHARED_PER_ELEM"]], "$BP"]]]);
    vars.push(["$WG", ["max", 32, ["min", 256, ["pow2ceil", ["*", "$G", "$LWORK"]]]]]);
    applicable = [">=", "LIMIT_SHARED", "$SHARED_PER_ELEM"];
    serialSteps = mulS("T", sumS(terms.map((t) => mulS(["ceilDiv", ["*", "$G", t.local], "$WG"], t.sum))));
    syncs = mulS("T", terms.length);
  }
  const scratch = globalScratch(step);
  const bindings = launchBindings(c.model, c.kernel!, scratch.map((a) => a.name));
  const launch: KernelLaunch = {
    name: c.kernel!.name,
    shader: c.kernel!.name,
    entry: "main",
    overrides,
    workgroups: ["ceilDiv", "$BP", "$G"],
    sharedBytes: ["*", "$G", "$SHARED_PER_ELEM"],
    threads: "$WG",
    bindings,
  };
  void extentS;
  return {
    form: "sequential",
    variant: c.variant,
    applicable,
    vars,
    scratch: scratch.map((a) => ({ name: a.name, floats: globalScratchFloats(step) })),
    kernels: [launch],
    cost: { bytes: trafficBytes(c.model), serialSteps, syncs, syncNs: COST_NS[c.variant].sync, workNs: COST_NS[c.variant].work, threads: ["*", ["ceilDiv", "$BP", "$G"], "$WG"], flops: mulS("B", "T", "$P", sumS(work)) },
  };
}
