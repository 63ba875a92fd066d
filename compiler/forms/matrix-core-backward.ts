/**
 * Float64 reference of the backward of the matrix-state core (matrix-core.ts): per head slice,
 * micro-steps s = 1..N (tokens' micro-steps in order), low-rank reads r_{s,e} = S_{s-1}^T w_{s,e} (before the
 * step), readouts of the state after u micro-steps (u = base of the token + the readout's offset),
 *
 *     S_s = A_s S_{s-1} + sum_p k_{s,p} v_{s,p}^T,   A_s = D_s + sum_e u_{s,e} w_{s,e}^T,   D_s = diag(exp(ld_s)),
 *     y_r = S_{u_r}^T q_r.
 *
 * With dL/dy_r = dy_r and dL/dS_N = dS, the adjoint G_u = dL/dS_u obeys
 *
 *     G_{s-1} = A_s^T G_s + sum_{r: u_r = s-1} q_r dy_r^T
 *             = D_s G_s + sum_e w_{s,e} (u_{s,e}^T G_s) + sum_r q_r dy_r^T         (G_N = dS + readouts at N),
 *
 * the same core run in reverse time: decay shifted by one, keys q and values dy, and the low-rank pairs
 * with their factors swapped (u <-> w) — A^T of a diagonal-plus-low-rank matrix is one again, so the
 * chunked schedule (its UT transform for the low-rank reads) runs the adjoint as it runs the forward. Its
 * own low-rank reads are a_{s,e} = G_s^T u_{s,e}. The core's input gradients are readouts of G and of S:
 *
 *     dv_{s,p} = G_s^T k_{s,p}   (a standard readout, query k),       dk_{s,p} = G_s v_{s,p},
 *     du_{s,e} = G_s r_{s,e}     (r from the forward's low-rank reads),
 *     dw_{s,e} = S_{s-1} a_{s,e} (a from the adjoint's low-rank reads),
 *     dq_r     = S_{u_r} dy_r,   dS_0 = G_0
 *
 * (`x` reads of chunkPass contract the value axis). So the chain is: forward (chunk start states, r, dq) ->
 * adjoint (dv, dk, a, du) -> forward again (dw, whose queries came from the adjoint).
 *
 * The log decays' adjoint follows from a cumulative identity instead of G_s and S_{s-1} together: with
 * c_u[i] = sum_j G_u[i,j] S_u[i,j] and D_s S_{s-1} = S_s - sum_e u r^T - sum_p k v^T,
 *
 *     dld_s[i] = sum_j G_s[i,j] (D_s S_{s-1})[i,j] = c_s[i] - (k.dk)_s[i] - (u.du)_s[i],
 *     c_{s-1}[i] = dld_s[i] + (w.dw)_s[i] + (q.dq)_{s-1}[i]
 *
 * (products summed over the pairs of step s and the readouts at s - 1), c_N = sum_j dS[i,j] S_N[i,j] +
 * (q.dq)_N: a reverse cumulative sum of elementwise products (per key; a scalar decay sums it over i).
 *
 * `coreBackwardSequential` is the definition (every state stored, the adjoint stepped back with
 * dld_s from G_s and S_{s-1} directly); `coreBackwardChunked` is the chunked schedule the kernels
 * implement, both directions through one chunk primitive (`chunkPass`, matrix products with decay
 * ratios exp(G_a - G_b), a >= b, of log decays accumulated from the chunk start, the low-rank reads by
 * forward substitution within the chunk): the forward sweep gives each chunk's start state, r and dq;
 * the reverse sweep, per chunk from the last, runs the adjoint (n + 1 reversed steps with decays 0, ld_n,
 * ..., ld_1, inputs the readouts at local states n, ..., 0 and the swapped low-rank pairs of steps n, ..., 1:
 * dv, dk, a, du and the adjoint at the previous chunk's end), then the chunk's forward again from its
 * stored start state with the queries a (dw) — the dataflow of a per-chunk backward kernel.
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
  /** Per token, micro-step, low-rank pair (length K). */
  du: Float64Array[][][];
  dw: Float64Array[][][];
  /** Per token and readout (length K). */
  dq: Float64Array[][];
  /** Per token and micro-step, per key (length K): a scalar decay's adjoint is its sum. */
  dld: Float64Array[][];
  /** dL/dS_0 (K x V). */
  dS0: Float64Array;
}

