/**
 * split3's state walk by warps (`-ww`, chunked-core.ts seqc_chunk_walk_w: each warp owns 16 value columns of the
 * state over every key row; one warp or two per block) on the CPU emulation (test/cuda-emu/emu.h) against the float64
 * interpreter: with and without low rank, scalar, per-key and no decay, T = 1, T not a multiple of the chunk, batch > 1,
 * initial states, value sizes that are not a multiple of the block's tile, and beta in (0, 2) with log decays to -20.
 * The GPU run of the same variants is bench/cuda/chunked/check.ts; `nvcc -ptx` where nvcc is installed.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { Model } from "../compiler/ir/types.ts";
import { chunkedEligible, lowerChunked } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-ww.test: g++ is not installed, so the emulated runs are skipped");
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];
const bf = (x: Float64Array) => x.map((v) => fromBf16(toBf16(v)));

function check(model: Model, variants: string[], cases: { T: number; B: number; K: number; V: number; init?: boolean; stress?: boolean }[], tol: number) {
  const b = buildEmu(model, variants);
  for (const v of variants)
    for (const c of cases) {
      const dims = smallDims(model, { K: c.K, V: c.V, H: 2, P: c.V, N: c.K, J: 2 });
      const run = chunkInputs(model, { dims, batch: c.B, time: c.T, seed: 5 + c.T + c.K, initialState: c.init, stress: c.stress });
      for (const k of Object.keys(run.inputs)) run.inputs[k] = bf(run.inputs[k]);
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

describe.skipIf(!gpp)("split3's walk by warps (-ww) on the CPU emulation vs the interpreter", () => {
  // low rank (the delta rule, with and without a scalar decay) at K = 128 with the phase A auto takes there, V = 100
  // (the last 16- / 32-value tile partly past V), a ragged T and an initial state
  it.each([
    ["deltanet", ["chunked-split3-bf16-k128-v16-a384-iw-ww-r1", "chunked-split3-bf16-k128-v32-a384-iw-ww-r1"]],
    ["gated_deltanet", ["chunked-split3-bf16-k128-v16-a384-iw-ww-r1"]],
  ] as const)("%s: bf16 at K = 128, V = 100 (<= 1e-2)", (name, variants) => {
    check(load(name), [...variants], [{ T: 130, B: 2, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);
  // no low rank: scalar decay (Mamba-2 at K = 64, Simple GLA at K = 128), per-key decay (GLA), no decay; T = 1
  it.each([
    ["mamba2", ["chunked-split3-bf16-k64-v16-ww-r1", "chunked-split3-bf16-k64-v32-ww-r1"], 64, 64],
    ["simple_gla", ["chunked-split3-bf16-k128-v16-ww-r1"], 128, 72],
    ["gla", ["chunked-split3-bf16-k64-v16-mw-ww-r1"], 64, 40],
    ["linear_attention", ["chunked-split3-bf16-k32-v32-ww-r1"], 32, 24],
  ] as const)("%s: bf16, ragged T and T = 1 (<= 1e-2)", (name, variants, K, V) => {
    check(load(name), [...variants], [{ T: 77, B: 2, K, V, init: true }, { T: 1, B: 1, K, V, init: true }], 1e-2);
  }, 600_000);
  // beta in (0, 2), log decays to -20, saturated gates; RWKV-7 (per-key decay and low rank, two rows per token)
  it.each([
    ["gated_deltanet", "chunked-split3-bf16-k32-v16-iw-ww-r1"],
    ["rwkv7", "chunked-split3-bf16-k32-v32-ww-r2"],
    ["mamba2", "chunked-split3-bf16-k32-v16-ww-r1"],
  ] as const)("%s: under beta in (0, 2) and log decays to -20 (bf16 <= 1e-2)", (name, variant) => {
    check(load(name), [variant], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }, { T: 1, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-2);
  }, 300_000);
});

// measured slower than the walks auto picks (bench/RESULTS.md chunked run 14): lowered only where `only` names them
describe("split3's walk by warps is lowered only on request", () => {
  it("deltanet: no -ww variant and no walk-by-warps source in the default plan; both where `only` names one", () => {
    const m = load("deltanet");
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const all = lowerChunked(m, el);
    expect(all.forms.some((f) => f.variant.endsWith("-ww-r1"))).toBe(false);
    for (const mod of Object.values(all.modules)) expect(mod.source).not.toContain("seqc_chunk_walk_w");
    const one = lowerChunked(m, el, { only: (v) => v === "chunked-split3-bf16-k128-v16-a384-iw-ww-r1" });
    expect(one.forms.map((f) => f.variant)).toEqual(["chunked-split3-bf16-k128-v16-a384-iw-ww-r1"]);
    expect(one.forms[0].prefer).toBe(0);
    expect(one.modules.bf16.source).toContain("seqc_chunk_walk_w<");
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("split3's walk by warps compiles for sm_90 (nvcc -ptx)", () => {
  it.each(["deltanet", "mamba2", "rwkv7"])("%s: the -ww walks", (name) => {
    const m = load(name);
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const { forms, modules } = lowerChunked(m, el, { only: (v) => /^chunked-split3-bf16-k(64|128)-v(16|32)(-a\d+)?(-iw|-mw)?-ww-r[12]$/.test(v) });
    expect(forms.length).toBeGreaterThanOrEqual(4);
    const { ptx } = nvccPtx(modules.bf16.source, 90, nvcc, { lowPriority: true });
    for (const f of forms) for (const s of f.steps) if (s.kind === "launch") expect(ptx, s.entry).toMatch(new RegExp(`\\.entry ${s.entry}\\(`));
  }, 600_000);
});
