/**
 * The delta prep kernels' emulation harness (test/cuda-delta-prep-emu, test/cuda-delta-prep-key-emu): an emulator
 * executable of a module (test/cuda-emu/emu.h), random cases (fp32 / bf16 inputs, no decay, a scalar or a per-key log
 * decay), a run of one entry and its errors per output against the float64 reference (test/helpers/delta-ref.ts
 * prepFwdChunk / prepBwdChunk), with the checks that every output is finite and that M and X rows past T are 0; what
 * both test files run the same way: the twins' checks, broken copies, ptxas's usage.
 */
import { expect } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { deltaPrepModule, type DeltaPrepConfig, type DeltaPrepDecay, type DeltaPrepKernel } from "../../compiler/backends/cuda/delta-prep.ts";
import { findNvcc } from "../../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import { bf16 } from "./bf16-round.ts";
import { nChunks, prepAll, prepBwdChunk, prepFwdChunk, type DeltaInputs, type DeltaShape } from "./delta-ref.ts";
import { compileLowRankEmu, emuGridMain, f32Bytes, inScratchDir, readF32 } from "./lowrank-emu.ts";
import { ptxasUsage } from "./ptxas-usage.ts";
import { rng } from "./random.ts";

export const gpp = spawnSync("g++", ["--version"]).status === 0;

// buffers P[i] of the emulator, read from <name>.bin; outputs 7.. written back to <name>.out
const FILES = ["Q", "U", "W", "KK", "VV", "DY", "LD", "TI", "M", "X", "BM", "NN", "A"] as const;
const OUTS = ["TI", "M", "X", "BM", "NN", "A"] as const;
type Out = (typeof OUTS)[number];

/** An emulator executable of a module: argv dir, entry, N, threads, smem, B, T, H. Per-token inputs are handed to the
 * entries through AnyP (a pointer converting to the entry's TIN*); decay "none" gets LD = nullptr. */
export function buildEmu(source: string, kernels: readonly DeltaPrepKernel<DeltaPrepDecay>[]): string {
  const p = (i: number) => `AnyP{P[${i}]}`, f = (i: number) => `(float*)P[${i}]`;
  const call = (entry: string) => {
    const k = kernels.find((x) => x.entry === entry)!, ld = k.decay === "none" ? "nullptr" : "(const float*)P[6]";
    return k.op === "fwd"
      ? `${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${ld}, SB, ST, SH, ${f(7)}, ${f(8)}, ${f(9)}, ${f(10)}, ${f(11)}, ${f(12)}`
      : `${p(0)}, ${p(1)}, ${p(2)}, ${p(5)}, ${ld}, (const float*)P[7], SB, ST, SH, ${f(8)}, ${f(9)}, ${f(10)}, ${f(11)}, ${f(12)}`;
  };
  const main = `
struct AnyP { void* p; template <class T> operator const T*() const { return (const T*)p; } };
${emuGridMain(kernels.map((k) => k.entry), call, FILES, ["SB", "ST", "SH"], [7, 8, 9, 10, 11, 12])}`;
  return compileLowRankEmu(source, main, "delta-prep", kernels.some((k) => k.math));
}

export type Shape = Pick<DeltaPrepConfig<DeltaPrepDecay>, "C" | "K" | "V" | "decay">;
export interface Case { s: DeltaShape; inp: DeltaInputs; dY: Float64Array; words: Record<string, Buffer> }

/** Random inputs (never zero) of B, T, H at the shape, rounded to the entry's input type (the reference takes the
 * rounded values); ld (float32, [B, T, H] or per key [B, T, H, K]) uniform in [minLd, 0) with a decay. */
export function makeCase(sh: Shape, tin: "f32" | "bf16", B: number, T: number, H: number, minLd: number, seed: number): Case {
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
  const perKey = sh.decay === "key";
  const ld = sh.decay === "none" ? null : Float64Array.from({ length: B * T * H * (perKey ? sh.K : 1) }, () => Math.fround((r() + 0.5 + 1e-3) * minLd));
  words.LD = f32Bytes(ld ?? new Float64Array(1).fill(NaN));
  return { s, inp: { u, w, k, v, q, ld, S: null, perKey }, dY, words };
}

type Outs = Record<Out, Float64Array>;

