/**
 * The matrix-state canonical form behind the chunked schedule, derived from a model's IR.
 *
 * A model qualifies when it has one state S whose axes are heads (independent slices), one key
 * axis (the axis outputs contract over) and one value axis, and every update of S is
 *
 *     S <- diag(exp(ld)) S  +  sum_r u_r (w_r^T S)  +  sum_p kk_p vv_p^T         (per head slice)
 *
 * with ld, u, w, kk (over the key axis) and vv (over the value axis) free of state, and every
 * output is  c + sum_r (S^T q_r) * e_r  with q_r over the key axis. The model is then split into
 *   prep  - a stateless IR model computing ld, u, w, kk, vv, q per token (pointwise over time),
 *   core  - the generic recurrence above (sequential, chunked ... : a schedule, model-independent),
 *   post  - a stateless IR model computing the outputs from y_r = S^T q_r and the inputs.
 * A new model in these classes therefore gets every core schedule without new kernel code.
 */
import * as I from "../ir/types.ts";
import { printExpr } from "../ir/print.ts";
import { Renamer, type Def } from "../analysis/inline.ts";
import { freeVars, linearize, type Term } from "../analysis/linearize.ts";

/** One update statement of S, as names of prep outputs. Loop steps repeat `loop` times; their prep outputs have a leading loop axis. */
export interface MicroStep {
  loop?: I.Extent;
  /** log of the diagonal factor: shape [heads] (scalar decay) or [heads, K] (per-key decay); undefined = 1. */
  ld?: { name: string; perKey: boolean };
  lowRank: { u: string; w: string }[];
  inputs: { k: string; v: string }[];
}

export interface Readout {
  /** prep output q[heads, K]; the core produces y = S^T q as post input `y` [heads, V]. */
  q: string;
  y: string;
  /** Number of MicroSteps (entries of `steps`) applied before this readout within the token. */
  after: number;
}

export interface MatrixForm {
  state: string;
  /** State axis positions: heads (in order), key, value. */
  heads: number[];
  key: number;
  value: number;
  steps: MicroStep[];
  readouts: Readout[];
  decay: "none" | "scalar" | "key";
  lowRank: boolean;
  prep: I.Model;
  post: I.Model;
}

export type MatrixFormResult = { ok: true; form: MatrixForm } | { ok: false; reason: string };

class Fail extends Error {}
function fail(reason: string): never {
  throw new Fail(reason);
}

const num = (value: number): I.Expr => ({ k: "num", value });
const isNum = (e: I.Expr, v: number) => e.k === "num" && e.value === v;
const mul = (a: I.Expr, b: I.Expr): I.Expr =>
  isNum(a, 1) ? b : isNum(b, 1) ? a : isNum(a, -1) ? { k: "neg", a: b } : isNum(b, -1) ? { k: "neg", a } : { k: "bin", op: "*", a, b };
const add = (a: I.Expr, b: I.Expr): I.Expr => (isNum(a, 0) ? b : isNum(b, 0) ? a : { k: "bin", op: "+", a, b });
const prod = (fs: I.Expr[]): I.Expr => fs.reduce<I.Expr>((acc, f) => mul(acc, f), num(1));

export function matrixForm(model: I.Model): MatrixFormResult {
  try {
    return { ok: true, form: new Extractor(model).run() };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, reason: e.message };
    throw e;
  }
}

class Extractor {
  private readonly renamer: Renamer;
  private readonly S: I.TensorDecl;
  private lets = new Map<string, Def>();
  private steps: MicroStep[] = [];
  private readouts: Readout[] = [];
  private prepStmts: I.Stmt[] = [];
  private prepTensors: I.TensorDecl[] = [];
  private postStmts: I.Stmt[] = [];
  private postTensors: I.TensorDecl[] = [];
  private key = -1;
  private value = -1;
  private heads: number[] = [];
  private counter = 0;
  private qKeys = new Map<string, Readout>();

