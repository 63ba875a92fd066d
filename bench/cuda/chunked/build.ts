/**
 * Builds what the GPU run of the chunked form needs, here (the device has no npm and no time to spare):
 * per model a CUDA plan with only the chunked variants the check and the benchmark use, their modules
 * compiled to sm_90 cubins (no PTX JIT at load), and the resource usage nvcc reports (registers, spills).
 *   npx tsx bench/cuda/chunked/build.ts   -> dist/chunked-plans/<Model>.cuda.json (+ .resources.txt)
 * SEQC_PLANS=<dir> writes there instead. SEQC_BUILD_MODELS=gla,... builds only those models; SEQC_BUILD_VARIANTS=<regexp> keeps only the variants it
 * matches (run 6: the bf16 variants at K = 64 and 128, so every variant auto may pick at the benchmark shapes).
 * SEQC_NVCC_FLAGS='-DNAME=value ...' passes extra flags to nvcc (run 10: the walks' L2 prefetch distance, SEQC_WALK_PF).
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../../../compiler/frontend/load.ts";
import { lowerCuda } from "../../../compiler/backends/cuda/plan.ts";
import { chunkedEligible, lowerChunked } from "../../../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc } from "../../../compiler/backends/cuda/nvcc.ts";

export const MODELS = ["linear_attention", "retnet", "simple_gla", "mamba2", "gla", "deltanet", "gated_deltanet", "gated_deltaproduct", "rwkv7"];
const OUT = process.env.SEQC_PLANS ?? "dist/chunked-plans";
const extraFlags = (process.env.SEQC_NVCC_FLAGS ?? "").split(/\s+/).filter(Boolean);

/** Variants the check and the benchmark run, per model. */
export function variantsFor(name: string): string[] {
  const rs = name === "gated_deltaproduct" ? [1, 2, 4] : name === "rwkv7" ? [2] : [1];
  const v: string[] = [];
  for (const r of rs) {
    v.push(`chunked-fused-f32-k32-v16-r${r}`, `chunked-split-f32-k32-v16-r${r}`, `chunked-split3-f32-k32-v16-r${r}`);
    v.push(`chunked-fused-f16-k32-v32-r${r}`, `chunked-split-f16-k32-v16-r${r}`, `chunked-split3-f16-k32-v16-r${r}`);
    v.push(`chunked-fused-bf16-k32-v32-r${r}`, `chunked-split-bf16-k32-v16-r${r}`, `chunked-split3-bf16-k32-v16-r${r}`);
    v.push(`chunked-splitd-f32-k32-v16-r${r}`, `chunked-splitd-bf16-k32-v16-r${r}`);
    for (const k of [64, 128]) {
      for (const x of ["fused-bf16-k%-v64", "fused-bf16-k%-v32"]) v.push(`chunked-${x.replace("%", String(k))}-r${r}`);
      // split and split3 with 64-, 32- and 16-value walks (split3 at K = 128 also 8), phase A with 256 threads and
      // (where the plan has it) more
      // (splitd: split whose walk reads q and the key rows from the inputs; scalar or no decay; -iw: low rank's
      // inverse by warp products, -mw: the per-key decay's block pairs by warp tasks)
      // (split3 with low rank also -wk / -wc / -wk-w512: Z = U0 + M S0 split-K over every warp, or the next record's
      // copies on the warps without a Z tile; split also -w512, its walk on 16 warps, and -wq-w512, that walk with Q~ S0
      // formed beside Z; the plan has them only where they apply; -iw-io / -iw-ios: the -iw phase A with the record's
      // copies and alpha v's load beside the inverse, chunked-phase-a-ovl.ts, -iw-ios-gf: with a scalar decay's prefix
      // beside the load's scale pass; -vi / -vi-w512 / -vib-w512: split without low rank whose record leaves out
      // alpha v, the walk copying it from the inputs, chunked-split-vin.ts; -iw-ios[-gf]-qi / -qxi: low rank's record
      // without Q~ / without Q~ and X~, the walk copying q / q and the key rows from the inputs, chunked-split-qin.ts;
      // -wc-w512: split's low-rank walk with the next record's copies on the warps without a Z tile; -iw-ios[-gf]-nb:
      // the inverse's warps and the helpers on their own named barriers, chunked-phase-a-nbar.ts)
      for (const kind of ["split", "split3", "splitd"])
        for (const bv of kind === "split3" && k === 128 ? [64, 32, 16, 8] : [64, 32, 16])
          for (const a of ["", "-a384", "-a512", "-a768"])
            for (const iw of ["", "-iw", "-mw", "-iw-io", "-iw-ios", "-iw-ios-gf", "-iw-ios-qi", "-iw-ios-qxi", "-iw-ios-gf-qi", "-iw-ios-gf-qxi", "-iw-ios-nb", "-iw-ios-gf-nb", "-iw-ios-nb-qi", "-iw-ios-nb-qxi", "-iw-ios-gf-nb-qxi"])
              for (const ws of kind === "split3" ? ["", "-wk", "-wc", "-wk-w512"] : kind === "split" ? ["", "-w512", "-wq-w512", "-vi", "-vi-w512", "-vib-w512", "-wc-w512"] : [""]) v.push(`chunked-${kind}-bf16-k${k}-v${bv}${a}${iw}${ws}-r${r}`);
      // phase A software-pipelined (-ap<M>: up to M items a block, the next item's rows copied while the current one is
      // computed; low rank with a scalar or no decay at K = 64, after an -iw phase A)
      if (k === 64)
        for (const kind of ["split", "split3"])
          for (const bv of [64, 32, 16])
            for (const a of ["", "-a384", "-a512"]) for (const m of [2, 4, 8, 16]) v.push(`chunked-${kind}-bf16-k${k}-v${bv}${a}-iw-ap${m}-r${r}`);
      // grouped split3 (-g<G>: G groups of chunks walked in parallel, then the carry; diagonal chunk transitions;
      // -g<G>t: the carry's S_in in the operand type; -g<G>t<M>: and the readout over runs of M chunks)
      for (const bv of k === 128 ? [64, 32, 16, 8] : [64, 32, 16])
        for (const a of ["", "-a512"])
          for (const iw of ["", "-mw"])
            for (const g of [2, 4, 8, 16]) for (const t of ["", "t", "t4", "t8"]) v.push(`chunked-split3-bf16-k${k}-v${bv}${a}${iw}-g${g}${t}-r${r}`);
    }
  }
  return v;
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

async function main() {
  const nvcc = findNvcc();
  if (!nvcc) throw new Error("nvcc is needed to build the cubins");
  mkdirSync(OUT, { recursive: true });
  const jobs: (() => Promise<void>)[] = [];
  const models = process.env.SEQC_BUILD_MODELS?.split(",") ?? MODELS;
  const keep = process.env.SEQC_BUILD_VARIANTS ? new RegExp(process.env.SEQC_BUILD_VARIANTS) : undefined;
  for (const name of MODELS.filter((m) => models.includes(m))) {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const el = chunkedEligible(model);
    if (!el.ok) throw new Error(`${name}: ${el.why}`);
    const want = new Set(variantsFor(name).filter((v) => !keep || keep.test(v)));
    const lc = lowerChunked(model, el, { only: (v) => want.has(v) });
    const { plan } = lowerCuda(model);
    plan.forms = lc.forms;
    plan.modules = lc.modules;
    const resources: string[] = [];
    const modJobs = Object.entries(lc.modules).map(([k, m]) => async () => {
      const dir = mkdtempSync(join(tmpdir(), "seqc-cubin-"));
      try {
        writeFileSync(join(dir, "k.cu"), m.source);
        const r = await run(nvcc, ["-cubin", "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "--resource-usage", ...extraFlags, "-o", join(dir, "k.cubin"), join(dir, "k.cu")]);
        if (r.code !== 0) throw new Error(`${name} ${k}: nvcc failed\n${r.out}`);
        (m as { cubin?: Record<string, string> }).cubin = { "90": readFileSync(join(dir, "k.cubin")).toString("base64") };
        resources.push(`== ${k}\n${r.out}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    let left = modJobs.length;
    for (const j of modJobs)
      jobs.push(async () => {
        await j();
        if (--left === 0) {
          writeFileSync(join(OUT, `${model.name}.cuda.json`), JSON.stringify(plan));
          writeFileSync(join(OUT, `${model.name}.resources.txt`), resources.join("\n"));
          console.log(`${model.name}: ${plan.forms.length} chunked variants, modules ${Object.keys(lc.modules).join(", ")}`);
        }
      });
  }
  // two nvcc at a time
  const workers = Array.from({ length: 2 }, async () => {
    for (let j = jobs.shift(); j; j = jobs.shift()) await j();
  });
  await Promise.all(workers);
}

if (process.argv[1]?.endsWith("build.ts")) await main();
