/**
 * The generated classes' backward() through the low-rank chain (runtime/chunked-backward-lowrank.ts) on
 * WebGPU (lavapipe in CI): `seqc compile --target wgsl,ts` embeds its plans (the chunk transitions in the
 * WGSL chunked form, the pass over chunks, the per-chunk readouts, the decay scan, prep's and post's backward);
 * forward({ saveForBackward: true, backward: "chunked" }) stores nothing but the inputs and backward() runs
 * the chain; fp32 <= 1e-4 against the float64 reference gradients at T = 70 (several 64-micro-step chunks, the
 * last partial) and T = 1 from given initial states, T = 11 from the declared one, B = 2, beta in (0, 2)
 * (DeltaNet, Gated DeltaNet). And "auto" takes it where the forward picks its chunked form.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, stdlibModel } from "./wgsl/support.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { gradients } from "../compiler/grad/run.ts";
import { trainingPlans } from "../compiler/codegen/training-plans.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const MODELS = ["deltanet", "gated_deltanet"];
const OUT = join(ROOT, "tmp", `chunked-lowrank-class-test-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", ...MODELS.map((n) => join(ROOT, "stdlib", `${n}.seq`)), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);

describe("backward() of a generated class through the low-rank chain (WebGPU)", () => {
  it.each(MODELS)("%s: T = 70, T = 1, T = 11, B = 2, given and declared initial states, vs float64 (<= 1e-4)", async (name) => {
    const model = stdlibModel(name);
    const N = model.name;
    const mod = await import(pathToFileURL(join(OUT, `${N}.ts`)).href);
    const dims = smallDims(model, { K: 5, V: 3 });
    const m = await mod[N].create({ dims, tune: false });
    try {
      for (const [B, T, init] of [[2, 70, true], [2, 1, true], [2, 11, false]] as const) {
        const run = chunkInputs(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init });
        run.inputs.beta = run.inputs.beta.map((x, i) => (i % 3 === 0 ? 1.5 + 0.4 * x : x + x));
        const ref = interpret(model, run);
        const cot = randomCotangents(ref, T + 1);
        const want = await gradients(model, run, cot);
        const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
        const y = await m.forward(inputs, { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, returnFinalState: true, backward: "chunked" });
        const label = `${N} B=${B} T=${T}${init ? " (given initial state)" : ""}`;
        expect(y.saved.backward, label).toBe("chunked");
        expect(y.saved.memory.bytes, label).toBe(0);
        const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
        for (const kind of ["inputs", "params", "initialState"] as const)
          for (const [k, v] of Object.entries(want[kind])) expect(relativeError(f64(g[kind][k]), v), `${label}: d/d ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
        expect(Object.keys(g.inputs).sort()).toEqual(Object.keys(run.inputs).sort());
      }
    } finally {
      m.dispose();
    }
  }, 600_000);

  it("auto: chunked where the forward picks its chunked form, step at short T; the plans are the low-rank chain's", async () => {
    const { DeltaNet } = await import(pathToFileURL(join(OUT, "DeltaNet.ts")).href);
    const m = await DeltaNet.create({ dims: { H: 4, K: 64, V: 64 } });
    try {
      expect(m.formFor(4, 8192)).toMatch(/^chunked\//);
      const long = m.backwardFor(4, 8192);
      expect(long.form, long.why).toBe("chunked");
      expect(m.backwardFor(1, 1).form).toBe("step");
    } finally {
      m.dispose();
    }
    const info = trainingPlans(stdlibModel("deltanet"));
    if ("unavailable" in info) throw new Error(info.unavailable);
    expect(info.chunked && "lowRank" in info.chunked ? Object.keys(info.chunked.plans).sort() : []).toEqual(["adjoint", "augA", "augF", "fwd", "pass", "postBw", "prep", "prepBw", "read"]);
  }, 300_000);
});
