import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { analyzeModel } from "../compiler/analysis/index.ts";
import { printExpr } from "../compiler/ir/print.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { randomRun } from "./helpers/random.ts";

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

describe("scan system (elementwise linear system of all states)", () => {
  it("is 1x1 for a diagonal state and matches elementwise (a, b)", () => {
    const a = analysis("Gla");
    expect(a.scanSystem!.states).toEqual(["S"]);
    expect(printExpr(a.scanSystem!.A[0][0])).toBe(printExpr(a.states[0].elementwise!.a));
  });

  it("is 2x2 for S4D's real and imaginary parts, and reproduces the interpreter", () => {
    const p = loadProgram(["stdlib/s4d.seq"]);
    const m = p.models[0];
    const sys = analyzeModel(m).scanSystem!;
    expect(sys.states).toEqual(["xr", "xi"]);
    expect(sys.A.flat().every((e) => !(e.k === "num" && e.value === 0))).toBe(true);
    // evaluate A and b per step with a stateless model, run the 2x2 recurrence, compare final states
    const outs = [...sys.A.flatMap((row, s) => row.map((e, r) => [`A${s}${r}`, e] as const)), ...sys.b.map((e, s) => [`b${s}`, e] as const)];
    const shape = sys.vars.map((v) => v.extent);
    const prep = { ...m, name: "prep", tensors: [...m.tensors.filter((t) => t.kind === "input" || t.kind === "param"), ...outs.map(([n]) => ({ name: n, kind: "output" as const, shape, span: m.span }))], body: outs.map(([n, e]) => ({ k: "output" as const, target: n, vars: sys.vars, expr: e, span: m.span })) };
    const dims = { H: 3, N: 4 }, B = 2, T = 9;
    const run = randomRun(m, { dims, batch: B, time: T, seed: 11, initialState: true });
    run.params!.log_dt = run.params!.log_dt.map((x) => -2 + x);
    const ref = interpret(m, run);
    const coef = interpret(prep, { ...run, initialState: undefined }).outputs;
    const n = 12;
    for (let b = 0; b < B; b++) {
      const x = [run.initialState!.xr.slice(b * n, (b + 1) * n), run.initialState!.xi.slice(b * n, (b + 1) * n)];
      for (let t = 0; t < T; t++) {
        const o = (b * T + t) * n;
        for (let e = 0; e < n; e++) {
          const [r0, i0] = [x[0][e], x[1][e]];
          x[0][e] = coef.A00[o + e] * r0 + coef.A01[o + e] * i0 + coef.b0[o + e];
          x[1][e] = coef.A10[o + e] * r0 + coef.A11[o + e] * i0 + coef.b1[o + e];
        }
      }
      for (let e = 0; e < n; e++) {
        expect(x[0][e]).toBeCloseTo(ref.finalState.xr[b * n + e], 12);
        expect(x[1][e]).toBeCloseTo(ref.finalState.xi[b * n + e], 12);
      }
    }
  });

  it("is absent for low-rank and nonlinear models", () => {
    expect(analysis("Delta").scanSystem).toBeUndefined(); // mixes along K
    expect(analysis("Softmax").scanSystem).toBeUndefined();
  });
});
