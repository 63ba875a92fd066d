/**
 * Symbolic inlining for the analysis: every let is substituted into its uses, and (in "previous"
 * mode) every read of a state that was already updated in this step is replaced by the expression
 * of its update, so that the final expressions read only inputs, params and the states' values
 * from step t-1. In "readout" mode state reads are kept, tagged with the version they see.
 * for-loops are unrolled when their extent is known (literal or fixed dim, <= 16); otherwise two
 * symbolic iterations are unrolled and the loop is reported, so callers can scale ranks.
 */
import * as I from "../ir/types.ts";

export interface Def { vars: I.IndexVar[]; expr: I.Expr }

/** Tag appended to a state's name for reads of its updated (step t) value in readout mode. */
export const UPDATED = "'";

export interface Inlined {
  /** Final value of each state as a function of step t-1 values (states not updated are absent). */
  states: Map<string, Def>;
  /** How many assignment statements each state had (after unrolling). */
  updates: Map<string, number>;
  /** Outputs with state reads kept: `S` = value from t-1, `S'` = value after its update in step t. */
  outputs: Map<string, Def>;
  /** Loops that could not be unrolled (extent not known at compile time): var name -> extent dim. */
  symbolicLoops: { v: string; extent: string }[];
}

export class Renamer {
  private next: number;
  constructor(model: I.Model) {
    let max = 0;
    I.walkStmts(model.body, (s) => {
      if (s.k === "for") max = Math.max(max, s.v.id);
      else {
        s.vars.forEach((v) => (max = Math.max(max, v.id)));
        I.walkExpr(s.expr, (e) => e.k === "sum" && e.vars.forEach((v) => (max = Math.max(max, v.id))));
      }
    });
    this.next = max + 1;
  }

  fresh(v: I.IndexVar): I.IndexVar {
    return { id: this.next++, name: v.name, extent: v.extent };
  }

  /** Copy `e` replacing index vars per `env`, giving every bound sum var a fresh identity. */
  rename(e: I.Expr, env: Map<number, I.Index>): I.Expr {
    switch (e.k) {
      case "num":
      case "dim":
      case "has":
        return e;
      case "idx": {
        const r = env.get(e.v.id);
        if (!r) return e;
        return r.kind === "lit" ? { k: "num", value: r.value } : { k: "idx", v: r.v };
      }
      case "read":
        return { k: "read", tensor: e.tensor, idx: e.idx.map((ix) => (ix.kind === "var" ? (env.get(ix.v.id) ?? ix) : ix)) };
      case "neg":
        return { k: "neg", a: this.rename(e.a, env) };
      case "bin":
        return { k: "bin", op: e.op, a: this.rename(e.a, env), b: this.rename(e.b, env) };
      case "call":
        return { k: "call", fn: e.fn, args: e.args.map((a) => this.rename(a, env)) };
      case "sum": {
        const inner = new Map(env);
        const vars = e.vars.map((v) => {
          const f = this.fresh(v);
          inner.set(v.id, { kind: "var", v: f });
          return f;
        });
        return { k: "sum", vars, body: this.rename(e.body, inner) };
      }
    }
  }

  instantiate(def: Def, idx: I.Index[]): I.Expr {
    const env = new Map<number, I.Index>();
    def.vars.forEach((v, p) => env.set(v.id, idx[p]));
    return this.rename(def.expr, env);
  }
}

export function inlineModel(model: I.Model, mode: "previous" | "readout", renamer = new Renamer(model)): Inlined {
  const lets = new Map<string, Def>();
  const states = new Map<string, Def>();
  const updates = new Map<string, number>();
  const outputs = new Map<string, Def>();
  const symbolicLoops: Inlined["symbolicLoops"] = [];
  const stateNames = new Set(I.tensorsOfKind(model, "state").map((t) => t.name));
  const fixed = (e: I.Extent): number | undefined => (e.kind === "lit" ? e.value : model.dims.find((d) => d.name === e.name)?.fixed);

  const subst = (e: I.Expr): I.Expr => {
    switch (e.k) {
      case "read": {
        const let_ = lets.get(e.tensor);
        if (let_) return renamer.instantiate(let_, e.idx);
        if (stateNames.has(e.tensor) && states.has(e.tensor)) {
          if (mode === "previous") return renamer.instantiate(states.get(e.tensor)!, e.idx);
          return { ...e, tensor: e.tensor + UPDATED };
        }
        return e;
      }
      case "neg":
        return { k: "neg", a: subst(e.a) };
      case "bin":
        return { k: "bin", op: e.op, a: subst(e.a), b: subst(e.b) };
      case "call":
        return { k: "call", fn: e.fn, args: e.args.map(subst) };
      case "sum":
        return { k: "sum", vars: e.vars, body: subst(e.body) };
      default:
        return e;
    }
  };

  const walk = (body: I.Stmt[], env: Map<number, I.Index>) => {
    for (const s of body) {
      if (s.k === "for") {
        const n = fixed(s.v.extent);
        if (n !== undefined && n <= 16) {
          for (let i = 0; i < n; i++) walk(s.body, new Map(env).set(s.v.id, { kind: "lit", value: i }));
        } else {
          symbolicLoops.push({ v: s.v.name, extent: s.v.extent.kind === "dim" ? s.v.extent.name : String(s.v.extent.value) });
          walk(s.body, env);
          walk(s.body, env);
        }
        continue;
      }
      // keep the statement's own binder vars, rename everything else per env (loop vars -> literals)
      const expr = subst(renamer.rename(s.expr, env));
      const def: Def = { vars: s.vars, expr };
      if (s.k === "let") lets.set(s.target, def);
      else if (s.k === "assign") {
        states.set(s.target, def);
        updates.set(s.target, (updates.get(s.target) ?? 0) + 1);
      } else outputs.set(s.target, def);
    }
  };
  walk(model.body, new Map());
  return { states, updates, outputs, symbolicLoops };
}
