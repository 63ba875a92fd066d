/**
 * The persistent matvec cell (compiler/backends/cuda/matvec-cell.ts) on the CPU emulation of CUDA
 * (test/cuda-emu/cell.ts: every block resident, the grid barrier, the hoisted GEMMs), through the real
 * CudaModelRunner, against the float64 interpreter:
 *   - the LSTM / GRU forwards (the state's previous value as the matvec vector);
 *   - their backward cores (compiler/grad/split.ts: the state-adjoint recurrence), whose matvec is the
 *     transposed W_hh^T times a let of the step (the gate adjoints), published mid-step: the variant the
 *     torch target's backward now runs. Odd batch, T = 1, given initial states, several units per block
 *     with a partial last block (3 SMs) and one unit per block (132 SMs).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { buildBackward } from "../compiler/grad/backward.ts";
import { splitParamAdjoints } from "../compiler/grad/split.ts";
import { hoistStateFree } from "../compiler/backends/cuda/matvec-cell-hoist.ts";
import { matvecCellPlan } from "../compiler/backends/cuda/matvec-cell.ts";
import { lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { emitCuda } from "../compiler/backends/cuda/target.ts";
import { trainingModels } from "../compiler/grad/training.ts";
import type { CudaModelPlan } from "../runtime/cuda/plan.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import { evalSize, type Env } from "../runtime/plan.ts";
import type { CudaDevice } from "../runtime/cuda/device.ts";
import { CellFakeDevice } from "./cuda-emu/cell.ts";
import { randomRun } from "./helpers/random.ts";

const gpp = spawnSync("g++", ["--version"]).status === 0;
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const core = (name: string) => splitParamAdjoints(buildBackward(load(name), {}, { paramAdjoints: "state" })).core;
/** The backward model a generated class trains with (compiler/grad/training.ts: the core, same-shape inputs packed). */
const classBackward = (name: string) => {
  const t = trainingModels(load(name));
  if (!t.ok) throw new Error(t.why);
  return t.backward;
};
/** The backward plan of <Model>.grad.cuda.json, as `seqc compile --target cuda` writes it for the class. */
const classGradPlan = (name: string): CudaModelPlan => JSON.parse(emitCuda(load(name), { ptx: false }).find((f) => f.path === `${load(name).name}.grad.cuda.json`)!.contents).backward;
const f32 = (x: Record<string, Float64Array> = {}) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float32Array.from(v)]));

