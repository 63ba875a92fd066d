/**
 * The WGSL chunked core, written once for every model of the matrix canonical form: two kernels that
 * call only the generated per-model functions of chunked-model.ts (row loaders, decays, state, post).
 *
 * Per chunk of F row slots (C = F / RTP tokens; RTP = rows per token padded to a power of two), the
 * algorithm of compiler/forms/chunk-rows-ref.ts:
 *   A  [f,f'] = w_f . D x_f'  (row f' strictly before f's micro-step)   Aq [t,f'] = q_t . D x_f'
 *   T  = (I - diag(beta) A)^-1  (forward substitution in workgroup memory; rows with low-rank reads only)
 *   U0 = T alpha V,  M = T diag(beta) W~        (S0-independent: phase A, every chunk in parallel)
 *   Z  = U0 + M S0,  y = Q~ S0 + Aq Z,  S' = exp(G_n) S0 + X~^T Z        (the walk, chunk after chunk)
 * Decays live in log space relative to the chunk start: a scalar decay as G per row (before and after its
 * micro-step) and per token, a per-key decay as G per token and key for 16 keys at a time; every factor
 * is exp(G_a - G_b) with a >= b (<= 1), so nothing overflows and nothing is divided by an underflowed
 * product. Per-key factors are taken pairwise inside the key loop of A and Aq (exact for any decay).
 *
 * Kernels:
 *   phase A  one workgroup (256 threads) per batch x head x chunk; key tiles of 16 through workgroup
 *            memory, A and Aq accumulated in registers (F*F/256 entries a thread); writes the record
 *            Q~ [C,K], X~ [F,K], Aq [C,F], M [F,K] (low rank), U0 [F,V], exp(G_n) [K] per chunk.
 *   walk     one workgroup per batch x head x BV values: the state tile [K, BV] stays in workgroup
 *            memory while the chunks' records stream by, 32 keys (or rows) at a time staged through
 *            workgroup memory with coalesced loads; y goes through the model's post.
 * No subgroup operations: a walk variant that broadcast record rows with subgroupShuffle took a median 1.07x
 * the time of the same walk without it on the H100 (bench/RESULTS.md) and was removed.
 */

import type { SizeExpr } from "../../../runtime/plan.ts";

export interface ChunkCoreCfg {
  /** Row slots per chunk (64 or 32). */
  F: number;
  /** Row slots per token (1, 2, 4). */
  RTP: number;
  decay: 0 | 1 | 2;
  lr: boolean;
  /** Value tile of the walk. */
  BV: number;
}

export const CHUNK_WG = 256;
export const KT = 16;
/** Row stride of phase A's pass-1 tiles: one float longer than the key tile, so the rows a warp reads in the A / Aq
 * loop fall in different banks (with 16, 8 rows shared 2 banks; on the H100 the padding made phase A 1.1-2.3x faster,
 * RWKV-7's unchanged: bench/RESULTS.md). */
const KP = KT + 1;

/** Columns of the U0 / M products' tiles: F x UW = 2048 floats, 8 columns a thread (64 at F = 32, 32 at F = 64). */
function uTile(F: number): number {
  const UW = 2048 / F;
  if (!Number.isInteger(UW / 8) || (F * UW) / 8 !== CHUNK_WG) throw new Error(`chunked phase A: no U0 tile for F = ${F}`);
  return UW;
}

/** Workgroup floats of phase A: max(pass-1 tiles, T (rows F + 1 apart) + one UW-wide tile) plus the per-row arrays. */
export function phaseAShared(c: ChunkCoreCfg): number {
  const C = c.F / c.RTP;
  const p2 = c.lr ? c.F * (c.F + 1) + c.F * uTile(c.F) : c.F * KT;
  return Math.max(pass1Floats(c), p2) + 4 * c.F + 2 * C + 4;
}

/** Workgroup floats of phase A's pass-1 tiles: X~ (and W~) rows, Q~ rows, per-key log decays (C + 1 rows). */
function pass1Floats(c: ChunkCoreCfg): number {
  const C = c.F / c.RTP;
  return c.F * KP * (c.lr ? 2 : 1) + C * KP + (c.decay === 2 ? (C + 1) * KP : 0);
}


