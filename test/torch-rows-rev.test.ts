/**
 * runtime/torch/seqc_chunked.py ROWS_REVERSED "kernel" (issue 6): a per-key decay's transposed adjoint (GLA's dk = G v in
 * reversed time) on the rows readout's chunked form reading the forward-time ld, q, dy, v and storing dk in forward time
 * (rows-chunk.ts rev = 31), so the glue makes no float32 flip of q for it and none of dk after it, and gathers the adjoint
 * core's shifted decays from the bf16 gk (8-byte words) in place of a float32 gather and its conversion. On CPU torch with
 * every plan stubbed and the rows kernel and the terms kernel replaced by torch stand-ins of their contracts
 * (test/torch/rows_rev.py): counts of flips, conversions and gathers per path; every gradient and every input of the
 * adjoint plan bitwise the "flip" path's, with REVERSED_READS "flip" and "terms". ROWS_TERMS "kernel" (the terms written
 * beside dk by the chunked entry, dk in bf16): no terms launch, one conversion fewer, everything bitwise again. A stand-in
 * that ignores the rev bits must change dk and dgk. rows_readout_kernel declines rev (None: the glue flips) where the
 * chunked form does not take it.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-rows-rev.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Row = { path: string; counts: Record<string, number>; revs: (number | string)[]; terms_calls: number; grads_equal?: Record<string, boolean>; adjoint_equal?: boolean };

function drive(name: string, broken: boolean): [Record<string, unknown>, Row[]] {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const dir = mkdtempSync(join(tmpdir(), "seqc-rows-rev-"));
  const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
  writeFileSync(join(dir, json.path), json.contents);
  const r = spawnSync("/usr/bin/python3", ["test/torch/rows_rev.py", dir, model.name, ...(broken ? ["broken"] : [])], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  return [lines[0] as Record<string, unknown>, lines.slice(1) as Row[]];
}

// [float32 flips, bf16 flips, float32 -> bf16 conversions, float32 gathers, bf16 gathers]
const c = (x: Row) => [x.counts["flip f32"], x.counts["flip bf16"], x.counts["f32->bf16"], x.counts["index f32"], x.counts["index bf16"]];

describe.skipIf(!cpuTorch)("torch target: GLA's transposed adjoint reading reversed time on the rows chunk kernel (CPU torch, plans stubbed)", () => {
  it("GLA: flips, conversions and gathers per path; gradients and the adjoint's inputs bitwise the flip path's; a stand-in ignoring rev fails", () => {
    const [declines, rows] = drive("gla", false);
    expect(declines).toEqual({ "module has rev": true, "no module": null, "no rev argument": null, walk: null, "float32 b, c": null });
    expect(rows.map((x) => x.path)).toEqual(["flip/flip/apart", "flip/terms/apart", "kernel/flip/apart", "kernel/terms/apart", "flip/flip/kernel", "kernel/flip/kernel"]);
    expect(c(rows[0])).toEqual([2, 4, 5, 1, 0]); // q3 and dk float32; k, v, dy, dv bf16; q3's and ldn's copies and 3 gradients; ldn
    expect(c(rows[1])).toEqual([1, 5, 5, 1, 0]); // REVERSED_READS "terms": dk's flip in bf16
    expect(c(rows[2])).toEqual([0, 5, 4, 0, 1]); // q3's bf16 copy flipped; ldn from the bf16 gk
    expect(c(rows[3])).toEqual([0, 5, 4, 0, 1]);
    expect(c(rows[4])).toEqual(c(rows[0])); // ROWS_TERMS alone: nothing (it rides on the reversed reads)
    expect(c(rows[5])).toEqual([0, 5, 3, 0, 1]); // dk written bf16: its conversion gone
    expect(rows[0].revs).toEqual([0, 0]);
    expect(rows[2].revs).toEqual([0, 31]); // dq (forward time) as before, dk on the forward-time tensors
    expect(rows[5].revs).toEqual([0, "31+terms"]);
    expect(rows.map((r) => r.terms_calls)).toEqual([1, 1, 1, 1, 1, 0]);
    for (const r of rows.slice(1)) {
      for (const [k, same] of Object.entries(r.grads_equal!)) expect(same, `${r.path}: d${k} bitwise as the flip path`).toBe(true);
      expect(r.adjoint_equal, `${r.path}: the adjoint's inputs`).toBe(true);
    }
    const bads = drive("gla", true)[1];
    for (const bad of [bads[2], bads[5]]) {
      expect(bad.grads_equal!.k, `${bad.path}: a stand-in ignoring rev changes dk`).toBe(false);
      expect(bad.grads_equal!.gk, `${bad.path}: and dgk`).toBe(false);
    }
  }, 180_000);
  it("SimpleGLA (a scalar decay: no rows readout) runs as before on both paths", () => {
    const [, rows] = drive("simple_gla", false);
    expect(c(rows[2])).toEqual(c(rows[0]));
    expect(c(rows[5])).toEqual(c(rows[0]));
    for (const r of rows.slice(1)) {
      expect(r.revs).toEqual([]);
      for (const [k, same] of Object.entries(r.grads_equal!)) expect(same, `${r.path}: d${k}`).toBe(true);
    }
  }, 180_000);
});
