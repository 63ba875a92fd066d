/**
 * runtime/torch/seqc_chunked.py REVERSED_READS "terms" (issue 6): the decay adjoint's terms kernel reads adjointT's dk where
 * the core wrote it, in reversed time (decay-terms.ts rev bit c2), and a dk that is an input's whole gradient (prep's copy
 * of a bf16 input: SimpleGLA's and GLA's k) is converted to bf16 before its reversal. On CPU torch with every plan stubbed
 * and the terms kernel replaced by a torch stand-in of its contract (test/torch/terms_rev.py): the float32 flip of dk
 * becomes a bf16 flip, the conversions stay as many, and every gradient is bitwise the "flip" path's. Mamba-2's dk
 * (prep's kk1, which prep's backward reads in forward time) keeps the old way. A stand-in that ignores the rev bit (dk read
 * as if forward) must change the decays' gradient.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-terms-rev.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Row = { path: string; counts: Record<string, number>; revs: number[]; grads_equal_flip?: Record<string, boolean> };

// [float32 flips, bf16 flips, float32 -> bf16 conversions] on the "flip" and "terms" paths, and the decay's gradient's name
const WANT: Record<string, { flip: number[]; terms: number[]; rev: number; decay: string }> = {
  simple_gla: { flip: [1, 5, 3], terms: [0, 6, 3], rev: 8, decay: "g" },
  gla: { flip: [4, 2, 7], terms: [3, 3, 7], rev: 8, decay: "gk" }, // (its rows readout as torch ops on CPU: float32 operands, more flips)
  mamba2: { flip: [1, 5, 3], terms: [1, 5, 3], rev: 0, decay: "dt" },
};

function drive(name: string, broken: boolean): Row[] {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const dir = mkdtempSync(join(tmpdir(), "seqc-terms-rev-"));
  const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
  writeFileSync(join(dir, json.path), json.contents);
  const r = spawnSync("/usr/bin/python3", ["test/torch/terms_rev.py", dir, model.name, ...(broken ? ["broken"] : [])], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row);
}

describe.skipIf(!cpuTorch)("torch target: the terms kernel reading dk in reversed time (CPU torch, plans stubbed)", () => {
  it.each(Object.keys(WANT))("%s", (name) => {
    const w = WANT[name];
    const rows = drive(name, false);
    expect(rows.map((x) => x.path)).toEqual(["flip", "terms"]);
    const c = (x: Row) => [x.counts["flip f32"], x.counts["flip bf16"], x.counts["f32->bf16"]];
    expect(c(rows[0]), `${name} flip`).toEqual(w.flip);
    expect(c(rows[1]), `${name} terms`).toEqual(w.terms);
    expect(rows[0].revs.every((r) => r === 0)).toBe(true);
    expect(rows[1].revs.every((r) => r === w.rev) && rows[1].revs.length > 0).toBe(true);
    for (const [k, same] of Object.entries(rows[1].grads_equal_flip!)) expect(same, `${name}: d${k} bitwise as the flip path`).toBe(true);
    if (w.rev) {
      const bad = drive(name, true)[1];
      expect(bad.grads_equal_flip![w.decay], `${name}: a stand-in ignoring rev changes d${w.decay}`).toBe(false);
    }
  }, 180_000);
});
