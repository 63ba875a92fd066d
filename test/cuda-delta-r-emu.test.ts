/**
 * The delta backward's reads from saved chunk states (compiler/backends/cuda/delta-r.ts; docs/delta-backward.md "Chunk
 * states from the forward") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against float64:
 *   R[n] = X[n] + M[n] S[n],  S0[n] = float(S[n])  (S0 written only where given)
 * S in bf16 (bf16-exact values, read as the forward's workspace holds them) and fp32, N = 1 and 5 chunks; small
 * configurations (K != V, one and two rows a thread) and the shipped C = 64, K = V = 64 and 128; S0 nullptr leaves S0
 * unwritten; deliberately broken copies (a key of the four dropped, X not added, S read a row off) must fail; the torch
 * target's modules hold them (kernels.deltaStates) for DeltaNet and Gated DeltaNet, not for RWKV-7; nvcc -cubin for sm_90
 * where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_R_CONFIGS, DELTA_R_ZB_CONFIGS, deltaRModule, type DeltaRConfig, type DeltaRKernel } from "../compiler/backends/cuda/delta-r.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { buildDeltaR, deltaRData, deltaRReference, runDeltaR } from "./helpers/delta-r-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-r-emu.test: g++ is not installed, so the emulated runs are skipped");

const data = deltaRData, reference = deltaRReference, run = runDeltaR;
const build = (source: string, kernels: DeltaRKernel[]) => buildDeltaR(source, kernels, "delta-r", false);

/** R's error (Infinity where not every element is finite), whether S0 equals S exactly (s0) or is left unwritten. */
function check(bin: string, k: DeltaRKernel, N: number, seed: number, s0: boolean): number {
  const d = data(k, N, seed), got = run(bin, k, d, s0);
  if (s0) expect(Array.from(got.S0), `${k.entry} S0`).toEqual(Array.from(d.S));
  else expect(got.S0.every(Number.isNaN), `${k.entry} S0 unwritten`).toBe(true);
  return got.R.every(Number.isFinite) ? relativeError(got.R, reference(k, d)) : Infinity;
}

function checkAll(configs: readonly DeltaRConfig[], Ns: number[]): void {
  const m = deltaRModule(configs), bin = build(m.source, m.kernels);
  for (const k of m.kernels)
    for (const N of Ns)
      for (const s0 of [true, false]) {
        const e = check(bin, k, N, 3 + N + k.K, s0);
        expect(e, `${k.entry} N=${N} S0=${s0}`).toBeLessThan(1e-6);
      }
}

const SMALL: DeltaRConfig[] = [
  { C: 64, K: 8, V: 32, sin: "bf16" }, // 8 column groups: 32 row groups, 2 rows a thread
  { C: 64, K: 24, V: 16, sin: "f32" }, // 4 column groups: 64 row groups, 1 row a thread
];

describe.skipIf(!gpp)("the delta backward's reads from saved chunk states on the CPU emulation vs float64", () => {
  it("records: op r, C = 64, K = V = 64 and 128, bf16 and f32 states; shared memory M and S in fp32", () => {
    const recs = [
      ["seqc_delta_r_c64k64v64_bf16", "r", "bf16", 256, 32768], ["seqc_delta_r_c64k64v64_f32", "r", "f32", 256, 32768],
      ["seqc_delta_r_c64k128v128_bf16", "r", "bf16", 256, 98304], ["seqc_delta_r_c64k128v128_f32", "r", "f32", 256, 98304],
    ];
    // then their siblings writing bf16 R and S0 (zout, _zb); the tensor-core twins after them (cuda-delta-r-mma-emu)
    const fma = deltaRModule().kernels.slice(0, 8);
    expect(fma.map((k) => [k.entry, k.op, k.sin, k.threads, k.sharedBytes])).toEqual([...recs, ...recs.map(([e, ...r]) => [`${e}_zb`, ...r])]);
    expect(fma.map((k) => k.zout)).toEqual([...Array(4).fill(undefined), ...Array(4).fill("bf16")]);
    expect(fma.map((k) => k.math)).toEqual(Array(8).fill(undefined));
    expect(() => deltaRModule([{ C: 16, K: 8, V: 8, sin: "f32" }])).toThrow(/no plan/);
  });

  it("small configurations (K != V, one and two rows a thread): N = 1 and 5, S0 given and nullptr", () => {
    checkAll(SMALL, [1, 5]);
  }, 300_000);

  it("the shipped C = 64, K = V = 64 and 128 entries, bf16 and f32 states: N = 1 and 3, S0 given and nullptr", () => {
    checkAll(DELTA_R_CONFIGS, [1, 3]);
  }, 600_000);

  it("deliberately broken copies fail: a key of the four dropped; X not added; S read a row off", () => {
    const c = SMALL[0];
    for (const [from, to] of [
      ["m.x * s[0][j] + m.y * s[1][j] + m.z * s[2][j] + m.w * s[3][j]", "m.x * s[0][j] + m.y * s[1][j] + m.z * s[2][j]"],
      ["acc[r][0] = x.x; acc[r][1] = x.y;", "acc[r][0] = 0.f * x.x; acc[r][1] = x.y;"],
      ["&sS[(l + q) * ", "&sS[(l + q + (q == 3u && l == 0u ? 1u : 0u)) * "],
    ]) {
      const m = deltaRModule([c]);
      expect(m.source.includes(from), from).toBe(true);
      const bin = build(m.source.replace(from, to), m.kernels);
      expect(check(bin, m.kernels[0], 2, 9, true), to).toBeGreaterThan(1e-3);
    }
  }, 300_000);
});

