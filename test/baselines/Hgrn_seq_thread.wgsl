// seqc: kernel Hgrn_seq_thread of model Hgrn
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
override D_D: u32;
override P: u32;
override G: u32;
override WG: u32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let BP = (u.B * P);
  let q = ((wg * G) + lid);
  if ((q < BP)) {
    let e_b = (q / P);
    let e_p = (q % P);
    let e_c0 = e_p;
    var r_h = 0.0f;
    // load the initial state
    r_h = select(0.0f, states_in[((u.SO_h + (e_b * D_D)) + e_c0)], (u.init_h != 0u));
    for (var t: u32 = 0u; t < u.T; t += 1u) {
      // assign h
      let v_0 = ((exp(in_g[((((e_b * u.T) + t) * D_D) + e_c0)]) * r_h) + in_x[((((e_b * u.T) + t) * D_D) + e_c0)]);
      r_h = v_0;
      // output o
      let v_1 = r_h;
      out_o[((((e_b * u.T) + t) * D_D) + e_c0)] = v_1;
    }
    // write the final state
    states[((u.SO_h + (e_b * D_D)) + e_c0)] = r_h;
  }
}
