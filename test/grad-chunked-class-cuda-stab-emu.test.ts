/**
 * The generated class of a stabilised form (mLSTM: max-plus stabiliser m, normaliser column n) trained through the
 * chunked backward on backend "cuda", on the CPU emulation of CUDA (test/cuda-emu): `seqc compile --target cuda` writes
 * the chain's CUDA plans into <Model>.grad.cuda.json (`chunked`: the four cores, prep, the backward models of prep and
 * post, the decay scan, and the stabiliser's prep and its backward, parts "stab" / "stabBw"), and the class's
 * backward() runs them through the real CudaModelRunner (runtime/trainer.ts, the glue of runtime/chunked-backward.ts
 * with runtime/chunked-backward-stab.ts's pass and adjoint): the cores at value extent V + 1 in their emitted split3
 * fp32 variant on the chunked emulator, the other parts in their plain forms. fp32 <= 1e-4 against the float64
 * reference gradients (gradients(): the adjoint recurrence on the interpreter) at odd sizes (K = 5, V = 3): T = 70
 * (a 64-token chunk and a partial one) with given C, n, m; T = 1 given; T = 11 declared (m = -inf); T = 77 with
 * saturated gates (both branches of the max taken, counted). A chain whose names swap the adjoints of the max's two
 * branches (a broken max-plus term) must fail the same bound. Needs g++.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, stdlibModel } from "./wgsl/support.ts";
import type * as I from "../compiler/ir/types.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { gradients } from "../compiler/grad/run.ts";
import { trainingModels } from "../compiler/grad/training.ts";
import { emitCuda } from "../compiler/backends/cuda/target.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import type { CudaChunkedTraining } from "../runtime/trainer.ts";
import type { ChainNames } from "../runtime/chunked-backward.ts";
import { ChainFakeDevice } from "./cuda-emu/chain-device.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
// inside the package, so that "seqc/runtime" resolves by package self-reference
const OUT = join(ROOT, "tmp", `chunked-class-cuda-stab-emu-${process.pid}`);

beforeAll(() => {
  if (!gpp) return;
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", join(ROOT, "stdlib", "mlstm.seq"), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
  // the CUDA plans as `seqc compile --target cuda` writes them (no PTX: the emulation compiles the source)
  for (const f of emitCuda(stdlibModel("mlstm"), { ptx: false })) if (f.path.endsWith(".json")) writeFileSync(join(OUT, f.path), f.contents);
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);
const readJson = (f: string) => JSON.parse(readFileSync(join(OUT, f), "utf8"));

/** How often the stabiliser's max took each branch at t >= 1 (a: logsigmoid(f) + m_{t-1} >= i; b: i). */
function branches(run: RunInputs, H: number): { a: number; b: number } {
  const { batch: B, time: T } = run;
  let a = 0, b = 0;
  for (let bb = 0; bb < B; bb++)
    for (let h = 0; h < H; h++) {
      let m = run.initialState?.m ? run.initialState.m[bb * H + h] : -Infinity;
      for (let t = 0; t < T; t++) {
        const o = (bb * T + t) * H + h, lf = -Math.log1p(Math.exp(-run.inputs.f[o])), i = run.inputs.i[o];
        if (t > 0) lf + m >= i ? a++ : b++;
        m = Math.max(lf + m, i);
      }
    }
  return { a, b };
}

