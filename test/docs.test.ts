/**
 * Every code block of docs/*.md is executed (see test/doc-blocks.ts for the block kinds):
 * .seq blocks are checked (no diagnostics, or exactly the codes they are marked with) and must
 * be in `seqc fmt` layout; sh blocks run in a fresh folder per document with `seqc` on the PATH,
 * their output compared when an output block follows; ts blocks are type-checked (strict) and run with tsx there.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { docBlocks, type DocBlock } from "./doc-blocks.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { formatSeq } from "../compiler/fmt/index.ts";
import { formatDiagnostics } from "../compiler/diagnostics.ts";

const repo = resolve(".");
const docs = readdirSync("docs").filter((f) => f.endsWith(".md")).sort();
const tsx = join(repo, "node_modules/tsx/dist/cli.mjs");
const tsc = join(repo, "node_modules/typescript/bin/tsc");

/** A working folder for one document: `seqc` on the PATH, the stdlib at ./stdlib. */
function workdir(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), "seqc-docs-"));
  const bin = join(dir, ".bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "seqc"), `#!/bin/sh\nexec node ${JSON.stringify(join(repo, "bin/seqc.js"))} "$@"\n`);
  chmodSync(join(bin, "seqc"), 0o755);
  symlinkSync(join(repo, "stdlib"), join(dir, "stdlib"));
  // a project that has installed seqc: generated modules import "seqc/runtime"
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "my-models", type: "module", private: true }));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(repo, join(dir, "node_modules", "seqc"));
  for (const dep of ["@webgpu", "@types", "webgpu"]) symlinkSync(join(repo, "node_modules", dep), join(dir, "node_modules", dep));
  return { dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: "1" } };
}

const normalise = (s: string) => s.split("\n").map((l) => l.replace(/\s+$/, "")).join("\n").replace(/\n+$/, "");
const codesOf = (s: string | undefined) => (s ? s.split(",").filter(Boolean) : []);
const SETUP = /^(npm (install|ci|test|link)\b.*|git clone .*|cd [\w./-]+)$/;

function checkSeq(b: DocBlock, where: string, dir: string): void {
  const name = b.attrs.file ?? `block-${b.line}.seq`;
  writeFileSync(join(dir, name), b.code);
  const p = loadProgram([join(dir, name)]);
  const shown = formatDiagnostics(p.diagnostics, p.sources);
  const errors = p.diagnostics.filter((d) => d.severity === "error").map((d) => d.code);
  const warnings = p.diagnostics.filter((d) => d.severity === "warning").map((d) => d.code);
  const wantErrors = codesOf(b.attrs.error), wantWarnings = codesOf(b.attrs.warning);
  // exactly the codes the block is marked with: an example shows one thing
  expect([...new Set(errors)].sort(), `${where}: error codes\n${shown}`).toEqual([...new Set(wantErrors)].sort());
  expect([...new Set(warnings)].sort(), `${where}: warning codes\n${shown}`).toEqual([...new Set(wantWarnings)].sort());
  const f = formatSeq(b.code, name);
  if (f.ok) expect(f.text, `${where}: not in seqc fmt layout`).toBe(b.code);
  else expect(wantErrors.some((c) => c.startsWith("SEQ1")), `${where}: syntax errors\n${shown}`).toBe(true);
}

function runBlock(cmd: string[], input: string | undefined, where: string, b: DocBlock, dir: string, env: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: dir, env, encoding: "utf8", input, timeout: 120_000 });
  const out = (r.stdout ?? "") + (r.stderr ?? "");
  expect(r.status, `${where}: exit code\n${out}`).toBe(Number(b.attrs.exit ?? 0));
  if (!b.output) return;
  // ```text match=prefix: the output begins with these lines (what follows depends on the checkout, e.g. the backends built)
  const got = b.output.attrs.match === "prefix" ? normalise(out).split("\n").slice(0, normalise(b.output.code).split("\n").length).join("\n") : normalise(out);
  expect(got, `${where}: output`).toBe(normalise(b.output.code));
}

for (const doc of docs) {
  const blocks = docBlocks(readFileSync(join("docs", doc), "utf8"));
  describe(`docs/${doc}`, { timeout: 180_000 }, () => {
    if (!blocks.length) {
      it("has no code blocks", () => expect(blocks).toEqual([]));
      return;
    }
    it(`runs its ${blocks.length} code blocks in order`, () => {
      const { dir, env } = workdir();
      for (const b of blocks) {
        const where = `docs/${doc}:${b.line} (${b.lang || "no language"})`;
        if (b.lang === "seq") checkSeq(b, where, dir);
        else if (b.lang === "sh") {
          const lines = b.code.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
          if (lines.every((l) => SETUP.test(l.trim()))) {
            // installing is not repeated here; check that what it promises exists
            const pkg = JSON.parse(readFileSync("package.json", "utf8"));
            expect(pkg.bin?.seqc, where).toBeDefined();
            expect(pkg.scripts?.test, where).toBeDefined();
            expect(b.output, `${where}: setup blocks have no output to compare`).toBeUndefined();
            continue;
          }
          expect(lines.some((l) => SETUP.test(l.trim())), `${where}: mixes setup with commands`).toBe(false);
          runBlock(["bash", "-e", "-o", "pipefail", "-c", `exec 2>&1\n${b.code}`], undefined, where, b, dir, env);
        } else if (b.lang === "ts") {
          const name = b.attrs.file ?? `block-${b.line}.ts`;
          writeFileSync(join(dir, name), b.code);
          const types = spawnSync("node", [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--types", "node", "--typeRoots", join(repo, "node_modules/@types"), "--skipLibCheck", "--allowImportingTsExtensions", name], { cwd: dir, encoding: "utf8" });
          expect(types.status, `${where}: type errors\n${types.stdout}${types.stderr}`).toBe(0);
          runBlock(["node", tsx, name], undefined, where, b, dir, env);
        } else throw new Error(`${where}: a code block must be seq, sh or ts (or the output of the sh/ts block before it)`);
      }
    });
  });
}

describe("docs/reference.md covers every diagnostic", () => {
  const table = readFileSync("docs/diagnostics.md", "utf8");
  const listed = new Set([...table.matchAll(/^\| (SEQ\d{4}) \|/gm)].map((m) => m[1]));
  const sources = [...readdirSync("grammar").map((f) => `grammar/${f}`), ...readdirSync("compiler/frontend").map((f) => `compiler/frontend/${f}`), "compiler/frontend/load.ts"];
  const emitted = new Set(sources.flatMap((f) => [...readFileSync(f, "utf8").matchAll(/"(SEQ\d{4})"/g)].map((m) => m[1])));

  it("every code the front end emits is in docs/diagnostics.md, and every listed code is emitted", () => {
    expect([...emitted].sort()).toEqual([...listed].sort());
  });

  it("every code has an example block in docs/reference.md that produces it", () => {
    const blocks = docBlocks(readFileSync("docs/reference.md", "utf8")).filter((b) => b.lang === "seq");
    const shown = new Set(blocks.flatMap((b) => [...codesOf(b.attrs.error), ...codesOf(b.attrs.warning)]));
    for (const c of listed) expect(shown.has(c), `no example of ${c} in docs/reference.md`).toBe(true);
  });
});
