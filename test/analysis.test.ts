import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { analyzeModel } from "../compiler/analysis/index.ts";
import { printExpr } from "../compiler/ir/print.ts";
import { interpret } from "../compiler/ir/interpret.ts";

const program = loadProgram(["test/fixtures/seq/analysis-cases.seq"]);
const analysis = (name: string) => analyzeModel(program.models.find((m) => m.name === name)!);
const state = (model: string, s: string) => analysis(model).states.find((x) => x.name === s)!;

describe("structure analysis", () => {
  it("loads the fixture without errors", () => {
    expect(program.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });

  it.each([
    ["Lin", "S", "identity"],
    ["Ret", "S", "scalar"],
    ["SimpleGla", "S", "scalar"],
    ["Gla", "S", "diagonal"],
    ["Hgrn", "h", "diagonal"],
    ["Mamba", "h", "diagonal"],
    ["Delta", "S", "diagonal+low-rank"],
    ["Rwkv", "S", "diagonal+low-rank"],
    ["DP", "S", "diagonal+low-rank"],
    ["DPsym", "S", "diagonal+low-rank"],
    ["Dense", "h", "dense"],
    ["Softmax", "m", "nonlinear"],
    ["Softmax", "l", "nonlinear"],
    ["Softmax", "acc", "nonlinear"],
    ["Titans", "S", "diagonal+low-rank"],
    ["Titans", "P", "scalar"],
  ])("%s.%s is %s", (m, s, cls) => {
    expect(state(m, s).class).toBe(cls);
  });

  it("finds the low-rank part's rank and the class of the diagonal part", () => {
    expect(state("Delta", "S")).toMatchObject({ rank: 1, diagonalPart: "scalar" });
    expect(state("Rwkv", "S")).toMatchObject({ rank: 1, diagonalPart: "diagonal" });
    expect(state("DP", "S")).toMatchObject({ rank: 2, diagonalPart: "scalar" });
    expect(state("DPsym", "S").rank).toBe("J");
  });

  it("explains why a state is not affine", () => {
    expect(state("Softmax", "m").reason).toMatch(/max/);
    expect(state("Softmax", "m").notes.join()).toMatch(/max-plus/);
    expect(state("Softmax", "l").coefficientStates).toEqual(["m"]);
    expect(state("Titans", "S").coupledTo).toEqual(["P"]);
  });

  it("classifies readouts", () => {
    const gla = analysis("Gla").readouts[0];
    expect(gla).toMatchObject({ kind: "contraction", contracted: ["K"], reads: "updated" });
    expect(analysis("Hgrn").readouts[0].kind).toBe("elementwise");
    expect(analysis("Softmax").readouts.find((r) => r.state === "l")!.kind).toBe("nonlinear");
  });

  it("decides form eligibility from the classes", () => {
    const forms = (m: string) => Object.fromEntries(analysis(m).forms.map((f) => [f.form, f.eligible]));
    expect(forms("Gla")).toEqual({ sequential: true, scan: true, chunked: true });
    expect(forms("Delta")).toEqual({ sequential: true, scan: false, chunked: true });
    expect(forms("Softmax")).toEqual({ sequential: true, scan: false, chunked: false });
    expect(forms("Titans")).toEqual({ sequential: true, scan: false, chunked: false });
  });

  it("gives elementwise (a, b) that reproduce the interpreter's state trajectory", () => {
    // Gla: run the model, then recompute S_T from a and b with the same inputs
    const m = program.models.find((x) => x.name === "Mamba")!;
    const a = analysis("Mamba").states[0].elementwise!;
    expect(printExpr(a.a)).toContain("exp(");
    const D = 3, N = 2, T = 5;
    const rnd = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(1 + i * 1.7 + s) * 0.9);
    const inputs = { u: rnd(T * D, 1), delta: rnd(T * D, 2), B: rnd(T * N, 3), C: rnd(T * N, 4), z: rnd(T * D, 5) };
    const params = { A: rnd(D * N, 6).map((x) => -Math.abs(x) - 0.1) };
    const r = interpret(m, { dims: { D, N }, batch: 1, time: T, inputs, params });
    // independent recurrence from the analysis' a/b printed semantics: a = exp(softplus(delta)*A), b = softplus(delta)*B*u
    const sp = (x: number) => Math.log1p(Math.exp(x));
    const h = new Float64Array(D * N);
    for (let t = 0; t < T; t++)
      for (let d = 0; d < D; d++)
        for (let n = 0; n < N; n++) {
          const dt = sp(inputs.delta[t * D + d]);
          h[d * N + n] = Math.exp(dt * params.A[d * N + n]) * h[d * N + n] + dt * inputs.B[t * N + n] * inputs.u[t * D + d];
        }
    for (let i = 0; i < D * N; i++) expect(r.finalState.h[i]).toBeCloseTo(h[i], 12);
  });
});
