/**
 * Tuning run of the sequential form's stream variant: its options (16-byte loads, states in workgroup
 * memory, prefetched hoisted terms, unroll depth; compiler/kernel/step-stream.ts) side by side with
 * the run-6 kernel (`stream-scalar-global-noprefetch`) and the grid variant, at lstm and gru
 * B=64 H=256 I=256 T=2048 (best of 3 batches of 5 back-to-back forwards). Every variant's output and
 * final states are compared with the run-6 kernel's (max |diff|); the float64 check is check-stream.ts.
 *
 *   node dist/stream-variants.js [--out dir]   (bundle like dist/bench-webgpu.js)
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl, renderWgsl } from "../../compiler/backends/wgsl/index.ts";
import { lowerStepStream, STREAM_DEFAULTS, streamVariantName, type StreamOptions } from "../../compiler/kernel/step-stream.ts";
import { ModelRunner, requestDevice, type ModelPlan } from "../../runtime/index.ts";
import { fillKernel } from "../../compiler/bench/fill.ts";

const args = process.argv.slice(2);
const outDir = args.includes("--out") ? args[args.indexOf("--out") + 1] : undefined;
const device = await requestDevice();
const OLD: Partial<StreamOptions> = { vec4: false, sharedStates: false, prefetch: false, unroll: 8 };
const OPTIONS: Partial<StreamOptions>[] = [OLD, { sharedStates: false, prefetch: false, unroll: 8 }, { prefetch: false, unroll: 8 }, { vec4: false, unroll: 8 }, { unroll: 8 }, { unroll: 4 }, {}, { unroll: 32 }];
const lines: string[] = [];
for (const name of ["lstm", "gru"]) {
  const model = loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
  const plan = compileWgsl(model);
  for (const o of OPTIONS) {
    if (!Object.keys(o).length) continue; // the default is in the plan
    const f = lowerStepStream(model, o);
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
  let ref: Float32Array[] | undefined;
  const runs: [string, Record<string, number>][] = [["grid", {}], ...OPTIONS.map((o) => [streamVariantName({ ...STREAM_DEFAULTS, ...o }), {}] as [string, Record<string, number>]), ["stream", { $BB: 2 }]];
  for (const [variant, set] of runs) {
    const p: ModelPlan = { ...plan, forms: plan.forms.filter((f) => f.variant === variant).map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, k in set ? set[k] : e] as [string, typeof e]) })) };
    let runner: ModelRunner;
    try {
      runner = await ModelRunner.create(p, { device, dims, params, tune: false });
    } catch (e) {
      lines.push(`${name} ${variant}: ${(e as Error).message.slice(0, 160)}`);
      console.log(lines.at(-1));
      continue;
    }
    const out = await runner.forward(inputs, { returnFinalState: true });
    const got = [out.outputs.output as Float32Array, ...Object.values(out.finalState as Record<string, Float32Array>)];
    let diff = 0;
    if (ref) got.forEach((a, j) => { for (let i = 0; i < a.length; i += 97) diff = Math.max(diff, Math.abs(a[i] - ref![j][i])); });
    if (variant === streamVariantName({ ...STREAM_DEFAULTS, ...OLD })) ref = got;
    let ms = Infinity;
    for (let b = 0; b < 3; b++) {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await runner.forward(inputs, { read: false });
      await device.queue.onSubmittedWorkDone();
      ms = Math.min(ms, (performance.now() - t0) / 5);
    }
    runner.dispose();
    lines.push(`| ${name} | ${variant}${Object.keys(set).length ? ` ${JSON.stringify(set)}` : ""} | ${ms.toFixed(2)} | ${diff.toExponential(1)} |`);
    console.log(lines.at(-1));
  }
}
if (outDir) writeFileSync(join(outDir, "stream-variants.md"), ["| model B=64 H=256 I=256 T=2048 | variant | ms | max abs diff vs run-6 kernel |", "|---|---|---|---|", ...lines].join("\n") + "\n");
device.destroy();
