/**
 * Which kernel the reads from saved chunk states take (runtime/torch/seqc_delta_bwd.py r_launch, LR_DELTA_R) on a fake
 * kernel module (CPU torch; the records of compiler/backends/cuda/delta-r.ts's default module): "tf32x3" (default) the
 * tensor-core twin (entry _tf32x3, its _zb sibling with zout), "fp32" the FMA kernel (and its _zb sibling); a module
 * without twins (the FMA records only) gives the FMA kernel under either; grid (N, 1), R float32 (bf16 with zout), the
 * S0 argument a float32 copy for bf16 states (null with zout: the states are S0), the outputs' shapes.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { DELTA_R_CONFIGS, DELTA_R_ZB_CONFIGS, deltaRModule } from "../compiler/backends/cuda/delta-r.ts";

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
for mod in ('all', 'fma'):
    for rm in ('tf32x3', 'fp32'):
        for dt in (torch.bfloat16, torch.float32):
            for zout in (False, True):
                d.R_MATH = rm
                calls.clear()
                r = d.r_launch(KM(inp[mod]), torch.device('cpu'))
                K = 128 if dt == torch.bfloat16 else 64
                R, S0 = r(64, K, K, torch.zeros(5, 64, K), torch.zeros(5, 64, K), torch.zeros(5, K, K, dtype=dt), zout=zout)
                out[f'{mod} {rm} {str(dt)[6:]} {int(zout)}'] = [calls[0][0], calls[0][1], calls[0][2][4], str(R.dtype)[6:], list(R.shape), str(S0.dtype)[6:], list(S0.shape)]
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: the reads from saved states' kernel (LR_DELTA_R)", () => {
  it("\"tf32x3\" (default) takes the tensor-core twin, \"fp32\" the FMA kernel; a module without twins the FMA kernel", () => {
    const inp = { all: deltaRModule().kernels, fma: deltaRModule([...DELTA_R_CONFIGS, ...DELTA_R_ZB_CONFIGS]).kernels };
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const rec = (entry: string, s0: string, rt: string, K: number, st: string) => [entry, [5, 1], s0, rt, [5, 64, K], st, [5, K, K]];
    for (const mod of ["all", "fma"])
      for (const rm of ["tf32x3", "fp32"]) {
        const m = mod === "all" && rm === "tf32x3" ? "_tf32x3" : "";
        expect(got[`${mod} ${rm} bfloat16 0`], `${mod} ${rm}`).toEqual(rec(`seqc_delta_r_c64k128v128_bf16${m}`, "ptr", "float32", 128, "float32"));
        expect(got[`${mod} ${rm} bfloat16 1`], `${mod} ${rm}`).toEqual(rec(`seqc_delta_r_c64k128v128_bf16${m}_zb`, "null", "bfloat16", 128, "bfloat16"));
        expect(got[`${mod} ${rm} float32 0`], `${mod} ${rm}`).toEqual(rec(`seqc_delta_r_c64k64v64_f32${m}`, "null", "float32", 64, "float32"));
        expect(got[`${mod} ${rm} float32 1`], `${mod} ${rm}`).toEqual(rec(`seqc_delta_r_c64k64v64_f32${m}_zb`, "ptr", "bfloat16", 64, "bfloat16"));
      }
    // the default is "tf32x3"
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "LR_DELTA_R"));
    const d = spawnSync("/usr/bin/python3", ["-c", "import sys; sys.path.insert(0, 'runtime/torch'); import seqc_delta_bwd as d; print(d.R_MATH)"], { encoding: "utf8", env });
    expect(d.stdout.trim(), d.stderr).toBe("tf32x3");
  }, 120_000);
});
