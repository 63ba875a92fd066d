/**
 * The matvec cell partitioned over the batch (small hidden sizes): the same recognised cells as
 * matvec-cell.ts (LSTM, GRU, their backward cores) and the same pointwise body (cellBody), but each block
 * owns a few batch rows and every hidden unit. Batch rows are independent, so a step needs no grid barrier,
 * no cooperative launch and no round trip of the state through L2:
 *   - the whole recurrent matrix of every matvec sits in the block's shared memory for all T steps,
 *     transposed ([depth][row]: the threads of a warp read consecutive rows, the vector is a broadcast);
 *   - a step is: the matvecs (one output (b, row) per thread, four partial sums over the depth), __syncthreads,
 *     the pointwise cell (b, j) and, for a cell with let vectors (a backward core), the next step's phase A
 *     (the statements before the matvec, the let vectors to shared memory), __syncthreads;
 *   - what a step reads from global memory (the hoisted input projections, the model's inputs) is staged into
 *     shared memory PFD - 1 = 7 steps ahead with cp.async (a ring), so its latency hides behind the steps before.
 * It applies where the matrices, states and staged slices fit one block's shared memory (at H = 32: 16 KiB of
 * W_hh for an LSTM); where it applies the runner prefers it (plan.ts lists it before the unit-partitioned cell).
 * Its second version (`-batch2`, listed first) computes a backward core's state-free work before the recurrence in an
 * elementwise kernel (matvec-cell-hoist.ts) and keeps integer divisions by runtime sizes out of the step loop.
 * A third (`-batch3`: each thread (b, j) computing the matvec rows its own pointwise element reads, in one-warp blocks
 * at H = 32) measured slower than `-batch2` on the H100 (bench/RESULTS.md: the step is the serial matvec chain, not the
 * barriers) and was removed. Its fourth (`-batch4`, listed first, preferred where one matvec output a thread and each thread's row slice fits WREG
 * registers: LSTM/GRU at H <= 32 and B <= 132) is `-batch2` with a step's serial chain shortened: the row slice in registers
 * over all T steps, the staged copies from a per-thread list spread over the block, the depth slices' sum from loads issued
 * together, sigmoid by a select, the thread's one (b, j) decomposed before the step loop, and its own states and phase-A lets
 * mirrored in registers. Every value is bitwise `-batch2`'s. H100, B = 64, H = 32, T = 2048 (bench/RESULTS.md): LSTM
 * recording forward 1.74 vs 3.21 ms, core 1.28 vs 3.32; the same without the registers (`-batch4s`, measured then removed)
 * 2.68 / 1.90: the registers are half the gain.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import { inputBuffer, stateOffset, STATES, uniformFields, paramOffset } from "../../kernel/interface.ts";
import { flatIndex } from "../../kernel/symbolic.ts";
import { overrideValues } from "./overrides.ts";
import { tensorsRead } from "./scope.ts";
import type { CudaFormPlan, CudaBufferRef } from "../../../runtime/cuda/plan.ts";
import { hoistStateFree } from "./matvec-cell-hoist.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";
import { cellApplicable, cellBody, cellDecls, hoistedGemms, matvecCellPlan, phaseOfLets, productC, weightIndex, type MatvecCell } from "./matvec-cell.ts";

/** Depth slices a matvec output may be split into (where a block has fewer outputs than threads). */
const KSMAX = 4;
/**
 * Steps staged ahead: a ring of PFD per-step slices, the copy of step t + PFD - 1 issued at step t. Measured on the
 * H100 (LSTM/GRU H = 32, B = 64, bench/RESULTS.md): no faster than one step ahead (recording forward 3.54 vs 3.50 ms),
 * so the step's time is not the staged reads' latency; kept because it costs only shared memory.
 */
const PFD = 8;

/**
 * `v2`: the second version of the cell: a step's state-free work computed before the recurrence by an elementwise
 * kernel (matvec-cell-hoist.ts; the backward cores), and no integer division by a runtime size inside the step loop
 * (a thread's first matvec output and first (b, j) decomposed once before it, the staged copies walked row by row).
 */
