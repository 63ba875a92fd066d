/**
 * The per-key delta adjoint's tensor-core twin (delta-adjoint-key.ts, RWKV-7: ld [B, T, H, K]; math "tf32", entry
 * seqc_delta_adj_key_c64k64v64_bf16_tf32): the same formulas and signature (see there and test/helpers/delta-ref.ts
 * `adjointPerKey`), every product by mma.sync m16n8k8 with TF32 operands (cvt.rna as a fragment is read) and fp32
 * accumulators. 16 warps (512 threads): warp wp owns rows 16 rb.. (rb = wp / 4) and columns 16 hq.. (hq = wp % 4; two
 * m16n8 tiles) of each [C, K] output (dv, dk, du, the side's dx), and the score block (rb, hq) of each [C, C] score
 * matrix: its 16 columns are one 16-slot block, so a warp's score tiles are all before, on or after the diagonal.
 *
 * The decay is factored through the 16-slot blocks beta (rows 16 beta..16 beta + 15). For a in a later block than f
 * (ba = beta(a) > bf = beta(f)), with Ga[a] = G[a - 1 + oq] (oq 1: the y side, 0: the r side) and r = 16 bf + 15 the last
 * slot of f's block:
 *
 *   exp(Ga[a,i] - G[f,i]) = X[a,i] Cp[ba,bf,i] Y[f,i],  X[a,i] = exp(Ga[a,i] - G[16 ba - 1,i]),
 *                           Cp[ba,bf,i] = exp(G[16 ba - 1,i] - G[r,i]),  Y[f,i] = exp(G[r,i] - G[f,i])
 *
 * each an exp of a difference <= 0 (the decays go down to -20 a step; a factor that underflows means the whole product
 * does). x is stored as x~ = x o X, k and u as k^ = k o Y, u^ = u o Y; the 6 block pairs' factors Cp (6 x K) are
 * computed once a chunk and multiply the B fragments' values as they are read (the key scores: Cp[rb, bf, key]; the
 * value sums into dx: Cp[rb, bf, i]; into dk / du: Cp[ba, rb, i]). The products' results then take the output row's own
 * factor: dx (its S0 term scaled by exp(G[16 rb - 1, i]) first) times X once after its off-diagonal products, dk / du's
 * off-diagonal sums (an 8-float temporary) times Y as they are added; the LE terms take eC[f,i] = exp(G[C-1,i] - G[f,i])
 * directly (k o eC stored; v LE^T, r LE^T scaled by eC elementwise).
 *
 * Inside the 4 diagonal 16 x 16 blocks the exps are taken directly per (a, f, i), from the raw inputs (global memory /
 * L2), in two SIMT passes a side: the key scores' diagonal blocks' entries below the diagonal (P[a,f] = sum_i x k
 * exp(..); 4 x 120 of them, one a thread, the y side's f = a entries x_a . k_a on the last 32 threads), and
 * one pass where thread (block, key) takes each exp(Ga[a,i] - G[f,i]) of its block and key once for the three products
 * that need it (dx += (A k + B u) o D, dk += (A^T x) o D, du += (B^T x) o D), the 512 threads in two groups of the
 * block's rows (0..3 and 12..15; 4..11: the same number of pairs), its sums written to shared memory (Dx, and Dk, Du a
 * group) and added to the fragments.
 *
 * A side runs in five barrier-separated steps over eleven [64][72] fp32 slots (stride 8 mod 32: conflict-free B and
 * transposed A fragment reads):
 *   loads: x~, g, S0^T, k^T, v^T, r^T, k^ and u^ rows |
 *   dx = g S0^T; P = x k^T (the earlier blocks by mma, the diagonal by the SIMT pass); A = g v^T, B = g r^T |
 *   dv += P^T g; dx += A k^ + B u^, dx *= X; dk / du += Y (A^T / B^T x~) |
 *   the diagonal pass into Dx, Dk, Du, Dk2, Du2 | dx, dk, du += them, dx stored.
 * The dld terms (q dq - u du - k dk, w dw) are formed at the end from the outputs this block stored (read back after a
 * barrier) into two slots, then summed over 8-row segments and suffix-summed, a (segment, key) a thread. Shared memory:
 * the slots, G [C + 1][K], the pairs' factors [6][K], aC [K]: 221,184 bytes. Every exp by __expf (ex2.approx of x log2(e): a relative error of about (|x| + 4) 2^-24 for
 * x in [-88, 0], far below TF32's 2^-11; the g++ emulation's __expf is expf). ptxas sm_90: 128 registers, no spills:
 * one block (16 warps) an SM (two blocks of 512 threads would need 64 registers a thread; at 256 threads and <= 128
 * registers the 64 accumulator floats a thread spilled).
 */
import { adjHead, adjTok } from "./delta-adjoint.ts";
import { adjKeyParts, type DeltaAdjKeyConfig, type KeySlot } from "./delta-adjoint-key.ts";
import { MMA_TF32_PRELUDE, tf32Ops } from "./lowrank-readout-mma.ts";
import { DELTA_ADJ_BF16_PRELUDE } from "./delta-adjoint-bf16.ts";

export interface DeltaAdjKeyMmaConfig extends DeltaAdjKeyConfig {
  /** "tf32": mma m16n8k8 TF32; "bf16": mma m16n8k16 bf16 over pairs of the TF32 code's k8 steps; "bf16f": the bf16 twin
   * with the diagonal 16-slot blocks by mma too (their decay factored through the block's start, where a chunk's decays
   * allow; keyTwinPieces' fd). */
  math: "tf32" | "bf16" | "bf16f";
}

