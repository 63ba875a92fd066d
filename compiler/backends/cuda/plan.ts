/**
 * The CUDA plan of a model: every form the backend-neutral lowering produces (compiler/kernel/),
 * rendered by render.ts, plus the CUDA-specific variants generated from the same IR where they
 * apply (pointwise-scan.ts for first-order diagonal recurrences, matvec-cell.ts for LSTM/GRU-like
 * cells). One translation unit holds every kernel.
 */
import * as I from "../../ir/types.ts";
import type * as K from "../../kernel/ir.ts";
import { lowerModel } from "../../kernel/compile.ts";
import { tensorSpecs, uniformFields } from "../../kernel/interface.ts";
import { analyzeModel } from "../../analysis/index.ts";
import type { BufferRef, FormPlan, SizeExpr } from "../../../runtime/plan.ts";
import type { CudaBufferRef, CudaFormPlan, CudaLaunch, CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { renderKernel } from "./render.ts";
import { CUDA_PRELUDE, CUDA_PRELUDE_F64 } from "./math.ts";
import { SGEMM_SOURCE } from "./sgemm.ts";
import { pointwiseScanEligible, renderPointwiseScan, PW_CONFIGS } from "./pointwise-scan.ts";
import { renderPointwiseStream, STREAM_CONFIGS } from "./pointwise-stream.ts";
import { renderPointwiseChain, CHAIN_CONFIGS, type ChainConfig } from "./pointwise-chain.ts";
import { matvecCellPlan, renderMatvecCell, CELL_CONFIGS } from "./matvec-cell.ts";
import { renderMatvecCellBatch, BATCH_CELL_CONFIGS } from "./matvec-cell-batch.ts";
import { chunkedEligible, lowerChunked, type ChunkIo } from "./chunked-plan.ts";

export interface CudaLowering {
  plan: CudaModelPlan;
  /** The model's own kernels (plan.source without the shared prelude and GEMM), for building one translation unit of many models. */
  modelSource: string;
  needsGemm: boolean;
  /** Variants not produced, with the reason (for explain and the tests). */
  skipped: { variant: string; reason: string }[];
}

/**
 * Plan vars of the backend-neutral lowering live in the same namespace as dims (e.g. its partition size
 * `P` and Mamba-2's head dim `P`). Rename such vars wherever the plan means the var (everything except
 * the var's own definition and the D_<dim> overrides), so the dim keeps its value.
 */
function renameClashingVars(f: FormPlan, model: I.Model): FormPlan {
  const dims = new Set(model.dims.map((d) => d.name));
  const clash = f.vars.map(([n]) => n).filter((n) => dims.has(n));
  if (!clash.length) return f;
  const ren = (e: SizeExpr): SizeExpr => (typeof e === "string" ? (clash.includes(e) ? `V_${e}` : e) : Array.isArray(e) ? ([e[0], ...e.slice(1).map((x) => ren(x as SizeExpr))] as SizeExpr) : e);
  return {
    ...f,
    vars: f.vars.map(([n, e]) => [clash.includes(n) ? `V_${n}` : n, clash.includes(n) ? e : ren(e)]),
    applicable: f.applicable === undefined ? undefined : ren(f.applicable),
    scratch: f.scratch.map((s) => ({ ...s, floats: ren(s.floats) })),
    kernels: f.kernels.map((k) => ({
      ...k,
      workgroups: ren(k.workgroups),
      threads: ren(k.threads),
      sharedBytes: ren(k.sharedBytes),
      overrides: Object.fromEntries(Object.entries(k.overrides).map(([n, e]) => [n, clash.includes(n) ? `V_${n}` : n.startsWith("D_") ? e : ren(e)])),
    })),
    cost: { bytes: ren(f.cost.bytes), serialSteps: ren(f.cost.serialSteps), threads: ren(f.cost.threads), flops: ren(f.cost.flops) },
  };
}

/** A backend-neutral form plan and its kernels as CUDA launches. */
export function genericForm(f0: FormPlan, kernels: K.Kernel[], model: I.Model): CudaFormPlan {
  const f = renameClashingVars(f0, model);
  const byName = new Map(kernels.map((k) => [k.name, k]));
  const steps: CudaLaunch[] = f.kernels.map((l) => {
    const k = byName.get(l.shader) ?? byName.get(l.name);
    if (!k) throw new Error(`form ${f.variant}: no kernel ${l.shader}`);
    const bindingOf = new Map(l.bindings.map((b) => [b.binding, b.buffer]));
    const buffers: CudaBufferRef[] = [...k.buffers]
      .sort((a, b) => a.binding - b.binding)
      .map((b) => {
        const r = bindingOf.get(b.binding);
        if (!r) throw new Error(`kernel ${k.name}: binding ${b.binding} (${b.name}) is not in its launch`);
        return r.kind === "scratch" ? { kind: "workspace", name: r.name } : (r as BufferRef);
      });
    const overrides: CudaLaunch["overrides"] = {};
    for (const o of k.overrides) overrides[o.name] = l.overrides[o.name] ?? o.name;
    return { kind: "launch", entry: k.name, grid: l.workgroups, threads: l.threads, sharedBytes: l.sharedBytes, buffers, uniforms: k.uniforms, overrides };
  });
  return {
    form: f.form,
    variant: f.variant,
    applicable: f.applicable,
    note: `backend-neutral ${f.form} lowering (${f.variant})`,
    vars: f.vars,
    workspaces: f.scratch.map((s) => ({ name: s.name, words: s.floats })),
    steps,
    cost: f.cost,
  };
}

export interface CudaLowerOptions {
  /** Chain-scan configurations to emit (default CHAIN_CONFIGS; the benchmark sweep passes more). */
  chainConfigs?: ChainConfig[];
  /** The chunked form's I/O types (default chunked-plan.ts CHUNK_IOS; the torch target adds bf16 inputs with fp32 outputs for the transposed cores). */
  chunkIos?: readonly ChunkIo[];
}

export function lowerCuda(model: I.Model, opts: CudaLowerOptions = {}): CudaLowering {
  const skipped: CudaLowering["skipped"] = [];
  const parts: string[] = [];
  let needsGemm = false;
  const forms: CudaFormPlan[] = [];
  const lowered = lowerModel(model);
  for (const s of lowered.skipped) skipped.push({ variant: s.form, reason: s.reason });
  for (const f of lowered.forms) {
    for (const k of f.kernels) parts.push(renderKernel(k));
    forms.push(genericForm(f.plan, f.kernels, model));
  }
  const analysis = analyzeModel(model);
  const pw = pointwiseScanEligible(model, analysis);
  if (pw.ok) {
    const rs = [
      ...(opts.chainConfigs ?? CHAIN_CONFIGS).map((c) => renderPointwiseChain(model, analysis, c)),
      ...STREAM_CONFIGS.map((c) => renderPointwiseStream(model, analysis, c)),
      ...PW_CONFIGS.map((c) => renderPointwiseScan(model, analysis, c)),
    ];
    for (const r of rs) parts.push(r.source);
    forms.unshift(...rs.map((r) => r.form));
  } else skipped.push({ variant: "pointwise-lookback", reason: pw.why });
  const mc = matvecCellPlan(model);
  if (mc.ok) {
    // the batch-partitioned cell first: where its matrices fit one block's shared memory (small H) it needs no grid barrier
    const rs = [...BATCH_CELL_CONFIGS.map((c) => renderMatvecCellBatch(model, c)), ...CELL_CONFIGS.map((c) => renderMatvecCell(model, c))];
    needsGemm = mc.plan.xterms.length > 0;
    for (const r of rs) parts.push(r.source);
    forms.unshift(...rs.map((r) => r.form));
  } else skipped.push({ variant: "persistent-matvec", reason: mc.why });
  // chunked form (matrix canonical form): its kernels live in modules of their own, one per I/O type
  const ch = chunkedEligible(model);
  const chunked = ch.ok ? lowerChunked(model, ch, { ios: opts.chunkIos }) : undefined;
  if (chunked) forms.unshift(...chunked.forms);
  else if (!ch.ok) skipped.push({ variant: "chunked", reason: ch.why });
  // an outer-product sum's matrix product (compiler/kernel/outer-sum.ts: a param's adjoint pass) before the
  // per-element scans: the runner takes the first applicable form
  forms.sort((a, b) => Number(b.variant === "matmul") - Number(a.variant === "matmul"));
  const plan: CudaModelPlan = {
    model: model.name,
    dims: model.dims.map((d) => (d.fixed !== undefined ? { name: d.name, fixed: d.fixed } : { name: d.name })),
    tensors: tensorSpecs(model),
    uniforms: uniformFields(model),
    source: [`// seqc CUDA kernels for model ${model.name} (generated; do not edit)`, CUDA_PRELUDE, ...(needsGemm ? [SGEMM_SOURCE] : []), ...parts].join("\n\n") + "\n",
    forms,
    ...(chunked ? { modules: chunked.modules } : {}),
  };
  return { plan, skipped, modelSource: parts.join("\n\n") + "\n", needsGemm };
}

/** One translation unit holding the kernels of several models (shared prelude and GEMM once). */
export function combinedSource(lowerings: CudaLowering[]): string {
  return [CUDA_PRELUDE, ...(lowerings.some((l) => l.needsGemm) ? [SGEMM_SOURCE] : []), ...lowerings.map((l) => l.modelSource)].join("\n\n") + "\n";
}

/**
 * The backend-neutral forms only (sequential variants, and scan where the neutral lowering has one), with
 * every f32 value, buffer and shared array rendered as double: the float64 kernels of the torch target
 * (`torch.autograd.gradcheck`). Sizes in the plan still count 4-byte elements: a runner doubles
 * sharedBytes and workspace words and halves the shared-memory limits it plans with.
 */
export function lowerCudaF64(model: I.Model): CudaModelPlan {
  const lowered = lowerModel(model);
  const parts: string[] = [];
  const forms = lowered.forms.map((f) => {
    for (const k of f.kernels) parts.push(renderKernel(k, { real: "double" }));
    return genericForm(f.plan, f.kernels, model);
  });
  return {
    model: model.name,
    dims: model.dims.map((d) => (d.fixed !== undefined ? { name: d.name, fixed: d.fixed } : { name: d.name })),
    tensors: tensorSpecs(model),
    uniforms: uniformFields(model),
    source: [`// seqc CUDA kernels (float64) for model ${model.name} (generated; do not edit)`, CUDA_PRELUDE, CUDA_PRELUDE_F64, ...parts].join("\n\n") + "\n",
    forms,
  };
}
