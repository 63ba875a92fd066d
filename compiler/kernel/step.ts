/**
 * Lowering of one time step of a model (its statements in order) to kernel statements, shared by
 * the sequential and scan forms. A "partition element" is one batch row times one point of the
 * partition classes (see partition.ts); its per-step tensors (states, lets, outputs that are read)
 * live in slots: workgroup arrays laid out [local element][owner] or, for a one-element tensor of a
 * thread-owned element, a register.
 *
 * Two ways to spread the work of one step:
 * - "workgroup": G elements per workgroup; every statement is a loop over (element, local index)
 *   strided by the workgroup size, with a barrier after it. Good when the local work is large.
 * - "thread": one thread owns an element and runs its whole step serially; no barriers.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";
import type { Partition } from "./partition.ts";
import { lowerExpr, type ExprScope } from "./lower-expr.ts";
import { dimOverride, extentK, flatIndex, productK, staticSize } from "./symbolic.ts";
import { hasFlag, initFlag, inputBuffer, outputBuffer, paramOffset, PARAMS, stateOffset, STATES, STATES_IN } from "./interface.ts";

export type Variant = "workgroup" | "thread" | "global";

/**
 * Where a per-step tensor lives. `shared`: a workgroup array [local][element in group];
 * `global`: a scratch storage buffer [local][element] (for states too large for workgroup memory);
 * `register`: a private scalar (thread variant, tensors with no local axes).
 */
export type Slot =
  | { kind: "shared" | "global"; array: string; local: I.Extent[]; localAxes: number[] }
  | { kind: "register"; name: string };

export interface StepConfig {
  model: I.Model;
  partition: Partition;
  variant: Variant;
  /** Thread variant: the element owned by this thread is already decoded into E_B and E_C<k>. */
  /** Column of this element's slots and the number of columns. */
  owner: K.KExpr;
  columns: K.KExpr;
  /** Time index (u32) of the step being lowered. */
  t: K.KExpr;
  /** Element index within the workgroup for the workgroup variant: q = wg * G + g. */
  groupBase?: K.KExpr;
  /**
   * Workgroup variant: how element g of this workgroup decodes (declarations of ELEM_B and the class
   * coordinates) and when it exists. Default: element q = groupBase + g over B * P, in order.
   */
  element?: (g: K.KExpr) => { prelude: K.KStmt[]; valid: K.KExpr };
}

export const ELEM_B = "e_b";
/** The scratch buffer holding every global slot array. */
export const GSLOTS = "gslots";
export const elemCoord = (k: number) => `e_c${k}`;

let uniq = 0;

export class StepLowering {
  readonly slots = new Map<string, Slot>();
  /** State updates that need a scratch copy (they read other elements of the old state). */
  readonly scratchOf = new Map<string, string>();
  /** Global slot arrays share one scratch buffer: array name -> its first element there. */
  readonly globalBase = new Map<string, K.KExpr>();
  private names = 0;

  constructor(readonly cfg: StepConfig) {
    uniq++;
  }

  get model(): I.Model {
    return this.cfg.model;
  }

  /** Partition element count per batch row (P) as a kernel expression. */
  partitionSizeK(): K.KExpr {
    return productK(this.cfg.partition.classes.map((c) => c.extent));
  }

  fresh(prefix: string): string {
    return `${prefix}_${this.names++}`;
  }

  /** Assign slots: every state, every let, every output that a later statement reads. */
  assignSlots(registersWhenScalar: boolean, inGlobal = false, keepShared: Set<string> = new Set()): void {
    const read = new Set<string>();
    I.walkStmts(this.model.body, (s) => {
      if (s.k !== "for") I.walkExpr(s.expr, (e) => e.k === "read" && read.add(e.tensor));
    });
    for (const t of this.model.tensors) {
      const need = t.kind === "state" || t.kind === "let" || (t.kind === "output" && read.has(t.name));
      if (!need) continue;
      const localAxes = this.cfg.partition.localAxes(t.name);
      const local = localAxes.map((a) => t.shape[a]);
      if (registersWhenScalar && local.length === 0 && !keepShared.has(t.name)) this.slots.set(t.name, { kind: "register", name: `r_${t.name}` });
      else if (inGlobal) this.slots.set(t.name, { kind: "global", array: `g_${t.name}`, local, localAxes });
      else this.slots.set(t.name, { kind: "shared", array: `s_${t.name}`, local, localAxes });
    }
    I.walkStmts(this.model.body, (s) => {
      if (s.k !== "assign") return;
      if (!this.readsOnlyOwnElement(s)) {
        const slot = this.slots.get(s.target)!;
        if (slot.kind !== "register") this.scratchOf.set(s.target, `n_${s.target}`);
      }
    });
    let base: K.KExpr = K.u32(0);
    for (const a of this.sharedArrays("global")) {
      this.globalBase.set(a.name, base);
      base = K.add(base, K.mul(K.ref("BP"), productK(a.local)));
    }
  }

