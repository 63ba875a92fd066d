/**
 * Gradients through the backward model (compiler/grad/backward.ts: the adjoint recurrence as another
 * model, run over the reversed sequence), on any runner: the float64 interpreter, WebGPU, CUDA.
 *
 * The forward keeps what the backward needs in a `Saved` handle, by one of two memory policies:
 *   store      the state before every step (the recording forward: one extra output per state),
 *              B x T x states floats; the backward runs once over the whole sequence;
 *   recompute  the state at the start of every segment of C steps (checkpoints), B x T/C x states;
 *              the backward walks the segments from the last, re-running the recording forward of
 *              each from its checkpoint (B x C x states at a time): one more forward in all.
 * `auto` stores while that fits the budget and otherwise recomputes with C = ceil(sqrt(T)), which
 * minimises checkpoints + one segment. Param adjoints are backward states (summed over the batch at
 * the end), carried from segment to segment like the state adjoints.
 */

export type FloatArray = Float32Array | Float64Array;
export type Tensors = Record<string, FloatArray>;

/** Names of the backward model's tensors, per forward tensor (what compiler/grad/backward.ts's Backward carries besides its model). */
export interface AdjointNames {
  /** How the param adjoints come out: final backward states [B, ...shape] (sum over B) or per-step outputs [B, T, ...shape] (sum over B and T). */
  paramAdjoints: "state" | "output";
  /** forward input/param/state name -> backward tensor names */
  inputBar: Record<string, string>;
  paramBar: Record<string, string>;
  stateBar: Record<string, string>;
  statePrev: Record<string, string>;
  outputBar: Record<string, string>;
}

/** The adjoint names plus what the training loop binds around the backward model. */
export interface GradNames extends AdjointNames {
  /** Output of the recording forward holding each state before each step. */
  record: Record<string, string>;
  /** Inputs of the backward model packed into one (compiler/grad/pack.ts): pack[b, t, k, ...] = members[k][b, t, ...]. */
  packs?: { name: string; members: string[] }[];
  /**
   * Param adjoints computed outside the recurrence (compiler/grad/split.ts): per param, a model whose
   * state `bar` sums over the steps what it reads, input name -> the per-step array of the backward run
   * it takes (an unpacked input of the backward model or one of its outputs). Absent: param adjoints are
   * states (or outputs) of the backward model itself.
   */
  passes?: ParamPassNames[];
  /**
   * Input adjoints computed outside the recurrence (compiler/grad/split.ts): per input, a model without state
   * whose output `bar` is the input's adjoint at every step, reading (as `reads` says) what the backward run
   * read and wrote; it runs over the same [B, T] (reversed) as the core. Its runner is `passes[input]`.
   */
  inputPasses?: InputPassNames[];
}

export interface InputPassNames {
  input: string;
  bar: string;
  reads: Record<string, string>;
}

export interface ParamPassNames {
  param: string;
  bar: string;
  reads: Record<string, string>;
  /** The adjoint is the pass input of this name (a key of `reads`) summed over batch and steps: a reduction, no pass run (compiler/grad/split.ts passShapes). */
  sum?: string;
  /** The adjoint equals this (earlier) param's: the same sum, computed once and copied. */
  sameAs?: string;
}

/**
 * Steps per param-adjoint pass run when time is folded into the batch (a pass only sums over the steps,
 * so [B, T] runs as [B T / C, C] and the final states are summed): the fewest steps C (C divides T)
 * whose B T / C rows of partial sums of `elems` floats stay within `budget` elements.
 */
export function passFold(B: number, T: number, elems: number, budget = 2 ** 24): number {
  for (let C = 1; C < T; C++) if (T % C === 0 && B * (T / C) * elems <= budget) return C;
  return T;
}

/** The forward model's tensors with their per-step element counts (dims bound). */
export interface GradSpec {
  model: string;
  inputs: { name: string; size: number }[];
  params: { name: string; size: number }[];
  states: { name: string; size: number }[];
  outputs: { name: string; size: number }[];
  names: GradNames;
  /** Allocates the arrays gradients are returned in (Float32Array on devices, Float64Array for the reference). */
  alloc: (n: number) => FloatArray;
}

