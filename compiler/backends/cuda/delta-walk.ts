/**
 * The token-aligned delta backward's walk over the chunks (docs/delta-backward.md "The walk"; the torch target's
 * deltaBwd module, compiler/backends/cuda/delta-bwd.ts): one kernel for both directions. Per (b, h) row bh, over its nC
 * chunks in order (reverse = 0) or reversed (reverse != 0), with Z [K, V] fp32:
 *
 *   Z = Z0[bh] (Z0 nullptr: zeros)
 *   for each chunk c in walk order, n = bh nC + c:
 *     ZS[n] = Z;   Yc = X[n] + M[n] Z   [C, V];   Y[n] = Yc;   Z = A[n] Z + BM[n] + NN[n]^T Yc
 *   ZF[bh] = Z
 *
 * forward: prep_fwd's M = Tinv Wd, X = Tinv Luk V, BM = Kd^T V, NN = Ud, A = exp(G_C) (ZS the chunk start states, Y the
 * reads R, ZF the final state); backward: prep_bwd's tensors (ZS each chunk's LE, Y = DR, ZF = dL/dS_init).
 *
 * Tensors (float32, chunk-major, N = BH nC): M / NN [N, C, K], X / Y [N, C, V], BM / ZS [N, K, V], A [N], Z0 / ZF
 * [BH, K, V]. With a per-key decay (perKey, RWKV-7; entries seqc_delta_walk_key_*, the same arguments): A [N, K] (16-byte
 * aligned), Z = diag(A[n, :]) Z + BM + NN^T Yc, each thread loading its tile's 4 rows' decays as a float4. Grid (BH, V / cols): the columns of Z are independent, so block (bh, g) walks the value columns
 * j0 = g cols .. j0 + cols - 1, reading every chunk's whole M and NN and its own columns of X and BM.
 *
 * One thread per 4 x 4 tile of Z's columns ((K / 4)(cols / 4) threads): phase 1 (Yc = X + M Z, [C, cols]) runs the
 * (C / 4)(cols / 4) tiles of Yc, each split over S = K / C parts of the key sum (partials added through shared memory);
 * phase 2 (Z = A Z + BM + NN^T Yc) keeps each thread's Z tile in registers and writes it to shared memory for the next
 * chunk's phase 1. Every chunk's operands come by cp.async into one shared buffer each, staggered so that each copy
 * overlaps a phase: the next chunk's M and X are issued when phase 1 has read them (hidden by phase 2), this chunk's NN
 * and BM at the chunk's start (hidden by phase 1). M is stored with its 16-byte columns XOR-swizzled by the row's tile
 * (row / 4), so that phase 1's float4 loads of four rows' keys hit distinct banks; NN's float4 loads along the keys
 * need none. Two block barriers a chunk (three with S = 2). fp32 FMA.
 *
 * For few (b, h) rows (split P > 1; DELTA_WALK_FEW_CONFIGS, entries _g{cols}_s{P}): a chunk's time is one thread's
 * share of its two products (2 C 16 FMAs a thread a chunk at split 1, whatever cols), so a grid of fewer blocks than SMs
 * walks at the same pace as a full one. Split, each phase's sum is cut into more thread groups, (K / 4)(cols / 4) P
 * threads: phase 1's key sum in S = K P / C parts, phase 2's slot sum in P parts of C / P slots, the groups past the
 * first writing their partial tiles to shared memory and the first (Z's owners: ZS, ZF, Z in registers) adding them
 * after a barrier (one barrier more a chunk); 2 C 16 / P FMAs a thread a chunk.
 */
import { LOWRANK_CORE_PRELUDE } from "./lowrank-core.ts";
import { MMA_TF32_PRELUDE } from "./lowrank-readout-mma.ts";

export interface DeltaWalkConfig {
  C: number;
  K: number;
  V: number;
  /** Value columns a block (a multiple of 4 dividing V; absent: deltaWalkCols(K, V)). */
  cols?: number;
  /** A per-key decay (RWKV-7): A [N, K], Z's row i scaled by A[n, i] (entry seqc_delta_walk_key_...); absent: A [N]. */
  perKey?: boolean;
  /** Each phase's sum split over this many thread groups more (a divisor of C; absent: 1): phase 1's key sum in K split /
   * C parts, phase 2's slot sum in split parts of C / split slots, the partials added through shared memory by the
   * group owning Z's tile; (K / 4)(cols / 4) split threads, each with 1 / split of the FMAs a chunk (entry _s{split}). */
  split?: number;
  /** The type ZS and Y are written in (absent: "f32"): "bf16" rounds them to nearest even as they are stored (entry _zb;
   * the bf16 adjoint's inputs, delta-adjoint-bf16.ts zin), 2 bytes a value instead of 4; Z itself, the walk's reads and
   * ZF stay float32. */
  zout?: "bf16";
}

