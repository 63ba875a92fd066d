/**
 * The chunked form in the CUDA plan: which configurations of the core (chunked-core.ts) a model gets,
 * their launch steps, and one translation unit per I/O precision (f32: SIMT fp32 products; bf16 and
 * f16: tensor cores with fp32 accumulation). Inputs and outputs of a bf16/f16 variant are 2-byte
 * tensors (the runtime converts); params and states stay fp32.
 *
 * Variants, per precision: `fused` (one kernel, one block per batch x head x value tile walks every chunk)
 * and `split` (phase A over every chunk in parallel, then a walk over chunks per batch x head x value tile
 * that only applies the state). A variant applies when K and V pad to its KP (32, 64, 128) and the rows
 * per token pad to its RTP (1, 2, 4); `prefer` orders them by how many blocks a shape gives.
 */
import * as I from "../../ir/types.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";
import type { CudaBufferRef, CudaFormPlan } from "../../../runtime/cuda/plan.ts";
import { matrixForm } from "../../forms/matrix-form.ts";
import { chunkRows, chunkSizes, type ChunkRows } from "../../forms/chunk-rows.ts";
import { CUDA_PRELUDE } from "./math.ts";
import { CHUNK_CORE_SOURCE, CHUNK_GROUP_SOURCE, CHUNK_WALK_K_SOURCE } from "./chunked-core.ts";
import { CHUNK_PHASE_A_PIPE_SOURCE } from "./chunked-phase-a-pipe.ts";
import { CHUNK_PHASE_A_OVL_GF_SOURCE, CHUNK_PHASE_A_OVL_SOURCE } from "./chunked-phase-a-ovl.ts";
import { CHUNK_WALK_Q_SOURCE } from "./chunked-walk-q.ts";
import { CHUNK_SPLIT_VIN_SOURCE } from "./chunked-split-vin.ts";
import { CHUNK_SPLIT_QIN_SOURCE, CHUNK_SPLIT_WC_SOURCE } from "./chunked-split-qin.ts";
import { CHUNK_PHASE_A_NBAR_SOURCE } from "./chunked-phase-a-nbar.ts";
import { CHUNK_WALK_CST_SOURCE, CHUNK_WALK_ST_SOURCE } from "./chunked-walk-states.ts";
import { chunkedExtras } from "./chunked-extra.ts";
import { chunkLayout, chunkModelSource, CHUNK_F, cfgName, ioTag, threadsOf, overrideValues, walkKSlices, walkZTiles, type ChunkCfg, type ChunkDtype } from "./chunked-model.ts";

export interface ChunkedLowering {
  forms: CudaFormPlan[];
  modules: Record<string, { source: string }>;
}

export type ChunkedEligibility = { ok: true; rows: ChunkRows } | { ok: false; why: string };

export function chunkedEligible(model: I.Model): ChunkedEligibility {
  const mf = matrixForm(model);
  if (!mf.ok) return { ok: false, why: mf.reason };
  const cr = chunkRows(mf.form);
  if (!cr.ok) return { ok: false, why: cr.reason };
  if (!cr.rows.postPointwise) return { ok: false, why: "its outputs read y = S^T q at other positions than their own (the chunked kernels fuse post pointwise)" };
  const S = model.tensors.find((t) => t.name === mf.form.state)!;
  if (S.init && !(S.init.k === "num")) return { ok: false, why: "the state's initial value is not a constant" };
  return { ok: true, rows: cr.rows };
}

/** Smem opt-in limit the configurations are planned against (sm_90: 227 KiB). */
const SMEM_MAX = 227 * 1024;
/** Shared memory of one SM (sm_90: 228 KiB, of which each resident block also takes 1 KiB). */
const SM_SMEM = 228 * 1024;
const blocksPerSm = (smem: number) => Math.floor(SM_SMEM / (smem + 1024));
export const CHUNK_KP = [32, 64, 128] as const;

/** Rows per token as a size expression (loop rows repeat their loop extent). */
function rowsPerTokenS(cr: ChunkRows): SizeExpr {
  const parts: SizeExpr[] = cr.rows.map((r) => {
    const l = cr.form.steps[r.step].loop;
    return r.loop && l ? (l.kind === "lit" ? l.value : l.name) : 1;
  });
  return parts.length === 1 ? parts[0] : ["+", ...parts];
}
function hasLoopRows(cr: ChunkRows): boolean {
  return cr.rows.some((r) => r.loop);
}
const pow2ceil = (n: number) => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)));

/** The padded size class of a dim: 32, 64 or 128 (0 when larger). */
const classOf = (x: SizeExpr): SizeExpr => ["select", [">=", 32, x], 32, ["select", [">=", 64, x], 64, ["select", [">=", 128, x], 128, 0]]];
const eq = (a: SizeExpr, b: SizeExpr): SizeExpr => ["*", [">=", a, b], [">=", b, a]];

/** The element types of a set of chunked variants: inputs `io`, outputs `out` (default `io`). */
export interface ChunkIo {
  io: ChunkDtype;
  out?: ChunkDtype;
}
/** The I/O types every CUDA plan's chunked form has: inputs and outputs of one type each. */
export const CHUNK_IOS: readonly ChunkIo[] = [{ io: "f32" }, { io: "bf16" }, { io: "f16" }];
/** Mixed I/O: bf16 inputs, fp32 outputs (the torch target's transposed cores: compiler/backends/torch/plans.ts). */
export const BF16_IN_F32_OUT: ChunkIo = { io: "bf16", out: "f32" };

/** `only`: keep just these variants (and their kernels), e.g. for a small emulated or test module. `ios`: the
 *  I/O types to emit (default CHUNK_IOS), one module each (key ioTag: `f32`, `bf16`, `bf16-of32`, ...). */
