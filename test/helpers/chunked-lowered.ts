// A stdlib model and its chunked CUDA lowering, for the chunked-kernel tests (test/cuda-chunked-*.test.ts).
import { loadProgram } from "../../compiler/frontend/load.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { chunkedEligible, lowerChunked } from "../../compiler/backends/cuda/chunked-plan.ts";

/** the first model of stdlib/<name>.seq */
export const loadStdlib = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];

/** lowerChunked of stdlib/<name>.seq's model; throws with chunkedEligible's reason where it is not chunk-eligible */
export const lowered = (name: string, opts?: Parameters<typeof lowerChunked>[2]) => {
  const m = loadStdlib(name);
  const el = chunkedEligible(m);
  if (!el.ok) throw new Error(el.why);
  return lowerChunked(m, el, opts);
};