export interface DeltaAdjKeyMmaKernel extends DeltaAdjKeyMmaConfig {
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** The per-key twin: C = K = V = 64, bf16 inputs. */
export const DELTA_ADJ_KEY_MMA_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32" }];

/** Its bf16 twin (math "bf16", entry seqc_delta_adj_key_c64k64v64_bf16_bf16): the same kernel with each pair of k8 steps
 * as one mma m16n8k16 (bf16 operands rounded to nearest even as the fragments are packed, fp32 accumulators): half the
 * mma instructions and one cvt a pair of values; shared memory, the diagonal SIMT passes and the exps as the TF32 twin's. */
export const DELTA_ADJ_KEY_BF16_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 64, V: 64, math: "bf16" }];

/** The factored twin (math "bf16f", entry seqc_delta_adj_key_c64k64v64_bf16_bf16f): the bf16 twin whose diagonal
 * 16 x 16 blocks are TF32 mma products as well (m16n8k8; the rest bf16 as the bf16 twin's), each pair (b, b) taking the factor Cp[b, b, i] = exp(G[16 b - 1, i] -
 * G[16 b + 15, i]) (>= 1) as the pairs ba > bf take theirs, so neither diagonal SIMT pass runs; chunks where a block's
 * decay of some key exceeds FACTOR_SPAN (exp of it would leave fp32's range in the products) take the bf16 twin's
 * diagonal passes instead (a flag a chunk). */
export const DELTA_ADJ_KEY_FAC_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 64, V: 64, math: "bf16f" }];

/** The largest decay of a key over a 16-slot block (G[16 b - 1] - G[16 b + 15]) with which the factored twins take the
 * diagonal blocks by mma: Cp[b, b] <= e^40 (about 2.4e17) and x~ >= |x| e^-40, far inside fp32's / bf16's range
 * (RWKV-7's log decays, >= -0.6065 a step, give at most 9.7). */
export const FACTOR_SPAN = 40;

export function deltaAdjKeyMmaEntry(c: DeltaAdjKeyMmaConfig): string {
  return `seqc_delta_adj_key_c${c.C}k${c.K}v${c.V}_${c.tin}_${c.math}`;
}

const W = 64, LDS = 72, NT = 512, NSLOT = 11, NPAIR = 6;

/** fac (math "bf16f"): the pairs' factors with the diagonal pairs (10: ba >= bf), then the chunk's flag (a u32, 4 floats). */
function layout(fac = false) {
  let off = 0;
  const slots: number[] = [];
  for (let i = 0; i < NSLOT; i++) { slots.push(off); off += W * LDS; }
  const sG = off; off += (W + 1) * W;
  const sCp = off; off += (fac ? NPAIR + 4 : NPAIR) * W;
  const sAC = off; off += W;
  const sFl = off; if (fac) off += 4;
  return { slots, sG, sCp, sAC, sFl, floats: off };
}

function check(c: DeltaAdjKeyMmaConfig): void {
  if (NT < (W / 16) * 120 + W / 2) throw new Error("delta-adjoint (key, tf32): the diagonal key scores take a thread an entry");
  if ((c.math !== "tf32" && c.math !== "bf16" && c.math !== "bf16f") || c.tin !== "bf16" || c.C !== 64 || c.K !== 64 || c.V !== 64)
    throw new Error(`delta-adjoint (key, ${c.math}): C = K = V = 64 and bf16 inputs only (8 warps over 16-row blocks; the diagonal pass a thread a block and key)`);
}

export function deltaAdjKeyMmaKernel(c: DeltaAdjKeyMmaConfig): DeltaAdjKeyMmaKernel {
  check(c);
  return { ...c, entry: deltaAdjKeyMmaEntry(c), threads: NT, sharedBytes: layout(c.math === "bf16f").floats * 4 };
}

const unroll = "#pragma unroll";

/** The per-key twins' fragment pieces (this file's K = 64 kernel; delta-adjoint-key-mma-k128.ts's key blocks), for 16 warps
 * (rows 16 rb.., columns 16 hq.. of a [C, 64] output; g, tg the lane's fragment indices) over [64][72] slots:
 *   tk(a, i): a key-width per-token element's index (key i of the block); KB: the keys in a block (the key scores' sum);
 *   V: the values (the value sums' sum); gk / cp: G and the block pairs' factors (delta-adjoint-key.ts adjKeyParts, cp
 *   below); keyB(Y, k): the key scores' B value of key k, column n0 + g (k^ stored transposed [i][f] or as rows [f][i]);
 *   plain: the value sums' A operand stride and B fragment from Y (stored [j][f] or as rows [f][j]); dot(xg, oq): the
 *   diagonal key scores' sum over the keys into s.
 * zero, each (a [C, 64] accumulator's elements), prodF (acc += X Y over 8-column steps; nt tiles of 8 columns from
 * 8 nt hq; Y [m][n] or yNK [n][m]), keyScores, diagKeyScores, plainScores, diagProducts, addFrom, store: see there.
 *   fd (the factored twins, math "bf16f"): the name of a chunk-uniform bool; where true keyScores forms the diagonal
 *   blocks' tiles by TF32 mma (m16n8k8) as well (cp(rb, rb, k) their factor, >= 1; the entries f >= a + oq zeroed), and
 *   the caller skips diagKeyScores and diagProducts and runs its own-block products by TF32 mma with the diagonal pair
 *   (prodF's tf32 option; bf16 there doubled the emulation's errors). */
