/**
 * The WebGPU plans a generated class trains with (embedded in <Model>.ts): the recording forward, in
 * every form the backend has for it, the backward model in the sequential form (the adjoint
 * recurrence has no scan form) and its param-adjoint passes (sums over the steps, also sequential);
 * or why the model has none (compiler/grad/training.ts).
 */
import type * as I from "../ir/types.ts";
import { lowerModel } from "../kernel/compile.ts";
import { wgslPlan } from "../backends/wgsl/index.ts";
import { trainingModels } from "../grad/training.ts";
import type { TrainingInfo } from "../../runtime/trainer.ts";

export function trainingPlans(model: I.Model, dims: Record<string, number> = {}): TrainingInfo {
  const t = trainingModels(model, dims);
  if (!t.ok) return { unavailable: t.why };
  const passes = Object.fromEntries(Object.entries(t.passes).map(([p, m]) => [p, wgslPlan(lowerModel(m, ["sequential"]))]));
  return { record: wgslPlan(lowerModel(t.record, ["sequential", "scan"])), backward: wgslPlan(lowerModel(t.backward, ["sequential"])), ...(Object.keys(passes).length ? { passes } : {}), names: t.names, bakedDims: t.bakedDims };
}
