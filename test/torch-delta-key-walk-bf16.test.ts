/**
 * The per-key decay's reverse walk with bf16 operands (runtime/torch/seqc_delta_bwd.py LR_DELTA_KEY_WALK_BF16, default
 * "on" since H200 call F15) on a fake kernel module (CPU torch; the records of compiler/backends/cuda/delta-bwd.ts's "key" module): "on"
 * (math "bf16", bf16 inputs) launches prep_bwd's per-key twin's _wb sibling (M bfloat16 [N, C, K], NN^T bfloat16
 * [N, K, C], X and BM float32, A [N, K]) and the per-key bf16 walk (many rows where B H (V / cols) 2 >= the SM count,
 * else 8 columns) writing float32 ZS and Y, for the reverse walk; prep_fwd's _wb sibling and the same walk for the
 * forward walk (RWKV-7 keeps no chunk states); the adjoint as without. "off",
 * math "tf32": as before. The switch is in launch_switches().
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
inp = json.loads(sys.stdin.read())
from fake_kernels import KM, calls
out = {}
def run(kwb, math, K, B, T, H, sms=132):
    d.KEY_WALK_BF16 = kwb
    calls.clear()
    launch = d.kernel_launch(KM(inp), torch.device('cpu'), math, sms)
    launch.tin = torch.bfloat16
    launch.r = None
    x = torch.zeros(B, T, H, K)
    outs = []
    def spy(op, *a, **kw):
        o = launch(op, *a, **kw)
        if op in ('prep_fwd', 'prep_bwd', 'walk'):
            outs.append([op] + [[str(t.dtype).replace('torch.', '')] + list(t.shape) for t in o])
        return o
    spy.has, spy.tin, spy.r, spy.zbf16, spy.walk_bf16 = launch.has, launch.tin, launch.r, launch.zbf16, launch.walk_bf16
    d.delta_kernels(spy, x, x, x, x, x, torch.zeros(B, T, H, K), None, x, None, 64)
    return {'entries': [[c[0], c[1]] for c in calls], 'outs': outs}
out['off'] = run('off', 'bf16', 128, 4, 100, 16)
out['many'] = run('on', 'bf16', 128, 4, 100, 16)
out['few'] = run('on', 'bf16', 128, 1, 100, 8)
out['k64'] = run('on', 'bf16', 64, 8, 100, 16)
out['tf32'] = run('on', 'tf32', 128, 4, 100, 16)
a = d.launch_switches(); d.KEY_WALK_BF16 = 'off'; b = d.launch_switches(); d.KEY_WALK_BF16 = 'on'; c = d.launch_switches()
out['switches'] = [b != c, len(b) == len(c)]
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: the per-key bf16 reverse walk (LR_DELTA_KEY_WALK_BF16) on a fake kernel module", () => {
  it("\"on\": prep_fwd's and prep_bwd's per-key _wb siblings (bf16 M, NN^T) and the per-key bf16 walk (float32 ZS, Y) both ways, for many or few rows; \"off\", math tf32: as before", () => {
    const inp = deltaBwdModule(deltaBwdConfigs("key")).kernels;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const e = (x: { entries: [string, number[]][] }) => x.entries.map(([n, g]) => `${n} ${g.join("x")}`);
    // off: the 3xTF32 walk for many rows both ways, prep_bwd's twin with float32 operands
    expect(e(got.off).slice(0, 4)).toEqual(["seqc_delta_prep_fwd_key_c64k128v128_bf16_tf32 128x1", "seqc_delta_walk_key_c64k128v128_g64_w2_tf32x3 64x2", "seqc_delta_prep_bwd_key_c64k128v128_bf16_tf32 128x1", "seqc_delta_walk_key_c64k128v128_g64_w2_tf32x3 64x2"]);
    expect(got.off.outs[2]).toEqual(["prep_bwd", ["float32", 128, 64, 128], ["float32", 128, 64, 128], ["float32", 128, 128, 128], ["float32", 128, 64, 128], ["float32", 128, 128]]);
    // on, B H = 64: prep_fwd's and prep_bwd's _wb siblings, the bf16 walk for many rows both ways
    expect(e(got.many).slice(0, 4)).toEqual(["seqc_delta_prep_fwd_key_c64k128v128_bf16_tf32_wb 128x1", "seqc_delta_walk_key_c64k128v128_g64_w2_bf16 64x2", "seqc_delta_prep_bwd_key_c64k128v128_bf16_tf32_wb 128x1", "seqc_delta_walk_key_c64k128v128_g64_w2_bf16 64x2"]);
    expect(e(got.many)[4]).toBe(e(got.off)[4]);  // the adjoint
    expect(got.many.outs[0]).toEqual(["prep_fwd", ["float32", 128, 64, 64], ["bfloat16", 128, 64, 128], ["float32", 128, 64, 128], ["float32", 128, 128, 128], ["bfloat16", 128, 128, 64], ["float32", 128, 128]]);
    expect(got.many.outs[2]).toEqual(["prep_bwd", ["bfloat16", 128, 64, 128], ["float32", 128, 64, 128], ["float32", 128, 128, 128], ["bfloat16", 128, 128, 64], ["float32", 128, 128]]);
    for (const i of [1, 3]) expect(got.many.outs[i]).toEqual(["walk", ["float32", 128, 128, 128], ["float32", 128, 64, 128], ["float32", 64, 128, 128]]);
    // on, B H = 8: the walk for few rows (8 columns, three buffer sets)
    expect(e(got.few)[1]).toBe("seqc_delta_walk_key_c64k128v128_g8_p3_bf16 8x16");
    expect(e(got.few).slice(2, 4)).toEqual(["seqc_delta_prep_bwd_key_c64k128v128_bf16_tf32_wb 16x1", "seqc_delta_walk_key_c64k128v128_g8_p3_bf16 8x16"]);
    // on, K = 64, B H = 128
    expect(e(got.k64).slice(2, 4)).toEqual(["seqc_delta_prep_bwd_key_c64k64v64_bf16_tf32_wb 256x1", "seqc_delta_walk_key_c64k64v64_g32_bf16 128x2"]);
    // math tf32: as before
    expect(e(got.tf32).filter((s) => /_wb |_bf16 /.test(s))).toEqual([]);
    expect(got.switches).toEqual([true, true]);
    // the default ("on" since H200 call F15); the environment still picks either
    const dflt = (v?: string) => spawnSync("/usr/bin/python3", ["-c", "import sys; sys.path.insert(0, 'runtime/torch'); import seqc_delta_bwd as d; print(d.KEY_WALK_BF16)"], { encoding: "utf8", env: { ...process.env, LR_DELTA_KEY_WALK_BF16: v } }).stdout.trim();
    expect([dflt(), dflt("off")]).toEqual(["on", "off"]);
  }, 120_000);
});
