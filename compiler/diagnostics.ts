/** Rendering diagnostics for people: `file:line:col: error SEQ1234: message`, then a caret snippet. */
import type { Diagnostic } from "../grammar/index.ts";

export function formatDiagnostic(d: Diagnostic, sources: Map<string, string>): string {
  const { file, line, col } = d.span;
  const head = line > 0 ? `${file}:${line}:${col}: ${d.severity} ${d.code}: ${d.message}` : `${file}: ${d.severity} ${d.code}: ${d.message}`;
  const text = sources.get(file);
  const lines = [head];
  if (text !== undefined && line > 0) {
    const src = text.split("\n")[line - 1] ?? "";
    const width = Math.max(1, Math.min(d.span.endOffset - d.span.offset, src.length - col + 1));
    const gutter = String(line).length;
    lines.push(`${" ".repeat(gutter)} |`);
    lines.push(`${line} | ${src.replace(/\t/g, " ")}`);
    lines.push(`${" ".repeat(gutter)} | ${" ".repeat(Math.max(0, col - 1))}${"^".repeat(width)}`);
  }
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join("\n");
}

export function formatDiagnostics(ds: Diagnostic[], sources: Map<string, string>): string {
  const sorted = [...ds].sort((a, b) => (a.span.file === b.span.file ? a.span.offset - b.span.offset : a.span.file < b.span.file ? -1 : 1));
  return sorted.map((d) => formatDiagnostic(d, sources)).join("\n\n");
}

export const hasErrors = (ds: Diagnostic[]): boolean => ds.some((d) => d.severity === "error");
