/**
 * AST -> IR: name and index resolution, dimension and shape checking.
 * Every problem becomes a diagnostic with a stable code (see docs/diagnostics.md); resolution
 * goes on after an error so that one run reports as many as it can.
 */
import type * as A from "../../grammar/index.ts";
import type { Diagnostic, Span } from "../../grammar/index.ts";
import * as I from "../ir/types.ts";
import { BUILTINS, CONSTANTS } from "../ir/builtins.ts";

interface FnDef { decl: A.FnDecl }

/** `poisoned`: used in a read that already has an error, so an unknown range is not reported again. */
type Binding = { kind: "var"; v: I.IndexVar; pending: boolean; poisoned?: boolean } | { kind: "fnarg"; expr: I.Expr };

class Scope {
  constructor(private readonly parent?: Scope, private readonly names = new Map<string, Binding>()) {}
  get(name: string): Binding | undefined {
    return this.names.get(name) ?? this.parent?.get(name);
  }
  set(name: string, b: Binding): void {
    this.names.set(name, b);
  }
  child(): Scope {
    return new Scope(this);
  }
}

export function resolveModels(files: A.SeqFile[], fnFiles: A.SeqFile[], diags: Diagnostic[]): I.Model[] {
  const fns = new Map<string, FnDef>();
  for (const f of fnFiles) {
    for (const fn of f.fns) {
      if (fns.has(fn.name.name)) {
        if (fns.get(fn.name.name)!.decl !== fn) err(diags, "SEQ2002", `function '${fn.name.name}' is defined twice`, fn.name.span);
        continue;
      }
      if (BUILTINS[fn.name.name]) err(diags, "SEQ2002", `function '${fn.name.name}' shadows a built-in function`, fn.name.span);
      fns.set(fn.name.name, { decl: fn });
    }
  }
  const models: I.Model[] = [];
  const seen = new Map<string, Span>();
  for (const f of files) {
    for (const m of f.models) {
      if (seen.has(m.name.name)) {
        err(diags, "SEQ2002", `model '${m.name.name}' is defined twice`, m.name.span);
        continue;
      }
      seen.set(m.name.name, m.name.span);
      models.push(new ModelResolver(m, f.file, fns, diags).resolve());
    }
  }
  return models;
}

/** The extent given to an index whose range could not be inferred (reported as SEQ3003); sizes are otherwise >= 1. */
const unknownExtent = (e: I.Extent): boolean => e.kind === "lit" && e.value === 0;

function err(diags: Diagnostic[], code: string, message: string, span: Span, hint?: string): void {
  diags.push({ code, severity: "error", message, span, hint });
}
function warn(diags: Diagnostic[], code: string, message: string, span: Span, hint?: string): void {
  diags.push({ code, severity: "warning", message, span, hint });
}

class ModelResolver {
  private dims: I.DimDecl[] = [];
  private tensors = new Map<string, I.TensorDecl>();
  /** lets and outputs become visible only after their statement. */
  private defined = new Set<string>();
  private nextVar = 0;
  private used = new Set<string>();
  private assigned = new Set<string>();
  private fnDepth = 0;
  /** Names of lets and outputs defined somewhere in the model (for use-before-definition errors). */
  private later = new Set<string>();

  constructor(
    private readonly m: A.ModelDecl,
    private readonly file: string,
    private readonly fns: Map<string, FnDef>,
    private readonly diags: Diagnostic[],
  ) {}

