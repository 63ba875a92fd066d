/**
 * Run a model through its matrix form: prep (interpreter) -> core (float64 reference, sequential
 * or chunked) -> post (interpreter). Same inputs and results as `interpret`, so every schedule of
 * the core can be checked against the reference interpreter.
 */
import type { Model } from "../ir/types.ts";
import { interpret, product, shapeSizes, stridesOf, type RunInputs, type RunResult } from "../ir/interpret.ts";
import type { MatrixForm } from "./matrix-form.ts";
import { coreChunked, coreSequential, expansion, type SliceData } from "./matrix-core.ts";
import { runStabiliser, stateInit, type StabiliserRun } from "./stabiliser.ts";
import { headOffset } from "../../runtime/chunked-backward.ts";

export interface MatrixRunOptions { schedule: "sequential" | "chunked"; chunk?: number }

/**
 * A matrix form's state and value columns per (batch row, head) slice, K x (V + columns) row-major (a
 * column state is [heads..., key]: an extra value column): `load` reads the initial states (scaled by the
 * stabiliser's factor), `store` writes the final ones, `finish` runs post on the readouts (ys[r] [B, T, heads, V],
 * yc[r][c] [B, T, heads]) and gives the outputs and final states (the stabiliser's too).
 */
export class MatrixState {
  readonly K: number;
  readonly V0: number;
  readonly NC: number;
  readonly V: number;
  readonly nHeads: number;
  private readonly sShape: number[];
  private readonly sStrides: number[];
  private readonly nS: number;
  private readonly nCol: number;
  private readonly initS: Float64Array;
  private readonly initC: Float64Array[];
  private readonly finalS: Float64Array;
  private readonly finalC: Float64Array[];

  constructor(model: Model, private readonly form: MatrixForm, run: RunInputs, dims: Record<string, number>, private readonly stab: StabiliserRun | undefined) {
    const sShape = (this.sShape = shapeSizes(model.tensors.find((t) => t.name === form.state)!.shape, dims));
    this.sStrides = stridesOf(sShape);
    this.nHeads = product(form.heads.map((p) => sShape[p]));
    this.K = sShape[form.key];
    this.V0 = sShape[form.value];
    this.NC = form.columns.length;
    this.V = this.V0 + this.NC;
    this.nS = product(sShape);
    this.nCol = this.nS / this.V0;
    this.initS = stateInit(model, form.state, { ...run, dims }, dims);
    this.initC = form.columns.map((c) => stateInit(model, c, { ...run, dims }, dims));
    this.finalS = new Float64Array(run.batch * this.nS);
    this.finalC = form.columns.map(() => new Float64Array(run.batch * this.nCol));
  }

  /** Offset of S[b, heads of h, i, j] in the model's state layout. */
  private at(b: number, h: number, i: number, j: number): number {
    return b * this.nS + headOffset(this.form.heads, this.sShape, this.sStrides, h) + i * this.sStrides[this.form.key] + j * this.sStrides[this.form.value];
  }

  load(b: number, h: number): Float64Array {
    const { K, V, V0, NC } = this;
    const S0 = new Float64Array(K * V);
    const scale = this.stab ? Math.exp(this.stab.logScale[b * this.nHeads + h]) : 1;
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < V0; j++) S0[i * V + j] = scale * this.initS[this.at(b, h, i, j)];
      for (let c = 0; c < NC; c++) S0[i * V + V0 + c] = scale * this.initC[c][b * this.nCol + h * K + i];
    }
    return S0;
  }

  store(b: number, h: number, S: Float64Array): void {
    const { K, V, V0, NC } = this;
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < V0; j++) this.finalS[this.at(b, h, i, j)] = S[i * V + j];
      for (let c = 0; c < NC; c++) this.finalC[c][b * this.nCol + h * K + i] = S[i * V + V0 + c];
    }
  }

  finish(run: RunInputs, dims: Record<string, number>, ys: Float64Array[], yc: Float64Array[][]): RunResult {
    const postInputs: Record<string, Float64Array> = { ...run.inputs, ...this.stab?.inputs };
    this.form.readouts.forEach((r, i) => {
      postInputs[r.y] = ys[i];
      r.cols.forEach((name, c) => (postInputs[name] = yc[i][c]));
    });
    const post = interpret(this.form.post, { ...run, dims, inputs: postInputs, initialState: undefined });
    const finalState: Record<string, Float64Array> = { [this.form.state]: this.finalS };
    this.form.columns.forEach((c, k) => (finalState[c] = this.finalC[k]));
    if (this.stab) finalState[this.form.stabiliser!.state] = this.stab.final;
    return { outputs: post.outputs, finalState };
  }
}

