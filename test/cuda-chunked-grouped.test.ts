/**
 * Grouped split3 (`-g<G>`, chunked-core.ts CHUNK_GROUP_SOURCE): the chunks split into G groups walked in parallel from
 * zero states, a carry kernel over the groups, and a readout that adds each chunk's carried part. On the CPU emulation
 * (test/cuda-emu) against the float64 interpreter: scalar (Simple GLA, Mamba-2, RetNet), per-key (GLA) and no decay
 * (linear attention); G = 2, 3, 4 and 16, G not dividing the chunk count and groups left empty (G > chunks), T = 1, T not
 * a multiple of the chunk, batch 2, initial and final states, log decays down to -20 per step; fp32 (<= 1e-4) and bf16
 * (<= 1e-2). Two deliberately broken copies (the carry without the group's decay, the readout without P_c) must fail.
 * `nvcc -ptx` of the kernels for sm_90 where nvcc is installed.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import type { Model } from "../compiler/ir/types.ts";
import { chunkedEligible, lowerChunked } from "../compiler/backends/cuda/chunked-plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { chooseCudaForm } from "../compiler/backends/cuda/choose.ts";
import { checkChunkedEmu, type ChunkEmuCase } from "./helpers/chunked-emu-check.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-chunked-grouped.test: g++ is not installed, so the emulated runs are skipped");
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];
/** The model and its chunked eligibility (throws where it is not eligible). */
const eligible = (name: string) => {
  const m = load(name);
  const el = chunkedEligible(m);
  if (!el.ok) throw new Error(el.why);
  return { m, el };
};
const check = (model: Model, variants: string[], cases: ChunkEmuCase[], tol: number, patch?: (src: string) => string) => checkChunkedEmu(model, variants, cases, tol, { seed: 7, exactForms: true, patch });

// chunks of 64 tokens: T = 1 (one chunk: every group but the first empty), 77 (2 chunks, ragged), 300 (5 chunks: G = 2
// and 3 do not divide it), 520 (9 chunks, G = 4: groups of 3, 3, 3 and an empty one)
const f32Cases = (K: number, V: number): ChunkEmuCase[] => [
  { T: 1, B: 1, K, V, init: true },
  { T: 77, B: 2, K, V, init: true },
  { T: 300, B: 1, K, V, init: true },
];

