/**
 * CUDA C++ renderer of the lowered kernel IR (compiler/kernel/ir.ts). One Kernel becomes one
 * `extern "C" __global__` function:
 *   - buffers           -> `float*` parameters in binding order (`const float* __restrict__` when read-only;
 *                          `const unsigned short*` for the buffers named in `bf16Reads`: bf16 words widened per load);
 *   - uniforms          -> one struct passed by value (u32 fields, in the kernel's order);
 *   - overrides         -> macros `SEQC_<name>`: compile-time constants when NVRTC is given -DSEQC_<name>=v,
 *                          otherwise read from an overrides struct passed by value (so ahead-of-time PTX
 *                          works for any dims);
 *   - shared arrays     -> slices of the dynamic `extern __shared__` block, laid out in declaration order;
 *   - builtins          -> lid = threadIdx.x, wg = flat block index.
 */
import * as K from "../../kernel/ir.ts";
import { cudaMathFn, cudaMathFn64, f32Literal, f64Literal } from "./math.ts";

const CTYPE: Record<K.KType, string> = { f32: "float", u32: "unsigned int", i32: "int", bool: "bool", vec4f: "float4" };
const ctype = (t: K.KType, cx: RenderContext): string => {
  if (t === "vec4f" && cx.real === "double") throw new Error("vec4 loads are float only (no double kernels)");
  return t === "f32" && cx.real === "double" ? "double" : CTYPE[t];
};

/** Builtin thread coordinates understood by the renderer. */
const BUILTINS: Record<string, string> = {
  lid: "seqc_lid",
  wg: "seqc_wg",
  num_wg: "seqc_num_wg",
  wg_size: "seqc_wg_size",
};

export interface RenderContext {
  overrides: Set<string>;
  uniforms: Set<string>;
  /** Floating-point type of f32 values: "float" (default) or "double" (the float64 kernels of the torch target, for gradcheck). */
  real?: "float" | "double";
  /** Read-only buffers holding bf16 values (raw 16-bit words): each load widened to f32 in registers (renderKernel's `bf16Reads`). */
  bf16?: Set<string>;
  /** Written buffers holding bf16 values (raw 16-bit words): each store rounded from f32 to nearest even (renderKernel's
   *  `bf16Writes`); never loaded. */
  bf16Out?: Set<string>;
  /** Math functions rendered by another name (e.g. sigmoid -> seqc_sigmoid_sel: the batch cell's branch-free twin, bitwise the same values). */
  fns?: Readonly<Record<string, string>>;
}

/** bf16 (a raw 16-bit word) -> f32, exact: the word is the float's upper half. Guarded: one definition per translation unit. */
export const BF16_LOAD = `#ifndef SEQC_BF16_LOAD_DEFINED
#define SEQC_BF16_LOAD_DEFINED
__device__ __forceinline__ float seqc_bf16_load(unsigned short x) { return __uint_as_float(((unsigned int)x) << 16); }
#endif`;

/** f32 -> bf16 (a raw 16-bit word), rounded to nearest even, NaN kept a (quiet) NaN: torch's float -> bfloat16
 * conversion (c10 round_to_nearest_even), so a kernel's bf16 store equals its float32 store converted afterwards. */
export const BF16_STORE = `#ifndef SEQC_BF16_STORE_DEFINED
#define SEQC_BF16_STORE_DEFINED
__device__ __forceinline__ unsigned short seqc_bf16_store(float f) {
  const unsigned int x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)0x7fc0u;
  return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
#endif`;

export const overrideMacro = (name: string): string => `SEQC_${name}`;
export const uniformStruct = (kernel: string): string => `SeqcUniforms_${kernel}`;
export const overrideStruct = (kernel: string): string => `SeqcOverrides_${kernel}`;

