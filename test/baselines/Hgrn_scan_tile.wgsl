// seqc: kernel Hgrn_scan_tile of model Hgrn
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
override WG: u32;
override E: u32;
override S: u32;
override TS: u32;
var<workgroup> s_h: array<f32, WG>;
var<workgroup> sa_0_0: array<f32, WG>;
var<workgroup> sb_0: array<f32, WG>;
var<workgroup> c_0: array<f32, E>;

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
  // carry := initial state
  for (var cf: u32 = lid; cf < E; cf += WG) {
    let ce = (cf % E);
    let cl = (cf / E);
    let cq = ((wg * E) + ce);
    if ((cq < BP)) {
      let e_b = (cq / P);
      let e_p = (cq % P);
      let e_c0 = e_p;
      c_0[((cl * E) + ce)] = select(0.0f, states_in[((u.SO_h + (e_b * D_D)) + e_c0)], (u.init_h != 0u));
    }
  }
  workgroupBarrier();
  for (var tile: u32 = 0u; tile < ((u.T + ((S * TS) - 1u)) / (S * TS)); tile += 1u) {
    let t0 = ((tile * (S * TS)) + (sgm * TS));
    // 1. compose (A, b) over this thread's segment
    if (act) {
      var A00 = 1.0f;
      var b0 = 0.0f;
      if (((t0 + TS) <= u.T)) {
        for (var tau: u32 = 0u; tau < TS; tau += 1u) {
          let t = (t0 + tau);
          let a00 = exp(in_g[((((e_b * u.T) + t) * D_D) + e_c0)]);
          let bt0 = in_x[((((e_b * u.T) + t) * D_D) + e_c0)];
          let n00 = (a00 * A00);
          let nb0 = ((a00 * b0) + bt0);
          A00 = n00;
          b0 = nb0;
        }
      } else {
        for (var tau: u32 = 0u; tau < min(TS, select(0u, (u.T - t0), (t0 < u.T))); tau += 1u) {
          let t = (t0 + tau);
          let a00 = exp(in_g[((((e_b * u.T) + t) * D_D) + e_c0)]);
          let bt0 = in_x[((((e_b * u.T) + t) * D_D) + e_c0)];
          let n00 = (a00 * A00);
          let nb0 = ((a00 * b0) + bt0);
          A00 = n00;
          b0 = nb0;
        }
      }
      sa_0_0[((0u * WG) + lid)] = A00;
      sb_0[((0u * WG) + lid)] = b0;
    }
    workgroupBarrier();
    // 2. segment start states from the carry
    for (var cf: u32 = lid; cf < E; cf += WG) {
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
          // assign h
          let v_0 = ((exp(in_g[((((e_b * u.T) + t) * D_D) + e_c0)]) * s_h[((0u * WG) + lid)]) + in_x[((((e_b * u.T) + t) * D_D) + e_c0)]);
          s_h[((0u * WG) + lid)] = v_0;
          // output o
          let v_1 = s_h[((0u * WG) + lid)];
          out_o[((((e_b * u.T) + t) * D_D) + e_c0)] = v_1;
        }
      } else {
        for (var tau: u32 = 0u; tau < min(TS, select(0u, (u.T - t0), (t0 < u.T))); tau += 1u) {
          let t = (t0 + tau);
          // assign h
          let v_0 = ((exp(in_g[((((e_b * u.T) + t) * D_D) + e_c0)]) * s_h[((0u * WG) + lid)]) + in_x[((((e_b * u.T) + t) * D_D) + e_c0)]);
          s_h[((0u * WG) + lid)] = v_0;
          // output o
          let v_1 = s_h[((0u * WG) + lid)];
          out_o[((((e_b * u.T) + t) * D_D) + e_c0)] = v_1;
        }
      }
    }
  }
  workgroupBarrier();
  // final state := carry
  for (var cf: u32 = lid; cf < E; cf += WG) {
    let ce = (cf % E);
    let cl = (cf / E);
    let cq = ((wg * E) + ce);
    if ((cq < BP)) {
      let e_b = (cq / P);
      let e_p = (cq % P);
      let e_c0 = e_p;
      states[((u.SO_h + (e_b * D_D)) + e_c0)] = c_0[((cl * E) + ce)];
    }
  }
}
