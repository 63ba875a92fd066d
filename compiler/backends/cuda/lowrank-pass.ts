/**
 * The low-rank chunked backward's walks over the chunks as one CUDA kernel (the torch target's delta-rule family:
 * runtime/torch/seqc_chunked_lowrank.py chunk_pass with LR_PASS "cuda", and the chunk-state backward's reverse walk,
 * runtime/torch/seqc_lowrank_wy.py; model-independent, so its module is <Model>.torch.json "kernels"."lowRankPass").
 *
 * Per row r (a batch row and head) over its nC chunks, with the chunk transitions A_c [K, K] and additive terms B_c
 * [K, V]:
 *
 *   dir "fwd"  S_{c+1} = A_c S_c + B_c      for c = 0 .. nC - 1 (the chunk start states: OUT[c] = S_c)
 *   dir "adj"  L_c = A_c^T L_{c+1} + B_c    for c = nC - 1 .. 0 (the end states' adjoints: OUT[c] = L_{c+1})
 *
 * from S_0 / L_nC = S0[r]; FIN[r] is the last value (S_nC / L_0). The torch glue runs this as nC batched products of
 * B x H small matrices, one launch each (33 at T = 2048, C = 64); here one block per row walks every chunk with the
 * state in shared memory: per chunk the transition goes to shared memory (as A^T for "fwd", as it is for "adj", so that
 * both read M[l][i] with new[i][j] = sum_l M[l][i] S[l][j] + B[i][j] in float4 rows), each thread owns 4 x 4 tiles of
 * the state, and the next chunk's transition is loaded into registers while this chunk's product runs. fp32 FMA.
 *
 * Tensors (float32): A rows of width wa (the transition in its first K columns: the glue's [B, H, nC, K, K + V]
 * transitions serve with wa = K + V), row-major [R, nC, K, wa]; Bp [R, nC, K, wb] likewise (B_c in its first V columns:
 * the transitions' own B_c with Bp = A + K and wb = K + V, or a separate [R, nC, K, V] tensor with wb = V); S0 [R, K, V];
 * OUT [R, nC, K, V]; FIN [R, K, V]. One block of LOWRANK_PASS_THREADS threads per row (blockIdx.x).
 *
 * Value-column groups (config G, entries ending _g<G>): the columns of S are independent walks (new[:, j] = M^T S[:, j] +
 * B[:, j]), so a (R, V / G) grid gives block (r, g) the columns g G .. g G + G - 1 of row r's state, with the whole
 * transition in its shared memory: V / G times the blocks where R = B * H is small (8 rows at (1, 32768, 8, 128) on
 * 132 SMs), each transition read V / G times. seqc_chunked_lowrank LR_PASS_COLS (default 0: whole rows) takes them.
 */
import { LOWRANK_CORE_PRELUDE } from "./lowrank-core.ts";

export type LowRankPassDir = "fwd" | "adj";

export interface LowRankPassConfig {
  dir: LowRankPassDir;
  K: number;
  V: number;
  /** Value columns a block (a divisor of V; absent: all V, one block a row). */
  G?: number;
}

export interface LowRankPassKernel extends LowRankPassConfig {
  op: "pass";
  entry: string;
  threads: number;
  sharedBytes: number;
}

export const LOWRANK_PASS_THREADS = 256;

/** The torch modules' configurations: both directions at K = V = 64 and at K = V = 128 (the issue's other two shapes:
 * 130 KB of shared memory, four 4 x 4 tiles a thread; without them the glue ran nC batched products there). */
export const LOWRANK_PASS_CONFIGS: readonly LowRankPassConfig[] = (["fwd", "adj"] as const).flatMap((dir) => [64, 128].map((K) => ({ dir, K, V: K })));

/** The value-column groups at K = V = 128 (G = 32: one 4 x 4 tile a thread, 83,968 bytes of shared memory; G = 16: half
 * the threads idle, 75,776 bytes), both directions; untimed: taken only with LR_PASS_COLS set (default 0). */
export const LOWRANK_PASS_COL_CONFIGS: readonly LowRankPassConfig[] = (["fwd", "adj"] as const).flatMap((dir) => [32, 16].map((G) => ({ dir, K: 128, V: 128, G })));

