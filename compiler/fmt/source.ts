/**
 * What the formatter reads from a .seq file: its parse tree, its tokens (semicolons left out:
 * they separate nothing the layout needs) and its comments, each with its offsets.
 * A file with syntax errors gives its diagnostics instead: it is never formatted.
 */
import type { CstNode, IToken } from "chevrotain";
import { parseSeq, type Diagnostic } from "../../grammar/index.ts";
import { lex } from "../../grammar/lexer.ts";
import { seqParser } from "../../grammar/parser.ts";

export interface Comment {
  text: string;
  start: number;
  /** Offset just past the comment. */
  end: number;
  line: boolean;
}

export interface Source {
  text: string;
  cst: CstNode;
  tokens: IToken[];
  /** Index of each token in `tokens`. */
  index: Map<IToken, number>;
  comments: Comment[];
}

export type Scanned = { ok: true; source: Source } | { ok: false; diagnostics: Diagnostic[] };

export function scanSource(text: string, file: string): Scanned {
  const syntax = parseSeq(text, file).diagnostics.filter((d) => d.severity === "error");
  if (syntax.length) return { ok: false, diagnostics: syntax };
  const lexed = lex(text, file);
  seqParser.input = lexed.tokens;
  const cst = seqParser.file();
  if (seqParser.errors.length) throw new Error(`fmt: parser disagrees with parseSeq on ${file}`);
  const tokens = lexed.tokens.filter((t) => t.tokenType.name !== "Semicolon");
  const index = new Map(tokens.map((t, i) => [t, i]));
  return { ok: true, source: { text, cst, tokens, index, comments: commentsOf(text, lexed.tokens) } };
}

/** Comments live in the gaps between tokens: the lexer skipped them, and only whitespace and comments are there. */
export function commentsOf(text: string, tokens: IToken[]): Comment[] {
  const out: Comment[] = [];
  let from = 0;
  const scan = (to: number) => {
    const gap = text.slice(from, to);
    for (const m of gap.matchAll(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g)) {
      out.push({ text: m[0].replace(/\s+$/, ""), start: from + m.index, end: from + m.index + m[0].length, line: m[0].startsWith("//") });
    }
  };
  for (const t of tokens) {
    scan(t.startOffset);
    from = t.endOffset! + 1;
  }
  scan(text.length);
  return out;
}
