/**
 * Float64 reference of the matrix-state core (see matrix-form.ts), in two schedules:
 *  - sequential: one micro-step at a time (the definition);
 *  - chunked: tokens grouped in chunks; within a chunk the state is never formed per step:
 *      R  = (I - L_uu)^-1 (W~ S0 + L_uk V)         low-rank reads  r = w^T S_{s-1}  (UT transform)
 *      y  = Q~ S0 + A_u R + A_k V                  readouts        (masked "attention" matrices)
 *      S' = exp(G_n) S0 + U~^T R + K~^T V          state passing
 *    with every decay a ratio exp(G_a - G_b), a >= b, of log decays accumulated from the chunk
 *    start, so nothing overflows. This is the algorithm the GPU chunked kernels implement with
 *    matmuls; here it is written plainly to pin down the algebra.
 */
import type { MatrixForm } from "./matrix-form.ts";
import { extentSize } from "../ir/types.ts";

/** Canonical per-(batch, head) data, micro-step by micro-step. */
export interface SliceData {
  K: number;
  V: number;
  /** micro-steps of one token, expanded (loops unrolled); per token t: steps[t][m] */
  steps: { ld: Float64Array; u: Float64Array[]; w: Float64Array[]; kk: Float64Array[]; vv: Float64Array[] }[][];
  /** readouts of token t: q vectors and the micro-step offset (state index within the token) they read */
  readouts: { q: Float64Array; at: number }[][];
}

export interface CoreResult { y: Float64Array[][]; S: Float64Array }

/** S is K x V row-major (key rows). */
export function coreSequential(d: SliceData, S0: Float64Array): CoreResult {
  const { K, V } = d;
  const S = Float64Array.from(S0);
  const y: Float64Array[][] = [];
  const r = new Float64Array(V);
  for (let t = 0; t < d.steps.length; t++) {
    const ys: Float64Array[] = new Array(d.readouts[t].length);
    const read = (m: number) => d.readouts[t].forEach((ro, i) => ro.at === m && (ys[i] = readout(S, ro.q, K, V)));
    read(0);
    d.steps[t].forEach((st, m) => {
      const reads = st.w.map((w) => {
        const rr = new Float64Array(V);
        for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) rr[j] += w[i] * S[i * V + j];
        return rr;
      });
      for (let i = 0; i < K; i++) {
        const dec = Math.exp(st.ld[i]);
        for (let j = 0; j < V; j++) S[i * V + j] *= dec;
      }
      st.u.forEach((u, q) => {
        for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) S[i * V + j] += u[i] * reads[q][j];
      });
      st.kk.forEach((k, p) => {
        for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) S[i * V + j] += k[i] * st.vv[p][j];
      });
      read(m + 1);
    });
    y.push(ys);
  }
  void r;
  return { y, S };
}

function readout(S: Float64Array, q: Float64Array, K: number, V: number): Float64Array {
  const y = new Float64Array(V);
  for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) y[j] += q[i] * S[i * V + j];
  return y;
}

