/**
 * The reversed-time add (compiler/backends/cuda/rev-add.ts; runtime/torch/seqc_chunked.py REV_ADD "kernel") on the CPU
 * emulation of CUDA (test/cuda-emu/emu.h): out[b, t, j] = a[b, t, j] + c[b, T - 1 - t, j] for every type triple, the
 * 16-byte path (vec = 1, W a multiple of 8) and the element path (any W, a ragged last group), T = 1, a grid smaller than
 * the groups (the grid-stride loop). Checked bitwise against the float32 sum rounded once to out's type (round to nearest
 * even: torch.add(a, c.flip(1), out=...)'s bits) and against float64 (< 4e-3 for bf16 out, < 1e-7 float32). Broken copies
 * (c read forward; the 16-byte path reading c's row forward; truncation for the bf16 rounding) fail; nvcc sm_90: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REV_ADD_CONFIGS, revAddModule, type RevAddKernel, type RevAddType } from "../compiler/backends/cuda/rev-add.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-rev-add-emu.test: g++ is not installed, so the emulated runs are skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

function buildEmu(source: string, kernels: RevAddKernel[]): string {
  const ty = (o: string) => (o === "bf16" ? "unsigned short" : "float");
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const ${ty(k.a)}*)P[0], (const ${ty(k.c)}*)P[1], (${ty(k.o)}*)P[2], U[0], U[1], U[2], U[3]); }`);
  const main = `
static void* P[3]; static unsigned U[4];
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  unsigned gx = (unsigned)atoi(argv[3]), threads = (unsigned)atoi(argv[4]);
  for (int i = 0; i < 4; ++i) U[i] = (unsigned)atoi(argv[5 + i]);
  std::vector<char> b[3] = {readf(dir + "/a.bin"), readf(dir + "/c.bin"), readf(dir + "/out.bin")};
  for (int i = 0; i < 3; ++i) P[i] = b[i].data();
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (entry == "${k.entry}") fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", entry.c_str()); return 2; }
  emu::Dim g; g.x = gx; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, 0);
  FILE* f = fopen((dir + "/out.out").c_str(), "wb"); fwrite(b[2].data(), 1, b[2].size(), f); fclose(f);
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "rev-add");
}

interface Case { B: number; T: number; W: number; vec: boolean; grid?: number; seed: number }

const f32 = (x: number) => Math.fround(x);
/** float32 -> bf16 bits, round to nearest even (as torch's conversion, finite values) */
function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
const fromBf16 = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];
/** a value exact in the type */
const value = (r: () => number, t: RevAddType) => (t === "bf16" ? fromBf16(bf16Bits(f32(2 * r() - 1))) : f32(2 * r() - 1));
const enc = (x: Float64Array, t: RevAddType) =>
  t === "bf16" ? Buffer.from(Uint16Array.from(x, (v) => bf16Bits(v)).buffer) : Buffer.from(Float32Array.from(x).buffer);

/** One run: the kernel's out as float64, the bits wanted (float32 sum rounded once) as float64, and the float64 sums. */
function run(bin: string, k: RevAddKernel, c: Case): { got: Float64Array; bits: Float64Array; exact: Float64Array } {
  const { B, T, W } = c;
  const r = rng(c.seed);
  const n = B * T * W;
  const a = Float64Array.from({ length: n }, () => value(r, k.a));
  const cc = Float64Array.from({ length: n }, () => value(r, k.c));
  const exact = new Float64Array(n), bits = new Float64Array(n);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let j = 0; j < W; j++) {
        const e = (b * T + t) * W + j, er = (b * T + (T - 1 - t)) * W + j;
        exact[e] = a[e] + cc[er];
        const s = f32(a[e] + cc[er]);
        bits[e] = k.o === "bf16" ? fromBf16(bf16Bits(s)) : s;
      }
  const dir = mkdtempSync(join(tmpdir(), "seqc-rev-add-"));
  try {
    writeFileSync(join(dir, "a.bin"), enc(a, k.a));
    writeFileSync(join(dir, "c.bin"), enc(cc, k.c));
    writeFileSync(join(dir, "out.bin"), enc(new Float64Array(n).fill(NaN), k.o));
    const grid = c.grid ?? Math.ceil(Math.ceil(n / 8) / k.threads);
    execFileSync(bin, [dir, k.entry, String(grid), String(k.threads), String(B), String(T), String(W), c.vec ? "1" : "0"], { stdio: "pipe" });
    const raw = readFileSync(join(dir, "out.out"));
    const got = k.o === "bf16" ? Float64Array.from(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2), fromBf16) : Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
    return { got, bits, exact };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function maxRel(got: Float64Array, want: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < got.length; i++) { num = Math.max(num, Math.abs(got[i] - want[i])); den = Math.max(den, Math.abs(want[i])); }
  return num / den;
}

