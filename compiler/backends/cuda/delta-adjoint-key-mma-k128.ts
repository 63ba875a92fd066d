/**
 * The per-key delta adjoint's TF32 twin at K = V = 128 (RWKV-7 at the issue's K = 128 shapes; entry
 * seqc_delta_adj_key_c64k128v128_bf16_tf32, math "tf32", bf16 inputs, kernel 4's signature with LD and dLD [B, T, H, K]):
 * the formulas of delta-adjoint-key.ts (test/helpers/delta-ref.ts `adjointPerKey`) and the decay factoring of
 * delta-adjoint-key-mma.ts (16-slot blocks: x~ = x o X, k^ = k o Y, u^ = u o Y, the 6 block pairs' factors Cp), over
 * the keys in two blocks of 64 (kb = 0, 64): every [C, K] output (dq, dw, dk, du, dld) of a key block depends on the
 * keys of that block only, and the two sums over the keys (the key scores P and dv's LE term) are linear in them, so
 * dv takes each key block's share in turn (through dV's rows, below). The value sums A = g v^T, B = g r^T (masked,
 * no decay) do not depend on the keys: they are formed once a chunk for both sides and stay in shared memory.
 *
 * 16 warps (512 threads): warp wp owns rows 16 rb.. (rb = wp / 4) and columns 16 hq.. (hq = wp % 4) of each key block's
 * [C, 64] outputs, columns 32 hq.. of dv [C, 128], and the score block (rb, hq). Steps (barrier-separated):
 *   the value sums: v, r, dy rows | A_y, B_y | DR rows | A_r, B_r;
 *   a key block: its G (a key's prefix a thread) and Cp | the LE loads (LE's rows of the block, v, r) |
 *     dk = (v LE^T) o eC, du = (r LE^T) o eC | aC's partials | aC;
 *   a side of it (y: x = q, g = dy, f <= a; r: x = w, g = DR, f < a): x~, g, S0's rows of the block, k^ |
 *     P = x~ k^T (earlier blocks by mma, the diagonal blocks from the raw inputs), dx = (g S0^T) exp(G[16 rb - 1]) |
 *     u^ (into S0's place) | P into the chunk's rows of dV (scratch: P_y at columns 0..63, P_r at 64..127; the second
 *     key block adds), dx += A k^ + B u^ (earlier blocks, Cp), dx *= X, dk / du += Y (A^T / B^T x~) |
 *     the diagonal pass (delta-adjoint-key-mma.ts: thread (block, key), each exp once for the three products) |
 *     the adds, dx stored;
 *   then dk, du stored and the block's dld from the stored outputs (a (segment, key) a thread, suffix sums);
 *   at the end dv = P_y^T dy + P_r^T DR + (k o eC) LE over all 128 keys (P read back from the scratch, G recomputed for
 *   the 128 keys), stored over the scratch rows. dv thus holds no registers across the key blocks: kept there (16 floats
 *   a thread) it spilled. The pieces shared with the K = 64 twin: delta-adjoint-key-mma.ts keyTwinPieces.
 * Operands [C, 128] are rows of stride 136 (8 mod 32, as the [C, 64] slots' 72), read as B fragments either way (k n or
 * n k), so nothing is stored transposed. Shared memory: A_y, B_y, A_r, B_r [64][72], x~ [64][72], g [64][136],
 * S0 [64][136], k^ [64][72], P [64][72], G [65][64], Cp [6][64], aC [64]: 217,088 bytes, one block an SM. Every exp
 * by __expf (see delta-adjoint-key-mma.ts).
 */
import { adjHead, adjTok } from "./delta-adjoint.ts";
import { facCp, facPairs, keyTwinPieces, type DeltaAdjKeyMmaConfig, type DeltaAdjKeyMmaKernel } from "./delta-adjoint-key-mma.ts";
import { MMA_TF32_PRELUDE, tf32Ops } from "./lowrank-readout-mma.ts";
import { DELTA_ADJ_BF16_PRELUDE } from "./delta-adjoint-bf16.ts";

/** The K = 128 per-key twin: C = 64, K = V = 128, bf16 inputs. */
export const DELTA_ADJ_KEY_K128_MMA_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 128, V: 128, math: "tf32" }];

