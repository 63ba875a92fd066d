/**
 * The generated classes' chunked backward on backend "cuda", on the CPU emulation of CUDA (test/cuda-emu):
 * `seqc compile --target cuda` writes the chain's CUDA plans into <Model>.grad.cuda.json (`chunked`:
 * compiler/backends/cuda/training-chain.ts), and the class's backward() runs them through the real
 * CudaModelRunner (runtime/trainer.ts) — the cores (the chunk transitions of the low-rank chain) in their
 * emitted split3 fp32 variant on the chunked emulator, the other parts in their plain forms. fp32 <= 1e-4
 * against the float64 reference gradients (gradients(): the adjoint recurrence on the interpreter) at odd sizes
 * (K = 5, V = 3), T = 70 (a 64-token chunk and a partial one; the low-rank chain's 64-micro-step chunks
 * likewise), T = 1, given and declared initial states, for SimpleGla, Gla (per-key decays: the transposed
 * cores' key rows as heads, their plans: the chain's rows readout module left out), Mamba2 (params in prep and post) and DeltaNet (beta in (0, 2)). Also: the chain's cores keep only the variants the runner's auto pick reaches
 * (same pick as with all float32 variants over a grid of shapes), and a grad plan without the chain is refused
 * for backward "chunked". Needs g++; `nvcc -ptx` of the emitted chain modules where nvcc is installed.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, stdlibModel } from "./wgsl/support.ts";
import type * as I from "../compiler/ir/types.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { gradients } from "../compiler/grad/run.ts";
import { trainingModels } from "../compiler/grad/training.ts";
import { emitCuda } from "../compiler/backends/cuda/target.ts";
import { lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { chunkedOnlyPlan } from "../compiler/backends/cuda/training-chain.ts";
import { keepForms } from "../compiler/backends/torch/plans.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import type { CudaChunkedTraining } from "../runtime/trainer.ts";
import { ChainFakeDevice } from "./cuda-emu/chain-device.ts";
import { FakeCudaDevice } from "./cuda-emu/fake-device.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const MODELS = ["simple_gla", "gla", "mamba2", "deltanet"];
// inside the package, so that "seqc/runtime" resolves by package self-reference
const OUT = join(ROOT, "tmp", `chunked-class-cuda-emu-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", ...MODELS.map((n) => join(ROOT, "stdlib", `${n}.seq`)), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
  // the CUDA plans as `seqc compile --target cuda` writes them (no PTX: the emulation compiles the source)
  for (const n of MODELS) for (const f of emitCuda(stdlibModel(n), { ptx: false })) if (f.path.endsWith(".json")) writeFileSync(join(OUT, f.path), f.contents);
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);
const readJson = (f: string) => JSON.parse(readFileSync(join(OUT, f), "utf8"));

/** The chain's models by part (the same models the emitted plans were lowered from). */
function partModels(model: I.Model): Record<string, I.Model> {
  const t = trainingModels(model);
  if (!t.ok) throw new Error(t.why);
  if (t.lowRankChain) return t.lowRankChain.models as Record<string, I.Model>;
  if ("why" in t.chain) throw new Error(t.chain.why);
  return t.chain.models as Record<string, I.Model>;
}

/** The class's CUDA plans on the emulation: plain forms, each chunked part cut to its emitted split3 fp32 variant with 32-key and 16-value tiles. */
function emulatedPlans(model: I.Model, device: ChainFakeDevice) {
  const N = model.name;
  const grad = readJson(`${N}.grad.cuda.json`);
  const c = grad.chunked as CudaChunkedTraining;
  if ("unavailable" in c) throw new Error(c.unavailable);
  const models = partModels(model);
  const plans: Record<string, CudaModelPlan> = {};
  const chunkedParts: string[] = [];
  for (const [part, p] of Object.entries(c.plans as Record<string, CudaModelPlan>)) {
    if (p.forms.every((f) => f.form === "chunked")) {
      const v = p.forms.find((f) => /^chunked-split3-f32-k32-v16-r\d+$/.test(f.variant));
      if (!v) throw new Error(`${N} ${part}: no split3 f32 k32 v16 variant among ${p.forms.map((f) => f.variant).join(", ")}`);
      plans[part] = device.addChunked(models[part], p, v.variant);
      chunkedParts.push(part);
    } else plans[part] = device.add(p);
  }
  const passes = Object.fromEntries(Object.entries(grad.passes ?? {}).map(([k, p]) => [k, device.add(p as CudaModelPlan)]));
  // without Gla's rows readout module, so that its transposed cores run as plans here (the kernel's own class test:
  // grad-chunked-class-cuda-rows-emu.test.ts)
  const { rowsReadout: _rows, ...chain } = c as Extract<CudaChunkedTraining, { names: unknown }>;
  return { cudaPlan: device.add(readJson(`${N}.cuda.json`)), cudaGradPlan: { record: device.add(grad.record), backward: device.add(grad.backward), passes, chunked: { ...chain, plans } }, chunkedParts };
}

