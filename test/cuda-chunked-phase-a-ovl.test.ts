/**
 * Phase A with the record's copies and alpha v's load beside the inverse (`-iw-io`; `-iw-ios` also stages M and U0 for
 * 16-byte stores; chunked-phase-a-ovl.ts; low rank
 * with a scalar or no decay, 2-byte operands; auto's -a512-iw-ios at K = 128 since H200 run 26, at K = 64 since runs 26b
 * and 27, the rest on request). On the CPU emulation (test/cuda-emu) against the
 * float64 interpreter: DeltaNet and Gated DeltaNet at K = 128 (split's 512-thread 64-value walk after -a512-iw-io,
 * split3's -wc walk after -a384-iw-io), K = 48 on 256 threads (two helper warps), Gated DeltaProduct at two rows per
 * token, T = 1, ragged T, batch 2, initial states, beta in (0, 2) with log decays to -20; bf16 (<= 1e-2). The outputs
 * and final states are bitwise those of the same walk after -iw (the record holds the same bytes). W~ without beta must
 * X~'s record copy taken from Q must fail. ptxas (sm_90): no spills, at most 64 registers at 512 threads.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import type { Model } from "../compiler/ir/types.ts";
import { BF16_IN_F32_OUT } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_PHASE_A_OVL_SOURCE } from "../compiler/backends/cuda/chunked-phase-a-ovl.ts";
import { CHUNK_CORE_SOURCE } from "../compiler/backends/cuda/chunked-core.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";
import { loadStdlib as load, lowered, variantUsage } from "./helpers/chunked-lowered.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-phase-a-ovl.test: g++ is not installed, so the emulated runs are skipped");
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 19, exactForms: true, patch });

describe.skipIf(!gpp)("phase A with the record's copies beside the inverse (-iw-io) on the CPU emulation", () => {
  it("deltanet: split -a512-iw-io-w512 and split3 -a384-iw-io-wc at K = 128, V = 100, T = 77 (batch 2) and T = 1, initial state (<= 1e-2)", () => {
    check(load("deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-io-w512-r1", "chunked-split3-bf16-k128-v16-a384-iw-io-wc-r1", "chunked-split3-bf16-k128-v16-a512-iw-ios-wc-r1"], [{ T: 77, B: 2, K: 128, V: 100, init: true }, { T: 1, B: 1, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);
  it("gated_deltanet: -a512-iw-io-w512 at K = 128, V = 72, T = 150 (ragged); -iw-io (256 threads) at K = 48, V = 64 (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-io-w512-r1"], [{ T: 150, B: 1, K: 128, V: 72, init: true }], 1e-2);
    check(load("gated_deltanet"), ["chunked-split-bf16-k64-v32-iw-io-r1", "chunked-split-bf16-k64-v32-iw-ios-r1"], [{ T: 130, B: 2, K: 48, V: 64, init: true }, { T: 1, B: 1, K: 48, V: 64, init: true }], 1e-2);
  }, 600_000);
  it("gated_deltanet and deltanet under beta in (0, 2) and log decays to -20; gated_deltaproduct at two rows per token (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1"], [{ T: 150, B: 1, K: 128, V: 72, stress: true, init: true }], 1e-2);
    check(load("deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-io-r1"], [{ T: 150, B: 1, K: 40, V: 40, stress: true, init: true }], 1e-2);
    check(load("gated_deltaproduct"), ["chunked-split-bf16-k64-v32-a512-iw-io-r2"], [{ T: 77, B: 2, K: 64, V: 40, J: 2, init: true }], 1e-2);
  }, 600_000);
  // K = 64 (auto's -a512-iw-ios there since H200 runs 26b and 27): split's 32-value walk and split3's 16-value walk, two rows
  // per token, T = 1, ragged T, batch 2; the outputs and final states bitwise those after -a512-iw
  it("deltanet / gated_deltaproduct: split and split3 after -a512-iw-ios at K = 64, V = 40, T = 77 (batch 2), T = 130 and T = 1, initial state (<= 1e-2)", () => {
    check(load("deltanet"), ["chunked-split-bf16-k64-v32-a512-iw-ios-r1", "chunked-split3-bf16-k64-v16-a512-iw-ios-r1"], [{ T: 77, B: 2, K: 64, V: 40, init: true }, { T: 1, B: 1, K: 64, V: 40, init: true }], 1e-2);
    check(load("gated_deltaproduct"), ["chunked-split-bf16-k64-v32-a512-iw-ios-r2"], [{ T: 130, B: 1, K: 64, V: 40, J: 2, init: true }, { T: 1, B: 1, K: 64, V: 40, J: 2, init: true }], 1e-2);
  }, 600_000);
  it("gated_deltanet at K = 64: -a512-iw-ios's outputs and final state bitwise those of -a512-iw (split v32, V = 64, T = 150, batch 2); under stress <= 1e-2", () => {
    const model = load("gated_deltanet");
    const [plain, ios] = ["chunked-split-bf16-k64-v32-a512-iw-r1", "chunked-split-bf16-k64-v32-a512-iw-ios-r1"];
    const b = buildEmu(model, [ios, plain]);
    const dims = smallDims(model, { K: 64, V: 64, H: 2, P: 64, N: 64, J: 2 });
    const run = chunkInputs(model, { dims, batch: 2, time: 150, seed: 29, initialState: true });
    for (const k of Object.keys(run.inputs)) run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
    const y = runEmu(b, plain, run);
    const x = runEmu(b, ios, run);
    for (const k of Object.keys(y.outputs)) expect(Array.from(x.outputs[k]), k).toEqual(Array.from(y.outputs[k]));
    for (const k of Object.keys(y.finalState)) expect(Array.from(x.finalState[k]), k).toEqual(Array.from(y.finalState[k]));
    check(model, [ios], [{ T: 150, B: 1, K: 40, V: 40, stress: true, init: true }, { T: 1, B: 1, K: 40, V: 40, stress: true, init: true }], 1e-2);
  }, 600_000);
  it.each(["deltanet", "gated_deltanet"])("%s: -io's and -ios's outputs and final state bitwise those of -a512-iw-w512 (K = 128, V = 100, T = 150, batch 2)", (name) => {
    const model = load(name);
    const plain = "chunked-split-bf16-k128-v64-a512-iw-w512-r1";
    const ios = ["chunked-split-bf16-k128-v64-a512-iw-io-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1"];
    const b = buildEmu(model, [...ios, plain]);
    const dims = smallDims(model, { K: 128, V: 100, H: 2, P: 100, N: 128, J: 2 });
    const run = chunkInputs(model, { dims, batch: 2, time: 150, seed: 23, initialState: true });
    for (const k of Object.keys(run.inputs)) run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
    const y = runEmu(b, plain, run);
    for (const v of ios) {
      const x = runEmu(b, v, run);
      for (const k of Object.keys(y.outputs)) expect(Array.from(x.outputs[k]), `${v} ${k}`).toEqual(Array.from(y.outputs[k]));
      for (const k of Object.keys(y.finalState)) expect(Array.from(x.finalState[k]), `${v} ${k}`).toEqual(Array.from(y.finalState[k]));
    }
  }, 600_000);
  // the check can fail: the record's X~ copied from Q's rows
  it("a deliberately broken -io phase A (X~'s record copy from Q) fails the same check", () => {
    const from = "} else *reinterpret_cast<uint4*>(r + Rec::XO + f * KP + i0) = *reinterpret_cast<const uint4*>(s.X + f * LDK + i0);";
    const patch = (src: string) => src.replace(from, from.replace("s.X +", "s.Q +"));
    expect(patch(CHUNK_PHASE_A_OVL_SOURCE)).not.toBe(CHUNK_PHASE_A_OVL_SOURCE);
    expect(CHUNK_CORE_SOURCE.includes(from)).toBe(false);
    expect(() => check(load("deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-io-w512-r1"], [{ T: 77, B: 1, K: 128, V: 100, init: true }], 1e-2, patch)).toThrow();
  }, 600_000);
});

describe("-iw-io in the plans", () => {
  it("default plans hold only auto's -a512-iw-ios at K = 128 (2-byte I/O of one type; H200 run 26) and K = 64 (runs 26b and 27), the rest on request; under `only` alpha v lives in X's place and K = 128 fits two blocks per SM", () => {
    for (const name of ["deltanet", "gated_deltanet", "gated_deltaproduct"]) {
      const d = lowered(name);
      const io = d.forms.filter((f) => f.variant.includes("-io"));
      for (const K of [64, 128]) expect(io.filter((f) => f.variant.includes(`-k${K}-`)).length, `${name} K = ${K}`).toBeGreaterThan(0);
      // (the -st twins: split's walk also storing the chunk states, chunked-walk-states.ts)
      for (const f of io) expect(f.variant, name).toMatch(/^chunked-split3?-b?f16-k(64|128)-v\d+-a512-iw-ios(-w512|-wc|-nb-wc-w512)?(-st)?-r\d$/);
      expect(d.modules.f32.source.includes("seqc_chunk_phase_a_o"), name).toBe(false);
      expect(lowered(name, { ios: [BF16_IN_F32_OUT] }).forms.some((f) => f.variant.includes("-io")), name).toBe(false);
    }
    for (const name of ["rwkv7", "simple_gla", "gla", "mamba2"]) {
      const d = lowered(name);
      expect(d.forms.some((f) => f.variant.includes("-io")), name).toBe(false);
      for (const m of Object.values(d.modules)) expect(m.source.includes("seqc_chunk_phase_a_o"), name).toBe(false);
    }
    // per-key decay (RWKV-7), no low rank (Simple GLA), fp32 operands: none
    for (const name of ["rwkv7", "simple_gla"]) expect(lowered(name, { only: (v) => v.includes("-io") }).forms, name).toEqual([]);
    expect(lowered("deltanet", { only: (v) => v.includes("-io") && v.includes("-f32-") }).forms).toEqual([]);
    const v = "chunked-split-bf16-k128-v64-a512-iw-io-w512-r1";
    const one = lowered("deltanet", { only: (x) => x === v });
    expect(one.forms.map((f) => f.variant)).toEqual([v]);
    const a = one.forms[0].steps[0] as { threads: number; sharedBytes: number; entry: string };
    expect(a.threads).toBe(512);
    expect(a.entry).toMatch(/_iw_io$/);
    expect(2 * (a.sharedBytes + 1024)).toBeLessThanOrEqual(228 * 1024);
    expect(one.modules.bf16.source).toContain("seqc_chunk_phase_a_o<");
    expect(one.modules.bf16.source).toMatch(/static constexpr int OVL = 1;[\s\S]*O_X = (\d+),[\s\S]*O_V = \1,/);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-iw-io phase A for sm_90 (ptxas)", () => {
  it.each([
    ["deltanet", "chunked-split-bf16-k128-v64-a512-iw-io-w512-r1", 64],
    ["gated_deltanet", "chunked-split-bf16-k128-v64-a512-iw-io-w512-r1", 64],
    ["gated_deltanet", "chunked-split3-bf16-k128-v16-a384-iw-io-wc-r1", 85],
    ["deltanet", "chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1", 64],
    ["gated_deltanet", "chunked-split-bf16-k64-v32-a512-iw-ios-r1", 64],
  ] as const)("%s %s: no spills, <= %d registers", (name, variant, regs) => {
    const u = variantUsage(nvcc!, name, variant);
    expect(u.spillStores + u.spillLoads, u.entry).toBe(0);
    expect(u.registers, u.entry).toBeLessThanOrEqual(regs);
  }, 300_000);
});
