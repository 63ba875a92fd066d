/** The .seq parser (chevrotain, CST output, error recovery on). Grammar in docs/language.md. */
import { CstParser, type CstNode, type IToken } from "chevrotain";
import * as T from "./tokens.ts";

export class SeqParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  file = this.RULE("file", () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.fnDecl) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
      ]);
    });
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLiteral);
  });

  fnDecl = this.RULE("fnDecl", () => {
    this.CONSUME(T.Fn);
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.CONSUME2(T.Identifier, { LABEL: "params" }) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.item));
    this.CONSUME(T.RBrace);
  });

  item = this.RULE("item", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.dimsDecl) },
      { ALT: () => this.SUBRULE(this.tensorDecl) },
      { ALT: () => this.SUBRULE(this.letStmt) },
      { ALT: () => this.SUBRULE(this.outputStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
      { ALT: () => this.CONSUME(T.Semicolon) },
    ]);
  });

  dimsDecl = this.RULE("dimsDecl", () => {
    this.CONSUME(T.Dims);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.dimItem) });
  });

  dimItem = this.RULE("dimItem", () => {
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.OR([
        { ALT: () => this.CONSUME(T.NumberLiteral, { LABEL: "value" }) },
        { ALT: () => this.CONSUME2(T.Identifier, { LABEL: "defaultDim" }) },
      ]);
    });
  });

  tensorDecl = this.RULE("tensorDecl", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Input, { LABEL: "kind" }) },
      { ALT: () => this.CONSUME(T.Param, { LABEL: "kind" }) },
      { ALT: () => this.CONSUME(T.State, { LABEL: "kind" }) },
    ]);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.tensorItem) });
  });

  tensorItem = this.RULE("tensorItem", () => {
    this.CONSUME(T.Name, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.shapeEntry) });
      this.CONSUME(T.RBracket);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr, { LABEL: "init" });
    });
  });

  shapeEntry = this.RULE("shapeEntry", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.NumberLiteral) },
    ]);
  });

  letStmt = this.RULE("letStmt", () => {
    this.CONSUME(T.Let);
    this.SUBRULE(this.target);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  outputStmt = this.RULE("outputStmt", () => {
    this.CONSUME(T.Output);
    this.SUBRULE(this.target);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  assignStmt = this.RULE("assignStmt", () => {
    this.SUBRULE(this.target);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  target = this.RULE("target", () => {
    this.CONSUME(T.Name, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.binder) });
      this.CONSUME(T.RBracket);
    });
  });

  binder = this.RULE("binder", () => {
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.shapeEntry, { LABEL: "extent" });
    });
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier, { LABEL: "var" });
    this.CONSUME(T.In);
    this.SUBRULE(this.shapeEntry, { LABEL: "extent" });
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.item));
    this.CONSUME(T.RBrace);
  });

  // ---- expressions, lowest precedence first ----
  expr = this.RULE("expr", () => {
    this.SUBRULE(this.additive, { LABEL: "lhs" });
    this.OPTION(() => {
      this.CONSUME(T.CompareOp);
      this.SUBRULE2(this.additive, { LABEL: "rhs" });
    });
  });

  additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(T.AddOp);
      this.SUBRULE2(this.multiplicative, { LABEL: "operands" });
    });
  });

  multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(T.MulOp);
      this.SUBRULE2(this.unary, { LABEL: "operands" });
    });
  });

  /** `sum(i, j) body` binds looser than * and /: sum(i) a * b sums the product. */
  unary = this.RULE("unary", () => {
    this.OR([
      { ALT: () => { this.CONSUME(T.AddOp, { LABEL: "sign" }); this.SUBRULE(this.unary); } },
      { ALT: () => this.SUBRULE(this.sumExpr) },
      { ALT: () => this.SUBRULE(this.power) },
    ]);
  });

  sumExpr = this.RULE("sumExpr", () => {
    this.CONSUME(T.Sum);
    this.CONSUME(T.LParen);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier, { LABEL: "vars" }) });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.multiplicative, { LABEL: "body" });
  });

  power = this.RULE("power", () => {
    this.SUBRULE(this.primary, { LABEL: "base" });
    this.OPTION(() => {
      this.CONSUME(T.Caret);
      this.SUBRULE(this.unary, { LABEL: "exponent" });
    });
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.SUBRULE(this.reference) },
      { ALT: () => { this.CONSUME(T.LParen); this.SUBRULE(this.expr); this.CONSUME(T.RParen); } },
    ]);
  });

  reference = this.RULE("reference", () => {
    this.OR1([
      { ALT: () => this.CONSUME(T.Identifier, { LABEL: "name" }) },
      { ALT: () => this.CONSUME(T.KeywordName, { LABEL: "name" }) }, // a tensor named like a keyword: output[j]
    ]);
    this.OPTION(() => {
      this.OR([
        {
          ALT: () => {
            this.CONSUME(T.LBracket);
            this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.indexExpr) });
            this.CONSUME(T.RBracket);
          },
        },
        {
          ALT: () => {
            this.CONSUME(T.LParen);
            this.MANY_SEP2({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr, { LABEL: "args" }) });
            this.CONSUME(T.RParen);
          },
        },
      ]);
    });
  });

  indexExpr = this.RULE("indexExpr", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.NumberLiteral) },
    ]);
  });
}

export const seqParser = new SeqParser();
export type { CstNode, IToken };
