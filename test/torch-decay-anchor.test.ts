/**
 * The log decays' adjoint anchored at chunk boundaries (runtime/torch/seqc_decay_adjoint.py; seqc_chunked.py
 * DECAY_ANCHOR): the reverse sums of q.dq - k.dk restart at every chunk's end from <G^, S> there, computed from the
 * inputs. Checked without a GPU:
 *   - chain_backward with decay_anchor "chunk" on a numpy stand-in for torch (test/torch/decay_anchor_glue.py), every
 *     chain model on the float64 interpreter, against seqc's float64 reference gradients (<= 1e-9): Simple GLA and
 *     Mamba-2 (scalar decays), GLA (per key row), T = 1, T not a multiple of the chunk, several chunks (small C), one
 *     chunk (C > T), given and declared initial states, with and without a final-state cotangent, log decays down to -20,
 *     the Gram matrix of the anchors formed both ways (seqc_chunked.DECAY_ANCHOR_GRAM "stack" and "lean"), the sums
 *     inside the chunks three ways (seqc_chunked.REVERSE_SUM "chunk", "cumsum", "flip");
 *   - what the anchors are for (test/torch/decay_anchor_noise.py): with dq and dk off by 2^-9 relative (a bf16
 *     operand's rounding) over T = 2048, dld rebuilt from the noisy terms is several times closer to the direct
 *     float64 recurrence's anchored every 64 tokens than summed over the whole sequence; with exact terms both agree
 *     with it to rounding.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { torchChain, type TorchChainNames } from "../compiler/backends/torch/chain-copies.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { type ChainPart } from "../runtime/chunked-backward.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve, wire } from "./helpers/python-serve.ts";
import { glueTensors } from "./helpers/glue-case.ts";

const numpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;
if (!numpy) console.warn("torch-decay-anchor.test: python3 with numpy is not installed; the checks are skipped");
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];

async function anchoredChain(model: I.Model, run: RunInputs, cot: ReturnType<typeof randomCotangents>, dropStateCot: boolean, anchor: string, C: number, gram: string, reverseSum: string, anchorProducts?: "standin" | "broken", decayTerms?: "standin" | "broken", gramProducts?: "four" | "two" | "groups", alpha?: { anchorAlpha: string; anchorSegment: number; alphaBroken?: boolean; anchorAutoChunks?: number }) {
  const dims = { ...run.dims };
  const { names, models } = torchChain(modelChain(model, dims), dims) as { names: TorchChainNames; models: Partial<Record<ChainPart, I.Model>> };
  const SN = interpret(model, run).finalState[names.state];
  const { batch: B, time: T } = run;
  const tensors = glueTensors(model, names.state, run, cot, dropStateCot);
  const case_ = {
    names, B, T, ...tensors, SN: wire(SN, [B, ...tensors.stateShape]),
    decayAnchor: anchor, anchorChunk: C, anchorGram: gram, reverseSum, ...(anchorProducts ? { anchorProducts } : {}), ...(decayTerms ? { decayTerms } : {}), ...(gramProducts ? { gramProducts } : {}), ...(alpha ?? {}),
  };
  const parts: string[] = [];
  const got = await serve("python3", ["test/torch/decay_anchor_glue.py"], case_, (msg) => {
    parts.push(msg.run);
    return { model: models[msg.run as ChainPart]!, dims: msg.dims ?? dims, params: msg.dims ? {} : run.params ?? {} };
  });
  return { parts, ...got };
}

describe.skipIf(!numpy)("torch target: the decay adjoint anchored at chunk boundaries equals the float64 gradients", () => {
  it.each(["simple_gla", "mamba2", "gla"])("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    // [B, T, initial state, drop the final state's cotangent, stressed inputs (log decays down to -20), tokens per chunk]
    const cases: [number, number, boolean, boolean, boolean, number][] = [
      [2, 37, true, false, false, 4], [2, 37, true, false, true, 5], [1, 1, true, false, false, 4], [3, 11, false, true, false, 3],
      [2, 40, true, false, true, 8], [2, 23, true, false, false, 64], [1, 9, false, false, true, 1],
    ];
    // both ways of forming the anchors' Gram matrix (seqc_chunked.DECAY_ANCHOR_GRAM), the sums inside the chunks each
    // way (seqc_chunked.REVERSE_SUM: a product with the triangular ones matrix, cumsum inside the chunk, flips)
    for (const [B, T, init, dropStateCot, stress, C] of cases) for (const [gram, reverseSum] of [["stack", "chunk"], ["lean", "cumsum"], ["stack", "flip"]]) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 31 + T + C, initialState: init, stress });
      const cot = randomCotangents(interpret(model, run), T + 3);
      const state = modelChain(model, dims).names.state;
      if (dropStateCot) delete cot.finalState[state];
      const want = await gradients(model, run, cot);
      const got = await anchoredChain(model, run, cot, dropStateCot, "chunk", C, gram, reverseSum);
      expect(got.parts.includes("decay")).toBe(false);
      const label = `B=${B} T=${T} init=${init} stress=${stress} C=${C} gram=${gram} reverse=${reverseSum}`;
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k].data), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[state]), `${label}: d ${state}0`).toBeLessThanOrEqual(1e-9);
    }
  }, 300_000);
});

describe.skipIf(!numpy)("torch target: the lean Gram's chunk products handed in (seqc_chunked.ANCHOR_CHUNKS \"kernel\": the anchor chunks kernel's contract)", () => {
  // a numpy stand-in for the kernel (test/torch/chain_glue.py anchor_standin: the tensors as given, the Gram's row
  // layout, or key-row groups) in place of the copies and products, with the Gram's products each way
  // (seqc_chunked.GRAM_PRODUCTS): the same float64 gradients; the stand-in dropping each chunk's last token's weight must fail
  it.each(["simple_gla", "mamba2", "gla"])("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    // (the Gram's products: the four of the way before, folded to two, in key-row groups: seqc_chunked.GRAM_PRODUCTS)
    for (const [B, T, init, stress, C, fold] of [[2, 37, true, true, 5, "groups"], [1, 1, true, false, 4, "groups"], [2, 40, false, false, 8, "four"], [2, 40, false, false, 8, "two"]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 31 + T + C, initialState: init, stress });
      const cot = randomCotangents(interpret(model, run), T + 3);
      const want = await gradients(model, run, cot);
      const label = `B=${B} T=${T} init=${init} C=${C} products=${fold}`;
      const got = await anchoredChain(model, run, cot, false, "chunk", C, "lean", "chunk", "standin", undefined, fold);
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[modelChain(model, dims).names.state]), `${label}: dS0`).toBeLessThanOrEqual(1e-9);
      if (T > C) {
        const bad = await anchoredChain(model, run, cot, false, "chunk", C, "lean", "chunk", "broken", undefined, fold);
        const worst = Math.max(...Object.entries(want.inputs).filter(([k]) => run.inputs[k]).map(([k, v]) => relativeError(Float64Array.from(bad.inputs[k].data), v)));
        expect(worst, `${label}: the broken stand-in`).toBeGreaterThan(1e-4);
      }
    }
  }, 300_000);
});

describe.skipIf(!numpy)("torch target: the anchors from the chunk states' scan in segments (seqc_chunked.ANCHOR_ALPHA \"segments\")", () => {
  // alpha = <G^, S> at every chunk end from each segment's own Gram and a scan over segments (seqc_decay_adjoint
  // _alpha_segments) in place of the Gram of all chunks: the same float64 gradients with the lean copies and with the
  // anchor chunks kernel's stand-in; segments of 1 chunk, several with the last one padded (chunks not a multiple of the
  // segment), one segment over all chunks; the scan started from a zero state in place of S0 must fail
  it.each(["simple_gla", "mamba2", "gla"])("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    // [B, T, initial state, stressed inputs, tokens per chunk, chunks per segment, the kernel's stand-in, "auto" from this
    // many chunks (ANCHOR_AUTO_CHUNKS; 0: "segments" named)]
    const cases: [number, number, boolean, boolean, number, number, boolean, number][] = [
      [2, 37, true, true, 3, 4, false, 0], [2, 37, true, false, 2, 1, true, 0], [1, 1, true, false, 4, 16, false, 0], [3, 40, true, true, 4, 3, true, 0],
      [2, 23, false, false, 2, 64, false, 0], [2, 37, true, true, 3, 4, true, 13],
    ];
    for (const [B, T, init, stress, C, m, standin, auto] of cases) {
      const alpha = { anchorAlpha: auto ? "auto" : "segments", anchorSegment: m, ...(auto ? { anchorAutoChunks: auto } : {}) };
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 51 + T + C + m, initialState: init, stress });
      const cot = randomCotangents(interpret(model, run), T + 7);
      const want = await gradients(model, run, cot);
      const label = `B=${B} T=${T} init=${init} stress=${stress} C=${C} segment=${m} standin=${standin} auto=${auto}`;
      const got = await anchoredChain(model, run, cot, false, "chunk", C, "lean", "chunk", standin ? "standin" : undefined, undefined, undefined, alpha);
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k].data), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[modelChain(model, dims).names.state]), `${label}: dS0`).toBeLessThanOrEqual(1e-9);
      if (init && T > C * m) {
        const bad = await anchoredChain(model, run, cot, false, "chunk", C, "lean", "chunk", standin ? "standin" : undefined, undefined, undefined, { ...alpha, alphaBroken: true });
        const worst = Math.max(...Object.entries(want.params).map(([k, v]) => relativeError(Float64Array.from(bad.params[k].data), v)),
          ...Object.entries(want.inputs).filter(([k]) => run.inputs[k]).map(([k, v]) => relativeError(Float64Array.from(bad.inputs[k].data), v)));
        expect(worst, `${label}: the scan from a zero state`).toBeGreaterThan(1e-4);
      }
    }
  }, 300_000);
});

describe.skipIf(!numpy)("torch target: ANCHOR_ALPHA \"auto\" picks the segments from ANCHOR_AUTO_CHUNKS chunks on (seqc_chunked.anchor_alpha)", () => {
  it("the picks at the bench shapes' T (anchored every 64 tokens) and the named ways", () => {
    const py = "import sys; sys.path[:0] = ['test/torch/fake', 'runtime/torch']; import json, seqc_chunked as s; " +
      "print(json.dumps([s.anchor_alpha(T, 64) for T in (2048, 8192, 16320, 16384, 32768)] + [s.anchor_alpha(32768, 4096), s.anchor_alpha(5, 64), s.anchor_alpha(32768, 64, 'gram'), s.anchor_alpha(64, 64, 'segments'), s.ANCHOR_ALPHA]))";
    const r = spawnSync("python3", ["-c", py], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    // n = T / 64 chunks: 32, 128 (H200 call G15: the Gram as fast or faster), 255, 256, 512 (the segments 1.17-1.23x)
    expect(JSON.parse(r.stdout)).toEqual(["gram", "gram", "gram", "segments", "segments", "gram", "gram", "gram", "segments", "auto"]);
  });
});

describe.skipIf(!numpy)("torch target: the decay adjoint's terms handed in (seqc_chunked.DECAY_TERMS \"kernel\": the decay terms kernel's contract)", () => {
  // a numpy stand-in for the kernel (test/torch/chain_glue.py terms_standin: q.dq - k.dk from the tensors as the torch
  // ops take them, per head or per key row) in place of the multiplies and sums: the same float64 gradients, anchored
  // (the Gram's products folded to two or in key-row groups: GRAM_PRODUCTS) and not; the stand-in dropping each product's
  // last key must fail
  it.each(["simple_gla", "mamba2", "gla"])("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    for (const [B, T, init, stress, C, anchor, fold] of [[2, 37, true, true, 5, "chunk", "two"], [2, 37, true, true, 5, "chunk", "groups"], [1, 1, true, false, 4, "chunk", "groups"], [2, 13, false, false, 8, "none", "two"]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 41 + T + C, initialState: init, stress });
      const cot = randomCotangents(interpret(model, run), T + 5);
      const want = await gradients(model, run, cot);
      const label = `B=${B} T=${T} init=${init} C=${C} anchor=${anchor} products=${fold}`;
      // (the lean Gram's products folded to two, or in key-row groups from its copies: seqc_chunked.GRAM_PRODUCTS)
      const got = await anchoredChain(model, run, cot, false, anchor, C, "lean", "chunk", undefined, "standin", fold);
      for (const [k, v] of Object.entries(want.inputs)) if (run.inputs[k]) expect(relativeError(Float64Array.from(got.inputs[k].data), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-9);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(Float64Array.from(got.params[k].data), v), `${label}: d param ${k}`).toBeLessThanOrEqual(1e-9);
      expect(relativeError(Float64Array.from(got.dS0.data), want.initialState[modelChain(model, dims).names.state]), `${label}: dS0`).toBeLessThanOrEqual(1e-9);
      const bad = await anchoredChain(model, run, cot, false, anchor, C, "lean", "chunk", undefined, "broken");
      const worst = Math.max(...Object.entries(want.inputs).filter(([k]) => run.inputs[k]).map(([k, v]) => relativeError(Float64Array.from(bad.inputs[k].data), v)));
      expect(worst, `${label}: the broken stand-in`).toBeGreaterThan(1e-4);
    }
  }, 300_000);
});

const noise = (c: Record<string, unknown>) => {
  const r = spawnSync("python3", ["test/torch/decay_anchor_noise.py"], { input: JSON.stringify(c) + "\n", encoding: "utf8" });
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as { exact_plain: number; exact_anchored: number; noisy_plain: number; noisy_anchored: number };
};

describe.skipIf(!numpy)("torch target: what the decay adjoint's anchors are for", () => {
  it.each([[false, [-0.2, -0.01]], [false, [-20, 0]], [true, [-1, -0.01]], [true, [-0.02, 0]]] as const)(
    "per key %s, log decays in %j: dq, dk off by 2^-9 over T = 2048; anchored every 64 tokens the error is several times smaller than summed over the whole sequence", (perKey, decay) => {
      const e = noise({ T: 2048, H: 2, K: 16, V: 16, perKey, C: 64, seed: 3, decay, init: true });
      expect(e.exact_plain).toBeLessThanOrEqual(1e-12);
      expect(e.exact_anchored).toBeLessThanOrEqual(1e-12);
      const lean = noise({ T: 2048, H: 2, K: 16, V: 16, perKey, C: 64, seed: 3, decay, init: true, gram: "lean" });
      expect(lean.exact_anchored).toBeLessThanOrEqual(1e-12);
      expect(Math.abs(lean.noisy_anchored - e.noisy_anchored)).toBeLessThanOrEqual(1e-9);
      // independent errors: their sums grow as the square root of the tokens summed, sqrt(2048 / 64) = 5.7 here
      expect(e.noisy_anchored).toBeLessThanOrEqual(e.noisy_plain / 3);
      expect(e.noisy_plain).toBeGreaterThan(5e-3);
      // one chunk over the whole sequence is the plain sum again
      const one = noise({ T: 2048, H: 2, K: 16, V: 16, perKey, C: 2048, seed: 3, decay, init: true });
      expect(Math.abs(one.noisy_anchored - one.noisy_plain)).toBeLessThanOrEqual(1e-6 * one.noisy_plain);
    }, 60_000);
});
