/**
 * The bf16 adjoint's siblings storing dQ, dU, dW, dK, dV as bf16 (compiler/backends/cuda/delta-adjoint-bf16.ts
 * DELTA_ADJ_BF16_OUT_CONFIGS, aout "bf16", entries _zb_ob; runtime/torch/seqc_delta_bwd.py LR_DELTA_ADJ_OUT) on the CPU
 * emulation of CUDA (test/cuda-emu/emu.h): on the same inputs each output is the float32 sibling's (_zb) rounded to
 * nearest even, bit for bit (the same accumulators, only the stores differ), dLD bit-identical (float32 in both, from the
 * same float32 values); within 1e-2 of the float64 formulas (test/helpers/delta-ref.ts). A broken copy (the two values
 * of a store swapped) fails the bitwise check. nvcc -cubin for sm_90 (where installed): no spills, <= 128 registers.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_ADJ_PRELUDE, type DeltaAdjKernel } from "../compiler/backends/cuda/delta-adjoint.ts";
import { DELTA_ADJ_BF16_OUT_CONFIGS, DELTA_ADJ_BF16_PRELUDE, DELTA_ADJ_BF16_ZIN_CONFIGS, deltaAdjBf16Kernel, deltaAdjBf16Source } from "../compiler/backends/cuda/delta-adjoint-bf16.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { adjData as data, adjEmu, adjErrors as errors, adjRun, fmt, worst, type AdjData } from "./helpers/delta-adjoint-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;

const source = (ks: DeltaAdjKernel[]) => DELTA_ADJ_PRELUDE + DELTA_ADJ_BF16_PRELUDE + ks.map(deltaAdjBf16Source).join("");
const buildEmu = (ks: DeltaAdjKernel[], patch?: (src: string) => string) => adjEmu(source(ks), ks, "delta-adjoint-bf16-out", false, patch);
const rounded = (d: AdjData): AdjData => ({ ...d, R: bf16(d.R).values, S0: bf16(d.S0).values, LE: bf16(d.LE).values, DR: bf16(d.DR).values });
const TOK = ["dq", "du", "dw", "dk", "dv"] as const;

/** The index of the first output value of `ob` that is not `zb`'s rounded to bf16 (dld: not bit-identical), or -1 each. */
function mismatches(ob: ReturnType<typeof adjRun>, zb: ReturnType<typeof adjRun>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of TOK) {
    const want = bf16(zb[o]!).values;
    out[o] = ob[o]!.findIndex((x, j) => !Object.is(x, want[j]));
  }
  if (zb.dld) out.dld = ob.dld!.findIndex((x, j) => !Object.is(x, zb.dld![j]));
  return out;
}

describe("the bf16 adjoint's bf16-gradient siblings (aout, _zb_ob)", () => {
  const zs = DELTA_ADJ_BF16_ZIN_CONFIGS.map(deltaAdjBf16Kernel), os = DELTA_ADJ_BF16_OUT_CONFIGS.map(deltaAdjBf16Kernel);

  it("the configurations: the _zb twins' entries with _ob, threads and shared memory as theirs", () => {
    expect(os.map((k) => [k.entry, k.threads, k.sharedBytes])).toEqual(zs.map((k) => [`${k.entry}_ob`, k.threads, k.sharedBytes]));
    expect(() => deltaAdjBf16Kernel({ ...DELTA_ADJ_BF16_OUT_CONFIGS[0], aout: "f16" as "bf16" })).toThrow(/aout/);
    // only the stores and the output pointers' type differ
    const a = deltaAdjBf16Source(DELTA_ADJ_BF16_ZIN_CONFIGS[1]), b = deltaAdjBf16Source(DELTA_ADJ_BF16_OUT_CONFIGS[1]);
    expect(b.split("seqc_dab_pack(").length - a.split("seqc_dab_pack(").length).toBe(5);
    expect(b.split("unsigned short* __restrict__ d").length - 1).toBe(5);
  });

  it.skipIf(!gpp)("every output the _zb sibling's rounded to nearest even, bit for bit (dld bit-identical); within 1e-2 of float64; a broken copy fails", () => {
    const bin = buildEmu([...zs, ...os]);
    os.forEach((o, i) => {
      const z = zs[i];
      for (const [T, minLd] of (o.decay === "none" ? [[100, 0], [1, 0]] : [[100, -0.3], [100, -20], [1, -5]])) {
        const d = rounded(data(o, T, minLd, 91 + T + i));
        const m = mismatches(adjRun(bin, o, d), adjRun(bin, z, d));
        expect(m, `${o.entry} T=${T} ld>=${minLd}`).toEqual(Object.fromEntries(Object.keys(m).map((x) => [x, -1])));
        const e = errors(bin, o, d);
        expect(worst(e), `${o.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-2);
        console.log(`${o.entry} T=${T} ld>=${minLd}: bitwise the rounded _zb outputs; vs float64 ${fmt(e)}`);
      }
    });
    // a store's two values swapped
    const o = os[1], d = rounded(data(o, 100, -0.3, 19));
    const broken = buildEmu([o, zs[1]], (src) => src.replace("= seqc_dab_pack(dk[j][2u * hh], dk[j][2u * hh + 1u]);", "= seqc_dab_pack(dk[j][2u * hh + 1u], dk[j][2u * hh]);"));
    expect(mismatches(adjRun(broken, o, d), adjRun(broken, zs[1], d)).dk).toBeGreaterThanOrEqual(0);
  }, 900_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles every entry for sm_90; ptxas: no spills, <= 128 registers", () => {
    for (const [e, u] of ptxasUsage(findNvcc()!, source([...zs, ...os]), [...zs, ...os].map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
      console.log(`${e}: ${u.registers} registers`);
    }
  }, 200_000);
});
