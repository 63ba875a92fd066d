/**
 * The torch modules for the chunked-backward GPU run (bench/torch/chunked-run.sh): per model the generated
 * <Model>.py and <Model>.torch.json (`seqc compile --target torch`, the chain's plans included), with every
 * module of the plans compiled to an sm_90 cubin here and the plans' single-unit sources to sm_90 PTX (the
 * device has no nvcc; cubins spare the driver's JIT of the ~1 MB chunked modules there), plus the float64
 * reference data of bench/torch/make-reference.ts in <out>/ref.
 *   npx tsx bench/torch/build-chunked.ts [out=dist/torch-chunked] [models=simple_gla,gla,linear_attention,retnet,mamba2]
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { emitTorch } from "../../compiler/backends/torch/target.ts";
import { findNvcc, nvccPtx } from "../../compiler/backends/cuda/nvcc.ts";
import type { CudaModelPlan } from "../../runtime/cuda/plan.ts";
import { reference } from "./make-reference.ts";

const OUT = process.argv[2] ?? "dist/torch-chunked";
const MODELS = (process.argv[3] ?? "simple_gla,gla,linear_attention,retnet,mamba2").split(",");
const nvcc = findNvcc();
if (!nvcc) throw new Error("nvcc is needed to build the cubins");

function cubin(source: string, what: string): string {
  const dir = mkdtempSync(join(tmpdir(), "seqc-cubin-"));
  try {
    writeFileSync(join(dir, "k.cu"), source);
    const r = spawnSync("nice", [nvcc!, "-cubin", "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", join(dir, "k.cubin"), join(dir, "k.cu")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${what}: nvcc failed\n${r.stdout}${r.stderr}`);
    return readFileSync(join(dir, "k.cubin")).toString("base64");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

mkdirSync(join(OUT, "ref"), { recursive: true });
for (const name of MODELS) {
  const t0 = Date.now();
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  for (const f of emitTorch(model, { ptx: false })) {
    if (!f.path.endsWith(".torch.json")) { writeFileSync(join(OUT, f.path), f.contents); continue; }
    const meta = JSON.parse(f.contents) as { plans: Record<string, CudaModelPlan> };
    for (const [key, plan] of Object.entries(meta.plans)) {
      if (plan.forms.some((x) => !x.module)) plan.ptx = { "90": nvccPtx(plan.source, 90, nvcc, { lowPriority: true }).ptx };
      for (const [k, m] of Object.entries(plan.modules ?? {})) (m as { cubin?: Record<string, string> }).cubin = { "90": cubin(m.source, `${name} ${key} ${k}`) };
    }
    writeFileSync(join(OUT, f.path), JSON.stringify(meta) + "\n");
  }
  const cases = [await reference(name, 2, 37, 11), await reference(name, 3, 1, 12)];
  writeFileSync(join(OUT, "ref", `${name}.json`), JSON.stringify(cases));
  console.log(`${model.name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