export function renderExpr(e: K.KExpr, cx: RenderContext): string {
  const r = (x: K.KExpr) => renderExpr(x, cx);
  switch (e.k) {
    case "f32":
      return cx.real === "double" ? f64Literal(e.v) : f32Literal(e.v);
    case "u32":
      return `${e.v >>> 0}u`;
    case "bool":
      return e.v ? "true" : "false";
    case "inf":
      return "SEQC_INF";
    case "ref":
      if (cx.overrides.has(e.name)) return overrideMacro(e.name);
      if (BUILTINS[e.name]) return BUILTINS[e.name];
      return e.name;
    case "uniform":
      return `u.${e.name}`;
    case "load":
      if (cx.bf16Out?.has(e.array)) throw new Error(`buffer ${e.array} is written as bf16: it is not read back`);
      return cx.bf16?.has(e.array) ? `seqc_bf16_load(${e.array}[${r(e.index)}])` : `${e.array}[${r(e.index)}]`;
    case "load4":
      // 16-byte aligned: the array's base is (cudaMalloc, 256 bytes) and the index counts float4s
      if (cx.bf16?.has(e.array) || cx.bf16Out?.has(e.array)) throw new Error(`buffer ${e.array} holds bf16: no float4 loads`);
      ctype("vec4f", cx);
      return `reinterpret_cast<const float4*>(${e.array})[${r(e.index)}]`;
    case "lane":
      return `${r(e.a)}.${"xyzw"[e.i]}`;
    case "bin": {
      if (e.op === "min" || e.op === "max") {
        const t = K.typeOf(e.a);
        return t === "f32" ? `${cx.real === "double" ? cudaMathFn64(e.op) : cudaMathFn(e.op)}(${r(e.a)}, ${r(e.b)})` : `${e.op}(${r(e.a)}, ${r(e.b)})`;
      }
      return `(${r(e.a)} ${e.op} ${r(e.b)})`;
    }
    case "neg":
      return `(-${r(e.a)})`;
    case "not":
      return `(!${r(e.a)})`;
    case "call":
      if (e.fn === "select") return `(${r(e.args[0])} != 0.f ? ${r(e.args[1])} : ${r(e.args[2])})`;
      return `${cx.fns?.[e.fn] ?? (cx.real === "double" ? cudaMathFn64(e.fn) : cudaMathFn(e.fn))}(${e.args.map(r).join(", ")})`;
    case "cast":
      return `((${ctype(e.to, cx)})(${r(e.a)}))`;
    case "select":
      return `(${r(e.cond)} ? ${r(e.then)} : ${r(e.else)})`;
  }
}

export function renderStmts(body: K.KStmt[], cx: RenderContext, indent: string): string[] {
  const out: string[] = [];
  const r = (x: K.KExpr) => renderExpr(x, cx);
  for (const s of body) {
    switch (s.k) {
      case "decl":
        out.push(`${indent}${s.mutable ? "" : "const "}${ctype(s.t, cx)} ${s.name}${s.init ? ` = ${r(s.init)}` : s.mutable ? " = 0" : ""};`);
        break;
      case "set":
        out.push(`${indent}${s.name} = ${r(s.value)};`);
        break;
      case "store":
        out.push(cx.bf16Out?.has(s.array) ? `${indent}${s.array}[${r(s.index)}] = seqc_bf16_store(${r(s.value)});` : `${indent}${s.array}[${r(s.index)}] = ${r(s.value)};`);
        break;
      case "for": {
        const t = ctype(K.typeOf(s.from), cx) ?? "unsigned int";
        out.push(`${indent}for (${t} ${s.v} = ${r(s.from)}; ${s.v} < ${r(s.to)}; ${s.v} += ${r(s.step)}) {`);
        out.push(...renderStmts(s.body, cx, indent + "  "));
        out.push(`${indent}}`);
        break;
      }
      case "if":
        out.push(`${indent}if (${r(s.cond)}) {`);
        out.push(...renderStmts(s.then, cx, indent + "  "));
        if (s.else?.length) {
          out.push(`${indent}} else {`);
          out.push(...renderStmts(s.else, cx, indent + "  "));
        }
        out.push(`${indent}}`);
        break;
      case "barrier":
        out.push(`${indent}__syncthreads();`);
        break;
      case "return":
        out.push(`${indent}return;`);
        break;
      case "comment":
        out.push(`${indent}// ${s.text.replace(/\n/g, " ")}`);
        break;
    }
  }
  return out;
}

/** Which buffers a kernel writes (a `read` buffer that is stored to is a lowering bug). */
function writtenArrays(k: K.Kernel): Set<string> {
  const w = new Set<string>();
  K.walkKStmts(k.body, (s) => {
    if (s.k === "store") w.add(s.array);
  });
  return w;
}

/**
 * Render one kernel: its uniform and override structs, then the __global__ function. With
 * `real: "double"` every f32 value, buffer and shared array is a double (the plan's sharedBytes and
 * workspace words then count 8 bytes per element; runtime/torch/seqc_cuda.py doubles them).
 */
