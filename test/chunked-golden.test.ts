/**
 * Every shared golden case whose model has the chunked form, through it: the float64 row algorithm the
 * kernels implement (compiler/forms/chunk-rows-ref.ts, <= 1e-9), and the CUDA chunked kernels themselves
 * (fp32 fused variant) run by the real CudaModelRunner on the CPU emulation of the CUDA subset they use
 * (test/cuda-emu; needs g++), <= 1e-4 against the public libraries' float64 outputs.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { bindCase, readCase, relativeError, resultTensors } from "../compiler/io/manifest.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { chunkRows } from "../compiler/forms/chunk-rows.ts";
import { runChunkRows } from "../compiler/forms/chunk-rows-ref.ts";
import { lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import type { CudaDevice } from "../runtime/cuda/device.ts";
import { buildEmu } from "./cuda-emu/harness.ts";
import { FakeCudaDevice } from "./cuda-emu/fake-device.ts";

const ROOT = resolve(import.meta.dirname, "..");
const G = join(ROOT, "test/fixtures/golden");
const X = join(ROOT, "test/fixtures/golden-extra");
const CASES: [string, string, string][] = [
  ["gla", G, "gla"],
  ["simple_gla", G, "simple_gla"],
  ["retention", G, "retnet"],
  ["linear_attn", G, "linear_attention"],
  ["delta_rule", G, "deltanet"],
  ["delta_rule_negeig", G, "deltanet"],
  ["gated_delta_rule", G, "gated_deltanet"],
  ["mamba2_ssd", G, "mamba2"],
  ["rwkv7", X, "rwkv7"],
  ["gated_deltaproduct", X, "gated_deltaproduct"],
  ["deltaproduct", X, "gated_deltaproduct"],
  ["mlstm_parallel", X, "mlstm"],
];
const gpp = spawnSync("g++", ["--version"]).status === 0;
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));

function check(ref: ReturnType<typeof readCase>, got: Map<string, Float64Array>, tol: number) {
  const wanted = Object.entries(ref.manifest.tensors).filter(([, t]) => t.role === "output" || t.role === "final_state");
  expect(wanted.length).toBeGreaterThan(0);
  for (const [name] of wanted) expect(relativeError(got.get(name)!, ref.data[name]), name).toBeLessThanOrEqual(tol);
}

describe("golden cases through the chunked form", () => {
  it.each(CASES)("%s: float64 row algorithm (64 row slots per chunk)", (name, dir, model) => {
    const m = loadProgram([join(ROOT, "stdlib", `${model}.seq`)]).models[0];
    const mf = matrixForm(m);
    if (!mf.ok) throw new Error(mf.reason);
    const cr = chunkRows(mf.form);
    if (!cr.ok) throw new Error(cr.reason);
    const ref = readCase(join(dir, `${name}.json`));
    const b = bindCase(m, ref);
    check(ref, new Map(resultTensors(b, runChunkRows(m, cr.rows, b.run, { F: 64 })).map((o) => [o.name, o.data])), 1e-9);
  });

  it.skipIf(!gpp).each(CASES)("%s: CUDA chunked kernels (fp32, fused) on the CPU emulation", async (name, dir, model) => {
    const m = loadProgram([join(ROOT, "stdlib", `${model}.seq`)]).models[0];
    const ref = readCase(join(dir, `${name}.json`));
    const b = bindCase(m, ref);
    const rt = model === "rwkv7" || model === "gated_deltaproduct" ? 2 : 1;
    const variant = `chunked-fused-f32-k32-v16-r${rt}`;
    const build = buildEmu(m, [variant]);
    const { plan } = lowerCuda(m);
    plan.forms = build.forms;
    const runner = await CudaModelRunner.create(plan, { dims: b.run.dims, params: f32(b.run.params), device: new FakeCudaDevice(build) as unknown as CudaDevice, form: "chunked" });
    const r = await runner.forward(f32(b.run.inputs), { batch: b.run.batch, initialState: f32(b.run.initialState) });
    expect(r.form).toBe(variant);
    const res = { outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Float64Array.from(v)])), finalState: Object.fromEntries(Object.entries(r.finalState).map(([k, v]) => [k, Float64Array.from(v)])) };
    check(ref, new Map(resultTensors(b, res).map((o) => [o.name, o.data])), 1e-4);
  }, 120_000);
});
