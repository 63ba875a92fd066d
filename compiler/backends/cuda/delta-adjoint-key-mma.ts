/**
 * The per-key delta adjoint's tensor-core twin (delta-adjoint-key.ts, RWKV-7: ld [B, T, H, K]; math "tf32", entry
 * seqc_delta_adj_key_c64k64v64_bf16_tf32): the same formulas and signature (see there and test/helpers/delta-ref.ts
 * `adjointPerKey`), every product by mma.sync m16n8k8 with TF32 operands (cvt.rna as a fragment is read) and fp32
 * accumulators, the way delta-adjoint-mma.ts twins the scalar kernel: 8 warps, warp wp owns rows 16 rb.. (rb = wp / 2)
 * and the 8-column tiles 4 hf..4 hf + 3 (hf = wp % 2) of each [C, K] output (dv, dk, du, the side's dx), and those
 * score tiles of its row block.
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
 * off-diagonal sums (a 16-float temporary) times Y as they are added; the LE terms take eC[f,i] = exp(G[C-1,i] - G[f,i])
 * directly (k o eC stored; v LE^T, r LE^T scaled by eC elementwise).
 *
 * Inside the 4 diagonal 16 x 16 blocks the exps are taken directly per (a, f, i), from the raw inputs (global memory /
 * L2), in two SIMT passes a side: the key scores' diagonal entries (P[a,f] = sum_i x k exp(..), an entry a thread), and
 * one pass where thread (block t / 64, key t % 64) takes each exp(Ga[a,i] - G[f,i]) of its block and key once for the
 * three products that need it (dx += (A k + B u) o D, dk += (A^T x) o D, du += (B^T x) o D; 48 accumulators in
 * registers, the pairs' masks f < a + oq resolved at compile time), its sums written to shared memory and added to the
 * warps' fragments (the thread's block and key lie in its own warp's rows and columns).
 *
 * Layout: nine [64][72] fp32 slots (stride 8 mod 32: conflict-free B / transposed A fragment reads), G [C + 1][K], the
 * 6 block pairs' factors [6][K], the dld terms [C][K] x 2, aC [K]: 217,088 bytes, one block an SM, 256 threads
 * (__launch_bounds__(256, 1); the diagonal pass holds 48 accumulators, 48 raw inputs and 17 G values besides the 64
 * fragment accumulators, so two blocks an SM at <= 128 registers and <= 113 KB were not reached).
 */
import { adjTok } from "./delta-adjoint.ts";
import type { DeltaAdjKeyConfig } from "./delta-adjoint-key.ts";
import { MMA_TF32_PRELUDE, tf32Ops } from "./lowrank-readout-mma.ts";

export interface DeltaAdjKeyMmaConfig extends DeltaAdjKeyConfig {
  math: "tf32";
}

