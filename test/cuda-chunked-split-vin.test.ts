/**
 * split without alpha v in the record (`-vi`, `-vi-w512`, `-vib-w512`; chunked-split-vin.ts; auto's 64-value -vi-w512 at K = 128
 * without low rank since H200 run 29, the rest on request): phase A loads no v and
 * writes Q~, X~, Aq, exp(G_n); the walk copies v's value tile from the inputs. On the CPU emulation (test/cuda-emu)
 * against the float64 interpreter: Simple GLA at K = 128 (V = 96: every row copied; V = 100: V % 8 != 0, every row
 * through the loader, the last tile partly past V), T = 1, ragged T, batch 2, initial and final states; log decays to
 * -20 (stress); RetNet (fixed decay), linear attention (no decay), Mamba-2 (its key and value dims P, N); bf16 / f16
 * (<= 1e-2). A copied row's alpha (scaleV, 1 in every stdlib model) is checked by patching it to 0.5 / 1.5 in both
 * the core's split walk (which scales V in phase A) and the -vi forms: their outputs agree, and differ from the
 * unpatched ones. A walk that copies v's tile from the next chunk and a phase A that drops alpha from Aq must fail.
 * ptxas (sm_90): no spills; phase A at most 64 registers (four blocks of 256 threads per SM).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import type { Model } from "../compiler/ir/types.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_SPLIT_VIN_SOURCE } from "../compiler/backends/cuda/chunked-split-vin.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { loadStdlib as load, lowered } from "./helpers/chunked-lowered.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-split-vin.test: g++ is not installed, so the emulated runs are skipped");
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 23, exactForms: true, patch });
/** An edit of the -vi source only (the core has lines alike). */
const patchVin = (from: string, to: string) => (src: string) => {
  const head = "// ==== seqc chunked split without alpha v in the record (VIN) ====";
  const at = src.indexOf(head);
  return at < 0 ? src : src.slice(0, at) + src.slice(at).replace(from, to);
};

