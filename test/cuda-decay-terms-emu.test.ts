/**
 * The decay adjoint's terms kernel (compiler/backends/cuda/decay-terms.ts; runtime/torch/seqc_chunked.py DECAY_TERMS
 * "kernel") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against float64:
 *   scalar decay  term[b, t, h]    = sum_k a1 c1 - sum_k a2 c2
 *   per-key decay term[b, t, h, k] = a1 c1 - a2 c2
 * with the operands read through token / head strides (token-major, time-major, a head broadcast by stride 0, rows
 * padded), bf16 and float32 operands, the paired loads (vec = 1) and the scalar ones (odd K, odd strides), K past one
 * warp's 64 elements, rows not a multiple of the block's 8, one operand pair (two = 0), accumulation (acc = 1).
 * Operands stored in reversed time (the kernel's rev bits) give bitwise the terms of the same values stored forward.
 * Deliberately broken copies (the warp's sum missing its first exchange; the second pair's paired load dropped; c2's
 * rev bit ignored) must fail; nvcc -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DECAY_TERMS_CONFIGS, decayTermsModule, type DecayTermsKernel } from "../compiler/backends/cuda/decay-terms.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-decay-terms-emu.test: g++ is not installed, so the emulated runs are skipped");
const HERE = join(import.meta.dirname, "cuda-emu");
const NU = 21;

function buildEmu(source: string, kernels: DecayTermsKernel[]): string {
  const ty = (o: string) => (o === "bf16" ? "unsigned short" : "float");
  const args = Array.from({ length: NU }, (_, i) => `U[${i}]`).join(", ");
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const ${ty(k.a)}*)P[0], (const ${ty(k.c)}*)P[1], (const ${ty(k.a2 ?? k.a)}*)P[2], (const ${ty(k.c)}*)P[3], (float*)P[4], ${args}); }`);
  const main = `
static void* P[5]; static unsigned U[${NU}];
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  unsigned gx = (unsigned)atoi(argv[3]), threads = (unsigned)atoi(argv[4]);
  for (int i = 0; i < ${NU}; ++i) U[i] = (unsigned)atoi(argv[5 + i]);
  std::vector<char> b[5] = {readf(dir + "/a1.bin"), readf(dir + "/c1.bin"), readf(dir + "/a2.bin"), readf(dir + "/c2.bin"), readf(dir + "/out.bin")};
  for (int i = 0; i < 5; ++i) P[i] = b[i].data();
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (entry == "${k.entry}") fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", entry.c_str()); return 2; }
  emu::Dim g; g.x = gx; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, 0);
  FILE* f = fopen((dir + "/out.out").c_str(), "wb"); fwrite(b[4].data(), 1, b[4].size(), f); fclose(f);
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "decay-terms");
}

interface Case { B: number; T: number; H: number; K: number; perKey: boolean; layout: "token" | "time" | "heads0" | "padded"; two: boolean; acc: boolean; vec: boolean; seed: number; rev?: number }

/** bf16-exact or float32-exact values (the operand's type) */
function value(r: () => number, bf16: boolean): number {
  const x = Math.fround(2 * r());
  if (!bf16) return x;
  const u = new Uint32Array(new Float32Array([x]).buffer)[0] & 0xffff0000;
  return new Float32Array(new Uint32Array([u]).buffer)[0];
}

