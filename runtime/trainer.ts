/// <reference types="@webgpu/types" />
/**
 * Training from a generated class: forward({ saveForBackward: true }) returns a `Saved` handle, and
 * backward(gradOutputs, saved) the gradients for inputs, params and initial state (runtime/train.ts
 * does the walk). The recording forward and the backward model are plans of their own, compiled with
 * the class (WGSL, embedded) or next to it (<Model>.grad.cuda.json for CUDA); their runners are
 * opened on first use on the same backend, device, dims and params as the class. So are the chunked
 * backward chain's models (runtime/chunked-backward.ts), on either backend.
 */
import { openRunner, openCudaRowsReadout, readJsonFile, type BackendRunner, type CudaModelPlan, type OpenOptions } from "./backend-runner.ts";
import { evalSize, type ModelPlan } from "./plan.ts";
import { ShapeError, describe, isGpuBuffer, type TensorInput } from "./tensors.ts";
import { backwardFrom, checkCotangents, checkSaved, forwardSaving, planMemory, SAVED_STATE_BUDGET, type Cotangents, type GradNames, type GradRunners, type GradSpec, type Gradients, type MemoryChoice, type RunFn, type Saved, type Tensors } from "./train.ts";
import { chainBackward, chainDims, chainRowsApply, isChainCore, type ChainNames, type ChainPart, type ChainRows } from "./chunked-backward.ts";
import type { RowsReadoutModulePlan, RowsReadoutRunner } from "./cuda/rows-readout.ts";
import { lowRankChainBackward, LR_CHUNK, LR_FORMS, type LrChainNames, type LrPart } from "./chunked-backward-lowrank.ts";

/** The chunked backward chain's plans (WebGPU: ModelPlan, embedded; CUDA: CudaModelPlan, in <Model>.grad.cuda.json) and the names that tie them to the model (runtime/chunked-backward.ts; a low-rank core: runtime/chunked-backward-lowrank.ts), or why the model has none. */
export type ChunkedTraining<P = ModelPlan> = { names: ChainNames; plans: Partial<Record<ChainPart, P>>; rowsReadout?: RowsReadoutModulePlan } | { lowRank: LrChainNames; plans: Partial<Record<LrPart, P>> } | { unavailable: string };
/** The chain's CUDA plans (compiler/backends/cuda/training-chain.ts). */
export type CudaChunkedTraining = ChunkedTraining<CudaModelPlan>;
type ChainPlans = Exclude<ChunkedTraining<ModelPlan | CudaModelPlan>, { unavailable: string }>;
/** Part `part`'s plan among the chain's plans `c` (either chain's parts). */
const planOf = (c: ChainPlans, part: ChainPart | LrPart) => (c.plans as Partial<Record<ChainPart | LrPart, ModelPlan | CudaModelPlan>>)[part];

/** The training plans a class embeds (WebGPU), or why it has none. `bakedDims`: sizes the backward was built for (`--dims`). */
export type TrainingInfo = { record: ModelPlan; backward: ModelPlan; passes?: Record<string, ModelPlan>; names: GradNames; bakedDims?: Record<string, number>; chunked?: ChunkedTraining } | { unavailable: string };

/** Which backward backward() runs: "auto" (default: the chunked backward where the model has it and the forward's own pick at (B, T) is its chunked form, else the step backward), "step" (the adjoint recurrence, stepped or scanned, with the memory policy) or "chunked" (the chunked backward chain). */
export type BackwardChoice = "auto" | "step" | "chunked";

/** The CUDA plans of the recording forward, the backward model and its param passes (<Model>.grad.cuda.json). */
export interface CudaTrainingPlans {
  record: CudaModelPlan;
  backward: CudaModelPlan;
  passes?: Record<string, CudaModelPlan>;
  bakedDims?: Record<string, number>;
  /** The chunked backward chain's plans, or why the model has none (absent: written before the chain had CUDA plans). */
  chunked?: CudaChunkedTraining;
}

export interface SavingOptions {
  initialState?: Record<string, TensorInput | undefined>;
  batch?: number;
  /** What to keep for the step backward: "auto" (default: store every step's states within a budget, else checkpoints), "store", "recompute" or { every: steps }; another than "auto" asks for the step backward. */
  memory?: MemoryChoice;
  /** Which backward the saved handle is for (default "auto"; see BackwardChoice). */
  backward?: BackwardChoice;
}

