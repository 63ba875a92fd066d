/**
 * The generated classes' chunked backward on backend "cuda", on the GPU machine: per model (SimpleGla,
 * Mamba2, DeltaNet), backward() through the chunked backward chain (forward({ saveForBackward: true,
 * backward: "chunked" })) against the float64 reference gradients (the interpreter's adjoint recurrence) at
 * T = 70 and 130 (chunks of 64 and a partial one), T = 1, given and declared initial states; then at one
 * moderate shape (B = 4, T = 1024, H = 4, K = V = 64) the host-side wall clock of forward alone, forward +
 * step backward and forward + chunked backward side by side (median of 3 after a warm-up), and the two
 * backwards' gradients against each other. Bundled by bench/cuda/class-chunked-build.sh into
 * dist/class-chunked.mjs with the generated classes; prints a table and writes $OUT/class-chunked.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as cudaRuntime from "../../runtime/cuda/index.ts";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret } from "../../compiler/ir/interpret.ts";
import { gradients } from "../../compiler/grad/run.ts";
import { chunkInputs } from "../../test/helpers/chunk-inputs.ts";
import { mulberry32 as rng } from "../../compiler/bench/random.ts";

type AnyClass = { create(o: Record<string, unknown>): Promise<any> };
interface Case { file: string; check: Record<string, number>; time: Record<string, number> }

const ROOT = process.cwd();
const OUT = process.env.OUT ?? join(ROOT, "out");
const PLANS = join(ROOT, "dist/class-chunked");
mkdirSync(OUT, { recursive: true });

const CASES: Case[] = [
  { file: "simple_gla", check: { H: 2, K: 32, V: 24 }, time: { H: 4, K: 64, V: 64 } },
  { file: "mamba2", check: { H: 2, P: 24, N: 32 }, time: { H: 4, P: 64, N: 64 } },
  { file: "deltanet", check: { H: 2, K: 32, V: 24 }, time: { H: 4, K: 64, V: 64 } },
];

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Number.isFinite(num) ? Math.sqrt(num / Math.max(den, 1e-30)) : Infinity;
};
const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const shaped = (x: Record<string, Float32Array>, B: number, T: number) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));

interface Row { model: string; what: string; err: number; ok: boolean; note?: string }
const rows: Row[] = [];
const log = (s: string) => process.stdout.write(s + "\n");
const push = (r: Row) => {
  rows.push(r);
  log(`${r.model.padEnd(10)} ${r.what.padEnd(44)} ${r.err.toExponential(2).padEnd(9)} ${r.ok ? "ok" : "FAIL"} ${r.note ?? ""}`);
};
const T0 = performance.now();
/** Seconds after which the timings are cut short (SEQC_CLASS_CHUNKED_S). */
const BUDGET_S = Number(process.env.SEQC_CLASS_CHUNKED_S ?? 120);

