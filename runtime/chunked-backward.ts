/**
 * The chunked backward's glue between its models (the derivation and the models are
 * compiler/grad/chunked-chain.ts's; this runs them): prep, the forward core, post's backward, the
 * transposed core (dq), the adjoint and transposed adjoint in reversed time (dv, dk), the log-decay
 * adjoint scan and prep's backward, with the time reversals, the decay shift by one, dS_0 = D_1 G_1 and
 * the sums of the pieces in between. One implementation for both callers: gradients(..., { backward:
 * "chunked" }) (float64, any executor) and the generated classes' backward() (float32, the class's
 * backend). The glue runs on the host: every piece's inputs and outputs come back between the models
 * (reversals, shifts and sums are O(B T (H K + H V)) host loops; the GPU work is the models).
 */
import { reverseTime, type FloatArray, type Gradients, type Tensors } from "./train.ts";
import { frameBar, stabBackward, stabForward } from "./chunked-backward-stab.ts";

/** The models of the chain, by role ("stab", "stabBw": a stabilised form's stabiliser prep and its backward, stateless). */
export type ChainPart = "prep" | "postBw" | "prepBw" | "core" | "coreT" | "adjoint" | "adjointT" | "decay" | "stab" | "stabBw";
/** The parts every chain may have; a stabilised form's chain also STAB_PARTS (ALL_CHAIN_PARTS: both). */
export const CHAIN_PARTS: readonly ChainPart[] = ["prep", "postBw", "prepBw", "core", "coreT", "adjoint", "adjointT", "decay"];
export const STAB_PARTS: readonly ChainPart[] = ["stab", "stabBw"];
export const ALL_CHAIN_PARTS: readonly ChainPart[] = [...CHAIN_PARTS, ...STAB_PARTS];
/** The parts that are the matrix core (forward, transposed, adjoint, transposed adjoint): they run in the chunked form. */
export function isChainCore(part: ChainPart): boolean {
  return part === "core" || part === "coreT" || part === "adjoint" || part === "adjointT";
}

/** Names of a backward model's tensors per forward tensor (compiler/grad/backward.ts's Backward). */
export interface ChainBarNames {
  outputBar: Record<string, string>;
  inputBar: Record<string, string>;
  paramBar: Record<string, string>;
}

/** What ties the chain to the model: its matrix form's layout and names (serialisable: the classes embed it). */
export interface ChainNames {
  model: string;
  /** The matrix state and its declared initial value (every element). */
  state: string;
  stateInit: number;
  /** State axis positions: heads (in order), key, value. */
  heads: number[];
  key: number;
  value: number;
  decay: "none" | "scalar" | "key";
  /** Prep outputs: the update's key/value pairs, the readouts' queries (and the post inputs they feed), the log decay. */
  pairs: { k: string; v: string }[];
  readouts: { q: string; y: string }[];
  ld?: string;
  /** Prep's outputs, and the names of prep's and post's backward models. */
  prepOutputs: string[];
  prepBw: ChainBarNames;
  postBw: ChainBarNames;
  /** Value columns (normalisers: states [heads..., key] carried as value columns V0, V0 + 1, ... of the core). */
  columns?: ChainColumns;
  /** A max-plus stabiliser (mLSTM's m): its pass and adjoint run in the glue (chunked-backward-stab.ts). */
  stab?: ChainStab;
}

/** A declared initial value as the names carry it through JSON (<Model>.grad.cuda.json, <Model>.torch.json): a finite
 * number, or "Infinity" / "-Infinity" / "NaN" (JSON.stringify writes null for those). Read with Number(v). */
export type DeclaredValue = number | "Infinity" | "-Infinity" | "NaN";
/** `v` as the names carry it (DeclaredValue). */
export function declaredValue(v: number): DeclaredValue {
  return Number.isFinite(v) ? v : (String(v) as DeclaredValue);
}

