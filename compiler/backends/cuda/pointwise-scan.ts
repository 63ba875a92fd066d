/**
 * Single-pass scan for "pointwise" first-order diagonal recurrences (HGRN, LRU-style gates, elementwise
 * EMAs): every state is X_t = a_t * X_{t-1} + b_t elementwise over one common shape C, and every output
 * reads the states only at its own element. Each channel is then an independent first-order linear
 * recurrence over t, and the whole model streams through memory once:
 *
 *   tile = (batch row, 128 channels, TT = 8 warps x L steps); tiles are taken in launch order from an
 *   atomic counter (so every predecessor of a tile is already running: no deadlock);
 *   1. each thread loads its L steps, computes (a, b) and composes them into a thread aggregate;
 *   2. the 8 warps combine their aggregates in shared memory (block-local scan);
 *   3. warp 0 publishes the tile aggregate, then walks back over the previous tiles of the same
 *      channels (decoupled look-back) until it finds an inclusive prefix, and publishes its own;
 *   4. every thread replays its L steps from its carry-in and writes the outputs (and final state).
 * Inputs are read once and outputs written once: bytes moved = the copy lower bound.
 *
 * Generated from the IR: a_t and b_t come from the structure analysis (elementwise decomposition, lets
 * inlined), outputs from the inlined readout; the math is lowered with compiler/kernel/lower-expr.ts.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import type { ModelAnalysis } from "../../analysis/types.ts";
import { inlineModel, UPDATED, Renamer } from "../../analysis/inline.ts";
import { inputBuffer, outputBuffer, initFlag, stateOffset, STATES, uniformFields } from "../../kernel/interface.ts";
import { lowerConst } from "../../kernel/step.ts";
import { productK, productS } from "../../kernel/symbolic.ts";
import { overrideValues } from "./overrides.ts";
import { CudaScope, decompose } from "./scope.ts";
import { renderExpr, renderStmts, type RenderContext } from "./render.ts";
import type { CudaFormPlan, CudaBufferRef } from "../../../runtime/cuda/plan.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";

export interface PointwiseConfig { VEC: number; WARPS: number; L: number; suffix: string; /** look back over 32 predecessors per round trip */ parallel?: boolean }
/** Tile shapes: 32*VEC channels x WARPS*L steps per block. The first is the default. */
export const PW_CONFIGS: PointwiseConfig[] = [
  { VEC: 2, WARPS: 8, L: 16, suffix: "", parallel: true },
  { VEC: 4, WARPS: 8, L: 8, suffix: "-v4", parallel: true },
  { VEC: 2, WARPS: 8, L: 16, suffix: "-serial" },
];

export type Eligibility = { ok: true } | { ok: false; why: string };

function sameShape(a: I.Extent[], b: I.Extent[]): boolean {
  return a.length === b.length && a.every((e, i) => (e.kind === "lit" ? b[i].kind === "lit" && (b[i] as { value: number }).value === e.value : b[i].kind === "dim" && (b[i] as { name: string }).name === e.name));
}

/** Does every read of a state in `e` index exactly `vars` (in order)? */
function readsStatesAt(e: I.Expr, states: Set<string>, vars: I.IndexVar[]): boolean {
  let ok = true;
  I.walkExpr(e, (x) => {
    if (x.k === "read" && states.has(x.tensor.replace(UPDATED, ""))) {
      if (x.idx.length !== vars.length || x.idx.some((ix, i) => ix.kind !== "var" || ix.v.id !== vars[i].id)) ok = false;
    }
    if (x.k === "sum") {
      I.walkExpr(x.body, (y) => {
        if (y.k === "read" && states.has(y.tensor.replace(UPDATED, ""))) ok = false;
      });
    }
  });
  return ok;
}

