/**
 * The chunk-state backward's "dr" kernel (lowrank-wy.ts) as a tensor-core twin (configurations with op "dr" and `math`
 * "tf32" or "tf32x3"; entries end in _tf32 / _tf32x3): the same result from the same float32 tensors,
 *
 *   Luu[a, c] = exp(G_a - G_{c+1}) (w_a . u_c), c < a;   rhs_c = BQ_c + exp(G_C - G_{c+1}) L^T u_c;   (I - Luu^T) DR = rhs,
 *
 * by mma.sync m16n8k8 with TF32 operands and fp32 accumulators (lowrank-readout-mma.ts's helpers; "tf32x3" splits every
 * operand into a TF32 head and tail). W and U arrive by 16-byte cp.async copies, then L (in flight while Luu's 16 x 8
 * tiles on or below the diagonal run), then rhs's tiles (U L, [C][V]); the 8 warps take each list's tiles in turn. Every
 * row must be 16-byte aligned (strides multiples of 4 floats): seqc_chunked_lowrank's wy_launcher checks and takes the
 * fp32 kernel otherwise. The back substitution runs in blocks of 16 steps from the chunk's last block: the
 * block's own triangle on the SIMT cores in fp32 (one value column a thread, as the fp32 kernel's whole solve), then the
 * earlier rows' right-hand sides take the block's part, rhs[c0..] += Luu[block, c0..]^T DR[block], as m16n8k8 products
 * (16 x 8 tiles over the earlier rows, 16 steps deep). The fp32 kernel's solve is one 63-step chain of shared loads a
 * column; here each chain is 15 steps long, the rest on the tensor cores.
 *
 * Operands in their row layouts in shared memory: W, U [C][LQ] (Luu's A by ldmatrix and B [n][k]; rhs's A by
 * ldmatrix), L [K][LD] (rhs's B [k][n]), Luu [C][LP] (the update's transposed A [k][m]; the triangle's broadcast reads),
 * rhs / DR [C][LD]; rows padded 4 mod 32 ([m][k] and [n][k] reads) or 8 mod 32 ([k][m] and [k][n] reads). Written in
 * its own file beside lowrank-wy-mma.ts (the "pre" twin) so that a K = 64 "dr" twin elsewhere does not collide; the
 * torch modules ship it at K = V = 128 (lowrank-wy.ts LOWRANK_WY_MMA_CONFIGS).
 */
import type { LowRankWyConfig } from "./lowrank-wy.ts";
import { padStride, tf32Ops } from "./lowrank-readout-mma.ts";

export const WY_DR_MMA_WARPS = 8;

/** Shared memory layout in floats. */
export function wyDrMmaLayout(c: LowRankWyConfig): { LQ: number; LP: number; LD: number; floats: number } {
  const LQ = padStride(c.K, 4), LP = padStride(c.C, 8), LD = padStride(c.V, 8);
  return { LQ, LP, LD, floats: 2 * c.C * LQ + c.C * LP + c.K * LD + c.C * LD + (c.C + 1) };
}

export function wyDrMmaCheck(c: LowRankWyConfig): void {
  if (c.C % 16 || c.K % 16 || c.V % 8 || c.C < 16)
    throw new Error(`lowrank-wy dr (${c.math}): C ${c.C} and K ${c.K} must be multiples of 16, V ${c.V} of 8 (16 x 8 tensor-core tiles)`);
  if (c.V > WY_DR_MMA_WARPS * 32) throw new Error(`lowrank-wy dr (${c.math}): V ${c.V} > ${WY_DR_MMA_WARPS * 32} (the blocks' triangles take one value column a thread)`);
  if (wyDrMmaLayout(c).floats * 4 > 227 * 1024) throw new Error(`lowrank-wy dr (${c.math}): C ${c.C}, K ${c.K}, V ${c.V} needs ${wyDrMmaLayout(c).floats * 4} bytes of shared memory (> 227 KiB)`);
}

