/**
 * The chunked backward in float64: gradients of a model through its matrix form (matrix-form.ts),
 *
 *     prep (stateless)  ->  core (chunked)  ->  post (stateless),
 *
 * differentiated piece by piece in reverse: the backward of post and of prep are derived by the
 * reverse-mode machinery (backward.ts) on their IR models (stateless, so each is a pointwise model
 * over (batch, time)), and the core's backward is itself chunked (matrix-core-backward.ts: the adjoint
 * is the same core run in reverse time, plus readouts contracting the value axis and a reverse
 * cumulative sum for the log decays). Same results as gradients() (run.ts), which steps the whole
 * model's adjoint recurrence one token at a time; this is the algebra the GPU chunked backward kernels
 * implement.
 *
 * Scope: every core, low-rank terms included (the delta-rule family: the adjoint's low-rank pairs are the
 * forward's with u and w swapped), value columns and a max-plus stabiliser (mLSTM) too; `chunkedBackwardRefusal`
 * says why the low-rank chain (chunked-chain-lowrank.ts) does not cover a model.
 */
import * as I from "../ir/types.ts";
import { interpret, product, shapeSizes, stridesOf, type RunInputs } from "../ir/interpret.ts";
import { matrixForm, STAB_PREV, STAB_T, type MatrixForm } from "../forms/matrix-form.ts";
import { expansion, type SliceData } from "../forms/matrix-core.ts";
import { coreBackwardChunked, coreBackwardSequential, forwardChunk, type CoreGrads } from "../forms/matrix-core-backward.ts";
import { runStabiliser, stateInit, type StabiliserRun } from "../forms/stabiliser.ts";
import { buildBackward, type Backward } from "./backward.ts";
import type { Cotangents, Gradients } from "./run.ts";
import { headOffset, sumPieces as sumTogether } from "../../runtime/chunked-backward.ts";
import { frameBar, stabBackward, type StabBars } from "../../runtime/chunked-backward-stab.ts";

export interface ChunkedGradOptions {
  /** Tokens per chunk (default 16). */
  chunk?: number;
  /** The core's backward schedule: "chunked" (default) or "sequential" (the definition, for tests). */
  schedule?: "chunked" | "sequential";
  /**
   * A stabilised form's m_t adjoint from the core: "frame" (default where stabFrameOnly holds: -<y, dy>, frameBar in
   * runtime/chunked-backward-stab.ts) or "pseudo" (prep's adjoints of the pseudo inputs m_t, m_{t-1}: any form).
   */
  stabRoute?: "frame" | "pseudo";
}

/**
 * Whether the stabiliser m enters the core only as its frame, so that frameBar gives the core's part of m_t's
 * adjoint: one update per token without low-rank terms, readouts after it, and no prep output but the decay and
 * the input keys reads m (the form's extraction checked those: log decay ld0 + m_{t-1} - m_t, input scale li0 - m_t).
 */
export function stabFrameOnly(form: MatrixForm): boolean {
  if (!form.stabiliser || form.lowRank || form.steps.length !== 1 || form.steps[0].loop || form.readouts.some((r) => r.after !== 1)) return false;
  const reads = new Set<string>([STAB_T, STAB_PREV]);
  const walk = (body: I.Stmt[]) => {
    for (const st of body) {
      if (st.k === "for") { walk(st.body); continue; }
      let r = false;
      I.walkExpr(st.expr, (x) => { if (x.k === "read" && reads.has(x.tensor)) r = true; });
      if (r) reads.add(st.target);
    }
  };
  walk(form.prep.body);
  const step = form.steps[0];
  return ![...step.inputs.flatMap((p) => [p.v, ...(p.cols ?? [])]), ...form.readouts.map((r) => r.q)].some((n) => reads.has(n));
}