/** Its bf16 twin (math "bf16", seqc_delta_adj_key_c64k128v128_bf16_bf16): the same kernel with each pair of k8 steps one
 * mma m16n8k16 (delta-adjoint-key-mma.ts keyTwinPieces' bf16; as the K = 64 bf16 twin). */
export const DELTA_ADJ_KEY_K128_BF16_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 128, V: 128, math: "bf16" }];

/** Its factored twin (math "bf16f", seqc_delta_adj_key_c64k128v128_bf16_bf16f): the bf16 twin with each key block's diagonal
 * 16-slot blocks by TF32 mma where the key block's decays allow (delta-adjoint-key-mma.ts DELTA_ADJ_KEY_FAC_CONFIGS; a flag
 * a key block), else its diagonal passes. */
export const DELTA_ADJ_KEY_K128_FAC_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 128, V: 128, math: "bf16f" }];

const C = 64, K = 128, V = 128, KB = 64, LDS = 72, LDV = 136, NT = 512, NPAIR = 6, US = C * LDS, UV = C * LDV, GK2 = (C + 1) * K;

/** fac (math "bf16f"): 10 pairs' factors (ba >= bf), then the key block's flag (a u32, 4 floats). */
function layout(fac = false) {
  const sAB = 0;                   // A_y, B_y, A_r, B_r [64][72]
  const sX = sAB + 4 * US;         // x~ [64][72]   (sX.. sP: the phases' work region, 31,232 floats)
  const sGv = sX + US;             // g [64][136]
  const sS0 = sGv + UV;            // S0's rows of the key block [64][136]; u^ [64][72]
  const sKh = sS0 + UV;            // k^ [64][72]
  const sP = sKh + US;             // P [64][72]
  const sG = sP + US;              // [C + 1][KB]
  const sCp = sG + (C + 1) * KB;   // [6][KB] (fac: [10][KB])
  const sAC = sCp + (fac ? NPAIR + 4 : NPAIR) * KB;    // [KB]
  const sFl = sAC + KB;            // fac: the flag
  return { sAB, sX, sGv, sS0, sKh, sP, sG, sCp, sAC, sFl, work: sG - sX, floats: sAC + KB + (fac ? 4 : 0) };
}

function check(c: DeltaAdjKeyMmaConfig): void {
  if ((c.math !== "tf32" && c.math !== "bf16" && c.math !== "bf16f") || c.tin !== "bf16" || c.C !== C || c.K !== K || c.V !== V)
    throw new Error(`delta-adjoint (key, ${c.math}, K = 128): C = 64, K = V = 128 and bf16 inputs only`);
}

export function deltaAdjKeyMmaK128Entry(c: DeltaAdjKeyMmaConfig): string {
  return `seqc_delta_adj_key_c${c.C}k${c.K}v${c.V}_${c.tin}_${c.math}`;
}

export function deltaAdjKeyMmaK128Kernel(c: DeltaAdjKeyMmaConfig): DeltaAdjKeyMmaKernel {
  check(c);
  return { ...c, entry: deltaAdjKeyMmaK128Entry(c), threads: NT, sharedBytes: layout(c.math === "bf16f").floats * 4 };
}

