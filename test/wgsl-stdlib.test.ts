/**
 * Every stdlib model x every form it has on WebGPU (Dawn; lavapipe in CI) against the float64
 * interpreter: T in {1, 7, 64, 1000}, B in {1, 3}, random inputs, non-zero initial states, outputs
 * and final states compared; relative error <= 1e-4 in float32. Each sequential variant (thread,
 * workgroup, global memory) also runs once on its own.
 */
import { describe, it, expect, afterAll } from "vitest";
import { STDLIB, stdlibModel, testDims, randomInputs, planOf, runWebgpu, compare, reference } from "./wgsl/support.ts";

const TOL = 1e-4;
const report: string[] = [];
afterAll(() => console.log(`WebGPU vs float64 interpreter, worst relative error per model and form:\n${report.sort().join("\n")}`));

const worst = new Map<string, number>();
function record(key: string, err: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, err));
}
afterAll(() => {
  for (const [k, v] of worst) report.push(`  ${k.padEnd(44)} ${v.toExponential(2)}`);
});

for (const name of STDLIB) {
  describe(name, () => {
    const model = stdlibModel(name);
    const dims = testDims(model);
    const plan = planOf(name, model);
    const forms = [...new Set(plan.forms.map((f) => f.form))];

    it("has the expected forms", () => {
      expect(forms).toContain("sequential");
      expect(plan.forms.map((f) => f.variant)).toEqual(expect.arrayContaining(["thread", "workgroup", "global"]));
    });

    for (const form of forms) {
      for (const T of [1, 7, 64, 1000]) {
        for (const B of [1, 3]) {
          // the KV cache of softmax attention grows with T: its long run keeps B = 1
          if (name === "softmax_attention" && T === 1000 && B === 3) continue;
          it(`${form}, T=${T}, B=${B}`, async () => {
            const run = randomInputs(name, model, dims, B, T, 1000 * T + B);
            const want = reference(model, run);
            const got = await runWebgpu(plan, model, run, form);
            const c = compare(got, want);
            record(`${name} ${got.form}`, c.worst);
            expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
          }, 600_000); // the first run of a form compiles its kernel: minutes on a loaded software rasteriser
        }
      }
    }

    for (const v of plan.forms.filter((f) => f.form === "sequential").map((f) => f.variant)) {
      it(`sequential/${v} on its own, T=7, B=3`, async () => {
        const run = randomInputs(name, model, dims, 3, 7, 42);
        const got = await runWebgpu(plan, model, run, `sequential/${v}`);
        const c = compare(got, reference(model, run));
        record(`${name} sequential/${v}`, c.worst);
        expect(got.form).toBe(`sequential/${v}`);
        expect(c.worst, JSON.stringify(c.detail)).toBeLessThanOrEqual(TOL);
      }, 600_000);
    }
  });
}
