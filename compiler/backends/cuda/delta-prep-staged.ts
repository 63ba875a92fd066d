/**
 * The "staged" form of prep's TF32 twins (delta-prep-mma.ts; config `staged: true`, math "tf32", bf16 inputs, decay
 * "none" / "scalar"): the same chunk quantities and entries, built for occupancy and for the loads' latency.
 *   - The per-token inputs stay bf16 in shared memory (rows of K + 8 / V + 8 halves: the fragments' 16-bit reads hit
 *     distinct banks), copied by 16-byte cp.async, every copy of the block in flight at once (prep_bwd's TI too); the
 *     twin's loads are one 8-byte load and a store a loop trip, each trip waiting on its load.
 *   - Tinv is formed in Luu's buffer (the diagonal blocks' solve into registers, a barrier, then written over Luu; each
 *     block row's products read Luu's rows below and Tinv's above), TL = Tinv Luk in U's and KK's.
 *   - prep_bwd forms TP = Tinv^T Pu^T [C][C] (upper triangular) and X = TP dY, where the twin forms PD = Pu^T dY [C][V]
 *     and X = Tinv^T PD; NN = Wd from W's rows in shared memory (the twin reads W from global memory 8 bytes a trip).
 * Shared memory (none / scalar): prep_fwd 72,704 / 74,000 bytes at K = 64 (three blocks an SM; the twin's 106,496:
 * two), 105,472 / 106,768 at K = 128 (two; the twin's 172,032: one); prep_bwd 72,704 / 74,000 at K = 64 (three; 108,544:
 * two), 105,472 / 106,768 at K = 128 (two; 174,080: one). The products are delta-prep-mma.ts's (m16n8k8 TF32 mma, Tinv's
 * block rows 3xTF32); every sum runs in the twin's order except prep_bwd's X (TF32 rounding of TP, not of PD).
 * Config `scores: "bf16"` (the default since H200 call C2b: prep_fwd 1.10-1.13x, prep_bwd 1.00-1.08x): the scores Luu, Luk / Pu (bf16 rows times bf16 rows,
 * exact operands either way) as bf16 mma m16n8k16, each fragment register one 32-bit shared load (bf16Scores): half
 * the mma instructions and half the shared loads of the TF32 scores, no conversions; the same entry, shared memory and
 * outputs.
 */
import { prepLayout, prepParts, prepThreads, type DeltaPrepConfig, type DeltaPrepDecay } from "./delta-prep.ts";
import { SEQC_QUAD_PRELUDE, mmaProduct, quadStores } from "./delta-prep-mma.ts";
import { tf32Ops } from "./lowrank-readout-mma.ts";
import { DELTA_WALK_ZOUT_PRELUDE } from "./delta-walk.ts";

/** Shared memory in floats: G and eW / eQ / eC as prepLayout, then (fwd) UK (U then KK as bf16 [C][K + 8]; later the
 * block rows' products and TL [C][C + 4]), W, V (bf16), L (Luu, then Tinv [C][C + 4]), Lk [C][C + 8]; (bwd) QU (Q then
 * U as bf16; later TP [C][C + 4]), W, DY (bf16), Ti [C][C + 8], Pu [C][C + 4]. */
export function deltaPrepStagedLayout(c: DeltaPrepConfig<DeltaPrepDecay>): { floats: number; at: Record<string, number> } {
  const { C, K, V } = c, LB = K + 8, LBV = V + 8, LT = C + 4, L8 = C + 8;
  const half = (ld: number) => (C * ld) / 2;
  return prepLayout(c, c.op === "fwd"
    ? [["UK", Math.max(2 * half(LB), C * LT)], ["W", half(LB)], ["V", half(LBV)], ["L", C * LT], ["Lk", C * L8]]
    : [["QU", Math.max(2 * half(LB), C * LT)], ["W", half(LB)], ["DY", half(LBV)], ["Ti", C * L8], ["Pu", C * LT]]);
}

