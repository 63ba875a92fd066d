/**
 * The delta backward adjoint kernel's bf16 tensor-core twin (delta-adjoint.ts's formulas, decay none / scalar; math
 * "bf16", entries `seqc_delta_adj_{none|scalar}_c64k{K}v{V}_bf16_bf16`, bf16 inputs, kernel 4's signature). Every product
 * is mma.sync m16n8k16 with bf16 operands and fp32 accumulators, its fragments read by ldmatrix (.trans for the
 * transposed operands, so that one copy of each operand serves every product). Shared memory holds bf16 only: the
 * per-token inputs as they are (cp.async, 16 bytes a copy), R, DR, S0 and LE rounded to bf16 as they are staged, the
 * scores P, A, B rounded after their mask and decay (fp32 in the accumulators). Rows of stride w + 8 elements (16 bytes
 * over: ldmatrix's eight rows fall in distinct banks).
 *
 * Each operand is loaded once a chunk: k, v, r, u, q, dy, S0 stay for the whole chunk; LE's region holds w and DR
 * after the LE products. Steps (barriers between):
 *   0  cp.async k, v, u, q, dy; LE (and, scalar decay, aC's partials <LE, S_C> in fp32 from the same loads, summed
 *      over each warp by shuffles), R, S0
 *      staged; G by a warp scan
 *   1  dv = k LE, dk = v LE^T, du = r LE^T (rows scaled by exp(G_C - G[f]))
 *   y1 cp.async w into LE's region; DR's loads issued; dq = dy S0^T (rows scaled by exp(G[a])); the scores
 *      P = q k^T, A = dy v^T, B = dy r^T masked (f <= a) and decayed; DR staged
 *   y2 dv += P^T dy; dq += A k + B u; dk += A^T q; du += B^T q; dq stored
 *   r1 dw = DR S0^T (exp(G[a - 1])); P = w k^T, A = DR v^T, B = DR r^T (f < a)
 *   r2 the same products with w, DR; dw stored; dk, du, dv stored; dld (scalar decay) as delta-adjoint.ts does it.
 * Warps: (C / 16) row blocks x WG column groups (WG = K / 32: 8 warps at K = 64, 16 at K = 128); warp (rb, cg) owns rows
 * 16 rb.. and columns 32 cg.. of every [C, K] output (four m16n8 accumulator fragments each: dv, dk, du, dx) and
 * columns 8 TS cg.. (TS = 8 / WG tiles) of each score's row block (16-column pairs above the diagonal skipped: never
 * read). K = 64: 112,160 bytes of shared memory, two blocks an SM; K = 128: 204,320 bytes, one.
 *
 * bf16 rounding: the inputs are bf16 already; R, DR, S0, LE and the scores lose their bits past the 8th (2^-9
 * relative a value), which the accumulations average: about 2e-3 relative on the emulation (test/cuda-delta-adjoint-emu).
 */
import type { DeltaAdjConfig, DeltaAdjKernel } from "./delta-adjoint.ts";
import { adjHead, adjTok } from "./delta-adjoint.ts";

/** The bf16 twins: each decay at C = 64, K = V = 64 and 128, bf16 inputs. */
export const DELTA_ADJ_BF16_CONFIGS: readonly DeltaAdjConfig[] = [64, 128].flatMap((K) =>
  (["none", "scalar"] as const).map((decay) => ({ decay, tin: "bf16" as const, C: 64, K, V: K, math: "bf16" as const })));

/** The same twins reading R, S0, LE, DR as bf16 (zin "bf16", entries _zb; the walks' zout "bf16"): half the bytes of
 * the four, which the fp32-input twins round to bf16 as they stage them anyway (round to nearest even both ways: the
 * same values in shared memory). SF stays float32; aC's <LE, S_C> from the bf16 LE and S_C (S0's next chunk). */
export const DELTA_ADJ_BF16_ZIN_CONFIGS: readonly DeltaAdjConfig[] = DELTA_ADJ_BF16_CONFIGS.map((c) => ({ ...c, zin: "bf16" as const }));

/** The zin twins' siblings storing dQ, dU, dW, dK, dV as bf16 (aout "bf16", entries _zb_ob; seqc_delta_bwd LR_DELTA_ADJ_OUT):
 * each value the float32 sibling's, rounded to nearest even as it is stored (cvt.rn.bf16x2, two a 4-byte store: half
 * the five outputs' bytes, 0.67 of the 1.34 GB at (4, 8192, 16, 128)); dLD float32, the accumulators and dld's dot
 * products as before (the float32 values). */
