/**
 * Reverse-mode differentiation of a model, as another model: the backward recurrence.
 *
 * The backward model runs over the sequence in reverse. Per step it
 *   1. recomputes the forward step from the state before it (`S__prev`, saved by the forward pass)
 *      as straight-line lets (loops unrolled, every state update a new version S__v1, S__v2 ...);
 *   2. computes adjoints in reverse statement order: the adjoint of a value is the sum, over every
 *      read of it, of (adjoint of the reader) x (derivative of the reader's expression w.r.t. that
 *      read), gathered back to the element read;
 *   3. emits the adjoint of every input (per step) and of every param, and carries the adjoint of the
 *      state backwards: the backward state `S__bar` is dL/dS_t on entry to step t and dL/dS_{t-1}
 *      after it, so the backward run's final state is the gradient with respect to the initial state.
 *      With `paramAdjoints: "state"` (what gradients() and the generated classes use) param adjoints
 *      are backward states too (`P__bar` [B, ...shape], zero at the start, each step adds its
 *      contribution): memory B x params instead of B x T x params, and no buffer of their own (states
 *      are packed into one), so every stdlib backward fits WebGPU's 16 storage buffers per stage.
 *      The default, "output", gives per-step outputs [B, T, ...shape] that the caller sums.
 * The result is plain IR, so the reference interpreter runs it and backends can compile it.
 */
import * as I from "../ir/types.ts";
import type { AdjointNames } from "../../runtime/train.ts";
import { Renamer } from "../analysis/inline.ts";
import { add, mul, occurrences } from "./derivative.ts";

export const PREV = "__prev";
export const BAR = "__bar";

export interface BackwardOptions {
  /** "state": accumulated over time in backward states; "output" (default): one output per step, summed by the caller. */
  paramAdjoints?: "state" | "output";
}

export interface Backward extends AdjointNames {
  model: I.Model;
}

interface FlatStmt { kind: "let" | "output"; name: string; vars: I.IndexVar[]; expr: I.Expr; shape: I.Extent[] }

/** Straight-line forward step: loops unrolled with `dims`, lets and state versions renamed uniquely. */
function flatten(model: I.Model, dims: Record<string, number>, renamer: Renamer): { stmts: FlatStmt[]; finalVersion: Map<string, string> } {
  const stmts: FlatStmt[] = [];
  const current = new Map<string, string>(); // forward name -> current flat name
  for (const s of I.tensorsOfKind(model, "state")) current.set(s.name, s.name + PREV);
  const used = new Set<string>(model.tensors.map((t) => t.name));
  const versions = new Map<string, number>();
  const unique = (base: string) => {
    let n = versions.get(base) ?? 0;
    let name: string;
    do name = `${base}__v${++n}`; while (used.has(name));
    versions.set(base, n);
    used.add(name);
    return name;
  };
  const redirect = (e: I.Expr): I.Expr => {
    switch (e.k) {
      case "read": return { ...e, tensor: current.get(e.tensor) ?? e.tensor };
      case "neg": return { k: "neg", a: redirect(e.a) };
      case "bin": return { k: "bin", op: e.op, a: redirect(e.a), b: redirect(e.b) };
      case "call": return { k: "call", fn: e.fn, args: e.args.map(redirect) };
      case "sum": return { k: "sum", vars: e.vars, body: redirect(e.body) };
      default: return e;
    }
  };
  const walk = (body: I.Stmt[], env: Map<number, I.Index>) => {
    for (const s of body) {
      if (s.k === "for") {
        const n = I.extentSize(s.v.extent, dims);
        for (let i = 0; i < n; i++) walk(s.body, new Map(env).set(s.v.id, { kind: "lit", value: i }));
        continue;
      }
      const expr = redirect(renamer.rename(s.expr, env));
      const decl = model.tensors.find((t) => t.name === s.target)!;
      if (s.k === "output") {
        stmts.push({ kind: "output", name: s.target, vars: s.vars, expr, shape: decl.shape });
        continue;
      }
      const name = unique(s.target);
      stmts.push({ kind: "let", name, vars: s.vars, expr, shape: decl.shape });
      current.set(s.target, name);
    }
  };
  walk(model.body, new Map());
  const finalVersion = new Map(I.tensorsOfKind(model, "state").map((s) => [s.name, current.get(s.name)!]));
  return { stmts, finalVersion };
}