export type RunFn = (inputs: Tensors, initialState: Tensors, batch: number, length: number) => Promise<{ outputs: Tensors; finalState: Tensors }>;

/** The runs: the plain forward, the recording forward, the backward model and its param and input passes by param / input name (params bound in each). */
export interface GradRunners {
  forward: RunFn;
  record: RunFn;
  backward: RunFn;
  passes?: Record<string, RunFn>;
}

export type MemoryChoice = "auto" | "store" | "recompute" | { every: number };

export interface MemoryPlan {
  policy: "store" | "recompute";
  /** Steps per segment (T when storing). */
  every: number;
  /** Bytes of saved states (4-byte elements). */
  bytes: number;
  why: string;
}

/** Default budget for stored states: 512 MiB. */
export const SAVED_STATE_BUDGET = 512 * 2 ** 20;

/** The memory policy for a forward of batch B and length T whose states hold `stateFloats` floats per batch row. */
export function planMemory(B: number, T: number, stateFloats: number, choice: MemoryChoice = "auto", budgetBytes = SAVED_STATE_BUDGET): MemoryPlan {
  const row = 4 * B * stateFloats;
  const store: MemoryPlan = { policy: "store", every: T, bytes: row * T, why: "" };
  const recompute = (every: number): MemoryPlan => {
    if (!Number.isInteger(every) || every < 1) throw new Error(`memory: every must be a positive integer number of steps, got ${every}`);
    const C = Math.min(every, T);
    return { policy: "recompute", every: C, bytes: row * (Math.ceil(T / C) + C), why: "" };
  };
  if (choice === "store") return { ...store, why: "asked for" };
  if (typeof choice === "object" && choice !== null) return { ...recompute(choice.every), why: "asked for" };
  const sqrt = recompute(Math.max(1, Math.ceil(Math.sqrt(T))));
  if (choice === "recompute") return { ...sqrt, why: "asked for" };
  if (choice !== "auto") throw new Error(`memory must be 'auto', 'store', 'recompute' or { every: steps }, got ${JSON.stringify(choice)}`);
  if (store.bytes <= budgetBytes) return { ...store, why: `${store.bytes} bytes of states per step fit the budget of ${budgetBytes}` };
  return { ...sqrt, why: `storing every step needs ${store.bytes} bytes, over the budget of ${budgetBytes}; checkpoints every ${sqrt.every} steps need ${sqrt.bytes} and one more forward` };
}

/** What a forward kept for its backward. Valid for one backward() (then released). */
export interface Saved {
  readonly model: string;
  readonly batch: number;
  readonly length: number;
  readonly memory: MemoryPlan;
  /** @internal */ inputs: Tensors;
  /** @internal */ initialState: Tensors;
  /** @internal store: each state before each step, [B, T, ...shape]. */
  recs?: Tensors;
  /** @internal recompute: the state at the start of each segment. */
  checkpoints?: Tensors[];
  /** @internal */ released: boolean;
  /** Which backward this handle is for: "step" (the adjoint recurrence; default) or "chunked" (the chunked backward chain: nothing stored, the core recomputed from inputs and initial state). */
  readonly backward?: "step" | "chunked";
}

export interface Cotangents {
  /** dL/d(output), [B, T, ...shape] per output (absent: 0). */
  outputs?: Record<string, FloatArray | undefined>;
  /** dL/d(final state), [B, ...shape] per state (absent: 0). */
  finalState?: Record<string, FloatArray | undefined>;
}

export interface Gradients<A extends FloatArray = FloatArray> {
  inputs: Record<string, A>;
  params: Record<string, A>;
  initialState: Record<string, A>;
}

