/**
 * The glue of the low-rank chunked backward (the models and the derivation are
 * compiler/grad/chunked-chain-lowrank.ts's; this runs them): the core's micro-steps laid out on one timeline
 * (an identity step first, then N per token), chunk start states from the chunk transitions, readouts per
 * chunk with time folded into the batch ([B, chunks x C] is [B chunks, C] in memory), the adjoint's timeline
 * reversed with the next step's decay and swapped low-rank pair, and the pieces mapped back onto prep's
 * outputs. Host loops, O(B T (H K + H V)) per array, plus O(B T / C H K (K + V)) for the chunk transitions.
 */
import { sumPieces, stateLayout, type ChainNames, type ChainProblem } from "./chunked-backward.ts";
import type { FloatArray, Gradients, Tensors } from "./train.ts";

/** The models of the low-rank chain, by role. */
export type LrPart = "prep" | "postBw" | "prepBw" | "read" | "augF" | "augA" | "pass" | "fwd" | "adjoint" | "decay";
export const LR_PARTS: readonly LrPart[] = ["prep", "postBw", "prepBw", "read", "augF", "augA", "pass", "fwd", "adjoint", "decay"];
export type LrForm = "sequential" | "scan" | "chunked";
/**
 * The form each part runs in: the chunk transitions chunked, the rest (the per-chunk readouts included)
 * sequential. The decay adjoint too: its WGSL scan form (scan/tile) took 272 s on lavapipe at T = 48
 * (0.4 s at T = 24; B = 2, H = 2, K = 5, eight inputs), not investigated; sequentially it is B H K lanes of
 * additions.
 */
export const LR_FORMS: Record<LrPart, LrForm> = { prep: "sequential", postBw: "sequential", prepBw: "sequential", read: "sequential", augF: "chunked", augA: "chunked", pass: "sequential", fwd: "sequential", adjoint: "sequential", decay: "sequential" };
/** Micro-steps per folded chunk of the generated classes' low-rank chain. */
export const LR_CHUNK = 64;

/** ChainNames' model, state, layout, decay and prep/post names; its own timeline and readouts. */
export interface LrChainNames extends Pick<ChainNames, "model" | "state" | "stateInit" | "heads" | "key" | "value" | "decay" | "prepOutputs" | "prepBw" | "postBw"> {
  /** Input pairs, low-rank pairs and readouts per micro-step of the timeline. */
  P: number;
  E: number;
  R: number;
  /** The form's micro-steps in order: how many times each runs per token (a loop's extent), its prep outputs. */
  steps: { count: number; ld?: { name: string; perKey: boolean }; lowRank: { u: string; w: string }[]; inputs: { k: string; v: string }[] }[];
  readouts: { q: string; y: string; after: number }[];
}

/** Runs one model of the chain: `dims` for the generated models, undefined for prep/post (the model's dims). Inputs it does not declare are to be dropped by the runner. */
export type LrRun = (part: LrPart, dims: Record<string, number> | undefined, inputs: Tensors, initialState: Tensors | undefined, batch: number, time: number) => Promise<{ outputs: Tensors; finalState: Tensors }>;

