/**
 * The generated TypeScript classes: `seqc compile --target wgsl,ts` writes them for every stdlib
 * model (and `--target cuda` the CUDA plans next to them), they type-check with tsc next to a user's
 * scripts on both backends, depend on seqc/runtime only, and a user-style script
 * (test/wgsl/user-script.ts) runs the generated Lstm: forward() against the float64 interpreter,
 * step() token by token against forward(), and the input checks. Backend "cuda": without a driver,
 * one sentence (test/wgsl/user-script-cuda.ts); with the CPU emulation of CUDA standing in for the
 * device, the generated classes run the plain CUDA forms against the interpreter.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { ROOT, STDLIB, stdlibModel } from "./wgsl/support.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { buildPlainEmu } from "./cuda-emu/plain.ts";
import { FakeCudaDevice } from "./cuda-emu/fake-device.ts";
import { randomRun, randomCotangents } from "./helpers/random.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import { emitCuda } from "../compiler/backends/cuda/target.ts";
import { MultiPlanFakeDevice } from "./cuda-emu/plain.ts";
import { gradients } from "../compiler/grad/run.ts";
import { trainingPlans } from "../compiler/codegen/training-plans.ts";
import { rankForms } from "../runtime/cost.ts";
import { rng } from "./helpers/random.ts";

/** The models whose CUDA plans are written next to the classes (--target cuda), for the cuda-backend tests. */
const CUDA_MODELS = ["lstm", "hgrn", "mamba"];
const gpp = spawnSync("g++", ["--version"]).status === 0;

