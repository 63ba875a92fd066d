/**
 * The segments' end states of the rows chunk kernel's segments in one kernel (compiler/backends/cuda/rows-seg-states.ts,
 * runtime/torch/seqc_chunked.py ROWS_SEG_STATES "cuda") on the g++ emulation (test/cuda-emu/emu.h), against float64:
 *   E_j = sum_o diag(w_o) a_o b_o^T, Q_j (rev 0: w_o = exp(sum ld[o + 1 .. segment end]), Q = exp(sum of the segment's
 *   ld); rev 31: w_o = exp(sum ld[jL + 1 .. o]), Q = exp(sum ld[jL + 1 .. jL + L - 1])) for the feeding segments,
 * and the start states the runtime forms from them (its torch scan over segments, test/torch/rows_seg_states_scan.py) and
 * from its torch ops (ROWS_SEG_STATES "torch"), both against a float64 walk of the whole sequence
 *   S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T
 * (forward time: start_j = S after token jL - 1; the adjoint's reversed time over the forward-stored tensors, ld[T - t] at
 * walk step t: start_j = exp(ld[(j + 1) L]) S after stored token (j + 1) L). Segments 1, 2, 3, 5, T ragged (segments of
 * 50, 65, 26, 39 tokens: partial stages of 32), one of 1024 tokens (32 stages), decays to -20 a step, K, V below the tile
 * (48, 40), a float32 and bf16, initial states. Broken copies (the token's own decay in its forward weight, the first
 * decay of a reversed segment kept, the running sums (and so Q) not carried over stages, forward and reversed) fail.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rowsSegStatesModule, type RowsSegStatesKernel } from "../compiler/backends/cuda/rows-seg-states.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { rng } from "./helpers/random.ts";
import { bf16 } from "./helpers/bf16-round.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch, numpy"]).status === 0;
if (!gpp || !cpuTorch) console.warn("cuda-rows-seg-states-emu.test: needs g++ and torch for /usr/bin/python3; skipped");
const HERE = join(import.meta.dirname, "cuda-emu");

interface Case { B: number; T: number; H: number; K: number; V: number; init: boolean; minLd: number; lowA: boolean }
interface Data { ld: Float64Array; a: Float64Array; b: Float64Array; S0: Float64Array | null }

function data(c: Case, seed: number): Data {
  const r = rng(seed);
  const nK = c.B * c.T * c.H * c.K, nV = c.B * c.T * c.H * c.V;
  const arr = (n: number) => Float64Array.from({ length: n }, () => Math.fround(2 * r())); // (rng: [-0.5, 0.5))
  const a = arr(nK);
  return {
    ld: Float64Array.from({ length: nK }, () => Math.fround((r() + 0.5) * c.minLd)),
    a: c.lowA ? bf16(a).values : a,
    b: bf16(arr(nV)).values,
    S0: c.init ? arr(c.B * c.H * c.K * c.V) : null,
  };
}

const ix = (c: Case, b: number, t: number, h: number, w: number) => ((b * c.T + t) * c.H + h) * w;

/** float64 E [B, ns, H, K, V] and Q [B, ns, H, K] of the feeding segments by their definition. */
function endsRef(c: Case, d: Data, nseg: number, rev: number): { E: Float64Array; Q: Float64Array } {
  const { B, H, K, V } = c, L = c.T / nseg, ns = nseg - 1;
  const E = new Float64Array(B * ns * H * K * V), Q = new Float64Array(B * ns * H * K);
  for (let b = 0; b < B; b++)
    for (let jj = 0; jj < ns; jj++) {
      const j = rev ? jj + 1 : jj, s0 = j * L;
      for (let h = 0; h < H; h++)
        for (let k = 0; k < K; k++) {
          const hb = (b * ns + jj) * H + h;
          let tot = 0;
          for (let o = rev ? s0 + 1 : s0; o < s0 + L; o++) tot += d.ld[ix(c, b, o, h, K) + k];
          Q[hb * K + k] = Math.exp(tot);
          for (let o = s0; o < s0 + L; o++) {
            let g = 0;
            if (rev) for (let u = s0 + 1; u <= o; u++) g += d.ld[ix(c, b, u, h, K) + k];
            else for (let u = o + 1; u < s0 + L; u++) g += d.ld[ix(c, b, u, h, K) + k];
            const wa = Math.exp(g) * d.a[ix(c, b, o, h, K) + k];
            for (let v = 0; v < V; v++) E[(hb * K + k) * V + v] += wa * d.b[ix(c, b, o, h, V) + v];
          }
        }
    }
  return { E, Q };
}

