/**
 * Expressions for the formatter: built from the parse tree with their source tokens, printed
 * back with the fewest parentheses that keep the parse.
 *
 * Precedence, loosest first (grammar/parser.ts): comparison (not chained), + -, * /, then the
 * prefix forms (unary + -, `sum(i) body`), then ^ (right-associative, base a primary), then
 * primaries. `sum(i) body` takes a whole * / chain as its body, so a sum at the right end of the
 * left operand of * or / would swallow the right operand: that operand keeps its parentheses.
 */
import type { CstNode, IToken } from "chevrotain";

/** A token of the output: `src` is its index among the source tokens (null for a parenthesis the printer adds). */
export interface OutTok { src: number | null; text: string; sp: boolean }

export type FExpr = (
  | { k: "atom"; toks: OutTok[] }
  | { k: "call"; name: OutTok; open: OutTok; args: FExpr[]; commas: OutTok[]; close: OutTok }
  | { k: "bin"; op: OutTok; lhs: FExpr; rhs: FExpr }
  | { k: "un"; op: OutTok; arg: FExpr }
  | { k: "sum"; head: OutTok[]; body: FExpr }
) & { parens?: { open: OutTok; close: OutTok } };

const CMP = 0, ADD = 1, MUL = 2, PREFIX = 3, POW = 4, ATOM = 5;

function level(e: FExpr): number {
  switch (e.k) {
    case "atom": case "call": return ATOM;
    case "un": case "sum": return PREFIX;
    case "bin": {
      const op = e.op.text;
      return op === "^" ? POW : op === "*" || op === "/" ? MUL : op === "+" || op === "-" ? ADD : CMP;
    }
  }
}

type Kids = Record<string, (CstNode | IToken)[] | undefined>;
const kids = (n: CstNode): Kids => n.children as Kids;
const nodesOf = (n: CstNode, k: string): CstNode[] => (kids(n)[k] ?? []) as CstNode[];
const toksOf = (n: CstNode, k: string): IToken[] => (kids(n)[k] ?? []) as IToken[];

/** Builds FExprs (and token lists) from a complete CST. */
export class ExprBuilder {
  constructor(private readonly index: Map<IToken, number>) {}

  tok(t: IToken, sp = false): OutTok {
    const src = this.index.get(t);
    if (src === undefined) throw new Error(`fmt: token '${t.image}' is not in the token list`);
    return { src, text: t.image, sp };
  }

  /** The tokens of a CST node in source order (for simple nodes: shapes, indices, targets). */
  tokensOf(n: CstNode): IToken[] {
    const all: IToken[] = [];
    const walk = (c: CstNode) => {
      for (const arr of Object.values(kids(c))) for (const x of arr ?? []) ("image" in x ? all.push(x) : walk(x));
    };
    walk(n);
    return all.filter((t) => this.index.has(t)).sort((a, b) => a.startOffset - b.startOffset);
  }

  expr(n: CstNode): FExpr {
    const lhs = this.chain(nodesOf(n, "lhs")[0], "operands", "AddOp", (c) => this.chain(c, "operands", "MulOp", (u) => this.unary(u)));
    const op = toksOf(n, "CompareOp")[0];
    const rhs = nodesOf(n, "rhs")[0];
    if (!op || !rhs) return lhs;
    return { k: "bin", op: this.tok(op), lhs, rhs: this.chain(rhs, "operands", "AddOp", (c) => this.chain(c, "operands", "MulOp", (u) => this.unary(u))) };
  }

  private chain(n: CstNode, key: string, opKey: string, operand: (c: CstNode) => FExpr): FExpr {
    const ops = nodesOf(n, key);
    const opToks = toksOf(n, opKey);
    let acc = operand(ops[0]);
    for (let i = 1; i < ops.length; i++) acc = { k: "bin", op: this.tok(opToks[i - 1]), lhs: acc, rhs: operand(ops[i]) };
    return acc;
  }

  private multiplicative(n: CstNode): FExpr {
    return this.chain(n, "operands", "MulOp", (u) => this.unary(u));
  }

  private unary(n: CstNode): FExpr {
    const sign = toksOf(n, "sign")[0];
    if (sign) return { k: "un", op: this.tok(sign), arg: this.unary(nodesOf(n, "unary")[0]) };
    const s = nodesOf(n, "sumExpr")[0];
    if (s) {
      const head = [...toksOf(s, "Sum"), ...toksOf(s, "LParen"), ...toksOf(s, "vars"), ...toksOf(s, "Comma"), ...toksOf(s, "RParen")]
        .sort((a, b) => a.startOffset - b.startOffset)
        .map((t) => this.tok(t));
      head.forEach((t, i) => (t.sp = i > 0 && head[i - 1].text === ",")); // sum(i, j)
      return { k: "sum", head, body: this.multiplicative(nodesOf(s, "body")[0]) };
    }
    const p = nodesOf(n, "power")[0];
    const base = this.primary(nodesOf(p, "base")[0]);
    const caret = toksOf(p, "Caret")[0];
    if (!caret) return base;
    return { k: "bin", op: this.tok(caret), lhs: base, rhs: this.unary(nodesOf(p, "exponent")[0]) };
  }

