/**
 * The WGSL chunked form of models without low-rank reads that have two rows a token (two outer products a step: R = 2,
 * C = F / 2 tokens a chunk; no stdlib model without low rank has them, so TwoRow / TwoRowKey below), with a scalar and a
 * per-key decay, F = 32 and 64, key sizes over one 16-key tile of phase A and not a multiple of it. On the machine's
 * WebGPU device (lavapipe in CI) against the float64 reference interpreter (fp32 <= 1e-4 relative), T = 1, 37 and 70
 * (not multiples of the chunk), from an initial state and the declared one, outputs and final states.
 */
import { describe, expect, it } from "vitest";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import type { Model } from "../compiler/ir/types.ts";
import { expectChunkedVariant } from "./helpers/wgsl-chunked-variant.ts";
import { testDims } from "./wgsl/support.ts";

const TOL = 1e-4;

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
    const model = twoRowModel(name);
    const dims = testDims(model, over);
    const plan = compileWgsl(model, []);
    addChunked(plan, model, (v) => v === variant);
    expect(plan.forms.map((f) => f.variant)).toContain(variant);
    const shapes = [
      { batch: 1, time: 70, init: true },
      { batch: 1, time: 1, init: true },
      { batch: 2, time: 37, init: false },
    ];
    await expectChunkedVariant(model, plan, variant, dims, shapes, 60, TOL);
  }, 600_000);
});