export interface ChainColumns {
  /** The column states and their declared initial values. */
  states: string[];
  inits: DeclaredValue[];
  /** Per pair, the prep outputs [heads] of its value in each column (absent: 0); per readout, the post inputs [heads] of its column reads. */
  pairs: (string[] | undefined)[];
  readouts: string[][];
}

export interface ChainStab {
  state: string;
  /** Its declared initial value (mLSTM's m: -inf, "-Infinity" here). */
  init: DeclaredValue;
  /** The stabiliser prep's outputs (m_t = max(a_t + m_{t-1}, b_t)) and prep's / post's pseudo inputs m_t, m_{t-1}. */
  a: string;
  b: string;
  mT: string;
  mPrev: string;
  /** The names of the stabiliser prep's backward model. */
  stabBw: ChainBarNames;
  /** m enters the core only as its frame (stabFrameOnly): m_t's adjoint from the core is frameBar's -<y, dy>, not prep's. */
  frame?: boolean;
}

/**
 * A per-key decay's transposed cores on one dedicated kernel (the CUDA rows readout: runtime/cuda/rows-readout.ts), in
 * place of the transposed-core plans: out_r,t = S_t c_r,t for S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T from S0
 * (canonical [B, H, K, V]); ld, a_p [B, T, H*K], b_p, c_r [B, T, H*V]; returns out_r [B, T, H*K] in the readouts' order.
 */
export type ChainRows = (part: "coreT" | "adjointT", ld: FloatArray, pairs: [FloatArray, FloatArray][], readouts: FloatArray[], S0: FloatArray, sizes: { B: number; T: number; H: number; K: number; V: number }) => Promise<FloatArray[]>;

/** Whether chainBackward runs a chain's transposed cores on ChainRows where given: a per-key log decay, no value columns, no stabiliser. */
export function chainRowsApply(n: Pick<ChainNames, "decay" | "ld" | "columns" | "stab">): boolean {
  return n.decay === "key" && !!n.ld && !n.columns?.states.length && !n.stab;
}

/** Runs one model of the chain: `dims` for the core models ({ H, K, V }; the decay scan { H, K }), undefined for prep/post (the model's dims). Inputs it does not declare are to be dropped by the runner. */
export type ChainRun = (part: ChainPart, dims: Record<string, number> | undefined, inputs: Tensors, initialState: Tensors | undefined, batch: number, time: number) => Promise<{ outputs: Tensors; finalState: Tensors }>;

export interface ChainProblem {
  batch: number;
  time: number;
  /** The state's sizes at this instance's dims. */
  stateShape: number[];
  /** Per-step sizes of the forward's inputs, params and outputs. */
  inputs: { name: string; size: number }[];
  params: { name: string; size: number }[];
  outputs: { name: string; size: number }[];
  /** The forward's inputs, [B, T, ...] each. */
  given: Tensors;
  /** The matrix state's initial value [B, ...] (absent: the declared one). */
  initialState?: FloatArray;
  /** dL/d(output) [B, T, ...] (absent: 0) and dL/d(final state) [B, ...] (absent: 0). */
  cotOutputs?: Record<string, FloatArray | undefined>;
  cotState?: FloatArray;
  /** The other states' initial values [B, ...] and final-state cotangents (value columns, stabiliser; absent: declared / 0). */
  initialStates?: Record<string, FloatArray | undefined>;
  cotStates?: Record<string, FloatArray | undefined>;
  alloc: (n: number) => FloatArray;
}

/** Sizes of the canonical core: heads flattened to H, key K, value V. */
export function chainDims(n: Pick<ChainNames, "heads" | "key" | "value">, stateShape: number[]): { H: number; K: number; V: number } {
  return { H: n.heads.reduce((a, p) => a * stateShape[p], 1), K: stateShape[n.key], V: stateShape[n.value] };
}

/** Offset of S[heads of h, 0, 0] in one batch row of a state of sizes `shape` and `strides`: h is the head axes `heads` flattened, the last fastest. */
export function headOffset(heads: number[], shape: number[], strides: number[], h: number): number {
  let rem = h, off = 0;
  for (let a = heads.length - 1; a >= 0; a--) {
    const size = shape[heads[a]];
    off += (rem % size) * strides[heads[a]];
    rem = Math.floor(rem / size);
  }
  return off;
}

