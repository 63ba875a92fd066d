/**
 * The low-rank chunked backward's chunk transitions as one fused CUDA kernel per chunk (the torch target's delta-rule
 * family: runtime/torch/seqc_chunked_lowrank.py ChunkCore with LR_FUSED "cuda"; model-independent, so its module is
 * <Model>.torch.json "kernels"."lowRankCore").
 *
 * Per batch row n (a chunk of C steps of one head), from the start state [I | 0] of width W = K + V, with one low-rank
 * pair (u, w) and one pair (k, [0 | v]) per step and no / a scalar / a per-key log decay (G_t the log decays of the
 * chunk's first t steps summed, G_0 = 0):
 *
 *   S_s = diag(exp(ld_s)) S_{s-1} + u_s (w_s^T S_{s-1}) + k_s [0 | v_s]^T
 *
 * it computes what ChunkCore's solve and end() compute in several torch ops:
 *
 *   scores   A_u[a, c] = sum_i w_a[i] exp(G_a[i] - G_{c+1}[i]) u_c[i],  A_k[a, c] the same with k_c   (c < a; else 0)
 *   rhs      rhs_a = [exp(G_a) w_a | sum_{c < a} A_k[a, c] v_c]
 *   reads    r_a = rhs_a + sum_{c < a} A_u[a, c] r_c      (the unit-lower solve (I - A_u) r = rhs; r_a = S_{a}^T w_a)
 *   end      S_C[i, :] = exp(G_C[i]) [e_i | 0] + sum_f exp(G_C[i] - G_{f+1}[i]) (u_f[i] r_f + k_f[i] [0 | v_f])
 *
 * fp32 FMA on the SIMT cores (the chain runs fp32 for bf16 tensors too; no tensor cores: the reads feed the log decays'
 * cancelling adjoint sums, bench/RESULTS.md "bf16 operands"). Decays are exponentiated only as differences G_a - G_b
 * with a >= b, each <= 0 for log decays <= 0: exp never overflows, underflow to 0 is the exact limit. Per key, a score
 * tile below the diagonal splits the ratio at its first query's time (exp(G_a - G_{4 ta}) exp(G_{4 ta} - G_{c+1}), both
 * <= 1); the diagonal tiles take each ratio directly.
 *
 * The work, 256 threads per chunk, two blocks an SM (85 KB of shared memory, 102 KB per key; U, K and w are read once
 * into shared memory, the scores stored over U and K, the end phase reads U and K again from global memory):
 *   scores    4 x 4 register tiles (a thread a tile of A_u and of A_k), K steps each;
 *   rhs       4 x 4 tiles of A_k v (v's columns) and exp(G_a) w_a elementwise (w's);
 *   solve     one column of r a thread (the W columns are independent): 16-row blocks, each first takes the earlier
 *             blocks' reads (a register-blocked product, 16 independent accumulators) and then its diagonal block's
 *             forward substitution in registers; no barrier inside;
 *   end       4 x 4 tiles, the first K columns U^T r only, the last V columns U^T r + K^T v.
 * Floor at C = K = V = 64, per chunk: 1.43 M FMAs (scores 0.26 M, A_k v 0.13 M, solve 0.26 M, end 0.79 M) and about
 * 128 KB of global traffic (u, k, w, v in; the reads and the end state out; G 17 KB more per key): at 4224 chunks
 * about 0.18 ms of the H100's fp32 FMA rate and 0.18 ms of its memory bandwidth (bench/RESULTS.md).
 *
 * Tensors (float32, contiguous, as ChunkCore holds them): KK [N, C, 2, K] (slot 0 u, slot 1 k); Wq [N, C, K]; VV [N, C,
 * 2, W] (read: slot 1's last V columns, v; written: slot 0, the reads r); G [N, C + 1, LW] (LW 1 scalar, K per key;
 * unused without a decay); END [N, K, W]. One block of LOWRANK_CORE_THREADS threads per row n (blockIdx.x).
 *
 * Which configurations exist is data (LOWRANK_CORE_CONFIGS); the runtime launches an entry only where one matches the
 * core (decay mode, C, K, V, one low-rank pair and one pair) and else runs ChunkCore's torch ops.
 */

import { coreMmaCheck, coreMmaLayout, coreMmaSource } from "./lowrank-core-mma.ts";
import { MMA_TF32_PRELUDE, type LowRankReadMath } from "./lowrank-readout-mma.ts";
import { unitLowerSolveSource } from "./lowrank-solve.ts";

