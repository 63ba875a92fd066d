/** Elementwise functions of the language: arity, float64 meaning, and whether they are linear. */

export interface Builtin {
  arity: number;
  eval: (...x: number[]) => number;
  /** Short description for the language reference and diagnostics. */
  doc: string;
}

const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

export const BUILTINS: Record<string, Builtin> = {
  exp: { arity: 1, eval: Math.exp, doc: "e^x" },
  log: { arity: 1, eval: Math.log, doc: "natural logarithm" },
  log1p: { arity: 1, eval: Math.log1p, doc: "log(1 + x)" },
  expm1: { arity: 1, eval: Math.expm1, doc: "e^x - 1" },
  sigmoid: { arity: 1, eval: sigmoid, doc: "1 / (1 + e^-x)" },
  logsigmoid: { arity: 1, eval: (x) => -softplus(-x), doc: "log(sigmoid(x)), computed stably" },
  softplus: { arity: 1, eval: softplus, doc: "log(1 + e^x), computed stably" },
  silu: { arity: 1, eval: (x) => x * sigmoid(x), doc: "x * sigmoid(x)" },
  tanh: { arity: 1, eval: Math.tanh, doc: "hyperbolic tangent" },
  relu: { arity: 1, eval: (x) => Math.max(x, 0), doc: "max(x, 0)" },
  sqrt: { arity: 1, eval: Math.sqrt, doc: "square root" },
  rsqrt: { arity: 1, eval: (x) => 1 / Math.sqrt(x), doc: "1 / sqrt(x)" },
  abs: { arity: 1, eval: Math.abs, doc: "absolute value" },
  sin: { arity: 1, eval: Math.sin, doc: "sine" },
  cos: { arity: 1, eval: Math.cos, doc: "cosine" },
  min: { arity: 2, eval: (a, b) => Math.min(a, b), doc: "smaller of two values" },
  max: { arity: 2, eval: (a, b) => Math.max(a, b), doc: "larger of two values" },
  pow: { arity: 2, eval: Math.pow, doc: "a^b" },
  select: { arity: 3, eval: (c, a, b) => (c !== 0 ? a : b), doc: "select(cond, a, b): a where cond is true (non-zero), else b" },
};

/** Named constants usable in expressions. */
export const CONSTANTS: Record<string, number> = { inf: Infinity, pi: Math.PI };
