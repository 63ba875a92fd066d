/**
 * split with low rank, Q~ left out of the record (`-qi`, chunked-split-qin.ts; the overlapped phase A, a scalar or no
 * decay, 2-byte operands, on request only): phase A writes fq = scale_q exp(G_q) a row instead of Q~, the walk copies
 * q's rows from the inputs and scales Q S0's rows by fq; `-qxi` leaves X~ out too (fx a row, the walk copies the key
 * rows and updates the state with diag(fx) Z). On the CPU emulation (test/cuda-emu) against the float64
 * interpreter (bf16, <= 1e-2): Gated DeltaNet at K = 128 (split's 512-thread 64-value walk, after -iw-ios and
 * -iw-ios-gf) under beta in (0, 2) and log decays to -20, ragged T and T = 1; DeltaNet (no decay) at K = 128 (V = 100:
 * a partial value tile); Gated DeltaProduct at two rows per token (K = 64: q on the first row of a token only) on the
 * 256-thread walk; each for -qi and -qxi. A walk that leaves fq off fails, and a -qxi walk that leaves fx off. Plans: only under `only`, only after an overlapped phase A; the
 * default plans' modules hold no QIN text. ptxas (sm_90): no spills in phase A or the walk.
 * `-wc-w512` (seqc_chunk_walk_c: the next record's copies on the warps without a Z tile, after the core's record or
 * -qxi's): the same float64 checks, and bitwise the walk it reorders (the same products in the same order); a walk
 * whose issuing warps copy chunk c + 2's record instead of c + 1's fails.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_SPLIT_QIN_SOURCE, CHUNK_SPLIT_WC_SOURCE } from "../compiler/backends/cuda/chunked-split-qin.ts";
import { CHUNK_PHASE_A_OVL_GF_SOURCE } from "../compiler/backends/cuda/chunked-phase-a-ovl.ts";
import { recordBytes, recordBytesQ } from "../compiler/backends/cuda/chunked-plan.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { loadStdlib as load, lowered } from "./helpers/chunked-lowered.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-split-qin.test: g++ is not installed, so the emulated runs are skipped");
const check = (name: string, variants: string[], cases: ChunkEmuCase[], patch?: (src: string) => string) =>
  checkChunkedEmu(load(name), variants, cases, 1e-2, { seed: 41, exactForms: true, patch });
/** a broken kernel's check throws, and for its numbers (an assertion on the errors), not for a build or run failure */
const failsCheck = (f: () => void) => expect(f).toThrow(/expected .* to be less than/);

/** outputs and final states of `b` bitwise those of `a` on one bf16-rounded input set */
function sameBits(name: string, a: string, b: string, o: { K: number; V: number; T: number; B: number }) {
  const model = load(name);
  const e = buildEmu(model, [a, b]);
  const dims = smallDims(model, { K: o.K, V: o.V, H: 2, P: o.V, N: o.K, J: 2 });
  const run = chunkInputs(model, { dims, batch: o.B, time: o.T, seed: 43, initialState: true });
  for (const k of Object.keys(run.inputs)) run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
  const y = runEmu(e, a, run);
  const x = runEmu(e, b, run);
  for (const k of Object.keys(y.outputs)) expect(Array.from(x.outputs[k]), `${b} ${k}`).toEqual(Array.from(y.outputs[k]));
  for (const k of Object.keys(y.finalState)) expect(Array.from(x.finalState[k]), `${b} ${k}`).toEqual(Array.from(y.finalState[k]));
}

const GD = ["chunked-split-bf16-k128-v64-a512-iw-ios-qi-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-gf-qi-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-qxi-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-gf-qxi-w512-r1"];

describe.skipIf(!gpp)("-qi (no Q~ in the record) on the CPU emulation", () => {
  it("gated_deltanet K = 128 (-qi, -qxi) after -iw-ios and -iw-ios-gf, against float64 under beta in (0, 2) and log decays to -20: T = 150 (ragged, batch 2) and T = 1", () => {
    check("gated_deltanet", GD, [
      { T: 150, B: 2, K: 128, V: 72, stress: true, init: true },
      { T: 1, B: 1, K: 128, V: 72, stress: true, init: true },
    ]);
  }, 900_000);
  it("deltanet K = 128 (no decay, V = 100) and gated_deltaproduct at two rows per token (K = 64, V = 40, 256-thread walk)", () => {
    check("deltanet", ["chunked-split-bf16-k128-v64-a512-iw-ios-qi-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-qxi-w512-r1"], [{ T: 130, B: 1, K: 128, V: 100, init: true }]);
    check("gated_deltaproduct", ["chunked-split-bf16-k64-v32-a512-iw-ios-qi-r2", "chunked-split-bf16-k64-v32-a512-iw-ios-qxi-r2"], [{ T: 77, B: 1, K: 64, V: 40, init: true }, { T: 1, B: 1, K: 64, V: 40, init: true }]);
  }, 900_000);
  // the check can fail: the readout without the rows' fq (the gate and q's scale on Q S0)
  it("a walk that leaves fq off Q S0's rows fails the same check", () => {
    const from = "const float* fq = eg + KP;";
    expect(CHUNK_SPLIT_QIN_SOURCE.includes(from)).toBe(true);
    const patch = (src: string) => src.replace(from, "const float one[64] = {1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f}; const float* fq = one;");
    failsCheck(() => check("gated_deltanet", [GD[0]], [{ T: 77, B: 1, K: 128, V: 72, init: true }], patch));
  }, 900_000);
  it("a -qxi walk that updates the state with Z instead of diag(fx) Z fails the same check", () => {
    const from = "seqc_state_update<Cfg>(S, x, Cfg::QIN == 2 ? s.ZX : s.Z, eg);";
    expect(CHUNK_SPLIT_QIN_SOURCE.includes(from)).toBe(true);
    const patch = (src: string) => src.replace(from, "seqc_state_update<Cfg>(S, x, s.Z, eg);");
    failsCheck(() => check("gated_deltanet", [GD[2]], [{ T: 77, B: 1, K: 128, V: 72, init: true }], patch));
  }, 900_000);
});