export function lowerChunked(model: I.Model, el: { rows: ChunkRows }, opts: { only?: (variant: string) => boolean; ios?: readonly ChunkIo[] } = {}): ChunkedLowering {
  const cr = el.rows;
  const form = cr.form;
  const src = chunkModelSource(model, cr);
  const { Kd, Vd, nH, decay, lr } = chunkSizes(model, cr);
  const rtps = hasLoopRows(cr) ? [1, 2, 4] : [pow2ceil(cr.rows.length)];
  if (rtps[0] > 4) return { forms: [], modules: {} };
  const ios = opts.ios ?? CHUNK_IOS;
  const forms: CudaFormPlan[] = [];
  const wrappers: Record<string, string[]> = {};
  const buffers = (ws: string[]): CudaBufferRef[] => [
    ...src.inputs.map((name) => ({ kind: "input", name }) as CudaBufferRef),
    ...src.outputs.map((name) => ({ kind: "output", name }) as CudaBufferRef),
    { kind: "params" },
    { kind: "states" },
    ...ws.map((name) => ({ kind: "workspace", name }) as CudaBufferRef),
  ];
  // one wrapper per kernel (split and split3 share phase A)
  const wrapped = new Set<string>();
  // modules with a grouped split3 variant (they get CHUNK_GROUP_SOURCE)
  const withGroups = new Set<string>();
  // modules with a split3 walk whose low-rank product is spread over the warps (they get CHUNK_WALK_K_SOURCE)
  const withWalkK = new Set<string>();
  // modules with a pipelined phase A (they get CHUNK_PHASE_A_PIPE_SOURCE)
  const withPipe = new Set<string>();
  // modules with split's walk that forms Q~ S0 beside Z (they get CHUNK_WALK_Q_SOURCE)
  const withWalkQ = new Set<string>();
  // modules with a phase A that writes the record's copies and loads alpha v beside the inverse (CHUNK_PHASE_A_OVL_SOURCE)
  const withOvl = new Set<string>();
  // modules where an overlapped phase A folds the scalar decays' prefix (-gf)
  const withGf = new Set<string>();
  // modules with split's phase A and walk without alpha v in the record (CHUNK_SPLIT_VIN_SOURCE)
  const withVin = new Set<string>();
  // modules with split's low-rank phase A and walk without Q~ in the record (CHUNK_SPLIT_QIN_SOURCE, after the GF source)
  const withQin = new Set<string>();
  // modules with split's low-rank walk whose copies are on the warps without a Z tile (CHUNK_SPLIT_WC_SOURCE, after the QIN source)
  const withWc = new Set<string>();
  // modules with an overlapped phase A on named barriers (CHUNK_PHASE_A_NBAR_SOURCE, after the QIN source, whose record it uses)
  const withNb = new Set<string>();
  // modules with split's walk storing each chunk's start state (CHUNK_WALK_ST_SOURCE; with wcopy CHUNK_WALK_CST_SOURCE, last)
  const withSt = new Set<string>();
  const withStC = new Set<string>();
  // the split variants' twins whose walk stores the chunk states (sst), pushed after every other form: the plan's other
  // forms, their order and their modules' text stay as without them (the twins' kernels appended)
  const stTwins: (() => void)[] = [];
  const wrap = (c: ChunkCfg) => {
    if (wrapped.has(src.entry(c))) return;
    wrapped.add(src.entry(c));
    if (c.grp) withGroups.add(ioTag(c.dtype, c.out));
    if (c.wsplit) withWalkK.add(ioTag(c.dtype, c.out));
    if (c.pipe) withPipe.add(ioTag(c.dtype, c.out));
    if (c.rq) withWalkQ.add(ioTag(c.dtype, c.out));
    if (c.ovl) withOvl.add(ioTag(c.dtype, c.out));
    if (c.gfold) withGf.add(ioTag(c.dtype, c.out));
    if (c.vin) withVin.add(ioTag(c.dtype, c.out));
    if (c.qin || c.wcopy || c.nbar) withQin.add(ioTag(c.dtype, c.out));
    if (c.nbar) withNb.add(ioTag(c.dtype, c.out));
    if (c.wcopy) withWc.add(ioTag(c.dtype, c.out));
    if (c.sst) (c.wcopy ? withStC : withSt).add(ioTag(c.dtype, c.out));
    (wrappers[ioTag(c.dtype, c.out)] ??= []).push(src.wrapper(c));
  };
  const ov = overrideValues(model, src.overrides);
  const launch = (c: ChunkCfg, grid: SizeExpr, ws: string[]) => ({
    kind: "launch" as const,
    entry: src.entry(c),
    grid,
    threads: threadsOf(c),
    sharedBytes: chunkLayout(c).SMEM,
    buffers: buffers(ws),
    uniforms: src.uniforms,
    overrides: ov,
  });
  for (const { io: dtype, out: outIo } of ios) {
    const out = outIo ?? dtype;
    const ioT = ioTag(dtype, out);
    /** The form's element types: `io`, and `out` where the outputs' differs (runtime/cuda/plan.ts CudaFormPlan.out). */
    const ioFields = { io: dtype, ...(out !== dtype ? { out } : {}), module: ioT };
    for (const RTP of rtps)
      for (const KP of CHUNK_KP) {
        const C = CHUNK_F / RTP;
        const base: SizeExpr[] = [eq(classOf(Kd), KP), eq(["pow2ceil", rowsPerTokenS(cr)], RTP)];
        const mk = (kind: ChunkCfg["kind"], BV: number): ChunkCfg => ({ kind, dtype, ...(out !== dtype ? { out } : {}), KP, BV, VP: KP, RTP, decay, lr });
        // fused, value tiles of 64 and 32 (f32: 32 and 16, its operands take twice the space). Auto prefers
        // the wider one when it gives >= 1.5 blocks per SM (measured on the H100, bench/RESULTS.md), else split.
        const fusedBVs = (dtype === "f32" ? [32, 16] : [64, 32]).filter((BV) => chunkLayout(mk("fused", BV)).SMEM <= SMEM_MAX);
        // phase A (256 threads) and its blocks per SM (its shared memory)
        const a0 = mk("phaseA", 32);
        const bps = blocksPerSm(chunkLayout(a0).SMEM);
        for (const BV of fusedBVs) {
          const c = mk("fused", BV);
          if (chunkLayout(c).SMEM > SMEM_MAX || (opts.only && !opts.only(`chunked-fused-${ioT}-k${KP}-v${BV}-r${RTP}`))) continue;
          wrap(c);
          const blocks: SizeExpr = ["*", "B", nH, ["ceilDiv", Vd, BV]];
          forms.push({
            form: "chunked",
            variant: `chunked-fused-${ioT}-k${KP}-v${BV}-r${RTP}`,
            ...ioFields,
            applicable: ["*", ...base, [">=", "LIMIT_SMEM_OPTIN", chunkLayout(c).SMEM]],
            prefer: BV === fusedBVs[0] ? fusedPrefer(blocks, nH, decay, lr, bps) : 0,
            note: `chunked (${ioT}${dtype === "f32" ? " SIMT" : " tensor cores"}): one block per batch x head x ${BV} values walks chunks of ${C} tokens (${CHUNK_F} row slots); intra-chunk masked matmuls, state in registers`,
            vars: [],
            workspaces: [],
            steps: [launch(c, blocks, [])],
          });
        }
        // split: phase A over every chunk, then the walk. Phase A with 256 threads, and where its shared memory
        // allows at most two blocks per SM also with more warps (384 threads for two blocks, 512 and 768 for one): the
        // variant names carry `-a<threads>`. Walks over 64-value tiles (2-byte operands) read each record half as
        // often as 32-value ones (the walks at many heads are bound by those reads), 16 give more blocks.
        const nc: SizeExpr = ["ceilDiv", "T", C];
        const recBytes = recordBytes(a0);
        const phaseAs: { a: ChunkCfg; tag: string; req?: boolean }[] = [{ a: a0, tag: "" }];
        // (registers: __launch_bounds__(384, 2) and (768, 1) allow 85 per thread, phase A takes 64 to 80)
        const more = KP < 64 || bps < 1 ? [] : bps === 2 ? [384] : bps === 1 ? [512, 768] : [];
        for (const NT of more) phaseAs.push({ a: { ...a0, NT, minBlocks: bps }, tag: `-a${NT}` });
        const alt = phaseAs[1]?.tag ?? "";
        // at two blocks per SM also 512 threads (`-a512`, 16 warps a block, 32 a SM against 24 at 384;
        // __launch_bounds__(512, 2) allows 64 registers a thread): on request (`req`), except the phase A auto wants
        // where a512Lr holds (runs 20 and 21: -a512-iw), whose variants are in the plan without `only`
        const a512 = a512Lr(KP, bps, lr, decay, dtype, out);
        // (K = 128: a512Wide, with the record's copies beside the inverse and M, U0 staged: -a512-iw-ios; H200 runs 23b, 26)
        const a512W = a512Wide(KP, bps, lr, decay, dtype, out);
        if ((opts.only || a512 || a512W) && KP >= 64 && bps === 2) phaseAs.push({ a: { ...a0, NT: 512, minBlocks: 2 }, tag: "-a512", req: true });
        // low rank, 2-byte operands: each phase A also with the inverse by warp products (`-iw`: three block barriers
        // instead of seven, chunked-core.ts seqc_chunk_inverse_w)
        // per-key decay, 2-byte operands: each phase A (without -iw) also with A and Aq's block pairs as warp tasks
        // (`-mw`: one barrier instead of eight, chunked-core.ts SeqcKeyTiles)
        const plain = [...phaseAs];
        if (lr && dtype !== "f32") for (const p of plain) phaseAs.push({ a: { ...p.a, inv: "w" }, tag: `${p.tag}-iw`, req: p.req });
        if (decay === 2 && dtype !== "f32") for (const p of plain) phaseAs.push({ a: { ...p.a, mats: "w" }, tag: `${p.tag}-mw`, req: p.req });
        // low rank with a scalar or no decay, 2-byte operands, K = 64 (alpha v late, two blocks per SM): each -iw phase A
        // also software-pipelined over PIPE_ITEMS items a block (`-ap<M>`, chunked-phase-a-pipe.ts), on request
        if (opts.only && pipeCase(KP, bps, lr, decay, dtype) && blocksPerSm(chunkLayout({ ...a0, pipe: 2 }).SMEM) === 2)
          for (const p of phaseAs.filter((x) => x.a.inv === "w")) for (const M of PIPE_ITEMS) phaseAs.push({ a: { ...p.a, pipe: M }, tag: `${p.tag}-ap${M}`, req: true });
        // low rank with a scalar or no decay, 2-byte operands, alpha v late: each -iw phase A (not pipelined) also with the
        // record's copies, W's scale and alpha v's load on the warps the inverse leaves idle (`-io`, chunked-phase-a-ovl.ts;
        // `-ios`: M and U0 also staged for 16-byte stores), on request, but for auto's -a512-iw-ios where a512Lr (K = 64,
        // H200 runs 26b and 27) or a512Wide (K = 128, run 26) holds
        if ((opts.only || a512 || a512W) && lr && decay < 2 && dtype !== "f32")
          for (const p of phaseAs.filter((x) => x.a.inv === "w" && !x.a.pipe && chunkLayout(x.a).VLATE === 1))
            for (const ovl of [1, 2] as const) phaseAs.push({ a: { ...p.a, ovl }, tag: `${p.tag}-io${ovl === 2 ? "s" : ""}`, req: true });
        // a scalar decay: -iw-ios with the decays' prefix and the rows' G on warps 0-1 beside the load's scale pass
        // (`-gf`, two barriers fewer, chunked-phase-a-ovl.ts), on request only (not timed yet)
        if (opts.only && lr && decay === 1 && dtype !== "f32")
          for (const p of phaseAs.filter((x) => x.a.ovl === 2)) phaseAs.push({ a: { ...p.a, gfold: true }, tag: `${p.tag}-gf`, req: true });
        // -iw-ios (and -gf) with the inverse's warps and the helpers on their own named barriers (`-nb`,
        // chunked-phase-a-nbar.ts), on request (auto's only as -a512-iw-ios-nb-wc-w512, pushed with -a512-iw-ios's walks: H200 run 31)
        if (opts.only && lr && decay < 2 && dtype !== "f32")
          for (const p of phaseAs.filter((x) => x.a.ovl === 2)) phaseAs.push({ a: { ...p.a, nbar: true }, tag: `${p.tag}-nb`, req: true });
        const want = preferredPhaseA(KP, alt, lr, decay, dtype, a512, a512W);
        const walkBVs = [...(dtype === "f32" || KP < 64 ? [] : [64]), 32, 16];
        // split3's state-only walk also over 8 values (2-byte operands, K = 128): twice the blocks of 16-value walks
        // where batch x heads is small (the walk over many chunks is the critical path there)
        const walkSBVs = dtype !== "f32" && KP >= 128 ? [...walkBVs, 8] : walkBVs;
        // grouped split3: a diagonal chunk transition (no low rank), no stabiliser or value columns
        const grouped = !lr && !cr.stab && !cr.columns;
        // low rank with a scalar or no decay, 2-byte I/O of one type, K = 128 (run 19): auto's split3 walk at few heads
        // is the 16-value one with the next record's copies on the warps without a Z tile (-wc), its split walk over 64
        // values the 512-thread one (-w512); both in the plan without `only`
        const wideLr = lr && decay < 2 && dtype !== "f32" && out === dtype && KP >= 128;
        // no low rank, a scalar or no decay, no stabiliser or value columns, 2-byte I/O of one type, K = 128 (H200 run 28,
        // Simple GLA): split's 64-value walk on 512 threads (-w512) instead of the 256-thread one, as wideLr's
        const widePlain = w512Plain(KP, lr, decay, dtype, out, !!cr.stab || !!cr.columns);
        // a two-kernel form: phase A `a` over every chunk into records of `rec` bytes, then the walk `w`
        const pushSplit = (name: string, a: ChunkCfg, w: ChunkCfg, tag: string, rec: number, prefer: SizeExpr, note: string) => {
          const variant = `chunked-${name}-${ioT}-k${KP}-v${w.BV}${tag}-r${RTP}`;
          // its twin whose walk also stores each chunk's start state (`-st`, chunked-walk-states.ts; the delta
          // backward's chunk states, LR_FWD_STATES): low rank with a scalar or no decay, one row a token, fp32 or 2-byte
          // I/O of one type, split's plain or -wc walk; in the plan where the variant may be auto's (prefer not 0), else on
          // request. Never auto's (prefer 0, after every other form)
          const ws: ChunkCfg = { ...w, sst: true };
          const stVariant = `chunked-${name}-${ioT}-k${KP}-v${w.BV}${tag}-st-r${RTP}`;
          const stCase = w.kind === "walk" && !w.direct && !w.rq && !w.vin && !w.qin && lr && decay < 2 && RTP === 1 && dtype !== "f16" && out === dtype;
          if (stCase && chunkLayout(a).SMEM <= SMEM_MAX && chunkLayout(ws).SMEM <= SMEM_MAX && (opts.only ? opts.only(stVariant) : prefer !== 0))
            stTwins.push(() => {
              wrap(a);
              wrap(ws);
              forms.push({
                form: "chunked",
                variant: stVariant,
                ...ioFields,
                applicable: ["*", ...base, eq(classOf(Vd), KP), [">=", "LIMIT_SMEM_OPTIN", Math.max(chunkLayout(a).SMEM, chunkLayout(ws).SMEM)]],
                prefer: 0,
                note: `${note}; the walk also stores each chunk's start state (chunkS, as split3's)`,
                vars: [],
                workspaces: [
                  { name: "chunk", words: ["*", "B", nH, nc, rec / 4] },
                  { name: "chunkS", words: ["*", "B", nH, nc, (KP * KP * (dtype === "f32" ? 4 : 2)) / 4] },
                ],
                steps: [launch(a, phaseAGrid(a, ["*", "B", nH, nc]), ["chunk"]), launch(ws, ["*", "B", nH, ["ceilDiv", Vd, w.BV]], ["chunk", "chunkS"])],
              });
            });
          if (chunkLayout(a).SMEM > SMEM_MAX || chunkLayout(w).SMEM > SMEM_MAX || (opts.only && !opts.only(variant))) return;
          wrap(a);
          wrap(w);
          forms.push({
            form: "chunked",
            variant,
            ...ioFields,
            applicable: ["*", ...base, eq(classOf(Vd), KP), [">=", "LIMIT_SMEM_OPTIN", Math.max(chunkLayout(a).SMEM, chunkLayout(w).SMEM)]],
            prefer,
            note,
            vars: [],
            workspaces: [{ name: "chunk", words: ["*", "B", nH, nc, rec / 4] }],
            steps: [launch(a, phaseAGrid(a, ["*", "B", nH, nc]), ["chunk"]), launch(w, ["*", "B", nH, ["ceilDiv", Vd, w.BV]], ["chunk"])],
          });
        };
        for (const { a, tag, req } of phaseAs) {
          // (a phase A on request: without `only`, only the one auto wants)
          if (req && !opts.only && tag !== want) continue;
          // splitd (scalar or no decay): split whose record leaves out Q~ and X~ (and, without low rank, alpha v):
          // the walk reads q and the key rows from the inputs and applies their per-row factors
          const ad: ChunkCfg = { ...a, direct: true };
          for (const BV of decay === 2 || a.pipe || a.ovl ? [] : walkBVs)
            pushSplit("splitd", ad, { ...mk("walk", BV), direct: true }, tag, recordBytesD(ad), splitdPrefer(BV, KP, nH, Vd, decay, lr, tag, want, dtype),
              `chunked splitd (${ioT}): every chunk's S0-independent part in parallel (Aq, per-row factors of q and the key rows${lr ? ", M, U0" : ""}; ${threadsOf(ad)} threads), then a walk over chunks per batch x head x ${BV} values that reads q, the key rows${lr ? "" : " and v"} from the inputs`);
          // split3: phase A, a walk that only carries the state (and stores each chunk's start state), then the
          // readout over every chunk in parallel (value tiles of BO)
          const BO = Math.min(KP, dtype === "f32" ? 32 : 64);
          // the records and each chunk's start state (the grouped variants add chunkG)
          const split3Ws = () => [
            { name: "chunk", words: ["*", "B", nH, nc, recBytes / 4] as SizeExpr },
            { name: "chunkS", words: ["*", "B", nH, nc, (KP * KP * (dtype === "f32" ? 4 : 2)) / 4] as SizeExpr },
          ];
          for (const BV of walkSBVs) {
            // grouped split3 first (diagonal chunk transitions): G groups of chunks walked in parallel, then the carry
            const o = mk("out", BO);
            if (grouped && !a.pipe)
              // (-g<G>t: the carry's S_in in the operand type, chunked-model.ts ChunkCfg.grpT; -g<G>t<M>: with the readout
              // over runs of M chunks of a group, ChunkCfg.grpM; the walk is -g<G>'s)
              for (const [G, grpT, M] of SPLIT3_GROUPS.flatMap((G): [number, boolean, number][] => [[G, false, 1], [G, true, 1], ...SPLIT3_RUNS.map((M): [number, boolean, number] => [G, true, M])])) {
                const g = (x: ChunkCfg): ChunkCfg => ({ ...x, grp: G, ...(grpT && x.kind !== "walkS" ? { grpT } : {}), ...(M > 1 && x.kind === "out" ? { grpM: M } : {}) });
                const w = g(mk("walkS", BV)), og = g(o), cy = g(mk("carry", KP));
                const variant = `chunked-split3-${ioT}-k${KP}-v${BV}${tag}-g${G}${grpT ? "t" : ""}${M > 1 ? M : ""}-r${RTP}`;
                const byDefault = groupedByDefault(BV, KP, grpT, M, tag, want, dtype, out);
                const inPlan = opts.only ?? (() => byDefault);
                if ([a, w, og].some((x) => chunkLayout(x).SMEM > SMEM_MAX) || !inPlan(variant)) continue;
                for (const x of [a, w, cy, og]) wrap(x);
                forms.push({
                  form: "chunked",
                  variant,
                  ...ioFields,
                  applicable: ["*", ...base, eq(classOf(Vd), KP), [">=", "LIMIT_SMEM_OPTIN", Math.max(...[a, w, og].map((x) => chunkLayout(x).SMEM))]],
                  prefer: byDefault ? split3gPrefer(G, BV, nH, Vd) : 0,
                  note: `chunked split3 grouped (${ioT}): every chunk's S0-independent part in parallel (${threadsOf(a)} threads), ${G} groups of chunks walked in parallel per batch x head x ${BV} values from zero states (S' = exp(G_n) S0 + X~^T U0; each chunk's local S0 stored), a carry over the groups per state element (S_in(g + 1) = D_g S_in(g) + E_g${grpT ? `, S_in stored in ${ioT}` : ""}), then y = Q~ (S0_local + P_c S_in) + Aq U0 over every chunk in parallel`,
                  vars: [],
                  workspaces: [...split3Ws(), { name: "chunkG", words: ["*", "B", nH, ["+", ["*", nc, KP], G * KP * (2 * KP + 1)]] }],
                  steps: [
                    launch(a, ["*", "B", nH, nc], ["chunk"]),
                    launch(w, ["*", "B", nH, G, ["ceilDiv", Vd, BV]], ["chunk", "chunkS", "chunkG"]),
                    launch(cy, ["*", "B", nH, (KP * KP) / threadsOf(cy)], ["chunkG"]),
                    launch(og, ["*", "B", nH, M > 1 ? ["*", G, ["ceilDiv", ["ceilDiv", nc, G], M]] : nc, ["ceilDiv", Vd, BO]], ["chunk", "chunkS", "chunkG"]),
                  ],
                });
              }
            // split3's walk, and with low rank and 2-byte operands the walks that spread Z = U0 + M S0 over the warps:
            // -wc (the next record's copies on the warps without a Z tile) where such warps exist, in the plan at wideLr's
            // 16-value walk with the preferred phase A (run 19), else on request; -wk (split-K over every warp) where the
            // warps hold >= 2 k-slices of whole k-steps and -wk-w512 (split-K over 16 warps), on request (run 19: no faster)
            const base0 = mk("walkS", BV);
            const walks: { w: ChunkCfg; ws: string }[] = [{ w: base0, ws: "" }];
            const wcByDefault = wideLr && BV === 16 && phaseAPreferred(tag, want);
            if (lr && dtype !== "f32" && (opts.only || wcByDefault)) {
              const ks = walkKSlices(base0);
              if (opts.only && ks >= 2 && KP % (16 * ks) === 0) walks.push({ w: { ...base0, wsplit: 1 }, ws: "-wk" });
              if (walkZTiles(base0) < threadsOf(base0) / 32) walks.push({ w: { ...base0, wsplit: 2 }, ws: "-wc" });
              // split-K over 16 warps (-wk-w512: 512 threads, the state update's tiles over the first 8)
              const w16: ChunkCfg = { ...base0, NT: 512, wsplit: 1 };
              if (opts.only && walkKSlices(w16) >= 2 && KP % (16 * walkKSlices(w16)) === 0) walks.push({ w: w16, ws: "-wk-w512" });
            }
            for (const { w, ws } of walks) {
              const variant = `chunked-split3-${ioT}-k${KP}-v${BV}${tag}${ws}-r${RTP}`;
              if ([a, w, o].some((x) => chunkLayout(x).SMEM > SMEM_MAX) || (opts.only && !opts.only(variant))) continue;
              for (const x of [a, w, o]) wrap(x);
              forms.push({
                form: "chunked",
                variant,
                ...ioFields,
                applicable: ["*", ...base, eq(classOf(Vd), KP), [">=", "LIMIT_SMEM_OPTIN", Math.max(...[a, w, o].map((x) => chunkLayout(x).SMEM))]],
                prefer: ws === "-wc" && wcByDefault ? split3wcPrefer(nH, Vd) : ws ? 0 : split3Prefer(BV, KP, nH, Vd, decay, lr, tag, want, dtype, wideLr),
                note: `chunked split3 (${ioT}): every chunk's S0-independent part in parallel (${threadsOf(a)} threads), a walk per batch x head x ${BV} values that only carries the state (Z = U0 + M S0${ws === "-wk" ? ` split-K over ${walkKSlices(w)} k-slices of the warps` : ws === "-wc" ? ", the next record's copies on the warps without a Z tile" : ""}, S' = exp(G_n) S0 + X~^T Z; each chunk's S0 stored), then y = Q~ S0 + Aq Z over every chunk in parallel`,
                vars: [],
                workspaces: split3Ws(),
                steps: [launch(a, phaseAGrid(a, ["*", "B", nH, nc]), ["chunk"]), launch(w, ["*", "B", nH, ["ceilDiv", Vd, BV]], ["chunk", "chunkS"]), launch(o, ["*", "B", nH, nc, ["ceilDiv", Vd, BO]], ["chunk", "chunkS"])],
              });
            }
          }
          // (2-byte operands, K >= 64: the walk with 16 warps, `-w512`: the state's tiles over twice the warps, so the
          // readout's and the state update's products run on different warps. In the plan at wideLr's 64-value walk with
          // the preferred phase A, where auto takes it instead of the 256-thread one (run 19; before split's own walks in plan
          // order, so that it comes ahead of the 32-value walk where both are preferred), else on request)
          for (const BV of dtype !== "f32" && KP >= 64 ? walkBVs.filter((bv) => bv >= 32) : []) {
            const byDefault = (wideLr || widePlain) && BV === 64 && phaseAPreferred(tag, want);
            if (!opts.only && !byDefault) continue;
            // (widePlain: in the plan, but since H200 run 29 the -vi-w512 form below takes its shapes)
            // (a512Wide's 64-value walk since H200 run 31: auto's is -a512-iw-ios-nb-wc-w512, the phase A on named barriers
            // (chunked-phase-a-nbar.ts) and the walk with the next record's copies on the warps without a Z tile
            // (chunked-split-qin.ts); (4, 8192, 16, 128), three rounds: Gated DeltaNet 1.084 / 1.037 / 1.065 -> 1.002 / 0.972 /
            // 0.955 ms, DeltaNet 1.076 / 1.064 / 1.029 -> 0.941 / 0.944 / 0.973; placed before -w512, which then is not preferred)
            const nbWc = a512W && wideLr && BV === 64 && phaseAPreferred(tag, want);
            if (nbWc)
              pushSplit("split", { ...a, nbar: true }, { ...mk("walk", BV), NT: 512, wcopy: true }, `${tag}-nb-wc-w512`, recBytes, splitPrefer(BV, KP, nH, Vd, tag, want),
                `chunked split (${ioT}): every chunk's S0-independent part in parallel (${threadsOf(a)} threads, the inverse's warps and the helpers on their own barriers), then a walk of 512 threads over chunks per batch x head x ${BV} values whose warps without a Z tile issue the next record's copies`);
            pushSplit("split", a, { ...mk("walk", BV), NT: 512 }, `${tag}-w512`, recBytes, byDefault && !widePlain && !nbWc ? splitPrefer(BV, KP, nH, Vd, tag, want) : 0,
              `chunked split (${ioT}): every chunk's S0-independent part in parallel (${threadsOf(a)} threads), then a walk of 512 threads over chunks per batch x head x ${BV} values`);
            // low rank: the same walk with the readout's Q~ S0 on the warps without a Z tile, beside Z = U0 + M S0
            // (`-wq-w512`, chunked-walk-q.ts), on request
            if (opts.only && lr)
              pushSplit("split", a, { ...mk("walk", BV), NT: 512, rq: true }, `${tag}-wq-w512`, recBytes, 0,
                `chunked split (${ioT}): every chunk's S0-independent part in parallel (${threadsOf(a)} threads), then a walk of 512 threads over chunks per batch x head x ${BV} values, Q~ S0 formed beside Z = U0 + M S0`);
            // low rank after the overlapped phase A: Q~ left out of the record (fq a row instead), the walk copying q's rows
            // from the inputs (`-qi-w512`, chunked-split-qin.ts; `-qxi-w512`: X~ too, fx a row), on request
            for (const qin of opts.only && lr && a.ovl ? ([1, 2] as const) : [])
              pushSplit("split", { ...a, qin }, { ...mk("walk", BV), NT: 512, qin }, `${tag}-${qin === 2 ? "qxi" : "qi"}-w512`, recordBytesQ({ ...a, qin }), 0,
                `chunked split (${ioT}): every chunk's S0-independent part in parallel without Q~${qin === 2 ? " and X~ (Aq, M, U0, fq, fx" : " (X~, Aq, M, U0, fq"}; ${threadsOf(a)} threads), then a walk of 512 threads over chunks per batch x head x ${BV} values that copies q${qin === 2 ? " and the key rows" : ""} from the inputs`);
            // the core record's walk and -qxi's with the next record's copies on the warps without a Z tile (`-wc-w512`,
            // chunked-split-qin.ts seqc_chunk_walk_c), on request (-qi's spills 8 bytes at K = 128: not offered)
            for (const qin of opts.only && lr && a.ovl ? ([0, 2] as const) : [])
              if (!(qin === 0 && a.nbar && a512W && wideLr && BV === 64 && tag === `${want}-nb`)) // (auto's, pushed above)
              pushSplit("split", qin ? { ...a, qin } : a, { ...mk("walk", BV), NT: 512, ...(qin ? { qin } : {}), wcopy: true }, `${tag}${qin ? (qin === 2 ? "-qxi" : "-qi") : ""}-wc-w512`, qin ? recordBytesQ({ ...a, qin }) : recBytes, 0,
                `chunked split (${ioT}): every chunk's S0-independent part in parallel${qin ? ` without Q~${qin === 2 ? " and X~" : ""}` : ""} (${threadsOf(a)} threads), then a walk of 512 threads over chunks per batch x head x ${BV} values whose warps without a Z tile issue the next record's copies${qin ? ` (q${qin === 2 ? " and the key rows" : ""} from the inputs)` : ""}`);
          }
          // no low rank, a scalar or no decay, no stabiliser or value columns, 2-byte operands, K >= 64: split whose phase A
          // loads no alpha v and leaves it out of the record, the walk copying v's tile from the inputs (`-vi`,
          // chunked-split-vin.ts), on 256 or 512 threads (`-vi-w512`; `-vib-w512`: the readout over every warp), on request,
          // except the 64-value -vi-w512 where widePlain holds (auto's there since H200 run 29, instead of split's -w512)
          if ((opts.only || widePlain) && vinCase(KP, lr, decay, dtype, !!cr.stab || !!cr.columns) && !a.pipe && !a.ovl && !a.inv && !a.mats) {
            // (without the V region phase A's shared memory fits more blocks per SM: __launch_bounds__ bounds the registers for them)
            const av0: ChunkCfg = { ...a, vin: 1 };
            const av: ChunkCfg = { ...av0, minBlocks: Math.max(a.minBlocks ?? 1, Math.min(blocksPerSm(chunkLayout(av0).SMEM), Math.floor(2048 / threadsOf(a)))) };
            for (const BV of walkBVs.filter((bv) => bv >= 32))
              for (const [NT, vin, ws] of [[256, 1, "-vi"], [512, 1, "-vi-w512"], [512, 2, "-vib-w512"]] as const) {
                const byDefault = widePlain && BV === 64 && ws === "-vi-w512" && phaseAPreferred(tag, want);
                if (!opts.only && !byDefault) continue;
                pushSplit("split", av, { ...mk("walk", BV), ...(NT !== 256 ? { NT } : {}), vin }, `${tag}${ws}`, recordBytesV(av), byDefault ? splitPrefer(BV, KP, nH, Vd, tag, want) : 0,
                  `chunked split (${ioT}): every chunk's S0-independent part in parallel without alpha v (Q~, X~, Aq; ${threadsOf(a)} threads), then a walk of ${NT} threads over chunks per batch x head x ${BV} values that copies v's tile from the inputs`);
              }
          }
          // (-qi, -qxi on split's 256-thread walk, on request)
          for (const BV of opts.only && lr && a.ovl ? walkBVs : [])
            for (const qin of [1, 2] as const)
              pushSplit("split", { ...a, qin }, { ...mk("walk", BV), qin }, `${tag}-${qin === 2 ? "qxi" : "qi"}`, recordBytesQ({ ...a, qin }), 0,
                `chunked split (${ioT}): every chunk's S0-independent part in parallel without Q~${qin === 2 ? " and X~" : ""} (${threadsOf(a)} threads), then a walk over chunks per batch x head x ${BV} values that copies q${qin === 2 ? " and the key rows" : ""} from the inputs`);
          for (const BV of walkBVs)
            pushSplit("split", a, mk("walk", BV), tag, recBytes, (wideLr || widePlain) && BV === 64 ? 0 : splitPrefer(BV, KP, nH, Vd, tag, want),
              `chunked split (${ioT}): every chunk's S0-independent part in parallel (Q~, X~, Aq, M = T diag(beta) W~, U0 = T alpha V; ${threadsOf(a)} threads), then a walk over chunks per batch x head x ${BV} values`);
        }
      }
  }
  for (const push of stTwins) push();
  const modules: Record<string, { source: string }> = {};
  for (const d of Object.keys(wrappers)) {
    const core = [CHUNK_CORE_SOURCE, ...(withGroups.has(d) ? [CHUNK_GROUP_SOURCE] : []), ...(withWalkK.has(d) ? [CHUNK_WALK_K_SOURCE] : []), ...(withPipe.has(d) ? [CHUNK_PHASE_A_PIPE_SOURCE] : []), ...(withWalkQ.has(d) ? [CHUNK_WALK_Q_SOURCE] : []), ...(withOvl.has(d) ? [withGf.has(d) || withQin.has(d) ? CHUNK_PHASE_A_OVL_GF_SOURCE : CHUNK_PHASE_A_OVL_SOURCE] : []), ...(withVin.has(d) ? [CHUNK_SPLIT_VIN_SOURCE] : []), ...(withQin.has(d) ? [CHUNK_SPLIT_QIN_SOURCE] : []), ...(withWc.has(d) ? [CHUNK_SPLIT_WC_SOURCE] : []), ...(withNb.has(d) ? [CHUNK_PHASE_A_NBAR_SOURCE] : []), ...(withSt.has(d) ? [CHUNK_WALK_ST_SOURCE] : []), ...(withStC.has(d) ? [CHUNK_WALK_CST_SOURCE] : [])];
    modules[d] = { source: [`// seqc CUDA chunked kernels for model ${model.name}, ${d} (generated; do not edit)`, CUDA_PRELUDE, ...core, src.loader, ...wrappers[d]].join("\n\n") + "\n" };
  }
  // a stabiliser launch before and a post launch after the core where the canonical form has them
  return chunkedExtras(model, cr, src, { forms, modules });
}

