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
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, shapeSizes, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { CHAIN_PARTS, type ChainPart } from "../runtime/chunked-backward.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const numpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;
if (!numpy) console.warn("torch-chunked.test: python3 with numpy is not installed; the glue check is skipped");
const CHAIN_MODELS = ["linear_attention", "retnet", "simple_gla", "gla", "mamba2"];
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];

describe("torch target: the chunked backward's plans", () => {
  it.each(CHAIN_MODELS)("%s: chain:<part> and chain64:<part> for every part, the cores' chunked forms first", (name) => {
    const model = load(name);
    const tp = buildTorchPlans(model);
    const ch = tp.chunked;
    if (!("parts" in ch)) throw new Error(ch.unavailable);
    expect(ch.parts).toEqual(CHAIN_PARTS.filter((p) => p !== "decay" || ch.names.ld));
    for (const part of ch.parts) {
      const f32 = tp.plans[`chain:${part}`], f64 = tp.plans[`chain64:${part}`];
      expect(f32.forms.every((f) => (f.io ?? "f32") === "f32"), part).toBe(true);
      const kernels = f64.source.slice(f64.source.indexOf('extern "C"'));
      expect(kernels, part).toMatch(/double\* __restrict__/);
      expect(kernels, part).not.toMatch(/\bfloat\b/);
      if (["core", "coreT", "adjoint", "adjointT"].includes(part)) expect(f32.forms[0].form, part).toBe("chunked");
      if (part === "decay") expect(f32.forms[0].form).toBe("scan");
      // the plan runs the chain's model (its tensors are the model's)
      const m = modelChain(model, {}).models[part as ChainPart]!;
      expect(f32.tensors.map((t) => t.name).sort(), part).toEqual(m.tensors.map((t) => t.name).sort());
    }
    const meta = JSON.parse(emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!.contents);
    expect(meta.chunked.names.state).toBe(ch.names.state);
    expect(meta.chunked.parts).toEqual(ch.parts);
  }, 120_000);

  it("models the chain does not cover keep the step backward and say why", () => {
    const tp = buildTorchPlans(load("deltanet"));
    expect("unavailable" in tp.chunked && tp.chunked.unavailable).toMatch(/low-rank|chunked/);
    expect(Object.keys(tp.plans).some((k) => k.startsWith("chain"))).toBe(false);
  });
});

type Wire = { shape: number[]; data: number[] };
const wire = (a: Float64Array, shape: number[]): Wire => ({ shape, data: Array.from(a) });

/** chain_backward in Python (numpy stand-in for torch), every chain model run here by the interpreter. */
async function pythonChain(model: I.Model, run: RunInputs, cot: ReturnType<typeof randomCotangents>, dropStateCot: boolean) {
  const dims = { ...run.dims };
  const { names, models } = modelChain(model, dims);
  const { batch: B, time: T } = run;
  const decl = (n: string) => model.tensors.find((t) => t.name === n)!;
  const sizes = (t: I.TensorDecl, d: Record<string, number>) => shapeSizes(t.shape, d);
  const stateShape = sizes(decl(names.state), dims);
  const spec = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(model, kind).map((t) => [t.name, sizes(t, dims)]);
  const given = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, wire(v, [B, T, ...sizes(decl(k), dims)])]));
  const S0 = run.initialState?.[names.state];
  const case_ = {
    names, B, T, stateShape, given,
    S0: S0 ? wire(S0, [B, ...stateShape]) : null,
    cotOutputs: Object.fromEntries(Object.entries(cot.outputs).map(([k, v]) => [k, wire(v, [B, T, ...sizes(decl(k), dims)])])),
    cotState: dropStateCot ? null : wire(cot.finalState[names.state], [B, ...stateShape]),
    inputs: spec("input").filter(([n]) => run.inputs[n as string]), params: spec("param"), outputs: spec("output"),
  };
  const py = spawn("python3", ["test/torch/chain_glue.py"], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  py.stderr.on("data", (d) => (err += d));
  py.stdin.write(JSON.stringify(case_) + "\n");
  const parts: string[] = [];
  for await (const line of createInterface({ input: py.stdout })) {
    const msg = JSON.parse(line);
    if (msg.done) { py.stdin.end(); return { parts, ...msg }; }
    const m = models[msg.run as ChainPart]!;
    parts.push(msg.run);
    const d = msg.dims ?? dims;
    const own = new Set(I.tensorsOfKind(m, "input").map((t) => t.name));
    const f64 = (w: Wire) => Float64Array.from(w.data);
    const r = interpret(m, {
      dims: d, batch: msg.B, time: msg.T,
      inputs: Object.fromEntries(Object.entries(msg.inputs as Record<string, Wire>).filter(([k]) => own.has(k)).map(([k, v]) => [k, f64(v)])),
      params: msg.dims ? {} : run.params,
      initialState: Object.fromEntries(Object.entries(msg.initial as Record<string, Wire>).map(([k, v]) => [k, f64(v)])),
    });
    const shapeOf = (n: string, lead: number[]) => [...lead, ...sizes(m.tensors.find((t) => t.name === n)!, d)];
    py.stdin.write(JSON.stringify({
      outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, wire(v, shapeOf(k, [msg.B, msg.T]))])),
      final: Object.fromEntries(Object.entries(r.finalState).map(([k, v]) => [k, wire(v, shapeOf(k, [msg.B]))])),
    }) + "\n");
  }
  throw new Error(`chain_glue.py ended without gradients: ${err}`);
}

describe.skipIf(!numpy)("torch target: the chunked backward's glue (seqc_chunked.py on numpy, chain models on the float64 interpreter)", () => {
  it.each(CHAIN_MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    for (const [B, T, init, dropStateCot] of [[2, 37, true, false], [1, 1, true, false], [3, 11, false, true]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init });
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 2);
      const state = modelChain(model, dims).names.state;
      if (dropStateCot) delete cot.finalState[state];
      const want = await gradients(model, run, cot);
      const got = await pythonChain(model, run, cot, dropStateCot);
      expect(got.parts.filter((p: string) => ["core", "coreT", "adjoint", "adjointT"].includes(p))).toEqual(["core", "coreT", "adjoint", "adjointT"]);
      const label = `B=${B} T=${T} init=${init}`;
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k].data), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[state]), `${label}: d ${state}0`).toBeLessThanOrEqual(1e-9);
      expect(got.dS0.shape).toEqual([B, ...shapeSizes(model.tensors.find((t) => t.name === state)!.shape, dims)]);
    }
  }, 300_000);
});
