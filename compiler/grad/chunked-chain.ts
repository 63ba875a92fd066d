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
 * plus the backward models of prep and post (stateless, backward.ts) and host glue (runtime/chunked-backward.ts,
 * shared with the generated classes' backward()): time reversal (the reversed index map), the decay shift by
 * one, dS_0 = D_1 G_1 (the adjoint's final state carried through the first token's decay), and sums of the
 * pieces. `modelChain` gives the models and names. With the float64 interpreter as `exec` it checks the
 * chain; with a backend's runner (e.g. runWebgpu with the chunked form for the cores) it is that
 * backend's chunked backward. A transposed model needs a decay along its key axis only: a scalar decay
 * stays one on S^T ([H, V, K]); a per-key decay (GLA) would vary along S^T's value axis, so there each key
 * row of S is a head of its own: S[h, i, :, 1] with heads (h, i), key axis V, a unit value axis and the
 * scalar decay exp(ld[h, i]) — again the matrix form (H K heads of rank-one outer products).
 *
 * Value columns (mLSTM's normaliser) widen the cores' value axis to V + NC; a max-plus stabiliser adds the
 * stabiliser's prep and its backward model (parts "stab", "stabBw": stateless) around the glue's pass and adjoint
 * (runtime/chunked-backward-stab.ts; torch: runtime/torch/seqc_chunked_stab.py). Every embedder runs them: chainGradients,
 * the generated classes (WebGPU and CUDA plans) and the torch target.
 */
import * as I from "../ir/types.ts";
import { evalConst, interpret, type RunInputs, type RunResult } from "../ir/interpret.ts";
import { matrixForm, STAB_PREV, STAB_T, type MatrixForm } from "../forms/matrix-form.ts";
import { stabFrameOnly } from "./chunked.ts";
import { chainEnds, chainRunner, coveredForm, loadGenerated, runDims } from "./chain-common.ts";
import { chainBackward, declaredValue, type ChainNames, type ChainPart, type ChainRows } from "../../runtime/chunked-backward.ts";
import { mapChildren } from "../ir/map.ts";
import { buildBackward } from "./backward.ts";
import type { Cotangents, Gradients } from "./run.ts";
import { lowRankChainGradients } from "./chunked-chain-lowrank.ts";

export type ChainForm = "sequential" | "scan" | "chunked";
/** Runs one model of the chain in the given form (the interpreter ignores the form). */
export type ChainExec = (model: I.Model, run: RunInputs, form: ChainForm) => RunResult | Promise<RunResult>;

/**
 * Why the chain does not cover this form, or undefined. Value columns and a max-plus stabiliser are covered (the
 * glue's stabiliser pass and adjoint, runtime/chunked-backward-stab.ts).
 */
export function chainRefusal(form: MatrixForm): string | undefined {
  if (form.lowRank) return `the chunked backward chain covers cores without low-rank terms (state ${form.state}'s update reads it through w^T ${form.state}: the delta-rule family's chain is chunked-chain-lowrank.ts's, which chainGradients runs for it)`;
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
  const [core, coreT, adjoint, adjointT, decay] = loadGenerated(src, "chain", "chunked backward chain");
  return { core, coreT, adjoint, adjointT, decay };
}

/** Names for the stabiliser's pseudo inputs that no tensor of the model has. */
function stabPseudoNames(model: I.Model): Record<string, string> {
  const taken = new Set(model.tensors.map((t) => t.name));
  const free = (base: string) => { let n = base; for (let k = 1; taken.has(n); k++) n = `${base}${k}`; return n; };
  return { [STAB_T]: free("stab_m_t"), [STAB_PREV]: free("stab_m_prev") };
}

/** `m` with the tensors named in `map` renamed (declarations, reads, `has`, targets). */
function renameTensors(m: I.Model, map: Record<string, string>): I.Model {
  const nm = (n: string) => map[n] ?? n;
  const expr = (e: I.Expr): I.Expr => (e.k === "read" ? { ...e, tensor: nm(e.tensor) } : e.k === "has" ? { ...e, tensor: nm(e.tensor) } : mapChildren(e, expr));
  const stmt = (st: I.Stmt): I.Stmt => (st.k === "for" ? { ...st, body: st.body.map(stmt) } : { ...st, target: nm(st.target), expr: expr(st.expr) });
  return { ...m, tensors: m.tensors.map((t) => ({ ...t, name: nm(t.name) })), body: m.body.map(stmt) };
}

const interpretExec: ChainExec = (m, run) => interpret(m, run);

/** The chain's models by part (prep, the backward models of post and prep, the core models, a stabiliser's prep and its backward) and the names that tie them together. */
export interface Chain { names: ChainNames; models: Record<ChainPart, I.Model | undefined> }

/** The chain of a model (throws with the reason where it does not cover it). `dims`: sizes the prep/post backward unroll loops over (fixed dims at least) and the declared initial state is evaluated at. */
export function modelChain(model: I.Model, dims: Record<string, number>): Chain {
  const covered = coveredForm(model, chainRefusal);
  // the stabiliser's pseudo inputs (m@t, m@prev) under names every backend takes as identifiers
  const pseudo = covered.stabiliser ? stabPseudoNames(model) : undefined;
  const form = pseudo ? { ...covered, prep: renameTensors(covered.prep, pseudo), post: renameTensors(covered.post, pseudo) } : covered;
  const ms = chainModels(form);
  const step = form.steps[0];
  const ends = chainEnds(model, form, dims);
  const names: ChainNames = {
    ...ends.head,
    decay: form.decay,
    pairs: step.inputs.map((p) => ({ k: p.k, v: p.v })),
    readouts: form.readouts.map((r) => ({ q: r.q, y: r.y })),
    ...(step.ld ? { ld: step.ld.name } : {}),
    ...ends.tail,
  };
  if (form.columns.length) {
    names.columns = {
      states: form.columns,
      inits: form.columns.map((c) => { const d = model.tensors.find((t) => t.name === c)!; return declaredValue(d.init ? evalConst(d.init, dims) : 0); }),
      pairs: step.inputs.map((p) => p.cols),
      readouts: form.readouts.map((r) => r.cols),
    };
  }
  let stabModels: { stab: I.Model; stabBw: I.Model } | undefined;
  if (form.stabiliser) {
    const st = form.stabiliser;
    const bw = buildBackward(st.prep, dims, { paramAdjoints: "output" });
    const d = model.tensors.find((t) => t.name === st.state)!;
    names.stab = { state: st.state, init: declaredValue(d.init ? evalConst(d.init, dims) : 0), a: st.a, b: st.b, mT: pseudo![STAB_T], mPrev: pseudo![STAB_PREV], stabBw: { outputBar: bw.outputBar, inputBar: bw.inputBar, paramBar: bw.paramBar }, frame: stabFrameOnly(covered) };
    stabModels = { stab: st.prep, stabBw: bw.model };
  }
  return { names, models: { ...ends.models, core: ms.core, coreT: ms.coreT, adjoint: ms.adjoint, adjointT: ms.adjointT, decay: step.ld ? ms.decay : undefined, stab: stabModels?.stab, stabBw: stabModels?.stabBw } };
}

/** The form each part of the chain runs in: the core models chunked, the decay adjoint a scan, prep, post and the stabiliser's sequential. */
export const CHAIN_FORMS: Record<ChainPart, ChainForm> = { prep: "sequential", postBw: "sequential", prepBw: "sequential", core: "chunked", coreT: "chunked", adjoint: "chunked", adjointT: "chunked", decay: "scan", stab: "sequential", stabBw: "sequential" };

/** Gradients through the chain (runtime/chunked-backward.ts's glue; low-rank cores: chunked-chain-lowrank.ts's chain); `exec` runs each model (default: the float64 interpreter); `chunk`: micro-steps per folded chunk of the low-rank chain; `rows`: the transposed cores of a per-key decay's chain on it (chainBackward's ChainRows). */
export async function chainGradients(model: I.Model, run: RunInputs, cot: Cotangents, exec: ChainExec = interpretExec, opts: { chunk?: number; rows?: ChainRows } = {}): Promise<Gradients> {
  // low-rank cores (the delta-rule family): chunk start states and per-chunk readouts instead of transposed cores
  const mf = matrixForm(model);
  if (mf.ok && mf.form.lowRank) return lowRankChainGradients(model, run, cot, exec, opts);
  // every model of the chain with the inputs it declares (runners refuse unknown names)
  const dims = runDims(model, run);
  const chain = modelChain(model, dims);
  const { runPart, problem } = chainRunner(model, run, cot, dims, chain, exec, CHAIN_FORMS, "the chunked backward chain");
  return (await chainBackward(chain.names, runPart, problem, opts.rows)) as Gradients;
}
