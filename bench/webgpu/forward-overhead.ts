/**
 * What a WGSL chunked forward's wall clock holds besides GPU work, on a GPU (Dawn/Vulkan), one call: at the WGSL chunked
 * benchmark's shapes, for the split3 variant `auto` picks,
 *   single  one forward, awaited (`onSubmittedWorkDone`), as the earlier chunked benches timed it: 2 warm-ups, median of 7;
 *   b2b     REPS forwards submitted back to back, one wait, divided by REPS: host submission overlapped with the GPU and
 *           the wait paid once; a warm-up round, median of 3 rounds. seqc's CUDA numbers (bench/cuda/chunked/f32.ts) are
 *           CUDA-event times of one forward's launches on a stream, which hold no host wait either;
 *   parts   the same back-to-back timing of the plan's first kernel (phase A) and first two (phase A + walk); the readout
 *           is the rest.
 *   host    (with --old) the time until forward() returns, i.e. the runner's host work up to its submit.
 *   node dist/bench-forward-overhead.js [--out dir] [--only gla,...] [--budget seconds] [--smoke] [--old runner.mjs]
 * --old: a bundle of another runtime (esbuild of an exported tree's runtime/index.ts) whose ModelRunner is timed beside
 * this one, the two alternated sample by sample on the same inputs and device (single, b2b and host for both; no parts).
 * Inputs filled on the device (the ranges of bench/webgpu/chunked-tiled.ts). Writes overhead-bench.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { requestDevice, ModelRunner, rankForms, type ModelPlan } from "../../runtime/index.ts";
import { CHUNKED_MODELS, chunkedShapes, fillChunkedInputs } from "./chunked-inputs.ts";

const args = process.argv.slice(2);
const opt = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const outDir = opt("--out") ?? process.env.OUT ?? "bench-out";
const only = opt("--only")?.split(",");
const budgetS = Number(opt("--budget") ?? 90);
const t0 = performance.now();
const left = () => budgetS - (performance.now() - t0) / 1000;
mkdirSync(outDir, { recursive: true });
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const REPS = 10;
const oldPath = opt("--old");
const OldRunner: typeof ModelRunner | undefined = oldPath ? (await import(join(process.cwd(), oldPath))).ModelRunner : undefined;

const device = await requestDevice();
const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
const card = info ? `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim() : "unknown adapter";
log(`device: ${card}`);
const limits = { LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: device.limits.maxStorageBufferBindingSize };

const modelOf = (name: string): Model => loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
const BENCH = only ?? CHUNKED_MODELS;
const SHAPES = chunkedShapes(args.includes("--smoke"));

interface Row {
  model: string; shape: string; variant: string; singleMs: number; b2bMs: number; aMs: number; awMs: number; single: number[]; b2b: number[]; note?: string;
  /** with --old: the same for the old runner, and both runners' host time until forward() returns (median ms) */
  old?: { singleMs: number; b2bMs: number; hostMs: number; single: number[]; b2b: number[]; host: number[] };
  hostMs?: number; host?: number[];
}
const rows: Row[] = [];
for (const name of BENCH) {
  const model = modelOf(name);
  const plan = compileWgsl(model, ["chunked"]);
  for (const s of SHAPES) {
    if (left() < 6) { log(`budget: skipping ${name} ${s.label}`); continue; }
    const H = name === "mamba2" ? 32 : s.H;
    const K = name === "mamba2" ? 64 : s.K;
    const dims = Object.fromEntries(model.dims.map((x) => [x.name, x.name === "H" ? H : ["K", "N", "V", "P"].includes(x.name) ? K : 1]));
    const variant = rankForms(plan.forms, { ...dims, B: s.B, T: s.T, ...limits })[0]?.form.variant;
    if (!variant?.startsWith("chunked-s3")) { log(`${name} ${s.label}: auto picks ${variant}, not a split3 variant; skipped`); continue; }
    const { bufs, inputs, params } = await fillChunkedInputs(device, model, name, dims, s.B, s.T);
    const row: Row = { model: name, shape: s.label, variant, singleMs: NaN, b2bMs: NaN, aMs: NaN, awMs: NaN, single: [], b2b: [] };
    const form = plan.forms.find((f) => f.variant === variant)!;
    const mkOld = () => OldRunner!.create({ ...plan, forms: [form] } as ModelPlan, { device, dims, params, tune: false, form: "chunked" });
    const host = async (r: ModelRunner) => {
      const a = performance.now();
      await r.forward(inputs, { read: false, returnFinalState: true });
      const h = performance.now() - a;
      await device.queue.onSubmittedWorkDone();
      return h;
    };
    const mk = (n?: number) => ModelRunner.create({ ...plan, forms: [n === undefined ? form : { ...form, kernels: form.kernels.slice(0, n) }] } as ModelPlan, { device, dims, params, tune: false, form: "chunked" });
    const single = async (r: ModelRunner) => {
      const a = performance.now();
      await r.forward(inputs, { read: false, returnFinalState: true });
      await device.queue.onSubmittedWorkDone();
      return performance.now() - a;
    };
    const b2b = async (r: ModelRunner) => {
      const a = performance.now();
      for (let i = 0; i < REPS; i++) await r.forward(inputs, { read: false, returnFinalState: true });
      await device.queue.onSubmittedWorkDone();
      return (performance.now() - a) / REPS;
    };
    try {
      if (OldRunner) {
        // old and new alternated sample by sample
        const [ro, rn] = [await mkOld(), await mk()];
        const old = { singleMs: NaN, b2bMs: NaN, hostMs: NaN, single: [] as number[], b2b: [] as number[], host: [] as number[] };
        row.host = [];
        try {
          for (let i = 0; i < 2; i++) { await single(ro); await single(rn); }
          for (let i = 0; i < 9; i++) { old.single.push(await single(ro)); row.single.push(await single(rn)); }
          for (let i = 0; i < 9; i++) { old.host.push(await host(ro)); row.host.push(await host(rn)); }
          await b2b(ro); await b2b(rn);
          for (let i = 0; i < 4; i++) { old.b2b.push(await b2b(ro)); row.b2b.push(await b2b(rn)); }
        } finally {
          ro.dispose();
          rn.dispose();
        }
        old.singleMs = median(old.single); old.b2bMs = median(old.b2b); old.hostMs = median(old.host);
        row.old = old;
        row.singleMs = median(row.single); row.b2bMs = median(row.b2b); row.hostMs = median(row.host);
        rows.push(row);
        log(`${name.padEnd(15)} ${s.label.padEnd(25)} ${variant.slice(8).padEnd(24)} single old ${old.singleMs.toFixed(3)} new ${row.singleMs.toFixed(3)} ms  b2b old ${old.b2bMs.toFixed(3)} new ${row.b2bMs.toFixed(3)} ms  host old ${old.hostMs.toFixed(3)} new ${row.hostMs.toFixed(3)} ms`);
        writeFileSync(join(outDir, "overhead-bench.json"), JSON.stringify({ card, reps: REPS, old: oldPath, rows, partial: true }, null, 1));
        for (const b of bufs) b.destroy();
        continue;
      }
      const r = await mk();
      try {
        for (let i = 0; i < 2; i++) await single(r);
        for (let i = 0; i < 7; i++) row.single.push(await single(r));
        await b2b(r);
        for (let i = 0; i < 3; i++) row.b2b.push(await b2b(r));
      } finally {
        r.dispose();
      }
      row.singleMs = median(row.single);
      row.b2bMs = median(row.b2b);
      const partB2b = async (n: number) => {
        const r = await mk(n);
        try {
          await b2b(r);
          const ts: number[] = [];
          for (let i = 0; i < 3; i++) ts.push(await b2b(r));
          return median(ts);
        } finally {
          r.dispose();
        }
      };
      if (left() > 8) { row.aMs = await partB2b(1); row.awMs = await partB2b(2); }
    } catch (e) {
      row.note = (e as Error).message.split("\n")[0].slice(0, 200);
    }
    rows.push(row);
    log(`${name.padEnd(15)} ${s.label.padEnd(25)} ${variant.slice(8).padEnd(24)} single ${row.singleMs.toFixed(3)} ms  back-to-back ${row.b2bMs.toFixed(3)} ms (A ${row.aMs.toFixed(3)} / walk ${(row.awMs - row.aMs).toFixed(3)} / readout ${(row.b2bMs - row.awMs).toFixed(3)})  single - b2b ${(row.singleMs - row.b2bMs).toFixed(3)} ms${row.note ? "  ERROR " + row.note : ""}`);
    writeFileSync(join(outDir, "overhead-bench.json"), JSON.stringify({ card, reps: REPS, rows, partial: true }, null, 1));
    for (const b of bufs) b.destroy();
  }
}
writeFileSync(join(outDir, "overhead-bench.json"), JSON.stringify({ card, reps: REPS, old: oldPath, rows }, null, 1));
log("done");
device.destroy();
process.exit(0);
