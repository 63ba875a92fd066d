/**
 * CUDA plans for the WGSL chunked benchmark (bench/webgpu/chunked.ts): the fp32 chunked variants of the six
 * benchmarked models at K = V = 64 and 128, compiled to sm_90 cubins here (the device has no nvcc).
 *   npx tsx bench/cuda/chunked/build-f32.ts   -> dist/chunked-f32-plans/<Model>.cuda.json ($SEQC_PLANS instead where set)
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../../../compiler/frontend/load.ts";
import { lowerCuda } from "../../../compiler/backends/cuda/plan.ts";
import { chunkedEligible, lowerChunked } from "../../../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc } from "../../../compiler/backends/cuda/nvcc.ts";

export const BENCH_MODELS = ["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"];
const OUT = process.env.SEQC_PLANS ?? "dist/chunked-f32-plans";
/** The variants built: $SEQC_BUILD_F32_VARIANTS (a regular expression) where set, else every fp32 variant of 16 or 32 values. */
const ONLY = new RegExp(process.env.SEQC_BUILD_F32_VARIANTS ?? "^chunked-(fused|split|split3)-f32-k(64|128)-v(32|16)-r[12]$");

const nvcc = findNvcc();
if (!nvcc) throw new Error("nvcc is needed to build the cubins");
mkdirSync(OUT, { recursive: true });
for (const name of process.argv[2]?.split(",") ?? BENCH_MODELS) {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const el = chunkedEligible(model);
  if (!el.ok) throw new Error(`${name}: ${el.why}`);
  const lc = lowerChunked(model, el, { only: (v) => ONLY.test(v) });
  const { plan } = lowerCuda(model);
  plan.forms = lc.forms;
  plan.modules = lc.modules;
  for (const [k, m] of Object.entries(lc.modules)) {
    const dir = mkdtempSync(join(tmpdir(), "seqc-cubin-"));
    try {
      writeFileSync(join(dir, "k.cu"), m.source);
      const r = spawnSync(nvcc, ["-cubin", "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", join(dir, "k.cubin"), join(dir, "k.cu")], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${name} ${k}: nvcc failed\n${r.stdout}${r.stderr}`);
      (m as { cubin?: Record<string, string> }).cubin = { "90": readFileSync(join(dir, "k.cubin")).toString("base64") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  writeFileSync(join(OUT, `${model.name}.cuda.json`), JSON.stringify(plan));
  console.log(`${model.name}: ${plan.forms.map((f) => f.variant).join(", ")}`);
}
