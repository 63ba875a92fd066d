/**
 * Float64 reference of the chunked kernels' algorithm on rows (chunk-rows.ts), step for step as the
 * GPU kernels do it, so the algebra the kernels rely on is checked against the interpreter on the CPU:
 *
 *  per chunk of F row slots (C = F / RTpad tokens, RTpad = rows per token rounded up to a power of two;
 *  padding rows and tokens past T are zero), in 16-row sub-blocks:
 *   - decays: scalar -> G (log space, from the chunk start) and exp(G_a - G_b), a >= b;
 *             per key -> products of d_t = exp(ld_t) over token ranges (a ratio exp(G_a - G_b) built as a
 *             product, never a quotient): prefix from the chunk start (Q~, W~), suffix to its end (X~),
 *             and for sub-block pairs J < I the boundary split
 *             exp(G_a - G_b) = exp(G_a - G_ref(I)) * exp(G_ref(I) - G_b) (both <= 1 when ld <= 0);
 *             inside a diagonal sub-block the ratio is accumulated pair by pair;
 *   - A  [f,f'] = w_f . D x_f'   for rows f' before f's micro-step (strict),
 *     Aq [t,f'] = q_t . D x_f'   for rows f' the readout sees;
 *   - T = (I - diag(beta) A)^-1 by blocks (forward substitution in 16x16 diagonal blocks,
 *     T_IJ = T_II sum_{K=J}^{I-1} N_IK T_KJ below them);
 *   - M = T diag(beta) W~, U0 = T alpha V (S0-independent: the split kernels store these);
 *   - walk: Z = U0 + M S0, y = Q~ S0 + Aq Z, S' = exp(G_n) S0 + X~^T Z.
 * A stabilised form runs the stabiliser pass first (stabiliser.ts: the kernels' first launch), its initial
 * state scaled by exp(m_{-1} - m^); value columns are extra columns of V, Z and S.
 */
import * as I from "../ir/types.ts";
import { interpret, product, type RunInputs, type RunResult } from "../ir/interpret.ts";
import { expandRows, microSteps, type ChunkRows, type RowPart } from "./chunk-rows.ts";
import { runStabiliser } from "./stabiliser.ts";
import { MatrixState } from "./matrix-run.ts";

export const SUB = 16;

/** A stateless model whose outputs are the row parts, so the interpreter evaluates them. */
export function rowPartsModel(cr: ChunkRows): { model: I.Model; names: Map<RowPart, string> } {
  const m = cr.form.prep;
  const tensors: I.TensorDecl[] = m.tensors.filter((t) => t.kind === "input" || t.kind === "param");
  const body: I.Stmt[] = [];
  const names = new Map<RowPart, string>();
  const add = (p: RowPart | undefined) => {
    if (!p || names.has(p)) return;
    const name = `part${names.size}`;
    names.set(p, name);
    tensors.push({ name, kind: "output", shape: p.vars.map((v) => v.extent), span: m.span });
    body.push({ k: "output", target: name, vars: p.vars, expr: p.expr, span: m.span });
  };
  for (const r of cr.rows) [r.x, r.w, r.v, r.alpha, r.beta, ...(r.cols ?? [])].forEach(add);
  add(cr.q);
  cr.ld.forEach(add);
  return { model: { ...m, name: `${cr.form.prep.name}__rows`, tensors, body }, names };
}

const pow2ceil = (n: number) => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)));

export interface ChunkRowsOptions { F?: number }

