/**
 * split3's state walk with software-pipelined products (`-wp`, chunked-core.ts seqc_chunk_walk_p: each warp product
 * loads the next k-step's fragments before this k-step's mma) on the CPU emulation (test/cuda-emu/emu.h) against the
 * float64 interpreter: with and without low rank, scalar, per-key and no decay, 8-, 16-, 32- and 64-value walks, T = 1,
 * T not a multiple of the chunk, batch > 1, initial states, value sizes that are not a multiple of the block's tile,
 * and beta in (0, 2) with log decays to -20. The GPU run of the same variants is bench/cuda/chunked/check.ts;
 * `nvcc -ptx` where nvcc is installed.
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
if (!gpp) console.warn("cuda-chunked-wp.test: g++ is not installed, so the emulated runs are skipped");
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];
const bf = (x: Float64Array) => x.map((v) => fromBf16(toBf16(v)));

type Case = { T: number; B: number; K: number; V: number; init?: boolean; stress?: boolean };
/** The worst relative error of every output and final state of `variant` against the interpreter over `cases`. */
function worst(b: ReturnType<typeof buildEmu>, model: Model, variant: string, cases: Case[]): { err: number; label: string } {
  let err = 0, label = "";
  for (const c of cases) {
    const dims = smallDims(model, { K: c.K, V: c.V, H: 2, P: c.V, N: c.K, J: 2 });
    const run = chunkInputs(model, { dims, batch: c.B, time: c.T, seed: 5 + c.T + c.K, initialState: c.init, stress: c.stress });
    for (const k of Object.keys(run.inputs)) run.inputs[k] = bf(run.inputs[k]);
    const ref = interpret(model, run);
    const got = runEmu(b, variant, run);
    const pairs = [...Object.entries(ref.outputs).map(([k, x]) => [got.outputs[k], x]), ...Object.entries(ref.finalState).map(([k, x]) => [got.finalState[k], x])];
    for (const [g, x] of pairs) {
      const e = g.every(Number.isFinite) ? relativeError(g, x) : Infinity;
      if (!(e <= err)) { err = e; label = `${variant} T=${c.T} B=${c.B} K=${c.K} V=${c.V}${c.stress ? " stress" : ""}`; }
    }
  }
  return { err, label };
}
function check(model: Model, variants: string[], cases: Case[], tol: number) {
  const b = buildEmu(model, variants);
  for (const v of variants) {
    const { err, label } = worst(b, model, v, cases);
    expect(err, label).toBeLessThan(tol);
  }
}