describe.skipIf(!gpp)("the delta reads writing bf16 R and S0 (zout \"bf16\", LR_DELTA_ZBF16)", () => {
  it("small and shipped configurations, bf16 and f32 states: R = bf16(the fp32 sibling's R) bit for bit, S0 = bf16(S) (bf16 S: S itself) or unwritten; a broken copy fails", () => {
    const cs = [...SMALL, ...DELTA_R_CONFIGS], zs = cs.map((c) => ({ ...c, zout: "bf16" as const }));
    const m = deltaRModule([...cs, ...zs]), bin = build(m.source, m.kernels);
    expect(zs.map((c) => deltaRModule([c]).kernels[0].entry)).toEqual(cs.map((c) => `${deltaRModule([c]).kernels[0].entry}_zb`));
    cs.forEach((c, i) => {
      const f = m.kernels[i], z = m.kernels[cs.length + i];
      for (const s0 of [true, false]) {
        const d = data(c, 3, 5 + i), a = run(bin, f, d, s0), b = run(bin, z, d, s0), want = bf16(a.R).values;
        expect(b.R.findIndex((x, j) => !Object.is(x, want[j])), `${z.entry} R`).toBe(-1);
        expect(relativeError(b.R, a.R), `${z.entry}: the rounding shows`).toBeGreaterThan(1e-4);
        if (s0) expect(Array.from(b.S0), `${z.entry} S0`).toEqual(Array.from(bf16(d.S).values));
        else expect(b.S0.every((x, j) => (j % 2 ? Number.isNaN(x) : x === 0)), `${z.entry} S0 unwritten (the float NaNs' halves read as bf16: 0, NaN)`).toBe(true);
      }
    });
    const z = { ...SMALL[0], zout: "bf16" as const }, mb = deltaRModule([z]), from = "acc[r][0], acc[r][1], acc[r][2], acc[r][3]);";
    expect(mb.source).toContain(from);
    const bb = build(mb.source.replace(from, "acc[r][1], acc[r][0], acc[r][2], acc[r][3]);"), mb.kernels), d = data(z, 2, 9);
    expect(relativeError(run(bb, mb.kernels[0], d, false).R, reference(z, d))).toBeGreaterThan(1e-2);
  }, 300_000);
});

describe("the delta reads from saved states in the torch target", () => {
  it("kernels.deltaStates: DeltaNet and Gated DeltaNet (no / scalar decay) hold deltaRModule(); RWKV-7 (per-key decay) none", () => {
    const kernels = (name: string) => buildTorchPlans(loadProgram([`stdlib/${name}.seq`]).models[0]).kernels ?? {};
    for (const name of ["deltanet", "gated_deltanet"]) expect(kernels(name).deltaStates, name).toEqual(deltaRModule());
    expect(kernels("rwkv7").deltaStates).toBeUndefined();
  }, 120_000);
});

describe.skipIf(!findNvcc())("the delta reads from saved states: nvcc", () => {
  it("nvcc -cubin for sm_90: no spills", () => {
    const m = deltaRModule();
    const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 255], e).toEqual([0, 0, true]);
    console.log(`delta r ptxas sm_90: ${[...usage].map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
  }, 300_000);
});
