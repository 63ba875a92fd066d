/**
 * The delta backward's bf16-state path (runtime/torch/seqc_delta_bwd.py LR_DELTA_ZBF16, default "off") on a fake kernel
 * module (CPU torch; the records of compiler/backends/cuda/delta-bwd.ts's and delta-r.ts's modules): with "on" and a
 * launcher whose adjoint is the bf16 twin (math "bf16", bf16 inputs), delta_kernels launches both walks' _zb siblings
 * (ZS and Y made bfloat16; the default walk's twin, the walk for few rows, the walk for many rows by the same rule as
 * without) and the adjoint's _zb sibling with bfloat16 R, S0, LE, DR and float32 SF; the reads from saved states take
 * delta-r's _zb sibling (bf16 states: S0 is the states themselves, the kernel's S0 argument null; f32 states: a bf16 copy);
 * "off", math "tf32" (no bf16 adjoint) and fp32 inputs keep every record without _zb and float32 tensors.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { deltaRModule } from "../compiler/backends/cuda/delta-r.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

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
def run(zb, math, tin, mode, K, B, T, H, sms=12, states=None):
    d.ZBF16 = zb
    calls.clear()
    km = KM(inp[mode])
    launch = d.kernel_launch(km, torch.device('cpu'), math, sms)
    launch.tin = tin
    launch.r = d.r_launch(KM(inp['r']), torch.device('cpu'))
    x = torch.zeros(B, T, H, K)
    ld = torch.zeros(B, T, H) if mode == 'scalar' else None
    dts = []
    orig = launch
    def spy(op, *a, **kw):
        o = orig(op, *a, **kw)
        if op == 'walk':
            dts.append([str(t.dtype) for t in o])
        return o
    spy.has, spy.tin, spy.r, spy.zbf16 = orig.has, orig.tin, orig.r, orig.zbf16
    r = d.delta_kernels(spy, x, x, x, x, x, ld, None, x, None, 64, states)
    return {'entries': [c[0] for c in calls], 'walks': dts, 'adjArgs': calls[-1][2][7:12], 'dq': str(r[4].dtype), 'r': calls[1][2] if states is not None else None}
nC = 2
out['off'] = run('off', 'bf16', torch.bfloat16, 'scalar', 64, 2, 100, 3)
out['on'] = run('on', 'bf16', torch.bfloat16, 'scalar', 64, 2, 100, 3)
out['none'] = run('on', 'bf16', torch.bfloat16, 'none', 64, 2, 100, 3)
out['tf32'] = run('on', 'tf32', torch.bfloat16, 'scalar', 64, 2, 100, 3)
out['f32'] = run('on', 'bf16', None, 'scalar', 64, 2, 100, 3)
out['few'] = run('on', 'bf16', torch.bfloat16, 'scalar', 128, 1, 100, 8, sms=132)
out['many'] = run('on', 'bf16', torch.bfloat16, 'scalar', 128, 4, 100, 16, sms=132)
S = torch.zeros(2 * 3 * nC, 64, 64)
out['states_bf16'] = run('on', 'bf16', torch.bfloat16, 'scalar', 64, 2, 100, 3, states=(S.bfloat16(), torch.zeros(6, 64, 64).bfloat16()))
out['states_f32'] = run('on', 'bf16', torch.bfloat16, 'scalar', 64, 2, 100, 3, states=(S, torch.zeros(6, 64, 64)))
out['states_off'] = run('off', 'bf16', torch.bfloat16, 'scalar', 64, 2, 100, 3, states=(S.bfloat16(), torch.zeros(6, 64, 64).bfloat16()))
# the adjoint refuses bf16 R without a zin sibling
d.ZBF16 = 'off'
nz = d.kernel_launch(KM([k for k in inp['scalar'] if not k.get('zin')]), torch.device('cpu'), 'bf16', 132)
bf, N = torch.zeros(2, 100, 3, 64, dtype=torch.bfloat16), 12
zk = torch.zeros(N, 64, 64, dtype=torch.bfloat16)
try:
    nz('adj', 'scalar', 64, 64, 64, bf, bf, bf, bf, bf, bf, torch.zeros(2, 100, 3), zk, zk, torch.zeros(6, 64, 64), zk, zk, 2, 100, 3)
    out['refused'] = False
except ValueError:
    out['refused'] = True
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: the delta backward's bf16-state path (LR_DELTA_ZBF16) on a fake kernel module", () => {
  it("\"on\" with the bf16 adjoint: both walks' and the adjoint's _zb siblings, bf16 R / S0 / LE / DR, SF float32; delta-r's _zb sibling from saved states; \"off\", math tf32, fp32 inputs: no _zb", () => {
    const inp = { none: deltaBwdModule(deltaBwdConfigs("none")).kernels, scalar: deltaBwdModule(deltaBwdConfigs("scalar")).kernels, r: deltaRModule().kernels };
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const f = ["torch.float32", "torch.float32", "torch.float32"], b = ["torch.bfloat16", "torch.bfloat16", "torch.float32"];
    const step = (mode: string, K: number, walk: string, adj: string, fwd?: string) => [`seqc_delta_prep_fwd_${mode}_c64k${K}v${K}_bf16_tf32`, fwd ?? walk, `seqc_delta_prep_bwd_${mode}_c64k${K}v${K}_bf16_tf32`, walk, adj];
    expect(got.off.entries).toEqual(step("scalar", 64, "seqc_delta_walk_c64k64v64_tf32x3", "seqc_delta_adj_scalar_c64k64v64_bf16_bf16"));
    expect(got.off.walks).toEqual([f, f]);
    expect(got.on.entries).toEqual(step("scalar", 64, "seqc_delta_walk_c64k64v64_tf32x3_zb", "seqc_delta_adj_scalar_c64k64v64_bf16_bf16_zb"));
    expect(got.on.walks).toEqual([b, b]);
    expect([got.on.dq, got.on.adjArgs]).toEqual(["torch.float32", ["ptr", "ptr", "ptr", "ptr", "ptr"]]);
    expect(got.none.entries).toEqual(step("none", 64, "seqc_delta_walk_c64k64v64_tf32x3_zb", "seqc_delta_adj_none_c64k64v64_bf16_bf16_zb"));
    // math tf32: the TF32 adjoint (no bf16 twin asked for); fp32 inputs: the fp32 kernels; both without _zb
    expect(got.tf32.entries).toEqual(step("scalar", 64, "seqc_delta_walk_c64k64v64_tf32x3", "seqc_delta_adj_scalar_c64k64v64_bf16_tf32"));
    expect(got.f32.entries.some((e: string) => e.endsWith("_zb"))).toBe(false);
    expect([got.tf32.walks, got.f32.walks]).toEqual([[f, f], [f, f]]);
    // (B H = 6 on 12 SMs above: the default walk's twin) K = 128 on 132 SMs: B H = 8 the split fp32 walk for few rows, B H = 64 the walk for many rows; their _zb siblings
    expect(got.few.entries).toEqual(step("scalar", 128, "seqc_delta_walk_c64k128v128_g8_s2_zb", "seqc_delta_adj_scalar_c64k128v128_bf16_bf16_zb"));
    expect(got.many.entries).toEqual(step("scalar", 128, "seqc_delta_walk_c64k128v128_g64_w2_tf32x3_zb", "seqc_delta_adj_scalar_c64k128v128_bf16_bf16_zb"));
    // saved states: no forward walk; delta-r's _zb sibling (bf16 states: S0 argument null, the states are S0), of its
    // tensor-core twin under LR_DELTA_R's default "tf32x3" (test/torch-delta-r-pick)
    expect(got.states_bf16.entries).toEqual(step("scalar", 64, "seqc_delta_walk_c64k64v64_tf32x3_zb", "seqc_delta_adj_scalar_c64k64v64_bf16_bf16_zb", "seqc_delta_r_c64k64v64_bf16_tf32x3_zb"));
    expect(got.states_bf16.walks).toEqual([b]);
    expect(got.states_bf16.r).toEqual(["ptr", "ptr", "ptr", "ptr", "null", 12]);
    expect(got.states_f32.entries[1]).toBe("seqc_delta_r_c64k64v64_f32_tf32x3_zb");
    expect(got.states_f32.r).toEqual(["ptr", "ptr", "ptr", "ptr", "ptr", 12]);
    expect(got.states_off.entries[1]).toBe("seqc_delta_r_c64k64v64_bf16_tf32x3");
    expect(got.refused).toBe(true);
  }, 120_000);
});
