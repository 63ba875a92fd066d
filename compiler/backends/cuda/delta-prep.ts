/**
 * The token-aligned delta backward's per-chunk prep kernels (docs/delta-backward.md kernels 1 and 2; runtime
 * runtime/torch/seqc_delta_bwd.py, module compiler/backends/cuda/delta-bwd.ts). One block a chunk of C tokens aligned to
 * t = 0: chunk n = (b H + h) nC + c, slot a = token c C + a; slots past T are identity steps (zero vectors, log decay 0).
 * G[a] = the chunk's log decays of slots 0..a summed (G[-1] = 0, G_C = G[C - 1]), in double so that every exponent
 * difference is exact to fp32 however deep the decays go; every exponent is a difference <= 0.
 *
 *   prep_fwd (U, W, KK, VV, LD):  Luu[a, f] = exp(G[a-1] - G[f]) (w_a . u_f), Luk likewise with k_f (f < a);
 *     TI = Tinv = (I - Luu)^-1 (16 x 16 diagonal blocks by forward substitution, then block rows),
 *     M = Tinv Wd [C, K], X = (Tinv Luk) V [C, V], BM = Kd^T V [K, V], NN = Ud [C, K], A = exp(G_C)
 *   prep_bwd (Q, U, W, DY, LD, TI):  Pu[a, f] = exp(G[a] - G[f]) (q_a . u_f) (f <= a);
 *     M = Tinv^T Ud [C, K], X = Tinv^T (Pu^T dY) [C, V], BM = Qd^T dY [K, V], NN = Wd [C, K], A = exp(G_C)
 * with Wd_a = exp(G[a-1]) w_a, Qd_a = exp(G[a]) q_a, Ud_f = exp(G_C - G[f]) u_f, Kd_f = exp(G_C - G[f]) k_f.
 *
 * Per-token inputs [B, T, H, w] of type TIN (float or __nv_bfloat16: entry suffix _f32 / _bf16; 16 / 8-byte aligned:
 * read 4 values a load), LD float [B, T, H]
 * (nullptr and never read with decay "none"; [B, T, H, K] with a per-key decay, decay "key", delta-prep-key.ts, which
 * writes A [N, K]); per-chunk outputs float32, chunk-major: TI [N, C, C] (zeros above the
 * diagonal), M / NN [N, C, K], X [N, C, V], BM [N, K, V], A [N] (N = B H nC). fp32 math: the chunk's operands in shared
 * memory, products as 4 x 4 register tiles of fmaf on DELTA_PREP_THREADS threads; the tensor-core twins (math "tf32" /
 * "tf32x3", delta-prep-mma.ts) run the products as m16n8k8 TF32 mma on the same block.
 */
import { keyGbFloats, keyParts, type KeyLayout } from "./delta-prep-key.ts";
import { deltaPrepMmaCheck, deltaPrepMmaLayout, deltaPrepMmaSource } from "./delta-prep-mma.ts";
import { deltaPrepStagedCheck, deltaPrepStagedLayout, deltaPrepStagedSource } from "./delta-prep-staged.ts";
import { MMA_TF32_PRELUDE } from "./lowrank-readout-mma.ts";
import { maskedRows, outer, tiles } from "./register-tiles.ts";

export type DeltaDecay = "none" | "scalar";
/** With "key": a log decay per key (LD [B, T, H, K], A [N, K]; delta-prep-key.ts). A config's type parameter keeps the
 * module records' (delta-bwd.ts) "none" / "scalar" by default. */
export type DeltaPrepDecay = DeltaDecay | "key";
export type DeltaTin = "f32" | "bf16";
export type DeltaPrepOp = "fwd" | "bwd";

export interface DeltaPrepConfig<D extends DeltaPrepDecay = DeltaDecay> {
  op: DeltaPrepOp;
  decay: D;
  tin: DeltaTin;
  C: number;
  K: number;
  V: number;
  /** fp32 FMAs on the SIMT cores (absent) or the tensor-core twins (delta-prep-mma.ts): "tf32" / "tf32x3" (entries end
   * in _tf32 / _tf32x3), for bf16 tensors. */
  math?: DeltaPrepMath;
  /** The TF32 twin's staged form (delta-prep-staged.ts; math "tf32", bf16 inputs, decay "none" / "scalar"): bf16
   * operands in shared memory, copies all in flight, Tinv over Luu; the same entry. */
  staged?: boolean;
  /** The row-layout twins' loads (delta-prep-mma.ts's, the per-key ones among them) issued all at once, 16 bytes a
   * load, into registers, then stored (absent: a load and its store a loop trip); the same entry and outputs. */
  batched?: boolean;
  /** Threads a block (the staged form only; absent: DELTA_PREP_THREADS). */
  threads?: number;
  /** The staged form's score products (Luu, Luk / Pu: bf16 rows times bf16 rows) as bf16 mma m16n8k16 (absent: m16n8k8
   * TF32 mma of the same, exact, operands); the same entry and outputs (DELTA_PREP_MMA_CONFIGS' since call C2b). */
  scores?: "bf16";
  /** prep_bwd's staged form (and, "mn" only, the per-key row-layout twin, delta-prep-mma.ts): the reverse walk's operands for its bf16 twin (delta-walk-bf16.ts; entries _wb /
   * _wbx): "mn" writes M [N, C, K] and NN transposed, NN^T [N, K, C], as bf16 (rounded to nearest even from the fp32
   * values the twin writes), X and BM float32; "all" X and BM as bf16 too. A as the twin's. */
  wout?: "mn" | "all";
  /** prep_bwd's staged wout twins only: "quad" stores the bf16 products (M; X and BM with wout "all") 16 bytes a lane,
   * the quad's lanes swapping their packed pairs by shuffles (delta-prep-mma.ts mmaProduct's quad form; else 4 bytes a
   * lane); the same values at the same addresses. Entries _wbq / _wbxq. */
  wstore?: "quad";
  /** prep_bwd's staged wout twins with decay "none" only: "bf16" forms BM = Q^T dY (bf16 rows times bf16 rows, exact
   * operands) as bf16 mma m16n8k16 with ldmatrix.trans fragments (delta-prep-staged.ts; else m16n8k8 TF32 mma of the
   * same operands, each fragment register a 2-byte load): the same products, fp32 sums in the mma's order. Entries
   * <wout entry>_bm16. */
  bmMma?: "bf16";
}

