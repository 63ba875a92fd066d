/** Source positions and diagnostics shared by every stage. grammar/ imports nothing else of seqc. */

export interface Span {
  file: string;
  /** 1-based line and column of the first character. */
  line: number;
  col: number;
  /** 0-based offsets into the source text, end exclusive. */
  offset: number;
  endOffset: number;
}

export type Severity = "error" | "warning";

export interface Diagnostic {
  /** Stable code, e.g. SEQ1001. Never reuse a code for another meaning. */
  code: string;
  severity: Severity;
  message: string;
  span: Span;
  /** Optional hint printed under the caret snippet. */
  hint?: string;
}

export function spanOf(file: string, tok: { startLine?: number; startColumn?: number; startOffset: number; endOffset?: number }): Span {
  return {
    file,
    line: tok.startLine ?? 1,
    col: tok.startColumn ?? 1,
    offset: tok.startOffset,
    endOffset: (tok.endOffset ?? tok.startOffset) + 1,
  };
}

export function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, line: a.line, col: a.col, offset: a.offset, endOffset: Math.max(a.endOffset, b.endOffset) };
}