export type LowRankDecay = "none" | "scalar" | "key";

/** A compiled configuration: the decay mode, steps per chunk, key and value widths (the state is K x (K + V)). */
export interface LowRankCoreConfig {
  decay: LowRankDecay;
  C: number;
  K: number;
  V: number;
  /** fp32 FMAs on the SIMT cores (absent) or the tensor-core twin (lowrank-core-mma.ts): "tf32" / "tf32x3" (entries end
   * in _tf32 / _tf32x3; seqc_chunked_lowrank LR_CORE_MMA, for bf16 / f16 tensors; no or a scalar decay) */
  math?: LowRankReadMath;
}

/** A launchable kernel of the module (seqc_cuda.KernelModule: entry, threads, sharedBytes) with its configuration. */
export interface LowRankCoreKernel extends LowRankCoreConfig {
  /** what the kernel computes: "transitions" (the reads r and the end state of a chunk from [I | 0]) */
  op: "transitions";
  /** low-rank pairs (u, w) and pairs (k, v) per step the kernel takes */
  E: number;
  P: number;
  entry: string;
  threads: number;
  sharedBytes: number;
}

export const LOWRANK_CORE_THREADS = 256;

/** The configurations the torch modules get: the delta-rule family's chunk of 64 micro-steps at K = V = 64 and at
 * K = V = 128 (the issue's other two shapes; one block an SM there: 165 KB of shared memory, 198 KB per key), per decay
 * mode (DeltaNet: none; Gated DeltaNet: scalar; RWKV-7: per key). Without a K = 128 entry the glue ran ChunkCore's
 * torch ops at K = 128. */
export const LOWRANK_CORE_CONFIGS: readonly LowRankCoreConfig[] = (["none", "scalar", "key"] as const).flatMap((decay) => [64, 128].map((K) => ({ decay, C: 64, K, V: K })));


/** The transitions' tensor-core twins (TF32) at C = 64, K = V = 64 and 128, no and a scalar decay: shipped for LR_CORE_MMA
 * (the K = 128 ones, 170 KB of shared memory and one block an SM, only with LR_CORE_K128 "on"). */
export const LOWRANK_CORE_MMA_CONFIGS: readonly LowRankCoreConfig[] = (["none", "scalar"] as const).flatMap((decay) => [64, 128].map((K) => ({ decay, C: 64, K, V: K, math: "tf32" as const })));

export function lowRankCoreEntry(c: LowRankCoreConfig): string {
  return `seqc_lr_transitions_${c.decay}_c${c.C}k${c.K}v${c.V}${c.math ? `_${c.math}` : ""}`;
}

/** Shared memory layout in floats: two slots (U^T, K^T [K][LT] while the scores are taken; then A_u by rows and A_k^T
 * [C][LT]; then the decayed U, K [C][K]), v [C][V], the right-hand sides / reads [C][LR] (w in their first K columns
 * at first) and G [C + 1][LG] (LG = K + 1 per key, one column for a scalar decay, none without). LT and LR are padded
 * to a multiple of 4 (float4 rows) off the bank of the row above. */
function layout(c: LowRankCoreConfig): { LT: number; LR: number; LG: number; slot: number; floats: number } {
  const LT = c.C + 4, LR = c.K + c.V + 4, LG = c.decay === "key" ? c.K + 1 : 1;
  const slot = Math.max(c.K * LT, c.C * LT, c.C * c.K);
  const g = c.decay === "none" ? 0 : (c.C + 1) * LG;
  return { LT, LR, LG, slot, floats: 2 * slot + c.C * c.V + c.C * LR + g };
}

function sharedFloats(c: LowRankCoreConfig): number {
  return layout(c).floats;
}

function check(c: LowRankCoreConfig): void {
  if (c.K % 4 || c.V % 4 || c.C % 16 || c.C < 16 || c.C > 64)
    throw new Error(`lowrank-core: K ${c.K} and V ${c.V} must be multiples of 4 (4 x 4 register tiles) and C ${c.C} one of 16, 32, 48, 64 (16-row solve blocks; (C / 4)^2 score tiles on ${LOWRANK_CORE_THREADS} threads)`);
  if (sharedFloats(c) * 4 > 227 * 1024) throw new Error(`lowrank-core: C ${c.C}, K ${c.K}, V ${c.V} needs ${sharedFloats(c) * 4} bytes of shared memory (> 227 KiB)`);
}