  private primary(n: CstNode): FExpr {
    const num = toksOf(n, "NumberLiteral")[0];
    if (num) return { k: "atom", toks: [this.tok(num)] };
    const r = nodesOf(n, "reference")[0];
    if (r) return this.reference(r);
    const inner = this.expr(nodesOf(n, "expr")[0]);
    // ((x)): keep the outermost pair; printing decides whether it is needed at all
    inner.parens = { open: this.tok(toksOf(n, "LParen")[0]), close: this.tok(toksOf(n, "RParen")[0]) };
    return inner;
  }

  private reference(n: CstNode): FExpr {
    if (toksOf(n, "LParen").length) {
      return {
        k: "call",
        name: this.tok(toksOf(n, "name")[0]),
        open: this.tok(toksOf(n, "LParen")[0]),
        args: nodesOf(n, "args").map((a) => this.expr(a)),
        commas: toksOf(n, "Comma").map((t) => this.tok(t)),
        close: this.tok(toksOf(n, "RParen")[0]),
      };
    }
    // a name, or an access with a tight index list: S[h,i,j]
    return { k: "atom", toks: this.tokensOf(n).map((t) => this.tok(t)) };
  }
}

interface Printed { toks: OutTok[]; open: boolean }

const copy = (t: OutTok, sp: boolean): OutTok => ({ ...t, sp });

/** Print an expression at statement level (right of `=`, an argument, inside parentheses). */
export function printExpr(e: FExpr): OutTok[] {
  return print(e, CMP, false).toks;
}

/**
 * `closeRight`: what follows in the same * / chain must not be swallowed by a sum at the right end.
 * Returns whether the printed text ends in such an open sum.
 */
function print(e: FExpr, min: number, closeRight: boolean): Printed {
  if (level(e) < min) return paren(e, bare(e, false));
  if (!closeRight) return bare(e, false);
  const b = bare(e, false);
  if (!b.open) return b;
  if (e.parens) return paren(e, b);
  return bare(e, true); // close it further down the right spine, where the source had its parentheses
}

function paren(e: FExpr, inner: Printed): Printed {
  const open = e.parens ? copy(e.parens.open, false) : { src: null, text: "(", sp: false };
  const close = e.parens ? copy(e.parens.close, false) : { src: null, text: ")", sp: false };
  return { toks: [open, ...first(inner.toks, false), close], open: false };
}

function first(toks: OutTok[], sp: boolean): OutTok[] {
  return toks.length ? [copy(toks[0], sp), ...toks.slice(1)] : toks;
}

function bare(e: FExpr, closeRight: boolean): Printed {
  switch (e.k) {
    case "atom":
      return { toks: e.toks.map((t) => copy(t, false)), open: false }; // tight: S[h,i,j]
    case "call": {
      const toks: OutTok[] = [copy(e.name, false), copy(e.open, false)];
      e.args.forEach((a, i) => {
        if (i > 0) toks.push(copy(e.commas[i - 1], false));
        toks.push(...first(printExpr(a), i > 0));
      });
      toks.push(copy(e.close, false));
      return { toks, open: false };
    }
    case "un": {
      const a = print(e.arg, PREFIX, closeRight);
      return { toks: [copy(e.op, false), ...first(a.toks, false)], open: a.open };
    }
    case "sum": {
      if (closeRight) return paren(e, bare(e, false)); // only for a tree no source text gives
      const body = print(e.body, MUL, false);
      return { toks: [...e.head.map((t) => ({ ...t })), ...first(body.toks, true)], open: true };
    }
    case "bin": {
      const op = e.op.text;
      const lv = level(e);
      const [lmin, rmin, lclose] = lv === POW ? [ATOM, PREFIX, false] : lv === MUL ? [MUL, PREFIX, true] : lv === ADD ? [ADD, MUL, false] : [ADD, ADD, false];
      const l = print(e.lhs, lmin, lclose);
      const r = print(e.rhs, rmin, closeRight);
      const tight = op === "^";
      return { toks: [...l.toks, copy(e.op, !tight), ...first(r.toks, !tight)], open: r.open };
    }
  }
}
