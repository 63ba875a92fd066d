/** Shared checks for the formatter tests: what "the same meaning" and "the same comments" mean. */
import { loadProgram } from "../compiler/frontend/load.ts";
import { parseSeq } from "../grammar/index.ts";
import { lex } from "../grammar/lexer.ts";
import { commentsOf } from "../compiler/fmt/source.ts";
import { formatSeq } from "../compiler/fmt/index.ts";

const noSpans = (_k: string, v: unknown) => (_k === "span" ? undefined : v);

/** The resolved IR without source positions, or null when the text has errors. */
export function irOf(text: string, file = "f.seq"): string | null {
  const p = loadProgram([file], new Map([[file, text]]));
  if (p.diagnostics.some((d) => d.severity === "error")) return null;
  return JSON.stringify(p.models, noSpans);
}

/** The AST without source positions (meaning at the syntax level, for texts that do not resolve). */
export function astOf(text: string): string {
  return JSON.stringify(parseSeq(text, "f.seq").ast, noSpans);
}

export function commentTexts(text: string): string[] {
  return commentsOf(text, lex(text, "f.seq").tokens).map((c) => c.text);
}

export function fmt(text: string): string {
  const r = formatSeq(text, "f.seq");
  if (!r.ok) throw new Error(`not formatted: ${r.diagnostics.map((d) => d.message).join("; ")}`);
  return r.text;
}
