/** Keywords may name tensors (docs/language.md): declared, updated and read in expressions. */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";

const check = (src: string) => loadProgram(["f.seq"], new Map([["f.seq", src]]));

describe("keywords as tensor names", () => {
  it("a tensor named like a keyword can be read in an expression", () => {
    const p = check("model M {\n  dims D\n  input state[D], let[D]\n  state input[D] = 0\n  input[d] = input[d] + state[d] * let[d]\n  output output[d] = input[d]\n  output y[d] = output[d] * 2 + sum(e) output[e]\n}\n");
    expect(p.diagnostics).toEqual([]);
    expect(p.models[0].tensors.map((t) => t.name)).toEqual(["state", "let", "input", "output", "y"]);
  });

  it("sum still starts a sum, so a tensor named sum cannot be read", () => {
    const p = check("model M {\n  dims D\n  input sum[D]\n  output y[d] = sum[d]\n}\n");
    expect(p.diagnostics.map((d) => d.code)).toContain("SEQ1002");
  });
});
