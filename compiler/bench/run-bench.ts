/**
 * Time a model's WebGPU form variants over sequence lengths, beside the device-to-device copy
 * bandwidth measured in the same run. Inputs and params are filled on the device (no host
 * transfer); correctness is the test suite's job. Used by `seqc bench`.
 */
import type { Model } from "../ir/types.ts";
import { compileWgsl } from "../backends/wgsl/index.ts";
import { trafficBytes } from "../kernel/sequential.ts";
import { ModelRunner, evalSize, rankForms, type FormPlan, type ModelPlan } from "../../runtime/index.ts";
import { copyBandwidth, type CopyResult } from "./copy.ts";
import { fillKernel } from "./fill.ts";

export interface BenchRow {
  form: string;
  T: number;
  B: number;
  ms: number;
  tokensPerS: number;
  /** Minimum bytes a forward moves (inputs, outputs, params once; states in and out) per second. */
  GBs: number;
  pctCopy: number;
  /** The variant the cost model picks for this shape. */
  auto: boolean;
  /** The time a copy of the same bytes takes at the measured copy bandwidth (the IO floor). */
  floorMs: number;
  error?: string;
}

export interface BenchOptions {
  device: GPUDevice;
  dims: Record<string, number>;
  batch: number;
  lengths: number[];
  /** `all`, a form name (`sequential`, `scan`) or a variant (`scan/tile`). */
  form: string;
  /** Value range per input/param name (default [-0.5, 0.5)). */
  ranges?: Record<string, [number, number]>;
  /** Called when a measurement starts (`finished` false) and when it ends. */
  onProgress?: (done: number, total: number, what: string, finished: boolean) => void;
}

export interface BenchResult { model: string; copy: CopyResult; rows: BenchRow[] }

function restrict(plan: ModelPlan, variant: string): ModelPlan {
  const [form, v] = variant.split("/");
  return { ...plan, forms: plan.forms.filter((f: FormPlan) => f.form === form && f.variant === v) };
}

export async function benchModel(model: Model, opts: BenchOptions): Promise<BenchResult> {
  const { device, batch: B } = opts;
  const plan = compileWgsl(model);
  const all = plan.forms.map((f) => `${f.form}/${f.variant}`);
  const variants = opts.form === "all" ? all : all.filter((v) => v === opts.form || v.split("/")[0] === opts.form);
  if (!variants.length) throw new Error(`${model.name} has no WebGPU form '${opts.form}' (it has: ${all.join(", ")})`);
  const copy = await copyBandwidth(device, 256 << 20);
  const rows: BenchRow[] = [];
  const total = variants.length * opts.lengths.length;
  let done = 0;
  for (const T of opts.lengths) {
    const dims: Record<string, number> = { ...opts.dims };
    for (const d of model.dims) if (dims[d.name] === undefined) dims[d.name] = d.fixed ?? (d.sequenceDefault ? T : NaN);
    const missing = model.dims.filter((d) => !Number.isFinite(dims[d.name])).map((d) => d.name);
    if (missing.length) throw new Error(`give the size of ${missing.join(", ")} with --dims (e.g. --dims ${missing.map((m) => `${m}=64`).join(",")})`);
    const buffers: GPUBuffer[] = [];
    const inputs: Record<string, { data: GPUBuffer; shape: number[] }> = {};
    const params: Record<string, GPUBuffer> = {};
    for (const t of model.tensors) {
      if (t.kind !== "input" && t.kind !== "param") continue;
      const shape = t.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name]));
      const n = shape.reduce((a, b) => a * b, 1) * (t.kind === "input" ? B * T : 1);
      const [lo, hi] = opts.ranges?.[t.name] ?? [-0.5, 0.5];
      const buf = device.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      buffers.push(buf);
      await fillKernel(device, buf, n, lo, hi, t.name.length * 7919 + n);
      if (t.kind === "input") inputs[t.name] = { data: buf, shape: [B, T, ...shape] };
      else params[t.name] = buf;
    }
    const base = { ...dims, B, T, LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup };
    const ranked = rankForms(plan.forms, base);
    const auto = ranked[0] ? `${ranked[0].form.form}/${ranked[0].form.variant}` : "";
    const bytes = evalSize(trafficBytes(model), base);
    const floorMs = (bytes / (copy.copyGBs * 1e9)) * 1e3;
    for (const v of variants) {
      opts.onProgress?.(done, total, `${v} T=${T}`, false);
      const row: BenchRow = { form: v, T, B, ms: NaN, tokensPerS: NaN, GBs: NaN, pctCopy: NaN, auto: v === auto, floorMs };
      try {
        const runner = await ModelRunner.create(restrict(plan, v), { device, dims: opts.dims, params, form: v.split("/")[0] as "sequential" });
        try {
          const once = async () => {
            const t0 = performance.now();
            await runner.forward(inputs, { read: false });
            await device.queue.onSubmittedWorkDone();
            return performance.now() - t0;
          };
          await once();
          const second = await once();
          const reps = second > 1000 ? 1 : second > 100 ? 3 : 10;
          const t0 = performance.now();
          for (let i = 0; i < reps; i++) await runner.forward(inputs, { read: false });
          await device.queue.onSubmittedWorkDone();
          row.ms = (performance.now() - t0) / reps;
          row.tokensPerS = (B * T) / (row.ms * 1e-3);
          row.GBs = bytes / (row.ms * 1e-3) / 1e9;
          row.pctCopy = (100 * row.GBs) / copy.copyGBs;
        } finally {
          runner.dispose();
        }
      } catch (e) {
        row.error = (e as Error).message.split("\n")[0];
      }
      rows.push(row);
      opts.onProgress?.(++done, total, `${v} T=${T}`, true);
    }
    for (const b of buffers) b.destroy();
  }
  return { model: model.name, copy, rows };
}
