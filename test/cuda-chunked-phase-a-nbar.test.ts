/**
 * The overlapped phase A on named barriers (`-iw-ios[-gf]-nb`, chunked-phase-a-nbar.ts; low rank with a scalar or no
 * decay, 2-byte operands, on request only): the inverse's warps (0-5) and the helpers meet on their own barriers
 * (bar.sync 1 / 2 with counts) instead of three block barriers, the helpers issuing alpha v's copies before Aq's record
 * copy. On the CPU emulation (test/cuda-emu, which now releases named barriers by their count): outputs and final states
 * bitwise those after -iw-ios (core record and -qxi's; Gated DeltaNet K = 128, V = 100, T = 150, batch 2; Gated
 * DeltaProduct two rows a token, K = 64); against the float64 interpreter under beta in (0, 2) and log decays to -20
 * (T = 150 and T = 1, <= 1e-2), DeltaNet (no decay, V = 100). A phase A without the inverse's first named barrier fails,
 * and one whose helpers issue alpha v's copies (into X's place) before their X~ stores. Plans: only under `only`, only
 * after -iw-ios; the default plans' modules hold no NBAR text. ptxas (sm_90): no spills, <= 64 registers at 512 threads.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_PHASE_A_NBAR_SOURCE } from "../compiler/backends/cuda/chunked-phase-a-nbar.ts";
import { BF16_IN_F32_OUT } from "../compiler/backends/cuda/chunked-plan.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { loadStdlib as load, lowered } from "./helpers/chunked-lowered.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-phase-a-nbar.test: g++ is not installed, so the emulated runs are skipped");
const check = (name: string, variants: string[], cases: ChunkEmuCase[], patch?: (src: string) => string) =>
  checkChunkedEmu(load(name), variants, cases, 1e-2, { seed: 47, exactForms: true, patch });
/** a broken kernel's check throws, and for its numbers (the error bound, or outputs not finite: the emulation's shared
 *  memory starts as NaN, so a read before its write shows), not for a build or run failure */
const failsCheck = (f: () => void) => expect(f).toThrow(/expected .* to be less than|finite: expected false to be true/);

/** outputs and final states of `b` bitwise those of `a` on one bf16-rounded input set */
function sameBits(name: string, a: string, b: string, o: { K: number; V: number; T: number; B: number }) {
  const model = load(name);
  const e = buildEmu(model, [a, b]);
  const dims = smallDims(model, { K: o.K, V: o.V, H: 2, P: o.V, N: o.K, J: 2 });
  const run = chunkInputs(model, { dims, batch: o.B, time: o.T, seed: 53, initialState: true });
  for (const k of Object.keys(run.inputs)) run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
  const y = runEmu(e, a, run);
  const x = runEmu(e, b, run);
  for (const k of Object.keys(y.outputs)) expect(Array.from(x.outputs[k]), `${b} ${k}`).toEqual(Array.from(y.outputs[k]));
  for (const k of Object.keys(y.finalState)) expect(Array.from(x.finalState[k]), `${b} ${k}`).toEqual(Array.from(y.finalState[k]));
}

const NB = "chunked-split-bf16-k128-v64-a512-iw-ios-nb-w512-r1";
const NBQ = "chunked-split-bf16-k128-v64-a512-iw-ios-nb-qxi-w512-r1";
const NBGF = "chunked-split-bf16-k128-v64-a512-iw-ios-gf-nb-w512-r1";
const NBWC = "chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-r1";

describe.skipIf(!gpp)("-nb (the overlapped phase A on named barriers) on the CPU emulation", () => {
  it("bitwise -iw-ios's: gated_deltanet K = 128 (core record and -qxi; V = 100, T = 150, batch 2), gated_deltaproduct two rows a token (K = 64)", () => {
    sameBits("gated_deltanet", "chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1", NB, { K: 128, V: 100, T: 150, B: 2 });
    sameBits("gated_deltanet", "chunked-split-bf16-k128-v64-a512-iw-ios-qxi-w512-r1", NBQ, { K: 128, V: 100, T: 150, B: 2 });
    sameBits("gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-r2", "chunked-split-bf16-k64-v32-a512-iw-ios-nb-r2", { K: 64, V: 40, T: 77, B: 1 });
  }, 900_000);
  it("against float64: gated_deltanet K = 128 under stress (T = 150, T = 1; -nb, -gf-nb, -nb-qxi), deltanet K = 128 (V = 100)", () => {
    check("gated_deltanet", [NB, NBGF, NBQ], [{ T: 150, B: 1, K: 128, V: 72, stress: true, init: true }, { T: 1, B: 1, K: 128, V: 72, stress: true, init: true }]);
    check("deltanet", [NB, NBQ], [{ T: 130, B: 1, K: 128, V: 100, init: true }]);
  }, 900_000);
  it("auto's -nb-wc-w512 (H200 run 31) against float64: gated_deltanet K = 128 under stress (T = 150), deltanet (V = 100), gated_deltaproduct two rows a token at K = 128", () => {
    check("gated_deltanet", [NBWC], [{ T: 150, B: 1, K: 128, V: 72, stress: true, init: true }]);
    check("deltanet", [NBWC], [{ T: 130, B: 1, K: 128, V: 100, init: true }]);
    check("gated_deltaproduct", [NBWC.replace("-r1", "-r2")], [{ T: 45, B: 1, K: 128, V: 72, init: true }]);
  }, 900_000);
  it("a phase A without the inverse's first named barrier (round 1 before the diagonal blocks) fails the same check", () => {
    const from = "    seqc_chunk_inverse_diag<Cfg>(s);\n    seqc_bar_named(1, 32 * IW);\n";
    expect(CHUNK_PHASE_A_NBAR_SOURCE.split(from).length).toBe(3);
    const patch = (src: string) => src.split(from).join("    seqc_chunk_inverse_diag<Cfg>(s);\n");
    failsCheck(() => check("gated_deltanet", [NB], [{ T: 77, B: 1, K: 128, V: 72, init: true }], patch));
  }, 900_000);
  it("a phase A whose helpers issue alpha v's copies (into X's place) before their X~ stores fails the same check", () => {
    const at = CHUNK_PHASE_A_NBAR_SOURCE.indexOf("seqc_chunk_phase_a_on(");
    const fn = CHUNK_PHASE_A_NBAR_SOURCE.slice(at, CHUNK_PHASE_A_NBAR_SOURCE.indexOf("seqc_chunk_phase_a_oqn(", at));
    const head = "  } else {\n    const float gn = ";
    const i = fn.indexOf(head), j = fn.indexOf("    // a helper's alpha v pieces", i), k = fn.indexOf("    seqc_cp_commit();\n", j);
    expect(i > 0 && j > i && k > j).toBe(true);
    const loopA = fn.slice(fn.indexOf("\n", i + head.length) + 1, j);
    const vLoop = fn.slice(fn.indexOf("\n", fn.indexOf("seqc_bar_named(2, NH);", j)) + 1, k);
    const broken = fn.slice(0, fn.indexOf("\n", i + head.length) + 1) + vLoop + fn.slice(j, fn.indexOf("\n", fn.indexOf("seqc_bar_named(2, NH);", j)) + 1) + loopA + fn.slice(k);
    expect(broken).not.toBe(fn);
    const patch = (src: string) => src.replace(fn, broken);
    failsCheck(() => check("gated_deltanet", [NB], [{ T: 77, B: 1, K: 128, V: 72, init: true }], patch));
  }, 900_000);
});

