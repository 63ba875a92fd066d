/**
 * The delta backward with the forward's chunk states (runtime/torch/seqc_delta_bwd.py delta_backward `states`,
 * seqc_chunked_lowrank.py LR_FWD_STATES; docs/delta-backward.md "Chunk states from the forward") on CPU torch in float64
 * (test/torch/delta_fwd_states.py): each chunk's start state and the final state from the token loop, given to the torch
 * ops and to the kernels' stand-in (R = X + M S0 by kern.r instead of the forward walk: the launches prep_fwd, r,
 * prep_bwd, the reverse walk, adj), equal the backward without them (<= 1e-13; no decay and a scalar one, ragged T, C 64
 * / 16 / 8, given and zero initial states, T = 1); bf16-rounded states move the gradients by 1e-5 .. 1e-2; states of another
 * shape are ignored (both walks run); states a chunk late fail (> 1e-2). LR_FWD_STATES' forward form on a module
 * stand-in: "off" none; "on" the auto pick's -st twin (split's walk storing the chunk states), else (none in the plan, a
 * split3 or fused pick) its split3 twin, with a chunk-state workspace; "split3" the split3 twin; none with a per-key decay,
 * without kernels.deltaStates, for f16 or a variant asked for; another value refused. The plumbing (test/torch/
 * fwd_states_plumbing.py, a module stand-in): seqc_torch.forward with "on" runs the twin, asks execute for its
 * workspaces and keeps chunkS and the final state (ctx.delta_states); seqc_chunked_lowrank.backward passes both to
 * backward_eager; "off" none of it.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
type Case = Record<string, number | string[]>;

describe.skipIf(!cpuTorch)("torch target: the delta backward with the forward's chunk states (LR_FWD_STATES)", () => {
  it("given states equal the forward walk's; kern.r replaces the forward walk; bf16 states within 1e-2; other shapes ignored; shifted states fail; the forward form", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/delta_fwd_states.py"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, Case> & { form: Record<string, string | null> };
    const cases = Object.entries(out).filter(([k]) => k !== "form") as [string, Case][];
    expect(cases.length).toBe(4);
    const walks = ["prep_fwd", "walk", "prep_bwd", "walk", "adj"];
    for (const [name, c] of cases) {
      for (const k of ["torch", "kernels", "kernels no states vs torch", "wrong size"]) expect(c[k] as number, `${name} ${k}`).toBeLessThan(1e-13);
      expect(c["calls"], name).toEqual(["prep_fwd", "r", "prep_bwd", "walk", "adj"]);
      expect(c["calls no states"], name).toEqual(walks);
      expect(c["calls wrong size"], name).toEqual(walks);
      if (name.includes("T=1 ")) continue; // (zero states: bf16 exact)
      for (const k of ["torch bf16 states", "kernels bf16 states"]) {
        expect(c[k] as number, `${name} ${k}`).toBeGreaterThan(1e-5);
        expect(c[k] as number, `${name} ${k}`).toBeLessThan(1e-2);
      }
      expect(c["shifted"] as number, name).toBeGreaterThan(1e-2);
    }
    expect(out.form).toEqual({
      off: null, on: "chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-st-r1", "on scalar": "chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-st-r1", "on key": null,
      "no deltaStates": null, "split3 pick": "chunked-split3-bf16-k128-v16-a512-iw-ios-wc-r1", "fused pick": "chunked-split3-bf16-k128-v64-r1", f16: null,
      "a variant asked": null, split3: "chunked-split3-bf16-k128-v64-a512-iw-ios-r1", "split3 scalar": "chunked-split3-bf16-k128-v64-a512-iw-ios-r1",
      "on without an st twin": "chunked-split3-bf16-k128-v64-a512-iw-ios-r1", "split3 key": null, "bad switch": "LR_FWD_STATES 'yes': one of off, on, split3",
    });
  }, 120_000);

  it("seqc_torch.forward keeps the -st twin's chunk states with \"on\", the split3 twin's with \"split3\" (none with \"off\") and the backward hands them to backward_eager", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/fwd_states_plumbing.py"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      off: { calls: [{ key: "forward", form: "auto", "workspaces asked": false }], states: null, "backward got": null },
      on: { calls: [{ key: "forward", form: "chunked-split-f32-k32-v16-st-r1", "workspaces asked": true }], states: ["torch.float32", 128, true, true], "backward got": [2, true, true] },
      split3: { calls: [{ key: "forward", form: "chunked-split3-f32-k32-v16-r1", "workspaces asked": true }], states: ["torch.float32", 128, true, true], "backward got": [2, true, true] },
    });
  }, 120_000);

  it("LR_FWD_STATES_COPY: \"copy\" copies the graphed forward's chunk states out every call; \"graph\" hands the graph's own tensor, taken by the backward until a later forward replays (then None: the forward walk)", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/fwd_states_shared.py"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const T = true, F = false;
    expect(JSON.parse(r.stdout)).toEqual({
      copy: [[F, T, T, T, T], [F, T, T, T, T], [F, T, T, T, T], [F, T, T, T, T], [F, T, T, T, T]],
      "copy replays": { static: 1, direct: 3 },
      // (call 1 eager: its own; 2 the copying graph's, 3-5 the direct graph's: each stale after the next replay)
      graph: [[F, T, T, T, T], [T, T, T, F, F], [T, T, T, F, F], [T, T, T, F, F], [T, T, T, T, T]],
      "graph replays": { static: 1, direct: 3 },
      "bad switch": "LR_FWD_STATES_COPY 'yes': one of copy, graph",
    });
  }, 120_000);
});