export function keyTwinPieces(p: {
  tk: (a: string, i: string) => string; KB: number; V: number; gk: (row: string, i: string) => string; cp: (ba: string, bf: string, i: string) => string;
  keyB: (Y: string, k: string) => string; plain: { ldx: number; fb: (Y: string) => string; bv?: (Y: string, k: string) => string }; dot: (xg: string, oq: number) => string;
  bf16?: boolean; fd?: string;
}) {
  const C = 64;
  const { tk, KB, V, gk, cp, keyB, plain, dot } = p;
  const { frag, mma, fragA, fragAt } = tf32Ops(false);
  // bf16 (math "bf16"): each product's k-steps in pairs, one mma m16n8k16 (bf16 operands, fp32 accumulators) for the
  // two k8 steps k0, k0 + 8 of the TF32 code, its k slots 2tg, 2tg + 1, 2tg + 8, 2tg + 9 holding the k8 steps' values
  // at tg, tg + 4 (k0) and tg, tg + 4 (k0 + 8): A's and B's in the same order, so the sum is the same (any permutation of
  // k within the mma is); the operands are the TF32 code's fp32 values (shared memory, scales), rounded to bf16 as packed
  const bf = !!p.bf16;
  const pk = (lo: string, hi: string) => `seqc_dab_pack(${lo}, ${hi})`;
  // A of the two steps from the k8 steps' values [a0 (g, tg), a1 (g + 8, tg), a2 (g, tg + 4), a3 (g + 8, tg + 4)]
  const packA = (ind: string, name: string, s0: string[], s1: string[]) =>
    `${ind}u32 ${name}[4] = {${pk(s0[0], s0[2])}, ${pk(s0[1], s0[3])}, ${pk(s1[0], s1[2])}, ${pk(s1[1], s1[3])}};\n`;
  // A stored [row][k] by two ldmatrix of fp32 words (as tf32Ops' fragA), then packed
  const fragA16 = (ind: string, name: string, X: string, ld: number, r0: string, k0: string) => {
    const at = (dk: string) => `&${X}[(${r0} + (l & 7u) + ((l >> 3u) & 1u) * 8u) * ${ld}u + ${k0}${dk} + (l >> 4u) * 4u]`;
    const w = (v: string) => [0, 1, 2, 3].map((i) => `__uint_as_float(${name}${v}[${i}])`);
    return `${ind}u32 ${name}w[4], ${name}v[4];\n${ind}seqc_ldsm4(${name}w, ${at("")});\n${ind}seqc_ldsm4(${name}v, ${at(" + 8u")});\n${packA(ind, name, w("w"), w("v"))}`;
  };
  // A stored [k][row]
  const fragAt16 = (ind: string, name: string, X: string, ld: number, m0: string, k0: string) => {
    const v = (k: string) => [[0, 0], [8, 0], [0, 4], [8, 4]].map(([dm, dk]) => `${X}[(${k} + tg + ${dk}u) * ${ld}u + ${m0} + g + ${dm}u]`);
    return packA(ind, name, v(k0), v(`${k0} + 8u`));
  };
  // B from its values at k (the column n0 + g): k0 + tg, + 4, + 8, + 12
  const fragB16 = (ind: string, name: string, val: (k: string) => string, k0: string) =>
    `${ind}u32 ${name}[2] = {${pk(val(`${k0} + tg`), val(`${k0} + tg + 4u`))}, ${pk(val(`${k0} + tg + 8u`), val(`${k0} + tg + 12u`))}};\n`;
  const mma16 = (ind: string, acc: string, a: string, b: string) => `${ind}seqc_dab_mma(${acc}, ${a}, ${b});\n`;
  const row = (hh: string) => `(16u * rb + g + 8u * ${hh})`;
  const col = (j: string) => `(8u * (2u * hq + ${j}) + 2u * tg)`;
  const zero = (acc: string, decl = true, nt = 2) => `${decl ? `  float ${acc}[${nt}][4];\n` : ""}${unroll}
  for (u32 j = 0; j < ${nt}u; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;
`;
  // each fragment element (row a, column i) of acc: body(a, i, e) with e the element's index expression
  const each = (body: (a: string, i: string, e: string) => string) => `${unroll}
  for (u32 j = 0; j < 2u; ++j)
${unroll}
    for (u32 hh = 0; hh < 2u; ++hh)
${unroll}
      for (u32 e1 = 0; e1 < 2u; ++e1) {
        const u32 a = ${row("hh")}, i = ${col("j")} + e1;
        (void)a;
        ${body("a", "i", "[j][2u * hh + e1]")}
      }
`;
  // acc += X(rows 16 rb.., m) Y(m, columns) over m in [8 lo, 8 hi); X stored [row][m] or (xT) [m][row], Y [m][col];
  // each B value times s(n0) (n0 the tile's first column; the value's column n0 + g) where given
  const prodF = (acc: string, X: string, xT: boolean, Y: string, lo: string, hi: string, s?: string, o: { nt?: number; ldx?: number; ldy?: number; yNK?: boolean; tf32?: boolean; once?: boolean } = {}) => {
    const { nt = 2, ldx = LDS, ldy = LDS, yNK = false } = o;
    const yv = (dk: string) => (yNK ? `${Y}[(n0 + g) * ${ldy}u + 8u * ks + tg${dk}]` : `${Y}[(8u * ks + tg${dk}) * ${ldy}u + n0 + g]`);
    if (bf && !o.tf32) {
      const yk = (k: string) => { const v = yNK ? `${Y}[(n0 + g) * ${ldy}u + ${k}]` : `${Y}[(${k}) * ${ldy}u + n0 + g]`; return s ? `sc * ${v}` : v; };
      return `  for (u32 ks = ${lo}; ks < ${hi}; ks += 2u) {
${xT ? fragAt16("    ", "fa", X, ldx, "16u * rb", "8u * ks") : fragA16("    ", "fa", X, ldx, "16u * rb", "8u * ks")}${unroll}
    for (u32 j = 0; j < ${nt}u; ++j) {
      const u32 n0 = 8u * (${nt}u * hq + j);
${s ? `      const float sc = ${s};\n` : ""}${fragB16("      ", "fb", yk, "8u * ks")}${mma16("      ", `${acc}[j]`, "fa", "fb")}    }
  }
`;
    }
    return `${o.once ? `${unroll} 1
` : ""}  for (u32 ks = ${lo}; ks < ${hi}; ++ks) {
${xT ? fragAt("    ", "fa", X, ldx, "16u * rb", "8u * ks") : fragA("    ", "fa", X, ldx, "16u * rb", "8u * ks")}${unroll}
    for (u32 j = 0; j < ${nt}u; ++j) {
      const u32 n0 = 8u * (${nt}u * hq + j);
${s ? `      const float sc = ${s};\n${frag("      ", "fb", [`sc * ${yv("")}`, `sc * ${yv(" + 4u")}`])}` : frag("      ", "fb", [yv(""), yv(" + 4u")])}${mma("      ", `${acc}[j]`, "fa", "fb")}    }
  }
`;
  };
  // the key scores' tiles in earlier blocks than the row block (dst [a][f]; those in later blocks zero, the diagonal
  // block's entries f >= a + oq zero, the rest left to diagKeyScores): X = x~ rows, Yt = k^ transposed [i][f], each value times Cp[rb, bf, i]
  const keyScores = (dst: string, X: string, Y: string, oq: number) => `  {
${zero("sc").replace(/^/gm, "  ")}    for (u32 ks = 0; ks < ${KB / 8}u; ${bf ? "ks += 2u" : "++ks"}) {
${(bf ? fragA16 : fragA)("      ", "fa", X, LDS, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < 2u; ++j) {
        const u32 bf = hq, n0 = 8u * (2u * hq + j);
        if (bf < rb) {
${bf ? `${fragB16("          ", "fb", (k) => `${cp("rb", "bf", k)} * ${keyB(Y, k)}`, "8u * ks")}${mma16("          ", "sc[j]", "fa", "fb")}` : `${frag("          ", "fb", [`${cp("rb", "bf", "8u * ks + tg")} * ${keyB(Y, "8u * ks + tg")}`, `${cp("rb", "bf", "8u * ks + tg + 4u")} * ${keyB(Y, "8u * ks + tg + 4u")}`])}${mma("          ", "sc[j]", "fa", "fb")}`}        }
      }
    }
${p.fd ? `    if (${p.fd} && hq == rb)  // the diagonal block by TF32 mma (m16n8k8), each value times Cp[rb, rb, i]
      for (u32 ks = 0; ks < ${KB / 8}u; ++ks) {
${fragA("        ", "fa", X, LDS, "16u * rb", "8u * ks")}${unroll}
        for (u32 j = 0; j < 2u; ++j) {
          const u32 n0 = 8u * (2u * hq + j);
${frag("          ", "fb", [`${cp("rb", "rb", "8u * ks + tg")} * ${keyB(Y, "8u * ks + tg")}`, `${cp("rb", "rb", "8u * ks + tg + 4u")} * ${keyB(Y, "8u * ks + tg + 4u")}`])}${mma("          ", "sc[j]", "fa", "fb")}        }
      }
` : ""}${unroll}
    for (u32 j = 0; j < 2u; ++j)
${unroll}
      for (u32 hh = 0; hh < 2u; ++hh)
      {
        const u32 a = ${row("hh")}, f = ${col("j")};
        if (hq != rb) *(float2*)&${dst}[a * ${LDS}u + f] = make_float2(sc[j][2u * hh], sc[j][2u * hh + 1u]);
${p.fd ? `        else if (${p.fd}) *(float2*)&${dst}[a * ${LDS}u + f] = make_float2(f < a + ${oq}u ? sc[j][2u * hh] : 0.f, f + 1u < a + ${oq}u ? sc[j][2u * hh + 1u] : 0.f);
` : ""}        else {  // the diagonal block: zeros where f >= a + oq (diagKeyScores writes the rest)
          if (f >= a + ${oq}u) ${dst}[a * ${LDS}u + f] = 0.f;
          if (f + 1u >= a + ${oq}u) ${dst}[a * ${LDS}u + f + 1u] = 0.f;
        }
      }
  }
`;
  // the key scores' diagonal blocks' entries below the diagonal (4 x 120), one a thread: sum_i x_a,i k_f,i
  // exp(Ga[a,i] - G[f,i]) from the raw inputs; with oq 1 the diagonal (f = a: x_a . k_a, no decay), two a thread, on the
  // last 32 threads (the entries above, and with oq 0 the diagonal, are keyScores' zeros)
  const diagKeyScores = (dst: string, xg: string, oq: number) => `  if (t < ${(C / 16) * 120}u) {
    const u32 bd = t / 120u, k = t % 120u;
    u32 pa = (u32)((1.f + sqrtf(8.f * (float)k + 1.f)) * 0.5f);  // the row: pa (pa - 1) / 2 <= k < (pa + 1) pa / 2
    while (((pa * (pa - 1u)) >> 1u) > k) --pa;
    while ((((pa + 1u) * pa) >> 1u) <= k) ++pa;
    const u32 a = 16u * bd + pa, f = 16u * bd + k - ((pa * (pa - 1u)) >> 1u);
    float s = 0.f;
    if (a < nv) {
${dot(xg, oq)}    }
    ${dst}[a * ${LDS}u + f] = s;
  }${oq ? ` else if (t < ${(C / 16) * 120 + C / 2}u) {
    for (u32 a = 2u * (t - ${(C / 16) * 120}u); a < 2u * (t - ${(C / 16) * 120}u) + 2u; ++a) {
      float s = 0.f;
      if (a < nv) {
${unroll} 4
        for (u32 m0 = 0; m0 < ${KB}u; m0 += 4u) {
          const float4 x4 = seqc_dadj_in4(${xg}, ${tk("a", "m0")}), k4 = seqc_dadj_in4(KK, ${tk("a", "m0")});
          s = fmaf(x4.x, k4.x, fmaf(x4.y, k4.y, fmaf(x4.z, k4.z, fmaf(x4.w, k4.w, s))));
        }
      }
      ${dst}[a * ${LDS}u + a] = s;
    }
  }` : ""}
`;
  // dst [a][f] = g_a . y_f over the values (Y stored [j][f]), masked f < a + oq (no decay); tiles above the diagonal zero
  const plainScores = (dst: string, X: string, Y: string, oq: number) => `  {
${zero("sc").replace(/^/gm, "  ")}    for (u32 ks = 0; ks < ${V / 8}u; ${bf ? "ks += 2u" : "++ks"}) {
${(bf ? fragA16 : fragA)("      ", "fa", X, plain.ldx, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < 2u; ++j) {
        if (hq <= rb) {
${bf ? `${fragB16("          ", "fb", (k) => plain.bv!(Y, k), "8u * ks")}${mma16("          ", "sc[j]", "fa", "fb")}` : `${plain.fb(Y)}${mma("          ", "sc[j]", "fa", "fb")}`}        }
      }
    }
${unroll}
    for (u32 j = 0; j < 2u; ++j)
${unroll}
      for (u32 hh = 0; hh < 2u; ++hh) {
        const u32 a = ${row("hh")}, f = ${col("j")};
        *(float2*)&${dst}[a * ${LDS}u + f] = make_float2(f < a + ${oq}u ? sc[j][2u * hh] : 0.f, f + 1u < a + ${oq}u ? sc[j][2u * hh + 1u] : 0.f);
      }
  }
`;
  // the diagonal blocks of dx += (A k + B u) o D, dk += (A^T x) o D, du += (B^T x) o D: thread (block t / 64, key
  // t % 64), each exp once for the three; sums into Dx, Dk, Du [a][i]
  // (the threads in two groups of 256, thread (block, key) in each: group 0 the block's rows a = 0..3 and 12..15, group 1
  // rows 4..11 (60 + 8 oq pairs each); a loop over f (16 / 12), the 8 rows unrolled in it, masked f < a + oq; group 0's
  // dk / du sums into Dk, Du, group 1's into Dk2, Du2)
  const diagProducts = (As: string, Bs: string, xg: string, oq: number, Dx: string, Dk: string, Du: string, Dk2: string, Du2: string) => {
    const group = (gp: number) => {
      const ro = (q: string) => (gp ? `(${q} + 4u)` : `(${q} < 4u ? ${q} : ${q} + 8u)`);
      return `    float xr[8], ex[8];
${unroll}
    for (u32 q = 0; q < 8u; ++q) {
      const u32 a = 16u * bd + ${ro("q")};
      xr[q] = a < nv ? seqc_dadj_in(${xg}, ${tk("a", "i")}) : 0.f;
      ex[q] = 0.f;
    }
#pragma unroll 1
    for (u32 pf = 0; pf < ${gp ? 12 : 16}u; ++pf) {
      const u32 f = 16u * bd + pf;
      const float kf = f < nv ? seqc_dadj_in(KK, ${tk("f", "i")}) : 0.f, uf = f < nv ? seqc_dadj_in(U, ${tk("f", "i")}) : 0.f, gf = ${gk("f + 1u", "i")};
      float ek = 0.f, eu = 0.f;
${unroll}
      for (u32 q = 0; q < 8u; ++q) {
        if (pf < ${ro("q")} + ${oq}u) {
          const u32 a = 16u * bd + ${ro("q")};
          const float e = __expf(${gk(`a + ${oq}u`, "i")} - gf);
          const float sa = ${As}[a * ${LDS}u + f], sb = ${Bs}[a * ${LDS}u + f];
          ex[q] = fmaf(fmaf(sa, kf, sb * uf), e, ex[q]);
          ek = fmaf(sa * xr[q], e, ek);
          eu = fmaf(sb * xr[q], e, eu);
        }
      }
      ${gp ? Dk2 : Dk}[f * ${LDS}u + i] = ek; ${gp ? Du2 : Du}[f * ${LDS}u + i] = eu;
    }
${gp ? `${unroll}
    for (u32 pf = 12u; pf < 16u; ++pf) { ${Dk2}[(16u * bd + pf) * ${LDS}u + i] = 0.f; ${Du2}[(16u * bd + pf) * ${LDS}u + i] = 0.f; }
` : ""}${unroll}
    for (u32 q = 0; q < 8u; ++q) ${Dx}[(16u * bd + ${ro("q")}) * ${LDS}u + i] = ex[q];
`;
    };
    return `  {
    const u32 bd = (t >> 6u) & 3u, i = t & 63u;
    if (t < 256u) {
${group(0).replace(/^/gm, "  ")}    } else {
${group(1).replace(/^/gm, "  ")}    }
  }
`;
  };
  const addFrom = (acc: string, src: string) => `${unroll}
  for (u32 j = 0; j < 2u; ++j)
${unroll}
    for (u32 hh = 0; hh < 2u; ++hh) {
      const float2 v = *(const float2*)&${src}[${row("hh")} * ${LDS}u + ${col("j")}];
      ${acc}[j][2u * hh] += v.x; ${acc}[j][2u * hh + 1u] += v.y;
    }
`;
  const store = (acc: string, dst: string) => `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = ${row("hh")};
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 2u; ++j) *(float2*)&${dst}[${tk("a", col("j"))}] = make_float2(${acc}[j][2u * hh], ${acc}[j][2u * hh + 1u]);
    }
  }
`;
  return { row, col, zero, each, prodF, keyScores, diagKeyScores, plainScores, diagProducts, addFrom, store };
}

