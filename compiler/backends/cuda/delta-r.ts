/**
 * The token-aligned delta backward's reads from saved chunk states (docs/delta-backward.md "Chunk states from the
 * forward"; the torch target's kernels.deltaStates, runtime/torch/seqc_delta_bwd.py delta_kernels with `states`): where
 * the forward kept each 64-token chunk's start state S0 (its split3 walk's workspace, in the forward's operand type), the
 * backward needs no forward walk. Per chunk n, independently (grid N, one block a chunk):
 *
 *   R[n] = X[n] + M[n] S[n]        [C, V]   (prep_fwd's M = Tinv Wd [C, K], X = Tinv Luk V [C, V])
 *   S0[n] = float(S[n])            [K, V]   (only with S0 given: the fp32 copy the adjoint reads; bf16 states)
 *
 * Tensors chunk-major (N = B H nC): M [N, C, K], X / R [N, C, V] float32; S [N, K, V] of type SIN (float or
 * __nv_bfloat16: entry suffix _f32 / _bf16), S0 [N, K, V] float32 or nullptr. fp32 FMAs on the SIMT cores: M and S
 * staged in shared memory (S converted to fp32 as it is read, and stored to S0 from there), then each thread owns a
 * tile of R: 4 value columns (a float4 of X read and of R written, consecutive across a warp's lanes) of C / (NT / (V /
 * 4)) rows, summing over the keys 4 at a time (a float4 of M's row, a broadcast across the lanes that share the rows,
 * and four float4 rows of S, consecutive across the lanes: no bank conflicts).
 */
import { DELTA_PRELUDE } from "./delta-prep.ts";
import { DELTA_WALK_ZOUT_PRELUDE } from "./delta-walk.ts";
import { deltaRMmaKernel, deltaRMmaSource } from "./delta-r-mma.ts";

export interface DeltaRConfig {
  C: number;
  K: number;
  V: number;
  /** The saved states' type: "bf16" (the forward's bf16 operands; S0's fp32 copy written) or "f32". */
  sin: "f32" | "bf16";
  /** R's and S0's type (absent: float32): "bf16" (entry _zb; seqc_delta_bwd LR_DELTA_ZBF16, the bf16 adjoint's zin
   * sibling) rounds R to bf16 as it is stored and writes S0 (where given: f32 states; bf16 states are S0 themselves) as bf16. */
  zout?: "bf16";
  /** "tf32x3" (entry _tf32x3 before _zb): the tensor-core twin (delta-r-mma.ts), fp32 accuracy by split operands;
   * absent: fp32 FMAs on the SIMT cores. */
  math?: "tf32x3";
}

export interface DeltaRKernel extends DeltaRConfig {
  op: "r";
  entry: string;
  threads: number;
  sharedBytes: number;
}

const NT = 256;

/** The torch modules' configurations: C = 64, K = V = 64 and 128, bf16 and f32 states. */
export const DELTA_R_CONFIGS: readonly DeltaRConfig[] = [64, 128].flatMap((K) => (["bf16", "f32"] as const).map((sin) => ({ C: 64, K, V: K, sin })));

/** Their siblings writing bf16 R and S0 (zout "bf16", entries _zb; seqc_delta_bwd LR_DELTA_ZBF16). */
export const DELTA_R_ZB_CONFIGS: readonly DeltaRConfig[] = DELTA_R_CONFIGS.map((c) => ({ ...c, zout: "bf16" as const }));

/** The tensor-core twins (math "tf32x3") of DELTA_R_CONFIGS and of their _zb siblings (seqc_delta_bwd LR_DELTA_R). */
export const DELTA_R_MMA_CONFIGS: readonly DeltaRConfig[] = [...DELTA_R_CONFIGS, ...DELTA_R_ZB_CONFIGS].map((c) => ({ ...c, math: "tf32x3" as const }));

export function deltaREntry(c: DeltaRConfig): string {
  return `seqc_delta_r_c${c.C}k${c.K}v${c.V}_${c.sin}${c.math ? `_${c.math}` : ""}${c.zout === "bf16" ? "_zb" : ""}`;
}

function check(c: DeltaRConfig): void {
  const { C, K, V } = c;
  if (K % 4 || V % 4 || NT % (V / 4) || C % (NT / (V / 4)) || V / 4 > NT) throw new Error(`delta-r: no plan for C ${C}, K ${K}, V ${V}`);
}

