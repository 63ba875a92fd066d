/**
 * The fused per-chunk readouts (compiler/backends/cuda/lowrank-readout.ts) with a per-key log decay (RWKV-7): the
 * torch target's ChunkCore.read with LR_FUSED_READ "cuda" and LR_READ_KEY "cuda" (runtime/torch/seqc_chunked_lowrank.py);
 * model-independent, so its module is <Model>.torch.json "kernels"."lowRankReadoutKey" (models with a per-key decay).
 *
 * Per batch row n (a chunk of C steps of one head) from a known start state S_0 [K, V], with M events (kk_{c,y} [K],
 * vv_{c,y} [V]) per step and G_t [K] the chunk's first t log decays summed per key (G_0 = 0):
 *
 *   S_t = diag(exp(ld_t)) S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T
 *
 *   key axis    y_a = S_{a+oq}^T q_a = S_0^T (exp(G_{a+oq}) q_a) + sum_{c < a+oq, y} (sum_i q_a[i] kk_{c,y}[i] exp(G_{a+oq}[i] - G_{c+1}[i])) vv_{c,y}
 *   value axis  x_a = S_{a+oq} z_a   = exp(G_{a+oq}) (S_0 z_a)   + sum_{c < a+oq, y} (z_a . vv_{c,y}) exp(G_{a+oq} - G_{c+1}) kk_{c,y}
 *
 * (products with exp(...) elementwise over the keys). Every exponent is a difference <= 0 (or G_{a+oq} <= 0), so exp
 * never overflows whatever the decays' sizes and underflow to 0 is the exact limit:
 *   key axis    the decay sits in the scores' sum over the keys i. A score tile of 4 queries (a = 4 ta + p) below the
 *               diagonal (steps c = 4 tc + s, tc < ta, so c + 1 <= 4 ta <= a + oq) splits every ratio at its first
 *               query's time: exp(G_{a+oq} - G_{4 ta}) exp(G_{4 ta} - G_{c+1}), both <= 1 (the lowrank-core.ts way);
 *               the diagonal tiles take each pair c < a + oq directly. The start term's exp(G_{a+oq}) scales Q in
 *               shared memory once the scores are taken.
 *   value axis  the scores are the plain masked products; the decay sits on the output keys j. An output tile's steps
 *               before its first query (c < 4 ta) are summed by Horner's rule in step order, the sum carried from
 *               step c - 1 to c by exp(G_{c+1} - G_c) <= 1, which leaves exp(G_{4 ta} - G_{c+1}) on each; then
 *               exp(G_{a+oq} - G_{4 ta}) per query; the tile's own steps c < a + oq take exp(G_{a+oq} - G_{c+1}) directly.
 *
 * The work and layout are lowrank-readout.ts's (256 threads a chunk, 4 x 4M score tiles on or below the diagonal, 4 x 4
 * output tiles), with G [C + 1][LG] in shared memory (LG = K + 1 on the key axis: the score tiles read a column of
 * rows 4 apart; K + 4 on the value axis: float4 rows) in place of the start operand, which the output tiles read from
 * global memory (L1): about 100 KB of shared memory at C = K = V = 64, M = 2, two blocks an SM.
 *
 * Tensors (float32, contiguous, as ChunkCore holds them): Q [N, C, mq, A]; EA [N, C, M, A]; EB [N, C, M, B]; S0 [N, K, V];
 * G [N, C + 1, K]; OUT [N, C, mq, B] (A = K, B = V on the key axis; A = V, B = K on the value axis). Arguments oq (0 / 1)
 * and mq at launch, and mirror: 0, or the chunks per line of the chain's reversed timeline (seqc_chunked_lowrank
 * LR_CHAIN_REV "kernel"), where Q and OUT are stored in forward time: row n's step a is then their row
 * n - n % mirror + mirror - 1 - n % mirror, step C - 1 - a (the other tensors as they are). One block of
 * LOWRANK_READ_THREADS threads per row n (blockIdx.x).
 */
import { LOWRANK_CORE_PRELUDE } from "./lowrank-core.ts";
import { scoreTileEvents, scoreTileSum } from "./lowrank-readout.ts";

export const LOWRANK_READ_KEY_THREADS = 256;

