/// <reference types="@webgpu/types" />
/**
 * Training from a generated class: forward({ saveForBackward: true }) returns a `Saved` handle, and
 * backward(gradOutputs, saved) the gradients for inputs, params and initial state (runtime/train.ts
 * does the walk). The recording forward and the backward model are plans of their own, compiled with
 * the class (WGSL, embedded) or next to it (<Model>.grad.cuda.json for CUDA); their runners are
 * opened on first use on the same backend, device, dims and params as the class.
 */
import { openRunner, readJsonFile, type BackendRunner, type CudaModelPlan, type OpenOptions } from "./backend-runner.ts";
import { evalSize, type ModelPlan } from "./plan.ts";
import { ShapeError, describe, isGpuBuffer, type TensorInput } from "./tensors.ts";
import { backwardFrom, forwardSaving, planMemory, SAVED_STATE_BUDGET, type GradNames, type GradRunners, type GradSpec, type Gradients, type MemoryChoice, type RunFn, type Saved, type Tensors } from "./train.ts";

/** The training plans a class embeds (WebGPU), or why it has none. `bakedDims`: sizes the backward was built for (`--dims`). */
export type TrainingInfo = { record: ModelPlan; backward: ModelPlan; passes?: Record<string, ModelPlan>; names: GradNames; bakedDims?: Record<string, number> } | { unavailable: string };

/** The CUDA plans of the recording forward, the backward model and its param passes (<Model>.grad.cuda.json). */
export interface CudaTrainingPlans {
  record: CudaModelPlan;
  backward: CudaModelPlan;
  passes?: Record<string, CudaModelPlan>;
  bakedDims?: Record<string, number>;
}

export interface SavingOptions {
  initialState?: Record<string, TensorInput | undefined>;
  batch?: number;
  /** What to keep for the backward: "auto" (default: store every step's states within a budget, else checkpoints), "store", "recompute" or { every: steps }. */
  memory?: MemoryChoice;
}

export type TrainerOptions = OpenOptions & { cudaGradPlan?: CudaTrainingPlans | URL | string };

function hostData(what: string, x: TensorInput | undefined): { data: Float32Array; shape?: readonly number[] } | undefined {
  if (x === undefined) return undefined;
  const d = typeof x === "object" && x !== null && !ArrayBuffer.isView(x) && !isGpuBuffer(x) && "data" in x ? x.data : x;
  if (d instanceof Float32Array) return { data: d, shape: (x as { shape?: readonly number[] }).shape };
  if (isGpuBuffer(d)) throw new ShapeError(`${what}: forward({ saveForBackward: true }) and backward() take Float32Array data (the saved values live on the host), got a GPUBuffer`);
  throw new ShapeError(`${what} must be a Float32Array, got ${describe(d)}`);
}

export class Trainer {
  private record?: Promise<BackendRunner>;
  private back?: Promise<BackendRunner>;
  private passRunners = new Map<string, Promise<BackendRunner>>();
  private cudaPlans?: Promise<CudaTrainingPlans>;

  constructor(
    private readonly main: BackendRunner,
    private readonly plan: ModelPlan,
    private readonly info: TrainingInfo,
    private readonly options: TrainerOptions,
    private readonly defaultCudaGrad?: URL | string,
  ) {}

  private get plans() {
    if ("unavailable" in this.info) throw new Error(`${this.plan.model} has no backward in this build: ${this.info.unavailable}`);
    this.checkBaked(this.info.bakedDims, "this module");
    return this.info;
  }

  /** The backward unrolls loops whose extents were fixed at compile time: this instance must have those sizes. */
  private checkBaked(baked: Record<string, number> | undefined, where: string): void {
    for (const [k, v] of Object.entries(baked ?? {})) {
      const have = this.options.dims?.[k];
      if (have !== v) throw new ShapeError(`${this.plan.model}'s backward in ${where} was built for ${k}=${v} (seqc compile --dims ${k}=${v}), this instance has ${k}=${have}; compile again with --dims ${k}=${have}`);
    }
  }

  private cuda(): Promise<CudaTrainingPlans> {
    this.cudaPlans ??= (async () => {
      const where = this.options.cudaGradPlan ?? this.defaultCudaGrad;
      if (where === undefined) throw new Error(`${this.plan.model}: no CUDA training plans: pass cudaGradPlan (the ${this.plan.model}.grad.cuda.json of \`seqc compile --target cuda\`)`);
      if (typeof where !== "string" && !(where instanceof URL)) {
        this.checkBaked(where.bakedDims, "cudaGradPlan");
        return where;
      }
      const p = (await readJsonFile(where, `${this.plan.model}: the CUDA training plans`, `\`seqc compile --target ts,cuda\` writes ${this.plan.model}.grad.cuda.json next to ${this.plan.model}.ts; pass cudaGradPlan otherwise`)) as CudaTrainingPlans;
      if (p.record?.model !== this.plan.model) throw new Error(`${String(where)}: not the training plans of ${this.plan.model}`);
      this.checkBaked(p.bakedDims, String(where));
      return p;
    })();
    return this.cudaPlans;
  }

  /** `pass`: the param whose adjoint pass to open (with which = "backward"). */
  private async open(which: "record" | "backward", pass?: string): Promise<BackendRunner> {
    const missing = () => new Error(`${this.plan.model}: the training plans have no param pass for '${pass}' (compile again: this build predates the split backward)`);
    const plan = pass === undefined ? this.plans[which] : (this.plans.passes?.[pass] ?? (() => { throw missing(); })());
    const cuda = this.main.backend === "cuda" ? await this.cuda() : undefined;
    const cudaPlan = cuda === undefined ? undefined : pass === undefined ? cuda[which] : (cuda.passes?.[pass] ?? (() => { throw missing(); })());
    // each picks its own form: the backward core of a scan-eligible model (its adjoint recurrence is elementwise
    // affine too, now that the param adjoints are passes of their own) and the passes have scan forms
    return openRunner(plan, { ...this.options, form: "auto", cudaPlan, cudaGradPlan: undefined } as OpenOptions);
  }