function kernelSource(c: LowRankCoreConfig): string {
  const { C, K, V, decay } = c;
  const W = K + V, NT = LOWRANK_CORE_THREADS, L = layout(c);
  const { LT, LR, LG } = L;
  const CT = C / 4, KT = K / 4, VT = V / 4;
  const dk = decay === "key";
  // G_t of feature i (key) / of the step (scalar)
  const g = (t: string, i: string) => (dk ? `sG[(${t}) * ${LG}u + (${i})]` : `sG[${t}]`);
  const f4 = (p: string) => `(*(const float4*)&${p})`;
  const st4 = (p: string, v: string) => `*(float4*)&${p} = ${v};`;
  const unroll = "#pragma unroll";
  // a statement over a 4 x 4 register tile (p rows, q columns), both loops unrolled
  const tile4 = (ind: string, stmt: string) => `${unroll}\n${ind}for (u32 p = 0; p < 4u; ++p)\n${unroll}\n${ind}  for (u32 q = 0; q < 4u; ++q) ${stmt}`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 2) ${lowRankCoreEntry(c)}(const float* __restrict__ KK, const float* __restrict__ Wq, float* __restrict__ VV, const float* __restrict__ Gg, float* __restrict__ END, u32 N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sU = (float*)seqc_smem_raw;  // U^T [K][LT] -> A_u [C][LT] -> decayed U [C][K]
  float* sK = sU + ${L.slot};         // K^T [K][LT] -> A_k^T [C][LT] -> decayed K [C][K]
  float* sV = sK + ${L.slot};         // v [C][V]
  float* sR = sV + ${C * V};          // w [C][K] in the first K columns -> right-hand sides -> reads r [C][LR]
  float* sG = sR + ${C * LR};         // G [C + 1][LG]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const float* kk = KK + (size_t)n * ${C * 2 * K}u;
  const float* wq = Wq + (size_t)n * ${C * K}u;
  float* vv = VV + (size_t)n * ${C * 2 * W}u;
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) {
    const u32 c = x / ${K}u, i = x % ${K}u;
    sU[i * ${LT}u + c] = kk[(c * 2u) * ${K}u + i];
    sK[i * ${LT}u + c] = kk[(c * 2u + 1u) * ${K}u + i];
    sR[c * ${LR}u + i] = wq[x];
  }
  for (u32 x = t; x < ${C * V}u; x += ${NT}u) sV[x] = vv[((x / ${V}u) * 2u + 1u) * ${W}u + ${K}u + x % ${V}u];
${decay === "none" ? "" : dk ? `  for (u32 x = t; x < ${(C + 1) * K}u; x += ${NT}u) sG[(x / ${K}u) * ${LG}u + x % ${K}u] = Gg[(size_t)n * ${(C + 1) * K}u + x];\n` : `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n`}  __syncthreads();
  // scores of the queries w_a against the events of the steps c < a, a 4 x 4 tile (a = 4 ta + p, c = 4 tc + q) a thread,
  // held in registers until every thread has read U and K, then stored over them (A_u by rows, A_k by columns)
  {
    const u32 ta = t / ${CT}u, tc = t % ${CT}u;
    float au[4][4], ak[4][4];
${tile4("    ", "au[p][q] = ak[p][q] = 0.f;")}
    if (t < ${CT * CT}u && tc <= ta) {
      for (u32 i = 0; i < ${K}u; ++i) {
        float wa[4], uq[4], kq[4];
${unroll}
        for (u32 p = 0; p < 4u; ++p) wa[p] = sR[(4u * ta + p) * ${LR}u + i];
        const float4 u4 = ${f4(`sU[i * ${LT}u + 4u * tc]`)}, k4 = ${f4(`sK[i * ${LT}u + 4u * tc]`)};
        uq[0] = u4.x; uq[1] = u4.y; uq[2] = u4.z; uq[3] = u4.w;
        kq[0] = k4.x; kq[1] = k4.y; kq[2] = k4.z; kq[3] = k4.w;
${dk ? `        if (tc < ta) {
          // every c + 1 <= 4 ta <= a: exp(G_a - G_{c+1}) = exp(G_a - G_{4 ta}) exp(G_{4 ta} - G_{c+1}), both factors <= 1
          const float g0 = ${g("4u * ta", "i")};
${unroll}
          for (u32 p = 1; p < 4u; ++p) wa[p] *= expf(${g("4u * ta + p", "i")} - g0);
${unroll}
          for (u32 q = 0; q < 4u; ++q) {
            const float e = expf(g0 - ${g("4u * tc + q + 1u", "i")});
            uq[q] *= e;
            kq[q] *= e;
          }
${tile4("          ", "{")}
              au[p][q] = fmaf(wa[p], uq[q], au[p][q]);
              ak[p][q] = fmaf(wa[p], kq[q], ak[p][q]);
            }
        } else {
          // the diagonal tile: the pairs c < a, each ratio taken directly
${unroll}
          for (u32 p = 1; p < 4u; ++p)
${unroll}
            for (u32 q = 0; q < p; ++q) {
              const float w = wa[p] * expf(${g("4u * ta + p", "i")} - ${g("4u * ta + q + 1u", "i")});
              au[p][q] = fmaf(w, uq[q], au[p][q]);
              ak[p][q] = fmaf(w, kq[q], ak[p][q]);
            }
        }` : `${tile4("        ", "{")}
            au[p][q] = fmaf(wa[p], uq[q], au[p][q]);
            ak[p][q] = fmaf(wa[p], kq[q], ak[p][q]);
          }`}
      }
${tile4("      ", "{")}
          const bool lower = 4u * tc + q < 4u * ta + p;
${decay === "scalar" ? `          const float f = lower ? expf(${g("4u * ta + p", "")} - ${g("4u * tc + q + 1u", "")}) : 0.f;\n` : `          const float f = lower ? 1.f : 0.f;\n`}          au[p][q] *= f;
          ak[p][q] *= f;
        }
    }
    __syncthreads();
    if (t < ${CT * CT}u) {
${unroll}
      for (u32 p = 0; p < 4u; ++p) ${st4(`sU[(4u * ta + p) * ${LT}u + 4u * tc]`, "make_float4(au[p][0], au[p][1], au[p][2], au[p][3])")}
${unroll}
      for (u32 q = 0; q < 4u; ++q) ${st4(`sK[(4u * tc + q) * ${LT}u + 4u * ta]`, "make_float4(ak[0][q], ak[1][q], ak[2][q], ak[3][q])")}
    }
    __syncthreads();
  }
  // right-hand sides: [exp(G_a) w_a | sum_{c < a} A_k[a, c] v_c], 4 x 4 tiles
