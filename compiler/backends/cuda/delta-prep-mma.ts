/**
 * Tensor-core twins of the delta backward's prep kernels (delta-prep.ts; math "tf32" / "tf32x3", entries ending _tf32 /
 * _tf32x3): the same chunk quantities, the same loads, G prefix and Tinv solve (fp32 SIMT), with every product (the
 * scores Luu / Luk / Pu, LV = Luk V, BM, M, X, PD = Pu^T dY) as m16n8k8 TF32 mma.sync on 8 warps (tf32x3: each
 * operand split into a TF32 head and tail, three products: fp32 accuracy). A warp owns 16 rows x 8 NW columns of a
 * result; triangular products skip the k-blocks that are zero. Operands stay in row layouts [rows][ld] in shared memory
 * with strides picked so that the fragments' scalar loads hit distinct banks ([m][k] / [n][k] reads: ld = 4 mod 32,
 * [k][m] / [k][n] reads: ld = 8 mod 32, where one layout serves both the first). With a per-key decay (decay "key")
 * the scores and the decay passes are delta-prep-key.ts's, fp32 SIMT on the row layouts; the other products are mma;
 * prep_bwd's and prep_fwd's wout "mn" twins (entry _wb) write M and NN^T [N, K, C] as bf16 for the per-key bf16 walk (delta-walk-bf16.ts
 * DELTA_WALK_BF16_KEY_CONFIGS), the rest as the twin. delta-prep.ts imports this file and
 * this file its helpers: nothing here reads them at load time.
 */
import { DELTA_PREP_THREADS, prepLayout, prepParts, type DeltaPrepConfig, type DeltaPrepDecay } from "./delta-prep.ts";
import { H2F } from "./delta-prep-staged.ts";
import { tf32Ops } from "./lowrank-readout-mma.ts";
import { DELTA_WALK_ZOUT_PRELUDE } from "./delta-walk.ts";

/** Shared memory in floats: Gb, G and eW / eQ / eC as delta-prep.ts's prepLayout, then the op's buffers with their
 * strides. */
export function deltaPrepMmaLayout(c: DeltaPrepConfig<DeltaPrepDecay>): { floats: number; at: Record<string, number> } {
  const { C, K, V } = c, LK = K + 4, LV = V + 8, LVh = halfValues(c) ? LV / 2 : LV;  // batched bf16: V / dY as bf16 rows
  // fwd: U's buffer holds Tinv [C][C + 4] once NN is out, KK's the solve's block-row products and then Tinv Luk once BM is out
  return prepLayout(c, c.op === "fwd"
    ? [["U", C * Math.max(LK, C + 4)], ["W", C * LK], ["KK", C * Math.max(LK, C + 4)], ["V", C * LVh], ["L", C * (C + 4)], ["Lk", C * (C + 8)]]
    : [["Q", C * LK], ["U", C * LK], ["DY", C * LVh], ["Ti", C * (C + 8)], ["Pu", C * (C + 8)], ["PD", C * LV]]);
}

/** Whether a twin keeps V / dY as bf16 rows in shared memory (batched loads of bf16 inputs: the values are exact, and
 * no decay pass scales them). */
export const halfValues = (c: DeltaPrepConfig<DeltaPrepDecay>): boolean => !!c.batched && c.tin === "bf16";

export function deltaPrepMmaCheck(c: DeltaPrepConfig<DeltaPrepDecay>): void {
  if (c.C % 16 || c.C < 16 || c.K % 16 || c.V % 8) throw new Error(`delta-prep (${c.math}): C ${c.C} and K ${c.K} must be multiples of 16, V ${c.V} of 8 (m16n8k8 tiles; BM's rows are K)`);
  // a per-key decay's Gl [C][K + 4] in the score buffers (fwd: Luu's and Luk's, bwd: Pu's and PD's)
  if (c.decay === "key" && c.C * (c.K + 4) > (c.op === "fwd" ? c.C * (2 * c.C + 12) : c.C * (c.C + c.V + 16))) throw new Error(`delta-prep (${c.math}, key): K ${c.K} too large for Gl in the score buffers (C ${c.C}, V ${c.V})`);
  const bytes = deltaPrepMmaLayout(c).floats * 4;
  if (bytes > 227 * 1024) throw new Error(`delta-prep (${c.math}): C ${c.C}, K ${c.K}, V ${c.V} (${c.op}) needs ${bytes} bytes of shared memory (> 227 KiB)`);
}

