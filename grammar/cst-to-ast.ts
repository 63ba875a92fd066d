/** CST -> AST. Tolerates partial CSTs from error recovery (missing children are skipped). */
import type { CstNode, IToken } from "chevrotain";
import type * as A from "./ast.ts";
import { spanOf, joinSpans, type Span } from "./span.ts";

type Children = Record<string, (CstNode | IToken)[] | undefined>;
const kids = (n: CstNode): Children => n.children as Children;
const nodes = (n: CstNode, k: string): CstNode[] => (kids(n)[k] ?? []) as CstNode[];
const toks = (n: CstNode, k: string): IToken[] => (kids(n)[k] ?? []) as IToken[];
const node = (n: CstNode, k: string): CstNode | undefined => nodes(n, k)[0];
const tok = (n: CstNode, k: string): IToken | undefined => toks(n, k)[0];

export class AstBuilder {
  constructor(private readonly fileName: string) {}

  private span(t: IToken): Span {
    return spanOf(this.fileName, t);
  }

  /** Span covering every token under a CST node. */
  private nodeSpan(n: CstNode): Span {
    let first: IToken | undefined;
    let last: IToken | undefined;
    const walk = (c: CstNode) => {
      for (const arr of Object.values(kids(c))) {
        for (const x of arr ?? []) {
          if ("image" in x) {
            if (isNaN(x.startOffset)) continue;
            if (!first || x.startOffset < first.startOffset) first = x;
            if (!last || x.startOffset > last.startOffset) last = x;
          } else walk(x);
        }
      }
    };
    walk(n);
    if (!first || !last) return { file: this.fileName, line: 1, col: 1, offset: 0, endOffset: 0 };
    return joinSpans(this.span(first), this.span(last));
  }

  private ident(t: IToken): A.Ident {
    return { name: t.image, span: this.span(t) };
  }

  file(n: CstNode): A.SeqFile {
    return {
      file: this.fileName,
      imports: nodes(n, "importDecl").flatMap((c) => {
        const s = tok(c, "StringLiteral");
        return s ? [{ path: s.image.slice(1, -1), span: this.span(s) }] : [];
      }),
      fns: nodes(n, "fnDecl").flatMap((c) => this.fnDecl(c)),
      models: nodes(n, "modelDecl").flatMap((c) => this.modelDecl(c)),
    };
  }

  private fnDecl(n: CstNode): A.FnDecl[] {
    const name = tok(n, "name");
    const body = node(n, "expr");
    if (!name || !body) return [];
    return [{ name: this.ident(name), params: toks(n, "params").map((t) => this.ident(t)), body: this.expr(body), span: this.nodeSpan(n) }];
  }

  private modelDecl(n: CstNode): A.ModelDecl[] {
    const name = tok(n, "name");
    if (!name) return [];
    return [{ name: this.ident(name), items: nodes(n, "item").flatMap((c) => this.item(c)), span: this.nodeSpan(n) }];
  }

  private item(n: CstNode): A.Item[] {
    const c = kids(n);
    if (c.dimsDecl) return [this.dimsDecl(c.dimsDecl[0] as CstNode)];
    if (c.tensorDecl) return this.tensorDecl(c.tensorDecl[0] as CstNode);
    if (c.letStmt) return this.stmt(c.letStmt[0] as CstNode, "let");
    if (c.outputStmt) return this.stmt(c.outputStmt[0] as CstNode, "output");
    if (c.assignStmt) return this.stmt(c.assignStmt[0] as CstNode, "assign");
    if (c.forStmt) return this.forStmt(c.forStmt[0] as CstNode);
    return [];
  }

  private dimsDecl(n: CstNode): A.DimsDecl {
    return {
      kind: "dims",
      dims: nodes(n, "dimItem").flatMap((d) => {
        const name = tok(d, "name");
        const v = tok(d, "value");
        const dd = tok(d, "defaultDim");
        return name ? [{ name: this.ident(name), value: v ? Number(v.image) : undefined, defaultDim: dd ? this.ident(dd) : undefined }] : [];
      }),
      span: this.nodeSpan(n),
    };
  }

  private tensorDecl(n: CstNode): A.TensorDecl[] {
    const kind = tok(n, "kind")?.image as A.TensorDecl["kind"] | undefined;
    if (!kind) return [];
    return nodes(n, "tensorItem").flatMap((it) => {
      const name = tok(it, "name");
      if (!name) return [];
      const init = node(it, "init");
      return [{ kind, name: this.ident(name), shape: nodes(it, "shapeEntry").flatMap((s) => this.shapeEntry(s)), init: init ? this.expr(init) : undefined, span: this.nodeSpan(it) }];
    });
  }

  private shapeEntry(n: CstNode): A.ShapeEntry[] {
    const id = tok(n, "Identifier");
    if (id) return [{ kind: "dim", name: id.image, span: this.span(id) }];
    const num = tok(n, "NumberLiteral");
    if (num) return [{ kind: "lit", value: Number(num.image), span: this.span(num) }];
    return [];
  }