/*
 * Auto's rules between the variants, from the H100 runs (bench/RESULTS.md, run 4: every variant timed at
 * three shapes per model; run 5: the 64-value walks and phase A with more warps at the eight shapes that
 * decided; run 7: split3's 8-value walks and RWKV-7's two-blocks-per-SM phase A). Plan order per key size: fused (widest tile first), then per phase A (256 threads, then more)
 * splitd (64, 32, 16), split3 (64, 32, 16), split (64, 32, 16); the runtime takes the first preferred one.
 *   fused: >= 1.5 blocks per SM; with per-key decay and low rank (RWKV-7, whose phase A is the heaviest) and a
 *     phase A of one block per SM (K = 128) when batch x heads >= 7/8 of the SMs per wave of fused blocks (run 7:
 *     at K = 64 its phase A fits two blocks per SM, and split beat fused 1.41x at (8, 2048, 16, 64)).
 *   phase A: at K = 128, with more warps where the plan has them (384 threads at two blocks per SM, 512 at
 *     one; run 5: phase A 2% to 20% faster, never slower beyond noise; 768 was slower than 512); at K <= 64
 *     the 256-thread one (the more-warps variants were measured there only for RWKV-7, whose pick is fused).
 *   split3 with 16-value walks: when 32-value walks would leave SMs idle (B x heads x V/32 < SMs): the walk
 *     over many chunks is the critical path, and split3's is the shortest (1.1x to 2.4x faster than split's).
 *     With low rank at K = 128, 8-value walks instead where they fit one wave (B x heads x V/8 <= SMs; run 7 at
 *     (1, 32768, 8, 128): the walk 12% shorter for DeltaNet and 8% for Gated DeltaNet, 3% and 4% of the forward;
 *     RWKV-7 1%; without low rank no gain, its walk does one product per chunk).
 *   splitd with 32-value walks: scalar or no decay, no low rank, K <= 64, where 32-value walks give a block per SM
 *     (run 8: Simple GLA at (8, 2048, 16, 64) 0.193 ms vs split3's 0.264 and split's 0.232; Mamba-2 at
 *     (4, 8192, 32, 64) 0.877 vs split3's 1.116; phase A writes no Q~, X~ or alpha v). At K = 128 splitd's walk,
 *     reading q, k and v from the inputs, was 20-25% slower than split's (0.60 vs 0.48 ms, Simple GLA at
 *     (4, 8192, 16, 128)) and the whole forward 1-8% slower; with low rank at K = 64 it tied split (+-4%): not used.
 *     (split3 with 32-value walks had this case before run 8, and keeps it for fp32 operands, not measured.)
 *   split with 64-value walks: at K = 128 when those walks give >= 7/8 of a block per SM (run 5: the walks
 *     that fill the GPU are bound by reading the records, once per value tile: 64-value tiles read them half as
 *     often; the split walk 0.55 -> 0.45 ms for Simple GLA, 0.75 -> 0.57 DeltaNet, 1.22 -> 0.94 RWKV-7).
 *   split with 32-value walks: the rest of the shapes that fill the SMs.
 *   phase A's -iw / -mw (run 13, 2-byte operands, K >= 64; preferredPhaseA): low rank with scalar or no decay inverts
 *     by warp products (DeltaNet / Gated DeltaNet 1.01-1.10x, at K = 64 on 384 threads), a per-key decay forms A and
 *     Aq by warp tasks (GLA 1.13-1.20x, RWKV-7 1.09-1.13x). RWKV-7 keeps the block-row inverse (-iw was slower there).
 *     At K = 64 with low rank, a scalar or no decay and 2-byte I/O of one type, phase A on 512 threads (-a512-iw, a512Lr;
 *     runs 20 and 21, three rounds: 1.07-1.17x over -a384-iw; since H200 runs 26b and 27 -a512-iw-ios, 1.07-1.16x over
 *     -a512-iw); RWKV-7's -a512-mw was not confirmed (run 21).
 *   split3's walk by warps (-ww, run 14: slower) and with software-pipelined products (-wp, run 15: no faster) were
 *     removed after those runs.
 *   low rank with a scalar or no decay, 2-byte I/O of one type, K = 128 (wideLr; run 19, DeltaNet and Gated DeltaNet):
 *     split3's 16-value walk with the next record's copies on the warps that hold no tile of Z = U0 + M S0 (-wc) takes
 *     the 8-value walk's shapes (walk 0.65 -> 0.58 ms at (1, 32768, 8, 128), forward 1.05-1.07x); split's 64-value walk
 *     on 512 threads (-w512) takes the 256-thread one's (walk 0.53 -> 0.46-0.48 ms at (4, 8192, 16, 128), forward
 *     1.04-1.05x). Split-K of Z over every warp (-wk, -wk-w512) was no faster and stays on request, as do -wc at other
 *     tiles and -w512 elsewhere (Simple GLA's split walk: 0.385 vs 0.368-0.386 ms, within noise on the H100; on the H200,
 *     run 28, faster: w512Plain). RWKV-7 (per-key decay)
 *     was not timed with them and keeps its picks. On the H200 (run 23b) the -w512 walk's phase A is the 512-thread one
 *     (-a512-iw-w512, a512Wide: DeltaNet 1.16 / 1.15 -> 1.12 / 1.12 ms, Gated DeltaNet 1.18 / 1.17 -> 1.15 / 1.11 at
 *     (4, 8192, 16, 128)); split3's walks kept -a384-iw. Since H200 run 26 every two-kernel form there follows -a512-iw-ios
 *     (chunked-phase-a-ovl.ts: the record's Q~, X~, Aq copies, W's scale and alpha v's load on the warps the inverse leaves
 *     idle, M and U0 staged in shared memory for 16-byte stores), the walks unchanged: phase A 0.66-0.72 -> 0.60-0.62 ms at
 *     (4, 8192, 16, 128), split3's -wc forward 1.045-1.099 -> 0.995-1.037 ms at (1, 32768, 8, 128) (-a384-iw-ios 1.04-1.07:
 *     most of the gain is the staged stores; -io alone 0.66-0.68).
 *   split's walk with Q~ S0 beside Z (-wq-w512, chunked-walk-q.ts): on request (H200 run 25 at (4, 8192, 16, 128): walk
 *     0.506 -> 0.489 ms on average, forwards after -a512-iw 1.117 / 1.122 -> 1.087 / 1.138 (DeltaNet), 1.166 / 1.166 ->
 *     1.161 / 1.121 (Gated DeltaNet): not faster in both rounds).
 *   phase A software-pipelined over up to M items a block (-ap<M>, pipeCase; H200 runs 24 and 24b, DeltaNet and Gated
 *     DeltaNet at (8, 2048, 16, 64), five rounds): phase A alone within round-to-round spread of -a512-iw's (forwards
 *     0.96-1.05x); on request only.
 */
