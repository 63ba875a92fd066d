/**
 * Writes the WGSL chunked plans of this tree, one JSON file a model, for bench/webgpu/chunked-tiled.ts --old-plans
 * (an A/B of a kernel change within one device call: dump at the old commit, build the bench at the new one).
 *   npx tsx bench/webgpu/dump-plans.ts <dir> deltanet gated_deltanet ...
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";

const [dir, ...names] = process.argv.slice(2);
mkdirSync(dir, { recursive: true });
for (const name of names) {
  const model = loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
  const s = JSON.stringify(compileWgsl(model, ["chunked"]));
  writeFileSync(join(dir, `${name}.json`), s);
  console.log(`${name}: ${s.length} bytes`);
}
