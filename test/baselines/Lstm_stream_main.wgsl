// seqc: kernel Lstm_stream_main of model Lstm
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
@group(0) @binding(3) var<storage, read_write> states: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_output: array<f32>;
@group(0) @binding(6) var<storage, read_write> pingpong: array<f32>;
@group(0) @binding(7) var<storage, read_write> wpacked: array<f32>;
@group(0) @binding(8) var<storage, read_write> hoisted: array<f32>;
override D_H: u32;
override D_I: u32;
override PO_weight_ih_l0: u32;
override PO_weight_hh_l0: u32;
override PO_bias_ih_l0: u32;
override PO_bias_hh_l0: u32;
override P: u32;
override G: u32;
override WG: u32;
override JB: u32;
override BB: u32;
var<workgroup> s_h: array<f32, G>;
var<workgroup> s_c: array<f32, G>;
var<workgroup> s_pre: array<f32, (G * 4u)>;
var<workgroup> s_R0: array<f32, (G * 4u)>;
var<workgroup> ss_0: array<f32, (BB * D_H)>;
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_tanh(x: f32) -> f32 { let z = exp(-2.0 * abs(x)); let r = (1.0 - z) / (1.0 + z); return select(-r, r, x >= 0.0); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let STOT = (u.B * (D_H + D_H));
  for (var t: u32 = 0u; t < u.T; t += 1u) {
    let prevBase = ((t % 2u) * STOT);
    let nextBase = (STOT - prevBase);
    for (var y: u32 = lid; y < (BB * D_H); y += WG) {
      let sb = (y / D_H);
      let sf = (y % D_H);
      let svb = ((wg * BB) + sb);
      var sv = 0.0f;
      if ((svb < u.B)) {
        sv = pingpong[((prevBase + u.SO_h) + ((svb * D_H) + sf))];
      }
      ss_0[y] = sv;
    }
    workgroupBarrier();
    // contraction weight_hh_l0 x h (step t-1) for pre: 4 rows x 2 batch rows per thread
    for (var rw0: u32 = lid; rw0 < (P * 4u); rw0 += (4u * WG)) {
      let rw_0 = (rw0 + (0u * WG));
      let rc_0 = min(rw_0, ((P * 4u) - 1u));
      var acc_0_0 = 0.0f;
      var acc_0_1 = 0.0f;
      let rw_1 = (rw0 + WG);
      let rc_1 = min(rw_1, ((P * 4u) - 1u));
      var acc_1_0 = 0.0f;
      var acc_1_1 = 0.0f;
      let rw_2 = (rw0 + (2u * WG));
      let rc_2 = min(rw_2, ((P * 4u) - 1u));
      var acc_2_0 = 0.0f;
      var acc_2_1 = 0.0f;
      let rw_3 = (rw0 + (3u * WG));
      let rc_3 = min(rw_3, ((P * 4u) - 1u));
      var acc_3_0 = 0.0f;
      var acc_3_1 = 0.0f;
      let MU = (D_H - (D_H % 8u));
      for (var m0: u32 = 0u; m0 < MU; m0 += 8u) {
        let w_0_0 = wpacked[((m0 * (P * 4u)) + rc_0)];
        let w_1_0 = wpacked[((m0 * (P * 4u)) + rc_1)];
        let w_2_0 = wpacked[((m0 * (P * 4u)) + rc_2)];
        let w_3_0 = wpacked[((m0 * (P * 4u)) + rc_3)];
        let w_0_1 = wpacked[(((m0 + 1u) * (P * 4u)) + rc_0)];
        let w_1_1 = wpacked[(((m0 + 1u) * (P * 4u)) + rc_1)];
        let w_2_1 = wpacked[(((m0 + 1u) * (P * 4u)) + rc_2)];
        let w_3_1 = wpacked[(((m0 + 1u) * (P * 4u)) + rc_3)];
        let w_0_2 = wpacked[(((m0 + 2u) * (P * 4u)) + rc_0)];
        let w_1_2 = wpacked[(((m0 + 2u) * (P * 4u)) + rc_1)];
        let w_2_2 = wpacked[(((m0 + 2u) * (P * 4u)) + rc_2)];
        let w_3_2 = wpacked[(((m0 + 2u) * (P * 4u)) + rc_3)];
        let w_0_3 = wpacked[(((m0 + 3u) * (P * 4u)) + rc_0)];
        let w_1_3 = wpacked[(((m0 + 3u) * (P * 4u)) + rc_1)];
        let w_2_3 = wpacked[(((m0 + 3u) * (P * 4u)) + rc_2)];
        let w_3_3 = wpacked[(((m0 + 3u) * (P * 4u)) + rc_3)];
        let w_0_4 = wpacked[(((m0 + 4u) * (P * 4u)) + rc_0)];
        let w_1_4 = wpacked[(((m0 + 4u) * (P * 4u)) + rc_1)];
        let w_2_4 = wpacked[(((m0 + 4u) * (P * 4u)) + rc_2)];
        let w_3_4 = wpacked[(((m0 + 4u) * (P * 4u)) + rc_3)];
        let w_0_5 = wpacked[(((m0 + 5u) * (P * 4u)) + rc_0)];
        let w_1_5 = wpacked[(((m0 + 5u) * (P * 4u)) + rc_1)];
        let w_2_5 = wpacked[(((m0 + 5u) * (P * 4u)) + rc_2)];
        let w_3_5 = wpacked[(((m0 + 5u) * (P * 4u)) + rc_3)];
        let w_0_6 = wpacked[(((m0 + 6u) * (P * 4u)) + rc_0)];
        let w_1_6 = wpacked[(((m0 + 6u) * (P * 4u)) + rc_1)];
        let w_2_6 = wpacked[(((m0 + 6u) * (P * 4u)) + rc_2)];
        let w_3_6 = wpacked[(((m0 + 6u) * (P * 4u)) + rc_3)];
        let w_0_7 = wpacked[(((m0 + 7u) * (P * 4u)) + rc_0)];
        let w_1_7 = wpacked[(((m0 + 7u) * (P * 4u)) + rc_1)];
        let w_2_7 = wpacked[(((m0 + 7u) * (P * 4u)) + rc_2)];
        let w_3_7 = wpacked[(((m0 + 7u) * (P * 4u)) + rc_3)];
        acc_0_0 = (acc_0_0 + (w_0_0 * ss_0[((0u * D_H) + m0)]));
        acc_1_0 = (acc_1_0 + (w_1_0 * ss_0[((0u * D_H) + m0)]));
        acc_2_0 = (acc_2_0 + (w_2_0 * ss_0[((0u * D_H) + m0)]));
        acc_3_0 = (acc_3_0 + (w_3_0 * ss_0[((0u * D_H) + m0)]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_0 * ss_0[(D_H + m0)]));
          acc_1_1 = (acc_1_1 + (w_1_0 * ss_0[(D_H + m0)]));
          acc_2_1 = (acc_2_1 + (w_2_0 * ss_0[(D_H + m0)]));
          acc_3_1 = (acc_3_1 + (w_3_0 * ss_0[(D_H + m0)]));
        }
        acc_0_0 = (acc_0_0 + (w_0_1 * ss_0[((0u * D_H) + (m0 + 1u))]));
        acc_1_0 = (acc_1_0 + (w_1_1 * ss_0[((0u * D_H) + (m0 + 1u))]));
        acc_2_0 = (acc_2_0 + (w_2_1 * ss_0[((0u * D_H) + (m0 + 1u))]));
        acc_3_0 = (acc_3_0 + (w_3_1 * ss_0[((0u * D_H) + (m0 + 1u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_1 * ss_0[(D_H + (m0 + 1u))]));
          acc_1_1 = (acc_1_1 + (w_1_1 * ss_0[(D_H + (m0 + 1u))]));
          acc_2_1 = (acc_2_1 + (w_2_1 * ss_0[(D_H + (m0 + 1u))]));
          acc_3_1 = (acc_3_1 + (w_3_1 * ss_0[(D_H + (m0 + 1u))]));
        }
        acc_0_0 = (acc_0_0 + (w_0_2 * ss_0[((0u * D_H) + (m0 + 2u))]));
        acc_1_0 = (acc_1_0 + (w_1_2 * ss_0[((0u * D_H) + (m0 + 2u))]));
        acc_2_0 = (acc_2_0 + (w_2_2 * ss_0[((0u * D_H) + (m0 + 2u))]));
        acc_3_0 = (acc_3_0 + (w_3_2 * ss_0[((0u * D_H) + (m0 + 2u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_2 * ss_0[(D_H + (m0 + 2u))]));
          acc_1_1 = (acc_1_1 + (w_1_2 * ss_0[(D_H + (m0 + 2u))]));
          acc_2_1 = (acc_2_1 + (w_2_2 * ss_0[(D_H + (m0 + 2u))]));
          acc_3_1 = (acc_3_1 + (w_3_2 * ss_0[(D_H + (m0 + 2u))]));
        }
        acc_0_0 = (acc_0_0 + (w_0_3 * ss_0[((0u * D_H) + (m0 + 3u))]));
        acc_1_0 = (acc_1_0 + (w_1_3 * ss_0[((0u * D_H) + (m0 + 3u))]));
        acc_2_0 = (acc_2_0 + (w_2_3 * ss_0[((0u * D_H) + (m0 + 3u))]));
        acc_3_0 = (acc_3_0 + (w_3_3 * ss_0[((0u * D_H) + (m0 + 3u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_3 * ss_0[(D_H + (m0 + 3u))]));
          acc_1_1 = (acc_1_1 + (w_1_3 * ss_0[(D_H + (m0 + 3u))]));
          acc_2_1 = (acc_2_1 + (w_2_3 * ss_0[(D_H + (m0 + 3u))]));
          acc_3_1 = (acc_3_1 + (w_3_3 * ss_0[(D_H + (m0 + 3u))]));
        }
        acc_0_0 = (acc_0_0 + (w_0_4 * ss_0[((0u * D_H) + (m0 + 4u))]));
        acc_1_0 = (acc_1_0 + (w_1_4 * ss_0[((0u * D_H) + (m0 + 4u))]));
        acc_2_0 = (acc_2_0 + (w_2_4 * ss_0[((0u * D_H) + (m0 + 4u))]));
        acc_3_0 = (acc_3_0 + (w_3_4 * ss_0[((0u * D_H) + (m0 + 4u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_4 * ss_0[(D_H + (m0 + 4u))]));
          acc_1_1 = (acc_1_1 + (w_1_4 * ss_0[(D_H + (m0 + 4u))]));
          acc_2_1 = (acc_2_1 + (w_2_4 * ss_0[(D_H + (m0 + 4u))]));
          acc_3_1 = (acc_3_1 + (w_3_4 * ss_0[(D_H + (m0 + 4u))]));
        }
        acc_0_0 = (acc_0_0 + (w_0_5 * ss_0[((0u * D_H) + (m0 + 5u))]));
        acc_1_0 = (acc_1_0 + (w_1_5 * ss_0[((0u * D_H) + (m0 + 5u))]));
        acc_2_0 = (acc_2_0 + (w_2_5 * ss_0[((0u * D_H) + (m0 + 5u))]));
        acc_3_0 = (acc_3_0 + (w_3_5 * ss_0[((0u * D_H) + (m0 + 5u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_5 * ss_0[(D_H + (m0 + 5u))]));
          acc_1_1 = (acc_1_1 + (w_1_5 * ss_0[(D_H + (m0 + 5u))]));
          acc_2_1 = (acc_2_1 + (w_2_5 * ss_0[(D_H + (m0 + 5u))]));
          acc_3_1 = (acc_3_1 + (w_3_5 * ss_0[(D_H + (m0 + 5u))]));
        }
        acc_0_0 = (acc_0_0 + (w_0_6 * ss_0[((0u * D_H) + (m0 + 6u))]));
        acc_1_0 = (acc_1_0 + (w_1_6 * ss_0[((0u * D_H) + (m0 + 6u))]));
        acc_2_0 = (acc_2_0 + (w_2_6 * ss_0[((0u * D_H) + (m0 + 6u))]));
        acc_3_0 = (acc_3_0 + (w_3_6 * ss_0[((0u * D_H) + (m0 + 6u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_6 * ss_0[(D_H + (m0 + 6u))]));
          acc_1_1 = (acc_1_1 + (w_1_6 * ss_0[(D_H + (m0 + 6u))]));
          acc_2_1 = (acc_2_1 + (w_2_6 * ss_0[(D_H + (m0 + 6u))]));
          acc_3_1 = (acc_3_1 + (w_3_6 * ss_0[(D_H + (m0 + 6u))]));
        }
        acc_0_0 = (acc_0_0 + (w_0_7 * ss_0[((0u * D_H) + (m0 + 7u))]));
        acc_1_0 = (acc_1_0 + (w_1_7 * ss_0[((0u * D_H) + (m0 + 7u))]));
        acc_2_0 = (acc_2_0 + (w_2_7 * ss_0[((0u * D_H) + (m0 + 7u))]));
        acc_3_0 = (acc_3_0 + (w_3_7 * ss_0[((0u * D_H) + (m0 + 7u))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0_7 * ss_0[(D_H + (m0 + 7u))]));
          acc_1_1 = (acc_1_1 + (w_1_7 * ss_0[(D_H + (m0 + 7u))]));
          acc_2_1 = (acc_2_1 + (w_2_7 * ss_0[(D_H + (m0 + 7u))]));
          acc_3_1 = (acc_3_1 + (w_3_7 * ss_0[(D_H + (m0 + 7u))]));
        }
      }
      for (var mt: u32 = MU; mt < D_H; mt += 1u) {
        let wt_0 = wpacked[((mt * (P * 4u)) + rc_0)];
        let wt_1 = wpacked[((mt * (P * 4u)) + rc_1)];
        let wt_2 = wpacked[((mt * (P * 4u)) + rc_2)];
        let wt_3 = wpacked[((mt * (P * 4u)) + rc_3)];
        acc_0_0 = (acc_0_0 + (wt_0 * ss_0[((0u * D_H) + mt)]));
        acc_1_0 = (acc_1_0 + (wt_1 * ss_0[((0u * D_H) + mt)]));
        acc_2_0 = (acc_2_0 + (wt_2 * ss_0[((0u * D_H) + mt)]));
        acc_3_0 = (acc_3_0 + (wt_3 * ss_0[((0u * D_H) + mt)]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (wt_0 * ss_0[(D_H + mt)]));
          acc_1_1 = (acc_1_1 + (wt_1 * ss_0[(D_H + mt)]));
          acc_2_1 = (acc_2_1 + (wt_2 * ss_0[(D_H + mt)]));
          acc_3_1 = (acc_3_1 + (wt_3 * ss_0[(D_H + mt)]));
        }
      }
      if ((rw_0 < (P * 4u))) {
        let ju_0 = (rw_0 / 4u);
        let lr_0 = (rw_0 % 4u);
        s_R0[((lr_0 * G) + ((0u * JB) + ju_0))] = acc_0_0;
        if ((1u < BB)) {
          s_R0[((lr_0 * G) + (JB + ju_0))] = acc_0_1;
        }
      }
      if ((rw_1 < (P * 4u))) {
        let ju_1 = (rw_1 / 4u);
        let lr_1 = (rw_1 % 4u);
        s_R0[((lr_1 * G) + ((0u * JB) + ju_1))] = acc_1_0;
        if ((1u < BB)) {
          s_R0[((lr_1 * G) + (JB + ju_1))] = acc_1_1;
        }
      }
      if ((rw_2 < (P * 4u))) {
        let ju_2 = (rw_2 / 4u);
        let lr_2 = (rw_2 % 4u);
        s_R0[((lr_2 * G) + ((0u * JB) + ju_2))] = acc_2_0;
        if ((1u < BB)) {
          s_R0[((lr_2 * G) + (JB + ju_2))] = acc_2_1;
        }
      }
      if ((rw_3 < (P * 4u))) {
        let ju_3 = (rw_3 / 4u);
        let lr_3 = (rw_3 % 4u);
        s_R0[((lr_3 * G) + ((0u * JB) + ju_3))] = acc_3_0;
        if ((1u < BB)) {
          s_R0[((lr_3 * G) + (JB + ju_3))] = acc_3_1;
        }
      }
    }
    workgroupBarrier();
    // let pre
    for (var f_0: u32 = lid; f_0 < (G * 4u); f_0 += WG) {
      let g = (f_0 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let i_g_0 = (f_0 / G);
        let v_1 = (hoisted[((((e_b * u.T) + t) * (4u * D_H)) + ((i_g_0 * D_H) + e_c0))] + s_R0[((i_g_0 * G) + g)]);
        s_pre[((i_g_0 * G) + g)] = v_1;
      }
    }
    workgroupBarrier();
    // assign c
    for (var f_2: u32 = lid; f_2 < G; f_2 += WG) {
      let g = (f_2 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let v_3 = ((seq_sigmoid(s_pre[(G + g)]) * pingpong[(prevBase + ((u.SO_c + (e_b * D_H)) + e_c0))]) + (seq_sigmoid(s_pre[((0u * G) + g)]) * seq_tanh(s_pre[((2u * G) + g)])));
        s_c[((0u * G) + g)] = v_3;
      }
    }
    workgroupBarrier();
    // assign h
    for (var f_4: u32 = lid; f_4 < G; f_4 += WG) {
      let g = (f_4 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let v_5 = (seq_sigmoid(s_pre[((3u * G) + g)]) * seq_tanh(s_c[((0u * G) + g)]));
        s_h[((0u * G) + g)] = v_5;
      }
    }
    workgroupBarrier();
    // output output
    for (var f_6: u32 = lid; f_6 < G; f_6 += WG) {
      let g = (f_6 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let v_7 = s_h[((0u * G) + g)];
        out_output[((((e_b * u.T) + t) * D_H) + e_c0)] = v_7;
      }
    }
    workgroupBarrier();
    // the states of step t: to the other half of the ping-pong buffer (and the final state after the last step)
    for (var f_8: u32 = lid; f_8 < G; f_8 += WG) {
      let g = (f_8 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let sa_9 = ((u.SO_h + (e_b * D_H)) + e_c0);
        let sv_10 = s_h[(((f_8 / G) * G) + g)];
        pingpong[(nextBase + sa_9)] = sv_10;
        if (((t + 1u) == u.T)) {
          states[sa_9] = sv_10;
        }
      }
    }
    for (var f_11: u32 = lid; f_11 < G; f_11 += WG) {
      let g = (f_11 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let sa_12 = ((u.SO_c + (e_b * D_H)) + e_c0);
        let sv_13 = s_c[(((f_11 / G) * G) + g)];
        pingpong[(nextBase + sa_12)] = sv_13;
        if (((t + 1u) == u.T)) {
          states[sa_12] = sv_13;
        }
      }
    }
    storageBarrier();
    workgroupBarrier();
  }
}