/** Gradients of the forward's inputs, params and the matrix state's initial value through the low-rank chain; `chunk`: micro-steps per folded chunk. */
export async function lowRankChainBackward(n: LrChainNames, run: LrRun, x: ChainProblem, chunk: number): Promise<Gradients> {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`chunk ${chunk}: a chunk is a positive number of micro-steps`);
  const { batch: B, time: T, stateShape, alloc } = x;
  // sAt: S[b, heads of h, i, j] in the model's layout; toCanon: a state in canonical [B, H, K, V]
  const { H, K, V, nS, at: sAt, canon: toCanon } = stateLayout(n, stateShape, B, alloc);
  const KV = K + V;
  const cdims = { H, K, V };

  // the timeline: micro-step 0 is the identity (a readout after 0 micro-steps of token 0 reads S_0), token t's micro-steps are 1 + t N + ...
  const base: number[] = [];
  let N = 0;
  for (const s of n.steps) { base.push(N); N += s.count; }
  const L = T * N + 1;
  const C = Math.min(chunk, L);
  const nC = Math.ceil(L / C);
  const Lp = nC * C;
  const LW = n.decay === "key" ? K : 1;
  const at = (b: number, m: number, h: number, w: number) => ((b * Lp + m) * H + h) * w;
  const line = (w: number) => alloc(B * Lp * H * w);
  /** Reversed timeline (tau = L - 1 - m) of a forward one, read `shift` micro-steps later (zero past the end). */
  const reversed = (a: FloatArray, w: number, shift = 0) => {
    const out = line(w);
    for (let b = 0; b < B; b++) for (let m = 0; m < L; m++) if (m + shift < L) out.set(a.subarray(at(b, m + shift, 0, w), at(b, m + shift + 1, 0, w)), at(b, L - 1 - m, 0, w));
    return out;
  };

  const prep = (await run("prep", undefined, x.given, undefined, B, T)).outputs;
  const tok = (name: string) => prep[name].length / (B * T);
  /** Prep output `name` of token t, loop index c, head h (length len). */
  const pOff = (name: string, b: number, t: number, c: number, h: number, len: number) => (b * T + t) * tok(name) + (c * H + h) * len;
  /** Visit every micro-step of every token: (b, t, step, loop index, timeline index). */
  const each = (f: (b: number, t: number, s: number, c: number, m: number) => void) => {
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) n.steps.forEach((st, s) => { for (let c = 0; c < st.count; c++) f(b, t, s, c, 1 + t * N + base[s] + c); });
  };
  const gather = (pick: (s: number) => string | undefined, w: number) => {
    const out = line(w);
    each((b, t, s, c, m) => {
      const name = pick(s);
      if (name) for (let h = 0; h < H; h++) out.set(prep[name].subarray(pOff(name, b, t, c, h, w), pOff(name, b, t, c, h, w) + w), at(b, m, h, w));
    });
    return out;
  };
  const fwd: Tensors = {};
  if (n.decay !== "none") {
    const ld = line(LW);
    each((b, t, s, c, m) => {
      const d = n.steps[s].ld;
      if (d) for (let h = 0; h < H; h++) for (let i = 0; i < LW; i++) ld[at(b, m, h, LW) + i] = prep[d.name][pOff(d.name, b, t, c, h, d.perKey ? K : 1) + (d.perKey ? i : 0)];
    });
    fwd.x_ld = ld;
  }
  for (let e = 0; e < n.E; e++) { fwd[`x_u${e}`] = gather((s) => n.steps[s].lowRank[e]?.u, K); fwd[`x_w${e}`] = gather((s) => n.steps[s].lowRank[e]?.w, K); }
  for (let p = 0; p < n.P; p++) { fwd[`x_k${p}`] = gather((s) => n.steps[s].inputs[p]?.k, K); fwd[`x_v${p}`] = gather((s) => n.steps[s].inputs[p]?.v, V); }
  /** Readout r of token t reads the state after micro-step t N + (the micro-steps of the form's first `after` steps). */
  const readAt = (t: number, r: number) => t * N + (n.readouts[r].after < n.steps.length ? base[n.readouts[r].after] : N);
  n.readouts.forEach((ro, r) => {
    const q = line(K);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) q.set(prep[ro.q].subarray(pOff(ro.q, b, t, 0, h, K), pOff(ro.q, b, t, 0, h, K) + K), at(b, readAt(t, r), h, K));
    fwd[`x_q${r}`] = q;
  });

  // chunk start states of a timeline: the chunk transitions [A | B] (aug, folded, from [I | 0]), then the pass over chunks
  const augInit = () => {
    const s = alloc(B * nC * H * K * KV);
    for (let row = 0; row < B * nC * H; row++) for (let i = 0; i < K; i++) s[(row * K + i) * KV + i] = 1;
    return s;
  };
  const augValues = (v: FloatArray) => {
    const out = alloc(B * Lp * H * KV);
    for (let r = 0; r < B * Lp * H; r++) out.set(v.subarray(r * V, (r + 1) * V), r * KV + K);
    return out;
  };
  const chunkStates = async (part: "augF" | "augA", inputs: Tensors, pairs: number, S0: FloatArray) => {
    const ins: Tensors = { ...inputs, x_n: line(K) };
    for (let p = 0; p < pairs; p++) ins[`x_v${p}`] = augValues(inputs[`x_v${p}`]);
    const fin = (await run(part, { H, K, V: KV }, ins, { S: augInit() }, B * nC, C)).finalState.S;
    const A = alloc(B * nC * H * K * K), Bc = alloc(B * nC * H * K * V);
    for (let row = 0; row < B * nC * H; row++) for (let i = 0; i < K; i++) {
      const o = (row * K + i) * KV;
      A.set(fin.subarray(o, o + K), (row * K + i) * K);
      Bc.set(fin.subarray(o + K, o + KV), (row * K + i) * V);
    }
    const r = await run("pass", cdims, { x_A: A, x_B: Bc }, { S: S0 }, B, nC);
    return { starts: r.outputs.o_S, last: r.finalState.S };
  };

  // forward: the chunk start states, then per chunk y and the low-rank reads r; post's backward (dy)
  const S0 = toCanon(x.initialState ?? alloc(B * nS).fill(n.stateInit));
  const Sc = await chunkStates("augF", fwd, n.P, S0);
  const core = (await run("read", cdims, fwd, { S: Sc.starts }, B * nC, C)).outputs;
  const postIn: Tensors = { ...x.given };
  n.readouts.forEach((ro, r) => {
    const y = alloc(B * T * H * V);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) y.set(core[`o_y${r}`].subarray(at(b, readAt(t, r), 0, V), at(b, readAt(t, r) + 1, 0, V)), (b * T + t) * H * V);
    postIn[ro.y] = y;
  });
  for (const o of x.outputs) postIn[n.postBw.outputBar[o.name]] = x.cotOutputs?.[o.name] ?? alloc(B * T * o.size);
  const postG = (await run("postBw", undefined, postIn, undefined, B, T)).outputs;
  n.readouts.forEach((ro, r) => {
    const dy = line(V), src = postG[n.postBw.inputBar[ro.y]];
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) dy.set(src.subarray((b * T + t) * H * V, (b * T + t + 1) * H * V), at(b, readAt(t, r), 0, V));
    fwd[`x_dy${r}`] = dy;
  });

  // the adjoint on the reversed timeline: step tau = L - 1 - m takes G_{m+1} to G_m (decay and swapped low-rank pair of step m + 1, the readouts at m)
  const adj: Tensors = {};
  if (fwd.x_ld) adj.x_ld = reversed(fwd.x_ld, LW, 1);
  for (let e = 0; e < n.E; e++) {
    adj[`x_u${e}`] = reversed(fwd[`x_w${e}`], K, 1);
    adj[`x_w${e}`] = reversed(fwd[`x_u${e}`], K, 1);
    adj[`x_uq${e}`] = reversed(fwd[`x_u${e}`], K);
    adj[`x_rz${e}`] = reversed(core[`o_r${e}`], V);
  }
  for (let r = 0; r < n.R; r++) { adj[`x_k${r}`] = reversed(fwd[`x_q${r}`], K); adj[`x_v${r}`] = reversed(fwd[`x_dy${r}`], V); }
  for (let p = 0; p < n.P; p++) { adj[`x_kq${p}`] = reversed(fwd[`x_k${p}`], K); adj[`x_vz${p}`] = reversed(fwd[`x_v${p}`], V); }
  const dS = toCanon(x.cotState);
  const Gc = await chunkStates("augA", adj, n.R, dS);
  const ad = (await run("adjoint", cdims, adj, { S: Gc.starts }, B * nC, C)).outputs;

  // the forward again per chunk from its start state: dq = S dy, dw = S_{s-1} a (a: the adjoint's low-rank reads, back in forward time)
  const fwd2: Tensors = { ...fwd };
  for (let e = 0; e < n.E; e++) fwd2[`x_a${e}`] = reversed(ad[`o_a${e}`], V);
  const fw = (await run("fwd", cdims, fwd2, { S: Sc.starts }, B * nC, C)).outputs;

  // the log decays' adjoint: a reverse cumulative sum from <dS, S_N>
  let dld: FloatArray | undefined;
  if (n.decay !== "none") {
    const a0 = alloc(B * H * LW);
    for (let r = 0; r < B * H * K; r++) for (let j = 0; j < V; j++) a0[n.decay === "key" ? r : Math.floor(r / K)] += dS[r * V + j] * Sc.last[r * V + j];
    const dIn: Tensors = {};
    for (let r = 0; r < n.R; r++) { dIn[`x_q${r}`] = adj[`x_k${r}`]; dIn[`x_dq${r}`] = reversed(fw[`o_dq${r}`], K); }
    for (let p = 0; p < n.P; p++) { dIn[`x_k${p}`] = adj[`x_kq${p}`]; dIn[`x_dk${p}`] = ad[`o_dk${p}`]; }
    for (let e = 0; e < n.E; e++) {
      dIn[`x_u${e}`] = adj[`x_uq${e}`]; dIn[`x_du${e}`] = ad[`o_du${e}`];
      dIn[`x_w${e}`] = reversed(fwd[`x_w${e}`], K, 1); dIn[`x_dw${e}`] = reversed(fw[`o_dw${e}`], K, 1);
    }
    dld = (await run("decay", { H, K }, dIn, { a: a0 }, B, Lp)).outputs.o_dld;
  }

  // the adjoints of prep's outputs, from the timeline (tau = L - 1 - m for the adjoint's and the decay's)
  const bars: Tensors = {};
  for (const o of n.prepOutputs) bars[o] = alloc(prep[o].length);
  const put = (name: string, b: number, t: number, c: number, src: FloatArray, o: number, w: number) => {
    for (let h = 0; h < H; h++) { const d = pOff(name, b, t, c, h, w); for (let i = 0; i < w; i++) bars[name][d + i] += src[o + h * w + i]; }
  };
  each((b, t, s, c, m) => {
    const st = n.steps[s], tau = L - 1 - m;
    st.inputs.forEach((p, i) => { put(p.k, b, t, c, ad[`o_dk${i}`], at(b, tau, 0, K), K); put(p.v, b, t, c, ad[`o_dv${i}`], at(b, tau, 0, V), V); });
    st.lowRank.forEach((p, e) => { put(p.u, b, t, c, ad[`o_du${e}`], at(b, tau, 0, K), K); put(p.w, b, t, c, fw[`o_dw${e}`], at(b, m, 0, K), K); });
    if (st.ld && dld) for (let h = 0; h < H; h++) {
      const d = pOff(st.ld.name, b, t, c, h, st.ld.perKey ? K : 1), o = at(b, tau, h, LW);
      if (st.ld.perKey) for (let i = 0; i < K; i++) bars[st.ld.name][d + i] += dld[o + i];
      else for (let i = 0; i < LW; i++) bars[st.ld.name][d] += dld[o + i];
    }
  });
  n.readouts.forEach((ro, r) => { for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) put(ro.q, b, t, 0, fw[`o_dq${r}`], at(b, readAt(t, r), 0, K), K); });

  // dS_0: the adjoint after the identity step, in the model's layout
  const dS0 = alloc(B * nS);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < K; i++) for (let j = 0; j < V; j++) dS0[sAt(b, h, i, j)] = Gc.last[((b * H + h) * K + i) * V + j];

  const prepIn: Tensors = { ...x.given };
  for (const o of n.prepOutputs) prepIn[n.prepBw.outputBar[o]] = bars[o];
  const prepG = (await run("prepBw", undefined, prepIn, undefined, B, T)).outputs;
  return sumPieces(x, [{ out: postG, names: n.postBw }, { out: prepG, names: n.prepBw }], { [n.state]: dS0 });
}
