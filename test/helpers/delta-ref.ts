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
 * A per-key decay (`perKey`, RWKV-7: ld [B, T, H, K], d_t = diag(exp(ld_t))): G [C, K] per key, every exp above per key
 * (the scores sum x_a,i y_f,i exp(G[a(-1),i] - G[f,i]) over the keys; Wd, Qd, Ud, Kd scale elementwise; A [N, K] scales Z's
 * rows); test/delta-ref.test.ts checks them against central differences.
 *
 * Layouts: per-token [B, T, H, w]; per-chunk [N, ...] with chunk n = (b H + h) nC + c; Z0 / ZF [B H, K, V].
 */

export interface DeltaShape { B: number; T: number; H: number; K: number; V: number; C: number }

export interface DeltaInputs { u: Float64Array; w: Float64Array; k: Float64Array; v: Float64Array; q: Float64Array; ld: Float64Array | null; S: Float64Array | null; perKey?: boolean }

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

/** G[a] (a = 0..C-1) of one chunk: the log decays of its slots 0..a summed (zeros without a decay); [C, LW] (LW = K
 * with a per-key decay, else 1). */
export function chunkG(ld: Float64Array | null, s: DeltaShape, b: number, h: number, c: number, LW = 1): Float64Array {
  const G = new Float64Array(s.C * LW), acc = new Float64Array(LW);
  for (let a = 0; a < s.C; a++) {
    const t = c * s.C + a;
    for (let i = 0; i < LW; i++) {
      if (ld && t < s.T) acc[i] += ld[((b * s.T + t) * s.H + h) * LW + i];
      G[a * LW + i] = acc[i];
    }
  }
  return G;
}

/** G[a - 1] (0 before the chunk), key i (LW = 1: i ignored). */
const Gm1 = (G: Float64Array, a: number, i = 0, LW = 1): number => (a > 0 ? G[(a - 1) * LW + (LW > 1 ? i : 0)] : 0);
const Gat = (G: Float64Array, a: number, i = 0, LW = 1): number => G[a * LW + (LW > 1 ? i : 0)];
const lwOf = (inp: DeltaInputs, s: DeltaShape): number => (inp.perKey ? s.K : 1);

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

/** Scores [C, C]: exp(G[a - shift] - G[f]) (x_a . y_f) for f < a (strict, shift 1) or f <= a; x [C, m], y [C, m];
 * LW = m: a per-key G [C, m], sum_i x_a,i y_f,i exp(G[a - shift, i] - G[f, i]). */
