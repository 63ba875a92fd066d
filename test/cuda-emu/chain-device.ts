/**
 * A MultiPlanFakeDevice that also runs chunked forms: a plan cut down to one chunked variant whose module
 * source is that variant's kernels alone (lowerChunked's `only`, as harness.ts builds them), so the module the
 * runner compiles from it runs on the chunked emulator build (buildEmu). For the chunked backward chain of a
 * generated class on backend "cuda": its cores in the chunked form, the other parts in their plain forms.
 */
import type * as I from "../../compiler/ir/types.ts";
import type { CudaModelPlan } from "../../runtime/cuda/plan.ts";
import { chunkedEligible, lowerChunked } from "../../compiler/backends/cuda/chunked-plan.ts";
import { buildEmu } from "./harness.ts";
import { MultiPlanFakeDevice } from "./plain.ts";

export class ChainFakeDevice extends MultiPlanFakeDevice {
  /** `plan` (of `model`) cut down to its chunked form `variant`; launches of its module run on the chunked emulator. */
  addChunked(model: I.Model, plan: CudaModelPlan, variant: string): CudaModelPlan {
    const form = plan.forms.find((f) => f.variant === variant);
    if (!form) throw new Error(`${plan.model}: no form ${variant} in the plan (${plan.forms.map((f) => f.variant).join(", ")})`);
    if (form.form !== "chunked" || !form.module) throw new Error(`${plan.model}: ${variant} is not a chunked form in a module`);
    const el = chunkedEligible(model);
    if (!el.ok) throw new Error(`${model.name}: ${el.why}`);
    const source = lowerChunked(model, el, { only: (v) => v === variant }).modules[form.module].source;
    this.builds.set(source, buildEmu(model, [variant]));
    return { ...plan, forms: [form], modules: { [form.module]: { source } }, ptx: undefined };
  }
}
