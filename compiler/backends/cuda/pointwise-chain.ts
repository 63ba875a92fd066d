/**
 * Chunked streaming scan for the "pointwise" first-order diagonal models of pointwise-scan.ts (HGRN,
 * elementwise EMAs, LRU-style gates): every state is X_t = a_t * X_{t-1} + b_t elementwise over one shape
 * C, and every output reads the states only at its own element.
 *
 * A block owns CB channels of one batch row over the WHOLE sequence, so no block ever waits for another
 * (no look-back, no flags, no workspace). It walks T in chunks of TT = J x L steps:
 *   - the inputs aligned with the state (read only at their own element) are staged into shared memory
 *     NST chunks ahead with 16-byte cp.async (4-byte copies when C % 4 != 0), so NST-1 chunks of loads
 *     are in flight while the block computes: the memory pipe never drains at the serial points
 *     (NST = 0: each thread loads its own next chunk into registers instead);
 *   - thread (V consecutive channels, time lane j) computes (a, b) for its L steps once, keeps them in
 *     registers and composes them into one aggregate per channel; after one barrier, each thread applies
 *     the aggregates of lanes 0..j-1 to the chunk's carry-in, replays its L steps from there and writes
 *     every output once (V = 4: 16-byte loads from shared memory and 16-byte stores); the last lane also
 *     forms the carry-out of the chunk.
 * Bytes moved = inputs once + outputs once (the copy lower bound). The parallelism is B x ceil(C / CB)
 * blocks, so the plan prefers this form when their loads in flight cover the memory system's latency
 * (see `prefer`: Little's law), and the look-back scan otherwise (few long channels).
 *
 * Generated from the IR like pointwise-scan.ts: (a, b) per state from the structure analysis
 * (elementwise decomposition, lets inlined) and the outputs from the inlined readout, lowered with the
 * shared expression lowering, once per channel of the thread.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import type { ModelAnalysis } from "../../analysis/types.ts";
import { inlineModel, UPDATED, Renamer } from "../../analysis/inline.ts";
import { inputBuffer, outputBuffer, initFlag, stateOffset, STATES, STATES_IN, uniformFields } from "../../kernel/interface.ts";
import { lowerConst } from "../../kernel/step.ts";
import { productK, productS } from "../../kernel/symbolic.ts";
import { overrideValues } from "./overrides.ts";
import { CudaScope, decompose, tensorsRead } from "./scope.ts";
import { renderExpr, renderStmts, type RenderContext } from "./render.ts";
import { pointwiseScanEligible } from "./pointwise-scan.ts";
import { alignedInputs } from "./pointwise-stream.ts";
import type { CudaFormPlan, CudaBufferRef } from "../../../runtime/cuda/plan.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";

export interface ChainConfig {
  /** Channels per block (CB / V threads per time lane; a multiple of 32 keeps warps on whole rows). */
  CB: number;
  /** Consecutive channels per thread: 1, or 4 (16-byte shared loads and global stores; needs C % 4 == 0). */
  V?: number;
  /** Time lanes per chunk (threads = CB / V x J). */
  J: number;
  /** Steps per thread per chunk (chunk = J x L steps). */
  L: number;
  /** Shared-memory stages (NST - 1 chunks in flight). 0: no staging, each thread loads its next chunk into registers. */
  NST: number;
  /** Streaming cache hint on the output stores (st.global.cs): outputs are written once. */
  cs?: boolean;
  /** Evict-first L2 policy on the staged 16-byte loads (inputs are read once). */
  ef?: boolean;
  /**
   * Thread-block cluster of this many consecutive blocks (neighbouring channel groups), kept within one chunk of
   * each other by a cluster barrier per chunk, so their row segments reach memory together (applies when the grid
   * is a multiple of it).
   */
  cl?: number;
  /** Prefetch the chunk after the staged ones into L2 (cp.async.bulk.prefetch, one row segment per thread; 16-byte path only). */
  pf?: boolean;
  /** Blocks per SM the register allocation must allow (default: from the shared memory, threads and a register estimate). */
  minBlocks?: number;
  suffix: string;
}

