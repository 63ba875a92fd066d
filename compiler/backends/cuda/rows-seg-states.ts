/**
 * The segments' end states of the rows chunk kernel's segments (runtime/torch/seqc_chunked.py ROWS_CHUNK_SEGMENTS, GLA's
 * transposed products at few rows) in one CUDA kernel: seqc_chunked.ROWS_SEG_STATES "cuda" (the module is <Model>.torch.json
 * "kernels"."rowsSegStates"; "torch", the default, forms them in torch ops: rows_chunk_seg_states).
 *
 * The recurrence S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T (per batch and head; a per-key decay is diagonal) cut into nseg
 * segments of L = T / nseg stored tokens; segment j holds tokens jL .. jL + L - 1. Per segment that feeds another (rev 0:
 * j = 0 .. nseg - 2; rev != 0: j = 1 .. nseg - 1), from a zero state:
 *
 *   E_j[k, v] = sum_o w_o[k] a_o[k] b_o[v],   Q_j[k] = exp(sum of the segment's decays its walk applies)
 *   rev 0 (forward time):          w_o = exp(sum ld[o + 1 .. jL + L - 1]),  Q_j = exp(sum ld[jL .. jL + L - 1])
 *   rev != 0 (the adjoint's walk, reversed time over the forward-stored tensors, the decay ld[jL] entering segment j - 1
 *             applied by the runtime's scan):  w_o = exp(sum ld[jL + 1 .. o]),  Q_j = exp(sum ld[jL + 1 .. jL + L - 1])
 *
 * (the runtime then scans over the segments in torch: rows_chunk_seg_scan). One block of 256 threads per (batch, feeding
 * segment, head) and tile of 64 keys x 64 values (grid (B (nseg - 1) H, ceil(K / 64) ceil(V / 64)), blockIdx.y = key tile
 * + ceil(K / 64) value tile). It walks its segment in stages of 32 tokens in the order the weights' sums grow (rev 0 from
 * the segment's last token back, else from its first): the stage's ld, a (float32 or bf16, widened) and b (bf16) rows
 * loaded into shared memory (a thread's 8 rows of each loaded into registers before any is stored: one round of global
 * latency a stage, where a load-store loop waited on 8 in turn; outputs bit for bit the same), the weights' running sums per key (4 threads a key, 8 tokens each, the parts' sums across
 * the 4 lanes by shuffles, a carry over the stages; every exponent a sum of log decays <= 0: no overflow), a scaled in
 * place, then each thread's 4 x 4 outputs accumulate w a b^T in float32 FMA. E [B, nseg - 1, H, K, V] and Q
 * [B, nseg - 1, H, K] float32 (Q written by the value tile 0 blocks). L any length (partial stages padded with zeros).
 */
import { CHUNK_CORE_SOURCE } from "./chunked-core.ts";

export interface RowsSegStatesKernel {
  entry: string;
  threads: number;
  sharedBytes: number;
  /** a read as bf16 words (GLA's dq: a = k); else float32 (its dk: a = q scaled by prep) */
  lowA: boolean;
  /** keys and values a block (the grid's tiles) */
  tile: 64;
}

const TC = 32, PA = 68, PL = 65, THREADS = 256, LOADS = (TC * 64) / THREADS;
export const ROWS_SEG_STATES_SHARED = (2 * TC * PA + TC * PL) * 4;

export function rowsSegStatesEntry(lowA: boolean): string {
  return `seqc_rows_seg_ends${lowA ? "_la" : ""}`;
}

