/**
 * Runs on the GPU machine (bundled into dist/cuda-check.mjs by bench/cuda/build.sh):
 *   1. every stdlib model x every CUDA form variant that applies, against the float64 interpreter
 *      (relative error per output and final state, outputs poisoned with NaN before each run);
 *   2. timings of the CUDA variants at the benchmark shapes (hgrn scan; lstm/gru sequential), with
 *      the CUDA copy bandwidth measured in the same process; inputs and our outputs of the benchmark
 *      shapes are written to $SEQC_BENCH_DIR for the PyTorch anchors (anchors.py) to check and time.
 * Writes $OUT/node.json; prints a short table.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret } from "../../compiler/ir/interpret.ts";
import * as I from "../../compiler/ir/types.ts";
import { CudaDevice, CudaModelRunner, nvrtcVersion, type CudaModelPlan } from "../../runtime/cuda/index.ts";
import type { CudaStream } from "../../runtime/cuda/device.ts";
import { checkShapes, fill, median, relErr, rng, sizeOf } from "./common.ts";

const ROOT = process.cwd();
const OUT = process.env.OUT ?? join(ROOT, "out");
const BENCH_DIR = process.env.SEQC_BENCH_DIR ?? "/tmp/seqc-bench";
const PLANS = join(ROOT, process.env.SEQC_PLANS_DIR ?? "dist/cuda-plans");
/** Bench-only plans with more configurations of the pointwise kernels (bench/cuda/sweep-plan.ts). */
const SWEEP = join(ROOT, process.env.SEQC_SWEEP_DIR ?? "dist/cuda-sweep");
mkdirSync(OUT, { recursive: true });
mkdirSync(BENCH_DIR, { recursive: true });
const TOL = 1e-4;
// knobs for profiling runs (ncu): warm-up launches, timed launches of the scan variants, which variants
const WARMUP = Number(process.env.SEQC_BENCH_WARMUP ?? 3);
const SCAN_REPS = Number(process.env.SEQC_BENCH_REPS ?? 30);
const ONLY_VARIANTS = process.env.SEQC_BENCH_ONLY ? new RegExp(process.env.SEQC_BENCH_ONLY) : undefined;
const SKIP_VARIANTS = process.env.SEQC_BENCH_SKIP ? new RegExp(process.env.SEQC_BENCH_SKIP) : undefined;
const SAVE = process.env.SEQC_BENCH_SAVE !== "0";
const BATCH = Number(process.env.SEQC_BENCH_BATCH ?? 10);
/** Rounds of the interleaved hgrn timing (0: time one variant after the other, as runs 2 to 6 did). */
const ROUNDS = Number(process.env.SEQC_BENCH_ROUNDS ?? 0);
/** Only the variants this matches are checked against float64 (default: all). */
const CHECK_ONLY = process.env.SEQC_CHECK_ONLY ? new RegExp(process.env.SEQC_CHECK_ONLY) : undefined;

/** Median per-item time of `n` items enqueued back to back between two events, over 5 rounds. */
function backToBack(device: CudaDevice, s: CudaStream, n: number, one: () => void): number {
  const r: number[] = [];
  for (let i = 0; i < 5; i++)
    r.push(
      device.timeMs(s, () => {
        for (let k = 0; k < n; k++) one();
      }) / n,
    );
  return median(r);
}

interface CheckRow { model: string; variant: string; form: string; shape: string; worst: number; errors: Record<string, number>; ok: boolean; note?: string }
const checks: CheckRow[] = [];
const log = (s: string) => process.stdout.write(s + "\n");

/** A stdlib file name, or a path relative to the repository (the check models in bench/cuda/models). */
function loadModel(file: string): I.Model {
  const p = loadProgram([join(ROOT, file.includes("/") ? file : join("stdlib", file))]);
  if (!p.models.length) throw new Error(`cannot load ${file}`);
  return p.models[0];
}
const loadPlan = (name: string): CudaModelPlan => JSON.parse(readFileSync(join(PLANS, `${name}.cuda.json`), "utf8"));
const loadSweep = (name: string): CudaModelPlan | undefined => (existsSync(join(SWEEP, `${name}.cuda.json`)) ? JSON.parse(readFileSync(join(SWEEP, `${name}.cuda.json`), "utf8")) : undefined);