  resolve(): I.Model {
    const decls = this.m.items.filter((i): i is A.DimsDecl => i.kind === "dims");
    for (const d of decls) {
      for (const dim of d.dims) {
        if (this.dims.some((x) => x.name === dim.name.name)) {
          err(this.diags, "SEQ2002", `dim '${dim.name.name}' is declared twice`, dim.name.span);
          continue;
        }
        if (dim.value !== undefined && (!Number.isInteger(dim.value) || dim.value < 1)) {
          err(this.diags, "SEQ3007", `dim '${dim.name.name}' must be a positive integer, got ${dim.value}`, dim.name.span);
        }
        if (dim.defaultDim && dim.defaultDim.name !== "T") {
          err(this.diags, "SEQ3007", `a dim can default only to T (the sequence length), not '${dim.defaultDim.name}'`, dim.defaultDim.span, `write 'dims ${dim.name.name} = T' or a positive integer`);
        }
        this.dims.push({ name: dim.name.name, fixed: dim.value, sequenceDefault: dim.defaultDim ? true : undefined, span: dim.name.span });
      }
    }
    for (const item of this.m.items) if (item.kind === "input" || item.kind === "param" || item.kind === "state") this.declareTensor(item);
    const collect = (items: A.Item[]): void =>
      items.forEach((i) => (i.kind === "let" || i.kind === "output" ? this.later.add(i.name.name) : i.kind === "for" ? collect(i.body) : undefined));
    collect(this.m.items);
    const body = this.stmts(this.m.items, new Scope(), false);
    this.finalChecks();
    return { name: this.m.name.name, file: this.file, span: this.m.span, dims: this.dims, tensors: [...this.tensors.values()], body };
  }

  private extentOf(e: A.ShapeEntry): I.Extent | undefined {
    if (e.kind === "lit") {
      if (!Number.isInteger(e.value) || e.value < 1) {
        err(this.diags, "SEQ3007", `a size must be a positive integer, got ${e.value}`, e.span);
        return undefined;
      }
      return { kind: "lit", value: e.value };
    }
    if (!this.dims.some((d) => d.name === e.name)) {
      err(this.diags, "SEQ2007", `unknown dim '${e.name}'`, e.span, `declare it with 'dims ${e.name}'`);
      return undefined;
    }
    return { kind: "dim", name: e.name };
  }

  private declareTensor(d: A.TensorDecl): void {
    const name = d.name.name;
    if (this.tensors.has(name)) {
      err(this.diags, "SEQ2002", `'${name}' is declared twice`, d.name.span);
      return;
    }
    const shape = d.shape.map((s) => this.extentOf(s) ?? ({ kind: "lit", value: 1 } as I.Extent));
    let init: I.Expr | undefined;
    if (d.init) init = this.constExpr(d.init, `${d.kind === "state" ? "the initial value" : "the default"} of '${name}'`);
    this.tensors.set(name, { name, kind: d.kind, shape, init, span: d.name.span });
    this.defined.add(name);
  }

  /** A scalar expression of numbers, dims and constants (defaults and initial states). */
  private constExpr(e: A.Expr, what: string): I.Expr | undefined {
    const before = this.diags.length;
    const r = this.expr(e, new Scope());
    let ok = true;
    I.walkExpr(r, (x) => {
      if (x.k === "read" || x.k === "idx" || x.k === "sum" || x.k === "has") ok = false;
    });
    if (!ok && this.diags.length === before) {
      err(this.diags, "SEQ4004", `${what} must be a constant expression (numbers, dims, inf, pi)`, e.span);
      return undefined;
    }
    return r;
  }

  private stmts(items: A.Item[], scope: Scope, inLoop: boolean): I.Stmt[] {
    const out: I.Stmt[] = [];
    for (const item of items) {
      switch (item.kind) {
        case "dims":
        case "input":
        case "param":
        case "state":
          if (inLoop) err(this.diags, "SEQ4005", `declarations are not allowed inside a 'for' block`, item.span);
          break;
        case "let":
        case "output":
        case "assign": {
          if (item.kind === "output" && inLoop) {
            err(this.diags, "SEQ4005", `outputs are not allowed inside a 'for' block`, item.span);
            break;
          }
          const s = this.stmt(item, scope);
          if (s) out.push(s);
          break;
        }
        case "for": {
          const extent = this.extentOf(item.extent);
          if (!extent) break;
          if (scope.get(item.var.name) || this.tensors.has(item.var.name)) {
            err(this.diags, "SEQ2004", `'${item.var.name}' is already a name in this model; pick another loop index`, item.var.span);
          }
          const v: I.IndexVar = { id: this.nextVar++, name: item.var.name, extent };
          const inner = scope.child();
          inner.set(v.name, { kind: "var", v, pending: false });
          const definedBefore = new Set(this.defined);
          const body = this.stmts(item.body, inner, true);
          // lets defined inside the loop are local to it
          for (const n of [...this.defined]) if (!definedBefore.has(n)) this.defined.delete(n);
          out.push({ k: "for", v, body, span: item.span });
          break;
        }
      }
    }
    return out;
  }