export type DeltaPrepMath = "tf32" | "tf32x3";

export interface DeltaPrepKernel<D extends DeltaPrepDecay = DeltaDecay> extends DeltaPrepConfig<D> {
  entry: string;
  threads: number;
  sharedBytes: number;
}

export const DELTA_PREP_THREADS = 256;

/** A config's threads a block: its own (the staged form) or DELTA_PREP_THREADS. */
export const prepThreads = (c: DeltaPrepConfig<DeltaPrepDecay>): number => c.threads ?? DELTA_PREP_THREADS;

/** Both ops, both decays, both input types at C = 64 with K = V = 64 and K = V = 128. Shared memory (none / scalar):
 * prep_fwd 103,424 / 104,720 bytes at K = 64, 172,032 / 173,328 at K = 128; prep_bwd 102,400 / 103,696 at K = 64,
 * 169,984 / 171,280 at K = 128: two blocks an SM at K = 64, one at K = 128. */
export const DELTA_PREP_CONFIGS: readonly DeltaPrepConfig[] = [64, 128].flatMap((K) =>
  (["fwd", "bwd"] as const).flatMap((op) => (["none", "scalar"] as const).flatMap((decay) => (["f32", "bf16"] as const).map((tin) => ({ op, decay, tin, C: 64, K, V: K })))));

/** The tensor-core twins (TF32) of the bf16 configurations, K = V = 64 and 128, in their staged form
 * (delta-prep-staged.ts) since H200 call C1 of session 14: DeltaNet prep_fwd 0.361 -> 0.226 ms, prep_bwd 0.295 -> 0.165
 * at (8, 2048, 16, 64); 2.138 -> 0.970 and 1.866 -> 0.876 at (4, 8192, 16, 128) (the bf16 step under graphs 3.517 ->
 * 3.237 and 15.858 -> 13.736 ms; gradients vs float64 unchanged). Their scores as bf16 mma (`scores: "bf16"`) since
 * H200 call C2b: DeltaNet prep_fwd 0.226 -> 0.200 / 0.962 -> 0.852 ms, prep_bwd 0.166 -> 0.166 / 0.870 -> 0.807 at
 * (8, 2048, 16, 64) / (4, 8192, 16, 128) (Gated DeltaNet 1.02-1.11x; the bf16 step under graphs 1.023x / 1.019x;
 * gradients vs float64 unchanged). `staged: false` gives delta-prep-mma.ts's form; the "tf32x3" twins (fp32 accuracy,
 * three products each) are built on request. */
export const DELTA_PREP_MMA_CONFIGS: readonly DeltaPrepConfig[] = DELTA_PREP_CONFIGS.filter((c) => c.tin === "bf16").map((c) => ({ ...c, math: "tf32" as const, staged: true, scores: "bf16" as const }));

/** The per-key decay's kernels (delta-prep-key.ts; RWKV-7): both ops, f32 / bf16 inputs, C = 64, K = V = 64 and 128.
 * Shared memory: prep_fwd 112,128 bytes at K = 64 (two blocks an SM), 189,440 at K = 128; prep_bwd 111,104 / 187,392. */
export const DELTA_PREP_KEY_CONFIGS: readonly DeltaPrepConfig<"key">[] = [64, 128].flatMap((K) =>
  (["fwd", "bwd"] as const).flatMap((op) => (["f32", "bf16"] as const).map((tin) => ({ op, decay: "key" as const, tin, C: 64, K, V: K }))));

/** The per-key configurations' tensor-core twins (TF32; the scores and the decay passes fp32 SIMT as in
 * delta-prep-key.ts, the other products and Tinv's block rows as delta-prep-mma.ts's), bf16 inputs, K = V = 64 and 128,
 * with batched loads and bf16 V / dY rows (`batched: true`) since H200 call C2 of session 14: RWKV-7 prep_fwd 0.757 ->
 * 0.676 ms, prep_bwd 0.827 -> 0.451 at (8, 2048, 16, 64); 3.949 -> 3.318 and 3.225 -> 2.323 at (4, 8192, 16, 128) (the
 * bf16 step under graphs 6.239 -> 5.762 ms; gradients bit-identical). `batched: false` gives the unbatched twins. */
