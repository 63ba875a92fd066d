/**
 * The input passes of the split backward (compiler/grad/split.ts): an input adjoint that contracts a param
 * with per-step values (LSTM / GRU x_bar = W_ih^T times the gate adjoints) leaves the adjoint recurrence and
 * runs after it as a model without state, lowered to one tiled matrix product over all B x T steps
 * (compiler/kernel/param-product.ts over hoist.ts tiledProduct):
 *   - the shape is found in the IR (LSTM, GRU, sLSTM; Mamba-2's dt_bar sums a state-sized product and
 *     stays in the core) and the matmul variant is first in the CUDA and torch plans;
 *   - the pass models on WebGPU (lavapipe) and on the CPU emulation of CUDA against the float64
 *     interpreter at odd sizes, T = 1, and with several row / column tiles and depth slices;
 *   - gradients() through the core, the param passes and the input pass on WebGPU against float64.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import * as I from "../compiler/ir/types.ts";
import { interpret, type RunInputs, type RunResult } from "../compiler/ir/interpret.ts";
import { gradients, trainingBackward } from "../compiler/grad/run.ts";
import { paramProduct } from "../compiler/kernel/param-product.ts";
import { lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { compileWgsl } from "../compiler/backends/wgsl/index.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import type { CudaDevice } from "../runtime/cuda/device.ts";
import { MultiPlanFakeDevice } from "./cuda-emu/plain.ts";
import { runWebgpu as runWebgpuVariant } from "./wgsl/support.ts";
import { randomRun, randomCotangents } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const inputPass = (name: string) => trainingBackward(load(name), {}).inputPasses.find((p) => p.input === "x")!.model;
const DIMS = { H: 5, I: 3 };
const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const TOL = 1e-5;

function worst(got: RunResult["outputs"], want: RunResult["outputs"]): number {
  return Math.max(...Object.entries(want).map(([k, v]) => relativeError(Float64Array.from(got[k] ?? []), v)));
}

describe("input passes: the param-product shape in the IR", () => {
  it("LSTM, GRU and sLSTM x_bar are products of the gate adjoints (depth: gate x unit) with W_ih", () => {
    for (const [name, depth] of [["lstm", ["lit", "dim"]], ["gru", ["lit", "dim"]], ["slstm", ["lit", "dim", "dim"]]] as const) {
      const o = paramProduct(inputPass(name));
      if ("why" in o) throw new Error(`${name}: ${o.why}`);
      expect(o.ks.map((v) => v.extent.kind), name).toEqual(depth);
      expect(o.out.name).toBe("x__bar");
    }
  });

  it("what is not one: a state, a per-step factor at the output's index, a factor of both kinds, no param", () => {
    const src = (body: string, state = "") => `model M {\n  dims A, C\n  input x[A], y[C]\n  param w[A, C]\n${state}\n  output o[j] = ${body}\n}\n`;
    const m = (body: string, state = "") => loadProgram(["m.seq"], new Map([["m.seq", src(body, state)]])).models[0];
    expect("why" in paramProduct(m("sum(i) x[i] * w[i, j]"))).toBe(false);
    expect("why" in paramProduct(m("-(sum(i) x[i] * x[i] * w[i, j] * w[i, j])"))).toBe(false);
    expect(paramProduct(m("sum(i) x[i] * y[j] * w[i, j]"))).toEqual({ why: expect.stringMatching(/output's own indices/) });
    expect(paramProduct(m("sum(i) (x[i] + w[i, j])"))).toEqual({ why: expect.stringMatching(/both an input and a param/) });
    expect(paramProduct(m("sum(i) x[i] * y[j]"))).toEqual({ why: expect.stringMatching(/output's own indices/) });
    expect(paramProduct(m("sum(i) x[i] * x[i]"))).toEqual({ why: expect.stringMatching(/not a product of per-step values and a param/) });
    expect(paramProduct(m("sum(i) x[i] * w[i, j] + y[j]"))).toEqual({ why: expect.stringMatching(/not one sum/) });
    expect(paramProduct(m("sum(i) x[i] * w[i, j]", "  state s[C] = 0\n  s[j] = s[j]"))).toEqual({ why: expect.stringMatching(/has a state/) });
    // Mamba-2's dt_bar sums the state-sized adjoint times the state before the step (and A): not a param product,
    // so it stays in the core (moved out it would only re-read exported state-sized values, per element)
    const m2 = trainingBackward(load("mamba2"), {});
    expect(m2.inputPasses).toEqual([]);
    expect(I.tensorsOfKind(m2.model, "output").map((t) => t.name)).toContain("dt__bar");
  });

  it("the matmul variant is first in the CUDA and torch plans (pass:x, float32)", () => {
    for (const name of ["lstm", "gru"]) {
      expect(lowerCuda(inputPass(name)).plan.forms[0].variant).toBe("matmul");
      const tp = buildTorchPlans(load(name));
      expect(tp.plans["pass:x"]!.forms[0].variant).toBe("matmul");
      // the torch target also marks the pass as one product x_bar = A P (pass-matmul.ts: seqc_torch.PASS_MATMUL runs it as torch.mm)
      expect(tp.inputPasses).toEqual([{ input: "x", bar: "x__bar", reads: expect.any(Object), matmul: { a: expect.any(String), param: "weight_ih_l0" } }]);
      expect(tp.plans.backward.tensors.map((t) => t.name)).not.toContain("x__bar");
    }
  });
});

/** Shapes: odd sizes, T = 1, and one with several row / column tiles and depth slices (4 x 37 = 148 deep). */
const SHAPES: { dims: Record<string, number>; B: number; T: number }[] = [
  { dims: DIMS, B: 3, T: 7 },
  { dims: DIMS, B: 3, T: 1 },
  { dims: { H: 37, I: 70 }, B: 2, T: 35 },
];

