/**
 * The torch target's adjoint passes as torch matrix products (compiler/backends/torch/pass-matmul.ts; runtime:
 * seqc_torch.PASS_MATMUL "torch", the default): which passes the module marks, and the gradients through
 * seqc_torch's autograd Function on CPU torch in float64 with every plan run by the float64 interpreter
 * (test/torch/pass_matmul_cpu.py): "torch" and "torch-rows" (the weight passes per batch row, then summed) run no
 * pass plan for the marked passes, "kernel" runs them all,
 * both equal the interpreter's gradients (odd sizes, T = 1, with and without initial states).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients, recording } from "../compiler/grad/run.ts";
import { buildBackward } from "../compiler/grad/backward.ts";
import { splitParamAdjoints } from "../compiler/grad/split.ts";
import { outerMatmul, paramMatmul } from "../compiler/backends/torch/pass-matmul.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { randomCotangents, randomRun } from "./helpers/random.ts";
import { serve } from "./helpers/python-serve.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const inline = (text: string) => loadProgram(["p.seq"], new Map([["p.seq", text]])).models[0];
const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
if (!cpuTorch) console.warn("torch-pass-matmul.test: no torch for /usr/bin/python3; the autograd check is skipped");

describe("torch target: which adjoint passes are one matrix product", () => {
  it("LSTM / GRU / sLSTM: the input-weight and recurrent-weight passes A^T X, the input pass A P; sums, copies and other shapes none", () => {
    const meta = (name: string) => JSON.parse(emitTorch(load(name), { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!.contents).backwardNames;
    const lstm = meta("lstm");
    expect(lstm.passes.map((p: { param: string; matmul?: unknown }) => [p.param, p.matmul ?? null])).toEqual([
      ["weight_ih_l0", { a: "pre__v1__bar", b: "x" }], ["weight_hh_l0", { a: "pre__v1__bar", b: "h__prev" }], ["bias_ih_l0", null], ["bias_hh_l0", null]]);
    expect(lstm.inputPasses[0].matmul).toEqual({ a: "pre__v1__bar", param: "weight_ih_l0" });
    const gru = meta("gru");
    expect(gru.passes.filter((p: { matmul?: unknown }) => p.matmul).map((p: { param: string }) => p.param)).toEqual(["weight_ih_l0", "weight_hh_l0"]);
    expect(gru.inputPasses[0].matmul).toEqual({ a: "gi__v1__bar", param: "weight_ih_l0" });
    // sLSTM's block-diagonal recurrent weight R (a head axis on both sides) and Mamba's passes stay plans
    const slstm = meta("slstm");
    expect(slstm.passes.filter((p: { matmul?: unknown }) => p.matmul).map((p: { param: string }) => p.param)).toEqual(["W"]);
    expect(meta("mamba").passes.some((p: { matmul?: unknown }) => p.matmul)).toBe(false);
  });

  it("shapes that are not a plain product stay plans: a negated increment, a scaled factor, a factor at a literal index, rows between columns", () => {
    const pass = (body: string) => inline(`model P { dims H, I\n input a[H], x[I]\n state W[H, I] = 0\n ${body}\n}`);
    expect(outerMatmul(pass("W[j, i] = W[j, i] + a[j] * x[i]"))).toEqual({ a: "a", b: "x" });
    expect(outerMatmul(pass("W[j, i] = W[j, i] - a[j] * x[i]"))).toBeUndefined();
    expect(outerMatmul(pass("W[j, i] = W[j, i] + 2 * a[j] * x[i]"))).toBeUndefined();
    expect(outerMatmul(pass("W[j, i] = W[j, i] + a[0] * x[i]"))).toBeUndefined();
    // the factors in either order: the row side is the one without the state's last index
    const sq = (body: string) => inline(`model P { dims H\n input a[H], x[H]\n state W[H, H] = 0\n ${body}\n}`);
    expect(outerMatmul(sq("W[j, i] = W[j, i] + a[i] * x[j]"))).toEqual({ a: "x", b: "a" });
    // the row variable between two column variables: W is not [rows, cols] in memory
    const mid = inline("model P { dims H, I\n input a[H], y[H, I]\n state W[H, H, I] = 0\n W[j, k, i] = W[j, k, i] + a[k] * y[j, i]\n}");
    expect(outerMatmul(mid)).toBeUndefined();
    const ip = (body: string) => inline(`model P { dims H, I\n input a[H]\n param P[H, I]\n output o[i] = ${body}\n}`);
    expect(paramMatmul(ip("sum(j) a[j] * P[j, i]"))).toEqual({ a: "a", param: "P" });
    expect(paramMatmul(ip("sum(j) a[j] * P[j, i] * 3"))).toBeUndefined();
    expect(paramMatmul(ip("-sum(j) a[j] * P[j, i]"))).toBeUndefined();
  });
});

describe.skipIf(!cpuTorch)("torch target: the passes as torch products through seqc_torch's autograd Function (CPU torch, float64; plans run by the interpreter)", () => {
  it.each(["lstm", "gru"])("%s", async (name) => {
    const model = load(name);
    const dims = { H: 5, I: 3 };
    const dir = mkdtempSync(join(tmpdir(), "seqc-pass-matmul-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const split = splitParamAdjoints(buildBackward(model, {}, { paramAdjoints: "state" }));
    const models: Record<string, I.Model> = { record64: recording(model), backward64: split.core };
    for (const p of split.passes) models[`pass64:${p.param}`] = p.model;
    for (const p of split.inputPasses) models[`pass64:${p.input}`] = p.model;
    const marked = [...split.passes.filter((p) => outerMatmul(p.model)).map((p) => `pass64:${p.param}`), ...split.inputPasses.map((p) => `pass64:${p.input}`)];
    expect(marked.length).toBe(3);
    for (const [B, T, init] of [[3, 7, true], [1, 1, true], [2, 13, false]] as const) {
      const run = randomRun(model, { dims, batch: B, time: T, seed: 3 + T, initialState: init });
      const cot = randomCotangents(interpret(model, run), T + 5);
      const want = await gradients(model, run, cot);
      const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));
      for (const way of ["torch", "torch-rows", "kernel"]) {
        const got = await serve("/usr/bin/python3", ["test/torch/pass_matmul_cpu.py", join(dir, json.path), way],
          { B, T, dims, backward: "step", inputs: list(run.inputs), params: list(run.params), initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState) },
          (msg) => {
            if (!models[msg.run]) throw new Error(`unexpected plan ${msg.run}`);
            return { model: models[msg.run], dims: msg.dims!, params: Object.fromEntries(Object.entries(msg.params ?? {}).map(([k, v]) => [k, Float64Array.from(v)])) };
          });
        const label = `B=${B} T=${T} init=${init} ${way}`;
        const passes = (got.keys as string[]).filter((k) => k.startsWith("pass64:"));
        if (way !== "kernel") expect(passes.filter((k) => marked.includes(k)), label).toEqual([]);
        else expect(marked.every((k) => passes.includes(k)), label).toBe(true);
        for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(Float64Array.from(got.inputs[k]), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-12);
        for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k]), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-12);
        if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(got.initialState[k]), v), `${label}: d ${k}0`).toBeLessThanOrEqual(1e-12);
      }
    }
  }, 300_000);
});
