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
 * The tensor-core twins (delta-prep-mma.ts, math "tf32" / "tf32x3") run the same passes on their row layouts ([C][K + 4]
 * operands and Gl; the tiles below the diagonal 4 keys a step, fwd's Luu and Luk as separate items), in fp32 on the
 * SIMT cores, and then the twins' mma products.
 */
import { zeroTile } from "./register-tiles.ts";

/** The config fields this file reads (delta-prep.ts's DeltaPrepConfig with decay "key"). */
interface KeyShape {
  op: "fwd" | "bwd";
  C: number;
  K: number;
  /** prep_bwd's NN: W's loads issued all at once (delta-prep.ts's batched loads) */
  batched?: boolean;
  /** prep_bwd's NN as the bf16 walk's NN^T [N, K, C] bf16 (delta-prep.ts's wout "mn"): a warp's threads 32 consecutive
   * slots of 4 keys (each q's 32 stores one 64-byte run), the values rounded to nearest even. */
  wout?: "mn";
}

/** Gb's size in floats ((C / 4 + 1) K doubles). */
export const keyGbFloats = (c: { C: number; K: number }): number => 2 * (c.C / 4 + 1) * c.K;

/** Where the operands live: the fp32 kernels' transposed [K][LC] buffers sWT / sQT, sUT, sKT with Gl [K][LC], the
 * scores [C][LC] (LC = C + 4); or (`rows`, the tensor-core twins, delta-prep-mma.ts) row buffers [C][ld] sW / sQ, sU,
 * sKK (ld = K + 4) with Gl [C][ld] and the scores' own strides. */
export interface KeyLayout {
  rows: boolean;
  /** the operands' stride (LC transposed, K + 4 rows), Gl's the same */
  ld: number;
  /** the score buffers' strides (fwd: Luu's and Luk's; bwd: Pu's in the first) */
  ldL: number;
  ldLk: number;
}

/** The per-key text pieces: `NT` threads, Gl's buffer `sGl` and the operands (a-side w / q, f-side u, fwd's second
 * f-side k) as `lay` says, scores into sL and sLk (fwd) or sPu (bwd); `in4` reads 4 values of a per-token input (as
 * delta-prep.ts's loads). */
export function keyParts(c: KeyShape, NT: number, lay: KeyLayout, in4: (src: string, w: number, a: string, i4: string) => string) {
  const { C, K, op } = c, CT = C / 4, fwd = op === "fwd", LC = lay.ld, R = lay.rows;
  const xa = R ? (fwd ? "sW" : "sQ") : fwd ? "sWT" : "sQT", xf = R ? "sU" : "sUT", xk = fwd ? (R ? "sKK" : "sKT") : "";
  const dst = fwd ? "sL" : "sPu", dstK = fwd ? "sLk" : "";
  const gb = (tau: string, i: string) => `sGb[(${tau}) * ${K}u + ${i}]`;
  const gl = (i: string, a: string) => (R ? `sGl[(${a}) * ${LC}u + ${i}]` : `sGl[(${i}) * ${LC}u + ${a}]`);
  const at = (buf: string, i: string, a: string) => (R ? `${buf}[(${a}) * ${LC}u + ${i}]` : `${buf}[${i} * ${LC}u + ${a}]`);
  // Gl in place over the loaded log decays (a thread a (key, tile): 4 slots summed in double), the tiles' totals into
  // Gb[tau + 1], then Gb's prefix over the tiles by a thread a key
  const prefix = `  // Gl (within the 4-slot tiles) and Gb = G[4 tau - 1] per key
  for (u32 x = t; x < ${K * CT}u; x += ${NT}u) {
${R ? `    const u32 j = x / ${K}u, i = x % ${K}u;
    const double s0 = (double)${gl("i", "4u * j")}, s1 = s0 + (double)${gl("i", "4u * j + 1u")}, s2 = s1 + (double)${gl("i", "4u * j + 2u")}, s3 = s2 + (double)${gl("i", "4u * j + 3u")};
    ${gl("i", "4u * j")} = (float)s0; ${gl("i", "4u * j + 1u")} = (float)s1; ${gl("i", "4u * j + 2u")} = (float)s2; ${gl("i", "4u * j + 3u")} = (float)s3;`
    : `    const u32 i = x / ${CT}u, j = x % ${CT}u;
    const float4 l = *(const float4*)&${gl("i", "4u * j")};
    const double s0 = (double)l.x, s1 = s0 + (double)l.y, s2 = s1 + (double)l.z, s3 = s2 + (double)l.w;
    *(float4*)&${gl("i", "4u * j")} = make_float4((float)s0, (float)s1, (float)s2, (float)s3);`}
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
      const float x = ${at(xa, "i", "da")} * expf(${gl("i", fwd ? "da - 1u" : "da")} - ${gl("i", "df")});
      dv = fmaf(x, ${at(xf, "i", "df")}, dv);${fwd ? `\n      dk = fmaf(x, ${at(xk, "i", "df")}, dk);` : ""}
    }
  }
`;
  const diagStore = `  if (t < ${4 * C}u) { ${dst}[da * ${lay.ldL}u + df] = dOn ? dv : 0.f;${fwd ? ` ${dstK}[da * ${lay.ldLk}u + df] = dOn ? dk : 0.f;` : ""} }
`;
  // pass 1: a-side rows by exp(Ga[a] - G[4 tau - 1]), f-side rows by exp(G[4 tau + 3] - G[f]); a thread a (key, tile)
  const scale = (buf: string, f: string) => `    { float4* p = (float4*)&${buf}[i * ${LC}u + 4u * j]; float4 v = *p; ${f} *p = v; }\n`;
  const aSide = fwd
    ? "v.y *= expf(g.x); v.z *= expf(g.y); v.w *= expf(g.z);"
    : "v.x *= expf(g.x); v.y *= expf(g.y); v.z *= expf(g.z); v.w *= expf(g.w);";
  const fSide = "v.x *= expf(g.w - g.x); v.y *= expf(g.w - g.y); v.z *= expf(g.w - g.z);";
  // rows: a thread a (slot, 4 keys), the factors per key from Gl's rows a, a - 1 and the tile's end
  const scaleR = (buf: string, e: (q: string) => string) => `    { float4* p = (float4*)&${buf}[a * ${LC}u + 4u * i4]; float4 v = *p; v.x *= ${e("x")}; v.y *= ${e("y")}; v.z *= ${e("z")}; v.w *= ${e("w")}; *p = v; }\n`;
  const pass1 = R
    ? `  // operands scaled within their tiles (pass 1)
  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 a = x / ${K / 4}u, i4 = x % ${K / 4}u;
    const float4 g = *(const float4*)&${gl("4u * i4", "a")}, ge = *(const float4*)&${gl("4u * i4", "(a | 3u)")};
    const float4 gp = a % 4u ? *(const float4*)&${gl("4u * i4", "a - 1u")} : make_float4(0.f, 0.f, 0.f, 0.f);
${scaleR(xa, (q) => (fwd ? `expf(gp.${q})` : `expf(g.${q})`))}${scaleR(xf, (q) => `expf(ge.${q} - g.${q})`)}${fwd ? scaleR(xk, (q) => `expf(ge.${q} - g.${q})`) : ""}  }
`
    : `  // operands scaled within their tiles (pass 1)
  for (u32 x = t; x < ${K * CT}u; x += ${NT}u) {
    const u32 i = x / ${CT}u, j = x % ${CT}u;
    const float4 g = *(const float4*)&${gl("i", "4u * j")};
${scale(xa, aSide)}${scale(xf, fSide)}${fwd ? scale(xk, fSide) : ""}  }
`;
  // the tiles off the diagonal: below, the key sum with one factor a key; above, zeros
  const fma = (name: string, b: string) => `#pragma unroll
      for (u32 p = 0; p < 4u; ++p)
#pragma unroll
        for (u32 j = 0; j < 4u; ++j) ${name}[p][j] = fmaf(ap[p], ${b}[j], ${name}[p][j]);`;
  const put = (buf: string, name: string) => `#pragma unroll
    for (u32 p = 0; p < 4u; ++p) *(float4*)&${buf}[(4u * ti + p) * ${buf === dstK ? lay.ldLk : lay.ldL}u + 4u * tj] = make_float4(${name}[p][0], ${name}[p][1], ${name}[p][2], ${name}[p][3]);`;
  const vec = (name: string, p: string) => `const float4 ${name}4 = *(const float4*)&${p};\n      const float ${name}[4] = {${name}4.x, ${name}4.y, ${name}4.z, ${name}4.w};`;
  // rows: 4 keys a step, the a-side rows' float4s times the 4 keys' factors, the f-side rows' float4s
  // (one f-side float4 at a time: fewer registers live beside the accumulators)
  const rowsDot = (name: string, buf: string) => `#pragma unroll
        for (u32 j = 0; j < 4u; ++j) {
          const float4 b = *(const float4*)&${buf}[(4u * tj + j) * ${LC}u + i];
#pragma unroll
          for (u32 p = 0; p < 4u; ++p) ${name}[p][j] = fmaf(ap[p].w, b.w, fmaf(ap[p].z, b.z, fmaf(ap[p].y, b.y, fmaf(ap[p].x, b.x, ${name}[p][j]))));
        }`;
  const rowsSum = `      for (u32 i = 0; i < ${K}u; i += 4u) {
        float e[4];
#pragma unroll
        for (u32 q = 0; q < 4u; ++q) e[q] = expf((float)(${gb("ti", "i + q")} - ${gb("tj + 1u", "i + q")}));
        float4 ap[4];
#pragma unroll
        for (u32 p = 0; p < 4u; ++p) {
          ap[p] = *(const float4*)&${xa}[(4u * ti + p) * ${LC}u + i];
          ap[p].x *= e[0]; ap[p].y *= e[1]; ap[p].z *= e[2]; ap[p].w *= e[3];
        }
${rowsDot("acc", "yf")}
      }
`;
  // rows: fwd's two score matrices as separate items (one accumulator a thread: no spills under ptxas's 64 registers)
  const offDiagRows = `  // the score tiles off the diagonal (below: factored through the tiles; above: zeros)${fwd ? "; Luu's, then Luk's" : ""}
  for (u32 x = t; x < ${(fwd ? 2 : 1) * CT * CT}u; x += ${NT}u) {
    const u32 y = x % ${CT * CT}u, ti = y / ${CT}u, tj = y % ${CT}u;
    if (ti == tj) continue;
${fwd ? `    const bool second = x >= ${CT * CT}u;
    const float* yf = second ? ${xk} : ${xf};
    float* dsc = second ? ${dstK} : ${dst};
    const u32 dl = second ? ${lay.ldLk}u : ${lay.ldL}u;
` : `    const float* yf = ${xf};
    float* dsc = ${dst};
    const u32 dl = ${lay.ldL}u;
`}    ${zeroTile("acc")}
    if (ti > tj) {
${rowsSum}    }
#pragma unroll
    for (u32 p = 0; p < 4u; ++p) *(float4*)&dsc[(4u * ti + p) * dl + 4u * tj] = make_float4(acc[p][0], acc[p][1], acc[p][2], acc[p][3]);
  }
`;
  const offDiag = `  // the score tiles off the diagonal (below: factored through the tiles; above: zeros)
  for (u32 x = t; x < ${CT * CT}u; x += ${NT}u) {
    const u32 ti = x / ${CT}u, tj = x % ${CT}u;
    if (ti == tj) continue;
    ${zeroTile("acc")}${fwd ? `\n    ${zeroTile("acck")}` : ""}
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
  const eTailR = (q: number) => `expf((float)(${gb(`${CT}u`, `4u * i4 + ${q}u`)} - ${gb("a / 4u + 1u", `4u * i4 + ${q}u`)}))`;
  const mulR = (buf: string, e: (q: number) => string) => `    { float4* p = (float4*)&${buf}[a * ${LC}u + 4u * i4]; float4 v = *p; v.x *= ${e(0)}; v.y *= ${e(1)}; v.z *= ${e(2)}; v.w *= ${e(3)}; *p = v; }\n`;
  const pass2 = R
    ? `  // operands to Wd / Qd and Ud / Kd (pass 2)
  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 a = x / ${K / 4}u, i4 = x % ${K / 4}u;
${mulR(xa, (q) => `expf((float)${gb("a / 4u", `4u * i4 + ${q}u`)})`)}${mulR(xf, eTailR)}${fwd ? mulR(xk, eTailR) : ""}  }
`
    : `  // operands to Wd / Qd and Ud / Kd (pass 2)
  for (u32 x = t; x < ${K * CT}u; x += ${NT}u) {
    const u32 i = x / ${CT}u, j = x % ${CT}u;
${mul(xa, `expf((float)${gb("j", "i")})`)}${mul(xf, eTail)}${fwd ? mul(xk, eTail) : ""}  }
`;
  // A = exp(G_C) per key
  const aOut = `  for (u32 i = t; i < ${K}u; i += ${NT}u) A[(size_t)n * ${K}u + i] = expf((float)${gb(`${CT}u`, "i")});\n`;
  // prep_bwd's NN = Wd from W (4 keys a thread), exp(Gb[tau(a)] + Gl[a - 1]) per key
  const J = Math.ceil((C * K) / 4 / NT), whole = ((C * K) / 4) % NT === 0;
  // a thread's slot a and its 4 keys 4 i4..: keys fastest (NN's float4 rows), or slots fastest (wout: NN^T's columns)
  const aI = c.wout ? `a = x % ${C}u, i4 = x / ${C}u` : `a = x / ${K / 4}u, i4 = x % ${K / 4}u`;
  // (batched: W's loads first, all in flight (a < used inside in4 keeps x past the end in bounds), then the rows)
  const nnHead = c.batched ? `  float4 wv[${J}];
#pragma unroll
  for (u32 j = 0; j < ${J}u; ++j) { const u32 x = t + ${NT}u * j, ${aI}; wv[j] = ${in4("W", K, "a", "i4")}; }
#pragma unroll
  for (u32 j = 0; j < ${J}u; ++j) {
    const u32 x = t + ${NT}u * j, ${aI}, ta = a / 4u;
${whole ? "" : `    if (x >= ${(C * K) / 4}u) break;\n`}    float4 v = wv[j];
` : `  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 ${aI}, ta = a / 4u;
    float4 v = ${in4("W", K, "a", "i4")};
`;
  const nnBwd = `${nnHead}    float e[4];
#pragma unroll
    for (u32 q = 0; q < 4u; ++q) { const u32 i = 4u * i4 + q; e[q] = expf((float)(${gb("ta", "i")} + (double)(a % 4u ? ${gl("i", "a - 1u")} : 0.f))); }
    v.x *= e[0]; v.y *= e[1]; v.z *= e[2]; v.w *= e[3];
    ${c.wout
    ? `{ unsigned short* nt = (unsigned short*)NN + (size_t)n * ${K * C}u + 4u * i4 * ${C}u + a; const u32 p0 = seqc_dz_pack(v.x, v.y), p1 = seqc_dz_pack(v.z, v.w);
      nt[0] = (unsigned short)(p0 & 0xffffu); nt[${C}u] = (unsigned short)(p0 >> 16); nt[${2 * C}u] = (unsigned short)(p1 & 0xffffu); nt[${3 * C}u] = (unsigned short)(p1 >> 16); }  // NN^T bf16`
    : `*(float4*)&NN[(size_t)n * ${C * K}u + 4u * x] = v;`}
  }
`;
  // the kernel's front: Gl's buffer over the first score buffer, `loads` (the operands' and Gl's log decays), Gl and Gb,
  // the diagonal tiles' entries (prep_bwd: then NN = Wd, before Gl's buffer is reused), pass 1, the tiles off the
  // diagonal with the diagonal tiles' stores, pass 2; a barrier after each
  const front = (loads: string) => `  float* sGl = ${dst};${R ? "  " : "   "}// Gl ${R ? "[C][K + 4]" : "[K][LC]"} (the log decays loaded here) until the scores are written
${loads}  __syncthreads();
${prefix}${diag}${fwd ? "" : `  // NN = Wd\n${nnBwd}`}  __syncthreads();
${pass1}  __syncthreads();
${R ? offDiagRows : offDiag}${diagStore}  __syncthreads();
${pass2}  __syncthreads();
`;
  return { front, aOut };
}
