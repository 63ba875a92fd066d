/**
 * The WGSL chunked form on a GPU (Dawn/Vulkan), one call:
 *   1. check: every chunked model's chunked variants against the float64 interpreter at K = V = 64
 *      (B = 2, T = 333, initial state) and the auto-picked variant at K = V = 128 (T = 70); the numerics
 *      stress at T = 65536 (log decays down to -20, saturated gates, beta in (0, 2); K = V = 8, H = 1);
 *   2. bench: the issue's shapes (B=8,T=2048,H=16,K=V=64), (4,8192,16,128), (1,32768,8,128) (Mamba-2: 32 heads,
 *      P = N = 64) for six models: every applicable chunked variant, the sequential form's cost-model pick,
 *      and what `auto` picks; inputs filled on the device. Median of 5 forwards after 2 warm-ups.
 *   node dist/bench-chunked.js [--out dir] [--only gla,...] [--skip-check] [--budget seconds]
 *     [--check-variants a,b] [--variants a,b] (bench only chunked variants whose name contains one) [--no-sequential]
 *     [--check-picks] (check only the chunked variants auto picks at the benchmark shapes, each at B = 2, T = 70,
 *     H = 2, K = V = that shape's K, from an initial state; no stress) [--skip-bench] [--auto-only] (bench only the
 *     top-ranked chunked variant, and the overall pick where that is another form) [--no-parts] (no phase-A-alone times)
 * Split3 variants also time phase A + the state walk alone (the readout is the rest).
 * Writes chunked-check.json, chunked-bench.json and chunked-table.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import { trafficBytes } from "../../compiler/kernel/sequential.ts";
import { interpret } from "../../compiler/ir/interpret.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { requestDevice, ModelRunner, evalSize, rankForms, type ModelPlan } from "../../runtime/index.ts";
import { chunkInputs } from "../../test/helpers/chunk-inputs.ts";
import { copyBandwidth } from "../../compiler/bench/copy.ts";
import { fillChunkedInputs } from "./chunked-inputs.ts";

const args = process.argv.slice(2);
const opt = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const outDir = opt("--out") ?? process.env.OUT ?? "bench-out";
const only = opt("--only")?.split(",");
const smoke = args.includes("--smoke");
const budgetS = Number(opt("--budget") ?? 200);
/** --check-variants slots32-v16,slots64-v32: check only variants containing one of these. */
const checkVariants = opt("--check-variants")?.split(",");
/** --variants slots32-v16,s3-: bench only chunked variants containing one of these. */
const benchVariants = opt("--variants")?.split(",");
const noSequential = args.includes("--no-sequential");
const checkPicks = args.includes("--check-picks");
const autoOnly = args.includes("--auto-only");
const noParts = args.includes("--no-parts");
const t0 = performance.now();
const left = () => budgetS - (performance.now() - t0) / 1000;
mkdirSync(outDir, { recursive: true });
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);

