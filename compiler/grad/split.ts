/**
 * Param adjoints out of the adjoint recurrence: the backward model (backward.ts, param adjoints in
 * states) becomes
 *   core    the recurrence that carries only the state adjoints (and writes the input adjoints per
 *           step), plus one per-step output for each per-step value a param adjoint reads (`pre__bar`);
 *   passes  per param, a model of one statement, `P__bar[...] = P__bar[...] + f(per-step values)`: a sum
 *           over time of what the core wrote, with no recurrence in it.
 * A pass's lanes are the param's elements (B x |P| of them), each summing over the steps, and since the
 * state only accumulates, the runtime folds time into the batch (runtime/train.ts passFold: [B, T] runs as
 * [B T / C, C] and the final states are summed): dW = sum_t g_t x_t^T as a parallel reduction after the state adjoints are known,
 * as cuDNN and flash-linear-attention compute it. Inside the recurrence, an LSTM's dW_ih[g, j, i] gave
 * the kernel's partition a class per param axis, every lane of which re-ran the h_bar / c_bar recurrence.
 *
 * Input adjoints leave it too where they are one matrix product of per-step values with a param
 * (`x__bar[i] = sum(g, j) pre_bar[g, j] * W_ih[g, j, i]`, the shape compiler/kernel/param-product.ts finds): no
 * state adjoint reads them, so the core only exports the per-step values they read, and an *input pass* (a
 * model without state: one output statement) computes them for all B x T steps at once after the core. The
 * core then reads only the recurrent param (W_hh) per step. Other input adjoints (Mamba-2's dt_bar, a sum over
 * the state's axes) stay in the core, where they cost no extra pass over exported state-sized values.
 *
 * Two shapes of param pass need no kernel of their own (passShapes below, found on the passes' statements):
 *   sum     the increment is one per-step value read at the param's own indices (`b__bar[g, j] += pre_bar[g, j]`:
 *           a bias): the adjoint is that value summed over batch and steps, a parallel reduction the runtime does
 *           (torch: one `sum`), not a walk over the steps;
 *   sameAs  the increment is the same expression (same reads at the same indices) as an earlier pass's: the
 *           adjoint equals that one's (an LSTM's bias_ih and bias_hh), computed once and copied.
 */
import * as I from "../ir/types.ts";
import type { Backward } from "./backward.ts";
import { paramProduct } from "../kernel/param-product.ts";
import type { InputPassNames, ParamPassNames } from "../../runtime/train.ts";

export const EXPORT = "__step";

/**
 * One param's adjoint as a model of its own, with the names the runtime binds it by (runtime/train.ts
 * ParamPassNames): `bar` the accumulating state (the param's adjoint, [B, ...shape] per row); `reads` pass
 * input name -> name of the per-step array the backward run has for it: a core input (forward input, state
 * before the step, output adjoint) or a core output (an exported let).
 */
export interface ParamPass extends ParamPassNames {
  model: I.Model;
}

/** An input's adjoint as a model of its own: `bar` its per-step output, `reads` as for a param pass. */
export interface InputPass extends InputPassNames {
  model: I.Model;
}

export interface SplitBackward {
  core: I.Model;
  passes: ParamPass[];
  inputPasses: InputPass[];
}

function readsOf(e: I.Expr, out: Set<string>): void {
  I.walkExpr(e, (x) => void ((x.k === "read" || x.k === "has") && out.add(x.tensor)));
}

