/** WGSL spellings of the language's math functions; helpers are emitted once per shader when used. */

export interface WgslFn {
  /** Direct WGSL builtin, or the name of a helper below. */
  name: string;
  helper?: string;
  /** Helpers this one calls. */
  deps?: string[];
}

export const WGSL_MATH: Record<string, WgslFn> = {
  exp: { name: "exp" },
  log: { name: "log" },
  sqrt: { name: "sqrt" },
  rsqrt: { name: "inverseSqrt" },
  abs: { name: "abs" },
  sin: { name: "sin" },
  cos: { name: "cos" },
  relu: { name: "seq_relu", helper: "fn seq_relu(x: f32) -> f32 { return max(x, 0.0); }" },
  log1p: {
    name: "seq_log1p",
    // log(1 + x) without cancellation: log(u) * x / (u - 1) with u = 1 + x (Goldberg)
    helper: "fn seq_log1p(x: f32) -> f32 { let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * x / (u - 1.0); }",
  },
  expm1: {
    name: "seq_expm1",
    helper: "fn seq_expm1(x: f32) -> f32 { if (abs(x) < 1e-4) { return x + 0.5 * x * x + x * x * x / 6.0; } return exp(x) - 1.0; }",
  },
  sigmoid: { name: "seq_sigmoid", helper: "fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }" },
  softplus: { name: "seq_softplus", helper: "fn seq_softplus(x: f32) -> f32 { return max(x, 0.0) + seq_log1p(exp(-abs(x))); }", deps: ["log1p"] },
  logsigmoid: { name: "seq_logsigmoid", helper: "fn seq_logsigmoid(x: f32) -> f32 { return -seq_softplus(-x); }", deps: ["softplus"] },
  silu: { name: "seq_silu", helper: "fn seq_silu(x: f32) -> f32 { return x * seq_sigmoid(x); }", deps: ["sigmoid"] },
  tanh: { name: "seq_tanh", helper: "fn seq_tanh(x: f32) -> f32 { let z = exp(-2.0 * abs(x)); let r = (1.0 - z) / (1.0 + z); return select(-r, r, x >= 0.0); }" },
  pow: {
    name: "seq_pow",
    // Math.pow semantics for a negative base with an integer exponent; pow() of WGSL needs x > 0
    helper: `fn seq_pow(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (a > 0.0) { return exp2(b * log2(a)); }
  if (a == 0.0) { return select(seq_inf(), 0.0, b > 0.0); }
  if (b != round(b)) { return seq_nan(); }
  let m = exp2(b * log2(-a));
  return select(m, -m, (abs(b) % 2.0) == 1.0);
}`,
    deps: ["inf", "nan"],
  },
  inf: { name: "seq_inf", helper: "fn seq_inf() -> f32 { return bitcast<f32>(seq_inf_bits); }" },
  nan: { name: "seq_nan", helper: "fn seq_nan() -> f32 { return bitcast<f32>(seq_inf_bits | 0x400000u); }", deps: ["inf"] },
};
