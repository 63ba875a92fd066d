/**
 * Param adjoints outside the adjoint recurrence (compiler/grad/split.ts): the backward's core carries the
 * state adjoints only and its partition gives no lane class that re-runs the recurrence; each param's pass
 * is one accumulating statement whose lanes are the param's elements; gradients through core + passes
 * (time folded into the batch) equal the backward model with per-step param outputs, on the float64
 * interpreter (grad.test.ts checks them against finite differences on every stdlib model).
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { buildBackward } from "../compiler/grad/backward.ts";
import { passShapes, splitParamAdjoints } from "../compiler/grad/split.ts";
import { gradients, trainingBackward } from "../compiler/grad/run.ts";
import { analyzePartition } from "../compiler/kernel/partition.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { passFold } from "../runtime/train.ts";
import { randomRun, smallDims, randomCotangents } from "./helpers/random.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];

describe("the backward's param adjoints leave the recurrence", () => {
  it("LSTM: the core keeps h_bar and c_bar only, exports the gate adjoints, and gets no lane class (one lane per batch row)", () => {
    const model = load("lstm");
    const bw = buildBackward(model, {}, { paramAdjoints: "state" });
    const { core, passes, inputPasses } = splitParamAdjoints(bw);
    expect(I.tensorsOfKind(core, "state").map((t) => t.name).sort()).toEqual(["c__bar", "h__bar"]);
    // x_bar = W_ih^T pre_bar reads no state adjoint: it left the core as an input pass (no state, one output)
    expect(I.tensorsOfKind(core, "output").map((t) => t.name).sort()).toEqual(["pre__v1__bar__step"]);
    expect(inputPasses.map((p) => [p.input, p.bar, p.reads])).toEqual([["x", "x__bar", { pre__v1__bar: "pre__v1__bar__step" }]]);
    expect(I.tensorsOfKind(inputPasses[0].model, "state")).toEqual([]);
    expect(I.tensorsOfKind(inputPasses[0].model, "output").map((t) => t.name)).toEqual(["x__bar"]);
    // the core reads W_ih only in the recomputed (hoistable) input projection, no longer per step for x_bar
    const readsWih = core.body.flatMap((s) => (s.k !== "for" && JSON.stringify(s.expr).includes('"weight_ih_l0"') ? [s.target] : []));
    expect(readsWih).toEqual(["pre__v1"]);
    expect(passes.map((p) => p.param)).toEqual(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
    // before the split (and before the partition weighed replication) x_bar[i], dW_ih[.,.,i], dW_hh[.,.,m] were classes: B*I*I*H lanes
    expect(analyzePartition(core).classes).toEqual([]);
    const part = analyzePartition(bw.model);
    expect(part.classes).toEqual([]);
    expect(part.blocked.find((b) => b.tensor === "x__bar")?.reason).toMatch(/every lane redo work it does not split/);
    const wih = passes[0];
    expect(wih.reads).toEqual({ pre__v1__bar: "pre__v1__bar__step", x: "x" });
    expect(wih.model.body).toHaveLength(1);
    expect(analyzePartition(wih.model).classes.map((c) => [...c.axes.entries()][0])).toEqual([["weight_ih_l0__bar", 0], ["weight_ih_l0__bar", 1], ["weight_ih_l0__bar", 2]]);
    expect(passes[1].reads).toEqual({ pre__v1__bar: "pre__v1__bar__step", h__prev: "h__prev" });
  });

  it("GLA: one lane class (heads); q_bar's head axis shares S_bar's lanes, its key axis stays local", () => {
    const bw = trainingBackward(load("gla"), {});
    expect(bw.passes).toEqual([]);
    const part = analyzePartition(bw.model);
    // q_bar[h, i] and S__v1 are independent of the S_bar recurrence: alone, their H and K classes would give
    // H * K * H lanes per row, every one re-running S_bar's recurrence
    expect(part.classes.map((c) => c.extent)).toEqual([{ kind: "dim", name: "H" }]);
    expect(part.classes[0].axes.get("S__bar")).toBe(0);
    expect(part.classes[0].axes.get("q__bar")).toBe(0);
    expect(part.classes[0].axes.get("S__v1")).toBe(0);
    expect(part.blocked.find((b) => b.tensor === "q__bar" && b.axis === 1)?.reason).toMatch(/redo work it does not split/);
  });

  it("the forward models' partitions are untouched: every class splits at least the work it replicates", () => {
    for (const name of ["lstm", "gla", "mlstm", "softmax_attention", "slstm", "titans"]) {
      const part = analyzePartition(load(name));
      expect(part.blocked.filter((b) => /redo work/.test(b.reason)), name).toEqual([]);
    }
    expect(analyzePartition(load("mlstm")).classes.map((c) => c.extent)).toEqual([{ kind: "dim", name: "H" }, { kind: "dim", name: "V" }]);
  });

  it("passes that need no kernel: a bias's adjoint is a plain sum of the gate adjoints (sum), LSTM's two biases the same sum (sameAs)", () => {
    const shapes = (name: string) => Object.fromEntries(trainingBackward(load(name), {}).passes.map((p) => [p.param, [p.sum ?? null, p.sameAs ?? null]]));
    expect(shapes("lstm")).toEqual({ weight_ih_l0: [null, null], weight_hh_l0: [null, null], bias_ih_l0: ["pre__v1__bar", null], bias_hh_l0: [null, "bias_ih_l0"] });
    // GRU: b_hh's adjoint is gh_bar (r * n_bar in its third gate), not gi_bar: two different sums
    expect(shapes("gru")).toEqual({ weight_ih_l0: [null, null], weight_hh_l0: [null, null], bias_ih_l0: ["gi__v1__bar", null], bias_hh_l0: ["gh__v1__bar", null] });
    // another increment (twice the gate adjoints) is neither a plain sum nor the twin of bias_ih's
    const passes = trainingBackward(load("lstm"), {}).passes.map((p) => ({ ...p, sum: undefined, sameAs: undefined }));
    const hh = passes[3];
    const st = hh.model.body[0] as Exclude<I.Stmt, { k: "for" }>;
    const inc = (st.expr as Extract<I.Expr, { k: "bin" }>).b;
    hh.model = { ...hh.model, body: [{ ...st, expr: { ...(st.expr as Extract<I.Expr, { k: "bin" }>), b: { k: "bin", op: "*", a: inc, b: { k: "num", value: 2 } } as I.Expr } }] };
    passShapes(passes);
    expect(passes.map((p) => [p.sum ?? null, p.sameAs ?? null])).toEqual([[null, null], [null, null], ["pre__v1__bar", null], [null, null]]);
  });

  it("passFold: the fewest steps whose partial sums fit the budget, a divisor of T", () => {
    expect(passFold(64, 2048, 4096)).toBe(32); // 64 * 64 rows of 4096 = 2^24
    expect(passFold(64, 2048, 1 << 18)).toBe(2048); // B rows alone fill the budget
    expect(passFold(2, 7, 10)).toBe(1);
    expect(passFold(2, 7, 1 << 23)).toBe(7); // 7 is prime: all or nothing
    expect(passFold(3, 12, 100, 3 * 4 * 100)).toBe(3);
    for (const [B, T, n] of [[5, 36, 1000], [1, 1, 7], [16, 1024, 1 << 22]]) expect(T % passFold(B, T, n)).toBe(0);
  });

  it.each(["lstm", "gru", "mamba", "mamba2", "s4d", "slstm"])("%s: core + folded passes = per-step param outputs (1e-12), odd sizes, initial state, T = 1 and 7", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 3, V: 2, D: 3, N: 2, H: 3, I: 2, P: 2 });
    for (const T of [1, 7]) {
      const run = randomRun(model, { dims, batch: 3, time: T, seed: 21 + T, initialState: true });
      if (run.initialState!.m) run.initialState!.m = run.initialState!.m.map((x) => x - 1);
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, 4);
      const tb = trainingBackward(model, dims);
      expect(tb.passes.length).toBeGreaterThan(0);
      // LSTM / GRU: x_bar = W_ih^T (gate adjoints) left the core as an input pass
      if (name === "lstm" || name === "gru") expect(tb.inputPasses.map((p) => p.input)).toEqual(["x"]);
      const split = await gradients(model, run, cot);
      const perStep = await gradients(model, run, cot, undefined, { paramAdjoints: "output" });
      const ckpt = await gradients(model, run, cot, undefined, { memory: { every: 3 } });
      for (const k of Object.keys(run.params ?? {})) {
        expect(relativeError(split.params[k], perStep.params[k]), `${name} T=${T} param ${k}`).toBeLessThan(1e-12);
        expect(relativeError(ckpt.params[k], perStep.params[k]), `${name} T=${T} checkpoints, param ${k}`).toBeLessThan(1e-12);
      }
      for (const k of Object.keys(run.inputs)) {
        expect(relativeError(split.inputs[k], perStep.inputs[k]), `${name} input ${k}`).toBeLessThan(1e-12);
        expect(relativeError(ckpt.inputs[k], perStep.inputs[k]), `${name} checkpoints, input ${k}`).toBeLessThan(1e-12);
      }
      for (const k of Object.keys(run.initialState ?? {})) if (perStep.initialState[k]) expect(relativeError(split.initialState[k], perStep.initialState[k]), `${name} initial ${k}`).toBeLessThan(1e-12);
    }
  });
});
