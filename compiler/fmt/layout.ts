/**
 * Units + comments -> text. Comments keep their order and their place relative to the printed
 * tokens:
 *  - on the line after a unit's last token: trailing, kept at their column when the code leaves
 *    at least two spaces (so aligned columns survive), else moved right as a run with the aligned
 *    comments of the lines next to them; two spaces after the code when the unit did not begin
 *    its source line (its column meant nothing);
 *  - on lines of their own before a unit: at the unit's indent (inside a block before its `}`);
 *  - between two tokens of a unit: in place; the unit continues on a line indented 4 more when a
 *    line comment (or a line break next to a comment) ends the line.
 * Blank lines between units and comments are kept, at most one, none at the start of a block
 * or before `}`.
 */
import type { Comment, Source } from "./source.ts";
import type { Unit } from "./units.ts";

interface Line { code: string; trailing?: { text: string; col: number } }

export function layout(src: Source, units: Unit[]): string {
  return new Layout(src).run(units);
}

class Layout {
  private readonly lines: Line[] = [];
  private cur: string | null = null;
  /** The current line holds only its indentation. */
  private fresh = false;
  /** A block comment ended on the current line: the next token needs a space. */
  private spaceNext = false;
  private ci = 0;
  /** Source offset just past the last printed token or comment. */
  private lastEnd = 0;
  /** Something has been printed since the start of the file or the innermost open block. */
  private inBlock = false;

  constructor(private readonly src: Source) {}

  run(units: Unit[]): string {
    const { tokens, comments } = this.src;
    units.forEach((u, ui) => {
      const indent = "  ".repeat(u.depth);
      const printed = u.toks.filter((t) => t.src !== null);
      const firstStart = tokens[printed[0].src!].startOffset;
      while (this.ci < comments.length && comments[this.ci].start < firstStart) {
        this.comment(u.kind === "close" ? indent + "  " : indent, true, firstStart);
      }
      const cont = indent + "    ";
      u.toks.forEach((t, i) => {
        if (t.src !== null) {
          const start = tokens[t.src].startOffset;
          while (this.ci < comments.length && comments[this.ci].start < start) this.comment(cont, false, start);
          if (i === 0 && this.cur === null) {
            this.start(indent, this.newlines(this.lastEnd, start) >= 2 && this.inBlock && u.kind !== "close");
          }
          this.lastEnd = tokens[t.src].endOffset! + 1;
        }
        if (this.cur === null) this.start(cont, false);
        else if (!this.fresh && (t.sp || this.spaceNext)) this.cur += " ";
        this.cur += t.text;
        this.fresh = false;
        this.spaceNext = false;
      });
      const next = units[ui + 1];
      const nextStart = next ? tokens[next.toks.find((t) => t.src !== null)!.src!].startOffset : Infinity;
      this.end(this.trailing(nextStart, firstStart, indent.length));
      this.inBlock = u.kind !== "open";
    });
    while (this.ci < comments.length) this.comment("", true, this.src.text.length);
    this.end();
    return render(this.lines);
  }

  private newlines(from: number, to: number): number {
    let n = 0;
    for (let i = from; i < to; i++) if (this.src.text.charCodeAt(i) === 10) n++;
    return n;
  }

  private start(indent: string, blank: boolean): void {
    this.end();
    if (blank && this.lines.length && this.lines[this.lines.length - 1].code !== "") this.lines.push({ code: "" });
    this.cur = indent;
    this.fresh = true;
  }

  private end(trailing?: Line["trailing"]): void {
    if (this.cur === null) return;
    this.lines.push({ code: this.cur, trailing });
    this.cur = null;
  }

  /** Print comments[ci]; `leading`: between units (blank lines kept), else inside one. */
  private comment(breakIndent: string, leading: boolean, nextTokenStart: number): void {
    const c = this.src.comments[this.ci++];
    const before = this.newlines(this.lastEnd, c.start);
    if (this.cur === null || before > 0) this.start(breakIndent, leading && before >= 2 && this.inBlock);
    else if (!this.fresh) this.cur += " ";
    this.cur += c.text;
    this.fresh = false;
    this.lastEnd = c.end;
    this.inBlock = this.inBlock || leading;
    const nextStart = Math.min(nextTokenStart, this.src.comments[this.ci]?.start ?? Infinity);
    if (c.line || this.newlines(c.end, nextStart) > 0) this.end();
    else this.spaceNext = true;
  }

  /**
   * Comments on the same line after a unit's last printed token. Their column is kept (relative
   * to the unit's indent) when the unit began its source line; otherwise (lines joined or split)
   * it had no meaning: -1, two spaces after the code.
   */
  private trailing(nextUnitStart: number, unitStart: number, indent: number): Line["trailing"] {
    const { comments, text } = this.src;
    const parts: Comment[] = [];
    while (this.ci < comments.length && comments[this.ci].start < nextUnitStart && this.newlines(this.lastEnd, comments[this.ci].start) === 0) {
      const c = comments[this.ci++];
      parts.push(c);
      this.lastEnd = c.end;
    }
    if (!parts.length) return undefined;
    const lineStart = text.lastIndexOf("\n", parts[0].start - 1) + 1;
    const ownLine = unitStart >= lineStart && !text.slice(lineStart, unitStart).trim();
    return { text: parts.map((c) => c.text).join(" "), col: ownLine ? parts[0].start - unitStart + indent : -1 };
  }
}

const lastLineLength = (s: string): number => s.length - (s.lastIndexOf("\n") + 1);

/** Trailing comments: a run of adjacent lines whose comments shared a column keeps sharing one. */
function render(lines: Line[]): string {
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const t = lines[i].trailing;
    if (!t) {
      out.push(lines[i++].code);
      continue;
    }
    let j = i;
    while (j < lines.length && lines[j].trailing?.col === t.col) j++;
    const width = Math.max(...lines.slice(i, j).map((l) => lastLineLength(l.code)));
    const col = Math.max(t.col, width + 2);
    for (; i < j; i++) out.push(lines[i].code + " ".repeat(col - lastLineLength(lines[i].code)) + lines[i].trailing!.text);
  }
  return out.length ? out.join("\n") + "\n" : "";
}
