"""Driver for test/torch-rows-rev.test.ts: runtime/torch/seqc_chunked.py ROWS_REVERSED "kernel" against "flip" (the way
before) in one bf16 training step's chunked backward on CPU torch, every plan stubbed by test/torch/plan_stubs.py, the
per-key decay's transposed cores on a torch stand-in of the rows readout's chunked form (rows-chunk.ts's contract: ld, a,
b, c read and out stored in reversed time as the rev bits say: ld 1 as ld[T - t] with 0 at t = 0, a 2, b 4, c 8 at
T - 1 - t, out 16) and the decay terms kernel on plan_stubs.decay_terms_standin (decay-terms.ts's contract). Counted under
torch's dispatch (the stand-ins' own ops left out), tensors of at least a quarter of B*T*H*K elements: flips of float32 /
bf16 tensors, conversions float32 -> bf16, gathers (index) of float32 / bf16 tensors.
argv: <modules dir> <Model> [broken]: broken = a rows stand-in that ignores rev's bits (the forward-time operands read as if
reversed). The stand-in's terms entry (ROWS_TERMS "kernel") returns [out as bf16, a dq - k out].
Prints one JSON line of rows_readout_kernel's declines, then one per path (ROWS_REVERSED / REVERSED_READS / ROWS_TERMS):
{path, counts, revs (the rows stand-in's rev per call, "+terms" for the terms entry), terms_calls (the terms kernel's),
grads_equal (every gradient bitwise, and of one dtype, as the first path's), adjoint_equal (the adjoint plan's inputs
bitwise the first path's: names, dtypes, values)}.
"""

import json
import sys

import torch

import plan_stubs as S  # test/torch/plan_stubs.py: the stubbed model, the step, the count

C = S.C
PAUSE = [False]


def paused(f):
    def g(*a, **k):
        PAUSE[0] = True
        try:
            return f(*a, **k)
        finally:
            PAUSE[0] = False
    return g


def declines(m):
    """rows_readout_kernel with rev set returns None (the glue then flips) where the chunked form does not take the operands:
    no chunked module, entries without the rev argument (a module built before it), ROWS_FORM "walk", float32 b and c."""
    class Km:
        def __init__(self, kernels):
            self.kernels = kernels
    if "rowsChunk" not in (m.meta.get("kernels") or {}):  # (a scalar decay's module: none)
        print(json.dumps({}), flush=True)
        return
    ks = m.meta["kernels"]["rowsChunk"]["kernels"]
    B, T, H, K, V = 1, 4, 1, 64, 64
    ld, a = torch.zeros(B, T, H * K), torch.zeros(B, T, H * K)
    b = torch.zeros(B, T, H * V, dtype=torch.bfloat16)
    out = {"module has rev": all(k.get("rev") is True for k in ks)}
    for what, kc, bb, form in (("no module", None, b, "chunk"), ("no rev argument", Km([{k_: v for k_, v in k.items() if k_ != "rev"} for k in ks]), b, "chunk"),
                               ("walk", Km(ks), b, "walk"), ("float32 b, c", Km(ks), b.float(), "chunk")):
        C.ROWS_FORM = form
        out[what] = C.rows_readout_kernel(Km([]), ld, [(a, bb)], [bb], None, B, T, H, K, V, kc=kc, rev=31)
    C.ROWS_FORM = "chunk"
    print(json.dumps(out), flush=True)


