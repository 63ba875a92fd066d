/**
 * split's low-rank walk with the readout's Q~ S0 beside Z = U0 + M S0 (`-wq-w512`, chunked-walk-q.ts
 * seqc_chunk_walk_q; on request only until measured). On the CPU emulation (test/cuda-emu) against the float64
 * interpreter: DeltaNet and Gated DeltaNet at K = 128 after auto's phase A there (-a512-iw) with 64- and 32-value tiles
 * (V = 100: the last tile partly past V), T = 1, ragged T, batch 2, initial and final states; beta in (0, 2) with log
 * decays to -20; Gated DeltaProduct's two rows per token; bf16 (<= 1e-2). A walk that adds Aq Z from the other stage's
 * record must fail. `nvcc -ptx` for sm_90 where nvcc is installed.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import type { Model } from "../compiler/ir/types.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { CHUNK_WALK_Q_SOURCE } from "../compiler/backends/cuda/chunked-walk-q.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";
import { loadStdlib as load, lowered } from "./helpers/chunked-lowered.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-walk-q.test: g++ is not installed, so the emulated runs are skipped");
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 17, exactForms: true, patch });

describe.skipIf(!gpp)("split's walk with Q~ S0 beside Z (-wq-w512) on the CPU emulation vs the interpreter", () => {
  it("deltanet: K = 128, V = 100, 64- and 32-value tiles, T = 77 (batch 2) and T = 1, initial state (<= 1e-2)", () => {
    check(load("deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-wq-w512-r1", "chunked-split-bf16-k128-v32-a512-iw-wq-w512-r1"], [{ T: 77, B: 2, K: 128, V: 100, init: true }, { T: 1, B: 1, K: 128, V: 100, init: true }], 1e-2);
  }, 900_000);
  it("gated_deltanet: K = 128, V = 72, ragged T = 150 (<= 1e-2)", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k128-v64-a512-iw-wq-w512-r1"], [{ T: 150, B: 1, K: 128, V: 72, init: true }], 1e-2);
  }, 900_000);
  it("gated_deltanet under beta in (0, 2) and log decays to -20, K = 40 (bf16 <= 1e-2); gated_deltaproduct two rows per token", () => {
    check(load("gated_deltanet"), ["chunked-split-bf16-k64-v64-a512-iw-wq-w512-r1"], [{ T: 150, B: 1, K: 40, V: 40, stress: true, init: true }, { T: 1, B: 1, K: 40, V: 40, stress: true, init: true }], 1e-2);
    check(load("gated_deltaproduct"), ["chunked-split-bf16-k64-v64-iw-wq-w512-r2"], [{ T: 77, B: 2, K: 48, V: 40, init: true }], 1e-2);
  }, 900_000);
  // the check can fail: Aq Z read from the other stage's record (the previous chunk's Aq)
  it("a deliberately broken -wq walk (Aq from the other record stage) fails the same check", () => {
    // (in seqc_chunk_walk_q only: the core's split3 readout has the same line)
    const head = "// ==== seqc chunked split walk with the readout's Q~ S0 beside Z (RQ) ====";
    const from = "SeqcMM<T_>::template run<false, false, WN, F>(acc, a, Cfg::LDF, s.Z, LDV, m0, n0);";
    const to = from.replace("(acc, a,", "(acc, reinterpret_cast<const T_*>(reinterpret_cast<const char*>(s.X) + (1 - st) * Cfg::STAGE + Cfg::W_A),");
    const patch = (src: string) => {
      const at = src.indexOf(head);
      return at < 0 ? src : src.slice(0, at) + src.slice(at).replace(from, to);
    };
    expect(patch(CHUNK_WALK_Q_SOURCE)).not.toBe(CHUNK_WALK_Q_SOURCE);
    expect(() => check(load("deltanet"), ["chunked-split-bf16-k64-v64-iw-wq-w512-r1"], [{ T: 150, B: 1, K: 64, V: 40, init: true }], 1e-2, patch)).toThrow();
  }, 900_000);
});

describe("-wq-w512 in the plans", () => {
  it("on request only (low rank, 2-byte operands, 64- and 32-value tiles); no default plan holds it; the module gets seqc_chunk_walk_q only then", () => {
    for (const name of ["deltanet", "gated_deltanet", "gated_deltaproduct", "rwkv7", "simple_gla"]) {
      const low = lowered(name);
      expect(low.forms.some((f) => f.variant.includes("-wq")), name).toBe(false);
      for (const m of Object.values(low.modules)) expect(/\bseqc_chunk_walk_q\b/.test(m.source), name).toBe(false);
    }
    const want = ["chunked-split-bf16-k128-v64-a512-iw-wq-w512-r1", "chunked-split-bf16-k128-v32-a512-iw-wq-w512-r1"];
    const one = lowered("deltanet", { only: (v) => want.includes(v) });
    expect(one.forms.map((f) => f.variant).sort()).toEqual([...want].sort());
    for (const f of one.forms) {
      expect(f.prefer).toBe(0);
      expect(f.steps.map((st) => (st.kind === "launch" ? st.threads : 0))).toEqual([512, 512]);
    }
    expect(one.modules.bf16.source).toContain("seqc_chunk_walk_q<");
    // without low rank there is no Z to form beside: none
    expect(lowered("simple_gla", { only: (v) => v.includes("-wq") }).forms).toEqual([]);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("-wq-w512 compiles for sm_90 (nvcc -ptx)", () => {
  it.each([
    ["deltanet", "bf16", "chunked-split-bf16-k128-v64-a512-iw-wq-w512-r1"],
    ["gated_deltanet", "f16", "chunked-split-f16-k128-v32-a512-iw-wq-w512-r1"],
  ] as const)("%s %s %s", (name, io, variant) => {
    const low = lowered(name, { only: (v) => v === variant });
    expect(low.forms.length).toBe(1);
    const { ptx } = nvccPtx(low.modules[io].source, 90, nvcc, { lowPriority: true });
    for (const st of low.forms[0].steps) expect(ptx, (st as { entry: string }).entry).toMatch(new RegExp(`\\.entry ${(st as { entry: string }).entry}\\(`));
  }, 300_000);
});
