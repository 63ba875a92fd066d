/**
 * The chunk states the delta backward can take from the forward (runtime/torch/seqc_chunked_lowrank.py LR_FWD_STATES;
 * docs/delta-backward.md "Chunk states from the forward"): the chunked forward's split3 walk stores each chunk's start
 * state to its workspace "chunkS" ([B][H][nC][KP][VP] in the forward's operand type). On the CPU emulation of CUDA
 * (test/cuda-emu/emu.h), DeltaNet and Gated DeltaNet (scalar decay): chunk c's stored state equals the float64
 * interpreter's state after the first 64 c tokens (a given initial state for c = 0; ragged T; B = 2), i.e. the delta
 * backward's chunk start states S0 (chunks of 64 tokens aligned to t = 0, the same [B, H, nC, K, V] order): fp32 within
 * 1e-5, the bf16 forward within 1e-2 (its operand rounding; the number is logged). The same for split's -st twins
 * (compiler/backends/cuda/chunked-walk-states.ts: split's walk also storing the chunk states; auto's bf16 forwards at
 * (8, 2048, 16, 64) and (4, 8192, 16, 128) and an fp32 one), whose outputs and final states are bitwise the split variant's;
 * a twin storing each state a chunk late fails. And the forward variant LR_FWD_STATES runs exists, with a chunkS
 * workspace: a split3 twin (seqc_chunked_lowrank.split3_twin) for every split and fused variant of one row a token in
 * the two models' forward plans, and with "on" auto's split pick's -st twin (states_twin).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { Model } from "../compiler/ir/types.ts";
import { lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { chooseCudaForm } from "../compiler/backends/cuda/choose.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { buildEmu, runEmu } from "./cuda-emu/harness.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { smallDims } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const cpuPython = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;
const load = (name: string): Model => loadProgram([`stdlib/${name}.seq`]).models[0];

/** The first t tokens of every batch row of run's inputs. */
function prefix(run: RunInputs, t: number): RunInputs {
  const B = run.batch, T = run.time;
  const inputs: Record<string, Float64Array> = {};
  for (const [k, x] of Object.entries(run.inputs)) {
    const w = x.length / (B * T);
    const y = new Float64Array(B * t * w);
    for (let b = 0; b < B; b++) y.set(x.subarray(b * T * w, (b * T + t) * w), b * t * w);
    inputs[k] = y;
  }
  return { ...run, time: t, inputs };
}

/** The stored states' error vs the interpreter's at every chunk start (K = V = KP = VP; chunkS of float or bf16). */
function statesError(name: string, variant: string, K: number, T: number, B: number): number {
  return statesRun(name, variant, K, T, B).error;
}

/** statesError's run: variant (with `base`, one build; patch: an edit of the module's source) on the same inputs; the
 *  stored states' error, and variant's and base's outputs and final states. */
function statesRun(name: string, variant: string, K: number, T: number, B: number, base?: string, patch?: (src: string) => string) {
  const model = load(name), io = /-(f32|bf16)-/.exec(variant)![1];
  const b = buildEmu(model, base ? [variant, base] : [variant], undefined, patch);
  const dims = smallDims(model, { K, V: K, H: 2 });
  const H = dims.H, nC = Math.ceil(T / 64);
  const run = chunkInputs(model, { dims, batch: B, time: T, seed: 7 + T + K, initialState: true });
  for (const k of Object.keys(run.inputs)) if (io === "bf16") run.inputs[k] = run.inputs[k].map((v) => fromBf16(toBf16(v)));
  const res = runEmu(b, variant, run);
  const raw = res.workspaces.chunkS;
  const S = io === "bf16" ? Float64Array.from(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2), fromBf16) : Float64Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
  expect(S.length, `${variant} chunkS size`).toBeGreaterThanOrEqual(B * H * nC * K * K);
  const got = new Float64Array(B * H * nC * K * K), want = new Float64Array(B * H * nC * K * K);
  for (let c = 0; c < nC; c++) {
    const st = c === 0 ? run.initialState!.S : interpret(model, prefix(run, 64 * c)).finalState.S; // [B, H, K, V]
    for (let bh = 0; bh < B * H; bh++) {
      const n = bh * nC + c;
      want.set(st.subarray(bh * K * K, (bh + 1) * K * K), n * K * K);
      got.set(S.subarray(n * K * K, (n + 1) * K * K), n * K * K);
    }
  }
  return { error: relativeError(got, want), res, base: base ? runEmu(b, base, run) : undefined };
}

