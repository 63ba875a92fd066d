/**
 * The param passes of the split backward (compiler/grad/split.ts) that sum an outer product of per-step
 * values, dW = sum_{b,t} g_t x_t^T, lower to the tiled matrix product of the hoisting
 * (compiler/kernel/outer-sum.ts over hoist.ts tiledProduct) instead of one lane per element of W:
 *   - the shape is found in the IR (LSTM / GRU weights; the biases' sums of one factor keep the
 *     per-element form) and the matmul variant is what WebGPU's cost model, CUDA's plan order and the
 *     torch plans pick;
 *   - the pass models on WebGPU (lavapipe) and on the CPU emulation of CUDA against the float64
 *     interpreter at odd sizes (B=3, T=7, H=5, I=3), T=1, initial states, several tiles and slices;
 *   - gradients() through the core and the passes on WebGPU against the float64 reference.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs, type RunResult } from "../compiler/ir/interpret.ts";
import { gradients, trainingBackward } from "../compiler/grad/run.ts";
import { outerSum } from "../compiler/kernel/outer-sum.ts";
import { lowerModel } from "../compiler/kernel/compile.ts";
import { lowerCuda, lowerCudaF64 } from "../compiler/backends/cuda/plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { compileWgsl } from "../compiler/backends/wgsl/index.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { rankForms } from "../runtime/cost.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import type { CudaDevice } from "../runtime/cuda/device.ts";
import { MultiPlanFakeDevice } from "./cuda-emu/plain.ts";
import { runWebgpu as runWebgpuVariant } from "./wgsl/support.ts";
import { randomRun, randomCotangents } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const nvcc = findNvcc();
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const passesOf = (name: string) => Object.fromEntries(trainingBackward(load(name), {}).passes.map((p) => [p.param, p.model]));
const DIMS = { H: 5, I: 3 };
const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const TOL = 1e-5;

function worst(got: RunResult["finalState"], want: RunResult["finalState"]): number {
  return Math.max(...Object.entries(want).map(([k, v]) => relativeError(Float64Array.from(got[k] ?? []), v)));
}

describe("outer-product param passes: the shape in the IR", () => {
  it("LSTM and GRU weights are outer-product sums (rows: gate x unit, columns: the input / hidden index); biases are not", () => {
    for (const name of ["lstm", "gru"]) {
      const p = passesOf(name);
      for (const w of ["weight_ih_l0", "weight_hh_l0"]) {
        const o = outerSum(p[w]);
        if ("why" in o) throw new Error(`${name} ${w}: ${o.why}`);
        expect(o.rowVars.map((v) => v.name), `${name} ${w}`).toEqual(["p0", "p1"]);
        expect(o.colVars.map((v) => v.name), `${name} ${w}`).toEqual(["p2"]);
      }
      for (const b of ["bias_ih_l0", "bias_hh_l0"]) expect(outerSum(p[b]), `${name} ${b}`).toEqual({ why: expect.stringMatching(/not an outer product/) });
    }
    // the forward models are not (several statements, outputs)
    expect("why" in outerSum(load("lstm"))).toBe(true);
  });

  it("a factor that reads a param, or a product of two factors sharing every index, keeps the per-element form", () => {
    const src = (inc: string) => `model M {\n  dims A, C\n  input x[A], y[C]\n  param w[A, C]\n  state S[A, C] = 0\n\n  S[i, j] = S[i, j] + ${inc}\n}\n`;
    const m = (inc: string) => loadProgram(["m.seq"], new Map([["m.seq", src(inc)]])).models[0];
    expect("why" in outerSum(m("x[i] * y[j]"))).toBe(false);
    expect("why" in outerSum(m("w[i, j] * x[i] * y[j]"))).toBe(true);
    expect("why" in outerSum(m("x[i] * y[j] * x[i] * y[j]"))).toBe(false);
  });

  it("the matmul variant is first in the CUDA and torch plans and ranked first on WebGPU (H100 limits and the WebGPU defaults; at T = 1 the one-step thread variant may win)", () => {
    for (const name of ["lstm", "gru"]) {
      const p = passesOf(name);
      for (const w of ["weight_ih_l0", "weight_hh_l0"]) {
        expect(lowerCuda(p[w]).plan.forms[0].variant).toBe("matmul");
        expect(buildTorchPlans(load(name)).plans[`pass:${w}`].forms[0].variant).toBe("matmul");
        const forms = lowerModel(p[w]).forms.map((f) => f.plan);
        for (const limits of [{ LIMIT_SHARED: 49152, LIMIT_THREADS: 1024 }, { LIMIT_SHARED: 16384, LIMIT_THREADS: 256 }])
          // the benchmark's passes (B = 64, T = 1024 folded by passFold) at H = 256, 32, 1024, and a small one
          for (const shape of [{ B: 64, T: 1024, H: 256, I: 256 }, { B: 4096, T: 16, H: 32, I: 32 }, { B: 64, T: 1024, H: 1024, I: 1024 }, { B: 3, T: 7, ...DIMS }])
            expect(rankForms(forms, { ...shape, ...limits })[0].form.variant, `${name} ${w} ${JSON.stringify(shape)}`).toBe("matmul");
      }
      for (const b of ["bias_ih_l0", "bias_hh_l0"]) expect(lowerModel(p[b]).forms.some((f) => f.plan.variant === "matmul")).toBe(false);
    }
  });
});

describe.skipIf(!nvcc)("outer-product param passes: nvcc -ptx", () => {
  it("the matmul kernels of the LSTM and GRU weight passes compile for sm_80 and sm_90, float32 and float64", () => {
    for (const name of ["lstm", "gru"]) {
      const m = passesOf(name).weight_hh_l0;
      for (const plan of [lowerCuda(m).plan, lowerCudaF64(m)]) {
        const entry = plan.forms.find((f) => f.variant === "matmul")!.steps.map((s) => (s.kind === "launch" ? s.entry : ""))[0];
        for (const sm of [80, 90]) expect(nvccPtx(plan.source, sm, nvcc!, { lowPriority: true }).ptx).toContain(`.entry ${entry}(`);
      }
    }
  }, 300_000);
});

/** Shapes: the brief's odd sizes, T = 1, and one with several row / column tiles and k slices. */
const SHAPES: { dims: Record<string, number>; B: number; T: number }[] = [
  { dims: DIMS, B: 3, T: 7 },
  { dims: DIMS, B: 3, T: 1 },
  { dims: { H: 37, I: 70 }, B: 2, T: 35 },
];

