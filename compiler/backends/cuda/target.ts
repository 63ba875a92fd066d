/**
 * `seqc compile --target cuda`: per model, <Model>.cu (every kernel of every form), <Model>.cuda.json
 * (the launch plan the CUDA runtime executes) and <Model>.grad.cuda.json (the plans of the recording
 * forward and the backward model, for a generated class's backward(); when the model's backward can be
 * built at compile time, compiler/grad/training.ts; and under `chunked` the chunked backward chain's plans
 * where the model has one, training-chain.ts). With nvcc present, the plan also carries PTX for each
 * capability in CUDA_CAPABILITIES.smTargets (sm_80, sm_90), so the runtime needs no NVRTC.
 */
import type { Model } from "../../ir/types.ts";
import type { EmittedFile, Target } from "../../targets.ts";
import { lowerCuda } from "./plan.ts";
import { CUDA_CAPABILITIES } from "./capabilities.ts";
import { findNvcc, nvccPtx } from "./nvcc.ts";
import { UserError } from "../../cli/errors.ts";
import { trainingModels } from "../../grad/training.ts";
import { preferWideLanes } from "./backward-forms.ts";
import { cudaChainTraining } from "./training-chain.ts";
import type { CudaModelPlan } from "../../../runtime/cuda/plan.ts";

export function emitCuda(model: Model, opts: { ptx?: boolean; form?: string; grad?: boolean; dims?: Record<string, number> } = {}): EmittedFile[] {
  const { plan, skipped } = lowerCuda(model);
  const form = opts.form ?? "auto";
  if (form !== "auto") {
    if (form !== "sequential" && form !== "scan" && form !== "chunked") throw new UserError(`the CUDA backend has no form '${form}' (auto, sequential, scan, chunked)`);
    plan.forms = plan.forms.filter((f) => f.form === form);
    if (plan.modules) plan.modules = Object.fromEntries(Object.entries(plan.modules).filter(([k]) => plan.forms.some((f) => f.module === k)));
    if (!plan.forms.length) throw new UserError(`${model.name} has no ${form} form on CUDA: ${skipped.map((s) => `${s.variant}: ${s.reason}`).join("; ")}`);
  }
  const nvcc = opts.ptx === false ? undefined : findNvcc();
  const withPtx = (p: CudaModelPlan) => {
    if (!nvcc) return p;
    // the main translation unit only where a form runs from it (a chain core's plan has its forms in modules)
    if (p.forms.some((f) => !f.module)) {
      p.ptx = {};
      for (const sm of CUDA_CAPABILITIES.smTargets) p.ptx[String(sm)] = nvccPtx(p.source, sm, nvcc).ptx;
    }
    for (const m of Object.values(p.modules ?? {})) m.ptx = Object.fromEntries(CUDA_CAPABILITIES.smTargets.map((sm) => [String(sm), nvccPtx(m.source, sm, nvcc).ptx]));
    return p;
  };
  withPtx(plan);
  const builtWith = nvcc ? `nvcc (${CUDA_CAPABILITIES.smTargets.map((s) => `sm_${s}`).join(", ")})` : "no nvcc: the runtime compiles the source with NVRTC";
  const meta = { ...plan, skipped, builtWith };
  const files = [
    { path: `${model.name}.cu`, contents: plan.source },
    ...Object.entries(plan.modules ?? {}).map(([k, m]) => ({ path: `${model.name}.${k}.cu`, contents: m.source })),
    { path: `${model.name}.cuda.json`, contents: JSON.stringify(meta) + "\n" },
  ];
  // what a generated class's backward() runs on CUDA: the recording forward, the backward model and its param passes
  const t = opts.grad === false ? undefined : trainingModels(model, opts.dims);
  if (t?.ok) {
    const passes = Object.fromEntries(Object.entries(t.passes).map(([p, m]) => [p, withPtx(lowerCuda(m).plan)]));
    const chunked = cudaChainTraining(model, t);
    if ("plans" in chunked) for (const p of Object.values(chunked.plans)) withPtx(p!);
    // the transposed cores' rows readout module (a per-key decay's chain): PTX per capability as the plans have
    if ("names" in chunked && chunked.rowsReadout && nvcc) chunked.rowsReadout.ptx = Object.fromEntries(CUDA_CAPABILITIES.smTargets.map((sm) => [String(sm), nvccPtx(chunked.rowsReadout!.source, sm, nvcc).ptx]));
    files.push({ path: `${model.name}.grad.cuda.json`, contents: JSON.stringify({ record: withPtx(lowerCuda(t.record).plan), backward: withPtx(preferWideLanes(lowerCuda(t.backward).plan)), ...(Object.keys(passes).length ? { passes } : {}), bakedDims: t.bakedDims, chunked, builtWith }) + "\n" });
  }
  return files;
}

export const cudaTarget: Target = {
  describe: "CUDA C++ kernels (.cu) and their launch plan (.cuda.json, with PTX for sm_80/sm_90 when nvcc is installed)",
  emit: (m, opts) => emitCuda(m, { form: opts.form, dims: opts.dims }),
};
