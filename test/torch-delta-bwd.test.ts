/**
 * The token-aligned delta backward (runtime/torch/seqc_delta_bwd.py; seqc_chunked_lowrank.lowrank_backward with LR_BWD
 * "delta") on CPU torch, the chain's stateless parts (prep, post's and prep's backward) run by the float64 interpreter
 * (test/torch/lowrank_glue.py), against seqc's float64 reference gradients: DeltaNet and Gated DeltaNet (its decay step
 * merged, LR_MERGE "decay") through the torch ops and through the five kernels' stand-in (test/torch/
 * delta_kernels_standin.py, the kernels' definitions), T = 1, T = 100 with C = 64 (ragged) and C = 8 (many chunks), given
 * and declared initial states, with and without the final-state cotangent; "delta" against "wy"; a dropped term fails;
 * Gated DeltaProduct (two micro-steps a token) falls back to "wy". Then delta_launcher's grids and argument order
 * against a fake kernel module.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { LrPart } from "../runtime/chunked-backward-lowrank.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve } from "./helpers/python-serve.ts";
import { glueTensors } from "./helpers/glue-case.ts";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const BAKED = { J: 2 };
const dimsOf = (model: I.Model) => smallDims(model, { K: 5, V: 7, ...BAKED });
const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

type Chain = ReturnType<typeof lowRankChain>;
interface Ways { bwd: "delta" | "wy" | "auto"; deltaKern?: "recurrence"; deltaBreak?: "aC" | "walk"; pass?: "recurrence" }
type Got = { parts: string[]; inputs: Record<string, { data: number[] }>; dS0: { data: number[] }; deltaCalls: string[]; passCalls: string[]; fusedCalls: number };

/** lowrank_backward on a case: the readouts and transitions as products, lean copies, post's backward binding the
 * cotangent alone (no y read: the pattern "delta" takes), the decay step merged; the fused transitions' stand-in, which
 * the timeline's forward takes ("fusedCalls": 0 where no timeline ran). */
async function glue(model: I.Model, { names, models }: Chain, run: RunInputs, cot: ReturnType<typeof randomCotangents>, dropStateCot: boolean, chunk: number, dtype: "float64" | "float32", ways: Ways): Promise<Got> {
  const case_ = {
    names, B: run.batch, T: run.time, chunk, dtype, decayWay: "cumsum", passWay: "matmul", readWay: "matmul", augWay: "matmul", copies: "lean", postBinds: ["o__bar"], merge: "decay", fused: "recurrence",
    ...ways, ...glueTensors(model, names.state, run, cot, dropStateCot),
  };
  const parts: string[] = [];
  const got = await serve("/usr/bin/python3", ["test/torch/lowrank_glue.py"], case_, (msg) => {
    parts.push(msg.run);
    return { model: models[msg.run as LrPart]!, dims: msg.dims ?? { ...run.dims }, params: msg.dims ? {} : run.params ?? {} };
  });
  return { parts, ...got } as Got;
}

const errOf = (model: I.Model, chain: Chain, got: Got, want: Awaited<ReturnType<typeof gradients>>) =>
  Math.max(...Object.entries(want.inputs).map(([k, v]) => relativeError(Float64Array.from(got.inputs[k].data), v)), relativeError(Float64Array.from(got.dS0.data), want.initialState[chain.names.state]));
const vs = (a: Got, b: Got) => Math.max(...Object.keys(a.inputs).map((k) => relativeError(Float64Array.from(a.inputs[k].data), Float64Array.from(b.inputs[k].data))),
  relativeError(Float64Array.from(a.dS0.data), Float64Array.from(b.dS0.data)));
const KERNELS = ["prep_fwd", "walk", "prep_bwd", "walk", "adj"];

