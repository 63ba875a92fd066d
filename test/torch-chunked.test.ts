/**
 * The torch target's chunked backward without a GPU (and without torch):
 *   - the module's plans: `chain:<part>` (float32: the four core models with their chunked forms first, the
 *     log-decay scan, prep and the backward models of prep and post) and `chain64:<part>` (double kernels)
 *     for the models the chain covers, the chain's names in <Model>.torch.json; the others (DeltaNet) say why;
 *   - the glue (runtime/torch/seqc_chunked.py chain_backward: time reversal, the decay shift, the state's
 *     layout, dS_0, the sums), run in Python on a numpy stand-in for torch (test/torch/fake) with every chain
 *     model executed by the float64 interpreter over a line protocol (test/torch/chain_glue.py), against
 *     seqc's float64 reference gradients (which agree with finite differences): <= 1e-9, at odd sizes,
 *     T = 1, given and declared initial states, with and without a final-state cotangent.
 * On the GPU, bench/torch/check.py runs the same glue on the CUDA plans (fp32 vs the reference, gradcheck in fp64).
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
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { torchChain, withoutOutputs, type TorchChainNames } from "../compiler/backends/torch/chain-copies.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { ROWS_READOUT_LOW, ROWS_READOUT_LOW_TILES, ROWS_READOUT_TILES } from "../compiler/backends/cuda/rows-readout.ts";
import { anchorChunksModule } from "../compiler/backends/cuda/anchor-chunks.ts";
import { decayTermsModule } from "../compiler/backends/cuda/decay-terms.ts";
import { revAddModule } from "../compiler/backends/cuda/rev-add.ts";
import { rowsChunkModule } from "../compiler/backends/cuda/rows-chunk.ts";
import { rowsSegStatesModule } from "../compiler/backends/cuda/rows-seg-states.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { CHAIN_PARTS, type ChainPart } from "../runtime/chunked-backward.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve, wire } from "./helpers/python-serve.ts";
import { glueTensors } from "./helpers/glue-case.ts";

const numpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;
if (!numpy) console.warn("torch-chunked.test: python3 with numpy is not installed; the glue check is skipped");
const CHAIN_MODELS = ["linear_attention", "retnet", "simple_gla", "gla", "mamba2"];
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];

describe("torch target: the chunked backward's plans", () => {
  it.each(CHAIN_MODELS)("%s: chain:<part> and chain64:<part> for every part, the cores' chunked forms first", (name) => {
    const model = load(name);
    const tp = buildTorchPlans(model);
    const ch = tp.chunked;
    if (!("names" in ch)) throw new Error("unavailable" in ch ? ch.unavailable : "the low-rank chain (test/torch-chunked-lowrank.test.ts)");
    const names = (ch as { names: TorchChainNames }).names; // (narrowed by the check above; `in` keeps the low-rank type in the union)
    // (post's backward does not run where it has only zeros and a copy: chain-copies.ts)
    expect(ch.parts).toEqual(CHAIN_PARTS.filter((p) => (p !== "decay" || names.ld) && !(p === "postBw" && names.postBw.skip)));
    expect(Boolean(names.postBw.skip)).toBe(name !== "mamba2");
    for (const part of ch.parts) {
      const f32 = tp.plans[`chain:${part}`], f64 = tp.plans[`chain64:${part}`];
      // float32 forms, and for the four cores also the chunked form's bf16 variants, for the stateless parts their
      // bf16-input twins (bf16 tensors: test/torch-bf16.test.ts)
      const core = ["core", "coreT", "adjoint", "adjointT"].includes(part);
      const stateless = ["prep", "postBw", "prepBw"].includes(part);
      expect([...new Set(f32.forms.map((f) => f.io ?? "f32"))].sort(), part).toEqual(core || stateless ? ["bf16", "f32"] : ["f32"]);
      const kernels = f64.source.slice(f64.source.indexOf('extern "C"'));
      expect(kernels, part).toMatch(/double\* __restrict__/);
      expect(kernels, part).not.toMatch(/\bfloat\b/);
      if (["core", "coreT", "adjoint", "adjointT"].includes(part)) expect(f32.forms[0].form, part).toBe("chunked");
      if (part === "decay") expect(f32.forms[0].form).toBe("scan");
      // the plan runs the chain's model (its tensors are the model's)
      const m = torchChain(modelChain(model, {}), {}).models[part as ChainPart]!;
      expect(f32.tensors.map((t) => t.name).sort(), part).toEqual(m.tensors.map((t) => t.name).sort());
    }
    const meta = JSON.parse(emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!.contents);
    expect(meta.chunked.names.state).toBe(names.state);
    expect(meta.chunked.parts).toEqual(ch.parts);
  }, 120_000);

  it("models the chain does not cover keep the step backward and say why (the delta-rule family: test/torch-chunked-lowrank.test.ts; mLSTM's stabilised chain: test/torch-chunked-stab.test.ts)", () => {
    const tp = buildTorchPlans(load("mamba"));
    expect("unavailable" in tp.chunked && tp.chunked.unavailable).toMatch(/no chunked form/);
    expect(Object.keys(tp.plans).some((k) => k.startsWith("chain"))).toBe(false);
  });
});


/** chain_backward in Python (numpy stand-in for torch), every chain model run here by the interpreter. */
type GlueWay = { perKeyT?: "matmul" | "plans"; decayWay?: "torch" | "plan"; copies?: boolean; reverseSum?: "chunk" | "cumsum" | "flip"; reverseGlue?: "lean" | "flip"; reverseChunk?: number; partReads?: boolean };
async function pythonChain(model: I.Model, run: RunInputs, cot: ReturnType<typeof randomCotangents>, dropStateCot: boolean, way: GlueWay = {}) {
  const dims = { ...run.dims };
  // copies: the chain as a torch module runs it (chain-copies.ts), else as compiler/grad builds it
  const { names, models } = way.copies ? torchChain(modelChain(model, dims), dims) : modelChain(model, dims);
  const { perKeyT, decayWay, reverseSum, reverseGlue, reverseChunk } = way;
  // with the torch module's chain, the forward's final state too (seqc_torch keeps it: the forward core need not rerun)
  const SN = way.copies ? interpret(model, run).finalState[names.state] : undefined;
  const { batch: B, time: T } = run;
  const tensors = glueTensors(model, names.state, run, cot, dropStateCot);
  // partReads: the stateless parts handed only the forward's inputs their models bind (seqc_chunked.PART_INPUTS "read")
  const stateless = ["prep", "postBw", "prepBw"] as const;
  const binds = (part: string) => I.tensorsOfKind(models[part as ChainPart]!, "input").map((t) => t.name);
  const partReads = way.partReads ? Object.fromEntries(stateless.filter((p) => models[p]).map((p) => [p, binds(p)])) : undefined;
  const case_ = {
    names, B, T, ...tensors, SN: SN ? wire(SN, [B, ...tensors.stateShape]) : null,
    perKeyT, decayWay, reverseSum, reverseGlue, reverseChunk, partReads,
  };
  const parts: string[] = [];
  const handed: Record<string, string[]> = {}; // the forward's inputs each stateless part was handed
  const given = model.tensors.filter((t) => t.kind === "input").map((t) => t.name);
  const got = await serve("python3", ["test/torch/chain_glue.py"], case_, (msg) => {
    parts.push(msg.run);
    if (!msg.dims) handed[msg.run] = Object.keys(msg.inputs).filter((k) => given.includes(k)).sort();
    // the stateless parts (prep, the backward models of prep and post) run with time folded into the batch
    if (!msg.dims) expect([msg.B, msg.T], msg.run).toEqual([B * T, 1]);
    return { model: models[msg.run as ChainPart]!, dims: msg.dims ?? dims, params: msg.dims ? {} : run.params ?? {} };
  });
  return { parts, handed, binds, ...got };
}


