/**
 * The hgrn plan with every chain-scan configuration of CHAIN_SWEEP (bench only; shipped plans carry
 * CHAIN_CONFIGS), PTX for sm_90 built here with nvcc: dist/cuda-sweep/Hgrn.cuda.json ($SEQC_SWEEP_DIR instead where set).
 *   npx tsx bench/cuda/sweep-plan.ts [model.seq ...]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { lowerCuda } from "../../compiler/backends/cuda/plan.ts";
import { CHAIN_SWEEP } from "../../compiler/backends/cuda/pointwise-chain.ts";
import { nvccPtx } from "../../compiler/backends/cuda/nvcc.ts";

const files = process.argv.slice(2).length ? process.argv.slice(2) : ["stdlib/hgrn.seq"];
const out = process.env.SEQC_SWEEP_DIR ?? "dist/cuda-sweep";
mkdirSync(out, { recursive: true });
for (const f of files) {
  const model = loadProgram([f]).models[0];
  const { plan } = lowerCuda(model, { chainConfigs: CHAIN_SWEEP });
  // only the specialised pointwise variants: the generic ones are timed from the shipped plan
  plan.forms = plan.forms.filter((x) => x.variant.startsWith("pointwise-"));
  plan.ptx = { "90": nvccPtx(plan.source, 90).ptx };
  writeFileSync(join(out, `${model.name}.cuda.json`), JSON.stringify(plan) + "\n");
  if (process.env.SEQC_SWEEP_CU) writeFileSync(join(out, `${model.name}.cu`), plan.source);
  console.log(`${model.name}: ${plan.forms.map((x) => x.variant).join(", ")}`);
}
