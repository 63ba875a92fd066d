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
import { describe, it } from "vitest";
import { compileWgsl, addChunked } from "../compiler/backends/wgsl/index.ts";
import { expectChunkedVariant } from "./helpers/wgsl-chunked-variant.ts";
import { stdlibModel, testDims } from "./wgsl/support.ts";

const TOL = 1e-4;

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
    await expectChunkedVariant(model, plan, variant, dims, shapes, 40, TOL);
  }, 600_000);
});
