/**
 * Runs a compiled model's CUDA plan (plan.ts) on a CudaDevice: packs params and states the way the
 * kernels address them (params in declaration order; states [state][B][...shape]), picks a form,
 * allocates workspaces and launches the steps. `prepare` uploads once and returns a runnable forward
 * (used by benchmarks); `forward` is prepare + run + read back.
 */
import { evalSize, type Env } from "../plan.ts";
import { CudaDevice, loadModuleImages, type CudaBuffer, type CudaModule, type CudaStream, type KernelArg } from "./device.ts";
import type { CudaFormPlan, CudaModelPlan, CudaBufferRef } from "./plan.ts";
import { decodeIo, encodeIo, ioBytes, nanBits, type IoType } from "./half.ts";

export type CudaFormChoice = "auto" | "sequential" | "scan" | "chunked" | string;

export interface CudaCreateOptions {
  dims: Record<string, number>;
  params?: Record<string, Float32Array | undefined>;
  form?: CudaFormChoice;
  device?: CudaDevice;
  /** Element type of inputs and outputs on the device: f32 (default), or bf16 / f16 for the forms that take them (chunked). Tensors are passed and returned as Float32Array either way. */
  dtype?: IoType;
}

export interface CudaForwardOptions {
  batch?: number;
  initialState?: Record<string, Float32Array | undefined>;
  form?: CudaFormChoice;
}

export interface CudaForwardResult {
  outputs: Record<string, Float32Array>;
  finalState: Record<string, Float32Array>;
  form: string;
  batch: number;
  length: number;
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** What forward()/step() take per tensor: a Float32Array, or { data, shape } (the batch then comes from shape[0]). */
export type CudaTensorInput = Float32Array | { data: Float32Array; shape: readonly number[] };

function unwrap(name: string, x: unknown): { data: Float32Array; batch?: number } | undefined {
  if (x === undefined || x === null) return undefined;
  if (x instanceof Float32Array) return { data: x };
  if (typeof x === "object" && "data" in (x as object)) {
    const { data, shape } = x as { data: unknown; shape?: readonly number[] };
    if (!(data instanceof Float32Array)) throw new Error(`${name}: the CUDA backend takes Float32Array data (GPUBuffers belong to the WebGPU backend), got ${Object.prototype.toString.call(data)}`);
    if (shape && prod([...shape]) !== data.length) throw new Error(`${name}: shape [${shape.join(", ")}] has ${prod([...shape])} elements but the data has ${data.length}`);
    return { data, batch: shape?.[0] };
  }
  throw new Error(`${name}: expected a Float32Array or { data, shape }, got ${Object.prototype.toString.call(x)}`);
}

function unwrapAll(what: string, xs: Record<string, unknown> | undefined): { data: Record<string, Float32Array>; batch?: number } {
  const data: Record<string, Float32Array> = {};
  let batch: number | undefined;
  for (const [k, v] of Object.entries(xs ?? {})) {
    const u = unwrap(`${what} '${k}'`, v);
    if (!u) continue;
    data[k] = u.data;
    batch ??= u.batch;
  }
  return { data, batch };
}

export class CudaModelRunner {
  private module?: CudaModule;
  private readonly modules = new Map<string, CudaModule>();
  private paramsBuf?: CudaBuffer;
  private readonly hasParam = new Set<string>();

  private constructor(
    readonly plan: CudaModelPlan,
    readonly device: CudaDevice,
    readonly dims: Record<string, number>,
    readonly form: CudaFormChoice,
    readonly dtype: IoType = "f32",
  ) {}

