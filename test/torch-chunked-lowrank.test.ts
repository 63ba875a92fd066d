/**
 * The torch target's low-rank chunked backward (the delta-rule family) without a GPU:
 *   - the module's plans: `chain:<part>` (float32; augF / augA with their chunked forms first) and `chain64:<part>`
 *     (double kernels) for every part of compiler/grad/chunked-chain-lowrank.ts's chain, its names under
 *     "chunked"."lowRank" in <Model>.torch.json;
 *   - the glue (runtime/torch/seqc_chunked_lowrank.py lowrank_backward: the timeline, the folded chunks, the reversals,
 *     the chunk start states, the pieces back onto prep's outputs, the sums) on CPU torch, every chain model run by
 *     the float64 interpreter (test/torch/lowrank_glue.py), against seqc's float64 reference gradients: float64 <= 1e-9,
 *     float32 glue <= 1e-4, at odd sizes, T = 1, T and the timeline not multiples of the chunk, given and declared
 *     initial states, with and without a final-state cotangent;
 *   - the same through seqc_torch's autograd Function (backward="chunked", float64; test/torch/autograd_cpu.py).
 * On the GPU, bench/torch/check.py --only-chunked runs the glue on the CUDA plans (fp32, fp64, gradcheck).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, shapeSizes, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients, recording } from "../compiler/grad/run.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { torchLowRankChain } from "../compiler/backends/torch/chain-copies-lowrank.ts";
import { deltaBf16Bars, deltaBf16Outputs } from "../compiler/backends/torch/chain-plans-lowrank.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { LR_PARTS, type LrPart } from "../runtime/chunked-backward-lowrank.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve } from "./helpers/python-serve.ts";
import { glueTensors } from "./helpers/glue-case.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { lowRankWyModule } from "../compiler/backends/cuda/lowrank-wy.ts";
import { lowRankPassModule } from "../compiler/backends/cuda/lowrank-pass.ts";
import { lowRankReadKeyModule } from "../compiler/backends/cuda/lowrank-readout-key.ts";

const MODELS = ["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"];
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
/** Sizes a loop's extent is compiled with (gated_deltaproduct's J). */
const BAKED: Record<string, number> = { J: 2 };
const baked = (model: I.Model) => Object.fromEntries(model.dims.filter((d) => BAKED[d.name] !== undefined).map((d) => [d.name, BAKED[d.name]]));
const dimsOf = (model: I.Model) => smallDims(model, { K: 5, V: 7, ...BAKED });
/** Tensors as plain lists (the autograd drivers' case). */
const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
if (!cpuTorch) console.warn("torch-chunked-lowrank.test: no torch for /usr/bin/python3 (Debian's python3-torch); the glue and autograd checks are skipped");
/** seqc_chunked_lowrank's defaults (LR_READ, LR_AUG, LR_PASS, LR_KEY, LR_BWD): which parts a default run leaves to torch ops. */
const DEFAULTS: { readWay: string; augWay: string; passWay: string; keyWay: string; bwd: string } = cpuTorch
  ? JSON.parse(spawnSync("/usr/bin/python3", ["-c", "import json, sys; sys.path.insert(0, 'runtime/torch'); import seqc_chunked_lowrank as m; print(json.dumps({'readWay': m.LR_READ, 'augWay': m.LR_AUG, 'passWay': m.LR_PASS, 'keyWay': m.LR_KEY, 'bwd': m.LR_BWD}))"], { encoding: "utf8" }).stdout)
  : { readWay: "matmul", augWay: "auto", passWay: "matmul", keyWay: "halves", bwd: "wy" };
/** The way the chunk transitions run: "auto" is the plan for a per-key decay in sub-blocks (keyWay "blocks") where its
 * chunked form runs (the glue driver assumes it does; float64 through the autograd Function has no chunked form), else
 * matrix products. */
const augWay = (way: string, decay: string, chunkedForm: boolean, keyWay: string) => (way === "auto" ? (decay === "key" && keyWay === "blocks" && chunkedForm ? "plan" : "matmul") : way);
/** The chain parts a default run leaves to torch ops. */
const torchParts = (decay: string) => new Set([...(DEFAULTS.readWay === "matmul" ? ["read", "adjoint", "fwd"] : []), ...(augWay(DEFAULTS.augWay, decay, false, DEFAULTS.keyWay) === "matmul" ? ["augF", "augA"] : []),
  ...(DEFAULTS.passWay === "matmul" ? ["pass"] : []),
  // the chunk-state backward (LR_BWD "wy", the default) replaces the adjoint chain where it applies (no per-key decay,
  // the readouts and transitions as products): no augA, adjoint, fwd or decay plans
  // (LR_BWD "auto": "wy" on CPU, where no module has the delta kernels)
  ...((DEFAULTS.bwd === "wy" || DEFAULTS.bwd === "auto") && decay !== "key" && DEFAULTS.readWay === "matmul" && augWay(DEFAULTS.augWay, decay, false, DEFAULTS.keyWay) === "matmul" ? ["augA", "adjoint", "fwd", "decay"] : [])]);

