/**
 * The low-rank chain's prep without its copies of inputs, as the torch target runs it (the GLA chain's chain-copies.ts
 * torchChain does the same for its chain): prep's outputs that are, element for element, one of the model's inputs
 * (DeltaNet's w1 = k, vv3 = v; Gated DeltaNet's also ld0 = g; every one of RWKV-7's six) are not written: the glue
 * (runtime/torch/seqc_chunked_lowrank.py lowrank_backward) binds each to its input tensor (a view) and adds the output's
 * adjoint to the input's gradient (the copy's backward is the identity), so prep's backward is built from the prep that
 * is left. A prep whose outputs are all copies (RWKV-7) has neither prep nor prep's backward: no part runs for them.
 * Why: prep wrote five float32 tensors a token of which two were plain copies (DeltaNet bf16 at (8, 2048, 16, 64): prep
 * 0.221 ms against a floor of 0.105 with the copies counted), and prep's backward read their five adjoints.
 * Post's backward keeps its model; its names say which of its outputs are copies of its inputs (`copies`: the delta
 * family's y0__bar = o__bar) and which are literal zeros (`zeros`), so the delta backward's glue may take the cotangent
 * for dY and not run it where those are all its outputs (seqc_chunked_lowrank.LR_DELTA_GLUE "bf16").
 */
import { buildBackward } from "../../grad/backward.ts";
import type { LrChain } from "../../grad/chunked-chain-lowrank.ts";
import type { LrChainNames } from "../../../runtime/chunked-backward-lowrank.ts";
import * as I from "../../ir/types.ts";
import { copiedOutputs, withoutAliases, zeroOutputs, type TorchBarNames } from "./chain-copies.ts";

/** The low-rank chain's names in a torch module: `prepAliases` {prep output: input} are prep's copies of inputs, which
 * prep and its backward leave out (prepOutputs and prepBw name the rest; none with every output a copy). */
export type TorchLrChainNames = LrChainNames & { prepAliases?: Record<string, string>; postBw: TorchBarNames };

/** names.postBw with its model's `copies` {output: input it equals} and `zeros` where it has copies (else as it is). */
function postNames(chain: LrChain): LrChain["names"] {
  const pb = chain.models.postBw;
  const copies = pb ? copiedOutputs(pb) : {};
  if (!pb || !Object.keys(copies).length) return chain.names;
  const zeros = zeroOutputs(pb).filter((o) => I.tensorsOfKind(pb, "output").some((t) => t.name === o));
  return { ...chain.names, postBw: { ...chain.names.postBw, copies, ...(zeros.length ? { zeros: [...zeros].sort() } : {}) } as TorchBarNames };
}

/** The chain with prep's copies of inputs left to the glue (the file's comment); unchanged where prep has none. */
export function torchLowRankChain(full: LrChain, dims: Record<string, number>): { names: TorchLrChainNames; models: LrChain["models"] } {
  const chain = { ...full, names: postNames(full) };
  const prep = chain.models.prep;
  const aliases = prep ? copiedOutputs(prep) : {};
  const n = Object.keys(aliases).length;
  if (!prep || n === 0) return chain;
  const prepOutputs = chain.names.prepOutputs.filter((o) => !(o in aliases));
  if (prepOutputs.length === 0) {
    const none = { outputBar: {}, inputBar: {}, paramBar: {} };
    return { names: { ...chain.names, prepOutputs, prepBw: none, prepAliases: aliases }, models: { ...chain.models, prep: undefined, prepBw: undefined } };
  }
  const reduced = withoutAliases(prep, aliases);
  const bw = buildBackward(reduced, dims, { paramAdjoints: "output" });
  return {
    names: { ...chain.names, prepOutputs, prepBw: { outputBar: bw.outputBar, inputBar: bw.inputBar, paramBar: bw.paramBar }, prepAliases: aliases },
    models: { ...chain.models, prep: reduced, prepBw: bw.model },
  };
}
