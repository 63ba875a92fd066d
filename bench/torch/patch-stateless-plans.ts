// bench/torch/stateless-vec-run.sh's modules: the stateless plans (chain:prep, chain:prepBw, chain:postBw) of each model emitted
// now, with sm_90 PTX, in place of those of a built modules dir (the other plans and modules kept as built).
//   npx tsx bench/torch/patch-stateless-plans.ts <base dir> <out dir> deltanet,gated_deltanet,rwkv7,gla
import { cpSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { emitTorch } from "../../compiler/backends/torch/target.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";

const [base, out, models] = [resolve(process.argv[2]), resolve(process.argv[3]), process.argv[4].split(",")];
const nvcc = findNvcc()!;
mkdirSync(out, { recursive: true });
for (const name of models) {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const f = emitTorch(model, { ptx: false }).find((x) => x.path.endsWith(".torch.json"))!;
  const meta = JSON.parse(f.contents);
  const old = JSON.parse(readFileSync(join(base, f.path), "utf8"));
  for (const key of ["chain:prep", "chain:prepBw", "chain:postBw"]) {
    const plan = meta.plans[key];
    if (!plan) continue;
    const dir = mkdtempSync(join(tmpdir(), "seqc-e15-"));
    writeFileSync(join(dir, "k.cu"), plan.source);
    const t0 = Date.now();
    execFileSync("nice", [nvcc, "-ptx", "-arch=sm_90", "-std=c++17", "-diag-suppress", "177,550", "-o", join(dir, "k.ptx"), join(dir, "k.cu")], { stdio: "pipe" });
    plan.ptx = { "90": readFileSync(join(dir, "k.ptx"), "utf8") };
    rmSync(dir, { recursive: true, force: true });
    const was = old.plans[key]?.forms.map((x: { variant: string }) => x.variant) ?? [];
    const now = plan.forms.map((x: { variant: string }) => x.variant);
    console.log(name, key, `${((Date.now() - t0) / 1000).toFixed(1)} s`, "forms", was.length, "->", now.length, "new:", now.filter((v: string) => !was.includes(v)).join(" "), "gone:", was.filter((v: string) => !now.includes(v)).join(" "));
    old.plans[key] = plan;
  }
  writeFileSync(join(out, f.path), JSON.stringify(old));
  cpSync(join(base, f.path.replace(".torch.json", ".py")), join(out, f.path.replace(".torch.json", ".py")));
}
