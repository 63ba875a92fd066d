/**
 * Float64 reference of the backward of the matrix-state core (matrix-core.ts), for cores without
 * low-rank terms: per head slice, micro-steps s = 1..N (tokens' micro-steps in order), readouts of
 * the state after u micro-steps (u = base of the token + the readout's offset),
 *
 *     S_s = D_s S_{s-1} + sum_p k_{s,p} v_{s,p}^T,     D_s = diag(exp(ld_s)),     y_r = S_{u_r}^T q_r.
 *
 * With dL/dy_r = dy_r and dL/dS_N = dS, the adjoint G_u = dL/dS_u obeys
 *
 *     G_u = D_{u+1} G_{u+1} + sum_{r: u_r = u} q_r dy_r^T          (G_N = dS + readouts at N),
 *
 * the same core run in reverse time: keys q, values dy, decay shifted by one. Its readouts give
 *
 *     dv_{s,p} = G_s^T k_{s,p}   (a standard readout, query k),       dk_{s,p} = G_s v_{s,p},
 *     dq_r     = S_{u_r} dy_r    (readouts contracting the value axis: `x` reads of chunkPass),
 *     dS_0     = G_0,
 *
 * and the log decays' adjoint follows from a cumulative identity instead of G_s and S_{s-1} together:
 * with a_u[i] = sum_j G_u[i,j] S_u[i,j], the two recurrences give a_u = a_{u+1} + (q.dq)_u[i] - (k.dk)_{u+1}[i]
 * (products summed over the readouts at u and the pairs of step u + 1), and
 * dld_s[i] = sum_j G_s[i,j] (D_s S_{s-1})[i,j] = a_s[i] - (k.dk)_s[i], so
 *
 *     dld_s[i] = sum_j dS[i,j] S_N[i,j] + sum_{u >= s} (q.dq)_u[i] - sum_{u >= s} (k.dk)_u[i]
 *
 * (per key; a scalar decay sums it over i): a reverse cumulative sum of elementwise products.
 *
 * `coreBackwardSequential` is the definition (every state stored, the adjoint stepped back with
 * dld_s from G_s and S_{s-1} directly); `coreBackwardChunked` is the chunked schedule the kernels
 * implement, both directions through one chunk primitive (`chunkPass`, matrix products with decay
 * ratios exp(G_a - G_b), a >= b, of log decays accumulated from the chunk start): the forward
 * direction gives each chunk's start state and dq, the reversed direction (per chunk n + 1 reversed
 * steps with decays 0, ld_n, ..., ld_1 and inputs the readouts at local states n, ..., 0) gives dv, dk
 * and the adjoint at the previous chunk's end.
 */
import type { SliceData } from "./matrix-core.ts";

export interface CoreCotangents {
  /** dL/dy per token and readout (length V). */
  dy: Float64Array[][];
  /** dL/dS_N (K x V row-major); zeros when the final state is not used. */
  dS: Float64Array;
}

export interface CoreGrads {
  /** Per token, micro-step, input pair. */
  dk: Float64Array[][][];
  dv: Float64Array[][][];
  /** Per token and readout (length K). */
  dq: Float64Array[][];
  /** Per token and micro-step, per key (length K): a scalar decay's adjoint is its sum. */
  dld: Float64Array[][];
  /** dL/dS_0 (K x V). */
  dS0: Float64Array;
}

/** Why this reference cannot take a slice (low-rank terms), or undefined. */
export function backwardRefusal(d: SliceData): string | undefined {
  if (d.steps.some((st) => st.some((m) => m.u.length > 0))) return "the chunked backward covers cores without low-rank terms (the delta-rule family needs the backward of the UT transform)";
  return undefined;
}

interface Flat {
  /** flattened micro-steps, 1-based index s - 1 */
  steps: SliceData["steps"][number];
  /** global state index each readout of token t reads */
  at: (t: number, r: number) => number;
  base: number[];
}

