// seqc: kernel Lstm_grid_hoist_pre of model Lstm
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
@group(0) @binding(7) var<storage, read_write> hoisted: array<f32>;
struct StepIndex {
  t: u32,
  t0: u32,
  t1: u32,
  tc: u32,
}
@group(0) @binding(8) var<uniform> seq_step: StepIndex;
override D_H: u32;
override D_I: u32;
override PO_weight_ih_l0: u32;
override PO_weight_hh_l0: u32;
override PO_bias_ih_l0: u32;
override PO_bias_hh_l0: u32;
override P: u32;
var<workgroup> hx: array<f32, 1088u>;
var<workgroup> hp: array<f32, 1088u>;

@compute @workgroup_size(256u)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let step_index = seq_step.t;
  let block_t0 = seq_step.t0;
  let block_t1 = seq_step.t1;
  let block_tc = seq_step.tc;
  let C = (4u * D_H);
  let NCT = ((C + 63u) / 64u);
  let NRT = ((block_tc + 63u) / 64u);
  let NSB = (block_t1 - block_t0);
  let rowTile = (wg / NCT);
  let hbb = (rowTile / NRT);
  let hinRow = ((hbb * u.T) + block_t0);
  let rowBase = ((rowTile % NRT) * 64u);
  let colBase = ((wg % NCT) * 64u);
  let tx = (lid % 16u);
  let ty = (lid / 16u);
  var acc_0_0 = 0.0f;
  var acc_0_1 = 0.0f;
  var acc_0_2 = 0.0f;
  var acc_0_3 = 0.0f;
  var acc_1_0 = 0.0f;
  var acc_1_1 = 0.0f;
  var acc_1_2 = 0.0f;
  var acc_1_3 = 0.0f;
  var acc_2_0 = 0.0f;
  var acc_2_1 = 0.0f;
  var acc_2_2 = 0.0f;
  var acc_2_3 = 0.0f;
  var acc_3_0 = 0.0f;
  var acc_3_1 = 0.0f;
  var acc_3_2 = 0.0f;
  var acc_3_3 = 0.0f;
  for (var k0: u32 = 0u; k0 < D_I; k0 += 16u) {
    for (var y: u32 = lid; y < 1024u; y += 256u) {
      let rr = (y / 16u);
      let kk = (y % 16u);
      let k = (k0 + kk);
      let xrow = (rowBase + rr);
      var xv = 0.0f;
      if (((xrow < NSB) && (k < D_I))) {
        xv = in_x[(((hinRow + xrow) * D_I) + k)];
      }
      hx[((rr * 17u) + kk)] = xv;
      let pcol = (colBase + rr);
      var pv = 0.0f;
      if (((pcol < C) && (k < D_I))) {
        let p_j_1 = (pcol % D_H);
        let p_j_1_r = (pcol / D_H);
        let p_g_0 = p_j_1_r;
        pv = params[(PO_weight_ih_l0 + ((((p_g_0 * D_H) + p_j_1) * D_I) + k))];
      }
      hp[((rr * 17u) + kk)] = pv;
    }
    workgroupBarrier();
    for (var kq: u32 = 0u; kq < min(16u, (D_I - k0)); kq += 1u) {
      let a_0 = hx[((ty * 17u) + kq)];
      let a_1 = hx[(((ty + 16u) * 17u) + kq)];
      let a_2 = hx[(((ty + 32u) * 17u) + kq)];
      let a_3 = hx[(((ty + 48u) * 17u) + kq)];
      let b_0 = hp[((tx * 17u) + kq)];
      let b_1 = hp[(((tx + 16u) * 17u) + kq)];
      let b_2 = hp[(((tx + 32u) * 17u) + kq)];
      let b_3 = hp[(((tx + 48u) * 17u) + kq)];
      acc_0_0 = (acc_0_0 + (a_0 * b_0));
      acc_0_1 = (acc_0_1 + (a_0 * b_1));
      acc_0_2 = (acc_0_2 + (a_0 * b_2));
      acc_0_3 = (acc_0_3 + (a_0 * b_3));
      acc_1_0 = (acc_1_0 + (a_1 * b_0));
      acc_1_1 = (acc_1_1 + (a_1 * b_1));
      acc_1_2 = (acc_1_2 + (a_1 * b_2));
      acc_1_3 = (acc_1_3 + (a_1 * b_3));
      acc_2_0 = (acc_2_0 + (a_2 * b_0));
      acc_2_1 = (acc_2_1 + (a_2 * b_1));
      acc_2_2 = (acc_2_2 + (a_2 * b_2));
      acc_2_3 = (acc_2_3 + (a_2 * b_3));
      acc_3_0 = (acc_3_0 + (a_3 * b_0));
      acc_3_1 = (acc_3_1 + (a_3 * b_1));
      acc_3_2 = (acc_3_2 + (a_3 * b_2));
      acc_3_3 = (acc_3_3 + (a_3 * b_3));
    }
    workgroupBarrier();
  }
  for (var ri: u32 = 0u; ri < 4u; ri += 1u) {
    workgroupBarrier();
    hx[((ty * 64u) + tx)] = select(select(select(acc_3_0, acc_2_0, (ri == 2u)), acc_1_0, (ri == 1u)), acc_0_0, (ri == 0u));
    hx[((ty * 64u) + (tx + 16u))] = select(select(select(acc_3_1, acc_2_1, (ri == 2u)), acc_1_1, (ri == 1u)), acc_0_1, (ri == 0u));
    hx[((ty * 64u) + (tx + 32u))] = select(select(select(acc_3_2, acc_2_2, (ri == 2u)), acc_1_2, (ri == 1u)), acc_0_2, (ri == 0u));
    hx[((ty * 64u) + (tx + 48u))] = select(select(select(acc_3_3, acc_2_3, (ri == 2u)), acc_1_3, (ri == 1u)), acc_0_3, (ri == 0u));
    workgroupBarrier();
    for (var e: u32 = lid; e < 1024u; e += 256u) {
      let erow = ((rowBase + (ri * 16u)) + (e / 64u));
      let ecol = (colBase + (e % 64u));
      if (((erow < NSB) && (ecol < C))) {
        let e_b = hbb;
        let t = min((block_t0 + erow), (u.T - 1u));
        let c_j_1 = (ecol % D_H);
        let c_j_1_r = (ecol / D_H);
        let c_g_0 = c_j_1_r;
        hoisted[((((e_b * block_tc) + erow) * (4u * D_H)) + ecol)] = (hx[e] + (select(0.0f, params[(PO_bias_ih_l0 + ((c_g_0 * D_H) + c_j_1))], (u.has_bias_ih_l0 != 0u)) + select(0.0f, params[(PO_bias_hh_l0 + ((c_g_0 * D_H) + c_j_1))], (u.has_bias_hh_l0 != 0u))));
      }
    }
  }
}
