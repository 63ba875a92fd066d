/**
 * CUDA spellings of the language's math functions (compiler/ir/builtins.ts) in fp32, plus the device
 * helpers they need. The helpers are numerically stable versions (softplus, sigmoid, logsigmoid) that match
 * the float64 interpreter's definitions, so fp32 results stay within ~1e-6 relative of the oracle.
 */

/** Helpers prepended to every generated .cu file (no includes: NVRTC and nvcc both accept it as is). */
export const CUDA_PRELUDE = `// ---- seqc device helpers (fp32) ----
#define SEQC_INF __int_as_float(0x7f800000)
__device__ __forceinline__ float seqc_sigmoid(float x) { return x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x)); }
__device__ __forceinline__ float seqc_softplus(float x) { return fmaxf(x, 0.f) + log1pf(expf(-fabsf(x))); }
__device__ __forceinline__ float seqc_logsigmoid(float x) { return -seqc_softplus(-x); }
__device__ __forceinline__ float seqc_silu(float x) { return x * seqc_sigmoid(x); }
__device__ __forceinline__ float seqc_relu(float x) { return fmaxf(x, 0.f); }
__device__ __forceinline__ float seqc_rsqrt(float x) { return 1.f / sqrtf(x); }
__device__ __forceinline__ float seqc_max(float a, float b) { return (a != a || b != b) ? a + b : fmaxf(a, b); }
__device__ __forceinline__ float seqc_min(float a, float b) { return (a != a || b != b) ? a + b : fminf(a, b); }
`;

/** name -> CUDA function, for one- and two-argument math. `select` is rendered as ?: by the callers. */
export const CUDA_MATH: Record<string, string> = {
  exp: "expf",
  exp2: "exp2f",
  log: "logf",
  log2: "log2f",
  log1p: "log1pf",
  expm1: "expm1f",
  sigmoid: "seqc_sigmoid",
  logsigmoid: "seqc_logsigmoid",
  softplus: "seqc_softplus",
  silu: "seqc_silu",
  tanh: "tanhf",
  relu: "seqc_relu",
  sqrt: "sqrtf",
  rsqrt: "seqc_rsqrt",
  abs: "fabsf",
  sin: "sinf",
  cos: "cosf",
  floor: "floorf",
  ceil: "ceilf",
  min: "seqc_min",
  max: "seqc_max",
  pow: "powf",
};

export function cudaMathFn(fn: string): string {
  const f = CUDA_MATH[fn];
  if (!f) throw new Error(`the CUDA backend has no spelling for the function '${fn}'`);
  return f;
}

/** An fp32 literal that round-trips exactly (the value is first rounded to fp32). */
export function f32Literal(v: number): string {
  if (Number.isNaN(v)) return "__int_as_float(0x7fc00000)";
  if (v === Infinity) return "SEQC_INF";
  if (v === -Infinity) return "(-SEQC_INF)";
  const f = Math.fround(v);
  if (!Number.isFinite(f)) return f > 0 ? "SEQC_INF" : "(-SEQC_INF)";
  if (Number.isInteger(f) && Math.abs(f) < 1e7) return `${f}.0f`.replace(/^-/, "-");
  let s = f.toPrecision(9);
  if (!/[.e]/.test(s)) s += ".0";
  return `${s}f`;
}

/**
 * Float64 overloads of the helpers (appended after CUDA_PRELUDE for the double-precision kernels of the
 * torch target: `torch.autograd.gradcheck` needs float64).
 */
export const CUDA_PRELUDE_F64 = `// ---- seqc device helpers (fp64 overloads) ----
__device__ __forceinline__ double seqc_sigmoid(double x) { return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
__device__ __forceinline__ double seqc_softplus(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }
__device__ __forceinline__ double seqc_logsigmoid(double x) { return -seqc_softplus(-x); }
__device__ __forceinline__ double seqc_silu(double x) { return x * seqc_sigmoid(x); }
__device__ __forceinline__ double seqc_relu(double x) { return fmax(x, 0.0); }
__device__ __forceinline__ double seqc_rsqrt(double x) { return 1.0 / sqrt(x); }
__device__ __forceinline__ double seqc_max(double a, double b) { return (a != a || b != b) ? a + b : fmax(a, b); }
__device__ __forceinline__ double seqc_min(double a, double b) { return (a != a || b != b) ? a + b : fmin(a, b); }
`;

/** name -> CUDA double-precision function (the seqc_ helpers are overloaded for double). */
export const CUDA_MATH_F64: Record<string, string> = {
  ...CUDA_MATH,
  exp: "exp",
  exp2: "exp2",
  log: "log",
  log2: "log2",
  log1p: "log1p",
  expm1: "expm1",
  tanh: "tanh",
  sqrt: "sqrt",
  abs: "fabs",
  sin: "sin",
  cos: "cos",
  floor: "floor",
  ceil: "ceil",
  pow: "pow",
};

export function cudaMathFn64(fn: string): string {
  const f = CUDA_MATH_F64[fn];
  if (!f) throw new Error(`the CUDA backend has no spelling for the function '${fn}'`);
  return f;
}

/** A double literal that round-trips exactly. */
export function f64Literal(v: number): string {
  if (Number.isNaN(v)) return "__longlong_as_double(0x7ff8000000000000ll)";
  if (v === Infinity) return "((double)SEQC_INF)";
  if (v === -Infinity) return "(-(double)SEQC_INF)";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return `${v}.0`;
  const s = v.toPrecision(17);
  return /[.e]/.test(s) ? s : `${s}.0`;
}