export interface DeltaAdjKeyMmaKernel extends DeltaAdjKeyMmaConfig {
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** The per-key twin: C = K = V = 64, bf16 inputs. */
export const DELTA_ADJ_KEY_MMA_CONFIGS: readonly DeltaAdjKeyMmaConfig[] = [{ decay: "key", tin: "bf16", C: 64, K: 64, V: 64, math: "tf32" }];

export function deltaAdjKeyMmaEntry(c: DeltaAdjKeyMmaConfig): string {
  return `seqc_delta_adj_key_c${c.C}k${c.K}v${c.V}_${c.tin}_${c.math}`;
}

const W = 64, LDS = 72, NT = 256, NSLOT = 9, NPAIR = 6;

function layout() {
  let off = 0;
  const slots: number[] = [];
  for (let i = 0; i < NSLOT; i++) { slots.push(off); off += W * LDS; }
  const sG = off; off += (W + 1) * W;
  const sCp = off; off += NPAIR * W;
  const sF = off; off += 2 * W * W;
  const sAC = off; off += W;
  return { slots, sG, sCp, sF, sAC, floats: off };
}

function check(c: DeltaAdjKeyMmaConfig): void {
  if (c.math !== "tf32" || c.tin !== "bf16" || c.C !== 64 || c.K !== 64 || c.V !== 64)
    throw new Error(`delta-adjoint (key, ${c.math}): C = K = V = 64 and bf16 inputs only (8 warps over 16-row blocks; the diagonal pass a thread a block and key)`);
}

export function deltaAdjKeyMmaKernel(c: DeltaAdjKeyMmaConfig): DeltaAdjKeyMmaKernel {
  check(c);
  return { ...c, entry: deltaAdjKeyMmaEntry(c), threads: NT, sharedBytes: layout().floats * 4 };
}

const unroll = "#pragma unroll";

export function deltaAdjKeyMmaSource(c: DeltaAdjKeyMmaConfig): string {
  check(c);
  const C = 64, K = 64, V = 64;
  const L = layout();
  const { frag, mma, fragA, fragAt, fragBkn } = tf32Ops(false);
  const tok = adjTok;
  const S = (i: number) => `sS${i}`;
  const chk = (a: string, i: string, w: number) => `((size_t)n * ${C}u + ${a}) * ${w}u + ${i}`;
  // G[row - 1][i] (row 0: G[-1] = 0)
  const gk = (row: string, i: string) => `sG[(${row}) * ${K}u + (${i})]`;
  // the factor between 16-slot blocks ba > bf, exp(G[16 ba - 1, i] - G[16 bf + 15, i])
  const cp = (ba: string, bf: string, i: string) => `sCp[((((${ba}) * ((${ba}) - 1u)) >> 1u) + (${bf})) * ${K}u + (${i})]`;
  const put = (d: string, r: string, c4: string, T_: boolean) => T_
    ? `${d}[(4u * ${c4}) * ${LDS}u + ${r}] = v.x; ${d}[(4u * ${c4} + 1u) * ${LDS}u + ${r}] = v.y; ${d}[(4u * ${c4} + 2u) * ${LDS}u + ${r}] = v.z; ${d}[(4u * ${c4} + 3u) * ${LDS}u + ${r}] = v.w;`
    : `*(float4*)&${d}[${r} * ${LDS}u + 4u * ${c4}] = v;`;
  // rows [a][i] or transposed [i][a] of a per-token input / chunk tensor, each value times exp(ex(a, i)) where given
  const load = (dst: string, src: string, w: number, kind: "tok" | "chunk", T_: boolean, ex?: (a: string, i: string) => string) => {
    const at = `seqc_dadj_in4(${src}, ${kind === "tok" ? tok("a", "4u * i4", w) : chk("a", "4u * i4", w)})`;
    const idx = T_ ? `const u32 a = x % ${C}u, i4 = x / ${C}u;` : `const u32 a = x / ${w / 4}u, i4 = x % ${w / 4}u;`;
    const sc = ex ? ` v.x *= expf(${ex("a", "4u * i4")}); v.y *= expf(${ex("a", "4u * i4 + 1u")}); v.z *= expf(${ex("a", "4u * i4 + 2u")}); v.w *= expf(${ex("a", "4u * i4 + 3u")});` : "";
    return `${unroll} 2\n  for (u32 x = t; x < ${(C * w) / 4}u; x += ${NT}u) { ${idx} float4 v = a < nv ? ${at} : make_float4(0.f, 0.f, 0.f, 0.f);${sc} ${put(dst, "a", "i4", T_)} }\n`;
  };
  const loadKV = (dst: string, src: string, T_: boolean) => {
    const idx = T_ ? `const u32 i = x % ${K}u, j4 = x / ${K}u;` : `const u32 i = x / ${V / 4}u, j4 = x % ${V / 4}u;`;
    return `${unroll} 2\n  for (u32 x = t; x < ${(K * V) / 4}u; x += ${NT}u) { ${idx} const float4 v = seqc_dadj_in4(${src}, (size_t)n * ${K * V}u + i * ${V}u + 4u * j4); ${put(dst, "i", "j4", T_)} }\n`;
  };
  // operand scalings (exponents <= 0): x~ = x X (the side's a rows), k^ / u^ = . Y (f rows), k eC
  const exX = (oq: number) => (a: string, i: string) => `${gk(`${a} + ${oq}u`, i)} - ${gk(`${a} & ~15u`, i)}`;
  const exY = (f: string, i: string) => `${gk(`(${f} | 15u) + 1u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const exC = (f: string, i: string) => `${gk(`${C}u`, i)} - ${gk(`${f} + 1u`, i)}`;
  const row = (hh: string) => `(16u * rb + g + 8u * ${hh})`;
  const col = (j: string) => `(8u * (4u * hf + ${j}) + 2u * tg)`;
  const zero = (acc: string, decl = true) => `${decl ? `  float ${acc}[4][4];\n` : ""}${unroll}
  for (u32 j = 0; j < 4u; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;
`;
  // each fragment element (row a, column i) of acc: body(a, i, e) with e the element's index expression
  const each = (body: (a: string, i: string, e: string) => string) => `${unroll}
  for (u32 j = 0; j < 4u; ++j)
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
  const prodF = (acc: string, X: string, xT: boolean, Y: string, lo: string, hi: string, s?: string) => `  for (u32 ks = ${lo}; ks < ${hi}; ++ks) {
${xT ? fragAt("    ", "fa", X, LDS, "16u * rb", "8u * ks") : fragA("    ", "fa", X, LDS, "16u * rb", "8u * ks")}${unroll}
    for (u32 j = 0; j < 4u; ++j) {
      const u32 n0 = 8u * (4u * hf + j);
${s ? `      const float sc = ${s};\n${frag("      ", "fb", [`sc * ${Y}[(8u * ks + tg) * ${LDS}u + n0 + g]`, `sc * ${Y}[(8u * ks + tg + 4u) * ${LDS}u + n0 + g]`])}` : fragBkn("      ", "fb", Y, LDS, "n0", "8u * ks")}${mma("      ", `${acc}[j]`, "fa", "fb")}    }
  }
`;
  // the key scores' tiles in earlier blocks than the row block (dst [a][f]; those in later blocks zero, the diagonal
  // block's left to diagKeyScores): X = x~ rows, Yt = k^ transposed [i][f], each value times Cp[rb, bf, i]
  const keyScores = (dst: string, X: string, Yt: string) => `  {
${zero("sc").replace(/^/gm, "  ")}    for (u32 ks = 0; ks < ${K / 8}u; ++ks) {
${fragA("      ", "fa", X, LDS, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < 4u; ++j) {
        const u32 bf = 2u * hf + (j >> 1u), n0 = 8u * (4u * hf + j);
        if (bf < rb) {
${frag("          ", "fb", [`${cp("rb", "bf", "8u * ks + tg")} * ${Yt}[(8u * ks + tg) * ${LDS}u + n0 + g]`, `${cp("rb", "bf", "8u * ks + tg + 4u")} * ${Yt}[(8u * ks + tg + 4u) * ${LDS}u + n0 + g]`])}${mma("          ", "sc[j]", "fa", "fb")}        }
      }
    }
${unroll}
    for (u32 j = 0; j < 4u; ++j)
${unroll}
      for (u32 hh = 0; hh < 2u; ++hh)
        if (2u * hf + (j >> 1u) != rb) *(float2*)&${dst}[${row("hh")} * ${LDS}u + ${col("j")}] = make_float2(sc[j][2u * hh], sc[j][2u * hh + 1u]);
  }
`;
  // the key scores' diagonal blocks, an entry a thread: sum_i x_a,i k_f,i exp(Ga[a,i] - G[f,i]) from the raw inputs
  const diagKeyScores = (dst: string, xg: string, oq: number) => `  for (u32 x = t; x < ${(C / 16) * 256}u; x += ${NT}u) {
    const u32 bd = x >> 8u, a = 16u * bd + ((x >> 4u) & 15u), f = 16u * bd + (x & 15u);
    float s = 0.f;
    if (f < a + ${oq}u && a < nv) {
${unroll} 4
      for (u32 m0 = 0; m0 < ${K}u; m0 += 4u) {
        const float4 x4 = seqc_dadj_in4(${xg}, ${tok("a", "m0", K)}), k4 = seqc_dadj_in4(KK, ${tok("f", "m0", K)});
        s = fmaf(x4.x * k4.x, expf(${gk(`a + ${oq}u`, "m0")} - ${gk("f + 1u", "m0")}), s);
        s = fmaf(x4.y * k4.y, expf(${gk(`a + ${oq}u`, "m0 + 1u")} - ${gk("f + 1u", "m0 + 1u")}), s);
        s = fmaf(x4.z * k4.z, expf(${gk(`a + ${oq}u`, "m0 + 2u")} - ${gk("f + 1u", "m0 + 2u")}), s);
        s = fmaf(x4.w * k4.w, expf(${gk(`a + ${oq}u`, "m0 + 3u")} - ${gk("f + 1u", "m0 + 3u")}), s);
      }
    }
    ${dst}[a * ${LDS}u + f] = s;
  }
`;
  // dst [a][f] = g_a . y_f over the values (Y stored [j][f]), masked f < a + oq (no decay); tiles above the diagonal zero
  const plainScores = (dst: string, X: string, Y: string, oq: number) => `  {
${zero("sc").replace(/^/gm, "  ")}    for (u32 ks = 0; ks < ${V / 8}u; ++ks) {
${fragA("      ", "fa", X, LDS, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < 4u; ++j) {
        if (4u * hf + j <= 2u * rb + 1u) {
${fragBkn("          ", "fb", Y, LDS, "8u * (4u * hf + j)", "8u * ks")}${mma("          ", "sc[j]", "fa", "fb")}        }
      }
    }
${unroll}
    for (u32 j = 0; j < 4u; ++j)
${unroll}
      for (u32 hh = 0; hh < 2u; ++hh) {
        const u32 a = ${row("hh")}, f = ${col("j")};
        *(float2*)&${dst}[a * ${LDS}u + f] = make_float2(f < a + ${oq}u ? sc[j][2u * hh] : 0.f, f + 1u < a + ${oq}u ? sc[j][2u * hh + 1u] : 0.f);
      }
  }
`;
  // the diagonal blocks of dx += (A k + B u) o D, dk += (A^T x) o D, du += (B^T x) o D: thread (block t / 64, key
  // t % 64), each exp once for the three; sums into Dx, Dk, Du [a][i]
  const diagProducts = (As: string, Bs: string, xg: string, oq: number, Dx: string, Dk: string, Du: string) => `  {
    const u32 bd = t >> 6u, i = t & 63u;
    float xr[16], ex[16], ga[16];
${unroll}
    for (u32 q = 0; q < 16u; ++q) {
      const u32 a = 16u * bd + q;
      xr[q] = a < nv ? seqc_dadj_in(${xg}, ${tok("a", "i", K)}) : 0.f;
      ex[q] = 0.f;
      ga[q] = ${gk(`a + ${oq}u`, "i")};  // Ga[a]
    }
#pragma unroll 1
    for (u32 pf = 0; pf < 16u; ++pf) {
      const u32 f = 16u * bd + pf;
      const float kf = f < nv ? seqc_dadj_in(KK, ${tok("f", "i", K)}) : 0.f, uf = f < nv ? seqc_dadj_in(U, ${tok("f", "i", K)}) : 0.f, gf = ${gk("f + 1u", "i")};
      float ek = 0.f, eu = 0.f;
${unroll}
      for (u32 pa = 0; pa < 16u; ++pa) {
        if (pf < pa + ${oq}u) {
          const u32 a = 16u * bd + pa;
          const float e = expf(ga[pa] - gf);
          const float sa = ${As}[a * ${LDS}u + f], sb = ${Bs}[a * ${LDS}u + f];
          ex[pa] = fmaf(fmaf(sa, kf, sb * uf), e, ex[pa]);
          ek = fmaf(sa * xr[pa], e, ek);
          eu = fmaf(sb * xr[pa], e, eu);
        }
      }
      ${Dk}[f * ${LDS}u + i] = ek; ${Du}[f * ${LDS}u + i] = eu;
    }
${unroll}
    for (u32 q = 0; q < 16u; ++q) ${Dx}[(16u * bd + q) * ${LDS}u + i] = ex[q];
  }
`;
  const addFrom = (acc: string, src: string) => `${unroll}
  for (u32 j = 0; j < 4u; ++j)
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
      for (u32 j = 0; j < 4u; ++j) *(float2*)&${dst}[${tok("a", col("j"), K)}] = make_float2(${acc}[j][2u * hh], ${acc}[j][2u * hh + 1u]);
    }
  }
`;
  // the dld terms of this thread's elements: sF[dst + a K + i] (op)= src_a,i acc (rows past the chunk's end: zeros)
  const terms = (acc: string, src: string, dst: number, op: "=" | "-=") =>
    each((a, i, e) => `sF[${dst}u + ${a} * ${K}u + ${i}] ${op} (${a} < nv ? seqc_dadj_in(${src}, ${tok(a, i, K)}) * ${acc}${e} : 0.f);`);
  const side = (y: boolean) => {
    const oq = y ? 1 : 0, x = y ? "Q" : "W";
    const gl = y ? load(S(1), "DY", V, "tok", false) : load(S(1), "DR", V, "chunk", false);
    return `  // ---- side ${y ? "y: x = q, g = dy, scores f <= a" : "r: x = w, g = DR, scores f < a"} ----
${load(S(0), x, K, "tok", false, exX(oq))}${gl}${loadKV(S(2), "S0", true)}${load(S(3), "KK", K, "tok", true, exY)}${load(S(4), "VV", V, "tok", true)}${load(S(5), "R", V, "chunk", true)}${load(S(6), "KK", K, "tok", false, exY)}${load(S(7), "U", K, "tok", false, exY)}  __syncthreads();
  // dx = (g S0^T) exp(G[16 rb - 1]) (times X below); P = x k^T decayed: the earlier blocks' tiles, then the diagonal blocks
${zero("dx", false)}${prodF("dx", S(1), false, S(2), "0u", `${V / 8}u`)}${each((a, i, e) => `dx${e} *= expf(${gk("16u * rb", i)});`)}${keyScores(S(8), S(0), S(3))}${diagKeyScores(S(8), x, oq)}  __syncthreads();
  // dv += P^T g; A = g v^T, B = g r^T (masked)
${prodF("dv", S(8), true, S(1), "2u * rb", `${C / 8}u`)}${plainScores(S(2), S(1), S(4), oq)}${plainScores(S(3), S(1), S(5), oq)}  __syncthreads();
  // the earlier blocks: dx += (A k^ + B u^) Cp[rb, bf], then dx *= X; the later blocks: dk += Y (A^T x~ Cp[ba, rb]), du += Y (B^T x~ Cp[ba, rb])
${prodF("dx", S(2), false, S(6), "0u", "2u * rb", cp("rb", "ks >> 1u", "n0 + g"))}${prodF("dx", S(3), false, S(7), "0u", "2u * rb", cp("rb", "ks >> 1u", "n0 + g"))}${each((a, i, e) => `dx${e} *= expf(${gk(`${a} + ${oq}u`, i)} - ${gk("16u * rb", i)});`)}  {
${zero("tp").replace(/^/gm, "  ")}${prodF("tp", S(2), true, S(0), "2u * rb + 2u", `${C / 8}u`, cp("ks >> 1u", "rb", "n0 + g")).replace(/^/gm, "  ")}${each((a, i, e) => `dk${e} = fmaf(tp${e}, expf(${exY(a, i)}), dk${e});`).replace(/^/gm, "  ")}${zero("tp", false).replace(/^/gm, "  ")}${prodF("tp", S(3), true, S(0), "2u * rb + 2u", `${C / 8}u`, cp("ks >> 1u", "rb", "n0 + g")).replace(/^/gm, "  ")}${each((a, i, e) => `du${e} = fmaf(tp${e}, expf(${exY(a, i)}), du${e});`).replace(/^/gm, "  ")}  }
${diagProducts(S(2), S(3), x, oq, S(1), S(4), S(5))}  __syncthreads();
${addFrom("dx", S(1))}${addFrom("dk", S(4))}${addFrom("du", S(5))}${store("dx", y ? "dQ" : "dW")}${terms("dx", x, y ? 0 : C * K, "=")}  __syncthreads();
`;
  };
  const slots = L.slots.map((o, i) => `  float* ${S(i)} = (float*)seqc_smem_raw + ${o};\n`).join("");
  return `
${MMA_TF32_PRELUDE}
extern "C" __global__ void __launch_bounds__(${NT}, 1) ${deltaAdjKeyMmaEntry(c)}(const unsigned short* __restrict__ Q, const unsigned short* __restrict__ U, const unsigned short* __restrict__ W, const unsigned short* __restrict__ KK, const unsigned short* __restrict__ VV, const unsigned short* __restrict__ DY, const float* __restrict__ LD,
    const float* __restrict__ R, const float* __restrict__ S0, const float* __restrict__ SF, const float* __restrict__ LE, const float* __restrict__ DR, int B, int T, int H,
    float* __restrict__ dQ, float* __restrict__ dU, float* __restrict__ dW, float* __restrict__ dK, float* __restrict__ dV, float* __restrict__ dLD) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  const u32 nC = ((u32)T + ${C - 1}u) / ${C}u, n = blockIdx.x, t = threadIdx.x;
  if (n >= (u32)B * (u32)H * nC) return;
  const u32 bh = n / nC, cix = n % nC, b = bh / (u32)H, h = bh % (u32)H, t0 = cix * ${C}u;
  const u32 nv = (u32)T - t0 < ${C}u ? (u32)T - t0 : ${C}u;  // slots in use
  const u32 wp = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u, rb = wp >> 1u, hf = wp & 1u;  // rows 16 rb.., 8-column tiles 4 hf.. of each output
${slots}  float* sG = (float*)seqc_smem_raw + ${L.sG};    // [C + 1][K]: row a + 1 = G[a], row 0 = 0
  float* sCp = (float*)seqc_smem_raw + ${L.sCp};  // [6][K] the factors between 16-slot blocks
  float* sF = (float*)seqc_smem_raw + ${L.sF};    // [C][K] q dq - u du - k dk, then [C][K] w dw
  float* sAC = (float*)seqc_smem_raw + ${L.sAC};  // [K] aC
  // G: the chunk's log decays loaded by all threads (zeros past T), then a key's prefix a thread (slot order)
${unroll} 4
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x / ${K}u, i = x % ${K}u; sG[${K}u + x] = a < nv ? LD[${tok("a", "i", K)}] : 0.f; }
  if (t < ${K}u) sG[t] = 0.f;
  __syncthreads();
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    float s = 0.f;
${unroll} 8
    for (u32 a = 1; a <= ${C}u; ++a) { s += sG[a * ${K}u + i]; sG[a * ${K}u + i] = s; }
  }
  __syncthreads();
  // the factors between blocks ba > bf: exp(G[16 ba - 1, i] - G[16 bf + 15, i]) (pairs in order of ba, then bf)
  for (u32 x = t; x < ${NPAIR * K}u; x += ${NT}u) {
    const u32 pr = x / ${K}u, i = x % ${K}u, ba = pr < 1u ? 1u : pr < 3u ? 2u : 3u, bf = pr - ((ba * (ba - 1u)) >> 1u);
    sCp[x] = expf(${gk("16u * ba", "i")} - ${gk("16u * bf + 16u", "i")});
  }
  // ---- LE: dv = (k o eC) LE, dk = (v LE^T) o eC, du = (r LE^T) o eC; aC ----