/** Inputs (in range for gates and decays), params and initial states for one case. */
function makeCase(model: I.Model, dims: Record<string, number>, B: number, T: number, seed: number, withOptional: boolean, withInit: boolean, ranges: Record<string, [number, number]> = {}) {
  const r = rng(seed);
  const inputs: Record<string, Float32Array> = {};
  const params: Record<string, Float32Array> = {};
  const init: Record<string, Float32Array> = {};
  for (const t of model.tensors) {
    const n = sizeOf(t, dims);
    if (t.kind === "input" && (withOptional || !t.init)) inputs[t.name] = fill(B * T * n, r, ...(ranges[t.name] ?? [-0.5, 0.5]));
    if (t.kind === "param" && (withOptional || !t.init)) params[t.name] = fill(n, r);
  }
  if (withInit) {
    // a reachable initial state: the final state after a few steps on other inputs
    const warm: Record<string, Float64Array> = {};
    for (const t of model.tensors) if (t.kind === "input" && (withOptional || !t.init)) warm[t.name] = Float64Array.from(fill(B * 3 * sizeOf(t, dims), r));
    const w = interpret(model, { dims, batch: B, time: 3, inputs: warm, params: f64(params) });
    for (const [k, v] of Object.entries(w.finalState)) init[k] = Float32Array.from(v);
  }
  return { inputs, params, init };
}
const f64 = (x: Record<string, Float32Array>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float64Array.from(v)]));

async function checkModel(device: CudaDevice, file: string): Promise<void> {
  const model = loadModel(file);
  const plan = loadPlan(model.name);
  const shapes = checkShapes(model);
  const hasOptional = model.tensors.some((t) => (t.kind === "input" || t.kind === "param") && t.init);
  const cases = shapes.map((s, i) => ({ ...s, optional: true, init: s.init ?? i === 0 }));
  const sweep = loadSweep(model.name);
  const shipped = new Set(plan.forms.map((f) => f.variant));
  if (hasOptional) cases.push({ ...shapes[0], T: Math.min(20, shapes[0].T), optional: false, init: false });
  for (const [ci, c] of cases.entries()) {
    const { inputs, params, init } = makeCase(model, c.dims, c.B, c.T, 1000 + ci, c.optional, c.init, c.ranges);
    const ref = interpret(model, { dims: c.dims, batch: c.B, time: c.T, inputs: f64(inputs), params: f64(params), initialState: f64(init) });
    const shape = `B=${c.B} T=${c.T} ${Object.entries(c.dims).map(([k, v]) => `${k}=${v}`).join(" ")}${c.optional ? "" : " (defaults)"}${c.init ? " (init state)" : ""}`;
    const runners = [await CudaModelRunner.create(plan, { dims: c.dims, params, device })];
    if (sweep) runners.push(await CudaModelRunner.create(sweep, { dims: c.dims, params, device }));
    for (const [ri, runner] of runners.entries())
    for (const { form } of runner.applicableForms(c.B, c.T, "auto")) {
      if (ri > 0 && shipped.has(form.variant)) continue;
      if (CHECK_ONLY && !CHECK_ONLY.test(form.variant)) continue;
      const row: CheckRow = { model: model.name, variant: form.variant, form: form.form, shape, worst: 0, errors: {}, ok: false };
      try {
        const p = runner.prepare(inputs, { batch: c.B, initialState: init, form: form.variant });
        const s = device.stream();
        p.poison(s);
        p.enqueue(s);
        await device.synchronize(s);
        device.destroyStream(s);
        const got = p.read();
        p.dispose();
        for (const [k, v] of Object.entries(ref.outputs)) row.errors[k] = relErr(got.outputs[k], v);
        for (const [k, v] of Object.entries(ref.finalState)) row.errors[`final ${k}`] = relErr(got.finalState[k], v);
        row.worst = Math.max(...Object.values(row.errors));
        row.ok = row.worst <= TOL;
      } catch (e) {
        row.worst = Infinity;
        row.note = e instanceof Error ? e.message.split("\n")[0] : String(e);
      }
      checks.push(row);
      log(`check ${row.ok ? "ok  " : "FAIL"} ${model.name.padEnd(18)} ${row.variant.padEnd(20)} rel ${row.worst.toExponential(2)}  ${shape}${row.note ? "  " + row.note : ""}`);
    }
    for (const r of runners) r.dispose();
  }
}

