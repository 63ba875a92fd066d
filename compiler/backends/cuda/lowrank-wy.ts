/**
 * The chunk-state backward's per-chunk products (runtime/torch/seqc_lowrank_wy.py, LR_BWD "wy"; the torch target's
 * delta-rule family, LR_FUSED_WY "cuda") as two CUDA kernels per chunk, one low-rank pair (u, w) and one readout (q) a
 * step, no or a scalar log decay (G_t the chunk's first t log decays summed, G_0 = 0; slots a = 0..C-1 are steps a + 1):
 *
 *   "pre" (before the reverse walk):
 *     P1[a, c] = exp(G_{a+1} - G_{c+1}) (q_a . u_c)  for c <= a         (the readouts' scores against the low-rank keys)
 *     BQ[c]    = sum_a P1[a, c] dy_a                                    (P1_u^T dY, [C, V])
 *     BP       = sum_a exp(G_{a+1}) q_a dy_a^T + sum_c xI_c BQ_c^T        (B'_c, [K, V]: the walk's additive term)
 *   "dr" (after it, from the chunk end's adjoint L [K, V]):
 *     Luu[a, c] = exp(G_a - G_{c+1}) (w_a . u_c)      for c < a
 *     rhs_c     = BQ_c + exp(G_C - G_{c+1}) L^T u_c
 *     DR        : (I - Luu^T) DR = rhs, back substitution from the chunk's last step, one value column a thread
 *
 * The torch ops did these as eight batched cuBLAS products on 64 x 64 blocks, two masks and the solve's block steps.
 * Here each kernel keeps a chunk's operands in shared memory and runs 4 x 4 register tiles with fp32 FMA. Every exponent is
 * a difference G_a - G_b with a >= b, or G_{a+1} <= 0.
 *
 * Tensors (float32): rows of the [N, C, ...] tensors the glue holds, each with its own row stride in floats (a chunk is
 * C rows): Q (qs), U (us: ChunkCore's keys, slot 0 of [N, C, 2, K]), DY (ds in the fp32 "pre", V in its twin), XI (xs: the transitions' reads from
 * [I | 0], the first K columns of slot 0 of [N, C, 2, K + V]), W (ws); G [N, C + 1] (unused without a decay); L [N, K,
 * V]; outputs BQ [N, C, V], BP [N, K, V], DR [N, C, V]. One block of LOWRANK_WY_THREADS threads per chunk.
 */
import { LOWRANK_CORE_PRELUDE } from "./lowrank-core.ts";
import { MMA_TF32_PRELUDE, type LowRankReadMath } from "./lowrank-readout-mma.ts";
import { wyDrMmaCheck, wyDrMmaLayout, wyDrMmaSource } from "./lowrank-wy-dr-mma.ts";
import { wyPreMmaCheck, wyPreMmaLayout, wyPreMmaSource } from "./lowrank-wy-mma.ts";
import { maskedRows, outer, tiles } from "./register-tiles.ts";

export type LowRankWyDecay = "none" | "scalar";
export type LowRankWyOp = "pre" | "dr";

export interface LowRankWyConfig {
  op: LowRankWyOp;
  decay: LowRankWyDecay;
  C: number;
  K: number;
  V: number;
  /** fp32 FMAs on the SIMT cores (absent) or the tensor-core twins ("pre": lowrank-wy-mma.ts, "dr": lowrank-wy-dr-mma.ts):
   * "tf32" / "tf32x3" (entries end in _tf32 / _tf32x3; seqc_chunked_lowrank LR_WY_MMA at K = 64, LR_WY_MMA_K128 wider,
   * for bf16 tensors). */
  math?: LowRankReadMath;
}

export interface LowRankWyKernel extends LowRankWyConfig {
  entry: string;
  /** "pre" reads DY's rows with a stride of its own (argument ds after DY; the fp32 kernels; seqc_chunked_lowrank
   * LR_EV_LINES: dY a slot of wy's event stack). Absent: DY contiguous, no ds argument (the twins, older modules). */
  dyStride?: boolean;
  threads: number;
  sharedBytes: number;
}

export const LOWRANK_WY_THREADS = 256;

/** The torch modules' configurations: both ops at C = 64 for each decay mode, K = V = 64 and K = V = 128 (the issue's
 * other two shapes: 185,604 bytes of shared memory for either op, one block an SM). The K = 128 kernels are untimed:
 * seqc_chunked_lowrank's wy_launcher takes them only with LR_WY_K128 "on" (default "off": the torch products, as before). */