/** A compiled configuration: the read's axis, steps per chunk, key and value widths, events per step (decay: per key). */
export interface LowRankReadKeyConfig {
  axis: "key" | "value";
  C: number;
  K: number;
  V: number;
  M: number;
  /** Operands decayed where they are used (absent) or pre-decayed as they are loaded, "pre" (entries end in _pre;
   * seqc_chunked_lowrank LR_READ_KEY_PRE). Key axis: Q scaled to its 4-step tile's first time and the events to their
   * tile's end, so an off-diagonal score tile takes one expf a key (the tile pair's factor exp(G_{4ta} - G_{4tc+4}))
   * instead of eight; the diagonal tiles' pairs run on their own warps, a thread a query row, from the raw tensors in
   * global memory. Value axis: EB's events decayed to their tile's end, so the Horner sum over the steps before an output
   * tile is carried a tile at a time (4 expf a tile instead of 16); the tile's own steps read the raw EB from global memory. */
  form?: "pre";
}

/** A launchable kernel of the module (seqc_cuda.KernelModule: entry, threads, sharedBytes) with its configuration. */
export interface LowRankReadKeyKernel extends LowRankReadKeyConfig {
  op: "readout";
  decay: "key";
  /** Takes the last argument mirror (seqc_chunked_lowrank LR_CHAIN_REV "kernel"; modules built before it have none). */
  mirror: true;
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** The configurations the torch modules with a per-key decay get: RWKV-7's chunk of 64 micro-steps at K = V = 64, two
 * events per step (one low-rank pair and one pair), both axes (the chain's read / fwd / adjoint readouts), then the key
 * axes' pre-decayed forms (not yet timed on the card: seqc_chunked_lowrank LR_READ_KEY_PRE "off"). */
export const LOWRANK_READ_KEY_CONFIGS: readonly LowRankReadKeyConfig[] = [
  ...(["key", "value"] as const).map((axis) => ({ axis, C: 64, K: 64, V: 64, M: 2 })),
  ...(["key", "value"] as const).map((axis) => ({ axis, C: 64, K: 64, V: 64, M: 2, form: "pre" as const })),
];

export function lowRankReadKeyEntry(c: LowRankReadKeyConfig): string {
  return `seqc_lr_read_${c.axis}_key_c${c.C}k${c.K}v${c.V}m${c.M}${c.form ? `_${c.form}` : ""}`;
}

/** Shared memory layout in floats: Q^T [A][LQ]; a slot holding EA^T [A][LE], then the scores transposed [E][LQ]; EB
 * [E][B]; G [C + 1][LG] (E = C M events; LQ = C + 4, LE = E + 4). */
export function keyReadLayout(c: LowRankReadKeyConfig): { A: number; B: number; E: number; LQ: number; LE: number; LG: number; slot: number; floats: number } {
  const A = c.axis === "key" ? c.K : c.V, B = c.axis === "key" ? c.V : c.K, E = c.C * c.M;
  const LQ = c.C + 4, LE = E + 4, LG = c.axis === "key" ? c.K + 1 : c.K + 4;
  const slot = Math.max(A * LE, E * LQ);
  return { A, B, E, LQ, LE, LG, slot, floats: A * LQ + slot + E * B + (c.C + 1) * LG };
}

function check(c: LowRankReadKeyConfig): void {
  if (c.form === "pre" && c.axis === "key" && 32 * Math.ceil(((c.C / 4) * (c.C / 4 - 1)) / 64) + c.C > LOWRANK_READ_KEY_THREADS)
    throw new Error(`lowrank-readout-key: C ${c.C} has too many score tiles for form "pre" on ${LOWRANK_READ_KEY_THREADS} threads`);
  if (c.K % 4 || c.V % 4 || c.C % 4 || c.C < 4 || c.C > 64 || c.M < 1 || c.M > 4)
    throw new Error(`lowrank-readout-key: K ${c.K}, V ${c.V} and C ${c.C} must be multiples of 4 (4 x 4 register tiles), C <= 64 ((C / 4)^2 score tiles on ${LOWRANK_READ_KEY_THREADS} threads), M ${c.M} in 1..4`);
  if (keyReadLayout(c).floats * 4 > 227 * 1024) throw new Error(`lowrank-readout-key: C ${c.C}, K ${c.K}, V ${c.V}, M ${c.M} needs ${keyReadLayout(c).floats * 4} bytes of shared memory (> 227 KiB)`);
}

function kernelSource(c: LowRankReadKeyConfig): string {
  const { C, K, V, M } = c;
  const NT = LOWRANK_READ_KEY_THREADS, L = keyReadLayout(c);
  const { A, B, E, LQ, LE, LG } = L;
  const CT = C / 4, BT = B / 4;
  const key = c.axis === "key";
  const f4 = (p: string) => `(*(const float4*)&${p})`;
  const unroll = "#pragma unroll";
  const g = (t: string, i: string) => `sG[(${t}) * ${LG}u + (${i})]`;
  // a query's / output's row in Q and OUT: step a, or with mirror its step C - 1 - a (the row's own is its mirror image)
  const qa = `(mirror ? ${C - 1}u - a : a)`;
  // the score tiles: the key axis decays every product per key i; the value axis only masks
  const scoreLoop = key
    ? `        for (u32 i = 0; i < ${A}u; ++i) {
          const float4 q4 = ${f4(`sQ[i * ${LQ}u + 4u * ta]`)};
          float qa[4] = {q4.x, q4.y, q4.z, q4.w};
${scoreTileEvents(LE, M)}
          if (tc < ta) {
            // every c + 1 <= 4 ta <= a + oq: exp(G_{a+oq} - G_{c+1}) = exp(G_{a+oq} - G_{4 ta}) exp(G_{4 ta} - G_{c+1}), both <= 1
            const float g0 = ${g("4u * ta", "i")};
${unroll}
            for (u32 p = 0; p < 4u; ++p) qa[p] *= expf(${g("4u * ta + p + oq", "i")} - g0);
${unroll}
            for (u32 s = 0; s < 4u; ++s) {
              const float e = expf(g0 - ${g("4u * tc + s + 1u", "i")});
${unroll}
              for (u32 y = 0; y < ${M}u; ++y) ev[s * ${M}u + y] *= e;
            }
${unroll}
            for (u32 p = 0; p < 4u; ++p)
${unroll}
              for (u32 r = 0; r < ${4 * M}u; ++r) acc[p][r] = fmaf(qa[p], ev[r], acc[p][r]);
          } else {
            // the diagonal tile: the pairs c < a + oq, each ratio taken directly
${unroll}
            for (u32 p = 0; p < 4u; ++p)
${unroll}
              for (u32 s = 0; s < 4u; ++s)
                if (s < p + oq) {
                  const float w = qa[p] * expf(${g("4u * ta + p + oq", "i")} - ${g("4u * ta + s + 1u", "i")});
${unroll}
                  for (u32 y = 0; y < ${M}u; ++y) acc[p][s * ${M}u + y] = fmaf(w, ev[s * ${M}u + y], acc[p][s * ${M}u + y]);
                }
          }
        }`
    : `${scoreTileSum(A, LQ, LE, M)}
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 s = 0; s < 4u; ++s) {
            const float f = 4u * tc + s < 4u * ta + p + oq ? 1.f : 0.f;
${unroll}
            for (u32 y = 0; y < ${M}u; ++y) acc[p][s * ${M}u + y] *= f;
          }`;
  // the start term: key axis sum_i (exp(G_{a+oq}[i]) q_a[i]) S_0[i, j] (Q scaled in shared memory), S_0's row i a float4
  // of columns; value axis sum_i z_a[i] S_0[j, i], four rows j of S_0 a float4 of 4 i each
  const startLoop = key
    ? `      for (u32 i = 0; i < ${A}u; ++i) {
        const float4 q4 = ${f4(`sQ[i * ${LQ}u + 4u * ta]`)}, s4 = ${f4(`s0[i * ${V}u + 4u * tj]`)};
        const float qa[4] = {q4.x, q4.y, q4.z, q4.w}, sb[4] = {s4.x, s4.y, s4.z, s4.w};
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) as[p][j] = fmaf(qa[p], sb[j], as[p][j]);
      }`
    : `      for (u32 i = 0; i < ${A}u; i += 4u) {
        float sb[4][4];
${unroll}
        for (u32 j = 0; j < 4u; ++j) {
          const float4 s4 = ${f4(`s0[(4u * tj + j) * ${V}u + i]`)};
          sb[0][j] = s4.x; sb[1][j] = s4.y; sb[2][j] = s4.z; sb[3][j] = s4.w;
        }
${unroll}
        for (u32 h = 0; h < 4u; ++h) {
          const float4 q4 = ${f4(`sQ[(i + h) * ${LQ}u + 4u * ta]`)};
          const float qa[4] = {q4.x, q4.y, q4.z, q4.w};
${unroll}
          for (u32 p = 0; p < 4u; ++p)
${unroll}
            for (u32 j = 0; j < 4u; ++j) as[p][j] = fmaf(qa[p], sb[h][j], as[p][j]);
        }
      }`;
  const pre = c.form === "pre";
  // the value axis's tile's own steps: EB's events as they are, from shared memory, or (form "pre", where shared memory
  // holds them decayed to their tile's end) from global memory
  const ebOwn = (e: string) => (pre ? f4(`ebg[(${e}) * ${B}u + 4u * tj]`) : f4(`sB[(${e}) * ${B}u + 4u * tj]`));
  // the mix: key axis the scores times EB up to the tile's last step; value axis Horner over the steps before the tile
  // (carried by exp(G_{c+1} - G_c) per output key), then exp(G_{a+oq} - G_{4 ta}), then the tile's own steps directly
  const mixLoop = key
    ? `      const u32 ne = (4u * ta + 4u) * ${M}u;
      for (u32 e = 0; e < ne; ++e) {
        const float4 a4 = ${f4(`sX[e * ${LQ}u + 4u * ta]`)}, b4 = ${f4(`sB[e * ${B}u + 4u * tj]`)};
        const float sa[4] = {a4.x, a4.y, a4.z, a4.w}, eb[4] = {b4.x, b4.y, b4.z, b4.w};
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) ae[p][j] = fmaf(sa[p], eb[j], ae[p][j]);
      }`
    : `${pre ? `      // (form "pre": the events in shared memory are decayed to their tile's end; the sum carried a tile at a time by
      // exp(G_{4tc+4} - G_{4tc}) <= 1)
      for (u32 tc = 0; tc < ta; ++tc) {
        const float4 g1 = ${f4(g("4u * tc + 4u", "4u * tj"))}, g0 = ${f4(g("4u * tc", "4u * tj"))};
        const float r[4] = {expf(g1.x - g0.x), expf(g1.y - g0.y), expf(g1.z - g0.z), expf(g1.w - g0.w)};
        float tm[4][4];
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) tm[p][j] = 0.f;
${unroll}
        for (u32 h = 0; h < ${4 * M}u; ++h) {
          const u32 e = 4u * tc * ${M}u + h;
          const float4 a4 = ${f4(`sX[e * ${LQ}u + 4u * ta]`)}, b4 = ${f4(`sB[e * ${B}u + 4u * tj]`)};
          const float sa[4] = {a4.x, a4.y, a4.z, a4.w}, eb[4] = {b4.x, b4.y, b4.z, b4.w};
${unroll}
          for (u32 p = 0; p < 4u; ++p)
${unroll}
            for (u32 j = 0; j < 4u; ++j) tm[p][j] = fmaf(sa[p], eb[j], tm[p][j]);
        }
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) ae[p][j] = fmaf(ae[p][j], r[j], tm[p][j]);
      }` : `      for (u32 c = 0; c < 4u * ta; ++c) {
        const float4 g1 = ${f4(g("c + 1u", "4u * tj"))}, g0 = ${f4(g("c", "4u * tj"))};
        const float r[4] = {expf(g1.x - g0.x), expf(g1.y - g0.y), expf(g1.z - g0.z), expf(g1.w - g0.w)};
        float tm[4][4];
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) tm[p][j] = 0.f;
${unroll}
        for (u32 y = 0; y < ${M}u; ++y) {
          const float4 a4 = ${f4(`sX[(c * ${M}u + y) * ${LQ}u + 4u * ta]`)}, b4 = ${f4(`sB[(c * ${M}u + y) * ${B}u + 4u * tj]`)};
          const float sa[4] = {a4.x, a4.y, a4.z, a4.w}, eb[4] = {b4.x, b4.y, b4.z, b4.w};
${unroll}
          for (u32 p = 0; p < 4u; ++p)
${unroll}
            for (u32 j = 0; j < 4u; ++j) tm[p][j] = fmaf(sa[p], eb[j], tm[p][j]);
        }
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) ae[p][j] = fmaf(ae[p][j], r[j], tm[p][j]);
      }`}
      {
        const float4 gb = ${f4(g("4u * ta", "4u * tj"))};
        const float g0[4] = {gb.x, gb.y, gb.z, gb.w};
${unroll}
        for (u32 p = 0; p < 4u; ++p) {
          const float4 ga = ${f4(g("4u * ta + p + oq", "4u * tj"))};
          const float gq[4] = {ga.x, ga.y, ga.z, ga.w};
${unroll}
          for (u32 j = 0; j < 4u; ++j) ae[p][j] *= expf(gq[j] - g0[j]);
        }
      }
${unroll}
      for (u32 s = 0; s < 4u; ++s) {
        const u32 cs = 4u * ta + s;
        const float4 gc4 = ${f4(g("cs + 1u", "4u * tj"))};
        const float gc[4] = {gc4.x, gc4.y, gc4.z, gc4.w};
        float tm[4][4];
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) tm[p][j] = 0.f;
${unroll}
        for (u32 y = 0; y < ${M}u; ++y) {
          const float4 a4 = ${f4(`sX[(cs * ${M}u + y) * ${LQ}u + 4u * ta]`)}, b4 = ${ebOwn(`cs * ${M}u + y`)};
          const float sa[4] = {a4.x, a4.y, a4.z, a4.w}, eb[4] = {b4.x, b4.y, b4.z, b4.w};
${unroll}
          for (u32 p = 0; p < 4u; ++p)
${unroll}
            for (u32 j = 0; j < 4u; ++j) tm[p][j] = fmaf(sa[p], eb[j], tm[p][j]);
        }
${unroll}
        for (u32 p = 0; p < 4u; ++p)
          if (s < p + oq) {
            const float4 ga = ${f4(g("4u * ta + p + oq", "4u * tj"))};
            const float gq[4] = {ga.x, ga.y, ga.z, ga.w};
${unroll}
            for (u32 j = 0; j < 4u; ++j) ae[p][j] = fmaf(expf(gq[j] - gc[j]), tm[p][j], ae[p][j]);
          }
      }`;
  // form "pre", key axis: Q^T and EA^T loaded pre-decayed, Q to its 4-step tile's first time and each event to its tile's
  // end; off-diagonal tiles on threads t < NOFF by the triangle's rows (ta > tc), the diagonal tiles' query rows on the
  // warps from DOFF (a thread a row p of tile td), reading the raw Q and EA from global memory
  const NOFF = (CT * (CT - 1)) / 2, DOFF = 32 * Math.ceil(NOFF / 32);
  const preKey = pre && key;
  const loads = preKey
    ? `    for (u32 x = t; x < ${C * A}u; x += ${NT}u) {
      const u32 a = x / ${A}u, i = x % ${A}u;
      sQ[i * ${LQ}u + a] = q[(${qa} * mq + xq) * ${A}u + i] * expf(${g("a + oq", "i")} - ${g("a & ~3u", "i")});
    }
    for (u32 x = t; x < ${E * A}u; x += ${NT}u) {
      const u32 e = x / ${A}u, i = x % ${A}u, cs = e / ${M}u;
      sX[i * ${LE}u + e] = ea[x] * expf(${g("(cs | 3u) + 1u", "i")} - ${g("cs + 1u", "i")});
    }`
    : `    for (u32 x = t; x < ${C * A}u; x += ${NT}u) {
      const u32 a = x / ${A}u, i = x % ${A}u;
      sQ[i * ${LQ}u + a] = q[(${qa} * mq + xq) * ${A}u + i];
    }
    for (u32 x = t; x < ${E * A}u; x += ${NT}u) sX[(x % ${A}u) * ${LE}u + x / ${A}u] = ea[x];`;
  const preScores = `    // scores: off-diagonal tiles (queries a = 4 ta + p, events e = (4 tc + s) M + y, tc < ta) from the pre-decayed
    // operands times the tile pair's exp(G_{4ta} - G_{4tc+4}) <= 1; each diagonal tile's query row p pairwise from the raw tensors
    {
      const bool off = t < ${NOFF}u, dia = t >= ${DOFF}u && t < ${DOFF + C}u;
      u32 ta = 0, tc = 0, p0 = 0;
      if (off) {
        u32 r = t;
        ta = 1;
        while (r >= ta) { r -= ta; ++ta; }
        tc = r;
      }
      if (dia) { ta = tc = (t - ${DOFF}u) / 4u; p0 = (t - ${DOFF}u) % 4u; }
      float acc[4][${4 * M}];
${unroll}
      for (u32 p = 0; p < 4u; ++p)
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r) acc[p][r] = 0.f;
      if (off) {
${scoreTileSum(A, LQ, LE, M, `          const float d = expf(${g("4u * ta", "i")} - ${g("4u * tc + 4u", "i")});
          const float qa[4] = {q4.x * d, q4.y * d, q4.z * d, q4.w * d};`)}
      }
      if (dia) {
        const u32 a = 4u * ta + p0;
        for (u32 i = 0; i < ${A}u; ++i) {
          const float qv = q[(${qa} * mq + xq) * ${A}u + i], ga = ${g("a + oq", "i")};
${unroll}
          for (u32 s = 0; s < 4u; ++s)
            if (s < p0 + oq) {
              const float w = qv * expf(ga - ${g("4u * ta + s + 1u", "i")});
${unroll}
              for (u32 y = 0; y < ${M}u; ++y) acc[0][s * ${M}u + y] = fmaf(w, ea[((4u * ta + s) * ${M}u + y) * ${A}u + i], acc[0][s * ${M}u + y]);
            }
        }
      }
      __syncthreads();
      if (off) {
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r)
          *(float4*)&sX[(4u * tc * ${M}u + r) * ${LQ}u + 4u * ta] = make_float4(acc[0][r], acc[1][r], acc[2][r], acc[3][r]);
      }
      if (dia) {
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r) sX[(4u * tc * ${M}u + r) * ${LQ}u + 4u * ta + p0] = acc[0][r];
      }
      // the start term's queries exp(G_{a+oq}) q_a = exp(G_{4 floor(a/4)}) times the pre-decayed ones, in place
      for (u32 x = t; x < ${C * A}u; x += ${NT}u) {
        const u32 i = x / ${C}u, a = x % ${C}u;
        sQ[i * ${LQ}u + a] *= expf(${g("a & ~3u", "i")});
      }
      __syncthreads();
    }`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 2) ${lowRankReadKeyEntry(c)}(const float* __restrict__ Q, const float* __restrict__ EA, const float* __restrict__ EB, const float* __restrict__ S0, const float* __restrict__ Gg, float* __restrict__ OUT, u32 N, u32 oq, u32 mq, u32 mirror) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sQ = (float*)seqc_smem_raw;  // Q^T [A][LQ] (one query vector)
  float* sX = sQ + ${A * LQ};         // EA^T [A][LE] -> the scores transposed [E][LQ]
  float* sB = sX + ${L.slot};         // EB [E][B]
  float* sG = sB + ${E * B};          // G [C + 1][LG]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  // mirror (0: off): Q and OUT hold lines of mirror chunks in the reversed order of this core's rows and steps (the
  // chain's adjoint reads its reversed timeline from the forward's tensors): row n's step a is row nm's step C - 1 - a
  const u32 nm = mirror ? n - n % mirror + (mirror - 1u - n % mirror) : n;
  const float* q = Q + (size_t)nm * ${C}u * mq * ${A}u;
  const float* ea = EA + (size_t)n * ${E * A}u;
  const float* s0 = S0 + (size_t)n * ${K * V}u;
  float* out = OUT + (size_t)nm * ${C}u * mq * ${B}u;
