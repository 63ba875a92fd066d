/**
 * mLSTM's chunked form on the GPU, one process (bundled to dist/mlstm/run.mjs; the CUDA plan with cubins from
 * bench/mlstm/build.ts), both backends:
 *   check  WGSL (Dawn/Vulkan) and CUDA (fp32 and bf16) chunked against the float64 interpreter at K = V = 64
 *          (B = 2, T = 333, H = 2, initial state; T = 1 from the declared state), and the numerics stress at
 *          T = 65536 (input gates up to +30, log forget gates down to -20; H = 1, K = V = 8) beside the
 *          sequential form's error on the same inputs;
 *   time   (B=8, T=2048, H=16, K=V=64) and (B=4, T=8192, H=16, K=V=128): chunked (auto's variant) beside the
 *          sequential form (auto's variant), median of 5 after 2 warm-ups (WGSL: wall clock to queue idle,
 *          inputs on the device; CUDA: events around the enqueued launches, inputs uploaded once).
 * Writes $OUT/mlstm.json and prints a table.
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret, type RunInputs, type RunResult } from "../../compiler/ir/interpret.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import { trafficBytes } from "../../compiler/kernel/sequential.ts";
import { requestDevice, ModelRunner, evalSize } from "../../runtime/index.ts";
import { CudaDevice, CudaModelRunner, type CudaModelPlan } from "../../runtime/cuda/index.ts";
import { fromBf16, toBf16 } from "../../runtime/cuda/half.ts";
import { chunkInputs } from "../../test/helpers/chunk-inputs.ts";
import { smallDims } from "../../test/helpers/random.ts";

const OUT = process.env.OUT ?? "out";
mkdirSync(OUT, { recursive: true });
const t0 = performance.now();
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);
const model = loadProgram([join(process.cwd(), "stdlib/mlstm.seq")]).models[0];
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Record<string, ArrayLike<number>> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float64Array.from(v)]));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const errs = (got: { outputs: Record<string, Float64Array>; finalState: Record<string, Float64Array> }, want: RunResult) => {
  const e: Record<string, number> = {};
  for (const [k, v] of Object.entries(want.outputs)) e[k] = relativeError(got.outputs[k], v);
  for (const [k, v] of Object.entries(want.finalState)) e[`final ${k}`] = relativeError(got.finalState[k], v);
  return e;
};
const finite = (r: { outputs: Record<string, Float64Array>; finalState: Record<string, Float64Array> }) => [...Object.values(r.outputs), ...Object.values(r.finalState)].every((a) => a.every(Number.isFinite));
const fmt = (e: Record<string, number>) => Object.entries(e).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(", ");

interface Check { backend: string; io: string; form: string; shape: string; errors: Record<string, number>; finite: boolean }
interface Time { backend: string; io: string; form: string; shape: string; ms: number; all: number[]; floorMs: number }
const checks: Check[] = [];
const times: Time[] = [];
const SMOKE = !!process.env.SMOKE; // small shapes (a CPU adapter)
const CASES0 = [
  { label: "B=2 T=333 H=2 K=V=64 init", B: 2, T: 333, H: 2, K: 64, init: true, stress: false },
  { label: "B=1 T=1 H=2 K=V=64 fresh", B: 1, T: 1, H: 2, K: 64, init: false, stress: false },
  { label: "stress B=1 T=65536 H=1 K=V=8", B: 1, T: 65536, H: 1, K: 8, init: true, stress: true },
];
const CASES = SMOKE ? CASES0.map((c) => ({ ...c, T: Math.min(c.T, 2048) })) : CASES0;
const SHAPES0 = [
  { label: "B=8 T=2048 H=16 K=V=64", B: 8, T: 2048, H: 16, K: 64 },
  { label: "B=4 T=8192 H=16 K=V=128", B: 4, T: 8192, H: 16, K: 128 },
];
const SHAPES = SMOKE ? SHAPES0.map((s) => ({ ...s, B: 1, T: 128, H: 2 })) : SHAPES0;
const runs = CASES.map((c, i) => {
  const dims = smallDims(model, { H: c.H, K: c.K, V: c.K });
  const run = chunkInputs(model, { dims, batch: c.B, time: c.T, seed: 40 + i, initialState: c.init, stress: c.stress });
  if (!c.init) run.initialState = undefined;
  return { c, dims, run, ref: interpret(model, run) };
});
const copyBW = 3.0e12; // bytes/s, the H100's HBM3 order (floor only)

// ---------------- WGSL ----------------
async function wgsl() {
  const device = await requestDevice();
  const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  log(`webgpu: ${info ? `${info.vendor} ${info.architecture} ${info.description}` : "?"}`);
  const plan = compileWgsl(model, ["sequential", "chunked"]);
  for (const { c, dims, run, ref } of runs) {
    for (const form of c.stress ? (["chunked", "sequential"] as const) : (["chunked"] as const)) {
      const runner = await ModelRunner.create(plan, { device, dims, params: f32(run.params), tune: false, form });
      try {
        const full = runner.dimsFor(c.T);
        const inputs = Object.fromEntries(Object.entries(run.inputs).map(([k, a]) => [k, { data: Float32Array.from(a), shape: [c.B, c.T, ...model.tensors.find((t) => t.name === k)!.shape.map((e) => (e.kind === "lit" ? e.value : full[e.name]))] }]));
        const r = await runner.forward(inputs, { initialState: f32(run.initialState), returnFinalState: true, form });
        const got = { outputs: f64(r.outputs as Record<string, Float32Array>), finalState: f64(r.finalState as Record<string, Float32Array>) };
        const row = { backend: "wgsl", io: "f32", form: r.form, shape: c.label, errors: errs(got, ref), finite: finite(got) };
        checks.push(row);
        log(`check wgsl ${r.form} ${c.label}: ${fmt(row.errors)}${row.finite ? "" : " NON-FINITE"}`);
      } catch (e) {
        log(`check wgsl ${form} ${c.label}: ERROR ${String(e).split("\n")[0]}`);
      } finally {
        runner.dispose();
      }
    }
  }
  for (const s of SHAPES) {
    if (performance.now() - t0 > 80e3) { log(`budget: skipping wgsl ${s.label}`); continue; }
    const dims = smallDims(model, { H: s.H, K: s.K, V: s.K });
    const bufs: GPUBuffer[] = [];
    const inputs: Record<string, { data: GPUBuffer; shape: number[] }> = {};
    const rng = (n: number, lo: number, hi: number, seed: number) => {
      let x = seed >>> 0;
      return Float32Array.from({ length: n }, () => { x = (x * 1664525 + 1013904223) >>> 0; return lo + ((hi - lo) * x) / 2 ** 32; });
    };
    for (const t of model.tensors.filter((x) => x.kind === "input")) {
      const shape = t.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name]));
      const n = s.B * s.T * shape.reduce((a, b) => a * b, 1);
      const b = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
      const [lo, hi] = t.name === "i" ? [-2, 2] : t.name === "f" ? [-1, 4] : [-1, 1];
      device.queue.writeBuffer(b, 0, rng(n, lo, hi, n + t.name.length));
      bufs.push(b);
      inputs[t.name] = { data: b, shape: [s.B, s.T, ...shape] };
    }
    const floorMs = (evalSize(trafficBytes(model), { ...dims, B: s.B, T: s.T }) / copyBW) * 1e3;
    for (const form of ["chunked", "sequential"] as const) {
      const runner = await ModelRunner.create(plan, { device, dims, tune: false, form });
      try {
        let picked = "";
        const once = async () => {
          const a = performance.now();
          const r = await runner.forward(inputs, { read: false, returnFinalState: true, form });
          picked = r.form;
          await device.queue.onSubmittedWorkDone();
          return performance.now() - a;
        };
        await once();
        const second = await once();
        const all: number[] = [];
        for (let i = 0; i < (second > 300 ? 2 : 5); i++) all.push(await once());
        times.push({ backend: "wgsl", io: "f32", form: picked, shape: s.label, ms: median(all), all, floorMs });
        log(`time wgsl ${picked.padEnd(40)} ${s.label}: ${median(all).toFixed(3)} ms (floor ${floorMs.toFixed(3)} ms)`);
      } catch (e) {
        log(`time wgsl ${form} ${s.label}: ERROR ${String(e).split("\n")[0]}`);
      } finally {
        runner.dispose();
      }
    }
    for (const b of bufs) b.destroy();
  }
  device.destroy();
}

// ---------------- CUDA ----------------
async function cuda() {
  const device = await CudaDevice.open(0);
  log(`cuda: ${device.info.name} sm_${device.info.sm}, ${device.info.multiprocessors} SMs, driver ${device.info.driverVersion}`);
  const plan: CudaModelPlan = JSON.parse(readFileSync(join(process.cwd(), "dist/mlstm/Mlstm.cuda.json"), "utf8"));
  const roundBf16 = (r: RunInputs): RunInputs => ({ ...r, inputs: Object.fromEntries(Object.entries(r.inputs).map(([k, v]) => [k, v.map((x) => fromBf16(toBf16(x)))])) });
  for (const { c, dims, run, ref } of runs) {
    for (const [io, form] of [["f32", "chunked"], ["bf16", "chunked"], ...(c.stress ? [["f32", "sequential"]] : [])] as [string, string][]) {
      const r0 = io === "bf16" ? roundBf16(run) : run;
      const want = io === "bf16" ? interpret(model, r0) : ref;
      try {
        const runner = await CudaModelRunner.create(plan, { dims, params: f32(r0.params), device, dtype: io as "f32", form: form as "chunked" });
        try {
          const { form: fp } = runner.pick(c.B, c.T, form as "chunked");
          await runner.ensureModule(fp);
          const p = runner.prepare(f32(r0.inputs), { batch: c.B, initialState: f32(r0.initialState), form: fp.variant });
          const st = device.stream();
          p.poison(st);
          p.enqueue(st);
          await device.synchronize(st);
          device.destroyStream(st);
          const got = p.read();
          p.dispose();
          const g = { outputs: f64(got.outputs), finalState: f64(got.finalState) };
          const row = { backend: "cuda", io, form: `${form}/${fp.variant}`, shape: c.label, errors: errs(g, want), finite: finite(g) };
          checks.push(row);
          log(`check cuda ${io} ${row.form} ${c.label}: ${fmt(row.errors)}${row.finite ? "" : " NON-FINITE"}`);
        } finally {
          runner.dispose();
        }
      } catch (e) {
        log(`check cuda ${io} ${form} ${c.label}: ERROR ${String(e).split("\n").slice(0, 2).join(" | ")}`);
      }
    }
  }
  for (const s of SHAPES) {
    if (performance.now() - t0 > 40e3) { log(`budget: skipping cuda ${s.label}`); continue; }
    const dims = smallDims(model, { H: s.H, K: s.K, V: s.K });
    const run = chunkInputs(model, { dims, batch: s.B, time: s.T, seed: 5 });
    const floorMs = (evalSize(trafficBytes(model), { ...dims, B: s.B, T: s.T }) / copyBW) * 1e3;
    for (const [io, form] of [["f32", "chunked"], ["bf16", "chunked"], ["f32", "sequential"]] as [string, string][]) {
      try {
        const runner = await CudaModelRunner.create(plan, { dims, params: f32(run.params), device, dtype: io as "f32", form: form as "chunked" });
        try {
          const { form: fp } = runner.pick(s.B, s.T, form as "chunked");
          await runner.ensureModule(fp);
          const p = runner.prepare(f32(run.inputs), { batch: s.B, form: fp.variant });
          const st = device.stream();
          for (let i = 0; i < 2; i++) p.enqueue(st);
          await device.synchronize(st);
          const all: number[] = [];
          for (let i = 0; i < 5; i++) all.push(device.timeMs(st, () => p.enqueue(st)));
          await device.synchronize(st);
          device.destroyStream(st);
          p.dispose();
          times.push({ backend: "cuda", io, form: `${form}/${fp.variant}`, shape: s.label, ms: median(all), all, floorMs: io === "bf16" ? floorMs / 2 : floorMs });
          log(`time cuda ${io} ${`${form}/${fp.variant}`.padEnd(40)} ${s.label}: ${median(all).toFixed(3)} ms`);
        } finally {
          runner.dispose();
        }
      } catch (e) {
        log(`time cuda ${io} ${form} ${s.label}: ERROR ${String(e).split("\n").slice(0, 2).join(" | ")}`);
      }
    }
  }
  device.dispose();
}

const which = process.argv[2] ?? "both";
if (which !== "wgsl") await cuda().catch((e) => log(`cuda: ${e}`));
if (which !== "cuda") await wgsl().catch((e) => log(`wgsl: ${e}`));
writeFileSync(join(OUT, "mlstm.json"), JSON.stringify({ checks, times }, null, 1));
const lines = ["| backend | io | form/variant | shape | ms | floor ms | vs sequential |", "|---|---|---|---|---|---|---|"];
for (const t of times) {
  const seq = times.find((x) => x.backend === t.backend && x.shape === t.shape && x.form.startsWith("sequential"));
  lines.push(`| ${t.backend} | ${t.io} | ${t.form} | ${t.shape} | ${t.ms.toFixed(3)} | ${t.floorMs.toFixed(3)} | ${seq ? (seq.ms / t.ms).toFixed(2) + "x" : ""} |`);
}
lines.push("", "| backend | io | form/variant | case | errors | finite |", "|---|---|---|---|---|---|");
for (const c of checks) lines.push(`| ${c.backend} | ${c.io} | ${c.form} | ${c.shape} | ${fmt(c.errors)} | ${c.finite} |`);
writeFileSync(join(OUT, "mlstm-table.md"), lines.join("\n") + "\n");
console.log(lines.join("\n"));
log("done");
process.exit(0);
