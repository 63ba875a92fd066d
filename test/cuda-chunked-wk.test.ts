/**
 * split3's low-rank walk with Z = U0 + M S0 spread over the block's warps (chunked-core.ts CHUNK_WALK_K_SOURCE,
 * seqc_chunk_walk_k): `-wk` (split-K over every warp, partials through shared memory) and `-wc` (the next record's
 * copies on the warps without a Z tile). On the CPU emulation (test/cuda-emu) against the float64 interpreter: the delta
 * rule with and without a scalar decay at K = 128 (8- and 16-value walks, V = 100 so the last tile is partly past V),
 * RWKV-7 (per-key decay, two rows per token), T = 1, T not a multiple of the chunk, batch 2, initial and final states,
 * beta in (0, 2) with log decays to -20; bf16 (<= 1e-2). Broken copies (the partial sum left out, a warp's copies left
 * out) must fail. Lowered only where `only` names them; `nvcc -ptx` for sm_90 where nvcc is installed.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import type { Model } from "../compiler/ir/types.ts";
import { chunkedEligible, lowerChunked } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_WALK_K_SOURCE } from "../compiler/backends/cuda/chunked-core.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-wk.test: g++ is not installed, so the emulated runs are skipped");
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 11, exactForms: true, patch });

describe.skipIf(!gpp)("split3's walk with the low-rank product over every warp (-wk, -wc) on the CPU emulation vs the interpreter", () => {
  // the delta rule at K = 128 with the phase A auto takes there; 8-value walks are auto's walk at few heads
  it("deltanet: bf16 at K = 128, V = 100, T = 130 and T = 1, initial state (<= 1e-2)", () => {
    check(
      load("deltanet"),
      ["chunked-split3-bf16-k128-v8-a384-iw-wk-r1", "chunked-split3-bf16-k128-v8-a384-iw-wc-r1", "chunked-split3-bf16-k128-v16-a384-iw-wk-r1", "chunked-split3-bf16-k128-v8-a384-iw-wk-w512-r1"],
      [{ T: 130, B: 2, K: 128, V: 100, init: true }, { T: 1, B: 1, K: 128, V: 100, init: true }],
      1e-2,
    );
  }, 600_000);
  it("gated_deltanet: bf16 at K = 128, V = 72, ragged T (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split3-bf16-k128-v8-a384-iw-wk-r1", "chunked-split3-bf16-k128-v16-a384-iw-wc-r1"], [{ T: 70, B: 2, K: 128, V: 72, init: true }], 1e-2);
  }, 600_000);
  // split's walk on 16 warps (-w512): no low rank (Simple GLA, scalar decay; GLA, per-key) and low rank (DeltaNet)
  it.each([
    ["simple_gla", ["chunked-split-bf16-k128-v64-w512-r1", "chunked-split-bf16-k128-v32-w512-r1"], 128, 72],
    ["gla", ["chunked-split-bf16-k64-v32-mw-w512-r1"], 64, 40],
    ["deltanet", ["chunked-split-bf16-k128-v64-a384-iw-w512-r1"], 128, 100],
  ] as const)("%s: split's walk on 512 threads, ragged T and T = 1 (bf16 <= 1e-2)", (name, variants, K, V) => {
    check(load(name), [...variants], [{ T: 77, B: 2, K, V, init: true }, { T: 1, B: 1, K, V, init: true }], 1e-2);
  }, 600_000);
  // beta in (0, 2), log decays to -20, saturated gates; RWKV-7 (per-key decay and low rank, two rows per token, 32-value
  // walk: 4 Z tiles, two k-slices of one k-step each at K = 32)
  it.each([
    ["gated_deltanet", ["chunked-split3-bf16-k32-v16-iw-wk-r1", "chunked-split3-bf16-k32-v16-iw-wc-r1"]],
    ["rwkv7", ["chunked-split3-bf16-k32-v32-wk-r2", "chunked-split3-bf16-k32-v32-wc-r2"]],
  ] as const)("%s: under beta in (0, 2) and log decays to -20 (bf16 <= 1e-2)", (name, variants) => {
    check(load(name), [...variants], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }, { T: 1, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-2);
  }, 300_000);
  // the checks can fail: slice 0 leaving out half of the other slice's partial, and the copies skipping their first warp
  it.each([
    ["chunked-split3-bf16-k128-v8-a384-iw-wk-r1", (src: string) => src.replace("acc[nt][0] += a.x; acc[nt][1] += a.y;", "acc[nt][1] += a.y;")],
    ["chunked-split3-bf16-k128-v8-a384-iw-wc-r1", (src: string) => src.replace("const int tid = (int)threadIdx.x - 32 * W0;", "const int tid = (int)threadIdx.x - 32 * W0 - 32;")],
  ] as const)("a deliberately broken %s fails the same check", (variant, patch) => {
    const m = load("deltanet");
    expect(patch(CHUNK_WALK_K_SOURCE)).not.toBe(CHUNK_WALK_K_SOURCE);
    expect(() => check(m, [variant], [{ T: 70, B: 1, K: 128, V: 100, init: true }], 1e-2, patch)).toThrow();
  }, 600_000);
});

// opt-in until measured: lowered only where `only` names them
describe("split3's walks over every warp are lowered only on request", () => {
  it("deltanet: no -wk / -wc variant and no seqc_chunk_walk_k in the default plan; both where `only` names them", () => {
    const m = load("deltanet");
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const all = lowerChunked(m, el);
    expect(all.forms.some((f) => /-w([kc]|512)-/.test(f.variant))).toBe(false);
    for (const mod of Object.values(all.modules)) expect(mod.source).not.toContain("seqc_chunk_walk_k");
    const want = ["chunked-split3-bf16-k128-v8-a384-iw-wk-r1", "chunked-split3-bf16-k128-v8-a384-iw-wc-r1"];
    const one = lowerChunked(m, el, { only: (v) => want.includes(v) });
    expect(one.forms.map((f) => f.variant).sort()).toEqual([...want].sort());
    for (const f of one.forms) expect(f.prefer).toBe(0);
    expect(one.modules.bf16.source).toContain("seqc_chunk_walk_k<");
    // no split-K over 64-value tiles (8 Z tiles fill the 8 warps) and no variant without low rank
    const wide = lowerChunked(m, el, { only: (v) => /-v64-a384-iw-w[kc]-r1$/.test(v) });
    expect(wide.forms.map((f) => f.variant)).toEqual([]);
    const sg = load("simple_gla");
    const sel = chunkedEligible(sg);
    if (!sel.ok) throw new Error(sel.why);
    expect(lowerChunked(sg, sel, { only: (v) => /-w[kc]-/.test(v) }).forms).toEqual([]);
    expect(lowerChunked(sg, sel).forms.some((f) => f.variant.includes("-w512"))).toBe(false);
    const s512 = lowerChunked(sg, sel, { only: (v) => v === "chunked-split-bf16-k128-v64-w512-r1" });
    expect(s512.forms.map((f) => [f.variant, f.prefer])).toEqual([["chunked-split-bf16-k128-v64-w512-r1", 0]]);
    expect(s512.forms[0].steps.map((st) => (st.kind === "launch" ? st.threads : 0))).toEqual([256, 512]);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("split3's walks over every warp compile for sm_90 (nvcc -ptx)", () => {
  it.each(["deltanet", "rwkv7"])("%s: the -wk / -wc walks", (name) => {
    const m = load(name);
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const { forms, modules } = lowerChunked(m, el, { only: (v) => /^chunked-split3?-bf16-k(64|128)-v(8|16|32|64)(-a\d+)?(-iw|-mw)?(-w[kc])?(-w512)?-r[12]$/.test(v) && /-w(k|c|512)/.test(v) });
    expect(forms.length).toBeGreaterThanOrEqual(4);
    const { ptx } = nvccPtx(modules.bf16.source, 90, nvcc, { lowPriority: true });
    for (const f of forms) for (const s of f.steps) if (s.kind === "launch") expect(ptx, s.entry).toMatch(new RegExp(`\\.entry ${s.entry}\\(`));
  }, 600_000);
});
