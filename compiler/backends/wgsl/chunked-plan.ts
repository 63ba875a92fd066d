/**
 * The chunked form in the WGSL launch plan: for a model with the matrix canonical form, its variants
 * (row slots per chunk F, value tile BV of the walk), each two launches
 * (phase A over every chunk, then the walk), the record buffers between them, and cost terms for `auto`.
 * Shaders = per-model functions (chunked-model.ts) + the core (chunked-core.ts), nothing else.
 */
import * as I from "../../ir/types.ts";
import type { Binding, BufferRef, FormPlan, KernelLaunch, SizeExpr } from "../../../runtime/plan.ts";
import { matrixForm } from "../../forms/matrix-form.ts";
import { chunkRows, chunkSizes, type ChunkRows } from "../../forms/chunk-rows.ts";
import { inputBuffer, outputBuffer, PARAMS, STATES, STATES_IN, uniformFields } from "../../kernel/interface.ts";
import { extentS, sumS, mulS } from "../../kernel/symbolic.ts";
import { trafficBytes } from "../../kernel/sequential.ts";
import { overrideValues } from "../cuda/overrides.ts";
import { chunkModelWgsl } from "./chunked-model.ts";
import { CHUNK_WG, phaseAMain, phaseAShared, recordFloats, RECORDS, walkMain, type ChunkCoreCfg } from "./chunked-core.ts";
import { readoutMain, readoutShared, RO_BV, S3_WG, walk3Layout, walk3Main, walk3Shared, type Split3Cfg } from "./chunked-split3.ts";
import { readoutTiledMain, readoutTiledShared, readoutTiledThreads, RT_BV } from "./chunked-readout-tiled.ts";
import { unrollConstLoops } from "./unroll.ts";
import { wgslMathHelpers } from "./render.ts";
import { postMain, stabMain } from "./chunked-extra.ts";
import { chunkExtraPlan, EXTRA_THREADS, STAB, YBUF } from "../../forms/chunk-extra.ts";

export type WgslChunkedEligibility = { ok: true; rows: ChunkRows } | { ok: false; why: string };

export function wgslChunkedEligible(model: I.Model): WgslChunkedEligibility {
  const mf = matrixForm(model);
  if (!mf.ok) return { ok: false, why: mf.reason };
  const cr = chunkRows(mf.form);
  if (!cr.ok) return { ok: false, why: cr.reason };
  if (!cr.rows.postPointwise) return { ok: false, why: "its outputs read y = S^T q at other positions than their own (the walk applies post pointwise)" };
  return { ok: true, rows: cr.rows };
}

/**
 * Cost terms, calibrated on the H100 through Dawn/Vulkan (bench/RESULTS.md, WGSL chunked runs 1-2): a staged
 * tile of 32 record rows in the walk (a global load round and two barriers) costs `sync` ns, a multiply-add
 * of one thread `work` ns; the walk's workgroups count `WALK_THREAD_WEIGHT` times their threads (several
 * walk workgroups on one multiprocessor slow each other down). Phase A runs `PHASE_A_RESIDENT` chunks at a time.
 */
export const CHUNK_COST_NS = { sync: 2000, work: 40 };
const WALK_THREAD_WEIGHT = 4;
const PHASE_A_RESIDENT = 264;

/**
 * Cost terms of the split3 variants (chunked-split3.ts): a chunk of the state walk costs `sync` ns per barrier
 * round (a prefetched record load behind it), a multiply-add of one walk thread `work` ns; phase A and the
 * readout, both parallel over chunks, run `PHASE_A_RESIDENT` and `readoutResident` workgroups at a time; the
 * walk's workgroups count `threadWeight` times their threads. The tiled readout (s3t) costs `tiledReadout` times the
 * plain one at 32 or more tokens per chunk, `tiledReadoutNarrow` times below (its workgroups have 4C threads): the
 * measured ratios of the readout's time in two H100 runs (bench/RESULTS.md, "register-tiled readout": 0.30-1.27,
 * median 0.46, at C = 32; 0.85-1.19 at C = 16).
 */
