/**
 * The float64 reference interpreter: the definition of what a model computes, and the oracle
 * every backend and form is tested against. Deliberately simple: statements run in order, one
 * batch element and one time step at a time, each over every index tuple of its target.
 *
 * Layouts: inputs [B, T, ...shape], params [...shape], initial/final states [B, ...shape],
 * outputs [B, T, ...shape]; all row-major Float64Array.
 */
import * as I from "./types.ts";
import { BUILTINS } from "./builtins.ts";

export interface RunInputs {
  dims: Record<string, number>;
  batch: number;
  time: number;
  inputs: Record<string, Float64Array>;
  params?: Record<string, Float64Array>;
  initialState?: Record<string, Float64Array>;
}

export interface RunResult {
  outputs: Record<string, Float64Array>;
  finalState: Record<string, Float64Array>;
}

interface Slot { data: Float64Array; base: number; strides: number[] }

export const shapeSizes = (shape: I.Extent[], dims: Record<string, number>): number[] => shape.map((e) => I.extentSize(e, dims));
export const product = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);
export const stridesOf = (sizes: number[]): number[] => {
  const s = new Array<number>(sizes.length);
  let acc = 1;
  for (let i = sizes.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= sizes[i];
  }
  return s;
};

/** Evaluate a scalar constant expression (defaults, initial values). */
export function evalConst(e: I.Expr, dims: Record<string, number>): number {
  const fn = new Compiler(dims, new Map(), new Int32Array(0), new Set()).expr(e);
  return fn();
}

export function interpret(model: I.Model, run: RunInputs): RunResult {
  const { batch: B, time: T } = run;
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = T;
  for (const d of model.dims) {
    if (!(d.name in dims)) throw new Error(`dim ${d.name} of model ${model.name} is not bound`);
    if (d.fixed !== undefined && dims[d.name] !== d.fixed) throw new Error(`dim ${d.name} is fixed to ${d.fixed}, got ${dims[d.name]}`);
  }
  let maxVar = 0;
  I.walkStmts(model.body, (s) => {
    if (s.k === "for") maxVar = Math.max(maxVar, s.v.id);
    else {
      s.vars.forEach((v) => (maxVar = Math.max(maxVar, v.id)));
      I.walkExpr(s.expr, (e) => {
        if (e.k === "sum") e.vars.forEach((v) => (maxVar = Math.max(maxVar, v.id)));
      });
    }
  });
  const vals = new Int32Array(maxVar + 1);
  const slots = new Map<string, Slot>();
  const present = new Set<string>();
  const sizes = (t: I.TensorDecl) => shapeSizes(t.shape, dims);

  const check = (what: string, name: string, arr: Float64Array | undefined, expected: number[]) => {
    if (!arr) throw new Error(`missing ${what} '${name}' of shape [${expected.join(", ")}]`);
    if (arr.length !== product(expected)) throw new Error(`${what} '${name}' has ${arr.length} elements, expected shape [${expected.join(", ")}] (${product(expected)})`);
  };

  const states: I.TensorDecl[] = [];
  const outputs: Record<string, Float64Array> = {};
  for (const t of model.tensors) {
    const sz = sizes(t);
    const n = product(sz);
    const strides = stridesOf(sz);
    if (t.kind === "input") {
      const given = run.inputs[t.name];
      if (given) {
        check("input", t.name, given, [B, T, ...sz]);
        present.add(t.name);
        slots.set(t.name, { data: given, base: 0, strides });
      } else if (t.init) {
        slots.set(t.name, { data: new Float64Array(n).fill(evalConst(t.init, dims)), base: 0, strides });
      } else check("input", t.name, undefined, [B, T, ...sz]);
    } else if (t.kind === "param") {
      const given = run.params?.[t.name];
      if (given) {
        check("param", t.name, given, sz);
        present.add(t.name);
        slots.set(t.name, { data: given, base: 0, strides });
      } else if (t.init) {
        slots.set(t.name, { data: new Float64Array(n).fill(evalConst(t.init, dims)), base: 0, strides });
      } else check("param", t.name, undefined, sz);
    } else if (t.kind === "state") {
      const given = run.initialState?.[t.name];
      if (given) check("initial state", t.name, given, [B, ...sz]);
      states.push(t);
      slots.set(t.name, { data: new Float64Array(n), base: 0, strides });
    } else if (t.kind === "output") {
      outputs[t.name] = new Float64Array(B * T * n);
      slots.set(t.name, { data: outputs[t.name], base: 0, strides });
    } else {
      slots.set(t.name, { data: new Float64Array(n), base: 0, strides });
    }
  }

  const compiler = new Compiler(dims, slots, vals, present);
  const program = compiler.stmts(model.body);
  const finalState: Record<string, Float64Array> = {};
  for (const s of states) finalState[s.name] = new Float64Array(B * product(sizes(s)));

  const inputSlots = model.tensors.filter((t) => t.kind === "input" && present.has(t.name)).map((t) => ({ slot: slots.get(t.name)!, n: product(sizes(t)) }));
  const outputSlots = model.tensors.filter((t) => t.kind === "output").map((t) => ({ slot: slots.get(t.name)!, n: product(sizes(t)) }));

  for (let b = 0; b < B; b++) {
    for (const s of states) {
      const slot = slots.get(s.name)!;
      const n = slot.data.length;
      const given = run.initialState?.[s.name];
      if (given) slot.data.set(given.subarray(b * n, (b + 1) * n));
      else slot.data.fill(s.init ? evalConst(s.init, dims) : 0);
    }
    for (let t = 0; t < T; t++) {
      for (const { slot, n } of inputSlots) slot.base = (b * T + t) * n;
      for (const { slot, n } of outputSlots) slot.base = (b * T + t) * n;
      program();
    }
    for (const s of states) {
      const data = slots.get(s.name)!.data;
      finalState[s.name].set(data, b * data.length);
    }
  }
  return { outputs, finalState };
}

