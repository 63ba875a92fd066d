// seqc: kernel Mamba_scan_tile of model Mamba
struct Uniforms {
  B: u32,
  T: u32,
  has_z: u32,
  has_D: u32,
  has_delta_bias: u32,
  init_h: u32,
  SO_h: u32,
  _pad7: u32,
}
@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var<storage, read> in_u: array<f32>;
@group(0) @binding(2) var<storage, read> in_delta: array<f32>;
@group(0) @binding(3) var<storage, read> in_B: array<f32>;
@group(0) @binding(4) var<storage, read> in_C: array<f32>;
@group(0) @binding(5) var<storage, read> in_z: array<f32>;
@group(0) @binding(6) var<storage, read> params: array<f32>;
@group(0) @binding(7) var<storage, read_write> states: array<f32>;
@group(0) @binding(8) var<storage, read> states_in: array<f32>;
@group(0) @binding(9) var<storage, read_write> out_out: array<f32>;
override D_D: u32;
override D_N: u32;
override PO_A: u32;
override PO_D: u32;
override PO_delta_bias: u32;
override P: u32;
override WG: u32;
override E: u32;
override S: u32;
override TS: u32;
var<workgroup> s_h: array<f32, (WG * D_N)>;
var<workgroup> sa_0_0: array<f32, (WG * D_N)>;
var<workgroup> sb_0: array<f32, (WG * D_N)>;
var<workgroup> c_0: array<f32, (E * D_N)>;
fn seq_log1p(x: f32) -> f32 { let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * x / (u - 1.0); }
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_softplus(x: f32) -> f32 { return max(x, 0.0) + seq_log1p(exp(-abs(x))); }
fn seq_silu(x: f32) -> f32 { return x * seq_sigmoid(x); }

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
  let e_c0 = e_p;
  var r_dt = 0.0f;
  var r_y = 0.0f;
  // carry := initial state
  for (var cf: u32 = lid; cf < (E * D_N); cf += WG) {
    let ce = (cf % E);
    let cl = (cf / E);
    let cq = ((wg * E) + ce);
    if ((cq < BP)) {
      let e_b = (cq / P);
      let e_p = (cq % P);
      let e_c0 = e_p;
      let cx0_1 = cl;
      c_0[((cl * E) + ce)] = select(0.0f, states_in[((u.SO_h + (e_b * (D_D * D_N))) + ((e_c0 * D_N) + cx0_1))], (u.init_h != 0u));
    }
  }
  workgroupBarrier();
  for (var tile: u32 = 0u; tile < ((u.T + ((S * TS) - 1u)) / (S * TS)); tile += 1u) {
    let t0 = ((tile * (S * TS)) + (sgm * TS));
    // 1. compose (A, b) over this thread's segment
    if (act) {
      for (var l_0: u32 = 0u; l_0 < D_N; l_0 += 1u) {
        var A00 = 1.0f;
        var b0 = 0.0f;
        if (((t0 + TS) <= u.T)) {
          for (var tau: u32 = 0u; tau < TS; tau += 1u) {
            let t = (t0 + tau);
            let i_n_2 = l_0;
            let a00 = exp((seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u)))) * params[(PO_A + ((e_c0 * D_N) + i_n_2))]));
            let bt0 = ((seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u)))) * in_B[((((e_b * u.T) + t) * D_N) + i_n_2)]) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]);
            let n00 = (a00 * A00);
            let nb0 = ((a00 * b0) + bt0);
            A00 = n00;
            b0 = nb0;
          }
        } else {
          for (var tau: u32 = 0u; tau < min(TS, select(0u, (u.T - t0), (t0 < u.T))); tau += 1u) {
            let t = (t0 + tau);
            let i_n_2 = l_0;
            let a00 = exp((seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u)))) * params[(PO_A + ((e_c0 * D_N) + i_n_2))]));
            let bt0 = ((seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u)))) * in_B[((((e_b * u.T) + t) * D_N) + i_n_2)]) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]);
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
    for (var cf: u32 = lid; cf < (E * D_N); cf += WG) {
      let ce = (cf % E);
      let cl = (cf / E);
      if ((((wg * E) + ce) < BP)) {
        var h0 = c_0[((cl * E) + ce)];
        for (var sg: u32 = 0u; sg < S; sg += 1u) {
          let col = ((sg * E) + ce);
          let at = ((cl * WG) + col);
          s_h[at] = h0;
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
          // let dt
          let v_1 = seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u))));
          r_dt = v_1;
          // assign h
          for (var l_2: u32 = 0u; l_2 < D_N; l_2 += 1u) {
            let i_n_2 = l_2;
            let v_3 = ((exp((r_dt * params[(PO_A + ((e_c0 * D_N) + i_n_2))])) * s_h[((i_n_2 * WG) + lid)]) + ((r_dt * in_B[((((e_b * u.T) + t) * D_N) + i_n_2)]) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
            s_h[((i_n_2 * WG) + lid)] = v_3;
          }
          // let y
          var acc_4 = 0.0f;
          for (var n_5: u32 = 0u; n_5 < D_N; n_5 += 1u) {
            acc_4 = (acc_4 + (s_h[((n_5 * WG) + lid)] * in_C[((((e_b * u.T) + t) * D_N) + n_5)]));
          }
          let v_6 = (acc_4 + (select(0.0f, params[(PO_D + e_c0)], (u.has_D != 0u)) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
          r_y = v_6;
          // output out
          let v_7 = select(r_y, (r_y * seq_silu(select(0.0f, in_z[((((e_b * u.T) + t) * D_D) + e_c0)], (u.has_z != 0u)))), (select(0.0f, 1.0f, (u.has_z != 0u)) != 0.0f));
          out_out[((((e_b * u.T) + t) * D_D) + e_c0)] = v_7;
        }
      } else {
        for (var tau: u32 = 0u; tau < min(TS, select(0u, (u.T - t0), (t0 < u.T))); tau += 1u) {
          let t = (t0 + tau);
          // let dt
          let v_1 = seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u))));
          r_dt = v_1;
          // assign h
          for (var l_2: u32 = 0u; l_2 < D_N; l_2 += 1u) {
            let i_n_2 = l_2;
            let v_3 = ((exp((r_dt * params[(PO_A + ((e_c0 * D_N) + i_n_2))])) * s_h[((i_n_2 * WG) + lid)]) + ((r_dt * in_B[((((e_b * u.T) + t) * D_N) + i_n_2)]) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
            s_h[((i_n_2 * WG) + lid)] = v_3;
          }
          // let y
          var acc_4 = 0.0f;
          for (var n_5: u32 = 0u; n_5 < D_N; n_5 += 1u) {
            acc_4 = (acc_4 + (s_h[((n_5 * WG) + lid)] * in_C[((((e_b * u.T) + t) * D_N) + n_5)]));
          }
          let v_6 = (acc_4 + (select(0.0f, params[(PO_D + e_c0)], (u.has_D != 0u)) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
          r_y = v_6;
          // output out
          let v_7 = select(r_y, (r_y * seq_silu(select(0.0f, in_z[((((e_b * u.T) + t) * D_D) + e_c0)], (u.has_z != 0u)))), (select(0.0f, 1.0f, (u.has_z != 0u)) != 0.0f));
          out_out[((((e_b * u.T) + t) * D_D) + e_c0)] = v_7;
        }
      }
    }
  }
  workgroupBarrier();
  // final state := carry
  for (var cf: u32 = lid; cf < (E * D_N); cf += WG) {
    let ce = (cf % E);
    let cl = (cf / E);
    let cq = ((wg * E) + ce);
    if ((cq < BP)) {
      let e_b = (cq / P);
      let e_p = (cq % P);
      let e_c0 = e_p;
      let cx0_1 = cl;
      states[((u.SO_h + (e_b * (D_D * D_N))) + ((e_c0 * D_N) + cx0_1))] = c_0[((cl * E) + ce)];
    }
  }
}