/** The factored twins' pair factors (K keys a block): the bf16 twin's 6 pairs ba > bf, then the diagonal pairs (b, b) at
 * 6 + b (cp(b, b, i) with the same row and column block names). */
export const facCp = (K: number) => (ba: string, bf: string, i: string) =>
  ba === bf ? `sCp[(6u + (${ba})) * ${K}u + (${i})]` : `sCp[((((${ba}) * ((${ba}) - 1u)) >> 1u) + (${bf})) * ${K}u + (${i})]`;

/** The factored twins' pair factors: the 6 pairs ba > bf, exp(G[16 ba - 1, i] - G[16 bf + 15, i]), then the diagonal pairs'
 * exp(G[16 b - 1, i] - G[16 b + 15, i]) >= 1 (capped at e^80: a chunk over FACTOR_SPAN does not use them), and the
 * chunk's flag (sFl, zeroed before G's barriers) set where some block's decay of a key exceeds FACTOR_SPAN; read after the
 * next barrier. */
export function facPairs(K: number, NT: number, gk: (row: string, i: string) => string): string {
  return `  // the factors between blocks ba > bf: exp(G[16 ba - 1, i] - G[16 bf + 15, i]) (pairs in order of ba, then bf)
  for (u32 x = t; x < ${NPAIR * K}u; x += ${NT}u) {
    const u32 pr = x / ${K}u, i = x % ${K}u, ba = pr < 1u ? 1u : pr < 3u ? 2u : 3u, bf = pr - ((ba * (ba - 1u)) >> 1u);
    sCp[x] = __expf(${gk("16u * ba", "i")} - ${gk("16u * bf + 16u", "i")});
  }
  // the diagonal pairs' factors, exp(G[16 b - 1, i] - G[16 b + 15, i]) (the block's decay of key i), and the flag
  for (u32 x = t; x < ${4 * K}u; x += ${NT}u) {
    const u32 b = x / ${K}u, i = x % ${K}u;
    const float d = ${gk("16u * b", "i")} - ${gk("16u * b + 16u", "i")};
    sCp[${NPAIR * K}u + x] = __expf(fminf(d, 80.f));
    if (d > ${FACTOR_SPAN}.f) sFl[0] = 1u;
  }
`;
}