export const DELTA_PREP_KEY_MMA_CONFIGS: readonly DeltaPrepConfig<"key">[] = DELTA_PREP_KEY_CONFIGS.filter((c) => c.tin === "bf16").map((c) => ({ ...c, math: "tf32" as const, batched: true }));

/** What the module puts once before the kernels: u32, the shared-memory declaration, __nv_bfloat16 and the loads of
 * a per-token input as float (the CPU emulation, test/cuda-emu/emu.h, defines SEQC_EMU and its own shared memory). */
export const DELTA_PRELUDE = `// ==== seqc token-aligned delta backward (model-independent; compiler/backends/cuda/delta-prep.ts) ====
typedef unsigned int u32;
#ifndef SEQC_EMU
#include <cuda_bf16.h>
#define SEQC_SMEM_DECL(name) extern __shared__ __align__(16) char name[]
#else
struct __nv_bfloat16 { unsigned short x; };
#endif
__device__ __forceinline__ float seqc_delta_in(const float* p) { return *p; }
__device__ __forceinline__ float seqc_delta_in(const __nv_bfloat16* p) { return __uint_as_float(((u32)*(const unsigned short*)p) << 16); }
// 4 consecutive values from p (16-byte aligned for float, 8 for bf16)
__device__ __forceinline__ float4 seqc_delta_in4(const float* p) { return *(const float4*)p; }
__device__ __forceinline__ float4 seqc_delta_in4(const __nv_bfloat16* p) {
  const u32 lo = ((const u32*)p)[0], hi = ((const u32*)p)[1];
  return make_float4(__uint_as_float(lo << 16), __uint_as_float(lo & 0xffff0000u), __uint_as_float(hi << 16), __uint_as_float(hi & 0xffff0000u));
}
`;

export function deltaPrepEntry(c: DeltaPrepConfig<DeltaPrepDecay>): string {
  return `seqc_delta_prep_${c.op}_${c.decay}_c${c.C}k${c.K}v${c.V}_${c.tin}${c.math ? `_${c.math}` : ""}${c.wout ? (c.wout === "all" ? "_wbx" : "_wb") : ""}${c.wstore === "quad" ? "q" : ""}${c.bmMma === "bf16" ? "_bm16" : ""}`;
}

/** Shared memory in floats from the start (the fp32 kernels' and the twins' alike): Gb (per-key decay only: double
 * [C / 4 + 1][K]), G as double [C + 2] (scalar decay only), the exponent rows eW / eQ / eC [C] each (scalar decay
 * only), then the op's buffers `ops` (name, floats; each a multiple of 4 floats, so float4 aligned) in order. */
export function prepLayout(c: DeltaPrepConfig<DeltaPrepDecay>, ops: [string, number][]): { floats: number; at: Record<string, number> } {
  const dec = c.decay === "scalar";
  const parts: [string, number][] = [["Gb", c.decay === "key" ? keyGbFloats(c) : 0], ["G", dec ? 2 * (c.C + 2) : 0], ["E", dec ? 3 * c.C : 0], ...ops];
  const at: Record<string, number> = {};
  let o = 0;
  for (const [name, n] of parts) {
    at[name] = o;
    o += n;
  }
  return { floats: o, at };
}

/** The fp32 kernels' layout: G, E, Gb as prepLayout, then the op's buffers. */
function layout(c: DeltaPrepConfig<DeltaPrepDecay>): { floats: number; at: Record<string, number> } {
  const { C, K, V } = c, LC = C + 4;
  // fwd: U^T's buffer holds Tinv once NN is out, K^T's the solve's block-row products and then (Tinv Luk)^T once BM is out
  return prepLayout(c, c.op === "fwd"
    ? [["UT", Math.max(K, C) * LC], ["WT", K * LC], ["KT", Math.max(K, C) * LC], ["V", C * V], ["L", C * LC], ["Lk", C * LC]]
    : [["QT", K * LC], ["UT", K * LC], ["DY", C * V], ["Ti", C * LC], ["Pu", C * LC], ["PD", C * V]]);
}

