/**
 * Streaming sequential form for the same "pointwise" first-order diagonal models as pointwise-scan.ts
 * (HGRN and the like): when there are many independent channels (B x C / 32 warps well above the number
 * of multiprocessors) no time parallelism is needed, only memory-level parallelism. One warp owns 32
 * channels of one batch row and walks t = 0..T-1 with its state in registers; the inputs aligned with
 * the state are prefetched NS stages ahead with cp.async into shared memory (each lane copies and later
 * reads only its own channel, so no barrier is needed), outputs are stored as coalesced 128-byte rows.
 * No inter-block communication at all; bytes moved = inputs once + outputs once.
 * The math ((a, b) per state and the readout) is lowered from the IR exactly as in pointwise-scan.ts.
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
import { pointwiseScanEligible } from "./pointwise-scan.ts";
import type { CudaFormPlan, CudaBufferRef } from "../../../runtime/cuda/plan.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";

export interface StreamConfig { NS: number; S: number; suffix: string }
/** NS stages of S steps in flight per warp. The first is the default. */
export const STREAM_CONFIGS: StreamConfig[] = [
  { NS: 4, S: 32, suffix: "" },
  { NS: 8, S: 16, suffix: "-s16" },
];

/**
 * Inputs shaped like the state and read only at the reading element's own index: these are staged.
 * Optional inputs (declared with a default) are not: an omitted one has no data to copy, and the
 * expression lowering reads them behind their has() flag.
 */
export function alignedInputs(model: I.Model, defs: { vars: I.IndexVar[]; expr: I.Expr }[], shape: I.Extent[]): Set<string> {
  const cand = new Set(I.tensorsOfKind(model, "input").filter((t) => !t.init && t.shape.length === shape.length && t.shape.every((e, i) => JSON.stringify(e) === JSON.stringify(shape[i]))).map((t) => t.name));
  for (const d of defs) {
    I.walkExpr(d.expr, (x) => {
      if (x.k === "read" && cand.has(x.tensor) && (x.idx.length !== d.vars.length || x.idx.some((ix, i) => ix.kind !== "var" || ix.v.id !== d.vars[i].id))) cand.delete(x.tensor);
    });
  }
  return cand;
}

