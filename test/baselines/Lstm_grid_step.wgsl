// seqc: kernel Lstm_grid_step of model Lstm
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
@group(0) @binding(3) var<storage, read_write> states: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_output: array<f32>;
@group(0) @binding(6) var<storage, read_write> pingpong: array<f32>;
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
override G: u32;
override WG: u32;
override JB: u32;
override BB: u32;
override NBT: u32;
override KC: u32;
var<workgroup> s_h: array<f32, G>;
var<workgroup> s_c: array<f32, G>;
var<workgroup> s_pre: array<f32, (G * 4u)>;
var<workgroup> s_R0: array<f32, (G * 4u)>;
var<workgroup> gw: array<f32, ((JB * 4u) * (KC + 1u))>;
var<workgroup> gs: array<f32, (BB * (KC + 1u))>;
fn seq_sigmoid(x: f32) -> f32 { let z = exp(-abs(x)); return select(z / (1.0 + z), 1.0 / (1.0 + z), x >= 0.0); }
fn seq_tanh(x: f32) -> f32 { let z = exp(-2.0 * abs(x)); let r = (1.0 - z) / (1.0 + z); return select(-r, r, x >= 0.0); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);
  let step_index = seq_step.t;
  let block_t0 = seq_step.t0;
  let block_tc = seq_step.tc;
  let t = step_index;
  let STOT = (u.B * (D_H + D_H));
  let prevBase = ((t % 2u) * STOT);
  let nextBase = (STOT - prevBase);
  let NUT = ((P + (JB - 1u)) / JB);
  let ut = (wg % NUT);
  let bt = (wg / NUT);
  // contraction weight_hh_l0 x h (step t-1) for pre
  for (var x0: u32 = 0u; x0 < ((JB * 4u) * NBT); x0 += WG) {
    let x = (x0 + lid);
    let rw = (x % (JB * 4u));
    let bq = (x / (JB * 4u));
    let ju = (rw / 4u);
    let lr = (rw % 4u);
    let vi_0 = min((bq * 4u), (BB - 1u));
    let vi_1 = min(((bq * 4u) + 1u), (BB - 1u));
    let vi_2 = min(((bq * 4u) + 2u), (BB - 1u));
    let vi_3 = min(((bq * 4u) + 3u), (BB - 1u));
    var acc_0 = 0.0f;
    var acc_1 = 0.0f;
    var acc_2 = 0.0f;
    var acc_3 = 0.0f;
    for (var m0: u32 = 0u; m0 < D_H; m0 += KC) {
      for (var py0: u32 = lid; py0 < ((JB * 4u) * KC); py0 += (8u * WG)) {
        var pv0 = 0.0f;
        var pi0 = 0u;
        var pv1 = 0.0f;
        var pi1 = 0u;
        var pv2 = 0.0f;
        var pi2 = 0u;
        var pv3 = 0.0f;
        var pi3 = 0u;
        var pv4 = 0.0f;
        var pi4 = 0u;
        var pv5 = 0.0f;
        var pi5 = 0u;
        var pv6 = 0.0f;
        var pi6 = 0u;
        var pv7 = 0.0f;
        var pi7 = 0u;
        if (true) {
          let y = (py0 + (0u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv0 = wv;
          pi0 = wi;
        }
        if (true) {
          let y = (py0 + WG);
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv1 = wv;
          pi1 = wi;
        }
        if (true) {
          let y = (py0 + (2u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv2 = wv;
          pi2 = wi;
        }
        if (true) {
          let y = (py0 + (3u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv3 = wv;
          pi3 = wi;
        }
        if (true) {
          let y = (py0 + (4u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv4 = wv;
          pi4 = wi;
        }
        if (true) {
          let y = (py0 + (5u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv5 = wv;
          pi5 = wi;
        }
        if (true) {
          let y = (py0 + (6u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv6 = wv;
          pi6 = wi;
        }
        if (true) {
          let y = (py0 + (7u * WG));
          let rr = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let wp = ((ut * JB) + (rr / 4u));
          var wv = 0.0f;
          if (((m < D_H) && (wp < P))) {
            let w_b = 0u;
            let w_p = wp;
            let w_c0 = w_p;
            let w_g_0 = (rr % 4u);
            wv = params[(PO_weight_hh_l0 + ((((w_g_0 * D_H) + w_c0) * D_H) + m))];
          }
          let wi = ((rr * (KC + 1u)) + kk);
          pv7 = wv;
          pi7 = wi;
        }
        if (((py0 + (0u * WG)) < ((JB * 4u) * KC))) {
          gw[pi0] = pv0;
        }
        if (((py0 + WG) < ((JB * 4u) * KC))) {
          gw[pi1] = pv1;
        }
        if (((py0 + (2u * WG)) < ((JB * 4u) * KC))) {
          gw[pi2] = pv2;
        }
        if (((py0 + (3u * WG)) < ((JB * 4u) * KC))) {
          gw[pi3] = pv3;
        }
        if (((py0 + (4u * WG)) < ((JB * 4u) * KC))) {
          gw[pi4] = pv4;
        }
        if (((py0 + (5u * WG)) < ((JB * 4u) * KC))) {
          gw[pi5] = pv5;
        }
        if (((py0 + (6u * WG)) < ((JB * 4u) * KC))) {
          gw[pi6] = pv6;
        }
        if (((py0 + (7u * WG)) < ((JB * 4u) * KC))) {
          gw[pi7] = pv7;
        }
      }
      for (var sy0: u32 = lid; sy0 < (BB * KC); sy0 += (8u * WG)) {
        var sv0 = 0.0f;
        var si0 = 0u;
        var sv1 = 0.0f;
        var si1 = 0u;
        var sv2 = 0.0f;
        var si2 = 0u;
        var sv3 = 0.0f;
        var si3 = 0u;
        var sv4 = 0.0f;
        var si4 = 0u;
        var sv5 = 0.0f;
        var si5 = 0u;
        var sv6 = 0.0f;
        var si6 = 0u;
        var sv7 = 0.0f;
        var si7 = 0u;
        if (true) {
          let y = (sy0 + (0u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv0 = sv;
          si0 = si;
        }
        if (true) {
          let y = (sy0 + WG);
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv1 = sv;
          si1 = si;
        }
        if (true) {
          let y = (sy0 + (2u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv2 = sv;
          si2 = si;
        }
        if (true) {
          let y = (sy0 + (3u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv3 = sv;
          si3 = si;
        }
        if (true) {
          let y = (sy0 + (4u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv4 = sv;
          si4 = si;
        }
        if (true) {
          let y = (sy0 + (5u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv5 = sv;
          si5 = si;
        }
        if (true) {
          let y = (sy0 + (6u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv6 = sv;
          si6 = si;
        }
        if (true) {
          let y = (sy0 + (7u * WG));
          let vv = (y / KC);
          let kk = (y % KC);
          let m = (m0 + kk);
          let vb = ((bt * BB) + vv);
          var sv = 0.0f;
          if (((m < D_H) && (vb < u.B))) {
            sv = pingpong[(prevBase + ((u.SO_h + (vb * D_H)) + m))];
          }
          let si = ((vv * (KC + 1u)) + kk);
          sv7 = sv;
          si7 = si;
        }
        if (((sy0 + (0u * WG)) < (BB * KC))) {
          gs[si0] = sv0;
        }
        if (((sy0 + WG) < (BB * KC))) {
          gs[si1] = sv1;
        }
        if (((sy0 + (2u * WG)) < (BB * KC))) {
          gs[si2] = sv2;
        }
        if (((sy0 + (3u * WG)) < (BB * KC))) {
          gs[si3] = sv3;
        }
        if (((sy0 + (4u * WG)) < (BB * KC))) {
          gs[si4] = sv4;
        }
        if (((sy0 + (5u * WG)) < (BB * KC))) {
          gs[si5] = sv5;
        }
        if (((sy0 + (6u * WG)) < (BB * KC))) {
          gs[si6] = sv6;
        }
        if (((sy0 + (7u * WG)) < (BB * KC))) {
          gs[si7] = sv7;
        }
      }
      workgroupBarrier();
      if ((x < ((JB * 4u) * NBT))) {
        for (var kq: u32 = 0u; kq < min(KC, (D_H - m0)); kq += 1u) {
          let w = gw[((rw * (KC + 1u)) + kq)];
          acc_0 = (acc_0 + (w * gs[((vi_0 * (KC + 1u)) + kq)]));
          acc_1 = (acc_1 + (w * gs[((vi_1 * (KC + 1u)) + kq)]));
          acc_2 = (acc_2 + (w * gs[((vi_2 * (KC + 1u)) + kq)]));
          acc_3 = (acc_3 + (w * gs[((vi_3 * (KC + 1u)) + kq)]));
        }
      }
      workgroupBarrier();
    }
    if ((x < ((JB * 4u) * NBT))) {
      if (((bq * 4u) < BB)) {
        s_R0[((lr * G) + (((bq * 4u) * JB) + ju))] = acc_0;
      }
      if ((((bq * 4u) + 1u) < BB)) {
        s_R0[((lr * G) + ((((bq * 4u) + 1u) * JB) + ju))] = acc_1;
      }
      if ((((bq * 4u) + 2u) < BB)) {
        s_R0[((lr * G) + ((((bq * 4u) + 2u) * JB) + ju))] = acc_2;
      }
      if ((((bq * 4u) + 3u) < BB)) {
        s_R0[((lr * G) + ((((bq * 4u) + 3u) * JB) + ju))] = acc_3;
      }
    }
  }
  workgroupBarrier();
  // let pre
  for (var f_0: u32 = lid; f_0 < (G * 4u); f_0 += WG) {
    let g = (f_0 % G);
    let e_b = ((bt * BB) + (g / JB));
    let e_p = ((ut * JB) + (g % JB));
    let e_c0 = e_p;
    if (((e_b < u.B) && (e_p < P))) {
      let i_g_0 = (f_0 / G);
      let v_1 = (hoisted[((((e_b * block_tc) + (t - block_t0)) * (4u * D_H)) + ((i_g_0 * D_H) + e_c0))] + s_R0[((i_g_0 * G) + g)]);
      s_pre[((i_g_0 * G) + g)] = v_1;
    }
  }
  workgroupBarrier();
  // assign c
  for (var f_2: u32 = lid; f_2 < G; f_2 += WG) {
    let g = (f_2 % G);
    let e_b = ((bt * BB) + (g / JB));
    let e_p = ((ut * JB) + (g % JB));
    let e_c0 = e_p;
    if (((e_b < u.B) && (e_p < P))) {
      let v_3 = ((seq_sigmoid(s_pre[(G + g)]) * pingpong[(prevBase + ((u.SO_c + (e_b * D_H)) + e_c0))]) + (seq_sigmoid(s_pre[((0u * G) + g)]) * seq_tanh(s_pre[((2u * G) + g)])));
      s_c[((0u * G) + g)] = v_3;
    }
  }
  workgroupBarrier();
  // assign h
  for (var f_4: u32 = lid; f_4 < G; f_4 += WG) {
    let g = (f_4 % G);
    let e_b = ((bt * BB) + (g / JB));
    let e_p = ((ut * JB) + (g % JB));
    let e_c0 = e_p;
    if (((e_b < u.B) && (e_p < P))) {
      let v_5 = (seq_sigmoid(s_pre[((3u * G) + g)]) * seq_tanh(s_c[((0u * G) + g)]));
      s_h[((0u * G) + g)] = v_5;
    }
  }
  workgroupBarrier();
  // output output
  for (var f_6: u32 = lid; f_6 < G; f_6 += WG) {
    let g = (f_6 % G);
    let e_b = ((bt * BB) + (g / JB));
    let e_p = ((ut * JB) + (g % JB));
    let e_c0 = e_p;
    if (((e_b < u.B) && (e_p < P))) {
      let v_7 = s_h[((0u * G) + g)];
      out_output[((((e_b * u.T) + t) * D_H) + e_c0)] = v_7;
    }
  }
  workgroupBarrier();
  // the states of step t: to the other half of the ping-pong buffer (and the final state after the last step)
  for (var f_8: u32 = lid; f_8 < G; f_8 += WG) {
    let g = (f_8 % G);
    let e_b = ((bt * BB) + (g / JB));
    let e_p = ((ut * JB) + (g % JB));
    let e_c0 = e_p;
    if (((e_b < u.B) && (e_p < P))) {
      let sa_9 = ((u.SO_h + (e_b * D_H)) + e_c0);
      let sv_10 = s_h[(((f_8 / G) * G) + g)];
      pingpong[(nextBase + sa_9)] = sv_10;
      if (((t + 1u) == u.T)) {
        states[sa_9] = sv_10;
      }
    }
  }
  for (var f_11: u32 = lid; f_11 < G; f_11 += WG) {
    let g = (f_11 % G);
    let e_b = ((bt * BB) + (g / JB));
    let e_p = ((ut * JB) + (g % JB));
    let e_c0 = e_p;
    if (((e_b < u.B) && (e_p < P))) {
      let sa_12 = ((u.SO_c + (e_b * D_H)) + e_c0);
      let sv_13 = s_c[(((f_11 / G) * G) + g)];
      pingpong[(nextBase + sa_12)] = sv_13;
      if (((t + 1u) == u.T)) {
        states[sa_12] = sv_13;
      }
    }
  }
}
