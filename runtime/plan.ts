/**
 * The launch plan: what the compiler hands the runtime for one model. Pure data (JSON), so a
 * generated module carries it without any compiler code: which kernels to run in what order,
 * how many workgroups, which buffers to bind, and the pipeline-overridable constants, all as
 * small integer expressions over the dims, the batch size B and the length T.
 */

/** Integer size expression: a literal, a variable (a dim, B, T, LIMIT_*, or an earlier plan var) or an operation. */
export type SizeExpr = number | string | [SizeOp, ...SizeExpr[]];
export type SizeOp = "+" | "-" | "*" | "/" | "ceilDiv" | "min" | "max" | "pow2floor" | "pow2ceil" | ">=" | "select";

export type TensorRole = "input" | "param" | "state" | "output";

export interface TensorSpec {
  name: string;
  role: TensorRole;
  /** Per-step shape: dims or literals; inputs/outputs add [B, T] in front, states add [B]. */
  shape: SizeExpr[];
  /** Per-axis dim names (for error messages and typed shapes); a literal axis has its number. */
  axes: (string | number)[];
  /** Optional input or param (has a default computed in the kernel). */
  optional?: boolean;
}

/** A buffer the runtime binds: a tensor (input/output by name), the packed params or states, scratch, or the uniforms. */
export type BufferRef =
  | { kind: "input"; name: string }
  | { kind: "output"; name: string }
  | { kind: "params" }
  | { kind: "states" }
  /** Initial states (same layout as states), read-only. */
  | { kind: "initialStates" }
  | { kind: "scratch"; name: string }
  | { kind: "uniforms" };

export interface Binding {
  binding: number;
  buffer: BufferRef;
  access: "read" | "read_write" | "uniform";
}

export interface KernelLaunch {
  name: string;
  /** Key into ModelPlan.shaders. */
  shader: string;
  entry: string;
  /** Pipeline-overridable constants (WGSL `override`), evaluated once per create(). */
  overrides: Record<string, SizeExpr>;
  /** Total workgroups (the runtime spreads them over x/y/z when over the per-dimension limit). */
  workgroups: SizeExpr;
  /** Workgroup memory this launch uses, in bytes (checked against the device limit). */
  sharedBytes: SizeExpr;
  /** Threads per workgroup (checked against the device limit). */
  threads: SizeExpr;
  bindings: Binding[];
  /**
   * Dispatch this kernel `count` times back to back in one compute pass (each dispatch sees the
   * previous one's writes); dispatch i reads i as the u32 uniform at `binding` (bound at a dynamic
   * offset per dispatch). Absent: once.
   */
  steps?: { count: SizeExpr; binding: number };
  /**
   * Dispatch this kernel once per block of steps (see FormPlan.blockSteps); it reads the block's
   * first step, its end and the steps per block as the uniform at `binding` (a slot per block, bound
   * at a dynamic offset: fields t = t0, t0, t1, tc). Absent (and no `steps`): once, before the blocks.
   */
  block?: { binding: number };
}

export interface FormPlan {
  /** `sequential`, `scan` or `chunked`; `variant` tells apart the kernels of one form. */
  form: "sequential" | "scan" | "chunked";
  variant: string;
  /** When this variant can run for a shape: a SizeExpr that must be non-zero (e.g. the shared memory fits). */
  applicable?: SizeExpr;
  /** Derived integers evaluated in order (after dims, B, T and the LIMIT_* device limits). */
  vars: [string, SizeExpr][];
  /**
   * Steps per block (TC, evaluated after `vars`; 1..T): the kernels with `steps` or `block` run block
   * after block of TC steps (the last one may be shorter), each block's `block` kernels and then its
   * step kernels in plan order; the kernels with neither run once, before the first block. Absent:
   * one block of T steps. A `steps` kernel's uniform slot for step i holds (i, t0, t1, TC) of its block.
   */
  blockSteps?: SizeExpr;
  /** Scratch buffers in f32 elements. */
  scratch: { name: string; floats: SizeExpr }[];
  kernels: KernelLaunch[];
  /**
   * Cost-model inputs: global memory bytes moved, serial work units per thread, threads in flight;
   * `syncs`: dependent rounds per thread (a step's loads, a barrier), costing `syncNs` each, while a
   * unit of serial work costs `workNs` (nanoseconds, calibrated per variant).
   */
  cost: { bytes: SizeExpr; serialSteps: SizeExpr; threads: SizeExpr; flops: SizeExpr; syncs?: SizeExpr; syncNs?: number; workNs?: number };
}

export interface ModelPlan {
  model: string;
  /** Declared dims; fixed ones carry their value; `sequenceDefault` ones follow the call's T unless given. */
  dims: { name: string; fixed?: number; sequenceDefault?: boolean }[];
  tensors: TensorSpec[];
  /** Names of the u32 fields of the uniform block, in order (B, T, has_<tensor>, init_<state>). */
  uniforms: string[];
  /** WGSL source of every shader, by key. */
  shaders: Record<string, string>;
  forms: FormPlan[];
}

export type Env = Record<string, number>;

/** Evaluate a size expression; throws on an unknown name. */
export function evalSize(e: SizeExpr, env: Env): number {
  if (typeof e === "number") return e;
  if (typeof e === "string") {
    const v = env[e];
    if (v === undefined) throw new Error(`size variable '${e}' is not bound`);
    return v;
  }
  const [op, ...args] = e;
  const v = args.map((a) => evalSize(a, env));
  switch (op) {
    case "+": return v.reduce((a, b) => a + b, 0);
    case "*": return v.reduce((a, b) => a * b, 1);
    case "-": return v[0] - v[1];
    case "/": return Math.floor(v[0] / v[1]);
    case "ceilDiv": return Math.ceil(v[0] / v[1]);
    case "min": return Math.min(...v);
    case "max": return Math.max(...v);
    case "pow2floor": return v[0] < 1 ? 0 : 2 ** Math.floor(Math.log2(v[0]));
    case "pow2ceil": return v[0] <= 1 ? 1 : 2 ** Math.ceil(Math.log2(v[0]));
    case ">=": return v[0] >= v[1] ? 1 : 0;
    case "select": return v[0] !== 0 ? v[1] : v[2];
  }
  throw new Error(`unknown size operation '${String(op)}'`);
}

/** Evaluate a form's vars on top of `base` (dims, B, T, limits). */
export function formEnv(form: FormPlan, base: Env): Env {
  const env: Env = { ...base };
  for (const [name, e] of form.vars) env[name] = evalSize(e, env);
  return env;
}
