/** The WGSL backend: render every kernel of a lowered model and return its launch plan. */
import type * as I from "../../ir/types.ts";
import { lowerModel, modelPlan, type FormName, type LoweredModel } from "../../kernel/compile.ts";
import type { ModelPlan } from "../../../runtime/plan.ts";
import { renderWgsl } from "./render.ts";
import { lowerWgslChunked, wgslChunkedEligible } from "./chunked-plan.ts";
import { lowerStepGrid, stepGridPlan } from "../../kernel/step-grid.ts";
import { lowerStepStream } from "../../kernel/step-stream.ts";
import "../../kernel/scan.ts";

export { renderWgsl } from "./render.ts";
export { WGSL_CAPABILITIES } from "./capabilities.ts";

/** Forms of the WGSL backend: the kernel-IR lowerings plus the chunked form (chunked-plan.ts). */
export type WgslFormName = FormName | "chunked";

/**
 * WebGPU adds the sequential form's `grid` variant (one launch per step) and `stream` variant (one
 * launch, a workgroup per batch row streaming the packed recurrent params) where they apply.
 */
export function withStepGrid(lowered: LoweredModel): LoweredModel {
  if (!lowered.forms.some((f) => f.plan.form === "sequential") || !stepGridPlan(lowered.model).ok) return lowered;
  return { ...lowered, forms: [...lowered.forms, lowerStepGrid(lowered.model), lowerStepStream(lowered.model)] };
}

export function wgslPlan(lowered: LoweredModel): ModelPlan {
  return modelPlan(withStepGrid(lowered), (k) => renderWgsl(k, [`seqc: kernel ${k.name} of model ${lowered.model.name}`]));
}

/** Without `forms`: sequential and scan (the chunked form is added where asked for: `--form auto|chunked`). */
export function compileWgsl(model: I.Model, forms?: WgslFormName[]): ModelPlan {
  const base = forms?.filter((f): f is FormName => f !== "chunked");
  const plan = wgslPlan(lowerModel(model, base));
  if (forms?.includes("chunked")) addChunked(plan, model);
  return plan;
}

/** Append the chunked form's variants and shaders to a plan (nothing when the model has no matrix form). */
export function addChunked(plan: ModelPlan, model: I.Model, only?: (variant: string) => boolean): ModelPlan {
  const el = wgslChunkedEligible(model);
  if (!el.ok) return plan;
  const c = lowerWgslChunked(model, el.rows, { only });
  Object.assign(plan.shaders, c.shaders);
  plan.forms.push(...c.forms);
  return plan;
}