describe.skipIf(!gpp)("mlstm's generated class: backward() on backend 'cuda' through the stabilised chunked backward (CPU emulation of CUDA)", () => {
  it("the chain's CUDA plans in <Model>.grad.cuda.json; T = 70, 1 (given C, n, m), 11 (declared), 77 saturated; vs float64 (<= 1e-4); swapped branches fail", async () => {
    const model = stdlibModel("mlstm");
    const N = model.name;
    const t = trainingModels(model);
    if (!t.ok || "why" in t.chain) throw new Error(t.ok ? (t.chain as { why: string }).why : t.why);
    const models = t.chain.models as Record<string, I.Model>;
    const grad = readJson(`${N}.grad.cuda.json`);
    const c = grad.chunked as CudaChunkedTraining;
    if ("unavailable" in c) throw new Error(c.unavailable);
    if (!("names" in c)) throw new Error("expected the transposed-core chain");
    expect(c.names.stab?.state).toBe("m");
    expect(c.names.columns?.states).toEqual(["n"]);
    expect(Object.keys(c.plans).sort()).toEqual(["adjoint", "adjointT", "core", "coreT", "decay", "postBw", "prep", "prepBw", "stab", "stabBw"]);
    expect(c.rowsReadout).toBeUndefined();
    const mod = await import(pathToFileURL(join(OUT, `${N}.ts`)).href);
    const dims = smallDims(model, { K: 5, V: 3 });
    const device = new ChainFakeDevice();
    const plans: Record<string, CudaModelPlan> = {};
    for (const [part, p] of Object.entries(c.plans as Record<string, CudaModelPlan>)) {
      if (p.forms.every((f) => f.form === "chunked")) {
        const v = p.forms.find((f) => /^chunked-split3-f32-k32-v16-r\d+$/.test(f.variant));
        if (!v) throw new Error(`${N} ${part}: no split3 f32 k32 v16 variant among ${p.forms.map((f) => f.variant).join(", ")}`);
        plans[part] = device.addChunked(models[part], p, v.variant);
      } else plans[part] = device.add(p);
    }
    const passes = Object.fromEntries(Object.entries(grad.passes ?? {}).map(([k, p]) => [k, device.add(p as CudaModelPlan)]));
    const cudaPlan = device.add(readJson(`${N}.cuda.json`));
    const gradPlan = (names: ChainNames) => ({ record: device.add(grad.record), backward: device.add(grad.backward), passes, chunked: { names, plans } });
    const H = dims.H;
    const cases = [[2, 70, true, false], [3, 1, true, false], [2, 11, false, false], [2, 77, true, true]] as const;
    let worstBroken = Infinity;
    for (const [B, T, init, stress] of cases) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 7 + T, initialState: init, stress });
      if (stress) {
        const n = branches(run, H);
        expect(Math.min(n.a, n.b), `both branches of the max at T=${T}: ${JSON.stringify(n)}`).toBeGreaterThan(20);
      }
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 3);
      const want = await gradients(model, run, cot);
      // the class as compiled, and (the saturated case) one whose chain hands the stabiliser's backward a's adjoint as
      // b's and b's as a's (the max's branches swapped in the adjoint alone; the forward and the pass unchanged)
      const st = c.names.stab!, ob = st.stabBw.outputBar;
      const broken: ChainNames = { ...c.names, stab: { ...st, stabBw: { ...st.stabBw, outputBar: { ...ob, [st.a]: ob[st.b], [st.b]: ob[st.a] } } } };
      for (const names of stress ? [c.names, broken] : [c.names]) {
        const m = await mod[N].create({ backend: "cuda", device, cudaPlan, cudaGradPlan: gradPlan(names), dims, params: f32(run.params), form: "sequential" });
        try {
          const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
          const launches = device.launches;
          const y = await m.forward(inputs, { ...(init ? { initialState: f32(run.initialState) } : {}), saveForBackward: true, returnFinalState: true, backward: "chunked" });
          const label = `${N} on cuda (emulated) B=${B} T=${T}${init ? " (given initial state)" : ""}${stress ? " saturated" : ""}${names === broken ? " (adjoint's branches swapped)" : ""}`;
          expect(y.saved.backward, label).toBe("chunked");
          for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(f64(y[k]), v), `${label}: output ${k}`).toBeLessThanOrEqual(1e-4);
          const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
          expect(device.launches - launches, `${label}: launches`).toBeGreaterThan(10);
          let worst = 0;
          for (const kind of ["inputs", "params", "initialState"] as const)
            for (const [k, v] of Object.entries(want[kind])) {
              if (kind === "initialState" && !init && k === "m") continue; // (declared m0 = -inf)
              // (declared m0 = -inf scales C0 and n0 by exp(-inf) = 0: their gradients are 0)
              if (T > 1 && (kind === "inputs" || init)) expect(v.some((x) => x !== 0), `${label}: reference d/d ${kind} ${k} is not all zero`).toBe(true);
              const got = g[kind][k] as Float32Array;
              expect(got instanceof Float32Array, `${label}: d/d ${kind} ${k} is a Float32Array`).toBe(true);
              const e = relativeError(f64(got), v);
              worst = Math.max(worst, e);
              if (names !== broken) expect(e, `${label}: d/d ${kind} ${k}`).toBeLessThanOrEqual(1e-4);
            }
          console.log(`${label}: worst relative error ${worst.toExponential(2)}`);
          if (names === broken) worstBroken = worst;
          else expect(Object.keys(g.inputs).sort()).toEqual(Object.keys(run.inputs).sort());
        } finally {
          m.dispose();
        }
      }
    }
    expect(worstBroken, "the chain with the max's branches swapped in the stabiliser's adjoint").toBeGreaterThan(1e-3);
  }, 900_000);
});
