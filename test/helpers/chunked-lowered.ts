// A stdlib model and its chunked CUDA lowering, for the chunked-kernel tests (test/cuda-chunked-*.test.ts).
import { loadProgram } from "../../compiler/frontend/load.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { chunkedEligible, lowerChunked } from "../../compiler/backends/cuda/chunked-plan.ts";
import { ptxasUsage, type PtxasUsage } from "./ptxas-usage.ts";

/** the first model of stdlib/<name>.seq */
export const loadStdlib = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];

/** lowerChunked of stdlib/<name>.seq's model; throws with chunkedEligible's reason where it is not chunk-eligible */
export const lowered = (name: string, opts?: Parameters<typeof lowerChunked>[2]) => {
  const m = loadStdlib(name);
  const el = chunkedEligible(m);
  if (!el.ok) throw new Error(el.why);
  return lowerChunked(m, el, opts);
};

/** ptxas's report (sm_90) for the first step's entry of one bf16 chunked variant of stdlib/<name>.seq's model */
export const variantUsage = (nvcc: string, name: string, variant: string): PtxasUsage & { entry: string } => {
  const low = lowered(name, { only: (x) => x === variant, ios: [{ io: "bf16" }] });
  const entry = (low.forms[0].steps[0] as { entry: string }).entry;
  return { entry, ...ptxasUsage(nvcc, low.modules.bf16.source, [entry]).get(entry)! };
};
