/**
 * The bf16 reverse walk's records in the delta backward's kernel module (compiler/backends/cuda/delta-bwd.ts walkBf16;
 * the runtime's LR_DELTA_WALK_BF16): decay none / scalar modules hold, after the twins, prep_bwd's staged twins writing
 * the walk's operands as bf16 (wout "mn" / "all": each the record of its staged twin but wout and the entry's _wb / _wbx)
 * and the bf16 walks (win, math "bf16", zout "bf16", walkFor "many" / "few"); decay "key" modules prep_fwd's and
 * prep_bwd's per-key row-layout twins with wout "mn" (entries _wb) and the per-key bf16 walks (DELTA_WALK_BF16_KEY_CONFIGS, zout "f32").
 */
import { describe, expect, it } from "vitest";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { DELTA_WALK_BF16_CONFIGS, DELTA_WALK_BF16_KEY_CONFIGS, deltaWalkBf16Kernel } from "../compiler/backends/cuda/delta-walk-bf16.ts";

describe("the bf16 reverse walk's records in the delta backward module", () => {
  it.each(["none", "scalar", "key"] as const)("decay %s", (decay) => {
    const m = deltaBwdModule(deltaBwdConfigs(decay));
    const prep = m.kernels.filter((k) => k.wout && !k.wstore), walks = m.kernels.filter((k) => k.win);  // (the quad-store siblings: test/torch-delta-prep-bwd-quad)
    expect(prep.map((k) => k.entry)).toEqual(decay === "key" ? [64, 128].flatMap((K) => ["fwd", "bwd"].map((op) => `seqc_delta_prep_${op}_key_c64k${K}v${K}_bf16_tf32_wb`)) : ["_wb", "_wbx"].flatMap((x) => [64, 128].map((K) => `seqc_delta_prep_bwd_${decay}_c64k${K}v${K}_bf16_tf32${x}`)));
    for (const { wout, entry, ...rest } of prep) {
      const twin = m.kernels.find((x) => x.entry === entry.replace(/_wbx?$/, ""))!;
      expect({ ...rest, entry: twin.entry }, entry).toEqual(twin);
      expect(entry.endsWith(wout === "all" ? "_wbx" : "_wb")).toBe(true);
    }
    expect(walks).toEqual((decay === "key" ? DELTA_WALK_BF16_KEY_CONFIGS : DELTA_WALK_BF16_CONFIGS).map((c) => {
      const k = deltaWalkBf16Kernel(c);
      return { op: "walk", decay, tin: "f32", C: c.C, K: c.K, V: c.V, cols: c.cols, math: "bf16", walkFor: c.walkFor, zout: decay === "key" ? "f32" : "bf16", win: c.win, entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes };
    }));
    for (const k of [...prep, ...walks]) expect(m.source.split(` ${k.entry}(`).length, k.entry).toBe(2);
    // the twins' module alone has none
    expect(deltaBwdModule(deltaBwdConfigs(decay, false)).kernels.filter((k) => k.wout || k.win)).toEqual([]);
  });
});
