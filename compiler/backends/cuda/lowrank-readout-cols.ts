/**
 * The low-rank chunk readouts kernel's tensor-core twin in output-column groups, for widths where the whole-row twin
 * (lowrank-readout-mma.ts) does not fit in shared memory: at C = 64, K = V = 128, M = 2 that one needs 240.9 KB (Q, EA,
 * EB and S0 of 32 / 64 / 64 / 64 KB, rows padded), over the card's 227 KB. Same reads, same float32 tensors, same launch
 * arguments (lowrank-readout.ts: Q [N, C, mq, A] with step stride qs, EA [N, C, M, A], EB [N, C, M, B], S0 [N, K, V], G
 * [N, C + 1, 1], OUT [N, C, mq, B]; N, oq, mq, rev, qs), and the same products by mma.sync m16n8k8 with TF32 operands
 * ("tf32") or split heads and tails ("tf32x3"), one block of 8 warps per row n (grid (N, 1), as the whole-row twin). What
 * differs is that the block holds only G output columns of EB and of the start operand at a time, and takes the B / G
 * column groups in turn (c0 = 0, G, ...):
 *
 *   key axis    y_a[j] = exp(G_{a+oq}) (S_0^T q_a)[j] + sum_{c < a+oq, y} exp(G_{a+oq} - G_{c+1}) (q_a . kk_{c,y}) vv_{c,y}[j]
 *               for j in the group: S_0's columns j ([K][G], the start product's B operand [k][n]), vv's columns j;
 *   value axis  x_a[j] = exp(G_{a+oq}) (S_0 z_a)[j] + sum_{c < a+oq, y} exp(G_{a+oq} - G_{c+1}) (z_a . vv_{c,y}) kk_{c,y}[j]
 *               for j in the group: S_0's rows j ([G][V], [n][k]), kk's columns j.
 *
 * Per query vector: Q, EA and the first group's EB and S0 columns copied together (cp.async); the masked, decayed scores
 * P = Q EA^T [C, E] (E = C M) formed once and stored over EA; then per group its outputs exp(G_{a+oq}) Q S0op + P EB, the
 * next group's operands copied over the last's. At C = 64, K = V = 128, M = 2, G = 64: 175.4 KB (key) / 172.3 KB (value)
 * of shared memory, one block an SM; global reads per row and query vector Q (32 KB), EA, EB and S0 (64 KB each).
 *
 * Warps as the whole-row twin: 8 warps, 16-row blocks rb of the chunk (C / 16 of them), 8 / (C / 16) warps a row block
 * taking its 8-event score tiles (only the steps up to the block's last: masked and decayed in registers, then stored
 * over EA's slot) and its 8-column output tiles (G / 8 of them) in turn. Shared memory (floats): Q [C][LQ]; a slot holding
 * EA [E][LE], then the scores [C][LP]; EB's group [E][LB]; the start operand's group [K][LS] (key) or [G][LS] (value);
 * G [C + 1] with a decay. Rows padded 4 mod 32 (A operands by ldmatrix, B operands stored [n][k]) or 8 mod 32 (B
 * operands stored [k][n]): conflict-free fragment reads.
 *
 * rev = 1 reads the chunk in reversed time as lowrank-readout.ts's kernels do: the kernel's step a is row C - 1 - a of
 * Q, EA, EB and OUT (event e = c M + y of step c is row (C - 1 - c) M + y), G stays in the kernel's step order.
 *
 * The scores, the outputs of a column group, the copies and the block's indices are the whole-row twin's pieces
 * (mmaReadPieces), spliced; only the group loop and its copies are this kernel's own.
 *
 * The kernels join the "lowRankReadout" module (withReadCols); the runtime (seqc_chunked_lowrank.readout_launcher)
 * launches them as the module's other readouts, where LR_READ_K128 lets it (read_k128).
 */
