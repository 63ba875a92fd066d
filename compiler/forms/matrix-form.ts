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
 *
 * Two extensions (mLSTM's normaliser and stabiliser, found by analysis, not by model name):
 *  - value columns: a state n over [heads, key] updated with S's decay and S's key vectors, with a value-free
 *    input factor c (n <- D n + kk c), is carried as an extra value column of S (vv extended by c); its
 *    readouts sum_i n_i q_i become post inputs `${y}_c${j}` over heads;
 *  - a stabiliser: a state m over heads with the max-plus update m' = max(a + m, b) (a, b state-free) such
 *    that S (and its columns) are stored as exp(-m) times an unscaled state: S's log decay is ld0 + m - m'
 *    and its inputs' log scale li0 - m'. Prep and post then read the pseudo inputs STAB_T (m after the
 *    token's update) and STAB_PREV (m before it) over heads, which a stabiliser pass computes first
 *    (compiler/forms/stabiliser.ts): every decay exp(ld0 + m_{t-1} - m_t) <= 1 and input scale
 *    exp(li0 - m_t) <= 1, so the core runs unchanged on bounded numbers.
 */
import * as I from "../ir/types.ts";
import { printExpr } from "../ir/print.ts";
import { mapChildren } from "../ir/map.ts";
import { Renamer, type Def } from "../analysis/inline.ts";
import { freeVars, linearize, type Term } from "../analysis/linearize.ts";

/** One update statement of S, as names of prep outputs. Loop steps repeat `loop` times; their prep outputs have a leading loop axis. */
export interface MicroStep {
  loop?: I.Extent;
  /** log of the diagonal factor: shape [heads] (scalar decay) or [heads, K] (per-key decay); undefined = 1. */
  ld?: { name: string; perKey: boolean };
  lowRank: { u: string; w: string }[];
  /** `cols`: prep outputs over [loop?, heads] giving this pair's value in each extra value column (MatrixForm.columns). */
  inputs: { k: string; v: string; cols?: string[] }[];
}

export interface Readout {
  /** prep output q[heads, K]; the core produces y = S^T q as post input `y` [heads, V]. */
  q: string;
  y: string;
  /** Post inputs over heads: the readout of each extra value column (sum_i q_i n_i). */
  cols: string[];
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
  /** States carried as extra value columns V, V + 1, ... of the state (normalisers). */
  columns: string[];
  stabiliser?: Stabiliser;
}

/** Pseudo inputs over heads (prep and post) of a stabilised form: m after this token's update, and before it. */
export const STAB_T = "m@t";
export const STAB_PREV = "m@prev";

/** m_t = max(a_t + m_{t-1}, b_t): `prep` is a stateless model whose outputs `a` and `b` are over heads. */
export interface Stabiliser {
  state: string;
  prep: I.Model;
  a: string;
  b: string;
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
  private qCanon: { r: Readout; q: string }[] = [];
  private readonly others: I.TensorDecl[];
  private columns: I.TensorDecl[] = [];
  private stab?: { decl: I.TensorDecl; def: Def; a: I.Expr; b: I.Expr };
  private updated = new Set<string>();
  /** The last update of S before prep-output renaming (to compare column updates against). */
  private lastRaw?: { L: I.IndexVar[]; d: I.Expr; inputs: I.Expr[][]; step: MicroStep };

  constructor(private readonly model: I.Model) {
    this.renamer = new Renamer(model);
    const states = I.tensorsOfKind(model, "state");
    if (!states.length) fail("the chunked form needs a state (this model has none)");
    const top = Math.max(...states.map((s) => s.shape.length));
    const main = states.filter((s) => s.shape.length === top);
    if (main.length !== 1) fail(`the chunked form needs one matrix state (this model has ${main.length} of rank ${top}: ${main.map((s) => s.name).join(", ")})`);
    this.S = main[0];
    this.others = states.filter((s) => s !== this.S);
  }

  run(): MatrixForm {
    this.findAxes();
    this.classifyOthers();
    this.walk(this.model.body, undefined);
    if (!this.steps.length) fail(`state ${this.S.name} is never updated`);
    for (const c of this.columns) if (!this.updated.has(c.name)) fail(`state ${c.name} is never updated`);
    const span = this.model.span;
    const base = this.model.tensors.filter((t) => t.kind === "input" || t.kind === "param");
    const stabIn: I.TensorDecl[] = this.stab ? [STAB_T, STAB_PREV].map((name) => ({ name, kind: "input", shape: this.stab!.decl.shape, span })) : [];
    const prep: I.Model = { name: `${this.model.name}__prep`, file: this.model.file, span, dims: this.model.dims, tensors: [...base, ...stabIn, ...this.prepTensors], body: this.prepStmts };
    const post: I.Model = { name: `${this.model.name}__post`, file: this.model.file, span, dims: this.model.dims, tensors: [...base, ...stabIn.slice(0, 1), ...this.postTensors], body: this.postStmts };
    const decay = this.steps.some((s) => s.ld?.perKey) ? "key" : this.steps.some((s) => s.ld) ? "scalar" : "none";
    return {
      state: this.S.name, heads: this.heads, key: this.key, value: this.value, steps: this.steps, readouts: this.readouts,
      decay, lowRank: this.steps.some((s) => s.lowRank.length > 0), prep, post,
      columns: this.columns.map((c) => c.name),
      stabiliser: this.stab ? this.stabiliserModel() : undefined,
    };
  }

  /**
   * Other states than S: a vector over S's heads and key axis is a value column (checked at its update);
   * a state over S's heads whose update is max(a + m, b) is the stabiliser (checked by the decay analysis).
   */
  private classifyOthers(): void {
    if (!this.others.length) return;
    const same = (a: I.Extent[], b: I.Extent[]) => a.length === b.length && a.every((x, i) => I.sameExtent(x, b[i], this.model.dims));
    const headShape = this.heads.map((p) => this.S.shape[p]);
    const colShape = this.S.shape.filter((_, p) => p !== this.value);
    const hasLoop = this.model.body.some((s) => s.k === "for");
    if (hasLoop) fail(`the chunked form takes extra states (${this.others.map((s) => s.name).join(", ")}) only without micro-step loops`);
    // lets and updates in order (lets inlined), to read the stabiliser's update before the walk
    const lets = new Map<string, Def>();
    const subst = (e: I.Expr): I.Expr => {
      const go = (x: I.Expr): I.Expr => {
        switch (x.k) {
          case "read": { const d = lets.get(x.tensor); return d ? this.renamer.instantiate(d, x.idx) : x; }
          default: return mapChildren(x, go);
        }
      };
      return go(e);
    };
    const defs = new Map<string, Def>();
    for (const s of this.model.body) {
      if (s.k === "for") continue;
      const def = { vars: s.vars, expr: subst(s.expr) };
      if (s.k === "let") lets.set(s.target, def);
      else if (s.k === "assign") defs.set(s.target, def);
    }
    for (const o of this.others) {
      if (same(o.shape, colShape)) {
        if (this.heads.some((p) => p > this.key)) fail(`value column ${o.name}: the chunked form needs ${this.S.name}'s head axes before its key axis`);
        this.columns.push(o);
      }
      else if (same(o.shape, headShape)) {
        if (this.stab) fail(`two stabiliser candidates over the heads (${this.stab.decl.name}, ${o.name}); the chunked form takes one`);
        const def = defs.get(o.name);
        if (!def) fail(`state ${o.name} is never updated`);
        const mp = maxPlus(def!, o.name);
        if (!mp) fail(`state ${o.name} over the heads is not a stabiliser: its update is not max(a + ${o.name}, b) with a, b free of states`);
        this.stab = { decl: o, def: def!, ...mp! };
      } else fail(`state ${o.name} ${I.shapeText(o.shape)} is neither a value column of ${this.S.name} (shape ${I.shapeText(colShape)}) nor a stabiliser (shape ${I.shapeText(headShape)})`);
    }
    const stateNames = new Set(I.tensorsOfKind(this.model, "state").map((t) => t.name));
    if (this.stab) for (const e of [this.stab.a, this.stab.b]) I.walkExpr(e, (x) => { if (x.k === "read" && stateNames.has(x.tensor)) fail(`the stabiliser ${this.stab!.decl.name}'s update reads state ${x.tensor}`); });
  }

  /** The stabiliser's stateless prep model (a, b over heads). */
  private stabiliserModel(): Stabiliser {
    const st = this.stab!;
    const span = this.model.span;
    const tensors: I.TensorDecl[] = this.model.tensors.filter((t) => t.kind === "input" || t.kind === "param");
    const body: I.Stmt[] = [];
    const out = (name: string, e: I.Expr) => {
      const env = new Map<number, I.Index>();
      const vars = st.def.vars.map((v) => { const nv = this.fresh(v.name, v.extent); env.set(v.id, { kind: "var", v: nv }); return nv; });
      tensors.push({ name, kind: "output", shape: st.decl.shape, span });
      body.push({ k: "output", target: name, vars, expr: this.renamer.rename(e, env), span });
    };
    out("stab_a", st.a);
    out("stab_b", st.b);
    return { state: st.decl.name, prep: { name: `${this.model.name}__stab`, file: this.model.file, span, dims: this.model.dims, tensors, body }, a: "stab_a", b: "stab_b" };
  }

  /**
   * Replace the stabiliser in an update or output: its new-value expression (an inlined let) and reads after
   * its update by STAB_T, reads before its update by STAB_PREV.
   */
  private stabSubst(e: I.Expr): I.Expr {
    const st = this.stab;
    if (!st) return e;
    const m = st.decl.name;
    const after = this.updated.has(m);
    const go = (x: I.Expr): I.Expr => {
      let idx: I.Index[] | undefined;
      I.walkExpr(x, (r) => { if (!idx && r.k === "read" && r.tensor === m) idx = r.idx; });
      if (!idx) return x;
      if (x.k !== "read" && printExpr(x) === printExpr(this.renamer.instantiate(st.def, idx))) return { k: "read", tensor: STAB_T, idx };
      switch (x.k) {
        case "read": return { k: "read", tensor: after ? STAB_T : STAB_PREV, idx: x.idx };
        default: return mapChildren(x, go);
      }
    };
    return go(e);
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
        default: return mapChildren(x, go);
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
        if (s.target === this.stab?.decl.name) {
          if (this.updated.has(s.target)) fail(`the stabiliser ${s.target} is updated twice in a step`);
        } else if (s.target === this.S.name) this.update({ vars: def.vars, expr: this.stabSubst(def.expr) }, loop);
        else if (this.columns.some((c) => c.name === s.target)) this.columnUpdate(s.target, { vars: def.vars, expr: this.stabSubst(def.expr) });
        else fail(`unexpected state ${s.target}`);
        this.updated.add(s.target);
      } else {
        if (this.others.length && this.others.some((o) => !this.updated.has(o.name))) fail(`output ${s.target} reads the states before every update of the step (the chunked form with extra states reads after them)`);
        this.output(s.target, { vars: def.vars, expr: this.stabSubst(def.expr) });
      }
    }
  }

  /**
   * A prep output or post input name (`prefix` + suffix()) that names no tensor of the model: prep reads the
   * model's inputs and params next to its outputs, post its inputs and outputs next to the readouts.
   */
  private freshName(prefix: string, suffix: (attempt: number) => string): string {
    // a readout's column inputs are `${y}_c${c}`: those must be free too
    const taken = (n: string) => this.model.tensors.some((t) => t.name === n || (t.name.startsWith(`${n}_c`) && /^\d+$/.test(t.name.slice(n.length + 2))));
    for (let k = 0; ; k++) {
      const name = `${prefix}${suffix(k)}`;
      if (!taken(name)) return name;
    }
  }

  private fresh(name: string, extent: I.Extent): I.IndexVar {
    return this.renamer.fresh({ id: -1, name, extent });
  }

  /** Add a prep output computing `expr` over [loop?, heads..., axis?] of the state's binder vars. */
  private prepOut(prefix: string, expr: I.Expr, binders: { v: I.IndexVar }[], loop: I.IndexVar | undefined): string {
    const name = this.freshName(prefix, () => `${this.counter++}`);
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
    if (this.stab && d.k === "num") fail(`the decay of ${this.S.name} does not use the stabiliser ${this.stab.decl.name}`);
    if (!(d.k === "num" && d.value === 1)) {
      const ld = logOf(d);
      if (this.stab) stabCoefficients(ld, 1, -1, `the log decay ${printExpr(ld)} of ${this.S.name}`, this.stab.decl.name);
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
    const rawInputs: I.Expr[][] = [];
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
        const sf = kp.filter(readsStab);
        if (this.stab) stabCoefficients(sf.map(logOf).reduce(add, num(0)), 0, -1, `the input scale ${printExpr(prod(sf))} of ${this.S.name}`, this.stab.decl.name);
        rawInputs.push(kp);
        const k = prod(kp);
        const v = prod(vp);
        if (!allowed(k, [keyV.id]) || !allowed(v, [valV.id])) fail(`the input term ${printExpr(prod(factors))} reads indices outside the state's axes`);
        const hb = this.heads.map((p) => ({ v: L[p] }));
        step.inputs.push({ k: this.prepOut("kk", k, [...hb, { v: keyV }], loop), v: this.prepOut("vv", v, [...hb, { v: valV }], loop) });
      }
    }
    this.steps.push(step);
    this.lastRaw = { L, d, inputs: rawInputs, step };
  }

  /**
   * An update of a value column n (over heads and key): the same decay as the state's last update and
   * input terms kk * c whose key factors equal one of the state's input pairs'; c (value-free) becomes that
   * pair's value in the column. Pairs without a term get 0 there.
   */
  private columnUpdate(name: string, def: Def): void {
    const raw = this.lastRaw;
    if (!raw || this.steps.length !== 1) fail(`value column ${name} must follow the one update of ${this.S.name}`);
    const col = this.columns.findIndex((c) => c.name === name);
    const Ln = def.vars;
    // n's axes are S's without the value axis: map its binder vars onto S's
    const sPos = this.S.shape.map((_, p) => p).filter((p) => p !== this.value);
    const env = new Map<number, I.Index>(Ln.map((v, k) => [v.id, { kind: "var", v: raw!.L[sPos[k]] } as I.Index]));
    const expr = this.renamer.rename(def.expr, env);
    const lin = linearize(expr, (t) => t === name);
    if (!lin.ok) fail(`the update of ${name} is not affine: ${lin.reason}`);
    const diag: I.Expr[] = [];
    for (const t of lin.terms) {
      if (t.sums.length || t.read.idx.some((ix, k) => ix.kind !== "var" || ix.v.id !== raw!.L[sPos[k]].id)) fail(`the update of value column ${name} mixes it (${printExpr(t.read)})`);
      diag.push(prod(t.factors));
    }
    const d = diag.length ? diag.reduce(add) : num(0);
    if (printExpr(d) !== printExpr(raw.d)) fail(`value column ${name} decays by ${printExpr(d)}, not like ${this.S.name} (${printExpr(raw.d)})`);
    const key = (fs: I.Expr[]) => fs.map((f) => printExpr(f)).sort().join(" * ");
    const hb = this.heads.map((p) => ({ v: raw!.L[p] }));
    const cols: I.Expr[] = raw.inputs.map(() => num(0));
    for (const factors of lin.c ? sumOfProducts(lin.c) : []) {
      // c = (this term) / kk_p: the term's factors less the pair's key factors (as printed multisets)
      let c: I.Expr | undefined;
      const p = raw.inputs.findIndex((kp) => {
        const left = factors.map((f) => printExpr(f));
        for (const f of kp) {
          const i = left.indexOf(printExpr(f));
          if (i < 0) return false;
          left[i] = "";
        }
        const rest = factors.filter((_, i) => left[i] !== "");
        if (rest.some((f) => freeVars(f).has(raw!.L[this.key].id) || readsStab(f))) return false;
        c = prod(rest);
        return true;
      });
      if (p < 0 || !c) fail(`the input term ${printExpr(prod(factors))} of value column ${name} is not a value-free multiple of an outer product in the update of ${this.S.name}`);
      if (![...freeVars(c!)].every((v) => this.heads.some((q) => raw!.L[q].id === v))) fail(`the value ${printExpr(c!)} of column ${name} reads indices other than the heads`);
      cols[p] = add(cols[p], c!);
    }
    raw.step.inputs.forEach((pair, p) => {
      pair.cols = pair.cols ?? [];
      pair.cols[col] = this.prepOut("cv", cols[p], hb, undefined);
    });
  }

  /** Post: replace every sum_i n[heads, i] q_i over a value column n by that column's readout (a post input over heads). */
  private columnReads(out: string, e: I.Expr): I.Expr {
    const cols = new Set(this.columns.map((c) => c.name));
    const go = (x: I.Expr): I.Expr => {
      let col: string | undefined;
      I.walkExpr(x, (r) => { if (!col && r.k === "read" && cols.has(r.tensor)) col = r.tensor; });
      if (!col) return x;
      if (x.k === "sum") {
        const lin = linearize(x, (t) => t === col);
        if (!lin.ok || lin.c || lin.terms.length !== 1) fail(`output ${out} reads value column ${col} other than as sum_i ${col}[.., i] q_i`);
        const t = lin.terms[0];
        const kp = this.key > this.value ? this.key - 1 : this.key; // the key's position in the column's shape
        const kix = t.read.idx[kp];
        if (kix.kind !== "var" || !t.sums.some((v) => v.id === kix.v.id)) fail(`output ${out} does not contract ${col} over its key axis`);
        const heads = t.read.idx.filter((_, p) => p !== kp);
        if (heads.some((ix) => ix.kind !== "var")) fail(`output ${out} reads ${col} at a fixed head`);
        const g = splitFactors(t, [], [(kix as { v: I.IndexVar }).v.id]);
        if (!g) fail(`output ${out}: the readout of ${col} is not a vector over its key axis`);
        const canon = canonQ(g!.inn, (kix as { v: I.IndexVar }).v, heads.map((ix) => (ix as { v: I.IndexVar }).v));
        const r = this.qCanon.find((x) => x.q === canon);
        if (!r) fail(`output ${out} reads ${col} with another readout vector than ${this.S.name}'s`);
        const y: I.Expr = { k: "read", tensor: r!.r.cols[this.columns.findIndex((c) => c.name === col)], idx: heads };
        return mul(y, g!.scalar);
      }
      switch (x.k) {
        case "read": fail(`output ${out} reads value column ${col} outside a sum over its key axis`); break;
        case "neg": return { k: "neg", a: go(x.a) };
        case "bin": return { k: "bin", op: x.op, a: go(x.a), b: go(x.b) };
        case "call": return { k: "call", fn: x.fn, args: x.args.map(go) };
      }
      return x;
    };
    return go(e);
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
        const y = this.freshName(`y${this.readouts.length}`, (k) => (k ? `_${k}` : ""));
        const cols = this.columns.map((_, c) => `${y}_c${c}`);
        r = { q, y, cols, after: this.steps.length };
        this.qCanon.push({ r, q: canonQ(qPart, kix.v, headVars) });
        cols.forEach((name) => this.postTensors.push({ name, kind: "input", shape: this.heads.map((p) => this.S.shape[p]), span: this.model.span }));
        this.readouts.push(r);
        this.qKeys.set(qKey, r);
        this.postTensors.push({ name: y, kind: "input", shape: [...this.heads.map((p) => this.S.shape[p]), this.S.shape[this.value]], span: this.model.span });
      } else if (r.after !== this.steps.length) fail(`output ${name} reads ${this.S.name} at two different points of the step`);
      const yRead: I.Expr = { k: "read", tensor: r.y, idx: [...headVars, valVar].map((v) => ({ kind: "var", v })) };
      expr = add(expr, mul(mul(yRead, valuePart), scalar));
    }
    if (this.columns.length) expr = this.columnReads(name, expr);
    const decl = this.model.tensors.find((x) => x.name === name)!;
    this.postTensors.push({ ...decl });
    this.postStmts.push({ k: "output", target: name, vars: def.vars, expr, span: this.model.span });
  }
}