  private runners(): GradRunners {
    const fn = (get: () => Promise<BackendRunner>): RunFn => async (inputs, initialState, batch) => {
      const r = await (await get()).forward(inputs as Record<string, Float32Array>, { initialState: initialState as Record<string, Float32Array>, returnFinalState: true, batch });
      return { outputs: r.outputs as Tensors, finalState: (r.finalState ?? {}) as Tensors };
    };
    return {
      forward: fn(async () => this.main),
      record: fn(() => (this.record ??= this.open("record"))),
      backward: fn(() => (this.back ??= this.open("backward"))),
      passes: Object.fromEntries((this.plans.names.passes ?? []).map((p) => [p.param, fn(() => {
        if (!this.passRunners.has(p.param)) this.passRunners.set(p.param, this.open("backward", p.param));
        return this.passRunners.get(p.param)!;
      })])),
    };
  }

  private spec(T: number): GradSpec {
    const dims: Record<string, number> = { ...(this.options.dims ?? {}) };
    for (const d of this.plan.dims) {
      if (d.fixed !== undefined) dims[d.name] = d.fixed;
      else if (dims[d.name] === undefined && d.sequenceDefault) dims[d.name] = T;
    }
    const sized = (role: string) => this.plan.tensors.filter((t) => t.role === role).map((t) => ({ name: t.name, size: t.shape.reduce<number>((a, e) => a * evalSize(e, dims), 1) }));
    return { model: this.plan.model, inputs: sized("input"), params: sized("param"), states: sized("state"), outputs: sized("output"), names: this.plans.names, alloc: (n) => new Float32Array(n) };
  }

  /** The forward, keeping what backward() needs. */
  async forward(inputs: Record<string, TensorInput | undefined>, opts: SavingOptions = {}): Promise<{ outputs: Tensors; finalState: Tensors; saved: Saved }> {
    this.plans;
    if (typeof inputs !== "object" || inputs === null) throw new ShapeError(`forward() takes an object of named inputs`);
    const host: Tensors = {};
    let B = opts.batch;
    for (const [k, v] of Object.entries(inputs)) {
      const h = hostData(`input '${k}'`, v);
      if (!h) continue;
      host[k] = h.data;
      if (h.shape) B ??= h.shape[0];
    }
    B ??= 1;
    const first = this.plan.tensors.find((t) => t.role === "input" && host[t.name]);
    if (!first) throw new ShapeError(`give at least one input: the length T comes from the inputs`);
    const T0 = this.spec(1).inputs.find((t) => t.name === first.name)!.size;
    const T = host[first.name].length / (B * T0);
    if (!Number.isInteger(T) || T < 1) throw new ShapeError(`input '${first.name}' has ${host[first.name].length} elements, not a multiple of B * ${T0} = ${B * T0}`);
    const init: Tensors = {};
    for (const [k, v] of Object.entries(opts.initialState ?? {})) {
      const h = hostData(`initial state '${k}'`, v);
      if (h) init[k] = h.data;
    }
    const spec = this.spec(T);
    const limit = this.main.maxBindingBytes ?? Infinity;
    const memory = planMemory(B, T, spec.states.reduce((a, s) => a + s.size, 0), opts.memory ?? "auto", Math.min(SAVED_STATE_BUDGET, limit));
    if (memory.policy === "recompute") {
      const seq = this.plan.dims.find((d) => d.sequenceDefault && this.options.dims?.[d.name] === undefined);
      if (seq) throw new ShapeError(`${this.plan.model}: dim ${seq.name} follows the sequence length, so the forward cannot be re-run in segments (memory '${memory.policy}'); give ${seq.name} at create() or use memory: 'store'`);
    }
    return forwardSaving(spec, this.runners(), host, init, B, T, memory);
  }

  /** Gradients for every input given to the forward, every param and every initial state. */
  async backward(grads: Record<string, TensorInput | undefined> & { finalState?: Record<string, TensorInput | undefined> }, saved: Saved): Promise<Gradients<Float32Array>> {
    if (!saved || typeof saved !== "object" || !("memory" in saved)) throw new ShapeError(`backward(gradOutputs, saved): saved must be the handle that forward({ saveForBackward: true }) returned`);
    if (typeof grads !== "object" || grads === null) throw new ShapeError(`backward(gradOutputs, saved): gradOutputs must be an object of named output gradients`);
    const outputs: Tensors = {};
    const finalState: Tensors = {};
    for (const [k, v] of Object.entries(grads)) {
      if (k === "finalState") continue;
      const h = hostData(`gradient of output '${k}'`, v as TensorInput | undefined);
      if (h) outputs[k] = h.data;
    }
    for (const [k, v] of Object.entries(grads.finalState ?? {})) {
      const h = hostData(`gradient of final state '${k}'`, v);
      if (h) finalState[k] = h.data;
    }
    return (await backwardFrom(this.spec(saved.length), this.runners(), saved, { outputs, finalState })) as Gradients<Float32Array>;
  }

  dispose(): void {
    for (const p of [this.record, this.back, ...this.passRunners.values()]) void p?.then((r) => r.dispose(), () => {});
  }
}