import type { LowRankReadConfig, LowRankReadKernel, LowRankReadMath } from "./lowrank-readout.ts";
import { MMA_TF32_PRELUDE, MMA_WARPS, mmaReadPieces, padStride } from "./lowrank-readout-mma.ts";

/** A configuration of the column-group twin: a tensor-core math and the output columns per block G. */
export interface LowRankReadColsConfig extends LowRankReadConfig {
  math: LowRankReadMath;
  G: number;
}

export interface LowRankReadColsKernel extends LowRankReadKernel {
  math: LowRankReadMath;
  G: number;
  /** The launch takes rev and qs after mq (as lowrank-readout.ts's kernels). */
  rev: true;
}

/** The configurations the torch modules get: the delta-rule family's chunk of 64 micro-steps at K = V = 128 (M = 2
 * events a step in the forward's and the adjoint's cores), both axes, no and a scalar decay, both maths, G = 64. */
export const LOWRANK_READ_COLS_CONFIGS: readonly LowRankReadColsConfig[] = (["tf32", "tf32x3"] as const).flatMap((math) =>
  (["none", "scalar"] as const).flatMap((decay) => (["key", "value"] as const).map((axis) => ({ axis, decay, C: 64, K: 128, V: 128, M: 2, math, G: 64 }))));

export function lowRankReadColsEntry(c: LowRankReadColsConfig): string {
  return `seqc_lr_read_${c.axis}_${c.decay}_c${c.C}k${c.K}v${c.V}m${c.M}_g${c.G}_${c.math}`;
}

/** Shared memory layout in floats (see the head comment). */
export function readColsLayout(c: LowRankReadColsConfig): { A: number; B: number; E: number; LQ: number; LE: number; LP: number; LB: number; LS: number; SR: number; slot: number; floats: number } {
  const key = c.axis === "key", A = key ? c.K : c.V, B = key ? c.V : c.K, E = c.C * c.M;
  const LQ = padStride(A, 4), LE = padStride(A, 4), LP = padStride(E, 4), LB = padStride(c.G, 8);
  // the start operand's group: key S0[:, cols] [K][G] ([k][n]); value S0[cols, :] [G][V] ([n][k])
  const LS = key ? padStride(c.G, 8) : padStride(c.V, 4), SR = key ? c.K : c.G;
  const slot = Math.max(E * LE, c.C * LP);
  return { A, B, E, LQ, LE, LP, LB, LS, SR, slot, floats: c.C * LQ + slot + E * LB + SR * LS + (c.decay === "none" ? 0 : c.C + 1) };
}

export function readColsCheck(c: LowRankReadColsConfig): void {
  const B = c.axis === "key" ? c.V : c.K;
  if (![16, 32, 64].includes(c.C) || c.K % 8 || c.V % 8 || c.M < 1 || c.M > 3 || c.G % 8 || c.G < 8 || B % c.G)
    throw new Error(`lowrank-readout-cols: C ${c.C} must be 16, 32 or 64, K ${c.K} and V ${c.V} multiples of 8, M ${c.M} in 1..3, G ${c.G} a multiple of 8 dividing the output width ${B}`);
  const bytes = readColsLayout(c).floats * 4;
  if (bytes > 227 * 1024) throw new Error(`lowrank-readout-cols: C ${c.C}, K ${c.K}, V ${c.V}, M ${c.M}, G ${c.G} needs ${bytes} bytes of shared memory (> 227 KiB)`);
}

