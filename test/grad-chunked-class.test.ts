/**
 * The generated classes' backward() through the chunked backward chain (runtime/chunked-backward.ts) on
 * WebGPU (lavapipe in CI): `seqc compile --target wgsl,ts` embeds the chain's plans (its four core models
 * in the WGSL chunked form, the log-decay adjoint's scan, prep's and post's backward), forward({
 * saveForBackward: true, backward: "chunked" }) stores nothing but the inputs and backward() runs the chain;
 * fp32 <= 1e-4 against the float64 reference gradients (gradients(): the whole model's adjoint
 * recurrence) at T = 70 (three 32-token chunks, the last partial) and T = 1 from given initial states, T = 11
 * from the declared one, B = 3 (SimpleGla, Gla, Mamba2). And the choice: "auto" takes the chunked backward
 * where the forward's own pick is its chunked form (long T) and the step backward at short T, with an
 * explicit memory policy or backward "step"; auto end to end (SimpleGla H = 2, K = V = 16: chunked at
 * T = 64, step at T = 1) vs float64; models without a chain say why (mLSTM's stabilised chain: grad-chunked-class-stab.test.ts).
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
import { rng, smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const MODELS = ["simple_gla", "gla", "mamba2"];
// inside the package, so that "seqc/runtime" resolves by package self-reference
const OUT = join(ROOT, "tmp", `chunked-class-test-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", ...MODELS.map((n) => join(ROOT, "stdlib", `${n}.seq`)), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);

describe("backward() of a generated class through the chunked backward (WebGPU)", () => {
  it.each(MODELS)("%s: T = 70 (three chunks), T = 1, T = 11, B = 3, given and declared initial states, vs float64 (<= 1e-4)", async (name) => {
    const model = stdlibModel(name);
    const N = model.name;
    const mod = await import(pathToFileURL(join(OUT, `${N}.ts`)).href);
    const dims = smallDims(model, { K: 5, V: 3, P: 3, N: 4 });
    let m = await mod[N].create({ dims, params: f32(chunkInputs(model, { dims, batch: 1, time: 1, seed: 1 }).params), tune: false });
    try {
      // declared (zero) initial state at T > 1: at T = 1 from S_0 = 0 the decay's gradient is exactly 0 and only rounding is left
      for (const [B, T, init] of [[3, 70, true], [3, 1, true], [3, 11, false]] as const) {
        const run = chunkInputs(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init });
        if (Object.keys(run.params ?? {}).length) {
          m.dispose();
          m = await mod[N].create({ dims, params: f32(run.params), tune: false }); // Mamba2's A (prep) and D (post)
        }
        const ref = interpret(model, run);
        const cot = randomCotangents(ref, T + 1);
        const want = await gradients(model, run, cot);
        const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
        const y = await m.forward(inputs, { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, returnFinalState: true, backward: "chunked" });
        const label = `${N} B=${B} T=${T}${init ? " (given initial state)" : ""}`;
        expect(y.saved.backward, label).toBe("chunked");
        expect(y.saved.memory.bytes, label).toBe(0);
        for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(f64(y[k]), v), `${label}: output ${k}`).toBeLessThanOrEqual(1e-5);
        const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
        for (const kind of ["inputs", "params", "initialState"] as const)
          for (const [k, v] of Object.entries(want[kind])) expect(relativeError(f64(g[kind][k]), v), `${label}: d/d ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
        expect(Object.keys(g.inputs).sort()).toEqual(Object.keys(run.inputs).sort());
        await expect(m.backward({}, y.saved)).rejects.toThrow(/already used by a backward\(\)/);
      }
      const y = await m.forward(Object.fromEntries(Object.entries(f32(chunkInputs(model, { dims, batch: 1, time: 2, seed: 1 }).inputs)).map(([k, v]) => [k, { data: v, shape: [1, 2, v.length / 2] }])), { saveForBackward: true, backward: "chunked" });
      await expect(m.backward({ nope: new Float32Array(1) }, y.saved)).rejects.toThrow(/has no output 'nope'/);
      const out = Object.keys(interpret(model, chunkInputs(model, { dims, batch: 1, time: 1, seed: 1 })).outputs)[0];
      await expect(m.backward({ [out]: new Float32Array(1) }, y.saved)).rejects.toThrow(new RegExp(`gradient of output '${out}'.*has 1 elements`));
      await expect(m.forward({}, { saveForBackward: true, backward: "chunked", memory: "store" })).rejects.toThrow(/give at least one input|memory "store" is a policy of the step backward/);
    } finally {
      m.dispose();
    }
  }, 600_000);

  it("the choice: chunked where the forward picks its chunked form (long T), step at short T, with a memory policy or when asked, both run by auto vs float64; models without a chain say why", async () => {
    const { SimpleGla } = await import(pathToFileURL(join(OUT, "SimpleGla.ts")).href);
    const dims = { H: 4, K: 64, V: 64 };
    const m = await SimpleGla.create({ dims });
    try {
      const long = m.backwardFor(4, 8192);
      expect(m.formFor(4, 8192)).toMatch(/^chunked\//);
      expect(long.form, long.why).toBe("chunked");
      expect(long.why).toMatch(/the forward runs chunked\//);
      const short = m.backwardFor(1, 1);
      expect(m.formFor(1, 1)).not.toMatch(/^chunked\//);
      expect(short.form, short.why).toBe("step");
      expect(m.backwardFor(4, 8192, { memory: "store" }).form).toBe("step");
      expect(m.backwardFor(4, 8192, { backward: "step" }).form).toBe("step");
      expect(m.backwardFor(1, 1, { backward: "chunked" }).form).toBe("chunked");
      expect(() => m.backwardFor(4, 8192, { backward: "chunked", memory: { every: 4 } })).toThrow(/policy of the step backward/);
      expect(() => m.backwardFor(4, 8192, { backward: "sideways" })).toThrow(/backward must be 'auto', 'step' or 'chunked'/);
    } finally {
      m.dispose();
    }
    // auto end to end: H = 2, K = V = 16, B = 2: the forward picks its chunked form at T = 64 (the backward follows) and not at T = 1
    const model = stdlibModel("simple_gla");
    const dims2 = { H: 2, K: 16, V: 16 };
    const g2 = await SimpleGla.create({ dims: dims2, tune: false });
    try {
      for (const [T, want] of [[64, "chunked"], [1, "step"]] as const) {
        const B = 2;
        expect(g2.backwardFor(B, T).form, g2.backwardFor(B, T).why).toBe(want);
        const run = chunkInputs(model, { dims: dims2, batch: B, time: T, seed: 11, initialState: true });
        const ref = interpret(model, run);
        const r = rng(12);
        const cot = { outputs: { o: ref.outputs.o.map(() => r()) }, finalState: { S: ref.finalState.S.map(() => r()) } };
        const ref64 = await gradients(model, run, cot);
        const y = await g2.forward({ q: { data: Float32Array.from(run.inputs.q), shape: [B, T, 2, 16] }, k: { data: Float32Array.from(run.inputs.k), shape: [B, T, 2, 16] }, v: { data: Float32Array.from(run.inputs.v), shape: [B, T, 2, 16] }, g: { data: Float32Array.from(run.inputs.g), shape: [B, T, 2] } }, { initialState: f32(run.initialState), saveForBackward: true });
        expect(y.saved.backward ?? "step", `T=${T}`).toBe(want);
        const g = await g2.backward({ o: Float32Array.from(cot.outputs.o), finalState: { S: Float32Array.from(cot.finalState.S) } }, y.saved);
        for (const kind of ["inputs", "initialState"] as const)
          for (const [k, v] of Object.entries(ref64[kind])) expect(relativeError(f64(g[kind][k]), v), `auto T=${T}: d/d ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      g2.dispose();
    }
    for (const [name, why] of [["lstm", /has no chunked form/], ["mlstm", /\(has a chain\)/]] as const) {
      const info = trainingPlans(stdlibModel(name));
      if ("unavailable" in info) throw new Error(info.unavailable);
      expect(info.chunked && "unavailable" in info.chunked ? info.chunked.unavailable : "(has a chain)", name).toMatch(why);
    }
  }, 300_000);
});