export async function run(classes: Record<string, AnyClass>): Promise<void> {
  const device = await cudaRuntime.CudaDevice.open(0);
  log(`device: ${device.info.name} (sm_${device.info.sm}), driver ${device.info.driverVersion}`);
  const opened = (N: string) => ({ backend: "cuda", device, cudaRuntime, cudaPlan: JSON.parse(readFileSync(join(PLANS, `${N}.cuda.json`), "utf8")), cudaGradPlan: JSON.parse(readFileSync(join(PLANS, `${N}.grad.cuda.json`), "utf8")) });
  const plans: Record<string, ReturnType<typeof opened>> = {};
  // checks: the chunked backward vs float64
  for (const c of CASES) {
    const model = loadProgram([join(ROOT, "stdlib", `${c.file}.seq`)]).models[0];
    const N = model.name;
    plans[N] = opened(N);
    // one instance for every case (its runners, and their modules, are opened once): the first case's params
    const params = chunkInputs(model, { dims: c.check, batch: 1, time: 1, seed: 2 }).params ?? {};
    const m = await classes[N].create({ ...plans[N], dims: c.check, params: f32(params) });
    for (const [B, T, init] of [[3, 70, true], [2, 1, true], [3, 130, false]] as const) {
      const what = `chunked bwd B=${B} T=${T}${init ? " init" : ""}`;
      const row: Row = { model: N, what, err: Infinity, ok: false };
      try {
        const run = { ...chunkInputs(model, { dims: c.check, batch: B, time: T, seed: 3 + T, initialState: init }), params };
        const ref = interpret(model, run);
        const r = rng(T);
        const cot = { outputs: Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, Float64Array.from(v, () => r() - 0.5)])), finalState: Object.fromEntries(Object.entries(ref.finalState).map(([k, v]) => [k, Float64Array.from(v, () => r() - 0.5)])) };
        const want = await gradients(model, run, cot);
        {
          const y = await m.forward(shaped(f32(run.inputs), B, T), { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, backward: "chunked" });
          if (y.saved.backward !== "chunked") throw new Error(`saved for ${y.saved.backward}`);
          const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
          const errs: Record<string, number> = {};
          for (const kind of ["inputs", "params", "initialState"] as const) for (const [k, v] of Object.entries(want[kind])) errs[`d${k}${kind === "initialState" ? "0" : ""}`] = relErr(g[kind][k], v);
          row.err = Math.max(...Object.values(errs));
          row.ok = row.err <= 1e-4;
          row.note = Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(" ");
        }
      } catch (e) {
        row.note = (e as Error).message.split("\n")[0].slice(0, 200);
      }
      push(row);
    }
    m.dispose();
    log(`${N}: checks done at ${((performance.now() - T0) / 1000).toFixed(1)} s`);
  }
  // times: forward, forward + step backward, forward + chunked backward at one moderate shape
  const timings: Record<string, unknown>[] = [];
  for (const c of CASES) {
    if ((performance.now() - T0) / 1000 > BUDGET_S) {
      log(`timings after ${c.file} skipped (past ${BUDGET_S} s)`);
      break;
    }
    const model = loadProgram([join(ROOT, "stdlib", `${c.file}.seq`)]).models[0];
    const N = model.name;
    const B = 4, T = 1024;
    const run = chunkInputs(model, { dims: c.time, batch: B, time: T, seed: 5 });
    const inputs = shaped(f32(run.inputs), B, T);
    const r = rng(9);
    const gradOut = Object.fromEntries(model.tensors.filter((t) => t.kind === "output").map((t) => [t.name, Float32Array.from({ length: B * T * t.shape.reduce((a, e) => a * (e.kind === "lit" ? e.value : c.time[e.name]), 1) }, () => r() - 0.5)]));
    const m = await classes[N].create({ ...plans[N], dims: c.time, params: f32(run.params) });
    const time = async (f: () => Promise<unknown>) => {
      await f();
      const ts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await f();
        ts.push(performance.now() - t0);
      }
      return ts.sort((a, b) => a - b)[1];
    };
    const entry: Record<string, unknown> = { model: N, shape: `B=${B} T=${T} ${JSON.stringify(c.time)}`, forward: m.formFor(B, T), auto: m.backwardFor(B, T) };
    try {
      entry.forwardMs = await time(() => m.forward(inputs));
      let gs: any, gc: any;
      entry.stepMs = await time(async () => { const y = await m.forward(inputs, { saveForBackward: true, backward: "step" }); entry.stepMemory = y.saved.memory.policy; gs = await m.backward(gradOut, y.saved); });
      entry.chunkedMs = await time(async () => { gc = await m.backward(gradOut, (await m.forward(inputs, { saveForBackward: true, backward: "chunked" })).saved); });
      const errs: Record<string, number> = {};
      for (const kind of ["inputs", "params", "initialState"] as const) for (const [k, v] of Object.entries(gs[kind] as Record<string, Float32Array>)) if (v && gc[kind][k]) errs[`d${k}`] = relErr(gc[kind][k], v);
      entry.chunkedVsStep = errs;
      entry.autoAfterForward = m.backwardFor(B, T);
    } catch (e) {
      entry.error = (e as Error).message.split("\n")[0].slice(0, 300);
    }
    m.dispose();
    timings.push(entry);
    log(JSON.stringify(entry));
  }
  const bad = rows.filter((x) => !x.ok);
  log(`\n${rows.length - bad.length}/${rows.length} checks ok in ${((performance.now() - T0) / 1000).toFixed(1)} s`);
  log("model      forward ms  fwd+step bwd ms  fwd+chunked bwd ms  step/chunked");
  for (const t of timings) log(`${String(t.model).padEnd(10)} ${Number(t.forwardMs).toFixed(1).padStart(10)}  ${Number(t.stepMs).toFixed(1).padStart(15)}  ${Number(t.chunkedMs).toFixed(1).padStart(18)}  ${(Number(t.stepMs) / Number(t.chunkedMs)).toFixed(2).padStart(12)}`);
  writeFileSync(join(OUT, "class-chunked.json"), JSON.stringify({ device: device.info, rows, timings }, null, 1));
}