  /** The physical array and index of element `index` of a slot array (global slots live in GSLOTS). */
  phys(array: string, index: K.KExpr): [string, K.KExpr] {
    const b = this.globalBase.get(array);
    return b ? [GSLOTS, K.add(b, index)] : [array, index];
  }
  private ld(array: string, index: K.KExpr): K.KExpr {
    const [a, i] = this.phys(array, index);
    return K.load(a, i);
  }
  private st(array: string, index: K.KExpr, value: K.KExpr): K.KStmt {
    const [a, i] = this.phys(array, index);
    return K.store(a, i, value);
  }

  private readsOnlyOwnElement(s: { target: string; vars: I.IndexVar[]; expr: I.Expr }): boolean {
    let ok = true;
    I.walkExpr(s.expr, (e) => {
      if (e.k === "read" && e.tensor === s.target) {
        if (!e.idx.every((ix, p) => ix.kind === "var" && ix.v.id === s.vars[p].id)) ok = false;
      }
    });
    return ok;
  }

  /** Shared arrays (name, element count) the slots need. */
  sharedArrays(kind: "shared" | "global" = "shared"): { name: string; local: I.Extent[] }[] {
    const out: { name: string; local: I.Extent[] }[] = [];
    for (const [name, s] of this.slots) {
      if (s.kind !== kind) continue;
      out.push({ name: s.array, local: s.local });
      const scratch = this.scratchOf.get(name);
      if (scratch) out.push({ name: scratch, local: s.local });
    }
    return out;
  }

  registers(): string[] {
    return [...this.slots.values()].filter((s): s is Extract<Slot, { kind: "register" }> => s.kind === "register").map((s) => s.name);
  }

  /** Column and column count of a slot array: the element within the group (shared) or over the whole launch (global). */
  private col(slot: Extract<Slot, { kind: "shared" | "global" }>): { owner: K.KExpr; columns: K.KExpr } {
    return slot.kind === "global" ? { owner: K.ref("q"), columns: K.ref("BP") } : { owner: this.cfg.owner, columns: this.cfg.columns };
  }

  /** Index into a slot array at local flat index l. */
  slotAt(slot: Extract<Slot, { kind: "shared" | "global" }>, l: K.KExpr): K.KExpr {
    const c = this.col(slot);
    return K.add(K.mul(l, c.columns), c.owner);
  }

  /** Index into a slot array for the local part of a full index. */
  slotIndex(slot: Extract<Slot, { kind: "shared" | "global" }>, idx: K.KExpr[]): K.KExpr {
    const local = slot.localAxes.map((a) => idx[a]);
    return this.slotAt(slot, flatIndex(local, slot.local));
  }

