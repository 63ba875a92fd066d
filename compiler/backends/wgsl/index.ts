/** The WGSL backend: render every kernel of a lowered model and return its launch plan. */
import type * as I from "../../ir/types.ts";
import { lowerModel, modelPlan, type FormName, type LoweredModel } from "../../kernel/compile.ts";
import type { ModelPlan } from "../../../runtime/plan.ts";
import { renderWgsl } from "./render.ts";
import "../../kernel/scan.ts";

export { renderWgsl } from "./render.ts";
export { WGSL_CAPABILITIES } from "./capabilities.ts";

export function wgslPlan(lowered: LoweredModel): ModelPlan {
  return modelPlan(lowered, (k) => renderWgsl(k, [`seqc: kernel ${k.name} of model ${lowered.model.name}`]));
}

export function compileWgsl(model: I.Model, forms?: FormName[]): ModelPlan {
  return wgslPlan(lowerModel(model, forms));
}