describe("torch target: the low-rank chunked backward's plans", () => {
  it.each(MODELS)("%s: chain:<part> and chain64:<part> for every part, the chunk transitions' chunked forms first", (name) => {
    const model = load(name);
    const tp = buildTorchPlans(model, { dims: baked(model) });
    const ch = tp.chunked;
    if (!("lowRank" in ch)) throw new Error("unavailable" in ch ? ch.unavailable : "not the low-rank chain");
    // (the torch module's chain: prep without its copies of inputs, chain-copies-lowrank.ts; RWKV-7 no prep, no prep's backward)
    const chain = torchLowRankChain(lowRankChain(model, { ...baked(model) }), { ...baked(model) });
    expect(ch.parts).toEqual(LR_PARTS.filter((p) => chain.models[p]));
    expect(ch.parts.includes("decay")).toBe(name !== "deltanet");
    for (const part of ch.parts) {
      const f32 = tp.plans[`chain:${part}`], f64 = tp.plans[`chain64:${part}`];
      // the stateless parts also the GLA chain's twins after their float32 forms (stateless-bf16.ts statelessTwins): bf16
      // inputs (the forward's, post's backward also its cotangents), warp splits of a row sum, no zeros, row by row
      const stateless = ["prep", "prepBw", "postBw"].includes(part);
      expect([...new Set(f32.forms.map((f) => f.io ?? "f32"))], part).toEqual(stateless ? ["f32", "bf16"] : ["f32"]);
      if (stateless) {
        // (prep's backward's "-bf16bar" twins, last: checked below; the rest here)
        const all = tp.plans[`chain:${part}`].forms;
        const f32 = { forms: all.filter((f) => !f.bf16Bars) };
        const variants = f32.forms.map((f) => f.variant + (f.unwritten ? `[${f.unwritten.join(",")}]` : ""));
        expect(variants.slice(0, 6), part).toEqual(["thread", "workgroup", "global", "thread-bf16in", "workgroup-bf16in", "global-bf16in"]);
        const inputs = model.tensors.filter((t) => t.kind === "input").map((t) => t.name);
        const reads = I.tensorsOfKind(chain.models[part as LrPart]!, "input").map((t) => t.name).filter((n) => inputs.includes(n));
        const low = [...(part === "postBw" ? [...inputs, ...Object.values(chain.names.postBw.outputBar)] : reads)].sort();
        for (const f of f32.forms.slice(3)) expect(f.bf16Inputs, `${part} ${f.variant}`).toEqual(low);
        expect(variants.filter((v) => /-rm(1|4|16)\b/.test(v)).length % 3, part).toBe(0);
        expect(variants.some((v) => v.startsWith("global-bf16in") && v.includes("-rm16")), part).toBe(true);
        // post's backward of the delta family: every cotangent but y's is a literal zero, left unwritten in "-nz" twins
        const zeros = Object.values(chain.names.postBw.inputBar).filter((b) => b !== chain.names.postBw.inputBar[chain.names.readouts[0].y]).sort();
        const own = variants.filter((v) => !v.includes("-bf16out"));
        if (part === "postBw") expect(own.filter((v) => v.includes("-nz")), part).toEqual(["thread-bf16in-nz", "workgroup-bf16in-nz", "global-bf16in-nz", "global-bf16in-nz-rm1", "global-bf16in-nz-rm4", "global-bf16in-nz-rm16", "global-bf16in-nz-rv1", "global-bf16in-nz-rv4", "global-bf16in-nz-rv16"].map((v) => `${v}[${zeros.join(",")}]`));
        else expect(own.some((v) => v.includes("-nz")), part).toBe(false);
        // the twins writing the delta kernels' bf16 per-token tensors (LR_DELTA_GLUE; deltaBf16Outputs: prep's outputs but
        // the log decays, post's backward's dY; one micro-step a token): one for each twin above, last
        const lows = deltaBf16Outputs(chain.names, part).sort();
        const outs = f32.forms.filter((f) => f.out === "bf16");
        expect(outs.map((f) => f.variant), part).toEqual(lows.length ? f32.forms.filter((f) => f.io === "bf16" && f.out !== "bf16").map((f) => `${f.variant}-bf16out`) : []);
        for (const f of outs) expect(f.bf16Outputs, `${part} ${f.variant}`).toEqual(lows);
        expect(f32.forms.slice(-outs.length || f32.forms.length).every((f) => (f.out === "bf16") === outs.length > 0), part).toBe(true);
        // prep's backward reading the adjoints of prep's bf16 outputs as bf16 too (deltaBf16Bars; seqc_delta_bwd
        // LR_DELTA_ADJ_OUT): every twin above again as "-bf16bar", after them all
        const bars = part === "prepBw" ? deltaBf16Bars(chain.names).sort() : [];
        const barForms = all.filter((f) => f.bf16Bars);
        expect(barForms.map((f) => f.variant), part).toEqual(bars.length ? f32.forms.slice(3).map((f) => f.variant.replace("-bf16in", "-bf16bar")) : []);
        expect(all.slice(0, f32.forms.length), part).toEqual(f32.forms);
        for (const f of barForms) expect([f.bf16Bars, f.bf16Inputs], `${part} ${f.variant}`).toEqual([bars, [...low, ...bars].sort()]);
      }
      const kernels = f64.source.slice(f64.source.indexOf('extern "C"'));
      expect(kernels, part).toMatch(/double\* __restrict__/);
      expect(kernels, part).not.toMatch(/\bfloat\b/);
      if (part === "augF" || part === "augA") expect(f32.forms[0].form, part).toBe("chunked");
      const m = chain.models[part as LrPart]!;
      expect(f32.tensors.map((t) => t.name).sort(), part).toEqual(m.tensors.map((t) => t.name).sort());
    }
    const files = emitTorch(model, { ptx: false, dims: baked(model) });
    const meta = JSON.parse(files.find((f) => f.path.endsWith(".torch.json"))!.contents);
    expect(meta.chunked.lowRank.state).toBe(ch.lowRank.state);
    expect(meta.chunked.parts).toEqual(ch.parts);
    expect(files.map((f) => f.path)).toContain("seqc_chunked_lowrank.py");
    // the fused chunk transitions (compiler/backends/cuda/lowrank-core.ts) for the model's decay mode, one low-rank pair
    const core = meta.kernels?.lowRankCore;
    if (chain.names.E === 1) {
      // and, without a per-key decay, the tensor-core twins at K = 64 and 128 (lowrank-core-mma.ts, LR_CORE_MMA; K = 128 with LR_CORE_K128)
      expect(core.kernels.map((k: { decay: string; E: number; P: number; K: number; math?: string }) => [k.decay, k.E, k.P, k.K, k.math ?? "fp32"]), name).toEqual(
        [[chain.names.decay, 1, 1, 64, "fp32"], [chain.names.decay, 1, 1, 128, "fp32"], ...(chain.names.decay === "key" ? [] : [[chain.names.decay, 1, 1, 64, "tf32"], [chain.names.decay, 1, 1, 128, "tf32"]])]);
      expect(core.source).toContain(`extern "C" __global__ void __launch_bounds__(${core.kernels[0].threads}, 2) ${core.kernels[0].entry}(`);
    } else expect(core, name).toBeUndefined();
    // the fused readouts (compiler/backends/cuda/lowrank-readout.ts): both axes of the model's decay mode where it is none
    // or scalar and a step has two events (E + P = E + R = 2)
    const read = meta.kernels?.lowRankReadout;
    const { E, P, R } = chain.names;
    if (chain.names.decay !== "key" && E + P === 2 && E + R === 2) {
      // then, at K = V = 128, the twin in output-column groups (lowrank-readout-cols.ts, one block an SM; LR_READ_K128)
      expect(read.kernels.map((k: { axis: string; decay: string; M: number; K: number; math?: string }) => [k.axis, k.decay, k.M, k.K, k.math ?? "fp32"]), name).toEqual(
        [...["fp32", "tf32", "tf32x3"].flatMap((x) => [["key", chain.names.decay, 2, 64, x], ["value", chain.names.decay, 2, 64, x]]),
          ...["tf32", "tf32x3"].flatMap((x) => [["key", chain.names.decay, 2, 128, x], ["value", chain.names.decay, 2, 128, x]])]);
      for (const k of read.kernels) expect(read.source).toContain(`extern "C" __global__ void __launch_bounds__(${k.threads}, ${k.K === 64 ? 2 : 1}) ${k.entry}(`);
    } else expect(read, name).toBeUndefined();
    // with a per-key decay and two events a step, the per-key readouts instead (compiler/backends/cuda/lowrank-readout-key.ts)
    const readKey = meta.kernels?.lowRankReadoutKey;
    if (chain.names.decay === "key" && E + P === 2 && E + R === 2) {
      expect(readKey.kernels.map((k: { axis: string; decay: string; M: number; form?: string }) => [k.axis, k.decay, k.M, k.form ?? "plain"]), name).toEqual([["key", "key", 2, "plain"], ["value", "key", 2, "plain"], ["key", "key", 2, "pre"], ["value", "key", 2, "pre"]]);
      for (const k of readKey.kernels) expect(readKey.source).toContain(`extern "C" __global__ void __launch_bounds__(${k.threads}, 2) ${k.entry}(`);
    } else expect(readKey, name).toBeUndefined();
    // one low-rank pair, one input pair and one readout, any decay (DeltaNet, Gated DeltaNet, RWKV-7): the token-aligned
    // delta backward's kernels of the model's decay mode (compiler/backends/cuda/delta-bwd.ts; seqc_delta_bwd, LR_BWD "delta")
    const delta = meta.kernels?.deltaBwd;
    if (E === 1 && P === 1 && R === 1) {
      // (at least: prep's fwd / bwd and the adjoint at K = V = 64 and 128 for f32 / bf16 inputs, the walks; the per-key
      // adjoint at K = V = 64 only; no other mode)
      const d = chain.names.decay;
      const rows = delta.kernels.map((k: { op: string; decay: string; tin: string; K: number; cols: number }) => `${k.op} ${k.decay} ${k.tin} ${k.K} ${k.cols}`);
      for (const K of [64, 128])
        for (const r of [...["prep_fwd", "prep_bwd", ...(d !== "key" || K === 64 ? ["adj"] : [])].flatMap((op) => ["f32", "bf16"].map((t) => `${op} ${d} ${t} ${K} ${K}`)), `walk ${d} f32 ${K} ${K === 64 ? 32 : 16}`]) expect(rows, name).toContain(r);
      expect(delta.kernels.filter((k: { decay: string }) => k.decay !== d), name).toEqual([]);
      for (const k of delta.kernels) expect(delta.source).toMatch(new RegExp(`extern "C" __global__ void __launch_bounds__\\(${k.threads}(, \\d+)?\\) ${k.entry}\\(`));
    } else expect(delta, name).toBeUndefined();
  }, 120_000);

  it("models with neither chain keep the step backward and say why", () => {
    const tp = buildTorchPlans(load("mamba"));
    expect("unavailable" in tp.chunked && tp.chunked.unavailable).toMatch(/no chunked form/);
    expect(Object.keys(tp.plans).some((k) => k.startsWith("chain"))).toBe(false);
  });
});

/** lowrank_backward in Python (CPU torch), every chain model run here by the interpreter. */
/** How a glue run is asked to run its parts (seqc_chunked_lowrank's switches; readWay / augWay undefined: its defaults). */
interface Ways { torchOps: boolean; readWay?: "plan" | "matmul"; augWay?: "plan" | "matmul" | "auto"; keyWay?: "blocks" | "halves"; layout?: "heads" | "tokens"; share?: boolean; solve?: "trsm" | "blocks"; solveBlock?: number; mm?: "fp32" | "bf16"; lean?: boolean; fused?: "recurrence"; readout?: "recurrence"; bwd?: "chain" | "wy"; keyBwd?: "chain" | "wy"; wyBreak?: "walk" | "xI" | "a0" | "ld"; pass?: "recurrence"; wyKern?: "recurrence"; postBinds?: string[]; copies?: "lean" | "old"; merge?: "decay" | "off"; mergeBreak?: boolean; readKey?: "recurrence"; readKeyBreak?: boolean; revRead?: "flip" | "kernel"; revBreak?: boolean; chainRev?: "flip" | "kernel"; mirrorBreak?: boolean; evLines?: "on" | "off"; wyDyStride?: boolean }

async function pythonLowRank(model: I.Model, { names, models }: ReturnType<typeof lowRankChain>, run: RunInputs, cot: ReturnType<typeof randomCotangents>, dropStateCot: boolean, chunk: number, dtype: "float64" | "float32", { readKey, readKeyBreak, torchOps, readWay, augWay, keyWay, layout, share, solve, solveBlock, mm, lean, fused, readout, bwd, keyBwd, wyBreak, pass, wyKern, postBinds, copies, merge, mergeBreak, revRead, revBreak, chainRev, mirrorBreak, evLines, wyDyStride }: Ways) {
  const dims = { ...run.dims };
  const { batch: B, time: T } = run;
  const case_ = {
    // bwd unset: the adjoint chain, whatever the module's default (LR_BWD "wy" since the H200 timing): the blocks written for
    // the chain keep checking it; the chunk-state backward's block asks for "wy"
    readKey, readKeyBreak, names, B, T, chunk, dtype, decayWay: torchOps ? "cumsum" : "plan", passWay: torchOps ? "matmul" : "plan", readWay, augWay, keyWay, layout, share, solve, solveBlock, mm, lean, fused, readout, bwd: bwd ?? "chain", keyBwd, wyBreak, pass, wyKern, postBinds, copies, merge, mergeBreak, revRead, revBreak, chainRev, mirrorBreak, evLines, wyDyStride,
    ...glueTensors(model, names.state, run, cot, dropStateCot),
  };
  const parts: string[] = [];
  const got = await serve("/usr/bin/python3", ["test/torch/lowrank_glue.py"], case_, (msg) => {
    parts.push(msg.run);
    // the stateless parts (prep, the backward models of prep and post) run with time folded into the batch
    if (!msg.dims) expect([msg.B, msg.T], msg.run).toEqual([B * T, 1]);
    return { model: models[msg.run as LrPart]!, dims: msg.dims ?? dims, params: msg.dims ? {} : run.params ?? {} };
  });
  return { parts, ...got };
}

