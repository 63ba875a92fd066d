/**
 * The token-aligned delta backward's kernel module for the torch target (<Model>.torch.json "kernels"."deltaBwd";
 * runtime/torch/seqc_delta_bwd.py delta_launcher; tmp/s13/delta-spec.md of session 13): one translation unit with the
 * kernels' preludes and every kernel of a model's decay mode, each record carrying what the runtime picks and launches
 * by: op ("prep_fwd" / "prep_bwd" / "walk" / "adj"), decay, C, K, V, tin (the per-token inputs' type, "f32" / "bf16";
 * the walk reads float32 only: "f32"), cols (value columns a block: the walk's grid is (B H, V / cols); the per-chunk
 * kernels take all V, grid N), entry, threads, sharedBytes.
 *
 * Kernels: the walk over the chunks, both directions (compiler/backends/cuda/delta-walk.ts, C = 64, K = V = 64 and 128).
 */
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
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** A module's kernels: the model's decay mode and each kind's configurations. */
export interface DeltaBwdConfigs {
  decay: DeltaBwdDecay;
  walk: readonly DeltaWalkConfig[];
}

/** A model's configurations for its decay mode: every walk. */
export function deltaBwdConfigs(decay: DeltaBwdDecay): DeltaBwdConfigs {
  return { decay, walk: DELTA_WALK_CONFIGS };
}

/** The module of these configurations: the preludes, then each kernel. */
export function deltaBwdModule(configs: DeltaBwdConfigs): { source: string; kernels: DeltaBwdKernel[] } {
  const { decay } = configs;
  const kernels: DeltaBwdKernel[] = [];
  let source = DELTA_WALK_PRELUDE;
  for (const c of configs.walk) {
    const k = deltaWalkKernel(c);
    kernels.push({ op: "walk", decay, tin: "f32", C: k.C, K: k.K, V: k.V, cols: k.cols, entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes });
    source += deltaWalkSource(c);
  }
  return { source, kernels };
}
