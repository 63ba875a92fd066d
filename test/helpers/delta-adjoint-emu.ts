/**
 * What the delta adjoint's emulation tests (cuda-delta-adjoint-emu: delta-adjoint.ts, no or a scalar decay;
 * cuda-delta-adjoint-key-emu: delta-adjoint-key.ts and its TF32 twin, a per-key decay) share: the emulator of a module's
 * adjoint entries (lowrank-emu's emuGridMain, the call by entry: float or bf16 words, LD / dLD or nullptr without a
 * decay), random inputs, a run's outputs and their errors against test/helpers/delta-ref.ts's float64 `adjoint`, and the
 * broken copies (a patched source's error above 1e-2).
 */
import { expect } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { relativeError } from "../../compiler/io/manifest.ts";
import { bf16 } from "./bf16-round.ts";
import { adjoint, nChunks, type DeltaGrads, type DeltaInputs, type DeltaShape } from "./delta-ref.ts";
import { compileLowRankEmu, emuGridMain, f32Bytes, inScratchDir, readF32 } from "./lowrank-emu.ts";
import { rng } from "./random.ts";

/** An adjoint configuration: decay "none", "scalar" (ld [B, T, H]) or "key" (ld [B, T, H, K]). */
export interface AdjConfig { decay: "none" | "scalar" | "key"; tin: "f32" | "bf16"; C: number; K: number; V: number }
export interface AdjKernel extends AdjConfig { entry: string; threads: number; sharedBytes: number; zin?: "bf16"; aout?: "bf16" }

const TOK = ["Q", "U", "W", "KK", "VV", "DY"] as const;
const FILES = [...TOK, "LD", "R", "S0", "SF", "LE", "DR", "dQ", "dU", "dW", "dK", "dV", "dLD"] as const;

/** An emulator executable of `source` (the adjoint prelude and the kernels' sources; `patch`: changed by it, which must
 * change something) for `kernels`: argv dir, entry, blocks, threads, smem, B, T, H; reads dir/<FILES[i]>.bin, writes the
 * outputs' .out. `name`: the build's cache name; `mma`: with the TF32 mma emulation. */
export function adjEmu(source: string, kernels: readonly AdjKernel[], name: string, mma: boolean, patch?: (src: string) => string): string {
  if (patch) {
    const before = source;
    source = patch(source);
    expect(source, "the patch changed nothing").not.toBe(before);
  }
  const call = (entry: string) => {
    const k = kernels.find((x) => x.entry === entry)!, T = k.tin === "f32" ? "float" : "unsigned short", dec = k.decay !== "none";
    return [...TOK.map((_, i) => `(const ${T}*)P[${i}]`), dec ? "(const float*)P[6]" : "nullptr", ...[7, 8, 9, 10, 11].map((i) => `(const ${k.zin && i !== 9 ? "unsigned short" : "float"}*)P[${i}]`),
      "BB", "TT", "HH", ...[12, 13, 14, 15, 16].map((i) => `(${k.aout ? "unsigned short" : "float"}*)P[${i}]`), dec ? "(float*)P[17]" : "nullptr"].join(", ");
  };
  const main = emuGridMain(kernels.map((k) => k.entry), call, FILES, ["BB", "TT", "HH"], [12, 13, 14, 15, 16, 17]);
  return compileLowRankEmu(source, main, name, mma);
}

export interface AdjData { s: DeltaShape; inp: DeltaInputs; dY: Float64Array; R: Float64Array; S0: Float64Array; SF: Float64Array; LE: Float64Array; DR: Float64Array; words: Record<string, Buffer> | null }

/** Random inputs (never zero in law), per-token ones rounded to bf16 for tin "bf16" (the reference takes the rounded
 * values), B 2, H 3; log decays (a token, or a token and key with decay "key"; none with "none") multiples of 2^-10 in
 * [minLd, 0] (`dyadic`), else any fp32 values in [minLd, 0]. */
export function adjData(c: AdjConfig, T: number, minLd: number, seed: number, dyadic = true): AdjData {
  const s: DeltaShape = { B: 2, T, H: 3, K: c.K, V: c.V, C: c.C };
  const r = rng(seed), f = Math.fround, N = s.B * s.H * nChunks(s), BTH = s.B * T * s.H, perKey = c.decay === "key";
  const n = (m: number, scale: number) => Float64Array.from({ length: m }, () => f(scale * 2 * r()));
  const raw = { q: n(BTH * s.K, 1), u: n(BTH * s.K, 1 / Math.sqrt(s.K)), w: n(BTH * s.K, 1 / Math.sqrt(s.K)), k: n(BTH * s.K, 1), v: n(BTH * s.V, 1), dy: n(BTH * s.V, 1) };
  const ld = c.decay === "none" ? null : Float64Array.from({ length: BTH * (perKey ? s.K : 1) }, () => (dyadic ? -Math.round((r() + 0.5) * -minLd * 1024) / 1024 : f((r() + 0.5) * minLd)));
  let words: Record<string, Buffer> | null = null;
  const vals: Record<string, Float64Array> = { ...raw };
  if (c.tin === "bf16") {
    words = {};
    for (const [name, x] of Object.entries(raw)) { const b = bf16(x); vals[name] = b.values; words[name] = b.words; }
  }
  const inp: DeltaInputs = { q: vals.q, u: vals.u, w: vals.w, k: vals.k, v: vals.v, ld, S: null, ...(perKey ? { perKey: true } : {}) };
  return { s, inp, dY: vals.dy, R: n(N * s.C * s.V, 1), S0: n(N * s.K * s.V, 1), SF: n(s.B * s.H * s.K * s.V, 1), LE: n(N * s.K * s.V, 1), DR: n(N * s.C * s.V, 1), words };
}