${pre && !key ? `  const float* ebg = EB + (size_t)n * ${E * B}u;
  for (u32 x = t; x < ${(C + 1) * K}u; x += ${NT}u) sG[(x / ${K}u) * ${LG}u + x % ${K}u] = Gg[(size_t)n * ${(C + 1) * K}u + x];
  __syncthreads();  // G before the pre-decayed loads
  // EB's events decayed to their 4-step tile's end: exp(G_{4 floor(c/4) + 4} - G_{c+1}) <= 1
  for (u32 x = t; x < ${E * B}u; x += ${NT}u) {
    const u32 e = x / ${B}u, j = x % ${B}u, cs = e / ${M}u;
    sB[x] = ebg[x] * expf(${g("(cs | 3u) + 1u", "j")} - ${g("cs + 1u", "j")});
  }
` : `  for (u32 x = t; x < ${E * B}u; x += ${NT}u) sB[x] = EB[(size_t)n * ${E * B}u + x];
  for (u32 x = t; x < ${(C + 1) * K}u; x += ${NT}u) sG[(x / ${K}u) * ${LG}u + x % ${K}u] = Gg[(size_t)n * ${(C + 1) * K}u + x];
${preKey ? "  __syncthreads();  // G before the pre-decayed loads\n" : ""}`}  for (u32 xq = 0; xq < mq; ++xq) {
${loads}
    __syncthreads();
${preKey ? preScores : `    // scores: queries a = 4 ta + p against the events e = (4 tc + s) M + y, tiles on or below the diagonal
    {
      const u32 ta = t / ${CT}u, tc = t % ${CT}u;
      const bool on = t < ${CT * CT}u && tc <= ta;
      float acc[4][${4 * M}];
${unroll}
      for (u32 p = 0; p < 4u; ++p)
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r) acc[p][r] = 0.f;
      if (on) {
${scoreLoop}
      }
      __syncthreads();
      if (on) {
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r)
          *(float4*)&sX[(4u * tc * ${M}u + r) * ${LQ}u + 4u * ta] = make_float4(acc[0][r], acc[1][r], acc[2][r], acc[3][r]);
      }
${key ? `      // the start term's queries exp(G_{a+oq}) q_a, in place (the scores have read Q)
      for (u32 x = t; x < ${C * A}u; x += ${NT}u) {
        const u32 i = x / ${C}u, a = x % ${C}u;
        sQ[i * ${LQ}u + a] *= expf(${g("a + oq", "i")});
      }
` : ""}      __syncthreads();
    }`}
    // the outputs, 4 x 4 tiles (queries a = 4 ta + p, outputs j = 4 tj + q): the start term plus the mix of EB
    for (u32 x = t; x < ${CT * BT}u; x += ${NT}u) {
      const u32 ta = x / ${BT}u, tj = x % ${BT}u;
      float as[4][4], ae[4][4];
${unroll}
      for (u32 p = 0; p < 4u; ++p)
${unroll}
        for (u32 j = 0; j < 4u; ++j) as[p][j] = ae[p][j] = 0.f;
${startLoop}
${mixLoop}
${unroll}
      for (u32 p = 0; p < 4u; ++p) {
        const u32 a = 4u * ta + p;
${key ? `        *(float4*)&out[(${qa} * mq + xq) * ${B}u + 4u * tj] = make_float4(as[p][0] + ae[p][0], as[p][1] + ae[p][1], as[p][2] + ae[p][2], as[p][3] + ae[p][3]);` : `        const float4 ga = ${f4(g("a + oq", "4u * tj"))};
        *(float4*)&out[(${qa} * mq + xq) * ${B}u + 4u * tj] = make_float4(fmaf(expf(ga.x), as[p][0], ae[p][0]), fmaf(expf(ga.y), as[p][1], ae[p][1]), fmaf(expf(ga.z), as[p][2], ae[p][2]), fmaf(expf(ga.w), as[p][3], ae[p][3]));`}
      }
    }
    __syncthreads();
  }
}
`;
}

/** The kernel module for these configurations (default LOWRANK_READ_KEY_CONFIGS), one translation unit. */
export function lowRankReadKeyModule(configs: readonly LowRankReadKeyConfig[] = LOWRANK_READ_KEY_CONFIGS, patch?: (src: string) => string): { source: string; kernels: LowRankReadKeyKernel[] } {
  const kernels: LowRankReadKeyKernel[] = [];
  let source = LOWRANK_CORE_PRELUDE.replace("low-rank chunk transitions", "low-rank chunk readouts, a per-key decay").replace("lowrank-core.ts", "lowrank-readout-key.ts");
  for (const c of configs) {
    check(c);
    kernels.push({ ...c, op: "readout", decay: "key", mirror: true, entry: lowRankReadKeyEntry(c), threads: LOWRANK_READ_KEY_THREADS, sharedBytes: keyReadLayout(c).floats * 4 });
    source += kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