const unroll = "#pragma unroll";
const ind = (x: string) => x.replace(/^(?=.)/gm, "  ");

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
  const fac = c.math === "bf16f";
  const L = layout(fac);
  if (2 * C * KB + (NT / KB) * KB > L.work || US + 3 * UV > L.work) throw new Error("delta-adjoint (key, K = 128): the work region is too small");
  const { fragBnk } = tf32Ops(false);
  // a key-block element of a [.., K] per-token tensor, a [.., V] one, a [N, C, V] chunk tensor, S0 / LE's row kb + i
  const tokK = (a: string, i: string) => adjTok(a, `kb + ${i}`, K);
  const tokV = (a: string, j: string) => adjTok(a, j, V);
  const chk = (a: string, j: string) => `((size_t)n * ${C}u + ${a}) * ${V}u + ${j}`;
  const kvRow = (i: string, j: string) => `(size_t)n * ${K * V}u + (kb + ${i}) * ${V}u + ${j}`;
  const gk = (row: string, i: string) => `sG[(${row}) * ${KB}u + (${i})]`;
  const exX = (oq: number) => (a: string, i: string) => `${gk(`${a} + ${oq}u`, i)} - ${gk(`${a} & ~15u`, i)}`;
  const exY = (f: string, i: string) => `${gk(`(${f} | 15u) + 1u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const exC = (f: string, i: string) => `${gk(`${C}u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const cp = fac ? facCp(KB) : (ba: string, bf: string, i: string) => `sCp[((((${ba}) * ((${ba}) - 1u)) >> 1u) + (${bf})) * ${KB}u + (${i})]`;
  const at = (off: number) => `((float*)seqc_smem_raw + ${off})`;
  // rows [64][w] into dst (stride ld) from src at idx(a, column) (a float4), masked a < nv where `masked`, each value
  // times exp(ex(a, column)) where given
  const load = (dst: string, ld: number, w: number, src: string, idx: (a: string, j: string) => string, masked: boolean, ex?: (a: string, i: string) => string) => {
    const sc = ex ? ` v.x *= __expf(${ex("a", "4u * i4")}); v.y *= __expf(${ex("a", "4u * i4 + 1u")}); v.z *= __expf(${ex("a", "4u * i4 + 2u")}); v.w *= __expf(${ex("a", "4u * i4 + 3u")});` : "";
    const get = `seqc_dadj_in4(${src}, ${idx("a", "4u * i4")})`;
    return `${unroll} 2\n  for (u32 x = seqc_tid_opaque(); x < ${(C * w) / 4}u; x += ${NT}u) { const u32 a = x / ${w / 4}u, i4 = x % ${w / 4}u; float4 v = ${masked ? `a < nv ? ${get} : make_float4(0.f, 0.f, 0.f, 0.f)` : get};${sc} *(float4*)&${dst}[a * ${ld}u + 4u * i4] = v; }\n`;
  };
  // the diagonal key scores' sum over the key block's keys from the raw inputs (keyTwinPieces' diagKeyScores)
  const dot4 = (xg: string, oq: number) => `${unroll} 2
        for (u32 m0 = 0; m0 < ${KB}u; m0 += 4u) {
          const float4 x4 = seqc_dadj_in4(${xg}, ${tokK("a", "m0")}), k4 = seqc_dadj_in4(KK, ${tokK("f", "m0")});
${["x", "y", "z", "w"].map((e, q) => `          s = fmaf(x4.${e} * k4.${e}, __expf(${gk(`a + ${oq}u`, q ? `m0 + ${q}u` : "m0")} - ${gk("f + 1u", q ? `m0 + ${q}u` : "m0")}), s);\n`).join("")}        }
`;
  const pieces = (fd?: string) => keyTwinPieces({
    tk: tokK, KB, V, gk, cp, keyB: (Y, k) => `${Y}[(n0 + g) * ${LDS}u + ${k}]`,
    plain: { ldx: LDV, fb: (Y) => fragBnk("          ", "fb", Y, LDV, "8u * (2u * hq + j)", "8u * ks"), bv: (Y, k) => `${Y}[(8u * (2u * hq + j) + g) * ${LDV}u + ${k}]` },
    dot: dot4, bf16: c.math === "bf16" || fac, ...(fd ? { fd } : {}),
  });
  const { row, zero, each, prodF, keyScores, diagKeyScores, plainScores, diagProducts, addFrom, store } = pieces();
  // fac: the sides twice, the key block's flag choosing (one branch a key block: the flag held across a side, or both
  // forms' steps in one side, spilled 60-200 bytes): "fast" with the diagonal blocks by TF32 mma, else the bf16 twin's
  const keyScoresF = pieces("true").keyScores;
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
  const side = (y: boolean, fast = false) => {
    const oq = y ? 1 : 0, x = y ? "Q" : "W", As = y ? "sAy" : "sAr", Bs = y ? "sBy" : "sBr";
    const gl = y ? load("sGv", LDV, V, "DY", tokV, true) : load("sGv", LDV, V, "DR", chk, true);
    const cpA = cp("rb", "ks >> 1u", "n0 + g"), cpT = cp("ks >> 1u", "rb", "n0 + g");
    const D = (q: number) => `(sX + ${q * US}u)`;
    // fac: the own (diagonal) block's products by TF32 mma where dgo (dd = its 2 k8 steps, else 0), beside the bf16 ones
    const cpD = cp("rb", "rb", "n0 + g");
    const dxD = (X: string, Y: string) => (fast ? prodF("dx", X, false, Y, "2u * rb", "2u * rb + 2u", cpD, { tf32: true, once: true }) : "");
    const tpD = (X: string) => (fast ? prodF("tp", X, true, "sX", "2u * rb", "2u * rb + 2u", cpD, { tf32: true, once: true }).replace(/^/gm, "  ") : "");
    const dks = diagKeyScores("sP", x, oq), dps = `  __syncthreads();
${diagProducts(As, Bs, x, oq, D(0), D(1), D(2), D(3), D(4))}  __syncthreads();
${addFrom("dx", D(0))}${addFrom("dk", D(1))}${addFrom("du", D(2))}${addFrom("dk", D(3))}${addFrom("du", D(4))}`;
    return `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----
${load("sX", LDS, KB, x, tokK, true, exX(oq))}${gl}${load("sS0", LDV, V, "S0", kvRow, false)}${load("sKh", LDS, KB, "KK", tokK, true, exY)}  __syncthreads();
  // the key block's P = x k^T decayed; dx = (g S0^T) exp(G[16 rb - 1]) (times X below)
${fast ? keyScoresF("sP", "sX", "sKh", oq) : `${keyScores("sP", "sX", "sKh", oq)}${dks}`}${zero("dx", false)}${prodF("dx", "sGv", false, "sS0", "0u", `${V / 8}u`, undefined, { ldx: LDV, ldy: LDV, yNK: true })}${each((a, i, e) => `dx${e} *= __expf(${gk("16u * rb", i)});`)}  __syncthreads();
${load("sS0", LDS, KB, "U", tokK, true, exY)}  __syncthreads();
  // P into dV's scratch rows; the earlier blocks: dx += (A k^ + B u^) Cp[rb, bf], then dx *= X; the later blocks: dk / du += Y (A^T / B^T x~ Cp[ba, rb])
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
${prodF("dx", As, false, "sKh", "0u", "2u * rb", cpA)}${dxD(As, "sKh")}${prodF("dx", Bs, false, "sS0", "0u", "2u * rb", cpA)}${dxD(Bs, "sS0")}${each((a, i, e) => `dx${e} *= __expf(${gk(`${a} + ${oq}u`, i)} - ${gk("16u * rb", i)});`)}  {
${zero("tp").replace(/^/gm, "  ")}${prodF("tp", As, true, "sX", "2u * rb + 2u", `${C / 8}u`, cpT).replace(/^/gm, "  ")}${tpD(As)}${each((a, i, e) => `dk${e} = fmaf(tp${e}, __expf(${exY(a, i)}), dk${e});`).replace(/^/gm, "  ")}${zero("tp", false).replace(/^/gm, "  ")}${tpD(Bs)}${prodF("tp", Bs, true, "sX", "2u * rb + 2u", `${C / 8}u`, cpT).replace(/^/gm, "  ")}${each((a, i, e) => `du${e} = fmaf(tp${e}, __expf(${exY(a, i)}), du${e});`).replace(/^/gm, "  ")}  }
${fast ? "" : dps}${store("dx", y ? "dQ" : "dW")}  __syncthreads();
`;
  };
  const kbody = `  // G of the key block: the chunk's log decays (zeros past T), then a key's prefix a thread (slot order)
${fac ? "  if (t == 0u) sFl[0] = 0u;\n" : ""}${unroll} 4
  for (u32 x = t; x < ${C * KB}u; x += ${NT}u) { const u32 a = x / ${KB}u, i = x % ${KB}u; sG[${KB}u + x] = a < nv ? LD[${tokK("a", "i")}] : 0.f; }
  if (t < ${KB}u) sG[t] = 0.f;
  __syncthreads();
  for (u32 i = t; i < ${KB}u; i += ${NT}u) {
    float s = 0.f;
${unroll} 8
    for (u32 a = 1; a <= ${C}u; ++a) { s += sG[a * ${KB}u + i]; sG[a * ${KB}u + i] = s; }
  }
  __syncthreads();
${fac ? facPairs(KB, NT, gk) : `  // the factors between blocks ba > bf: exp(G[16 ba - 1, i] - G[16 bf + 15, i]) (pairs in order of ba, then bf)
  for (u32 x = t; x < ${NPAIR * KB}u; x += ${NT}u) {
    const u32 pr = x / ${KB}u, i = x % ${KB}u, ba = pr < 1u ? 1u : pr < 3u ? 2u : 3u, bf = pr - ((ba * (ba - 1u)) >> 1u);
    sCp[x] = __expf(${gk("16u * ba", "i")} - ${gk("16u * bf + 16u", "i")});
  }