interface Flat {
  /** flattened micro-steps, 1-based index s - 1 */
  steps: SliceData["steps"][number];
  /** the readouts (token t, readout r) of each global state index */
  readsAt: { t: number; r: number }[][];
  base: number[];
}

function flatten(d: SliceData): Flat {
  const base: number[] = [];
  let n = 0;
  for (const st of d.steps) {
    base.push(n);
    n += st.length;
  }
  const readsAt: { t: number; r: number }[][] = Array.from({ length: n + 1 }, () => []);
  d.readouts.forEach((rs, t) => rs.forEach((ro, r) => readsAt[base[t] + ro.at].push({ t, r })));
  return { steps: d.steps.flat(), readsAt, base };
}

function emptyGrads(d: SliceData): CoreGrads {
  const { K, V } = d;
  return {
    dk: d.steps.map((st) => st.map((m) => m.kk.map(() => new Float64Array(K)))),
    dv: d.steps.map((st) => st.map((m) => m.kk.map(() => new Float64Array(V)))),
    du: d.steps.map((st) => st.map((m) => m.u.map(() => new Float64Array(K)))),
    dw: d.steps.map((st) => st.map((m) => m.u.map(() => new Float64Array(K)))),
    dq: d.readouts.map((rs) => rs.map(() => new Float64Array(K))),
    dld: d.steps.map((st) => st.map(() => new Float64Array(K))),
    dS0: new Float64Array(K * V),
  };
}

/** y = S^T q (over V). */
function readY(S: Float64Array, q: Float64Array, K: number, V: number): Float64Array {
  const y = new Float64Array(V);
  for (let i = 0; i < K; i++) if (q[i] !== 0) for (let j = 0; j < V; j++) y[j] += q[i] * S[i * V + j];
  return y;
}

/** x = S z (over K). */
function readX(S: Float64Array, z: Float64Array, K: number, V: number): Float64Array {
  const x = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let acc = 0;
    for (let j = 0; j < V; j++) acc += S[i * V + j] * z[j];
    x[i] = acc;
  }
  return x;
}

/** The log decays' adjoint: the reverse cumulative sum of the header from c_N = <dS, S_N>, given dq, dk, du and dw. */
function decayAdjoint(d: SliceData, g: CoreGrads, dS: Float64Array, SN: Float64Array): void {
  const { K, V } = d;
  const acc = new Float64Array(K);
  for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) acc[i] += dS[i * V + j] * SN[i * V + j];
  const { readsAt, base } = flatten(d);
  const dot = (a: Float64Array, b: Float64Array, sign: number) => { for (let i = 0; i < K; i++) acc[i] += sign * a[i] * b[i]; };
  for (let t = d.steps.length - 1; t >= 0; t--) {
    for (let m = d.steps[t].length - 1; m >= 0; m--) {
      const u = base[t] + m + 1;
      for (const { t: tt, r } of readsAt[u]) dot(d.readouts[tt][r].q, g.dq[tt][r], 1);
      const st = d.steps[t][m];
      st.kk.forEach((k, p) => dot(k, g.dk[t][m][p], -1));
      st.u.forEach((uu, e) => dot(uu, g.du[t][m][e], -1));
      g.dld[t][m].set(acc);
      st.w.forEach((w, e) => dot(w, g.dw[t][m][e], 1));
    }
  }
}

