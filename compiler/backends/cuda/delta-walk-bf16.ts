/**
 * The delta backward's reverse walk with bf16 operands (docs/delta-backward.md "The walk"; the runtime's
 * LR_DELTA_WALK_BF16): the recurrence of delta-walk.ts, per (b, h) row and chunk
 *   ZS[n] = Z;   Yc = X[n] + M[n] Z   [C, cols];   Y[n] = Yc;   Z = A[n] Z + BM[n] + NN[n]^T Yc   [K, cols]
 * with both products on mma.sync m16n8k16, bf16 operands and fp32 accumulators (fla's chunk_gated_delta_rule_bwd_dhu
 * does its products so): M and NN come as bf16 from prep_bwd's bf16-output twin (delta-prep-staged.ts, config wout),
 * NN transposed ([N, K, C]: NN^T's rows are the A operand of phase 2, so every fragment register is one 32-bit shared
 * load of two adjacent k); Z and Yc are rounded to bf16 as they are staged as operands (kept transposed in shared
 * memory, [cols][K + 8] and [cols][C + 8], for the same reason). Z itself stays fp32 in the accumulators of its owner
 * warps across the chunks; ZS and Y are written as bf16 (the bf16 adjoint's `_zb` sibling reads them; this walk exists
 * only with zout "bf16"), ZF as float32. With win "all", X and BM are bf16 too (else float32: they are only added into
 * fp32 accumulators).
 *
 * Warps: C / 16 row groups x warpCols column groups. Phase 1: warp (wr, wc) the 16 rows 16 wr.. of Yc at its column
 * group's columns; phase 2: the K / C row blocks of Z from 16 (K / C) wr on. Every operand of a chunk (M, NN^T, X, BM)
 * comes by 16-byte cp.async into one of `stages` sets of buffers: chunk s + stages - 1's copies are issued at chunk s's
 * start, after the barrier that ends chunk s - 1's use of that set (stages - 1 steps to land). Two block barriers a
 * chunk.
 *
 * Configurations (DELTA_WALK_BF16_CONFIGS; the runtime's rule as the 3xTF32 walks': "many" where its grid
 * B H (V / cols) 2 >= the SM count, else "few"): many rows K = V = 128 (64 columns over two column groups, 8 warps: grid
 * (B H, 2)) and K = V = 64 (32 columns, 4 warps: grid (B H, 2)); few rows 8 columns, 4 warps (grid (B H, V / 8); three
 * buffer sets at K = 128).
 *
 * A per-key decay (perKey, RWKV-7): A [N, K], Z = diag(A[n, :]) Z + BM + NN^T Yc, each thread's 2 K / C rows' decays
 * loaded from global at the chunk's start; with zout "f32" ZS and Y are stored as float32 (the per-key adjoint reads
 * them so; entries without _zb). DELTA_WALK_BF16_KEY_CONFIGS.
 */
import { DELTA_WALK_PRELUDE, DELTA_WALK_ZOUT_PRELUDE } from "./delta-walk.ts";
import { BF16_MMA, H2F } from "./delta-prep-staged.ts";

export interface DeltaWalkBf16Config {
  C: number;
  K: number;
  V: number;
  /** Value columns a block (a multiple of 8 dividing V). */
  cols: number;
  /** Column groups of C / 16 warps (absent: 1; divides cols / 8). */
  warpCols?: number;
  /** "mn": M and NN^T bf16, X and BM float32 (entry _bf16); "all": X and BM bf16 too (entry _bf16x). */
  win: "mn" | "all";
  /** Sets of operand buffers (absent: 2; entry _p3 for 3). */
  stages?: 2 | 3;
  /** What the runtime takes it for: many (b, h) rows or few. */
  walkFor: "many" | "few";
  /** A per-key decay (RWKV-7; entry seqc_delta_walk_key_...): A [N, K], Z's row i scaled by A[n, i] (each thread's rows'
   * decays loaded from global at the chunk's start); absent: A [N]. */
  perKey?: boolean;
  /** ZS and Y: "bf16" (absent; entry _zb) or "f32" (no _zb: the per-key adjoint reads them as float32). */
  zout?: "bf16" | "f32";
}