describe.skipIf(!gpp)("split without alpha v in the record (-vi) on the CPU emulation vs the interpreter", () => {
  it("simple_gla: K = 128, -vi-w512 / -vib-w512 (64 values), -vi (32 values), V = 96 and V = 100, T = 77 (batch 2) and T = 1, initial state (<= 1e-2)", () => {
    const vs = ["chunked-split-bf16-k128-v64-vi-w512-r1", "chunked-split-bf16-k128-v64-vib-w512-r1", "chunked-split-bf16-k128-v32-vi-r1"];
    check(load("simple_gla"), vs, [{ T: 77, B: 2, K: 128, V: 96, init: true }, { T: 1, B: 1, K: 128, V: 100, init: true }, { T: 70, B: 1, K: 128, V: 100, init: true }], 1e-2);
  }, 900_000);
  it("simple_gla under log decays to -20, K = 40 (-vi-w512, -vib-w512; bf16 and f16 <= 1e-2)", () => {
    const cases: ChunkEmuCase[] = [{ T: 150, B: 1, K: 40, V: 40, stress: true, init: true }, { T: 1, B: 1, K: 40, V: 40, stress: true, init: true }];
    check(load("simple_gla"), ["chunked-split-bf16-k64-v64-vi-w512-r1", "chunked-split-bf16-k64-v32-vib-w512-r1"], cases, 1e-2);
    check(load("simple_gla"), ["chunked-split-f16-k64-v64-vi-w512-r1", "chunked-split-f16-k64-v64-vib-w512-r1"], cases, 1e-2);
  }, 900_000);
  it("retnet, linear_attention (no decay) and mamba2 (-vib-w512, -vi), ragged T (<= 1e-2)", () => {
    check(load("retnet"), ["chunked-split-bf16-k64-v64-vib-w512-r1"], [{ T: 130, B: 2, K: 64, V: 48, init: true }], 1e-2);
    check(load("linear_attention"), ["chunked-split-bf16-k64-v32-vi-r1"], [{ T: 77, B: 1, K: 48, V: 64, init: true }], 1e-2);
    check(load("mamba2"), ["chunked-split-bf16-k128-v64-vib-w512-r1"], [{ T: 90, B: 1, K: 128, V: 100, init: true }], 1e-2);
  }, 900_000);
  // a copied row's alpha != 1 (no stdlib model has one without low rank: scalars go to the key rows): the core's split
  // (V scaled in phase A) and the -vi forms (X~'s rows and Aq's columns scaled) must agree under the same patched scaleV
  it("alpha patched to 0.5 / 1.5 per step: -vi and -vib agree with the core's split (<= 1e-2) and differ from alpha 1", () => {
    const m = load("simple_gla");
    const from = /(__device__ float scaleV\(u32 b, u32 t, u32 r, u32 h\) const \{[\s\S]*?case 0: \{\s*\n\s*)return 1\.0f;/;
    const patch = (src: string) => src.replace(from, "$1return (t & 1u) ? 1.5f : 0.5f;");
    const vs = ["chunked-split-bf16-k64-v64-w512-r1", "chunked-split-bf16-k64-v64-vi-w512-r1", "chunked-split-bf16-k64-v64-vib-w512-r1"];
    const probe = lowered("simple_gla", { only: (v) => v === vs[1], ios: [{ io: "bf16" }] });
    expect(patch(probe.modules.bf16.source)).not.toBe(probe.modules.bf16.source);
    const dims = smallDims(m, { K: 64, V: 64, H: 2 });
    const run = chunkInputs(m, { dims, batch: 2, time: 77, seed: 5, initialState: true });
    for (const k of Object.keys(run.inputs)) run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
    const patched = buildEmu(m, vs, [{ io: "bf16" }], patch);
    const plain = buildEmu(m, [vs[1]], [{ io: "bf16" }]);
    const ref = runEmu(patched, vs[0], run);
    const one = runEmu(plain, vs[1], run);
    for (const v of vs.slice(1)) {
      const got = runEmu(patched, v, run);
      for (const [k, x] of Object.entries(ref.outputs)) {
        expect(relativeError(got.outputs[k], x), `${v}: ${k}`).toBeLessThan(1e-2);
        expect(relativeError(one.outputs[k], x), `${v}: ${k} (alpha 1)`).toBeGreaterThan(5e-2);
      }
      for (const [k, x] of Object.entries(ref.finalState)) expect(relativeError(got.finalState[k], x), `${v}: final ${k}`).toBeLessThan(1e-2);
    }
    // the same with Aq's columns left unscaled must disagree
    const broken = buildEmu(m, [vs[1]], [{ io: "bf16" }], (src) => patchVin("o[k] *= sv[n0 + k];", "o[k] *= 1.f;")(patch(src)));
    const bad = runEmu(broken, vs[1], run);
    expect(relativeError(bad.outputs.o, ref.outputs.o)).toBeGreaterThan(1e-2);
  }, 900_000);
  // the check can fail: v's tile copied from the next step's row
  it("a deliberately broken -vi walk (v's rows one step late) fails the same check", () => {
    const patch = patchVin("seqc_cp16(u + f * Cfg::LDV + jj, src + j0 + jj);", "seqc_cp16(u + f * Cfg::LDV + jj, src + j0 + jj + (t0 + (u32)f + 1u < T ? rows.valueDim() * 2u : 0u));");
    expect(patch(CHUNK_SPLIT_VIN_SOURCE)).not.toBe(CHUNK_SPLIT_VIN_SOURCE);
    expect(() => check(load("simple_gla"), ["chunked-split-bf16-k64-v64-vi-w512-r1"], [{ T: 77, B: 1, K: 64, V: 64, init: true }], 1e-2, patch)).toThrow();
  }, 900_000);
});

describe("-vi in the plans", () => {
  it("auto's 64-value -vi-w512 at K = 128 where w512Plain holds (H200 run 29), in the default plans of the four models without low rank and a scalar or no decay, bf16 and f16; the rest on request", () => {
    for (const name of ["simple_gla", "retnet", "linear_attention", "mamba2"]) {
      const all = lowered(name);
      expect(all.forms.filter((f) => f.variant.includes("-vi")).map((f) => f.variant).sort(), name).toEqual(["chunked-split-bf16-k128-v64-vi-w512-r1", "chunked-split-f16-k128-v64-vi-w512-r1"]);
      for (const f of all.forms.filter((x) => x.variant.includes("-vi"))) expect(f.prefer, f.variant).not.toBe(0);
      expect(all.modules.f32.source).not.toContain("seqc_chunk_walk_v");
    }
    for (const name of ["deltanet", "gated_deltanet", "gla", "rwkv7", "mlstm"]) expect(lowered(name).forms.some((f) => f.variant.includes("-vi")), name).toBe(false);
  });
  it("on request: no low rank, a scalar or no decay, no stabiliser or value columns, 2-byte operands, K >= 64; phase A without V (four blocks per SM at K = 128)", () => {
    const want = ["chunked-split-bf16-k128-v64-vi-r1", "chunked-split-bf16-k128-v64-vi-w512-r1", "chunked-split-bf16-k128-v64-vib-w512-r1", "chunked-split-bf16-k128-v32-vi-r1", "chunked-split-bf16-k128-v32-vi-w512-r1", "chunked-split-bf16-k128-v32-vib-w512-r1"];
    const one = lowered("simple_gla", { only: (v) => /-vib?(-w512)?-r1$/.test(v) && v.includes("-bf16-k128-") });
    expect(one.forms.map((f) => f.variant).sort()).toEqual([...want].sort());
    for (const f of one.forms) {
      const steps = f.steps as { entry: string; threads: number; sharedBytes: number }[];
      expect(steps[0].entry).toMatch(/_phaseA_bf16_k128_p128_r1_vi$/);
      expect(steps[0].sharedBytes).toBeLessThan(228 * 1024 / 4 - 1024);
      expect(steps[1].threads).toBe(f.variant.includes("-w512") ? 512 : 256);
      // the record: Q~, X~ (128 x 64 each), Aq (64 x 64) in bf16, exp(G_n) in fp32
      expect(f.workspaces[0].words).toContain((2 * 64 * 128 * 2 + 64 * 64 * 2 + 128 * 4) / 4);
    }
    expect(one.modules.bf16.source).toContain("seqc_chunk_walk_v<");
    expect(one.modules.bf16.source).toContain("__launch_bounds__(256, 4) seqc_SimpleGla_chunk_phaseA_bf16_k128_p128_r1_vi(");
    for (const name of ["deltanet", "gla", "rwkv7", "mlstm"]) expect(lowered(name, { only: (v) => v.includes("-vi") }).forms, name).toEqual([]);
    expect(lowered("simple_gla", { only: (v) => v.includes("-vi") && v.includes("-f32-") }).forms).toEqual([]);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-vi for sm_90 (ptxas)", () => {
  it.each([
    ["simple_gla", "chunked-split-bf16-k128-v64-vi-w512-r1"],
    ["simple_gla", "chunked-split-bf16-k128-v64-vib-w512-r1"],
    ["mamba2", "chunked-split-f16-k128-v32-vi-r1"],
  ] as const)("%s %s: no spills, phase A <= 64 registers", (name, variant) => {
    const io = /-(bf16|f16)-/.exec(variant)![1] as "bf16" | "f16";
    const low = lowered(name, { only: (x) => x === variant, ios: [{ io }] });
    const entries = (low.forms[0].steps as { entry: string }[]).map((s) => s.entry);
    const u = ptxasUsage(nvcc!, low.modules[io].source, entries);
    for (const e of entries) expect(u.get(e)!.spillStores + u.get(e)!.spillLoads, e).toBe(0);
    expect(u.get(entries[0])!.registers, entries[0]).toBeLessThanOrEqual(64);
  }, 300_000);
});
