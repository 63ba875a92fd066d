/**
 * The delta step's glue without bf16 conversion passes (runtime/torch/seqc_chunked_lowrank.py LR_DELTA_GLUE "bf16"):
 * where the delta kernels take bf16 per-token inputs, prep writes the tensors they read in bf16 directly (its
 * "-bf16out" twins, compiler/backends/torch/stateless-bf16.ts; chain-plans-lowrank.ts deltaBf16Outputs names them), post's
 * backward does not run where its outputs are copies and zeros (chain-copies-lowrank.ts names them: dY is the bf16
 * cotangent as given; elsewhere its "-bf16out" twin writes dY), prep's backward writes the gradients it alone makes
 * (q's, beta's) in bf16, a merged decay's w' = exp(ld) w is written in bf16 by its product, an input's gradient pieces are summed
 * into bf16. Checked end to end on CPU torch (test/torch/autograd_bf16.py: the module's autograd path on bf16 tensors,
 * the plans on the float64 interpreter, the delta kernels by their stand-in test/torch/delta_kernels_standin.py with bf16
 * per-token inputs): "bf16" against "off" (DeltaNet: bitwise the same gradients; Gated DeltaNet within a bf16 rounding:
 * its merged decay's adjoint w' . dw' is taken as exp(ld) (w . dw')), both within 1e-2 of float64 at the rounded inputs;
 * which plans ran with bf16 outputs (post's backward none with "bf16"); the stand-in got bf16 tensors either way (so
 * "off" converted them).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { torchLowRankChain } from "../compiler/backends/torch/chain-copies-lowrank.ts";
import { deltaBf16Outputs } from "../compiler/backends/torch/chain-plans-lowrank.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { LrPart } from "../runtime/chunked-backward-lowrank.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve } from "./helpers/python-serve.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const dimsOf = (model: I.Model) => smallDims(model, { K: 5, V: 7 });
const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));
const cpuBf16 = spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;

type Run = [string, string, string, string[], string, string[], string[] | null];
type Got = { runs: Run[]; deltaCalls: string[]; deltaSeen: [string, string[]][]; chunked: boolean; dtypes: string[]; inputs: Record<string, number[]>; initialState: Record<string, number[]> };

describe("torch target: the delta kernels' bf16 per-token tensors named for the stateless parts (chain-plans-lowrank.ts deltaBf16Outputs)", () => {
  it("prep's outputs but the log decays, post's backward's dY, prep's backward's whole gradients; none for Gated DeltaProduct (two micro-steps a token)", () => {
    const names = (name: string) => torchLowRankChain(lowRankChain(load(name), { J: 2 }), { J: 2 }).names;
    // (prep's backward: the gradients it alone makes; k's has the copy w = k's piece too, g's the decay's)
    expect(["prep", "postBw", "prepBw"].map((p) => deltaBf16Outputs(names("deltanet"), p))).toEqual([["u0", "kk2", "q4"], ["y0__bar"], ["q__bar", "beta__bar"]]);
    expect(["prep", "postBw", "prepBw"].map((p) => deltaBf16Outputs(names("gated_deltanet"), p))).toEqual([["u1", "kk3", "q5"], ["y0__bar"], ["q__bar", "beta__bar"]]);
    expect(["prep", "postBw"].map((p) => deltaBf16Outputs(names("rwkv7"), p))).toEqual([[], ["y0__bar"]]);
    expect(["prep", "postBw"].map((p) => deltaBf16Outputs(names("gated_deltaproduct"), p))).toEqual([[], []]);
    // post's backward's copies and zeros (the glue's dY without running it)
    expect([names("deltanet").postBw.copies, names("deltanet").postBw.zeros]).toEqual([{ y0__bar: "o__bar" }, ["beta__bar", "k__bar", "q__bar", "v__bar"]]);
    expect([names("rwkv7").postBw.copies, names("rwkv7").postBw.zeros]).toEqual([{ y0__bar: "o__bar" }, ["a__bar", "b__bar", "k__bar", "r__bar", "v__bar", "w__bar"]]);
  });
});

describe.skipIf(!cpuBf16)("torch target: LR_DELTA_GLUE \"bf16\" end to end on bf16 tensors (CPU torch, the delta kernels' stand-in)", () => {
  it.each(["deltanet", "gated_deltanet", "rwkv7"])("%s: \"bf16\" as \"off\" (bitwise; Gated DeltaNet within a bf16 rounding), both within 1e-2 of float64; prep on its \"-bf16out\" twin, no post's backward; the stand-in reads bf16", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-delta-glue-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = torchLowRankChain(lowRankChain(model, dims), dims);
    for (const [B, T, init] of [[2, 37, false], [1, 70, true]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 41 + T, initialState: init });
      for (const o of [run.inputs, run.initialState ?? {}]) for (const k of Object.keys(o)) o[k] = o[k].map((v) => fromBf16(toBf16(v)));
      const cot = randomCotangents(interpret(model, run), T + 3);
      const want = await gradients(model, run, cot);
      const step = async (deltaGlue: "off" | "bf16") => (await serve("/usr/bin/python3", ["test/torch/autograd_bf16.py", join(dir, json.path)],
        { B, T, dims, backward: "auto", inputs: list(run.inputs), params: {}, initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState), deltaKern: "standin", deltaGlue },
        (msg) => {
          if (msg.run === "forward") return { model, dims: msg.dims!, params: {} };
          const part = msg.run.replace(/^chain:/, "") as LrPart;
          if (!msg.run.startsWith("chain:") || !chain.models[part]) throw new Error(`unexpected plan ${msg.run}`);
          return { model: chain.models[part]!, dims: msg.dims!, params: {} };
        })) as Got;
      const off = await step("off");
      const low = await step("bf16");
      const label = `${name} B=${B} T=${T} init=${init}`;
      for (const [g, glue] of [[off, "off"], [low, "bf16"]] as const) {
        expect([g.chunked, g.dtypes], `${label} ${glue}`).toEqual([true, ["bfloat16"]]);
        // the five kernels (their stand-in), each reading its per-token tensors in bf16
        expect(g.deltaCalls, `${label} ${glue}`).toEqual(["prep_fwd", "walk", "prep_bwd", "walk", "adj"]);
        for (const [op, dts] of g.deltaSeen) expect(dts, `${label} ${glue} ${op}`).toEqual(dts.map(() => "bfloat16"));
        // which stateless parts ran with bf16 outputs: with "bf16" prep (where it runs) on its twin, post's backward not
        // at all (its outputs a copy and zeros: dY the cotangent)
        // (and prep's backward, where it runs, on its twin writing q's and beta's gradients)
        const outIo = g.runs.filter((r) => ["chain:prep", "chain:postBw", "chain:prepBw"].includes(r[0])).map((r) => [r[0], r[4], r[2].endsWith("-bf16out")]);
        const parts = chain.models.prep ? ["chain:prep", "chain:postBw", "chain:prepBw"] : ["chain:postBw"];
        expect(outIo, `${label} ${glue}`).toEqual(glue === "bf16" ? parts.filter((p) => p !== "chain:postBw").map((p) => [p, "bf16", true]) : parts.map((p) => [p, "f32", false]));
        for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(Float64Array.from(g.inputs[k]), v), `${label} ${glue}: d ${k}`).toBeLessThanOrEqual(1e-2);
        if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(g.initialState[k]), v), `${label} ${glue}: d ${k}0`).toBeLessThanOrEqual(1e-2);
      }
      // "bf16" writes the values "off" converts: the same gradients (Gated DeltaNet: its merged decay's adjoint taken as
      // exp(ld) (w . dw'), not w' . dw' with w' rounded: within a bf16 rounding of its gradients)
      const tol = name === "gated_deltanet" ? 8e-3 : 0;
      for (const k of Object.keys(want.inputs)) expect(relativeError(Float64Array.from(low.inputs[k]), Float64Array.from(off.inputs[k])), `${label}: d ${k} bf16 vs off`).toBeLessThanOrEqual(tol);
    }
  }, 600_000);
});