function flatten(d: SliceData): Flat {
  const base: number[] = [];
  let n = 0;
  for (const st of d.steps) {
    base.push(n);
    n += st.length;
  }
  return { steps: d.steps.flat(), at: (t, r) => base[t] + d.readouts[t][r].at, base };
}

function emptyGrads(d: SliceData): CoreGrads {
  const { K, V } = d;
  return {
    dk: d.steps.map((st) => st.map((m) => m.kk.map(() => new Float64Array(K)))),
    dv: d.steps.map((st) => st.map((m) => m.kk.map(() => new Float64Array(V)))),
    dq: d.readouts.map((rs) => rs.map(() => new Float64Array(K))),
    dld: d.steps.map((st) => st.map(() => new Float64Array(K))),
    dS0: new Float64Array(K * V),
  };
}

/** The definition: states stored, adjoint stepped back one micro-step at a time. */
export function coreBackwardSequential(d: SliceData, S0: Float64Array, cot: CoreCotangents): CoreGrads {
  const why = backwardRefusal(d);
  if (why) throw new Error(why);
  const { K, V } = d;
  const f = flatten(d);
  const N = f.steps.length;
  const S: Float64Array[] = [Float64Array.from(S0)];
  for (let s = 1; s <= N; s++) {
    const st = f.steps[s - 1];
    const next = new Float64Array(K * V);
    for (let i = 0; i < K; i++) {
      const dec = Math.exp(st.ld[i]);
      for (let j = 0; j < V; j++) next[i * V + j] = dec * S[s - 1][i * V + j];
    }
    st.kk.forEach((k, p) => { for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) next[i * V + j] += k[i] * st.vv[p][j]; });
    S.push(next);
  }
  const g = emptyGrads(d);
  // readouts by state index
  const reads: { t: number; r: number }[][] = Array.from({ length: N + 1 }, () => []);
  d.readouts.forEach((rs, t) => rs.forEach((_, r) => reads[f.at(t, r)].push({ t, r })));
  const stepOf: { t: number; m: number }[] = [];
  d.steps.forEach((st, t) => st.forEach((_, m) => stepOf.push({ t, m })));
  const G = Float64Array.from(cot.dS);
  for (let u = N; u >= 0; u--) {
    for (const { t, r } of reads[u]) {
      const q = d.readouts[t][r].q;
      const dy = cot.dy[t][r];
      const dq = g.dq[t][r];
      for (let i = 0; i < K; i++) {
        let acc = 0;
        for (let j = 0; j < V; j++) {
          G[i * V + j] += q[i] * dy[j];
          acc += S[u][i * V + j] * dy[j];
        }
        dq[i] = acc;
      }
    }
    if (u === 0) break;
    const st = f.steps[u - 1];
    const { t, m } = stepOf[u - 1];
    st.kk.forEach((k, p) => {
      const v = st.vv[p];
      const dk = g.dk[t][m][p], dv = g.dv[t][m][p];
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) {
        dv[j] += G[i * V + j] * k[i];
        dk[i] += G[i * V + j] * v[j];
      }
    });
    for (let i = 0; i < K; i++) {
      const dec = Math.exp(st.ld[i]);
      let acc = 0;
      for (let j = 0; j < V; j++) {
        acc += G[i * V + j] * dec * S[u - 1][i * V + j];
        G[i * V + j] *= dec;
      }
      g.dld[t][m][i] = acc;
    }
  }
  g.dS0.set(G);
  return g;
}

/** One micro-step of a chunk: log decay (length K) and input pairs. */
export interface PassStep { ld: Float64Array; pairs: { k: Float64Array; v: Float64Array }[] }
/** A read of the state after `at` steps of the chunk: y = S^T q (over V) and/or x = S z (over K). */
export interface PassRead { at: number; q?: Float64Array; z?: Float64Array }

