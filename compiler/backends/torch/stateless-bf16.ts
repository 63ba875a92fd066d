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
 */
import * as I from "../../ir/types.ts";
import type * as K from "../../kernel/ir.ts";
import { lowerModel } from "../../kernel/compile.ts";
import type { CudaLaunch, CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { genericForm } from "../cuda/plan.ts";
import { renderKernel } from "../cuda/render.ts";

/** Suffix of a bf16-input twin's variant and kernels. */
export const BF16_IN = "bf16in";

/** A kernel's or launch's name in its bf16-input twin. */
const twin = (n: string) => `${n}_${BF16_IN}`;

/**
 * `plan` (lowerCuda(model)'s float32 plan, kept forms) with a bf16-input twin of each backend-neutral form whose kernels
 * read the inputs in `low` (names of the model's inputs) as bf16. Inputs of `low` the model does not have are ignored;
 * none left: the plan as it is.
 */
export function withBf16Inputs(model: I.Model, plan: CudaModelPlan, low: Iterable<string>): CudaModelPlan {
  const own = new Set(I.tensorsOfKind(model, "input").map((t) => t.name));
  const names = [...new Set(low)].filter((n) => own.has(n)).sort();
  if (!names.length) return plan;
  const lowSet = new Set(names);
  const kept = new Set(plan.forms.filter((f) => !f.module && (f.io ?? "f32") === "f32").map((f) => f.variant));
  const sources: string[] = [];
  const forms: CudaModelPlan["forms"] = [];
  for (const f of lowerModel(model).forms) {
    if (!kept.has(f.plan.variant)) continue;
    const kernels: K.Kernel[] = [];
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
    }
    const renamed = { ...f.plan, kernels: f.plan.kernels.map((l) => ({ ...l, shader: twin(l.shader), name: twin(l.name) })) };
    const g = genericForm(renamed, kernels, model);
    if (g.steps.some((s) => s.kind !== "launch" || !(s as CudaLaunch).entry.endsWith(`_${BF16_IN}`))) throw new Error(`${model.name} ${f.plan.variant}: a bf16-input twin launches a float32 kernel`);
    forms.push({ ...g, variant: `${f.plan.variant}-${BF16_IN}`, io: "bf16", out: "f32", bf16Inputs: names, note: `${g.note}; inputs ${names.join(", ")} read as bf16 (widened in registers), the rest and the outputs float32` });
  }
  if (!forms.length) return plan;
  return { ...plan, source: plan.source + "\n" + sources.join("\n\n") + "\n", forms: [...plan.forms, ...forms], ptx: undefined };
}
