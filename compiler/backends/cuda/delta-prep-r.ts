/**
 * R as prep_fwd's epilogue (docs/delta-backward.md "Chunk states from the forward"): where the forward kept each chunk's
 * start state S0 (LR_FWD_STATES, bf16 [N, K, V]) and the backward takes the bf16-state path (LR_DELTA_ZBF16), the
 * backward needs from prep_fwd only TI (prep_bwd reads it) and the reads R = X + M S0, which delta-r.ts's kernel formed
 * from prep_fwd's M and X. This kernel is the staged prep_fwd (delta-prep-staged.ts; bf16 inputs, bf16 scores, math
 * "tf32", decay "none" / "scalar") with that product as its epilogue: it reads U, W, KK, VV, LD and S0 and writes TI
 * (fp32 [N, C, C]) and R (bf16 [N, C, V], as delta-r's _zb siblings write it) only; no M, X, BM, NN, A.
 *
 *   entry seqc_delta_prep_r_{none|scalar}_c<C>k<K>v<V>_bf16_tf32[_m1]_zb
 *   (const bf16* U, W, KK, VV, const float* LD, const bf16* S, int B, int T, int H, float* TI, unsigned short* R)
 *
 * Per chunk (one block of 256 threads), as the staged prep_fwd up to Tinv, then:
 *   - S0's copy (cp.async, 16 bytes a copy) is issued into U / KK's buffer once Tinv's block rows are done with it, and
 *     lands while TI is stored and TL, M are formed;
 *   - TL = Tinv Luk and M = Tinv Wd as the staged kernel's TF32 mma (the same products, the same order), each held in
 *     registers over a barrier and then written over a buffer its own product read: TL (fp32 [C][C + 4]) over Luk's, M
 *     as bf16 head Mh = bf16(M) over W's and tail Ml = bf16(M - Mh) over Tinv's ([C][K + 8] each);
 *   - R = TL V (TF32 mma, the staged kernel's X) + Mh S0 + Ml S0 (bf16 mma m16n8k16: S0 is bf16, so both products are
 *     exact in their fp32 accumulators and M S0 is fp32-accurate up to the tail's rounding, 2^-17 of M), rounded to
 *     bf16 once as it is stored. Config `mprod: "bf16"` (entry _m1) drops the tail: M rounded to bf16 (2^-9).
 * Shared memory: the staged prep_fwd's (72,704 / 74,000 bytes at K = 64, 105,472 / 106,768 at K = 128: three and two
 * blocks an SM); no buffer is added.
 */
import { prepParts, prepThreads, type DeltaDecay, type DeltaPrepConfig } from "./delta-prep.ts";
import { mmaProduct } from "./delta-prep-mma.ts";
import { BF16_MMA, H2F, bf16Scores, deltaPrepStagedLayout } from "./delta-prep-staged.ts";
import { tf32Ops } from "./lowrank-readout-mma.ts";

export interface DeltaPrepRConfig {
  decay: DeltaDecay;
  C: number;
  K: number;
  V: number;
  /** M S0's product: "bf16x2" (absent, the default) M split into bf16 head and tail, two bf16 mma; "bf16" the head only
   * (entry _m1). */
  mprod?: "bf16x2" | "bf16";
}

