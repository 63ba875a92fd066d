/**
 * The chunked form on the GPU (bundled to dist/chunked-check.mjs; plans from bench/cuda/chunked/build.ts).
 *   node dist/chunked-check.mjs check   every chunked model x I/O type x variant against the float64
 *                                       interpreter (fp32 <= 1e-4, bf16/f16 <= 1e-2; T = 1, ragged T, batch,
 *                                       initial state, odd K and V; K = V = 64 and 128 in bf16), and the
 *                                       numerics stress at T = 65536 (log decays to -20, saturated gates,
 *                                       beta in (0, 2)); SEQC_CHECK_VARIANTS=<regexp> checks only those variants,
 *                                       SEQC_CHECK_T=<steps> sets T of the K = 64 / 128 cases (the float64
 *                                       reference of RWKV-7 at K = 128, T = 130 takes ~30 s)
 *   node dist/chunked-check.mjs bench   the benchmark shapes, inputs written by anchors.py gen into
 *                                       $SEQC_CHUNK_DIR: every applicable bf16 variant timed (CUDA events,
 *                                       median), outputs of the fastest written back for compare.py;
 *                                       SEQC_BENCH_AUTO_ONLY=1: auto's pick only (its outputs written back),
 *                                       SEQC_BENCH_ALL=model:shape,... every variant there all the same
 * Writes $OUT/chunked-<mode>.json and prints one line per case.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../../compiler/frontend/load.ts";
import { interpret } from "../../../compiler/ir/interpret.ts";
import type { Model } from "../../../compiler/ir/types.ts";
import { CudaDevice, CudaModelRunner, type CudaModelPlan } from "../../../runtime/cuda/index.ts";
import { fromBf16, fromF16, toBf16, toF16 } from "../../../runtime/cuda/half.ts";
import { chunkInputs } from "../../../test/helpers/chunk-inputs.ts";
import { smallDims } from "../../../test/helpers/random.ts";
import { relErr, median } from "../common.ts";
import { MODELS, variantsFor } from "./build.ts";

const ROOT = process.cwd();
const OUT = process.env.OUT ?? join(ROOT, "out");
const DIR = process.env.SEQC_CHUNK_DIR ?? "/dev/shm/seqc-chunk";
mkdirSync(OUT, { recursive: true });
const mode = process.argv[2] ?? "check";
const log = (s: string) => process.stdout.write(s + "\n");

const loadModel = (name: string): Model => loadProgram([join(ROOT, "stdlib", `${name}.seq`)]).models[0];
const loadPlan = (m: Model): CudaModelPlan => JSON.parse(readFileSync(join(ROOT, process.env.SEQC_PLANS ?? "dist/chunked-plans", `${m.name}.cuda.json`), "utf8"));
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
const round = (io: string, x: Float64Array) => (io === "bf16" ? x.map((v) => fromBf16(toBf16(v))) : io === "f16" ? x.map((v) => fromF16(toF16(v))) : x);

const refs = new Map<string, { run: ReturnType<typeof chunkInputs>; ref: ReturnType<typeof interpret> }>();
interface Row { model: string; variant: string; shape: string; worst: number; finite: boolean; ok: boolean; errors: Record<string, number>; note?: string; ms?: number }

export async function runCase(device: CudaDevice, model: Model, plan: CudaModelPlan, variant: string, c: { T: number; B: number; K: number; V: number; J?: number; H?: number; init?: boolean; stress?: boolean }, seed: number): Promise<Row> {
  const io = /-(f32|bf16|f16)-/.exec(variant)![1];
  const dims = smallDims(model, { K: c.K, V: c.V, H: c.H ?? 2, P: c.V, N: c.K, J: c.J ?? 2 });
  // inputs (rounded to the I/O type) and the interpreter's result, shared by the variants of a case
  const key = `${model.name}|${io === "f32" ? "f32" : io}|${JSON.stringify(c)}|${seed}`;
  let cached = refs.get(key);
  if (!cached) {
    const r = chunkInputs(model, { dims, batch: c.B, time: c.T, seed, initialState: c.init, stress: c.stress });
    for (const k of Object.keys(r.inputs)) r.inputs[k] = round(io, r.inputs[k]);
    cached = { run: r, ref: interpret(model, r) };
    refs.set(key, cached);
  }
  const { run, ref } = cached;
  const shape = `B=${c.B} T=${c.T} ${Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(" ")}${c.init ? " init" : ""}${c.stress ? " stress" : ""}`;
  const row: Row = { model: model.name, variant, shape, worst: Infinity, finite: false, ok: false, errors: {} };
  try {
    const runner = await CudaModelRunner.create(plan, { dims, params: f32(run.params), device, dtype: io as "f32" });
    try {
      const { form } = runner.pick(c.B, c.T, variant);
      await runner.ensureModule(form);
      const p = runner.prepare(f32(run.inputs), { batch: c.B, initialState: f32(run.initialState), form: variant });
      const s = device.stream();
      p.poison(s);
      p.enqueue(s);
      await device.synchronize(s);
      device.destroyStream(s);
      const got = p.read();
      p.dispose();
      row.finite = Object.values(got.outputs).every((a) => a.every(Number.isFinite)) && Object.values(got.finalState).every((a) => a.every(Number.isFinite));
      for (const [k, v] of Object.entries(ref.outputs)) row.errors[k] = relErr(got.outputs[k], v);
      for (const [k, v] of Object.entries(ref.finalState)) row.errors[`final ${k}`] = relErr(got.finalState[k], v);
      row.worst = Math.max(...Object.values(row.errors));
      row.ok = row.finite && row.worst <= (io === "f32" ? 1e-4 : 1e-2);
    } finally {
      runner.dispose();
    }
  } catch (e) {
    row.note = e instanceof Error ? e.message.split("\n").slice(0, 3).join(" | ") : String(e);
  }
  log(`check ${row.ok ? "ok  " : "FAIL"} ${model.name.padEnd(18)} ${variant.padEnd(30)} rel ${row.worst.toExponential(2)} ${shape}${row.note ? "  " + row.note : ""}`);
  return row;
}

async function check(device: CudaDevice, only?: string[]) {
  const rows: Row[] = [];
  for (const name of MODELS.filter((m) => !only || only.includes(m))) {
    const model = loadModel(name);
    const plan = loadPlan(model);
    // SEQC_CHECK_VARIANTS: a regular expression of the variants to check (default all the plan has)
    const pick = process.env.SEQC_CHECK_VARIANTS ? new RegExp(process.env.SEQC_CHECK_VARIANTS) : undefined;
    const vs = variantsFor(name).filter((v) => plan.forms.some((f) => f.variant === v) && (!pick || pick.test(v)));
    const J = (v: string) => (name === "gated_deltaproduct" ? { r1: 1, r2: 2, r4: 3 }[/-(r\d)$/.exec(v)![1]]! : 2);
    for (const v of vs) {
      let seed = 100;
      const kp = Number(/-k(\d+)-/.exec(v)![1]);
      const cases =
        kp === 32
          ? [{ T: 1, B: 1, K: 5, V: 7 }, { T: 77, B: 2, K: 5, V: 7, init: true }, ...(process.env.SEQC_CHECK_QUICK && !v.includes("-f16-") ? [] : [{ T: 333, B: 1, K: 32, V: 24, init: true }])]
          : [{ T: Number(process.env.SEQC_CHECK_T ?? (kp === 64 ? 200 : 130)), B: 2, K: kp, V: kp, init: true }];
      for (const c of cases) rows.push(await runCase(device, model, plan, v, { ...c, J: J(v) }, seed++));
    }
    refs.clear();
  }
  // numerics stress at T = 65536: log decays down to -20 per step, saturated gates, beta in (0, 2)
  // (SEQC_CHECK_STRESS=0 skips them)
  for (const name of ["gla", "rwkv7", "gated_deltanet", "mamba2", "gated_deltaproduct"].filter((m) => (!only || only.includes(m)) && process.env.SEQC_CHECK_STRESS !== "0")) {
    const model = loadModel(name);
    const plan = loadPlan(model);
    const r = name === "rwkv7" ? 2 : 1;
    for (const v of [`chunked-fused-f32-k32-v16-r${r}`, `chunked-fused-bf16-k32-v32-r${r}`, `chunked-split-bf16-k32-v16-r${r}`, `chunked-split3-f32-k32-v16-r${r}`, `chunked-split3-bf16-k32-v16-r${r}`])
      rows.push(await runCase(device, model, plan, v, { T: 65536, B: 1, H: 1, K: 8, V: 8, J: 1, init: true, stress: true }, 7));
    for (const k of [...refs.keys()]) if (k.startsWith(model.name)) refs.delete(k);
  }
  const bad = rows.filter((r) => !r.ok);
  writeFileSync(process.env.SEQC_CHECK_JSON ?? join(OUT, "chunked-check.json"), JSON.stringify({ device: device.info, rows }, null, 1));
  log(`check summary: ${rows.length - bad.length} of ${rows.length} passed`);
  // worst error per model x I/O type
  const worst = new Map<string, number>();
  for (const r of rows) {
    const io = /-(f32|bf16|f16)-/.exec(r.variant)![1];
    const k = `${r.model} ${io}${r.shape.includes("stress") ? " stress" : ""}`;
    worst.set(k, Math.max(worst.get(k) ?? 0, r.worst));
  }
  for (const [k, w] of [...worst].sort()) log(`worst ${k.padEnd(34)} ${w.toExponential(2)}`);
}

// ---------------- benchmark ----------------
interface Meta { model: string; shape: string; B: number; T: number; dims: Record<string, number>; inputs: Record<string, string>; params: Record<string, string> }

async function bench(device: CudaDevice) {
  const all = existsSync(join(DIR, "index.json")) ? (JSON.parse(readFileSync(join(DIR, "index.json"), "utf8")) as Meta[]) : [];
  // `bench <model> <shape>`: one case (run.sh starts a process per case, so a crash loses one case only)
  const metas = all.filter((m) => (!process.argv[3] || m.model === process.argv[3]) && (!process.argv[4] || m.shape === process.argv[4]));
  const rows: { model: string; shape: string; variant: string; ms: number; all: number[]; parts?: number[]; note?: string; auto?: boolean }[] = [];
  for (const meta of metas) {
    const model = loadModel(meta.model);
    const plan = loadPlan(model);
    const inputs: Record<string, Uint16Array> = {};
    for (const [k, f] of Object.entries(meta.inputs)) {
      const b = readFileSync(join(DIR, f));
      inputs[k] = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
    }
    const params: Record<string, Float32Array> = {};
    for (const [k, f] of Object.entries(meta.params)) {
      const b = readFileSync(join(DIR, f));
      params[k] = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    }
    const runner = await CudaModelRunner.create(plan, { dims: meta.dims, params, device, dtype: "bf16" });
    let best: { variant: string; ms: number; out: Uint16Array } | undefined;
    const autoVariant = runner.pick(meta.B, meta.T, "chunked").form.variant;
    log(`bench auto ${meta.model} ${meta.shape} ${autoVariant}`);
    // SEQC_BENCH_AUTO_ONLY=1: only auto's pick, except at the cases SEQC_BENCH_ALL=model:shape,... (every variant);
    // the output written back for compare.py is then auto's
    const autoOnly = process.env.SEQC_BENCH_AUTO_ONLY === "1" && !(process.env.SEQC_BENCH_ALL ?? "").split(",").includes(`${meta.model}:${meta.shape}`);
    const forms = runner.applicableForms(meta.B, meta.T, "chunked").filter(({ form }) => !autoOnly || form.variant === autoVariant);
    // SEQC_BENCH_REVERSE=1: the variants in reverse plan order (a round against the other rounds' order)
    if (process.env.SEQC_BENCH_REVERSE === "1") forms.reverse();
    for (const { form } of forms) {
      const variant = form.variant;
      try {
        await runner.ensureModule(form);
        const p = runner.prepare(inputs as unknown as Record<string, Float32Array>, { batch: meta.B, form: variant });
        const s = device.stream();
        for (let i = 0; i < 3; i++) p.enqueue(s);
        await device.synchronize(s);
        const ms: number[] = [];
        for (let i = 0; i < 15; i++) ms.push(device.timeMs(s, () => p.enqueue(s)));
        await device.synchronize(s);
        const m = median(ms);
        // split variants: each kernel alone (phase A; the walk over the workspace the full runs left)
        const parts: number[] = [];
        if (form.steps.length > 1)
          for (let k = 0; k < form.steps.length; k++) {
            const t: number[] = [];
            for (let i = 0; i < 7; i++) t.push(device.timeMs(s, () => p.enqueue(s, (_x, idx) => idx === k)));
            parts.push(median(t));
          }
        // the outputs of a full forward (the parts above left only partial work behind)
        p.enqueue(s);
        await device.synchronize(s);
        const outName = plan.tensors.find((t) => t.role === "output")!.name;
        const raw = device.download(p.outputBuffer(outName), meta.B * meta.T * runner.sizeOfTensor(outName) * 2);
        const out = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        p.dispose();
        device.destroyStream(s);
        rows.push({ model: meta.model, shape: meta.shape, variant, ms: m, all: ms, ...(parts.length ? { parts } : {}), ...(variant === autoVariant ? { auto: true } : {}) });
        log(`bench ${meta.model.padEnd(18)} ${meta.shape.padEnd(28)} ${variant.padEnd(30)} ${m.toFixed(3)} ms${parts.length ? `  (${parts.map((x) => x.toFixed(3)).join(" + ")})` : ""}`);
        if (process.env.SEQC_BENCH_AUTO_ONLY === "1" ? variant === autoVariant : !best || m < best.ms) best = { variant, ms: m, out };
      } catch (e) {
        const note = e instanceof Error ? e.message.split("\n")[0] : String(e);
        rows.push({ model: meta.model, shape: meta.shape, variant, ms: NaN, all: [], note });
        log(`bench ${meta.model} ${meta.shape} ${variant} ERROR ${note}`);
      }
    }
    if (best) writeFileSync(join(DIR, `${meta.model}-${meta.shape}.seqc.bin`), best.out);
    runner.dispose();
    writeFileSync(process.env.SEQC_BENCH_JSON ?? join(OUT, "chunked-bench.json"), JSON.stringify({ device: device.info, rows }, null, 1));
  }
  writeFileSync(join(OUT, "chunked-bench.json"), JSON.stringify({ device: device.info, rows }, null, 1));
}

// the bundle under any name dist/chunked-check*.mjs (run 6 named its bundle chunked-check-run6.mjs, which the
// pattern without the suffix missed: its checks and timings silently did nothing)
if (/chunked-check[\w-]*\.mjs$|check\.ts$/.test(process.argv[1] ?? "")) {
  const device = await CudaDevice.open(0);
  log(`device ${device.info.name} sm_${device.info.sm} ${device.info.multiprocessors} SMs, driver ${device.info.driverVersion}`);
  if (mode === "check") await check(device, process.argv[3]?.split(","));
  else await bench(device);
  device.dispose();
}
