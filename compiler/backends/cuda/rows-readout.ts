/**
 * The per-key-decay readout of a rank-one-updated matrix state, as one model-independent CUDA kernel
 * (the torch target's transposed cores for a per-key log decay: runtime/torch/seqc_chunked.py
 * PER_KEY_TRANSPOSED "kernel"; dq = S dy in forward time, dk = G v in reversed time):
 *
 *   S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T      (S_0 given or zero; per batch and head)
 *   out_r,t = S_t c_r,t                                       (one output per readout r)
 *
 * ld, a_p: [B, T, H*K]; b_p, c_r: [B, T, H*V]; S_0: [B, H, K, V]; out_r: [B, T, H*K], all float32 (twins that read
 * b_p, c_r and possibly a_p as bf16 words, widened as the tiles load: ROWS_READOUT_LOW; the walk itself is the same).
 * Each key row i of S is its own recurrence (its decay exp(ld_t[i]) scales only row i), so a block takes
 * KR key rows of one (batch, head) and a slice of VS = TV * VT values, TV threads per row with VT values
 * each in registers, and walks the tokens in order: per token one multiply by exp(ld_t[i]) <= 1, one
 * multiply-add per pair, and per readout a dot product over the thread's values summed over the row's TV
 * lanes with warp shuffles. Tiles of TT tokens of ld (as exp), a, b, c are staged in shared memory
 * (coalesced loads, one exp per (token, row)), the outputs of a tile stored after it. Only exp of a single
 * step's log decay is ever taken: no overflow, no cancellation, whatever the decays (the chunked form with
 * the chunk-local decays factored out exponentiates differences of cumulative sums instead).
 *
 * Why not tensor cores: this state walk does K V multiply-adds per token and pair for the update and K V per
 * readout, the same as a chunked form's inter-chunk products alone (which add intra-chunk ones); the chunked
 * form pays only through bf16 / tf32 tensor cores, and these products feed the log decays' adjoint, whose
 * cancelling sums q.dq - k.dk went past 1e-2 with bf16 operands inside the cores (bench/RESULTS.md,
 * "Mixed-I/O transposed cores"). So fp32 FMA throughout.
 *
 * Where V > VS, a value slice per block (blockIdx.y % slices) and out_r holds one partial sum per slice ([slices, B, T, H*K],
 * summed by the caller). The tile configurations are data (ROWS_READOUT_TILES, in preference order).
 *
 * Segments (more blocks than B H K / KR: one walk of all T tokens per key-row block left 8-16 warps per SM, each token
 * step a dependent chain): T is split into segments of `seg` tokens (blockIdx.y / slices), walked in parallel in three
 * launches. (1) `ends`: each segment but the last walked from a zero state without readouts, its end state E_z written
 * to slot z + 1 of a starts buffer St [nseg, B, H, K, V] and its decay product P_z[i] = prod_t exp(ld_t[i]) (a product
 * of numbers <= 1) to P [nseg, B, H*K]. (2) `scan`: per state element, slot 0 = S_0 (or 0), slot z = P_{z-1} slot z-1 +
 * E_{z-1}: the segments' true start states. (3) the readout kernel walks each segment from its start state (slot z) as
 * the one-segment walk does (entry suffix _g). Still only exp of one step's log decay. One segment is the plain walk from
 * S0 (the entry without _g, whose code is kept as it was timed: giving it the segment decomposition too cost it 8
 * registers under ptxas and 0.60 -> 0.84 ms on the H100). Measured there (bench/RESULTS.md, "The rows readout in
 * segments"): segments 0.67-0.69 ms per product at B=8 T=2048 H=16 K=V=64, the plain walk 0.60, so segments are opt-in.
 */

/** One compiled configuration of the kernel: pairs / readouts, key rows per block, threads per row, values per thread, tokens per tile. */
export interface RowsReadoutConfig {
  pairs: number;
  readouts: number;
  /** key rows per block */
  kr: number;
  /** threads per key row (a power of two dividing 32) */
  tv: number;
  /** values per thread (a multiple of 4: float4 loads from shared memory) */
  vt: number;
  /** tokens per shared-memory tile */
  tt: number;
  /** how a readout's dot product is summed over the row's lanes: "shfl" (default) warp shuffles in every token step;
   * "smem" each lane's partial sum stored to shared memory and the lanes' sums added after the tile (no cross-lane
   * step in the token walk, which is unrolled by 4) */
  red?: "shfl" | "smem";
  /** which operands are bf16 (raw 16-bit words, widened to float32 as the tiles load: exact): none (default, every
   * operand float32), "bc" the b_p and c_r, "abc" also the a_p; ld and S0 stay float32 (ROWS_READOUT_LOW) */
  low?: RowsLow;
}

