/**
 * The token-aligned delta backward (runtime/torch/seqc_delta_bwd.py, LR_BWD "delta"; kernels delta-prep.ts,
 * delta-walk.ts, delta-adjoint.ts) in float64, for the kernels' emulation tests. Per token t and head (S [K, V]):
 *
 *   r_t = S_{t-1}^T w_t,   S_t = d_t S_{t-1} + u_t r_t^T + k_t v_t^T,   y_t = S_t^T q_t   (d_t = exp(ld_t))
 *
 * over chunks of C tokens aligned to t = 0 (slots past T: zero vectors, ld 0 — identity steps). Per chunk, G[a] the
 * log decays of slots 0..a summed (G[-1] = 0, G_C = G[C - 1]):
 *   Luu / Luk [a, f] = exp(G[a-1] - G[f]) (w_a . u_f / k_f), f < a;   Pu / Pk [a, f] = exp(G[a] - G[f]) (q_a . u_f / k_f), f <= a
 *   Wd_a = exp(G[a-1]) w_a, Qd_a = exp(G[a]) q_a, Ud_f = exp(G_C - G[f]) u_f, Kd_f = exp(G_C - G[f]) k_f, Tinv = (I - Luu)^-1
 * prep_fwd: M = Tinv Wd, X = Tinv (Luk V), BM = Kd^T V, NN = Ud, A = exp(G_C);  prep_bwd: M = Tinv^T Ud,
 * X = Tinv^T (Pu^T dY), BM = Qd^T dY, NN = Wd, A = exp(G_C); the walk: ZS[n] = Z, Y[n] = X + M Z, Z = A Z + BM + NN^T Y.
 * The adjoint: see `adjoint`. Checked against the token loop's autograd in float64 (test/delta-ref.test.ts).
 *
 * Layouts: per-token [B, T, H, w]; per-chunk [N, ...] with chunk n = (b H + h) nC + c; Z0 / ZF [B H, K, V].
 */

export interface DeltaShape { B: number; T: number; H: number; K: number; V: number; C: number }

export interface DeltaInputs { u: Float64Array; w: Float64Array; k: Float64Array; v: Float64Array; q: Float64Array; ld: Float64Array | null; S: Float64Array | null }

export const nChunks = (s: DeltaShape): number => Math.ceil(s.T / s.C);

/** One chunk's slot rows of a per-token tensor [B, T, H, w]: [C, w], zeros past T. */
export function chunkRows(x: Float64Array, s: DeltaShape, w: number, b: number, h: number, c: number): Float64Array {
  const out = new Float64Array(s.C * w);
  for (let a = 0; a < s.C; a++) {
    const t = c * s.C + a;
    if (t >= s.T) break;
    const o = ((b * s.T + t) * s.H + h) * w;
    for (let i = 0; i < w; i++) out[a * w + i] = x[o + i];
  }
  return out;
}

/** G[a] (a = 0..C-1) of one chunk: the log decays of its slots 0..a summed (zeros without a decay). */
export function chunkG(ld: Float64Array | null, s: DeltaShape, b: number, h: number, c: number): Float64Array {
  const G = new Float64Array(s.C);
  let acc = 0;
  for (let a = 0; a < s.C; a++) {
    const t = c * s.C + a;
    if (ld && t < s.T) acc += ld[(b * s.T + t) * s.H + h];
    G[a] = acc;
  }
  return G;
}

const Gm1 = (G: Float64Array, a: number): number => (a > 0 ? G[a - 1] : 0);

/** x [n, m] row-major times y [m, p]. */
export function mm(x: Float64Array, y: Float64Array, n: number, m: number, p: number): Float64Array {
  const o = new Float64Array(n * p);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
    const a = x[i * m + j];
    if (a !== 0) for (let l = 0; l < p; l++) o[i * p + l] += a * y[j * p + l];
  }
  return o;
}

export function transpose(x: Float64Array, n: number, m: number): Float64Array {
  const o = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) o[j * n + i] = x[i * m + j];
  return o;
}

/** Scores [C, C]: exp(G[a - shift] - G[f]) (x_a . y_f) for f < a (strict) or f <= a; x [C, m], y [C, m]. */
export function scores(x: Float64Array, y: Float64Array, G: Float64Array, C: number, m: number, strict: boolean): Float64Array {
  const o = new Float64Array(C * C);
  for (let a = 0; a < C; a++) for (let f = 0; f <= a; f++) {
    if (strict && f === a) continue;
    let d = 0;
    for (let i = 0; i < m; i++) d += x[a * m + i] * y[f * m + i];
    o[a * C + f] = Math.exp((strict ? Gm1(G, a) : G[a]) - G[f]) * d;
  }
  return o;
}