export function scores(x: Float64Array, y: Float64Array, G: Float64Array, C: number, m: number, strict: boolean, LW = 1): Float64Array {
  const o = new Float64Array(C * C);
  for (let a = 0; a < C; a++) for (let f = 0; f <= a; f++) {
    if (strict && f === a) continue;
    let d = 0;
    if (LW > 1) {
      for (let i = 0; i < m; i++) d += x[a * m + i] * y[f * m + i] * Math.exp((strict ? Gm1(G, a, i, LW) : Gat(G, a, i, LW)) - Gat(G, f, i, LW));
      o[a * C + f] = d;
      continue;
    }
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

/** Rows scaled: x [C, m] times exp(e(a, i)) at row a, column i. */
const scaleRows = (x: Float64Array, C: number, m: number, e: (a: number, i: number) => number): Float64Array => x.map((val, j) => val * Math.exp(e(Math.floor(j / m), j % m)));

/** A: exp(G_C); AK (a per-key decay): exp(G_C) per key [K] (then A is key 0's). */
export interface ChunkPrep { TI: Float64Array; M: Float64Array; X: Float64Array; BM: Float64Array; NN: Float64Array; A: number; AK?: Float64Array }

/** prep_fwd of one chunk. */
export function prepFwdChunk(inp: DeltaInputs, s: DeltaShape, b: number, h: number, c: number): ChunkPrep {
  const { C, K, V } = s, LW = lwOf(inp, s);
  const G = chunkG(inp.ld, s, b, h, c, LW), GC = (i: number) => Gat(G, C - 1, i, LW);
  const U = chunkRows(inp.u, s, K, b, h, c), W = chunkRows(inp.w, s, K, b, h, c), Kc = chunkRows(inp.k, s, K, b, h, c), Vc = chunkRows(inp.v, s, V, b, h, c);
  const TI = unitLowerInverse(scores(W, U, G, C, K, true, LW), C);
  const Wd = scaleRows(W, C, K, (a, i) => Gm1(G, a, i, LW));
  const tail = (a: number, i: number) => GC(i) - Gat(G, a, i, LW);
  const Kd = scaleRows(Kc, C, K, tail);
  return {
    TI, M: mm(TI, Wd, C, C, K), X: mm(TI, mm(scores(W, Kc, G, C, K, true, LW), Vc, C, C, V), C, C, V),
    BM: mm(transpose(Kd, C, K), Vc, K, C, V), NN: scaleRows(U, C, K, tail), A: Math.exp(GC(0)), ...(LW > 1 ? { AK: Float64Array.from({ length: K }, (_, i) => Math.exp(GC(i))) } : {}),
  };
}

/** prep_bwd of one chunk (TI from prep_fwd); dY per token [B, T, H, V]. */
export function prepBwdChunk(inp: DeltaInputs, dY: Float64Array, TI: Float64Array, s: DeltaShape, b: number, h: number, c: number): Omit<ChunkPrep, "TI"> {
  const { C, K, V } = s, LW = lwOf(inp, s);
  const G = chunkG(inp.ld, s, b, h, c, LW), GC = (i: number) => Gat(G, C - 1, i, LW);
  const U = chunkRows(inp.u, s, K, b, h, c), W = chunkRows(inp.w, s, K, b, h, c), Q = chunkRows(inp.q, s, K, b, h, c), DY = chunkRows(dY, s, V, b, h, c);
  const TIt = transpose(TI, C, C);
  const Ud = scaleRows(U, C, K, (a, i) => GC(i) - Gat(G, a, i, LW));
  const Qd = scaleRows(Q, C, K, (a, i) => Gat(G, a, i, LW));
  const PuT = transpose(scores(Q, U, G, C, K, false, LW), C, C);
  return {
    M: mm(TIt, Ud, C, C, K), X: mm(TIt, mm(PuT, DY, C, C, V), C, C, V), BM: mm(transpose(Qd, C, K), DY, K, C, V), NN: scaleRows(W, C, K, (a, i) => Gm1(G, a, i, LW)),
    A: Math.exp(GC(0)), ...(LW > 1 ? { AK: Float64Array.from({ length: K }, (_, i) => Math.exp(GC(i))) } : {}),
  };
}

/** Every chunk's prep in the kernels' layouts: TI [N, C, C], M / NN [N, C, K], X [N, C, V], BM [N, K, V], A [N] (perKey:
 * [N, K]). */
export function prepAll(s: DeltaShape, one: (b: number, h: number, c: number) => Omit<ChunkPrep, "TI"> & { TI?: Float64Array }, perKey = false) {
  const { B, H, C, K, V } = s, nC = nChunks(s), N = B * H * nC, LW = perKey ? K : 1;
  const out = { TI: new Float64Array(N * C * C), M: new Float64Array(N * C * K), X: new Float64Array(N * C * V), BM: new Float64Array(N * K * V), NN: new Float64Array(N * C * K), A: new Float64Array(N * LW) };
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let c = 0; c < nC; c++) {
    const n = (b * H + h) * nC + c, p = one(b, h, c);
    if (p.TI) out.TI.set(p.TI, n * C * C);
    out.M.set(p.M, n * C * K); out.X.set(p.X, n * C * V); out.BM.set(p.BM, n * K * V); out.NN.set(p.NN, n * C * K);
    if (perKey) out.A.set(p.AK!, n * K);
    else out.A[n] = p.A;
  }
  return out;
}

/** The walk over every (b, h)'s chunks (forward or reversed): ZS [N, K, V], Y [N, C, V], ZF [B H, K, V]. A [N] or, a
 * per-key decay, [N, K] (row i of Z scaled by A[n, i]). */
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
      const perKey = p.A.length === BH * nC * K && K > 1;
      Z = Z.map((z, j) => (perKey ? p.A[n * K + Math.floor(j / V)] : p.A[n]) * z + p.BM[n * K * V + j] + NY[j]);
    }
    ZF.set(Z, bh * K * V);
  }
  return { ZS, Y, ZF };
}

export interface DeltaGrads { dq: Float64Array; du: Float64Array; dw: Float64Array; dk: Float64Array; dv: Float64Array; dld: Float64Array | null }

/** One chunk's slot rows of the adjoint's outputs ([C, w]; dld [C, LW]) into the per-token gradients (tokens < T). */
function scatterChunk(g: DeltaGrads, x: DeltaGrads, s: DeltaShape, b: number, h: number, c: number, LW: number): void {
  const { T, H, C, K, V } = s;
  for (let a = 0; a < C; a++) {
    const t = c * C + a;
    if (t >= T) break;
    const o = (b * T + t) * H + h;
    for (const [name, w] of [["dq", K], ["du", K], ["dw", K], ["dk", K], ["dv", V]] as const) g[name].set(x[name].subarray(a * w, (a + 1) * w), o * w);
    if (g.dld && x.dld) g.dld.set(x.dld.subarray(a * LW, (a + 1) * LW), o * LW);
  }
}