export const DELTA_ADJ_BF16_OUT_CONFIGS: readonly DeltaAdjConfig[] = DELTA_ADJ_BF16_ZIN_CONFIGS.map((c) => ({ ...c, aout: "bf16" as const }));

/** The zin twins' siblings loading every chunk input by cp.async (load "ca", entries _zb_ca and _zb_ob_ca; seqc_delta_bwd
 * LR_DELTA_ADJ_LOAD): the zin twins stage R, LE and S0 through registers in three dependent rounds (each load waited for
 * before its stores), DR through registers in step y1; these copy the bf16 words as they are (16 bytes a copy, R's and DR's
 * rows past T zero, as the loads' zeros), in two groups: k, v, LE, R (step 1's operands), then u, q, dy, S0, waited for
 * before step 1's closing barrier (step 1's products run while they arrive); DR beside w. aC's partials from LE's shared
 * copy (the same values a thread, the same order: bitwise), S_C's loads issued before the wait; dld's suffix sums one
 * thread's chain s_a = s_(a+1) + row_a (what each thread's loop computed: bitwise) in place of C serial loops. Outputs bit
 * for bit the zin twin's (aout: the _ob sibling's). */
export const DELTA_ADJ_BF16_CA_CONFIGS: readonly DeltaAdjConfig[] = [...DELTA_ADJ_BF16_ZIN_CONFIGS, ...DELTA_ADJ_BF16_OUT_CONFIGS].map((c) => ({ ...c, load: "ca" as const }));

/** cp.async.wait_group 1 (the load "ca" twins' first group; guarded). */
export const DELTA_ADJ_CA_PRELUDE = `#ifndef SEQC_DELTA_ADJ_CA
#define SEQC_DELTA_ADJ_CA 1
#ifdef SEQC_EMU
inline void seqc_dab_wait1() {}
#else
__device__ __forceinline__ void seqc_dab_wait1() { asm volatile("cp.async.wait_group 1;\\n" ::: "memory"); }
#endif
#endif
`;

/** Loads of 4 bf16 values (8 bytes) for the zin twins (guarded; the CPU emulation: two 4-byte words). */
export const DELTA_ADJ_ZIN_PRELUDE = `#ifndef SEQC_DELTA_ADJ_ZIN
#define SEQC_DELTA_ADJ_ZIN 1
__device__ __forceinline__ void seqc_dab_ld4(u32* w, const unsigned short* p) {
#ifdef SEQC_EMU
  w[0] = ((const u32*)p)[0]; w[1] = ((const u32*)p)[1];
#else
  const uint2 v = __ldg((const uint2*)p); w[0] = v.x; w[1] = v.y;
#endif
}
__device__ __forceinline__ void seqc_dab_st4w(unsigned short* d, const u32* w) {
#ifdef SEQC_EMU
  ((u32*)d)[0] = w[0]; ((u32*)d)[1] = w[1];
#else
  *(uint2*)d = make_uint2(w[0], w[1]);
#endif
}
#endif
`;

/** ldmatrix, mma.sync m16n8k16 bf16, cp.async and bf16 packing (own names: the module's other preludes define theirs;
 * the CPU emulation's from test/cuda-emu/emu.h). */
export const DELTA_ADJ_BF16_PRELUDE = `#ifndef SEQC_DELTA_ADJ_BF16
#define SEQC_DELTA_ADJ_BF16 1
#ifdef SEQC_EMU
inline u32 seqc_dab_pack(float lo, float hi) { return (u32)emu_bf16(lo) | ((u32)emu_bf16(hi) << 16); }
inline void seqc_dab_mma(float* c, const u32* a, const u32* b) { emu_mma(0, c, a, b); }
inline void seqc_dab_ldsm4(u32* r, const void* p) { emu_ldsm(r, p, false); }
inline void seqc_dab_ldsm4t(u32* r, const void* p) { emu_ldsm(r, p, true); }
inline void seqc_dab_cp16(void* s, const void* g) { memcpy(s, g, 16); }
inline void seqc_dab_commit() {}
inline void seqc_dab_wait0() {}
#else
__device__ __forceinline__ u32 seqc_dab_pack(float lo, float hi) { u32 r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }
__device__ __forceinline__ void seqc_dab_mma(float* c, const u32* a, const u32* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void seqc_dab_ldsm4(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((u32)__cvta_generic_to_shared(p)) : "memory");
}
__device__ __forceinline__ void seqc_dab_ldsm4t(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((u32)__cvta_generic_to_shared(p)) : "memory");
}
__device__ __forceinline__ void seqc_dab_cp16(void* s, const void* g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\\n" :: "r"((u32)__cvta_generic_to_shared(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void seqc_dab_commit() { asm volatile("cp.async.commit_group;\\n" ::: "memory"); }
__device__ __forceinline__ void seqc_dab_wait0() { asm volatile("cp.async.wait_group 0;\\n" ::: "memory"); }
#endif
// 4 values rounded to bf16 into d (8-byte aligned)
__device__ __forceinline__ void seqc_dab_st4(unsigned short* d, float4 v) {
#ifdef SEQC_EMU
  ((u32*)d)[0] = seqc_dab_pack(v.x, v.y); ((u32*)d)[1] = seqc_dab_pack(v.z, v.w);
#else
  *(uint2*)d = make_uint2(seqc_dab_pack(v.x, v.y), seqc_dab_pack(v.z, v.w));
#endif
}
__device__ __forceinline__ float seqc_dab_lo(u32 w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float seqc_dab_hi(u32 w) { return __uint_as_float(w & 0xffff0000u); }
#endif
`;