/** The definition: states stored, adjoint stepped back one micro-step at a time. */
export function coreBackwardSequential(d: SliceData, S0: Float64Array, cot: CoreCotangents): CoreGrads {
  const { K, V } = d;
  const f = flatten(d);
  const { readsAt } = f;
  const N = f.steps.length;
  const S: Float64Array[] = [Float64Array.from(S0)];
  const reads: Float64Array[][] = [];
  for (let s = 1; s <= N; s++) {
    const st = f.steps[s - 1];
    const prev = S[s - 1];
    const r = st.w.map((w) => readY(prev, w, K, V));
    reads.push(r);
    const next = new Float64Array(K * V);
    for (let i = 0; i < K; i++) {
      const dec = Math.exp(st.ld[i]);
      for (let j = 0; j < V; j++) next[i * V + j] = dec * prev[i * V + j];
    }
    st.u.forEach((u, e) => { for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) next[i * V + j] += u[i] * r[e][j]; });
    st.kk.forEach((k, p) => { for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) next[i * V + j] += k[i] * st.vv[p][j]; });
    S.push(next);
  }
  const g = emptyGrads(d);
  const stepOf: { t: number; m: number }[] = [];
  d.steps.forEach((st, t) => st.forEach((_, m) => stepOf.push({ t, m })));
  let G = Float64Array.from(cot.dS);
  for (let u = N; u >= 0; u--) {
    for (const { t, r } of readsAt[u]) {
      const q = d.readouts[t][r].q;
      const dy = cot.dy[t][r];
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) G[i * V + j] += q[i] * dy[j];
      g.dq[t][r].set(readX(S[u], dy, K, V));
    }
    if (u === 0) break;
    const st = f.steps[u - 1];
    const { t, m } = stepOf[u - 1];
    st.kk.forEach((k, p) => {
      g.dv[t][m][p].set(readY(G, k, K, V));
      g.dk[t][m][p].set(readX(G, st.vv[p], K, V));
    });
    const prev = S[u - 1];
    const a = st.u.map((uu) => readY(G, uu, K, V));
    st.u.forEach((_, e) => {
      g.du[t][m][e].set(readX(G, reads[u - 1][e], K, V));
      g.dw[t][m][e].set(readX(prev, a[e], K, V));
    });
    const next = new Float64Array(K * V);
    for (let i = 0; i < K; i++) {
      const dec = Math.exp(st.ld[i]);
      let acc = 0;
      for (let j = 0; j < V; j++) {
        acc += G[i * V + j] * dec * prev[i * V + j];
        next[i * V + j] = dec * G[i * V + j];
      }
      g.dld[t][m][i] = acc;
    }
    st.w.forEach((w, e) => { for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) next[i * V + j] += w[i] * a[e][j]; });
    G = next;
  }
  g.dS0.set(G);
  return g;
}

/** One micro-step of a chunk: log decay (length K), input pairs k v^T and low-rank pairs u (w^T S) (read before the step). */
export interface PassStep { ld: Float64Array; pairs: { k: Float64Array; v: Float64Array }[]; lowRank?: { u: Float64Array; w: Float64Array }[] }
/** A read of the state after `at` steps of the chunk: y = S^T q (over V) and/or x = S z (over K). */
export interface PassRead { at: number; q?: Float64Array; z?: Float64Array }

/**
 * One chunk of the core, in the chunked (matrix) form: the state is never formed per step. With G the
 * log decay accumulated from the chunk start and ratio(a, b) = exp(G_a - G_b) (a >= b, per key), the
 * low-rank reads r_e = S_{s_e - 1}^T w_e first, by forward substitution (the UT transform, row by row):
 *   r_e = (w_e exp(G_{s_e - 1}))^T S0 + sum_{e': s_e' < s_e} (w_e . ratio(s_e - 1, s_e') u_e') r_e'
 *                                     + sum_{f: s_f < s_e} (w_e . ratio(s_e - 1, s_f) k_f) v_f;
 * then every low-rank pair is an input pair (u_e, r_e) and
 *   y = (q exp(G_at))^T S0 + sum_{f: s_f <= at} (q . ratio(at, s_f) k_f) v_f
 *   x = exp(G_at) (S0 z)   + sum_{f: s_f <= at} ratio(at, s_f) k_f (v_f . z)
 *   S' = exp(G_n) S0       + sum_f ratio(n, s_f) k_f v_f^T.
 * `r` holds the low-rank reads per step and pair.
 */