/**
 * One chunk of the core, in the chunked (matrix) form: the state is never formed per step. With G the
 * log decay accumulated from the chunk start and ratio(a, b) = exp(G_a - G_b) (a >= b, per key):
 *   y = (q exp(G_at))^T S0 + sum_{f: s_f <= at} (q . ratio(at, s_f) k_f) v_f
 *   x = exp(G_at) (S0 z)   + sum_{f: s_f <= at} ratio(at, s_f) k_f (v_f . z)
 *   S' = exp(G_n) S0       + sum_f ratio(n, s_f) k_f v_f^T.
 */
export function chunkPass(K: number, V: number, S0: Float64Array, steps: PassStep[], reads: PassRead[]): { y: (Float64Array | undefined)[]; x: (Float64Array | undefined)[]; S: Float64Array } {
  const n = steps.length;
  const G: Float64Array[] = [new Float64Array(K)];
  for (let s = 0; s < n; s++) G.push(G[s].map((g, i) => g + steps[s].ld[i]));
  const ev = steps.flatMap((st, s) => st.pairs.map((p) => ({ s: s + 1, ...p })));
  const y = reads.map(({ at, q }) => {
    if (!q) return undefined;
    const out = new Float64Array(V);
    for (let i = 0; i < K; i++) {
      const c = q[i] * Math.exp(G[at][i]);
      if (c !== 0) for (let j = 0; j < V; j++) out[j] += c * S0[i * V + j];
    }
    for (const e of ev) {
      if (e.s > at) continue;
      let a = 0;
      for (let i = 0; i < K; i++) a += q[i] * Math.exp(G[at][i] - G[e.s][i]) * e.k[i];
      for (let j = 0; j < V; j++) out[j] += a * e.v[j];
    }
    return out;
  });
  const x = reads.map(({ at, z }) => {
    if (!z) return undefined;
    const out = new Float64Array(K);
    for (let i = 0; i < K; i++) {
      let acc = 0;
      for (let j = 0; j < V; j++) acc += S0[i * V + j] * z[j];
      out[i] = Math.exp(G[at][i]) * acc;
    }
    for (const e of ev) {
      if (e.s > at) continue;
      let a = 0;
      for (let j = 0; j < V; j++) a += e.v[j] * z[j];
      for (let i = 0; i < K; i++) out[i] += Math.exp(G[at][i] - G[e.s][i]) * e.k[i] * a;
    }
    return out;
  });
  const S = new Float64Array(K * V);
  for (let i = 0; i < K; i++) {
    const dec = Math.exp(G[n][i]);
    for (let j = 0; j < V; j++) S[i * V + j] = dec * S0[i * V + j];
  }
  for (const e of ev) for (let i = 0; i < K; i++) {
    const c = Math.exp(G[n][i] - G[e.s][i]) * e.k[i];
    if (c !== 0) for (let j = 0; j < V; j++) S[i * V + j] += c * e.v[j];
  }
  return { y, x, S };
}

/** The chunked backward over chunks of `chunk` tokens. */
/** The forward core over tokens [t0, t1) of a slice from state S as one chunkPass; `read` gives each readout's q and/or z (results in token, then readout order). */
export function forwardChunk(d: SliceData, t0: number, t1: number, S: Float64Array, read: (t: number, r: number) => Omit<PassRead, "at">): ReturnType<typeof chunkPass> {
  const steps: PassStep[] = d.steps.slice(t0, t1).flat().map((m) => ({ ld: m.ld, pairs: m.kk.map((k, p) => ({ k, v: m.vv[p] })) }));
  const reads: PassRead[] = [];
  let base = 0;
  for (let t = t0; t < t1; t++) {
    d.readouts[t].forEach((ro, r) => reads.push({ at: base + ro.at, ...read(t, r) }));
    base += d.steps[t].length;
  }
  return chunkPass(d.K, d.V, S, steps, reads);
}

