/**
 * The delta backward adjoint kernel's tensor-core twin (delta-adjoint.ts, configurations with math "tf32"; entries end
 * in _tf32): the same steps, slots and formulas (see there), every product by mma.sync m16n8k8 with TF32 operands
 * (cvt.rna as a fragment is read: 10 explicit mantissa bits, for bf16 inputs) and fp32 accumulators instead of fp32 FMAs.
 * (C / 16) (K / 32) warps: warp wp owns rows 16 rb.. (rb = wp / (K / 32)) and the 8-column tiles 4 hf..4 hf + 3
 * (hf = wp % (K / 32)) of each [C, K] output, as four m16n8 accumulator fragments (c0 (g, 2 tg), c1 (g, 2 tg + 1),
 * c2 (g + 8, 2 tg), c3 (g + 8, 2 tg + 1)); the score tiles of its row block likewise (C / 8 / (K / 32) of them), those
 * above the diagonal skipped. Slot rows of stride 8 mod 32 floats (the B fragments' and transposed A fragments' reads
 * are conflict-free). K = 64: 8 warps, 112,160 bytes of shared memory (two blocks an SM); K = 128 (the wide plan):
 * 16 warps, 225,824 bytes (one).
 */
import type { AdjOps, DeltaAdjConfig } from "./delta-adjoint.ts";
import { adjTok } from "./delta-adjoint.ts";
import { tf32Ops } from "./lowrank-readout-mma.ts";

/** Threads of a twin: C / 16 row blocks x K / 32 column groups of warps (256 at C = K = 64, 512 at K = 128). */
export const adjMmaThreads = (c: DeltaAdjConfig): number => (c.C / 16) * (c.K / 32) * 32;

const unroll = "#pragma unroll";

export function adjMmaOps(c: DeltaAdjConfig): AdjOps {
  const { C, K } = c;
  const dec = c.decay !== "none";
  const { mma, fragA, fragAt, fragBkn } = tf32Ops(false);
  const tok = adjTok;
  const zero = (acc: string, decl = true) => `${decl ? `  float ${acc}[4][4];\n` : ""}${unroll}
  for (u32 j = 0; j < 4u; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;
`;
  const ranges = { full: (w: number) => ["0u", `${w / 8}u`], lower: () => ["0u", "2u * rb + 2u"], upper: () => ["2u * rb", `${C / 8}u`] };
  // warps a row block (column groups of 32: hf), score tiles a warp
  const WG = K / 32, TSW = C / 8 / WG, lg = Math.log2(WG);
  const col = (j: string, per = 4) => `8u * (${per}u * hf + ${j}) + 2u * tg`;
  return {
    NT: adjMmaThreads(c), PR: 4 * WG,
    own: `  const u32 wp = t >> 5u, l = t & 31u, g = l >> 2u, tg = l & 3u, rb = wp >> ${lg}u, hf = wp & ${WG - 1}u;  // rows 16 rb.., 8-column tiles 4 hf.. of each output\n`,
    zero,
    prod: (acc, X, ldx, xT, Y, ldy, r, w) => {
      const [lo, hi] = ranges[r](w);
      return `  for (u32 ks = ${lo}; ks < ${hi}; ++ks) {
${xT ? fragAt("    ", "fa", X, ldx, "16u * rb", "8u * ks") : fragA("    ", "fa", X, ldx, "16u * rb", "8u * ks")}${unroll}
    for (u32 j = 0; j < 4u; ++j) {
${fragBkn("      ", "fb", Y, ldy, "8u * (4u * hf + j)", "8u * ks")}${mma("      ", `${acc}[j]`, "fa", "fb")}    }
  }
`;
    },
    scores: (dst, ldd, X, ldx, Y, ldy, w, oq) => `  {
    float sc[${TSW}][4];
${unroll}
    for (u32 j = 0; j < ${TSW}u; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
    for (u32 ks = 0; ks < ${w / 8}u; ++ks) {
${fragA("      ", "fa", X, ldx, "16u * rb", "8u * ks")}${unroll}
      for (u32 j = 0; j < ${TSW}u; ++j) {
        if (${TSW}u * hf + j <= 2u * rb + 1u) {  // tiles above the diagonal stay zero
${fragBkn("          ", "fb", Y, ldy, `8u * (${TSW}u * hf + j)`, "8u * ks")}${mma("          ", "sc[j]", "fa", "fb")}        }
      }
    }
${unroll}
    for (u32 j = 0; j < ${TSW}u; ++j)
${unroll}
      for (u32 hh = 0; hh < 2u; ++hh) {
        const u32 a = 16u * rb + g + 8u * hh, f = ${col("j", TSW)};
        const float m0 = f < a + ${oq}u ? ${dec ? `expf(sG[a + ${oq}u] - sG[f + 1u])` : "1.f"} : 0.f, m1 = f + 1u < a + ${oq}u ? ${dec ? `expf(sG[a + ${oq}u] - sG[f + 2u])` : "1.f"} : 0.f;
        *(float2*)&${dst}[a * ${ldd}u + f] = make_float2(sc[j][2u * hh] * m0, sc[j][2u * hh + 1u] * m1);
      }
  }
`,
    scaleRows: (acc, e) => `  {
    const float d0 = ${e("(16u * rb + g)")}, d1 = ${e("(16u * rb + g + 8u)")};
${unroll}
    for (u32 j = 0; j < 4u; ++j) { ${acc}[j][0] *= d0; ${acc}[j][1] *= d0; ${acc}[j][2] *= d1; ${acc}[j][3] *= d1; }
  }
`,
    store: (acc, dst) => `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = 16u * rb + g + 8u * hh;
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) *(float2*)&${dst}[${tok("a", col("j"), K)}] = make_float2(${acc}[j][2u * hh], ${acc}[j][2u * hh + 1u]);
    }
  }
`,
    dots: (acc, src, part, sign) => `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) {
    const u32 a = 16u * rb + g + 8u * hh;
    if (a < nv) {
${unroll}
      for (u32 j = 0; j < 4u; ++j) {
        const size_t o = ${tok("a", col("j"), K)};
        ${part}[hh] ${sign}= seqc_dadj_in(${src}, o) * ${acc}[j][2u * hh];
        ${part}[hh] ${sign}= seqc_dadj_in(${src}, o + 1u) * ${acc}[j][2u * hh + 1u];
      }
    }
  }
`,
    parts: "  float pt[2] = {0.f, 0.f}, pw[2] = {0.f, 0.f};\n",
    partStore: `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) { sPT[(16u * rb + g + 8u * hh) * ${4 * WG}u + 4u * hf + tg] = pt[hh]; sPW[(16u * rb + g + 8u * hh) * ${4 * WG}u + 4u * hf + tg] = pw[hh]; }
`,
    partSave: (dst, part) => `${unroll}
  for (u32 hh = 0; hh < 2u; ++hh) { ${dst}[(16u * rb + g + 8u * hh) * ${4 * WG}u + 4u * hf + tg] = ${part}[hh]; ${part}[hh] = 0.f; }
`,
  };
}
