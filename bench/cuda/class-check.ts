/**
 * The generated classes on backend "cuda", on the GPU machine: for each model, every f32 CUDA form
 * variant through Model.create({ backend: "cuda", form }) — forward() against the float64 interpreter,
 * step() against forward() — and backward() (memory store and checkpoints) against the float64
 * reference gradients; then forward and forward+backward times at one larger shape. Bundled by
 * bench/cuda/class-build.sh into dist/class-check.mjs with the generated classes; prints a table and
 * writes $OUT/class-check.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as cudaRuntime from "../../runtime/cuda/index.ts";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { interpret } from "../../compiler/ir/interpret.ts";
import { gradients } from "../../compiler/grad/run.ts";
import type * as I from "../../compiler/ir/types.ts";
import { mulberry32 as rng } from "../../compiler/bench/random.ts";

type AnyClass = { create(o: Record<string, unknown>): Promise<any> };
interface Case { file: string; dims: Record<string, number>; ranges?: Record<string, [number, number]> }

const ROOT = process.cwd();
const OUT = process.env.OUT ?? join(ROOT, "out");
const PLANS = join(ROOT, "dist/class-check");
mkdirSync(OUT, { recursive: true });

const CASES: Case[] = [
  { file: "lstm", dims: { H: 48, I: 24 } },
  { file: "gru", dims: { H: 48, I: 24 } },
  { file: "hgrn", dims: { D: 256 }, ranges: { g: [-1, -0.01] } },
  { file: "mamba", dims: { D: 64, N: 16 }, ranges: { delta: [-2, 0] } },
  { file: "gla", dims: { H: 2, K: 32, V: 32 }, ranges: { gk: [-1, -0.01] } },
];


const size = (t: I.TensorDecl, dims: Record<string, number>) => t.shape.reduce((a, e) => a * (e.kind === "lit" ? e.value : dims[e.name]), 1);
const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Number.isFinite(num) ? Math.sqrt(num / Math.max(den, 1e-30)) : Infinity;
};
const f64 = (x: Record<string, Float32Array>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float64Array.from(v)]));

function makeCase(model: I.Model, c: Case, B: number, T: number, seed: number) {
  const r = rng(seed);
  const fill = (n: number, lo = -0.5, hi = 0.5) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
  const inputs: Record<string, Float32Array> = {}, params: Record<string, Float32Array> = {}, init: Record<string, Float32Array> = {};
  for (const t of model.tensors) {
    const n = size(t, c.dims);
    if (t.kind === "input") inputs[t.name] = fill(B * T * n, ...(c.ranges?.[t.name] ?? [-0.5, 0.5]));
    if (t.kind === "param" && t.shape.length) params[t.name] = fill(n, ...(t.name === "A" ? ([-1, -0.1] as [number, number]) : ([-0.5, 0.5] as [number, number])));
    if (t.kind === "state") init[t.name] = fill(B * n, -0.3, 0.3);
  }
  return { inputs, params, init };
}

interface Row { model: string; form: string; what: string; err: number; ok: boolean; note?: string }
const rows: Row[] = [];
const log = (s: string) => process.stdout.write(s + "\n");
const T0 = performance.now();
/** Seconds of checks before the forward-variant sweep and the timings are cut short (SEQC_CLASS_CHECK_S). */
const BUDGET_S = Number(process.env.SEQC_CLASS_CHECK_S ?? 90);
const late = () => (performance.now() - T0) / 1000 > BUDGET_S;
const fmtRow = (r: Row) => `${r.model.padEnd(16)} ${r.form.slice(0, 38).padEnd(38)} ${r.what.padEnd(23)} ${Number.isNaN(r.err) ? "n/a      " : r.err.toExponential(2).padEnd(9)}   ${r.ok ? "ok" : "FAIL"} ${r.note ?? ""}`;
const push = (r: Row) => {
  rows.push(r);
  log(fmtRow(r));
};