export interface DeltaWalkBf16Kernel extends DeltaWalkBf16Config {
  op: "walk";
  math: "bf16";
  zout: "bf16" | "f32";
  split: 1;
  entry: string;
  threads: number;
  sharedBytes: number;
  warpCols: number;
  stages: 2 | 3;
}

/** The torch modules' bf16 walks: both operand types, many rows and few, K = V = 64 and 128; the few rows' at K = 128
 * with three buffer sets (H200 call W1, the walk alone at (1, 32768, 8, 128): 0.776 -> 0.737 ms "mn", 0.770 -> 0.676
 * "all"; at K = 64 three sets were slower, 0.314 -> 0.373). */
export const DELTA_WALK_BF16_CONFIGS: readonly DeltaWalkBf16Config[] = (["mn", "all"] as const).flatMap((win) => [
  { C: 64, K: 64, V: 64, cols: 32, win, walkFor: "many" as const },
  { C: 64, K: 64, V: 64, cols: 8, win, walkFor: "few" as const },
  { C: 64, K: 128, V: 128, cols: 64, warpCols: 2, win, walkFor: "many" as const },
  { C: 64, K: 128, V: 128, cols: 8, win, stages: 3 as const, walkFor: "few" as const },
]);

/** The per-key decay's (RWKV-7, the "key" modules') bf16 reverse walks: win "mn" (M and NN^T bf16 from prep_bwd_key's wout
 * twin, delta-prep-mma.ts), A [N, K], ZS and Y float32 (the per-key adjoint reads float32 LE and DR); the shapes and
 * buffer sets of DELTA_WALK_BF16_CONFIGS' "mn" walks. seqc_delta_bwd takes them under LR_DELTA_KEY_WALK_BF16 "on". */
export const DELTA_WALK_BF16_KEY_CONFIGS: readonly DeltaWalkBf16Config[] = DELTA_WALK_BF16_CONFIGS.filter((c) => c.win === "mn").map((c) => ({ ...c, perKey: true, zout: "f32" as const }));

/** seqc_delta_walk_[key_]c{C}k{K}v{V}_g{cols}[_w{warpCols}][_p3]_bf16{|x}[_zb] (_zb: zout bf16). */
export function deltaWalkBf16Entry(c: DeltaWalkBf16Config): string {
  const WC = c.warpCols ?? 1;
  return `seqc_delta_walk_${c.perKey ? "key_" : ""}c${c.C}k${c.K}v${c.V}_g${c.cols}${WC > 1 ? `_w${WC}` : ""}${(c.stages ?? 2) === 3 ? "_p3" : ""}_bf16${c.win === "all" ? "x" : ""}${c.zout === "f32" ? "" : "_zb"}`;
}

/** Row strides (halves: LMK for M [C][K + 8], LC for NN^T [K][C + 8] and Yc^T [cols][C + 8], LK for Z^T [cols][K + 8];
 * LX X's and BM's rows in their own elements: cols + 8 bf16 or cols + 4 float32) and the set's size in halves. */
