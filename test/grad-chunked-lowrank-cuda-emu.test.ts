/**
 * The low-rank chain (compiler/grad/chunked-chain-lowrank.ts) with its chunked models (the chunk
 * transitions of the forward and of the adjoint) on the CUDA chunked kernels (CPU emulation, test/cuda-emu:
 * the split3 fp32 variant with 32-key tiles), the other models (the pass over chunks, the per-chunk readouts,
 * the decay scan, prep's and post's backward) by the float64 interpreter; fp32 <= 1e-4 against the float64
 * reference gradients for the delta-rule family (beta in (0, 2)), T = 1, T not a multiple of the folded
 * chunk, given and declared initial states. Needs g++.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import type { Model } from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { chainGradients, type ChainForm } from "../compiler/grad/chunked-chain.ts";
import { chunkedEligible, lowerChunked } from "../compiler/backends/cuda/chunked-plan.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const ran: string[] = [];
/** The split3 fp32 variant with 32-key and 16-value tiles (its row count follows the model's pairs). */
function variant(m: Model): string {
  const el = chunkedEligible(m);
  if (!el.ok) throw new Error(`${m.name}: ${el.why}`);
  const v = lowerChunked(m, el).forms.map((f) => f.variant).find((x) => x.startsWith("chunked-split3-f32-k32-v16-r"));
  if (!v) throw new Error(`${m.name}: no split3 f32 k32 v16 variant`);
  return v;
}
const exec = (m: Model, run: RunInputs, form: ChainForm) => {
  if (form !== "chunked") return interpret(m, run);
  const v = variant(m);
  ran.push(m.name);
  return runEmu(buildEmu(m, [v]), v, run);
};

describe.skipIf(!gpp)("low-rank chunked backward chain: chunk transitions on the emulated CUDA chunked kernels vs the float64 reference gradients", () => {
  it.each(["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"])("%s", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 5, V: 7, J: 2 });
    for (const [B, T, init, chunk] of [[1, 1, true, 8], [2, 29, true, 16], [1, 20, false, 64]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 3 + T, initialState: init });
      if (run.inputs.beta) run.inputs.beta = run.inputs.beta.map((x, i) => (i % 3 === 0 ? 1.5 + 0.4 * x : x + x));
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 1);
      ran.length = 0;
      const want = await gradients(model, run, cot);
      const got = await chainGradients(model, run, cot, exec, { chunk });
      expect(ran).toEqual(["LrAugF", "LrAugA"]);
      for (const kind of ["inputs", "params", "initialState"] as const)
        for (const [k, v] of Object.entries(want[kind])) {
          expect(v.some((x) => x !== 0), `reference ${kind} ${k} is not all zero`).toBe(true);
          expect(relativeError(got[kind][k], v), `B=${B} T=${T}: ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
        }
    }
  }, 600_000);
});