const unroll = "#pragma unroll";

interface Slot { p: string; off: number; ld: number }

/** Warps, threads, column groups, score tiles a warp; shared memory: bf16 slots (element offsets), then floats. */
export function adjBf16Layout(c: DeltaAdjConfig): { NW: number; NT: number; WG: number; TS: number; slots: Record<string, Slot>; halves: number; bytes: number; gOff: number } {
  const { C, K } = c;
  const WG = K / 32, NW = (C / 16) * WG, NT = NW * 32, TS = 8 / WG;
  const LK = K + 8, LC = C + 8;
  const slots: Record<string, Slot> = {};
  let off = 0;
  const add = (p: string, n: number, ld: number) => { slots[p] = { p, off, ld }; off += n; };
  for (const p of ["sK", "sV", "sR", "sU", "sQ", "sDY"]) add(p, C * LK, LK);
  // LE [K][V] first, then w and DR rows in its place
  slots.sL = { p: "sL", off, ld: LK };
  const le = Math.max(K, 2 * C) * LK;
  add("sW", C * LK, LK);
  add("sDR", le - C * LK, LK);
  add("sS", K * LK, LK);
  for (const p of ["sP", "sA", "sB"]) add(p, C * LC, LC);
  const halves = Math.ceil(off / 8) * 8;
  const up4 = (x: number) => Math.ceil(x / 4) * 4;
  const floats = up4(C + 1) + up4(NT) + up4(C + 1);
  return { NW, NT, WG, TS, slots, halves, bytes: halves * 2 + floats * 4, gOff: halves * 2 };
}

function check(c: DeltaAdjConfig): void {
  if (c.zin !== undefined && c.zin !== "bf16") throw new Error(`delta-adjoint (bf16): zin "bf16" or absent`);
  if (c.aout !== undefined && c.aout !== "bf16") throw new Error(`delta-adjoint (bf16): aout "bf16" or absent`);
  if (c.load !== undefined && (c.load !== "ca" || c.zin !== "bf16")) throw new Error(`delta-adjoint (bf16): load "ca" with zin "bf16" only`);
  if (c.math !== "bf16" || c.C !== 64 || (c.K !== 64 && c.K !== 128) || c.V !== c.K || c.tin !== "bf16" || c.decay === ("key" as string))
    throw new Error(`delta-adjoint (bf16): C = 64, K = V = 64 or 128, bf16 inputs, decay none or scalar only`);
  const { bytes } = adjBf16Layout(c);
  if (bytes > 227 * 1024) throw new Error(`delta-adjoint (bf16): ${bytes} bytes of shared memory (> 227 KiB)`);
}

export function deltaAdjBf16Entry(c: DeltaAdjConfig): string {
  return `seqc_delta_adj_${c.decay}_c${c.C}k${c.K}v${c.V}_${c.tin}_bf16${c.zin ? "_zb" : ""}${c.aout ? "_ob" : ""}${c.load ? "_ca" : ""}`;
}

export function deltaAdjBf16Kernel(c: DeltaAdjConfig): DeltaAdjKernel {
  check(c);
  const L = adjBf16Layout(c);
  return { ...c, entry: deltaAdjBf16Entry(c), threads: L.NT, sharedBytes: L.bytes };
}

