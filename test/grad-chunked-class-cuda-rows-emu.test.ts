/**
 * The generated class's chunked backward on backend "cuda" with a per-key decay (Gla): the transposed cores
 * (dq = S dy; dk = G v in reversed time) on the rows readout kernel that <Model>.grad.cuda.json carries
 * (`chunked.rowsReadout`, compiler/backends/cuda/training-chain.ts) instead of their plans, launched by the runtime
 * (runtime/cuda/rows-readout.ts through runtime/trainer.ts), on the CPU emulation of CUDA (test/cuda-emu/rows-device.ts;
 * the other parts as in grad-chunked-class-cuda-emu.test.ts). fp32 <= 1e-4 against the float64 reference gradients at
 * odd sizes (K = 5, V = 3), T = 70, T = 1 (given initial states) and T = 11 (declared); the kernel ran (two launches per
 * backward) and the transposed-core plans did not; chunkedTransposed "plans" runs the plans (same bound), "kernel"
 * without the module is refused, "auto" without it falls back to the plans; broken launches (the pair's values and the
 * readout swapped, the initial state dropped) fail the bound. Needs g++. Also, in float64 without the emulation, the
 * chain's glue around ChainRows (runtime/chunked-backward.ts) with the kernel's recurrence in float64 <= 1e-9.
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
import { ROWS_READOUT_TILES, type RowsReadoutKernel } from "../compiler/backends/cuda/rows-readout.ts";
import { pickRowsKernel } from "../runtime/cuda/rows-readout.ts";
import { chainGradients } from "../compiler/grad/chunked-chain.ts";
import type { ChainRows } from "../runtime/chunked-backward.ts";
import type { FloatArray } from "../runtime/train.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import type { KernelArg } from "../runtime/cuda/device.ts";
import type { CudaChunkedTraining } from "../runtime/trainer.ts";
import { RowsChainFakeDevice } from "./cuda-emu/rows-device.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const OUT = join(ROOT, "tmp", `chunked-class-cuda-rows-emu-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", join(ROOT, "stdlib", "gla.seq"), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
  for (const f of emitCuda(stdlibModel("gla"), { ptx: false })) if (f.path.endsWith(".json")) writeFileSync(join(OUT, f.path), f.contents);
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);
const readJson = (f: string) => JSON.parse(readFileSync(join(OUT, f), "utf8"));
type Chain = Extract<CudaChunkedTraining, { names: unknown }>;

function chainOf(): Chain {
  const c = readJson("Gla.grad.cuda.json").chunked as CudaChunkedTraining;
  if (!("names" in c)) throw new Error("Gla: no chain of the matrix form");
  return c;
}

/** The class's CUDA plans on the emulation (grad-chunked-class-cuda-emu.test.ts's cut: each core its split3 fp32 k32 v16 variant), the rows module built. */
function emulatedPlans(model: I.Model, device: RowsChainFakeDevice, opts: { rows?: boolean } = {}) {
  const grad = readJson("Gla.grad.cuda.json");
  const c = grad.chunked as Chain;
  const t = trainingModels(model);
  if (!t.ok || "why" in t.chain) throw new Error("Gla: no chain");
  const models = t.chain.models as Record<string, I.Model>;
  const plans: Record<string, CudaModelPlan> = {};
  const coreEntries: Record<string, string[]> = {};
  for (const [part, p] of Object.entries(c.plans as Record<string, CudaModelPlan>)) {
    if (p.forms.every((f) => f.form === "chunked")) {
      const v = p.forms.find((f) => /^chunked-split3-f32-k32-v16-r\d+$/.test(f.variant));
      if (!v) throw new Error(`${part}: no split3 f32 k32 v16 variant`);
      plans[part] = device.addChunked(models[part], p, v.variant);
      coreEntries[part] = plans[part].forms.flatMap((f) => f.steps.map((s) => (s as { entry: string }).entry));
    } else plans[part] = device.add(p);
  }
  if (c.rowsReadout) device.addRows(c.rowsReadout as unknown as { source: string; kernels: RowsReadoutKernel[] });
  const { rowsReadout, ...rest } = c;
  const chunked = opts.rows === false ? { ...rest, plans } : { ...rest, plans, rowsReadout };
  const passes = Object.fromEntries(Object.entries(grad.passes ?? {}).map(([k, p]) => [k, device.add(p as CudaModelPlan)]));
  return { cudaPlan: device.add(readJson("Gla.cuda.json")), cudaGradPlan: { record: device.add(grad.record), backward: device.add(grad.backward), passes, chunked }, coreEntries };
}

const model = () => stdlibModel("gla");
const dims = () => smallDims(model(), { K: 5, V: 3 });
const isRows = (e: string) => e.startsWith("seqc_rows_readout_");