${decay === "none" ? "" : `  for (u32 x = t; x < ${CT * KT}u; x += ${NT}u) {
    const u32 ta = x / ${KT}u, tj = x % ${KT}u;
${unroll}
    for (u32 p = 0; p < 4u; ++p)
${unroll}
      for (u32 q = 0; q < 4u; ++q) sR[(4u * ta + p) * ${LR}u + 4u * tj + q] *= expf(${g("4u * ta + p", "4u * tj + q")});
  }
`}  for (u32 x = t; x < ${CT * VT}u; x += ${NT}u) {
    const u32 ta = x / ${VT}u, tj = x % ${VT}u;
    float acc[4][4];
${tile4("    ", "acc[p][q] = 0.f;")}
    for (u32 c = 0; c < 4u * ta + 3u; ++c) {
      const float4 a4 = ${f4(`sK[c * ${LT}u + 4u * ta]`)}, v4 = ${f4(`sV[c * ${V}u + 4u * tj]`)};
      const float a[4] = {a4.x, a4.y, a4.z, a4.w}, v[4] = {v4.x, v4.y, v4.z, v4.w};
${tile4("      ", "acc[p][q] = fmaf(a[p], v[q], acc[p][q]);")}
    }
${unroll}
    for (u32 p = 0; p < 4u; ++p) ${st4(`sR[(4u * ta + p) * ${LR}u + ${K}u + 4u * tj]`, "make_float4(acc[p][0], acc[p][1], acc[p][2], acc[p][3])")}
  }
  __syncthreads();
  // the unit-lower solve (I - A_u) r = rhs, one column a thread (the columns are independent): blocks of 16 rows, each
  // gets the earlier blocks' reads (a register-blocked product) and then its diagonal block's forward substitution in registers
