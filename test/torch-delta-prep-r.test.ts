/**
 * R as prep_fwd's epilogue in the torch runtime (runtime/torch/seqc_delta_bwd.py PREP_R, env LR_DELTA_PREP_R, default
 * "off"; compiler/backends/cuda/delta-prep-r.ts) on CPU torch:
 *   - on a fake kernel module (test/torch/fake_kernels.py; the records of delta-bwd.ts's and delta-r.ts's modules): with
 *     "on", the forward's bf16 chunk states and the bf16-state path (ZBF16 "on", the bf16 adjoint), delta_kernels
 *     launches seqc_delta_prep_r_*_zb (U, W, KK, VV, LD, S, B, T, H, TI, R) in place of prep_fwd and delta-r's kernel,
 *     then prep_bwd, the reverse walk and the adjoint with the bf16 states as S0; "bf16" the head-only _m1 entry; "off",
 *     float32 states, ZBF16 "off" or no states: prep_fwd as before; launch_switches holds the switch;
 *   - on the kernels' stand-in in float64 (test/torch/delta_kernels_standin.py, prep_r = prep_fwd's TI and X + M S0):
 *     the gradients with prep_r equal those of prep_fwd + the reads (<= 1e-13), decay none and scalar, ragged T.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";
import { deltaRModule } from "../compiler/backends/cuda/delta-r.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

const picks = `
import json, sys
sys.path.insert(0, 'runtime/torch')
sys.path.insert(0, 'test/torch')
import torch
import seqc_delta_bwd as d
inp = json.loads(sys.stdin.read())
from fake_kernels import KM, calls
def run(pr, mode, K, sdt=torch.bfloat16, zb='on', states=True):
    d.PREP_R, d.ZBF16, d.WALK_BF16 = pr, zb, 'off'  # (the reverse walk as the session-14 path: LR_DELTA_WALK_BF16 has its own test)
    calls.clear()
    launch = d.kernel_launch(KM(inp[mode]), torch.device('cpu'), 'bf16', 132)
    launch.tin = torch.bfloat16
    launch.r = d.r_launch(KM(inp['r']), torch.device('cpu'))
    B, T, H = 2, 100, 3
    x = torch.zeros(B, T, H, K)
    ld = torch.zeros(B, T, H) if mode == 'scalar' else None
    N = B * H * 2
    st = (torch.zeros(N, K, K, dtype=sdt), torch.zeros(B * H, K, K, dtype=sdt)) if states else None
    r = d.delta_kernels(launch, x, x, x, x, x, ld, None, x, None, 64, st)
    sw = list(d.launch_switches()); d.PREP_R = '<probe>'; at = list(d.launch_switches()).index('<probe>'); d.PREP_R = pr  # PREP_R's place in the key
    return {'entries': [c[0] for c in calls], 'first': calls[0][2], 'adjArgs': calls[-1][2][7:12], 'switches': sw[at]}
out = {'on': run('on', 'scalar', 64), 'on none': run('on', 'none', 128), 'bf16': run('bf16', 'scalar', 64), 'off': run('off', 'scalar', 64),
       'f32 states': run('on', 'scalar', 64, torch.float32), 'zbf16 off': run('on', 'scalar', 64, zb='off'), 'no states': run('on', 'scalar', 64, states=False)}
print(json.dumps(out))
`;

const grads = `
import json, sys
sys.path.insert(0, 'runtime/torch')
sys.path.insert(0, 'test/torch')
import torch
import seqc_delta_bwd as d
from delta_kernels_standin import standin
dt = torch.float64
def case(B, T, H, K, V, decay, init, C, seed):  # (test/torch/delta_fwd_states.py's: the token loop's chunk start states)
    g = torch.Generator().manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=dt)
    k = torch.nn.functional.normalize(rn(B, T, H, K), dim=-1)
    beta = torch.sigmoid(rn(B, T, H))
    u, w, kk, v, q = -beta[..., None] * k, k, beta[..., None] * k, rn(B, T, H, V), rn(B, T, H, K) / K ** 0.5
    ld = torch.nn.functional.logsigmoid(rn(B, T, H)) / 4 if decay == "scalar" else None
    S_init = rn(B, H, K, V) if init else None
    dY, dS = rn(B, T, H, V), rn(B, H, K, V)
    nC = -(-T // C)
    S = S_init.clone() if init else torch.zeros(B, H, K, V, dtype=dt)
    starts = torch.empty(B, H, nC, K, V, dtype=dt)
    for t in range(T):
        if t % C == 0:
            starts[:, :, t // C] = S
        r = torch.einsum("bhkv,bhk->bhv", S, w[:, t])
        if ld is not None:
            S = S * torch.exp(ld[:, t])[..., None, None]
        S = S + torch.einsum("bhk,bhv->bhkv", u[:, t], r) + torch.einsum("bhk,bhv->bhkv", kk[:, t], v[:, t])
    return (u, w, kk, v, q, ld, S_init, dY, dS), starts.reshape(B * H * nC, K, V), S.reshape(B * H, K, V)
def rel(a, b):
    return max(((x - y).norm() / max(y.norm().item(), 1e-8)).item() for x, y in zip(a, b) if x is not None)
def kern_of(calls):
    kern = standin(calls, dt)
    def r(C, K, V, M, X, S):
        calls.append("r")
        return X + M @ S.to(dt), S.to(dt)
    r.has = lambda C, K, V, sdt: True
    kern.r = r
    return kern
def with_prep_r(calls):
    kern = kern_of(calls)
    def launch(op, mode, C, K, V, *ts):
        if op != 'prep_r':
            return kern(op, mode, C, K, V, *ts)
        U, W, KK, VV, LD, S, B, T, H = ts
        TI, M, X = kern('prep_fwd', mode, C, K, V, U, W, KK, VV, LD, B, T, H)[:3]
        calls[-1] = 'prep_r'
        return TI, X + M @ S
    launch.has, launch.tin, launch.r = kern.has, kern.tin, kern.r
    launch.prep_r = lambda mode, C, K, V, tin, BH, S: True
    return launch
out = {}
for name, (B, T, H, K, V, decay, init, C) in {"none T=100 C=64": (2, 100, 3, 8, 6, "none", True, 64), "scalar T=100 C=8": (2, 100, 3, 8, 6, "scalar", True, 8), "scalar T=1 C=64": (1, 1, 2, 8, 6, "scalar", False, 64)}.items():
    args, S0s, SF = case(B, T, H, K, V, decay, init, C, 3 + T + K)
    c0, c1 = [], []
    ref = d.delta_backward(*args, C=C, kern=kern_of(c0), states=(S0s, SF))
    got = d.delta_backward(*args, C=C, kern=with_prep_r(c1), states=(S0s, SF))
    out[name] = {'rel': rel(got, ref), 'calls': c1, 'ref calls': c0}
print(json.dumps(out))
`;

describe.skipIf(!cpuTorch)("torch target: R as prep_fwd's epilogue (LR_DELTA_PREP_R)", () => {
  it("\"on\" / \"bf16\" launch prep_r's _zb / _m1_zb record in place of prep_fwd and delta-r's kernel; \"off\", f32 states, ZBF16 off, no states: as before", () => {
    const inp = { none: deltaBwdModule(deltaBwdConfigs("none")).kernels, scalar: deltaBwdModule(deltaBwdConfigs("scalar")).kernels, r: deltaRModule().kernels };
    const r = spawnSync("/usr/bin/python3", ["-c", picks], { input: JSON.stringify(inp), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const tail = (mode: string, K: number) => [`seqc_delta_prep_bwd_${mode}_c64k${K}v${K}_bf16_tf32`, expect.stringMatching(new RegExp(`^seqc_delta_walk_c64k${K}v${K}_.*_zb$`)), expect.stringMatching(new RegExp(`^seqc_delta_adj_${mode}_c64k${K}v${K}_bf16_bf16_zb`))];
    expect(got.on.entries).toEqual(["seqc_delta_prep_r_scalar_c64k64v64_bf16_tf32_zb", ...tail("scalar", 64)]);
    expect(got.on.first).toEqual(["ptr", "ptr", "ptr", "ptr", "ptr", "ptr", 2, 100, 3, "ptr", "ptr"]);
    expect(got.on.adjArgs).toEqual(["ptr", "ptr", "ptr", "ptr", "ptr"]);
    expect(got["on none"].entries).toEqual(["seqc_delta_prep_r_none_c64k128v128_bf16_tf32_zb", ...tail("none", 128)]);
    expect(got["on none"].first).toEqual(["ptr", "ptr", "ptr", "ptr", "null", "ptr", 2, 100, 3, "ptr", "ptr"]);
    expect(got.bf16.entries[0]).toBe("seqc_delta_prep_r_scalar_c64k64v64_bf16_tf32_m1_zb");
    expect(got.off.entries.slice(0, 2)).toEqual(["seqc_delta_prep_fwd_scalar_c64k64v64_bf16_tf32", "seqc_delta_r_c64k64v64_bf16_tf32x3_zb"]);
    expect(got["f32 states"].entries.slice(0, 2)).toEqual(["seqc_delta_prep_fwd_scalar_c64k64v64_bf16_tf32", "seqc_delta_r_c64k64v64_f32_tf32x3_zb"]);
    expect(got["zbf16 off"].entries.slice(0, 2)).toEqual(["seqc_delta_prep_fwd_scalar_c64k64v64_bf16_tf32", "seqc_delta_r_c64k64v64_bf16_tf32x3"]);
    expect(got["no states"].entries[0]).toBe("seqc_delta_prep_fwd_scalar_c64k64v64_bf16_tf32");
    expect(got["no states"].entries[1]).toMatch(/^seqc_delta_walk_/);
    for (const [k, v] of Object.entries(got) as [string, { switches: string }][]) expect(v.switches, k).toBe(k === "bf16" ? "bf16" : k === "off" ? "off" : "on");
  }, 120_000);

  it("on the kernels' stand-in in float64: prep_r's gradients equal prep_fwd + the reads' (<= 1e-13)", () => {
    const r = spawnSync("/usr/bin/python3", ["-c", grads], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as Record<string, { rel: number; calls: string[]; "ref calls": string[] }>;
    expect(Object.keys(got).length).toBe(3);
    for (const [name, c] of Object.entries(got)) {
      expect(c.rel, name).toBeLessThan(1e-13);
      expect(c.calls, name).toEqual(["prep_r", "prep_bwd", "walk", "adj"]);
      expect(c["ref calls"], name).toEqual(["prep_fwd", "r", "prep_bwd", "walk", "adj"]);
    }
  }, 120_000);
});
