/**
 * The chunked backward as a chain of models that every backend runs in the forms it already has: the
 * derivation of matrix-core-backward.ts written as small generated `.seq` models over the core's
 * canonical inputs (heads flattened to H, key K, value V), each one the matrix form's own shape, so
 * a backend's chunked kernels run them unchanged:
 *
 *   core       S = D S + sum_p k_p v_p^T,      y_r = S^T q_r                  (forward: y, S_N)
 *   core^T     S^T = S^T D + sum_p v_p k_p^T,  dq_r = (S^T)^T dy_r = S dy_r   (scalar decay: still the form)
 *   adjoint    G = D' G + sum_r q_r dy_r^T,    dv_p = G^T k_p                 (reversed time; D' = next step's decay)
 *   adjoint^T  G^T = G^T D' + sum_r dy_r q_r^T, dk_p = G v_p                  (reversed time, scalar decay)
 *   decay      a = a + sum_r q_r.dq_r - sum_p k_p.dk_p, dld = a               (reversed time, a scan; a_0 = <dS_N, S_N>)
 *
 * plus the backward models of prep and post (stateless, backward.ts) and host glue: time reversal (the
 * reversed index map), the decay shift by one, dS_0 = D_1 G_1 (the adjoint's final state carried through
 * the first token's decay), and sums of the pieces. With the float64 interpreter as `exec` it checks the
 * chain; with a backend's runner (e.g. runWebgpu with the chunked form for the cores) it is that
 * backend's chunked backward. A transposed model needs a decay along its key axis only: a scalar decay
 * stays one on S^T ([H, V, K]); a per-key decay (GLA) would vary along S^T's value axis, so there each key
 * row of S is a head of its own: S[h, i, :, 1] with heads (h, i), key axis V, a unit value axis and the
 * scalar decay exp(ld[h, i]) — again the matrix form (H K heads of rank-one outer products).
 */
import * as I from "../ir/types.ts";
import { interpret, product, shapeSizes, type RunInputs, type RunResult } from "../ir/interpret.ts";
import { loadProgram } from "../frontend/load.ts";
import { matrixForm, type MatrixForm } from "../forms/matrix-form.ts";
import { stateInit } from "../forms/stabiliser.ts";
import { buildBackward } from "./backward.ts";
import { chunkedBackwardRefusal, Slicer, sumPieces } from "./chunked.ts";
import { reverseTime } from "../../runtime/train.ts";
import type { Cotangents, Gradients } from "./run.ts";

export type ChainForm = "sequential" | "scan" | "chunked";
/** Runs one model of the chain in the given form (the interpreter ignores the form). */
export type ChainExec = (model: I.Model, run: RunInputs, form: ChainForm) => RunResult | Promise<RunResult>;

/** Why the chain does not cover this form, or undefined. */
export function chainRefusal(form: MatrixForm): string | undefined {
  const why = chunkedBackwardRefusal(form);
  if (why) return why;
  if (form.steps.length !== 1 || form.steps[0].loop) return "the chunked backward chain covers one update per token (no micro-step loops)";
  if (form.readouts.some((r) => r.after !== 1)) return "the chunked backward chain covers readouts after the update";
  return undefined;
}

export interface ChainModels { core: I.Model; coreT: I.Model; adjoint: I.Model; adjointT: I.Model; decay?: I.Model }

