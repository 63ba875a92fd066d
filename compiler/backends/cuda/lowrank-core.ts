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
 * everything in shared memory, fp32 FMA (the chain runs fp32 for bf16 tensors too; no tensor cores: the reads feed the
 * log decays' cancelling adjoint sums, bench/RESULTS.md "bf16 operands"). Decays are exponentiated only as differences
 * G_a - G_b with a >= b, each <= 0 for log decays <= 0: exp never overflows, underflow to 0 is the exact limit. The
 * per-key ratios are taken per (query, key, feature) directly (no boundary factoring as ChunkCore's halves).
 *
 * Tensors (float32, contiguous, as ChunkCore holds them): KK [N, C, 2, K] (slot 0 u, slot 1 k); Wq [N, C, K]; VV [N, C,
 * 2, W] (read: slot 1's last V columns, v; written: slot 0, the reads r); G [N, C + 1, LW] (LW 1 scalar, K per key;
 * unused without a decay); END [N, K, W]. One block of LOWRANK_CORE_THREADS threads per row n (blockIdx.x).
 *
 * Which configurations exist is data (LOWRANK_CORE_CONFIGS); the runtime launches an entry only where one matches the
 * core (decay mode, C, K, V, one low-rank pair and one pair) and else runs ChunkCore's torch ops.
 */

export type LowRankDecay = "none" | "scalar" | "key";

/** A compiled configuration: the decay mode, steps per chunk, key and value widths (the state is K x (K + V)). */
export interface LowRankCoreConfig {
  decay: LowRankDecay;
  C: number;
  K: number;
  V: number;
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

/** The configurations the torch modules get: the delta-rule family's chunk of 64 micro-steps at K = V = 64
 * (DeltaNet: none; Gated DeltaNet: scalar; RWKV-7: per key). */
export const LOWRANK_CORE_CONFIGS: readonly LowRankCoreConfig[] = (["none", "scalar", "key"] as const).map((decay) => ({ decay, C: 64, K: 64, V: 64 }));

const LW = (c: LowRankCoreConfig) => (c.decay === "key" ? c.K : 1);

export function lowRankCoreEntry(c: LowRankCoreConfig): string {
  return `seqc_lr_transitions_${c.decay}_c${c.C}k${c.K}v${c.V}`;
}

/** Shared memory in floats: W, U, K rows (stride K + 1), v [C, V], r [C, W], the two score matrices (stride C + 1), G. */
function sharedFloats(c: LowRankCoreConfig): number {
  const ldk = c.K + 1, ldc = c.C + 1;
  return 3 * c.C * ldk + c.C * c.V + c.C * (c.K + c.V) + 2 * c.C * ldc + (c.decay === "none" ? 0 : (c.C + 1) * LW(c));
}

function check(c: LowRankCoreConfig): void {
  const W = c.K + c.V;
  if (c.K % 8 || W % 32 || c.C < 1) throw new Error(`lowrank-core: K ${c.K} must be a multiple of 8 and K + V ${W} of 32 (the end state's 8 x 32 thread tile)`);
  if (sharedFloats(c) * 4 > 227 * 1024) throw new Error(`lowrank-core: C ${c.C}, K ${c.K}, V ${c.V} needs ${sharedFloats(c) * 4} bytes of shared memory (> 227 KiB)`);
}

function kernelSource(c: LowRankCoreConfig): string {
  const { C, K, V, decay } = c;
  const W = K + V, ldk = K + 1, ldc = C + 1, lw = LW(c), NT = LOWRANK_CORE_THREADS;
  const RI = K / 8, CJ = W / 32;
  const dk = decay === "key";
  // exp(G_a - G_b) of feature i (the key mode) / of the step (scalar)
  const g = (t: string, i: string) => (dk ? `sG[(${t}) * ${lw}u + (${i})]` : `sG[${t}]`);
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${lowRankCoreEntry(c)}(const float* __restrict__ KK, const float* __restrict__ Wq, float* __restrict__ VV, const float* __restrict__ Gg, float* __restrict__ END, u32 N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sW = (float*)seqc_smem_raw;
  float* sU = sW + ${C * ldk};
  float* sK = sU + ${C * ldk};
  float* sV = sK + ${C * ldk};
  float* sR = sV + ${C * V};
  float* sAu = sR + ${C * W};
  float* sAk = sAu + ${C * ldc};
  float* sG = sAk + ${C * ldc};
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const float* kk = KK + (size_t)n * ${C * 2 * K}u;
  const float* wq = Wq + (size_t)n * ${C * K}u;
  float* vv = VV + (size_t)n * ${C * 2 * W}u;
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) {
    const u32 c = x / ${K}u, i = x % ${K}u;
    sU[c * ${ldk}u + i] = kk[(c * 2u) * ${K}u + i];
    sK[c * ${ldk}u + i] = kk[(c * 2u + 1u) * ${K}u + i];
    sW[c * ${ldk}u + i] = wq[x];
  }
  for (u32 x = t; x < ${C * V}u; x += ${NT}u) sV[x] = vv[((x / ${V}u) * 2u + 1u) * ${W}u + ${K}u + x % ${V}u];
${decay === "none" ? "" : `  for (u32 x = t; x < ${(C + 1) * lw}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${(C + 1) * lw}u + x];\n`}  __syncthreads();
  // scores of the queries w_a (state before step a) against the events of the steps c < a
  for (u32 x = t; x < ${C * C}u; x += ${NT}u) {
    const u32 a = x / ${C}u, c = x % ${C}u;
    float su = 0.f, sk = 0.f;
    if (c < a) {
      for (u32 i = 0; i < ${K}u; ++i) {
        ${dk ? `const float w = sW[a * ${ldk}u + i] * expf(${g("a", "i")} - ${g("c + 1u", "i")});` : `const float w = sW[a * ${ldk}u + i];`}
        su = fmaf(w, sU[c * ${ldk}u + i], su);
        sk = fmaf(w, sK[c * ${ldk}u + i], sk);
      }
${decay === "scalar" ? `      const float f = expf(sG[a] - sG[c + 1u]);\n      su *= f;\n      sk *= f;\n` : ""}    }
    sAu[a * ${ldc}u + c] = su;
    sAk[a * ${ldc}u + c] = sk;
  }
  __syncthreads();
  // right-hand sides: [exp(G_a) w_a | sum_{c < a} A_k[a, c] v_c]
  for (u32 x = t; x < ${C * W}u; x += ${NT}u) {
    const u32 a = x / ${W}u, j = x % ${W}u;
    float r = 0.f;
    if (j < ${K}u) {
      r = sW[a * ${ldk}u + j]${decay === "none" ? "" : ` * expf(${g("a", "j")})`};
    } else {
      for (u32 c = 0; c < a; ++c) r = fmaf(sAk[a * ${ldc}u + c], sV[c * ${V}u + j - ${K}u], r);
    }
    sR[x] = r;
  }
  __syncthreads();
  // the unit-lower solve by forward substitution, one column per thread
  for (u32 j = t; j < ${W}u; j += ${NT}u) {
    for (u32 a = 1; a < ${C}u; ++a) {
      float r = sR[a * ${W}u + j];
      for (u32 c = 0; c < a; ++c) r = fmaf(sAu[a * ${ldc}u + c], sR[c * ${W}u + j], r);
      sR[a * ${W}u + j] = r;
    }
  }
  __syncthreads();
  for (u32 x = t; x < ${C * W}u; x += ${NT}u) vv[((x / ${W}u) * 2u) * ${W}u + x % ${W}u] = sR[x];
${decay === "none" ? "" : `  // the events decayed to the chunk's end: exp(G_C - G_{f+1})
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) {
    const u32 f = x / ${K}u, i = x % ${K}u;
    const float d = expf(${g(`${C}u`, "i")} - ${g("f + 1u", "i")});
    sU[f * ${ldk}u + i] *= d;
    sK[f * ${ldk}u + i] *= d;
  }
  __syncthreads();
`}  // the end state: rows i = ib + 8 p, columns j = jb + 32 q
  const u32 ib = t / 32u, jb = t % 32u;
  float acc[${RI}][${CJ}];
#pragma unroll
  for (u32 p = 0; p < ${RI}u; ++p)
#pragma unroll
    for (u32 q = 0; q < ${CJ}u; ++q) acc[p][q] = 0.f;
  for (u32 f = 0; f < ${C}u; ++f) {
    float uf[${RI}], kf[${RI}];
#pragma unroll
    for (u32 p = 0; p < ${RI}u; ++p) {
      uf[p] = sU[f * ${ldk}u + ib + 8u * p];
      kf[p] = sK[f * ${ldk}u + ib + 8u * p];
    }
#pragma unroll
    for (u32 q = 0; q < ${CJ}u; ++q) {
      const u32 j = jb + 32u * q;
      const float rf = sR[f * ${W}u + j];
      const float vf = j < ${K}u ? 0.f : sV[f * ${V}u + j - ${K}u];
#pragma unroll
      for (u32 p = 0; p < ${RI}u; ++p) acc[p][q] = fmaf(kf[p], vf, fmaf(uf[p], rf, acc[p][q]));
    }
  }
  float* end = END + (size_t)n * ${K * W}u;
#pragma unroll
  for (u32 p = 0; p < ${RI}u; ++p) {
    const u32 i = ib + 8u * p;
${decay === "none" ? "    const float di = 1.f;" : `    const float di = expf(${g(`${C}u`, "i")});`}
#pragma unroll
    for (u32 q = 0; q < ${CJ}u; ++q) {
      const u32 j = jb + 32u * q;
      end[i * ${W}u + j] = acc[p][q] + (j == i ? di : 0.f);
    }
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
  let source = LOWRANK_CORE_PRELUDE;
  for (const c of configs) {
    check(c);
    kernels.push({ ...c, op: "transitions", E: 1, P: 1, entry: lowRankCoreEntry(c), threads: LOWRANK_CORE_THREADS, sharedBytes: sharedFloats(c) * 4 });
    source += kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