/** Chunked schedule over chunks of `chunk` tokens. */
export function coreChunked(d: SliceData, S0in: Float64Array, chunk: number): CoreResult {
  const { K, V } = d;
  let S0 = Float64Array.from(S0in);
  const y: Float64Array[][] = [];
  for (let t0 = 0; t0 < d.steps.length; t0 += chunk) {
    const t1 = Math.min(d.steps.length, t0 + chunk);
    // flatten micro-steps of the chunk; G[s] = log decay accumulated over steps 1..s (G[0] = 0)
    const steps = d.steps.slice(t0, t1).flat();
    const n = steps.length;
    const G: Float64Array[] = [new Float64Array(K)];
    for (let s = 0; s < n; s++) G.push(G[s].map((g, i) => g + steps[s].ld[i]));
    const ratio = (a: number, b: number, i: number) => Math.exp(G[a][i] - G[b][i]); // a >= b
    // events: low-rank pairs (s, u, w) and input pairs (s, kk, vv), s = 1-based micro-step index
    const lr = steps.flatMap((st, s) => st.u.map((u, q) => ({ s: s + 1, u, w: st.w[q] })));
    const inp = steps.flatMap((st, s) => st.kk.map((k, p) => ({ s: s + 1, k, v: st.vv[p] })));
    // R (E x V): r_e = (w_e * exp(G_{s-1}))^T S0 + sum_{e' earlier step} L_uu[e,e'] r_e' + sum_f L_uk[e,f] v_f
    const R = lr.map(() => new Float64Array(V));
    for (let e = 0; e < lr.length; e++) {
      const { s, w } = lr[e];
      const re = R[e];
      for (let i = 0; i < K; i++) {
        const c = w[i] * Math.exp(G[s - 1][i]);
        if (c !== 0) for (let j = 0; j < V; j++) re[j] += c * S0[i * V + j];
      }
      for (let e2 = 0; e2 < e; e2++) {
        if (lr[e2].s >= s) continue;
        let c = 0;
        for (let i = 0; i < K; i++) c += w[i] * ratio(s - 1, lr[e2].s, i) * lr[e2].u[i];
        for (let j = 0; j < V; j++) re[j] += c * R[e2][j];
      }
      for (const f of inp) {
        if (f.s >= s) continue;
        let c = 0;
        for (let i = 0; i < K; i++) c += w[i] * ratio(s - 1, f.s, i) * f.k[i];
        for (let j = 0; j < V; j++) re[j] += c * f.v[j];
      }
    }
    // readouts
    const M = d.steps[t0]?.length ?? 0;
    for (let t = t0; t < t1; t++) {
      const base = d.steps.slice(t0, t).reduce((a, x) => a + x.length, 0);
      void M;
      y.push(
        d.readouts[t].map(({ q, at }) => {
          const sStar = base + at;
          const out = new Float64Array(V);
          for (let i = 0; i < K; i++) {
            const c = q[i] * Math.exp(G[sStar][i]);
            if (c !== 0) for (let j = 0; j < V; j++) out[j] += c * S0[i * V + j];
          }
          lr.forEach((ev, e) => {
            if (ev.s > sStar) return;
            let c = 0;
            for (let i = 0; i < K; i++) c += q[i] * ratio(sStar, ev.s, i) * ev.u[i];
            for (let j = 0; j < V; j++) out[j] += c * R[e][j];
          });
          for (const f of inp) {
            if (f.s > sStar) continue;
            let c = 0;
            for (let i = 0; i < K; i++) c += q[i] * ratio(sStar, f.s, i) * f.k[i];
            for (let j = 0; j < V; j++) out[j] += c * f.v[j];
          }
          return out;
        }),
      );
    }
    // state passing
    const S1 = new Float64Array(K * V);
    for (let i = 0; i < K; i++) {
      const dec = Math.exp(G[n][i]);
      for (let j = 0; j < V; j++) S1[i * V + j] = dec * S0[i * V + j];
    }
    lr.forEach((ev, e) => {
      for (let i = 0; i < K; i++) {
        const c = ratio(n, ev.s, i) * ev.u[i];
        for (let j = 0; j < V; j++) S1[i * V + j] += c * R[e][j];
      }
    });
    for (const f of inp) {
      for (let i = 0; i < K; i++) {
        const c = ratio(n, f.s, i) * f.k[i];
        for (let j = 0; j < V; j++) S1[i * V + j] += c * f.v[j];
      }
    }
    S0 = S1;
  }
  return { y, S: S0 };
}

/** Number of micro-steps each MicroStep entry expands to, for given dims. */
export function expansion(form: MatrixForm, dims: Record<string, number>): number[] {
  return form.steps.map((s) => (s.loop ? extentSize(s.loop, dims) : 1));
}