describe.skipIf(!gpp)("backward() of a generated class on backend 'cuda' through the chunked backward (CPU emulation of CUDA)", () => {
  it.each(MODELS)("%s: T = 70, T = 1 (given initial states), T = 11 (declared), odd sizes, vs float64 (<= 1e-4)", async (name) => {
    const model = stdlibModel(name);
    const N = model.name;
    const mod = await import(pathToFileURL(join(OUT, `${N}.ts`)).href);
    const dims = smallDims(model, { K: 5, V: 3, P: 3, N: 5 });
    const device = new ChainFakeDevice();
    const { cudaPlan, cudaGradPlan, chunkedParts } = emulatedPlans(model, device);
    expect(chunkedParts, N).toEqual(name === "deltanet" ? ["augF", "augA"] : ["core", "coreT", "adjoint", "adjointT"]);
    for (const [B, T, init] of [[2, 70, true], [3, 1, true], [2, 11, false]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 7 + T, initialState: init });
      if (run.inputs.beta) run.inputs.beta = run.inputs.beta.map((x, i) => (i % 3 === 0 ? 1.5 + 0.4 * x : x + x));
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 3);
      const want = await gradients(model, run, cot);
      const m = await mod[N].create({ backend: "cuda", device, cudaPlan, cudaGradPlan, dims, params: f32(run.params), form: "sequential" });
      try {
        const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
        const launches = device.launches;
        const y = await m.forward(inputs, { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, returnFinalState: true, backward: "chunked" });
        const label = `${N} on cuda (emulated) B=${B} T=${T}${init ? " (given initial state)" : ""}`;
        expect(y.saved.backward, label).toBe("chunked");
        expect(y.saved.memory.bytes, label).toBe(0);
        for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(f64(y[k]), v), `${label}: output ${k}`).toBeLessThanOrEqual(1e-5);
        const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
        expect(device.launches - launches, `${label}: launches`).toBeGreaterThan(8);
        for (const kind of ["inputs", "params", "initialState"] as const)
          for (const [k, v] of Object.entries(want[kind])) {
            if (T > 1) expect(v.some((x) => x !== 0), `${label}: reference d/d ${kind} ${k} is not all zero`).toBe(true);
            expect(relativeError(f64(g[kind][k]), v), `${label}: d/d ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
          }
        expect(Object.keys(g.inputs).sort()).toEqual(Object.keys(run.inputs).sort());
      } finally {
        m.dispose();
      }
    }
  }, 900_000);

  it("a grad plan without the chain: backward 'chunked' says to compile again, auto takes the step backward", async () => {
    const model = stdlibModel("simple_gla");
    const mod = await import(pathToFileURL(join(OUT, "SimpleGla.ts")).href);
    const device = new ChainFakeDevice();
    const { cudaPlan, cudaGradPlan } = emulatedPlans(model, device);
    const { chunked: _c, ...old } = cudaGradPlan;
    const dims = { H: 2, K: 4, V: 3 };
    const m = await mod.SimpleGla.create({ backend: "cuda", device, cudaPlan, cudaGradPlan: old, dims, form: "sequential" });
    try {
      const run = chunkInputs(model, { dims, batch: 1, time: 2, seed: 3 });
      const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [1, 2, v.length / 2] }]));
      await expect(m.forward(inputs, { saveForBackward: true, backward: "chunked" })).rejects.toThrow(/no chunked backward chain .*compile again with `seqc compile --target cuda`/);
      const y = await m.forward(inputs, { saveForBackward: true });
      expect(y.saved.backward ?? "step").toBe("step");
      expect(m.backwardFor(1, 2).why).toMatch(/no chunked backward chain/);
    } finally {
      m.dispose();
    }
  }, 300_000);
});

describe("the chain's CUDA plans in <Model>.grad.cuda.json", () => {
  it("backwardFor on cuda: chunked where the CUDA forward picks its chunked form (long T), step at short T", async () => {
    const mod = await import(pathToFileURL(join(OUT, "SimpleGla.ts")).href);
    const device = new FakeCudaDevice({ bin: "/bin/false", forms: [], model: undefined as never });
    const m = await mod.SimpleGla.create({ backend: "cuda", device, cudaPlan: readJson("SimpleGla.cuda.json"), cudaGradPlan: readJson("SimpleGla.grad.cuda.json"), dims: { H: 4, K: 64, V: 64 } });
    try {
      expect(m.formFor(4, 8192)).toMatch(/^chunked\//);
      const long = m.backwardFor(4, 8192);
      expect(long.form, long.why).toBe("chunked");
      expect(long.why).toMatch(/the forward runs chunked\//);
      expect(m.formFor(1, 1)).not.toMatch(/^chunked\//);
      expect(m.backwardFor(1, 1).form).toBe("step");
      expect(m.backwardFor(4, 8192, { memory: "store" }).form).toBe("step");
    } finally {
      m.dispose();
    }
  }, 120_000);

  it("the cores keep the float32 chunked variants auto reaches: the same pick as with all of them over a grid of shapes", async () => {
    const device = new FakeCudaDevice({ bin: "/bin/false", forms: [], model: undefined as never });
    const cases: [string, string][] = [["simple_gla", "core"], ["gla", "coreT"], ["deltanet", "augF"]];
    let compared = 0;
    for (const [name, part] of cases) {
      const m = partModels(stdlibModel(name))[part];
      const full = keepForms(lowerCuda(m).plan, "chunked");
      const kept = chunkedOnlyPlan(m, lowerCuda(m).plan);
      if ("why" in kept) throw new Error(kept.why);
      expect(kept.forms.length, `${name} ${part}`).toBeLessThan(full.forms.length);
      expect(Object.keys(kept.modules ?? {}), `${name} ${part}`).toEqual(["f32"]);
      expect(kept.modules!.f32.source.length).toBeLessThan(full.modules!.f32.source.length);
      for (const f of kept.forms) expect(kept.modules!.f32.source, f.variant).toContain(`${(f.steps[0] as { entry: string }).entry}(`);
      for (const H of [1, 4, 16, 64])
        for (const K of [8, 64, 100, 128]) {
          const dims = { H, K, V: K };
          const a = await CudaModelRunner.create(full, { device: device as never, dims, form: "chunked" });
          const b = await CudaModelRunner.create(kept, { device: device as never, dims, form: "chunked" });
          for (const B of [1, 4, 32])
            for (const T of [1, 63, 64, 1000, 8192]) {
              expect(b.choose(B, T).plan.variant, `${name} ${part} B=${B} T=${T} ${JSON.stringify(dims)}`).toBe(a.choose(B, T).plan.variant);
              compared++;
            }
          a.dispose();
          b.dispose();
        }
    }
    expect(compared).toBe(3 * 16 * 15);
  }, 120_000);
});

const nvcc = findNvcc();
describe.skipIf(!nvcc)("nvcc -ptx of the emitted chain modules (sm_90)", () => {
  it("deltanet: the chunk transitions' module holds every entry its forms launch", () => {
    const c = JSON.parse(emitCuda(stdlibModel("deltanet"), { ptx: false }).find((f) => f.path === "DeltaNet.grad.cuda.json")!.contents).chunked as CudaChunkedTraining;
    if ("unavailable" in c) throw new Error(c.unavailable);
    const p = (c.plans as Record<string, CudaModelPlan>).augF;
    const { ptx } = nvccPtx(p.modules!.f32.source, 90, nvcc!, { lowPriority: true });
    const entries = [...new Set(p.forms.flatMap((f) => f.steps.map((s) => (s as { entry: string }).entry)))];
    expect(entries.length).toBeGreaterThan(3);
    for (const e of entries) expect(ptx, e).toMatch(new RegExp(`\\.entry ${e}\\(`));
  }, 600_000);
});
