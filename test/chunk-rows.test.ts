import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { chunkRows, describeRows } from "../compiler/forms/chunk-rows.ts";
import { runChunkRows } from "../compiler/forms/chunk-rows-ref.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { printExpr as printExprOf } from "../compiler/ir/print.ts";
import { randomRun, smallDims } from "./helpers/random.ts";

const load = (name: string) => {
  const p = loadProgram([`stdlib/${name}.seq`]);
  expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return p.models[0];
};
const CHUNKABLE = ["linear_attention", "retnet", "simple_gla", "mamba2", "gla", "deltanet", "gated_deltanet", "gated_deltaproduct", "rwkv7", "mlstm"];

describe("chunk rows (the chunked kernels' algorithm in float64)", () => {
  it("merges the delta rule's low-rank and input pairs into one row", () => {
    const r = chunkRows((matrixForm(load("deltanet")) as { ok: true; form: never }).form);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rows.rows.map((x) => x.kind)).toEqual(["merged"]);
    expect(describeRows(r.rows)[0]).toMatch(/x = k\[h,i\], z = \(beta\[h\]\) \* v\[h,j\] \+ \(-1 \* beta\[h\]\) \* \(k\[h,i\]\)\^T S/);
  });
  it("rwkv7 keeps two rows per token (b with a^T S, k with v)", () => {
    const r = chunkRows((matrixForm(load("rwkv7")) as { ok: true; form: never }).form);
    expect(r.ok && r.rows.rows.map((x) => x.kind)).toEqual(["low-rank", "input"]);
  });
  describe.each(CHUNKABLE)("%s", (name) => {
    const model = load(name);
    const mf = matrixForm(model);
    if (!mf.ok) throw new Error(mf.reason);
    const cr = chunkRows(mf.form);
    it("has rows", () => expect(cr.ok ? "" : cr.reason).toBe(""));
    if (!cr.ok) return;
    it.each([
      ["T=1, B=1, F=16", 1, 1, 16, 5],
      ["T=37, B=2, F=16", 37, 2, 16, 5],
      ["T=70, B=1, F=64", 70, 1, 64, 7],
      ["T=20, B=2, F=32, J=3", 20, 2, 32, 4],
    ])("%s: matches the interpreter", (_l, T, B, F, K) => {
      const dims = smallDims(model, { K, V: 3, P: 3, N: K, J: _l.includes("J=3") ? 3 : 2 });
      const run = randomRun(model, { dims, batch: B, time: T, seed: 11 + T, initialState: true });
      const ref = interpret(model, run);
      const got = runChunkRows(model, cr.rows, run, { F });
      for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(got.outputs[k], v), k).toBeLessThan(1e-10);
      for (const [k, v] of Object.entries(ref.finalState)) expect(relativeError(got.finalState[k], v), `final ${k}`).toBeLessThan(1e-10);
    });
  });
});

describe("mlstm: the stabilised form with a normaliser column", () => {
  const model = load("mlstm");
  const mf = matrixForm(model);
  if (!mf.ok) throw new Error(mf.reason);
  const cr = chunkRows(mf.form);
  if (!cr.ok) throw new Error(cr.reason);
  it("is derived from the .seq: n is a value column, m the stabiliser, decay and input scale relative to it", () => {
    expect(mf.form.columns).toEqual(["n"]);
    expect(mf.form.stabiliser?.state).toBe("m");
    expect(cr.rows.columns).toBe(1);
    expect(cr.rows.postPointwise).toBe(true);
    expect(describeRows(cr.rows)).toEqual(["input row: x = exp(i[h] - m@t[h]) * k[h,r] * rsqrt(K), z = v[h,c], columns 1"]);
    expect(cr.rows.ld[0] && printExprOf(cr.rows.ld[0].expr)).toBe("logsigmoid(f[h]) + m@prev[h] - m@t[h]");
  });
  it.each([
    ["fresh state (m = -inf), T=1", 1, 1, 16, false],
    ["fresh state, T=37, B=2", 37, 2, 16, false],
    ["initial state, T=70, F=64", 70, 1, 64, true],
  ])("%s: matches the interpreter (outputs and final C, n, m)", (_l, T, B, F, init) => {
    const dims = smallDims(model, { K: 5, V: 3 });
    const run = randomRun(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init });
    if (!init) run.initialState = undefined;
    const ref = interpret(model, run);
    const got = runChunkRows(model, cr.rows, run, { F });
    for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(got.outputs[k], v), k).toBeLessThan(1e-10);
    for (const [k, v] of Object.entries(ref.finalState)) expect(relativeError(got.finalState[k], v), `final ${k}`).toBeLessThan(1e-10);
  });
  it("stays finite at T=65536 with input gates up to +30 and log forget gates down to -20", () => {
    const dims = smallDims(model, { H: 1, K: 2, V: 2 });
    const T = 65536;
    const run = randomRun(model, { dims, batch: 1, time: T, seed: 9 });
    run.initialState = undefined;
    run.inputs.i = run.inputs.i.map((x, t) => (t % 5 === 0 ? 30 : 60 * x));
    run.inputs.f = run.inputs.f.map((x, t) => (t % 7 === 0 ? -20 : 8 * x)); // logsigmoid(-20) ~ -20
    const ref = interpret(model, run);
    const got = runChunkRows(model, cr.rows, run, { F: 64 });
    expect(got.outputs.o.every(Number.isFinite)).toBe(true);
    for (const s of ["C", "n", "m"]) expect(got.finalState[s].every(Number.isFinite), s).toBe(true);
    expect(relativeError(got.outputs.o, ref.outputs.o)).toBeLessThan(1e-9);
    expect(relativeError(got.finalState.m, ref.finalState.m)).toBeLessThan(1e-12);
  }, 120_000);
});
