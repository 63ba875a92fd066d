/**
 * Phase A of the WGSL chunked core (compiler/backends/wgsl/chunked-core.ts) where its low-rank products span
 * several column tiles: T = (I - N)^-1 by right-looking substitution, U0 = T alpha V and M = T diag(beta) W~ in
 * F x (2048 / F) tiles (64 columns at F = 32 row slots), with value sizes over one tile and not a multiple of it
 * (F = 64, 32-column tiles: test/wgsl-chunked.test.ts's DeltaNet single walk at K = 5, V = 3; at K, V over 32 it
 * took 5 minutes on lavapipe); on the machine's WebGPU device (lavapipe in CI) against the float64 reference interpreter
 * (fp32 <= 1e-4 relative), T = 1, 37 and 70 (not multiples of the chunk), from an initial state and the declared one,
 * outputs and final states.
 */
import { describe, it } from "vitest";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { expectChunkedVariant } from "./helpers/wgsl-chunked-variant.ts";
import { stdlibModel, testDims } from "./wgsl/support.ts";

const TOL = 1e-4;

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
    await expectChunkedVariant(model, plan, variant, dims, shapes, 40, TOL);
  }, 600_000);
});