  constructor(private readonly model: I.Model) {
    this.renamer = new Renamer(model);
    const states = I.tensorsOfKind(model, "state");
    if (states.length !== 1) fail(`the chunked form needs exactly one state (this model has ${states.length})`);
    this.S = states[0];
  }

  run(): MatrixForm {
    this.findAxes();
    this.walk(this.model.body, undefined);
    if (!this.steps.length) fail(`state ${this.S.name} is never updated`);
    const span = this.model.span;
    const base = this.model.tensors.filter((t) => t.kind === "input" || t.kind === "param");
    const prep: I.Model = { name: `${this.model.name}__prep`, file: this.model.file, span, dims: this.model.dims, tensors: [...base, ...this.prepTensors], body: this.prepStmts };
    const post: I.Model = { name: `${this.model.name}__post`, file: this.model.file, span, dims: this.model.dims, tensors: [...base, ...this.postTensors], body: this.postStmts };
    const decay = this.steps.some((s) => s.ld?.perKey) ? "key" : this.steps.some((s) => s.ld) ? "scalar" : "none";
    return {
      state: this.S.name, heads: this.heads, key: this.key, value: this.value, steps: this.steps, readouts: this.readouts,
      decay, lowRank: this.steps.some((s) => s.lowRank.length > 0), prep, post,
    };
  }

  /** The key axis is the one outputs contract over; the value axis is the other non-head axis. */
  private findAxes(): void {
    const rank = this.S.shape.length;
    if (rank < 2) fail(`state ${this.S.name} is a vector; the chunked form is for matrix states (use scan)`);
    const contracted = new Set<number>();
    I.walkStmts(this.model.body, (s) => {
      if (s.k !== "output") return;
      I.walkExpr(s.expr, (e) => {
        if (e.k === "sum") {
          const sv = new Set(e.vars.map((v) => v.id));
          I.walkExpr(e.body, (r) => {
            if (r.k === "read" && r.tensor === this.S.name) r.idx.forEach((ix, p) => ix.kind === "var" && sv.has(ix.v.id) && contracted.add(p));
          });
        }
      });
    });
    // also through lets read by outputs: fall back to scanning every sum that reads S outside updates
    I.walkStmts(this.model.body, (s) => {
      if (s.k !== "let") return;
      I.walkExpr(s.expr, (e) => {
        if (e.k !== "sum") return;
        const sv = new Set(e.vars.map((v) => v.id));
        I.walkExpr(e.body, (r) => {
          if (r.k === "read" && r.tensor === this.S.name) r.idx.forEach((ix, p) => ix.kind === "var" && sv.has(ix.v.id) && contracted.add(p));
        });
      });
    });
    if (contracted.size === 0) fail(`no output contracts state ${this.S.name} over an axis`);
    this.key = Math.max(...contracted);
    // heads: every axis carried by every read in the updates; value: the remaining axis
    const others = [...Array(rank).keys()].filter((p) => p !== this.key);
    if (others.length < 1) fail(`state ${this.S.name} has no value axis`);
    this.value = others[others.length - 1];
    this.heads = others.slice(0, -1);
  }

  private subst(e: I.Expr, env: Map<number, I.Index>): I.Expr {
    const go = (x: I.Expr): I.Expr => {
      switch (x.k) {
        case "read": {
          const d = this.lets.get(x.tensor);
          return d ? this.renamer.instantiate(d, x.idx) : x;
        }
        case "neg": return { k: "neg", a: go(x.a) };
        case "bin": return { k: "bin", op: x.op, a: go(x.a), b: go(x.b) };
        case "call": return { k: "call", fn: x.fn, args: x.args.map(go) };
        case "sum": return { k: "sum", vars: x.vars, body: go(x.body) };
        default: return x;
      }
    };
    return go(this.renamer.rename(e, env));
  }

