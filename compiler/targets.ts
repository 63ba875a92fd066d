/** Compile targets: each turns one model into files. Backends add theirs here. */
import type { Model } from "./ir/types.ts";
import { analyzeModel } from "./analysis/index.ts";
import { chooseForms } from "./analysis/choose.ts";
import { analysisJson } from "./analysis/report.ts";
import { irText } from "./ir/ir-text.ts";
import { cudaTarget } from "./backends/cuda/target.ts";
import { wgslTarget, tsTarget } from "./backends/wgsl/target.ts";
import { torchTarget } from "./backends/torch/target.ts";

export { irText };

export interface EmittedFile { path: string; contents: string }
export interface TargetOptions {
  form: string;
  /** `--dims`: sizes a target needs at compile time (the torch target: extents of loops its backward unrolls). */
  dims?: Record<string, number>;
}
export interface Target {
  describe: string;
  emit: (model: Model, opts: TargetOptions) => Promise<EmittedFile[]> | EmittedFile[];
}

export const TARGETS: Record<string, Target> = {
  ir: {
    describe: "the structure analysis (JSON) and the resolved IR (JSON and text)",
    emit: (m) => {
      const a = analyzeModel(m);
      const json = (x: unknown) => JSON.stringify(x, (k, v) => (k === "span" ? undefined : v), 2) + "\n";
      return [
        { path: `${m.name}.analysis.json`, contents: json(analysisJson(a, chooseForms(m, a))) },
        { path: `${m.name}.ir.json`, contents: json({ name: m.name, dims: m.dims, tensors: m.tensors, body: m.body }) },
        { path: `${m.name}.ir.txt`, contents: irText(m) },
      ];
    },
  },
};

TARGETS.cuda = cudaTarget;
TARGETS.wgsl = wgslTarget;
TARGETS.ts = tsTarget;
TARGETS.torch = torchTarget;
