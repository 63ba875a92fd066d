/**
 * The delta backward's default path (LR_BWD "auto": the five deltaBwd kernels) against what a user's tensors can be:
 * - 64-bit offsets: every index into a kernel's global pointer (X[...], X + ..., seqc_*(X, ...)) in the emitted module
 *   sources (decay none / scalar / key, twins on and off) is formed in 64 bits (a (size_t) cast in it, or a size_t
 *   variable itself built from one), or is the chunk index n alone (< B H nC, the grid's x); so (B T H w), N C K and
 *   N K V past 2^31 elements do not wrap. A copy with the casts taken out must be flagged.
 * - alignment and dtypes (test/torch/delta_robust.py, a fake kernel module on CPU): per-token inputs, S_init, dS and ld
 *   4 bytes off 16 or strided reach the kernels 16-byte aligned, Z0 / LD the same values; float64, float16 and shapes
 *   without kernels (K != V, K = 32 / 96, V = 48, C = 32) get no kernel (torch ops, float64 kept).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

/** Index expressions into each kernel's pointer parameters: [checked, not formed in 64 bits]. */
function narrowIndices(src: string): [string[], string[]] {
  const seen: string[] = [], bad: string[] = [];
  for (const k of src.split(/extern "C" __global__/).slice(1)) {
    const entry = /void (?:__launch_bounds__\([^)]*\) )?(\w+)\(/.exec(k)![1];
    const sig = k.slice(0, k.indexOf(")", k.indexOf(entry + "(")));
    const ptrs = [...sig.matchAll(/\*\s*(?:__restrict__\s*)?(\w+)/g)].map((m) => m[1]);
    const wide = new Set<string>();
    for (const m of k.matchAll(/size_t ([^;]*);/g)) {
      for (const d of m[1].split(/,(?![^(]*\))/)) {
        const n = /^\s*(\w+)\s*=\s*(.*)$/.exec(d);
        if (n && n[2].includes("(size_t)")) wide.add(n[1]);
      }
    }
    const body = k.replace(/\/\/[^\n]*/g, "");
    for (const p of ptrs) {
      const re = new RegExp(`(?<![\\w.])${p}(\\[|\\s*\\+\\s*|,\\s*)`, "g");
      let m: RegExpExecArray | null;
      while ((m = re.exec(body))) {
        const sep = m[1].trim();
        if (sep === "," && !/seqc_\w+\(\s*$/.test(body.slice(Math.max(0, m.index - 40), m.index))) continue;
        let e = "", depth = 0;
        for (let i = m.index + m[0].length; i < body.length; i++) {
          const c = body[i];
          if ("([".includes(c)) depth++;
          if (")]".includes(c)) { if (depth === 0) break; depth--; }
          if (sep !== "[" && (c === ";" || c === ",") && depth === 0) break;
          e += c;
        }
        seen.push(e);
        if (!(e.includes("(size_t)") || [...wide].some((w) => new RegExp(`\\b${w}\\b`).test(e)) || /^\s*n\s*$/.test(e))) bad.push(`${entry}: ${p}${sep} ${e}`);
      }
    }
  }
  return [seen, bad];
}

describe("the delta kernels' global offsets are 64-bit", () => {
  it.each([["none", false], ["none", true], ["scalar", false], ["scalar", true], ["key", false], ["key", true]] as const)("decay %s, twins %s: every global index formed in 64 bits; with the casts taken out it is flagged", (decay, twins) => {
    const src = deltaBwdModule(deltaBwdConfigs(decay, twins)).source;
    const [seen, bad] = narrowIndices(src);
    expect(seen.length).toBeGreaterThan(200);
    expect(bad).toEqual([]);
    const [, broken] = narrowIndices(src.replaceAll("(size_t)", ""));
    expect(broken.length).toBeGreaterThan(100);
  });
});

describe.skipIf(!cpuTorch)("the delta kernels' launcher: alignment, dtypes and shapes without kernels (fake module, CPU)", () => {
  it("unaligned / strided tensors reach the kernels 16-byte aligned (same values); float64, float16 and K != V, K 32 / 96, V 48, C 32 take the torch ops", () => {
    const kernels = [...deltaBwdModule(deltaBwdConfigs("scalar")).kernels, ...deltaBwdModule(deltaBwdConfigs("key")).kernels];
    const r = spawnSync("/usr/bin/python3", ["test/torch/delta_robust.py"], { input: JSON.stringify(kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    for (const mode of ["scalar", "key"]) {
      const a = got.aligned[mode];
      expect(a.ops, mode).toEqual(["prep_fwd", "walk", "prep_bwd", "walk", "adj"]);
      expect(a.pointers, mode).toBeGreaterThan(40);
      expect(a.off16, `${mode}: every pointer % 16`).toEqual([0]);
      expect([a.Z0, a.dS, a.LD], `${mode}: Z0, the reverse walk's Z0 (dS), LD hold the given values`).toEqual([0, 0, 0]);
    }
    expect(got.has).toEqual({ f64: false, f16: false, K64V128: false, K32: false, K96: false, V48: false, C32: false, f32: true });
    for (const [name, t] of Object.entries(got.torch) as [string, { calls: number; diff: number; dtype: string }][]) {
      expect([t.calls, t.diff, t.dtype], name).toEqual([0, 0, name === "f64" ? "torch.float64" : "torch.float32"]);
    }
  });
});
