import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { analyzeModel } from "../compiler/analysis/index.ts";

/** The classes the foundation issue asks `seqc explain --json` to report for the stdlib. */
const EXPECTED: Record<string, string> = {
  linear_attention: "identity",
  retnet: "scalar",
  simple_gla: "scalar",
  mamba2: "scalar",
  gla: "diagonal",
  mamba: "diagonal",
  hgrn: "diagonal",
  s4d: "diagonal",
  deltanet: "diagonal+low-rank",
  gated_deltanet: "diagonal+low-rank",
  gated_deltaproduct: "diagonal+low-rank",
  rwkv7: "diagonal+low-rank",
  lstm: "nonlinear",
  gru: "nonlinear",
  slstm: "nonlinear",
  softmax_attention: "nonlinear",
};

const analysisOf = (name: string) => {
  const p = loadProgram([`stdlib/${name}.seq`]);
  expect(p.diagnostics).toEqual([]);
  return analyzeModel(p.models[0]);
};

describe("stdlib structure analysis", () => {
  it.each(Object.entries(EXPECTED))("%s is %s", (name, cls) => {
    const a = analysisOf(name);
    expect(a.class).toBe(cls);
    // single-state affine models: the state itself has the class; nonlinear cells: at least the cell state
    if (cls !== "nonlinear") for (const s of a.states) expect(s.class).toBe(cls);
    else expect(a.states.some((s) => s.class === "nonlinear")).toBe(true);
  });

  it("explains mlstm: C and n are affine given the stabiliser m, which is a max-plus recurrence", () => {
    const a = analysisOf("mlstm");
    const st = Object.fromEntries(a.states.map((s) => [s.name, s]));
    expect(st.C.class).toBe("nonlinear");
    expect(st.C.coefficientStates).toContain("m");
    expect(st.C.notes.join(" ")).toMatch(/affine in C given m/);
    expect(st.m.notes.join(" ")).toMatch(/max-plus/);
  });

  it("explains titans: a jointly affine, coupled system of memory and momentum", () => {
    const a = analysisOf("titans");
    const st = Object.fromEntries(a.states.map((s) => [s.name, s]));
    expect(st.M).toMatchObject({ class: "diagonal+low-rank", affine: true, rank: 1, diagonalPart: "scalar" });
    expect(st.S).toMatchObject({ class: "scalar", affine: true });
    expect(st.M.coupledTo).toEqual(["S"]);
    expect(a.notes.join(" ")).toMatch(/jointly affine/);
  });

  it("gated_deltaproduct's low-rank part has rank n_h", () => {
    const s = analysisOf("gated_deltaproduct").states[0];
    expect(s).toMatchObject({ class: "diagonal+low-rank", diagonalPart: "scalar", rank: "J" });
  });

  it("seqc explain --json prints the documented shape", () => {
    const out = execFileSync("node", ["bin/seqc.js", "explain", "stdlib/gated_deltanet.seq", "--json"], { encoding: "utf8" });
    const j = JSON.parse(out) as { models: { name: string; states: { name: string; class: string }[] }[] };
    expect(j.models[0].name).toBe("GatedDeltaNet");
    expect(j.models[0].states).toEqual([expect.objectContaining({ name: "S", class: "diagonal+low-rank" })]);
  }, 60_000); // a CLI process; explain also asks every backend's cost model
});