export function coreBackwardChunked(d: SliceData, S0: Float64Array, cot: CoreCotangents, chunk: number): CoreGrads {
  const why = backwardRefusal(d);
  if (why) throw new Error(why);
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`chunk ${chunk}: a chunk is a positive number of tokens`);
  const { K, V } = d;
  const T = d.steps.length;
  const g = emptyGrads(d);
  const chunks: { t0: number; t1: number; S0: Float64Array }[] = [];
  // forward direction: each chunk's start state, and dq = S_u dy (reads contracting the value axis)
  let S: Float64Array = Float64Array.from(S0);
  for (let t0 = 0; t0 < T; t0 += chunk) {
    const t1 = Math.min(T, t0 + chunk);
    chunks.push({ t0, t1, S0: S });
    const res = forwardChunk(d, t0, t1, S, (t, r) => ({ z: cot.dy[t][r] }));
    let e = 0;
    for (let t = t0; t < t1; t++) d.readouts[t].forEach((_, r) => g.dq[t][r].set(res.x[e++]!));
    S = res.S;
  }
  const SN = S;
  // reverse direction: the adjoint core, chunk by chunk from the last. Per chunk with n micro-steps,
  // n + 1 reversed steps: reversed step 1 + n - u carries the readouts at local state u (u = n .. 0) and
  // the decay D_{u+1} that takes G_{u+1} to u (none for u = n: Gin is already at S_n).
  let Gin: Float64Array = Float64Array.from(cot.dS);
  for (let c = chunks.length - 1; c >= 0; c--) {
    const { t0, t1 } = chunks[c];
    const fwd = d.steps.slice(t0, t1).flat();
    const n = fwd.length;
    const loc: { t: number; m: number }[] = [];
    for (let t = t0; t < t1; t++) d.steps[t].forEach((_, m) => loc.push({ t, m }));
    const steps: PassStep[] = Array.from({ length: n + 1 }, (_, k) => ({ ld: k === 0 ? new Float64Array(K) : fwd[n - k].ld, pairs: [] }));
    let base = 0;
    for (let t = t0; t < t1; t++) {
      d.readouts[t].forEach((ro, r) => steps[n - (base + ro.at)].pairs.push({ k: ro.q, v: cot.dy[t][r] }));
      base += d.steps[t].length;
    }
    // G_s is the reversed state after reversed step n + 1 - s: read dv with query k, dk with z = v
    const reads: PassRead[] = [];
    const who: { s: number; p: number }[] = [];
    fwd.forEach((m, s0) => m.kk.forEach((k, p) => { reads.push({ at: n - s0, q: k, z: m.vv[p] }); who.push({ s: s0, p }); }));
    const res = chunkPass(K, V, Gin, steps, reads);
    who.forEach(({ s, p }, e) => {
      const { t, m } = loc[s];
      g.dv[t][m][p].set(res.y[e]!);
      g.dk[t][m][p].set(res.x[e]!);
    });
    Gin = res.S;
  }
  g.dS0.set(Gin);
  // log decays: reverse cumulative sum of q.dq - k.dk from sum_j dS[i,j] S_N[i,j]
  const acc = new Float64Array(K);
  for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) acc[i] += cot.dS[i * V + j] * SN[i * V + j];
  const f = flatten(d);
  const readsAt: { t: number; r: number }[][] = Array.from({ length: f.steps.length + 1 }, () => []);
  d.readouts.forEach((rs, t) => rs.forEach((_, r) => readsAt[f.at(t, r)].push({ t, r })));
  for (let t = T - 1; t >= 0; t--) {
    for (let m = d.steps[t].length - 1; m >= 0; m--) {
      const u = f.base[t] + m + 1;
      for (const { t: tt, r } of readsAt[u]) {
        const q = d.readouts[tt][r].q, dq = g.dq[tt][r];
        for (let i = 0; i < K; i++) acc[i] += q[i] * dq[i];
      }
      d.steps[t][m].kk.forEach((k, p) => { const dk = g.dk[t][m][p]; for (let i = 0; i < K; i++) acc[i] -= k[i] * dk[i]; });
      g.dld[t][m].set(acc);
    }
  }
  return g;
}