// B, T, given initial state, no final-state cotangent, chunk (micro-steps), glue dtype, the decay adjoint and the pass
// over chunks as torch ops (torch.cumsum, torch.matmul) instead of their plans, the per-chunk readouts and the chunk
// transitions as the plans or as matrix products (seqc_chunked_lowrank.ChunkCore), stressed inputs (log decays down to
// -20 a step, beta in (0, 2))
const P = { torchOps: false, readWay: "plan", augWay: "plan" } as const, TP = { ...P, torchOps: true } as const;
const MM = { torchOps: true, readWay: "matmul", augWay: "plan" } as const, MA = { ...MM, augWay: "matmul" } as const;
/** The glue test's cases in two groups (each model's two tests stay well under vitest's limit under load). */
const GLUE_CASES: Record<string, GlueCase[]> = {
  "plans, torch ops, products": [
    [2, 37, true, false, 16, "float64", P, false], [1, 1, true, false, 64, "float64", P, false], [3, 11, false, true, 4, "float64", P, false],
    [2, 40, true, false, 7, "float64", TP, false], [2, 23, true, false, 8, "float32", TP, false],
    // the readouts as matrix products: several sub-blocks of a per-key decay (chunk 40 > seqc_chunked_lowrank.BLOCK), T = 1,
    // chunk 1, a small chunk (5: many chunks, the timeline not a multiple), stressed inputs, float32, the defaults
    [2, 37, true, false, 40, "float64", MM, false], [1, 1, true, false, 64, "float64", MM, false], [3, 11, false, true, 1, "float64", MA, false],
    [2, 23, true, false, 5, "float64", MA, true], [2, 29, true, false, 64, "float64", MA, true], [2, 23, true, false, 8, "float32", MA, false],
    [2, 19, true, false, 6, "float64", { torchOps: false }, false], [2, 19, true, false, 40, "float64", { torchOps: true, readWay: "matmul", augWay: "auto" }, true],
    [2, 19, true, false, 40, "float64", { torchOps: true, readWay: "matmul", augWay: "auto", keyWay: "blocks" }, true],
  ],
  "per-key ways, layouts, solves": [
    // a per-key decay's two ways (seqc_chunked_lowrank.LR_KEY): "blocks" (sub-blocks, elementwise inside) at several
    // sub-blocks, stressed, and float32; "halves" (recursive halves, no elementwise ratios) at a chunk padded to a
    // power of two (13 -> 16), stressed, float32, chunk 1 (no halves: the diagonal only); both the same products for
    // no / a scalar decay
    [2, 37, true, false, 40, "float64", { ...MM, keyWay: "blocks" }, true], [2, 23, true, false, 8, "float32", { ...MA, keyWay: "blocks" }, false],
    [2, 23, true, false, 13, "float64", { ...MA, keyWay: "halves" }, true], [2, 31, false, false, 16, "float32", { ...MA, keyWay: "halves" }, true],
    [1, 3, true, false, 1, "float64", { ...MA, keyWay: "halves" }, false],
    // the timeline's layouts (seqc_chunked_lowrank.LR_LAYOUT: "heads", the reversal a flip with the reversed timeline
    // padded at its front; "tokens", the old one) and the readouts sharing the transitions' ChunkCore (LR_SHARE: the
    // low-rank reads by linearity) or not: the plans on the heads layout are the cases above; here the old layout with
    // the plans and with the products, heads without sharing, T = 1 and chunk 1 sharing, a padded chunk, float32
    [2, 37, true, false, 16, "float64", { ...TP, layout: "tokens" }, false], [2, 23, true, false, 5, "float64", { ...MA, layout: "tokens", share: false }, true],
    [2, 23, true, false, 8, "float32", { ...MA, layout: "heads", share: false }, false], [1, 1, true, false, 64, "float64", { ...MA, layout: "heads", share: true }, false],
    [3, 11, false, true, 1, "float64", { ...MA, layout: "heads", share: true }, true], [2, 29, true, false, 13, "float64", { ...MA, layout: "heads", share: true }, true],
    [2, 29, true, false, 13, "float64", { ...MA, layout: "tokens", share: true }, true],
    // the triangular solve in blocks (LR_SOLVE "blocks", the default, so the cases above too: diagonal blocks inverted by
    // doubling, then a block substitution): a block not dividing the chunk (13 -> 16 rows, blocks of 3), float32
    [2, 23, true, false, 13, "float64", { ...MA, solve: "blocks", solveBlock: 3 }, true], [2, 31, false, false, 16, "float32", { ...MA, solve: "blocks", solveBlock: 4 }, true],
    // cuBLAS's batched trsm (the old default)
    [2, 29, true, false, 64, "float64", { ...MA, solve: "trsm" }, true], [2, 23, true, false, 8, "float32", { ...MA, solve: "trsm" }, false],
  ],
};

describe.skipIf(!cpuTorch)("torch target: the low-rank chain's glue (seqc_chunked_lowrank.py on CPU torch, chain models on the float64 interpreter)", () => {
  it.each(MODELS.flatMap((m) => Object.keys(GLUE_CASES).map((g) => [m, g])))("%s: %s", async (name, group) => {
    const model = load(name);
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    await checkGlue(model, dims, chain, GLUE_CASES[group]);
  }, 300_000);
});

type GlueCase = [number, number, boolean, boolean, number, "float64" | "float32", Ways, boolean];

/** The input each model's log decay comes from. */
const DECAY_INPUT: Record<string, string> = { GatedDeltaNet: "g", Rwkv7: "w", GatedDeltaProduct: "g" };

/** Runs glue cases (B, T, given initial state, no final-state cotangent, chunk, glue dtype, ways, stressed inputs)
 * against the float64 reference gradients: float64 <= 1e-9, float32 <= 1e-4, bf16 product operands <= 1e-2 except the
 * log decay's input: 3e-2 (its gradient is a reverse sum of terms that cancel: 1.2e-2 to 2.2e-2 at these sizes, K = 5,
 * V = 7, with any of ChunkCore's product kinds in bf16; bench/RESULTS.md has it at the bench's sizes). */
async function checkGlue(model: I.Model, dims: Record<string, number>, chain: ReturnType<typeof lowRankChain>, cases: GlueCase[]) {
    const state = chain.names.state;
    const decayed = chain.names.decay !== "none";
    const plain = (p: string) => (ways: Ways, d: "readWay" | "augWay") => (d === "augWay" ? augWay(ways[d] ?? DEFAULTS[d], chain.names.decay, true, ways.keyWay ?? DEFAULTS.keyWay) : ways[d] ?? DEFAULTS[d]) === "plan" ? [] : [p];
    for (const [B, T, init, dropStateCot, chunk, dtype, ways, stress] of cases) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init, stress });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 2);
      if (dropStateCot) delete cot.finalState[state];
      const want = await gradients(model, run, cot);
      const got = await pythonLowRank(model, chain, run, cot, dropStateCot, chunk, dtype, ways);
      const { torchOps } = ways;
      const label = `B=${B} T=${T} init=${init} chunk=${chunk} ${dtype}${torchOps ? " decay and pass as torch ops" : ""} readouts ${ways.readWay ?? "default"} aug ${ways.augWay ?? "default"} key ${ways.keyWay ?? "default"} layout ${ways.layout ?? "default"} share ${ways.share ?? "default"} solve ${ways.solve ?? "default"}/${ways.solveBlock ?? "-"} mm ${ways.mm ?? "fp32"} lean ${ways.lean ?? "default"} bwd ${ways.bwd ?? "chain"}${stress ? " stressed" : ""}`;
      const tol = dtype === "float64" ? 1e-9 : ways.mm === "bf16" ? 1e-2 : 1e-4;
      // the chunk-state backward (LR_BWD "wy") replaces the adjoint chain where it applies: no augA, adjoint, fwd or decay plans
      const wy = ways.bwd === "wy" && (chain.names.decay !== "key" || ways.keyBwd === "wy") && (ways.readWay ?? DEFAULTS.readWay) === "matmul" &&
        augWay(ways.augWay ?? DEFAULTS.augWay, chain.names.decay, true, ways.keyWay ?? DEFAULTS.keyWay) === "matmul" && ways.lean !== false && ways.share !== false;
      const skipped = new Set([...(torchOps ? ["decay", "pass"] : []), ...(wy ? ["augA", "adjoint", "fwd", "decay"] : []), ...plain("read")(ways, "readWay"), ...plain("adjoint")(ways, "readWay"), ...plain("fwd")(ways, "readWay"),
        ...plain("augF")(ways, "augWay"), ...plain("augA")(ways, "augWay")]);
      const ran = LR_PARTS.filter((p) => chain.models[p] && !skipped.has(p));
      expect(new Set(got.parts), label).toEqual(new Set(ran));
      if (decayed) expect(got.parts.includes("decay"), label).toBe(!torchOps && !wy);
      // the fused transitions take every [I | 0] core with one low-rank pair and one pair: augF (pairs P), augA (pairs R)
      if (ways.fused) expect(got.fusedCalls, `${label}: cores that took the fused transitions`).toBe(chain.names.E === 1 ? Number(chain.names.P === 1) + (wy ? 0 : Number(chain.names.R === 1)) : 0);
      // the fused readouts take every read from a start state without a per-key decay, or with one where their per-key
      // kernels run (readKey; fp32 operands): read (key axis after the step), adjoint (key and value axes after), fwd
      // (value axis before and after)
      // (with LR_BWD "wy": read; dw, dq; the reversed chunks' adjoint on both axes)
      if (ways.readout) expect(got.readoutCalls, `${label}: reads that took the fused readouts`).toBe(chain.names.decay === "key" && !ways.readKey ? 0 : 5);
      // the walks' launcher takes every walk of the heads layout's products: the forward's pass, then the adjoint's pass
      // (chain) or the chunk-state backward's reverse walk (wy)
      // (the pass's products run where the pass is not the plan: torchOps; wy's walk always; the tokens layout never)
      const heads = (ways.layout ?? "heads") === "heads";
      if (ways.pass) expect(got.passCalls, `${label}: walks that took the launcher`).toEqual(heads ? [...(torchOps ? ["fwd"] : []), ...(wy ? ["adj"] : torchOps ? ["fwd"] : [])] : []);
      // the per-chunk kernels' launcher: both ops once where the chunk-state backward runs with one low-rank pair and one
      // readout, no per-key decay (the kernels have none)
      if (ways.wyKern) expect(got.wyCalls, `${label}: ops that took the wy kernels`).toEqual(wy && chain.names.decay !== "key" && chain.names.E === 1 && chain.names.R === 1 ? ["pre", "dr"] : []);
      for (const [k, v] of Object.entries(want.inputs)) {
        expect(v.some((x) => x !== 0), `${label}: reference d ${k} is not all zero`).toBe(true);
        expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(ways.mm === "bf16" && dtype === "float32" && k === DECAY_INPUT[model.name] ? 3e-2 : tol);
      }
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k].data), v), `${label}: d param ${k}`).toBeLessThanOrEqual(tol);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[state]), `${label}: d ${state}0`).toBeLessThanOrEqual(tol);
      expect(got.dS0.shape).toEqual([B, ...shapeSizes(model.tensors.find((t) => t.name === state)!.shape, dims)]);
    }
}

