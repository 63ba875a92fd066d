/**
 * Gradients by running models: forward (recording the state before each step), then the backward
 * model (backward.ts) over the reversed sequence. `exec` runs a model: the reference interpreter
 * by default, or any backend (the backward model is plain IR, so every backend that runs models
 * runs it: `seqc`'s sequential form trains on WebGPU and CUDA without backward kernels of its own).
 */
import * as I from "../ir/types.ts";
import { interpret, product, shapeSizes, type RunInputs, type RunResult } from "../ir/interpret.ts";
import { buildBackward, type Backward } from "./backward.ts";
import { packInputs, type InputPack } from "./pack.ts";
import { splitParamAdjoints, type InputPass, type ParamPass } from "./split.ts";
import { chainGradients } from "./chunked-chain.ts";
import { backwardFrom, forwardSaving, planMemory, reverseTime, type FloatArray, type GradNames, type GradRunners, type GradSpec, type MemoryChoice, type RunFn } from "../../runtime/train.ts";

export interface Cotangents {
  /** dL/d(output), [B, T, ...shape] per output (absent = 0). */
  outputs?: Record<string, Float64Array>;
  /** dL/d(final state), [B, ...shape] per state (absent = 0). */
  finalState?: Record<string, Float64Array>;
}

export interface Gradients {
  inputs: Record<string, Float64Array>;
  params: Record<string, Float64Array>;
  initialState: Record<string, Float64Array>;
}

export const REC = "__rec";

export { reverseTime };

/** The model with an extra output per state holding its value before each step. */
export function recording(model: I.Model): I.Model {
  const extra: I.TensorDecl[] = [];
  const stmts: I.Stmt[] = [];
  let id = 1_000_000;
  for (const s of I.tensorsOfKind(model, "state")) {
    const vars = s.shape.map((e, p) => ({ id: id++, name: `r${p}`, extent: e }));
    extra.push({ name: s.name + REC, kind: "output", shape: s.shape, span: s.span });
    stmts.push({ k: "output", target: s.name + REC, vars, expr: { k: "read", tensor: s.name, idx: vars.map((v) => ({ kind: "var", v })) }, span: s.span });
  }
  return { ...model, tensors: [...model.tensors, ...extra], body: [...stmts, ...model.body] };
}

/** Runs a model; `form` is the form a backward asks for (the chunked backward's cores: "chunked"), which an executor may ignore. */
export type Exec = (model: I.Model, run: RunInputs, form?: "sequential" | "scan" | "chunked") => RunResult | Promise<RunResult>;

export interface GradOptions {
  /** What the forward keeps for the backward (runtime/train.ts planMemory): "store" (default here), "recompute", { every: C } or "auto". */
  memory?: MemoryChoice;
  /** How the backward model returns param adjoints: "state" (default: accumulated in backward states) or "output" (per step: B x T x params, but the backward of a scan-eligible model stays scan-eligible); same-shape inputs are packed either way. */
  paramAdjoints?: "state" | "output";
  /** "step" (default): the adjoint recurrence of the whole step; "chunked": the chunked backward of a matrix-state model (chunked-chain.ts: its core models in the chunked form; throws with the reason for a model it does not cover). */
  backward?: "step" | "chunked";
}

/** Names of the backward model's tensors and the recording outputs, as the runtime's training loop takes them. */
export function gradNames(model: I.Model, bw: Backward, packs: InputPack[] = [], passes: ParamPass[] = [], inputPasses: InputPass[] = []): GradNames {
  const record = Object.fromEntries(I.tensorsOfKind(model, "state").map((s) => [s.name, s.name + REC]));
  const { model: _model, ...names } = bw;
  return {
    ...names,
    record,
    packs,
    ...(passes.length ? { passes: passes.map((p) => ({ param: p.param, bar: p.bar, reads: p.reads })) } : {}),
    ...(inputPasses.length ? { inputPasses: inputPasses.map((p) => ({ input: p.input, bar: p.bar, reads: p.reads })) } : {}),
  };
}

/**
 * The backward model as gradients() and the generated classes run it, same-shape inputs packed. Param
 * adjoints: "state" (default) computes them outside the recurrence (split.ts: the recurrence carries the
 * state adjoints and writes what the params' passes sum over the steps); "output" gives per-step outputs
 * of the backward model itself (B x T x params, but a scan-eligible model's backward stays scan-eligible).
 */
export function trainingBackward(model: I.Model, dims: Record<string, number>, paramAdjoints: "state" | "output" = "state"): { backward: Backward; model: I.Model; names: GradNames; passes: ParamPass[]; inputPasses: InputPass[] } {
  const backward = buildBackward(model, dims, { paramAdjoints });
  const split = paramAdjoints === "state" ? splitParamAdjoints(backward) : { core: backward.model, passes: [], inputPasses: [] };
  const packed = packInputs(split.core);
  return { backward, model: packed.model, names: gradNames(model, backward, packed.packs, split.passes, split.inputPasses), passes: split.passes, inputPasses: split.inputPasses };
}

/** The forward model's tensors with their per-step sizes at `dims`. */
export function gradSpec(model: I.Model, dims: Record<string, number>, names: GradNames, alloc: (n: number) => FloatArray): GradSpec {
  const sized = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(model, kind).map((t) => ({ name: t.name, size: product(shapeSizes(t.shape, dims)) }));
  return { model: model.name, inputs: sized("input"), params: sized("param"), states: sized("state"), outputs: sized("output"), names, alloc };
}

/**
 * Gradients of a loss with cotangents `cot` with respect to every input, param and initial state:
 * the forward (recording the states, or checkpoints), then the backward model over the reversed
 * sequence, each run by `exec` (the float64 interpreter by default, or any backend).
 */
export async function gradients(model: I.Model, run: RunInputs, cot: Cotangents, exec: Exec = interpret, opts: GradOptions = {}): Promise<Gradients> {
  if (opts.backward === "chunked") return chainGradients(model, run, cot, (m, r, form) => exec(m, r, form));
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const bw = trainingBackward(model, dims, opts.paramAdjoints);
  const spec = gradSpec(model, dims, bw.names, (n) => new Float64Array(n));
  const runner = (m: I.Model): RunFn => async (inputs, initialState, batch, time) =>
    exec(m, { dims, batch, time, inputs: inputs as Record<string, Float64Array>, params: run.params, initialState: initialState as Record<string, Float64Array> });
  const runs: GradRunners = { forward: runner(model), record: runner(recording(model)), backward: runner(bw.model), passes: Object.fromEntries([...bw.passes.map((p) => [p.param, runner(p.model)] as const), ...bw.inputPasses.map((p) => [p.input, runner(p.model)] as const)]) };
  const memory = planMemory(B, T, spec.states.reduce((a, s) => a + s.size, 0), opts.memory ?? "store");
  const { saved } = await forwardSaving(spec, runs, run.inputs, run.initialState ?? {}, B, T, memory);
  return (await backwardFrom(spec, runs, saved, cot)) as Gradients;
}
