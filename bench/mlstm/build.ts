/**
 * Builds what the GPU run of mLSTM's chunked form needs (bench/mlstm/run.sh): the CUDA plan with its sequential
 * forms and the chunked variants the run uses, every module compiled to an sm_90 cubin here (no NVRTC there).
 *   npx tsx bench/mlstm/build.ts   -> dist/mlstm/Mlstm.cuda.json
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { lowerCuda } from "../../compiler/backends/cuda/plan.ts";
import { findNvcc, nvccPtx } from "../../compiler/backends/cuda/nvcc.ts";
import { chunkedEligible, lowerChunked } from "../../compiler/backends/cuda/chunked-plan.ts";

export const VARIANTS = [
  "chunked-fused-f32-k32-v16-r1", "chunked-fused-bf16-k32-v32-r1",
  "chunked-fused-f32-k64-v32-r1", "chunked-fused-f32-k64-v16-r1", "chunked-fused-bf16-k64-v64-r1", "chunked-fused-bf16-k64-v32-r1",
  "chunked-fused-f32-k128-v32-r1", "chunked-fused-f32-k128-v16-r1", "chunked-fused-bf16-k128-v64-r1", "chunked-fused-bf16-k128-v32-r1",
];

if (/build\.ts$/.test(process.argv[1] ?? "")) {
  const nvcc = findNvcc();
  if (!nvcc) throw new Error("nvcc is needed to build the cubins");
  const model = loadProgram(["stdlib/mlstm.seq"]).models[0];
  const { plan } = lowerCuda(model);
  const el = chunkedEligible(model);
  if (!el.ok) throw new Error(el.why);
  const ch = lowerChunked(model, el, { only: (v) => VARIANTS.includes(v) });
  plan.forms = [...ch.forms, ...plan.forms.filter((f) => f.form !== "chunked")];
  plan.modules = ch.modules;
  plan.ptx = { "90": nvccPtx(plan.source, 90, nvcc).ptx };
  for (const [k, m] of Object.entries(plan.modules)) {
    const dir = mkdtempSync(join(tmpdir(), "seqc-mlstm-"));
    try {
      writeFileSync(join(dir, "k.cu"), m.source);
      execFileSync(nvcc, ["-cubin", "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", join(dir, "k.cubin"), join(dir, "k.cu")], { stdio: "pipe" });
      m.cubin = { "90": readFileSync(join(dir, "k.cubin")).toString("base64") };
      console.log(`module ${k}: ${(readFileSync(join(dir, "k.cubin")).length / 1024).toFixed(0)} KiB`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  mkdirSync("dist/mlstm", { recursive: true });
  writeFileSync("dist/mlstm/Mlstm.cuda.json", JSON.stringify(plan));
  console.log(`forms: ${plan.forms.map((f) => `${f.form}/${f.variant}`).join(", ")}`);
}