export const LOWRANK_WY_FP32_CONFIGS: readonly LowRankWyConfig[] = (["none", "scalar"] as const).flatMap((decay) =>
  [64, 128].flatMap((K) => (["pre", "dr"] as const).map((op) => ({ op, decay, C: 64, K, V: K }))));

/** The tensor-core twins (TF32), untimed: "pre" at K = V = 64 (LR_WY_MMA, off by default), then "pre" and "dr" at
 * K = V = 128 (LR_WY_MMA_K128, off by default; 190,980 / 190,724 bytes of shared memory, one block an SM). */
export const LOWRANK_WY_MMA_CONFIGS: readonly LowRankWyConfig[] = [
  ...LOWRANK_WY_FP32_CONFIGS.filter((c) => c.op === "pre" && c.K === 64),
  ...LOWRANK_WY_FP32_CONFIGS.filter((c) => c.K === 128),
].map((c) => ({ ...c, math: "tf32" as const }));

/** What the torch modules get: the fp32 kernels, then the twins. */
export const LOWRANK_WY_CONFIGS: readonly LowRankWyConfig[] = [...LOWRANK_WY_FP32_CONFIGS, ...LOWRANK_WY_MMA_CONFIGS];

export function lowRankWyEntry(c: LowRankWyConfig): string {
  return `seqc_lr_wy_${c.op}_${c.decay}_c${c.C}k${c.K}v${c.V}${c.math ? `_${c.math}` : ""}`;
}

/** Shared floats. pre: Q^T, U^T [K][LC], P1 [C][LC], DY, BQ [C][V], XI [C][K], G [C + 1]; dr: W^T, U^T [K][LC], Luu
 * [C][LC], L [K][V], rhs / DR [C][V], G. */
function sharedFloats(c: LowRankWyConfig): number {
  const LC = c.C + 4;
  return c.op === "pre" ? 2 * c.K * LC + c.C * LC + 2 * c.C * c.V + c.C * c.K + c.C + 1 : 2 * c.K * LC + c.C * LC + c.K * c.V + c.C * c.V + c.C + 1;
}

function check(c: LowRankWyConfig): void {
  if (c.math) return c.op === "pre" ? wyPreMmaCheck(c) : wyDrMmaCheck(c);
  if (c.K % 4 || c.V % 4 || c.C % 4 || c.C < 4) throw new Error(`lowrank-wy: C ${c.C}, K ${c.K} and V ${c.V} must be multiples of 4 (4 x 4 register tiles)`);
  if (c.V > LOWRANK_WY_THREADS) throw new Error(`lowrank-wy: V ${c.V} > ${LOWRANK_WY_THREADS} (the solve takes one value column a thread)`);
  if (sharedFloats(c) * 4 > 227 * 1024) throw new Error(`lowrank-wy: C ${c.C}, K ${c.K}, V ${c.V} needs ${sharedFloats(c) * 4} bytes of shared memory (> 227 KiB)`);
}

const unroll = "#pragma unroll";

