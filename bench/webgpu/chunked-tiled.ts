/**
 * Old vs new split3 kernels of the WGSL chunked form, side by side on a GPU (Dawn/Vulkan), one call:
 *   bench  at the shapes (B=8,T=2048,H=16,K=V=64), (4,8192,16,128), (1,32768,8,128) (Mamba-2: 32 heads,
 *          P = N = 64) for six models: the split3 variant `auto` ranks first among the plain ones (`chunked-s3-*`)
 *          and its twin with the tiled readout and padded phase A tiles (`chunked-s3t-*`, same walk tiles); the two
 *          alternate forward by forward (2 warm-ups each, then 7 rounds of one forward each; median), then each
 *          one's phase A alone and phase A + walk (median of 3 after one warm-up; the readout is the rest), and phase A
 *          alone as 10 launches in one forward (median of 3 after a warm-up, divided by 10; twice, alternating).
 *   check  every s3t twin benchmarked, at B = 2, T = 70 (not a multiple of the chunk), H = 2, K = V = its shape's K,
 *          from an initial state, against the float64 interpreter (fp32 <= 1e-4), final states too.
 *   node dist/bench-chunked-tiled.js [--out dir] [--only gla,...] [--budget seconds] [--skip-check] [--skip-bench]
 *     [--smoke] (one small shape: a try of the script on lavapipe)
 *   --old-plans dir  old = the same variant as new (the one `auto` picks: s3t, s3 or the single walk) from plans
 *          compiled at an earlier commit (dir/<model>.json = JSON.stringify(compileWgsl(model, ["chunked"]))), new = it
 *          from this tree: an A/B of a kernel change within one call (bench/webgpu/run-subst.sh).
 * Inputs filled on the device (same ranges as bench/webgpu/chunked.ts). Writes tiled-bench.json, tiled-check.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
import { CHUNKED_MODELS, chunkedShapes, fillChunkedInputs } from "./chunked-inputs.ts";

const args = process.argv.slice(2);
const opt = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const outDir = opt("--out") ?? process.env.OUT ?? "bench-out";
const only = opt("--only")?.split(",");
const budgetS = Number(opt("--budget") ?? 120);
const oldPlans = opt("--old-plans");
const t0 = performance.now();
const left = () => budgetS - (performance.now() - t0) / 1000;
mkdirSync(outDir, { recursive: true });
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const device = await requestDevice();
const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
const card = info ? `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim() : "unknown adapter";
log(`device: ${card}; workgroup memory ${device.limits.maxComputeWorkgroupStorageSize}, storage binding ${device.limits.maxStorageBufferBindingSize}`);
const limits = { LIMIT_SHARED: device.limits.maxComputeWorkgroupStorageSize, LIMIT_THREADS: device.limits.maxComputeInvocationsPerWorkgroup, LIMIT_BINDING: device.limits.maxStorageBufferBindingSize };

const modelOf = (name: string): Model => loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));
const only1 = (plan: ModelPlan, variant: string, n?: number): ModelPlan => {
  const f = plan.forms.find((x) => x.form === "chunked" && x.variant === variant)!;
  return { ...plan, forms: [n === undefined ? f : { ...f, kernels: f.kernels.slice(0, n) }] };
};
const BENCH = only ?? CHUNKED_MODELS; // --only's order
const dimsFor = (model: Model, H: number, K: number): Record<string, number> =>
  Object.fromEntries(model.dims.map((x) => [x.name, x.name === "H" ? H : ["K", "N", "V", "P"].includes(x.name) ? K : 1]));
const SHAPES = chunkedShapes(args.includes("--smoke"));
const twin = (v: string) => v.replace(/^chunked-s3-/, "chunked-s3t-");

interface Row { model: string; shape: string; old: string; new: string; oldMs: number; newMs: number; oldAll: number[]; newAll: number[]; floorMs: number; oldParts?: number[]; newParts?: number[]; oldA: number[]; newA: number[]; note?: string }
/** Phase A launches per forward in the phase-A-only timing. */
const REPS = 10;
const rows: Row[] = [];
/** Per model the s3t twins benchmarked, with their shape's key size (the check runs each at it). */
const pairs = new Map<string, Map<string, number>>();
if (!args.includes("--skip-bench")) {
  const copy = await copyBandwidth(device, args.includes("--smoke") ? 16 << 20 : 1 << 30);
  const copyGBs = Math.max(copy.copyGBs, copy.kernelGBs);
  log(`copy: ${copy.kernelGBs.toFixed(0)} GB/s (WGSL kernel), ${copy.copyGBs.toFixed(0)} GB/s (copyBufferToBuffer)`);
  for (const name of BENCH) {
    const model = modelOf(name);
    const plan = compileWgsl(model, ["chunked"]);
    const planOld: ModelPlan = oldPlans ? JSON.parse(readFileSync(join(oldPlans, `${name}.json`), "utf8")) : plan;
    for (const s of SHAPES) {
      if (left() < 8) { log(`budget: skipping ${name} ${s.label}`); continue; }
      const H = name === "mamba2" ? 32 : s.H;
      const K = name === "mamba2" ? 64 : s.K;
      const dims = dimsFor(model, H, K);
      const full = { ...dims, B: s.B, T: s.T };
      const ranked = rankForms(plan.forms, { ...full, ...limits });
      const old = oldPlans ? ranked[0]?.form.variant : ranked.find((r) => r.form.variant.startsWith("chunked-s3-"))?.form.variant;
      if (oldPlans && !planOld.forms.some((f) => f.variant === old)) { log(`${name} ${s.label}: ${old} not in the old plans`); continue; }
      if (!old || (!oldPlans && !ranked.some((r) => r.form.variant === twin(old)))) { log(`${name} ${s.label}: no split3 pair applies (auto: ${ranked[0]?.form.variant})`); continue; }
      const nw = oldPlans ? old : twin(old);
      if (!pairs.has(name)) pairs.set(name, new Map());
      pairs.get(name)!.set(nw, K);
      const { bufs, inputs, params } = await fillChunkedInputs(device, model, name, dims, s.B, s.T);
      const floorMs = (evalSize(trafficBytes(model), full) / (copyGBs * 1e9)) * 1e3;
      const row: Row = { model: name, shape: s.label, old, new: nw, oldMs: NaN, newMs: NaN, oldAll: [], newAll: [], floorMs, oldA: [], newA: [] };
      try {
        const mk = (p: ModelPlan) => ModelRunner.create(p, { device, dims, params, tune: false, form: "chunked" });
        const time = async (r: ModelRunner, final: boolean) => {
          const a = performance.now();
          await r.forward(inputs, { read: false, returnFinalState: final });
          await device.queue.onSubmittedWorkDone();
          return performance.now() - a;
        };
        const ro = await mk(only1(planOld, old));
        const rn = await mk(only1(plan, nw));
        try {
          for (let i = 0; i < 2; i++) { await time(ro, true); await time(rn, true); }
          const rounds = (await time(rn, true)) > 100 ? 3 : 7;
          for (let i = 0; i < rounds; i++) {
            row.oldAll.push(await time(ro, true));
            row.newAll.push(await time(rn, true));
          }
        } finally {
          ro.dispose();
          rn.dispose();
        }
        row.oldMs = median(row.oldAll);
        row.newMs = median(row.newAll);
        // phase A alone, phase A + walk (split3: [phase A, walk, readout])
        const parts = async (p: ModelPlan, v: string) => {
          const out: number[] = [];
          for (const n of [1, 2]) {
            const r = await mk(only1(p, v, n));
            try {
              const ts: number[] = [];
              for (let i = 0; i < 4; i++) ts.push(await time(r, false));
              out.push(median(ts.slice(1)));
            } finally {
              r.dispose();
            }
          }
          return out;
        };
        if (left() > 25) { row.oldParts = await parts(planOld, old); row.newParts = await parts(plan, nw); }
        // phase A alone, REPS launches in one forward (host and submit overhead spread over them), median of 3
        const phaseAOnly = async (p: ModelPlan, v: string) => {
          const f = p.forms.find((x) => x.form === "chunked" && x.variant === v)!;
          const a = f.kernels.find((k) => /_chunk_a_/.test(k.name))!;
          const r = await mk({ ...p, forms: [{ ...f, kernels: Array.from({ length: REPS }, () => a) }] });
          try {
            const ts: number[] = [];
            for (let i = 0; i < 4; i++) ts.push(await time(r, false));
            return median(ts.slice(1)) / REPS;
          } finally {
            r.dispose();
          }
        };
        if (left() > 20) for (let i = 0; i < 2; i++) { row.oldA.push(await phaseAOnly(planOld, old)); row.newA.push(await phaseAOnly(plan, nw)); }
      } catch (e) {
        row.note = (e as Error).message.split("\n")[0].slice(0, 200);
      }
      rows.push(row);
      const pt = (p?: number[], all?: number) => (p ? `A ${p[0].toFixed(2)} / walk ${(p[1] - p[0]).toFixed(2)} / readout ${((all ?? NaN) - p[1]).toFixed(2)}` : "-");
      log(`${name.padEnd(15)} ${s.label.padEnd(25)} old ${old.slice(8)} ${row.oldMs.toFixed(3)} ms (${pt(row.oldParts, row.oldMs)})  new ${row.newMs.toFixed(3)} ms (${pt(row.newParts, row.newMs)})  old/new ${(row.oldMs / row.newMs).toFixed(2)}  A alone (x${REPS}) old ${row.oldA.map((x) => x.toFixed(3)).join("/")} new ${row.newA.map((x) => x.toFixed(3)).join("/")}  floor ${floorMs.toFixed(3)}${row.note ? "  ERROR " + row.note : ""}`);
      writeFileSync(join(outDir, "tiled-bench.json"), JSON.stringify({ card, copy, rows, partial: true }, null, 1));
      for (const b of bufs) b.destroy();
    }
  }
  writeFileSync(join(outDir, "tiled-bench.json"), JSON.stringify({ card, copy, rows }, null, 1));
}

