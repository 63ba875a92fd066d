import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { formatSeq } from "../compiler/fmt/index.ts";
import { astOf, commentTexts, fmt, irOf } from "./fmt-helpers.ts";

const stdlib = readdirSync("stdlib").filter((f) => f.endsWith(".seq")).map((f) => ({ f, text: readFileSync(`stdlib/${f}`, "utf8") }));

/** The formatted right-hand side of `output o[h] = <expr>` in a model where a, b, c, x index over H. */
function rhs(expr: string): string {
  const src = `model P {\n  dims H\n  input a[H], b[H], c[H], x[H]\n  output o[h] = ${expr}\n}\n`;
  const out = fmt(src);
  const before = irOf(src);
  expect(before, `${expr} should resolve`).not.toBeNull();
  expect(irOf(out)).toBe(before);
  return /output o\[h\] = (.*)\n/.exec(out)![1];
}

describe("seqc fmt: expressions", () => {
  it("spaces binary operators, keeps ^ and unary minus tight, `, ` between arguments", () => {
    expect(rhs("a[h]+b[h]*c[h]")).toBe("a[h] + b[h] * c[h]");
    expect(rhs("max( a[h] ,b[h] )")).toBe("max(a[h], b[h])");
    expect(rhs("a[h] ^ 2")).toBe("a[h]^2");
    expect(rhs("- a[h]")).toBe("-a[h]");
    expect(rhs("a[h] - - b[h]")).toBe("a[h] - -b[h]");
    expect(rhs("select(a[h]<=b[h],x[h],c[h])")).toBe("select(a[h] <= b[h], x[h], c[h])");
    expect(rhs("+a[h]")).toBe("+a[h]");
    expect(rhs("a[h]*1e-6 + .5 + 2.")).toBe("a[h] * 1e-6 + .5 + 2.");
  });

  it("drops parentheses the parse does not need", () => {
    expect(rhs("((a[h] + b[h])) * c[h]")).toBe("(a[h] + b[h]) * c[h]");
    expect(rhs("a[h] + (b[h] * c[h])")).toBe("a[h] + b[h] * c[h]");
    expect(rhs("(a[h] - b[h]) - c[h]")).toBe("a[h] - b[h] - c[h]");
    expect(rhs("(a[h])")).toBe("a[h]");
    expect(rhs("select((a[h] < b[h]), (x[h]), 1)")).toBe("select(a[h] < b[h], x[h], 1)");
    expect(rhs("(-a[h]) * b[h]")).toBe("-a[h] * b[h]");
    expect(rhs("-(a[h]^2)")).toBe("-a[h]^2");
    expect(rhs("2^(-a[h])")).toBe("2^-a[h]");
    expect(rhs("a[h]^(b[h]^c[h])")).toBe("a[h]^b[h]^c[h]");
  });

  it("keeps the parentheses that associativity and precedence need", () => {
    expect(rhs("a[h] - (b[h] - c[h])")).toBe("a[h] - (b[h] - c[h])");
    expect(rhs("a[h] + (b[h] + c[h])")).toBe("a[h] + (b[h] + c[h])");
    expect(rhs("a[h] / (b[h] * c[h])")).toBe("a[h] / (b[h] * c[h])");
    expect(rhs("(a[h]^b[h])^c[h]")).toBe("(a[h]^b[h])^c[h]");
    expect(rhs("(-a[h])^2")).toBe("(-a[h])^2");
    expect(rhs("-(a[h] * b[h])")).toBe("-(a[h] * b[h])");
    expect(rhs("(a[h] < b[h]) == (c[h] < 1)")).toBe("(a[h] < b[h]) == (c[h] < 1)");
    expect(rhs("(1 < a[h]) + 1")).toBe("(1 < a[h]) + 1");
  });

  it("sum(i) binds looser than * and / and tighter than + and -", () => {
    const s = (body: string) => `model P {\n  dims H, K\n  input x[H,K], y[H]\n  output o[h] = ${body}\n}\n`;
    const line = (body: string) => {
      const out = fmt(s(body));
      expect(irOf(out)).toBe(irOf(s(body)));
      expect(irOf(s(body))).not.toBeNull();
      return /output o\[h\] = (.*)\n/.exec(out)![1];
    };
    expect(line("sum(k) (x[h,k] * 2)")).toBe("sum(k) x[h,k] * 2");
    expect(line("(sum(k) x[h,k]) + 1")).toBe("sum(k) x[h,k] + 1");
    expect(line("sum(k) (x[h,k] + 1)")).toBe("sum(k) (x[h,k] + 1)");
    expect(line("(sum(k) x[h,k]) * 2")).toBe("(sum(k) x[h,k]) * 2");
    expect(line("2 * (sum(k) x[h,k])")).toBe("2 * sum(k) x[h,k]");
    expect(line("y[h] * (sum(k) x[h,k]) * 2")).toBe("y[h] * (sum(k) x[h,k]) * 2");
    expect(line("(y[h] * sum(k) x[h,k]) * 2")).toBe("(y[h] * sum(k) x[h,k]) * 2");
    expect(line("-(sum(k) x[h,k]) * 2")).toBe("-(sum(k) x[h,k]) * 2");
    expect(line("(-sum(k) x[h,k]) * 2")).toBe("(-sum(k) x[h,k]) * 2");
    expect(line("2^(sum(k) x[h,k]) * 2")).toBe("2^(sum(k) x[h,k]) * 2");
    expect(line("2^(sum(k) x[h,k] * 2)")).toBe("2^sum(k) x[h,k] * 2");
    expect(line("sum(k) -x[h,k]")).toBe("sum(k) -x[h,k]");
    expect(line("sum( k ) sum(j) x[h,k] * x[h,j]")).toBe("sum(k) sum(j) x[h,k] * x[h,j]");
  });
});

