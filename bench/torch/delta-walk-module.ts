/**
 * The delta backward's walks side by side for the kernel-alone bench (bench/torch/delta_walk_bench.py, one card call by
 * bench/torch/delta-walk-run.sh): today's walks (fp32 default and few-rows split ones, the 3xTF32 twins) and the wider
 * twins (delta-walk-mma.ts warpCols / ilp: the shipped DELTA_WALK_WIDE_CONFIGS and neighbours: other column counts, warp
 * groups, one accumulator set, two sets of buffers, plain TF32), scalar decay, C = 64, K = V = 64 and 128, as one module compiled to an sm_90
 * cubin: { kernels: [{ entry, K, cols, threads, sharedBytes, math?, split?, walkFor?, label }], cubin: { "90": base64 } }.
 *   npx tsx bench/torch/delta-walk-module.ts [out=dist/delta-walk-b14.json]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DELTA_WALK_CONFIGS, DELTA_WALK_FEW_CONFIGS, DELTA_WALK_PRELUDE, deltaWalkKernel, deltaWalkSource } from "../../compiler/backends/cuda/delta-walk.ts";
import { DELTA_WALK_MMA_CONFIGS, deltaWalkMmaKernel, deltaWalkMmaSource, type DeltaWalkMmaConfig } from "../../compiler/backends/cuda/delta-walk-mma.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";

const OUT = process.argv[2] ?? "dist/delta-walk-b14.json";
const x3 = "tf32x3" as const, t1 = "tf32" as const;
// the seven configurations call B14 timed as "new" (DELTA_WALK_WIDE_CONFIGS then; the module keeps the first of the "many"
// 64-column ones without ilp since: `candidate` below)
const WIDE: DeltaWalkMmaConfig[] = [
  { C: 64, K: 64, V: 64, cols: 32, warpCols: 2, ilp: true, math: x3, walkFor: "many" },
  { C: 64, K: 64, V: 64, cols: 16, warpCols: 2, ilp: true, math: x3 },
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 2, ilp: true, math: x3, walkFor: "many" },
  { C: 64, K: 128, V: 128, cols: 16, warpCols: 2, ilp: true, math: x3 },
  { C: 64, K: 64, V: 64, cols: 64, warpCols: 2, ilp: true, stages: 2, math: x3, walkFor: "many" },
  { C: 64, K: 64, V: 64, cols: 16, warpCols: 2, ilp: true, stages: 2, math: x3 },
  { C: 64, K: 128, V: 128, cols: 16, warpCols: 2, ilp: true, stages: 2, math: x3 },
];
const FEW = new Set([1, 3, 5, 6]); // WIDE's "few" ones (labels)
// neighbours of the shipped wide twins (label: what differs)
const extra: DeltaWalkMmaConfig[] = [
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 2, math: x3 },             // one accumulator set
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 4, ilp: true, math: x3 },  // 16 warps
  { C: 64, K: 128, V: 128, cols: 32, warpCols: 2, ilp: true, math: x3 },  // 256 blocks at B H = 64
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 2, ilp: true, math: t1 },  // plain TF32
  { C: 64, K: 128, V: 128, cols: 8, ilp: true, math: x3 },                // few rows: 4 warps, 8 columns
  { C: 64, K: 128, V: 128, cols: 32, warpCols: 4, ilp: true, math: x3 },  // few rows: 16 warps
  { C: 64, K: 128, V: 128, cols: 16, warpCols: 2, math: x3 },             // few rows, one accumulator set
  { C: 64, K: 128, V: 128, cols: 16, warpCols: 2, ilp: true, math: t1 },  // few rows, plain TF32
  { C: 64, K: 64, V: 64, cols: 64, warpCols: 2, ilp: true, math: x3 },
  { C: 64, K: 64, V: 64, cols: 64, warpCols: 4, ilp: true, math: x3 },
  { C: 64, K: 64, V: 64, cols: 32, ilp: true, math: x3 },
  { C: 64, K: 64, V: 64, cols: 32, warpCols: 2, ilp: true, math: t1 },
  { C: 64, K: 64, V: 64, cols: 8, ilp: true, math: x3 },
  { C: 64, K: 128, V: 128, cols: 8, ilp: true, stages: 2, math: x3 },                // few rows: 4 warps, two sets
  { C: 64, K: 128, V: 128, cols: 32, warpCols: 2, ilp: true, stages: 2, math: x3 },  // 256 blocks at B H = 64, two sets
  { C: 64, K: 128, V: 128, cols: 32, warpCols: 4, ilp: true, stages: 2, math: x3 },  // 16 warps, two sets
  { C: 64, K: 128, V: 128, cols: 16, warpCols: 2, ilp: true, stages: 2, math: t1 },  // few rows, two sets, plain TF32
  { C: 64, K: 64, V: 64, cols: 32, warpCols: 2, ilp: true, stages: 2, math: x3 },
  { C: 64, K: 64, V: 64, cols: 8, ilp: true, stages: 2, math: x3 },
];
const fp = [...DELTA_WALK_CONFIGS, ...DELTA_WALK_FEW_CONFIGS];
const mma = [...DELTA_WALK_MMA_CONFIGS, ...WIDE, ...extra];
let source = DELTA_WALK_PRELUDE;
const kernels: Record<string, unknown>[] = [];
for (const c of fp) {
  const k = deltaWalkKernel(c);
  source += deltaWalkSource(c);
  kernels.push({ entry: k.entry, K: k.K, cols: k.cols, threads: k.threads, sharedBytes: k.sharedBytes, ...(k.split > 1 ? { split: k.split } : {}), label: k.split > 1 ? "old fp32 few" : "old fp32" });
}
for (const [i, c] of mma.entries()) {
  const k = deltaWalkMmaKernel(c);
  source += deltaWalkMmaSource(c);
  const w = i - DELTA_WALK_MMA_CONFIGS.length;
  const label = w < 0 ? "old twin" : w < WIDE.length ? `new ${FEW.has(w) ? "few" : "many"}` : "candidate";
  kernels.push({ entry: k.entry, K: k.K, cols: k.cols, threads: k.threads, sharedBytes: k.sharedBytes, math: k.math, ...(w >= 0 && w < WIDE.length ? { walkFor: FEW.has(w) ? "few" : "many" } : {}), label });
}
const nvcc = findNvcc();
if (!nvcc) throw new Error("nvcc is needed");
const dir = mkdtempSync(join(tmpdir(), "seqc-walks-"));
try {
  writeFileSync(join(dir, "k.cu"), source);
  const log = execFileSync(nvcc, ["-cubin", "-arch=sm_90", "-std=c++17", "-Xptxas", "-v", "-diag-suppress", "177,550", "-o", join(dir, "k.cubin"), join(dir, "k.cu")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (/[1-9]\d* bytes spill/.test(log)) throw new Error(`spills:\n${log}`);
  writeFileSync(OUT, JSON.stringify({ source, kernels, cubin: { "90": readFileSync(join(dir, "k.cubin")).toString("base64") } }));
  console.log(`${OUT}: ${kernels.length} walks`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
