/**
 * The elementwise linear system behind the scan form: for states X_1..X_k of one shape,
 *     X_s,t[v] = sum_r A[s][r] X_r,t-1[v] + b_s[v]          (v = the index tuple; A, b free of state)
 * A single diagonal/scalar/identity state is the k = 1 case; S4D's real and imaginary parts
 * (a complex diagonal state written as two real states) are a k = 2 case. Pairs (A_t, b_t) compose
 * associatively: (A2, b2) o (A1, b1) = (A2 A1, A2 b1 + b2), which is what a scan needs.
 */
import * as I from "../ir/types.ts";
import type { Def } from "./inline.ts";
import { Renamer } from "./inline.ts";
import { linearize } from "./linearize.ts";

export interface ScanSystem {
  states: string[];
  /** Index variables of the element, shared by every expression below. */
  vars: I.IndexVar[];
  /** A[s][r]: coefficient of state r (step t-1) in state s (step t). */
  A: I.Expr[][];
  b: I.Expr[];
}

export type ScanSystemResult = { ok: true; system: ScanSystem } | { ok: false; reason: string };

const num = (value: number): I.Expr => ({ k: "num", value });
const mulAll = (fs: I.Expr[]): I.Expr => fs.reduce<I.Expr | null>((a, f) => (a ? { k: "bin", op: "*", a, b: f } : f), null) ?? num(1);
const addTo = (a: I.Expr, b: I.Expr): I.Expr => (a.k === "num" && a.value === 0 ? b : { k: "bin", op: "+", a, b });

export function scanSystem(model: I.Model, finalDefs: Map<string, Def>, renamer: Renamer): ScanSystemResult {
  const decls = I.tensorsOfKind(model, "state");
  if (!decls.length) return { ok: false, reason: "no state" };
  const shape = decls[0].shape;
  for (const d of decls) {
    if (d.shape.length !== shape.length || d.shape.some((e, i) => !I.sameExtent(e, shape[i], model.dims))) {
      return { ok: false, reason: `states ${decls[0].name}${I.shapeText(shape)} and ${d.name}${I.shapeText(d.shape)} differ in shape` };
    }
  }
  const names = decls.map((d) => d.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const first = [...finalDefs.values()][0];
  const vars = first ? first.vars : shape.map((e, p) => renamer.fresh({ id: -1, name: `v${p}`, extent: e }));
  const A: I.Expr[][] = names.map(() => names.map(() => num(0)));
  const b: I.Expr[] = names.map(() => num(0));
  for (const [s, name] of names.entries()) {
    const def = finalDefs.get(name);
    if (!def) {
      A[s][s] = num(1);
      continue;
    }
    const env = new Map<number, I.Index>(def.vars.map((v, p) => [v.id, { kind: "var", v: vars[p] }]));
    const expr = renamer.rename(def.expr, env);
    const lin = linearize(expr, (t) => index.has(t));
    if (!lin.ok) return { ok: false, reason: `${name}: ${lin.reason}` };
    for (const t of lin.terms) {
      const aligned = t.read.idx.every((ix, p) => ix.kind === "var" && ix.v.id === vars[p].id);
      if (!aligned) return { ok: false, reason: `${name} reads ${t.read.tensor} at another element: not elementwise` };
      const r = index.get(t.read.tensor)!;
      const coef = t.sums.length ? ({ k: "sum", vars: t.sums, body: mulAll(t.factors) } as I.Expr) : mulAll(t.factors);
      A[s][r] = addTo(A[s][r], coef);
    }
    if (lin.c) b[s] = lin.c;
  }
  return { ok: true, system: { states: names, vars, A, b } };
}