export function deltaRKernel(c: DeltaRConfig): DeltaRKernel {
  if (c.math === "tf32x3") return deltaRMmaKernel(c, deltaREntry(c));
  check(c);
  return { ...c, op: "r", entry: deltaREntry(c), threads: NT, sharedBytes: 4 * (c.C * c.K + c.K * c.V) };
}

/** One kernel's CUDA text (DELTA_PRELUDE goes once before a module's kernels). */
export function deltaRSource(c: DeltaRConfig): string {
  if (c.math === "tf32x3") return deltaRMmaSource(c, deltaREntry(c));
  check(c);
  const { C, K, V } = c, CG = V / 4, RG = NT / CG, RPT = C / RG, SIN = c.sin === "bf16" ? "__nv_bfloat16" : "float";
  const zb = c.zout === "bf16", OT = zb ? "unsigned short" : "float";
  return `${zb ? DELTA_WALK_ZOUT_PRELUDE : ""}
extern "C" __global__ void __launch_bounds__(${NT}) ${deltaREntry(c)}(const float* __restrict__ M, const float* __restrict__ X, const ${SIN}* __restrict__ S, ${OT}* __restrict__ R, ${OT}* __restrict__ S0, int N) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sM = (float*)seqc_smem_raw;  // [C][K]
  float* sS = sM + ${C * K}u;          // [K][V]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= (u32)N) return;
  const float* gM = M + (size_t)n * ${C * K}u;
  const ${SIN}* gS = S + (size_t)n * ${K * V}u;
  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) *(float4*)&sM[4u * x] = *(const float4*)(gM + (size_t)4u * x);
  for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) {
    const float4 s = seqc_delta_in4(gS + (size_t)4u * x);
    *(float4*)&sS[4u * x] = s;
    if (S0) ${zb ? `seqc_dz_st4(S0 + (size_t)n * ${K * V}u + (size_t)4u * x, s.x, s.y, s.z, s.w);` : `*(float4*)(S0 + (size_t)n * ${K * V}u + (size_t)4u * x) = s;`}
  }
  __syncthreads();
  // rows a0 .. a0 + ${RPT - 1}, value columns j0 .. j0 + 3
  const u32 j0 = 4u * (t % ${CG}u), a0 = (t / ${CG}u) * ${RPT}u;
  float acc[${RPT}][4];
#pragma unroll
  for (u32 r = 0; r < ${RPT}u; ++r) {
    const float4 x = *(const float4*)(X + (size_t)n * ${C * V}u + (size_t)(a0 + r) * ${V}u + j0);
    acc[r][0] = x.x; acc[r][1] = x.y; acc[r][2] = x.z; acc[r][3] = x.w;
  }
  for (u32 l = 0; l < ${K}u; l += 4u) {
    float s[4][4];
#pragma unroll
    for (u32 q = 0; q < 4u; ++q) {
      const float4 v = *(const float4*)&sS[(l + q) * ${V}u + j0];
      s[q][0] = v.x; s[q][1] = v.y; s[q][2] = v.z; s[q][3] = v.w;
    }
#pragma unroll
    for (u32 r = 0; r < ${RPT}u; ++r) {
      const float4 m = *(const float4*)&sM[(a0 + r) * ${K}u + l];
#pragma unroll
      for (u32 j = 0; j < 4u; ++j) acc[r][j] += m.x * s[0][j] + m.y * s[1][j] + m.z * s[2][j] + m.w * s[3][j];
    }
  }
#pragma unroll
  for (u32 r = 0; r < ${RPT}u; ++r) ${zb ? `seqc_dz_st4(R + (size_t)n * ${C * V}u + (size_t)(a0 + r) * ${V}u + j0, acc[r][0], acc[r][1], acc[r][2], acc[r][3]);` : `*(float4*)(R + (size_t)n * ${C * V}u + (size_t)(a0 + r) * ${V}u + j0) = make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);`}
}
`;
}

/** The module (kernels.deltaStates): DELTA_PRELUDE, then each configuration's kernel (default: DELTA_R_CONFIGS, then
 * their _zb siblings, then the tensor-core twins of both); records in configuration order. */
export function deltaRModule(configs: readonly DeltaRConfig[] = [...DELTA_R_CONFIGS, ...DELTA_R_ZB_CONFIGS, ...DELTA_R_MMA_CONFIGS]): { source: string; kernels: DeltaRKernel[] } {
  return { source: DELTA_PRELUDE + configs.map(deltaRSource).join(""), kernels: configs.map(deltaRKernel) };
}