describe("seqc fmt: layout", () => {
  it("one statement per line, two-space indent, canonical spacing, blank lines collapsed", () => {
    const src = [
      "model  Gla{dims H,K , V",
      "input q[H, K],k[ H,K ], v[H,V] ; input gk[H,K]",
      "",
      "",
      "",
      "state S[ H,K,V ]=0 S[h,i,j]=exp(gk[h,i])*S[h,i,j]+k[h,i]*v[h,j]",
      "    for n in 2 { let u[h: H, j: V] = 1 }",
      "output o[h,j] = sum(i) q[h,i]*S[h,i,j]",
      "",
      "}",
      "fn  sq( a,b ) = a*b",
      "",
    ].join("\n");
    expect(fmt(src)).toBe(
      [
        "model Gla {",
        "  dims H, K, V",
        "  input q[H,K], k[H,K], v[H,V]",
        "  input gk[H,K]",
        "",
        "  state S[H,K,V] = 0",
        "  S[h,i,j] = exp(gk[h,i]) * S[h,i,j] + k[h,i] * v[h,j]",
        "  for n in 2 {",
        "    let u[h: H, j: V] = 1",
        "  }",
        "  output o[h,j] = sum(i) q[h,i] * S[h,i,j]",
        "}",
        "fn sq(a, b) = a * b",
        "",
      ].join("\n"),
    );
  });

  it("keeps declarations in source order, imports and fns where they were", () => {
    const src = 'fn f(x) = x\nmodel A {\n  dims H\n  input x[H]\n  output o[h] = f(x[h])\n}\nimport "other.seq"\n';
    expect(fmt(src)).toBe(src);
  });

  it("empty blocks stay on one line; a block with only a comment does not", () => {
    expect(fmt("model A {  }\n")).toBe("model A {}\n");
    expect(fmt("model A { ; ; }\n")).toBe("model A {}\n");
    expect(fmt("model A { // nothing yet\n}\n")).toBe("model A {  // nothing yet\n}\n");
    expect(fmt("model A {\n\n// nothing yet\n\n}\n")).toBe("model A {\n  // nothing yet\n}\n");
  });

  it("CRLF line endings become LF, tabs become the canonical indent", () => {
    const src = "// head\r\nmodel M {\r\n\tdims D\r\n\tinput x[D] /* a\r\n b */\r\n\toutput y[d] = x[d]\r\n}\r\n";
    expect(fmt(src)).toBe("// head\nmodel M {\n  dims D\n  input x[D]  /* a\n b */\n  output y[d] = x[d]\n}\n");
  });

  it("an empty file or a file of comments", () => {
    expect(fmt("")).toBe("");
    expect(fmt("\n\n  \n")).toBe("");
    expect(fmt("  // a\n\n\n/* b */\n")).toBe("// a\n\n/* b */\n");
  });
});

