/**
 * The float64 chunked backward of a stabilised form (mLSTM: a max-plus stabiliser m and a normaliser column n,
 * compiler/grad/chunked.ts) against the reference gradients (the step backward, gradients()) and central finite
 * differences: gate preactivations wide enough that the max picks both branches, given and declared initial
 * states (C, n, m), T = 1 and T not a multiple of the chunk, and a long saturated run (T = 2048).
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import type * as I from "../compiler/ir/types.ts";
import { gradients, type Cotangents } from "../compiler/grad/run.ts";
import { matrixForm } from "../compiler/forms/matrix-form.ts";
import { chunkedBackwardRefusal, chunkedGradients, stabFrameOnly } from "../compiler/grad/chunked.ts";
import { chainGradients, chainRefusal, modelChain } from "../compiler/grad/chunked-chain.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { randomCotangents, randomRun, smallDims } from "./helpers/random.ts";

const mlstm = loadProgram(["stdlib/mlstm.seq"]).models[0];

/** Input gates i in +-gi / 2 + shift, forget-gate preactivations f in +-gf / 2 + 1 (logsigmoid(f) in about (-gf / 2, 0)). */
function gated(run: RunInputs, gi: number, gf: number, shift = 0): RunInputs {
  return { ...run, inputs: { ...run.inputs, i: run.inputs.i.map((x) => gi * x + shift), f: run.inputs.f.map((x) => gf * x + 1) } };
}

/** How often the stabiliser's max took each branch at t >= 1 (a: logsigmoid(f) + m_{t-1} >= i, b: i). */
function branches(run: RunInputs, H: number): { a: number; b: number } {
  const { batch: B, time: T } = run;
  const m0 = run.initialState?.m;
  let a = 0, b = 0;
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      let m = m0 ? m0[bb * H + h] : -Infinity;
      for (let t = 0; t < T; t++) {
        const o = (bb * T + t) * H + h, f = run.inputs.f[o], i = run.inputs.i[o];
        const lf = -Math.log1p(Math.exp(-f));
        if (t > 0) lf + m >= i ? a++ : b++;
        m = Math.max(lf + m, i);
      }
    }
  return { a, b };
}

async function check(model: I.Model, run: RunInputs, cot: Cotangents, chunk: number, tol = 1e-9) {
  const ref = await gradients(model, run, cot);
  // m_t's adjoint from the core both ways: the frame (-<y, dy>, the default) and prep's pseudo-input adjoints
  for (const schedule of ["sequential", "chunked", "pseudo", "chain"] as const) {
    const got = schedule === "chain" ? await chainGradients(model, run, cot)
      : schedule === "pseudo" ? chunkedGradients(model, run, cot, { chunk, stabRoute: "pseudo" }) : chunkedGradients(model, run, cot, { chunk, schedule });
    for (const kind of ["inputs", "params", "initialState"] as const) {
      expect(Object.keys(got[kind]).sort(), `${schedule} ${kind}`).toEqual(Object.keys(ref[kind]).sort());
      for (const [k, v] of Object.entries(ref[kind])) {
        if (kind !== "initialState" || run.initialState?.[k]) expect(v.some((x) => x !== 0), `reference ${kind} ${k} is not all zero`).toBe(true);
        expect(got[kind][k].every(Number.isFinite), `${schedule} ${kind} ${k} finite`).toBe(true);
        expect(relativeError(got[kind][k], v), `${schedule} ${kind} ${k}`).toBeLessThan(tol);
      }
    }
  }
}