  private stmt(s: A.LetStmt | A.OutputStmt | A.AssignStmt, outer: Scope): I.Stmt | undefined {
    const name = s.name.name;
    const existing = this.tensors.get(name);
    let shapeFrom: I.Extent[] | undefined;
    let wrongArity = false;
    if (s.kind === "assign") {
      if (!existing) {
        err(this.diags, "SEQ2001", `unknown state '${name}'`, s.name.span, `declare it with 'state ${name}[...]', or use 'let' for an intermediate`);
        return undefined;
      }
      if (existing.kind !== "state") {
        err(this.diags, "SEQ2003", `cannot assign to ${existing.kind} '${name}': only states are updated`, s.name.span, existing.kind === "let" ? "a let is defined once per step" : undefined);
        return undefined;
      }
      this.assigned.add(name);
      if (s.binders.length !== existing.shape.length) {
        err(this.diags, "SEQ3001", `state '${name}' has ${existing.shape.length} axes ${I.shapeText(existing.shape)}, but ${s.binders.length} indices are given`, s.name.span);
        wrongArity = true; // the right-hand side is still resolved (its reads count), the statement dropped
      } else shapeFrom = existing.shape;
    } else if (existing && (this.defined.has(name) || existing.kind !== "let")) {
      err(this.diags, "SEQ2002", `'${name}' is already defined`, s.name.span);
      return undefined;
    }
    const scope = outer.child();
    const vars: I.IndexVar[] = [];
    const pending: { v: I.IndexVar; span: Span }[] = [];
    for (let p = 0; p < s.binders.length; p++) {
      const b = s.binders[p];
      if (vars.some((v) => v.name === b.name.name)) {
        err(this.diags, "SEQ2004", `index '${b.name.name}' appears twice on the left-hand side`, b.name.span);
        continue;
      }
      if (this.tensors.has(b.name.name) || outer.get(b.name.name)) {
        // reported; the index still shadows the name below so the right-hand side resolves
        err(this.diags, "SEQ2004", `index '${b.name.name}' has the name of ${this.describe(b.name.name, outer)}; pick another index letter`, b.name.span);
      }
      let extent: I.Extent | undefined = b.extent ? this.extentOf(b.extent) : undefined;
      if (shapeFrom) {
        if (extent && !I.sameExtent(extent, shapeFrom[p], this.dims)) {
          err(this.diags, "SEQ3002", `index '${b.name.name}' is annotated ${I.extentText(extent)}, but axis ${p} of '${name}' is ${I.extentText(shapeFrom[p])}`, b.name.span);
        }
        extent = shapeFrom[p];
      }
      const v: I.IndexVar = { id: this.nextVar++, name: b.name.name, extent: extent ?? { kind: "lit", value: 0 } };
      scope.set(v.name, { kind: "var", v, pending: !extent, poisoned: wrongArity });
      if (!extent) pending.push({ v, span: b.name.span });
      vars.push(v);
    }
    const expr = this.expr(s.expr, scope);
    if (wrongArity) return undefined;
    for (const p of pending) {
      const b = scope.get(p.v.name);
      if (b?.kind === "var" && b.pending && !b.poisoned) {
        err(this.diags, "SEQ3003", `the size of index '${p.v.name}' is not known`, p.span, `use it to index a tensor on the right-hand side, or annotate it: ${p.v.name}: <dim>`);
      }
    }
    if (s.kind !== "assign") {
      const kind = s.kind === "let" ? "let" : "output";
      this.tensors.set(name, { name, kind, shape: vars.map((v) => v.extent), span: s.name.span });
      this.defined.add(name);
    }
    return { k: s.kind, target: name, vars, expr, span: s.span };
  }

  private describe(name: string, scope: Scope): string {
    const t = this.tensors.get(name);
    if (t) return `${t.kind} '${name}'`;
    return scope.get(name) ? `an index already in use` : `'${name}'`;
  }

