/**
 * The models the web example offers, with deterministic inputs (the same in the browser and in
 * the end-to-end test, which recomputes them for the reference interpreter).
 */

import { centered } from "../../compiler/bench/random.ts";

/** Deterministic uniform numbers in [-0.5, 0.5) (mulberry32). */
export const rng = centered;

export interface ExampleSpec {
  /** stdlib file (without .seq) and the generated class name */
  file: string;
  className: string;
  title: string;
  dims: Record<string, number>;
  /** per-step sizes of each input and each param's size, from dims */
  inputs: Record<string, (d: Record<string, number>) => number>;
  params: Record<string, (d: Record<string, number>) => number>;
  /** inputs that are log-gates: made negative so long sequences stay bounded */
  logGates: string[];
}

export const EXAMPLES: ExampleSpec[] = [
  {
    file: "hgrn", className: "Hgrn", title: "HGRN (diagonal, scan)", dims: { D: 64 },
    inputs: { x: (d) => d.D, g: (d) => d.D }, params: {}, logGates: ["g"],
  },
  {
    file: "gla", className: "Gla", title: "GLA (matrix state, per-key decay)", dims: { H: 2, K: 16, V: 16 },
    inputs: { q: (d) => d.H * d.K, k: (d) => d.H * d.K, v: (d) => d.H * d.V, gk: (d) => d.H * d.K }, params: {}, logGates: ["gk"],
  },
  {
    file: "lstm", className: "Lstm", title: "LSTM (nonlinear cell)", dims: { H: 32, I: 16 },
    inputs: { x: (d) => d.I },
    params: { weight_ih_l0: (d) => 4 * d.H * d.I, weight_hh_l0: (d) => 4 * d.H * d.H, bias_ih_l0: (d) => 4 * d.H, bias_hh_l0: (d) => 4 * d.H },
    logGates: [],
  },
];

export interface ExampleData { inputs: Record<string, Float32Array>; params: Record<string, Float32Array> }

/** Inputs [B, T, ...] and params for a spec; the same numbers for the same (B, T, seed). */
export function makeData(spec: ExampleSpec, B: number, T: number, seed: number): ExampleData {
  const r = rng(seed);
  const inputs: Record<string, Float32Array> = {};
  for (const [name, size] of Object.entries(spec.inputs)) {
    const gate = spec.logGates.includes(name);
    inputs[name] = Float32Array.from({ length: B * T * size(spec.dims) }, () => (gate ? -0.05 - Math.abs(r()) * 0.5 : r() * 2));
  }
  const params: Record<string, Float32Array> = {};
  for (const [name, size] of Object.entries(spec.params)) params[name] = Float32Array.from({ length: size(spec.dims) }, () => r() * 0.5);
  return { inputs, params };
}
