/**
 * The torch target's chunked backward for a stabilised form with a value column (mLSTM: max-plus stabiliser m,
 * normaliser n) without a GPU: runtime/torch/seqc_chunked_stab.py's glue (stab_chain_backward: the stabiliser's pass
 * and adjoint in float64 torch ops without a loop over T, the columns appended to the cores' values, the cores at
 * value extent V + 1, the decay adjoint's reverse sums, the pieces) on CPU torch, every chain model run by the float64
 * interpreter over a line protocol (test/torch/stab_glue.py), against seqc's float64 reference gradients (gradients():
 * the adjoint recurrence): float64 <= 1e-9, float32 <= 1e-4, at odd sizes (K = 5, V = 7), T = 1, ragged T (37, 70: a
 * 64-token chunk and a partial one), given (C, n, m) and declared (m = -inf) initial states, with and without
 * final-state cotangents, saturated gates (both branches of the max taken, counted). Each of three terms left out
 * (frame_bar's <dS_N, S_N>, the initial state's scale adjoint, the readouts' column cotangents) fails; the other route
 * for m_t's core adjoint (names.stab.frame unset: prep's adjoints of m_t and m_{t-1}) agrees too. Also the module's
 * plans (chain:<part> and chain64:<part> for the ten parts, the names with `stab` and `columns`, seqc_chunked_stab.py
 * shipped) and the chain through seqc_torch's autograd Function on CPU torch in float64 (test/torch/autograd_cpu.py:
 * every plan run by the interpreter) within 1e-9, given states, T = 1.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { emitTorch, TORCH_RUNTIME_FILES } from "../compiler/backends/torch/target.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, shapeSizes, type RunInputs } from "../compiler/ir/interpret.ts";
import { gradients, recording } from "../compiler/grad/run.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { ChainPart } from "../runtime/chunked-backward.ts";
import { randomCotangents, smallDims } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve, wire } from "./helpers/python-serve.ts";
import * as I from "../compiler/ir/types.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
if (!cpuTorch) console.warn("torch-chunked-stab.test: no torch for /usr/bin/python3 (Debian's python3-torch); the glue check is skipped");
const mlstm = loadProgram(["stdlib/mlstm.seq"]).models[0];

/** How often the stabiliser's max took each branch at t >= 1 (a: logsigmoid(f) + m_{t-1} >= i; b: i). */
function branches(run: RunInputs, H: number): { a: number; b: number } {
  const { batch: B, time: T } = run;
  let a = 0, b = 0;
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      let m = run.initialState?.m ? run.initialState.m[bb * H + h] : -Infinity;
      for (let t = 0; t < T; t++) {
        const o = (bb * T + t) * H + h, lf = -Math.log1p(Math.exp(-run.inputs.f[o])), i = run.inputs.i[o];
        if (t > 0) lf + m >= i ? a++ : b++;
        m = Math.max(lf + m, i);
      }
    }
  return { a, b };
}

/** stab_chain_backward in Python (CPU torch), every chain model run here by the interpreter. */
async function pythonStab(run: RunInputs, cot: ReturnType<typeof randomCotangents>, dtype: "float64" | "float32", breakTerm?: string, frame = true) {
  const dims = { ...run.dims };
  const { names: built, models } = modelChain(mlstm, dims);
  // frame false: m_t's core adjoint from prep's adjoints of m_t and m_{t-1} (the other route, names.stab.frame unset)
  const names = frame ? built : { ...built, stab: { ...built.stab!, frame: false } };
  const { batch: B, time: T } = run;
  const decl = (n: string) => mlstm.tensors.find((t) => t.name === n)!;
  const sizes = (t: I.TensorDecl) => shapeSizes(t.shape, dims);
  const spec = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(mlstm, kind).map((t) => [t.name, sizes(t)]);
  const case_ = {
    names, B, T, dtype, breakTerm, stateShape: sizes(decl(names.state)),
    given: Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, wire(v, [B, T, ...sizes(decl(k))])])),
    initStates: Object.fromEntries(Object.entries(run.initialState ?? {}).map(([k, v]) => [k, wire(v, [B, ...sizes(decl(k))])])),
    cotOutputs: Object.fromEntries(Object.entries(cot.outputs).map(([k, v]) => [k, wire(v, [B, T, ...sizes(decl(k))])])),
    cotStates: Object.fromEntries(Object.entries(cot.finalState).map(([k, v]) => [k, wire(v, [B, ...sizes(decl(k))])])),
    inputs: spec("input"), params: spec("param"), outputs: spec("output"),
  };
  const parts: string[] = [];
  const got = await serve("/usr/bin/python3", ["test/torch/stab_glue.py"], case_, (msg) => {
    parts.push(msg.run);
    // the stateless parts (prep, the stabiliser's prep, the backward models) run with time folded into the batch
    if (!msg.dims) expect([msg.B, msg.T], msg.run).toEqual([B * T, 1]);
    else expect(msg.dims.V ?? dims.V + 1, msg.run).toBe(dims.V + 1); // the cores at value extent V + 1 (the column)
    return { model: models[msg.run as ChainPart]!, dims: msg.dims ?? dims, params: msg.dims ? {} : run.params ?? {} };
  });
  return { parts, ...got } as { parts: string[]; inputs: Record<string, { data: number[] }>; params: Record<string, { data: number[] }>; initial: Record<string, { data: number[]; shape: number[] }>; dtypes: string[] };
}

