/**
 * Shared by the WebGPU execution tests: stdlib models, random inputs that keep long sequences
 * bounded (decays below one, small step sizes), and a run through the WebGPU runtime compared
 * with the float64 interpreter.
 */
import { join, resolve } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret, type RunInputs, type RunResult } from "../../compiler/ir/interpret.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import { ModelRunner, type ModelPlan } from "../../runtime/index.ts";
import { randArray, rng, sizeOf } from "../helpers/random.ts";

export const ROOT = resolve(import.meta.dirname, "../..");

export const STDLIB = [
  "linear_attention", "retnet", "simple_gla", "mamba2", "gla", "mamba", "hgrn", "s4d", "mlstm", "deltanet",
  "gated_deltanet", "gated_deltaproduct", "rwkv7", "lstm", "gru", "slstm", "softmax_attention", "titans",
];

export function stdlibModel(name: string): Model {
  const p = loadProgram([join(ROOT, "stdlib", `${name}.seq`)]);
  const errors = p.diagnostics.filter((d) => d.severity === "error");
  if (errors.length || p.models.length !== 1) throw new Error(`stdlib/${name}.seq: ${errors.map((d) => d.message).join("; ")}`);
  return p.models[0];
}

/** Odd, distinct test sizes for the stdlib's dim names. */
export const TEST_DIMS: Record<string, number> = { H: 2, K: 5, V: 3, D: 5, N: 3, P: 3, I: 4, J: 2, NH: 2, DH: 3 };

export function testDims(model: Model, over: Record<string, number> = {}): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const d of model.dims) {
    const v = d.fixed ?? over[d.name] ?? TEST_DIMS[d.name];
    if (v !== undefined) dims[d.name] = v;
    else if (!d.sequenceDefault) dims[d.name] = 3;
  }
  return dims;
}

/** How to draw each tensor so that long runs stay bounded: name -> transform of a uniform [-0.5, 0.5) draw. */
const SHAPES: Record<string, Record<string, (x: number) => number>> = {
  hgrn: { "input:g": (x) => -Math.abs(x) - 0.02 },
  gla: { "input:gk": (x) => -Math.abs(x) - 0.02 },
  simple_gla: { "input:g": (x) => -Math.abs(x) - 0.02 },
  gated_deltanet: { "input:g": (x) => -Math.abs(x) - 0.02, "input:beta": (x) => Math.abs(x) },
  gated_deltaproduct: { "input:g": (x) => -Math.abs(x) - 0.02, "input:beta": (x) => Math.abs(x) },
  deltanet: { "input:beta": (x) => Math.abs(x) },
  mamba: { "param:A": (x) => -Math.abs(x) - 0.1 },
  mamba2: { "param:A": (x) => -Math.abs(x) - 0.1, "input:dt": (x) => Math.abs(x) + 0.05 },
  rwkv7: { "input:w": (x) => -Math.abs(x) - 0.05, "input:a": (x) => 0.2 * x, "input:b": (x) => 0.2 * x },
  titans: { "input:theta": (x) => 0.3 * Math.abs(x), "input:eta": (x) => Math.abs(x) + 0.3, "input:alpha": (x) => 0.5 * Math.abs(x) + 0.05 },
};

/** Random inputs, params and (non-zero) initial states for `model`. */
export function randomInputs(name: string, model: Model, dims: Record<string, number>, B: number, T: number, seed: number, initialState = true): RunInputs {
  const r = rng(seed);
  const shapes = SHAPES[name] ?? {};
  const full = { ...dims };
  for (const d of model.dims) if (d.sequenceDefault && full[d.name] === undefined) full[d.name] = T;
  const run: RunInputs = { dims, batch: B, time: T, inputs: {}, params: {}, initialState: {} };
  for (const t of model.tensors) {
    const f = shapes[`${t.kind}:${t.name}`] ?? ((x: number) => x);
    const n = sizeOf(t, full);
    if (t.kind === "input") run.inputs[t.name] = randArray(B * T * n, () => f(r()));
    else if (t.kind === "param" && t.shape.length > 0) run.params![t.name] = randArray(n, () => f(r()));
    else if (t.kind === "state" && initialState) {
      // states with -inf starts (running maxima) start from a finite value; a cache/counter starts at 0
      const init = t.init?.k === "neg" || (t.init?.k === "num" && !Number.isFinite(t.init.value));
      run.initialState![t.name] = t.shape.length === 0 ? new Float64Array(B) : randArray(B * n, () => (init ? 0.3 * r() : 0.5 * r()));
    }
  }
  if (name === "softmax_attention") delete run.initialState!.pos; // position 0: an empty cache
  if (name === "softmax_attention") for (const k of ["Kc", "Vc", "m", "l", "acc"]) delete run.initialState![k];
  return run;
}

const f32 = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (o: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));

const plans = new Map<string, ModelPlan>();
export function planOf(name: string, model: Model): ModelPlan {
  if (!plans.has(name)) plans.set(name, compileWgsl(model));
  return plans.get(name)!;
}

/** Run on WebGPU with one form variant forced (e.g. "sequential/thread"), or a form. */
export async function runWebgpu(plan: ModelPlan, model: Model, run: RunInputs, variant: string): Promise<RunResult & { form: string }> {
  const [form, v] = variant.split("/");
  const restricted: ModelPlan = { ...plan, forms: plan.forms.filter((f) => f.form === form && (v === undefined || f.variant === v)) };
  if (restricted.forms.length === 0) throw new Error(`no ${variant} form in the plan of ${plan.model}`);
  const runner = await ModelRunner.create(restricted, { dims: run.dims, params: f32(run.params), tune: false });
  try {
    const full = runner.dimsFor(run.time);
    const inputs = Object.fromEntries(
      Object.entries(run.inputs).map(([k, a]) => [k, { data: Float32Array.from(a), shape: [run.batch, run.time, ...model.tensors.find((t) => t.name === k)!.shape.map((e) => (e.kind === "lit" ? e.value : full[e.name]))] }]),
    );
    const r = await runner.forward(inputs, { initialState: f32(run.initialState), returnFinalState: true, form: form as "sequential" | "scan" });
    return { outputs: f64(r.outputs), finalState: f64(r.finalState), form: r.form };
  } finally {
    runner.dispose();
  }
}

export interface Comparison { worst: number; detail: Record<string, number> }

export function compare(got: RunResult, want: RunResult): Comparison {
  const detail: Record<string, number> = {};
  for (const [k, v] of Object.entries(want.outputs)) detail[k] = relativeError(got.outputs[k] ?? new Float64Array(), v);
  for (const [k, v] of Object.entries(want.finalState)) detail[`final ${k}`] = relativeError(got.finalState[k] ?? new Float64Array(), v);
  return { worst: Math.max(0, ...Object.values(detail).map((x) => (Number.isNaN(x) ? Infinity : x))), detail };
}

export function reference(model: Model, run: RunInputs): RunResult {
  return interpret(model, run);
}