${load(S(0), "KK", K, "tok", false, exC)}${loadKV(S(1), "LE", false)}${load(S(2), "VV", V, "tok", false)}${load(S(3), "R", V, "chunk", false)}${loadKV(S(4), "LE", true)}  __syncthreads();
${zero("dv")}${zero("dk")}${zero("du")}  float dx[4][4];
${prodF("dv", S(0), false, S(1), "0u", `${K / 8}u`)}${prodF("dk", S(2), false, S(4), "0u", `${V / 8}u`)}${prodF("du", S(3), false, S(4), "0u", `${V / 8}u`)}${each((a, i, e) => `{ const float ec = expf(${exC(a, i)}); dk${e} *= ec; du${e} *= ec; }`)}  {
    // aC's partials: 4 columns of a row of LE (its slot) . S_C a step (S_C read coalesced), into sF [K][V / 4]
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
    for (u32 j4 = 0; j4 < ${V / 4}u; ++j4) s += sF[i * ${V / 4}u + j4];
    sAC[i] = s;  // (read after the sides' barriers)
  }
${side(true)}${side(false)}${terms("du", "U", 0, "-=")}${terms("dk", "KK", 0, "-=")}${store("dk", "dK")}${store("du", "dU")}${store("dv", "dV")}  __syncthreads();
  // dld_a = aC + sum_{s > a} (terms + w dw)_s + terms_a, a column (key) a thread
  for (u32 i = t; i < ${K}u; i += ${NT}u) {
    float s = sAC[i];
    for (u32 a = ${C}u; a-- > 0u;) {
      const float tm = sF[a * ${K}u + i];
      if (a < nv) dLD[${tok("a", "i", K)}] = s + tm;
      s += tm + sF[${C * K}u + a * ${K}u + i];
    }
  }
}
`;
}