const f64 = (w: { data: (number | string)[] }) => Float64Array.from(w.data.map(Number));

describe.skipIf(!cpuTorch)("torch target: the stabilised chain's glue (seqc_chunked_stab.py on CPU torch, chain models on the float64 interpreter)", () => {
  it("mlstm: T = 1, 37, 70, 11; given and declared states; with and without final-state cotangents; saturated; float64 <= 1e-9, float32 <= 1e-4", async () => {
    const dims = smallDims(mlstm, { K: 5, V: 7 });
    // B, T, given initial state, final-state cotangents dropped, stressed (saturated gates), glue dtype
    const cases = [
      [2, 37, true, false, false, "float64"], [1, 1, true, false, false, "float64"], [3, 11, false, true, false, "float64"], [2, 70, true, false, true, "float64"],
      [2, 40, false, false, true, "float64"], [2, 37, true, false, false, "float32"], [3, 11, false, true, false, "float32"], [2, 70, true, false, true, "float32"],
    ] as const;
    for (const [B, T, init, dropCot, stress, dtype] of cases) {
      const run = chunkInputs(mlstm, { dims, batch: B, time: T, seed: 5 + T, initialState: init, stress });
      if (stress) {
        const n = branches(run, dims.H);
        expect(Math.min(n.a, n.b), `both branches of the max at T=${T}: ${JSON.stringify(n)}`).toBeGreaterThan(20);
      }
      const cot = randomCotangents(interpret(mlstm, run), T + 2);
      if (dropCot) cot.finalState = {};
      const want = await gradients(mlstm, run, cot);
      const got = await pythonStab(run, cot, dtype);
      const label = `B=${B} T=${T} init=${init} ${dropCot ? "no final-state cotangents " : ""}${stress ? "saturated " : ""}${dtype}`;
      expect(got.parts.sort(), label).toEqual(["adjoint", "adjointT", "core", "coreT", "postBw", "prep", "prepBw", "stab", "stabBw"]);
      expect(got.dtypes, label).toEqual([dtype === "float64" ? "torch.float64" : "torch.float32"]);
      const tol = dtype === "float64" ? 1e-9 : 1e-4;
      let worst = 0;
      const check = (e: number, what: string) => { worst = Math.max(worst, e); expect(e, `${label}: ${what}`).toBeLessThanOrEqual(tol); };
      for (const [k, v] of Object.entries(want.inputs)) {
        if (T > 1) expect(v.some((x) => x !== 0), `${label}: reference d ${k} is not all zero`).toBe(true);
        check(relativeError(f64(got.inputs[k]), v), `d ${k}`);
      }
      for (const [k, v] of Object.entries(want.params)) check(relativeError(f64(got.params[k]), v), `d param ${k}`);
      for (const [k, v] of Object.entries(want.initialState)) {
        if (!init && k === "m") continue; // (declared m0 = -inf)
        check(relativeError(f64(got.initial[k]), v), `d ${k}0`);
        expect(got.initial[k].data.length, `${label}: d ${k}0`).toBe(v.length);
      }
      console.log(`${label}: worst relative error ${worst.toExponential(2)}`);
    }
  }, 600_000);

  it("each of three terms left out fails: frame_bar's <dS_N, S_N>, the initial state's scale adjoint, the readouts' column cotangents", async () => {
    const dims = smallDims(mlstm, { K: 5, V: 7 });
    const run = chunkInputs(mlstm, { dims, batch: 2, time: 37, seed: 42, initialState: true, stress: true });
    const cot = randomCotangents(interpret(mlstm, run), 39);
    const want = await gradients(mlstm, run, cot);
    const worst = async (breakTerm?: string) => {
      const got = await pythonStab(run, cot, "float64", breakTerm);
      let w = 0;
      for (const [k, v] of Object.entries(want.inputs)) w = Math.max(w, relativeError(f64(got.inputs[k]), v));
      for (const [k, v] of Object.entries(want.params)) w = Math.max(w, relativeError(f64(got.params[k]), v));
      for (const [k, v] of Object.entries(want.initialState)) w = Math.max(w, relativeError(f64(got.initial[k]), v));
      return w;
    };
    expect(await worst()).toBeLessThanOrEqual(1e-9);
    // the other route for m_t's core adjoint (prep's adjoints of m_t and m_{t-1}, stab_backward's previous-value term)
    const got = await pythonStab(run, cot, "float64", undefined, false);
    for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(f64(got.inputs[k]), v), `frame false: d ${k}`).toBeLessThanOrEqual(1e-9);
    for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(f64(got.initial[k]), v), `frame false: d ${k}0`).toBeLessThanOrEqual(1e-9);
    for (const term of ["frame", "scale", "columns"]) {
      const w = await worst(term);
      console.log(`without ${term}: worst relative error ${w.toExponential(2)}`);
      expect(w, `without ${term}`).toBeGreaterThan(1e-4);
    }
  }, 300_000);
});

