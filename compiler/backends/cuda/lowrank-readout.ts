/**
 * The low-rank chunked backward's per-chunk readouts as one fused CUDA kernel per chunk (the torch target's delta-rule
 * family: runtime/torch/seqc_chunked_lowrank.py ChunkCore.read with LR_FUSED_READ "cuda"; model-independent, so its
 * module is <Model>.torch.json "kernels"."lowRankReadout").
 *
 * Per batch row n (a chunk of C steps of one head) from a known start state S_0 [K, V], with M events (kk_{c,y} [K],
 * vv_{c,y} [V]) per step and no or a scalar log decay (G_t the chunk's first t log decays summed, G_0 = 0):
 *
 *   S_t = exp(ld_t) S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T
 *
 * it computes what ChunkCore.read computes in several torch ops (the scores, the decay ratios, the products with the
 * events and the start state), for mq query vectors per step, read after (oq = 1) or before (oq = 0) the step:
 *
 *   key axis    y_a = S_{a+oq}^T q_a = exp(G_{a+oq}) S_0^T q_a + sum_{c < a+oq, y} exp(G_{a+oq} - G_{c+1}) (q_a . kk_{c,y}) vv_{c,y}
 *   value axis  x_a = S_{a+oq} z_a   = exp(G_{a+oq}) S_0 z_a   + sum_{c < a+oq, y} exp(G_{a+oq} - G_{c+1}) (z_a . vv_{c,y}) kk_{c,y}
 *
 * One kernel form for both axes: the queries Q of width A are contracted with the "A-side" events EA (kk on the key
 * axis, vv on the value axis), the masked scores mix the "B-side" events EB of width B (vv / kk), and the start term
 * takes S_0 (key) or S_0^T (value) as an [A][B] operand. fp32 FMA on the SIMT cores, as the transitions kernel
 * (lowrank-core.ts): the reads feed the log decays' cancelling adjoint sums. Decays are exponentiated only as
 * differences G_{a+oq} - G_{c+1} <= 0 (c + 1 <= a + oq) and as exp(G_{a+oq}) <= 1.
 *
 * The work, 256 threads per chunk, two blocks an SM (about 100 KB of shared memory at C = K = V = 64, M = 2; EB, S_0
 * and G read once, Q and EA once per query vector):
 *   scores  4 x 4M register tiles (4 queries against the M events of 4 steps), only tiles on or below the diagonal,
 *           masked and decayed in registers, stored transposed over EA^T;
 *   output  4 x 4 tiles: Q S (A products) and the scores times EB (up to the tile's last step's events), then
 *           exp(G_{a+oq}) times the first plus the second, float4 stores.
 * Floor at C = K = V = 64, M = 2, per chunk and query vector: 0.79 M FMAs (scores 0.26 M causal, mix 0.26 M, start
 * 0.26 M) and 64 KB of global reads (Q, EA, EB; S_0 16 KB once) and 16 KB written.
 *
 * Tensors (float32, as ChunkCore holds them): Q [N, C, mq, A] with step stride qs floats (mq A where contiguous; a view
 * such as one event slot of ChunkCore's [N, C, mk, A] keys, qs = mk A, is read as it is); EA [N, C, M, A]; EB [N, C, M, B];
 * S0 [N, K, V]; G [N, C + 1, 1] (unused without a decay); OUT [N, C, mq, B]; all but Q contiguous. Arguments oq (0 / 1),
 * mq, rev and qs at launch. rev = 1 reads the chunk in reversed time without copies: the kernel's step a is row C - 1 - a
 * of Q, EA, EB and OUT (the tensors stored in forward time; seqc_lowrank_wy.py's reversed chunks, LR_REV_READ "kernel"),
 * while G stays in the kernel's (reversed) step order. One block of LOWRANK_READ_THREADS threads per row n (blockIdx.x).
 *
 * Which configurations exist is data (LOWRANK_READ_CONFIGS); the runtime launches an entry only where one matches the
 * read (axis, decay mode, C, K, V, M) and else runs ChunkCore's torch ops (a per-key decay takes lowrank-readout-key.ts's
 * kernels instead, seqc_chunked_lowrank LR_READ_KEY).
 */
