/** Compile targets: each turns one model into files. Backends add theirs here. */
import type { Model } from "./ir/types.ts";
import { analyzeModel } from "./analysis/index.ts";
import { chooseForms } from "./analysis/choose.ts";
import { analysisJson } from "./analysis/report.ts";
import { printExpr, printStmt } from "./ir/print.ts";
import { shapeText } from "./ir/types.ts";
import { cudaTarget } from "./backends/cuda/target.ts";
import { wgslTarget, tsTarget } from "./backends/wgsl/target.ts";

export interface EmittedFile { path: string; contents: string }
export interface TargetOptions { form: string }
export interface Target {
  describe: string;
  emit: (model: Model, opts: TargetOptions) => Promise<EmittedFile[]> | EmittedFile[];
}

/** The IR as readable .seq-like text (declarations + statements after resolution). */
export function irText(m: Model): string {
  const dims = m.dims.map((d) => (d.fixed !== undefined ? `${d.name} = ${d.fixed}` : d.name)).join(", ");
  const decls = m.tensors.filter((t) => t.kind === "input" || t.kind === "param" || t.kind === "state").map((t) => `${t.kind} ${t.name}${shapeText(t.shape)}${t.init ? ` = ${printExpr(t.init)}` : ""}`);
  return [`model ${m.name} {`, `  dims ${dims}`, ...decls.map((d) => `  ${d}`), ...m.body.map((s) => printStmt(s, "  ")), "}", ""].join("\n");
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
