/**
 * The tensor-core twin of the delta backward's reads from saved chunk states (delta-r.ts; math "tf32x3", entries
 * seqc_delta_r_c<C>k<K>v<V>_<sin>_tf32x3[_zb]): the same arguments and outputs, per chunk n (one block of 8 warps)
 *
 *   R[n] = X[n] + M[n] S[n]   on mma.sync m16n8k8 TF32 with fp32 accumulators started from X,
 *   S0[n] = S[n] as float32 (or bf16 with zout), where S0 is given.
 *
 * Accuracy as the fp32 FMA kernel's: M is split into a TF32 head and tail (m = mh + ml); bf16 states are exact in TF32,
 * so M S = mh S + ml S (two products); fp32 states are split too, ml S + mh Sl + mh Sh (three, the tail products'
 * product dropped: ~2^-22 relative). The floor it is built for (docs/delta-backward.md): per chunk the reads of M and X
 * (fp32), S (its type) and the writes of R and S0 once; one FMA kernel's 2 C K V flops a chunk on the SIMT cores (~0.3
 * ms at (4, 8192, 16, 128) on an H200) are as long as that IO, on the tensor cores ~1/8 of it.
 *
 * Layout: M staged in shared memory as fp32 rows of stride LM = K + pad (LM = 4 mod 32: A fragments conflict-free), S in
 * its own type, rows of stride LS = V + pad (LS = 8 mod 32: bf16 B fragments two lanes a word, fp32 ones one a bank);
 * both by 16-byte loads; S0 written from the same loaded values. Warp w takes the 16-row block (w mod C/16) and the
 * column group (w div C/16) of V / WC columns (WC = 8 / (C / 16)); its accumulators start as X's fragments (float2 loads
 * of 8-byte pairs, a quad of lanes 32 bytes of a row) and are stored the same way (R fp32 float2, or bf16 pairs).
 */
import type { DeltaRConfig, DeltaRKernel } from "./delta-r.ts";
import { DELTA_WALK_ZOUT_PRELUDE } from "./delta-walk.ts";
import { MMA_TF32_PRELUDE, padStride } from "./lowrank-readout-mma.ts";

const WARPS = 8;
const NT = 32 * WARPS;

/** Shared memory strides (elements) of M [C][LM] fp32 and S [K][LS] in S's type; bytes. */
export function deltaRMmaLayout(c: DeltaRConfig): { LM: number; LS: number; bytes: number } {
  const LM = padStride(c.K, 4), LS = padStride(c.V, 8), es = c.sin === "bf16" ? 2 : 4;
  return { LM, LS, bytes: 4 * c.C * LM + es * c.K * LS };
}

export function deltaRMmaCheck(c: DeltaRConfig): void {
  const { C, K, V } = c, RB = C / 16;
  if (C % 16 || WARPS % RB || K % 8 || V % (8 * (WARPS / RB)) || deltaRMmaLayout(c).bytes > 227 * 1024)
    throw new Error(`delta-r (tf32x3): no plan for C ${C}, K ${K}, V ${V} (C / 16 row blocks dividing ${WARPS} warps, K a multiple of 8, V of 8 column groups' 8 columns)`);
}

export function deltaRMmaKernel(c: DeltaRConfig, entry: string): DeltaRKernel {
  deltaRMmaCheck(c);
  return { ...c, op: "r", entry, threads: NT, sharedBytes: deltaRMmaLayout(c).bytes };
}

