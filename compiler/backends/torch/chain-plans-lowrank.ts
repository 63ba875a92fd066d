/**
 * The low-rank chunked backward's plans in a torch module (the delta-rule family: compiler/grad/chunked-chain-lowrank.ts):
 * per part of the low-rank chain, `chain:<part>` (float32: every f32 form the CUDA backend has; the chunk transitions
 * augF / augA run their chunked forms, the per-chunk readouts read / fwd / adjoint, the pass over chunks, the
 * log-decay adjoint and prep / post's backward models the runner's pick; the stateless parts prep, prepBw and postBw
 * also the GLA chain's bf16-input, warp-split, no-zeros and row-major twins: stateless-bf16.ts statelessTwins) and `chain64:<part>` (double sequential
 * kernels, for gradcheck); prep without its copies of inputs (chain-copies-lowrank.ts: the glue binds them to the inputs;
 * RWKV-7 has no prep). runtime/torch/seqc_chunked_lowrank.py runs them with torch ops as the glue. The module's
 * `chunked` entry is `{ lowRank: names, parts }` (the WebGPU classes' training plans use the same key). With one
 * low-rank pair per micro-step the module also gets the fused chunk transitions (`kernels.lowRankCore`,
 * compiler/backends/cuda/lowrank-core.ts: the configurations of the model's decay mode), which the glue launches where
 * one matches (seqc_chunked_lowrank.py LR_FUSED); with no or a scalar decay also the fused readouts from the chunk start
 * states (`kernels.lowRankReadout`, compiler/backends/cuda/lowrank-readout.ts: both axes of the model's decay mode,
 * M = E + P events, which must equal E + R for the adjoint; LR_FUSED_READ); with a per-key decay their per-key
 * kernels instead (`kernels.lowRankReadoutKey`, compiler/backends/cuda/lowrank-readout-key.ts: both axes; LR_READ_KEY);
 * and the walks over the chunks
 * (`kernels.lowRankPass`, compiler/backends/cuda/lowrank-pass.ts: both directions at the K = V = 64 configurations;
 * LR_FUSED_PASS); with one low-rank pair, one readout and no or a scalar decay the chunk-state backward's per-chunk
 * kernels (`kernels.lowRankWy`, compiler/backends/cuda/lowrank-wy.ts: both ops of the model's decay mode; LR_FUSED_WY).
 * With one low-rank pair, one input pair and one readout (E = P = R = 1), any decay (RWKV-7's per-key one too), also the
 * token-aligned delta backward's kernels (`kernels.deltaBwd`, compiler/backends/cuda/delta-bwd.ts: those of the model's decay mode;
 * runtime/torch/seqc_delta_bwd.py, LR_BWD "delta").
 */