export function deltaPrepStagedCheck(c: DeltaPrepConfig<DeltaPrepDecay>): void {
  if (c.math !== "tf32" || c.tin !== "bf16" || c.decay === "key") throw new Error(`delta-prep (staged): math "tf32", bf16 inputs and decay "none" / "scalar" only (got ${c.math}, ${c.tin}, ${c.decay})`);
  if (c.C % 16 || c.C < 16 || c.K % 16 || c.V % 8) throw new Error(`delta-prep (staged): C ${c.C} and K ${c.K} must be multiples of 16, V ${c.V} of 8`);
  const bytes = deltaPrepStagedLayout(c).floats * 4;
  if (bytes > 227 * 1024) throw new Error(`delta-prep (staged): C ${c.C}, K ${c.K}, V ${c.V} (${c.op}) needs ${bytes} bytes of shared memory (> 227 KiB)`);
}

/** seqc_h2f: a bf16 in shared memory (its 16 bits) as float; guarded, so each kernel may put it before itself. */
export const H2F = `#ifndef SEQC_DELTA_H2F
#define SEQC_DELTA_H2F 1
__device__ __forceinline__ float seqc_h2f(unsigned short x) { return __uint_as_float(((u32)x) << 16); }
#endif
`;

/** seqc_dps_mma: mma.sync m16n8k16 bf16 with fp32 accumulators (the CPU emulation's emu_mma); guarded, put before a
 * kernel whose scores are bf16 mma (config scores "bf16"). */
export const BF16_MMA = `#ifndef SEQC_DELTA_PREP_BF16_MMA
#define SEQC_DELTA_PREP_BF16_MMA 1
#ifdef SEQC_EMU
inline void seqc_dps_mma(float* c, const u32* a, const u32* b) { emu_mma(0, c, a, b); }
#else
__device__ __forceinline__ void seqc_dps_mma(float* c, const u32* a, const u32* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif
#endif
`;

/** On WARPS warps (lanes' w, g, tg declared before), the scores [C][C] S[a][f] = sum_k X[a][k] Y[f][k] of bf16 rows
 * X, Y [C][LB] (LB halves a row, even) as bf16 mma m16n8k16: 16 x 8 NW tiles a warp, each fragment register one
 * 32-bit load of two adjacent k (rows of LB / 2 = 4 mod 32 words: the lanes' loads hit distinct banks), k-blocks of
 * 16 up to kTo(r0, n0); `done` stores one element (row, col, v). */
export const bf16Scores = (WARPS: number, C: number, LB: number, kTo: string) => (xa: string, yf: string, done: string) => {
  const NW = (C / 8) % 4 === 0 ? 4 : (C / 8) % 2 === 0 ? 2 : 1, NBC = C / (8 * NW);
  const at = (buf: string, r: string, k: string) => `*(const u32*)&${buf}[(${r}) * ${LB}u + ${k}]`;
  return `  for (u32 x = w; x < ${(C / 16) * NBC}u; x += ${WARPS}u) {
    const u32 r0 = (x / ${NBC}u) * 16u, n0 = (x % ${NBC}u) * ${8 * NW}u;
    float acc[${NW}][4];
#pragma unroll
    for (u32 s = 0; s < ${NW}u; ++s) { acc[s][0] = 0.f; acc[s][1] = 0.f; acc[s][2] = 0.f; acc[s][3] = 0.f; }
    for (u32 k0 = 0u; k0 < ${kTo}; k0 += 16u) {
      u32 fa[4];
      fa[0] = ${at(xa, "r0 + g", "k0 + 2u * tg")}; fa[1] = ${at(xa, "r0 + g + 8u", "k0 + 2u * tg")};
      fa[2] = ${at(xa, "r0 + g", "k0 + 2u * tg + 8u")}; fa[3] = ${at(xa, "r0 + g + 8u", "k0 + 2u * tg + 8u")};
#pragma unroll
      for (u32 s = 0; s < ${NW}u; ++s) {
        u32 fb[2];
        fb[0] = ${at(yf, "n0 + 8u * s + g", "k0 + 2u * tg")}; fb[1] = ${at(yf, "n0 + 8u * s + g", "k0 + 2u * tg + 8u")};
        seqc_dps_mma(acc[s], fa, fb);
      }
    }
#pragma unroll
    for (u32 s = 0; s < ${NW}u; ++s)
#pragma unroll
      for (u32 e = 0; e < 4u; ++e) {
        const u32 row = r0 + g + 8u * (e >> 1u), col = n0 + 8u * s + 2u * tg + (e & 1u);
        const float v = acc[s][e];
        ${done}
      }
  }
`;
};

