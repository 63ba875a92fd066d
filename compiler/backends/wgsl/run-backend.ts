/**
 * `seqc run --backend webgpu`: the model's WGSL plan on a WebGPU device (Dawn in Node), float32 on
 * the device, float64 in and out. Exports the `webgpu` entry of the backend table
 * (compiler/backends/index.ts): its forms, its cost model and this runner.
 */
import type { Model } from "../../ir/types.ts";
import type { RunInputs, RunResult } from "../../ir/interpret.ts";
import type { BackendInfo, FormChoice } from "../index.ts";
import { UserError } from "../../cli/errors.ts";
import { compileWgsl, WGSL_CAPABILITIES } from "./index.ts";
import { ModelRunner, ShapeError, rankForms, requestDevice, type Env, type FormPlan } from "../../../runtime/index.ts";

const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));

export async function runWebgpu(model: Model, run: RunInputs, form: "auto" | "sequential" | "scan" | "chunked" = "auto"): Promise<RunResult> {
  const plan = compileWgsl(model, ["sequential", "scan", "chunked"]);
  let runner: ModelRunner;
  try {
    // one call: nothing to gain from timing variants first (tune: false)
    runner = await ModelRunner.create(plan, { dims: run.dims, params: f32(run.params), form, tune: false });
  } catch (e) {
    if (e instanceof ShapeError || /WebGPU|adapter/.test((e as Error).message)) throw new UserError((e as Error).message);
    throw e;
  }
  try {
    const r = await runner.forward(f32(run.inputs), { batch: run.batch, initialState: f32(run.initialState), returnFinalState: true });
    if (r.length !== run.time) throw new UserError(`the inputs describe ${r.length} steps, the case says ${run.time}`);
    return { outputs: f64(r.outputs), finalState: f64(r.finalState) };
  } catch (e) {
    if (e instanceof ShapeError) throw new UserError(e.message);
    throw e;
  } finally {
    runner.dispose();
  }
}

/** The cost model's choice for a shape (dims + B, T), with device limits from the WebGPU floor unless given. */
export function chooseWebgpuForm(model: Model, shape: Record<string, number>): FormChoice & { ranking: { variant: string; ms: number }[] } {
  const plan = compileWgsl(model, ["sequential", "scan", "chunked"]);
  // the WebGPU floor, unless the shape names a device's own limits (e.g. LIMIT_SHARED=49152 on the H100)
  const env: Env = {
    B: 1,
    T: 1024,
    LIMIT_SHARED: WGSL_CAPABILITIES.limits.maxComputeWorkgroupStorageSize,
    LIMIT_THREADS: WGSL_CAPABILITIES.limits.maxComputeInvocationsPerWorkgroup,
    LIMIT_BINDING: WGSL_CAPABILITIES.limits.maxStorageBufferBindingSize,
  };
  for (const d of model.dims) env[d.name] = d.fixed ?? shape[d.name] ?? (d.sequenceDefault ? (shape.T ?? 1024) : 64);
  for (const [k, v] of Object.entries(shape)) env[k] = v;
  const ranked = rankForms(plan.forms, env);
  const limitsNote = excludedByLimits(plan.forms, env, shape);
  if (ranked.length === 0) return { form: "sequential", why: `no variant fits the WebGPU default limits at this shape${limitsNote}`, ranking: [] };
  const best = ranked[0];
  const ranking = ranked.map((r) => ({ variant: `${r.form.form}/${r.form.variant}`, ms: r.seconds * 1e3 }));
  const others = ranking.slice(1).map((r) => `${r.variant} ${r.ms.toPrecision(3)} ms`).join(", ");
  const bound = best.memorySeconds >= best.latencySeconds ? "memory-bound" : "latency-bound";
  return {
    form: best.form.form,
    why: `cost model: ${best.form.form}/${best.form.variant} ~${(best.seconds * 1e3).toPrecision(3)} ms (${bound}, ${ranked[0].env.B}x${ranked[0].env.T})${others ? `; then ${others}` : ""}${limitsNote}`,
    ranking,
  };
}

/** The device limits the cost model reads, with the names of the WebGPU limits behind them. */
const LIMITS: [string, string, number][] = [
  ["LIMIT_BINDING", "maxStorageBufferBindingSize", 2 ** 31 - 4],
  ["LIMIT_SHARED", "maxComputeWorkgroupStorageSize", 65536],
  ["LIMIT_THREADS", "maxComputeInvocationsPerWorkgroup", 1024],
];

/**
 * The variants that do not fit the limits assumed (the WebGPU floor where the shape names none) but
 * would fit a larger device (the runtime asks the adapter for its own limits, e.g. 2 GiB storage
 * bindings on an H100), with the limit each needs: a note for the choice's explanation.
 */
function excludedByLimits(forms: FormPlan[], env: Env, shape: Record<string, number>): string {
  const fits = (f: FormPlan, e: Env) => rankForms([f], e).length > 0;
  const out: string[] = [];
  for (const f of forms) {
    if (fits(f, env)) continue;
    // the smallest set of limits (not given in the shape) whose raising makes it fit
    const free = LIMITS.filter(([k]) => !(k in shape));
    let need: typeof LIMITS | undefined;
    for (let mask = 1; mask < 1 << free.length; mask++) {
      const set = free.filter((_, i) => mask & (1 << i));
      if ((!need || set.length < need.length) && fits(f, set.reduce<Env>((e, [k, , big]) => ({ ...e, [k]: big }), { ...env }))) need = set;
    }
    if (need) out.push(`${f.form}/${f.variant} (a larger ${need.map(([, n]) => n).join(" and ")})`);
  }
  if (!out.length) return "";
  const given = LIMITS.filter(([k]) => k in shape).map(([k]) => k);
  return `; not ranked at ${given.length ? "the limits given" : "the WebGPU default limits"} (${LIMITS.map(([k, n]) => `${n} ${env[k]}`).join(", ")}): ${out.join(", ")} — the runtime uses the device's own limits: \`seqc explain --device\` reads this machine's, or give them as --shape LIMIT_BINDING=..,LIMIT_SHARED=..`;
}

export const webgpuBackend: BackendInfo = {
  name: "webgpu",
  description: "WGSL on WebGPU (navigator.gpu, or Dawn in Node), fp32",
  forms: ["sequential", "scan", "chunked"],
  chooseForm: (model, _analysis, shape) => {
    const c = chooseWebgpuForm(model, shape);
    return { form: c.form, why: c.why };
  },
  // the runtime checks the form name (a ShapeError, reported as a user error)
  run: (model, run, opts) => runWebgpu(model, run, (opts?.form ?? "auto") as "auto"),
};

/** This machine's WebGPU adapter limits as the cost model's LIMIT_* sizes (the runtime's device asks for these). */
export async function deviceLimits(): Promise<Record<string, number>> {
  const device = await requestDevice();
  try {
    const l = device.limits as unknown as Record<string, number>;
    return Object.fromEntries(LIMITS.map(([k, n]) => [k, l[n]]));
  } finally {
    device.destroy();
  }
}
