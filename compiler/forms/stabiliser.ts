/**
 * The stabiliser pass of a stabilised matrix form (matrix-form.ts), in float64: the max-plus recurrence
 * m_t = max(a_t + m_{t-1}, b_t) per batch row and head, which the core's decays and input scales read
 * (pseudo inputs STAB_T = m_t and STAB_PREV = m_{t-1}).
 *
 * The initial state is re-expressed at an effective stabiliser  m^ = m_0 - a_0  (not the given m_{-1}, which
 * may be -inf): the state S = exp(-m) S~ is the same with S^ = exp(m_{-1} - m^) S_{-1}, and the factor
 * exp(m_{-1} - m^) = exp(a_0 + m_{-1} - m_0) <= 1 is the first token's stabilised decay (0 for m_{-1} = -inf).
 * STAB_PREV at t = 0 is m^, so the first token's log decay a_0 + m^ - m_0 is 0 and every later one is
 * <= 0; nothing in the core sees an infinity. The max-plus pairs (a, b) compose associatively,
 * (a1, b1) then (a2, b2) = (a1 + a2, max(b1 + a2, b2)), which the GPU kernels scan in blocks.
 */
import { evalConst, interpret, product, shapeSizes, type RunInputs } from "../ir/interpret.ts";
import type * as I from "../ir/types.ts";
import { STAB_PREV, STAB_T, type MatrixForm } from "./matrix-form.ts";

export interface StabiliserRun {
  /** Pseudo inputs [B, T, heads...]: m_t and m_{t-1} (m^ at t = 0). */
  inputs: Record<string, Float64Array>;
  /** Per batch row and head: log of the factor the initial state is scaled by (m_{-1} - m^). */
  logScale: Float64Array;
  /** The stabiliser's final state [B, heads...]. */
  final: Float64Array;
}

export function runStabiliser(model: I.Model, form: MatrixForm, run: RunInputs, dims: Record<string, number>): StabiliserRun {
  const st = form.stabiliser!;
  const { batch: B, time: T } = run;
  const decl = model.tensors.find((t) => t.name === st.state)!;
  const nH = product(shapeSizes(decl.shape, dims));
  const ab = interpret(st.prep, { ...run, dims, initialState: undefined }).outputs;
  const a = ab[st.a], b = ab[st.b];
  const init = stateInit(model, st.state, run, dims);
  const mt = new Float64Array(B * T * nH), mp = new Float64Array(B * T * nH);
  const logScale = new Float64Array(B * nH), final = new Float64Array(B * nH);
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < nH; h++) {
      const m0 = init[bb * nH + h];
      let m = m0;
      for (let t = 0; t < T; t++) {
        const i = (bb * T + t) * nH + h;
        const next = Math.max(a[i] + m, b[i]);
        mp[i] = t === 0 ? next - a[i] : m;
        m = mt[i] = next;
      }
      logScale[bb * nH + h] = T > 0 ? m0 - mp[bb * T * nH + h] : 0;
      final[bb * nH + h] = m;
    }
  return { inputs: { [STAB_T]: mt, [STAB_PREV]: mp }, logScale, final };
}

/** A state's initial value [B, ...shape]: given, or its declared constant. */
export function stateInit(model: I.Model, name: string, run: RunInputs, dims: Record<string, number>): Float64Array {
  const decl = model.tensors.find((t) => t.name === name)!;
  const n = product(shapeSizes(decl.shape, dims));
  const given = run.initialState?.[name];
  if (given) return given;
  return new Float64Array(run.batch * n).fill(decl.init ? evalConst(decl.init, dims) : 0);
}
