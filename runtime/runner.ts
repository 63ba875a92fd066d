/// <reference types="@webgpu/types" />
/**
 * Runs a compiled model on a WebGPU device from its launch plan: checks every tensor, packs params
 * and states, picks a form (or takes the one asked for), and dispatches the plan's kernels. Buffers
 * and pipelines are cached per runner and reused across calls, and so is what a forward of one shape
 * needs besides its inputs (see `Prepared`): a forward is then the input writes, one compute pass and one
 * submit.
 */
import { evalSize, formEnv, type Env, type FormPlan, type KernelLaunch, type ModelPlan, type TensorSpec } from "./plan.ts";
import { defaultDevice } from "./device.ts";
import { rankForms } from "./cost.ts";
import { checkData, elementsOf, isGpuBuffer, shapeOf, ShapeError, shapeText, type TensorData, type TensorInput } from "./tensors.ts";

export const FORM_CHOICES = ["auto", "sequential", "scan", "chunked"] as const;
export type FormChoice = (typeof FORM_CHOICES)[number];
/** What a form needs, for the error when a build lacks it. */
const FORM_NEEDS: Record<string, string> = {
  scan: "scalar or diagonal affine transitions",
  chunked: "a matrix state updated by outer products",
};

export interface CreateOptions {
  /** A WebGPU device; by default one shared device (navigator.gpu, or the `webgpu` package in Node). */
  device?: GPUDevice;
  dims: Record<string, number>;
  params?: Record<string, TensorInput | undefined>;
  /** Which form to run; `auto` (default) asks the cost model for each shape. */
  form?: FormChoice;
  /**
   * When the cost model cannot separate some variants for a shape, time them on the first call with
   * that batch and length and keep the fastest (default true; false: the cost model alone decides).
   */
  tune?: boolean;
}

/** Variants whose estimates are within this factor of the best are timed when tuning. */
export const TUNE_RATIO = 3;

export interface ForwardOptions {
  /** Initial value of some or all states, each [B, ...shape]; others start from their declared value. */
  initialState?: Record<string, TensorInput | undefined>;
  /** Also return the state after the last step. */
  returnFinalState?: boolean;
  /** Batch size when the inputs are bare arrays without a shape (default 1). */
  batch?: number;
  /** Override the runner's form for this call. */
  form?: FormChoice;
  /** false: return GPUBuffers (valid until the next call on this model) instead of Float32Arrays. */
  read?: boolean;
}

export interface ForwardResult<D = Float32Array | GPUBuffer> {
  outputs: Record<string, D>;
  finalState?: Record<string, D>;
  /** The form variant that ran. */
  form: string;
  batch: number;
  length: number;
}

interface Pooled {
  buffer: GPUBuffer;
  usage: number;
}

/** One kernel of a prepared launch: what its dispatches need besides the buffers. */
interface PreparedKernel {
  k: KernelLaunch;
  pipeline: GPUComputePipeline;
  x: number;
  y: number;
  /** Dispatches of a `steps` kernel (its count, evaluated once). */
  steps: number;
}

/**
 * What a forward of one variant at one (B, T) reuses from the last forward of that shape: the kernels'
 * pipelines and workgroup counts (they depend only on the variant and the dims), and their bind groups
 * with the buffers those were made for. The buffers are looked up on every forward (the pool may have
 * replaced one for another shape, the inputs may be other GPUBuffers); the bind groups are made again
 * only when one of them differs.
 */
interface Prepared {
  kernels: PreparedKernel[];
  /** Steps per block. */
  TC: number;
  /** The buffers bound by the bind groups, kernel after kernel (entries in order, then the step uniform). */
  bound: GPUBuffer[];
  groups: GPUBindGroup[];
}

/** At most this many prepared shapes are kept (a runner called with ever new B or T drops the oldest). */
const PREPARED_MAX = 32;
const preparedKey = (plan: FormPlan, B: number, T: number) => `${plan.form}/${plan.variant}|${B}|${T}`;

/** Kernels index invocations (threads) with u32: a launch may not have more. */
export const MAX_INVOCATIONS = 2 ** 32 - 1;