export function deltaPrepStagedSource(c: DeltaPrepConfig<DeltaPrepDecay>): string {
  deltaPrepStagedCheck(c);
  const { C, K, V, op } = c, NT = prepThreads(c), WARPS = NT / 32, LB = K + 8, LBV = V + 8, LT = C + 4, L8 = C + 8;
  const { at } = deltaPrepStagedLayout(c);
  const { dec, ex, eW, eQ, eC, row, head, aOut, tiStore, gPrefix, exps } = prepParts(c, at);
  const ops = tf32Ops(false), x3 = tf32Ops(true);
  const product = mmaProduct(WARPS, ops);
  const scaled = (e: string, v: string) => (e ? `${e} * ${v}` : v);
  // element readers: fp32 [rows][ld] and bf16 [rows][ld] buffers, as [m][k] (rowOf) or [k][m] (colOf / kOf), an
  // optional factor by the k index
  const rowOf = (buf: string, ld: number) => (m: string, k: string) => `${buf}[(${m}) * ${ld}u + ${k}]`;
  const colOf = (buf: string, ld: number) => (k: string, m: string) => `${buf}[(${k}) * ${ld}u + ${m}]`;
  const hRow = (buf: string, ld: number) => (m: string, k: string) => `seqc_h2f(${buf}[(${m}) * ${ld}u + ${k}])`;
  const hCol = (buf: string, ld: number, s?: (k: string) => string) => (k: string, m: string) => (s ? scaled(s(`(${k})`), `seqc_h2f(${buf}[(${k}) * ${ld}u + ${m}])`) : `seqc_h2f(${buf}[(${k}) * ${ld}u + ${m}])`);
  const hK = (buf: string, ld: number, s?: (k: string) => string) => (m: string, k: string) => hCol(buf, ld, s)(k, m);
  const fK = (buf: string, ld: number) => (m: string, k: string) => `${buf}[(${k}) * ${ld}u + ${m}]`;
  const lanes = `  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;\n`;
  const out = (name: string, rows: number, W: number) => ({ pair: `${name}[(size_t)n * ${rows * W}u + row * ${W}u + col]` });
  const eWf = dec ? eW : undefined, eCf = dec ? eC : undefined, eQf = dec ? eQ : undefined;
  /** A chunk's rows of a bf16 per-token input [.., w] into bf16 rows [C][ld] by 16-byte cp.async (zeros past T). */
  const copy = (dst: string, src: string, w: number, ld: number) => `  for (u32 x = t; x < ${(C * w) / 8}u; x += ${NT}u) {
    const u32 a = x / ${w / 8}u, i8 = x % ${w / 8}u;
    unsigned short* d = ${dst} + a * ${ld}u + 8u * i8;
    if (a < used) seqc_cp16(d, &${src}[${row("a")} * ${w}u + 8u * i8]); else *(uint4*)d = make_uint4(0u, 0u, 0u, 0u);
  }
`;
  /** The copies committed, LD's loads (scalar decay), the wait, a barrier, G's prefix and the exponent rows. */
  const landed = `  seqc_cp_commit();
${gPrefix}  seqc_cp_wait<0>();
  __syncthreads();
${exps}`;
  // scores [a][f] from bf16 rows X (a) and Y (f) [C][LB], masked and decayed into dst [C][ld]
  // (scores "bf16": as bf16 mma m16n8k16, bf16Scores)
  const scoreTo = `(n0 > r0 + 15u ? 0u : ${K}u)`, bs = c.scores === "bf16" ? bf16Scores(WARPS, C, LB, scoreTo) : null;
  const scores = (dst: string, ld: number, xa: string, yf: string, strict: boolean) => {
    const done = `${dst}[row * ${ld}u + col] = col ${strict ? "<" : "<="} row ? v * ${strict ? ex("row", "col + 1u") : ex("row + 1u", "col + 1u")} : 0.f;`;
    return bs ? bs(xa, yf, done) : product(C, C, hRow(xa, LB), (k, f) => `seqc_h2f(${yf}[(${f}) * ${LB}u + ${k}])`, "0u", scoreTo, done);
  };
  const pre = `${H2F}${bs ? BF16_MMA : ""}`;
  /** NN [C][K] = (scale by slot) X's bf16 rows, a float4 a thread. */
  const nnOut = (hx: string, e: (a: string) => string) => `  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 a = x / ${K / 4}u, i4 = x % ${K / 4}u;
    const u32* p = (const u32*)&${hx}[a * ${LB}u + 4u * i4];
    const u32 p0 = p[0], p1 = p[1];
    float4 v = make_float4(__uint_as_float(p0 << 16), __uint_as_float(p0 & 0xffff0000u), __uint_as_float(p1 << 16), __uint_as_float(p1 & 0xffff0000u));
${dec ? `    const float e = ${e("a")};\n    v.x *= e; v.y *= e; v.z *= e; v.w *= e;\n` : ""}    *(float4*)&NN[(size_t)n * ${C * K}u + 4u * x] = v;
  }
`;
  const halves = (names: [string, string][]) => names.map(([h, p]) => `  unsigned short* ${h} = (unsigned short*)(${p});\n`).join("");
  if (op === "fwd") {
    // Tinv in Luu's buffer: each thread t < C solves its column of its 16 x 16 diagonal block into registers (forward
    // substitution: x[f] = 0 above the diagonal, so every row sums over all f < a), a barrier, then writes it over Luu
    // (Luu's entries above the diagonal are already 0); then the block rows as 3xTF32 mma, P = L[r, 0:r] Tinv[0:r, 0:r]
    // into the UK buffer, Tinv[r, 0:r] = Tinv[r, r] P (L's block row r is read by the first product only)
    const tinvRows = Array.from({ length: C / 16 - 1 }, (_, i) => {
      const r0 = 16 * (i + 1);
      return `  // block row ${i + 1}
${product(16, r0, (m, k) => `sTi[(${r0}u + ${m}) * ${LT}u + ${k}]`, (k, j) => `sTi[(${k}) * ${LT}u + ${j}]`, "n0", `${r0}u`, `sTL[row * ${LT}u + col] = v;`, x3, 1)}  __syncthreads();
${product(16, r0, (m, k) => `sTi[(${r0}u + ${m}) * ${LT}u + ${r0}u + ${k}]`, (k, j) => `sTL[(${k}) * ${LT}u + ${j}]`, "0u", "16u", `sTi[(${r0}u + row) * ${LT}u + col] = v;`, x3, 1)}  __syncthreads();
`;
    }).join("");
    return `${pre}${head}${lanes}${halves([["hU", "sUK"], ["hK", `hU + ${C * LB}u`], ["hW", "sW"], ["hV", "sV"]])}  float* sTi = sL;   // Tinv [C][C + 4] over Luu
  float* sTL = sUK;  // the block rows' products, then TL = Tinv Luk [C][C + 4], once BM and NN are out
  // the chunk's rows of U, W, KK, V, every copy in flight
${copy("hU", "U", K, LB)}${copy("hW", "W", K, LB)}${copy("hK", "KK", K, LB)}${copy("hV", "VV", V, LBV)}${landed}  // Luu [a][f], Luk [a][f]
${scores("sL", LT, "hW", "hU", true)}${scores("sLk", L8, "hW", "hK", true)}  __syncthreads();
  // NN = Ud, A out; BM = Kd^T V [K][V]
${nnOut("hU", eC)}${aOut}${product(K, V, hK("hK", LB, eCf), hCol("hV", LBV), "0u", `${C}u`, out("BM", K, V))}  __syncthreads();
  float xs[16];
  if (t < ${C}u) {
    const u32 j = t % 16u, d0 = t - j;
#pragma unroll
    for (u32 a = 0; a < 16u; ++a) {
      float s = 0.f;
#pragma unroll
      for (u32 f = 0; f < a; ++f) s = fmaf(sL[(d0 + a) * ${LT}u + d0 + f], xs[f], s);
      xs[a] = a == j ? 1.f : a > j ? s : 0.f;
    }
  }
  __syncthreads();
  if (t < ${C}u) {
    const u32 d0 = t - t % 16u;
#pragma unroll
    for (u32 a = 0; a < 16u; ++a) sTi[(d0 + a) * ${LT}u + t] = xs[a];
  }
  __syncthreads();
${tinvRows}  // TI out; M = Tinv Wd [C][K] (f <= a); TL = Tinv Luk [C][C] (f < g <= a)
${tiStore(LT)}${product(C, K, rowOf("sTi", LT), hCol("hW", LB, eWf), "0u", "r0 + 16u", out("M", C, K))}${product(C, C, rowOf("sTi", LT), colOf("sLk", L8), "n0", "r0 + 16u", `sTL[row * ${LT}u + col] = v;`)}  __syncthreads();
  // X = TL V [C][V] (f < a)
${product(C, V, rowOf("sTL", LT), hCol("hV", LBV), "0u", "r0 + 16u", out("X", C, V))}}
`;
  }
  const NWt = (C / 8) % 4 === 0 ? 4 : (C / 8) % 2 === 0 ? 2 : 1;  // mmaProduct's tile width for N = C
  if (c.wout) return stagedBwdWout(c, { pre, head, lanes, halves, copy, landed, scores, nnOut, aOut, product, rowOf, fK, hK, hCol, eW, eQf, eCf, NWt });
  return `${pre}${head}${lanes}${halves([["hQ", "sQU"], ["hU", `hQ + ${C * LB}u`], ["hW", "sW"], ["hD", "sDY"]])}  float* sTP = sQU;  // TP = Tinv^T Pu^T [C][C + 4] once BM and M are out
  // the chunk's rows of Q, U, W, dY and its Tinv, every copy in flight
${copy("hQ", "Q", K, LB)}${copy("hU", "U", K, LB)}${copy("hW", "W", K, LB)}${copy("hD", "DY", V, LBV)}  for (u32 x = t; x < ${(C * C) / 4}u; x += ${NT}u) seqc_cp16(&sTi[(x / ${C / 4}u) * ${L8}u + 4u * (x % ${C / 4}u)], &TI[(size_t)n * ${C * C}u + 4u * x]);
${landed}  // Pu [a][f]
${scores("sPu", LT, "hQ", "hU", false)}  __syncthreads();
  // NN = Wd, A out; BM = Qd^T dY [K][V]; M = Tinv^T Ud [C][K] (a >= f)
${nnOut("hW", eW)}${aOut}${product(K, V, hK("hQ", LB, eQf), hCol("hD", LBV), "0u", `${C}u`, out("BM", K, V))}${product(C, K, fK("sTi", L8), hCol("hU", LB, eCf), "r0", `${C}u`, out("M", C, K))}  __syncthreads();
  // TP [e][a] = sum_f Tinv[f][e] Pu[a][f] (e <= f <= a)
${product(C, C, fK("sTi", L8), (k, a) => `sPu[(${a}) * ${LT}u + ${k}]`, "r0", `n0 + ${8 * NWt}u`, `sTP[row * ${LT}u + col] = v;`)}  __syncthreads();
  // X = TP dY [C][V] (a >= e)
${product(C, V, rowOf("sTP", LT), hCol("hD", LBV), "r0", `${C}u`, out("X", C, V))}}
`;
}