type Thunk = () => number;

class Compiler {
  constructor(
    private readonly dims: Record<string, number>,
    private readonly slots: Map<string, Slot>,
    private readonly vals: Int32Array,
    private readonly present: Set<string>,
  ) {}

  private size(e: I.Extent): number {
    return I.extentSize(e, this.dims);
  }

  stmts(body: I.Stmt[]): () => void {
    const parts = body.map((s) => this.stmt(s));
    return () => {
      for (const p of parts) p();
    };
  }

  private stmt(s: I.Stmt): () => void {
    const vals = this.vals;
    if (s.k === "for") {
      const n = this.size(s.v.extent);
      const id = s.v.id;
      const inner = this.stmts(s.body);
      return () => {
        for (let i = 0; i < n; i++) {
          vals[id] = i;
          inner();
        }
      };
    }
    const slot = this.slots.get(s.target)!;
    const f = this.expr(s.expr);
    const ids = s.vars.map((v) => v.id);
    const ext = s.vars.map((v) => this.size(v.extent));
    const total = product(ext);
    const rank = ids.length;
    // all right-hand-side reads see the value before the statement: evaluate into a scratch buffer
    const scratch = new Float64Array(total);
    return () => {
      for (let flat = 0; flat < total; flat++) {
        let r = flat;
        for (let k = rank - 1; k >= 0; k--) {
          vals[ids[k]] = r % ext[k];
          r = (r / ext[k]) | 0;
        }
        scratch[flat] = f();
      }
      slot.data.set(scratch, slot.base);
    };
  }

  expr(e: I.Expr): Thunk {
    const vals = this.vals;
    switch (e.k) {
      case "num": {
        const v = e.value;
        return () => v;
      }
      case "dim": {
        const v = this.dims[e.name];
        return () => v;
      }
      case "idx": {
        const id = e.v.id;
        return () => vals[id];
      }
      case "has": {
        const v = this.present.has(e.tensor) ? 1 : 0;
        return () => v;
      }
      case "read": {
        const slot = this.slots.get(e.tensor)!;
        let constOff = 0;
        const ids: number[] = [];
        const strides: number[] = [];
        e.idx.forEach((ix, p) => {
          if (ix.kind === "lit") constOff += ix.value * slot.strides[p];
          else {
            ids.push(ix.v.id);
            strides.push(slot.strides[p]);
          }
        });
        const n = ids.length;
        if (n === 0) return () => slot.data[slot.base + constOff];
        if (n === 1) {
          const [i0] = ids;
          const [s0] = strides;
          return () => slot.data[slot.base + constOff + vals[i0] * s0];
        }
        return () => {
          let o = slot.base + constOff;
          for (let k = 0; k < n; k++) o += vals[ids[k]] * strides[k];
          return slot.data[o];
        };
      }
      case "neg": {
        const a = this.expr(e.a);
        return () => -a();
      }
      case "bin": {
        const a = this.expr(e.a);
        const b = this.expr(e.b);
        switch (e.op) {
          case "+": return () => a() + b();
          case "-": return () => a() - b();
          case "*": return () => a() * b();
          case "/": return () => a() / b();
          case "^": return () => Math.pow(a(), b());
          case "<": return () => (a() < b() ? 1 : 0);
          case "<=": return () => (a() <= b() ? 1 : 0);
          case ">": return () => (a() > b() ? 1 : 0);
          case ">=": return () => (a() >= b() ? 1 : 0);
          case "==": return () => (a() === b() ? 1 : 0);
          case "!=": return () => (a() !== b() ? 1 : 0);
        }
        throw new Error(`unknown operator ${e.op}`);
      }
      case "call": {
        const args = e.args.map((x) => this.expr(x));
        if (e.fn === "select") {
          const [c, x, y] = args;
          return () => (c() !== 0 ? x() : y()); // lazy: the unused branch is not evaluated
        }
        const f = BUILTINS[e.fn].eval;
        if (args.length === 1) {
          const [x] = args;
          return () => f(x());
        }
        if (args.length === 2) {
          const [x, y] = args;
          return () => f(x(), y());
        }
        return () => f(...args.map((x) => x()));
      }
      case "sum": {
        const body = this.expr(e.body);
        const ids = e.vars.map((v) => v.id);
        const ext = e.vars.map((v) => this.size(v.extent));
        if (ids.length === 1) {
          const [id] = ids;
          const [n] = ext;
          return () => {
            let acc = 0;
            for (let i = 0; i < n; i++) {
              vals[id] = i;
              acc += body();
            }
            return acc;
          };
        }
        const total = product(ext);
        return () => {
          let acc = 0;
          for (let flat = 0; flat < total; flat++) {
            let r = flat;
            for (let k = ids.length - 1; k >= 0; k--) {
              vals[ids[k]] = r % ext[k];
              r = (r / ext[k]) | 0;
            }
            acc += body();
          }
          return acc;
        };
      }
    }
  }
}
