/**
 * The token-aligned delta backward's kernel module for the torch target (<Model>.torch.json "kernels"."deltaBwd";
 * runtime/torch/seqc_delta_bwd.py delta_launcher; tmp/s13/delta-spec.md of session 13): one translation unit with the
 * kernels' preludes and every kernel of a model's decay mode, each record carrying what the runtime picks and launches
 * by: op ("prep_fwd" / "prep_bwd" / "walk" / "adj"), decay, C, K, V, tin (the per-token inputs' type, "f32" / "bf16";
 * the walk reads float32 only: "f32"), cols (value columns a block: the walk's grid is (B H, V / cols); the per-chunk
 * kernels take all V, grid N), entry, threads, sharedBytes, and math on the tensor-core twins only ("tf32": entries
 * ending _tf32; absent: fp32 FMAs on the SIMT cores).
 *
 * Kernels, C = 64: the per-chunk preparations of both walks (compiler/backends/cuda/delta-prep.ts, K = V = 64 and 128,
 * f32 and bf16 inputs), the walk over the chunks, both directions (delta-walk.ts, K = V = 64 and 128), the per-chunk
 * adjoint (delta-adjoint.ts, K = V = 64 and 128, f32 and bf16 inputs); then the TF32 twins of prep (delta-prep-mma.ts,
 * bf16 inputs, K = V = 64 and 128) and of the adjoint (delta-adjoint-mma.ts, bf16 inputs, K = V = 64 and 128), after the
 * fp32 kernels.
 */
import { DELTA_ADJ_CONFIGS, DELTA_ADJ_K128_CONFIGS, DELTA_ADJ_K128_MMA_CONFIGS, DELTA_ADJ_MMA_CONFIGS, DELTA_ADJ_PRELUDE, deltaAdjKernel, deltaAdjSource, type DeltaAdjConfig } from "./delta-adjoint.ts";
import { DELTA_PRELUDE, DELTA_PREP_CONFIGS, DELTA_PREP_MMA_CONFIGS, deltaPrepKernel, deltaPrepSource, type DeltaPrepConfig } from "./delta-prep.ts";
import { DELTA_WALK_CONFIGS, DELTA_WALK_PRELUDE, deltaWalkKernel, deltaWalkSource, type DeltaWalkConfig } from "./delta-walk.ts";

export type DeltaBwdOp = "prep_fwd" | "prep_bwd" | "walk" | "adj";
export type DeltaBwdDecay = "none" | "scalar";

export interface DeltaBwdKernel {
  op: DeltaBwdOp;
  decay: DeltaBwdDecay;
  tin: "f32" | "bf16";
  C: number;
  K: number;
  V: number;
  cols: number;
  /** The tensor-core twins' math ("tf32"); absent: fp32 on the SIMT cores. */
  math?: "tf32" | "tf32x3";
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** A module's kernels: the model's decay mode and each kind's configurations (prep's and the adjoint's of that mode, their
 * twins among them). */
export interface DeltaBwdConfigs {
  decay: DeltaBwdDecay;
  prep: readonly DeltaPrepConfig[];
  walk: readonly DeltaWalkConfig[];
  adj: readonly DeltaAdjConfig[];
}

/** A model's configurations for its decay mode: prep's and the adjoint's of that mode (`twins`: with their TF32 twins,
 * default), every walk. */
export function deltaBwdConfigs(decay: DeltaBwdDecay, twins = true): DeltaBwdConfigs {
  const mine = <T extends { decay: string }>(cs: readonly T[]) => cs.filter((c) => c.decay === decay);
  return { decay, prep: mine([...DELTA_PREP_CONFIGS, ...(twins ? DELTA_PREP_MMA_CONFIGS : [])]), walk: DELTA_WALK_CONFIGS, adj: mine([...DELTA_ADJ_CONFIGS, ...DELTA_ADJ_K128_CONFIGS, ...(twins ? [...DELTA_ADJ_MMA_CONFIGS, ...DELTA_ADJ_K128_MMA_CONFIGS] : [])]) };
}

/** The module of these configurations: the preludes (prep's, the adjoint's, the walk's with the TF32 helpers: each
 * guarded or a repeatable definition), then the fp32 kernels (prep's, the walks, the adjoints), then the twins. */
export function deltaBwdModule(configs: DeltaBwdConfigs): { source: string; kernels: DeltaBwdKernel[] } {
  const { decay } = configs;
  for (const c of [...configs.prep, ...configs.adj])
    if (c.decay !== decay) throw new Error(`delta-bwd: a ${c.decay} decay kernel in a ${decay} module`);
  const kernels: DeltaBwdKernel[] = [];
  let source = DELTA_PRELUDE + DELTA_ADJ_PRELUDE + DELTA_WALK_PRELUDE;
  const add = (k: Omit<DeltaBwdKernel, "cols"> & { cols?: number }, src: string) => {
    const { op, tin, C, K, V, math, entry, threads, sharedBytes } = k;
    kernels.push({ op, decay, tin, C, K, V, cols: k.cols ?? V, ...(math ? { math } : {}), entry, threads, sharedBytes });
    source += src;
  };
  for (const twins of [false, true]) {
    for (const c of configs.prep.filter((x) => !!x.math === twins)) add({ ...deltaPrepKernel(c), op: c.op === "fwd" ? "prep_fwd" : "prep_bwd" }, deltaPrepSource(c));
    if (!twins) for (const c of configs.walk) add({ ...deltaWalkKernel(c), decay, tin: "f32" }, deltaWalkSource(c));
    for (const c of configs.adj.filter((x) => !!x.math === twins)) add({ ...deltaAdjKernel(c), op: "adj" }, deltaAdjSource(c));
  }
  return { source, kernels };
}
