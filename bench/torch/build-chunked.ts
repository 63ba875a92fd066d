/**
 * The torch modules for the chunked-backward GPU run (bench/torch/chunked-run.sh): per model the generated
 * <Model>.py and <Model>.torch.json (`seqc compile --target torch`, the chain's plans included), with every
 * module of the plans compiled to an sm_90 cubin here and the plans' single-unit sources to sm_90 PTX (the
 * device has no nvcc; cubins spare the driver's JIT of the ~1 MB chunked modules there), plus the float64
 * reference data of bench/torch/make-reference.ts in <out>/ref.
 *   npx tsx bench/torch/build-chunked.ts [out=dist/torch-chunked] [models=simple_gla,gla,linear_attention,retnet,mamba2] [cache dirs,...]
 * Cubins and PTX already built for the same source in <out> or the cache dirs' <Model>.torch.json are reused; the
 * rest compile two at a time. The bf16 modules of a decayed model's transposed cores (chain:coreT, chain:adjointT)
 * are left without an image: bf16 tensors run those cores on their bf16-of32 modules (bf16 in, fp32 out;
 * seqc_chunked.TRANSPOSED_IO "mixed") or in fp32 ("f32"), never with bf16 outputs.
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { emitTorch } from "../../compiler/backends/torch/target.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";
import type { CudaModelPlan } from "../../runtime/cuda/plan.ts";
import { reference } from "./make-reference.ts";

const OUT = process.argv[2] ?? "dist/torch-chunked";
const MODELS = (process.argv[3] ?? "simple_gla,gla,linear_attention,retnet,mamba2").split(",");
const nvcc = findNvcc();
if (!nvcc) throw new Error("nvcc is needed to build the cubins");

async function nvccOut(source: string, what: string, kind: "cubin" | "ptx"): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "seqc-cubin-"));
  try {
    writeFileSync(join(dir, "k.cu"), source);
    const out = join(dir, `k.${kind}`);
    const r = await new Promise<{ code: number; text: string }>((resolve) => {
      const p = spawn("nice", [nvcc!, `-${kind}`, "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", out, join(dir, "k.cu")]);
      let text = "";
      p.stdout.on("data", (d) => (text += d));
      p.stderr.on("data", (d) => (text += d));
      p.on("close", (code) => resolve({ code: code ?? 1, text }));
    });
    if (r.code !== 0) throw new Error(`${what}: nvcc failed\n${r.text}`);
    return kind === "cubin" ? readFileSync(out).toString("base64") : readFileSync(out, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Built = { source: string; ptx?: Record<string, string>; cubin?: Record<string, string>; modules?: Record<string, Built> };
/** Images built before, by source: cubins of modules, sm_90 PTX of plans. */
const cache = { cubin: new Map<string, string>(), ptx: new Map<string, string>() };
for (const dir of [OUT, ...(process.argv[4]?.split(",") ?? [])]) {
  if (!existsSync(dir)) continue;
  for (const name of MODELS) {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const f = join(dir, `${model.name}.torch.json`);
    if (!existsSync(f)) continue;
    const meta = JSON.parse(readFileSync(f, "utf8")) as { plans: Record<string, Built> };
    for (const km of Object.values((meta as { kernels?: Record<string, Built> }).kernels ?? {})) if (km.cubin?.["90"]) cache.cubin.set(km.source, km.cubin["90"]);
    for (const plan of Object.values(meta.plans)) {
      if (plan.ptx?.["90"]) cache.ptx.set(plan.source, plan.ptx["90"]);
      for (const m of Object.values(plan.modules ?? {})) if (m.cubin?.["90"]) cache.cubin.set(m.source, m.cubin["90"]);
    }
  }
}

mkdirSync(join(OUT, "ref"), { recursive: true });
for (const name of MODELS) {
  const t0 = Date.now();
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  for (const f of emitTorch(model, { ptx: false })) {
    if (!f.path.endsWith(".torch.json")) { writeFileSync(join(OUT, f.path), f.contents); continue; }
    const meta = JSON.parse(f.contents) as { plans: Record<string, CudaModelPlan>; chunked: { names?: { ld?: string } } };
    const jobs: (() => Promise<void>)[] = [];
    let built = 0, reused = 0, skipped = 0;
    for (const [key, plan] of Object.entries(meta.plans)) {
      if (plan.forms.some((x) => !x.module)) {
        const hit = cache.ptx.get(plan.source);
        if (hit) { plan.ptx = { "90": hit }; reused++; } else jobs.push(async () => { plan.ptx = { "90": await nvccOut(plan.source, `${name} ${key}`, "ptx") }; built++; });
      }
      for (const [k, m] of Object.entries(plan.modules ?? {})) {
        if (k === "bf16" && meta.chunked.names?.ld && (key === "chain:coreT" || key === "chain:adjointT")) { skipped++; continue; }
        const hit = cache.cubin.get(m.source);
        const mm = m as { cubin?: Record<string, string> };
        if (hit) { mm.cubin = { "90": hit }; reused++; } else jobs.push(async () => { mm.cubin = { "90": await nvccOut(m.source, `${name} ${key} ${k}`, "cubin") }; built++; });
      }
    }
    // the model-independent kernel modules (a per-key decay's rows readout: compiler/backends/torch/chain-plans.ts), as cubins
    for (const [k, km] of Object.entries((meta as { kernels?: Record<string, Built> }).kernels ?? {})) {
      const hit = cache.cubin.get(km.source);
      if (hit) { km.cubin = { "90": hit }; reused++; } else jobs.push(async () => { km.cubin = { "90": await nvccOut(km.source, `${name} kernels ${k}`, "cubin") }; built++; });
    }
    await Promise.all(Array.from({ length: 2 }, async () => { for (let j = jobs.shift(); j; j = jobs.shift()) await j(); }));
    writeFileSync(join(OUT, f.path), JSON.stringify(meta) + "\n");
    console.log(`${model.name}: ${built} images built, ${reused} reused, ${skipped} bf16 modules of transposed cores left out`);
  }
  const cases = [await reference(name, 2, 37, 11), await reference(name, 3, 1, 12)];
  writeFileSync(join(OUT, "ref", `${name}.json`), JSON.stringify(cases));
  console.log(`${model.name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
