/**
 * `npm run bench`: times seqc's WebGPU forms on the machine's GPU (Dawn/Vulkan) beside the
 * device-to-device copy bandwidth measured in the same run (correctness is the test suite's job:
 * test/wgsl-stdlib.test.ts).
 *
 *   node dist/bench-webgpu.js [--quick] [--only hgrn,lstm] [--match 'lstm B=64'] [--out dir] [--no-chunked] [--budget s]
 *
 * The plans have every form a generated class gets with `--form auto` (sequential, scan, chunked;
 * `--no-chunked`: without the chunked form). `--budget s`: cases not started after s seconds are
 * skipped (listed at the end), so the table is written inside a device call's limit.
 * Prints a table (model, form, shape, ms, tokens/s, GB/s, % of copy) and writes bench.json.
 * Effective GB/s counts the bytes a forward must move at least (inputs and outputs once, params
 * once, states in and out), so it is comparable with the copy rate.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import { trafficBytes } from "../../compiler/kernel/sequential.ts";
import { requestDevice, ModelRunner, evalSize, rankForms, type ModelPlan, type FormPlan } from "../../runtime/index.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { copyBandwidth } from "../../compiler/bench/copy.ts";
import { fillKernel } from "../../compiler/bench/fill.ts";
import { CASES, type BenchCase } from "./cases.ts";

const args = process.argv.slice(2);
const opt = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const quick = args.includes("--quick");
/** --smoke: every case shrunk (T <= 64, B <= 2, dims <= 16) to check the script on a software driver. */
const smoke = args.includes("--smoke");
if (smoke) {
  for (const c of CASES) {
    c.T = Math.min(c.T, 64);
    c.B = Math.min(c.B, 2);
    for (const k of Object.keys(c.dims)) c.dims[k] = Math.min(c.dims[k], 16);
    c.label = `${c.label} (smoke: B=${c.B} T=${c.T})`;
  }
}
const only = opt("--only")?.split(",");
/** --match RE: only the cases whose "model label" matches. */
const match = opt("--match") ? new RegExp(opt("--match")!) : undefined;
const outDir = opt("--out") ?? process.env.OUT ?? "bench-out";
const withChunked = !args.includes("--no-chunked");
const budgetS = opt("--budget") ? Number(opt("--budget")) : Infinity;
const started = performance.now();
const skipped: string[] = [];
mkdirSync(outDir, { recursive: true });