export interface BatchCellConfig {
  THREADS: number;
  suffix: string;
  v2?: boolean;
  /**
   * `lean` (`-batch4`): the step's serial chain shortened where a thread of `-batch2` waits: a step's staged copies
   * spread over every thread of the block (each thread's copies decomposed once, before the step loop: at H = 32 a core's 7
   * slices of H values were all issued by warp 0, on its way to the matvec), the matvec's depth slices summed from loads
   * issued together (not a loop of dependent ones), and sigmoid without a branch (the same two formulas, chosen by a
   * select: a warp whose lanes differ in sign ran both sides one after the other, and the four gates could not overlap),
   * and a thread's matvec row (its slice of the depth, at most WREG values) held in registers over all T steps.
   */
  lean?: boolean;
}
/**
 * Threads per block. The runner takes the first applicable preferred form: 128 threads where a block's matvec
 * outputs (rows per block x matrix rows) are at most 128 (one output a thread), else 256.
 */
export const BATCH_CELL_CONFIGS: BatchCellConfig[] = [
  { THREADS: 128, suffix: "-batch4", v2: true, lean: true },
  { THREADS: 128, suffix: "-batch2", v2: true },
  { THREADS: 128, suffix: "-batch" },
  { THREADS: 256, suffix: "-batch-256" },
];

const HELPERS = `#ifndef SEQC_CELL_BATCH_HELPERS
#define SEQC_CELL_BATCH_HELPERS
// a 4-byte asynchronous copy global -> shared (sm_80+), and the wait for every copy this thread issued
__device__ __forceinline__ void seqc_cpa4(float* s, const float* g) {
#ifdef SEQC_EMU
  *s = *g;
#else
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\\n" :: "r"((unsigned int)__cvta_generic_to_shared(s)), "l"(g) : "memory");
#endif
}
// a matvec result: the sum of its ks partial sums over slices of the depth, ms apart
__device__ __forceinline__ float seqc_msum(const float* m, unsigned int ms, unsigned int ks) {
  float a = m[0];
  for (unsigned int s = 1; s < ks; ++s) a += m[(size_t)s * ms];
  return a;
}
// the same sum with its loads issued together, unconditionally (s_M holds KSMAX = 4 slices; ks <= 4); the slices past
// ks are dropped by a select, and adding 0.f leaves the sum bitwise as the loop's
__device__ __forceinline__ float seqc_msum4(const float* m, unsigned int ms, unsigned int ks) {
  const float y1 = m[ms], y2 = m[2u * ms], y3 = m[3u * ms];
  return ((m[0] + (ks > 1u ? y1 : 0.f)) + (ks > 2u ? y2 : 0.f)) + (ks > 3u ? y3 : 0.f);
}
// seqc_sigmoid without a branch: the same two formulas (1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below), bitwise,
// chosen by a select, so a warp whose lanes differ in sign runs one expf and one division
__device__ __forceinline__ float seqc_sigmoid_sel(float x) {
  const float e = expf(-fabsf(x));
  return (x >= 0.f ? 1.f : e) / (1.f + e);
}
__device__ __forceinline__ void seqc_cpa_commit() {
#ifndef SEQC_EMU
  asm volatile("cp.async.commit_group;\\n" ::: "memory");
#endif
}
// wait until at most N of this thread's committed groups are pending
template <int N> __device__ __forceinline__ void seqc_cpa_wait() {
#ifndef SEQC_EMU
  asm volatile("cp.async.wait_group %0;\\n" :: "n"(N) : "memory");
#endif
}
#endif`;

/** Most values of a thread's matvec row `lean` holds in registers (groups of 4 of the depth: WREG / 4 float4). */
const WREG = 32;
/** Most staged copies of a step a thread issues from its precomputed list (`lean`); a block with more walks the slices as `-batch2`. */
const NCP = 4;

/** Threads a block of the elementwise kernel of the `hoist` variant, and its most blocks (a grid-stride loop past them). */
const PRE_THREADS = 256;
const PRE_BLOCKS_MAX = 65536;

