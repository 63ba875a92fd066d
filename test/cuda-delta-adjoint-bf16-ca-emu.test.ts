/**
 * The bf16 adjoint's siblings loading every chunk input by cp.async (compiler/backends/cuda/delta-adjoint-bf16.ts
 * DELTA_ADJ_BF16_CA_CONFIGS, load "ca", entries _zb_ca and _zb_ob_ca; runtime/torch/seqc_delta_bwd.py LR_DELTA_ADJ_LOAD)
 * on the CPU emulation of CUDA (test/cuda-emu/emu.h): the same algebra in the same order as the zin twin (_zb) and its
 * bf16-gradient sibling (_zb_ob), so on the same inputs every output is theirs bit for bit (dld too: aC's partials from
 * LE's shared copy, the suffix sums as one chain); within 1e-2 of the float64 formulas (test/helpers/delta-ref.ts).
 * Broken copies (DR's copy reading R; the chain storing a row's sum before adding the row) fail. The emulation runs
 * cp.async as a copy and its waits as nothing: a missing wait is not caught here. nvcc -cubin for sm_90 (where
 * installed): no spills, <= 128 registers.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_ADJ_PRELUDE, type DeltaAdjKernel } from "../compiler/backends/cuda/delta-adjoint.ts";
import { DELTA_ADJ_BF16_CA_CONFIGS, DELTA_ADJ_BF16_OUT_CONFIGS, DELTA_ADJ_BF16_PRELUDE, DELTA_ADJ_BF16_ZIN_CONFIGS, deltaAdjBf16Kernel, deltaAdjBf16Source } from "../compiler/backends/cuda/delta-adjoint-bf16.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { adjData as data, adjEmu, adjErrors as errors, adjRun, fmt, worst, type AdjData } from "./helpers/delta-adjoint-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;

const source = (ks: DeltaAdjKernel[]) => DELTA_ADJ_PRELUDE + DELTA_ADJ_BF16_PRELUDE + ks.map(deltaAdjBf16Source).join("");
const buildEmu = (ks: DeltaAdjKernel[], patch?: (src: string) => string) => adjEmu(source(ks), ks, "delta-adjoint-bf16-ca", false, patch);
const rounded = (d: AdjData): AdjData => ({ ...d, R: bf16(d.R).values, S0: bf16(d.S0).values, LE: bf16(d.LE).values, DR: bf16(d.DR).values });
const OUT = ["dq", "du", "dw", "dk", "dv", "dld"] as const;

/** The index of the first output value of `a` that is not `b`'s bit for bit, or -1, each output. */
function mismatches(a: ReturnType<typeof adjRun>, b: ReturnType<typeof adjRun>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of OUT) if (b[o]) out[o] = a[o]!.findIndex((x, j) => !Object.is(x, b[o]![j]));
  return out;
}
const none = (m: Record<string, number>) => Object.fromEntries(Object.keys(m).map((x) => [x, -1]));

describe("the bf16 adjoint's cp.async-loading siblings (load ca, _zb_ca, _zb_ob_ca)", () => {
  const cas = DELTA_ADJ_BF16_CA_CONFIGS.map(deltaAdjBf16Kernel);
  const sib = [...DELTA_ADJ_BF16_ZIN_CONFIGS, ...DELTA_ADJ_BF16_OUT_CONFIGS].map(deltaAdjBf16Kernel);

  it("the configurations: the zin twins' and their _ob siblings' entries with _ca, threads and shared memory as theirs", () => {
    expect(cas.map((k) => [k.entry, k.threads, k.sharedBytes])).toEqual(sib.map((k) => [`${k.entry}_ca`, k.threads, k.sharedBytes]));
    expect(() => deltaAdjBf16Kernel({ ...DELTA_ADJ_BF16_CA_CONFIGS[0], zin: undefined })).toThrow(/load/);
    // no register staging of R, LE, S0, DR left: every chunk input by cp.async
    const a = deltaAdjBf16Source(DELTA_ADJ_BF16_ZIN_CONFIGS[3]), b = deltaAdjBf16Source(DELTA_ADJ_BF16_CA_CONFIGS[3]);
    expect(a.includes("u32 pre[")).toBe(true);
    expect(b.includes("u32 pre[")).toBe(false);
    expect(b.split("seqc_dab_wait1();").length - 1).toBe(1);
  });

  it.skipIf(!gpp)("every output the zin twin's (or its _ob sibling's) bit for bit; within 1e-2 of float64; broken copies fail", () => {
    const bin = buildEmu([...sib, ...cas]);
    cas.forEach((k, i) => {
      const z = sib[i];
      const cases = k.decay === "none" ? [[100, 0], [1, 0]] : [[100, -0.3], [100, -20], [1, -5]];
      for (const [T, minLd] of (k.aout ? cases.slice(0, 1) : cases)) {
        const d = rounded(data(k, T, minLd, 57 + T + i));
        const m = mismatches(adjRun(bin, k, d), adjRun(bin, z, d));
        expect(m, `${k.entry} T=${T} ld>=${minLd}`).toEqual(none(m));
        const e = errors(bin, k, d);
        expect(worst(e), `${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-2);
        console.log(`${k.entry} T=${T} ld>=${minLd}: bitwise ${z.entry}; vs float64 ${fmt(e)}`);
      }
    });
    // broken copies: DR's copy reading R; the chain storing each suffix sum before adding its row
    const k = cas[3], z = sib[3], d = rounded(data(k, 100, -0.3, 23));
    const b1 = buildEmu([k, z], (src) => src.replace(/seqc_dab_cp16\(d, DR \+/, "seqc_dab_cp16(d, R +"));
    expect(mismatches(adjRun(b1, k, d), adjRun(b1, z, d)).dw).toBeGreaterThanOrEqual(0);
    const b2 = buildEmu([k, z], (src) => src.replace("{ s += sRow[a]; sRow[a] = s; }", "{ sRow[a] = s; s += sRow[a]; }"));
    expect(mismatches(adjRun(b2, k, d), adjRun(b2, z, d)).dld).toBeGreaterThanOrEqual(0);
  }, 1_200_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles every entry for sm_90; ptxas: no spills, <= 128 registers", () => {
    for (const [e, u] of ptxasUsage(findNvcc()!, source(cas), cas.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(128);
      console.log(`${e}: ${u.registers} registers`);
    }
  }, 200_000);
});