  private walk(body: I.Stmt[], loop: I.IndexVar | undefined): void {
    for (const s of body) {
      if (s.k === "for") {
        if (loop) fail("nested micro-step loops are not supported by the chunked form");
        const reads = (st: I.Stmt[]): boolean => st.some((x) => (x.k === "for" ? reads(x.body) : x.k === "assign" && x.target === this.S.name));
        if (!reads(s.body)) fail(`a loop without updates of ${this.S.name} is not supported by the chunked form`);
        this.walk(s.body, s.v);
        continue;
      }
      const def: Def = { vars: s.vars, expr: this.subst(s.expr, new Map()) };
      if (s.k === "let") this.lets.set(s.target, def);
      else if (s.k === "assign") {
        if (s.target !== this.S.name) fail(`unexpected state ${s.target}`);
        this.update(def, loop);
      } else this.output(s.target, def);
    }
  }

  private fresh(name: string, extent: I.Extent): I.IndexVar {
    return this.renamer.fresh({ id: -1, name, extent });
  }

  /** Add a prep output computing `expr` over [loop?, heads..., axis?] of the state's binder vars. */
  private prepOut(prefix: string, expr: I.Expr, binders: { v: I.IndexVar }[], loop: I.IndexVar | undefined): string {
    const name = `${prefix}${this.counter++}`;
    const env = new Map<number, I.Index>();
    const vars: I.IndexVar[] = [];
    if (loop) {
      const nv = this.fresh(loop.name, loop.extent);
      env.set(loop.id, { kind: "var", v: nv });
      vars.push(nv);
    }
    for (const b of binders) {
      const nv = this.fresh(b.v.name, b.v.extent);
      env.set(b.v.id, { kind: "var", v: nv });
      vars.push(nv);
    }
    this.prepTensors.push({ name, kind: "output", shape: vars.map((v) => v.extent), span: this.model.span });
    this.prepStmts.push({ k: "output", target: name, vars, expr: this.renamer.rename(expr, env), span: this.model.span });
    return name;
  }

  private update(def: Def, loop: I.IndexVar | undefined): void {
    const L = def.vars;
    const lin = linearize(def.expr, (t) => t === this.S.name);
    if (!lin.ok) fail(`the update of ${this.S.name} is not affine: ${lin.reason}`);
    const headIds = new Set(this.heads.map((p) => L[p].id));
    const keyV = L[this.key];
    const valV = L[this.value];
    const allowed = (e: I.Expr, extra: number[]) => {
      const ok = new Set([...headIds, ...extra, ...(loop ? [loop.id] : [])]);
      return [...freeVars(e)].every((v) => ok.has(v));
    };
    const diag: Term[] = [];
    const mixing: Term[] = [];
    for (const t of lin.terms) {
      if (t.read.tensor !== this.S.name) fail(`unexpected read ${printExpr(t.read)}`);
      const sums = new Set(t.sums.map((v) => v.id));
      let kind: "diag" | "mix" = "diag";
      t.read.idx.forEach((ix, p) => {
        if (ix.kind !== "var") fail(`${printExpr(t.read)} reads a fixed position`);
        else if (ix.v.id === L[p].id) return;
        else if (p === this.key && sums.has(ix.v.id)) kind = "mix";
        else fail(`${printExpr(t.read)} mixes the state along a non-key axis`);
      });
      (kind === "diag" ? diag : mixing).push(t);
    }
    const step: MicroStep = { loop: loop?.extent, lowRank: [], inputs: [] };
    // diagonal part -> log decay
    if (!diag.length) fail(`the update of ${this.S.name} does not keep its previous value (A = 0)`);
    const d = diag.map((t) => (t.sums.length ? ({ k: "sum", vars: t.sums, body: prod(t.factors) } as I.Expr) : prod(t.factors))).reduce(add);
    if (!allowed(d, [keyV.id])) fail(`the decay ${printExpr(d)} varies along the value axis (${I.extentText(valV.extent)}); the chunked form needs it per head or per key`);
    if (!(d.k === "num" && d.value === 1)) {
      const ld = logOf(d);
      const perKey = freeVars(ld).has(keyV.id);
      step.ld = { name: this.prepOut("ld", ld, [...this.heads.map((p) => ({ v: L[p] })), ...(perKey ? [{ v: keyV }] : [])], loop), perKey };
    }
    // low-rank part
    for (const t of mixing) {
      const m = t.read.idx[this.key];
      if (m.kind !== "var") fail("unreachable");
      const g = splitFactors(t, [keyV.id], [m.v.id]);
      if (!g) fail(`the mixing term on ${printExpr(t.read)} is not low-rank`);
      const { out, inn, scalar } = g!;
      if (!allowed(out, [keyV.id]) || !allowed(scalar, [])) fail(`the low-rank factor ${printExpr(out)} depends on the value axis`);
      const w = this.renamer.rename(inn, new Map([[m.v.id, { kind: "var", v: keyV } as I.Index]]));
      if (!allowed(w, [keyV.id])) fail(`the low-rank factor ${printExpr(inn)} depends on the value axis`);
      const hb = this.heads.map((p) => ({ v: L[p] }));
      step.lowRank.push({ u: this.prepOut("u", mul(scalar, out), [...hb, { v: keyV }], loop), w: this.prepOut("w", w, [...hb, { v: keyV }], loop) });
    }
    // input part: a sum of outer products kk_i vv_j
    if (lin.c) {
      for (const factors of sumOfProducts(lin.c)) {
        const kp: I.Expr[] = [];
        const vp: I.Expr[] = [];
        for (const f of factors) {
          const fv = freeVars(f);
          const hasK = fv.has(keyV.id);
          const hasV = fv.has(valV.id);
          if (hasK && hasV) fail(`the input term ${printExpr(f)} is not an outer product over ${I.extentText(keyV.extent)} x ${I.extentText(valV.extent)}`);
          (hasV ? vp : kp).push(f);
        }
        const k = prod(kp);
        const v = prod(vp);
        if (!allowed(k, [keyV.id]) || !allowed(v, [valV.id])) fail(`the input term ${printExpr(prod(factors))} reads indices outside the state's axes`);
        const hb = this.heads.map((p) => ({ v: L[p] }));
        step.inputs.push({ k: this.prepOut("kk", k, [...hb, { v: keyV }], loop), v: this.prepOut("vv", v, [...hb, { v: valV }], loop) });
      }
    }
    this.steps.push(step);
  }

