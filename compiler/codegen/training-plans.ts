/**
 * The WebGPU plans a generated class trains with (embedded in <Model>.ts): the recording forward, the
 * backward model (its state-adjoint recurrence) and its param-adjoint passes (sums over the steps), each
 * in the sequential form and, where the model is scan-eligible, the scan form (a scan-eligible model's
 * backward core and passes are scan-eligible too: test/grad-scan.test.ts); or why the model has none
 * (compiler/grad/training.ts).
 */
import type * as I from "../ir/types.ts";
import { lowerModel } from "../kernel/compile.ts";
import { wgslPlan } from "../backends/wgsl/index.ts";
import { trainingModels } from "../grad/training.ts";
import type { TrainingInfo } from "../../runtime/trainer.ts";

export function trainingPlans(model: I.Model, dims: Record<string, number> = {}): TrainingInfo {
  const t = trainingModels(model, dims);
  if (!t.ok) return { unavailable: t.why };
  const forms = ["sequential", "scan"] as const;
  const passes = Object.fromEntries(Object.entries(t.passes).map(([p, m]) => [p, wgslPlan(lowerModel(m, [...forms]))]));
  return { record: wgslPlan(lowerModel(t.record, [...forms])), backward: wgslPlan(lowerModel(t.backward, [...forms])), ...(Object.keys(passes).length ? { passes } : {}), names: t.names, bakedDims: t.bakedDims };
}