export class ModelRunner {
  private readonly pool = new Map<string, Pooled>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private paramsBuffer?: GPUBuffer;
  /** Dims of the call in flight: the create() dims plus sequence-length dims bound to this call's T. */
  private cur: Record<string, number>;
  private disposed = false;
  readonly hasParam = new Set<string>();
  /** Measured choices: `${form}|${B}|${T}` -> variant. */
  private readonly tuned = new Map<string, string>();
  /** The steps and block length a step or block buffer was written for (`${n}|${TC}`). */
  private readonly stepsWritten = new WeakMap<GPUBuffer, string>();
  /** The cost model's choice per `${form}|${B}|${T}` (the dims and device limits are fixed per runner). */
  private readonly picks = new Map<string, { plan: FormPlan; env: Env }>();
  /** Prepared launches per `${form}/${variant}|${B}|${T}` (preparedKey); a shape here has passed checkLimits. */
  private readonly prepared = new Map<string, Prepared>();
  /** The values last written to a uniform buffer (a write of the same values is skipped). */
  private readonly uniformsWritten = new WeakMap<GPUBuffer, Uint32Array>();

  private constructor(
    readonly plan: ModelPlan,
    readonly device: GPUDevice,
    readonly dims: Record<string, number>,
    readonly form: FormChoice,
    readonly tune: boolean,
  ) {
    this.cur = dims;
  }

  static async create(plan: ModelPlan, opts: CreateOptions): Promise<ModelRunner> {
    if (!opts || typeof opts !== "object") throw new ShapeError(`${plan.model}.create() needs an options object { dims, params }`);
    const dims = checkDims(plan, opts.dims);
    const form = opts.form ?? "auto";
    if (!FORM_CHOICES.includes(form)) throw new ShapeError(`form must be 'auto', 'sequential', 'scan' or 'chunked', got '${String(form)}'`);
    if (FORM_NEEDS[form] && !plan.forms.some((f) => f.form === form)) throw new ShapeError(`${plan.model} has no ${form} form in this build (the ${form} form needs ${FORM_NEEDS[form]}, and a build with --form auto or ${form}); use 'sequential'`);
    const device = opts.device ?? (await defaultDevice());
    const r = new ModelRunner(plan, device, dims, form, opts.tune ?? true);
    r.uploadParams(opts.params ?? {});
    return r;
  }

  /**
   * New values for the params, given as at create() (all of them: an optional param left out is unset).
   * Forwards already called use the old values; the next forward uses these.
   */
  setParams(params: Record<string, TensorInput | undefined>): void {
    if (this.disposed) throw new Error(`${this.plan.model}: setParams() after dispose()`);
    this.uploadParams(params ?? {});
  }

  /** Dims for a call of length T (a dim declared `= T` and not given at create() follows T). */
  dimsFor(T: number): Record<string, number> {
    const d = { ...this.dims };
    for (const x of this.plan.dims) if (d[x.name] === undefined && x.sequenceDefault) d[x.name] = T;
    return d;
  }

  private env(B: number, T: number): Env {
    const l = this.device.limits;
    return { ...this.dimsFor(T), B, T, LIMIT_SHARED: l.maxComputeWorkgroupStorageSize, LIMIT_THREADS: l.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: l.maxStorageBufferBindingSize };
  }

  private sizeOf(t: TensorSpec): number {
    return t.shape.reduce<number>((a, e) => a * evalSize(e, this.cur), 1);
  }

  private expected(t: TensorSpec, lead: (string | number)[]): string {
    const named = t.axes.map((a) => (typeof a === "number" ? a : this.cur[a] === undefined ? a : `${a}=${this.cur[a]}`));
    return shapeText([...lead, ...named]);
  }