describe("the backward core's transposed matvec is eligible for the persistent cell", () => {
  it("LSTM and GRU cores: one recurrent matvec, W_hh contracted over (gate, unit) with the gate adjoints (a let), result at the unit of W_hh's last axis", () => {
    for (const [name, vec] of [["lstm", "pre__v1__bar"], ["gru", "gh__v1__bar"]]) {
      const el = matvecCellPlan(core(name));
      if (!el.ok) throw new Error(`${name}: ${el.why}`);
      expect(el.plan.rterms.map((r) => [r.param, r.vec, r.vecKind]), name).toEqual([["weight_hh_l0", vec, "let"]]);
      expect(el.plan.rterms[0].pIdx, name).toEqual([{ kind: "k", at: 0 }, { kind: "k", at: 1 }, { kind: "row", at: 0 }]);
      // W_ih x and W_hh h_prev (the recomputed gates) are hoisted GEMMs; phase A ends where the matvec is read
      expect(el.plan.xterms.map((x) => [x.param, x.input]), name).toEqual([["weight_ih_l0", "x"], ["weight_hh_l0", "h__prev"]]);
      expect(el.plan.phaseA, name).toBeGreaterThan(0);
      expect(el.plan.body.slice(el.plan.phaseA).every((s) => I.tensorsOfKind(core(name), "state").some((t) => t.name === s.target) || s.k !== "let"), name).toBe(true);
      expect(lowerCuda(core(name)).plan.forms.map((f) => f.variant).slice(0, 4)).toEqual(["persistent-matvec-batch4", "persistent-matvec-batch2", "persistent-matvec-batch", "persistent-matvec-batch-256"]);
      expect(buildTorchPlans(load(name), {}).plans.backward.forms[0].variant).toBe("persistent-matvec-batch4");
    }
    // the forwards keep their state-vector matvec and no phase A; the cores' state-free work leaves the recurrence
    // (matvec-cell-hoist.ts: the recomputed gates and the factors the adjoints multiply), the forwards' does not (every gate reads the matvec)
    for (const [name, n] of [["lstm", 6], ["gru", 8]] as const) {
      const el = matvecCellPlan(core(name));
      if (!el.ok) throw new Error(el.why);
      const h = hoistStateFree(core(name), el.plan)!;
      expect(h.keys.length, name).toBe(n);
      // what stays a step: no call (no expf / tanhf on the serial chain)
      expect(h.body.some((s) => JSON.stringify(s.expr).includes('"k":"call","fn":"sigmoid"') || JSON.stringify(s.expr).includes('"fn":"tanh"')), name).toBe(false);
      const fe = matvecCellPlan(load(name));
      expect(fe.ok && hoistStateFree(load(name), fe.plan), name).toBe(undefined);
    }
    for (const name of ["lstm", "gru"]) {
      const el = matvecCellPlan(load(name));
      if (!el.ok) throw new Error(el.why);
      expect(el.plan.rterms.map((r) => r.vecKind)).toEqual(["state"]);
      expect(el.plan.phaseA).toBe(0);
    }
  });

  it("the generated class's CUDA backward (inputs packed: h_prev, c_prev and the output adjoint one input) hoists W_hh h_prev from its slice of the pack and lists the cell first", () => {
    for (const [name, packed] of [["lstm", 3], ["gru", 2]] as const) {
      const m = classBackward(name);
      const pack = I.tensorsOfKind(m, "input").find((t) => t.shape[0].kind === "lit")!;
      expect(pack.shape[0], name).toEqual({ kind: "lit", value: packed });
      const el = matvecCellPlan(m);
      if (!el.ok) throw new Error(`${name}: ${el.why}`);
      expect(el.plan.xterms.map((x) => [x.param, x.input, x.slice]), name).toEqual([["weight_ih_l0", "x", undefined], ["weight_hh_l0", pack.name, { at: 0, of: packed }]]);
      const plan = classGradPlan(name);
      expect(plan.forms.map((f) => f.variant).slice(0, 5), name).toEqual(["persistent-matvec-batch4", "persistent-matvec-batch2", "persistent-matvec-batch", "persistent-matvec-batch-256", "persistent-matvec"]);
      const gemm = plan.forms[0].steps.filter((s) => s.kind === "gemm");
      expect(gemm.map((g) => [g.a, g.aOffset, g.lda]), name).toEqual([[{ kind: "input", name: "x" }, undefined, undefined], [{ kind: "input", name: pack.name }, ["*", 0, "H"], ["*", packed, "H"]]]);
    }
  });

  it("what leaves the recurrence: maximal state-free subexpressions over the unit that hold a call, equal ones once; the lets they read go with them", () => {
    const src = (body: string) => `model M {\n  dims H\n  input x[H]\n  param U[H, H]\n  state h[H] = 0\n${body}\n}\n`;
    const hoist = (body: string) => {
      const m = loadProgram(["m.seq"], new Map([["m.seq", src(body)]])).models[0];
      const el = matvecCellPlan(m);
      if (!el.ok) throw new Error(el.why);
      return hoistStateFree(m, el.plan);
    };
    // a[j] read alone and inside sigmoid(x) * a: two values (the bare read of a state-free let, and the product);
    // tanh(U h) reads the state and stays; a leaves the recurrence with them
    const h = hoist("  let a[j] = tanh(x[j])\n  h[j] = a[j] * tanh(sum(m) U[j, m] * h[m]) + sigmoid(x[j]) * a[j] + sigmoid(x[j]) * a[j]")!;
    expect(h.keys).toEqual(["__K0", "__K1"]);
    expect(h.pre.map((s) => s.target)).toEqual(["a", "__K0", "__K1"]);
    expect(h.body.map((s) => s.target)).toEqual(["h"]);
    expect(JSON.stringify(h.body[0].expr).match(/__K1/g)?.length).toBe(2);
    // x ^ 2 is read as x * x where it moves
    const sq = hoist("  h[j] = tanh(x[j]) ^ 2 * tanh(sum(m) U[j, m] * h[m])")!;
    expect(sq.pre.map((s) => JSON.stringify(s.expr).includes('"op":"^"'))).toEqual([false]);
    // nothing state-free holds a call (x * 2): nothing moves (the forwards' case)
    expect(hoist("  h[j] = tanh(x[j] * 2 + sum(m) U[j, m] * h[m])")).toBe(undefined);
  });

  it("still refused: a matvec whose vector comes after another matvec, a sum over a let that reads no state, a vector read at other indices", () => {
    const src = (body: string) => `model M {\n  dims H\n  input x[H]\n  param U[H, H], V[H, H]\n  state h[H] = 0\n${body}\n}\n`;
    const m = (body: string) => loadProgram(["m.seq"], new Map([["m.seq", src(body)]])).models[0];
    const why = (body: string) => {
      const el = matvecCellPlan(m(body));
      return el.ok ? "ok" : el.why;
    };
    expect(why("  let a[j] = tanh(h[j])\n  h[j] = sum(m) U[m, j] * a[m]")).toBe("ok");
    expect(why("  let a[j] = tanh(sum(m) U[j, m] * h[m])\n  let c[j] = sum(m) V[m, j] * a[m]\n  h[j] = c[j]")).toMatch(/computed after another matvec/);
    expect(why("  let a[j] = x[j] * 2\n  h[j] = sum(m) U[m, j] * a[m]")).toMatch(/a sum over let a/);
    expect(why("  let a[j] = tanh(h[j])\n  h[j] = sum(m) U[m, m] * a[m]")).toMatch(/not indexed by the summed and the statement's variables/);
    // an input projection over a slice of an input is taken at literal leading indices only
    const src2 = (body: string) => `model M {\n  dims H\n  input x[2, H]\n  param U[H, H], W[H, H]\n  state h[H] = 0\n${body}\n}\n`;
    const el2 = (body: string) => matvecCellPlan(loadProgram(["m.seq"], new Map([["m.seq", src2(body)]])).models[0]);
    const ok2 = el2("  h[j] = tanh(sum(m) U[j, m] * h[m] + sum(i) W[j, i] * x[1, i])");
    expect(ok2.ok && ok2.plan.xterms[0].slice).toEqual({ at: 1, of: 2 });
    const bad2 = el2("  h[j] = tanh(sum(m) U[j, m] * h[m] + sum(i) W[j, i] * x[i, i])");
    expect(bad2.ok ? "ok" : bad2.why).toMatch(/not read as a vector \[i\] or a slice/);
  });
});

/** The choice between the cells (plan order, applicable, prefer: runtime/cuda/runner.ts pick) on an H100's limits. */
function picked(plan: CudaModelPlan, dims: Record<string, number>, B: number, T: number): string {
  const base: Env = { ...dims, B, T, LIMIT_SMS: 132, LIMIT_SMEM_OPTIN: 227 * 1024, LIMIT_SHARED: 227 * 1024, LIMIT_THREADS: 1024 };
  const ok = plan.forms.flatMap((f) => {
    const env: Env = { ...base };
    for (const [k, e] of f.vars) env[k] = evalSize(e, env);
    return f.form === "sequential" && (f.applicable === undefined || evalSize(f.applicable, env) !== 0) ? [{ f, env }] : [];
  });
  const pref = ok.filter(({ f, env }) => f.prefer === undefined || evalSize(f.prefer, env) !== 0);
  return (pref.length ? pref : ok)[0].f.variant;
}

describe("which cell runs: batch rows per block where the whole matrix fits one block's shared memory, units per block beyond", () => {
  it("LSTM and GRU forwards and backward cores on an H100 (132 SMs, 227 KiB)", () => {
    for (const name of ["lstm", "gru"]) {
      for (const m of [load(name), core(name)]) {
        const plan = lowerCuda(m).plan;
        // H = 32: 16 KiB (LSTM) of W_hh; 128 / 96 matvec rows a block, one a thread, each thread's row slice (32 values,
        // the cores' depth 4H / 3H in KS = 4 slices) in registers: -batch4 (timed faster than -batch2, bench/RESULTS.md)
        const core = m.name.endsWith("__backward");
        expect(picked(plan, { H: 32, I: 32 }, 64, 2048), `${m.name} H=32`).toBe("persistent-matvec-batch4");
        expect(picked(plan, { H: 16, I: 16 }, 64, 2048), `${m.name} H=16`).toBe("persistent-matvec-batch4");
        // matvec outputs a block computes: batch rows x matrix rows (4H / 3H forwards, H cores); above 128, 256 threads;
        // a core at H = 64 has one output a thread but a row slice of 4H / KS = 128 (LSTM) values: -batch2
        const big = core ? "persistent-matvec-batch2" : "persistent-matvec-batch-256";
        expect(picked(plan, { H: 64, I: 64 }, 64, 2048), `${m.name} H=64`).toBe(big);
        // 4 batch rows a block at B = 512 (BB = ceil(B / SMs)): 4 x 4H, 4 x 3H, 4 x H = 128
        expect(picked(plan, { H: 32, I: 32 }, 512, 64), `${m.name} B=512`).toBe(big);
        // W_hh no longer fits: the unit-partitioned cell
        expect(picked(plan, { H: 256, I: 256 }, 64, 2048), `${m.name} H=256`).toBe("persistent-matvec");
        expect(picked(plan, { H: 1024, I: 1024 }, 16, 1024), `${m.name} H=1024`).toBe("persistent-matvec");
        // float4 rows: H not a multiple of 4 leaves both cells out (the backend-neutral sequential form runs)
        expect(picked(plan, { H: 30, I: 30 }, 64, 2048), `${m.name} H=30`).not.toMatch(/^persistent-matvec/);
      }
    }
  });
});

const CASES = [
  { B: 3, T: 7, sms: 3, init: true },
  { B: 3, T: 1, sms: 3, init: true },
  { B: 2, T: 5, sms: 132, init: false },
];
/** The batch cell: 3 rows a block with a partial last block (B = 5 on 2 SMs), T = 1, one row a block over T = 19 (the 8-step staging ring wraps). */
const BATCH_CASES = [
  { B: 5, T: 6, sms: 2, init: true },
  { B: 3, T: 1, sms: 3, init: true },
  { B: 2, T: 19, sms: 132, init: false },
];
/**
 * -batch4 (a step's copies from a per-thread list, the matvec row in registers): besides, 20 rows of 8
 * units on 2 SMs, where a block's outputs outnumber its 128 threads (the register row and the copy list give way to the
 * -batch2 paths in the same kernel), and one row of 8 units over T = 19.
 */
const LEAN_CASES = [...BATCH_CASES, { B: 40, T: 5, sms: 2, init: true }];
const VARIANTS = [
  { variant: "persistent-matvec-batch2", cases: BATCH_CASES },
  { variant: "persistent-matvec-batch4", cases: LEAN_CASES },
  { variant: "persistent-matvec", cases: CASES },
  { variant: "persistent-matvec-batch", cases: BATCH_CASES },
  { variant: "persistent-matvec-batch-256", cases: BATCH_CASES.slice(0, 1) },
];

describe.skipIf(!gpp)("the persistent cells on the CPU emulation of CUDA vs the float64 interpreter", () => {
  for (const [kind, name] of [["forward", "lstm"], ["forward", "gru"], ["backward core", "lstm"], ["backward core", "gru"], ["class backward", "lstm"], ["class backward", "gru"]] as const) {
    const cases = VARIANTS.flatMap(({ variant, cases }) => cases.map((c) => [`${variant} ${JSON.stringify(c)}`, variant, c] as const));
    it.each(cases)(`${name} ${kind}: %s`, async (_l, variant, c) => {
      const model = kind === "forward" ? load(name) : kind === "backward core" ? core(name) : classBackward(name);
      const dims = { H: 8, I: 3 };
      const run = randomRun(model, { dims, batch: c.B, time: c.T, seed: 11 * c.T + c.B + (kind === "forward" ? 0 : 100), initialState: c.init });
      const want = interpret(model, run);
      const device = new CellFakeDevice(c.sms);
      const plan = device.add(kind === "class backward" ? classGradPlan(name) : lowerCuda(model).plan);
      const runner = await CudaModelRunner.create(plan, { dims, params: f32(run.params), device: device as unknown as CudaDevice, form: variant });
      const r = await runner.forward(f32(run.inputs), { batch: c.B, initialState: f32(run.initialState) });
      expect(r.form).toBe(variant);
      for (const [k, v] of Object.entries(want.outputs)) expect(relativeError(Float64Array.from(r.outputs[k] as Float32Array), v), `output ${k}`).toBeLessThanOrEqual(1e-5);
      for (const [k, v] of Object.entries(want.finalState)) expect(relativeError(Float64Array.from(r.finalState![k] as Float32Array), v), `final ${k}`).toBeLessThanOrEqual(1e-5);
      runner.dispose();
    }, 600_000);
  }
});

describe("-batch4's choice: the plan's KS (a closed form) is the kernel's (its doubling loop at 128 threads)", () => {
  it("LSTM and GRU forwards and cores at H = 4 .. 256, B = 1 .. 600 on 132 SMs", () => {
    for (const name of ["lstm", "gru"]) {
      for (const m of [load(name), core(name)]) {
        const f = lowerCuda(m).plan.forms.find((x) => x.variant === "persistent-matvec-batch4")!;
        const el = matvecCellPlan(m);
        if (!el.ok) throw new Error(el.why);
        for (const H of [4, 8, 12, 16, 32, 64, 128, 256]) {
          for (const B of [1, 64, 132, 133, 600]) {
            const env: Env = { H, I: H, B, T: 8, LIMIT_SMS: 132, LIMIT_SMEM_OPTIN: 227 * 1024, LIMIT_SHARED: 227 * 1024, LIMIT_THREADS: 1024 };
            for (const [k, e] of f.vars) env[k] = evalSize(e, env);
            // the kernel: MS = BB x (rows of every matvec), MINKV the shortest depth; KS doubles while below 4, 2 KS MS <= 128, 8 KS <= MINKV
            const MS = env.BB * el.plan.rterms.reduce((a, r) => a + r.rows.reduce((p, e) => p * (e.kind === "lit" ? e.value : H), 1), 0);
            const MINKV = Math.min(...el.plan.rterms.map((r) => r.vecShape.reduce((p, e) => p * (e.kind === "lit" ? e.value : H), 1)));
            let KS = 1;
            while (KS < 4 && 2 * KS * MS <= 128 && 8 * KS <= MINKV) KS *= 2;
            expect(env.KS, `${m.name} H=${H} B=${B}`).toBe(KS);
          }
        }
      }
    }
  });
});

describe.skipIf(!gpp)("-batch4 computes what -batch2 computes, bitwise (the same sums in the same order, the same sigmoid formulas)", () => {
  for (const [kind, name] of [["forward", "lstm"], ["forward", "gru"], ["backward core", "lstm"], ["backward core", "gru"]] as const) {
    it(`${name} ${kind}: B = 5 on 2 SMs (3 rows a block, a partial last block), T = 6, initial states`, async () => {
      const model = kind === "forward" ? load(name) : core(name);
      const dims = { H: 8, I: 3 };
      const run = randomRun(model, { dims, batch: 5, time: 6, seed: 77, initialState: true });
      const got: Record<string, Float32Array>[] = [];
      for (const variant of ["persistent-matvec-batch2", "persistent-matvec-batch4"]) {
        const device = new CellFakeDevice(2);
        const plan = device.add(lowerCuda(model).plan);
        const runner = await CudaModelRunner.create(plan, { dims, params: f32(run.params), device: device as unknown as CudaDevice, form: variant });
        const r = await runner.forward(f32(run.inputs), { batch: 5, initialState: f32(run.initialState) });
        expect(r.form).toBe(variant);
        got.push({ ...(r.outputs as Record<string, Float32Array>), ...Object.fromEntries(Object.entries(r.finalState!).map(([k, v]) => [`final ${k}`, v as Float32Array])) });
        runner.dispose();
      }
      for (const k of Object.keys(got[0])) {
        expect(got[0][k].some((x) => x !== 0), k).toBe(true);
        expect(Array.from(got[1][k]), `-batch4 ${k}`).toEqual(Array.from(got[0][k]));
      }
    }, 600_000);
  }
});
