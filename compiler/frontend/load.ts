/** Read .seq files and their imports, parse, resolve: the whole front end in one call. */
import { readFileSync, existsSync } from "node:fs";
import { dirname, resolve as resolvePath, relative } from "node:path";
import { parseSeq, type Diagnostic, type SeqFile } from "../../grammar/index.ts";
import { resolveModels } from "./resolve.ts";
import type { Model } from "../ir/types.ts";

export interface Program {
  models: Model[];
  diagnostics: Diagnostic[];
  /** Source text of every file read, by the name used in spans (for caret snippets). */
  sources: Map<string, string>;
}

export function displayName(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}

/** Compile sources given as text (tests, the web playground): name -> text. Imports resolve among them and on disk. */
export function loadProgram(paths: string[], texts?: Map<string, string>): Program {
  const diagnostics: Diagnostic[] = [];
  const sources = new Map<string, string>();
  const parsed = new Map<string, SeqFile>();

  const read = (abs: string, name: string): SeqFile | undefined => {
    if (parsed.has(abs)) return parsed.get(abs);
    let text = texts?.get(abs) ?? texts?.get(name);
    if (text === undefined) {
      if (!existsSync(abs)) return undefined;
      text = readFileSync(abs, "utf8");
    }
    sources.set(name, text);
    const r = parseSeq(text, name);
    diagnostics.push(...r.diagnostics);
    parsed.set(abs, r.ast);
    for (const imp of r.ast.imports) {
      const target = resolvePath(dirname(abs), imp.path);
      if (!parsed.has(target)) {
        const f = read(target, displayName(target));
        if (!f) diagnostics.push({ code: "SEQ2010", severity: "error", message: `cannot find imported file '${imp.path}'`, span: imp.span });
      }
    }
    return r.ast;
  };

  const roots: SeqFile[] = [];
  for (const p of paths) {
    const abs = resolvePath(p);
    const f = read(abs, texts?.has(p) ? p : displayName(abs));
    if (!f) {
      diagnostics.push({ code: "SEQ2010", severity: "error", message: `cannot read '${p}': no such file`, span: { file: p, line: 0, col: 0, offset: 0, endOffset: 0 } });
      continue;
    }
    if (!roots.includes(f)) roots.push(f);
  }
  const hasSyntaxErrors = diagnostics.some((d) => d.severity === "error");
  const models = hasSyntaxErrors ? [] : resolveModels(roots, [...parsed.values()], diagnostics);
  return { models, diagnostics, sources };
}
