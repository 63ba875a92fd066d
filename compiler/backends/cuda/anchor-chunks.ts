/**
 * The decay adjoint's chunk products as one CUDA kernel (the torch target: runtime/torch/seqc_decay_adjoint.py, the
 * anchors' Gram; runtime/torch/seqc_chunked.py ANCHOR_CHUNKS "kernel"; model-independent, so its module is
 * <Model>.torch.json "kernels"."anchorChunks").
 *
 * Per batch row b, head h and chunk i of C tokens it forms
 *
 *   P_i[k, v] = sum_{s in chunk i} (a_s[h, k] w_s[k]) b_s[h, v]
 *
 * (U_i with a = k, b = v, w = exp(g_end - g); R_i with a = q, b = dy, w = exp(g)), which the "lean" Gram forms from
 * head-major float32 copies of a (times w) and b and a batched float32 GEMM. Here a and b are read where they are
 * (as [B, T, H, K] / [B, T, H, V] with any element strides: token-major, a head broadcast by stride 0; bf16 or float32,
 * widened exactly as the tiles load), the
 * weight applied as the tile loads (the same float32 product a * w as the copy's), the tokens summed in float32 FMA (the
 * same products; the sum order may differ from cuBLAS's). Tokens past T (a ragged last chunk) count as zero, as the
 * copies' zero padding.
 *
 * Output (float32, contiguous) in the Gram's row layout [B, H, K / kg, n, kg V]: key rows k of P_i in groups of kg, group
 * g's rows at [b, h, g, i] (a scalar decay: kg = K, one row [K, V] per chunk, or kg < K, the groups' Grams summed after:
 * seqc_decay_adjoint GRAM_PRODUCTS "groups"; a per-key decay: kg = 1, key row k at [b, h, k, i]; kg divides K). acc = 1 adds to what is there (a model with
 * several pairs or readouts: one launch each).
 *
 * One block of 256 threads per (b h, chunk) and 64 x 64 tile of [K, V] (grid x = B H n, y = ceil(K/64) ceil(V/64)),
 * 4 x 4 register tiles (the r8 twins: 128 threads of 8 x 4), the tokens staged 32 at a time in shared memory (16 KiB). Floor at (8, 2048, 16, 64), bf16:
 * a, b read once (67 MB) and out written (67 MB) a launch: 0.032 ms at 4.2 TB/s; 1.07 G FMA a launch: 0.032 ms at
 * 67 TFLOP/s fp32. Measured on the H200 (bench/RESULTS.md "the anchors' chunk products as one CUDA kernel"): U and R
 * 0.286 ms (two launches, 4.5x the floor) against 0.543 ms for the copies and GEMMs.
 *
 * Which operand types exist is data (ANCHOR_CHUNKS_CONFIGS); the runtime launches an entry only where one matches the
 * operands' dtypes and else runs the lean Gram's copies and GEMMs.
 */

export type AnchorOperand = "f32" | "bf16";

/** A compiled configuration: the dtypes of a (the weighted operand) and b; vec: the wide loads and stores (below); r8: 8 x 4
 * register tiles on 128 threads (below). */
export interface AnchorChunksConfig {
  a: AnchorOperand;
  b: AnchorOperand;
  vec?: boolean;
  r8?: boolean;
}

/** A launchable kernel of the module (seqc_cuda.KernelModule: entry, threads, sharedBytes) with its configuration. */
export interface AnchorChunksKernel extends AnchorChunksConfig {
  op: "anchorChunks";
  entry: string;
  threads: number;
  sharedBytes: number;
  /** key and value rows of a block's tile */
  kt: number;
  vt: number;
}

export const ANCHOR_CHUNKS_THREADS = 256;
/** tokens staged per pass; the tile is 64 x 64 (16 x 16 threads of 4 x 4) */
export const ANCHOR_CHUNKS_TOKENS = 32;
const KT = 64, VT = 64;

