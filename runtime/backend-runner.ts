/// <reference types="@webgpu/types" />
/**
 * One runner surface over both backends, for the generated classes: `openRunner(plan, { backend })`
 * gives forward / step / formFor / dispose on WebGPU (ModelRunner, this package) or CUDA
 * (seqc/runtime/cuda's CudaModelRunner, Node only). The CUDA runtime is imported only when asked for,
 * through a specifier bundlers do not follow, so a browser bundle never contains it (nor koffi); its
 * plan (<Model>.cuda.json, megabytes with PTX) is read from next to the generated module in Node, or
 * passed in.
 */
import { ModelRunner, type FormChoice } from "./runner.ts";
import { ShapeError, type TensorInput } from "./tensors.ts";
import type { ModelPlan } from "./plan.ts";
import type { CudaModelPlan } from "./cuda/plan.ts";
import type { CudaDevice } from "./cuda/device.ts";
import type { CudaModelRunner } from "./cuda/runner.ts";
import type { RowsReadoutModulePlan, RowsReadoutRunner } from "./cuda/rows-readout.ts";

export type { CudaModelPlan, CudaDevice };
export type Backend = "webgpu" | "cuda";
/** Element types of inputs and outputs on the device: f32 everywhere; bf16 / f16 for CUDA's chunked form. */
export type IoDtype = "f32" | "bf16" | "f16";
/** The forms a class can be asked for: WebGPU has sequential and scan, CUDA also chunked (and its variants by name). */
export type AnyFormChoice = FormChoice | "chunked";
/** The CUDA runtime module (what `import("seqc/runtime/cuda")` gives). */
export type CudaRuntime = typeof import("./cuda/index.ts");

export interface OpenOptions {
  /** Where to run (default "webgpu"). */
  backend?: Backend;
  /** A WebGPU device (webgpu) or a CudaDevice (cuda); by default the shared one of the backend. */
  device?: GPUDevice | CudaDevice;
  dims?: Record<string, number>;
  params?: Record<string, TensorInput | undefined>;
  form?: AnyFormChoice | string;
  /** WebGPU: time near-equal variants on the first call of a shape (default true). */
  tune?: boolean;
  /** CUDA: element type of inputs and outputs on the device (default f32). */
  dtype?: IoDtype;
  /** CUDA: the plan, or a URL or path of the <Model>.cuda.json to read (Node only). */
  cudaPlan?: CudaModelPlan | URL | string;
  /** CUDA: the runtime module, for Node bundles in which the relative import of seqc/runtime/cuda does not resolve. */
  cudaRuntime?: CudaRuntime;
}

export interface RunnerForwardOptions {
  initialState?: Record<string, TensorInput | undefined>;
  returnFinalState?: boolean;
  batch?: number;
  form?: AnyFormChoice | string;
  /** false: GPUBuffers instead of Float32Arrays (WebGPU only). */
  read?: boolean;
}

export interface RunnerResult<D = Float32Array | GPUBuffer> {
  outputs: Record<string, D>;
  finalState?: Record<string, D>;
  form: string;
  batch: number;
  length: number;
}

/** What the generated classes call: the same on both backends. */
export interface BackendRunner {
  readonly backend: Backend;
  readonly model: string;
  forward(inputs: Record<string, TensorInput | undefined>, opts?: RunnerForwardOptions): Promise<RunnerResult>;
  step(inputs: Record<string, TensorInput | undefined>, state?: Record<string, TensorInput | undefined>, opts?: { batch?: number }): Promise<{ outputs: Record<string, Float32Array | GPUBuffer>; state: Record<string, Float32Array | GPUBuffer> }>;
  /** The largest buffer one kernel may bind (WebGPU's storage binding limit); undefined: no such limit. */
  readonly maxBindingBytes?: number;
  /** `${form}/${variant}` forward() would run for this batch and length. */
  formFor(batch: number, length: number): string;
  dispose(): void;
}

const isNode = () => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";
const files = new Map<string, Promise<unknown>>();

/** Read and parse a JSON file (Node only; cached per location). `what` names it in errors, `hint` says how to get it. */
export function readJsonFile(where: URL | string, what: string, hint: string): Promise<unknown> {
  const key = String(where);
  let p = files.get(key);
  if (!p) {
    p = (async () => {
      const fsName = "node:fs/promises";
      const fs = (await import(/* @vite-ignore */ fsName)) as typeof import("node:fs/promises");
      try {
        return JSON.parse(await fs.readFile(where, "utf8"));
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") throw new Error(`${what}: ${where instanceof URL ? where.pathname : where} does not exist; ${hint}`);
        throw e;
      }
    })();
    p.catch(() => files.delete(key));
    files.set(key, p);
  }
  return p;
}

/** Read a CUDA plan file (Node only; cached per location). */
export async function readCudaPlan(where: URL | string, model: string): Promise<CudaModelPlan> {
  const plan = (await readJsonFile(where, `${model}: the CUDA plan`, `compile the model with \`seqc compile --target ts,cuda\` (it writes ${model}.cuda.json next to ${model}.ts) or pass cudaPlan to create()`)) as CudaModelPlan;
  if (plan.model !== model) throw new Error(`${String(where)}: a CUDA plan of model ${plan.model}, not ${model}`);
  return plan;
}

