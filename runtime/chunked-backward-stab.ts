/**
 * The max-plus stabiliser of a stabilised matrix form (mLSTM's m; compiler/forms/stabiliser.ts) in the chunked
 * backward, on the host: its forward pass (the pseudo inputs m_t and m_{t-1} that prep and post read) and its
 * adjoint in reverse time. Per batch row and head, m_t = max(a_t + m_{t-1}, b_t) with a, b from the stabiliser's
 * prep. The derivation (compiler/grad/chunked.ts, chunkedGradients): with m_t and m_{t-1} held fixed the core is
 * a plain scalar-decay recurrence in the stabilised frame; the adjoints of the two pseudo inputs then run down
 * the max-plus recurrence,
 *
 *     mbar_t = STAB_T__bar_t + STAB_PREV__bar_{t+1} + [a-branch at t+1] mbar_{t+1}        (mbar_{T-1} += dm_T)
 *     a__bar_t = [a-branch at t] mbar_t,   b__bar_t = [b-branch at t] mbar_t,
 *     m_{-1}__bar = [a-branch at 0] mbar_0 + <dS^, S^>
 *
 * (a-branch where a_t + m_{t-1} >= b_t: the IR's derivative of max), S^ the core's initial state (the given one
 * scaled by exp(m_{-1} - m^)). The first token's STAB_PREV (m^) is free: the loss does not depend on it, so its
 * adjoints are left out. O(B T H) scalars each way; the selections are 0 / 1, nothing is exponentiated.
 */
import type { FloatArray } from "./train.ts";

export interface StabForward {
  /** m_t and m_{t-1} (m^ = m_0 - a_0 at t = 0), [B, T, H]. */
  mt: Float64Array;
  mp: Float64Array;
  /** Per batch row and head: log of the factor the initial state is scaled by (m_{-1} - m^; -inf for m_{-1} = -inf). */
  logScale: Float64Array;
  /** The stabiliser's final state [B, H]. */
  final: Float64Array;
}

/** The stabiliser's pass: a, b [B, T, H], m0 its initial value [B, H]. */
export function stabForward(a: FloatArray, b: FloatArray, m0: FloatArray, B: number, T: number, H: number): StabForward {
  const mt = new Float64Array(B * T * H), mp = new Float64Array(B * T * H);
  const logScale = new Float64Array(B * H), final = new Float64Array(B * H);
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      let m = m0[bb * H + h];
      for (let t = 0; t < T; t++) {
        const i = (bb * T + t) * H + h;
        const next = Math.max(a[i] + m, b[i]);
        mp[i] = t === 0 ? next - a[i] : m;
        m = mt[i] = next;
      }
      logScale[bb * H + h] = T > 0 ? m0[bb * H + h] - mp[bb * T * H + h] : 0;
      final[bb * H + h] = m;
    }
  return { mt, mp, logScale, final };
}

export interface StabBars {
  /** Adjoints of STAB_T [B, T, H] (post's, prep's: absent where a piece does not read it). */
  mT: (FloatArray | undefined)[];
  /** Adjoint of STAB_PREV [B, T, H] (prep's). */
  mPrev: FloatArray | undefined;
  /** dL/dm_T [B, H]. */
  final: FloatArray | undefined;
  /** <dS^, S^> per batch row and head [B, H]. */
  scale: FloatArray;
}

/** The adjoint of the stabiliser: a__bar, b__bar [B, T, H] (for the stabiliser prep's backward) and the initial m's [B, H]. */
export function stabBackward(a: FloatArray, b: FloatArray, m0: FloatArray, fwd: StabForward, bars: StabBars, B: number, T: number, H: number): { aBar: Float64Array; bBar: Float64Array; initial: Float64Array } {
  const aBar = new Float64Array(B * T * H), bBar = new Float64Array(B * T * H), initial = new Float64Array(B * H);
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      let g = bars.final?.[bb * H + h] ?? 0;
      for (let t = T - 1; t >= 0; t--) {
        const i = (bb * T + t) * H + h;
        for (const x of bars.mT) if (x) g += x[i];
        if (t + 1 < T && bars.mPrev) g += bars.mPrev[i + H];
        const prev = t > 0 ? fwd.mt[i - H] : m0[bb * H + h];
        if (a[i] + prev >= b[i]) aBar[i] = g;
        else { bBar[i] = g; g = 0; }
      }
      initial[bb * H + h] = g + bars.scale[bb * H + h];
    }
  return { aBar, bBar, initial };
}

/**
 * The core's part of m_t's adjoint from the stabilised frame itself (no cancellation): where m enters the core only
 * as the frame (every decay ld0 + m_{t-1} - m_t, every input scale li0 - m_t, nothing else of prep reads m; one
 * update per token, readouts after it), raising m_t by d scales S_t alone by exp(-d) (S_{t+1} takes it back), so
 *
 *     dL/dm_t (core) = -sum_r <y_r, dy_r>_t  - [t = T - 1] <dS_N, S_N>
 *
 * (values and value columns). It replaces prep's adjoints of m_t and m_{t-1}, whose sum is the same in exact
 * arithmetic but a difference of the decay adjoint's running sums (each as large as <G, S>): in fp32 the initial
 * m's gradient was 8e-3 off under saturated gates at T = 300. ys, dys: [B, T, H, V] per readout; SN, dSN: [B, H, K, V].
 */
export function frameBar(ys: FloatArray[], dys: FloatArray[], SN: FloatArray, dSN: FloatArray | undefined, B: number, T: number, H: number, K: number, V: number): Float64Array {
  const out = new Float64Array(B * T * H);
  ys.forEach((y, r) => {
    const dy = dys[r];
    for (let i = 0; i < B * T * H; i++) {
      let s = 0;
      for (let j = 0; j < V; j++) s += y[i * V + j] * dy[i * V + j];
      out[i] -= s;
    }
  });
  if (dSN && T > 0)
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        let s = 0;
        const o = (b * H + h) * K * V;
        for (let e = 0; e < K * V; e++) s += dSN[o + e] * SN[o + e];
        out[(b * T + T - 1) * H + h] -= s;
      }
  return out;
}
