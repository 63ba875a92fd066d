/**
 * bf16-input forms of the chunked backward's stateless parts (prep, prep's and post's backward models) for the torch
 * target (issue 6). bf16 tensors run the chain in float32 (runtime/torch/seqc_chunked.py), and these plans read the
 * forward's inputs and the outputs' cotangents: without a form that reads them as they are, backward_eager made a
 * float32 copy of each one first (one pass over the tensor, ~0.03 ms per [8, 2048, 1024] on an H100).
 *
 * Each backend-neutral form of the plan (thread / workgroup / global) gets a twin whose kernels read the named inputs
 * as bf16 words, widened to float32 in registers (render.ts `bf16Reads`: exact), every other input float32, the
 * arithmetic and the outputs float32: io "bf16", out "f32", `bf16Inputs` the names (runtime/cuda/plan.ts
 * CudaFormPlan.bf16Inputs). The twin's variant is `<variant>-bf16in` and its kernels `<kernel>_bf16in`, so float32
 * tensors pick exactly as before (the twins are appended after every float32 form).
 *
 * With `warpSplit` (chain-plans.ts WARP_SPLIT_MODELS), a form whose kernel has a phase summing over a row also gets a
 * warp-split twin `<variant>-bf16in-wr` (stateless-warp.ts: a warp an output element, the row's sum over its lanes),
 * appended after every other form: the runtime's trial timing (seqc_chunked.TUNE_STATELESS) picks among them, and
 * seqc_chunked.STATELESS_WARP False leaves them out.
 */
import * as I from "../../ir/types.ts";
import type * as K from "../../kernel/ir.ts";
import { lowerModel } from "../../kernel/compile.ts";
import type { CudaLaunch, CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { genericForm } from "../cuda/plan.ts";
import { renderKernel } from "../cuda/render.ts";
import { warpSplitKernel, WARP_SUM_FN, WARP_SUM_SOURCE } from "./stateless-warp.ts";

/** Suffix of a warp-split twin's variant and kernels (`<variant>-bf16in-wr`, `<kernel>_bf16in_wr`; stateless-warp.ts). */
export const WARP = "wr";

/** Suffix of a bf16-input twin's variant and kernels. */
export const BF16_IN = "bf16in";

/** A kernel's or launch's name in its bf16-input twin. */
const twin = (n: string) => `${n}_${BF16_IN}`;

/**
 * `plan` (lowerCuda(model)'s float32 plan, kept forms) with a bf16-input twin of each backend-neutral form whose kernels
 * read the inputs in `low` (names of the model's inputs) as bf16. Inputs of `low` the model does not have are ignored;
 * none left: the plan as it is.
 */
export function withBf16Inputs(model: I.Model, plan: CudaModelPlan, low: Iterable<string>, opts: { warpSplit?: boolean } = {}): CudaModelPlan {
  const own = new Set(I.tensorsOfKind(model, "input").map((t) => t.name));
  const names = [...new Set(low)].filter((n) => own.has(n)).sort();
  if (!names.length) return plan;
  const lowSet = new Set(names);
  const kept = new Set(plan.forms.filter((f) => !f.module && (f.io ?? "f32") === "f32").map((f) => f.variant));
  const sources: string[] = [];
  const forms: CudaModelPlan["forms"] = [];
  // the warp-split twins (WARP_SPLIT): after every other form, so a pick without a trial run is the one before
  const warpForms: CudaModelPlan["forms"] = [];
  const warpSrc: string[] = [];
  for (const f of lowerModel(model).forms) {
    if (!kept.has(f.plan.variant)) continue;
    const kernels: K.Kernel[] = [];
    const warp: K.Kernel[] = [];
    const warpSources: string[] = [];
    for (const k of f.kernels) {
      // the kernel's buffers bound to a low input, by the launches of this form that run it
      const reads = new Set<string>();
      for (const l of f.plan.kernels.filter((l) => l.shader === k.name || l.name === k.name)) {
        for (const b of l.bindings) {
          const kb = k.buffers.find((x) => x.binding === b.binding);
          if (kb && b.buffer.kind === "input" && lowSet.has(b.buffer.name)) reads.add(kb.name);
        }
      }
      const kk: K.Kernel = { ...k, name: twin(k.name) };
      sources.push(renderKernel(kk, { bf16Reads: reads }));
      kernels.push(kk);
      // the warp-split twin (stateless-warp.ts): only where the form's kernel has a reducing phase
      const kw = warpSplitKernel(kk, `${kk.name}_${WARP}`);
      if (kw) warpSources.push(renderKernel(kw, { bf16Reads: reads, fns: { [WARP_SUM_FN]: WARP_SUM_FN } }));
      warp.push(kw ?? kk);
    }
    const renamed = { ...f.plan, kernels: f.plan.kernels.map((l) => ({ ...l, shader: twin(l.shader), name: twin(l.name) })) };
    const g = genericForm(renamed, kernels, model);
    if (g.steps.some((s) => s.kind !== "launch" || !(s as CudaLaunch).entry.endsWith(`_${BF16_IN}`))) throw new Error(`${model.name} ${f.plan.variant}: a bf16-input twin launches a float32 kernel`);
    forms.push({ ...g, variant: `${f.plan.variant}-${BF16_IN}`, io: "bf16", out: "f32", bf16Inputs: names, note: `${g.note}; inputs ${names.join(", ")} read as bf16 (widened in registers), the rest and the outputs float32` });
    if (warpSources.length && warp.length === 1) {
      // one kernel a form (the stateless parts' sequential forms): its warp-split twin as one more form
      const wname = warp[0].name;
      const wg = genericForm({ ...renamed, kernels: renamed.kernels.map((l) => ({ ...l, shader: wname, name: wname })) }, warp, model);
      warpForms.push({ ...wg, variant: `${f.plan.variant}-${BF16_IN}-${WARP}`, io: "bf16", out: "f32", bf16Inputs: names, note: `${wg.note}; inputs ${names.join(", ")} read as bf16 (widened in registers), the rest and the outputs float32; row sums split over a warp (stateless-warp.ts)` });
      warpSrc.push(...warpSources);
    }
  }
  if (!forms.length) return plan;
  // (the warp sum helper ahead of the source, with its other helpers: the kernels follow)
  const ws = opts.warpSplit && warpSrc.length ? "\n" + warpSrc.join("\n\n") + "\n" : "";
  return { ...plan, source: (ws ? WARP_SUM_SOURCE + "\n" : "") + plan.source + "\n" + sources.join("\n\n") + "\n" + ws, forms: [...plan.forms, ...forms, ...(ws ? warpForms : [])], ptx: undefined };
}