import { LOWRANK_CORE_PRELUDE } from "./lowrank-core.ts";
import { MMA_TF32_PRELUDE, mmaReadCheck, mmaReadLayout, mmaReadSource, type LowRankReadMath } from "./lowrank-readout-mma.ts";

export type { LowRankReadMath } from "./lowrank-readout-mma.ts";

export type LowRankReadDecay = "none" | "scalar";
export type LowRankReadAxis = "key" | "value";

/** A compiled configuration: the read's axis, the decay mode, steps per chunk, key and value widths, events per step. */
export interface LowRankReadConfig {
  axis: LowRankReadAxis;
  decay: LowRankReadDecay;
  C: number;
  K: number;
  V: number;
  M: number;
  /** How global memory is read into shared memory: scalar loads (absent) or "vec4": float4 loads, all of a thread's
   * issued before its shared stores, transposed operands read a row segment a thread so that the shared stores are
   * conflict-free (entries end in _v4; which decay modes ship with them: LOWRANK_READ_LOADS). */
  loads?: "vec4";
  /** The products: fp32 FMAs on the SIMT cores (absent) or the tensor-core twin (lowrank-readout-mma.ts): "tf32" (TF32
   * operands) or "tf32x3" (each operand as two TF32 parts, three products); entries end in _tf32 / _tf32x3; `loads` is
   * ignored (its copies are float4). */
  math?: LowRankReadMath;
}

/** A launchable kernel of the module (seqc_cuda.KernelModule: entry, threads, sharedBytes) with its configuration. */
export interface LowRankReadKernel extends LowRankReadConfig {
  op: "readout";
  /** The launch takes rev and qs after mq (the runtime passes them only to kernels that carry this). */
  rev: true;
  entry: string;
  threads: number;
  sharedBytes: number;
}

export const LOWRANK_READ_THREADS = 256;

/** Every configuration the torch modules may get, with scalar loads (the delta-rule family's chunk of 64 micro-steps at
 * K = V = 64, one low-rank pair and one pair per step: M = 2 events in the forward's and the adjoint's cores; DeltaNet
 * none, Gated DeltaNet scalar). */
export const LOWRANK_READ_SCALAR_CONFIGS: readonly LowRankReadConfig[] = (["none", "scalar"] as const).flatMap((decay) =>
  (["key", "value"] as const).map((axis) => ({ axis, decay, C: 64, K: 64, V: 64, M: 2 })));

/** Their float4-load twins (entries _v4). */
export const LOWRANK_READ_VEC4_CONFIGS: readonly LowRankReadConfig[] = LOWRANK_READ_SCALAR_CONFIGS.map((c) => ({ ...c, loads: "vec4" as const }));

/** Which loads each decay mode ships with, by the card (H200, 2026-11-28, bench/RESULTS.md "the readout kernel's float4
 * loads"): with no decay the float4 twins were faster at all five reads (0.545-0.855 ms against 0.628-0.980); with a
 * scalar decay neither was (0.571-0.928 against 0.587-0.948, two of five slower), so those keep scalar loads. */
export const LOWRANK_READ_LOADS: Readonly<Record<LowRankReadDecay, "scalar" | "vec4">> = { none: "vec4", scalar: "scalar" };

/** The tensor-core twins of LOWRANK_READ_SCALAR_CONFIGS, for bf16 tensors (seqc_chunked_lowrank LR_READ_MMA). */
export const LOWRANK_READ_MMA_CONFIGS: readonly LowRankReadConfig[] = (["tf32", "tf32x3"] as const).flatMap((math) =>
  LOWRANK_READ_SCALAR_CONFIGS.map((c) => ({ ...c, math })));

