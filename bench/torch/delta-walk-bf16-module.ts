/**
 * The reverse walks old and new side by side for the kernel-alone bench (bench/torch/delta_walk_bf16_bench.py, one card
 * call by bench/torch/delta-walk-bf16-run.sh): the walks the runtime takes today on the bf16-state path (`_zb`: the
 * 3xTF32 twin at K = 64, the 64-column 3xTF32 walk for many rows at K = 128, the fp32 split walks for few rows) and the
 * bf16 walks (delta-walk-bf16.ts DELTA_WALK_BF16_CONFIGS, win "mn" / "all") with a few neighbours (three buffer sets,
 * or two for the K = 128 few rows' walks, whose shipped ones have three since call W1; 16 columns over two warp groups
 * for few rows), scalar decay, C = 64, K = V = 64 and 128, as one module compiled to an
 * sm_90 cubin: { kernels: [{ entry, K, cols, threads, sharedBytes, label, win? }], cubin: { "90": base64 } }.
 *   npx tsx bench/torch/delta-walk-bf16-module.ts [out=dist/delta-walk-bf16.json]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DELTA_WALK_FEW_CONFIGS, DELTA_WALK_PRELUDE, deltaWalkKernel, deltaWalkSource } from "../../compiler/backends/cuda/delta-walk.ts";
import { DELTA_WALK_MMA_CONFIGS, DELTA_WALK_WIDE_CONFIGS, deltaWalkMmaKernel, deltaWalkMmaSource } from "../../compiler/backends/cuda/delta-walk-mma.ts";
import { DELTA_WALK_BF16_CONFIGS, DELTA_WALK_BF16_PRELUDE, deltaWalkBf16Kernel, deltaWalkBf16Source, type DeltaWalkBf16Config } from "../../compiler/backends/cuda/delta-walk-bf16.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";

const OUT = process.argv[2] ?? "dist/delta-walk-bf16.json";
let source = DELTA_WALK_PRELUDE + DELTA_WALK_BF16_PRELUDE;
const kernels: Record<string, unknown>[] = [];
// today's walks of the bf16-state path (zout)
for (const c of DELTA_WALK_FEW_CONFIGS) {
  const k = deltaWalkKernel({ ...c, zout: "bf16" });
  source += deltaWalkSource({ ...c, zout: "bf16" });
  kernels.push({ entry: k.entry, K: k.K, cols: k.cols, threads: k.threads, sharedBytes: k.sharedBytes, label: "old few" });
}
for (const c of [DELTA_WALK_MMA_CONFIGS[0], DELTA_WALK_WIDE_CONFIGS[0]]) {
  const k = deltaWalkMmaKernel({ ...c, zout: "bf16" });
  source += deltaWalkMmaSource({ ...c, zout: "bf16" });
  kernels.push({ entry: k.entry, K: k.K, cols: k.cols, threads: k.threads, sharedBytes: k.sharedBytes, label: "old many" });
}
const extra: DeltaWalkBf16Config[] = (["mn", "all"] as const).flatMap((win) => [
  { C: 64, K: 128, V: 128, cols: 8, win, stages: 2 as const, walkFor: "few" as const },  // (the shipped ones' three sets since W1)
  { C: 64, K: 128, V: 128, cols: 16, warpCols: 2, win, walkFor: "few" as const },
  { C: 64, K: 64, V: 64, cols: 8, win, stages: 3 as const, walkFor: "few" as const },
  { C: 64, K: 64, V: 64, cols: 16, win, walkFor: "many" as const },
  { C: 64, K: 64, V: 64, cols: 32, win, stages: 3 as const, walkFor: "many" as const },
]);
extra.push({ C: 64, K: 128, V: 128, cols: 64, warpCols: 2, win: "all", stages: 3, walkFor: "many" });
for (const [i, c] of [...DELTA_WALK_BF16_CONFIGS, ...extra].entries()) {
  const k = deltaWalkBf16Kernel(c);
  source += deltaWalkBf16Source(c);
  kernels.push({ entry: k.entry, K: k.K, cols: k.cols, threads: k.threads, sharedBytes: k.sharedBytes, win: c.win, label: `${i < DELTA_WALK_BF16_CONFIGS.length ? "new" : "cand"} ${c.walkFor} ${c.win}` });
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
