/**
 * The order a backward model's CUDA forms are picked in. The CUDA runner runs the first applicable
 * preferred form in plan order, and the sequential `thread` variant (one thread per lane, the lane's
 * local work serial in it) comes first. A backward core usually has few lanes per batch row: none of
 * its classes may replicate the adjoint recurrence (compiler/kernel/partition.ts), so an LSTM's core
 * has one lane per row, and `thread` would walk a whole row's step (its matvecs included) in one thread.
 * Here `thread` is preferred only with at least 32 lanes per batch row; otherwise the `workgroup` (or
 * `global`) variant spreads the row's local work over a block. Forward plans are not touched.
 */
import type { CudaModelPlan } from "../../../runtime/cuda/plan.ts";

export const THREAD_MIN_LANES = 32;

export function preferWideLanes(plan: CudaModelPlan): CudaModelPlan {
  return { ...plan, forms: plan.forms.map((f) => (f.form === "sequential" && f.variant === "thread" && f.prefer === undefined ? { ...f, prefer: [">=", "$P", THREAD_MIN_LANES] } : f)) };
}
