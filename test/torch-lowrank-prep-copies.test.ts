/**
 * The low-rank chain's prep without its copies of inputs (compiler/backends/torch/chain-copies-lowrank.ts; the glue,
 * runtime/torch/seqc_chunked_lowrank.py lowrank_backward, binds each copy to its input and adds the copy's adjoint to
 * the input's gradient):
 *   - the torch module's names and plans: DeltaNet's prep writes u, kk, q (w = k, v its inputs), Gated DeltaNet's also
 *     not ld = g, RWKV-7 has no prep and no prep's backward (all six outputs copies);
 *   - the gradients through every backward way (the adjoint chain, the chunk-state backward "wy", the token-aligned
 *     "delta" by torch ops and by its kernels' stand-in) on CPU torch, the stateless parts on the float64 interpreter
 *     (test/torch/lowrank_glue.py): float64 within 1e-9 of seqc's reference and of the chain with its copies, float32
 *     within 1e-4; the inputs given as bf16 tensors (a bf16 step's: the copies then bf16 views) bitwise as the same
 *     rounded values given in float32; a copy bound to the wrong input is far off.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { LrPart } from "../runtime/chunked-backward-lowrank.ts";
import { torchLowRankChain } from "../compiler/backends/torch/chain-copies-lowrank.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve } from "./helpers/python-serve.ts";
import { glueTensors } from "./helpers/glue-case.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const dimsOf = (model: I.Model) => smallDims(model, { K: 5, V: 7 });
const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-lowrank-prep-copies.test: no torch for /usr/bin/python3 (Debian's python3-torch); the glue checks are skipped");

type Chain = { names: ReturnType<typeof lowRankChain>["names"] & { prepAliases?: Record<string, string> }; models: ReturnType<typeof lowRankChain>["models"] };
interface Ways { bwd: "chain" | "wy" | "delta"; keyBwd?: "wy"; deltaKern?: "recurrence"; givenBf16?: "tensor" | "round" }
type Got = { parts: string[]; inputs: Record<string, { data: number[] }>; dS0: { data: number[] }; deltaCalls: string[] };

/** {model: [prep's copies {output: input}, the outputs prep still writes, the inputs prep's backward gives adjoints of]} */
const WANT: Record<string, [Record<string, string>, string[], string[]]> = {
  deltanet: [{ w1: "k", vv3: "v" }, ["u0", "kk2", "q4"], ["beta", "k", "q"]],
  gated_deltanet: [{ ld0: "g", w2: "k", vv4: "v" }, ["u1", "kk3", "q5"], ["beta", "k", "q"]],
  rwkv7: [{ ld0: "w", u1: "b", w2: "a", kk3: "k", vv4: "v", q5: "r" }, [], []],
};

/** lowrank_backward on a case (the readouts and transitions as products, lean copies, post's backward binding the
 * cotangent alone, the decay step merged where "wy" or "delta" runs). */
async function glue(model: I.Model, { names, models }: Chain, run: RunInputs, cot: ReturnType<typeof randomCotangents>, chunk: number, dtype: "float64" | "float32", ways: Ways): Promise<Got> {
  const case_ = {
    names, B: run.batch, T: run.time, chunk, dtype, decayWay: "cumsum", passWay: "matmul", readWay: "matmul", augWay: "matmul", copies: "lean", postBinds: ["o__bar"], merge: "decay",
    ...ways, ...glueTensors(model, names.state, run, cot, false),
  };
  const parts: string[] = [];
  const got = await serve("/usr/bin/python3", ["test/torch/lowrank_glue.py"], case_, (msg) => {
    parts.push(msg.run);
    const m = models[msg.run as LrPart];
    if (!m) throw new Error(`part ${msg.run} has no model`);
    return { model: m, dims: msg.dims ?? { ...run.dims }, params: msg.dims ? {} : run.params ?? {} };
  });
  return { parts, ...got } as Got;
}

const errOf = (chain: Chain, got: Got, want: Awaited<ReturnType<typeof gradients>>) =>
  Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)), relativeError(Float64Array.from(got.dS0.data), want.initialState[chain.names.state]));
const vs = (a: Got, b: Got) => Math.max(...Object.keys(a.inputs).map((k) => relativeError(Float64Array.from(a.inputs[k].data), Float64Array.from(b.inputs[k].data))),
  relativeError(Float64Array.from(a.dS0.data), Float64Array.from(b.dS0.data)));

