/**
 * The token-aligned delta backward's five kernels chained from one assembled module (compiler/backends/cuda/delta-bwd.ts,
 * the torch target's "kernels"."deltaBwd") on the CPU emulation of CUDA, launched as runtime/torch/seqc_delta_bwd.py's
 * kernel path does: prep_fwd (grid N), the forward walk (grid (B H, V / cols), Z0 the initial state), prep_bwd (reading
 * prep_fwd's TI), the backward walk (reverse, Z0 the final state's cotangent), the adjoint (R, S0 = the forward walk's Y
 * and ZS, SF its ZF, LE and DR the backward walk's ZS and Y). Against test/helpers/delta-ref.ts deltaBackward in float64
 * at the kernels' rounded inputs: dq, du, dw, dk, dv, dld (scalar decay: [B, T, H]; per-key decay, RWKV-7: [B, T, H, K])
 * and dS_init, at C = 64, K = V = 64 (B 2) and 128 (B 1; not with a per-key decay: its adjoint is at 64 only), H 2,
 * T 100 (a ragged second chunk) and T 1, decay none / scalar / key (ld a key uniform in [-1, 0)), f32 and bf16 inputs on the fp32 kernels and bf16 inputs on
 * the TF32 twins of prep and the adjoint, f32 inputs with the walks for few rows (split), f32 inputs with the walks'
 * 3xTF32 twins (delta-walk-mma.ts), initial state and final-state cotangent given. A broken chain (the backward walk launched forwards) must fail.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { deltaBwdConfigs, deltaBwdModule, type DeltaBwdDecay, type DeltaBwdKernel } from "../compiler/backends/cuda/delta-bwd.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { EMU_READF } from "./cuda-emu/harness.ts";
import { bf16 } from "./helpers/bf16-round.ts";
import { deltaBackward, type DeltaInputs, type DeltaShape } from "./helpers/delta-ref.ts";
import { compileLowRankEmu, f32Bytes, inScratchDir, readF32 } from "./helpers/lowrank-emu.ts";
import { rng } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
if (!gpp) console.warn("cuda-delta-bwd-chain-emu.test: g++ is not installed, so the emulated runs are skipped");

const INS = ["Q", "U", "W", "KK", "VV", "DY", "LD", "S0", "DS"] as const;
const OUTS = ["dQ", "dU", "dW", "dK", "dV", "dLD", "dS"] as const;
type Outs = Record<(typeof OUTS)[number], Float64Array>;

/** The chains run, at K = V = 64 and 128: f32 inputs, bf16 inputs (fp32 kernels), bf16 inputs on the TF32 twins of prep
 * and the adjoint, f32 inputs with the walks for few rows (few: the walk with split > 1), f32 inputs with the walks' 3xTF32
 * twins (walk: "tf32x3", delta-walk-mma.ts). */
const WAYS = [64, 128].flatMap((K) => [{ K, tin: "f32", math: undefined, few: false, walk: undefined }, { K, tin: "bf16", math: undefined, few: false, walk: undefined }, { K, tin: "bf16", math: "tf32", few: false, walk: undefined }, { K, tin: "f32", math: undefined, few: true, walk: undefined }, { K, tin: "f32", math: undefined, few: false, walk: "tf32x3" }] as const);
type Way = (typeof WAYS)[number];

/** A decay mode's ways: decay "key" (RWKV-7) at K = V = 64 (the per-key adjoint's only shape), every way (bf16
 * inputs on the per-key TF32 twins of prep and the adjoint among them). */
const waysOf = (decay: DeltaBwdDecay): readonly Way[] => (decay === "key" ? WAYS.filter((w) => w.K === 64) : WAYS);

