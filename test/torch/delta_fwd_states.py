"""The delta backward with the forward's chunk states (runtime/torch/seqc_delta_bwd.py delta_backward `states`;
seqc_chunked_lowrank LR_FWD_STATES) on CPU in float64, for test/torch-delta-fwd-states.test.ts: the chunk start states
and final state from the token loop (independent of the walk), given to the torch ops and to the kernels' stand-in (test/
torch/delta_kernels_standin.py, with kern.r: R = X + M S0), against the same backward without them (the forward walk);
bf16-rounded states (as a bf16 forward stores them); states of another shape (ignored: the walk); states a chunk off (must
differ). Prints one JSON object."""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "runtime", "torch"))
sys.path.insert(0, HERE)
import seqc_delta_bwd as d  # noqa: E402
from delta_kernels_standin import standin  # noqa: E402

dt = torch.float64


def case(B, T, H, K, V, decay, init, C, seed):
    g = torch.Generator().manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=dt)  # noqa: E731
    k = torch.nn.functional.normalize(rn(B, T, H, K), dim=-1)
    beta = torch.sigmoid(rn(B, T, H))
    u, w, kk, v, q = -beta[..., None] * k, k, beta[..., None] * k, rn(B, T, H, V), rn(B, T, H, K) / K ** 0.5
    ld = torch.nn.functional.logsigmoid(rn(B, T, H)) / 4 if decay == "scalar" else None
    S_init = rn(B, H, K, V) if init else None
    dY, dS = rn(B, T, H, V), rn(B, H, K, V)
    # the token loop: S before each chunk's first token (chunks of C tokens from t = 0), the final state
    nC = -(-T // C)
    S = S_init.clone() if init else torch.zeros(B, H, K, V, dtype=dt)
    starts = torch.empty(B, H, nC, K, V, dtype=dt)
    for t in range(T):
        if t % C == 0:
            starts[:, :, t // C] = S
        r = torch.einsum("bhkv,bhk->bhv", S, w[:, t])  # (the state before the step's decay)
        if ld is not None:
            S = S * torch.exp(ld[:, t])[..., None, None]
        S = S + torch.einsum("bhk,bhv->bhkv", u[:, t], r) + torch.einsum("bhk,bhv->bhkv", kk[:, t], v[:, t])
    return (u, w, kk, v, q, ld, S_init, dY, dS), starts.reshape(B * H * nC, K, V), S.reshape(B * H, K, V)


def rel(a, b):
    """The largest relative difference over the gradients (absolute below a reference norm of 1e-8: T = 1's dld)."""
    return max(((x - y).norm() / max(y.norm().item(), 1e-8)).item() for x, y in zip(a, b) if x is not None)


def kern_of(calls):
    kern = standin(calls, dt)

    def r(C, K, V, M, X, S):
        calls.append("r")
        return X + M @ S.to(dt), S.to(dt)
    r.has = lambda C, K, V, sdt: sdt in (torch.float64, torch.float32, torch.bfloat16)
    kern.r = r
    return kern


out = {}
for name, (B, T, H, K, V, decay, init, C) in {
    "none T=100 C=64": (2, 100, 3, 8, 6, "none", True, 64),
    "scalar T=100 C=8": (2, 100, 3, 8, 6, "scalar", True, 8),
    "scalar T=1 C=64": (1, 1, 2, 8, 6, "scalar", False, 64),
    "none T=64 C=16": (1, 64, 2, 4, 4, "none", False, 16),
}.items():
    args, S0s, SF = case(B, T, H, K, V, decay, init, C, 3 + T + K)
    ref = d.delta_backward(*args, C=C)
    res = {}
    res["torch"] = rel(d.delta_backward(*args, C=C, states=(S0s, SF)), ref)
    calls = []
    kref = d.delta_backward(*args, C=C, kern=kern_of(calls))
    res["kernels no states vs torch"] = rel(kref, ref)
    res["calls no states"] = calls
    calls = []
    res["kernels"] = rel(d.delta_backward(*args, C=C, kern=kern_of(calls), states=(S0s, SF)), ref)
    res["calls"] = calls
    res["torch bf16 states"] = rel(d.delta_backward(*args, C=C, states=(S0s.to(torch.bfloat16), SF)), ref)
    calls = []
    res["kernels bf16 states"] = rel(d.delta_backward(*args, C=C, kern=kern_of(calls), states=(S0s.to(torch.bfloat16), SF)), ref)
    calls = []
    res["wrong size"] = rel(d.delta_backward(*args, C=C, kern=kern_of(calls), states=(S0s[:-1], SF)), ref)
    res["calls wrong size"] = calls
    nC = -(-T // C)
    if nC > 1:  # each row's states a chunk late: must not pass
        sh = S0s.reshape(B * H, nC, K, V).roll(1, 1).reshape(-1, K, V)
        res["shifted"] = rel(d.delta_backward(*args, C=C, states=(sh, SF)), ref)
    out[name] = res

# LR_FWD_STATES' forward form (seqc_chunked_lowrank.fwd_states_form) on a module stand-in: with "on" the auto pick's -st twin
# (its walk storing the chunk states), else its split3 twin, with a chunkS workspace; with "split3" the split3 twin; where
# the chain is one delta step with no or a scalar decay and the module has kernels.deltaStates
import seqc_chunked_lowrank as lr  # noqa: E402


class Runner:
    def __init__(self, forms, pick):
        self.plan = {"forms": forms}
        self._pick = pick

    def pick(self, dims, B, T, choice="auto", io="f32", out_io=None):
        return next(f for f in self.plan["forms"] if f["variant"] == (self._pick if choice == "auto" else choice)), {}

    def applicable(self, dims, B, T, choice="auto", io="f32", out_io=None):
        return [(f, {}) for f in self.plan["forms"]]


class Model:
    def __init__(self, decay="none", kernels=("deltaBwd", "deltaStates"), pick="chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-r1", st=True):
        self.chunked = {"lowRank": {"E": 1, "P": 1, "R": 1, "decay": decay}}
        self.meta = {"kernels": {k: {} for k in kernels}}
        forms = [{"variant": v, "workspaces": [{"name": "chunk"}] + ([{"name": "chunkS"}] if "split3" in v or "-st-" in v else [])} for v in (
            "chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-r1", "chunked-split3-bf16-k128-v64-r1", "chunked-split3-bf16-k128-v64-a512-iw-ios-r1",
            "chunked-split3-bf16-k128-v16-a512-iw-ios-wc-r1", "chunked-fused-bf16-k128-v64-r1") + (("chunked-split-bf16-k128-v64-a512-iw-ios-nb-wc-w512-st-r1",) if st else ())]
        self.r = Runner(forms, pick)

    def runner(self, key, device):
        return self.r


def form(m, way, io="bf16", f="auto"):
    return lr.fwd_states_form(m, {}, 1, 128, io, "cpu", f, way)


out["form"] = {
    "off": form(Model(), "off"), "on": form(Model(), "on"), "on scalar": form(Model("scalar"), "on"), "on key": form(Model("key"), "on"),
    "no deltaStates": form(Model(kernels=("deltaBwd",)), "on"), "split3 pick": form(Model(pick="chunked-split3-bf16-k128-v16-a512-iw-ios-wc-r1"), "on"),
    "fused pick": form(Model(pick="chunked-fused-bf16-k128-v64-r1"), "on"), "f16": form(Model(), "on", "f16"), "a variant asked": form(Model(), "on", f="chunked-fused-bf16-k128-v64-r1"),
    "split3": form(Model(), "split3"), "split3 scalar": form(Model("scalar"), "split3"), "on without an st twin": form(Model(st=False), "on"),
    "split3 key": form(Model("key"), "split3"),
}
try:
    form(Model(), "yes")
    out["form"]["bad switch"] = "accepted"
except ValueError as e:
    out["form"]["bad switch"] = str(e)
print(json.dumps(out))