/**
 * The model's state layout beside the canonical core: its sizes (chainDims), `nS` elements per batch row,
 * `at` the offset of S[b, heads of h, i, j], and `canon` a state [B, ...] in canonical [B, H, K, V]
 * (transposed: [B, H, V, K]; absent: zeros).
 */
export function stateLayout(n: Pick<ChainNames, "heads" | "key" | "value">, stateShape: number[], B: number, alloc: (n: number) => FloatArray) {
  const { H, K, V } = chainDims(n, stateShape);
  const nS = stateShape.reduce((a, b) => a * b, 1);
  const strides = stateShape.map((_, p) => stateShape.slice(p + 1).reduce((a, b) => a * b, 1));
  const at = (b: number, h: number, i: number, j: number) => b * nS + headOffset(n.heads, stateShape, strides, h) + i * strides[n.key] + j * strides[n.value];
  const canon = (all: FloatArray | undefined, transpose = false) => {
    const out = alloc(B * H * K * V);
    if (all) for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < K; i++) for (let j = 0; j < V; j++)
      out[(b * H + h) * K * V + (transpose ? j * K + i : i * V + j)] = all[at(b, h, i, j)];
    return out;
  };
  return { H, K, V, nS, at, canon };
}

/**
 * Gradients of the forward's inputs, params and the states' initial values through the chain. A form with value
 * columns runs the cores at value extent V0 + NC (each pair's value vector with its column values appended, each
 * readout's cotangent with its column reads'); a stabilised form first runs the stabiliser (its prep, part "stab";
 * the pass on the host), hands prep and post m_t and m_{t-1}, starts the cores from the scaled initial state and
 * ends with the stabiliser's adjoint and its prep's backward (chunked-backward-stab.ts); the stabiliser's prep ("stab": inputs -> a, b)
 * and its backward ("stabBw") run through `run` like prep (stateless, the model's dims).
 * `rows`: where chainRowsApply(n), the transposed cores (dq = S dy; dk = G v in reversed time) run on it instead of
 * their plans ("coreT", "adjointT" are then not run).
 */
