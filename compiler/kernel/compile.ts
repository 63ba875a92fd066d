/** Lower a model to every form that applies: backend-neutral kernels plus their launch plans. */
import * as I from "../ir/types.ts";
import type * as K from "./ir.ts";
import type { FormPlan, ModelPlan } from "../../runtime/plan.ts";
import { lowerSequential, type LoweredForm } from "./sequential.ts";
import { tensorSpecs, uniformFields } from "./interface.ts";
import { lowerOuterSum } from "./outer-sum.ts";
import { lowerParamProduct } from "./param-product.ts";

export type FormName = "sequential" | "scan";

export interface LoweredModel {
  model: I.Model;
  forms: LoweredForm[];
  /** Why a form was not produced (e.g. scan for a nonlinear cell). */
  skipped: { form: FormName; reason: string }[];
}

export type ScanLowering = (model: I.Model) => LoweredForm[] | { reason: string };

let scanLowering: ScanLowering | undefined;
/** The scan form registers itself here (it needs the structure analysis). */
export function registerScanLowering(f: ScanLowering): void {
  scanLowering = f;
}

export function lowerModel(model: I.Model, forms: FormName[] = ["sequential", "scan"]): LoweredModel {
  const out: LoweredModel = { model, forms: [], skipped: [] };
  if (forms.includes("sequential")) {
    // an outer-product sum (a param's adjoint pass) or a param product (an input's adjoint pass) first: CUDA
    // runs the first applicable form in plan order
    for (const mm of [lowerOuterSum(model), lowerParamProduct(model)]) if (!("why" in mm)) out.forms.push(mm);
    out.forms.push(lowerSequential(model, "thread"), lowerSequential(model, "workgroup"), lowerSequential(model, "global"));
  }
  if (forms.includes("scan")) {
    const r = scanLowering ? scanLowering(model) : { reason: "the scan lowering is not available" };
    if (Array.isArray(r)) out.forms.push(...r);
    else out.skipped.push({ form: "scan", reason: r.reason });
  }
  return out;
}

/** The launch plan of a lowered model with each kernel rendered by `render`. */
export function modelPlan(l: LoweredModel, render: (k: K.Kernel) => string): ModelPlan {
  const shaders: Record<string, string> = {};
  const forms: FormPlan[] = [];
  for (const f of l.forms) {
    for (const k of f.kernels) shaders[k.name] = render(k);
    forms.push(f.plan);
  }
  return {
    model: l.model.name,
    dims: l.model.dims.map((d) => ({ name: d.name, ...(d.fixed !== undefined ? { fixed: d.fixed } : {}), ...(d.sequenceDefault ? { sequenceDefault: true } : {}) })),
    tensors: tensorSpecs(l.model),
    uniforms: uniformFields(l.model),
    shaders,
    forms,
  };
}
