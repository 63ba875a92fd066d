// seqc: kernel Lstm_seq_global of model Lstm
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
@group(0) @binding(6) var<storage, read_write> gslots: array<f32>;
override D_H: u32;
override D_I: u32;
override PO_weight_ih_l0: u32;
override PO_weight_hh_l0: u32;
override PO_bias_ih_l0: u32;
override PO_bias_hh_l0: u32;
override P: u32;
override G: u32;
override WG: u32;
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_tanh(x: f32) -> f32 { let z = exp(-2.0 * abs(x)); let r = (1.0 - z) / (1.0 + z); return select(-r, r, x >= 0.0); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  // load the initial state
  for (var f_0: u32 = lid; f_0 < (G * D_H); f_0 += WG) {
    let g = (f_0 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let s0_1 = (f_0 / G);
      gslots[(((f_0 / G) * BP) + q)] = select(0.0f, states_in[((u.SO_h + (e_b * D_H)) + s0_1)], (u.init_h != 0u));
    }
  }
  for (var f_2: u32 = lid; f_2 < (G * D_H); f_2 += WG) {
    let g = (f_2 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let s0_3 = (f_2 / G);
      gslots[((BP * D_H) + (((f_2 / G) * BP) + q))] = select(0.0f, states_in[((u.SO_c + (e_b * D_H)) + s0_3)], (u.init_c != 0u));
    }
  }
  storageBarrier();
  workgroupBarrier();
  for (var t: u32 = 0u; t < u.T; t += 1u) {
    // let pre
    for (var f_4: u32 = lid; f_4 < (G * (4u * D_H)); f_4 += WG) {
      let g = (f_4 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let i_j_1 = ((f_4 / G) % D_H);
        let r_5 = ((f_4 / G) / D_H);
        let i_g_0 = r_5;
        var acc_6 = 0.0f;
        for (var i_7: u32 = 0u; i_7 < D_I; i_7 += 1u) {
          acc_6 = (acc_6 + (params[(PO_weight_ih_l0 + ((((i_g_0 * D_H) + i_j_1) * D_I) + i_7))] * in_x[((((e_b * u.T) + t) * D_I) + i_7)]));
        }
        var acc_8 = 0.0f;
        for (var m_9: u32 = 0u; m_9 < D_H; m_9 += 1u) {
          acc_8 = (acc_8 + (params[(PO_weight_hh_l0 + ((((i_g_0 * D_H) + i_j_1) * D_H) + m_9))] * gslots[((m_9 * BP) + q)]));
        }
        let v_10 = (((acc_6 + acc_8) + select(0.0f, params[(PO_bias_ih_l0 + ((i_g_0 * D_H) + i_j_1))], (u.has_bias_ih_l0 != 0u))) + select(0.0f, params[(PO_bias_hh_l0 + ((i_g_0 * D_H) + i_j_1))], (u.has_bias_hh_l0 != 0u)));
        gslots[(((BP * D_H) + (BP * D_H)) + ((((i_g_0 * D_H) + i_j_1) * BP) + q))] = v_10;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // assign c
    for (var f_11: u32 = lid; f_11 < (G * D_H); f_11 += WG) {
      let g = (f_11 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let i_j_4 = (f_11 / G);
        let v_12 = ((seq_sigmoid(gslots[(((BP * D_H) + (BP * D_H)) + (((D_H + i_j_4) * BP) + q))]) * gslots[((BP * D_H) + ((i_j_4 * BP) + q))]) + (seq_sigmoid(gslots[(((BP * D_H) + (BP * D_H)) + ((((0u * D_H) + i_j_4) * BP) + q))]) * seq_tanh(gslots[(((BP * D_H) + (BP * D_H)) + ((((2u * D_H) + i_j_4) * BP) + q))])));
        gslots[((BP * D_H) + ((i_j_4 * BP) + q))] = v_12;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // assign h
    for (var f_13: u32 = lid; f_13 < (G * D_H); f_13 += WG) {
      let g = (f_13 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let i_j_5 = (f_13 / G);
        let v_14 = (seq_sigmoid(gslots[(((BP * D_H) + (BP * D_H)) + ((((3u * D_H) + i_j_5) * BP) + q))]) * seq_tanh(gslots[((BP * D_H) + ((i_j_5 * BP) + q))]));
        gslots[((i_j_5 * BP) + q)] = v_14;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // output output
    for (var f_15: u32 = lid; f_15 < (G * D_H); f_15 += WG) {
      let g = (f_15 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let i_j_6 = (f_15 / G);
        let v_16 = gslots[((i_j_6 * BP) + q)];
        out_output[((((e_b * u.T) + t) * D_H) + i_j_6)] = v_16;
      }
    }
    storageBarrier();
    workgroupBarrier();
  }
  // write the final state
  for (var f_17: u32 = lid; f_17 < (G * D_H); f_17 += WG) {
    let g = (f_17 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let s0_18 = (f_17 / G);
      states[((u.SO_h + (e_b * D_H)) + s0_18)] = gslots[(((f_17 / G) * BP) + q)];
    }
  }
  for (var f_19: u32 = lid; f_19 < (G * D_H); f_19 += WG) {
    let g = (f_19 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let s0_20 = (f_19 / G);
      states[((u.SO_c + (e_b * D_H)) + s0_20)] = gslots[((BP * D_H) + (((f_19 / G) * BP) + q))];
    }
  }
}
