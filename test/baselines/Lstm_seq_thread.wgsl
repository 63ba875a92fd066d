// seqc: kernel Lstm_seq_thread of model Lstm
struct Uniforms {
  B: u32,
  T: u32,
  has_bias_ih_l0: u32,
  has_bias_hh_l0: u32,
  init_h: u32,
  init_c: u32,
  SO_h: u32,
  SO_c: u32,
}
@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> states: array<f32>;
@group(0) @binding(4) var<storage, read> states_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_output: array<f32>;
override D_H: u32;
override D_I: u32;
override PO_weight_ih_l0: u32;
override PO_weight_hh_l0: u32;
override PO_bias_ih_l0: u32;
override PO_bias_hh_l0: u32;
override P: u32;
override G: u32;
override WG: u32;
var<workgroup> s_h: array<f32, (G * D_H)>;
var<workgroup> s_c: array<f32, (G * D_H)>;
var<workgroup> s_pre: array<f32, (G * (4u * D_H))>;
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_tanh(x: f32) -> f32 { let z = exp(-2.0 * abs(x)); let r = (1.0 - z) / (1.0 + z); return select(-r, r, x >= 0.0); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  let q = ((wg * G) + lid);
  if ((q < BP)) {
    let e_b = (q / P);
    let e_p = (q % P);
    // load the initial state
    for (var l_0: u32 = 0u; l_0 < D_H; l_0 += 1u) {
      let s0_1 = l_0;
      s_h[((l_0 * G) + lid)] = select(0.0f, states_in[((u.SO_h + (e_b * D_H)) + s0_1)], (u.init_h != 0u));
    }
    for (var l_2: u32 = 0u; l_2 < D_H; l_2 += 1u) {
      let s0_3 = l_2;
      s_c[((l_2 * G) + lid)] = select(0.0f, states_in[((u.SO_c + (e_b * D_H)) + s0_3)], (u.init_c != 0u));
    }
    for (var t: u32 = 0u; t < u.T; t += 1u) {
      // let pre
      for (var l_4: u32 = 0u; l_4 < (4u * D_H); l_4 += 1u) {
        let i_j_1 = (l_4 % D_H);
        let r_5 = (l_4 / D_H);
        let i_g_0 = r_5;
        var acc_6 = 0.0f;
        for (var i_7: u32 = 0u; i_7 < D_I; i_7 += 1u) {
          acc_6 = (acc_6 + (params[(PO_weight_ih_l0 + ((((i_g_0 * D_H) + i_j_1) * D_I) + i_7))] * in_x[((((e_b * u.T) + t) * D_I) + i_7)]));
        }
        var acc_8 = 0.0f;
        for (var m_9: u32 = 0u; m_9 < D_H; m_9 += 1u) {
          acc_8 = (acc_8 + (params[(PO_weight_hh_l0 + ((((i_g_0 * D_H) + i_j_1) * D_H) + m_9))] * s_h[((m_9 * G) + lid)]));
        }
        let v_10 = (((acc_6 + acc_8) + select(0.0f, params[(PO_bias_ih_l0 + ((i_g_0 * D_H) + i_j_1))], (u.has_bias_ih_l0 != 0u))) + select(0.0f, params[(PO_bias_hh_l0 + ((i_g_0 * D_H) + i_j_1))], (u.has_bias_hh_l0 != 0u)));
        s_pre[((((i_g_0 * D_H) + i_j_1) * G) + lid)] = v_10;
      }
      // assign c
      for (var l_11: u32 = 0u; l_11 < D_H; l_11 += 1u) {
        let i_j_4 = l_11;
        let v_12 = ((seq_sigmoid(s_pre[(((D_H + i_j_4) * G) + lid)]) * s_c[((i_j_4 * G) + lid)]) + (seq_sigmoid(s_pre[((((0u * D_H) + i_j_4) * G) + lid)]) * seq_tanh(s_pre[((((2u * D_H) + i_j_4) * G) + lid)])));
        s_c[((i_j_4 * G) + lid)] = v_12;
      }
      // assign h
      for (var l_13: u32 = 0u; l_13 < D_H; l_13 += 1u) {
        let i_j_5 = l_13;
        let v_14 = (seq_sigmoid(s_pre[((((3u * D_H) + i_j_5) * G) + lid)]) * seq_tanh(s_c[((i_j_5 * G) + lid)]));
        s_h[((i_j_5 * G) + lid)] = v_14;
      }
      // output output
      for (var l_15: u32 = 0u; l_15 < D_H; l_15 += 1u) {
        let i_j_6 = l_15;
        let v_16 = s_h[((i_j_6 * G) + lid)];
        out_output[((((e_b * u.T) + t) * D_H) + i_j_6)] = v_16;
      }
    }
    // write the final state
    for (var l_17: u32 = 0u; l_17 < D_H; l_17 += 1u) {
      let s0_18 = l_17;
      states[((u.SO_h + (e_b * D_H)) + s0_18)] = s_h[((l_17 * G) + lid)];
    }
    for (var l_19: u32 = 0u; l_19 < D_H; l_19 += 1u) {
      let s0_20 = l_19;
      states[((u.SO_c + (e_b * D_H)) + s0_20)] = s_c[((l_19 * G) + lid)];
    }
  }
}