/** The operands a kernel reads as bf16 words: "bc" (b_p, c_r) or "abc" (a_p, b_p, c_r). */
export type RowsLow = "bc" | "abc";

/** The bf16-operand twins a module holds beside the float32 kernels (the torch target's bf16 step: GLA's dq readout
 * S dy reads k, v, dy as the bf16 inputs and cotangent are, "abc"; its dk readout G v reads the reversed dy and v in bf16
 * and q (scaled by prep, float32) as is, "bc"), and the tiles (the first of ROWS_READOUT_TILES) they are compiled for. */
export const ROWS_READOUT_LOW: readonly RowsLow[] = ["bc", "abc"];
export const ROWS_READOUT_LOW_TILES = 2;

/** One launchable entry: its name, threads per block and dynamic shared memory. */
export interface RowsReadoutLaunch {
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** A kernel of the module as the runtime launches it (seqc_chunked.rows_readout_kernel): the entry walks all T tokens
 * (one segment); several segments launch `ends` (the segments' end states and decay products, same tile), `scan`
 * (their start states), then `segments` (the readout from each segment's start: the entry's code with the segment
 * decomposition, name suffix _g, one more argument). */
export interface RowsReadoutKernel extends RowsReadoutConfig, RowsReadoutLaunch {
  /** values per block (a slice of V): tv * vt */
  vs: number;
  segments: RowsReadoutLaunch;
  ends: RowsReadoutLaunch;
  scan: RowsReadoutLaunch;
}

/** Threads per block of the start-state scan (one state element a thread). */
export const ROWS_SCAN_THREADS = 256;
export const ROWS_SCAN_ENTRY = "seqc_rows_scan";

/** The tile shapes each (pairs, readouts) is compiled with, in preference order (the runtime takes the first whose
 * value slice covers V, else the widest). Ordered by their time at (B, T, H, K = V) = (8, 2048, 16, 64) on the H100
 * (bench/RESULTS.md, "GLA's transposed products on the rows readout kernel": 0.60-0.63 ms for k64 t4 v16, 0.65-0.66
 * for k32 t8 v8, up to 0.98 for k32 t8 v16). The "smem" reductions after them (reached only by name, seqc_chunked.ROWS_TILE):
 * in segments k64 t4 v16 n16 smem was the fastest tile (0.672 ms, "The rows readout in segments"); their one-segment
 * code as emitted here has not been timed. */
export const ROWS_READOUT_TILES: readonly Omit<RowsReadoutConfig, "pairs" | "readouts">[] = [
  { kr: 64, tv: 4, vt: 16, tt: 32 },
  { kr: 32, tv: 8, vt: 8, tt: 32 },
  { kr: 32, tv: 4, vt: 16, tt: 32 },
  { kr: 16, tv: 8, vt: 8, tt: 32 },
  { kr: 16, tv: 4, vt: 16, tt: 64 },
  { kr: 32, tv: 16, vt: 4, tt: 32 },
  { kr: 32, tv: 8, vt: 16, tt: 32 },
  { kr: 64, tv: 4, vt: 16, tt: 16, red: "smem" },
  { kr: 32, tv: 8, vt: 8, tt: 16, red: "smem" },
  { kr: 32, tv: 4, vt: 16, tt: 32, red: "smem" },
];

export function rowsReadoutEntry(c: RowsReadoutConfig): string {
  return `seqc_rows_readout_p${c.pairs}_r${c.readouts}_k${c.kr}_t${c.tv}_v${c.vt}_n${c.tt}${c.red === "smem" ? "_s" : ""}${c.low ? `_l${c.low}` : ""}`;
}

/** The segments' end-state kernel of a tile (no readouts, so one per (pairs, kr, tv, vt, tt)). */
export function rowsEndsEntry(c: RowsReadoutConfig): string {
  return `seqc_rows_ends_p${c.pairs}_k${c.kr}_t${c.tv}_v${c.vt}_n${c.tt}${c.low ? `_l${c.low}` : ""}`;
}

function check(c: RowsReadoutConfig): void {
  const pow2 = (x: number) => x > 0 && (x & (x - 1)) === 0;
  if (!pow2(c.tv) || c.tv > 32) throw new Error(`rows readout: tv = ${c.tv} must be a power of two <= 32`);
  if (c.vt < 4 || c.vt % 4) throw new Error(`rows readout: vt = ${c.vt} must be a positive multiple of 4`);
  if ((c.kr * c.tv) % 32) throw new Error(`rows readout: kr * tv = ${c.kr * c.tv} must be a multiple of 32 (whole warps)`);
  if (c.pairs < 1 || c.readouts < 1 || c.tt < 1) throw new Error("rows readout: needs a pair, a readout and a token tile");
}

/** Shared memory of a configuration: exp(ld) and a_p tiles [TT][KR], outputs [TT][KR] per readout ("smem": the lanes'
 * partial sums [TT][KR][TV]), b_p and c_r tiles [TT][VS]. */
export function rowsReadoutShared(c: RowsReadoutConfig): number {
  const vs = c.tv * c.vt;
  const out = c.red === "smem" ? c.kr * c.tv : c.kr;
  return 4 * c.tt * (c.kr * (1 + c.pairs) + out * c.readouts + vs * (c.pairs + c.readouts));
}

/** Shared memory of a tile's end-state kernel: exp(ld) and a_p tiles [TT][KR], b_p tiles [TT][VS]. */
export function rowsEndsShared(c: RowsReadoutConfig): number {
  return 4 * c.tt * (c.kr * (1 + c.pairs) + c.tv * c.vt * c.pairs);
}

/** The block's place: (batch, head), first key row, value slice and (segmented) the segment [ts, te) (shared by the
 * readout and ends kernels). Unsegmented: exactly the lines of the one-segment kernel as timed before segments existed
 * (blockIdx.y the value slice; bench/RESULTS.md: its ptxas allocation and time differ from the segmented lines'). */
function blockPlace(KR: number, VS: number, TV: number, segmented: boolean): string {
  return segmented
    ? `  const u32 kb = (K + ${KR - 1}u) / ${KR}u, ns = (V + ${VS - 1}u) / ${VS}u;
  const u32 bh = blockIdx.x / kb, k0 = (blockIdx.x % kb) * ${KR}u;
  const u32 b = bh / H, h = bh % H;
  const u32 z = blockIdx.y / ns, sl = blockIdx.y % ns;
  const u32 v0 = sl * ${VS}u;
  const u32 ts = z * seg, te = T - ts < seg ? T : ts + seg;
  const u32 tid = threadIdx.x, r = tid / ${TV}u, lane = tid % ${TV}u;
  const u32 i = k0 + r;
  const size_t HK = (size_t)H * K, HV = (size_t)H * V;`
    : `  const u32 kb = (K + ${KR - 1}u) / ${KR}u;
  const u32 bh = blockIdx.x / kb, k0 = (blockIdx.x % kb) * ${KR}u;
  const u32 b = bh / H, h = bh % H;
  const u32 v0 = blockIdx.y * ${VS}u;
  const u32 tid = threadIdx.x, r = tid / ${TV}u, lane = tid % ${TV}u;
  const u32 i = k0 + r;
  const size_t HK = (size_t)H * K, HV = (size_t)H * V;`;
}

/** A token tile's loads into shared memory: exp(ld) and a_p [TT][KR] (rows), b_p (and c_r) [TT][VS] (values). */
function tileLoads(KR: number, VS: number, TT: number, NT: number, ps: number[], rs: number[], offA: (p: number) => number, offB: (p: number) => number, offC: (r: number) => number, low?: RowsLow): string {
  const la = (x: string) => (low === "abc" ? `seqc_rows_bf16(${x})` : x);
  const lb = (x: string) => (low ? `seqc_rows_bf16(${x})` : x);
  return `    for (u32 x = tid; x < ${TT * KR}u; x += ${NT}u) {
      const u32 tt = x / ${KR}u, rr = x % ${KR}u, ii = k0 + rr;
      const bool ok = tt < n && ii < K;
      const size_t off = ((size_t)b * T + t0 + tt) * HK + (size_t)h * K + ii;
      sm[x] = ok ? expf(ld[off]) : 1.f;
${ps.map((p) => `      sm[${offA(p)} + x] = ok ? ${la(`a${p}[off]`)} : 0.f;`).join("\n")}
    }
    for (u32 x = tid; x < ${TT * VS}u; x += ${NT}u) {
      const u32 tt = x / ${VS}u, j = v0 + x % ${VS}u;
      const bool ok = tt < n && j < V;
      const size_t off = ((size_t)b * T + t0 + tt) * HV + (size_t)h * V + j;
${ps.map((p) => `      sm[${offB(p)} + x] = ok ? ${lb(`b${p}[off]`)} : 0.f;`).join("\n")}
${rs.map((q) => `      sm[${offC(q)} + x] = ok ? ${lb(`c${q}[off]`)} : 0.f;`).join("\n")}
    }`;
}

/** The token step's decay and rank-one updates of the thread's values (register S). */
function updates(G: number, VS: number, KR: number, ps: number[], offA: (p: number) => number, offB: (p: number) => number, col: (g: number) => string): string {
  return ps.map((p) => `      {
        const float av = sm[${offA(p)} + tt * ${KR}u + r];
        const float* row = sm + ${offB(p)} + tt * ${VS}u;
${Array.from({ length: G }, (_, g) => `        { const float4 w = *(const float4*)(row + ${col(g)}); S[${4 * g}] = fmaf(av, w.x, S[${4 * g}]); S[${4 * g + 1}] = fmaf(av, w.y, S[${4 * g + 1}]); S[${4 * g + 2}] = fmaf(av, w.z, S[${4 * g + 2}]); S[${4 * g + 3}] = fmaf(av, w.w, S[${4 * g + 3}]); }`).join("\n")}
      }`).join("\n");
}

function kernelSource(c: RowsReadoutConfig, segmented: boolean): string {
  check(c);
  const { pairs: NP, readouts: NR, kr: KR, tv: TV, vt: VT, tt: TT } = c;
  const VS = TV * VT, NT = KR * TV, G = VT / 4;
  const smem = c.red === "smem";
  const OW = smem ? KR * TV : KR; // floats per token of a readout's output tile
  const ps = Array.from({ length: NP }, (_, p) => p);
  const rs = Array.from({ length: NR }, (_, r) => r);
  const ta = c.low === "abc" ? "unsigned short" : "float", tb = c.low ? "unsigned short" : "float";
  const args = [
    "const float* __restrict__ ld",
    ...ps.map((p) => `const ${ta}* __restrict__ a${p}`),
    ...ps.map((p) => `const ${tb}* __restrict__ b${p}`),
    ...rs.map((r) => `const ${tb}* __restrict__ c${r}`),
    "const float* __restrict__ S0",
    ...rs.map((r) => `float* __restrict__ o${r}`),
    `u32 B, u32 T, u32 H, u32 K, u32 V, u32 init${segmented ? ", u32 seg" : ""}`,
  ];
  // shared memory layout (floats): E [TT][KR], A_p [TT][KR], O_r [TT][OW], then B_p, C_r [TT][VS] (16-byte aligned)
  const rowTiles = (1 + NP) * TT * KR + NR * TT * OW;
  const offA = (p: number) => (1 + p) * TT * KR;
  const offO = (r: number) => (1 + NP) * TT * KR + r * TT * OW;
  const offB = (p: number) => rowTiles + p * TT * VS;
  const offC = (r: number) => rowTiles + (NP + r) * TT * VS;
  // the thread's values: group g (of 4) at column g*TV*4 + lane*4 + e of the slice (a quarter warp's float4 loads cover 128 contiguous bytes)
  const col = (g: number) => `${g * TV * 4} + lane * 4`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${rowsReadoutEntry(c)}${segmented ? "_g" : ""}(${args.join(", ")}) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sm = (float*)seqc_smem_raw;
${blockPlace(KR, VS, TV, segmented)}
  const size_t slice = (size_t)${segmented ? "sl" : "blockIdx.y"} * B * T * HK;
${segmented ? `  // the segment's start state: slot z of S0 ([segments, B, H, K, V])
  const float* S0z = S0 + (size_t)z * B * H * K * V;
` : ""}  float S[${VT}];
#pragma unroll
  for (int g = 0; g < ${G}; ++g)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const u32 j = v0 + g * ${TV * 4}u + lane * 4u + e;
      S[g * 4 + e] = (init && i < K && j < V) ? ${segmented ? "S0z" : "S0"}[(((size_t)b * H + h) * K + i) * V + j] : 0.f;
    }
${segmented ? `  for (u32 t0 = ts; t0 < te; t0 += ${TT}u) {
    const u32 n = te - t0 < ${TT}u ? te - t0 : ${TT}u;` : `  for (u32 t0 = 0; t0 < T; t0 += ${TT}u) {
    const u32 n = T - t0 < ${TT}u ? T - t0 : ${TT}u;`}
    __syncthreads();
${tileLoads(KR, VS, TT, NT, ps, rs, offA, offB, offC, c.low)}
    __syncthreads();
${smem ? "#pragma unroll 4\n" : ""}    for (u32 tt = 0; tt < n; ++tt) {
      const float e = sm[tt * ${KR}u + r];
#pragma unroll
      for (int v = 0; v < ${VT}; ++v) S[v] *= e;
${updates(G, VS, KR, ps, offA, offB, col)}
${rs.map((q) => `      {
        const float* row = sm + ${offC(q)} + tt * ${VS}u;
        float acc0 = 0.f, acc1 = 0.f;
${Array.from({ length: G }, (_, g) => `        { const float4 w = *(const float4*)(row + ${col(g)}); acc0 = fmaf(S[${4 * g}], w.x, acc0); acc1 = fmaf(S[${4 * g + 1}], w.y, acc1); acc0 = fmaf(S[${4 * g + 2}], w.z, acc0); acc1 = fmaf(S[${4 * g + 3}], w.w, acc1); }`).join("\n")}
        float acc = acc0 + acc1;
${smem ? `        sm[${offO(q)} + tt * ${OW}u + tid] = acc;` : `${Array.from({ length: Math.log2(TV) }, (_, s) => `        acc += __shfl_sync(0xffffffffu, acc, (threadIdx.x & 31u) ^ ${TV >> (s + 1)}u);`).join("\n")}
        if (lane == 0) sm[${offO(q)} + tt * ${KR}u + r] = acc;`}
      }`).join("\n")}
    }
    __syncthreads();
    for (u32 x = tid; x < n * ${KR}u; x += ${NT}u) {
      const u32 tt = x / ${KR}u, ii = k0 + x % ${KR}u;
      if (ii >= K) continue;
      const size_t off = slice + ((size_t)b * T + t0 + tt) * HK + (size_t)h * K + ii;
${rs.map((q) => smem ? `      { const float* P = sm + ${offO(q)} + x * ${TV}u; float acc = 0.f;
#pragma unroll
        for (int l = 0; l < ${TV}; ++l) acc += P[l];
        o${q}[off] = acc; }` : `      o${q}[off] = sm[${offO(q)} + x];`).join("\n")}
    }
  }
}
`;
}

/** The segments' end states: segment z (< segments - 1; blockIdx.y / slices) walked from a zero state without readouts,
 * its end state to slot z + 1 of St [segments, B, H, K, V] and its decay product per key row (prod exp(ld_t[i]) <= 1)
 * to P [segments, B, H*K] (value slice 0 writes it). */
function endsSource(c: RowsReadoutConfig): string {
  const { pairs: NP, kr: KR, tv: TV, vt: VT, tt: TT } = c;
  const VS = TV * VT, NT = KR * TV, G = VT / 4;
  const ps = Array.from({ length: NP }, (_, p) => p);
  const ta = c.low === "abc" ? "unsigned short" : "float", tb = c.low ? "unsigned short" : "float";
  const args = [
    "const float* __restrict__ ld",
    ...ps.map((p) => `const ${ta}* __restrict__ a${p}`),
    ...ps.map((p) => `const ${tb}* __restrict__ b${p}`),
    "float* __restrict__ St",
    "float* __restrict__ P",
    "u32 B, u32 T, u32 H, u32 K, u32 V, u32 seg",
  ];
  const offA = (p: number) => (1 + p) * TT * KR;
  const offB = (p: number) => (1 + NP) * TT * KR + p * TT * VS;
  const col = (g: number) => `${g * TV * 4} + lane * 4`;
  return `