/** True when the expression reads the stabiliser's pseudo inputs. */
function readsStab(e: I.Expr): boolean {
  let r = false;
  I.walkExpr(e, (x) => { if (x.k === "read" && (x.tensor === STAB_T || x.tensor === STAB_PREV)) r = true; });
  return r;
}

/** Check that `e` = (state-free part) + cPrev * m_{t-1} + cT * m_t, as a sum of signed terms. */
function stabCoefficients(e: I.Expr, cPrev: number, cT: number, what: string, m: string): void {
  const terms: { sign: number; e: I.Expr }[] = [];
  const flat = (x: I.Expr, sign: number) => {
    if (x.k === "bin" && x.op === "+") { flat(x.a, sign); flat(x.b, sign); }
    else if (x.k === "bin" && x.op === "-") { flat(x.a, sign); flat(x.b, -sign); }
    else if (x.k === "neg") flat(x.a, -sign);
    else terms.push({ sign, e: x });
  };
  flat(e, 1);
  let p = 0, t = 0;
  for (const x of terms) {
    if (x.e.k === "read" && x.e.tensor === STAB_PREV) p += x.sign;
    else if (x.e.k === "read" && x.e.tensor === STAB_T) t += x.sign;
    else if (readsStab(x.e)) fail(`${what} uses the stabiliser ${m} other than additively in log space`);
  }
  if (p !== cPrev || t !== cT) fail(`${what} is not stabilised by ${m} (log space: expected ${cPrev === 1 ? `+ ${m}_{t-1} ` : ""}- ${m}_t)`);
}