describe("torch target: the low-rank chain's prep without its copies of inputs (chain-copies-lowrank.ts)", () => {
  it.each(Object.keys(WANT))("%s: the module's names and plans", (name) => {
    const model = load(name);
    const [aliases, outputs, bars] = WANT[name];
    const tp = buildTorchPlans(model, {});
    if (!("lowRank" in tp.chunked)) throw new Error("not the low-rank chain");
    const plans = tp.plans as Record<string, CudaModelPlan>;
    const n = tp.chunked.lowRank;
    expect(n.prepAliases).toEqual(aliases);
    expect(n.prepOutputs).toEqual(outputs);
    expect(Object.keys(n.prepBw.inputBar).sort()).toEqual(bars);
    expect(Object.keys(n.prepBw.outputBar).sort()).toEqual([...outputs].sort());
    // the timeline still names every output (the copies among them)
    const named = n.steps.flatMap((s) => [...(s.ld ? [s.ld.name] : []), ...s.lowRank.flatMap((p) => [p.u, p.w]), ...s.inputs.flatMap((p) => [p.k, p.v])]).concat(n.readouts.map((r) => r.q));
    expect(named.filter((o) => o in aliases).sort()).toEqual(Object.keys(aliases).sort());
    const stateless = tp.chunked.parts.filter((p) => p === "prep" || p === "prepBw");
    if (outputs.length === 0) {
      expect(stateless).toEqual([]);
      for (const k of ["chain:prep", "chain:prepBw", "chain64:prep", "chain64:prepBw"]) expect(plans[k], k).toBeUndefined();
    } else {
      expect(stateless).toEqual(["prep", "prepBw"]);
      for (const k of ["chain:prep", "chain64:prep"]) expect(plans[k].tensors.filter((t) => t.role === "output").map((t) => t.name).sort(), k).toEqual([...outputs].sort());
      // every form of prep (the float32 ones and the bf16-input twins) writes only those
      for (const f of plans["chain:prep"].forms) expect(f.unwritten ?? [], f.variant).toEqual([]);
    }
    // without `copies` (compiler/grad's chain) prep writes all of them, as before
    const full = lowRankChain(model, {});
    expect(full.names.prepOutputs.length).toBe(outputs.length + Object.keys(aliases).length);
    expect(torchLowRankChain(full, {}).names.prepAliases).toEqual(aliases);
  });
});

describe.skipIf(!cpuTorch)("torch target: the low-rank glue with prep's copies bound to the inputs (seqc_chunked_lowrank.py prepAliases), every backward way", () => {
  const WAYS: Ways[] = [{ bwd: "chain" }, { bwd: "wy", keyBwd: "wy" }, { bwd: "delta" }, { bwd: "delta", deltaKern: "recurrence" }];
  it.each(Object.keys(WANT))("%s: float64 as the reference (1e-9) and the chain with its copies (1e-9), float32 1e-4; bf16 inputs bitwise their rounded float32 values; a wrong copy is far off", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const full = lowRankChain(model, dims);
    const chain = torchLowRankChain(full, dims) as Chain;
    expect(chain.names.prepAliases).toEqual(WANT[name][0]);
    const run = chunkInputs(model, { dims, batch: 2, time: 37, seed: 71, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), 39);
    const want = await gradients(model, run, cot);
    for (const [k, v] of Object.entries(want.inputs)) expect(v.some((x) => x !== 0), `reference d ${k} is not all zero`).toBe(true);
    const stateless = WANT[name][1].length ? ["prep", "postBw", "prepBw"] : ["postBw"];
    for (const ways of WAYS) {
      const label = `${name} ${ways.bwd}${ways.deltaKern ? " kernels' stand-in" : ""}`;
      const got = await glue(model, chain, run, cot, 8, "float64", ways);
      expect(errOf(chain, got, want), label).toBeLessThanOrEqual(1e-9);
      expect(got.parts.filter((p) => ["prep", "postBw", "prepBw"].includes(p)).sort(), label).toEqual([...stateless].sort());
      expect(got.deltaCalls.length > 0, label).toBe(!!ways.deltaKern);
      const old = await glue(model, full as Chain, run, cot, 8, "float64", ways);
      expect(old.parts.filter((p) => ["prep", "postBw", "prepBw"].includes(p)).sort(), `${label}: with copies`).toEqual(["postBw", "prep", "prepBw"]);
      expect(vs(got, old), `${label}: vs the chain with its copies`).toBeLessThanOrEqual(1e-9);
      const f32 = await glue(model, chain, run, cot, 8, "float32", ways);
      expect(errOf(chain, f32, want), `${label} float32`).toBeLessThanOrEqual(1e-4);
      // a bf16 step's inputs: the copies are the bf16 tensors themselves, converted where the glue reads them
      const low = await glue(model, chain, run, cot, 8, "float32", { ...ways, givenBf16: "tensor" });
      const rounded = await glue(model, chain, run, cot, 8, "float32", { ...ways, givenBf16: "round" });
      expect(vs(low, rounded), `${label}: bf16 tensors vs their values in float32`).toBe(0);
      expect(low.deltaCalls, `${label}: bf16 tensors`).toEqual(rounded.deltaCalls);
    }
    // a copy bound to another input of its shape: far off
    const [o, src] = Object.entries(WANT[name][0]).find(([, s]) => s === "k")!;
    const other = name === "rwkv7" ? "r" : "q";
    const broken = { ...chain, names: { ...chain.names, prepAliases: { ...chain.names.prepAliases, [o]: other } } };
    expect(src).toBe("k");
    const bad = await glue(model, broken, run, cot, 8, "float64", { bwd: "wy", keyBwd: "wy" });
    expect(errOf(chain, bad, want), `${o} bound to ${other}`).toBeGreaterThan(1e-2);
  }, 600_000);
});