function fusedPrefer(blocks: SizeExpr, nH: SizeExpr, decay: number, lr: boolean, bpsA: number): SizeExpr {
  const many: SizeExpr = [">=", ["*", 2, blocks], ["*", 3, "LIMIT_SMS"]];
  // batch x heads >= 7/8 of the SMs per wave of fused blocks (one per SM): the fused walk's serial chunks cost
  // less than phase A's work over every chunk only when its blocks cover the GPU in one wave per head group, and
  // only while phase A fits one block per SM (run 7: RWKV-7's phase A at K = 64 with two blocks per SM, 0.81 ms
  // instead of 1.23, made split 1.41x faster than fused at (8, 2048, 16, 64))
  const heavyA: SizeExpr = [">=", ["*", 8, "B", nH], ["*", 7, "LIMIT_SMS", ["ceilDiv", blocks, "LIMIT_SMS"]]];
  return ["*", [">=", "T", 64], decay === 2 && lr && bpsA < 2 ? heavyA : many];
}
/** The phase-A suffix auto uses at a key size (`alt`: the plan's first more-warps phase A there, "" when there is none):
 *  the more-warps one at K = 128; with 2-byte operands at K >= 64 (run 13), with low rank and scalar or no decay the
 *  inverse by warp products (`-iw`; at K = 64 with 384 threads where the plan has them), with a per-key decay the block
 *  pairs by warp tasks (`-mw`); a512Lr's (K = 64) and a512Wide's (K = 128) cases on 512 threads as `-a512-iw-ios`. */
