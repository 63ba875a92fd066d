/**
 * R as prep_fwd's epilogue (compiler/backends/cuda/delta-prep-r.ts: the staged prep_fwd reading the forward's bf16
 * chunk states S and writing TI and bf16 R = X + M S only) on the CPU emulation (test/cuda-emu/emu.h, the TF32 rounding
 * and bf16 mma emulated) against float64 (test/helpers/delta-ref.ts prepFwdChunk; R = X + M S per chunk):
 *   - small shapes (C = 16 / 32 / 48, K != V) at T = 1, ragged chunks and log decays down to -20: TI within 1e-5, R
 *     within 4e-3 (bf16 storage: 2^-9 a rounding), R rows past T exactly 0, every output written;
 *   - the shipped C = 64, K = V = 64 and 128, decay none and scalar, T = 100, states of scale 1 and 4 (the M S term
 *     dominating): R as accurate as today's two kernels on the same case (the staged prep_fwd's M and X, then delta-r's
 *     3xTF32 _zb twin, both emulated): error within 1.02x theirs + 1e-5, and at most 0.5 % of R's bf16 values differing
 *     from theirs; the head-only product (mprod "bf16", _m1) reported beside, and worse where M S dominates;
 *   - deliberately broken copies fail; configurations it does not take are refused; nvcc -cubin for sm_90 where
 *     installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_R_CONFIGS, deltaPrepRModule, type DeltaPrepRConfig, type DeltaPrepRKernel } from "../compiler/backends/cuda/delta-prep-r.ts";
import { DELTA_PRELUDE, deltaPrepModule } from "../compiler/backends/cuda/delta-prep.ts";
import { deltaRModule } from "../compiler/backends/cuda/delta-r.ts";
import { MMA_TF32_PRELUDE } from "../compiler/backends/cuda/lowrank-readout-mma.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { buildEmu, gpp, makeCase, runEmu, type Case } from "./helpers/delta-prep-emu.ts";
import { buildPrepR, prepRReference, randomStates, runPrepR } from "./helpers/delta-prep-r-emu.ts";
import { buildDeltaR, runDeltaR } from "./helpers/delta-r-emu.ts";
import { nChunks } from "./helpers/delta-ref.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

if (!gpp) console.warn("cuda-delta-prep-r-emu.test: g++ is not installed, so the emulated runs are skipped");

const err = (x: Float64Array, want: Float64Array) => (x.every(Number.isFinite) ? relativeError(x, want) : Infinity);
const differing = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + (x !== b[i] ? 1 : 0), 0) / a.length;

/** Kernel k on case cs with states of scale `scale`: TI's and R's errors vs float64 (TI vs its fp32 rounding), after
 * checking every output finite and R's rows past T exactly 0; the run's R. */
function check(bin: string, k: DeltaPrepRKernel, cs: Case, scale: number, seed: number) {
  const S = randomStates(cs, scale, seed), ref = prepRReference(cs, S.values), got = runPrepR(bin, k, cs, S.words);
  const { C, V } = cs.s, nC = nChunks(cs.s);
  expect(got.TI.every(Number.isFinite) && got.R.every(Number.isFinite), `${k.entry} T=${cs.s.T}: every output written`).toBe(true);
  for (let n = 0; n < got.R.length / (C * V); n++) {
    const used = Math.min(C, cs.s.T - (n % nC) * C);
    for (let i = (n * C + used) * V; i < (n + 1) * C * V; i++) if (got.R[i] !== 0) throw new Error(`${k.entry} T=${cs.s.T}: R of chunk ${n} slot ${Math.floor(i / V) % C} (past T) is ${got.R[i]}`);
  }
  return { ti: err(got.TI, Float64Array.from(new Float32Array(ref.TI))), r: err(got.R, ref.R), R: got.R, S, ref };
}

const SMALL: DeltaPrepRConfig[] = [
  { decay: "none", C: 16, K: 16, V: 8 },
  { decay: "scalar", C: 32, K: 16, V: 24 },
  { decay: "scalar", C: 48, K: 32, V: 16 },
];

