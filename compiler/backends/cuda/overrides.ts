/** Values of the override constants the CUDA-specific kernels declare: dims, packed-param offsets, plan vars. */
import * as I from "../../ir/types.ts";
import { sumS, productS } from "../../kernel/symbolic.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";

export function overrideValues(model: I.Model, names: string[]): Record<string, SizeExpr> {
  const known: Record<string, SizeExpr> = {};
  for (const d of model.dims) known[`D_${d.name}`] = d.name;
  let acc: SizeExpr[] = [];
  for (const t of I.tensorsOfKind(model, "param")) {
    known[`PO_${t.name}`] = sumS(acc);
    acc = [...acc, productS(t.shape)];
  }
  const out: Record<string, SizeExpr> = {};
  for (const n of names) out[n] = known[n] ?? n;
  return out;
}
