"""Driver for test/torch-lowrank-copies.test.ts: the float32 copies (copy_, stack, cat, clone) of a bf16 training step's
low-rank chunked backward (seqc_chunked_lowrank.lowrank_backward, LR_BWD "wy"), counted on CPU torch by call site with
every plan stubbed (plan_stubs.py) and the low-rank kernels' launchers replaced by lowrank_glue.py's recurrence stand-ins
(their own ops not counted), per LR_EV_LINES; and whether the paths' gradients are bitwise equal.
argv: <modules dir> <model name> <dy: "strided" (the wy stand-in reads a strided dY, wy_launcher's dy_stride) or "contiguous">.
Prints one JSON line: {"off": {"copies": n, "sites": {site: n}}, "on": {...}, "equal": {grad: bool}}."""
import json
import os
import sys
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plan_stubs as S  # noqa: E402
import lowrank_glue as G  # noqa: E402
import seqc_chunked_lowrank as L  # noqa: E402

mods, name, dy = sys.argv[1], sys.argv[2], sys.argv[3]
inside = [0]


def quiet(f):
    """f with its own ops not counted (its attributes kept)."""
    def g(*a, **k):
        inside[0] += 1
        try:
            return f(*a, **k)
        finally:
            inside[0] -= 1
    g.__dict__.update(getattr(f, "__dict__", {}))
    return g


def wy(calls):
    f = G.recurrence_wy(calls)
    if dy == "strided":
        f.dy_stride = True
    return f


calls = []
L.fused_launcher = lambda m, device, way=None, math="fp32", **kw: quiet(G.recurrence_transitions(calls))
L.readout_launcher = lambda m, device, way=None, math="fp32", **kw: quiet(G.recurrence_readouts(calls))
L.pass_launcher = lambda m, device, way=None, **kw: quiet(G.recurrence_pass(calls))
L.wy_launcher = lambda m, device, way=None, math="fp32", **kw: quiet(wy(calls))
L.readout_key_launcher = lambda base, m, device, way=None: base
OPS = {"copy_", "stack", "cat", "clone"}


class Census(TorchDispatchMode):
    def __init__(self, big):
        super().__init__()
        self.big, self.sites = big, {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        op = func.overloadpacket.__name__
        if op in OPS and not inside[0] and isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.numel() >= self.big:
            src = next((a for a in (args[1:] if op == "copy_" else args) if isinstance(a, torch.Tensor)), None)
            if op == "copy_" and src is not None and src.dtype != torch.float32:
                return out  # a conversion, not a copy
            st = [f for f in traceback.extract_stack() if os.path.basename(f.filename) in ("seqc_chunked_lowrank.py", "seqc_lowrank_wy.py")]
            site = "%s %s:%d" % (op, os.path.basename(st[-1].filename), st[-1].lineno) if st else op
            self.sites[site] = self.sites.get(site, 0) + 1
        return out


# plan_stubs.stub_model reads the chunked "names" of the models it was written for; the low-rank chain has none (its
# names are under "lowRank"): run its text with that read made optional
src = open(S.__file__).read().replace('n = m.chunked["names"]', 'n = m.chunked.get("names") or {}')
ns = {"__name__": "plan_stubs_lowrank", "__file__": S.__file__}
exec(compile(src, S.__file__, "exec"), ns)
m = ns["stub_model"](mods, name)
L.LR_GRAPHS = False
res = {}
grads = {}
for sw in ("off", "on"):
    L.LR_EV_LINES = sw
    big, g, x, pars = S.step_inputs(m, name)
    mode = Census(big * 2)  # [B, T, H, 64] / 2: the lines and stacks, not the log decays
    grads[sw], _ = S.grad_step(m, x, pars, None, g, mode)
    res[sw] = {"copies": sum(mode.sites.values()), "sites": mode.sites}
res["equal"] = {k: bool(torch.equal(grads["on"][k], grads["off"][k])) for k in grads["off"]}
res["standinCalls"] = len(calls)
print(json.dumps(res))