export interface DeltaWalkKernel extends DeltaWalkConfig {
  op: "walk";
  entry: string;
  threads: number;
  sharedBytes: number;
  cols: number;
  split: number;
}

/** The default value columns a block: 32 at V = 64 (B H = 128 rows: 256 blocks of 128 threads, two an SM on 132 SMs, 64 KiB
 * of shared memory each; the same per-thread work as 16 columns with half the re-reads of M and NN), 16 at V = 128
 * (512 blocks of 128 threads at B H = 64, two an SM: 92 KiB each). */
export function deltaWalkCols(K: number, V: number): number {
  return V >= 128 || K >= 128 ? 16 : Math.min(32, V);
}

/** The torch modules' configurations: C = 64, K = V = 64 and 128. */
export const DELTA_WALK_CONFIGS: readonly DeltaWalkConfig[] = [64, 128].map((K) => ({ C: 64, K, V: K }));

/** The same with a per-key decay (A [N, K]; the "key" modules'). */
export const DELTA_WALK_KEY_CONFIGS: readonly DeltaWalkConfig[] = DELTA_WALK_CONFIGS.map((c) => ({ ...c, perKey: true }));

/** The walks for few (b, h) rows: 8 columns a block, each phase's sum split (K = V = 64: split 4; 128: split 2), 128
 * threads a block, each with 1 / 4 (K = 64) or 1 / 2 (K = 128) of the default walk's FMAs a chunk over 4 (2) times the
 * blocks: grid (B H, V / 8). The rule (the records' cols and split): take the default walk (split 1) when its grid
 * B H V / cols fills the card's SMs (B H V / cols >= SMs, 132 on the H100 / H200: B H >= 66 at V = 64, B H >= 17 at
 * V = 128), else this one (e.g. (1, T, 8, 128): 64 blocks of the default's 128 threads walking every chunk in sequence,
 * 128 of this one's, each chunk's FMAs on a thread halved). */
export const DELTA_WALK_FEW_CONFIGS: readonly DeltaWalkConfig[] = [{ C: 64, K: 64, V: 64, cols: 8, split: 4 }, { C: 64, K: 128, V: 128, cols: 8, split: 2 }];

/** The same with a per-key decay. */
export const DELTA_WALK_KEY_FEW_CONFIGS: readonly DeltaWalkConfig[] = DELTA_WALK_FEW_CONFIGS.map((c) => ({ ...c, perKey: true }));

const colsOf = (c: DeltaWalkConfig) => c.cols ?? deltaWalkCols(c.K, c.V);

/** seqc_delta_walk_[key_]c{C}k{K}v{V}, with _g{cols} when a block's columns are not the default ones, _s{split} when
 * split > 1. */
export function deltaWalkEntry(c: DeltaWalkConfig): string {
  const g = colsOf(c), P = c.split ?? 1;
  return `seqc_delta_walk_${c.perKey ? "key_" : ""}c${c.C}k${c.K}v${c.V}${g !== deltaWalkCols(c.K, c.V) ? `_g${g}` : ""}${P > 1 ? `_s${P}` : ""}${c.zout === "bf16" ? "_zb" : ""}`;
}

/** What a walk writing bf16 ZS and Y (zout "bf16") puts before its source (guarded: once a translation unit): u32 pairs
 * packed by round to nearest even (cvt.rn.bf16x2.f32; the CPU emulation's emu_bf16), 4 values stored as 8 bytes. */
export const DELTA_WALK_ZOUT_PRELUDE = `#ifndef SEQC_DELTA_ZOUT
#define SEQC_DELTA_ZOUT 1
#ifdef SEQC_EMU
inline u32 seqc_dz_pack(float lo, float hi) { return (u32)emu_bf16(lo) | ((u32)emu_bf16(hi) << 16); }
inline void seqc_dz_st4(unsigned short* d, float a, float b, float c, float e) { ((u32*)d)[0] = seqc_dz_pack(a, b); ((u32*)d)[1] = seqc_dz_pack(c, e); }
#else
__device__ __forceinline__ u32 seqc_dz_pack(float lo, float hi) { u32 r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }
__device__ __forceinline__ void seqc_dz_st4(unsigned short* d, float a, float b, float c, float e) { *(uint2*)d = make_uint2(seqc_dz_pack(a, b), seqc_dz_pack(c, e)); }
#endif
#endif
`;