const passRun = (m: ReturnType<typeof load>, s: (typeof SHAPES)[number], seed: number): RunInputs => randomRun(m, { dims: s.dims, batch: s.B, time: s.T, seed, initialState: true });

describe("outer-product param passes on WebGPU vs the float64 interpreter", () => {
  for (const name of ["lstm", "gru"]) {
    for (const w of ["weight_ih_l0", "weight_hh_l0"]) {
      it.each(SHAPES.map((s) => [JSON.stringify(s), s] as const))(`${name} ${w}: %s`, async (_l, s) => {
        const m = passesOf(name)[w];
        const run = passRun(m, s, 3 * s.T + s.B);
        const got = await runWebgpuVariant(compileWgsl(m), m, run, "sequential/matmul");
        expect(got.form).toBe("sequential/matmul");
        expect(worst(got.finalState, interpret(m, run).finalState)).toBeLessThanOrEqual(TOL);
      }, 300_000);
    }
  }
});

describe.skipIf(!gpp)("outer-product param passes on the CPU emulation of CUDA vs the float64 interpreter", () => {
  for (const name of ["lstm", "gru"]) {
    it.each(SHAPES.map((s) => [JSON.stringify(s), s] as const))(`${name} weight_hh_l0: %s`, async (_l, s) => {
      const m = passesOf(name).weight_hh_l0;
      const run = passRun(m, s, 5 * s.T + s.B);
      const device = new MultiPlanFakeDevice();
      const plan = device.add(lowerCuda(m).plan);
      expect(plan.forms[0].variant).toBe("matmul");
      const runner = await CudaModelRunner.create(plan, { dims: s.dims, params: f32(run.params), device: device as unknown as CudaDevice });
      const r = await runner.forward(f32(run.inputs), { batch: s.B, initialState: f32(run.initialState) });
      expect(r.form).toBe("matmul");
      expect(worst(r.finalState as Record<string, Float32Array> as never, interpret(m, run).finalState)).toBeLessThanOrEqual(TOL);
      runner.dispose();
    }, 300_000);
  }
});

describe("gradients through the core and the matmul passes on WebGPU vs float64", () => {
  for (const name of ["lstm", "gru"]) {
    it.each([7, 1])(`${name} B=3, H=5, I=3, T=%i, initial states`, async (T) => {
      const model = load(name);
      const run = randomRun(model, { dims: DIMS, batch: 3, time: T, seed: 40 + T, initialState: true });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, 8);
      const want = await gradients(model, run, cot);
      // each pass in its matmul variant where it has one (auto may take the thread variant at T = 1)
      const forms: string[] = [];
      const got = await gradients(model, run, cot, async (m, x) => {
        const plan = compileWgsl(m);
        const res = await runWebgpuVariant(plan, m, x, plan.forms.some((f) => f.variant === "matmul") ? "sequential/matmul" : "sequential");
        if (/__weight_(ih|hh)_l0$/.test(m.name)) forms.push(res.form);
        return res;
      });
      expect(forms).toEqual(["sequential/matmul", "sequential/matmul"]);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(got.params[k], v), `d/d ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(got.inputs[k], v), `d/d ${k}`).toBeLessThanOrEqual(1e-4);
    }, 300_000);
  }
});
