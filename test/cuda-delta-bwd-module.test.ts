/**
 * The token-aligned delta backward's kernel module (compiler/backends/cuda/delta-bwd.ts; the torch target's
 * "kernels"."deltaBwd"): the records the runtime picks by (op, decay, C, K, V, tin, cols, entry, threads, sharedBytes)
 * for each decay mode (prep's and the adjoint's kernels of that mode, the mode's walks: the default one of a shape and the
 * one for few rows, then prep's, the walks' (3xTF32, math "tf32x3"; decay none / scalar then the walks for many rows, walkFor "many") and the adjoint's TF32 twins, the adjoint's bf16 twins
 * (math "bf16", K = V = 64 and 128) last), each entry once in the source; decay "key" (RWKV-7) with
 * the per-key walks and adjoint and the per-key twins (prep's and the adjoint's at K = V = 64 and 128); the whole module through g++ on the CPU emulation's header (the preludes together), and nvcc -cubin for sm_90 (where
 * installed) compiling each decay mode's module with no spills but the per-key adjoint's K = 128 factored twin's known 4 bytes
 * (docs/delta-backward.md "The factored twins").
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { DELTA_ADJ_BF16_CA_CONFIGS, DELTA_ADJ_BF16_CONFIGS, DELTA_ADJ_BF16_OUT_CONFIGS, DELTA_ADJ_BF16_ZIN_CONFIGS } from "../compiler/backends/cuda/delta-adjoint-bf16.ts";
import { DELTA_ADJ_CONFIGS, DELTA_ADJ_K128_CONFIGS, DELTA_ADJ_K128_MMA_CONFIGS, DELTA_ADJ_MMA_CONFIGS, deltaAdjKernel, type DeltaAdjConfig } from "../compiler/backends/cuda/delta-adjoint.ts";
import { DELTA_PREP_CONFIGS, DELTA_PREP_KEY_CONFIGS, DELTA_PREP_KEY_MMA_CONFIGS, DELTA_PREP_MMA_CONFIGS, deltaPrepKernel, type DeltaPrepConfig, type DeltaPrepDecay } from "../compiler/backends/cuda/delta-prep.ts";
import { DELTA_ADJ_KEY_CONFIGS, deltaAdjKeyKernel } from "../compiler/backends/cuda/delta-adjoint-key.ts";
import { DELTA_ADJ_KEY_BF16_CONFIGS, DELTA_ADJ_KEY_FAC_CONFIGS, DELTA_ADJ_KEY_MMA_CONFIGS, deltaAdjKeyMmaKernel } from "../compiler/backends/cuda/delta-adjoint-key-mma.ts";
import { DELTA_ADJ_KEY_K128_BF16_CONFIGS, DELTA_ADJ_KEY_K128_FAC_CONFIGS, DELTA_ADJ_KEY_K128_MMA_CONFIGS, deltaAdjKeyMmaK128Kernel } from "../compiler/backends/cuda/delta-adjoint-key-mma-k128.ts";
import { DELTA_WALK_CONFIGS, DELTA_WALK_FEW_CONFIGS, DELTA_WALK_KEY_CONFIGS, DELTA_WALK_KEY_FEW_CONFIGS, deltaWalkKernel } from "../compiler/backends/cuda/delta-walk.ts";
import { DELTA_WALK_KEY_MMA_CONFIGS, DELTA_WALK_KEY_WIDE_CONFIGS, DELTA_WALK_MMA_CONFIGS, DELTA_WALK_WIDE_CONFIGS, deltaWalkMmaKernel } from "../compiler/backends/cuda/delta-walk-mma.ts";
import { DELTA_PREP_R_CONFIGS, deltaPrepRKernel } from "../compiler/backends/cuda/delta-prep-r.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { compileLowRankEmu } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;

describe("delta backward kernel module", () => {
  it.each(["none", "scalar", "key"] as const)("decay %s: the records and the source", (decay) => {
    // (the bf16 reverse walk's records, wout / win, are test/cuda-delta-walk-bf16-module.test.ts's)
    const full = deltaBwdModule(deltaBwdConfigs(decay)), m = { source: full.source, kernels: full.kernels.filter((k) => !k.wout && !k.win) };
    // every prep and adjoint configuration of the mode (entry, threads and shared bytes their kernel files'), the walks
    // (the fp32 kernels, then the TF32 twins)
    const prep = (cs: readonly DeltaPrepConfig<DeltaPrepDecay>[]) => cs.filter((c) => c.decay === decay).map((c) => ({ c, k: deltaPrepKernel(c), op: `prep_${c.op}` }));
    const adj = (cs: readonly DeltaAdjConfig[]) => cs.filter((c) => c.decay === decay).map((c) => ({ c, k: deltaAdjKernel(c), op: "adj" }));
    const walks = decay === "key" ? [...DELTA_WALK_KEY_CONFIGS, ...DELTA_WALK_KEY_FEW_CONFIGS] : [...DELTA_WALK_CONFIGS, ...DELTA_WALK_FEW_CONFIGS];
    const keyAdj = decay === "key" ? DELTA_ADJ_KEY_CONFIGS.map((c) => ({ c: { ...c, math: undefined }, k: deltaAdjKeyKernel(c), op: "adj" })) : [];
    const keyAdjMma = decay === "key" ? [...DELTA_ADJ_KEY_MMA_CONFIGS.map((c) => ({ c, k: deltaAdjKeyMmaKernel(c), op: "adj" })), ...DELTA_ADJ_KEY_K128_MMA_CONFIGS.map((c) => ({ c, k: deltaAdjKeyMmaK128Kernel(c), op: "adj" })), ...DELTA_ADJ_KEY_BF16_CONFIGS.map((c) => ({ c, k: deltaAdjKeyMmaKernel(c), op: "adj" })), ...DELTA_ADJ_KEY_K128_BF16_CONFIGS.map((c) => ({ c, k: deltaAdjKeyMmaK128Kernel(c), op: "adj" })), ...DELTA_ADJ_KEY_FAC_CONFIGS.map((c) => ({ c, k: deltaAdjKeyMmaKernel(c), op: "adj" })), ...DELTA_ADJ_KEY_K128_FAC_CONFIGS.map((c) => ({ c, k: deltaAdjKeyMmaK128Kernel(c), op: "adj" }))] : [];
    const walkTwins = (decay === "key" ? [...DELTA_WALK_KEY_MMA_CONFIGS, ...DELTA_WALK_KEY_WIDE_CONFIGS] : [...DELTA_WALK_MMA_CONFIGS, ...DELTA_WALK_WIDE_CONFIGS]).map((c) => ({ c: { ...c, tin: "f32" }, k: deltaWalkMmaKernel(c), op: "walk" }));
    // decay none / scalar: last, the bf16-state path's siblings (LR_DELTA_ZBF16): every walk above writing bf16 ZS / Y
    // (zout, _zb), the bf16 adjoint twins reading them (zin, _zb), then those storing bf16 gradients (aout, _zb_ob)
    const zb = decay === "key" ? [] : [
      ...walks.map((c) => ({ c: { ...c, tin: "f32", math: undefined, zout: "bf16" }, k: deltaWalkKernel({ ...c, zout: "bf16" }), op: "walk" })),
      ...walkTwins.map(({ c }) => ({ c: { ...c, zout: "bf16" }, k: deltaWalkMmaKernel({ ...c, zout: "bf16" }), op: "walk" })),
      ...adj(DELTA_ADJ_BF16_ZIN_CONFIGS), ...adj(DELTA_ADJ_BF16_OUT_CONFIGS),
    ];
    const want = [
      ...prep(DELTA_PREP_CONFIGS), ...prep(DELTA_PREP_KEY_CONFIGS),
      ...walks.map((c) => ({ c: { ...c, tin: "f32", math: undefined }, k: deltaWalkKernel(c), op: "walk" })),
      ...adj([...DELTA_ADJ_CONFIGS, ...DELTA_ADJ_K128_CONFIGS]), ...keyAdj, ...prep(DELTA_PREP_MMA_CONFIGS), ...prep(DELTA_PREP_KEY_MMA_CONFIGS), ...walkTwins, ...adj([...DELTA_ADJ_MMA_CONFIGS, ...DELTA_ADJ_K128_MMA_CONFIGS]), ...keyAdjMma, ...adj(DELTA_ADJ_BF16_CONFIGS), ...zb,
    ].map(({ c, k, op }) => ({ op, decay, tin: c.tin, C: c.C, K: c.K, V: c.V, cols: "cols" in k ? k.cols : c.V, ...("split" in k && k.split > 1 ? { split: k.split } : {}), ...(c.math ? { math: c.math } : {}), ...("walkFor" in c && c.walkFor ? { walkFor: c.walkFor } : {}), ...("zout" in c && c.zout ? { zout: c.zout } : {}), ...("zin" in c && c.zin ? { zin: c.zin } : {}), ...("aout" in c && c.aout ? { aout: c.aout } : {}), entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes }));
    // decay none / scalar: last, R as prep_fwd's epilogue (delta-prep-r.ts, op "prep_r"; mprod "bf16": the _m1 entries)
    const prepR = decay === "key" ? [] : DELTA_PREP_R_CONFIGS.filter((c) => c.decay === decay).map((c) => {
      const { mprod, ...k } = deltaPrepRKernel(c);
      return { op: "prep_r", decay, tin: "bf16", C: c.C, K: c.K, V: c.V, cols: c.V, math: "tf32", ...(mprod === "bf16" ? { mprod } : {}), entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes };
    });
    expect(prepR.length).toBe(decay === "key" ? 0 : 4);
    // then the bf16-state adjoints' siblings loading every chunk input by cp.async (load "ca", _zb_ca, _zb_ob_ca)
    const caRecs = decay === "key" ? [] : adj(DELTA_ADJ_BF16_CA_CONFIGS).map(({ c, k }) => ({ op: "adj", decay, tin: c.tin, C: c.C, K: c.K, V: c.V, cols: c.V, math: c.math, zin: c.zin, ...(c.aout ? { aout: c.aout } : {}), load: c.load, entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes }));
    expect(caRecs.length).toBe(decay === "key" ? 0 : 4);
    expect(m.kernels).toEqual([...want, ...prepR, ...caRecs]);
    for (const { load: _l, entry, ...rest } of caRecs) expect({ ...rest, entry: entry.slice(0, -3) }, entry).toEqual(m.kernels.find((x) => x.entry === entry.slice(0, -3)));
    // each _zb record the sibling of the record without _zb (same op, shape, cols, split, math, threads, shared bytes)
    const zrecs = m.kernels.filter((k) => (k.zout || k.zin) && !k.aout && !k.load);
    expect(zrecs.length).toBe(decay === "key" ? 0 : 10);
    for (const k of zrecs) {
      const { zout: _o, zin: _i, entry, ...rest } = k;
      expect(entry.endsWith("_zb"), entry).toBe(true);
      const sib = m.kernels.find((x) => x.entry === entry.slice(0, -3))!;
      expect({ ...rest, entry: sib.entry }, entry).toEqual(sib);
    }
    // each _ob record (bf16 gradients) the sibling of its _zb adjoint (the same but aout)
    const orecs = m.kernels.filter((k) => k.aout && !k.load);
    expect(orecs.map((k) => k.entry)).toEqual(decay === "key" ? [] : [64, 128].map((K) => `seqc_delta_adj_${decay}_c64k${K}v${K}_bf16_bf16_zb_ob`));
    for (const { aout: _a, entry, ...rest } of orecs) expect({ ...rest, entry: entry.slice(0, -3) }, entry).toEqual(m.kernels.find((x) => x.entry === entry.slice(0, -3)));
    const main = m.kernels.filter((k) => !k.zout && !k.zin && !k.aout && k.op !== "prep_r");
    expect(main.filter((k) => k.math && k.op !== "walk").map((k) => k.math), "twins").toEqual(decay === "key" ? [...Array(6).fill("tf32"), "bf16", "bf16", "bf16f", "bf16f"] : [...Array(6).fill("tf32"), "bf16", "bf16"]);
    expect(deltaBwdModule(deltaBwdConfigs(decay, false)).kernels).toEqual(main.filter((k) => !k.math));
    // what the runtime needs at least: each op at C = 64, K = V = 64 and 128 for both input types, the TF32 twins of prep
    // and the adjoint there for bf16 (decay "key": the per-key adjoint at K = V = 64, its twin at 64 and 128), the walks (the default one of a
    // shape first, then the one for few rows: 8 columns, split 4 / 2)
    const rows = m.kernels.map((k) => `${k.op} ${k.decay} ${k.tin} ${k.C} ${k.K} ${k.V} ${k.cols}${k.math ? ` ${k.math}` : ""}`);
    for (const K of [64, 128])
      for (const r of [...(decay === "key" ? [...["prep_fwd", "prep_bwd"].flatMap((op) => ["f32", "bf16"].map((t) => `${op} key ${t} 64 ${K} ${K} ${K}`)), `prep_fwd key bf16 64 ${K} ${K} ${K} tf32`, `prep_bwd key bf16 64 ${K} ${K} ${K} tf32`, ...(K === 64 ? ["f32", "bf16"].map((t) => `adj key ${t} 64 64 64 64`) : []), `adj key bf16 64 ${K} ${K} ${K} tf32`] : ["prep_fwd", "prep_bwd", "adj"].flatMap((op) => [...["f32", "bf16"].map((t) => `${op} ${decay} ${t} 64 ${K} ${K} ${K}`), `${op} ${decay} bf16 64 ${K} ${K} ${K} tf32`])), `walk ${decay} f32 64 ${K} ${K} ${K === 64 ? 32 : 16}`])
        expect(rows).toContain(r);
    const key = decay === "key" ? "key_" : "";
    // the walks' 3xTF32 twins (delta-walk-mma.ts) after prep's twins
    expect(main.filter((k) => k.op === "walk" && k.math).map((k) => [k.entry, k.math, k.cols, k.threads, k.sharedBytes])).toEqual([
      [`seqc_delta_walk_${decay === "key" ? "key_" : ""}c64k64v64_tf32x3`, "tf32x3", 32, 128, 72704], [`seqc_delta_walk_${decay === "key" ? "key_" : ""}c64k128v128_tf32x3`, "tf32x3", 16, 128, 111616],
      // decay none / scalar: the walks for many rows at K = V = 128 (64 columns over 8 warps; 3xTF32, plain TF32)
      ...(decay === "key" ? [["seqc_delta_walk_key_c64k128v128_g64_w2_tf32x3", "tf32x3", 64, 256, 173056]] : [["seqc_delta_walk_c64k128v128_g64_w2_tf32x3", "tf32x3", 64, 256, 173056], ["seqc_delta_walk_c64k128v128_g64_w2_i2_tf32", "tf32", 64, 256, 173056]]),
    ]);
    expect(main.filter((k) => k.walkFor).map((k) => `${k.walkFor} ${k.math}`)).toEqual(decay === "key" ? ["many tf32x3"] : ["many tf32x3", "many tf32"]);
    expect(main.filter((k) => k.op === "walk" && !k.math).map((k) => [k.entry, k.cols, k.split, k.threads, k.sharedBytes])).toEqual([
      [`seqc_delta_walk_${key}c64k64v64`, 32, undefined, 128, 65536], [`seqc_delta_walk_${key}c64k128v128`, 16, undefined, 128, 94208],
      [`seqc_delta_walk_${key}c64k64v64_g8_s4`, 8, 4, 128, 47104], [`seqc_delta_walk_${key}c64k128v128_g8_s2`, 8, 2, 128, 83968],
    ]);
    for (const k of m.kernels) expect(m.source.split(` ${k.entry}(`).length, k.entry).toBe(2);
    expect(new Set(m.kernels.map((k) => k.entry)).size).toBe(m.kernels.length);
    expect(() => deltaBwdModule({ ...deltaBwdConfigs(decay), decay: decay === "none" ? "scalar" : "none" })).toThrow(/decay kernel in a/);
    expect(() => deltaBwdModule({ ...deltaBwdConfigs(decay), walk: deltaBwdConfigs(decay === "key" ? "scalar" : "key").walk })).toThrow(/walk in a/);
  });

  it.skipIf(!gpp)("each decay mode's module compiles with g++ on the CPU emulation's header (the preludes together)", () => {
    for (const d of ["none", "scalar", "key"] as const) expect(() => compileLowRankEmu(deltaBwdModule(deltaBwdConfigs(d)).source, "int main() { return 0; }\n", "delta-bwd-module", true), d).not.toThrow();
  }, 300_000);

  // (the one kernel allowed to spill: the per-key adjoint's K = 128 factored twin, exactly 4 bytes, one register stored and
  // loaded once; accepted for its H200 gain in call D15: RWKV-7's bf16 step 26.3 -> 22.1 ms at (4, 8192, 16, 128))
  it.skipIf(!findNvcc())("nvcc -cubin compiles each decay mode's whole module for sm_90; ptxas: no spills but the K = 128 factored twin's 4 bytes", () => {
    const spills = (e: string) => (e === "seqc_delta_adj_key_c64k128v128_bf16_bf16f" ? 4 : 0);
    for (const decay of ["none", "scalar", "key"] as const) {
      const m = deltaBwdModule(deltaBwdConfigs(decay));
      if (decay === "key") expect(m.kernels.map((k) => k.entry)).toContain("seqc_delta_adj_key_c64k128v128_bf16_bf16f");
      const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
      for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 255], `${decay} ${e}`).toEqual([spills(e), spills(e), true]);
      console.log(`deltaBwd ${decay}: ${[...usage].map(([e, u]) => `${e} ${u.registers}`).join(", ")} registers`);
    }
  }, 1_200_000);
});
