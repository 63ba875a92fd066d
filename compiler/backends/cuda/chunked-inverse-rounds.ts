/**
 * seqc_chunk_inverse_w's two rounds of 16x16 warp products (T = (I - N)^-1 from the diagonal blocks' inverses), as
 * CUDA text for the two kernels that run them: the core's seqc_chunk_inverse_w (chunked-core.ts) and the overlapped
 * phase A's seqc_chunk_phase_a_o (chunked-phase-a-ovl.ts), which puts its helper warps' stages between the rounds.
 * Each kernel names the accumulator (float [2][4]) and the first round's block-column index in its own scope (the
 * overlapped phase A's c and b are the chunk and the batch row); the text is otherwise the same, so both kernels run
 * the same products in the same order.
 */

/** The first round, warp w < 6's part (inside the caller's `if`; 4-space indent, no trailing newline): N_ik T_kk into
 *  U(a, col), then warps 0 and 1 T_ik = T_ii U(a, col). */
export function inverseFirstRound(acc: string, col: string): string {
  return `    const int i = w == 0 ? 1 : w == 2 || w == 4 ? 2 : 3, k = w == 0 || w >= 4 ? 0 : w == 1 ? 2 : 1;
    const int a = w < 3 ? 0 : w < 5 ? 1 : 2, ${col} = w == 0 ? 1 : w == 1 || w == 3 ? 2 : 3;
    seqc_w16_ld(${acc}, nullptr, 0);
    seqc_w16_mm(${acc}, Nb(i, k), LDA, Tb(k, k), LDA);
    seqc_w16_st(${acc}, Tb(a, ${col}), LDA);
    if (w < 2) {
      __syncwarp();
      seqc_w16_ld(${acc}, nullptr, 0);
      seqc_w16_mm(${acc}, Tb(i, i), LDA, Tb(a, ${col}), LDA);
      seqc_w16_st(${acc}, Tb(i, k), LDA);
    }`;
}

/** The second round on warps 0-3 (2-space indent, no trailing newline; Pz: the caller's 16x16 scratch P). */
export function inverseSecondRound(acc: string): string {
  return `  if (w == 0) {
    // T_20 = T_22 (N_20 T_00 + N_21 T_10), Y_20 in U(0,1)
    seqc_w16_ld(${acc}, Tb(1, 3), LDA);
    seqc_w16_mm(${acc}, Nb(2, 1), LDA, Tb(1, 0), LDA);
    seqc_w16_st(${acc}, Tb(0, 1), LDA);
    __syncwarp();
    seqc_w16_ld(${acc}, nullptr, 0);
    seqc_w16_mm(${acc}, Tb(2, 2), LDA, Tb(0, 1), LDA);
    seqc_w16_st(${acc}, Tb(2, 0), LDA);
  } else if (w == 1) {
    seqc_w16_ld(${acc}, nullptr, 0);
    seqc_w16_mm(${acc}, Tb(2, 2), LDA, Tb(0, 3), LDA);
    seqc_w16_st(${acc}, Tb(2, 1), LDA);
  } else if (w == 2) {
    // T_30 = T_32 Y_20 + T_33 Y_30: Y_20 (again) in U(0,2), Y_30 in P
    seqc_w16_ld(${acc}, Tb(1, 3), LDA);
    seqc_w16_mm(${acc}, Nb(2, 1), LDA, Tb(1, 0), LDA);
    seqc_w16_st(${acc}, Tb(0, 2), LDA);
    seqc_w16_ld(${acc}, Tb(2, 3), LDA);
    seqc_w16_mm(${acc}, Nb(3, 1), LDA, Tb(1, 0), LDA);
    seqc_w16_st(${acc}, Pz, 16);
    __syncwarp();
    seqc_w16_ld(${acc}, nullptr, 0);
    seqc_w16_mm(${acc}, Tb(3, 2), LDA, Tb(0, 2), LDA);
    seqc_w16_mm(${acc}, Tb(3, 3), LDA, Pz, 16);
    seqc_w16_st(${acc}, Tb(3, 0), LDA);
  } else if (w == 3) {
    seqc_w16_ld(${acc}, nullptr, 0);
    seqc_w16_mm(${acc}, Tb(3, 2), LDA, Tb(0, 3), LDA);
    seqc_w16_mm(${acc}, Tb(3, 3), LDA, Tb(1, 2), LDA);
    seqc_w16_st(${acc}, Tb(3, 1), LDA);
  }`;
}