function preferredPhaseA(KP: number, alt: string, lr: boolean, decay: number, dtype: ChunkDtype, a512: boolean, a512W: boolean): string {
  if (a512) return decay < 2 ? "-a512-iw-ios" : "-a512-mw";
  if (a512W) return "-a512-iw-ios";
  const base = KP >= 128 && alt ? alt : "";
  if (dtype === "f32" || KP < 64) return base;
  if (lr && decay < 2) return `${KP === 64 && alt === "-a384" ? alt : base}-iw`;
  return decay === 2 ? `${base}-mw` : base;
}
/** The low-rank phase A on 512 threads at two blocks per SM (`-a512-iw` for a scalar or no decay, `-a512-mw` for a
 *  per-key decay) as auto's, by capability: low rank, 2-byte I/O of one type, K = 64, phase A fitting two blocks per SM
 *  (`bps`), and a decay kind in A512_DECAYS. H100 forwards at (8, 2048, 16, 64), -a384-iw -> -a512-iw, run 20 / run 21's
 *  two rounds: DeltaNet 0.426 -> 0.387 / 0.366 -> 0.338, 0.388 -> 0.347 ms; Gated DeltaNet 0.405 -> 0.366 / 0.399 -> 0.362,
 *  0.424 -> 0.362. Since H200 runs 26b and 27 (one call each, two rounds) as `-a512-iw-ios` (chunked-phase-a-ovl.ts, as
 *  a512Wide's at K = 128), before every two-kernel form: split's 32-value walk at (8, 2048, 16, 64) DeltaNet 0.340 / 0.363
 *  -> 0.314 / 0.314 and 0.372 / 0.359 -> 0.337 / 0.332 ms, Gated DeltaNet 0.396 / 0.364 -> 0.349 / 0.340 and 0.378 / 0.388
 *  -> 0.347 / 0.351 (phase A alone 0.249-0.313 -> 0.224-0.264). */
