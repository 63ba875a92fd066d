// seqc: kernel Lstm_stream_pack_weight_hh_l0_0 of model Lstm
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
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(7) var<storage, read_write> wpacked: array<f32>;
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
  let x = ((wg * 256u) + lid);
  if ((x < ((4u * (((P * 4u) + 3u) / 4u)) * D_H))) {
    let row = (x % (4u * (((P * 4u) + 3u) / 4u)));
    let m = (x / (4u * (((P * 4u) + 3u) / 4u)));
    var pv = 0.0f;
    if ((row < (P * 4u))) {
      let w_b = 0u;
      let w_p = (row / 4u);
      let w_c0 = w_p;
      let w_g_0 = (row % 4u);
      pv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
    }
    wpacked[x] = pv;
  }
}