/** What the torch modules get: the whole-row walks, then the value-column groups. */
export const LOWRANK_PASS_MODULE_CONFIGS: readonly LowRankPassConfig[] = [...LOWRANK_PASS_CONFIGS, ...LOWRANK_PASS_COL_CONFIGS];

export function lowRankPassEntry(c: LowRankPassConfig): string {
  return `seqc_lr_pass_${c.dir}_k${c.K}v${c.V}${c.G !== undefined ? `_g${c.G}` : ""}`;
}

/** Shared floats: M [K][K + 4] (the transition, transposed for "fwd"), S [K][G] (G = V without groups). */
function sharedFloats(c: LowRankPassConfig): number {
  return c.K * (c.K + 4) + c.K * (c.G ?? c.V);
}

function check(c: LowRankPassConfig): void {
  if (c.K % 4 || c.V % 4 || c.K < 4 || c.V < 4) throw new Error(`lowrank-pass: K ${c.K} and V ${c.V} must be multiples of 4 (4 x 4 register tiles)`);
  if (c.G !== undefined && (c.G % 4 || c.G < 4 || c.V % c.G)) throw new Error(`lowrank-pass: G ${c.G} must be a multiple of 4 that divides V ${c.V}`);
  const tiles = (c.K / 4) * ((c.G ?? c.V) / 4);
  if (tiles > 4 * LOWRANK_PASS_THREADS) throw new Error(`lowrank-pass: K ${c.K}, V ${c.V} has ${tiles} tiles (> 4 a thread on ${LOWRANK_PASS_THREADS} threads)`);
  if (sharedFloats(c) * 4 > 227 * 1024) throw new Error(`lowrank-pass: K ${c.K}, V ${c.V} needs ${sharedFloats(c) * 4} bytes of shared memory (> 227 KiB)`);
}