function check(c: DeltaPrepConfig<DeltaPrepDecay>): void {
  if (c.decay === "key") {
    if (4 * c.C > DELTA_PREP_THREADS) throw new Error(`delta-prep (key): C ${c.C} > ${DELTA_PREP_THREADS / 4} (the diagonal tiles' entries one a thread)`);
    const LC = c.C + 4;
    if (!c.math && c.K * LC > (c.op === "fwd" ? 2 * c.C * LC : c.C * LC + c.C * c.V)) throw new Error(`delta-prep (key): K ${c.K} too large for Gl in the score buffers (C ${c.C}, V ${c.V})`);
  }
  if (c.batched && (!c.math || c.staged)) throw new Error("delta-prep: batched loads are the row-layout twins' (math, not staged)");
  if (c.batched && (c.K % 8 || c.V % 8)) throw new Error(`delta-prep (batched): K ${c.K} and V ${c.V} must be multiples of 8 (16-byte loads)`);
  if (c.threads !== undefined && (!c.staged || c.threads % 32 || c.threads < Math.max(64, c.C) || c.threads > 1024)) throw new Error(`delta-prep: threads ${c.threads} (the staged form only: a multiple of 32, >= max(64, C), <= 1024)`);
  if (c.scores !== undefined && (!c.staged || c.scores !== "bf16")) throw new Error(`delta-prep: scores ${c.scores} (the staged form only: "bf16")`);
  if (c.wout !== undefined && !(c.staged ? c.op === "bwd" && (c.wout === "mn" || c.wout === "all") : c.decay === "key" && !!c.math && c.wout === "mn")) throw new Error(`delta-prep: wout ${c.wout} (prep_bwd's staged form: "mn" / "all"; the per-key row-layout twins, fwd and bwd: "mn")`);
  if (c.wstore !== undefined && !(c.wstore === "quad" && c.staged && c.op === "bwd" && c.wout)) throw new Error(`delta-prep: wstore ${c.wstore} (prep_bwd's staged wout twins only: "quad")`);
  if (c.bmMma !== undefined && !(c.bmMma === "bf16" && c.staged && c.op === "bwd" && c.wout && c.decay === "none" && c.V % 32 === 0)) throw new Error(`delta-prep: bmMma ${c.bmMma} (prep_bwd's staged wout twins with decay "none" and V a multiple of 32 only: "bf16")`);
  if (c.staged) return deltaPrepStagedCheck(c);
  if (c.math) return deltaPrepMmaCheck(c);
  if (c.C % 16 || c.C < 16) throw new Error(`delta-prep: C ${c.C} must be a multiple of 16 (the inverse's 16 x 16 diagonal blocks)`);
  if (c.K % 4 || c.V % 4) throw new Error(`delta-prep: K ${c.K} and V ${c.V} must be multiples of 4 (4 x 4 register tiles)`);
  const bytes = layout(c).floats * 4;
  if (bytes > 227 * 1024) throw new Error(`delta-prep: C ${c.C}, K ${c.K}, V ${c.V} (${c.op}) needs ${bytes} bytes of shared memory (> 227 KiB)`);
}

export function deltaPrepKernel<D extends DeltaPrepDecay>(c: DeltaPrepConfig<D>): DeltaPrepKernel<D> {
  check(c);
  return { ...c, entry: deltaPrepEntry(c), threads: prepThreads(c), sharedBytes: (c.staged ? deltaPrepStagedLayout(c) : c.math ? deltaPrepMmaLayout(c) : layout(c)).floats * 4 };
}

const unroll = "#pragma unroll";

const f4 = (p: string) => `(*(const float4*)&${p})`;
const vec = (name: string, p: string) => `const float4 ${name}4 = ${f4(p)};\n      const float ${name}[4] = {${name}4.x, ${name}4.y, ${name}4.z, ${name}4.w};`;
/** four floats of a transposed [K][LC] buffer's column `col`, rows 4 i0 .. 4 i0 + 3, each times `scale`. */
const column = (name: string, buf: string, i0: string, col: string, LC: number, scale: string) =>
  `const float ${name}[4] = {${[0, 1, 2, 3].map((p) => `${scale}${buf}[(4u * ${i0} + ${p}u) * ${LC}u + ${col}]`).join(", ")}};`;
/** acc stored as float4s into a row-major [.][W] destination (from element `base`) at rows 4 ti + p. */
const store = (dst: string, W: number, base = "") => `${unroll}
    for (u32 p = 0; p < 4u; ++p) *(float4*)&${dst}[${base}(4u * ti + p) * ${W}u + 4u * tj] = make_float4(acc[p][0], acc[p][1], acc[p][2], acc[p][3]);`;

/** The text both the fp32 kernels and their tensor-core twins (delta-prep-mma.ts) are made of, for a config and its
 * shared-memory layout `at` (float offsets by buffer name; G and E first). */
