import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchTable } from "../compiler/cli/bench.ts";

describe("seqc bench (WebGPU on this machine's driver)", () => {
  it("times every form at every length, prints JSON and plots each form against T with the copy-bandwidth floor", () => {
    const dir = mkdtempSync(join(tmpdir(), "seqc-bench-"));
    const svg = join(dir, "b.svg");
    const r = spawnSync("node", ["bin/seqc.js", "bench", "stdlib/hgrn.seq", "--dims", "D=32", "--batch", "2", "--lengths", "8,24", "--range", "g=-0.5:-0.01", "--json", "--plot", svg, "--metric", "tokens"], { encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { model: string; copyGBs: number; rows: { form: string; T: number; ms: number; auto: boolean }[] };
    expect(j.model).toBe("Hgrn");
    expect(j.copyGBs).toBeGreaterThan(0);
    const forms = [...new Set(j.rows.map((x) => x.form))];
    expect(forms).toContain("scan/tile");
    expect(j.rows).toHaveLength(forms.length * 2);
    for (const row of j.rows) expect(row.ms).toBeGreaterThan(0);
    for (const T of [8, 24]) expect(j.rows.filter((x) => x.T === T && x.auto)).toHaveLength(1);
    // progress: one line per finished measurement when stderr is not a terminal
    expect(r.stderr.match(/^\[[#-]+\] \d+\/\d+ /gm)?.length).toBe(j.rows.length);
    const plot = readFileSync(svg, "utf8");
    expect(plot.match(/class="series"/g)?.length).toBe(forms.length);
    expect(plot).toMatch(/class="reference"[^>]*data-label="copy bandwidth/);
    expect(plot).toContain("tokens/s");
  }, 150_000);

  it("reports bad arguments as user errors", () => {
    const r = spawnSync("node", ["bin/seqc.js", "bench", "stdlib/gla.seq", "--lengths", "8,x"], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--lengths: expected positive integers/);
    const m = spawnSync("node", ["bin/seqc.js", "bench", "stdlib/gla.seq", "--lengths", "8"], { encoding: "utf8", timeout: 60_000 });
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/give the size of H, K, V with --dims/);
  }, 90_000);

  it("formats the table with one row per measurement", () => {
    const t = benchTable([{ form: "scan/tile", B: 2, T: 8, ms: 1.5, tokensPerS: 10666, GBs: 0.1, pctCopy: 1, auto: true, floorMs: 0.001 }]);
    expect(t.split("\n")).toHaveLength(3);
    expect(t).toMatch(/scan\/tile\s+2\s+8\s+1\.500/);
  });
});
