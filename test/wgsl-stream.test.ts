/**
 * The sequential form's stream variant (one dispatch with the time loop inside, a workgroup per batch
 * row, the recurrent params packed transposed and streamed every step) on WebGPU (lavapipe in CI)
 * against the float64 interpreter: lstm, gru, slstm and a user's model; T in {1, 7, 64, 1000}, B in
 * {1, 3}, non-zero initial states, final states compared, relative error <= 1e-4; one pipeline per
 * model with its plan vars forced to small workgroups and two batch rows per workgroup (several row
 * passes, partial workgroups); the user's model runs with the plan's own vars.
 */
import { describe, it, expect } from "vitest";
import { stdlibModel, testDims, randomInputs, planOf, runWebgpu, compare, reference } from "./wgsl/support.ts";
import { rankForms, type ModelPlan } from "../runtime/index.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { compileWgsl, renderWgsl } from "../compiler/backends/wgsl/index.ts";
import { lowerStepStream, type StreamOptions } from "../compiler/kernel/step-stream.ts";
import { USER_CELL } from "./helpers/user-cell.ts";

const TOL = 1e-4;
const VARIANT = "sequential/stream";

/** The plan with the stream variant's vars replaced where given. */
function withVars(plan: ModelPlan, set: Record<string, number>): ModelPlan {
  return { ...plan, forms: plan.forms.map((f) => (f.variant === "stream" ? { ...f, vars: f.vars.map(([k, e]) => [k, k in set ? set[k] : e] as [string, typeof e]) } : f)) };
}

// 4 * 33 = 132 contraction rows: two passes of 32 threads x 4 rows (the second partial); depth 33 or
// 11: unrolled slices plus a remainder. sLSTM: the state vector of a contraction depends on the head.
const CASES: Record<string, Record<string, number>> = { lstm: { H: 33, I: 5 }, gru: { H: 33, I: 5 }, slstm: { NH: 3, DH: 11, I: 5 } };
/** One pipeline per model: small workgroups, two batch rows per workgroup (B = 1 and 3: partial workgroups). */
const FORCED = { $WG: 32, $BB: 2 };

describe("stream variant: ranking", () => {
  it("is ranked first for the benchmark's LSTM B=64 H=256 on an H100's limits, the grid variant at H=1024", () => {
    const plan = planOf("lstm", stdlibModel("lstm"));
    const h100 = { LIMIT_SHARED: 49152, LIMIT_THREADS: 1024, LIMIT_BINDING: 2147483644 };
    const rank = (s: Record<string, number>) => rankForms(plan.forms, { ...s, ...h100 }).map((e) => `${e.form.form}/${e.form.variant}`);
    expect(rank({ B: 64, T: 2048, H: 256, I: 256 })[0]).toBe(VARIANT);
    expect(rank({ B: 16, T: 1024, H: 1024, I: 1024 })[0]).toBe("sequential/grid");
  });
});

for (const [name, dims] of Object.entries(CASES)) {
  describe(`stream variant: ${name} vs the interpreter`, () => {
    const model = stdlibModel(name);
    const plan = withVars(planOf(name, model), FORCED);
    for (const T of [1, 7, 64, 1000]) {
      for (const B of [1, 3]) {
        it(`T=${T}, B=${B}`, async () => {
          const run = randomInputs(name, model, testDims(model, dims), B, T, 9100 * T + B);
          const got = await runWebgpu(plan, model, run, VARIANT);
          expect(got.form).toBe(VARIANT);
          const c = compare(got, reference(model, run));
          expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
        }, 600_000);
      }
    }
  });
}


describe("stream variant: a user's model", () => {
  const model = loadProgram(["cell.seq"], new Map([["cell.seq", USER_CELL]])).models[0];
  for (const [T, B] of [[1, 1], [64, 3]]) {
    it(`matches the interpreter, T=${T}, B=${B}`, async () => {
      const run = randomInputs("cell", model, { H: 11 }, B, T, 5 * T + B);
      const got = await runWebgpu(compileWgsl(model), model, run, VARIANT);
      const c = compare(got, reference(model, run));
      expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
    }, 600_000);
  }
});

// The options the tuning runs compare (bench/webgpu/stream-variants.ts), each path beside the default's:
// one 4-byte load per row with states in workgroup memory, and vec4 loads with the global ping-pong
// buffer and prefetched hoisted terms (lstm; the default's padding row is gru's above: 99 rows in 25 quads).
describe("stream variant: the tuning options", () => {
  const combos: Partial<StreamOptions>[] = [{ vec4: false, prefetch: false }, { sharedStates: false, unroll: 4 }];
  for (const name of ["lstm"]) {
    for (const o of combos) {
      it(`${name} ${JSON.stringify(o)} matches the interpreter, T=64, B=3`, async () => {
        const model = stdlibModel(name);
        const f = lowerStepStream(model, o);
        expect(f.plan.variant).not.toBe("stream");
        const base = planOf(name, model);
        const plan = { ...base, shaders: { ...base.shaders } };
        for (const k of f.kernels) plan.shaders[k.name] = renderWgsl(k, []);
        const one = withVars({ ...plan, forms: [{ ...f.plan, variant: "stream" }] }, FORCED);
        const run = randomInputs(name, model, testDims(model, CASES[name]), 3, 64, 77);
        const got = await runWebgpu(one, model, run, VARIANT);
        const c = compare(got, reference(model, run));
        expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
      }, 600_000);
    }
  }
});
