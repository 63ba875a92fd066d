/**
 * The token-aligned delta backward's per-chunk prep kernels (compiler/backends/cuda/delta-prep.ts, tmp/s13/delta-spec.md
 * kernels 1 and 2) on the CPU emulation of CUDA (test/cuda-emu/emu.h) against the float64 reference
 * (test/helpers/delta-ref.ts: prepFwdChunk / prepBwdChunk):
 *   prep_fwd  TI = (I - Luu)^-1, M = Tinv Wd, X = Tinv (Luk V), BM = Kd^T V, NN = Ud, A = exp(G_C)
 *   prep_bwd  M = Tinv^T Ud, X = Tinv^T (Pu^T dY), BM = Qd^T dY, NN = Wd, A = exp(G_C)   (TI: the float64 Tinv, fp32)
 * per-token inputs [B, T, H, w] in fp32 or bf16 (the reference takes the bf16-rounded values), B = 2, H = 3, T = 1 and
 * T = 100 (a ragged last chunk: M and X rows past T must be exactly 0), no decay (LD nullptr) and a scalar log decay
 * down to -20 a step; the shipped C = 64 entries (K = V = 64 and 128) and small configurations (K != V, C = 16 and 32).
 * Deliberately broken copies (Luu's exponent a slot late, Tinv without its last block row, the diagonal blocks' solve
 * a term short, Pu without its diagonal,
 * BM's decay one slot early) must fail. The tensor-core twins (delta-prep-mma.ts, math "tf32" / "tf32x3") with the TF32
 * rounding and the m16n8k8 fragments emulated (test/cuda-emu/mma-tf32.h): tf32x3 within 1e-5, tf32 within 2e-3 (and
 * above 1e-5); broken twins (Luu's diagonal tiles skipped, X's triangular product a k-block short, Tinv's block row a
 * k-block short, prep_bwd's TI read a row off) must fail. nvcc -cubin for sm_90 where installed (the fp32 kernels and the bf16 tf32 twins): no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DELTA_PREP_CONFIGS, DELTA_PREP_MMA_CONFIGS, deltaPrepModule, type DeltaPrepConfig, type DeltaPrepKernel } from "../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { nChunks, prepAll, prepBwdChunk, prepFwdChunk, type DeltaInputs, type DeltaShape } from "./helpers/delta-ref.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-prep-emu.test: g++ is not installed, so the emulated runs are skipped");

// buffers P[i] of the emulator, read from <name>.bin; outputs 7.. written back to <name>.out
const FILES = ["Q", "U", "W", "KK", "VV", "DY", "LD", "TI", "M", "X", "BM", "NN", "A"] as const;
const OUTS = ["TI", "M", "X", "BM", "NN", "A"] as const;
type Out = (typeof OUTS)[number];

/** An emulator executable of a module: argv dir, entry, N, threads, smem, B, T, H. Per-token inputs are handed to the
 * entries through AnyP (a pointer converting to the entry's TIN*); decay "none" gets LD = nullptr. */
function buildEmu(source: string, kernels: DeltaPrepKernel[]): string {
  const p = (i: number) => `AnyP{P[${i}]}`, f = (i: number) => `(float*)P[${i}]`;
  const ld = (k: DeltaPrepKernel) => (k.decay === "none" ? "nullptr" : "(const float*)P[6]");
  const body = (k: DeltaPrepKernel) => k.op === "fwd"
    ? `${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${ld(k)}, SB, ST, SH, ${f(7)}, ${f(8)}, ${f(9)}, ${f(10)}, ${f(11)}, ${f(12)}`
    : `${p(0)}, ${p(1)}, ${p(2)}, ${p(5)}, ${ld(k)}, (const float*)P[7], SB, ST, SH, ${f(8)}, ${f(9)}, ${f(10)}, ${f(11)}, ${f(12)}`;
  const main = `
struct AnyP { void* p; template <class T> operator const T*() const { return (const T*)p; } };
static void* P[${FILES.length}]; static int SB, ST, SH;
${kernels.map((k) => `static void body_${k.entry}() { ${k.entry}(${body(k)}); }`).join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  const unsigned N = (unsigned)atoi(argv[3]), threads = (unsigned)atoi(argv[4]), smem = (unsigned)atoi(argv[5]);
  SB = atoi(argv[6]); ST = atoi(argv[7]); SH = atoi(argv[8]);
  const char* names[${FILES.length}] = {${FILES.map((x) => `"${x}"`).join(", ")}};
  std::vector<char> b[${FILES.length}];
  for (int i = 0; i < ${FILES.length}; ++i) { b[i] = readf(dir + "/" + names[i] + ".bin"); P[i] = b[i].data(); }
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = N; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  for (int i = 7; i < ${FILES.length}; ++i) { FILE* f = fopen((dir + "/" + names[i] + ".out").c_str(), "wb"); fwrite(b[i].data(), 1, b[i].size(), f); fclose(f); }
  return 0;
}
`;
  return compileLowRankEmu(source, main, "delta-prep", kernels.some((k) => k.math));
}