export function buildBackward(model: I.Model, dims: Record<string, number>, opts: BackwardOptions = {}): Backward {
  const paramAdjoints = opts.paramAdjoints ?? "output";
  const renamer = new Renamer(model);
  const { stmts, finalVersion } = flatten(model, dims, renamer);
  const span = model.span;
  const inputs = I.tensorsOfKind(model, "input");
  const params = I.tensorsOfKind(model, "param");
  const states = I.tensorsOfKind(model, "state");
  const outputs = I.tensorsOfKind(model, "output");
  const shapeOf = new Map<string, I.Extent[]>();
  for (const t of [...inputs, ...params]) shapeOf.set(t.name, t.shape);
  for (const s of states) shapeOf.set(s.name + PREV, s.shape);
  for (const s of stmts) shapeOf.set(s.name, s.shape);
  const differentiable = new Set(shapeOf.keys());

  // contributions to the adjoint of each value, over that value's own fresh element vars
  const elemVars = new Map<string, I.IndexVar[]>();
  const varsOf = (name: string) => {
    if (!elemVars.has(name)) elemVars.set(name, shapeOf.get(name)!.map((e, p) => renamer.fresh({ id: -1, name: `p${p}`, extent: e })));
    return elemVars.get(name)!;
  };
  const contributions = new Map<string, I.Expr[]>();
  const contribute = (name: string, e: I.Expr) => contributions.set(name, [...(contributions.get(name) ?? []), e]);
  for (const s of states) contribute(finalVersion.get(s.name)!, { k: "read", tensor: s.name + BAR, idx: varsOf(finalVersion.get(s.name)!).map((v) => ({ kind: "var", v })) });

  const adjointLets: I.Stmt[] = [];
  const extraTensors: I.TensorDecl[] = [];
  const adjointName = (name: string) => `${name}${BAR}`;

  /** Scatter `tbar * d(expr)/d(read)` from statement (vars) to every value read in expr, as gathers. */
  const backprop = (vars: I.IndexVar[], expr: I.Expr, tbar: (idx: I.Index[]) => I.Expr) => {
    for (const occ of occurrences(expr, (t) => differentiable.has(t))) {
      const X = occ.read.tensor;
      const P = varsOf(X);
      const env = new Map<number, I.Index>();
      const conds: I.Expr[] = [];
      occ.read.idx.forEach((ix, k) => {
        const p: I.Expr = { k: "idx", v: P[k] };
        if (ix.kind === "lit") conds.push({ k: "bin", op: "==", a: p, b: { k: "num", value: ix.value } });
        else if (env.has(ix.v.id)) {
          const prev = env.get(ix.v.id)!;
          conds.push({ k: "bin", op: "==", a: p, b: prev.kind === "var" ? { k: "idx", v: prev.v } : { k: "num", value: prev.value } });
        } else env.set(ix.v.id, { kind: "var", v: P[k] });
      });
      // every other variable of the statement and of the enclosing sums is summed over
      const rest: I.IndexVar[] = [];
      for (const v of [...vars, ...occ.sums]) {
        if (env.has(v.id)) continue;
        const f = renamer.fresh(v);
        env.set(v.id, { kind: "var", v: f });
        rest.push(f);
      }
      let term = mul(tbar(vars.map((v) => env.get(v.id)!)), renamer.rename(occ.factor, env));
      for (const c of conds) term = { k: "call", fn: "select", args: [c, term, { k: "num", value: 0 }] };
      contribute(X, rest.length ? { k: "sum", vars: rest, body: term } : term);
    }
  };

  const sumOf = (name: string): I.Expr => (contributions.get(name) ?? []).reduce<I.Expr>((a, b) => add(a, b), { k: "num", value: 0 });

  for (let i = stmts.length - 1; i >= 0; i--) {
    const s = stmts[i];
    if (s.kind === "output") {
      backprop(s.vars, s.expr, (idx) => ({ k: "read", tensor: s.name + BAR, idx }));
      continue;
    }
    if (!contributions.has(s.name)) continue; // does not influence the loss
    const P = varsOf(s.name);
    const bar = adjointName(s.name);
    adjointLets.push({ k: "let", target: bar, vars: P, expr: sumOf(s.name), span });
    extraTensors.push({ name: bar, kind: "let", shape: s.shape, span });
    backprop(s.vars, s.expr, (idx) => ({ k: "read", tensor: bar, idx }));
  }

  const result: Backward = { model: undefined as unknown as I.Model, paramAdjoints, inputBar: {}, paramBar: {}, stateBar: {}, statePrev: {}, outputBar: {} };
  const tensors: I.TensorDecl[] = [];
  const tail: I.Stmt[] = [];
  // inputs: per-step adjoints as outputs; params: accumulated in backward states, or per-step outputs
  for (const t of [...inputs, ...params]) {
    tensors.push(t);
    const bar = adjointName(t.name);
    (t.kind === "input" ? result.inputBar : result.paramBar)[t.name] = bar;
    const P = varsOf(t.name);
    if (t.kind === "param" && paramAdjoints === "state") {
      tensors.push({ name: bar, kind: "state", shape: t.shape, init: { k: "num", value: 0 }, span });
      tail.push({ k: "assign", target: bar, vars: P, expr: add({ k: "read", tensor: bar, idx: P.map((v) => ({ kind: "var", v })) }, sumOf(t.name)), span });
      continue;
    }
    tensors.push({ name: bar, kind: "output", shape: t.shape, span });
    tail.push({ k: "output", target: bar, vars: P, expr: sumOf(t.name), span });
  }
  for (const s of states) {
    result.statePrev[s.name] = s.name + PREV;
    result.stateBar[s.name] = s.name + BAR;
    tensors.push({ name: s.name + PREV, kind: "input", shape: s.shape, span });
    tensors.push({ name: s.name + BAR, kind: "state", shape: s.shape, init: { k: "num", value: 0 }, span });
    tail.push({ k: "assign", target: s.name + BAR, vars: varsOf(s.name + PREV), expr: sumOf(s.name + PREV), span });
  }
  for (const o of outputs) {
    result.outputBar[o.name] = o.name + BAR;
    tensors.push({ name: o.name + BAR, kind: "input", shape: o.shape, span });
  }
  // the forward step's lets that the adjoints read (directly or through other lets); the rest is dead
  // (e.g. a state's new value when its adjoint needs only the old one), and would only cost work and
  // widen the kernels' partition of the state
  const needed = new Set<string>();
  for (const s of [...adjointLets, ...tail]) if (s.k !== "for") readsOf(s.expr, needed);
  const recompute: I.Stmt[] = [];
  for (const s of [...stmts].reverse()) {
    if (s.kind !== "let" || !needed.has(s.name)) continue;
    readsOf(s.expr, needed);
    recompute.unshift({ k: "let", target: s.name, vars: s.vars, expr: s.expr, span });
    tensors.push({ name: s.name, kind: "let", shape: s.shape, span });
  }
  result.model = {
    name: `${model.name}__backward`,
    file: model.file,
    span,
    dims: model.dims,
    tensors: [...tensors, ...extraTensors],
    body: [...recompute, ...adjointLets, ...tail],
  };
  return result;
}

function readsOf(e: I.Expr, out: Set<string>): void {
  switch (e.k) {
    case "read": out.add(e.tensor); return;
    case "neg": readsOf(e.a, out); return;
    case "bin": readsOf(e.a, out); readsOf(e.b, out); return;
    case "call": for (const a of e.args) readsOf(a, out); return;
    case "sum": readsOf(e.body, out); return;
    default: return;
  }
}