`}  // ---- LE: dk = (v LE^T) o eC, du = (r LE^T) o eC; aC (dv's LE term at the end) ----
  float* sLE = sX + ${US}u; float* sVr = sX + ${US + UV}u; float* sRr = sX + ${US + 2 * UV}u;
${load("sLE", LDV, V, "LE", kvRow, false)}${load("sVr", LDV, V, "VV", tokV, true)}${load("sRr", LDV, V, "R", chk, true)}  __syncthreads();
${zero("dk")}${zero("du")}  float dx[2][4];
${prodF("dk", "sVr", false, "sLE", "0u", `${V / 8}u`, undefined, { ldx: LDV, ldy: LDV, yNK: true })}${prodF("du", "sRr", false, "sLE", "0u", `${V / 8}u`, undefined, { ldx: LDV, ldy: LDV, yNK: true })}${each((a, i, e) => `{ const float ec = __expf(${exC(a, i)}); dk${e} *= ec; du${e} *= ec; }`)}  __syncthreads();
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
${fac ? [true, false].map((y) => `  if (sFl[0] != 0u) {  // some block's decay of a key over FACTOR_SPAN: the bf16 twin's diagonal passes
${ind(side(y))}  } else {  // the diagonal blocks by mma
${ind(side(y, true))}  }
`).join("") : side(true) + side(false)}${store("dk", "dK")}${store("du", "dU")}  __syncthreads();
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
${MMA_TF32_PRELUDE}${c.math === "bf16" || fac ? DELTA_ADJ_BF16_PRELUDE : ""}${TID_OPAQUE}${adjHead(deltaAdjKeyMmaK128Entry(c), "unsigned short", NT, 1, C)}  const u32 wp = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u, rb = wp >> 2u, hq = wp & 3u;  // rows 16 rb.., columns 16 hq.. of a key block's outputs (32 hq.. of dv)
  float* sAy = ${sAy}; float* sBy = ${sBy}; float* sAr = ${sAr}; float* sBr = ${sBr};  // the value sums [64][72], both sides
  float* sX = ${at(L.sX)};    // x~ [64][72]; the work region of ${L.work} floats from here
  float* sGv = ${at(L.sGv)};  // g [64][136]
  float* sS0 = ${at(L.sS0)};  // S0's rows of the key block [64][136]; u^ [64][72]
  float* sKh = ${at(L.sKh)};  // k^ [64][72]
  float* sP = ${at(L.sP)};    // P [64][72]
  float* sG = ${at(L.sG)};    // [C + 1][${KB}]: row a + 1 = G[a] of the key block, row 0 = 0
  float* sCp = ${at(L.sCp)};  // [${fac ? 10 : 6}][${KB}] the factors between 16-slot blocks
  float* sAC = ${at(L.sAC)};  // [${KB}] aC
${fac ? `  u32* sFl = (u32*)${at(L.sFl)};  // the key block's flag: some block's decay of a key over FACTOR_SPAN
` : ""}  // ---- the value sums, both sides: A = g v^T, B = g r^T (masked f < a + oq) ----
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
${zero("dv", true, 4)}${prodF("dv", "sPy", true, "sDy", "2u * rb", `${C / 8}u`, undefined, { nt: 4, ldy: LDV })}${prodF("dv", "sPr", true, "sDr", "2u * rb", `${C / 8}u`, undefined, { nt: 4, ldy: LDV })}  __syncthreads();
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
${prodF("dv", "sKe", false, "sLEf", "0u", `${K / 8}u`, undefined, { nt: 4, ldx: LDV, ldy: LDV })}${storeV}  }
}
`;
}