/** Open a runner of `plan`'s model on the backend asked for. `defaultCudaPlan`: where the CUDA plan lies when none is passed. */
export async function openRunner(plan: ModelPlan, opts: OpenOptions, defaultCudaPlan?: URL | string): Promise<BackendRunner> {
  if (!opts || typeof opts !== "object") throw new ShapeError(`${plan.model}.create() needs an options object { dims, params }`);
  const backend = opts.backend ?? "webgpu";
  if (backend === "webgpu") {
    if (opts.dtype !== undefined && opts.dtype !== "f32") throw new ShapeError(`the WebGPU backend runs f32 only; dtype '${opts.dtype}' needs backend 'cuda'`);
    if (opts.cudaPlan !== undefined) throw new ShapeError(`cudaPlan is an option of backend 'cuda'; this model runs on 'webgpu'`);
    const r = await ModelRunner.create(plan, { device: opts.device as GPUDevice | undefined, dims: opts.dims ?? {}, params: opts.params, form: opts.form as FormChoice | undefined, tune: opts.tune });
    return new WebgpuRunner(r);
  }
  if (backend !== "cuda") throw new ShapeError(`backend must be 'webgpu' or 'cuda', got '${String(backend)}'`);
  if (!isNode()) throw new Error(`backend 'cuda' runs in Node only (it calls the CUDA driver); in a browser use backend 'webgpu'`);
  const rt = opts.cudaRuntime ?? ((await import(/* @vite-ignore */ CUDA_RUNTIME)) as CudaRuntime);
  // the device first: without a driver, its one sentence is the answer
  const device = (opts.device as CudaDevice | undefined) ?? (await rt.CudaDevice.open(0));
  const where = opts.cudaPlan ?? defaultCudaPlan;
  if (where === undefined) throw new Error(`${plan.model}: no CUDA plan: pass cudaPlan (the ${plan.model}.cuda.json of \`seqc compile --target cuda\`)`);
  const cudaPlan = typeof where === "string" || where instanceof URL ? await readCudaPlan(where, plan.model) : where;
  const r = await rt.CudaModelRunner.create(cudaPlan, {
    dims: opts.dims ?? {},
    params: opts.params as Record<string, Float32Array | undefined> | undefined,
    form: opts.form,
    device,
    dtype: opts.dtype,
  });
  return new CudaRunner(r);
}

/** The rows readout kernel's runner (runtime/cuda/rows-readout.ts; the chunked backward's per-key transposed cores) on the
 * CUDA device of `opts` (default: the shared one), its module loaded from its PTX or compiled. */
export async function openCudaRowsReadout(module: RowsReadoutModulePlan, opts: OpenOptions, name: string): Promise<RowsReadoutRunner> {
  if (!isNode()) throw new Error(`backend 'cuda' runs in Node only (it calls the CUDA driver); in a browser use backend 'webgpu'`);
  const rt = opts.cudaRuntime ?? ((await import(/* @vite-ignore */ CUDA_RUNTIME)) as CudaRuntime);
  const device = (opts.device as CudaDevice | undefined) ?? (await rt.CudaDevice.open(0));
  return rt.RowsReadoutRunner.create(module, device, name);
}

/** A variable, so that bundlers leave the CUDA runtime out of browser bundles. */
const CUDA_RUNTIME = "./cuda/index.ts";

class WebgpuRunner implements BackendRunner {
  readonly backend = "webgpu" as const;
  constructor(readonly runner: ModelRunner) {}
  get model() {
    return this.runner.plan.model;
  }
  get maxBindingBytes() {
    return this.runner.device.limits.maxStorageBufferBindingSize;
  }
  forward(inputs: Record<string, TensorInput | undefined>, opts: RunnerForwardOptions = {}) {
    return this.runner.forward(inputs, { ...opts, form: opts.form as FormChoice | undefined });
  }
  step(inputs: Record<string, TensorInput | undefined>, state?: Record<string, TensorInput | undefined>, opts: { batch?: number } = {}) {
    return this.runner.step(inputs, state, opts);
  }
  formFor(batch: number, length: number) {
    const c = this.runner.choose(batch, length);
    return `${c.plan.form}/${c.plan.variant}`;
  }
  dispose() {
    this.runner.dispose();
  }
}


class CudaRunner implements BackendRunner {
  readonly backend = "cuda" as const;
  constructor(readonly runner: CudaModelRunner) {}
  get model() {
    return this.runner.plan.model;
  }
  async forward(inputs: Record<string, TensorInput | undefined>, opts: RunnerForwardOptions = {}): Promise<RunnerResult> {
    if (opts.read === false) throw new Error(`${this.model}: results left on the device (GPUBuffers) are a WebGPU feature; on backend 'cuda' use forward()`);
    const r = await this.runner.forward(inputs as never, { batch: opts.batch, form: opts.form, initialState: opts.initialState as never });
    return { outputs: r.outputs, ...(opts.returnFinalState ? { finalState: r.finalState } : {}), form: `${this.runner.plan.forms.find((f) => f.variant === r.form)?.form ?? "?"}/${r.form}`, batch: r.batch, length: r.length };
  }
  step(inputs: Record<string, TensorInput | undefined>, state?: Record<string, TensorInput | undefined>, opts: { batch?: number } = {}) {
    return this.runner.step(inputs as never, state as never, opts);
  }
  formFor(batch: number, length: number) {
    const f = this.runner.choose(batch, length).plan;
    return `${f.form}/${f.variant}`;
  }
  dispose() {
    this.runner.dispose();
  }
}
