/**
 * The two launches a chunked form gets around the core (chunked-core.ts, chunked-split3.ts) when its
 * canonical form has a stabiliser or value columns (compiler/forms/matrix-form.ts), written once for
 * every model: they call only generated per-model functions (chunked-model.ts).
 *
 *   stabiliser  one workgroup per batch x head: m_t = max(a_t + m_{t-1}, b_t) over the whole sequence as a
 *               blocked scan of the associative max-plus pairs (a, b): each of 256 threads composes its
 *               segment of ceil(T / 256) tokens, a workgroup scan composes the segments
 *               ((a1, b1) then (a2, b2) = (a1 + a2, max(b1 + a2, b2))), each thread walks its segment again
 *               from its start value. Writes the scratch `stab` [B][H][T + 2] = (log initial scale
 *               m_{-1} - m^, m^ = m_0 - a_0, m_0 ... m_{T-1}) and the final m; runs before phase A.
 *   post        after the walk (value columns): one thread per output element (b, t, head, value) computes
 *               the outputs from the stored y and column readouts (`ybuf`) and m_t.
 */

import { EXTRA_THREADS as EXTRA_WG, STAB } from "../../forms/chunk-extra.ts";

export function stabMain(): string {
  return `
var<workgroup> sA: array<f32, ${EXTRA_WG}>;
var<workgroup> sB: array<f32, ${EXTRA_WG}>;

@compute @workgroup_size(${EXTRA_WG})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let H = seqc_H();
  if (wg >= u.B * H) { return; }
  let h = wg % H;
  let b = wg / H;
  let T = u.T;
  let L = (T + ${EXTRA_WG - 1}u) / ${EXTRA_WG}u;
  let lo = min(tid * L, T);
  let hi = min(lo + L, T);
  // this segment as a max-plus pair: m_out = max(A + m_in, Bm)
  var A = 0.0;
  var Bm = -3.0e38;
  for (var t = lo; t < hi; t++) {
    let a = stab_a(b, t, h);
    Bm = max(Bm + a, stab_b(b, t, h));
    A += a;
  }
  sA[tid] = A;
  sB[tid] = Bm;
  workgroupBarrier();
  for (var off = 1u; off < ${EXTRA_WG}u; off = off * 2u) {
    var na = sA[tid];
    var nb = sB[tid];
    if (tid >= off) {
      let a1 = sA[tid - off];
      let b1 = sB[tid - off];
      nb = max(b1 + na, nb);
      na = a1 + na;
    }
    workgroupBarrier();
    sA[tid] = na;
    sB[tid] = nb;
    workgroupBarrier();
  }
  let m0 = stab_init(b, h);
  var m = m0;
  if (tid > 0u) { m = max(sA[tid - 1u] + m0, sB[tid - 1u]); }
  let base = (b * H + h) * (T + 2u);
  for (var t = lo; t < hi; t++) {
    let a = stab_a(b, t, h);
    let mn = max(a + m, stab_b(b, t, h));
    ${STAB}[base + 2u + t] = mn;
    if (t == 0u) {
      ${STAB}[base + 1u] = mn - a;
      ${STAB}[base] = m0 - (mn - a);
    }
    m = mn;
  }
  if (lo < hi && hi == T) { stab_final(b, h, m); }
  if (T == 0u && tid == 0u) { stab_final(b, h, m0); }
}
`;
}

export function postMain(): string {
  return `
@compute @workgroup_size(${EXTRA_WG})
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let e = wg * ${EXTRA_WG}u + tid;
  let V0 = seqc_V0();
  let H = seqc_H();
  if (e >= u.B * u.T * H * V0) { return; }
  let j = e % V0;
  let r = e / V0;
  let h = r % H;
  let bt = r / H;
  post_out(bt / u.T, bt % u.T, h, j);
}
`;
}
