/**
 * The reverse walk with bf16 operands (runtime/torch/seqc_delta_bwd.py LR_DELTA_WALK_BF16, default "all" since H200 call W2) on a fake
 * kernel module (CPU torch; the records of compiler/backends/cuda/delta-bwd.ts's modules): on the bf16-state path (ZBF16
 * "on", math "bf16", bf16 inputs) "on" launches prep_bwd's _wb sibling (M bfloat16 [N, C, K], NN^T bfloat16 [N, K, C], X
 * and BM float32) and the bf16 walk (win "mn": the one for many rows where B H (V / cols) 2 >= the SM count, else the
 * one for few rows) for the reverse walk; "all" the _wbx sibling (X and BM bfloat16 too) and the _bf16x walk; the
 * forward walk and the adjoint as without. "off", ZBF16 "off" and math "tf32" keep the walks and prep_bwd as before.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";

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
def run(wb, zb, math, mode, K, B, T, H, sms=132):
    d.WALK_BF16, d.ZBF16 = wb, zb
    calls.clear()
    launch = d.kernel_launch(KM(inp[mode]), torch.device('cpu'), math, sms)
    launch.tin = torch.bfloat16
    launch.r = None
    x = torch.zeros(B, T, H, K)
    ld = torch.zeros(B, T, H) if mode == 'scalar' else None
    outs = []
    def spy(op, *a, **kw):
        o = launch(op, *a, **kw)
        if op in ('prep_bwd', 'walk'):
            outs.append([op] + [[str(t.dtype).replace('torch.', '')] + list(t.shape) for t in o])
        return o
    spy.has, spy.tin, spy.r, spy.zbf16, spy.walk_bf16 = launch.has, launch.tin, launch.r, launch.zbf16, launch.walk_bf16
    d.delta_kernels(spy, x, x, x, x, x, ld, None, x, None, 64)
    return {'entries': [[c[0], c[1]] for c in calls], 'outs': outs}
out['off'] = run('off', 'on', 'bf16', 'scalar', 64, 2, 100, 3)
out['on64'] = run('on', 'on', 'bf16', 'scalar', 64, 8, 100, 16)
out['all_few'] = run('all', 'on', 'bf16', 'none', 128, 1, 100, 8)
out['on_many'] = run('on', 'on', 'bf16', 'scalar', 128, 4, 100, 16)
out['zb_off'] = run('on', 'off', 'bf16', 'scalar', 128, 4, 100, 16)
out['tf32'] = run('on', 'on', 'tf32', 'scalar', 128, 4, 100, 16)
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: the bf16 reverse walk (LR_DELTA_WALK_BF16) on a fake kernel module", () => {
  it("\"on\" / \"all\": prep_bwd's _wb / _wbx sibling (bf16 M, NN^T; X, BM with all) and the bf16 walk for many or few rows; \"off\", ZBF16 off, math tf32: as before", () => {
    const inp = { none: deltaBwdModule(deltaBwdConfigs("none")).kernels, scalar: deltaBwdModule(deltaBwdConfigs("scalar")).kernels };
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const e = (x: { entries: [string, number[]][] }) => x.entries.map(([n, g]) => `${n} ${g.join("x")}`);
    const N64 = (B: number, H: number) => B * H * 2;
    // off: the walks' _zb siblings, prep_bwd's twin, float32 operands
    expect(e(got.off)).toEqual(["seqc_delta_prep_fwd_scalar_c64k64v64_bf16_tf32 12x1", "seqc_delta_walk_c64k64v64_g8_s4_zb 6x8", "seqc_delta_prep_bwd_scalar_c64k64v64_bf16_tf32 12x1", "seqc_delta_walk_c64k64v64_g8_s4_zb 6x8", "seqc_delta_adj_scalar_c64k64v64_bf16_bf16_zb 12x1"]);
    expect(got.off.outs[1]).toEqual(["prep_bwd", ["float32", 12, 64, 64], ["float32", 12, 64, 64], ["float32", 12, 64, 64], ["float32", 12, 64, 64], ["float32", 12]]);
    // on, K = 64, B H = 128 (>= 33): the walk for many rows (32 columns, grid (B H, 2))
    expect(e(got.on64)).toEqual(["seqc_delta_prep_fwd_scalar_c64k64v64_bf16_tf32 256x1", "seqc_delta_walk_c64k64v64_tf32x3_zb 128x2", "seqc_delta_prep_bwd_scalar_c64k64v64_bf16_tf32_wb 256x1", "seqc_delta_walk_c64k64v64_g32_bf16_zb 128x2", "seqc_delta_adj_scalar_c64k64v64_bf16_bf16_zb 256x1"]);
    const n = N64(8, 16);
    expect(got.on64.outs[1]).toEqual(["prep_bwd", ["bfloat16", n, 64, 64], ["float32", n, 64, 64], ["float32", n, 64, 64], ["bfloat16", n, 64, 64], ["float32", n]]);
    expect(got.on64.outs[2]).toEqual(["walk", ["bfloat16", n, 64, 64], ["bfloat16", n, 64, 64], ["float32", 128, 64, 64]]);
    // all, K = 128, B H = 8: the walk for few rows (8 columns), X and BM bf16, NN^T [N, K, C]
    expect(e(got.all_few)).toEqual(["seqc_delta_prep_fwd_none_c64k128v128_bf16_tf32 16x1", "seqc_delta_walk_c64k128v128_g8_s2_zb 8x16", "seqc_delta_prep_bwd_none_c64k128v128_bf16_tf32_wbx 16x1", "seqc_delta_walk_c64k128v128_g8_p3_bf16x_zb 8x16", "seqc_delta_adj_none_c64k128v128_bf16_bf16_zb 16x1"]);
    expect(got.all_few.outs[1]).toEqual(["prep_bwd", ["bfloat16", 16, 64, 128], ["bfloat16", 16, 64, 128], ["bfloat16", 16, 128, 128], ["bfloat16", 16, 128, 64], ["float32", 16]]);
    // on, K = 128, B H = 64: the walk for many rows (64 columns over 8 warps)
    expect(e(got.on_many).slice(2, 4)).toEqual(["seqc_delta_prep_bwd_scalar_c64k128v128_bf16_tf32_wb 128x1", "seqc_delta_walk_c64k128v128_g64_w2_bf16_zb 64x2"]);
    // ZBF16 off or math tf32: as before (no bf16-state path)
    for (const x of [got.zb_off, got.tf32]) expect(e(x).filter((s) => /_wb|_bf16x?_zb /.test(s))).toEqual([]);
    expect(e(got.zb_off)[3]).toBe("seqc_delta_walk_c64k128v128_g64_w2_tf32x3 64x2");
    // the default
    expect(spawnSync("/usr/bin/python3", ["-c", "import sys; sys.path.insert(0, 'runtime/torch'); import seqc_delta_bwd as d; w = d.WALK_BF16; a = d.launch_switches(); d.WALK_BF16 = 'off'; b = d.launch_switches(); print(w, a != b and len(a) == len(b))"], { encoding: "utf8", env: { ...process.env, LR_DELTA_WALK_BF16: undefined } }).stdout.trim()).toBe("all True");
  }, 120_000);
});