describe.skipIf(!cpuTorch)("torch target: the low-rank glue's lean copies and bf16 product operands (seqc_chunked_lowrank LR_LEAN, LR_MM)", () => {
  it.each(MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    // lean (LR_LEAN, the default: the [I | 0] start and the [0 | v] values folded into ChunkCore, the events' values
    // written once) is what the glue test's product cases run (T = 1, ragged chunks, chunk 1, given and declared initial
    // states, stressed); here the old path at a ragged chunk, stressed, and bf16 product operands (LR_MM "bf16": fp32
    // sums; rounded on CPU as on the GPU) in the float32 glue: a ragged chunk (13: padded to 16 for the halves, the
    // timeline not a multiple), T = 1, a declared initial state without a final-state cotangent in the tokens layout
    // without sharing, the old path, stressed inputs (beta in (0, 2), log decays down to -20)
    const cases: GlueCase[] = [
      [2, 23, true, false, 13, "float64", { ...MA, lean: false }, true],
      [2, 23, true, false, 13, "float32", { ...MA, mm: "bf16" }, false], [1, 1, true, false, 64, "float32", { ...MA, mm: "bf16" }, false],
      [3, 11, false, true, 4, "float32", { ...MA, mm: "bf16", layout: "tokens", share: false }, false], [2, 29, true, false, 16, "float32", { ...MA, mm: "bf16", lean: false }, false],
      [2, 23, true, false, 13, "float32", { ...MA, mm: "bf16" }, true],
    ];
    await checkGlue(model, dims, chain, cases);
  }, 240_000);
});

describe.skipIf(!cpuTorch)("torch target: the low-rank glue with fused chunk transitions (seqc_chunked_lowrank LR_FUSED: ChunkCore's `fused` launcher)", () => {
  it.each(MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    // the launcher's contract (the reads into VV's slot 0, the end state; restarts and readouts from them) with the
    // recurrence standing in for the CUDA kernel (test/torch/lowrank_glue.py; the kernel itself: test/cuda-lowrank-core-emu):
    // a ragged chunk (13: padded to 16 for a per-key decay's halves), stressed; T = 1; the tokens layout without sharing
    // and a declared initial state without a final-state cotangent in float32; float32 stressed
    // with the fused readouts (LR_FUSED_READ: ChunkCore's `readout` launcher, its recurrence standing in for
    // compiler/backends/cuda/lowrank-readout.ts, checked on its own by test/cuda-lowrank-readout-emu) in every case but
    // the second, and alone in the last (the transitions' torch ops feeding it, the tokens layout without sharing)
    const F = { ...MA, fused: "recurrence", readout: "recurrence" } as const;
    const cases: GlueCase[] = [
      [2, 23, true, false, 13, "float64", F, true], [1, 1, true, false, 64, "float64", { ...F, readout: undefined }, false],
      [3, 11, false, true, 4, "float32", { ...F, layout: "tokens", share: false }, false], [2, 29, true, false, 16, "float32", F, true],
      [2, 19, true, false, 8, "float32", { ...MA, readout: "recurrence", layout: "tokens", share: false }, true],
    ];
    await checkGlue(model, dims, chain, cases);
  }, 240_000);
});

describe.skipIf(!cpuTorch)("torch target: the low-rank chunked backward through seqc_torch's autograd Function (CPU torch, float64; plans run by the interpreter)", () => {
  it.each(MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-lowrank-"));
    const json = emitTorch(model, { ptx: false, dims: baked(model) }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = torchLowRankChain(lowRankChain(model, dims), dims);  // (the module's: prep without its copies of inputs)
    const rec = recording(model);
    for (const [B, T, init] of [[2, 19, true], [1, 1, true], [3, 7, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 9 + T, initialState: init });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 4);
      const want = await gradients(model, run, cot);
      const got = await serve("/usr/bin/python3", ["test/torch/autograd_cpu.py", join(dir, json.path)],
        { B, T, dims, backward: "chunked", inputs: list(run.inputs), params: list(run.params), initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState) },
        (msg) => {
          const given = Object.fromEntries(Object.entries(msg.params ?? {}).map(([k, v]) => [k, Float64Array.from(v)]));
          if (msg.run === "record64") return { model: rec, dims: msg.dims!, params: given };
          const part = msg.run.replace(/^chain64:/, "") as LrPart;
          if (!msg.run.startsWith("chain64:") || !chain.models[part]) throw new Error(`unexpected plan ${msg.run}`);
          return { model: chain.models[part]!, dims: msg.dims!, params: given };
        });
      const label = `B=${B} T=${T} init=${init}`;
      expect(got.chunked, label).toBe(true);
      expect(got.keys[0], label).toBe("record64");
      // (the parts seqc_chunked_lowrank's defaults run as torch ops run no plan)
      expect([...new Set(got.keys.slice(1))].sort(), label).toEqual(LR_PARTS.filter((p) => chain.models[p] && !torchParts(chain.names.decay).has(p)).map((p) => `chain64:${p}`).sort());
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(Float64Array.from(got.inputs[k]), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) if (run.params?.[k]) expect(relativeError(Float64Array.from(got.params[k]), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(got.initialState[k]), v), `${label}: d ${k}0`).toBeLessThanOrEqual(1e-9);
    }
  }, 300_000);
});

const cpuBf16 = cpuTorch && spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
describe.skipIf(!cpuBf16)("torch target: bf16 tensors through the low-rank chunked backward (CPU torch; plans on the float64 interpreter, test/torch/autograd_bf16.py)", () => {
  it.each(["deltanet", "rwkv7"])("%s: the forward's bf16 chunked form, then the chain in float32, the stateless parts on their bf16-input twins (LR_STATELESS \"twins\"; \"f32\": float32 forms); bf16 gradients within 1e-2 of float64 at the rounded inputs", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-lowrank-bf16-"));
    const json = emitTorch(model, { ptx: false, dims: baked(model) }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = torchLowRankChain(lowRankChain(model, dims), dims);  // (the module's: prep without its copies of inputs; RWKV-7 none)
    // (T = 1 with a given initial state: from the zero state RWKV-7's dw is exactly zero, its float rounding is not)
    const inputs = model.tensors.filter((t) => t.kind === "input").map((t) => t.name).sort();
    for (const [B, T, init, lrStateless] of [[2, 37, false, "twins"], [1, 1, true, "twins"], [2, 37, false, "f32"]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 31 + T, initialState: init });
      for (const o of [run.inputs, run.initialState ?? {}]) for (const k of Object.keys(o)) o[k] = o[k].map((v) => fromBf16(toBf16(v)));
      const cot = randomCotangents(interpret(model, run), T + 6);
      const want = await gradients(model, run, cot);
      const got = await serve("/usr/bin/python3", ["test/torch/autograd_bf16.py", join(dir, json.path)],
        { B, T, dims, backward: "auto", inputs: list(run.inputs), params: {}, initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState), lrStateless },
        (msg) => {
          if (msg.run === "forward") return { model, dims: msg.dims!, params: {} };
          const part = msg.run.replace(/^chain:/, "") as LrPart;
          if (!msg.run.startsWith("chain:") || !chain.models[part]) throw new Error(`unexpected plan ${msg.run}`);
          return { model: chain.models[part]!, dims: msg.dims!, params: {} };
        });
      const label = `B=${B} T=${T} init=${init} ${lrStateless}`;
      expect(got.chunked, label).toBe(true);
      expect(got.dtypes, label).toEqual(["bfloat16"]);
      const runs = got.runs as [string, string, string, string[], string, string[], string[] | null][];
      expect(runs[0].slice(0, 2), label).toEqual(["forward", "bf16"]);
      expect(runs[0][2], label).toMatch(/^chunked-\w+-bf16-/);
      let twins = 0;
      for (const [k, io, variant, dts, outIo, lowIn, bf16Inputs] of runs.slice(1)) {
        expect(k, label).toMatch(/^chain:/);
        if (lrStateless === "twins" && ["chain:prep", "chain:prepBw", "chain:postBw"].includes(k)) {
          // the given inputs (and post's backward its cotangent) as bf16, the adjoints of prep's outputs float32; outputs float32
          expect([io, outIo, dts], `${label} ${k}`).toEqual(["bf16", "f32", k === "chain:prep" ? ["bfloat16"] : ["bfloat16", "float32"]]);
          expect(variant, `${label} ${k}`).toMatch(/-bf16in/);
          // (prep and its backward: the inputs prep reads besides its copies; the glue hands prep every input, the plan binds those)
          const reads = k === "chain:postBw" ? inputs : I.tensorsOfKind(chain.models[k.slice(6) as LrPart]!, "input").map((t) => t.name).filter((x) => inputs.includes(x)).sort();
          const bound = lowIn.filter((x) => !inputs.includes(x) || reads.includes(x));
          expect(bound.filter((x) => !bf16Inputs!.includes(x)), `${label} ${k}`).toEqual([]);
          expect(bound.filter((x) => inputs.includes(x)).sort(), `${label} ${k}`).toEqual(reads);
          if (k === "chain:postBw") expect(lowIn.filter((x) => !inputs.includes(x)), `${label} ${k}`).toEqual(Object.values(chain.names.postBw.outputBar));
          twins++;
        } else expect([io, dts], `${label} ${k}`).toEqual(["f32", ["float32"]]);
      }
      expect(twins, label).toBe(lrStateless === "twins" ? (chain.models.prep ? 3 : 1) : 0);
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(Float64Array.from(got.inputs[k]), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-2);
      if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(got.initialState[k]), v), `${label}: d ${k}0`).toBeLessThanOrEqual(1e-2);
    }
  }, 300_000);
});

