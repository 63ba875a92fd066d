/**
 * Phase A software-pipelined (`-ap<M>`, chunked-phase-a-pipe.ts; low rank with a scalar or no decay, 2-byte operands,
 * K = 64; on request only): a block takes up to M (batch, head, chunk) items and copies the next item's rows into a
 * second [W; Q; X] buffer while it computes the current one. On the CPU emulation (test/cuda-emu) against the float64
 * interpreter: DeltaNet, Gated DeltaNet and Gated DeltaProduct (two and four rows per token), split and split3 walks, blocks of 2, 4, 8 and 16 items (items crossing heads
 * and batch rows, odd counts a block), T = 1, ragged T, K = 48 (rows padded in the staged buffer), initial states,
 * beta in (0, 2) with log decays to -20; bf16 (<= 1e-2). Issuing the next item into the current buffer must fail.
 * `nvcc -ptx` for sm_90 where nvcc is installed.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import type { Model } from "../compiler/ir/types.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_PHASE_A_PIPE_SOURCE } from "../compiler/backends/cuda/chunked-phase-a-pipe.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { loadStdlib as load, lowered } from "./helpers/chunked-lowered.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-phase-a-pipe.test: g++ is not installed, so the emulated runs are skipped");
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 17, exactForms: true, patch });

describe.skipIf(!gpp)("pipelined phase A (-ap<M>) on the CPU emulation vs the interpreter", () => {
  it("deltanet: split -a512-iw-ap4 and split3 -a512-iw-ap2, V = 40, T = 77 (batch 2), T = 130 and T = 1, initial state (<= 1e-2)", () => {
    check(load("deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-ap4-r1", "chunked-split3-bf16-k64-v16-a512-iw-ap2-r1"], [{ T: 77, B: 2, K: 64, V: 40, init: true }, { T: 130, B: 2, K: 64, V: 40, init: true }, { T: 1, B: 1, K: 64, V: 40, init: true }], 1e-2);
  }, 600_000);
  it("gated_deltanet: -a512-iw-ap8 and -iw-ap16 (256 threads), K = 48, V = 64, T = 130 (batch 2) and T = 1 (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-ap8-r1", "chunked-split-bf16-k64-v64-iw-ap16-r1"], [{ T: 130, B: 2, K: 48, V: 64, init: true }, { T: 1, B: 1, K: 48, V: 64, init: true }], 1e-2);
  }, 600_000);
  it("gated_deltanet and deltanet: under beta in (0, 2) and log decays to -20 (bf16 <= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-ap4-r1"], [{ T: 150, B: 1, K: 40, V: 40, stress: true, init: true }], 1e-2);
    check(load("deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-ap4-r1"], [{ T: 150, B: 1, K: 40, V: 40, stress: true, init: true }], 1e-2);
  }, 600_000);
  it("gated_deltaproduct: two rows per token (-a512-iw-ap4-r2, J = 2) and four (-iw-ap2-r4, J = 3), T = 77 (batch 2) and T = 1 (<= 1e-2)", () => {
    check(load("gated_deltaproduct"), ["chunked-split-bf16-k64-v32-a512-iw-ap4-r2"], [{ T: 77, B: 2, K: 64, V: 40, J: 2, init: true }, { T: 1, B: 1, K: 64, V: 40, J: 2, init: true }], 1e-2);
    check(load("gated_deltaproduct"), ["chunked-split-bf16-k64-v32-iw-ap2-r4"], [{ T: 50, B: 2, K: 48, V: 40, J: 3, init: true }], 1e-2);
  }, 600_000);
  // the check can fail: the next item's copies issued into the buffer the current item is computed from
  it("a deliberately broken pipeline (next item's rows into the current buffer) fails the same check", () => {
    const from = "T_* const wn = (k & 1u) ? w0 : w1;";
    const patch = (src: string) => src.replace(from, "T_* const wn = (k & 1u) ? w1 : w0;");
    expect(patch(CHUNK_PHASE_A_PIPE_SOURCE)).not.toBe(CHUNK_PHASE_A_PIPE_SOURCE);
    expect(() => check(load("deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-ap4-r1"], [{ T: 130, B: 2, K: 64, V: 40, init: true }], 1e-2, patch)).toThrow();
  }, 600_000);
});

describe("-ap<M> in the plans", () => {
  it("on request only: default plans hold none and their modules no pipelined kernel; under `only` the grid is ceil(items / M) and the phase A fits two blocks per SM", () => {
    for (const name of ["deltanet", "gated_deltanet", "rwkv7", "simple_gla"]) {
      const d = lowered(name);
      expect(d.forms.some((f) => /-ap\d+-/.test(f.variant)), name).toBe(false);
      for (const m of Object.values(d.modules)) expect(m.source.includes("seqc_chunk_phase_a_p"), name).toBe(false);
    }
    // per-key decay (RWKV-7), no low rank (Simple GLA), fp32 operands and K = 128: no pipelined variants
    for (const name of ["rwkv7", "simple_gla", "deltanet"]) expect(lowered(name, { only: (v) => /-ap\d+-/.test(v) && !(name === "deltanet" && /-bf16-k64-|-f16-k64-/.test(v)) }).forms, name).toEqual([]);
    const v = "chunked-split-bf16-k64-v32-a512-iw-ap4-r1";
    const one = lowered("deltanet", { only: (x) => x === v });
    expect(one.forms.map((f) => f.variant)).toEqual([v]);
    const a = one.forms[0].steps[0] as { grid: unknown; threads: number; sharedBytes: number; entry: string };
    expect(a.grid).toEqual(["ceilDiv", ["*", "B", "H", ["ceilDiv", "T", 64]], 4]);
    expect(a.threads).toBe(512);
    expect(a.entry).toMatch(/_ap4$/);
    expect(2 * (a.sharedBytes + 1024)).toBeLessThanOrEqual(228 * 1024);
    expect(one.modules.bf16.source).toContain("seqc_chunk_phase_a_p<");
    expect(one.modules.bf16.source).toContain("__launch_bounds__(512, 2)");
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-ap<M> phase A compiles for sm_90 (nvcc -ptx)", () => {
  it.each([
    ["deltanet", "chunked-split-bf16-k64-v32-a512-iw-ap4-r1"],
    ["gated_deltanet", "chunked-split-bf16-k64-v32-a512-iw-ap16-r1"],
  ] as const)("%s %s", (name, variant) => {
    const low = lowered(name, { only: (v) => v === variant });
    const { ptx } = nvccPtx(low.modules.bf16.source, 90, nvcc, { lowPriority: true });
    for (const st of low.forms[0].steps) expect(ptx, (st as { entry: string }).entry).toMatch(new RegExp(`\\.entry ${(st as { entry: string }).entry}\\(`));
  }, 300_000);
});
