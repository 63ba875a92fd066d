/**
 * The stateless parts' switches and the captured backward graphs (runtime/torch/seqc_chunked.py stateless_switches;
 * test/torch/stateless_keys.py on CPU torch, stand-in ctx / model / runner):
 * (1) the signature key of seqc_chunked's, seqc_chunked_lowrank's and seqc_chunked_stab's graphed backward changes with
 * every switch stateless_form reads (STATELESS_ROWS, STATELESS_VEC, STATELESS_WARP, TUNE_STATELESS, GRAPH_PICKS,
 * STATELESS_WIDE, ZERO_STORES, RUN_COPIES) and comes back with it: flipping one between steps under graphs captures anew
 * (the trial runs again eagerly) in place of replaying the kernels the old setting picked;
 * (2) prep's backward's "-bf16bar" twins (_bars_form) follow the switches as the other twins do: the row-major ones with
 * STATELESS_ROWS, the vector, fused and warp-fused ones ("-rv", "-rf", "-rw") with STATELESS_ROWS and STATELESS_VEC; a capture after the
 * trial takes its pick only while the switches are as they were.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;

describe.skipIf(!cpuTorch)("torch target: the stateless parts' switches in the graphed backwards' keys", () => {
  it("every switch stateless_form reads in the chunked, low-rank and stabilised backward's key; the bf16-bar twins follow STATELESS_ROWS / STATELESS_VEC", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/stateless_keys.py"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const got = JSON.parse(r.stdout);
    const all = { STATELESS_ROWS: true, STATELESS_VEC: true, STATELESS_WARP: true, TUNE_STATELESS: true, GRAPH_PICKS: true, STATELESS_WIDE: true, ZERO_STORES: true, RUN_COPIES: true };
    for (const mod of ["chunked", "lowrank", "stab"]) expect(got[mod], mod).toEqual(all);
    const f = (s: string) => `global-bf16bar${s}`;
    expect(got.bars).toEqual({
      "True True": [f("-rw4"), [f(""), f("-rm4"), f("-rv4"), f("-rf4"), f("-rw4")]],
      "True False": [f("-rm4"), [f(""), f("-rm4")]],
      "False True": [f(""), [f("")]],
      "False False": [f(""), [f("")]],
    });
    expect(got.capture).toEqual({ "True True": f("-rw4"), "True False": f(""), "False True": f("") });
  }, 60_000);
});
