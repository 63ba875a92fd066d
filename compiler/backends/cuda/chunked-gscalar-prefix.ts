/**
 * The scalar decays' inclusive prefix over a chunk's tokens (C <= 64: lane l holds tokens l and l + 32 in a and c, c
 * offset by the low half's total lowTot), read from G's SEQC_G_TOT slots; the text that seqc_chunk_gscalar
 * (chunked-core.ts) and seqc_chunk_gscalar_f (chunked-phase-a-ovl.ts) both splice in, inside a block that defines l and
 * C. Ends without a newline.
 */
export const GSCALAR_TOKEN_PREFIX = String.raw`    float a = l < C ? G[SEQC_G_TOT + l] : 0.f, c = l + 32 < C ? G[SEQC_G_TOT + l + 32] : 0.f;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const float x = __shfl_up_sync(0xffffffffu, a, o), y = __shfl_up_sync(0xffffffffu, c, o);
      if (l >= o) { a += x; c += y; }
    }
    const float lowTot = __shfl_sync(0xffffffffu, a, 31);
    c += lowTot;`;
