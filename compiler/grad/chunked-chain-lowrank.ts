/**
 * The chunked backward of low-rank cores (the delta-rule family) as a chain of generated models that the
 * backends already run: the derivation of matrix-core-backward.ts, whose readouts contracting the value axis
 * (dq = S dy, dw = S_{s-1} a, dk = G v, du = G r) the chunked kernels do not have, and which the transposed
 * cores of chunked-chain.ts cannot give (the low-rank mixing would act on S^T's value axis). Instead, every
 * state is known at chunk starts and every readout runs per chunk, time folded into the batch:
 *
 *   timeline   the core's micro-steps flattened (N per token) behind one identity step, so a readout of
 *              token t after `after` micro-steps reads the state after micro-step t N + after
 *   the core   S = D S + sum_e u_e (w_e^T S) + sum_p k_p v_p^T
 *   aug        the core on [A | B] from [I | 0] per chunk (value axis K + V, value vectors [0; v]): the
 *              chunk's transition A_c and its own contribution B_c                        (chunked, folded)
 *   pass       S_{c+1} = A_c S_c + B_c: the start state of every chunk                    (sequential over chunks)
 *   read       from the chunk start states, per chunk: r_e = S_{s-1}^T w_e (the low-rank reads), y_r = S^T q_r
 *                                                                                         (sequential, folded)
 *   fwd        the same after the adjoint: dw_e = S_{s-1} a_e, dq_r = S dy_r             (sequential, folded)
 *   adjoint    reversed time, G = D' G + sum_e u'_e (w'_e^T G) + sum_r q_r dy_r^T with the next step's decay
 *              and its low-rank pair swapped (u' = w, w' = u); its chunk states by aug + pass on the reversed
 *              timeline, then per chunk dv_p = G^T k_p, a_e = G^T u_e, dk_p = G v_p, du_e = G r_e
 *   decay      a = a + (w.dw)_{s+1} + (q.dq)_s - (k.dk)_s - (u.du)_s, dld_s = a  (reversed time; a_0 = <dS_N, S_N>)
 *
 * plus prep's and post's backward (stateless) and the host glue (runtime/chunked-backward-lowrank.ts). The
 * chunked kernels run aug (the chunk transitions, O(T K (K + V)) per head as matrix products; their one
 * readout, of a zero query, is there because the kernels take exactly one); every readout runs in the sequential
 * form with B x chunks rows, each C steps long (O(T K V) per head, parallel over chunks: the chunked kernels
 * take one readout per token and contract the key axis only); the pass is sequential over the T / C chunks
 * (O(K^2 V) each).
 */
import * as I from "../ir/types.ts";
import { interpret, type RunInputs, type RunResult } from "../ir/interpret.ts";
import type { MatrixForm } from "../forms/matrix-form.ts";
import { expansion } from "../forms/matrix-core.ts";
import { chunkedBackwardRefusal } from "./chunked.ts";
import { chainEnds, chainRunner, coveredForm, loadGenerated, runDims } from "./chain-common.ts";
import { lowRankChainBackward, LR_FORMS, type LrChainNames, type LrForm, type LrPart } from "../../runtime/chunked-backward-lowrank.ts";
import type { Cotangents, Gradients } from "./run.ts";

export { LR_FORMS, type LrForm };
export type LrExec = (model: I.Model, run: RunInputs, form: LrForm) => RunResult | Promise<RunResult>;

/** A readout of a generated model: key axis (sum(i) z[h,i] S[h,i,j]) or value axis (sum(j) S[h,i,j] z[h,j]), before or after the update. */
interface Read { out: string; input: string; axis: "key" | "value"; before?: boolean }

