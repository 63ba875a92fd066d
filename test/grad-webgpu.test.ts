/**
 * Training on WebGPU without backward kernels of its own: the backward model (plain IR; param
 * adjoints accumulated in backward states, same-shape inputs packed so that every stdlib backward
 * binds at most 16 storage buffers) compiled by the WGSL backend's sequential form, run on this
 * machine's driver (lavapipe in CI), agrees with the float64 reference gradients for every stdlib
 * model, storing the states or recomputing them from checkpoints.
 */
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { loadProgram } from "../compiler/frontend/load.ts";
import { gradients } from "../compiler/grad/run.ts";
import { runWebgpu } from "../compiler/backends/wgsl/run-backend.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { randomRun, smallDims, randomCotangents } from "./helpers/random.ts";

describe("gradients on WebGPU (backward model, sequential form) vs the float64 reference", () => {
  const names = readdirSync("stdlib").filter((f) => f.endsWith(".seq")).map((f) => f.replace(/\.seq$/, "")).sort();
  it.each(names)("%s", async (name) => {
    const model = loadProgram([`stdlib/${name}.seq`]).models[0];
    const dims = smallDims(model, { K: 4, V: 3, D: 5, N: 3, H: 2, I: 3 });
    const B = 2, T = 9;
    // softmax_attention's state is a KV cache with a position counter: start it empty
    const run = randomRun(model, { dims, batch: B, time: T, seed: 21, initialState: name !== "softmax_attention" });
    if (run.initialState!.m) run.initialState!.m = run.initialState!.m.map((x) => x - 1);
    for (const gate of ["g", "gk"]) if (run.inputs[gate]) run.inputs[gate] = run.inputs[gate].map((x) => -Math.abs(x) - 0.05);
    const ref = interpret(model, run);
    const cot = randomCotangents(ref, 5);
    const want = await gradients(model, run, cot);
    // checkpoints every 4 steps on half the models, to run the recompute path on the device too
    const memory = names.indexOf(name) % 2 ? { every: 4 } : "store";
    const got = await gradients(model, run, cot, (m, x) => runWebgpu(m, x, "sequential"), { memory });
    for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(got.inputs[k], v), `d/d input ${k}`).toBeLessThanOrEqual(1e-4);
    for (const [k, v] of Object.entries(want.params)) if (run.params?.[k]) expect(relativeError(got.params[k], v), `d/d param ${k}`).toBeLessThanOrEqual(1e-4);
    for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(got.initialState[k], v), `d/d initial ${k}`).toBeLessThanOrEqual(1e-4);
  }, 600_000);
});