export function prepParts(c: DeltaPrepConfig<DeltaPrepDecay>, at: Record<string, number>, keyLay: KeyLayout = { rows: false, ld: c.C + 4, ldL: c.C + 4, ldLk: c.C + 4 }) {
  const { C, K, op } = c, NT = prepThreads(c), dec = c.decay === "scalar", key = c.decay === "key";
  const TIN = c.tin === "f32" ? "float" : "__nv_bfloat16";
  // G[a] lives at sG[a + 1] (sG[0] = G[-1] = 0); exponent differences in double, then fp32
  const ex = (x: string, y: string) => (dec ? `expf((float)(sG[${x}] - sG[${y}]))` : "1.f");
  const eW = (a: string) => (dec ? `sE[${a}]` : ""), eQ = (a: string) => (dec ? `sE[${C}u + ${a}]` : ""), eC = (a: string) => (dec ? `sE[${2 * C}u + ${a}]` : "");
  const times = (e: string) => (e ? `${e} * ` : "");
  const buffers = Object.entries(at).filter(([k]) => k !== "G" && k !== "E" && k !== "Gb").map(([k, o]) => `  float* s${k} = smf + ${o};\n`).join("");
  const row = (a: string) => `(((size_t)b * (u32)T + t0 + ${a}) * (u32)H + h)`;
  // a chunk's slot rows of a per-token input, 4 values a load, zeros past T: as they are into [C][ld], or transposed into
  // [w][ld] with the lanes of a warp on 8 rows x 4 column quads (32-byte pieces of each row; 2-way bank conflicts)
  const in4 = (src: string, w: number, a: string, i4: string) => `${a} < used ? seqc_delta_in4(&${src}[${row(a)} * ${w}u + 4u * ${i4}]) : make_float4(0.f, 0.f, 0.f, 0.f)`;
  const loadT = (dst: string, src: string, w: number, ld: number) => `  for (u32 x = t; x < ${(C * w) / 4}u; x += ${NT}u) {
    const u32 a = 8u * (x / ${2 * w}u) + x % 8u, i4 = (x / 8u) % ${w / 4}u;
    const float4 v = ${in4(src, w, "a", "i4")};
    ${dst}[4u * i4 * ${ld}u + a] = v.x; ${dst}[(4u * i4 + 1u) * ${ld}u + a] = v.y; ${dst}[(4u * i4 + 2u) * ${ld}u + a] = v.z; ${dst}[(4u * i4 + 3u) * ${ld}u + a] = v.w;
  }
`;
  const loadR = (dst: string, src: string, w: number, ld: number) => `  for (u32 x = t; x < ${(C * w) / 4}u; x += ${NT}u) { const u32 a = x / ${w / 4}u, i4 = x % ${w / 4}u; *(float4*)&${dst}[a * ${ld}u + 4u * i4] = ${in4(src, w, "a", "i4")}; }\n`;
  /** Row loads [dst, src, w, ld, half] (src a per-token input of type TIN, or "LD" / "TI": float; TI's rows are the
   * chunk's [C][C]) into fp32 rows [C][ld]: as loadR's loops, or (c.batched) every 16-byte load of the block's threads
   * issued into registers first (zeros past T), then the stores; `half` (batched bf16 inputs): kept bf16, rows [C][ld]
   * of halves. */
  const rowLoads = (items: [string, string, number, number, boolean?][]) => {
    if (!c.batched) return items.map(([dst, src, w, ld]) => (src === "TI" ? tiLoad(ld) : loadR(dst, src, w, ld))).join("");
    const parts = items.map(([dst, src, w, ld, half], q) => {
      const f32 = src === "LD" || src === "TI" || c.tin === "f32", pw = f32 ? 4 : 8, P = (C * w) / pw, J = Math.ceil(P / NT);
      const inRange = P % NT ? `x < ${P}u` : "";
      const at = src === "TI" ? `&TI[(size_t)n * ${C * C}u + a * ${C}u + i]` : `&${src}[${row("a")} * ${w}u + i]`;
      const guard = [inRange, src === "TI" ? "" : "a < used"].filter(Boolean).join(" && ");
      const idx = `const u32 x = t + ${NT}u * j, a = x / ${w / pw}u, i = ${pw}u * (x % ${w / pw}u);`;
      const issue = `  uint4 r${q}[${J}];
#pragma unroll
  for (u32 j = 0; j < ${J}u; ++j) { ${idx} r${q}[j] = ${guard ? `${guard} ? *(const uint4*)${at} : make_uint4(0u, 0u, 0u, 0u)` : `*(const uint4*)${at}`}; }
`;
      const f = (e: string) => `__uint_as_float(${e})`;
      const put = half
        ? `*(uint4*)&((unsigned short*)${dst})[a * ${ld}u + i] = r${q}[j];`
        : f32
        ? `*(float4*)&${dst}[a * ${ld}u + i] = make_float4(${f(`r${q}[j].x`)}, ${f(`r${q}[j].y`)}, ${f(`r${q}[j].z`)}, ${f(`r${q}[j].w`)});`
        : `*(float4*)&${dst}[a * ${ld}u + i] = make_float4(${f(`r${q}[j].x << 16`)}, ${f(`r${q}[j].x & 0xffff0000u`)}, ${f(`r${q}[j].y << 16`)}, ${f(`r${q}[j].y & 0xffff0000u`)}); *(float4*)&${dst}[a * ${ld}u + i + 4u] = make_float4(${f(`r${q}[j].z << 16`)}, ${f(`r${q}[j].z & 0xffff0000u`)}, ${f(`r${q}[j].w << 16`)}, ${f(`r${q}[j].w & 0xffff0000u`)});`;
      const store = `#pragma unroll
  for (u32 j = 0; j < ${J}u; ++j) { ${idx} ${inRange ? `if (${inRange}) ` : ""}{ ${put} } }
`;
      return { issue, store };
    });
    return `  // every load of the block in flight, then the stores
${parts.map((p) => p.issue).join("")}${parts.map((p) => p.store).join("")}`;
  };
  // the chunk's log decays into eW's slots (one load a thread, beside the other loads), then after the loads' barrier
  // G[a] = sum_{s <= a} ld_s by thread a (the serial sum's order), a barrier, and the exponent rows over the log decays
  const gPrefix = dec ? `  if (t < ${C}u) sE[t] = t < used ? LD[${row("t")}] : 0.f;\n` : "";
  const exps = dec
    ? `  if (t < ${C}u) {
    double gsum = 0.0;
    for (u32 s = 0; s <= t; ++s) gsum += (double)sE[s];
    sG[t + 1u] = gsum;
    if (t == 0u) sG[0] = 0.0;
  }
  __syncthreads();
  // eW[a] = exp(G[a-1]), eQ[a] = exp(G[a]), eC[a] = exp(G_C - G[a])
  for (u32 a = t; a < ${C}u; a += ${NT}u) { sE[a] = expf((float)sG[a]); sE[${C}u + a] = expf((float)sG[a + 1u]); sE[${2 * C}u + a] = expf((float)(sG[${C}u] - sG[a + 1u])); }
`
    : "";
  const args = op === "fwd"
    ? `const ${TIN}* __restrict__ U, const ${TIN}* __restrict__ W, const ${TIN}* __restrict__ KK, const ${TIN}* __restrict__ VV, const float* __restrict__ LD, int B, int T, int H, float* __restrict__ TI, float* __restrict__ M, float* __restrict__ X, float* __restrict__ BM, float* __restrict__ NN, float* __restrict__ A`
    : `const ${TIN}* __restrict__ Q, const ${TIN}* __restrict__ U, const ${TIN}* __restrict__ W, const ${TIN}* __restrict__ DY, const float* __restrict__ LD, const float* __restrict__ TI, int B, int T, int H, float* __restrict__ M, float* __restrict__ X, float* __restrict__ BM, float* __restrict__ NN, float* __restrict__ A`;
  const head = `
extern "C" __global__ void __launch_bounds__(${NT}) ${deltaPrepEntry(c)}(${args}) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  const u32 t = threadIdx.x, nC = ((u32)T + ${C - 1}u) / ${C}u, n = blockIdx.x;
  if (n >= (u32)B * (u32)H * nC) return;
  const u32 c = n % nC, bh = n / nC, h = bh % (u32)H, b = bh / (u32)H, t0 = c * ${C}u;
  const u32 used = (u32)T - t0 < ${C}u ? (u32)T - t0 : ${C}u;  // slots in use (the rest: identity steps)
${dec ? "  double* sG = (double*)seqc_smem_raw;  // sG[a + 1] = G[a], sG[0] = 0\n" : ""}${key ? "  double* sGb = (double*)seqc_smem_raw;  // sGb[tau K + i] = G[4 tau - 1, i]\n" : ""}  float* smf = (float*)seqc_smem_raw;
${dec ? `  float* sE = smf + ${at.E};  // eW [C], eQ [C], eC [C]\n` : ""}${buffers}`;
  /** Tinv (zeros above the diagonal) into sTi from Luu in sL (both [C][ld]); `tmp` (>= 16 ld floats) holds the block
   * rows' products. */
  const tinv = (ld: number, tmp: string) => `${tinvDiag(ld)}${tinvRows(ld, tmp)}`;
  /** Tinv's diagonal blocks (and the zeros above them), then a barrier. */
  const tinvDiag = (ld: number) => `  // Tinv's 16 x 16 diagonal blocks: thread t < C owns column t, forward substitution down its block in registers
  // (x[f] = 0 above the diagonal, so every row sums over all f < a), then zeros above the block
  if (t < ${C}u) {
    const u32 j = t % 16u, d0 = t - j;
    float x[16];
#pragma unroll
    for (u32 a = 0; a < 16u; ++a) {
      float s = 0.f;
#pragma unroll
      for (u32 f = 0; f < a; ++f) s = fmaf(sL[(d0 + a) * ${ld}u + d0 + f], x[f], s);
      x[a] = a == j ? 1.f : a > j ? s : 0.f;
    }
#pragma unroll
    for (u32 a = 0; a < 16u; ++a) sTi[(d0 + a) * ${ld}u + t] = x[a];
    for (u32 a = 0; a < d0; ++a) sTi[a * ${ld}u + t] = 0.f;
  }
  __syncthreads();
`;
  /** Tinv's block rows below the diagonal blocks (fp32 FMAs), each round ending in a barrier. */
  const tinvRows = (ld: number, tmp: string) => {
    const NB = C / 16;
    return `  // block rows r = 1 .. ${NB - 1}: P = L[r, 0:r] Tinv[0:r, 0:r] (rows 16 r.., columns 0..16 r), then Tinv[r, 0:r] = Tinv[r, r] P
  for (u32 r = 1; r < ${NB}u; ++r) {
    const u32 r0 = 16u * r, w = r0;
    for (u32 x = t; x < 16u * w; x += ${NT}u) {
      const u32 a = r0 + x / w, j = x % w;
      float s0 = 0.f, s1 = 0.f;
      for (u32 f = (j / 16u) * 16u; f < r0; f += 2u) { s0 = fmaf(sL[a * ${ld}u + f], sTi[f * ${ld}u + j], s0); s1 = fmaf(sL[a * ${ld}u + f + 1u], sTi[(f + 1u) * ${ld}u + j], s1); }
      ${tmp}[(x / w) * ${ld}u + j] = s0 + s1;
    }
    __syncthreads();
    for (u32 x = t; x < 16u * w; x += ${NT}u) {
      const u32 a = r0 + x / w, j = x % w;
      float s = 0.f;
      for (u32 f = r0; f <= a; ++f) s = fmaf(sTi[a * ${ld}u + f], ${tmp}[(f - r0) * ${ld}u + j], s);
      sTi[a * ${ld}u + j] = s;
    }
    __syncthreads();
  }
`;
  };
  const kp = key ? keyParts({ op, C, K, batched: !!c.batched, ...(c.wout === "mn" ? { wout: "mn" as const } : {}) }, NT, keyLay, in4) : null;
  const aOut = kp ? kp.aOut : `  if (t == 0u) A[n] = ${dec ? `expf((float)sG[${C}u])` : "1.f"};\n`;
  // prep_bwd's NN = Wd straight from W, 4 values a thread
  const nnBwd = `  for (u32 x = t; x < ${(C * K) / 4}u; x += ${NT}u) {
    const u32 a = x / ${K / 4}u, i4 = x % ${K / 4}u;
    float4 v = ${in4("W", K, "a", "i4")};
${dec ? `    const float e = ${eW("a")};\n    v.x *= e; v.y *= e; v.z *= e; v.w *= e;\n` : ""}    *(float4*)&NN[(size_t)n * ${C * K}u + 4u * x] = v;
  }
`;
  // TI out of / into sTi [C][ld], a float4 a thread
  const tiStore = (ld: number) => `  for (u32 x = t; x < ${(C * C) / 4}u; x += ${NT}u) { const u32 a = x / ${C / 4}u, f4 = x % ${C / 4}u; *(float4*)&TI[(size_t)n * ${C * C}u + 4u * x] = *(const float4*)&sTi[a * ${ld}u + 4u * f4]; }\n`;
  const tiLoad = (ld: number) => `  for (u32 x = t; x < ${(C * C) / 4}u; x += ${NT}u) { const u32 a = x / ${C / 4}u, f4 = x % ${C / 4}u; *(float4*)&sTi[a * ${ld}u + 4u * f4] = *(const float4*)&TI[(size_t)n * ${C * C}u + 4u * x]; }\n`;
  /** The kernel's front up to its scores (prep_bwd: and NN = Wd): the operands' `loads`, then with a per-key decay Gl's
   * log decays and delta-prep-key.ts's passes, else G's prefix, the exponent rows and the `scores` (under `what`). */
  const front = (loads: string, what: string, scores: string) => kp
    ? kp.front(c.batched ? loads : `${loads}${(keyLay.rows ? loadR : loadT)("sGl", "LD", K, keyLay.ld)}`)
    : `${loads}${gPrefix}  __syncthreads();
${exps}  // ${what}
${scores}  __syncthreads();
${op === "fwd" ? "" : `  // NN = Wd, A out\n${nnBwd}`}`;
  return { dec, ex, eW, eQ, eC, times, row, loadT, loadR, rowLoads, head, front, tinv, tinvDiag, aOut, tiStore, tiLoad, gPrefix, exps };
}