/** ldmatrix .x4 .trans (seqc_dpl_ldsm4t: four 8 x 8 bf16 matrices transposed, lane l the address of row l % 8 of
 * matrix l / 8; the CPU emulation's emu_ldsm); guarded. */
export const PREP_LDSM_PRELUDE = `#ifndef SEQC_PREP_LDSM
#define SEQC_PREP_LDSM 1
#ifdef SEQC_EMU
inline void seqc_dpl_ldsm4t(u32* r, const void* p) { emu_ldsm(r, p, true); }
#else
__device__ __forceinline__ void seqc_dpl_ldsm4t(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((u32)__cvta_generic_to_shared(p)) : "memory");
}
#endif
#endif
`;

/** BM [K][V] = Q^T dY (config bmMma "bf16", decay none) on WARPS warps: 16 x 32 tiles, k = the chunk's C slots by 16 as
 * bf16 mma m16n8k16, A = Q^T's fragments by one ldmatrix.trans of Q's bf16 rows [C][LB] (rows: slots, 8 keys each) and
 * B = dY's by two of dY's rows [C][LBV] a k-step (each two value subtiles); rows of LB / 2, LBV / 2 = 4 mod 32 words:
 * the 8 rows of each matrix in distinct banks. `store`: the tile's stores (acc[4][4]; r0, n0, g, tg, l in scope). */