/** Every operand-type pair: bf16 inputs and cotangents as given, float32 ones (a float32 model, or q K^-1/2 written float32). */
export const ANCHOR_CHUNKS_CONFIGS: readonly AnchorChunksConfig[] = (["bf16", "f32"] as const).flatMap((a) => (["bf16", "f32"] as const).map((b) => ({ a, b })));
/** The same pairs with the wide loads and stores (runtime/torch/seqc_chunked.py ANCHOR_VEC "v4"). */
export const ANCHOR_CHUNKS_VEC_CONFIGS: readonly AnchorChunksConfig[] = ANCHOR_CHUNKS_CONFIGS.map((c) => ({ ...c, vec: true }));
/**
 * The same pairs on 8 x 4 register tiles (runtime/torch/seqc_chunked.py ANCHOR_VEC "r8"): 128 threads a 64 x 64 tile, each
 * 8 key rows by 4 values, so a token's step reads 3 float4 from shared memory for 32 FMA (the plain kernel: 2 for 16;
 * the plain kernel ran at ~31% of the float32 FMA peak on the H200, 0.415 ms a launch at (1, 32768, 32, 64), bench/RESULTS.md
 * "Mamba-2's anchors in segments"). Same loads, the same sums in the same order: bitwise the plain kernel's output.
 */
export const ANCHOR_CHUNKS_R8_CONFIGS: readonly AnchorChunksConfig[] = ANCHOR_CHUNKS_CONFIGS.map((c) => ({ ...c, r8: true }));

export function anchorChunksEntry(c: AnchorChunksConfig): string {
  return `seqc_anchor_chunks_${c.a}_${c.b}${c.vec ? "_v4" : ""}${c.r8 ? "_r8" : ""}`;
}

/** Threads of a configuration's blocks: (64 / rows a thread) x 16. */
export function anchorChunksThreads(c: AnchorChunksConfig): number {
  return c.r8 ? 128 : ANCHOR_CHUNKS_THREADS;
}

const PRELUDE = `// ==== seqc decay adjoint chunk products (model-independent; compiler/backends/cuda/anchor-chunks.ts) ====
typedef unsigned int u32;
#ifndef SEQC_EMU
#define SEQC_SMEM_DECL(name) extern __shared__ __align__(16) char name[]
#endif
__device__ __forceinline__ float seqc_anchor_ld(const float* p) { return *p; }
__device__ __forceinline__ float seqc_anchor_ld(const unsigned short* p) { return __uint_as_float(((u32)*p) << 16); }
// four neighbouring elements at once (the wide loads: p 8-byte aligned for bf16, 16-byte for float32)
struct __align__(8) seqc_anchor_u2 { u32 x, y; };
__device__ __forceinline__ float4 seqc_anchor_ld4(const float* p) { return *(const float4*)p; }
__device__ __forceinline__ float4 seqc_anchor_ld4(const unsigned short* p) {
  const seqc_anchor_u2 u = *(const seqc_anchor_u2*)p;
  float4 r;
  r.x = __uint_as_float(u.x << 16); r.y = __uint_as_float(u.x & 0xffff0000u);
  r.z = __uint_as_float(u.y << 16); r.w = __uint_as_float(u.y & 0xffff0000u);
  return r;
}
`;