/** One kernel's CUDA text (no prelude: DELTA_PRELUDE goes once before a module's kernels). */
export function deltaPrepSource(c: DeltaPrepConfig<DeltaPrepDecay>): string {
  check(c);
  if (c.staged) return deltaPrepStagedSource(c);
  if (c.math) return deltaPrepMmaSource(c);
  const { C, K, V, op } = c, NT = DELTA_PREP_THREADS, LC = C + 4;
  const { at } = layout(c);
  const { dec, ex, eW, eQ, eC, times, loadT, loadR, head, front, tinv, aOut, tiStore, tiLoad } = prepParts(c, at);
  // scores [a][f] of two transposed [K][LC] operands, masked (f < a strict, else f <= a) and decayed, into a [C][LC]
  // buffer, every entry written (zeros where masked)
  const scores = (dst: string, xa: string, xf: string, strict: boolean) => {
    const mask = strict ? "f < a" : "f <= a";
    const e = strict ? ex("a", "f + 1u") : ex("a + 1u", "f + 1u");
    return tiles(C, C, NT, `    for (u32 i = 0; i < ${K}u; ++i) {
      ${vec("ap", `${xa}[i * ${LC}u + 4u * ti]`)}
      ${vec("bj", `${xf}[i * ${LC}u + 4u * tj]`)}
${outer}
    }`, maskedRows(dst, LC, "f", mask, e));
  };
  const chunk = (rows: number, W: number) => `(size_t)n * ${rows * W}u + `;
  if (op === "fwd") {
    const loads = `${loadT("sUT", "U", K, LC)}${loadT("sWT", "W", K, LC)}${loadT("sKT", "KK", K, LC)}${loadR("sV", "VV", V, V)}`;
    // Luu [a][f], Luk [a][f]: with a per-key decay, delta-prep-key.ts's passes (the operands end up as Wd, Ud, Kd)
    const scored = front(loads, "Luu [a][f], Luk [a][f]", `${scores("sL", "sWT", "sUT", true)}${scores("sLk", "sWT", "sKT", true)}`);
    return `${head}  float* sTi = sUT;   // Tinv [C][LC] once NN is out
  float* sTLT = sKT;  // the block rows' products, then (Tinv Luk)^T [C][LC], once BM is out
${scored}  // NN = Ud, A out; BM = Kd^T V [K][V]
  for (u32 x = t; x < ${C * K}u; x += ${NT}u) { const u32 a = x / ${K}u, i = x % ${K}u; NN[(size_t)n * ${C * K}u + x] = ${times(eC("a"))}sUT[i * ${LC}u + a]; }
${aOut}${tiles(K, V, NT, `    for (u32 f = 0; f < ${C}u; ++f) {
      ${column("ap", "sKT", "ti", "f", LC, dec ? `${eC("f")} * ` : "")}
      ${vec("bj", `sV[f * ${V}u + 4u * tj]`)}
${outer}
    }`, store("BM", V, chunk(K, V)))}  __syncthreads();
${tinv(LC, "sTLT")}  // Tinv^T into L's buffer; TI out
  for (u32 x = t; x < ${C * C}u; x += ${NT}u) { const u32 a = x / ${C}u, f = x % ${C}u; sL[f * ${LC}u + a] = sTi[a * ${LC}u + f]; }
${tiStore(LC)}  __syncthreads();
  // M = Tinv Wd [C][K] (Tinv^T in sL; f <= a)
${tiles(C, K, NT, `    for (u32 f = 0; f < 4u * ti + 4u; ++f) {
      ${vec("ap", `sL[f * ${LC}u + 4u * ti]`)}
      ${column("bj", "sWT", "tj", "f", LC, dec ? `${eW("f")} * ` : "")}
${outer}
    }`, store("M", K, chunk(C, K)))}  // TL = Tinv Luk [C][C] (f < g <= a), stored transposed
${tiles(C, C, NT, `    for (u32 g = 4u * tj; g < 4u * ti + 4u; ++g) {
      ${vec("ap", `sL[g * ${LC}u + 4u * ti]`)}
      ${vec("bj", `sLk[g * ${LC}u + 4u * tj]`)}
${outer}
    }`, `${unroll}
    for (u32 p = 0; p < 4u; ++p)
${unroll}
      for (u32 j = 0; j < 4u; ++j) sTLT[(4u * tj + j) * ${LC}u + 4u * ti + p] = acc[p][j];`)}  __syncthreads();
  // X = TL V [C][V] (f < a)
${tiles(C, V, NT, `    for (u32 f = 0; f < 4u * ti + 3u; ++f) {
      ${vec("ap", `sTLT[f * ${LC}u + 4u * ti]`)}
      ${vec("bj", `sV[f * ${V}u + 4u * tj]`)}
${outer}
    }`, store("X", V, chunk(C, V)))}}
`;
  }
  const loads = `${loadT("sQT", "Q", K, LC)}${loadT("sUT", "U", K, LC)}${loadR("sDY", "DY", V, V)}${tiLoad(LC)}`;
  // Pu [a][f] (row); with a per-key decay, delta-prep-key.ts's passes (NN = Wd first, the operands end up as Qd, Ud)
  return `${head}${front(loads, "Pu [a][f] (row)", scores("sPu", "sQT", "sUT", false))}${aOut}  // PD = Pu^T dY [C][V] (rows a >= f)
${tiles(C, V, NT, `    for (u32 a = 4u * ti; a < ${C}u; ++a) {
      ${vec("ap", `sPu[a * ${LC}u + 4u * ti]`)}
      ${vec("bj", `sDY[a * ${V}u + 4u * tj]`)}
${outer}
    }`, store("sPD", V))}  // BM = Qd^T dY [K][V]
${tiles(K, V, NT, `    for (u32 a = 0; a < ${C}u; ++a) {
      ${column("ap", "sQT", "ti", "a", LC, dec ? `${eQ("a")} * ` : "")}
      ${vec("bj", `sDY[a * ${V}u + 4u * tj]`)}
${outer}
    }`, store("BM", V, chunk(K, V)))}  // M = Tinv^T Ud [C][K] (rows a >= f)
${tiles(C, K, NT, `    for (u32 a = 4u * ti; a < ${C}u; ++a) {
      ${vec("ap", `sTi[a * ${LC}u + 4u * ti]`)}
      ${column("bj", "sUT", "tj", "a", LC, dec ? `${eC("a")} * ` : "")}
${outer}
    }`, store("M", K, chunk(C, K)))}  __syncthreads();
  // X = Tinv^T PD [C][V]
${tiles(C, V, NT, `    for (u32 a = 4u * ti; a < ${C}u; ++a) {
      ${vec("ap", `sTi[a * ${LC}u + 4u * ti]`)}
      ${vec("bj", `sPD[a * ${V}u + 4u * tj]`)}
${outer}
    }`, store("X", V, chunk(C, V)))}}
`;
}

/** A module of these configurations (default DELTA_PREP_CONFIGS): DELTA_PRELUDE (and MMA_TF32_PRELUDE where a twin is
 * among them) then each kernel; `patch` edits the
 * source (tests: deliberately broken copies). */
export function deltaPrepModule<D extends DeltaPrepDecay = DeltaDecay>(configs: readonly DeltaPrepConfig<D>[] = DELTA_PREP_CONFIGS as readonly DeltaPrepConfig<D>[], patch?: (src: string) => string): { source: string; kernels: DeltaPrepKernel<D>[] } {
  const kernels = configs.map(deltaPrepKernel);
  const source = DELTA_PRELUDE + (configs.some((c) => c.math) ? MMA_TF32_PRELUDE : "") + configs.map(deltaPrepSource).join("");
  return { source: patch ? patch(source) : source, kernels };
}
