/**
 * The split3 variants with the register-tiled readout and phase A's padded tile rows (`chunked-s3t-*`,
 * compiler/backends/wgsl/chunked-readout-tiled.ts unrolled by unroll.ts, chunked-core.ts padA)
 * on the machine's WebGPU device (lavapipe in CI) against the float64 reference interpreter (fp32 <= 1e-4 relative):
 * per variant one runner, then T = 1, T not a multiple of the chunk (37, 133), B in {1, 2, 3}, from an initial state
 * and from the declared one, outputs and final states. The variants cover every thread count of the readout
 * (4C threads: C = 64, 32, 16, 8 tokens per chunk), value sizes that 64 does not divide (21, 37) and more than one
 * 64-value tile (V = 70), key sizes that 32 does not divide (40), low rank and not, scalar and per-key decays, the
 * model's post (mLSTM's normaliser columns and stabiliser).
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
  ["simple_gla", "chunked-s3t-slots64-k32-v32-r1", { K: 40, V: 70 }], // C = 64: 256 threads, two value tiles
  ["gla", "chunked-s3t-slots32-k32-v32-r1", { K: 40, V: 37 }], // C = 32: 128 threads, per-key decays
  ["gated_deltanet", "chunked-s3t-slots32-k64-v16-r1", { K: 40, V: 21 }], // low rank, scalar decay
  ["rwkv7", "chunked-s3t-slots32-k64-v32-r2", { K: 40, V: 24 }], // C = 16: 64 threads, 2 rows per token
  ["gated_deltaproduct", "chunked-s3t-slots32-k32-v32-r4", { J: 3 }], // C = 8: 32 threads, 3 rows padded to 4
  ["mlstm", "chunked-s3t-slots32-k32-v32-r1", { K: 40, V: 37 }], // normaliser column, stabiliser, post launch
  ["mamba2", "chunked-s3t-slots32-k64-v16-r1", { N: 33, P: 66 }],
];

describe("WGSL chunked form, split3 with the tiled readout", () => {
  it.each(CASES)("%s, %s (%o)", async (name, variant, over) => {
    const model = stdlibModel(name);
    const dims = testDims(model, over);
    const plan = compileWgsl(model, []);
    addChunked(plan, model, (v) => v === variant);
    const shapes = [
      { batch: 2, time: 133, init: true },
      { batch: 1, time: 1, init: true },
      { batch: 3, time: 37, init: false },
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