/**
 * Why the low-rank chunked backward chain (chunked-chain-lowrank.ts: WebGPU, CUDA, torch) does not cover this
 * model's form, or undefined. `chunkedGradients` (float64) covers every matrix form, stabilised ones too, and so does
 * the transposed-core chain (chunked-chain.ts) for forms without low-rank terms.
 */
export function chunkedBackwardRefusal(form: MatrixForm): string | undefined {
  if (form.stabiliser) return `the low-rank chunked backward chain does not cover stabilised forms (${form.stabiliser.state} is a max-plus stabiliser of ${form.state}; the float64 chunkedGradients does)`;
  if (form.columns.length) return `the low-rank chunked backward chain does not cover value columns (${form.columns.join(", ")}; the float64 chunkedGradients does)`;
  return undefined;
}

/**
 * Per (batch, head) slice: the core's inputs, in the layout of the prep outputs. The core's value axis is the
 * state's V0 values followed by the NC value columns (MatrixForm.columns: states [heads..., key]).
 */
export class Slicer {
  readonly B: number;
  readonly T: number;
  readonly K: number;
  /** The core's value extent: V0 + NC. */
  readonly V: number;
  readonly V0: number;
  readonly NC: number;
  readonly nHeads: number;
  readonly nS: number;
  /** Elements of one batch row of a column state. */
  readonly nCol: number;
  private readonly sShape: number[];
  private readonly sStrides: number[];
  private readonly exp: number[];
  private readonly at: number[];
  private readonly sizes = new Map<string, number>();

  constructor(private readonly model: I.Model, private readonly form: MatrixForm, private readonly dims: Record<string, number>, B: number, T: number) {
    this.B = B;
    this.T = T;
    const Sdecl = model.tensors.find((t) => t.name === form.state)!;
    const sShape = (this.sShape = shapeSizes(Sdecl.shape, dims));
    this.sStrides = stridesOf(sShape);
    this.nHeads = product(form.heads.map((p) => sShape[p]));
    this.K = sShape[form.key];
    this.V0 = sShape[form.value];
    this.NC = form.columns.length;
    this.V = this.V0 + this.NC;
    this.nS = product(sShape);
    this.nCol = this.nS / this.V0;
    this.exp = expansion(form, dims);
    this.at = form.readouts.map((r) => this.exp.slice(0, r.after).reduce((a, b) => a + b, 0));
  }

  private tokenSize(name: string): number {
    let n = this.sizes.get(name);
    if (n === undefined) this.sizes.set(name, (n = product(shapeSizes(this.form.prep.tensors.find((t) => t.name === name)!.shape, this.dims))));
    return n;
  }

  /** Offset of the vector of prep output `name` at (b, t, loop n, head h) of length len. */
  off(name: string, b: number, t: number, n: number, h: number, len: number): number {
    return (b * this.T + t) * this.tokenSize(name) + (n * this.nHeads + h) * len;
  }

  /** Offset of S[heads of h, 0, 0] within one batch row of the state. */
  headOff(h: number): number {
    return headOffset(this.form.heads, this.sShape, this.sStrides, h);
  }

