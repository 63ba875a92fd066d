/**
 * The low-rank chunk readouts' tensor-core twin in output-column groups (compiler/backends/cuda/lowrank-readout-cols.ts:
 * a row's block takes the output columns G at a time; K = V = 128, where the whole-row twin does not fit) on the
 * CPU emulation of CUDA (test/cuda-emu/emu.h with the TF32 mma emulation mma-tf32.h) against the recurrence in float64:
 *   S_t = exp(ld_t) S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T,  key axis y_a = S_{a+oq}^T q_a,  value axis x_a = S_{a+oq} z_a
 * from a random start state, reads before (oq = 0) and after (oq = 1) the step, one and two query vectors, no decay and
 * scalar log decays down to -20 a step, padded tails, one step in use: small configurations (C 16 / 32, K != V, M 1..3,
 * 2..5 groups) and the shipped C = 64, K = V = 128, M = 2, G = 64 ones; "tf32x3" within 1e-5, "tf32" within 1e-3 and
 * above 1e-5 (its rounding is emulated). rev = 1 (the chunk read backwards) bitwise the forward launch on the flipped
 * tensors, and qs strides Q. Broken copies (a group's output columns, EB's or S0's group offset, the mask) fail; nvcc
 * -cubin for sm_90 where installed: no spills.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { lowRankReadModule } from "../compiler/backends/cuda/lowrank-readout.ts";
import { LOWRANK_READ_COLS_CONFIGS, withReadCols, type LowRankReadColsConfig, type LowRankReadColsKernel } from "../compiler/backends/cuda/lowrank-readout-cols.ts";
import { findNvcc } from "../compiler/backends/cuda/nvcc.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { compileLowRankEmu, emuEntrySelect, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { ptxasUsage } from "./helpers/ptxas-usage.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-lowrank-readout-cols-emu.test: g++ is not installed, so the emulated runs are skipped");

interface Data { N: number; mq: number; KK: Float64Array; VV: Float64Array; Q: Float64Array; S0: Float64Array; G: Float64Array }

/** N chunks in ChunkCore's layouts: KK [N, C, M, K], VV [N, C, M, V], S0 [N, K, V], G [N, C + 1, 1] (prefix sums of
 * float32 log decays uniform in [minLd, 0]), Q [N, C, mq, A]; steps past `used` zero (events, queries, log decays). */
function data(c: LowRankReadColsConfig, N: number, mq: number, used: number, minLd: number, seed: number): Data {
  const { C, K, V, M } = c, A = c.axis === "key" ? K : V;
  const r = rng(seed), f = Math.fround;
  const KK = new Float64Array(N * C * M * K), VV = new Float64Array(N * C * M * V), Q = new Float64Array(N * C * mq * A);
  const S0 = Float64Array.from({ length: N * K * V }, () => f(2 * r()));
  const G = new Float64Array(N * (C + 1));
  for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let s = 0; s < C; s++) {
      const on = s < used;
      for (let x = 0; x < M * K; x++) KK[(n * C + s) * M * K + x] = on ? f((2 * r()) / Math.sqrt(K)) : 0;
      for (let x = 0; x < M * V; x++) VV[(n * C + s) * M * V + x] = on ? f(2 * r()) : 0;
      for (let x = 0; x < mq * A; x++) Q[(n * C + s) * mq * A + x] = on ? f(2 * r()) : 0;
      if (c.decay !== "none" && on) acc = f(acc + f((r() + 0.5) * minLd));
      G[n * (C + 1) + s + 1] = acc;
    }
  }
  return { N, mq, KK, VV, Q, S0, G };
}

/** The recurrence in float64: OUT [N, C, mq, B]. */
function reference(c: LowRankReadColsConfig, d: Data, oq: number): Float64Array {
  const { C, K, V, M } = c, key = c.axis === "key", A = key ? K : V, B = key ? V : K, mq = d.mq;
  const out = new Float64Array(d.N * C * mq * B);
  const S = new Float64Array(K * V);
  const read = (n: number, a: number) => {
    for (let x = 0; x < mq; x++)
      for (let j = 0; j < B; j++) {
        let s = 0;
        for (let i = 0; i < A; i++) s += d.Q[((n * C + a) * mq + x) * A + i] * (key ? S[i * V + j] : S[j * V + i]);
        out[((n * C + a) * mq + x) * B + j] = s;
      }
  };
  for (let n = 0; n < d.N; n++) {
    S.set(d.S0.subarray(n * K * V, (n + 1) * K * V));
    for (let t = 0; t < C; t++) {
      if (oq === 0) read(n, t);
      const e = Math.exp(d.G[n * (C + 1) + t + 1] - d.G[n * (C + 1) + t]);
      for (let i = 0; i < K; i++)
        for (let j = 0; j < V; j++) {
          let s = e * S[i * V + j];
          for (let y = 0; y < M; y++) s += d.KK[((n * C + t) * M + y) * K + i] * d.VV[((n * C + t) * M + y) * V + j];
          S[i * V + j] = s;
        }
      if (oq === 1) read(n, t);
    }
  }
  return out;
}