describe.skipIf(!numpy)("torch target: the chunked backward's glue (seqc_chunked.py on numpy, chain models on the float64 interpreter)", () => {
  it.each(CHAIN_MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    const perKey = modelChain(model, dims).names.decay === "key";
    const decayed = modelChain(model, dims).names.ld !== undefined;
    // the defaults (the torch module's chain without copies and zeros, the decay adjoint in torch ops, a per-key decay's
    // transposed cores as torch matrix products: rows_decayed_readout), and the chain as built with the plans' decay
    // scan and (per-key decay) transposed cores as plans
    // the decay adjoint's reverse sums over time (seqc_chunked.REVERSE_SUM) per chunk of 4 tokens (several chunks, the
    // last one ragged at T = 37 and 11) as products ("chunk", the default) and as cumsums inside the chunks, the
    // decays reversed by a gather (REVERSE_GLUE "lean", the default); and the old ways (flips, one cumsum over T)
    const ways: GlueWay[] = [{ copies: true, decayWay: "torch", perKeyT: "matmul" }, { copies: false, decayWay: "plan", perKeyT: perKey ? "plans" : "matmul" },
      { copies: true, decayWay: "torch", perKeyT: "matmul", reverseChunk: 4 }, { copies: true, decayWay: "torch", perKeyT: "matmul", reverseSum: "cumsum", reverseChunk: 3 },
      { copies: true, decayWay: "torch", perKeyT: "matmul", reverseSum: "flip", reverseGlue: "flip" }, { copies: true, decayWay: "torch", perKeyT: "matmul", partReads: true }];
    for (const [B, T, init, dropStateCot] of [[2, 37, true, false], [1, 1, true, false], [3, 11, false, true], [2, 40, true, false]] as const) for (const way of ways) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 2);
      const state = modelChain(model, dims).names.state;
      if (dropStateCot) delete cot.finalState[state];
      const want = await gradients(model, run, cot);
      const got = await pythonChain(model, run, cot, dropStateCot, way);
      // (the forward core reruns only where post's backward runs, or without the forward's final state)
      const core = way.copies && name !== "mamba2" ? [] : ["core"];
      expect(got.parts.filter((p: string) => ["core", "coreT", "adjoint", "adjointT"].includes(p))).toEqual(perKey && way.perKeyT === "matmul" ? [...core, "adjoint"] : [...core, "coreT", "adjoint", "adjointT"]);
      expect(got.parts.includes("decay")).toBe(decayed && way.decayWay === "plan");
      expect(got.parts.includes("postBw")).toBe(!way.copies || name === "mamba2");
      const label = `B=${B} T=${T} init=${init} ${JSON.stringify(way)}`;
      // every stateless part that ran was handed the forward's inputs its model binds, and with partReads only those
      // (Mamba-2's prep binds dt and B: x and C not handed; without partReads every input is)
      for (const [part, ins] of Object.entries(got.handed as Record<string, string[]>)) {
        const own = got.binds(part).filter((n: string) => run.inputs[n]).sort();
        expect(own.every((n: string) => ins.includes(n)), `${label}: ${part} handed ${ins}`).toBe(true);
        if (way.partReads) expect(ins, `${label}: ${part}`).toEqual(own);
        else expect(ins, `${label}: ${part}`).toEqual(Object.keys(run.inputs).sort());
      }
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k].data), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[state]), `${label}: d ${state}0`).toBeLessThanOrEqual(1e-9);
      expect(got.dS0.shape).toEqual([B, ...shapeSizes(model.tensors.find((t) => t.name === state)!.shape, dims)]);
    }
  }, 300_000);
});

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
if (!cpuTorch) console.warn("torch-chunked.test: no torch for /usr/bin/python3 (Debian's python3-torch); the autograd check is skipped");
describe.skipIf(!cpuTorch)("torch target: the chunked backward through seqc_torch's autograd Function (CPU torch, float64; plans run by the interpreter)", () => {
  it.each(CHAIN_MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-chunked-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = torchChain(modelChain(model, dims), dims); // the chain as the module runs it (without prep's copies, the backward models' zeros and copies)
    const rec = recording(model);
    for (const [B, T, init] of [[2, 19, true], [1, 1, true], [3, 7, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 9 + T, initialState: init });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 4);
      const want = await gradients(model, run, cot);
      const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));
      const got = await serve("/usr/bin/python3", ["test/torch/autograd_cpu.py", join(dir, json.path)],
        { B, T, dims, backward: "chunked", inputs: list(run.inputs), params: list(run.params), initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState) },
        (msg) => {
          const given = Object.fromEntries(Object.entries(msg.params ?? {}).map(([k, v]) => [k, Float64Array.from(v)]));
          if (msg.run === "record64") return { model: rec, dims: msg.dims!, params: given };
          const part = msg.run.replace(/^chain64:/, "") as ChainPart;
          if (!msg.run.startsWith("chain64:") || !chain.models[part]) throw new Error(`unexpected plan ${msg.run}`);
          return { model: chain.models[part]!, dims: msg.dims!, params: given };
        });
      const label = `B=${B} T=${T} init=${init}`;
      expect(got.chunked, label).toBe(true);
      expect(got.keys[0], label).toBe("record64");
      expect(got.keys.slice(1).sort(), label).toEqual(chain_keys(chain));
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(Float64Array.from(got.inputs[k]), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) if (run.params?.[k]) expect(relativeError(Float64Array.from(got.params[k]), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(got.initialState[k]), v), `${label}: d ${k}0`).toBeLessThanOrEqual(1e-9);
    }
  }, 300_000);
});

