/**
 * Phase A of the WGSL chunked core (compiler/backends/wgsl/chunked-core.ts) where its low-rank products span
 * several column tiles: T = (I - N)^-1 by right-looking substitution, U0 = T alpha V and M = T diag(beta) W~ in
 * F x (2048 / F) tiles (64 columns at F = 32 row slots), with value sizes over one tile and not a multiple of it
 * (F = 64, 32-column tiles: test/wgsl-chunked.test.ts's DeltaNet single walk at K = 5, V = 3; at K, V over 32 it
 * took 5 minutes on lavapipe); on the machine's WebGPU device (lavapipe in CI) against the float64 reference interpreter
 * (fp32 <= 1e-4 relative), T = 1, 37 and 70 (not multiples of the chunk), from an initial state and the declared one,
 * outputs and final states.
 */
import { describe, expect, it } from "vitest";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { ModelRunner } from "../runtime/index.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { stdlibModel, testDims } from "./wgsl/support.ts";

const TOL = 1e-4;
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));

const CASES: [string, string, Record<string, number>][] = [
  ["deltanet", "chunked-s3t-slots32-k64-v16-r1", { K: 64, V: 66 }], // F = 32: one 64-column key tile, two value tiles
  ["gated_deltanet", "chunked-s3t-slots32-k64-v16-r1", { K: 50, V: 130 }], // three value tiles, the last partial
];

describe("WGSL chunked phase A, low-rank products over several column tiles", () => {
  it.each(CASES)("%s, %s (%o)", async (name, variant, over) => {
    const model = stdlibModel(name);
    const dims = testDims(model, over);
    const plan = compileWgsl(model, []);
    addChunked(plan, model, (v) => v === variant);
    const shapes = [
      { batch: 1, time: 70, init: true },
      { batch: 1, time: 1, init: true },
      { batch: 2, time: 37, init: false },
    ];
    const first = chunkInputs(model, { dims, batch: 1, time: 1, seed: 1, initialState: true });
    const runner = await ModelRunner.create(plan, { dims, params: f32(first.params), tune: false, form: "chunked" });
    try {
      for (const [i, s] of shapes.entries()) {
        const run: RunInputs = { ...chunkInputs(model, { dims, batch: s.batch, time: s.time, seed: 40 + i, initialState: s.init }), params: first.params };
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
          expect(relativeError(Float64Array.from(got), ref), `${k} at B=${s.batch} T=${s.time}`).toBeLessThanOrEqual(TOL);
        }
      }
    } finally {
      runner.dispose();
    }
  }, 600_000);
});
