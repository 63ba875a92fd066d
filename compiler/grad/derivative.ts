/**
 * Symbolic local derivatives: every read occurrence in an expression with the product of the
 * partial derivatives along its path from the root (the chain rule), and the summation indices
 * that enclose it. Reverse mode then scatters `adjoint * factor` to the tensor element read.
 */
import type * as I from "../ir/types.ts";

export interface Occurrence {
  read: Extract<I.Expr, { k: "read" }>;
  /** d(root)/d(this read), an expression of the same variables as the root. */
  factor: I.Expr;
  /** Summation indices enclosing the read (free in `factor`). */
  sums: I.IndexVar[];
}

const num = (value: number): I.Expr => ({ k: "num", value });
const isNum = (e: I.Expr, v: number) => e.k === "num" && e.value === v;
export const mul = (a: I.Expr, b: I.Expr): I.Expr =>
  isNum(a, 1) ? b : isNum(b, 1) ? a : isNum(a, -1) ? neg(b) : isNum(b, -1) ? neg(a) : { k: "bin", op: "*", a, b };
export const add = (a: I.Expr, b: I.Expr): I.Expr => (isNum(a, 0) ? b : isNum(b, 0) ? a : { k: "bin", op: "+", a, b });
const neg = (a: I.Expr): I.Expr => (a.k === "neg" ? a.a : { k: "neg", a });
const div = (a: I.Expr, b: I.Expr): I.Expr => ({ k: "bin", op: "/", a, b });
const sub = (a: I.Expr, b: I.Expr): I.Expr => ({ k: "bin", op: "-", a, b });
const call = (fn: string, ...args: I.Expr[]): I.Expr => ({ k: "call", fn, args });
const cmp = (op: I.BinOp, a: I.Expr, b: I.Expr): I.Expr => ({ k: "bin", op, a, b });
const sel = (c: I.Expr, a: I.Expr, b: I.Expr): I.Expr => call("select", c, a, b);
const pow = (a: I.Expr, b: I.Expr): I.Expr => ({ k: "bin", op: "^", a, b });

/** Partial derivatives of a built-in with respect to each argument. */
function partials(fn: string, x: I.Expr[]): (I.Expr | null)[] {
  const [a, b] = x;
  const s = call("sigmoid", a);
  switch (fn) {
    case "exp": return [call("exp", a)];
    case "expm1": return [call("exp", a)];
    case "log": return [div(num(1), a)];
    case "log1p": return [div(num(1), add(num(1), a))];
    case "sigmoid": return [mul(s, sub(num(1), s))];
    case "logsigmoid": return [call("sigmoid", neg(a))];
    case "softplus": return [s];
    case "silu": return [mul(s, add(num(1), mul(a, sub(num(1), s))))];
    case "tanh": return [sub(num(1), pow(call("tanh", a), num(2)))];
    case "relu": return [sel(cmp(">", a, num(0)), num(1), num(0))];
    case "sqrt": return [mul(num(0.5), call("rsqrt", a))];
    case "rsqrt": return [div(mul(num(-0.5), call("rsqrt", a)), a)];
    case "abs": return [sel(cmp(">=", a, num(0)), num(1), num(-1))];
    case "sin": return [call("cos", a)];
    case "cos": return [neg(call("sin", a))];
    case "min": return [sel(cmp("<=", a, b), num(1), num(0)), sel(cmp("<=", a, b), num(0), num(1))];
    case "max": return [sel(cmp(">=", a, b), num(1), num(0)), sel(cmp(">=", a, b), num(0), num(1))];
    case "pow": return [mul(b, pow(a, sub(b, num(1)))), mul(pow(a, b), call("log", a))];
    case "select": return [null, sel(a, num(1), num(0)), sel(a, num(0), num(1))];
  }
  throw new Error(`no derivative for ${fn}()`);
}

export function occurrences(e: I.Expr, wanted: (tensor: string) => boolean): Occurrence[] {
  const out: Occurrence[] = [];
  const walk = (x: I.Expr, f: I.Expr, sums: I.IndexVar[]): void => {
    switch (x.k) {
      case "read":
        if (wanted(x.tensor)) out.push({ read: x, factor: f, sums });
        return;
      case "neg":
        walk(x.a, neg(f), sums);
        return;
      case "sum":
        walk(x.body, f, [...sums, ...x.vars]);
        return;
      case "bin":
        switch (x.op) {
          case "+": walk(x.a, f, sums); walk(x.b, f, sums); return;
          case "-": walk(x.a, f, sums); walk(x.b, neg(f), sums); return;
          case "*": walk(x.a, mul(f, x.b), sums); walk(x.b, mul(f, x.a), sums); return;
          case "/": walk(x.a, div(f, x.b), sums); walk(x.b, mul(f, neg(div(x.a, mul(x.b, x.b)))), sums); return;
          case "^": {
            const [da, db] = partials("pow", [x.a, x.b]);
            walk(x.a, mul(f, da!), sums);
            walk(x.b, mul(f, db!), sums);
            return;
          }
          default: return; // comparisons are piecewise constant
        }
      case "call": {
        const ps = partials(x.fn, x.args);
        x.args.forEach((arg, i) => ps[i] && walk(arg, mul(f, ps[i]!), sums));
        return;
      }
      default:
        return;
    }
  };
  walk(e, num(1), []);
  return out;
}