describe("-nb in the plans", () => {
  it("default plans: only auto's -a512-iw-ios-nb-wc-w512 (K = 128, 2-byte I/O of one type, preferred where -w512 was: H200 run 31); the rest under `only`, only after -iw-ios; its entries and module say so", () => {
    for (const name of ["simple_gla", "rwkv7"]) {
      expect(lowered(name).forms.some((f) => f.variant.includes("-nb")), name).toBe(false);
      for (const m of Object.values(lowered(name).modules)) expect(m.source.includes("seqc_bar_named"), name).toBe(false);
    }
    for (const name of ["deltanet", "gated_deltanet", "gated_deltaproduct"]) {
      const d = lowered(name);
      // (not the -st twins, whose walk also stores the chunk states: chunked-walk-states.ts, prefer 0)
      const nb = d.forms.filter((f) => f.variant.includes("-nb") && !f.variant.endsWith("-st-r1"));
      expect(nb.length, name).toBeGreaterThan(0);
      for (const f of nb) {
        expect(f.variant, name).toMatch(/^chunked-split-b?f16-k128-v64-a512-iw-ios-nb-wc-w512-r\d$/);
        expect(f.prefer, f.variant).not.toBe(0);
        expect(d.forms.find((g) => g.variant === f.variant.replace("-nb-wc-", "-"))?.prefer, f.variant).toBe(0);
      }
      expect(d.modules.f32.source.includes("seqc_bar_named"), name).toBe(false);
      expect(lowered(name, { ios: [BF16_IN_F32_OUT] }).forms.some((f) => f.variant.includes("-nb")), name).toBe(false);
    }
    for (const name of ["simple_gla", "rwkv7"]) expect(lowered(name, { only: (v) => v.includes("-nb") }).forms, name).toEqual([]);
    const all = lowered("gated_deltanet", { only: (v) => v.includes("-nb") }).forms.map((f) => f.variant);
    expect(all.length).toBeGreaterThan(0);
    for (const v of all) expect(v, v).toMatch(/-iw-ios(-gf)?-nb-/);
    const one = lowered("gated_deltanet", { only: (x) => x === NB });
    expect(one.forms.map((f) => f.variant)).toEqual([NB]);
    expect((one.forms[0].steps[0] as { entry: string }).entry).toMatch(/_t512_iw_ios_nb$/);
    expect(one.modules.bf16.source).toContain(CHUNK_PHASE_A_NBAR_SOURCE);
    expect(one.modules.bf16.source).toMatch(/seqc_chunk_phase_a_on<[^>]+>\(rows/);
    // the record is the one -iw-ios writes
    expect(one.forms[0].workspaces[0]).toEqual(lowered("gated_deltanet", { only: (x) => x === "chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1" }).forms[0].workspaces[0]);
    const q = lowered("gated_deltanet", { only: (x) => x === NBQ });
    expect((q.forms[0].steps[0] as { entry: string }).entry).toMatch(/_iw_ios_nb_qxi$/);
    expect(q.modules.bf16.source).toMatch(/seqc_chunk_phase_a_oqn<[^>]+>\(rows/);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-nb for sm_90 (ptxas)", () => {
  it.each([
    ["gated_deltanet", NB],
    ["gated_deltanet", NBGF],
    ["gated_deltanet", NBQ],
    ["deltanet", NB],
    ["gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-nb-r2"],
  ] as const)("%s %s: phase A and walk without spills, phase A <= 64 registers", (name, variant) => {
    const low = lowered(name, { only: (x) => x === variant, ios: [{ io: "bf16" }] });
    const entries = (low.forms[0].steps as { entry: string }[]).map((s) => s.entry);
    const u = ptxasUsage(nvcc!, low.modules.bf16.source, entries);
    for (const e of entries) expect(u.get(e)!.spillStores + u.get(e)!.spillLoads, e).toBe(0);
    expect(u.get(entries[0])!.registers, entries[0]).toBeLessThanOrEqual(64);
  }, 300_000);
});