describe.skipIf(!gpp)("grouped split3 on the CPU emulation vs the interpreter", () => {
  it.each([
    ["simple_gla", 1],
    ["gla", 1],
    ["mamba2", 1],
    ["retnet", 1],
    ["linear_attention", 1],
  ] as const)("%s: fp32, G = 2 and 3, T = 1, 77, 300 with an initial state (<= 1e-4)", (name, r) => {
    check(load(name), [`chunked-split3-f32-k32-v16-g2-r${r}`, `chunked-split3-f32-k32-v16-g3-r${r}`, `chunked-split3-f32-k32-v16-g3t-r${r}`, `chunked-split3-f32-k32-v16-g2t4-r${r}`], f32Cases(5, 7), 1e-4);
  }, 600_000);

  it.each(["simple_gla", "gla", "mamba2"])("%s: fp32, G = 4 and 16 over 9 chunks; log decays down to -20 per step (<= 1e-4)", (name) => {
    check(load(name), ["chunked-split3-f32-k32-v16-g4-r1", "chunked-split3-f32-k32-v16-g16-r1", "chunked-split3-f32-k32-v16-g4t-r1", "chunked-split3-f32-k32-v16-g2t4-r1"], [
      { T: 520, B: 1, K: 8, V: 5, init: true },
      { T: 520, B: 1, K: 8, V: 5, init: true, stress: true },
    ], 1e-4);
  }, 600_000);

  // 2-byte operands at the benchmark's key sizes and the phase A auto takes there, 8- to 64-value walks (V = 100 and 40:
  // the last value tile partial)
  it.each([
    ["simple_gla", ["chunked-split3-bf16-k128-v16-g4-r1", "chunked-split3-bf16-k128-v8-g3-r1", "chunked-split3-bf16-k128-v64-g4t-r1", "chunked-split3-bf16-k128-v32-g2t8-r1"], 128, 100],
    ["gla", ["chunked-split3-bf16-k64-v16-mw-g2-r1", "chunked-split3-bf16-k64-v32-mw-g4-r1", "chunked-split3-bf16-k64-v32-mw-g3t-r1"], 64, 64],
    ["mamba2", ["chunked-split3-bf16-k64-v16-g3-r1", "chunked-split3-bf16-k64-v64-g4-r1", "chunked-split3-bf16-k64-v16-g2t-r1", "chunked-split3-bf16-k64-v32-g2t4-r1"], 64, 40],
  ] as const)("%s: bf16, T = 1 and 330 (6 chunks) with an initial state (<= 1e-2)", (name, variants, K, V) => {
    check(load(name), [...variants], [{ T: 330, B: 2, K, V, init: true }, { T: 1, B: 1, K, V, init: true }], 1e-2);
  }, 900_000);

  it("a carry without the group's decay fails (simple_gla, fp32, G = 3)", () => {
    const broken = (src: string) => src.replace("st = wD[(size_t)g * KP + i] * st + wE", "st = st + wE");
    expect(() => check(load("simple_gla"), ["chunked-split3-f32-k32-v16-g3-r1"], [{ T: 300, B: 1, K: 5, V: 7, init: true }], 1e-4, broken)).toThrow();
  }, 600_000);
  it("a readout of S_in in the operand type without P_c fails (gla, fp32, G = 2, -g2t)", () => {
    const broken = (src: string) => src.replace("p[l] = pc[i];", "p[l] = 1.f;");
    expect(() => check(load("gla"), ["chunked-split3-f32-k32-v16-g2t-r1"], [{ T: 300, B: 1, K: 5, V: 7, init: true }], 1e-4, broken)).toThrow();
  }, 600_000);
  it("a carry that stores S_in(g) after the update fails (simple_gla, bf16, G = 3, -g3t)", () => {
    const broken = (src: string) =>
      src.replace("seqc_group_put_in<Cfg>(wI, (size_t)g * KP * VP + r, st);\n    if (in) st = wD[(size_t)g * KP + i] * st + wE[(size_t)g * KP * VP + r];", "if (in) st = wD[(size_t)g * KP + i] * st + wE[(size_t)g * KP * VP + r];\n    seqc_group_put_in<Cfg>(wI, (size_t)g * KP * VP + r, st);");
    expect(() => check(load("simple_gla"), ["chunked-split3-bf16-k64-v16-g3t-r1"], [{ T: 330, B: 1, K: 64, V: 64, init: true }], 1e-2, broken)).toThrow();
  }, 600_000);
  it("a readout over runs of chunks with the run's first P_c for every chunk fails (gla, fp32, G = 2, -g2t4)", () => {
    const broken = (src: string) => src.replace("const float* pc = wg + (size_t)c * KP;", "const float* pc = wg + (size_t)c0 * KP;");
    expect(() => check(load("gla"), ["chunked-split3-f32-k32-v16-g2t4-r1"], [{ T: 520, B: 1, K: 5, V: 7, init: true }], 1e-4, broken)).toThrow();
  }, 600_000);
  it("a readout without P_c fails (gla, fp32, G = 2)", () => {
    const broken = (src: string) => src.replace("const float p = pc[i];", "const float p = 1.f;");
    expect(() => check(load("gla"), ["chunked-split3-f32-k32-v16-g2-r1"], [{ T: 300, B: 1, K: 5, V: 7, init: true }], 1e-4, broken)).toThrow();
  }, 600_000);
});

describe("grouped split3 in the plan", () => {
  it("is lowered for diagonal chunk transitions only; a default plan holds -g<G>t with the measured walk tiles (2-byte I/O, K >= 64) and nothing else grouped", () => {
    for (const [name, has] of [["simple_gla", true], ["gla", true], ["mamba2", true], ["deltanet", false], ["rwkv7", false], ["mlstm", false]] as const) {
      const { m, el } = eligible(name);
      const { forms } = lowerChunked(m, el, { only: (v) => /-g\d+t?\d*-r\d$/.test(v) });
      expect(forms.length > 0, name).toBe(has);
      const all = lowerChunked(m, el);
      const grouped = all.forms.filter((f) => /-g\d+/.test(f.variant)).map((f) => f.variant);
      if (!has) expect(grouped, name).toEqual([]);
      for (const v of grouped) expect(v, name).toMatch(/^chunked-split3-(bf16|f16)-(k128-v32|k64-v64)(-a\d+)?(-mw)?-g(2|3|4|8|16)t-r1$/);
      if (has) expect(grouped.length, name).toBe(2 * 2 * 5);
      expect(all.modules.f32.source).not.toContain("seqc_chunk_walk_g");
      const mixed = lowerChunked(m, el, { ios: [{ io: "bf16", out: "f32" }] });
      for (const mod of Object.values(mixed.modules)) expect(mod.source).not.toContain("seqc_chunk_walk_g");
    }
  });
  it("auto takes -g<G>t with the largest G whose walk fits one wave, at few heads and T >= 16384 (run 17)", () => {
    const pick = (name: string, shape: Record<string, number>) => chooseCudaForm(load(name), shape, "bf16").variant;
    const s3 = { B: 1, T: 32768, H: 8, K: 128, V: 128 };
    expect(pick("simple_gla", s3)).toBe("chunked-split3-bf16-k128-v32-g4t-r1");
    expect(pick("simple_gla", { ...s3, B: 2 })).toBe("chunked-split3-bf16-k128-v32-g2t-r1");
    expect(pick("simple_gla", { ...s3, H: 2 })).toBe("chunked-split3-bf16-k128-v32-g16t-r1");
    expect(pick("simple_gla", { ...s3, B: 4 })).not.toMatch(/-g\d/);
    expect(pick("simple_gla", { ...s3, T: 8192 })).toBe("chunked-split3-bf16-k128-v16-r1");
    expect(pick("mamba2", { B: 1, T: 32768, H: 32, P: 64, N: 64 })).toBe("chunked-split3-bf16-k64-v64-g4t-r1");
    expect(pick("deltanet", s3)).not.toMatch(/-g\d/);
    expect(chooseCudaForm(load("simple_gla"), s3).variant).not.toMatch(/-g\d/);
  });
  it("launches phase A, the grouped walk (B x H x G x value tiles), the carry and the readout", () => {
    const { m, el } = eligible("simple_gla");
    const { forms } = lowerChunked(m, el, { only: (v) => v === "chunked-split3-bf16-k128-v16-g4-r1" });
    expect(forms.map((f) => f.variant)).toEqual(["chunked-split3-bf16-k128-v16-g4-r1"]);
    const steps = forms[0].steps as { entry: string; grid: unknown }[];
    expect(steps.map((s) => s.entry.replace(/^seqc_\w+?_chunk_/, "").split("_")[0])).toEqual(["phaseA", "walkS", "carry", "out"]);
    expect(steps[1].grid).toEqual(["*", "B", expect.anything(), 4, ["ceilDiv", expect.anything(), 16]]);
  });
});

