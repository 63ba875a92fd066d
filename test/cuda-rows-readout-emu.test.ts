/**
 * The per-key-decay rows readout kernel (compiler/backends/cuda/rows-readout.ts; the torch target's GLA-style
 * transposed cores, runtime/torch/seqc_chunked.py PER_KEY_TRANSPOSED "kernel") on the CPU emulation of CUDA
 * (test/cuda-emu/emu.h) against a float64 implementation of its recurrence
 *   S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T,  out_r,t = S_t c_r,t
 * on random inputs: T = 1, odd T, T not a multiple of the token tile, B and H > 1, odd K and V, K over several
 * blocks, V over several value slices (partial sums per slice), initial states, several pairs and readouts, log
 * decays down to -20 per step; each in one segment and in several (the ends, scan and readout launches; T not a
 * multiple of the segment, segments across tiles, 1-token segments); and nvcc -ptx of the module for sm_90 where
 * nvcc is installed.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROWS_READOUT_LOW, ROWS_READOUT_LOW_TILES, ROWS_READOUT_TILES, rowsReadoutModule, type RowsReadoutKernel } from "../compiler/backends/cuda/rows-readout.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { rng } from "./helpers/random.ts";
import { bf16 } from "./helpers/bf16-round.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-rows-readout-emu.test: g++ is not installed, so the emulated runs are skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

interface Case { B: number; T: number; H: number; K: number; V: number; init: boolean; minLd: number }
interface Data { ld: Float64Array; a: Float64Array[]; b: Float64Array[]; c: Float64Array[]; S0: Float64Array | null }

function data(k: RowsReadoutKernel, c: Case, seed: number): Data {
  const r = rng(seed);
  const nK = c.B * c.T * c.H * c.K, nV = c.B * c.T * c.H * c.V;
  // log decays in [minLd, 0] (uniform), the rest in [-1, 1)
  const ld = Float64Array.from({ length: nK }, () => (r() + 0.5) * c.minLd);
  const arr = (n: number) => Float64Array.from({ length: n }, () => 2 * r());
  return {
    ld,
    a: Array.from({ length: k.pairs }, () => arr(nK)),
    b: Array.from({ length: k.pairs }, () => arr(nV)),
    c: Array.from({ length: k.readouts }, () => arr(nV)),
    S0: c.init ? arr(c.B * c.H * c.K * c.V) : null,
  };
}

/** The data as a kernel with bf16 operands (k.low) reads it: those operands rounded to bf16. */
function lowData(k: RowsReadoutKernel, d: Data): Data {
  const la = k.low === "abc", lb = !!k.low;
  return { ...d, a: la ? d.a.map((x) => bf16(x).values) : d.a, b: lb ? d.b.map((x) => bf16(x).values) : d.b, c: lb ? d.c.map((x) => bf16(x).values) : d.c };
}

/** The recurrence in float64 at the float32-rounded inputs. */
function reference(c: Case, d: Data): Float64Array[] {
  const f = (x: Float64Array) => Float64Array.from(x, Math.fround);
  const ld = f(d.ld), a = d.a.map(f), b = d.b.map(f), cc = d.c.map(f), S0 = d.S0 && f(d.S0);
  const { B, T, H, K, V } = c;
  const outs = cc.map(() => new Float64Array(B * T * H * K));
  const S = new Float64Array(K * V);
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      for (let x = 0; x < K * V; x++) S[x] = S0 ? S0[(bb * H + h) * K * V + x] : 0;
      for (let t = 0; t < T; t++) {
        const rk = ((bb * T + t) * H + h) * K, rv = ((bb * T + t) * H + h) * V;
        for (let i = 0; i < K; i++) {
          const e = Math.exp(ld[rk + i]);
          for (let j = 0; j < V; j++) {
            let s = e * S[i * V + j];
            for (let p = 0; p < a.length; p++) s += a[p][rk + i] * b[p][rv + j];
            S[i * V + j] = s;
          }
          for (let q = 0; q < cc.length; q++) {
            let acc = 0;
            for (let j = 0; j < V; j++) acc += S[i * V + j] * cc[q][rv + j];
            outs[q][rk + i] = acc;
          }
        }
      }
    }
  return outs;
}

/** An emulator executable for the module's kernels (readout, the segments' ends, the scan): argv[1] a directory with
 * launch.txt (the buffers' names, then per launch: entry, grid, block, shared, its pointer arguments by buffer name
 * and its u32 arguments) and each buffer as raw float32 in <name>.bin; runs the launches in order and writes o*.out. */
