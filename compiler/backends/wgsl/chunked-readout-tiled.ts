/**
 * The split3 readout with register micro-tiles (chunked-split3.ts has the plain one): every chunk x 64-value
 * tile in parallel, y = Q~ S0 + Aq Z, then the model's post. One workgroup of 4C threads per chunk and value
 * tile; each thread owns a 4-token x 4-value block of y in four vec4 accumulators. Per step of the contracted
 * axis (32 keys, then 32 rows of Z at a time, staged through workgroup memory) a thread reads one vec4 of four
 * tokens (Q~ or Aq, stored transposed) and one vec4 of four values (S0 or Z) and does 16 multiply-adds; the
 * plain readout does about one workgroup-memory read per multiply-add and reads Q~ once per 32 values (here
 * once per 64). Aq is zero past each token's own rows: a thread stops its row loop after its last token's rows.
 */
import type { ChunkCoreCfg } from "./chunked-core.ts";

/** Value tile of the tiled readout (16 vec4 columns). */
export const RT_BV = 64;
/** Contracted-axis tile (keys of Q~ S0, rows of Aq Z). */
const RT_KT = 32;

/** Threads of the tiled readout: C / 4 token groups x 16 value columns. */
export function readoutTiledThreads(c: ChunkCoreCfg): number {
  return ((c.F / c.RTP) / 4) * (RT_BV / 4);
}

/** Workgroup floats of the tiled readout. */
export function readoutTiledShared(c: ChunkCoreCfg): number {
  return RT_KT * (c.F / c.RTP) + RT_KT * RT_BV;
}

export function readoutTiledMain(c: ChunkCoreCfg): string {
  const F = c.F, RTP = c.RTP, C = F / RTP, KT = RT_KT, BV = RT_BV;
  if (C % 4 !== 0) throw new Error(`tiled readout: ${C} tokens per chunk is not a multiple of 4`);
  const C4 = C / 4, V4 = BV / 4, W = readoutTiledThreads(c);
  const NA = Math.ceil((KT * C4) / W), NB = Math.ceil((KT * V4) / W);
  // one step of the contracted axis: a vec4 of 4 tokens (sA) times a vec4 of 4 values (sB)
  const fma = `        let a = sA[kk * ${C4}u + tg];
        let bv = sB[kk * ${V4}u + jv];
        y0 += a.x * bv;
        y1 += a.y * bv;
        y2 += a.z * bv;
        y3 += a.w * bv;`;
  // stage a [KT x 4 tokens] block of a row-major [C x stride] matrix at base (columns col0 + kk), transposed
  const stageA = (base: string, stride: string, col0: string, bound: string) => `    for (var n = 0u; n < ${NA}u; n++) {
      let e = tid + ${W}u * n;
      if (e < ${KT * C4}u) {
        let kk = e % ${KT}u;
        let tq = e / ${KT}u;
        let k = ${col0} + kk;
        var v = vec4<f32>(0.0);
        if (k < ${bound}) {
          for (var q = 0u; q < 4u; q++) { v[q] = rec_a[${base} + (4u * tq + q) * ${stride} + k]; }
        }
        sA[kk * ${C4}u + tq] = v;
      }
    }`;
  // stage a [KT x 64 values] block of a row-major [rows x Vd] matrix at base (rows row0 + kk)
  const stageB = (buf: string, base: string, row0: string, bound: string) => `    for (var n = 0u; n < ${NB}u; n++) {
      let e = tid + ${W}u * n;
      if (e < ${KT * V4}u) {
        let kk = e / ${V4}u;
        let k = ${row0} + kk;
        let jb = j0 + 4u * (e % ${V4}u);
        var v = vec4<f32>(0.0);
        if (k < ${bound}) {
          for (var q = 0u; q < 4u; q++) { if (jb + q < Vd) { v[q] = ${buf}[${base} + k * Vd + jb + q]; } }
        }
        sB[kk * ${V4}u + e % ${V4}u] = v;
      }
    }`;
  return `
const F: u32 = ${F}u;
const RTP: u32 = ${RTP}u;
const C: u32 = ${C}u;
var<workgroup> sA: array<vec4<f32>, ${KT * C4}>;
var<workgroup> sB: array<vec4<f32>, ${KT * V4}>;

@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let Kd = seqc_K();
  let Vd = seqc_V();
  let H = seqc_H();
  let RA = C * Kd + F * Kd + C * F + Kd;
  let OAR = C * Kd + F * Kd;
  let RB = ${c.lr ? "F * Kd + " : ""}F * Vd;
  let OUR = ${c.lr ? "F * Kd" : "0u"};
  let NC = (u.T + C - 1u) / C;
  let nj = (Vd + ${BV}u - 1u) / ${BV}u;
  if (wg >= u.B * H * NC * nj) { return; }
  let jt = wg % nj;
  let cb = wg / nj;
  let c = cb % NC;
  let bh = cb / NC;
  let h = bh % H;
  let b = bh / H;
  let t0 = c * C;
  let j0 = jt * ${BV}u;
  // this thread: tokens 4 tg .. 4 tg + 3, values j0 + 4 jv .. + 3
  let jv = tid % ${V4}u;
  let tg = tid / ${V4}u;
  var y0 = vec4<f32>(0.0);
  var y1 = vec4<f32>(0.0);
  var y2 = vec4<f32>(0.0);
  var y3 = vec4<f32>(0.0);
  // y = Q~ S0, ${KT} keys at a time
  for (var k0 = 0u; k0 < Kd; k0 += ${KT}u) {
${stageA("cb * RA", "Kd", "k0", "Kd")}
${stageB("s0", "cb * Kd * Vd", "k0", "Kd")}
    workgroupBarrier();
    for (var kk = 0u; kk < ${KT}u; kk++) {
${fma}
    }
    workgroupBarrier();
  }
  // y += Aq Z, ${KT} rows at a time; this thread's tokens see rows before (4 tg + 4) RTP only
  let fend = (4u * tg + 4u) * RTP;
  for (var f0 = 0u; f0 < F; f0 += ${KT}u) {
${stageA("cb * RA + OAR", "F", "f0", "F")}
${stageB("rec_b", "cb * RB + OUR", "f0", "F")}
    workgroupBarrier();
    let fe = min(${KT}u, select(0u, fend - f0, fend > f0));
    for (var kk = 0u; kk < fe; kk++) {
${fma}
    }
    workgroupBarrier();
  }
  var ys = array<vec4<f32>, 4>(y0, y1, y2, y3);
  for (var m = 0u; m < 4u; m++) {
    let tl = 4u * tg + m;
    if (t0 + tl < u.T) {
      for (var q = 0u; q < 4u; q++) {
        let j = j0 + 4u * jv + q;
        if (j < Vd) { post(b, t0 + tl, h, j, ys[m][q]); }
      }
    }
  }
}
`;
}