/** The quad stores of a warp's 16 x 32 tile acc[4][4] (r0, n0, l, g, tg in scope): each row's 4 packed bf16 pairs swapped
 * among the quad's 4 lanes by 3 shuffles, lane tg one 16-byte store of columns n0 + 8 tg .. + 7 at the lvalue `pair`
 * (row, col); needs SEQC_QUAD_PRELUDE. */
export const quadStores = (pair: string) => `#pragma unroll
    for (u32 h = 0; h < 2u; ++h) {
      // o[s]: this lane's pair (columns n0 + 8 s + 2 tg, + 1) of row r0 + g + 8 h; lane tg gathers pair j of columns
      // n0 + 8 tg .. from lane j (its o[tg]): round r takes lane (tg + r) & 3's, which sends its o[(its tg - r) & 3]
      const u32 o0 = seqc_dz_pack(acc[0][2u * h], acc[0][2u * h + 1u]), o1 = seqc_dz_pack(acc[1][2u * h], acc[1][2u * h + 1u]);
      const u32 o2 = seqc_dz_pack(acc[2][2u * h], acc[2][2u * h + 1u]), o3 = seqc_dz_pack(acc[3][2u * h], acc[3][2u * h + 1u]);
      const u32 qb = l & ~3u, v0 = seqc_sel4(tg, o0, o1, o2, o3);
      const u32 v1 = seqc_shfl_u32(seqc_sel4((tg + 3u) & 3u, o0, o1, o2, o3), qb | ((tg + 1u) & 3u));
      const u32 v2 = seqc_shfl_u32(seqc_sel4((tg + 2u) & 3u, o0, o1, o2, o3), qb | ((tg + 2u) & 3u));
      const u32 v3 = seqc_shfl_u32(seqc_sel4((tg + 1u) & 3u, o0, o1, o2, o3), qb | ((tg + 3u) & 3u));
      // pair j came in round (j - tg) & 3
      const u32 row = r0 + g + 8u * h, col = n0 + 8u * tg;
      *(uint4*)&${pair} = make_uint4(seqc_sel4(tg, v0, v3, v2, v1), seqc_sel4(tg, v1, v0, v3, v2), seqc_sel4(tg, v2, v1, v0, v3), seqc_sel4(tg, v3, v2, v1, v0));
    }
`;

/** On WARPS warps (the lanes' w, g, tg declared before; ops: tf32Ops's), the [R][N] product sum_k a(m, k) b(k, n) over k0 in [kFrom, kTo) by 8, 16 x 8 NW tiles a warp (NW <= nwMax); `done`
 * stores one result element (row, col, v), or (`{ pair }`, an lvalue at (row, col), col even) two as a float2 (`bf16`:
 * two bf16 as one u32, seqc_dz_pack; `quad` with bf16, where a warp's tile is 32 columns wide: the quad's 4 lanes swap
 * their packed pairs by 3 shuffles a row so that lane tg holds the row's 8 columns n0 + 8 tg .., one 16-byte store at
 * col = n0 + 8 tg: the same values and addresses; needs SEQC_QUAD_PRELUDE). */
