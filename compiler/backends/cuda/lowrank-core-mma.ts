/**
 * The low-rank chunk transitions kernel's tensor-core twin (lowrank-core.ts, configurations with `math` "tf32" or
 * "tf32x3"; entries end in _tf32 / _tf32x3): the same reads r and end state S_C from the same float32 tensors (see
 * there), its three products by mma.sync m16n8k8 with TF32 operands and fp32 accumulators (lowrank-readout-mma.ts's
 * helpers; "tf32x3" splits every operand into a TF32 head and tail) instead of fp32 FMAs on the SIMT cores. No or a
 * scalar decay (the per-key decay sits inside the scores' reduction: no twin).
 *
 * Per chunk (a block of 8 warps):
 *   scores   A_u = W U^T and A_k = W K^T [C, C]: the 16 x 8 tiles on or below the diagonal of both (2 RB (RB + 1) with
 *            RB = C / 16), taken by the warps in turn; masked (c < a) and decayed (exp(G_a - G_{c+1})) in registers, stored
 *            over U and K by rows once every warp has read them;
 *   rhs      [exp(G_a) w_a | A_k v]: the right block's 16 x 8 tiles (row block rb reduces over the steps up to its last);
 *   solve    (I - A_u) r = rhs in fp32 FMAs, one column a thread, as the fp32 kernel (blocks of 16 rows);
 *   end      S_C = exp(G_C) [I | 0] + Ud^T r + Kd^T [0 | v] (Ud, Kd: u, k decayed to the chunk's end, read again from
 *            global memory over A_u and A_k): K / 16 x W / 8 tiles taken in turn, written from the accumulators.
 * Shared memory holds U, K [C][LU] (4 mod 32: the scores' B operands [n][k]; the end's transposed A operands [k][m]
 * read two-way), A_u, A_k [C][LA] (4 mod 32, A operands by ldmatrix), v [C][LV] and the right-hand sides / reads
 * [C][LR] (8 mod 32, B operands [k][n]; w in r's first K columns at first, the scores' A operand by ldmatrix), G [C + 1].
 * At C = K = V = 64: 88.3 KB (two blocks an SM).
 */
import type { LowRankCoreConfig } from "./lowrank-core.ts";
import { padStride, tf32Ops } from "./lowrank-readout-mma.ts";
import { unitLowerSolveSource } from "./lowrank-solve.ts";

export const CORE_MMA_WARPS = 8;

/** Shared memory layout in floats. */
export function coreMmaLayout(c: LowRankCoreConfig): { LU: number; LA: number; LV: number; LR: number; slot: number; floats: number } {
  const LU = padStride(c.K, 4), LA = padStride(c.C, 4), LV = padStride(c.V, 8), LR = padStride(c.K + c.V, 8);
  const slot = Math.max(c.C * LU, c.C * LA);
  return { LU, LA, LV, LR, slot, floats: 2 * slot + c.C * LV + c.C * LR + (c.decay === "none" ? 0 : c.C + 1) };
}

export function coreMmaCheck(c: LowRankCoreConfig): void {
  if (c.decay === "key") throw new Error(`lowrank-core (${c.math}): no tensor-core twin with a per-key decay`);
  if (c.C % 16 || c.C < 16 || c.C > 64 || c.K % 16 || c.V % 8)
    throw new Error(`lowrank-core (${c.math}): C ${c.C} must be one of 16, 32, 48, 64, K ${c.K} a multiple of 16 and V ${c.V} of 8 (16 x 8 tensor-core tiles)`);
  if (coreMmaLayout(c).floats * 4 > 227 * 1024) throw new Error(`lowrank-core (${c.math}): C ${c.C}, K ${c.K}, V ${c.V} needs ${coreMmaLayout(c).floats * 4} bytes of shared memory (> 227 KiB)`);
}