type Shape = Pick<DeltaPrepConfig, "C" | "K" | "V" | "decay">;
interface Case { s: DeltaShape; inp: DeltaInputs; dY: Float64Array; words: Record<string, Buffer> }

/** Random inputs (never zero) of B, T, H at the shape, rounded to the entry's input type (the reference takes the
 * rounded values); ld uniform in [minLd, 0) (float32) with a decay. */
function makeCase(sh: Shape, tin: "f32" | "bf16", B: number, T: number, H: number, minLd: number, seed: number): Case {
  const s: DeltaShape = { B, T, H, C: sh.C, K: sh.K, V: sh.V };
  const r = rng(seed);
  const words: Record<string, Buffer> = {};
  const draw = (name: string, w: number, scale: number) => {
    const x = Float64Array.from({ length: B * T * H * w }, () => { const v = scale * (2 * r()); return Math.abs(v) < 1e-3 ? scale * 0.5 : v; });
    if (tin === "bf16") { const b = bf16(x); words[name] = b.words; return b.values; }
    const v = Float64Array.from(new Float32Array(x));
    words[name] = f32Bytes(v);
    return v;
  };
  const sc = 2 / Math.sqrt(sh.K);
  const q = draw("Q", sh.K, 1), u = draw("U", sh.K, sc), w = draw("W", sh.K, sc), k = draw("KK", sh.K, 1), v = draw("VV", sh.V, 1), dY = draw("DY", sh.V, 1);
  const ld = sh.decay === "none" ? null : Float64Array.from({ length: B * T * H }, () => Math.fround((r() + 0.5 + 1e-3) * minLd));
  words.LD = f32Bytes(ld ?? new Float64Array(1).fill(NaN));
  return { s, inp: { u, w, k, v, q, ld, S: null }, dY, words };
}

type Outs = Record<Out, Float64Array>;

/** Runs `k` on the case (prep_bwd reads TI = ti) and returns every output buffer (NaN-filled before: unwritten shows). */
function runEmu(bin: string, k: DeltaPrepKernel, cs: Case, ti: Float64Array): Outs {
  return inScratchDir("seqc-dprep-", (dir) => {
    const { B, T, H, C, K, V } = cs.s, N = B * H * nChunks(cs.s);
    const sizes: Record<Out, number> = { TI: N * C * C, M: N * C * K, X: N * C * V, BM: N * K * V, NN: N * C * K, A: N };
    for (const name of FILES) {
      if (name === "TI") writeFileSync(join(dir, "TI.bin"), f32Bytes(k.op === "bwd" ? ti : new Float64Array(sizes.TI).fill(NaN)));
      else if ((OUTS as readonly string[]).includes(name)) writeFileSync(join(dir, `${name}.bin`), f32Bytes(new Float64Array(sizes[name as Out]).fill(NaN)));
      else writeFileSync(join(dir, `${name}.bin`), cs.words[name]);
    }
    execFileSync(bin, [dir, k.entry, String(N), String(k.threads), String(k.sharedBytes), String(B), String(T), String(H)], { stdio: "pipe" });
    return Object.fromEntries(OUTS.map((o) => [o, readF32(join(dir, `${o}.out`))])) as Outs;
  });
}

