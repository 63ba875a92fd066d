/**
 * Phase A of the WGSL chunked core for models without low-rank reads (T = I, so U0 = alpha V is a copy and only Aq is a
 * product): Simple GLA, GLA, Mamba-2, RetNet-like models. It writes the same record as chunked-core.ts's phaseAMain
 * (rec_a = [Q~ (C x K) | X~ (F x K) | Aq (C x F) | exp(G_n) (K)], rec_b = [U0 (F x V)]); the walk and readouts are
 * unchanged. Against that kernel (which serves the low-rank models):
 *   - U0 is copied straight from the inputs to the record, four values a thread in flight, with no workgroup memory and
 *     no barrier (before: 16-value tiles through workgroup memory, two barriers a tile);
 *   - key tiles of 32 (rows 33 floats apart: the rows a warp reads in the Aq loop fall in distinct banks), half the
 *     tiles and barriers of 16-key tiles, and each row's 32 keys one 128-byte segment of the record;
 *   - per-key log decays (GLA) summed over the chunk's tokens by every thread (32 keys x 8 segments of tokens, the
 *     segments' totals added after one barrier), where one thread per key walked all C tokens;
 *   - per-key decays' factors exp(G_q - G_w) only for rows of the token or earlier (the others are masked out), about
 *     half of C F K;
 *   - scalar decays' prefix over the tokens read by each row's thread (C values, broadcast reads) instead of one thread's
 *     serial pass and a barrier.
 * Per chunk, floors: ((2 C + F) K + F V) floats read, ((C + F) K + C F + K + F V) written; 2 C F K multiply-adds.
 */
import { CHUNK_WG, type ChunkCoreCfg } from "./chunked-core.ts";

/** Keys per tile, and the row stride of the staged tiles (one float longer: no bank conflicts in the Aq loop). */
const KT2 = 32;
const KP2 = KT2 + 1;
/** Token segments of the per-key decay sum: CHUNK_WG threads = KT2 keys x NSEG segments. */
const NSEG = CHUNK_WG / KT2;

/** Workgroup floats: staged X~ rows, Q~ rows, per-key log decays (C + 1 rows), segment totals, per-row arrays. */
export function phaseANoLrShared(c: ChunkCoreCfg): number {
  const C = c.F / c.RTP;
  const tiles = c.F * KP2 + C * KP2 + (c.decay === 2 ? (C + 1) * KP2 + CHUNK_WG : 0);
  return tiles + 3 * c.F + 2 * C + 4;
}