/** float64 start states [B nseg, H, K, V] from a walk of the whole sequence (forward, or the adjoint's reversed walk). */
function startsRef(c: Case, d: Data, nseg: number, rev: number): Float64Array {
  const { B, T, H, K, V } = c, L = T / nseg, n = H * K * V;
  const st = new Float64Array(B * nseg * n), S = new Float64Array(K * V);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      for (let x = 0; x < K * V; x++) S[x] = d.S0 ? d.S0[(b * H + h) * K * V + x] : 0;
      const put = (j: number, dec: number) => {
        for (let k = 0; k < K; k++) {
          const e = dec < 0 ? 1 : Math.exp(d.ld[ix(c, b, dec, h, K) + k]);
          for (let v = 0; v < V; v++) st[(b * nseg + j) * n + (h * K + k) * V + v] = e * S[k * V + v];
        }
      };
      put(rev ? nseg - 1 : 0, -1);
      for (let t = 0; t < T; t++) {
        const o = rev ? T - 1 - t : t; // the stored token of walk step t; its decay ld[T - t] (rev, 0 at t = 0) or ld[t]
        for (let k = 0; k < K; k++) {
          const e = rev ? (t === 0 ? 1 : Math.exp(d.ld[ix(c, b, T - t, h, K) + k])) : Math.exp(d.ld[ix(c, b, t, h, K) + k]);
          const ak = d.a[ix(c, b, o, h, K) + k];
          for (let v = 0; v < V; v++) S[k * V + v] = e * S[k * V + v] + ak * d.b[ix(c, b, o, h, V) + v];
        }
        if (!rev && (t + 1) % L === 0 && t + 1 < T) put((t + 1) / L, -1);
        if (rev && o % L === 0 && o > 0) put(o / L - 1, o); // segment o / L - 1 starts after stored token o, its decay entering
      }
    }
  return st;
}