function kernelSource(c: LowRankPassConfig): string {
  const { K, V, dir } = c;
  const g = c.G !== undefined, W = c.G ?? V; // a block's value columns, from j0 = blockIdx.y W
  const NT = LOWRANK_PASS_THREADS, LM = K + 4, VT = W / 4;
  const tiles = (K / 4) * VT, TPT = Math.ceil(tiles / NT);
  const AL = Math.ceil((K * K) / NT); // transition entries a thread loads
  const unroll = "#pragma unroll";
  // thread t's load x = t + q NT of A_c: row i = x / K, column l = x % K; stored at M[l][i] ("fwd": A^T) or M[i][l] ("adj")
  const mStore = dir === "fwd" ? "sM[(x % KK) * LM + x / KK]" : "sM[(x / KK) * LM + x % KK]";
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${lowRankPassEntry(c)}(const float* __restrict__ A, u32 wa, const float* __restrict__ Bp, u32 wb, const float* __restrict__ S0, float* __restrict__ OUT, float* __restrict__ FIN, u32 R, u32 nC) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  const u32 KK = ${K}u, LM = ${LM}u;
  float* sM = (float*)seqc_smem_raw;  // the transition [K][LM]: M[l][i]
  float* sS = sM + ${K * LM};          // the state [K][${g ? "G" : "V"}]
  const u32 r = blockIdx.x, t = threadIdx.x;
  if (r >= R) return;
${g ? `  const u32 j0 = blockIdx.y * ${W}u;  // this block's value columns j0 .. j0 + ${W - 1}
` : ""}  const float* a = A + (size_t)r * nC * KK * wa;
  const float* b = Bp + (size_t)r * nC * KK * wb${g ? " + j0" : ""};
  float* out = OUT + (size_t)r * nC * ${K * V}u${g ? " + j0" : ""};
${g ? `  for (u32 x = t; x < ${K * W}u; x += ${NT}u) sS[x] = S0[(size_t)r * ${K * V}u + (x / ${W}u) * ${V}u + j0 + x % ${W}u];`
  : `  for (u32 x = t; x < ${K * V}u; x += ${NT}u) sS[x] = S0[(size_t)r * ${K * V}u + x];`}
  float pre[${AL}];
  const u32 c0 = ${dir === "fwd" ? "0u" : "nC - 1u"};
${unroll}
  for (u32 q = 0; q < ${AL}u; ++q) { const u32 x = t + q * ${NT}u; pre[q] = x < ${K * K}u ? a[((size_t)c0 * KK + x / KK) * wa + x % KK] : 0.f; }
  __syncthreads();
  for (u32 s = 0; s < nC; ++s) {
    const u32 c = ${dir === "fwd" ? "s" : "nC - 1u - s"};
    // this chunk's transition into shared memory, the value before it out
${unroll}
    for (u32 q = 0; q < ${AL}u; ++q) { const u32 x = t + q * ${NT}u; if (x < ${K * K}u) ${mStore} = pre[q]; }
${g ? `    for (u32 x = t; x < ${(K * W) / 4}u; x += ${NT}u) *(float4*)&out[(size_t)c * ${K * V}u + (x / ${VT}u) * ${V}u + 4u * (x % ${VT}u)] = *(const float4*)&sS[4u * x];`
  : `    for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) *(float4*)&out[(size_t)c * ${K * V}u + 4u * x] = *(const float4*)&sS[4u * x];`}
    __syncthreads();
    if (s + 1u < nC) {  // the next chunk's transition into registers while this one's product runs
      const u32 cn = ${dir === "fwd" ? "c + 1u" : "c - 1u"};
${unroll}
      for (u32 q = 0; q < ${AL}u; ++q) { const u32 x = t + q * ${NT}u; if (x < ${K * K}u) pre[q] = a[((size_t)cn * KK + x / KK) * wa + x % KK]; }
    }
    float acc[${TPT}][4][4];
${unroll}
    for (u32 u = 0; u < ${TPT}u; ++u) {
      const u32 x = t + u * ${NT}u;
      if (x < ${tiles}u) {
        const u32 ti = x / ${VT}u, tj = x % ${VT}u;
${unroll}
        for (u32 p = 0; p < 4u; ++p) {
          const float4 b4 = *(const float4*)&b[((size_t)c * KK + 4u * ti + p) * wb + 4u * tj];
          acc[u][p][0] = b4.x; acc[u][p][1] = b4.y; acc[u][p][2] = b4.z; acc[u][p][3] = b4.w;
        }
        for (u32 l = 0; l < KK; ++l) {
          const float4 m4 = *(const float4*)&sM[l * LM + 4u * ti], s4 = *(const float4*)&sS[l * ${W}u + 4u * tj];
          const float mi[4] = {m4.x, m4.y, m4.z, m4.w}, sj[4] = {s4.x, s4.y, s4.z, s4.w};
${unroll}
          for (u32 p = 0; p < 4u; ++p)
${unroll}
            for (u32 j = 0; j < 4u; ++j) acc[u][p][j] = fmaf(mi[p], sj[j], acc[u][p][j]);
        }
      }
    }
    __syncthreads();
${unroll}
    for (u32 u = 0; u < ${TPT}u; ++u) {
      const u32 x = t + u * ${NT}u;
      if (x < ${tiles}u) {
        const u32 ti = x / ${VT}u, tj = x % ${VT}u;
${unroll}
        for (u32 p = 0; p < 4u; ++p) *(float4*)&sS[(4u * ti + p) * ${W}u + 4u * tj] = make_float4(acc[u][p][0], acc[u][p][1], acc[u][p][2], acc[u][p][3]);
      }
    }
    __syncthreads();
  }
${g ? `  for (u32 x = t; x < ${(K * W) / 4}u; x += ${NT}u) *(float4*)&FIN[(size_t)r * ${K * V}u + (x / ${VT}u) * ${V}u + j0 + 4u * (x % ${VT}u)] = *(const float4*)&sS[4u * x];`
  : `  for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) *(float4*)&FIN[(size_t)r * ${K * V}u + 4u * x] = *(const float4*)&sS[4u * x];`}
}
`;
}

/** The kernel module for these configurations (default LOWRANK_PASS_MODULE_CONFIGS), one translation unit. */
export function lowRankPassModule(configs: readonly LowRankPassConfig[] = LOWRANK_PASS_MODULE_CONFIGS, patch?: (src: string) => string): { source: string; kernels: LowRankPassKernel[] } {
  const kernels: LowRankPassKernel[] = [];
  let source = LOWRANK_CORE_PRELUDE.replace("low-rank chunk transitions", "low-rank chunk walks").replace("lowrank-core.ts", "lowrank-pass.ts");
  for (const c of configs) {
    check(c);
    kernels.push({ ...c, op: "pass", entry: lowRankPassEntry(c), threads: LOWRANK_PASS_THREADS, sharedBytes: sharedFloats(c) * 4 });
    source += kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
