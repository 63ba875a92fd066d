/** The .seq lexer: text -> tokens, with lexing errors as diagnostics. */
import { Lexer, type IToken } from "chevrotain";
import { allTokens } from "./tokens.ts";
import type { Diagnostic } from "./span.ts";

export const seqLexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });

export function lex(text: string, file: string): { tokens: IToken[]; diagnostics: Diagnostic[] } {
  const r = seqLexer.tokenize(text);
  const diagnostics: Diagnostic[] = r.errors.map((e) => ({
    code: "SEQ1001",
    severity: "error",
    message: `unexpected character '${text.substr(e.offset, e.length)}'`,
    span: { file, line: e.line ?? 1, col: e.column ?? 1, offset: e.offset, endOffset: e.offset + e.length },
  }));
  return { tokens: r.tokens, diagnostics };
}
