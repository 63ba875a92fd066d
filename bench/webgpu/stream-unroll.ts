/**
 * Tuning run of the sequential form's stream variant: the unroll depth of its contraction (loads in
 * flight per thread) and its threads per workgroup, side by side with the grid variant, at lstm and gru
 * B=64 H=256 I=256 T=2048 (best of 3 batches of 5 back-to-back forwards; the stream variants also
 * checked against the default stream variant's outputs).
 *
 *   node dist/stream-unroll.js   (bundle like dist/bench-webgpu.js)
 */
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl, renderWgsl } from "../../compiler/backends/wgsl/index.ts";
import { lowerStepStream } from "../../compiler/kernel/step-stream.ts";
import { ModelRunner, requestDevice, type ModelPlan } from "../../runtime/index.ts";
import { fillKernel } from "../../compiler/bench/fill.ts";

const device = await requestDevice();
for (const name of ["lstm", "gru"]) {
  const model = loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
  const plan = compileWgsl(model);
  for (const u of [16, 32]) {
    const f = lowerStepStream(model, u);
    for (const k of f.kernels) plan.shaders[k.name] = renderWgsl(k, []);
    plan.forms.push(f.plan);
  }
  const B = 64, T = 2048, dims = { H: 256, I: 256 };
  const params: Record<string, GPUBuffer> = {};
  const inputs: Record<string, { data: GPUBuffer; shape: number[] }> = {};
  for (const t of model.tensors) {
    if (t.kind !== "input" && !(t.kind === "param" && !t.init)) continue;
    const shape = t.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name as "H"]));
    const n = shape.reduce((a, b) => a * b, 1) * (t.kind === "input" ? B * T : 1);
    const b = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    await fillKernel(device, b, n, -0.5, 0.5, t.name.length * 7919 + n);
    if (t.kind === "input") inputs[t.name] = { data: b, shape: [B, T, ...shape] };
    else params[t.name] = b;
  }
  let ref: Float32Array | undefined;
  for (const [variant, set] of [["grid", {}], ["stream", {}], ["stream-u16", {}], ["stream-u32", {}], ["stream-u16", { $WG: 512 }], ["stream-u32", { $WG: 128 }]] as [string, Record<string, number>][]) {
    const p: ModelPlan = { ...plan, forms: plan.forms.filter((f) => f.variant === variant).map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, k in set ? set[k] : e] as [string, typeof e]) })) };
    let runner: ModelRunner;
    try {
      runner = await ModelRunner.create(p, { device, dims, params, tune: false });
    } catch (e) {
      console.log(`${name} ${variant}: ${(e as Error).message.slice(0, 160)}`);
      continue;
    }
    const out = await runner.forward(inputs, {});
    const o = out.outputs.output as Float32Array;
    let diff = 0;
    if (ref) for (let i = 0; i < o.length; i += 997) diff = Math.max(diff, Math.abs(o[i] - ref[i]));
    if (variant === "stream") ref = o;
    let ms = Infinity;
    for (let b = 0; b < 3; b++) {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await runner.forward(inputs, { read: false });
      await device.queue.onSubmittedWorkDone();
      ms = Math.min(ms, (performance.now() - t0) / 5);
    }
    runner.dispose();
    console.log(`${name} B=${B} H=256 I=256 T=${T} ${variant} ${JSON.stringify(set)}: ${ms.toFixed(2)} ms (max |diff| vs stream ${diff.toExponential(1)})`);
  }
}
device.destroy();