  /** S[b, heads of h] with its value columns as K x V row-major, from / to the model's state layout (cols[c]: column state c). */
  getState(all: Float64Array, cols: Float64Array[], b: number, h: number): Float64Array {
    const { K, V, V0 } = this, ho = this.headOff(h), s = this.sStrides;
    const out = new Float64Array(K * V);
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < V0; j++) out[i * V + j] = all[b * this.nS + ho + i * s[this.form.key] + j * s[this.form.value]];
      cols.forEach((c, k) => (out[i * V + V0 + k] = c[b * this.nCol + h * K + i]));
    }
    return out;
  }

  setState(all: Float64Array, cols: Float64Array[], b: number, h: number, S: Float64Array): void {
    const { K, V, V0 } = this, ho = this.headOff(h), s = this.sStrides;
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < V0; j++) all[b * this.nS + ho + i * s[this.form.key] + j * s[this.form.value]] = S[i * V + j];
      cols.forEach((c, k) => (c[b * this.nCol + h * K + i] = S[i * V + V0 + k]));
    }
  }

  slice(prep: Record<string, Float64Array>, b: number, h: number): SliceData {
    const { K, V, V0 } = this;
    const vec = (name: string, t: number, n: number, len: number) => {
      const o = this.off(name, b, t, n, h, len);
      return prep[name].subarray(o, o + len);
    };
    const d: SliceData = { K, V, steps: [], readouts: [] };
    for (let t = 0; t < this.T; t++) {
      const steps: SliceData["steps"][number] = [];
      this.form.steps.forEach((st, s) => {
        for (let n = 0; n < this.exp[s]; n++) {
          const ld = !st.ld ? new Float64Array(K) : st.ld.perKey ? vec(st.ld.name, t, n, K) : new Float64Array(K).fill(vec(st.ld.name, t, n, 1)[0]);
          steps.push({
            ld,
            u: st.lowRank.map((p) => vec(p.u, t, n, K)),
            w: st.lowRank.map((p) => vec(p.w, t, n, K)),
            kk: st.inputs.map((p) => vec(p.k, t, n, K)),
            vv: st.inputs.map((p) => {
              if (!this.NC) return vec(p.v, t, n, V);
              const vv = new Float64Array(V);
              vv.set(vec(p.v, t, n, V0));
              (p.cols ?? []).forEach((c, k) => (vv[V0 + k] = vec(c, t, n, 1)[0]));
              return vv;
            }),
          });
        }
      });
      d.steps.push(steps);
      d.readouts.push(this.form.readouts.map((r, i) => ({ q: vec(r.q, t, 0, K), at: this.at[i] })));
    }
    return d;
  }

  /** Scatter a slice's core gradients into the prep outputs' adjoints (layout of the prep outputs). */
  scatter(bars: Record<string, Float64Array>, g: CoreGrads, b: number, h: number): void {
    const { K, V0 } = this;
    const addAt = (name: string, t: number, n: number, len: number, x: Float64Array | number) => {
      const o = this.off(name, b, t, n, h, len);
      const arr = bars[name];
      if (typeof x === "number") arr[o] += x;
      else for (let i = 0; i < len; i++) arr[o + i] += x[i];
    };
    for (let t = 0; t < this.T; t++) {
      let m = 0;
      this.form.steps.forEach((st, s) => {
        for (let n = 0; n < this.exp[s]; n++, m++) {
          st.inputs.forEach((p, pi) => {
            addAt(p.k, t, n, K, g.dk[t][m][pi]);
            const dv = g.dv[t][m][pi];
            addAt(p.v, t, n, V0, dv);
            (p.cols ?? []).forEach((c, k) => addAt(c, t, n, 1, dv[V0 + k]));
          });
          st.lowRank.forEach((p, e) => {
            addAt(p.u, t, n, K, g.du[t][m][e]);
            addAt(p.w, t, n, K, g.dw[t][m][e]);
          });
          if (st.ld) addAt(st.ld.name, t, n, st.ld.perKey ? K : 1, st.ld.perKey ? g.dld[t][m] : g.dld[t][m].reduce((a, x) => a + x, 0));
        }
      });
      this.form.readouts.forEach((r, i) => addAt(r.q, t, 0, K, g.dq[t][i]));
    }
  }
}

