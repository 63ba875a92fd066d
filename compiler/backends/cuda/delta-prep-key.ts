/**
 * The delta prep kernels (delta-prep.ts) with a per-key log decay (decay "key", RWKV-7: LD [B, T, H, K], d_t =
 * diag(exp(ld_t))): entries seqc_delta_prep_{fwd|bwd}_key_c{C}k{K}v{V}_{f32|bf16}, the same signatures, A written
 * [N, K] (exp(G_C) per key). G[a, i] the chunk's log decays of key i summed over slots 0..a (G[-1, .] = 0):
 *
 *   Luu / Luk [a, f] = sum_i w_a,i u_f,i / k_f,i exp(G[a-1, i] - G[f, i])  (f < a);   Pu [a, f] = sum_i q_a,i u_f,i exp(G[a, i] - G[f, i])  (f <= a)
 *   Wd = w exp(G[a-1]), Qd = q exp(G[a]), Ud / Kd = u / k exp(G_C - G[f])  (per key, elementwise)
 *
 * Every exp is of a difference <= 0 (the decays go down to -20 a step): the scores factor through the 4-slot tiles
 * tau (slots 4 tau .. 4 tau + 3) the threads' 4 x 4 register tiles own. G is kept as Gb[tau, i] = G[4 tau - 1, i]
 * (double, tau = 0 .. C / 4) and, within a tile, Gl[a, i] = G[a, i] - G[4 tau(a) - 1, i] (fp32 from a double sum).
 *  - the diagonal tiles (a, f in one tile): one entry a thread (4 C <= 256 threads), the exp per (a, f, i) directly,
 *    from Gl, on the unscaled operands;
 *  - then the operands are scaled in place (pass 1): the a-side rows (w, q) by exp(Ga[a] - G[4 tau(a) - 1]) (Ga[a] =
 *    G[a-1] for Luu / Luk, G[a] for Pu), the f-side rows (u, k) by exp(G[4 tau(f) + 3] - G[f]) (both <= 1);
 *  - the tiles below the diagonal (tau_a > tau_f): the key sum of the scaled rows with one factor a key,
 *    exp(Gb[tau_a] - Gb[tau_f + 1]) (<= 1), on the a-side float4; above the diagonal: zeros;
 *  - then the operands are scaled again (pass 2) to Wd / Qd (times exp(Gb[tau])) and Ud / Kd (times exp(Gb[C / 4] -
 *    Gb[tau + 1])), and the kernel goes on as the one without a decay (delta-prep.ts): NN, BM, Tinv, M, X.
 * prep_bwd's NN = Wd comes from W in global memory before Gl's buffer is reused. Gl [K][C + 4] lives in the score
 * buffers (fwd: Luu and Luk's, bwd: Pu and PD's) until the scores are written; Gb has its own buffer (first).
 */

/** The config fields this file reads (delta-prep.ts's DeltaPrepConfig with decay "key"). */
interface KeyShape {
  op: "fwd" | "bwd";
  C: number;
  K: number;
}

/** Gb's size in floats ((C / 4 + 1) K doubles). */
export const keyGbFloats = (c: { C: number; K: number }): number => 2 * (c.C / 4 + 1) * c.K;

/** The per-key text pieces: `NT` threads, Gl's buffer `sGl` [K][LC] and the operands' transposed [K][LC] buffers
 * (a-side `xa`, f-side `xf`, fwd's second f-side `xk`), scores into `dst` (fwd: and `dstK`) [C][LC]; `in4` reads 4
 * values of a per-token input (as delta-prep.ts's loads). */