  private uploadParams(params: Record<string, TensorInput | undefined>): void {
    if (typeof params !== "object" || params === null) throw new ShapeError(`params must be an object of named tensors`);
    const specs = this.plan.tensors.filter((t) => t.role === "param");
    for (const k of Object.keys(params)) {
      if (!specs.some((t) => t.name === k)) throw new ShapeError(`${this.plan.model} has no param '${k}'; its params are ${specs.map((t) => t.name).join(", ") || "(none)"}`);
    }
    this.cur = this.dims;
    const sizes = specs.map((t) => this.sizeOf(t));
    const total = sizes.reduce((a, b) => a + b, 0);
    if (specs.length === 0) return;
    const host = new Float32Array(Math.max(total, 4));
    const present = new Set<string>();
    const copies: { src: GPUBuffer; dst: number; n: number }[] = [];
    let off = 0;
    specs.forEach((t, i) => {
      const given = params[t.name];
      const exp = this.expected(t, []);
      if (given === undefined) {
        if (!t.optional) throw new ShapeError(`missing param '${t.name}' of shape ${exp}`);
      } else {
        const d = checkData(given, `param '${t.name}'`, exp);
        const shape = shapeOf(given);
        if (shape && shapeText(shape) !== shapeText(t.shape.map((e) => evalSize(e, this.cur)))) throw new ShapeError(`param '${t.name}' has shape ${shapeText(shape)}, expected ${exp}`);
        if (elementsOf(d) !== sizes[i]) throw new ShapeError(`param '${t.name}' has ${elementsOf(d)} elements, expected shape ${exp} (${sizes[i]})`);
        if (isGpuBuffer(d)) copies.push({ src: d, dst: off, n: sizes[i] });
        else host.set(d, off);
        present.add(t.name);
      }
      off += sizes[i];
    });
    this.hasParam.clear();
    for (const n of present) this.hasParam.add(n);
    // the same buffer on a later setParams(): the prepared bind groups keep pointing at it (the queue runs
    // this write after the forwards submitted before it, so those read the old values)
    if (!this.paramsBuffer || this.paramsBuffer.size !== host.byteLength) {
      this.paramsBuffer?.destroy();
      this.paramsBuffer = this.device.createBuffer({ size: host.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    }
    this.device.queue.writeBuffer(this.paramsBuffer, 0, host);
    if (copies.length) {
      const enc = this.device.createCommandEncoder();
      for (const c of copies) enc.copyBufferToBuffer(c.src, 0, this.paramsBuffer, c.dst * 4, c.n * 4);
      this.device.queue.submit([enc.finish()]);
    }
  }

  /** The variants that can run this shape, fastest first by the cost model. */
  rank(B: number, T: number) {
    return rankForms(this.plan.forms, this.env(B, T));
  }

  /** Pick the form variant for a shape: the measured choice when tuning settled it, else the cost model's. */
  choose(B: number, T: number, form: FormChoice = this.form): { plan: FormPlan; env: Env } {
    const pickKey = `${form}|${B}|${T}`;
    const tuned = this.tuned.get(pickKey);
    // a measured choice is kept as `${form}/${variant}`, the cost model's as the call's form: both per (B, T)
    const memo = tuned ? `${tuned}|${B}|${T}` : pickKey;
    const picked = this.picks.get(memo);
    if (picked) return picked;
    const base = this.env(B, T);
    const hit = tuned ? this.plan.forms.find((f) => `${f.form}/${f.variant}` === tuned) : undefined;
    if (hit) {
      const pick = { plan: hit, env: formEnv(hit, base) };
      this.picks.set(memo, pick);
      return pick;
    }
    const ranked = rankForms(this.plan.forms.filter((f) => form === "auto" || f.form === form), base);
    if (ranked.length === 0) {
      const need = this.plan.forms.filter((f) => form === "auto" || f.form === form).map((f) => {
        const env = formEnv(f, base);
        const per = env.$SHARED_PER_ELEM ?? env.$FLOATS_PER_THREAD * 4;
        const min = f.variant === "thread" ? 32 : f.form === "scan" ? 2 : 1;
        return `${f.form}/${f.variant} needs ${per} bytes of workgroup memory per ${f.form === "scan" ? "thread" : "element"}, ${min > 1 ? `${min} of them per workgroup` : "one at least"}`;
      });
      if (need.length === 0) throw new ShapeError(`${this.plan.model} has no ${form} form`);
      throw new ShapeError(`${this.plan.model} cannot run dims ${JSON.stringify(this.dims)} on this device: ${need.join("; ")}, the device allows ${base.LIMIT_SHARED}`);
    }
    const pick = { plan: ranked[0].form, env: ranked[0].env };
    this.picks.set(memo, pick);
    return pick;
  }

  private buffer(key: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const p = this.pool.get(key);
    if (p && p.buffer.size >= size && p.usage === usage) return p.buffer;
    p?.buffer.destroy();
    const grow = p && p.usage === usage ? Math.max(size, Math.min(p.buffer.size * 2, size * 2)) : size;
    const b = this.device.createBuffer({ size: Math.min(grow, Math.max(size, this.device.limits.maxBufferSize)), usage });
    this.pool.set(key, { buffer: b, usage });
    return b;
  }

  async forward(inputs: Record<string, TensorInput | undefined>, opts: ForwardOptions = {}): Promise<ForwardResult> {
    if (this.disposed) throw new Error(`${this.plan.model}: forward() after dispose()`);
    if (typeof inputs !== "object" || inputs === null) throw new ShapeError(`forward() takes an object of named inputs`);
    const specs = this.plan.tensors.filter((t) => t.role === "input");
    this.cur = this.dims;
    for (const k of Object.keys(inputs)) {
      if (!specs.some((t) => t.name === k)) throw new ShapeError(`${this.plan.model} has no input '${k}'; its inputs are ${specs.map((t) => t.name).join(", ")}`);
    }
    // batch and length: from the first input with a shape, else from opts.batch (default 1)
    let B = opts.batch;
    let T: number | undefined;
    for (const t of specs) {
      const v = inputs[t.name];
      const s = v === undefined ? undefined : shapeOf(v);
      if (s) {
        if (s.length !== t.shape.length + 2) throw new ShapeError(`input '${t.name}' has shape ${shapeText(s)}, expected ${this.expected(t, ["B", "T"])}`);
        B = s[0];
        T = s[1];
        break;
      }
    }
    B ??= 1;
    if (!Number.isInteger(B) || B < 1) throw new ShapeError(`batch must be a positive integer, got ${B}`);
    const data = new Map<string, TensorData>();
    for (const t of specs) {
      const v = inputs[t.name];
      if (v === undefined) {
        if (!t.optional) throw new ShapeError(`missing input '${t.name}' of shape ${this.expected(t, ["B", "T"])}`);
        continue;
      }
      const d = checkData(v, `input '${t.name}'`, this.expected(t, ["B", "T"]));
      const n = this.sizeOf(t);
      const len = elementsOf(d);
      if (T === undefined) {
        T = len / (B * n);
        if (!Number.isInteger(T) || T < 1) throw new ShapeError(`input '${t.name}' has ${len} elements, not a multiple of B * ${shapeText(t.axes)} = ${B * n}; expected shape ${this.expected(t, [`B=${B}`, "T"])}`);
      }
      const s = shapeOf(v);
      const want = [B, T, ...t.shape.map((e) => evalSize(e, this.cur))];
      if (s && shapeText(s) !== shapeText(want)) throw new ShapeError(`input '${t.name}' has shape ${shapeText(s)}, expected ${this.expected(t, [`B=${B}`, `T=${T}`])}`);
      if (len !== B * T * n && !(isGpuBuffer(d) && len >= B * T * n)) throw new ShapeError(`input '${t.name}' has ${len} elements, expected shape ${this.expected(t, [`B=${B}`, `T=${T}`])} (${B * T * n})`);
      data.set(t.name, d);
    }
    if (T === undefined) throw new ShapeError(`give at least one input: the length T comes from the inputs`);
    this.cur = this.dimsFor(T);
    const states = this.plan.tensors.filter((t) => t.role === "state");
    const init = new Map<string, TensorData>();
    for (const [k, v] of Object.entries(opts.initialState ?? {})) {
      const t = states.find((s) => s.name === k);
      if (!t) throw new ShapeError(`${this.plan.model} has no state '${k}'; its states are ${states.map((s) => s.name).join(", ") || "(none)"}`);
      if (v === undefined) continue;
      const exp = this.expected(t, [`B=${B}`]);
      const d = checkData(v, `initial state '${k}'`, exp);
      const s = shapeOf(v);
      if (s && shapeText(s) !== shapeText([B, ...t.shape.map((e) => evalSize(e, this.cur))])) throw new ShapeError(`initial state '${k}' has shape ${shapeText(s)}, expected ${exp}`);
      if (elementsOf(d) !== B * this.sizeOf(t)) throw new ShapeError(`initial state '${k}' has ${elementsOf(d)} elements, expected shape ${exp} (${B * this.sizeOf(t)})`);
      init.set(k, d);
    }
    const form = opts.form ?? this.form;
    let { plan, env } = this.choose(B, T, form);
    if (this.tune && !this.tuned.has(`${form}|${B}|${T}`)) ({ plan, env } = await this.tuneFor(B, T, form, data, init));
    this.checkLimits(plan, env, B, T);
    return this.launch(plan, env, B, T, data, init, opts);
  }

  /**
   * Measured choice among the variants the cost model cannot tell apart (estimates within TUNE_RATIO
   * of the best): each runs four times on this call's inputs (the first run builds its pipeline), the
   * best of the other three decides, and the winner is kept for this batch and length.
   */
  private async tuneFor(B: number, T: number, form: FormChoice, data: Map<string, TensorData>, init: Map<string, TensorData>): Promise<{ plan: FormPlan; env: Env }> {
    const key = `${form}|${B}|${T}`;
    const ranked = rankForms(this.plan.forms.filter((f) => form === "auto" || f.form === form), this.env(B, T));
    const close = ranked.filter((r) => r.seconds <= ranked[0].seconds * TUNE_RATIO);
    let best = { plan: ranked[0].form, env: ranked[0].env, ms: Infinity };
    if (close.length > 1) {
      for (const c of close) {
        try {
          this.checkLimits(c.form, c.env, B, T);
          // the first run builds the pipeline and buffers; the best of the next three is the time
          let ms = Infinity;
          for (let i = 0; i < 4; i++) {
            const t0 = performance.now();
            await this.launch(c.form, c.env, B, T, data, init, { read: false });
            await this.device.queue.onSubmittedWorkDone();
            if (i > 0) ms = Math.min(ms, performance.now() - t0);
          }
          if (ms < best.ms) best = { plan: c.form, env: c.env, ms };
        } catch {
          // a variant that does not fit this device is simply not a candidate
        }
      }
    }
    this.tuned.set(key, `${best.plan.form}/${best.plan.variant}`);
    return { plan: best.plan, env: best.env };
  }

  private checkLimits(plan: FormPlan, env: Env, B: number, T: number): void {
    // a prepared shape was checked before its first launch
    if (this.prepared.has(preparedKey(plan, B, T))) return;
    const l = this.device.limits;
    const storage = plan.kernels[0].bindings.filter((b) => b.access !== "uniform").length;
    if (storage > l.maxStorageBuffersPerShaderStage) {
      throw new ShapeError(`${this.plan.model} binds ${storage} storage buffers per kernel, the device allows ${l.maxStorageBuffersPerShaderStage}`);
    }
    const maxBinding = l.maxStorageBufferBindingSize;
    for (const t of this.plan.tensors) {
      const n = this.sizeOf(t) * (t.role === "input" || t.role === "output" ? B * T : t.role === "state" ? B : 1);
      if (n * 4 > maxBinding) throw new ShapeError(`${t.role} '${t.name}' needs ${n * 4} bytes at B=${B}, T=${T}, over this device's storage binding limit of ${maxBinding} bytes; use a smaller batch or length`);
    }
    for (const s of plan.scratch) {
      const n = evalSize(s.floats, env) * 4;
      if (n > maxBinding) throw new ShapeError(`${plan.form}/${plan.variant} needs a scratch buffer '${s.name}' of ${n} bytes at B=${B}, T=${T}, over this device's storage binding limit of ${maxBinding} bytes; use a smaller batch or length`);
    }
    for (const k of plan.kernels) {
      const shared = evalSize(k.sharedBytes, env);
      if (shared > l.maxComputeWorkgroupStorageSize) throw new ShapeError(`kernel ${k.name} needs ${shared} bytes of workgroup memory, the device allows ${l.maxComputeWorkgroupStorageSize}`);
      const threads = evalSize(k.threads, env);
      if (threads > l.maxComputeInvocationsPerWorkgroup) throw new ShapeError(`kernel ${k.name} needs ${threads} threads per workgroup, the device allows ${l.maxComputeInvocationsPerWorkgroup}`);
      // kernels index their invocations with 32-bit integers: past 2^32 they would wrap and compute garbage
      const invocations = evalSize(k.workgroups, env) * threads;
      if (invocations > MAX_INVOCATIONS) throw new ShapeError(`${this.plan.model}: kernel ${k.name} needs ${invocations} invocations at B=${B}, T=${T}, more than 32-bit indices reach (${MAX_INVOCATIONS}); use a smaller batch or smaller dims`);
    }
  }

  private async pipeline(k: KernelLaunch, env: Env): Promise<GPUComputePipeline> {
    const constants: Record<string, number> = {};
    for (const [name, e] of Object.entries(k.overrides)) constants[name] = evalSize(e, env);
    const key = `${k.shader}|${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    this.device.pushErrorScope("validation");
    let module = this.modules.get(k.shader);
    if (!module) {
      module = this.device.createShaderModule({ code: this.plan.shaders[k.shader] });
      this.modules.set(k.shader, module);
    }
    p = this.device.createComputePipeline({
      layout: k.steps !== undefined || k.block !== undefined ? this.explicitLayout(k) : "auto",
      compute: { module, entryPoint: k.entry, constants },
    });
    const err = await this.device.popErrorScope();
    if (err) {
      this.modules.delete(k.shader);
      throw new Error(`WebGPU rejected kernel ${k.name} of ${this.plan.model} (a seqc bug; please report it): ${err.message}`);
    }
    this.pipelines.set(key, p);
    return p;
  }

  /** A pipeline layout spelled out from the bindings (a dynamic offset for the step index needs one). */
  private explicitLayout(k: KernelLaunch): GPUPipelineLayout {
    const entries: GPUBindGroupLayoutEntry[] = k.bindings.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: b.access === "uniform" ? { type: "uniform" } : b.access === "read" ? { type: "read-only-storage" } : { type: "storage" },
    }));
    const step = k.steps ?? k.block;
    if (step) entries.push({ binding: step.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: 16 } });
    return this.device.createPipelineLayout({ bindGroupLayouts: [this.device.createBindGroupLayout({ entries })] });
  }

  /**
   * Step uniform slots, one per dynamic offset, each (i, t0, t1, TC) with t0..t1 the block of TC steps
   * holding step i: `steps` ("steps"): a slot per step i < n; `blocks` ("blocks"): a slot per block k,
   * for its first step i = k * TC. Written once per (n, TC).
   */
  private stepBuffer(kind: "steps" | "blocks", n: number, TC: number): { buffer: GPUBuffer; stride: number } {
    const stride = Math.max(16, this.device.limits.minUniformBufferOffsetAlignment);
    const slots = kind === "steps" ? n : Math.ceil(n / TC);
    const buffer = this.buffer(kind, slots * stride, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const key = `${n}|${TC}`;
    if (this.stepsWritten.get(buffer) !== key) {
      const u = new Uint32Array((slots * stride) / 4);
      for (let j = 0; j < slots; j++) {
        const i = kind === "steps" ? j : j * TC;
        const t0 = i - (i % TC);
        u.set([i, t0, Math.min(t0 + TC, n), TC], (j * stride) / 4);
      }
      this.device.queue.writeBuffer(buffer, 0, u);
      this.stepsWritten.set(buffer, key);
    }
    return { buffer, stride };
  }

  /** Steps per block of a form (its blockSteps, 1..T; all T without). */
  static blockSteps(plan: FormPlan, env: Env, T: number): number {
    return plan.blockSteps === undefined ? T : Math.max(1, Math.min(T, evalSize(plan.blockSteps, env)));
  }

  /** The kernels of a variant at (B, T): made on the first forward of that shape, kept until dispose(). */
  private async prepare(plan: FormPlan, env: Env, B: number, T: number): Promise<Prepared> {
    const key = preparedKey(plan, B, T);
    const hit = this.prepared.get(key);
    if (hit) return hit;
    const maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
    const kernels: PreparedKernel[] = [];
    for (const k of plan.kernels) {
      const pipeline = await this.pipeline(k, env);
      const steps = k.steps ? evalSize(k.steps.count, env) : 0;
      const n = evalSize(k.workgroups, env);
      const y = n === 0 ? 0 : Math.ceil(n / maxDim);
      if (y > maxDim) throw new ShapeError(`kernel ${k.name} needs ${n} workgroups, more than this device can launch`);
      kernels.push({ k, pipeline, x: n === 0 ? 0 : Math.ceil(n / y), y, steps });
    }
    const prep: Prepared = { kernels, TC: ModelRunner.blockSteps(plan, env, T), bound: [], groups: [] };
    if (this.prepared.size >= PREPARED_MAX) this.prepared.delete(this.prepared.keys().next().value!);
    this.prepared.set(key, prep);
    return prep;
  }

  private async launch(plan: FormPlan, env: Env, B: number, T: number, data: Map<string, TensorData>, init: Map<string, TensorData>, opts: ForwardOptions): Promise<ForwardResult> {
    const dev = this.device;
    const S = GPUBufferUsage.STORAGE;
    const inputBufs = new Map<string, GPUBuffer>();
    for (const t of this.plan.tensors.filter((x) => x.role === "input")) {
      const d = data.get(t.name);
      if (!d) {
        inputBufs.set(t.name, this.buffer(`dummy`, 16, S));
        continue;
      }
      if (isGpuBuffer(d)) inputBufs.set(t.name, d);
      else {
        const b = this.buffer(`in:${t.name}`, d.byteLength, S | GPUBufferUsage.COPY_DST);
        dev.queue.writeBuffer(b, 0, d);
        inputBufs.set(t.name, b);
      }
    }
    const stateSpecs = this.plan.tensors.filter((t) => t.role === "state");
    const stateOffsets = new Map<string, number>();
    let stateTotal = 0;
    for (const t of stateSpecs) {
      stateOffsets.set(t.name, stateTotal);
      stateTotal += B * this.sizeOf(t);
    }
    const statesBuf = this.buffer("states", stateTotal * 4, S | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
    const initBuf = this.buffer("states_in", init.size ? stateTotal * 4 : 16, S | GPUBufferUsage.COPY_DST);
    const enc = dev.createCommandEncoder();
    for (const [name, d] of init) {
      const off = stateOffsets.get(name)! * 4;
      if (isGpuBuffer(d)) enc.copyBufferToBuffer(d, 0, initBuf, off, B * this.sizeOf(stateSpecs.find((s) => s.name === name)!) * 4);
      else dev.queue.writeBuffer(initBuf, off, d);
    }
    const outSpecs = this.plan.tensors.filter((t) => t.role === "output");
    const outBufs = new Map<string, GPUBuffer>();
    for (const t of outSpecs) outBufs.set(t.name, this.buffer(`out:${t.name}`, B * T * this.sizeOf(t) * 4, S | GPUBufferUsage.COPY_SRC));
    const scratch = new Map<string, GPUBuffer>();
    for (const s of plan.scratch) scratch.set(s.name, this.buffer(`scratch:${s.name}`, evalSize(s.floats, env) * 4, S));
    // uniforms
    const fields = this.plan.uniforms;
    const u = new Uint32Array(Math.ceil(fields.length / 4) * 4);
    fields.forEach((f, i) => {
      if (f === "B") u[i] = B;
      else if (f === "T") u[i] = T;
      else if (f.startsWith("has_")) {
        const n = f.slice(4);
        u[i] = data.has(n) || this.hasParam.has(n) ? 1 : 0;
      } else if (f.startsWith("init_")) u[i] = init.has(f.slice(5)) ? 1 : 0;
      else if (f.startsWith("SO_")) u[i] = stateOffsets.get(f.slice(3)) ?? 0;
      else u[i] = env[f] ?? 0;
    });
    const uniformBuf = this.buffer("uniforms", u.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const written = this.uniformsWritten.get(uniformBuf);
    if (!written || written.length !== u.length || written.some((x, i) => x !== u[i])) {
      dev.queue.writeBuffer(uniformBuf, 0, u);
      this.uniformsWritten.set(uniformBuf, u);
    }
    const prep = await this.prepare(plan, env, B, T);
    const TC = prep.TC;
    // the buffers each kernel binds this time; the bind groups are made again only where one differs
    const bound: GPUBuffer[] = [];
    const strides: number[] = [];
    for (const { k, steps } of prep.kernels) {
      for (const b of k.bindings) {
        const r = b.buffer;
        bound.push(
          r.kind === "uniforms" ? uniformBuf
          : r.kind === "input" ? inputBufs.get(r.name)!
          : r.kind === "output" ? outBufs.get(r.name)!
          : r.kind === "params" ? (this.paramsBuffer ?? this.buffer("dummy", 16, S))
          : r.kind === "states" ? statesBuf
          : r.kind === "initialStates" ? initBuf
          : scratch.get(r.name)!,
        );
      }
      // step slots are (re)written here when another shape or kernel wrote other ones (stepBuffer knows)
      const stepBuf = k.steps ? this.stepBuffer("steps", Math.max(steps, T), TC) : k.block ? this.stepBuffer("blocks", T, TC) : undefined;
      if (stepBuf) bound.push(stepBuf.buffer);
      strides.push(stepBuf?.stride ?? 0);
    }
    if (bound.length !== prep.bound.length || bound.some((b, i) => b !== prep.bound[i])) {
      prep.groups = [];
      let at = 0;
      for (const { k, pipeline } of prep.kernels) {
        const entries: GPUBindGroupEntry[] = k.bindings.map((b) => ({ binding: b.binding, resource: { buffer: bound[at++] } }));
        const step = k.steps ?? k.block;
        if (step) entries.push({ binding: step.binding, resource: { buffer: bound[at++], size: 16 } });
        prep.groups.push(dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
      }
      prep.bound = bound;
    }
    // every dispatch of the forward in one compute pass: each dispatch is its own usage scope, so WebGPU
    // makes a kernel's storage writes visible to the dispatches after it (as between passes)
    const pass = enc.beginComputePass();
    const encode = (j: number, from: number, to: number) => {
      const p = prep.kernels[j];
      if (p.x === 0) return;
      const group = prep.groups[j];
      pass.setPipeline(p.pipeline);
      if (p.k.steps) {
        for (let i = from; i < Math.min(to, p.steps); i++) {
          pass.setBindGroup(0, group, [i * strides[j]]);
          pass.dispatchWorkgroups(p.x, p.y, 1);
        }
      } else if (p.k.block) {
        pass.setBindGroup(0, group, [(from / TC) * strides[j]]);
        pass.dispatchWorkgroups(p.x, p.y, 1);
      } else {
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(p.x, p.y, 1);
      }
    };
    if (plan.blockSteps === undefined) {
      // one block: the plan's order
      prep.kernels.forEach((p, j) => encode(j, 0, p.steps));
    } else {
      // the kernels outside the blocks once, then block after block of TC steps
      const perBlock = prep.kernels.flatMap((p, j) => (p.k.steps || p.k.block ? [j] : []));
      prep.kernels.forEach((p, j) => {
        if (!p.k.steps && !p.k.block) encode(j, 0, T);
      });
      for (let t0 = 0; t0 < T; t0 += TC) for (const j of perBlock) encode(j, t0, t0 + TC);
    }
    pass.end();
    const result: ForwardResult = { outputs: {}, form: `${plan.form}/${plan.variant}`, batch: B, length: T };
    const read = opts.read !== false;
    const stateOut = new Map<string, GPUBuffer>();
    if (opts.returnFinalState && !read) {
      for (const t of stateSpecs) {
        const n = B * this.sizeOf(t) * 4;
        const b = this.buffer(`final:${t.name}`, n, S | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
        enc.copyBufferToBuffer(statesBuf, stateOffsets.get(t.name)! * 4, b, 0, n);
        stateOut.set(t.name, b);
      }
    }
    if (!read) {
      dev.queue.submit([enc.finish()]);
      for (const t of outSpecs) result.outputs[t.name] = outBufs.get(t.name)!;
      if (opts.returnFinalState) {
        result.finalState = {};
        for (const [k, b] of stateOut) result.finalState[k] = b;
      }
      return result;
    }
    // read back through one staging buffer: outputs, then (optionally) the packed states
    const outBytes = outSpecs.map((t) => B * T * this.sizeOf(t) * 4);
    const total = outBytes.reduce((a, b) => a + b, 0) + (opts.returnFinalState ? stateTotal * 4 : 0);
    const staging = this.buffer("staging", total, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    let off = 0;
    outSpecs.forEach((t, i) => {
      if (outBytes[i]) enc.copyBufferToBuffer(outBufs.get(t.name)!, 0, staging, off, outBytes[i]);
      off += outBytes[i];
    });
    if (opts.returnFinalState && stateTotal) enc.copyBufferToBuffer(statesBuf, 0, staging, off, stateTotal * 4);
    dev.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const all = new Float32Array(staging.getMappedRange().slice(0, total));
    staging.unmap();
    off = 0;
    outSpecs.forEach((t, i) => {
      result.outputs[t.name] = all.slice(off / 4, (off + outBytes[i]) / 4);
      off += outBytes[i];
    });
    if (opts.returnFinalState) {
      result.finalState = {};
      for (const t of stateSpecs) {
        const o = off / 4 + stateOffsets.get(t.name)!;
        result.finalState[t.name] = all.slice(o, o + B * this.sizeOf(t));
      }
    }
    return result;
  }

  /** One token: inputs [B, ...shape] each, state [B, ...shape] each (omitted: the declared initial values). */
  async step(inputs: Record<string, TensorInput | undefined>, state?: Record<string, TensorInput | undefined>, opts: { batch?: number; read?: boolean } = {}): Promise<{ outputs: Record<string, Float32Array | GPUBuffer>; state: Record<string, Float32Array | GPUBuffer> }> {
    if (typeof inputs !== "object" || inputs === null) throw new ShapeError(`step() takes an object of named inputs`);
    const wrapped: Record<string, TensorInput | undefined> = {};
    let batch = opts.batch;
    for (const [k, v] of Object.entries(inputs)) {
      const s = v === undefined ? undefined : shapeOf(v);
      if (s) {
        batch = s[0];
        wrapped[k] = { data: (v as { data: TensorData }).data, shape: [s[0], 1, ...s.slice(1)] };
      } else wrapped[k] = v;
    }
    const r = await this.forward(wrapped, { initialState: state, returnFinalState: true, batch, form: "sequential", read: opts.read });
    return { outputs: r.outputs, state: r.finalState! };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.pool.values()) p.buffer.destroy();
    this.pool.clear();
    this.paramsBuffer?.destroy();
    this.pipelines.clear();
    this.prepared.clear();
    this.picks.clear();
  }
}

function checkDims(plan: ModelPlan, dims: Record<string, number> | undefined): Record<string, number> {
  if (typeof dims !== "object" || dims === null) throw new ShapeError(`${plan.model}.create() needs dims: { ${plan.dims.filter((d) => d.fixed === undefined).map((d) => `${d.name}: number`).join(", ")} }`);
  const out: Record<string, number> = {};
  for (const k of Object.keys(dims)) if (!plan.dims.some((d) => d.name === k)) throw new ShapeError(`${plan.model} has no dim '${k}'; its dims are ${plan.dims.map((d) => d.name).join(", ")}`);
  for (const d of plan.dims) {
    const v = dims[d.name] ?? d.fixed;
    if (v === undefined && d.sequenceDefault) continue;
    if (v === undefined) throw new ShapeError(`missing dim '${d.name}' of ${plan.model}`);
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`dim '${d.name}' must be a positive integer, got ${v}`);
    if (d.fixed !== undefined && v !== d.fixed) throw new ShapeError(`dim '${d.name}' is fixed to ${d.fixed} in ${plan.model}, got ${v}`);
    out[d.name] = v;
  }
  return out;
}