/** (I - L)^-1 for L [C, C] strictly lower triangular (forward substitution). */
export function unitLowerInverse(L: Float64Array, C: number): Float64Array {
  const X = new Float64Array(C * C);
  for (let j = 0; j < C; j++) {
    X[j * C + j] = 1;
    for (let i = j + 1; i < C; i++) {
      let acc = 0;
      for (let l = j; l < i; l++) acc += L[i * C + l] * X[l * C + j];
      X[i * C + j] = acc;
    }
  }
  return X;
}

/** Rows scaled: x [C, m] times exp(e(a)) per row a. */
const scaleRows = (x: Float64Array, C: number, m: number, e: (a: number) => number): Float64Array => x.map((val, i) => val * Math.exp(e(Math.floor(i / m))));

export interface ChunkPrep { TI: Float64Array; M: Float64Array; X: Float64Array; BM: Float64Array; NN: Float64Array; A: number }

/** prep_fwd of one chunk. */
export function prepFwdChunk(inp: DeltaInputs, s: DeltaShape, b: number, h: number, c: number): ChunkPrep {
  const { C, K, V } = s;
  const G = chunkG(inp.ld, s, b, h, c), GC = G[C - 1];
  const U = chunkRows(inp.u, s, K, b, h, c), W = chunkRows(inp.w, s, K, b, h, c), Kc = chunkRows(inp.k, s, K, b, h, c), Vc = chunkRows(inp.v, s, V, b, h, c);
  const TI = unitLowerInverse(scores(W, U, G, C, K, true), C);
  const Wd = scaleRows(W, C, K, (a) => Gm1(G, a));
  const Kd = scaleRows(Kc, C, K, (a) => GC - G[a]);
  return {
    TI, M: mm(TI, Wd, C, C, K), X: mm(TI, mm(scores(W, Kc, G, C, K, true), Vc, C, C, V), C, C, V),
    BM: mm(transpose(Kd, C, K), Vc, K, C, V), NN: scaleRows(U, C, K, (a) => GC - G[a]), A: Math.exp(GC),
  };
}

/** prep_bwd of one chunk (TI from prep_fwd); dY per token [B, T, H, V]. */
export function prepBwdChunk(inp: DeltaInputs, dY: Float64Array, TI: Float64Array, s: DeltaShape, b: number, h: number, c: number): Omit<ChunkPrep, "TI"> {
  const { C, K, V } = s;
  const G = chunkG(inp.ld, s, b, h, c), GC = G[C - 1];
  const U = chunkRows(inp.u, s, K, b, h, c), W = chunkRows(inp.w, s, K, b, h, c), Q = chunkRows(inp.q, s, K, b, h, c), DY = chunkRows(dY, s, V, b, h, c);
  const TIt = transpose(TI, C, C);
  const Ud = scaleRows(U, C, K, (a) => GC - G[a]);
  const Qd = scaleRows(Q, C, K, (a) => G[a]);
  const PuT = transpose(scores(Q, U, G, C, K, false), C, C);
  return { M: mm(TIt, Ud, C, C, K), X: mm(TIt, mm(PuT, DY, C, C, V), C, C, V), BM: mm(transpose(Qd, C, K), DY, K, C, V), NN: scaleRows(W, C, K, (a) => Gm1(G, a)), A: Math.exp(GC) };
}

/** Every chunk's prep in the kernels' layouts: TI [N, C, C], M / NN [N, C, K], X [N, C, V], BM [N, K, V], A [N]. */
export function prepAll(s: DeltaShape, one: (b: number, h: number, c: number) => Omit<ChunkPrep, "TI"> & { TI?: Float64Array }) {
  const { B, H, C, K, V } = s, nC = nChunks(s), N = B * H * nC;
  const out = { TI: new Float64Array(N * C * C), M: new Float64Array(N * C * K), X: new Float64Array(N * C * V), BM: new Float64Array(N * K * V), NN: new Float64Array(N * C * K), A: new Float64Array(N) };
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let c = 0; c < nC; c++) {
    const n = (b * H + h) * nC + c, p = one(b, h, c);
    if (p.TI) out.TI.set(p.TI, n * C * C);
    out.M.set(p.M, n * C * K); out.X.set(p.X, n * C * V); out.BM.set(p.BM, n * K * V); out.NN.set(p.NN, n * C * K); out.A[n] = p.A;
  }
  return out;
}

