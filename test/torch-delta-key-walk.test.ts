/**
 * The per-key decay's walk for many rows (runtime/torch/seqc_delta_bwd.py LR_DELTA_KEY_WALK, default "many" since H200 call F14; the "key"
 * module's seqc_delta_walk_key_c64k128v128_g64_w2_tf32x3, delta-walk-mma.ts DELTA_WALK_KEY_WIDE_CONFIGS) on a fake kernel
 * module (CPU torch): "old" keeps the rule before it (the 16-column 3xTF32 twin, the split fp32 walk for few rows);
 * "many" takes it where B H (V / 64) 2 >= the SM count, as the scalar decay's walk for many rows; never without math.
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
ks = json.loads(sys.stdin.read())
from fake_kernels import KM, calls
out = []
for key_walk, math, BH in (('old', 'tf32', 64), ('many', 'tf32', 64), ('many', 'tf32', 8), ('many', None, 64)):
    d.KEY_WALK = key_walk
    calls.clear()
    N = BH * 2
    t = torch.zeros
    d.kernel_launch(KM(ks), torch.device('cpu'), math, 132)('walk', 'key', 64, 128, 128, t(N, 64, 128), t(N, 64, 128), t(N, 128, 128), t(N, 64, 128), t(N, 128), None, BH, 2, 0)
    out.append(calls[0][:2])
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: the per-key walk for many rows (LR_DELTA_KEY_WALK) on a fake kernel module", () => {
  it("\"old\" the 16-column twin; \"many\" (default) the 64-column per-key walk where B H (V / 64) 2 >= the SMs, else the split walk; without math the fp32 walk", () => {
    const ks = deltaBwdModule(deltaBwdConfigs("key")).kernels;
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(ks), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      ["seqc_delta_walk_key_c64k128v128_tf32x3", [64, 8]],
      ["seqc_delta_walk_key_c64k128v128_g64_w2_tf32x3", [64, 2]],
      ["seqc_delta_walk_key_c64k128v128_g8_s2", [8, 16]],
      ["seqc_delta_walk_key_c64k128v128", [64, 8]],
    ]);
    // the default
    expect(spawnSync("/usr/bin/python3", ["-c", "import sys; sys.path.insert(0, 'runtime/torch'); import seqc_delta_bwd as d; print(d.KEY_WALK)"], { encoding: "utf8", env: { ...process.env, LR_DELTA_KEY_WALK: undefined } }).stdout.trim()).toBe("many");
  }, 120_000);
});