/** Record buffers between the kernels: rec_a = [Q~ | X~ | Aq | exp(G_n)], rec_b = [M | U0] per chunk (two buffers keep the binding count low). */
export const RECORDS = ["rec_a", "rec_b"] as const;

/** Floats per chunk of each record buffer, at key size K and value size V (size expressions). */
export function recordFloats(c: ChunkCoreCfg, K: SizeExpr, V: SizeExpr): Record<(typeof RECORDS)[number], SizeExpr> {
  const C = c.F / c.RTP;
  return {
    rec_a: ["+", ["*", C + c.F, K], C * c.F, K],
    rec_b: ["*", c.F, c.lr ? ["+", K, V] : V],
  };
}

export function phaseAMain(c: ChunkCoreCfg): string {
  const F = c.F, RTP = c.RTP, C = F / RTP;
  const TPR = CHUNK_WG / F;
  const NPT = F / TPR;
  // pass-1 tiles (X~, W~, Q~ rows, per-key log decays G), rows KP floats apart
  const OX = 0;
  const OW = F * KP;
  const OQ = c.lr ? 2 * F * KP : F * KP;
  const OG = OQ + C * KP;
  // after pass 1: T at OT (rows FS = F + 1 floats apart: the U0 / M products read 4-8 rows at one column a warp),
  // then the U0 / M tiles (F x UW) at OT2
  const FS = F + 1;
  const UW = uTile(F);
  const UG = UW / 8;
  /** Row uf of T times the staged tile (columns ug + UG i, i < 8, in registers), stored where the column is < bound
   *  (the U0 and M products share it). */
  const zs = [0, 1, 2, 3, 4, 5, 6, 7];
  const triangularRows = (bound: string, base: string) =>
    zs.map((i) => `    var z${i} = 0.0;\n`).join("") +
    "    for (var k = 0u; k <= uf; k++) {\n" +
    `      let tk = sm[${OT}u + uf * ${FS}u + k];\n` +
    zs.map((i) => `      z${i} += tk * sm[${OT2}u + k * ${UW}u + ug + ${UG * i}u];\n`).join("") +
    "    }\n" +
    zs.map((i) => `    if (j0 + ug + ${UG * i}u < ${bound}) { rec_b[${base} + j0 + ug + ${UG * i}u] = z${i}; }\n`).join("");
  const OT = 0;
  const OT2 = c.lr ? F * FS : 0;
  const smAll = Math.max(pass1Floats(c), c.lr ? OT2 + F * UW : F * KT);
  const d1 = c.decay === 1, d2 = c.decay === 2, lr = c.lr;
  return `
const F: u32 = ${F}u;
const RTP: u32 = ${RTP}u;
const C: u32 = ${C}u;
const KT: u32 = ${KT}u;
const KP: u32 = ${KP}u;
const TPR: u32 = ${TPR}u;
const NPT: u32 = ${NPT}u;
var<workgroup> sm: array<f32, ${smAll}>;
var<workgroup> sGr: array<f32, ${F}>;
var<workgroup> sGw: array<f32, ${F}>;
var<workgroup> sBeta: array<f32, ${F}>;
var<workgroup> sMic: array<i32, ${F}>;
var<workgroup> sTot: array<f32, ${C}>;
var<workgroup> sGq: array<f32, ${C}>;
var<workgroup> sGn: array<f32, 4>;

@compute @workgroup_size(${CHUNK_WG})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let Kd = seqc_K();
  let Vd = seqc_V();
  let H = seqc_H();
  // record of a chunk: rec_a = [Q~ (C x K) | X~ (F x K) | Aq (C x F) | exp(G_n) (K)], rec_b = [M (F x K, low rank) | U0 (F x V)]
  let RA = C * Kd + F * Kd + C * F + Kd;
  let OXR = C * Kd;
  let OAR = OXR + F * Kd;
  let OER = OAR + C * F;
  let RB = ${lr ? "F * Kd + " : ""}F * Vd;
  let OUR = ${lr ? "F * Kd" : "0u"};
  let NC = (u.T + C - 1u) / C;
  if (wg >= u.B * H * NC) { return; }
  let c = wg % NC;
  let bh = wg / NC;
  let h = bh % H;
  let b = bh / H;
  let t0 = c * C;
  let cb = bh * NC + c;
  let ra = seqc_readout_at();
  let qoff = select(0u, 1u, ra > 0u);
  // rows: micro-step (-1: padding or past T) and beta
  for (var f = tid; f < F; f += ${CHUNK_WG}u) {
    let t = t0 + f / RTP;
    var m = -1i;
    var be = 0.0;
    if (t < u.T) {
      let d = seqc_row(f % RTP);
      m = d.z;
${lr ? `      if (d.x >= 0i) { be = ld_beta(b, t, h, f % RTP); }` : ""}
    }
    sMic[f] = m;
    sBeta[f] = be;
  }
${d1 ? `  // scalar decays: per token its total and the part its readout sees
  let MS = seqc_micro_count();
  for (var tl = tid; tl < C; tl += ${CHUNK_WG}u) {
    let t = t0 + tl;
    var tot = 0.0;
    var qp = 0.0;
    if (t < u.T) {
      for (var m = 0u; m < MS; m++) {
        let l = ld_scalar(b, t, h, m);
        if (m < ra) { qp += l; }
        tot += l;
      }
    }
    sTot[tl] = tot;
    sGq[tl] = qp;
  }
  workgroupBarrier();
  if (tid == 0u) {
    var g = 0.0;
    for (var tl = 0u; tl < C; tl++) { let x = sTot[tl]; sTot[tl] = g; g += x; }
    sGn[0] = g;
  }
  workgroupBarrier();
  for (var f = tid; f < F; f += ${CHUNK_WG}u) {
    let tl = f / RTP;
    let m = sMic[f];
    var pre = sTot[tl];
    var own = 0.0;
    if (m >= 0i) {
      for (var k = 0u; k < u32(m); k++) { pre += ld_scalar(b, t0 + tl, h, k); }
      own = ld_scalar(b, t0 + tl, h, u32(m));
    }
    sGr[f] = pre;
    sGw[f] = pre + own;
  }
  for (var tl = tid; tl < C; tl += ${CHUNK_WG}u) { sGq[tl] = sTot[tl] + sGq[tl]; }` : ""}
  workgroupBarrier();
  let fr = tid / TPR;
  let sub = tid % TPR;
  var acc: array<f32, ${NPT}>;
  var accq: array<f32, ${NPT}>;
  for (var m = 0u; m < NPT; m++) { acc[m] = 0.0; accq[m] = 0.0; }
  for (var i0 = 0u; i0 < Kd; i0 += KT) {
    for (var e = tid; e < F * KT; e += ${CHUNK_WG}u) {
      let f = e / KT;
      let i = i0 + e % KT;
      var x = 0.0;
      var w = 0.0;
      if (i < Kd && sMic[f] >= 0i) {
        x = ld_x(b, t0 + f / RTP, h, f % RTP, i);
${lr ? `        w = ld_w(b, t0 + f / RTP, h, f % RTP, i);` : ""}
      }
      sm[${OX}u + f * KP + e % KT] = x;
${lr ? `      sm[${OW}u + f * KP + e % KT] = w;` : ""}
    }
    for (var e = tid; e < C * KT; e += ${CHUNK_WG}u) {
      let tl = e / KT;
      let i = i0 + e % KT;
      let t = t0 + tl;
      var q = 0.0;
      var l = 0.0;
      if (i < Kd && t < u.T) {
        q = ld_q(b, t, h, i);
${d2 ? `        l = ld_key(b, t, h, i);` : ""}
      }
      sm[${OQ}u + tl * KP + e % KT] = q;
${d2 ? `      sm[${OG}u + (tl + 1u) * KP + e % KT] = l;` : ""}
    }
    workgroupBarrier();
${d2 ? `    // per-key log decays accumulated from the chunk start: row s = after s tokens
    if (tid < KT) {
      var g = 0.0;
      sm[${OG}u + tid] = 0.0;
      for (var s = 1u; s <= C; s++) { g += sm[${OG}u + s * KP + tid]; sm[${OG}u + s * KP + tid] = g; }
    }
    workgroupBarrier();` : ""}
    for (var ii = 0u; ii < KT; ii++) {
${lr ? `      let wv = sm[${OW}u + fr * KP + ii];` : ""}
      var qv = 0.0;
      if (fr < C) { qv = sm[${OQ}u + fr * KP + ii]; }
${d2 ? `      let gr = sm[${OG}u + (fr / RTP) * KP + ii];
      var gq = 0.0;
      if (fr < C) { gq = sm[${OG}u + (fr + qoff) * KP + ii]; }` : ""}
      for (var m = 0u; m < NPT; m++) {
        let f2 = sub + TPR * m;
        let x = sm[${OX}u + f2 * KP + ii];
${d2 ? `        let gw = sm[${OG}u + (f2 / RTP + 1u) * KP + ii];
${lr ? `        acc[m] += wv * x * exp(min(gr - gw, 0.0));` : ""}
        accq[m] += qv * x * exp(min(gq - gw, 0.0));` : `${lr ? `        acc[m] += wv * x;` : ""}
        accq[m] += qv * x;`}
      }
    }
    // this key tile of X~, Q~, beta W~ (M's slot; phase A multiplies it by T below) and exp(G_n)
    for (var e = tid; e < F * KT; e += ${CHUNK_WG}u) {
      let f = e / KT;
      let ii = e % KT;
      let i = i0 + ii;
      if (i < Kd) {
${d1 ? `        let ex = exp(sGn[0] - sGw[f]);
        let ew = exp(sGr[f]);` : d2 ? `        let ex = exp(sm[${OG}u + C * KP + ii] - sm[${OG}u + (f / RTP + 1u) * KP + ii]);
        let ew = exp(sm[${OG}u + (f / RTP) * KP + ii]);` : `        let ex = 1.0;
        let ew = 1.0;`}
        rec_a[cb * RA + OXR + f * Kd + i] = sm[${OX}u + f * KP + ii] * ex;
${lr ? `        rec_b[cb * RB + f * Kd + i] = sBeta[f] * sm[${OW}u + f * KP + ii] * ew;` : `        _ = ew;`}
      }
    }
    for (var e = tid; e < C * KT; e += ${CHUNK_WG}u) {
      let tl = e / KT;
      let ii = e % KT;
      let i = i0 + ii;
      if (i < Kd) {
${d1 ? `        let eq = exp(sGq[tl]);` : d2 ? `        let eq = exp(sm[${OG}u + (tl + qoff) * KP + ii]);` : `        let eq = 1.0;`}
        rec_a[cb * RA + tl * Kd + i] = sm[${OQ}u + tl * KP + ii] * eq;
      }
    }
    if (tid < KT && i0 + tid < Kd) {
${d1 ? `      rec_a[cb * RA + OER + i0 + tid] = exp(sGn[0]);` : d2 ? `      rec_a[cb * RA + OER + i0 + tid] = exp(sm[${OG}u + C * KP + tid]);` : `      rec_a[cb * RA + OER + i0 + tid] = 1.0;`}
    }
    workgroupBarrier();
  }
  // Aq: masked (the readout of token t sees rows of earlier tokens and its own rows before the readout)
  if (fr < C) {
    for (var m = 0u; m < NPT; m++) {
      let f2 = sub + TPR * m;
      let mf = sMic[f2];
      let tf = f2 / RTP;
      let vis = mf >= 0i && (tf < fr || (tf == fr && u32(mf) < ra));
${d1 ? `      let a = accq[m] * exp(min(sGq[fr] - sGw[f2], 0.0));` : `      let a = accq[m];`}
      rec_a[cb * RA + OAR + fr * F + f2] = select(0.0, a, vis);
    }
  }
${lr ? `  // N = diag(beta) A (strictly before in micro-step order), then T = (I - N)^-1 = I + N T by right-looking
  // substitution with T's rows in registers (thread: row fr, columns sub + TPR m as in the A loop): once row a is
  // final it goes to workgroup memory and every later row r takes N[r, a] T[a, :] (T[r, k] = N[r, k] +
  // sum over a in (k, r) of N[r, a] T[a, k]); one barrier a row and NPT multiply-adds a thread, where the
  // left-looking row-by-row form took two barriers a row and a dependent chain of up to F products. N sits
  // transposed in T's upper triangle (N[r, a] at (a, r), r > a), which the rows of T (columns <= a) never touch.
  for (var m = 0u; m < NPT; m++) {
    let f2 = sub + TPR * m;
    let m1 = sMic[fr];
    let m2 = sMic[f2];
    let t1 = fr / RTP;
    let t2 = f2 / RTP;
    let vis = m1 >= 0i && m2 >= 0i && (t2 < t1 || (t2 == t1 && m2 < m1));
${d1 ? `    let a = acc[m] * exp(min(sGr[fr] - sGw[f2], 0.0));` : `    let a = acc[m];`}
    acc[m] = select(0.0, sBeta[fr] * a, vis);
    if (f2 < fr) { sm[${OT}u + f2 * ${FS}u + fr] = acc[m]; }
  }
  for (var a = 0u; a < F; a++) {
    if (fr == a) {
      for (var m = 0u; m < NPT; m++) {
        let f2 = sub + TPR * m;
        if (f2 <= a) { sm[${OT}u + a * ${FS}u + f2] = select(acc[m], 1.0, f2 == a); }
      }
    }
    workgroupBarrier();
    if (fr > a) {
      let n = sm[${OT}u + a * ${FS}u + fr];
      for (var m = 0u; m < NPT; m++) {
        let f2 = sub + TPR * m;
        if (f2 < a) { acc[m] += n * sm[${OT}u + a * ${FS}u + f2]; }
      }
    }
  }` : ""}
${lr ? `  // U0 = T alpha V and M = T (diag(beta) W~), ${UW} columns at a time (thread: row uf, columns ug + ${UG} i, i < 8:
  // one T load feeds 8 multiply-adds; 16-column tiles took 2 values a thread with a dependent chain each)
  let uf = tid / ${UG}u;
  let ug = tid % ${UG}u;
  for (var j0 = 0u; j0 < Vd; j0 += ${UW}u) {
    for (var e = tid; e < ${F * UW}u; e += ${CHUNK_WG}u) {
      let f = e / ${UW}u;
      let j = j0 + e % ${UW}u;
      var v = 0.0;
      if (j < Vd && sMic[f] >= 0i) { v = ld_v(b, t0 + f / RTP, h, f % RTP, j); }
      sm[${OT2}u + e] = v;
    }
    workgroupBarrier();
${triangularRows("Vd", "cb * RB + OUR + uf * Vd")}    workgroupBarrier();
  }
` : `  // U0 = alpha V (no low rank: T = I), 16 values at a time as before 8a14955 (the 64-column tiles of the low-rank
  // products took 1.03-1.07x longer for these models on the H100: bench/RESULTS.md)
  for (var j0 = 0u; j0 < Vd; j0 += KT) {
    for (var e = tid; e < F * KT; e += ${CHUNK_WG}u) {
      let f = e / KT;
      let j = j0 + e % KT;
      var v = 0.0;
      if (j < Vd && sMic[f] >= 0i) { v = ld_v(b, t0 + f / RTP, h, f % RTP, j); }
      sm[${OT2}u + e] = v;
    }
    workgroupBarrier();
    for (var e = tid; e < F * KT; e += ${CHUNK_WG}u) {
      let j = j0 + e % KT;
      if (j < Vd) { rec_b[cb * RB + OUR + (e / KT) * Vd + j] = sm[${OT2}u + e]; }
    }
    workgroupBarrier();
  }
`}
${lr ? `  storageBarrier();
  workgroupBarrier();
  for (var j0 = 0u; j0 < Kd; j0 += ${UW}u) {
    for (var e = tid; e < ${F * UW}u; e += ${CHUNK_WG}u) {
      let f = e / ${UW}u;
      let i = j0 + e % ${UW}u;
      var w = 0.0;
      if (i < Kd) { w = rec_b[cb * RB + f * Kd + i]; }
      sm[${OT2}u + e] = w;
    }
    workgroupBarrier();
${triangularRows("Kd", "cb * RB + uf * Kd")}    workgroupBarrier();
  }` : ""}
}
`;
}

