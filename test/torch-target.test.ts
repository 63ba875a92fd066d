/**
 * `seqc compile --target torch` without a GPU (and without torch: not installed on CI machines, so the
 * generated modules are not imported here; bench/torch/check.py runs them on the H100):
 *   - the emitted Python of every stdlib model and the Python runtime compile (python3 -m py_compile);
 *   - DeltaNet.py matches its baseline (test/torch/DeltaNet.py.baseline; after an intended change:
 *     SEQC_ACCEPT_TORCH=1 npx vitest run test/torch-target.test.ts, review, commit);
 *   - the Python plan runner (runtime/torch/seqc_cuda.py, fake driver) issues the same launches as the
 *     Node runner (runtime/cuda/runner.ts, fake device) for the forward, recording and backward plans:
 *     entries, grids, blocks, shared memory, cooperative flags, buffer bindings, uniform and override
 *     structs, workspace clears;
 *   - shape checks and compile-time errors.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readdirSync } from "node:fs";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch, TORCH_RUNTIME_FILES } from "../compiler/backends/torch/target.ts";
import { pythonModule } from "../compiler/backends/torch/python.ts";
import { irText } from "../compiler/targets.ts";
import { buildTorchPlans, type PlanKey } from "../compiler/backends/torch/plans.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import type { CudaDevice, KernelArg, LaunchConfig, CudaBuffer } from "../runtime/cuda/device.ts";
import { evalSize } from "../runtime/plan.ts";
import { RecordingCudaDevice } from "./cuda-emu/recording-device.ts";

const python = spawnSync("python3", ["--version"]).status === 0;
if (!python) console.warn("torch-target.test: python3 is not installed; the Python checks are skipped");
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const names = readdirSync("stdlib").filter((f) => f.endsWith(".seq")).map((f) => f.replace(/\.seq$/, "")).sort();

type Event = { kind: "launch"; entry: string; grid: number[]; block: number; shared: number; cooperative: boolean; args: unknown[] } | { kind: "zero"; buffer: string; bytes: number };

/** A CudaDevice stand-in that records what the Node runner enqueues. */
class RecordingDevice extends RecordingCudaDevice<Event> {
  names = new Map<bigint, string>();
  override fill32(dst: CudaBuffer): void {
    this.events.push({ kind: "zero", buffer: this.names.get(dst.ptr) ?? "?", bytes: dst.bytes });
  }
  override launch(fn: { name: string }, cfg: LaunchConfig, args: KernelArg[]): void {
    const out = args.map((a) => ("ptr" in a ? { ptr: this.names.get(a.ptr) ?? "?" } : "u32" in a ? { u32: a.u32 } : "bytes" in a ? { struct: Array.from({ length: a.bytes.length / 4 }, (_, i) => a.bytes.readUInt32LE(i * 4)) } : a));
    this.events.push({ kind: "launch", entry: fn.name, grid: [cfg.grid[0], cfg.grid[1] ?? 1], block: cfg.block[0], shared: cfg.sharedBytes ?? 0, cooperative: !!cfg.cooperative, args: out });
  }
}

interface Case { model: string; key: PlanKey; dims: Record<string, number>; B: number; T: number; form?: string; omit?: string[]; init?: boolean }

async function nodeLaunches(plan: CudaModelPlan, c: Case): Promise<{ variant: string; events: Event[] }> {
  const dev = new RecordingDevice();
  const size = (shape: (number | string | unknown[])[]) => shape.reduce<number>((a, s) => a * evalSize(s as never, c.dims), 1);
  const params: Record<string, Float32Array> = {};
  for (const t of plan.tensors.filter((x) => x.role === "param" && !c.omit?.includes(x.name))) params[t.name] = new Float32Array(size(t.shape));
  const runner = await CudaModelRunner.create(plan, { dims: c.dims, params, device: dev as unknown as CudaDevice, form: c.form ?? "auto" });
  const inputs: Record<string, Float32Array> = {};
  for (const t of plan.tensors.filter((x) => x.role === "input" && !c.omit?.includes(x.name))) inputs[t.name] = new Float32Array(c.B * c.T * size(t.shape));
  const init: Record<string, Float32Array> = {};
  if (c.init) for (const t of plan.tensors.filter((x) => x.role === "state")) init[t.name] = new Float32Array(c.B * size(t.shape));
  await runner.ensureModule(runner.pick(c.B, c.T, c.form ?? "auto").form);
  const p = runner.prepare(inputs, { batch: c.B, initialState: init, form: c.form ?? "auto" });
  const priv = p as unknown as { bufs: Map<string, CudaBuffer>; statesBuf: CudaBuffer; initStates: CudaBuffer };
  const wsOrder = p.form.workspaces.map((w) => w.name);
  for (const [k, b] of priv.bufs) dev.names.set(b.ptr, k.startsWith("workspace:") ? `workspace${wsOrder.indexOf(k.slice(10)) + 1}` : k);
  dev.names.set(priv.statesBuf.ptr, "states");
  dev.names.set(priv.initStates.ptr, "initialStates");
  dev.names.set((runner as unknown as { paramsBuf: CudaBuffer }).paramsBuf.ptr, "params");
  p.enqueue(dev.stream() as never);
  return { variant: p.form.variant, events: dev.events };
}

