/**
 * One WGSL chunked variant on the machine's WebGPU device (lavapipe in CI) against the float64 reference interpreter:
 * one runner with the params of seed 1, then each shape's random inputs (seeds seed, seed + 1, ..), from an initial
 * state or the declared one; every output and final state within `tol` (relative). Used by the chunked-variant tests
 * (test/wgsl-chunked-phase-a, -readout-tiled, -two-rows).
 */
import { expect } from "vitest";
import { interpret, type RunInputs } from "../../compiler/ir/interpret.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { ModelRunner, type ModelPlan } from "../../runtime/index.ts";
import { chunkInputs } from "./chunk-inputs.ts";

const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));

export interface ChunkedShape { batch: number; time: number; init: boolean }

export async function expectChunkedVariant(model: Model, plan: ModelPlan, variant: string, dims: Record<string, number>, shapes: ChunkedShape[], seed: number, tol: number): Promise<void> {
  const first = chunkInputs(model, { dims, batch: 1, time: 1, seed: 1, initialState: true });
  const runner = await ModelRunner.create(plan, { dims, params: f32(first.params), tune: false, form: "chunked" });
  try {
    for (const [i, s] of shapes.entries()) {
      const run: RunInputs = { ...chunkInputs(model, { dims, batch: s.batch, time: s.time, seed: seed + i, initialState: s.init }), params: first.params };
      const want = interpret(model, run);
      const full = runner.dimsFor(run.time);
      const inputs = Object.fromEntries(
        Object.entries(run.inputs).map(([k, a]) => [k, { data: Float32Array.from(a), shape: [run.batch, run.time, ...model.tensors.find((t) => t.name === k)!.shape.map((e) => (e.kind === "lit" ? e.value : full[e.name]))] }]),
      );
      const r = await runner.forward(inputs, { initialState: f32(run.initialState), returnFinalState: true, form: "chunked" });
      expect(r.form).toBe(`chunked/${variant}`);
      const checked = [
        ...Object.entries(want.outputs).map(([k, v]) => [k, r.outputs[k] as Float32Array, v] as const),
        ...Object.entries(want.finalState).map(([k, v]) => [`final ${k}`, r.finalState![k] as Float32Array, v] as const),
      ];
      expect(checked.length).toBeGreaterThan(1);
      for (const [k, got, ref] of checked) {
        expect(got.length, k).toBe(ref.length);
        expect(relativeError(Float64Array.from(got), ref), `${k} at B=${s.batch} T=${s.time}`).toBeLessThanOrEqual(tol);
      }
    }
  } finally {
    runner.dispose();
  }
}