/** The chain's core models for a form with P input pairs and R readouts (generated .seq, parsed like any model). */
export function chainModels(form: MatrixForm): ChainModels {
  const P = form.steps[0].inputs.length;
  const R = form.readouts.length;
  const ps = [...Array(P).keys()], rs = [...Array(R).keys()];
  const hasDecay = form.decay !== "none";
  const perKey = form.decay === "key";
  const dec = (s: string) => (!hasDecay ? s : perKey ? `exp(x_ld[h,i]) * ${s}` : `exp(x_ld[h]) * ${s}`);
  const ldIn = !hasDecay ? "" : perKey ? "input x_ld[H,K]\n  " : "input x_ld[H]\n  ";
  const text = (name: string, inputs: string[], state: string, update: string, outputs: string[]) =>
    `model ${name} {\n  dims H, K, V\n  ${ldIn}input ${inputs.join(", ")}\n  state ${state} = 0\n  ${update}\n  ${outputs.join("\n  ")}\n}\n`;
  const kIn = ps.map((p) => `x_k${p}[H,K]`), vIn = ps.map((p) => `x_v${p}[H,V]`), qIn = rs.map((r) => `x_q${r}[H,K]`), dyIn = rs.map((r) => `x_dy${r}[H,V]`);
  const src = [
    text("ChainCore", [...kIn, ...vIn, ...qIn], "S[H,K,V]", `S[h,i,j] = ${dec("S[h,i,j]")} + ${ps.map((p) => `x_k${p}[h,i] * x_v${p}[h,j]`).join(" + ")}`, rs.map((r) => `output o_y${r}[h,j] = sum(i) x_q${r}[h,i] * S[h,i,j]`)),
    perKey
      ? text("ChainCoreT", [...kIn, ...vIn, ...dyIn], "S[H,K,V,1]", `S[h,i,j,z] = ${dec("S[h,i,j,z]")} + ${ps.map((p) => `x_k${p}[h,i] * x_v${p}[h,j]`).join(" + ")}`, rs.map((r) => `output o_dq${r}[h,i,z] = sum(j) x_dy${r}[h,j] * S[h,i,j,z]`))
      : text("ChainCoreT", [...kIn, ...vIn, ...dyIn], "S[H,V,K]", `S[h,j,i] = ${dec("S[h,j,i]")} + ${ps.map((p) => `x_v${p}[h,j] * x_k${p}[h,i]`).join(" + ")}`, rs.map((r) => `output o_dq${r}[h,i] = sum(j) x_dy${r}[h,j] * S[h,j,i]`)),
    text("ChainAdjoint", [...qIn, ...dyIn, ...kIn], "G[H,K,V]", `G[h,i,j] = ${dec("G[h,i,j]")} + ${rs.map((r) => `x_q${r}[h,i] * x_dy${r}[h,j]`).join(" + ")}`, ps.map((p) => `output o_dv${p}[h,j] = sum(i) x_k${p}[h,i] * G[h,i,j]`)),
    perKey
      ? text("ChainAdjointT", [...qIn, ...dyIn, ...vIn], "G[H,K,V,1]", `G[h,i,j,z] = ${dec("G[h,i,j,z]")} + ${rs.map((r) => `x_q${r}[h,i] * x_dy${r}[h,j]`).join(" + ")}`, ps.map((p) => `output o_dk${p}[h,i,z] = sum(j) x_v${p}[h,j] * G[h,i,j,z]`))
      : text("ChainAdjointT", [...qIn, ...dyIn, ...vIn], "G[H,V,K]", `G[h,j,i] = ${dec("G[h,j,i]")} + ${rs.map((r) => `x_dy${r}[h,j] * x_q${r}[h,i]`).join(" + ")}`, ps.map((p) => `output o_dk${p}[h,i] = sum(j) x_v${p}[h,j] * G[h,j,i]`)),
  ];
  const terms = [...rs.map((r) => `x_q${r}[h,i] * x_dq${r}[h,i]`), ...ps.map((p) => `x_k${p}[h,i] * x_dk${p}[h,i]`)];
  const signed = terms.map((t, n) => (n < R ? `+ ${t}` : `- ${t}`)).join(" ").replace(/^\+ /, "");
  if (hasDecay) src.push(`model ChainDecay {\n  dims H, K\n  input ${[...qIn, ...rs.map((r) => `x_dq${r}[H,K]`), ...kIn, ...ps.map((p) => `x_dk${p}[H,K]`)].join(", ")}\n${perKey ? `  state a[H,K] = 0\n  a[h,i] = a[h,i] + ${signed}\n  output o_dld[h,i] = a[h,i]` : `  state a[H] = 0\n  a[h] = a[h] + sum(i) (${signed})\n  output o_dld[h] = a[h]`}\n}\n`);
  const files = new Map(src.map((s, n) => [`chain${n}.seq`, s]));
  const prog = loadProgram([...files.keys()], files);
  const errors = prog.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(`chunked backward chain: generated models do not load: ${errors.map((e) => e.message).join("; ")}`);
  const [core, coreT, adjoint, adjointT, decay] = prog.models;
  return { core, coreT, adjoint, adjointT, decay };
}

