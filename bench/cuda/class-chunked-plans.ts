/**
 * The CUDA plans bench/cuda/class-chunked.ts runs on the GPU machine (no nvcc there): per model, what
 * `seqc compile --target cuda` writes (<Model>.cuda.json and <Model>.grad.cuda.json with the chunked backward
 * chain's plans under `chunked`), with float32 forms only (the forward's chunked variants cut to those the
 * runner's auto pick reaches, as the chain's cores are: compiler/backends/cuda/training-chain.ts), main
 * translation units as sm_90 PTX and modules as sm_90 cubins (loaded without a JIT).
 *   npx tsx bench/cuda/class-chunked-plans.ts <out dir> simple_gla mamba2 deltanet
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { emitCuda } from "../../compiler/backends/cuda/target.ts";
import { chunkedOnlyPlan } from "../../compiler/backends/cuda/training-chain.ts";
import { keepForms } from "../../compiler/backends/torch/plans.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";
import type { CudaModelPlan } from "../../runtime/cuda/plan.ts";
import type { CudaTrainingPlans } from "../../runtime/trainer.ts";

const nvcc = findNvcc();
if (!nvcc) throw new Error("nvcc is needed to build the PTX and cubins");
const [out, ...names] = process.argv.slice(2);
mkdirSync(out, { recursive: true });

/** nvcc on `source` (-ptx or -cubin, sm_90); two at a time. */
let running = 0;
const waiting: (() => void)[] = [];
async function nvccOut(source: string, kind: "ptx" | "cubin"): Promise<Buffer> {
  while (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  const dir = mkdtempSync(join(tmpdir(), "seqc-class-chunked-"));
  try {
    writeFileSync(join(dir, "k.cu"), source);
    const code = await new Promise<number>((res) => spawn(nvcc!, [`-${kind}`, "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", join(dir, `k.${kind}`), join(dir, "k.cu")], { stdio: "inherit" }).on("exit", (c) => res(c ?? 1)));
    if (code !== 0) throw new Error(`nvcc -${kind} failed`);
    return readFileSync(join(dir, `k.${kind}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    running--;
    waiting.shift()?.();
  }
}

async function build(p: CudaModelPlan): Promise<CudaModelPlan> {
  const jobs: Promise<void>[] = [];
  if (p.forms.some((f) => !f.module)) jobs.push(nvccOut(p.source, "ptx").then((b) => void (p.ptx = { "90": b.toString("utf8") })));
  for (const m of Object.values(p.modules ?? {})) jobs.push(nvccOut(m.source, "cubin").then((b) => void ((m as { cubin?: Record<string, string> }).cubin = { "90": b.toString("base64") })));
  await Promise.all(jobs);
  return p;
}

for (const name of names) {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const files = emitCuda(model, { ptx: false });
  const fwd = keepForms(JSON.parse(files.find((f) => f.path === `${model.name}.cuda.json`)!.contents), "auto");
  const chunked = chunkedOnlyPlan(model, fwd);
  if ("why" in chunked) throw new Error(chunked.why);
  const forward: CudaModelPlan = { ...fwd, forms: [...chunked.forms, ...fwd.forms.filter((f) => f.form !== "chunked")], modules: chunked.modules };
  const grad = JSON.parse(files.find((f) => f.path === `${model.name}.grad.cuda.json`)!.contents) as CudaTrainingPlans;
  if (!grad.chunked || "unavailable" in grad.chunked) throw new Error(`${model.name}: no chunked backward chain: ${grad.chunked && "unavailable" in grad.chunked ? grad.chunked.unavailable : "absent"}`);
  const t0 = performance.now();
  await Promise.all([forward, grad.record, grad.backward, ...Object.values(grad.passes ?? {}), ...Object.values(grad.chunked.plans)].map((p) => build(p as CudaModelPlan)));
  writeFileSync(join(out, `${model.name}.cuda.json`), JSON.stringify(forward));
  writeFileSync(join(out, `${model.name}.grad.cuda.json`), JSON.stringify(grad));
  console.log(`${model.name}: built in ${((performance.now() - t0) / 1000).toFixed(0)} s; forward ${forward.forms.length} forms, chain parts ${Object.keys(grad.chunked.plans).join(", ")}`);
}