const WC = [
  ["chunked-split-bf16-k128-v64-a512-iw-ios-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-wc-w512-r1"],
  ["chunked-split-bf16-k128-v64-a512-iw-ios-qxi-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-qxi-wc-w512-r1"],
  ["chunked-split-bf16-k128-v64-a512-iw-ios-gf-qxi-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-gf-qxi-wc-w512-r1"],
] as const;
describe.skipIf(!gpp)("-wc-w512 (the copies on the warps without a Z tile) on the CPU emulation", () => {
  it("gated_deltanet K = 128 after -iw-ios (core record, -qxi) and -iw-ios-gf (-qxi): bitwise the walks it reorders (V = 100, T = 150, batch 2)", () => {
    for (const [ref, wc] of WC) sameBits("gated_deltanet", ref, wc, { K: 128, V: 100, T: 150, B: 2 });
    sameBits("gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-qxi-w512-r2", "chunked-split-bf16-k64-v32-a512-iw-ios-qxi-wc-w512-r2", { K: 64, V: 40, T: 77, B: 1 });
  }, 900_000);
  it("against float64: gated_deltanet K = 128 under stress (T = 150, T = 1), deltanet K = 128, gated_deltaproduct two rows a token (32-value walk)", () => {
    check("gated_deltanet", WC.map((x) => x[1]), [{ T: 150, B: 1, K: 128, V: 72, stress: true, init: true }, { T: 1, B: 1, K: 128, V: 72, stress: true, init: true }]);
    check("deltanet", ["chunked-split-bf16-k128-v64-a512-iw-ios-wc-w512-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-qxi-wc-w512-r1"], [{ T: 130, B: 1, K: 128, V: 100, init: true }]);
    check("gated_deltaproduct", ["chunked-split-bf16-k64-v32-a512-iw-ios-wc-w512-r2"], [{ T: 77, B: 1, K: 64, V: 40, init: true }]);
  }, 900_000);
  it("a walk whose issuing warps copy chunk c + 2's record instead of c + 1's fails the same check", () => {
    const from = "if (c + 1 < nc) seqc_walkc_issue<Cfg>(rows, s, (c + 1) % NS, recs + (size_t)(c + 1) * Rec::BYTES, b, h, (c + 1) * C, T, j0,";
    expect(CHUNK_SPLIT_WC_SOURCE.includes(from)).toBe(true);
    const patch = (src: string) => src.replace(from, "if (c + 2 < nc) seqc_walkc_issue<Cfg>(rows, s, (c + 1) % NS, recs + (size_t)(c + 2) * Rec::BYTES, b, h, (c + 2) * C, T, j0,");
    failsCheck(() => check("gated_deltanet", [WC[0][1]], [{ T: 150, B: 1, K: 128, V: 72, init: true }], patch));
  }, 900_000);
});

