/**
 * The tensor-core twin of the delta backward's walk over the chunks (delta-walk.ts; math "tf32x3", entries ending
 * _tf32x3; "tf32" on request, _tf32): the same arguments, outputs and recurrence, per (b, h) row and chunk
 *   ZS[n] = Z;   Yc = X[n] + M[n] Z   [C, cols];   Y[n] = Yc;   Z = A[n] Z + BM[n] + NN[n]^T Yc   [K, cols]
 * with both products on mma.sync m16n8k8 TF32. tf32x3: every operand split into a TF32 head and tail (a = ah + al),
 * three products (al bh + ah bl + ah bh): fp32-level accuracy, which the state recurrence needs over hundreds of chunks.
 * C / 16 warps: phase 1, warp w the 16 rows 16 w.. of Yc (all cols); phase 2, warp w the K / C row blocks of Z from
 * 16 (K / C) w on. Z stays in the mma accumulators of its owners across the chunks (z[m][s][e]: row 16 (mt) + g + 8 (e >> 1),
 * column 8 s + 2 tg + (e & 1)); phase 2 accumulates into it directly after scaling by A and adding BM, and writes it to
 * shared memory ([K][LZ]) for the next chunk's phase 1, where it is the B operand. Yc goes through shared memory
 * ([C][LZ]) to phase 2's B operand. Operands are read as scalars in fragment order with strides that put a warp's
 * loads on distinct banks: M [C][K + 4] ([m][k] reads: 4 mod 32), NN [C][LN], Z and Yc [.][LZ] ([k][m] / [k][n] reads:
 * 8 mod 32). Every chunk's operands come by cp.async as in delta-walk.ts: the next chunk's M and X issued when phase 1
 * is done with them (hidden by phase 2), this chunk's NN and BM at the chunk's start (hidden by phase 1). Two block
 * barriers a chunk. A per-key decay (perKey) scales Z's row i by A[n, i] (each thread's rows' decays from global).
 *
 * Options (entry suffixes _w{warpCols}, _i2, _p2; H200 call B14 timed each, bench/RESULTS.md "the delta walk"):
 * warpCols: the block's columns split over that many groups of C / 16 warps (each phase's warp w: row group w % (C / 16),
 * columns (w / (C / 16)) cols / warpCols ..), so a wide block (64 columns at K = 128: M and NN read by 2 blocks a row
 * instead of 8) keeps as many mma a warp as a narrow one; ilp: the even and odd 8-wide k steps into two accumulator sets,
 * added at the phase's end (half-length dependent mma chains); stages 2: every operand of the next chunk copied into a
 * second set of buffers at the chunk's start (a whole step to land). Only warpCols won on the card (DELTA_WALK_WIDE_CONFIGS):
 * ilp and stages 2 made the 3xTF32 walks slower or no faster at every shape timed, and no tensor-core walk beat the fp32
 * split walk for few rows ((1, 32768, 8, 128): 2.966 ms for two walks, the best twin 3.289).
 */
import { DELTA_WALK_PRELUDE, DELTA_WALK_ZOUT_PRELUDE, deltaWalkCols, deltaWalkEntry, type DeltaWalkConfig, type DeltaWalkKernel } from "./delta-walk.ts";
import { padStride, tf32Ops } from "./lowrank-readout-mma.ts";

export interface DeltaWalkMmaConfig extends DeltaWalkConfig {
  math: "tf32" | "tf32x3";
  /** Warps along the block's columns (absent: 1): C / 16 warps a column group of cols / warpCols columns, C / 16 warpCols
   * warps a block (entry _w{warpCols}). */
  warpCols?: number;
  /** Two accumulator sets a product (absent: one): the even and odd 8-wide k steps into separate accumulators, added at the
   * phase's end: two dependent mma chains of half the length (entry _i2). */
  ilp?: boolean;
  /** 2: every operand of the next chunk (M, NN, X, BM) copied into a second set of buffers while this chunk's two phases
   * run (one chunk step to land; entry _p2); absent: one set, the next chunk's M and X hidden by phase 2 and this
   * chunk's NN and BM by phase 1. */
  stages?: 1 | 2;
  /** What the launcher takes it for (seqc_delta_bwd.walk_pick; absent: the default walk's twin): "many" rows (its grid
   * B H (V / cols) at least half the SMs). */
  walkFor?: "many";
}