/**
 * Gradients through the matrix form with the chunked core backward; same result as gradients(model, run, cot).
 *
 * A stabilised form (mLSTM: m_t = max(a_t + m_{t-1}, b_t), the states stored as exp(-m) times unscaled ones)
 * is differentiated through the stabiliser pass's pseudo inputs m_t (STAB_T: prep's input scales and decays,
 * post's readout) and m_{t-1} (STAB_PREV: prep's decays). With those held fixed the core is the plain
 * scalar-decay recurrence in the stabilised frame, so its backward is the chunked core's; their adjoints
 * then run down the max-plus recurrence in reverse time,
 *
 *     mbar_t = STAB_T__bar_t + STAB_PREV__bar_{t+1} + [a-branch at t+1] mbar_{t+1}      (mbar_{T-1} += dm_T)
 *     a__bar_t = [a-branch at t] mbar_t,   b__bar_t = [b-branch at t] mbar_t,   m_{-1}__bar = [a-branch at 0] mbar_0 + <dS^, S^>
 *
 * (the branch a where a_t + m_{t-1} >= b_t, the IR's max derivative), and the stabiliser's prep backward takes
 * a__bar, b__bar to the inputs. The first token's STAB_PREV is the free m^ (stabiliser.ts): the loss does not
 * depend on it (S^ = exp(m_{-1} - m^) S_{-1} and the first decay exp(ld0 + m^ - m_0) cancel it), so its two
 * adjoints (prep's STAB_PREV__bar_0 and -<dS^, S^> through the scale) sum to 0 and both are left out; the
 * scale's m_{-1} term <dS^, S^> stays. Nothing here is exponentiated beyond what the forward is (decays and
 * input scales <= 1; the scale is 0 for m_{-1} = -inf), and the selections are 0 / 1. Where m enters the core only
 * as its frame (stabFrameOnly: mLSTM), the core's part of m_t's adjoint is taken as -sum_r <y_r, dy_r> (and
 * -<dS_N, S_N> at the last token; frameBar) instead of prep's STAB_T and STAB_PREV adjoints: equal in exact
 * arithmetic, without their cancellation (`stabRoute: "pseudo"` keeps prep's).
 */
