/** One mistake, one diagnostic: the resolver does not report the consequences of an error it already reported. */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";

const codes = (src: string) => loadProgram(["f.seq"], new Map([["f.seq", src]])).diagnostics.map((d) => d.code).sort();
const model = (body: string) => `model M {\n  dims H, K, J\n  input x[H], W[H,K], xs[J,H]\n  state s[H] = 0\n${body}\n}\n`;

describe("resolver: no cascades after an error", () => {
  it.each([
    ["unknown function: its arguments still bind indices and count as uses", "  s[h] = s[h] + 1\n  output y[h] = gelu(x[h]) + W[h,0] + xs[0,h]", ["SEQ2005"]],
    ["fn with the wrong arity", "  s[h] = s[h] + 1\n  output y[h] = twice(x[h], 1) + W[h,0] + xs[0,h]", ["SEQ2006"]],
    ["unknown tensor: its indices are not 'of unknown size'", "  s[h] = s[h] + x[h] + W[h,0] + xs[0,h]\n  output y[h] = s[h] * gain[h]", ["SEQ2001"]],
    ["read with the wrong number of indices", "  s[h] = s[h] + x[h] + W[h,0] + xs[0,h]\n  output y[h] = W[h]", ["SEQ3001"]],
    ["use before definition", "  s[h] = s[h] + x[h] + W[h,0] + xs[0,h]\n  output y[h] = later[h]\n  let later[h] = s[h]", ["SEQ2008"]],
    ["state update with the wrong number of indices still updates and reads", "  s[h,k] = x[h] + W[h,k] + xs[0,h]\n  output y[h] = s[h]", ["SEQ3001"]],
    ["a let whose index range is unknown is not also a mismatch where it is read", "  s[h] = s[h] + x[h] + W[h,0] + xs[0,h]\n  let ones[i] = 1\n  output y[h] = s[h] * ones[h]", ["SEQ3003"]],
    ["an index twice on the left: the statement still defines its output", "  s[h] = s[h] + x[h] + W[h,0] + xs[0,h]\n  output y[h,h] = s[h]", ["SEQ2004"]],
    ["a loop index named like a tensor: the loop body still runs its updates", "  for x in J {\n    s[h] = s[h] + xs[x,h]\n  }\n  output y[h] = s[h] + x[h] + W[h,0]", ["SEQ2004"]],
  ])("%s", (_name, body, want) => {
    expect(codes(`fn twice(a) = 2 * a\n${model(body)}`)).toEqual(want);
  });
});