  static async create(plan: CudaModelPlan, opts: CudaCreateOptions | (Omit<CudaCreateOptions, "params"> & { params?: Record<string, CudaTensorInput | undefined> })): Promise<CudaModelRunner> {
    const device = opts.device ?? (await CudaDevice.open(0));
    for (const d of plan.dims) {
      const v = opts.dims?.[d.name] ?? d.fixed;
      if (v === undefined) throw new Error(`${plan.model}: dim ${d.name} is not given (dims: { ${plan.dims.map((x) => `${x.name}: number`).join(", ")} })`);
      if (d.fixed !== undefined && v !== d.fixed) throw new Error(`${plan.model}: dim ${d.name} is fixed to ${d.fixed}, got ${v}`);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${plan.model}: dim ${d.name} must be a positive integer, got ${v}`);
    }
    const dims = Object.fromEntries(plan.dims.map((d) => [d.name, opts.dims?.[d.name] ?? d.fixed!]));
    const r = new CudaModelRunner(plan, device, dims, opts.form ?? "auto", opts.dtype ?? "f32");
    r.uploadParams(unwrapAll("param", opts.params).data);
    const ptx = plan.ptx?.[String(device.info.sm)];
    // the main translation unit, unless every form lives in a module of its own (loaded on first use)
    if (plan.forms.some((f) => !f.module)) r.module = ptx ? device.loadModule(ptx) : await device.compile(plan.source, { name: `${plan.model}.cu` });
    return r;
  }

  private sizeOf(name: string): number {
    const t = this.plan.tensors.find((x) => x.name === name)!;
    return prod(t.shape.map((s) => evalSize(s, this.dims)));
  }

  private uploadParams(params: Record<string, Float32Array | undefined>): void {
    const specs = this.plan.tensors.filter((t) => t.role === "param");
    for (const k of Object.keys(params)) if (params[k] && !specs.some((s) => s.name === k)) throw new Error(`${this.plan.model} has no param '${k}' (params: ${specs.map((s) => s.name).join(", ") || "none"})`);
    const total = specs.reduce((a, s) => a + this.sizeOf(s.name), 0);
    const host = new Float32Array(Math.max(1, total));
    let off = 0;
    for (const s of specs) {
      const n = this.sizeOf(s.name);
      const v = params[s.name];
      if (v) {
        if (v.length !== n) throw new Error(`param '${s.name}' has ${v.length} elements, expected ${n} ([${s.axes.join(", ")}])`);
        host.set(v, off);
        this.hasParam.add(s.name);
      } else if (!s.optional) throw new Error(`${this.plan.model} needs param '${s.name}' of shape [${s.axes.join(", ")}]`);
      off += n;
    }
    this.paramsBuf = this.device.alloc(host.byteLength);
    this.device.upload(this.paramsBuf, host);
  }

  private env(B: number, T: number): Env {
    const i = this.device.info;
    return { ...this.dims, B, T, LIMIT_SMS: i.multiprocessors, LIMIT_SMEM_OPTIN: i.sharedMemPerBlockOptin, LIMIT_SHARED: i.sharedMemPerBlockOptin, LIMIT_THREADS: i.maxThreadsPerBlock };
  }

  /** Forms that can run this shape, in the plan's preference order (CUDA-specific variants first). */
  applicableForms(B: number, T: number, choice: CudaFormChoice = this.form): { form: CudaFormPlan; env: Env }[] {
    const out: { form: CudaFormPlan; env: Env }[] = [];
    for (const f of this.plan.forms) {
      if (choice !== "auto" && choice !== f.form && choice !== f.variant) continue;
      if ((f.io ?? "f32") !== this.dtype && choice !== f.variant) continue;
      const env = this.env(B, T);
      for (const [k, e] of f.vars) env[k] = evalSize(e, env);
      if (f.applicable !== undefined && evalSize(f.applicable, env) === 0) continue;
      out.push({ form: f, env });
    }
    return out;
  }

  /** Compile or load the module a form's kernels live in (forms of the main module need nothing). */
  async ensureModule(form: CudaFormPlan): Promise<void> {
    if (!form.module || this.modules.has(form.module)) return;
    const m = this.plan.modules?.[form.module];
    if (!m) throw new Error(`${this.plan.model}: the plan has no module '${form.module}' (form ${form.variant})`);
    this.modules.set(form.module, await loadModuleImages(this.device, m, `${this.plan.model}.${form.module}.cu`));
  }

  /** The module holding a form's kernels. */
  moduleOf(form: CudaFormPlan): CudaModule {
    const m = form.module ? this.modules.get(form.module) : this.module;
    if (!m) throw new Error(`${this.plan.model}: module '${form.module}' of form ${form.variant} is not loaded (await runner.ensureModule(form) first)`);
    return m;
  }

  /** The form forward() runs for this batch and length (first applicable preferred form in plan order). */
  pick(B: number, T: number, choice: CudaFormChoice = this.form): { form: CudaFormPlan; env: Env } {
    const all = this.applicableForms(B, T, choice);
    const preferred = all.filter(({ form, env }) => form.prefer === undefined || evalSize(form.prefer, env) !== 0);
    const cands = preferred.length ? preferred : all;
    if (!cands.length) throw new Error(`${this.plan.model}: no ${choice} form of this model can run B=${B}, T=${T} with ${this.dtype} tensors on ${this.device.info.name}`);
    return cands[0];
  }

  /** Upload inputs (each [B, T, ...shape]) and build a forward that can be enqueued many times. */
  prepare(inputs: Record<string, Float32Array | undefined>, opts: CudaForwardOptions = {}): PreparedForward {
    const specs = this.plan.tensors;
    const given = specs.filter((t) => t.role === "input" && inputs[t.name]);
    for (const k of Object.keys(inputs)) if (inputs[k] && !specs.some((s) => s.role === "input" && s.name === k)) throw new Error(`${this.plan.model} has no input '${k}'`);
    if (!given.length) throw new Error(`${this.plan.model}.forward needs its inputs (${specs.filter((t) => t.role === "input").map((t) => t.name).join(", ")})`);
    const B = opts.batch ?? 1;
    const first = given[0];
    const T = inputs[first.name]!.length / (B * this.sizeOf(first.name));
    if (!Number.isInteger(T) || T < 1) throw new Error(`input '${first.name}' has ${inputs[first.name]!.length} elements: not a multiple of batch ${B} x ${this.sizeOf(first.name)}`);
    for (const t of specs.filter((x) => x.role === "input")) {
      const v = inputs[t.name];
      if (!v && !t.optional) throw new Error(`${this.plan.model} needs input '${t.name}' of shape [B, T, ${t.axes.join(", ")}]`);
      if (v && v.length !== B * T * this.sizeOf(t.name)) throw new Error(`input '${t.name}' has ${v.length} elements, expected [${B}, ${T}, ${t.axes.join(", ")}] = ${B * T * this.sizeOf(t.name)}`);
    }
    const { form, env } = this.pick(B, T, opts.form ?? this.form);
    return new PreparedForward(this, form, env, B, T, inputs, opts.initialState ?? {}, this.hasParam, this.paramsBuf!, this.moduleOf(form));
  }

  async forward(inputs: Record<string, CudaTensorInput | undefined>, opts: Omit<CudaForwardOptions, "initialState"> & { initialState?: Record<string, CudaTensorInput | undefined> } = {}): Promise<CudaForwardResult> {
    const ins = unwrapAll("input", inputs);
    const init = unwrapAll("initial state", opts.initialState);
    const batch = opts.batch ?? ins.batch ?? init.batch ?? 1;
    const first = this.plan.tensors.find((t) => t.role === "input" && ins.data[t.name]);
    if (first) {
      const T = ins.data[first.name].length / (batch * this.sizeOf(first.name));
      if (Number.isInteger(T) && T >= 1) await this.ensureModule(this.pick(batch, T, opts.form ?? this.form).form);
    }
    const p = this.prepare(ins.data, { ...opts, batch: opts.batch ?? ins.batch ?? init.batch, initialState: init.data });
    try {
      const s = this.device.stream();
      p.enqueue(s);
      await this.device.synchronize(s);
      this.device.destroyStream(s);
      return p.read();
    } finally {
      p.dispose();
    }
  }

  /** One token: inputs [B, ...shape], the state from the previous step (omitted: the declared initial state). */
  async step(inputs: Record<string, CudaTensorInput | undefined>, state?: Record<string, CudaTensorInput | undefined>, opts: { batch?: number } = {}): Promise<{ outputs: Record<string, Float32Array>; state: Record<string, Float32Array> }> {
    const r = await this.forward(inputs, { batch: opts.batch, initialState: state });
    if (r.length !== 1) throw new Error(`step() takes one token per batch row ([B, ...shape]); these inputs hold ${r.length} steps`);
    return { outputs: r.outputs, state: r.finalState };
  }

  /** The form variant forward() would run for this batch and length. */
  choose(B: number, T: number): { plan: CudaFormPlan } {
    return { plan: this.pick(B, T, this.form).form };
  }

  sizeOfTensor(name: string): number {
    return this.sizeOf(name);
  }

  dispose(): void {
    if (this.paramsBuf) this.device.free(this.paramsBuf);
    this.module?.dispose();
    for (const m of this.modules.values()) m.dispose();
    this.modules.clear();
  }
}

export class PreparedForward {
  private readonly bufs = new Map<string, CudaBuffer>();
  private readonly stateOffsets = new Map<string, number>();
  private readonly statesBuf: CudaBuffer;
  private readonly initStates: CudaBuffer;
  private readonly uniforms = new Map<string, number>();

  constructor(
    private readonly r: CudaModelRunner,
    readonly form: CudaFormPlan,
    readonly env: Env,
    readonly B: number,
    readonly T: number,
    inputs: Record<string, Float32Array | undefined>,
    initialState: Record<string, Float32Array | undefined>,
    hasParam: Set<string>,
    private readonly params: CudaBuffer,
    private readonly module: CudaModule,
  ) {
    const dev = r.device;
    const io = form.io;
    for (const t of r.plan.tensors.filter((x) => x.role === "input")) {
      const v = inputs[t.name] ? encodeIo(inputs[t.name]!, io) : undefined;
      const b = dev.alloc(v ? Math.max(16, v.byteLength) : 16);
      if (v) dev.upload(b, v);
      this.bufs.set(`input:${t.name}`, b);
    }
    for (const t of r.plan.tensors.filter((x) => x.role === "output")) this.bufs.set(`output:${t.name}`, dev.alloc(Math.max(16, Math.ceil((B * T * r.sizeOfTensor(t.name) * ioBytes(io)) / 4) * 4)));
    let total = 0;
    const states = r.plan.tensors.filter((x) => x.role === "state");
    for (const s of states) {
      this.stateOffsets.set(s.name, total);
      total += B * r.sizeOfTensor(s.name);
    }
    const host = new Float32Array(Math.max(1, total));
    for (const s of states) {
      const v = initialState[s.name];
      if (!v) continue;
      if (v.length !== B * r.sizeOfTensor(s.name)) throw new Error(`initial state '${s.name}' has ${v.length} elements, expected [${B}, ${s.axes.join(", ")}]`);
      host.set(v, this.stateOffsets.get(s.name)!);
    }
    this.initStates = dev.alloc(host.byteLength);
    dev.upload(this.initStates, host);
    this.statesBuf = dev.alloc(host.byteLength);
    for (const w of form.workspaces) this.bufs.set(`workspace:${w.name}`, dev.alloc(Math.max(4, evalSize(w.words, env) * 4)));
    for (const f of r.plan.uniforms) {
      let v = 0;
      if (f === "B") v = B;
      else if (f === "T") v = T;
      else if (f.startsWith("has_")) v = inputs[f.slice(4)] || hasParam.has(f.slice(4)) ? 1 : 0;
      else if (f.startsWith("init_")) v = initialState[f.slice(5)] ? 1 : 0;
      else if (f.startsWith("SO_")) v = this.stateOffsets.get(f.slice(3)) ?? 0;
      else v = env[f] ?? 0;
      this.uniforms.set(f, v);
    }
    void dev.synchronize();
  }

  private buffer(ref: CudaBufferRef): CudaBuffer {
    if (ref.kind === "params") return this.params;
    if (ref.kind === "states") return this.statesBuf;
    // read-only initial values, apart from the states the kernel writes (one buffer for both raced when
    // several threads hold copies of one state element: one's final write reached another's first read)
    if (ref.kind === "initialStates") return this.initStates;
    if (ref.kind === "uniforms") throw new Error("uniforms are passed by value");
    const b = this.bufs.get(`${ref.kind}:${ref.name}`);
    if (!b) throw new Error(`no buffer ${ref.kind} ${ref.name}`);
    return b;
  }

  private u32Struct(names: string[], value: (n: string) => number): KernelArg {
    const b = Buffer.alloc(Math.max(4, names.length * 4));
    names.forEach((n, i) => b.writeUInt32LE(value(n) >>> 0, i * 4));
    return { bytes: b };
  }

  /** Enqueue the whole forward (state upload, workspace clears, launches) on `stream`. */
  enqueue(stream: CudaStream, only?: (step: CudaFormPlan["steps"][number], index: number) => boolean): void {
    const dev = this.r.device;
    if (this.form.statesCopy !== false) dev.copy(this.statesBuf, this.initStates, this.initStates.bytes, stream);
    for (const [index, step] of this.form.steps.entries()) {
      if (only && !only(step, index)) continue;
      if (step.kind === "zero") {
        dev.fill32(this.buffer({ kind: "workspace", name: step.workspace }), 0, stream);
        continue;
      }
      if (step.kind === "gemm") {
        const M = evalSize(step.M, this.env);
        const N = evalSize(step.N, this.env);
        const K = evalSize(step.K, this.env);
        const fn = this.module.fn(step.entry);
        const bOff = BigInt((step.bOffset !== undefined ? evalSize(step.bOffset, this.env) : 0) * 4);
        const aOff = BigInt((step.aOffset !== undefined ? evalSize(step.aOffset, this.env) : 0) * 4);
        const lda = step.lda !== undefined ? evalSize(step.lda, this.env) : K;
        dev.launch(fn, { grid: [Math.ceil(N / 128), Math.ceil(M / 128)], block: [256], stream }, [
          { ptr: this.buffer(step.a).ptr + aOff },
          { ptr: this.buffer(step.b).ptr + bOff },
          { ptr: this.buffer(step.c).ptr },
          { u32: M },
          { u32: N },
          { u32: K },
          { u32: lda },
          { u32: K },
          { u32: N },
        ]);
        continue;
      }
      const grid = evalSize(step.grid, this.env);
      if (grid === 0) continue;
      const threads = evalSize(step.threads, this.env);
      // kernels index their threads with 32-bit integers: past 2^32 they would wrap and compute garbage
      if (grid * threads > 2 ** 32 - 1) throw new Error(`${this.r.plan.model}: kernel ${step.entry} needs ${grid * threads} threads at B=${this.B}, T=${this.T}, more than 32-bit indices reach (${2 ** 32 - 1}); use a smaller batch or smaller dims`);
      const shared = evalSize(step.sharedBytes, this.env);
      const fn = this.module.fn(step.entry);
      if (shared > 48 * 1024) fn.setMaxDynamicShared(shared);
      if (step.cooperative) {
        const fit = fn.maxActiveBlocksPerSM(threads, shared) * dev.info.multiprocessors;
        if (grid > fit) throw new Error(`${step.entry}: ${grid} cooperative blocks do not fit on ${dev.info.name} (${fit} at once)`);
      }
      const args: KernelArg[] = step.buffers.map((b) => ({ ptr: this.buffer(b).ptr }));
      args.push(this.u32Struct(step.uniforms, (n) => this.uniforms.get(n) ?? 0));
      const ovNames = Object.keys(step.overrides);
      args.push(this.u32Struct(ovNames, (n) => evalSize(step.overrides[n], this.env)));
      const gy = Math.ceil(grid / 2147483647);
      dev.launch(fn, { grid: [Math.ceil(grid / gy), gy], block: [threads], sharedBytes: shared, stream, cooperative: step.cooperative }, args);
    }
  }

  /** Read outputs and final states back (after the stream finished). */
  read(): CudaForwardResult {
    const dev = this.r.device;
    const outputs: Record<string, Float32Array> = {};
    for (const t of this.r.plan.tensors.filter((x) => x.role === "output")) {
      const n = this.B * this.T * this.r.sizeOfTensor(t.name);
      outputs[t.name] = decodeIo(dev.download(this.buffer({ kind: "output", name: t.name }), n * ioBytes(this.form.io)), this.form.io);
    }
    const finalState: Record<string, Float32Array> = {};
    const all = dev.downloadF32(this.statesBuf);
    for (const t of this.r.plan.tensors.filter((x) => x.role === "state")) {
      const o = this.stateOffsets.get(t.name)!;
      finalState[t.name] = all.slice(o, o + this.B * this.r.sizeOfTensor(t.name));
    }
    return { outputs, finalState, form: this.form.variant, batch: this.B, length: this.T };
  }

  outputBuffer(name: string): CudaBuffer {
    return this.buffer({ kind: "output", name });
  }

  /** Poison every output with NaN (so an unwritten element fails the check). */
  poison(stream?: CudaStream): void {
    for (const t of this.r.plan.tensors.filter((x) => x.role === "output")) this.r.device.fill32(this.buffer({ kind: "output", name: t.name }), nanBits(this.form.io), stream);
  }

  dispose(): void {
    const dev = this.r.device;
    for (const b of this.bufs.values()) dev.free(b);
    dev.free(this.statesBuf);
    dev.free(this.initStates);
  }
}