/** The kernels of one way at C = 64, by op. */
function pick(kernels: DeltaBwdKernel[], way: Way): Record<Exclude<DeltaBwdKernel["op"], "prep_r">, DeltaBwdKernel> {
  const at = (op: DeltaBwdKernel["op"]) => {
    const k = kernels.find((x) => x.op === op && x.C === 64 && x.K === way.K && x.V === way.K && (op === "walk" ? !!x.split === way.few && x.math === way.walk : x.tin === way.tin && x.math === way.math));
    if (!k) throw new Error(`no ${op} kernel for K ${way.K} ${way.tin} ${way.math ?? "fp32"}${way.few ? " (few rows)" : ""}${way.walk ? ` (walk ${way.walk})` : ""}`);
    return k;
  };
  return { prep_fwd: at("prep_fwd"), prep_bwd: at("prep_bwd"), walk: at("walk"), adj: at("adj") };
}

/** An emulator running the chain each way: argv dir (the INS .bin files), way (an index of WAYS), B, T, H,
 * whether LD, S0, DS are given, the backward walk's reverse flag; writes the OUTS .out files (float32). */
function buildEmu(decay: DeltaBwdDecay, m: { source: string; kernels: DeltaBwdKernel[] }): string {
  const ways = waysOf(decay), byWay = ways.map((w) => pick(m.kernels, w));
  const launch = (k: DeltaBwdKernel, grid: string, call: string) =>
    `{ emu::Dim g; ${grid} emu::Dim blk; blk.x = ${k.threads}u; emu::launch([]() { ${k.entry}(${call}); }, g, blk, ${k.sharedBytes}u); }`;
  const chain = (ks: Record<Exclude<DeltaBwdKernel["op"], "prep_r">, DeltaBwdKernel>) => `
    ${launch(ks.prep_fwd, "g.x = N;", "P(iU), P(iW), P(iKK), P(iVV), LDp, B_, T_, H_, TI, fM, fX, fBM, fNN, fA")}
    ${launch(ks.walk, `g.x = BH; g.y = ${ks.walk.V / ks.walk.cols}u;`, "fM, fX, fBM, fNN, fA, S0p, S0s, R, SF, (int)BH, (int)NC, 0")}
    ${launch(ks.prep_bwd, "g.x = N;", "P(iQ), P(iU), P(iW), P(iDY), LDp, TI, B_, T_, H_, bM, bX, bBM, bNN, bA")}
    ${launch(ks.walk, `g.x = BH; g.y = ${ks.walk.V / ks.walk.cols}u;`, "bM, bX, bBM, bNN, bA, DSp, LE, DR, dS, (int)BH, (int)NC, REV")}
    ${launch(ks.adj, "g.x = N;", "P(iQ), P(iU), P(iW), P(iKK), P(iVV), P(iDY), LDp, R, S0s, SF, LE, DR, B_, T_, H_, dQ, dU, dW, dK, dV, dLDp")}`;
  const main = `
// a pointer converting to any input pointer type (float, __nv_bfloat16, unsigned short)
struct AnyP { const void* p; template <class U> operator const U*() const { return (const U*)p; } };
static std::vector<char> in[${INS.length}];
${INS.map((n, i) => `static const int i${n} = ${i};`).join(" ")}
static AnyP P(int i) { return AnyP{in[i].data()}; }
static int B_, T_, H_, REV;
static unsigned N, BH, NC;
static const float *LDp, *S0p, *DSp;
static float *TI, *fM, *fX, *fBM, *fNN, *fA, *S0s, *R, *SF, *bM, *bX, *bBM, *bNN, *bA, *LE, *DR, *dS, *dQ, *dU, *dW, *dK, *dV, *dLD, *dLDp;
static float* alloc(size_t n) { float* p = (float*)malloc(n * 4 + 64); for (size_t i = 0; i < n; ++i) p[i] = __uint_as_float(0x7fc00000u); return p; }
static void save(const std::string& path, const float* p, size_t n) { FILE* f = fopen(path.c_str(), "wb"); fwrite(p, 4, n, f); fclose(f); }
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  const int way = atoi(argv[2]);
  B_ = atoi(argv[3]); T_ = atoi(argv[4]); H_ = atoi(argv[5]);
  const int hasLD = atoi(argv[6]), hasS0 = atoi(argv[7]), hasDS = atoi(argv[8]);
  REV = atoi(argv[9]);
  const char* names[] = {${INS.map((n) => `"${n}"`).join(", ")}};
  for (int i = 0; i < ${INS.length}; ++i) in[i] = readf(dir + "/" + names[i] + ".bin");
  LDp = hasLD ? (const float*)in[iLD].data() : nullptr; S0p = hasS0 ? (const float*)in[iS0].data() : nullptr; DSp = hasDS ? (const float*)in[iDS].data() : nullptr;
  static const size_t WAY_K[] = {${ways.map((w) => w.K).join(", ")}};
  const size_t C = 64, K = WAY_K[way], V = K, LW = ${decay === "key" ? "K" : "1"};  // log decays a token: one a key with a per-key decay
  NC = (unsigned)((T_ + 63) / 64); BH = (unsigned)(B_ * H_); N = BH * NC;
  const size_t tok = (size_t)B_ * T_ * H_;
  TI = alloc(N * C * C); fM = alloc(N * C * K); fX = alloc(N * C * V); fBM = alloc(N * K * V); fNN = alloc(N * C * K); fA = alloc(N * LW);
  S0s = alloc(N * K * V); R = alloc(N * C * V); SF = alloc(BH * K * V);
  bM = alloc(N * C * K); bX = alloc(N * C * V); bBM = alloc(N * K * V); bNN = alloc(N * C * K); bA = alloc(N * LW);
  LE = alloc(N * K * V); DR = alloc(N * C * V); dS = alloc(BH * K * V);
  dQ = alloc(tok * K); dU = alloc(tok * K); dW = alloc(tok * K); dK = alloc(tok * K); dV = alloc(tok * V); dLD = alloc(tok * LW);
  dLDp = ${decay === "none" ? "nullptr" : "dLD"};
${byWay.map((ks, i) => `  if (way == ${i}) {${chain(ks)}
  }`).join("\n")}
  save(dir + "/dQ.out", dQ, tok * K); save(dir + "/dU.out", dU, tok * K); save(dir + "/dW.out", dW, tok * K); save(dir + "/dK.out", dK, tok * K);
  save(dir + "/dV.out", dV, tok * V); save(dir + "/dLD.out", dLD, tok * LW); save(dir + "/dS.out", dS, BH * K * V);
  return 0;
}
`;
  return compileLowRankEmu(m.source, main, `delta-bwd-chain-${decay}`, true);
}

