/**
 * The bf16-state adjoint's cp.async-loading siblings (runtime/torch/seqc_delta_bwd.py LR_DELTA_ADJ_LOAD "ca"; the kernels'
 * _ca siblings, compiler/backends/cuda/delta-adjoint-bf16.ts DELTA_ADJ_BF16_CA_CONFIGS, bit for bit their _zb / _zb_ob
 * twins on the emulation: test/cuda-delta-adjoint-bf16-ca-emu) on CPU torch with a fake kernel module (the records of
 * delta-bwd.ts's modules): "ca" launches the bf16-state pick's _ca sibling (_zb_ca; with LR_DELTA_ADJ_OUT "bf16"
 * _zb_ob_ca) with the same arguments and output dtypes; "plain", the fp32-state path (ZBF16 off), the per-key module and a
 * module without _ca records launch as before; launch_switches holds the switch (the graphed backward's key). "ca" is the
 * default (since H200 call F15).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;

const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
sys.path.insert(0, 'test/torch')
import torch
import seqc_delta_bwd as d
inp = json.loads(sys.stdin.read())
from fake_kernels import KM, calls
out = {}
def run(al, ao, zb, mode, K, rec=None, B=2, T=100, H=3):
    d.ADJ_LOAD, d.ADJ_OUT, d.ZBF16 = al, ao, zb
    calls.clear()
    launch = d.kernel_launch(KM(inp[rec or mode]), torch.device('cpu'), 'bf16', 132)
    launch.tin = torch.bfloat16
    x = torch.zeros(B, T, H, K)
    ld = torch.zeros(B, T, H, K) if mode == 'key' else torch.zeros(B, T, H) if mode == 'scalar' else None
    r = d.delta_kernels(launch, x, x, x, x, x, ld, None, x, None, 64)
    return {'adj': calls[-1][0], 'nargs': len(calls[-1][2]), 'dtypes': [str(t.dtype) if t is not None else 'None' for t in r[:6]], 'switches': list(d.launch_switches())}
for mode in ('none', 'scalar'):
    for K in (64, 128):
        for ao in ('f32', 'bf16'):
            out['%s%d%s' % (mode, K, ao)] = [run(al, ao, 'on', mode, K) for al in ('plain', 'ca')]
out['zoff'] = run('ca', 'f32', 'off', 'scalar', 64)
out['key'] = run('ca', 'f32', 'on', 'key', 64)
out['nocarec'] = run('ca', 'f32', 'on', 'scalar', 128, 'nocarec')
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: the bf16 adjoint's cp.async loads (LR_DELTA_ADJ_LOAD)", () => {
  it("\"ca\": the bf16-state pick's _ca sibling, same arguments and dtypes; elsewhere as before; in launch_switches", () => {
    const scalar = deltaBwdModule(deltaBwdConfigs("scalar")).kernels;
    const inp = { none: deltaBwdModule(deltaBwdConfigs("none")).kernels, scalar, key: deltaBwdModule(deltaBwdConfigs("key")).kernels, nocarec: scalar.filter((k) => !k.load) };
    expect(inp.scalar.filter((k) => k.load).length).toBe(4);
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8", env: { ...process.env, LR_DELTA_ADJ_LOAD: undefined } });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    for (const mode of ["none", "scalar"])
      for (const K of [64, 128])
        for (const ao of ["f32", "bf16"]) {
          const [plain, ca] = got[`${mode}${K}${ao}`], base = `seqc_delta_adj_${mode}_c64k${K}v${K}_bf16_bf16_zb${ao === "bf16" ? "_ob" : ""}`;
          expect([plain.adj, ca.adj], `${mode} ${K} ${ao}`).toEqual([base, `${base}_ca`]);
          expect([ca.nargs, ca.dtypes], `${mode} ${K} ${ao}`).toEqual([plain.nargs, plain.dtypes]);
          // the two runs' switches differ in ADJ_LOAD alone: the graphed backward's key tells them apart
          expect(ca.switches.filter((x: string, i: number) => x !== plain.switches[i])).toEqual(["ca"]);
        }
    expect(got.zoff.adj).toBe("seqc_delta_adj_scalar_c64k64v64_bf16_bf16");
    expect(got.key.adj.endsWith("_ca")).toBe(false);
    expect(got.nocarec.adj).toBe("seqc_delta_adj_scalar_c64k128v128_bf16_bf16_zb");
    // the default ("ca" since H200 call F15); the environment still picks "plain"
    const dflt = (v?: string) => spawnSync("/usr/bin/python3", ["-c", "import sys; sys.path.insert(0, 'runtime/torch'); import seqc_delta_bwd as d; print(d.ADJ_LOAD)"], { encoding: "utf8", env: { ...process.env, LR_DELTA_ADJ_LOAD: v } }).stdout.trim();
    expect([dflt(), dflt("plain")]).toEqual(["ca", "plain"]);
  }, 120_000);
});
