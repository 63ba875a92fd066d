/**
 * runtime/torch/seqc_graphs.py (the torch target's CUDA graphs: the plain forward and the chunked backward captured
 * per signature, replayed after) on CPU torch with an emulated graph (test/torch/graphs_logic.py: work enqueued while
 * capturing is recorded, not run; replay reruns it on the same buffers). What a real graph does on the GPU is
 * checked against the eager path there (bench/torch/graph_bench.py); this covers the bookkeeping: when a signature
 * is captured, that every call's arguments reach the graph (copied into its static buffers), that results are the
 * caller's own (not the graph's memory) in the asked dtype, the eager fallback after a failed capture, the LRU, and shared results (returned as the graph's own tensors, a stamp
 * saying whether a later replay wrote over them: seqc_torch's LR_FWD_STATES_COPY "graph").
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
if (!cpuTorch) console.warn("torch-graphs.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

describe.skipIf(!cpuTorch)("torch target: seqc_graphs.graphed (CPU torch, emulated CUDA graph)", () => {
  it("captures on a signature's second call, replays with each call's arguments, returns fresh results, falls back when capture fails, reads repeated addresses in place", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/graphs_logic.py"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const got = JSON.parse(r.stdout);
    // every call right: eager (1), captured + replayed (2), replays (3-5), each on its own fresh inputs
    expect(got.errs).toHaveLength(5);
    for (const e of got.errs) expect(e).toBeLessThanOrEqual(1e-6);
    expect(got.dtypes).toEqual(["torch.float32", "torch.float64", null]);
    expect(got.third_none).toBe(true);
    expect(got.kept_unchanged).toBe(true);
    expect(got.distinct_storage).toBe(true);
    expect(got.stats).toEqual([5, "graph", 0, { static: 4, direct: 0 }]);
    expect(got.replays).toBe(4);
    expect(got.fn_calls).toBe(3);
    expect(got.noncontiguous_err).toBeLessThanOrEqual(1e-6);
    expect(got.second_sig_err).toBeLessThanOrEqual(1e-6);
    expect(got.signatures).toBe(2);
    expect(got.disabled_err).toBeLessThanOrEqual(1e-6);
    expect(got.disabled_fn_calls).toBe(1);
    for (const e of got.failed_errs) expect(e).toBeLessThanOrEqual(1e-6);
    expect(got.failed_stats[0]).toBe(4);
    expect(got.failed_stats[3]).toEqual({ static: 0, direct: 0 });
    expect(got.failed_stats[1]).toMatch(/^capture failed: RuntimeError: operation not permitted when stream is capturing/);
    expect(got.lru_keys).toEqual(["x", "z"]);
    // direct graphs: addresses seen again within SEEN (4) calls capture one that reads them in place (values changed
    // in place between calls seen); at most MAX_DIRECT (2) per signature, other addresses go through the copies
    expect(got.direct_errs).toHaveLength(12);
    for (const e of got.direct_errs) expect(e).toBeLessThanOrEqual(1e-6);
    expect(got.direct_kinds).toEqual([
      { static: 0, direct: 0 }, { static: 1, direct: 0 }, { static: 1, direct: 1 },
      { static: 1, direct: 2 }, { static: 1, direct: 3 }, { static: 1, direct: 4 },
    ]);
    expect(got.direct_stats).toEqual([12, "graph", 2, { static: 5, direct: 6 }]);
    expect(got.pools).toEqual([true, true, true]);
    // two address sets in turn: each gets its direct graph when it comes back
    for (const e of got.alternating_errs) expect(e).toBeLessThanOrEqual(1e-6);
    expect(got.alternating_kinds.at(-1)).toEqual({ static: 1, direct: 6 });
    // shared results (LR_FWD_STATES_COPY "graph"): the graph's own tensor from the capture on (no copy), the other
    // result still copied; each replay's stamp valid until the next replay in the shared pool (the eager call's always);
    // a plain signature's replays (main pool) leave them valid, another shared signature's do not
    for (const e of got.shared_errs) expect(e).toBeLessThanOrEqual(1e-6);
    expect(got.shared_same_storage).toEqual([false, true, true, true]);
    expect(got.shared_copied_distinct).toBe(true);
    expect(got.shared_valid_now).toEqual([[true], [true, true], [true, false, true], [true, false, false, true]]);
    expect(got.shared_valid_after_plain).toEqual([true, false, false, true]);
    expect(got.shared_valid_after_other).toEqual([true, false, false, false]);
    expect(got.shared_pools).toEqual(["spool", "pool", "spool"]);
    // seqc_chunked_lowrank.fwd_states: the kept states while valid (or unstamped), None once stale or none kept
    expect(got.fwd_states).toEqual([true, true, null, null]);
  });
});