export interface DeltaWalkMmaKernel extends DeltaWalkKernel {
  math: "tf32" | "tf32x3";
  warpCols: number;
  ilp: boolean;
  stages: number;
  walkFor?: "many";
}

/** The twins of the torch modules' walks: C = 64, K = V = 64 and 128, 3xTF32 (cols as the fp32 walks': 32 at V = 64,
 * 16 at V = 128). */
export const DELTA_WALK_MMA_CONFIGS: readonly DeltaWalkMmaConfig[] = [64, 128].map((K) => ({ C: 64, K, V: K, math: "tf32x3" as const }));

/** The same with a per-key decay. */
export const DELTA_WALK_KEY_MMA_CONFIGS: readonly DeltaWalkMmaConfig[] = DELTA_WALK_MMA_CONFIGS.map((c) => ({ ...c, perKey: true }));

/** The walks for many (b, h) rows at K = V = 128 (walkFor "many"; seqc_delta_bwd.walk_pick takes the 3xTF32 one by
 * default where B H (V / 64) 2 >= the SM count, i.e. B H >= 33 on 132 SMs): 64 value columns a block over two column
 * groups of 4 warps (8 warps, grid (B H, 2): 128 blocks at B H = 64, one an SM with 173,056 bytes; M and NN read by 2
 * blocks a row instead of 8). H200 call B14, the two walks alone at (4, 8192, 16, 128): 3.366 ms (the 16-column twin)
 * -> 2.599 (floor 1.032); plain TF32 with two accumulator sets (LR_DELTA_WALK "tf32", not the default) 1.944, with
 * 1.7e-4 relative error on a bounded walk of 128 chunks vs 5.8e-6 for 3xTF32. Scalar decay only (the per-key walks not
 * timed). */
export const DELTA_WALK_WIDE_CONFIGS: readonly DeltaWalkMmaConfig[] = [
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 2, math: "tf32x3", walkFor: "many" },
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 2, ilp: true, math: "tf32", walkFor: "many" },
];

/** The 3xTF32 walk for many rows with a per-key decay (RWKV-7 at K = V = 128; the "key" modules' walkFor "many"):
 * DELTA_WALK_WIDE_CONFIGS' 3xTF32 layout with A [N, K]. seqc_delta_bwd takes it only under LR_DELTA_KEY_WALK "many"
 * (default "old": the 16-column twin), by the same grid rule as the scalar decay's; untimed on the card. */
export const DELTA_WALK_KEY_WIDE_CONFIGS: readonly DeltaWalkMmaConfig[] = [{ ...DELTA_WALK_WIDE_CONFIGS[0], perKey: true }];

function mmaLayout(c: DeltaWalkMmaConfig): { G: number; W: number; WC: number; MT: number; NB: number; LM: number; LN: number; LZ: number; SET: number; P: number; floats: number } {
  const { C, K, V } = c, G = c.cols ?? deltaWalkCols(K, V), WC = c.warpCols ?? 1;
  if (c.split && c.split > 1) throw new Error(`delta-walk (${c.math}): no split walks`);
  if (C % 16 || C < 16 || C > 512) throw new Error(`delta-walk (${c.math}): C ${C} must be a multiple of 16 (a warp a 16-row block), at most 512`);
  if (K % C) throw new Error(`delta-walk (${c.math}): K ${K} must be a multiple of C ${C} (a warp K / C row blocks of Z)`);
  if (G % 8 || V % G) throw new Error(`delta-walk (${c.math}): cols ${G} must be a multiple of 8 that divides V ${V}`);
  if (!Number.isInteger(WC) || WC < 1 || (G / 8) % WC) throw new Error(`delta-walk (${c.math}): warpCols ${WC} must divide cols / 8 = ${G / 8}`);
  if (c.ilp && (K % 16 || C % 16)) throw new Error(`delta-walk (${c.math}): ilp needs K ${K} and C ${C} multiples of 16`);
  if ((C / 16) * WC * 32 > 1024) throw new Error(`delta-walk (${c.math}): ${(C / 16) * WC} warps (> 32)`);
  const W = C / 16, MT = K / C, NB = G / 8 / WC, LM = K + 4, LN = padStride(K, 8), LZ = padStride(G, 8);
  const SET = C * LM + C * LN + C * G + K * G, P = c.stages ?? 1; // a chunk's operands: M, NN, X, BM
  if (P !== 1 && P !== 2) throw new Error(`delta-walk (${c.math}): stages ${P} must be 1 or 2`);
  const floats = P * SET + C * LZ + K * LZ;
  if (floats * 4 > 227 * 1024) throw new Error(`delta-walk (${c.math}): C ${C}, K ${K}, cols ${G} needs ${floats * 4} bytes of shared memory (> 227 KiB)`);
  return { G, W, WC, MT, NB, LM, LN, LZ, SET, P, floats };
}

