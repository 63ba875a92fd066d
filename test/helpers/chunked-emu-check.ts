/**
 * The check the CUDA chunked tests on the CPU emulation share (test/cuda-emu/harness.ts): build the emulated module of
 * `variants`, run each on every case (random inputs from chunk-inputs.ts, rounded to the variant's I/O type) and compare
 * its outputs and final states with the float64 interpreter's (relative error < tol; outputs finite).
 */
import { expect } from "vitest";
import { interpret } from "../../compiler/ir/interpret.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import type { Model } from "../../compiler/ir/types.ts";
import { fromBf16, fromF16, toBf16, toF16 } from "../../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "../cuda-emu/harness.ts";
import { chunkInputs } from "./chunk-inputs.ts";
import { smallDims } from "./random.ts";

export interface ChunkEmuCase {
  T: number;
  B: number;
  K: number;
  V: number;
  /** Gated DeltaProduct's householder count (default 2). */
  J?: number;
  init?: boolean;
  stress?: boolean;
}

/** Inputs as the device sees them: rounded to the variant's I/O type. */
const round = (io: string, x: Float64Array) => (io === "bf16" ? x.map((v) => fromBf16(toBf16(v))) : io === "f16" ? x.map((v) => fromF16(toF16(v))) : x);

/** `seed`: the inputs' seed is seed + T + K. `exactForms`: the module must hold exactly `variants`. `patch`: an edit of
 *  the module's source (buildEmu's; a deliberately broken kernel). */
export function checkChunkedEmu(model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, opts: { seed?: number; exactForms?: boolean; patch?: (src: string) => string } = {}): void {
  const b = buildEmu(model, variants, undefined, opts.patch);
  if (opts.exactForms) expect(b.forms.map((f) => f.variant).sort()).toEqual([...variants].sort());
  for (const v of variants) {
    const io = /-(f32|bf16|f16)-/.exec(v)![1];
    for (const c of cases) {
      const dims = smallDims(model, { K: c.K, V: c.V, H: 2, P: c.V, N: c.K, J: c.J ?? 2 });
      const run = chunkInputs(model, { dims, batch: c.B, time: c.T, seed: (opts.seed ?? 3) + c.T + c.K, initialState: c.init, stress: c.stress });
      for (const k of Object.keys(run.inputs)) run.inputs[k] = round(io, run.inputs[k]);
      const ref = interpret(model, run);
      const got = runEmu(b, v, run);
      const label = `${v} T=${c.T} B=${c.B} K=${c.K} V=${c.V}${c.stress ? " stress" : ""}`;
      for (const [k, x] of Object.entries(ref.outputs)) {
        expect(got.outputs[k].every(Number.isFinite), `${label}: ${k} finite`).toBe(true);
        expect(relativeError(got.outputs[k], x), `${label}: ${k}`).toBeLessThan(tol);
      }
      for (const [k, x] of Object.entries(ref.finalState)) expect(relativeError(got.finalState[k], x), `${label}: final ${k}`).toBeLessThan(tol);
    }
  }
}
