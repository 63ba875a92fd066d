/**
 * The chunked backward's plans in a torch module (compiler/grad/chunked-chain.ts): per part of the chain,
 * `chain:<part>` (float32: every f32 form the CUDA backend has, the four cores also the chunked form's bf16 variants, so the four core models run their chunked
 * forms — first in plan order, the runner's pick where they apply — the log-decay adjoint its scan, and
 * prep and the backward models of prep and post their sequential forms) and `chain64:<part>` (the same
 * models as double sequential kernels, for gradcheck). runtime/torch/seqc_chunked.py runs them with torch
 * ops as the glue. Models the chain does not cover get `{ unavailable: why }` and keep the step backward.
 */
import * as I from "../../ir/types.ts";
import type { CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { lowerCuda, lowerCudaF64 } from "../cuda/plan.ts";
import { trainingChain } from "../../grad/training.ts";
import { CHAIN_PARTS, type ChainNames, type ChainPart } from "../../../runtime/chunked-backward.ts";

/** The chunked backward in a torch module: the chain's names and parts (plans `chain:<part>`), or why the model has none. */
export type TorchChunked = { names: ChainNames; parts: ChainPart[] } | { unavailable: string };

/** The chain's plans (keys `chain:<part>` and `chain64:<part>`); `keep` keeps a part's forms (float32; the cores also bf16). */
export function chainPlans(model: I.Model, bakedDims: Record<string, number>, keep: (p: CudaModelPlan, part: ChainPart) => CudaModelPlan): { plans: Record<string, CudaModelPlan>; chunked: TorchChunked } {
  const fixed = Object.fromEntries(model.dims.filter((d) => d.fixed !== undefined).map((d) => [d.name, d.fixed!]));
  const chain = trainingChain(model, { ...fixed, ...bakedDims });
  if ("why" in chain) return { plans: {}, chunked: { unavailable: chain.why } };
  const plans: Record<string, CudaModelPlan> = {};
  const parts: ChainPart[] = [];
  for (const part of CHAIN_PARTS) {
    const m = chain.models[part];
    if (!m) continue;
    plans[`chain:${part}`] = keep(lowerCuda(m).plan, part);
    plans[`chain64:${part}`] = lowerCudaF64(m);
    parts.push(part);
  }
  return { plans, chunked: { names: chain.names, parts } };
}