const passRun = (m: ReturnType<typeof load>, s: (typeof SHAPES)[number], seed: number): RunInputs => randomRun(m, { dims: s.dims, batch: s.B, time: s.T, seed });

describe("input passes on WebGPU vs the float64 interpreter", () => {
  for (const name of ["lstm", "gru"]) {
    it.each(SHAPES.map((s) => [JSON.stringify(s), s] as const))(`${name} x_bar: %s`, async (_l, s) => {
      const m = inputPass(name);
      const run = passRun(m, s, 3 * s.T + s.B);
      const got = await runWebgpuVariant(compileWgsl(m), m, run, "sequential/matmul");
      expect(got.form).toBe("sequential/matmul");
      expect(worst(got.outputs, interpret(m, run).outputs)).toBeLessThanOrEqual(TOL);
    }, 300_000);
  }
});

describe.skipIf(!gpp)("input passes on the CPU emulation of CUDA vs the float64 interpreter", () => {
  for (const name of ["lstm", "gru"]) {
    it.each(SHAPES.map((s) => [JSON.stringify(s), s] as const))(`${name} x_bar: %s`, async (_l, s) => {
      const m = inputPass(name);
      const run = passRun(m, s, 5 * s.T + s.B);
      const device = new MultiPlanFakeDevice();
      const plan = device.add(lowerCuda(m).plan);
      const runner = await CudaModelRunner.create(plan, { dims: s.dims, params: f32(run.params), device: device as unknown as CudaDevice });
      const r = await runner.forward(f32(run.inputs), { batch: s.B });
      expect(r.form).toBe("matmul");
      expect(worst(r.outputs as never, interpret(m, run).outputs)).toBeLessThanOrEqual(TOL);
      runner.dispose();
    }, 300_000);
  }
});

describe("gradients through the core, the param passes and the input pass on WebGPU vs float64", () => {
  for (const name of ["lstm", "gru"]) {
    it.each([7, 1])(`${name} B=3, H=5, I=3, T=%i, initial states`, async (T) => {
      const model = load(name);
      const run = randomRun(model, { dims: DIMS, batch: 3, time: T, seed: 60 + T, initialState: true });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, 9);
      const want = await gradients(model, run, cot);
      const forms: string[] = [];
      const got = await gradients(model, run, cot, async (m, x) => {
        const plan = compileWgsl(m);
        const res = await runWebgpuVariant(plan, m, x, plan.forms.some((f) => f.variant === "matmul") ? "sequential/matmul" : "sequential");
        if (m.name.endsWith("__backward__x")) forms.push(res.form);
        return res;
      });
      expect(forms).toEqual(["sequential/matmul"]);
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(got.inputs[k], v), `d/d ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(got.params[k], v), `d/d ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(got.initialState[k], v), `d/d ${k}0`).toBeLessThanOrEqual(1e-4);
    }, 300_000);
  }
});
