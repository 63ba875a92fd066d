/** What the baseline test compares: the emitted WGSL kernels and generated class of a few stdlib models. */
import { join } from "node:path";
import { ROOT, stdlibModel } from "./support.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import { modelClassSource } from "../../compiler/codegen/model-class.ts";
import { formatTs } from "../../compiler/codegen/format.ts";

export const BASELINE_DIR = join(ROOT, "test/baselines");
export const BASELINE_MODELS = ["hgrn", "lstm", "gla", "mamba"];

/** file name -> contents, for every baseline. */
export async function emitBaselines(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of BASELINE_MODELS) {
    const model = stdlibModel(name);
    model.file = `stdlib/${name}.seq`;
    const plan = compileWgsl(model);
    for (const [k, code] of Object.entries(plan.shaders)) out.set(`${k}.wgsl`, code);
    out.set(`${model.name}.ts`, await formatTs(modelClassSource(model, plan)));
  }
  return out;
}