/**
 * The plan's chain variants, in order; the first preferred applicable one runs. Chosen on the H100 (bench/RESULTS.md,
 * hgrn B=8 D=1536 T=16384): 128 channels (512-byte rows) x 24-step chunks (4 lanes x 6 steps), 2 chunks in flight
 * (at most 48 KB of loads per block), was the fastest general (any C) configuration in run 7 (97% of the copy; the
 * 32-step chunks of runs 4 to 6, 64 KB in flight, reached 94.6% in the same run: more loads in flight per block were
 * slower, not faster); 32 channels x 64-step chunks serves shapes with fewer, narrower channel blocks.
 */
export const CHAIN_CONFIGS: ChainConfig[] = [
  { CB: 128, J: 4, L: 6, NST: 3, suffix: "" },
  { CB: 32, J: 8, L: 8, NST: 4, suffix: "-c32" },
];

/**
 * Bytes of loads one chain variant keeps in flight over the whole grid (SizeExpr over B and C): what the cost model
 * compares with the machine's need (Little's law: about 3 TB/s x 1.5 us on an H100, ~32 KB per SM).
 */
export const CHAIN_INFLIGHT_PER_SM = 32 * 1024;

/**
 * Configurations swept by the benchmark (bench/cuda/sweep-plan.ts), not shipped in plans. Run 7: around the shipped
 * 128 x 32-step tile (a copy of it, to see the noise between identical kernels), cache hints (streaming stores,
 * evict-first loads, an L2 prefetch of the chunk after the staged ones), clusters of neighbouring channel groups
 * kept in step, narrower groups that fill more of the 132 SMs, other lane shapes, and run 6's best swept one.
 */
export const CHAIN_SWEEP: ChainConfig[] = [
  { CB: 128, J: 4, L: 8, NST: 3, suffix: "-c128j4l8s3" },
  { CB: 128, J: 4, L: 8, NST: 3, cs: true, suffix: "-c128j4l8s3cs" },
  { CB: 128, J: 4, L: 8, NST: 3, ef: true, suffix: "-c128j4l8s3ef" },
  { CB: 128, J: 4, L: 8, NST: 3, ef: true, cs: true, suffix: "-c128j4l8s3efcs" },
  { CB: 128, J: 4, L: 8, NST: 3, pf: true, suffix: "-c128j4l8s3pf" },
  { CB: 128, J: 4, L: 8, NST: 3, cl: 2, suffix: "-c128j4l8s3cl2" },
  { CB: 128, J: 4, L: 8, NST: 3, cl: 4, suffix: "-c128j4l8s3cl4" },
  { CB: 128, J: 4, L: 8, NST: 3, cl: 4, ef: true, cs: true, suffix: "-c128j4l8s3cl4efcs" },
  { CB: 128, J: 4, L: 6, NST: 3, suffix: "-c128j4l6s3" },
  { CB: 128, J: 8, L: 4, NST: 3, suffix: "-c128j8l4s3" },
  { CB: 128, J: 2, L: 16, NST: 3, suffix: "-c128j2l16s3" },
  { CB: 128, J: 1, L: 32, NST: 3, suffix: "-c128j1l32s3" },
  { CB: 96, J: 4, L: 8, NST: 3, suffix: "-c96j4l8s3" },
  { CB: 96, J: 4, L: 8, NST: 3, ef: true, cs: true, suffix: "-c96j4l8s3efcs" },
  { CB: 96, J: 4, L: 8, NST: 3, cl: 4, suffix: "-c96j4l8s3cl4" },
  { CB: 64, J: 4, L: 8, NST: 3, suffix: "-c64j4l8s3" },
  { CB: 48, J: 4, L: 8, NST: 3, suffix: "-c48j4l8s3" },
  { CB: 128, V: 4, J: 8, L: 8, NST: 0, minBlocks: 1, suffix: "-c128v4j8l8reg" },
];

