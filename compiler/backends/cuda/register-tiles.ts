/**
 * The fp32 SIMT products' loop over 4 x 4 register tiles, shared by the kernels that build their products from it
 * (lowrank-wy.ts, delta-prep.ts): a thread a tile (ti, tj) of an [R][W] result at a time, acc[4][4] accumulated by
 * fmaf from 4-float rows ap[4] and bj[4].
 */

const unroll = "#pragma unroll";

/** A loop over the 4 x 4 tiles (ti, tj) of an [R][W] result on NT threads, acc[4][4] zeroed, `body` accumulating, then `done`. */
export function tiles(R: number, W: number, NT: number, body: string, done: string): string {
  const WT = W / 4;
  return `  for (u32 x = t; x < ${(R / 4) * WT}u; x += ${NT}u) {
    const u32 ti = x / ${WT}u, tj = x % ${WT}u;
    float acc[4][4];
${unroll}
    for (u32 p = 0; p < 4u; ++p)
${unroll}
      for (u32 j = 0; j < 4u; ++j) acc[p][j] = 0.f;
${body}
${done}
  }
`;
}

/** acc[p][j] += ap[p] bj[j]. */
export const outer = `${unroll}
      for (u32 p = 0; p < 4u; ++p)
${unroll}
        for (u32 j = 0; j < 4u; ++j) acc[p][j] = fmaf(ap[p], bj[j], acc[p][j]);`;
