/**
 * The CUDA launch plan: pure data that a generated module ships with the CUDA source (and PTX when nvcc
 * was present at compile time). Sizes are the SizeExpr of runtime/plan.ts, evaluated over the dims, B, T
 * and the form's vars. Kernel parameters are, in order: the buffers of `args`, then one struct of u32
 * uniforms and one struct of u32 overrides, both in the order listed.
 */
import type { BufferRef, SizeExpr, TensorSpec } from "../plan.ts";

export type CudaBufferRef = BufferRef | { kind: "workspace"; name: string };

export interface CudaLaunch {
  kind: "launch";
  /** extern "C" name of the kernel in the module. */
  entry: string;
  grid: SizeExpr;
  threads: SizeExpr;
  sharedBytes: SizeExpr;
  /** Needs all blocks resident at once (grid-wide barriers inside): cuLaunchCooperativeKernel. */
  cooperative?: boolean;
  buffers: CudaBufferRef[];
  uniforms: string[];
  /** Override constants in struct order, each with its value (a SizeExpr over dims, B, T, vars). */
  overrides: Record<string, SizeExpr>;
}

/** Zero a workspace before a launch (look-back flags, barrier counters). */
export interface CudaZero {
  kind: "zero";
  workspace: string;
}

/** C[M,N] = A[M,K] * B[N,K]^T with the model-independent fp32 GEMM kernel (row-major, lda = K unless given, ldb = K, ldc = N). */
export interface CudaGemm {
  kind: "gemm";
  entry: string;
  a: CudaBufferRef;
  b: CudaBufferRef;
  /** Offset of B in its buffer, in floats (e.g. a param's offset in the packed params). */
  bOffset?: SizeExpr;
  /** Offset of A in its buffer, in floats, and its row stride (default K): A a slice of a packed input, pack[.., k, :]. */
  aOffset?: SizeExpr;
  lda?: SizeExpr;
  c: CudaBufferRef;
  M: SizeExpr;
  N: SizeExpr;
  K: SizeExpr;
}

export interface CudaFormPlan {
  form: "sequential" | "scan" | "chunked";
  /** Element type of the inputs and outputs on the device (default f32; params and states are always f32). */
  io?: "f32" | "bf16" | "f16";
  /** Element type of the outputs when it differs from `io` (default `io`): mixed I/O, e.g. bf16 inputs with fp32
   *  outputs (the torch target's transposed cores, whose outputs feed cancelling sums). */
  out?: "f32" | "bf16" | "f16";
  /** With io "bf16": the inputs read as bf16, every other input (and the outputs, `out`) float32; absent: every input
   *  of `io` (the torch target's stateless chain parts reading bf16 inputs and cotangents beside float32 adjoints). */
  bf16Inputs?: string[];
  /** With out "bf16": the outputs written as bf16 (rounded to nearest even), every other output float32; absent: every
   *  output of `out` (the torch target's stateless chain parts writing the delta backward's bf16 per-token tensors,
   *  compiler/backends/torch/stateless-bf16.ts "-bf16out" twins). */
  bf16Outputs?: string[];
  /** Inputs among bf16Inputs that are adjoints the glue may hold in float32 (the torch target's prep backward reading the
   *  delta adjoint's bf16 gradients, compiler/backends/torch/stateless-bf16.ts "-bf16bar" twins): a runtime takes such a
   *  form only where it asks for it (those inputs bf16: runtime/torch/seqc_chunked.py stateless_form `bars`). */
  bf16Bars?: string[];
  /** Outputs this form leaves unwritten (their buffers hold whatever was there): the torch target's stateless chain
   *  parts' zero and copied outputs, which the glue does not read (compiler/backends/torch/stateless-bf16.ts "-nz"
   *  twins; runtime/torch/seqc_chunked.py ZERO_STORES). Absent: every output written. */
  unwritten?: string[];
  /** Key into CudaModelPlan.modules when this form's kernels live in a module of their own. */
  module?: string;
  variant: string;
  /** Non-zero when the variant can run for a shape (evaluated after vars). */
  applicable?: SizeExpr;
  /** For "auto": a form is preferred when this is non-zero (default: always); the first applicable preferred form runs. */
  prefer?: SizeExpr;
  /** Why this variant exists / what it does, for `seqc explain` and the bench. */
  note: string;
  vars: [string, SizeExpr][];
  /** Workspaces in 4-byte words (f32 or u32), allocated per create()/shape. */
  workspaces: { name: string; words: SizeExpr }[];
  steps: (CudaLaunch | CudaZero | CudaGemm)[];
  /**
   * false: the form's kernels read initial values only from the `initialStates` buffer and write every final
   * state, so the runner does not copy the initial states into `states` before each forward (default: it does).
   */
  statesCopy?: false;
  /** Cost-model terms carried over from the backend-neutral plan (generic forms). */
  cost?: { bytes: SizeExpr; serialSteps: SizeExpr; threads: SizeExpr; flops: SizeExpr };
}

export interface CudaModelPlan {
  model: string;
  dims: { name: string; fixed?: number }[];
  tensors: TensorSpec[];
  uniforms: string[];
  /** CUDA C++ of every kernel of every form (one translation unit). */
  source: string;
  /** Prebuilt PTX by compute capability ("80", "90") when nvcc was present at compile time. */
  ptx?: Record<string, string>;
  forms: CudaFormPlan[];
  /** Further translation units (e.g. the chunked form's, one per I/O type), loaded when a form needs them: a cubin (base64) for the device's architecture, else PTX, else NVRTC. */
  modules?: Record<string, { source: string; ptx?: Record<string, string>; cubin?: Record<string, string> }>;
}
