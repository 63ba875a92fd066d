"""test/torch-graphs.test.ts: runtime/torch/seqc_graphs.graphed on CPU torch with an emulated CUDA graph.

The emulation keeps what a CUDA graph does: work enqueued while capturing is recorded (and not run), replay runs
the recorded work again on the same buffers. The test's `fn` enqueues its work through `launch` (as the plans'
ctypes launches and torch ops enqueue kernels). Prints one JSON line of named results; the test asserts on them."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_graphs  # noqa: E402

CAPTURING = []  # the graph being captured (at most one)
POOLS = []  # the pool each capture was given


def launch(work):
    """Enqueue `work` (a closure writing into preallocated tensors): recorded while capturing, else run."""
    if CAPTURING:
        if CAPTURING[0].refuse:
            raise RuntimeError("operation not permitted when stream is capturing")
        CAPTURING[0].work.append(work)
    else:
        work()


class FakeGraph:
    refuse_next = False

    def __init__(self):
        self.work, self.refuse, self.replays = [], FakeGraph.refuse_next, 0

    def replay(self):
        self.replays += 1
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


class FakeStream:
    def wait_stream(self, other):
        pass


class FakeCuda:
    CUDAGraph = FakeGraph

    @staticmethod
    def current_stream(dev=None):
        return FakeStream()

    @staticmethod
    def Stream(dev=None):
        return FakeStream()

    @staticmethod
    def stream(s):
        return _Ctx()

    @staticmethod
    def graph(g, pool=None, stream=None):
        POOLS.append(pool)
        return _Ctx(lambda: CAPTURING.append(g), lambda: CAPTURING.pop())

    @staticmethod
    def graph_pool_handle():
        return object()

    @staticmethod
    def synchronize(dev=None):
        pass


class Shim:
    """seqc_graphs' view of torch: the real CPU tensor functions, the emulated torch.cuda."""
    cuda = FakeCuda

    def __getattr__(self, name):
        return getattr(torch, name)


seqc_graphs.torch = Shim()
seqc_graphs._on_cuda = lambda dev: True

calls = {"fn": 0}


def fn(a, b, c):
    """out0 = 2 a + b (float32), out1 = a * c summed over the last axis (float32, returned as float64), None."""
    calls["fn"] += 1
    o0 = torch.empty(a.shape, dtype=torch.float32)
    o1 = torch.empty(a.shape[:-1], dtype=torch.float32)
    launch(lambda: torch.add(a * 2, b, out=o0))
    launch(lambda: torch.sum(a * c, -1, out=o1))
    return [o0, o1, None]


def want(a, b, c):
    return [(2 * a + b), (a * c).sum(-1).double()]


class Owner:
    pass


def run(owner, key, a, b, c, enabled=True):
    return seqc_graphs.graphed(owner, key, fn, [a, b, c], [None, torch.float64, None], enabled)


def err(got, exp):
    return max(float((g - e).abs().max()) for g, e in zip(got[:2], exp))


out = {}
g = torch.Generator().manual_seed(3)
rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
owner = Owner()
# calls of one signature: 1 eager, 2 captured (+ replayed), 3..5 replays; fresh tensors every call
res, errs, kept = [], [], []
for i in range(5):
    a, b, c = rnd(3, 4), rnd(3, 4), rnd(3, 4)
    r = run(owner, "k", a, b, c)
    errs.append(err(r, want(a, b, c)))
    res.append([x.clone() if x is not None else None for x in r])
    kept.append(r)
    out.setdefault("dtypes", [str(x.dtype) if x is not None else None for x in r])
    out.setdefault("third_none", r[2] is None)
out["errs"] = errs
# results stay the caller's: the later replays did not overwrite earlier results
out["kept_unchanged"] = all(float((k[0] - s[0]).abs().max()) == 0 and float((k[1] - s[1]).abs().max()) == 0 for k, s in zip(kept, res))
out["distinct_storage"] = len({k[0].data_ptr() for k in kept}) == len(kept)
e = next(iter(owner._seqc_graphs.values()))
out["stats"] = list(seqc_graphs.stats(owner).values())[0]
out["replays"] = e.graph.replays
out["fn_calls"] = calls["fn"]  # 1 eager + 1 warm-up + 1 capture; replays do not call fn
# non-contiguous arguments (a transposed view) are copied into the contiguous static buffers
a, b, c = rnd(4, 3).t(), rnd(3, 4), rnd(3, 4)
out["noncontiguous_err"] = err(run(owner, "k", a, b, c), want(a, b, c))
# another signature (shape) is another graph; disabled calls run eagerly and are not counted
a, b, c = rnd(5, 2), rnd(5, 2), rnd(5, 2)
for _ in range(3):
    r = run(owner, "k", a, b, c)
out["second_sig_err"] = err(r, want(a, b, c))
out["signatures"] = len(owner._seqc_graphs)
before = calls["fn"]
r = run(Owner(), "k", a, b, c, enabled=False)
out["disabled_err"] = err(r, want(a, b, c))
out["disabled_fn_calls"] = calls["fn"] - before
# a capture that fails: the call and every later one run eagerly, with the right results
o2 = Owner()
errs = []
for i in range(4):
    FakeGraph.refuse_next = i == 1
    a, b, c = rnd(2, 3), rnd(2, 3), rnd(2, 3)
    errs.append(err(run(o2, "k", a, b, c), want(a, b, c)))
