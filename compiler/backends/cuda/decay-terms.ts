/**
 * The log decays' adjoint terms as one CUDA kernel (the torch target: runtime/torch/seqc_chunked.py DECAY_TERMS
 * "kernel"; model-independent, so its module is <Model>.torch.json "kernels"."decayTerms").
 *
 * The chunked backward's decay adjoint sums, per token, the terms (docs/training.md "The chunked backward")
 *
 *   scalar decay (per head):    term[b, t, h]    = sum_k a1[b, t, h, k] c1[b, t, h, k] - sum_k a2[b, t, h, k] c2[b, t, h, k]
 *   per-key decay (per key row): term[b, t, h, k] = a1[b, t, h, k] c1[b, t, h, k] - a2[b, t, h, k] c2[b, t, h, k]
 *
 * (a1 = q as the transposed cores read it, c1 = dq; a2 = k, c2 = dk). In torch ops that was a mixed-dtype multiply per
 * operand pair (a bf16 q times the float32 dq, written as a float32 [B, T, H*K] tensor), a reduction over K per pair and
 * a subtraction: on the H200 at (8, 2048, 16, 64) two multiplies 0.132 ms and the sums 0.09 ms for 192 MB of operands
 * (bench/torch/results/s10-run1-profile-simple_gla-s10-new.txt). Here the four operands are read once where they are
 * (bf16 or float32, widened exactly; any token and head strides, the feature stride 1), each product rounded to float32 and
 * summed in float32 per lane (no FMA contraction: the products as torch's multiply rounds them), then across the warp; only the terms are written ([B, T, H] or [B, T, H*K] float32, contiguous).
 * acc = 1 adds to what is there (a model with several readouts or pairs: further launches); two = 0 leaves a2, c2 out.
 * rev (a bit per operand, REV_BITS) reads that operand in reversed time: token t's term takes its token T - 1 - t (each
 * batch row on its own), so the adjoint cores' reversed outputs (dk) are read where they are, without a flip first (the
 * same values in the same order: bitwise the terms of the flipped operand).
 *
 * One warp per (b, t, h) row, 8 rows a block of 256 threads (grid x = ceil(B T H / 8)). vec = 1 (the runtime checks
 * that K is even and every operand's base and strides are even elements): each lane loads two neighbouring elements at
 * once (a 4-byte bf16 pair, an 8-byte float32 pair). Floor at (8, 2048, 16, 64) with bf16 a and float32 c: 192 MB read,
 * 1 MB written: 0.045 ms at 4.3 TB/s.
 *
 * Which operand types exist is data (DECAY_TERMS_CONFIGS); the runtime launches an entry only where one matches and
 * else computes the terms in torch ops.
 */

export type DecayTermsOperand = "f32" | "bf16";

/** A compiled configuration: the dtypes of a1 and a2 (a; a2 its own where given) and of c1 and c2 (c). */
export interface DecayTermsConfig {
  a: DecayTermsOperand;
  c: DecayTermsOperand;
  /** a2's dtype where it is not a's (GLA in the bf16 step: q float32, as prep scaled it, k the bf16 input) */
  a2?: DecayTermsOperand;
}

/** A launchable kernel of the module (seqc_cuda.KernelModule: entry, threads, sharedBytes) with its configuration. */
export interface DecayTermsKernel extends DecayTermsConfig {
  op: "decayTerms";
  entry: string;
  threads: number;
  sharedBytes: number;
  /** rows (b, t, h) per block: one a warp */
  rows: number;
  /** the kernel takes a last argument `rev` (operands stored in reversed time; REV_BITS) */
  rev: true;
}

/** The bits of the kernel's `rev` argument: an operand whose bit is set is read at token T - 1 - t for the term of token t
 * (stored in reversed time, as the adjoint cores write their outputs: the glue's flip of dk before the terms goes). */
export const REV_BITS = { a1: 1, c1: 2, a2: 4, c2: 8 } as const;

export const DECAY_TERMS_THREADS = 256;

/** Every operand-type pair (bf16 q and k as given or as the cores' copies, float32 dq and dk; float32 models), and a
 * float32 q with a bf16 k (GLA's bf16 step: prep writes q K^-1/2 in float32, k is the input) with float32 dq, dk. */
export const DECAY_TERMS_CONFIGS: readonly DecayTermsConfig[] = [
  ...(["bf16", "f32"] as const).flatMap((a) => (["f32", "bf16"] as const).map((c) => ({ a, c }))),
  { a: "f32", c: "f32", a2: "bf16" },
];

export function decayTermsEntry(c: DecayTermsConfig): string {
  return `seqc_decay_terms_${c.a}_${c.c}${c.a2 && c.a2 !== c.a ? `_k${c.a2}` : ""}`;
}

const PRELUDE = `// ==== seqc decay adjoint terms (model-independent; compiler/backends/cuda/decay-terms.ts) ====
typedef unsigned int u32;
#ifdef SEQC_EMU
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
#endif
__device__ __forceinline__ float seqc_terms_ld(const float* p) { return *p; }
__device__ __forceinline__ float seqc_terms_ld(const unsigned short* p) { return __uint_as_float(((u32)*p) << 16); }
__device__ __forceinline__ void seqc_terms_ld2(const float* p, float& x, float& y) { const float2 v = *(const float2*)p; x = v.x; y = v.y; }
__device__ __forceinline__ void seqc_terms_ld2(const unsigned short* p, float& x, float& y) {
  const u32 v = *(const u32*)p;
  x = __uint_as_float(v << 16);
  y = __uint_as_float(v & 0xffff0000u);
}
`;

