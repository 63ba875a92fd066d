/**
 * The sequential form's grid variant (one dispatch per step over a grid of workgroups, the
 * state-independent let terms hoisted out of the time loop) on WebGPU (lavapipe in CI) against the
 * float64 interpreter, for every stdlib model it applies to: T in {1, 7, 64, 1000}, B in {1, 3},
 * non-zero initial states, final states compared, relative error <= 1e-4; plus sizes that take
 * several unit and batch tiles and several slices of the contraction. Also the analysis behind it
 * (which terms are hoisted, which sums become contractions, where it does not apply).
 */
import { describe, it, expect } from "vitest";
import { STDLIB, stdlibModel, testDims, randomInputs, planOf, runWebgpu, compare, reference } from "./wgsl/support.ts";
import { planHoisting } from "../compiler/kernel/hoist.ts";
import { stepGridPlan } from "../compiler/kernel/step-grid.ts";
import { analyzePartition } from "../compiler/kernel/partition.ts";
import { chooseWebgpuForm } from "../compiler/backends/wgsl/run-backend.ts";
import { rankForms } from "../runtime/index.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { compileWgsl } from "../compiler/backends/wgsl/index.ts";
import { printExpr } from "../compiler/ir/print.ts";
import { USER_CELL } from "./helpers/user-cell.ts";

const TOL = 1e-4;
const GRID_MODELS = ["lstm", "gru", "slstm"];

describe("grid variant: analysis", () => {
  it("applies exactly to the stdlib models with a contraction of a param and a previous state", () => {
    const applies = STDLIB.filter((n) => stepGridPlan(stdlibModel(n)).ok);
    expect(applies.sort()).toEqual([...GRID_MODELS].sort());
    const mamba = stepGridPlan(stdlibModel("mamba"));
    expect(mamba.ok).toBe(false);
    if (!mamba.ok) expect(mamba.why).toMatch(/no contraction/);
    const dp = stepGridPlan(stdlibModel("gated_deltaproduct"));
    if (!dp.ok) expect(dp.why).toMatch(/micro-step/);
  });

  it("hoists lstm's input terms out of pre and keeps the recurrent one", () => {
    const h = planHoisting(stdlibModel("lstm"));
    expect(h.lets.map((l) => [l.let, l.whole, l.terms.length])).toEqual([["pre", false, 3]]);
    const pre = h.model.body.find((s) => s.k === "let" && s.target === "pre")!;
    expect(printExpr(pre.k === "let" ? pre.expr : { k: "num", value: 0 })).toMatch(/^__H0\[g,j\] \+ \(sum\(m\)/);
  });

  it("moves gru's gi out of the step entirely and reads it from the hoisted tensor", () => {
    const h = planHoisting(stdlibModel("gru"));
    expect(h.lets.map((l) => [l.let, l.whole])).toEqual([["gi", true]]);
    expect(h.model.tensors.some((t) => t.name === "gi")).toBe(false);
    const r = h.model.body.find((s) => s.k === "let" && s.target === "r")!;
    expect(printExpr(r.k === "let" ? r.expr : { k: "num", value: 0 })).toContain("__H0[0,j]");
  });

  it("turns each recurrent sum into a contraction and partitions the units (the previous state is read anywhere)", () => {
    for (const [name, param, state, perUnit, classes] of [["lstm", "weight_hh_l0", "h", false, 1], ["gru", "weight_hh_l0", "h", false, 1], ["slstm", "R", "y", true, 2]] as const) {
      const p = stepGridPlan(stdlibModel(name));
      expect(p.ok).toBe(true);
      if (!p.ok) continue;
      expect(p.recurrent.map((r) => [r.param.tensor, r.state.tensor, r.perUnit])).toEqual([[param, state, perUnit]]);
      expect(analyzePartition(p.model, { previousStateReadsFree: true }).classes.length).toBe(classes);
      // without it, the recurrent read blocks the unit axis (sLSTM keeps its heads)
      expect(analyzePartition(stdlibModel(name)).classes.length).toBe(classes - 1);
    }
  });

  it("is ranked by the cost model: first for the benchmark's LSTM on an H100's limits, not for a tiny one", () => {
    const c = chooseWebgpuForm(stdlibModel("lstm"), { B: 8, T: 1024, H: 128, I: 64 });
    expect(c.ranking.map((r) => r.variant)).toContain("sequential/grid");
    const plan = planOf("lstm", stdlibModel("lstm"));
    const h100 = { LIMIT_SHARED: 49152, LIMIT_THREADS: 1024, LIMIT_BINDING: 2147483644 };
    const rank = (s: Record<string, number>) => rankForms(plan.forms, { ...s, ...h100 }).map((e) => `${e.form.form}/${e.form.variant}`);
    // at H=256 the stream variant (one dispatch, test/wgsl-stream.test.ts) comes first, grid before the one-workgroup variants
    const r256 = rank({ B: 64, T: 2048, H: 256, I: 256 });
    expect(r256.slice(0, 2)).toEqual(["sequential/stream", "sequential/grid"]);
    expect(rank({ B: 16, T: 1024, H: 1024, I: 1024 })[0]).toBe("sequential/grid");
    expect(rank({ B: 1, T: 7, H: 2, I: 4 })[0]).not.toBe("sequential/grid");
  });
});

for (const name of GRID_MODELS) {
  describe(`grid variant: ${name} vs the interpreter`, () => {
    const model = stdlibModel(name);
    const plan = planOf(name, model);
    for (const T of [1, 7, 64, 1000]) {
      for (const B of [1, 3]) {
        it(`T=${T}, B=${B}`, async () => {
          const run = randomInputs(name, model, testDims(model), B, T, 7000 * T + B);
          const got = await runWebgpu(plan, model, run, "sequential/grid");
          expect(got.form).toBe("sequential/grid");
          const c = compare(got, reference(model, run));
          expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
        }, 600_000);
      }
    }
    // several unit tiles (some partial), several batch tiles, a contraction deeper than one slice (a
    // second pipeline compile: lstm for the shared state vector, slstm for the per-head one)
    const big: Record<string, number> = name === "slstm" ? { NH: 3, DH: 13, I: 19 } : { H: 150, I: 19 };
    if (name !== "gru") it(`several tiles and slices: ${JSON.stringify(big)}, B=21, T=9`, async () => {
      const run = randomInputs(name, model, testDims(model, big), 21, 9, 99);
      const got = await runWebgpu(plan, model, run, "sequential/grid");
      const c = compare(got, reference(model, run));
      expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
    }, 600_000);
  });
}


describe("grid variant: a user's model", () => {
  const p = loadProgram(["cell.seq"], new Map([["cell.seq", USER_CELL]]));
  const model = p.models[0];

  it("hoists the elementwise input term and finds both contractions", () => {
    expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const g = stepGridPlan(model);
    expect(g.ok).toBe(true);
    if (!g.ok) return;
    expect(g.hoisting.lets.map((l) => [l.let, l.whole, l.terms.length])).toEqual([["a", false, 2]]);
    // U[m, j] * h[m] * 0.5 is not a plain product of two reads: it stays a loop in the step
    expect(g.recurrent.map((r) => r.target)).toEqual(["a"]);
  });

  for (const [T, B] of [[1, 1], [64, 3]]) {
    it(`matches the interpreter, T=${T}, B=${B}`, async () => {
      const plan = compileWgsl(model);
      const run = randomInputs("cell", model, { H: 7 }, B, T, 5 * T + B);
      const got = await runWebgpu(plan, model, run, "sequential/grid");
      const c = compare(got, reference(model, run));
      expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
    }, 600_000);
  }
});