interface Case { s: DeltaShape; inp: DeltaInputs; dY: Float64Array; dS: Float64Array; files: Record<(typeof INS)[number], Buffer> }

/** Random inputs (rounded to the input type; the reference takes the rounded values), u and w scaled by 2 / sqrt(K) (a
 * well-conditioned chunk solve), ld uniform in [-1, 0) with a decay, the initial state and the final state's cotangent
 * in (-1, 1) (float32). */
function makeCase(decay: DeltaBwdDecay, tin: "f32" | "bf16", K: number, B: number, T: number, H: number, seed: number): Case {
  const s: DeltaShape = { B, T, H, C: 64, K, V: K };
  const r = rng(seed), f32 = (x: Float64Array) => Float64Array.from(new Float32Array(x));
  const files = {} as Record<(typeof INS)[number], Buffer>;
  const draw = (name: (typeof INS)[number], w: number, scale: number) => {
    const x = Float64Array.from({ length: B * T * H * w }, () => scale * 2 * r());
    if (tin === "bf16") { const b = bf16(x); files[name] = b.words; return b.values; }
    const v = f32(x);
    files[name] = f32Bytes(v);
    return v;
  };
  const sc = 2 / Math.sqrt(K);
  const q = draw("Q", K, 1), u = draw("U", K, sc), w = draw("W", K, sc), k = draw("KK", K, 1), v = draw("VV", K, 1), dY = draw("DY", K, 1);
  const ld = decay === "none" ? null : Float64Array.from({ length: B * T * H * (decay === "key" ? K : 1) }, () => Math.fround(r() - 0.5));
  const S = f32(Float64Array.from({ length: B * H * K * K }, () => 2 * r()));
  const dS = f32(Float64Array.from({ length: B * H * K * K }, () => 2 * r()));
  files.LD = f32Bytes(ld ?? new Float64Array(1));
  files.S0 = f32Bytes(S);
  files.DS = f32Bytes(dS);
  return { s, inp: { u, w, k, v, q, ld, S, ...(decay === "key" ? { perKey: true } : {}) }, dY, dS, files };
}

