/**
 * The WGSL chunked form of models without low-rank reads that have two rows a token (two outer products a step: R = 2,
 * C = F / 2 tokens a chunk; no stdlib model without low rank has them, so TwoRow / TwoRowKey below), with a scalar and a
 * per-key decay, F = 32 and 64, key sizes over one 16-key tile of phase A and not a multiple of it. On the machine's
 * WebGPU device (lavapipe in CI) against the float64 reference interpreter (fp32 <= 1e-4 relative), T = 1, 37 and 70
 * (not multiples of the chunk), from an initial state and the declared one, outputs and final states.
 */
import { describe, expect, it } from "vitest";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import type { Model } from "../compiler/ir/types.ts";
import { ModelRunner } from "../runtime/index.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { stdlibModel, testDims } from "./wgsl/support.ts";

const TOL = 1e-4;
const f32 = (x: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(x ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));

/** Two rows a token (two outer products per step), a scalar decay and a per-key one. */
const TWO_ROWS = `
model TwoRow {
  dims H, K, V
  input q[H,K], k[H,K], v[H,V], k2[H,K], v2[H,V], g[H]
  state S[H,K,V] = 0
  S[h,i,j] = exp(g[h]) * S[h,i,j] + k[h,i] * v[h,j] + k2[h,i] * v2[h,j]
  output o[h,j] = sum(i) q[h,i] * S[h,i,j]
}
model TwoRowKey {
  dims H, K, V
  input q[H,K], k[H,K], v[H,V], k2[H,K], v2[H,V], gk[H,K]
  state S[H,K,V] = 0
  S[h,i,j] = exp(gk[h,i]) * S[h,i,j] + k[h,i] * v[h,j] + k2[h,i] * v2[h,j]
  output o[h,j] = sum(i) q[h,i] * S[h,i,j]
}
`;
function twoRowModel(name: string): Model {
  const p = loadProgram(["two-rows.seq"], new Map([["two-rows.seq", TWO_ROWS]]));
  const errors = p.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => d.message).join("; "));
  return p.models.find((m) => m.name === name)!;
}

const CASES: [string, string, Record<string, number>][] = [
  ["TwoRow", "chunked-s3t-slots32-k32-v32-r2", { K: 40, V: 13 }], // scalar decay, C = 16, tiled readout
  ["TwoRowKey", "chunked-s3t-slots64-k32-v32-r2", { K: 36, V: 19 }], // per-key decays, C = 32
  ["TwoRowKey", "chunked-s3-slots32-k32-v32-r2", { K: 33, V: 5 }], // C = 16, plain readout
  ["TwoRow", "chunked-slots64-v16-r2", { K: 21, V: 18 }], // the single walk
];

describe("WGSL chunked form, two rows a token without low rank", () => {
  it.each(CASES)("%s, %s (%o)", async (name, variant, over) => {
    const model = name.startsWith("TwoRow") ? twoRowModel(name) : stdlibModel(name);
    const dims = testDims(model, over);
    const plan = compileWgsl(model, []);
    addChunked(plan, model, (v) => v === variant);
    expect(plan.forms.map((f) => f.variant)).toContain(variant);
    const shapes = [
      { batch: 1, time: 70, init: true },
      { batch: 1, time: 1, init: true },
      { batch: 2, time: 37, init: false },
    ];
    const first = chunkInputs(model, { dims, batch: 1, time: 1, seed: 1, initialState: true });
    const runner = await ModelRunner.create(plan, { dims, params: f32(first.params), tune: false, form: "chunked" });
    try {
      for (const [i, s] of shapes.entries()) {
        const run: RunInputs = { ...chunkInputs(model, { dims, batch: s.batch, time: s.time, seed: 60 + i, initialState: s.init }), params: first.params };
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
