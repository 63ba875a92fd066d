/**
 * The low-rank chunk transitions' unit-lower solve (I - A_u) r = rhs as CUDA source, shared by the fp32 kernel
 * (lowrank-core.ts) and its tensor-core twin (lowrank-core-mma.ts, which solves in fp32 FMAs too): one column of r a
 * thread (the W columns are independent), blocks of 16 rows, each first takes the earlier blocks' reads (a
 * register-blocked product, 16 independent accumulators) and then its diagonal block's forward substitution in
 * registers; no barrier inside. In shared memory: sR [C][LR] holds the right-hand sides and is overwritten by the reads
 * r; sU [C][LA] holds A_u by rows (row stride a multiple of 4: float4 loads).
 */

/** The solve's statements at two spaces' indent. `load4`: how the kernel spells a float4 load of a shared address. */
export function unitLowerSolveSource(o: { C: number; W: number; NT: number; LR: number; LA: number; load4: (p: string) => string }): string {
  const { C, W, NT, LR, LA, load4 } = o;
  const unroll = "#pragma unroll";
  return `  for (u32 j = t; j < ${W}u; j += ${NT}u) {
    for (u32 b = 0; b < ${C}u; b += 16u) {
      float x[16];
${unroll}
      for (u32 r = 0; r < 16u; ++r) x[r] = sR[(b + r) * ${LR}u + j];
      for (u32 c = 0; c < b; c += 4u) {
        const float r0 = sR[c * ${LR}u + j], r1 = sR[(c + 1u) * ${LR}u + j], r2 = sR[(c + 2u) * ${LR}u + j], r3 = sR[(c + 3u) * ${LR}u + j];
${unroll}
        for (u32 r = 0; r < 16u; ++r) {
          const float4 a4 = ${load4(`sU[(b + r) * ${LA}u + c]`)};
          x[r] = fmaf(a4.w, r3, fmaf(a4.z, r2, fmaf(a4.y, r1, fmaf(a4.x, r0, x[r]))));
        }
      }
${unroll}
      for (u32 r = 1u; r < 16u; ++r)
${unroll}
        for (u32 q = 0; q < r; ++q) x[r] = fmaf(sU[(b + r) * ${LA}u + b + q], x[q], x[r]);
${unroll}
      for (u32 r = 0; r < 16u; ++r) sR[(b + r) * ${LR}u + j] = x[r];
    }
  }
`;
}
