// seqc: kernel Lstm_stream_init of model Lstm
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
@group(0) @binding(4) var<storage, read> states_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> pingpong: array<f32>;
override D_H: u32;
override D_I: u32;
override PO_weight_ih_l0: u32;
override PO_weight_hh_l0: u32;
override PO_bias_ih_l0: u32;
override PO_bias_hh_l0: u32;
override P: u32;

@compute @workgroup_size(256u)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let i = ((wg * 256u) + lid);
  let STOT = (u.B * (D_H + D_H));
  if ((i < STOT)) {
    if (((i >= u.SO_h) && (i < (u.SO_h + (u.B * D_H))))) {
      pingpong[i] = select(0.0f, states_in[i], (u.init_h != 0u));
    }
    if (((i >= u.SO_c) && (i < (u.SO_c + (u.B * D_H))))) {
      pingpong[i] = select(0.0f, states_in[i], (u.init_c != 0u));
    }
  }
}
