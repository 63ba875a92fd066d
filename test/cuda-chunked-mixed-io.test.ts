/**
 * The chunked form's mixed-I/O variants (bf16 inputs, fp32 outputs: chunked-plan.ts BF16_IN_F32_OUT), which the
 * torch target emits for the transposed cores of a chain with a log decay (coreT: dq = S dy; adjointT: dk = G v in
 * reversed time; compiler/backends/torch/chain-plans.ts), on the CPU emulation (test/cuda-emu) against the float64
 * interpreter on the same bf16-rounded inputs: T = 1, T not a multiple of the 64-token chunk, a random initial
 * state, odd K and V. The outputs must come back in fp32 (not bf16-rounded): that is what the decay adjoint's
 * cancelling sums q.dq - k.dk need.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { Model } from "../compiler/ir/types.ts";
import { trainingChain } from "../compiler/grad/training.ts";
import { BF16_IN_F32_OUT } from "../compiler/backends/cuda/chunked-plan.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { rng, sizeOf } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const bf16 = (v: number) => fromBf16(toBf16(v));

/** The chain's part `part` of stdlib model `name` (its canonical core over dims H, K, V). */
function chainPart(name: string, part: "coreT" | "adjointT"): Model {
  const m = loadProgram([`stdlib/${name}.seq`]).models[0];
  const full = trainingChain(m, {});
  if ("why" in full) throw new Error(full.why);
  return full.models[part]!;
}

/** bf16-rounded inputs: log decays in [-1, -0.01], the rest in [-1, 1); optionally a random initial state (fp32). */
function inputs(model: Model, dims: Record<string, number>, B: number, T: number, seed: number, init: boolean): RunInputs {
  const r = rng(seed);
  const run: RunInputs = { dims, batch: B, time: T, inputs: {}, params: {}, initialState: {} };
  for (const t of model.tensors) {
    const n = sizeOf(t, dims);
    if (t.kind === "input") run.inputs[t.name] = Float64Array.from({ length: B * T * n }, () => bf16(t.name.startsWith("x_ld") ? -0.01 - 0.99 * (r() + 0.5) : 2 * r()));
    if (t.kind === "state" && init) run.initialState![t.name] = Float64Array.from({ length: B * n }, () => Math.fround(r()));
  }
  return run;
}

const CASES = [
  { T: 1, B: 1, K: 5, V: 7, init: false },
  { T: 77, B: 2, K: 5, V: 7, init: true },
  { T: 130, B: 1, K: 32, V: 24, init: true },
];

describe.skipIf(!gpp)("CUDA chunked mixed I/O (bf16 in, fp32 out) on the emulation vs the interpreter", () => {
  it.each([
    ["simple_gla", "coreT"],
    ["mamba2", "adjointT"],
  ] as const)("%s %s: fused, splitd, split3 and split (<= 1e-2; outputs fp32)", (name, part) => {
    const model = chainPart(name, part);
    const variants = ["chunked-fused-bf16-of32-k32-v32-r1", "chunked-splitd-bf16-of32-k32-v16-r1", "chunked-split3-bf16-of32-k32-v16-r1", "chunked-split-bf16-of32-k32-v16-r1"];
    const b = buildEmu(model, variants, [BF16_IN_F32_OUT]);
    for (const v of variants) {
      const f = b.forms.find((x) => x.variant === v)!;
      expect([f.io, f.out], v).toEqual(["bf16", "f32"]);
      for (const c of CASES) {
        const dims = { H: 2, K: c.K, V: c.V };
        const run = inputs(model, dims, c.B, c.T, 11 + c.T + c.K, c.init);
        const ref = interpret(model, run);
        const got = runEmu(b, v, run);
        const label = `${name} ${part} ${v} T=${c.T} B=${c.B} K=${c.K} V=${c.V}${c.init ? " init" : ""}`;
        for (const [k, x] of Object.entries(ref.outputs)) {
          const y = got.outputs[k];
          expect(y.every(Number.isFinite), `${label}: ${k} finite`).toBe(true);
          expect(relativeError(y, x), `${label}: ${k}`).toBeLessThan(1e-2);
          // fp32 outputs: most values are not representable in bf16 (a bf16 store would round every one)
          const exact = y.filter((u) => bf16(u) === u).length;
          expect(exact, `${label}: ${k} has ${exact} of ${y.length} values on the bf16 grid`).toBeLessThan(0.2 * y.length + 1);
        }
        for (const [k, x] of Object.entries(ref.finalState)) expect(relativeError(got.finalState[k], x), `${label}: final ${k}`).toBeLessThan(1e-2);
      }
    }
  }, 600_000);
});
