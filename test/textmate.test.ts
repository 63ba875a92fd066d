/**
 * The TextMate grammar (editors/vscode) run by VS Code's own engine on every stdlib file and on
 * a sample of every construct, checked token by token against seqc's lexer: keywords, names,
 * numbers, strings, operators, punctuation and comments get the expected scopes, and no
 * non-whitespace text is left without a scope of its own.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import type { IToken } from "chevrotain";
import { lex } from "../grammar/lexer.ts";
import { commentsOf } from "../compiler/fmt/source.ts";
import { tokenizeSeq, highlightSeqHtml, type ScopedToken } from "../editors/highlight.ts";
import { BUILTINS } from "../compiler/ir/builtins.ts";

const sample = `// every construct of the language
import "lib.seq"
fn gate(a, b) = sigmoid(a) * b   /* a user function */
model Sample {
  dims H, K = 4
  dims L = T
  input x[H,K], z[H] = 0
  param eps = 1e-6, w[4, H]
  state S[H,K] = 0, m[H] = -inf; state n = .5
  let u[h: H] = gate(x[h,0], 2.) ^ -2
  for j in K {
    S[h,j] = select(has(z), S[h,j] * exp(z[h]), S[h,j]) + x[h,j] /* add */
  }
  m[h] = max(m[h], sum(k) x[h,k] * w[0,h] + pi) // running max
  n = n + (1 <= 2) - (3 != 4)
  output output[h] = m[h] / (u[h] + eps) >= 0
  output state[h] = output[h] * 2
}
`;

const files = [
  { name: "sample", text: sample },
  { name: "analysis-cases.seq", text: readFileSync("test/fixtures/seq/analysis-cases.seq", "utf8") },
  ...readdirSync("stdlib").filter((f) => f.endsWith(".seq")).map((f) => ({ name: f, text: readFileSync(`stdlib/${f}`, "utf8") })),
];

const DECL = new Set(["Input", "Param", "State", "Let", "Output", "Dims"]);

/** The scope (prefix) a lexer token must get, from its type and its neighbours. */
function expectedScope(ts: IToken[], i: number): string {
  const t = ts[i], next = ts[i + 1], prev = ts[i - 1];
  const type = t.tokenType.name;
  const nextIs = (img: string) => next?.image === img;
  const nameLike = (prev && DECL.has(prev.tokenType.name) && prev.tokenType.name !== "Dims") || nextIs("[");
  switch (type) {
    case "Model": return "storage.type.model";
    case "Fn": return "storage.type.function";
    case "For": return "keyword.control.for";
    case "In": return "keyword.control.in";
    case "Import": return "keyword.control.import";
    case "Sum": return nextIs("(") ? "keyword.other.sum" : "variable.other";
    case "NumberLiteral": return "constant.numeric";
    case "StringLiteral": return "string.quoted.double";
    case "Plus": case "Minus": case "Star": case "Slash": case "Caret": return "keyword.operator.arithmetic";
    case "Lt": case "Le": case "Gt": case "Ge": case "EqEq": case "NotEq": return "keyword.operator.comparison";
    case "Equals": return "keyword.operator.assignment";
    case "Comma": case "Colon": case "Semicolon": case "LBracket": case "RBracket": case "LParen": case "RParen": case "LBrace": case "RBrace":
      return "punctuation.";
  }
  if (DECL.has(type)) return nameLike ? (nextIs("[") && !(prev && DECL.has(prev.tokenType.name)) ? "variable.other.tensor" : "variable.other.definition") : "keyword.declaration";
  // identifiers
  if (prev?.tokenType.name === "Model") return "entity.name.type.model";
  if (prev?.tokenType.name === "Fn") return "entity.name.function";
  if (prev?.tokenType.name === "For") return "variable.other.index";
  if (nextIs("(")) return t.image in BUILTINS || t.image === "has" ? "support.function.builtin" : "entity.name.function";
  if (prev && DECL.has(prev.tokenType.name) && prev.tokenType.name !== "Dims") return "variable.other.definition";
  if ((t.image === "inf" || t.image === "pi") && !nextIs("[")) return "constant.language";
  return "variable.other";
}

function tokenAt(tm: ScopedToken[], line: number, col: number): ScopedToken | undefined {
  return tm.find((t) => t.line === line && t.start <= col && col < t.end);
}

describe("TextMate grammar (editors/vscode/syntaxes/seq.tmLanguage.json)", () => {
  for (const { name, text } of files) {
    it(`${name}: every lexer token gets its scope, as one TextMate token`, async () => {
      const tm = await tokenizeSeq(text);
      const ts = lex(text, name).tokens;
      expect(ts.length).toBeGreaterThan(10);
      ts.forEach((t, i) => {
        const line = t.startLine! - 1, col = t.startColumn! - 1;
        const got = tokenAt(tm, line, col);
        const want = expectedScope(ts, i);
        const where = `${name}:${line + 1}:${col + 1} '${t.image}'`;
        expect(got, where).toBeDefined();
        expect(got!.scopes[got!.scopes.length - 1].startsWith(want), `${where}: ${got!.scopes.join(" ")} should end in ${want}*`).toBe(true);
        if (!want.startsWith("punctuation")) expect(got!.text, where).toBe(t.image);
      });
    });

    it(`${name}: comments are comments; no other text is left unscoped`, async () => {
      const tm = await tokenizeSeq(text);
      const lines = text.split("\n");
      const lineStarts = lines.map((_, i) => lines.slice(0, i).reduce((n, l) => n + l.length + 1, 0));
      const inComment = (line: number, col: number) => commentsOf(text, lex(text, name).tokens).some((c) => c.start <= lineStarts[line] + col && lineStarts[line] + col < c.end);
      const comments = commentsOf(text, lex(text, name).tokens);
      for (const t of tm) {
        if (!t.text.trim()) continue;
        const inner = t.scopes[t.scopes.length - 1];
        const where = `${name}:${t.line + 1}:${t.start + 1} '${t.text}'`;
        expect(inner === "source.seq" || inner.startsWith("meta."), `${where} has no scope of its own (${t.scopes.join(" ")})`).toBe(false);
        expect(inner.startsWith("invalid"), where).toBe(false);
        expect(t.scopes.some((s) => s.startsWith("comment.")), where).toBe(inComment(t.line, t.start));
      }
      if (name !== "analysis-cases.seq") expect(comments.length).toBeGreaterThan(0);
    });

    it(`${name}: model bodies and for blocks are scoped as such`, async () => {
      const tm = await tokenizeSeq(text);
      const ts = lex(text, name).tokens;
      let depth = 0;
      const blocks: string[] = [];
      ts.forEach((t, i) => {
        if (t.tokenType.name === "Model") blocks.push("meta.model.seq");
        if (t.tokenType.name === "For" && ts[i + 2]?.tokenType.name === "In") blocks.push("meta.block.for.seq");
        const got = tokenAt(tm, t.startLine! - 1, t.startColumn! - 1)!;
        const open = blocks.slice(0, Math.max(depth, t.tokenType.name === "Model" || t.tokenType.name === "For" ? blocks.length : depth));
        for (const b of open) expect(got.scopes, `${name}:${t.startLine} '${t.image}'`).toContain(b);
        if (!blocks.length) expect(got.scopes.some((s) => s.startsWith("meta.")), `${name}:${t.startLine} '${t.image}' is outside any model`).toBe(false);
        if (t.image === "{") depth++;
        if (t.image === "}") {
          depth--;
          blocks.pop();
        }
      });
      expect(depth).toBe(0);
    });
  }

  it("highlights to HTML with one span per scoped token", async () => {
    const html = await highlightSeqHtml("model M { // c\n  output o = 1 < 2\n}\n");
    expect(html).toContain('<span class="tm-storage tm-type" title="storage.type.model.seq">model</span>');
    expect(html).toContain('<span class="tm-keyword tm-operator" title="keyword.operator.comparison.seq">&lt;</span>');
    expect(html).toContain('title="comment.line.double-slash.seq">');
    expect(html.split("\n")).toHaveLength(3);
  });
});