const bmBf16 = (WARPS: number, C: number, K: number, V: number, LB: number, LBV: number, store: string) => `  for (u32 x = w; x < ${(K / 16) * (V / 32)}u; x += ${WARPS}u) {
    const u32 r0 = (x / ${V / 32}u) * 16u, n0 = (x % ${V / 32}u) * 32u, lr = l & 7u, lm = l >> 3u;
    float acc[4][4];
#pragma unroll
    for (u32 s = 0; s < 4u; ++s) { acc[s][0] = 0.f; acc[s][1] = 0.f; acc[s][2] = 0.f; acc[s][3] = 0.f; }
    for (u32 k0 = 0u; k0 < ${C}u; k0 += 16u) {
      u32 fa[4], fb[4];
      // A (m: keys r0.., k: slots k0..): matrices (keys +0, slots +0), (+8, +0), (+0, +8), (+8, +8)
      seqc_dpl_ldsm4t(fa, &hQ[(k0 + 8u * (lm >> 1u) + lr) * ${LB}u + r0 + 8u * (lm & 1u)]);
#pragma unroll
      for (u32 s = 0; s < 4u; s += 2u) {
        // B (k: slots, n: values): matrices (slots +0, subtile s), (+8, s), (+0, s + 1), (+8, s + 1)
        seqc_dpl_ldsm4t(fb, &hD[(k0 + 8u * (lm & 1u) + lr) * ${LBV}u + n0 + 8u * (s + (lm >> 1u))]);
        seqc_dps_mma(acc[s], fa, fb);
        seqc_dps_mma(acc[s + 1u], fa, fb + 2);
      }
    }
${store}  }
`;