export function wyDrMmaSource(c: LowRankWyConfig, entry: string): string {
  const { C, K, V, decay } = c;
  const dec = decay !== "none", NT = WY_DR_MMA_WARPS * 32, NW = WY_DR_MMA_WARPS;
  const { LQ, LP, LD } = wyDrMmaLayout(c);
  const { mma, fragA, fragAt, fragBnk, fragBkn } = tf32Ops(c.math === "tf32x3");
  const CT = C / 8, VT = V / 8, nLuu = (C / 16) * CT, nRhs = (C / 16) * VT;
  const unroll = "#pragma unroll";
  // R rows of w floats by 16-byte cp.async copies (rows 16-byte aligned: the launcher checks; w a multiple of 4)
  const rows = (dst: string, ld: number, src: string, stride: string, R: number, w: number) =>
    `  for (u32 x = t; x < ${(R * w) / 4}u; x += ${NT}u) { const u32 a = x / ${w / 4}u, i = 4u * (x % ${w / 4}u); seqc_cp16(&${dst}[a * ${ld}u + i], &${src}[((size_t)n * ${R}u + a) * ${stride} + i]); }\n`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 1) ${entry}(const float* __restrict__ W, u32 ws, const float* __restrict__ U, u32 us, const float* __restrict__ BQ, const float* __restrict__ L, const float* __restrict__ Gg, float* __restrict__ DR, u32 N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sW = (float*)seqc_smem_raw;  // W [C][LQ]
  float* sU = sW + ${C * LQ};         // U [C][LQ]
  float* sA = sU + ${C * LQ};         // Luu [C][LP]
  float* sL = sA + ${C * LP};         // L [K][LD]
  float* sR = sL + ${K * LD};         // rhs, then DR [C][LD]
  float* sG = sR + ${C * LD};         // G [C + 1]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const u32 w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
${rows("sW", LQ, "W", "ws", C, K)}${rows("sU", LQ, "U", "us", C, K)}  seqc_cp_commit();
${rows("sL", LD, "L", `${V}u`, K, V)}  seqc_cp_commit();
${dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n` : ""}  seqc_cp_wait<1>();  // W and U (L still in flight during Luu)
  __syncthreads();
  // Luu's tiles (rows a0.., columns c0..) on or below the diagonal, masked c < a and decayed
  for (u32 x = w; x < ${nLuu}u; x += ${NW}u) {
    const u32 a0 = 16u * (x / ${CT}u), c0 = 8u * (x % ${CT}u);
    if (c0 > a0 + 15u) continue;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (u32 ks = 0; ks < ${K / 8}u; ++ks) {
${fragA("      ", "fa", "sW", LQ, "a0", "8u * ks")}${fragBnk("      ", "fb", "sU", LQ, "c0", "8u * ks")}${mma("      ", "acc", "fa", "fb")}    }
${unroll}
    for (u32 r = 0; r < 4u; ++r) {
      const u32 a = a0 + g + 8u * (r >> 1u), cc = c0 + 2u * tg + (r & 1u);
${dec ? `      sA[a * ${LP}u + cc] = cc < a ? acc[r] * expf(sG[a] - sG[cc + 1u]) : 0.f;` : `      sA[a * ${LP}u + cc] = cc < a ? acc[r] : 0.f;`}
    }
  }
  seqc_cp_wait<0>();
  __syncthreads();
  // rhs's tiles: rows c0.. (16), columns j0.. (8)
  for (u32 x = w; x < ${nRhs}u; x += ${NW}u) {
    const u32 c0 = 16u * (x / ${VT}u), j0 = 8u * (x % ${VT}u);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (u32 ks = 0; ks < ${K / 8}u; ++ks) {
${fragA("      ", "fa", "sU", LQ, "c0", "8u * ks")}${fragBkn("      ", "fb", "sL", LD, "j0", "8u * ks")}${mma("      ", "acc", "fa", "fb")}    }
${unroll}
    for (u32 h = 0; h < 2u; ++h) {
      const u32 cc = c0 + g + 8u * h, j = j0 + 2u * tg;
      const float e = ${dec ? `expf(sG[${C}u] - sG[cc + 1u])` : "1.f"};
      const float2 b = *(const float2*)&BQ[((size_t)n * ${C}u + cc) * ${V}u + j];
      sR[cc * ${LD}u + j] = fmaf(e, acc[2u * h], b.x);
      sR[cc * ${LD}u + j + 1u] = fmaf(e, acc[2u * h + 1u], b.y);
    }
  }
  __syncthreads();
  // (I - Luu^T) DR = rhs in blocks of 16 steps from the last: the block's triangle (one value column a thread), then the
  // earlier rows' right-hand sides take the block's DR rows by the tensor cores
  for (u32 b = ${C / 16}u; b-- > 0u;) {
    const u32 r0 = 16u * b;
    if (t < ${V}u) {
      float d[16];
${unroll}
      for (u32 i = 0; i < 16u; ++i) d[i] = sR[(r0 + i) * ${LD}u + t];
${unroll}
      for (u32 i = 15u; i-- > 0u;) {
        float s = d[i];
${unroll}
        for (u32 a = i + 1u; a < 16u; ++a) s = fmaf(sA[(r0 + a) * ${LP}u + r0 + i], d[a], s);
        d[i] = s;
      }
${unroll}
      for (u32 i = 0; i < 15u; ++i) sR[(r0 + i) * ${LD}u + t] = d[i];
    }
    __syncthreads();
    // rows c0.. (16) below r0, columns j0.. (8): rhs[c][j] += sum_{a in the block} Luu[a, c] DR[a][j]
    for (u32 x = w; x < b * ${VT}u; x += ${NW}u) {
      const u32 c0 = 16u * (x / ${VT}u), j0 = 8u * (x % ${VT}u), c = c0 + g, j = j0 + 2u * tg;
      float acc[4] = {sR[c * ${LD}u + j], sR[c * ${LD}u + j + 1u], sR[(c + 8u) * ${LD}u + j], sR[(c + 8u) * ${LD}u + j + 1u]};
${unroll}
      for (u32 ks = 0; ks < 2u; ++ks) {
${fragAt("        ", "fa", "sA", LP, "c0", "r0 + 8u * ks")}${fragBkn("        ", "fb", "sR", LD, "j0", "r0 + 8u * ks")}${mma("        ", "acc", "fa", "fb")}      }
      sR[c * ${LD}u + j] = acc[0]; sR[c * ${LD}u + j + 1u] = acc[1]; sR[(c + 8u) * ${LD}u + j] = acc[2]; sR[(c + 8u) * ${LD}u + j + 1u] = acc[3];
    }
    __syncthreads();
  }
  for (u32 x = t; x < ${(C * V) / 4}u; x += ${NT}u) {
    const u32 a = x / ${V / 4}u, j = 4u * (x % ${V / 4}u);
    *(float4*)&DR[((size_t)n * ${C}u + a) * ${V}u + j] = *(const float4*)&sR[a * ${LD}u + j];
  }
}
`;
}
