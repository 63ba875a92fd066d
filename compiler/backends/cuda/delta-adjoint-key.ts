/**
 * The delta backward's adjoint kernel with a per-key log decay (RWKV-7: ld [B, T, H, K], d_t = diag(exp(ld_t))); the
 * per-key form of delta-adjoint.ts (see there for the inputs, the steps and the scalar formulas), entries
 * seqc_delta_adj_key_c{C}k{K}v{V}_{f32|bf16}, the same signature with LD and dLD [B, T, H, K]. G[a, i] the chunk's log
 * decays of key i summed over slots 0..a (G[-1, .] = 0, fp32 in slot order), Ga[a] = G[a - 1 + oq] (oq 1: the y side,
 * scores f <= a; oq 0: the r side, f < a), D[a, f, i] = exp(Ga[a, i] - G[f, i]) where f < a + oq (test/helpers/
 * delta-ref.ts `adjointPerKey`):
 *
 *   P[a,f] = sum_i x_a,i k_f,i D[a,f,i]          (Pk, Luk: the key sum carries the decay)
 *   A[a,f] = g_a . v_f,  B[a,f] = g_a . r_f       (masked f < a + oq, no decay: the value sums)
 *   dv_f += sum_a P[a,f] g_a;  dk_f,i += sum_a A[a,f] x_a,i D[a,f,i];  du_f,i += sum_a B[a,f] x_a,i D[a,f,i]
 *   dx_a,i = exp(Ga[a,i]) (S0 g_a)_i + sum_f (B[a,f] u_f,i + A[a,f] k_f,i) D[a,f,i]          (dq / dw)
 *   LE: dv += (k o eC) LE, dk += (v LE^T) o eC, du += (r LE^T) o eC, eC[f,i] = exp(G[C-1,i] - G[f,i])
 *   dld_a,i = aC_i + sum_{s >= a} (q dq + w dw - u du - k dk)_s,i - (w dw)_a,i,  aC_i = sum_j LE_ij S_C,ij
 *
 * Every exp is of a difference <= 0 (the decays go down to -20 a step): the products factor through the 4-slot tiles
 * the threads own. With the slots' tiles tau (rows 4 tau..4 tau + 3) the x rows are stored scaled as
 * x~_a = x_a exp(Ga[a] - G[4 tau(a) - 1]) and the k / u rows as k^_f = k_f exp(G[4 tau(f) + 3] - G[f]) (both <= 1);
 * a product between two different tiles ta > tf then takes one factor a key, exp(G[4 ta - 1] - G[4 tf + 3]) (<= 1;
 * the C / 4 (C / 4 - 1) / 2 tile pairs' factors computed once a chunk, sCt), and the factor of the output's own row,
 * exp(G[4 tau + 3] - G[f]) (dk, du) or exp(Ga[a] - G[4 tau - 1]) (dx), once after the product (a second accumulator
 * holds the sum over the other tiles). Within a tile the exps are taken directly per (a, f, i) from the raw inputs
 * (global memory / L2): the key scores' diagonal tiles as a pass of their own (an entry a thread), and each thread's
 * own tile of the side's four products (dx += A k + B u, dk += A^T x, du += B^T x) in one pass at the side's end,
 * each exp once for the four.
 *
 * Layout: the six [W][W + 4] fp32 slots of delta-adjoint.ts's "six" plan (K = V <= C), G [C + 1][K], the dld terms
 * (q dq - u du - k dk) and w dw [C][K] each, aC [K], the tile pairs' factors [120][K]: 184,832 bytes at C = K = V = 64,
 * one block an SM, 256 threads (one 4 x 4 tile of each [C, K] output a thread; ptxas sm_90: 254 registers, no spills).
 * Math fp32 (fmaf on the SIMT cores).
 */
import { adjHead, adjTok, prod, type DeltaTin } from "./delta-adjoint.ts";
import { zeroTile } from "./register-tiles.ts";

export interface DeltaAdjKeyConfig {
  decay: "key";
  tin: DeltaTin;
  C: number;
  K: number;
  V: number;
}

