/**
 * The token-aligned delta backward's kernel module for the torch target (<Model>.torch.json "kernels"."deltaBwd";
 * runtime/torch/seqc_delta_bwd.py delta_launcher; docs/delta-backward.md): one translation unit with the
 * kernels' preludes and every kernel of a model's decay mode, each record carrying what the runtime picks and launches
 * by: op ("prep_fwd" / "prep_bwd" / "walk" / "adj"), decay, C, K, V, tin (the per-token inputs' type, "f32" / "bf16";
 * the walk reads float32 only: "f32"), cols (value columns a block: the walk's grid is (B H, V / cols); the per-chunk
 * kernels take all V, grid N), entry, threads, sharedBytes, math on the tensor-core twins only ("tf32": entries
 * ending _tf32; "tf32x3", the walks' twins: _tf32x3; absent: fp32 FMAs on the SIMT cores), and split on the walks for few (b, h) rows only (delta-walk.ts
 * DELTA_WALK_FEW_CONFIGS: each phase's sum split over split thread groups; absent: 1).
 *
 * The walks of a (C, K, V): the default one first (cols 32 at V = 64, 16 at V = 128), then the one for few rows (cols
 * 8, split 4 at K = 64, 2 at K = 128). The runtime's rule: the default when its grid fills the card,
 * B H (V / cols) >= the SM count (132 on the H100 / H200: B H >= 66 at V = 64, >= 17 at V = 128), else the split one
 * (grid (B H, V / 8)); a runtime taking the first walk of a shape gets the default.
 *
 * Decay "key" (RWKV-7, ld [B, T, H, K]): prep's per-key kernels (delta-prep-key.ts via delta-prep.ts, K = V = 64 and
 * 128, f32 and bf16 inputs; A written [N, K]), the per-key walks (A [N, K]; seqc_delta_walk_key_*) and the per-key
 * adjoint (delta-adjoint-key.ts, K = V = 64 only, f32 and bf16 inputs; dLD [B, T, H, K]); their TF32 twins (bf16
 * inputs, math "tf32"): prep's (delta-prep-key.ts's row layouts with delta-prep-mma.ts's mma, K = V = 64 and 128) and the
 * adjoint's (delta-adjoint-key-mma.ts, K = V = 64; delta-adjoint-key-mma-k128.ts, K = V = 128 over two key blocks); the
 * per-key adjoint's bf16 twins at K = V = 64 and 128 (math "bf16", delta-adjoint-key-mma.ts DELTA_ADJ_KEY_BF16_CONFIGS,
 * delta-adjoint-key-mma-k128.ts DELTA_ADJ_KEY_K128_BF16_CONFIGS: mma m16n8k16 over pairs of the TF32 twins' k8 steps; the
 * runtime takes them only under LR_DELTA_KEY_MMA "bf16"); then the factored twin at K = V = 64 (math "bf16f",
 * DELTA_ADJ_KEY_FAC_CONFIGS: the diagonal 16-slot blocks by TF32 mma too where a chunk's decays allow; LR_DELTA_KEY_MMA
 * "bf16f", the default), then the K = 128 one (delta-adjoint-key-mma-k128.ts DELTA_ADJ_KEY_K128_FAC_CONFIGS; it spills 4
 * bytes on sm_90, one register, accepted for its H200 gain: call D15, RWKV-7's bf16 step 26.3 -> 22.1 ms at (4, 8192, 16, 128)).
 *
 * Kernels, C = 64: the per-chunk preparations of both walks (compiler/backends/cuda/delta-prep.ts, K = V = 64 and 128,
 * f32 and bf16 inputs), the walk over the chunks, both directions (delta-walk.ts, K = V = 64 and 128), the per-chunk
 * adjoint (delta-adjoint.ts, K = V = 64 and 128, f32 and bf16 inputs); then the TF32 twins of prep (delta-prep-mma.ts,
 * bf16 inputs, K = V = 64 and 128), of the walks (delta-walk-mma.ts, 3xTF32: math "tf32x3", float32 like the walks,
 * K = V = 64 and 128, every decay mode; a runtime asked for math takes it for a shape's default walk; decay none / scalar
 * also the walks for many rows at K = V = 128, DELTA_WALK_WIDE_CONFIGS with walkFor "many": 64 columns a block over 8
 * warps, 3xTF32 (taken with math where B H (V / 64) 2 >= the SM count) and plain TF32 (LR_DELTA_WALK "tf32")) and of the adjoint
 * (delta-adjoint-mma.ts, bf16 inputs, K = V = 64 and 128), after the fp32 kernels; the adjoint's bf16 twins (math "bf16":
 * delta-adjoint-bf16.ts, mma m16n8k16 bf16, K = V = 64 and 128, decay none / scalar) last.
 */
