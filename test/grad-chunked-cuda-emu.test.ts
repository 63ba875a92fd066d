/**
 * The chunked backward's cores on the CUDA chunked kernels (CPU emulation, test/cuda-emu): the chain of
 * compiler/grad/chunked-chain.ts with its core models (forward, transposed forward, adjoint and transposed
 * adjoint in reversed time) run by the split3 fp32 kernels unchanged, and its pointwise models (prep's and
 * post's backward) and the log-decay scan by the float64 interpreter; fp32 <= 1e-4 against the float64
 * reference gradients. Needs g++; `nvcc -ptx` (sm_90) of GLA's four chain cores (per-key and unit-value-axis
 * shapes) where nvcc is installed.
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
import { chainModels } from "../compiler/grad/chunked-chain.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { chunkedEligible, lowerChunked } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
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

describe.skipIf(!gpp)("chunked backward: cores on the emulated CUDA chunked kernels vs the float64 reference gradients", () => {
  it.each(["linear_attention", "simple_gla", "mamba2", "gla"])("%s", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    for (const [B, T, init] of [[1, 1, true], [2, 77, true], [1, 40, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 3 + T, initialState: init });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 1);
      cores.length = 0;
      const want = await gradients(model, run, cot);
      const got = await chainGradients(model, run, cot, exec);
      expect(cores).toEqual(["ChainCore", "ChainCoreT", "ChainAdjoint", "ChainAdjointT"]);
      for (const kind of ["inputs", "params", "initialState"] as const)
        for (const [k, v] of Object.entries(want[kind])) expect(relativeError(got[kind][k], v), `B=${B} T=${T}: ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
    }
  }, 600_000);
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("nvcc -ptx of the chunked backward's cores (sm_90)", () => {
  it("gla: the four chain cores in the emulated variant", () => {
    const mf = matrixForm(loadProgram(["stdlib/gla.seq"]).models[0]);
    if (!mf.ok) throw new Error(mf.reason);
    const ms = chainModels(mf.form);
    for (const m of [ms.core, ms.coreT, ms.adjoint, ms.adjointT]) {
      const el = chunkedEligible(m);
      if (!el.ok) throw new Error(`${m.name}: ${el.why}`);
      const { forms, modules } = lowerChunked(m, el, { only: (v) => v === VARIANT });
      const { ptx } = nvccPtx(modules.f32.source, 90, nvcc, { lowPriority: true });
      const entries = forms.flatMap((f) => f.steps.map((st) => (st as { entry: string }).entry));
      expect(entries.length, m.name).toBeGreaterThan(1);
      for (const e of entries) expect(ptx, `${m.name}: ${e}`).toMatch(new RegExp(`\\.entry ${e}\\(`));
    }
  }, 600_000);
});