/** One run: the kernel's out (float64 of its float32) and the float64 reference. */
function run(bin: string, k: DecayTermsKernel, c: Case): { got: Float64Array; want: Float64Array } {
  const { B, T, H, K, perKey } = c;
  const r = rng(c.seed);
  // logical x [B, T, H, K] stored by layout: token-major, time-major [T, B, H, K], one head broadcast to all (head
  // stride 0), or token rows padded by 2 elements (token stride H K + 2: even, so the paired loads still apply)
  const F = H * K;
  const lay = c.layout === "token" ? { size: B * T * F, sb: T * F, st: F, sh: K }
    : c.layout === "time" ? { size: B * T * F, sb: F, st: B * F, sh: K }
      : c.layout === "heads0" ? { size: B * T * K, sb: T * K, st: K, sh: 0 }
        : { size: B * T * (F + 2), sb: T * (F + 2), st: F + 2, sh: K };
  const at = (b: number, t: number, h: number, j: number) => b * lay.sb + t * lay.st + h * lay.sh + j;
  // logical values x[b, t, h, j] (the same draws whatever rev is); an operand whose rev bit is set stores token t at T - 1 - t
  const fill = (bf16: boolean) => {
    const x = new Float64Array(lay.size).fill(NaN);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let j = 0; j < K; j++) x[at(b, t, h, j)] = value(r, bf16);
    return x;
  };
  const rev = c.rev ?? 0;
  const stored = (x: Float64Array, bit: number) => {
    if (!(rev & bit)) return x;
    const y = new Float64Array(lay.size).fill(NaN);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let j = 0; j < K; j++) y[at(b, T - 1 - t, h, j)] = x[at(b, t, h, j)];
    return y;
  };
  const a1 = fill(k.a === "bf16"), c1 = fill(k.c === "bf16"), a2 = fill((k.a2 ?? k.a) === "bf16"), c2 = fill(k.c === "bf16");
  const rows = B * T * H, nOut = perKey ? rows * K : rows;
  const out0 = Float64Array.from({ length: nOut }, () => (c.acc ? Math.fround(r()) : NaN));
  const want = new Float64Array(nOut);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const row = (b * T + t) * H + h;
        let s = 0;
        for (let j = 0; j < K; j++) {
          const p = a1[at(b, t, h, j)] * c1[at(b, t, h, j)] - (c.two ? a2[at(b, t, h, j)] * c2[at(b, t, h, j)] : 0);
          if (perKey) want[row * K + j] = (c.acc ? out0[row * K + j] : 0) + p;
          else s += p;
        }
        if (!perKey) want[row] = (c.acc ? out0[row] : 0) + s;
      }
  const dir = mkdtempSync(join(tmpdir(), "seqc-terms-"));
  try {
    const enc = (x: Float64Array, bf16: boolean) => {
      const f = Float32Array.from(x, (v) => (Number.isNaN(v) ? NaN : v));
      if (!bf16) return Buffer.from(f.buffer);
      const u = new Uint32Array(f.buffer);
      return Buffer.from(Uint16Array.from(u, (x) => x >>> 16).buffer);
    };
    writeFileSync(join(dir, "a1.bin"), enc(stored(a1, 1), k.a === "bf16"));
    writeFileSync(join(dir, "c1.bin"), enc(stored(c1, 2), k.c === "bf16"));
    writeFileSync(join(dir, "a2.bin"), enc(stored(a2, 4), (k.a2 ?? k.a) === "bf16"));
    writeFileSync(join(dir, "c2.bin"), enc(stored(c2, 8), k.c === "bf16"));
    writeFileSync(join(dir, "out.bin"), enc(out0, false));
    const st = [lay.sb, lay.st, lay.sh];
    const u = [B, T, H, K, perKey ? 1 : 0, c.two ? 1 : 0, c.acc ? 1 : 0, c.vec ? 1 : 0, ...st, ...st, ...st, ...st, rev];
    execFileSync(bin, [dir, k.entry, String(Math.ceil(rows / k.rows)), String(k.threads), ...u.map(String)], { stdio: "pipe" });
    const raw = readFileSync(join(dir, "out.out"));
    return { got: Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)), want };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function error(bin: string, k: DecayTermsKernel, c: Case): number {
  const { got, want } = run(bin, k, c);
  expect(got.every(Number.isFinite), `${k.entry}: every output written, finite`).toBe(true);
  return relativeError(got, want);
}

const CASES: Case[] = [
  { B: 2, T: 9, H: 3, K: 64, perKey: false, layout: "token", two: true, acc: false, vec: true, seed: 1 },
  { B: 1, T: 7, H: 2, K: 130, perKey: false, layout: "time", two: true, acc: true, vec: true, seed: 2 },
  { B: 2, T: 5, H: 3, K: 37, perKey: false, layout: "token", two: true, acc: false, vec: false, seed: 3 },
  { B: 1, T: 11, H: 2, K: 64, perKey: true, layout: "padded", two: true, acc: false, vec: true, seed: 4 },
  { B: 2, T: 3, H: 3, K: 70, perKey: true, layout: "time", two: false, acc: true, vec: true, seed: 5 },
  { B: 1, T: 6, H: 3, K: 5, perKey: true, layout: "token", two: true, acc: true, vec: false, seed: 6 },
  { B: 2, T: 4, H: 3, K: 16, perKey: false, layout: "heads0", two: false, acc: false, vec: true, seed: 7 },
  { B: 1, T: 1, H: 1, K: 2, perKey: false, layout: "padded", two: true, acc: true, vec: true, seed: 8 },
];