const BODY = String.raw`
// ==== seqc rows chunk segments' end states (compiler/backends/cuda/rows-seg-states.ts) ====
template <typename TA>
__device__ __forceinline__ void seqc_rows_seg_ends_body(const float* __restrict__ ld, const TA* __restrict__ a, const seqc_bf16* __restrict__ b,
    float* __restrict__ E, float* __restrict__ Q, u32 B, u32 T, u32 H, u32 K, u32 V, u32 nseg, u32 rev) {
  SEQC_SMEM_DECL(smem);
  float* Aw = (float*)smem;     // [TC][PA]: a, then a w
  float* Bs = Aw + ${TC * PA};  // [TC][PA]: b
  float* Ls = Bs + ${TC * PA};  // [TC][PL]: ld
  const u32 tid = threadIdx.x, ns = nseg - 1, L = T / nseg;
  const u32 h = blockIdx.x % H, jj = (blockIdx.x / H) % ns, bb = blockIdx.x / (H * ns);
  const u32 kgs = (K + 63) / 64, k0 = (blockIdx.y % kgs) * 64, v0 = (blockIdx.y / kgs) * 64;
  const size_t seg0 = (size_t)bb * T + (size_t)(rev ? jj + 1 : jj) * L;  // the segment's first stored token
  const size_t HK = (size_t)H * K, HV = (size_t)H * V;
  const u32 sk = tid >> 2, sp = tid & 3, base = (tid & 31) & ~3u;  // the sums: key sk, tokens 8 sp .. 8 sp + 7 of a stage
  const u32 vx = tid & 15, ky = tid >> 4;                              // the products: keys 4 ky .., values 4 vx ..
  float carry = 0.f;
  float acc[4][4];
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
  for (u32 m0 = 0; m0 < L; m0 += ${TC}) {
    // walk position m = m0 + r: stored token seg0 + m (rev), seg0 + L - 1 - m (forward time); zeros past L. A thread's
    // ${LOADS} rows (r = tid / 64 + ${THREADS / 64} i, column tid % 64) all loaded into registers before any is stored, so the
    // stage waits on one round of global loads, not ${LOADS} in turn
    {
      const u32 c = tid & 63;
      float lv[${LOADS}], av[${LOADS}], bv[${LOADS}];
#pragma unroll
      for (int i = 0; i < ${LOADS}; ++i) {
        const u32 m = m0 + (tid >> 6) + ${THREADS / 64} * i;
        lv[i] = 0.f, av[i] = 0.f, bv[i] = 0.f;
        if (m < L) {
          const size_t row = seg0 + (rev ? m : L - 1 - m);
          if (k0 + c < K) {
            lv[i] = ld[row * HK + (size_t)h * K + k0 + c];
            av[i] = seqc_f32(a[row * HK + (size_t)h * K + k0 + c]);
          }
          if (v0 + c < V) bv[i] = seqc_f32(b[row * HV + (size_t)h * V + v0 + c]);
        }
      }
#pragma unroll
      for (int i = 0; i < ${LOADS}; ++i) {
        const u32 r = (tid >> 6) + ${THREADS / 64} * i;
        Ls[r * ${PL} + c] = lv[i];
        Aw[r * ${PA} + c] = av[i];
        Bs[r * ${PA} + c] = bv[i];
      }
    }
    __syncthreads();
    {  // the weights: exclusive running sums of the decays along the walk (forward time), inclusive without the first (rev)
      float p[8], s = 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const u32 r = 8 * sp + i;
        const float x = (rev && m0 + r == 0) ? 0.f : Ls[r * ${PL} + sk];
        const float before = s;
        s += x;
        p[i] = rev ? s : before;
      }
      const float t0 = __shfl_sync(0xffffffffu, s, base), t1 = __shfl_sync(0xffffffffu, s, base + 1);
      const float t2 = __shfl_sync(0xffffffffu, s, base + 2), t3 = __shfl_sync(0xffffffffu, s, base + 3);
      const float ex = carry + (sp > 0 ? t0 : 0.f) + (sp > 1 ? t1 : 0.f) + (sp > 2 ? t2 : 0.f);
#pragma unroll
      for (int i = 0; i < 8; ++i) Aw[(8 * sp + i) * ${PA} + sk] *= expf(ex + p[i]);
      carry += ((t0 + t1) + t2) + t3;
    }
    __syncthreads();
#pragma unroll 4
    for (u32 r = 0; r < ${TC}; ++r) {
      const float4 av = *(const float4*)&Aw[r * ${PA} + 4 * ky];
      const float4 bv = *(const float4*)&Bs[r * ${PA} + 4 * vx];
      const float ar[4] = {av.x, av.y, av.z, av.w}, br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[i][c] = fmaf(ar[i], br[c], acc[i][c]);
    }
    __syncthreads();
  }
  const size_t hb = ((size_t)bb * ns + jj) * H + h;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const u32 k = k0 + 4 * ky + i, v = v0 + 4 * vx + c;
      if (k < K && v < V) E[(hb * K + k) * V + v] = acc[i][c];
    }
  if (blockIdx.y < kgs && sp == 0 && k0 + sk < K) Q[hb * K + k0 + sk] = expf(carry);
}
`;

function entrySource(lowA: boolean): string {
  const ta = lowA ? "seqc_bf16" : "float";
  return `
extern "C" __global__ void __launch_bounds__(${THREADS}) ${rowsSegStatesEntry(lowA)}(const float* __restrict__ ld, const ${ta}* __restrict__ a, const seqc_bf16* __restrict__ b, float* __restrict__ E, float* __restrict__ Q, u32 B, u32 T, u32 H, u32 K, u32 V, u32 nseg, u32 rev) {
  seqc_rows_seg_ends_body<${ta}>(ld, a, b, E, Q, B, T, H, K, V, nseg, rev);
}
`;
}

/** The module: the chunked core's helpers (seqc_bf16, seqc_f32), the body, the float32-a and bf16-a entries. */
export function rowsSegStatesModule(patch?: (src: string) => string): { source: string; kernels: RowsSegStatesKernel[] } {
  const kernels = [false, true].map((lowA) => ({ entry: rowsSegStatesEntry(lowA), threads: THREADS, sharedBytes: ROWS_SEG_STATES_SHARED, lowA, tile: 64 as const }));
  const source = CHUNK_CORE_SOURCE + BODY + entrySource(false) + entrySource(true);
  if (patch) {
    const p = patch(source);
    if (p === source) throw new Error("rowsSegStatesModule: the patch changed nothing");
    return { source: p, kernels };
  }
  return { source, kernels };
}