export function deltaAdjBf16Source(c: DeltaAdjConfig): string {
  check(c);
  const { C, K, V } = c;
  const dec = c.decay !== "none", zin = c.zin === "bf16", ob = c.aout === "bf16", ca = c.load === "ca";
  const L = adjBf16Layout(c), { NT, WG, TS, slots: S } = L;
  const LK = K + 8, LC = C + 8, PR = 4 * WG;
  const tok = adjTok;
  // ---- fragments (the lane l; rows / columns as element indices) ----
  const aN = (X: Slot, m0: string, k0: string) => `seqc_dab_ldsm4(fa, &${X.p}[(${m0} + (l & 15u)) * ${X.ld}u + ${k0} + ((l >> 4u) << 3u)]);`;
  const aT = (X: Slot, m0: string, k0: string) => `seqc_dab_ldsm4t(fa, &${X.p}[(${k0} + (l & 7u) + ((l >> 4u) << 3u)) * ${X.ld}u + ${m0} + (((l >> 3u) & 1u) << 3u)]);`;
  const bNK = (Y: Slot, n0: string, k0: string) => `seqc_dab_ldsm4(fb, &${Y.p}[(${n0} + (l & 7u) + ((l >> 4u) << 3u)) * ${Y.ld}u + ${k0} + (((l >> 3u) & 1u) << 3u)]);`;
  const bKN = (Y: Slot, n0: string, k0: string) => `seqc_dab_ldsm4t(fb, &${Y.p}[(${k0} + (l & 7u) + (((l >> 3u) & 1u) << 3u)) * ${Y.ld}u + ${n0} + ((l >> 4u) << 3u)]);`;
  /** acc (the warp's 16 x 32 tile at rows 16 rb, columns 32 cg) += X Y over k in [lo, hi): X stored [m][k] (xT false) or
   * [k][m]; Y stored [n][k] (yNK) or [k][n]. */
  const prod = (acc: string, X: Slot, xT: boolean, Y: Slot, yNK: boolean, lo: string, hi: string, full: boolean) => `  ${full ? `${unroll} 2\n  ` : ""}for (u32 k0 = ${lo}; k0 < ${hi}; k0 += 16u) {
    u32 fa[4], fb[4];
    ${xT ? aT(X, "16u * rb", "k0") : aN(X, "16u * rb", "k0")}
${unroll}
    for (u32 p = 0; p < 2u; ++p) {
      ${yNK ? bNK(Y, "32u * cg + 16u * p", "k0") : bKN(Y, "32u * cg + 16u * p", "k0")}
      seqc_dab_mma(${acc}[2u * p], fa, fb);
      seqc_dab_mma(${acc}[2u * p + 1u], fa, fb + 2);
    }
  }
`;
  const full = (acc: string, X: Slot, Y: Slot, yNK: boolean, w: number) => prod(acc, X, false, Y, yNK, "0u", `${w}u`, true);
  const zero = (acc: string) => `${unroll}
  for (u32 j = 0; j < 4u; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;
`;
  const scaleRows = (acc: string, e: (row: string) => string) => dec ? `  {
    const float d0 = ${e("(16u * rb + g)")}, d1 = ${e("(16u * rb + g + 8u)")};
${unroll}
    for (u32 j = 0; j < 4u; ++j) { ${acc}[j][0] *= d0; ${acc}[j][1] *= d0; ${acc}[j][2] *= d1; ${acc}[j][3] *= d1; }
  }
` : "";
  const col = (j: string) => `32u * cg + 8u * ${j} + 2u * tg`;
  /** dst [a][f] = X(a, .) . Y(f, .) over w, masked f < a + oq and decayed exp(G[a - 1 + oq] - G[f]), bf16. */
  const scores = (dst: Slot, X: Slot, Y: Slot, w: number, oq: number) => `  if (${TS / 2}u * cg <= rb) {
    float sc[${TS}][4];
${unroll}
    for (u32 j = 0; j < ${TS}u; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
#pragma unroll 1
    for (u32 k0 = 0; k0 < ${w}u; k0 += 16u) {
      u32 fa[4], fb[4];
      ${aN(X, "16u * rb", "k0")}
${unroll}
      for (u32 p = 0; p < ${TS / 2}u; ++p) {
        if (${TS / 2}u * cg + p <= rb) {  // 16-column pairs above the diagonal: never read
          ${bNK(Y, `16u * (${TS / 2}u * cg + p)`, "k0")}
          seqc_dab_mma(sc[2u * p], fa, fb);
          seqc_dab_mma(sc[2u * p + 1u], fa, fb + 2);
        }
      }
    }
${unroll}
    for (u32 j = 0; j < ${TS}u; ++j)
      if (${TS / 2}u * cg + j / 2u <= rb) {
${unroll}
        for (u32 hh = 0; hh < 2u; ++hh) {
          const u32 a = 16u * rb + g + 8u * hh, f = 8u * (${TS}u * cg + j) + 2u * tg;
          const float m0 = f < a + ${oq}u ? ${dec ? `__expf(sG[a + ${oq}u] - sG[f + 1u])` : "1.f"} : 0.f, m1 = f + 1u < a + ${oq}u ? ${dec ? `__expf(sG[a + ${oq}u] - sG[f + 2u])` : "1.f"} : 0.f;
          *(u32*)&${dst.p}[a * ${LC}u + f] = seqc_dab_pack(sc[j][2u * hh] * m0, sc[j][2u * hh + 1u] * m1);
        }
      }
  }
`;
  const store = (acc: string, dst: string) => `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = 16u * rb + g + 8u * hh;
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) ${ob ? `*(u32*)&${dst}[${tok("a", col("j"), K)}] = seqc_dab_pack(${acc}[j][2u * hh], ${acc}[j][2u * hh + 1u]);` : `*(float2*)&${dst}[${tok("a", col("j"), K)}] = make_float2(${acc}[j][2u * hh], ${acc}[j][2u * hh + 1u]);`}
    }
  }
`;
  // per-row partial dot products x_a . acc_a (x: a bf16 slot holding the input exactly)
  const dots = (acc: string, X: Slot, part: string, sign: string) => dec ? `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = 16u * rb + g + 8u * hh;
${unroll}
    for (u32 j = 0; j < 4u; ++j) {
      const u32 xw = *(const u32*)&${X.p}[a * ${LK}u + ${col("j")}];
      ${part}[hh] ${sign}= seqc_dab_lo(xw) * ${acc}[j][2u * hh] + seqc_dab_hi(xw) * ${acc}[j][2u * hh + 1u];
    }
  }
` : "";
  // ---- loads ----
  const cpTok = (dst: Slot, src: string) => `${unroll}
  for (u32 x = t; x < ${(C * K) / 8}u; x += ${NT}u) {
    const u32 a = x / ${K / 8}u, c8 = x % ${K / 8}u;
    unsigned short* d = &${dst.p}[a * ${dst.ld}u + 8u * c8];
    if (a < nv) seqc_dab_cp16(d, ${src} + ${tok("a", "8u * c8", K)});
    else *(uint4*)d = make_uint4(0u, 0u, 0u, 0u);
  }
`;
  // load "ca": a chunk tensor's bf16 words by cp.async ([rows][V] at src + n rows V; rows >= nv zero where `guard`)
  const cpChunk = (dst: Slot, src: string, rows: number, guard: boolean) => `${unroll}
  for (u32 x = t; x < ${(rows * V) / 8}u; x += ${NT}u) {
    const u32 a = x / ${V / 8}u, c8 = x % ${V / 8}u;
    unsigned short* d = &${dst.p}[a * ${dst.ld}u + 8u * c8];
    ${guard ? `if (a < nv) seqc_dab_cp16(d, ${src} + (size_t)n * ${rows * V}u + 8u * x);
    else *(uint4*)d = make_uint4(0u, 0u, 0u, 0u);` : `seqc_dab_cp16(d, ${src} + (size_t)n * ${rows * V}u + 8u * x);`}
  }
`;
  const put4 = (dst: Slot, r: string, c4: string, v: string) => `seqc_dab_st4(&${dst.p}[${r} * ${dst.ld}u + 4u * ${c4}], ${v});`;
  const nKV = (K * V) / 4 / NT, nCV = (C * V) / 4 / NT;
  if (!Number.isInteger(nKV) || !Number.isInteger(nCV)) throw new Error("delta-adjoint (bf16): loads");
  // a [K][V] chunk tensor into a slot (LE with aC's partials)
  const loadKV = (dst: Slot, src: string, ac: boolean) => zin ? loadKVz(dst, src, ac) : `  {
    const float* src = ${src} + (size_t)n * ${K * V}u;
${ac ? `    const float* SC = cix + 1u < nC ? S0 + (size_t)(n + 1u) * ${K * V}u : SF + (size_t)bh * ${K * V}u;\n` : ""}    float4 v[${nKV}]${ac ? `, s[${nKV}]` : ""};
${unroll}
    for (u32 i = 0; i < ${nKV}u; ++i) { v[i] = __ldg((const float4*)src + t + i * ${NT}u);${ac ? ` s[i] = __ldg((const float4*)SC + t + i * ${NT}u);` : ""} }
${ac ? "    float acs = 0.f;\n" : ""}${unroll}
    for (u32 i = 0; i < ${nKV}u; ++i) {
      const u32 x = t + i * ${NT}u, r = x / ${V / 4}u, c4 = x % ${V / 4}u;
      ${put4(dst, "r", "c4", "v[i]")}${ac ? `
      acs = fmaf(v[i].x, s[i].x, acs); acs = fmaf(v[i].y, s[i].y, acs); acs = fmaf(v[i].z, s[i].z, acs); acs = fmaf(v[i].w, s[i].w, acs);` : ""}
    }
${ac ? `${unroll}
    for (u32 o = 16u; o > 0u; o >>= 1u) acs += __shfl_sync(0xffffffffu, acs, (int)(l ^ o));  // the warp's sum
    if (l == 0u) sRed[wp] = acs;
` : ""}  }
`;
  // zin: the same from bf16 (4 values a load, 8 bytes: the same values a thread as the float4 loads, so aC's sums as
  // the fp32-input twin's); S_C as bf16 from S0, SF float32
  const loadKVz = (dst: Slot, src: string, ac: boolean) => `  {
    const unsigned short* src = ${src} + (size_t)n * ${K * V}u;
${ac ? "    const bool last = cix + 1u >= nC;\n" : ""}    u32 v[${nKV}][2];${ac ? ` float4 s[${nKV}];` : ""}
${unroll}
    for (u32 i = 0; i < ${nKV}u; ++i) {
      seqc_dab_ld4(v[i], src + 4u * (t + i * ${NT}u));${ac ? `
      if (last) s[i] = __ldg((const float4*)(SF + (size_t)bh * ${K * V}u) + t + i * ${NT}u);
      else { u32 w[2]; seqc_dab_ld4(w, S0 + (size_t)(n + 1u) * ${K * V}u + 4u * (t + i * ${NT}u)); s[i] = make_float4(seqc_dab_lo(w[0]), seqc_dab_hi(w[0]), seqc_dab_lo(w[1]), seqc_dab_hi(w[1])); }` : ""}
    }
${ac ? "    float acs = 0.f;\n" : ""}${unroll}
    for (u32 i = 0; i < ${nKV}u; ++i) {
      const u32 x = t + i * ${NT}u, r = x / ${V / 4}u, c4 = x % ${V / 4}u;
      seqc_dab_st4w(&${dst.p}[r * ${dst.ld}u + 4u * c4], v[i]);${ac ? `
      acs = fmaf(seqc_dab_lo(v[i][0]), s[i].x, acs); acs = fmaf(seqc_dab_hi(v[i][0]), s[i].y, acs); acs = fmaf(seqc_dab_lo(v[i][1]), s[i].z, acs); acs = fmaf(seqc_dab_hi(v[i][1]), s[i].w, acs);` : ""}
    }
${ac ? `${unroll}
    for (u32 o = 16u; o > 0u; o >>= 1u) acs += __shfl_sync(0xffffffffu, acs, (int)(l ^ o));  // the warp's sum
    if (l == 0u) sRed[wp] = acs;
` : ""}  }
`;
  // a [C][V] chunk tensor's rows (R, DR; rows past T zero): the loads (into pre), then the stores
  const loadCV = (src: string) => zin ? `  u32 pre[${nCV}][2];
${unroll}
  for (u32 i = 0; i < ${nCV}u; ++i) {
    const u32 x = t + i * ${NT}u, a = x / ${V / 4}u;
    if (a < nv) seqc_dab_ld4(pre[i], ${src} + (size_t)n * ${C * V}u + 4u * x);
    else pre[i][0] = pre[i][1] = 0u;
  }
` : `  float4 pre[${nCV}];
${unroll}
  for (u32 i = 0; i < ${nCV}u; ++i) {
    const u32 x = t + i * ${NT}u, a = x / ${V / 4}u;
    pre[i] = a < nv ? __ldg((const float4*)(${src} + (size_t)n * ${C * V}u) + x) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
`;
  const storeCV = (dst: Slot) => `${unroll}
  for (u32 i = 0; i < ${nCV}u; ++i) {
    const u32 x = t + i * ${NT}u, a = x / ${V / 4}u, c4 = x % ${V / 4}u;
    ${zin ? `seqc_dab_st4w(&${dst.p}[a * ${dst.ld}u + 4u * c4], pre[i]);` : put4(dst, "a", "c4", "pre[i]")}
  }
`;
  const { sK, sV, sR, sU, sQ, sDY, sL, sW, sDR, sS, sP, sA, sB } = S;
  const lower = (acc: string, X: Slot, Y: Slot) => prod(acc, X, false, Y, false, "0u", "16u * rb + 16u", false);  // scores' rows a, sum f <= a's block
  const upper = (acc: string, X: Slot, Y: Slot) => prod(acc, X, true, Y, false, "16u * rb", `${C}u`, false);    // transposed scores, sum a >= f's block
  const side = (y: boolean) => {
    const X = y ? sQ : sW, Gs = y ? sDY : sDR, oq = y ? 1 : 0;
    return `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----
${y ? (ca ? `${cpTok(sW, "W")}${cpChunk(sDR, "DR", C, true)}  seqc_dab_commit();\n` : `${cpTok(sW, "W")}  seqc_dab_commit();\n${loadCV("DR")}`) : ""}${zero("dx")}${full("dx", Gs, sS, true, V)}${scaleRows("dx", (a) => `__expf(sG[${a}${oq ? " + 1u" : ""}])`)}${scores(sP, X, sK, K, oq)}${scores(sA, Gs, sV, V, oq)}${scores(sB, Gs, sR, V, oq)}${y && !ca ? storeCV(sDR) : ""}  __syncthreads();
  // dv += P^T g; dx += A k + B u; dk += A^T x; du += B^T x
${upper("dv", sP, Gs)}${lower("dx", sA, sK)}${lower("dx", sB, sU)}${upper("dk", sA, X)}${upper("du", sB, X)}${store("dx", y ? "dQ" : "dW")}${dots("dx", X, "pt", "+")}${y ? "" : dots("dx", sW, "pw", "+")}${y ? "  seqc_dab_wait0();\n  __syncthreads();\n" : ""}`;
  };
  const slotDecl = Object.values(S).map((x) => `  unsigned short* ${x.p} = (unsigned short*)seqc_smem_raw + ${x.off};\n`).join("");
  const gScan = dec ? `  if (t < 32u) {  // G: inclusive prefix sums of the chunk's log decays (slots past T: 0)
    float g0 = t < nv ? LD[((size_t)b * T + t0 + t) * H + h] : 0.f, g1 = t + 32u < nv ? LD[((size_t)b * T + t0 + t + 32u) * H + h] : 0.f;
${unroll}
    for (int d = 1; d < 32; d <<= 1) {
      const float x0 = __shfl_up_sync(0xffffffffu, g0, d), x1 = __shfl_up_sync(0xffffffffu, g1, d);
      if ((int)t >= d) { g0 += x0; g1 += x1; }
    }
    g1 += __shfl_sync(0xffffffffu, g0, 31);
    sG[t + 1u] = g0;
    sG[t + 33u] = g1;
    if (t == 0u) sG[0] = 0.f;
  }
` : "";
  const tail = dec ? `  // dld: rows' terms and w.dw summed over the warps' columns, aC, suffix sums
  float* sPT = (float*)sP;          // [C][${PR}] terms partials (the scores' slots are free)
  float* sPW = (float*)sP + ${C * PR}; // [C][${PR}] w.dw partials
${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) { sPT[(16u * rb + g + 8u * hh) * ${PR}u + 4u * cg + tg] = pt[hh]; sPW[(16u * rb + g + 8u * hh) * ${PR}u + 4u * cg + tg] = pw[hh]; }
  __syncthreads();
  float wdw = 0.f;
  if (t < ${C}u) {
    float s = 0.f;
    for (u32 j = 0; j < ${PR}u; ++j) { s += sPT[t * ${PR}u + j]; wdw += sPW[t * ${PR}u + j]; }
    sRow[t] = s;
  }
  if (t == 0u) {
    float s = 0.f;
    for (u32 j = 0; j < ${NT / 32}u; ++j) s += sRed[j];
    sRow[${C}u] = s;  // aC
  }
  __syncthreads();
${ca ? `  if (t == 0u) {  // the suffix sums as one chain: s_a = s_(a + 1) + row_a from s_C = aC (each thread's loop below, bitwise)
    float s = sRow[${C}u];
#pragma unroll 8
    for (int a = ${C - 1}; a >= 0; --a) { s += sRow[a]; sRow[a] = s; }
  }
  __syncthreads();
  if (t < nv) dLD[((size_t)b * T + t0 + t) * H + h] = sRow[t] - wdw;
` : `  if (t < nv) {
    float s = sRow[${C}u];
    for (u32 a = ${C - 1}u; a > t; --a) s += sRow[a];
    s += sRow[t];
    dLD[((size_t)b * T + t0 + t) * H + h] = s - wdw;
  }
`}` : "";
  if (2 * C * PR > 3 * C * LC / 2) throw new Error("delta-adjoint (bf16): dld partials");
  const eC = (a: string) => `__expf(sG[${C}u] - sG[${a} + 1u])`;
  // load "ca": step 0 as two cp.async groups; aC's partials from LE's shared copy once the first has landed
  const acCa = dec ? `  {
    const bool last = cix + 1u >= nC;
    float4 s[${nKV}];
${unroll}
    for (u32 i = 0; i < ${nKV}u; ++i) {
      if (last) s[i] = __ldg((const float4*)(SF + (size_t)bh * ${K * V}u) + t + i * ${NT}u);
      else { u32 w[2]; seqc_dab_ld4(w, S0 + (size_t)(n + 1u) * ${K * V}u + 4u * (t + i * ${NT}u)); s[i] = make_float4(seqc_dab_lo(w[0]), seqc_dab_hi(w[0]), seqc_dab_lo(w[1]), seqc_dab_hi(w[1])); }
    }
    seqc_dab_wait1();
    __syncthreads();
    float acs = 0.f;
${unroll}
    for (u32 i = 0; i < ${nKV}u; ++i) {
      const u32 x = t + i * ${NT}u, r = x / ${V / 4}u, c4 = x % ${V / 4}u;
      const u32 v0 = *(const u32*)&${sL.p}[r * ${sL.ld}u + 4u * c4], v1 = *(const u32*)&${sL.p}[r * ${sL.ld}u + 4u * c4 + 2u];
      acs = fmaf(seqc_dab_lo(v0), s[i].x, acs); acs = fmaf(seqc_dab_hi(v0), s[i].y, acs); acs = fmaf(seqc_dab_lo(v1), s[i].z, acs); acs = fmaf(seqc_dab_hi(v1), s[i].w, acs);
    }
${unroll}
    for (u32 o = 16u; o > 0u; o >>= 1u) acs += __shfl_sync(0xffffffffu, acs, (int)(l ^ o));  // the warp's sum
    if (l == 0u) sRed[wp] = acs;
  }
` : `  seqc_dab_wait1();
  __syncthreads();
`;
  const step0 = ca ? `${cpTok(sK, "KK")}${cpTok(sV, "VV")}${cpChunk(sL, "LE", K, false)}${cpChunk(sR, "R", C, true)}  seqc_dab_commit();
${cpTok(sU, "U")}${cpTok(sQ, "Q")}${cpTok(sDY, "DY")}${cpChunk(sS, "S0", K, false)}  seqc_dab_commit();
${gScan}${acCa}` : `${cpTok(sK, "KK")}${cpTok(sV, "VV")}${cpTok(sU, "U")}${cpTok(sQ, "Q")}${cpTok(sDY, "DY")}  seqc_dab_commit();
${gScan}${loadKV(sL, "LE", dec)}  {
${loadCV("R")}${storeCV(sR)}  }
${loadKV(sS, "S0", false)}  seqc_dab_wait0();
  __syncthreads();
`;
  return `${DELTA_ADJ_BF16_PRELUDE}${zin ? DELTA_ADJ_ZIN_PRELUDE : ""}${ca ? DELTA_ADJ_CA_PRELUDE : ""}${adjHead(deltaAdjBf16Entry(c), "unsigned short", NT, K <= 64 ? 2 : 1, C, zin ? "unsigned short" : "float", ob ? "unsigned short" : "float")}  const u32 l = t & 31u, wp = t >> 5u, g = l >> 2u, tg = l & 3u, rb = wp / ${WG}u, cg = wp % ${WG}u;  // rows 16 rb.., columns 32 cg.. of each output
${slotDecl}  float* sG = (float*)(seqc_smem_raw + ${L.gOff});  // [C + 1]: sG[a + 1] = G[a], sG[0] = 0
${dec ? `  float* sRed = sG + ${Math.ceil((C + 1) / 4) * 4};  // [warps] aC partials
  float* sRow = sRed + ${Math.ceil(NT / 4) * 4};      // [C] row terms, then aC
` : ""}  // ---- step 0: loads ----
${step0}  // ---- step 1: dv = k LE, dk = v LE^T, du = r LE^T (rows scaled by exp(G_C - G[f])) ----
  float dv[4][4], dk[4][4], du[4][4], dx[4][4];
${dec ? "  float pt[2] = {0.f, 0.f}, pw[2] = {0.f, 0.f};\n" : ""}${zero("dv")}${zero("dk")}${zero("du")}${full("dv", sK, sL, false, K)}${full("dk", sV, sL, true, V)}${full("du", sR, sL, true, V)}${scaleRows("dv", eC)}${scaleRows("dk", eC)}${scaleRows("du", eC)}${ca ? "  seqc_dab_wait0();  // u, q, dy, S0\n" : ""}  __syncthreads();
${side(true)}${side(false)}${dots("du", sU, "pt", "-")}${dots("dk", sK, "pt", "-")}${store("dk", "dK")}${store("du", "dU")}${store("dv", "dV")}${dec ? "  __syncthreads();\n" : ""}${tail}}
`;
}