describe.skipIf(!gpp)("split3's walk with pipelined products (-wp) on the CPU emulation vs the interpreter", () => {
  // low rank (the delta rule, with and without a scalar decay) at K = 128 with the phase A auto takes there, V = 100
  // (the last tile partly past V), a ragged T and an initial state; the 8-value walk is auto's walk at few heads
  it.each([
    ["deltanet", ["chunked-split3-bf16-k128-v8-a384-iw-wp-r1", "chunked-split3-bf16-k128-v16-a384-iw-wp-r1"]],
    ["gated_deltanet", ["chunked-split3-bf16-k128-v8-a384-iw-wp-r1"]],
  ] as const)("%s: bf16 at K = 128, V = 100 (<= 1e-2)", (name, variants) => {
    check(load(name), [...variants], [{ T: 130, B: 2, K: 128, V: 100, init: true }], 1e-2);
  }, 600_000);
  // no low rank: scalar decay (Mamba-2 at K = 64, Simple GLA at K = 128), per-key decay (GLA), no decay; T = 1
  it.each([
    ["mamba2", ["chunked-split3-bf16-k64-v16-wp-r1", "chunked-split3-bf16-k64-v32-wp-r1"], 64, 64],
    ["simple_gla", ["chunked-split3-bf16-k128-v16-wp-r1"], 128, 72],
    ["gla", ["chunked-split3-bf16-k64-v16-mw-wp-r1"], 64, 40],
    ["linear_attention", ["chunked-split3-bf16-k32-v32-wp-r1"], 32, 24],
  ] as const)("%s: bf16, ragged T and T = 1 (<= 1e-2)", (name, variants, K, V) => {
    check(load(name), [...variants], [{ T: 77, B: 2, K, V, init: true }, { T: 1, B: 1, K, V, init: true }], 1e-2);
  }, 600_000);
  // beta in (0, 2), log decays to -20, saturated gates; RWKV-7 (per-key decay and low rank, two rows per token)
  it.each([
    ["gated_deltanet", "chunked-split3-bf16-k32-v16-iw-wp-r1"],
    ["rwkv7", "chunked-split3-bf16-k32-v32-wp-r2"],
    ["mamba2", "chunked-split3-bf16-k32-v16-wp-r1"],
  ] as const)("%s: under beta in (0, 2) and log decays to -20 (bf16 <= 1e-2)", (name, variant) => {
    check(load(name), [variant], [{ T: 150, B: 1, K: 8, V: 5, stress: true, init: true }, { T: 1, B: 1, K: 8, V: 5, stress: true, init: true }], 1e-2);
  }, 300_000);
  // the checks can fail: the same walk with the second fragment set's k-step off by one (loads k-step k + 2) is wrong
  it("a deliberately broken pipelined walk fails the same check", () => {
    const m = load("deltanet");
    const broken = (src: string) => src.replace("(k + 1) * 16);\n      if (WN == 1)", "(k + 2 < KS ? k + 2 : k + 1) * 16);\n      if (WN == 1)");
    const v = "chunked-split3-bf16-k128-v16-a384-iw-wp-r1";
    const b = buildEmu(m, [v], undefined, broken);
    const { err } = worst(b, m, v, [{ T: 70, B: 1, K: 128, V: 100, init: true }]);
    expect(err).toBeGreaterThan(0.1);
  }, 600_000);
});

// no faster than the walks auto picks (bench/RESULTS.md chunked run 15): lowered only where `only` names them
describe("split3's pipelined walk is lowered only on request", () => {
  it("deltanet: no -wp variant and no pipelined-walk source in the default plan; both where `only` names one", () => {
    const m = load("deltanet");
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const all = lowerChunked(m, el);
    expect(all.forms.some((f) => f.variant.includes("-wp-"))).toBe(false);
    for (const mod of Object.values(all.modules)) expect(mod.source).not.toContain("seqc_chunk_walk_p");
    const one = lowerChunked(m, el, { only: (v) => v === "chunked-split3-bf16-k128-v8-a384-iw-wp-r1" });
    expect(one.forms.map((f) => f.variant)).toEqual(["chunked-split3-bf16-k128-v8-a384-iw-wp-r1"]);
    expect(one.forms[0].prefer).toBe(0);
    expect(one.modules.bf16.source).toContain("seqc_chunk_walk_p<");
    expect(one.modules.bf16.source).not.toContain("seqc_chunk_walk_w");
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("split3's pipelined walk compiles for sm_90 (nvcc -ptx)", () => {
  it.each(["deltanet", "mamba2", "rwkv7"])("%s: the -wp walks", (name) => {
    const m = load(name);
    const el = chunkedEligible(m);
    if (!el.ok) throw new Error(el.why);
    const { forms, modules } = lowerChunked(m, el, { only: (v) => /^chunked-split3-bf16-k(64|128)-v(8|16|32)(-a\d+)?(-iw|-mw)?-wp-r[12]$/.test(v) });
    expect(forms.length).toBeGreaterThanOrEqual(2);
    const { ptx } = nvccPtx(modules.bf16.source, 90, nvcc, { lowPriority: true });
    for (const f of forms) for (const s of f.steps) if (s.kind === "launch") expect(ptx, s.entry).toMatch(new RegExp(`\\.entry ${s.entry}\\(`));
  }, 600_000);
});