describe.skipIf(!cpuTorch)("torch target: the low-rank glue's chunk-state backward (seqc_chunked_lowrank LR_BWD \"wy\": runtime/torch/seqc_lowrank_wy.py)", () => {
  it.each(MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    // the reverse walk over the chunk end states' adjoints and the per-chunk gradients (RWKV-7's per-key decay keeps
    // the chain: the same cases check that it still runs): T = 1, chunk 1, chunks not dividing the timeline (5, 13),
    // several chunks, one chunk (64 > T), given and declared initial states, with and without the final-state
    // cotangent, stressed inputs (beta in (0, 2), log decays down to -20), the plans for the pass and the tokens layout,
    // float32; with the fused launchers' recurrences (5 reads: y; dw, dq; the reversed chunks' adjoint, value and key axes)
    const W = { ...MA, bwd: "wy" } as const;
    const F = { ...W, fused: "recurrence", readout: "recurrence" } as const;
    const cases: GlueCase[] = [
      [1, 1, true, false, 64, "float64", W, false], [3, 11, false, true, 1, "float64", W, true], [2, 23, true, false, 5, "float64", W, true],
      [2, 29, true, false, 13, "float64", W, true], [2, 37, true, true, 64, "float64", W, true], [2, 19, false, false, 8, "float64", { ...W, torchOps: false }, true],
      [2, 23, true, false, 5, "float64", { ...W, layout: "tokens" }, true], [2, 23, true, false, 8, "float32", W, false], [2, 29, true, false, 16, "float32", W, true],
      [2, 23, true, false, 13, "float64", F, true], [3, 11, false, true, 4, "float32", { ...F, layout: "tokens" }, false],
      // the walks' launcher (LR_FUSED_PASS "cuda": compiler/backends/cuda/lowrank-pass.ts, its recurrence standing in):
      // the forward's pass and wy's reverse walk; the chain's two passes; T = 1; float32
      [2, 23, true, false, 5, "float64", { ...F, pass: "recurrence" }, true], [2, 29, false, false, 13, "float64", { ...MA, pass: "recurrence" }, true],
      [1, 1, true, false, 64, "float64", { ...W, pass: "recurrence" }, false], [2, 19, true, false, 8, "float32", { ...W, pass: "recurrence" }, true],
      // the per-chunk kernels' launcher (LR_FUSED_WY "cuda": compiler/backends/cuda/lowrank-wy.ts, its definitions standing
      // in), alone and with every other launcher; T = 1; the tokens layout; float32
      [2, 23, true, false, 13, "float64", { ...W, wyKern: "recurrence" }, true], [2, 29, false, true, 16, "float64", { ...F, pass: "recurrence", wyKern: "recurrence" }, true],
      [1, 1, true, false, 64, "float64", { ...W, wyKern: "recurrence" }, false], [3, 11, false, false, 4, "float64", { ...W, layout: "tokens", wyKern: "recurrence" }, true],
      [2, 19, true, false, 8, "float32", { ...F, pass: "recurrence", wyKern: "recurrence" }, true],
    ];
    await checkGlue(model, dims, chain, cases);
    if (chain.names.decay === "key") return;
    // each term dropped in turn moves the gradients far off: the transitions in the reverse walk, the reads' dependence
    // on the start state, the chunk end's <L_end, S_C> in the log decays' adjoint (no decay: no such term)
    const breaks: NonNullable<Ways["wyBreak"]>[] = ["walk", "xI", ...(chain.names.decay === "none" ? [] : ["a0" as const])];
    for (const wyBreak of breaks) {
      const run = chunkInputs(model, { dims, batch: 2, time: 23, seed: 28, initialState: true, stress: false });
      const cot = randomCotangents(interpret(model, run), 25);
      const want = await gradients(model, run, cot);
      const got = await pythonLowRank(model, chain, run, cot, false, 5, "float64", { ...W, wyBreak });
      const errs = Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v));
      expect(Math.max(...errs), `${wyBreak} dropped`).toBeGreaterThan(1e-2);
    }
  }, 300_000);
});

describe.skipIf(!cpuTorch)("torch target: the low-rank glue without the backward's y read, with fewer copies and merged decay steps (seqc_chunked_lowrank LR_Y_READ, LR_COPIES, LR_MERGE)", () => {
  /** The glue's gradients for a case and the reference's largest relative error. */
  async function glue(model: I.Model, chain: ReturnType<typeof lowRankChain>, B: number, T: number, chunk: number, dtype: "float64" | "float32", ways: Ways) {
    const run = chunkInputs(model, { dims: dimsOf(model), batch: B, time: T, seed: 40 + T, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), T + 3);
    const want = await gradients(model, run, cot);
    const got = await pythonLowRank(model, chain, run, cot, false, chunk, dtype, ways);
    const err = Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)), relativeError(Float64Array.from(got.dS0.data), want.initialState[chain.names.state]));
    return { got, err };
  }
  const vs = (a: { data: number[] }, b: { data: number[] }) => relativeError(Float64Array.from(a.data), Float64Array.from(b.data));
  it.each(["deltanet", "gated_deltanet", "gated_deltaproduct"])("%s: the new path equals the old within 1e-9 (float64), 1e-4 of the reference in float32", async (name) => {
    const model = load(name);
    const chain = lowRankChain(model, dimsOf(model));
    // post's backward binds the cotangent alone (o = y): the y read is left out; the old path reads it and copies as before.
    // The new path also merges Gated DeltaNet's decay step into its delta step (LR_MERGE "decay" with wy: one micro-step
    // a token; DeltaNet has no decay step, Gated DeltaProduct's next step has two micro-steps: both unmerged).
    // The chunk-state backward with every launcher's stand-in (5 reads with y, 4 without), the chain, ragged chunks, T = 1
    const F = { ...MA, bwd: "wy", fused: "recurrence", readout: "recurrence", pass: "recurrence", wyKern: "recurrence" } as const;
    for (const [B, T, chunk, ways] of [[2, 23, 5, F], [2, 29, 13, { ...MA, bwd: "wy" }], [1, 1, 64, F], [2, 19, 8, { ...MA, bwd: "chain", readout: "recurrence" }],
      [3, 11, 4, { ...MA, bwd: "wy", layout: "tokens" }]] as [number, number, number, Ways][]) {
      const label = `B=${B} T=${T} chunk=${chunk} bwd ${ways.bwd}${ways.layout ? " " + ways.layout : ""}`;
      const old = await glue(model, chain, B, T, chunk, "float64", { ...ways, copies: "old" });
      const neu = await glue(model, chain, B, T, chunk, "float64", { ...ways, copies: "lean", postBinds: ["o__bar"], merge: "decay" });
      expect(old.err, `${label}: old vs reference`).toBeLessThanOrEqual(1e-9);
      expect(neu.err, `${label}: new vs reference`).toBeLessThanOrEqual(1e-9);
      for (const k of Object.keys(old.got.inputs)) expect(vs(neu.got.inputs[k], old.got.inputs[k]), `${label}: d ${k} new vs old`).toBeLessThanOrEqual(1e-9);
      expect(vs(neu.got.dS0, old.got.dS0), `${label}: dS0 new vs old`).toBeLessThanOrEqual(1e-9);
      if (ways.readout) expect([old.got.readoutCalls, neu.got.readoutCalls], `${label}: reads with / without y`).toEqual(chain.names.decay === "key" ? [0, 0] : [5, 4]);
    }
    const f32 = await glue(model, chain, 2, 23, 8, "float32", { ...F, copies: "lean", postBinds: ["o__bar"], merge: "decay" });
    expect(f32.err, "float32").toBeLessThanOrEqual(1e-4);
    if (name === "gated_deltanet") {  // merged without w' = exp(ld) w: far off
      const broken = await glue(model, chain, 2, 23, 5, "float64", { ...MA, bwd: "wy", merge: "decay", mergeBreak: true });
      expect(broken.err, "merged, w unscaled").toBeGreaterThan(1e-2);
    }
  }, 300_000);

  it("a post that reads y (o = v * S^T q) needs it: told that nothing binds y, the gradients are far off", async () => {
    const src = `model DeltaNetGated {
  dims H, K, V
  input q[H,K], k[H,K], v[H,V]
  input beta[H]
  state S[H,K,V] = 0
  let u[h,j] = beta[h] * (v[h,j] - sum(i) S[h,i,j] * k[h,i])
  S[h,i,j] = S[h,i,j] + k[h,i] * u[h,j]
  output o[h,j] = v[h,j] * sum(i) q[h,i] * S[h,i,j]
}`;
    const model = loadProgram(["deltanet_gated.seq"], new Map([["deltanet_gated.seq", src]])).models[0];
    const chain = lowRankChain(model, dimsOf(model));
    const W = { ...MA, bwd: "wy", copies: "lean" } as const;
    const bound = await glue(model, chain, 2, 23, 5, "float64", { ...W, postBinds: ["o__bar", "v", "y0"] });
    expect(bound.err).toBeLessThanOrEqual(1e-9);
    const broken = await glue(model, chain, 2, 23, 5, "float64", { ...W, postBinds: ["o__bar", "v"] });
    expect(broken.err).toBeGreaterThan(1e-2);
  }, 120_000);
});

describe.skipIf(!cpuTorch)("torch target: wy's reversed chunks read backwards without flips (seqc_chunked_lowrank LR_REV_READ \"kernel\")", () => {
  async function glue(model: I.Model, chain: ReturnType<typeof lowRankChain>, B: number, T: number, chunk: number, ways: Ways) {
    const run = chunkInputs(model, { dims: dimsOf(model), batch: B, time: T, seed: 60 + T, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), T + 5);
    const want = await gradients(model, run, cot);
    const got = await pythonLowRank(model, chain, run, cot, false, chunk, "float64", ways);
    const err = Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)), relativeError(Float64Array.from(got.dS0.data), want.initialState[chain.names.state]));
    return { got, err };
  }
  const same = (a: { inputs: Record<string, { data: number[] }>; dS0: { data: number[] } }, b: typeof a) =>
    Math.max(...Object.keys(a.inputs).map((k) => relativeError(Float64Array.from(a.inputs[k].data), Float64Array.from(b.inputs[k].data))), relativeError(Float64Array.from(a.dS0.data), Float64Array.from(b.dS0.data)));
  it.each(["deltanet", "gated_deltanet"])("%s: \"kernel\" equals \"flip\" (bitwise with the readouts' stand-in, which takes both reversed reads; no [N, C, m, w] flips left), falls back to flips without a kernel, and a stand-in ignoring rev is far off", async (name) => {
    const model = load(name);
    const chain = lowRankChain(model, dimsOf(model));
    const F: Ways = { ...MA, bwd: "wy", fused: "recurrence", readout: "recurrence", pass: "recurrence", wyKern: "recurrence", copies: "lean", postBinds: ["o__bar"], merge: "decay" };
    for (const [B, T, chunk] of [[2, 23, 5], [1, 1, 64], [2, 29, 13]] as const) {
      const label = `B=${B} T=${T} chunk=${chunk}`;
      const flip = await glue(model, chain, B, T, chunk, { ...F, revRead: "flip" });
      const kern = await glue(model, chain, B, T, chunk, { ...F, revRead: "kernel" });
      expect(flip.err, `${label}: flip vs reference`).toBeLessThanOrEqual(1e-9);
      expect(kern.err, `${label}: kernel vs reference`).toBeLessThanOrEqual(1e-9);
      expect(same(kern.got, flip.got), `${label}: kernel vs flip`).toBe(0);
      // the reversed chunks' value and key reads went backwards through the stand-in; the flips of LR_COPIES "lean" (the
      // two events, the forward's values and keys read, the two outputs back) are gone
      expect([flip.got.readoutRev, kern.got.readoutRev], label).toEqual([0, 2]);
      expect([flip.got.readoutCalls, kern.got.readoutCalls], label).toEqual([4, 4]);
      expect([flip.got.bigFlips, kern.got.bigFlips], label).toEqual([6, 0]);
      // no readouts kernel (torch ops): read_rev flips as "flip" does, the same gradients
      const torchOps = await glue(model, chain, B, T, chunk, { ...F, readout: undefined, revRead: "kernel" });
      expect(same(torchOps.got, flip.got), `${label}: kernel without a readouts kernel vs flip`).toBeLessThanOrEqual(1e-12);
      expect(torchOps.got.bigFlips, label).toBe(6);
    }
    const broken = await glue(model, chain, 2, 23, 5, { ...F, revRead: "kernel", revBreak: true });
    expect(broken.err, "a readouts kernel that ignores rev").toBeGreaterThan(1e-2);
  }, 300_000);
});

