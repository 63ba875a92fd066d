"""CUDA graphs for seqc's torch target (part of seqc's torch target; copied next to the generated modules).

A chunked backward enqueues about a hundred kernels per call (the chain's plans through ctypes launches, the torch
glue between them); at B=8 T=2048 H=16 K=V=64 that host work (Python, ctypes, torch.cat packing, allocations,
~3.6 ms a step on the H100) was longer than the GPU work of the bf16 cores it feeds. `graphed` captures such a
call's whole launch sequence once per signature in a torch.cuda.CUDAGraph and replays it afterwards:

  - signature: the caller's key (sizes, dtypes, options that change what is enqueued) plus each argument's
    shape, dtype and device (None where absent); a call whose signature differs is another graph (or eager);
  - the first CAPTURE_AFTER calls of a signature run eagerly (they load the plans' modules, pick and cache the
    forms, set kernel attributes and warm cuBLAS, none of which may happen inside a capture); the next one copies
    its arguments into static buffers, warms up once on the capture stream, captures, and replays;
  - a replay copies the arguments into the static buffers first (so the caller's tensors may live anywhere, and
    new tensors every call are fine), and returns fresh tensors: each result cloned, or converted to the dtype the
    caller asks for (one copy either way), so no result aliases the graph's memory;
  - direct graphs: where a signature's call comes with its arguments at addresses one of the SEEN calls before had
    (a training loop whose allocator hands out the same blocks each step, or alternates between two sets: a
    backward's cotangent did on the H100; the same leaves every step), a graph is captured that reads them where
    they are, and replays for calls at those addresses skip the copies in (at most MAX_DIRECT per signature; every
    argument contiguous). It holds no reference to the arguments: whatever tensor sits at a captured address with the
    signature's shape and dtype when it replays is the one it reads;
  - an owner's graphs share one memory pool: each replay's results are copied out on the same stream before the
    next replay can start, so no graph's intermediates are live while another runs (graphs replay on the caller's
    current stream; calls of one owner from several streams at once are not supported);
  - a capture that fails (an operation that cannot be captured, a launch the driver refuses while capturing) marks
    the signature eager for good and the call runs eagerly: results never depend on whether a graph ran;
  - at most MAX_GRAPHS graphs per owner (least recently used goes; each holds its private memory pool);
  - shared results (graphed's `shared`: indices the caller reads only itself, e.g. the forward's chunk states for its
    own backward, seqc_torch's LR_FWD_STATES_COPY "graph"): returned as the graph's own tensors, not copied. Such
    signatures capture into the owner's second pool (_seqc_spool), used by them alone, and every replay there counts
    (_seqc_sgen): `stamp` gets a valid() that is true while no graph of that pool replayed since, i.e. while the
    results hold this call's values (a later replay of any of them may write over them: a graph captured after
    another may reuse the other's freed intermediates); the main pool's graphs never touch that memory. An eager call's
    results are its own: always valid.

ENABLED (environment SEQC_TORCH_GRAPHS=0 turns it off) and, per model, SeqcModel.graphs choose it; the eager
path is the same code without the capture.

The chains' backwards (seqc_chunked, seqc_chunked_lowrank, seqc_chunked_stab) share their wrapper here, and the
low-rank and stabilised ones their eager prologue: graphed_backward (the signature's key from ctx and the caller's
switches, graphed over the saved tensors and cotangents), saved_by_name (the saved tensors by name, the chain's plan
prefix) and chain_runner (the chain's run(part, ...) with the caller's choice of form).
"""

import os
from collections import OrderedDict

import torch

ENABLED = os.environ.get("SEQC_TORCH_GRAPHS", "1") != "0"
CAPTURE_AFTER = 1
MAX_GRAPHS = 8
MAX_DIRECT = 2
SEEN = 4  # a direct graph is captured for addresses seen among this many calls before


class _Entry:
    __slots__ = ("calls", "graph", "static", "out", "failed", "direct", "last", "replays", "side")

    def __init__(self):
        self.calls = 0
        self.graph = None
        self.static = None
        self.out = None
        self.failed = None
        self.direct = {}  # argument addresses -> (graph, results)
        self.last = []  # the argument addresses of the last SEEN calls (most recent last)
        self.replays = {"static": 0, "direct": 0}
        self.side = None  # the capture stream (warmed up: cuBLAS workspaces and the like are per stream)


def _on_cuda(dev):
    return dev.type == "cuda"


