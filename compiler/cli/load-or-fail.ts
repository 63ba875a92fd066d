/** Load .seq files for a command; print diagnostics; throw UserError when there are errors. */
import { loadProgram, type Program } from "../frontend/load.ts";
import { formatDiagnostics, hasErrors } from "../diagnostics.ts";
import { UserError } from "./errors.ts";

export function loadOrFail(files: string[], opts: { warnings?: boolean } = {}): Program {
  const p = loadProgram(files);
  const shown = opts.warnings === false ? p.diagnostics.filter((d) => d.severity === "error") : p.diagnostics;
  if (shown.length) process.stderr.write(formatDiagnostics(shown, p.sources) + "\n");
  if (hasErrors(p.diagnostics)) throw new UserError(`${files.join(", ")}: fix the errors above first`);
  return p;
}

export function parseShape(s: string | undefined): Record<string, number> | undefined {
  if (!s) return undefined;
  const out: Record<string, number> = {};
  for (const part of s.split(",")) {
    const m = /^\s*([A-Za-z_]\w*)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m) throw new UserError(`--shape: expected NAME=INT pairs separated by commas (e.g. B=8,T=2048,H=16), got '${part}'`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}