/** The walk over every (b, h)'s chunks (forward or reversed): ZS [N, K, V], Y [N, C, V], ZF [B H, K, V]. */
export function walk(p: { M: Float64Array; X: Float64Array; BM: Float64Array; NN: Float64Array; A: Float64Array }, Z0: Float64Array | null, BH: number, nC: number, C: number, K: number, V: number, reverse: boolean) {
  const ZS = new Float64Array(BH * nC * K * V), Y = new Float64Array(BH * nC * C * V), ZF = new Float64Array(BH * K * V);
  for (let bh = 0; bh < BH; bh++) {
    let Z = Z0 ? Z0.slice(bh * K * V, (bh + 1) * K * V) : new Float64Array(K * V);
    for (let i = 0; i < nC; i++) {
      const c = reverse ? nC - 1 - i : i, n = bh * nC + c;
      ZS.set(Z, n * K * V);
      const MZ = mm(p.M.subarray(n * C * K, (n + 1) * C * K), Z, C, K, V);
      const Yc = MZ.map((x, j) => x + p.X[n * C * V + j]);
      Y.set(Yc, n * C * V);
      const NY = mm(transpose(p.NN.subarray(n * C * K, (n + 1) * C * K), C, K), Yc, K, C, V);
      Z = Z.map((z, j) => p.A[n] * z + p.BM[n * K * V + j] + NY[j]);
    }
    ZF.set(Z, bh * K * V);
  }
  return { ZS, Y, ZF };
}

export interface DeltaGrads { dq: Float64Array; du: Float64Array; dw: Float64Array; dk: Float64Array; dv: Float64Array; dld: Float64Array | null }

/** The adjoint kernel's outputs per token from R, S0 (= the forward walk's Y, ZS), SF (its ZF), LE, DR (the backward
 * walk's ZS, Y), any values: the formulas of tmp/s13/delta-spec.md. */
export function adjoint(inp: DeltaInputs, dY: Float64Array, R: Float64Array, S0: Float64Array, SF: Float64Array, LE: Float64Array, DR: Float64Array, s: DeltaShape): DeltaGrads {
  const { B, T, H, C, K, V } = s, nC = nChunks(s);
  const g: DeltaGrads = { dq: new Float64Array(B * T * H * K), du: new Float64Array(B * T * H * K), dw: new Float64Array(B * T * H * K), dk: new Float64Array(B * T * H * K), dv: new Float64Array(B * T * H * V), dld: inp.ld ? new Float64Array(B * T * H) : null };
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let c = 0; c < nC; c++) {
    const n = (b * H + h) * nC + c, G = chunkG(inp.ld, s, b, h, c), GC = G[C - 1];
    const rows = (x: Float64Array, w: number) => chunkRows(x, s, w, b, h, c);
    const Q = rows(inp.q, K), U = rows(inp.u, K), W = rows(inp.w, K), Kc = rows(inp.k, K), Vc = rows(inp.v, V), DY = rows(dY, V);
    const Rc = R.slice(n * C * V, (n + 1) * C * V), DRc = DR.slice(n * C * V, (n + 1) * C * V);
    const S0c = S0.slice(n * K * V, (n + 1) * K * V), LEc = LE.slice(n * K * V, (n + 1) * K * V);
    const Pk = scores(Q, Kc, G, C, K, false), Luk = scores(W, Kc, G, C, K, true);
    const Ay = scores(DY, Vc, G, C, V, false), Ar = scores(DRc, Vc, G, C, V, true);
    const By = scores(DY, Rc, G, C, V, false), Br = scores(DRc, Rc, G, C, V, true);
    const tail = (x: Float64Array) => scaleRows(x, C, K, (a) => GC - G[a]);
    const add = (...xs: Float64Array[]) => xs.reduce((acc, x) => acc.map((y, i) => y + x[i]));
    const LEt = transpose(LEc, K, V);
    const dv = add(mm(transpose(Pk, C, C), DY, C, C, V), mm(transpose(Luk, C, C), DRc, C, C, V), scaleRows(mm(Kc, LEc, C, K, V), C, V, (a) => GC - G[a]));
    const dk = add(mm(transpose(Ay, C, C), Q, C, C, K), mm(transpose(Ar, C, C), W, C, C, K), tail(mm(Vc, LEt, C, V, K)));
    const du = add(mm(transpose(By, C, C), Q, C, C, K), mm(transpose(Br, C, C), W, C, C, K), tail(mm(Rc, LEt, C, V, K)));
    const S0t = transpose(S0c, K, V);
    const dq = add(scaleRows(mm(DY, S0t, C, V, K), C, K, (a) => G[a]), mm(By, U, C, C, K), mm(Ay, Kc, C, C, K));
    const dw = add(scaleRows(mm(DRc, S0t, C, V, K), C, K, (a) => Gm1(G, a)), mm(Br, U, C, C, K), mm(Ar, Kc, C, C, K));
    let dldc: Float64Array | null = null;
    if (g.dld) {
      const last = c === nC - 1;
      const SC = last ? SF.subarray((b * H + h) * K * V, (b * H + h + 1) * K * V) : S0.subarray((n + 1) * K * V, (n + 2) * K * V);
      let aC = 0;
      for (let i = 0; i < K * V; i++) aC += LEc[i] * SC[i];
      const dot = (x: Float64Array, y: Float64Array, a: number) => { let d = 0; for (let i = 0; i < K; i++) d += x[a * K + i] * y[a * K + i]; return d; };
      dldc = new Float64Array(C);
      let acc = 0;
      for (let a = C - 1; a >= 0; a--) {
        const wdw = dot(W, dw, a);
        acc += dot(Q, dq, a) + wdw - dot(U, du, a) - dot(Kc, dk, a);
        dldc[a] = aC + acc - wdw;
      }
    }
    for (let a = 0; a < C; a++) {
      const t = c * C + a;
      if (t >= T) break;
      const o = (b * T + t) * H + h;
      g.dq.set(dq.subarray(a * K, (a + 1) * K), o * K); g.du.set(du.subarray(a * K, (a + 1) * K), o * K);
      g.dw.set(dw.subarray(a * K, (a + 1) * K), o * K); g.dk.set(dk.subarray(a * K, (a + 1) * K), o * K);
      g.dv.set(dv.subarray(a * V, (a + 1) * V), o * V);
      if (g.dld && dldc) g.dld[o] = dldc[a];
    }
  }
  return g;
}