function kernelSource(c: LowRankWyConfig): string {
  const { C, K, V, decay, op } = c;
  const NT = LOWRANK_WY_THREADS, LC = C + 4;
  const dec = decay !== "none";
  const f4 = (p: string) => `(*(const float4*)&${p})`;
  // loads of a chunk's rows: transposed into [K][LC] (dst[i][a] = src row a, column i) or as they are [C][W]
  const loadT = (dst: string, src: string, stride: string) => `  for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x / ${K}u, i = x % ${K}u; ${dst}[i * ${LC}u + a] = ${src}[(size_t)n * ${C}u * ${stride} + a * ${stride} + i]; }\n`;
  const loadR = (dst: string, src: string, stride: string, W: number) => `  for (u32 x = t; x < ${C * W}u; x += ${NT}u) { const u32 a = x / ${W}u, i = x % ${W}u; ${dst}[x] = ${src}[(size_t)n * ${C}u * ${stride} + a * ${stride} + i]; }\n`;
  const loadG = dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n` : "";
  // the scores [a][c] of two transposed operands, masked (c < a + oq) and decayed (exp(G_{a+oq} - G_{c+1})), into dst [C][LC]
  const scores = (dst: string, xa: string, xc: string, oq: number) => tiles(C, C, NT, `    for (u32 i = 0; i < ${K}u; ++i) {
      const float4 a4 = ${f4(`${xa}[i * ${LC}u + 4u * ti]`)}, b4 = ${f4(`${xc}[i * ${LC}u + 4u * tj]`)};
      const float ap[4] = {a4.x, a4.y, a4.z, a4.w}, bj[4] = {b4.x, b4.y, b4.z, b4.w};
${outer}
    }`, maskedRows(dst, LC, "cc", `cc < a + ${oq}u`, dec ? `expf(sG[a + ${oq}u] - sG[cc + 1u])` : "1.f"));
  const head = (args: string) => `
extern "C" __global__ void __launch_bounds__(${NT}) ${lowRankWyEntry(c)}(${args}) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
`;
  if (op === "pre")
    return `${head("const float* __restrict__ Q, u32 qs, const float* __restrict__ U, u32 us, const float* __restrict__ DY, u32 ds, const float* __restrict__ XI, u32 xs, const float* __restrict__ Gg, float* __restrict__ BQ, float* __restrict__ BP, u32 N")}  float* sQT = (float*)seqc_smem_raw;  // Q^T [K][LC]
  float* sUT = sQT + ${K * LC};  // U^T [K][LC]
  float* sP = sUT + ${K * LC};   // P1 [C][LC]
  float* sD = sP + ${C * LC};    // DY [C][V]
  float* sB = sD + ${C * V};     // BQ [C][V]
  float* sX = sB + ${C * V};     // XI [C][K]
  float* sG = sX + ${C * K};     // G [C + 1]
${loadT("sQT", "Q", "qs")}${loadT("sUT", "U", "us")}${loadR("sD", "DY", "ds", V)}${loadR("sX", "XI", "xs", K)}${loadG}  __syncthreads();
${scores("sP", "sQT", "sUT", 1)}  __syncthreads();
  // BQ[c] = sum_a P1[a, c] dy_a (rows a >= the tile's first c)
${tiles(C, V, NT, `    for (u32 a = 4u * ti; a < ${C}u; ++a) {
      const float4 a4 = ${f4(`sP[a * ${LC}u + 4u * ti]`)}, b4 = ${f4(`sD[a * ${V}u + 4u * tj]`)};
      const float ap[4] = {a4.x, a4.y, a4.z, a4.w}, bj[4] = {b4.x, b4.y, b4.z, b4.w};
${outer}
    }`, `${unroll}
    for (u32 p = 0; p < 4u; ++p) {
      const float4 v = make_float4(acc[p][0], acc[p][1], acc[p][2], acc[p][3]);
      *(float4*)&sB[(4u * ti + p) * ${V}u + 4u * tj] = v;
      *(float4*)&BQ[((size_t)n * ${C}u + 4u * ti + p) * ${V}u + 4u * tj] = v;
    }`)}  __syncthreads();
  // BP = sum_a exp(G_{a+1}) q_a dy_a^T + sum_c xI_c BQ_c^T
${tiles(K, V, NT, `    for (u32 a = 0; a < ${C}u; ++a) {
      const float e = ${dec ? "expf(sG[a + 1u])" : "1.f"};
      const float ap[4] = {e * sQT[(4u * ti) * ${LC}u + a], e * sQT[(4u * ti + 1u) * ${LC}u + a], e * sQT[(4u * ti + 2u) * ${LC}u + a], e * sQT[(4u * ti + 3u) * ${LC}u + a]};
      const float4 b4 = ${f4(`sD[a * ${V}u + 4u * tj]`)};
      const float bj[4] = {b4.x, b4.y, b4.z, b4.w};
${outer}
    }
    for (u32 cc = 0; cc < ${C}u; ++cc) {
      const float4 a4 = ${f4(`sX[cc * ${K}u + 4u * ti]`)}, b4 = ${f4(`sB[cc * ${V}u + 4u * tj]`)};
      const float ap[4] = {a4.x, a4.y, a4.z, a4.w}, bj[4] = {b4.x, b4.y, b4.z, b4.w};
${outer}
    }`, `${unroll}
    for (u32 p = 0; p < 4u; ++p) *(float4*)&BP[((size_t)n * ${K}u + 4u * ti + p) * ${V}u + 4u * tj] = make_float4(acc[p][0], acc[p][1], acc[p][2], acc[p][3]);`)}}
`;
  return `${head("const float* __restrict__ W, u32 ws, const float* __restrict__ U, u32 us, const float* __restrict__ BQ, const float* __restrict__ L, const float* __restrict__ Gg, float* __restrict__ DR, u32 N")}  float* sWT = (float*)seqc_smem_raw;  // W^T [K][LC]
  float* sUT = sWT + ${K * LC};  // U^T [K][LC]
  float* sA = sUT + ${K * LC};   // Luu [C][LC]
  float* sL = sA + ${C * LC};    // L [K][V]
  float* sR = sL + ${K * V};     // rhs, then DR [C][V]
  float* sG = sR + ${C * V};     // G [C + 1]
