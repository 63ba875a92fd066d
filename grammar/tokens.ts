/** Token definitions of the .seq language. */
import { createToken, Lexer, type TokenType } from "chevrotain";

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
export const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({ name: "BlockComment", pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED });

/** Any identifier-like word; keywords are also Names, so `output output[j] = ...` works. */
export const Name = createToken({ name: "Name", pattern: Lexer.NA });
export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Name] });
/** Keywords that may also name a tensor read in an expression (`output[j]`); not `sum`, which starts `sum(i) ...`. */
export const KeywordName = createToken({ name: "KeywordName", pattern: Lexer.NA });

function keyword(word: string): TokenType {
  const categories = word === "sum" ? [Name] : [Name, KeywordName];
  return createToken({ name: word[0].toUpperCase() + word.slice(1), pattern: new RegExp(word), longer_alt: Identifier, categories });
}
export const Model = keyword("model");
export const Dims = keyword("dims");
export const Input = keyword("input");
export const Param = keyword("param");
export const State = keyword("state");
export const Let = keyword("let");
export const Output = keyword("output");
export const For = keyword("for");
export const In = keyword("in");
export const Import = keyword("import");
export const Fn = keyword("fn");
export const Sum = keyword("sum");

export const NumberLiteral = createToken({ name: "NumberLiteral", pattern: /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/ });
export const StringLiteral = createToken({ name: "StringLiteral", pattern: /"[^"\n]*"/ });

export const LBrace = createToken({ name: "LBrace", pattern: /{/ });
export const RBrace = createToken({ name: "RBrace", pattern: /}/ });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/ });
export const RBracket = createToken({ name: "RBracket", pattern: /]/ });
export const LParen = createToken({ name: "LParen", pattern: /\(/ });
export const RParen = createToken({ name: "RParen", pattern: /\)/ });
export const Comma = createToken({ name: "Comma", pattern: /,/ });
export const Semicolon = createToken({ name: "Semicolon", pattern: /;/ });
export const Colon = createToken({ name: "Colon", pattern: /:/ });

export const CompareOp = createToken({ name: "CompareOp", pattern: Lexer.NA });
export const Le = createToken({ name: "Le", pattern: /<=/, categories: [CompareOp] });
export const Ge = createToken({ name: "Ge", pattern: />=/, categories: [CompareOp] });
export const EqEq = createToken({ name: "EqEq", pattern: /==/, categories: [CompareOp] });
export const NotEq = createToken({ name: "NotEq", pattern: /!=/, categories: [CompareOp] });
export const Lt = createToken({ name: "Lt", pattern: /</, categories: [CompareOp] });
export const Gt = createToken({ name: "Gt", pattern: />/, categories: [CompareOp] });
export const Equals = createToken({ name: "Equals", pattern: /=/ });

export const AddOp = createToken({ name: "AddOp", pattern: Lexer.NA });
export const Plus = createToken({ name: "Plus", pattern: /\+/, categories: [AddOp] });
export const Minus = createToken({ name: "Minus", pattern: /-/, categories: [AddOp] });
export const MulOp = createToken({ name: "MulOp", pattern: Lexer.NA });
export const Star = createToken({ name: "Star", pattern: /\*/, categories: [MulOp] });
export const Slash = createToken({ name: "Slash", pattern: /\//, categories: [MulOp] });
export const Caret = createToken({ name: "Caret", pattern: /\^/ });

/** Order matters: comments before Slash, keywords before Identifier, two-char operators first. */
export const allTokens: TokenType[] = [
  WhiteSpace, LineComment, BlockComment,
  Model, Dims, Input, Param, State, Let, Output, For, In, Import, Fn, Sum,
  Name, KeywordName, Identifier, NumberLiteral, StringLiteral,
  LBrace, RBrace, LBracket, RBracket, LParen, RParen, Comma, Semicolon, Colon,
  CompareOp, Le, Ge, EqEq, NotEq, Lt, Gt, Equals,
  AddOp, Plus, Minus, MulOp, Star, Slash, Caret,
];