  /** The expression scope for statements evaluated at one element, with index variables `vars`. */
  scope(vars: Map<number, K.KExpr>, timeBase: () => K.KExpr): ExprScope {
    const self = this;
    const model = this.model;
    const scope: ExprScope = {
      indexValue(v) {
        const x = vars.get(v.id);
        if (!x) throw new Error(`index '${v.name}' is not bound`);
        return x;
      },
      dimValue(name) {
        return name.startsWith("#") ? K.u32(Number(name.slice(1))) : K.ref(dimOverride(name));
      },
      has(tensor) {
        return K.uni(hasFlag(tensor));
      },
      fresh: (p) => self.fresh(p),
      bind(more, f) {
        for (const [k, v] of more) vars.set(k, v);
        f();
        for (const k of more.keys()) vars.delete(k);
      },
      read(tensor, idx, pre) {
        const t = I.findTensor(model, tensor)!;
        if (t.kind === "input") {
          const addr = K.add(K.mul(timeBase(), productK(t.shape)), flatIndex(idx, t.shape));
          const v = K.load(inputBuffer(tensor), addr);
          return t.init ? K.sel(K.bin("!=", K.uni(hasFlag(tensor)), K.u32(0)), v, lowerConst(t.init, self)) : v;
        }
        if (t.kind === "param") {
          const v = K.load(PARAMS, K.add(K.ref(paramOffset(tensor)), flatIndex(idx, t.shape)));
          return t.init ? K.sel(K.bin("!=", K.uni(hasFlag(tensor)), K.u32(0)), v, lowerConst(t.init, self)) : v;
        }
        const slot = self.slots.get(tensor);
        if (!slot) throw new Error(`'${tensor}' has no storage slot`);
        if (slot.kind === "register") return K.ref(slot.name, "f32");
        void pre;
        return self.ld(slot.array, self.slotIndex(slot, idx));
      },
    };
    return scope;
  }

  /**
   * Values of a statement's target variables at local flat index `l` (u32), as declarations.
   * Partition variables come from the element's coordinates.
   */
  bindTarget(target: string, vars: I.IndexVar[], l: K.KExpr, out: K.KStmt[]): Map<number, K.KExpr> {
    const map = new Map<number, K.KExpr>();
    const locals: I.IndexVar[] = [];
    vars.forEach((v, a) => {
      const c = this.cfg.partition.classOf(target, a);
      if (c) map.set(v.id, K.ref(elemCoord(c.id)));
      else locals.push(v);
    });
    // decode l row-major over the local vars
    let rest = l;
    for (let i = locals.length - 1; i >= 0; i--) {
      const v = locals[i];
      const name = `i_${v.name}_${v.id}`;
      const ext = extentK(v.extent);
      if (i === 0) out.push(K.decl(name, "u32", rest));
      else {
        out.push(K.decl(name, "u32", K.bin("%", rest, ext)));
        const r = this.fresh("r");
        out.push(K.decl(r, "u32", K.bin("/", rest, ext)));
        rest = K.ref(r);
      }
      map.set(v.id, K.ref(name));
    }
    return map;
  }

  /** Local extents of a per-step tensor. */
  partitionLocal(tensor: string): I.Extent[] {
    const t = I.findTensor(this.model, tensor)!;
    return this.cfg.partition.localAxes(tensor).map((a) => t.shape[a]);
  }

  /** Local extents of a statement's target (the axes not partitioned). */
  localExtents(target: string, vars: I.IndexVar[]): I.Extent[] {
    return vars.filter((_, a) => !this.cfg.partition.classOf(target, a)).map((v) => v.extent);
  }

  /**
   * Loop over an element's local index space. Thread variant: a serial loop in the owning thread.
   * Workgroup variant: the caller wraps it (see sequential.ts) — here we get the flat index already.
   */
  elementLoop(local: I.Extent[], body: (l: K.KExpr) => K.KStmt[]): K.KStmt[] {
    const size = staticSize(local);
    if (this.cfg.variant === "thread") {
      if (size === 1) return body(K.u32(0));
      const l = this.fresh("l");
      return [K.forLoop(l, K.u32(0), productK(local), body(K.ref(l)))];
    }
    // workgroup variant: f over G * L, g = f % G, l = f / G, element prelude per iteration
    const f = this.fresh("f");
    const G = K.ref("G");
    const l = K.bin("/", K.ref(f), G);
    if (this.cfg.element) {
      const e = this.cfg.element(K.ref("g"));
      const inner: K.KStmt[] = [K.decl("g", "u32", K.bin("%", K.ref(f), G)), ...e.prelude, K.ifThen(e.valid, body(l))];
      return [K.forLoop(f, K.ref("lid"), K.mul(G, productK(local)), inner, K.ref("WG"))];
    }
    const inner: K.KStmt[] = [
      K.decl("g", "u32", K.bin("%", K.ref(f), G)),
      K.decl("q", "u32", K.add(this.cfg.groupBase!, K.ref("g"))),
    ];
    const guarded: K.KStmt[] = [...this.elementPrelude(K.ref("q")), ...body(l)];
    inner.push(K.ifThen(K.bin("<", K.ref("q"), K.ref("BP")), guarded));
    return [K.forLoop(f, K.ref("lid"), K.mul(G, productK(local)), inner, K.ref("WG"))];
  }

