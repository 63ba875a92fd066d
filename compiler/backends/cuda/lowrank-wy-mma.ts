/**
 * The chunk-state backward's "pre" kernel (lowrank-wy.ts) as a tensor-core twin (configurations with `math` "tf32" or
 * "tf32x3"; entries end in _tf32 / _tf32x3): the same products from the same float32 tensors,
 *
 *   P1[a, c] = exp(G_{a+1} - G_{c+1}) (q_a . u_c), c <= a;   BQ = P1^T dY;   BP = sum_a exp(G_{a+1}) q_a dy_a^T + XI^T BQ,
 *
 * by mma.sync m16n8k8 with TF32 operands and fp32 accumulators (lowrank-readout-mma.ts's helpers; "tf32x3" splits every
 * operand into a TF32 head and tail). Each product is a list of 16 x 8 output tiles that the 8 warps take in turn: P1's
 * tiles on or below the diagonal; BQ's row block c0.. reduces over a >= c0 only; BP's over the chunk's C steps twice.
 * Operands stay in their row layouts in shared memory: Q [C][K] (P1's A operand by ldmatrix; BP's transposed one by
 * 32-bit loads, each scaled by exp(G_{a+1})), U [C][K] (P1's B operand [n][k]), P1 [C][C] and XI [C][K] (transposed A
 * operands [k][m]), dY and BQ [C][V] (B operands [k][n]); rows padded 4 mod 32 ([m][k] and [n][k] reads) or 8 mod 32
 * ([k][m] and [k][n] reads) so the fragment reads are conflict-free (Q's transposed reads: two-way). The rows arrive by
 * 16-byte cp.async copies in two groups (Q and U, then dY and XI, in flight during P1), so every row must be 16-byte
 * aligned (strides multiples of 4 floats): seqc_chunked_lowrank's wy_launcher checks and takes the fp32 kernel otherwise.
 */
import type { LowRankWyConfig } from "./lowrank-wy.ts";
import { padStride, tf32Ops } from "./lowrank-readout-mma.ts";

export const WY_MMA_WARPS = 8;

/** Shared memory layout in floats. */
export function wyPreMmaLayout(c: LowRankWyConfig): { LQ: number; LP: number; LD: number; LX: number; floats: number } {
  const LQ = padStride(c.K, 4), LP = padStride(c.C, 8), LD = padStride(c.V, 8), LX = padStride(c.K, 8);
  return { LQ, LP, LD, LX, floats: 2 * c.C * LQ + c.C * LP + 2 * c.C * LD + c.C * LX + c.C + (c.C + 1) };
}

export function wyPreMmaCheck(c: LowRankWyConfig): void {
  if (c.C % 16 || c.K % 16 || c.V % 8 || c.C < 16)
    throw new Error(`lowrank-wy (${c.math}): C ${c.C} and K ${c.K} must be multiples of 16, V ${c.V} of 8 (16 x 8 tensor-core tiles)`);
  if (wyPreMmaLayout(c).floats * 4 > 227 * 1024) throw new Error(`lowrank-wy (${c.math}): C ${c.C}, K ${c.K}, V ${c.V} needs ${wyPreMmaLayout(c).floats * 4} bytes of shared memory (> 227 KiB)`);
}

