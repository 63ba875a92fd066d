/**
 * runtime/torch/seqc_chunked_lowrank.py: the float32 copies (copy_, stack, cat, clone into tensors of at least
 * [B, T, H, 64] / 2 elements) of a bf16 training step's low-rank chunked backward on the chunk-state path (LR_BWD "wy"),
 * counted on CPU torch by call site with every plan stubbed and the low-rank kernels' launchers replaced by the
 * recurrence stand-ins of test/torch/lowrank_glue.py (test/torch/lowrank_copies.py), per LR_EV_LINES:
 *   "off": prep's float32 outputs gathered into the timeline lines (x_u, x_w, x_k, x_v, x_q), post's dy into its line, the aug
 *     ChunkCore's key stack and [0 | v] put, restart's two value slots, wy's four event-stack copies (q, dy, w, dR), and
 *     the five adjoints of prep's outputs copied back from the lines;
 *   "on": the lines made as the stacks' slots: no key stack, no [0 | v] put, no copy of q into wy's events, and, where
 *     wy's "pre" kernel reads a strided dY (wy_launcher's dy_stride), none of dy.
 * A copy that comes back fails the counts; the gradients must be bitwise the old path's.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-lowrank-copies.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Path = { copies: number; sites: Record<string, number> };
type Out = { off: Path; on: Path; equal: Record<string, boolean>; standinCalls: number };

// [off, on with a strided dY, on with a contiguous one]
// (Gated DeltaNet: one more, the cat of du and dk for its log decays' adjoint). Prep's copies of inputs are the bf16 inputs
// themselves (chain-copies-lowrank.ts): their lines are filled by conversions, not float32 copies (DeltaNet's w = k and
// v: 19, 15, 16 before; Gated DeltaNet's v, its w' = exp(ld) w being float32: 20, 16, 17 before)
const WANT: Record<string, [number, number, number]> = { deltanet: [17, 13, 14], gated_deltanet: [19, 15, 16] };

describe.skipIf(!cpuTorch)("torch target: the low-rank backward's float32 copies per LR_EV_LINES (CPU torch, plans stubbed)", () => {
  it.each(Object.keys(WANT))("%s", (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dir = mkdtempSync(join(tmpdir(), "seqc-lowrank-copies-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const got: Record<string, Out> = {};
    for (const dy of ["strided", "contiguous"]) {
      const r = spawnSync("/usr/bin/python3", ["test/torch/lowrank_copies.py", dir, model.name, dy], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      got[dy] = JSON.parse(r.stdout.trim().split("\n").pop()!) as Out;
      for (const [k, same] of Object.entries(got[dy].equal)) expect(same, `${name} dY ${dy}: d${k} bitwise as "off"`).toBe(true);
      expect(got[dy].standinCalls, `${name}: the stand-ins ran`).toBeGreaterThan(0);
    }
    const sites = (p: Path) => Object.keys(p.sites).map((s) => s.replace(/:\d+$/, ""));
    expect([got.strided.off.copies, got.strided.on.copies, got.contiguous.on.copies], JSON.stringify(got)).toEqual(WANT[name]);
    // the sites gone: the key stack (ChunkCore), and of wy's events the q copy (and dy's where strided)
    expect(sites(got.strided.off).filter((s) => s.startsWith("stack"))).toHaveLength(1);
    expect(sites(got.strided.on).filter((s) => s.startsWith("stack"))).toHaveLength(0);
    expect(sites(got.strided.off).filter((s) => s.endsWith("seqc_lowrank_wy.py"))).toHaveLength(4);
    expect(sites(got.strided.on).filter((s) => s.endsWith("seqc_lowrank_wy.py"))).toHaveLength(2);
    expect(sites(got.contiguous.on).filter((s) => s.endsWith("seqc_lowrank_wy.py"))).toHaveLength(3);
  }, 120_000);
});