describe("torch target: mLSTM's module carries the stabilised chain", () => {
  it("chain:<part> and chain64:<part> for prep, the four cores, post's and prep's backward, the stabiliser's prep and its backward; names with stab and columns; seqc_chunked_stab.py shipped", () => {
    const tp = buildTorchPlans(mlstm);
    const ch = tp.chunked;
    if (!("names" in ch)) throw new Error("unavailable" in ch ? ch.unavailable : "the low-rank chain");
    expect([...ch.parts].sort()).toEqual(["adjoint", "adjointT", "core", "coreT", "decay", "postBw", "prep", "prepBw", "stab", "stabBw"]);
    expect(ch.names.stab?.state).toBe("m");
    expect(ch.names.stab?.init).toBe("-Infinity");
    expect(ch.names.columns?.states).toEqual(["n"]);
    for (const part of ch.parts) {
      expect(tp.plans[`chain:${part}`], part).toBeDefined();
      expect(tp.plans[`chain64:${part}`], part).toBeDefined();
    }
    // the chain as compiler/grad builds it (no prep copies left to the glue): the plans run its models
    const chain = modelChain(mlstm, {});
    for (const part of ch.parts) expect(tp.plans[`chain:${part}`].tensors.map((t) => t.name).sort(), part).toEqual(chain.models[part as ChainPart]!.tensors.map((t) => t.name).sort());
    expect(TORCH_RUNTIME_FILES).toContain("seqc_chunked_stab.py");
    const files = emitTorch(mlstm, { ptx: false });
    expect(files.map((f) => f.path)).toContain("seqc_chunked_stab.py");
    expect(JSON.parse(files.find((f) => f.path.endsWith(".torch.json"))!.contents).chunked.names.stab.init).toBe("-Infinity");
  }, 120_000);
});

describe.skipIf(!cpuTorch)("torch target: mLSTM's chunked backward through seqc_torch's autograd Function (CPU torch, float64; plans run by the interpreter)", () => {
  // (given states only: with the declared m = -inf the float64 forward's state records hold -inf, which the line
  // protocol's JSON cannot carry; the glue test above covers declared states)
  it("T = 19, 1, 7 (given C, n, m): <= 1e-9", async () => {
    const dims = smallDims(mlstm, { K: 5, V: 7 });
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-stab-"));
    const json = emitTorch(mlstm, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = modelChain(mlstm, dims);
    const rec = recording(mlstm);
    for (const [B, T, init] of [[2, 19, true], [1, 1, true], [3, 7, true]] as const) {
      const run = chunkInputs(mlstm, { dims, batch: B, time: T, seed: 9 + T, initialState: init });
      const cot = randomCotangents(interpret(mlstm, run), T + 4);
      const want = await gradients(mlstm, run, cot);
      const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));
      const got = await serve("/usr/bin/python3", ["test/torch/autograd_cpu.py", join(dir, json.path)],
        { B, T, dims, backward: "chunked", inputs: list(run.inputs), params: list(run.params), initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState) },
        (msg) => {
          const given = Object.fromEntries(Object.entries(msg.params ?? {}).map(([k, v]) => [k, Float64Array.from(v as number[])]));
          if (msg.run === "record64") return { model: rec, dims: msg.dims!, params: given };
          const part = msg.run.replace(/^chain64:/, "") as ChainPart;
          if (!msg.run.startsWith("chain64:") || !chain.models[part]) throw new Error(`unexpected plan ${msg.run}`);
          return { model: chain.models[part]!, dims: msg.dims!, params: given };
        });
      const label = `B=${B} T=${T} init=${init}`;
      expect(got.chunked, label).toBe(true);
      expect(got.keys[0], label).toBe("record64");
      // (the decay adjoint in torch ops: no decay plan)
      expect([...new Set(got.keys.slice(1))].sort(), label).toEqual(["chain64:adjoint", "chain64:adjointT", "chain64:core", "chain64:coreT", "chain64:postBw", "chain64:prep", "chain64:prepBw", "chain64:stab", "chain64:stabBw"]);
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(Float64Array.from(got.inputs[k]), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) if (run.params?.[k]) expect(relativeError(Float64Array.from(got.params[k]), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(got.initialState[k]), v), `${label}: d ${k}0`).toBeLessThanOrEqual(1e-9);
    }
  }, 300_000);
});