  private output(name: string, def: Def): void {
    const lin = linearize(def.expr, (t) => t === this.S.name);
    if (!lin.ok) fail(`output ${name} reads ${this.S.name} nonlinearly: ${lin.reason}`);
    const outIds = new Set(def.vars.map((v) => v.id));
    let expr: I.Expr = lin.c ?? num(0);
    for (const t of lin.terms) {
      const sums = new Set(t.sums.map((v) => v.id));
      const kix = t.read.idx[this.key];
      if (kix.kind !== "var" || !sums.has(kix.v.id)) fail(`output ${name} does not contract ${this.S.name} over its key axis`);
      const idxOf = (p: number): I.IndexVar => {
        const ix = t.read.idx[p];
        if (ix.kind !== "var" || !outIds.has(ix.v.id)) fail(`output ${name} reads ${this.S.name} with a summed or fixed head/value index`);
        return (ix as { v: I.IndexVar }).v;
      };
      const headVars = this.heads.map(idxOf);
      const valVar = idxOf(this.value);
      const g = splitFactors(t, [valVar.id], [kix.v.id]);
      if (!g) fail(`output ${name}: the coefficient of ${printExpr(t.read)} couples the key and value axes`);
      const { out: valuePart, inn: qPart, scalar } = g!;
      // q over [heads, key]; the prep output uses the state's axis order
      const hb = headVars.map((v) => ({ v }));
      const qKey = `${printExpr(qPart)}|${headVars.map((v) => v.id).join(",")}`;
      let r = this.qKeys.get(qKey);
      if (!r) {
        const q = this.prepOut("q", qPart, [...hb, { v: kix.v }], undefined);
        const y = `y${this.readouts.length}`;
        r = { q, y, after: this.steps.length };
        this.readouts.push(r);
        this.qKeys.set(qKey, r);
        this.postTensors.push({ name: y, kind: "input", shape: [...this.heads.map((p) => this.S.shape[p]), this.S.shape[this.value]], span: this.model.span });
      } else if (r.after !== this.steps.length) fail(`output ${name} reads ${this.S.name} at two different points of the step`);
      const yRead: I.Expr = { k: "read", tensor: r.y, idx: [...headVars, valVar].map((v) => ({ kind: "var", v })) };
      expr = add(expr, mul(mul(yRead, valuePart), scalar));
    }
    const decl = this.model.tensors.find((x) => x.name === name)!;
    this.postTensors.push({ ...decl });
    this.postStmts.push({ k: "output", target: name, vars: def.vars, expr, span: this.model.span });
  }
}

