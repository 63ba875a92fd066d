/**
 * compiler/backends/torch/chain-copies.ts: which of the chunked backward's prep outputs are copies of inputs (the torch
 * glue takes the input itself and hands the output's adjoint to it), and the prep / prep backward the module keeps.
 * The gradients through the reduced chain are checked against the float64 interpreter in test/torch-chunked.test.ts
 * and test/torch-bf16.test.ts (the module's own plans, run by the interpreter) and on the GPU by bench/torch/check.py.
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import * as I from "../compiler/ir/types.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { copiedOutputs, copiedOutputs as prepAliases, torchChain, withoutAliases, zeroOutputs } from "../compiler/backends/torch/chain-copies.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { randomRun, smallDims } from "./helpers/random.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const names = (m: I.Model, kind: I.TensorKind) => I.tensorsOfKind(m, kind).map((t) => t.name);

describe("torch target: prep's copies of inputs", () => {
  it.each([
    ["simple_gla", { ld0: "g", kk1: "k", vv2: "v" }, ["q3"], ["q"]],
    ["gla", { ld0: "gk", kk1: "k", vv2: "v" }, ["q3"], ["q"]],
    ["linear_attention", { kk0: "k", vv1: "v" }, ["q2"], ["q"]],
    ["retnet", { kk1: "k", vv2: "v" }, ["ld0", "q3"], ["q"]], // ld0 = log(1 - 2^(-5 - h)): no input
    ["mamba2", { vv2: "x", q3: "C" }, ["ld0", "kk1"], ["dt", "B"]], // ld0 = dt A, kk1 = dt B: products
  ] as const)("%s", (name, aliases, kept, keptInputs) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    const full = modelChain(model, dims);
    expect(prepAliases(full.models.prep!)).toEqual(aliases);
    const { names: n, models } = torchChain(full, dims);
    expect(n.prepAliases).toEqual(aliases);
    expect(n.prepOutputs).toEqual(kept);
    expect(names(models.prep!, "output")).toEqual(kept);
    expect(names(models.prep!, "input")).toEqual(keptInputs);
    // prep's backward has an adjoint for each kept output and each input the reduced prep reads, nothing for the copies
    expect(Object.keys(n.prepBw.outputBar).sort()).toEqual([...kept].sort());
    expect(Object.keys(n.prepBw.inputBar).sort()).toEqual([...keptInputs].sort());
    expect(names(models.prepBw!, "output").some((o) => Object.values(aliases).some((a) => o === `${a}__bar`))).toBe(false);
    // the reduced prep computes the kept outputs exactly as the full one
    const run = randomRun(full.models.prep!, { dims, batch: 2, time: 3, seed: 4 });
    const a = interpret(full.models.prep!, run);
    const b = interpret(models.prep!, { ...run, inputs: Object.fromEntries(keptInputs.map((k) => [k, run.inputs[k]])) });
    for (const o of kept) expect(Array.from(b.outputs[o])).toEqual(Array.from(a.outputs[o]));
    // and each copy is its input
    for (const [o, src] of Object.entries(aliases)) expect(Array.from(a.outputs[o])).toEqual(Array.from(run.inputs[src]));
  });

  it.each([
    ["simple_gla", true],
    ["gla", true],
    ["linear_attention", true],
    ["mamba2", false], // x__bar = y__bar D, D__bar = sum(p) y__bar x beside the zeros and the copy: runs whole
  ] as const)("%s: post's backward skipped where it has only zeros and a copy (y0__bar = the output's adjoint)", (name, skip) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    const full = modelChain(model, dims);
    const { names: n, models } = torchChain(full, dims);
    const outBar = Object.values(full.names.postBw.outputBar)[0];
    expect(zeroOutputs(full.models.postBw!).length).toBeGreaterThan(0);
    expect(copiedOutputs(full.models.postBw!)).toEqual({ y0__bar: outBar });
    expect(Boolean(n.postBw.skip)).toBe(skip);
    expect(models.postBw === undefined).toBe(skip);
    if (skip) {
      expect(n.postBw.copies).toEqual({ y0__bar: outBar });
      expect(n.postBw.inputBar).toEqual({ y0: "y0__bar" }); // the zeros' adjoints: none
      expect(n.postBw.paramBar).toEqual({});
    } else {
      // runs whole; its copy named all the same (without skip: the glue may take the input, seqc_chunked.RUN_COPIES)
      expect(models.postBw).toBe(full.models.postBw);
      expect(n.postBw).toEqual({ ...full.names.postBw, copies: { y0__bar: outBar }, zeros: ["A__bar", "B__bar", "C__bar", "dt__bar"] });
    }
    expect(n.prepBw.skip).toBeUndefined();
  });

  it("a read with its axes in another order, a literal index or an optional input is not a copy", () => {
    const prep = modelChain(load("simple_gla"), {}).models.prep!;
    const swap = (s: I.Stmt): I.Stmt => {
      if (s.k !== "output" || s.target !== "kk1" || s.expr.k !== "read") return s;
      return { ...s, expr: { ...s.expr, idx: [s.expr.idx[1], s.expr.idx[0]] } };
    };
    expect(Object.keys(prepAliases({ ...prep, body: prep.body.map(swap) }))).toEqual(["ld0", "vv2"]);
    const lit = (s: I.Stmt): I.Stmt => (s.k === "output" && s.target === "vv2" && s.expr.k === "read" ? { ...s, expr: { ...s.expr, idx: [s.expr.idx[0], { kind: "lit", value: 0 }] } } : s);
    expect(Object.keys(prepAliases({ ...prep, body: prep.body.map(lit) }))).toEqual(["ld0", "kk1"]);
    const optional = { ...prep, tensors: prep.tensors.map((t) => (t.name === "g" ? { ...t, init: { k: "num", value: 0 } as I.Expr } : t)) };
    expect(Object.keys(prepAliases(optional))).toEqual(["kk1", "vv2"]);
    // an output assigned twice (a loop) is not a copy either
    const twice = { ...prep, body: [...prep.body, prep.body.find((s) => s.k === "output" && s.target === "kk1")!] };
    expect(Object.keys(prepAliases(twice))).toEqual(["ld0", "vv2"]);
    // without the copies, prep keeps only q3 and reads only q
    const r = withoutAliases(prep, prepAliases(prep));
    expect(names(r, "output")).toEqual(["q3"]);
    expect(names(r, "input")).toEqual(["q"]);
  });
});
