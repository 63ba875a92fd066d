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
@group(0) @binding(7) var<storage, read_write> wpacked: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> hoisted: array<f32>;
struct StepIndex {
  t: u32,
  t0: u32,
  t1: u32,
  tc: u32,
}
@group(0) @binding(9) var<uniform> seq_step: StepIndex;
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
var<workgroup> spp: array<f32, (2u * (BB * (D_H + D_H)))>;
var<workgroup> s_hoist: array<f32, (BB * (4u * D_H))>;
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_tanh(x: f32) -> f32 { let z = exp(-2.0 * abs(x)); let r = (1.0 - z) / (1.0 + z); return select(-r, r, x >= 0.0); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let step_index = seq_step.t;
  let block_t0 = seq_step.t0;
  let block_t1 = seq_step.t1;
  let block_tc = seq_step.tc;
  let ibase = ((block_t0 % 2u) * (BB * (D_H + D_H)));
  for (var y: u32 = lid; y < (BB * D_H); y += WG) {
    let ib = ((wg * BB) + (y / D_H));
    var iv = 0.0f;
    if ((ib < u.B)) {
      let ia = ((u.SO_h + (ib * D_H)) + (y % D_H));
      if ((block_t0 == 0u)) {
        iv = pingpong[ia];
      } else {
        iv = states[ia];
      }
    }
    spp[(ibase + ((BB * 0u) + y))] = iv;
  }
  for (var y: u32 = lid; y < (BB * D_H); y += WG) {
    let ib = ((wg * BB) + (y / D_H));
    var iv = 0.0f;
    if ((ib < u.B)) {
      let ia = ((u.SO_c + (ib * D_H)) + (y % D_H));
      if ((block_t0 == 0u)) {
        iv = pingpong[ia];
      } else {
        iv = states[ia];
      }
    }
    spp[(ibase + ((BB * D_H) + y))] = iv;
  }
  workgroupBarrier();
  for (var t: u32 = block_t0; t < block_t1; t += 1u) {
    let prevBase = ((t % 2u) * (BB * (D_H + D_H)));
    let nextBase = ((BB * (D_H + D_H)) - prevBase);
    let py_0 = (lid + (0u * WG));
    var pv_0 = 0.0f;
    if ((py_0 < (BB * (4u * D_H)))) {
      let hb0 = ((wg * BB) + (py_0 / (4u * D_H)));
      if ((hb0 < u.B)) {
        pv_0 = hoisted[((((hb0 * block_tc) + (t - block_t0)) * (4u * D_H)) + (py_0 % (4u * D_H)))];
      }
    }
    let py_1 = (lid + WG);
    var pv_1 = 0.0f;
    if ((py_1 < (BB * (4u * D_H)))) {
      let hb1 = ((wg * BB) + (py_1 / (4u * D_H)));
      if ((hb1 < u.B)) {
        pv_1 = hoisted[((((hb1 * block_tc) + (t - block_t0)) * (4u * D_H)) + (py_1 % (4u * D_H)))];
      }
    }
    let py_2 = (lid + (2u * WG));
    var pv_2 = 0.0f;
    if ((py_2 < (BB * (4u * D_H)))) {
      let hb2 = ((wg * BB) + (py_2 / (4u * D_H)));
      if ((hb2 < u.B)) {
        pv_2 = hoisted[((((hb2 * block_tc) + (t - block_t0)) * (4u * D_H)) + (py_2 % (4u * D_H)))];
      }
    }
    let py_3 = (lid + (3u * WG));
    var pv_3 = 0.0f;
    if ((py_3 < (BB * (4u * D_H)))) {
      let hb3 = ((wg * BB) + (py_3 / (4u * D_H)));
      if ((hb3 < u.B)) {
        pv_3 = hoisted[((((hb3 * block_tc) + (t - block_t0)) * (4u * D_H)) + (py_3 % (4u * D_H)))];
      }
    }
    // contraction weight_hh_l0 x h (step t-1) for pre: quads of 4 rows (one vec4 per depth) x 2 batch rows per thread
    for (var q: u32 = lid; q < ((4u * (((P * 4u) + 3u) / 4u)) / 4u); q += WG) {
      let rw_0 = (q * 4u);
      var acc_0_0 = 0.0f;
      var acc_0_1 = 0.0f;
      let rw_1 = ((q * 4u) + 1u);
      var acc_1_0 = 0.0f;
      var acc_1_1 = 0.0f;
      let rw_2 = ((q * 4u) + 2u);
      var acc_2_0 = 0.0f;
      var acc_2_1 = 0.0f;
      let rw_3 = ((q * 4u) + 3u);
      var acc_3_0 = 0.0f;
      var acc_3_1 = 0.0f;
      let MU = (D_H - (D_H % 16u));
      for (var m0: u32 = 0u; m0 < MU; m0 += 16u) {
        let w_0 = wpacked[(((0u / 4u) + (m0 * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_1 = wpacked[(((0u / 4u) + ((m0 + 1u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_2 = wpacked[(((0u / 4u) + ((m0 + 2u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_3 = wpacked[(((0u / 4u) + ((m0 + 3u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_4 = wpacked[(((0u / 4u) + ((m0 + 4u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_5 = wpacked[(((0u / 4u) + ((m0 + 5u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_6 = wpacked[(((0u / 4u) + ((m0 + 6u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_7 = wpacked[(((0u / 4u) + ((m0 + 7u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_8 = wpacked[(((0u / 4u) + ((m0 + 8u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_9 = wpacked[(((0u / 4u) + ((m0 + 9u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_10 = wpacked[(((0u / 4u) + ((m0 + 10u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_11 = wpacked[(((0u / 4u) + ((m0 + 11u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_12 = wpacked[(((0u / 4u) + ((m0 + 12u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_13 = wpacked[(((0u / 4u) + ((m0 + 13u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_14 = wpacked[(((0u / 4u) + ((m0 + 14u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        let w_15 = wpacked[(((0u / 4u) + ((m0 + 15u) * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        acc_0_0 = (acc_0_0 + (w_0.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + m0))]));
        acc_1_0 = (acc_1_0 + (w_0.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + m0))]));
        acc_2_0 = (acc_2_0 + (w_0.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + m0))]));
        acc_3_0 = (acc_3_0 + (w_0.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + m0))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_0.x * spp[((prevBase + (BB * 0u)) + (D_H + m0))]));
          acc_1_1 = (acc_1_1 + (w_0.y * spp[((prevBase + (BB * 0u)) + (D_H + m0))]));
          acc_2_1 = (acc_2_1 + (w_0.z * spp[((prevBase + (BB * 0u)) + (D_H + m0))]));
          acc_3_1 = (acc_3_1 + (w_0.w * spp[((prevBase + (BB * 0u)) + (D_H + m0))]));
        }
        acc_0_0 = (acc_0_0 + (w_1.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 1u)))]));
        acc_1_0 = (acc_1_0 + (w_1.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 1u)))]));
        acc_2_0 = (acc_2_0 + (w_1.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 1u)))]));
        acc_3_0 = (acc_3_0 + (w_1.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 1u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_1.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 1u)))]));
          acc_1_1 = (acc_1_1 + (w_1.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 1u)))]));
          acc_2_1 = (acc_2_1 + (w_1.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 1u)))]));
          acc_3_1 = (acc_3_1 + (w_1.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 1u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_2.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 2u)))]));
        acc_1_0 = (acc_1_0 + (w_2.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 2u)))]));
        acc_2_0 = (acc_2_0 + (w_2.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 2u)))]));
        acc_3_0 = (acc_3_0 + (w_2.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 2u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_2.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 2u)))]));
          acc_1_1 = (acc_1_1 + (w_2.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 2u)))]));
          acc_2_1 = (acc_2_1 + (w_2.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 2u)))]));
          acc_3_1 = (acc_3_1 + (w_2.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 2u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_3.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 3u)))]));
        acc_1_0 = (acc_1_0 + (w_3.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 3u)))]));
        acc_2_0 = (acc_2_0 + (w_3.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 3u)))]));
        acc_3_0 = (acc_3_0 + (w_3.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 3u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_3.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 3u)))]));
          acc_1_1 = (acc_1_1 + (w_3.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 3u)))]));
          acc_2_1 = (acc_2_1 + (w_3.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 3u)))]));
          acc_3_1 = (acc_3_1 + (w_3.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 3u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_4.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 4u)))]));
        acc_1_0 = (acc_1_0 + (w_4.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 4u)))]));
        acc_2_0 = (acc_2_0 + (w_4.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 4u)))]));
        acc_3_0 = (acc_3_0 + (w_4.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 4u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_4.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 4u)))]));
          acc_1_1 = (acc_1_1 + (w_4.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 4u)))]));
          acc_2_1 = (acc_2_1 + (w_4.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 4u)))]));
          acc_3_1 = (acc_3_1 + (w_4.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 4u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_5.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 5u)))]));
        acc_1_0 = (acc_1_0 + (w_5.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 5u)))]));
        acc_2_0 = (acc_2_0 + (w_5.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 5u)))]));
        acc_3_0 = (acc_3_0 + (w_5.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 5u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_5.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 5u)))]));
          acc_1_1 = (acc_1_1 + (w_5.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 5u)))]));
          acc_2_1 = (acc_2_1 + (w_5.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 5u)))]));
          acc_3_1 = (acc_3_1 + (w_5.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 5u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_6.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 6u)))]));
        acc_1_0 = (acc_1_0 + (w_6.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 6u)))]));
        acc_2_0 = (acc_2_0 + (w_6.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 6u)))]));
        acc_3_0 = (acc_3_0 + (w_6.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 6u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_6.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 6u)))]));
          acc_1_1 = (acc_1_1 + (w_6.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 6u)))]));
          acc_2_1 = (acc_2_1 + (w_6.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 6u)))]));
          acc_3_1 = (acc_3_1 + (w_6.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 6u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_7.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 7u)))]));
        acc_1_0 = (acc_1_0 + (w_7.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 7u)))]));
        acc_2_0 = (acc_2_0 + (w_7.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 7u)))]));
        acc_3_0 = (acc_3_0 + (w_7.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 7u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_7.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 7u)))]));
          acc_1_1 = (acc_1_1 + (w_7.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 7u)))]));
          acc_2_1 = (acc_2_1 + (w_7.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 7u)))]));
          acc_3_1 = (acc_3_1 + (w_7.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 7u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_8.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 8u)))]));
        acc_1_0 = (acc_1_0 + (w_8.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 8u)))]));
        acc_2_0 = (acc_2_0 + (w_8.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 8u)))]));
        acc_3_0 = (acc_3_0 + (w_8.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 8u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_8.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 8u)))]));
          acc_1_1 = (acc_1_1 + (w_8.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 8u)))]));
          acc_2_1 = (acc_2_1 + (w_8.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 8u)))]));
          acc_3_1 = (acc_3_1 + (w_8.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 8u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_9.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 9u)))]));
        acc_1_0 = (acc_1_0 + (w_9.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 9u)))]));
        acc_2_0 = (acc_2_0 + (w_9.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 9u)))]));
        acc_3_0 = (acc_3_0 + (w_9.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 9u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_9.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 9u)))]));
          acc_1_1 = (acc_1_1 + (w_9.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 9u)))]));
          acc_2_1 = (acc_2_1 + (w_9.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 9u)))]));
          acc_3_1 = (acc_3_1 + (w_9.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 9u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_10.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 10u)))]));
        acc_1_0 = (acc_1_0 + (w_10.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 10u)))]));
        acc_2_0 = (acc_2_0 + (w_10.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 10u)))]));
        acc_3_0 = (acc_3_0 + (w_10.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 10u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_10.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 10u)))]));
          acc_1_1 = (acc_1_1 + (w_10.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 10u)))]));
          acc_2_1 = (acc_2_1 + (w_10.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 10u)))]));
          acc_3_1 = (acc_3_1 + (w_10.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 10u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_11.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 11u)))]));
        acc_1_0 = (acc_1_0 + (w_11.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 11u)))]));
        acc_2_0 = (acc_2_0 + (w_11.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 11u)))]));
        acc_3_0 = (acc_3_0 + (w_11.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 11u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_11.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 11u)))]));
          acc_1_1 = (acc_1_1 + (w_11.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 11u)))]));
          acc_2_1 = (acc_2_1 + (w_11.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 11u)))]));
          acc_3_1 = (acc_3_1 + (w_11.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 11u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_12.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 12u)))]));
        acc_1_0 = (acc_1_0 + (w_12.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 12u)))]));
        acc_2_0 = (acc_2_0 + (w_12.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 12u)))]));
        acc_3_0 = (acc_3_0 + (w_12.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 12u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_12.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 12u)))]));
          acc_1_1 = (acc_1_1 + (w_12.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 12u)))]));
          acc_2_1 = (acc_2_1 + (w_12.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 12u)))]));
          acc_3_1 = (acc_3_1 + (w_12.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 12u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_13.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 13u)))]));
        acc_1_0 = (acc_1_0 + (w_13.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 13u)))]));
        acc_2_0 = (acc_2_0 + (w_13.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 13u)))]));
        acc_3_0 = (acc_3_0 + (w_13.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 13u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_13.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 13u)))]));
          acc_1_1 = (acc_1_1 + (w_13.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 13u)))]));
          acc_2_1 = (acc_2_1 + (w_13.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 13u)))]));
          acc_3_1 = (acc_3_1 + (w_13.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 13u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_14.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 14u)))]));
        acc_1_0 = (acc_1_0 + (w_14.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 14u)))]));
        acc_2_0 = (acc_2_0 + (w_14.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 14u)))]));
        acc_3_0 = (acc_3_0 + (w_14.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 14u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_14.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 14u)))]));
          acc_1_1 = (acc_1_1 + (w_14.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 14u)))]));
          acc_2_1 = (acc_2_1 + (w_14.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 14u)))]));
          acc_3_1 = (acc_3_1 + (w_14.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 14u)))]));
        }
        acc_0_0 = (acc_0_0 + (w_15.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 15u)))]));
        acc_1_0 = (acc_1_0 + (w_15.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 15u)))]));
        acc_2_0 = (acc_2_0 + (w_15.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 15u)))]));
        acc_3_0 = (acc_3_0 + (w_15.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + (m0 + 15u)))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (w_15.x * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 15u)))]));
          acc_1_1 = (acc_1_1 + (w_15.y * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 15u)))]));
          acc_2_1 = (acc_2_1 + (w_15.z * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 15u)))]));
          acc_3_1 = (acc_3_1 + (w_15.w * spp[((prevBase + (BB * 0u)) + (D_H + (m0 + 15u)))]));
        }
      }
      for (var mt: u32 = MU; mt < D_H; mt += 1u) {
        let wt = wpacked[(((0u / 4u) + (mt * ((4u * (((P * 4u) + 3u) / 4u)) / 4u))) + q)];
        acc_0_0 = (acc_0_0 + (wt.x * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + mt))]));
        acc_1_0 = (acc_1_0 + (wt.y * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + mt))]));
        acc_2_0 = (acc_2_0 + (wt.z * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + mt))]));
        acc_3_0 = (acc_3_0 + (wt.w * spp[((prevBase + (BB * 0u)) + ((0u * D_H) + mt))]));
        if ((1u < BB)) {
          acc_0_1 = (acc_0_1 + (wt.x * spp[((prevBase + (BB * 0u)) + (D_H + mt))]));
          acc_1_1 = (acc_1_1 + (wt.y * spp[((prevBase + (BB * 0u)) + (D_H + mt))]));
          acc_2_1 = (acc_2_1 + (wt.z * spp[((prevBase + (BB * 0u)) + (D_H + mt))]));
          acc_3_1 = (acc_3_1 + (wt.w * spp[((prevBase + (BB * 0u)) + (D_H + mt))]));
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
    if ((py_0 < (BB * (4u * D_H)))) {
      s_hoist[py_0] = pv_0;
    }
    if ((py_1 < (BB * (4u * D_H)))) {
      s_hoist[py_1] = pv_1;
    }
    if ((py_2 < (BB * (4u * D_H)))) {
      s_hoist[py_2] = pv_2;
    }
    if ((py_3 < (BB * (4u * D_H)))) {
      s_hoist[py_3] = pv_3;
    }
    for (var y: u32 = (lid + (4u * WG)); y < (BB * (4u * D_H)); y += WG) {
      var hv = 0.0f;
      let hbr = ((wg * BB) + (y / (4u * D_H)));
      if ((hbr < u.B)) {
        hv = hoisted[((((hbr * block_tc) + (t - block_t0)) * (4u * D_H)) + (y % (4u * D_H)))];
      }
      s_hoist[y] = hv;
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
        let v_1 = (s_hoist[(((e_b - (wg * BB)) * (4u * D_H)) + ((i_g_0 * D_H) + e_c0))] + s_R0[((i_g_0 * G) + g)]);
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
        let v_3 = ((seq_sigmoid(s_pre[(G + g)]) * spp[((prevBase + (BB * D_H)) + (((e_b - (wg * BB)) * D_H) + e_c0))]) + (seq_sigmoid(s_pre[((0u * G) + g)]) * seq_tanh(s_pre[((2u * G) + g)])));
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
        let sv_9 = s_h[(((f_8 / G) * G) + g)];
        spp[((nextBase + (BB * 0u)) + (((e_b - (wg * BB)) * D_H) + e_c0))] = sv_9;
        if (((t + 1u) == block_t1)) {
          states[((u.SO_h + (e_b * D_H)) + e_c0)] = sv_9;
        }
      }
    }
    for (var f_10: u32 = lid; f_10 < G; f_10 += WG) {
      let g = (f_10 % G);
      let e_b = ((wg * BB) + (g / JB));
      let e_p = (g % JB);
      let e_c0 = e_p;
      if (((e_b < u.B) && (e_p < P))) {
        let sv_11 = s_c[(((f_10 / G) * G) + g)];
        spp[((nextBase + (BB * D_H)) + (((e_b - (wg * BB)) * D_H) + e_c0))] = sv_11;
        if (((t + 1u) == block_t1)) {
          states[((u.SO_c + (e_b * D_H)) + e_c0)] = sv_11;
        }
      }
    }
    workgroupBarrier();
  }
}