export interface DeltaAdjKeyKernel extends DeltaAdjKeyConfig {
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** The shipped per-key configurations: C = K = V = 64, f32 and bf16 inputs. */
export const DELTA_ADJ_KEY_CONFIGS: readonly DeltaAdjKeyConfig[] = (["f32", "bf16"] as const).map((tin) => ({ decay: "key" as const, tin, C: 64, K: 64, V: 64 }));

export function deltaAdjKeyEntry(c: DeltaAdjKeyConfig): string {
  return `seqc_delta_adj_key_c${c.C}k${c.K}v${c.V}_${c.tin}`;
}

interface Slot { p: string; off: number; ld: number }

function layout(c: DeltaAdjKeyConfig) {
  const W = Math.max(c.C, c.K), ld = W + 4, NT = (c.C / 4) * (c.K / 4);
  const slots: Slot[] = [];
  let off = 0;
  for (let i = 0; i < 6; i++) { slots.push({ p: `sS${i}`, off, ld }); off += W * ld; }
  const sG = off; off += (c.C + 1) * c.K;
  const sTm = off; off += c.C * c.K;
  const sWd = off; off += c.C * c.K;
  const sAC = off; off += Math.ceil(c.K / 4) * 4;
  const CT = c.C / 4, sCt = off; off += ((CT * (CT - 1)) / 2) * c.K;
  return { NT, slots, sG, sTm, sWd, sAC, sCt, floats: off };
}

function check(c: DeltaAdjKeyConfig): void {
  if (c.K !== c.V) throw new Error(`delta-adjoint (key): K ${c.K} must equal V ${c.V} (a thread owns one tile of each output)`);
  if (c.K > c.C) throw new Error(`delta-adjoint (key): K ${c.K} > C ${c.C} (the six-slot plan only)`);
  if (c.C % 4 || c.K % 4 || c.C < 4 || c.K < 4) throw new Error(`delta-adjoint (key): C ${c.C} and K ${c.K} must be multiples of 4 (4 x 4 register tiles)`);
  const { NT, floats } = layout(c);
  if (NT > 1024) throw new Error(`delta-adjoint (key): C ${c.C}, K ${c.K} needs ${NT} threads (> 1024)`);
  if (floats * 4 > 227 * 1024) throw new Error(`delta-adjoint (key): C ${c.C}, K ${c.K} needs ${floats * 4} bytes of shared memory (> 227 KiB)`);
}

export function deltaAdjKeyKernel(c: DeltaAdjKeyConfig): DeltaAdjKeyKernel {
  check(c);
  const { NT, floats } = layout(c);
  return { ...c, entry: deltaAdjKeyEntry(c), threads: NT, sharedBytes: floats * 4 };
}

const unroll = "#pragma unroll";

/** A shared-memory slot: its pointer's name and row stride (floats). */
export interface KeySlot { p: string; ld: number }

/** The per-key adjoints' common pieces (this file's SIMT kernel: 4-slot tiles, expf; delta-adjoint-key-mma.ts's TF32
 * twin: 16-slot blocks, __expf), for a block of `blk` slots and the exp function `exp`, NT threads:
 *   gk(row, i): G[row - 1][i] in sG (row 0: G[-1] = 0);
 *   exX(oq), exY, exC: the operand scalings' exponents (<= 0): x~ = x exp(Ga[a] - G[blk tau(a) - 1]) (the side's a rows),
 *     k^ / u^ = . exp(G[blk tau(f) + blk - 1] - G[f]) (f rows), k exp(G[C - 1] - G[f]) (eC);
 *   load(dst, src, w, kind, transposed, ex?): rows [a][i] or transposed [i][a] of a per-token input ("tok") or chunk
 *     tensor ("chunk") of width w, each value times exp(ex(a, i)) where given; loadKV(dst, src, transposed): a [K][V]
 *     chunk tensor (S0, LE) as it is or transposed;
 *   diagDot(xg, kg, oq): sum over the keys of x_a,i k_f,i exp(Ga[a,i] - G[f,i]) into s, from the raw inputs;
 *   prefixG: G into sG [C + 1][K] (the chunk's log decays, then a key's prefix sum a thread, in slot order). */
export function adjKeyParts(c: DeltaAdjKeyConfig, NT: number, blk: number, exp: "expf" | "__expf") {
  const { C, K, V } = c;
  const tok = adjTok;
  const chk = (a: string, i: string, w: number) => `((size_t)n * ${C}u + ${a}) * ${w}u + ${i}`;
  const gk = (row: string, i: string) => `sG[(${row}) * ${K}u + (${i})]`;
  const put = (d: KeySlot, r: string, c4: string, T_: boolean) => T_
    ? `${d.p}[(4u * ${c4}) * ${d.ld}u + ${r}] = v.x; ${d.p}[(4u * ${c4} + 1u) * ${d.ld}u + ${r}] = v.y; ${d.p}[(4u * ${c4} + 2u) * ${d.ld}u + ${r}] = v.z; ${d.p}[(4u * ${c4} + 3u) * ${d.ld}u + ${r}] = v.w;`
    : `*(float4*)&${d.p}[${r} * ${d.ld}u + 4u * ${c4}] = v;`;
  const load = (dst: KeySlot, src: string, w: number, kind: "tok" | "chunk", T_: boolean, ex?: (a: string, i: string) => string) => {
    const at = `seqc_dadj_in4(${src}, ${kind === "tok" ? tok("a", "4u * i4", w) : chk("a", "4u * i4", w)})`;
    const idx = T_ ? `const u32 a = x % ${C}u, i4 = x / ${C}u;` : `const u32 a = x / ${w / 4}u, i4 = x % ${w / 4}u;`;
    const sc = ex ? ` v.x *= ${exp}(${ex("a", "4u * i4")}); v.y *= ${exp}(${ex("a", "4u * i4 + 1u")}); v.z *= ${exp}(${ex("a", "4u * i4 + 2u")}); v.w *= ${exp}(${ex("a", "4u * i4 + 3u")});` : "";
    return `${unroll} 2\n  for (u32 x = t; x < ${(C * w) / 4}u; x += ${NT}u) { ${idx} float4 v = a < nv ? ${at} : make_float4(0.f, 0.f, 0.f, 0.f);${sc} ${put(dst, "a", "i4", T_)} }\n`;
  };
  const loadKV = (dst: KeySlot, src: string, T_: boolean) => {
    const idx = T_ ? `const u32 i = x % ${K}u, j4 = x / ${K}u;` : `const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u;`;
    return `${unroll} 2\n  for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) { ${idx} const float4 v = seqc_dadj_in4(${src}, (size_t)n * ${K * V}u + i * ${V}u + 4u * j4); ${put(dst, "i", "j4", T_)} }\n`;
  };
  const exX = (oq: number) => (a: string, i: string) => `${gk(`${a} + ${oq}u`, i)} - ${gk(`${a} & ~${blk - 1}u`, i)}`;
  const exY = (f: string, i: string) => `${gk(`(${f} | ${blk - 1}u) + 1u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const exC = (f: string, i: string) => `${gk(`${C}u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const diagDot = (xg: string, kg: string, oq: number) => `${unroll} 4
      for (u32 m0 = 0; m0 < ${K}u; m0 += 4u) {
        const float4 x4 = seqc_dadj_in4(${xg}, ${tok("a", "m0", K)}), k4 = seqc_dadj_in4(${kg}, ${tok("f", "m0", K)});
${["x", "y", "z", "w"].map((e, q) => `        s = fmaf(x4.${e} * k4.${e}, ${exp}(${gk(`a + ${oq}u`, q ? `m0 + ${q}u` : "m0")} - ${gk("f + 1u", q ? `m0 + ${q}u` : "m0")}), s);\n`).join("")}      }
`;
  const prefixG = `  // G: the chunk's log decays loaded by all threads (zeros past T), then a key's prefix a thread (slot order)
${unroll} 4
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x / ${K}u, i = x % ${K}u; sG[${K}u + x] = a < nv ? LD[${tok("a", "i", K)}] : 0.f; }
  if (t < ${K}u) sG[t] = 0.f;
  __syncthreads();
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    float s = 0.f;
${unroll} 8
    for (u32 a = 1; a <= ${C}u; ++a) { s += sG[a * ${K}u + i]; sG[a * ${K}u + i] = s; }
  }
  __syncthreads();
`;
  return { gk, load, loadKV, exX, exY, exC, diagDot, prefixG };
}

export function deltaAdjKeySource(c: DeltaAdjKeyConfig): string {
  check(c);
  const { C, K, V, tin } = c;
  const L = layout(c), S = L.slots, NT = L.NT, CT = C / 4;
  const TIN = tin === "f32" ? "float" : "unsigned short";
  const tok = adjTok;
  const { gk, load, loadKV, exX, exY, exC, diagDot, prefixG } = adjKeyParts(c, NT, 4, "expf");
  // the factor between 4-slot tiles ta > tf, exp(G[4 ta - 1, i] - G[4 tf + 3, i]), keys i..i + 3 (a float4)
  const ct = (ta: string, tf: string, i: string) => `*(const float4*)&sCt[((((${ta}) * ((${ta}) - 1u)) >> 1u) + (${tf})) * ${K}u + (${i})]`;
  const zero = (acc: string, decl = true) => {
    const z = zeroTile(acc, "  ");
    return `${decl ? `  ${z}` : z.slice(z.indexOf("\n") + 1)}\n`;
  };
  const full = (acc: string, X: Slot, Y: Slot, w: number) => prod(acc, X.p, X.ld, false, Y.p, Y.ld, "oti", "otj", "0u", `${w}u`);
  // acc (row 4 oti + p, column 4 otj + j) times exp(e(row, column))
  const scaleEl = (acc: string, e: (a: string, i: string) => string) => `${unroll}
  for (u32 p = 0; p < 4u; ++p)
${unroll}
    for (u32 j = 0; j < 4u; ++j) ${acc}[p][j] *= expf(${e("(4u * oti + p)", "(4u * otj + j)")});
`;
  // dst [a][f] = g_a . y_f over w (Y stored [m][f]), masked f < a + oq (the value sums: no decay)
  const scoresPlain = (dst: Slot, X: Slot, Y: Slot, w: number, oq: number) => `  for (u32 x = t; x < ${CT * CT}u; x += ${NT}u) {
    const u32 sti = x / ${CT}u, stj = x % ${CT}u;
${zero("sc").replace(/^/gm, "  ")}    if (stj <= sti) {
${prod("sc", X.p, X.ld, false, Y.p, Y.ld, "sti", "stj", "0u", `${w}u`)}    }
${unroll}
    for (u32 p = 0; p < 4u; ++p) {
      const u32 a = 4u * sti + p, f = 4u * stj;
      *(float4*)&${dst.p}[a * ${dst.ld}u + f] = make_float4(f < a + ${oq}u ? sc[p][0] : 0.f, f + 1u < a + ${oq}u ? sc[p][1] : 0.f, f + 2u < a + ${oq}u ? sc[p][2] : 0.f, f + 3u < a + ${oq}u ? sc[p][3] : 0.f);
    }
  }
`;
  // dst [a][f] = sum_i x_a,i k_f,i D[a,f,i]: X = x~ rows, Yt = k^ transposed [i][f]; between tiles the factor
  // exp(G[4 sti - 1, i] - G[4 stj + 3, i]) a key; the diagonal tiles directly from the raw inputs xg, kg
  const scoresKey = (dst: Slot, X: Slot, Yt: Slot, xg: string, kg: string, oq: number) => `  for (u32 x = t; x < ${CT * CT}u; x += ${NT}u) {
    const u32 sti = x / ${CT}u, stj = x % ${CT}u;
${zero("sc").replace(/^/gm, "  ")}    if (stj < sti) {
      for (u32 m0 = 0; m0 < ${K}u; m0 += 4u) {
        float xa[4][4];
${unroll}
        for (u32 p = 0; p < 4u; ++p) { const float4 v = *(const float4*)&${X.p}[(4u * sti + p) * ${X.ld}u + m0]; xa[p][0] = v.x; xa[p][1] = v.y; xa[p][2] = v.z; xa[p][3] = v.w; }
        const float4 c4 = ${ct("sti", "stj", "m0")};
        const float cs[4] = {c4.x, c4.y, c4.z, c4.w};
${unroll}
        for (u32 q = 0; q < 4u; ++q) {
          const float cq = cs[q];
          const float4 y4 = *(const float4*)&${Yt.p}[(m0 + q) * ${Yt.ld}u + 4u * stj];
          const float yb[4] = {y4.x * cq, y4.y * cq, y4.z * cq, y4.w * cq};
${unroll}
          for (u32 p = 0; p < 4u; ++p)
${unroll}
            for (u32 j = 0; j < 4u; ++j) sc[p][j] = fmaf(xa[p][q], yb[j], sc[p][j]);
        }
      }
    }
    if (stj != sti)
${unroll}
      for (u32 p = 0; p < 4u; ++p) *(float4*)&${dst.p}[(4u * sti + p) * ${dst.ld}u + 4u * stj] = make_float4(sc[p][0], sc[p][1], sc[p][2], sc[p][3]);
  }
  // the diagonal tiles' ${CT * 16} entries, one a thread: sum over the keys of x_a,i k_f,i exp(Ga[a,i] - G[f,i]), the raw inputs
  for (u32 x = t; x < ${CT * 16}u; x += ${NT}u) {
    const u32 a = 4u * (x >> 4u) + ((x >> 2u) & 3u), f = 4u * (x >> 4u) + (x & 3u);
    float s = 0.f;
    if (f < a + ${oq}u && a < nv) {
${diagDot(xg, kg, oq)}    }
    ${dst.p}[a * ${dst.ld}u + f] = s;
  }
`;
  // acc += the other tiles' sum in tp (over tiles m0 / 4 in [lo, hi): xa[p][q] read by xaRow, the factor between tiles
  // ct(cta, ctf) a key, times the y rows Y[m0 + q]), then times exp(own): the row's own factor (the own tile: ownTile)
  const offTiles = (acc: string, lo: string, hi: string, xaRow: string, cta: string, ctf: string, Y: KeySlot, own: string) => `  {
${zero("tp").replace(/^/gm, "  ")}    for (u32 m0 = ${lo}; m0 < ${hi}; m0 += 4u) {
      float xa[4][4];
${unroll}
      ${xaRow}
      const float4 c4 = ${ct(cta, ctf, "4u * otj")};
      const float cj[4] = {c4.x, c4.y, c4.z, c4.w};
${unroll}
      for (u32 q = 0; q < 4u; ++q) {
        const float4 y4 = *(const float4*)&${Y.p}[(m0 + q) * ${Y.ld}u + 4u * otj];
        const float yb[4] = {y4.x * cj[0], y4.y * cj[1], y4.z * cj[2], y4.w * cj[3]};
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) tp[p][j] = fmaf(xa[p][q], yb[j], tp[p][j]);
      }
    }
${unroll}
    for (u32 p = 0; p < 4u; ++p)
${unroll}
      for (u32 j = 0; j < 4u; ++j) ${acc}[p][j] = fmaf(tp[p][j], expf(${own}), ${acc}[p][j]);
  }
`;
  // acc[f][i] += sum_a Sc[a][f] x_a,i D[a,f,i] (dk += A^T x, du += B^T x): X = x~ rows; the later tiles' sum with
  // exp(G[4 tau - 1] - G[4 oti + 3]) a key, then times exp(G[4 oti + 3] - G[f])
  const prodO = (acc: string, Sc: Slot, X: Slot) => offTiles(acc, "4u * oti + 4u", `${C}u`,
    `for (u32 q = 0; q < 4u; ++q) { const float4 v = *(const float4*)&${Sc.p}[(m0 + q) * ${Sc.ld}u + 4u * oti]; xa[0][q] = v.x; xa[1][q] = v.y; xa[2][q] = v.z; xa[3][q] = v.w; }`,
    "m0 >> 2u", "oti", X, `${gk("4u * oti + 4u", "4u * otj + j")} - ${gk("4u * oti + p + 1u", "4u * otj + j")}`);
  // acc[a][i] += sum_f Sc[a][f] y_f,i D[a,f,i] (dx += A k, dx += B u): Y = y^ rows; the earlier tiles' sum with
  // exp(G[4 oti - 1] - G[4 tau + 3]) a key, then times exp(Ga[a] - G[4 oti - 1])
  const prodQ = (acc: string, Sc: Slot, Y: Slot, oq: number) => offTiles(acc, "0", "4u * oti",
    `for (u32 p = 0; p < 4u; ++p) { const float4 v = *(const float4*)&${Sc.p}[(4u * oti + p) * ${Sc.ld}u + m0]; xa[p][0] = v.x; xa[p][1] = v.y; xa[p][2] = v.z; xa[p][3] = v.w; }`,
    "oti", "m0 >> 2u", Y, `${gk(`4u * oti + p + ${oq}u`, "4u * otj + j")} - ${gk("4u * oti", "4u * otj + j")}`);
  // the own tile of the side's four products (a, f in tile oti, keys 4 otj..): each exp(Ga[a,i] - G[f,i]) once for
  // dx += (A[a,f] k_f + B[a,f] u_f) D, dk_f += A[a,f] x_a D, du_f += B[a,f] x_a D; raw x, k, u (global / L2)
  const ownTile = (As: Slot, Bs: Slot, xg: string, oq: number) => `  {
    float xr[4][4];
${unroll}
    for (u32 q = 0; q < 4u; ++q) {
      const u32 a = 4u * oti + q;
      const float4 v = a < nv ? seqc_dadj_in4(${xg}, ${tok("a", "4u * otj", K)}) : make_float4(0.f, 0.f, 0.f, 0.f);
      xr[q][0] = v.x; xr[q][1] = v.y; xr[q][2] = v.z; xr[q][3] = v.w;
    }
${unroll}
    for (u32 pf = 0; pf < 4u; ++pf) {
      const u32 f = 4u * oti + pf;
      const float4 k4 = f < nv ? seqc_dadj_in4(KK, ${tok("f", "4u * otj", K)}) : make_float4(0.f, 0.f, 0.f, 0.f);
      const float4 u4 = f < nv ? seqc_dadj_in4(U, ${tok("f", "4u * otj", K)}) : make_float4(0.f, 0.f, 0.f, 0.f);
      const float kf[4] = {k4.x, k4.y, k4.z, k4.w}, uf[4] = {u4.x, u4.y, u4.z, u4.w};
${unroll}
      for (u32 pa = 0; pa < 4u; ++pa) {
        const u32 a = 4u * oti + pa;
        if (f < a + ${oq}u) {
          const float sa = ${As.p}[a * ${As.ld}u + f], sb = ${Bs.p}[a * ${Bs.ld}u + f];
${unroll}
          for (u32 j = 0; j < 4u; ++j) {
            const float e = expf(${gk(`a + ${oq}u`, "4u * otj + j")} - ${gk("f + 1u", "4u * otj + j")});
            dx[pa][j] = fmaf(fmaf(sa, kf[j], sb * uf[j]), e, dx[pa][j]);
            dk[pf][j] = fmaf(sa * xr[pa][j], e, dk[pf][j]);
            du[pf][j] = fmaf(sb * xr[pa][j], e, du[pf][j]);
          }
        }
      }
    }
  }
`;
  const store = (acc: string, dst: string) => `${unroll}
  for (u32 p = 0; p < 4u; ++p) {
    const u32 a = 4u * oti + p;
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) ${dst}[${tok("a", "4u * otj + j", K)}] = ${acc}[p][j];
    }
  }
`;
  // the dld terms of this thread's tile: dst[a][i] (op)= sign src_a,i acc[a][i] (rows past the chunk's end: zeros)
  const terms = (acc: string, src: string, dst: number, op: "=" | "+=" | "-=") => `${unroll}
  for (u32 p = 0; p < 4u; ++p) {
    const u32 a = 4u * oti + p;
${unroll}
    for (u32 j = 0; j < 4u; ++j) sF[${dst}u + a * ${K}u + 4u * otj + j] ${op} (a < nv ? seqc_dadj_in(${src}, ${tok("a", "4u * otj + j", K)}) * ${acc}[p][j] : 0.f);
  }
`;
  const side = (y: boolean) => {
    const oq = y ? 1 : 0, x = y ? "Q" : "W";
    const g = y ? load(S[1], "DY", V, "tok", false) : load(S[1], "DR", V, "chunk", false);
    return `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----
${load(S[0], x, K, "tok", false, exX(oq))}${g}${loadKV(S[2], "S0", true)}${load(S[3], "KK", K, "tok", true, exY)}${load(S[5], "VV", V, "tok", true)}  __syncthreads();
${zero("dx", false)}${full("dx", S[1], S[2], V)}${scaleEl("dx", (a, i) => gk(`${a} + ${oq}u`, i))}${scoresKey(S[4], S[0], S[3], x, "KK", oq)}  __syncthreads();
  // dv += P^T g; A = g v^T
${load(S[3], "KK", K, "tok", false, exY)}${prod("dv", S[4].p, S[4].ld, true, S[1].p, S[1].ld, "oti", "otj", "4u * oti", `${C}u`)}${scoresPlain(S[2], S[1], S[5], V, oq)}  __syncthreads();
  // dx += A k; dk += A^T x
${load(S[5], "R", V, "chunk", true)}${load(S[4], "U", K, "tok", false, exY)}${prodQ("dx", S[2], S[3], oq)}${prodO("dk", S[2], S[0])}  __syncthreads();
  // B = g r^T
${scoresPlain(S[3], S[1], S[5], V, oq)}  __syncthreads();
  // dx += B u; du += B^T x
${prodQ("dx", S[3], S[4], oq)}${prodO("du", S[3], S[0])}${ownTile(S[2], S[3], x, oq)}${store("dx", y ? "dQ" : "dW")}${y ? terms("dx", "Q", 0, "=") : terms("dx", "W", C * K, "=")}  __syncthreads();
`;
  };
  const slots = S.map((x) => `  float* ${x.p} = (float*)seqc_smem_raw + ${x.off};\n`).join("");
  return `${adjHead(deltaAdjKeyEntry(c), TIN, NT, 1, C)}  const u32 oti = t / ${K / 4}u, otj = t % ${K / 4}u;  // this thread's tile of each [C, K] output
${slots}  float* sG = (float*)seqc_smem_raw + ${L.sG};   // [C + 1][K]: row a + 1 = G[a], row 0 = 0
  float* sF = (float*)seqc_smem_raw + ${L.sTm};  // [C][K] q dq - u du - k dk, then [C][K] w dw
  float* sAC = (float*)seqc_smem_raw + ${L.sAC};  // [K] aC
  float* sCt = (float*)seqc_smem_raw + ${L.sCt};  // [C / 4 (C / 4 - 1) / 2][K] the factors between tiles
${prefixG}  // the factors between tiles ta > tf: exp(G[4 ta - 1, i] - G[4 tf + 3, i]) (sCt, pairs in order of ta then tf)
  for (u32 x = t; x < ${(CT * (CT - 1)) / 2 * K}u; x += ${NT}u) {
    const u32 pr = x / ${K}u, i = x % ${K}u;
    u32 ta = 1u;
    while (((ta + 1u) * ta) >> 1u <= pr) ++ta;
    const u32 tf = pr - ((ta * (ta - 1u)) >> 1u);
    sCt[x] = expf(${gk("4u * ta", "i")} - ${gk("4u * tf + 4u", "i")});
  }
  // ---- LE: dv = (k o eC) LE, dk = (v LE^T) o eC, du = (r LE^T) o eC; aC ----
${load(S[0], "KK", K, "tok", false, exC)}${loadKV(S[1], "LE", false)}${load(S[2], "VV", V, "tok", false)}${load(S[3], "R", V, "chunk", false)}${loadKV(S[4], "LE", true)}  __syncthreads();
${zero("dv")}${zero("dk")}${zero("du")}  float dx[4][4];
${full("dv", S[0], S[1], K)}${full("dk", S[2], S[4], V)}${full("du", S[3], S[4], V)}${scaleEl("dk", exC)}${scaleEl("du", exC)}  {
    // aC's partials: 4 columns of a row of LE (its slot) . S_C a step (S_C read coalesced), into sF [K][V / 4]
    const float* SC = cix + 1u < nC ? S0 + (size_t)(n + 1u) * ${K * V}u : SF + (size_t)bh * ${K * V}u;
${unroll} 2
    for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) {
      const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u;
      const float4 sc = __ldg((const float4*)(SC + i * ${V}u + 4u * j4)), le = *(const float4*)&${S[1].p}[i * ${S[1].ld}u + 4u * j4];
      sF[x] = fmaf(le.w, sc.w, fmaf(le.z, sc.z, fmaf(le.y, sc.y, le.x * sc.x)));
    }
  }
  __syncthreads();
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    float s = 0.f;
    for (u32 j4 = 0; j4 < ${V / 4}u; ++j4) s += sF[i * ${V / 4}u + j4];
    sAC[i] = s;  // (read after the sides' barriers)
  }
${side(true)}${side(false)}${terms("du", "U", 0, "-=")}${terms("dk", "KK", 0, "-=")}${store("dk", "dK")}${store("du", "dU")}${store("dv", "dV")}  __syncthreads();
  // dld_a = aC + sum_{s > a} (terms + w dw)_s + terms_a, a column (key) a thread
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    float s = sAC[i];
    for (u32 a = ${C}u; a-- > 0u;) {
      const float tm = sF[a * ${K}u + i];
      if (a < nv) dLD[${tok("a", "i", K)}] = s + tm;
      s += tm + sF[${C * K}u + a * ${K}u + i];
    }
  }
}
`;
}
