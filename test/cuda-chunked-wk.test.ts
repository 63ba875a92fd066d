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
import type { Model } from "../compiler/ir/types.ts";
import { BF16_IN_F32_OUT, chunkedEligible, lowerChunked } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_CORE_SOURCE, CHUNK_WALK_K_SOURCE } from "../compiler/backends/cuda/chunked-core.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { loadStdlib as load } from "./helpers/chunked-lowered.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-wk.test: g++ is not installed, so the emulated runs are skipped");
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
  // the defaults' f16 modules (same kernels, f16 operands) and Gated DeltaProduct's two rows per token (r2)
  it("deltanet f16 at K = 128 (the default -wc and -w512 walks, <= 1e-2); gated_deltaproduct r2 (bf16 <= 1e-2)", () => {
    check(load("deltanet"), ["chunked-split3-f16-k128-v16-a384-iw-wc-r1", "chunked-split-f16-k128-v64-a512-iw-w512-r1"], [{ T: 77, B: 2, K: 128, V: 72, init: true }], 1e-2);
    check(load("gated_deltaproduct"), ["chunked-split3-bf16-k32-v16-iw-wc-r2"], [{ T: 77, B: 2, K: 32, V: 24, init: true }, { T: 1, B: 1, K: 32, V: 24, init: true }], 1e-2);
    check(load("gated_deltaproduct"), ["chunked-split-bf16-k64-v64-iw-w512-r2"], [{ T: 77, B: 2, K: 48, V: 40, init: true }], 1e-2);
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
    // (the copies' template, seqc_walks_issue, is the core's: split3's walk runs it from warp 0)
    const src = CHUNK_CORE_SOURCE + CHUNK_WALK_K_SOURCE;
    expect(patch(src)).not.toBe(src);
    expect(() => check(m, [variant], [{ T: 70, B: 1, K: 128, V: 100, init: true }], 1e-2, patch)).toThrow();
  }, 600_000);
});

