/** Sizes that depend on dims, in the two forms the lowering needs: a kernel expression (override constants) and a plan SizeExpr. */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import type { SizeExpr } from "../../runtime/plan.ts";

/** Name of the override constant holding a dim. */
export const dimOverride = (name: string): string => `D_${name}`;

export function extentK(e: I.Extent): K.KExpr {
  return e.kind === "lit" ? K.u32(e.value) : K.ref(dimOverride(e.name));
}
export function extentS(e: I.Extent): SizeExpr {
  return e.kind === "lit" ? e.value : e.name;
}
export function productK(es: I.Extent[]): K.KExpr {
  return es.reduce<K.KExpr>((acc, e) => K.mul(acc, extentK(e)), K.u32(1));
}
export function productS(es: I.Extent[]): SizeExpr {
  const lits = es.filter((e) => e.kind === "lit").reduce((a, e) => a * (e as { value: number }).value, 1);
  const names = es.filter((e) => e.kind === "dim").map((e) => (e as { name: string }).name);
  if (names.length === 0) return lits;
  if (lits === 1 && names.length === 1) return names[0];
  return ["*", ...(lits === 1 ? [] : [lits]), ...names];
}
export const sumS = (xs: SizeExpr[]): SizeExpr => {
  const nz = xs.filter((x) => x !== 0);
  return nz.length === 0 ? 0 : nz.length === 1 ? nz[0] : ["+", ...nz];
};
export const mulS = (...xs: SizeExpr[]): SizeExpr => {
  const nz = xs.filter((x) => x !== 1);
  if (nz.some((x) => x === 0)) return 0;
  return nz.length === 0 ? 1 : nz.length === 1 ? nz[0] : ["*", ...nz];
};
export const maxS = (xs: SizeExpr[]): SizeExpr => (xs.length === 0 ? 1 : xs.length === 1 ? xs[0] : ["max", ...xs]);
/** A static size when every extent is a literal. */
export function staticSize(es: I.Extent[]): number | undefined {
  return es.every((e) => e.kind === "lit") ? es.reduce((a, e) => a * (e as { value: number }).value, 1) : undefined;
}

/** Row-major flat index of `idx` over `shape` (kernel expression). */
export function flatIndex(idx: K.KExpr[], shape: I.Extent[]): K.KExpr {
  let acc: K.KExpr = K.u32(0);
  idx.forEach((ix, a) => {
    acc = a === 0 ? ix : K.add(K.mul(acc, extentK(shape[a])), ix);
  });
  return acc;
}