describe("-qi in the plans", () => {
  it("only under `only`, only after an overlapped phase A; its entries, config and record say so", () => {
    for (const name of ["deltanet", "gated_deltanet", "gated_deltaproduct", "simple_gla", "rwkv7"]) {
      expect(lowered(name).forms.some((f) => f.variant.includes("-qi")), name).toBe(false);
      for (const m of Object.values(lowered(name).modules)) {
        expect(m.source.includes("QIN = 1"), name).toBe(false);
        // (the QIN and WC texts only where auto's -nb-wc-w512 is, H200 run 31: its walk is seqc_chunk_walk_c)
        expect(m.source.includes("SeqcRecQ"), name).toBe(m.source.includes("seqc_chunk_phase_a_on<"));
        expect(m.source.includes("seqc_chunk_walk_c"), name).toBe(m.source.includes("seqc_chunk_phase_a_on<"));
      }
    }
    for (const name of ["simple_gla", "rwkv7"]) expect(lowered(name, { only: (v) => v.includes("-qi") }).forms, name).toEqual([]);
    const all = lowered("gated_deltanet", { only: (v) => v.includes("-qi") }).forms.map((f) => f.variant);
    expect(all.length).toBeGreaterThan(0);
    for (const v of all) expect(v, v).toMatch(/-iw-ios?(-gf)?(-nb)?(-qi|-qxi(-wc)?)(-w512)?-r\d$/);
    // (not the -st twins, whose walk also stores the chunk states: chunked-walk-states.ts)
    const wcs = lowered("gated_deltanet", { only: (v) => v.includes("-wc-w512") && v.startsWith("chunked-split-") && !v.endsWith("-st-r1") }).forms;
    expect(wcs.length).toBeGreaterThan(0);
    for (const f of wcs) {
      expect(f.variant).toMatch(/-iw-ios?(-gf)?(-nb)?(-qxi)?-wc-w512-r1$/);
      expect((f.steps[1] as { entry: string }).entry).toMatch(/_t512(_qxi)?_wcp$/);
    }
    const wc0 = lowered("gated_deltanet", { only: (x) => x === WC[0][1] });
    expect(wc0.modules.bf16.source).toContain(CHUNK_SPLIT_WC_SOURCE);
    expect(wc0.modules.bf16.source).toMatch(/seqc_chunk_walk_c<[^>]+>\(rows/);
    expect(wc0.forms[0].workspaces[0]).toEqual(lowered("gated_deltanet", { only: (x) => x === WC[0][0] }).forms[0].workspaces[0]);
    const v = GD[0];
    const one = lowered("gated_deltanet", { only: (x) => x === v });
    expect(one.forms.map((f) => f.variant)).toEqual([v]);
    const [a, w] = one.forms[0].steps as { threads: number; entry: string }[];
    expect([a.threads, w.threads]).toEqual([512, 512]);
    expect(a.entry).toMatch(/_iw_ios_qi$/);
    expect(w.entry).toMatch(/_t512_qi$/);
    const src = one.modules.bf16.source;
    expect(src).toContain(CHUNK_PHASE_A_OVL_GF_SOURCE);
    expect(src).toContain(CHUNK_SPLIT_QIN_SOURCE);
    expect(src).toMatch(/seqc_chunk_phase_a_oq<[^>]+>\(rows/);
    expect(src).toMatch(/seqc_chunk_walk_qi<[^>]+>\(rows/);
    // the record: Q~'s 16 KB a chunk out, fq's 256 bytes in (K = V = 128, bf16)
    const c = { kind: "phaseA", dtype: "bf16", KP: 128, BV: 64, VP: 128, RTP: 1, decay: 1, lr: true } as const;
    expect(recordBytes(c) - recordBytesQ(c)).toBe(64 * 128 * 2 - 64 * 4);
    const ws = one.forms[0].workspaces[0].words as unknown[];
    expect(ws[ws.length - 1]).toBe(recordBytesQ(c) / 4);
    // -qxi: X~'s 16 KB out too, fx's 256 bytes in
    expect(recordBytes(c) - recordBytesQ({ ...c, qin: 2 })).toBe(2 * (64 * 128 * 2 - 64 * 4));
    const two = lowered("gated_deltanet", { only: (x) => x === GD[2] });
    expect((two.forms[0].steps as { entry: string }[]).map((st) => st.entry.replace(/^.*_chunk_/, ""))).toEqual(["phaseA_bf16_k128_p128_r1_t512_iw_ios_qxi", "walk_bf16_k128_v64p128_r1_t512_qxi"]);
    expect(two.modules.bf16.source).toMatch(/static constexpr int OVL = 2;\n  static constexpr int QIN = 2;/);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-qi for sm_90 (ptxas)", () => {
  it.each([
    ["gated_deltanet", GD[0], 64],
    ["gated_deltanet", GD[1], 64],
    ["gated_deltanet", GD[2], 64],
    ["gated_deltanet", GD[3], 64],
    ["gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-qi-r2", 64],
    ["gated_deltaproduct", "chunked-split-bf16-k64-v32-a512-iw-ios-qxi-r2", 64],
    ...WC.map((x) => ["gated_deltanet", x[1], 64] as const),
  ] as const)("%s %s: phase A and walk without spills, phase A <= %d registers", (name, variant, regs) => {
    const low = lowered(name, { only: (x) => x === variant, ios: [{ io: "bf16" }] });
    const entries = (low.forms[0].steps as { entry: string }[]).map((s) => s.entry);
    const u = ptxasUsage(nvcc!, low.modules.bf16.source, entries);
    for (const e of entries) expect(u.get(e)!.spillStores + u.get(e)!.spillLoads, e).toBe(0);
    expect(u.get(entries[0])!.registers, entries[0]).toBeLessThanOrEqual(regs);
  }, 300_000);
});
