/**
 * The row-layout prep twins with batched loads (compiler/backends/cuda/delta-prep.ts config `batched: true`: every
 * 16-byte load of the block issued into registers, then the stores; V / dY kept as bf16 rows in shared memory; prep_bwd's
 * per-key NN with W's loads first) on the
 * CPU emulation (test/cuda-emu/emu.h, TF32 rounding and m16n8k8 fragments of test/cuda-emu/mma-tf32.h): every output
 * equal bit for bit to the same twin without batching (the shared-memory contents are the same) and within 2e-3 of the
 * float64 reference (test/helpers/delta-ref.ts), M and X rows past T exactly 0 (the helper's errors()). Per-key decay
 * (RWKV-7's twins) on small shapes (T = 1, ragged, log decays a key down to -20) and the shipped K = V = 64 ones, and
 * the decay none / scalar twins on a small shape. Broken copies must fail; nvcc -cubin for sm_90 where installed: no
 * spills.
 */
import { describe, expect, it } from "vitest";
import { DELTA_PREP_KEY_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { buildEmu, errors, expectBrokenCaught, expectNoSpills, fmt, gpp, makeCase, runEmu, worst, type Shape } from "./helpers/delta-prep-emu.ts";
import { nChunks, prepAll, prepFwdChunk } from "./helpers/delta-ref.ts";

if (!gpp) console.warn("cuda-delta-prep-batched-emu.test: g++ is not installed, so the emulated runs are skipped");

const both = (s: Shape): DeltaPrepConfig<DeltaPrepDecay>[] => (["fwd", "bwd"] as const).map((op) => ({ op, tin: "bf16", math: "tf32", ...s }));

/** Each config batched and not, on its cases: equal outputs, and the batched one within 2e-3 of float64. */
function checkBatched(configs: readonly DeltaPrepConfig<DeltaPrepDecay>[], seed: number): void {
  const plain = deltaPrepModule(configs), mine = deltaPrepModule(configs.map((c) => ({ ...c, batched: true })));
  const binP = buildEmu(plain.source, plain.kernels), binB = buildEmu(mine.source, mine.kernels);
  const lines: string[] = [];
  mine.kernels.forEach((k, i) => {
    for (const [T, minLd] of k.C === 64 ? [[100, -1], [100, -20]] : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]) {
      const cs = makeCase(k, "bf16", 2, T, 2, minLd, seed + T + k.K);
      const e = errors(binB, k, cs);
      const line = `${k.entry} (C ${k.C}, K ${k.K}, V ${k.V}) T=${T} ld>=${minLd}: ${fmt(e)}`;
      lines.push(line);
      expect(worst(e), line).toBeLessThan(2e-3);
      const s = cs.s, ti = Float64Array.from(new Float32Array(prepAll(s, (b, h, c) => prepFwdChunk(cs.inp, s, b, h, c), cs.inp.perKey).TI));
      const a = runEmu(binB, k, cs, ti), b = runEmu(binP, plain.kernels[i], cs, ti);
      for (const o of Object.keys(a) as (keyof typeof a)[]) expect(Buffer.from(a[o].buffer).equals(Buffer.from(b[o].buffer)), `${line}: ${o} as the unbatched twin's`).toBe(true);
    }
  });
  expect(nChunks({ B: 1, T: 100, H: 1, C: 64, K: 64, V: 64 })).toBe(2);
  console.log(lines.join("\n"));
}

describe.skipIf(!gpp)("prep's row-layout twins with batched loads on the CPU emulation", () => {
  it("per-key decay: small shapes (C = 16 / 32 / 48) and the shipped K = V = 64 twins; the decay none / scalar twins on a small shape", () => {
    const shapes: Shape[] = [
      { decay: "key", C: 16, K: 16, V: 8 },
      { decay: "key", C: 32, K: 16, V: 24 },
      { decay: "key", C: 48, K: 32, V: 16 },
      { decay: "key", C: 64, K: 64, V: 64 },
      { decay: "none", C: 32, K: 16, V: 24 },
      { decay: "scalar", C: 32, K: 16, V: 24 },
    ];
    checkBatched(shapes.flatMap(both), 41);
  }, 900_000);

  it("broken copies fail: slots past T loaded; the log decays a row off; dY's rows a row late; NN from U", () => {
    const s: Shape = { decay: "key", C: 32, K: 16, V: 24 };
    expectBrokenCaught({ tin: "bf16", ...s, math: "tf32", batched: true }, () => makeCase(s, "bf16", 1, 40, 2, -1, 8), [
      // U's rows past T read from the next tokens instead of zeros
      ["fwd", "r0[j] = x < 64u && a < used ? *(const uint4*)&U[", "r0[j] = x < 64u ? *(const uint4*)&U[", "M"],
      // the log decays stored a row late
      ["fwd", "*(float4*)&sL[a * 20u + i] = make_float4(__uint_as_float(r4[j].x)", "*(float4*)&sL[(a + 1u) % 32u * 20u + i] = make_float4(__uint_as_float(r4[j].x)", "TI"],
      // dY's bf16 rows read a row late (PD = Pu^T dY, then X)
      ["bwd", "((const unsigned short*)sDY)[(k0 + tg) * 32u", "((const unsigned short*)sDY)[(k0 + tg + 1u) % 32u * 32u", "X"],
      // prep_bwd's NN from U's rows
      ["bwd", "wv[j] = a < used ? seqc_delta_in4(&W[", "wv[j] = a < used ? seqc_delta_in4(&U[", "NN"],
    ]);
  }, 300_000);

  it("configurations it does not take are refused", () => {
    expect(() => deltaPrepModule([{ op: "fwd", decay: "key", tin: "bf16", C: 64, K: 64, V: 64, batched: true }])).toThrow(/row-layout twins/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32", staged: true, batched: true }])).toThrow(/row-layout twins/);
  });

  it.skipIf(!findNvcc())("the shipped per-key twins are batched (K = V = 64 and 128; since call C2): shared bytes; nvcc -cubin for sm_90, ptxas: no spills", () => {
    expect(DELTA_PREP_KEY_MMA_CONFIGS.every((c) => c.batched), "the shipped per-key twins are batched (H200 call C2)").toBe(true);
    const m = deltaPrepModule(DELTA_PREP_KEY_MMA_CONFIGS);
    // V / dY as bf16: 9,216 / 17,408 bytes less than the twins' (115,200 / 117,248 at K = 64: prep_bwd two blocks an SM)
    expect(m.kernels.map((k) => k.sharedBytes)).toEqual([105984, 108032, 172032, 174080]);
    expectNoSpills(m);
  }, 200_000);
});
