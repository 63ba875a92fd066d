// seqc: kernel Gla_scan_tile of model Gla
struct Uniforms {
  B: u32,
  T: u32,
  init_S: u32,
  SO_S: u32,
}
@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var<storage, read> in_q: array<f32>;
@group(0) @binding(2) var<storage, read> in_k: array<f32>;
@group(0) @binding(3) var<storage, read> in_v: array<f32>;
@group(0) @binding(4) var<storage, read> in_gk: array<f32>;
@group(0) @binding(5) var<storage, read_write> states: array<f32>;
@group(0) @binding(6) var<storage, read> states_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_o: array<f32>;
override D_H: u32;
override D_K: u32;
override D_V: u32;
override P: u32;
override WG: u32;
override E: u32;
override S: u32;
override TS: u32;
var<workgroup> s_S: array<f32, (WG * D_K)>;
var<workgroup> sa_0_0: array<f32, (WG * D_K)>;
var<workgroup> sb_0: array<f32, (WG * D_K)>;
var<workgroup> c_0: array<f32, (E * D_K)>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  let e = (lid % E);
  let sgm = (lid / E);
  let q0 = ((wg * E) + e);
  let act = (q0 < BP);
  let q = min(q0, (BP - 1u));
  let e_b = (q / P);
  let e_p = (q % P);
  let e_c1 = (e_p % D_V);
  let e_r1 = (e_p / D_V);
  let e_c0 = e_r1;
  // carry := initial state
  for (var cf: u32 = lid; cf < (E * D_K); cf += WG) {
    let ce = (cf % E);
    let cl = (cf / E);
    let cq = ((wg * E) + ce);
    if ((cq < BP)) {
      let e_b = (cq / P);
      let e_p = (cq % P);
      let e_c1 = (e_p % D_V);
      let e_r1 = (e_p / D_V);
      let e_c0 = e_r1;
      let cx0_1 = cl;
      c_0[((cl * E) + ce)] = select(0.0f, states_in[((u.SO_S + (e_b * ((D_H * D_K) * D_V))) + ((((e_c0 * D_K) + cx0_1) * D_V) + e_c1))], (u.init_S != 0u));
    }
  }
  workgroupBarrier();
  for (var tile: u32 = 0u; tile < ((u.T + ((S * TS) - 1u)) / (S * TS)); tile += 1u) {
    let t0 = ((tile * (S * TS)) + (sgm * TS));
    // 1. compose (A, b) over this thread's segment
    if (act) {
      for (var l_0: u32 = 0u; l_0 < D_K; l_0 += 1u) {
        var A00 = 1.0f;
        var b0 = 0.0f;
        if (((t0 + TS) <= u.T)) {
          for (var tau: u32 = 0u; tau < TS; tau += 1u) {
            let t = (t0 + tau);
            let i_i_1 = l_0;
            let a00 = exp(in_gk[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))]);
            let bt0 = (in_k[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))] * in_v[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))]);
            let n00 = (a00 * A00);
            let nb0 = ((a00 * b0) + bt0);
            A00 = n00;
            b0 = nb0;
          }
        } else {
          for (var tau: u32 = 0u; tau < min(TS, select(0u, (u.T - t0), (t0 < u.T))); tau += 1u) {
            let t = (t0 + tau);
            let i_i_1 = l_0;
            let a00 = exp(in_gk[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))]);
            let bt0 = (in_k[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))] * in_v[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))]);
            let n00 = (a00 * A00);
            let nb0 = ((a00 * b0) + bt0);
            A00 = n00;
            b0 = nb0;
          }
        }
        sa_0_0[((l_0 * WG) + lid)] = A00;
        sb_0[((l_0 * WG) + lid)] = b0;
      }
    }
    workgroupBarrier();
    // 2. segment start states from the carry
    for (var cf: u32 = lid; cf < (E * D_K); cf += WG) {
      let ce = (cf % E);
      let cl = (cf / E);
      if ((((wg * E) + ce) < BP)) {
        var h0 = c_0[((cl * E) + ce)];
        for (var sg: u32 = 0u; sg < S; sg += 1u) {
          let col = ((sg * E) + ce);
          let at = ((cl * WG) + col);
          s_S[at] = h0;
          let g0 = ((sa_0_0[at] * h0) + sb_0[at]);
          h0 = g0;
        }
        c_0[((cl * E) + ce)] = h0;
      }
    }
    workgroupBarrier();
    // 3. replay the segment with the step body (outputs)
    if (act) {
      if (((t0 + TS) <= u.T)) {
        for (var tau: u32 = 0u; tau < TS; tau += 1u) {
          let t = (t0 + tau);
          // assign S
          for (var l_1: u32 = 0u; l_1 < D_K; l_1 += 1u) {
            let i_i_1 = l_1;
            let v_2 = ((exp(in_gk[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))]) * s_S[((i_i_1 * WG) + lid)]) + (in_k[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))] * in_v[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))]));
            s_S[((i_i_1 * WG) + lid)] = v_2;
          }
          // output o
          var acc_3 = 0.0f;
          for (var i_4: u32 = 0u; i_4 < D_K; i_4 += 1u) {
            acc_3 = (acc_3 + ((in_q[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_4))] * inverseSqrt(f32(D_K))) * s_S[((i_4 * WG) + lid)]));
          }
          let v_5 = acc_3;
          out_o[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))] = v_5;
        }
      } else {
        for (var tau: u32 = 0u; tau < min(TS, select(0u, (u.T - t0), (t0 < u.T))); tau += 1u) {
          let t = (t0 + tau);
          // assign S
          for (var l_1: u32 = 0u; l_1 < D_K; l_1 += 1u) {
            let i_i_1 = l_1;
            let v_2 = ((exp(in_gk[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))]) * s_S[((i_i_1 * WG) + lid)]) + (in_k[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))] * in_v[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))]));
            s_S[((i_i_1 * WG) + lid)] = v_2;
          }
          // output o
          var acc_3 = 0.0f;
          for (var i_4: u32 = 0u; i_4 < D_K; i_4 += 1u) {
            acc_3 = (acc_3 + ((in_q[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_4))] * inverseSqrt(f32(D_K))) * s_S[((i_4 * WG) + lid)]));
          }
          let v_5 = acc_3;
          out_o[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))] = v_5;
        }
      }
    }
  }
  workgroupBarrier();
  // final state := carry
  for (var cf: u32 = lid; cf < (E * D_K); cf += WG) {
    let ce = (cf % E);
    let cl = (cf / E);
    let cq = ((wg * E) + ce);
    if ((cq < BP)) {
      let e_b = (cq / P);
      let e_p = (cq % P);
      let e_c1 = (e_p % D_V);
      let e_r1 = (e_p / D_V);
      let e_c0 = e_r1;
      let cx0_1 = cl;
      states[((u.SO_S + (e_b * ((D_H * D_K) * D_V))) + ((((e_c0 * D_K) + cx0_1) * D_V) + e_c1))] = c_0[((cl * E) + ce)];
    }
  }
}