${unitLowerSolveSource({ C, W, NT, LR, LA: LT, load4: f4 })}  __syncthreads();
  for (u32 x = t; x < ${C * W}u; x += ${NT}u) vv[((x / ${W}u) * 2u) * ${W}u + x % ${W}u] = sR[(x / ${W}u) * ${LR}u + x % ${W}u];
  // the events decayed to the chunk's end (exp(G_C - G_{f+1})), by rows, over A_u and A_k
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) {
    const u32 f = x / ${K}u, i = x % ${K}u;
${decay === "none" ? `    sU[x] = kk[(f * 2u) * ${K}u + i];
    sK[x] = kk[(f * 2u + 1u) * ${K}u + i];` : `    const float d = expf(${g(`${C}u`, "i")} - ${g("f + 1u", "i")});
    sU[x] = kk[(f * 2u) * ${K}u + i] * d;
    sK[x] = kk[(f * 2u + 1u) * ${K}u + i] * d;`}
  }
  __syncthreads();
  // the end state S_C[i, :] = exp(G_C[i]) [e_i | 0] + sum_f (U_f[i] r_f + K_f[i] [0 | v_f]), 4 x 4 tiles; the first K
  // columns take only U r, the last V both
  float* end = END + (size_t)n * ${K * W}u;
  for (u32 x = t; x < ${KT * KT}u; x += ${NT}u) {
    const u32 ti = x / ${KT}u, tj = x % ${KT}u;
    float acc[4][4];
${tile4("    ", "acc[p][q] = 0.f;")}
    for (u32 f = 0; f < ${C}u; ++f) {
      const float4 u4 = ${f4(`sU[f * ${K}u + 4u * ti]`)}, r4 = ${f4(`sR[f * ${LR}u + 4u * tj]`)};
      const float u[4] = {u4.x, u4.y, u4.z, u4.w}, r[4] = {r4.x, r4.y, r4.z, r4.w};
${tile4("      ", "acc[p][q] = fmaf(u[p], r[q], acc[p][q]);")}
    }
${unroll}
    for (u32 p = 0; p < 4u; ++p) {
      const u32 i = 4u * ti + p;
${decay === "none" ? "      const float di = 1.f;" : `      const float di = expf(${g(`${C}u`, "i")});`}
${unroll}
      for (u32 q = 0; q < 4u; ++q) end[i * ${W}u + 4u * tj + q] = acc[p][q] + (4u * tj + q == i ? di : 0.f);
    }
  }
  for (u32 x = t; x < ${KT * VT}u; x += ${NT}u) {
    const u32 ti = x / ${VT}u, tj = x % ${VT}u;
    float acc[4][4];
${tile4("    ", "acc[p][q] = 0.f;")}
    for (u32 f = 0; f < ${C}u; ++f) {
      const float4 u4 = ${f4(`sU[f * ${K}u + 4u * ti]`)}, k4 = ${f4(`sK[f * ${K}u + 4u * ti]`)};
      const float4 r4 = ${f4(`sR[f * ${LR}u + ${K}u + 4u * tj]`)}, v4 = ${f4(`sV[f * ${V}u + 4u * tj]`)};
      const float u[4] = {u4.x, u4.y, u4.z, u4.w}, k[4] = {k4.x, k4.y, k4.z, k4.w}, r[4] = {r4.x, r4.y, r4.z, r4.w}, v[4] = {v4.x, v4.y, v4.z, v4.w};
${tile4("      ", "acc[p][q] = fmaf(k[p], v[q], fmaf(u[p], r[q], acc[p][q]));")}
    }
${unroll}
    for (u32 p = 0; p < 4u; ++p)
${unroll}
      for (u32 q = 0; q < 4u; ++q) end[(4u * ti + p) * ${W}u + ${K}u + 4u * tj + q] = acc[p][q];
  }
}
`;
}

export const LOWRANK_CORE_PRELUDE = `// ==== seqc low-rank chunk transitions (model-independent; compiler/backends/cuda/lowrank-core.ts) ====
typedef unsigned int u32;
#ifndef SEQC_EMU
#define SEQC_SMEM_DECL(name) extern __shared__ __align__(16) char name[]
#endif
`;

/** The kernel module for these configurations (default LOWRANK_CORE_CONFIGS), one translation unit. */
export function lowRankCoreModule(configs: readonly LowRankCoreConfig[] = LOWRANK_CORE_CONFIGS, patch?: (src: string) => string): { source: string; kernels: LowRankCoreKernel[] } {
  const kernels: LowRankCoreKernel[] = [];
  let source = LOWRANK_CORE_PRELUDE + (configs.some((c) => c.math) ? MMA_TF32_PRELUDE : "");
  for (const c of configs) {
    if (c.math) coreMmaCheck(c);
    else check(c);
    kernels.push({ ...c, op: "transitions", E: 1, P: 1, entry: lowRankCoreEntry(c), threads: LOWRANK_CORE_THREADS, sharedBytes: (c.math ? coreMmaLayout(c).floats : sharedFloats(c)) * 4 });
    source += c.math ? coreMmaSource(c, lowRankCoreEntry(c)) : kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
