/**
 * Model-IR expressions -> kernel-IR expressions. A sum becomes an accumulator loop emitted as
 * statements before the value; everything else maps one to one. Where a tensor lives (global
 * buffer, workgroup array, register) is the caller's business: `read` is a callback.
 */
import * as I from "../ir/types.ts";
import * as K from "./ir.ts";

export interface ExprScope {
  /** u32 value of an index variable in scope. */
  indexValue(v: I.IndexVar): K.KExpr;
  /** Value of a dim (an override constant). */
  dimValue(name: string): K.KExpr;
  /** f32 value of `tensor[idx]`; may emit statements (e.g. an address computation). */
  read(tensor: string, idx: K.KExpr[], pre: K.KStmt[]): K.KExpr;
  /** u32 flag (non-zero when the optional tensor was supplied). */
  has(tensor: string): K.KExpr;
  /** A fresh local name. */
  fresh(prefix: string): string;
  /** Bind index variables (sum or loop) to kernel variables while lowering `f`. */
  bind(vars: Map<number, K.KExpr>, f: () => void): void;
}

export function lowerExpr(e: I.Expr, s: ExprScope, pre: K.KStmt[]): K.KExpr {
  switch (e.k) {
    case "num":
      if (e.value === Infinity) return { k: "inf" };
      if (e.value === -Infinity) return { k: "neg", a: { k: "inf" }, t: "f32" };
      return K.f32(e.value);
    case "dim":
      return K.cast("f32", s.dimValue(e.name));
    case "idx":
      return K.cast("f32", s.indexValue(e.v));
    case "has":
      return K.sel(K.bin("!=", s.has(e.tensor), K.u32(0)), K.f32(1), K.f32(0));
    case "read":
      return s.read(e.tensor, e.idx.map((ix) => (ix.kind === "lit" ? K.u32(ix.value) : s.indexValue(ix.v))), pre);
    case "neg":
      return { k: "neg", a: lowerExpr(e.a, s, pre), t: "f32" };
    case "bin": {
      const a = lowerExpr(e.a, s, pre);
      const b = lowerExpr(e.b, s, pre);
      switch (e.op) {
        case "+":
        case "-":
        case "*":
        case "/":
          return K.bin(e.op, a, b, "f32");
        case "^":
          return K.call("pow", a, b);
        default:
          return K.sel(K.bin(e.op, a, b), K.f32(1), K.f32(0));
      }
    }
    case "call": {
      const args = e.args.map((x) => lowerExpr(x, s, pre));
      if (e.fn === "select") return K.sel(K.bin("!=", args[0], K.f32(0)), args[1], args[2]);
      if (e.fn === "min" || e.fn === "max") return K.bin(e.fn, args[0], args[1], "f32");
      return K.call(e.fn, ...args);
    }
    case "sum": {
      const acc = s.fresh("acc");
      pre.push(K.decl(acc, "f32", K.f32(0), true));
      const names = e.vars.map((v) => s.fresh(v.name));
      const binding = new Map<number, K.KExpr>(e.vars.map((v, i) => [v.id, K.ref(names[i])]));
      let loop: K.KStmt[] = [];
      s.bind(binding, () => {
        const inner: K.KStmt[] = [];
        const body = lowerExpr(e.body, s, inner);
        inner.push(K.set(acc, K.bin("+", K.ref(acc, "f32"), body, "f32")));
        loop = inner;
      });
      for (let i = e.vars.length - 1; i >= 0; i--) {
        loop = [K.forLoop(names[i], K.u32(0), s.dimValue(extentKey(e.vars[i].extent)), loop)];
      }
      pre.push(...loop);
      return K.ref(acc, "f32");
    }
  }
}

/** Dim name or literal of an extent, as dimValue understands it ("#4" for a literal 4). */
export function extentKey(e: I.Extent): string {
  return e.kind === "dim" ? e.name : `#${e.value}`;
}

/** A scope helper: kernel value of an extent. */
export function extentValue(e: I.Extent, dim: (name: string) => K.KExpr): K.KExpr {
  return e.kind === "lit" ? K.u32(e.value) : dim(e.name);
}
