/**
 * The parse tree as a flat list of layout units: one per printed line of code (a declaration,
 * a statement, a block's opening or closing line), each with its depth and its tokens spaced
 * canonically. Comments are placed around and inside units by layout.ts.
 */
import type { CstNode, IToken } from "chevrotain";
import { ExprBuilder, printExpr, type OutTok } from "./expr.ts";
import type { Source } from "./source.ts";

export interface Unit {
  depth: number;
  /** `open` ends with `{` (its block follows), `close` is a lone `}`. */
  kind: "line" | "open" | "close";
  toks: OutTok[];
}

type Kids = Record<string, (CstNode | IToken)[] | undefined>;
const kids = (n: CstNode): Kids => n.children as Kids;
const nodesOf = (n: CstNode, k: string): CstNode[] => (kids(n)[k] ?? []) as CstNode[];
const toksOf = (n: CstNode, k: string): IToken[] => (kids(n)[k] ?? []) as IToken[];

export function buildUnits(src: Source): Unit[] {
  return new UnitBuilder(src).file();
}

class UnitBuilder {
  private readonly x: ExprBuilder;
  private readonly units: Unit[] = [];

  constructor(private readonly src: Source) {
    this.x = new ExprBuilder(src.index);
  }

  file(): Unit[] {
    const decls = ["importDecl", "fnDecl", "modelDecl"].flatMap((k) => nodesOf(this.src.cst, k).map((n) => ({ k, n })));
    decls.sort((a, b) => this.startOf(a.n) - this.startOf(b.n));
    for (const { k, n } of decls) {
      if (k === "importDecl") this.line(0, this.spaced(this.x.tokensOf(n)));
      else if (k === "fnDecl") this.fn(n);
      else this.block(0, n, [...toksOf(n, "Model"), ...toksOf(n, "name"), ...toksOf(n, "LBrace")]);
    }
    return this.units;
  }

  private startOf(n: CstNode): number {
    return this.x.tokensOf(n)[0]?.startOffset ?? 0;
  }

  private line(depth: number, toks: OutTok[], kind: Unit["kind"] = "line"): void {
    this.units.push({ depth, kind, toks });
  }

  /** `model X {` or `for n in J {`, its items one level deeper, `}`; `model X {}` when nothing is inside. */
  private block(depth: number, n: CstNode, header: IToken[]): void {
    const open = toksOf(n, "LBrace")[0];
    const close = toksOf(n, "RBrace")[0];
    const items = nodesOf(n, "item").filter((i) => !kids(i).Semicolon);
    const head = this.spaced(header);
    const commentInside = this.src.comments.some((c) => c.start > open.startOffset && c.start < close.startOffset);
    if (!items.length && !commentInside) {
      this.line(depth, [...head, this.x.tok(close, false)]);
      return;
    }
    this.line(depth, head, "open");
    for (const i of items) this.item(depth + 1, i);
    this.line(depth, [this.x.tok(close)], "close");
  }

  private item(depth: number, n: CstNode): void {
    const c = kids(n);
    const only = (k: string) => (c[k]?.[0] as CstNode | undefined);
    let s: CstNode | undefined;
    if ((s = only("dimsDecl"))) this.line(depth, this.spaced(this.x.tokensOf(s)));
    else if ((s = only("tensorDecl"))) this.tensorDecl(depth, s);
    else if ((s = only("letStmt"))) this.stmt(depth, s, toksOf(s, "Let"));
    else if ((s = only("outputStmt"))) this.stmt(depth, s, toksOf(s, "Output"));
    else if ((s = only("assignStmt"))) this.stmt(depth, s, []);
    else if ((s = only("forStmt"))) {
      const header = [...toksOf(s, "For"), ...toksOf(s, "var"), ...toksOf(s, "In"), ...this.x.tokensOf(nodesOf(s, "extent")[0]), ...toksOf(s, "LBrace")];
      this.block(depth, s, header);
    }
  }

  /** `input q[H,K], k[H,K] = 0`: tight shapes, `, ` between items, initial values as expressions. */
  private tensorDecl(depth: number, n: CstNode): void {
    const toks: OutTok[] = [this.x.tok(toksOf(n, "kind")[0])];
    const items = nodesOf(n, "tensorItem");
    const commas = toksOf(n, "Comma");
    items.forEach((it, i) => {
      if (i > 0) toks.push(this.x.tok(commas[i - 1], false));
      const init = nodesOf(it, "init")[0];
      const shape = [...toksOf(it, "name"), ...toksOf(it, "LBracket"), ...nodesOf(it, "shapeEntry").flatMap((s) => this.x.tokensOf(s)), ...toksOf(it, "Comma"), ...toksOf(it, "RBracket")];
      toks.push(...this.spaced(shape.sort((a, b) => a.startOffset - b.startOffset), true));
      if (init) toks.push(this.x.tok(toksOf(it, "Equals")[0], true), ...withFirst(printExpr(this.x.expr(init)), true));
    });
    this.line(depth, toks);
  }

  /** `let u[h,j] = expr`, `output o[h,j] = expr`, `S[h,i,j] = expr`. */
  private stmt(depth: number, n: CstNode, keyword: IToken[]): void {
    const target = nodesOf(n, "target")[0];
    const annotated = nodesOf(target, "binder").some((b) => toksOf(b, "Colon").length > 0);
    const lhs = this.spaced([...keyword, ...this.x.tokensOf(target)], false, annotated);
    const rhs = withFirst(printExpr(this.x.expr(nodesOf(n, "expr")[0])), true);
    this.line(depth, [...lhs, this.x.tok(toksOf(n, "Equals")[0], true), ...rhs]);
  }

  private fn(n: CstNode): void {
    const head = [...toksOf(n, "Fn"), ...toksOf(n, "name"), ...toksOf(n, "LParen"), ...toksOf(n, "params"), ...toksOf(n, "Comma"), ...toksOf(n, "RParen"), ...toksOf(n, "Equals")];
    const toks = this.spaced(head.sort((a, b) => a.startOffset - b.startOffset));
    this.line(0, [...toks, ...withFirst(printExpr(this.x.expr(nodesOf(n, "expr")[0])), true)]);
  }

  /**
   * Canonical spacing of a token run outside expressions: one space between words and around `=`,
   * none inside `[...]` (`S[h,i,j]`, `q[H,K]`) unless binders are annotated (`u[h: H, j: V]`),
   * `, ` elsewhere, `: ` after a binder's colon.
   */
  private spaced(ts: IToken[], firstSp = false, annotated = false): OutTok[] {
    let inBracket = false;
    return ts.map((t, i) => {
      const prev = ts[i - 1]?.image;
      const cur = t.image;
      let sp: boolean;
      if (i === 0) sp = firstSp;
      else if (cur === "," || cur === "]" || cur === "[" || cur === "(" || cur === ")" || cur === ":") sp = false;
      else if (prev === "[" || prev === "(") sp = false;
      else if (prev === ",") sp = !inBracket || annotated;
      else sp = true;
      if (cur === "[") inBracket = true;
      if (cur === "]") inBracket = false;
      return this.x.tok(t, sp);
    });
  }
}

function withFirst(toks: OutTok[], sp: boolean): OutTok[] {
  return toks.length ? [{ ...toks[0], sp }, ...toks.slice(1)] : toks;
}