/** The configurations the torch modules get: LOWRANK_READ_SCALAR_CONFIGS with each decay mode's loads, then their
 * tensor-core twins (the runtime takes a twin only for bf16 tensors with LR_READ_MMA naming its math). */
export const LOWRANK_READ_CONFIGS: readonly LowRankReadConfig[] = [
  ...LOWRANK_READ_SCALAR_CONFIGS.map((c) => (LOWRANK_READ_LOADS[c.decay] === "vec4" ? { ...c, loads: "vec4" as const } : c)),
  ...LOWRANK_READ_MMA_CONFIGS,
];

export function lowRankReadEntry(c: LowRankReadConfig): string {
  return `seqc_lr_read_${c.axis}_${c.decay}_c${c.C}k${c.K}v${c.V}m${c.M}${c.math ? `_${c.math}` : c.loads === "vec4" ? "_v4" : ""}`;
}

/** Shared memory layout in floats: Q^T [A][LQ]; a slot holding EA^T [A][LE], then the scores transposed [E][LQ]; EB
 * [E][B]; the start operand [A][B]; G [C + 1] with a decay (E = C M events; LQ = C + 4, LE = E + 4: float4 rows off the
 * bank of the row above). */
function layout(c: LowRankReadConfig): { A: number; B: number; E: number; LQ: number; LE: number; slot: number; floats: number } {
  const A = c.axis === "key" ? c.K : c.V, B = c.axis === "key" ? c.V : c.K, E = c.C * c.M;
  const LQ = c.C + 4, LE = E + 4;
  const slot = Math.max(A * LE, E * LQ);
  return { A, B, E, LQ, LE, slot, floats: A * LQ + slot + E * B + A * B + (c.decay === "none" ? 0 : c.C + 1) };
}

function check(c: LowRankReadConfig): void {
  if (c.math) return mmaReadCheck(c);
  if (c.K % 4 || c.V % 4 || c.C % 4 || c.C < 4 || c.C > 64 || c.M < 1 || c.M > 4)
    throw new Error(`lowrank-readout: K ${c.K}, V ${c.V} and C ${c.C} must be multiples of 4 (4 x 4 register tiles), C <= 64 ((C / 4)^2 score tiles on ${LOWRANK_READ_THREADS} threads), M ${c.M} in 1..4`);
  if (layout(c).floats * 4 > 227 * 1024) throw new Error(`lowrank-readout: C ${c.C}, K ${c.K}, V ${c.V}, M ${c.M} needs ${layout(c).floats * 4} bytes of shared memory (> 227 KiB)`);
}

/** A score tile's events e = (4 tc + s) M + y at key i, from EA^T in shared memory (sX [A][LE]), into ev[4M] (float4
 * loads; CUDA lines at the score loop's body indent). Shared with lowrank-readout-key.ts. */
export function scoreTileEvents(LE: number, M: number): string {
  return `          float ev[${4 * M}];
#pragma unroll
          for (u32 h = 0; h < ${M}u; ++h) {
            const float4 e4 = (*(const float4*)&sX[i * ${LE}u + 4u * tc * ${M}u + 4u * h]);
            ev[4u * h] = e4.x; ev[4u * h + 1u] = e4.y; ev[4u * h + 2u] = e4.z; ev[4u * h + 3u] = e4.w;
          }`;
}

/** A score tile's sum over the keys i of Q^T's 4 queries (sQ [A][LQ], q4 at 4 ta; qa: the line(s) declaring qa[4] from
 * it, default as they are) times its 4M events into acc[4][4M]: the CUDA loop, no trailing newline. Shared with
 * lowrank-readout-key.ts (value axis, and the key axis's pre-decayed off-diagonal tiles). */