def main():
    mods, name = sys.argv[1], sys.argv[2]
    broken = len(sys.argv) > 3 and sys.argv[3] == "broken"
    adj_in = []
    m = S.stub_model(mods, name, on_run=lambda key, ins: adj_in.append({k: v.detach().clone() for k, v in ins.items() if v is not None}) if key.endswith(":adjoint") else None)
    C.PER_KEY_TRANSPOSED = "kernel"

    class Mod:  # a kernel module as module_kernels gives it: rowsReadout with bf16-operand entries, rowsChunk, decayTerms
        def __init__(self, key):
            self.kernels = [{"low": "bc"}] if key == "rowsReadout" else []
    C.module_kernels = lambda m_, device, key: Mod(key) if key in ("rowsReadout", "rowsChunk", "decayTerms") else None
    revs = []
    declines(m)

    @paused
    def rows(km, ld, pairs, readouts, S0, B, T, H, K, V, tile=None, segment=None, kc=None, rev=0, terms=None, ks=None):
        revs.append(rev if terms is None else "%d+terms" % rev)
        r = 0 if broken else rev

        def tm(x, bit, w):
            x = x.reshape(B, T, H * w).float()
            return torch.flip(x, [1]) if r & bit else x
        ldf = ld.reshape(B, T, H * K).float()
        if r & 1:
            ldf = torch.cat([torch.zeros_like(ldf[:, :1]), torch.flip(ldf[:, 1:], [1])], 1)
        outs = C.rows_decayed_readout(ldf, [(tm(a, 2, K), tm(b, 4, V)) for a, b in pairs], [tm(c, 8, V) for c in readouts],
                                      S0 if S0 is not None else torch.zeros(B, H * K * V), B, T, H, K, V, torch.float32, ldf.device)
        outs = [torch.flip(o, [1]) if r & 16 else o for o in outs]
        if terms is None:
            return outs
        dq, k = terms  # the terms entry: a dq - k out (float32 products, then the difference), out as bf16
        q = pairs[0][0].reshape(B, T, H * K).float()
        return [outs[0].to(torch.bfloat16), q * dq.reshape(B, T, H * K) - k.reshape(B, T, H * K).float() * outs[0]]
    C.rows_readout_kernel = rows

    terms_calls = []

    C.decay_terms_kernel = S.decay_terms_standin(terms_calls, PAUSE)
    big, g, x, pars = S.step_inputs(m, name)
    cot, base, base_adj = None, None, None
    for rows_way, reads, tw in (("flip", "flip", "apart"), ("flip", "terms", "apart"), ("kernel", "flip", "apart"), ("kernel", "terms", "apart"),
                                ("flip", "flip", "kernel"), ("kernel", "flip", "kernel")):
        C.ROWS_REVERSED, C.REVERSED_READS, C.ROWS_TERMS = rows_way, reads, tw
        counts = {"flip f32": 0, "flip bf16": 0, "f32->bf16": 0, "index f32": 0, "index bf16": 0}

        def tally(what, dtypes):
            if what == "flip":
                counts["flip bf16" if dtypes[0] == torch.bfloat16 else "flip f32"] += 1
            elif what == "index":
                counts["index bf16" if dtypes[0] == torch.bfloat16 else "index f32"] += 1
            elif dtypes == (torch.float32, torch.bfloat16):
                counts["f32->bf16"] += 1

        class Moves(S.Moves):  # and the gathers (index) of large tensors
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = super().__torch_dispatch__(func, types, args, kwargs)
                src = args[0] if args and isinstance(args[0], torch.Tensor) else None
                if func.overloadpacket.__name__ == "index" and not PAUSE[0] and src is not None and src.numel() >= big:
                    tally("index", (src.dtype,))
                return out
        del revs[:], adj_in[:], terms_calls[:]
        grads, cot = S.grad_step(m, x, pars, cot, g, Moves(big, tally, lambda: PAUSE[0]))
        rec = {"path": "%s/%s/%s" % (rows_way, reads, tw), "counts": counts, "revs": list(revs), "terms_calls": len(terms_calls)}
        adj = adj_in[-1]
        if base is None:
            base, base_adj = grads, adj
        else:
            rec["grads_equal"] = {k: bool(torch.equal(grads[k], base[k])) and grads[k].dtype == base[k].dtype for k in grads}
            rec["adjoint_equal"] = sorted(adj) == sorted(base_adj) and all(adj[k].dtype == base_adj[k].dtype and torch.equal(adj[k], base_adj[k]) for k in adj)
        print(json.dumps(rec), flush=True)


main()
