/** `seqc run <file> --inputs case.json --out result.json`: run a model on a golden-format case. */
import type { Command } from "./command.ts";
import { loadProgram } from "../frontend/load.ts";
import { formatDiagnostics, hasErrors } from "../diagnostics.ts";
import { UserError } from "./errors.ts";
import { bindCase, parseDims, readCase, resultTensors, writeCase } from "../io/manifest.ts";
import { backendNames, getBackend } from "../backends/index.ts";
import type { Model } from "../ir/types.ts";

interface Args { file: string; model?: string; inputs: string; backend: string; out: string; dims?: string; form?: string }

/** The model to run: --model, else the only model of the file. */
export function pickModel(models: Model[], name: string | undefined, file: string): Model {
  if (name) {
    const m = models.find((x) => x.name === name);
    if (!m) throw new UserError(`no model '${name}' in ${file} (models: ${models.map((x) => x.name).join(", ") || "none"})`);
    return m;
  }
  if (models.length === 1) return models[0];
  if (!models.length) throw new UserError(`${file} defines no model`);
  throw new UserError(`${file} defines ${models.length} models (${models.map((x) => x.name).join(", ")}); pick one with --model`);
}

export const runCommand: Command<Args> = {
  command: "run <file>",
  describe: "run a model on a case (manifest .json + .bin) and write the outputs and final states",
  builder: (y) =>
    y
      .positional("file", { type: "string", demandOption: true, describe: ".seq file" })
      .option("model", { type: "string", describe: "model name (when the file has several)" })
      .option("inputs", { type: "string", demandOption: true, describe: "case manifest (.json; data in the .bin beside it)" })
      .option("backend", { type: "string", default: "cpu", describe: "backend that runs the model" })
      .option("out", { type: "string", demandOption: true, describe: "result manifest to write (.json; data goes to the .bin beside it)" })
      .option("dims", { type: "string", describe: "dim sizes, e.g. K=16,V=24 (others are inferred from the tensors)" })
      .option("form", { type: "string", default: "auto", describe: "auto | sequential | scan | chunked (backends with several forms)" }) as never,
  handler: async (a) => {
    const backend = getBackend(a.backend);
    if (!backend) throw new UserError(`unknown backend '${a.backend}' (available: ${backendNames().join(", ")})`);
    if (!/\.json$/i.test(a.out)) throw new UserError(`--out must name a .json file (the data goes to the .bin beside it), got '${a.out}'`);
    const p = loadProgram([a.file]);
    if (p.diagnostics.length) process.stderr.write(formatDiagnostics(p.diagnostics, p.sources) + "\n");
    if (hasErrors(p.diagnostics)) return 1;
    const model = pickModel(p.models, a.model, a.file);
    const c = readCase(a.inputs);
    const binding = bindCase(model, c, parseDims(a.dims));
    const result = await backend.run(model, binding.run, { form: a.form });
    const tensors = resultTensors(binding, result);
    writeCase(a.out, c.manifest.case ?? model.name, tensors, { produced_by: `seqc run --backend ${a.backend}, model ${model.name} (${a.file})` });
    process.stdout.write(`${model.name}: B=${binding.batch}, T=${binding.time}, ${Object.entries(binding.dims).map(([k, v]) => `${k}=${v}`).join(", ")}; wrote ${tensors.map((t) => t.name).join(", ")} to ${a.out}\n`);
    return 0;
  },
};