export const SPLIT3_COST = { syncNs: 500, workNs: 15, readoutResident: 2112, threadWeight: 4, tiledReadout: 0.5, tiledReadoutNarrow: 1.1 };
/** Scratch buffer of the split3 variants: every chunk's start state, [chunk][key][value]. */
const S0 = "s0";
/** State-walk tiles of the split3 variants: with low rank the key tile is the padded key size (BK >= K). */
const SPLIT3_TILES_LR = [[32, 32], [64, 16], [64, 32], [128, 8], [128, 16]] as const;
const SPLIT3_TILES = [[32, 32], [64, 16]] as const;

const pow2ceil = (n: number) => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)));

export interface WgslChunkedLowering {
  forms: FormPlan[];
  shaders: Record<string, string>;
}

/** `only`: keep just these variants (tests). */
export function lowerWgslChunked(model: I.Model, cr: ChunkRows, opts: { only?: (variant: string) => boolean } = {}): WgslChunkedLowering {
  const form = cr.form;
  const gen = chunkModelWgsl(model, cr);
  const { Kd, Vd, nH, decay, lr } = chunkSizes(model, cr);
  const loopRows = cr.rows.some((r) => r.loop);
  const rowsPerToken: SizeExpr = sumS(cr.rows.map((r) => (r.loop ? extentS(form.steps[r.step].loop!) : 1)));
  const rtps = loopRows ? [1, 2, 4] : [pow2ceil(cr.rows.length)];
  if (rtps[0] > 4) return { forms: [], shaders: {} };
  const uniforms = uniformFields(model);
  const overrideNames = [...model.dims.map((d) => `D_${d.name}`), ...I.tensorsOfKind(model, "param").map((p) => `PO_${p.name}`)];
  const forms: FormPlan[] = [];
  const shaders: Record<string, string> = {};
  const fnNames = gen.functions.map((f) => /^fn (\w+)/.exec(f)?.[1] ?? "");

  /** A shader: header, the functions main needs (transitively), main. */
  const shader = (name: string, main: string, extraOverrides: string[]): { code: string; bindings: Binding[] } => {
    const fns: string[] = [];
    const seen = new Set<number>();
    let text = main;
    for (let changed = true; changed; ) {
      changed = false;
      fnNames.forEach((n, i) => {
        if (!seen.has(i) && new RegExp(`\\b${n}\\(`).test(text)) {
          seen.add(i);
          fns.push(gen.functions[i]);
          text += gen.functions[i];
          changed = true;
        }
      });
    }
    const ordered = gen.functions.filter((_, i) => seen.has(i));
    const buffers: { name: string; ref: BufferRef; access: "read" | "read_write" }[] = [];
    for (const t of I.tensorsOfKind(model, "input")) buffers.push({ name: inputBuffer(t.name), ref: { kind: "input", name: t.name }, access: "read" });
    buffers.push({ name: PARAMS, ref: { kind: "params" }, access: "read" });
    buffers.push({ name: STATES, ref: { kind: "states" }, access: "read_write" });
    buffers.push({ name: STATES_IN, ref: { kind: "initialStates" }, access: "read" });
    for (const t of I.tensorsOfKind(model, "output")) buffers.push({ name: outputBuffer(t.name), ref: { kind: "output", name: t.name }, access: "read_write" });
    for (const r of [...RECORDS, S0, STAB, YBUF]) buffers.push({ name: r, ref: { kind: "scratch", name: r }, access: "read_write" });
    const used = buffers.filter((b) => new RegExp(`\\b${b.name}\\[`).test(text));
    const lines: string[] = [`// seqc: chunked kernel ${name} of model ${model.name} (generated core + per-model functions)`];
    const fields = [...uniforms];
    while (fields.length % 4 !== 0) fields.push(`_pad${fields.length}`);
    lines.push(`struct Uniforms {`, ...fields.map((f) => `  ${f}: u32,`), `}`);
    lines.push(`@group(0) @binding(0) var<uniform> u: Uniforms;`);
    const bindings: Binding[] = [{ binding: 0, buffer: { kind: "uniforms" }, access: "uniform" }];
    used.forEach((b, i) => {
      lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<f32>;`);
      bindings.push({ binding: i + 1, buffer: b.ref, access: b.access });
    });
    for (const o of [...overrideNames, ...extraOverrides]) lines.push(`override ${o}: u32;`);
    lines.push(...wgslMathHelpers(gen.used), ...ordered, main);
    return { code: lines.join("\n") + "\n", bindings };
  };

  const ov = overrideValues(model, overrideNames);
  // a stabiliser launch before phase A, a post launch after the walk (value columns): chunked-extra.ts
  const xp = chunkExtraPlan(model, cr);
  const extra = (): { pre: KernelLaunch[]; post: KernelLaunch[]; scratch: { name: string; floats: SizeExpr }[]; bytes: SizeExpr; applicable: SizeExpr } => {
    const pre: KernelLaunch[] = [];
    const post: KernelLaunch[] = [];
    const scratch: { name: string; floats: SizeExpr }[] = [];
    if (xp.stab) {
      const name = `${model.name}_chunk_stab`;
      const sh = shader(name, stabMain(), []);
      shaders[name] = sh.code;
      pre.push({ name, shader: name, entry: "main", overrides: { ...ov }, workgroups: xp.stab.grid, sharedBytes: xp.stab.sharedBytes, threads: EXTRA_THREADS, bindings: sh.bindings });
      scratch.push({ name: STAB, floats: ["max", 4, xp.stab.workspace.words] });
    }
    if (xp.post) {
      const name = `${model.name}_chunk_post`;
      const sh = shader(name, postMain(), []);
      shaders[name] = sh.code;
      post.push({ name, shader: name, entry: "main", overrides: { ...ov }, workgroups: xp.post.grid, sharedBytes: xp.post.sharedBytes, threads: EXTRA_THREADS, bindings: sh.bindings });
      scratch.push({ name: YBUF, floats: ["max", 4, xp.post.workspace.words] });
    }
    return {
      pre,
      post,
      scratch,
      bytes: ["+", xp.stab ? ["*", 12, "B", nH, "T"] : 0, xp.post ? ["*", 8, xp.post.workspace.words] : 0],
      applicable: xp.post ? [">=", "LIMIT_BINDING", ["*", 4, xp.post.workspace.words]] : 1,
    };
  };
  const ex = extra();
  for (const RTP of rtps)
    for (const F of [64, 32])
      for (const BV of [32, 16])
        {
          const variant = `chunked-slots${F}-v${BV}-r${RTP}`;
          if (opts.only && !opts.only(variant)) continue;
          const cfg: ChunkCoreCfg = { F, RTP, decay, lr, BV };
          const C = F / RTP;
          const aName = `${model.name}_chunk_a_f${F}_r${RTP}`;
          const wName = `${model.name}_chunk_walk_f${F}_v${BV}_r${RTP}`;
          const a = shader(aName, phaseAMain(cfg), []);
          const w = shader(wName, walkMain(cfg), ["SEQC_K"]);
          shaders[aName] = a.code;
          shaders[wName] = w.code;
          const nc: SizeExpr = ["ceilDiv", "T", C];
          const nj: SizeExpr = ["ceilDiv", Vd, BV];
          const aShared = phaseAShared(cfg) * 4;
          const wShared: SizeExpr = ["*", 4, ["+", ["*", Kd, BV], F * BV, Math.max(F, C) * 32]];
          const launches: KernelLaunch[] = [
            ...ex.pre,
            { name: aName, shader: aName, entry: "main", overrides: { ...ov }, workgroups: ["*", "B", nH, nc], sharedBytes: aShared, threads: CHUNK_WG, bindings: a.bindings },
            { name: wName, shader: wName, entry: "main", overrides: { ...ov, SEQC_K: Kd }, workgroups: ["*", "B", nH, nj], sharedBytes: wShared, threads: CHUNK_WG, bindings: w.bindings },
            ...ex.post,
          ];
          // record floats per chunk: rec_a = [Q~ (C x K) | X~ (F x K) | Aq (C x F) | exp(G_n) (K)], rec_b = [M (F x K, low rank) | U0 (F x V)]
          const per = recordFloats(cfg, Kd, Vd) as Record<string, SizeExpr>;
          const chunks: SizeExpr = ["*", "B", nH, nc];
          const recFloats = sumS(Object.values(per));
          // walk work per chunk and thread (multiply-adds), phase A's per workgroup
          // multiply-adds of one thread: the walk per chunk (Z, y, S'), phase A per chunk
          const walkWork: SizeExpr = ["ceilDiv", ["*", BV, ["+", lr ? ["*", F, Kd] : 0, ["*", C, ["+", Kd, F / 2]], ["*", Kd, F]]], CHUNK_WG];
          const aWork: SizeExpr = ["ceilDiv", ["+", ["*", F, F, Kd, lr ? 2 : 1, decay === 2 ? 3 : 1], lr ? ["+", F * F * F / 2, ["*", F * F / 2, ["+", Kd, Vd]]] : 0], CHUNK_WG];
          // staged tiles per chunk in the walk (32 keys or rows each), scaled by the rows staged (F or C)
          const tiles: SizeExpr = ["+", ["*", lr ? 2 : 1, ["ceilDiv", Kd, 32], F / 32], ["*", ["+", ["ceilDiv", Kd, 32], Math.ceil(F / 32)], Math.max(1, C / 32)]];
          forms.push({
            form: "chunked",
            variant,
            applicable: [
              "*",
              [">=", RTP, ["pow2ceil", rowsPerToken]],
              [">=", ["pow2ceil", rowsPerToken], RTP],
              [">=", "LIMIT_SHARED", ["max", aShared, wShared]],
              ex.applicable,
            ],
            vars: [],
            scratch: [...Object.entries(per).map(([name, f]) => ({ name, floats: ["max", 4, ["*", chunks, f]] as SizeExpr })), ...ex.scratch],
            kernels: launches,
            cost: {
              bytes: sumS([trafficBytes(model), mulS(4, chunks, recFloats, ["+", 1, nj]), ex.bytes]),
              serialSteps: ["+", ["*", nc, walkWork], ["*", ["ceilDiv", chunks, PHASE_A_RESIDENT], aWork]],
              syncs: ["*", nc, tiles],
              syncNs: CHUNK_COST_NS.sync,
              workNs: CHUNK_COST_NS.work,
              threads: ["*", "B", nH, nj, CHUNK_WG * WALK_THREAD_WEIGHT],
              flops: ["*", 2, chunks, ["+", ["*", F, F, Kd], ["*", 3, F, Kd, Vd]]],
            },
          });
        }
  // split3: phase A (shared with the variants above), a state-only walk, the readout over every chunk
  for (const RTP of rtps)
    for (const F of lr ? [32] : [32, 64])
      for (const [BK, BV] of lr ? SPLIT3_TILES_LR : SPLIT3_TILES)
      for (const tiled of [false, true]) {
        const cfg: Split3Cfg = { F, RTP, decay, lr, BV, BK };
        const L = walk3Layout(cfg);
        if (!L) continue;
        // s3t: the readout with register micro-tiles (chunked-readout-tiled.ts); s3: the plain one
        const variant = `chunked-s3${tiled ? "t" : ""}-slots${F}-k${BK}-v${BV}-r${RTP}`;
        if (opts.only && !opts.only(variant)) continue;
        const C = F / RTP;
        const aName = `${model.name}_chunk_a_f${F}_r${RTP}`;
        const wName = `${model.name}_chunk_walk3_f${F}_k${BK}_v${BV}_r${RTP}`;
        const rName = `${model.name}_chunk_readout${tiled ? "_tiled" : ""}_f${F}_r${RTP}`;
        const a = shader(aName, phaseAMain(cfg), []);
        shaders[aName] = a.code;
        // s3t's readout: its register arrays indexed by constants (unroll.ts)
        const w = shader(wName, walk3Main(cfg), []);
        const r = shader(rName, tiled ? unrollConstLoops(readoutTiledMain(cfg)) : readoutMain(cfg), []);
        shaders[wName] = w.code;
        shaders[rName] = r.code;
        const nc: SizeExpr = ["ceilDiv", "T", C];
        const nj: SizeExpr = ["ceilDiv", Vd, BV];
        const ni: SizeExpr = lr ? 1 : ["ceilDiv", Kd, BK];
        const njr: SizeExpr = ["ceilDiv", Vd, tiled ? RT_BV : RO_BV];
        const aShared = phaseAShared(cfg) * 4;
        const wShared = walk3Shared(cfg) * 4;
        const rShared = (tiled ? readoutTiledShared(cfg) : readoutShared(cfg)) * 4;
        const rThreads = tiled ? readoutTiledThreads(cfg) : S3_WG;
        const chunks: SizeExpr = ["*", "B", nH, nc];
        const launches: KernelLaunch[] = [
          ...ex.pre,
          { name: aName, shader: aName, entry: "main", overrides: { ...ov }, workgroups: chunks, sharedBytes: aShared, threads: CHUNK_WG, bindings: a.bindings },
          { name: wName, shader: wName, entry: "main", overrides: { ...ov }, workgroups: ["*", "B", nH, nj, ni], sharedBytes: wShared, threads: S3_WG, bindings: w.bindings },
          { name: rName, shader: rName, entry: "main", overrides: { ...ov }, workgroups: ["*", chunks, njr], sharedBytes: rShared, threads: rThreads, bindings: r.bindings },
          ...ex.post,
        ];
        const per = recordFloats(cfg, Kd, Vd) as Record<string, SizeExpr>;
        const recFloats = sumS(Object.values(per));
        const s0Floats: SizeExpr = ["*", Kd, Vd];
        // multiply-adds of one thread: the walk per chunk (Z with low rank, S'), phase A and the readout per workgroup
        const walkWork = (lr ? L.NZ * BK : 0) + F * L.NI;
        const aWork: SizeExpr = ["ceilDiv", ["+", ["*", F, F, Kd, lr ? 2 : 1, decay === 2 ? 3 : 1], lr ? ["+", F * F * F / 2, ["*", F * F / 2, ["+", Kd, Vd]]] : 0], CHUNK_WG];
        const roPlain: SizeExpr = ["*", Math.ceil(C / (S3_WG / RO_BV)), ["+", ["*", ["ceilDiv", Kd, 32], 32], F, ["*", 64, ["+", ["ceilDiv", Kd, 32], F / 32]]]];
        // the tiled readout: the plain one's work per chunk and 32 values, times its measured ratio
        const roWork: SizeExpr = tiled ? ["*", roPlain, RT_BV / RO_BV, C >= 32 ? SPLIT3_COST.tiledReadout : SPLIT3_COST.tiledReadoutNarrow] : roPlain;
        forms.push({
          form: "chunked",
          variant,
          applicable: [
            "*",
            [">=", RTP, ["pow2ceil", rowsPerToken]],
            [">=", ["pow2ceil", rowsPerToken], RTP],
            [">=", "LIMIT_SHARED", ["max", aShared, wShared, rShared]],
            // low rank: the one key tile that holds every key, the smallest of 32, 64, 128 (K <= 128)
            lr ? ["*", [">=", BK, Kd], [">=", ["max", 32, ["pow2ceil", Kd]], BK]] : 1,
            [">=", "LIMIT_BINDING", ["*", 4, chunks, s0Floats]],
            ex.applicable,
          ],
          vars: [],
          scratch: [
            ...Object.entries(per).map(([name, f]) => ({ name, floats: ["max", 4, ["*", chunks, f]] as SizeExpr })),
            { name: S0, floats: ["max", 4, ["*", chunks, s0Floats]] },
            ...ex.scratch,
          ],
          kernels: launches,
          cost: {
            bytes: sumS([trafficBytes(model), mulS(4, chunks, ["+", ["*", 3, recFloats], ["*", 2, s0Floats]]), ex.bytes]),
            serialSteps: ["+", ["*", nc, walkWork], ["*", ["ceilDiv", chunks, PHASE_A_RESIDENT], aWork], ["*", ["ceilDiv", ["*", chunks, njr], SPLIT3_COST.readoutResident], roWork]],
            syncs: ["*", nc, lr ? 2 : 1],
            syncNs: SPLIT3_COST.syncNs,
            workNs: SPLIT3_COST.workNs,
            threads: ["*", "B", nH, nj, ni, S3_WG * SPLIT3_COST.threadWeight],
            flops: ["*", 2, chunks, ["+", ["*", F, F, Kd], ["*", 3, F, Kd, Vd]]],
          },
        });
      }
  return { forms, shaders };
}
