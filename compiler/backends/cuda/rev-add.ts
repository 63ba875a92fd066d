/**
 * An input's gradient summed from a forward-time piece and a reversed-time piece in one pass (the torch target:
 * runtime/torch/seqc_chunked.py REV_ADD "kernel"; model-independent, so its module is <Model>.torch.json
 * "kernels"."revAdd").
 *
 *   out[b, t, j] = a[b, t, j] + c[b, T - 1 - t, j]      (a, c, out contiguous [B, T, W])
 *
 * The chunked backward's adjoint core runs in reversed time, so its dv comes out reversed. Where v is prep's copy of an
 * input that post's backward also reads (Mamba-2's x: vv2 = x, y = y0 + D x), the glue flipped dv (one pass over a bf16
 * [B, T, H P]) and then added post's float32 dx to it in a mixed-dtype torch add (torch's unrolled cast path: 0.237 ms at
 * (1, 32768, 32, 64) on the H200, 1.85x its floor, bench/RESULTS.md "Mamba-2's anchors in segments"). Here the same sum
 * is one pass that reads dv where the core wrote it. The sum is float32 (a + c, the bf16 operand widened exactly) rounded
 * once to out's type, round to nearest even: bitwise torch.add(a, c.flip(1), out=<out's dtype>).
 *
 * Each thread 8 consecutive elements of a row: with vec = 1 (W a multiple of 8, every buffer 16-byte aligned, checked by
 * the caller) as 16-byte loads and stores (two for float32), else one element at a time (any W). Grid: ceil(B T W / 8 /
 * 256) blocks of 256, a grid-stride loop past 2^31 groups.
 */

export type RevAddType = "f32" | "bf16";

export interface RevAddConfig {
  a: RevAddType;
  c: RevAddType;
  o: RevAddType;
}

export interface RevAddKernel extends RevAddConfig {
  op: "revAdd";
  entry: string;
  threads: number;
  sharedBytes: number;
}

export const REV_ADD_THREADS = 256;

/** Every type triple (a float32 or bf16 model's pieces, the sum written float32 or in the gradient's bf16). */
export const REV_ADD_CONFIGS: readonly RevAddConfig[] = (["f32", "bf16"] as const).flatMap((a) =>
  (["bf16", "f32"] as const).flatMap((c) => (["bf16", "f32"] as const).map((o) => ({ a, c, o }))),
);

export function revAddEntry(c: RevAddConfig): string {
  return `seqc_rev_add_${c.a}_${c.c}_${c.o}`;
}

const PRELUDE = `// ==== seqc reversed-time add (model-independent; compiler/backends/cuda/rev-add.ts) ====
typedef unsigned int u32;
__device__ __forceinline__ float seqc_ra_ld(const float* p) { return *p; }
__device__ __forceinline__ float seqc_ra_ld(const unsigned short* p) { return __uint_as_float(((u32)*p) << 16); }
// float32 -> bf16, round to nearest even (NaN -> 0x7fc0, as torch's conversion)
__device__ __forceinline__ unsigned short seqc_ra_bf16(float x) {
  u32 u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)0x7fc0u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}
__device__ __forceinline__ void seqc_ra_st(float* p, float v) { *p = v; }
__device__ __forceinline__ void seqc_ra_st(unsigned short* p, float v) { *p = seqc_ra_bf16(v); }
// 8 consecutive elements (p 16-byte aligned)
__device__ __forceinline__ void seqc_ra_ld8(const float* p, float* o) {
  const float4 x = *(const float4*)p, y = *((const float4*)p + 1);
  o[0] = x.x; o[1] = x.y; o[2] = x.z; o[3] = x.w; o[4] = y.x; o[5] = y.y; o[6] = y.z; o[7] = y.w;
}
__device__ __forceinline__ void seqc_ra_ld8(const unsigned short* p, float* o) {
  const uint4 v = *(const uint4*)p;
  const u32 w[4] = {v.x, v.y, v.z, v.w};
  for (int i = 0; i < 4; ++i) { o[2 * i] = __uint_as_float(w[i] << 16); o[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u); }
}
__device__ __forceinline__ void seqc_ra_st8(float* p, const float* o) {
  *(float4*)p = make_float4(o[0], o[1], o[2], o[3]);
  *((float4*)p + 1) = make_float4(o[4], o[5], o[6], o[7]);
}
__device__ __forceinline__ void seqc_ra_st8(unsigned short* p, const float* o) {
  u32 w[4];
  for (int i = 0; i < 4; ++i) w[i] = (u32)seqc_ra_bf16(o[2 * i]) | ((u32)seqc_ra_bf16(o[2 * i + 1]) << 16);
  *(uint4*)p = make_uint4(w[0], w[1], w[2], w[3]);
}
`;

function kernelSource(c: RevAddConfig): string {
  const ty = (o: RevAddType) => (o === "bf16" ? "unsigned short" : "float");
  return `
extern "C" __global__ void __launch_bounds__(${REV_ADD_THREADS}) ${revAddEntry(c)}(
    const ${ty(c.a)}* __restrict__ a, const ${ty(c.c)}* __restrict__ c, ${ty(c.o)}* __restrict__ out, u32 B, u32 T, u32 W, u32 vec) {
  const size_t n = (size_t)B * T * W, groups = (n + 7u) / 8u;
  for (size_t g = (size_t)blockIdx.x * ${REV_ADD_THREADS}u + threadIdx.x; g < groups; g += (size_t)gridDim.x * ${REV_ADD_THREADS}u) {
    const size_t e0 = g * 8u;
    if (vec) {  // W % 8 == 0: the 8 elements are one row's
      const size_t row = e0 / W, col = e0 % W, b = row / T, t = row % T;
      const size_t er = (b * T + (T - 1u - t)) * W + col;
      float x[8], y[8];
      seqc_ra_ld8(a + e0, x);
      seqc_ra_ld8(c + er, y);
      for (int i = 0; i < 8; ++i) x[i] = x[i] + y[i];
      seqc_ra_st8(out + e0, x);
      continue;
    }
    for (u32 i = 0; i < 8u; ++i) {
      const size_t e = e0 + i;
      if (e >= n) break;
      const size_t row = e / W, col = e % W, b = row / T, t = row % T;
      const size_t er = (b * T + (T - 1u - t)) * W + col;
      seqc_ra_st(out + e, seqc_ra_ld(a + e) + seqc_ra_ld(c + er));
    }
  }
}
`;
}

/** The module: every configuration's entry (patch: a test's edit of the source). */
export function revAddModule(configs: readonly RevAddConfig[] = REV_ADD_CONFIGS, patch?: (src: string) => string): { source: string; kernels: RevAddKernel[] } {
  const kernels: RevAddKernel[] = [];
  let source = PRELUDE;
  for (const c of configs) {
    kernels.push({ ...c, op: "revAdd", entry: revAddEntry(c), threads: REV_ADD_THREADS, sharedBytes: 0 });
    source += kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
