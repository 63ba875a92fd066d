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
 * forward's with u and w swapped), without a stabiliser or value columns (mLSTM); `chunkedBackwardRefusal`
 * says why a model is not covered.
 */
import * as I from "../ir/types.ts";
import { interpret, product, shapeSizes, stridesOf, type RunInputs } from "../ir/interpret.ts";
import { matrixForm, type MatrixForm } from "../forms/matrix-form.ts";
import { expansion, type SliceData } from "../forms/matrix-core.ts";
import { coreBackwardChunked, coreBackwardSequential, forwardChunk, type CoreGrads } from "../forms/matrix-core-backward.ts";
import { stateInit } from "../forms/stabiliser.ts";
import { buildBackward, type Backward } from "./backward.ts";
import type { Cotangents, Gradients } from "./run.ts";
import { headOffset, sumPieces as sumTogether } from "../../runtime/chunked-backward.ts";

export interface ChunkedGradOptions {
  /** Tokens per chunk (default 16). */
  chunk?: number;
  /** The core's backward schedule: "chunked" (default) or "sequential" (the definition, for tests). */
  schedule?: "chunked" | "sequential";
}

/** Why the chunked backward does not cover this model's form, or undefined. */
export function chunkedBackwardRefusal(form: MatrixForm): string | undefined {
  if (form.stabiliser) return `the chunked backward does not cover stabilised forms yet (${form.stabiliser.state} is a max-plus stabiliser of ${form.state})`;
  if (form.columns.length) return `the chunked backward does not cover value columns yet (${form.columns.join(", ")})`;
  return undefined;
}

/** Per (batch, head) slice: the core's inputs, in the layout of the prep outputs (exported for chunked-chain.ts). */
export class Slicer {
  readonly B: number;
  readonly T: number;
  readonly K: number;
  readonly V: number;
  readonly nHeads: number;
  readonly nS: number;
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
    this.V = sShape[form.value];
    this.nS = product(sShape);
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

  /** S[b, heads of h] as K x V row-major, from / to the model's state layout. */
  getState(all: Float64Array, b: number, h: number): Float64Array {
    const { K, V } = this, ho = this.headOff(h), s = this.sStrides;
    const out = new Float64Array(K * V);
    for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) out[i * V + j] = all[b * this.nS + ho + i * s[this.form.key] + j * s[this.form.value]];
    return out;
  }

  setState(all: Float64Array, b: number, h: number, S: Float64Array): void {
    const { K, V } = this, ho = this.headOff(h), s = this.sStrides;
    for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) all[b * this.nS + ho + i * s[this.form.key] + j * s[this.form.value]] = S[i * V + j];
  }

  slice(prep: Record<string, Float64Array>, b: number, h: number): SliceData {
    const { K, V } = this;
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
            vv: st.inputs.map((p) => vec(p.v, t, n, V)),
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
    const { K, V } = this;
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
            addAt(p.v, t, n, V, g.dv[t][m][pi]);
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

/** Gradients through the matrix form with the chunked core backward; same result as gradients(model, run, cot). */
export function chunkedGradients(model: I.Model, run: RunInputs, cot: Cotangents, opts: ChunkedGradOptions = {}): Gradients {
  const mf = matrixForm(model);
  if (!mf.ok) throw new Error(`${model.name} has no chunked form: ${mf.reason}`);
  const form = mf.form;
  const why = chunkedBackwardRefusal(form);
  if (why) throw new Error(`${model.name}: ${why}`);
  const chunk = opts.chunk ?? 16;
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const sl = new Slicer(model, form, dims, B, T);
  const { K, V, nHeads } = sl;
  const prep = interpret(form.prep, { ...run, dims, initialState: undefined }).outputs;
  const S0all = stateInit(model, form.state, run, dims);
  const dSall = cot.finalState?.[form.state];

  // forward: the readouts y (post's inputs), chunk by chunk
  const ys = form.readouts.map(() => new Float64Array(B * T * nHeads * V));
  const slices: SliceData[] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const d = sl.slice(prep, b, h);
      slices.push(d);
      let S = sl.getState(S0all, b, h);
      for (let t0 = 0; t0 < T; t0 += chunk) {
        const t1 = Math.min(T, t0 + chunk);
        const res = forwardChunk(d, t0, t1, S, (t, r) => ({ q: d.readouts[t][r].q }));
        let e = 0;
        for (let t = t0; t < t1; t++) form.readouts.forEach((_, r) => ys[r].set(res.y[e++]!, ((b * T + t) * nHeads + h) * V));
        S = res.S;
      }
    }

  // post's backward: dL/dy and post's direct contributions to the inputs and params
  const postIn: Record<string, Float64Array> = { ...run.inputs };
  form.readouts.forEach((r, i) => (postIn[r.y] = ys[i]));
  const postBw = buildBackward(form.post, dims, { paramAdjoints: "output" });
  for (const o of I.tensorsOfKind(form.post, "output")) postIn[postBw.outputBar[o.name]] = cot.outputs?.[o.name] ?? new Float64Array(B * T * product(shapeSizes(o.shape, dims)));
  const postG = interpret(postBw.model, { ...run, dims, inputs: postIn, initialState: undefined }).outputs;

  // the core's backward per slice, into the adjoints of prep's outputs
  const prepBars: Record<string, Float64Array> = {};
  for (const o of I.tensorsOfKind(form.prep, "output")) prepBars[o.name] = new Float64Array(prep[o.name].length);
  const dS0all = new Float64Array(S0all.length);
  let k = 0;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const d = slices[k++];
      const dy = d.readouts.map((_, t) => form.readouts.map((r) => {
        const o = ((b * T + t) * nHeads + h) * V;
        return postG[postBw.inputBar[r.y]].subarray(o, o + V);
      }));
      const dS = dSall ? sl.getState(dSall, b, h) : new Float64Array(K * V);
      const S0 = sl.getState(S0all, b, h);
      const g = opts.schedule === "sequential" ? coreBackwardSequential(d, S0, { dy, dS }) : coreBackwardChunked(d, S0, { dy, dS }, chunk);
      sl.scatter(prepBars, g, b, h);
      sl.setState(dS0all, b, h, g.dS0);
    }

  // prep's backward: the adjoints of the inputs and params it reads
  const prepBw = buildBackward(form.prep, dims, { paramAdjoints: "output" });
  const prepIn: Record<string, Float64Array> = { ...run.inputs };
  for (const o of I.tensorsOfKind(form.prep, "output")) prepIn[prepBw.outputBar[o.name]] = prepBars[o.name];
  const prepG = interpret(prepBw.model, { ...run, dims, inputs: prepIn, initialState: undefined }).outputs;

  // sum the two pointwise models' contributions; params over batch and time
  return sumPieces(model, dims, B, T, [{ out: postG, names: postBw }, { out: prepG, names: prepBw }], { [form.state]: dS0all });
}

/**
 * The model's gradients from the backward runs of its stateless pieces (prep, post): each piece's per-step
 * input adjoints added, its per-step param adjoints summed over batch and time.
 */
export function sumPieces(model: I.Model, dims: Record<string, number>, B: number, T: number, pieces: { out: Record<string, Float64Array>; names: Pick<Backward, "inputBar" | "paramBar"> }[], initialState: Record<string, Float64Array>): Gradients {
  const sized = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(model, kind).map((t) => ({ name: t.name, size: product(shapeSizes(t.shape, dims)) }));
  return sumTogether({ batch: B, time: T, inputs: sized("input"), params: sized("param"), alloc: (n) => new Float64Array(n) }, pieces, initialState) as Gradients;
}