export function readColsSource(c: LowRankReadColsConfig, entry: string): string {
  const { C, K, V, M, G, decay } = c;
  const dec = decay !== "none", key = c.axis === "key";
  const L = readColsLayout(c);
  const { A, B, E, LQ, LE, LB, LS, SR } = L;
  const { NT, RB, WPR, row, evRow, copy, head, scores, outputs } = mmaReadPieces(c, L);
  const TS = Math.ceil((2 * RB * M) / WPR), TO = Math.ceil(G / 8 / WPR);
  const blocks = Math.min(2, Math.floor((227 * 1024) / (L.floats * 4)));
  // column group c0's operands: EB's columns c0.. and the start operand's group (key: S0's columns, value: S0's rows)
  const group = (ind: string) =>
    copy(ind, "sB", LB, E, G, (r, c4) => `EB[(size_t)n * ${E * B}u + ${evRow(r)} * ${B}u + c0 + 4u * ${c4}]`) +
    (key
      ? copy(ind, "sS", LS, K, G, (r, c4) => `S0[(size_t)n * ${K * V}u + ${r} * ${V}u + c0 + 4u * ${c4}]`)
      : copy(ind, "sS", LS, G, V, (r, c4) => `S0[(size_t)n * ${K * V}u + (c0 + ${r}) * ${V}u + 4u * ${c4}]`));
  return `
extern "C" __global__ void __launch_bounds__(${NT}, ${blocks}) ${entry}(const float* __restrict__ Q, const float* __restrict__ EA, const float* __restrict__ EB, const float* __restrict__ S0, const float* __restrict__ Gg, float* __restrict__ OUT, u32 N, u32 oq, u32 mq, u32 rev, u32 qs) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sQ = (float*)seqc_smem_raw;  // Q [C][LQ] (one query vector)
  float* sX = sQ + ${C * LQ};         // EA [E][LE] -> the scores [C][LP]
  float* sB = sX + ${L.slot};         // EB's columns c0.. [E][LB]
  float* sS = sB + ${E * LB};         // the start operand's group [${SR}][LS]
  float* sG = sS + ${SR * LS};         // G [C + 1]
${head}${dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n` : ""}  for (u32 xq = 0; xq < mq; ++xq) {
    {
      const u32 c0 = 0u;
${copy("      ", "sQ", LQ, C, A, (r, c4) => `q[${row(r)} * qs + xq * ${A}u + 4u * ${c4}]`)}${copy("      ", "sX", LE, E, A, (r, c4) => `ea[${evRow(r)} * ${A}u + 4u * ${c4}]`)}${group("      ")}      seqc_cp_commit();
      seqc_cp_wait<0>();
    }
    __syncthreads();
    // scores: rows a0.., the row block's event tiles h, h + ${WPR}, ...
    {
${scores("      ", TS)}    }
    __syncthreads();
    // the column groups in turn (group 0's operands came with Q and EA): rows a0.., the group's column tiles h, h + ${WPR},
    // ... of ${G / 8}: exp(G_{a+oq}) Q S0op, then + P EB
    for (u32 c0 = 0u; c0 < ${B}u; c0 += ${G}u) {
      if (c0) {
${group("        ")}        seqc_cp_commit();
        seqc_cp_wait<0>();
        __syncthreads();
      }
${outputs("      ", TO, G / 8, "c0 + ")}      __syncthreads();
    }
  }
}
`;
}

/** The readouts module `m` (lowRankReadModule's) with the column-group twins of `configs` added: their sources after
 * its own (with the mma prelude where m has none), their kernels after its own. */
export function withReadCols<M extends { source: string; kernels: readonly object[] }>(m: M, configs: readonly LowRankReadColsConfig[] = LOWRANK_READ_COLS_CONFIGS, patch?: (src: string) => string): { source: string; kernels: (M["kernels"][number] | LowRankReadColsKernel)[] } {
  if (!configs.length) return { source: m.source, kernels: [...m.kernels] };
  let source = m.source.includes("#define SEQC_TF32_MMA") ? "" : MMA_TF32_PRELUDE;
  const kernels: LowRankReadColsKernel[] = [];
  for (const c of configs) {
    readColsCheck(c);
    const entry = lowRankReadColsEntry(c);
    kernels.push({ ...c, op: "readout", rev: true, entry, threads: MMA_WARPS * 32, sharedBytes: readColsLayout(c).floats * 4 });
    source += readColsSource(c, entry);
  }
  return { source: m.source + (patch ? patch(source) : source), kernels: [...m.kernels, ...kernels] };
}
