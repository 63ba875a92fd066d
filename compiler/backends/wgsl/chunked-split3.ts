/**
 * The WGSL chunked form's split3 kernels (after phase A of chunked-core.ts, which writes every chunk's record):
 *
 *   state walk  one workgroup per batch x head x value tile (x key tile without low rank), chunk after chunk;
 *               it carries only the state and stores each chunk's start state S0 (scratch `s0`):
 *                 low rank:  Z = U0 + M S0 (Z stored over U0 in the record), S' = exp(G_n) S0 + X~^T Z
 *                 otherwise: Z = U0, S' = exp(G_n) S0 + X~^T U0 (keys independent: the key axis is tiled too)
 *               Each thread owns NI keys x 1 value of the state in registers; the next chunk's record rows are
 *               loaded into registers while the current chunk is applied (2 barriers per chunk with low rank,
 *               1 without: its X~/U0 tiles are double-buffered in workgroup memory).
 *   readout     every chunk x value tile in parallel: y = Q~ S0 + Aq Z, then the model's post (this file: a thread per
 *               value and a few tokens; chunked-readout-tiled.ts: 4 x 4 register micro-tiles, the s3t variants).
 * The same idea as the CUDA core's split3 (compiler/backends/cuda/chunked-core.ts): the serial walk does only
 * the S0-dependent state update, the outputs' matmuls run over all chunks at once.
 */
import type { ChunkCoreCfg } from "./chunked-core.ts";

export interface Split3Cfg extends ChunkCoreCfg {
  /** Key tile of the state walk; with low rank the padded key size (every key in one workgroup). */
  BK: number;
}

export const S3_WG = 256;
/** Value tile of the readout and its key (and row) tile. */
export const RO_BV = 32;
const RO_KT = 32;

/** The record layout of chunked-core.ts, as WGSL lets. */
function recordLets(c: ChunkCoreCfg): string {
  return `  let RA = C * Kd + F * Kd + C * F + Kd;
  let OAR = C * Kd + F * Kd;
  let OXR = C * Kd;
  let OER = OAR + C * F;
  let RB = ${c.lr ? "F * Kd + " : ""}F * Vd;
  let OUR = ${c.lr ? "F * Kd" : "0u"};
  let NC = (u.T + C - 1u) / C;`;
}

/** Workgroup floats of the state walk. */
export function walk3Shared(c: Split3Cfg): number {
  return c.lr ? 2 * c.F * c.BK + c.BV * (c.BK + 4) + c.F * c.BV : 2 * (c.F * c.BK + c.F * c.BV);
}

/** Thread layout of the state walk; undefined where the tile does not divide into whole vec4 columns. */
export function walk3Layout(c: Split3Cfg): { NG: number; NI: number; NL: number; NZ: number } | undefined {
  const NG = S3_WG / c.BV;
  const NI = (c.BK * c.BV) / S3_WG;
  const NL = (c.F * c.BK) / (4 * S3_WG);
  const NZ = (c.F * c.BV) / S3_WG;
  if (!Number.isInteger(NG) || NI < 4 || NI % 4 !== 0 || !Number.isInteger(NL) || NL < 1 || !Number.isInteger(NZ) || NZ < 1) return undefined;
  return { NG, NI, NL, NZ };
}

