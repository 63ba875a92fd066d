/**
 * The WebGPU plans a generated class trains with (embedded in <Model>.ts): the recording forward, the
 * backward model (its state-adjoint recurrence) and its param-adjoint passes (sums over the steps), each
 * in the sequential form and, where the model is scan-eligible, the scan form (a scan-eligible model's
 * backward core and passes are scan-eligible too: test/grad-scan.test.ts); or why the model has none
 * (compiler/grad/training.ts). Where the model's chunked backward applies (compiler/grad/chunked-chain.ts), also
 * the chain's plans: its four core models in the WGSL chunked form (every variant; the runtime's cost model
 * picks), the log-decay adjoint in the scan form, prep and the backward models of prep and post (and a stabilised
 * form's stabiliser prep and its backward, parts "stab" / "stabBw") in the sequential and scan forms. A low-rank
 * core (the delta-rule family) gets the low-rank chain's plans instead (compiler/grad/chunked-chain-lowrank.ts:
 * the chunk transitions in the WGSL chunked form, every variant; the rest in the form LR_FORMS gives).
 */
import type * as I from "../ir/types.ts";
import { lowerModel } from "../kernel/compile.ts";
import { addChunked, wgslPlan } from "../backends/wgsl/index.ts";
import { ALL_CHAIN_PARTS, isChainCore } from "../../runtime/chunked-backward.ts";
import { LR_FORMS } from "../grad/chunked-chain-lowrank.ts";
import { LR_PARTS } from "../../runtime/chunked-backward-lowrank.ts";
import type { ModelPlan } from "../../runtime/plan.ts";
import { trainingModels } from "../grad/training.ts";
import type { ChunkedTraining, TrainingInfo } from "../../runtime/trainer.ts";

export function trainingPlans(model: I.Model, dims: Record<string, number> = {}): TrainingInfo {
  const t = trainingModels(model, dims);
  if (!t.ok) return { unavailable: t.why };
  const forms = ["sequential", "scan"] as const;
  const passes = Object.fromEntries(Object.entries(t.passes).map(([p, m]) => [p, wgslPlan(lowerModel(m, [...forms]))]));
  return { record: wgslPlan(lowerModel(t.record, [...forms])), backward: wgslPlan(lowerModel(t.backward, [...forms])), ...(Object.keys(passes).length ? { passes } : {}), names: t.names, bakedDims: t.bakedDims, chunked: t.lowRankChain ? lowRankPlans(t.lowRankChain) : chainPlans(t.chain) };
}

/** The WGSL plans of the chunked backward chain. */
function chainPlans(chain: Extract<ReturnType<typeof trainingModels>, { ok: true }>["chain"]): ChunkedTraining {
  if ("why" in chain) return { unavailable: chain.why };
  const plans: Record<string, ModelPlan> = {};
  for (const part of ALL_CHAIN_PARTS) {
    const m = chain.models[part];
    if (!m) continue;
    const core = isChainCore(part);
    const plan = wgslPlan(lowerModel(m, core ? [] : ["sequential", "scan"]));
    if (core && !addChunked(plan, m).forms.length) return { unavailable: `${m.name} of the chain has no WGSL chunked form` };
    plans[part] = plan;
  }
  return { names: chain.names, plans };
}

/** The WGSL plans of the low-rank chain. */
function lowRankPlans(chain: NonNullable<Extract<ReturnType<typeof trainingModels>, { ok: true }>["lowRankChain"]>): ChunkedTraining {
  const plans: Record<string, ModelPlan> = {};
  for (const part of LR_PARTS) {
    const m = chain.models[part];
    if (!m) continue;
    const chunked = LR_FORMS[part] === "chunked";
    const plan = wgslPlan(lowerModel(m, chunked ? [] : [LR_FORMS[part] as "sequential" | "scan"]));
    if (chunked && !addChunked(plan, m).forms.length) return { unavailable: `${m.name} of the low-rank chain has no WGSL chunked form` };
    plans[part] = plan;
  }
  return { lowRank: chain.names, plans };
}