function layout(c: DeltaWalkBf16Config) {
  const { C, K, V, cols: G } = c, WC = c.warpCols ?? 1, P = c.stages ?? 2, xb = c.win === "all";
  if (C % 16 || C < 16) throw new Error(`delta-walk (bf16): C ${C} must be a multiple of 16`);
  if (K % C) throw new Error(`delta-walk (bf16): K ${K} must be a multiple of C ${C} (a warp K / C row blocks of Z)`);
  if (G % 8 || V % G) throw new Error(`delta-walk (bf16): cols ${G} must be a multiple of 8 that divides V ${V}`);
  if (!Number.isInteger(WC) || WC < 1 || (G / 8) % WC) throw new Error(`delta-walk (bf16): warpCols ${WC} must divide cols / 8 = ${G / 8}`);
  if (P !== 2 && P !== 3) throw new Error(`delta-walk (bf16): stages ${P} must be 2 or 3`);
  const W = C / 16, MT = K / C, NB = G / 8 / WC, NT = 32 * W * WC;
  if (NT > 1024) throw new Error(`delta-walk (bf16): ${NT} threads (> 1024)`);
  const LMK = K + 8, LC = C + 8, LK = K + 8, LX = xb ? G + 8 : G + 4, XH = xb ? 1 : 2; // XH: halves an X / BM element
  const SETH = C * LMK + K * LC + (C + K) * LX * XH;
  const halves = P * SETH + G * LC + G * LK;
  if (halves * 2 > 227 * 1024) throw new Error(`delta-walk (bf16): C ${C}, K ${K}, cols ${G} needs ${halves * 2} bytes of shared memory (> 227 KiB)`);
  return { G, WC, P, xb, W, MT, NB, NT, LMK, LC, LK, LX, XH, SETH, halves };
}

export function deltaWalkBf16Kernel(c: DeltaWalkBf16Config): DeltaWalkBf16Kernel {
  const l = layout(c);
  return { ...c, op: "walk", math: "bf16", zout: c.zout ?? "bf16", split: 1, entry: deltaWalkBf16Entry(c), threads: l.NT, sharedBytes: l.halves * 2, warpCols: l.WC, stages: l.P };
}