import { DELTA_ADJ_CONFIGS, DELTA_ADJ_K128_CONFIGS, DELTA_ADJ_K128_MMA_CONFIGS, DELTA_ADJ_MMA_CONFIGS, DELTA_ADJ_PRELUDE, deltaAdjKernel, deltaAdjSource, type DeltaAdjConfig } from "./delta-adjoint.ts";
import { DELTA_ADJ_BF16_CA_CONFIGS, DELTA_ADJ_BF16_CONFIGS, DELTA_ADJ_BF16_OUT_CONFIGS, DELTA_ADJ_BF16_ZIN_CONFIGS } from "./delta-adjoint-bf16.ts";
import { DELTA_ADJ_KEY_CONFIGS, deltaAdjKeyKernel, deltaAdjKeySource, type DeltaAdjKeyConfig } from "./delta-adjoint-key.ts";
import { DELTA_ADJ_KEY_BF16_CONFIGS, DELTA_ADJ_KEY_FAC_CONFIGS, DELTA_ADJ_KEY_MMA_CONFIGS, deltaAdjKeyMmaKernel, deltaAdjKeyMmaSource, type DeltaAdjKeyMmaConfig } from "./delta-adjoint-key-mma.ts";
import { DELTA_ADJ_KEY_K128_BF16_CONFIGS, DELTA_ADJ_KEY_K128_FAC_CONFIGS, DELTA_ADJ_KEY_K128_MMA_CONFIGS, deltaAdjKeyMmaK128Kernel, deltaAdjKeyMmaK128Source } from "./delta-adjoint-key-mma-k128.ts";
import { DELTA_PREP_R_CONFIGS, PREP_R_PRELUDE, deltaPrepRKernel, deltaPrepRSource, type DeltaPrepRConfig } from "./delta-prep-r.ts";
import { DELTA_PRELUDE, DELTA_PREP_CONFIGS, DELTA_PREP_KEY_CONFIGS, DELTA_PREP_KEY_MMA_CONFIGS, DELTA_PREP_MMA_CONFIGS, deltaPrepKernel, deltaPrepSource, type DeltaPrepConfig, type DeltaPrepDecay } from "./delta-prep.ts";
import { DELTA_WALK_CONFIGS, DELTA_WALK_FEW_CONFIGS, DELTA_WALK_KEY_CONFIGS, DELTA_WALK_KEY_FEW_CONFIGS, DELTA_WALK_PRELUDE, deltaWalkKernel, deltaWalkSource, type DeltaWalkConfig } from "./delta-walk.ts";
import { DELTA_WALK_KEY_MMA_CONFIGS, DELTA_WALK_KEY_WIDE_CONFIGS, DELTA_WALK_MMA_CONFIGS, DELTA_WALK_WIDE_CONFIGS, deltaWalkMmaKernel, deltaWalkMmaSource, type DeltaWalkMmaConfig } from "./delta-walk-mma.ts";
import { DELTA_WALK_BF16_CONFIGS, DELTA_WALK_BF16_KEY_CONFIGS, DELTA_WALK_BF16_PRELUDE, deltaWalkBf16Kernel, deltaWalkBf16Source, type DeltaWalkBf16Config } from "./delta-walk-bf16.ts";

export type DeltaBwdOp = "prep_fwd" | "prep_bwd" | "walk" | "adj" | "prep_r";
export type DeltaBwdDecay = "none" | "scalar" | "key";

