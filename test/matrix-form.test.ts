import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { runMatrixForm } from "../compiler/forms/matrix-run.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { randomRun, smallDims } from "./helpers/random.ts";

const load = (name: string) => {
  const p = loadProgram([`stdlib/${name}.seq`]);
  expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return p.models[0];
};

const CHUNKABLE = ["linear_attention", "retnet", "simple_gla", "mamba2", "gla", "deltanet", "gated_deltanet", "gated_deltaproduct", "rwkv7", "mlstm"];
const NOT = ["mamba", "hgrn", "s4d", "lstm", "gru", "slstm", "softmax_attention", "titans"];

describe("matrix form (prep -> core -> post)", () => {
  it.each(NOT)("%s has no matrix form, with a reason", (name) => {
    const r = matrixForm(load(name));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(10);
  });

  it("mamba: the decay varies along the value axis", () => {
    const r = matrixForm(load("mamba"));
    expect(!r.ok && r.reason).toMatch(/value axis/);
  });

  describe.each(CHUNKABLE)("%s", (name) => {
    const model = load(name);
    const r = matrixForm(model);
    it("has a matrix form", () => {
      expect(r.ok ? "" : r.reason).toBe("");
    });
    if (!r.ok) return;
    const form = r.form;
    it.each([
      ["T=1, B=1", 1, 1, 4],
      ["T=7, B=3, chunk 3", 7, 3, 3],
      ["T=37, B=2, chunk 16", 37, 2, 16],
      ["T=20, B=1, chunk 1", 20, 1, 1],
    ])("%s: sequential and chunked cores match the interpreter", (_label, T, B, chunk) => {
      const dims = smallDims(model, { K: 5, V: 3, P: 3, N: 4 });
      const run = randomRun(model, { dims, batch: B, time: T, seed: 7 + T, initialState: true });
      const ref = interpret(model, run);
      for (const schedule of ["sequential", "chunked"] as const) {
        const got = runMatrixForm(model, form, run, { schedule, chunk });
        for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(got.outputs[k], v), `${schedule} ${k}`).toBeLessThan(1e-10);
        for (const [k, v] of Object.entries(ref.finalState)) expect(relativeError(got.finalState[k], v), `${schedule} final ${k}`).toBeLessThan(1e-10);
      }
    });
  });

  it("chunked core stays finite with log decays of -20 per step over long sequences", () => {
    const model = load("gated_deltanet");
    const r = matrixForm(model);
    if (!r.ok) throw new Error(r.reason);
    const dims = smallDims(model, { K: 4, V: 3 });
    const T = 4096;
    const run = randomRun(model, { dims, batch: 1, time: T, seed: 3, initialState: true });
    run.inputs.g = run.inputs.g.map((x, i) => (i % 7 === 0 ? -20 : -Math.abs(x)));
    const ref = interpret(model, run);
    const got = runMatrixForm(model, r.form, run, { schedule: "chunked", chunk: 64 });
    expect(got.outputs.o.every(Number.isFinite)).toBe(true);
    expect(relativeError(got.outputs.o, ref.outputs.o)).toBeLessThan(1e-9);
  });
});