// ---------------- benchmarks ----------------
/**
 * ms: median of single forwards, each between two events (the host's launch work between the first event and the
 * kernel leaves the GPU idle, tens of microseconds through koffi); msB2B: median over 5 rounds of BATCH forwards
 * back to back between two events, divided by BATCH (the launch overhead overlaps the previous forward).
 */
interface BenchRow { name: string; variant: string; shape: string; ms: number; msAll: number[]; gbps?: number; msB2B?: number; gbpsB2B?: number; note?: string }
const bench: BenchRow[] = [];
const gemmMs = new Map<string, number>();

async function timeForward(device: CudaDevice, runner: CudaModelRunner, inputs: Record<string, Float32Array>, B: number, variant: string, reps: number, batch = 0) {
  const p = runner.prepare(inputs, { batch: B, form: variant });
  const s = device.stream();
  for (let i = 0; i < WARMUP; i++) p.enqueue(s);
  await device.synchronize(s);
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) ms.push(device.timeMs(s, () => p.enqueue(s)));
  const msB2B = batch > 1 ? backToBack(device, s, batch, () => p.enqueue(s)) : undefined;
  // breakdown: the GEMM steps alone (hoisted input projections), when the form has any
  if (p.form.steps.some((x) => x.kind === "gemm")) {
    const g: number[] = [];
    for (let i = 0; i < Math.min(reps, 5); i++) g.push(device.timeMs(s, () => p.enqueue(s, (x) => x.kind === "gemm")));
    gemmMs.set(variant, median(g));
  }
  await device.synchronize(s);
  const out = p.read();
  p.dispose();
  device.destroyStream(s);
  return { ms, out, msB2B };
}

