// seqc: kernel Mamba_seq_global of model Mamba
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
@group(0) @binding(10) var<storage, read_write> gslots: array<f32>;
override D_D: u32;
override D_N: u32;
override PO_A: u32;
override PO_D: u32;
override PO_delta_bias: u32;
override P: u32;
override G: u32;
override WG: u32;
fn seq_log1p(x: f32) -> f32 { let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * x / (u - 1.0); }
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_softplus(x: f32) -> f32 { return max(x, 0.0) + seq_log1p(exp(-abs(x))); }
fn seq_silu(x: f32) -> f32 { return x * seq_sigmoid(x); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  // load the initial state
  for (var f_0: u32 = lid; f_0 < (G * D_N); f_0 += WG) {
    let g = (f_0 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let e_c0 = e_p;
      let s1_1 = (f_0 / G);
      gslots[(((f_0 / G) * BP) + q)] = select(0.0f, states_in[((u.SO_h + (e_b * (D_D * D_N))) + ((e_c0 * D_N) + s1_1))], (u.init_h != 0u));
    }
  }
  storageBarrier();
  workgroupBarrier();
  for (var t: u32 = 0u; t < u.T; t += 1u) {
    // let dt
    for (var f_2: u32 = lid; f_2 < G; f_2 += WG) {
      let g = (f_2 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c0 = e_p;
        let v_3 = seq_softplus((in_delta[((((e_b * u.T) + t) * D_D) + e_c0)] + select(0.0f, params[(PO_delta_bias + e_c0)], (u.has_delta_bias != 0u))));
        gslots[((BP * D_N) + ((0u * BP) + q))] = v_3;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // assign h
    for (var f_4: u32 = lid; f_4 < (G * D_N); f_4 += WG) {
      let g = (f_4 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c0 = e_p;
        let i_n_2 = (f_4 / G);
        let v_5 = ((exp((gslots[((BP * D_N) + ((0u * BP) + q))] * params[(PO_A + ((e_c0 * D_N) + i_n_2))])) * gslots[((i_n_2 * BP) + q)]) + ((gslots[((BP * D_N) + ((0u * BP) + q))] * in_B[((((e_b * u.T) + t) * D_N) + i_n_2)]) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
        gslots[((i_n_2 * BP) + q)] = v_5;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // let y
    for (var f_6: u32 = lid; f_6 < G; f_6 += WG) {
      let g = (f_6 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c0 = e_p;
        var acc_7 = 0.0f;
        for (var n_8: u32 = 0u; n_8 < D_N; n_8 += 1u) {
          acc_7 = (acc_7 + (gslots[((n_8 * BP) + q)] * in_C[((((e_b * u.T) + t) * D_N) + n_8)]));
        }
        let v_9 = (acc_7 + (select(0.0f, params[(PO_D + e_c0)], (u.has_D != 0u)) * in_u[((((e_b * u.T) + t) * D_D) + e_c0)]));
        gslots[(((BP * D_N) + BP) + ((0u * BP) + q))] = v_9;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // output out
    for (var f_10: u32 = lid; f_10 < G; f_10 += WG) {
      let g = (f_10 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c0 = e_p;
        let v_11 = select(gslots[(((BP * D_N) + BP) + ((0u * BP) + q))], (gslots[(((BP * D_N) + BP) + ((0u * BP) + q))] * seq_silu(select(0.0f, in_z[((((e_b * u.T) + t) * D_D) + e_c0)], (u.has_z != 0u)))), (select(0.0f, 1.0f, (u.has_z != 0u)) != 0.0f));
        out_out[((((e_b * u.T) + t) * D_D) + e_c0)] = v_11;
      }
    }
    storageBarrier();
    workgroupBarrier();
  }
  // write the final state
  for (var f_12: u32 = lid; f_12 < (G * D_N); f_12 += WG) {
    let g = (f_12 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let e_c0 = e_p;
      let s1_13 = (f_12 / G);
      states[((u.SO_h + (e_b * (D_D * D_N))) + ((e_c0 * D_N) + s1_13))] = gslots[(((f_12 / G) * BP) + q)];
    }
  }
}