export function runChunkRows(model: I.Model, cr: ChunkRows, run: RunInputs, opts: ChunkRowsOptions = {}): RunResult {
  const form = cr.form;
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const { model: pm, names } = rowPartsModel(cr);
  const stab = form.stabiliser ? runStabiliser(model, form, { ...run, dims }, dims) : undefined;
  const parts = interpret(pm, { ...run, dims, inputs: { ...run.inputs, ...stab?.inputs }, initialState: undefined }).outputs;
  const st = new MatrixState(model, form, run, dims, stab);
  const { K, V0, V, nHeads: nH } = st;
  const rowsOfToken = expandRows(cr, dims);
  const RT = rowsOfToken.length;
  const RTp = pow2ceil(RT);
  const F = opts.F ?? 64;
  if (F % RTp !== 0) throw new Error(`chunk rows: ${F} row slots per chunk do not hold ${RTp} rows per token`);
  const C = F / RTp;
  const SB = Math.min(SUB, F);
  const ms = microSteps(cr, dims);
  const partSize = (p: RowPart) => product(p.vars.map((v) => I.extentSize(v.extent, dims)));
  /** Value of part p at (b, t, loop n, head h, axis index a). */
  const val = (p: RowPart | undefined, b: number, t: number, n: number, h: number, a: number, axisLen: number): number => {
    if (!p) return 0;
    const data = parts[names.get(p)!];
    const hasAxis = p.vars.length - (p.loop !== undefined ? 1 : 0) > form.heads.length;
    const perTok = partSize(p);
    const inner = (n * nH + h) * (hasAxis ? axisLen : 1) + (hasAxis ? a : 0);
    return data[(b * T + t) * perTok + inner];
  };
  const ys = new Float64Array(B * T * nH * V0);
  const yc = form.columns.map(() => new Float64Array(B * T * nH));

  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      let S = st.load(b, h);

      for (let t0 = 0; t0 < T; t0 += C) {
        // ---- load the chunk's rows (zero for padding rows and tokens past T) ----
        const X = mat(F, K), W = mat(F, K), Vv = mat(F, V), Q = mat(C, K);
        const alpha = new Float64Array(F), beta = new Float64Array(F);
        const tokOf = (f: number) => Math.floor(f / RTp);
        const micro = new Int32Array(F).fill(-1);
        // decays: ldm[t][m] (scalar) or ldk[t][i] (per key, one micro-step)
        const ldm = Array.from({ length: C }, () => new Float64Array(ms.count));
        const ldk = mat(C, K);
        for (let tl = 0; tl < C; tl++) {
          const t = t0 + tl;
          if (t >= T) continue;
          for (let i = 0; i < K; i++) Q[tl][i] = val(cr.q, b, t, 0, h, i, K);
          cr.ld.forEach((p, s) => {
            if (!p) return;
            const ext = form.steps[s].loop ? I.extentSize(form.steps[s].loop!, dims) : 1;
            for (let n = 0; n < ext; n++) {
              if (cr.decay === "key") for (let i = 0; i < K; i++) ldk[tl][i] = val(p, b, t, n, h, i, K);
              else ldm[tl][ms.first[s] + n] = val(p, b, t, n, h, 0, 1);
            }
          });
          rowsOfToken.forEach(({ spec, n, micro: mi }, r) => {
            const f = tl * RTp + r;
            micro[f] = mi;
            for (let i = 0; i < K; i++) X[f][i] = val(spec.x, b, t, n, h, i, K);
            if (spec.w) {
              for (let i = 0; i < K; i++) W[f][i] = val(spec.w, b, t, n, h, i, K);
              beta[f] = spec.beta ? val(spec.beta, b, t, n, h, 0, 1) : 1;
            }
            if (spec.v) {
              alpha[f] = spec.alpha ? val(spec.alpha, b, t, n, h, 0, 1) : 1;
              for (let j = 0; j < V0; j++) Vv[f][j] = alpha[f] * val(spec.v, b, t, n, h, j, V0);
              spec.cols?.forEach((c, k) => (Vv[f][V0 + k] = alpha[f] * val(c, b, t, n, h, 0, 1)));
            }
          });
        }
        // visibility: row f' before row f's micro-step (A), or seen by the readout of token t (Aq)
        const seesRow = (f: number, f2: number) => micro[f] >= 0 && micro[f2] >= 0 && (tokOf(f2) < tokOf(f) || (tokOf(f2) === tokOf(f) && micro[f2] < micro[f]));
        const seesReadout = (t: number, f2: number) => micro[f2] >= 0 && (tokOf(f2) < t || (tokOf(f2) === t && micro[f2] < ms.readoutAt));

        const Xt = mat(F, K), Wt = mat(F, K), Qt = mat(C, K);
        const eGn = new Float64Array(K);
        const A = mat(F, F), Aq = mat(C, F);
        if (cr.decay === "key") {
          // d_t = exp(ld_t); every ratio is a product of d over a token range (one micro-step per token)
          const d = ldk.map((row) => row.map(Math.exp));
          const prodRange = (lo: number, hi: number, i: number) => { // prod_{lo < s <= hi} d_s
            let p = 1;
            for (let s = lo + 1; s <= hi; s++) p *= d[s][i];
            return p;
          };
          const qAt = (t: number) => (ms.readoutAt > 0 ? t : t - 1); // readout sees G after token t's step, or before it
          for (let i = 0; i < K; i++) {
            eGn[i] = prodRange(-1, C - 1, i);
            for (let t = 0; t < C; t++) Qt[t][i] = Q[t][i] * prodRange(-1, qAt(t), i);
            for (let f = 0; f < F; f++) {
              Xt[f][i] = X[f][i] * prodRange(tokOf(f), C - 1, i);
              Wt[f][i] = W[f][i] * prodRange(-1, tokOf(f) - 1, i);
            }
          }
          const NB = F / SB;
          const TB = SB / RTp; // tokens per sub-block
          for (let Ib = 0; Ib < NB; Ib++) {
            const tref = Ib * TB - 1; // G_ref(I) = G after the token before the sub-block
            // off-diagonal: left factor within the block, right factor from row f' up to the boundary
            for (let f = Ib * SB; f < (Ib + 1) * SB; f++)
              for (let f2 = 0; f2 < Ib * SB; f2++) {
                let a = 0;
                for (let i = 0; i < K; i++) a += W[f][i] * prodRange(tref, tokOf(f) - 1, i) * X[f2][i] * prodRange(tokOf(f2), tref, i);
                A[f][f2] = seesRow(f, f2) ? a : 0;
              }
            for (let t = Ib * TB; t < (Ib + 1) * TB; t++)
              for (let f2 = 0; f2 < Ib * SB; f2++) {
                let a = 0;
                for (let i = 0; i < K; i++) a += Q[t][i] * prodRange(tref, qAt(t), i) * X[f2][i] * prodRange(tokOf(f2), tref, i);
                Aq[t][f2] = seesReadout(t, f2) ? a : 0;
              }
            // diagonal sub-block: pairwise ratios
            for (let f = Ib * SB; f < (Ib + 1) * SB; f++)
              for (let f2 = Ib * SB; f2 < (Ib + 1) * SB; f2++) {
                if (!seesRow(f, f2)) continue;
                let a = 0;
                for (let i = 0; i < K; i++) a += W[f][i] * X[f2][i] * prodRange(tokOf(f2), tokOf(f) - 1, i);
                A[f][f2] = a;
              }
            for (let t = Ib * TB; t < (Ib + 1) * TB; t++)
              for (let f2 = Ib * SB; f2 < (Ib + 1) * SB; f2++) {
                if (!seesReadout(t, f2)) continue;
                let a = 0;
                for (let i = 0; i < K; i++) a += Q[t][i] * X[f2][i] * prodRange(tokOf(f2), qAt(t), i);
                Aq[t][f2] = a;
              }
          }
        } else {
          // scalar (or no) decay in log space from the chunk start: G per micro-step boundary
          const Gend = new Float64Array(C + 1); // Gend[t + 1] = G after token t
          for (let t = 0; t < C; t++) Gend[t + 1] = Gend[t] + ldm[t].reduce((a, x) => a + x, 0);
          const pre = (t: number, m: number) => Gend[t] + ldm[t].slice(0, m).reduce((a, x) => a + x, 0);
          const Gr = (f: number) => pre(tokOf(f), micro[f]);
          const Gw = (f: number) => pre(tokOf(f), micro[f] + 1);
          const Gq = (t: number) => pre(t, ms.readoutAt);
          const Gn = Gend[C];
          for (let i = 0; i < K; i++) eGn[i] = Math.exp(Gn);
          for (let f = 0; f < F; f++) {
            if (micro[f] < 0) continue;
            const ex = Math.exp(Gn - Gw(f)), ew = Math.exp(Gr(f));
            for (let i = 0; i < K; i++) { Xt[f][i] = X[f][i] * ex; Wt[f][i] = W[f][i] * ew; }
          }
          for (let t = 0; t < C; t++) {
            const e = Math.exp(Gq(t));
            for (let i = 0; i < K; i++) Qt[t][i] = Q[t][i] * e;
          }
          for (let f = 0; f < F; f++)
            for (let f2 = 0; f2 < F; f2++) if (seesRow(f, f2)) A[f][f2] = dot(W[f], X[f2]) * Math.exp(Gr(f) - Gw(f2));
          for (let t = 0; t < C; t++)
            for (let f2 = 0; f2 < F; f2++) if (seesReadout(t, f2)) Aq[t][f2] = dot(Q[t], X[f2]) * Math.exp(Gq(t) - Gw(f2));
        }
        // ---- T = (I - diag(beta) A)^-1 by 16x16 blocks ----
        const N = A.map((row, f) => row.map((a) => beta[f] * a));
        const Tm = blockInverse(N, SB);
        // ---- S0-independent products, then the walk ----
        const M = mat(F, K), U0 = mat(F, V);
        for (let f = 0; f < F; f++)
          for (let f2 = 0; f2 < F; f2++) {
            const c = Tm[f][f2];
            if (c === 0) continue;
            for (let i = 0; i < K; i++) M[f][i] += c * beta[f2] * Wt[f2][i];
            for (let j = 0; j < V; j++) U0[f][j] += c * Vv[f2][j];
          }
        const Z = mat(F, V);
        for (let f = 0; f < F; f++)
          for (let j = 0; j < V; j++) {
            let z = U0[f][j];
            for (let i = 0; i < K; i++) z += M[f][i] * S[i * V + j];
            Z[f][j] = z;
          }
        for (let t = 0; t < C && t0 + t < T; t++)
          for (let j = 0; j < V; j++) {
            let y = 0;
            for (let i = 0; i < K; i++) y += Qt[t][i] * S[i * V + j];
            for (let f = 0; f < F; f++) y += Aq[t][f] * Z[f][j];
            if (j < V0) ys[((b * T + t0 + t) * nH + h) * V0 + j] = y;
            else yc[j - V0][(b * T + t0 + t) * nH + h] = y;
          }
        const S1 = new Float64Array(K * V);
        for (let i = 0; i < K; i++)
          for (let j = 0; j < V; j++) {
            let s = eGn[i] * S[i * V + j];
            for (let f = 0; f < F; f++) s += Xt[f][i] * Z[f][j];
            S1[i * V + j] = s;
          }
        S = S1;
      }
      st.store(b, h, S);
    }
  return st.finish(run, dims, [ys], [yc]);
}

