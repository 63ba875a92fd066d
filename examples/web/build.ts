/**
 * Build the web example: generate the classes with seqc, bundle the page with esbuild.
 *   npx tsx examples/web/build.ts [outDir]      (default examples/web/dist; serve that folder)
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { EXAMPLES } from "./models.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

export async function buildExample(outDir = join(here, "dist")): Promise<string> {
  const gen = join(here, "gen");
  mkdirSync(gen, { recursive: true });
  execFileSync(process.execPath, [join(root, "bin/seqc.js"), "compile", ...EXAMPLES.map((e) => join(root, "stdlib", `${e.file}.seq`)), "--target", "wgsl,ts", "--out", gen], { stdio: "pipe" });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, "main.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outfile: join(outDir, "main.js"),
    alias: { "seqc/runtime": join(root, "runtime/index.ts") },
    logLevel: "warning",
  });
  copyFileSync(join(here, "index.html"), join(outDir, "index.html"));
  return outDir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildExample(process.argv[2] ? resolve(process.argv[2]) : undefined);
  process.stdout.write(`built ${out} (serve it, e.g. npx http-server ${out}, and open it in a browser with WebGPU)\n`);
}
