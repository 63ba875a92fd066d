/**
 * The decay adjoint's chunk products kernel (compiler/backends/cuda/anchor-chunks.ts; runtime/torch/seqc_chunked.py
 * ANCHOR_CHUNKS "kernel") on the CPU emulation of CUDA (test/cuda-emu/emu.h) against float64:
 *   P_i[k, v] = sum_{s in chunk i, s < T} (a_s[h, k] w_s[k | 0]) b_s[h, v]
 * in the Gram's row layout [B, H, Kd, n, R] (scalar decay: Kd = 1, R = K V; per-key: Kd = K, R = V), from a and b read
 * with arbitrary element strides (token-major, time-major, every other element, one head broadcast by stride 0), bf16 and float32 operands, ragged last
 * chunks, K and V not multiples of the 64 x 64 tile, accumulation onto what is there (acc = 1); the plain kernels and
 * their wide-load / wide-store twins (vec: four elements a load where strides and K, V allow, float4 stores) and their
 * 8 x 4 register-tile twins on 128 threads (r8; bitwise the plain kernels' outputs); a scalar
 * decay's products in groups of kg key rows (the Gram in groups). Deliberately broken
 * copies (the last staged token dropped; the per-key weight read as the scalar one; the wide kernels' fourth per-key
 * weight read as the first, their wide store without accumulation; the r8 twin's second four key rows read as its first) must fail; nvcc -cubin for sm_90
 * where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ANCHOR_CHUNKS_CONFIGS, anchorChunksModule, type AnchorChunksKernel } from "../compiler/backends/cuda/anchor-chunks.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-anchor-chunks-emu.test: g++ is not installed, so the emulated runs are skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

function buildEmu(source: string, kernels: AnchorChunksKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const ${k.a === "bf16" ? "unsigned short" : "float"}*)P[0], (const ${k.b === "bf16" ? "unsigned short" : "float"}*)P[1], (const float*)P[2], (float*)P[3], U[0], U[1], U[2], U[3], U[4], U[5], U[6], U[7], U[8], U[9], U[10], U[11], U[12], U[13], U[14], U[15], U[16], U[17]); }`);
  const main = `
static void* P[4]; static unsigned U[18];
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  unsigned gx = (unsigned)atoi(argv[3]), gy = (unsigned)atoi(argv[4]), threads = (unsigned)atoi(argv[5]), smem = (unsigned)atoi(argv[6]);
  for (int i = 0; i < 18; ++i) U[i] = (unsigned)atoi(argv[7 + i]);
  std::vector<char> b[4] = {readf(dir + "/a.bin"), readf(dir + "/b.bin"), readf(dir + "/w.bin"), readf(dir + "/out.bin")};
  for (int i = 0; i < 4; ++i) P[i] = b[i].data();
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (entry == "${k.entry}") fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", entry.c_str()); return 2; }
  emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  FILE* f = fopen((dir + "/out.out").c_str(), "wb"); fwrite(b[3].data(), 1, b[3].size(), f); fclose(f);
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "anchor-chunks");
}

interface Case { B: number; T: number; H: number; K: number; V: number; C: number; perKey: boolean; layout: "token" | "time" | "every2" | "heads0"; acc: boolean; seed: number; kg?: number }

/** bf16-exact or float32-exact values (the operand's type) */
function value(r: () => number, bf16: boolean): number {
  const x = Math.fround(2 * r());
  if (!bf16) return x;
  const u = new Uint32Array(new Float32Array([x]).buffer)[0] & 0xffff0000;
  return new Float32Array(new Uint32Array([u]).buffer)[0];
}

