/**
 * runtime/torch/seqc_chunked.py REV_ADD "kernel" (issue 6, session 15 task G2): where an input's gradient is post's
 * backward's piece plus the adjoint core's dv, which comes out in reversed time (Mamba-2's x), the reversed-time add
 * (compiler/backends/cuda/rev-add.ts) sums them in one pass that reads dv where the core wrote it. On CPU torch with every
 * plan stubbed and the kernel replaced by a torch stand-in of its contract (test/torch/rev_add.py): Mamba-2's bf16 flip of
 * dv and the mixed add go (5 -> 4 bf16 flips, 3 -> 2 large adds), the stand-in is asked once for (float32 post piece,
 * bf16 dv) -> bf16 (GRAD_SUM "low"), and every gradient is bitwise the "flip" path's. A stand-in that reads dv forward
 * must change dx. SimpleGLA's dv is its input's whole gradient: nothing to add, the step unchanged.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-rev-add.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Row = { path: string; counts: Record<string, number>; calls: string[][]; grads_equal_flip?: Record<string, boolean> };

// [float32 flips, bf16 flips, float32 -> bf16 conversions, large adds] on the "flip" and "kernel" paths; the stand-in's calls
const WANT: Record<string, { flip: number[]; kernel: number[]; calls: string[][]; input?: string }> = {
  mamba2: { flip: [1, 5, 3, 3], kernel: [1, 4, 3, 2], calls: [["torch.float32", "torch.bfloat16", "torch.bfloat16"]], input: "x" },
  simple_gla: { flip: [1, 5, 3, 1], kernel: [1, 5, 3, 1], calls: [] },
};

function drive(name: string, broken: boolean): Row[] {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const dir = mkdtempSync(join(tmpdir(), "seqc-rev-add-"));
  const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
  writeFileSync(join(dir, json.path), json.contents);
  const r = spawnSync("/usr/bin/python3", ["test/torch/rev_add.py", dir, model.name, ...(broken ? ["broken"] : [])], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row);
}

describe.skipIf(!cpuTorch)("torch target: an input's reversed-time piece added by the kernel (CPU torch, plans stubbed)", () => {
  it.each(Object.keys(WANT))("%s", (name) => {
    const w = WANT[name];
    const rows = drive(name, false);
    expect(rows.map((x) => x.path)).toEqual(["flip", "kernel"]);
    const c = (x: Row) => [x.counts["flip f32"], x.counts["flip bf16"], x.counts["f32->bf16"], x.counts.add];
    expect(c(rows[0]), `${name} flip`).toEqual(w.flip);
    expect(c(rows[1]), `${name} kernel`).toEqual(w.kernel);
    expect(rows[0].calls).toEqual([]);
    expect(rows[1].calls.map((x) => x.slice(0, 3))).toEqual(w.calls);
    for (const [k, same] of Object.entries(rows[1].grads_equal_flip!)) expect(same, `${name}: d${k} bitwise as the flip path`).toBe(true);
    if (w.input) {
      const bad = drive(name, true)[1];
      expect(bad.grads_equal_flip![w.input], `${name}: a stand-in reading dv forward changes d${w.input}`).toBe(false);
    }
  }, 180_000);
});
