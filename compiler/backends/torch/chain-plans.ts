/**
 * The chunked backward's plans in a torch module (compiler/grad/chunked-chain.ts): per part of the chain,
 * `chain:<part>` (float32: every f32 form the CUDA backend has, the four cores also the chunked form's bf16 variants, and with a log
 * decay the transposed cores also bf16-input fp32-output ones, so the four core models run their chunked
 * forms — first in plan order, the runner's pick where they apply — the log-decay adjoint its scan, and
 * prep and the backward models of prep and post their sequential forms) and `chain64:<part>` (the same
 * models as double sequential kernels, for gradcheck). runtime/torch/seqc_chunked.py runs them with torch
 * ops as the glue (a stabilised form or value columns, mLSTM: also the stabiliser's prep and its backward, parts
 * "stab" / "stabBw", the chain as compiler/grad builds it; runtime/torch/seqc_chunked_stab.py runs it). Models the
 * chain does not cover get `{ unavailable: why }` and keep the step backward.
 */
import * as I from "../../ir/types.ts";
import type { CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { lowerCuda, lowerCudaF64 } from "../cuda/plan.ts";
import { BF16_IN_F32_OUT, CHUNK_IOS } from "../cuda/chunked-plan.ts";
import { trainingChain } from "../../grad/training.ts";
import { ALL_CHAIN_PARTS, type ChainPart } from "../../../runtime/chunked-backward.ts";
import { torchChain, type TorchBarNames, type TorchChainNames } from "./chain-copies.ts";
import { lowRankChainPlans, type TorchLowRankChunked } from "./chain-plans-lowrank.ts";
import { STATELESS_PARTS, statelessTwins } from "./stateless-bf16.ts";
import { ROWS_READOUT_LOW, ROWS_READOUT_TILES, rowsReadoutModule, type RowsReadoutKernel } from "../cuda/rows-readout.ts";
import { anchorChunksModule } from "../cuda/anchor-chunks.ts";
import { decayTermsModule } from "../cuda/decay-terms.ts";
import { revAddModule } from "../cuda/rev-add.ts";
import { rowsChunkModule } from "../cuda/rows-chunk.ts";
import { rowsSegStatesModule } from "../cuda/rows-seg-states.ts";

/** The chunked backward in a torch module: the chain's names and parts (plans `chain:<part>`), or why the model has none. */
export type TorchChunked = { names: TorchChainNames; parts: ChainPart[] } | TorchLowRankChunked | { unavailable: string };

/** A model-independent kernel module of a torch module (<Model>.torch.json `kernels`): its source, the kernels in it and, once built, its images. */
export interface TorchKernelModule { source: string; kernels: RowsReadoutKernel[]; ptx?: Record<string, string>; cubin?: Record<string, string> }

/** The transposed cores: with a log decay their chunked forms also read bf16 and write fp32 (runtime/cuda/plan.ts CudaFormPlan.out). */
const MIXED_PARTS = new Set<ChainPart>(["coreT", "adjointT"]);

/**
 * The outputs of stateless part `part` written in bf16 by its "-bf16out" twins (stateless-bf16.ts `bf16Out`;
 * runtime/torch/seqc_chunked.py STATELESS_OUT) where the chain has no per-key decay, value columns or stabiliser:
 * prep's outputs but the log decay (the pairs' keys and values and the readouts' queries, which the chunked cores read in
 * bf16: else the glue's float32 -> bf16 copy, Mamba-2's kk1), prep's backward's inputs' adjoints that are whole gradients
 * (no copy of the input among prep's outputs, post's backward's piece a literal zero or none: the bf16 gradient as
 * returned, Mamba-2's dB and ddt); none elsewhere.
 */
export function diagonalBf16Outputs(n: TorchChainNames, part: string): string[] {
  if (n.decay === "key" || n.columns || n.stab) return [];
  if (part === "prep") return n.prepOutputs.filter((o) => o !== n.ld);
  if (part === "prepBw") {
    const copied = new Set(Object.values(n.prepAliases ?? {}));
    const zeros = new Set(n.postBw.zeros ?? []);
    return Object.entries(n.prepBw.inputBar).filter(([i]) => !copied.has(i) && (n.postBw.inputBar[i] === undefined || zeros.has(n.postBw.inputBar[i]))).map(([, bar]) => bar);
  }
  return [];
}

/** The chain's plans (keys `chain:<part>` and `chain64:<part>`); `keep` keeps a part's forms (float32; the cores also bf16).
 * `copies`: the stateless parts without their copies and zeros (chain-copies.ts; runtime/torch/seqc_chunked.py takes
 * them on); without it, the chain's models and names as compiler/grad builds them (runtime/chunked-backward.ts). */
export function chainPlans(model: I.Model, bakedDims: Record<string, number>, keep: (p: CudaModelPlan, part: ChainPart) => CudaModelPlan, opts: { copies?: boolean } = {}): { plans: Record<string, CudaModelPlan>; chunked: TorchChunked; kernels?: Record<string, TorchKernelModule> } {
  const fixed = Object.fromEntries(model.dims.filter((d) => d.fixed !== undefined).map((d) => [d.name, d.fixed!]));
  const dims = { ...fixed, ...bakedDims };
  const full = trainingChain(model, dims);
  // a low-rank core (the delta-rule family): the low-rank chain's plans (chain-plans-lowrank.ts)
  if ("why" in full) return lowRankChainPlans(model, dims, keep as (p: CudaModelPlan, part: string) => CudaModelPlan, opts) ?? { plans: {}, chunked: { unavailable: full.why } };
  // prep's copies of inputs and the backward models' zeros and copies left to the glue (chain-copies.ts)
  const chain = opts.copies ? torchChain(full, dims) : full;
  const plans: Record<string, CudaModelPlan> = {};
  const parts: ChainPart[] = [];
  // a running backward model's outputs the glue need not read (chain-copies.ts zeros and copies; seqc_chunked.ZERO_STORES)
  const unwrittenOf = (part: ChainPart): string[] => {
    const bn = part === "postBw" || part === "prepBw" ? (chain.names[part] as TorchBarNames) : undefined;
    return bn && !bn.skip ? [...(bn.zeros ?? []), ...Object.keys(bn.copies ?? {})] : [];
  };
  for (const part of ALL_CHAIN_PARTS) {
    const m = chain.models[part];
    if (!m) continue;
    // with a scalar log decay, the transposed cores also get bf16-input, fp32-output variants: their dq / dk feed the decay
    // adjoint's cancelling sums q.dq - k.dk (runtime/torch/seqc_chunked.py TRANSPOSED_IO)
    // (a per-key decay's transposed cores run as the rows readout kernel, or torch ops: seqc_chunked.py PER_KEY_TRANSPOSED)
    const mixed = chain.names.ld && chain.names.decay !== "key" && MIXED_PARTS.has(part);
    const kept = keep(lowerCuda(m, mixed ? { chunkIos: [...CHUNK_IOS, BF16_IN_F32_OUT] } : {}).plan, part);
    // the stateless parts also read the forward's inputs and the outputs' cotangents as bf16 (stateless-bf16.ts)
    // (and, where the part's zero and copied outputs are written, twins that leave them unwritten: stateless-bf16.ts NO_ZEROS;
    // and the global form's twins walking items row by row, more rows a block: stateless-rows.ts; and, appended last, twins
    // writing the outputs the glue would convert to bf16 as bf16: diagonalBf16Outputs)
    plans[`chain:${part}`] = opts.copies && STATELESS_PARTS.has(part) ? statelessTwins(model, part, m, kept, Object.values(chain.names.postBw.outputBar), unwrittenOf(part), diagonalBf16Outputs(chain.names as TorchChainNames, part)) : kept;
    plans[`chain64:${part}`] = lowerCudaF64(m);
    parts.push(part);
  }
  // a per-key decay: the transposed cores' rows readout kernel (dq: the pairs (k, v) read out by dy; dk: the pairs (q, dy) read out by v)
  const np = chain.names.pairs.length, nr = chain.names.readouts.length;
  const kernels: Record<string, TorchKernelModule> = chain.names.decay === "key" ? { rowsReadout: rowsReadoutModule([{ pairs: np, readouts: nr }, { pairs: nr, readouts: np }], ROWS_READOUT_TILES, ROWS_READOUT_LOW) } : {};
  // one pair and one readout (GLA): the same products in the chunked form on tensor cores, b and c bf16 (seqc_chunked.py ROWS_FORM "chunk")
  if (chain.names.decay === "key" && np === 1 && nr === 1) kernels.rowsChunk = rowsChunkModule() as unknown as TorchKernelModule;
  // and its segments' end states in one kernel (seqc_chunked.py ROWS_SEG_STATES "cuda"; compiler/backends/cuda/rows-seg-states.ts)
  if (chain.names.decay === "key" && np === 1 && nr === 1) kernels.rowsSegStates = rowsSegStatesModule() as unknown as TorchKernelModule;
  // a log decay: the decay adjoint's anchor chunk products (runtime/torch/seqc_chunked.py ANCHOR_CHUNKS "kernel";
  // TorchKernelModule's kernels are typed as the rows readout's, the runtime reads entry, threads, sharedBytes and the module's own keys)
  if (chain.names.ld) kernels.anchorChunks = anchorChunksModule() as unknown as TorchKernelModule;
  // and its per-token terms q.dq - k.dk (seqc_chunked.py DECAY_TERMS "kernel": compiler/backends/cuda/decay-terms.ts)
  if (chain.names.ld) kernels.decayTerms = decayTermsModule() as unknown as TorchKernelModule;
  // and the reversed-time add of an input's two pieces, post's and the adjoint's reversed dv (seqc_chunked.py REV_ADD "kernel":
  // compiler/backends/cuda/rev-add.ts)
  if (chain.names.ld) kernels.revAdd = revAddModule() as unknown as TorchKernelModule;
  return { plans, chunked: { names: chain.names, parts }, ...(Object.keys(kernels).length ? { kernels } : {}) };
}