describe.skipIf(!gpp)("decay adjoint terms kernel on the CPU emulation vs float64", () => {
  it("every operand-type pair: strided layouts, paired and scalar loads, K past one warp, scalar and per-key terms, one pair, accumulation", () => {
    const m = decayTermsModule();
    expect(m.kernels.map((k) => k.entry)).toEqual(["seqc_decay_terms_bf16_f32", "seqc_decay_terms_bf16_bf16", "seqc_decay_terms_f32_f32", "seqc_decay_terms_f32_bf16", "seqc_decay_terms_f32_f32_kbf16"]);
    expect(DECAY_TERMS_CONFIGS.length).toBe(5);
    const bin = buildEmu(m.source, m.kernels);
    for (const [j, k] of m.kernels.entries())
      for (const c of CASES) {
        const e = error(bin, k, { ...c, seed: c.seed + 10 * j });
        expect(e, `${k.entry} ${JSON.stringify(c)}`).toBeLessThan(1e-6);
      }
  }, 300_000);

  it("operands stored in reversed time (rev bits): bitwise the same terms as stored forward; a kernel ignoring c2's bit fails", () => {
    const m = decayTermsModule();
    expect(m.kernels.every((k) => k.rev)).toBe(true);
    const bin = buildEmu(m.source, m.kernels);
    // c2 alone (the glue's dk, REVERSED_READS "terms"), then every operand; scalar and per-key, paired and scalar loads, T = 1
    for (const [j, k] of m.kernels.entries())
      for (const [i, c] of [CASES[0], CASES[1], CASES[2], CASES[3], CASES[5], CASES[7]].entries())
        for (const rev of [8, 15]) {
          const cc = { ...c, seed: 100 + 10 * j + i };
          const fwd = run(bin, k, cc);
          const got = run(bin, k, { ...cc, rev });
          expect(Array.from(got.got), `${k.entry} rev ${rev} ${JSON.stringify(c)}: bitwise the forward-stored run`).toEqual(Array.from(fwd.got));
          expect(relativeError(got.got, got.want)).toBeLessThan(1e-6);
        }
    const blind = decayTermsModule([{ a: "bf16", c: "f32" }], (src) => {
      const old = "(size_t)((rev & 8u) ? tr : t) * t2t";
      expect(src).toContain(old);
      return src.replace(old, "(size_t)t * t2t");
    });
    expect(error(buildEmu(blind.source, blind.kernels), blind.kernels[0], { ...CASES[0], rev: 8 })).toBeGreaterThan(1e-2);
  }, 300_000);

  it("deliberately broken copies fail: the warp's sum without its first exchange; the second pair's paired load dropped", () => {
    const half = decayTermsModule([{ a: "bf16", c: "f32" }], (src) => {
      expect(src).toContain("for (u32 m = 16u; m >= 1u; m /= 2u)");
      return src.replace("for (u32 m = 16u; m >= 1u; m /= 2u)", "for (u32 m = 8u; m >= 1u; m /= 2u)");
    });
    expect(error(buildEmu(half.source, half.kernels), half.kernels[0], CASES[0])).toBeGreaterThan(1e-2);
    const drop = decayTermsModule([{ a: "bf16", c: "f32" }], (src) => {
      const old = "p0 = __fsub_rn(p0, __fmul_rn(x0, y0));";
      expect(src).toContain(old);
      return src.replace(old, "");
    });
    expect(error(buildEmu(drop.source, drop.kernels), drop.kernels[0], CASES[3])).toBeGreaterThan(1e-2);
  }, 100_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles the module for sm_90; ptxas: no spills", () => {
    const m = decayTermsModule();
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry)))
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
  }, 200_000);
});