/** What the bf16 walks put before their sources (guarded pieces): the bf16 mma, seqc_h2f, the bf16 pair packing. */
export const DELTA_WALK_BF16_PRELUDE = BF16_MMA + H2F + DELTA_WALK_ZOUT_PRELUDE;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The kernel's source (after delta-walk.ts's DELTA_WALK_PRELUDE and DELTA_WALK_BF16_PRELUDE). */
export function deltaWalkBf16Source(c: DeltaWalkBf16Config): string {
  const { C, K, V } = c, { G, WC, P, xb, W, MT, NB, NT, LMK, LC, LK, LX, XH, SETH } = layout(c);
  const XT = xb ? "unsigned short" : "float", EPC = xb ? 8 : 4; // X / BM elements a 16-byte copy
  const wr = WC > 1 ? "wr" : "w", cb = WC > 1 ? "cb + " : "";
  const zf = c.zout === "f32", OT = zf ? "float" : "unsigned short"; // ZS's and Y's element
  // ZS / Y's pair at p from two fp32 values: packed bf16 (one u32) or a float2
  const put2 = (p: string, lo: string, hi: string) => (zf ? `*(float2*)&${p} = make_float2(${lo}, ${hi});` : `*(u32*)&${p} = seqc_dz_pack(${lo}, ${hi});`);
  const colOf = (s: number) => `${cb}${8 * s}u + 2u * tg`;
  const chunkOf = (s: string) => `(reverse ? nC - 1 - ${s} : ${s})`;
  // a pair of X / BM at [row][col] of a set buffer as two floats
  const pairOf = (buf: string, row: string, col: string, lo: string, hi: string) => xb
    ? `{ const u32 v = *(const u32*)&${buf}[(${row}) * ${LX}u + ${col}]; ${lo} = __uint_as_float(v << 16); ${hi} = __uint_as_float(v & 0xffff0000u); }`
    : `{ const float2 v = *(const float2*)&${buf}[(${row}) * ${LX}u + ${col}]; ${lo} = v.x; ${hi} = v.y; }`;
  const set = (v: string) => `unsigned short* sM = sS + (${v}) * ${SETH}u; unsigned short* sN = sM + ${C * LMK}u; ${XT}* sX = (${XT}*)(sN + ${K * LC}u); ${XT}* sB = sX + ${C * LX}u;`;
  // a chunk's R rows of Wd elements (source row stride, column offset) into dst [R][ld] by 16-byte copies (e elements each)
  const copy = (dst: string, ld: number, src: string, R: number, Wd: number, e: number, stride: number, off: string, ind: string) =>
    `${ind}for (u32 x = t; x < ${(R * Wd) / e}u; x += ${NT}u) { const u32 r = x / ${Wd / e}u, q = ${e}u * (x % ${Wd / e}u); seqc_cp16(&${dst}[r * ${ld}u + q], ${src} + (size_t)r * ${stride}u${off} + q); }\n`;
  const copyAll = (ind: string, nv: string, sv: string) => `${ind}{
${ind}  ${set(sv)}
${ind}  const unsigned short* gM = Mh + ${nv} * ${C * K}u;
${ind}  const unsigned short* gN = Nh + ${nv} * ${K * C}u;
${ind}  const ${XT}* gX = Xs + ${nv} * ${C * V}u;
${ind}  const ${XT}* gB = Bs + ${nv} * ${K * V}u;
${copy("sM", LMK, "gM", C, K, 8, K, "", ind + "  ")}${copy("sN", LC, "gN", K, C, 8, C, "", ind + "  ")}${copy("sX", LX, "gX", C, G, EPC, V, " + j0", ind + "  ")}${copy("sB", LX, "gB", K, G, EPC, V, " + j0", ind + "  ")}${ind}}
`;
  // every (m, s, h) of Z's accumulators: row (K / C wr + m) 16 + g + 8 h, column cb + 8 s + 2 tg (+1)
  const zRow = (m: number, h: number) => `(${MT}u * ${wr} + ${m}u) * 16u + g + ${8 * h}u`;
  const zPairs = (code: (m: number, s: number, h: number) => string, ind: string) =>
    range(MT).flatMap((m) => range(NB).flatMap((s) => [0, 1].map((h) => `${ind}{ const u32 row = ${zRow(m, h)}, col = ${colOf(s)}; ${code(m, s, h)} }\n`))).join("");
  const zv = (m: number, s: number, h: number, e: number) => `z[${m}][${s}][${2 * h + e}]`;
  // Z's row decay: the chunk's A[n] or (perKey) the thread's row's A[n, row], loaded at the chunk's start into an[m][h]
  const aOf = (m: number, h: number) => (c.perKey ? `an[${m}][${h}]` : "an");
  const aLoad = c.perKey
    ? `    float an[${MT}][2];\n${range(MT).flatMap((m) => [0, 1].map((h) => `    an[${m}][${h}] = A[n * ${K}u + ${zRow(m, h)}];\n`)).join("")}`
    : "    const float an = A[n];\n";
  // Z^T's bf16 operand copy [cols][LK] from the accumulators (the pair's two columns)
  const zStage = (ind: string) => zPairs((m, s, h) => `const u32 p = seqc_dz_pack(${zv(m, s, h, 0)}, ${zv(m, s, h, 1)}); sZt[col * ${LK}u + row] = (unsigned short)(p & 0xffffu); sZt[(col + 1u) * ${LK}u + row] = (unsigned short)(p >> 16);`, ind);
  const fragA = (buf: string, ld: number, row: string, k: string, ind: string) =>
    `${ind}u32 fa[4];\n${ind}fa[0] = *(const u32*)&${buf}[(${row}) * ${ld}u + ${k} + 2u * tg]; fa[1] = *(const u32*)&${buf}[(${row} + 8u) * ${ld}u + ${k} + 2u * tg];\n${ind}fa[2] = *(const u32*)&${buf}[(${row}) * ${ld}u + ${k} + 2u * tg + 8u]; fa[3] = *(const u32*)&${buf}[(${row} + 8u) * ${ld}u + ${k} + 2u * tg + 8u];\n`;
  const fragB = (name: string, buf: string, ld: number, n: string, k: string, ind: string) =>
    `${ind}u32 ${name}[2]; ${name}[0] = *(const u32*)&${buf}[(${n}) * ${ld}u + ${k} + 2u * tg]; ${name}[1] = *(const u32*)&${buf}[(${n}) * ${ld}u + ${k} + 2u * tg + 8u];\n`;
  // phase 1: Yc = X + M Z on warp (wr, wc)'s rows 16 wr.. and its columns; Y out, Yc^T's bf16 copy
  const p1 = `    float y[${NB}][4];
${range(NB).flatMap((s) => [0, 1].map((h) => `    ${pairOf("sX", `16u * ${wr} + g + ${8 * h}u`, colOf(s), `y[${s}][${2 * h}]`, `y[${s}][${2 * h + 1}]`)}\n`)).join("")}#pragma unroll
    for (u32 k0 = 0; k0 < ${K}u; k0 += 16u) {
${fragA("sM", LMK, `16u * ${wr} + g`, "k0", "      ")}${range(NB).map((s) => `      {
${fragB("fb", "sZt", LK, `${cb}${8 * s}u + g`, "k0", "        ")}        seqc_dps_mma(y[${s}], fa, fb);
      }
`).join("")}    }
${range(NB).flatMap((s) => [0, 1].map((h) => `    { const u32 row = 16u * ${wr} + g + ${8 * h}u, col = ${colOf(s)}; const u32 p = seqc_dz_pack(y[${s}][${2 * h}], y[${s}][${2 * h + 1}]); ${zf ? `*(float2*)&Y[(n * ${C}u + row) * ${V}u + j0 + col] = make_float2(y[${s}][${2 * h}], y[${s}][${2 * h + 1}]);` : `*(u32*)&Y[(n * ${C}u + row) * ${V}u + j0 + col] = p;`} sYt[col * ${LC}u + row] = (unsigned short)(p & 0xffffu); sYt[(col + 1u) * ${LC}u + row] = (unsigned short)(p >> 16); }\n`)).join("")}`;
  // phase 2: Z = A Z + BM + NN^T Yc on warp (wr, wc)'s row blocks, in the accumulators; Z^T's bf16 copy
  const p2 = `${zPairs((m, s, h) => `float b0, b1; ${pairOf("sB", "row", "col", "b0", "b1")} ${zv(m, s, h, 0)} = fmaf(${aOf(m, h)}, ${zv(m, s, h, 0)}, b0); ${zv(m, s, h, 1)} = fmaf(${aOf(m, h)}, ${zv(m, s, h, 1)}, b1);`, "    ")}#pragma unroll
    for (u32 k0 = 0; k0 < ${C}u; k0 += 16u) {
${range(NB).map((s) => fragB(`fb${s}`, "sYt", LC, `${cb}${8 * s}u + g`, "k0", "      ")).join("")}${range(MT).map((m) => `      {
${fragA("sN", LC, `(${MT}u * ${wr} + ${m}u) * 16u + g`, "k0", "        ")}${range(NB).map((s) => `        seqc_dps_mma(z[${m}][${s}], fa, fb${s});\n`).join("")}      }
`).join("")}    }
${zStage("    ")}`;
  const prologue = range(P - 1).map((p) => `  if (${p} < nC) {  // chunk ${p}'s operands into set ${p}
    const size_t n0 = (size_t)bh * nC + ${chunkOf(`${p}`)};
${copyAll("    ", "n0", `${p}u`)}  }
  seqc_cp_commit();
`).join("");
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${deltaWalkBf16Entry(c)}(const float* __restrict__ M, const float* __restrict__ X, const float* __restrict__ BM, const float* __restrict__ NN, const float* __restrict__ A, const float* __restrict__ Z0, ${OT}* __restrict__ ZS, ${OT}* __restrict__ Y, float* __restrict__ ZF, int BH, int nC, int reverse) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  const unsigned short* Mh = (const unsigned short*)M;   // M [N][C][K] bf16
  const unsigned short* Nh = (const unsigned short*)NN;  // NN^T [N][K][C] bf16
  const ${XT}* Xs = (const ${XT}*)X;   // X [N][C][V]
  const ${XT}* Bs = (const ${XT}*)BM;  // BM [N][K][V]
  unsigned short* sS = (unsigned short*)seqc_smem_raw;  // ${P} sets of ${SETH} halves: M [C][${LMK}], NN^T [K][${LC}], X [C][${LX}], BM [K][${LX}] (${xb ? "bf16" : "float32"})
  unsigned short* sYt = sS + ${P * SETH};  // Yc^T [cols][${LC}] bf16
  unsigned short* sZt = sYt + ${G * LC};   // Z^T [cols][${LK}] bf16
  const u32 t = threadIdx.x, w = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u;
${WC > 1 ? `  const u32 wr = w % ${W}u, cb = (w / ${W}u) * ${8 * NB}u;  // the warp's row group, its column group's first column\n` : ""}  const int bh = blockIdx.x;
  if (bh >= BH) return;
  const u32 j0 = blockIdx.y * ${G}u;  // this block's value columns j0 .. j0 + ${G - 1}
  float z[${MT}][${NB}][4];
  if (Z0) {
${zPairs((m, s, h) => `const float2 v = *(const float2*)&Z0[((size_t)bh * ${K}u + row) * ${V}u + j0 + col]; ${zv(m, s, h, 0)} = v.x; ${zv(m, s, h, 1)} = v.y;`, "    ")}  } else {
#pragma unroll
    for (u32 m = 0; m < ${MT}u; ++m)
#pragma unroll
      for (u32 s = 0; s < ${NB}u; ++s)
#pragma unroll
        for (u32 e = 0; e < 4u; ++e) z[m][s][e] = 0.f;
  }
${zStage("  ")}${prologue}  for (int s = 0; s < nC; ++s) {
    const size_t n = (size_t)bh * nC + ${chunkOf("s")};
    seqc_cp_wait<${P - 2}>();  // chunk s's operands
    __syncthreads();    // ... every thread's copies; Z^T staged; chunk s - 1 done with its set and Yc^T
    if (s + ${P - 1} < nC) {  // chunk s + ${P - 1}'s operands into the set chunk s - 1 used
      const size_t nn = (size_t)bh * nC + ${chunkOf(`(s + ${P - 1})`)};
${copyAll("      ", "nn", `(u32)(s + ${P - 1}) % ${P}u`)}    }
    seqc_cp_commit();
    ${set(`(u32)s % ${P}u`)}
${aLoad}${zPairs((m, s, h) => put2(`ZS[(n * ${K}u + row) * ${V}u + j0 + col]`, zv(m, s, h, 0), zv(m, s, h, 1)), "    ")}    // phase 1: Yc = X + M Z
${p1}    __syncthreads();    // Yc^T; phase 1 done with Z^T
    // phase 2: Z = A Z + BM + NN^T Yc
${p2}  }
${zPairs((m, s, h) => `*(float2*)&ZF[((size_t)bh * ${K}u + row) * ${V}u + j0 + col] = make_float2(${zv(m, s, h, 0)}, ${zv(m, s, h, 1)});`, "  ")}}
`;
}

/** The bf16 walks of these configurations as one translation unit (delta-walk.ts's DELTA_WALK_PRELUDE first: u32,
 * SEQC_SMEM_DECL, cp.async); `patch` edits the source (the tests' broken copies). */
export function deltaWalkBf16Module(configs: readonly DeltaWalkBf16Config[] = DELTA_WALK_BF16_CONFIGS, patch?: (src: string) => string): { source: string; kernels: DeltaWalkBf16Kernel[] } {
  const source = DELTA_WALK_PRELUDE + DELTA_WALK_BF16_PRELUDE + configs.map(deltaWalkBf16Source).join("");
  return { source: patch ? patch(source) : source, kernels: configs.map(deltaWalkBf16Kernel) };
}