describe("mlstm: the chunked backward of a stabilised form (float64)", () => {
  const H = 2;
  it.each([
    ["T=1, B=1, chunk 4, given (C, n, m)", 1, 1, 4, true],
    ["T=11, B=2, chunk 4 (T not a multiple), given (C, n, m)", 11, 2, 4, true],
    ["T=37, B=2, chunk 16, declared initial state (m = -inf)", 37, 2, 16, false],
    ["T=9, B=1, chunk 1, given (C, n, m)", 9, 1, 1, true],
    ["T=30, B=2, chunk 8, given (C, n, m), outputs' cotangents only", 30, 2, 8, true],
  ])("%s: within 1e-9 of the reference, both branches of the max taken", async (label, T, B, chunk, init) => {
    const dims = smallDims(mlstm, { H, K: 5, V: 3 });
    const run = gated(randomRun(mlstm, { dims, batch: B, time: T, seed: 11 + T, initialState: init }), 6, 6);
    if (T > 1) {
      const n = branches(run, H);
      expect(n.a, "max took a + m").toBeGreaterThan(T / 8);
      expect(n.b, "max took b").toBeGreaterThan(T / 8);
    }
    const cot = randomCotangents(interpret(mlstm, run), 40 + T);
    if (label.includes("only")) cot.finalState = {};
    await check(mlstm, run, cot, chunk);
  });

  it("matches central finite differences of <cotangents, outputs and final states> at the gates and the initial m", async () => {
    const dims = smallDims(mlstm, { H, K: 3, V: 2 });
    const run = gated(randomRun(mlstm, { dims, batch: 1, time: 12, seed: 5, initialState: true }), 6, 6);
    const ref = interpret(mlstm, run);
    const cot = randomCotangents(ref, 9);
    const loss = (r: RunInputs) => {
      const o = interpret(mlstm, r);
      let s = 0;
      for (const [k, v] of Object.entries(cot.outputs)) v.forEach((c, j) => (s += c * o.outputs[k][j]));
      for (const [k, v] of Object.entries(cot.finalState)) v.forEach((c, j) => (s += c * o.finalState[k][j]));
      return s;
    };
    const got = chunkedGradients(mlstm, run, cot, { chunk: 5 });
    const h = 1e-6;
    const probe = (where: "inputs" | "initialState", name: string, j: number, g: number) => {
      const at = (d: number): RunInputs => {
        const x = Float64Array.from(run[where]![name]);
        x[j] += d;
        return { ...run, [where]: { ...run[where], [name]: x } };
      };
      const fd = (loss(at(h)) - loss(at(-h))) / (2 * h);
      expect(Math.abs(g - fd), `${where} ${name}[${j}]: ${g} vs ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    };
    for (const name of ["i", "f"]) for (let j = 0; j < run.inputs[name].length; j++) probe("inputs", name, j, got.inputs[name][j]);
    for (let j = 0; j < H; j++) probe("initialState", "m", j, got.initialState.m[j]);
  });

  it("T=2048 with saturated gates (i up to +30, log forget gates down to -20) stays finite and exact", async () => {
    const dims = smallDims(mlstm, { H: 1, K: 2, V: 2 });
    const run = gated(randomRun(mlstm, { dims, batch: 1, time: 2048, seed: 3, initialState: true }), 40, 40, 10);
    const i = run.inputs.i;
    expect(Math.max(...i)).toBeGreaterThan(29);
    expect(Math.min(...run.inputs.f)).toBeLessThan(-18);
    const n = branches(run, 1);
    expect(Math.min(n.a, n.b)).toBeGreaterThan(200);
    await check(mlstm, run, randomCotangents(interpret(mlstm, run), 2), 64, 1e-8);
  });

  it("the chain every embedder takes (chainGradients, the classes, the torch target) covers the stabilised form: the stabiliser's prep and its backward as parts; the low-rank chain refuses it with the reason", () => {
    const mf = matrixForm(mlstm);
    expect(mf.ok).toBe(true);
    if (!mf.ok) return;
    expect(chunkedBackwardRefusal(mf.form)).toMatch(/low-rank chunked backward chain does not cover stabilised forms/);
    expect(stabFrameOnly(mf.form)).toBe(true);
    expect(chainRefusal(mf.form)).toBe(undefined);
    const chain = modelChain(mlstm, {});
    expect(chain.names.columns?.states).toEqual(["n"]);
    expect(chain.names.stab?.state).toBe("m");
    expect(chain.names.stab?.frame).toBe(true);
    expect(chain.models.stab?.name).toBeDefined();
    expect(chain.models.stabBw?.name).toBeDefined();
    expect(modelChain(loadProgram(["stdlib/simple_gla.seq"]).models[0], {}).models.stab).toBe(undefined);
  });
});