export const mmaProduct = (WARPS: number, ops: ReturnType<typeof tf32Ops>) => (R: number, N: number, a: (m: string, k: string) => string, b: (k: string, n: string) => string, kFrom: string, kTo: string, done: string | { pair: string; bf16?: boolean; quad?: boolean }, { frag, mma } = ops, nwMax = 4) => {
  const NW = (N / 8) % 4 === 0 && nwMax >= 4 ? 4 : (N / 8) % 2 === 0 && nwMax >= 2 ? 2 : 1, NBC = N / (8 * NW);
  if (typeof done !== "string" && done.quad && done.bf16 && NW === 4) return `  for (u32 x = w; x < ${(R / 16) * NBC}u; x += ${WARPS}u) {
    const u32 r0 = (x / ${NBC}u) * 16u, n0 = (x % ${NBC}u) * 32u;
    float acc[4][4];
#pragma unroll
    for (u32 s = 0; s < 4u; ++s) { acc[s][0] = 0.f; acc[s][1] = 0.f; acc[s][2] = 0.f; acc[s][3] = 0.f; }
    for (u32 k0 = ${kFrom}; k0 < ${kTo}; k0 += 8u) {
${frag("      ", "fa", [a("r0 + g", "k0 + tg"), a("r0 + g + 8u", "k0 + tg"), a("r0 + g", "k0 + tg + 4u"), a("r0 + g + 8u", "k0 + tg + 4u")])}#pragma unroll
      for (u32 s = 0; s < 4u; ++s) {
${frag("        ", "fb", [b("k0 + tg", "n0 + 8u * s + g"), b("k0 + tg + 4u", "n0 + 8u * s + g")])}${mma("        ", "acc[s]", "fa", "fb")}      }
    }
${quadStores(done.pair)}  }
`;
  return `  for (u32 x = w; x < ${(R / 16) * NBC}u; x += ${WARPS}u) {
    const u32 r0 = (x / ${NBC}u) * 16u, n0 = (x % ${NBC}u) * ${8 * NW}u;
    float acc[${NW}][4];
#pragma unroll
    for (u32 s = 0; s < ${NW}u; ++s) { acc[s][0] = 0.f; acc[s][1] = 0.f; acc[s][2] = 0.f; acc[s][3] = 0.f; }
    for (u32 k0 = ${kFrom}; k0 < ${kTo}; k0 += 8u) {
${frag("      ", "fa", [a("r0 + g", "k0 + tg"), a("r0 + g + 8u", "k0 + tg"), a("r0 + g", "k0 + tg + 4u"), a("r0 + g + 8u", "k0 + tg + 4u")])}#pragma unroll
      for (u32 s = 0; s < ${NW}u; ++s) {
${frag("        ", "fb", [b("k0 + tg", "n0 + 8u * s + g"), b("k0 + tg + 4u", "n0 + 8u * s + g")])}${mma("        ", "acc[s]", "fa", "fb")}      }
    }
#pragma unroll
    for (u32 s = 0; s < ${NW}u; ++s)
#pragma unroll
${typeof done === "string"
    ? `      for (u32 e = 0; e < 4u; ++e) {
        const u32 row = r0 + g + 8u * (e >> 1u), col = n0 + 8u * s + 2u * tg + (e & 1u);
        const float v = acc[s][e];
        ${done}
      }`
    : `      for (u32 h = 0; h < 2u; ++h) {
        const u32 row = r0 + g + 8u * h, col = n0 + 8u * s + 2u * tg;
        ${done.bf16 ? `*(u32*)&${done.pair} = seqc_dz_pack(acc[s][2u * h], acc[s][2u * h + 1u]);` : `*(float2*)&${done.pair} = make_float2(acc[s][2u * h], acc[s][2u * h + 1u]);`}
      }`}
  }
`;
};

/** seqc_sel4 (one of four u32 by an index 0..3, by selects: no local memory) and seqc_shfl_u32 (a lane's u32 from lane
 * src, bits as they are), for mmaProduct's quad stores; guarded. */
export const SEQC_QUAD_PRELUDE = `#ifndef SEQC_QUAD_STORE
#define SEQC_QUAD_STORE 1
__device__ __forceinline__ u32 seqc_sel4(u32 i, u32 a, u32 b, u32 c, u32 d) { return i == 0u ? a : i == 1u ? b : i == 2u ? c : d; }
__device__ __forceinline__ u32 seqc_shfl_u32(u32 v, u32 src) { return __float_as_uint(__shfl_sync(0xffffffffu, __uint_as_float(v), (int)src)); }
#endif
`;