const interpretExec: ChainExec = (m, run) => interpret(m, run);

/** Run a chain model with the inputs it declares (runners refuse unknown names). */
function runOwn(exec: ChainExec, m: I.Model, run: RunInputs, form: ChainForm): RunResult | Promise<RunResult> {
  const own = new Set(I.tensorsOfKind(m, "input").map((t) => t.name));
  return exec(m, { ...run, inputs: Object.fromEntries(Object.entries(run.inputs).filter(([k]) => own.has(k))) }, form);
}

/** Gradients through the chain; `exec` runs each model (default: the float64 interpreter). */
export async function chainGradients(model: I.Model, run: RunInputs, cot: Cotangents, exec: ChainExec = interpretExec): Promise<Gradients> {
  const mf = matrixForm(model);
  if (!mf.ok) throw new Error(`${model.name} has no chunked form: ${mf.reason}`);
  const form = mf.form;
  const why = chainRefusal(form);
  if (why) throw new Error(`${model.name}: ${why}`);
  const ms = chainModels(form);
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  const { batch: B, time: T } = run;
  const sl = new Slicer(model, form, dims, B, T);
  const { K, V, nHeads: H } = sl;
  const cdims = { H, K, V };
  const step = form.steps[0];
  const rev = (a: Float64Array, inner: number) => reverseTime(a, B, T, inner);

  // canonical state layouts [B, H, K, V] and [B, H, V, K]
  const canon = (all: Float64Array | undefined, transpose: boolean) => {
    const out = new Float64Array(B * H * K * V);
    if (all) for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      const S = sl.getState(all, b, h);
      for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) out[((b * H + h) * (transpose ? V * K : K * V)) + (transpose ? j * K + i : i * V + j)] = S[i * V + j];
    }
    return out;
  };
  const S0 = stateInit(model, form.state, run, dims);
  const dS = cot.finalState?.[form.state];

  const prep = (await exec(form.prep, { ...run, dims, initialState: undefined }, "sequential")).outputs;
  const ld = step.ld ? prep[step.ld.name] : undefined;
  const kv: Record<string, Float64Array> = {};
  step.inputs.forEach((p, n) => { kv[`x_k${n}`] = prep[p.k]; kv[`x_v${n}`] = prep[p.v]; });
  const qs: Record<string, Float64Array> = {};
  form.readouts.forEach((r, n) => (qs[`x_q${n}`] = prep[r.q]));
  const withLd = (x: Record<string, Float64Array>, l?: Float64Array) => (l ? { ...x, x_ld: l } : x);

  // forward core: y for post, S_N for the decay adjoint's start
  const core = await runOwn(exec, ms.core, { dims: cdims, batch: B, time: T, inputs: withLd({ ...kv, ...qs }, ld), initialState: { S: canon(S0, false) } }, "chunked");

  // post's backward: dL/dy and post's own contributions
  const postBw = buildBackward(form.post, dims, { paramAdjoints: "output" });
  const postIn: Record<string, Float64Array> = { ...run.inputs };
  form.readouts.forEach((r, n) => (postIn[r.y] = core.outputs[`o_y${n}`]));
  for (const o of I.tensorsOfKind(form.post, "output")) postIn[postBw.outputBar[o.name]] = cot.outputs?.[o.name] ?? new Float64Array(B * T * product(shapeSizes(o.shape, dims)));
  const postG = (await exec(postBw.model, { ...run, dims, inputs: postIn, initialState: undefined }, "sequential")).outputs;
  const dys: Record<string, Float64Array> = {};
  form.readouts.forEach((r, n) => (dys[`x_dy${n}`] = postG[postBw.inputBar[r.y]]));

  // dq = S dy (the transposed core, forward time)
  // a per-key decay: S^T's rows are independent heads (h, i) with a unit value axis, S's own layout
  const perKey = form.decay === "key";
  const L = perKey ? H * K : H; // log decays per token
  const coreT = await runOwn(exec, ms.coreT, { dims: cdims, batch: B, time: T, inputs: withLd({ ...kv, ...dys }, ld), initialState: { S: canon(S0, !perKey) } }, "chunked");

  // the adjoint in reversed time: token t's decay shifted to t - 1 (D_{t+1} takes G_{t+1} to t; none after the last)
  let ldn: Float64Array | undefined;
  if (ld) {
    ldn = new Float64Array(ld.length);
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) ldn.set(ld.subarray((b * T + t + 1) * L, (b * T + t + 2) * L), (b * T + t) * L);
    ldn = rev(ldn, L);
  }
  const rIn: Record<string, Float64Array> = {};
  // key vectors (q, k) are [H, K] per token, value vectors (dy, v) [H, V]
  for (const [k, a] of Object.entries({ ...qs, ...kv, ...dys })) rIn[k] = rev(a, k.startsWith("x_q") || k.startsWith("x_k") ? H * K : H * V);
  const adj = await runOwn(exec, ms.adjoint, { dims: cdims, batch: B, time: T, inputs: withLd(rIn, ldn), initialState: { G: canon(dS, false) } }, "chunked");
  const adjT = await runOwn(exec, ms.adjointT, { dims: cdims, batch: B, time: T, inputs: withLd(rIn, ldn), initialState: { G: canon(dS, !perKey) } }, "chunked");

  // the adjoints of prep's outputs
  const prepBars: Record<string, Float64Array> = {};
  step.inputs.forEach((p, n) => {
    prepBars[p.k] = rev(adjT.outputs[`o_dk${n}`], H * K);
    prepBars[p.v] = rev(adj.outputs[`o_dv${n}`], H * V);
  });
  form.readouts.forEach((r, n) => (prepBars[r.q] = coreT.outputs[`o_dq${n}`]));
  if (step.ld && ms.decay) {
    // a_T = <dS_N, S_N> per head, then the reverse cumulative sum of q.dq - k.dk
    const a0 = new Float64Array(B * L);
    const SN = core.finalState.S;
    if (dS) { const dSc = canon(dS, false); for (let n = 0; n < B * H * K; n++) for (let j = 0; j < V; j++) a0[perKey ? n : Math.floor(n / K)] += dSc[n * V + j] * SN[n * V + j]; }
    const dIn: Record<string, Float64Array> = {};
    form.readouts.forEach((_, n) => { dIn[`x_q${n}`] = rIn[`x_q${n}`]; dIn[`x_dq${n}`] = rev(coreT.outputs[`o_dq${n}`], H * K); });
    step.inputs.forEach((_, n) => { dIn[`x_k${n}`] = rIn[`x_k${n}`]; dIn[`x_dk${n}`] = adjT.outputs[`o_dk${n}`]; });
    const dec = await runOwn(exec, ms.decay, { dims: { H, K }, batch: B, time: T, inputs: dIn, initialState: { a: a0 } }, "scan");
    prepBars[step.ld.name] = rev(dec.outputs.o_dld, L);
  }
  // dS_0 = D_1 G_1: the adjoint's final state through the first token's decay, back in the model's layout
  const dS0 = new Float64Array(S0.length);
  const Gf = adj.finalState.G;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const S = new Float64Array(K * V);
    for (let e = 0; e < K * V; e++) S[e] = (ld ? Math.exp(ld[b * T * L + (perKey ? h * K + Math.floor(e / V) : h)]) : 1) * Gf[(b * H + h) * K * V + e];
    sl.setState(dS0, b, h, S);
  }

  // prep's backward
  const prepBw = buildBackward(form.prep, dims, { paramAdjoints: "output" });
  const prepIn: Record<string, Float64Array> = { ...run.inputs };
  for (const o of I.tensorsOfKind(form.prep, "output")) prepIn[prepBw.outputBar[o.name]] = prepBars[o.name] ?? new Float64Array(prep[o.name].length);
  const prepG = (await exec(prepBw.model, { ...run, dims, inputs: prepIn, initialState: undefined }, "sequential")).outputs;

  return sumPieces(model, dims, B, T, [{ out: postG, names: postBw }, { out: prepG, names: prepBw }], { [form.state]: dS0 });
}
