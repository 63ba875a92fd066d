/**
 * The chunked backward chain's CUDA plans for a generated class on backend "cuda" (`chunked` in
 * <Model>.grad.cuda.json; runtime/trainer.ts runs them with the host glue of runtime/chunked-backward.ts or,
 * for a low-rank core, runtime/chunked-backward-lowrank.ts). The chain's models and their lowering are the
 * torch target's (compiler/backends/torch/chain-plans.ts, float32 plans only). A class keeps less of each:
 *
 * - the chunked parts (the four cores; the low-rank chain's chunk transitions) keep only the float32 chunked
 *   variants the runner's auto pick can reach (a non-zero `prefer`, and the first variant of each key tile and
 *   row count, the pick when none preferred applies), re-lowered with just those so that their module (and its
 *   PTX) holds just their kernels: about 0.8 MB of PTX per core and capability instead of 1.8 MB for all 33;
 * - the other parts their float32 forms (the low-rank chain's the form LR_FORMS gives, as on WebGPU; a stabilised
 *   form's stabiliser prep and its backward, parts "stab" / "stabBw", like prep);
 * - a per-key log decay (GLA; runtime/chunked-backward.ts chainRowsApply): `rowsReadout`, the rows readout kernel's
 *   module (rows-readout.ts) for the transposed cores' (pairs, readouts) and (readouts, pairs), float32, the tiles the
 *   runtime's pick reaches (ROWS_READOUT_TILES without the "smem" reductions, which the torch target reaches only by
 *   name). runtime/trainer.ts runs the transposed cores on it (runtime/cuda/rows-readout.ts) instead of their plans,
 *   which stay as the fallback (TrainerOptions.chunkedTransposed "plans" forces them).
 */
import type * as I from "../../ir/types.ts";
import type { CudaFormPlan, CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { chunkedEligible, lowerChunked } from "./chunked-plan.ts";
import { lowerCuda } from "./plan.ts";
import { keepForms } from "../torch/plans.ts";
import type { Training } from "../../grad/training.ts";
import { ALL_CHAIN_PARTS, chainRowsApply, isChainCore, type ChainPart } from "../../../runtime/chunked-backward.ts";
import { ROWS_READOUT_TILES, rowsReadoutModule } from "./rows-readout.ts";
import { LR_FORMS, LR_PARTS, type LrPart } from "../../../runtime/chunked-backward-lowrank.ts";
import type { CudaChunkedTraining } from "../../../runtime/trainer.ts";

/** Key tile and row count of a chunked variant (`chunked-split3-f32-k64-v16-a512-r1` -> `k64 r1`). */
function tileOf(f: CudaFormPlan): string {
  return `${f.variant.match(/-k(\d+)-/)?.[1]} ${f.variant.match(/-r(\d+)$/)?.[1]}`;
}

/** The variants auto can pick among `forms` (plan order): preferred ones, and the first of each key tile and row count. */
export function reachableChunked(forms: CudaFormPlan[]): Set<string> {
  const firsts = new Set<string>();
  const keep = new Set<string>();
  for (const f of forms) {
    const tile = tileOf(f);
    if (f.prefer !== 0 || !firsts.has(tile)) keep.add(f.variant);
    firsts.add(tile);
  }
  return keep;
}

/** `m`'s float32 chunked forms that auto can reach, in a module of just their kernels (no main translation unit), or why there are none. */
export function chunkedOnlyPlan(m: I.Model, p: CudaModelPlan): CudaModelPlan | { why: string } {
  const el = chunkedEligible(m);
  if (!el.ok) return { why: `${m.name} of the chain has no CUDA chunked form: ${el.why}` };
  const keep = reachableChunked(p.forms.filter((f) => f.form === "chunked" && (f.io ?? "f32") === "f32"));
  if (!keep.size) return { why: `${m.name} of the chain has no float32 CUDA chunked form` };
  // (lowerChunked emits a module only for the I/O types of the variants it keeps)
  const l = lowerChunked(m, el, { only: (v) => keep.has(v) });
  return { ...p, source: `// ${m.name}: every form lives in a module of its own`, forms: l.forms, modules: l.modules };
}

/** The chain's CUDA plans for the class of `model` (`t`: its training models, compiler/grad/training.ts), or why it has none. */
export function cudaChainTraining(model: I.Model, t: Extract<Training, { ok: true }>): CudaChunkedTraining {
  let why: string | undefined;
  /** Each part's plan: the chunked parts only their reachable float32 chunked forms, the others the form `formOf` gives. */
  const lowerParts = <P extends string>(parts: readonly P[], models: Partial<Record<P, I.Model>>, formOf: (part: P) => string) => {
    const plans: Partial<Record<P, CudaModelPlan>> = {};
    for (const part of parts) {
      const m = models[part];
      if (!m) continue;
      const p = lowerCuda(m).plan;
      if (formOf(part) !== "chunked") {
        plans[part] = keepForms(p, formOf(part));
        continue;
      }
      const r = chunkedOnlyPlan(m, p);
      if ("why" in r) why ??= r.why;
      plans[part] = "why" in r ? p : r;
    }
    return plans;
  };
  if (t.lowRankChain) {
    const plans = lowerParts(LR_PARTS, t.lowRankChain.models, (part) => LR_FORMS[part]);
    return why ? { unavailable: why } : { lowRank: t.lowRankChain.names, plans };
  }
  if ("why" in t.chain) return { unavailable: t.chain.why };
  // the models and names compiler/grad builds (runtime/chunked-backward.ts's glue runs them), lowered as the torch
  // target lowers them (its chain-plans.ts may leave prep's copies to its own glue; this glue needs the full models)
  const plans = lowerParts(ALL_CHAIN_PARTS, t.chain.models, (part) => (isChainCore(part) ? "chunked" : "auto"));
  if (why) return { unavailable: why };
  const n = t.chain.names;
  if (!chainRowsApply(n)) return { names: n, plans };
  const np = n.pairs.length, nr = n.readouts.length;
  return { names: n, plans, rowsReadout: cudaRowsModule(np, nr) };
}

/** The rows readout module a class's chain carries for `np` pairs and `nr` readouts (dq: (np, nr); dk: (nr, np)). */
export function cudaRowsModule(np: number, nr: number): { source: string; kernels: ReturnType<typeof rowsReadoutModule>["kernels"] } {
  return rowsReadoutModule([{ pairs: np, readouts: nr }, { pairs: nr, readouts: np }], ROWS_READOUT_TILES.filter((t) => t.red !== "smem"));
}
