import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const seqc = (...args: string[]) => {
  const r = spawnSync("node", ["bin/seqc.js", ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);

// each test starts CLI processes: generous time on a loaded two-core machine
describe("seqc CLI", { timeout: 60_000 }, () => {
  it("check: every stdlib model is clean (exit 0)", () => {
    const files = readdirSync("stdlib").filter((f) => f.endsWith(".seq")).map((f) => `stdlib/${f}`);
    const r = seqc("check", ...files);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`ok: ${files.length} models`));
  });

  it("check: errors give exit 1, codes, positions and carets, no stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "seqc-"));
    const f = join(dir, "bad.seq");
    writeFileSync(f, "model Bad {\n  dims H\n  input x[H]\n  output o[h] = x[h] * y[h]\n  output p[h] = exp(x[h], 2)\n}\n");
    const r = seqc("check", f);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.seq:4:24: error SEQ2001: unknown tensor 'y'/);
    expect(r.err).toMatch(/bad\.seq:5:17: error SEQ2006/);
    expect(r.err).toMatch(/\|\s+\^+/);
    expect(r.err).toMatch(/2 errors/);
    noStack(r.err);
  });

  it("check: a missing file is a user error", () => {
    const r = seqc("check", "no/such/file.seq");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/SEQ2010/);
    noStack(r.err);
  });

  it("compile --target ir writes the analysis and the IR per model", () => {
    const dir = mkdtempSync(join(tmpdir(), "seqc-"));
    const r = seqc("compile", "stdlib/mamba.seq", "--target", "ir", "--out", dir);
    expect(r.code).toBe(0);
    const a = JSON.parse(readFileSync(join(dir, "Mamba.analysis.json"), "utf8"));
    expect(a.states[0]).toMatchObject({ name: "h", class: "diagonal" });
    expect(readFileSync(join(dir, "Mamba.ir.txt"), "utf8")).toMatch(/h\[d,n\] = exp\(dt\[d\] \* A\[d,n\]\)/);
  });

  it("run --backend webgpu honours --form (an unknown form is a user error, a known one runs)", () => {
    const dir = mkdtempSync(join(tmpdir(), "seqc-"));
    const bad = seqc("run", "stdlib/hgrn.seq", "--inputs", "test/fixtures/golden-extra/hgrn.json", "--backend", "webgpu", "--form", "bogus", "--out", join(dir, "r.json"));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/form must be .*got 'bogus'/);
    noStack(bad.err);
    const ok = seqc("run", "stdlib/hgrn.seq", "--inputs", "test/fixtures/golden-extra/hgrn.json", "--backend", "webgpu", "--form", "scan", "--out", join(dir, "r.json"));
    expect(ok.code).toBe(0);
  });

  it("compile: an unknown target is a clear error", () => {
    const r = seqc("compile", "stdlib/gla.seq", "--target", "fortran", "--out", mkdtempSync(join(tmpdir(), "seqc-")));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown target 'fortran'/);
    noStack(r.err);
  });

  it("explain --shape rejects malformed shapes clearly", () => {
    const r = seqc("explain", "stdlib/gla.seq", "--shape", "B=two");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--shape: expected NAME=INT/);
  });
});
