import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { formatDiagnostics } from "../compiler/diagnostics.ts";
import { parseSeq } from "../grammar/index.ts";

const compile = (src: string) => loadProgram(["m.seq"], new Map([["m.seq", src]]));
const codes = (src: string) => compile(src).diagnostics.map((d) => d.code);

describe("parser", () => {
  it("parses a model into an AST with declarations and statements", () => {
    const { ast, diagnostics } = parseSeq(
      `model Gla { dims H, K, V
        input q[H,K], k[H,K], v[H,V], gk[H,K]
        state S[H,K,V] = 0
        S[h,i,j] = exp(gk[h,i]) * S[h,i,j] + k[h,i] * v[h,j]
        output o[h,j] = sum(i) q[h,i] * S[h,i,j] * rsqrt(K) }`,
      "g.seq",
    );
    expect(diagnostics).toEqual([]);
    expect(ast.models[0].name.name).toBe("Gla");
    expect(ast.models[0].items.map((i) => i.kind)).toEqual(["dims", "input", "input", "input", "input", "state", "assign", "output"]);
  });

  it("sum binds looser than * and tighter than +", () => {
    const { ast } = parseSeq("model A { dims K\n input a[K]\n output o = sum(i) a[i] * 2 + 1 }", "a.seq");
    const out = ast.models[0].items[2] as { expr: { kind: string; op?: string; lhs?: { kind: string } } };
    expect(out.expr.kind).toBe("binary");
    expect(out.expr.op).toBe("+");
    expect(out.expr.lhs?.kind).toBe("sum");
  });

  it("recovers and reports several syntax errors with positions", () => {
    const p = compile("model A {\n  input x[ \n  output o[i] = x[i] +\n}\nmodel B { state s[1] = }\n");
    const errs = p.diagnostics.filter((d) => d.code === "SEQ1002");
    expect(errs.length).toBeGreaterThanOrEqual(2);
    for (const e of errs) expect(e.span.line).toBeGreaterThan(0);
  });

  it("reports lexer errors", () => {
    expect(codes("model A { dims K\n input a[K] @ }")).toContain("SEQ1001");
  });

  it("allows keywords as tensor names", () => {
    const p = compile("model L { dims H\n input x[H]\n output output[j] = x[j] }");
    expect(p.diagnostics).toEqual([]);
    expect(p.models[0].tensors.map((t) => t.name)).toEqual(["x", "output"]);
  });
});

describe("resolution and shape checking", () => {
  const head = "model M { dims H, K\n input x[H], y[K]\n state s[H] = 0\n";
  it.each([
    ["unknown tensor", "s[h] = z[h]", "SEQ2001"],
    ["assignment to an input", "x[h] = 1", "SEQ2003"],
    ["index clashes with a tensor", "s[x] = 1", "SEQ2004"],
    ["unknown function", "s[h] = foo(x[h])", "SEQ2005"],
    ["wrong arity", "s[h] = exp(x[h], 1)", "SEQ2006"],
    ["rank mismatch", "s[h] = x[h, h]", "SEQ3001"],
    ["dim mismatch", "s[h] = y[h]", "SEQ3002"],
    ["unbound index", "s[h] = x[h] * y[j]", "SEQ3004"],
    ["bare non-scalar tensor", "s[h] = x", "SEQ3006"],
    ["use before definition", "s[h] = u[h]\n let u[h] = x[h]", "SEQ2008"],
  ])("%s -> %s", (_name, stmt, code) => {
    expect(codes(`${head}${stmt}\n output o[h] = s[h] }`)).toContain(code);
  });

  it("infers let shapes from use and checks unknown ranges", () => {
    expect(codes("model M { dims H\n input x[H]\n output o[i] = 3 }")).toContain("SEQ3003");
    const p = compile("model M { dims H, K\n input x[H,K]\n let n[h] = sum(i) x[h,i]\n output o[h] = n[h] }");
    expect(p.diagnostics).toEqual([]);
    expect(p.models[0].tensors.find((t) => t.name === "n")!.shape).toEqual([{ kind: "dim", name: "H" }]);
  });

  it("checks literal indices against fixed sizes", () => {
    expect(codes("model M { dims H\n param W[4, H]\n output o[h] = W[4, h] }")).toContain("SEQ3005");
    expect(codes("model M { dims H\n param W[4, H]\n output o[h] = W[3, h] }")).toEqual([]);
  });

  it("rejects non-constant initial values and warns about unused inputs", () => {
    expect(codes("model M { dims H\n input x[H], y\n state s[H] = y\n s[h] = s[h]\n output o[h] = s[h] }")).toContain("SEQ4004");
    const ds = compile("model M { dims H\n input x[H], y[H]\n output o[h] = x[h] }").diagnostics;
    expect(ds.map((d) => [d.code, d.severity])).toEqual([["SEQ4102", "warning"]]);
  });

  it("accepts a dim that defaults to the sequence length, and nothing else as a default", () => {
    const p = compile("model M { dims H\n dims L = T\n input x[H]\n state c[L] = 0\n c[l] = c[l] + 1\n output o[h] = x[h] }");
    expect(p.diagnostics).toEqual([]);
    expect(p.models[0].dims.find((d) => d.name === "L")).toMatchObject({ sequenceDefault: true });
    expect(codes("model M { dims H, L = H\n input x[H]\n output o[h] = x[h] }")).toContain("SEQ3007");
  });

  it("inlines fns and resolves dims, constants and index values", () => {
    const p = compile("fn sq(a) = a * a\nmodel M { dims H\n input x[H]\n output o[h] = sq(x[h]) + H + h - inf }");
    expect(p.diagnostics).toEqual([]);
  });

  it("keeps going after an error to report several per run", () => {
    const cs = codes(`${"model M { dims H\n input x[H]\n state s[H] = 0\n"} s[h] = a[h] + b[h] + foo(1)\n output o[h] = s[h] }`);
    expect(cs.filter((c) => c === "SEQ2001").length).toBe(2);
    expect(cs).toContain("SEQ2005");
  });
});

describe("diagnostic rendering", () => {
  it("prints file:line:col, the code, and a caret under the offending text", () => {
    const p = compile("model M { dims H\n  input x[H]\n  output o[h] = x[h] + zz[h] }");
    const text = formatDiagnostics(p.diagnostics, p.sources);
    expect(text).toContain("m.seq:3:24: error SEQ2001: unknown tensor 'zz'");
    const lines = text.split("\n");
    const src = lines.findIndex((l) => l.includes("output o[h] = x[h] + zz[h]"));
    expect(lines[src + 1]).toMatch(/^\s+\|\s+\^{5}$/);
    expect(lines[src + 1].indexOf("^")).toBe(lines[src].indexOf("zz"));
  });
});