/** The factored twins' chunk flag as dgo (the diagonal blocks by mma) and dd (their k16 steps: 2 or 0). */
export const facFlag = `  const bool dgo = sFl[0] == 0u;  // no block's decay of a key over ${FACTOR_SPAN}: the diagonal blocks by mma
  const u32 dd = dgo ? 2u : 0u;
`;

export function deltaAdjKeyMmaSource(c: DeltaAdjKeyMmaConfig): string {
  check(c);
  const C = 64, K = 64, V = 64;
  const fac = c.math === "bf16f";
  const L = layout(fac);
  const { fragBkn } = tf32Ops(false);
  const tok = adjTok, bf16 = c.math === "bf16" || fac;
  const S = (i: number) => `sS${i}`;
  const parts = adjKeyParts(c, NT, 16, "__expf");
  const { gk, exX, exY, exC, diagDot, prefixG } = parts;
  // the factor between 16-slot blocks ba > bf, exp(G[16 ba - 1, i] - G[16 bf + 15, i]) (fac: ba >= bf, the pairs ba = bf too)
  const cp = fac ? facCp(K) : (ba: string, bf: string, i: string) => `sCp[((((${ba}) * ((${ba}) - 1u)) >> 1u) + (${bf})) * ${K}u + (${i})]`;
  // the loads into a slot (rows or transposed), each value times exp(ex(a, i)) where given
  const slot = (d: string): KeySlot => ({ p: d, ld: LDS });
  const load = (dst: string, src: string, w: number, kind: "tok" | "chunk", T_: boolean, ex?: (a: string, i: string) => string) => parts.load(slot(dst), src, w, kind, T_, ex);
  const loadKV = (dst: string, src: string, T_: boolean) => parts.loadKV(slot(dst), src, T_);
  const { row, zero, each, prodF, keyScores, diagKeyScores, plainScores, diagProducts, addFrom, store } = keyTwinPieces({
    tk: (a, i) => tok(a, i, K), KB: K, V, gk, cp, keyB: (Y, k) => `${Y}[(${k}) * ${LDS}u + n0 + g]`,
    plain: { ldx: LDS, fb: (Y) => fragBkn("          ", "fb", Y, LDS, "8u * (2u * hq + j)", "8u * ks"), bv: (Y, k) => `${Y}[(${k}) * ${LDS}u + 8u * (2u * hq + j) + g]` },
    dot: (xg, oq) => diagDot(xg, "KK", oq), bf16, ...(fac ? { fd: "dgo" } : {}),
  });
  const side = (y: boolean) => {
    const oq = y ? 1 : 0, x = y ? "Q" : "W";
    const gl = y ? load(S(1), "DY", V, "tok", false) : load(S(1), "DR", V, "chunk", false);
    const cpA = cp("rb", "ks >> 1u", "n0 + g"), cpT = cp("ks >> 1u", "rb", "n0 + g");
    // fac: the own (diagonal) block's products by TF32 mma where dgo (dd = its 2 k8 steps, else 0), beside the bf16 ones
    const cpD = cp("rb", "rb", "n0 + g");
    const dxD = (acc: string, X: string, Y: string) => (fac ? prodF(acc, X, false, Y, "2u * rb", "2u * rb + dd", cpD, { tf32: true }) : "");
    const tpD = (X: string) => (fac ? prodF("tp", X, true, S(0), "2u * rb + 2u - dd", "2u * rb + 2u", cpD, { tf32: true }).replace(/^/gm, "  ") : "");
    const dks = diagKeyScores(S(4), x, oq), dps = `  __syncthreads();
  // the diagonal blocks (A, B in their slots) into Dx, Dk, Du (x2)
${diagProducts(S(9), S(10), x, oq, S(1), S(2), S(3), S(5), S(6))}  __syncthreads();
${addFrom("dx", S(1))}${addFrom("dk", S(2))}${addFrom("du", S(3))}${addFrom("dk", S(5))}${addFrom("du", S(6))}`;
    const ind = (x: string) => x.replace(/^(?=.)/gm, "  ");
    return `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----
${load(S(0), x, K, "tok", false, exX(oq))}${gl}${loadKV(S(2), "S0", true)}${load(S(3), "KK", K, "tok", true, exY)}${load(S(5), "VV", V, "tok", true)}${load(S(6), "R", V, "chunk", true)}${load(S(7), "KK", K, "tok", false, exY)}${load(S(8), "U", K, "tok", false, exY)}  __syncthreads();
  // dx = (g S0^T) exp(G[16 rb - 1]) (times X below); P = x k^T decayed (the earlier blocks' tiles, the diagonal blocks);
  // A = g v^T, B = g r^T (masked)
${zero("dx", false)}${prodF("dx", S(1), false, S(2), "0u", `${V / 8}u`)}${each((a, i, e) => `dx${e} *= __expf(${gk("16u * rb", i)});`)}${keyScores(S(4), S(0), S(3), oq)}${fac ? `  if (!dgo) {
${ind(dks)}  }
` : dks}${plainScores(S(9), S(1), S(5), oq)}${plainScores(S(10), S(1), S(6), oq)}  __syncthreads();
  // dv += P^T g; the earlier blocks: dx += (A k^ + B u^) Cp[rb, bf], then dx *= X; the later blocks: dk += Y (A^T x~ Cp[ba, rb]), du += Y (B^T x~ Cp[ba, rb])
${prodF("dv", S(4), true, S(1), "2u * rb", `${C / 8}u`)}${prodF("dx", S(9), false, S(7), "0u", "2u * rb", cpA)}${dxD("dx", S(9), S(7))}${prodF("dx", S(10), false, S(8), "0u", "2u * rb", cpA)}${dxD("dx", S(10), S(8))}${each((a, i, e) => `dx${e} *= __expf(${gk(`${a} + ${oq}u`, i)} - ${gk("16u * rb", i)});`)}  {
${zero("tp").replace(/^/gm, "  ")}${prodF("tp", S(9), true, S(0), "2u * rb + 2u", `${C / 8}u`, cpT).replace(/^/gm, "  ")}${tpD(S(9))}${each((a, i, e) => `dk${e} = fmaf(tp${e}, __expf(${exY(a, i)}), dk${e});`).replace(/^/gm, "  ")}${zero("tp", false).replace(/^/gm, "  ")}${tpD(S(10))}${prodF("tp", S(10), true, S(0), "2u * rb + 2u", `${C / 8}u`, cpT).replace(/^/gm, "  ")}${each((a, i, e) => `du${e} = fmaf(tp${e}, __expf(${exY(a, i)}), du${e});`).replace(/^/gm, "  ")}  }
${fac ? `  if (!dgo) {
${ind(dps)}  }
` : dps}${store("dx", y ? "dQ" : "dW")}  __syncthreads();
`;
  };
  const slots = L.slots.map((o, i) => `  float* ${S(i)} = (float*)seqc_smem_raw + ${o};\n`).join("");
  return `
${MMA_TF32_PRELUDE}${bf16 ? DELTA_ADJ_BF16_PRELUDE : ""}${adjHead(deltaAdjKeyMmaEntry(c), "unsigned short", NT, 1, C)}  const u32 wp = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u, rb = wp >> 2u, hq = wp & 3u;  // rows 16 rb.., columns 16 hq.. (two 8-column tiles) of each output
${slots}  float* sG = (float*)seqc_smem_raw + ${L.sG};    // [C + 1][K]: row a + 1 = G[a], row 0 = 0
  float* sCp = (float*)seqc_smem_raw + ${L.sCp};  // [6][K] the factors between 16-slot blocks
  float* sAC = (float*)seqc_smem_raw + ${L.sAC};  // [K] aC
${fac ? `  u32* sFl = (u32*)((float*)seqc_smem_raw + ${L.sFl});  // the chunk's flag: some block's decay of a key over FACTOR_SPAN
  if (t == 0u) sFl[0] = 0u;
` : ""}${prefixG}${fac ? facPairs(K, NT, gk) : `  // the factors between blocks ba > bf: exp(G[16 ba - 1, i] - G[16 bf + 15, i]) (pairs in order of ba, then bf)
  for (u32 x = t; x < ${NPAIR * K}u; x += ${NT}u) {
    const u32 pr = x / ${K}u, i = x % ${K}u, ba = pr < 1u ? 1u : pr < 3u ? 2u : 3u, bf = pr - ((ba * (ba - 1u)) >> 1u);
    sCp[x] = __expf(${gk("16u * ba", "i")} - ${gk("16u * bf + 16u", "i")});
  }`}
  // ---- LE: dv = (k o eC) LE, dk = (v LE^T) o eC, du = (r LE^T) o eC; aC ----
${load(S(0), "KK", K, "tok", false, exC)}${loadKV(S(1), "LE", false)}${load(S(2), "VV", V, "tok", false)}${load(S(3), "R", V, "chunk", false)}${loadKV(S(4), "LE", true)}  __syncthreads();
${fac ? facFlag : ""}${zero("dv")}${zero("dk")}${zero("du")}  float dx[4][4];
${prodF("dv", S(0), false, S(1), "0u", `${K / 8}u`)}${prodF("dk", S(2), false, S(4), "0u", `${V / 8}u`)}${prodF("du", S(3), false, S(4), "0u", `${V / 8}u`)}${each((a, i, e) => `{ const float ec = __expf(${exC(a, i)}); dk${e} *= ec; du${e} *= ec; }`)}  __syncthreads();
  {
    // aC's partials: 4 columns of a row of LE (its slot) . S_C a step (S_C read coalesced), into sF [K][V / 4] (k eC's slot)
    float* sF = ${S(0)};
    const float* SC = cix + 1u < nC ? S0 + (size_t)(n + 1u) * ${K * V}u : SF + (size_t)bh * ${K * V}u;
${unroll} 2
    for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) {
      const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u;
      const float4 sc = __ldg((const float4*)(SC + i * ${V}u + 4u * j4)), le = *(const float4*)&${S(1)}[i * ${LDS}u + 4u * j4];
      sF[x] = fmaf(le.w, sc.w, fmaf(le.z, sc.z, fmaf(le.y, sc.y, le.x * sc.x)));
    }
  }
  __syncthreads();
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    float s = 0.f;
    for (u32 j4 = 0; j4 < ${V / 4}u; ++j4) s += ${S(0)}[i * ${V / 4}u + j4];
    sAC[i] = s;  // (read after the sides' barriers)
  }
  __syncthreads();
${side(true)}${side(false)}${store("dk", "dK")}${store("du", "dU")}${store("dv", "dV")}  __syncthreads();
  // the dld terms from the stored outputs (this block's writes, after the barrier): q dq - u du - k dk and w dw [C][K]
  float* sF = ${S(0)};  // [2][C][K]: slot 0 and most of slot 1 (contiguous)
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) {
    const u32 a = x / ${K}u, i = x % ${K}u;
    float tm = 0.f, wd = 0.f;
    if (a < nv) {
      const size_t o = ${tok("a", "i", K)};
      wd = seqc_dadj_in(W, o) * dW[o];
      tm = seqc_dadj_in(Q, o) * dQ[o] - seqc_dadj_in(U, o) * dU[o] - seqc_dadj_in(KK, o) * dK[o];
    }
    sF[x] = tm; sF[${C * K}u + x] = wd;
  }
  __syncthreads();
  // dld_a = aC + sum_{s > a} (terms + w dw)_s + terms_a: thread (segment t / K of ${C / (NT / K)} rows, key t % K); the
  // segments' sums first (into slot 2), then each segment's suffix from the later segments' sums
  {
    const u32 i = t % ${K}u, sg = t / ${K}u;
    float* sSeg = ${S(2)};  // [${NT / K}][K]
    float z = 0.f;
    for (u32 a = ${C / (NT / K)}u * sg; a < ${C / (NT / K)}u * sg + ${C / (NT / K)}u; ++a) z += sF[a * ${K}u + i] + sF[${C * K}u + a * ${K}u + i];
    sSeg[sg * ${K}u + i] = z;
    __syncthreads();
    float s = sAC[i];
    for (u32 q = sg + 1u; q < ${NT / K}u; ++q) s += sSeg[q * ${K}u + i];
    for (u32 a = ${C / (NT / K)}u * sg + ${C / (NT / K)}u; a-- > ${C / (NT / K)}u * sg;) {
      const float tm = sF[a * ${K}u + i];
      if (a < nv) dLD[${tok("a", "i", K)}] = s + tm;
      s += tm + sF[${C * K}u + a * ${K}u + i];
    }
  }
}
`;
}