function a512Lr(KP: number, bps: number, lr: boolean, decay: number, dtype: ChunkDtype, out: ChunkDtype): boolean {
  return lr && dtype !== "f32" && out === dtype && KP === 64 && bps === 2 && A512_DECAYS.includes(decay);
}
/** The low-rank phase A on 512 threads at two blocks per SM at K = 128 (wideLr's case with a decay kind in A512_DECAYS):
 *  since H200 run 26 `-a512-iw-ios` (chunked-phase-a-ovl.ts) before every two-kernel form, where run 23b had `-a512-iw`
 *  before split's 512-thread 64-value walk only and -a384-iw before the others. Run 23b at (4, 8192, 16, 128), two rounds:
 *  DeltaNet 1.162 / 1.148 -> 1.122 / 1.120 ms, Gated DeltaNet 1.180 / 1.166 -> 1.147 / 1.112 (-a384-iw -> -a512-iw); run 26,
 *  -a512-iw -> -a512-iw-ios: DeltaNet 1.097 / 1.170 -> 1.065 / 1.061, Gated DeltaNet 1.158 / 1.197 -> 1.048 / 1.079; at
 *  (1, 32768, 8, 128) split3's -wc walk after -a384-iw -> -a512-iw-ios: DeltaNet 1.045 / 1.092 -> 0.995 / 1.017, Gated
 *  DeltaNet 1.092 / 1.099 -> 1.016 / 1.037. */
