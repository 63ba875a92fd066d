/**
 * The rows chunk kernel's sequences in segments (runtime/torch/seqc_chunked.py ROWS_CHUNK_SEGMENTS, GLA's transposed
 * products at few rows): T cut into n segments run as B n batches of T / n tokens (the same tensors), each from the start
 * state that seqc_chunked.rows_chunk_seg_states gives (CPU torch, test/torch/rows_chunk_seg_states.py), on the g++
 * emulation of the kernel (test/cuda-emu/emu.h), against a float64 walk of the whole sequence
 *   S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T,  out_t = S_t c_t
 * in forward time (rev 0) and in the adjoint's reversed time on the forward-stored tensors (rev 31: ld[T - t], 0 at
 * t = 0, a, b, c, out at T - 1 - t). Segments of 1, 2, 3 and 5, T ragged (segments of 75, 50, 30, 26, 65, 39 tokens:
 * chunks cut inside), decays to -20 a step, initial states, the split (K = V = 128, prefetching), wide (bf16 a,
 * prefetching) and 64-wide entries (K 48, V 40). Broken copies of the states (the token's own decay in its weight, the
 * decay entering a reversed segment dropped, the segments' states in reversed order) fail.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rowsChunkModule, type RowsChunkConfig, type RowsChunkKernel } from "../compiler/backends/cuda/rows-chunk.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { type Case, type Data, data, flipT, reference, REV_ALL, shiftRev } from "./helpers/rows-chunk-emu.ts";
import { bf16 } from "./helpers/bf16-round.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch, numpy"]).status === 0;
if (!gpp || !cpuTorch) console.warn("cuda-rows-chunk-seg-emu.test: needs g++ and torch for /usr/bin/python3; skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

/** The float64 answer a run with rev bits on d must give: forward time, or the walk of the flipped tensors flipped back. */
function expected(c: Case, d: Data, rev: number): Float64Array {
  if (!rev) return reference(c, d);
  return flipT(reference(c, { ld: shiftRev(d.ld, c), a: flipT(d.a, c, c.K), b: flipT(d.b, c, c.V), c: flipT(d.c, c, c.V), S0: d.S0 }), c, c.K);
}

function buildEmu(source: string, kernels: RowsChunkKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)BUF["ld"].data(), (${k.lowA ? "const seqc_bf16*" : "const float*"})BUF["a"].data(), (const seqc_bf16*)BUF["b"].data(), (const seqc_bf16*)BUF["c"].data(), (const float*)BUF["S0"].data(), (float*)BUF["o"].data(), U[0], U[1], U[2], U[3], U[4], U[5], U[6]); }`);
  const main = `
#include <map>
static std::map<std::string, std::vector<char>> BUF; static unsigned U[7];
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  FILE* lf = fopen((dir + "/launch.txt").c_str(), "r");
  char name[256]; unsigned gx, gy, nthr, smem;
  if (fscanf(lf, "%255s %u %u %u %u", name, &gx, &gy, &nthr, &smem) != 5) return 2;
  for (int i = 0; i < 7; ++i) if (fscanf(lf, "%u", &U[i]) != 1) return 2;
  for (const char* b : {"ld", "a", "b", "c", "S0", "o"}) BUF[b] = readf(dir + "/" + b + ".bin");
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (!strcmp(name, "${k.entry}")) fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
  emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
  emu::launch(fn, g, blk, smem);
  FILE* f = fopen((dir + "/o.out").c_str(), "wb"); fwrite(BUF["o"].data(), 1, BUF["o"].size(), f); fclose(f);
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "rows-chunk-seg");
}

const f32 = (x: Float64Array) => Buffer.from(Float32Array.from(x).buffer);

/** One run as seqc_chunked.rows_readout_kernel launches it with nseg segments: the start states from the runtime's
 * rows_chunk_seg_states (nseg > 1), then grid (B nseg H, key groups x value groups) over B nseg batches of T / nseg tokens
 * with init 1; out NaN first, the split entries' slices summed in order in float32. */