/** seqc_delta_walk_[key_]c{C}k{K}v{V}[_g{cols}][_w{warpCols}][_i2][_p2]_{math}[_zb]. */
export function deltaWalkMmaEntry(c: DeltaWalkMmaConfig): string {
  return `${deltaWalkEntry({ ...c, split: 1, zout: undefined })}${(c.warpCols ?? 1) > 1 ? `_w${c.warpCols}` : ""}${c.ilp ? "_i2" : ""}${(c.stages ?? 1) > 1 ? "_p2" : ""}_${c.math}${c.zout === "bf16" ? "_zb" : ""}`;
}

export function deltaWalkMmaKernel(c: DeltaWalkMmaConfig): DeltaWalkMmaKernel {
  const l = mmaLayout(c);
  return { ...c, op: "walk", entry: deltaWalkMmaEntry(c), threads: 32 * l.W * l.WC, sharedBytes: l.floats * 4, cols: l.G, split: 1, math: c.math, warpCols: l.WC, ilp: !!c.ilp, stages: l.P, ...(c.walkFor ? { walkFor: c.walkFor } : {}) };
}

const U = "#pragma unroll";

/** The kernel's source (after delta-walk.ts's DELTA_WALK_PRELUDE, which holds the TF32 helpers). */
export function deltaWalkMmaSource(c: DeltaWalkMmaConfig): string {
  const { C, K, V } = c, { G, W, WC, MT, NB, LM, LN, LZ, SET, P } = mmaLayout(c), NT = 32 * W * WC;
  const { frag, mma } = tf32Ops(c.math === "tf32x3");
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // warp w's row group (wr) and column group (its columns cb .. cb + 8 NB - 1 of the block's) with warpCols > 1
  const wr = WC > 1 ? "wr" : "w", cb = WC > 1 ? "cb + " : "";
  const KS = c.ilp ? 16 : 8; // k a loop step (ilp: the odd 8-wide step into the second accumulators)
  const zRow = (m: number, h: number) => `(${MT}u * ${wr} + ${m}u) * 16u + g + ${8 * h}u`;
  const col = (s: number) => `${cb}${8 * s}u + 2u * tg`;
  /** every (m, s, h) pair of Z's accumulators: code(m, s, h, row, col) */
  const zPairs = (code: (m: number, s: number, h: number, row: string, cl: string) => string, ind: string) =>
    range(MT).flatMap((m) => range(NB).flatMap((s) => [0, 1].map((h) => `${ind}{ const u32 row = ${zRow(m, h)}, col = ${col(s)}; ${code(m, s, h, "row", "col")} }\n`))).join("");
  const pair = (a: string, m: number, s: number, h: number) => `make_float2(${a}[${m}][${s}][${2 * h}], ${a}[${m}][${s}][${2 * h + 1}])`;
  // ZS's and Y's stores (zout "bf16": the pair rounded to bf16, one u32) and ZF's (float32 always)
  const zb = c.zout === "bf16", OT = zb ? "unsigned short" : "float";
  const put2 = (p: string, lo: string, hi: string, out: boolean) => (out && zb ? `*(u32*)&${p} = seqc_dz_pack(${lo}, ${hi});` : `*(float2*)&${p} = make_float2(${lo}, ${hi});`);
  const gZ = (buf: string, rowBase: string) => (m: number, s: number, h: number, row: string, cl: string) => put2(`${buf}[(${rowBase} + ${row}) * ${V}u + j0 + ${cl}]`, `z[${m}][${s}][${2 * h}]`, `z[${m}][${s}][${2 * h + 1}]`, buf === "ZS");
  const sZstore = (ind: string) => zPairs((m, s, h, row, cl) => `*(float2*)&sZ[${row} * ${LZ}u + ${cl}] = ${pair("z", m, s, h)};`, ind);
  // a chunk's R rows of width Wd floats (source stride, offset) into dst [R][ld] by 16-byte copies
  const copy = (dst: string, ld: number, src: string, R: number, Wd: number, stride: number, off: string, ind: string) =>
    `${ind}for (u32 x = t; x < ${R * (Wd / 4)}u; x += ${NT}u) { const u32 r = x / ${Wd / 4}u, q = 4u * (x % ${Wd / 4}u); seqc_cp16(&${dst}[r * ${ld}u + q], ${src} + (size_t)r * ${stride}u${off} + q); }\n`;
  const copyMX = (ind: string, nv: string) => `${ind}{
${ind}  const float* gM = M + ${nv} * ${C * K}u;
${ind}  const float* gX = X + ${nv} * ${C * V}u;
${copy("sM", LM, "gM", C, K, K, "", ind + "  ")}${copy("sX", G, "gX", C, G, V, " + j0", ind + "  ")}${ind}}
`;
  const chunkOf = (s: string) => `(reverse ? nC - 1 - ${s} : ${s})`;
  const decay = c.perKey
    ? (m: number, h: number) => `A[n * ${K}u + ${zRow(m, h)}]`
    : () => "an";
  const zero = (name: string, dims: number[], ind: string) => `${ind}float ${name}${dims.map((d) => `[${d}]`).join("")} = {};\n`;
  // to += from over an accumulator array of these dims (nested unrolled loops)
  const addInto = (to: string, from: string, dims: number[], ind: string) => {
    const ix = dims.map((_, i) => `i${i}`), at = ix.map((i) => `[${i}]`).join("");
    return dims.map((d, i) => `${ind}${"  ".repeat(i)}${U}\n${ind}${"  ".repeat(i)}for (u32 i${i} = 0; i${i} < ${d}u; ++i${i})\n`).join("") + `${ind}${"  ".repeat(dims.length)}${to}${at} += ${from}${at};\n`;
  };
  // phase 1's k step at kk into accumulators acc
  const p1Step = (kk: string, acc: string) => `${frag("      ", "fa", [[0, 0], [8, 0], [0, 4], [8, 4]].map(([dr, dk]) => `sM[(16u * ${wr} + g + ${dr}u) * ${LM}u + ${kk} + tg + ${dk}u]`))}${range(NB).map((s) => `      {
${frag("        ", "fb", [0, 4].map((dk) => `sZ[(${kk} + tg + ${dk}u) * ${LZ}u + ${cb}${8 * s}u + g]`))}${mma("        ", `${acc}[${s}]`, "fa", "fb")}      }
`).join("")}`;
  // phase 1: warp w's rows 16 w.. of Yc = X + M Z (its column group's columns)
  const p1 = `    float y[${NB}][4];
${range(NB).flatMap((s) => [0, 1].map((h) => `    { const float2 v = *(const float2*)&sX[(16u * ${wr} + g + ${8 * h}u) * ${G}u + ${col(s)}]; y[${s}][${2 * h}] = v.x; y[${s}][${2 * h + 1}] = v.y; }\n`)).join("")}${c.ilp ? zero("y2", [NB, 4], "    ") : ""}${U} 2
    for (u32 k0 = 0; k0 < ${K}u; k0 += ${KS}u) {
${c.ilp ? `      {\n${p1Step("k0", "y")}      }\n      {\n${p1Step("(k0 + 8u)", "y2")}      }\n` : p1Step("k0", "y")}    }
${c.ilp ? addInto("y", "y2", [NB, 4], "    ") : ""}${range(NB).flatMap((s) => [0, 1].map((h) => `    { const u32 row = 16u * ${wr} + g + ${8 * h}u, col = ${col(s)}; const float2 v = make_float2(y[${s}][${2 * h}], y[${s}][${2 * h + 1}]); *(float2*)&sY[row * ${LZ}u + col] = v; ${zb ? put2(`Y[(n * ${C}u + row) * ${V}u + j0 + col]`, "v.x", "v.y", true) : `*(float2*)&Y[(n * ${C}u + row) * ${V}u + j0 + col] = v;`} }\n`)).join("")}`;
  // phase 2's k step at kk into accumulators acc
  const p2Step = (kk: string, acc: string) => `${range(NB).map((s) => frag("      ", `fb${s}`, [0, 4].map((dk) => `sY[(${kk} + tg + ${dk}u) * ${LZ}u + ${cb}${8 * s}u + g]`))).join("")}${range(MT).map((m) => `      {
${frag("        ", "fa", [[0, 0], [8, 0], [0, 4], [8, 4]].map(([dr, dk]) => `sN[(${kk} + tg + ${dk}u) * ${LN}u + ${MT * 16}u * ${wr} + ${16 * m + dr}u + g]`))}${range(NB).map((s) => mma("        ", `${acc}[${m}][${s}]`, "fa", `fb${s}`)).join("")}      }
`).join("")}`;
  // phase 2: Z = A Z + BM + NN^T Yc on warp w's row blocks, in the accumulators
  const p2 = `${zPairs((m, s, h, row, cl) => `const float2 b = *(const float2*)&sB[${row} * ${G}u + ${cl}]; const float a = ${decay(m, h)}; z[${m}][${s}][${2 * h}] = fmaf(a, z[${m}][${s}][${2 * h}], b.x); z[${m}][${s}][${2 * h + 1}] = fmaf(a, z[${m}][${s}][${2 * h + 1}], b.y);`, "    ")}${c.ilp ? zero("z2", [MT, NB, 4], "    ") : ""}${U} 2
    for (u32 k0 = 0; k0 < ${C}u; k0 += ${KS}u) {
${c.ilp ? `      {\n${p2Step("k0", "z")}      }\n      {\n${p2Step("(k0 + 8u)", "z2")}      }\n` : p2Step("k0", "z")}    }
${c.ilp ? addInto("z", "z2", [MT, NB, 4], "    ") : ""}${sZstore("    ")}`;
  // one set of buffers: this chunk's NN and BM at its start (hidden by phase 1), the next chunk's M and X after phase 1
  const loop1 = `  if (nC > 0) {  // the first chunk's M and X
    const size_t n0 = (size_t)bh * nC + ${chunkOf("0")};
${copyMX("    ", "n0")}  }
  seqc_cp_commit();
  for (int s = 0; s < nC; ++s) {
    const size_t n = (size_t)bh * nC + ${chunkOf("s")};
    seqc_cp_wait<0>();  // this chunk's M and X
    __syncthreads();    // ... every thread's copies, Z; the previous phase 2 done with NN, BM and Yc
    {  // this chunk's NN and BM, hidden by phase 1
      const float* gN = NN + n * ${C * K}u;
      const float* gB = BM + n * ${K * V}u;
${copy("sN", LN, "gN", C, K, K, "", "      ")}${copy("sB", G, "gB", K, G, V, " + j0", "      ")}    }
    seqc_cp_commit();
${c.perKey ? "" : "    const float an = A[n];\n"}${zPairs(gZ("ZS", `n * ${K}u`), "    ")}    // phase 1: Yc = X + M Z
${p1}    seqc_cp_wait<0>();  // this chunk's NN and BM
    __syncthreads();    // ... and Yc; phase 1 done with M, X and Z
    if (s + 1 < nC) {  // the next chunk's M and X, hidden by phase 2
      const size_t nn = (size_t)bh * nC + ${chunkOf("(s + 1)")};
${copyMX("      ", "nn")}    }
    seqc_cp_commit();
    // phase 2: Z = A Z + BM + NN^T Yc
${p2}  }
`;
  // two sets (stages 2): every operand of chunk s + 1 into the other set at chunk s's start (a whole step to land)
  const set = (v: string) => `float* sM = sS + (${v} & 1) * ${SET}u; float* sN = sM + ${C * LM}u; float* sX = sN + ${C * LN}u; float* sB = sX + ${C * G}u;`;
  const copyAll = (ind: string, nv: string, sv: string) => `${ind}{
${ind}  ${set(sv)}
${ind}  const float* gM = M + ${nv} * ${C * K}u;
${ind}  const float* gX = X + ${nv} * ${C * V}u;
${ind}  const float* gN = NN + ${nv} * ${C * K}u;
${ind}  const float* gB = BM + ${nv} * ${K * V}u;
${copy("sM", LM, "gM", C, K, K, "", ind + "  ")}${copy("sX", G, "gX", C, G, V, " + j0", ind + "  ")}${copy("sN", LN, "gN", C, K, K, "", ind + "  ")}${copy("sB", G, "gB", K, G, V, " + j0", ind + "  ")}${ind}}
`;
  const loop2 = `  if (nC > 0) {  // the first chunk's operands into set 0
    const size_t n0 = (size_t)bh * nC + ${chunkOf("0")};
${copyAll("    ", "n0", "0u")}  }
  seqc_cp_commit();
  for (int s = 0; s < nC; ++s) {
    const size_t n = (size_t)bh * nC + ${chunkOf("s")};
    ${set("(u32)s")}
    seqc_cp_wait<0>();  // this chunk's operands (issued a step ago)
    __syncthreads();    // ... every thread's copies, Z; the previous chunk done with the other set and Yc
    if (s + 1 < nC) {  // every operand of the next chunk into the other set, hidden by this chunk's two phases
      const size_t nn = (size_t)bh * nC + ${chunkOf("(s + 1)")};
${copyAll("      ", "nn", "(u32)(s + 1)")}    }
    seqc_cp_commit();
${c.perKey ? "" : "    const float an = A[n];\n"}${zPairs(gZ("ZS", `n * ${K}u`), "    ")}    // phase 1: Yc = X + M Z
${p1}    __syncthreads();    // Yc; phase 1 done with Z
    // phase 2: Z = A Z + BM + NN^T Yc
${p2}  }
`;
  return `${zb ? DELTA_WALK_ZOUT_PRELUDE : ""}
extern "C" __global__ void __launch_bounds__(${NT}) ${deltaWalkMmaEntry(c)}(const float* __restrict__ M, const float* __restrict__ X, const float* __restrict__ BM, const float* __restrict__ NN, const float* __restrict__ A, const float* __restrict__ Z0, ${OT}* __restrict__ ZS, ${OT}* __restrict__ Y, float* __restrict__ ZF, int BH, int nC, int reverse) {
  SEQC_SMEM_DECL(seqc_smem_raw);
${P === 1 ? `  float* sM = (float*)seqc_smem_raw;  // M [C][${LM}]
  float* sN = sM + ${C * LM};         // NN [C][${LN}]
  float* sX = sN + ${C * LN};         // X [C][cols]
  float* sY = sX + ${C * G};          // Yc [C][${LZ}]
  float* sB = sY + ${C * LZ};         // BM [K][cols]
  float* sZ = sB + ${K * G};          // Z [K][${LZ}]
` : `  float* sS = (float*)seqc_smem_raw;  // two sets of a chunk's operands (${SET} floats each): M [C][${LM}], NN [C][${LN}], X [C][cols], BM [K][cols]
  float* sY = sS + ${2 * SET};        // Yc [C][${LZ}]
  float* sZ = sY + ${C * LZ};         // Z [K][${LZ}]
`}  const u32 t = threadIdx.x, w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
${WC > 1 ? `  const u32 wr = w % ${W}u, cb = (w / ${W}u) * ${8 * NB}u;  // the warp's row group, its column group's first column\n` : ""}  const int bh = blockIdx.x;
  if (bh >= BH) return;
  const u32 j0 = blockIdx.y * ${G}u;  // this block's value columns j0 .. j0 + ${G - 1}
  float z[${MT}][${NB}][4];  // Z's rows 16 (${MT} ${wr} + m) + g + 8 (e >> 1), columns ${cb}8 s + 2 tg + (e & 1)
  if (Z0) {
${zPairs((m, s, h, row, cl) => `const float2 v = *(const float2*)&Z0[((size_t)bh * ${K}u + ${row}) * ${V}u + j0 + ${cl}]; z[${m}][${s}][${2 * h}] = v.x; z[${m}][${s}][${2 * h + 1}] = v.y;`, "    ")}  } else {
${U}
    for (u32 m = 0; m < ${MT}u; ++m)
${U}
      for (u32 s = 0; s < ${NB}u; ++s)
${U}
        for (u32 e = 0; e < 4u; ++e) z[m][s][e] = 0.f;
  }
${sZstore("  ")}${P === 1 ? loop1 : loop2}${zPairs(gZ("ZF", `(size_t)bh * ${K}u`), "  ")}}
`;
}

/** The twins of these configurations as one translation unit after delta-walk.ts's DELTA_WALK_PRELUDE; `patch` edits the
 * source (the tests' broken copies). */
export function deltaWalkMmaModule(configs: readonly DeltaWalkMmaConfig[] = DELTA_WALK_MMA_CONFIGS, patch?: (src: string) => string): { source: string; kernels: DeltaWalkMmaKernel[] } {
  const source = DELTA_WALK_PRELUDE + configs.map(deltaWalkMmaSource).join("");
  return { source: patch ? patch(source) : source, kernels: configs.map(deltaWalkMmaKernel) };
}