/**
 * Split a term's factors into the part over `outIds`, the part over `inIds` (the summation index
 * of the read) and the rest; factors connected through other summation indices stay together
 * (wrapped in their sum). Null when a connected group touches both sides.
 */
function splitFactors(t: Term, outIds: number[], inIds: number[]): { out: I.Expr; inn: I.Expr; scalar: I.Expr } | null {
  const outS = new Set(outIds);
  const inS = new Set(inIds);
  const inner = t.sums.filter((v) => !inS.has(v.id));
  const innerIds = new Set(inner.map((v) => v.id));
  const n = t.factors.length;
  const parent = [...Array(n).keys()];
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const fv = t.factors.map((f) => freeVars(f));
  const owner = new Map<number, number>();
  fv.forEach((vs, i) => vs.forEach((v) => {
    if (!innerIds.has(v)) return;
    const o = owner.get(v);
    if (o === undefined) owner.set(v, i);
    else parent[find(i)] = find(o);
  }));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) groups.set(find(i), [...(groups.get(find(i)) ?? []), i]);
  const side = { out: [] as I.Expr[], inn: [] as I.Expr[], scalar: [] as I.Expr[] };
  for (const members of groups.values()) {
    const vs = new Set(members.flatMap((i) => [...fv[i]]));
    const o = [...vs].some((v) => outS.has(v));
    const iN = [...vs].some((v) => inS.has(v));
    if (o && iN) return null;
    const sumVars = inner.filter((v) => vs.has(v.id));
    const body = prod(members.map((i) => t.factors[i]));
    const e: I.Expr = sumVars.length ? { k: "sum", vars: sumVars, body } : body;
    (o ? side.out : iN ? side.inn : side.scalar).push(e);
  }
  return { out: prod(side.out), inn: prod(side.inn), scalar: prod(side.scalar) };
}

/** log of a positive coefficient, simplified where exact: log(exp(x)) = x, log(a*b) = log a + log b. */
function logOf(e: I.Expr): I.Expr {
  if (e.k === "call" && e.fn === "exp") return e.args[0];
  if (e.k === "call" && e.fn === "sigmoid") return { k: "call", fn: "logsigmoid", args: e.args };
  if (e.k === "bin" && e.op === "*") return add(logOf(e.a), logOf(e.b));
  if (e.k === "num") return num(Math.log(e.value));
  return { k: "call", fn: "log", args: [e] };
}

/** Expand an expression into a sum of products (lists of factors); sums and calls stay atomic. */
function sumOfProducts(e: I.Expr): I.Expr[][] {
  switch (e.k) {
    case "bin":
      if (e.op === "+") return [...sumOfProducts(e.a), ...sumOfProducts(e.b)];
      if (e.op === "-") return [...sumOfProducts(e.a), ...sumOfProducts(e.b).map((f) => [num(-1), ...f])];
      if (e.op === "*") {
        const A = sumOfProducts(e.a);
        const B = sumOfProducts(e.b);
        return A.flatMap((a) => B.map((b) => [...a, ...b]));
      }
      if (e.op === "/") return sumOfProducts(e.a).map((f) => [...f, { k: "bin", op: "/", a: num(1), b: e.b } as I.Expr]);
      return [[e]];
    case "neg":
      return sumOfProducts(e.a).map((f) => [num(-1), ...f]);
    default:
      return [[e]];
  }
}