describe.skipIf(!cpuTorch)("torch target: the token-aligned delta backward (seqc_chunked_lowrank LR_BWD \"delta\": runtime/torch/seqc_delta_bwd.py)", () => {
  it.each(["deltanet", "gated_deltanet"])("%s: torch ops and the kernels' stand-in equal the float64 reference (1e-9; float32 1e-4) and \"wy\"; no timeline runs; a dropped term fails", async (name) => {
    const model = load(name);
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    // B, T, given initial state, no final-state cotangent, chunk, dtype, ways
    const cases: [number, number, boolean, boolean, number, "float64" | "float32", Ways][] = [
      [2, 1, true, false, 64, "float64", { bwd: "delta" }], [2, 100, true, false, 64, "float64", { bwd: "delta" }], [2, 100, false, true, 8, "float64", { bwd: "delta" }],
      [1, 100, true, true, 8, "float64", { bwd: "delta", pass: "recurrence" }], [2, 100, true, false, 8, "float32", { bwd: "delta" }],
      [2, 1, true, true, 64, "float64", { bwd: "delta", deltaKern: "recurrence" }], [2, 100, true, false, 64, "float64", { bwd: "delta", deltaKern: "recurrence" }],
      [2, 100, true, true, 8, "float64", { bwd: "delta", deltaKern: "recurrence" }], [2, 37, true, false, 8, "float32", { bwd: "delta", deltaKern: "recurrence" }],
    ];
    for (const [B, T, init, dropStateCot, chunk, dtype, ways] of cases) {
      const label = `B=${B} T=${T} init=${init} dS ${!dropStateCot} chunk=${chunk} ${dtype}${ways.deltaKern ? " kernels' stand-in" : ""}${ways.pass ? " pass stand-in" : ""}`;
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 80 + T, initialState: init, stress: true });
      const cot = randomCotangents(interpret(model, run), T + 7);
      if (dropStateCot) delete cot.finalState[chain.names.state];
      const want = await gradients(model, run, cot);
      const got = await glue(model, chain, run, cot, dropStateCot, chunk, dtype, ways);
      for (const [k, v] of Object.entries(want.inputs)) expect(v.some((x) => x !== 0), `${label}: reference d ${k} is not all zero`).toBe(true);
      expect(errOf(model, chain, got, want), label).toBeLessThanOrEqual(dtype === "float64" ? 1e-9 : 1e-4);
      // prep, post's backward and prep's backward only: no chain part, no timeline (its forward's transitions)
      expect(new Set(got.parts), label).toEqual(new Set(["prep", "postBw", "prepBw"]));
      expect(got.fusedCalls, label).toBe(0);
      expect(got.deltaCalls, label).toEqual(ways.deltaKern ? KERNELS : []);
      expect(got.passCalls, label).toEqual(ways.pass ? ["fwd", "adj"] : []);
      if (dtype === "float64" && !ways.pass) {
        const wy = await glue(model, chain, run, cot, dropStateCot, chunk, dtype, { bwd: "wy" });
        expect(wy.fusedCalls, `${label}: wy ran its timeline`).toBe(1);
        expect(vs(got, wy), `${label}: delta vs wy`).toBeLessThanOrEqual(1e-9);
      }
    }
    // each term dropped in turn moves the gradients far off: the transitions in the reverse walk, the chunk end's
    // <LE, S_C> in the log decays' adjoint (no decay: no such term)
    const run = chunkInputs(model, { dims, batch: 2, time: 37, seed: 91, initialState: true, stress: false });
    const cot = randomCotangents(interpret(model, run), 40);
    const want = await gradients(model, run, cot);
    for (const deltaBreak of ["walk", ...(chain.names.decay === "none" ? [] : ["aC"])] as ("walk" | "aC")[]) {
      const got = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "delta", deltaBreak });
      expect(errOf(model, chain, got, want), `${deltaBreak} dropped`).toBeGreaterThan(1e-2);
    }
  }, 300_000);

  it("\"auto\": \"delta\" where the kernels take the shape (their stand-in), \"wy\" without kernels (DeltaNet)", async () => {
    const model = load("deltanet");
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    const run = chunkInputs(model, { dims, batch: 2, time: 37, seed: 95, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), 38);
    const want = await gradients(model, run, cot);
    const kern = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "auto", deltaKern: "recurrence" });
    const none = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "auto" });
    expect([kern.deltaCalls, kern.fusedCalls]).toEqual([KERNELS, 0]);
    expect([none.deltaCalls, none.fusedCalls]).toEqual([[], 1]);
    expect(Math.max(errOf(model, chain, kern, want), errOf(model, chain, none, want))).toBeLessThanOrEqual(1e-9);
  }, 120_000);

  it("gated_deltaproduct (two micro-steps a token) falls back to \"wy\": the same gradients, its timeline ran, no delta kernel", async () => {
    const model = load("gated_deltaproduct");
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    const run = chunkInputs(model, { dims, batch: 2, time: 23, seed: 93, initialState: true, stress: true });
    const cot = randomCotangents(interpret(model, run), 25);
    const want = await gradients(model, run, cot);
    const delta = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "delta", deltaKern: "recurrence" });
    const wy = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "wy" });
    expect(errOf(model, chain, delta, want)).toBeLessThanOrEqual(1e-9);
    expect(vs(delta, wy)).toBe(0);
    expect([delta.fusedCalls, wy.fusedCalls]).toEqual([1, 1]);
    expect(delta.deltaCalls).toEqual([]);
  }, 120_000);
});