describe.skipIf(!gpp)("the forward's split3 chunk states are the delta backward's chunk start states (CPU emulation vs float64)", () => {
  it.each(["deltanet", "gated_deltanet"])("%s: fp32 split3 (K = V = 32), B = 2, T = 150 with an initial state: every chunk's stored state within 1e-5", (name) => {
    const e = statesError(name, "chunked-split3-f32-k32-v16-r1", 32, 150, 2);
    console.log(`${name} fp32 forward chunk states vs float64: ${e.toExponential(2)}`);
    expect(e).toBeLessThan(1e-5);
  }, 600_000);

  it.each(["deltanet", "gated_deltanet"])("%s: bf16 split3 (K = V = 64), B = 1, T = 150: within 1e-2 (the forward's bf16 operands)", (name) => {
    const e = statesError(name, "chunked-split3-bf16-k64-v16-r1", 64, 150, 1);
    console.log(`${name} bf16 forward chunk states vs float64: ${e.toExponential(2)}`);
    expect(e).toBeLessThan(1e-2);
    expect(e).toBeGreaterThan(1e-6);
  }, 900_000);
});

// split's walks that also store the chunk states (the -st twins, compiler/backends/cuda/chunked-walk-states.ts): auto's
// forward at (8, 2048, 16, 64) and (4, 8192, 16, 128) bf16 (compiler/backends/cuda/choose.ts) and an fp32 one
describe.skipIf(!gpp)("split's -st twins store the delta backward's chunk start states, the outputs the split variant's (CPU emulation vs float64)", () => {
  it.each([
    ["deltanet", "chunked-split-f32-k32-v16-st-r1", "chunked-split-f32-k32-v16-r1", 32, 150, 2, 1e-5],
    ["gated_deltanet", "chunked-split-f32-k32-v16-st-r1", "chunked-split-f32-k32-v16-r1", 32, 150, 2, 1e-5],
    ["deltanet", "chunked-split-bf16-k64-v32-a512-iw-ios-st-r1", "chunked-split-bf16-k64-v32-a512-iw-ios-r1", 64, 150, 1, 1e-2],
    ["gated_deltanet", "chunked-split-bf16-k64-v32-a512-iw-ios-st-r1", "chunked-split-bf16-k64-v32-a512-iw-ios-r1", 64, 150, 1, 1e-2],
    ["gated_deltanet", "chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-st-r1", "chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-r1", 128, 150, 1, 1e-2],
  ] as const)("%s %s (twin of %s, K = %i, T = %i, B = %i): every chunk's stored state within %s of float64; outputs and final state bitwise the split variant's", (name, variant, base, K, T, B, tol) => {
    const { error, res, base: ref } = statesRun(name, variant, K, T, B, base);
    console.log(`${name} ${variant} chunk states vs float64: ${error.toExponential(2)}`);
    expect(error).toBeLessThan(tol);
    if (variant.includes("bf16")) expect(error).toBeGreaterThan(1e-6);
    for (const [k, v] of Object.entries(ref!.outputs)) expect(Buffer.compare(Buffer.from(res.outputs[k].buffer), Buffer.from(v.buffer)), `${variant} output ${k}`).toBe(0);
    for (const [k, v] of Object.entries(ref!.finalState)) expect(Buffer.compare(Buffer.from(res.finalState[k].buffer), Buffer.from(v.buffer)), `${variant} final ${k}`).toBe(0);
    expect(Object.keys(ref!.outputs).length).toBeGreaterThan(0);
  }, 1_500_000);

  it("a broken copy fails: the -st walk storing chunk c's start state in chunk c + 1's slot", () => {
    const at = "seqc_state_put<Cfg>(S, wsS + ((size_t)(b * nH + h) * nc + c)";
    const patch = (src: string) => src.replace(at, "seqc_state_put<Cfg>(S, wsS + ((size_t)(b * nH + h) * nc + (c + 1 < nc ? c + 1 : c))");
    const { error } = statesRun("deltanet", "chunked-split-bf16-k64-v32-a512-iw-ios-st-r1", 64, 150, 1, undefined, patch);
    console.log(`broken -st walk (states a chunk late): ${error.toExponential(2)}`);
    expect(error).toBeGreaterThan(1e-1);
  }, 1_500_000);
});