/** Threads, the key sum's split S of phase 1, phase 2's split P, the swizzle's mask and the shared floats: M, NN [C][K],
 * X, Yc [C][cols], BM, Z [K][cols], the splits' partials [max((S - 1) C, (P - 1) K)][cols] (phase 1's and phase 2's in
 * turn). */
function layout(c: DeltaWalkConfig): { G: number; threads: number; S: number; P: number; swz: number; floats: number; partials: number } {
  const { C, K, V } = c, G = colsOf(c), P = c.split ?? 1;
  if (C % 4 || K % 4 || V % 4 || C < 4) throw new Error(`delta-walk: C ${C}, K ${K} and V ${V} must be multiples of 4 (4 x 4 register tiles)`);
  if (G % 4 || G < 4 || V % G) throw new Error(`delta-walk: cols ${G} must be a multiple of 4 that divides V ${V}`);
  if (!Number.isInteger(P) || P < 1 || C % P) throw new Error(`delta-walk: split ${P} must be a whole number dividing C ${C}`);
  if ((K * P) % C) throw new Error(`delta-walk: K ${K} (times split ${P}) must be a multiple of C ${C} (phase 1 splits the key sum over K split / C parts)`);
  const threads = (K / 4) * (G / 4) * P, S = (K * P) / C;
  if ((K / S) % 4) throw new Error(`delta-walk: K ${K} over ${S} parts is not a multiple of 4 keys a part`);
  if (threads > 1024) throw new Error(`delta-walk: K ${K}, cols ${G} needs ${threads} threads (> 1024)`);
  if (threads % 32 && threads > 32) throw new Error(`delta-walk: ${threads} threads is not a whole number of warps`);
  let swz = 1; // the largest power of two <= 8 dividing K / 4
  while (swz < 8 && (K / 4) % (2 * swz) === 0) swz *= 2;
  const partials = Math.max((S - 1) * C, (P - 1) * K) * G;
  const floats = 2 * C * K + 2 * C * G + 2 * K * G + partials;
  if (floats * 4 > 227 * 1024) throw new Error(`delta-walk: C ${C}, K ${K}, cols ${G} needs ${floats * 4} bytes of shared memory (> 227 KiB)`);
  return { G, threads, S, P, swz, floats, partials };
}

export function deltaWalkKernel(c: DeltaWalkConfig): DeltaWalkKernel {
  const l = layout(c);
  return { ...c, op: "walk", entry: deltaWalkEntry(c), threads: l.threads, sharedBytes: l.floats * 4, cols: l.G, split: l.P };
}

/** What the walk needs ahead of it in a translation unit: u32, SEQC_SMEM_DECL and the cp.async wrappers (both guarded,
 * so that another prelude's copies may come before or after). */
export const DELTA_WALK_PRELUDE = LOWRANK_CORE_PRELUDE.replace("low-rank chunk transitions", "delta backward walk").replace("lowrank-core.ts", "delta-walk.ts") + MMA_TF32_PRELUDE;

const unroll = "#pragma unroll";

