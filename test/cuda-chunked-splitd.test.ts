/**
 * splitd, the split variant whose phase A stores no Q~ / X~ (scalar or no decay): the walk copies q and the key
 * rows (and, without low rank, alpha v) from the inputs and applies their per-row factors (compiler/backends/cuda/
 * chunked-core.ts, SeqcRecD). Run on the CPU emulation (test/cuda-emu) against the float64 interpreter: fp32 through
 * the loader path (K = 5, V = 7: rows not 16-byte copyable), bf16 at K = 128 through the copies, value sizes that
 * are not a multiple of 8 (the v tile through the loader), T = 1, T not a multiple of the chunk, batch 2, initial
 * states, two row slots per token (Gated DeltaProduct) and the numerics stress; and `nvcc -ptx` of its kernels.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import type { Model } from "../compiler/ir/types.ts";
import { chunkedEligible, lowerChunked, recordBytes, recordBytesD } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];

const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number) => checkChunkedEmu(model, variants, cases, tol, { seed: 5, exactForms: true });

describe.skipIf(!gpp)("CUDA splitd (raw q and key rows in the walk) on the CPU emulation vs the interpreter", () => {
  it.each(["linear_attention", "retnet", "simple_gla", "mamba2", "deltanet", "gated_deltanet"])("%s: fp32 (<= 1e-4), T = 1 and T = 77 with an initial state", (name) => {
    check(load(name), ["chunked-splitd-f32-k32-v16-r1"], [
      { T: 1, B: 1, K: 5, V: 7 },
      { T: 77, B: 2, K: 5, V: 7, init: true },
    ], 1e-4);
  }, 300_000);

  it("mlstm (a stabiliser and a normaliser column: v's tile through the loader): fp32 with the stress (<= 1e-4), bf16 (<= 1e-2)", () => {
    const m = load("mlstm");
    check(m, ["chunked-splitd-f32-k32-v16-r1"], [
      { T: 1, B: 1, K: 5, V: 7 },
      { T: 77, B: 2, K: 5, V: 7, init: true },
      { T: 200, B: 1, K: 5, V: 7, init: true, stress: true },
    ], 1e-4);
    check(m, ["chunked-splitd-bf16-k32-v32-r1"], [{ T: 77, B: 2, K: 5, V: 7, init: true }], 1e-2);
  }, 600_000);

  it("gated_deltaproduct: fp32 with two row slots per token (<= 1e-4)", () => {
    check(load("gated_deltaproduct"), ["chunked-splitd-f32-k32-v16-r2"], [{ T: 40, B: 2, K: 5, V: 7, J: 2, init: true }], 1e-4);
  }, 300_000);

  it.each(["gated_deltanet", "mamba2"])("%s: log decays of -20 per step, saturated gates, beta in (0, 2): finite and within 1e-4 in fp32", (name) => {
    check(load(name), ["chunked-splitd-f32-k32-v16-r1"], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-4);
  }, 300_000);

  // the benchmark's configurations: K = 128 (rows copied 16 bytes at a time), 64-value walks, phase A with 384
  // threads for the low-rank model; V = 128 (alpha v copied) and V = 100 (alpha v through the loader, a partial tile)
  it("simple_gla: bf16 at K = 128, 64-value walks (<= 1e-2)", () => {
    check(load("simple_gla"), ["chunked-splitd-bf16-k128-v64-r1"], [
      { T: 130, B: 2, K: 128, V: 128, init: true },
      { T: 1, B: 1, K: 128, V: 100 },
    ], 1e-2);
  }, 600_000);
  it("gated_deltanet: bf16 at K = 128, V = 100, 64-value walks, 384-thread phase A (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-splitd-bf16-k128-v64-a384-r1"], [{ T: 130, B: 2, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);
  it("mamba2: bf16 at K = V = 64 (v scaled by dt per row), 32-value walks (<= 1e-2)", () => {
    check(load("mamba2"), ["chunked-splitd-bf16-k64-v32-r1"], [{ T: 70, B: 1, K: 64, V: 64, init: true }], 1e-2);
  }, 600_000);
});

describe("splitd in the plan", () => {
  it("is planned for scalar and no decay only, with a smaller record than split's", () => {
    for (const [name, has] of [["simple_gla", true], ["deltanet", true], ["gated_deltanet", true], ["mamba2", true], ["gla", false], ["rwkv7", false]] as const) {
      const m = load(name);
      const el = chunkedEligible(m);
      if (!el.ok) throw new Error(el.why);
      const { forms } = lowerChunked(m, el, { only: (v) => v.includes("-bf16-k128-v64-") });
      expect(forms.some((f) => f.variant.startsWith("chunked-splitd-")), name).toBe(has);
    }
    // K = V = 128 in bf16: without low rank Aq and the factors only (9.0 KiB instead of 56.5), with low rank M and U0 too
    const c = { kind: "phaseA", dtype: "bf16", KP: 128, BV: 32, VP: 128, RTP: 1, decay: 1 } as const;
    expect(recordBytesD({ ...c, lr: false })).toBe(64 * 64 * 2 + (128 + 128) * 4);
    expect(recordBytes({ ...c, lr: false })).toBe((3 * 64 * 128 + 64 * 64) * 2 + 128 * 4);
    expect(recordBytes({ ...c, lr: true }) - recordBytesD({ ...c, lr: true })).toBe(2 * 64 * 128 * 2 - 128 * 4);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("nvcc -ptx of the splitd kernels (sm_90)", () => {
  it.each([
    // (the tags end at the row count: -a384-iw-r1 is the same variant with phase A inverting by warp products)
    ["gated_deltanet", "bf16", "-k128-v64-a384-r"],
    ["simple_gla", "bf16", "-k128-v64-r"],
    ["mamba2", "f32", "-k32-v16-r"],
  ])("%s %s%s", (name, io, tag) => {
    const m = load(name);
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const { forms, modules } = lowerChunked(m, el, { only: (v) => v.startsWith("chunked-splitd-") && v.includes(`-${io}${tag}`) });
    expect(forms.length).toBe(1);
    const { ptx } = nvccPtx(modules[io].source, 90, nvcc, { lowPriority: true });
    for (const e of forms[0].steps.map((s) => (s as { entry: string }).entry)) expect(ptx, e).toMatch(new RegExp(`\\.entry ${e}\\(`));
  }, 300_000);
});
