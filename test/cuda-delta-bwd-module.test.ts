/**
 * The token-aligned delta backward's kernel module (compiler/backends/cuda/delta-bwd.ts; the torch target's
 * "kernels"."deltaBwd"): the records the runtime picks by (op, decay, C, K, V, tin, cols, entry, threads, sharedBytes)
 * for each decay mode, every entry once in the source, and nvcc -cubin for sm_90 (where installed) compiling the whole
 * module (both decay modes) with no spills.
 */
import { describe, expect, it } from "vitest";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

describe("delta backward kernel module", () => {
  it.each(["none", "scalar"] as const)("decay %s: the records and the source", (decay) => {
    const m = deltaBwdModule(deltaBwdConfigs(decay));
    expect(m.kernels).toEqual([
      { op: "walk", decay, tin: "f32", C: 64, K: 64, V: 64, cols: 32, entry: "seqc_delta_walk_c64k64v64", threads: 128, sharedBytes: 65536 },
      { op: "walk", decay, tin: "f32", C: 64, K: 128, V: 128, cols: 16, entry: "seqc_delta_walk_c64k128v128", threads: 128, sharedBytes: 94208 },
    ]);
    for (const k of m.kernels) expect(m.source.split(` ${k.entry}(`).length, k.entry).toBe(2);
    expect(new Set(m.kernels.map((k) => k.entry)).size).toBe(m.kernels.length);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles each decay mode's whole module for sm_90; ptxas: no spills", () => {
    for (const decay of ["none", "scalar"] as const) {
      const m = deltaBwdModule(deltaBwdConfigs(decay));
      const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
      for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 255], `${decay} ${e}`).toEqual([0, 0, true]);
      console.log(`deltaBwd ${decay}: ${[...usage].map(([e, u]) => `${e} ${u.registers} registers`).join(", ")}`);
    }
  }, 600_000);
});