function a512Wide(KP: number, bps: number, lr: boolean, decay: number, dtype: ChunkDtype, out: ChunkDtype): boolean {
  return lr && dtype !== "f32" && out === dtype && KP === 128 && bps === 2 && A512_DECAYS.includes(decay);
}
/** Split's 64-value walk on 512 threads (`-w512`) as auto's instead of the 256-thread one without low rank: a scalar or
 *  no decay, no stabiliser or value columns, 2-byte I/O of one type, K = 128 (`stabOrCols`: the model has either). H200
 *  run 28 (one call, two rounds) at Simple GLA's (4, 8192, 16, 128): forward 0.703 / 0.691 -> 0.667 / 0.622 ms (walk
 *  alone 0.420 / 0.413 -> 0.392 / 0.356; phase A the same kernel); H100 run 19 had them within noise (0.697 vs 0.698).
 *  Since H200 run 29 (one call, three rounds, the second in reverse plan order) auto takes that walk without alpha v in the
 *  record (`-vi-w512`, chunked-split-vin.ts) there: 0.669 / 0.622 / 0.667 -> 0.568 / 0.550 / 0.554 ms (phase A alone
 *  0.328 / 0.284 / 0.318 -> 0.244 / 0.222 / 0.212, the walk 0.391 / 0.356 / 0.386 -> 0.405 / 0.366 / 0.360); fla
 *  chunk_simple_gla 0.580 in the same call. */
function w512Plain(KP: number, lr: boolean, decay: number, dtype: ChunkDtype, out: ChunkDtype, stabOrCols: boolean): boolean {
  return !lr && decay < 2 && !stabOrCols && dtype !== "f32" && out === dtype && KP === 128;
}
/** The decay kinds (0 none, 1 scalar, 2 per key) whose low-rank phase A at K = 64 auto runs on 512 threads (a512Lr;
 *  at K = 128 as -a512-iw-ios, a512Wide).
 *  Not the per-key decay: RWKV-7's -a512-mw (64 registers, 16 bytes spilled) was 0.928 -> 0.875 ms in run 20 but
 *  0.908 -> 1.070 and 0.917 -> 0.854 in run 21's two rounds against the 256-thread -mw; it stays on request. */
export const A512_DECAYS: readonly number[] = [0, 1];
/** Items (batch, head, chunk) a block of the pipelined phase A takes at most (variants `-ap<M>`). */
export const PIPE_ITEMS = [2, 4, 8, 16] as const;
/** Where phase A has a pipelined form: low rank with a scalar or no decay, 2-byte operands, K = 64 (alpha v loaded
 *  late), phase A fitting two blocks per SM (`bps`; its second [W; Q; X] buffer still fits two: 113 KiB at K = 64). */