function saveF32(name: string, a: Float32Array) {
  writeFileSync(join(BENCH_DIR, `${name}.f32`), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

async function copyBandwidth(device: CudaDevice): Promise<number> {
  const bytes = 1 << 30;
  const a = device.alloc(bytes);
  const b = device.alloc(bytes);
  device.fill32(a, 0x3f800000);
  const s = device.stream();
  for (let i = 0; i < 3; i++) device.copy(b, a, bytes, s);
  await device.synchronize(s);
  const ms: number[] = [];
  for (let i = 0; i < 20; i++) ms.push(device.timeMs(s, () => device.copy(b, a, bytes, s)));
  const msB2B = BATCH > 1 ? backToBack(device, s, BATCH, () => device.copy(b, a, bytes, s)) : undefined;
  device.destroyStream(s);
  device.free(a);
  device.free(b);
  const gbps = (2 * bytes) / (median(ms) * 1e6);
  bench.push({ name: "copy", variant: "cuMemcpyDtoD 1 GiB", shape: "1 GiB", ms: median(ms), msAll: ms, gbps, msB2B, gbpsB2B: msB2B ? (2 * bytes) / (msB2B * 1e6) : undefined });
  return gbps;
}

async function benchHgrn(device: CudaDevice) {
  const model = loadModel("hgrn.seq");
  const plan = loadPlan(model.name);
  const B = 8, D = 1536, T = 16384;
  const r = rng(7);
  const x = fill(B * T * D, r, -0.5, 0.5);
  const g = fill(B * T * D, r, -0.5, -0.001); // log forget gate <= 0
  if (SAVE) {
    saveF32("hgrn.x", x);
    saveF32("hgrn.g", g);
  }
  const runner = await CudaModelRunner.create(plan, { dims: { D }, device });
  const sweepPlan = loadSweep(model.name);
  const sweep = sweepPlan ? await CudaModelRunner.create(sweepPlan, { dims: { D }, device }) : undefined;
  let first: Float32Array | undefined;
  let firstRef: Float64Array | undefined;
  const firstName = runner.choose(B, T).plan.variant;
  const generic = process.env.SEQC_BENCH_GENERIC !== "0";
  const shippedForms = runner.applicableForms(B, T, "auto").map((f) => ({ ...f, runner }));
  const shippedNames = new Set(shippedForms.map((f) => f.form.variant));
  const sweepForms = sweep ? sweep.applicableForms(B, T, "auto").filter((f) => !shippedNames.has(f.form.variant)).map((f) => ({ ...f, runner: sweep })) : [];
  // the auto choice first: its output is the one anchors.py / scan_anchor.py check against float64
  const ordered = [...shippedForms.filter((f) => f.form.variant === firstName), ...shippedForms.filter((f) => f.form.variant !== firstName), ...sweepForms];
  if (ROUNDS > 0) {
    const chosen = ordered.filter(({ form: { variant } }) => variant === firstName || !((ONLY_VARIANTS && !ONLY_VARIANTS.test(variant)) || SKIP_VARIANTS?.test(variant) || /^(thread|workgroup|global)$/.test(variant)));
    await interleaved(device, chosen, { x, g }, B, T, D, firstName);
    runner.dispose();
    sweep?.dispose();
    return;
  }
  for (const { form, runner } of ordered) {
    const variant = form.variant;
    const slow = variant === "thread" || variant === "workgroup" || variant === "global";
    if (slow && !generic) continue;
    if (variant !== firstName && ((ONLY_VARIANTS && !ONLY_VARIANTS.test(variant)) || SKIP_VARIANTS?.test(variant))) continue;
    const { ms, out, msB2B } = await timeForward(device, runner, { x, g }, B, variant, slow ? 5 : SCAN_REPS, slow ? 0 : BATCH);
    const bytes = 3 * B * T * D * 4 + 2 * B * D * 4;
    let note: string | undefined;
    if (!first) {
      first = out.outputs.o;
      if (SAVE) saveF32("hgrn.out.o", first);
      note = "auto choice; output checked against float64 by anchors.py / scan_anchor.py";
    } else {
      firstRef ??= Float64Array.from(first);
      note = `rel. difference to ${firstName}: ${relErr(out.outputs.o, firstRef).toExponential(2)}`;
    }
    bench.push({ name: "hgrn", variant, shape: `B=${B} D=${D} T=${T}`, ms: median(ms), msAll: ms, gbps: bytes / (median(ms) * 1e6), msB2B, gbpsB2B: msB2B ? bytes / (msB2B * 1e6) : undefined, note });
    log(`bench hgrn ${variant.padEnd(30)} ${median(ms).toFixed(3)} ms  ${(bytes / (median(ms) * 1e6)).toFixed(0)} GB/s  min ${Math.min(...ms).toFixed(3)} max ${Math.max(...ms).toFixed(3)}${msB2B ? `  back-to-back ${msB2B.toFixed(3)} ms` : ""}  ${note}`);
  }
  runner.dispose();
  sweep?.dispose();
}

/**
 * Interleaved timing (ROUNDS > 0): every chosen variant prepared at once, then ROUNDS rounds in which the copy and
 * each variant (in a rotated order) run BATCH forwards back to back between two events, and a few rounds of 4 x BATCH;
 * a variant's ratio is the median over rounds of (copy GB/s / variant GB/s of that round), so drift of the card
 * between positions cancels. One extra row runs the auto choice with the per-forward copy of the initial states
 * that the runner made before `statesCopy: false` (the same bytes, device to device), to show what that copy cost.
 * The auto choice's output is checked against a float64 recurrence on the host (hgrn: h = exp(g) h + x, o = h).
 */
async function interleaved(device: CudaDevice, chosen: { form: { variant: string }; runner: CudaModelRunner }[], inputs: Record<string, Float32Array>, B: number, T: number, D: number, firstName: string) {
  const bytes = 3 * B * T * D * 4 + 2 * B * D * 4;
  const copyBytes = 1 << 30;
  const ca = device.alloc(copyBytes);
  const cb = device.alloc(copyBytes);
  device.fill32(ca, 0x3f800000);
  const sa = device.alloc(B * D * 4);
  const sb = device.alloc(B * D * 4);
  const s = device.stream();
  type Entry = { name: string; one: () => void; gb: number; r10: number[]; r40: number[]; ratio10: number[]; ratio40: number[]; note?: string };
  const entries: Entry[] = [{ name: "copy", one: () => device.copy(cb, ca, copyBytes, s), gb: 2 * copyBytes, r10: [], r40: [], ratio10: [], ratio40: [] }];
  const prepared: { dispose(): void }[] = [];
  let first: Float32Array | undefined;
  let firstRef: Float64Array | undefined;
  for (const { form, runner } of chosen) {
    const p = runner.prepare(inputs, { batch: B, form: form.variant });
    prepared.push(p);
    for (let i = 0; i < WARMUP; i++) p.enqueue(s);
    await device.synchronize(s);
    const o = p.read().outputs.o;
    let note: string;
    if (!first) {
      first = o;
      // float64 reference of hgrn's recurrence, on the first and last batch rows (host time)
      let num = 0, den = 0;
      const h = new Float64Array(D);
      for (const b of [0, B - 1]) {
        h.fill(0);
        for (let t = 0; t < T; t++) {
          const base = (b * T + t) * D;
          for (let d = 0; d < D; d++) {
            const v = Math.exp(inputs.g[base + d]) * h[d] + inputs.x[base + d];
            h[d] = v;
            num += (o[base + d] - v) ** 2;
            den += v * v;
          }
        }
      }
      note = `auto choice; rel. error to float64 (batch rows 0 and ${B - 1}) ${Math.sqrt(num / den).toExponential(2)}`;
    } else note = `rel. difference to ${firstName}: ${relErr(o, (firstRef ??= Float64Array.from(first))).toExponential(2)}`;
    entries.push({ name: form.variant, one: () => p.enqueue(s), gb: bytes, r10: [], r40: [], ratio10: [], ratio40: [], note });
    if (form.variant === firstName)
      entries.push({ name: `${firstName} + per-forward states copy (before statesCopy: false)`, one: () => (device.copy(sb, sa, B * D * 4, s), p.enqueue(s)), gb: bytes, r10: [], r40: [], ratio10: [], ratio40: [], note: "bench only: the runner no longer makes this copy" });
  }
  const round = (n: number, key: "r10" | "r40", rkey: "ratio10" | "ratio40", r: number) => {
    const ms: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[(i + r) % entries.length];
      const t = device.timeMs(s, () => {
        for (let k = 0; k < n; k++) e.one();
      }) / n;
      e[key].push(t);
      ms[(i + r) % entries.length] = t;
    }
    const copyGbps = entries[0].gb / (ms[0] * 1e6);
    for (const [i, e] of entries.entries()) e[rkey].push(e.gb / (ms[i] * 1e6) / copyGbps);
  };
  for (let r = 0; r < ROUNDS; r++) round(BATCH, "r10", "ratio10", r);
  for (let r = 0; r < Math.max(3, Math.ceil(ROUNDS / 4)); r++) round(4 * BATCH, "r40", "ratio40", r);
  await device.synchronize(s);
  for (const p of prepared) p.dispose();
  device.destroyStream(s);
  for (const b of [ca, cb, sa, sb]) device.free(b);
  const lines = [
    `hgrn B=${B} D=${D} T=${T} fp32, ${(bytes / 1e9).toFixed(3)} GB per forward; copy = cuMemcpyDtoD of 1 GiB; ${ROUNDS} rounds of ${BATCH} back-to-back forwards and ${Math.max(3, Math.ceil(ROUNDS / 4))} rounds of ${4 * BATCH}, every entry once per round in a rotated order`,
    "",
    `| variant | ms (${BATCH} b2b, median) | min | GB/s | % of copy (median of per-round ratios) | ms (${4 * BATCH} b2b) | % of copy (${4 * BATCH} b2b) | note |`,
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const e of [...entries].sort((a, b) => median(b.ratio10) - median(a.ratio10))) {
    const m = median(e.r10);
    lines.push(`| ${e.name} | ${m.toFixed(4)} | ${Math.min(...e.r10).toFixed(4)} | ${(e.gb / (m * 1e6)).toFixed(0)} | ${(100 * median(e.ratio10)).toFixed(1)}% | ${median(e.r40).toFixed(4)} | ${(100 * median(e.ratio40)).toFixed(1)}% | ${e.note ?? ""} |`);
    bench.push({ name: e.name === "copy" ? "copy" : "hgrn", variant: e.name === "copy" ? "cuMemcpyDtoD 1 GiB (interleaved)" : e.name, shape: e.name === "copy" ? "1 GiB" : `B=${B} D=${D} T=${T}`, ms: m, msAll: e.r10, gbps: e.gb / (m * 1e6), msB2B: m, gbpsB2B: e.gb / (m * 1e6), note: `ratio to copy ${median(e.ratio10).toFixed(4)} (${BATCH} b2b), ${median(e.ratio40).toFixed(4)} (${4 * BATCH} b2b); ${4 * BATCH} b2b ms ${median(e.r40).toFixed(4)}${e.note ? "; " + e.note : ""}` });
  }
  const table = lines.join("\n");
  writeFileSync(join(OUT, "interleaved.md"), table + "\n");
  log("\n" + table);
}

async function benchCell(device: CudaDevice, file: string, gates: number, T: number, B: number, H: number) {
  const model = loadModel(file);
  const plan = loadPlan(model.name);
  const Iin = H;
  const r = rng(11);
  const k = 1 / Math.sqrt(H);
  const x = fill(T * B * Iin, r, -1, 1);
  const params = {
    weight_ih_l0: fill(gates * H * Iin, r, -k, k),
    weight_hh_l0: fill(gates * H * H, r, -k, k),
    bias_ih_l0: fill(gates * H, r, -k, k),
    bias_hh_l0: fill(gates * H, r, -k, k),
  };
  const tag = `${model.name.toLowerCase()}_T${T}_B${B}_H${H}`;
  // x is generated [B, T, I] (seqc layout); anchors.py transposes to torch's [T, B, I]
  saveF32(`${tag}.x`, x);
  for (const [n, v] of Object.entries(params)) saveF32(`${tag}.${n}`, v);
  const runner = await CudaModelRunner.create(plan, { dims: { H, I: Iin }, params, device });
  let first: Float32Array | undefined;
  for (const { form } of runner.applicableForms(B, T, "auto").filter((f) => f.form.variant.startsWith("persistent-matvec"))) {
    const variant = form.variant;
    const { ms, out } = await timeForward(device, runner, { x }, B, variant, 10);
    const g = gemmMs.get(variant);
    const notes = [g !== undefined ? `input-projection GEMM ${g.toFixed(3)} ms` : ""];
    if (!first) {
      first = out.outputs.output;
      saveF32(`${tag}.out.output`, first);
    } else notes.push(`rel. difference to ${bench.find((b) => b.name === model.name.toLowerCase() && b.shape.startsWith(`T=${T} B=${B}`))?.variant}: ${relErr(out.outputs.output, Float64Array.from(first)).toExponential(2)}`);
    bench.push({ name: model.name.toLowerCase(), variant, shape: `T=${T} B=${B} H=${H} I=${Iin}`, ms: median(ms), msAll: ms, note: notes.filter(Boolean).join("; ") });
  }
  runner.dispose();
}

async function main() {
  const device = await CudaDevice.open(0);
  log(`device: ${device.info.name}, sm_${device.info.sm}, ${device.info.multiprocessors} SMs, driver ${device.info.driverVersion}, smem opt-in ${device.info.sharedMemPerBlockOptin} B`);
  let nvrtc = "unavailable";
  const skipChecks = process.env.SEQC_SKIP_CHECKS === "1";
  if (!skipChecks && process.env.SEQC_SKIP_NVRTC !== "1") try {
    nvrtc = await nvrtcVersion();
    // the NVRTC path: compile one model's source at run time and check it like the rest
    const model = loadModel("hgrn.seq");
    const plan = { ...loadPlan(model.name), ptx: undefined };
    const runner = await CudaModelRunner.create(plan, { dims: { D: 300 }, device });
    const { inputs } = makeCase(model, { D: 300 }, 2, 129, 5, true, false);
    const ref = interpret(model, { dims: { D: 300 }, batch: 2, time: 129, inputs: f64(inputs) });
    const got = await runner.forward(inputs, { batch: 2 });
    const e = relErr(got.outputs.o, ref.outputs.o);
    checks.push({ model: "Hgrn", variant: `${got.form} (NVRTC ${nvrtc})`, form: "scan", shape: "B=2 T=129 D=300", worst: e, errors: { o: e }, ok: e <= TOL });
    log(`check ${e <= TOL ? "ok  " : "FAIL"} Hgrn via NVRTC ${nvrtc}: rel ${e.toExponential(2)}`);
    runner.dispose();
  } catch (e) {
    log(`NVRTC: ${e instanceof Error ? e.message : String(e)}`);
  }
  const only = process.env.SEQC_MODELS?.split(",");
  const modelFiles = [...readdirSync(join(ROOT, "stdlib")).filter((x) => x.endsWith(".seq")).sort(), ...readdirSync(join(ROOT, "bench/cuda/models")).filter((x) => x.endsWith(".seq")).sort().map((x) => `bench/cuda/models/${x}`)];
  for (const f of skipChecks ? [] : modelFiles) {
    if (only && !only.includes(f.replace(/^.*\//, "").replace(".seq", ""))) continue;
    try {
      await checkModel(device, f);
    } catch (e) {
      checks.push({ model: f, variant: "-", form: "-", shape: "-", worst: Infinity, errors: {}, ok: false, note: e instanceof Error ? e.message : String(e) });
      log(`check FAIL ${f}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (process.env.SEQC_SKIP_BENCH !== "1") {
    const copy = await copyBandwidth(device);
    log(`copy bandwidth (cuMemcpyDtoD, read+write): ${copy.toFixed(0)} GB/s`);
    try {
      await benchHgrn(device);
    } catch (e) {
      log(`bench hgrn failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    const copy2 = await copyBandwidth(device); // again after the scans: the card's state drifts
    log(`copy bandwidth again: ${copy2.toFixed(0)} GB/s`);
    if (process.env.SEQC_BENCH_CELLS !== "0") {
      await benchCell(device, "lstm.seq", 4, 2048, 64, 256);
      await benchCell(device, "lstm.seq", 4, 1024, 16, 1024);
      await benchCell(device, "gru.seq", 3, 2048, 64, 256);
      await benchCell(device, "gru.seq", 3, 1024, 16, 1024);
    }
  }
  writeFileSync(join(OUT, "node.json"), JSON.stringify({ device: device.info, nvrtc, date: new Date().toISOString(), checks, bench }, null, 1));
  const failed = checks.filter((c) => !c.ok);
  log(`\nchecks: ${checks.length - failed.length} passed, ${failed.length} failed (tolerance ${TOL})`);
  for (const b of bench) log(`bench ${b.name.padEnd(5)} ${b.variant.padEnd(24)} ${b.shape.padEnd(26)} ${b.ms.toFixed(3)} ms${b.gbps ? `  ${b.gbps.toFixed(0)} GB/s` : ""}${b.note ? `  (${b.note})` : ""}`);
}

main().catch((e) => {
  log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
