// seqc: kernel Gla_seq_global of model Gla
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
@group(0) @binding(8) var<storage, read_write> gslots: array<f32>;
override D_H: u32;
override D_K: u32;
override D_V: u32;
override P: u32;
override G: u32;
override WG: u32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  // load the initial state
  for (var f_0: u32 = lid; f_0 < (G * D_K); f_0 += WG) {
    let g = (f_0 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let e_c1 = (e_p % D_V);
      let e_r1 = (e_p / D_V);
      let e_c0 = e_r1;
      let s1_1 = (f_0 / G);
      gslots[(((f_0 / G) * BP) + q)] = select(0.0f, states_in[((u.SO_S + (e_b * ((D_H * D_K) * D_V))) + ((((e_c0 * D_K) + s1_1) * D_V) + e_c1))], (u.init_S != 0u));
    }
  }
  storageBarrier();
  workgroupBarrier();
  for (var t: u32 = 0u; t < u.T; t += 1u) {
    // assign S
    for (var f_2: u32 = lid; f_2 < (G * D_K); f_2 += WG) {
      let g = (f_2 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c1 = (e_p % D_V);
        let e_r1 = (e_p / D_V);
        let e_c0 = e_r1;
        let i_i_1 = (f_2 / G);
        let v_3 = ((exp(in_gk[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))]) * gslots[((i_i_1 * BP) + q)]) + (in_k[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_i_1))] * in_v[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))]));
        gslots[((i_i_1 * BP) + q)] = v_3;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // output o
    for (var f_4: u32 = lid; f_4 < G; f_4 += WG) {
      let g = (f_4 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c1 = (e_p % D_V);
        let e_r1 = (e_p / D_V);
        let e_c0 = e_r1;
        var acc_5 = 0.0f;
        for (var i_6: u32 = 0u; i_6 < D_K; i_6 += 1u) {
          acc_5 = (acc_5 + ((in_q[((((e_b * u.T) + t) * (D_H * D_K)) + ((e_c0 * D_K) + i_6))] * inverseSqrt(f32(D_K))) * gslots[((i_6 * BP) + q)]));
        }
        let v_7 = acc_5;
        out_o[((((e_b * u.T) + t) * (D_H * D_V)) + ((e_c0 * D_V) + e_c1))] = v_7;
      }
    }
    storageBarrier();
    workgroupBarrier();
  }
  // write the final state
  for (var f_8: u32 = lid; f_8 < (G * D_K); f_8 += WG) {
    let g = (f_8 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let e_c1 = (e_p % D_V);
      let e_r1 = (e_p / D_V);
      let e_c0 = e_r1;
      let s1_9 = (f_8 / G);
      states[((u.SO_S + (e_b * ((D_H * D_K) * D_V))) + ((((e_c0 * D_K) + s1_9) * D_V) + e_c1))] = gslots[(((f_8 / G) * BP) + q)];
    }
  }
}