function runEmu(bin: string, cs: Case, way: number, reverse = true): Outs {
  return inScratchDir("seqc-dchain-", (dir) => {
    for (const n of INS) writeFileSync(join(dir, `${n}.bin`), cs.files[n]);
    const { B, T, H } = cs.s;
    execFileSync(bin, [dir, String(way), String(B), String(T), String(H), cs.inp.ld ? "1" : "0", "1", "1", reverse ? "1" : "0"], { stdio: "pipe" });
    return Object.fromEntries(OUTS.map((o) => [o, readF32(join(dir, `${o}.out`))])) as Outs;
  });
}

/** Each gradient's relative error against the float64 backward (Infinity where an output is not finite). */
function errors(got: Outs, cs: Case): Record<string, number> {
  const want = deltaBackward(cs.inp, cs.dY, cs.dS, cs.s);
  const pairs: [string, Float64Array, Float64Array | null][] = [["dq", got.dQ, want.dq], ["du", got.dU, want.du], ["dw", got.dW, want.dw], ["dk", got.dK, want.dk], ["dv", got.dV, want.dv], ["dld", got.dLD, want.dld], ["dS", got.dS, want.dS]];
  return Object.fromEntries(pairs.filter(([, , w]) => w).map(([n, g, w]) => [n, g.every(Number.isFinite) ? relativeError(g, w!) : Infinity]));
}

describe.skipIf(!gpp)("delta backward: the module's five kernels chained on the CPU emulation vs the float64 backward", () => {
  it.each(["none", "scalar", "key"] as const)("decay %s: K = V = 64 and 128 (key: 64), f32 and bf16 inputs, bf16 on the TF32 twins, f32 with the walks for few rows, f32 with the walks' 3xTF32 twins, T = 100 (ragged) and 1, initial state and final-state cotangent", (decay) => {
    const bin = buildEmu(decay, deltaBwdModule(deltaBwdConfigs(decay)));
    const seen: string[] = [];
    for (const [i, way] of waysOf(decay).entries())
      for (const T of [100, 1]) {
        const cs = makeCase(decay, way.tin, way.K, way.K === 64 ? 2 : 1, T, 2, 41 + T + 7 * i + (decay === "none" ? 0 : 3));
        const e = errors(runEmu(bin, cs, i), cs);
        expect(Object.keys(e).length, "outputs checked").toBe(decay === "none" ? 6 : 7);
        // (TF32 products: 10-bit mantissas)
        for (const [n, x] of Object.entries(e)) expect(x, `${decay} K=${way.K} ${way.tin} ${way.math ?? "fp32"}${way.few ? " few" : ""}${way.walk ? ` walk ${way.walk}` : ""} T=${T} ${n}`).toBeLessThan(way.math ? 3e-3 : 1e-5);
        seen.push(`K=${way.K} ${way.tin}${way.math ? `-${way.math}` : ""}${way.few ? "-few" : ""}${way.walk ? `-walk-${way.walk}` : ""} T=${T} ${Math.max(...Object.values(e)).toExponential(2)}`);
      }
    console.log(`delta backward chain (${decay}), worst relative error: ${seen.join(", ")}`);
  }, 600_000);

  it("a broken chain fails: the backward walk launched forwards", () => {
    const bin = buildEmu("scalar", deltaBwdModule(deltaBwdConfigs("scalar")));
    const cs = makeCase("scalar", "f32", 64, 1, 100, 2, 5);
    const e = errors(runEmu(bin, cs, 0, false), cs);
    expect(Math.max(...Object.values(e))).toBeGreaterThan(1e-2);
  }, 300_000);
});