export function pointwiseScanEligible(model: I.Model, a: ModelAnalysis): Eligibility {
  if (!a.scanEligible) return { ok: false, why: "the scan form does not apply (a state is not elementwise affine)" };
  const states = I.tensorsOfKind(model, "state");
  if (!states.length) return { ok: false, why: "the model has no state" };
  const shape = states[0].shape;
  for (const s of states) if (!sameShape(s.shape, shape)) return { ok: false, why: `states ${states[0].name} and ${s.name} have different shapes` };
  for (const s of a.states) if (!s.elementwise) return { ok: false, why: `state ${s.name} has no elementwise decomposition` };
  const names = new Set(states.map((s) => s.name));
  const ro = inlineModel(model, "readout", new Renamer(model));
  for (const o of I.tensorsOfKind(model, "output")) {
    const def = ro.outputs.get(o.name);
    if (!def) return { ok: false, why: `output ${o.name} is not defined` };
    if (!sameShape(o.shape, shape)) return { ok: false, why: `output ${o.name}${I.shapeText(o.shape)} is not over the state shape ${I.shapeText(shape)}` };
    if (!readsStatesAt(def.expr, names, def.vars)) return { ok: false, why: `output ${o.name} reads the state at other elements than its own` };
  }
  return { ok: true };
}

/** Names used by the generated kernel. */
const kname = (model: string) => `seqc_${model}_scan_pointwise`;

export interface PointwiseScan {
  source: string;
  form: CudaFormPlan;
}