export function scoreTileSum(A: number, LQ: number, LE: number, M: number, qa = "          const float qa[4] = {q4.x, q4.y, q4.z, q4.w};"): string {
  return `        for (u32 i = 0; i < ${A}u; ++i) {
          const float4 q4 = (*(const float4*)&sQ[i * ${LQ}u + 4u * ta]);
${qa}
${scoreTileEvents(LE, M)}
#pragma unroll
          for (u32 p = 0; p < 4u; ++p)
#pragma unroll
            for (u32 r = 0; r < ${4 * M}u; ++r) acc[p][r] = fmaf(qa[p], ev[r], acc[p][r]);
        }`;
}

function kernelSource(c: LowRankReadConfig): string {
  const { C, K, V, M, decay } = c;
  const NT = LOWRANK_READ_THREADS, L = layout(c);
  const { A, B, E, LQ, LE } = L;
  const CT = C / 4, BT = B / 4;
  const f4 = (p: string) => `(*(const float4*)&${p})`;
  const unroll = "#pragma unroll";
  const dec = decay !== "none";
  // the start operand [A][B]: S_0 [K][V] as it is (key axis: A = K, B = V) or transposed (value axis: A = V, B = K)
  const sIdx = c.axis === "key" ? "x" : `(x % ${K}u) * ${V}u + x / ${K}u`;
  const v4 = c.loads === "vec4";
  // rev (a launch argument): step a's rows in global memory (Q, EA, EB, OUT) are row C - 1 - a (the chunk stored in forward
  // time, read as reversed); an event e = c M + y of step c is row evRow(e); G stays in the kernel's step order
  const row = (a: string) => `(rev ? ${C - 1}u - (${a}) : (${a}))`;
  const evRow = (e: string) => `(rev ? (${C - 1}u - (${e}) / ${M}u) * ${M}u + (${e}) % ${M}u : (${e}))`;
  // float4 loads of `count` float4s a block, a thread's R = ceil(count / NT) loads first (registers), then its stores:
  // load(x) the float4's global address, store(x, v) its shared stores
  const batch = (ind: string, tag: string, count: number, load: (x: string) => string, store: (x: string, v: string) => string) => {
    const R = Math.ceil(count / NT), full = count % NT === 0;
    const guard = (body: string) => (full ? body : `if (x < ${count}u) ${body}`);
    return `${ind}{
${ind}  float4 ${tag}[${R}];
${unroll}
${ind}  for (u32 r = 0; r < ${R}u; ++r) { const u32 x = t + r * ${NT}u; ${guard(`${tag}[r] = *(const float4*)&${load("x")};`)} }
${unroll}
${ind}  for (u32 r = 0; r < ${R}u; ++r) { const u32 x = t + r * ${NT}u; ${guard(`{ const float4 v = ${tag}[r]; ${store("x", "v")} }`)} }
${ind}}
`;
  };
  // transposed: row segment (row x % rows, float4 column x / rows), consecutive threads consecutive rows (conflict-free stores)
  const tr = (dst: string, ld: number, rows: string, x: string, v: string) =>
    [0, 1, 2, 3].map((k) => `${dst}[(4u * (${x} / ${rows}) + ${k}u) * ${ld}u + ${x} % ${rows}] = ${v}.${"xyzw"[k]};`).join(" ");
  const vecLoads = () =>
    batch("  ", "lb", (E * B) / 4, (x) => `EB[(size_t)n * ${E * B}u + ${evRow(`4u * ${x} / ${B}u`)} * ${B}u + (4u * ${x}) % ${B}u]`, (x, v) => `*(float4*)&sB[4u * ${x}] = ${v};`) +
    (c.axis === "key"
      ? batch("  ", "ls", (A * B) / 4, (x) => `S0[(size_t)n * ${K * V}u + 4u * ${x}]`, (x, v) => `*(float4*)&sS[4u * ${x}] = ${v};`)
      : batch("  ", "ls", (A * B) / 4, (x) => `S0[(size_t)n * ${K * V}u + (${x} % ${B}u) * ${V}u + 4u * (${x} / ${B}u)]`, (x, v) => tr("sS", B, `${B}u`, x, v)));
  const vecQ = () =>
    batch("    ", "lq", (C * A) / 4, (x) => `q[${row(`${x} % ${C}u`)} * qs + xq * ${A}u + 4u * (${x} / ${C}u)]`, (x, v) => tr("sQ", LQ, `${C}u`, x, v)) +
    batch("    ", "le", (E * A) / 4, (x) => `ea[${evRow(`${x} % ${E}u`)} * ${A}u + 4u * (${x} / ${E}u)]`, (x, v) => tr("sX", LE, `${E}u`, x, v));
  return `
extern "C" __global__ void __launch_bounds__(${NT}, 2) ${lowRankReadEntry(c)}(const float* __restrict__ Q, const float* __restrict__ EA, const float* __restrict__ EB, const float* __restrict__ S0, const float* __restrict__ Gg, float* __restrict__ OUT, u32 N, u32 oq, u32 mq, u32 rev, u32 qs) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sQ = (float*)seqc_smem_raw;  // Q^T [A][LQ] (one query vector)
  float* sX = sQ + ${A * LQ};         // EA^T [A][LE] -> the scores transposed [E][LQ]
  float* sB = sX + ${L.slot};         // EB [E][B]
  float* sS = sB + ${E * B};          // the start operand [A][B]
  float* sG = sS + ${A * B};          // G [C + 1]
  const u32 n = blockIdx.x, t = threadIdx.x;
  if (n >= N) return;
  const float* q = Q + (size_t)n * ${C}u * qs;
  const float* ea = EA + (size_t)n * ${E * A}u;
  float* out = OUT + (size_t)n * ${C}u * mq * ${B}u;
${v4 ? vecLoads() : `  for (u32 x = t; x < ${E * B}u; x += ${NT}u) sB[x] = EB[(size_t)n * ${E * B}u + ${evRow(`x / ${B}u`)} * ${B}u + x % ${B}u];
  for (u32 x = t; x < ${A * B}u; x += ${NT}u) sS[x] = S0[(size_t)n * ${K * V}u + ${sIdx}];
`}${dec ? `  for (u32 x = t; x < ${C + 1}u; x += ${NT}u) sG[x] = Gg[(size_t)n * ${C + 1}u + x];\n` : ""}  for (u32 xq = 0; xq < mq; ++xq) {
${v4 ? vecQ() : `    for (u32 x = t; x < ${C * A}u; x += ${NT}u) {
      const u32 a = x / ${A}u, i = x % ${A}u;
      sQ[i * ${LQ}u + a] = q[${row("a")} * qs + xq * ${A}u + i];
    }
    for (u32 x = t; x < ${E * A}u; x += ${NT}u) sX[(x % ${A}u) * ${LE}u + x / ${A}u] = ea[${evRow(`x / ${A}u`)} * ${A}u + x % ${A}u];
`}    __syncthreads();
    // scores: queries a = 4 ta + p against the events e = (4 tc + s) M + y, tiles on or below the diagonal
    {
      const u32 ta = t / ${CT}u, tc = t % ${CT}u;
      const bool on = t < ${CT * CT}u && tc <= ta;
      float acc[4][${4 * M}];
${unroll}
      for (u32 p = 0; p < 4u; ++p)
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r) acc[p][r] = 0.f;
      if (on) {
${scoreTileSum(A, LQ, LE, M)}
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 s = 0; s < 4u; ++s) {
            const u32 a = 4u * ta + p, cs = 4u * tc + s;
${dec ? `            const float f = cs < a + oq ? expf(sG[a + oq] - sG[cs + 1u]) : 0.f;` : `            const float f = cs < a + oq ? 1.f : 0.f;`}
${unroll}
            for (u32 y = 0; y < ${M}u; ++y) acc[p][s * ${M}u + y] *= f;
          }
      }
      __syncthreads();
      if (on) {
${unroll}
        for (u32 r = 0; r < ${4 * M}u; ++r)
          *(float4*)&sX[(4u * tc * ${M}u + r) * ${LQ}u + 4u * ta] = make_float4(acc[0][r], acc[1][r], acc[2][r], acc[3][r]);
      }
      __syncthreads();
    }
    // the outputs: exp(G_{a+oq}) (Q S)[a, j] + sum_e scores[a, e] EB[e, j], 4 x 4 tiles (the events up to the tile's last step)
    for (u32 x = t; x < ${CT * BT}u; x += ${NT}u) {
      const u32 ta = x / ${BT}u, tj = x % ${BT}u;
      float as[4][4], ae[4][4];
${unroll}
      for (u32 p = 0; p < 4u; ++p)
${unroll}
        for (u32 j = 0; j < 4u; ++j) as[p][j] = ae[p][j] = 0.f;
      for (u32 i = 0; i < ${A}u; ++i) {
        const float4 q4 = ${f4(`sQ[i * ${LQ}u + 4u * ta]`)}, s4 = ${f4(`sS[i * ${B}u + 4u * tj]`)};
        const float qa[4] = {q4.x, q4.y, q4.z, q4.w}, sb[4] = {s4.x, s4.y, s4.z, s4.w};
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) as[p][j] = fmaf(qa[p], sb[j], as[p][j]);
      }
      const u32 ne = (4u * ta + 4u) * ${M}u;
      for (u32 e = 0; e < ne; ++e) {
        const float4 a4 = ${f4(`sX[e * ${LQ}u + 4u * ta]`)}, b4 = ${f4(`sB[e * ${B}u + 4u * tj]`)};
        const float sa[4] = {a4.x, a4.y, a4.z, a4.w}, eb[4] = {b4.x, b4.y, b4.z, b4.w};
${unroll}
        for (u32 p = 0; p < 4u; ++p)
${unroll}
          for (u32 j = 0; j < 4u; ++j) ae[p][j] = fmaf(sa[p], eb[j], ae[p][j]);
      }
${unroll}
      for (u32 p = 0; p < 4u; ++p) {
        const u32 a = 4u * ta + p;
${dec ? `        const float d = expf(sG[a + oq]);` : `        const float d = 1.f;`}
        *(float4*)&out[(${row("a")} * mq + xq) * ${B}u + 4u * tj] = make_float4(fmaf(d, as[p][0], ae[p][0]), fmaf(d, as[p][1], ae[p][1]), fmaf(d, as[p][2], ae[p][2]), fmaf(d, as[p][3], ae[p][3]));
      }
    }
    __syncthreads();
  }
}
`;
}

/** The kernel module for these configurations (default LOWRANK_READ_CONFIGS), one translation unit. */
export function lowRankReadModule(configs: readonly LowRankReadConfig[] = LOWRANK_READ_CONFIGS, patch?: (src: string) => string): { source: string; kernels: LowRankReadKernel[] } {
  const kernels: LowRankReadKernel[] = [];
  let source = LOWRANK_CORE_PRELUDE.replace("low-rank chunk transitions", "low-rank chunk readouts").replace("lowrank-core.ts", "lowrank-readout.ts");
  if (configs.some((c) => c.math)) source += MMA_TF32_PRELUDE;
  for (const c of configs) {
    check(c);
    const floats = c.math ? mmaReadLayout(c).floats : layout(c).floats;
    kernels.push({ ...c, op: "readout", rev: true, entry: lowRankReadEntry(c), threads: LOWRANK_READ_THREADS, sharedBytes: floats * 4 });
    source += c.math ? mmaReadSource(c, lowRankReadEntry(c)) : kernelSource(c);
  }
  return { source: patch ? patch(source) : source, kernels };
}