function runSeg(bin: string, k: RowsChunkKernel, c: Case, d: Data, nseg: number, rev: number, broken?: string): Float64Array {
  const dir = mkdtempSync(join(tmpdir(), "seqc-rows-seg-"));
  try {
    const n = c.B * c.T * c.H * c.K, slices = k.split ? Math.ceil(c.V / 64) : 1;
    writeFileSync(join(dir, "ld.bin"), f32(d.ld));
    writeFileSync(join(dir, "a.bin"), f32(d.a));
    writeFileSync(join(dir, "b.bin"), f32(d.b));
    writeFileSync(join(dir, "S0.bin"), d.S0 ? f32(d.S0) : Buffer.alloc(4));
    let S0 = d.S0 ? f32(d.S0) : Buffer.alloc(4), Bk = c.B, Tk = c.T, init = c.init ? 1 : 0;
    if (nseg > 1) {
      const r = spawnSync("/usr/bin/python3", ["test/torch/rows_chunk_seg_states.py", dir, ...[nseg, rev, c.B, c.T, c.H, c.K, c.V, c.init ? 1 : 0, k.lowA ? 1 : 0].map(String), ...(broken ? [broken] : [])], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(r.stderr);
      S0 = readFileSync(join(dir, "st.bin"));
      expect(S0.length).toBe(4 * c.B * nseg * c.H * c.K * c.V);
      [Bk, Tk, init] = [c.B * nseg, c.T / nseg, 1];
    }
    const bufs: Record<string, Buffer> = {
      ld: f32(d.ld), a: k.lowA ? bf16(d.a).words : f32(d.a), b: bf16(d.b).words, c: bf16(d.c).words, S0, o: f32(new Float64Array(slices * n).fill(NaN)),
    };
    for (const [name, b] of Object.entries(bufs)) writeFileSync(join(dir, `${name}.bin`), b);
    const gy = (k.keyGroup ? Math.ceil(c.K / k.keyGroup) : 1) * slices;
    writeFileSync(join(dir, "launch.txt"), `${k.entry} ${Bk * c.H} ${gy} ${k.threads} ${k.sharedBytes} ${Bk} ${Tk} ${c.H} ${c.K} ${c.V} ${init} ${rev}\n`);
    execFileSync(bin, [dir], { stdio: "pipe" });
    const raw = readFileSync(join(dir, "o.out"));
    const o = Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, n));
    for (let g = 1; g < slices; g++) {
      const sl = new Float32Array(raw.buffer, raw.byteOffset + 4 * g * n, n);
      for (let j = 0; j < n; j++) o[j] = Math.fround(o[j] + sl[j]);
    }
    return o;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TOL = 1e-4;
const CFGS: RowsChunkConfig[] = [
  { warps: 8, lowA: false, pipe: true, split: true }, // GLA's dk at (1, 32768, 8, 128): a = q float32, rev 31
  { warps: 8, lowA: true, pipe: true, wide: true }, // dq with the wide entries: a = k bf16
  { warps: 8, lowA: false }, // the 64-wide entry
];
const CASES: { cfg: number; c: Case; segs: number[] }[] = [
  { cfg: 0, c: { B: 1, T: 150, H: 2, K: 128, V: 128, init: true, minLd: -20 }, segs: [1, 2, 3, 5] },
  { cfg: 1, c: { B: 2, T: 130, H: 1, K: 128, V: 128, init: false, minLd: -0.3 }, segs: [2, 5] },
  { cfg: 2, c: { B: 2, T: 195, H: 1, K: 48, V: 40, init: true, minLd: -1 }, segs: [3, 5] },
];

describe.skipIf(!gpp || !cpuTorch)("rows chunk kernel in segments from rows_chunk_seg_states' start states: CPU emulation vs float64", () => {
  const m = rowsChunkModule(CFGS);
  const bin = buildEmu(m.source, m.kernels);
  it("split / wide / 64-wide entries, 1, 2, 3, 5 segments, T ragged, decays to -20, forward and reversed time", () => {
    const errs: string[] = [];
    for (const [i, { cfg, c, segs }] of CASES.entries()) {
      const k = m.kernels[cfg], d = data(k, c, 41 + i);
      for (const rev of [0, REV_ALL]) {
        const want = expected(c, d, rev);
        for (const nseg of segs) {
          const got = runSeg(bin, k, c, d, nseg, rev);
          const err = got.every(Number.isFinite) ? relativeError(got, want) : Infinity;
          errs.push(`${k.entry} T=${c.T} n=${nseg} rev=${rev}: ${err.toExponential(1)}`);
          expect(err, errs[errs.length - 1]).toBeLessThan(TOL);
        }
      }
    }
    console.log(errs.join("\n"));
  }, 900_000);
  it("broken states fail: the token's own decay in its weight (forward), the decay into a reversed segment dropped, segments in reversed order", () => {
    const c: Case = { ...CASES[0].c, minLd: -0.3 }, k = m.kernels[CASES[0].cfg], d = data(k, c, 43);
    for (const [broken, rev] of [["incl", 0], ["enter", REV_ALL], ["order", 0], ["order", REV_ALL]] as [string, number][]) {
      const got = runSeg(bin, k, c, d, 3, rev, broken);
      const err = got.every(Number.isFinite) ? relativeError(got, expected(c, d, rev)) : Infinity;
      expect(err > 1e-3, `${broken} rev=${rev}: error ${err}`).toBe(true);
    }
  }, 900_000);
});
