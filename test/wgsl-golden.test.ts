/**
 * Every shared golden case through `seqc run --backend webgpu` (the real CLI, Dawn on the machine's
 * Vulkan driver, lavapipe in CI): float32 on the device, the result file float64, relative error
 * <= 1e-4 against the public reference outputs and final states.
 */
import { describe, it, expect, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readCase, relativeError } from "../compiler/io/manifest.ts";

const ROOT = resolve(import.meta.dirname, "..");
const GOLDEN = join(ROOT, "test/fixtures/golden");
const EXTRA = join(ROOT, "test/fixtures/golden-extra");
const TOL = 1e-4;

const CASES: { dir: string; name: string; model: string }[] = [
  { dir: GOLDEN, name: "gla", model: "gla" },
  { dir: GOLDEN, name: "simple_gla", model: "simple_gla" },
  { dir: GOLDEN, name: "retention", model: "retnet" },
  { dir: GOLDEN, name: "linear_attn", model: "linear_attention" },
  { dir: GOLDEN, name: "delta_rule", model: "deltanet" },
  { dir: GOLDEN, name: "delta_rule_negeig", model: "deltanet" },
  { dir: GOLDEN, name: "gated_delta_rule", model: "gated_deltanet" },
  { dir: GOLDEN, name: "mamba_selective_scan", model: "mamba" },
  { dir: GOLDEN, name: "mamba2_ssd", model: "mamba2" },
  { dir: GOLDEN, name: "lstm", model: "lstm" },
  { dir: GOLDEN, name: "causal_softmax_attention", model: "softmax_attention" },
  { dir: EXTRA, name: "hgrn", model: "hgrn" },
  { dir: EXTRA, name: "rwkv7", model: "rwkv7" },
  { dir: EXTRA, name: "gated_deltaproduct", model: "gated_deltaproduct" },
  { dir: EXTRA, name: "deltaproduct", model: "gated_deltaproduct" },
  { dir: EXTRA, name: "gru", model: "gru" },
  { dir: EXTRA, name: "mlstm_parallel", model: "mlstm" },
  { dir: EXTRA, name: "s4d", model: "s4d" },
];

const report: string[] = [];
afterAll(() => console.log(`webgpu golden cases, max relative error (tolerance ${TOL}):\n${report.sort().join("\n")}`));

describe("golden cases via `seqc run --backend webgpu`", () => {
  const tmp = mkdtempSync(join(tmpdir(), "seqc-wgsl-golden-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  for (const c of CASES) {
    it(`${c.name} -> stdlib/${c.model}.seq`, () => {
      const out = join(tmp, `${c.name}.result.json`);
      execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "run", join(ROOT, "stdlib", `${c.model}.seq`), "--inputs", join(c.dir, `${c.name}.json`), "--backend", "webgpu", "--out", out], { cwd: ROOT, stdio: "pipe" });
      const res = readCase(out);
      expect(res.manifest.dtype).toBe("float64");
      const ref = readCase(join(c.dir, `${c.name}.json`));
      const wanted = Object.entries(ref.manifest.tensors).filter(([, t]) => t.role === "output" || t.role === "final_state");
      expect(wanted.length).toBeGreaterThan(0);
      let worst = 0;
      for (const [name, t] of wanted) {
        expect(res.manifest.tensors[name]?.shape, `${c.name}: ${name}`).toEqual(t.shape);
        const err = relativeError(res.data[name], ref.data[name]);
        expect(err, `${c.name}: ${name}`).toBeLessThanOrEqual(TOL);
        worst = Math.max(worst, err);
      }
      report.push(`  ${c.name.padEnd(26)} ${worst.toExponential(2)}`);
    }, 300_000);
  }
});