export function walk3Main(c: Split3Cfg): string {
  const L = walk3Layout(c);
  if (!L) throw new Error(`split3 walk: tile F=${c.F} BK=${c.BK} BV=${c.BV} does not fit ${S3_WG} threads`);
  const { NG, NI, NL, NZ } = L;
  const F = c.F, C = F / c.RTP, BK = c.BK, BV = c.BV, NI4 = NI / 4, PK = BK + 4;
  const W = S3_WG;
  // loads of a [F x BK] slab (row stride Kd, keys from k0) into NL vec4 registers: element 4 * (tid + W n)
  const slab = (dst: string, buf: string, base: string) => `for (var n = 0u; n < ${NL}u; n++) {
      let e = 4u * (tid + ${W}u * n);
      let f = e / ${BK}u;
      let k = k0 + e % ${BK}u;
      var v = vec4<f32>(0.0);
      for (var q = 0u; q < 4u; q++) { if (k + q < Kd) { v[q] = ${buf}[${base} + f * Kd + k + q]; } }
      ${dst}[n] = v;
    }`;
  const decay = (dst: string, cb: string) => `for (var r = 0u; r < ${NI}u; r++) {
      var e = 0.0;
      if (i0 + r < Kd) { e = rec_a[${cb} * RA + OER + i0 + r]; }
      ${dst}[r] = e;
    }`;
  const header = `
const F: u32 = ${F}u;
const C: u32 = ${C}u;
const BV: u32 = ${BV}u;
const BK: u32 = ${BK}u;
`;
  const prologue = `@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let Kd = seqc_K();
  let Vd = seqc_V();
  let H = seqc_H();
${recordLets(c)}
  let nj = (Vd + BV - 1u) / BV;
  let ni = (Kd + BK - 1u) / BK;
  if (wg >= u.B * H * nj * ni) { return; }
  let it = wg % ni;
  let jt = (wg / ni) % nj;
  let bh = wg / (ni * nj);
  let h = bh % H;
  let b = bh / H;
  let k0 = it * BK;
  // this thread's part of the state: keys i0 .. i0 + ${NI - 1}, value j
  let jj = tid % BV;
  let g = tid / BV;
  let j = jt * BV + jj;
  let i0 = k0 + g * ${NI}u;
  let jok = j < Vd;
  var s: array<f32, ${NI}>;
  for (var r = 0u; r < ${NI}u; r++) {
    var v = 0.0;
    if (i0 + r < Kd && jok) { v = s_load(b, h, i0 + r, j); }
    s[r] = v;
  }
  var px: array<vec4<f32>, ${NL}>;
  var pe: array<f32, ${NI}>;
  var ec: array<f32, ${NI}>;`;
  const storeS0 = `    for (var r = 0u; r < ${NI}u; r++) {
      if (i0 + r < Kd && jok) { s0[(cb * Kd + i0 + r) * Vd + j] = s[r]; }
    }`;
  // S' = exp(G_n) S + X~^T Z over this thread's keys: X~ rows from sX (vec4 columns), Z from sZ
  const update = (xo: string, zo: string) => `    for (var r = 0u; r < ${NI}u; r++) { s[r] = ec[r] * s[r]; }
    for (var f = 0u; f < F; f++) {
      let z = sZ[${zo}f * BV + jj];
      for (var q = 0u; q < ${NI4}u; q++) {
        let x = sX[${xo}f * ${BK / 4}u + g * ${NI4}u + q];
        s[4u * q] += x.x * z;
        s[4u * q + 1u] += x.y * z;
        s[4u * q + 2u] += x.z * z;
        s[4u * q + 3u] += x.w * z;
      }
    }`;
  if (c.lr) {
    return `${header}
var<workgroup> sX: array<vec4<f32>, ${(F * BK) / 4}>;
var<workgroup> sM: array<vec4<f32>, ${(F * BK) / 4}>;
var<workgroup> sST: array<vec4<f32>, ${(BV * PK) / 4}>;
var<workgroup> sZ: array<f32, ${F * BV}>;

${prologue}
  var pm: array<vec4<f32>, ${NL}>;
  var pu: array<f32, ${NZ}>;
  var uc: array<f32, ${NZ}>;
  // chunk 0's record: M to workgroup memory, X~, U0 and exp(G_n) to registers; the state, transposed, to sST
  {
    let cb = bh * NC;
    ${slab("pm", "rec_b", "cb * RB")}
    ${slab("px", "rec_a", "cb * RA + OXR")}
    ${decay("pe", "cb")}
    for (var m = 0u; m < ${NZ}u; m++) {
      let f = g + ${NG}u * m;
      var v = 0.0;
      if (jok) { v = rec_b[cb * RB + OUR + f * Vd + j]; }
      pu[m] = v;
    }
  }
  for (var n = 0u; n < ${NL}u; n++) { sM[tid + ${W}u * n] = pm[n]; }
  for (var q = 0u; q < ${NI4}u; q++) { sST[jj * ${PK / 4}u + g * ${NI4}u + q] = vec4<f32>(s[4u * q], s[4u * q + 1u], s[4u * q + 2u], s[4u * q + 3u]); }
  workgroupBarrier();
  for (var c = 0u; c < NC; c++) {
    let cb = bh * NC + c;
${storeS0}
    // this chunk's X~ to workgroup memory (read after the next barrier); its U0 and decays out of the prefetch
    for (var n = 0u; n < ${NL}u; n++) { sX[tid + ${W}u * n] = px[n]; }
    for (var m = 0u; m < ${NZ}u; m++) { uc[m] = pu[m]; }
    for (var r = 0u; r < ${NI}u; r++) { ec[r] = pe[r]; }
    // prefetch the next chunk's record (its M goes to workgroup memory after the next barrier)
    if (c + 1u < NC) {
      let cn = cb + 1u;
      ${slab("pm", "rec_b", "cn * RB")}
      ${slab("px", "rec_a", "cn * RA + OXR")}
      ${decay("pe", "cn")}
      for (var m = 0u; m < ${NZ}u; m++) {
        let f = g + ${NG}u * m;
        var v = 0.0;
        if (jok) { v = rec_b[cn * RB + OUR + f * Vd + j]; }
        pu[m] = v;
      }
    }
    // Z = U0 + M S (thread: rows g + ${NG} m, value jj); Z replaces U0 in the record for the readout
    for (var m = 0u; m < ${NZ}u; m++) {
      let f = g + ${NG}u * m;
      var z = vec4<f32>(0.0);
      for (var q = 0u; q < ${BK / 4}u; q++) { z += sM[f * ${BK / 4}u + q] * sST[jj * ${PK / 4}u + q]; }
      let zf = uc[m] + z.x + z.y + z.z + z.w;
      sZ[f * BV + jj] = zf;
      if (jok) { rec_b[cb * RB + OUR + f * Vd + j] = zf; }
    }
    workgroupBarrier();
${update("", "")}
    for (var q = 0u; q < ${NI4}u; q++) { sST[jj * ${PK / 4}u + g * ${NI4}u + q] = vec4<f32>(s[4u * q], s[4u * q + 1u], s[4u * q + 2u], s[4u * q + 3u]); }
    for (var n = 0u; n < ${NL}u; n++) { sM[tid + ${W}u * n] = pm[n]; }
    workgroupBarrier();
  }
  for (var r = 0u; r < ${NI}u; r++) {
    if (i0 + r < Kd && jok) { s_store(b, h, i0 + r, j, s[r]); }
  }
}
`;
  }
  // without low rank: Z = U0; X~ and U0 tiles double-buffered, one barrier per chunk
  const NU = NZ;
  const uSlab = (dst: string, cb: string) => `for (var n = 0u; n < ${NU}u; n++) {
      let e = tid + ${W}u * n;
      let f = e / BV;
      let jv = jt * BV + e % BV;
      var v = 0.0;
      if (jv < Vd) { v = rec_b[${cb} * RB + OUR + f * Vd + jv]; }
      ${dst}[n] = v;
    }`;
  return `${header}
var<workgroup> sX: array<vec4<f32>, ${(2 * F * BK) / 4}>;
var<workgroup> sZ: array<f32, ${2 * F * BV}>;

${prologue}
  var pu: array<f32, ${NU}>;
  {
    let cb = bh * NC;
    ${slab("px", "rec_a", "cb * RA + OXR")}
    ${uSlab("pu", "cb")}
    ${decay("pe", "cb")}
  }
  for (var n = 0u; n < ${NL}u; n++) { sX[tid + ${W}u * n] = px[n]; }
  for (var n = 0u; n < ${NU}u; n++) { sZ[tid + ${W}u * n] = pu[n]; }
  if (NC > 1u) {
    let cn = bh * NC + 1u;
    ${slab("px", "rec_a", "cn * RA + OXR")}
    ${uSlab("pu", "cn")}
  }
  for (var c = 0u; c < NC; c++) {
    let cb = bh * NC + c;
    let cur = c % 2u;
    workgroupBarrier();
${storeS0}
    for (var r = 0u; r < ${NI}u; r++) { ec[r] = pe[r]; }
    if (c + 1u < NC) {
      // chunk c + 1's tiles to the other buffer (nobody reads it before the next barrier), its decays; chunk c + 2's loads
      let o = 1u - cur;
      for (var n = 0u; n < ${NL}u; n++) { sX[o * ${(F * BK) / 4}u + tid + ${W}u * n] = px[n]; }
      for (var n = 0u; n < ${NU}u; n++) { sZ[o * ${F * BV}u + tid + ${W}u * n] = pu[n]; }
      ${decay("pe", "(cb + 1u)")}
      if (c + 2u < NC) {
        let cn = cb + 2u;
        ${slab("px", "rec_a", "cn * RA + OXR")}
        ${uSlab("pu", "cn")}
      }
    }
${update(`cur * ${(F * BK) / 4}u + `, `cur * ${F * BV}u + `)}
  }
  for (var r = 0u; r < ${NI}u; r++) {
    if (i0 + r < Kd && jok) { s_store(b, h, i0 + r, j, s[r]); }
  }
}
`;
}