/** Rows [t0, t1) of every [B, T, n] array. */
export function sliceTime(x: Tensors, sizes: Map<string, number>, B: number, T: number, t0: number, t1: number): Tensors {
  if (t0 === 0 && t1 === T) return x;
  const out: Tensors = {};
  for (const [k, a] of Object.entries(x)) {
    const n = sizes.get(k)!;
    const s = new (a.constructor as new (n: number) => FloatArray)(B * (t1 - t0) * n);
    for (let b = 0; b < B; b++) s.set(a.subarray((b * T + t0) * n, (b * T + t1) * n), b * (t1 - t0) * n);
    out[k] = s;
  }
  return out;
}

/** Interleave each pack's members per step: pack[b, t, k, ...] = members[k][b, t, ...]; the members leave `x`. */
export function packSteps(x: Tensors, packs: { name: string; members: string[] }[], sizes: Map<string, number>, B: number, T: number): Tensors {
  if (!packs.length) return x;
  const out: Tensors = { ...x };
  for (const p of packs) {
    const n = sizes.get(p.members[0])!;
    const m = p.members.length;
    const first = x[p.members[0]];
    const pk = new (first.constructor as new (n: number) => FloatArray)(B * T * m * n);
    p.members.forEach((name, k) => {
      const a = x[name];
      if (!a) throw new Error(`packed input '${name}' is missing`);
      for (let r = 0; r < B * T; r++) pk.set(a.subarray(r * n, (r + 1) * n), (r * m + k) * n);
      delete out[name];
    });
    out[p.name] = pk;
  }
  return out;
}

