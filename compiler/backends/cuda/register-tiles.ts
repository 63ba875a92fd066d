/**
 * The fp32 SIMT products' loop over 4 x 4 register tiles, shared by the kernels that build their products from it
 * (lowrank-wy.ts, delta-prep.ts): a thread a tile (ti, tj) of an [R][W] result at a time, acc[4][4] accumulated by
 * fmaf from 4-float rows ap[4] and bj[4]; a tile's zeroing and a score tile's masked store (also delta-adjoint.ts's
 * scores, delta-prep-key.ts's tiles).
 */

const unroll = "#pragma unroll";

/** A 4 x 4 register tile `name` declared and zeroed (from `float`; the loops indented by `ind`). */
export const zeroTile = (name: string, ind = "    ") => `float ${name}[4][4];
${unroll}
${ind}for (u32 p = 0; p < 4u; ++p)
${unroll}
${ind}  for (u32 j = 0; j < 4u; ++j) ${name}[p][j] = 0.f;`;

/** A loop over the 4 x 4 tiles (ti, tj) of an [R][W] result on NT threads, acc[4][4] zeroed, `body` accumulating, then `done`. */
export function tiles(R: number, W: number, NT: number, body: string, done: string): string {
  const WT = W / 4;
  return `  for (u32 x = t; x < ${(R / 4) * WT}u; x += ${NT}u) {
    const u32 ti = x / ${WT}u, tj = x % ${WT}u;
    ${zeroTile("acc")}
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

/** A score tile's `done`: the tile's (`acc`, at tile `ti`, `tj`) rows a = 4 ti + p times m[j] (column `col` = 4 tj + j;
 * m[j] = `cond` ? `e` : 0) into dst [.][ld] as float4s (zeros where masked). */
export const maskedRows = (dst: string, ld: number, col: string, cond: string, e: string, { acc = "acc", ti = "ti", tj = "tj" } = {}) => `${unroll}
    for (u32 p = 0; p < 4u; ++p) {
      const u32 a = 4u * ${ti} + p;
      float m[4];
${unroll}
      for (u32 j = 0; j < 4u; ++j) { const u32 ${col} = 4u * ${tj} + j; m[j] = ${cond} ? ${e} : 0.f; }
      *(float4*)&${dst}[a * ${ld}u + 4u * ${tj}] = make_float4(${acc}[p][0] * m[0], ${acc}[p][1] * m[1], ${acc}[p][2] * m[2], ${acc}[p][3] * m[3]);
    }`;