/** One run: the kernel's out (float64 of its float32) and the float64 reference. */
function run(bin: string, k: AnchorChunksKernel, c: Case): { got: Float64Array; want: Float64Array } {
  const { B, T, H, K, V, C, perKey } = c;
  const r = rng(c.seed);
  // key rows per output row: K (a scalar decay's [K, V]), 1 (per key row), or groups of kg (a scalar decay's Gram in groups)
  const kg = c.kg ?? (perKey ? 1 : K);
  const n = Math.ceil(T / C), Kd = perKey ? K : 1, R = kg * V;
  // logical a [B, T, H, w] stored by layout: token-major, time-major [T, B, H, w], every other element of [B, T, 2 H w],
  // or one head broadcast to all (head stride 0: [B, T, w] expanded)
  const store = (w: number) => {
    const F = H * w;
    if (c.layout === "token") return { size: B * T * F, sb: T * F, st: F, sh: w, sf: 1 };
    if (c.layout === "time") return { size: B * T * F, sb: F, st: B * F, sh: w, sf: 1 };
    if (c.layout === "heads0") return { size: B * T * w, sb: T * w, st: w, sh: 0, sf: 1 };
    return { size: B * T * 2 * F, sb: T * 2 * F, st: 2 * F, sh: 2 * w, sf: 2 };
  };
  const la = store(K), lb = store(V);
  const A = new Float64Array(la.size).fill(NaN), Bv = new Float64Array(lb.size).fill(NaN);
  const at = (l: typeof la, b: number, t: number, h: number, j: number) => b * l.sb + t * l.st + h * l.sh + j * l.sf;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        for (let j = 0; j < K; j++) A[at(la, b, t, h, j)] = value(r, k.a === "bf16");
        for (let j = 0; j < V; j++) Bv[at(lb, b, t, h, j)] = value(r, k.b === "bf16");
      }
  // weights [B, H, n, C, Kd] in (0, 1]; padded tokens' weights garbage (the kernel must not read them as nonzero terms)
  const W = Float64Array.from({ length: B * H * n * C * Kd }, () => Math.fround(Math.exp(-4 * (r() + 0.5))));
  const out0 = Float64Array.from({ length: B * H * (K / kg) * n * R }, () => (c.acc ? Math.fround(r()) : NaN));
  const want = new Float64Array(out0.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < n; i++)
        for (let kk = 0; kk < K; kk++)
          for (let v = 0; v < V; v++) {
            let s = 0;
            for (let q = 0; q < C && i * C + q < T; q++) {
              const tok = i * C + q;
              const wv = W[(((b * H + h) * n + i) * C + q) * Kd + (perKey ? kk : 0)];
              s += Math.fround(A[at(la, b, tok, h, kk)] * wv) * Bv[at(lb, b, tok, h, v)];
            }
            const idx = (((b * H + h) * (K / kg) + Math.floor(kk / kg)) * n + i) * R + (kk % kg) * V + v;
            want[idx] = (c.acc ? out0[idx] : 0) + s;
          }
  const dir = mkdtempSync(join(tmpdir(), "seqc-anchor-"));
  try {
    const enc = (x: Float64Array, bf16: boolean) => {
      const f = Float32Array.from(x, (v) => (Number.isNaN(v) ? NaN : v));
      if (!bf16) return Buffer.from(f.buffer);
      const u = new Uint32Array(f.buffer);
      return Buffer.from(Uint16Array.from(u, (x) => x >>> 16).buffer);
    };
    writeFileSync(join(dir, "a.bin"), enc(A, k.a === "bf16"));
    writeFileSync(join(dir, "b.bin"), enc(Bv, k.b === "bf16"));
    writeFileSync(join(dir, "w.bin"), enc(W, false));
    writeFileSync(join(dir, "out.bin"), enc(out0, false));
    const gx = B * H * n, gy = Math.ceil(K / k.kt) * Math.ceil(V / k.vt);
    const u = [B, T, H, K, V, C, n, Kd, la.sb, la.st, la.sh, la.sf, lb.sb, lb.st, lb.sh, lb.sf, c.acc ? 1 : 0, kg];
    execFileSync(bin, [dir, k.entry, String(gx), String(gy), String(k.threads), String(k.sharedBytes), ...u.map(String)], { stdio: "pipe" });
    const raw = readFileSync(join(dir, "out.out"));
    return { got: Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)), want };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function error(bin: string, k: AnchorChunksKernel, c: Case): number {
  const { got, want } = run(bin, k, c);
  expect(got.every(Number.isFinite), `${k.entry}: every output written, finite`).toBe(true);
  return relativeError(got, want);
}

const CASES: Case[] = [
  { B: 2, T: 40, H: 2, K: 8, V: 12, C: 16, perKey: false, layout: "token", acc: false, seed: 1 },
  { B: 1, T: 77, H: 3, K: 12, V: 4, C: 64, perKey: true, layout: "time", acc: true, seed: 2 },
  { B: 2, T: 33, H: 1, K: 72, V: 68, C: 48, perKey: false, layout: "every2", acc: false, seed: 3 },
  { B: 1, T: 1, H: 2, K: 4, V: 8, C: 64, perKey: true, layout: "token", acc: false, seed: 4 },
  { B: 1, T: 128, H: 1, K: 64, V: 64, C: 64, perKey: false, layout: "token", acc: true, seed: 5 },
  { B: 2, T: 50, H: 3, K: 8, V: 4, C: 16, perKey: false, layout: "heads0", acc: false, seed: 6 },
  // the wide kernels' paths: K and V past one tile with wide loads and stores, a per-key weight, accumulation; and K, V not
  // multiples of 4 (one element a load and a store)
  { B: 1, T: 70, H: 2, K: 72, V: 68, C: 32, perKey: true, layout: "token", acc: true, seed: 7 },
  { B: 2, T: 21, H: 2, K: 6, V: 10, C: 16, perKey: false, layout: "time", acc: true, seed: 8 },
  // a scalar decay's products in key groups (kg < K: GRAM_PRODUCTS "groups"): 8 groups of 9 rows past one tile, 3 of 2
  { B: 1, T: 40, H: 2, K: 72, V: 68, C: 16, perKey: false, layout: "token", acc: false, seed: 9, kg: 9 },
  { B: 2, T: 19, H: 3, K: 6, V: 8, C: 8, perKey: false, layout: "every2", acc: true, seed: 10, kg: 2 },
];