const CASES: Case[] = [
  { B: 2, T: 9, W: 64, vec: true, seed: 1 },
  { B: 2, T: 40, W: 64, vec: true, grid: 1, seed: 2 },  // 640 groups on one block of 256: the grid-stride loop
  { B: 2, T: 5, W: 37, vec: false, seed: 3 },
  { B: 3, T: 1, W: 16, vec: true, seed: 4 },
  { B: 3, T: 100, W: 7, vec: false, grid: 1, seed: 5 },  // 263 groups, the last ragged
];

describe.skipIf(!gpp)("reversed-time add on the CPU emulation", () => {
  it("every type triple: 16-byte and element paths, ragged groups, T = 1, grid-stride: bitwise the float32 sum rounded once; vs float64", () => {
    const m = revAddModule();
    expect(REV_ADD_CONFIGS.length).toBe(8);
    expect(m.kernels.map((k) => k.entry)).toContain("seqc_rev_add_f32_bf16_bf16");
    const bin = buildEmu(m.source, m.kernels);
    for (const [j, k] of m.kernels.entries())
      for (const c of CASES) {
        const { got, bits, exact } = run(bin, k, { ...c, seed: c.seed + 10 * j });
        expect(Array.from(got), `${k.entry} ${JSON.stringify(c)}: bitwise`).toEqual(Array.from(bits));
        expect(maxRel(got, exact), `${k.entry} ${JSON.stringify(c)} vs float64`).toBeLessThan(k.o === "bf16" ? 4e-3 : 1e-7);
      }
  }, 300_000);

  it("broken copies fail: c read forward; the 16-byte path's c row forward; bf16 by truncation", () => {
    const one = [{ a: "f32", c: "bf16", o: "bf16" } as const];
    const fwd = revAddModule(one, (src) => {
      const old = "seqc_ra_ld(c + er)";
      expect(src).toContain(old);
      return src.replace(old, "seqc_ra_ld(c + e)");
    });
    const b1 = buildEmu(fwd.source, fwd.kernels);
    const r1 = run(b1, fwd.kernels[0], CASES[2]);
    expect(maxRel(r1.got, r1.exact)).toBeGreaterThan(1e-2);
    const vfwd = revAddModule(one, (src) => {
      const old = "seqc_ra_ld8(c + er, y)";
      expect(src).toContain(old);
      return src.replace(old, "seqc_ra_ld8(c + e0, y)");
    });
    const r2 = run(buildEmu(vfwd.source, vfwd.kernels), vfwd.kernels[0], CASES[0]);
    expect(maxRel(r2.got, r2.exact)).toBeGreaterThan(1e-2);
    const trunc = revAddModule(one, (src) => {
      const old = "u += 0x7fffu + ((u >> 16) & 1u);";
      expect(src).toContain(old);
      return src.replace(old, "");
    });
    const r3 = run(buildEmu(trunc.source, trunc.kernels), trunc.kernels[0], CASES[0]);
    expect(Array.from(r3.got)).not.toEqual(Array.from(r3.bits));
  }, 200_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles the module for sm_90; ptxas: no spills", () => {
    const m = revAddModule();
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry)))
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
  }, 200_000);
});