describe.skipIf(!cpuTorch)("torch target: the timeline's lines as slots of the stacks that read them (seqc_chunked_lowrank LR_EV_LINES \"on\")", () => {
  async function glue(model: I.Model, chain: ReturnType<typeof lowRankChain>, B: number, T: number, chunk: number, dtype: "float64" | "float32", ways: Ways) {
    const run = chunkInputs(model, { dims: dimsOf(model), batch: B, time: T, seed: 70 + T, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), T + 7);
    const want = await gradients(model, run, cot);
    const got = await pythonLowRank(model, chain, run, cot, false, chunk, dtype, ways);
    const err = Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)), relativeError(Float64Array.from(got.dS0.data), want.initialState[chain.names.state]));
    return { got, err };
  }
  const same = (a: { inputs: Record<string, { data: number[] }>; dS0: { data: number[] } }, b: typeof a) =>
    Math.max(...Object.keys(a.inputs).map((k) => relativeError(Float64Array.from(a.inputs[k].data), Float64Array.from(b.inputs[k].data))), relativeError(Float64Array.from(a.dS0.data), Float64Array.from(b.dS0.data)));
  it.each(["deltanet", "gated_deltanet", "gated_deltaproduct"])("%s: \"on\" gives bitwise \"off\"'s gradients (float64 and float32, every stand-in, with and without a strided dY, ragged chunks, T = 1, both reversed reads), both within 1e-9 of the reference", async (name) => {
    const model = load(name);
    const chain = lowRankChain(model, dimsOf(model));
    const F: Ways = { ...MA, bwd: "wy", fused: "recurrence", readout: "recurrence", pass: "recurrence", wyKern: "recurrence", copies: "lean", postBinds: ["o__bar"], merge: "decay" };
    for (const [B, T, chunk, ways, dtype] of [[2, 23, 5, F, "float64"], [2, 23, 5, { ...F, wyDyStride: true }, "float64"], [1, 1, 64, { ...F, wyDyStride: true }, "float64"],
      [2, 29, 13, { ...F, revRead: "flip" }, "float64"], [2, 29, 13, { ...MA, bwd: "wy", copies: "lean" }, "float64"], [2, 23, 8, { ...F, wyDyStride: true }, "float32"]] as [number, number, number, Ways, "float64" | "float32"][]) {
      const label = `B=${B} T=${T} chunk=${chunk} ${dtype}${ways.wyDyStride ? " dY strided" : ""}${ways.revRead ? " " + ways.revRead : ""}${ways.wyKern ? "" : " torch ops"}`;
      const off = await glue(model, chain, B, T, chunk, dtype, { ...ways, evLines: "off" });
      const on = await glue(model, chain, B, T, chunk, dtype, { ...ways, evLines: "on" });
      expect(same(on.got, off.got), `${label}: on vs off`).toBe(0);
      expect(off.err, `${label}: off vs reference`).toBeLessThanOrEqual(dtype === "float64" ? 1e-9 : 1e-4);
      expect([on.got.wyCalls, on.got.readoutCalls, on.got.fusedCalls], label).toEqual([off.got.wyCalls, off.got.readoutCalls, off.got.fusedCalls]);
      // copies into tensors of a line's size or more: the aug core's key stack, its [0 | v] put, wy's copy of q and (where the
      // wy stand-in reads a strided dY, or no kernel runs) of dy are gone
      // (counted where at least the largest input's size: with these small dims q's [.., K] copy is below it but for Gated
      // DeltaProduct's two micro-steps a token; T = 1: every tensor counts, at least those)
      const gone = (ways.wyDyStride || !ways.wyKern ? 3 : 2) + (name === "gated_deltaproduct" ? 1 : 0);
      if (T > 1) expect(off.got.bigCopies - on.got.bigCopies, `${label}: copies ${off.got.bigCopies} -> ${on.got.bigCopies}`).toBe(gone);
      else expect(off.got.bigCopies - on.got.bigCopies, `${label}: copies ${off.got.bigCopies} -> ${on.got.bigCopies}`).toBeGreaterThanOrEqual(gone);
    }
  }, 300_000);
});

describe.skipIf(!cpuTorch)("torch target: the chunk-state backward with a per-key decay (seqc_chunked_lowrank LR_BWD \"wy\" with LR_BWD_KEY \"wy\")", () => {
  /** A delta rule with a per-key decay step before it (Gated DeltaNet with g per key; two micro-steps a token): the
   * stdlib's only other per-key low-rank model is RWKV-7 (decay and low rank in one step). */
  const KEY_DELTA = `model KeyDeltaNet {
  dims H, K, V
  input q[H,K], k[H,K], v[H,V]
  input beta[H]
  input g[H,K]
  state S[H,K,V] = 0
  S[h,i,j] = exp(g[h,i]) * S[h,i,j]
  let u[h,j] = beta[h] * (v[h,j] - sum(i) S[h,i,j] * k[h,i])
  S[h,i,j] = S[h,i,j] + k[h,i] * u[h,j]
  output o[h,j] = sum(i) q[h,i] * S[h,i,j]
}`;
  const models: Record<string, () => I.Model> = {
    rwkv7: () => load("rwkv7"),
    key_deltanet: () => loadProgram(["key_deltanet.seq"], new Map([["key_deltanet.seq", KEY_DELTA]])).models[0],
  };
  it.each(Object.keys(models))("%s: the per-key path equals the float64 reference (1e-9) and the chain (float32 1e-4); a dropped term fails", async (name) => {
    const model = models[name]();
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    expect(chain.names.decay).toBe("key");
    const W = { ...MA, bwd: "wy", keyBwd: "wy" } as const;
    // T = 1, chunk 1, chunks not dividing the timeline (5, 13: ChunkCore pads 13 -> 16 in halves, the per-key path runs the
    // padded chunk), several chunks, one chunk (64 > T), given and declared initial states, with and without the
    // final-state cotangent, stressed inputs (log decays down to -20 a step), the pass plan, the tokens layout, the
    // sub-blocks way (LR_KEY "blocks", its transitions as products), the launchers' stand-ins (fused transitions, pass,
    // wy kernels: not taken for a per-key decay), float32
    const cases: GlueCase[] = [
      [1, 1, true, false, 64, "float64", W, false], [3, 11, false, true, 1, "float64", W, true], [2, 23, true, false, 5, "float64", W, true],
      [2, 29, true, false, 13, "float64", W, true], [2, 37, true, true, 64, "float64", W, true], [2, 19, false, false, 8, "float64", { ...W, torchOps: false }, true],
      [2, 23, true, false, 5, "float64", { ...W, layout: "tokens" }, true], [2, 23, true, false, 13, "float64", { ...W, keyWay: "blocks" }, true],
      [2, 23, true, false, 13, "float64", { ...W, fused: "recurrence", pass: "recurrence", wyKern: "recurrence" }, true],
      [2, 23, true, false, 8, "float32", W, false], [2, 29, true, false, 13, "float32", W, true],
    ];
    await checkGlue(model, dims, chain, cases);
    // the per-key path against the chain at the same float32 inputs (the decay adjoint's plan shows which ran)
    const run = chunkInputs(model, { dims, batch: 2, time: 29, seed: 31, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), 30);
    const viaChain = await pythonLowRank(model, chain, run, cot, false, 13, "float32", { ...MA, torchOps: false, bwd: "wy", keyBwd: "chain" });
    const viaWy = await pythonLowRank(model, chain, run, cot, false, 13, "float32", { ...W, torchOps: false });
    expect(viaChain.parts.includes("decay"), "the chain ran").toBe(true);
    expect(viaWy.parts.includes("decay"), "wy ran no decay plan").toBe(false);
    for (const k of Object.keys(viaChain.inputs)) {
      expect(relativeError(Float64Array.from(viaWy.inputs[k].data), Float64Array.from(viaChain.inputs[k].data)), `d ${k} wy vs chain`).toBeLessThanOrEqual(1e-4);
    }
    expect(relativeError(Float64Array.from(viaWy.dS0.data), Float64Array.from(viaChain.dS0.data)), "dS0 wy vs chain").toBeLessThanOrEqual(1e-4);
    // each term dropped in turn moves the gradients far off: the transitions in the reverse walk, the reads' dependence
    // on the start state, the chunk end's <L_end, S_C> per key row, the per-key log decays inside the reversed chunks
    const want = await gradients(model, run, cot);
    for (const wyBreak of ["walk", "xI", "a0", "ld"] as const) {
      const got = await pythonLowRank(model, chain, run, cot, false, 5, "float64", { ...W, wyBreak });
      const errs = Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v));
      expect(Math.max(...errs), `${wyBreak} dropped`).toBeGreaterThan(1e-2);
    }
  }, 300_000);
});