/** The adjoint kernel's outputs per token from R, S0 (= the forward walk's Y, ZS), SF (its ZF), LE, DR (the backward
 * walk's ZS, Y), any values: the formulas of docs/delta-backward.md. */
export function adjoint(inp: DeltaInputs, dY: Float64Array, R: Float64Array, S0: Float64Array, SF: Float64Array, LE: Float64Array, DR: Float64Array, s: DeltaShape): DeltaGrads {
  const { B, T, H, C, K, V } = s, nC = nChunks(s);
  const g: DeltaGrads = { dq: new Float64Array(B * T * H * K), du: new Float64Array(B * T * H * K), dw: new Float64Array(B * T * H * K), dk: new Float64Array(B * T * H * K), dv: new Float64Array(B * T * H * V), dld: inp.ld ? new Float64Array(B * T * H) : null };
  if (inp.perKey) return adjointPerKey(inp, dY, R, S0, SF, LE, DR, s);
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
    scatterChunk(g, { dq, du, dw, dk, dv, dld: dldc }, s, b, h, c, 1);
  }
  return g;
}

/** `adjoint` with a per-key decay (ld [B, T, H, K]): every exp per key (docs/delta-backward.md, "A per-key decay"):
 *   dv_f = sum_a Pk[a,f] dy_a + sum_a Luk[a,f] DR_a + LE^T Kd_f                     (Pk, Luk: per-key scores)
 *   dk_f,i = sum_{a>=f} (dy_a . v_f) q_a,i e(G[a,i] - G[f,i]) + sum_{a>f} (DR_a . v_f) w_a,i e(G[a-1,i] - G[f,i]) + e(G_C,i - G[f,i]) (LE v_f)_i
 *   du_f,i: the same with r_f for v_f
 *   dq_a,i = e(G[a,i]) (S0 dy_a)_i + sum_{f<=a} e(G[a,i] - G[f,i]) ((r_f . dy_a) u_f,i + (v_f . dy_a) k_f,i)
 *   dw_a,i = e(G[a-1,i]) (S0 DR_a)_i + sum_{f<a} e(G[a-1,i] - G[f,i]) ((r_f . DR_a) u_f,i + (v_f . DR_a) k_f,i)
 *   dld_a,i = aC_i + sum_{s>=a} (q dq + w dw - u du - k dk)_s,i - (w dw)_a,i,  aC_i = sum_j LE_ij S_C,ij
 * dld [B, T, H, K]. */
