/** compiler/backends/wgsl/unroll.ts: which counted loops of generated WGSL are unrolled, and how. */
import { describe, expect, it } from "vitest";
import { unrollConstLoops } from "../compiler/backends/wgsl/unroll.ts";

describe("unrollConstLoops", () => {
  it("unrolls a literal-bound loop into const-indexed blocks, nested loops too", () => {
    const got = unrollConstLoops("for (var r = 0u; r < 2u; r++) { for (var q = 0u; q < 2u; q++) { s[r][q] = 0.0; } }");
    expect(got).toBe(
      "{ const r = 0u; { const q = 0u; s[r][q] = 0.0; } { const q = 1u; s[r][q] = 0.0; } } " +
        "{ const r = 1u; { const q = 0u; s[r][q] = 0.0; } { const q = 1u; s[r][q] = 0.0; } }",
    );
  });
  it("leaves loops with a run-time bound, more trips than the limit, break/continue, or a body that assigns the variable", () => {
    for (const src of [
      "for (var f = 0u; f < F; f++) { acc += x[f]; }",
      "for (var q = 0u; q < 32u; q++) { acc += x[q]; }",
      "for (var q = 0u; q < 4u; q++) { if (x[q] > 0.0) { break; } }",
      "for (var q = 0u; q < 4u; q++) { if (x[q] > 0.0) { continue; } y += 1.0; }",
      "for (var q = 0u; q < 4u; q++) { q += 1u; }",
      "for (var q = 1u; q < 4u; q++) { y += x[q]; }",
    ])
      expect(unrollConstLoops(src)).toBe(src);
    expect(unrollConstLoops("for (var q = 0u; q < 32u; q++) { y += x[q]; }", 32)).toContain("const q = 31u;");
  });
  it("keeps comparisons of the variable (==, <=) as reads", () => {
    expect(unrollConstLoops("for (var m = 0u; m < 2u; m++) { if (m == t) { y = m; } }")).toBe("{ const m = 0u; if (m == t) { y = m; } } { const m = 1u; if (m == t) { y = m; } }");
  });
});