export function chunkPass(K: number, V: number, S0: Float64Array, steps: PassStep[], reads: PassRead[]): { y: (Float64Array | undefined)[]; x: (Float64Array | undefined)[]; S: Float64Array; r: Float64Array[][] } {
  const n = steps.length;
  const G: Float64Array[] = [new Float64Array(K)];
  for (let s = 0; s < n; s++) G.push(G[s].map((g, i) => g + steps[s].ld[i]));
  const ev: { s: number; k: Float64Array; v: Float64Array }[] = [];
  const r: Float64Array[][] = [];
  steps.forEach((st, s0) => {
    const s = s0 + 1;
    // the low-rank reads of step s see every pair of the steps before it (ev holds exactly those)
    const rs = (st.lowRank ?? []).map(({ w }) => {
      const out = new Float64Array(V);
      for (let i = 0; i < K; i++) {
        const c = w[i] * Math.exp(G[s - 1][i]);
        if (c !== 0) for (let j = 0; j < V; j++) out[j] += c * S0[i * V + j];
      }
      for (const e of ev) {
        let a = 0;
        for (let i = 0; i < K; i++) a += w[i] * Math.exp(G[s - 1][i] - G[e.s][i]) * e.k[i];
        if (a !== 0) for (let j = 0; j < V; j++) out[j] += a * e.v[j];
      }
      return out;
    });
    r.push(rs);
    (st.lowRank ?? []).forEach(({ u }, e) => ev.push({ s, k: u, v: rs[e] }));
    st.pairs.forEach((p) => ev.push({ s, ...p }));
  });
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
  return { y, x, S, r };
}

/** The micro-steps of tokens [t0, t1) of a slice as chunkPass steps. */
function passSteps(d: SliceData, t0: number, t1: number): PassStep[] {
  return d.steps.slice(t0, t1).flat().map((m) => ({ ld: m.ld, pairs: m.kk.map((k, p) => ({ k, v: m.vv[p] })), lowRank: m.u.map((u, e) => ({ u, w: m.w[e] })) }));
}

/** The forward core over tokens [t0, t1) of a slice from state S as one chunkPass; `read` gives each readout's q and/or z (results in token, then readout order). */
export function forwardChunk(d: SliceData, t0: number, t1: number, S: Float64Array, read: (t: number, r: number) => Omit<PassRead, "at">): ReturnType<typeof chunkPass> {
  const reads: PassRead[] = [];
  let base = 0;
  for (let t = t0; t < t1; t++) {
    d.readouts[t].forEach((ro, r) => reads.push({ at: base + ro.at, ...read(t, r) }));
    base += d.steps[t].length;
  }
  return chunkPass(d.K, d.V, S, passSteps(d, t0, t1), reads);
}