const mat = (r: number, c: number) => Array.from({ length: r }, () => new Float64Array(c));
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i], 0);

/** (I - N)^-1 for strictly lower-triangular N, by SB x SB blocks as the kernels do it. */
export function blockInverse(N: Float64Array[], SB: number): Float64Array[] {
  const F = N.length;
  const NB = F / SB;
  const T = mat(F, F);
  // diagonal blocks: forward substitution, T[a][:] = e_a + sum_{b<a} N[a][b] T[b][:]
  for (let Ib = 0; Ib < NB; Ib++) {
    const o = Ib * SB;
    for (let a = 0; a < SB; a++)
      for (let c = 0; c <= a; c++) {
        let v = a === c ? 1 : 0;
        for (let k = c; k < a; k++) v += N[o + a][o + k] * T[o + k][o + c];
        T[o + a][o + c] = v;
      }
  }
  // below: T_IJ = T_II * sum_{K=J}^{I-1} N_IK T_KJ, block rows in order
  for (let Ib = 1; Ib < NB; Ib++)
    for (let Jb = 0; Jb < Ib; Jb++) {
      const P = mat(SB, SB);
      for (let Kb = Jb; Kb < Ib; Kb++)
        for (let a = 0; a < SB; a++)
          for (let c = 0; c < SB; c++) {
            let v = 0;
            for (let k = 0; k < SB; k++) v += N[Ib * SB + a][Kb * SB + k] * T[Kb * SB + k][Jb * SB + c];
            P[a][c] += v;
          }
      for (let a = 0; a < SB; a++)
        for (let c = 0; c < SB; c++) {
          let v = 0;
          for (let k = 0; k < SB; k++) v += T[Ib * SB + a][Ib * SB + k] * P[k][c];
          T[Ib * SB + a][Jb * SB + c] = v;
        }
    }
  return T;
}