export function keyParts(c: KeyShape, NT: number, LC: number, in4: (src: string, w: number, a: string, i4: string) => string) {
  const { C, K, op } = c, CT = C / 4, fwd = op === "fwd";
  const xa = fwd ? "sWT" : "sQT", xf = "sUT", xk = fwd ? "sKT" : "";
  const dst = fwd ? "sL" : "sPu", dstK = fwd ? "sLk" : "";
  const gb = (tau: string, i: string) => `sGb[(${tau}) * ${K}u + ${i}]`;
  const gl = (i: string, a: string) => `sGl[(${i}) * ${LC}u + ${a}]`;
  // Gl in place over the loaded log decays (a thread a (key, tile): 4 slots summed in double), the tiles' totals into
  // Gb[tau + 1], then Gb's prefix over the tiles by a thread a key
  const prefix = `  // Gl (within the 4-slot tiles) and Gb = G[4 tau - 1] per key
  for (u32 x = t; x < ${K * CT}u; x += ${NT}u) {
    const u32 i = x / ${CT}u, j = x % ${CT}u;
    const float4 l = *(const float4*)&${gl("i", "4u * j")};
    const double s0 = (double)l.x, s1 = s0 + (double)l.y, s2 = s1 + (double)l.z, s3 = s2 + (double)l.w;
    *(float4*)&${gl("i", "4u * j")} = make_float4((float)s0, (float)s1, (float)s2, (float)s3);
    ${gb("j + 1u", "i")} = s3;
  }
  __syncthreads();
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    double g = 0.0;
    ${gb("0u", "i")} = 0.0;
    for (u32 j = 1; j <= ${CT}u; ++j) { g += ${gb("j", "i")}; ${gb("j", "i")} = g; }
  }
  __syncthreads();
`;
  // the diagonal tiles' entries, one a thread (registers dv / dk until the scores are written); strict (fwd): f < a,
  // exponent Gl[a-1] - Gl[f]; bwd: f <= a, Gl[a] - Gl[f]
  const diagIdx = `  const u32 dd = t / 16u, da = 4u * dd + (t % 16u) / 4u, df = 4u * dd + t % 4u;
  const bool dOn = t < ${4 * C}u && df ${fwd ? "<" : "<="} da;
`;
  const diag = `  // the diagonal tiles' scores, one entry a thread, the exp per (a, f, i) directly
${diagIdx}  float dv = 0.f${fwd ? ", dk = 0.f" : ""};
  if (dOn) {
#pragma unroll 4
    for (u32 i = 0; i < ${K}u; ++i) {
      const float x = ${xa}[i * ${LC}u + da] * expf(${gl("i", fwd ? "da - 1u" : "da")} - ${gl("i", "df")});
      dv = fmaf(x, ${xf}[i * ${LC}u + df], dv);${fwd ? `\n      dk = fmaf(x, ${xk}[i * ${LC}u + df], dk);` : ""}
    }
  }
`;
  const diagStore = `  if (t < ${4 * C}u) { ${dst}[da * ${LC}u + df] = dOn ? dv : 0.f;${fwd ? ` ${dstK}[da * ${LC}u + df] = dOn ? dk : 0.f;` : ""} }
`;
  // pass 1: a-side rows by exp(Ga[a] - G[4 tau - 1]), f-side rows by exp(G[4 tau + 3] - G[f]); a thread a (key, tile)
  const scale = (buf: string, f: string) => `    { float4* p = (float4*)&${buf}[i * ${LC}u + 4u * j]; float4 v = *p; ${f} *p = v; }\n`;
  const aSide = fwd
    ? "v.y *= expf(g.x); v.z *= expf(g.y); v.w *= expf(g.z);"
    : "v.x *= expf(g.x); v.y *= expf(g.y); v.z *= expf(g.z); v.w *= expf(g.w);";
  const fSide = "v.x *= expf(g.w - g.x); v.y *= expf(g.w - g.y); v.z *= expf(g.w - g.z);";
  const pass1 = `  // operands scaled within their tiles (pass 1)
  for (u32 x = t; x < ${K * CT}u; x += ${NT}u) {
    const u32 i = x / ${CT}u, j = x % ${CT}u;
    const float4 g = *(const float4*)&${gl("i", "4u * j")};
${scale(xa, aSide)}${scale(xf, fSide)}${fwd ? scale(xk, fSide) : ""}  }
`;
  // the tiles off the diagonal: below, the key sum with one factor a key; above, zeros
  const acc = (name: string) => `float ${name}[4][4];
#pragma unroll
    for (u32 p = 0; p < 4u; ++p)
#pragma unroll
      for (u32 j = 0; j < 4u; ++j) ${name}[p][j] = 0.f;`;
  const fma = (name: string, b: string) => `#pragma unroll
      for (u32 p = 0; p < 4u; ++p)
#pragma unroll
        for (u32 j = 0; j < 4u; ++j) ${name}[p][j] = fmaf(ap[p], ${b}[j], ${name}[p][j]);`;
  const put = (buf: string, name: string) => `#pragma unroll
    for (u32 p = 0; p < 4u; ++p) *(float4*)&${buf}[(4u * ti + p) * ${LC}u + 4u * tj] = make_float4(${name}[p][0], ${name}[p][1], ${name}[p][2], ${name}[p][3]);`;
  const vec = (name: string, p: string) => `const float4 ${name}4 = *(const float4*)&${p};\n      const float ${name}[4] = {${name}4.x, ${name}4.y, ${name}4.z, ${name}4.w};`;
  const offDiag = `  // the score tiles off the diagonal (below: factored through the tiles; above: zeros)
  for (u32 x = t; x < ${CT * CT}u; x += ${NT}u) {
    const u32 ti = x / ${CT}u, tj = x % ${CT}u;
    if (ti == tj) continue;
    ${acc("acc")}${fwd ? `\n    ${acc("acck")}` : ""}
    if (ti > tj) {
      for (u32 i = 0; i < ${K}u; ++i) {
        const float e = expf((float)(${gb("ti", "i")} - ${gb("tj + 1u", "i")}));
        const float4 a4 = *(const float4*)&${xa}[i * ${LC}u + 4u * ti];
        const float ap[4] = {a4.x * e, a4.y * e, a4.z * e, a4.w * e};
        ${vec("bj", `${xf}[i * ${LC}u + 4u * tj]`)}
${fma("acc", "bj")}${fwd ? `\n        ${vec("bk", `${xk}[i * ${LC}u + 4u * tj]`)}\n${fma("acck", "bk")}` : ""}
      }
    }
${put(dst, "acc")}${fwd ? `\n${put(dstK, "acck")}` : ""}
  }
`;
  // pass 2: to Wd / Qd (times exp(Gb[tau])) and Ud / Kd (times exp(Gb[C / 4] - Gb[tau + 1])), one exp a (key, tile)
  const mul = (buf: string, e: string) => `    { float4* p = (float4*)&${buf}[i * ${LC}u + 4u * j]; float4 v = *p; const float e = ${e}; v.x *= e; v.y *= e; v.z *= e; v.w *= e; *p = v; }\n`;
  const eTail = `expf((float)(${gb(`${CT}u`, "i")} - ${gb("j + 1u", "i")}))`;
  const pass2 = `  // operands to Wd / Qd and Ud / Kd (pass 2)
  for (u32 x = t; x < ${K * CT}u; x += ${NT}u) {
    const u32 i = x / ${CT}u, j = x % ${CT}u;
${mul(xa, `expf((float)${gb("j", "i")})`)}${mul(xf, eTail)}${fwd ? mul(xk, eTail) : ""}  }
`;
  // A = exp(G_C) per key
  const aOut = `  for (u32 i = t; i < ${K}u; i += ${NT}u) A[(size_t)n * ${K}u + i] = expf((float)${gb(`${CT}u`, "i")});\n`;
  // prep_bwd's NN = Wd from W (4 keys a thread), exp(Gb[tau(a)] + Gl[a - 1]) per key
  const nnBwd = `  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 a = x / ${K / 4}u, i4 = x % ${K / 4}u, ta = a / 4u;
    float4 v = ${in4("W", K, "a", "i4")};
    float e[4];
#pragma unroll
    for (u32 q = 0; q < 4u; ++q) { const u32 i = 4u * i4 + q; e[q] = expf((float)(${gb("ta", "i")} + (double)(a % 4u ? ${gl("i", "a - 1u")} : 0.f))); }
    v.x *= e[0]; v.y *= e[1]; v.z *= e[2]; v.w *= e[3];
    *(float4*)&NN[(size_t)n * ${C * K}u + 4u * x] = v;
  }
`;
  return { prefix, diag, diagStore, pass1, offDiag, pass2, aOut, nnBwd };
}