export interface DeltaBwdKernel {
  op: DeltaBwdOp;
  decay: DeltaBwdDecay;
  tin: "f32" | "bf16";
  C: number;
  K: number;
  V: number;
  cols: number;
  /** The walks for few rows: each phase's sum split over this many thread groups (absent: 1). */
  split?: number;
  /** The tensor-core twins' math ("tf32"); absent: fp32 on the SIMT cores. */
  math?: "tf32" | "tf32x3" | "bf16" | "bf16f";
  /** The walks for many rows (delta-walk-mma.ts DELTA_WALK_WIDE_CONFIGS, 64 columns a block at K = V = 128): "many"; the bf16
   * walks (win) "many" or "few". */
  walkFor?: "many" | "few";
  /** prep_bwd's twins writing the bf16 walk's operands (entries <twin's entry>_wb / _wbx; seqc_delta_bwd LR_DELTA_WALK_BF16):
   * "mn" M and NN^T bf16, "all" X and BM too. */
  wout?: "mn" | "all";
  /** The wout records' siblings storing the bf16 products 16 bytes a lane (delta-prep.ts wstore "quad"; entries
   * <wout entry>q: _wbq / _wbxq; seqc_delta_bwd LR_DELTA_PREP_BWD_STORE). */
  wstore?: "quad";
  /** Among the quad siblings, decay none: BM as bf16 mma (delta-prep.ts bmMma "bf16"; entries <quad entry>_bm16;
   * seqc_delta_bwd LR_DELTA_PREP_BWD_STORE "quad_bm16"). */
  bmMma?: "bf16";
  /** The walks with bf16 operands (delta-walk-bf16.ts; math "bf16", zout "bf16"), reading prep_bwd's wout outputs of the same value. */
  win?: "mn" | "all";
  /** The walks writing ZS and Y as bf16 (entries _zb; each the sibling of the record whose entry lacks _zb); "f32": the
   * per-key bf16 walks (win) writing them as float32 (entries without _zb, no sibling). */
  zout?: "bf16" | "f32";
  /** The bf16 adjoint twins reading R, S0, LE, DR as bf16 (entries _zb; each the sibling of the record whose entry lacks _zb). */
  zin?: "bf16";
  /** The zin adjoints' siblings storing dQ, dU, dW, dK, dV as bf16 (entries <zin entry>_ob; seqc_delta_bwd LR_DELTA_ADJ_OUT). */
  aout?: "bf16";
  /** prep_r's M S0 product (delta-prep-r.ts): "bf16" the head only (entry _m1); absent: head and tail. */
  mprod?: "bf16";
  /** The bf16-state adjoints' siblings loading every chunk input by cp.async (entries <zin or aout entry>_ca; seqc_delta_bwd
   * LR_DELTA_ADJ_LOAD). */
  load?: "ca";
  entry: string;
  threads: number;
  sharedBytes: number;
}

/** A module's kernels: the model's decay mode and each kind's configurations (prep's and the adjoint's of that mode, their
 * twins among them). */
export interface DeltaBwdConfigs {
  decay: DeltaBwdDecay;
  prep: readonly DeltaPrepConfig<DeltaPrepDecay>[];
  walk: readonly (DeltaWalkConfig | DeltaWalkMmaConfig)[];
  adj: readonly (DeltaAdjConfig | DeltaAdjKeyConfig | DeltaAdjKeyMmaConfig)[];
  /** The reverse walk in bf16 (seqc_delta_bwd LR_DELTA_WALK_BF16; decay none / scalar with twins): prep_bwd's staged twins
   * writing its operands as bf16 (wout) and the bf16 walks (delta-walk-bf16.ts), after the twins. */
  walkBf16?: { prep: readonly DeltaPrepConfig<DeltaPrepDecay>[]; walk: readonly DeltaWalkBf16Config[] };
  /** walkBf16.prep's siblings with wstore "quad" (16-byte stores of the bf16 products; seqc_delta_bwd
   * LR_DELTA_PREP_BWD_STORE; decay none / scalar with twins), last in the module; decay none's then again with bmMma
   * "bf16" (BM as bf16 mma). */
  prepBwdQuad?: readonly DeltaPrepConfig<DeltaPrepDecay>[];
  /** The bf16-state path (seqc_delta_bwd LR_DELTA_ZBF16; decay none / scalar with twins): the walks' siblings writing bf16
   * ZS and Y (zout) and the bf16 adjoint twins' siblings reading them (zin), after every other kernel; then those adjoints'
   * siblings storing their five per-token gradients as bf16 (aout, seqc_delta_bwd LR_DELTA_ADJ_OUT), last. */
  zbf16?: { walk: readonly (DeltaWalkConfig | DeltaWalkMmaConfig)[]; adj: readonly DeltaAdjConfig[] };
  /** R as prep_fwd's epilogue (delta-prep-r.ts; op "prep_r", seqc_delta_bwd LR_DELTA_PREP_R; decay none / scalar with
   * twins): TI and bf16 R from the forward's bf16 chunk states, last in the module. */
  prepR?: readonly DeltaPrepRConfig[];
  /** The bf16-state adjoints' (zbf16.adj's) siblings loading every chunk input by cp.async (delta-adjoint-bf16.ts
   * DELTA_ADJ_BF16_CA_CONFIGS, load "ca"; seqc_delta_bwd LR_DELTA_ADJ_LOAD; decay none / scalar with twins), after prepR. */
  adjCa?: readonly DeltaAdjConfig[];
}