const pipeCase = (KP: number, bps: number, lr: boolean, decay: number, dtype: ChunkDtype) => lr && decay < 2 && dtype !== "f32" && KP === 64 && bps === 2;
/** Phase A's grid: a block per item (`items`), or per PIPE items for a pipelined one. */
const phaseAGrid = (a: ChunkCfg, items: SizeExpr): SizeExpr => (a.pipe ? ["ceilDiv", items, a.pipe] : items);
/** The phase A auto may use: `tag` is the variant's phase-A suffix, `want` preferredPhaseA's. */
function phaseAPreferred(tag: string, want: string): boolean {
  return tag === want;
}
function split3Prefer(BV: number, KP: number, nH: SizeExpr, Vd: SizeExpr, decay: number, lr: boolean, tag: string, want: string, dtype: ChunkDtype, wideLr: boolean): SizeExpr {
  // (wideLr: the 16-value -wc walk takes the 8-value walk's shapes, split3wcPrefer)
  if (BV === 64 || !phaseAPreferred(tag, want) || (BV === 8 && wideLr)) return 0;
  const walk32: SizeExpr = ["*", "B", nH, ["ceilDiv", Vd, 32]];
  // low rank at K = 128: 8-value walks where they fit one wave (one block per SM) and 16-value walks leave SMs idle
  const walk8fits: SizeExpr = lr && KP >= 128 ? [">=", "LIMIT_SMS", ["*", "B", nH, ["ceilDiv", Vd, 8]]] : 0;
  if (BV === 8) return ["*", [">=", "T", 64], [">=", ["-", "LIMIT_SMS", 1], walk32], walk8fits];
  if (BV === 16) return ["*", [">=", "T", 64], [">=", ["-", "LIMIT_SMS", 1], walk32], lr && KP >= 128 ? ["-", 1, walk8fits] : 1];
  // (2-byte operands: splitd's case since run 8; fp32 not measured, it keeps split3)
  return dtype === "f32" && splitdCase(KP, decay, lr) ? ["*", [">=", "T", 64], [">=", walk32, "LIMIT_SMS"]] : 0;
}
/** split3's 16-value walk with the next record's copies on the warps without a Z tile (`-wc`; low rank, scalar or no
 *  decay, 2-byte I/O, K = 128): where the 8-value walk was auto's (few heads: 32-value walks leave SMs idle, 8-value
 *  walks fit one wave). H100 run 19 at (1, 32768, 8, 128): DeltaNet 1.135 -> 1.064 ms, Gated DeltaNet 1.191 -> 1.132
 *  (walk 0.65 -> 0.58; the 8-value -wc walk 0.64, split-K -wk no faster). */
function split3wcPrefer(nH: SizeExpr, Vd: SizeExpr): SizeExpr {
  const walk32: SizeExpr = ["*", "B", nH, ["ceilDiv", Vd, 32]];
  return ["*", [">=", "T", 64], [">=", ["-", "LIMIT_SMS", 1], walk32], [">=", "LIMIT_SMS", ["*", "B", nH, ["ceilDiv", Vd, 8]]]];
}
/** Grouped split3's group counts (variants `-g<G>`). */
export const SPLIT3_GROUPS = [2, 3, 4, 8, 16] as const;
/** Grouped split3's readout runs (variants `-g<G>t<M>`: M consecutive chunks of a group per readout block). */
export const SPLIT3_RUNS = [4, 8] as const;
/** The grouped variants a plan holds without `only`, auto's candidates: -g<G>t (S_in in the operand type) with
 *  2-byte operands and outputs, K >= 64, the preferred phase A, and the walk's value tile measured fastest (32 values at
 *  K = 128, 64 at K = 64), every G. H100 run 17 at (1, 32768): forwards 1.10-1.19x faster than split3's 16-value walk
 *  (Simple GLA 0.672 -> 0.566 ms, GLA 0.890 -> 0.764, Mamba-2 1.179 -> 1.072). -g<G> (fp32 S_in: readout 0.28-0.30 ms
 *  vs -g<G>t's 0.22) and -g<G>t<M> (runs of chunks: no faster at K = 128, 1.6x slower readout at Mamba-2) only on
 *  request, as are other value tiles (16 values: walk 0.255 vs 0.205 ms). */
const groupedByDefault = (BV: number, KP: number, grpT: boolean, M: number, tag: string, want: string, dtype: ChunkDtype, out: ChunkDtype) =>
  grpT && M === 1 && dtype !== "f32" && out === dtype && KP >= 64 && BV === (KP >= 128 ? 32 : 64) && phaseAPreferred(tag, want);
/** Grouped split3 -g<G>t (a variant groupedByDefault keeps): auto's pick where split3's 16-value walk was (few heads:
 *  B x H x 32-value tiles below the SMs), the sequence at least 16384 long (measured at 32768: 512 chunks), with the
 *  largest G whose walk (B x H x G x value tiles) fits one wave: run 17's fastest, Simple GLA / GLA v32-g4
 *  (128 blocks on 132 SMs) and Mamba-2 v64-g4 (128). */
function split3gPrefer(G: number, BV: number, nH: SizeExpr, Vd: SizeExpr): SizeExpr {
  const blocks = (g: number): SizeExpr => ["*", "B", nH, g, ["ceilDiv", Vd, BV]];
  const next = SPLIT3_GROUPS.find((g) => g > G);
  return ["*", [">=", "T", 16384], [">=", ["-", "LIMIT_SMS", 1], ["*", "B", nH, ["ceilDiv", Vd, 32]]], [">=", "LIMIT_SMS", blocks(G)], next ? ["-", 1, [">=", "LIMIT_SMS", blocks(next)]] : 1];
}
/** Scalar or no decay, no low rank, K <= 64: splitd's 32-value walk takes the shapes where those walks fill the SMs. */
const splitdCase = (KP: number, decay: number, lr: boolean) => !lr && decay <= 1 && KP <= 64;
function splitdPrefer(BV: number, KP: number, nH: SizeExpr, Vd: SizeExpr, decay: number, lr: boolean, tag: string, want: string, dtype: ChunkDtype): SizeExpr {
  if (dtype === "f32" || BV !== 32 || !phaseAPreferred(tag, want) || !splitdCase(KP, decay, lr)) return 0;
  return ["*", [">=", "T", 64], [">=", ["*", "B", nH, ["ceilDiv", Vd, 32]], "LIMIT_SMS"]];
}
function splitPrefer(BV: number, KP: number, nH: SizeExpr, Vd: SizeExpr, tag: string, want: string): SizeExpr {
  if (!phaseAPreferred(tag, want)) return 0;
  if (BV === 64) return KP >= 128 ? ["*", [">=", "T", 64], [">=", ["*", 8, "B", nH, ["ceilDiv", Vd, 64]], ["*", 7, "LIMIT_SMS"]]] : 0;
  // 32-value tiles when they give a block per SM, else 16 (more blocks for few heads)
  return BV === 32 ? ["*", [">=", "T", 64], [">=", ["*", "B", nH, ["ceilDiv", Vd, 32]], "LIMIT_SMS"]] : [">=", "T", 64];
}

/** Bytes of one phase-A record (SeqcRec in chunked-core.ts). */
export function recordBytes(c: ChunkCfg): number {
  const sz = c.dtype === "f32" ? 4 : 2;
  const F = CHUNK_F;
  const end = F * c.KP * (c.lr ? 3 : 2) + F * F + F * c.VP;
  return Math.ceil((end * sz) / 16) * 16 + c.KP * 4;
}

/** Bytes of one low-rank record without Q~ (SeqcRecQ in chunked-split-qin.ts): X~ (qin 1), M, Aq, U0, exp(G_n), fq,
 *  fx (qin 2). */
export function recordBytesQ(c: ChunkCfg): number {
  const sz = c.dtype === "f32" ? 4 : 2;
  const F = CHUNK_F, q = c.qin ?? 1;
  return Math.ceil((((q === 2 ? 1 : 2) * F * c.KP + F * F + F * c.VP) * sz) / 16) * 16 + (c.KP + q * F) * 4;
}

/** Bytes of one record without alpha v (SeqcRecV in chunked-split-vin.ts): Q~, X~, Aq, exp(G_n). */
export function recordBytesV(c: ChunkCfg): number {
  const sz = c.dtype === "f32" ? 4 : 2;
  const F = CHUNK_F;
  return Math.ceil(((2 * F * c.KP + F * F) * sz) / 16) * 16 + c.KP * 4;
}
/** Where split has its no-alpha-v form (`-vi`): no low rank, a scalar or no decay, no stabiliser or value columns (`stabOrCols`),
 *  2-byte operands, K >= 64. */
const vinCase = (KP: number, lr: boolean, decay: number, dtype: ChunkDtype, stabOrCols: boolean) => !lr && decay < 2 && !stabOrCols && dtype !== "f32" && KP >= 64;

/** Bytes of one splitd record (SeqcRecD in chunked-core.ts): Aq (M, U0 with low rank), exp(G_n), fq, fx. */
export function recordBytesD(c: ChunkCfg): number {
  const sz = c.dtype === "f32" ? 4 : 2;
  const F = CHUNK_F;
  const end = F * F + (c.lr ? F * c.KP + F * c.VP : 0);
  return Math.ceil((end * sz) / 16) * 16 + (c.KP + 2 * F) * 4;
}

export { cfgName };