describe.skipIf(!cpuPython)("LR_FWD_STATES's forward variant (seqc_chunked_lowrank.split3_twin)", () => {
  it.each(["deltanet", "gated_deltanet"])("%s: every split and fused variant of one row a token has a split3 twin with chunkS, of its io and key size", (name) => {
    const forms = lowerCuda(load(name)).plan.forms;
    const names = forms.map((f) => f.variant);
    const script = `import json, sys
sys.path.insert(0, "runtime/torch")
import seqc_chunked_lowrank as lr
names = json.load(sys.stdin)
print(json.dumps({v: lr.split3_twin(v, names) for v in names}))`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(names), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const twins = JSON.parse(r.stdout) as Record<string, string | null>;
    const splits = names.filter((v) => /^chunked-(split|splitd|fused)-/.test(v) && v.endsWith("-r1"));
    expect(splits.length).toBeGreaterThan(5);
    for (const v of splits) {
      const t = twins[v];
      expect(t, v).toBeTruthy();
      const [io, k] = v.split("-").slice(2, 4);
      expect(t!.startsWith(`chunked-split3-${io}-${k}-`), `${v} -> ${t}`).toBe(true);
      expect(forms.find((f) => f.variant === t)!.workspaces.map((w) => w.name), t!).toContain("chunkS");
    }
    for (const v of names.filter((x) => x.startsWith("chunked-split3-"))) expect(twins[v]).toBe(v);
    for (const v of names.filter((x) => !x.endsWith("-r1") || !x.startsWith("chunked-"))) expect(twins[v], v).toBe(null);
  }, 300_000);

  it.each(["deltanet", "gated_deltanet"])("%s: \"on\" takes auto's split pick's -st twin (its phase A, its walk storing the states, chunkS); every -st twin's split variant is in the plan", (name) => {
    const model = load(name);
    const forms = lowerCuda(model).plan.forms;
    const names = forms.map((f) => f.variant);
    const picks = ([[8, 2048, 16, 64], [4, 8192, 16, 128], [1, 32768, 8, 128]] as const).map(([B, T, H, K]) => chooseCudaForm(model, { B, T, H, K, V: K }, "bf16").variant);
    expect(picks.slice(0, 2).every((v) => v.startsWith("chunked-split-")), picks.join(" ")).toBe(true);
    const script = `import json, sys
sys.path.insert(0, "runtime/torch")
import seqc_chunked_lowrank as lr
a = json.load(sys.stdin)
print(json.dumps([lr.states_twin(v, a["names"]) for v in a["picks"]]))`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify({ names, picks }), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as string[];
    const entries = (v: string) => forms.find((f) => f.variant === v)!.steps.map((x) => (x as { entry: string }).entry);
    for (const [i, v] of picks.slice(0, 2).entries()) {
      expect(got[i]).toBe(v.replace(/-r1$/, "-st-r1"));
      expect(forms.find((f) => f.variant === got[i])!.workspaces.map((w) => w.name)).toEqual(["chunk", "chunkS"]);
      expect(entries(got[i])).toEqual([entries(v)[0], `${entries(v)[1]}_st`]);
    }
    // (few rows: auto's pick is split3 already, its own chunkS)
    expect(picks[2].startsWith("chunked-split3-")).toBe(true);
    expect(got[2]).toBe(picks[2]);
    const st = names.filter((v) => v.includes("-st-"));
    expect(st.length).toBeGreaterThanOrEqual(2);
    for (const v of st) expect(names, v).toContain(v.replace(/-st-r1$/, "-r1"));
  }, 300_000);
});