function adjointPerKey(inp: DeltaInputs, dY: Float64Array, R: Float64Array, S0: Float64Array, SF: Float64Array, LE: Float64Array, DR: Float64Array, s: DeltaShape): DeltaGrads {
  const { B, T, H, C, K, V } = s, nC = nChunks(s);
  const g: DeltaGrads = { dq: new Float64Array(B * T * H * K), du: new Float64Array(B * T * H * K), dw: new Float64Array(B * T * H * K), dk: new Float64Array(B * T * H * K), dv: new Float64Array(B * T * H * V), dld: new Float64Array(B * T * H * K) };
  const dotV = (x: Float64Array, a: number, y: Float64Array, f: number) => { let d = 0; for (let j = 0; j < V; j++) d += x[a * V + j] * y[f * V + j]; return d; };
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let c = 0; c < nC; c++) {
    const n = (b * H + h) * nC + c, G = chunkG(inp.ld, s, b, h, c, K);
    const e = (x: number) => Math.exp(x);
    const g0 = (a: number, i: number) => Gm1(G, a, i, K), g1 = (a: number, i: number) => G[a * K + i], gC = (i: number) => G[(C - 1) * K + i];
    const rows = (x: Float64Array, w: number) => chunkRows(x, s, w, b, h, c);
    const Q = rows(inp.q, K), U = rows(inp.u, K), W = rows(inp.w, K), Kc = rows(inp.k, K), Vc = rows(inp.v, V), DY = rows(dY, V);
    const Rc = R.slice(n * C * V, (n + 1) * C * V), DRc = DR.slice(n * C * V, (n + 1) * C * V);
    const S0c = S0.slice(n * K * V, (n + 1) * K * V), LEc = LE.slice(n * K * V, (n + 1) * K * V);
    const Pk = scores(Q, Kc, G, C, K, false, K), Luk = scores(W, Kc, G, C, K, true, K);
    const dq = new Float64Array(C * K), du = new Float64Array(C * K), dw = new Float64Array(C * K), dk = new Float64Array(C * K), dv = new Float64Array(C * V);
    for (let f = 0; f < C; f++) {
      for (let j = 0; j < V; j++) {
        let acc = 0;
        for (let a = f; a < C; a++) acc += Pk[a * C + f] * DY[a * V + j] + (a > f ? Luk[a * C + f] * DRc[a * V + j] : 0);
        for (let i = 0; i < K; i++) acc += e(gC(i) - g1(f, i)) * Kc[f * K + i] * LEc[i * V + j];
        dv[f * V + j] = acc;
      }
      for (let a = f; a < C; a++) {
        const yv = dotV(DY, a, Vc, f), yr = dotV(DY, a, Rc, f), rv = a > f ? dotV(DRc, a, Vc, f) : 0, rr = a > f ? dotV(DRc, a, Rc, f) : 0;
        for (let i = 0; i < K; i++) {
          const e1 = e(g1(a, i) - g1(f, i)), e0 = a > f ? e(g0(a, i) - g1(f, i)) : 0;
          dk[f * K + i] += yv * Q[a * K + i] * e1 + rv * W[a * K + i] * e0;
          du[f * K + i] += yr * Q[a * K + i] * e1 + rr * W[a * K + i] * e0;
          dq[a * K + i] += e1 * (yr * U[f * K + i] + yv * Kc[f * K + i]);
          dw[a * K + i] += e0 * (rr * U[f * K + i] + rv * Kc[f * K + i]);
        }
      }
      for (let i = 0; i < K; i++) {
        let lv = 0, lr = 0, sy = 0, sr = 0;
        for (let j = 0; j < V; j++) { lv += LEc[i * V + j] * Vc[f * V + j]; lr += LEc[i * V + j] * Rc[f * V + j]; sy += S0c[i * V + j] * DY[f * V + j]; sr += S0c[i * V + j] * DRc[f * V + j]; }
        dk[f * K + i] += e(gC(i) - g1(f, i)) * lv;
        du[f * K + i] += e(gC(i) - g1(f, i)) * lr;
        dq[f * K + i] += e(g1(f, i)) * sy;
        dw[f * K + i] += e(g0(f, i)) * sr;
      }
    }
    const last = c === nC - 1;
    const SC = last ? SF.subarray((b * H + h) * K * V, (b * H + h + 1) * K * V) : S0.subarray((n + 1) * K * V, (n + 2) * K * V);
    const dldc = new Float64Array(C * K);
    for (let i = 0; i < K; i++) {
      let aC = 0;
      for (let j = 0; j < V; j++) aC += LEc[i * V + j] * SC[i * V + j];
      let acc = 0;
      for (let a = C - 1; a >= 0; a--) {
        const x = a * K + i, wdw = W[x] * dw[x];
        acc += Q[x] * dq[x] + wdw - U[x] * du[x] - Kc[x] * dk[x];
        dldc[x] = aC + acc - wdw;
      }
    }
    scatterChunk(g, { dq, du, dw, dk, dv, dld: dldc }, s, b, h, c, K);
  }
  return g;
}

/** The whole backward: prep_fwd, the forward walk, prep_bwd, the backward walk, the adjoint. dS: the final state's
 * cotangent [B H, K, V] or null. Returns the per-token gradients and dS_init [B H, K, V]. */
export function deltaBackward(inp: DeltaInputs, dY: Float64Array, dS: Float64Array | null, s: DeltaShape): DeltaGrads & { dS: Float64Array } {
  const nC = nChunks(s), BH = s.B * s.H;
  const pf = prepAll(s, (b, h, c) => prepFwdChunk(inp, s, b, h, c), inp.perKey);
  const fw = walk(pf, inp.S, BH, nC, s.C, s.K, s.V, false);
  const pb = prepAll(s, (b, h, c) => prepBwdChunk(inp, dY, pf.TI.slice(((b * s.H + h) * nC + c) * s.C * s.C, ((b * s.H + h) * nC + c + 1) * s.C * s.C), s, b, h, c), inp.perKey);
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
      const o = (b * T + t) * H + h, d = (i: number) => (inp.ld ? Math.exp(inp.perKey ? inp.ld[o * K + i] : inp.ld[o]) : 1);
      const r = new Float64Array(V);
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) r[j] += S[i * V + j] * inp.w[o * K + i];
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) S[i * V + j] = d(i) * S[i * V + j] + inp.u[o * K + i] * r[j] + inp.k[o * K + i] * inp.v[o * V + j];
      for (let j = 0; j < V; j++) { let acc = 0; for (let i = 0; i < K; i++) acc += S[i * V + j] * inp.q[o * K + i]; y[o * V + j] = acc; }
    }
    SF.set(S, (b * H + h) * K * V);
  }
  return { y, SF };
}