function buildEmu(source: string, kernels: RowsSegStatesKernel[]): string {
  const tramp = kernels.map((k) => `static void body_${k.entry}() { ${k.entry}((const float*)BUF["ld"].data(), (${k.lowA ? "const seqc_bf16*" : "const float*"})BUF["a"].data(), (const seqc_bf16*)BUF["b"].data(), (float*)BUF["E"].data(), (float*)BUF["Q"].data(), U[0], U[1], U[2], U[3], U[4], U[5], U[6]); }`);
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
  for (const char* b : {"ld", "a", "b", "E", "Q"}) BUF[b] = readf(dir + "/" + b + ".emu");
  void (*fn)() = nullptr;
${kernels.map((k) => `  if (!strcmp(name, "${k.entry}")) fn = body_${k.entry};`).join("\n")}
  if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
  emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
  emu::launch(fn, g, blk, smem);
  for (const char* b : {"E", "Q"}) { FILE* f = fopen((dir + "/" + b + ".out").c_str(), "wb"); fwrite(BUF[b].data(), 1, BUF[b].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "rows-seg-states");
}

const f32 = (x: Float64Array) => Buffer.from(Float32Array.from(x).buffer);
const read = (p: string) => { const r = readFileSync(p); return Float64Array.from(new Float32Array(r.buffer, r.byteOffset, r.length / 4)); };

/** The kernel's launch as seqc_chunked.rows_chunk_seg_ends makes it (E, Q NaN first; no launch for one segment), then the
 * runtime's start states both ways. */
function run(bin: string, k: RowsSegStatesKernel, c: Case, d: Data, nseg: number, rev: number) {
  const dir = mkdtempSync(join(tmpdir(), "seqc-rows-seg-states-"));
  try {
    const ns = nseg - 1;
    const nE = c.B * ns * c.H * c.K * c.V, nQ = c.B * ns * c.H * c.K;
    writeFileSync(join(dir, "ld.bin"), f32(d.ld));
    writeFileSync(join(dir, "a.bin"), f32(d.a));
    writeFileSync(join(dir, "b.bin"), f32(d.b));
    writeFileSync(join(dir, "S0.bin"), d.S0 ? f32(d.S0) : Buffer.alloc(4));
    const emu: Record<string, Buffer> = { ld: f32(d.ld), a: k.lowA ? bf16(d.a).words : f32(d.a), b: bf16(d.b).words, E: f32(new Float64Array(nE).fill(NaN)), Q: f32(new Float64Array(nQ).fill(NaN)) };
    for (const [name, b] of Object.entries(emu)) writeFileSync(join(dir, `${name}.emu`), b);
    if (ns > 0) {
      writeFileSync(join(dir, "launch.txt"), `${k.entry} ${c.B * ns * c.H} ${Math.ceil(c.K / k.tile) * Math.ceil(c.V / k.tile)} ${k.threads} ${k.sharedBytes} ${c.B} ${c.T} ${c.H} ${c.K} ${c.V} ${nseg} ${rev}\n`);
      execFileSync(bin, [dir], { stdio: "pipe" });
    } else {
      writeFileSync(join(dir, "E.out"), Buffer.alloc(0));
      writeFileSync(join(dir, "Q.out"), Buffer.alloc(0));
    }
    const r = spawnSync("/usr/bin/python3", ["test/torch/rows_seg_states_scan.py", dir, ...[nseg, rev, c.B, c.T, c.H, c.K, c.V, c.init ? 1 : 0, c.lowA ? 1 : 0].map(String)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return { E: read(join(dir, "E.out")), Q: read(join(dir, "Q.out")), cuda: read(join(dir, "st_cuda.bin")), torch: read(join(dir, "st_torch.bin")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const err = (got: Float64Array, want: Float64Array) => (got.every(Number.isFinite) ? relativeError(got, want) : Infinity);
/** Q in [0, 1] (exp of sums to -20 a step underflow in float32): its largest absolute error */
const maxAbs = (got: Float64Array, want: Float64Array) => (got.every(Number.isFinite) && got.length === want.length ? got.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i])), 0) : Infinity);
const TOL = 1e-5;
const CASES: { c: Case; segs: number[] }[] = [
  { c: { B: 1, T: 150, H: 2, K: 128, V: 128, init: true, minLd: -20, lowA: false }, segs: [1, 2, 3, 5] },
  { c: { B: 2, T: 130, H: 1, K: 128, V: 128, init: false, minLd: -0.3, lowA: true }, segs: [2, 5] },
  { c: { B: 2, T: 195, H: 1, K: 48, V: 40, init: true, minLd: -1, lowA: false }, segs: [3, 5] },
  { c: { B: 1, T: 2048, H: 1, K: 64, V: 64, init: true, minLd: -0.01, lowA: true }, segs: [2] },
];

describe.skipIf(!gpp || !cpuTorch)("rows chunk segments' end states in one kernel (ROWS_SEG_STATES \"cuda\"): CPU emulation vs float64", () => {
  const m = rowsSegStatesModule();
  const bin = buildEmu(m.source, m.kernels);
  it("E, Q and the runtime's start states both ways: 1, 2, 3, 5 segments, T ragged, 1024-token segments, decays to -20, forward and reversed time", () => {
    const lines: string[] = [];
    for (const [i, { c, segs }] of CASES.entries()) {
      const k = m.kernels.find((x) => x.lowA === c.lowA)!, d = data(c, 71 + i);
      for (const rev of [0, 31])
        for (const nseg of segs) {
          const got = run(bin, k, c, d, nseg, rev), want = endsRef(c, d, nseg, rev), starts = startsRef(c, d, nseg, rev);
          const e = nseg > 1 ? [err(got.E, want.E), maxAbs(got.Q, want.Q)] : [0, 0];
          const s = [err(got.cuda, starts), err(got.torch, starts)];
          lines.push(`${k.entry} B=${c.B} T=${c.T} K=${c.K} V=${c.V} n=${nseg} rev=${rev}: E ${e[0].toExponential(1)} Q (abs) ${e[1].toExponential(1)} starts cuda ${s[0].toExponential(1)} torch ${s[1].toExponential(1)}`);
          for (const x of [...e, ...s]) expect(x, lines[lines.length - 1]).toBeLessThan(TOL);
          if (nseg > 1) expect(got.E.length).toBe(want.E.length);
        }
    }
    console.log(lines.join("\n"));
  }, 900_000);
  it("broken copies fail: own decay in the forward weight, a reversed segment's first decay kept, sums (and Q) not carried over stages", () => {
    const c: Case = { B: 1, T: 130, H: 1, K: 64, V: 64, init: false, minLd: -0.3, lowA: false }, d = data(c, 79);
    const patches: [string, (s: string) => string, number][] = [
      ["own decay", (s) => s.replace("p[i] = rev ? s : before;", "p[i] = s;"), 0],
      ["first decay kept", (s) => s.replace("(rev && m0 + r == 0) ? 0.f : ", ""), 31],
      ["no carry", (s) => s.replace("carry += ((t0 + t1) + t2) + t3;", "carry = ((t0 + t1) + t2) + t3;"), 0],
      ["no carry rev", (s) => s.replace("carry += ((t0 + t1) + t2) + t3;", "carry = ((t0 + t1) + t2) + t3;"), 31],
    ];
    for (const [what, patch, rev] of patches) {
      const mb = rowsSegStatesModule(patch);
      const got = run(buildEmu(mb.source, mb.kernels), mb.kernels[0], c, d, 2, rev);
      const e = Math.max(err(got.E, endsRef(c, d, 2, rev).E), err(got.cuda, startsRef(c, d, 2, rev)));
      expect(e > 1e-3, `${what} rev=${rev}: error ${e}`).toBe(true);
    }
  }, 900_000);
});