/** prep_bwd with wout (config `wout`, the bf16 walk's operands; delta-walk-bf16.ts): the staged prep_bwd's products and
 * order, each output rounded to bf16 (nearest even, seqc_dz_pack: bit for bit the fp32 twin's value rounded) as it is
 * stored, 2 bytes an element: M [C][K]; NN^T [K][C] (NN = Wd transposed, 8 slots a 16-byte store); X [C][V] and BM
 * [K][V] with wout "all" (else float32 as the twin's). The pointer arguments keep the twin's types. */
function stagedBwdWout(c: DeltaPrepConfig<DeltaPrepDecay>, p: Record<string, any>): string {
  const { C, K, V } = c, NT = prepThreads(c), LB = K + 8, LBV = V + 8, LT = C + 4, L8 = C + 8, xb = c.wout === "all";
  const { pre, head, lanes, halves, copy, landed, scores, aOut, product, rowOf, fK, hK, hCol, eW, eQf, eCf, NWt } = p;
  // the product's pairs stored as two bf16 (one u32, seqc_dz_pack) or two floats
  // (wstore "quad": 16 bytes a lane where the product's tiles are 32 columns wide, mmaProduct's quad form)
  const quad = c.wstore === "quad", bm16 = c.bmMma === "bf16";
  // bmMma "bf16": BM's tile stores (bf16 pairs, quad or 4 bytes; float2 without "all")
  const bmAt = `BM[(size_t)n * ${K * V}u + row * ${V}u + col]`, bmH = `((unsigned short*)BM)[(size_t)n * ${K * V}u + row * ${V}u + col]`;
  const bmStore = xb && quad ? quadStores(bmH) : `#pragma unroll
    for (u32 s = 0; s < 4u; ++s)
#pragma unroll
      for (u32 h = 0; h < 2u; ++h) {
        const u32 row = r0 + g + 8u * h, col = n0 + 8u * s + 2u * tg;
        ${xb ? `*(u32*)&${bmH} = seqc_dz_pack(acc[s][2u * h], acc[s][2u * h + 1u]);` : `*(float2*)&${bmAt} = make_float2(acc[s][2u * h], acc[s][2u * h + 1u]);`}
      }
`;
  const out = (name: string, rows: number, W: number, b: boolean) => (b
    ? { pair: `((unsigned short*)${name})[(size_t)n * ${rows * W}u + row * ${W}u + col]`, bf16: true, ...(quad ? { quad: true } : {}) }
    : { pair: `${name}[(size_t)n * ${rows * W}u + row * ${W}u + col]` });
  const bmProduct = bm16 ? bmBf16(NT / 32, C, K, V, LB, LBV, bmStore) : product(K, V, hK("hQ", LB, eQf), hCol("hD", LBV), "0u", `${C}u`, out("BM", K, V, xb));
  // NN^T [K][C]: 8 slots a0..a0+7 of key i a thread, Wd's values rounded in pairs, one 16-byte store. A warp's lanes take
  // 16 keys (lane >> 1) x 2 slot groups (lane & 1, 8 rows apart): each key's 32 bytes one whole sector, and the odd lanes
  // read their pairs in the order 2, 3, 0, 1 (then put back), 4 or 12 rows off the even lanes' (rows of LB / 2 = 4 mod 32
  // words at K = 64 / 128: the other half of the banks), so a warp's 2-byte reads of hW hit 16 banks, two lanes a word
  // (the slot groups of 8 rows a lane before: 8-way conflicts, rows 8 apart sharing a bank). C, K multiples of 16.
  const nnT = `  for (u32 x = t; x < ${(K * C) / 8}u; x += ${NT}u) {
    const u32 wq = x >> 5u, p = x & 1u;
    const u32 i = 16u * (wq / ${C / 16}u) + ((x >> 1u) & 15u), a0 = 8u * (2u * (wq % ${C / 16}u) + p);
    u32 o[4];
#pragma unroll
    for (u32 e = 0; e < 4u; ++e) {
      const u32 a = a0 + 2u * (e ^ (p << 1u));
      float lo = seqc_h2f(hW[a * ${LB}u + i]), hi = seqc_h2f(hW[(a + 1u) * ${LB}u + i]);
${c.decay === "scalar" ? `      lo = ${eW("a")} * lo; hi = ${eW("(a + 1u)")} * hi;
` : ""}      o[e] = seqc_dz_pack(lo, hi);
    }
    const uint4 q4 = p ? make_uint4(o[2], o[3], o[0], o[1]) : make_uint4(o[0], o[1], o[2], o[3]);
    *(uint4*)&((unsigned short*)NN)[(size_t)n * ${K * C}u + i * ${C}u + a0] = q4;
  }
`;
  return `${DELTA_WALK_ZOUT_PRELUDE}${quad ? SEQC_QUAD_PRELUDE : ""}${bm16 ? PREP_LDSM_PRELUDE + (c.scores === "bf16" ? "" : BF16_MMA) : ""}${pre}${head}${lanes}${halves([["hQ", "sQU"], ["hU", `hQ + ${C * LB}u`], ["hW", "sW"], ["hD", "sDY"]])}  float* sTP = sQU;  // TP = Tinv^T Pu^T [C][C + 4] once BM and M are out
  // the chunk's rows of Q, U, W, dY and its Tinv, every copy in flight
${copy("hQ", "Q", K, LB)}${copy("hU", "U", K, LB)}${copy("hW", "W", K, LB)}${copy("hD", "DY", V, LBV)}  for (u32 x = t; x < ${(C * C) / 4}u; x += ${NT}u) seqc_cp16(&sTi[(x / ${C / 4}u) * ${L8}u + 4u * (x % ${C / 4}u)], &TI[(size_t)n * ${C * C}u + 4u * x]);
${landed}  // Pu [a][f]
${scores("sPu", LT, "hQ", "hU", false)}  __syncthreads();
  // NN^T = Wd^T (bf16), A out; BM = Qd^T dY [K][V]; M = Tinv^T Ud [C][K] (a >= f; bf16)
${nnT}${aOut}${bmProduct}${product(C, K, fK("sTi", L8), hCol("hU", LB, eCf), "r0", `${C}u`, out("M", C, K, true))}  __syncthreads();
  // TP [e][a] = sum_f Tinv[f][e] Pu[a][f] (e <= f <= a)
${product(C, C, fK("sTi", L8), (k: string, a: string) => `sPu[(${a}) * ${LT}u + ${k}]`, "r0", `n0 + ${8 * NWt}u`, `sTP[row * ${LT}u + col] = v;`)}  __syncthreads();
  // X = TP dY [C][V] (a >= e)
${product(C, V, rowOf("sTP", LT), hCol("hD", LBV), "r0", `${C}u`, out("X", C, V, xb))}}
`;
}