import * as I from "../../ir/types.ts";
import type { CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { lowerCuda, lowerCudaF64 } from "../cuda/plan.ts";
import { trainingLowRankChain } from "../../grad/training.ts";
import { LR_PARTS, type LrPart } from "../../../runtime/chunked-backward-lowrank.ts";
import { LOWRANK_CORE_CONFIGS, LOWRANK_CORE_MMA_CONFIGS, lowRankCoreModule } from "../cuda/lowrank-core.ts";
import { LOWRANK_READ_CONFIGS, lowRankReadModule } from "../cuda/lowrank-readout.ts";
import { LOWRANK_READ_COLS_CONFIGS, withReadCols } from "../cuda/lowrank-readout-cols.ts";
import { LOWRANK_READ_KEY_CONFIGS, lowRankReadKeyModule } from "../cuda/lowrank-readout-key.ts";
import { lowRankPassModule } from "../cuda/lowrank-pass.ts";
import { LOWRANK_WY_CONFIGS, lowRankWyModule } from "../cuda/lowrank-wy.ts";
import { deltaBwdConfigs, deltaBwdModule } from "../cuda/delta-bwd.ts";
import { deltaRModule } from "../cuda/delta-r.ts";
import type { TorchKernelModule } from "./chain-plans.ts";
import { zeroOutputs } from "./chain-copies.ts";
import { STATELESS_PARTS, statelessTwins } from "./stateless-bf16.ts";
import { torchLowRankChain, type TorchLrChainNames } from "./chain-copies-lowrank.ts";

/** The low-rank chain in a torch module: its names and the parts that have plans (`chain:<part>`). */
export interface TorchLowRankChunked { lowRank: TorchLrChainNames; parts: LrPart[] }

/** The outputs of stateless part `part` written in bf16 where the delta backward's kernels take bf16 per-token tensors
 * (E = P = R = 1, one micro-step a token; stateless-bf16.ts `bf16Out`, seqc_chunked_lowrank.LR_DELTA_GLUE "bf16"): prep's
 * outputs but the log decays (float32 to the glue), post's backward's readouts' adjoints (dY), prep's backward's inputs'
 * adjoints that are whole gradients (the bf16 gradient as returned); none elsewhere. */
export function deltaBf16Outputs(n: TorchLrChainNames, part: string): string[] {
  // (one step a token: the pair's step once, the rest scalar decay steps folded into it, seqc_chunked_lowrank.delta_pattern)
  const pairs = n.steps.filter((s) => s.lowRank.length || s.inputs.length);
  if (!(n.E === 1 && n.P === 1 && n.R === 1 && pairs.length === 1 && n.steps.every((s) => s.count === 1))) return [];
  if (part === "prep") {
    const lds = new Set(n.steps.flatMap((s) => (s.ld ? [s.ld.name] : [])));
    return n.prepOutputs.filter((o) => !lds.has(o));
  }
  if (part === "postBw") return n.readouts.map((r) => n.postBw.inputBar[r.y]).filter((x): x is string => Boolean(x));
  if (part === "prepBw") {
    // the inputs' adjoints that are the gradient as returned: prep's backward's only piece (no copy of the input among
    // prep's outputs, post's backward's piece a literal zero or none), summed into nothing by the glue
    const copied = new Set(Object.values(n.prepAliases ?? {}));
    const zeros = new Set(n.postBw.zeros ?? []);
    return Object.entries(n.prepBw.inputBar).filter(([i]) => !copied.has(i) && (n.postBw.inputBar[i] === undefined || zeros.has(n.postBw.inputBar[i]))).map(([, bar]) => bar);
  }
  return [];
}

/** The adjoints of prep's outputs that prep's backward may read in bf16 (its "-bf16bar" twins, stateless-bf16.ts
 * statelessTwins; seqc_delta_bwd LR_DELTA_ADJ_OUT "bf16": the delta adjoint's gradients of the per-token tensors written
 * as bf16): those of prep's bf16 outputs (deltaBf16Outputs "prep": not the log decays, whose adjoint dLD is float32). */
export function deltaBf16Bars(n: TorchLrChainNames): string[] {
  return deltaBf16Outputs(n, "prep").map((o) => n.prepBw.outputBar[o]).filter((x): x is string => Boolean(x));
}

/**
 * The low-rank chain's plans (keys `chain:<part>` and `chain64:<part>`) where the model has a low-rank core that
 * the chain covers, else undefined. `keep` keeps a part's float32 forms. `dims`: fixed dims and the dims baked
 * at compile time (a micro-step loop's extent, which the chain's timeline unrolls). `copies`: prep without its copies of
 * inputs (chain-copies-lowrank.ts; seqc_chunked_lowrank.py binds them to the inputs); without it, the chain as
 * compiler/grad builds it.
 */
export function lowRankChainPlans(model: I.Model, dims: Record<string, number>, keep: (p: CudaModelPlan, part: LrPart) => CudaModelPlan, opts: { copies?: boolean } = {}): { plans: Record<string, CudaModelPlan>; chunked: TorchLowRankChunked; kernels?: Record<string, TorchKernelModule> } | undefined {
  const full = trainingLowRankChain(model, dims);
  if (!full) return undefined;
  const chain = opts.copies ? torchLowRankChain(full, dims) : full;
  const plans: Record<string, CudaModelPlan> = {};
  const parts: LrPart[] = [];
  for (const part of LR_PARTS) {
    const m = chain.models[part];
    if (!m) continue;
    const kept = keep(lowerCuda(m).plan, part);
    // the stateless parts: the GLA chain's twins (stateless-bf16.ts statelessTwins; the glue's trial picks among them for
    // bf16 tensors, seqc_chunked_lowrank.LR_STATELESS), prep's and post's backward without their literal zeros in the
    // "-nz" twins (the glue drops those outputs: no piece of any sum)
    plans[`chain:${part}`] = STATELESS_PARTS.has(part) ? statelessTwins(model, part, m, kept, Object.values(chain.names.postBw.outputBar), part === "prep" ? [] : zeroOutputs(m), deltaBf16Outputs(chain.names, part), part === "prepBw" ? deltaBf16Bars(chain.names) : []) : kept;
    plans[`chain64:${part}`] = lowerCudaF64(m);
    parts.push(part);
  }
  const configs = [...LOWRANK_CORE_CONFIGS, ...LOWRANK_CORE_MMA_CONFIGS].filter((c) => c.decay === chain.names.decay);
  // TorchKernelModule's kernels are typed as the rows readout's; the runtime reads only entry, threads, sharedBytes and each module's own keys
  const kernels: Record<string, TorchKernelModule> = {};
  if (chain.names.E === 1 && configs.length) kernels.lowRankCore = lowRankCoreModule(configs) as unknown as TorchKernelModule;
  const { E, P, R } = chain.names;
  const reads = LOWRANK_READ_CONFIGS.filter((c) => c.decay === chain.names.decay && c.M === E + P && c.M === E + R);
  // and at K = V = 128 the readouts' tensor-core twin in output-column groups (lowrank-readout-cols.ts; LR_READ_K128)
  const readCols = LOWRANK_READ_COLS_CONFIGS.filter((c) => c.decay === chain.names.decay && c.M === E + P && c.M === E + R);
  if (reads.length) kernels.lowRankReadout = withReadCols(lowRankReadModule(reads), readCols) as unknown as TorchKernelModule;
  const keyReads = chain.names.decay === "key" ? LOWRANK_READ_KEY_CONFIGS.filter((c) => c.M === E + P && c.M === E + R) : [];
  if (keyReads.length) kernels.lowRankReadoutKey = lowRankReadKeyModule(keyReads) as unknown as TorchKernelModule;
  kernels.lowRankPass = lowRankPassModule() as unknown as TorchKernelModule;
  const wy = LOWRANK_WY_CONFIGS.filter((c) => c.decay === chain.names.decay);
  if (E === 1 && R === 1 && wy.length) kernels.lowRankWy = lowRankWyModule(wy) as unknown as TorchKernelModule;
  const decay = chain.names.decay;
  if (E === 1 && P === 1 && R === 1) kernels.deltaBwd = deltaBwdModule(deltaBwdConfigs(decay)) as unknown as TorchKernelModule;
  // the delta backward's reads from the chunk states the forward keeps (delta-r.ts; seqc_delta_bwd LR_FWD_STATES): no or a
  // scalar decay only (a per-key decay's forward chunks are not its 64 tokens)
  if (E === 1 && P === 1 && R === 1 && decay !== "key") kernels.deltaStates = deltaRModule() as unknown as TorchKernelModule;
  return { plans, chunked: { lowRank: chain.names, parts }, ...(Object.keys(kernels).length ? { kernels } : {}) };
}
