/**
 * Device limits in the WebGPU runtime: a launch of more than 65535 workgroups is spread over two grid
 * dimensions (and still computes the right thing); a tensor over the device's storage-binding limit
 * and a dims/params mistake are refused before any launch with the tensor's name.
 */
import { describe, it, expect } from "vitest";
import { stdlibModel, randomInputs, reference, compare } from "./wgsl/support.ts";
import { compileWgsl } from "../compiler/backends/wgsl/index.ts";
import { ModelRunner, gpuEntry, type ModelPlan } from "../runtime/index.ts";

describe("WebGPU runtime limits", () => {
  it("splits a dispatch of 70000 workgroups over two dimensions", async () => {
    const model = stdlibModel("hgrn");
    const plan = compileWgsl(model, ["sequential"]);
    // one element per workgroup: D * B workgroups
    const forced: ModelPlan = {
      ...plan,
      forms: plan.forms.filter((f) => f.variant === "workgroup").map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, k === "$G" ? 1 : k === "$WG" ? 32 : e] as [string, typeof e]) })),
    };
    const D = 35001, B = 2, T = 2;
    const run = randomInputs("hgrn", model, { D }, B, T, 5);
    const runner = await ModelRunner.create(forced, { dims: { D }, tune: false });
    try {
      expect(runner.choose(B, T).env.$G).toBe(1);
      const r = await runner.forward({ x: { data: Float32Array.from(run.inputs.x), shape: [B, T, D] }, g: { data: Float32Array.from(run.inputs.g), shape: [B, T, D] } }, {
        initialState: { h: Float32Array.from(run.initialState!.h) },
        returnFinalState: true,
      });
      const got = { outputs: { o: Float64Array.from(r.outputs.o as Float32Array) }, finalState: { h: Float64Array.from(r.finalState!.h as Float32Array) } };
      expect(compare(got, reference(model, run)).worst).toBeLessThanOrEqual(1e-5);
    } finally {
      runner.dispose();
    }
  }, 300_000);

  it("refuses an input over the storage-binding limit, naming it", async () => {
    const adapter = await (await gpuEntry()).requestAdapter();
    const device = await adapter!.requestDevice(); // default limits: 128 MiB per storage binding
    const limit = device.limits.maxStorageBufferBindingSize;
    const D = 1024, B = 1, T = Math.ceil(limit / 4 / D) + 1;
    const runner = await ModelRunner.create(compileWgsl(stdlibModel("hgrn")), { device, dims: { D }, tune: false });
    try {
      const big = new Float32Array(B * T * D);
      await expect(runner.forward({ x: { data: big, shape: [B, T, D] }, g: { data: big, shape: [B, T, D] } })).rejects.toThrow(
        new RegExp(`input 'x' needs ${B * T * D * 4} bytes at B=1, T=${T}, over this device's storage binding limit of ${limit} bytes`),
      );
    } finally {
      runner.dispose();
      device.destroy();
    }
  }, 300_000);

  it("refuses a launch whose invocations overflow 32-bit indices (they would wrap), before any launch", async () => {
    const model = stdlibModel("hgrn");
    const plan = compileWgsl(model, ["sequential"]);
    // a partition of 2^33 elements, as a backward model over param-adjoint indices can reach
    const forced: ModelPlan = {
      ...plan,
      forms: plan.forms.filter((f) => f.variant === "workgroup").map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, k === "$BP" ? 2 ** 33 : e] as [string, typeof e]) })),
    };
    const runner = await ModelRunner.create(forced, { dims: { D: 8 }, tune: false });
    try {
      const x = new Float32Array(2 * 3 * 8).fill(0.5);
      await expect(runner.forward({ x: { data: x, shape: [2, 3, 8] }, g: { data: x, shape: [2, 3, 8] } })).rejects.toThrow(
        /Hgrn: kernel \S+ needs \d+ invocations at B=2, T=3, more than 32-bit indices reach \(4294967295\)/,
      );
    } finally {
      runner.dispose();
    }
  }, 300_000);

  it("checks dims and params at create()", async () => {
    const plan = compileWgsl(stdlibModel("mamba"), ["sequential"]);
    await expect(ModelRunner.create(plan, { dims: { D: 4 }, params: {} })).rejects.toThrow(/missing dim 'N' of Mamba/);
    await expect(ModelRunner.create(plan, { dims: { D: 4, N: 2, Q: 1 } })).rejects.toThrow(/Mamba has no dim 'Q'; its dims are D, N/);
    await expect(ModelRunner.create(plan, { dims: { D: 4, N: 2 }, params: {} })).rejects.toThrow(/missing param 'A' of shape \[D=4, N=2\]/);
    await expect(ModelRunner.create(plan, { dims: { D: 4, N: 2 }, params: { A: new Float32Array(7) } })).rejects.toThrow(/param 'A' has 7 elements, expected shape \[D=4, N=2\] \(8\)/);
    await expect(ModelRunner.create(plan, { dims: { D: 4, N: 2 }, params: { A: new Float32Array(8) }, form: "scan" })).rejects.toThrow(/Mamba has no scan form/);
  });
});