/** The entry's errors (relative, per output) against float64 rounded to fp32, after checking that every output is finite and that
 * M and X rows of slots past T are exactly 0. */
function errors(bin: string, k: DeltaPrepKernel, cs: Case): Record<string, number> {
  const { s } = cs;
  const fwd = prepAll(s, (b, h, c) => prepFwdChunk(cs.inp, s, b, h, c));
  const ti = Float64Array.from(new Float32Array(fwd.TI));
  const nC = nChunks(s), CC = s.C * s.C;
  const want = k.op === "fwd" ? fwd : prepAll(s, (b, h, c) => prepBwdChunk(cs.inp, cs.dY, ti.subarray(((b * s.H + h) * nC + c) * CC, ((b * s.H + h) * nC + c + 1) * CC), s, b, h, c));
  const got = runEmu(bin, k, cs, ti);
  const names: Out[] = k.op === "fwd" ? ["TI", "M", "X", "BM", "NN", "A"] : ["M", "X", "BM", "NN", "A"];
  const e: Record<string, number> = {};
  for (const o of names) {
    expect(got[o].every(Number.isFinite), `${k.entry} T=${s.T}: ${o} finite (all written)`).toBe(true);
    e[o] = relativeError(got[o], Float64Array.from(new Float32Array(want[o])));  // fp32-rounded: exp(G_C) underflows past ~-87
  }
  for (let n = 0; n < s.B * s.H * nC; n++) {
    const used = Math.min(s.C, s.T - (n % nC) * s.C);
    for (const [o, w] of [["M", s.K], ["X", s.V]] as const)
      for (let i = (n * s.C + used) * w; i < (n + 1) * s.C * w; i++) if (got[o][i] !== 0) throw new Error(`${k.entry} T=${s.T}: ${o} of chunk ${n} slot ${Math.floor(i / w) % s.C} (past T) is ${got[o][i]}, not 0`);
  }
  return e;
}

/** Whether the checks catch a (deliberately broken) kernel: output `out` off by more than 1e-3, or errors()'s own checks
 * (finite outputs, zero rows past T) failing. */
function caught(bin: string, k: DeltaPrepKernel, cs: Case, out: string): boolean {
  try {
    return errors(bin, k, cs)[out] > 1e-3;
  } catch {
    return true;
  }
}

const worst = (e: Record<string, number>) => Math.max(...Object.values(e));
const fmt = (e: Record<string, number>) => Object.entries(e).map(([o, x]) => `${o} ${x.toExponential(2)}`).join(", ");

const SMALL: Shape[] = [
  { decay: "none", C: 16, K: 8, V: 12 },
  { decay: "scalar", C: 32, K: 16, V: 24 },
  { decay: "scalar", C: 16, K: 12, V: 8 },
];
const all = (s: Shape): DeltaPrepConfig[] => (["fwd", "bwd"] as const).flatMap((op) => (["f32", "bf16"] as const).map((tin) => ({ op, tin, ...s })));