def _sig(a):
    return None if a is None else (tuple(a.shape), a.dtype, a.device)


def _finish(outs, dtypes, fresh, shared=()):
    """Results in the asked dtypes; fresh=True: outs belong to a graph, so every result is a copy but the indices in
    shared (returned as they are: their dtype is the asked one or None)."""
    res = []
    for i, (o, d) in enumerate(zip(outs, dtypes)):
        if o is None:
            res.append(None)
        elif d is not None and o.dtype != d:
            res.append(o.to(d))
        else:
            res.append(o.clone() if fresh and i not in shared else o)
    return res


def _always():
    return True


def _stamped(owner, stamp):
    """Appends to stamp (a list, or None) a valid() true until the next replay in owner's shared-results pool."""
    if stamp is not None:
        n = owner._seqc_sgen
        stamp.append(lambda: getattr(owner, "_seqc_sgen", None) == n)


def stats(owner):
    """{signature: (calls, "graph" | "eager" | failure text)} of owner's graphs (for benches and tests)."""
    cache = getattr(owner, "_seqc_graphs", None) or {}
    return {k: (e.calls, "graph" if e.graph is not None else (e.failed or "eager"), len(e.direct), dict(e.replays)) for k, e in cache.items()}


def graphed(owner, key, fn, args, dtypes, enabled=True, shared=(), stamp=None):
    """fn(*args) -> list of tensors (or None), through a CUDA graph per signature of owner's (see the module text).

    args: tensors or None (the graph's inputs: copied into static buffers on each replay); fn must enqueue the same
    work for the same signature and must not synchronize with the host. dtypes: per result the dtype to return it
    in (None: its own). shared: indices of results returned as the graph's own tensors (module text; their dtypes
    None); stamp: a list that gets a valid() for them (an eager call's: always true). Returns the list."""
    shared = tuple(sorted(shared))
    dev = next((a.device for a in args if a is not None), None)
    if not (ENABLED and enabled and dev is not None and _on_cuda(dev)):
        if stamp is not None:
            stamp.append(_always)
        return _finish(fn(*args), dtypes, False)
    cache = getattr(owner, "_seqc_graphs", None)
    if cache is None:
        cache = owner._seqc_graphs = OrderedDict()
    full = (key, tuple(_sig(a) for a in args)) + ((("shared",) + shared,) if shared else ())
    e = cache.get(full)
    if e is None:
        e = cache[full] = _Entry()
        while len(cache) > MAX_GRAPHS:
            cache.popitem(last=False)
    cache.move_to_end(full)
    e.calls += 1
    # the arguments' addresses (None: some argument not contiguous, no direct graph), remembered for the next calls
    at = tuple(a.data_ptr() if a is not None else 0 for a in args) if all(a is None or a.is_contiguous() for a in args) else None
    seen = at is not None and at in e.last
    if at is not None:
        e.last = (e.last + [at])[-SEEN:]
    if e.failed is not None or e.calls <= CAPTURE_AFTER:
        if stamp is not None:
            stamp.append(_always)
        return _finish(fn(*args), dtypes, False)
    if shared:  # (the shared-results pool: its own, its replays counted)
        pool = getattr(owner, "_seqc_spool", None)
        if pool is None:
            pool = owner._seqc_spool = torch.cuda.graph_pool_handle()
            owner._seqc_sgen = getattr(owner, "_seqc_sgen", 0) + 1
    else:
        pool = getattr(owner, "_seqc_pool", None)
        if pool is None:
            pool = owner._seqc_pool = torch.cuda.graph_pool_handle()
    if e.graph is None:
        try:
            _capture(e, fn, args, dev, pool)
        except Exception as err:  # noqa: BLE001  (anything uncapturable: this signature runs eagerly from now on)
            e.graph, e.static, e.out = None, None, None
            e.failed = "capture failed: %s: %s" % (type(err).__name__, str(err)[:200])
            torch.cuda.synchronize(dev)
            if stamp is not None:
                stamp.append(_always)
            return _finish(fn(*args), dtypes, False)
        e.graph.replay()
        e.replays["static"] += 1
        return _replayed(owner, e.out, dtypes, shared, stamp)
    hit = e.direct.get(at) if at is not None else None
    if seen and at not in e.direct and len(e.direct) < MAX_DIRECT:
        try:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool, stream=e.side):
                out = list(fn(*args))
            hit = e.direct[at] = (g, out)
        except Exception:  # noqa: BLE001  (the copying graph still serves these calls)
            torch.cuda.synchronize(dev)
            e.direct[at] = None
    if hit is not None:
        hit[0].replay()
        e.replays["direct"] += 1
        return _replayed(owner, hit[1], dtypes, shared, stamp)
    for s, a in zip(e.static, args):
        if s is not None:
            s.copy_(a)
    e.graph.replay()
    e.replays["static"] += 1
    return _replayed(owner, e.out, dtypes, shared, stamp)


