/**
 * The stateless parts' vector twins (compiler/backends/torch/stateless-vec.ts, "-rv<M>": a thread 4 consecutive
 * elements of a row a chunk, the lane-indexed loads and stores as one float4 / bf16 quad; "-rf<M>": phases fused) on the CPU emulation of CUDA
 * (test/cuda-emu/emu.h, g++): each against the row-major twin it copies ("-rm<M>", stateless-rows.ts), bitwise, every
 * output (those written as bf16 by "-bf16out" twins, and those left unwritten by "-nz" twins, too). At sizes whose rows
 * are multiples of 4 (the vector path runs: a broken vector load below fails), at odd sizes (the row-major fallback
 * runs), T = 1 and a ragged T, for every model whose stateless parts have vector twins, on both chains.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { torchChain } from "../compiler/backends/torch/chain-copies.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { torchLowRankChain } from "../compiler/backends/torch/chain-copies-lowrank.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { VEC_LOAD_FN } from "../compiler/backends/torch/stateless-vec.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import type { ChainPart } from "../runtime/chunked-backward.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runForm } from "./helpers/stateless-emu.ts";
import { randomRun, smallDims } from "./helpers/random.ts";
import type { Model } from "../compiler/ir/types.ts";

const gxx = spawnSync("g++", ["--version"]).status === 0;
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const BAKED: Record<string, number> = { J: 2 };
const STATELESS: ChainPart[] = ["prep", "postBw", "prepBw"];
const lowRank = new Set(["deltanet", "gated_deltanet", "rwkv7", "gated_deltaproduct"]);

function chainModels(name: string, model: Model, dims: Record<string, number>): Partial<Record<string, Model>> {
  return lowRank.has(name) ? torchLowRankChain(lowRankChain(model, { ...dims, ...BAKED }), { ...dims, ...BAKED }).models : torchChain(modelChain(model, dims), dims).models;
}

/** The rv forms of `plan` each run beside the rm form they copy on the same values: the count compared, and the count
 *  whose outputs differ anywhere (0 for a correct plan). */
function compare(name: string, part: ChainPart, plan: CudaModelPlan, m: Model, dims: Record<string, number>, cases: [number, number, number][], only?: (v: string) => boolean) {
  const bin = buildEmu(plan);
  let compared = 0;
  let differ = 0;
  for (const [B, T, seed] of cases) {
    const run = randomRun(m, { dims, batch: B, time: T, seed: seed * 11 + part.length });
    for (const f of plan.forms.filter((x) => /-r[vfw]\d+(-bf16out)?$/.test(x.variant) && (!only || only(x.variant)))) {
      const src = plan.forms.find((x) => x.variant === f.variant.replace(/-r[vfw](\d+)/, "-rm$1"));
      expect(src, `${name} ${part} ${f.variant}`).toBeDefined();
      expect([src!.io, src!.out, src!.bf16Inputs, src!.bf16Outputs, src!.unwritten, src!.vars]).toEqual([f.io, f.out, f.bf16Inputs, f.bf16Outputs, f.unwritten, f.vars]);
      const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
      const pars = Object.fromEntries(Object.entries(run.params ?? {}).map(([k, v]) => [k, Float64Array.from(Float32Array.from(v))]));
      const a = runForm(bin, plan, src!, dims, B, T, vals, pars);
      const b = runForm(bin, plan, f, dims, B, T, vals, pars);
      const same = Object.keys(a).every((o) => a[o].length === b[o].length && a[o].every((x, i) => Object.is(x, b[o][i])));
      if (!same) differ++;
      compared++;
    }
  }
  return { compared, differ };
}