/** An emulator of the kernels: argv dir (Q, EA, EB, S0, G, OUT .bin float32), entry, N, threads, smem, oq, mq, rev, qs. */
function buildEmu(source: string, kernels: readonly LowRankReadColsKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)P[0], (const float*)P[1], (const float*)P[2], (const float*)P[3], (const float*)P[4], (float*)P[5], NN, OQ, MQ, REV, QS); }`);
  const main = `
static void* P[6]; static unsigned NN, OQ, MQ, REV, QS;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1], entry = argv[2];
  NN = (unsigned)atoi(argv[3]);
  unsigned threads = (unsigned)atoi(argv[4]), smem = (unsigned)atoi(argv[5]);
  OQ = (unsigned)atoi(argv[6]); MQ = (unsigned)atoi(argv[7]); REV = (unsigned)atoi(argv[8]); QS = (unsigned)atoi(argv[9]);
  std::vector<char> b[6] = {readf(dir + "/Q.bin"), readf(dir + "/EA.bin"), readf(dir + "/EB.bin"), readf(dir + "/S0.bin"), readf(dir + "/G.bin"), readf(dir + "/OUT.bin")};
  for (int i = 0; i < 6; ++i) P[i] = b[i].data();
${emuEntrySelect(kernels.map((k) => k.entry))}
  emu::Dim g; g.x = NN; emu::Dim blk; blk.x = threads;
  emu::launch(fn, g, blk, smem);
  FILE* f = fopen((dir + "/OUT.out").c_str(), "wb"); fwrite(b[5].data(), 1, b[5].size(), f); fclose(f);
  return 0;
}
`;
  return compileLowRankEmu(source, main, "lowrank-readout-cols", true);
}

/** The kernel's OUT (key axis: EA = KK, EB = VV; value axis: EA = VV, EB = KK); OUT starts NaN (every output must be
 * written); Q stored with step stride mq A + qsPad (the gaps NaN). */
function runEmu(bin: string, k: LowRankReadColsKernel, d: Data, oq: number, rev = 0, qsPad = 0): Float64Array {
  return inScratchDir("seqc-lrcols-", (dir) => {
    const key = k.axis === "key", B = key ? k.V : k.K, A = key ? k.K : k.V, w = d.mq * A, qs = w + qsPad;
    const Qs = new Float64Array(d.N * k.C * qs).fill(NaN);
    for (let r = 0; r < d.N * k.C; r++) Qs.set(d.Q.subarray(r * w, (r + 1) * w), r * qs);
    writeFileSync(join(dir, "Q.bin"), f32Bytes(Qs));
    writeFileSync(join(dir, "EA.bin"), f32Bytes(key ? d.KK : d.VV));
    writeFileSync(join(dir, "EB.bin"), f32Bytes(key ? d.VV : d.KK));
    writeFileSync(join(dir, "S0.bin"), f32Bytes(d.S0));
    writeFileSync(join(dir, "G.bin"), k.decay === "none" ? Buffer.alloc(4) : f32Bytes(d.G));
    writeFileSync(join(dir, "OUT.bin"), f32Bytes(new Float64Array(d.N * k.C * d.mq * B).fill(NaN)));
    execFileSync(bin, [dir, k.entry, String(d.N), String(k.threads), String(k.sharedBytes), String(oq), String(d.mq), String(rev), String(qs)], { stdio: "pipe" });
    return readF32(join(dir, "OUT.out"));
  });
}

function error(k: LowRankReadColsKernel, bin: string, d: Data, oq: number): number {
  const got = runEmu(bin, k, d, oq);
  expect(got.every(Number.isFinite), `${k.entry} oq=${oq}: every output written, finite`).toBe(true);
  return relativeError(got, reference(k, d, oq));
}

const cols = (configs: readonly LowRankReadColsConfig[], patch?: (src: string) => string) => {
  const m = withReadCols(lowRankReadModule([]), configs, patch);
  return { source: m.source, kernels: m.kernels as LowRankReadColsKernel[] };
};

const SMALL: Omit<LowRankReadColsConfig, "math">[] = [
  { axis: "key", decay: "none", C: 16, K: 8, V: 16, M: 2, G: 8 },
  { axis: "value", decay: "scalar", C: 32, K: 24, V: 8, M: 1, G: 8 },
  { axis: "key", decay: "scalar", C: 32, K: 16, V: 40, M: 3, G: 8 },
  { axis: "value", decay: "none", C: 16, K: 32, V: 8, M: 3, G: 16 },
];
const BOUND = { tf32: 1e-3, tf32x3: 1e-5 } as const;

describe.skipIf(!gpp)("low-rank chunk readouts' tensor-core twin in column groups on the CPU emulation vs the float64 recurrence", () => {
  it("small configurations (2..5 groups a row): both axes, before / after, one and two query vectors, log decays to -20, padded tails, one step in use; tf32x3 within 1e-5, tf32 within 1e-3 and above 1e-5", () => {
    for (const math of ["tf32", "tf32x3"] as const) {
      const m = cols(SMALL.map((c) => ({ ...c, math })));
      const bin = buildEmu(m.source, m.kernels);
      for (const [i, k] of m.kernels.entries())
        for (const [used, mq, minLd, oq] of [[k.C, 2, -1, 1], [k.C - 3, 1, -20, 0], [1, 2, -20, 1], [k.C, 1, -0.1, 0]] as const) {
          const e = error(k, bin, data(k, 2, mq, used, minLd, 13 + 7 * i + used + mq), oq);
          expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq} ld>=${minLd}`).toBeLessThan(BOUND[math]);
          if (math === "tf32" && used > 1) expect(e, `${k.entry}: TF32 rounding shows`).toBeGreaterThan(1e-5);
        }
    }
  }, 400_000);

  it("the shipped configurations (C = 64, K = V = 128, M = 2, G = 64; LOWRANK_READ_COLS_CONFIGS): full and padded chunks, both axes and decay modes, both maths", () => {
    expect(LOWRANK_READ_COLS_CONFIGS.length).toBe(8);
    const m = cols(LOWRANK_READ_COLS_CONFIGS);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries())
      for (const [used, mq, oq, minLd] of (k.math === "tf32" ? [[64, 2, 1, -1], [37, 1, 0, -20]] : [[64, 1, 1, -1]]) as [number, number, number, number][]) {
        const e = error(k, bin, data(k, 1, mq, used, minLd, 5 + i + used), oq);
        expect(e, `${k.entry} used=${used} mq=${mq} oq=${oq}`).toBeLessThan(BOUND[k.math]);
      }
  }, 900_000);

  /** d with its steps in reversed order (Q, KK, VV rows; G as it is), and the map of outputs back. */
  const flipSteps = (k: LowRankReadColsConfig, d: Data) => {
    const A = k.axis === "key" ? k.K : k.V;
    const flip = (x: Float64Array, w: number) => {
      const y = new Float64Array(x.length);
      for (let n = 0; n < d.N; n++) for (let s = 0; s < k.C; s++) y.set(x.subarray((n * k.C + s) * w, (n * k.C + s + 1) * w), (n * k.C + k.C - 1 - s) * w);
      return y;
    };
    return { d: { ...d, Q: flip(d.Q, d.mq * A), KK: flip(d.KK, k.M * k.K), VV: flip(d.VV, k.M * k.V) }, back: (o: Float64Array) => flip(o, d.mq * (k.axis === "key" ? k.V : k.K)) };
  };

  it("rev = 1 reads the chunk backwards: bitwise the forward launch on the flipped tensors, within the bound of the float64 recurrence run backwards; qs strides Q", () => {
    const m = cols([{ ...SMALL[0], math: "tf32" }, { ...SMALL[1], math: "tf32x3" }, { ...SMALL[2], math: "tf32" }, { ...SMALL[3], math: "tf32x3" }]);
    const bin = buildEmu(m.source, m.kernels);
    for (const [i, k] of m.kernels.entries()) {
      expect(k.rev, k.entry).toBe(true);
      for (const [used, mq, oq] of [[k.C, 2, 1], [k.C - 5, 1, 0]] as const) {
        const d = data(k, 2, mq, used, -2, 41 + 5 * i + used), f = flipSteps(k, d);
        const got = runEmu(bin, k, d, oq, 1, 4);
        expect(got.every(Number.isFinite), `${k.entry} rev: finite`).toBe(true);
        expect(Array.from(got), `${k.entry} used=${used} oq=${oq}: rev bitwise the flipped forward launch`).toEqual(Array.from(f.back(runEmu(bin, k, f.d, oq))));
        expect(relativeError(got, f.back(reference(k, f.d, oq))), `${k.entry} vs float64`).toBeLessThan(BOUND[k.math]);
        expect(Array.from(runEmu(bin, k, d, oq, 0, 8)), `${k.entry}: qs strides Q`).toEqual(Array.from(runEmu(bin, k, d, oq)));
      }
    }
  }, 400_000);

  it("broken copies fail: a group's outputs stored at the first group's columns; the later groups without their own operands; EB's group offset dropped; S0's group offset dropped (both axes); the mask sees a read's own step", () => {
    const broken = (c: LowRankReadColsConfig, from: string, to: string, oq: number) => {
      const m = cols([c], (src) => {
        expect(src).toContain(from);
        return src.split(from).join(to);
      });
      const k = m.kernels[0], d = data(k, 2, 2, k.C, -1, 3);
      const got = runEmu(buildEmu(m.source, m.kernels), k, d, oq);
      return relativeError(got.map((x) => (Number.isFinite(x) ? x : 1e30)), reference(k, d, oq));
    };
    const key = { ...SMALL[2], math: "tf32x3" as const }, value = { ...SMALL[3], math: "tf32x3" as const };
    expect(broken(key, "cs < a + oq ?", "cs < a + oq ?", 1)).toBeLessThan(1e-5); // the control: unchanged, it passes
    expect(broken(key, `* ${key.V}u + c0 + 8u * ct`, `* ${key.V}u + 8u * ct`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, "c0 += ${G}u) {\n      if (c0) {".replace("${G}", String(key.G)), `c0 += ${key.G}u) {\n      if (false) {`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, `(r)) * ${key.V}u + c0 + 4u * c4`, `(r)) * ${key.V}u + 4u * c4`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, `+ r * ${key.V}u + c0 + 4u * c4`, `+ r * ${key.V}u + 4u * c4`, 0)).toBeGreaterThan(1e-2);
    expect(broken(value, `(c0 + r) * ${value.V}u`, `(r) * ${value.V}u`, 1)).toBeGreaterThan(1e-2);
    expect(broken(key, "cs < a + oq ?", "cs <= a + oq ?", 0)).toBeGreaterThan(1e-2);
  }, 300_000);

  it("the module: withReadCols appends the twins' kernels (G, rev, one block an SM at K = V = 128) after the readout module's; configurations that do not fit or do not divide are refused", () => {
    const base = lowRankReadModule([{ axis: "key", decay: "none", C: 64, K: 64, V: 64, M: 2, math: "tf32" }]);
    const m = withReadCols(base);
    expect(m.kernels.length).toBe(base.kernels.length + 8);
    expect(m.source.startsWith(base.source)).toBe(true);
    expect(m.source.split("#define SEQC_TF32_MMA").length).toBe(2);
    for (const k of m.kernels.slice(1) as LowRankReadColsKernel[]) {
      expect([k.G, k.rev, k.K, k.V, k.C, k.M], k.entry).toEqual([64, true, 128, 128, 64, 2]);
      expect(k.sharedBytes, k.entry).toBeGreaterThan(113 * 1024);
      expect(k.sharedBytes, k.entry).toBeLessThanOrEqual(227 * 1024);
    }
    expect(() => cols([{ axis: "key", decay: "none", C: 64, K: 128, V: 128, M: 2, math: "tf32", G: 128 }])).toThrow(/shared memory/);
    expect(() => cols([{ axis: "key", decay: "none", C: 64, K: 128, V: 120, M: 2, math: "tf32", G: 48 }])).toThrow(/dividing/);
    expect(() => cols([{ axis: "key", decay: "none", C: 48, K: 128, V: 128, M: 2, math: "tf32", G: 64 }])).toThrow(/16, 32 or 64/);
  });

  it.skipIf(!findNvcc())("nvcc -cubin compiles the shipped twins for sm_90; ptxas: no spills", () => {
    const m = cols(LOWRANK_READ_COLS_CONFIGS);
    for (const [e, u] of ptxasUsage(findNvcc()!, m.source, m.kernels.map((k) => k.entry))) {
      expect([u.spillStores, u.spillLoads], `${e} spills`).toEqual([0, 0]);
      expect(u.registers, `${e} registers`).toBeLessThanOrEqual(255);
    }
  }, 600_000);
});
