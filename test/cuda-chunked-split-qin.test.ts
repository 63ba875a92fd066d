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
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_SPLIT_QIN_SOURCE } from "../compiler/backends/cuda/chunked-split-qin.ts";
import { CHUNK_PHASE_A_OVL_GF_SOURCE } from "../compiler/backends/cuda/chunked-phase-a-ovl.ts";
import { recordBytes, recordBytesQ } from "../compiler/backends/cuda/chunked-plan.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { loadStdlib as load, lowered } from "./helpers/chunked-lowered.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-split-qin.test: g++ is not installed, so the emulated runs are skipped");
const check = (name: string, variants: string[], cases: ChunkEmuCase[], patch?: (src: string) => string) =>
  checkChunkedEmu(load(name), variants, cases, 1e-2, { seed: 41, exactForms: true, patch });

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
    expect(() => check("gated_deltanet", [GD[0]], [{ T: 77, B: 1, K: 128, V: 72, init: true }], patch)).toThrow();
  }, 900_000);
  it("a -qxi walk that updates the state with Z instead of diag(fx) Z fails the same check", () => {
    const from = "seqc_state_update<Cfg>(S, x, Cfg::QIN == 2 ? s.ZX : s.Z, eg);";
    expect(CHUNK_SPLIT_QIN_SOURCE.includes(from)).toBe(true);
    const patch = (src: string) => src.replace(from, "seqc_state_update<Cfg>(S, x, s.Z, eg);");
    expect(() => check("gated_deltanet", [GD[2]], [{ T: 77, B: 1, K: 128, V: 72, init: true }], patch)).toThrow();
  }, 900_000);
});

describe("-qi in the plans", () => {
  it("only under `only`, only after an overlapped phase A; its entries, config and record say so", () => {
    for (const name of ["deltanet", "gated_deltanet", "gated_deltaproduct", "simple_gla", "rwkv7"]) {
      expect(lowered(name).forms.some((f) => f.variant.includes("-qi")), name).toBe(false);
      for (const m of Object.values(lowered(name).modules)) {
        expect(m.source.includes("QIN = 1"), name).toBe(false);
        expect(m.source.includes("SeqcRecQ"), name).toBe(false);
      }
    }
    for (const name of ["simple_gla", "rwkv7"]) expect(lowered(name, { only: (v) => v.includes("-qi") }).forms, name).toEqual([]);
    const all = lowered("gated_deltanet", { only: (v) => v.includes("-qi") }).forms.map((f) => f.variant);
    expect(all.length).toBeGreaterThan(0);
    for (const v of all) expect(v, v).toMatch(/-iw-ios?(-gf)?-qx?i(-w512)?-r\d$/);
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
  ] as const)("%s %s: phase A and walk without spills, phase A <= %d registers", (name, variant, regs) => {
    const low = lowered(name, { only: (x) => x === variant, ios: [{ io: "bf16" }] });
    const entries = (low.forms[0].steps as { entry: string }[]).map((s) => s.entry);
    const u = ptxasUsage(nvcc!, low.modules.bf16.source, entries);
    for (const e of entries) expect(u.get(e)!.spillStores + u.get(e)!.spillLoads, e).toBe(0);
    expect(u.get(entries[0])!.registers, entries[0]).toBeLessThanOrEqual(regs);
  }, 300_000);
});