/** The kernel's source (without DELTA_WALK_PRELUDE). */
export function deltaWalkSource(c: DeltaWalkConfig): string {
  const { C, K, V } = c;
  const { G, threads: NT, S, P, swz, partials } = layout(c);
  const ZT = (K / 4) * (G / 4), CP = C / P; // Z's tiles (phase 2's threads a part), slots a part of phase 2
  // stores of Z's tile: by the threads of phase 2's part 0 (the tile's owners) only when split
  const own = (code: string, ind = "  ") => (P > 1 ? `${ind}if (h2 == 0u) {\n${code}${ind}}\n` : code);
  const GQ = G / 4, T1 = (C / 4) * GQ, KQ = K / 4, KP = K / S; // phase 1's tiles, M's 16-byte columns, keys a part
  const f4 = (p: string) => `*(const float4*)&${p}`;
  const st4 = (p: string, a: string) => `*(float4*)&${p} = make_float4(${a}[0], ${a}[1], ${a}[2], ${a}[3]);`;
  // ZS's and Y's stores: float4, or 4 bf16 values (zout "bf16")
  const zb = c.zout === "bf16", OT = zb ? "unsigned short" : "float";
  const out4 = (p: string, a: string) => (zb ? `seqc_dz_st4(&${p}, ${a}[0], ${a}[1], ${a}[2], ${a}[3]);` : st4(p, a));
  // a chunk's rows [R][W] of a [.., R, V] tensor at columns j0.. (W = G) or a whole [R][K] row (W = K) by 16-byte copies
  const copyCols = (dst: string, src: string, R: number, ind: string) => `${ind}for (u32 x = t; x < ${R * GQ}u; x += ${NT}u) seqc_cp16(&${dst}[(x / ${GQ}u) * ${G}u + 4u * (x % ${GQ}u)], ${src} + (size_t)(x / ${GQ}u) * ${V}u + j0 + 4u * (x % ${GQ}u));\n`;
  const copyM = (ind: string) => `${ind}for (u32 x = t; x < ${C * KQ}u; x += ${NT}u) { const u32 a = x / ${KQ}u, q = x % ${KQ}u; seqc_cp16(&sM[a * ${K}u + 4u * (q ^ ((a >> 2) & ${swz - 1}u))], gM + (size_t)x * 4u); }\n`;
  const copyN = (ind: string) => `${ind}for (u32 x = t; x < ${C * KQ}u; x += ${NT}u) seqc_cp16(&sN[4u * x], gN + (size_t)x * 4u);\n`;
  const chunkOf = (s: string) => `(reverse ? nC - 1 - ${s} : ${s})`;
  const an = c.perKey ? "an[r]" : "an";
  // phase 2's start on Z's tile row r: A Z + BM (b: BM's row)
  const azb = `acc[r][0] = fmaf(${an}, z[r][0], b.x); acc[r][1] = fmaf(${an}, z[r][1], b.y); acc[r][2] = fmaf(${an}, z[r][2], b.z); acc[r][3] = fmaf(${an}, z[r][3], b.w);`;
  // a split phase's partials through sP ([parts - 1][R][cols], acc's rows 4 i..): parts 1.. store theirs (`who` the
  // part), part 0 adds the n - 1 others'
  const pAt = (o: string, R: number, i: string) => `sP[(${o} * ${R}u + 4u * ${i} + r) * ${G}u + 4u * cq]`;
  const savePart = (who: string, R: number, i: string) => `    if (${who} > 0u) {
${unroll}
      for (u32 r = 0; r < 4u; ++r) ${st4(pAt(`(${who} - 1u)`, R, i), "acc[r]")}
    }
`;
  const addParts = (n: number, R: number, i: string) => `      for (u32 o = 0; o < ${n - 1}u; ++o)
${unroll}
        for (u32 r = 0; r < 4u; ++r) {
          const float4 v = ${f4(pAt("o", R, i))};
          acc[r][0] += v.x; acc[r][1] += v.y; acc[r][2] += v.z; acc[r][3] += v.w;
        }
`;
  // Z's tile = acc, into registers and sZ
  const zTake = (ind: string) => `${unroll}
${ind}for (u32 r = 0; r < 4u; ++r) {
${unroll}
${ind}  for (u32 j = 0; j < 4u; ++j) z[r][j] = acc[r][j];
${ind}  ${st4(`sZ[(4u * zi + r) * ${G}u + 4u * cq]`, "z[r]")}
${ind}}
`;
  return `${zb ? DELTA_WALK_ZOUT_PRELUDE : ""}
extern "C" __global__ void __launch_bounds__(${NT}) ${deltaWalkEntry(c)}(const float* __restrict__ M, const float* __restrict__ X, const float* __restrict__ BM, const float* __restrict__ NN, const float* __restrict__ A, const float* __restrict__ Z0, ${OT}* __restrict__ ZS, ${OT}* __restrict__ Y, float* __restrict__ ZF, int BH, int nC, int reverse) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sM = (float*)seqc_smem_raw;  // M [C][K], 16-byte columns swizzled by the row's tile
  float* sN = sM + ${C * K};          // NN [C][K]
  float* sX = sN + ${C * K};          // X [C][cols]
  float* sY = sX + ${C * G};          // Yc [C][cols]
  float* sB = sY + ${C * G};          // BM [K][cols]
  float* sZ = sB + ${K * G};          // Z [K][cols]
${partials > 0 ? `  float* sP = sZ + ${K * G};          // ${S > 1 ? `phase 1's partials of parts 1 .. ${S - 1} [${S - 1}][C][cols]` : ""}${S > 1 && P > 1 ? ", then " : ""}${P > 1 ? `phase 2's of parts 1 .. ${P - 1} [${P - 1}][K][cols]` : ""}\n` : ""}  const u32 t = threadIdx.x;
  const int bh = blockIdx.x;
  if (bh >= BH) return;
  const u32 j0 = blockIdx.y * ${G}u;  // this block's value columns j0 .. j0 + ${G - 1}
  // phase 2's tile (Z rows 4 zi.., columns 4 cq..); phase 1's (Yc rows 4 yi.., columns 4 cq..) and its part of the key sum
${P > 1 ? `  const u32 cq = t % ${GQ}u, zi = (t % ${ZT}u) / ${GQ}u, h2 = t / ${ZT}u;  // h2: phase 2's part (slots ${CP} h2 ..)` : `  const u32 cq = t % ${GQ}u, zi = t / ${GQ}u;`}
  const u32 y1 = t % ${T1}u, yi = y1 / ${GQ}u, part = t / ${T1}u;
  float z[4][4];
  if (Z0) {
${unroll}
    for (u32 r = 0; r < 4u; ++r) { const float4 v = ${f4(`Z0[((size_t)bh * ${K}u + 4u * zi + r) * ${V}u + j0 + 4u * cq]`)}; z[r][0] = v.x; z[r][1] = v.y; z[r][2] = v.z; z[r][3] = v.w; }
  } else {
${unroll}
    for (u32 r = 0; r < 4u; ++r)
${unroll}
      for (u32 j = 0; j < 4u; ++j) z[r][j] = 0.f;
  }
${own(`${unroll}
  for (u32 r = 0; r < 4u; ++r) ${st4(`sZ[(4u * zi + r) * ${G}u + 4u * cq]`, "z[r]")}
`)}  if (nC > 0) {  // the first chunk's M and X
    const size_t n = (size_t)bh * nC + ${chunkOf("0")};
    const float* gM = M + n * ${C * K}u;
    const float* gX = X + n * ${C * V}u;
${copyM("    ")}${copyCols("sX", "gX", C, "    ")}  }
  seqc_cp_commit();
  for (int s = 0; s < nC; ++s) {
    const size_t n = (size_t)bh * nC + ${chunkOf("s")};
    seqc_cp_wait<0>();  // this chunk's M and X
    __syncthreads();    // ... every thread's copies, Z; the previous phase 2 done with NN, BM and Yc
    {  // this chunk's NN and BM, hidden by phase 1
      const float* gN = NN + n * ${C * K}u;
      const float* gB = BM + n * ${K * V}u;
${copyN("      ")}${copyCols("sB", "gB", K, "      ")}    }
    seqc_cp_commit();
${c.perKey ? `    const float4 a4 = ${f4(`A[n * ${K}u + 4u * zi]`)};  // this tile's rows' decays
    const float an[4] = {a4.x, a4.y, a4.z, a4.w};
` : `    const float an = A[n];
`}${own(`${unroll}
    for (u32 r = 0; r < 4u; ++r) ${out4(`ZS[(n * ${K}u + 4u * zi + r) * ${V}u + j0 + 4u * cq]`, "z[r]")}
`, "    ")}    // phase 1: Yc = X + M Z (keys ${KP} a part)
    float acc[4][4];
${unroll}
    for (u32 r = 0; r < 4u; ++r) {
      const float4 v = part == 0u ? ${f4(`sX[(4u * yi + r) * ${G}u + 4u * cq]`)} : make_float4(0.f, 0.f, 0.f, 0.f);
      acc[r][0] = v.x; acc[r][1] = v.y; acc[r][2] = v.z; acc[r][3] = v.w;
    }
    const u32 sw = yi & ${swz - 1}u;
${unroll} 4
    for (u32 q = part * ${KP / 4}u; q < (part + 1u) * ${KP / 4}u; ++q) {
      float m[4][4], zz[4][4];
${unroll}
      for (u32 r = 0; r < 4u; ++r) { const float4 v = ${f4(`sM[(4u * yi + r) * ${K}u + 4u * (q ^ sw)]`)}; m[r][0] = v.x; m[r][1] = v.y; m[r][2] = v.z; m[r][3] = v.w; }
${unroll}
      for (u32 p = 0; p < 4u; ++p) { const float4 v = ${f4(`sZ[(4u * q + p) * ${G}u + 4u * cq]`)}; zz[p][0] = v.x; zz[p][1] = v.y; zz[p][2] = v.z; zz[p][3] = v.w; }
${unroll}
      for (u32 r = 0; r < 4u; ++r)
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) acc[r][j] = fmaf(m[r][p], zz[p][j], acc[r][j]);
    }
${S > 1 ? `${savePart("part", C, "yi")}    __syncthreads();
` : ""}    if (part == 0u) {
${S > 1 ? addParts(S, C, "yi") : ""}${unroll}
      for (u32 r = 0; r < 4u; ++r) {
        ${st4(`sY[(4u * yi + r) * ${G}u + 4u * cq]`, "acc[r]")}
        ${out4(`Y[(n * ${C}u + 4u * yi + r) * ${V}u + j0 + 4u * cq]`, "acc[r]")}
      }
    }
    seqc_cp_wait<0>();  // this chunk's NN and BM
    __syncthreads();    // ... and Yc; phase 1 done with M, X and Z
    if (s + 1 < nC) {  // the next chunk's M and X, hidden by phase 2
      const size_t nn = (size_t)bh * nC + ${chunkOf("(s + 1)")};
      const float* gM = M + nn * ${C * K}u;
      const float* gX = X + nn * ${C * V}u;
${copyM("      ")}${copyCols("sX", "gX", C, "      ")}    }
    seqc_cp_commit();
${P > 1 ? `    // phase 2: Z = A Z + BM + NN^T Yc on this thread's tile, slots ${CP} h2 .. ${CP} h2 + ${CP - 1} of the sum (part 0 with A Z + BM)
${unroll}
    for (u32 r = 0; r < 4u; ++r) {
      if (h2 == 0u) {
        const float4 b = ${f4(`sB[(4u * zi + r) * ${G}u + 4u * cq]`)};
        ${azb}
      } else {
        acc[r][0] = 0.f; acc[r][1] = 0.f; acc[r][2] = 0.f; acc[r][3] = 0.f;
      }
    }
${unroll} 4
    for (u32 a = h2 * ${CP}u; a < (h2 + 1u) * ${CP}u; ++a) {` : `    // phase 2: Z = A Z + BM + NN^T Yc on this thread's tile
${unroll}
    for (u32 r = 0; r < 4u; ++r) {
      const float4 b = ${f4(`sB[(4u * zi + r) * ${G}u + 4u * cq]`)};
      ${azb}
    }
${unroll} 4
    for (u32 a = 0; a < ${C}u; ++a) {`}
      const float4 w = ${f4(`sN[a * ${K}u + 4u * zi]`)}, v = ${f4(`sY[a * ${G}u + 4u * cq]`)};
      const float wi[4] = {w.x, w.y, w.z, w.w}, vj[4] = {v.x, v.y, v.z, v.w};
${unroll}
      for (u32 r = 0; r < 4u; ++r)
${unroll}
        for (u32 j = 0; j < 4u; ++j) acc[r][j] = fmaf(wi[r], vj[j], acc[r][j]);
    }
${P > 1 ? `${savePart("h2", K, "zi")}    __syncthreads();  // phase 2's partials
    if (h2 == 0u) {
${addParts(P, K, "zi")}${zTake("      ")}    }
` : zTake("    ")}  }
${own(`${unroll}
  for (u32 r = 0; r < 4u; ++r) ${st4(`ZF[((size_t)bh * ${K}u + 4u * zi + r) * ${V}u + j0 + 4u * cq]`, "z[r]")}
`)}}
`;
}

/** The walks of these configurations (default DELTA_WALK_CONFIGS) as one translation unit with DELTA_WALK_PRELUDE;
 * `patch` edits the source (the tests' broken copies). */
export function deltaWalkModule(configs: readonly DeltaWalkConfig[] = DELTA_WALK_CONFIGS, patch?: (src: string) => string): { source: string; kernels: DeltaWalkKernel[] } {
  const source = DELTA_WALK_PRELUDE + configs.map(deltaWalkSource).join("");
  return { source: patch ? patch(source) : source, kernels: configs.map(deltaWalkKernel) };
}