/** Runs `k` on the case (prep_bwd reads TI = ti) and returns every output buffer (NaN-filled before: unwritten shows). */
export function runEmu(bin: string, k: DeltaPrepKernel<DeltaPrepDecay>, cs: Case, ti: Float64Array): Outs {
  return inScratchDir("seqc-dprep-", (dir) => {
    const { B, T, H, C, K, V } = cs.s, N = B * H * nChunks(cs.s);
    const sizes: Record<Out, number> = { TI: N * C * C, M: N * C * K, X: N * C * V, BM: N * K * V, NN: N * C * K, A: N * (k.decay === "key" ? K : 1) };
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
export function errors(bin: string, k: DeltaPrepKernel<DeltaPrepDecay>, cs: Case): Record<string, number> {
  const { s } = cs;
  const fwd = prepAll(s, (b, h, c) => prepFwdChunk(cs.inp, s, b, h, c), cs.inp.perKey);
  const ti = Float64Array.from(new Float32Array(fwd.TI));
  const nC = nChunks(s), CC = s.C * s.C;
  const want = k.op === "fwd" ? fwd : prepAll(s, (b, h, c) => prepBwdChunk(cs.inp, cs.dY, ti.subarray(((b * s.H + h) * nC + c) * CC, ((b * s.H + h) * nC + c + 1) * CC), s, b, h, c), cs.inp.perKey);
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
export function caught(bin: string, k: DeltaPrepKernel<DeltaPrepDecay>, cs: Case, out: string): boolean {
  try {
    return errors(bin, k, cs)[out] > 1e-3;
  } catch {
    return true;
  }
}

export const worst = (e: Record<string, number>) => Math.max(...Object.values(e));
export const fmt = (e: Record<string, number>) => Object.entries(e).map(([o, x]) => `${o} ${x.toExponential(2)}`).join(", ");

type Kernel = DeltaPrepKernel<DeltaPrepDecay>;

/** Each kernel of a module (one emulator build) on its cases [T, minLd] (B rows, H heads, `seed(k, T)`): the worst
 * output's error below `bound(k)` (default 1e-5) and above `floor(k, T)` where given; a line a case, printed (`print`),
 * else with DPREP_LOG. */
export function checkEntries(m: { source: string; kernels: readonly Kernel[] }, run: {
  B: number | ((k: Kernel) => number); H: number; cases: (k: Kernel) => readonly (readonly [number, number])[]; seed: (k: Kernel, T: number) => number;
  bound?: (k: Kernel) => number; floor?: (k: Kernel, T: number) => number;
}, print = true): void {
  const bin = buildEmu(m.source, m.kernels);
  const lines: string[] = [];
  for (const k of m.kernels)
    for (const [T, minLd] of run.cases(k)) {
      const e = errors(bin, k, makeCase(k, k.tin, typeof run.B === "number" ? run.B : run.B(k), T, run.H, minLd, run.seed(k, T)));
      lines.push(`${k.entry} T=${T} ld>=${minLd}: ${fmt(e)}`);
      expect(worst(e), lines[lines.length - 1]).toBeLessThan(run.bound ? run.bound(k) : 1e-5);
      const floor = run.floor?.(k, T);
      if (floor) expect(worst(e), `${k.entry}: TF32 rounding shows`).toBeGreaterThan(floor);
    }
  if (print || process.env.DPREP_LOG) console.log(lines.join("\n"));
}

const TWIN_BOUND = { tf32: 2e-3, tf32x3: 1e-5 } as const;

/** The tensor-core twins of `configs` (fp32 configurations), math "tf32" and "tf32x3", one emulator build a math: the
 * shipped shapes (C = 64) at T = 100 with log decays down to -1 (B = 1 at K = 128, else 2), the others at T = 1, ragged
 * chunks and decays down to -20 (B = 2); H = 2. tf32x3 within 1e-5, tf32 within 2e-3 and, past T = 1, above 1e-5 (its
 * rounding is emulated). `seed` + T + K seeds a case. */
export function checkTwins(configs: readonly DeltaPrepConfig<DeltaPrepDecay>[], seed: number): void {
  for (const math of ["tf32", "tf32x3"] as const)
    checkEntries(deltaPrepModule(configs.map((c) => ({ ...c, math }))), {
      B: (k) => (k.K === 128 ? 1 : 2), H: 2, seed: (k, T) => seed + T + k.K,
      cases: (k) => (k.C === 64 ? [[100, -1]] : [[1, -5], [2 * k.C + 5, -1], [k.C + 3, -20]]),
      bound: () => TWIN_BOUND[math], floor: (_, T) => (math === "tf32" && T > 1 ? 1e-5 : 0),
    }, false);
}

/** Deliberately broken copies of `base`'s kernel fail the checks: for each change [op, from, to, out, last?], the kernel
 * of op with `from` (which must occur) replaced by `to` at its first occurrence (`last`: its last) is caught() on
 * output `out` for a case `cs()`. */
export function expectBrokenCaught(base: Omit<DeltaPrepConfig<DeltaPrepDecay>, "op">, cs: () => Case, changes: readonly (readonly [op: "fwd" | "bwd", from: string, to: string, out: string, last?: boolean])[]): void {
  for (const [op, from, to, out, last] of changes) {
    const m = deltaPrepModule([{ ...base, op }], (src) => {
      expect(src).toContain(from);
      const at = last ? src.lastIndexOf(from) : src.indexOf(from);
      return src.slice(0, at) + to + src.slice(at + from.length);
    });
    expect(caught(buildEmu(m.source, m.kernels), m.kernels[0], cs(), out), `${op} ${from} -> ${to}`).toBe(true);
  }
}

/** ptxas's usage of a module's kernels for sm_90 (nvcc installed): no spills, at most 255 registers; a row a kernel
 * printed (registers, shared bytes). */
export function expectNoSpills(m: { source: string; kernels: readonly DeltaPrepKernel<DeltaPrepDecay>[] }): void {
  const rows: string[] = [];
  for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
    expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
    expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
    rows.push(`${e}: ${u.registers} registers, ${m.kernels.find((k) => k.entry === e)!.sharedBytes} bytes shared`);
  }
  console.log(rows.join("\n"));
}