/** One generated core model: P input pairs x_k<p>/x_v<p>, E low-rank pairs x_u<e>/x_w<e>, the decay x_ld, the readouts. */
function coreText(name: string, P: number, E: number, decay: "none" | "scalar" | "key", reads: Read[]): string {
  const inputs: string[] = [];
  if (decay === "key") inputs.push("x_ld[H,K]");
  if (decay === "scalar") inputs.push("x_ld[H]");
  for (let e = 0; e < E; e++) inputs.push(`x_u${e}[H,K]`, `x_w${e}[H,K]`);
  for (let p = 0; p < P; p++) inputs.push(`x_k${p}[H,K]`, `x_v${p}[H,V]`);
  for (const r of reads) inputs.push(`${r.input}[H,${r.axis === "key" ? "K" : "V"}]`);
  const terms = [decay === "none" ? "S[h,i,j]" : decay === "key" ? "exp(x_ld[h,i]) * S[h,i,j]" : "exp(x_ld[h]) * S[h,i,j]"];
  for (let e = 0; e < E; e++) terms.push(`x_u${e}[h,i] * sum(m) x_w${e}[h,m] * S[h,m,j]`);
  for (let p = 0; p < P; p++) terms.push(`x_k${p}[h,i] * x_v${p}[h,j]`);
  const out = (r: Read) => (r.axis === "key" ? `output ${r.out}[h,j] = sum(i) ${r.input}[h,i] * S[h,i,j]` : `output ${r.out}[h,i] = sum(j) S[h,i,j] * ${r.input}[h,j]`);
  const lines = [...reads.filter((r) => r.before).map(out), `S[h,i,j] = ${terms.join(" + ")}`, ...reads.filter((r) => !r.before).map(out)];
  return `model ${name} {\n  dims H, K, V\n  input ${[...new Set(inputs)].join(", ")}\n  state S[H,K,V] = 0\n  ${lines.join("\n  ")}\n}\n`;
}

export interface LrModels { read: I.Model; augF: I.Model; augA: I.Model; pass: I.Model; fwd: I.Model; adjoint: I.Model; decay?: I.Model }

/** Sizes of the timeline: input pairs, low-rank pairs and readouts per micro-step, and its decay. */
export interface LrShape { P: number; E: number; R: number; decay: "none" | "scalar" | "key" }

export function lrShape(form: MatrixForm): LrShape {
  const decay = form.steps.some((s) => s.ld?.perKey) ? "key" : form.steps.some((s) => s.ld) ? "scalar" : "none";
  return { P: Math.max(0, ...form.steps.map((s) => s.inputs.length)), E: Math.max(0, ...form.steps.map((s) => s.lowRank.length)), R: form.readouts.length, decay };
}