export function renderPointwiseStream(model: I.Model, a: ModelAnalysis, cfg: StreamConfig = STREAM_CONFIGS[0]): { source: string; form: CudaFormPlan } {
  const el = pointwiseScanEligible(model, a);
  if (!el.ok) throw new Error(`pointwise stream of ${model.name}: ${el.why}`);
  const { NS, S } = cfg;
  const states = I.tensorsOfKind(model, "state");
  const outputs = I.tensorsOfKind(model, "output");
  const inputs = I.tensorsOfKind(model, "input");
  const shape = states[0].shape;
  const ro = inlineModel(model, "readout", new Renamer(model));
  const uniforms = uniformFields(model);
  const overrides = [...model.dims.map((d) => `D_${d.name}`), ...I.tensorsOfKind(model, "param").map((p) => `PO_${p.name}`)];
  const cx: RenderContext = { overrides: new Set(overrides), uniforms: new Set(uniforms) };
  const R = (e: K.KExpr) => renderExpr(e, cx);
  const St = (body: K.KStmt[], ind: string) => renderStmts(body, cx, ind).join("\n");
  const name = `seqc_${model.name}_stream_pointwise${cfg.suffix.replace(/-/g, "_")}`;
  const ews = states.map((s) => a.states.find((x) => x.name === s.name)!.elementwise!);
  const outDefs = outputs.map((o) => ro.outputs.get(o.name)!);
  const staged = [...alignedInputs(model, [...ews.flatMap((e) => [{ vars: e.vars, expr: e.a }, { vars: e.vars, expr: e.b }]), ...outDefs], shape)];
  const stagedIdx = new Map(staged.map((n, i) => [n, i]));
  const nIn = Math.max(1, staged.length);
  const sIn = (tensor: string) => K.ref(`s_in[((slot * ${nIn}u + ${stagedIdx.get(tensor)}u) * ${S}u + s) * 32u + lane]`, "f32");

  const coordStmts: K.KStmt[] = [];
  const coords = decompose(K.ref("c"), shape, (ax) => `cc${ax}`, coordStmts);
  const bK = K.ref("b");
  const tK = K.ref("t");
  const stateIndex = new Map(states.map((s, i) => [s.name, i]));
  const abBlocks = states.map((s, si) => {
    const vars = new Map<number, K.KExpr>(ews[si].vars.map((v, i) => [v.id, coords[i]]));
    const sc = new CudaScope({ model, b: bK, t: tK, vars, prefix: `ab${si}`, local: (tensor) => (stagedIdx.has(tensor) ? sIn(tensor) : undefined) });
    const pre: K.KStmt[] = [];
    const av = sc.lower(ews[si].a, pre);
    const bv = sc.lower(ews[si].b, pre);
    return { pre, a: av, b: bv };
  });
  const outBlocks = outputs.map((o, oi) => {
    const def = outDefs[oi];
    const vars = new Map<number, K.KExpr>(def.vars.map((v, i) => [v.id, coords[i]]));
    const sc = new CudaScope({
      model,
      b: bK,
      t: tK,
      vars,
      prefix: `o${oi}`,
      local: (tensor) => {
        if (stagedIdx.has(tensor)) return sIn(tensor);
        const si = stateIndex.get(tensor.replace(UPDATED, ""));
        if (si === undefined) return undefined;
        return K.ref(tensor.endsWith(UPDATED) ? `h${si}` : `hp${si}`, "f32");
      },
    });
    const pre: K.KStmt[] = [];
    const v = sc.lower(def.expr, pre);
    return { pre, v, buf: outputBuffer(o.name) };
  });
  const initVals = states.map((s, si) => {
    const sc = new CudaScope({ model, b: bK, t: tK, prefix: `i${si}` });
    const init = s.init ? lowerConst(s.init, sc) : K.f32(0);
    return `(u.${initFlag(s.name)} != 0u ? ${STATES}[u.${stateOffset(s.name)} + (size_t)b * C + c] : ${R(init)})`;
  });
  const bufParams: { ref: CudaBufferRef; decl: string }[] = [
    ...inputs.map((t) => ({ ref: { kind: "input", name: t.name } as CudaBufferRef, decl: `const float* __restrict__ ${inputBuffer(t.name)}` })),
    ...outputs.map((t) => ({ ref: { kind: "output", name: t.name } as CudaBufferRef, decl: `float* __restrict__ ${outputBuffer(t.name)}` })),
    { ref: { kind: "params" }, decl: `const float* __restrict__ params` },
    { ref: { kind: "states" }, decl: `float* __restrict__ ${STATES}` },
  ];
  const us = `SeqcUniforms_${name}`;
  const os = `SeqcOverrides_${name}`;
  const ovDecls = overrides.map((o) => `#ifndef SEQC_${o}_CONST\n  const unsigned int SEQC_${o} = ov.${o};\n#else\n  constexpr unsigned int SEQC_${o} = SEQC_${o}_CONST;\n#endif`).join("\n");
  const per = (f: (si: number) => string) => states.map((_, si) => f(si)).join("\n");
  const issue = staged
    .map((n, i) => `        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" :: "r"((unsigned int)__cvta_generic_to_shared(s_in + ((slot * ${nIn}u + ${i}u) * ${S}u + s) * 32u + lane)), "l"(${inputBuffer(n)} + row * C + c) : "memory");`)
    .join("\n");

  const src = `
// ==== ${model.name}: streaming sequential form (warp per 32 channels, cp.async prefetch ${NS} x ${S} steps) ====
struct ${us} { ${uniforms.map((u) => `unsigned int ${u};`).join(" ")} };
struct ${os} { ${overrides.map((o) => `unsigned int ${o};`).join(" ")} };
extern "C" __global__ void __launch_bounds__(32) ${name}(${[...bufParams.map((p) => p.decl), `const ${us} u`, `const ${os} ov`].join(", ")}) {
${ovDecls}
  __shared__ float s_in[${NS * nIn * S * 32}];
  const unsigned int T = u.T;
  const unsigned int C = ${R(productK(shape))};
  const unsigned int groups = (C + 31u) / 32u;
  const unsigned int b = blockIdx.x / groups, lane = threadIdx.x;
  const unsigned int c = (blockIdx.x % groups) * 32u + lane;
  const bool valid = c < C;
  const unsigned int nTiles = (T + ${S - 1}u) / ${S}u;
  auto issue = [&](unsigned int k) {
    const unsigned int slot = k % ${NS}u;
#pragma unroll
    for (unsigned int s = 0; s < ${S}u; ++s) {
      const unsigned int t = k * ${S}u + s;
      if (valid && t < T) {
        const size_t row = (size_t)b * T + t;
${issue}
      }
    }
  };
#pragma unroll
  for (unsigned int k = 0; k < ${NS - 1}u; ++k) {
    if (k < nTiles) issue(k);
    asm volatile("cp.async.commit_group;" ::: "memory");
  }
${per((si) => `  float h${si} = 0.f, hp${si} = 0.f;`)}
  if (valid) {
${St(coordStmts, "    ")}
${per((si) => `    h${si} = ${initVals[si]};`)}
  }
${St(coordStmts, "  ")}
  for (unsigned int k = 0; k < nTiles; ++k) {
    if (k + ${NS - 1}u < nTiles) issue(k + ${NS - 1}u);
    asm volatile("cp.async.commit_group;" ::: "memory");
    asm volatile("cp.async.wait_group ${NS - 1};" ::: "memory");
    if (!valid) continue;
    const unsigned int slot = k % ${NS}u;
#pragma unroll
    for (unsigned int s = 0; s < ${S}u; ++s) {
      const unsigned int t = k * ${S}u + s;
      if (t >= T) break;
${abBlocks.map((blk, si) => `      {\n${St(blk.pre, "        ")}\n        const float av = ${R(blk.a)}, bv = ${R(blk.b)};\n        hp${si} = h${si}; h${si} = av * h${si} + bv;\n      }`).join("\n")}
      const size_t row = (size_t)b * T + t;
${outBlocks.map((o) => `      {\n${St(o.pre, "        ")}\n        ${o.buf}[row * C + c] = ${R(o.v)};\n      }`).join("\n")}
    }
  }
  if (valid) {
${states.map((s, si) => `    ${STATES}[u.${stateOffset(s.name)} + (size_t)b * C + c] = h${si};`).join("\n")}
  }
}
`;
  const C: SizeExpr = productS(shape);
  const warps: SizeExpr = ["*", "B", ["ceilDiv", C, 32]];
  const form: CudaFormPlan = {
    form: "sequential",
    variant: `pointwise-stream${cfg.suffix}`,
    note: `one warp per 32 channels over all T, ${staged.length} aligned input(s) prefetched ${NS - 1} x ${S} steps ahead with cp.async; preferred when B*C/32 >= 2 x multiprocessors`,
    vars: [["STREAM_WARPS", warps]],
    prefer: [">=", "STREAM_WARPS", ["*", 2, "LIMIT_SMS"]],
    workspaces: [],
    steps: [{ kind: "launch", entry: name, grid: "STREAM_WARPS", threads: 32, sharedBytes: 0, buffers: bufParams.map((p) => p.ref), uniforms, overrides: overrideValues(model, overrides) }],
  };
  return { source: src, form };
}
