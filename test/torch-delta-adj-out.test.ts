/**
 * The delta adjoint's gradients in bf16 (runtime/torch/seqc_delta_bwd.py LR_DELTA_ADJ_OUT "bf16"; the kernels'
 * _zb_ob siblings, compiler/backends/cuda/delta-adjoint-bf16.ts DELTA_ADJ_BF16_OUT_CONFIGS) on CPU torch:
 * (1) on a fake kernel module (the records of delta-bwd.ts's modules): with "bf16" the adjoint launched is the bf16-state
 * pick's _ob sibling and dQ, dU, dW, dK, dV come back bfloat16 (dLD float32); "f32", the fp32-state path (no _zb pick) and
 * the per-key module (no sibling) keep float32; launch_switches holds the switch (the graphed backward's key).
 * (2) end to end (test/torch/autograd_bf16.py: the module's autograd path on bf16 tensors, the plans on the float64
 * interpreter, the delta kernels by their stand-in returning the adjoint's gradients in bf16): prep's backward runs on a
 * "-bf16bar" twin given the adjoints of prep's outputs in bf16 (compiler/backends/torch/stateless-bf16.ts), every gradient
 * within 1e-2 of float64 and within a bf16 rounding of the float32 adjoint's (DeltaNet's dv, the adjoint's dV alone,
 * bit for bit: rounded once either way).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { gradients } from "../compiler/grad/run.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { torchLowRankChain } from "../compiler/backends/torch/chain-copies-lowrank.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import type { LrPart } from "../runtime/chunked-backward-lowrank.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";
import { serve } from "./helpers/python-serve.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;

const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
sys.path.insert(0, 'test/torch')
import torch
import seqc_delta_bwd as d
d.ADJ_LOAD, d.PREP_BWD_STORE = 'plain', 'pair'  # this switch alone: the F15 defaults' _ca / _wbq(_bm16) siblings have their own tests
inp = json.loads(sys.stdin.read())
from fake_kernels import KM, calls
out = {}
def run(ao, zb, mode, K, B=2, T=100, H=3):
    d.ADJ_OUT, d.ZBF16 = ao, zb
    calls.clear()
    launch = d.kernel_launch(KM(inp[mode]), torch.device('cpu'), 'bf16', 132)
    launch.tin = torch.bfloat16
    x = torch.zeros(B, T, H, K)
    ld = torch.zeros(B, T, H, K) if mode == 'key' else torch.zeros(B, T, H) if mode == 'scalar' else None
    r = d.delta_kernels(launch, x, x, x, x, x, ld, None, x, None, 64)
    return {'adj': calls[-1][0], 'dtypes': [str(t.dtype) if t is not None else 'None' for t in r[:6]], 'switches': list(d.launch_switches())}
for mode in ('none', 'scalar'):
    for K in (64, 128):
        out['%s%d' % (mode, K)] = run('bf16', 'on', mode, K)
out['f32'] = run('f32', 'on', 'scalar', 64)
out['zoff'] = run('bf16', 'off', 'scalar', 64)
out['key'] = run('bf16', 'on', 'key', 64)
print(json.dumps(out))
`;

const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));
type Got = { runs: [string, string, string, string[], string, string[], string[] | null][]; deltaCalls: string[]; inputs: Record<string, number[]>; initialState: Record<string, number[]> };

describe.skipIf(!cpuTorch)("torch target: the delta adjoint's gradients in bf16 (LR_DELTA_ADJ_OUT)", () => {
  it("\"bf16\": the bf16-state adjoint's _ob sibling, dQ..dV bfloat16, dLD float32; \"f32\", no _zb pick, per key: float32", () => {
    const inp = { none: deltaBwdModule(deltaBwdConfigs("none")).kernels, scalar: deltaBwdModule(deltaBwdConfigs("scalar")).kernels, key: deltaBwdModule(deltaBwdConfigs("key")).kernels };
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const b = "torch.bfloat16", f = "torch.float32";
    for (const mode of ["none", "scalar"])
      for (const K of [64, 128]) expect([got[`${mode}${K}`].adj, got[`${mode}${K}`].dtypes], `${mode} ${K}`).toEqual([`seqc_delta_adj_${mode}_c64k${K}v${K}_bf16_bf16_zb_ob`, [b, b, b, b, b, mode === "scalar" ? f : "None"]]);
    expect([got.f32.adj, got.f32.dtypes]).toEqual(["seqc_delta_adj_scalar_c64k64v64_bf16_bf16_zb", [f, f, f, f, f, f]]);
    expect([got.zoff.adj, got.zoff.dtypes]).toEqual(["seqc_delta_adj_scalar_c64k64v64_bf16_bf16", [f, f, f, f, f, f]]);
    expect(got.key.adj.endsWith("_ob")).toBe(false);
    expect(got.key.dtypes).toEqual([f, f, f, f, f, f]);
    // (the two runs' switches differ in ADJ_OUT alone: the graphed backward's key tells them apart)
    expect(got.f32.switches.filter((x: string, i: number) => x !== got.key.switches[i])).toEqual(["f32"]);
  }, 120_000);

  it.each(["deltanet", "gated_deltanet"])("%s: prep's backward on a \"-bf16bar\" twin reading the bf16 adjoints; gradients within 1e-2 of float64 and a bf16 rounding of the float32 adjoint's", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7 });
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-delta-adj-out-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = torchLowRankChain(lowRankChain(model, dims), dims);
    const bars = Object.values(chain.names.prepBw.outputBar).sort();
    for (const [B, T, init] of [[2, 37, false], [1, 70, true]] as const) {
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 43 + T, initialState: init });
      for (const o of [run.inputs, run.initialState ?? {}]) for (const k of Object.keys(o)) o[k] = o[k].map((v) => fromBf16(toBf16(v)));
      const cot = randomCotangents(interpret(model, run), T + 5);
      const want = await gradients(model, run, cot);
      const step = async (deltaAdjOut: "f32" | "bf16") => (await serve("/usr/bin/python3", ["test/torch/autograd_bf16.py", join(dir, json.path)],
        { B, T, dims, backward: "auto", inputs: list(run.inputs), params: {}, initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState), deltaKern: "standin", deltaGlue: "bf16", deltaAdjOut },
        (msg) => {
          if (msg.run === "forward") return { model, dims: msg.dims!, params: {} };
          const part = msg.run.replace(/^chain:/, "") as LrPart;
          if (!msg.run.startsWith("chain:") || !chain.models[part]) throw new Error(`unexpected plan ${msg.run}`);
          return { model: chain.models[part]!, dims: msg.dims!, params: {} };
        })) as Got;
      const f32 = await step("f32"), low = await step("bf16");
      const label = `${name} B=${B} T=${T} init=${init}`;
      // prep's backward: the "-bf16bar" twin given the adjoints in bf16 with "bf16", a "-bf16in" twin given them in float32 with "f32"
      const pb = (g: Got) => g.runs.filter((r) => r[0] === "chain:prepBw").map((r) => [r[2].includes("-bf16bar"), bars.every((n) => r[5].includes(n))]);
      expect([pb(f32), pb(low)], label).toEqual([[[false, false]], [[true, true]]]);
      expect(low.deltaCalls, label).toEqual(["prep_fwd", "walk", "prep_bwd", "walk", "adj"]);
      for (const [k, v] of Object.entries(want.inputs)) {
        expect(relativeError(Float64Array.from(low.inputs[k]), v), `${label}: d ${k}`).toBeLessThanOrEqual(1e-2);
        expect(relativeError(Float64Array.from(low.inputs[k]), Float64Array.from(f32.inputs[k])), `${label}: d ${k} vs f32`).toBeLessThanOrEqual(8e-3);
      }
      if (init) for (const [k, v] of Object.entries(want.initialState)) expect(relativeError(Float64Array.from(low.initialState[k]), v), `${label}: d ${k}0`).toBeLessThanOrEqual(1e-2);
      if (name === "deltanet") expect(low.inputs.v, `${label}: dv`).toEqual(f32.inputs.v);
    }
  }, 600_000);
});