describe("seqc fmt: comments", () => {
  const src = [
    "// header",
    "",
    "model M {   // the model",
    "  dims H",
    "      // about x",
    "  input x[H],   /* inline */ y[H]   // trailing",
    "  state S[H] = 0 // short",
    "  /* a block",
    "     comment */",
    "  S[h] = S[h] * x[h] + // the decay",
    "     // the input",
    "     y[h]",
    "  output o[h] = (S[h] /* kept */) * 2",
    "",
    "  // before the end",
    "}   // done",
    "// the end",
  ].join("\n");

  it("are kept, in order, attached to their statements", () => {
    const out = fmt(src);
    expect(out).toBe(
      [
        "// header",
        "",
        "model M {   // the model",
        "  dims H",
        "  // about x",
        "  input x[H], /* inline */ y[H]     // trailing",
        "  state S[H] = 0  // short",
        "  /* a block",
        "     comment */",
        "  S[h] = S[h] * x[h] + // the decay",
        "      // the input",
        "      y[h]",
        "  output o[h] = S[h] /* kept */ * 2",
        "",
        "  // before the end",
        "}   // done",
        "// the end",
        "",
      ].join("\n"),
    );
    expect(commentTexts(out)).toEqual(commentTexts(src));
    expect(irOf(out)).toBe(irOf(src));
    expect(fmt(out)).toBe(out);
  });

  it("a trailing comment of a statement that shared its source line with others gets two spaces", () => {
    const src = "model  M{dims D input x[D];state h[D]=0 h[d]=((h[d]))*0.5+(x[d])   // decay\noutput y[d]=h[d]}\n";
    expect(fmt(src)).toBe("model M {\n  dims D\n  input x[D]\n  state h[D] = 0\n  h[d] = h[d] * 0.5 + x[d]  // decay\n  output y[d] = h[d]\n}\n");
    // re-indented lines keep their comment's distance from the code's start
    expect(fmt("model M {\n      dims D         // d\n}\n")).toBe("model M {\n  dims D         // d\n}\n");
  });

  it("aligned trailing comments stay aligned; a run that no longer fits moves together", () => {
    const aligned = "model M {\n  dims H\n  input x[H]           // one\n  input yy[H]          // two\n  output o[h] = x[h] + yy[h]\n}\n";
    expect(fmt(aligned)).toBe(aligned);
    // `x[H],y[H]` gains a space: the run moves right as one; a lone comment gets two spaces
    const crowded = "model M {\n  dims H\n  input x[H],y[H]  // one\n  input z[H]       // two\n  input w[H] // three\n  output o[h] = x[h] + y[h] + z[h] + w[h]\n}\n";
    expect(fmt(crowded)).toBe("model M {\n  dims H\n  input x[H], y[H]  // one\n  input z[H]        // two\n  input w[H]  // three\n  output o[h] = x[h] + y[h] + z[h] + w[h]\n}\n");
  });
});

describe("seqc fmt: refuses files with syntax errors", () => {
  it("returns the syntax diagnostics instead of text", () => {
    const r = formatSeq("model M {\n  dims H\n  input x[H\n  output o[h] = x[h]\n}\n", "bad.seq");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.diagnostics.map((d) => d.code)).toContain("SEQ1002");
    const lexBad = formatSeq("model M { dims H @ }", "bad.seq");
    expect(lexBad.ok).toBe(false);
    if (!lexBad.ok) expect(lexBad.diagnostics.map((d) => d.code)).toContain("SEQ1001");
  });

  it("formats files that parse but do not resolve (fmt is about layout only)", () => {
    const src = "model M { output o[h] = nosuch[h] }";
    expect(irOf(src)).toBeNull();
    expect(fmt(src)).toBe("model M {\n  output o[h] = nosuch[h]\n}\n");
  });
});

describe("seqc fmt on the standard library", () => {
  for (const { f, text } of stdlib) {
    it(`${f}: idempotent, same IR, same comments`, () => {
      const once = fmt(text);
      expect(fmt(once)).toBe(once);
      expect(irOf(once, f)).toBe(irOf(text, f));
      expect(irOf(text, f)).not.toBeNull();
      expect(commentTexts(once)).toEqual(commentTexts(text));
    });
  }

  it("changes only the spacing of the stdlib, never a line count or a comment column", () => {
    for (const { text } of stdlib) {
      const once = fmt(text);
      const a = text.split("\n"), b = once.split("\n");
      expect(b.length).toBe(a.length);
      a.forEach((l, i) => expect(b[i].indexOf("//")).toBe(l.indexOf("//")));
    }
  });

  it("keeps the AST of every stdlib file", () => {
    for (const { text } of stdlib) expect(astOf(fmt(text))).toBe(astOf(text));
  });
});
