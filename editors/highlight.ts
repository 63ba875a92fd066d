/**
 * Run editors/vscode's TextMate grammar the way VS Code does (vscode-textmate + the Oniguruma
 * regex engine as WebAssembly): tokens with scopes for .seq text, and HTML with one span per
 * scoped token (the docs' highlighting). Used by the grammar's tests and docs/render.ts.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import vsctm from "vscode-textmate";
import oniguruma from "vscode-oniguruma";

export const GRAMMAR_PATH = fileURLToPath(new URL("./vscode/syntaxes/seq.tmLanguage.json", import.meta.url));

export interface ScopedToken { line: number; start: number; end: number; text: string; scopes: string[] }

let grammar: Promise<vsctm.IGrammar> | undefined;

async function load(): Promise<vsctm.IGrammar> {
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope: string) => (scope === "source.seq" ? vsctm.parseRawGrammar(readFileSync(GRAMMAR_PATH, "utf8"), GRAMMAR_PATH) : null),
  });
  const g = await registry.loadGrammar("source.seq");
  if (!g) throw new Error(`cannot load the TextMate grammar ${GRAMMAR_PATH}`);
  return g;
}

export function seqGrammar(): Promise<vsctm.IGrammar> {
  return (grammar ??= load());
}

/** Every token of `text` (lines split on \n), with its scopes, outermost first. */
export async function tokenizeSeq(text: string): Promise<ScopedToken[]> {
  const g = await seqGrammar();
  const out: ScopedToken[] = [];
  let stack = vsctm.INITIAL;
  text.split("\n").forEach((line, i) => {
    const r = g.tokenizeLine(line, stack);
    for (const t of r.tokens) out.push({ line: i, start: t.startIndex, end: Math.min(t.endIndex, line.length), text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    stack = r.ruleStack;
  });
  return out;
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** HTML of highlighted .seq text: each token in a span whose classes are its innermost scope's parts (its comment scope inside comments) ("tm-keyword tm-operator ..."). */
export async function highlightSeqHtml(text: string): Promise<string> {
  const lines: string[] = [];
  for (const t of await tokenizeSeq(text.replace(/\n$/, ""))) {
    while (lines.length <= t.line) lines.push("");
    // a comment's delimiters are coloured as the comment
    const inner = t.scopes.find((s) => s.startsWith("comment.")) ?? t.scopes[t.scopes.length - 1];
    const html = escapeHtml(t.text);
    lines[t.line] += inner === "source.seq" || !t.text.trim() ? html : `<span class="${inner.split(".").slice(0, 2).map((p) => `tm-${p}`).join(" ")}" title="${inner}">${html}</span>`;
  }
  return lines.join("\n");
}
