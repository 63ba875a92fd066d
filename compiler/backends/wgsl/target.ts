/**
 * `seqc compile --target wgsl,ts`: per model, its WGSL kernels (one file per kernel, for reading and
 * for other hosts), the launch plan (JSON) and `<Model>.ts`, a typed class on seqc/runtime.
 */
import type * as I from "../../ir/types.ts";
import type { EmittedFile, Target } from "../../targets.ts";
import { lowerModel } from "../../kernel/compile.ts";
import { compileWgsl, type WgslFormName } from "./index.ts";
import { wgslChunkedEligible } from "./chunked-plan.ts";
import { modelClassSource } from "../../codegen/model-class.ts";
import { trainingPlans } from "../../codegen/training-plans.ts";
import { formatTs } from "../../codegen/format.ts";
import { UserError } from "../../cli/errors.ts";

/** The forms to emit for `--form`: auto emits every applicable one (the runtime picks per shape). */
export function formsFor(model: I.Model, form: string): WgslFormName[] {
  if (form === "auto") return ["sequential", "scan", "chunked"];
  if (form === "sequential") return ["sequential"];
  if (form === "scan") {
    const l = lowerModel(model, ["scan"]);
    if (l.skipped.length) throw new UserError(`${model.name} has no scan form: ${l.skipped[0].reason}`);
    return ["scan"];
  }
  if (form === "chunked") {
    const el = wgslChunkedEligible(model);
    if (!el.ok) throw new UserError(`${model.name} has no chunked form: ${el.why}`);
    return ["chunked"];
  }
  throw new UserError(`the WebGPU backend has no form '${form}' (auto, sequential, scan, chunked)`);
}

export function planFor(model: I.Model, form: string) {
  return compileWgsl(model, formsFor(model, form));
}

export const wgslTarget: Target = {
  describe: "WGSL compute kernels (one .wgsl per kernel) and the launch plan (.plan.json)",
  emit: (m, opts) => {
    const plan = planFor(m, opts.form);
    const files: EmittedFile[] = Object.entries(plan.shaders).map(([name, code]) => ({ path: `${name}.wgsl`, contents: code }));
    files.push({ path: `${m.name}.plan.json`, contents: JSON.stringify(plan, null, 1) + "\n" });
    return files;
  },
};

export const tsTarget: Target = {
  describe: "a typed TypeScript class per model (<Model>.ts) that runs it on WebGPU (or, with the cuda target's plans next to it, CUDA) through seqc/runtime, with forward, step and backward",
  emit: async (m, opts) => [{ path: `${m.name}.ts`, contents: await formatTs(modelClassSource(m, planFor(m, opts.form), { training: trainingPlans(m, opts.dims) })) }],
};