/** Split a backward model whose param adjoints are states into the state-adjoint recurrence and one pass per param. */
export function splitParamAdjoints(bw: Backward): SplitBackward {
  if (bw.paramAdjoints !== "state") throw new Error(`splitParamAdjoints: ${bw.model.name} has per-step param adjoint outputs; build it with paramAdjoints "state"`);
  const model = bw.model;
  const bars = new Map(Object.entries(bw.paramBar).map(([p, bar]) => [bar, p]));
  const decl = (n: string) => I.findTensor(model, n)!;
  const taken = new Set(model.tensors.map((t) => t.name));
  const exported = new Map<string, string>(); // per-step tensor of the core -> its output name
  const exportOf = (name: string) => {
    if (!exported.has(name)) {
      let out = name + EXPORT;
      while (taken.has(out)) out = `_${out}`;
      taken.add(out);
      exported.set(name, out);
    }
    return exported.get(name)!;
  };
  const passes: ParamPass[] = [];
  const inputPasses: InputPass[] = [];
  const inputs = new Map(Object.entries(bw.inputBar).map(([x, bar]) => [bar, x]));
  const body: I.Stmt[] = [];
  let exportAt = -1;
  /** The pass's tensors (every param: the runners bind them all) and reads: what `s` reads, per step. */
  const passTensors = (s: Exclude<I.Stmt, { k: "for" }>, of: string, exportReads = true) => {
    const reads = new Set<string>();
    readsOf(s.expr, reads);
    reads.delete(s.target);
    const tensors: I.TensorDecl[] = I.tensorsOfKind(model, "param");
    const passReads: Record<string, string> = {};
    for (const r of reads) {
      const t = decl(r);
      if (t.kind === "param") continue;
      else if (t.kind === "input") {
        tensors.push(t);
        passReads[r] = r;
      } else if (t.kind === "let" || t.kind === "state") {
        tensors.push({ name: r, kind: "input", shape: t.shape, span: t.span });
        passReads[r] = exportReads ? exportOf(r) : r;
      } else throw new Error(`splitParamAdjoints: ${of}'s adjoint reads ${t.kind} '${r}'`);
    }
    tensors.push(decl(s.target));
    return { tensors, reads: passReads };
  };
  const passModel = (name: string, tensors: I.TensorDecl[], s: I.Stmt): I.Model => ({ name, file: model.file, span: model.span, dims: model.dims, tensors, body: [s] });
  for (const s of model.body) {
    // an input adjoint that is one matrix product of per-step values with a param (param-product.ts)
    if (s.k === "output" && inputs.has(s.target) && !("why" in paramProduct(passModel("", passTensors(s, s.target, false).tensors, s)))) {
      if (exportAt < 0) exportAt = body.length;
      const input = inputs.get(s.target)!;
      const { tensors, reads } = passTensors(s, input);
      inputPasses.push({ input, bar: s.target, reads, model: passModel(`${model.name}__${input}`, tensors, s) });
      continue;
    }
    if (s.k !== "assign" || !bars.has(s.target)) {
      body.push(s);
      continue;
    }
    if (exportAt < 0) exportAt = body.length;
    const param = bars.get(s.target)!;
    const { tensors, reads } = passTensors(s, param);
    passes.push({ param, bar: s.target, reads, model: passModel(`${model.name}__${param}`, tensors, s) });
  }
  // the exports, where the param adjoints were (states read there are read before their update)
  const exports: I.Stmt[] = [];
  const outDecls: I.TensorDecl[] = [];
  let id = 2_000_000;
  for (const [name, out] of exported) {
    const t = decl(name);
    const vars = t.shape.map((e, p) => ({ id: id++, name: `e${p}`, extent: e }));
    exports.push({ k: "output", target: out, vars, expr: { k: "read", tensor: name, idx: vars.map((v) => ({ kind: "var", v })) }, span: t.span });
    outDecls.push({ name: out, kind: "output", shape: t.shape, span: t.span });
  }
  if (exportAt >= 0) body.splice(exportAt, 0, ...exports);
  passShapes(passes);
  const moved = new Set(inputPasses.map((p) => p.bar));
  const core: I.Model = { ...model, tensors: [...model.tensors.filter((t) => !bars.has(t.name) && !moved.has(t.name)), ...outDecls], body };
  return { core, passes, inputPasses };
}


/** `e` reads a tensor at exactly the index variables `vars`, in order (`x[vars]`). */
function readAtVars(e: I.Expr, vars: I.IndexVar[]): e is Extract<I.Expr, { k: "read" }> {
  return e.k === "read" && e.idx.length === vars.length && e.idx.every((ix, a) => ix.kind === "var" && ix.v.id === vars[a].id);
}

/** The per-step increment of a pass's statement `bar[vars] = bar[vars] + inc`, or undefined for another shape. */
function increment(s: I.Stmt): I.Expr | undefined {
  if (s.k !== "assign" || s.expr.k !== "bin" || s.expr.op !== "+") return undefined;
  const self = (e: I.Expr) => readAtVars(e, s.vars) && e.tensor === s.target;
  if (self(s.expr.a)) return s.expr.b;
  if (self(s.expr.b)) return s.expr.a;
  return undefined;
}

/** An expression with its index variables named by their position in `vars` (two statements' increments compare equal). */
function canonical(e: I.Expr, vars: I.IndexVar[]): string {
  const at = new Map(vars.map((v, i) => [v.id, i]));
  return JSON.stringify(e, (key, x) => (key === "span" ? undefined : x && typeof x === "object" && "id" in x && "extent" in x && typeof x.id === "number" ? `v${at.get(x.id) ?? `#${x.id}`}` : x));
}

/**
 * Marks each pass whose adjoint is a plain sum of one per-step value (`sum`: the pass input read at the
 * param's own indices, of the param's shape) or the same sum as an earlier pass (`sameAs`: equal increments,
 * equal shapes, the same arrays read).
 */
export function passShapes(passes: ParamPass[]): void {
  const seen = new Map<string, ParamPass>();
  for (const p of passes) {
    const s = p.model.body[0];
    const inc = s && p.model.body.length === 1 ? increment(s) : undefined;
    if (!inc || s.k !== "assign") continue;
    const target = I.findTensor(p.model, s.target)!;
    const key = `${JSON.stringify(target.shape)}|${JSON.stringify(p.reads)}|${canonical(inc, s.vars)}`;
    const first = seen.get(key);
    if (first) {
      p.sameAs = first.param;
      continue;
    }
    seen.set(key, p);
    if (!readAtVars(inc, s.vars) || !(inc.tensor in p.reads)) continue;
    const src = I.findTensor(p.model, inc.tensor);
    if (src && JSON.stringify(src.shape) === JSON.stringify(target.shape)) p.sum = inc.tensor;
  }
}
