/**
 * `seqc run --backend cuda`: lower the model for CUDA, compile it on the machine's GPU (NVRTC; no nvcc
 * needed), run it in fp32 and hand back float64 arrays in the canonical layouts. Registers itself in the
 * The `cuda` entry of the backend table (compiler/backends/index.ts).
 * The CUDA runtime is imported only when the backend runs, so machines without CUDA never load it.
 */
import type { Model } from "../../ir/types.ts";
import type { RunInputs, RunResult } from "../../ir/interpret.ts";
import type { BackendInfo } from "../index.ts";
import { UserError } from "../../cli/errors.ts";
import { lowerCuda } from "./plan.ts";
import { chooseCudaForm } from "./choose.ts";

const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, Float32Array>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float64Array.from(v)]));

export async function runCuda(model: Model, run: RunInputs, opts: { form?: string } = {}): Promise<RunResult> {
  const rt = await import("../../../runtime/cuda/index.ts");
  const { plan } = lowerCuda(model);
  let runner;
  try {
    runner = await rt.CudaModelRunner.create(plan, { dims: run.dims, params: f32(run.params), form: opts.form ?? "auto" });
  } catch (e) {
    if (e instanceof rt.CudaUnavailableError) throw new UserError(e.message);
    throw e;
  }
  try {
    const r = await runner.forward(f32(run.inputs), { batch: run.batch, initialState: f32(run.initialState) });
    return { outputs: f64(r.outputs), finalState: f64(r.finalState) };
  } finally {
    runner.dispose();
  }
}

export const cudaBackend: BackendInfo = {
  name: "cuda",
  description: "CUDA C++ (nvcc PTX for sm_80/sm_90 or NVRTC at run time), fp32 (chunked form also bf16/f16 on tensor cores)",
  forms: ["sequential", "scan", "chunked"],
  chooseForm: (model, _analysis, shape) => {
    const c = chooseCudaForm(model, shape);
    return { form: c.form, why: c.why };
  },
  run: runCuda,
};
