/** Shared pieces of the CUDA check/bench scripts: deterministic inputs, relative error, medians. */
import type { Model, TensorDecl } from "../../compiler/ir/types.ts";

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
export { mulberry32 as rng } from "../../compiler/bench/random.ts";

export function fill(n: number, r: () => number, lo = -0.5, hi = 0.5): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

export const sizeOf = (t: TensorDecl, dims: Record<string, number>): number => t.shape.reduce((a, e) => a * (e.kind === "lit" ? e.value : dims[e.name]), 1);

/** ||a - ref|| / ||ref||; NaN anywhere in `a` gives Infinity. */
export function relErr(a: Float32Array | Float64Array, ref: Float64Array): number {
  if (a.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i])) return Infinity;
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Small dims for checking every model against the float64 interpreter (not powers of two where it matters). */
export interface CheckShape {
  dims: Record<string, number>;
  B: number;
  T: number;
  /** Input ranges other than [-0.5, 0.5), e.g. a log forget gate kept <= 0 over a long sequence (fp32 would overflow otherwise). */
  ranges?: Record<string, [number, number]>;
  /** Start from a reachable non-zero initial state (default: only the first shape of a model). */
  init?: boolean;
}

export function checkShapes(model: Model): CheckShape[] {
  const base: Record<string, number> = { H: 2, K: 16, V: 24, D: 300, N: 4, P: 8, I: 24, J: 2, NH: 2, DH: 8 };
  const name = model.name.toLowerCase();
  const shapes: CheckShape[] = [];
  const mk = (over: Record<string, number>, B: number, T: number, ranges?: CheckShape["ranges"], init?: boolean) => {
    const dims: Record<string, number> = {};
    for (const d of model.dims) dims[d.name] = d.fixed ?? over[d.name] ?? base[d.name] ?? (d.name === "L" ? T : 5);
    shapes.push({ dims, B, T, ranges, init });
  };
  if (name === "lstm" || name === "gru") {
    mk({ H: 40, I: 24 }, 3, 37);
    mk({ H: 256, I: 64 }, 9, 12);
  } else if (name === "hgrn") {
    // the pointwise scans: T in {1, 7, 333, 1031, 20000}, initial states, C % 4 != 0 (4-byte staging), partial channel blocks
    mk({ D: 300 }, 3, 333, undefined, true);
    mk({ D: 1536 }, 2, 1031, { g: [-0.5, 0] }, true);
    mk({ D: 64 }, 1, 20000, { g: [-0.5, 0] }); // one chain of 157+ time tiles: look-back windows longer than 32
    mk({ D: 301 }, 2, 7, undefined, true);
    mk({ D: 300 }, 3, 1, undefined, true);
  } else if (name === "ema2") {
    mk({ H: 3, D: 100 }, 3, 333, undefined, true);
    mk({ H: 2, D: 768 }, 2, 1031, undefined, true);
    mk({ H: 7, D: 43 }, 2, 7, undefined, true);
    mk({ H: 3, D: 100 }, 2, 1, undefined, true);
  } else if (name === "lrugate") {
    mk({ D: 300 }, 3, 333, undefined, true);
    mk({ D: 1536 }, 2, 1031, undefined, true);
    mk({ D: 301 }, 2, 7, undefined, true);
    mk({ D: 300 }, 2, 1, undefined, true);
  } else mk({}, 3, 100);
  return shapes;
}
