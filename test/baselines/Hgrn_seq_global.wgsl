// seqc: kernel Hgrn_seq_global of model Hgrn
struct Uniforms {
  B: u32,
  T: u32,
  init_h: u32,
  SO_h: u32,
}
@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var<storage, read> in_x: array<f32>;
@group(0) @binding(2) var<storage, read> in_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> states: array<f32>;
@group(0) @binding(4) var<storage, read> states_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_o: array<f32>;
@group(0) @binding(6) var<storage, read_write> gslots: array<f32>;
override D_D: u32;
override P: u32;
override G: u32;
override WG: u32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  // load the initial state
  for (var f_0: u32 = lid; f_0 < G; f_0 += WG) {
    let g = (f_0 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let e_c0 = e_p;
      gslots[(((f_0 / G) * BP) + q)] = select(0.0f, states_in[((u.SO_h + (e_b * D_D)) + e_c0)], (u.init_h != 0u));
    }
  }
  storageBarrier();
  workgroupBarrier();
  for (var t: u32 = 0u; t < u.T; t += 1u) {
    // assign h
    for (var f_1: u32 = lid; f_1 < G; f_1 += WG) {
      let g = (f_1 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c0 = e_p;
        let v_2 = ((exp(in_g[((((e_b * u.T) + t) * D_D) + e_c0)]) * gslots[((0u * BP) + q)]) + in_x[((((e_b * u.T) + t) * D_D) + e_c0)]);
        gslots[((0u * BP) + q)] = v_2;
      }
    }
    storageBarrier();
    workgroupBarrier();
    // output o
    for (var f_3: u32 = lid; f_3 < G; f_3 += WG) {
      let g = (f_3 % G);
      let q = ((wg * G) + g);
      if ((q < BP)) {
        let e_b = (q / P);
        let e_p = (q % P);
        let e_c0 = e_p;
        let v_4 = gslots[((0u * BP) + q)];
        out_o[((((e_b * u.T) + t) * D_D) + e_c0)] = v_4;
      }
    }
    storageBarrier();
    workgroupBarrier();
  }
  // write the final state
  for (var f_5: u32 = lid; f_5 < G; f_5 += WG) {
    let g = (f_5 % G);
    let q = ((wg * G) + g);
    if ((q < BP)) {
      let e_b = (q / P);
      let e_p = (q % P);
      let e_c0 = e_p;
      states[((u.SO_h + (e_b * D_D)) + e_c0)] = gslots[(((f_5 / G) * BP) + q)];
    }
  }
}
