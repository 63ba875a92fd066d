/**
 * runtime/torch/seqc_chunked.py ROWS_CHUNK_SEGMENTS on CPU torch (test/torch/rows_chunk_seg_path.py): rows_readout_kernel's
 * launches of the rows chunk kernel (the module's entries, a stand-in that reads the launch's pointers and walks the
 * kernel's contract in float64 per launched batch) with the switch off and with 2, 3, 4, 5 segments and "auto": the
 * segments launched as B n batches of T / n tokens from init 1 (the grid's x B n H), where n divides T (else one
 * launch as off); outputs on vs off within 1e-6 of the largest (split / wide entries at K = V = 128, forward time and the
 * adjoint's reversed time (rev 31), bf16 and float32 a, with and without S0, decays to -20, T ragged, segments of 1024 tokens whose states' products run in blocks of 512, one-token segments); off vs a float64 walk
 * of the whole sequence. A stand-in that ignores init (every segment from zero) fails. rows_chunk_segments' picks ("auto":
 * two waves with the kernel's states at (1, 32768, 8, 128): 16; none at (4, 8192, 16, 128) and (8, 2048, 16, 64)). The
 * terms entries' running sums (ROWS_TERMS "scan", _ts) in segments: each from zero, carry0 and the later segments' totals
 * added after, as one launch from carry0 (the stand-in writes out as bf16 and the sums along the walk).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { rowsChunkModule } from "../compiler/backends/cuda/rows-chunk.ts";
import { rowsSegStatesModule } from "../compiler/backends/cuda/rows-seg-states.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
if (!cpuTorch) console.warn("torch-rows-chunk-seg.test: no torch for /usr/bin/python3; skipped");

type Run = { launches: number[][]; err: number; out?: string };
type Row = { case: string; ref: number; runs: Record<string, Run> };

function drive(broken: boolean): [Row[], Record<string, number>] {
  const r = spawnSync("/usr/bin/python3", ["test/torch/rows_chunk_seg_path.py", ...(broken ? ["noinit"] : [])], { input: JSON.stringify({ rowsChunk: rowsChunkModule().kernels, rowsSegStates: rowsSegStatesModule().kernels }), encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  return [lines.slice(0, -1) as Row[], lines[lines.length - 1] as Record<string, number>];
}

describe.skipIf(!cpuTorch)("torch runtime: the rows chunk kernel's segments (ROWS_CHUNK_SEGMENTS) on CPU", () => {
  it("segments as batches from their start states: outputs as off; launches; picks; a stand-in ignoring init fails", () => {
    const [rows, picks] = drive(false);
    expect(rows.map((r) => r.case)).toEqual(["split K128 dk rev", "split K128 dq", "wide K128 dq", "wide K128 dk rev init", "K64 ragged T 195", "K64 T 2048 (token blocks of 512)", "K64 T 2048 rev (token blocks of 512)", "one-token segments rev", "auto K128 dq (wide segments)", "auto K128 dk rev (two waves with the kernel's states)", "scan wide K128 dk rev", "scan K64 dk rev"]);
    for (const r of rows) {
      expect(r.ref, `${r.case}: off vs float64`).toBeLessThan(1e-6);
      for (const [n, run] of Object.entries(r.runs)) expect(run.err, `${r.case} n=${n}`).toBeLessThan(1e-6);
    }
    // [grid x, grid y, B, T, init]: the split entries' y = 2 key groups x 2 value groups, the wide ones' 2 key groups
    expect(rows[0].runs["0"].launches).toEqual([[2, 4, 1, 150, 0]]);
    expect(rows[0].runs["3"].launches).toEqual([[6, 4, 3, 50, 1]]);
    expect(rows[0].runs["5"].launches).toEqual([[10, 4, 5, 30, 1]]);
    expect(rows[1].runs["3"].launches).toEqual([[2, 4, 1, 256, 1]]); // 3 does not divide 256: one launch
    expect(rows[1].runs["auto"].launches).toEqual([[8, 4, 4, 64, 1]]); // 32 SMs / 8 split blocks a segment
    expect(rows[2].runs["5"].launches).toEqual([[10, 2, 10, 26, 1]]);
    expect(rows[3].runs["auto"].launches).toEqual([[8, 2, 8, 64, 1]]); // wide: 4 blocks a segment, at most T / 64 segments
    expect(rows[4].runs["3"].launches).toEqual([[6, 1, 6, 65, 1]]);
    expect(rows[4].runs["4"].launches).toEqual([[2, 1, 2, 195, 1]]);
    expect(rows[5].runs["2"].launches).toEqual([[4, 1, 2, 1024, 1]]); // segments of 1024 tokens: the states' products in blocks of 512
    expect(rows[6].runs["2"].launches).toEqual([[4, 1, 2, 1024, 1]]);
    expect(rows[7].runs["5"].launches).toEqual([[10, 1, 5, 1, 1]]); // one token a segment: the states' copy of ld (ld itself unwritten: off and the float64 walk after it agree)
    // ROWS_SEG_STATES: "torch" never launches the states' kernel; "cuda" (the default since H200 call A4: GLA (1, 32768, 8,
    // 128) graphs 6.908 -> 6.137 ms) launches it once before the chunked form, grid (B (n - 1) H, ceil(K / 64) ceil(V / 64)),
    // the entry by a's dtype (outputs as off within 1e-6: the loop above); no module (ks None): torch ops
    expect(picks.ROWS_SEG_STATES).toBe("cuda");
    expect(rows[0].runs["3:torch"].launches).toEqual([[6, 4, 3, 50, 1]]);
    expect(rows[0].runs["3:cuda"].launches).toEqual([[6, 4, 3, 50, 1], [4, 4, 3, 31, "seqc_rows_seg_ends"]]);
    expect(rows[1].runs["auto:cuda"].launches).toEqual([[8, 4, 4, 64, 1], [6, 4, 4, 0, "seqc_rows_seg_ends_la"]]);
    expect(rows[4].runs["5:cuda"].launches).toEqual([[10, 1, 10, 39, 1], [8, 1, 5, 0, "seqc_rows_seg_ends"]]);
    expect(rows[4].runs["4:cuda"].launches).toEqual([[2, 1, 2, 195, 1]]); // (no segments: no states)
    expect(rows[7].runs["5:cuda"].launches).toEqual([[10, 1, 5, 1, 1], [8, 1, 5, 31, "seqc_rows_seg_ends"]]);
    // "auto" counts segments on the wide grid (B H ceil(K / 64) blocks a segment) unless ROWS_CHUNK_WIDE is "split": 32 SMs /
    // 4 wide blocks -> 8 segments of 64 tokens, which ROWS_CHUNK_WIDE "auto" then runs wide (8 x 2 x 4 split blocks > 32)
    expect(rows[8].runs["auto"].launches).toEqual([[16, 2, 8, 64, 1]]);
    // two waves where the states come from the rowsSegStates kernel: no module (ks None) or "torch" one wave (32 SMs / 4
    // wide blocks = 8 segments of 128 tokens), "cuda" with the module two (16 segments of 64 tokens)
    expect(rows[9].runs["auto"].launches).toEqual([[16, 2, 8, 128, 1]]);
    expect(rows[9].runs["auto:torch"].launches).toEqual([[16, 2, 8, 128, 1]]);
    expect(rows[9].runs["auto:cuda"].launches).toEqual([[32, 2, 16, 64, 1], [30, 4, 16, 31, "seqc_rows_seg_ends"]]);
    // ROWS_TERMS "scan" (the _ts entries, rev 31) with segments: each segment's running sums from zero, then carry0 and the
    // later segments' totals added (the loop above: within 1e-6 of one launch from carry0, which is within 1e-6 of float64)
    expect(rows[10].runs["0"].launches).toEqual([[2, 2, 2, 256, 1]]);
    expect(rows[10].runs["4"].launches).toEqual([[8, 2, 8, 64, 1]]);
    expect(rows[11].runs["5"].launches).toEqual([[10, 1, 5, 64, 1]]);
    for (const r of rows.slice(10)) for (const run of Object.values(r.runs)) expect(run.out).toBe("torch.bfloat16");
    // H200 call A3: at (1, 32768, 8, 128) 8 wide segments 7.007 ms beat 4 split (the earlier rule) 7.705 (torch states);
    // call A4 (kernel states): 16 wide segments 5.613 ms beat 8 (6.137) and 32 (5.862): "auto" (ROWS_SEG_STATES "cuda")
    // counts two waves (n per <= 2 sms) where at least two segments fit one wave (2 per <= sms); (4, 8192, 16, 128) and
    // (8, 2048, 16, 64) (128 blocks a segment) keep none, (3, 8192, 16, 128) (96) none, (2, 8192, 16, 128) (64) 4 (2 at one wave)
    expect(picks).toEqual({
      "1x32768x8x128": 16, "1x32768x8x128 wide": 16, "1x32768x8x128 split": 8, "4x8192x16x128": 1, "8x2048x16x64": 1, "1x32769x8x128": 1, "1x1024x8x128": 16, "1x192x8x128": 3,
      "2x8192x16x128": 4, "3x8192x16x128": 1, "1x32768x8x128 one wave": 8, "2x8192x16x128 one wave": 2, "1x32768x8x128 torch states": 8,
      "n 3 of T 150": 3, "n 4 of T 150": 1, off: 1, "default 1x32768x8x128": 16, "default 4x8192x16x128": 1, "default 8x2048x16x64": 1, ROWS_SEG_STATES: "cuda",
    });
    const [bad] = drive(true);
    const worst = Math.max(...bad.flatMap((r) => Object.entries(r.runs).filter(([n]) => r.runs[n].launches[0][2] > r.runs["0"].launches[0][2]).map(([, x]) => x.err)));
    expect(worst, "segments from zero states").toBeGreaterThan(1e-2);
  }, 300_000);
});