  /** Decode element q (over B * P) into E_B and the class coordinates. */
  elementPrelude(q: K.KExpr): K.KStmt[] {
    return this.decodeElement(K.bin("/", q, K.ref("P")), K.bin("%", q, K.ref("P")));
  }

  /** Declarations of ELEM_B = b, e_p = p and the class coordinates of partition point p. */
  decodeElement(b: K.KExpr, p: K.KExpr, prefix = "e"): K.KStmt[] {
    const classes = this.cfg.partition.classes;
    const out: K.KStmt[] = [K.decl(prefix === "e" ? ELEM_B : `${prefix}_b`, "u32", b), K.decl(`${prefix}_p`, "u32", p)];
    let rest: K.KExpr = K.ref(`${prefix}_p`);
    for (let k = classes.length - 1; k >= 0; k--) {
      const ext = extentK(classes[k].extent);
      const coord = prefix === "e" ? elemCoord(k) : `${prefix}_c${k}`;
      if (k === 0) out.push(K.decl(coord, "u32", rest));
      else {
        out.push(K.decl(coord, "u32", K.bin("%", rest, ext)));
        out.push(K.decl(`${prefix}_r${k}`, "u32", K.bin("/", rest, ext)));
        rest = K.ref(`${prefix}_r${k}`);
      }
    }
    return out;
  }

  /** (b * T + t): the row of the inputs/outputs at this step. */
  timeRow(): K.KExpr {
    return K.add(K.mul(K.ref(ELEM_B), K.uni("T")), this.cfg.t);
  }

  /** Lower a list of model statements (one step). `sync` is called after each statement (barriers). */
  lowerStmts(body: I.Stmt[], loopVars: Map<number, K.KExpr>, sync: () => K.KStmt[]): K.KStmt[] {
    const out: K.KStmt[] = [];
    for (const s of body) {
      if (s.k === "for") {
        const n = `n_${s.v.name}_${s.v.id}`;
        const inner = new Map(loopVars);
        inner.set(s.v.id, K.ref(n));
        out.push(K.forLoop(n, K.u32(0), extentK(s.v.extent), this.lowerStmts(s.body, inner, sync)));
        continue;
      }
      out.push({ k: "comment", text: `${s.k} ${s.target}` });
      const t = I.findTensor(this.model, s.target)!;
      const local = this.localExtents(s.target, s.vars);
      const scratch = this.scratchOf.get(s.target);
      out.push(
        ...this.elementLoop(local, (l) => {
          const pre: K.KStmt[] = [];
          const vars = this.bindTarget(s.target, s.vars, l, pre);
          for (const [k, v] of loopVars) vars.set(k, v);
          const scope = this.scope(vars, () => this.timeRow());
          const value = lowerExpr(s.expr, scope, pre);
          const idx = s.vars.map((v) => vars.get(v.id)!);
          const val = this.fresh("v");
          pre.push(K.decl(val, "f32", value));
          const slot = this.slots.get(s.target);
          if (t.kind === "output") pre.push(K.store(outputBuffer(s.target), K.add(K.mul(this.timeRow(), productK(t.shape)), flatIndex(idx, t.shape)), K.ref(val, "f32")));
          if (slot?.kind === "register") pre.push(K.set(slot.name, K.ref(val, "f32")));
          else if (slot) pre.push(this.st(scratch ?? slot.array, this.slotIndex(slot, idx), K.ref(val, "f32")));
          return pre;
        }),
      );
      out.push(...sync());
      if (scratch) {
        const slot = this.slots.get(s.target) as Extract<Slot, { kind: "shared" | "global" }>;
        out.push(...this.copyLocal(slot, scratch, slot.array), ...sync());
      }
    }
    return out;
  }

