/**
 * The rows chunk kernel's test data shared by its emulation tests (test/cuda-rows-chunk-emu.test.ts and
 * test/cuda-rows-chunk-seg-emu.test.ts): the cases, random inputs, the float64 recurrence
 *   S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T,  out_t = S_t c_t
 * and the reversed-time helpers.
 */
import { RC_REV_BITS, type RowsChunkKernel } from "../../compiler/backends/cuda/rows-chunk.ts";
import { bf16 } from "./bf16-round.ts";
import { rng } from "./random.ts";

export interface Case { B: number; T: number; H: number; K: number; V: number; init: boolean; minLd: number }
export interface Data { ld: Float64Array; a: Float64Array; b: Float64Array; c: Float64Array; S0: Float64Array | null }

/** Log decays in [minLd, 0] (uniform), a in [-1, 1) float32, b and c bf16 values, S0 in [-1, 1). */
export function data(k: RowsChunkKernel, c: Case, seed: number): Data {
  const r = rng(seed);
  const nK = c.B * c.T * c.H * c.K, nV = c.B * c.T * c.H * c.V;
  const arr = (n: number) => Float64Array.from({ length: n }, () => Math.fround(2 * r()));
  const a = arr(nK);
  return {
    ld: Float64Array.from({ length: nK }, () => Math.fround((r() + 0.5) * c.minLd)),
    a: k.lowA ? bf16(a).values : a,
    b: bf16(arr(nV)).values,
    c: bf16(arr(nV)).values,
    S0: c.init ? arr(c.B * c.H * c.K * c.V) : null,
  };
}

/** The recurrence in float64. */
export function reference(c: Case, d: Data): Float64Array {
  const { B, T, H, K, V } = c;
  const out = new Float64Array(B * T * H * K);
  const S = new Float64Array(K * V);
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      for (let x = 0; x < K * V; x++) S[x] = d.S0 ? d.S0[(bb * H + h) * K * V + x] : 0;
      for (let t = 0; t < T; t++) {
        const rk = ((bb * T + t) * H + h) * K, rv = ((bb * T + t) * H + h) * V;
        for (let i = 0; i < K; i++) {
          const e = Math.exp(d.ld[rk + i]);
          let acc = 0;
          for (let j = 0; j < V; j++) {
            const s = e * S[i * V + j] + d.a[rk + i] * d.b[rv + j];
            S[i * V + j] = s;
            acc += s * d.c[rv + j];
          }
          out[rk + i] = acc;
        }
      }
    }
  return out;
}

/** x [B, T, H, w] reversed in time per batch row. */
export function flipT(x: Float64Array, c: Case, w: number): Float64Array {
  const out = new Float64Array(x.length), row = c.H * w;
  for (let b = 0; b < c.B; b++)
    for (let t = 0; t < c.T; t++) out.set(x.subarray((b * c.T + t) * row, (b * c.T + t + 1) * row), (b * c.T + c.T - 1 - t) * row);
  return out;
}

/** The adjoint's decays from the forward's (the glue's ldn): token t takes ld[T - t], 0 at t = 0. */
export function shiftRev(ld: Float64Array, c: Case): Float64Array {
  const out = new Float64Array(ld.length), row = c.H * c.K;
  for (let b = 0; b < c.B; b++)
    for (let t = 1; t < c.T; t++) out.set(ld.subarray((b * c.T + c.T - t) * row, (b * c.T + c.T - t + 1) * row), (b * c.T + t) * row);
  return out;
}
export const REV_ALL = RC_REV_BITS.ld | RC_REV_BITS.a | RC_REV_BITS.b | RC_REV_BITS.c | RC_REV_BITS.out;