export function renderPointwiseScan(model: I.Model, a: ModelAnalysis, PW: PointwiseConfig = PW_CONFIGS[0]): PointwiseScan {
  const CH = 32 * PW.VEC;
  const TT = PW.WARPS * PW.L;
  const el = pointwiseScanEligible(model, a);
  if (!el.ok) throw new Error(`pointwise scan of ${model.name}: ${el.why}`);
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
  const S = (body: K.KStmt[], ind: string) => renderStmts(body, cx, ind).join("\n");
  const name = kname(model.name) + PW.suffix.replace(/-/g, "_");

  // ---- per-element math, as device code blocks with (b, t, c) in scope ----
  // coordinates of channel c
  const coordStmts: K.KStmt[] = [];
  const coords = decompose(K.ref("c"), shape, (ax) => `cc${ax}`, coordStmts);
  const bK = K.ref("b");
  const tK = K.ref("t");
  // (a, b) per state
  const abBlocks = states.map((s, si) => {
    const ew = a.states.find((x) => x.name === s.name)!.elementwise!;
    const vars = new Map<number, K.KExpr>(ew.vars.map((v, i) => [v.id, coords[i]]));
    const sc = new CudaScope({ model, b: bK, t: tK, vars, prefix: `ab${si}` });
    const pre: K.KStmt[] = [];
    const av = sc.lower(ew.a, pre);
    const bv = sc.lower(ew.b, pre);
    return { pre, a: av, b: bv };
  });
  // outputs
  const stateIndex = new Map(states.map((s, i) => [s.name, i]));
  const outBlocks = outputs.map((o, oi) => {
    const def = ro.outputs.get(o.name)!;
    const vars = new Map<number, K.KExpr>(def.vars.map((v, i) => [v.id, coords[i]]));
    const sc = new CudaScope({
      model,
      b: bK,
      t: tK,
      vars,
      prefix: `o${oi}`,
      local: (tensor) => {
        const updated = tensor.endsWith(UPDATED);
        const si = stateIndex.get(tensor.replace(UPDATED, ""));
        if (si === undefined) return undefined;
        return K.ref(updated ? `h${si}` : `hp${si}`, "f32");
      },
    });
    const pre: K.KStmt[] = [];
    const v = sc.lower(def.expr, pre);
    return { pre, v, buf: outputBuffer(o.name), size: productK(o.shape) };
  });
  const initVals = states.map((s, si) => {
    const sc = new CudaScope({ model, b: bK, t: tK, prefix: `i${si}` });
    const init = s.init ? lowerConst(s.init, sc) : K.f32(0);
    const addr = `u.${stateOffset(s.name)} + (size_t)b * C + c`;
    return `(u.${initFlag(s.name)} != 0u ? ${STATES}[${addr}] : ${R(init)})`;
  });
  const Cexpr = R(productK(shape));

  const bufParams: { ref: CudaBufferRef; decl: string }[] = [
    ...inputs.map((t) => ({ ref: { kind: "input", name: t.name } as CudaBufferRef, decl: `const float* __restrict__ ${inputBuffer(t.name)}` })),
    ...outputs.map((t) => ({ ref: { kind: "output", name: t.name } as CudaBufferRef, decl: `float* __restrict__ ${outputBuffer(t.name)}` })),
    { ref: { kind: "params" }, decl: `const float* __restrict__ params` },
    { ref: { kind: "states" }, decl: `float* __restrict__ ${STATES}` },
    { ref: { kind: "workspace", name: "pw_values" }, decl: `float* __restrict__ pw_values` },
    { ref: { kind: "workspace", name: "pw_flags" }, decl: `unsigned int* __restrict__ pw_flags` },
  ];
  const us = `SeqcUniforms_${name}`;
  const os = `SeqcOverrides_${name}`;
  const ovDecls = overrides.map((o) => `#ifndef SEQC_${o}_CONST\n  const unsigned int SEQC_${o} = ov.${o};\n#else\n  constexpr unsigned int SEQC_${o} = SEQC_${o}_CONST;\n#endif`).join("\n");
  const perState = (f: (si: number) => string) => states.map((_, si) => f(si)).join("\n");

  // decoupled look-back over a window of 32 predecessors at once: lane k watches time tile tc-1-k
  const parallelLookback = `      int base = (int)tc - 1;
      while (true) {
        const int tq = base - (int)lane;
        unsigned int f = 2u;
        if (tq >= 0) {
          do { asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(f) : "l"(pw_flags + 1 + (size_t)tq * nChains + chain) : "memory"); } while (f == 0u);
        }
        const unsigned int incl = __ballot_sync(0xffffffffu, tq >= 0 && f == 2u);
        const int stop = incl ? __ffs(incl) - 1 : 32;
#pragma unroll 4
        for (int j = 0; j < stop; ++j) {
          const float* src = pw_values + ((size_t)(base - j) * nChains + chain) * ${2 * nS} * CH;
#pragma unroll
          for (unsigned int v = 0; v < VEC; ++v) {
            const unsigned int i = lane + 32u * v;
${perState((si) => `            { const float pA = __ldcg(src + ${si} * 2 * CH + i), pB = __ldcg(src + (${si} * 2 + 1) * CH + i); accB[${si}][v] = accA[${si}][v] * pB + accB[${si}][v]; accA[${si}][v] *= pA; }`)}
          }
        }
        if (incl) {
          const float* src = pw_values + ((size_t)nChains * ((T + TT - 1) / TT) + (size_t)(base - stop) * nChains + chain) * ${2 * nS} * CH;
#pragma unroll
          for (unsigned int v = 0; v < VEC; ++v) {
            const unsigned int i = lane + 32u * v;
${perState((si) => `            carry[${si}][v] = accA[${si}][v] * __ldcg(src + ${si} * 2 * CH + i) + accB[${si}][v];`)}
          }
          break;
        }
        base -= 32;
      }`;
  const serialLookback = `      unsigned int p = tile - nChains;
      while (true) {
        unsigned int f;
        do { asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(f) : "l"(pw_flags + 1 + p) : "memory"); } while (f == 0u);
        const float* src = pw_values + ((f == 2u ? (size_t)nChains * ((T + TT - 1) / TT) : 0) + p) * ${2 * nS} * CH;
        if (f == 2u) {
#pragma unroll
          for (unsigned int v = 0; v < VEC; ++v) {
            const unsigned int i = lane + 32u * v;
${perState((si) => `            carry[${si}][v] = accA[${si}][v] * __ldcg(src + ${si} * 2 * CH + i) + accB[${si}][v];`)}
          }
          break;
        }
#pragma unroll
        for (unsigned int v = 0; v < VEC; ++v) {
          const unsigned int i = lane + 32u * v;
${perState((si) => `          { const float pA = __ldcg(src + ${si} * 2 * CH + i), pB = __ldcg(src + (${si} * 2 + 1) * CH + i); accB[${si}][v] = accA[${si}][v] * pB + accB[${si}][v]; accA[${si}][v] *= pA; }`)}
        }
        p -= nChains;
      }
`;
  const src = `
// ==== ${model.name}: single-pass scan (pointwise first-order diagonal recurrence) ====
struct ${us} { ${uniforms.map((u) => `unsigned int ${u};`).join(" ")} };
struct ${os} { ${overrides.map((o) => `unsigned int ${o};`).join(" ")} };
extern "C" __global__ void __launch_bounds__(${PW.WARPS * 32}) ${name}(${[...bufParams.map((p) => p.decl), `const ${us} u`, `const ${os} ov`].join(", ")}) {
${ovDecls}
  constexpr unsigned int VEC = ${PW.VEC}, L = ${PW.L}, W = ${PW.WARPS}, CH = ${CH}, TT = ${TT};
  const unsigned int B = u.B, T = u.T;
  const unsigned int C = ${Cexpr};
  const unsigned int nct = (C + CH - 1) / CH;
  const unsigned int nChains = B * nct;
  __shared__ unsigned int s_tile;
  __shared__ float s_A[${nS}][W][CH], s_B[${nS}][W][CH], s_gA[${nS}][CH], s_gB[${nS}][CH], s_carry[${nS}][CH];
  if (threadIdx.x == 0) s_tile = atomicAdd(&pw_flags[0], 1u);
  __syncthreads();
  const unsigned int tile = s_tile;
  const unsigned int tc = tile / nChains, chain = tile % nChains;
  const unsigned int b = chain / nct, ct = chain % nct;
  const unsigned int lane = threadIdx.x & 31u, wy = threadIdx.x >> 5;
  const unsigned int tbase = tc * TT + wy * L;
  // 1. load (a, b) for L steps x VEC channels, compose the thread aggregate
${perState((si) => `  float a${si}[L][VEC], b${si}[L][VEC], A${si}[VEC], Bv${si}[VEC];`)}
#pragma unroll
  for (unsigned int v = 0; v < VEC; ++v) {
    const unsigned int c = ct * CH + lane + 32u * v;
${perState((si) => `    A${si}[v] = 1.f; Bv${si}[v] = 0.f;`)}
    if (c < C) {
${S(coordStmts, "      ")}
#pragma unroll
      for (unsigned int l = 0; l < L; ++l) {
        const unsigned int t = tbase + l;
        if (t < T) {
${abBlocks.map((blk, si) => `          {\n${S(blk.pre, "            ")}\n            a${si}[l][v] = ${R(blk.a)}; b${si}[l][v] = ${R(blk.b)};\n          }`).join("\n")}
        } else {
${perState((si) => `          a${si}[l][v] = 1.f; b${si}[l][v] = 0.f;`)}
        }
${perState((si) => `        A${si}[v] *= a${si}[l][v]; Bv${si}[v] = a${si}[l][v] * Bv${si}[v] + b${si}[l][v];`)}
      }
    }
${perState((si) => `    s_A[${si}][wy][lane + 32u * v] = A${si}[v]; s_B[${si}][wy][lane + 32u * v] = Bv${si}[v];`)}
  }
  __syncthreads();
  // 2-3. warp 0: tile aggregate, publish, look back, publish the inclusive prefix
  if (wy == 0) {
    float* agg = pw_values + (size_t)tile * ${2 * nS} * CH;
    float* inc = pw_values + ((size_t)nChains * ((T + TT - 1) / TT) + tile) * ${2 * nS} * CH;
#pragma unroll
    for (unsigned int v = 0; v < VEC; ++v) {
      const unsigned int i = lane + 32u * v;
${perState((si) => `      { float gA = 1.f, gB = 0.f; for (unsigned int w = 0; w < W; ++w) { gB = s_A[${si}][w][i] * gB + s_B[${si}][w][i]; gA *= s_A[${si}][w][i]; } agg[${si} * 2 * CH + i] = gA; agg[(${si} * 2 + 1) * CH + i] = gB; s_gA[${si}][i] = gA; s_gB[${si}][i] = gB; }`)}
    }
    float carry[${nS}][VEC];
    if (tc == 0) {
#pragma unroll
      for (unsigned int v = 0; v < VEC; ++v) {
        const unsigned int c = ct * CH + lane + 32u * v;
${perState((si) => `        carry[${si}][v] = c < C ? ${initVals[si]} : 0.f;`)}
      }
    } else {
      __threadfence();
      __syncwarp();
      if (lane == 0) asm volatile("st.release.gpu.global.u32 [%0], %1;" :: "l"(pw_flags + 1 + tile), "r"(1u) : "memory");
      float accA[${nS}][VEC], accB[${nS}][VEC];
#pragma unroll
      for (unsigned int v = 0; v < VEC; ++v) { ${perState((si) => `accA[${si}][v] = 1.f; accB[${si}][v] = 0.f;`)} }
${PW.parallel ? parallelLookback : serialLookback}
    }
    // inclusive prefix of this tile: its aggregate applied to the carry-in
#pragma unroll
    for (unsigned int v = 0; v < VEC; ++v) {
      const unsigned int i = lane + 32u * v;
${perState((si) => `      inc[${si} * 2 * CH + i] = s_gA[${si}][i] * carry[${si}][v] + s_gB[${si}][i]; s_carry[${si}][i] = carry[${si}][v];`)}
    }
    __threadfence();
    __syncwarp();
    if (lane == 0) asm volatile("st.release.gpu.global.u32 [%0], %1;" :: "l"(pw_flags + 1 + tile), "r"(2u) : "memory");
  }
  __syncthreads();
  // 4. replay: carry-in of this thread = tile carry composed with the aggregates of warps 0..wy-1
#pragma unroll
  for (unsigned int v = 0; v < VEC; ++v) {
    const unsigned int c = ct * CH + lane + 32u * v;
    if (c >= C) continue;
    const unsigned int i = lane + 32u * v;
${perState((si) => `    float hp${si} = 0.f, h${si} = s_carry[${si}][i];\n    for (unsigned int w = 0; w < wy; ++w) h${si} = s_A[${si}][w][i] * h${si} + s_B[${si}][w][i];`)}
${S(coordStmts, "    ")}
#pragma unroll
    for (unsigned int l = 0; l < L; ++l) {
      const unsigned int t = tbase + l;
      if (t >= T) break;
${perState((si) => `      hp${si} = h${si}; h${si} = a${si}[l][v] * h${si} + b${si}[l][v];`)}
      const size_t row = (size_t)b * T + t;
${outBlocks.map((o) => `      {\n${S(o.pre, "        ")}\n        ${o.buf}[row * (${R(o.size)}) + c] = ${R(o.v)};\n      }`).join("\n")}
      if (t == T - 1) {
${states.map((s, si) => `        ${STATES}[u.${stateOffset(s.name)} + (size_t)b * C + c] = h${si};`).join("\n")}
      }
    }
  }
}
`;
  const C: SizeExpr = productS(shape);
  const tiles: SizeExpr = ["*", "B", ["ceilDiv", C, CH], ["ceilDiv", "T", TT]];
  const form: CudaFormPlan = {
    form: "scan",
    variant: `pointwise-lookback${PW.suffix}`,
    note: `single pass over memory: ${CH} channels x ${TT} steps per block, decoupled look-back across time tiles`,
    vars: [["PW_TILES", tiles]],
    // workspaces are per variant: names carry the suffix so two variants can share a runner
    workspaces: [
      { name: "pw_values", words: ["*", 2, "PW_TILES", 2 * nS * CH] },
      { name: "pw_flags", words: ["+", "PW_TILES", 1] },
    ],
    steps: [
      { kind: "zero", workspace: "pw_flags" },
      { kind: "launch", entry: name, grid: "PW_TILES", threads: PW.WARPS * 32, sharedBytes: 0, buffers: bufParams.map((p) => p.ref), uniforms, overrides: overrideValues(model, overrides) },
    ],
  };
  return { source: src, form };
}
