/**
 * The per-key delta adjoint's TF32 twin at K = V = 128 (RWKV-7 at the issue's K = 128 shapes; entry
 * seqc_delta_adj_key_c64k128v128_bf16_tf32, math "tf32", bf16 inputs, kernel 4's signature with LD and dLD [B, T, H, K]):
 * the formulas of delta-adjoint-key.ts (test/helpers/delta-ref.ts `adjointPerKey`) and the decay factoring of
 * delta-adjoint-key-mma.ts (16-slot blocks: x~ = x o X, k^ = k o Y, u^ = u o Y, the 6 block pairs' factors Cp), over
 * the keys in two blocks of 64 (kb = 0, 64): every [C, K] output (dq, dw, dk, du, dld) of a key block depends on the
 * keys of that block only, and the two sums over the keys (the key scores P and dv's LE term) are linear in them, so
 * dv (registers, all 128 columns) takes each key block's share in turn. The value sums A = g v^T, B = g r^T (masked,
 * no decay) do not depend on the keys: they are formed once a chunk for both sides and stay in shared memory.
 *
 * 16 warps (512 threads): warp wp owns rows 16 rb.. (rb = wp / 4) and columns 16 hq.. (hq = wp % 4) of each key block's
 * [C, 64] outputs, columns 32 hq.. of dv [C, 128], and the score block (rb, hq). Steps (barrier-separated):
 *   the value sums: v, r, dy rows | A_y, B_y | DR rows | A_r, B_r;
 *   a key block: its G (a key's prefix a thread) and Cp | the LE loads (k o eC, LE's rows of the block, v, r) |
 *     dv += (k o eC) LE, dk = (v LE^T) o eC, du = (r LE^T) o eC | aC's partials | aC;
 *   a side of it (y: x = q, g = dy, f <= a; r: x = w, g = DR, f < a): x~, g, S0's rows of the block, k^ |
 *     dx = (g S0^T) exp(G[16 rb - 1]), P = x~ k^T (earlier blocks by mma, the diagonal blocks from the raw inputs) |
 *     u^ (into S0's place) | dv += P^T g, dx += A k^ + B u^ (earlier blocks, Cp), dx *= X, dk / du += Y (A^T / B^T x~) |
 *     the diagonal pass (delta-adjoint-key-mma.ts: thread (block, key), each exp once for the three products) |
 *     the adds, dx stored;
 *   then dk, du stored and the block's dld from the stored outputs (a (segment, key) a thread, suffix sums).
 * Operands [C, 128] are rows of stride 136 (8 mod 32, as the [C, 64] slots' 72), read as B fragments either way (k n or
 * n k), so nothing is stored transposed. Shared memory: A_y, B_y, A_r, B_r [64][72], x~ [64][72], g [64][136],
 * S0 [64][136], k^ [64][72], P [64][72], G [65][64], Cp [6][64], aC [64]: 217,088 bytes, one block an SM. Every exp
 * by __expf (see delta-adjoint-key-mma.ts).
 */
import { adjHead, adjTok } from "./delta-adjoint.ts";
import type { DeltaAdjKeyMmaConfig, DeltaAdjKeyMmaKernel } from "./delta-adjoint-key-mma.ts";
import { MMA_TF32_PRELUDE, tf32Ops } from "./lowrank-readout-mma.ts";

/** The K = 128 per-key twin: C = 64, K = V = 128, bf16 inputs. */
export const DELTA_ADJ_KEY_K128_MMA_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 128, V: 128, math: "tf32" }];

const C = 64, K = 128, V = 128, KB = 64, LDS = 72, LDV = 136, NT = 512, NPAIR = 6, US = C * LDS, UV = C * LDV, GK2 = (C + 1) * K;

function layout() {
  const sAB = 0;                   // A_y, B_y, A_r, B_r [64][72]
  const sX = sAB + 4 * US;         // x~ [64][72]   (sX.. sP: the phases' work region, 31,232 floats)
  const sGv = sX + US;             // g [64][136]
  const sS0 = sGv + UV;            // S0's rows of the key block [64][136]; u^ [64][72]
  const sKh = sS0 + UV;            // k^ [64][72]
  const sP = sKh + US;             // P [64][72]
  const sG = sP + US;              // [C + 1][KB]
  const sCp = sG + (C + 1) * KB;   // [6][KB]
  const sAC = sCp + NPAIR * KB;    // [KB]
  return { sAB, sX, sGv, sS0, sKh, sP, sG, sCp, sAC, work: sG - sX, floats: sAC + KB };
}