// inside the package, so that "seqc/runtime" resolves by package self-reference (as in a user's project)
const OUT = join(ROOT, "tmp", `codegen-test-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", ...STDLIB.map((n) => join(ROOT, "stdlib", `${n}.seq`)), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
  // the CUDA plans as `seqc compile --target cuda` writes them (no PTX: nvcc takes minutes; the emulation compiles the source)
  for (const n of CUDA_MODELS) for (const f of emitCuda(stdlibModel(n), { ptx: false })) writeFileSync(join(OUT, f.path), f.contents);
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe("seqc compile --target wgsl,ts", () => {
  it("writes a class, a plan and WGSL kernels per model", () => {
    const files = readdirSync(OUT);
    for (const n of STDLIB) {
      const m = stdlibModel(n).name;
      expect(files, m).toContain(`${m}.ts`);
      expect(files, m).toContain(`${m}.plan.json`);
      expect(files, m).toContain(`${m}_seq_thread.wgsl`);
    }
    expect(files).toContain("Hgrn_scan_tile.wgsl");
    for (const n of CUDA_MODELS) expect(files).toContain(`${stdlibModel(n).name}.cuda.json`);
    for (const n of CUDA_MODELS) expect(files).toContain(`${stdlibModel(n).name}.grad.cuda.json`);
    expect(files).not.toContain("Lstm_scan_tile.wgsl");
  });

  it("generated modules import seqc/runtime and nothing of the compiler", () => {
    for (const f of readdirSync(OUT).filter((x) => x.endsWith(".ts"))) {
      const text = readFileSync(join(OUT, f), "utf8");
      const imports = [...text.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]);
      expect(imports, f).toEqual(["seqc/runtime"]);
    }
  });

  it("type-check with tsc, together with a user's script", () => {
    copyFileSync(join(ROOT, "test/wgsl/user-script.ts"), join(OUT, "user-script.ts"));
    copyFileSync(join(ROOT, "test/wgsl/user-script-cuda.ts"), join(OUT, "user-script-cuda.ts"));
    writeFileSync(join(OUT, "tsconfig.json"), JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true, types: ["node"] },
      include: ["*.ts"],
    }));
    let out = "";
    try {
      execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(OUT, "tsconfig.json")], { cwd: ROOT, stdio: "pipe" });
    } catch (e) {
      out = String((e as { stdout?: Buffer }).stdout ?? e);
    }
    expect(out).toBe("");
  }, 300_000);

  it("a type error in user code is caught (the check can fail)", () => {
    writeFileSync(join(OUT, "bad-user.ts"), `import { Hgrn } from "./Hgrn.ts";\nconst m = await Hgrn.create({ dims: { D: 4 } });\nawait m.forward({ x: new Float32Array(4) });\nawait Hgrn.create({ backend: "webgpu", dims: { D: 4 }, dtype: "bf16" });\n`);
    let out = "";
    try {
      execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(OUT, "tsconfig.json")], { cwd: ROOT, stdio: "pipe" });
    } catch (e) {
      out = String((e as { stdout?: Buffer }).stdout ?? e);
    } finally {
      rmSync(join(OUT, "bad-user.ts"));
    }
    expect(out).toMatch(/bad-user\.ts.*Property 'g' is missing/);
    // dtype is an option of backend "cuda" only
    expect(out).toMatch(/bad-user\.ts\(4,.*'dtype'/);
  }, 300_000);
});

describe("a user's script runs the generated Lstm", () => {
  let r: Record<string, unknown>;
  beforeAll(() => {
    const out = execFileSync(process.execPath, ["--import", "tsx", join(OUT, "user-script.ts"), OUT], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }).toString();
    r = JSON.parse(out.trim().split("\n").pop()!);
  }, 300_000);

  it("forward() matches the float64 interpreter, step() matches forward()", () => {
    const model = stdlibModel("lstm");
    const f64 = (k: string) => Float64Array.from(r[k] as number[]);
    const params = r.params as Record<string, number[]>;
    const want = interpret(model, {
      dims: { H: 5, I: 3 }, batch: 2, time: 6, inputs: { x: f64("x") },
      params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Float64Array.from(v)])),
      initialState: { h: f64("h0"), c: f64("c0") },
    });
    expect(relativeError(f64("output"), want.outputs.output)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(f64("h"), want.finalState.h)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(f64("c"), want.finalState.c)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(f64("stepped"), f64("output"))).toBeLessThanOrEqual(1e-6);
    expect(relativeError(f64("stepH"), f64("h"))).toBeLessThanOrEqual(1e-6);
  });

  it("bad inputs throw errors that name the tensor and the expected shape", () => {
    const e = r.errors as string[];
    expect(e[0]).toMatch(/input 'x' has shape \[2, 6, 4\], expected \[B=2, T=6, I=3\]/);
    expect(e[1]).toMatch(/input 'x' must be a Float32Array or a GPUBuffer.*got a Float64Array/);
    expect(e[2]).toMatch(/Lstm has no input 'y'; its inputs are x/);
    expect(e[3]).toMatch(/initial state 'h' has 3 elements, expected shape \[B=\d+, H=5\]/);
    expect(e[4]).toMatch(/missing param 'weight_hh_l0' of shape \[4, H=5, H=5\]/);
    expect(e[5]).toMatch(/dim 'H' must be a positive integer, got 0/);
  });

  it("the cost model picks the scan form for a long HGRN sequence", () => {
    expect(r.form).toBe("scan/tile");
  });
});

describe("backend 'cuda' of the generated classes", () => {
  it("without an NVIDIA driver, create() fails with one sentence and WebGPU runs on", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", join(OUT, "user-script-cuda.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }).toString();
    const r = JSON.parse(out.trim().split("\n").pop()!);
    if (existsSync("/dev/nvidiactl")) return; // a machine with a driver runs it instead (bench/cuda/class-check.ts)
    expect(r.cuda).toMatch(/^CudaUnavailableError: CUDA is not available .*\.$/);
    expect(r.cuda, "one sentence").not.toMatch(/\.\s+[A-Z]/);
    expect(r.webgpu).toEqual({ backend: "webgpu", length: 2 * 5 });
  }, 300_000);

  it("a missing CUDA plan is named, with the command that writes it", async () => {
    const { Gru } = await import(pathToFileURL(join(OUT, "Gru.ts")).href);
    const fake = new FakeCudaDevice({ bin: "/bin/false", forms: [], model: undefined as never });
    await expect(Gru.create({ backend: "cuda", device: fake, dims: { H: 2, I: 2 }, params: {} })).rejects.toThrow(/Gru\.cuda\.json does not exist; compile the model with `seqc compile --target ts,cuda`/);
  });

  const cases: [string, string, Record<string, number>][] = [
    ["lstm", "thread", { H: 5, I: 3 }],
    ["lstm", "workgroup", { H: 5, I: 3 }],
    ["lstm", "global", { H: 5, I: 3 }],
    ["hgrn", "tile", { D: 7 }],
    ["mamba", "thread", { D: 3, N: 2 }],
  ];
  it.skipIf(!gpp).each(cases)("%s on the CPU emulation of CUDA (%s): forward() and step() vs the float64 interpreter", async (name, variant, dims) => {
    const model = stdlibModel(name);
    const N = model.name;
    const mod = await import(pathToFileURL(join(OUT, `${N}.ts`)).href);
    const full = JSON.parse(readFileSync(join(OUT, `${N}.cuda.json`), "utf8")) as CudaModelPlan;
    const { build, plan } = buildPlainEmu(full);
    const device = new FakeCudaDevice(build);
    for (const [B, T] of [[2, 7], [1, 1]]) {
      const run = randomRun(model, { dims, batch: B, time: T, seed: 11 + T, initialState: true });
      if (run.inputs.g) run.inputs.g = run.inputs.g.map((x) => -Math.abs(x));
      const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
      const m = await mod[N].create({ backend: "cuda", device, cudaPlan: plan, dims, params: f32(run.params), form: variant });
      expect(m.backend).toBe("cuda");
      expect(m.formFor(B, T)).toMatch(new RegExp(`/${variant}$`));
      const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
      const got = await m.forward(inputs, { initialState: f32(run.initialState), returnFinalState: true });
      const want = interpret(model, run);
      for (const [k, v] of Object.entries(want.outputs)) expect(relativeError(Float64Array.from(got[k]), v), `${N} ${variant} B=${B} T=${T} ${k}`).toBeLessThanOrEqual(1e-5);
      for (const [k, v] of Object.entries(want.finalState)) expect(relativeError(Float64Array.from(got.finalState[k]), v), `${N} ${variant} final ${k}`).toBeLessThanOrEqual(1e-5);
      if (T === 1) {
        const stepIn = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, v.length / B] }]));
        const s = await m.step(stepIn, f32(run.initialState));
        for (const k of Object.keys(want.outputs)) expect(relativeError(Float64Array.from(s[k]), Float64Array.from(got[k])), `step ${k}`).toBeLessThanOrEqual(1e-6);
        for (const k of Object.keys(want.finalState)) expect(relativeError(Float64Array.from(s.state[k]), Float64Array.from(got.finalState[k])), `step state ${k}`).toBeLessThanOrEqual(1e-6);
      }
      await expect(m.forwardOnDevice(inputs)).rejects.toThrow(/WebGPU feature; on backend 'cuda' use forward\(\)/);
      m.dispose();
    }
  }, 300_000);
});

describe("backward() of the generated classes", () => {
  const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));
  const f64 = (x: Float32Array | undefined) => Float64Array.from(x ?? []);

  /** forward({ saveForBackward }) + backward() of the class against gradients() on the float64 interpreter. */
  async function checkClass(name: string, dims: Record<string, number>, open: (mod: Record<string, any>, N: string, params: Record<string, Float32Array>) => Promise<any>, memories: unknown[], dir = OUT) {
    const model = stdlibModel(name);
    const N = model.name;
    const mod = await import(pathToFileURL(join(dir, `${N}.ts`)).href);
    const B = 2, T = 7;
    const run = randomRun(model, { dims, batch: B, time: T, seed: 31, initialState: true });
    if (run.inputs.delta) run.inputs.delta = run.inputs.delta.map((x) => x - 1);
    const ref = interpret(model, run);
    const cot = randomCotangents(ref, 9);
    const want = await gradients(model, run, cot);
    const m = await open(mod, N, f32(run.params));
    const inputs = Object.fromEntries(Object.entries(f32(run.inputs)).map(([k, v]) => [k, { data: v, shape: [B, T, v.length / (B * T)] }]));
    for (const memory of memories) {
      const y = await m.forward(inputs, { initialState: f32(run.initialState), saveForBackward: true, returnFinalState: true, memory });
      for (const [k, v] of Object.entries(ref.outputs)) expect(relativeError(f64(y[k]), v), `${N} ${JSON.stringify(memory)} output ${k}`).toBeLessThanOrEqual(1e-5);
      const g = await m.backward({ ...f32(cot.outputs), finalState: f32(cot.finalState) }, y.saved);
      const label = `${N} on ${m.backend}, memory ${JSON.stringify(memory)} (${y.saved.memory.policy})`;
      for (const [k, v] of Object.entries(want.inputs)) expect(relativeError(f64(g.inputs[k]), v), `${label}: d/d input ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.params)) expect(relativeError(f64(g.params[k]), v), `${label}: d/d param ${k}`).toBeLessThanOrEqual(1e-4);
      for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(f64(g.initialState[k]), v), `${label}: d/d initial ${k}`).toBeLessThanOrEqual(1e-4);
      await expect(m.backward({}, y.saved)).rejects.toThrow(/already used by a backward\(\)/);
    }
    await expect(m.backward({ nope: new Float32Array(1) }, (await m.forward(inputs, { saveForBackward: true })).saved)).rejects.toThrow(/has no output 'nope'/);
    m.dispose();
  }

  it("Hgrn and Mamba on WebGPU: the backward core and the param passes have scan forms, auto takes them on long sequences; store and checkpoints vs float64", async () => {
    for (const [name, dims] of [["hgrn", { D: 5 }], ["mamba", { D: 3, N: 2 }]] as const) {
      const info = trainingPlans(stdlibModel(name));
      if ("unavailable" in info) throw new Error(info.unavailable);
      for (const plan of [info.backward, ...Object.values(info.passes ?? {})]) {
        expect(plan.forms.some((f) => f.form === "scan"), plan.model).toBe(true);
        expect(rankForms(plan.forms, { ...dims, B: 4, T: 1 << 16, LIMIT_SHARED: 16384, LIMIT_THREADS: 256 })[0].form.form, plan.model).toBe("scan"); // WebGPU defaults
      }
      await checkClass(name, dims, (mod, N, params) => mod[N].create({ dims, params }), ["store", { every: 3 }]);
    }
  }, 600_000);

  it("Lstm on WebGPU: store and checkpoints every 3 steps vs the float64 reference gradients (<= 1e-4)", async () => {
    await checkClass("lstm", { H: 3, I: 2 }, (mod, N, params) => mod[N].create({ dims: { H: 3, I: 2 }, params }), ["store", { every: 3 }]);
  }, 600_000);

  it.skipIf(!gpp).each([
    ["lstm", { H: 3, I: 2 }],
    ["mamba", { D: 3, N: 2 }],
  ] as [string, Record<string, number>][])("%s on the CPU emulation of CUDA: forward, recording forward and backward model through the CUDA runner", async (name, dims) => {
    const N = stdlibModel(name).name;
    const device = new MultiPlanFakeDevice();
    const cudaPlan = device.add(JSON.parse(readFileSync(join(OUT, `${N}.cuda.json`), "utf8")));
    const grad = JSON.parse(readFileSync(join(OUT, `${N}.grad.cuda.json`), "utf8"));
    const passes = Object.fromEntries(Object.entries(grad.passes ?? {}).map(([k, p]) => [k, device.add(p as never)]));
    const cudaGradPlan = { record: device.add(grad.record), backward: device.add(grad.backward), passes };
    await checkClass(name, dims, (mod, n, params) => mod[n].create({ backend: "cuda", device, cudaPlan, cudaGradPlan, dims, params, form: "sequential" }), ["auto", { every: 2 }]);
  }, 600_000);

  it("a model whose backward depends on a dim bound at create() says so", async () => {
    const { GatedDeltaProduct } = await import(pathToFileURL(join(OUT, "GatedDeltaProduct.ts")).href);
    const m = await GatedDeltaProduct.create({ dims: { H: 1, K: 2, V: 2, J: 2 } });
    const x = (n: number) => ({ data: new Float32Array(n), shape: [1, 1, n] });
    await expect(m.forward({ q: x(2), k: x(4), v: x(4), beta: x(2), g: x(1) }, { saveForBackward: true })).rejects.toThrow(/GatedDeltaProduct's step loops over J, and its backward is built per value of J: compile with --dims J=<size>/);
    m.dispose();
  }, 300_000);

  it("compiled with --dims J=2, GatedDeltaProduct trains at J=2 (WebGPU vs float64) and refuses J=3", async () => {
    const dir = join(OUT, "dims");
    execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", join(ROOT, "stdlib/gated_deltaproduct.seq"), "--target", "ts", "--dims", "J=2", "--out", dir], { cwd: ROOT, stdio: "pipe" });
    await checkClass("gated_deltaproduct", { H: 2, K: 3, V: 2, J: 2 }, (mod, N, params) => mod[N].create({ dims: { H: 2, K: 3, V: 2, J: 2 }, params }), ["store", { every: 3 }], dir);
    const { GatedDeltaProduct } = await import(pathToFileURL(join(dir, "GatedDeltaProduct.ts")).href);
    const m = await GatedDeltaProduct.create({ dims: { H: 1, K: 2, V: 2, J: 3 } });
    const x = (n: number) => ({ data: new Float32Array(n), shape: [1, 1, n] });
    await expect(m.forward({ q: x(2), k: x(6), v: x(6), beta: x(3), g: x(1) }, { saveForBackward: true })).rejects.toThrow(/built for J=2 \(seqc compile --dims J=2\), this instance has J=3/);
    m.dispose();
  }, 600_000);
});