export function wyPreMmaSource(c: LowRankWyConfig, entry: string): string {
  const { C, K, V, decay } = c;
  const dec = decay !== "none", NT = WY_MMA_WARPS * 32;
  const { LQ, LP, LD, LX } = wyPreMmaLayout(c);
  const { mma, fragA, fragAt, fragBnk, fragBkn } = tf32Ops(c.math === "tf32x3");
  const CT = C / 8, VT = V / 8;
  // a chunk's rows by 16-byte cp.async copies (rows 16-byte aligned: the launcher checks; w a multiple of 4)
  const rows = (dst: string, ld: number, src: string, stride: string, w: number) =>
    `  for (u32 x = t; x < ${(C * w) / 4}u; x += ${NT}u) { const u32 a = x / ${w / 4}u, i = 4u * (x % ${w / 4}u); seqc_cp16(&${dst}[a * ${ld}u + i], &${src}[((size_t)n * ${C}u + a) * ${stride} + i]); }\n`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 2) ${entry}(const float* __restrict__ Q, u32 qs, const float* __restrict__ U, u32 us, const float* __restrict__ DY, const float* __restrict__ XI, u32 xs, const float* __restrict__ Gg, float* __restrict__ BQ, float* __restrict__ BP, u32 N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sQ = (float*)seqc_smem_raw;  // Q [C][LQ]
  float* sU = sQ + ${C * LQ};         // U [C][LQ]
  float* sP = sU + ${C * LQ};         // P1 [C][LP]
  float* sD = sP + ${C * LP};         // dY [C][LD]
  float* sB = sD + ${C * LD};         // BQ [C][LD]
  float* sX = sB + ${C * LD};         // XI [C][LX]
  float* sE = sX + ${C * LX};         // exp(G_{a+1}) [C]
  float* sG = sE + ${C};              // G [C + 1]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
${rows("sQ", LQ, "Q", "qs", K)}${rows("sU", LQ, "U", "us", K)}  seqc_cp_commit();
${rows("sD", LD, "DY", `${V}u`, V)}${rows("sX", LX, "XI", "xs", K)}  seqc_cp_commit();
${dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n  __syncthreads();\n  for (u32 x = t; x < ${C}u; x += ${NT}u) sE[x] = expf(sG[x + 1u]);\n` : `  for (u32 x = t; x < ${C}u; x += ${NT}u) sE[x] = 1.f;\n`}  seqc_cp_wait<1>();  // Q and U (dY and XI still in flight during P1)
  __syncthreads();
  // P1: tiles (rows a0.., columns c0..) on or below the diagonal (c0 <= a0 + 15), masked c <= a and decayed
  for (u32 x = w; x < ${(C / 16) * CT}u; x += ${WY_MMA_WARPS}u) {
    const u32 a0 = 16u * (x / ${CT}u), c0 = 8u * (x % ${CT}u);
    if (c0 > a0 + 15u) continue;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (u32 ks = 0; ks < ${K / 8}u; ++ks) {
${fragA("      ", "fa", "sQ", LQ, "a0", "8u * ks")}${fragBnk("      ", "fb", "sU", LQ, "c0", "8u * ks")}${mma("      ", "acc", "fa", "fb")}    }
${"#pragma unroll"}
    for (u32 r = 0; r < 4u; ++r) {
      const u32 a = a0 + g + 8u * (r >> 1u), cc = c0 + 2u * tg + (r & 1u);
${dec ? `      sP[a * ${LP}u + cc] = cc < a + 1u ? acc[r] * expf(sG[a + 1u] - sG[cc + 1u]) : 0.f;` : `      sP[a * ${LP}u + cc] = cc < a + 1u ? acc[r] : 0.f;`}
    }
  }
  seqc_cp_wait<0>();
  __syncthreads();
  // BQ = P1^T dY: rows c0.. (16), columns j0.. (8), over a >= c0
  for (u32 x = w; x < ${(C / 16) * VT}u; x += ${WY_MMA_WARPS}u) {
    const u32 c0 = 16u * (x / ${VT}u), j0 = 8u * (x % ${VT}u);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (u32 ks = c0 / 8u; ks < ${CT}u; ++ks) {
${fragAt("      ", "fa", "sP", LP, "c0", "8u * ks")}${fragBkn("      ", "fb", "sD", LD, "j0", "8u * ks")}${mma("      ", "acc", "fa", "fb")}    }
    const u32 c = c0 + g, j = j0 + 2u * tg;
    sB[c * ${LD}u + j] = acc[0]; sB[c * ${LD}u + j + 1u] = acc[1]; sB[(c + 8u) * ${LD}u + j] = acc[2]; sB[(c + 8u) * ${LD}u + j + 1u] = acc[3];
    *(float2*)&BQ[((size_t)n * ${C}u + c) * ${V}u + j] = make_float2(acc[0], acc[1]);
    *(float2*)&BQ[((size_t)n * ${C}u + c + 8u) * ${V}u + j] = make_float2(acc[2], acc[3]);
  }
  __syncthreads();
  // BP = (exp(G_{a+1}) Q)^T dY + XI^T BQ: rows i0.. (16), columns j0.. (8), over the chunk's steps
  for (u32 x = w; x < ${(K / 16) * VT}u; x += ${WY_MMA_WARPS}u) {
    const u32 i0 = 16u * (x / ${VT}u), j0 = 8u * (x % ${VT}u);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (u32 ks = 0; ks < ${CT}u; ++ks) {
${fragAt("      ", "fa", "sQ", LQ, "i0", "8u * ks", (k) => `sE[${k}]`)}${fragBkn("      ", "fb", "sD", LD, "j0", "8u * ks")}${mma("      ", "acc", "fa", "fb")}    }
    for (u32 ks = 0; ks < ${CT}u; ++ks) {
${fragAt("      ", "fa", "sX", LX, "i0", "8u * ks")}${fragBkn("      ", "fb", "sB", LD, "j0", "8u * ks")}${mma("      ", "acc", "fa", "fb")}    }
    const u32 i = i0 + g, j = j0 + 2u * tg;
    *(float2*)&BP[((size_t)n * ${K}u + i) * ${V}u + j] = make_float2(acc[0], acc[1]);
    *(float2*)&BP[((size_t)n * ${K}u + i + 8u) * ${V}u + j] = make_float2(acc[2], acc[3]);
  }
}
`;
}
