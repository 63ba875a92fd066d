/**
 * What a generated class needs to train a model, built once at compile time: the recording forward
 * (each state before each step as an extra output), the backward model (the state-adjoint recurrence,
 * same-shape inputs packed) and its param-adjoint passes, with the names that tie them together. The backward unrolls the
 * step's `for` loops, so it is built here only when their extents are known without the dims bound
 * at create(): literals, fixed dims, or dims given at compile time (`seqc compile --dims J=2`, then
 * `bakedDims` records them and the runtime holds create() to them); otherwise `why` says which loop
 * stops it.
 */
import * as I from "../ir/types.ts";
import { recording, trainingBackward } from "./run.ts";
import { modelChain, type Chain } from "./chunked-chain.ts";
import { lowRankChain, type LrChain } from "./chunked-chain-lowrank.ts";
import type { GradNames } from "../../runtime/train.ts";
import { matrixForm } from "../forms/matrix-form.ts";

/**
 * `passes`: per param, the model that sums its adjoint over the steps outside the recurrence, and per input whose
 * adjoint left the recurrence, the model that computes it (split.ts; keyed by the param's / input's name);
 * `chain`: the chunked backward's models and names (chunked-chain.ts), or why the model has none; `lowRankChain`:
 * for a low-rank core (the delta-rule family, which `chain` refuses), the chain of chunked-chain-lowrank.ts.
 */
export type Training = { ok: true; record: I.Model; backward: I.Model; passes: Record<string, I.Model>; names: GradNames; bakedDims: Record<string, number>; chain: Chain | { why: string }; lowRankChain?: LrChain } | { ok: false; why: string };

/** The chunked backward chain at the dims known at compile time (stabilised forms and value columns included: the
 * generated classes and the torch target run them), or why there is none. */
export function trainingChain(model: I.Model, dims: Record<string, number>): Chain | { why: string } {
  try {
    return modelChain(model, dims);
  } catch (e) {
    return { why: (e as Error).message };
  }
}

/** The low-rank chain at the dims known at compile time, where the model has a low-rank core the chunked backward covers. */
export function trainingLowRankChain(model: I.Model, dims: Record<string, number>): LrChain | undefined {
  const mf = matrixForm(model);
  if (!mf.ok || !mf.form.lowRank) return undefined;
  try {
    return lowRankChain(model, dims);
  } catch {
    return undefined;
  }
}

/** Dims that are extents of the step's `for` loops and not fixed in the model. */
function loopDims(model: I.Model, body: I.Stmt[], out = new Set<string>()): Set<string> {
  for (const s of body) {
    if (s.k !== "for") continue;
    const e = s.v.extent;
    if (e.kind === "dim" && model.dims.find((d) => d.name === e.name)?.fixed === undefined) out.add(e.name);
    loopDims(model, s.body, out);
  }
  return out;
}

/** `dims`: sizes given at compile time (`--dims`); those of loop extents are baked into the backward. */
export function trainingModels(model: I.Model, dims: Record<string, number> = {}): Training {
  const loops = [...loopDims(model, model.body)];
  const missing = loops.filter((d) => dims[d] === undefined);
  if (missing.length) {
    const d = missing[0];
    return { ok: false, why: `${model.name}'s step loops over ${d}, and its backward is built per value of ${d}: compile with --dims ${missing.map((x) => `${x}=<size>`).join(",")} (the class then trains at that size)` };
  }
  for (const d of loops) if (!Number.isInteger(dims[d]) || dims[d] < 1) throw new Error(`--dims ${d}=${dims[d]}: a size must be a positive integer`);
  const bakedDims = Object.fromEntries(loops.map((d) => [d, dims[d]]));
  const fixed = Object.fromEntries(model.dims.filter((d) => d.fixed !== undefined).map((d) => [d.name, d.fixed!]));
  const bw = trainingBackward(model, { ...fixed, ...bakedDims });
  return { ok: true, record: recording(model), backward: bw.model, passes: Object.fromEntries([...bw.passes.map((p) => [p.param, p.model] as const), ...bw.inputPasses.map((p) => [p.input, p.model] as const)]), names: bw.names, bakedDims, chain: trainingChain(model, { ...fixed, ...bakedDims }), lowRankChain: trainingLowRankChain(model, { ...fixed, ...bakedDims }) };
}