const device = await requestDevice();
const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
const card = info ? `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim() : "unknown adapter";
log(`device: ${card}; workgroup memory ${device.limits.maxComputeWorkgroupStorageSize}, storage binding ${device.limits.maxStorageBufferBindingSize}, storage buffers ${device.limits.maxStorageBuffersPerShaderStage}, subgroups ${device.features.has("subgroups" as GPUFeatureName)}`);

const modelOf = (name: string): Model => loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const withForms = (plan: ModelPlan, keep: (f: ModelPlan["forms"][number]) => boolean): ModelPlan => ({ ...plan, forms: plan.forms.filter(keep) });

const CHUNKED = ["linear_attention", "retnet", "simple_gla", "mamba2", "gla", "deltanet", "gated_deltanet", "gated_deltaproduct", "rwkv7"];
const BENCH = ["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"];
const dimsFor = (model: Model, H: number, K: number, V: number, J = 2): Record<string, number> => {
  const d: Record<string, number> = {};
  for (const x of model.dims) d[x.name] = x.name === "H" ? H : x.name === "K" || x.name === "N" ? K : x.name === "V" || x.name === "P" ? V : x.name === "J" ? J : 1;
  return d;
};

const SHAPES = [
  { label: "B=8 T=2048 H=16 K=V=64", B: 8, T: 2048, H: 16, K: 64 },
  { label: "B=4 T=8192 H=16 K=V=128", B: 4, T: 8192, H: 16, K: 128 },
  { label: "B=1 T=32768 H=8 K=V=128", B: 1, T: 32768, H: 8, K: 128 },
];
const limitsEnv = () => ({ LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: device.limits.maxStorageBufferBindingSize });
/** The chunked variant auto ranks first at each benchmark shape, with that shape's key size. */
function picksOf(name: string, model: Model, plan: ModelPlan): { variant: string; K: number }[] {
  const out: { variant: string; K: number }[] = [];
  for (const s of SHAPES) {
    const H = name === "mamba2" ? 32 : s.H;
    const K = name === "mamba2" ? 64 : s.K;
    const top = rankForms(plan.forms, { ...dimsFor(model, H, K, K), B: s.B, T: s.T, ...limitsEnv() }).find((r) => r.form.form === "chunked");
    if (top && !out.some((o) => o.variant === top.form.variant && o.K === K)) out.push({ variant: top.form.variant, K });
  }
  return out;
}

// ---------------- 1. check ----------------
interface CheckRow { model: string; variant: string; shape: string; worst: number; finite: boolean; ok: boolean; errors: Record<string, number>; note?: string }
const checks: CheckRow[] = [];
async function checkCase(model: Model, plan: ModelPlan, variant: string | "auto", c: { B: number; T: number; H: number; K: number; V: number; J?: number; stress?: boolean }, seed: number, ref?: { run: ReturnType<typeof chunkInputs>; want: ReturnType<typeof interpret> }) {
  const dims = dimsFor(model, c.H, c.K, c.V, c.J);
  const run = ref?.run ?? chunkInputs(model, { dims, batch: c.B, time: c.T, seed, initialState: true, stress: c.stress });
  const want = ref?.want ?? interpret(model, run);
  const shape = `B=${c.B} T=${c.T} H=${c.H} K=${c.K} V=${c.V}${c.J ? ` J=${c.J}` : ""}${c.stress ? " stress" : ""}`;
  const row: CheckRow = { model: model.name, variant, shape, worst: Infinity, finite: false, ok: false, errors: {} };
  try {
    const p = variant === "auto" ? withForms(plan, (f) => f.form === "chunked") : withForms(plan, (f) => f.variant === variant);
    const runner = await ModelRunner.create(p, { device, dims, params: f32(run.params), tune: false, form: "chunked" });
    try {
      const r = await runner.forward(f32(run.inputs), { batch: c.B, initialState: f32(run.initialState), returnFinalState: true });
      row.variant = r.form;
      const got = { outputs: f64(r.outputs), finalState: f64(r.finalState) };
      row.finite = [...Object.values(got.outputs), ...Object.values(got.finalState)].every((a) => a.every(Number.isFinite));
      for (const [k, v] of Object.entries(want.outputs)) row.errors[k] = relativeError(got.outputs[k], v);
      for (const [k, v] of Object.entries(want.finalState)) row.errors[`final ${k}`] = relativeError(got.finalState[k], v);
      row.worst = Math.max(...Object.values(row.errors));
      row.ok = row.finite && row.worst <= 1e-4;
    } finally {
      runner.dispose();
    }
  } catch (e) {
    row.note = (e as Error).message.split("\n").slice(0, 2).join(" | ").slice(0, 300);
  }
  checks.push(row);
  log(`check ${row.ok ? "ok  " : "FAIL"} ${model.name.padEnd(18)} ${row.variant.padEnd(34)} rel ${row.worst.toExponential(2)} ${shape}${row.note ? "  " + row.note : ""}`);
  return { run, want };
}

if (checkPicks) {
  for (const name of BENCH.filter((m) => !only || only.includes(m))) {
    const model = modelOf(name);
    const plan = compileWgsl(model, ["sequential", "scan", "chunked"]);
    const cplan = withForms(plan, (f) => f.form === "chunked");
    // one reference per key size (the float64 interpreter takes ~10 s for RWKV-7 at K = 128)
    const refs = new Map<number, Awaited<ReturnType<typeof checkCase>>>();
    for (const { variant, K } of picksOf(name, model, plan)) refs.set(K, await checkCase(model, cplan, variant, { B: 2, T: 70, H: 2, K, V: K }, 21 + K, refs.get(K)));
  }
  writeFileSync(join(outDir, "chunked-check.json"), JSON.stringify({ card, rows: checks }, null, 1));
  const bad = checks.filter((r) => !r.ok);
  log(`check summary: ${checks.length - bad.length} of ${checks.length} passed`);
} else if (!args.includes("--skip-check")) {
  for (const name of CHUNKED.filter((m) => !only || only.includes(m))) {
    const model = modelOf(name);
    const plan = compileWgsl(model, ["chunked"]);
    const J = name === "gated_deltaproduct" ? 2 : undefined;
    let ref: Awaited<ReturnType<typeof checkCase>> | undefined;
    const c = smoke ? { B: 2, T: 45, H: 2, K: 16, V: 16, J } : { B: 2, T: 333, H: 2, K: 64, V: 64, J };
    const env = { ...dimsFor(model, c.H, c.K, c.V, c.J), B: c.B, T: c.T, LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: device.limits.maxStorageBufferBindingSize };
    const vs = rankForms(plan.forms, env).map((r) => r.form.variant).filter((v) => !checkVariants || checkVariants.some((x) => v.includes(x)));
    for (const v of [...new Set(vs)]) {
      if (left() < budgetS * 0.6) { log(`budget: skipping check ${name} ${v}`); continue; }
      ref = await checkCase(model, plan, v, c, 11, ref);
    }
    await checkCase(model, plan, "auto", smoke ? { B: 1, T: 30, H: 2, K: 32, V: 32, J } : { B: 1, T: 70, H: 2, K: 128, V: 128, J }, 12);
  }
  for (const name of ["gla", "rwkv7", "gated_deltanet", "mamba2", "gated_deltaproduct"].filter((m) => !only || only.includes(m))) {
    const model = modelOf(name);
    const plan = compileWgsl(model, ["chunked"]);
    await checkCase(model, plan, "auto", { B: 1, T: smoke ? 2048 : 65536, H: 1, K: 8, V: 8, J: name === "gated_deltaproduct" ? 1 : undefined, stress: true }, 7);
  }
  writeFileSync(join(outDir, "chunked-check.json"), JSON.stringify({ card, rows: checks }, null, 1));
  const bad = checks.filter((r) => !r.ok);
  log(`check summary: ${checks.length - bad.length} of ${checks.length} passed`);
}

// ---------------- 2. bench ----------------
if (args.includes("--skip-bench")) {
  log("done (no bench)");
  device.destroy();
  process.exit(0);
}
const copy = await copyBandwidth(device, smoke ? 64 << 20 : 1 << 30);
const copyGBs = Math.max(copy.copyGBs, copy.kernelGBs);
log(`copy: ${copy.kernelGBs.toFixed(0)} GB/s (WGSL kernel), ${copy.copyGBs.toFixed(0)} GB/s (copyBufferToBuffer)`);

/** Input ranges for stable runs (decays <= 0, small keys for the delta rule, small a and b for RWKV-7). */

interface BenchRow { model: string; shape: string; variant: string; ms: number; all: number[]; floorMs: number; note?: string; auto?: string; estimateMs?: number; phaseAMs?: number; phaseAWalkMs?: number }
const rows: BenchRow[] = [];
for (const name of BENCH.filter((m) => !only || only.includes(m))) {
  const model = modelOf(name);
  const plan = compileWgsl(model, ["sequential", "scan", "chunked"]);
  for (const s0 of SHAPES) {
    const s = smoke ? { ...s0, B: 1, T: Math.min(s0.T, 256), label: `${s0.label} (smoke)` } : s0;
    if (left() < 20) { log(`budget: skipping ${name} ${s.label}`); continue; }
    const H = name === "mamba2" ? 32 : s.H;
    const K = name === "mamba2" ? 64 : s.K;
    const dims = dimsFor(model, H, K, K);
    const full = { ...dims, B: s.B, T: s.T };
    const { bufs, inputs, params } = await fillChunkedInputs(device, model, name, dims, s.B, s.T);
    const floorMs = (evalSize(trafficBytes(model), full) / (copyGBs * 1e9)) * 1e3;
    const env = { ...full, LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: device.limits.maxStorageBufferBindingSize };
    const ranked = rankForms(plan.forms, env);
    const autoPick = ranked[0] ? `${ranked[0].form.form}/${ranked[0].form.variant}` : "none";
    const est = new Map(ranked.map((r) => [`${r.form.form}/${r.form.variant}`, r.seconds * 1e3]));
    const seqPick = ranked.find((r) => r.form.form === "sequential");
    const chunkedVs = ranked.filter((r) => r.form.form === "chunked" && (!benchVariants || benchVariants.some((x) => r.form.variant.includes(x)))).slice(0, autoOnly ? 1 : undefined);
    const candidates = autoOnly
      ? [...new Set([...chunkedVs.map((r) => `chunked/${r.form.variant}`), autoPick].filter((v) => v !== "none"))]
      : [...chunkedVs.map((r) => `chunked/${r.form.variant}`), ...(seqPick && !noSequential ? [`sequential/${seqPick.form.variant}`] : [])];
    for (const v of candidates) {
      if (left() < 10) { log(`budget: skipping ${name} ${s.label} ${v}`); continue; }
      const [form, variant] = v.split("/");
      try {
        const runner = await ModelRunner.create(withForms(plan, (f) => f.form === form && f.variant === variant), { device, dims, params, tune: false, form: form as "chunked" });
        try {
          const once = async () => {
            const a = performance.now();
            await runner.forward(inputs, { read: false, returnFinalState: true });
            await device.queue.onSubmittedWorkDone();
            return performance.now() - a;
          };
          const first = await once();
          const second = await once();
          const reps = second > 500 ? 1 : second > 100 ? 3 : 5;
          const all: number[] = [];
          for (let i = 0; i < reps; i++) all.push(await once());
          const ms = median(all);
          // phase A alone (the walk's time is the rest); split3: also phase A + the state walk (the readout is the rest)
          const firstKernels = async (n: number): Promise<number> => {
            const fp = plan.forms.find((f) => f.form === form && f.variant === variant)!;
            const ra = await ModelRunner.create({ ...plan, forms: [{ ...fp, kernels: fp.kernels.slice(0, n) }] }, { device, dims, params, tune: false, form: "chunked" });
            try {
              const ta: number[] = [];
              for (let i = 0; i < 4; i++) {
                const a = performance.now();
                await ra.forward(inputs, { read: false });
                await device.queue.onSubmittedWorkDone();
                ta.push(performance.now() - a);
              }
              return median(ta.slice(1));
            } finally {
              ra.dispose();
            }
          };
          const phaseAMs = form === "chunked" && !noParts ? await firstKernels(1) : undefined;
          const phaseAWalkMs = variant.startsWith("chunked-s3-") && !noParts ? await firstKernels(2) : undefined;
          rows.push({ model: name, shape: s.label, variant: v, ms, all, floorMs, auto: autoPick, estimateMs: est.get(v), phaseAMs, phaseAWalkMs });
          log(`bench ${name.padEnd(15)} ${s.label.padEnd(26)} ${v.padEnd(36)} ${ms.toFixed(3)} ms (phase A ${phaseAMs?.toFixed(3) ?? "-"} ms; + walk ${phaseAWalkMs?.toFixed(3) ?? "-"} ms; first ${first.toFixed(0)} ms; floor ${floorMs.toFixed(3)} ms; estimate ${est.get(v)?.toFixed(3)} ms)`);
        } finally {
          runner.dispose();
        }
      } catch (e) {
        const note = (e as Error).message.split("\n")[0].slice(0, 200);
        rows.push({ model: name, shape: s.label, variant: v, ms: NaN, all: [], floorMs, note });
        log(`bench ${name} ${s.label} ${v} ERROR ${note}`);
      }
      writeFileSync(join(outDir, "chunked-bench.json"), JSON.stringify({ card, copy, rows, partial: true }, null, 1));
    }
    log(`auto at ${name} ${s.label}: ${autoPick}`);
    for (const b of bufs) b.destroy();
  }
}
writeFileSync(join(outDir, "chunked-bench.json"), JSON.stringify({ card, copy, rows }, null, 1));
const lines = [
  "| model | shape | IO floor ms | best single walk ms (variant) | best split3 ms (variant) | split3: phase A / walk / readout ms | single / split3 | sequential ms | auto picks |",
  "|---|---|---|---|---|---|---|---|---|",
];
const keys = [...new Set(rows.map((r) => `${r.model}|${r.shape}`))];
const fastest = (rs: BenchRow[]) => (rs.length ? rs.reduce((a, b) => (a.ms <= b.ms ? a : b)) : undefined);
for (const k of keys) {
  const rs = rows.filter((r) => `${r.model}|${r.shape}` === k && Number.isFinite(r.ms));
  const old = fastest(rs.filter((r) => r.variant.startsWith("chunked/chunked-slots")));
  const s3 = fastest(rs.filter((r) => r.variant.startsWith("chunked/chunked-s3-")));
  const seq = rs.find((r) => r.variant.startsWith("sequential/"));
  const [m, s] = k.split("|");
  const floor = rows.find((r) => `${r.model}|${r.shape}` === k)!.floorMs;
  const split = s3 && s3.phaseAMs !== undefined && s3.phaseAWalkMs !== undefined ? `${s3.phaseAMs.toFixed(2)} / ${(s3.phaseAWalkMs - s3.phaseAMs).toFixed(2)} / ${(s3.ms - s3.phaseAWalkMs).toFixed(2)}` : "-";
  lines.push(`| ${m} | ${s} | ${floor.toFixed(3)} | ${old ? `${old.ms.toFixed(3)} (${old.variant.slice(16)})` : "-"} | ${s3 ? `${s3.ms.toFixed(3)} (${s3.variant.slice(19)})` : "-"} | ${split} | ${old && s3 ? (old.ms / s3.ms).toFixed(2) : "-"} | ${seq ? seq.ms.toFixed(3) : "-"} | ${rows.find((r) => `${r.model}|${r.shape}` === k)!.auto ?? ""} |`);
}
writeFileSync(join(outDir, "chunked-table.md"), lines.join("\n") + "\n");
console.log(lines.join("\n"));
log("done");
device.destroy();
process.exit(0);