/** A readout vector printed with its key and head variables in canonical names (to compare readouts of different sums). */
function canonQ(q: I.Expr, keyVar: I.IndexVar, heads: I.IndexVar[]): string {
  const env = new Map<number, I.IndexVar>([[keyVar.id, { id: -1, name: "#key", extent: keyVar.extent }], ...heads.map((h, k) => [h.id, { id: -2 - k, name: `#h${k}`, extent: h.extent }] as [number, I.IndexVar])]);
  const go = (x: I.Expr): I.Expr => {
    switch (x.k) {
      case "idx": return env.has(x.v.id) ? { k: "idx", v: env.get(x.v.id)! } : x;
      case "read": return { ...x, idx: x.idx.map((ix) => (ix.kind === "var" && env.has(ix.v.id) ? { kind: "var", v: env.get(ix.v.id)! } : ix)) };
      default: return mapChildren(x, go);
    }
  };
  return printExpr(go(q));
}

/** max(a + m, b) (either order, a + m in any additive position): a and b, or null. */
function maxPlus(def: Def, m: string): { a: I.Expr; b: I.Expr } | null {
  const e = def.expr;
  if (e.k !== "call" || e.fn !== "max" || e.args.length !== 2) return null;
  const own = (x: I.Expr) => x.k === "read" && x.tensor === m && x.idx.every((ix, p) => ix.kind === "var" && ix.v.id === def.vars[p].id);
  const readsM = (x: I.Expr) => { let r = false; I.walkExpr(x, (y) => { if (y.k === "read" && y.tensor === m) r = true; }); return r; };
  for (const [x, y] of [[e.args[0], e.args[1]], [e.args[1], e.args[0]]]) {
    if (readsM(y)) continue;
    const terms: I.Expr[] = [];
    const flat = (z: I.Expr): void => {
      if (z.k === "bin" && z.op === "+") { flat(z.a); flat(z.b); } else terms.push(z);
    };
    flat(x);
    const mi = terms.findIndex(own);
    if (mi < 0) continue;
    const rest = terms.filter((_, i) => i !== mi);
    if (rest.some(readsM)) continue;
    return { a: rest.length ? rest.reduce((p, q) => ({ k: "bin", op: "+", a: p, b: q })) : num(0), b: y };
  }
  return null;
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
