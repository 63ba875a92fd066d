"""Driver for test/torch-rows-scan.test.ts: runtime/torch/seqc_chunked.py ROWS_TERMS "scan" against "kernel" in one bf16
training step's chunked backward of GLA on CPU torch (loss sum(y * cot) + sum(S_N * cs): a final-state cotangent, so
a_T = <dS_N, S_N> is not zero), every plan stubbed by test/torch/plan_stubs.py and the rows readout's chunked form on a
torch stand-in (rows-chunk.ts's contract, as test/torch/rows_rev.py's; its scan entry: [out as bf16, carry0 + the terms'
running sums along the walk], the float32 terms summed in float64). Large ops (at least a quarter of B*T*H*K elements)
counted under torch's dispatch, the stand-in's own left out: mm (the reverse sums' product), clone (their transposed
copies), add. argv: <modules dir> <Model> [noinit]: noinit = a scan stand-in that ignores carry0.
Prints one JSON line per path: {path, counts, calls (the stand-in's: rev, "+terms" / "+scan", carry0's shape),
grads: {name: [dtype, bitwise as "kernel"'s, max |diff| / max |kernel's|]}}."""

import json
import sys

import torch

import plan_stubs as S  # test/torch/plan_stubs.py

C = S.C
PAUSE = [False]


def main():
    mods, name = sys.argv[1], sys.argv[2]
    noinit = len(sys.argv) > 3 and sys.argv[3] == "noinit"
    m = S.stub_model(mods, name)
    C.PER_KEY_TRANSPOSED = "kernel"

    class Mod:
        def __init__(self, key):
            self.kernels = [{"low": "bc"}] if key == "rowsReadout" else []
    C.module_kernels = lambda m_, device, key: Mod(key) if key in ("rowsReadout", "rowsChunk", "decayTerms") else None
    calls = []

    def rows(km, ld, pairs, readouts, S0, B, T, H, K, V, tile=None, segment=None, kc=None, rev=0, terms=None, ks=None, scan=None):
        PAUSE[0] = True
        try:
            calls.append([rev, "+scan" if scan is not None else "+terms" if terms is not None else "", list(scan.shape) if isinstance(scan, torch.Tensor) else None])

            def tm(x, bit, w):
                x = x.reshape(B, T, H * w).float()
                return torch.flip(x, [1]) if rev & bit else x
            ldf = ld.reshape(B, T, H * K).float()
            if rev & 1:
                ldf = torch.cat([torch.zeros_like(ldf[:, :1]), torch.flip(ldf[:, 1:], [1])], 1)
            outs = C.rows_decayed_readout(ldf, [(tm(a, 2, K), tm(b, 4, V)) for a, b in pairs], [tm(c, 8, V) for c in readouts],
                                          S0 if S0 is not None else torch.zeros(B, H * K * V), B, T, H, K, V, torch.float32, ldf.device)
            outs = [torch.flip(o, [1]) if rev & 16 else o for o in outs]
            if terms is None:
                return outs
            dq, k = terms
            q = pairs[0][0].reshape(B, T, H * K).float()
            tt = q * dq.reshape(B, T, H * K) - k.reshape(B, T, H * K).float() * outs[0]
            if scan is not None:  # the running sums along the walk (rev's out bit: reversed time) from carry0
                walk = torch.flip(tt, [1]) if rev & 16 else tt
                s = torch.cumsum(walk.double(), 1)
                if isinstance(scan, torch.Tensor) and not noinit:
                    s = s + scan.reshape(B, 1, H * K).double()
                s = s.float()
                tt = torch.flip(s, [1]) if rev & 16 else s
            return [outs[0].to(torch.bfloat16), tt]
        finally:
            PAUSE[0] = False
    C.rows_readout_kernel = rows
    C.decay_terms_kernel = S.decay_terms_standin([], PAUSE)
    big, g, x, pars = S.step_inputs(m, name)
    base = None
    cot, cs = None, None
    for path in ("kernel", "scan"):
        C.ROWS_TERMS = path
        counts = {"mm": 0, "clone": 0, "add": 0}

        class Count(torch.utils._python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                op = func.overloadpacket.__name__
                if not PAUSE[0] and op in counts and isinstance(out, torch.Tensor) and out.numel() >= big:
                    counts[op] += 1
                return out
        del calls[:]
        leaves = {k: v.clone().requires_grad_(True) for k, v in list(x.items()) + list(pars.items())}
        outs = m.apply({t["name"]: leaves[t["name"]] for t in m.inputs}, {t["name"]: leaves[t["name"]] for t in m.params}, {})
        if cot is None:
            cot = (torch.randn(outs[0].shape, generator=g) * 0.3).to(torch.bfloat16)
            cs = torch.randn(outs[1].shape, generator=g).to(outs[1].dtype)
        loss = (outs[0] * cot).sum() + (outs[1] * cs).sum()
        with Count():
            loss.backward()
        grads = {k: v.grad for k, v in leaves.items() if v.grad is not None}
        if base is None:
            base = grads
        rec = {"path": path, "counts": counts, "calls": list(calls),
               "grads": {k: [str(v.dtype), bool(torch.equal(v, base[k])), float((v.double() - base[k].double()).abs().max() / base[k].double().abs().max().clamp_min(1e-30))] for k, v in grads.items()}}
        print(json.dumps(rec), flush=True)


main()