/** One kernel's CUDA text (after DELTA_PRELUDE; brings MMA_TF32_PRELUDE and, with zout, the bf16 store helpers). */
export function deltaRMmaSource(c: DeltaRConfig, entry: string): string {
  deltaRMmaCheck(c);
  const { C, K, V } = c, { LM, LS } = deltaRMmaLayout(c), RB = C / 16, WC = WARPS / RB, CW = V / WC, NJ = CW / 8;
  const bf = c.sin === "bf16", SIN = bf ? "__nv_bfloat16" : "float", zb = c.zout === "bf16", OT = zb ? "unsigned short" : "float";
  const sType = bf ? "unsigned short" : "float";
  // S's staging: 16-byte loads of 8 bf16 / 4 floats, stored to shared as they are, S0 from the same words
  const sVec = bf ? 8 : 4, sLoad = bf
    ? `const uint4 w = *(const uint4*)((const unsigned short*)gS + (size_t)${sVec}u * x);
    *(uint4*)&sS[row * ${LS}u + col] = w;
    if (S0) {
      ${zb ? `*(uint4*)(S0 + (size_t)n * ${K * V}u + (size_t)${sVec}u * x) = w;` : `float* d = S0 + (size_t)n * ${K * V}u + (size_t)${sVec}u * x;
      *(float4*)d = make_float4(__uint_as_float(w.x << 16), __uint_as_float(w.x & 0xffff0000u), __uint_as_float(w.y << 16), __uint_as_float(w.y & 0xffff0000u));
      *(float4*)(d + 4) = make_float4(__uint_as_float(w.z << 16), __uint_as_float(w.z & 0xffff0000u), __uint_as_float(w.w << 16), __uint_as_float(w.w & 0xffff0000u));`}
    }`
    : `const float4 s = *(const float4*)(gS + (size_t)4u * x);
    *(float4*)&sS[row * ${LS}u + col] = s;
    if (S0) ${zb ? `seqc_dz_st4(S0 + (size_t)n * ${K * V}u + (size_t)4u * x, s.x, s.y, s.z, s.w);` : `*(float4*)(S0 + (size_t)n * ${K * V}u + (size_t)4u * x) = s;`}`;
  const bRead = (k: string) => (bf ? `__uint_as_float(((u32)sS[(${k}) * ${LS}u + n0 + g]) << 16)` : `sS[(${k}) * ${LS}u + n0 + g]`);
  const bFrag = bf
    ? `      u32 b[2] = { __float_as_uint(${bRead("k0 + tg")}), __float_as_uint(${bRead("k0 + tg + 4u")}) };  // bf16: exact in TF32
      seqc_mma_tf32(acc[j], al, b); seqc_mma_tf32(acc[j], ah, b);`
    : `      u32 b[2], bl[2];
      seqc_split_tf32(${bRead("k0 + tg")}, b[0], bl[0]); seqc_split_tf32(${bRead("k0 + tg + 4u")}, b[1], bl[1]);
      seqc_mma_tf32(acc[j], al, b); seqc_mma_tf32(acc[j], ah, bl); seqc_mma_tf32(acc[j], ah, b);`;
  const store = zb
    ? `*(u32*)(gR + (size_t)(r0 + g) * ${V}u + c0) = seqc_dz_pack(acc[j][0], acc[j][1]);
    *(u32*)(gR + (size_t)(r0 + g + 8u) * ${V}u + c0) = seqc_dz_pack(acc[j][2], acc[j][3]);`
    : `*(float2*)(gR + (size_t)(r0 + g) * ${V}u + c0) = make_float2(acc[j][0], acc[j][1]);
    *(float2*)(gR + (size_t)(r0 + g + 8u) * ${V}u + c0) = make_float2(acc[j][2], acc[j][3]);`;
  return `${MMA_TF32_PRELUDE}${zb ? DELTA_WALK_ZOUT_PRELUDE : ""}
extern "C" __global__ void __launch_bounds__(${NT}) ${entry}(const float* __restrict__ M, const float* __restrict__ X, const ${SIN}* __restrict__ S, ${OT}* __restrict__ R, ${OT}* __restrict__ S0, int N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sM = (float*)seqc_smem_raw;                       // [C][${LM}]
  ${sType}* sS = (${sType}*)(sM + ${C * LM}u);  // [K][${LS}]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= (u32)N) return;
  const float* gM = M + (size_t)n * ${C * K}u;
  const ${SIN}* gS = S + (size_t)n * ${K * V}u;
#pragma unroll 4
  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 row = x / ${K / 4}u, col = 4u * (x % ${K / 4}u);
    *(float4*)&sM[row * ${LM}u + col] = *(const float4*)(gM + (size_t)4u * x);
  }
#pragma unroll 4
  for (u32 x = t; x < ${(K * V) / sVec}u; x += ${NT}u) {
    const u32 row = x / ${V / sVec}u, col = ${sVec}u * (x % ${V / sVec}u);
    ${sLoad}
  }
  // the warp's accumulators from X while the staging lands: rows r0 + g, r0 + g + 8; columns c0, c0 + 1 of each 8-column tile
  const u32 l = t & 31u, w = t >> 5u, g = l >> 2u, tg = l & 3u, r0 = 16u * (w % ${RB}u), cw = ${CW}u * (w / ${RB}u);
  const float* gX = X + (size_t)n * ${C * V}u;
  float acc[${NJ}][4];
#pragma unroll
  for (u32 j = 0; j < ${NJ}u; ++j) {
    const u32 c0 = cw + 8u * j + 2u * tg;
    const float2 x0 = *(const float2*)(gX + (size_t)(r0 + g) * ${V}u + c0), x1 = *(const float2*)(gX + (size_t)(r0 + g + 8u) * ${V}u + c0);
    acc[j][0] = x0.x; acc[j][1] = x0.y; acc[j][2] = x1.x; acc[j][3] = x1.y;
  }
  __syncthreads();
#pragma unroll 2
  for (u32 k0 = 0; k0 < ${K}u; k0 += 8u) {
    u32 ah[4], al[4];
    seqc_split_tf32(sM[(r0 + g) * ${LM}u + k0 + tg], ah[0], al[0]);
    seqc_split_tf32(sM[(r0 + g + 8u) * ${LM}u + k0 + tg], ah[1], al[1]);
    seqc_split_tf32(sM[(r0 + g) * ${LM}u + k0 + tg + 4u], ah[2], al[2]);
    seqc_split_tf32(sM[(r0 + g + 8u) * ${LM}u + k0 + tg + 4u], ah[3], al[3]);
#pragma unroll
    for (u32 j = 0; j < ${NJ}u; ++j) {
      const u32 n0 = cw + 8u * j;
${bFrag}
    }
  }
  ${OT}* gR = R + (size_t)n * ${C * V}u;
#pragma unroll
  for (u32 j = 0; j < ${NJ}u; ++j) {
    const u32 c0 = cw + 8u * j + 2u * tg;
    ${store}
  }
}
`;
}