def _replayed(owner, outs, dtypes, shared, stamp):
    """A replay's results (_finish); a signature with shared results counts the replay in its pool first."""
    if shared:
        owner._seqc_sgen += 1
        _stamped(owner, stamp)
    elif stamp is not None:
        stamp.append(_always)
    return _finish(outs, dtypes, True, shared)


def _capture(e, fn, args, dev, pool):
    cur = torch.cuda.current_stream(dev)
    e.static = [None if a is None else torch.empty(a.shape, dtype=a.dtype, device=dev).copy_(a) for a in args]
    side = e.side = torch.cuda.Stream(dev)
    side.wait_stream(cur)
    with torch.cuda.stream(side):  # warm-up on the capture stream (cuBLAS workspaces and the like are per stream)
        fn(*e.static)
    cur.wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, pool=pool, stream=side):
        out = fn(*e.static)
    e.out = list(out)
    e.graph = g


def graphed_backward(ctx, m, name, switches, flat, grads, eager, extra=(), given_dtype=True):
    """A chained backward's body through graphed, owner m (seqc_chunked's, seqc_chunked_lowrank's and seqc_chunked_stab's
    backward; ctx from seqc_torch.forward): the signature's key is (name, ctx.B, ctx.T, dims, ctx.dtype, the given
    tensors' dtype (given_dtype True: ctx.given_dtype, else left out), ctx.need, the count of given tensors, *switches:
    the caller's options that change what it enqueues); the graph's arguments (*flat, *grads, *extra); eager(flat, grads,
    *extra) runs the caller's backward without a graph, its gradients in the compute dtype. Each gradient comes back in
    its saved tensor's dtype. Returns the gradients' tuple."""
    given_n = len(ctx.needs_input_grad) - ctx.offset
    dtypes = [x.dtype if x is not None else None for x in flat][:given_n]
    key = (name, ctx.B, ctx.T, tuple(sorted(ctx.dims.items())), ctx.dtype) + ((getattr(ctx, "given_dtype", ctx.dtype),) if given_dtype else ())
    key = key + (tuple(ctx.need), given_n) + tuple(switches)
    nf, ng = len(flat), len(grads)

    def body(*args):
        return eager(list(args[:nf]), list(args[nf : nf + ng]), *args[nf + ng :])
    return tuple(graphed(m, key, body, list(flat) + list(grads) + list(extra), dtypes, getattr(m, "graphs", True)))


def saved_by_name(m, flat, dtype):
    """A chained backward's saved tensors (flat: *inputs, *params, *initial states of model m, None where absent) as
    three dicts by name (given, pars, sts), detached and in dtype (the compute dtype), absent ones left out; with the
    chain's plan prefix for dtype ("chain64:" for float64, else "chain:"). Returns (given, pars, sts, prefix)."""
    ni, npar = len(m.inputs), len(m.params)

    def named(ts, xs):
        return {t["name"]: x.detach().to(dtype) for t, x in zip(ts, xs) if x is not None}
    prefix = "chain64:" if dtype == torch.float64 else "chain:"
    return named(m.inputs, flat[:ni]), named(m.params, flat[ni : ni + npar]), named(m.states, flat[ni + npar :]), prefix


def chain_runner(m, prefix, dims, pars, dtype, device, form_of):
    """A chained backward's run(part, cdims, inputs, initial, b, t) -> (outputs, final states): the plan prefix + part
    of model m on cdims (a chain part's sizes) or, cdims None, on dims with the params pars (a stateless part), in the
    form form_of(part, key, cdims, b, t) names (key = prefix + part)."""
    def run(part, cdims, inputs, initial, b, t):
        key = prefix + part
        form = form_of(part, key, cdims, b, t)
        outs, final, _ = m.execute(key, cdims or dims, b, t, inputs, pars if cdims is None else {}, initial, dtype, device, form)
        return outs, final
    return run