/** Workgroup floats of the readout. */
export function readoutShared(c: ChunkCoreCfg): number {
  const C = c.F / c.RTP;
  return C * RO_KT + RO_KT * RO_BV;
}

export function readoutMain(c: ChunkCoreCfg): string {
  const F = c.F, RTP = c.RTP, C = F / RTP, W = S3_WG, BR = RO_BV, KT = RO_KT;
  const NGR = W / BR;
  const NY = Math.max(1, Math.ceil(C / NGR));
  return `
const F: u32 = ${F}u;
const RTP: u32 = ${RTP}u;
const C: u32 = ${C}u;
var<workgroup> sA: array<f32, ${C * KT}>;
var<workgroup> sB: array<f32, ${KT * BR}>;

@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let Kd = seqc_K();
  let Vd = seqc_V();
  let H = seqc_H();
${recordLets(c)}
  let nj = (Vd + ${BR}u - 1u) / ${BR}u;
  if (wg >= u.B * H * NC * nj) { return; }
  let jt = wg % nj;
  let cb = wg / nj;
  let c = cb % NC;
  let bh = cb / NC;
  let h = bh % H;
  let b = bh / H;
  let t0 = c * C;
  let j0 = jt * ${BR}u;
  let jj = tid % ${BR}u;
  let j = j0 + jj;
  let tg = tid / ${BR}u;
  var y: array<f32, ${NY}>;
  for (var m = 0u; m < ${NY}u; m++) { y[m] = 0.0; }
  // y = Q~ S0: ${KT} keys at a time
  for (var k0 = 0u; k0 < Kd; k0 += ${KT}u) {
    for (var e = tid; e < ${C * KT}u; e += ${W}u) {
      let k = k0 + e % ${KT}u;
      var v = 0.0;
      if (k < Kd) { v = rec_a[cb * RA + (e / ${KT}u) * Kd + k]; }
      sA[e] = v;
    }
    for (var e = tid; e < ${KT * BR}u; e += ${W}u) {
      let k = k0 + e / ${BR}u;
      let jv = j0 + e % ${BR}u;
      var v = 0.0;
      if (k < Kd && jv < Vd) { v = s0[(cb * Kd + k) * Vd + jv]; }
      sB[e] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${KT}u; kk++) {
      let sv = sB[kk * ${BR}u + jj];
      for (var m = 0u; m < ${NY}u; m++) {
        let tl = tg + ${NGR}u * m;
        if (tl < C) { y[m] += sA[tl * ${KT}u + kk] * sv; }
      }
    }
    workgroupBarrier();
  }
  // y += Aq Z (Aq is zero past each token's own rows)
  for (var f0 = 0u; f0 < F; f0 += ${KT}u) {
    for (var e = tid; e < ${C * KT}u; e += ${W}u) { sA[e] = rec_a[cb * RA + OAR + (e / ${KT}u) * F + f0 + e % ${KT}u]; }
    for (var e = tid; e < ${KT * BR}u; e += ${W}u) {
      let jv = j0 + e % ${BR}u;
      var v = 0.0;
      if (jv < Vd) { v = rec_b[cb * RB + OUR + (f0 + e / ${BR}u) * Vd + jv]; }
      sB[e] = v;
    }
    workgroupBarrier();
    for (var m = 0u; m < ${NY}u; m++) {
      let tl = tg + ${NGR}u * m;
      let fe = min(${KT}u, select(0u, (tl + 1u) * RTP - f0, (tl + 1u) * RTP > f0));
      if (tl < C) { for (var kk = 0u; kk < fe; kk++) { y[m] += sA[tl * ${KT}u + kk] * sB[kk * ${BR}u + jj]; } }
    }
    workgroupBarrier();
  }
  for (var m = 0u; m < ${NY}u; m++) {
    let tl = tg + ${NGR}u * m;
    if (tl < C && t0 + tl < u.T && j < Vd) { post(b, t0 + tl, h, j, y[m]); }
  }
}
`;
}