export function runMatrixForm(model: Model, form: MatrixForm, run: RunInputs, opts: MatrixRunOptions): RunResult {
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const stab = form.stabiliser ? runStabiliser(model, form, run, dims) : undefined;
  const prep = interpret(form.prep, { ...run, dims, inputs: { ...run.inputs, ...stab?.inputs }, initialState: undefined });
  const ms = new MatrixState(model, form, run, dims, stab);
  const { K, V0, NC, V, nHeads } = ms;
  const exp = expansion(form, dims);
  const at = form.readouts.map((r) => exp.slice(0, r.after).reduce((a, b) => a + b, 0));

  const ys = form.readouts.map(() => new Float64Array(B * T * nHeads * V0));
  const yc = form.readouts.map(() => form.columns.map(() => new Float64Array(B * T * nHeads)));
  const perToken = (name: string) => product(shapeSizes(form.prep.tensors.find((t) => t.name === name)!.shape, dims));
  const sizes = new Map<string, number>();
  const tokenSize = (name: string) => sizes.get(name) ?? (sizes.set(name, perToken(name)), sizes.get(name)!);

  /** Vector of length len from prep output `name` at (b, t, loop n, head h). */
  const vec = (name: string, b: number, t: number, n: number, h: number, len: number): Float64Array => {
    const data = prep.outputs[name];
    const off = (b * T + t) * tokenSize(name) + (n * nHeads + h) * len;
    return data.subarray(off, off + len);
  };

  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const S0 = ms.load(b, h);

      const data: SliceData = { K, V, steps: [], readouts: [] };
      for (let t = 0; t < T; t++) {
        const steps: SliceData["steps"][number] = [];
        form.steps.forEach((st, s) => {
          for (let n = 0; n < exp[s]; n++) {
            let ld: Float64Array = new Float64Array(K);
            if (st.ld) ld = st.ld.perKey ? vec(st.ld.name, b, t, n, h, K) : new Float64Array(K).fill(vec(st.ld.name, b, t, n, h, 1)[0]);
            steps.push({
              ld,
              u: st.lowRank.map((p) => vec(p.u, b, t, n, h, K)),
              w: st.lowRank.map((p) => vec(p.w, b, t, n, h, K)),
              kk: st.inputs.map((p) => vec(p.k, b, t, n, h, K)),
              vv: st.inputs.map((p) => {
                const vv = new Float64Array(V);
                vv.set(vec(p.v, b, t, n, h, V0));
                (p.cols ?? []).forEach((c, k) => (vv[V0 + k] = vec(c, b, t, n, h, 1)[0]));
                return vv;
              }),
            });
          }
        });
        data.steps.push(steps);
        data.readouts.push(form.readouts.map((r, i) => ({ q: vec(r.q, b, t, 0, h, K), at: at[i] })));
      }
      const res = opts.schedule === "chunked" ? coreChunked(data, S0, opts.chunk ?? 16) : coreSequential(data, S0);
      ms.store(b, h, res.S);
      res.y.forEach((yt, t) =>
        yt.forEach((y, r) => {
          ys[r].set(y.subarray(0, V0), ((b * T + t) * nHeads + h) * V0);
          for (let c = 0; c < NC; c++) yc[r][c][(b * T + t) * nHeads + h] = y[V0 + c];
        }),
      );
    }
  }
  return ms.finish(run, dims, ys, yc);
}