  private expr(e: A.Expr, scope: Scope): I.Expr {
    switch (e.kind) {
      case "num":
        return { k: "num", value: e.value };
      case "unary":
        return { k: "neg", a: this.expr(e.arg, scope) };
      case "binary":
        return { k: "bin", op: e.op, a: this.expr(e.lhs, scope), b: this.expr(e.rhs, scope) };
      case "ref":
        return this.ref(e, scope);
      case "access":
        return this.access(e, scope);
      case "call":
        return this.call(e, scope);
      case "sum": {
        const inner = scope.child();
        const vars: I.IndexVar[] = [];
        for (const id of e.vars) {
          if (this.tensors.has(id.name) || scope.get(id.name)?.kind === "var") {
            err(this.diags, "SEQ2004", `sum index '${id.name}' is already ${this.describe(id.name, scope)}; pick another letter`, id.span);
          }
          const v: I.IndexVar = { id: this.nextVar++, name: id.name, extent: { kind: "lit", value: 0 } };
          inner.set(id.name, { kind: "var", v, pending: true });
          vars.push(v);
        }
        const body = this.expr(e.body, inner);
        e.vars.forEach((id, i) => {
          const b = inner.get(id.name);
          if (b?.kind === "var" && b.pending && !b.poisoned) {
            err(this.diags, "SEQ3003", `sum index '${id.name}' is never used to index a tensor, so its range is unknown`, id.span);
          }
          void i;
        });
        return { k: "sum", vars, body };
      }
    }
  }

  private ref(e: Extract<A.Expr, { kind: "ref" }>, scope: Scope): I.Expr {
    const b = scope.get(e.name);
    if (b?.kind === "var") return { k: "idx", v: b.v };
    if (b?.kind === "fnarg") return b.expr;
    const t = this.visibleTensor(e.name, e.span);
    if (t === null) return { k: "num", value: NaN };
    if (t) {
      if (t.shape.length !== 0) {
        const idx = t.shape.map((_, i) => "ijklmn"[i] ?? `i${i}`).join(",");
        err(this.diags, "SEQ3006", `'${e.name}' has shape ${I.shapeText(t.shape)}; index it, e.g. ${e.name}[${idx}]`, e.span);
      }
      this.used.add(e.name);
      return { k: "read", tensor: e.name, idx: [] };
    }
    if (this.dims.some((d) => d.name === e.name)) return { k: "dim", name: e.name };
    if (e.name in CONSTANTS) return { k: "num", value: CONSTANTS[e.name] };
    err(this.diags, "SEQ2001", `unknown name '${e.name}'`, e.span);
    return { k: "num", value: NaN };
  }

  /** The tensor named `name` if it is visible here; null after reporting use-before-definition. */
  private visibleTensor(name: string, span: Span): I.TensorDecl | undefined | null {
    const t = this.tensors.get(name);
    if (!t && this.later.has(name)) {
      err(this.diags, "SEQ2008", `'${name}' is used before it is defined`, span, "statements run in order; move its definition up");
      return null;
    }
    if (!t) return undefined;
    if (!this.defined.has(name)) {
      err(this.diags, "SEQ2008", `'${name}' is used before it is defined`, span);
      return null;
    }
    return t;
  }

  private access(e: Extract<A.Expr, { kind: "access" }>, scope: Scope): I.Expr {
    const failed = (): I.Expr => {
      for (const ix of e.indices) {
        const b = ix.kind === "var" ? scope.get(ix.name) : undefined;
        if (b?.kind === "var") b.poisoned = true;
      }
      return { k: "num", value: NaN };
    };
    const t = this.visibleTensor(e.name, e.span);
    if (t === null) return failed();
    if (!t) {
      err(this.diags, "SEQ2001", `unknown tensor '${e.name}'`, e.span);
      return failed();
    }
    this.used.add(e.name);
    if (e.indices.length !== t.shape.length) {
      err(this.diags, "SEQ3001", `'${e.name}' has ${t.shape.length} axes ${I.shapeText(t.shape)}, but ${e.indices.length} indices are given`, e.span);
      return failed();
    }
    const idx: I.Index[] = [];
    e.indices.forEach((ix, p) => {
      const axis = t.shape[p];
      if (ix.kind === "lit") {
        const size = axis.kind === "lit" ? axis.value : this.dims.find((d) => d.name === axis.name)?.fixed;
        if (!Number.isInteger(ix.value) || ix.value < 0 || (size !== undefined && ix.value >= size)) {
          err(this.diags, "SEQ3005", `index ${ix.value} is out of range for axis ${p} of '${e.name}' (size ${I.extentText(axis)})`, ix.span);
        }
        idx.push({ kind: "lit", value: ix.value });
        return;
      }
      const b = scope.get(ix.name);
      if (!b || b.kind !== "var") {
        err(this.diags, "SEQ3004", `index '${ix.name}' is not bound`, ix.span, `put it on the left-hand side, or sum over it: sum(${ix.name}) ...`);
        idx.push({ kind: "lit", value: 0 });
        return;
      }
      if (b.pending) {
        b.v.extent = axis;
        b.pending = false;
      } else if (!unknownExtent(axis) && !unknownExtent(b.v.extent) && !I.sameExtent(b.v.extent, axis, this.dims)) {
        err(this.diags, "SEQ3002", `index '${ix.name}' ranges over ${I.extentText(b.v.extent)}, but axis ${p} of '${e.name}' is ${I.extentText(axis)}`, ix.span);
      }
      idx.push({ kind: "var", v: b.v });
    });
    return { k: "read", tensor: e.name, idx };
  }

