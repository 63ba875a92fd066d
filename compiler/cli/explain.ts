/** `seqc explain <file> [--json] [--shape B=..,T=..]`: the structure analysis and form choice. */
import type { Command } from "./command.ts";
import { loadOrFail, parseShape } from "./load-or-fail.ts";
import { analyzeModel } from "../analysis/index.ts";
import { chooseForms } from "../analysis/choose.ts";
import { analysisJson, analysisText } from "../analysis/report.ts";
import { UserError } from "./errors.ts";
import { deviceLimits } from "../backends/wgsl/run-backend.ts";

interface Args { file: string; json?: boolean; shape?: string; model?: string; device?: boolean }

export const explainCommand: Command<Args> = {
  command: "explain <file>",
  describe: "show per model and state: affine or not, transition class, readout, and the form each backend picks",
  builder: (y) =>
    y
      .positional("file", { type: "string", demandOption: true })
      .option("json", { type: "boolean", describe: "machine-readable output" })
      .option("model", { type: "string", describe: "only this model" })
      .option("shape", { type: "string", describe: "sizes for the cost model, e.g. B=8,T=2048,H=16 (device limits too: LIMIT_BINDING, LIMIT_SHARED, LIMIT_THREADS)" })
      .option("device", { type: "boolean", describe: "rank the WebGPU variants at this machine's adapter limits (as the runtime would) instead of the WebGPU defaults" }) as never,
  handler: async ({ file, json, shape, model, device }) => {
    const p = loadOrFail([file], { warnings: false });
    let sizes = parseShape(shape);
    if (device) {
      let limits: Record<string, number>;
      try {
        limits = await deviceLimits();
      } catch (e) {
        throw new UserError(`--device: ${(e as Error).message}`);
      }
      sizes = { ...limits, ...(sizes ?? {}) };
    }
    const models = p.models.filter((m) => !model || m.name === model);
    if (model && !models.length) throw new UserError(`no model '${model}' in ${file} (models: ${p.models.map((m) => m.name).join(", ")})`);
    const results = models.map((m) => {
      const a = analyzeModel(m);
      return { a, choice: chooseForms(m, a, sizes) };
    });
    if (json) process.stdout.write(JSON.stringify({ models: results.map((r) => analysisJson(r.a, r.choice)) }, null, 2) + "\n");
    else process.stdout.write(results.map((r) => analysisText(r.a, r.choice)).join("\n\n") + "\n");
    return 0;
  },
};
