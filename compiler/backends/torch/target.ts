/**
 * `seqc compile --target torch`: per model, <Model>.py (a torch.autograd.Function, a functional entry and
 * an nn.Module), <Model>.torch.json (its CUDA plans with PTX: plans.ts) and, once per output directory,
 * the Python runtime they import (runtime/torch/seqc_torch.py, seqc_cuda.py: autograd glue and a ctypes
 * runner over libcuda).
 */
import { readFileSync } from "node:fs";
import type { Model } from "../../ir/types.ts";
import type { EmittedFile, Target, TargetOptions } from "../../targets.ts";
import { irText } from "../../ir/ir-text.ts";
import { tensorSpecs } from "../../kernel/interface.ts";
import { CUDA_CAPABILITIES } from "../cuda/capabilities.ts";
import { attachPtx, buildTorchPlans } from "./plans.ts";
import { pythonModule } from "./python.ts";

const RUNTIME = new URL("../../../runtime/torch/", import.meta.url);
export const TORCH_RUNTIME_FILES = ["seqc_torch.py", "seqc_cuda.py", "seqc_chunked.py", "seqc_graphs.py", "seqc_chunked_lowrank.py", "seqc_lowrank_wy.py", "seqc_chunked_stab.py", "seqc_decay_adjoint.py", "seqc_delta_bwd.py"];

export interface TorchEmitOptions {
  form?: string;
  /** Sizes of dims the backward unrolls (extents of `for` loops). */
  dims?: Record<string, number>;
  /** Build PTX with nvcc (default true; the baseline test passes false). */
  ptx?: boolean;
}

export function emitTorch(model: Model, opts: TorchEmitOptions = {}): EmittedFile[] {
  const tp = buildTorchPlans(model, { dims: opts.dims, form: opts.form });
  if (opts.ptx !== false) attachPtx(tp.plans, tp.kernels);
  const bw = tp.backward;
  const meta = {
    model: model.name,
    dims: model.dims.map((d) => ({ name: d.name, ...(d.fixed !== undefined ? { fixed: d.fixed } : {}), ...(d.sequenceDefault ? { sequenceDefault: true } : {}) })),
    tensors: tensorSpecs(model),
    recordSuffix: tp.recordSuffix,
    backwardNames: { inputBar: bw.inputBar, paramBar: bw.paramBar, stateBar: bw.stateBar, statePrev: bw.statePrev, outputBar: bw.outputBar, passes: tp.passes, ...(tp.inputPasses.length ? { inputPasses: tp.inputPasses } : {}) },
    bakedDims: tp.bakedDims,
    chunked: tp.chunked,
    memory: "step backward: the forward with gradients keeps every state before every step, the backward recomputes the step from it; chunked backward (where `chunked` has parts): the forward keeps its inputs, the backward recomputes the chain",
    plans: tp.plans,
    ...(tp.kernels ? { kernels: tp.kernels } : {}),
  };
  const py = pythonModule(model, {
    irText: irText(model),
    forwardForms: [...new Set(tp.plans.forward.forms.map((f) => f.form))],
    backwardForms: [...new Set(tp.plans.backward.forms.map((f) => f.form))],
    bakedDims: tp.bakedDims,
    sms: CUDA_CAPABILITIES.smTargets,
    ...("parts" in tp.chunked ? { chunked: tp.chunked.parts.join(", ") } : {}),
  });
  return [
    { path: `${model.name}.py`, contents: py },
    { path: `${model.name}.torch.json`, contents: JSON.stringify(meta) + "\n" },
    ...TORCH_RUNTIME_FILES.map((f) => ({ path: f, contents: readFileSync(new URL(f, RUNTIME), "utf8") })),
  ];
}

export const torchTarget: Target = {
  describe: "a PyTorch module per model (<Model>.py: torch.autograd.Function + nn.Module over the CUDA kernels, forward and backward; needs nvcc for PTX)",
  emit: (m: Model, opts: TargetOptions) => emitTorch(m, { form: opts.form, dims: opts.dims }),
};