  private copyLocal(slot: Extract<Slot, { kind: "shared" | "global" }>, from: string, to: string): K.KStmt[] {
    return this.elementLoop(slot.local, (l) => {
      const i = this.slotAt(slot, l);
      return [this.st(to, i, this.ld(from, i))];
    });
  }

  /** Address in the packed state buffer of state `name` at full index `idx`, for this element's batch row. */
  stateAddress(t: I.TensorDecl, idx: K.KExpr[]): K.KExpr {
    // packed state layout: [state][B][...shape]; the state's offset is a uniform (it scales with B)
    return K.add(K.add(K.uni(stateOffset(t.name)), K.mul(K.ref(ELEM_B), productK(t.shape))), flatIndex(idx, t.shape));
  }

  /** Full index of state element (local flat l) for this element: partition axes from coordinates. */
  stateIndex(t: I.TensorDecl, slot: Extract<Slot, { kind: "shared" | "global" }> | undefined, l: K.KExpr, out: K.KStmt[]): K.KExpr[] {
    const idx: K.KExpr[] = new Array(t.shape.length);
    const localAxes = slot ? slot.localAxes : [];
    let rest = l;
    for (let i = localAxes.length - 1; i >= 0; i--) {
      const a = localAxes[i];
      const ext = extentK(t.shape[a]);
      const name = this.fresh(`s${a}`);
      if (i === 0) out.push(K.decl(name, "u32", rest));
      else {
        out.push(K.decl(name, "u32", K.bin("%", rest, ext)));
        const r = this.fresh("r");
        out.push(K.decl(r, "u32", K.bin("/", rest, ext)));
        rest = K.ref(r);
      }
      idx[a] = K.ref(name);
    }
    t.shape.forEach((_, a) => {
      if (idx[a]) return;
      const c = this.cfg.partition.classOf(t.name, a)!;
      idx[a] = K.ref(elemCoord(c.id));
    });
    return idx;
  }

  /** Load every state into its slot: the given initial state or the declared initial value. */
  loadStates(): K.KStmt[] {
    const out: K.KStmt[] = [];
    for (const t of I.tensorsOfKind(this.model, "state")) {
      const slot = this.slots.get(t.name)!;
      const shared = slot.kind !== "register" ? slot : undefined;
      out.push(
        ...this.elementLoop(shared ? shared.local : [], (l) => {
          const pre: K.KStmt[] = [];
          const idx = this.stateIndex(t, shared, l, pre);
          const init = t.init ? lowerConst(t.init, this) : K.f32(0);
          const v = K.sel(K.bin("!=", K.uni(initFlag(t.name)), K.u32(0)), K.load(STATES_IN, this.stateAddress(t, idx)), init);
          if (slot.kind === "register") pre.push(K.set(slot.name, v));
          else pre.push(this.st(slot.array, this.slotAt(slot, l), v));
          return pre;
        }),
      );
    }
    return out;
  }

  /** Write every state from its slot to the packed state buffer. */
  storeStates(): K.KStmt[] {
    const out: K.KStmt[] = [];
    for (const t of I.tensorsOfKind(this.model, "state")) {
      const slot = this.slots.get(t.name)!;
      const shared = slot.kind !== "register" ? slot : undefined;
      out.push(
        ...this.elementLoop(shared ? shared.local : [], (l) => {
          const pre: K.KStmt[] = [];
          const idx = this.stateIndex(t, shared, l, pre);
          const v = slot.kind === "register" ? K.ref(slot.name, "f32") : this.ld(slot.array, this.slotAt(slot, l));
          pre.push(K.store(STATES, this.stateAddress(t, idx), v));
          return pre;
        }),
      );
    }
    return out;
  }
}

/** A constant expression (default or initial value) in kernel form. */
export function lowerConst(e: I.Expr, s: { fresh(p: string): string }): K.KExpr {
  const pre: K.KStmt[] = [];
  const scope: ExprScope = {
    indexValue: () => K.u32(0),
    dimValue: (name) => (name.startsWith("#") ? K.u32(Number(name.slice(1))) : K.ref(dimOverride(name))),
    has: () => K.u32(0),
    fresh: (p) => s.fresh(p),
    bind: (_m, f) => f(),
    read: () => K.f32(0),
  };
  return lowerExpr(e, scope, pre);
}