/** Reverse the time axis of a [B, T, ...] array with `inner` elements per step. */
export function reverseTime<A extends FloatArray>(a: A, B: number, T: number, inner: number): A {
  const out = new (a.constructor as new (n: number) => A)(a.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out.set(a.subarray((b * T + t) * inner, (b * T + t + 1) * inner), (b * T + (T - 1 - t)) * inner);
  return out;
}

function check(spec: GradSpec, what: string, x: FloatArray | undefined, want: number): void {
  if (x === undefined) return;
  if (!(x instanceof Float32Array || x instanceof Float64Array)) throw new Error(`${spec.model}: ${what} must be a Float32Array, got ${Object.prototype.toString.call(x)}`);
  if (x.length !== want) throw new Error(`${spec.model}: ${what} has ${x.length} elements, expected ${want}`);
}

/** Run the forward and keep what the backward needs. */
export async function forwardSaving(spec: GradSpec, run: GradRunners, inputs: Tensors, initialState: Tensors, B: number, T: number, memory: MemoryPlan): Promise<{ outputs: Tensors; finalState: Tensors; saved: Saved }> {
  const saved: Saved = { model: spec.model, batch: B, length: T, memory, inputs, initialState, released: false };
  const recNames = new Set(Object.values(spec.names.record));
  if (memory.policy === "store") {
    const r = await run.record(inputs, initialState, B, T);
    saved.recs = {};
    const outputs: Tensors = {};
    for (const [k, v] of Object.entries(r.outputs)) (recNames.has(k) ? saved.recs : outputs)[k] = v;
    return { outputs, finalState: r.finalState, saved };
  }
  const sizes = new Map(spec.inputs.map((t) => [t.name, t.size]));
  const outputs: Tensors = {};
  for (const o of spec.outputs) outputs[o.name] = spec.alloc(B * T * o.size);
  saved.checkpoints = [];
  let state = initialState;
  for (let t0 = 0; t0 < T; t0 += memory.every) {
    const t1 = Math.min(T, t0 + memory.every);
    saved.checkpoints.push(state);
    const r = await run.forward(sliceTime(inputs, sizes, B, T, t0, t1), state, B, t1 - t0);
    for (const o of spec.outputs) {
      const src = r.outputs[o.name];
      for (let b = 0; b < B; b++) outputs[o.name].set(src.subarray(b * (t1 - t0) * o.size, (b + 1) * (t1 - t0) * o.size), (b * T + t0) * o.size);
    }
    state = r.finalState;
  }
  return { outputs, finalState: state, saved };
}

/** Cotangents name outputs and states of the model and have their sizes. */
export function checkCotangents(spec: GradSpec, B: number, T: number, cot: Cotangents): void {
  for (const k of Object.keys(cot.outputs ?? {})) if (!spec.outputs.some((o) => o.name === k)) throw new Error(`${spec.model} has no output '${k}'; its outputs are ${spec.outputs.map((o) => o.name).join(", ")}`);
  for (const k of Object.keys(cot.finalState ?? {})) if (!spec.states.some((o) => o.name === k)) throw new Error(`${spec.model} has no state '${k}'; its states are ${spec.states.map((o) => o.name).join(", ") || "(none)"}`);
  for (const o of spec.outputs) check(spec, `gradient of output '${o.name}' [B=${B}, T=${T}, ${o.size}]`, cot.outputs?.[o.name], B * T * o.size);
  for (const s of spec.states) check(spec, `gradient of final state '${s.name}' [B=${B}, ${s.size}]`, cot.finalState?.[s.name], B * s.size);
}

/** A saved handle is of this model and not used yet. */
export function checkSaved(spec: GradSpec, saved: Saved): void {
  if (saved.released) throw new Error(`${spec.model}: this forward's saved values were already used by a backward() (run forward with saveForBackward again)`);
  if (saved.model !== spec.model) throw new Error(`${spec.model}: the saved handle is of ${saved.model}`);
}

/** Gradients of the loss whose cotangents are `cot`, from a forward's saved handle (released after). */
export async function backwardFrom(spec: GradSpec, run: GradRunners, saved: Saved, cot: Cotangents = {}): Promise<Gradients> {
  checkSaved(spec, saved);
  const { batch: B, length: T } = saved;
  const N = spec.names;
  checkCotangents(spec, B, T, cot);
  const inSizes = new Map(spec.inputs.map((t) => [t.name, t.size]));
  const outSizes = new Map(spec.outputs.map((t) => [t.name, t.size]));
  const recSizes = new Map(spec.states.map((s) => [N.record[s.name], s.size]));
  const grads: Gradients = { inputs: {}, params: {}, initialState: {} };
  for (const t of spec.inputs) if (saved.inputs[t.name]) grads.inputs[t.name] = spec.alloc(B * T * t.size);
  let bars: Tensors = {};
  for (const s of spec.states) bars[N.stateBar[s.name]] = cot.finalState?.[s.name] ?? spec.alloc(B * s.size);
  const paramSums: Tensors = {};
  const passes = N.passes ?? [];
  const inPass = new Set(passes.map((p) => p.param));
  for (const p of spec.params) {
    if (N.paramAdjoints === "state" && !inPass.has(p.name)) bars[N.paramBar[p.name]] = spec.alloc(B * p.size);
    else paramSums[p.name] = spec.alloc(p.size);
  }
  if (passes.length && !run.passes) throw new Error(`${spec.model}: its backward computes param adjoints in passes, and no runner was given for them`);
  const every = saved.memory.policy === "store" ? T : saved.memory.every;
  const segments: [number, number][] = [];
  for (let t0 = 0; t0 < T; t0 += every) segments.push([t0, Math.min(T, t0 + every)]);
  for (let k = segments.length - 1; k >= 0; k--) {
    const [t0, t1] = segments[k];
    const L = t1 - t0;
    const ins = sliceTime(saved.inputs, inSizes, B, T, t0, t1);
    let recs: Tensors;
    if (saved.recs) recs = sliceTime(saved.recs, recSizes, B, T, t0, t1);
    else {
      const r = await run.record(ins, saved.checkpoints![k], B, L);
      recs = {};
      for (const s of spec.states) recs[N.record[s.name]] = r.outputs[N.record[s.name]];
    }
    const bw: Tensors = {};
    for (const t of spec.inputs) if (ins[t.name]) bw[t.name] = reverseTime(ins[t.name], B, L, t.size);
    for (const s of spec.states) bw[N.statePrev[s.name]] = reverseTime(recs[N.record[s.name]], B, L, s.size);
    const cotOut = sliceTime(Object.fromEntries(spec.outputs.map((o) => [o.name, cot.outputs?.[o.name] ?? spec.alloc(B * T * o.size)])), outSizes, B, T, t0, t1);
    for (const o of spec.outputs) bw[N.outputBar[o.name]] = reverseTime(cotOut[o.name], B, L, o.size);
    const bwSizes = new Map<string, number>([...spec.inputs.map((t) => [t.name, t.size] as const), ...spec.states.map((t) => [N.statePrev[t.name], t.size] as const), ...spec.outputs.map((t) => [N.outputBar[t.name], t.size] as const)]);
    const r = await run.backward(packSteps(bw, N.packs ?? [], bwSizes, B, L), bars, B, L);
    const passInputs = (reads: Record<string, string>) => {
      const ins: Tensors = {};
      for (const [name, from] of Object.entries(reads)) {
        const a = bw[from] ?? r.outputs[from];
        if (a) ins[name] = a;
      }
      return ins;
    };
    // input adjoints outside the recurrence: every step at once, over the same reversed [B, L]
    const inputBars: Tensors = {};
    for (const p of N.inputPasses ?? []) {
      if (!grads.inputs[p.input]) continue;
      const pass = run.passes?.[p.input];
      if (!pass) throw new Error(`${spec.model}: its backward computes the adjoint of input '${p.input}' in a pass, and no runner was given for it`);
      inputBars[p.bar] = (await pass(passInputs(p.reads), {}, B, L)).outputs[p.bar];
    }
    // param adjoints outside the recurrence: sums over the steps of what the core read and wrote,
    // time folded into the batch (any order sums the same)
    for (const p of passes) {
      if (p.sameAs) continue; // copied from its twin after the last segment
      const ins = passInputs(p.reads);
      const size = spec.params.find((x) => x.name === p.param)!.size;
      const sum = paramSums[p.param];
      if (p.sum) {
        const v = ins[p.sum];
        if (!v) throw new Error(`${spec.model}: the adjoint of param '${p.param}' sums '${p.reads[p.sum]}', which the backward run did not produce`);
        for (let i = 0; i < v.length; i++) sum[i % size] += v[i];
        continue;
      }
      const C = passFold(B, L, size);
      const fin = (await run.passes![p.param](ins, {}, B * (L / C), C)).finalState[p.bar];
      for (let i = 0; i < fin.length; i++) sum[i % size] += fin[i];
    }
    for (const t of spec.inputs) {
      const g = grads.inputs[t.name];
      if (!g) continue;
      const seg = reverseTime(inputBars[N.inputBar[t.name]] ?? r.outputs[N.inputBar[t.name]], B, L, t.size);
      for (let b = 0; b < B; b++) g.set(seg.subarray(b * L * t.size, (b + 1) * L * t.size), (b * T + t0) * t.size);
    }
    for (const p of spec.params) {
      if (N.paramAdjoints === "state") continue;
      if (inPass.has(p.name)) continue;
      const per = r.outputs[N.paramBar[p.name]];
      const sum = paramSums[p.name];
      for (let i = 0; i < per.length; i++) sum[i % p.size] += per[i];
    }
    bars = r.finalState;
  }
  for (const s of spec.states) grads.initialState[s.name] = bars[N.stateBar[s.name]];
  for (const p of passes) if (p.sameAs) paramSums[p.param].set(paramSums[p.sameAs]);
  for (const p of spec.params) {
    if (N.paramAdjoints === "output" || inPass.has(p.name)) {
      grads.params[p.name] = paramSums[p.name];
      continue;
    }
    const per = bars[N.paramBar[p.name]];
    const sum = spec.alloc(p.size);
    for (let i = 0; i < per.length; i++) sum[i % p.size] += per[i];
    grads.params[p.name] = sum;
  }
  saved.released = true;
  saved.recs = undefined;
  saved.checkpoints = undefined;
  return grads;
}