export function deltaPrepMmaSource(c: DeltaPrepConfig<DeltaPrepDecay>): string {
  const { C, K, V, op } = c, NT = DELTA_PREP_THREADS, WARPS = NT / 32, LK = K + 4, LVs = V + 8;
  const { at } = deltaPrepMmaLayout(c);
  const { dec, ex, eW, eQ, eC, times, rowLoads, head, front, tinvDiag, aOut, tiStore } = prepParts(c, at, { rows: true, ld: LK, ldL: op === "fwd" ? C + 4 : C + 8, ldLk: C + 8 });
  const ops = tf32Ops(c.math === "tf32x3"), x3 = tf32Ops(true);
  // batched loads: a per-key decay's log decays (Gl's rows in the first score buffer) among them
  const ldRows: [string, string, number, number, boolean?][] = c.batched && c.decay === "key" ? [[op === "fwd" ? "sL" : "sPu", "LD", K, LK]] : [];
  const scaled = (e: string, v: string) => (e ? `${e} * ${v}` : v);
  const product = mmaProduct(WARPS, ops);
  // V / dY [k][n]: fp32 rows, or (batched, bf16 inputs) bf16 rows of the same stride in halves
  const hv = halfValues(c), vals = (buf: string) => (k: string, m: string) => (hv ? `seqc_h2f(((const unsigned short*)${buf})[(${k}) * ${LVs}u + ${m}])` : `${buf}[(${k}) * ${LVs}u + ${m}]`);
  /** Tinv's block rows r = 1 .. C / 16 - 1 as 3xTF32 mma (fp32 accuracy whatever the twin's math), one 16 x 8 tile a
   * warp: P = L[r, 0:r] Tinv[0:r, 0:r] into tmp (Tinv[f][j] = 0 for f < j: k from the tile's first column), then
   * Tinv[r, 0:r] = Tinv[r, r] P; each step ends in a barrier. */
  const tinvRows = (ld: number, tmp: string) => Array.from({ length: C / 16 - 1 }, (_, i) => {
    const r0 = 16 * (i + 1);
    return `  // block row ${i + 1}
${product(16, r0, (m, k) => `sL[(${r0}u + ${m}) * ${ld}u + ${k}]`, (k, j) => `sTi[(${k}) * ${ld}u + ${j}]`, "n0", `${r0}u`, `${tmp}[row * ${ld}u + col] = v;`, x3, 1)}  __syncthreads();
${product(16, r0, (m, k) => `sTi[(${r0}u + ${m}) * ${ld}u + ${r0}u + ${k}]`, (k, j) => `${tmp}[(${k}) * ${ld}u + ${j}]`, "0u", "16u", `sTi[(${r0}u + row) * ${ld}u + col] = v;`, x3, 1)}  __syncthreads();
`;
  }).join("");
  const rowOf = (buf: string, ld: number) => (m: string, k: string) => `${buf}[(${m}) * ${ld}u + ${k}]`;
  const colOf = (buf: string, ld: number, s?: (k: string) => string) => (k: string, m: string) => (s ? scaled(s(`(${k})`), `${buf}[(${k}) * ${ld}u + ${m}]`) : `${buf}[(${k}) * ${ld}u + ${m}]`);
  const kOf = (buf: string, ld: number, s?: (k: string) => string) => (m: string, k: string) => colOf(buf, ld, s)(k, m);
  const lanes = `  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;\n`;
  const out = (name: string, rows: number, W: number) => ({ pair: `${name}[(size_t)n * ${rows * W}u + row * ${W}u + col]` });
  // the scores [a][f]: a from X rows, f from Y rows (both [C][LK]), masked and decayed into dst [C][ld]; tiles wholly
  // above the diagonal skip their products
  const scores = (dst: string, ld: number, xa: string, yf: string, strict: boolean) => product(C, C, rowOf(xa, LK), (k, f) => `${yf}[(${f}) * ${LK}u + ${k}]`, "0u", `(n0 > r0 + 15u ? 0u : ${K}u)`,
    `${dst}[row * ${ld}u + col] = col ${strict ? "<" : "<="} row ? v * ${strict ? ex("row", "col + 1u") : ex("row + 1u", "col + 1u")} : 0.f;`);
  const eWf = dec ? eW : undefined, eCf = dec ? eC : undefined, eQf = dec ? eQ : undefined;
  if (op === "fwd") {
    const loads = rowLoads([["sU", "U", K, LK], ["sW", "W", K, LK], ["sKK", "KK", K, LK], ["sV", "VV", V, LVs, hv], ...ldRows]);
    // Luu [a][f], Luk [a][f]; with a per-key decay, delta-prep-key.ts's passes on fp32 SIMT (the operands end up as
    // Wd, Ud, Kd)
    const scored = front(loads, "Luu [a][f], Luk [a][f]", `${scores("sL", C + 4, "sW", "sU", true)}${scores("sLk", C + 8, "sW", "sKK", true)}`);
    return `${c.wout ? DELTA_WALK_ZOUT_PRELUDE : ""}${hv ? H2F : ""}${head}${lanes}  float* sTi = sU;  // Tinv [C][C + 4] once NN is out
  float* sTL = sKK;  // the block rows' products, then Tinv Luk [C][C + 4], once BM is out
${scored}  // NN = Ud, A out; BM = Kd^T V [K][V]
${c.wout
    ? `  for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x % ${C}u, i = x / ${C}u; ((unsigned short*)NN)[(size_t)n * ${K * C}u + x] = (unsigned short)(seqc_dz_pack(${times(eC("a"))}sU[a * ${LK}u + i], 0.f) & 0xffffu); }  // NN^T [K][C] bf16\n`
    : `  for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x / ${K}u, i = x % ${K}u; NN[(size_t)n * ${C * K}u + x] = ${times(eC("a"))}sU[a * ${LK}u + i]; }\n`}