/** A model's configurations for its decay mode: prep's and the adjoint's of that mode (`twins`: with their TF32 twins,
 * default), the walks (per-key ones with decay "key"; each shape's default walk, then its walk for few rows; `twins`:
 * then the walks' 3xTF32 twins, delta-walk-mma.ts). */
export function deltaBwdConfigs(decay: DeltaBwdDecay, twins = true): DeltaBwdConfigs {
  const mine = <T extends { decay: string }>(cs: readonly T[]) => cs.filter((c) => c.decay === decay);
  const walk = decay === "key" ? [...DELTA_WALK_KEY_CONFIGS, ...DELTA_WALK_KEY_FEW_CONFIGS, ...(twins ? [...DELTA_WALK_KEY_MMA_CONFIGS, ...DELTA_WALK_KEY_WIDE_CONFIGS] : [])] : [...DELTA_WALK_CONFIGS, ...DELTA_WALK_FEW_CONFIGS, ...(twins ? [...DELTA_WALK_MMA_CONFIGS, ...DELTA_WALK_WIDE_CONFIGS] : [])];
  return {
    decay, prep: mine<DeltaPrepConfig<DeltaPrepDecay>>([...DELTA_PREP_CONFIGS, ...DELTA_PREP_KEY_CONFIGS, ...(twins ? [...DELTA_PREP_MMA_CONFIGS, ...DELTA_PREP_KEY_MMA_CONFIGS] : [])]), walk,
    adj: mine([...DELTA_ADJ_CONFIGS, ...DELTA_ADJ_K128_CONFIGS, ...DELTA_ADJ_KEY_CONFIGS, ...(twins ? [...DELTA_ADJ_MMA_CONFIGS, ...DELTA_ADJ_K128_MMA_CONFIGS, ...DELTA_ADJ_KEY_MMA_CONFIGS, ...DELTA_ADJ_KEY_K128_MMA_CONFIGS, ...DELTA_ADJ_KEY_BF16_CONFIGS, ...DELTA_ADJ_KEY_K128_BF16_CONFIGS, ...DELTA_ADJ_KEY_FAC_CONFIGS, ...DELTA_ADJ_KEY_K128_FAC_CONFIGS, ...DELTA_ADJ_BF16_CONFIGS] : [])]),
    ...(twins && decay !== "key" ? { walkBf16: { prep: (["mn", "all"] as const).flatMap((wout) => mine(DELTA_PREP_MMA_CONFIGS).filter((c) => c.op === "bwd").map((c) => ({ ...c, wout }))), walk: DELTA_WALK_BF16_CONFIGS } } : {}),
    // decay "key" (seqc_delta_bwd LR_DELTA_KEY_WALK_BF16: both walks): prep_fwd's and prep_bwd's per-key row-layout twins with wout "mn" and the per-key
    // bf16 walks writing float32 ZS and Y (the per-key adjoint reads them so)
    ...(twins && decay === "key" ? { walkBf16: { prep: DELTA_PREP_KEY_MMA_CONFIGS.map((c) => ({ ...c, wout: "mn" as const })), walk: DELTA_WALK_BF16_KEY_CONFIGS } } : {}),
    ...(twins && decay !== "key" ? { zbf16: { walk: walk.map((c) => ({ ...c, zout: "bf16" as const })), adj: [...mine(DELTA_ADJ_BF16_ZIN_CONFIGS), ...mine(DELTA_ADJ_BF16_OUT_CONFIGS)] } } : {}),
    ...(twins && decay !== "key" ? { prepR: mine(DELTA_PREP_R_CONFIGS) } : {}),
    ...(twins && decay !== "key" ? { prepBwdQuad: [undefined, "bf16" as const].filter((b) => !b || decay === "none").flatMap((bmMma) => (["mn", "all"] as const).flatMap((wout) => mine(DELTA_PREP_MMA_CONFIGS).filter((c) => c.op === "bwd").map((c) => ({ ...c, wout, wstore: "quad" as const, ...(bmMma ? { bmMma } : {}) })))) } : {}),
    ...(twins && decay !== "key" ? { adjCa: mine(DELTA_ADJ_BF16_CA_CONFIGS) } : {}),
  };
}