extern "C" __global__ void __launch_bounds__(${NT}) ${rowsEndsEntry(c)}(${args.join(", ")}) {
  SEQC_SMEM_DECL(seqc_smem_raw);
  float* sm = (float*)seqc_smem_raw;
${blockPlace(KR, VS, TV, true)}
  float S[${VT}];
#pragma unroll
  for (int v = 0; v < ${VT}; ++v) S[v] = 0.f;
  float pr = 1.f;
  for (u32 t0 = ts; t0 < te; t0 += ${TT}u) {
    const u32 n = te - t0 < ${TT}u ? te - t0 : ${TT}u;
    __syncthreads();
${tileLoads(KR, VS, TT, NT, ps, [], offA, offB, () => 0, c.low)}
    __syncthreads();
    for (u32 tt = 0; tt < n; ++tt) {
      const float e = sm[tt * ${KR}u + r];
      pr *= e;
#pragma unroll
      for (int v = 0; v < ${VT}; ++v) S[v] *= e;
${updates(G, VS, KR, ps, offA, offB, col)}
    }
  }
  if (i >= K) return;
  float* E = St + ((((size_t)z + 1) * B + b) * H + h) * K * V + (size_t)i * V;
#pragma unroll
  for (int g = 0; g < ${G}; ++g)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const u32 j = v0 + g * ${TV * 4}u + lane * 4u + e;
      if (j < V) E[j] = S[g * 4 + e];
    }
  if (sl == 0 && lane == 0) P[((size_t)z * B + b) * HK + (size_t)h * K + i] = pr;
}
`;
}

/** The segments' start states in place: per state element x of [B, H, K, V], slot 0 = S0 (init) or 0, then slot z =
 * P_{z-1} slot z-1 + (the end state in slot z) for z = 1 .. segments - 1. */
const SCAN_SOURCE = `
extern "C" __global__ void __launch_bounds__(${ROWS_SCAN_THREADS}) ${ROWS_SCAN_ENTRY}(float* __restrict__ St, const float* __restrict__ P, const float* __restrict__ S0, u32 B, u32 H, u32 K, u32 V, u32 nseg, u32 init) {
  const size_t n = (size_t)B * H * K * V, x = (size_t)blockIdx.x * ${ROWS_SCAN_THREADS}u + threadIdx.x;
  if (x >= n) return;
  const size_t row = x / V, rows = (size_t)B * H * K;
  float s = init ? S0[x] : 0.f;
  St[x] = s;
  for (u32 z = 1; z < nseg; ++z) {
    s = fmaf(P[(size_t)(z - 1) * rows + row], s, St[(size_t)z * n + x]);
    St[(size_t)z * n + x] = s;
  }
}
`;

export const ROWS_READOUT_PRELUDE = `// ==== seqc rows readout (model-independent; compiler/backends/cuda/rows-readout.ts) ====
typedef unsigned int u32;
#ifndef SEQC_EMU
#define SEQC_SMEM_DECL(name) extern __shared__ __align__(16) char name[]
#endif
`;

/** The bf16 operands' widening (a raw 16-bit word is the float's upper half: exact), in modules with bf16 twins. */
const ROWS_BF16_SOURCE = `__device__ __forceinline__ float seqc_rows_bf16(unsigned short x) { return __uint_as_float(((u32)x) << 16); }
`;

/** The kernels for these (pairs, readouts) shapes in every tile configuration (ROWS_READOUT_TILES, or `tiles`), in one
 * translation unit; with `low` (e.g. ROWS_READOUT_LOW) also their bf16-operand twins for the first `lowTiles` tiles, after
 * every float32 kernel (whose source stays as it was). */
export function rowsReadoutModule(shapes: readonly { pairs: number; readouts: number }[], tiles: readonly Omit<RowsReadoutConfig, "pairs" | "readouts" | "low">[] = ROWS_READOUT_TILES, low: readonly RowsLow[] = [], lowTiles = ROWS_READOUT_LOW_TILES): { source: string; kernels: RowsReadoutKernel[] } {
  const seen = new Set<string>();
  const kernels: RowsReadoutKernel[] = [];
  const configs: RowsReadoutConfig[] = [];
  for (const l of [undefined, ...low]) for (const s of shapes) for (const t of l ? tiles.slice(0, lowTiles) : tiles) configs.push(l ? { ...s, ...t, low: l } : { ...s, ...t });
  for (const c of configs) {
    const entry = rowsReadoutEntry(c);
    if (seen.has(entry)) continue;
    seen.add(entry);
    check(c);
    const ends = { entry: rowsEndsEntry(c), threads: c.kr * c.tv, sharedBytes: rowsEndsShared(c) };
    const threads = c.kr * c.tv, sharedBytes = rowsReadoutShared(c);
    kernels.push({ ...c, entry, threads, vs: c.tv * c.vt, sharedBytes, segments: { entry: `${entry}_g`, threads, sharedBytes }, ends, scan: { entry: ROWS_SCAN_ENTRY, threads: ROWS_SCAN_THREADS, sharedBytes: 0 } });
  }
  const ends = [...new Map(kernels.map((k) => [k.ends.entry, k])).values()];
  const source = kernels.map((k) => kernelSource(k, false) + kernelSource(k, true)).join("") + ends.map((k) => endsSource(k)).join("");
  return { source: ROWS_READOUT_PRELUDE + (low.length ? ROWS_BF16_SOURCE : "") + source + SCAN_SOURCE, kernels };
}
