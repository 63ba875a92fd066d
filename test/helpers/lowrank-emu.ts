/**
 * What the low-rank kernels' emulation tests (cuda-lowrank-core-emu, -core-mma-emu, -readout-emu, -pass-emu, -wy-emu)
 * share around their own emulator mains: the translation unit's head and its g++ build (test/cuda-emu/emu.h, with the
 * TF32 mma emulation test/cuda-emu/mma-tf32.h where asked), the main's entry dispatch, the whole main of kernels on a
 * one-dimensional grid (emuGridMain), a scratch folder per run and the float32 files the runs read and write.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileEmu, EMU_READF } from "../cuda-emu/harness.ts";

const HERE = join(import.meta.dirname, "..", "cuda-emu");

/** An emulator executable of a module's source and a main (its cache file named after `name`); `mma`: with mma-tf32.h. */
export function compileLowRankEmu(source: string, main: string, name: string, mma: boolean): string {
  const mmaInclude = mma ? `#include "${join(HERE, "mma-tf32.h")}"\n` : "";
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n${mmaInclude}#include <string>\n${source}\n${main}`;
  return compileEmu(full, name);
}

/** The main's lines that point fn at body_<entry> for the `entry` named on the command line (exit 2 for an unknown one). */
export function emuEntrySelect(entries: readonly string[]): string {
  return `  void (*fn)() = nullptr;
${entries.map((e) => `  if (entry == "${e}") fn = body_${e};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", entry.c_str()); return 2; }`;
}

/** An emulator main for kernels launched on a grid of N blocks: argv dir, entry, N, threads, smem, then `scalars` (unsigned
 * globals, in order); buffer i (P[i]) read from dir/<files[i]>.bin; `call`, an entry's argument list (P, NN and the
 * scalars; the same for every entry, or by entry); writes dir/<files[i]>.out for each i of `outs`. */
export function emuGridMain(entries: readonly string[], call: string | ((entry: string) => string), files: readonly string[], scalars: readonly string[], outs: readonly number[]): string {
  const n = files.length;
  return `
static void* P[${n}]; static unsigned NN${scalars.map((x) => `, ${x}`).join("")};
${entries.map((e) => `static void body_${e}() { ${e}(${typeof call === "string" ? call : call(e)}); }`).join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  NN = (unsigned)atoi(argv[3]);
  unsigned threads = (unsigned)atoi(argv[4]), smem = (unsigned)atoi(argv[5]);
${scalars.length ? `  ${scalars.map((x, i) => `${x} = (unsigned)atoi(argv[${6 + i}]);`).join(" ")}\n` : ""}  std::vector<char> b[${n}] = {${files.map((f) => `readf(dir + "/${f}.bin")`).join(", ")}};
  for (int i = 0; i < ${n}; ++i) P[i] = b[i].data();
${emuEntrySelect(entries)}
  emu::Dim g; g.x = NN; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
${outs.map((i, j) => `  ${j ? "" : "FILE* "}f = fopen((dir + "/${files[i]}.out").c_str(), "wb"); fwrite(b[${i}].data(), 1, b[${i}].size(), f); fclose(f);\n`).join("")}  return 0;
}
`;
}

/** fn(dir) in a fresh scratch folder under the system's temporary one, removed afterwards. */
export function inScratchDir<T>(prefix: string, fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Float64 values as float32 bytes (rounded). */
export const f32Bytes = (x: Float64Array) => Buffer.from(Float32Array.from(x).buffer);

/** A float32 file's values. */
export function readF32(path: string): Float64Array {
  const raw = readFileSync(path);
  return Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
}