// in the default plan only where auto takes them (run 19): -wc at the 16-value split3 walk and -w512 at the 64-value split
// walk of low rank with a scalar or no decay, K = 128, 2-byte I/O of one type, the preferred phase A (-a384-iw; before
// -w512 -a512-iw since H200 run 23b); the rest on request
describe("split3's walks over every warp and split's 512-thread walk in the plans", () => {
  const lowered = (name: string, opts?: Parameters<typeof lowerChunked>[2]) => {
    const m = load(name);
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    return lowerChunked(m, el, opts);
  };
  it("deltanet / gated_deltanet: the default plan holds -wc (v16) and -w512 (v64) at K = 128 (after -a512-iw-ios, run 26), bf16 and f16; no -wk; not in the bf16-of32 module", () => {
    for (const name of ["deltanet", "gated_deltanet"]) {
      const all = lowered(name);
      // (not the -st twins, whose walk also stores the chunk states: chunked-walk-states.ts, prefer 0)
      expect(all.forms.filter((f) => /-w(k|c|512)/.test(f.variant) && !f.variant.endsWith("-st-r1")).map((f) => f.variant).sort()).toEqual(
        ["chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1", "chunked-split-f16-k128-v64-a512-iw-ios-nb-wc-w512-r1", "chunked-split-f16-k128-v64-a512-iw-ios-w512-r1", "chunked-split3-bf16-k128-v16-a512-iw-ios-wc-r1", "chunked-split3-f16-k128-v16-a512-iw-ios-wc-r1"],
      );
      // the 8-value walk and the 256-thread 64-value split walk stay in the plan, never preferred at 2-byte I/O
      for (const v of ["chunked-split3-bf16-k128-v8-a384-iw-r1", "chunked-split-bf16-k128-v64-a384-iw-r1"]) expect(all.forms.find((f) => f.variant === v)?.prefer, v).toBe(0);
      expect(all.modules.bf16.source).toContain("seqc_chunk_walk_k<");
      expect(all.modules.f32.source).not.toContain("seqc_chunk_walk_k");
      const of32 = lowered(name, { ios: [BF16_IN_F32_OUT] });
      expect(of32.forms.some((f) => /-w(k|c|512)/.test(f.variant))).toBe(false);
      expect(of32.forms.find((f) => f.variant === "chunked-split3-bf16-of32-k128-v8-a384-iw-r1")?.prefer).not.toBe(0);
    }
  });
  it("Simple GLA (no low rank, scalar decay; H200 runs 28 and 29): the default plan holds -w512 and -vi-w512 (v64) at K = 128, bf16 and f16, -vi-w512 preferred where the 256-thread walk was; not in the bf16-of32 module", () => {
    const all = lowered("simple_gla");
    expect(all.forms.filter((f) => /-w(k|c|512)/.test(f.variant)).map((f) => f.variant).sort()).toEqual(["chunked-split-bf16-k128-v64-vi-w512-r1", "chunked-split-bf16-k128-v64-w512-r1", "chunked-split-f16-k128-v64-vi-w512-r1", "chunked-split-f16-k128-v64-w512-r1"]);
    for (const io of ["bf16", "f16"]) {
      const w = all.forms.find((f) => f.variant === `chunked-split-${io}-k128-v64-vi-w512-r1`)!;
      const old = all.forms.find((f) => f.variant === `chunked-split-${io}-k128-v64-r1`)!;
      const w512 = all.forms.find((f) => f.variant === `chunked-split-${io}-k128-v64-w512-r1`)!;
      expect(old.prefer).toBe(0);
      expect(w512.prefer).toBe(0);
      expect(w.prefer).toEqual(["*", [">=", "T", 64], [">=", ["*", 8, "B", "H", ["ceilDiv", "V", 64]], ["*", 7, "LIMIT_SMS"]]]);
      expect(w.steps.map((st) => (st.kind === "launch" ? st.threads : 0))).toEqual([256, 512]);
      // the -vi-w512 variant comes before the 32-value walk in plan order (both preferred where the 64-value walk fits)
      expect(all.forms.indexOf(w)).toBeLessThan(all.forms.findIndex((f) => f.variant === `chunked-split-${io}-k128-v32-r1`));
    }
    expect(lowered("simple_gla", { ios: [BF16_IN_F32_OUT] }).forms.some((f) => /-w(k|c|512)/.test(f.variant))).toBe(false);
  });
  it("RWKV-7 (per-key decay): none in the default plan; -wk / -wc / -w512 where `only` names them (Simple GLA: -w512 only)", () => {
    expect(lowered("rwkv7").forms.some((f) => /-w(k|c|512)/.test(f.variant))).toBe(false);
    const want = ["chunked-split3-bf16-k128-v8-a384-iw-wk-r1", "chunked-split3-bf16-k128-v8-a384-iw-wc-r1"];
    const one = lowered("deltanet", { only: (v) => want.includes(v) });
    expect(one.forms.map((f) => f.variant).sort()).toEqual([...want].sort());
    for (const f of one.forms) expect(f.prefer).toBe(0);
    // no split-K over 64-value tiles (8 Z tiles fill the 8 warps) and no variant without low rank
    expect(lowered("deltanet", { only: (v) => /-v64-a384-iw-w[kc]-r1$/.test(v) }).forms).toEqual([]);
    expect(lowered("simple_gla", { only: (v) => /-w[kc]-/.test(v) }).forms).toEqual([]);
    const s512 = lowered("simple_gla", { only: (v) => v === "chunked-split-bf16-k128-v64-w512-r1" });
    expect(s512.forms.map((f) => f.variant)).toEqual(["chunked-split-bf16-k128-v64-w512-r1"]);
    expect(s512.forms[0].steps.map((st) => (st.kind === "launch" ? st.threads : 0))).toEqual([256, 512]);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("split3's walks over every warp compile for sm_90 (nvcc -ptx)", () => {
  it.each([["deltanet", "bf16"], ["rwkv7", "bf16"], ["deltanet", "f16"]])("%s %s: the -wk / -wc / -w512 walks", (name, io) => {
    const m = load(name);
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const { forms, modules } = lowerChunked(m, el, { only: (v) => new RegExp(`^chunked-split3?-${io}-k(64|128)-v(8|16|32|64)(-a\\d+)?(-iw|-mw)?(-w[kc])?(-w512)?-r[12]$`).test(v) && /-w(k|c|512)/.test(v) });
    expect(forms.length).toBeGreaterThanOrEqual(4);
    const { ptx } = nvccPtx(modules[io].source, 90, nvcc, { lowPriority: true });
    for (const f of forms) for (const s of f.steps) if (s.kind === "launch") expect(ptx, s.entry).toMatch(new RegExp(`\\.entry ${s.entry}\\(`));
  }, 600_000);
});