export function chunkedGradients(model: I.Model, run: RunInputs, cot: Cotangents, opts: ChunkedGradOptions = {}): Gradients {
  const mf = matrixForm(model);
  if (!mf.ok) throw new Error(`${model.name} has no chunked form: ${mf.reason}`);
  const form = mf.form;
  const chunk = opts.chunk ?? 16;
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const sl = new Slicer(model, form, dims, B, T);
  const { K, V, V0, NC, nHeads } = sl;
  const stab = form.stabiliser ? runStabiliser(model, form, run, dims) : undefined;
  const inputs: Record<string, Float64Array> = { ...run.inputs, ...stab?.inputs };
  const prep = interpret(form.prep, { ...run, dims, inputs, initialState: undefined }).outputs;
  const S0all = stateInit(model, form.state, run, dims);
  const C0all = form.columns.map((c) => stateInit(model, c, run, dims));
  const dSall = cot.finalState?.[form.state] ?? new Float64Array(S0all.length);
  const dCall = form.columns.map((c, k) => cot.finalState?.[c] ?? new Float64Array(C0all[k].length));
  /** The core's initial state of slice (b, h): the given one scaled by the stabiliser's factor (stabiliser.ts). */
  const S0of = (b: number, h: number) => {
    const S0 = sl.getState(S0all, C0all, b, h);
    if (stab) { const f = Math.exp(stab.logScale[b * nHeads + h]); for (let i = 0; i < S0.length; i++) S0[i] *= f; }
    return S0;
  };

  // forward: the readouts y and the value columns' readouts (post's inputs), chunk by chunk
  const ys = form.readouts.map(() => new Float64Array(B * T * nHeads * V0));
  const yc = form.readouts.map(() => form.columns.map(() => new Float64Array(B * T * nHeads)));
  const slices: SliceData[] = [];
  const finals: Float64Array[] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const d = sl.slice(prep, b, h);
      slices.push(d);
      let S = S0of(b, h);
      for (let t0 = 0; t0 < T; t0 += chunk) {
        const t1 = Math.min(T, t0 + chunk);
        const res = forwardChunk(d, t0, t1, S, (t, r) => ({ q: d.readouts[t][r].q }));
        let e = 0;
        for (let t = t0; t < t1; t++)
          form.readouts.forEach((_, r) => {
            const y = res.y[e++]!, o = (b * T + t) * nHeads + h;
            ys[r].set(y.subarray(0, V0), o * V0);
            for (let c = 0; c < NC; c++) yc[r][c][o] = y[V0 + c];
          });
        S = res.S;
      }
      finals.push(S);
    }

  // post's backward: dL/dy and post's direct contributions to the inputs (m_t too) and params
  const postIn: Record<string, Float64Array> = { ...inputs };
  form.readouts.forEach((r, i) => {
    postIn[r.y] = ys[i];
    r.cols.forEach((name, c) => (postIn[name] = yc[i][c]));
  });
  const postBw = buildBackward(form.post, dims, { paramAdjoints: "output" });
  for (const o of I.tensorsOfKind(form.post, "output")) postIn[postBw.outputBar[o.name]] = cot.outputs?.[o.name] ?? new Float64Array(B * T * product(shapeSizes(o.shape, dims)));
  const postG = interpret(postBw.model, { ...run, dims, inputs: postIn, initialState: undefined }).outputs;
  const postBar = (name: string) => postG[postBw.inputBar[name]];
  /** Readout i's y with its column reads at (b, t, h) = o. */
  const ys0 = (i: number, o: number) => {
    const y = new Float64Array(V);
    y.set(ys[i].subarray(o * V0, o * V0 + V0));
    for (let c = 0; c < NC; c++) y[V0 + c] = yc[i][c][o];
    return y;
  };

  // the core's backward per slice, into the adjoints of prep's outputs
  const prepBars: Record<string, Float64Array> = {};
  for (const o of I.tensorsOfKind(form.prep, "output")) prepBars[o.name] = new Float64Array(prep[o.name].length);
  const dS0all = new Float64Array(S0all.length);
  const dC0all = C0all.map((c) => new Float64Array(c.length));
  /** <dS^, S^> per (batch row, head): the adjoint of the stabiliser's initial state through the scale. */
  const scaleBar = new Float64Array(B * nHeads);
  const frame = stab && (opts.stabRoute ?? "frame") === "frame" && stabFrameOnly(form);
  /** With `frame`: the core's part of m_t's adjoint, -sum_r <y_r, dy_r> (- <dS_N, S_N> at the last token). */
  const frameBars = frame ? new Float64Array(B * T * nHeads) : undefined;
  let k = 0;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const d = slices[k++];
      const dy = d.readouts.map((_, t) => form.readouts.map((r) => {
        const o = (b * T + t) * nHeads + h;
        const ybar = postBar(r.y);
        if (!NC) return ybar.subarray(o * V, o * V + V);
        const full = new Float64Array(V);
        full.set(ybar.subarray(o * V0, o * V0 + V0));
        r.cols.forEach((name, c) => (full[V0 + c] = postBar(name)?.[o] ?? 0));
        return full;
      }));
      const dS = sl.getState(dSall, dCall, b, h);
      if (frameBars) {
        const ys = form.readouts.map((r, i) => { const y = new Float64Array(T * V); for (let t = 0; t < T; t++) { const o = (b * T + t) * nHeads + h; y.set(ys0(i, o), t * V); } return y; });
        const fb = frameBar(ys, ys.map((_, i) => { const d = new Float64Array(T * V); for (let t = 0; t < T; t++) d.set(dy[t][i], t * V); return d; }), finals[k - 1], dS, 1, T, 1, K, V);
        for (let t = 0; t < T; t++) frameBars[(b * T + t) * nHeads + h] = fb[t];
      }
      const S0 = S0of(b, h);
      const g = opts.schedule === "sequential" ? coreBackwardSequential(d, S0, { dy, dS }) : coreBackwardChunked(d, S0, { dy, dS }, chunk);
      sl.scatter(prepBars, g, b, h);
      if (stab) {
        const f = Math.exp(stab.logScale[b * nHeads + h]);
        let dot = 0;
        for (let i = 0; i < S0.length; i++) { dot += g.dS0[i] * S0[i]; g.dS0[i] *= f; }
        scaleBar[b * nHeads + h] = dot;
      }
      sl.setState(dS0all, dC0all, b, h, g.dS0);
    }

  // prep's backward: the adjoints of the inputs and params it reads (and of m_t, m_{t-1})
  const prepBw = buildBackward(form.prep, dims, { paramAdjoints: "output" });
  const prepIn: Record<string, Float64Array> = { ...inputs };
  for (const o of I.tensorsOfKind(form.prep, "output")) prepIn[prepBw.outputBar[o.name]] = prepBars[o.name];
  const prepG = interpret(prepBw.model, { ...run, dims, inputs: prepIn, initialState: undefined }).outputs;

  const pieces: Parameters<typeof sumPieces>[4] = [{ out: postG, names: postBw }, { out: prepG, names: prepBw }];
  const initial: Record<string, Float64Array> = { [form.state]: dS0all };
  form.columns.forEach((c, i) => (initial[c] = dC0all[i]));
  if (stab) {
    const st = form.stabiliser!;
    const m = stabiliserBackward(model, form, run, dims, stab, {
      mT: frameBars ? [postBar(STAB_T), frameBars] : [postBar(STAB_T), prepG[prepBw.inputBar[STAB_T]]],
      mPrev: frameBars ? undefined : prepG[prepBw.inputBar[STAB_PREV]],
      final: cot.finalState?.[st.state],
      scale: scaleBar,
    });
    pieces.push(m.piece);
    initial[st.state] = m.initial;
  }
  // sum the pieces' contributions; params over batch and time
  return sumPieces(model, dims, B, T, pieces, initial);
}

