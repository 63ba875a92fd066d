/**
 * Gradients by running models: forward (recording the state before each step), then the backward
 * model (backward.ts) over the reversed sequence. `exec` runs a model: the reference interpreter
 * by default, or any backend (the backward model is plain IR, so every backend that runs models
 * runs it: `seqc`'s sequential form trains on WebGPU and CUDA without backward kernels of its own).
 */
import * as I from "../ir/types.ts";
import { interpret, product, shapeSizes, type RunInputs, type RunResult } from "../ir/interpret.ts";
import { buildBackward } from "./backward.ts";

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

const REC = "__rec";

/** Reverse the time axis of a [B, T, ...] array with `inner` elements per step. */
export function reverseTime(a: Float64Array, B: number, T: number, inner: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out.set(a.subarray((b * T + t) * inner, (b * T + t + 1) * inner), (b * T + (T - 1 - t)) * inner);
  return out;
}

/** The model with an extra output per state holding its value before each step. */
function recording(model: I.Model): I.Model {
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

export type Exec = (model: I.Model, run: RunInputs) => RunResult | Promise<RunResult>;

export async function gradients(model: I.Model, run: RunInputs, cot: Cotangents, exec: Exec = interpret): Promise<Gradients> {
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const n = (t: I.TensorDecl) => product(shapeSizes(t.shape, dims));
  const fwd = await exec(recording(model), { ...run, dims });
  const bw = buildBackward(model, dims);
  const inputs: Record<string, Float64Array> = {};
  for (const t of I.tensorsOfKind(model, "input")) if (run.inputs[t.name]) inputs[t.name] = reverseTime(run.inputs[t.name], B, T, n(t));
  for (const s of I.tensorsOfKind(model, "state")) inputs[bw.statePrev[s.name]] = reverseTime(fwd.outputs[s.name + REC], B, T, n(s));
  for (const o of I.tensorsOfKind(model, "output")) {
    const c = cot.outputs?.[o.name] ?? new Float64Array(B * T * n(o));
    inputs[bw.outputBar[o.name]] = reverseTime(c, B, T, n(o));
  }
  const initialState: Record<string, Float64Array> = {};
  for (const s of I.tensorsOfKind(model, "state")) initialState[bw.stateBar[s.name]] = cot.finalState?.[s.name] ?? new Float64Array(B * n(s));
  const back = await exec(bw.model, { dims, batch: B, time: T, inputs, params: run.params, initialState });

  const g: Gradients = { inputs: {}, params: {}, initialState: {} };
  for (const t of I.tensorsOfKind(model, "input")) g.inputs[t.name] = reverseTime(back.outputs[bw.inputBar[t.name]], B, T, n(t));
  for (const p of I.tensorsOfKind(model, "param")) {
    const per = back.outputs[bw.paramBar[p.name]];
    const k = n(p);
    const sum = new Float64Array(k);
    for (let i = 0; i < per.length; i++) sum[i % k] += per[i];
    g.params[p.name] = sum;
  }
  for (const s of I.tensorsOfKind(model, "state")) g.initialState[s.name] = back.finalState[bw.stateBar[s.name]];
  return g;
}