function pythonLaunches(plan: CudaModelPlan, c: Case): { variant: string; events: Event[] } {
  const dir = mkdtempSync(join(tmpdir(), "seqc-torch-"));
  const optional = new Set(plan.tensors.filter((t) => t.optional).map((t) => t.name));
  const has = plan.tensors.filter((t) => (t.role === "input" || t.role === "param") && optional.has(t.name) && !c.omit?.includes(t.name)).map((t) => t.name);
  const init = c.init ? plan.tensors.filter((t) => t.role === "state").map((t) => t.name) : [];
  writeFileSync(join(dir, "req.json"), JSON.stringify({ plan, dims: c.dims, B: c.B, T: c.T, has, init, form: c.form ?? "auto" }));
  const r = spawnSync("python3", ["test/torch/launches.py", "runtime/torch", join(dir, "req.json")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  const out = JSON.parse(r.stdout) as { variant: string; events: (Event | { kind: string })[] };
  return { variant: out.variant, events: out.events.filter((e): e is Event => e.kind === "launch" || e.kind === "zero") };
}

const CASES: Case[] = [
  { model: "deltanet", key: "forward", dims: { H: 3, K: 16, V: 7 }, B: 2, T: 37 },
  { model: "deltanet", key: "forward", dims: { H: 3, K: 16, V: 7 }, B: 2, T: 37, form: "sequential", init: true },
  { model: "deltanet", key: "record", dims: { H: 3, K: 16, V: 7 }, B: 2, T: 5, init: true },
  { model: "deltanet", key: "backward", dims: { H: 3, K: 16, V: 7 }, B: 2, T: 5, init: true },
  { model: "gla", key: "forward", dims: { H: 2, K: 64, V: 64 }, B: 4, T: 300 },
  { model: "lstm", key: "forward", dims: { H: 64, I: 32 }, B: 8, T: 16 },
  { model: "lstm", key: "record", dims: { H: 64, I: 32 }, B: 8, T: 16, init: true, omit: ["bias_hh_l0"] },
  { model: "lstm", key: "backward", dims: { H: 5, I: 3 }, B: 2, T: 4 },
  { model: "lstm", key: "pass:weight_hh_l0", dims: { H: 5, I: 3 }, B: 8, T: 1 },
  // the backward core in the persistent cell (hoisted GEMMs, a cooperative kernel), the input pass's matrix product
  { model: "lstm", key: "backward", dims: { H: 64, I: 32 }, B: 8, T: 16, init: true },
  { model: "gru", key: "backward", dims: { H: 64, I: 32 }, B: 3, T: 5 },
  { model: "lstm", key: "pass:x", dims: { H: 5, I: 3 }, B: 3, T: 4 },
  { model: "gru", key: "pass:bias_ih_l0", dims: { H: 5, I: 3 }, B: 3, T: 4 },
  { model: "hgrn", key: "record", dims: { D: 1000 }, B: 2, T: 3000 },
  { model: "mamba", key: "backward", dims: { D: 5, N: 4 }, B: 2, T: 3, omit: ["z", "D"] },
  { model: "mamba", key: "pass:A", dims: { D: 5, N: 4 }, B: 2, T: 3, omit: ["z", "D"] },
  { model: "mamba2", key: "forward", dims: { H: 2, P: 6, N: 4 }, B: 1, T: 70 },
  { model: "gla", key: "chain:adjointT", dims: { H: 2, K: 64, V: 64 }, B: 2, T: 100, init: true },
  { model: "simple_gla", key: "chain:decay", dims: { H: 2, K: 64 }, B: 3, T: 50, init: true },
];

describe.skipIf(!python)("seqc compile --target torch", () => {
  it("emits Python that compiles for every stdlib model (py_compile), and the runtime", () => {
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-py-"));
    // the module text of every model (the plans only feed its docstring's variant lists; emitTorch builds them for DeltaNet below)
    for (const name of names) {
      const m = load(name);
      writeFileSync(join(dir, `${m.name}.py`), pythonModule(m, { irText: irText(m), forwardForms: ["sequential"], backwardForms: ["sequential"], bakedDims: {}, sms: [80, 90] }));
    }
    for (const f of TORCH_RUNTIME_FILES) writeFileSync(join(dir, f), readFileSync(join("runtime/torch", f), "utf8"));
    const py = readdirSync(dir).filter((f) => f.endsWith(".py"));
    expect(py.length).toBe(names.length + TORCH_RUNTIME_FILES.length);
    const r = spawnSync("python3", ["-m", "py_compile", ...py.map((f) => join(dir, f))], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("DeltaNet.py matches its baseline", () => {
    const py = emitTorch(load("deltanet"), { ptx: false }).find((f) => f.path === "DeltaNet.py")!.contents;
    const path = "test/torch/DeltaNet.py.baseline";
    if (process.env.SEQC_ACCEPT_TORCH === "1") writeFileSync(path, py);
    expect(existsSync(path), "no baseline: SEQC_ACCEPT_TORCH=1 npx vitest run test/torch-target.test.ts").toBe(true);
    expect(py, "DeltaNet.py differs from test/torch/DeltaNet.py.baseline; if intended, accept it (see the file header)").toBe(readFileSync(path, "utf8"));
  });

  it.each(CASES.map((c) => [`${c.model} ${c.key} B=${c.B} T=${c.T}${c.form ? ` form=${c.form}` : ""}${c.omit ? ` without ${c.omit.join(",")}` : ""}`, c] as const))(
    "Python and Node runners launch the same: %s",
    async (_label, c) => {
      const plan = buildTorchPlans(load(c.model), {}).plans[c.key];
      const node = await nodeLaunches(plan, c);
      const py = pythonLaunches(plan, c);
      expect(py.variant).toBe(node.variant);
      expect(py.events.length).toBeGreaterThan(0);
      expect(py.events).toEqual(node.events);
    },
    60_000,
  );

  it("the float64 plans' kernels are double throughout (buffers, locals, math)", () => {
    const src = buildTorchPlans(load("lstm"), {}).plans.backward64.source;
    const kernels = src.slice(src.indexOf("extern \"C\""));
    expect(kernels).toMatch(/double\* __restrict__/);
    expect(kernels).not.toMatch(/\bfloat\b/);
    expect(kernels).not.toMatch(/\b(expf|tanhf|logf|sqrtf|fabsf)\(/);
  });

  it("a model whose backward unrolls a loop needs its size at compile time", () => {
    expect(() => emitTorch(load("gated_deltaproduct"), { ptx: false })).toThrow(/--dims J=<n>/);
    const meta = JSON.parse(emitTorch(load("gated_deltaproduct"), { ptx: false, dims: { J: 2 } }).find((f) => f.path.endsWith(".torch.json"))!.contents);
    expect(meta.bakedDims).toEqual({ J: 2 });
  });
  it("the Node and Python runners both refuse a launch whose threads overflow 32-bit indices", async () => {
    // a partition of 2^33 elements, as a backward model over param-adjoint indices can reach: past 2^32 the kernels' u32 indices would wrap
    const base = buildTorchPlans(load("hgrn"), {}).plans.forward;
    const plan: CudaModelPlan = { ...base, forms: base.forms.filter((f) => f.variant === "thread").map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, k === "$BP" ? 2 ** 33 : e] as [string, typeof e]) })) };
    const c: Case = { model: "hgrn", key: "forward", dims: { D: 8 }, B: 2, T: 3, form: "sequential" };
    await expect(nodeLaunches(plan, c)).rejects.toThrow(/Hgrn: kernel \S+ needs \d+ threads at B=2, T=3, more than 32-bit indices reach \(4294967295\)/);
    expect(() => pythonLaunches(plan, c)).toThrow(/Hgrn: kernel \S+ needs \d+ threads at B=2, T=3, more than 32-bit indices reach \(4294967295\)/);
  });
});
