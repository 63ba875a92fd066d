/**
 * The WebGPU runner's per-shape cache (runtime/runner.ts: the cost model's pick, the limits check, the kernels'
 * pipelines and bind groups, the uniform values kept per (variant, B, T)) on lavapipe against the float64
 * interpreter: forwards in a row with different inputs, with and without initial states, a change of B and T and
 * back, T = 1, GPUBuffer inputs swapped between calls, new params by setParams(), results of one forward untouched
 * by the next, dispose(). Also that the cache is what runs: a second forward of a shape makes no bind group and
 * writes no uniforms, a forward with other buffers makes its bind groups again. Chunked form (Mamba-2, one split3
 * variant: phase A, walk, readout) and sequential form (GRU, params in every step).
 */
import { describe, expect, it, afterAll } from "vitest";
import { interpret, type RunInputs, type RunResult } from "../compiler/ir/interpret.ts";
import type { Model } from "../compiler/ir/types.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { ModelRunner, requestDevice, type ModelPlan } from "../runtime/index.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { randomInputs, stdlibModel, testDims } from "./wgsl/support.ts";

const TOL = 1e-4;
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));

const device = await requestDevice();
afterAll(() => device.destroy());

/** Counts of the device calls the cache saves (wrapped on this test's device). */
const calls = { bindGroups: 0, uniformWrites: 0 };
const createBindGroup = device.createBindGroup.bind(device);
device.createBindGroup = (d: GPUBindGroupDescriptor) => (calls.bindGroups++, createBindGroup(d));
const writeBuffer = device.queue.writeBuffer.bind(device.queue);
device.queue.writeBuffer = ((b: GPUBuffer, ...rest: unknown[]) => {
  if (b.usage & GPUBufferUsage.UNIFORM) calls.uniformWrites++;
  return (writeBuffer as (...a: unknown[]) => void)(b, ...rest);
}) as GPUQueue["writeBuffer"];
const delta = async (f: () => Promise<unknown>) => {
  const [g, u] = [calls.bindGroups, calls.uniformWrites];
  await f();
  return { bindGroups: calls.bindGroups - g, uniformWrites: calls.uniformWrites - u };
};

function shaped(model: Model, runner: ModelRunner, run: RunInputs, data: (k: string, a: Float64Array) => Float32Array | GPUBuffer = (_, a) => Float32Array.from(a)) {
  const full = runner.dimsFor(run.time);
  return Object.fromEntries(Object.entries(run.inputs).map(([k, a]) => [k, { data: data(k, a), shape: [run.batch, run.time, ...model.tensors.find((t) => t.name === k)!.shape.map((e) => (e.kind === "lit" ? e.value : full[e.name]))] }]));
}

async function forward(runner: ModelRunner, model: Model, run: RunInputs, data?: (k: string, a: Float64Array) => Float32Array | GPUBuffer): Promise<RunResult> {
  const r = await runner.forward(shaped(model, runner, run, data), { initialState: f32(run.initialState), returnFinalState: true });
  return { outputs: f64(r.outputs), finalState: f64(r.finalState) };
}

function worst(got: RunResult, want: RunResult): number {
  let w = 0;
  for (const [k, v] of Object.entries(want.outputs)) w = Math.max(w, relativeError(got.outputs[k], v));
  for (const [k, v] of Object.entries(want.finalState)) w = Math.max(w, relativeError(got.finalState[k], v));
  return w;
}

const withParams = (run: RunInputs, params: RunInputs["params"]): RunInputs => ({ ...run, params });

