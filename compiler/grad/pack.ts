/**
 * Fewer buffers for a model (used on backward models): required inputs of one shape become one input
 * with a leading axis, `x[i, j]` reading `pack[k, i, j]` where x is the group's k-th member. Each
 * input is a storage buffer of its own on WebGPU (16 per shader stage), and a backward model reads
 * the forward's inputs, every state before the step and every output's adjoint: packing brings every
 * stdlib backward under the limit. The caller interleaves the members' data per step
 * (runtime/train.ts packSteps): pack[b, t, k, ...] = member_k[b, t, ...].
 */
import * as I from "../ir/types.ts";

export interface InputPack {
  /** Name of the packed input. */
  name: string;
  /** Inputs it holds, in order along its leading axis. */
  members: string[];
}

const sameShape = (a: I.Extent[], b: I.Extent[]) => a.length === b.length && a.every((e, i) => (e.kind === "lit" ? b[i].kind === "lit" && b[i].value === e.value : b[i].kind === "dim" && (b[i] as { name: string }).name === e.name));

function mapReads(e: I.Expr, f: (r: Extract<I.Expr, { k: "read" }>) => I.Expr): I.Expr {
  switch (e.k) {
    case "read": return f(e);
    case "neg": return { k: "neg", a: mapReads(e.a, f) };
    case "bin": return { k: "bin", op: e.op, a: mapReads(e.a, f), b: mapReads(e.b, f) };
    case "call": return { k: "call", fn: e.fn, args: e.args.map((x) => mapReads(x, f)) };
    case "sum": return { k: "sum", vars: e.vars, body: mapReads(e.body, f) };
    default: return e;
  }
}

function mapStmts(body: I.Stmt[], f: (e: I.Expr) => I.Expr): I.Stmt[] {
  return body.map((s) => (s.k === "for" ? { ...s, body: mapStmts(s.body, f) } : { ...s, expr: f(s.expr) }));
}

/** Pack the required inputs of `model` that share a shape (groups of two or more). */
export function packInputs(model: I.Model): { model: I.Model; packs: InputPack[] } {
  const groups: I.TensorDecl[][] = [];
  for (const t of I.tensorsOfKind(model, "input")) {
    if (t.init) continue; // optional inputs keep their own buffer (and their has_ flag)
    const g = groups.find((x) => sameShape(x[0].shape, t.shape));
    if (g) g.push(t);
    else groups.push([t]);
  }
  const packs: InputPack[] = [];
  const where = new Map<string, { name: string; k: number }>();
  const taken = new Set(model.tensors.map((t) => t.name));
  const replaced = new Map<string, I.TensorDecl>();
  for (const g of groups.filter((x) => x.length > 1)) {
    let name = `pack${packs.length}`;
    while (taken.has(name)) name = `_${name}`;
    taken.add(name);
    packs.push({ name, members: g.map((t) => t.name) });
    g.forEach((t, k) => where.set(t.name, { name, k }));
    replaced.set(g[0].name, { name, kind: "input", shape: [{ kind: "lit", value: g.length }, ...g[0].shape], span: g[0].span });
  }
  if (!packs.length) return { model, packs };
  const tensors: I.TensorDecl[] = [];
  for (const t of model.tensors) {
    if (replaced.has(t.name)) tensors.push(replaced.get(t.name)!);
    else if (!where.has(t.name)) tensors.push(t);
  }
  const rewrite = (e: I.Expr) =>
    mapReads(e, (r) => {
      const w = where.get(r.tensor);
      return w ? { k: "read", tensor: w.name, idx: [{ kind: "lit", value: w.k }, ...r.idx] } : r;
    });
  return { model: { ...model, tensors, body: mapStmts(model.body, rewrite) }, packs };
}