FakeGraph.refuse_next = False
out["failed_errs"] = errs
out["failed_stats"] = list(seqc_graphs.stats(o2).values())[0]
# direct graphs: calls whose arguments sit where the previous call's did read them in place (no copies); values
# changed in place between calls are seen; a third address set after MAX_DIRECT goes through the copies
o4 = Owner()
del POOLS[:]
a, b, c = rnd(3, 2), rnd(3, 2), rnd(3, 2)
errs, kinds = [], []
for i in range(6):
    a.copy_(rnd(3, 2)), b.copy_(rnd(3, 2)), c.copy_(rnd(3, 2))
    r = run(o4, "k", a, b, c)
    errs.append(err(r, want(a, b, c)))
    kinds.append(dict(next(iter(o4._seqc_graphs.values())).replays))
a2, b2, c2 = rnd(3, 2), rnd(3, 2), rnd(3, 2)
for i in range(2):
    a2.copy_(rnd(3, 2))
    r = run(o4, "k", a2, b2, c2)
    errs.append(err(r, want(a2, b2, c2)))
a3, b3, c3 = rnd(3, 2), rnd(3, 2), rnd(3, 2)
for i in range(3):
    r = run(o4, "k", a3, b3, c3)
    errs.append(err(r, want(a3, b3, c3)))
r = run(o4, "k", a, b, c)  # the first addresses again: their direct graph
errs.append(err(r, want(a, b, c)))
out["direct_errs"] = errs
out["direct_kinds"] = kinds
out["direct_stats"] = list(seqc_graphs.stats(o4).values())[0]
out["pools"] = [p is o4._seqc_pool for p in POOLS]  # the copying graph's and both direct graphs' captures
# addresses alternating between two sets (a cotangent the allocator places in one of two blocks): both get a direct
# graph once seen again within SEEN calls
o5 = Owner()
X = [rnd(2, 2), rnd(2, 2), rnd(2, 2)]
Y = [rnd(2, 2), rnd(2, 2), rnd(2, 2)]
errs, kinds = [], []
for i in range(8):
    t = X if i % 2 == 0 else Y
    for u in t:
        u.copy_(rnd(2, 2))
    errs.append(err(run(o5, "k", *t), want(*t)))
    kinds.append(dict(next(iter(o5._seqc_graphs.values())).replays))
out["alternating_errs"] = errs
out["alternating_kinds"] = kinds
# at most MAX_GRAPHS signatures per owner, the least recently used dropped
o3 = Owner()
seqc_graphs.MAX_GRAPHS = 2
for k in ("x", "y", "x", "z"):
    run(o3, k, rnd(2, 2), rnd(2, 2), rnd(2, 2))
out["lru_keys"] = sorted(k[0] for k in o3._seqc_graphs)
seqc_graphs.MAX_GRAPHS = 8
# shared results (graphed's shared / stamp: seqc_torch's LR_FWD_STATES_COPY "graph"): index 0 returned as the graph's own
# tensor (one storage over the replays), index 1 still copied out; captured into the owner's shared-results pool; a
# stamp valid until the next replay of any graph in that pool (this signature's or another shared one's), an eager
# call's always; a plain signature of the same owner captures into the main pool and leaves the stamps valid
o6 = Owner()
del POOLS[:]
errs, ptrs, stamps, own = [], [], [], []
for i in range(4):
    a, b, c = rnd(3, 4), rnd(3, 4), rnd(3, 4)
    st = []
    r = seqc_graphs.graphed(o6, "s", fn, [a, b, c], [None, torch.float64, None], True, shared=(0,), stamp=st)
    errs.append(err(r, want(a, b, c)))
    ptrs.append(r[0].data_ptr())
    stamps.append(st[0])
    own.append(r[1].data_ptr())
    out.setdefault("shared_valid_now", []).append([s() for s in stamps])
for i in range(3):
    run(o6, "plain", rnd(2, 2), rnd(2, 2), rnd(2, 2))
out["shared_valid_after_plain"] = [s() for s in stamps]
st = []
for i in range(3):
    a, b, c = rnd(2, 4), rnd(2, 4), rnd(2, 4)
    seqc_graphs.graphed(o6, "s2", fn, [a, b, c], [None, torch.float64, None], True, shared=(0,), stamp=st)
out["shared_valid_after_other"] = [s() for s in stamps]
out["shared_errs"] = errs
out["shared_same_storage"] = [p == ptrs[1] for p in ptrs]
out["shared_copied_distinct"] = len(set(own)) == len(own)
out["shared_pools"] = [("spool" if p is o6._seqc_spool else "pool" if p is o6._seqc_pool else "?") for p in POOLS]
# seqc_chunked_lowrank.fwd_states: a stale stamp costs the backward its states (None: the forward walk)
import seqc_chunked_lowrank as L  # noqa: E402


class Ctx:
    pass


cx, S = Ctx(), (rnd(2, 2), rnd(2))
cx.delta_states = S
got = [L.fwd_states(cx) is S]
cx.delta_states_valid = lambda: True
got.append(L.fwd_states(cx) is S)
cx.delta_states_valid = lambda: False
got.append(L.fwd_states(cx))
got.append(L.fwd_states(Ctx()))
out["fwd_states"] = got
print(json.dumps(out))