describe.skipIf(!gpp)("R as prep_fwd's epilogue on the CPU emulation vs float64", () => {
  it("small shapes (C = 16 / 32 / 48, K != V): T = 1, ragged chunks, log decays down to -20; TI < 1e-5, R < 4e-3", () => {
    const m = deltaPrepRModule(SMALL), bin = buildPrepR(m.source, m.kernels), lines: string[] = [];
    for (const k of m.kernels)
      for (const [T, minLd] of [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]) {
        const e = check(bin, k, makeCase(k, "bf16", 2, T, 2, minLd, 41 + T + k.K), 1, 5 + T);
        const line = `${k.entry} T=${T} ld>=${minLd}: TI ${e.ti.toExponential(2)}, R ${e.r.toExponential(2)}`;
        lines.push(line);
        expect(e.ti, line).toBeLessThan(1e-5);
        expect(e.r, line).toBeLessThan(4e-3);
        if (T > 1) expect(e.r, `${line}: bf16 rounding shows`).toBeGreaterThan(1e-4);
      }
    console.log(lines.join("\n"));
  }, 900_000);

  it.each([64, 128])("the shipped K = V = %i entries, decay none and scalar, T = 100: as accurate as prep_fwd + delta-r's _zb twin", (K) => {
    const shapes = (["none", "scalar"] as const).map((decay) => ({ decay, C: 64, K, V: K }));
    const m = deltaPrepRModule([...shapes, ...shapes.map((s) => ({ ...s, mprod: "bf16" as const }))]), bin = buildPrepR(m.source, m.kernels);
    const old = deltaPrepModule(shapes.map((s) => ({ op: "fwd" as const, tin: "bf16" as const, ...s, math: "tf32" as const, staged: true, scores: "bf16" as const })));
    const binO = buildEmu(old.source, old.kernels);
    const rm = deltaRModule([{ C: 64, K, V: K, sin: "bf16", zout: "bf16", math: "tf32x3" }]), binR = buildDeltaR(rm.source, rm.kernels, "delta-r-mma", true);
    const lines: string[] = [];
    shapes.forEach((s, i) => {
      for (const scale of [1, 4]) {
        const cs = () => makeCase(s, "bf16", K === 128 ? 1 : 2, 100, 2, -1, 17 + K + scale);
        const x2 = check(bin, m.kernels[i], cs(), scale, 3 + scale), m1 = check(bin, m.kernels[shapes.length + i], cs(), scale, 3 + scale);
        const o = runEmu(binO, old.kernels[i], cs(), new Float64Array(1));
        const R2 = runDeltaR(binR, rm.kernels[0], { N: x2.S.values.length / (K * K), M: o.M, X: o.X, S: x2.S.values }, false).R;
        const eo = err(R2, x2.ref.R), d = differing(x2.R, R2);
        const line = `${m.kernels[i].entry} S scale ${scale}: R ${x2.r.toExponential(3)} (two kernels ${eo.toExponential(3)}; ${(100 * d).toFixed(2)} % of R's values differ from theirs), TI ${x2.ti.toExponential(2)}; head-only (_m1) R ${m1.r.toExponential(3)}, ${(100 * differing(m1.R, R2)).toFixed(2)} % differ`;
        lines.push(line);
        expect(x2.r, line).toBeLessThan(1.02 * eo + 1e-5);
        expect(d, line).toBeLessThan(0.005);
        expect(x2.ti, line).toBeLessThan(1e-5);
        expect(differing(m1.R, R2), `${line}: the tail shows`).toBeGreaterThan(d);
        if (scale === 4) expect(m1.r, `${line}: head only is worse where M S dominates`).toBeGreaterThan(1.1 * x2.r);
        // the float64 reference rounded to bf16 is what R can be at best
        expect(err(bf16(x2.ref.R).values, x2.ref.R)).toBeLessThan(x2.r);
      }
    });
    console.log(lines.join("\n"));
  }, 900_000);

  it("deliberately broken copies fail: M's tail product dropped; TL V a k-block short; M's decay a slot late; S0's rows a row off; rows past T not zeroed", () => {
    const base: DeltaPrepRConfig = { decay: "scalar", C: 32, K: 16, V: 24 };
    const good = deltaPrepRModule([base]), gbin = buildPrepR(good.source, good.kernels);
    const cs = () => makeCase(base, "bf16", 1, 40, 2, -1, 8);
    const ok = check(gbin, good.kernels[0], cs(), 4, 9).r;
    for (const [from, to] of [
      ["\n        seqc_dps_mma(acc[s], ml, fb);", ""],
      ["for (u32 k0 = 0u; k0 < r0 + 16u; k0 += 8u) {\n      u32 fa[4];", "for (u32 k0 = 0u; k0 < r0 + 8u; k0 += 8u) {\n      u32 fa[4];"],
      ["sE[(k0 + tg)] * seqc_h2f(hW", "sE[32u + (k0 + tg)] * seqc_h2f(hW"],
      ["gS + 8u * x);", "gS + 8u * ((x + 3u) % 48u));"],
      ["else *(uint4*)d = make_uint4(0u, 0u, 0u, 0u);", ""],
    ] as const) {
      const m = deltaPrepRModule([base], (src) => {
        expect(src, from).toContain(from);
        return src.replace(from, to);
      });
      let caught: boolean;
      try {
        caught = check(buildPrepR(m.source, m.kernels), m.kernels[0], cs(), 4, 9).r > 1.1 * ok;
      } catch {
        caught = true;
      }
      expect(caught, `${from} -> ${to}`).toBe(true);
    }
  }, 600_000);

  it("configurations it does not take are refused", () => {
    expect(() => deltaPrepRModule([{ decay: "key" as "none", C: 64, K: 64, V: 64 }])).toThrow(/decay/);
    expect(() => deltaPrepRModule([{ decay: "none", C: 64, K: 24, V: 16 }])).toThrow(/multiples of 16/);
    expect(() => deltaPrepRModule([{ decay: "none", C: 16, K: 64, V: 16 }])).toThrow(/M's tail|U \/ KK/);
    expect(() => deltaPrepRModule([{ decay: "none", C: 64, K: 64, V: 512 }])).toThrow(/S0/);
  });
});

describe.skipIf(!findNvcc())("R as prep_fwd's epilogue: nvcc", () => {
  it("nvcc -cubin for sm_90 (C = 64, K = V = 64 and 128, both products): no spills; the staged prep_fwd's shared memory", () => {
    const m = deltaPrepRModule(DELTA_PREP_R_CONFIGS);
    expect(m.kernels.map((k) => k.sharedBytes)).toEqual([72704, 74000, 105472, 106768, 72704, 74000, 105472, 106768]);
    const usage = ptxasUsage(findNvcc()!, DELTA_PRELUDE + MMA_TF32_PRELUDE + m.source, m.kernels.map((k) => k.entry));
    for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 128], e).toEqual([0, 0, true]);
    console.log(`delta prep_r ptxas sm_90: ${[...usage].map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
  }, 300_000);
});