/** The whole backward: prep_fwd, the forward walk, prep_bwd, the backward walk, the adjoint. dS: the final state's
 * cotangent [B H, K, V] or null. Returns the per-token gradients and dS_init [B H, K, V]. */
export function deltaBackward(inp: DeltaInputs, dY: Float64Array, dS: Float64Array | null, s: DeltaShape): DeltaGrads & { dS: Float64Array } {
  const nC = nChunks(s), BH = s.B * s.H;
  const pf = prepAll(s, (b, h, c) => prepFwdChunk(inp, s, b, h, c));
  const fw = walk(pf, inp.S, BH, nC, s.C, s.K, s.V, false);
  const pb = prepAll(s, (b, h, c) => prepBwdChunk(inp, dY, pf.TI.slice(((b * s.H + h) * nC + c) * s.C * s.C, ((b * s.H + h) * nC + c + 1) * s.C * s.C), s, b, h, c));
  const bw = walk(pb, dS, BH, nC, s.C, s.K, s.V, true);
  return { ...adjoint(inp, dY, fw.Y, fw.ZS, fw.ZF, bw.ZS, bw.Y, s), dS: bw.ZF };
}

/** The token loop (forward only): outputs y [B, T, H, V] and the final state [B H, K, V]. */
export function deltaForward(inp: DeltaInputs, s: DeltaShape): { y: Float64Array; SF: Float64Array } {
  const { B, T, H, K, V } = s;
  const y = new Float64Array(B * T * H * V), SF = new Float64Array(B * H * K * V);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const S = inp.S ? inp.S.slice((b * H + h) * K * V, (b * H + h + 1) * K * V) : new Float64Array(K * V);
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * H + h, d = inp.ld ? Math.exp(inp.ld[o]) : 1;
      const r = new Float64Array(V);
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) r[j] += S[i * V + j] * inp.w[o * K + i];
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) S[i * V + j] = d * S[i * V + j] + inp.u[o * K + i] * r[j] + inp.k[o * K + i] * inp.v[o * V + j];
      for (let j = 0; j < V; j++) { let acc = 0; for (let i = 0; i < K; i++) acc += S[i * V + j] * inp.q[o * K + i]; y[o * V + j] = acc; }
    }
    SF.set(S, (b * H + h) * K * V);
  }
  return { y, SF };
}
