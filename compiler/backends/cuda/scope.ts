/**
 * Lowering model-IR expressions for the CUDA-specific kernels: a thin ExprScope over
 * compiler/kernel/lower-expr.ts (the same expression lowering the generic forms use), with reads of
 * inputs and params going to the standard buffers of compiler/kernel/interface.ts and reads of
 * states/lets/outputs answered by the caller.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import { lowerExpr, type ExprScope } from "../../kernel/lower-expr.ts";
import { lowerConst } from "../../kernel/step.ts";
import { hasFlag, inputBuffer, paramOffset, PARAMS } from "../../kernel/interface.ts";
import { dimOverride, extentK, flatIndex, productK } from "../../kernel/symbolic.ts";

export interface ScopeOptions {
  model: I.Model;
  /** Batch row and time step (u32 kernel expressions). */
  b: K.KExpr;
  t: K.KExpr;
  /** Reads of states, lets and outputs; return undefined to fall through to inputs/params. */
  local?: (tensor: string, idx: K.KExpr[], pre: K.KStmt[]) => K.KExpr | undefined;
  /** Values of free index variables (the statement's own vars). */
  vars?: Map<number, K.KExpr>;
  prefix?: string;
}

let counter = 0;

export class CudaScope implements ExprScope {
  private readonly stack: Map<number, K.KExpr>[];
  private n = 0;
  readonly prefix: string;
  constructor(private readonly o: ScopeOptions) {
    this.stack = [o.vars ?? new Map()];
    this.prefix = o.prefix ?? `x${counter++}`;
  }
  indexValue(v: I.IndexVar): K.KExpr {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const x = this.stack[i].get(v.id);
      if (x) return x;
    }
    throw new Error(`index ${v.name} is not bound in this kernel`);
  }
  dimValue(name: string): K.KExpr {
    return name.startsWith("#") ? K.u32(Number(name.slice(1))) : K.ref(dimOverride(name));
  }
  has(tensor: string): K.KExpr {
    return K.uni(hasFlag(tensor));
  }
  fresh(prefix: string): string {
    return `${this.prefix}_${prefix}_${this.n++}`;
  }
  bind(vars: Map<number, K.KExpr>, f: () => void): void {
    this.stack.push(vars);
    try {
      f();
    } finally {
      this.stack.pop();
    }
  }
  read(tensor: string, idx: K.KExpr[], pre: K.KStmt[]): K.KExpr {
    const local = this.o.local?.(tensor, idx, pre);
    if (local) return local;
    const t = I.findTensor(this.o.model, tensor);
    if (!t) throw new Error(`unknown tensor ${tensor}`);
    const flat = flatIndex(idx, t.shape);
    let v: K.KExpr;
    if (t.kind === "input") {
      const row = K.add(K.mul(this.o.b, K.uni("T")), this.o.t);
      v = K.load(inputBuffer(tensor), K.add(K.mul(row, productK(t.shape)), flat));
    } else if (t.kind === "param") {
      v = K.load(PARAMS, K.add(K.ref(paramOffset(tensor)), flat));
    } else throw new Error(`the CUDA kernel cannot read ${t.kind} ${tensor} here`);
    return t.init ? K.sel(K.bin("!=", K.uni(hasFlag(tensor)), K.u32(0)), v, lowerConst(t.init, this)) : v;
  }
  lower(e: I.Expr, pre: K.KStmt[]): K.KExpr {
    return lowerExpr(e, this, pre);
  }
}

/** Row-major coordinates of flat index `c` over `shape`, declared as u32 locals. */
export function decompose(c: K.KExpr, shape: I.Extent[], name: (axis: number) => string, out: K.KStmt[]): K.KExpr[] {
  const coords: K.KExpr[] = new Array(shape.length);
  let rest = c;
  for (let a = shape.length - 1; a >= 0; a--) {
    if (a === 0) {
      out.push(K.decl(name(a), "u32", rest));
    } else {
      out.push(K.decl(name(a), "u32", K.bin("%", rest, extentK(shape[a]))));
      out.push(K.decl(`${name(a)}_r`, "u32", K.bin("/", rest, extentK(shape[a]))));
      rest = K.ref(`${name(a)}_r`);
    }
    coords[a] = K.ref(name(a));
  }
  return coords;
}

/** Every tensor an expression reads. */
export function tensorsRead(e: I.Expr, into = new Set<string>()): Set<string> {
  I.walkExpr(e, (x) => {
    if (x.k === "read") into.add(x.tensor);
  });
  return into;
}