/** The chunked backward over chunks of `chunk` tokens. */
export function coreBackwardChunked(d: SliceData, S0: Float64Array, cot: CoreCotangents, chunk: number): CoreGrads {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`chunk ${chunk}: a chunk is a positive number of tokens`);
  const { K, V } = d;
  const T = d.steps.length;
  const g = emptyGrads(d);
  const chunks: { t0: number; t1: number; S0: Float64Array; r: Float64Array[][] }[] = [];
  // forward direction: each chunk's start state, the low-rank reads r, and dq = S_u dy (reads contracting the value axis)
  let S: Float64Array = Float64Array.from(S0);
  for (let t0 = 0; t0 < T; t0 += chunk) {
    const t1 = Math.min(T, t0 + chunk);
    const res = forwardChunk(d, t0, t1, S, (t, r) => ({ z: cot.dy[t][r] }));
    chunks.push({ t0, t1, S0: S, r: res.r });
    let e = 0;
    for (let t = t0; t < t1; t++) d.readouts[t].forEach((_, r) => g.dq[t][r].set(res.x[e++]!));
    S = res.S;
  }
  const SN = S;
  const lowRank = d.steps.some((st) => st.some((m) => m.u.length > 0));
  // reverse direction: the adjoint core, chunk by chunk from the last. Per chunk with n micro-steps,
  // n + 1 reversed steps: reversed step k carries the readouts at local state u = n - k, and (k >= 1) the
  // decay and the swapped low-rank pairs of forward step n - k + 1, which take G_{n-k+1} to G_{n-k}
  // (none for k = 0: Gin is already at S_n).
  let Gin: Float64Array = Float64Array.from(cot.dS);
  for (let c = chunks.length - 1; c >= 0; c--) {
    const { t0, t1, r: rf } = chunks[c];
    const fwd = d.steps.slice(t0, t1).flat();
    const n = fwd.length;
    const loc: { t: number; m: number }[] = [];
    for (let t = t0; t < t1; t++) d.steps[t].forEach((_, m) => loc.push({ t, m }));
    const steps: PassStep[] = Array.from({ length: n + 1 }, (_, k) => k === 0
      ? { ld: new Float64Array(K), pairs: [] }
      : { ld: fwd[n - k].ld, pairs: [], lowRank: fwd[n - k].u.map((u, e) => ({ u: fwd[n - k].w[e], w: u })) });
    let base = 0;
    for (let t = t0; t < t1; t++) {
      d.readouts[t].forEach((ro, r) => steps[n - (base + ro.at)].pairs.push({ k: ro.q, v: cot.dy[t][r] }));
      base += d.steps[t].length;
    }
    // G_s is the reversed state after reversed step n - s, i.e. after n + 1 - s steps: read dv with query k,
    // dk with z = v, du with z = r (the forward's low-rank read)
    const reads: PassRead[] = [];
    const who: { s: number; p: number; lr: boolean }[] = [];
    fwd.forEach((m, s0) => {
      m.kk.forEach((k, p) => { reads.push({ at: n - s0, q: k, z: m.vv[p] }); who.push({ s: s0, p, lr: false }); });
      m.u.forEach((_, e) => { reads.push({ at: n - s0, z: rf[s0][e] }); who.push({ s: s0, p: e, lr: true }); });
    });
    const res = chunkPass(K, V, Gin, steps, reads);
    who.forEach(({ s, p, lr }, e) => {
      const { t, m } = loc[s];
      if (lr) g.du[t][m][p].set(res.x[e]!);
      else {
        g.dv[t][m][p].set(res.y[e]!);
        g.dk[t][m][p].set(res.x[e]!);
      }
    });
    // the chunk's forward again from its stored start state: dw = S_{s-1} a, with a = G_s^T u the low-rank
    // reads of reversed step n - s0 (forward step s0 + 1): queries from the adjoint
    if (lowRank) {
      const xr: PassRead[] = [];
      const at: { s: number; e: number }[] = [];
      fwd.forEach((m, s0) => m.u.forEach((_, e) => { xr.push({ at: s0, z: res.r[n - s0][e] }); at.push({ s: s0, e }); }));
      const fw = chunkPass(K, V, chunks[c].S0, passSteps(d, t0, t1), xr);
      at.forEach(({ s, e }, i) => { const { t, m } = loc[s]; g.dw[t][m][e].set(fw.x[i]!); });
    }
    Gin = res.S;
  }
  g.dS0.set(Gin);
  decayAdjoint(d, g, cot.dS, SN);
  return g;
}
