/**
 * The generated class of a stabilised form (mLSTM: max-plus stabiliser m, normaliser column n) trained through the
 * chunked backward on WebGPU (lavapipe in CI): `seqc compile --target wgsl,ts` embeds the chain's plans (the four
 * cores at value extent V + 1 in the WGSL chunked form, the decay scan, prep, the backward models of prep and post,
 * and the stabiliser's prep and its backward, parts "stab" / "stabBw"), and backward() runs them with the host glue
 * (runtime/chunked-backward.ts, runtime/chunked-backward-stab.ts). fp32 <= 1e-4 against the float64 reference
 * gradients at odd sizes (K = 5, V = 3): T = 70 with given C, n, m, T = 1 given, T = 11 declared (m = -inf), T = 40
 * with saturated gates (both branches of the max). The CUDA plans of the same chain: grad-chunked-class-cuda-stab-emu.
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

// inside the package, so that "seqc/runtime" resolves by package self-reference
const OUT = join(ROOT, "tmp", `chunked-class-stab-test-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", join(ROOT, "stdlib", "mlstm.seq"), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);

describe("mlstm's generated class: backward() through the stabilised chunked backward (WebGPU)", () => {
  it("the chain's WGSL plans; T = 70, 1 (given C, n, m), 11 (declared), 40 saturated; vs float64 (<= 1e-4)", async () => {
    const model = stdlibModel("mlstm");
    const info = trainingPlans(model);
    if ("unavailable" in info) throw new Error(info.unavailable);
    const c = info.chunked;
    if (!c || "unavailable" in c || !("names" in c)) throw new Error(c && "unavailable" in c ? c.unavailable : "expected the transposed-core chain");
    expect(Object.keys(c.plans).sort()).toEqual(["adjoint", "adjointT", "core", "coreT", "decay", "postBw", "prep", "prepBw", "stab", "stabBw"]);
    const N = model.name;
    const mod = await import(pathToFileURL(join(OUT, `${N}.ts`)).href);
    const dims = smallDims(model, { K: 5, V: 3 });
    for (const [B, T, init, stress] of [[2, 70, true, false], [3, 1, true, false], [2, 11, false, false], [2, 40, true, true]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 5 + T, initialState: init, stress });
      const m = await mod[N].create({ dims, params: f32(run.params), tune: false });
      try {
        const ref = interpret(model, run);
        const cot = randomCotangents(ref, T + 1);
        const want = await gradients(model, run, cot);
        const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
        const y = await m.forward(inputs, { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, returnFinalState: true, backward: "chunked" });
        const label = `${N} B=${B} T=${T}${init ? " (given initial state)" : ""}${stress ? " saturated" : ""}`;
        expect(y.saved.backward, label).toBe("chunked");
        const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
        let worst = 0;
        for (const kind of ["inputs", "params", "initialState"] as const)
          for (const [k, v] of Object.entries(want[kind])) {
            if (kind === "initialState" && !init && k === "m") continue; // (declared m0 = -inf)
            const e = relativeError(f64(g[kind][k]), v);
            worst = Math.max(worst, e);
            expect(e, `${label}: d/d ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
          }
        console.log(`${label}: worst relative error ${worst.toExponential(2)}`);
        expect(Object.keys(g.inputs).sort()).toEqual(Object.keys(run.inputs).sort());
      } finally {
        m.dispose();
      }
    }
  }, 900_000);
});