export function chainSharedWords(cfg: ChainConfig, nIn: number, nS: number): number {
  const TT = cfg.J * cfg.L;
  return cfg.NST * nIn * TT * cfg.CB + nS * 2 * cfg.J * cfg.CB + 2 * nS * cfg.CB;
}

const COMP = ["x", "y", "z", "w"];

export function renderPointwiseChain(model: I.Model, a: ModelAnalysis, cfg: ChainConfig = CHAIN_CONFIGS[0]): { source: string; form: CudaFormPlan } {
  const el = pointwiseScanEligible(model, a);
  if (!el.ok) throw new Error(`pointwise chain of ${model.name}: ${el.why}`);
  const { CB, J, L, NST } = cfg;
  const V = cfg.V ?? 1;
  if (V !== 1 && V !== 4) throw new Error(`pointwise chain: V must be 1 or 4, got ${V}`);
  const Q = CB / V;
  const NT = Q * J;
  if (CB % (4 * V) !== 0 || !Number.isInteger(Q) || NT > 1024 || NT < 32) throw new Error(`pointwise chain: bad tile ${CB} x ${J} (V = ${V})`);
  const TT = J * L;
  const reg = NST === 0;
  if (cfg.cl !== undefined && (!Number.isInteger(cfg.cl) || cfg.cl < 1 || cfg.cl > 8 || reg || NST < 2)) throw new Error(`pointwise chain: cluster size ${cfg.cl} needs 1..8 and shared staging`);
  if (cfg.pf && reg) throw new Error("pointwise chain: the L2 prefetch needs shared staging");
  const states = I.tensorsOfKind(model, "state");
  const outputs = I.tensorsOfKind(model, "output");
  const inputs = I.tensorsOfKind(model, "input");
  const shape = states[0].shape;
  const nS = states.length;
  const ro = inlineModel(model, "readout", new Renamer(model));
  const uniforms = uniformFields(model);
  const overrides = [...model.dims.map((d) => `D_${d.name}`), ...I.tensorsOfKind(model, "param").map((p) => `PO_${p.name}`)];
  const cx: RenderContext = { overrides: new Set(overrides), uniforms: new Set(uniforms) };
  const R = (e: K.KExpr) => renderExpr(e, cx);
  const St = (body: K.KStmt[], ind: string) => renderStmts(body, cx, ind).join("\n");
  const name = `seqc_${model.name}_scan_chain${cfg.suffix.replace(/-/g, "_")}`;
  const ews = states.map((s) => a.states.find((x) => x.name === s.name)!.elementwise!);
  const outDefs = outputs.map((o) => ro.outputs.get(o.name)!);
  const staged = [...alignedInputs(model, [...ews.flatMap((e) => [{ vars: e.vars, expr: e.a }, { vars: e.vars, expr: e.b }]), ...outDefs], shape)];
  const stagedIdx = new Map(staged.map((n, i) => [n, i]));
  const nIn = staged.length;
  // the cluster barrier sits at the staging point: without staged inputs the blocks have nothing to align
  const CL = nIn ? (cfg.cl ?? 1) : 1;
  const readoutStaged = staged.filter((n) => outDefs.some((d) => tensorsRead(d.expr).has(n)));
  const vs = [...Array(V).keys()];

  // staged input i at step l, channel v of this thread
  const sRow = (i: number | string) => `((slot * ${nIn}u + ${i}u) * ${TT}u + j * ${L}u + l) * ${CB}u + ci`;
  const sIn = (tensor: string, v: number): K.KExpr => {
    const i = stagedIdx.get(tensor)!;
    if (reg) return K.ref(V === 1 ? `rin${i}[l]` : `rin${i}[l].${COMP[v]}`, "f32");
    return K.ref(V === 1 ? `s_in[${sRow(i)}]` : `sv${i}.${COMP[v]}`, "f32");
  };
  // V = 4 with shared staging: one 16-byte load per staged input and step
  const vecLoads = (names: string[], ind: string) => (V === 4 && !reg ? names.map((n) => `${ind}const float4 sv${stagedIdx.get(n)} = *reinterpret_cast<const float4*>(s_in + ${sRow(stagedIdx.get(n)!)});`).join("\n") : "");

  const bK = K.ref("b");
  const tK = K.ref("t");
  const stateIndex = new Map(states.map((s, i) => [s.name, i]));
  const coordStmts: K.KStmt[] = [];
  const perV = vs.map((v) => {
    const coords = decompose(K.ref(V === 1 ? "c" : `(c + ${v}u)`), shape, (ax) => `cc${v}_${ax}`, coordStmts);
    const ab = states.map((s, si) => {
      const vars = new Map<number, K.KExpr>(ews[si].vars.map((x, i) => [x.id, coords[i]]));
      const sc = new CudaScope({ model, b: bK, t: tK, vars, prefix: `ab${si}_${v}`, local: (tensor) => (stagedIdx.has(tensor) ? sIn(tensor, v) : undefined) });
      const pre: K.KStmt[] = [];
      const av = sc.lower(ews[si].a, pre);
      const bv = sc.lower(ews[si].b, pre);
      return { pre, a: av, b: bv };
    });
    const outs = outputs.map((o, oi) => {
      const def = outDefs[oi];
      const vars = new Map<number, K.KExpr>(def.vars.map((x, i) => [x.id, coords[i]]));
      const sc = new CudaScope({
        model,
        b: bK,
        t: tK,
        vars,
        prefix: `o${oi}_${v}`,
        local: (tensor) => {
          if (stagedIdx.has(tensor)) return sIn(tensor, v);
          const si = stateIndex.get(tensor.replace(UPDATED, ""));
          if (si === undefined) return undefined;
          return K.ref(tensor.endsWith(UPDATED) ? `h${si}_${v}` : `hp${si}_${v}`, "f32");
        },
      });
      const pre: K.KStmt[] = [];
      const val = sc.lower(def.expr, pre);
      return { pre, v: val };
    });
    return { ab, outs };
  });
  const initVal = (si: number, v: number) => {
    const s = states[si];
    const sc = new CudaScope({ model, b: bK, t: tK, prefix: `i${si}_${v}` });
    const init = s.init ? lowerConst(s.init, sc) : K.f32(0);
    return `(u.${initFlag(s.name)} != 0u ? ${STATES_IN}[u.${stateOffset(s.name)} + (size_t)b * C + c + ${v}u] : ${R(init)})`;
  };
  const bufParams: { ref: CudaBufferRef; decl: string }[] = [
    ...inputs.map((t) => ({ ref: { kind: "input", name: t.name } as CudaBufferRef, decl: `const float* __restrict__ ${inputBuffer(t.name)}` })),
    ...outputs.map((t) => ({ ref: { kind: "output", name: t.name } as CudaBufferRef, decl: `float* __restrict__ ${outputBuffer(t.name)}` })),
    { ref: { kind: "params" }, decl: `const float* __restrict__ params` },
    { ref: { kind: "initialStates" }, decl: `const float* __restrict__ ${STATES_IN}` },
    { ref: { kind: "states" }, decl: `float* __restrict__ ${STATES}` },
  ];
  const us = `SeqcUniforms_${name}`;
  const os = `SeqcOverrides_${name}`;
  const ovDecls = overrides.map((o) => `#ifndef SEQC_${o}_CONST\n  const unsigned int SEQC_${o} = ov.${o};\n#else\n  constexpr unsigned int SEQC_${o} = SEQC_${o}_CONST;\n#endif`).join("\n");
  /** One line per state and channel of the thread. */
  const each = (f: (si: number, v: number) => string, sep = "\n") => states.flatMap((_, si) => vs.map((v) => f(si, v))).join(sep);
  // aggregates and carries: [nS * 2][J][CB] and [2][nS][CB], read and written per thread as V floats
  const aggIdx = (si: number, ab: 0 | 1, w: string) => `(${si * 2 + ab}u * ${J}u + ${w}) * ${CB}u + ci`;
  const carIdx = (par: string, si: number) => `${par} * ${nS * CB}u + ${si * CB}u + ci`;
  const vecName = (base: string, si: number) => vs.map((v) => `${base}${si}_${v}`);
  /** Store V values at shared index `idx` (one 16-byte store when V = 4). */
  const smemStore = (arr: string, idx: string, vals: string[]) => (V === 1 ? `${arr}[${idx}] = ${vals[0]};` : `*reinterpret_cast<float4*>(&${arr}[${idx}]) = make_float4(${vals.join(", ")});`);

  // staging: chunk k of every aligned input into slot k % NST (16-byte pieces when C % 4 == 0)
  const PIECES16 = (TT * CB) / 4;
  const PIECES4 = TT * CB;
  const hint = cfg.ef ? ".L2::cache_hint" : "";
  const cp16 = staged.map((n, i) => `          asm volatile("cp.async.cg.shared.global${hint} [%0], [%1], 16${cfg.ef ? ", %2" : ""};" :: "r"(sbase + (unsigned int)(((slot * ${nIn}u + ${i}u) * ${TT}u + r) * ${CB}u + 4u * q) * 4u), "l"(${inputBuffer(n)} + off)${cfg.ef ? `, "l"(pol)` : ""} : "memory");`).join("\n");
  // one row segment of every staged input of the chunk after chunk k into L2 (16-byte path: C % 4 == 0)
  const prefetch = staged.map((n) => `          asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(${inputBuffer(n)} + off), "r"(bytes) : "memory");`).join("\n");
  const cp4 = staged.map((n, i) => `          asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" :: "r"(sbase + (unsigned int)(((slot * ${nIn}u + ${i}u) * ${TT}u + r) * ${CB}u + q) * 4u), "l"(${inputBuffer(n)} + off) : "memory");`).join("\n");
  const issueFn =
    reg || nIn === 0
      ? ""
      : `  const unsigned int sbase = (unsigned int)__cvta_generic_to_shared(s_in);${
          cfg.ef
            ? `
  unsigned long long pol;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));`
            : ""
        }
  auto issue = [&](unsigned int k) {
    const unsigned int slot = k % ${NST}u, t0 = k * ${TT}u;
    if (vec) {
#pragma unroll
      for (unsigned int it = 0; it < ${Math.ceil(PIECES16 / NT)}u; ++it) {
        const unsigned int p = threadIdx.x + it * ${NT}u;
        const unsigned int r = p / ${CB / 4}u, q = p % ${CB / 4}u;
        if (${PIECES16 % NT === 0 ? "" : `p < ${PIECES16}u && `}t0 + r < T && c0 + 4u * q < C) {
          const size_t off = ((size_t)b * T + t0 + r) * C + c0 + 4u * q;
${cp16}
        }
      }${
        cfg.pf
          ? `
      for (unsigned int r = threadIdx.x; r < ${TT}u; r += ${NT}u) {
        if (t0 + ${TT}u + r < T) {
          const size_t off = ((size_t)b * T + t0 + ${TT}u + r) * C + c0;
          const unsigned int bytes = min(${CB}u, C - c0) * 4u;
${prefetch}
        }
      }`
          : ""
      }
    } else {
      for (unsigned int p = threadIdx.x; p < ${PIECES4}u; p += ${NT}u) {
        const unsigned int r = p / ${CB}u, q = p % ${CB}u;
        if (t0 + r < T && c0 + q < C) {
          const size_t off = ((size_t)b * T + t0 + r) * C + c0 + q;
${cp4}
        }
      }
    }
  };`;
  // register variant: this thread's own L steps of every aligned input for chunk k
  const ftype = V === 1 ? "float" : "float4";
  const loadRegs = reg
    ? `  auto loadChunk = [&](unsigned int k) {
#pragma unroll
    for (unsigned int l = 0; l < ${L}u; ++l) {
      const unsigned int t = k * ${TT}u + j * ${L}u + l;
      if (valid && t < T) {
        const size_t off = ((size_t)b * T + t) * C + c;
${staged.map((n, i) => `        nin${i}[l] = __ldg(reinterpret_cast<const ${ftype}*>(${inputBuffer(n)} + off));`).join("\n")}
      }
    }
  };`
    : "";
  const smemWords = chainSharedWords(cfg, nIn, nS);
  // blocks per SM the tile allows on sm_90 (228 KB of shared memory per SM, 1 KB reserved per block, 2048 threads)
  // and a register estimate (40 + the (a, b) values and prefetched inputs each thread keeps for its L steps):
  // the register budget the compiler gets follows from it
  const regEstimate = 40 + (3 * nS + (reg ? 2 * nIn : 0)) * L * V;
  const minBlocks = cfg.minBlocks ?? Math.max(1, Math.min(32, Math.floor(2048 / NT), Math.floor((228 * 1024) / (smemWords * 4 + 1024)), Math.floor(65536 / (NT * Math.min(255, regEstimate)))));
  const outStore = (buf: string, vals: string[]) => {
    if (V === 1) return cfg.cs ? `__stcs(${buf} + row * C + c, ${vals[0]});` : `${buf}[row * C + c] = ${vals[0]};`;
    const f4 = `make_float4(${vals.join(", ")})`;
    return cfg.cs ? `__stcs(reinterpret_cast<float4*>(${buf} + row * C + c), ${f4});` : `*reinterpret_cast<float4*>(${buf} + row * C + c) = ${f4};`;
  };

  const src = `
// ==== ${model.name}: chunked streaming scan (${CB} channels x all T per block, ${V} channel(s) per thread, chunks of ${J} lanes x ${L} steps, ${reg ? "register prefetch of the next chunk" : `${NST}-stage cp.async staging`}) ====
struct ${us} { ${uniforms.map((u) => `unsigned int ${u};`).join(" ")} };
struct ${os} { ${overrides.map((o) => `unsigned int ${o};`).join(" ")} };
extern "C" __global__ void ${CL > 1 ? `__cluster_dims__(${CL}, 1, 1) ` : ""}__launch_bounds__(${NT}, ${minBlocks}) ${name}(${[...bufParams.map((p) => p.decl), `const ${us} u`, `const ${os} ov`].join(", ")}) {
${ovDecls}
  extern __shared__ __align__(16) float seqc_chain_smem[];
  float* s_in = seqc_chain_smem;                                   // [NST][${nIn}][TT][CB] staged inputs
  float* s_agg = seqc_chain_smem + ${NST * nIn * TT * CB}u;        // [${nS}][2][J][CB] lane aggregates (A, B)
  float* s_car = s_agg + ${nS * 2 * J * CB}u;                      // [2][${nS}][CB] carry into the chunk
  (void)s_in;
  const unsigned int T = u.T;
  const unsigned int C = ${R(productK(shape))};
  const unsigned int ncb = (C + ${CB - 1}u) / ${CB}u;
  const unsigned int b = blockIdx.x / ncb, c0 = (blockIdx.x % ncb) * ${CB}u;
  const unsigned int ci = (threadIdx.x % ${Q}u) * ${V}u, j = threadIdx.x / ${Q}u;
  const unsigned int c = c0 + ci;
  const bool valid = c < C;${V > 1 ? " // C % 4 == 0 (the plan's applicability): all V channels or none" : ""}
  const bool vec = (C & 3u) == 0u;
  (void)vec;
  const unsigned int nChunks = (T + ${TT - 1}u) / ${TT}u;
${issueFn}
${reg ? staged.map((_, i) => `  ${ftype} nin${i}[${L}], rin${i}[${L}];`).join("\n") : ""}
${loadRegs}
${
  reg
    ? "  loadChunk(0);"
    : nIn
      ? `#pragma unroll
  for (unsigned int k = 0; k < ${NST - 1}u; ++k) {
    if (k < nChunks) issue(k);
    asm volatile("cp.async.commit_group;" ::: "memory");
  }`
      : ""
}
${St(coordStmts, "  ")}
  if (j == 0) {
${states.map((_, si) => `    ${smemStore("s_car", carIdx("0u", si), vs.map((v) => `valid ? ${initVal(si, v)} : 0.f`))}`).join("\n")}
  }
  for (unsigned int k = 0; k < nChunks; ++k) {
${
  reg
    ? `${staged.map((_, i) => `#pragma unroll\n    for (unsigned int l = 0; l < ${L}u; ++l) rin${i}[l] = nin${i}[l];`).join("\n")}
    if (k + 1u < nChunks) loadChunk(k + 1u);
    __syncthreads();`
    : nIn
      ? `    asm volatile("cp.async.wait_group ${NST - 2};" ::: "memory");
    __syncthreads();${CL > 1 ? `
    if (k > 0u) asm volatile("barrier.cluster.wait.aligned;" ::: "memory");` : ""}
    if (k + ${NST - 1}u < nChunks) issue(k + ${NST - 1}u);
    asm volatile("cp.async.commit_group;" ::: "memory");${CL > 1 ? `
    asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");` : ""}
    const unsigned int slot = k % ${NST}u;
    (void)slot;`
      : "    __syncthreads();"
}
    const unsigned int tb = k * ${TT}u + j * ${L}u;
${each((si, v) => `    float a${si}_${v}[${L}], b${si}_${v}[${L}], A${si}_${v} = 1.f, B${si}_${v} = 0.f;`)}
#pragma unroll
    for (unsigned int l = 0; l < ${L}u; ++l) {
      const unsigned int t = tb + l;
      if (valid && t < T) {
${vecLoads(staged, "        ")}
${perV.flatMap((pv, v) => pv.ab.map((blk, si) => `        {\n${St(blk.pre, "          ")}\n          a${si}_${v}[l] = ${R(blk.a)}; b${si}_${v}[l] = ${R(blk.b)};\n        }`)).join("\n")}
      } else {
${each((si, v) => `        a${si}_${v}[l] = 1.f; b${si}_${v}[l] = 0.f;`)}
      }
${each((si, v) => `      B${si}_${v} = a${si}_${v}[l] * B${si}_${v} + b${si}_${v}[l]; A${si}_${v} *= a${si}_${v}[l];`)}
    }
${states.map((_, si) => `    ${smemStore("s_agg", aggIdx(si, 0, "j"), vecName("A", si))} ${smemStore("s_agg", aggIdx(si, 1, "j"), vecName("B", si))}`).join("\n")}
    __syncthreads();
    // carry into this lane: the chunk's carry-in through the aggregates of lanes 0..j-1
${states
  .map((_, si) =>
    V === 1
      ? `    float h${si}_0 = s_car[${carIdx("(k & 1u)", si)}], hp${si}_0 = 0.f;`
      : `    const float4 c4_${si} = *reinterpret_cast<const float4*>(&s_car[${carIdx("(k & 1u)", si)}]);\n${vs.map((v) => `    float h${si}_${v} = c4_${si}.${COMP[v]}, hp${si}_${v} = 0.f;`).join("\n")}`,
  )
  .join("\n")}
#pragma unroll
    for (unsigned int w = 0; w < ${J - 1}u; ++w) {
      if (w < j) {
${states
  .map((_, si) => {
    if (V === 1) return `        h${si}_0 = s_agg[${aggIdx(si, 0, "w")}] * h${si}_0 + s_agg[${aggIdx(si, 1, "w")}];`;
    const ld = `        const float4 wa${si} = *reinterpret_cast<const float4*>(&s_agg[${aggIdx(si, 0, "w")}]), wb${si} = *reinterpret_cast<const float4*>(&s_agg[${aggIdx(si, 1, "w")}]);`;
    return [ld, ...vs.map((v) => `        h${si}_${v} = wa${si}.${COMP[v]} * h${si}_${v} + wb${si}.${COMP[v]};`)].join("\n");
  })
  .join("\n")}
      }
    }
    if (j == ${J - 1}u) {
${states.map((_, si) => `      ${smemStore("s_car", carIdx("((k + 1u) & 1u)", si), vs.map((v) => `A${si}_${v} * h${si}_${v} + B${si}_${v}`))}`).join("\n")}
    }
    if (valid) {
#pragma unroll
      for (unsigned int l = 0; l < ${L}u; ++l) {
        const unsigned int t = tb + l;
        if (t >= T) break;
${each((si, v) => `        hp${si}_${v} = h${si}_${v}; h${si}_${v} = a${si}_${v}[l] * h${si}_${v} + b${si}_${v}[l];`)}
        const size_t row = (size_t)b * T + t;
${vecLoads(readoutStaged, "        ")}
${outputs
  .map((o, oi) => {
    const pre = perV.map((pv, v) => St(pv.outs[oi].pre, "          ")).join("\n");
    const vals = perV.map((pv) => R(pv.outs[oi].v));
    return `        {\n${pre}\n          ${outStore(outputBuffer(o.name), vals)}\n        }`;
  })
  .join("\n")}
        if (t == T - 1u) {
${states.map((s, si) => vs.map((v) => `          ${STATES}[u.${stateOffset(s.name)} + (size_t)b * C + c + ${v}u] = h${si}_${v};`).join("\n")).join("\n")}
        }
      }
    }
  }
${reg || !nIn ? "" : `  asm volatile("cp.async.wait_group 0;" ::: "memory");`}${CL > 1 ? `
  asm volatile("barrier.cluster.wait.aligned;" ::: "memory"); // the last chunk's arrival` : ""}
}
`;
  const C: SizeExpr = productS(shape);
  const blocks: SizeExpr = ["*", "B", ["ceilDiv", C, CB]];
  // loads in flight: every block keeps NST - 1 chunks (1 in registers) of its min(CB, C) channels x TT steps x aligned inputs
  const inflight: SizeExpr = ["*", "CHAIN_BLOCKS", ["min", CB, C], TT * Math.max(1, NST - 1) * Math.max(1, nIn) * 4];
  const fits: SizeExpr = [">=", "LIMIT_SMEM_OPTIN", smemWords * 4];
  const conds: SizeExpr[] = [fits, ...(V === 1 ? [] : [[">=", ["*", ["/", C, 4], 4], C] as SizeExpr]), ...(CL > 1 ? [[">=", ["*", ["/", "CHAIN_BLOCKS", CL], CL], "CHAIN_BLOCKS"] as SizeExpr] : [])];
  const hints = [cfg.cs ? "streaming stores" : "", cfg.ef ? "evict-first loads" : "", cfg.pf ? "the chunk after them prefetched into L2" : "", CL > 1 ? `clusters of ${CL} blocks kept within a chunk of each other` : ""].filter(Boolean);
  const form: CudaFormPlan = {
    form: "scan",
    variant: `pointwise-chain${cfg.suffix}`,
    note: `one block per ${CB} channels over all T (no look-back), ${V} channel(s) per thread, chunks of ${J} lanes x ${L} steps, ${reg ? "next chunk prefetched into registers" : `${nIn} aligned input(s) staged ${NST - 1} chunks ahead with cp.async`}${hints.length ? `, ${hints.join(", ")}` : ""}; preferred when the loads in flight over all blocks reach ${CHAIN_INFLIGHT_PER_SM / 1024} KB per multiprocessor`,
    vars: [
      ["CHAIN_BLOCKS", blocks],
      ["CHAIN_INFLIGHT", inflight],
    ],
    // V = 4 needs C % 4 == 0: floor(C / 4) * 4 >= C; a cluster of CL blocks needs a grid that is a multiple of CL
    applicable: conds.length === 1 ? conds[0] : ["*", ...conds],
    // initial states are read from `initialStates` and every final state is written: no per-forward copy
    statesCopy: false,
    prefer: [">=", "CHAIN_INFLIGHT", ["*", "LIMIT_SMS", CHAIN_INFLIGHT_PER_SM]],
    workspaces: [],
    steps: [{ kind: "launch", entry: name, grid: "CHAIN_BLOCKS", threads: NT, sharedBytes: smemWords * 4, buffers: bufParams.map((p) => p.ref), uniforms, overrides: overrideValues(model, overrides) }],
  };
  return { source: src, form };
}
