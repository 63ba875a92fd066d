/**
 * Run a model through its matrix form: prep (interpreter) -> core (float64 reference, sequential
 * or chunked) -> post (interpreter). Same inputs and results as `interpret`, so every schedule of
 * the core can be checked against the reference interpreter.
 */
import type { Model } from "../ir/types.ts";
import { interpret, product, shapeSizes, stridesOf, type RunInputs, type RunResult } from "../ir/interpret.ts";
import type { MatrixForm } from "./matrix-form.ts";
import { coreChunked, coreSequential, expansion, type SliceData } from "./matrix-core.ts";
import { runStabiliser, stateInit } from "./stabiliser.ts";
import { headOffset } from "../../runtime/chunked-backward.ts";

export interface MatrixRunOptions { schedule: "sequential" | "chunked"; chunk?: number }

export function runMatrixForm(model: Model, form: MatrixForm, run: RunInputs, opts: MatrixRunOptions): RunResult {
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const stab = form.stabiliser ? runStabiliser(model, form, run, dims) : undefined;
  const prep = interpret(form.prep, { ...run, dims, inputs: { ...run.inputs, ...stab?.inputs }, initialState: undefined });
  const Sdecl = model.tensors.find((t) => t.name === form.state)!;
  const sShape = shapeSizes(Sdecl.shape, dims);
  const sStrides = stridesOf(sShape);
  const headSizes = form.heads.map((p) => sShape[p]);
  const nHeads = product(headSizes);
  const K = sShape[form.key];
  const V0 = sShape[form.value];
  const NC = form.columns.length;
  const V = V0 + NC;
  const nS = product(sShape);
  const nCol = nS / V0;
  const colIdx = (h: number, i: number) => h * K + i; // a column state is [heads..., key]
  const initS = stateInit(model, form.state, { ...run, dims } as RunInputs, dims);
  const initC = form.columns.map((c) => stateInit(model, c, { ...run, dims } as RunInputs, dims));
  const finalC = form.columns.map(() => new Float64Array(B * nCol));
  const exp = expansion(form, dims);
  const at = form.readouts.map((r) => exp.slice(0, r.after).reduce((a, b) => a + b, 0));

  const finalS = new Float64Array(B * nS);
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
      // head tuple -> offset of S[heads.., 0, 0]
      const headOff = headOffset(form.heads, sShape, sStrides, h);
      const S0 = new Float64Array(K * V);
      const scale = stab ? Math.exp(stab.logScale[b * nHeads + h]) : 1;
      for (let i = 0; i < K; i++) {
        for (let j = 0; j < V0; j++) S0[i * V + j] = scale * initS[b * nS + headOff + i * sStrides[form.key] + j * sStrides[form.value]];
        for (let c = 0; c < NC; c++) S0[i * V + V0 + c] = scale * initC[c][b * nCol + colIdx(h, i)];
      }

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
      for (let i = 0; i < K; i++) {
        for (let j = 0; j < V0; j++) finalS[b * nS + headOff + i * sStrides[form.key] + j * sStrides[form.value]] = res.S[i * V + j];
        for (let c = 0; c < NC; c++) finalC[c][b * nCol + colIdx(h, i)] = res.S[i * V + V0 + c];
      }
      res.y.forEach((yt, t) =>
        yt.forEach((y, r) => {
          ys[r].set(y.subarray(0, V0), ((b * T + t) * nHeads + h) * V0);
          for (let c = 0; c < NC; c++) yc[r][c][(b * T + t) * nHeads + h] = y[V0 + c];
        }),
      );
    }
  }
  const postInputs: Record<string, Float64Array> = { ...run.inputs, ...stab?.inputs };
  form.readouts.forEach((r, i) => {
    postInputs[r.y] = ys[i];
    r.cols.forEach((name, c) => (postInputs[name] = yc[i][c]));
  });
  const post = interpret(form.post, { ...run, dims, inputs: postInputs, initialState: undefined });
  const finalState: Record<string, Float64Array> = { [form.state]: finalS };
  form.columns.forEach((c, k) => (finalState[c] = finalC[k]));
  if (stab) finalState[form.stabiliser!.state] = stab.final;
  return { outputs: post.outputs, finalState };
}
