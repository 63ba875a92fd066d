/**
 * The CUDA plans behind a torch module: the model's forward (every float32 form the CUDA backend has, and the
 * chunked form's bf16 variants, which torch.bfloat16 tensors run),
 * the recording forward (one extra output per state: its value before each step), the backward model
 * (compiler/grad/backward.ts: the state-adjoint recurrence, param adjoints split out by
 * compiler/grad/split.ts) and per param its adjoint pass (`pass:<param>`: a sum over the steps), compiled
 * by the same CUDA backend, and the float64 recording forward, backward and passes (`pass64:<param>`;
 * backend-neutral kernels rendered in double), and where the model has a chunked backward the chain's
 * plans (`chain:<part>`, `chain64:<part>`: chain-plans.ts). PTX per capability in CUDA_CAPABILITIES.smTargets.
 */
import * as I from "../../ir/types.ts";
import type { CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { lowerCuda, lowerCudaF64 } from "../cuda/plan.ts";
import { CUDA_CAPABILITIES } from "../cuda/capabilities.ts";
import { findNvcc, nvccPtx } from "../cuda/nvcc.ts";
import { buildBackward, type Backward } from "../../grad/backward.ts";
import { splitParamAdjoints, type InputPass, type ParamPass } from "../../grad/split.ts";
import { preferWideLanes } from "../cuda/backward-forms.ts";
import { recording, REC } from "../../grad/run.ts";
import { UserError } from "../../cli/errors.ts";
import { chainPlans, type TorchChunked, type TorchKernelModule } from "./chain-plans.ts";
import { outerMatmul, paramMatmul, type OuterMatmul, type ParamMatmul } from "./pass-matmul.ts";

/** `pass:<param>` / `pass64:<param>`: the param's adjoint pass in float32 / float64. */
/** `chain:<part>` / `chain64:<part>`: a model of the chunked backward chain in float32 / float64. */
export type PlanKey = "forward" | "record" | "backward" | "record64" | "backward64" | `pass:${string}` | `pass64:${string}` | `chain:${string}` | `chain64:${string}`;

export interface TorchPlans {
  plans: Record<PlanKey, CudaModelPlan>;
  backward: Backward;
  /**
   * Per param, what its pass reads and the state it sums into (the models are in `plans`); `matmul` where the pass
   * is one matrix product A^T X of two per-step arrays over all B x T steps (pass-matmul.ts: the runtime's torch product).
   */
  passes: (Omit<ParamPass, "model"> & { matmul?: OuterMatmul })[];
  /** Per input whose adjoint left the recurrence, what its pass reads and the output it writes (plans `pass:<input>`); `matmul` where it is A P with a param. */
  inputPasses: (Omit<InputPass, "model"> & { matmul?: ParamMatmul })[];
  /** Dims the backward model was built with (extents of `for` loops, which buildBackward unrolls). */
  bakedDims: Record<string, number>;
  recordSuffix: string;
  chunked: TorchChunked;
  /** Model-independent kernels the chain's glue launches itself (`rowsReadout`: a per-key decay's transposed cores, compiler/backends/cuda/rows-readout.ts). */
  kernels?: Record<string, TorchKernelModule>;
}

/** Dims of `for` loop extents (the backward unrolls them, so they are fixed at compile time). */
export function loopDims(model: I.Model): string[] {
  const out = new Set<string>();
  I.walkStmts(model.body, (s) => {
    if (s.k === "for" && s.v.extent.kind === "dim") out.add(s.v.extent.name);
  });
  return [...out];
}

/**
 * Keep the forms whose inputs and outputs are of an element type in `ios` (default float32 only; the forward and
 * the chunked backward's cores also keep the chunked form's bf16 variants, which torch.bfloat16 tensors run:
 * seqc_chunked.py bf16_io); f16 forms and the modules no kept form uses go.
 */
export function keepForms(plan: CudaModelPlan, form: string, ios: readonly string[] = ["f32"]): CudaModelPlan {
  let forms = plan.forms.filter((f) => ios.includes(f.io ?? "f32"));
  if (form !== "auto") {
    if (form !== "sequential" && form !== "scan" && form !== "chunked") throw new UserError(`the CUDA backend has no form '${form}' (auto, sequential, scan, chunked)`);
    forms = forms.filter((f) => f.form === form);
    if (!forms.some((f) => (f.io ?? "f32") === "f32")) throw new UserError(`${plan.model} has no float32 ${form} form on CUDA`);
  }
  const modules = plan.modules ? Object.fromEntries(Object.entries(plan.modules).filter(([k]) => forms.some((f) => f.module === k))) : undefined;
  return { ...plan, forms, ...(modules && Object.keys(modules).length ? { modules } : { modules: undefined }) };
}

/** Element types of the forward's and the chain cores' forms in a torch module: float32 and the chunked form's bf16 variants. */
export const TORCH_IO = ["f32", "bf16"] as const;
/** The chain's parts that run the chunked form (their bf16 variants kept; seqc_chunked.py CORE_PARTS). */
const CORE_PARTS = new Set(["core", "coreT", "adjoint", "adjointT"]);

export function buildTorchPlans(model: I.Model, opts: { dims?: Record<string, number>; form?: string } = {}): TorchPlans {
  const bakedDims: Record<string, number> = {};
  for (const d of loopDims(model)) {
    const fixed = model.dims.find((x) => x.name === d)?.fixed;
    const v = opts.dims?.[d] ?? fixed;
    if (v === undefined) throw new UserError(`${model.name}: the torch target's backward unrolls the loop over ${d}; give its size with --dims ${d}=<n>`);
    bakedDims[d] = v;
  }
  const backward = buildBackward(model, bakedDims, { paramAdjoints: "state" });
  const split = splitParamAdjoints(backward);
  const rec = recording(model);
  const f32Only = (p: CudaModelPlan, form: string) => keepForms(p, form);
  const plans: Record<PlanKey, CudaModelPlan> = {
    forward: keepForms(lowerCuda(model).plan, opts.form ?? "auto", TORCH_IO),
    record: f32Only(lowerCuda(rec).plan, "auto"),
    backward: preferWideLanes(f32Only(lowerCuda(split.core).plan, "auto")),
    record64: lowerCudaF64(rec),
    backward64: preferWideLanes(lowerCudaF64(split.core)),
  };
  for (const p of split.passes) {
    plans[`pass:${p.param}`] = f32Only(lowerCuda(p.model).plan, "auto");
    plans[`pass64:${p.param}`] = lowerCudaF64(p.model);
  }
  for (const p of split.inputPasses) {
    plans[`pass:${p.input}`] = f32Only(lowerCuda(p.model).plan, "auto");
    plans[`pass64:${p.input}`] = lowerCudaF64(p.model);
  }
  const chain = chainPlans(model, bakedDims, (p, part) => keepForms(p, "auto", CORE_PARTS.has(part) ? TORCH_IO : ["f32"]), { copies: true });
  Object.assign(plans, chain.plans);
  const chunked = chain.chunked;
  return { plans, backward, passes: split.passes.map(({ model: m, ...p }) => withMatmul(p, outerMatmul(m))), inputPasses: split.inputPasses.map(({ model: m, ...p }) => withMatmul(p, paramMatmul(m))), bakedDims, recordSuffix: REC, chunked, ...(chain.kernels ? { kernels: chain.kernels } : {}) };
}

/** A pass's names, with its torch matrix-product shape where it has one (sums and copies need none). */
function withMatmul<P extends object, M>(p: P, matmul: M | undefined): P & { matmul?: M } {
  return matmul && !("sum" in p && p.sum) && !("sameAs" in p && p.sameAs) ? { ...p, matmul } : p;
}

/** Attach PTX (nvcc, every capability in smTargets) to each plan and module, and to each kernel module. */
export function attachPtx(plans: Record<string, CudaModelPlan>, kernels: Record<string, TorchKernelModule> = {}): void {
  const nvcc = findNvcc();
  if (!nvcc) throw new UserError("the torch target needs nvcc to build PTX (put it on PATH, or set NVCC or CUDA_HOME)");
  const sms = CUDA_CAPABILITIES.smTargets;
  for (const plan of Object.values(plans)) {
    if (plan.forms.some((f) => !f.module)) plan.ptx = Object.fromEntries(sms.map((sm) => [String(sm), nvccPtx(plan.source, sm, nvcc).ptx]));
    for (const m of Object.values(plan.modules ?? {})) m.ptx = Object.fromEntries(sms.map((sm) => [String(sm), nvccPtx(m.source, sm, nvcc).ptx]));
  }
  for (const k of Object.values(kernels)) k.ptx = Object.fromEntries(sms.map((sm) => [String(sm), nvccPtx(k.source, sm, nvcc).ptx]));
}
