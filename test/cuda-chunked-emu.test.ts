/**
 * The CUDA chunked kernels, run on a CPU emulation of the CUDA subset they use (test/cuda-emu/emu.h:
 * fibers for threads, barriers, warp shuffles, ldmatrix and mma.sync m16n8k16 as the PTX ISA lays out
 * their fragments), against the float64 interpreter: every chunked model in fp32 (fused and split
 * and split3 kernels; T = 1, T not a multiple of the chunk, batch > 1, a non-zero initial state, odd K and V),
 * bf16 and f16 tensor-core paths on a subset, and the numerics stress (log decays of -20 per step,
 * saturated gates, beta in (0, 2)) through the per-key slow path. Needs g++; the GPU run of the same
 * checks is bench/cuda/chunked/check.ts.
 */
import { describe, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import type { Model } from "../compiler/ir/types.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-emu.test: g++ is not installed, so the emulated runs of the CUDA chunked kernels are skipped");
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];

const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number) => checkChunkedEmu(model, variants, cases, tol);

const ALL = ["linear_attention", "retnet", "simple_gla", "mamba2", "gla", "deltanet", "gated_deltanet", "rwkv7"];
const rtp = (name: string) => (name === "rwkv7" ? 2 : 1);

describe.skipIf(!gpp)("CUDA chunked kernels on the CPU emulation vs the interpreter", () => {
  it.each(ALL)("%s: fp32 fused, split and split3 (<= 1e-4)", (name) => {
    const r = rtp(name);
    check(load(name), [`chunked-fused-f32-k32-v16-r${r}`, `chunked-split-f32-k32-v16-r${r}`, `chunked-split3-f32-k32-v16-r${r}`], [
      { T: 1, B: 1, K: 5, V: 7 },
      { T: 77, B: 2, K: 5, V: 7, init: true },
    ], 1e-4);
  }, 300_000);

  it("mlstm (a stabiliser and a normaliser column): fp32 fused, split and split3; bf16 fused; stress with input gates up to +30 and log forget gates down to -20", () => {
    const m = load("mlstm");
    check(m, ["chunked-fused-f32-k32-v16-r1", "chunked-split-f32-k32-v16-r1", "chunked-split3-f32-k32-v16-r1"], [
      { T: 1, B: 1, K: 5, V: 7 },
      { T: 77, B: 2, K: 5, V: 7, init: true },
      { T: 200, B: 1, K: 5, V: 7, init: true, stress: true },
    ], 1e-4);
    check(m, ["chunked-fused-bf16-k32-v32-r1"], [{ T: 77, B: 2, K: 5, V: 7, init: true }], 1e-2);
  }, 600_000);

  it("gated_deltaproduct: fp32 with 1, 2 and 3 Householder steps per token (row slots 1, 2, 4)", () => {
    const m = load("gated_deltaproduct");
    check(m, ["chunked-fused-f32-k32-v16-r1"], [{ T: 40, B: 1, K: 5, V: 7, J: 1, init: true }], 1e-4);
    check(m, ["chunked-split-f32-k32-v16-r2"], [{ T: 40, B: 2, K: 5, V: 7, J: 2, init: true }], 1e-4);
    check(m, ["chunked-fused-f32-k32-v32-r4"], [{ T: 21, B: 1, K: 5, V: 7, J: 3, init: true }], 1e-4);
  }, 300_000);

  it.each(["gla", "gated_deltanet", "rwkv7"])("%s: bf16 tensor cores, fused, split and split3 (<= 1e-2)", (name) => {
    const r = rtp(name);
    check(load(name), [`chunked-fused-bf16-k32-v32-r${r}`, `chunked-split-bf16-k32-v16-r${r}`, `chunked-split3-bf16-k32-v16-r${r}`], [{ T: 70, B: 1, K: 32, V: 24, init: true }], 1e-2);
  }, 300_000);

  // K = V = 128: split3's readout in 64-value tiles over 128 values, three records in flight in its walk,
  // phase A's late alpha v (low rank) and Aq written as an operand, the per-key decay's block rows
  it.each(["deltanet", "gla"])("%s: bf16 at K = V = 128, split3 with 16- and 32-value walks (<= 1e-2)", (name) => {
    check(load(name), ["chunked-split3-bf16-k128-v16-r1", "chunked-split3-bf16-k128-v32-r1"], [{ T: 130, B: 1, K: 128, V: 128, init: true }], 1e-2);
  }, 600_000);

  // split3's state-only walk over 8 values (one 8-column fragment per warp tile), at a value size that is not a
  // multiple of 8 and with phase A's 384 threads; batch 2 and a ragged T
  it.each(["deltanet", "gated_deltanet"])("%s: bf16 at K = 128, V = 100, split3 with 8-value walks (<= 1e-2)", (name) => {
    check(load(name), ["chunked-split3-bf16-k128-v8-a384-r1"], [{ T: 130, B: 2, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);

  // 64-value walks (split and split3) and phase A with more warps (384 threads where two blocks fit an SM,
  // 512 and 768 where one does: the `-a<threads>` variants), at K = V = 64 with a ragged T
  it.each([
    ["deltanet", ["chunked-split-bf16-k64-v64-a384-r1", "chunked-split3-bf16-k64-v64-a384-r1"]],
    ["gla", ["chunked-split-bf16-k64-v32-a384-r1", "chunked-split3-bf16-k64-v64-r1"]],
    ["simple_gla", ["chunked-split-bf16-k64-v64-r1"]],
    // RWKV-7 at K = 64: phase A with T's operand over XS and P over the decays (two blocks per SM), 256 and 384 threads
    ["rwkv7", ["chunked-split-bf16-k64-v64-a384-r2", "chunked-split3-bf16-k64-v16-r2"]],
  ] as const)("%s: bf16 at K = V = 64, 64-value walks and phase A with more threads (<= 1e-2)", (name, variants) => {
    check(load(name), [...variants], [{ T: 70, B: 1, K: 64, V: 64, init: true }], 1e-2);
  }, 600_000);

  // phase A's inverse by warp products (`-iw`): the low-rank models at K = 64 (256 and 384 threads) and K = 128, a
  // ragged T, an initial state; and beta in (0, 2) with log decays to -20 (stress) at K = 32
  it.each([
    ["deltanet", 1, ["chunked-split-bf16-k64-v32-iw-r1", "chunked-split3-bf16-k64-v16-a384-iw-r1"]],
    ["gated_deltanet", 1, ["chunked-split-bf16-k64-v64-iw-r1"]],
    ["rwkv7", 2, ["chunked-split-bf16-k64-v32-iw-r2", "chunked-split-bf16-k64-v64-a384-iw-r2"]],
  ] as const)("%s: bf16 phase A with the inverse by warp products at K = 64 (<= 1e-2)", (name, _r, variants) => {
    check(load(name), [...variants], [{ T: 70, B: 2, K: 64, V: 64, init: true }, { T: 1, B: 1, K: 64, V: 64, init: true }], 1e-2);
  }, 600_000);
  it.each([
    ["deltanet", "chunked-split3-bf16-k128-v8-a384-iw-r1"],
    ["gated_deltanet", "chunked-split-bf16-k128-v64-a384-iw-r1"],
  ] as const)("%s: bf16 phase A with the inverse by warp products at K = 128 (<= 1e-2)", (name, variant) => {
    check(load(name), [variant], [{ T: 130, B: 1, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);
  it.each([
    ["gated_deltanet", "chunked-split-bf16-k32-v16-iw-r1"],
    ["rwkv7", "chunked-split3-bf16-k32-v16-iw-r2"],
  ] as const)("%s: the inverse by warp products under beta in (0, 2), log decays to -20 (bf16 <= 1e-2)", (name, variant) => {
    check(load(name), [variant], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-2);
  }, 300_000);

  // phase A's per-key decay with A and Aq's block pairs as warp tasks (`-mw`): GLA and RWKV-7 at K = 64 and 128 (ragged
  // T, T = 1, an initial state), and log decays to -20 at K = 32, where every diagonal block takes the pairwise path
  it.each([
    ["gla", ["chunked-split-bf16-k64-v32-mw-r1", "chunked-split3-bf16-k64-v16-a384-mw-r1"]],
    ["rwkv7", ["chunked-split-bf16-k64-v32-mw-r2", "chunked-split-bf16-k64-v64-a384-mw-r2"]],
  ] as const)("%s: bf16 phase A with the per-key block pairs by warp tasks at K = 64 (<= 1e-2)", (name, variants) => {
    check(load(name), [...variants], [{ T: 70, B: 2, K: 64, V: 64, init: true }, { T: 1, B: 1, K: 64, V: 64, init: true }], 1e-2);
  }, 600_000);
  it.each([
    ["gla", "chunked-split3-bf16-k128-v16-a512-mw-r1"],
    ["rwkv7", "chunked-split-bf16-k128-v64-a512-mw-r2"],
  ] as const)("%s: bf16 phase A with the per-key block pairs by warp tasks at K = 128 (<= 1e-2)", (name, variant) => {
    check(load(name), [variant], [{ T: 130, B: 1, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);
  it.each([
    ["gla", "chunked-split-bf16-k32-v16-mw-r1"],
    ["rwkv7", "chunked-split3-bf16-k32-v16-mw-r2"],
  ] as const)("%s: the per-key block pairs by warp tasks under log decays to -20 (bf16 <= 1e-2)", (name, variant) => {
    check(load(name), [variant], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-2);
  }, 300_000);

  it("mamba2: f16 tensor cores (<= 1e-2)", () => {
    check(load("mamba2"), ["chunked-fused-f16-k32-v32-r1"], [{ T: 70, B: 1, K: 16, V: 24, init: true }], 1e-2);
  }, 300_000);

  it.each(["gla", "rwkv7", "gated_deltanet", "mamba2"])("%s: log decays of -20 per step, saturated gates, beta in (0, 2) stay finite and exact in fp32", (name) => {
    const r = rtp(name);
    check(load(name), [`chunked-fused-f32-k32-v16-r${r}`, `chunked-split3-f32-k32-v16-r${r}`], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-4);
  }, 300_000);
});