const OUTS = ["dq", "du", "dw", "dk", "dv", "dld"] as const;

/** A run's outputs (zin "bf16": R, S0, LE, DR written as bf16 words, rounded to nearest even; SF float32; aout "bf16":
 * dQ, dU, dW, dK, dV read back as bf16 words, widened exactly). */
export function adjRun(bin: string, k: AdjKernel, d: AdjData): DeltaGrads {
  return runEmu(bin, k, d);
}

function runEmu(bin: string, k: AdjKernel, d: AdjData): DeltaGrads {
  return inScratchDir("seqc-dadj-", (dir) => {
    const { s, inp } = d, BTH = s.B * s.T * s.H;
    const tok: Record<string, Float64Array> = { Q: inp.q, U: inp.u, W: inp.w, KK: inp.k, VV: inp.v, DY: d.dY };
    const wordName: Record<string, string> = { Q: "q", U: "u", W: "w", KK: "k", VV: "v", DY: "dy" };
    for (const name of TOK) writeFileSync(join(dir, `${name}.bin`), d.words ? d.words[wordName[name]] : f32Bytes(tok[name]));
    writeFileSync(join(dir, "LD.bin"), f32Bytes(inp.ld ?? new Float64Array(1)));
    for (const [name, x] of Object.entries({ R: d.R, S0: d.S0, SF: d.SF, LE: d.LE, DR: d.DR })) writeFileSync(join(dir, `${name}.bin`), k.zin && name !== "SF" ? bf16(x).words : f32Bytes(x));
    const wLd = k.decay === "key" ? s.K : 1;
    for (const [name, w] of [["dQ", s.K], ["dU", s.K], ["dW", s.K], ["dK", s.K], ["dV", s.V], ["dLD", wLd]] as const) writeFileSync(join(dir, `${name}.bin`), f32Bytes(new Float64Array(BTH * w).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(s.B * s.H * nChunks(s)), String(k.threads), String(k.sharedBytes), String(s.B), String(s.T), String(s.H)], { stdio: "pipe" });
    const read = (name: string) => readF32(join(dir, `${name}.out`));
    const readTok = (name: string, w: number) => (k.aout ? readBf16(join(dir, `${name}.out`), BTH * w) : read(name));
    return { dq: readTok("dQ", s.K), du: readTok("dU", s.K), dw: readTok("dW", s.K), dk: readTok("dK", s.K), dv: readTok("dV", s.V), dld: k.decay === "none" ? null : read("dLD") };
  });
}

/** The first n bf16 words of a file, widened to float64 (exact). */
function readBf16(path: string, n: number): Float64Array {
  const raw = readFileSync(path), w = new Uint16Array(raw.buffer, raw.byteOffset, n), u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = w[i] << 16;
  return Float64Array.from(new Float32Array(u.buffer));
}

/** Each output's relative error against the float64 formulas (dld absent without a decay); non-finite outputs fail the
 * test, or (`broken`: a deliberately broken copy) count as an infinite error. */
export function adjErrors(bin: string, k: AdjKernel, d: AdjData, broken = false): Record<string, number> {
  const want = adjoint(d.inp, d.dY, d.R, d.S0, d.SF, d.LE, d.DR, d.s), got = runEmu(bin, k, d);
  const e: Record<string, number> = {};
  for (const o of OUTS) {
    const g = got[o], w = want[o];
    if (!g || !w) continue;
    expect(g.length, `${o} length`).toBe(w.length);
    const finite = g.every(Number.isFinite);
    if (!broken) expect(finite, `${k.entry} ${o}: finite`).toBe(true);
    e[o] = finite ? relativeError(g, w) : Infinity;
  }
  return e;
}

export const fmt = (e: Record<string, number>) => Object.entries(e).map(([o, x]) => `${o} ${x.toExponential(2)}`).join(", ");
export const worst = (e: Record<string, number>) => Math.max(...Object.values(e));

/** Broken copies of k fail: for each change (the nth occurrence of `from` in its source replaced by `to`; `build` the
 * emulator of [k] with a patch), output `which`'s error above 1e-2. */
export function expectBrokenFail<K extends AdjKernel>(build: (ks: K[], patch: (src: string) => string) => string, k: K, d: AdjData, changes: [from: string, to: string, which: string, nth?: number][]): void {
  for (const [from, to, which, nth = 0] of changes) {
    const bin = build([k], (src) => {
      let at = -1;
      for (let i = 0; i <= nth; i++) at = src.indexOf(from, at + 1);
      expect(at, `"${from}" #${nth}`).toBeGreaterThanOrEqual(0);
      return src.slice(0, at) + to + src.slice(at + from.length);
    });
    expect(adjErrors(bin, k, d, true)[which], `${k.entry}: ${from} -> ${to}`).toBeGreaterThan(1e-2);
  }
}
