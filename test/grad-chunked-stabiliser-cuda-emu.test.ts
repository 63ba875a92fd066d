/**
 * The chunked backward chain of a stabilised form (mLSTM: max-plus stabiliser, normaliser value column) with its
 * four cores (at value extent V + 1) on the CUDA chunked kernels (CPU emulation, test/cuda-emu: the split3 fp32
 * variant), the pointwise models (prep, post, the stabiliser's prep and their backward) and the log-decay scan by
 * the float64 interpreter, the stabiliser's pass and adjoint in the host glue; fp32 <= 1e-4 against the float64
 * reference gradients at T = 1, 77 (given C, n, m) and 40 (declared m = -inf). Needs g++.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import type { Model } from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { chainGradients, type ChainForm } from "../compiler/grad/chunked-chain.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const VARIANT = "chunked-split3-f32-k32-v16-r1";
const cores: string[] = [];
const exec = (m: Model, run: RunInputs, form: ChainForm) => {
  if (form !== "chunked") return interpret(m, run);
  cores.push(m.name);
  return runEmu(buildEmu(m, [VARIANT]), VARIANT, run);
};

describe.skipIf(!gpp)("mlstm: the chunked backward chain with its cores on the emulated CUDA chunked kernels vs float64", () => {
  it("T = 1, 77 (given C, n, m), 40 (declared): <= 1e-4", async () => {
    const model = loadProgram(["stdlib/mlstm.seq"]).models[0];
    const dims = smallDims(model, { K: 5, V: 6 });
    for (const [B, T, init] of [[1, 1, true], [2, 77, true], [1, 40, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 3 + T, initialState: init });
      const cot = randomCotangents(interpret(model, run), T + 1);
      cores.length = 0;
      const want = await gradients(model, run, cot);
      const got = await chainGradients(model, run, cot, exec);
      expect(cores).toEqual(["ChainCore", "ChainCoreT", "ChainAdjoint", "ChainAdjointT"]);
      for (const kind of ["inputs", "params", "initialState"] as const)
        for (const [k, v] of Object.entries(want[kind])) expect(relativeError(got[kind][k], v), `B=${B} T=${T}: ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
    }
  }, 600_000);
});
