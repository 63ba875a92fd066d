/**
 * Golden reference vectors: every case in test/fixtures/golden (public library outputs, float64) and
 * test/fixtures/golden-extra (seqc's own numpy ports of public references) run through the mapped
 * stdlib model; every output and final state must match to relative error <= 1e-9.
 * A few cases go through the real CLI (`seqc run`), the rest through the library functions.
 */
import { describe, it, expect, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { bindCase, readCase, relativeError, resultTensors } from "../compiler/io/manifest.ts";
import { interpret } from "../compiler/ir/interpret.ts";

const ROOT = resolve(import.meta.dirname, "..");
const GOLDEN = join(ROOT, "test/fixtures/golden");
const EXTRA = join(ROOT, "test/fixtures/golden-extra");
const TOL = 1e-9;

interface GoldenCase { dir: string; name: string; model: string; dims?: Record<string, number>; cli?: boolean }

const CASES: GoldenCase[] = [
  { dir: GOLDEN, name: "gla", model: "gla", cli: true },
  { dir: GOLDEN, name: "simple_gla", model: "simple_gla" },
  { dir: GOLDEN, name: "retention", model: "retnet" },
  { dir: GOLDEN, name: "linear_attn", model: "linear_attention" },
  { dir: GOLDEN, name: "delta_rule", model: "deltanet" },
  { dir: GOLDEN, name: "delta_rule_negeig", model: "deltanet" },
  { dir: GOLDEN, name: "gated_delta_rule", model: "gated_deltanet" },
  { dir: GOLDEN, name: "mamba_selective_scan", model: "mamba", cli: true },
  { dir: GOLDEN, name: "mamba2_ssd", model: "mamba2" },
  { dir: GOLDEN, name: "lstm", model: "lstm", cli: true },
  // the KV cache's capacity L is not in any tensor: it comes from --dims
  { dir: GOLDEN, name: "causal_softmax_attention", model: "softmax_attention", cli: true },
  { dir: EXTRA, name: "hgrn", model: "hgrn" },
  { dir: EXTRA, name: "rwkv7", model: "rwkv7", cli: true },
  { dir: EXTRA, name: "gated_deltaproduct", model: "gated_deltaproduct" },
  { dir: EXTRA, name: "deltaproduct", model: "gated_deltaproduct" },
  { dir: EXTRA, name: "gru", model: "gru", cli: true },
  { dir: EXTRA, name: "mlstm_parallel", model: "mlstm" },
  { dir: EXTRA, name: "s4d", model: "s4d" },
];

const report: string[] = [];
afterAll(() => {
  console.log(`max relative error per case (tolerance ${TOL}):\n${report.sort().join("\n")}`);
});

/** Compare every output/final_state tensor of the reference case with the produced tensors. */
function compare(name: string, ref: ReturnType<typeof readCase>, got: Map<string, Float64Array>, how: string): void {
  const wanted = Object.entries(ref.manifest.tensors).filter(([, t]) => t.role === "output" || t.role === "final_state");
  expect(wanted.length).toBeGreaterThan(0);
  let worst = 0;
  const parts: string[] = [];
  for (const [tname] of wanted) {
    const data = got.get(tname);
    expect(data, `${name}: result lacks '${tname}'`).toBeDefined();
    const err = relativeError(data!, ref.data[tname]);
    parts.push(`${tname} ${err.toExponential(2)}`);
    expect(err, `${name}: '${tname}' relative error`).toBeLessThanOrEqual(TOL);
    worst = Math.max(worst, err);
  }
  report.push(`  ${name.padEnd(26)} ${worst.toExponential(2)}  (${how}: ${parts.join(", ")})`);
}

describe("golden cases via the library (bindCase + interpret + resultTensors)", () => {
  for (const c of CASES) {
    it(`${c.name} -> stdlib/${c.model}.seq`, () => {
      const p = loadProgram([join(ROOT, "stdlib", `${c.model}.seq`)]);
      expect(p.diagnostics).toEqual([]);
      const ref = readCase(join(c.dir, `${c.name}.json`));
      const b = bindCase(p.models[0], ref, c.dims);
      const outs = resultTensors(b, interpret(p.models[0], b.run));
      for (const o of outs) expect(o.shape).toEqual(ref.manifest.tensors[o.name].shape);
      compare(c.name, ref, new Map(outs.map((o) => [o.name, o.data])), "lib");
    });
  }
});

describe("golden cases via the CLI (seqc run --backend cpu)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "seqc-golden-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  for (const c of CASES.filter((x) => x.cli)) {
    it(`seqc run stdlib/${c.model}.seq --inputs ${c.name}.json`, () => {
      const out = join(tmp, `${c.name}.result.json`);
      const args = [join(ROOT, "bin/seqc.js"), "run", join(ROOT, "stdlib", `${c.model}.seq`), "--inputs", join(c.dir, `${c.name}.json`), "--backend", "cpu", "--out", out];
      if (c.dims) args.push("--dims", Object.entries(c.dims).map(([k, v]) => `${k}=${v}`).join(","));
      execFileSync(process.execPath, args, { cwd: ROOT, stdio: "pipe" });
      const res = readCase(out); // reads result.json + result.bin
      expect(res.manifest.dtype).toBe("float64");
      const ref = readCase(join(c.dir, `${c.name}.json`));
      for (const [tname, t] of Object.entries(res.manifest.tensors)) {
        const r = ref.manifest.tensors[tname];
        expect(t.shape).toEqual(r.shape);
        expect(t.layout).toEqual(r.layout);
        expect(t.role).toBe(r.role);
        if (r.state) expect(t.state).toBe(r.state);
      }
      compare(`${c.name} (cli)`, ref, new Map(Object.entries(res.data)), "cli");
    }, 30_000);
  }
});
