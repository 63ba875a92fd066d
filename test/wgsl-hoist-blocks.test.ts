/**
 * Hoisting in blocks of steps (hoist.ts hoistBlockVars, plan `blockSteps`): where the hoisted terms of
 * all B * T rows would exceed the storage-binding limit, the grid and stream variants hoist a block of
 * TC steps, run the recurrence over it and go on with the next block, the states carried between
 * blocks. On WebGPU (lavapipe) with the binding limit in the plan's $TC forced small so that the
 * hoisting runs in several blocks (a last partial block, T = 1, T a multiple of TC, TC = 1), B in
 * {1, 3}, non-zero initial states, final states compared with the float64 interpreter (<= 1e-4); and
 * `seqc explain`'s ranking for LSTM B=64 H=256 T=2048 at the WebGPU default limits.
 */
import { describe, it, expect } from "vitest";
import { stdlibModel, testDims, randomInputs, planOf, runWebgpu, compare, reference } from "./wgsl/support.ts";
import { evalSize, formEnv, type FormPlan, type ModelPlan, type SizeExpr } from "../runtime/index.ts";
import { renderWgsl } from "../compiler/backends/wgsl/index.ts";
import { lowerStepStream } from "../compiler/kernel/step-stream.ts";
import { chooseWebgpuForm } from "../compiler/backends/wgsl/run-backend.ts";

const TOL = 1e-4;

/** `e` with the name LIMIT_BINDING replaced by `bytes`. */
const withLimit = (e: SizeExpr, bytes: number): SizeExpr => (e === "LIMIT_BINDING" ? bytes : Array.isArray(e) ? ([e[0], ...e.slice(1).map((x) => withLimit(x, bytes))] as SizeExpr) : e);

/** The form with the binding limit its $TC_FIT sees set to `bytes` (the device's own limit elsewhere), and small workgroups. */
function limited(f: FormPlan, bytes: number): FormPlan {
  return { ...f, vars: f.vars.map(([k, e]) => [k, k === "$TC_FIT" ? withLimit(e, bytes) : k === "$WG" ? 32 : k === "$BB" && f.variant.startsWith("stream") ? 2 : e] as [string, SizeExpr]) };
}

/** Floats hoisted per (batch row, step) of a form: its $HOIST_BYTES / (4 B $TC). */
function width(f: FormPlan, env: Record<string, number>): number {
  const v = formEnv(f, { ...env, LIMIT_BINDING: 2 ** 31 - 4, LIMIT_SHARED: 65536, LIMIT_THREADS: 1024 });
  return v.$HOIST_BYTES / (4 * v.B * v.$TC);
}

const CASES: Record<string, Record<string, number>> = { lstm: { H: 9, I: 5 }, gru: { H: 7, I: 4 } };

for (const [name, dims] of Object.entries(CASES)) {
  const model = stdlibModel(name);
  const base = planOf(name, model);
  // the stream variant with its states in the global ping-pong buffer (a tuning option) beside the default's
  const global = lowerStepStream(model, { sharedStates: false });
  const plan: ModelPlan = { ...base, shaders: { ...base.shaders }, forms: [...base.forms, global.plan] };
  for (const k of global.kernels) plan.shaders[k.name] = renderWgsl(k, []);
  for (const variant of ["grid", "stream", global.plan.variant]) {
    describe(`hoisting in blocks: ${name} ${variant} vs the interpreter`, () => {
      // (T, B, steps that fit the limit): 150 steps, 100 fit: blocks of 64 (a multiple of the product's row tile), the last of 22
      for (const [T, B, TC] of [[7, 3, 3], [6, 1, 3], [1, 3, 2], [5, 3, 1], [13, 3, 4], [150, 3, 100]]) {
        it(`T=${T}, B=${B}, ${TC} steps per block`, async () => {
          const f = plan.forms.find((x) => x.variant === variant)!;
          const d = testDims(model, dims);
          const env = { ...d, B, T };
          const w = width(f, env);
          expect(w).toBeGreaterThan(0);
          // a binding limit holding TC steps of hoisted terms and a bit, not TC + 1
          const bytes = 4 * B * w * TC + 4 * B * w - 4;
          const one: ModelPlan = { ...plan, forms: [limited(f, bytes)] };
          const tc = formEnv(one.forms[0], { ...env, LIMIT_BINDING: 2 ** 31 - 4, LIMIT_SHARED: 65536, LIMIT_THREADS: 1024 }).$TC;
          expect(tc).toBe(Math.min(TC >= 64 ? 64 * Math.floor(TC / 64) : TC, T));
          expect(evalSize(one.forms[0].scratch.find((s) => s.name === "hoisted")!.floats, { ...formEnv(one.forms[0], { ...env, LIMIT_BINDING: 1, LIMIT_SHARED: 65536, LIMIT_THREADS: 1024 }) }) * 4).toBeLessThanOrEqual(bytes);
          const run = randomInputs(name, model, d, B, T, 31 * T + 7 * B + TC);
          expect(run.initialState && Object.keys(run.initialState).length).toBeTruthy();
          const got = await runWebgpu({ ...one, forms: [{ ...one.forms[0], variant: "x" }] }, model, run, "sequential/x");
          const c = compare(got, reference(model, run));
          expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
        }, 600_000);
      }
    });
  }
}

describe("hoisting in blocks: the plans", () => {
  const lstm = stdlibModel("lstm");
  const plan = planOf("lstm", lstm);
  const env = { B: 64, T: 2048, H: 256, I: 256, LIMIT_SHARED: 16384, LIMIT_THREADS: 256, LIMIT_BINDING: 134217728 };
  it("LSTM B=64 H=256 T=2048 at a 128 MiB binding limit: 512 steps per block, a 128 MiB hoisted buffer", () => {
    for (const v of ["grid", "stream"]) {
      const f = plan.forms.find((x) => x.variant === v)!;
      expect(f.blockSteps).toBe("$TC");
      const e = formEnv(f, env);
      expect(e.$TC).toBe(512);
      expect(evalSize(f.scratch.find((s) => s.name === "hoisted")!.floats, e) * 4).toBe(134217728);
    }
  });
  it("all T in one block where it fits (the H100's 2 GiB binding limit)", () => {
    for (const v of ["grid", "stream"]) expect(formEnv(plan.forms.find((x) => x.variant === v)!, { ...env, LIMIT_BINDING: 2147483644 }).$TC).toBe(2048);
  });
  it("the stream variant ranked first at a 128 MiB binding limit with 48 KiB of workgroup memory", () => {
    const c = chooseWebgpuForm(lstm, { B: 64, T: 2048, H: 256, I: 256, LIMIT_BINDING: 134217728, LIMIT_SHARED: 49152, LIMIT_THREADS: 1024 });
    expect(c.ranking[0].variant).toBe("sequential/stream");
    expect(c.why).not.toContain("not ranked");
  });
  it("seqc explain ranks the grid variant at the WebGPU default limits (the stream variant needs more workgroup memory)", () => {
    const c = chooseWebgpuForm(lstm, { B: 64, T: 2048, H: 256, I: 256 });
    expect(c.ranking.map((r) => r.variant)).toContain("sequential/grid");
    expect(c.why).not.toMatch(/sequential\/(grid|stream) \(a larger maxStorageBufferBindingSize/);
    expect(c.why).toContain("sequential/stream (a larger maxComputeWorkgroupStorageSize)");
  });
});