export function coreMmaSource(c: LowRankCoreConfig, entry: string): string {
  const { C, K, V, decay } = c;
  const W = K + V, NT = CORE_MMA_WARPS * 32, dec = decay !== "none";
  const { LU, LA, LV, LR, slot } = coreMmaLayout(c);
  const { mma, fragA, fragAt, fragBnk, fragBkn } = tf32Ops(c.math === "tf32x3");
  const RB = C / 16, T1 = RB * (RB + 1), TS = Math.ceil((2 * T1) / CORE_MMA_WARPS);
  const TR = Math.ceil((RB * (V / 8)) / CORE_MMA_WARPS), TE = Math.ceil(((K / 16) * (W / 8)) / CORE_MMA_WARPS);
  const unroll = "#pragma unroll";
  // warp w's j-th score tile tt (A_u's T1 lower tiles, then A_k's): row block rb, column tile ct <= 2 rb + 1, first row a0
  const scoreTile = `    const u32 tt = w + ${CORE_MMA_WARPS}u * j;
    if (tt < ${2 * T1}u) {
      const u32 ti = tt < ${T1}u ? tt : tt - ${T1}u;
      u32 rb = 0;
      while ((rb + 1u) * (rb + 2u) <= ti) ++rb;
      const u32 ct = ti - rb * (rb + 1u), a0 = 16u * rb;
`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 2) ${entry}(const float* __restrict__ KK, const float* __restrict__ Wq, float* __restrict__ VV, const float* __restrict__ Gg, float* __restrict__ END, u32 N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sU = (float*)seqc_smem_raw;  // u [C][LU] -> A_u [C][LA] -> decayed u [C][LU]
  float* sK = sU + ${slot};           // k [C][LU] -> A_k [C][LA] -> decayed k [C][LU]
  float* sV = sK + ${slot};           // v [C][LV]
  float* sR = sV + ${C * LV};         // w [C][K] in the first K columns -> right-hand sides -> reads r [C][LR]
  float* sG = sR + ${C * LR};         // G [C + 1]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
  const float* kk = KK + (size_t)n * ${C * 2 * K}u;
  const float* wq = Wq + (size_t)n * ${C * K}u;
  float* vv = VV + (size_t)n * ${C * 2 * W}u;
  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 c = x / ${K / 4}u, c4 = 4u * (x % ${K / 4}u);
    seqc_cp16(&sU[c * ${LU}u + c4], &kk[(c * 2u) * ${K}u + c4]);
    seqc_cp16(&sK[c * ${LU}u + c4], &kk[(c * 2u + 1u) * ${K}u + c4]);
    seqc_cp16(&sR[c * ${LR}u + c4], &wq[c * ${K}u + c4]);
  }
  for (u32 x = t; x < ${(C * V) / 4}u; x += ${NT}u) {
    const u32 c = x / ${V / 4}u, c4 = 4u * (x % ${V / 4}u);
    seqc_cp16(&sV[c * ${LV}u + c4], &vv[(c * 2u + 1u) * ${W}u + ${K}u + c4]);
  }
  seqc_cp_commit();
${dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n` : ""}  seqc_cp_wait<0>();
  __syncthreads();
  // scores: tile tt of ${2 * T1} (A_u's ${T1} lower tiles, then A_k's), row block rb, column tile ct <= 2 rb + 1
  float sc[${TS}][4];
${unroll}
  for (u32 j = 0; j < ${TS}u; ++j) {
    sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
${scoreTile}      const float* X = tt < ${T1}u ? sU : sK;
${unroll} 2
      for (u32 ks = 0; ks < ${K / 8}u; ++ks) {
${fragA("        ", "fa", "sR", LR, "a0", "8u * ks")}${fragBnk("        ", "fb", "X", LU, "8u * ct", "8u * ks")}${mma("        ", "sc[j]", "fa", "fb")}      }
${unroll}
      for (u32 r = 0; r < 4u; ++r) {
        const u32 a = a0 + g + 8u * (r >> 1u), cc = 8u * ct + 2u * tg + (r & 1u);
${dec ? `        sc[j][r] *= cc < a ? expf(sG[a] - sG[cc + 1u]) : 0.f;` : `        sc[j][r] = cc < a ? sc[j][r] : 0.f;`}
      }
    }
  }
  __syncthreads();
${unroll}
  for (u32 j = 0; j < ${TS}u; ++j) {
${scoreTile}      float* X = tt < ${T1}u ? sU : sK;
      *(float2*)&X[(a0 + g) * ${LA}u + 8u * ct + 2u * tg] = make_float2(sc[j][0], sc[j][1]);
      *(float2*)&X[(a0 + g + 8u) * ${LA}u + 8u * ct + 2u * tg] = make_float2(sc[j][2], sc[j][3]);
    }
  }
  // A_u, A_k above the stored tiles (column tiles past 2 rb + 1) are never read: the solve and rhs stop at the block's last step
${dec ? `  for (u32 x = t; x < ${C * K}u; x += ${NT}u) {
    const u32 a = x / ${K}u, i = x % ${K}u;
    sR[a * ${LR}u + i] *= expf(sG[a]);
  }
` : ""}  __syncthreads();
  // right-hand sides' last V columns: A_k v, row block rb over the steps up to its last
${unroll} 1
  for (u32 j = 0; j < ${TR}u; ++j) {
    const u32 tt = w + ${CORE_MMA_WARPS}u * j;
    if (tt < ${RB * (V / 8)}u) {
      const u32 rb = tt / ${V / 8}u, ct = tt % ${V / 8}u, a0 = 16u * rb;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      for (u32 ks = 0; ks < 2u * (rb + 1u); ++ks) {
${fragA("        ", "fa", "sK", LA, "a0", "8u * ks")}${fragBkn("        ", "fb", "sV", LV, "8u * ct", "8u * ks")}${mma("        ", "acc", "fa", "fb")}      }
      *(float2*)&sR[(a0 + g) * ${LR}u + ${K}u + 8u * ct + 2u * tg] = make_float2(acc[0], acc[1]);
      *(float2*)&sR[(a0 + g + 8u) * ${LR}u + ${K}u + 8u * ct + 2u * tg] = make_float2(acc[2], acc[3]);
    }
  }
  __syncthreads();
  // the unit-lower solve (I - A_u) r = rhs in fp32, one column a thread: blocks of 16 rows, each gets the earlier
  // blocks' reads (a register-blocked product) and then its diagonal block's forward substitution in registers
${unitLowerSolveSource({ C, W, NT, LR, LA, load4: (p) => `*(const float4*)&${p}` })}  __syncthreads();
  for (u32 x = t; x < ${(C * W) / 4}u; x += ${NT}u) {
    const u32 c = x / ${W / 4}u, c4 = 4u * (x % ${W / 4}u);
    *(float4*)&vv[(c * 2u) * ${W}u + c4] = *(const float4*)&sR[c * ${LR}u + c4];
  }
  // the events decayed to the chunk's end (exp(G_C - G_{f+1})), by rows, over A_u and A_k
  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 f = x / ${K / 4}u, c4 = 4u * (x % ${K / 4}u);
    float4 u4 = *(const float4*)&kk[(f * 2u) * ${K}u + c4], k4 = *(const float4*)&kk[(f * 2u + 1u) * ${K}u + c4];
${dec ? `    const float d = expf(sG[${C}u] - sG[f + 1u]);
    u4.x *= d; u4.y *= d; u4.z *= d; u4.w *= d;
    k4.x *= d; k4.y *= d; k4.z *= d; k4.w *= d;
` : ""}    *(float4*)&sU[f * ${LU}u + c4] = u4;
    *(float4*)&sK[f * ${LU}u + c4] = k4;
  }
  __syncthreads();
  // the end state: tile tt of ${(K / 16) * (W / 8)} (row block mi of the keys, column tile nj), Ud^T r, + Kd^T v in the last V columns
  float* end = END + (size_t)n * ${K * W}u;
${dec ? `  const float dC = expf(sG[${C}u]);\n` : `  const float dC = 1.f;\n`}${unroll} 1
  for (u32 j = 0; j < ${TE}u; ++j) {
    const u32 tt = w + ${CORE_MMA_WARPS}u * j;
    if (tt < ${(K / 16) * (W / 8)}u) {
      const u32 m0 = 16u * (tt / ${W / 8}u), nj = tt % ${W / 8}u;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
${unroll} 2
      for (u32 ks = 0; ks < ${C / 8}u; ++ks) {
${fragAt("        ", "fa", "sU", LU, "m0", "8u * ks")}${fragBkn("        ", "fb", "sR", LR, "8u * nj", "8u * ks")}${mma("        ", "acc", "fa", "fb")}      }
      if (nj >= ${K / 8}u) {
${unroll} 2
        for (u32 ks = 0; ks < ${C / 8}u; ++ks) {
${fragAt("          ", "fa", "sK", LU, "m0", "8u * ks")}${fragBkn("          ", "fb", "sV", LV, `8u * (nj - ${K / 8}u)`, "8u * ks")}${mma("          ", "acc", "fa", "fb")}        }
      }
${unroll}
      for (u32 r = 0; r < 4u; ++r) {
        const u32 i = m0 + g + 8u * (r >> 1u), jj = 8u * nj + 2u * tg + (r & 1u);
        if (jj == i) acc[r] += dC;
      }
      *(float2*)&end[(m0 + g) * ${W}u + 8u * nj + 2u * tg] = make_float2(acc[0], acc[1]);
      *(float2*)&end[(m0 + g + 8u) * ${W}u + 8u * nj + 2u * tg] = make_float2(acc[2], acc[3]);
    }
  }
}
`;
}