/** One forward + chunked backward of the class on the emulation; the largest relative error over the gradients, and the entries launched by backward(). */
async function runOnce(device: RowsChainFakeDevice, plans: ReturnType<typeof emulatedPlans>, B: number, T: number, init: boolean, extra: Record<string, unknown> = {}) {
  const m0 = model();
  const mod = await import(pathToFileURL(join(OUT, "Gla.ts")).href);
  const run = chunkInputs(m0, { dims: dims(), batch: B, time: T, seed: 7 + T, initialState: init });
  const ref = interpret(m0, run);
  const cot = randomCotangents(ref, T + 3);
  const want = await gradients(m0, run, cot);
  const m = await mod.Gla.create({ backend: "cuda", device, cudaPlan: plans.cudaPlan, cudaGradPlan: plans.cudaGradPlan, dims: dims(), params: f32(run.params), form: "sequential", ...extra });
  try {
    const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
    const y = await m.forward(inputs, { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, returnFinalState: true, backward: "chunked" });
    expect(y.saved.backward).toBe("chunked");
    const from = device.entries.length;
    const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
    const errors: Record<string, number> = {};
    for (const kind of ["inputs", "params", "initialState"] as const)
      for (const [k, v] of Object.entries(want[kind])) {
        if (T > 1) expect(v.some((x) => x !== 0), `reference d/d ${kind} ${k} is not all zero`).toBe(true);
        errors[`${kind} ${k}`] = relativeError(f64(g[kind][k]), v);
      }
    return { errors, worst: Math.max(...Object.values(errors)), entries: device.entries.slice(from) };
  } finally {
    m.dispose();
  }
}

describe.skipIf(!gpp)("Gla's chunked backward on backend 'cuda': the transposed cores on the rows readout kernel (CPU emulation of CUDA)", () => {
  it("T = 70, T = 1 (given initial states), T = 11 (declared), K = 5, V = 3: <= 1e-4 vs float64; the kernel ran, the transposed-core plans did not", async () => {
    const device = new RowsChainFakeDevice();
    const plans = emulatedPlans(model(), device);
    const transposed = new Set([...plans.coreEntries.coreT, ...plans.coreEntries.adjointT]);
    const others = new Set([...plans.coreEntries.core, ...plans.coreEntries.adjoint]);
    // the transposed cores' plans launch kernels of their own (else "did not run" below would say nothing)
    expect([...transposed].filter((e) => !others.has(e)).length).toBeGreaterThan(0);
    for (const [B, T, init] of [[2, 70, true], [3, 1, true], [2, 11, false]] as const) {
      const label = `B=${B} T=${T}${init ? " (given initial state)" : ""}`;
      const r = await runOnce(device, plans, B, T, init);
      for (const [k, e] of Object.entries(r.errors)) expect(e, `${label}: d/d ${k}`).toBeLessThanOrEqual(1e-4);
      // dq and dk: one launch each, the first tile (its value slice covers V = 3)
      expect(r.entries.filter(isRows), label).toEqual([`seqc_rows_readout_p1_r1_k${ROWS_READOUT_TILES[0].kr}_t${ROWS_READOUT_TILES[0].tv}_v${ROWS_READOUT_TILES[0].vt}_n${ROWS_READOUT_TILES[0].tt}`, `seqc_rows_readout_p1_r1_k${ROWS_READOUT_TILES[0].kr}_t${ROWS_READOUT_TILES[0].tv}_v${ROWS_READOUT_TILES[0].vt}_n${ROWS_READOUT_TILES[0].tt}`]);
      expect(r.entries.filter((e) => transposed.has(e) && !others.has(e)), label).toEqual([]);
      // the forward core and the adjoint still ran as plans
      expect(r.entries.filter((e) => others.has(e)).length, label).toBeGreaterThan(0);
    }
  }, 900_000);

  it("chunkedTransposed 'plans' runs the transposed-core plans (same bound); without the module 'auto' falls back to them and 'kernel' is refused", async () => {
    const device = new RowsChainFakeDevice();
    const plans = emulatedPlans(model(), device);
    const transposed = new Set([...plans.coreEntries.coreT, ...plans.coreEntries.adjointT].filter((e) => !plans.coreEntries.core.includes(e) && !plans.coreEntries.adjoint.includes(e)));
    const forced = await runOnce(device, plans, 2, 11, true, { chunkedTransposed: "plans" });
    expect(forced.worst).toBeLessThanOrEqual(1e-4);
    expect(forced.entries.filter(isRows)).toEqual([]);
    expect(forced.entries.filter((e) => transposed.has(e)).length).toBeGreaterThan(0);
    const none = emulatedPlans(model(), device, { rows: false });
    const auto = await runOnce(device, none, 2, 11, false);
    expect(auto.worst).toBeLessThanOrEqual(1e-4);
    expect(auto.entries.filter(isRows)).toEqual([]);
    await expect(runOnce(device, none, 1, 3, false, { chunkedTransposed: "kernel" })).rejects.toThrow(/chunkedTransposed 'kernel': the CUDA training plans carry no rows readout module/);
  }, 900_000);

  it("a broken launch fails: the pair's values and the readout swapped; the initial state dropped", async () => {
    const device = new RowsChainFakeDevice();
    const plans = emulatedPlans(model(), device);
    // one pair, one readout: pointers ld, a0, b0, c0, S0, out0, then u32 B, T, H, K, V, init
    const swaps: [string, (a: KernelArg[]) => KernelArg[]][] = [
      ["b0 and c0 swapped", (a) => [a[0], a[1], a[3], a[2], ...a.slice(4)]],
      ["init = 0", (a) => [...a.slice(0, 11), { u32: 0 }]],
    ];
    for (const [what, f] of swaps) {
      device.mutate = (_e, a) => f(a);
      const r = await runOnce(device, plans, 2, 11, true);
      expect(r.entries.filter(isRows).length, what).toBe(2);
      expect(r.worst, `${what}: ${JSON.stringify(r.errors)}`).toBeGreaterThan(1e-2);
    }
    device.mutate = undefined;
  }, 900_000);
});