${aOut}${product(K, V, kOf("sKK", LK, eCf), vals("sV"), "0u", `${C}u`, out("BM", K, V))}  __syncthreads();
${tinvDiag(C + 4)}${tinvRows(C + 4, "sTL")}  // TI out; M = Tinv Wd [C][K] (f <= a); TL = Tinv Luk [C][C] (f < g <= a)
${tiStore(C + 4)}${product(C, K, rowOf("sTi", C + 4), colOf("sW", LK, eWf), "0u", "r0 + 16u", c.wout ? { pair: `((unsigned short*)M)[(size_t)n * ${C * K}u + row * ${K}u + col]`, bf16: true } : out("M", C, K))}${product(C, C, rowOf("sTi", C + 4), colOf("sLk", C + 8), "n0", "r0 + 16u", `sTL[row * ${C + 4}u + col] = v;`)}  __syncthreads();
  // X = TL V [C][V] (f < a)
${product(C, V, rowOf("sTL", C + 4), vals("sV"), "0u", "r0 + 16u", out("X", C, V))}}
`;
  }
  const loads = rowLoads([["sQ", "Q", K, LK], ["sU", "U", K, LK], ["sDY", "DY", V, LVs, hv], ["sTi", "TI", C, C + 8], ...ldRows]);
  // Pu [a][f]; with a per-key decay, delta-prep-key.ts's passes on fp32 SIMT (NN = Wd first, the operands end up as
  // Qd, Ud)
  // wout "mn" (a per-key decay only): M and NN^T [N, K, C] as the bf16 walk's operands (seqc_dz_pack: nearest even)
  return `${c.wout ? DELTA_WALK_ZOUT_PRELUDE : ""}${hv ? H2F : ""}${head}${lanes}${front(loads, "Pu [a][f]", scores("sPu", C + 8, "sQ", "sU", false))}${aOut}  // PD = Pu^T dY [C][V] (a >= f)
${product(C, V, kOf("sPu", C + 8), vals("sDY"), "r0", `${C}u`, `sPD[row * ${LVs}u + col] = v;`)}  // BM = Qd^T dY [K][V]
${product(K, V, kOf("sQ", LK, eQf), vals("sDY"), "0u", `${C}u`, out("BM", K, V))}  // M = Tinv^T Ud [C][K] (a >= f)
${product(C, K, kOf("sTi", C + 8), colOf("sU", LK, eCf), "r0", `${C}u`, c.wout ? { pair: `((unsigned short*)M)[(size_t)n * ${C * K}u + row * ${K}u + col]`, bf16: true } : out("M", C, K))}  __syncthreads();
  // X = Tinv^T PD [C][V] (a >= f)
${product(C, V, kOf("sTi", C + 8), colOf("sPD", LVs), "r0", `${C}u`, out("X", C, V))}}
`;
}