  private call(e: Extract<A.Expr, { kind: "call" }>, scope: Scope): I.Expr {
    if (e.fn === "has") {
      const a = e.args[0];
      const t = a && a.kind === "ref" ? this.tensors.get(a.name) : undefined;
      if (e.args.length !== 1 || !t || (t.kind !== "input" && t.kind !== "param")) {
        err(this.diags, "SEQ4007", `has() takes the name of one input or param`, e.span);
        return { k: "num", value: NaN };
      }
      if (!t.init) err(this.diags, "SEQ4006", `has(${a.kind === "ref" ? a.name : ""}) is always 1: '${t.name}' has no default, so it is required`, e.span);
      return { k: "has", tensor: t.name };
    }
    const builtin = BUILTINS[e.fn];
    if (builtin) {
      if (e.args.length !== builtin.arity) {
        err(this.diags, "SEQ2006", `${e.fn}() takes ${builtin.arity} argument${builtin.arity > 1 ? "s" : ""}, got ${e.args.length}`, e.span);
      }
      return { k: "call", fn: e.fn, args: e.args.map((a) => this.expr(a, scope)) };
    }
    const fn = this.fns.get(e.fn);
    if (fn) {
      const params = fn.decl.params;
      if (e.args.length !== params.length) {
        err(this.diags, "SEQ2006", `${e.fn}() takes ${params.length} argument${params.length === 1 ? "" : "s"}, got ${e.args.length}`, e.span);
        e.args.forEach((a) => this.expr(a, scope));
        return { k: "num", value: NaN };
      }
      if (this.fnDepth > 32) {
        err(this.diags, "SEQ2009", `function '${e.fn}' calls itself; functions are inlined and may not recurse`, e.span);
        return { k: "num", value: NaN };
      }
      // Inline: a fn sees only its own parameters (and dims/constants), never the caller's indices.
      const fnScope = new Scope();
      params.forEach((p, i) => fnScope.set(p.name, { kind: "fnarg", expr: this.expr(e.args[i], scope) }));
      this.fnDepth++;
      const body = this.expr(fn.decl.body, fnScope);
      this.fnDepth--;
      return body;
    }
    err(this.diags, "SEQ2005", `unknown function '${e.fn}'`, e.span, `built-ins: ${Object.keys(BUILTINS).join(", ")}, has`);
    e.args.forEach((a) => this.expr(a, scope));
    return { k: "num", value: NaN };
  }

  private finalChecks(): void {
    for (const t of this.tensors.values()) {
      if (t.kind === "state" && !this.assigned.has(t.name)) warn(this.diags, "SEQ4101", `state '${t.name}' is never updated`, t.span);
      if ((t.kind === "input" || t.kind === "param") && !this.used.has(t.name)) warn(this.diags, "SEQ4102", `${t.kind} '${t.name}' is never used`, t.span);
    }
    if (![...this.tensors.values()].some((t) => t.kind === "output")) {
      warn(this.diags, "SEQ4103", `model '${this.m.name.name}' has no outputs`, this.m.name.span, "add 'output o[...] = ...'; final states are still returned");
    }
  }
}