function kernelSource(c: AnchorChunksConfig): string {
  const NT = anchorChunksThreads(c), TS = ANCHOR_CHUNKS_TOKENS;
  const RX = c.r8 ? 8 : 4;  // key rows a thread (of 4 values): 64 / RX x 16 threads
  if (c.r8 && c.vec) throw new Error("anchorChunks: r8 twins have the plain loads only");
  const ty = (o: AnchorOperand) => (o === "bf16" ? "unsigned short" : "float");
  const unroll = "#pragma unroll";
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${anchorChunksEntry(c)}(
    const ${ty(c.a)}* __restrict__ a, const ${ty(c.b)}* __restrict__ b, const float* __restrict__ w, float* __restrict__ out,
    u32 B, u32 T, u32 H, u32 K, u32 V, u32 C, u32 n, u32 Kd,
    u32 sab, u32 sat, u32 sah, u32 saf, u32 sbb, u32 sbt, u32 sbh, u32 sbf, u32 acc, u32 kg) {
  SEQC_SMEM_DECL(seqc_smem);
  float* sA = (float*)seqc_smem;           // [${TS}][${KT}]: a * w
  float* sB = sA + ${TS * KT};             // [${TS}][${VT}]
  const u32 bh = blockIdx.x / n, i = blockIdx.x % n, bb = bh / H, h = bh % H;
  const u32 kb = (K + ${KT - 1}u) / ${KT}u;
  const u32 k0 = (blockIdx.y % kb) * ${KT}u, v0 = (blockIdx.y / kb) * ${VT}u;
  const u32 t = threadIdx.x, tk = t / 16u, tv = t % 16u;
  const size_t wrow = ((size_t)bh * n + i) * C;
  float p[${RX}][4];
${unroll}
  for (u32 x = 0; x < ${RX}u; ++x)
${unroll}
    for (u32 y = 0; y < 4u; ++y) p[x][y] = 0.f;
${c.vec ? `  // the wide path: a's (b's) feature stride 1, K (V), the other strides and the base multiples of 4 elements; else one
  // element a load, as the plain kernel (the same values either way)
  const bool wa = saf == 1u && (K % 4u) == 0u && (sab % 4u) == 0u && (sat % 4u) == 0u && (sah % 4u) == 0u && ((size_t)a % (4u * sizeof(*a))) == 0u;
  const bool wb = sbf == 1u && (V % 4u) == 0u && (sbb % 4u) == 0u && (sbt % 4u) == 0u && (sbh % 4u) == 0u && ((size_t)b % (4u * sizeof(*b))) == 0u;
` : ""}  for (u32 s0 = 0; s0 < C; s0 += ${TS}u) {
${c.vec ? `    if (wa) {
      for (u32 x = t; x < ${(TS * KT) / 4}u; x += ${NT}u) {
        const u32 r = x / ${KT / 4}u, kk = k0 + 4u * (x % ${KT / 4}u), s = s0 + r, tok = i * C + s;
        float4 va = make_float4(0.f, 0.f, 0.f, 0.f);
        if (s < C && tok < T && kk < K) {
          va = seqc_anchor_ld4(a + (size_t)bb * sab + (size_t)tok * sat + (size_t)h * sah + kk);
          const float* wr = w + (wrow + s) * Kd;
          if (Kd == 1u) { const float w0 = wr[0]; va.x *= w0; va.y *= w0; va.z *= w0; va.w *= w0; }
          else { va.x *= wr[kk]; va.y *= wr[kk + 1u]; va.z *= wr[kk + 2u]; va.w *= wr[kk + 3u]; }
        }
        *(float4*)&sA[4u * x] = va;
      }
    } else
` : ""}    for (u32 x = t; x < ${TS * KT}u; x += ${NT}u) {
      const u32 r = x / ${KT}u, kk = k0 + x % ${KT}u, s = s0 + r, tok = i * C + s;
      float va = 0.f;
      if (s < C && tok < T && kk < K)
        va = seqc_anchor_ld(a + (size_t)bb * sab + (size_t)tok * sat + (size_t)h * sah + (size_t)kk * saf) * w[(wrow + s) * Kd + (Kd == 1u ? 0u : kk)];
      sA[x] = va;
    }
${c.vec ? `    if (wb) {
      for (u32 x = t; x < ${(TS * VT) / 4}u; x += ${NT}u) {
        const u32 r = x / ${VT / 4}u, vv = v0 + 4u * (x % ${VT / 4}u), s = s0 + r, tok = i * C + s;
        float4 vb = make_float4(0.f, 0.f, 0.f, 0.f);
        if (s < C && tok < T && vv < V) vb = seqc_anchor_ld4(b + (size_t)bb * sbb + (size_t)tok * sbt + (size_t)h * sbh + vv);
        *(float4*)&sB[4u * x] = vb;
      }
    } else
` : ""}    for (u32 x = t; x < ${TS * VT}u; x += ${NT}u) {
      const u32 r = x / ${VT}u, vv = v0 + x % ${VT}u, s = s0 + r, tok = i * C + s;
      float vb = 0.f;
      if (s < C && tok < T && vv < V) vb = seqc_anchor_ld(b + (size_t)bb * sbb + (size_t)tok * sbt + (size_t)h * sbh + (size_t)vv * sbf);
      sB[x] = vb;
    }
    __syncthreads();
${unroll} 8
    for (u32 r = 0; r < ${TS}u; ++r) {
${RX === 4 ? `      const float4 a4 = *(const float4*)&sA[r * ${KT}u + 4u * tk], b4 = *(const float4*)&sB[r * ${VT}u + 4u * tv];
      const float ar[4] = {a4.x, a4.y, a4.z, a4.w}, br[4] = {b4.x, b4.y, b4.z, b4.w};` : `      const float4 a4 = *(const float4*)&sA[r * ${KT}u + ${RX}u * tk], a5 = *(const float4*)&sA[r * ${KT}u + ${RX}u * tk + 4u];
      const float4 b4 = *(const float4*)&sB[r * ${VT}u + 4u * tv];
      const float ar[8] = {a4.x, a4.y, a4.z, a4.w, a5.x, a5.y, a5.z, a5.w}, br[4] = {b4.x, b4.y, b4.z, b4.w};`}
${unroll}
      for (u32 x = 0; x < ${RX}u; ++x)
${unroll}
        for (u32 y = 0; y < 4u; ++y) p[x][y] = fmaf(ar[x], br[y], p[x][y]);
    }
    __syncthreads();
  }
  const size_t R = (size_t)kg * V;  // kg key rows a row of out (K: [K, V] per chunk; 1: one key row; kg divides K)
${unroll}
  for (u32 x = 0; x < ${RX}u; ++x) {
    const u32 k = k0 + ${RX}u * tk + x;
    if (k >= K) continue;
    const size_t row = (((size_t)bh * (K / kg) + k / kg) * n + i) * R + (size_t)(k % kg) * V;
${c.vec ? `    if ((V % 4u) == 0u) {  // a whole float4 of the row (v0 + 4 tv < V: V a multiple of 4), one store; the same sums
      const u32 v = v0 + 4u * tv;
      if (v < V) {
        float4* o = (float4*)&out[row + v];
        float4 r = make_float4(p[x][0], p[x][1], p[x][2], p[x][3]);
        if (acc) { const float4 q = *o; r.x = q.x + r.x; r.y = q.y + r.y; r.z = q.z + r.z; r.w = q.w + r.w; }
        *o = r;
      }
      continue;
    }
` : ""}${unroll}
    for (u32 y = 0; y < 4u; ++y) {
      const u32 v = v0 + 4u * tv + y;
      if (v < V) out[row + v] = acc ? out[row + v] + p[x][y] : p[x][y];
    }
  }
}
`;
}

/** The kernel module for these configurations (default: ANCHOR_CHUNKS_CONFIGS, ANCHOR_CHUNKS_VEC_CONFIGS, ANCHOR_CHUNKS_R8_CONFIGS), one translation unit. */
export function anchorChunksModule(configs: readonly AnchorChunksConfig[] = [...ANCHOR_CHUNKS_CONFIGS, ...ANCHOR_CHUNKS_VEC_CONFIGS, ...ANCHOR_CHUNKS_R8_CONFIGS], patch?: (src: string) => string): { source: string; kernels: AnchorChunksKernel[] } {
  const kernels: AnchorChunksKernel[] = [];
  let source = PRELUDE;
  for (const c of configs) {
    kernels.push({ a: c.a, b: c.b, ...(c.vec ? { vec: true } : {}), ...(c.r8 ? { r8: true } : {}), op: "anchorChunks", entry: anchorChunksEntry(c), threads: anchorChunksThreads(c), sharedBytes: 4 * ANCHOR_CHUNKS_TOKENS * (KT + VT), kt: KT, vt: VT });
    source += kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