/**
 * The max-plus stabiliser's reverse pass (see chunkedGradients; runtime/chunked-backward-stab.ts, shared with the
 * chain): the adjoint of m_t from its pseudo inputs' adjoints, split between a and b by the branch the max took,
 * then the stabiliser's prep backward.
 */
function stabiliserBackward(model: I.Model, form: MatrixForm, run: RunInputs, dims: Record<string, number>, stab: StabiliserRun,
  bars: StabBars): { piece: Parameters<typeof sumPieces>[4][number]; initial: Float64Array } {
  const st = form.stabiliser!;
  const { batch: B, time: T } = run;
  const ab = interpret(st.prep, { ...run, dims, initialState: undefined }).outputs;
  const nH = bars.scale.length / B;
  const m0 = stateInit(model, st.state, run, dims);
  const fwd = { mt: stab.inputs[STAB_T], mp: stab.inputs[STAB_PREV], logScale: stab.logScale, final: stab.final };
  const { aBar, bBar, initial } = stabBackward(ab[st.a], ab[st.b], m0, fwd, bars, B, T, nH);
  const bw = buildBackward(st.prep, dims, { paramAdjoints: "output" });
  const inputs: Record<string, Float64Array> = { ...run.inputs, [bw.outputBar[st.a]]: aBar, [bw.outputBar[st.b]]: bBar };
  const out = interpret(bw.model, { ...run, dims, inputs, initialState: undefined }).outputs;
  return { piece: { out, names: bw }, initial };
}

/**
 * The model's gradients from the backward runs of its stateless pieces (prep, post): each piece's per-step
 * input adjoints added, its per-step param adjoints summed over batch and time.
 */
export function sumPieces(model: I.Model, dims: Record<string, number>, B: number, T: number, pieces: { out: Record<string, Float64Array>; names: Pick<Backward, "inputBar" | "paramBar"> }[], initialState: Record<string, Float64Array>): Gradients {
  const sized = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(model, kind).map((t) => ({ name: t.name, size: product(shapeSizes(t.shape, dims)) }));
  return sumTogether({ batch: B, time: T, inputs: sized("input"), params: sized("param"), alloc: (n) => new Float64Array(n) }, pieces, initialState) as Gradients;
}