describe.skipIf(!cpuTorch)("torch target: which wy kernel the launcher takes (seqc_chunked_lowrank.wy_pick, LR_WY_K128, wy_op_math)", () => {
  it("K = 64 as before; the K = 128 kernels only with LR_WY_K128 \"on\" (the default); a twin only where one exists", () => {
    const kernels = lowRankWyModule().kernels;
    expect(kernels.filter((k) => k.K === 128).length).toBe(8);
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
ks = json.loads(sys.stdin.read())
out = {'default': m.LR_WY_K128}
for op in ('pre', 'dr'):
    for mode in ('none', 'scalar'):
        for K in (64, 128):
            for math in ('fp32', 'tf32'):
                for way in (None, 'off', 'on'):
                    k = m.wy_pick(ks, op, mode, 64, K, K, math, way)
                    out['%s %s %d %s %s' % (op, mode, K, math, way)] = k and k['entry']
try:
    m.wy_pick(ks, 'pre', 'none', 64, 128, 128, 'fp32', 'yes')
    out['bad'] = 'accepted'
except ValueError:
    out['bad'] = 'refused'
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.default).toBe("on");
    expect(got.bad).toBe("refused");
    for (const op of ["pre", "dr"])
      for (const mode of ["none", "scalar"])
        for (const math of ["fp32", "tf32"])
          for (const way of ["None", "off", "on"]) {
            const twin = op === "pre" && math === "tf32" ? "_tf32" : "";
            expect(got[`${op} ${mode} 64 ${math} ${way}`], `${op} ${mode} K 64 ${math} ${way}`).toBe(`seqc_lr_wy_${op}_${mode}_c64k64v64${twin}`);
            expect(got[`${op} ${mode} 128 ${math} ${way}`], `${op} ${mode} K 128 ${math} ${way}`).toBe(way !== "off" ? `seqc_lr_wy_${op}_${mode}_c64k128v128${math === "tf32" ? "_tf32" : ""}` : null);
          }
  });

  it("wy_op_math: LR_WY_MMA's math at K = 64, LR_WY_MMA_K128's wider (\"off\" / \"tf32\" by default), each op only where LR_WY_MMA_OPS names it; wy_rows_aligned", () => {
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
import torch
out = {'default': [m.LR_WY_MMA, m.LR_WY_MMA_K128, m.LR_WY_MMA_OPS]}
for op in ('pre', 'dr'):
    for K in (64, 128):
        for ops in (None, 'both', 'pre', 'dr'):
            out['%s %d %s' % (op, K, ops)] = m.wy_op_math(op, K, 'tf32', 'tf32x3', ops)
bf = [torch.bfloat16, None]
out['k128 default bf16'] = m.wy_math_k128(bf)
out['k128 tf32 bf16'] = m.wy_math_k128(bf, 'tf32')
out['k128 tf32 fp32'] = m.wy_math_k128([torch.float32], 'tf32')
x = torch.zeros(2, 64, 128)
out['aligned'] = [m.wy_rows_aligned([x, torch.zeros(2, 64, 256)[:, :, :128]]), m.wy_rows_aligned([x, torch.zeros(2 * 64 * 128 + 1)[1:].view(2, 64, 128)]),
                  m.wy_rows_aligned([x, torch.zeros(2, 64, 130)[:, :, :128]])]
for bad in (lambda: m.wy_op_math('pre', 64, 'fp32', 'fp32', 'all'), lambda: m.wy_math_k128(bf, 'on')):
    try:
        bad()
        out.setdefault('bad', []).append('accepted')
    except ValueError:
        out.setdefault('bad', []).append('refused')
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.default).toEqual(["off", "tf32", "both"]);
    expect(got.bad).toEqual(["refused", "refused"]);
    for (const op of ["pre", "dr"])
      for (const K of [64, 128])
        for (const ops of ["None", "both", "pre", "dr"]) {
          const on = ops === "None" || ops === "both" || ops === op;
          expect(got[`${op} ${K} ${ops}`], `${op} K ${K} ops ${ops}`).toBe(on ? (K > 64 ? "tf32x3" : "tf32") : "fp32");
        }
    expect([got["k128 default bf16"], got["k128 tf32 bf16"], got["k128 tf32 fp32"]]).toEqual(["tf32", "tf32", "fp32"]);
    // the twins' 16-byte row copies: a strided view with 4-float row strides passes, a row 4 bytes off or a stride of 130 floats does not
    expect(got.aligned).toEqual([true, false, false]);
  });
});

describe.skipIf(!cpuTorch)("torch target: which walk kernel the launcher takes (seqc_chunked_lowrank.pass_pick, LR_PASS_COLS)", () => {
  it("value-column groups of LR_PASS_COLS' width (default \"auto\": the widest giving >= SM count blocks, else the narrowest) only where B * H is below the SM count and the module has them; whole rows otherwise", () => {
    const kernels = lowRankPassModule().kernels;
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
ks = json.loads(sys.stdin.read())
out = {'default': m.LR_PASS_COLS}
for d in ('fwd', 'adj'):
    for K in (64, 128):
        for rows in (8, 64, 132, 512):
            for cols in (None, 0, 16, 32, 24, 'auto'):
                k, g = m.pass_pick(ks, d, K, K, rows, 132, cols)
                out['%s %d %d %s' % (d, K, rows, cols)] = [k and k['entry'], g]
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.default).toBe("auto");
    for (const d of ["fwd", "adj"])
      for (const K of [64, 128])
        for (const rows of [8, 64, 132, 512])
          for (const cols of ["None", "0", "16", "32", "24", "auto"]) {
            // "auto": the widest groups with rows V / G >= 132 blocks (G = 32 from 33 rows on), else G = 16
            const G = cols === "None" || cols === "auto" ? (rows * 4 >= 132 ? 32 : 16) : Number(cols), grouped = K === 128 && rows < 132 && (G === 16 || G === 32);
            expect(got[`${d} ${K} ${rows} ${cols}`], `${d} K ${K} rows ${rows} cols ${cols}`).toEqual(grouped ? [`seqc_lr_pass_${d}_k128v128_g${G}`, 128 / G] : [`seqc_lr_pass_${d}_k${K}v${K}`, 1]);
          }
  });
});

describe.skipIf(!cpuTorch)("torch target: the fused transitions' twin at K = 128 (seqc_chunked_lowrank.core_k128, LR_CORE_K128)", () => {
  it("with LR_CORE_K128 \"off\" K = 128 transitions go to the fp32 launcher, K = 64 ones to the twin's; \"on\" (the default) sends every one to the twin's", () => {
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
calls = []
def twin(op, mode, C, K, V, *args):
    calls.append(['twin', K, V, list(args)])
    return True
def fp32(op, mode, C, K, V, *args):
    calls.append(['fp32', K, V, list(args)])
    return True
out = {'default': m.LR_CORE_K128, 'none': m.core_k128(None, fp32) is None}
for way in (None, 'off', 'on'):
    f = m.core_k128(twin, fp32, way)
    out[str(way)] = [f('transitions', 'none', 64, K, K, 'KK', 'W', 'VV', None, 'END') for K in (64, 128)]
out['calls'] = calls
try:
    m.core_k128(twin, fp32, 'yes')
    out['bad'] = 'accepted'
except ValueError:
    out['bad'] = 'refused'
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect([got.default, got.none, got.bad]).toEqual(["on", true, "refused"]);
    expect([got.None, got.off, got.on]).toEqual([[true, true], [true, true], [true, true]]);
    const args = ["KK", "W", "VV", null, "END"];
    expect(got.calls).toEqual([["twin", 64, 64, args], ["twin", 128, 128, args], ["twin", 64, 64, args], ["fp32", 128, 128, args], ["twin", 64, 64, args], ["twin", 128, 128, args]]);
  });
});

describe.skipIf(!cpuTorch)("torch target: the fused readouts at K = V = 128 (seqc_chunked_lowrank.read_k128, LR_READ_K128)", () => {
  it("with LR_READ_K128 \"off\" the launcher takes K = 64 reads only; \"on\" (the default) passes every read through as it is, where the launcher passes rev (and qs)", () => {
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
calls = []
def launch(axis, oq, mode, C, K, V, *args, rev=False):
    calls.append([axis, K, V, list(args), rev])
    return True
def old(axis, oq, mode, C, K, V, *args):  # a launcher without rev (it passes no rev / qs)
    calls.append(['old', K, V, list(args)])
    return True
out = {'default': m.LR_READ_K128, 'none': m.read_k128(None) is None}
for way in (None, 'off', 'on'):
    f = m.read_k128(launch, way)
    out[str(way)] = [f('key', 1, 'scalar', 64, K, V, 2, 'Q', 'EA', 'EB', 'S0', 'G', 'OUT', rev=True) for K, V in ((64, 64), (128, 128), (64, 128))]
out['old'] = [m.read_k128(old, 'on')('key', 1, 'scalar', 64, K, K, 2, 'Q', 'EA', 'EB', 'S0', 'G', 'OUT') for K in (64, 128)]
out['calls'] = calls
try:
    m.read_k128(launch, 'yes')
    out['bad'] = 'accepted'
except ValueError:
    out['bad'] = 'refused'
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect([got.default, got.none, got.bad]).toEqual(["on", true, "refused"]);
    expect([got.None, got.off, got.on, got.old]).toEqual([[true, true, true], [true, false, false], [true, true, true], [true, false]]);
    const args = [2, "Q", "EA", "EB", "S0", "G", "OUT"], all = [["key", 64, 64, args, true], ["key", 128, 128, args, true], ["key", 64, 128, args, true]];
    expect(got.calls).toEqual([...all, ["key", 64, 64, args, true], ...all, ["old", 64, 64, args]]);
  });
});

describe.skipIf(!cpuTorch)("torch target: the fused readouts with a per-key decay (seqc_chunked_lowrank LR_READ_KEY \"cuda\": readout_key_launcher, the recurrence standing in)", () => {
  it("rwkv7: the chain's five reads take the per-key launcher; gradients as the float64 reference (1e-9; float32 1e-4); a stand-in without the per-key decay fails", async () => {
    const model = load("rwkv7");
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    expect(chain.names.decay).toBe("key");
    // the launcher's contract (compiler/backends/cuda/lowrank-readout-key.ts, checked on its own by
    // test/cuda-lowrank-readout-key-emu) with the fused transitions' stand-in beside it: a ragged chunk (13: padded to 16
    // for the halves, the padded chunk is what the launcher gets), stressed (log decays down to -20 a step); T = 1; the
    // tokens layout without sharing and a declared initial state without a final-state cotangent; the sub-blocks way
    // (LR_KEY "blocks"); float32 stressed; the per-key stand-in without the other readouts' stand-in
    const F = { ...MA, fused: "recurrence", readout: "recurrence", readKey: "recurrence" } as const;
    const cases: GlueCase[] = [
      [2, 23, true, false, 13, "float64", F, true], [1, 1, true, false, 64, "float64", F, false],
      [3, 11, false, true, 4, "float64", { ...F, layout: "tokens", share: false }, true], [2, 23, true, false, 13, "float64", { ...F, keyWay: "blocks" }, true],
      [2, 29, true, false, 16, "float32", F, true],
    ];
    await checkGlue(model, dims, chain, cases);
    const run = chunkInputs(model, { dims, batch: 2, time: 23, seed: 41, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), 24);
    const want = await gradients(model, run, cot);
    const alone = await pythonLowRank(model, chain, run, cot, false, 13, "float64", { ...MA, fused: "recurrence", readKey: "recurrence" });
    expect(alone.readoutCalls, "the per-key stand-in alone").toBe(5);
    const err = (got: typeof alone) => Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)));
    expect(err(alone), "the per-key stand-in alone").toBeLessThanOrEqual(1e-9);
    // key 0's decay for every key: far off
    const broken = await pythonLowRank(model, chain, run, cot, false, 13, "float64", { ...F, readKeyBreak: true });
    expect(broken.readoutCalls).toBe(5);
    expect(err(broken), "a per-key stand-in with one decay for all keys").toBeGreaterThan(1e-2);
  }, 300_000);
});