const isKeyAdj = (c: DeltaAdjConfig | DeltaAdjKeyConfig | DeltaAdjKeyMmaConfig): c is DeltaAdjKeyConfig | DeltaAdjKeyMmaConfig => c.decay === "key";
const isKeyMma = (c: DeltaAdjKeyConfig | DeltaAdjKeyMmaConfig): c is DeltaAdjKeyMmaConfig => "math" in c && (c.math === "tf32" || c.math === "bf16" || c.math === "bf16f");

/** The module of these configurations: the preludes (prep's, the adjoint's, the walk's with the TF32 helpers: each
 * guarded or a repeatable definition), then the fp32 kernels (prep's, the walks, the adjoints), then the twins. */
export function deltaBwdModule(configs: DeltaBwdConfigs): { source: string; kernels: DeltaBwdKernel[] } {
  const { decay } = configs;
  for (const c of [...configs.prep, ...configs.adj])
    if (c.decay !== decay) throw new Error(`delta-bwd: a ${c.decay} decay kernel in a ${decay} module`);
  for (const c of configs.walk)
    if (!!c.perKey !== (decay === "key")) throw new Error(`delta-bwd: a ${c.perKey ? "per-key" : "scalar"} walk in a ${decay} decay module`);
  const kernels: DeltaBwdKernel[] = [];
  let source = DELTA_PRELUDE + DELTA_ADJ_PRELUDE + DELTA_WALK_PRELUDE;
  const add = (k: Omit<DeltaBwdKernel, "cols"> & { cols?: number }, src: string) => {
    const { op, tin, C, K, V, math, entry, threads, sharedBytes, walkFor, zout, zin, aout, mprod, load } = k;
    kernels.push({ op, decay, tin, C, K, V, cols: k.cols ?? V, ...(k.split && k.split > 1 ? { split: k.split } : {}), ...(math ? { math } : {}), ...(walkFor ? { walkFor } : {}), ...(zout ? { zout } : {}), ...(zin ? { zin } : {}), ...(aout ? { aout } : {}), ...(mprod ? { mprod } : {}), ...(load ? { load } : {}), entry, threads, sharedBytes });
    source += src;
  };
  for (const twins of [false, true]) {
    for (const c of configs.prep.filter((x) => !!x.math === twins)) add({ ...deltaPrepKernel(c), op: c.op === "fwd" ? "prep_fwd" : "prep_bwd" }, deltaPrepSource(c));
    for (const c of configs.walk.filter((x) => !!("math" in x && x.math) === twins)) {
      if ("math" in c) add({ ...deltaWalkMmaKernel(c), decay, tin: "f32" }, deltaWalkMmaSource(c));
      else add({ ...deltaWalkKernel(c), decay, tin: "f32" }, deltaWalkSource(c));
    }
    for (const c of configs.adj.filter((x) => !!("math" in x && x.math) === twins)) {
      if (isKeyAdj(c) && isKeyMma(c) && c.K === 128) add({ ...deltaAdjKeyMmaK128Kernel(c), op: "adj" }, deltaAdjKeyMmaK128Source(c));
      else if (isKeyAdj(c) && isKeyMma(c)) add({ ...deltaAdjKeyMmaKernel(c), op: "adj" }, deltaAdjKeyMmaSource(c));
      else if (isKeyAdj(c)) add({ ...deltaAdjKeyKernel(c), op: "adj" }, deltaAdjKeySource(c));
      else add({ ...deltaAdjKernel(c), op: "adj" }, deltaAdjSource(c));
    }
  }
  if (configs.walkBf16) {  // the bf16 reverse walk's prep_bwd twins and walks (records pushed as they are: wout / win)
    source += DELTA_WALK_BF16_PRELUDE;
    for (const c of configs.walkBf16.prep) {
      if (c.decay !== decay || (c.op !== "bwd" && decay !== "key") || !c.wout) throw new Error(`delta-bwd: a ${c.decay} decay prep_${c.op} (wout ${c.wout}) among the bf16 walk's kernels of a ${decay} module`);
      const k = deltaPrepKernel(c);
      kernels.push({ op: c.op === "fwd" ? "prep_fwd" : "prep_bwd", decay, tin: c.tin, C: c.C, K: c.K, V: c.V, cols: c.V, ...(c.math ? { math: c.math } : {}), wout: c.wout, entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes });
      source += deltaPrepSource(c);
    }
    for (const c of configs.walkBf16.walk) {
      if (!!c.perKey !== (decay === "key")) throw new Error(`delta-bwd: a ${c.perKey ? "per-key" : "scalar"} bf16 walk in a ${decay} decay module`);
      const k = deltaWalkBf16Kernel(c);
      kernels.push({ op: "walk", decay, tin: "f32", C: c.C, K: c.K, V: c.V, cols: c.cols, math: "bf16", walkFor: c.walkFor, zout: k.zout, win: c.win, entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes });
      source += deltaWalkBf16Source(c);
    }
  }
  if (configs.zbf16) {
    for (const c of configs.zbf16.walk) {
      if (c.perKey || c.zout !== "bf16") throw new Error("delta-bwd: the bf16-state walks are scalar-decay walks with zout bf16");
      if ("math" in c) add({ ...deltaWalkMmaKernel(c), decay, tin: "f32" }, deltaWalkMmaSource(c));
      else add({ ...deltaWalkKernel(c), decay, tin: "f32" }, deltaWalkSource(c));
    }
    for (const c of configs.zbf16.adj) {
      if (c.decay !== decay || c.zin !== "bf16") throw new Error(`delta-bwd: a ${c.decay} decay bf16-state adjoint in a ${decay} module`);
      add({ ...deltaAdjKernel(c), op: "adj" }, deltaAdjSource(c));
    }
  }
  if (configs.prepR?.length) {
    source += PREP_R_PRELUDE;
    for (const c of configs.prepR) {
      if (c.decay !== decay) throw new Error(`delta-bwd: a ${c.decay} decay prep_r kernel in a ${decay} module`);
      const { mprod, ...k } = deltaPrepRKernel(c);
      add({ ...k, ...(mprod === "bf16" ? { mprod } : {}) }, deltaPrepRSource(c));
    }
  }
  for (const c of configs.adjCa ?? []) {
    if (c.decay !== decay || c.zin !== "bf16" || c.load !== "ca") throw new Error(`delta-bwd: adjCa holds ${decay} decay bf16-state adjoints with load "ca" only`);
    add({ ...deltaAdjKernel(c), op: "adj" }, deltaAdjSource(c));
  }
  if (configs.prepBwdQuad?.length) {  // prep_bwd's wout twins with 16-byte stores (records pushed as they are: wout, wstore)
    source += DELTA_WALK_BF16_PRELUDE;
    for (const c of configs.prepBwdQuad) {
      if (c.decay !== decay || c.op !== "bwd" || !c.wout || c.wstore !== "quad") throw new Error(`delta-bwd: prepBwdQuad holds ${decay} decay prep_bwd twins with wout and wstore "quad" only`);
      const k = deltaPrepKernel(c);
      kernels.push({ op: "prep_bwd", decay, tin: c.tin, C: c.C, K: c.K, V: c.V, cols: c.V, ...(c.math ? { math: c.math } : {}), wout: c.wout, wstore: "quad", ...(c.bmMma ? { bmMma: c.bmMma } : {}), entry: k.entry, threads: k.threads, sharedBytes: k.sharedBytes });
      source += deltaPrepSource(c);
    }
  }
  return { source, kernels };
}
