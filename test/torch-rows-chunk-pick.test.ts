/**
 * Which entry of the chunked rows readout (compiler/backends/cuda/rows-chunk.ts) a per-key decay's transposed core takes:
 * runtime/torch/seqc_chunked.py rows_chunk_pick over the module's kernels (ROWS_FORM, ROWS_CHUNK_WARPS, ROWS_CHUNK_PIPE; b and
 * c bf16, one pair and one readout, K, V <= 64, one segment; the prefetching entries only at K = V = 64; with
 * ROWS_CHUNK_WIDE the wide entries at K, V <= 128, their prefetching ones at V = 128; "split" the split entries, none for
 * terms; "auto" split where its grid fits the SMs, else wide; ROWS_CHUNK_WARPS 16 its entries, the 8-warp one where it has none; scan the terms entries' running-sum twins), run in Python on the numpy stand-in for torch (test/torch/rows_chunk_pick.py).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { rowsChunkModule } from "../compiler/backends/cuda/rows-chunk.ts";

const numpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;

describe.skipIf(!numpy)("torch runtime: the chunked rows readout's entry", () => {
  it("by operand types, switches and sizes; the walk (null) elsewhere", () => {
    const r = spawnSync("python3", ["test/torch/rows_chunk_pick.py"], { input: JSON.stringify(rowsChunkModule().kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      abc: "seqc_rows_chunk_w8_la",
      bc: "seqc_rows_chunk_w8",
      "w4 bc": "seqc_rows_chunk_w4",
      "f32 operands": null,
      walk: null,
      "two pairs": null,
      "K 128": null,
      "K 16 V 7": "seqc_rows_chunk_w8",
      "pipe abc": "seqc_rows_chunk_w8_p_la",
      "pipe bc": "seqc_rows_chunk_w8_p",
      "pipe K 16": "seqc_rows_chunk_w8",
      "pipe, argument False": "seqc_rows_chunk_w8",
      "pipe w4 (no such entry)": "seqc_rows_chunk_w4",
      segments: null,
      "wide K 128 abc": "seqc_rows_chunk_w8_v128_la",
      "wide pipe K 128 abc": "seqc_rows_chunk_w8_v128_p_la",
      "wide pipe K 128 bc terms": "seqc_rows_chunk_w8_v128_p_t",
      "wide K 128 bc terms": "seqc_rows_chunk_w8_v128_t",
      "wide pipe K 100 V 72": "seqc_rows_chunk_w8_v128",
      "wide pipe K 128 V 64": "seqc_rows_chunk_w8_v128",
      "wide pipe K 64 V 64 (the 64 entries)": "seqc_rows_chunk_w8_p_la",
      "wide K 256": null,
      "wide w4 K 128 (no such entry)": null,
      "wide off K 128 pipe": null,
      "auto mode B 1 H 8 K 128, 132 SMs": "split",
      "auto mode B 4 H 16 K 128, 132 SMs": "wide",
      "auto mode B 2 H 16 K 128, 132 SMs": "split",
      "auto mode, argument wide": "wide",
      "wide off, argument True": "seqc_rows_chunk_w8_v128_la",
      "split K 128 abc": "seqc_rows_chunk_w8_vs_la",
      "split pipe K 128 bc": "seqc_rows_chunk_w8_vs_p",
      "split pipe K 128 V 64": "seqc_rows_chunk_w8_vs_p",
      "split pipe K 100 V 72": "seqc_rows_chunk_w8_vs",
      "split pipe K 128 bc terms (none: the terms apart)": null,
      "split pipe K 64 V 64 (the 64 entries)": "seqc_rows_chunk_w8_p",
      "w16 pipe bc terms": "seqc_rows_chunk_w16_p_t",
      "w16 pipe abc": "seqc_rows_chunk_w16_p_la",
      "w16 pipe K 16 V 7": "seqc_rows_chunk_w16",
      "w16 bc terms (no such entry: 8 warps)": "seqc_rows_chunk_w8_t",
      "w16 wide pipe K 128 bc terms": "seqc_rows_chunk_w16_v128_p_t",
      "w16 wide pipe K 128 abc": "seqc_rows_chunk_w16_v128_p_la",
      "w16 wide pipe K 100 V 72": "seqc_rows_chunk_w16_v128",
      "w16 split pipe K 128 bc (no such entry: 8 warps)": "seqc_rows_chunk_w8_vs_p",
      "scan pipe bc terms": "seqc_rows_chunk_w8_p_ts",
      "scan bc terms": "seqc_rows_chunk_w8_ts",
      "scan wide pipe K 128 bc terms": "seqc_rows_chunk_w8_v128_p_ts",
      "scan wide K 128 bc terms (no such entry)": null,
      "scan without terms": null,
    });
  }, 60_000);
});
