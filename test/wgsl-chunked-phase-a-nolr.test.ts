/**
 * Phase A without low rank (compiler/backends/wgsl/chunked-phase-a-nolr.ts): U0 copied straight to the record, 32-key
 * tiles, per-key log decays summed by segments of tokens, scalar decays' prefix per row. On the machine's WebGPU device
 * (lavapipe in CI) against the float64 reference interpreter (fp32 <= 1e-4 relative), T = 1, 37 and 70 (not multiples
 * of the chunk), from an initial state and the declared one, outputs and final states. Cases: every decay kind (none,
 * scalar, per key), 8 to 64 tokens a chunk (C / 8 tokens per segment of the per-key sum: 1 to 8), two rows a token
 * (no stdlib model without low rank has them: TwoRow / TwoRowKey below), key sizes over one 32-key tile and not a
 * multiple of it, value sizes not a multiple of the copy's 4 x 256 values.
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
  ["gla", "chunked-s3t-slots32-k32-v32-r1", { K: 40, V: 37 }], // per-key decays, C = 32: two key tiles, the last partial
  ["gla", "chunked-s3-slots64-k32-v32-r1", { K: 70, V: 21 }], // C = 64 (8 tokens a segment), three key tiles
  ["simple_gla", "chunked-s3t-slots64-k32-v32-r1", { K: 33, V: 70 }], // scalar decay, C = 64 (Mamba-2: readout-tiled's test)
  ["linear_attention", "chunked-s3t-slots32-k32-v32-r1", { K: 31, V: 9 }], // no decay
  ["TwoRow", "chunked-s3t-slots32-k32-v32-r2", { K: 40, V: 13 }], // two rows a token: C = 16
  ["TwoRowKey", "chunked-s3t-slots64-k32-v32-r2", { K: 36, V: 19 }], // C = 32, per-key decays, 4 tokens a segment
  ["TwoRowKey", "chunked-s3-slots32-k32-v32-r2", { K: 33, V: 5 }], // C = 16, 2 tokens a segment
];

describe("WGSL chunked phase A without low rank", () => {
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