describe("the chain's rows readout module in <Model>.grad.cuda.json", () => {
  it("Gla's chain carries it (float32, one pair and one readout, no 'smem' tiles); SimpleGla's (scalar decay) does not", () => {
    const c = chainOf();
    const m = c.rowsReadout!;
    expect(m.kernels.length).toBe(ROWS_READOUT_TILES.filter((t) => t.red !== "smem").length);
    for (const k of m.kernels) {
      expect([k.pairs, k.readouts, k.low]).toEqual([1, 1, undefined]);
      expect(m.source).toContain(`${k.entry}(`);
      expect(k.entry).not.toMatch(/_s$/);
    }
    const s = JSON.parse(emitCuda(stdlibModel("simple_gla"), { ptx: false }).find((f) => f.path === "SimpleGla.grad.cuda.json")!.contents).chunked;
    expect(s.names.decay).toBe("scalar");
    expect(s.rowsReadout).toBeUndefined();
  });

  it("pickRowsKernel: the first tile whose value slice covers V, else the widest; none past the shared memory or for another shape", () => {
    const ks = chainOf().rowsReadout!.kernels;
    expect(pickRowsKernel(ks, 1, 1, 64, 227 * 1024)!.entry).toBe(ks[0].entry);
    const wide = pickRowsKernel(ks, 1, 1, 1000, 227 * 1024)!;
    expect(wide.vs).toBe(Math.max(...ks.map((k) => k.vs)));
    expect(pickRowsKernel(ks, 2, 1, 64, 227 * 1024)).toBeUndefined();
    expect(pickRowsKernel(ks, 1, 1, 64, 1024)).toBeUndefined();
  });
});

/** The kernel's recurrence in float64 (out_r,t = S_t c_r,t, S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T), counting its calls. */
function rowsF64(calls: string[]): ChainRows {
  return async (part, ld, pairs, readouts, S0, { B, T, H, K, V }) => {
    calls.push(part);
    const outs: FloatArray[] = readouts.map(() => new Float64Array(B * T * H * K));
    const S = new Float64Array(K * V);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        S.set(S0.subarray((b * H + h) * K * V, (b * H + h + 1) * K * V));
        for (let t = 0; t < T; t++) {
          const rk = ((b * T + t) * H + h) * K, rv = ((b * T + t) * H + h) * V;
          for (let i = 0; i < K; i++) {
            const e = Math.exp(ld[rk + i]);
            for (let j = 0; j < V; j++) {
              let s = e * S[i * V + j];
              for (const [a, bb] of pairs) s += a[rk + i] * bb[rv + j];
              S[i * V + j] = s;
            }
            readouts.forEach((c, q) => {
              let acc = 0;
              for (let j = 0; j < V; j++) acc += S[i * V + j] * c[rv + j];
              outs[q][rk + i] = acc;
            });
          }
        }
      }
    return outs;
  };
}

describe("the chain's glue around the transposed cores' kernel (float64, chainGradients with ChainRows)", () => {
  it.each([["gla", 2], ["simple_gla", 0]] as const)("%s: <= 1e-9 vs gradients() at T = 11, 1 (given), 6 (declared); ChainRows called %i times per backward", async (name, calls) => {
    const m = stdlibModel(name);
    const d = smallDims(m, { K: 5, V: 3 });
    for (const [B, T, init] of [[2, 11, true], [1, 1, true], [2, 6, false]] as const) {
      const run = chunkInputs(m, { dims: d, batch: B, time: T, seed: 5 + T, initialState: init });
      const cot = randomCotangents(interpret(m, run), T + 1);
      const want = await gradients(m, run, cot);
      const seen: string[] = [];
      const got = await chainGradients(m, run, cot, undefined, { rows: rowsF64(seen) });
      expect(seen, `${name} T=${T}`).toEqual(calls ? ["coreT", "adjointT"] : []);
      for (const kind of ["inputs", "params", "initialState"] as const)
        for (const [k, v] of Object.entries(want[kind])) expect(relativeError(Float64Array.from(got[kind][k]), v), `${name} T=${T}: d/d ${kind} ${k}`).toBeLessThan(1e-9);
    }
  });
});