function check(c: DeltaAdjKeyMmaConfig): void {
  if (c.math !== "tf32" || c.tin !== "bf16" || c.C !== C || c.K !== K || c.V !== V)
    throw new Error(`delta-adjoint (key, ${c.math}, K = 128): C = 64, K = V = 128 and bf16 inputs only`);
}

export function deltaAdjKeyMmaK128Entry(c: DeltaAdjKeyMmaConfig): string {
  return `seqc_delta_adj_key_c${c.C}k${c.K}v${c.V}_${c.tin}_${c.math}`;
}

export function deltaAdjKeyMmaK128Kernel(c: DeltaAdjKeyMmaConfig): DeltaAdjKeyMmaKernel {
  check(c);
  return { ...c, entry: deltaAdjKeyMmaK128Entry(c), threads: NT, sharedBytes: layout().floats * 4 };
}

const unroll = "#pragma unroll";

/** threadIdx.x read so that the compiler can neither hoist nor share what is computed from it (on the card a volatile
 * read of %tid.x): a load's addresses are computed where it runs, not kept in registers across the key blocks. */
const TID_OPAQUE = `#ifndef SEQC_TID_OPAQUE
#define SEQC_TID_OPAQUE 1
#ifndef SEQC_EMU
__device__ __forceinline__ unsigned seqc_tid_opaque() { unsigned r; asm volatile("mov.u32 %0, %%tid.x;" : "=r"(r)); return r; }
#else
__device__ __forceinline__ unsigned seqc_tid_opaque() { return threadIdx.x; }
#endif
#endif
`;

