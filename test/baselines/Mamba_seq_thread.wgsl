// seqc: kernel Mamba_seq_thread of model Mamba
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
override G: u32;
override WG: u32;
var<workgroup> s_h: array<f32, (G * D_N)>;
fn seq_log1p(x: f32) -> f32 { let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * x / (u - 1.0); }
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_softplus(x: f32) -> f32 { return max(x, 0.0) + seq_log1p(exp(-abs(x))); }
fn seq_silu(x: f32) -> f32 { return x * seq_sigmoid(x); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  let q = ((wg * G) + lid);
  if ((q < BP)) {
    let e_b = (q / P);
    let e_p = (q % P);
    let e_c0 = e_p;
    var r_dt = 0.0f;
    var r_y = 0.0f;
    // load the initial state
    for (var l_0: u32 = 0u; l_0 < D_N; l_0 += 1u) {
      let s1_1 = l_0;
      s_h[((l_0 * G) + lid)] = select(0.0f, states_in[((u.SO_h + (e_b * (D_D * D_N))) + ((e_c0 * D_N) + s1_1))], (u.init_h != 0u));
    }
    for (var t: u32 = 0u; t < u.T; t += 1u) {
      // let dt
      let v_2 = seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u))));
      r_dt = v_2;
      // assign h
      for (var l_3: u32 = 0u; l_3 < D_N; l_3 += 1u) {
        let i_n_2 = l_3;
        let v_4 = ((exp((r_dt * params[(PO_A + ((e_c0 * D_N) + i_n_2))])) * s_h[((i_n_2 * G) + lid)]) + ((r_dt * in_B[((((e_b * u.T) + t) * D_N) + i_n_2)]) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
        s_h[((i_n_2 * G) + lid)] = v_4;
      }
      // let y
      var acc_5 = 0.0f;
      for (var n_6: u32 = 0u; n_6 < D_N; n_6 += 1u) {
        acc_5 = (acc_5 + (s_h[((n_6 * G) + lid)] * in_C[((((e_b * u.T) + t) * D_N) + n_6)]));
      }
      let v_7 = (acc_5 + (select(0.0f, params[(PO_D + e_c0)], (u.has_D != 0u)) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
      r_y = v_7;
      // output out
      let v_8 = select(r_y, (r_y * seq_silu(select(0.0f, in_z[((((e_b * u.T) + t) * D_D) + e_c0)], (u.has_z != 0u)))), (select(0.0f, 1.0f, (u.has_z != 0u)) != 0.0f));
      out_out[((((e_b * u.T) + t) * D_D) + e_c0)] = v_8;
    }
    // write the final state
    for (var l_9: u32 = 0u; l_9 < D_N; l_9 += 1u) {
      let s1_10 = l_9;
      states[((u.SO_h + (e_b * (D_D * D_N))) + ((e_c0 * D_N) + s1_10))] = s_h[((l_9 * G) + lid)];
    }
  }
}
