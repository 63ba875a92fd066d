/**
 * prep_bwd's wout twins with 16-byte stores (compiler/backends/cuda/delta-prep.ts wstore "quad", entries _wbq / _wbxq):
 * their records in the delta backward's module (delta-bwd.ts prepBwdQuad: decay none / scalar with twins, last; each the
 * wout record of the same entry but wstore "quad" and the entry's q; decay "key" and the twins' module none) and the
 * runtime's switch (runtime/torch/seqc_delta_bwd.py LR_DELTA_PREP_BWD_STORE, in launch_switches()) on a fake kernel module
 * (CPU torch, test/torch/fake_kernels.py): "quad" launches the _wbq / _wbxq sibling in place of _wb / _wbx with the same
 * arguments, grid and output dtypes / shapes; "quad_bm16" the _bm16 sibling (BM as bf16 mma) where decay none, else as
 * "quad"; "pair", a module without them, or WALK_BF16 "off": as before. "quad_bm16" is the default (since H200 call F15).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { deltaBwdConfigs, deltaBwdModule } from "../compiler/backends/cuda/delta-bwd.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

describe("prep_bwd's quad-store twins in the delta backward module", () => {
  it.each(["none", "scalar", "key"] as const)("decay %s", (decay) => {
    const m = deltaBwdModule(deltaBwdConfigs(decay)), all = m.kernels.filter((k) => k.wstore), quad = all.filter((k) => !k.bmMma), bm = all.filter((k) => k.bmMma);
    if (decay === "key") {
      expect(all).toEqual([]);
      return;
    }
    expect(quad.map((k) => k.entry)).toEqual(["_wbq", "_wbxq"].flatMap((x) => [64, 128].map((K) => `seqc_delta_prep_bwd_${decay}_c64k${K}v${K}_bf16_tf32${x}`)));
    expect(m.kernels.slice(-all.length)).toEqual([...quad, ...bm]);
    // decay none: then the quad siblings with BM as bf16 mma (bmMma "bf16", _bm16)
    expect(bm.map((k) => k.entry)).toEqual(decay === "none" ? quad.map((k) => `${k.entry}_bm16`) : []);
    for (const { bmMma, entry, ...rest } of bm) {
      expect(bmMma).toBe("bf16");
      expect({ ...rest, entry: entry.replace(/_bm16$/, "") }).toEqual(quad.find((x) => `${x.entry}_bm16` === entry));
      expect(m.source.split(` ${entry}(`).length, entry).toBe(2);
    }
    for (const { wstore, entry, ...rest } of quad) {
      expect(wstore).toBe("quad");
      const w = m.kernels.find((x) => x.entry === entry.slice(0, -1) && !x.wstore)!;
      expect({ ...rest, entry: w.entry }, entry).toEqual(w);
      expect(m.source.split(` ${entry}(`).length, entry).toBe(2);
    }
    expect(deltaBwdModule(deltaBwdConfigs(decay, false)).kernels.filter((k) => k.wstore)).toEqual([]);
  });
});

const script = `
import json, sys
sys.path.insert(0, 'runtime/torch')
sys.path.insert(0, 'test/torch')
import torch
import seqc_delta_bwd as d
inp = json.loads(sys.stdin.read())
from fake_kernels import KM, calls
def run(store, wb, mode, K, B, T, H, noquad=False):
    d.WALK_BF16, d.ZBF16, d.PREP_BWD_STORE = wb, 'on', store
    calls.clear()
    ks = [k for k in inp[mode] if not (noquad and k.get('wstore'))]
    launch = d.kernel_launch(KM(ks), torch.device('cpu'), 'bf16', 132)
    launch.tin = torch.bfloat16
    launch.r = None
    x = torch.zeros(B, T, H, K)
    ld = torch.zeros(B, T, H) if mode == 'scalar' else None
    outs = []
    def spy(op, *a, **kw):
        o = launch(op, *a, **kw)
        if op == 'prep_bwd':
            outs.append([[str(t.dtype).replace('torch.', '')] + list(t.shape) for t in o])
        return o
    spy.has, spy.tin, spy.r, spy.zbf16, spy.walk_bf16 = launch.has, launch.tin, launch.r, launch.zbf16, launch.walk_bf16
    d.delta_kernels(spy, x, x, x, x, x, ld, None, x, None, 64)
    return {'entries': [[c[0], c[1]] for c in calls], 'nargs': [len(c[2]) for c in calls], 'outs': outs}
out = {}
for store in ('pair', 'quad'):
    out[store + '_all'] = run(store, 'all', 'none', 128, 1, 100, 8)
    out[store + '_on'] = run(store, 'on', 'scalar', 64, 8, 100, 16)
out['bm_all'] = run('quad_bm16', 'all', 'none', 128, 1, 100, 8)
out['bm_on'] = run('quad_bm16', 'on', 'scalar', 64, 8, 100, 16)
out['quad_off'] = run('quad', 'off', 'scalar', 64, 2, 100, 3)
out['quad_noquad'] = run('quad', 'all', 'none', 128, 1, 100, 8, True)
d.PREP_BWD_STORE = 'pair'
a = d.launch_switches()
d.PREP_BWD_STORE = 'quad'
out['switches'] = [a[0], d.launch_switches()[0], len(a)]
print(json.dumps(out))
`;

const dflt = (v?: string) => spawnSync("/usr/bin/python3", ["-c", "import sys; sys.path.insert(0, 'runtime/torch'); import seqc_delta_bwd as d; print(d.PREP_BWD_STORE)"], { encoding: "utf8", env: { ...process.env, LR_DELTA_PREP_BWD_STORE: v } }).stdout.trim();

describe.skipIf(!cpuTorch)("torch target: LR_DELTA_PREP_BWD_STORE on a fake kernel module", () => {
  it("\"quad\": the _wbq / _wbxq sibling, same grid, arguments and outputs; \"pair\", no quad records, WALK_BF16 off: as before", () => {
    const inp = { none: deltaBwdModule(deltaBwdConfigs("none")).kernels, scalar: deltaBwdModule(deltaBwdConfigs("scalar")).kernels };
    const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(inp), encoding: "utf8", env: { ...process.env, LR_DELTA_PREP_BWD_STORE: undefined } });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const e = (x: { entries: [string, number[]][] }) => x.entries.map(([n, g]) => `${n} ${g.join("x")}`);
    expect(e(got.pair_all)[2]).toBe("seqc_delta_prep_bwd_none_c64k128v128_bf16_tf32_wbx 16x1");
    expect(e(got.quad_all)[2]).toBe("seqc_delta_prep_bwd_none_c64k128v128_bf16_tf32_wbxq 16x1");
    expect(e(got.pair_on)[2]).toBe("seqc_delta_prep_bwd_scalar_c64k64v64_bf16_tf32_wb 256x1");
    expect(e(got.quad_on)[2]).toBe("seqc_delta_prep_bwd_scalar_c64k64v64_bf16_tf32_wbq 256x1");
    for (const w of ["all", "on"]) {
      const p = got[`pair_${w}`], q = got[`quad_${w}`];
      expect(e(q).filter((_, i) => i !== 2)).toEqual(e(p).filter((_, i) => i !== 2));
      expect(q.nargs).toEqual(p.nargs);
      expect(q.outs).toEqual(p.outs);
    }
    expect(got.quad_all.outs[0]).toEqual([["bfloat16", 16, 64, 128], ["bfloat16", 16, 64, 128], ["bfloat16", 16, 128, 128], ["bfloat16", 16, 128, 64], ["float32", 16]]);
    // quad_bm16: decay none's _bm16 sibling, a scalar decay the quad one
    expect(e(got.bm_all)[2]).toBe("seqc_delta_prep_bwd_none_c64k128v128_bf16_tf32_wbxq_bm16 16x1");
    expect(got.bm_all.outs).toEqual(got.quad_all.outs);
    expect(e(got.bm_on)).toEqual(e(got.quad_on));
    expect(e(got.quad_off)[2]).toBe("seqc_delta_prep_bwd_scalar_c64k64v64_bf16_tf32 12x1");
    expect(e(got.quad_noquad)).toEqual(e(got.pair_all));
    expect(got.switches).toEqual(["pair", "quad", got.switches[2]]);
    // the default ("quad_bm16" since H200 call F15); the environment still picks "pair"
    expect([dflt(), dflt("pair")]).toEqual(["quad_bm16", "pair"]);
  }, 120_000);
});