/** How the chunked backward runs a per-key decay's transposed cores on CUDA: "auto" (default: on the chain's rows readout
 * kernel, `chunked.rowsReadout` of <Model>.grad.cuda.json, where it has one for the chain's pairs and readouts, else
 * their plans), "kernel" (the kernel, or an error saying why not) or "plans" (the transposed-core plans). */
export type ChunkedTransposedChoice = "auto" | "kernel" | "plans";

export type TrainerOptions = OpenOptions & { cudaGradPlan?: CudaTrainingPlans | URL | string; chunkedTransposed?: ChunkedTransposedChoice };

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
  /** The CUDA training plans once read (backwardFor() answers from them). */
  private cudaLoaded?: CudaTrainingPlans;
  private chainRunners = new Map<string, Promise<BackendRunner>>();
  private rowsRunner?: Promise<RowsReadoutRunner>;

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
        return (this.cudaLoaded = where);
      }
      const p = (await readJsonFile(where, `${this.plan.model}: the CUDA training plans`, `\`seqc compile --target ts,cuda\` writes ${this.plan.model}.grad.cuda.json next to ${this.plan.model}.ts; pass cudaGradPlan otherwise`)) as CudaTrainingPlans;
      if (p.record?.model !== this.plan.model) throw new Error(`${String(where)}: not the training plans of ${this.plan.model}`);
      this.checkBaked(p.bakedDims, String(where));
      return (this.cudaLoaded = p);
    })();
    return this.cudaPlans;
  }

  /** `pass`: the param (or input) whose adjoint pass to open (with which = "backward"). */
  private async open(which: "record" | "backward", pass?: string): Promise<BackendRunner> {
    const missing = () => new Error(`${this.plan.model}: the training plans have no adjoint pass for '${pass}' (compile again: this build predates the split backward)`);
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
      passes: Object.fromEntries([...(this.plans.names.passes ?? []).map((p) => p.param), ...(this.plans.names.inputPasses ?? []).map((p) => p.input)].map((name) => [name, fn(() => {
        if (!this.passRunners.has(name)) this.passRunners.set(name, this.open("backward", name));
        return this.passRunners.get(name)!;
      })])),
    };
  }

  private dimsAt(T: number): Record<string, number> {
    const dims: Record<string, number> = { ...(this.options.dims ?? {}) };
    for (const d of this.plan.dims) {
      if (d.fixed !== undefined) dims[d.name] = d.fixed;
      else if (dims[d.name] === undefined && d.sequenceDefault) dims[d.name] = T;
    }
    return dims;
  }

  private spec(T: number): GradSpec {
    const dims = this.dimsAt(T);
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
    // on CUDA the chain's plans are in <Model>.grad.cuda.json: read it first, so that the pick below answers from it
    if (this.main.backend === "cuda") await this.cuda();
    const pick = this.backwardFor(B, T, opts.backward, opts.memory);
    if (pick.form === "chunked") {
      // nothing to store: the chunked backward runs the core again from the inputs and the initial state
      const r = await this.main.forward(host as Record<string, Float32Array>, { initialState: init as Record<string, Float32Array>, returnFinalState: true, batch: B });
      const memory = { policy: "recompute" as const, every: T, bytes: 0, why: `the chunked backward (${pick.why}) recomputes the core from the inputs and the initial state` };
      const saved: Saved = { model: this.plan.model, batch: B, length: T, memory, inputs: host, initialState: init, released: false, backward: "chunked" };
      return { outputs: r.outputs as Tensors, finalState: (r.finalState ?? {}) as Tensors, saved };
    }
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
    if (saved.backward === "chunked") return this.chunkedBackward(this.spec(saved.length), saved, { outputs, finalState });
    return (await backwardFrom(this.spec(saved.length), this.runners(), saved, { outputs, finalState })) as Gradients<Float32Array>;
  }

  /** Which backward a forward of batch B and length T saves for (`choice` and `memory` as given to forward()), and why. */
  backwardFor(B: number, T: number, choice: BackwardChoice = "auto", memory: MemoryChoice = "auto"): { form: "step" | "chunked"; why: string } {
    const none = this.chunkedMissing();
    if (choice === "step") return { form: "step", why: "asked for" };
    if (choice === "chunked") {
      if (none) throw new ShapeError(`${this.plan.model}: backward 'chunked': ${none}`);
      if (memory !== "auto") throw new ShapeError(`${this.plan.model}: memory ${JSON.stringify(memory)} is a policy of the step backward; backward 'chunked' stores nothing (leave memory out or use backward 'step')`);
      return { form: "chunked", why: "asked for" };
    }
    if (choice !== "auto") throw new ShapeError(`backward must be 'auto', 'step' or 'chunked', got ${JSON.stringify(choice)}`);
    if (none) return { form: "step", why: none };
    if (memory !== "auto") return { form: "step", why: `memory ${JSON.stringify(memory)} asks for the step backward` };
    const f = this.main.formFor(B, T);
    return { form: f.startsWith("chunked/") ? "chunked" : "step", why: `the forward runs ${f} at B=${B}, T=${T}` };
  }

  /**
   * Why this instance has no chunked backward chain, or undefined where it has one: on WebGPU the class's embedded
   * plans; on CUDA those of <Model>.grad.cuda.json once read (forward() reads it before it picks), before that the
   * class's embedded plans (written by the same compile).
   */
  private chunkedMissing(): string | undefined {
    const cuda = this.main.backend === "cuda" && this.cudaLoaded;
    const c = cuda ? cuda.chunked : this.plans.chunked;
    if (!c) return cuda ? "the CUDA training plans have no chunked backward chain (written before the chain had CUDA plans, or passed without `chunked`): compile again with `seqc compile --target cuda`" : "this module was generated without the chunked backward's plans (compile again)";
    return "unavailable" in c ? c.unavailable : undefined;
  }

  /** The chain's plans on this instance's backend (CUDA: <Model>.grad.cuda.json's, read by forward()). */
  private chainPlans(): ChainPlans {
    // (chunkedMissing() reads the same plans, except the class's embedded ones on CUDA before the JSON is read)
    const c = this.main.backend === "cuda" ? this.cudaLoaded?.chunked : this.plans.chunked;
    if (!c || "unavailable" in c) throw new Error(`${this.plan.model}: no chunked backward chain: ${this.chunkedMissing() ?? "the CUDA training plans are not read yet"}`);
    return c;
  }

  /** A runner of one model of the chunked backward chain, at `dims` (the core models') or this instance's. */
  private chainRunner(part: ChainPart | LrPart, dims: Record<string, number> | undefined): Promise<BackendRunner> {
    const key = `${part} ${JSON.stringify(dims ?? null)}`;
    let r = this.chainRunners.get(key);
    if (!r) {
      const c = this.chainPlans();
      const plan = planOf(c, part);
      if (!plan) throw new Error(`${this.plan.model}: the chunked backward's plans have no ${part} model`);
      const own = new Set(plan.tensors.filter((t) => t.role === "param").map((t) => t.name));
      const params = dims ? undefined : Object.fromEntries(Object.entries(this.options.params ?? {}).filter(([k]) => own.has(k)));
      // the core models run in the chunked form (that is the chunked backward), the others pick theirs
      const core = "lowRank" in c ? LR_FORMS[part as LrPart] === "chunked" : isChainCore(part as ChainPart);
      // on CUDA the part's CUDA plan runs (openRunner reads only the model's name from its first argument there)
      const cuda = this.main.backend === "cuda";
      r = openRunner(plan as ModelPlan, { ...this.options, dims: dims ?? this.options.dims, params, form: core ? "chunked" : "auto", cudaPlan: cuda ? (plan as CudaModelPlan) : undefined, cudaGradPlan: undefined } as OpenOptions);
      this.chainRunners.set(key, r);
    }
    return r;
  }

  /**
   * The transposed cores' kernel (runtime/cuda/rows-readout.ts) for chainBackward, or undefined where the plans run: on
   * CUDA, per the option chunkedTransposed, where the chain carries the module, its glue applies (chainRowsApply: a
   * per-key log decay, no value columns, no stabiliser) and the module has a float32 kernel for both transposed cores'
   * (pairs, readouts) at value extent V within the device's shared memory.
   */
  private async chainRows(c: ChainPlans, V: number): Promise<ChainRows | undefined> {
    const choice = this.options.chunkedTransposed ?? "auto";
    if (choice !== "auto" && choice !== "kernel" && choice !== "plans") throw new ShapeError(`chunkedTransposed must be 'auto', 'kernel' or 'plans', got ${JSON.stringify(choice)}`);
    if (choice === "plans" || "lowRank" in c) return undefined;
    const m = c.rowsReadout;
    const np = c.names.pairs.length, nr = c.names.readouts.length;
    const why = this.main.backend !== "cuda" ? "the rows readout kernel runs on backend 'cuda' only"
      : !chainRowsApply(c.names) ? "the chain's transposed cores are not a per-key log decay's without value columns or stabiliser"
      : !m ? "the CUDA training plans carry no rows readout module (compile again with `seqc compile --target cuda`)"
      : undefined;
    if (why) {
      if (choice === "kernel") throw new Error(`${this.plan.model}: chunkedTransposed 'kernel': ${why}`);
      return undefined;
    }
    const runner = await (this.rowsRunner ??= openCudaRowsReadout(m!, this.options, `${this.plan.model}.rows-readout`));
    if (!runner.kernelFor(np, nr, V) || !runner.kernelFor(nr, np, V)) {
      if (choice === "kernel") throw new Error(`${this.plan.model}: chunkedTransposed 'kernel': the rows readout module has no float32 kernel for ${np} pairs / ${nr} readouts and ${nr} / ${np} at V = ${V} on ${runner.device.info.name}`);
      return undefined;
    }
    return async (_part, ld, pairs, readouts, S0, z) => runner.run(ld as Float32Array, pairs as [Float32Array, Float32Array][], readouts as Float32Array[], S0 as Float32Array, z.B, z.T, z.H, z.K, z.V);
  }

  /** The chunked backward chain (runtime/chunked-backward.ts) on this instance's backend (WebGPU or CUDA); its glue between the models runs on the host. */
  private async chunkedBackward(spec: GradSpec, saved: Saved, cot: Cotangents): Promise<Gradients<Float32Array>> {
    checkSaved(spec, saved);
    const { batch: B, length: T } = saved;
    checkCotangents(spec, B, T, cot);
    const c = this.chainPlans();
    const n = "lowRank" in c ? c.lowRank : c.names;
    const dims = this.dimsAt(T);
    const S = this.plan.tensors.find((t) => t.name === n.state && t.role === "state")!;
    // (the stabiliser's glue hands float64 tensors: m_t, m_{t-1} and its adjoints, float32 on the way in)
    const f32 = (t: Tensors | undefined) => t && (Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v instanceof Float32Array ? v : Float32Array.from(v)])) as Record<string, Float32Array>);
    const runPart = async (part: ChainPart | LrPart, partDims: Record<string, number> | undefined, inputs: Tensors, initialState: Tensors | undefined, batch: number, time: number) => {
      const runner = await this.chainRunner(part, partDims);
      const own = new Set(planOf(c, part)!.tensors.filter((t) => t.role === "input").map((t) => t.name));
      const r = await runner.forward(f32(Object.fromEntries(Object.entries(inputs).filter(([k]) => own.has(k))))!, { initialState: f32(initialState), returnFinalState: true, batch });
      if (r.length !== time) throw new Error(`${this.plan.model}: the chunked backward's ${part} ran ${r.length} steps, expected ${time}`);
      return { outputs: r.outputs as Tensors, finalState: (r.finalState ?? {}) as Tensors };
    };
    const problem = {
      batch: B, time: T, stateShape: S.shape.map((e) => evalSize(e, dims)), inputs: spec.inputs, params: spec.params, outputs: spec.outputs, given: saved.inputs,
      initialState: saved.initialState[n.state], cotOutputs: cot.outputs, cotState: cot.finalState?.[n.state], alloc: (k: number) => new Float32Array(k),
      // the other states (value columns, a stabiliser): their initial values and final-state cotangents
      initialStates: saved.initialState, cotStates: cot.finalState,
    };
    const g = "lowRank" in c
      ? await lowRankChainBackward(c.lowRank, runPart, problem, LR_CHUNK)
      : await chainBackward(n as ChainNames, runPart, problem, await this.chainRows(c, chainDims(n as ChainNames, problem.stateShape).V));
    for (const k of Object.keys(g.inputs)) if (!saved.inputs[k]) delete g.inputs[k];
    for (const k of Object.keys(g.initialState)) g.initialState[k] = f32({ g: g.initialState[k] })!.g;
    saved.released = true;
    return g as Gradients<Float32Array>;
  }

  dispose(): void {
    for (const p of [this.record, this.back, ...this.passRunners.values(), ...this.chainRunners.values(), this.rowsRunner]) void p?.then((r) => r.dispose(), () => {});
  }
}