describe.skipIf(!cpuTorch)("torch target: which backward a forward with gradients is for", () => {
  it("auto: chunked where the module has the chain and the float32 forward picks its chunked form; step and chunked as asked", () => {
    const r = spawnSync("/usr/bin/python3", ["test/torch/use_chunked.py"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const got = JSON.parse(r.stdout) as Record<string, boolean>;
    const chosen = Object.entries(got).filter(([, v]) => v).map(([k]) => k).sort();
    expect(chosen).toEqual([
      "auto chain=true forward=chunked float32",
      "chunked chain=true forward=chunked float32", "chunked chain=true forward=chunked float64",
      "chunked chain=true forward=sequential float32", "chunked chain=true forward=sequential float64",
    ]);
    expect(Object.keys(got).length).toBe(20);
  });
});

describe.skipIf(!numpy)("torch target: the form of the chain's stateless parts over [B*T, 1]", () => {
  it("mamba2 (B*T = 16384): 'workgroup' where the 'thread' form starts one thread per row (postBw), prep and prep's backward (without prep's copies: one thread per (head, n)) keep 'thread'; small runs take 'workgroup'; with a trial run at hand, the fastest form", () => {
    const tp = buildTorchPlans(load("mamba2"));
    const plans = Object.fromEntries(["chain:prep", "chain:postBw", "chain:prepBw"].map((k) => [k, (tp.plans as Record<string, unknown>)[k]]));
    const dir = mkdtempSync(join(tmpdir(), "seqc-stateless-"));
    writeFileSync(join(dir, "req.json"), JSON.stringify({ plans, dims: { H: 32, P: 64, N: 64 }, sizes: [16384, 74] }));
    const r = spawnSync("python3", ["test/torch/stateless_form.py", join(dir, "req.json")], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      "chain:prep B=16384": "auto", "chain:prep B=74": "workgroup",
      "chain:postBw B=16384": "workgroup", "chain:postBw B=74": "workgroup",
      "chain:prepBw B=16384": "auto", "chain:prepBw B=74": "workgroup",
      // tuned (a trial run at hand; stand-in times, 'global' failing): the fastest that ran, each form tried once
      "chain:prep tuned": ["workgroup", "workgroup", ["thread", "workgroup", "global"]],
      "chain:postBw tuned": ["workgroup", "workgroup", ["thread", "workgroup", "global"]],
      "chain:prepBw tuned": ["workgroup", "workgroup", ["thread", "workgroup", "global"]],
      // the bf16-input twins, (STATELESS_ROWS, STATELESS_VEC) (False, True) / (True, False) / (True, True): [pick, row-major
      // twins tried, the pick in a graph's capture with GRAPH_PICKS "tuned" (the trial's), with "auto" (the plan's), vector
      // twins tried ("-rv", and "-rf": the fused ones, last, of the warp split's phases)]
      "chain:prep bf16": [["global-bf16in", 0, "global-bf16in", "auto", 0], ["global-bf16in-rm16", 3, "global-bf16in-rm16", "auto", 0], ["global-bf16in-rv16", 3, "global-bf16in-rv16", "auto", 3]],
      "chain:postBw bf16": [["global-bf16in-wr-nz", 0, "global-bf16in-wr-nz", "workgroup-bf16in", 0], ["global-bf16in-wr-nz-rm16", 6, "global-bf16in-wr-nz-rm16", "workgroup-bf16in", 0], ["global-bf16in-wr-rf16", 6, "global-bf16in-wr-rf16", "workgroup-bf16in", 9]],
      "chain:prepBw bf16": [["global-bf16in-wr-nz", 0, "global-bf16in-wr-nz", "auto", 0], ["global-bf16in-wr-nz-rm16", 6, "global-bf16in-wr-nz-rm16", "auto", 0], ["global-bf16in-wr-rf16", 6, "global-bf16in-wr-rf16", "auto", 9]],
    });
  }, 120_000);
});

/** The plans a chunked backward runs: every part's, but a per-key decay's transposed cores (torch matrix products, seqc_chunked.PER_KEY_TRANSPOSED), the decay adjoint (torch ops, seqc_chunked.DECAY_WAY) and, where post's backward does not run or reads no readout's y (Mamba-2's: y = y0 + D x; seqc_chunked.CORE_RERUN "bound"), the forward core (the forward's final state is kept). */
const postReadsY = (c: ReturnType<typeof torchChain>) =>
  !c.names.postBw.skip && !!c.models.postBw && I.tensorsOfKind(withoutOutputs(c.models.postBw, new Set()), "input").some((t) => c.names.readouts.some((r) => r.y === t.name));
const chain_keys = (c: ReturnType<typeof torchChain>) =>
  Object.entries(c.models).filter(([p, m]) => m && p !== "decay" && !(p === "core" && !postReadsY(c)) && !(c.names.decay === "key" && (p === "coreT" || p === "adjointT"))).map(([p]) => `chain64:${p}`).sort();

describe("torch target: a per-key decay's transposed cores as the rows readout kernel", () => {
  it("GLA's module carries the rows readout kernels for dq (pairs (k, v), readout dy) and dk (pairs (q, dy), readout v) in every tile; scalar decays none (only the anchor chunk products)", () => {
    const gla = buildTorchPlans(load("gla"));
    const rows = gla.kernels?.rowsReadout;
    expect(rows).toBeDefined();
    const meta = JSON.parse(emitTorch(load("gla"), { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!.contents);
    expect(meta.kernels.rowsReadout.kernels).toEqual(rows!.kernels);
    // one pair and one readout both ways: one float32 set, and bf16-operand twins ("bc", "abc") of the first tiles
    expect(rows!.kernels.length).toBe(ROWS_READOUT_TILES.length + ROWS_READOUT_LOW.length * ROWS_READOUT_LOW_TILES);
    expect(rows!.kernels.filter((k) => k.low).map((k) => k.low)).toEqual(ROWS_READOUT_LOW.flatMap((l) => Array(ROWS_READOUT_LOW_TILES).fill(l)));
    for (const k of rows!.kernels) {
      expect([k.pairs, k.readouts]).toEqual([1, 1]);
      expect(rows!.source).toContain(`void __launch_bounds__(${k.threads}) ${k.entry}(`);
      expect(k.vs).toBe(k.tv * k.vt);
    }
    // one pair and one readout: the chunked form on tensor cores too (rows-chunk.ts; seqc_chunked.ROWS_FORM "chunk")
    expect(meta.kernels.rowsChunk.kernels).toEqual(rowsChunkModule().kernels);
    expect(meta.kernels.rowsChunk.kernels.map((k: { entry: string }) => k.entry)).toEqual(["seqc_rows_chunk_w4", "seqc_rows_chunk_w4_la", "seqc_rows_chunk_w8", "seqc_rows_chunk_w8_la", "seqc_rows_chunk_w8_p", "seqc_rows_chunk_w8_p_la", "seqc_rows_chunk_w8_t", "seqc_rows_chunk_w8_p_t", "seqc_rows_chunk_w8_v128", "seqc_rows_chunk_w8_v128_la", "seqc_rows_chunk_w8_v128_p", "seqc_rows_chunk_w8_v128_p_la", "seqc_rows_chunk_w8_v128_t", "seqc_rows_chunk_w8_v128_p_t", "seqc_rows_chunk_w8_vs", "seqc_rows_chunk_w8_vs_la", "seqc_rows_chunk_w8_vs_p", "seqc_rows_chunk_w8_vs_p_la",
      "seqc_rows_chunk_w16", "seqc_rows_chunk_w16_la", "seqc_rows_chunk_w16_p", "seqc_rows_chunk_w16_p_la", "seqc_rows_chunk_w16_p_t", "seqc_rows_chunk_w16_v128", "seqc_rows_chunk_w16_v128_la", "seqc_rows_chunk_w16_v128_p", "seqc_rows_chunk_w16_v128_p_la", "seqc_rows_chunk_w16_v128_p_t",
      "seqc_rows_chunk_w8_ts", "seqc_rows_chunk_w8_p_ts", "seqc_rows_chunk_w8_v128_p_ts"]);
    // and its segments' end states in one kernel (rows-seg-states.ts; seqc_chunked.ROWS_SEG_STATES "cuda")
    expect(meta.kernels.rowsSegStates.kernels).toEqual(rowsSegStatesModule().kernels);
    expect(meta.kernels.rowsSegStates.kernels.map((k: { entry: string }) => k.entry)).toEqual(["seqc_rows_seg_ends", "seqc_rows_seg_ends_la"]);
    // the decay adjoint's anchor chunk products (anchor-chunks.ts) in every module with a log decay; no decay, no kernels
    expect(meta.kernels.anchorChunks.kernels).toEqual(anchorChunksModule().kernels);
    // and its terms kernel (decay-terms.ts)
    expect(meta.kernels.decayTerms.kernels).toEqual(decayTermsModule().kernels);
    // and the reversed-time add (rev-add.ts; seqc_chunked.REV_ADD "kernel")
    expect(meta.kernels.revAdd.kernels).toEqual(revAddModule().kernels);
    for (const name of ["simple_gla", "mamba2"]) expect(Object.keys(buildTorchPlans(load(name)).kernels ?? {}), name).toEqual(["anchorChunks", "decayTerms", "revAdd"]);
    expect(buildTorchPlans(load("linear_attention")).kernels).toBeUndefined();
  }, 120_000);
});
