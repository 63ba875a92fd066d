/**
 * The plan of the two launches a chunked form gets around its core when the canonical form has a stabiliser or
 * value columns (compiler/forms/matrix-form.ts): their workspaces, grids and shared memory, the same for every
 * backend; each backend renders the kernels (compiler/backends/cuda/chunked-extra.ts, compiler/backends/wgsl/chunked-extra.ts).
 *   stab  one block of EXTRA_THREADS per batch x head, before phase A; workspace `stab` [B][H][T + 2].
 *   post  one thread per output element (b, t, head, value), after the walk; workspace `ybuf` [B][T][H][V + columns].
 */
import * as I from "../ir/types.ts";
import type { SizeExpr } from "../../runtime/plan.ts";
import { extentS } from "../kernel/symbolic.ts";
import { chunkSizes, type ChunkRows } from "./chunk-rows.ts";

/** Workspace names: the stabiliser's values, and y with its column readouts. */
export const STAB = "stab";
export const YBUF = "ybuf";
/** Threads per block (workgroup) of both launches. */
export const EXTRA_THREADS = 256;

export interface ChunkExtraLaunch {
  /** The launch's workspace and its size in 4-byte words. */
  workspace: { name: string; words: SizeExpr };
  grid: SizeExpr;
  sharedBytes: number;
}

/** The stabiliser launch (when the form has a stabiliser) and the post launch (when it has value columns). */
export function chunkExtraPlan(model: I.Model, cr: ChunkRows): { stab?: ChunkExtraLaunch; post?: ChunkExtraLaunch } {
  const { nH, Vd } = chunkSizes(model, cr);
  const V0: SizeExpr = extentS(I.findTensor(model, cr.form.state)!.shape[cr.form.value]);
  return {
    stab: cr.stab ? { workspace: { name: STAB, words: ["*", "B", nH, ["+", "T", 2]] }, grid: ["*", "B", nH], sharedBytes: 2 * EXTRA_THREADS * 4 } : undefined,
    post: cr.columns ? { workspace: { name: YBUF, words: ["*", "B", "T", nH, Vd] }, grid: ["ceilDiv", ["*", "B", "T", nH, V0], EXTRA_THREADS], sharedBytes: 0 } : undefined,
  };
}