function buildEmu(source: string, kernels: RowsReadoutKernel[]): string {
  const arity = new Map<string, [number, number]>();
  for (const k of kernels) {
    arity.set(k.entry, [1 + 2 * k.pairs + 2 * k.readouts + 1, 6]);
    arity.set(k.segments.entry, [1 + 2 * k.pairs + 2 * k.readouts + 1, 7]);
    arity.set(k.ends.entry, [1 + 2 * k.pairs + 2, 6]);
    arity.set(k.scan.entry, [3, 6]);
  }
  const tramp = [...arity].map(([e, [np, nu]]) =>
    `static void body_${e}() { ${e}(${[...Array.from({ length: np }, (_, i) => `Ptr{PTR[${i}]}`), ...Array.from({ length: nu }, (_, i) => `U[${i}]`)].join(", ")}); }`);
  const main = `
#include <map>
static std::map<std::string, std::vector<char>> BUFS; static void* PTR[32]; static unsigned U[16];
// a buffer as the kernel's pointer type (float32 or bf16 words)
struct Ptr { void* p; template <class X> operator X*() const { return (X*)p; } };
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  FILE* lf = fopen((dir + "/launch.txt").c_str(), "r");
  int nb, nl;
  if (fscanf(lf, "%d", &nb) != 1) return 2;
  std::vector<std::string> outs;
  for (int i = 0; i < nb; ++i) { char bn[64]; if (fscanf(lf, "%63s", bn) != 1) return 2; BUFS[bn] = readf(dir + "/" + bn + ".bin"); if (bn[0] == 'o') outs.push_back(bn); }
  if (fscanf(lf, "%d", &nl) != 1) return 2;
  for (int l = 0; l < nl; ++l) {
    char name[256]; unsigned gx, gy, nthr, smem; int np, nu;
    if (fscanf(lf, "%255s %u %u %u %u %d", name, &gx, &gy, &nthr, &smem, &np) != 6) return 2;
    for (int i = 0; i < np; ++i) { char bn[64]; if (fscanf(lf, "%63s", bn) != 1) return 2; if (!BUFS.count(bn)) { fprintf(stderr, "no buffer %s\\n", bn); return 2; } PTR[i] = BUFS[bn].data(); }
    if (fscanf(lf, "%d", &nu) != 1) return 2;
    for (int i = 0; i < nu; ++i) if (fscanf(lf, "%u", &U[i]) != 1) return 2;
    void (*fn)() = nullptr;
${[...arity.keys()].map((e) => `    if (!strcmp(name, "${e}")) fn = body_${e};`).join("\n")}
    if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
    emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
    emu::launch(fn, g, blk, smem);
  }
  for (auto& o : outs) { FILE* f = fopen((dir + "/" + o + ".out").c_str(), "wb"); fwrite(BUFS[o].data(), 1, BUFS[o].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "rows-readout");
}

/** Launch the kernels as runtime/torch/seqc_chunked.py rows_readout_kernel does for `seg` tokens per segment (>= T: one
 * segment, the readout kernel alone from S0): grid B H ceil(K / kr) blocks by segments x value slices; with several
 * segments first the ends kernel (segments but the last), the scan, then the segmented readout (k.segments) from the
 * starts; partial slices summed. */
function runEmu(bin: string, k: RowsReadoutKernel, c: Case, d: Data, seg: number): Float64Array[] {
  const dir = mkdtempSync(join(tmpdir(), "seqc-rows-"));
  try {
    const slices = Math.ceil(c.V / k.vs);
    const s = Math.min(seg, c.T), nseg = Math.ceil(c.T / s);
    const f32 = (x: Float64Array) => Buffer.from(Float32Array.from(x).buffer);
    const nState = c.B * c.H * c.K * c.V;
    // St and P start as NaN: a slot the kernels read before writing it shows up in the outputs
    const bufs: Record<string, Buffer> = { ld: f32(d.ld), S0: d.S0 ? f32(d.S0) : Buffer.alloc(4), St: f32(new Float64Array(nseg * nState).fill(NaN)), P: f32(new Float64Array(nseg * c.B * c.H * c.K).fill(NaN)) };
    // bf16 operands (k.low) as 16-bit words: "bc" the b_p and c_r, "abc" also the a_p
    const la = k.low === "abc", lb = !!k.low;
    d.a.forEach((x, p) => (bufs[`a${p}`] = la ? bf16(x).words : f32(x)));
    d.b.forEach((x, p) => (bufs[`b${p}`] = lb ? bf16(x).words : f32(x)));
    d.c.forEach((x, q) => (bufs[`c${q}`] = lb ? bf16(x).words : f32(x)));
    const n = c.B * c.T * c.H * c.K;
    for (let q = 0; q < k.readouts; q++) bufs[`o${q}`] = f32(new Float64Array(slices * n).fill(NaN));
    for (const [name, b] of Object.entries(bufs)) writeFileSync(join(dir, `${name}.bin`), b);
    const as = Array.from({ length: k.pairs }, (_, p) => `a${p}`), bs = Array.from({ length: k.pairs }, (_, p) => `b${p}`);
    const cs = Array.from({ length: k.readouts }, (_, q) => `c${q}`), os = Array.from({ length: k.readouts }, (_, q) => `o${q}`);
    const gx = c.B * c.H * Math.ceil(c.K / k.kr);
    const init = c.init ? 1 : 0;
    const launches: string[] = [];
    const launch = (l: { entry: string; threads: number; sharedBytes: number }, g: [number, number], ptrs: string[], us: number[]) =>
      launches.push(`${l.entry} ${g[0]} ${g[1]} ${l.threads} ${l.sharedBytes} ${ptrs.length} ${ptrs.join(" ")} ${us.length} ${us.join(" ")}`);
    if (nseg > 1) {
      launch(k.ends, [gx, (nseg - 1) * slices], ["ld", ...as, ...bs, "St", "P"], [c.B, c.T, c.H, c.K, c.V, s]);
      launch(k.scan, [Math.ceil(nState / k.scan.threads), 1], ["St", "P", "S0"], [c.B, c.H, c.K, c.V, nseg, init]);
    }
    if (nseg > 1) launch(k.segments, [gx, nseg * slices], ["ld", ...as, ...bs, ...cs, "St", ...os], [c.B, c.T, c.H, c.K, c.V, 1, s]);
    else launch(k, [gx, slices], ["ld", ...as, ...bs, ...cs, "S0", ...os], [c.B, c.T, c.H, c.K, c.V, init]);
    writeFileSync(join(dir, "launch.txt"), `${Object.keys(bufs).length} ${Object.keys(bufs).join(" ")}\n${launches.length}\n${launches.join("\n")}\n`);
    execFileSync(bin, [dir], { stdio: "pipe" });
    return Array.from({ length: k.readouts }, (_, q) => {
      const raw = readFileSync(join(dir, `o${q}.out`));
      const o = new Float32Array(raw.buffer, raw.byteOffset, slices * n);
      const sum = new Float64Array(n);
      for (let s = 0; s < slices; s++) for (let x = 0; x < n; x++) sum[x] += o[s * n + x];
      return sum;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each case in each of `segs` (tokens per segment; Infinity: one segment) against the float64 recurrence. */
function check(k: RowsReadoutKernel, bin: string, cases: Case[], tol: number, segs: number[] = [Infinity]) {
  for (const [n, c] of cases.entries()) {
    const d = data(k, c, 7 + 13 * n + c.T);
    const ref = reference(c, lowData(k, d));
    for (const seg of segs) {
      const got = runEmu(bin, k, c, d, seg);
      const label = `${k.entry} B=${c.B} T=${c.T} H=${c.H} K=${c.K} V=${c.V}${c.init ? " init" : ""} ld>=${c.minLd} seg=${seg}`;
      for (let q = 0; q < ref.length; q++) {
        expect(got[q].every(Number.isFinite), `${label}: out${q} finite`).toBe(true);
        expect(relativeError(got[q], ref[q]), `${label}: out${q}`).toBeLessThan(tol);
      }
    }
  }
}

describe.skipIf(!gpp)("rows readout kernel on the CPU emulation vs float64", () => {
  it("one pair, one readout: every tile configuration; T = 1, odd T, T past the tile, init, B and H > 1; one segment, 8 segments of 5 tokens (37 = 7 x 5 + 2), 3 of 16", () => {
    const m = rowsReadoutModule([{ pairs: 1, readouts: 1 }]);
    const bin = buildEmu(m.source, m.kernels);
    for (const k of m.kernels)
      check(k, bin, [
        { B: 1, T: 1, H: 1, K: 5, V: 7, init: false, minLd: -1 },
        { B: 2, T: 37, H: 2, K: 5, V: 7, init: true, minLd: -1 },
      ], 1e-5, [Infinity, 5, 16]);
  }, 300_000);

  it("K over several blocks, V over several value slices, T not a multiple of the tile (70 = 2 x 32 + 6)", () => {
    const m = rowsReadoutModule([{ pairs: 1, readouts: 1 }], [{ kr: 16, tv: 4, vt: 4, tt: 32 }, { kr: 32, tv: 8, vt: 8, tt: 32 }, { kr: 16, tv: 4, vt: 4, tt: 16, red: "smem" }]);
    const bin = buildEmu(m.source, m.kernels);
    // segments of 32 (a tile each for tt = 32, two for 16) and 24 (across tiles; the last segment 22 tokens) with value slices
    for (const k of m.kernels) check(k, bin, [{ B: 1, T: 70, H: 3, K: 40, V: 37, init: true, minLd: -0.5 }], 1e-5, [Infinity, 32, 24]);
  }, 300_000);

  it("two pairs and three readouts; log decays down to -20 per step (no NaN / Inf, the state forgets); shuffle and shared-memory reductions; segments of 7 and 1 token", () => {
    const m = rowsReadoutModule([{ pairs: 2, readouts: 3 }], [{ kr: 16, tv: 8, vt: 4, tt: 16 }, { kr: 8, tv: 4, vt: 4, tt: 8, red: "smem" }]);
    const bin = buildEmu(m.source, m.kernels);
    // segments of 7 and 1 token: the decay products (down to exp(-140)) and the start states' scan; no initial state
    for (const k of m.kernels) check(k, bin, [
      { B: 2, T: 45, H: 1, K: 9, V: 11, init: true, minLd: -1 },
      { B: 1, T: 40, H: 2, K: 6, V: 5, init: true, minLd: -20 },
      { B: 2, T: 23, H: 1, K: 6, V: 9, init: false, minLd: -2 },
    ], 1e-5, [Infinity, 7, 1]);
  }, 300_000);
});

describe.skipIf(!gpp)("rows readout kernel with bf16 operands (ROWS_READOUT_LOW) on the CPU emulation vs float64", () => {
  const m = rowsReadoutModule([{ pairs: 1, readouts: 1 }, { pairs: 2, readouts: 1 }], ROWS_READOUT_TILES, ROWS_READOUT_LOW);
  const bin = buildEmu(m.source, m.kernels);
  it("twins for the first tiles only, after the float32 kernels, whose source is unchanged", () => {
    const plain = rowsReadoutModule([{ pairs: 1, readouts: 1 }, { pairs: 2, readouts: 1 }]);
    expect(m.kernels.slice(0, plain.kernels.length)).toEqual(plain.kernels);
    expect(m.kernels.filter((k) => k.low).map((k) => [k.low, k.kr, k.tv, k.vt, k.tt])).toEqual(
      ROWS_READOUT_LOW.flatMap((l) => [1, 2].flatMap(() => ROWS_READOUT_TILES.slice(0, ROWS_READOUT_LOW_TILES).map((t) => [l, t.kr, t.tv, t.vt, t.tt]))));
    for (const k of plain.kernels) expect(m.source).toContain(plain.source.slice(plain.source.indexOf(`void __launch_bounds__(${k.threads}) ${k.entry}(`), plain.source.indexOf(`void __launch_bounds__(${k.threads}) ${k.entry}_g(`)));
  });
  it("\"bc\" and \"abc\" twins: T = 1, odd T past the tile, init, B and H > 1, two pairs, one and several segments", () => {
    for (const k of m.kernels.filter((x) => x.low))
      check(k, bin, [
        { B: 1, T: 1, H: 1, K: 5, V: 7, init: false, minLd: -1 },
        { B: 2, T: 37, H: 2, K: 5, V: 7, init: true, minLd: -1 },
        { B: 1, T: 70, H: 1, K: 40, V: 37, init: true, minLd: -0.5 },
      ], 1e-5, [Infinity, 5]);
  }, 300_000);
  it("a kernel fed float32 words where it reads bf16 fails the comparison (the check can fail)", () => {
    const k = m.kernels.find((x) => x.low === "abc" && x.pairs === 1)!;
    const c = { B: 1, T: 9, H: 1, K: 5, V: 7, init: false, minLd: -1 };
    const d = data(k, c, 3);
    const wrong = runEmu(bin, { ...k, low: undefined }, c, d, Infinity);
    const err = relativeError(wrong[0], reference(c, lowData(k, d))[0]);
    expect(err < 1e-2, `error ${err}`).toBe(false); // (NaN where a float's low half reads as a NaN word)
  }, 300_000);
});

describe.skipIf(!findNvcc())("rows readout kernel: nvcc", () => {
  it("the module (1 and 2 pairs / readouts, every tile: one-segment, segmented, ends and scan entries) compiles to sm_90 PTX", () => {
    const m = rowsReadoutModule([{ pairs: 1, readouts: 1 }, { pairs: 2, readouts: 1 }, { pairs: 1, readouts: 2 }], ROWS_READOUT_TILES, ROWS_READOUT_LOW);
    const r = nvccPtx(m.source, 90);
    for (const k of m.kernels) for (const e of [k.entry, k.segments.entry, k.ends.entry, k.scan.entry]) expect(r.ptx).toContain(`.entry ${e}(`);
  }, 120_000);
});
