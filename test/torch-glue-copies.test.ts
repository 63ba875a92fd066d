/**
 * runtime/torch/seqc_chunked.py: the copies, dtype conversions and time reversals of a bf16 training step's chunked
 * backward per switch (issue 6), counted on CPU torch with every plan stubbed (test/torch/glue_copies.py: fixed outputs,
 * the parts' copies honoured, each run's inputs recorded by value). Tensors of at least [B, T, H*K] / 4 elements:
 *   IDLE_INPUTS "none": a part that does not run (SimpleGLA's and GLA's post backward: no plan) is handed no input, so no
 *     float32 copy of q, k, v is made for it (SimpleGLA 3 bf16 -> float32 fewer; GLA 1 here, where its rows readout runs
 *     as torch ops and reads the others in float32 anyway);
 *   ADJOINT_OUT "low": the adjoint's bf16 dv stays bf16 after its reversal (one bf16 -> float32 and, where it is the
 *     input's whole gradient, one float32 -> bf16 fewer);
 *   RUN_COPIES "input": Mamba-2's post backward's copy y0__bar = y__bar taken as the bf16 cotangent (no bf16 copy of the
 *     plan's float32 output; the anchors' Gram then converts it in its own copy: one bf16 -> float32 more, none extra);
 *   CORE_RERUN "bound": Mamba-2's forward core does not run again (no kernel of its post backward binds y0): no run, no
 *     float32 copy of its y;
 *   GRAD_SUM "low": an input's gradient summed from several pieces is written in bf16 by its last addition (Mamba-2's x,
 *     B, C: three float32 -> bf16 conversions fewer; SimpleGLA's and GLA's gradients are one piece each: unchanged).
 * Every path must hand each plan it runs the same values as the old one and return bitwise the same gradients.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-glue-copies.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Counts = { "bf16->f32": number; "f32->bf16": number; flip: number };
type Row = { path: string; counts: Counts; runs: string[]; grads_equal_old?: Record<string, boolean>; inputs_equal_old?: Record<string, boolean> };

// [bf16 -> float32, float32 -> bf16, flips] per path (old: every switch of this test at its old value; one switch new; all new)
// (Mamba-2's new path: with ZERO_STORES "skip" dt's and B's gradients have one piece left (prep's backward's), converted
// to bf16 on their own rather than written in bf16 by an add of post's zeros (GRAD_SUM "low"): 2 conversions, 2 adds fewer)
const WANT: Record<string, Record<string, [number, number, number]>> = {
  simple_gla: { old: [7, 4, 6], IDLE_INPUTS: [4, 4, 6], ADJOINT_OUT: [6, 3, 6], RUN_COPIES: [7, 4, 6], CORE_RERUN: [7, 4, 6], GRAD_SUM: [7, 4, 6], ZERO_STORES: [7, 4, 6], new: [3, 3, 6] },
  mamba2: { old: [5, 5, 6], IDLE_INPUTS: [5, 5, 6], ADJOINT_OUT: [4, 5, 6], RUN_COPIES: [6, 4, 6], CORE_RERUN: [4, 5, 6], GRAD_SUM: [5, 2, 6], ZERO_STORES: [5, 5, 6], new: [4, 3, 6] },
  gla: { old: [7, 8, 6], IDLE_INPUTS: [6, 8, 6], ADJOINT_OUT: [6, 7, 6], RUN_COPIES: [7, 8, 6], CORE_RERUN: [7, 8, 6], GRAD_SUM: [7, 8, 6], ZERO_STORES: [7, 8, 6], new: [5, 7, 6] },
};

describe.skipIf(!cpuTorch)("torch target: the bf16 step's glue copies per switch (CPU torch, plans stubbed)", () => {
  it.each(Object.keys(WANT))("%s", (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dir = mkdtempSync(join(tmpdir(), "seqc-glue-copies-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const r = spawnSync("/usr/bin/python3", ["test/torch/glue_copies.py", dir, model.name], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row);
    expect(rows.map((x) => x.path)).toEqual(Object.keys(WANT[name]));
    for (const row of rows) {
      const c = row.counts;
      expect([c["bf16->f32"], c["f32->bf16"], c.flip], `${name} ${row.path}`).toEqual(WANT[name][row.path]);
      if (row.path === "old") continue;
      for (const [k, same] of Object.entries(row.grads_equal_old!)) expect(same, `${name} ${row.path}: d${k} bitwise as the old path`).toBe(true);
      for (const [k, same] of Object.entries(row.inputs_equal_old!)) expect(same, `${name} ${row.path}: ${k}'s inputs as on the old path`).toBe(true);
      // the forward core runs again only where post's backward reads its y (Mamba-2's does not: CORE_RERUN "bound")
      const core = row.runs.includes("chain:core");
      expect(core, `${name} ${row.path}`).toBe(rows[0].runs.includes("chain:core") && !(name === "mamba2" && (row.path === "CORE_RERUN" || row.path === "new")));
      // (ZERO_STORES "skip": the stub leaves a part's zeros NaN, so a glue that still added them would fail the bitwise check above)
    }
    expect(rows[0].runs.includes("chain:core")).toBe(name === "mamba2");
  }, 120_000);
});
