/** Deterministic random inputs for models (tests only). */
import type { RunInputs } from "../../compiler/ir/interpret.ts";
import { centered } from "../../compiler/bench/random.ts";
import type { Model, TensorDecl } from "../../compiler/ir/types.ts";

/** Uniform numbers in [-0.5, 0.5) (mulberry32). */
export const rng = centered;

/** Seeded random cotangents shaped like a reference result's outputs and final states (outputs drawn first). */
export function randomCotangents(ref: { outputs: Record<string, Float64Array>; finalState: Record<string, Float64Array> }, seed: number) {
  const r = rng(seed);
  const draw = (o: Record<string, Float64Array>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.map(() => r())]));
  return { outputs: draw(ref.outputs), finalState: draw(ref.finalState) };
}

export const randArray = (n: number, r: () => number): Float64Array => Float64Array.from({ length: n }, r);

/** Small, odd, distinct sizes for the stdlib's dim names. */
export const SMALL_DIMS: Record<string, number> = { H: 2, K: 3, V: 4, D: 3, N: 2, P: 2, I: 3, J: 2, L: 8, NH: 2, DH: 2 };

export const sizeOf = (t: TensorDecl, dims: Record<string, number>): number =>
  t.shape.reduce((a, e) => a * (e.kind === "lit" ? e.value : dims[e.name]), 1);

export function smallDims(model: Model, overrides: Record<string, number> = {}): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const d of model.dims) {
    const v = d.fixed ?? overrides[d.name] ?? SMALL_DIMS[d.name];
    if (v !== undefined) dims[d.name] = v;
    else if (!d.sequenceDefault) dims[d.name] = 3;
  }
  return dims;
}

/** Random inputs, params (those with a shape) and, optionally, initial states. */
export function randomRun(model: Model, opts: { dims: Record<string, number>; batch: number; time: number; seed: number; initialState?: boolean; scale?: number }): RunInputs {
  const r = rng(opts.seed);
  const s = opts.scale ?? 1;
  const rs = () => r() * s;
  const dims = { ...opts.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = opts.time;
  const run: RunInputs = { dims: opts.dims, batch: opts.batch, time: opts.time, inputs: {}, params: {}, initialState: {} };
  for (const t of model.tensors) {
    if (t.kind === "input") run.inputs[t.name] = randArray(opts.batch * opts.time * sizeOf(t, dims), rs);
    if (t.kind === "param" && t.shape.length > 0) run.params![t.name] = randArray(sizeOf(t, dims), rs);
    if (t.kind === "state" && opts.initialState) run.initialState![t.name] = randArray(opts.batch * sizeOf(t, dims), rs);
  }
  return run;
}

/** Uniform numbers in [0, 1) (same generator as rng). */
export function unit(seed: number): () => number {
  const r = rng(seed);
  return () => r() + 0.5;
}
