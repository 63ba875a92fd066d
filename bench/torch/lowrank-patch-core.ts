/**
 * A module directory built before (bench/torch/build-chunked.ts) with only the fused chunk kernels replaced: each
 * <Model>.torch.json's "kernels"."lowRankCore" rebuilt from this tree's compiler/backends/cuda/lowrank-core.ts (the
 * configurations of the decay modes it had; source, kernels and an sm_90 cubin by nvcc), "kernels"."lowRankReadout"
 * from compiler/backends/cuda/lowrank-readout.ts (the configurations chain-plans-lowrank.ts gives the model's chain,
 * added where the build had none; LR_READ_LOADS=vec4: float4-load twins for every decay mode, =scalar: scalar loads for
 * every decay mode, unset: the shipped mix, LOWRANK_READ_LOADS) and runtime/torch/
 * seqc_chunked_lowrank.py copied from this tree; every other file and JSON field as it was. For an A/B run of the kernel
 * alone (bench/torch/lowrank_kernel_bench.py, lowrank-run.sh) without rebuilding the chunked plans (minutes of nvcc).
 *
 *   npx tsx bench/torch/lowrank-patch-core.ts <built dir> <out dir>
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOWRANK_CORE_CONFIGS, lowRankCoreModule, type LowRankCoreKernel } from "../../compiler/backends/cuda/lowrank-core.ts";
import { LOWRANK_READ_CONFIGS, LOWRANK_READ_SCALAR_CONFIGS, LOWRANK_READ_VEC4_CONFIGS, lowRankReadModule } from "../../compiler/backends/cuda/lowrank-readout.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";

const [SRC, OUT] = process.argv.slice(2);
if (!SRC || !OUT) throw new Error("usage: lowrank-patch-core.ts <built dir> <out dir>");
const nvcc = findNvcc();
if (!nvcc) throw new Error("nvcc is needed to build the cubin");

function cubin(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), "seqc-lrpatch-"));
  try {
    writeFileSync(join(dir, "k.cu"), source);
    const r = spawnSync("nice", [nvcc!, "-cubin", "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", join(dir, "k.cubin"), join(dir, "k.cu")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`nvcc failed:\n${r.stderr}`);
    return readFileSync(join(dir, "k.cubin")).toString("base64");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function copyTree(a: string, b: string): void {
  mkdirSync(b, { recursive: true });
  for (const f of readdirSync(a)) {
    if (statSync(join(a, f)).isDirectory()) copyTree(join(a, f), join(b, f));
    else if (!f.endsWith(".torch.json")) copyFileSync(join(a, f), join(b, f));
  }
}

copyTree(SRC, OUT);
copyFileSync(join(import.meta.dirname, "../../runtime/torch/seqc_chunked_lowrank.py"), join(OUT, "seqc_chunked_lowrank.py"));
for (const f of readdirSync(SRC).filter((x) => x.endsWith(".torch.json"))) {
  const meta = JSON.parse(readFileSync(join(SRC, f), "utf8")) as { kernels?: Record<string, { kernels: LowRankCoreKernel[] | object[]; source: string; cubin?: Record<string, string> }>; chunked?: { lowRank?: { decay: string; E: number; P: number; R: number } } };
  const old = meta.kernels?.lowRankCore;
  if (old) {
    const modes = new Set((old.kernels as LowRankCoreKernel[]).map((k) => k.decay));
    const m = lowRankCoreModule(LOWRANK_CORE_CONFIGS.filter((c) => modes.has(c.decay)));
    meta.kernels!.lowRankCore = { ...m, cubin: { "90": cubin(m.source) } };
    console.log(`${f}: lowRankCore ${m.kernels.map((k) => `${k.entry} ${k.sharedBytes} B`).join(", ")}`);
  }
  const lr = meta.chunked?.lowRank;
  const reads = lr ? (process.env.LR_READ_LOADS === "vec4" ? LOWRANK_READ_VEC4_CONFIGS : process.env.LR_READ_LOADS === "scalar" ? LOWRANK_READ_SCALAR_CONFIGS : LOWRANK_READ_CONFIGS).filter((c) => c.decay === lr.decay && c.M === lr.E + lr.P && c.M === lr.E + lr.R) : [];
  if (reads.length) {
    const m = lowRankReadModule(reads);
    meta.kernels = { ...meta.kernels, lowRankReadout: { ...m, cubin: { "90": cubin(m.source) } } };
    console.log(`${f}: lowRankReadout ${m.kernels.map((k) => `${k.entry} ${k.sharedBytes} B`).join(", ")}`);
  }
  writeFileSync(join(OUT, f), JSON.stringify(meta) + "\n");
}