export function deltaAdjKeyMmaK128Source(c: DeltaAdjKeyMmaConfig): string {
  check(c);
  const L = layout();
  if (2 * C * KB + (NT / KB) * KB > L.work || US + 3 * UV > L.work) throw new Error("delta-adjoint (key, K = 128): the work region is too small");
  const { frag, mma, fragA, fragAt } = tf32Ops(false);
  // a key-block element of a [.., K] per-token tensor, a [.., V] one, a [N, C, V] chunk tensor, S0 / LE's row kb + i
  const tokK = (a: string, i: string) => adjTok(a, `kb + ${i}`, K);
  const tokV = (a: string, j: string) => adjTok(a, j, V);
  const chk = (a: string, j: string) => `((size_t)n * ${C}u + ${a}) * ${V}u + ${j}`;
  const kvRow = (i: string, j: string) => `(size_t)n * ${K * V}u + (kb + ${i}) * ${V}u + ${j}`;
  const gk = (row: string, i: string) => `sG[(${row}) * ${KB}u + (${i})]`;
  const exX = (oq: number) => (a: string, i: string) => `${gk(`${a} + ${oq}u`, i)} - ${gk(`${a} & ~15u`, i)}`;
  const exY = (f: string, i: string) => `${gk(`(${f} | 15u) + 1u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const exC = (f: string, i: string) => `${gk(`${C}u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const cp = (ba: string, bf: string, i: string) => `sCp[((((${ba}) * ((${ba}) - 1u)) >> 1u) + (${bf})) * ${KB}u + (${i})]`;
  const at = (off: number) => `((float*)seqc_smem_raw + ${off})`;
  // rows [64][w] into dst (stride ld) from src at idx(a, column) (a float4), masked a < nv where `masked`, each value
  // times exp(ex(a, column)) where given
  const load = (dst: string, ld: number, w: number, src: string, idx: (a: string, j: string) => string, masked: boolean, ex?: (a: string, i: string) => string) => {
    const sc = ex ? ` v.x *= __expf(${ex("a", "4u * i4")}); v.y *= __expf(${ex("a", "4u * i4 + 1u")}); v.z *= __expf(${ex("a", "4u * i4 + 2u")}); v.w *= __expf(${ex("a", "4u * i4 + 3u")});` : "";
    const get = `seqc_dadj_in4(${src}, ${idx("a", "4u * i4")})`;
    return `${unroll} 2\n  for (u32 x = seqc_tid_opaque(); x < ${(C * w) / 4}u; x += ${NT}u) { const u32 a = x / ${w / 4}u, i4 = x % ${w / 4}u; float4 v = ${masked ? `a < nv ? ${get} : make_float4(0.f, 0.f, 0.f, 0.f)` : get};${sc} *(float4*)&${dst}[a * ${ld}u + 4u * i4] = v; }\n`;
  };
  const zero = (acc: string, nt: number, decl = true) => `${decl ? `  float ${acc}[${nt}][4];\n` : ""}${unroll}
  for (u32 j = 0; j < ${nt}u; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;
`;
  const row = (hh: string) => `(16u * rb + g + 8u * ${hh})`;
  const col = (j: string) => `(8u * (2u * hq + ${j}) + 2u * tg)`;
  // each fragment element (row a, column i) of a key block's [C, 64] accumulator: body(a, i, e)
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
  // acc[j] (nt tiles of 8 columns from 8 nt hq) += X(rows 16 rb.., m) Y(m, n) over m in [8 lo, 8 hi): X [row][m] or
  // (xT) [m][row], stride ldx; Y [m][n] or (yNK) [n][m], stride ldy; each B value times s (of n0 + g) where given
  const prodF = (acc: string, nt: number, X: string, ldx: number, xT: boolean, Y: string, ldy: number, yNK: boolean, lo: string, hi: string, s?: string) => {
    const yv = (dk: number) => (yNK ? `${Y}[(n0 + g) * ${ldy}u + 8u * ks + tg${dk ? " + 4u" : ""}]` : `${Y}[(8u * ks + tg${dk ? " + 4u" : ""}) * ${ldy}u + n0 + g]`);
    return `  for (u32 ks = ${lo}; ks < ${hi}; ++ks) {
${xT ? fragAt("    ", "fa", X, ldx, "16u * rb", "8u * ks") : fragA("    ", "fa", X, ldx, "16u * rb", "8u * ks")}${unroll}
    for (u32 j = 0; j < ${nt}u; ++j) {
      const u32 n0 = 8u * (${nt}u * hq + j);
${s ? `      const float sc = ${s};\n${frag("      ", "fb", [`sc * ${yv(0)}`, `sc * ${yv(1)}`])}` : frag("      ", "fb", [yv(0), yv(1)])}${mma("      ", `${acc}[j]`, "fa", "fb")}    }
  }
`;
  };
  // dst [a][f] = g_a . y_f over the values (Y rows [f][j], stride LDV), masked f < a + oq (no decay); tiles above the diagonal zero
  const plainScores = (dst: string, X: string, Y: string, oq: number) => `  {
${zero("sc", 2).replace(/^/gm, "  ")}    for (u32 ks = 0; ks < ${V / 8}u; ++ks) {
${fragA("      ", "fa", X, LDV, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < 2u; ++j) {
        const u32 n0 = 8u * (2u * hq + j);
        if (hq <= rb) {
${frag("          ", "fb", [`${Y}[(n0 + g) * ${LDV}u + 8u * ks + tg]`, `${Y}[(n0 + g) * ${LDV}u + 8u * ks + tg + 4u]`])}${mma("          ", "sc[j]", "fa", "fb")}        }
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
  // the key block's share of the key scores in earlier blocks than the row block (dst [a][f]; later blocks zero, the
  // diagonal block's entries f >= a + oq zero, the rest left to diagKeyScores): X = x~ rows, Y = k^ rows [f][i], each
  // value times Cp[rb, bf, i]
  const keyScores = (dst: string, X: string, Y: string, oq: number) => `  {
${zero("sc", 2).replace(/^/gm, "  ")}    for (u32 ks = 0; ks < ${KB / 8}u; ++ks) {
${fragA("      ", "fa", X, LDS, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < 2u; ++j) {
        const u32 bf = hq, n0 = 8u * (2u * hq + j);
        if (bf < rb) {
${frag("          ", "fb", [`${cp("rb", "bf", "8u * ks + tg")} * ${Y}[(n0 + g) * ${LDS}u + 8u * ks + tg]`, `${cp("rb", "bf", "8u * ks + tg + 4u")} * ${Y}[(n0 + g) * ${LDS}u + 8u * ks + tg + 4u]`])}${mma("          ", "sc[j]", "fa", "fb")}        }
      }
    }
${unroll}
    for (u32 j = 0; j < 2u; ++j)
${unroll}
      for (u32 hh = 0; hh < 2u; ++hh)
      {
        const u32 a = ${row("hh")}, f = ${col("j")};
        if (hq != rb) *(float2*)&${dst}[a * ${LDS}u + f] = make_float2(sc[j][2u * hh], sc[j][2u * hh + 1u]);
        else {
          if (f >= a + ${oq}u) ${dst}[a * ${LDS}u + f] = 0.f;
          if (f + 1u >= a + ${oq}u) ${dst}[a * ${LDS}u + f + 1u] = 0.f;
        }
      }
  }
`;
  // the diagonal blocks' entries below the diagonal (4 x 120), one a thread, over the key block's keys from the raw
  // inputs; with oq 1 the diagonal (x_a . k_a, no decay) on the last 32 threads, two a thread
  const dot4 = (xg: string, oq: number) => `${unroll} 2
        for (u32 m0 = 0; m0 < ${KB}u; m0 += 4u) {
          const float4 x4 = seqc_dadj_in4(${xg}, ${tokK("a", "m0")}), k4 = seqc_dadj_in4(KK, ${tokK("f", "m0")});
${["x", "y", "z", "w"].map((e, q) => `          s = fmaf(x4.${e} * k4.${e}, __expf(${gk(`a + ${oq}u`, q ? `m0 + ${q}u` : "m0")} - ${gk("f + 1u", q ? `m0 + ${q}u` : "m0")}), s);\n`).join("")}        }
`;
  const diagKeyScores = (dst: string, xg: string, oq: number) => `  if (t < ${(C / 16) * 120}u) {
    const u32 bd = t / 120u, k = t % 120u;
    u32 pa = (u32)((1.f + sqrtf(8.f * (float)k + 1.f)) * 0.5f);  // the row: pa (pa - 1) / 2 <= k < (pa + 1) pa / 2
    while (((pa * (pa - 1u)) >> 1u) > k) --pa;
    while ((((pa + 1u) * pa) >> 1u) <= k) ++pa;
    const u32 a = 16u * bd + pa, f = 16u * bd + k - ((pa * (pa - 1u)) >> 1u);
    float s = 0.f;
    if (a < nv) {
${dot4(xg, oq)}    }
    ${dst}[a * ${LDS}u + f] = s;
  }${oq ? ` else if (t < ${(C / 16) * 120 + C / 2}u) {
    for (u32 a = 2u * (t - ${(C / 16) * 120}u); a < 2u * (t - ${(C / 16) * 120}u) + 2u; ++a) {
      float s = 0.f;
      if (a < nv) {
${unroll} 4
        for (u32 m0 = 0; m0 < ${KB}u; m0 += 4u) {
          const float4 x4 = seqc_dadj_in4(${xg}, ${tokK("a", "m0")}), k4 = seqc_dadj_in4(KK, ${tokK("a", "m0")});
          s = fmaf(x4.x, k4.x, fmaf(x4.y, k4.y, fmaf(x4.z, k4.z, fmaf(x4.w, k4.w, s))));
        }
      }
      ${dst}[a * ${LDS}u + a] = s;
    }
  }` : ""}
`;
  // the diagonal blocks of dx += (A k + B u) o D, dk += (A^T x) o D, du += (B^T x) o D, a thread (block, key) in each of
  // two groups of rows (0..3, 12..15 and 4..11), each exp once for the three (delta-adjoint-key-mma.ts)
  const diagProducts = (As: string, Bs: string, xg: string, oq: number, Dx: string, Dk: string, Du: string, Dk2: string, Du2: string) => {
    const group = (gp: number) => {
      const ro = (q: string) => (gp ? `(${q} + 4u)` : `(${q} < 4u ? ${q} : ${q} + 8u)`);
      return `    float xr[8], ex[8];
${unroll}
    for (u32 q = 0; q < 8u; ++q) {
      const u32 a = 16u * bd + ${ro("q")};
      xr[q] = a < nv ? seqc_dadj_in(${xg}, ${tokK("a", "i")}) : 0.f;
      ex[q] = 0.f;
    }
#pragma unroll 1
    for (u32 pf = 0; pf < ${gp ? 12 : 16}u; ++pf) {
      const u32 f = 16u * bd + pf;
      const float kf = f < nv ? seqc_dadj_in(KK, ${tokK("f", "i")}) : 0.f, uf = f < nv ? seqc_dadj_in(U, ${tokK("f", "i")}) : 0.f, gf = ${gk("f + 1u", "i")};
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
  // a key block's [C, 64] accumulator into its columns of dst [B, T, H, K]; dv's 4 tiles into dV [B, T, H, V]
  const store = (acc: string, dst: string) => `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = ${row("hh")};
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 2u; ++j) *(float2*)&${dst}[${tokK("a", col("j"))}] = make_float2(${acc}[j][2u * hh], ${acc}[j][2u * hh + 1u]);
    }
  }
`;
  const storeV = `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = ${row("hh")};
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) *(float2*)&dV[${tokV("a", "8u * (4u * hq + j) + 2u * tg")}] = make_float2(dv[j][2u * hh], dv[j][2u * hh + 1u]);
    }
  }
`;
  const sAy = at(L.sAB), sBy = at(L.sAB + US), sAr = at(L.sAB + 2 * US), sBr = at(L.sAB + 3 * US);
  const side = (y: boolean) => {
    const oq = y ? 1 : 0, x = y ? "Q" : "W", As = y ? "sAy" : "sAr", Bs = y ? "sBy" : "sBr";
    const gl = y ? load("sGv", LDV, V, "DY", tokV, true) : load("sGv", LDV, V, "DR", chk, true);
    const cpA = cp("rb", "ks >> 1u", "n0 + g"), cpT = cp("ks >> 1u", "rb", "n0 + g");
    const D = (q: number) => `(sX + ${q * US}u)`;
    return `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----
${load("sX", LDS, KB, x, tokK, true, exX(oq))}${gl}${load("sS0", LDV, V, "S0", kvRow, false)}${load("sKh", LDS, KB, "KK", tokK, true, exY)}  __syncthreads();
  // the key block's P = x k^T decayed; dx = (g S0^T) exp(G[16 rb - 1]) (times X below)
${keyScores("sP", "sX", "sKh", oq)}${diagKeyScores("sP", x, oq)}${zero("dx", 2, false)}${prodF("dx", 2, "sGv", LDV, false, "sS0", LDV, true, "0u", `${V / 8}u`)}${each((a, i, e) => `dx${e} *= __expf(${gk("16u * rb", i)});`)}  __syncthreads();
${load("sS0", LDS, KB, "U", tokK, true, exY)}  __syncthreads();
  // dv += P^T g; the earlier blocks: dx += (A k^ + B u^) Cp[rb, bf], then dx *= X; the later blocks: dk / du += Y (A^T / B^T x~ Cp[ba, rb])
  // the key block's P into the chunk's rows of dV (scratch until the end: P_y [a][f] at columns f, P_r at 64 + f), rows a < nv
  for (u32 x = t; x < ${(C * KB) / 4}u; x += ${NT}u) {
    const u32 a = x / ${KB / 4}u, f4 = x % ${KB / 4}u;
    if (a < nv) {
      float4* d = (float4*)&dV[${tokV("a", `${y ? "" : `${KB}u + `}4u * f4`)}];
      float4 p = *(const float4*)&sP[a * ${LDS}u + 4u * f4];
      if (kb) { const float4 o = *d; p.x += o.x; p.y += o.y; p.z += o.z; p.w += o.w; }
      *d = p;
    }
  }
${prodF("dx", 2, As, LDS, false, "sKh", LDS, false, "0u", "2u * rb", cpA)}${prodF("dx", 2, Bs, LDS, false, "sS0", LDS, false, "0u", "2u * rb", cpA)}${each((a, i, e) => `dx${e} *= __expf(${gk(`${a} + ${oq}u`, i)} - ${gk("16u * rb", i)});`)}  {
${zero("tp", 2).replace(/^/gm, "  ")}${prodF("tp", 2, As, LDS, true, "sX", LDS, false, "2u * rb + 2u", `${C / 8}u`, cpT).replace(/^/gm, "  ")}${each((a, i, e) => `dk${e} = fmaf(tp${e}, __expf(${exY(a, i)}), dk${e});`).replace(/^/gm, "  ")}${zero("tp", 2, false).replace(/^/gm, "  ")}${prodF("tp", 2, Bs, LDS, true, "sX", LDS, false, "2u * rb + 2u", `${C / 8}u`, cpT).replace(/^/gm, "  ")}${each((a, i, e) => `du${e} = fmaf(tp${e}, __expf(${exY(a, i)}), du${e});`).replace(/^/gm, "  ")}  }
  __syncthreads();
${diagProducts(As, Bs, x, oq, D(0), D(1), D(2), D(3), D(4))}  __syncthreads();
${addFrom("dx", D(0))}${addFrom("dk", D(1))}${addFrom("du", D(2))}${addFrom("dk", D(3))}${addFrom("du", D(4))}${store("dx", y ? "dQ" : "dW")}  __syncthreads();
`;
  };
  const kbody = `  // G of the key block: the chunk's log decays (zeros past T), then a key's prefix a thread (slot order)
${unroll} 4
  for (u32 x = t; x < ${C * KB}u; x += ${NT}u) { const u32 a = x / ${KB}u, i = x % ${KB}u; sG[${KB}u + x] = a < nv ? LD[${tokK("a", "i")}] : 0.f; }
  if (t < ${KB}u) sG[t] = 0.f;
  __syncthreads();
  for (u32 i = t; i < ${KB}u; i += ${NT}u) {
    float s = 0.f;
${unroll} 8
    for (u32 a = 1; a <= ${C}u; ++a) { s += sG[a * ${KB}u + i]; sG[a * ${KB}u + i] = s; }
  }
  __syncthreads();
  // the factors between blocks ba > bf: exp(G[16 ba - 1, i] - G[16 bf + 15, i]) (pairs in order of ba, then bf)
  for (u32 x = t; x < ${NPAIR * KB}u; x += ${NT}u) {
    const u32 pr = x / ${KB}u, i = x % ${KB}u, ba = pr < 1u ? 1u : pr < 3u ? 2u : 3u, bf = pr - ((ba * (ba - 1u)) >> 1u);
    sCp[x] = __expf(${gk("16u * ba", "i")} - ${gk("16u * bf + 16u", "i")});
  }
  // ---- LE: dk = (v LE^T) o eC, du = (r LE^T) o eC; aC (dv's LE term at the end) ----
  float* sLE = sX + ${US}u; float* sVr = sX + ${US + UV}u; float* sRr = sX + ${US + 2 * UV}u;
${load("sLE", LDV, V, "LE", kvRow, false)}${load("sVr", LDV, V, "VV", tokV, true)}${load("sRr", LDV, V, "R", chk, true)}  __syncthreads();
${zero("dk", 2)}${zero("du", 2)}  float dx[2][4];
${prodF("dk", 2, "sVr", LDV, false, "sLE", LDV, true, "0u", `${V / 8}u`)}${prodF("du", 2, "sRr", LDV, false, "sLE", LDV, true, "0u", `${V / 8}u`)}${each((a, i, e) => `{ const float ec = __expf(${exC(a, i)}); dk${e} *= ec; du${e} *= ec; }`)}  __syncthreads();
  {
    // aC's partials: 4 columns of a row of LE . S_C a step, into sF [${KB}][${V / 4}] (k eC's place)
    float* sF = sX;
    const float* SC = cix + 1u < nC ? S0 + (size_t)(n + 1u) * ${K * V}u : SF + (size_t)bh * ${K * V}u;
${unroll} 2
    for (u32 x = t; x < ${(KB * V) / 4}u; x += ${NT}u) {
      const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u;
      const float4 sc = __ldg((const float4*)(SC + (kb + i) * ${V}u + 4u * j4)), le = *(const float4*)&sLE[i * ${LDV}u + 4u * j4];
      sF[x] = fmaf(le.w, sc.w, fmaf(le.z, sc.z, fmaf(le.y, sc.y, le.x * sc.x)));
    }
  }
  __syncthreads();
  for (u32 i = t; i < ${KB}u; i += ${NT}u) {
    float s = 0.f;
    for (u32 j4 = 0; j4 < ${V / 4}u; ++j4) s += sX[i * ${V / 4}u + j4];
    sAC[i] = s;  // (read after the sides' barriers)
  }
  __syncthreads();
${side(true)}${side(false)}${store("dk", "dK")}${store("du", "dU")}  __syncthreads();
  // the key block's dld terms from the stored outputs (this block's writes, after the barrier): q dq - u du - k dk and w dw [C][${KB}]
  {
    float* sF = sX;  // [2][C][${KB}], then the segments' sums [${NT / KB}][${KB}]
    for (u32 x = t; x < ${C * KB}u; x += ${NT}u) {
      const u32 a = x / ${KB}u, i = x % ${KB}u;
      float tm = 0.f, wd = 0.f;
      if (a < nv) {
        const size_t o = ${tokK("a", "i")};
        wd = seqc_dadj_in(W, o) * dW[o];
        tm = seqc_dadj_in(Q, o) * dQ[o] - seqc_dadj_in(U, o) * dU[o] - seqc_dadj_in(KK, o) * dK[o];
      }
      sF[x] = tm; sF[${C * KB}u + x] = wd;
    }
    __syncthreads();
    // dld_a = aC + sum_{s > a} (terms + w dw)_s + terms_a: thread (segment t / ${KB} of ${C / (NT / KB)} rows, key t % ${KB})
    const u32 i = t % ${KB}u, sg = t / ${KB}u;
    float* sSeg = sX + ${2 * C * KB}u;
    float z = 0.f;
    for (u32 a = ${C / (NT / KB)}u * sg; a < ${C / (NT / KB)}u * sg + ${C / (NT / KB)}u; ++a) z += sF[a * ${KB}u + i] + sF[${C * KB}u + a * ${KB}u + i];
    sSeg[sg * ${KB}u + i] = z;
    __syncthreads();
    float s = sAC[i];
    for (u32 q = sg + 1u; q < ${NT / KB}u; ++q) s += sSeg[q * ${KB}u + i];
    for (u32 a = ${C / (NT / KB)}u * sg + ${C / (NT / KB)}u; a-- > ${C / (NT / KB)}u * sg;) {
      const float tm = sF[a * ${KB}u + i];
      if (a < nv) dLD[${tokK("a", "i")}] = s + tm;
      s += tm + sF[${C * KB}u + a * ${KB}u + i];
    }
  }
  __syncthreads();
`;
  return `
${MMA_TF32_PRELUDE}${TID_OPAQUE}${adjHead(deltaAdjKeyMmaK128Entry(c), "unsigned short", NT, 1, C)}  const u32 wp = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u, rb = wp >> 2u, hq = wp & 3u;  // rows 16 rb.., columns 16 hq.. of a key block's outputs (32 hq.. of dv)
  float* sAy = ${sAy}; float* sBy = ${sBy}; float* sAr = ${sAr}; float* sBr = ${sBr};  // the value sums [64][72], both sides
  float* sX = ${at(L.sX)};    // x~ [64][72]; the work region of ${L.work} floats from here
  float* sGv = ${at(L.sGv)};  // g [64][136]
  float* sS0 = ${at(L.sS0)};  // S0's rows of the key block [64][136]; u^ [64][72]
  float* sKh = ${at(L.sKh)};  // k^ [64][72]
  float* sP = ${at(L.sP)};    // P [64][72]
  float* sG = ${at(L.sG)};    // [C + 1][${KB}]: row a + 1 = G[a] of the key block, row 0 = 0
  float* sCp = ${at(L.sCp)};  // [6][${KB}] the factors between 16-slot blocks
  float* sAC = ${at(L.sAC)};  // [${KB}] aC
  // ---- the value sums, both sides: A = g v^T, B = g r^T (masked f < a + oq) ----
  {
    float* sVr = sX; float* sRr = sX + ${UV}u; float* sGr = sX + ${2 * UV}u;
${load("sVr", LDV, V, "VV", tokV, true)}${load("sRr", LDV, V, "R", chk, true)}${load("sGr", LDV, V, "DY", tokV, true)}    __syncthreads();
${plainScores("sAy", "sGr", "sVr", 1)}${plainScores("sBy", "sGr", "sRr", 1)}    __syncthreads();
${load("sGr", LDV, V, "DR", chk, true)}    __syncthreads();
${plainScores("sAr", "sGr", "sVr", 0)}${plainScores("sBr", "sGr", "sRr", 0)}    __syncthreads();
  }
${[0, KB].map((kb) => `  {  // ---- the keys ${kb}..${kb + KB - 1} ----\n  const u32 kb = ${kb}u;\n${kbody}  }\n`).join("")}  // ---- dv = P_y^T dy + P_r^T DR (P from dV's scratch rows, this block's writes) + (k o eC) LE over all the keys ----
  {
    float* sPy = ${at(0)}; float* sPr = ${at(US)}; float* sDy = ${at(2 * US)}; float* sDr = ${at(2 * US + UV)};
    for (u32 x = t; x < ${(C * KB) / 4}u; x += ${NT}u) {
      const u32 a = x / ${KB / 4}u, f4 = x % ${KB / 4}u;
      const float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
      *(float4*)&sPy[a * ${LDS}u + 4u * f4] = a < nv ? *(const float4*)&dV[${tokV("a", "4u * f4")}] : z;
      *(float4*)&sPr[a * ${LDS}u + 4u * f4] = a < nv ? *(const float4*)&dV[${tokV("a", `${KB}u + 4u * f4`)}] : z;
    }
${load("sDy", LDV, V, "DY", tokV, true)}${load("sDr", LDV, V, "DR", chk, true)}  __syncthreads();
${zero("dv", 4)}${prodF("dv", 4, "sPy", LDS, true, "sDy", LDV, false, "2u * rb", `${C / 8}u`) + prodF("dv", 4, "sPr", LDS, true, "sDr", LDV, false, "2u * rb", `${C / 8}u`)}  __syncthreads();
    // G over all the keys [C + 1][K], then k o eC [64][136] and LE [K][136]
    float* sG2 = ${at(0)}; float* sKe = ${at(GK2)}; float* sLEf = ${at(GK2 + UV)};
${unroll} 4
    for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x / ${K}u, i = x % ${K}u; sG2[${K}u + x] = a < nv ? LD[${adjTok("a", "i", K)}] : 0.f; }
    if (t < ${K}u) sG2[t] = 0.f;
    __syncthreads();
    for (u32 i = t; i < ${K}u; i += ${NT}u) {
      float s = 0.f;
${unroll} 8
      for (u32 a = 1; a <= ${C}u; ++a) { s += sG2[a * ${K}u + i]; sG2[a * ${K}u + i] = s; }
    }
    __syncthreads();
${unroll} 2
    for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
      const u32 a = x / ${K / 4}u, i4 = x % ${K / 4}u;
      float4 v = a < nv ? seqc_dadj_in4(KK, ${adjTok("a", "4u * i4", K)}) : make_float4(0.f, 0.f, 0.f, 0.f);
${["x", "y", "z", "w"].map((e, q) => `      v.${e} *= __expf(sG2[${C * K}u + 4u * i4 + ${q}u] - sG2[(a + 1u) * ${K}u + 4u * i4 + ${q}u]);
`).join("")}      *(float4*)&sKe[a * ${LDV}u + 4u * i4] = v;
    }
${unroll} 2
    for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) { const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u; *(float4*)&sLEf[i * ${LDV}u + 4u * j4] = seqc_dadj_in4(LE, (size_t)n * ${K * V}u + i * ${V}u + 4u * j4); }
    __syncthreads();
${prodF("dv", 4, "sKe", LDV, false, "sLEf", LDV, false, "0u", `${K / 8}u`)}${storeV}  }
}
`;
}