describe("WebGPU runner: what a forward reuses from the last forward of its shape", () => {
  it("chunked (Mamba-2, split3): inputs, initial states, B and T, GPUBuffers and params change between forwards", async () => {
    const model = stdlibModel("mamba2");
    const dims = testDims(model, { H: 2, P: 5, N: 3 });
    const plan = compileWgsl(model, []);
    addChunked(plan, model, (v) => v.startsWith("chunked-s3t-slots32-k32-v32-"));
    expect(plan.forms.filter((f) => f.form === "chunked").length).toBe(1);
    const a = chunkInputs(model, { dims, batch: 2, time: 37, seed: 1, initialState: true });
    const P = a.params;
    const b = withParams(chunkInputs(model, { dims, batch: 2, time: 37, seed: 2 }), P);
    const c = withParams(chunkInputs(model, { dims, batch: 3, time: 70, seed: 3, initialState: true }), P);
    const d = withParams(chunkInputs(model, { dims, batch: 1, time: 1, seed: 4, initialState: true }), P);
    const runner = await ModelRunner.create(plan as ModelPlan, { device, dims, params: f32(P), form: "chunked", tune: false });
    const check = async (run: RunInputs, data?: (k: string, a: Float64Array) => Float32Array | GPUBuffer) => {
      const got = await forward(runner, model, run, data);
      const err = worst(got, interpret(model, run));
      expect(err, `B=${run.batch} T=${run.time}`).toBeLessThan(TOL);
      return got;
    };

    const first = await check(a);
    const kept = structuredClone(first);
    // same shape, other inputs and no initial state: no new bind group, the init flags' uniforms written again
    expect(await delta(() => check(b))).toEqual({ bindGroups: 0, uniformWrites: 1 });
    expect(first).toEqual(kept); // the first forward's results are the caller's: the next forward did not touch them
    // the same uniform values again: nothing written, nothing made
    expect(await delta(() => check(b))).toEqual({ bindGroups: 0, uniformWrites: 0 });
    // a longer, wider shape: the pool grows, so its bind groups are new
    expect((await delta(() => check(c))).bindGroups).toBe(3);
    // back to the first shape: its kernels are kept, but some buffers were replaced, so its bind groups are made again
    expect((await delta(() => check(a))).bindGroups).toBe(3);
    expect(await delta(() => check(a))).toEqual({ bindGroups: 0, uniformWrites: 0 });
    await check(d); // T = 1
    await check(c);

    // GPUBuffer inputs, two sets swapped between calls: bound in place, so the bind groups follow them
    const upload = (run: RunInputs) => {
      const m = new Map<string, GPUBuffer>();
      for (const [k, v] of Object.entries(run.inputs)) {
        const buf = device.createBuffer({ size: v.length * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        device.queue.writeBuffer(buf, 0, Float32Array.from(v));
        m.set(k, buf);
      }
      return m;
    };
    const [ga, gb] = [upload(a), upload(b)];
    expect((await delta(() => check(a, (k) => ga.get(k)!))).bindGroups).toBeGreaterThan(0);
    expect((await delta(() => check(b, (k) => gb.get(k)!))).bindGroups).toBeGreaterThan(0);
    expect((await delta(() => check(a, (k) => ga.get(k)!))).bindGroups).toBeGreaterThan(0);
    for (const m of [ga, gb]) for (const buf of m.values()) buf.destroy();
    await check(b); // host inputs again

    // new params: the same params buffer, so the kept bind groups see them
    const P2 = chunkInputs(model, { dims, batch: 1, time: 1, seed: 9 }).params!;
    expect(relativeError(Float64Array.from(P2.A), P!.A!)).toBeGreaterThan(0.1);
    runner.setParams(f32(P2));
    expect((await delta(() => check(withParams(a, P2)))).bindGroups).toBe(0);
    await check(withParams(c, P2));
    expect(() => runner.setParams({ A: new Float32Array(1) })).toThrow(/param 'A' has 1 elements, expected shape \[H=2\]/);
    await check(withParams(b, P2)); // a rejected setParams() leaves the params as they were

    runner.dispose();
    await expect(runner.forward(shaped(model, runner, a))).rejects.toThrow(/forward\(\) after dispose\(\)/);
    expect(() => runner.setParams(f32(P))).toThrow(/setParams\(\) after dispose\(\)/);
  }, 120_000);

  it("sequential (GRU): params read every step, B and T changed and back, setParams", async () => {
    const model = stdlibModel("gru");
    const dims = testDims(model);
    const plan = compileWgsl(model, ["sequential"]);
    const a = randomInputs("gru", model, dims, 2, 5, 11);
    const P = a.params;
    const b = withParams(randomInputs("gru", model, dims, 3, 9, 12, false), P);
    const runner = await ModelRunner.create(plan, { device, dims, params: f32(P), form: "sequential", tune: false });
    const check = async (run: RunInputs) => {
      const got = await forward(runner, model, run);
      expect(worst(got, interpret(model, run)), `B=${run.batch} T=${run.time}`).toBeLessThan(TOL);
    };
    await check(a);
    expect((await delta(() => check(a))).bindGroups).toBe(0);
    await check(b);
    await check(a);
    const P2 = randomInputs("gru", model, dims, 1, 1, 13).params;
    runner.setParams(f32(P2));
    expect((await delta(() => check(withParams(a, P2)))).bindGroups).toBe(0);
    // an optional param left out is unset (bias_ih_l0 = 0 as declared)
    const { bias_ih_l0: _, ...without } = P2!;
    runner.setParams(f32(without));
    await check(withParams(b, { ...without, bias_ih_l0: new Float64Array(P2!.bias_ih_l0!.length) }));
    runner.dispose();
  }, 120_000);
});
