import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve("bin/seqc.js");
const seqc = (cwd: string, ...args: string[]) => {
  const r = spawnSync("node", [bin, ...args], { encoding: "utf8", cwd });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);

const messy = "model M{dims H\ninput x[H] // the input\noutput o[h]=(x[h]*2)}\n";
const tidy = "model M {\n  dims H\n  input x[H]  // the input\n  output o[h] = x[h] * 2\n}\n";
const broken = "model B {\n  dims H\n  input x[H\n}\n";

function workdir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "seqc-fmt-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe("seqc fmt (CLI)", { timeout: 60_000 }, () => {
  it("rewrites files in place and reports how many changed", () => {
    const dir = workdir({ "m.seq": messy, "t.seq": tidy });
    const r = seqc(dir, "fmt", "m.seq", "t.seq");
    expect(r.code).toBe(0);
    expect(r.out).toBe("formatted 1 of 2 files\n");
    expect(readFileSync(join(dir, "m.seq"), "utf8")).toBe(tidy);
    expect(readFileSync(join(dir, "t.seq"), "utf8")).toBe(tidy);
  });

  it("--check lists the files that would change, exit 1, and touches nothing", () => {
    const dir = workdir({ "m.seq": messy, "t.seq": tidy });
    const r = seqc(dir, "fmt", "--check", "m.seq", "t.seq");
    expect(r.code).toBe(1);
    expect(r.out).toBe("m.seq\n");
    expect(r.err).toMatch(/1 of 2 files would be reformatted/);
    expect(readFileSync(join(dir, "m.seq"), "utf8")).toBe(messy);
    const ok = seqc(dir, "fmt", "--check", "t.seq");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/ok: 1 file already formatted/);
  });

  it("--stdout prints the formatted text and leaves the file alone", () => {
    const dir = workdir({ "m.seq": messy });
    const r = seqc(dir, "fmt", "--stdout", "m.seq");
    expect(r.code).toBe(0);
    expect(r.out).toBe(tidy);
    expect(readFileSync(join(dir, "m.seq"), "utf8")).toBe(messy);
  });

  it("refuses a file with syntax errors: diagnostics, exit 1, file untouched; other files still formatted", () => {
    const dir = workdir({ "b.seq": broken, "m.seq": messy });
    const r = seqc(dir, "fmt", "b.seq", "m.seq");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/b\.seq:4:1: error SEQ1002/);
    expect(r.err).toMatch(/b\.seq: not formatted: fix the syntax errors above first/);
    expect(r.out).toMatch(/formatted 1 of 2 files; 1 refused/);
    noStack(r.err);
    expect(readFileSync(join(dir, "b.seq"), "utf8")).toBe(broken);
    expect(readFileSync(join(dir, "m.seq"), "utf8")).toBe(tidy);
  });

  it("a missing file or a directory is a clear error", () => {
    const dir = workdir({});
    const r = seqc(dir, "fmt", "nope.seq");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot read 'nope\.seq': no such file/);
    noStack(r.err);
    const d = seqc(resolve("."), "fmt", "stdlib");
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/'stdlib' is a directory/);
  });

  it("fmt's output of every stdlib file passes --check (a fixed point)", () => {
    const names = readdirSync("stdlib").filter((f) => f.endsWith(".seq"));
    const dir = workdir(Object.fromEntries(names.map((f) => [f, readFileSync(`stdlib/${f}`, "utf8")])));
    expect(seqc(dir, "fmt", ...names).code).toBe(0);
    const r = seqc(dir, "fmt", "--check", ...names);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`ok: ${names.length} files already formatted\n`);
  });
});