export function walkMain(c: ChunkCoreCfg): string {
  const F = c.F, RTP = c.RTP, C = F / RTP, BV = c.BV, lr = c.lr;
  const W = CHUNK_WG;
  const ST = 32; // keys (or rows of Z) staged per tile
  const NZ = Math.max(1, (F * BV) / W);
  const NY = Math.max(1, Math.ceil((C * BV) / W));
  const NS = Math.max(1, (ST * BV) / W);
  const rows = Math.max(F, C);
  // stage a [rows x ST] slab of a record (row r, column k0 + kk) into sT with coalesced loads
  const stage = (nRows: number, addr: (r: string, k: string) => string, len: string) => `      for (var e = tid; e < ${nRows * ST}u; e += ${W}u) {
        let r = e / ${ST}u;
        let k = k0 + e % ${ST}u;
        var x = 0.0;
        if (k < ${len}) { x = ${addr("r", "k")}; }
        sT[e] = x;
      }
      workgroupBarrier();`;
  return `
const F: u32 = ${F}u;
const RTP: u32 = ${RTP}u;
const C: u32 = ${C}u;
const BV: u32 = ${BV}u;
var<workgroup> sS: array<f32, SEQC_K * ${BV}u>;
var<workgroup> sZ: array<f32, ${F * BV}>;
var<workgroup> sT: array<f32, ${rows * ST}>;

@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let Kd = seqc_K();
  let Vd = seqc_V();
  let H = seqc_H();
  // record of a chunk: rec_a = [Q~ (C x K) | X~ (F x K) | Aq (C x F) | exp(G_n) (K)], rec_b = [M (F x K, low rank) | U0 (F x V)]
  let RA = C * Kd + F * Kd + C * F + Kd;
  let OXR = C * Kd;
  let OAR = OXR + F * Kd;
  let OER = OAR + C * F;
  let RB = ${lr ? "F * Kd + " : ""}F * Vd;
  let OUR = ${lr ? "F * Kd" : "0u"};
  let NC = (u.T + C - 1u) / C;
  let nj = (Vd + BV - 1u) / BV;
  if (wg >= u.B * H * nj) { return; }
  let jt = wg % nj;
  let bh = wg / nj;
  let h = bh % H;
  let b = bh / H;
  let j0 = jt * BV;
  let jj = tid % BV;
  let j = j0 + jj;
  for (var e = tid; e < Kd * BV; e += ${W}u) {
    var s = 0.0;
    if (j0 + e % BV < Vd) { s = s_load(b, h, e / BV, j0 + e % BV); }
    sS[e] = s;
  }
  workgroupBarrier();
  var z: array<f32, ${NZ}>;
  var y: array<f32, ${NY}>;
  var sn: array<f32, ${NS}>;
  for (var c = 0u; c < NC; c++) {
    let cb = bh * NC + c;
    let t0 = c * C;
    // Z = U0 + M S0 (thread: rows tid / BV + m * ${W / BV} of Z, value jj)
    for (var m = 0u; m < ${NZ}u; m++) {
      let f = tid / BV + m * ${W / BV}u;
      var u0 = 0.0;
      if (f < F && j < Vd) { u0 = rec_b[cb * RB + OUR + f * Vd + j]; }
      z[m] = u0;
    }
${lr ? `    for (var k0 = 0u; k0 < Kd; k0 += ${ST}u) {
${stage(F, (r, k) => `rec_b[cb * RB + ${r} * Kd + ${k}]`, "Kd")}
      let kn = min(${ST}u, Kd - k0);
      for (var m = 0u; m < ${NZ}u; m++) {
        let f = tid / BV + m * ${W / BV}u;
        var acc = 0.0;
        if (f < F) { for (var kk = 0u; kk < kn; kk++) { acc += sT[f * ${ST}u + kk] * sS[(k0 + kk) * BV + jj]; } }
        z[m] += acc;
      }
      workgroupBarrier();
    }` : ""}
    for (var m = 0u; m < ${NZ}u; m++) {
      let f = tid / BV + m * ${W / BV}u;
      if (f < F) { sZ[f * BV + jj] = z[m]; }
    }
    // y = Q~ S0 + Aq Z (thread: tokens tid / BV + m * ${W / BV}, value jj)
    for (var m = 0u; m < ${NY}u; m++) { y[m] = 0.0; }
    for (var k0 = 0u; k0 < Kd; k0 += ${ST}u) {
${stage(C, (r, k) => `rec_a[cb * RA + ${r} * Kd + ${k}]`, "Kd")}
      let kn = min(${ST}u, Kd - k0);
      for (var m = 0u; m < ${NY}u; m++) {
        let tl = tid / BV + m * ${W / BV}u;
        var acc = 0.0;
        if (tl < C) { for (var kk = 0u; kk < kn; kk++) { acc += sT[tl * ${ST}u + kk] * sS[(k0 + kk) * BV + jj]; } }
        y[m] += acc;
      }
      workgroupBarrier();
    }
    for (var k0 = 0u; k0 < F; k0 += ${ST}u) {
${stage(C, (r, k) => `rec_a[cb * RA + OAR + ${r} * F + ${k}]`, "F")}
      let kn = min(${ST}u, F - k0);
      for (var m = 0u; m < ${NY}u; m++) {
        let tl = tid / BV + m * ${W / BV}u;
        var acc = 0.0;
        // Aq is zero past the token's own rows
        let fe = min(kn, select(0u, (tl + 1u) * RTP - k0, (tl + 1u) * RTP > k0));
        if (tl < C) { for (var kk = 0u; kk < fe; kk++) { acc += sT[tl * ${ST}u + kk] * sZ[(k0 + kk) * BV + jj]; } }
        y[m] += acc;
      }
      workgroupBarrier();
    }
    for (var m = 0u; m < ${NY}u; m++) {
      let tl = tid / BV + m * ${W / BV}u;
      if (tl < C && t0 + tl < u.T && j < Vd) { post(b, t0 + tl, h, j, y[m]); }
    }
    // S' = exp(G_n) S0 + X~^T Z, ${ST} keys at a time (thread: keys tid / BV + m * ${W / BV} of the tile, value jj)
    for (var k0 = 0u; k0 < Kd; k0 += ${ST}u) {
      for (var e = tid; e < ${F * ST}u; e += ${W}u) {
        let r = e / ${ST}u;
        let k = k0 + e % ${ST}u;
        var x = 0.0;
        if (k < Kd) { x = rec_a[cb * RA + OXR + r * Kd + k]; }
        sT[e] = x;
      }
      workgroupBarrier();
      for (var m = 0u; m < ${NS}u; m++) {
        let ii = tid / BV + m * ${W / BV}u;
        let i = k0 + ii;
        if (i < Kd) {
          var s = rec_a[cb * RA + OER + i] * sS[i * BV + jj];
          for (var f = 0u; f < F; f++) { s += sT[f * ${ST}u + ii] * sZ[f * BV + jj]; }
          sS[i * BV + jj] = s;
        }
      }
      workgroupBarrier();
    }
  }
  for (var e = tid; e < Kd * BV; e += ${W}u) {
    if (j0 + e % BV < Vd) { s_store(b, h, e / BV, j0 + e % BV, sS[e]); }
  }
}
`;
}