export async function chainBackward(n: ChainNames, run: ChainRun, x: ChainProblem, rows?: ChainRows): Promise<Gradients> {
  const { batch: B, time: T, stateShape, alloc } = x;
  // canon: the model's state layout -> canonical [B, H, K, V] or [B, H, V, K]
  const { H, K, V: V0, nS, at, canon: canonS } = stateLayout(n, stateShape, B, alloc);
  const cols = n.columns;
  const NC = cols?.states.length ?? 0;
  const V = V0 + NC;
  const cdims = { H, K, V };
  const rev = (a: FloatArray, inner: number) => reverseTime(a, B, T, inner);
  const perKey = n.decay === "key";
  const L = perKey ? H * K : H; // log decays per token
  const S0 = x.initialState ?? alloc(B * nS).fill(n.stateInit);
  const dS = x.cotState;
  const C0 = cols?.states.map((c, k) => x.initialStates?.[c] ?? alloc(B * H * K).fill(Number(cols.inits[k]))) ?? [];
  const dC = cols?.states.map((c) => x.cotStates?.[c]) ?? [];
  /** State and columns in canonical [B, H, K, V] (V = V0 + NC; transposed [B, H, V, K]), each (b, h) slice times exp(logScale) where given. */
  const canon = (all: FloatArray | undefined, colAll: (FloatArray | undefined)[], transpose = false, logScale?: Float64Array) => {
    if (!NC && !logScale) return canonS(all, transpose);
    const out = alloc(B * H * K * V);
    const put = (b: number, h: number, i: number, j: number, v: number) => (out[(b * H + h) * K * V + (transpose ? j * K + i : i * V + j)] = logScale ? Math.exp(logScale[b * H + h]) * v : v);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < K; i++) {
      if (all) for (let j = 0; j < V0; j++) put(b, h, i, j, all[at(b, h, i, j)]);
      colAll.forEach((c, k) => { if (c) put(b, h, i, V0 + k, c[(b * H + h) * K + i]); });
    }
    return out;
  };
  /** [B, T, H, V0] values with NC column values [B, T, H] each appended: [B, T, H, V]. */
  const withCols = (v: FloatArray, cs: (FloatArray | undefined)[]) => {
    if (!NC) return v;
    const out = alloc(B * T * H * V);
    for (let r = 0; r < B * T * H; r++) {
      out.set(v.subarray(r * V0, (r + 1) * V0), r * V);
      cs.forEach((c, k) => { if (c) out[r * V + V0 + k] = c[r]; });
    }
    return out;
  };
  /** Split [B, T, H, V] into the V0 values and the NC columns. */
  const splitCols = (y: FloatArray): { v: FloatArray; c: FloatArray[] } => {
    if (!NC) return { v: y, c: [] };
    const v = alloc(B * T * H * V0), c = [...Array(NC)].map(() => alloc(B * T * H));
    for (let r = 0; r < B * T * H; r++) {
      v.set(y.subarray(r * V, r * V + V0), r * V0);
      for (let k = 0; k < NC; k++) c[k][r] = y[r * V + V0 + k];
    }
    return { v, c };
  };

  // the stabiliser: a, b from its prep, the max-plus pass on the host; m_t and m_{t-1} are prep's and post's inputs
  const stab = n.stab;
  const ab = stab ? (await run("stab", undefined, x.given, undefined, B, T)).outputs : undefined;
  const m0 = stab ? x.initialStates?.[stab.state] ?? alloc(B * H).fill(Number(stab.init)) : undefined;
  const sf = stab ? stabForward(ab![stab.a], ab![stab.b], m0!, B, T, H) : undefined;
  const given: Tensors = stab ? { ...x.given, [stab.mT]: sf!.mt, [stab.mPrev]: sf!.mp } : x.given;

  const prep = (await run("prep", undefined, given, undefined, B, T)).outputs;
  const ld = n.ld ? prep[n.ld] : undefined;
  const kv: Tensors = {};
  n.pairs.forEach((p, i) => { kv[`x_k${i}`] = prep[p.k]; kv[`x_v${i}`] = withCols(prep[p.v], cols?.pairs[i]?.map((c) => prep[c]) ?? []); });
  const qs: Tensors = {};
  n.readouts.forEach((r, i) => (qs[`x_q${i}`] = prep[r.q]));
  const withLd = (t: Tensors, l?: FloatArray) => (l ? { ...t, x_ld: l } : t);
  const Sinit = canon(S0, C0, false, sf?.logScale);

  // forward core: y for post, S_N for the decay adjoint's start
  const core = await run("core", cdims, withLd({ ...kv, ...qs }, ld), { S: Sinit }, B, T);

  // post's backward: dL/dy and post's own contributions
  const postIn: Tensors = { ...given };
  n.readouts.forEach((r, i) => {
    const y = splitCols(core.outputs[`o_y${i}`]);
    postIn[r.y] = y.v;
    cols?.readouts[i].forEach((c, k) => (postIn[c] = y.c[k]));
  });
  for (const o of x.outputs) postIn[n.postBw.outputBar[o.name]] = x.cotOutputs?.[o.name] ?? alloc(B * T * o.size);
  const postG = (await run("postBw", undefined, postIn, undefined, B, T)).outputs;
  const dys: Tensors = {};
  n.readouts.forEach((r, i) => (dys[`x_dy${i}`] = withCols(postG[n.postBw.inputBar[r.y]], cols?.readouts[i].map((c) => postG[n.postBw.inputBar[c]]) ?? [])));

  // dq = S dy (the transposed core, forward time); a per-key decay: S's key rows are heads of their own, S's layout
  // (rows: the kernel with the pairs (k, v) read out by dy, from S's untransposed layout)
  const onRows = rows && chainRowsApply(n) ? rows : undefined;
  const sizes = { B, T, H, K, V };
  const coreT = onRows
    ? { outputs: Object.fromEntries((await onRows("coreT", ld!, n.pairs.map((_, i): [FloatArray, FloatArray] => [kv[`x_k${i}`], kv[`x_v${i}`]]), n.readouts.map((_, i) => dys[`x_dy${i}`]), Sinit, sizes)).map((o, i) => [`o_dq${i}`, o])) as Tensors }
    : await run("coreT", cdims, withLd({ ...kv, ...dys }, ld), { S: canon(S0, C0, !perKey, sf?.logScale) }, B, T);

  // the adjoint in reversed time: token t's decay shifted to t - 1 (D_{t+1} takes G_{t+1} to t; none after the last)
  let ldn: FloatArray | undefined;
  if (ld) {
    const shifted = alloc(ld.length);
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) shifted.set(ld.subarray((b * T + t + 1) * L, (b * T + t + 2) * L), (b * T + t) * L);
    ldn = rev(shifted, L);
  }
  // key vectors (q, k) are [H, K] per token, value vectors (dy, v) [H, V]
  const rIn: Tensors = {};
  for (const [k, a] of Object.entries({ ...qs, ...kv, ...dys })) rIn[k] = rev(a, k.startsWith("x_q") || k.startsWith("x_k") ? H * K : H * V);
  const adj = await run("adjoint", cdims, withLd(rIn, ldn), { G: canon(dS, dC, false) }, B, T);
  // (rows: the pairs (q, dy) read out by v, in reversed time)
  const adjT = onRows
    ? { outputs: Object.fromEntries((await onRows("adjointT", ldn!, n.readouts.map((_, i): [FloatArray, FloatArray] => [rIn[`x_q${i}`], rIn[`x_dy${i}`]]), n.pairs.map((_, i) => rIn[`x_v${i}`]), canon(dS, dC, false), sizes)).map((o, i) => [`o_dk${i}`, o])) as Tensors }
    : await run("adjointT", cdims, withLd(rIn, ldn), { G: canon(dS, dC, !perKey) }, B, T);

  // the adjoints of prep's outputs
  const prepBars: Tensors = {};
  const add = (name: string, g: FloatArray) => { const o = prepBars[name]; if (o) for (let i = 0; i < o.length; i++) o[i] += g[i]; else prepBars[name] = g; };
  n.pairs.forEach((p, i) => {
    prepBars[p.k] = rev(adjT.outputs[`o_dk${i}`], H * K);
    const dv = splitCols(rev(adj.outputs[`o_dv${i}`], H * V));
    add(p.v, dv.v);
    cols?.pairs[i]?.forEach((c, k) => add(c, dv.c[k]));
  });
  n.readouts.forEach((r, i) => (prepBars[r.q] = coreT.outputs[`o_dq${i}`]));
  if (n.ld) {
    // a_T = <dS_N, S_N> per head (per key row), then the reverse cumulative sum of q.dq - k.dk
    const a0 = alloc(B * L);
    const SN = core.finalState.S;
    if (dS || dC.some((c) => c)) { const dSc = canon(dS, dC, false); for (let r = 0; r < B * H * K; r++) for (let j = 0; j < V; j++) a0[perKey ? r : Math.floor(r / K)] += dSc[r * V + j] * SN[r * V + j]; }
    const dIn: Tensors = {};
    n.readouts.forEach((_, i) => { dIn[`x_q${i}`] = rIn[`x_q${i}`]; dIn[`x_dq${i}`] = rev(coreT.outputs[`o_dq${i}`], H * K); });
    n.pairs.forEach((_, i) => { dIn[`x_k${i}`] = rIn[`x_k${i}`]; dIn[`x_dk${i}`] = adjT.outputs[`o_dk${i}`]; });
    const dec = await run("decay", { H, K }, dIn, { a: a0 }, B, T);
    prepBars[n.ld] = rev(dec.outputs.o_dld, L);
  }
  // dS_0 = D_1 G_1: the adjoint's final state through the first token's decay, back in the model's layout
  // (stabilised: times the initial state's scale; <dS^, S^> is the initial m's adjoint through that scale)
  const dS0 = alloc(B * nS);
  const dC0 = C0.map(() => alloc(B * H * K));
  const scaleBar = new Float64Array(B * H);
  const Gf = adj.finalState.G;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const f = sf ? Math.exp(sf.logScale[b * H + h]) : 1;
    for (let i = 0; i < K; i++) {
      const d = ld ? Math.exp(ld[b * T * L + (perKey ? h * K + i : h)]) : 1;
      for (let j = 0; j < V; j++) {
        const o = ((b * H + h) * K + i) * V + j;
        const g = d * Gf[o];
        if (sf) scaleBar[b * H + h] += g * Sinit[o];
        if (j < V0) dS0[at(b, h, i, j)] = f * g;
        else dC0[j - V0][(b * H + h) * K + i] = f * g;
      }
    }
  }

  // prep's backward
  const prepIn: Tensors = { ...given };
  for (const o of n.prepOutputs) prepIn[n.prepBw.outputBar[o]] = prepBars[o] ?? alloc(prep[o].length);
  const prepG = (await run("prepBw", undefined, prepIn, undefined, B, T)).outputs;

  const pieces = [{ out: postG, names: n.postBw }, { out: prepG, names: n.prepBw }];
  const initial: Tensors = { [n.state]: dS0 };
  cols?.states.forEach((c, k) => (initial[c] = dC0[k]));
  if (stab) {
    // the stabiliser's adjoint, then its prep's backward
    const fb = stab.frame
      ? frameBar(n.readouts.map((_, i) => core.outputs[`o_y${i}`]), n.readouts.map((_, i) => dys[`x_dy${i}`]), core.finalState.S, dS || dC.some((c) => c) ? canon(dS, dC, false) : undefined, B, T, H, K, V)
      : undefined;
    const sb = stabBackward(ab![stab.a], ab![stab.b], m0!, sf!, {
      mT: [postG[n.postBw.inputBar[stab.mT]], fb ?? prepG[n.prepBw.inputBar[stab.mT]]],
      mPrev: fb ? undefined : prepG[n.prepBw.inputBar[stab.mPrev]],
      final: x.cotStates?.[stab.state],
      scale: scaleBar,
    }, B, T, H);
    const stabIn: Tensors = { ...x.given, [stab.stabBw.outputBar[stab.a]]: sb.aBar, [stab.stabBw.outputBar[stab.b]]: sb.bBar };
    pieces.push({ out: (await run("stabBw", undefined, stabIn, undefined, B, T)).outputs, names: stab.stabBw });
    initial[stab.state] = Float64Array.from(sb.initial);
  }
  return sumPieces(x, pieces, initial);
}

/** The pieces' input adjoints added, param adjoints (per step [B, T, ...]) summed over batch and time. */
export function sumPieces(x: Pick<ChainProblem, "batch" | "time" | "inputs" | "params" | "alloc">, pieces: { out: Tensors; names: Pick<ChainBarNames, "inputBar" | "paramBar"> }[], initialState: Tensors): Gradients {
  const grads: Gradients = { inputs: {}, params: {}, initialState };
  for (const t of x.inputs) {
    const g = x.alloc(x.batch * x.time * t.size);
    for (const { out, names } of pieces) { const src = out[names.inputBar[t.name]]; if (src) for (let i = 0; i < g.length; i++) g[i] += src[i]; }
    grads.inputs[t.name] = g;
  }
  for (const p of x.params) {
    const g = x.alloc(p.size);
    for (const { out, names } of pieces) { const src = out[names.paramBar[p.name]]; if (src) for (let i = 0; i < src.length; i++) g[i % p.size] += src[i]; }
    grads.params[p.name] = g;
  }
  return grads;
}