function kernelSource(c: DecayTermsConfig): string {
  const NT = DECAY_TERMS_THREADS, RW = NT / 32;
  const ty = (o: DecayTermsOperand) => (o === "bf16" ? "unsigned short" : "float");
  const A = ty(c.a), A2 = ty(c.a2 ?? c.a), C = ty(c.c);
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${decayTermsEntry(c)}(
    const ${A}* __restrict__ a1, const ${C}* __restrict__ c1, const ${A2}* __restrict__ a2, const ${C}* __restrict__ c2, float* __restrict__ out,
    u32 B, u32 T, u32 H, u32 K, u32 perKey, u32 two, u32 acc, u32 vec,
    u32 s1b, u32 s1t, u32 s1h, u32 t1b, u32 t1t, u32 t1h, u32 s2b, u32 s2t, u32 s2h, u32 t2b, u32 t2t, u32 t2h, u32 rev) {
  const u32 lane = threadIdx.x % 32u;
  const size_t row = (size_t)blockIdx.x * ${RW}u + threadIdx.x / 32u;
  const bool live = row < (size_t)B * T * H;  // (a whole warp is live or not: the shuffles below stay warp-wide)
  const u32 h = live ? (u32)(row % H) : 0u, t = live ? (u32)((row / H) % T) : 0u, b = live ? (u32)(row / ((size_t)H * T)) : 0u;
  const u32 tr = T - 1u - t;  // token t of an operand stored in reversed time (rev's bits: a1 1, c1 2, a2 4, c2 8)
  const ${A}* pa1 = a1 + (size_t)b * s1b + (size_t)((rev & 1u) ? tr : t) * s1t + (size_t)h * s1h;
  const ${C}* pc1 = c1 + (size_t)b * t1b + (size_t)((rev & 2u) ? tr : t) * t1t + (size_t)h * t1h;
  const ${A2}* pa2 = a2 + (size_t)b * s2b + (size_t)((rev & 4u) ? tr : t) * s2t + (size_t)h * s2h;
  const ${C}* pc2 = c2 + (size_t)b * t2b + (size_t)((rev & 8u) ? tr : t) * t2t + (size_t)h * t2h;
  float* po = out + (perKey ? row * K : row);
  float s1 = 0.f, s2 = 0.f;
  if (live) {
    if (vec) {
      for (u32 f = 2u * lane; f < K; f += 64u) {
        float x0, x1, y0, y1;
        seqc_terms_ld2(pa1 + f, x0, x1);
        seqc_terms_ld2(pc1 + f, y0, y1);
        float p0 = __fmul_rn(x0, y0), p1 = __fmul_rn(x1, y1);
        if (two) {
          seqc_terms_ld2(pa2 + f, x0, x1);
          seqc_terms_ld2(pc2 + f, y0, y1);
          if (perKey) {
            p0 = __fsub_rn(p0, __fmul_rn(x0, y0));
            p1 = __fsub_rn(p1, __fmul_rn(x1, y1));
          } else {
            s2 = __fadd_rn(s2, __fmul_rn(x0, y0));
            s2 = __fadd_rn(s2, __fmul_rn(x1, y1));
          }
        }
        if (perKey) {  // (po + f: 8-byte aligned, K and f even)
          float2 o = make_float2(p0, p1);
          if (acc) { const float2 q = *(const float2*)(po + f); o.x = __fadd_rn(q.x, p0); o.y = __fadd_rn(q.y, p1); }
          *(float2*)(po + f) = o;
        } else {
          s1 = __fadd_rn(s1, p0);
          s1 = __fadd_rn(s1, p1);
        }
      }
    } else {
      for (u32 f = lane; f < K; f += 32u) {
        float p = __fmul_rn(seqc_terms_ld(pa1 + f), seqc_terms_ld(pc1 + f));
        if (two) {
          const float q = __fmul_rn(seqc_terms_ld(pa2 + f), seqc_terms_ld(pc2 + f));
          if (perKey) p = __fsub_rn(p, q);
          else s2 = __fadd_rn(s2, q);
        }
        if (perKey) po[f] = acc ? __fadd_rn(po[f], p) : p;
        else s1 = __fadd_rn(s1, p);
      }
    }
  }
  if (perKey) return;
#pragma unroll
  for (u32 m = 16u; m >= 1u; m /= 2u) {
    s1 = __fadd_rn(s1, __shfl_sync(0xffffffffu, s1, (int)(lane ^ m)));
    s2 = __fadd_rn(s2, __shfl_sync(0xffffffffu, s2, (int)(lane ^ m)));
  }
  if (live && lane == 0u) {
    const float v = __fsub_rn(s1, s2);
    *po = acc ? __fadd_rn(*po, v) : v;
  }
}
`;
}

/** The kernel module for these configurations (default DECAY_TERMS_CONFIGS), one translation unit. */
export function decayTermsModule(configs: readonly DecayTermsConfig[] = DECAY_TERMS_CONFIGS, patch?: (src: string) => string): { source: string; kernels: DecayTermsKernel[] } {
  const kernels: DecayTermsKernel[] = [];
  let source = PRELUDE;
  for (const c of configs) {
    kernels.push({ ...c, op: "decayTerms", entry: decayTermsEntry(c), threads: DECAY_TERMS_THREADS, sharedBytes: 0, rows: DECAY_TERMS_THREADS / 32, rev: true });
    source += kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