export function renderMatvecCellBatch(model0: I.Model, CELL: BatchCellConfig = BATCH_CELL_CONFIGS[1]): MatvecCell {
  const el = matvecCellPlan(model0);
  if (!el.ok) throw new Error(`matvec cell form of ${model0.name}: ${el.why}`);
  const v2 = !!CELL.v2;
  const lean = !!CELL.lean;
  const hoisted = v2 ? hoistStateFree(model0, el.plan) : undefined;
  const model = hoisted?.model ?? model0;
  const plan = hoisted ? { ...el.plan, body: hoisted.body, phaseA: phaseOfLets(el.plan, hoisted.body) } : el.plan;
  const kvals = hoisted?.keys ?? [];
  const { unit, xterms, rterms, body } = plan;
  const states = I.tensorsOfKind(model, "state");
  const inputs = I.tensorsOfKind(model, "input");
  const name = `seqc_${model.name}_cell${CELL.suffix.replace(/-/g, "_")}`;
  const uniforms = uniformFields(model);
  const overrides = [...model.dims.map((d) => `D_${d.name}`), ...I.tensorsOfKind(model, "param").map((p) => `PO_${p.name}`), "BB"];

  // what a step reads from global memory, staged ahead: s_P[PFD][B][PT], B = rows of this block
  const read = new Set<string>();
  for (const s of body) tensorsRead(s.expr, read);
  const stagedInputs = inputs.filter((t) => read.has(t.name) && !t.init);
  const stage = [
    ...xterms.filter((x) => read.has(`__X${x.id}`)).map((x) => ({ tensor: `__X${x.id}`, src: `ws_X${x.id}`, shape: x.rows })),
    ...kvals.map((k) => ({ tensor: k, src: `ws_${k.slice(2)}`, shape: [{ kind: "dim", name: unit }] as I.Extent[] })),
    ...stagedInputs.map((t) => ({ tensor: t.name, src: inputBuffer(t.name), shape: t.shape })),
  ].map((s, k) => ({ ...s, k }));
  const PT = stage.length ? stage.map((s) => `(${productC(s.shape)})`).join(" + ") : "0u";
  const stageOf = new Map(stage.map((s) => [s.tensor, s]));
  const staged = (tensor: string, idx: K.KExpr[]): K.KExpr | undefined => {
    const s = stageOf.get(tensor);
    return s && K.load("s_P", K.add(K.add(K.ref("pb"), K.ref(`SO${s.k}`)), flatIndex(idx, s.shape)));
  };
  const parts = cellBody(model, plan, { overrides, bg: "bg", staged, mirror: lean, mRead: (at) => `${lean ? "seqc_msum4" : "seqc_msum"}(s_M + (${at}), MS, KS)`,
    // `lean`: sigmoid by a select, not a branch (bitwise the same values)
    fns: lean ? { sigmoid: "seqc_sigmoid_sel" } : undefined });
  const { E, stIndex, lVecs, lvOff, lvTotal, lvTotalS, aTotal, rowsLocal, wOff, mOff, initVals, outLocals, publish, extS } = parts;
  const { cellLines, cellLinesA } = parts;

  const decls = cellDecls(model, xterms, name, overrides);
  const { structs, uo, ovDecls } = decls;
  const kBuf = (k: string, w: boolean) => ({ ref: { kind: "workspace", name: k.slice(2) } as CudaBufferRef, decl: `${w ? "" : "const "}float* __restrict__ ws_${k.slice(2)}` });
  const bufs = [...decls.bufs, ...kvals.map((k) => kBuf(k, false))];

  // one output (b, row) per thread, or per KS threads where a block has fewer outputs than threads (each sums
  // every KS-th group of 4 of the depth into slice s of s_M; the pointwise cell adds the slices); four partial sums
  const matvec = rterms
    .map((r) => {
      const V = r.vecKind === "state" ? `s_S + ${stIndex.get(r.vec)}u * B * E + (size_t)b * E` : `s_L + (size_t)b * (${lvTotal}) + ${lvOff.get(r.vec)!}`;
      // `lean`: where each thread owns at most one output and its slice of the depth fits WREG values, that slice of the
      // row sits in registers (w${r.id}[q]: depth 4 slice + 4 KS q .. + 3), summed in the loop's order (bitwise the same)
      const inRegs = `    if (WR${r.id}) { // ${r.param} . ${r.vec}${r.vecKind === "state" ? "(t-1)" : ""}, the row in registers  ->  s_M[slice * MS + MO${r.id} + b * RL + row]
      if (threadIdx.x < NB * RL${r.id} * KS) {
        const unsigned int KV = ${productC(r.vecShape)}, RL = RL${r.id}, slice = M${r.id}_slice, b = M${r.id}_b, row = M${r.id}_row;
        const float* V = ${V};
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll
        for (unsigned int q = 0; q < ${WREG / 4}u; ++q) {
          const unsigned int k = 4u * slice + 4u * KS * q;
          if (k < KV) {
            const float4 v = *reinterpret_cast<const float4*>(V + k);
            a0 = fmaf(w${r.id}[q].x, v.x, a0);
            a1 = fmaf(w${r.id}[q].y, v.y, a1);
            a2 = fmaf(w${r.id}[q].z, v.z, a2);
            a3 = fmaf(w${r.id}[q].w, v.w, a3);
          }
        }
        s_M[slice * MS + MO${r.id} + b * RL + row] = (a0 + a1) + (a2 + a3);
      }
    } else`;
      return `${lean ? inRegs : ""}    { // ${r.param} . ${r.vec}${r.vecKind === "state" ? "(t-1)" : ""}  ->  s_M[slice * MS + MO${r.id} + b * RL + row]
      const unsigned int RL = RL${r.id}, KV = ${productC(r.vecShape)}, NO = NB * RL;
      const float* W = s_W + ${wOff[r.id]};
      for (unsigned int o = threadIdx.x; o < NO * KS; o += blockDim.x) {
${v2 ? `        unsigned int slice = M${r.id}_slice, b = M${r.id}_b, row = M${r.id}_row;
        if (o != threadIdx.x) { slice = o / NO; b = (o % NO) / RL; row = o % RL; }` : "        const unsigned int slice = o / NO, b = (o % NO) / RL, row = o % RL;"}
        const float* V = ${V};
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll 4
        for (unsigned int k = 4u * slice; k < KV; k += 4u * KS) {
          const float4 v = *reinterpret_cast<const float4*>(V + k);
          a0 = fmaf(W[(size_t)k * RL + row], v.x, a0);
          a1 = fmaf(W[(size_t)(k + 1u) * RL + row], v.y, a1);
          a2 = fmaf(W[(size_t)(k + 2u) * RL + row], v.z, a2);
          a3 = fmaf(W[(size_t)(k + 3u) * RL + row], v.w, a3);
        }
        s_M[slice * MS + MO${r.id} + b * RL + row] = (a0 + a1) + (a2 + a3);
      }
    }`;
    })
    .join("\n");

  // every row of each matrix (all units), transposed: s_W[k * RL + row]
  const loadW = rterms
    .map((r) => {
      const { decode, index } = weightIndex(r, (a) => `      const unsigned int rv${a} = rest % E; rest /= E;`);
      return `  { // ${r.param}, every row (all units), transposed: [${productC(r.vecShape)}][rows]
    const unsigned int RL = RL${r.id}, KV = ${productC(r.vecShape)};
    for (unsigned int i = threadIdx.x; i < RL * KV; i += blockDim.x) {
      unsigned int rest = i % RL, kr = i / RL;
${decode}
      s_W[${wOff[r.id]} + i] = __ldg(params + SEQC_${paramOffset(r.param)} + (${index}));
    }
  }`;
    })
    .join("\n");

  // `lean`: each thread's slice of its matvec row, from s_W into registers once (zeros past the depth / outputs)
  const wregLoad = rterms
    .map((r) => `  const unsigned int KV${r.id} = ${productC(r.vecShape)};
  const bool WR${r.id} = NB * RL${r.id} * KS <= blockDim.x && KV${r.id} <= ${WREG}u * KS;  // block-uniform
  float4 w${r.id}[${WREG / 4}];
  {
    const float* W = s_W + ${wOff[r.id]};
    const unsigned int RL = RL${r.id}, slice = M${r.id}_slice, row = M${r.id}_row;
    const bool mine = WR${r.id} && threadIdx.x < NB * RL * KS;
#pragma unroll
    for (unsigned int q = 0; q < ${WREG / 4}u; ++q) {
      const unsigned int k = 4u * slice + 4u * KS * q;
      w${r.id}[q] = mine && k < KV${r.id} ? make_float4(W[(size_t)k * RL + row], W[(size_t)(k + 1u) * RL + row], W[(size_t)(k + 2u) * RL + row], W[(size_t)(k + 3u) * RL + row]) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }
`)
    .join("");

  // `lean`: this thread's copies of a step, element i = threadIdx.x + n blockDim.x (n < NCP) of the block's NB x PT staged
  // values, decomposed once: source at step 0, its stride a step, and its place in a step's slice of s_P
  const leanDecls = lean
    ? `  const bool ONE = NB * E <= blockDim.x;  // block-uniform: one (b, j) a thread
  const bool CPL = NB * PT <= ${NCP}u * blockDim.x;  // block-uniform: else the slices are walked as in -batch2
  const float* cp_src[${NCP}];
  unsigned int cp_n[${NCP}], cp_dst[${NCP}];
#pragma unroll
  for (unsigned int n = 0; n < ${NCP}u; ++n) {
    const unsigned int i = threadIdx.x + n * blockDim.x;
    cp_src[n] = nullptr; cp_n[n] = 0u; cp_dst[n] = 0u;
    if (CPL && i < NB * PT) {
      const unsigned int b = i / PT, r = i % PT;
      cp_dst[n] = b * PT + r;
${stage.map((s, k) => `      ${k ? "else " : ""}if (r < SO${s.k} + ${productC(s.shape)}) { cp_n[n] = ${productC(s.shape)}; cp_src[n] = ${s.src} + (size_t)(b0 + b) * T * cp_n[n] + (r - SO${s.k}); }`).join("\n")}
    }
  }
`
    : "";
  // the staged slices of step tt for this block's rows, s_P[tt & 1][b][..]
  const stageCopyLean = (tt: string) => `    if (CPL) {
#pragma unroll
      for (unsigned int n = 0; n < ${NCP}u; ++n) if (cp_src[n]) seqc_cpa4(s_P + (size_t)((${tt}) & ${PFD - 1}u) * B * PT + cp_dst[n], cp_src[n] + (size_t)(${tt}) * cp_n[n]);
    } else {
${stageCopyWalk(tt)}
    }`;
  const stageCopy = (tt: string) => (lean && stage.length ? stageCopyLean(tt) : stageCopyWalk(tt));
  const stageCopyWalk = (tt: string) =>
    stage
      .map((s) =>
        v2
          ? `    for (unsigned int b = 0; b < NB; ++b) for (unsigned int e = threadIdx.x; e < ${productC(s.shape)}; e += blockDim.x) seqc_cpa4(s_P + (size_t)((${tt}) & ${PFD - 1}u) * B * PT + (size_t)b * PT + SO${s.k} + e, ${s.src} + ((size_t)(b0 + b) * T + ${tt}) * (${productC(s.shape)}) + e);`
          : `    for (unsigned int i = threadIdx.x; i < NB * (${productC(s.shape)}); i += blockDim.x) { const unsigned int n = ${productC(s.shape)}, b = i / n, e = i % n; seqc_cpa4(s_P + (size_t)((${tt}) & ${PFD - 1}u) * B * PT + (size_t)b * PT + SO${s.k} + e, ${s.src} + ((size_t)(b0 + b) * T + ${tt}) * n + e); }`)
      .join("\n");
  const loopHead = `    for (unsigned int i = threadIdx.x; i < NB * E; i += blockDim.x) {
${v2 ? `      unsigned int b = P_b, j = P_j;
      if (i != threadIdx.x) { b = i / E; j = i % E; }
      const unsigned int jl = j, bg = b0 + b; (void)bg;` : `      const unsigned int b = i / E, j = i % E, jl = j, bg = b0 + b; (void)bg;`}
      const unsigned int pb = (t & ${PFD - 1}u) * B * PT + b * PT; (void)pb;`;
  // the (b, j) loop of a step around `body`; `lean`: where a block has no more elements than threads (block-uniform ONE),
  // a thread's one (b, j) is the one decomposed before the step loop, so the compiler keeps its index arithmetic out
  // of the loop; the own values mirrored in registers (cellBody's mirror) are loaded at the top of the iteration
  const mirrorDecls = parts.mirrorDecls.join("\n");
  const pointwise = (body: string) =>
    lean
      ? `    if (ONE) {
      if (threadIdx.x < NB * E) {
        const unsigned int b = P_b, j = P_j, jl = j, bg = b0 + b; (void)bg;
        const unsigned int pb = (t & ${PFD - 1}u) * B * PT + b * PT; (void)pb;
${mirrorDecls}
${body}
      }
    } else {
${loopHead}
${mirrorDecls}
${body}
    }
    }`
      : `${loopHead}
${body}
    }`;
  // phase A of a step (let vectors only): the statements before the first matvec and the let vectors to s_L. It
  // runs for step t + 1 right after step t's phase B in the same (b, j) loop (both read and write only their own
  // (b, j), and step t's matvec is done): two barriers a step, not three
  const phaseA = (tt: string) =>
    lVecs.length
      ? `      if (${tt} < T) {
        const unsigned int tn = ${tt};
        {
          const unsigned int t = tn, pb = (t & ${PFD - 1}u) * B * PT + b * PT; (void)pb;
${outLocals.join("\n")}
${cellLinesA.join("\n")}
${publish("s_L").join("\n")}
        }
      }`
      : "";
  const soDecls = (() => {
    let off = "0u";
    return stage.map((s) => {
      const d = `  const unsigned int SO${s.k} = ${off}; (void)SO${s.k};`;
      off = `${off} + ${productC(s.shape)}`;
      return d;
    });
  })();
  const rDecls = rterms.map((r) => `  const unsigned int RL${r.id} = ${rowsLocal(r)}u * E; const unsigned int MO${r.id} = ${mOff[r.id]}; (void)MO${r.id};`);
  const nS = states.length;
  const rowsTotalC = rterms.map((r) => `${rowsLocal(r)}u * E`).join(" + ");
  const minKV = rterms.length === 1 ? productC(rterms[0].vecShape) : rterms.map((r) => `(${productC(r.vecShape)})`).reduce((a, b) => `min(${a}, ${b})`);

  const src = `
// ==== ${model.name}: sequential cell over batch rows (every unit, the whole recurrent matrix in shared memory; no grid barrier) ====
${HELPERS}
${structs}
extern "C" __global__ void __launch_bounds__(${CELL.THREADS}) ${name}(${[...bufs.map((b) => b.decl), ...uo].join(", ")}) {
${ovDecls}
  const unsigned int T = u.T, E = ${E}, SEQC_JB = E;  // every unit: the unit cell's JB is E here
  const unsigned int B = SEQC_BB;                     // batch rows per block (the shared arrays' stride)
  const unsigned int b0 = blockIdx.x * B, NB = min(B, u.B - b0);
  const unsigned int PT = ${PT}; (void)PT;
  // depth slices of the matvecs (at most ${KSMAX}): while a block has fewer outputs than threads, and each slice gets 4+ values
  const unsigned int MS = B * (${rowsTotalC}), MINKV = ${minKV};
  unsigned int KS = 1u;
  while (KS < ${KSMAX}u && 2u * KS * MS <= blockDim.x && 8u * KS <= MINKV) KS *= 2u;
  extern __shared__ float4 seqc_smem4[];
  float* s_W = reinterpret_cast<float*>(seqc_smem4);        // recurrent matrices, transposed
  float* s_M = s_W + (${wOff[rterms.length]});              // matvec results [slice][B][rows]
  float* s_S = s_M + ${KSMAX}u * MS;                         // states [${nS}][B][E]
  float* s_L = s_S + ${nS}u * B * E;                         // let vectors of the matvecs [B][${lVecs.length ? "their sizes" : "none"}]
  float* s_A = s_L + (size_t)B * (${lvTotal});              // phase A's lets [${aTotal}][B][E]
  float* s_P = s_A + ${aTotal}u * B * E;                     // staged per-step reads [${PFD}][B][PT]
  (void)s_L; (void)s_A; (void)s_P; (void)SEQC_JB;
${soDecls.join("\n")}
${rDecls.join("\n")}
${leanDecls}${v2 ? `
  // this thread's first (b, j) of the pointwise loop and first output of each matvec, decomposed once
  const unsigned int P_b = threadIdx.x / E, P_j = threadIdx.x % E; (void)P_b; (void)P_j;
${rterms.map((r) => `  const unsigned int M${r.id}_slice = threadIdx.x / (NB * RL${r.id}), M${r.id}_b = (threadIdx.x % (NB * RL${r.id})) / RL${r.id}, M${r.id}_row = threadIdx.x % RL${r.id};`).join("\n")}` : ""}
${loadW}
  for (unsigned int i = threadIdx.x; i < NB * E; i += blockDim.x) {
    const unsigned int b = i / E, j = i % E, bg = b0 + b;
${states.map((s, si) => `    s_S[${si}u * B * E + i] = ${initVals[si]};`).join("\n")}
  }
  // steps 0 .. ${PFD - 2} staged (one cp.async group a step, empty past T), then step t + ${PFD - 1} at step t
  for (unsigned int tt = 0; tt < ${PFD - 1}u; ++tt) {
    if (tt < T) {
${stageCopy("tt")}
    }
    seqc_cpa_commit();
  }
  seqc_cpa_wait<${PFD - 2}>();
  __syncthreads();
${lean ? wregLoad : ""}${lVecs.length ? `  {
    const unsigned int t = 0u;
${pointwise(`${phaseA("0u")}`)}
  }
  __syncthreads();
` : ""}  for (unsigned int t = 0; t < T; ++t) {
    if (t + ${PFD - 1}u < T) {
${stageCopy(`(t + ${PFD - 1}u)`)}
    }
    seqc_cpa_commit();
${matvec}
    seqc_cpa_wait<${PFD - 2}>();  // step t + 1's group is in (phase A of step t + 1 below reads it)
    __syncthreads();
${pointwise(`${outLocals.join("\n")}
${cellLines.join("\n")}
${phaseA("t + 1u")}`)}
    __syncthreads();
  }
  for (unsigned int i = threadIdx.x; i < NB * E; i += blockDim.x) {
    const unsigned int b = i / E, j = i % E, bg = b0 + b;
${states.map((s, si) => `    ${STATES}[u.${stateOffset(s.name)} + (size_t)bg * E + j] = s_S[${si}u * B * E + i];`).join("\n")}
  }
}
`;

  // the hoist variant's elementwise kernel: the state-free values of every (b, t, j), before the recurrence
  const preName = `${name}_pre`;
  const preSrc = (() => {
    if (!hoisted) return "";
    const pd = cellDecls(model, xterms, preName, overrides);
    const pp = cellBody(model, { ...el.plan, body: hoisted.pre, phaseA: 0 }, { overrides, bg: "bg" });
    const pbufs = [...pd.bufs, ...kvals.map((k) => kBuf(k, true))];
    return `${pd.structs}
extern "C" __global__ void __launch_bounds__(${PRE_THREADS}) ${preName}(${[...pbufs.map((b) => b.decl), ...pd.uo].join(", ")}) {
${pd.ovDecls}
  const unsigned int T = u.T, E = ${pp.E}, SEQC_JB = E, B = u.B; (void)SEQC_JB; (void)B;
${xterms.map((x) => `  const unsigned int XR${x.id} = ${productC(x.rows)}; (void)XR${x.id};`).join("\n")}
  const size_t n = (size_t)u.B * T * E;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const unsigned int j = (unsigned int)(i % E), jl = j; (void)jl;
    const size_t bt = i / E;
    const unsigned int t = (unsigned int)(bt % T), bg = (unsigned int)(bt / T), b = bg; (void)b;
${pp.outLocals.join("\n")}
${pp.cellLines.join("\n")}
${kvals.map((k) => `    ws_${k.slice(2)}[i] = L_${k}[0];`).join("\n")}
  }
}
`;
  })();

  const Esz: SizeExpr = unit;
  const rowsTotal: SizeExpr = ["+", 0, ...rterms.map((r) => ["*", rowsLocal(r), Esz] as SizeExpr)];
  const ptS: SizeExpr = ["+", 0, ...stage.map((s) => ["*", 1, ...s.shape.map(extS)] as SizeExpr)];
  const smemFloats: SizeExpr = [
    "+",
    ...rterms.map((r) => ["*", rowsLocal(r), Esz, ...r.vecShape.map(extS)] as SizeExpr),
    ["*", KSMAX, "BB", rowsTotal],
    ["*", states.length, "BB", Esz],
    ["*", "BB", lvTotalS],
    ["*", aTotal, "BB", Esz],
    ["*", PFD, "BB", ptS],
  ];
  const msS: SizeExpr = ["*", "BB", rowsTotal];
  const minKVS: SizeExpr = ["min", ...rterms.map((r) => ["*", 1, ...r.vecShape.map(extS)] as SizeExpr)];
  const steps: CudaFormPlan["steps"] = hoistedGemms(model, xterms);
  if (hoisted) steps.push({ kind: "launch", entry: preName, grid: ["min", ["ceilDiv", ["*", "B", "T", Esz], PRE_THREADS], PRE_BLOCKS_MAX], threads: PRE_THREADS, sharedBytes: 0, buffers: [...decls.bufs.map((b) => b.ref), ...kvals.map((k) => kBuf(k, true).ref)], uniforms, overrides: overrideValues(model, overrides) });
  steps.push({ kind: "launch", entry: name, grid: "CELL_BLOCKS", threads: CELL.THREADS, sharedBytes: ["*", 4, "CELL_SMEM_FLOATS"], buffers: bufs.map((b) => b.ref), uniforms, overrides: overrideValues(model, overrides) });
  const form: CudaFormPlan = {
    form: "sequential",
    variant: `persistent-matvec${CELL.suffix}`,
    note: `${xterms.length} input projection(s) hoisted into fp32 GEMMs; one kernel whose blocks each own BB batch rows and every unit, the whole of ${rterms.map((r) => r.param).join(", ")} in shared memory over all T steps (no grid barrier; per-step reads staged ${PFD - 1} steps ahead with cp.async)${hoisted ? `; ${kvals.length} state-free per-unit values of the step (${hoisted.pre.filter((x) => !x.target.startsWith("__K")).map((x) => x.target).join(", ")} and what the adjoints multiply) computed before the recurrence by an elementwise kernel` : ""}`,
    vars: [
      ["BB", ["ceilDiv", "B", "LIMIT_SMS"]],
      ["CELL_BLOCKS", ["ceilDiv", "B", "BB"]],
      ["CELL_SMEM_FLOATS", smemFloats],
      // the kernel's KS (its doubling loop at blockDim = THREADS): the largest power of two <= KSMAX, THREADS / MS and MINKV / 4
      ...(lean ? [["KS", ["max", 1, ["min", KSMAX, ["pow2floor", ["min", ["/", CELL.THREADS, msS], ["/", minKVS, 4]]]]]] as [string, SizeExpr]] : []),
    ],
    // -batch4 (measured faster than -batch2 on the H100 at H = 32, bench/RESULTS.md) is preferred where what was timed runs:
    // one matvec output a thread and every thread's row slice in registers (KV <= WREG KS for each matvec)
    ...(lean
      ? { prefer: ["min", [">=", CELL.THREADS, ["*", msS, "KS"]], ...rterms.map((r) => [">=", ["*", WREG, "KS"], ["*", 1, ...r.vecShape.map(extS)]] as SizeExpr)] as SizeExpr }
      : CELL.THREADS < 256
        ? { prefer: [">=", CELL.THREADS, ["*", "BB", rowsTotal]] as SizeExpr }
        : {}),
    applicable: cellApplicable(plan, extS),
    workspaces: [
      ...xterms.map((x) => ({ name: `X${x.id}`, words: ["*", "B", "T", ["*", 1, ...x.rows.map(extS)]] as SizeExpr })),
      ...kvals.map((k) => ({ name: k.slice(2), words: ["*", "B", "T", Esz] as SizeExpr })),
    ],
    steps,
  };
  return { source: preSrc + src, form };
}