export function phaseANoLrMain(c: ChunkCoreCfg): string {
  if (c.lr) throw new Error("phaseANoLrMain: the model has low-rank reads (use chunked-core.ts's phase A)");
  const F = c.F, RTP = c.RTP, C = F / RTP;
  const TPR = CHUNK_WG / F;
  const NPT = F / TPR;
  const L = C / NSEG;
  if (!Number.isInteger(L) || L < 1) throw new Error(`chunked phase A (no low rank): ${C} tokens a chunk do not split into ${NSEG} segments`);
  const OX = 0;
  const OQ = F * KP2;
  const OG = OQ + C * KP2;
  const d1 = c.decay === 1, d2 = c.decay === 2;
  const smAll = OG + (d2 ? (C + 1) * KP2 : 0);
  const W = CHUNK_WG;
  return `
const F: u32 = ${F}u;
const RTP: u32 = ${RTP}u;
const C: u32 = ${C}u;
var<workgroup> sm: array<f32, ${smAll}>;
var<workgroup> sGw: array<f32, ${F}>;
var<workgroup> sEx: array<f32, ${F}>;
var<workgroup> sMic: array<i32, ${F}>;
var<workgroup> sTot: array<f32, ${C}>;
var<workgroup> sGq: array<f32, ${C}>;
var<workgroup> sGn: array<f32, 4>;
${d2 ? `var<workgroup> sSeg: array<f32, ${W}>;` : ""}

@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let Kd = seqc_K();
  let Vd = seqc_V();
  let H = seqc_H();
  // record of a chunk: rec_a = [Q~ (C x K) | X~ (F x K) | Aq (C x F) | exp(G_n) (K)], rec_b = [U0 (F x V)]
  let RA = C * Kd + F * Kd + C * F + Kd;
  let OXR = C * Kd;
  let OAR = OXR + F * Kd;
  let OER = OAR + C * F;
  let RB = F * Vd;
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
  // rows: micro-step (-1: padding or past T)
  for (var f = tid; f < F; f += ${W}u) {
    let t = t0 + f / RTP;
    var m = -1i;
    if (t < u.T) { m = seqc_row(f % RTP).z; }
    sMic[f] = m;
  }
${d1 ? `  // scalar decays: per token its total and the part its readout sees
  let MS = seqc_micro_count();
  for (var tl = tid; tl < C; tl += ${W}u) {
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
  }` : ""}
  workgroupBarrier();
  // U0 = alpha V: a copy from the inputs, 4 values a thread in flight (no workgroup memory, no barrier)
  let nU = F * Vd;
  for (var e0 = tid; e0 < nU; e0 += ${4 * W}u) {
    var v0 = 0.0; var v1 = 0.0; var v2 = 0.0; var v3 = 0.0;
    let e1 = e0 + ${W}u; let e2 = e0 + ${2 * W}u; let e3 = e0 + ${3 * W}u;
    if (sMic[e0 / Vd] >= 0i) { v0 = ld_v(b, t0 + (e0 / Vd) / RTP, h, (e0 / Vd) % RTP, e0 % Vd); }
    if (e1 < nU && sMic[e1 / Vd] >= 0i) { v1 = ld_v(b, t0 + (e1 / Vd) / RTP, h, (e1 / Vd) % RTP, e1 % Vd); }
    if (e2 < nU && sMic[e2 / Vd] >= 0i) { v2 = ld_v(b, t0 + (e2 / Vd) / RTP, h, (e2 / Vd) % RTP, e2 % Vd); }
    if (e3 < nU && sMic[e3 / Vd] >= 0i) { v3 = ld_v(b, t0 + (e3 / Vd) / RTP, h, (e3 / Vd) % RTP, e3 % Vd); }
    rec_b[cb * RB + e0] = v0;
    if (e1 < nU) { rec_b[cb * RB + e1] = v1; }
    if (e2 < nU) { rec_b[cb * RB + e2] = v2; }
    if (e3 < nU) { rec_b[cb * RB + e3] = v3; }
  }
${d1 ? `  // log decays from the chunk start: each thread sums the token totals before its row's token (broadcast reads)
  for (var r = tid; r < F + C + 1u; r += ${W}u) {
    let tl = select(select(C, r - F, r < F + C), r / RTP, r < F);
    var pre = 0.0;
    for (var s = 0u; s < tl; s++) { pre += sTot[s]; }
    if (r < F) {
      let m = sMic[r];
      var own = 0.0;
      if (m >= 0i) {
        for (var k = 0u; k < u32(m); k++) { pre += ld_scalar(b, t0 + tl, h, k); }
        own = ld_scalar(b, t0 + tl, h, u32(m));
      }
      sGw[r] = pre + own;
    } else if (r < F + C) {
      sGq[tl] = pre + sGq[tl];
    } else {
      sGn[0] = pre;
    }
  }
  workgroupBarrier();
  for (var f = tid; f < F; f += ${W}u) { sEx[f] = exp(sGn[0] - sGw[f]); }` : ""}
  let fr = tid / ${TPR}u;
  let sub = tid % ${TPR}u;
  var accq: array<f32, ${NPT}>;
  for (var m = 0u; m < ${NPT}u; m++) { accq[m] = 0.0; }
  for (var i0 = 0u; i0 < Kd; i0 += ${KT2}u) {
    for (var e = tid; e < ${F * KT2}u; e += ${W}u) {
      let f = e / ${KT2}u;
      let i = i0 + e % ${KT2}u;
      var x = 0.0;
      if (i < Kd && sMic[f] >= 0i) { x = ld_x(b, t0 + f / RTP, h, f % RTP, i); }
      sm[${OX}u + f * ${KP2}u + e % ${KT2}u] = x;
    }
    for (var e = tid; e < ${C * KT2}u; e += ${W}u) {
      let tl = e / ${KT2}u;
      let i = i0 + e % ${KT2}u;
      let t = t0 + tl;
      var q = 0.0;
      var l = 0.0;
      if (i < Kd && t < u.T) {
        q = ld_q(b, t, h, i);
${d2 ? `        l = ld_key(b, t, h, i);` : ""}
      }
      sm[${OQ}u + tl * ${KP2}u + e % ${KT2}u] = q;
${d2 ? `      sm[${OG}u + (tl + 1u) * ${KP2}u + e % ${KT2}u] = l;` : ""}
    }
${d2 ? `    if (tid < ${KT2}u) { sm[${OG}u + tid] = 0.0; }` : ""}
    workgroupBarrier();
${d2 ? `    // per-key log decays from the chunk start (row s: after s tokens): thread = key kk x segment sg of ${L} tokens
    {
      let kk = tid % ${KT2}u;
      let sg = tid / ${KT2}u;
      var part: array<f32, ${L}>;
      var run = 0.0;
      for (var s = 0u; s < ${L}u; s++) { run += sm[${OG}u + (1u + sg * ${L}u + s) * ${KP2}u + kk]; part[s] = run; }
      sSeg[sg * ${KT2}u + kk] = run;
      workgroupBarrier();
      var off = 0.0;
      for (var s2 = 0u; s2 < sg; s2++) { off += sSeg[s2 * ${KT2}u + kk]; }
      for (var s = 0u; s < ${L}u; s++) { sm[${OG}u + (1u + sg * ${L}u + s) * ${KP2}u + kk] = part[s] + off; }
      workgroupBarrier();
    }` : ""}
    // this key tile of X~, Q~ and exp(G_n) to the record (each row's ${KT2} keys one segment)
    for (var e = tid; e < ${F * KT2}u; e += ${W}u) {
      let f = e / ${KT2}u;
      let ii = e % ${KT2}u;
      let i = i0 + ii;
      if (i < Kd) {
${d1 ? `        let ex = sEx[f];` : d2 ? `        let ex = exp(sm[${OG}u + C * ${KP2}u + ii] - sm[${OG}u + (f / RTP + 1u) * ${KP2}u + ii]);` : `        let ex = 1.0;`}
        rec_a[cb * RA + OXR + f * Kd + i] = sm[${OX}u + f * ${KP2}u + ii] * ex;
      }
    }
    for (var e = tid; e < ${C * KT2}u; e += ${W}u) {
      let tl = e / ${KT2}u;
      let ii = e % ${KT2}u;
      let i = i0 + ii;
      if (i < Kd) {
${d1 ? `        let eq = exp(sGq[tl]);` : d2 ? `        let eq = exp(sm[${OG}u + (tl + qoff) * ${KP2}u + ii]);` : `        let eq = 1.0;`}
        rec_a[cb * RA + tl * Kd + i] = sm[${OQ}u + tl * ${KP2}u + ii] * eq;
      }
    }
    if (tid < ${KT2}u && i0 + tid < Kd) {
${d1 ? `      rec_a[cb * RA + OER + i0 + tid] = exp(sGn[0]);` : d2 ? `      rec_a[cb * RA + OER + i0 + tid] = exp(sm[${OG}u + C * ${KP2}u + tid]);` : `      rec_a[cb * RA + OER + i0 + tid] = 1.0;`}
    }
    // Aq += Q~ X~^T over this tile (thread: token fr, rows sub + ${TPR} m)
    if (fr < C) {
      for (var ii = 0u; ii < ${KT2}u; ii++) {
        let qv = sm[${OQ}u + fr * ${KP2}u + ii];
${d2 ? `        let gq = sm[${OG}u + (fr + qoff) * ${KP2}u + ii];` : ""}
        for (var m = 0u; m < ${NPT}u; m++) {
          let f2 = sub + ${TPR}u * m;
          let x = sm[${OX}u + f2 * ${KP2}u + ii];
${d2 ? `          // rows of later tokens are masked out below: their exp skipped (whole warps skip where none of theirs is visible)
          if (f2 / RTP <= fr) {
            let gw = sm[${OG}u + (f2 / RTP + 1u) * ${KP2}u + ii];
            accq[m] += qv * x * exp(min(gq - gw, 0.0));
          }` : `          accq[m] += qv * x;`}
        }
      }
    }
    workgroupBarrier();
  }
  // Aq: masked (the readout of token t sees rows of earlier tokens and its own rows before the readout)
  if (fr < C) {
    for (var m = 0u; m < ${NPT}u; m++) {
      let f2 = sub + ${TPR}u * m;
      let mf = sMic[f2];
      let tf = f2 / RTP;
      let vis = mf >= 0i && (tf < fr || (tf == fr && u32(mf) < ra));
${d1 ? `      let a = accq[m] * exp(min(sGq[fr] - sGw[f2], 0.0));` : `      let a = accq[m];`}
      rec_a[cb * RA + OAR + fr * F + f2] = select(0.0, a, vis);
    }
  }
}
`;
}
