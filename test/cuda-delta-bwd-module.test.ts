/**
 * The token-aligned delta backward's kernel module (compiler/backends/cuda/delta-bwd.ts; the torch target's
 * "kernels"."deltaBwd"): the records the runtime picks by (op, decay, C, K, V, tin, cols, entry, threads, sharedBytes)
 * for each decay mode (prep's and the adjoint's kernels of that mode, every walk), each entry once in the source; the
 * whole module through g++ on the CPU emulation's header (the preludes together), and nvcc -cubin for sm_90 (where
 * installed) compiling each decay mode's module with no spills.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { deltaAdjKernel } from "../compiler/backends/cuda/delta-adjoint.ts";
import { deltaPrepKernel } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { compileLowRankEmu } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;

describe("delta backward kernel module", () => {
  it.each(["none", "scalar"] as const)("decay %s: the records and the source", (decay) => {
    const m = deltaBwdModule(deltaBwdConfigs(decay));
    const prep = (["fwd", "bwd"] as const).flatMap((op) => [64, 128].flatMap((K) => (["f32", "bf16"] as const).map((tin) => ({ op, tin, K }))));
    expect(m.kernels.map((k) => [k.op, k.decay, k.tin, k.C, k.K, k.V, k.cols])).toEqual([
      ...[64, 128].flatMap((K) => ["prep_fwd", "prep_bwd"].flatMap((op) => ["f32", "bf16"].map((tin) => [op, decay, tin, 64, K, K, K]))),
      ["walk", decay, "f32", 64, 64, 64, 32],
      ["walk", decay, "f32", 64, 128, 128, 16],
      ["adj", decay, "f32", 64, 64, 64, 64],
      ["adj", decay, "bf16", 64, 64, 64, 64],
    ]);
    // each record's entry, threads and shared bytes are its kernel file's
    for (const { op, tin, K } of prep) {
      const want = deltaPrepKernel({ op, decay, tin, C: 64, K, V: K });
      expect(m.kernels.find((k) => k.entry === want.entry), want.entry).toMatchObject({ op: `prep_${op}`, threads: want.threads, sharedBytes: want.sharedBytes });
    }
    expect(m.kernels.filter((k) => k.op === "walk").map((k) => [k.entry, k.threads, k.sharedBytes])).toEqual([["seqc_delta_walk_c64k64v64", 128, 65536], ["seqc_delta_walk_c64k128v128", 128, 94208]]);
    for (const tin of ["f32", "bf16"] as const) {
      const want = deltaAdjKernel({ decay, tin, C: 64, K: 64, V: 64 });
      expect(m.kernels.find((k) => k.entry === want.entry), want.entry).toMatchObject({ op: "adj", threads: want.threads, sharedBytes: want.sharedBytes });
    }
    for (const k of m.kernels) expect(m.source.split(` ${k.entry}(`).length, k.entry).toBe(2);
    expect(new Set(m.kernels.map((k) => k.entry)).size).toBe(m.kernels.length);
    expect(() => deltaBwdModule({ ...deltaBwdConfigs(decay), decay: decay === "none" ? "scalar" : "none" })).toThrow(/decay kernel in a/);
  });

  it.skipIf(!gpp)("each decay mode's module compiles with g++ on the CPU emulation's header (the preludes together)", () => {
    for (const d of ["none", "scalar"] as const) expect(() => compileLowRankEmu(deltaBwdModule(deltaBwdConfigs(d)).source, "int main() { return 0; }\n", "delta-bwd-module", true), d).not.toThrow();
  }, 300_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles each decay mode's whole module for sm_90; ptxas: no spills", () => {
    for (const decay of ["none", "scalar"] as const) {
      const m = deltaBwdModule(deltaBwdConfigs(decay));
      const usage = ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry));
      for (const [e, u] of usage) expect([u.spillStores, u.spillLoads, u.registers <= 255], `${decay} ${e}`).toEqual([0, 0, true]);
      console.log(`deltaBwd ${decay}: ${[...usage].map(([e, u]) => `${e} ${u.registers}`).join(", ")} registers`);
    }
  }, 600_000);
});