export function renderKernel(k: K.Kernel, opts: { real?: "float" | "double"; bf16Reads?: ReadonlySet<string>; bf16Writes?: ReadonlySet<string>; fns?: Readonly<Record<string, string>> } = {}): string {
  const bf16 = opts.bf16Reads?.size ? new Set(opts.bf16Reads) : undefined;
  const bf16Out = opts.bf16Writes?.size ? new Set(opts.bf16Writes) : undefined;
  const cx: RenderContext = { overrides: new Set(k.overrides.map((o) => o.name)), uniforms: new Set(k.uniforms), real: opts.real, ...(bf16 ? { bf16 } : {}), ...(bf16Out ? { bf16Out } : {}), ...(opts.fns ? { fns: opts.fns } : {}) };
  const real = opts.real ?? "float";
  const written = writtenArrays(k);
  for (const b of k.buffers) if (b.access === "read" && written.has(b.name)) throw new Error(`kernel ${k.name}: buffer ${b.name} is read-only but stored to`);
  for (const n of bf16 ?? []) {
    const b = k.buffers.find((x) => x.name === n);
    if (!b || b.access !== "read") throw new Error(`kernel ${k.name}: bf16 buffer ${n} is not a read-only buffer of it`);
    if (real !== "float") throw new Error(`kernel ${k.name}: bf16 reads are for float kernels`);
  }
  for (const n of bf16Out ?? []) {
    const b = k.buffers.find((x) => x.name === n);
    if (!b || b.access === "read" || !written.has(n)) throw new Error(`kernel ${k.name}: bf16 output ${n} is not a buffer it stores to`);
    if (real !== "float") throw new Error(`kernel ${k.name}: bf16 writes are for float kernels`);
  }
  const lines: string[] = [];
  const us = uniformStruct(k.name);
  const os = overrideStruct(k.name);
  lines.push(`struct ${us} { ${k.uniforms.map((u) => `unsigned int ${u};`).join(" ") || "unsigned int _unused;"} };`);
  lines.push(`struct ${os} { ${k.overrides.map((o) => `unsigned int ${o.name};`).join(" ") || "unsigned int _unused;"} };`);
  const buffers = [...k.buffers].sort((a, b) => a.binding - b.binding);
  const params = [
    ...buffers.map((b) => (b.access === "read" ? `const ${bf16?.has(b.name) ? "unsigned short" : real}* __restrict__ ${b.name}` : `${bf16Out?.has(b.name) ? "unsigned short" : real}* __restrict__ ${b.name}`)),
    `const ${us} u`,
    `const ${os} ov`,
  ];
  if (bf16) lines.push(BF16_LOAD);
  if (bf16Out) lines.push(BF16_STORE);
  lines.push(`extern "C" __global__ void ${k.name}(${params.join(", ")}) {`);
  // Overrides: compile-time when defined (NVRTC specialisation), else from the struct.
  for (const o of k.overrides) {
    const m = overrideMacro(o.name);
    lines.push(`#ifndef ${m}_CONST`);
    lines.push(`  const unsigned int ${m} = ov.${o.name};`);
    lines.push(`#else`);
    lines.push(`  constexpr unsigned int ${m} = ${m}_CONST;`);
    lines.push(`#endif`);
  }
  lines.push(`  const unsigned int seqc_lid = threadIdx.x;`);
  lines.push(`  const unsigned int seqc_wg = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);`);
  lines.push(`  const unsigned int seqc_num_wg = gridDim.x * gridDim.y * gridDim.z;`);
  lines.push(`  const unsigned int seqc_wg_size = blockDim.x;`);
  lines.push(`  (void)seqc_lid; (void)seqc_wg; (void)seqc_num_wg; (void)seqc_wg_size; (void)u; (void)ov;`);
  if (k.shared.length) {
    lines.push(`  extern __shared__ ${real} seqc_smem[];`);
    let off = "0u";
    for (const s of k.shared) {
      lines.push(`  ${real}* ${s.name} = seqc_smem + ${off};`);
      off = `${off} + (${renderExpr(s.length, cx)})`;
    }
  }
  lines.push(...renderStmts(k.body, cx, "  "));
  lines.push(`}`);
  return lines.join("\n");
}
