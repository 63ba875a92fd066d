/** `seqc check <files..>`: diagnostics only. */
import type { Command } from "./command.ts";
import { loadProgram } from "../frontend/load.ts";
import { formatDiagnostics, hasErrors } from "../diagnostics.ts";

interface Args { files: string[] }

export const checkCommand: Command<Args> = {
  command: "check <files..>",
  describe: "report errors and warnings in .seq files (exit 1 on errors)",
  builder: (y) => y.positional("files", { type: "string", array: true, demandOption: true }) as never,
  handler: async ({ files }) => {
    const p = loadProgram(files);
    if (p.diagnostics.length) process.stderr.write(formatDiagnostics(p.diagnostics, p.sources) + "\n");
    const errors = p.diagnostics.filter((d) => d.severity === "error").length;
    const warnings = p.diagnostics.length - errors;
    if (hasErrors(p.diagnostics)) {
      process.stderr.write(`${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}\n`);
      return 1;
    }
    process.stdout.write(`ok: ${p.models.length} model${p.models.length === 1 ? "" : "s"} (${p.models.map((m) => m.name).join(", ")})${warnings ? `, ${warnings} warning${warnings === 1 ? "" : "s"}` : ""}\n`);
    return 0;
  },
};