const device = await requestDevice();
const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
const card = info ? `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim() : "unknown adapter";
console.log(`device: ${card}; limits: storage binding ${device.limits.maxStorageBufferBindingSize}, workgroup memory ${device.limits.maxComputeWorkgroupStorageSize}`);

const copy = await copyBandwidth(device, quick ? 64 << 20 : 1 << 30);
/** The copy rate results are compared with: the faster of the two ways of copying. */
const copyRef = Math.max(copy.copyGBs, copy.kernelGBs);
console.log(`copy bandwidth: copyBufferToBuffer ${copy.copyGBs.toFixed(0)} GB/s, WGSL vec4 copy kernel ${copy.kernelGBs.toFixed(0)} GB/s (${copy.bytes / 2 ** 20} MiB); reference ${copyRef.toFixed(0)} GB/s`);

interface Row { hostMs?: number; model: string; form: string; shape: string; ms: number; tokensPerS: number; GBs: number; pctCopy: number; auto?: boolean; note?: string; vars?: Record<string, number> }
const rows: Row[] = [];

function modelOf(file: string): Model {
  const p = loadProgram([file]);
  const errs = p.diagnostics.filter((d) => d.severity === "error");
  if (errs.length) throw new Error(errs.map((e) => e.message).join("; "));
  return p.models[0];
}

/**
 * A plan with one form variant, optionally with some of its plan vars replaced by constants (tuning
 * sweeps). `form/variant:part` keeps some of its launches (a breakdown of a multi-kernel variant; the
 * results are not a forward's): `:hoist` the launches named *_hoist_*, `:steps` the others.
 */
function restrict(plan: ModelPlan, variant: string, set?: Record<string, number>): ModelPlan {
  const [fv, part] = variant.split(":");
  const [form, v] = fv.split("/");
  const keep = (name: string) => part === undefined || (part === "hoist") === /_hoist_/.test(name);
  const forms: FormPlan[] = plan.forms
    .filter((f) => f.form === form && f.variant === v)
    .map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, set && k in set ? set[k] : e] as [string, typeof e]), kernels: f.kernels.filter((k) => keep(k.name)) }));
  return { ...plan, forms };
}

interface Prepared { inputs: Record<string, { data: GPUBuffer; shape: number[] }>; params: Record<string, GPUBuffer>; buffers: GPUBuffer[]; dims: Record<string, number> }

/** Inputs and params of a case, filled on the device once (no host transfer of gigabytes). */
async function prepare(c: BenchCase, model: Model): Promise<Prepared> {
  const dims: Record<string, number> = { ...c.dims };
  for (const d of model.dims) if (dims[d.name] === undefined) dims[d.name] = d.fixed ?? (d.sequenceDefault ? c.T : 1);
  const p: Prepared = { inputs: {}, params: {}, buffers: [], dims };
  for (const t of model.tensors) {
    if (t.kind !== "input" && !(t.kind === "param" && !t.init)) continue;
    const shape = t.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name]));
    const n = shape.reduce((a, b) => a * b, 1) * (t.kind === "input" ? c.B * c.T : 1);
    const range = c.ranges?.[t.name] ?? [-0.5, 0.5];
    const b = device.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    p.buffers.push(b);
    await fillKernel(device, b, n, range[0], range[1], t.name.length * 7919 + n);
    if (t.kind === "input") p.inputs[t.name] = { data: b, shape: [c.B, c.T, ...shape] };
    else p.params[t.name] = b;
  }
  return p;
}

async function timeCase(c: BenchCase, model: Model, plan: ModelPlan, prep: Prepared, variant: string, set?: Record<string, number>): Promise<Row> {
  const { B, T } = c;
  const auto = variant === "auto";
  const runner = await ModelRunner.create(auto ? plan : restrict(plan, variant, set), { device, dims: c.dims, params: prep.params, form: auto ? "auto" : (variant.split("/")[0] as "sequential"), tune: auto });
  try {
    const once = async () => {
      const t0 = performance.now();
      await runner.forward(prep.inputs, { read: false });
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    await once(); // pipeline creation
    const second = await once();
    let hostMs: number | undefined;
    // very slow variants (seconds per forward): the second run is the time
    if (second > 2000) return row(second);
    // host time of one forward call (encoding and submitting its launches; the GPU runs after)
    await device.queue.onSubmittedWorkDone();
    const h0 = performance.now();
    await runner.forward(prep.inputs, { read: false });
    hostMs = performance.now() - h0;
    await device.queue.onSubmittedWorkDone();
    // the best of three batches of back-to-back forwards (one batch for slow ones)
    // about 100 ms of forwards per batch (3 to 20 of them)
    const reps = second > 1000 ? 1 : second > 100 ? 3 : quick ? 3 : Math.max(3, Math.min(20, Math.ceil(100 / second)));
    let ms = Infinity;
    for (let batch = 0; batch < (second > 100 ? 1 : 3); batch++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) await runner.forward(prep.inputs, { read: false });
      await device.queue.onSubmittedWorkDone();
      ms = Math.min(ms, (performance.now() - t0) / reps);
    }
    return row(ms);
    function row(ms: number): Row {
      const bytes = evalSize(trafficBytes(model), { ...runner.dimsFor(T), B, T });
      const chosen = runner.choose(B, T);
      const GBs = bytes / (ms * 1e-3) / 1e9;
      return { hostMs, model: c.model, form: auto ? `auto -> ${chosen.plan.form}/${chosen.plan.variant}` : variant, shape: c.label, ms, tokensPerS: (B * T) / (ms * 1e-3), GBs, pctCopy: (100 * GBs) / copyRef, vars: pick(chosen.env, ["$G", "$WG", "$S", "$E", "$TS", "$JB", "$BB", "$WGS"]) };
    }
  } finally {
    runner.dispose();
  }
}

const pick = (env: Record<string, number>, keys: string[]) => Object.fromEntries(keys.filter((k) => k in env).map((k) => [k, env[k]]));

for (const c of CASES) {
  if (only && !only.includes(c.model)) continue;
  if (match && !match.test(`${c.model} ${c.label}`)) continue;
  if (quick && c.heavy) continue;
  if ((performance.now() - started) / 1000 > budgetS) {
    skipped.push(`${c.model} ${c.label}`);
    continue;
  }
  const model = modelOf(join(process.cwd(), "stdlib", `${c.model}.seq`));
  const plan = compileWgsl(model, withChunked ? ["sequential", "scan", "chunked"] : undefined);
  const prep = await prepare(c, model);
  const base = { ...prep.dims, B: c.B, T: c.T, LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: device.limits.maxStorageBufferBindingSize };
  const ranked = rankForms(plan.forms, base);
  const auto = ranked[0] ? `${ranked[0].form.form}/${ranked[0].form.variant}` : "?";
  const variants = [...(c.variants ?? ranked.map((r) => `${r.form.form}/${r.form.variant}`)), "auto"];
  for (const v of variants) {
    for (const set of [undefined, ...(c.sweeps?.[v] ?? [])]) {
      try {
        if (v === "auto" && set) continue;
        const row = await timeCase(c, model, plan, prep, v, set);
        {
          row.auto = v === "auto";
          void auto;
          if (set) row.note = Object.entries(set).map(([k, x]) => `${k}=${x}`).join(" ");
          rows.push(row);
          writeFileSync(join(outDir, "bench.json"), JSON.stringify({ card, copy, rows, partial: true }, null, 1));
          console.log(`  ${row.model} ${row.form}${row.note ? ` [${row.note}]` : ""} ${row.shape}: ${row.ms.toFixed(3)} ms, ${row.GBs.toFixed(0)} GB/s${row.auto ? " (auto)" : ""} host ${row.hostMs?.toFixed(2)} ms ${JSON.stringify(row.vars)}`);
        }
      } catch (e) {
        console.log(`  ${c.model} ${v}: ${(e as Error).message.split("\n")[0].slice(0, 200)}`);
        rows.push({ model: c.model, form: v, shape: c.label, ms: NaN, tokensPerS: NaN, GBs: NaN, pctCopy: NaN, note: (e as Error).message.slice(0, 200) });
      }
    }
  }
  for (const b of prep.buffers) b.destroy();
}

writeFileSync(join(outDir, "bench.json"), JSON.stringify({ card, date: new Date().toISOString(), copy, rows }, null, 1));
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const lines = [
  `| model | form | shape | ms | tokens/s | GB/s | % copy | auto |`,
  `|---|---|---|---|---|---|---|---|`,
  ...rows.map((r) => `| ${r.model} | ${r.form}${r.note ? ` [${r.note}]` : ""} | ${r.shape} | ${fmt(r.ms, 3)} | ${Number.isFinite(r.tokensPerS) ? r.tokensPerS.toExponential(2) : "-"} | ${fmt(r.GBs, 0)} | ${fmt(r.pctCopy, 0)} | ${r.auto ? "yes" : ""} |`),
];
// auto vs fastest per model (rows without sweep notes)
const byModel = new Map<string, Row[]>();
for (const r of rows.filter((x) => !x.note && !x.form.includes(":") && Number.isFinite(x.ms))) byModel.set(`${r.model} ${r.shape}`, [...(byModel.get(`${r.model} ${r.shape}`) ?? []), r]);
const autoLines = [...byModel].map(([k, rs]) => {
  const fixed = rs.filter((r) => !r.auto);
  const best = fixed.reduce((a, b) => (a.ms <= b.ms ? a : b));
  const auto = rs.find((r) => r.auto);
  return `${k}: fastest ${best.form} ${best.ms.toFixed(3)} ms, auto ${auto ? `${auto.form} ${auto.ms.toFixed(3)} ms (${((auto.ms / best.ms - 1) * 100).toFixed(0)}% slower)` : "not measured"}`;
});
if (skipped.length) autoLines.push(`not run (--budget ${budgetS} s spent): ${skipped.join("; ")}`);
const text = [`card: ${card}`, `copy: ${copy.copyGBs.toFixed(0)} GB/s (copyBufferToBuffer), ${copy.kernelGBs.toFixed(0)} GB/s (WGSL copy kernel); % copy is against ${copyRef.toFixed(0)} GB/s`, "", ...lines, "", ...autoLines].join("\n");
writeFileSync(join(outDir, "table.md"), text + "\n");
console.log("\n" + text);
device.destroy();
