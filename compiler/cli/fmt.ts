/**
 * `seqc fmt <files..> [--check | --stdout]`: canonical layout of .seq files (compiler/fmt/).
 * Rewrites the files in place; --check lists the files that would change (exit 1 if any);
 * --stdout prints the formatted text. A file with syntax errors is never touched (exit 1).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Command } from "./command.ts";
import { formatSeq } from "../fmt/index.ts";
import { formatDiagnostics } from "../diagnostics.ts";
import { UserError } from "./errors.ts";

interface Args { files: string[]; check?: boolean; stdout?: boolean }

export const fmtCommand: Command<Args> = {
  command: "fmt <files..>",
  describe: "format .seq files in place (--check: list the files that would change; --stdout: print)",
  builder: (y) =>
    y
      .positional("files", { type: "string", array: true, demandOption: true })
      .option("check", { type: "boolean", describe: "change nothing; list the files that are not formatted and exit 1 if any" })
      .option("stdout", { type: "boolean", describe: "print the formatted text instead of rewriting the files" })
      .conflicts("check", "stdout") as never,
  handler: async ({ files, check, stdout }) => {
    for (const f of files) {
      if (!existsSync(f)) throw new UserError(`cannot read '${f}': no such file`);
      if (statSync(f).isDirectory()) throw new UserError(`'${f}' is a directory; give .seq files (e.g. ${f}/*.seq)`);
    }
    let failed = 0;
    const changed: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      const r = formatSeq(text, f);
      if (!r.ok) {
        process.stderr.write(formatDiagnostics(r.diagnostics, new Map([[f, text]])) + "\n");
        process.stderr.write(`seqc: ${f}: not formatted: fix the syntax errors above first\n`);
        failed++;
        continue;
      }
      if (stdout) process.stdout.write(r.text);
      else if (r.text !== text) {
        changed.push(f);
        if (check) process.stdout.write(`${f}\n`);
        else writeFileSync(f, r.text);
      }
    }
    const of = `${files.length} file${files.length === 1 ? "" : "s"}`;
    const refused = failed ? `; ${failed} refused (syntax errors)` : "";
    if (check) {
      if (changed.length) process.stderr.write(`${changed.length} of ${of} would be reformatted${refused}\n`);
      else if (!failed) process.stdout.write(`ok: ${of} already formatted\n`);
    } else if (!stdout) process.stdout.write(`formatted ${changed.length} of ${of}${refused}\n`);
    return failed || (check && changed.length) ? 1 : 0;
  },
};