// ---------------- check ----------------
if (!args.includes("--skip-check")) {
  const checks: { model: string; variant: string; shape: string; worst: number; ok: boolean; errors: Record<string, number>; note?: string }[] = [];
  for (const name of BENCH) {
    const model = modelOf(name);
    const plan = compileWgsl(model, ["chunked"]);
    const vs = pairs.get(name) ?? new Map(plan.forms.filter((f) => /^chunked-s3t-slots32-k(32|64)-v16-/.test(f.variant)).map((f) => [f.variant, 64]));
    const refs = new Map<number, { run: ReturnType<typeof chunkInputs>; want: ReturnType<typeof interpret> }>();
    for (const [v, K] of vs) {
      if (left() < 3) { log(`budget: skipping check ${name} ${v}`); continue; }
      const dims = dimsFor(model, 2, K);
      if (!refs.has(K)) {
        const run = chunkInputs(model, { dims, batch: 2, time: 70, seed: 31, initialState: true });
        refs.set(K, { run, want: interpret(model, run) });
      }
      const { run, want } = refs.get(K)!;
      const row = { model: name, variant: v, shape: `B=2 T=70 H=2 K=V=${K}`, worst: Infinity, ok: false, errors: {} as Record<string, number>, note: undefined as string | undefined };
      try {
        const r0 = await ModelRunner.create(only1(plan, v), { device, dims, params: f32(run.params), tune: false, form: "chunked" });
        try {
          const r = await r0.forward(f32(run.inputs), { batch: 2, initialState: f32(run.initialState), returnFinalState: true });
          const got = { outputs: f64(r.outputs), finalState: f64(r.finalState) };
          for (const [k, x] of Object.entries(want.outputs)) row.errors[k] = relativeError(got.outputs[k], x);
          for (const [k, x] of Object.entries(want.finalState)) row.errors[`final ${k}`] = relativeError(got.finalState[k], x);
          row.worst = Math.max(...Object.values(row.errors));
          const finite = [...Object.values(got.outputs), ...Object.values(got.finalState)].every((a) => a.every(Number.isFinite));
          row.ok = finite && row.worst <= 1e-4;
        } finally {
          r0.dispose();
        }
      } catch (e) {
        row.note = (e as Error).message.split("\n")[0].slice(0, 200);
      }
      checks.push(row);
      log(`check ${row.ok ? "ok  " : "FAIL"} ${name.padEnd(15)} ${v.padEnd(34)} rel ${row.worst.toExponential(2)}${row.note ? "  " + row.note : ""}`);
    }
  }
  writeFileSync(join(outDir, "tiled-check.json"), JSON.stringify({ card, rows: checks }, null, 1));
  log(`check summary: ${checks.filter((c) => c.ok).length} of ${checks.length} passed`);
}
log("done");
device.destroy();
process.exit(0);