/** Runs `body` after a preamble on CPU torch: seqc_chunked_lowrank as m, the kernel descriptors `kernels` as ks (by
 * stdin), a fake kernel module KM whose launch appends [entry, (list(grid) where `grid`), the arguments (a u32's value,
 * else its type)] to calls, torch.cuda's device and stream stubbed, dev the CPU; the JSON it prints. */
function fakeLaunches(kernels: unknown, grid: boolean, body: string): any {
  const script = `
import contextlib, json, sys
sys.path.insert(0, 'runtime/torch')
import torch
import seqc_chunked_lowrank as m
ks = json.loads(sys.stdin.read())
calls = []
class KM:
    def __init__(self, kernels):
        self.kernels = kernels
    def launch(self, k, grid, args, stream):
        calls.append([k['entry'], ${grid ? "list(grid), " : ""}[a[1] if a[0] == 'u32' else a[0] for a in args]])
torch.cuda.device = lambda d: contextlib.nullcontext()
torch.cuda.current_stream = lambda d=None: type('S', (), {'cuda_stream': 0})()
dev = torch.device('cpu')${body}`;
  const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(kernels), encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe.skipIf(!cpuTorch)("torch target: the chain's adjoint reading its reversed timeline through the per-key readouts (seqc_chunked_lowrank LR_CHAIN_REV \"kernel\": ChunkCore.read_mirror, the decay plan's inputs by index_select)", () => {
  it("rwkv7: \"kernel\" equals \"flip\" bitwise (the per-key stand-in takes both adjoint reads mirrored), 16 -> 3 line flips; a padded chunk falls back to flips around the reads; a stand-in ignoring mirror is far off", async () => {
    const model = load("rwkv7");
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    // the decay adjoint as its plan (LR_DECAY "plan", the default: torchOps false), the readouts as products, the heads layout
    const F: Ways = { torchOps: false, readWay: "matmul", augWay: "matmul", fused: "recurrence", readout: "recurrence", readKey: "recurrence" };
    const run = (B: number, T: number, seed: number) => chunkInputs(model, { dims, batch: B, time: T, seed, initialState: true, stress: true });
    const same = (a: { inputs: Record<string, { data: number[] }>; dS0: { data: number[] } }, b: typeof a) =>
      Math.max(...Object.keys(a.inputs).map((k) => relativeError(Float64Array.from(a.inputs[k].data), Float64Array.from(b.inputs[k].data))), relativeError(Float64Array.from(a.dS0.data), Float64Array.from(b.dS0.data)));
    for (const [B, T, chunk, dtype, mirrored] of [[2, 23, 8, "float64", 2], [1, 1, 16, "float64", 2], [2, 29, 16, "float32", 2], [2, 23, 13, "float64", 0]] as const) {
      const label = `B=${B} T=${T} chunk=${chunk} ${dtype}`;
      const r = run(B, T, 70 + T), cot = randomCotangents(interpret(model, r), T + 3);
      const want = await gradients(model, r, cot);
      const flip = await pythonLowRank(model, chain, r, cot, false, chunk, dtype, { ...F, chainRev: "flip" });
      const kern = await pythonLowRank(model, chain, r, cot, false, chunk, dtype, { ...F, chainRev: "kernel" });
      const err = (got: typeof flip) => Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)), relativeError(Float64Array.from(got.dS0.data), want.initialState[chain.names.state]));
      const tol = dtype === "float64" ? 1e-9 : 1e-4;
      expect(err(flip), `${label}: flip vs reference`).toBeLessThanOrEqual(tol);
      expect(err(kern), `${label}: kernel vs reference`).toBeLessThanOrEqual(tol);
      expect(same(kern, flip), `${label}: kernel vs flip`).toBe(0);
      // the adjoint's two reads (key axis: dv, a; value axis: dk, du) mirrored where the chunk is not padded (halves: 13 ->
      // 16, then read_mirror flips Q and the outputs around the plain reads: 4 flips of [N, C, m, w])
      expect([flip.readoutCalls, kern.readoutCalls, flip.readoutMirror, kern.readoutMirror], label).toEqual([5, 5, 0, mirrored]);
      // (16 flips: the adjoint's nine inputs, a, dv, dk, du back, the decay's dq, dw and its output; "kernel": x_k, x_v
      // and the decay's output; the inputs read a step later by index_select)
      expect([flip.bigFlips, kern.bigFlips], label).toEqual([16, mirrored ? 3 : 7]);
    }
    const r = run(2, 23, 93), cot = randomCotangents(interpret(model, r), 26);
    const want = await gradients(model, r, cot);
    const broken = await pythonLowRank(model, chain, r, cot, false, 8, "float64", { ...F, chainRev: "kernel", mirrorBreak: true });
    expect(broken.readoutMirror).toBe(2);
    expect(Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(broken.inputs[k].data), v))), "a per-key stand-in that ignores mirror").toBeGreaterThan(1e-2);
  }, 300_000);

  it("readout_key_launcher: mirror passed as the kernels' last argument where they take it (the module's descriptors), refused by modules built before it and by other decay modes", () => {
    const got = fakeLaunches(lowRankReadKeyModule().kernels, true, `
def base(*a, **kw):
    calls.append(['base', kw.get('rev', False)])
    return True
out = {}
for name, kk in (('new', ks), ('old', [dict((x, y) for x, y in k.items() if x != 'mirror') for k in ks])):
    m.switch_kernels = lambda mod, device, way, switch, key: KM(kk)
    launch = m.readout_key_launcher(base, None, dev)
    N, C, K = 4, 64, 64
    f = lambda *s: torch.zeros(*s)
    args = ('key', 1, 'key', C, K, K, 2, f(N, C, 2, K), f(N, C, 2, K), f(N, C, 2, K), f(N, K, K), f(N, C + 1, K), f(N, C, 2, K))
    out[name] = [launch(*args), launch(*args, mirror=2), launch(*args, mirror=3), launch('key', 1, 'scalar', *args[3:], mirror=2), launch('key', 1, 'scalar', *args[3:])]
out['calls'] = calls
out['default'] = m.LR_CHAIN_REV
print(json.dumps(out))
`);
    expect(got.default, "LR_CHAIN_REV's default (\"kernel\" since the H200 call)").toBe("kernel");
    // new: plain, mirrored by 2, refused at 3 (4 rows not whole lines), a scalar decay with mirror refused, without it to base
    expect(got.new).toEqual([true, true, false, false, true]);
    expect(got.old).toEqual([true, false, false, false, true]);
    // (the pre-decayed entry: LR_READ_KEY_PRE "on", the default)
    const e = "seqc_lr_read_key_key_c64k64v64m2_pre", p = ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr"];
    expect(got.calls).toEqual([[e, [4, 1], [...p, 4, 1, 2, 0]], [e, [4, 1], [...p, 4, 1, 2, 2]], ["base", false], [e, [4, 1], [...p, 4, 1, 2]], ["base", false]]);
  });
});

describe.skipIf(!cpuTorch)("torch target: wy's \"pre\" launch with a strided dY (seqc_chunked_lowrank.wy_launcher, lowrank-wy.ts dyStride)", () => {
  it("the fp32 kernel gets dY's row stride after its pointer; a module without dyStride gets a contiguous copy and no stride; dy_stride says which", () => {
    const got = fakeLaunches(lowRankWyModule().kernels, false, `
out = {}
N, C, K, V = 3, 64, 64, 64
ev = torch.zeros(N, C, 2, V)
for name, kk in (('new', ks), ('old', [dict((x, y) for x, y in k.items() if x != 'dyStride') for k in ks])):
    m.switch_kernels = lambda mod, device, way, switch, key: KM(kk)
    launch = m.wy_launcher(None, dev)
    rows = torch.zeros(N, C, 2, K)[:, :, 0]
    got = launch('pre', C, K, V, 'scalar', rows, rows, ev[:, :, 0], rows, torch.zeros(N, C + 1, 1))
    out[name] = [launch.dy_stride, got is not None]
out['calls'] = calls
print(json.dumps(out))
`);
    expect([got.new, got.old]).toEqual([[true, true], [false, true]]);
    const e = "seqc_lr_wy_pre_scalar_c64k64v64";
    expect(got.calls).toEqual([[e, ["ptr", 128, "ptr", 128, "ptr", 128, "ptr", 128, "ptr", "ptr", "ptr", 3]], [e, ["ptr", 128, "ptr", 128, "ptr", "ptr", 128, "ptr", "ptr", "ptr", 3]]]);
  });
});

describe.skipIf(!cpuTorch)("torch target: which per-key readouts kernel the launcher takes (seqc_chunked_lowrank.read_key_pick, LR_READ_KEY_PRE)", () => {
  it("the pre-decayed kernels by default (LR_READ_KEY_PRE \"on\"): each axis's _pre form where the module has it, else the plain one; \"off\" the plain ones", () => {
    const kernels = lowRankReadKeyModule().kernels;
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
ks = json.loads(sys.stdin.read())
out = {'default': m.LR_READ_KEY_PRE}
for axis in ('key', 'value'):
    for pre in (False, True):
        for name, kk in (('all', ks), ('old', [k for k in ks if not k.get('form')])):
            k = m.read_key_pick(kk, axis, 64, 64, 64, 2, pre)
            out['%s %s %s' % (axis, 'true' if pre else 'false', name)] = k and k['entry']
out['other M'] = m.read_key_pick(ks, 'key', 64, 64, 64, 3, True)
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const key = "seqc_lr_read_key_key_c64k64v64m2", value = "seqc_lr_read_value_key_c64k64v64m2";
    expect(got).toEqual({
      default: "on", "key false all": key, "key true all": `${key}_pre`, "key false old": key, "key true old": key,
      "value false all": value, "value true all": `${value}_pre`, "value false old": value, "value true old": value, "other M": null,
    });
  });
});
