"""LR_FWD_STATES_COPY on CPU for test/torch-delta-fwd-states.test.ts: seqc_torch.forward's graphed forward (seqc_graphs
with an emulated CUDA graph: work enqueued while capturing is recorded, replay reruns it) on fwd_states_plumbing.py's
module stand-in, its forward writing the chunk states (chunkS: a value per call, the input's sum) through that queue,
five calls with the input at one address (1 eager, 2 captured, 3-5 a direct graph), and seqc_chunked_lowrank.fwd_states
(what backward and backward_eager read). "copy": every call's states its own copy, valid over later calls; "graph": from
the capture on a graph's own tensor, a call's states valid until a later forward replays, then None (the backward's
forward walk). Prints JSON: per way and call [a graph's tensor, valid / this call's values right after its forward,
valid / its values after the five], the replays; a bad switch's error."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seqc_chunked_lowrank as lr  # noqa: E402
import seqc_graphs  # noqa: E402
import seqc_torch  # noqa: E402
import fwd_states_plumbing as F  # noqa: E402  (its module stand-in)

CAPTURING = []


def launch(work):
    if CAPTURING:
        CAPTURING[0].work.append(work)
    else:
        work()


class FakeGraph:
    def __init__(self):
        self.work = []

    def replay(self):
        for w in self.work:
            w()


class _Ctx:
    def __init__(self, enter=None, exit=None):
        self.enter, self.exit = enter, exit

    def __enter__(self):
        if self.enter:
            self.enter()

    def __exit__(self, *a):
        if self.exit:
            self.exit()


class FakeCuda:
    CUDAGraph = FakeGraph
    current_stream = staticmethod(lambda dev=None: type("S", (), {"wait_stream": lambda self, o: None})())
    Stream = current_stream
    stream = staticmethod(lambda s: _Ctx())
    graph = staticmethod(lambda g, pool=None, stream=None: _Ctx(lambda: CAPTURING.append(g), lambda: CAPTURING.pop()))
    graph_pool_handle = staticmethod(lambda: object())
    synchronize = staticmethod(lambda dev=None: None)


class Shim:
    cuda = FakeCuda

    def __getattr__(self, name):
        return getattr(torch, name)


seqc_graphs.torch = Shim()
seqc_graphs._on_cuda = lambda dev: True


class Model(F.Model):
    def execute(self, key, dims, b, t, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None, **kw):
        q, ws = inputs["q"], kw.get("workspaces")
        o, S, cs = torch.empty_like(q), torch.empty([b, F.H, F.K, F.K]), torch.empty(F.B * F.H * F.nC * F.K * F.K)
        launch(lambda: o.copy_(q * 2))
        launch(lambda: S.fill_(7.0))
        launch(lambda: cs.fill_(float(q.sum())))  # (this call's value)
        if ws is not None:
            ws["chunk"] = torch.zeros(16, dtype=torch.uint8)
            ws["chunkS"] = cs.view(torch.uint8)
        return {"o": o}, {"S": S}, form


seqc_torch._check_tensors = lambda m, named: (torch.float32, torch.device("cpu"))
lr.LR_FWD_STATES = "on"


def states(ctx, v):
    """[the backward gets states (seqc_chunked_lowrank.fwd_states, as backward and backward_eager read them), they hold
    this call's values]"""
    s = lr.fwd_states(ctx)
    return [s is not None, s is not None and bool((s[0] == v).all())]


got = {}
for way in ("copy", "graph"):
    lr.LR_FWD_STATES_COPY = way
    m = Model()
    q = torch.zeros(F.B, F.T, F.H, F.K)  # (one address: direct graphs from the third call)
    calls = []
    for i in range(5):
        q.copy_(torch.full_like(q, float(i + 1)))
        ctx = F.Ctx(2)
        seqc_torch.forward(ctx, m, "auto", [q, None])
        v = float(q.sum())
        calls.append((ctx, v, states(ctx, v)))
    ptrs = {x.data_ptr() for e in m._seqc_graphs.values() for outs in [e.out] + [h[1] for h in e.direct.values() if h] for x in outs if x is not None}
    # per call: [its states are a graph's tensor, right after its forward: got / its values, after the five: got / its values]
    got[way] = [[ctx.delta_states[0].data_ptr() in ptrs] + now + states(ctx, v) for ctx, v, now in calls]
    got[way + " replays"] = list(seqc_graphs.stats(m).values())[0][3]
lr.LR_FWD_STATES_COPY = "yes"
try:
    seqc_torch.forward(F.Ctx(2), Model(), "auto", [q, None])
except ValueError as e:
    got["bad switch"] = str(e)
print(json.dumps(got))