describe.skipIf(!gxx)("torch target: the stateless parts' vector twins on the CUDA emulation", () => {
  it.each([
    // rows of multiples of 4: the vector path
    ["deltanet", { H: 2, K: 8, V: 12 }],
    ["gated_deltanet", { H: 2, K: 8, V: 12 }],
    ["rwkv7", { H: 2, K: 8, V: 12 }],
    ["gated_deltaproduct", { H: 2, K: 8, V: 12 }],
    ["gla", { H: 2, K: 8, V: 12 }],
    ["simple_gla", { H: 2, K: 8, V: 12 }],
    ["mamba2", { H: 2, P: 8, N: 12 }],
    // odd rows: the row-major fallback
    ["deltanet", { H: 3, K: 5, V: 7 }],
    ["gla", { H: 3, K: 5, V: 7 }],
  ] as [string, Record<string, number>][])("%s %j: each vector twin bitwise the row-major twin it copies", (name, sizes) => {
    const model = load(name);
    const dims = smallDims(model, sizes);
    const tp = buildTorchPlans(model, { dims: Object.fromEntries(Object.entries(BAKED).filter(([k]) => model.dims.some((d) => d.name === k))) });
    const models = chainModels(name, model, dims);
    let compared = 0;
    for (const part of STATELESS) {
      const plan = tp.plans[`chain:${part}`];
      if (!plan || !models[part]) continue;
      const r = compare(name, part, plan, models[part]!, dims, [
        [2, 9, 3],
        [1, 1, 5],
        [3, 5, 7],
      ]);
      expect(r.differ, `${name} ${part}`).toBe(0);
      compared += r.compared;
    }
    // every model here has a vector twin (3 row multiples) of at least one part
    expect(compared).toBeGreaterThanOrEqual(3 * 3);
  }, 600_000);

  it.each([
    ["deltanet", { H: 2, K: 40, V: 12 }],
    ["gated_deltanet", { H: 3, K: 37, V: 5 }],
  ] as [string, Record<string, number>][])("%s %j prep's backward: the warp-fused twins (-rw, stateless-wfuse.ts: rows past 32 lanes) bitwise the row-major twin", (name, sizes) => {
    const model = load(name);
    const dims = smallDims(model, sizes);
    const plan = buildTorchPlans(model).plans["chain:prepBw"];
    const r = compare(name, "prepBw", plan, chainModels(name, model, dims).prepBw!, dims, [[2, 9, 3], [1, 1, 5]], (v) => /-rw\d+/.test(v));
    // the bf16-input and bf16-bar twins, each with its -bf16out twin, 3 row multiples, 2 cases
    expect([r.compared, r.differ]).toEqual([2 * 2 * 3 * 2, 0]);
  }, 600_000);

  it("a warp-fused twin whose walk of the row skips each lane's first element differs from the row-major twin (the check can fail)", () => {
    const model = load("deltanet");
    const dims = smallDims(model, { H: 2, K: 8, V: 12 });
    const plan0 = buildTorchPlans(model).plans["chain:prepBw"];
    const loop = "for (unsigned int i_rw = wlane; ";
    expect(plan0.source).toContain(loop);
    const plan = { ...plan0, source: plan0.source.split(loop).join("for (unsigned int i_rw = wlane + 1u; ") };
    const m = chainModels("deltanet", model, dims).prepBw!;
    const good = compare("deltanet", "prepBw", plan0, m, dims, [[2, 9, 3]], (v) => v === "global-bf16in-wr-rw4");
    const bad = compare("deltanet", "prepBw", plan, m, dims, [[2, 9, 3]], (v) => v === "global-bf16in-wr-rw4");
    expect([good.compared, good.differ]).toEqual([1, 0]);
    expect([bad.compared, bad.differ]).toEqual([1, 1]);
  }, 120_000);

  it("a vector twin whose bf16 loads swap a quad's halves differs from the row-major twin (the check can fail)", () => {
    const model = load("deltanet");
    const dims = smallDims(model, { H: 2, K: 8, V: 12 });
    const plan0 = buildTorchPlans(model).plans["chain:prep"];
    // a broken widening of the quad: element 4 i + 1 taken from bits 0..15 (element 4 i's)
    const fn = `float4 ${VEC_LOAD_FN}(const unsigned short* p, unsigned int i) {`;
    expect(plan0.source).toContain(fn);
    const plan = { ...plan0, source: plan0.source.replace("__uint_as_float(a << 16), __uint_as_float(a & 0xffff0000u)", "__uint_as_float(a << 16), __uint_as_float(a << 16)") };
    expect(plan.source).not.toEqual(plan0.source);
    const m = chainModels("deltanet", model, dims).prep!;
    const good = compare("deltanet", "prep", plan0, m, dims, [[2, 9, 3]], (v) => v === "global-bf16in-rv4");
    const bad = compare("deltanet", "prep", plan, m, dims, [[2, 9, 3]], (v) => v === "global-bf16in-rv4");
    expect([good.compared, good.differ]).toEqual([1, 0]);
    expect([bad.compared, bad.differ]).toEqual([1, 1]);
  }, 120_000);
});
