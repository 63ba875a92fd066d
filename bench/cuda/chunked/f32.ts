/**
 * seqc's CUDA chunked form in fp32 at the WGSL chunked benchmark's shapes (bench/webgpu/chunked.ts), for the
 * WGSL-vs-CUDA ratio measured in the same device call. Plans from bench/cuda/chunked/build-f32.ts.
 *   node dist/chunked-f32.mjs [--out dir] [--only gla,...] [--pool]   (plans from $SEQC_PLANS where set)
 * Every applicable fp32 variant: 2 warm-ups, median of 5 forwards (CUDA events; state upload and every launch).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../../compiler/frontend/load.ts";
import type { Model } from "../../../compiler/ir/types.ts";
import { CudaDevice, CudaModelRunner, type CudaModelPlan } from "../../../runtime/cuda/index.ts";

const args = process.argv.slice(2);
const opt = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const OUT = opt("--out") ?? process.env.OUT ?? "out";
const only = opt("--only")?.split(",");
mkdirSync(OUT, { recursive: true });
const t0 = performance.now();
const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const BENCH = ["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"];
const SHAPES = [
  { label: "B=8 T=2048 H=16 K=V=64", B: 8, T: 2048, H: 16, K: 64 },
  { label: "B=4 T=8192 H=16 K=V=128", B: 4, T: 8192, H: 16, K: 128 },
  { label: "B=1 T=32768 H=8 K=V=128", B: 1, T: 32768, H: 8, K: 128 },
];
function range(model: string, t: string, kind: string): [number, number] {
  if (kind === "param") return t === "A" ? [-2, -0.5] : [-1, 1];
  if (t === "g" || t === "gk" || t === "w") return [-1, -0.01];
  if (t === "beta") return [0.05, 1];
  if (t === "dt") return [0.01, 0.3];
  if (t === "k" && model.includes("delta")) return [-0.1, 0.1];
  if (t === "a") return [-0.1, 0];
  if (t === "b") return [0, 0.1];
  return [-1, 1];
}
let seed = 12345;
function fill(n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed++ >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    a[i] = lo + ((hi - lo) * x) / 4294967296;
  }
  return a;
}
// --pool: the inputs are windows of one pool of uniforms at a per-tensor offset, mapped to each tensor's range (the
// times do not depend on the values within the ranges; the xorshift fill of ~3e9 values took most of run 3's 20 s)
const POOL = args.includes("--pool") ? fill(1 << 24, 0, 1) : undefined;
let poolAt = 0;
function fillFast(n: number, lo: number, hi: number): Float32Array {
  if (!POOL) return fill(n, lo, hi);
  const a = new Float32Array(n);
  const off = (poolAt += 7919) % POOL.length;
  for (let i = 0, j = off; i < n; i++, j = j + 1 === POOL.length ? 0 : j + 1) a[i] = lo + (hi - lo) * POOL[j];
  return a;
}

const device = await CudaDevice.open(0);
log(`device ${device.info.name} sm_${device.info.sm} ${device.info.multiprocessors} SMs`);
const rows: { model: string; shape: string; variant: string; ms: number; all: number[]; note?: string }[] = [];
for (const name of BENCH.filter((m) => !only || only.includes(m))) {
  const model: Model = loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
  const plan: CudaModelPlan = JSON.parse(readFileSync(join(process.cwd(), process.env.SEQC_PLANS ?? "dist/chunked-f32-plans", `${model.name}.cuda.json`), "utf8"));
  for (const s of SHAPES) {
    const H = name === "mamba2" ? 32 : s.H;
    const K = name === "mamba2" ? 64 : s.K;
    const dims: Record<string, number> = {};
    for (const d of model.dims) dims[d.name] = d.name === "H" ? H : ["K", "N", "V", "P"].includes(d.name) ? K : 1;
    const inputs: Record<string, Float32Array> = {};
    const params: Record<string, Float32Array> = {};
    for (const t of model.tensors) {
      if (t.kind !== "input" && !(t.kind === "param" && !t.init)) continue;
      const n = t.shape.reduce((a, e) => a * (e.kind === "lit" ? e.value : dims[e.name]), 1) * (t.kind === "input" ? s.B * s.T : 1);
      const [lo, hi] = range(name, t.name, t.kind);
      (t.kind === "input" ? inputs : params)[t.name] = fillFast(n, lo, hi);
    }
    const runner = await CudaModelRunner.create(plan, { dims, params, device, dtype: "f32" });
    for (const { form } of runner.applicableForms(s.B, s.T, "chunked")) {
      try {
        await runner.ensureModule(form);
        const p = runner.prepare(inputs, { batch: s.B, form: form.variant });
        const st = device.stream();
        for (let i = 0; i < 2; i++) p.enqueue(st);
        await device.synchronize(st);
        const ms: number[] = [];
        for (let i = 0; i < 5; i++) ms.push(device.timeMs(st, () => p.enqueue(st)));
        await device.synchronize(st);
        p.dispose();
        device.destroyStream(st);
        rows.push({ model: name, shape: s.label, variant: form.variant, ms: median(ms), all: ms });
        log(`cuda ${name.padEnd(15)} ${s.label.padEnd(26)} ${form.variant.padEnd(32)} ${median(ms).toFixed(3)} ms`);
      } catch (e) {
        const note = (e as Error).message.split("\n")[0].slice(0, 200);
        rows.push({ model: name, shape: s.label, variant: form.variant, ms: NaN, all: [], note });
        log(`cuda ${name} ${s.label} ${form.variant} ERROR ${note}`);
      }
      writeFileSync(join(OUT, "chunked-f32-cuda.json"), JSON.stringify({ device: device.info, rows, partial: true }, null, 1));
    }
    runner.dispose();
  }
}
writeFileSync(join(OUT, "chunked-f32-cuda.json"), JSON.stringify({ device: device.info, rows }, null, 1));
log("done");
device.dispose();