describe.skipIf(!gpp)("decay adjoint chunk products kernel on the CPU emulation vs float64", () => {
  it("every operand-type pair: strided layouts, ragged chunks, K / V past one tile, scalar and per-key weights, accumulation", () => {
    const m = anchorChunksModule();
    const plain = ["seqc_anchor_chunks_bf16_bf16", "seqc_anchor_chunks_bf16_f32", "seqc_anchor_chunks_f32_bf16", "seqc_anchor_chunks_f32_f32"];
    // the plain kernels, then their wide-load / wide-store twins (ANCHOR_VEC "v4"), then the 8 x 4 register-tile twins
    // (ANCHOR_VEC "r8"; the same configurations)
    expect(m.kernels.map((k) => k.entry)).toEqual([...plain, ...plain.map((e) => `${e}_v4`), ...plain.map((e) => `${e}_r8`)]);
    expect(m.kernels.map((k) => k.threads)).toEqual([...plain.map(() => 256), ...plain.map(() => 256), ...plain.map(() => 128)]);
    expect(ANCHOR_CHUNKS_CONFIGS.length).toBe(4);
    const bin = buildEmu(m.source, m.kernels);
    const plainOut = new Map<string, Float64Array>();
    for (const [j, k] of m.kernels.entries())
      for (const c of CASES) {
        const cs = { ...c, seed: c.seed + 10 * (j % plain.length) };
        const { got, want } = run(bin, k, cs);
        expect(got.every(Number.isFinite), `${k.entry}: every output written, finite`).toBe(true);
        expect(relativeError(got, want), `${k.entry} ${JSON.stringify(c)}`).toBeLessThan(1e-6);
        // a wide or r8 twin computes the same sums in the same order: bitwise its plain kernel's output
        const key = `${k.a}${k.b}${JSON.stringify(cs)}`;
        if (!k.vec && !k.r8) plainOut.set(key, got);
        else expect(got.every((v, i) => Object.is(v, plainOut.get(key)![i])), `${k.entry} bitwise as the plain kernel ${JSON.stringify(c)}`).toBe(true);
      }
  }, 300_000);

  it("deliberately broken copies fail: the last staged token dropped; the per-key weight read as the scalar one", () => {
    const drop = anchorChunksModule([{ a: "f32", b: "f32" }], (src) => {
      expect(src).toContain("for (u32 r = 0; r < 32u; ++r)");
      return src.replace("for (u32 r = 0; r < 32u; ++r)", "for (u32 r = 0; r < 31u; ++r)");
    });
    expect(error(buildEmu(drop.source, drop.kernels), drop.kernels[0], CASES[4])).toBeGreaterThan(1e-2);
    const wk = anchorChunksModule([{ a: "f32", b: "f32" }], (src) => {
      expect(src).toContain("(Kd == 1u ? 0u : kk)]");
      return src.replace("(Kd == 1u ? 0u : kk)]", "(Kd == 1u ? 0u : 0u)]");
    });
    expect(error(buildEmu(wk.source, wk.kernels), wk.kernels[0], CASES[1])).toBeGreaterThan(1e-2);
    // the wide kernel: the last of a group's four per-key weights read as the first; the wide store without accumulation
    const w4 = anchorChunksModule([{ a: "bf16", b: "f32", vec: true }], (src) => {
      expect(src).toContain("va.w *= wr[kk + 3u];");
      return src.replace("va.w *= wr[kk + 3u];", "va.w *= wr[kk];");
    });
    expect(error(buildEmu(w4.source, w4.kernels), w4.kernels[0], CASES[6])).toBeGreaterThan(1e-2);
    const st = anchorChunksModule([{ a: "f32", b: "f32", vec: true }], (src) => {
      expect(src).toContain("if (acc) { const float4 q = *o;");
      return src.replace("if (acc) { const float4 q = *o;", "if (0) { const float4 q = *o;");
    });
    expect(error(buildEmu(st.source, st.kernels), st.kernels[0], CASES[4])).toBeGreaterThan(1e-2);
    // the r8 twin: a thread's second four key rows read as its first
    const r8 = anchorChunksModule([{ a: "bf16", b: "bf16", r8: true }], (src) => {
      expect(src).toContain("a5 = *(const float4*)&sA[r * 64u + 8u * tk + 4u];");
      return src.replace("a5 = *(const float4*)&sA[r * 64u + 8u * tk + 4u];", "a5 = *(const float4*)&sA[r * 64u + 8u * tk];");
    });
    expect(error(buildEmu(r8.source, r8.kernels), r8.kernels[0], CASES[4])).toBeGreaterThan(1e-2);
  }, 100_000);

  it.skipIf(!findNvcc())("nvcc -cubin compiles the module for sm_90; ptxas: no spills", () => {
    const m = anchorChunksModule();
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry)))
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
  }, 200_000);
});