export interface DeltaPrepRKernel extends DeltaPrepRConfig {
  op: "prep_r";
  tin: "bf16";
  math: "tf32";
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** The torch modules' configurations: C = 64, K = V = 64 and 128, decay none and scalar, both products. */
export const DELTA_PREP_R_CONFIGS: readonly DeltaPrepRConfig[] = (["bf16x2", "bf16"] as const).flatMap((mprod) =>
  [64, 128].flatMap((K) => (["none", "scalar"] as const).map((decay) => ({ decay, C: 64, K, V: K, ...(mprod === "bf16" ? { mprod } : {}) }))));

/** The staged prep_fwd configuration this kernel extends. */
const staged = (c: DeltaPrepRConfig): DeltaPrepConfig => ({ op: "fwd", decay: c.decay, tin: "bf16", C: c.C, K: c.K, V: c.V, math: "tf32", staged: true, scores: "bf16" });

export function deltaPrepREntry(c: DeltaPrepRConfig): string {
  return `seqc_delta_prep_r_${c.decay}_c${c.C}k${c.K}v${c.V}_bf16_tf32${c.mprod === "bf16" ? "_m1" : ""}_zb`;
}

function check(c: DeltaPrepRConfig): void {
  const { C, K, V } = c;
  if (c.decay !== "none" && c.decay !== "scalar") throw new Error(`delta-prep-r: decay "none" / "scalar" only (got ${c.decay})`);
  if (C % 16 || C < 16 || K % 16 || V % 8) throw new Error(`delta-prep-r: C ${C} and K ${K} must be multiples of 16, V ${V} of 8`);
  const LB = K + 8, LBV = V + 8, LT = C + 4, uk = Math.max(C * LB, C * LT);
  // S0 bf16 [K][V + 8] in U / KK's buffer; Ml bf16 [C][K + 8] in Tinv's [C][C + 4] floats
  if ((K * LBV) / 2 > uk) throw new Error(`delta-prep-r: S0 (K ${K}, V ${V}) does not fit U / KK's buffer (C ${C})`);
  if ((C * LB) / 2 > C * LT) throw new Error(`delta-prep-r: K ${K} > 2 C + 8 (M's tail in Tinv's buffer)`);
  const bytes = deltaPrepStagedLayout(staged(c)).floats * 4;
  if (bytes > 227 * 1024) throw new Error(`delta-prep-r: C ${C}, K ${K}, V ${V} needs ${bytes} bytes of shared memory (> 227 KiB)`);
}

export function deltaPrepRKernel(c: DeltaPrepRConfig): DeltaPrepRKernel {
  check(c);
  return { ...c, op: "prep_r", tin: "bf16", math: "tf32", entry: deltaPrepREntry(c), threads: prepThreads(staged(c)), sharedBytes: deltaPrepStagedLayout(staged(c)).floats * 4 };
}

/** M's bf16 head and tail packed in pairs, and R's bf16 pairs (round to nearest even; the emulation's emu_bf16). */
export const PREP_R_PRELUDE = `#ifndef SEQC_DELTA_PREP_R
#define SEQC_DELTA_PREP_R 1
#ifdef SEQC_EMU
inline u32 seqc_dpr_pack(float lo, float hi) { return (u32)emu_bf16(lo) | ((u32)emu_bf16(hi) << 16); }
#else
__device__ __forceinline__ u32 seqc_dpr_pack(float lo, float hi) { u32 r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }
#endif
// the tail's pair: each value less its head (a pair packed by seqc_dpr_pack)
__device__ __forceinline__ u32 seqc_dpr_tail(float lo, float hi, u32 h) { return seqc_dpr_pack(lo - __uint_as_float(h << 16), hi - __uint_as_float(h & 0xffff0000u)); }
#endif
`;

export function deltaPrepRSource(c: DeltaPrepRConfig): string {
  check(c);
  const base = staged(c), { C, K, V } = c, NT = prepThreads(base), WARPS = NT / 32, LB = K + 8, LBV = V + 8, LT = C + 4, L8 = C + 8;
  const x2 = c.mprod !== "bf16";
  const { at } = deltaPrepStagedLayout(base);
  if (["UK", "W", "V", "L", "Lk"].some((b) => at[b] === undefined)) throw new Error("delta-prep-r: the staged layout changed");
  const { dec, ex, eW, head: stagedHead, row, tiStore, gPrefix, exps } = prepParts(base, at);
  const entry = deltaPrepREntry(c);
  const args = `const __nv_bfloat16* __restrict__ U, const __nv_bfloat16* __restrict__ W, const __nv_bfloat16* __restrict__ KK, const __nv_bfloat16* __restrict__ VV, const float* __restrict__ LD, const __nv_bfloat16* __restrict__ S, int B, int T, int H, float* __restrict__ TI, unsigned short* __restrict__ R`;
  const head = stagedHead.replace(/ seqc_delta_prep_fwd_\w+\([^)]*\)/, ` ${entry}(${args})`);
  if (head === stagedHead) throw new Error("delta-prep-r: prep's kernel head changed");
  const ops = tf32Ops(false), x3 = tf32Ops(true);
  const product = mmaProduct(WARPS, ops);
  const scaled = (e: string, v: string) => (e ? `${e} * ${v}` : v);
  const hRow = (buf: string, ld: number) => (m: string, k: string) => `seqc_h2f(${buf}[(${m}) * ${ld}u + ${k}])`;
  const lanes = `  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;\n`;
  const copy = (dst: string, src: string, w: number, ld: number) => `  for (u32 x = t; x < ${(C * w) / 8}u; x += ${NT}u) {
    const u32 a = x / ${w / 8}u, i8 = x % ${w / 8}u;
    unsigned short* d = ${dst} + a * ${ld}u + 8u * i8;
    if (a < used) seqc_cp16(d, &${src}[${row("a")} * ${w}u + 8u * i8]); else *(uint4*)d = make_uint4(0u, 0u, 0u, 0u);
  }
`;
  const scoreTo = `(n0 > r0 + 15u ? 0u : ${K}u)`, bs = bf16Scores(WARPS, C, LB, scoreTo);
  const scores = (dst: string, ld: number, xa: string, yf: string) => bs(xa, yf, `${dst}[row * ${ld}u + col] = col < row ? v * ${ex("row", "col + 1u")} : 0.f;`);
  const tinvRows = Array.from({ length: C / 16 - 1 }, (_, i) => {
    const r0 = 16 * (i + 1);
    return `  // block row ${i + 1}
${product(16, r0, (m, k) => `sTi[(${r0}u + ${m}) * ${LT}u + ${k}]`, (k, j) => `sTi[(${k}) * ${LT}u + ${j}]`, "n0", `${r0}u`, `sP[row * ${LT}u + col] = v;`, x3, 1)}  __syncthreads();
${product(16, r0, (m, k) => `sTi[(${r0}u + ${m}) * ${LT}u + ${r0}u + ${k}]`, (k, j) => `sP[(${k}) * ${LT}u + ${j}]`, "0u", "16u", `sTi[(${r0}u + row) * ${LT}u + col] = v;`, x3, 1)}  __syncthreads();
`;
  }).join("");
  /** A [R][N] product (mmaProduct's tiles and k order) held in registers acc<name>[J][NW][4] (J tiles a warp), and the
   * loop that writes it (`put`: two adjacent results p0, p1 at (row, col), col even) after a barrier. */
  const held = (name: string, Rr: number, N: number, a: (m: string, k: string) => string, b: (k: string, n: string) => string, kFrom: string, kTo: string) => {
    const NW = (N / 8) % 4 === 0 ? 4 : (N / 8) % 2 === 0 ? 2 : 1, NBC = N / (8 * NW), tiles = (Rr / 16) * NBC, J = Math.ceil(tiles / WARPS);
    const tile = (body: string) => `#pragma unroll
  for (u32 j = 0; j < ${J}u; ++j) {
    const u32 x = w + ${WARPS}u * j, r0 = (x / ${NBC}u) * 16u, n0 = (x % ${NBC}u) * ${8 * NW}u;
    if (x < ${tiles}u) {
${body}    }
  }
`;
    const acc = `acc${name}`;
    const compute = `  float ${acc}[${J}][${NW}][4];
${tile(`#pragma unroll
      for (u32 s = 0; s < ${NW}u; ++s) { ${acc}[j][s][0] = 0.f; ${acc}[j][s][1] = 0.f; ${acc}[j][s][2] = 0.f; ${acc}[j][s][3] = 0.f; }
      for (u32 k0 = ${kFrom}; k0 < ${kTo}; k0 += 8u) {
${ops.frag("        ", "fa", [a("r0 + g", "k0 + tg"), a("r0 + g + 8u", "k0 + tg"), a("r0 + g", "k0 + tg + 4u"), a("r0 + g + 8u", "k0 + tg + 4u")])}#pragma unroll
        for (u32 s = 0; s < ${NW}u; ++s) {
${ops.frag("          ", "fb", [b("k0 + tg", "n0 + 8u * s + g"), b("k0 + tg + 4u", "n0 + 8u * s + g")])}${ops.mma("          ", `${acc}[j][s]`, "fa", "fb")}        }
      }
`)}`;
    const write = (put: string) => tile(`#pragma unroll
      for (u32 s = 0; s < ${NW}u; ++s)
#pragma unroll
        for (u32 h = 0; h < 2u; ++h) {
          const u32 row = r0 + g + 8u * h, col = n0 + 8u * s + 2u * tg;
          const float p0 = ${acc}[j][s][2u * h], p1 = ${acc}[j][s][2u * h + 1u];
          ${put}
        }
`);
    return { compute, write };
  };
  const TL = held("TL", C, C, (m, k) => `sTi[(${m}) * ${LT}u + ${k}]`, (k, n) => `sLk[(${k}) * ${L8}u + ${n}]`, "n0", "r0 + 16u");
  const eWf = dec ? eW : undefined;
  const Mp = held("M", C, K, (m, k) => `sTi[(${m}) * ${LT}u + ${k}]`, (k, n) => (eWf ? scaled(eWf(`(${k})`), `seqc_h2f(hW[(${k}) * ${LB}u + ${n}])`) : `seqc_h2f(hW[(${k}) * ${LB}u + ${n}])`), "0u", "r0 + 16u");
  // R = TL V (TF32, f < a: k-blocks up to the row block's end) + Mh S0 (+ Ml S0) (bf16 m16n8k16 over the keys)
  const NWr = (V / 8) % 4 === 0 ? 4 : (V / 8) % 2 === 0 ? 2 : 1, NBr = V / (8 * NWr);
  const a32 = (buf: string, r: string, k: string) => `*(const u32*)&${buf}[(${r}) * ${LB}u + ${k}]`;
  const s16 = (k: string) => `(u32)hS[(${k}) * ${LBV}u + nc] | ((u32)hS[(${k} + 1u) * ${LBV}u + nc] << 16)`;
  const mFrag = (buf: string, f: string) => `        const u32 ${f}[4] = { ${a32(buf, "r0 + g", "k0 + 2u * tg")}, ${a32(buf, "r0 + g + 8u", "k0 + 2u * tg")}, ${a32(buf, "r0 + g", "k0 + 2u * tg + 8u")}, ${a32(buf, "r0 + g + 8u", "k0 + 2u * tg + 8u")} };\n`;
  const rProduct = `  for (u32 x = w; x < ${(C / 16) * NBr}u; x += ${WARPS}u) {
    const u32 r0 = (x / ${NBr}u) * 16u, n0 = (x % ${NBr}u) * ${8 * NWr}u;
    float acc[${NWr}][4];
#pragma unroll
    for (u32 s = 0; s < ${NWr}u; ++s) { acc[s][0] = 0.f; acc[s][1] = 0.f; acc[s][2] = 0.f; acc[s][3] = 0.f; }
    for (u32 k0 = 0u; k0 < r0 + 16u; k0 += 8u) {
${ops.frag("      ", "fa", [`sTL[(r0 + g) * ${LT}u + k0 + tg]`, `sTL[(r0 + g + 8u) * ${LT}u + k0 + tg]`, `sTL[(r0 + g) * ${LT}u + k0 + tg + 4u]`, `sTL[(r0 + g + 8u) * ${LT}u + k0 + tg + 4u]`])}#pragma unroll
      for (u32 s = 0; s < ${NWr}u; ++s) {
${ops.frag("        ", "fb", [`seqc_h2f(hV[(k0 + tg) * ${LBV}u + n0 + 8u * s + g])`, `seqc_h2f(hV[(k0 + tg + 4u) * ${LBV}u + n0 + 8u * s + g])`])}${ops.mma("        ", "acc[s]", "fa", "fb")}      }
    }
    for (u32 k0 = 0u; k0 < ${K}u; k0 += 16u) {
${mFrag("hMh", "mh")}${x2 ? mFrag("hMl", "ml") : ""}#pragma unroll
      for (u32 s = 0; s < ${NWr}u; ++s) {
        const u32 nc = n0 + 8u * s + g;
        const u32 fb[2] = { ${s16("k0 + 2u * tg")}, ${s16("k0 + 2u * tg + 8u")} };
        seqc_dps_mma(acc[s], mh, fb);${x2 ? "\n        seqc_dps_mma(acc[s], ml, fb);" : ""}
      }
    }
#pragma unroll
    for (u32 s = 0; s < ${NWr}u; ++s)
#pragma unroll
      for (u32 h = 0; h < 2u; ++h) {
        const u32 row = r0 + g + 8u * h, col = n0 + 8u * s + 2u * tg;
        *(u32*)&R[(size_t)n * ${C * V}u + row * ${V}u + col] = seqc_dpr_pack(acc[s][2u * h], acc[s][2u * h + 1u]);
      }
  }
`;
  const halves = (names: [string, string][]) => names.map(([h, p]) => `  unsigned short* ${h} = (unsigned short*)(${p});\n`).join("");
  return `${H2F}${BF16_MMA}${PREP_R_PRELUDE}${head}${lanes}${halves([["hU", "sUK"], ["hK", `hU + ${C * LB}u`], ["hW", "sW"], ["hV", "sV"], ["hS", "sUK"], ["hMh", "sW"], ["hMl", "sL"]])}  float* sTi = sL;   // Tinv [C][C + 4] over Luu (then M's tail Ml over Tinv)
  float* sP = sUK;   // Tinv's block rows' products [16][C + 4] (then S0 bf16 [K][V + 8] over U / KK)
  float* sTL = sLk;  // TL = Tinv Luk [C][C + 4] over Luk once it is formed
  // the chunk's rows of U, W, KK, V, every copy in flight
${copy("hU", "U", K, LB)}${copy("hW", "W", K, LB)}${copy("hK", "KK", K, LB)}${copy("hV", "VV", V, LBV)}  seqc_cp_commit();
${gPrefix}  seqc_cp_wait<0>();
  __syncthreads();
${exps}  // Luu [a][f], Luk [a][f] (bf16 mma)
${scores("sL", LT, "hW", "hU")}${scores("sLk", L8, "hW", "hK")}  __syncthreads();
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
${tinvRows}  // S0's copy into U / KK's buffer, in flight while TI is stored and TL, M are formed
  {
    const __nv_bfloat16* gS = S + (size_t)n * ${K * V}u;
    for (u32 x = t; x < ${(K * V) / 8}u; x += ${NT}u) seqc_cp16(hS + (x / ${V / 8}u) * ${LBV}u + 8u * (x % ${V / 8}u), gS + 8u * x);
    seqc_cp_commit();
  }
  // TI out; TL = Tinv Luk [C][C] (f < g <= a) held, a barrier, written over Luk
${tiStore(LT)}${TL.compute}  __syncthreads();
${TL.write(`*(float2*)&sTL[row * ${LT}u + col] = make_float2(p0, p1);`)}  // M = Tinv Wd [C][K] (f <= a) held, a barrier, written as bf16 head over W${x2 ? " and tail over Tinv" : ""}
${Mp.compute}  __syncthreads();
${Mp.write(`{ const u32 mh = seqc_dpr_pack(p0, p1); *(u32*)&hMh[row * ${LB}u + col] = mh;${x2 ? ` *(u32*)&hMl[row * ${LB}u + col] = seqc_dpr_tail(p0, p1, mh);` : ""} }`)}  seqc_cp_wait<0>();
  __syncthreads();
  // R = TL V + M S0 [C][V], bf16 out
${rProduct}}
`;
}

/** The kernels of these configurations (records and text, no prelude: delta-bwd.ts's module puts DELTA_PRELUDE and the
 * TF32 helpers first). */
export function deltaPrepRModule(configs: readonly DeltaPrepRConfig[] = DELTA_PREP_R_CONFIGS, patch?: (src: string) => string): { source: string; kernels: DeltaPrepRKernel[] } {
  const kernels = configs.map(deltaPrepRKernel);
  const source = configs.map(deltaPrepRSource).join("");
  return { source: patch ? patch(source) : source, kernels };
}
