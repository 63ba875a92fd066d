/**
 * The tensor-core twins of the delta backward's reads from saved chunk states (compiler/backends/cuda/delta-r-mma.ts,
 * math "tf32x3") on the CPU emulation of CUDA (test/cuda-emu/emu.h + mma-tf32.h) against float64:
 *   R[n] = X[n] + M[n] S[n],  S0[n] = S[n] as written (only where given)
 * as accurate as the fp32 FMA kernel (< 1e-6: M split into TF32 head and tail, fp32 S too; bf16 S exact in TF32) for
 * small configurations (C 16 / 32 / 64, one and two column tiles a warp) and the shipped C = 64, K = V = 64 and 128 with
 * bf16 and f32 states; S0 nullptr leaves S0 unwritten; the _zb siblings write bf16(their fp32 twin's R) bit for bit and
 * S0 = bf16(S); deliberately broken copies (M's tail product dropped, X not added, a B fragment a key off) fail; the
 * default module holds them after the FMA kernels; nvcc -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_R_CONFIGS, DELTA_R_MMA_CONFIGS, DELTA_R_ZB_CONFIGS, deltaRModule, type DeltaRConfig, type DeltaRKernel } from "../compiler/backends/cuda/delta-r.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { buildDeltaR, deltaRData, deltaRReference, runDeltaR } from "./helpers/delta-r-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-r-mma-emu.test: g++ is not installed, so the emulated runs are skipped");

const data = deltaRData, reference = deltaRReference, run = runDeltaR;
const build = (source: string, kernels: DeltaRKernel[]) => buildDeltaR(source, kernels, "delta-r-mma", true);

const err = (R: Float64Array, want: Float64Array) => (R.every(Number.isFinite) ? relativeError(R, want) : Infinity);

const SMALL: DeltaRConfig[] = [
  { C: 64, K: 8, V: 32, sin: "bf16", math: "tf32x3" }, // 4 row blocks x 2 column groups of 16: two tiles a warp
  { C: 32, K: 24, V: 32, sin: "f32", math: "tf32x3" }, // 2 row blocks x 4 column groups of 8
  { C: 16, K: 16, V: 64, sin: "f32", math: "tf32x3" }, // 1 row block x 8 column groups
];

function checkAll(configs: readonly DeltaRConfig[], Ns: number[]): string[] {
  const m = deltaRModule(configs), bin = build(m.source, m.kernels), seen: string[] = [];
  for (const k of m.kernels)
    for (const N of Ns)
      for (const s0 of [true, false]) {
        const d = data(k, N, 3 + N + k.K), got = run(bin, k, d, s0);
        if (s0) expect(Array.from(got.S0), `${k.entry} S0`).toEqual(Array.from(d.S));
        else expect(got.S0.every(Number.isNaN), `${k.entry} S0 unwritten`).toBe(true);
        const e = err(got.R, reference(k, d));
        expect(e, `${k.entry} N=${N} S0=${s0}`).toBeLessThan(1e-6);
        seen.push(`${k.entry} N=${N} ${e.toExponential(1)}`);
      }
  return seen;
}

describe.skipIf(!gpp)("the delta reads' tensor-core twins on the CPU emulation vs float64", () => {
  it("records: the default module ends with the twins of the FMA kernels and their _zb siblings (entry + _tf32x3)", () => {
    const recs = deltaRModule().kernels, old = [...DELTA_R_CONFIGS, ...DELTA_R_ZB_CONFIGS];
    expect(recs.length).toBe(2 * old.length);
    expect(recs.slice(old.length).map((k) => [k.entry, k.math, k.zout, k.threads])).toEqual(
      old.map((c) => [`seqc_delta_r_c${c.C}k${c.K}v${c.V}_${c.sin}_tf32x3${c.zout ? "_zb" : ""}`, "tf32x3", c.zout, 256]),
    );
    // the FMA kernels' source unchanged: the default module starts with exactly their module's text
    expect(deltaRModule().source.startsWith(deltaRModule(old).source)).toBe(true);
    // K = 128: M 64 x 132 fp32 + S 128 x 136 bf16 = 68608 bytes (three blocks an SM), f32 S 103424
    expect(recs.filter((k) => k.math && !k.zout).map((k) => k.sharedBytes)).toEqual([17408 + 9216, 17408 + 18432, 33792 + 34816, 33792 + 69632]);
    expect(() => deltaRModule([{ C: 48, K: 8, V: 32, sin: "f32", math: "tf32x3" }])).toThrow(/no plan/);
  });

  it("small configurations (C 16 / 32 / 64, 1-2 column tiles a warp): N = 1 and 3, S0 given and nullptr, < 1e-6", () => {
    console.log(checkAll(SMALL, [1, 3]).join("; "));
  }, 300_000);

  it("the shipped C = 64, K = V = 64 and 128 twins, bf16 and f32 states: N = 2, S0 given and nullptr, < 1e-6", () => {
    console.log(checkAll(DELTA_R_MMA_CONFIGS.filter((c) => !c.zout), [2]).join("; "));
  }, 600_000);

  it("_zb siblings: R = bf16(the fp32 twin's R) bit for bit, S0 = bf16(S) or unwritten", () => {
    const cs = [SMALL[0], SMALL[1], ...DELTA_R_MMA_CONFIGS.filter((c) => !c.zout && c.K === 64)], zs = cs.map((c) => ({ ...c, zout: "bf16" as const }));
    const m = deltaRModule([...cs, ...zs]), bin = build(m.source, m.kernels);
    cs.forEach((c, i) => {
      const f = m.kernels[i], z = m.kernels[cs.length + i];
      expect(z.entry).toBe(`${f.entry}_zb`);
      for (const s0 of [true, false]) {
        const d = data(c, 2, 5 + i), a = run(bin, f, d, s0), b = run(bin, z, d, s0), want = bf16(a.R).values;
        expect(b.R.findIndex((x, j) => !Object.is(x, want[j])), `${z.entry} R`).toBe(-1);
        if (s0) expect(Array.from(b.S0), `${z.entry} S0`).toEqual(Array.from(bf16(d.S).values));
        else expect(b.S0.every((x, j) => (j % 2 ? Number.isNaN(x) : x === 0)), `${z.entry} S0 unwritten`).toBe(true);
      }
    });
  }, 300_000);

  it("deliberately broken copies fail: M's tail product dropped (bf16 and f32 S); X not added; B a key off", () => {
    for (const [c, from, to, over] of [
      [SMALL[0], "seqc_mma_tf32(acc[j], al, b); seqc_mma_tf32(acc[j], ah, b);", "seqc_mma_tf32(acc[j], ah, b);", 1e-5],
      [SMALL[1], "seqc_mma_tf32(acc[j], ah, bl); ", "", 1e-5],
      [SMALL[1], "acc[j][0] = x0.x;", "acc[j][0] = 0.f;", 1e-2],
      [SMALL[2], "(k0 + tg + 4u) * ", "(k0 + tg + 5u) % 16u * "],
    ] as [DeltaRConfig, string, string, number?][]) {
      const m = deltaRModule([c]);
      expect(m.source.includes(from), from).toBe(true);
      const bin = build(m.source.replace(from, to), m.kernels), d = data(c, 2, 9);
      expect(err(run(bin, m.kernels[0], d, true).R, reference(c, d)), to).toBeGreaterThan(over ?? 1e-2);
    }
  }, 300_000);
});

describe.skipIf(!findNvcc())("the delta reads' tensor-core twins: nvcc", () => {
  it("nvcc -cubin for sm_90: no spills", () => {
    const m = deltaRModule(DELTA_R_MMA_CONFIGS);
    const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 255], e).toEqual([0, 0, true]);
    console.log(`delta r tf32x3 ptxas sm_90: ${[...usage].map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
  }, 300_000);
});