/** The generated models of the low-rank chain (parsed like any .seq model). */
export function lowRankModels({ P, E, R, decay }: LrShape): LrModels {
  const ps = [...Array(P).keys()], es = [...Array(E).keys()], rs = [...Array(R).keys()];
  const src = [
    coreText("LrRead", P, E, decay, [...es.map((e) => ({ out: `o_r${e}`, input: `x_w${e}`, axis: "key" as const, before: true })), ...rs.map((r) => ({ out: `o_y${r}`, input: `x_q${r}`, axis: "key" as const }))]),
    coreText("LrAugF", P, E, decay, [{ out: "o_n", input: "x_n", axis: "key" }]),
    coreText("LrAugA", R, E, decay, [{ out: "o_n", input: "x_n", axis: "key" }]),
    `model LrPass {\n  dims H, K, V\n  input x_A[H,K,K], x_B[H,K,V]\n  state S[H,K,V] = 0\n  output o_S[h,i,j] = S[h,i,j]\n  S[h,i,j] = sum(l) x_A[h,i,l] * S[h,l,j] + x_B[h,i,j]\n}\n`,
    coreText("LrFwd", P, E, decay, [...es.map((e) => ({ out: `o_dw${e}`, input: `x_a${e}`, axis: "value" as const, before: true })), ...rs.map((r) => ({ out: `o_dq${r}`, input: `x_dy${r}`, axis: "value" as const }))]),
    coreText("LrAdjoint", R, E, decay, [
      ...ps.map((p) => ({ out: `o_dv${p}`, input: `x_kq${p}`, axis: "key" as const })),
      ...es.map((e) => ({ out: `o_a${e}`, input: `x_uq${e}`, axis: "key" as const })),
      ...ps.map((p) => ({ out: `o_dk${p}`, input: `x_vz${p}`, axis: "value" as const })),
      ...es.map((e) => ({ out: `o_du${e}`, input: `x_rz${e}`, axis: "value" as const })),
    ]),
  ];
  if (decay !== "none") {
    const ins = [...rs.flatMap((r) => [`x_q${r}`, `x_dq${r}`]), ...ps.flatMap((p) => [`x_k${p}`, `x_dk${p}`]), ...es.flatMap((e) => [`x_u${e}`, `x_du${e}`, `x_w${e}`, `x_dw${e}`])];
    const terms = [
      ...rs.map((r) => `+ x_q${r}[h,i] * x_dq${r}[h,i]`), ...ps.map((p) => `- x_k${p}[h,i] * x_dk${p}[h,i]`),
      ...es.map((e) => `- x_u${e}[h,i] * x_du${e}[h,i]`), ...es.map((e) => `+ x_w${e}[h,i] * x_dw${e}[h,i]`),
    ].join(" ").replace(/^\+ /, "");
    src.push(`model LrDecay {\n  dims H, K\n  input ${ins.map((n) => `${n}[H,K]`).join(", ")}\n${decay === "key" ? `  state a[H,K] = 0\n  a[h,i] = a[h,i] + ${terms}\n  output o_dld[h,i] = a[h,i]` : `  state a[H] = 0\n  a[h] = a[h] + sum(i) (${terms})\n  output o_dld[h] = a[h]`}\n}\n`);
  }
  const [read, augF, augA, pass, fwd, adjoint, decayModel] = loadGenerated(src, "lowrank", "low-rank chunked backward chain");
  return { read, augF, augA, pass, fwd, adjoint, ...(decayModel ? { decay: decayModel } : {}) };
}

export interface LrChain { names: LrChainNames; models: Record<LrPart, I.Model | undefined> }

/** The low-rank chain of a model at `dims` (micro-step loops unrolled at these sizes). */
export function lowRankChain(model: I.Model, dims: Record<string, number>): LrChain {
  const form = coveredForm(model, chunkedBackwardRefusal);
  const shape = lrShape(form);
  const ms = lowRankModels(shape);
  const ends = chainEnds(model, form, dims);
  const counts = expansion(form, dims);
  const names: LrChainNames = {
    ...ends.head,
    ...shape,
    steps: form.steps.map((s, i) => ({ count: counts[i], ...(s.ld ? { ld: s.ld } : {}), lowRank: s.lowRank, inputs: s.inputs.map((p) => ({ k: p.k, v: p.v })) })),
    readouts: form.readouts.map((r) => ({ q: r.q, y: r.y, after: r.after })),
    ...ends.tail,
  };
  return { names, models: { ...ends.models, ...ms, decay: ms.decay } };
}

export interface LrOptions { /** Micro-steps per chunk of the folded runs (default 64). */ chunk?: number }

/** Gradients through the low-rank chain; `exec` runs each model in the form LR_FORMS gives (default: the float64 interpreter). */
export async function lowRankChainGradients(model: I.Model, run: RunInputs, cot: Cotangents, exec: LrExec = (m, r) => interpret(m, r), opts: LrOptions = {}): Promise<Gradients> {
  const dims = runDims(model, run);
  const chain = lowRankChain(model, dims);
  const { runPart, problem } = chainRunner(model, run, cot, dims, chain, exec, LR_FORMS, "the low-rank chain");
  return (await lowRankChainBackward(chain.names, runPart, problem, opts.chunk ?? 64)) as Gradients;
}