${loadT("sWT", "W", "ws")}${loadT("sUT", "U", "us")}  for (u32 x = t; x < ${K * V}u; x += ${NT}u) sL[x] = L[(size_t)n * ${K * V}u + x];
${loadG}  __syncthreads();
${scores("sA", "sWT", "sUT", 0)}  // rhs_c = BQ_c + exp(G_C - G_{c+1}) L^T u_c
${tiles(C, V, NT, `    for (u32 i = 0; i < ${K}u; ++i) {
      const float4 a4 = ${f4(`sUT[i * ${LC}u + 4u * ti]`)}, b4 = ${f4(`sL[i * ${V}u + 4u * tj]`)};
      const float ap[4] = {a4.x, a4.y, a4.z, a4.w}, bj[4] = {b4.x, b4.y, b4.z, b4.w};
${outer}
    }`, `${unroll}
    for (u32 p = 0; p < 4u; ++p) {
      const u32 cc = 4u * ti + p;
      const float e = ${dec ? `expf(sG[${C}u] - sG[cc + 1u])` : "1.f"};
      const float4 b = ${f4(`BQ[((size_t)n * ${C}u + cc) * ${V}u + 4u * tj]`)};
      *(float4*)&sR[cc * ${V}u + 4u * tj] = make_float4(fmaf(e, acc[p][0], b.x), fmaf(e, acc[p][1], b.y), fmaf(e, acc[p][2], b.z), fmaf(e, acc[p][3], b.w));
    }`)}  __syncthreads();
  // (I - Luu^T) DR = rhs: DR_c = rhs_c + sum_{a > c} Luu[a, c] DR_a, from the last step back; one value column a thread
  if (t < ${V}u) {
    for (u32 cc = ${C - 1}u; cc-- > 0u;) {
      float s0 = sR[cc * ${V}u + t], s1 = 0.f, s2 = 0.f, s3 = 0.f;
      u32 a = cc + 1u;
      for (; a + 3u < ${C}u; a += 4u) {
        s0 = fmaf(sA[a * ${LC}u + cc], sR[a * ${V}u + t], s0);
        s1 = fmaf(sA[(a + 1u) * ${LC}u + cc], sR[(a + 1u) * ${V}u + t], s1);
        s2 = fmaf(sA[(a + 2u) * ${LC}u + cc], sR[(a + 2u) * ${V}u + t], s2);
        s3 = fmaf(sA[(a + 3u) * ${LC}u + cc], sR[(a + 3u) * ${V}u + t], s3);
      }
      for (; a < ${C}u; ++a) s0 = fmaf(sA[a * ${LC}u + cc], sR[a * ${V}u + t], s0);
      sR[cc * ${V}u + t] = (s0 + s1) + (s2 + s3);
    }
  }
  __syncthreads();
  for (u32 x = t; x < ${(C * V) / 4}u; x += ${NT}u) *(float4*)&DR[(size_t)n * ${C * V}u + 4u * x] = *(const float4*)&sR[4u * x];
}
`;
}

/** The kernel module for these configurations (default LOWRANK_WY_CONFIGS), one translation unit. */
export function lowRankWyModule(configs: readonly LowRankWyConfig[] = LOWRANK_WY_CONFIGS, patch?: (src: string) => string): { source: string; kernels: LowRankWyKernel[] } {
  const kernels: LowRankWyKernel[] = [];
  let source = LOWRANK_CORE_PRELUDE.replace("low-rank chunk transitions", "low-rank chunk-state backward").replace("lowrank-core.ts", "lowrank-wy.ts");
  if (configs.some((c) => c.math)) source += MMA_TF32_PRELUDE;
  for (const c of configs) {
    check(c);
    kernels.push({ ...c, ...(c.op === "pre" && !c.math ? { dyStride: true } : {}), entry: lowRankWyEntry(c), threads: LOWRANK_WY_THREADS, sharedBytes: (c.math ? (c.op === "pre" ? wyPreMmaLayout(c) : wyDrMmaLayout(c)).floats : sharedFloats(c)) * 4 });
    source += c.math ? (c.op === "pre" ? wyPreMmaSource : wyDrMmaSource)(c, lowRankWyEntry(c)) : kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
