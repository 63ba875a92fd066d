/**
 * `seqc compile <files..> --out <dir> [--target ir,...]`: per model, writes what each target emits.
 * Targets are registered in compiler/targets.ts; `ir` writes the analysis and the IR.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "./command.ts";
import { loadOrFail } from "./load-or-fail.ts";
import { TARGETS } from "../targets.ts";
import { UserError } from "./errors.ts";
import { parseDims } from "../io/manifest.ts";

interface Args { files: string[]; out: string; target: string; form?: string; dims?: string }

export const compileCommand: Command<Args> = {
  command: "compile <files..>",
  describe: "compile .seq models into target code (see --target)",
  builder: (y) =>
    y
      .positional("files", { type: "string", array: true, demandOption: true })
      .option("out", { type: "string", demandOption: true, describe: "output directory" })
      .option("target", { type: "string", default: "ir", describe: `comma-separated targets: ${Object.keys(TARGETS).join(", ")}` })
      .option("form", { type: "string", default: "auto", describe: "auto | sequential | scan | chunked" })
      .option("dims", { type: "string", describe: "NAME=SIZE,... for targets that fix sizes at compile time (torch: loops its backward unrolls)" }) as never,
  handler: async ({ files, out, target, form, dims }) => {
    const givenDims = parseDims(dims);
    const targets = target.split(",").map((t) => t.trim()).filter(Boolean);
    for (const t of targets) if (!TARGETS[t]) throw new UserError(`unknown target '${t}' (available: ${Object.keys(TARGETS).join(", ")})`);
    const p = loadOrFail(files, { warnings: false });
    mkdirSync(out, { recursive: true });
    const written: string[] = [];
    for (const m of p.models) {
      for (const t of targets) {
        for (const f of await TARGETS[t].emit(m, { form: form ?? "auto", dims: givenDims })) {
          const path = join(out, f.path);
          writeFileSync(path, f.contents);
          written.push(path);
        }
      }
    }
    process.stdout.write(written.map((w) => `wrote ${w}`).join("\n") + "\n");
    return 0;
  },
};
