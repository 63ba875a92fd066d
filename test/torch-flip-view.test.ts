/**
 * runtime/torch/seqc_chunked.py flip_time (FLIP_VIEW "wide"): the glue's time reversal of a contiguous CUDA tensor as a
 * flip of each token's row viewed as 8-byte words, on numpy arrays dressed as CUDA tensors (test/torch/flip_view.py;
 * numpy's view(dtype) reinterprets bytes as torch's does). Each result is compared bitwise with a flip along time; the
 * wide view must be taken where a token's row is a whole number of 8-byte words at an 8-byte-aligned offset (2- and
 * 4-byte elements, T = 1, views into a larger tensor) and not otherwise (6-byte rows, a strided view, a 2-byte offset,
 * way "plain"). On the H100 the bench's gradients came out bitwise the same with and without it (bench/RESULTS.md, "The
 * bf16 step's reversals on 8-byte words").
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";

const numpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;

describe.skipIf(!numpy)("seqc_chunked.flip_time on 8-byte words", () => {
  it("bitwise a flip along time; the wide view exactly where rows are whole aligned words", () => {
    const r = spawnSync("python3", ["test/torch/flip_view.py"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { case: string; wide: boolean; same: boolean });
    expect(rows.length).toBe(9);
    for (const row of rows) expect(row.same, row.case).toBe(true);
    expect(Object.fromEntries(rows.map((x) => [x.case, x.wide]))).toEqual({
      "2-byte [3, 37, 12]": true,
      "2-byte [2, 1, 8] (T = 1)": true,
      "4-byte [2, 11, 4, 6]": true,
      "2-byte row of 6 bytes [2, 9, 3]: plain": false,
      "4-byte, not contiguous: plain": false,
      "2-byte [3, 37, 12], way plain": false,
      "2-byte view 480 bytes in": true,
      "2-byte view 240 bytes in, [2, 10, 12]": true,
      "2-byte view at a 2-byte offset: plain": false,
    });
  });
});