  private stmt(n: CstNode, kind: "let" | "output" | "assign"): A.Item[] {
    const target = node(n, "target");
    const e = node(n, "expr");
    const name = target && tok(target, "name");
    if (!target || !name || !e) return [];
    const binders: A.Binder[] = nodes(target, "binder").flatMap((b) => {
      const bn = tok(b, "name");
      if (!bn) return [];
      const ext = node(b, "extent");
      return [{ name: this.ident(bn), extent: ext ? this.shapeEntry(ext)[0] : undefined }];
    });
    return [{ kind, name: this.ident(name), binders, expr: this.expr(e), span: this.nodeSpan(n) } as A.Item];
  }

  private forStmt(n: CstNode): A.Item[] {
    const v = tok(n, "var");
    const ext = node(n, "extent");
    const extent = ext ? this.shapeEntry(ext)[0] : undefined;
    if (!v || !extent) return [];
    return [{ kind: "for", var: this.ident(v), extent, body: nodes(n, "item").flatMap((c) => this.item(c)), span: this.nodeSpan(n) }];
  }

  // ---- expressions (each tolerates a missing node left by error recovery) ----
  private missing(): A.Expr {
    return { kind: "num", value: NaN, span: { file: this.fileName, line: 1, col: 1, offset: 0, endOffset: 0 } };
  }

  expr(n: CstNode | undefined): A.Expr {
    if (!n) return this.missing();
    const lhs = this.additive(node(n, "lhs"));
    const op = tok(n, "CompareOp");
    const rhsN = node(n, "rhs");
    if (op && rhsN) return { kind: "binary", op: op.image as A.BinOp, lhs, rhs: this.additive(rhsN), span: this.nodeSpan(n) };
    return lhs;
  }

  private fold(n: CstNode | undefined, operand: (c: CstNode | undefined) => A.Expr, opKey: string): A.Expr {
    if (!n) return this.missing();
    const ops = nodes(n, "operands");
    const opToks = toks(n, opKey);
    if (!ops.length) return this.missing();
    let acc = operand(ops[0]);
    for (let i = 1; i < ops.length; i++) {
      const rhs = operand(ops[i]);
      acc = { kind: "binary", op: (opToks[i - 1]?.image ?? "+") as A.BinOp, lhs: acc, rhs, span: joinSpans(acc.span, rhs.span) };
    }
    return acc;
  }

  private additive(n: CstNode | undefined): A.Expr {
    return this.fold(n, (c) => this.multiplicative(c), "AddOp");
  }

  private multiplicative(n: CstNode | undefined): A.Expr {
    return this.fold(n, (c) => this.unary(c), "MulOp");
  }

  private unary(n: CstNode | undefined): A.Expr {
    if (!n) return this.missing();
    const sign = tok(n, "sign");
    if (sign) {
      const arg = this.unary(node(n, "unary"));
      if (sign.image === "+") return arg;
      return { kind: "unary", op: "-", arg, span: joinSpans(this.span(sign), arg.span) };
    }
    const s = node(n, "sumExpr");
    if (s) {
      return { kind: "sum", vars: toks(s, "vars").map((t) => this.ident(t)), body: this.multiplicative(node(s, "body")), span: this.nodeSpan(s) };
    }
    return this.power(node(n, "power"));
  }

  private power(n: CstNode | undefined): A.Expr {
    if (!n) return this.missing();
    const base = this.primary(node(n, "base"));
    const ex = node(n, "exponent");
    if (!ex) return base;
    const exponent = this.unary(ex);
    return { kind: "binary", op: "^", lhs: base, rhs: exponent, span: joinSpans(base.span, exponent.span) };
  }

  private primary(n: CstNode | undefined): A.Expr {
    if (!n) return this.missing();
    const num = tok(n, "NumberLiteral");
    if (num) return { kind: "num", value: Number(num.image), span: this.span(num) };
    const r = node(n, "reference");
    if (r) return this.reference(r);
    return this.expr(node(n, "expr"));
  }

  private reference(n: CstNode | undefined): A.Expr {
    if (!n) return this.missing();
    const name = tok(n, "name");
    if (!name) return this.missing();
    const span = this.nodeSpan(n);
    if (tok(n, "LBracket")) {
      const indices: A.IndexExpr[] = nodes(n, "indexExpr").flatMap((ix): A.IndexExpr[] => {
        const id = tok(ix, "Identifier");
        if (id) return [{ kind: "var" as const, name: id.image, span: this.span(id) }];
        const num = tok(ix, "NumberLiteral");
        return num ? [{ kind: "lit" as const, value: Number(num.image), span: this.span(num) }] : [];
      });
      return { kind: "access", name: name.image, indices, span };
    }
    if (tok(n, "LParen")) return { kind: "call", fn: name.image, args: nodes(n, "args").map((a) => this.expr(a)), span };
    return { kind: "ref", name: name.image, span: this.span(name) };
  }
}