describe.skipIf(!cpuTorch)("torch target: the delta kernels' launcher (seqc_delta_bwd.delta_launcher) on a fake kernel module", () => {
  it("picks each op's record by decay, C, K, V and the tensors' dtype; grids N, (B H, V / cols); the spec's argument order; outputs made float32", () => {
    // both decay modes' modules' records (a model's module holds one mode's; the adjoint at K = V = 64 only)
    const kernels = [...deltaBwdModule(deltaBwdConfigs("scalar")).kernels, ...deltaBwdModule(deltaBwdConfigs("none")).kernels];
    const walk = kernels.find((k) => k.op === "walk" && k.K === 64)!;
    const script = `
import contextlib, json, sys
sys.path.insert(0, 'runtime/torch')
import torch
import seqc_delta_bwd as d
ks = json.loads(sys.stdin.read())
calls = []
class KM:
    def __init__(self, kernels):
        self.kernels = kernels
    def launch(self, k, grid, args, stream):
        calls.append([k['entry'], list(grid), [a[1] if a[0] == 'u32' else ('null' if a[1] == 0 else 'ptr') for a in args]])
torch.cuda.device = lambda d: contextlib.nullcontext()
torch.cuda.current_stream = lambda d=None: type('S', (), {'cuda_stream': 0})()
launch = d.kernel_launch(KM(ks), torch.device('cpu'))
out = {'has': [launch.has('scalar', 64, 64, 64, torch.float32), launch.has('none', 64, 64, 64, torch.bfloat16), launch.has('scalar', 64, 128, 128, torch.float32),
               launch.has('scalar', 32, 64, 64, torch.float32), launch.has('scalar', 64, 64, 64, torch.float64)],
       'torch': d.delta_launcher(None, torch.device('cpu'), 'torch') is None}
try:
    d.delta_launcher(None, torch.device('cpu'), 'yes')
    out['bad'] = 'accepted'
except ValueError:
    out['bad'] = 'refused'
B, T, H, K = 2, 100, 3, 64
nC = 2
N = B * H * nC
t = lambda *s: torch.zeros(*s)
o = launch('prep_fwd', 'scalar', 64, K, K, t(B, T, H, K), t(B, T, H, K), t(B, T, H, K), t(B, T, H, K), t(B, T, H), B, T, H)
out['prep_fwd'] = [list(x.shape) for x in o]
o2 = launch('prep_bwd', 'none', 64, K, K, t(B, T, H, K), t(B, T, H, K), t(B, T, H, K), t(B, T, H, K), None, o[0], B, T, H)
out['prep_bwd'] = [list(x.shape) for x in o2]
w = launch('walk', 'scalar', 64, K, K, *o[1:], t(B, H, K, K), B * H, nC, 1)
out['walk'] = [list(x.shape) for x in w]
w0 = launch('walk', 'none', 64, K, K, *o2, None, B * H, nC, 0)
bf = torch.zeros(B, T, H, K, dtype=torch.bfloat16)
a = launch('adj', 'scalar', 64, K, K, bf, bf, bf, bf, bf, t(B, T, H, K), t(B, T, H), w[1], w[0], w[2], w[0], w[1], B, T, H)
out['adj'] = [list(x.shape) if x is not None else None for x in a] + [str(a[0].dtype)]
a0 = launch('adj', 'none', 64, K, K, *[t(B, T, H, K)] * 6, None, w[1], w[0], w[2], w[0], w[1], B, T, H)
out['adj0'] = a0[5] is None
out['calls'] = list(calls)
# delta_kernels: float32 per-token inputs; launch.tin bf16 takes the _bf16 entries (the inputs converted once), else _f32
entries = []
for tin in (torch.bfloat16, None):
    calls.clear()
    launch.tin = tin
    x = t(B, T, H, K)
    r = d.delta_kernels(launch, x, x, x, x, x, t(B, T, H), None, x, None)
    entries.append([c[0] for c in calls] + [list(r[6].shape)])
out['tin'] = entries
# math 'tf32': each op's twin where the module has one for the shape and tin (bf16), else its fp32 kernel; the walk's
# 3xTF32 twin (math 'tf32x3', float32 like the walk) whatever tin
entries = []
twin = d.kernel_launch(KM(ks), torch.device('cpu'), 'tf32')
for tin in (torch.bfloat16, None):
    calls.clear()
    twin.tin = tin
    d.delta_kernels(twin, x, x, x, x, x, t(B, T, H), None, x, None)
    entries.append([c[0] for c in calls])
out['twins'] = entries
# the walk for few rows (a record with split) where B H (V / cols) is below the SM count, else the default walk
calls.clear()
for sms in (132, 12):
    few = d.kernel_launch(KM(ks), torch.device('cpu'), None, sms)
    few('walk', 'scalar', 64, K, K, *o[1:], None, B * H, nC, 0)
out['few'] = [c[:2] for c in calls]
# LR_DELTA_WALK (d.WALK) at K = V = 128 with math: the walk for many rows (walkFor "many") where B H (128 / 64) 2 >= the
# SM count, else the rule above; "tf32" its plain TF32 one; "old" never; without math the fp32 walks
calls.clear()
w128 = (t(N, 64, 128), t(N, 64, 128), t(N, 128, 128), t(N, 64, 128), t(N))
for wk, math, sms in (('default', 'tf32', 132), ('default', 'tf32', 12), ('tf32', 'tf32', 12), ('old', 'tf32', 12), ('default', None, 12)):
    d.WALK = wk
    d.kernel_launch(KM(ks), torch.device('cpu'), math, sms)('walk', 'scalar', 64, 128, 128, *w128, None, B * H, nC, 0)
d.WALK = 'default'
out['many'] = [c[:2] for c in calls]
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    // (K = V = 128: where the module has every op there in fp32; C = 32 and float64: never)
    const all128 = ["prep_fwd", "prep_bwd", "walk", "adj"].every((op) => kernels.some((k) => k.op === op && k.K === 128 && (op === "walk" || (k.decay === "scalar" && k.tin === "f32" && !("math" in k)))));
    expect(got.has).toEqual([true, true, all128, false, false]);
    expect([got.torch, got.bad]).toEqual([true, "refused"]);
    const N = 12, p = "ptr", z = "null", G = 64 / walk.cols;
    expect(got.prep_fwd).toEqual([[N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64, 64], [N]]);
    expect(got.prep_bwd).toEqual([[N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64, 64], [N]]);
    expect(got.walk).toEqual([[N, 64, 64], [N, 64, 64], [6, 64, 64]]);
    expect(got.adj).toEqual([[2, 100, 3, 64], [2, 100, 3, 64], [2, 100, 3, 64], [2, 100, 3, 64], [2, 100, 3, 64], [2, 100, 3], "torch.float32"]);
    expect(got.adj0).toBe(true);
    const ops = (tin: string) => [`seqc_delta_prep_fwd_scalar_c64k64v64_${tin}`, "seqc_delta_walk_c64k64v64", `seqc_delta_prep_bwd_scalar_c64k64v64_${tin}`, "seqc_delta_walk_c64k64v64", `seqc_delta_adj_scalar_c64k64v64_${tin}`, [2, 3, 64, 64]];
    expect(got.tin).toEqual([ops("bf16"), ops("f32")]);
    const few = kernels.find((k) => k.op === "walk" && k.K === 64 && k.decay === "scalar" && k.split)!;
    expect(got.few).toEqual([[few.entry, [6, 64 / few.cols]], ["seqc_delta_walk_c64k64v64", [6, G]]]);
    // B H = 6 at K = V = 128: 6 (128 / 64) 2 = 24 below 132 SMs: the split fp32 walk (6 (128 / 16) below them too); above 12:
    // the walk for many rows (3xTF32; "tf32": plain TF32), "old" the 16-column twin, no math the fp32 walk
    const few128 = kernels.find((k) => k.op === "walk" && k.K === 128 && k.decay === "scalar" && k.split)!;
    expect(got.many).toEqual([[few128.entry, [6, 128 / few128.cols]], ["seqc_delta_walk_c64k128v128_g64_w2_tf32x3", [6, 2]], ["seqc_delta_walk_c64k128v128_g64_w2_i2_tf32", [6, 2]],
      ["seqc_delta_walk_c64k128v128_tf32x3", [6, 8]], ["seqc_delta_walk_c64k128v128", [6, 8]]]);
    const walkTwin = (e: string | number[]) => (e === "seqc_delta_walk_c64k64v64" ? `${e}_tf32x3` : e);
    expect(got.twins).toEqual([ops("bf16").slice(0, 5).map((e) => (String(e).endsWith("_bf16") ? `${e}_tf32` : walkTwin(e))), ops("f32").slice(0, 5).map(walkTwin)]);
    expect(got.calls).toEqual([
      // (U, W, KK, VV, LD, B, T, H, TI, M, X, BM, NN, A)
      ["seqc_delta_prep_fwd_scalar_c64k64v64_f32", [N, 1], [p, p, p, p, p, 2, 100, 3, p, p, p, p, p, p]],
      // (Q, U, W, DY, LD, TI, B, T, H, M, X, BM, NN, A); no decay: LD null
      ["seqc_delta_prep_bwd_none_c64k64v64_f32", [N, 1], [p, p, p, p, z, p, 2, 100, 3, p, p, p, p, p]],
      // (M, X, BM, NN, A, Z0, ZS, Y, ZF, BH, nC, reverse): grid (B H, V / cols)
      ["seqc_delta_walk_c64k64v64", [6, G], [p, p, p, p, p, p, p, p, p, 6, 2, 1]],
      ["seqc_delta_walk_c64k64v64", [6, G], [p, p, p, p, p, z, p, p, p, 6, 2, 0]],
      // (Q, U, W, KK, VV, DY, LD, R, S0, SF, LE, DR, B, T, H, dQ, dU, dW, dK, dV, dLD): bf16 inputs take the _bf16 entry
      ["seqc_delta_adj_scalar_c64k64v64_bf16", [N, 1], [p, p, p, p, p, p, p, p, p, p, p, p, 2, 100, 3, p, p, p, p, p, p]],
      ["seqc_delta_adj_none_c64k64v64_f32", [N, 1], [p, p, p, p, p, p, z, p, p, p, p, p, 2, 100, 3, p, p, p, p, p, z]],
    ]);
  });
});

/** RWKV-7 (a per-key log decay, decay "key"): LR_BWD "delta" takes its chain (one step a token, E = P = R = 1, the readout
 * after it): seqc_delta_bwd.delta_torch_key (the torch ops, exp(G[a] - G[f]) a key taken directly), the five kernels'
 * stand-in in mode "key" (test/torch/delta_kernels_standin.py key_op: A [N, K], dLD [B, T, H, K]), and the launcher's
 * records of deltaBwdConfigs("key"). */
describe.skipIf(!cpuTorch)("torch target: the token-aligned delta backward with a per-key decay (RWKV-7)", () => {
  type KeyWays = Ways & { keyBwd?: "chain" | "wy" };
  it("rwkv7: torch ops and the kernels' stand-in equal the float64 reference (1e-9; float32 1e-4), \"wy\" and \"chain\"; no timeline runs; a dropped term fails", async () => {
    const model = load("rwkv7");
    const dims = dimsOf(model);
    const chain = lowRankChain(model, dims);
    expect(chain.names.decay).toBe("key");
    // B, T, given initial state (false: the declared one), no final-state cotangent, chunk, dtype, ways
    const cases: [number, number, boolean, boolean, number, "float64" | "float32", Ways][] = [
      [2, 1, true, false, 64, "float64", { bwd: "delta" }], [2, 100, true, false, 64, "float64", { bwd: "delta" }], [2, 100, false, true, 8, "float64", { bwd: "delta" }],
      [1, 37, true, true, 8, "float64", { bwd: "delta", pass: "recurrence" }], [2, 100, true, false, 8, "float32", { bwd: "delta" }],
      [2, 1, true, true, 64, "float64", { bwd: "delta", deltaKern: "recurrence" }], [2, 100, false, false, 64, "float64", { bwd: "delta", deltaKern: "recurrence" }],
      [2, 100, true, true, 8, "float64", { bwd: "delta", deltaKern: "recurrence" }], [2, 37, true, false, 8, "float32", { bwd: "delta", deltaKern: "recurrence" }],
    ];
    for (const [B, T, init, dropStateCot, chunk, dtype, ways] of cases) {
      const label = `rwkv7 B=${B} T=${T} init=${init} dS ${!dropStateCot} chunk=${chunk} ${dtype} ${ways.bwd}${ways.deltaKern ? " kernels' stand-in" : ""}${ways.pass ? " pass stand-in" : ""}`;
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 60 + T, initialState: init, stress: true });
      const cot = randomCotangents(interpret(model, run), T + 5);
      if (dropStateCot) delete cot.finalState[chain.names.state];
      const want = await gradients(model, run, cot);
      const got = await glue(model, chain, run, cot, dropStateCot, chunk, dtype, ways);
      for (const [k, v] of Object.entries(want.inputs)) expect(v.some((x) => x !== 0), `${label}: reference d ${k} is not all zero`).toBe(true);
      expect(errOf(model, chain, got, want), label).toBeLessThanOrEqual(dtype === "float64" ? 1e-9 : 1e-4);
      expect(new Set(got.parts), label).toEqual(new Set(["prep", "postBw", "prepBw"]));
      expect(got.fusedCalls, label).toBe(0);
      expect(got.deltaCalls, label).toEqual(ways.deltaKern ? KERNELS : []);
      expect(got.passCalls, label).toEqual(ways.pass ? ["fwd", "adj"] : []);
      if (dtype === "float64" && !ways.pass && !ways.deltaKern) {
        for (const keyBwd of ["wy", "chain"] as const) {
          const other = await glue(model, chain, run, cot, dropStateCot, chunk, dtype, { bwd: "wy", keyBwd } as KeyWays);
          expect(other.fusedCalls, `${label}: ${keyBwd} ran its timeline`).toBeGreaterThan(0);
          expect(vs(got, other), `${label}: delta vs ${keyBwd}`).toBeLessThanOrEqual(1e-9);
        }
      }
    }
    // "auto" (the default) takes a per-key decay through the delta kernels where the module has them for the shape (the
    // stand-in: any; the real launcher: K = V = 64, its has() below; bench/RESULTS.md, H200 call A13), else "wy" (the
    // chain): without kernels (CPU, LR_FUSED_DELTA "torch") never the torch ops
    {
      const run = chunkInputs(model, { dims, batch: 2, time: 23, seed: 83, initialState: true, stress: true });
      const cot = randomCotangents(interpret(model, run), 28);
      const want = await gradients(model, run, cot);
      const got = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "auto", deltaKern: "recurrence" });
      expect(errOf(model, chain, got, want), "auto, kernels").toBeLessThanOrEqual(1e-9);
      expect([got.deltaCalls, got.fusedCalls], "auto, kernels: the delta kernels, no timeline").toEqual([KERNELS, 0]);
      const none = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "auto" });
      expect(errOf(model, chain, none, want), "auto, no kernels").toBeLessThanOrEqual(1e-9);
      expect([none.deltaCalls, none.fusedCalls > 0], "auto, no kernels: no delta kernel, the timeline ran").toEqual([[], true]);
    }
    // each term dropped moves the gradients far off: the reverse walk's transitions, the chunk end's <LE, S_C> a key
    const run = chunkInputs(model, { dims, batch: 2, time: 37, seed: 92, initialState: true, stress: false });
    const cot = randomCotangents(interpret(model, run), 40);
    const want = await gradients(model, run, cot);
    for (const deltaBreak of ["walk", "aC"] as const) {
      const got = await glue(model, chain, run, cot, false, 8, "float64", { bwd: "delta", deltaBreak });
      expect(errOf(model, chain, got, want), `${deltaBreak} dropped`).toBeGreaterThan(1e-2);
    }
  }, 600_000);

  it("delta_pattern: decay \"key\" only with a per-key ld (and the reverse), one step of count 1, E = P = R = 1, the readout after it", () => {
    const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
import seqc_chunked_lowrank as m
def st(ld, count=1, E=1, P=1):
    return {'count': count, 'lowRank': [{'u': 'u', 'w': 'w'}] * E, 'inputs': [{'k': 'k', 'v': 'v'}] * P, 'ld': ld}
key, sc = {'name': 'ld', 'perKey': True}, {'name': 'ld', 'perKey': False}
r1, r0 = [{'after': 1, 'q': 'q', 'y': 'y'}], [{'after': 0, 'q': 'q', 'y': 'y'}]
print(json.dumps([m.delta_pattern([st(key)], r1, 'key'), m.delta_pattern([st(sc)], r1, 'key'), m.delta_pattern([st(key)], r1, 'scalar'),
    m.delta_pattern([st(key, 2)], r1, 'key'), m.delta_pattern([st(key, E=2)], r1, 'key'), m.delta_pattern([st(key, P=2)], r1, 'key'),
    m.delta_pattern([st(key)], r0, 'key'), m.delta_pattern([st(key)], r1 + r1, 'key'), m.delta_pattern([st(key), st(None)], r1, 'key'),
    m.delta_pattern([st(None)], r1, 'key'), m.delta_pattern([st(sc)], r1, 'scalar')]))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([true, false, false, false, false, false, false, false, false, false, true]);
  });

  it("the launcher on the per-key module's records: mode \"key\" picks the key entries (walks default / few rows), A [N, K] and dLD [B, T, H, K], the same argument order", () => {
    const kernels = [...deltaBwdModule(deltaBwdConfigs("key")).kernels, ...deltaBwdModule(deltaBwdConfigs("scalar")).kernels];
    const script = `
import contextlib, json, sys
sys.path.insert(0, 'runtime/torch')
import torch
import seqc_delta_bwd as d
ks = json.loads(sys.stdin.read())
calls = []
class KM:
    def __init__(self, kernels):
        self.kernels = kernels
    def launch(self, k, grid, args, stream):
        calls.append([k['entry'], list(grid), [a[1] if a[0] == 'u32' else ('null' if a[1] == 0 else 'ptr') for a in args]])
torch.cuda.device = lambda d: contextlib.nullcontext()
torch.cuda.current_stream = lambda d=None: type('S', (), {'cuda_stream': 0})()
launch = d.kernel_launch(KM(ks), torch.device('cpu'))
out = {'has': [launch.has('key', 64, 64, 64, torch.float32), launch.has('key', 64, 64, 64, torch.bfloat16), launch.has('key', 64, 128, 128, torch.float32),
               launch.has('key', 32, 64, 64, torch.float32), launch.has('scalar', 64, 64, 64, torch.float32)]}
# with the TF32 twins (math "tf32", the default LR_DELTA_MMA): bf16 inputs at K = V = 128 too (the per-key adjoint's K = 128 twin)
tw = d.kernel_launch(KM(ks), torch.device('cpu'), 'tf32')
out['has_tf32'] = [tw.has('key', 64, 128, 128, torch.bfloat16), tw.has('key', 64, 128, 128, torch.float32), tw.has('key', 64, 64, 64, torch.bfloat16)]
B, T, H, K = 2, 100, 3, 64
nC = 2
N = B * H * nC
t = lambda *s: torch.zeros(*s)
x, ld = t(B, T, H, K), t(B, T, H, K)
launch.tin = None
r = d.delta_kernels(launch, x, x, x, x, x, ld, t(B, H, K, K), x, None)
out['calls'] = list(calls)
out['grads'] = [list(g.shape) for g in r]
o = launch('prep_fwd', 'key', 64, K, K, x, x, x, x, ld, B, T, H)
out['prep_fwd'] = [list(g.shape) for g in o]
o2 = launch('prep_bwd', 'key', 64, K, K, x, x, x, x, ld, o[0], B, T, H)
out['prep_bwd'] = [list(g.shape) for g in o2]
calls.clear()
for sms in (132, 12):
    few = d.kernel_launch(KM(ks), torch.device('cpu'), None, sms)
    few('walk', 'key', 64, K, K, *o[1:], None, B * H, nC, 0)
out['few'] = [c[:2] for c in calls]
# math "bf16" (LR_DELTA_MMA's default): the per-key adjoint's bf16 twins (K = 64, 128) only under KEY_MMA "bf16", their
# factored twins (math "bf16f") under "bf16f", the scalar decay's bf16 twin either way
picks = []
for key_mma in ('tf32', 'bf16', 'bf16f'):
    d.KEY_MMA = key_mma
    bw = d.kernel_launch(KM(ks), torch.device('cpu'), 'bf16')
    calls.clear()
    for KK in (64, 128):
        xb, rz, sf = t(B, T, H, KK).to(torch.bfloat16), t(N, 64, KK), t(B * H, KK, KK)
        bw('adj', 'key', 64, KK, KK, xb, xb, xb, xb, xb, xb, t(B, T, H, KK), rz, t(N, KK, KK), sf, t(N, KK, KK), rz, B, T, H)
        if KK == 64:
            bw('adj', 'scalar', 64, KK, KK, xb, xb, xb, xb, xb, xb, t(B, T, H), rz, t(N, KK, KK), sf, t(N, KK, KK), rz, B, T, H)
    picks.append([c[0] for c in calls])
d.KEY_MMA = 'tf32'
out['key_mma'] = picks
print(json.dumps(out))
`;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(kernels), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    // (K = V = 128: the per-key adjoint's fp32 kernel is K = V = 64 only, its TF32 twin (bf16 inputs) K = V = 64 and 128; C = 32: never)
    const adj128 = kernels.some((k) => k.op === "adj" && k.decay === "key" && k.K === 128 && !k.math && k.tin === "f32");
    expect(got.has).toEqual([true, true, adj128, false, true]);
    expect(got.has_tf32).toEqual([true, adj128, true]);
    const N = 12, p = "ptr", z = "null";
    const walk = kernels.find((k) => k.op === "walk" && k.decay === "key" && k.K === 64 && !k.split)!;
    const few = kernels.find((k) => k.op === "walk" && k.decay === "key" && k.K === 64 && k.split)!;
    expect([walk.entry, few.entry]).toEqual(["seqc_delta_walk_key_c64k64v64", "seqc_delta_walk_key_c64k64v64_g8_s4"]);
    const G = 64 / walk.cols;
    expect(got.calls).toEqual([
      ["seqc_delta_prep_fwd_key_c64k64v64_f32", [N, 1], [p, p, p, p, p, 2, 100, 3, p, p, p, p, p, p]],
      ["seqc_delta_walk_key_c64k64v64", [6, G], [p, p, p, p, p, p, p, p, p, 6, 2, 0]],
      ["seqc_delta_prep_bwd_key_c64k64v64_f32", [N, 1], [p, p, p, p, p, p, 2, 100, 3, p, p, p, p, p]],
      ["seqc_delta_walk_key_c64k64v64", [6, G], [p, p, p, p, p, z, p, p, p, 6, 2, 1]],
      ["seqc_delta_adj_key_c64k64v64_f32", [N, 1], [p, p, p, p, p, p, p, p, p, p, p, p, 2, 100, 3, p, p, p, p, p, p]],
    ]);
    // du, dw, dk, dv, dq [B, T, H, w], dld a key, dS_init
    expect(got.grads).toEqual([...Array(5).fill([2, 100, 3, 64]), [2, 100, 3, 64], [2, 3, 64, 64]]);
    // TI, M, X, BM, NN, A [N, K]; prep_bwd's M, X, BM, NN, A [N, K]
    expect(got.prep_fwd).toEqual([[N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64]]);
    expect(got.prep_bwd).toEqual([[N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64, 64], [N, 64]]);
    // 132 SMs: B H (V / cols) = 12 below them, the walk for few rows; 12 SMs: the default walk
    expect(got.few).toEqual([[few.entry, [6, 64 / few.cols]], ["seqc_delta_walk_key_c64k64v64", [6, G]]]);
    const [tf32, bf16] = ["seqc_delta_adj_key_c64k64v64_bf16_tf32", "seqc_delta_adj_key_c64k64v64_bf16_bf16"];
    const [tf32k128, bf16k128] = ["seqc_delta_adj_key_c64k128v128_bf16_tf32", "seqc_delta_adj_key_c64k128v128_bf16_bf16"];
    const [fac, fack128] = [`${bf16}f`, `${bf16k128}f`];  // (the K = 128 factored twin spills 4 bytes on sm_90, accepted: docs/delta-backward.md)
    expect(kernels.filter((k) => k.op === "adj" && k.decay === "key" && k.math).map((k) => k.entry)).toEqual([tf32, tf32k128, bf16, bf16k128, fac, fack128]);
    expect(got.key_mma).toEqual([
      [tf32, "seqc_delta_adj_scalar_c64k64v64_bf16_bf16", tf32k128],
      [bf16, "seqc_delta_adj_scalar_c64k64v64_bf16_bf16", bf16k128],
      [fac, "seqc_delta_adj_scalar_c64k64v64_bf16_bf16", fack128],
    ]);
  });
});