describe.skipIf(!gpp)("the delta backward's prep kernels on the CPU emulation vs float64", () => {
  it("small configurations (C = 16 / 32, K != V): fp32 and bf16 inputs, T = 1, ragged chunks, log decays down to -20", () => {
    const m = deltaPrepModule(SMALL.flatMap(all));
    const bin = buildEmu(m.source, m.kernels);
    for (const k of m.kernels) {
      for (const [T, minLd] of [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]] as const) {
        const e = errors(bin, k, makeCase(k, k.tin, 2, T, 3, minLd, 11 + T + k.K));
        if (process.env.DPREP_LOG) console.log(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
        expect(worst(e), `${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`).toBeLessThan(1e-5);
      }
    }
  }, 300_000);

  it("the shipped C = 64, K = V = 64 entries: B = 2, H = 3, T = 1 and 100, fp32 and bf16, no decay and one down to -20", () => {
    const m = deltaPrepModule(DELTA_PREP_CONFIGS.filter((c) => c.K === 64));
    expect(m.kernels.map((k) => k.entry)).toEqual(["fwd", "bwd"].flatMap((op) => ["none", "scalar"].flatMap((d) => ["f32", "bf16"].map((t) => `seqc_delta_prep_${op}_${d}_c64k64v64_${t}`))));
    const bin = buildEmu(m.source, m.kernels);
    const lines: string[] = [];
    for (const k of m.kernels) {
      for (const [T, minLd] of k.decay === "none" ? [[1, 0], [100, 0]] as const : [[1, -5], [100, -1], [100, -20]] as const) {
        const e = errors(bin, k, makeCase(k, k.tin, 2, T, 3, minLd, 5 + T));
        lines.push(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
        expect(worst(e), lines[lines.length - 1]).toBeLessThan(1e-5);
      }
    }
    console.log(lines.join("\n"));
  }, 600_000);

  it("the shipped K = V = 128 entries and their tf32 twins: B = 1, H = 2, T = 100 (a ragged chunk), fp32 and bf16, no decay and one down to -1", () => {
    const m = deltaPrepModule([...DELTA_PREP_CONFIGS, ...DELTA_PREP_MMA_CONFIGS].filter((c) => c.K === 128));
    expect(m.kernels.length).toBe(12);
    const bin = buildEmu(m.source, m.kernels);
    const lines: string[] = [];
    for (const k of m.kernels) {
      const e = errors(bin, k, makeCase(k, k.tin, 1, 100, 2, k.decay === "none" ? 0 : -1, 13));
      lines.push(`${k.entry} T=100: ${fmt(e)}`);
      expect(worst(e), lines[lines.length - 1]).toBeLessThan(k.math ? 2e-3 : 1e-5);
    }
    console.log(lines.join("\n"));
  }, 600_000);

  it("deliberately broken copies fail: Luu's exponent a slot late; Tinv without its last block row; the diagonal blocks' solve a term short; Pu without its diagonal; BM's decay a slot early", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 16, V: 24 };
    const broken = (op: "fwd" | "bwd", from: string, to: string, out: string) => {
      const cfg: DeltaPrepConfig[] = [{ op, tin: "f32", ...s }];
      const m = deltaPrepModule(cfg, (src) => {
        expect(src).toContain(from);
        return src.replace(from, to);
      });
      expect(caught(buildEmu(m.source, m.kernels), m.kernels[0], makeCase(s, "f32", 1, 40, 2, -1, 3), out), `${op} ${from} -> ${to}`).toBe(true);
    };
    broken("fwd", "m[j] = f < a ? expf((float)(sG[a] - sG[f + 1u]))", "m[j] = f < a ? expf((float)(sG[a + 1u] - sG[f + 1u]))", "TI");
    broken("fwd", "for (u32 r = 1; r < 2u; ++r)", "for (u32 r = 1; r < 1u; ++r)", "TI");
    broken("fwd", "for (u32 f = 0; f < a; ++f) s = fmaf(sL[(d0 + a)", "for (u32 f = 0; f + 1u < a; ++f) s = fmaf(sL[(d0 + a)", "TI");
    broken("bwd", "m[j] = f <= a ?", "m[j] = f < a ?", "X");
    broken("bwd", "sE[32u + a] * sQT", "sE[a] * sQT", "BM");
  }, 300_000);

  // the tensor-core twins (delta-prep-mma.ts), the TF32 rounding and the m16n8k8 fragments emulated (test/cuda-emu/mma-tf32.h)
  const SMALL_MMA: Shape[] = [
    { decay: "none", C: 16, K: 16, V: 8 },
    { decay: "scalar", C: 32, K: 16, V: 24 },
    { decay: "scalar", C: 48, K: 32, V: 16 },
  ];
  const BOUND = { tf32: 2e-3, tf32x3: 1e-5 } as const;

  it("the twins, small configurations and the shipped K = V = 64 ones: tf32x3 within 1e-5, tf32 within 2e-3 (and above 1e-5: its rounding is emulated)", () => {
    const shipped = DELTA_PREP_MMA_CONFIGS.filter((c) => c.K === 64 && c.op === "fwd").map((c) => ({ decay: c.decay, C: c.C, K: c.K, V: c.V }));
    expect(shipped.length).toBe(2);
    const lines: string[] = [];
    for (const math of ["tf32", "tf32x3"] as const) {
      const m = deltaPrepModule([...SMALL_MMA, ...shipped].flatMap((s) => all(s).map((c) => ({ ...c, math }))));
      const bin = buildEmu(m.source, m.kernels);
      for (const k of m.kernels) {
        const cases = k.K === 64 ? [[100, -1]] as const : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]] as const;
        for (const [T, minLd] of cases) {
          const e = errors(bin, k, makeCase(k, k.tin, 2, T, 2, minLd, 23 + T + k.K));
          lines.push(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
          expect(worst(e), lines[lines.length - 1]).toBeLessThan(BOUND[math]);
          if (math === "tf32" && T > 1) expect(worst(e), `${k.entry}: TF32 rounding shows`).toBeGreaterThan(1e-5);
        }
      }
    }
    if (process.env.DPREP_LOG) console.log(lines.join("\n"));
  }, 900_000);

  it("broken twins fail: Luu's diagonal tiles skipped; X's triangular product a k-block short; Tinv's block row a k-block short; prep_bwd's TI read a row off", () => {
    const s: Shape = { decay: "scalar", C: 32, K: 16, V: 24 };
    const broken = (op: "fwd" | "bwd", from: string, to: string, out: string, last = false) => {
      const m = deltaPrepModule([{ op, tin: "f32", ...s, math: "tf32x3" }], (src) => {
        expect(src).toContain(from);
        const at = last ? src.lastIndexOf(from) : src.indexOf(from);
        return src.slice(0, at) + to + src.slice(at + from.length);
      });
      expect(caught(buildEmu(m.source, m.kernels), m.kernels[0], makeCase(s, "f32", 1, 40, 2, -1, 8), out), `${op} ${from} -> ${to}`).toBe(true);
    };
    // Luu's tiles on the diagonal skipped (only the tiles wholly below it computed)
    broken("fwd", "(n0 > r0 + 15u ? 0u : 16u)", "(n0 + 15u > r0 ? 0u : 16u)", "TI");
    // X = Tinv LV (the module's last triangular product) without its diagonal k-block
    broken("fwd", "for (u32 k0 = 0u; k0 < r0 + 16u; k0 += 8u)", "for (u32 k0 = 0u; k0 < r0 + 8u; k0 += 8u)", "X", true);
    // Tinv's block row (mma, 3xTF32): Tinv[r, 0:r] = Tinv[r, r] P without the diagonal block's first 8 columns
    broken("fwd", "for (u32 k0 = 0u; k0 < 16u; k0 += 8u)", "for (u32 k0 = 8u; k0 < 16u; k0 += 8u)", "TI");
    // prep_bwd's TI load a row off
    broken("bwd", "*(float4*)&sTi[a * 40u + 4u * f4] = *(const float4*)&TI[", "*(float4*)&sTi[(a + 1u) % 32u * 40u + 4u * f4] = *(const float4*)&TI[", "M");
  }, 300_000);

  it("configurations that do not fit are refused", () => {
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 24, K: 16, V: 16 }])).toThrow(/multiple of 16/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 64, K: 10, V: 16 }])).toThrow(/multiples of 4/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "f32", C: 64, K: 192, V: 192 }])).toThrow(/shared memory/);
    expect(() => deltaPrepModule([{ op: "fwd", decay: "none", tin: "bf16", C: 64, K: 24, V: 16, math: "tf32" }])).toThrow(/multiples of 16/);
    expect(() => deltaPrepModule([{ op: "bwd", decay: "none", tin: "bf16", C: 64, K: 192, V: 192, math: "tf32" }])).toThrow(/shared memory/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped module (C = 64, K = V = 64 and 128, and the bf16 tf32 twins) for sm_90; ptxas: no spills", () => {
    const m = deltaPrepModule([...DELTA_PREP_CONFIGS, ...DELTA_PREP_MMA_CONFIGS]);
    expect(m.kernels.length).toBe(24);
    const rows: string[] = [];
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
      rows.push(`${e}: ${u.registers} registers, ${m.kernels.find((k) => k.entry === e)!.sharedBytes} bytes shared`);
    }
    console.log(rows.join("\n"));
  }, 200_000);
});
