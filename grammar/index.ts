/** Front door of the grammar: parse .seq text into an AST plus syntax diagnostics. */
import { lex } from "./lexer.ts";
import { seqParser } from "./parser.ts";
import { AstBuilder } from "./cst-to-ast.ts";
import { spanOf, type Diagnostic } from "./span.ts";
import type { SeqFile } from "./ast.ts";

export * from "./span.ts";
export type * from "./ast.ts";

export function parseSeq(text: string, file: string): { ast: SeqFile; diagnostics: Diagnostic[] } {
  const lexed = lex(text, file);
  seqParser.input = lexed.tokens;
  const cst = seqParser.file();
  const diagnostics: Diagnostic[] = [...lexed.diagnostics];
  for (const e of seqParser.errors) {
    const t = e.token;
    const atEof = t.tokenType?.name === "EOF" || isNaN(t.startOffset);
    const span = atEof
      ? spanOf(file, { startLine: lineCount(text), startColumn: lastLineLength(text) + 1, startOffset: text.length, endOffset: text.length - 1 })
      : spanOf(file, t);
    diagnostics.push({ code: "SEQ1002", severity: "error", message: syntaxMessage(e.message, atEof ? "end of file" : `'${t.image}'`), span });
  }
  const ast = new AstBuilder(file).file(cst);
  return { ast, diagnostics };
}

function syntaxMessage(raw: string, found: string): string {
  // chevrotain messages are long; keep the first sentence and say what was found.
  const m = /Expecting:? (?:token of type )?(?:--> )?(.*?)(?: <--)? but found/s.exec(raw);
  if (m) return `syntax error: expected ${prettyTokens(m[1])}, found ${found}`;
  if (/Expecting: one of these possible Token sequences/.test(raw)) return `syntax error: unexpected ${found}`;
  return `syntax error: ${raw.split("\n")[0]}`;
}

function lineCount(text: string): number {
  return text.split("\n").length;
}
function lastLineLength(text: string): number {
  const lines = text.split("\n");
  return lines[lines.length - 1].length;
}

const TOKEN_TEXT: Record<string, string> = {
  LBrace: "'{'", RBrace: "'}'", LBracket: "'['", RBracket: "']'", LParen: "'('", RParen: "')'", Comma: "','",
  Semicolon: "';'", Colon: "':'", Equals: "'='", Caret: "'^'", Identifier: "a name", Name: "a name",
  NumberLiteral: "a number", StringLiteral: "a string", AddOp: "'+' or '-'", MulOp: "'*' or '/'",
};
function prettyTokens(s: string): string {
  return s.replace(/\s+/g, " ").trim().replace(/\b[A-Z][A-Za-z]+\b/g, (w) => TOKEN_TEXT[w] ?? w.toLowerCase());
}
