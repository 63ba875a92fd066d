/**
 * The CUDA backend's form choice for a shape, for `seqc explain --shape`: the same rule the runtime
 * applies (runtime/cuda/runner.ts pick: the first variant in plan order that can run the shape and whose
 * `prefer` holds), evaluated with the H100's limits from capabilities.ts unless the shape names others.
 */
import type { Model } from "../../ir/types.ts";
import type { FormChoice } from "../index.ts";
import { evalSize, type Env } from "../../../runtime/plan.ts";
import { lowerCuda } from "./plan.ts";
import { CUDA_CAPABILITIES } from "./capabilities.ts";

/** Multiprocessors the choice assumes when the shape does not say (H100 SXM). */
export const DEFAULT_SMS = 132;

export function chooseCudaForm(model: Model, shape: Record<string, number>, dtype: "f32" | "bf16" | "f16" = "f32"): FormChoice & { variant: string } {
  const { plan } = lowerCuda(model);
  const env: Env = {
    B: 1,
    T: 1024,
    LIMIT_SMS: DEFAULT_SMS,
    LIMIT_SMEM_OPTIN: CUDA_CAPABILITIES.sharedMemPerBlockOptin[90],
    LIMIT_SHARED: CUDA_CAPABILITIES.sharedMemPerBlockOptin[90],
    LIMIT_THREADS: CUDA_CAPABILITIES.maxThreadsPerBlock,
  };
  for (const d of model.dims) env[d.name] = d.fixed ?? shape[d.name] ?? (d.sequenceDefault ? (shape.T ?? 1024) : 64);
  for (const [k, v] of Object.entries(shape)) env[k] = v;
  const runs: { variant: string; form: string; preferred: boolean; note: string }[] = [];
  for (const f of plan.forms) {
    if ((f.io ?? "f32") !== dtype) continue;
    const e = { ...env };
    for (const [k, x] of f.vars) e[k] = evalSize(x, e);
    if (f.applicable !== undefined && evalSize(f.applicable, e) === 0) continue;
    runs.push({ variant: f.variant, form: f.form, preferred: f.prefer === undefined || evalSize(f.prefer, e) !== 0, note: f.note });
  }
  const pick = runs.find((r) => r.preferred) ?? runs[0];
  const at = `B=${env.B}, T=${env.T}, ${DEFAULT_SMS === env.LIMIT_SMS ? `${env.LIMIT_SMS} SMs (H100)` : `${env.LIMIT_SMS} SMs`}, ${dtype}`;
  if (!pick) return { form: "sequential", variant: "none", why: `no CUDA variant can run ${at}` };
  const passed = runs.slice(0, runs.indexOf(pick)).map((r) => r.variant);
  const why = `${pick.variant} at ${at}: ${pick.note}${passed.length ? `; before it in plan order but not preferred at this shape: ${passed.join(", ")}` : ""}`;
  return { form: pick.form as FormChoice["form"], variant: pick.variant, why };
}
