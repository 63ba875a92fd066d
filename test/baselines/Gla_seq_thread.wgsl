// seqc: kernel Gla_seq_thread of model Gla
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
override G: u32;
override WG: u32;
var<workgroup> s_S: array<f32, (G * D_K)>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  let q = ((wg * G) + lid);
  if ((q < BP)) {
    let e_b = (q / P);
    let e_p = (q % P);
    let e_c1 = (e_p % D_V);
    let e_r1 = (e_p / D_V);
    let e_c0 = e_r1;
    // load the initial state
    for (var l_0: u32 = 0u; l_0 < D_K; l_0 += 1u) {
      let s1_1 = l_0;
      s_S[((l_0 * G) + lid)] = select(0.0f, states_in[((u.SO_S + (e_b * ((D_H * D_K) * D_V))) + ((((e_c0 * D_K) + s1_1) * D_V) + e_c1))], (u.init_S != 0u));
    }
    for (var t: u32 = 0u; t < u.T; t += 1u) {
      // assign S
      for (var l_2: u32 = 0u; l_2 < D_K; l_2 += 1u) {
        let i_i_1 = l_2;
        let v_3 = ((exp(in_gk[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))]) * s_S[((i_i_1 * G) + lid)]) + (in_k[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))] * in_v[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))]));
        s_S[((i_i_1 * G) + lid)] = v_3;
      }
      // output o
      var acc_4 = 0.0f;
      for (var i_5: u32 = 0u; i_5 < D_K; i_5 += 1u) {
        acc_4 = (acc_4 + ((in_q[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_5))] * inverseSqrt(f32(D_K))) * s_S[((i_5 * G) + lid)]));
      }
      let v_6 = acc_4;
      out_o[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))] = v_6;
    }
    // write the final state
    for (var l_7: u32 = 0u; l_7 < D_K; l_7 += 1u) {
      let s1_8 = l_7;
      states[((u.SO_S + (e_b * ((D_H * D_K) * D_V))) + ((((e_c0 * D_K) + s1_8) * D_V) + e_c1))] = s_S[((l_7 * G) + lid)];
    }
  }
}