describe("grouped split3 with S_in in the operand type (-g<G>t)", () => {
  it("shares -g<G>'s phase A and walk, and has its own carry and readout", () => {
    const { m, el } = eligible("simple_gla");
    const pick = (v: string) => lowerChunked(m, el, { only: (x) => x === v });
    const a = pick("chunked-split3-bf16-k128-v32-g4-r1"), t = pick("chunked-split3-bf16-k128-v32-g4t-r1");
    const entries = (f: typeof a) => (f.forms[0].steps as { entry: string }[]).map((s) => s.entry);
    const [ea, et] = [entries(a), entries(t)];
    expect(et.slice(0, 2)).toEqual(ea.slice(0, 2));
    expect(et[2]).not.toBe(ea[2]);
    expect(et[3]).not.toBe(ea[3]);
    expect(t.modules.bf16.source).toContain("GRP = 4, GRPT = 1");
    expect(a.modules.bf16.source).not.toContain("GRPT = 1");
  });
  it("-g<G>t<M>: the readout's grid is B x H x G x runs of M chunks of a group x value tiles, after -g<G>t's walk and carry", () => {
    const { m, el } = eligible("simple_gla");
    const pick = (v: string) => lowerChunked(m, el, { only: (x) => x === v }).forms[0].steps as { entry: string; grid: unknown }[];
    const [t, r] = [pick("chunked-split3-bf16-k128-v32-g8t-r1"), pick("chunked-split3-bf16-k128-v32-g8t4-r1")];
    expect(r.slice(0, 3).map((s) => s.entry)).toEqual(t.slice(0, 3).map((s) => s.entry));
    expect(r[3].entry).not.toBe(t[3].entry);
    expect(r[3].grid).toEqual(["*", "B", expect.anything(), ["*", 8, ["ceilDiv", ["ceilDiv", ["ceilDiv", "T", 64], 8], 4]], ["ceilDiv", expect.anything(), 64]]);
  });
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("nvcc -ptx of the grouped split3 kernels (sm_90)", () => {
  it.each([
    ["simple_gla", "bf16", "chunked-split3-bf16-k128-v16-g4-r1"],
    ["gla", "bf16", "chunked-split3-bf16-k128-v16-a512-mw-g8-r1"],
    ["mamba2", "bf16", "chunked-split3-bf16-k64-v16-g4-r1"],
    ["simple_gla", "bf16", "chunked-split3-bf16-k128-v64-g4t-r1"],
    ["gla", "bf16", "chunked-split3-bf16-k128-v32-a512-mw-g2t-r1"],
    ["mamba2", "f32", "chunked-split3-f32-k64-v32-g4t-r1"],
    ["simple_gla", "bf16", "chunked-split3-bf16-k128-v64-g8t4-r1"],
    ["gla", "bf16", "chunked-split3-bf16-k128-v32-a512-mw-g4t8-r1"],
  ])("%s %s %s", (name, io, variant) => {
    const { m, el } = eligible(name);
    const { forms, modules } = lowerChunked(m, el, { only: (v) => v === variant });
    expect(forms.length).toBe(1);
    const { ptx } = nvccPtx(modules[io].source, 90, nvcc, { lowPriority: true });
    for (const e of forms[0].steps.map((s) => (s as { entry: string }).entry)) expect(ptx, e).toMatch(new RegExp(`\\.entry ${e}\\(`));
  }, 300_000);
});
