/**
 * runtime/torch/seqc_chunked.py ROWS_TERMS "scan" (issue 6, session 15 task F): GLA's transposed adjoint on the rows chunk
 * kernel's scan entry (rows-chunk.ts _ts), which writes the decay adjoint's reverse sums a_T + sum_{s >= t} (q.dq - k.dk)_s
 * in place of the terms, from carry0 = a_T = <dS_N, S_N> per key row, so seqc_decay_adjoint.reverse_sums does not run. On CPU
 * torch with every plan stubbed and the rows kernel on a torch stand-in of its contract (test/torch/rows_scan.py), the loss
 * with a final-state cotangent (a_T not zero): the scan path hands the stand-in carry0 [B, H*K], runs no large product and no
 * large copy (the reverse sums' mm and two transposed clones on the "kernel" path), dq, dk, dv bitwise "kernel"'s, dgk within
 * bf16 rounding of it (the sums in another order). A stand-in that ignores carry0 must move dgk. And rows_readout_kernel's
 * launches (test/torch/rows_scan_launch.py, kernels recorded by test/torch/fake_kernels.py): the _ts entry with carry0 (or
 * null) as the 17th argument after rev, dq, k, the sums; with segments null (the sums' offsets added after).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { rowsChunkModule } from "../compiler/backends/cuda/rows-chunk.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-rows-scan.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Row = { path: string; counts: Record<string, number>; calls: [number, string, number[] | null][]; grads: Record<string, [string, boolean, number]> };

function drive(noinit: boolean): Row[] {
  const model = loadProgram(["stdlib/gla.seq"]).models[0];
  const dir = mkdtempSync(join(tmpdir(), "seqc-rows-scan-"));
  const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
  writeFileSync(join(dir, json.path), json.contents);
  const r = spawnSync("/usr/bin/python3", ["test/torch/rows_scan.py", dir, model.name, ...(noinit ? ["noinit"] : [])], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row);
}

describe.skipIf(!cpuTorch)("torch target: GLA's decay adjoint's reverse sums from the rows chunk kernel (ROWS_TERMS \"scan\"; CPU torch, plans stubbed)", () => {
  it("the scan entry takes a_T, the reverse sums' product and copies are gone, gradients as \"kernel\"'s; ignoring carry0 fails", () => {
    const [kernel, scan] = drive(false);
    expect(kernel.path).toBe("kernel");
    expect(scan.path).toBe("scan");
    expect(kernel.calls).toEqual([[0, "", null], [31, "+terms", null]]);
    expect(scan.calls).toEqual([[0, "", null], [31, "+scan", [2, 128]]]);  // (B = 2, H*K = 2 x 64)
    expect(kernel.counts).toEqual({ mm: 1, clone: 2, add: 2 });
    expect(scan.counts).toEqual({ mm: 0, clone: 0, add: 1 });
    for (const g of ["q", "k", "v"]) expect(scan.grads[g], g).toEqual(["torch.bfloat16", true, 0]);
    expect(scan.grads.gk[0]).toBe("torch.bfloat16");
    expect(scan.grads.gk[2]).toBeLessThan(1e-4);
    const broken = drive(true)[1];
    expect(broken.grads.gk[2], "carry0 ignored").toBeGreaterThan(1e-4);
  }, 120_000);
  it("rows_readout_kernel launches the scan entries with carry0 last (null without one or with segments), the _t entry without", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/rows_scan_launch.py"], { input: JSON.stringify(rowsChunkModule().kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const head = ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr"];
    expect(got.terms).toEqual({ dtypes: ["torch.bfloat16", "torch.float32"], calls: [["seqc_rows_chunk_w8_v128_p_t", [64, 2], [...head, 4, 256, 16, 128, 128, 1, 31, "ptr", "ptr", "ptr"]]] });
    expect(got["scan, no carry0"]).toEqual({ dtypes: ["torch.bfloat16", "torch.float32"], calls: [["seqc_rows_chunk_w8_v128_p_ts", [64, 2], [...head, 4, 256, 16, 128, 128, 1, 31, "ptr", "ptr", "ptr", "null"]]] });
    expect(got["scan, carry0"]).toEqual({ dtypes: ["torch.bfloat16", "torch.float32"], calls: [["seqc_rows_chunk_w8_v128_p_ts", [64, 2], [...head, 4, 256, 16, 128, 128, 1, 31, "ptr", "ptr", "ptr", "ptr"]]] });
    expect(got["scan K 64"].calls).toEqual([["seqc_rows_chunk_w8_p_ts", [128, 1], [...head, 8, 256, 16, 64, 64, 1, 31, "ptr", "ptr", "ptr", "ptr"]]]);
    // segments (8 of 128 tokens): B n batches from their start states, each segment's sums from zero (carry0 null)
    expect(got["scan with segments"].calls).toEqual([["seqc_rows_chunk_w8_v128_p_ts", [64, 2], [...head, 8, 128, 8, 128, 128, 1, 31, "ptr", "ptr", "ptr", "null"]]]);
  }, 60_000);
});