export async function run(classes: Record<string, AnyClass>): Promise<void> {
  const device = await cudaRuntime.CudaDevice.open(0);
  log(`device: ${device.info.name} (sm_${device.info.sm}), driver ${device.info.driverVersion}`);
  const timings: Record<string, unknown>[] = [];
  for (const c of CASES) {
    const model = loadProgram([join(ROOT, "stdlib", `${c.file}.seq`)]).models[0];
    const N = model.name;
    const Cls = classes[N];
    const cudaPlan = JSON.parse(readFileSync(join(PLANS, `${N}.cuda.json`), "utf8"));
    const cudaGradPlan = JSON.parse(readFileSync(join(PLANS, `${N}.grad.cuda.json`), "utf8"));
    const common = { backend: "cuda", device, cudaPlan, cudaGradPlan, cudaRuntime, dims: c.dims };
    const B = 3, T = 70;
    const { inputs, params, init } = makeCase(model, c, B, T, 7);
    const shaped = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
    const ref = interpret(model, { dims: c.dims, batch: B, time: T, inputs: f64(inputs), params: f64(params), initialState: f64(init) });
    const variants = ["auto", ...cudaPlan.forms.filter((f: { io?: string }) => (f.io ?? "f32") === "f32").map((f: { variant: string }) => f.variant)];
    for (const form of variants) {
      if (form !== "auto" && late()) {
        log(`${N}: forward variants after ${form} skipped (past ${BUDGET_S} s)`);
        break;
      }
      const row: Row = { model: N, form, what: "forward", err: Infinity, ok: false };
      try {
        const m = await Cls.create({ ...common, params, form });
        const y = await m.forward(shaped, { initialState: init, returnFinalState: true });
        row.err = Math.max(...Object.entries(ref.outputs).map(([k, v]) => relErr(y[k], v)), ...Object.entries(ref.finalState).map(([k, v]) => relErr(y.finalState[k], v)));
        row.ok = row.err <= 1e-4;
        row.form = `${form} -> ${m.formFor(B, T)}`;
        if (form === "auto") {
          // step() token by token from the initial state = forward()
          let state = init;
          let worst = 0;
          for (let t = 0; t < 4; t++) {
            const xt = Object.fromEntries(Object.entries(inputs).map(([k, v]) => {
              const n = v.length / (B * T);
              const a = new Float32Array(B * n);
              for (let b = 0; b < B; b++) a.set(v.subarray((b * T + t) * n, (b * T + t + 1) * n), b * n);
              return [k, { data: a, shape: [B, n] }];
            }));
            const s = await m.step(xt, state);
            for (const [k] of Object.entries(ref.outputs)) {
              const n = s[k].length / B;
              const want = new Float32Array(B * n);
              for (let b = 0; b < B; b++) want.set((y[k] as Float32Array).subarray((b * T + t) * n, (b * T + t + 1) * n), b * n);
              worst = Math.max(worst, relErr(s[k], want));
            }
            state = s.state;
          }
          push({ model: N, form: row.form, what: "step x4 vs forward", err: worst, ok: worst <= 1e-5 });
        }
        m.dispose();
      } catch (e) {
        row.note = (e as Error).message.split("\n")[0].slice(0, 160);
        row.ok = /no .* form of this model can run|cannot run/.test(row.note); // not applicable at this shape
        if (row.ok) row.err = NaN;
      }
      push(row);
    }
    // backward: the class's gradients vs the float64 reference (interpreter)
    const r = rng(11);
    const cot = {
      outputs: Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, Float64Array.from(v, () => r() - 0.5)])),
      finalState: Object.fromEntries(Object.entries(ref.finalState).map(([k, v]) => [k, Float64Array.from(v, () => r() - 0.5)])),
    };
    const want = await gradients(model, { dims: c.dims, batch: B, time: T, inputs: f64(inputs), params: f64(params), initialState: f64(init) }, cot);
    const m = await Cls.create({ ...common, params });
    for (const memory of ["store", { every: 9 }]) {
      const row: Row = { model: N, form: m.formFor(B, T), what: `backward ${JSON.stringify(memory)}`, err: Infinity, ok: false };
      try {
        const y = await m.forward(shaped, { initialState: init, saveForBackward: true, memory });
        const g = await m.backward({ ...Object.fromEntries(Object.entries(cot.outputs).map(([k, v]) => [k, Float32Array.from(v)])), finalState: Object.fromEntries(Object.entries(cot.finalState).map(([k, v]) => [k, Float32Array.from(v)])) }, y.saved);
        const errs: Record<string, number> = {};
        for (const [k, v] of Object.entries(want.inputs)) errs[`d${k}`] = relErr(g.inputs[k], v);
        for (const [k, v] of Object.entries(want.params)) if (params[k]) errs[`d${k}`] = relErr(g.params[k], v);
        for (const [k, v] of Object.entries(want.initialState)) errs[`d${k}0`] = relErr(g.initialState[k], v);
        row.err = Math.max(...Object.values(errs));
        row.ok = row.err <= 1e-4;
        row.note = Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(" ");
      } catch (e) {
        row.note = (e as Error).message.split("\n")[0].slice(0, 200);
      }
      push(row);
    }
    m.dispose();
  }
  // times after every check (the first H100 run spent its budget on them before reaching Hgrn)
  for (const c of CASES) {
    if (late()) break;
    const model = loadProgram([join(ROOT, "stdlib", `${c.file}.seq`)]).models[0];
    const N = model.name;
    const Cls = classes[N];
    const common = { backend: "cuda", device, cudaPlan: JSON.parse(readFileSync(join(PLANS, `${N}.cuda.json`), "utf8")), cudaGradPlan: JSON.parse(readFileSync(join(PLANS, `${N}.grad.cuda.json`), "utf8")), cudaRuntime, dims: c.dims };
    // times at a larger shape: forward alone, forward with saving + backward (median of 3 after a warm-up)
    const TB = 8, TT = 256;
    const big = makeCase(model, c, TB, TT, 3);
    const bigIn = Object.fromEntries(Object.entries(big.inputs).map(([k, v]) => [k, { data: v, shape: [TB, TT, v.length / (TB * TT)] }]));
    const mt = await Cls.create({ ...common, params: big.params });
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
    try {
      const fwd = await time(() => mt.forward(bigIn));
      const gradOut = Object.fromEntries(model.tensors.filter((t) => t.kind === "output").map((t) => [t.name, new Float32Array(TB * TT * size(t, c.dims)).fill(1e-3)]));
      const fb = await time(async () => mt.backward(gradOut, (await mt.forward(bigIn, { saveForBackward: true })).saved));
      timings.push({ model: N, shape: `B=${TB} T=${TT} ${JSON.stringify(c.dims)}`, form: mt.formFor(TB, TT), forwardMs: fwd, forwardBackwardMs: fb });
    } catch (e) {
      timings.push({ model: N, error: (e as Error).message.split("\n")[0] });
    }
    mt.dispose();
    log(JSON.stringify(timings[timings.length - 1]));
  }
  const bad = rows.filter((r) => !r.ok);
  log("\nfailed:");
  for (const r of bad) log(fmtRow(r));
  log("\ntimes (host-side wall clock per call, inputs uploaded and results read back):");
  for (const t of timings) log(JSON.stringify(t));
  log(`\n${rows.length - bad.length}/${rows.length} checks ok in ${((performance.now() - T0) / 1000).toFixed(1)} s`);
  writeFileSync(join(OUT, "class-check.json"), JSON.stringify({ device: device.info, rows, timings }, null, 1));
}
