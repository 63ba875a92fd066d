"""Driver for test/torch-terms-rev.test.ts: runtime/torch/seqc_chunked.py REVERSED_READS "terms" against "flip" (the way
before) in one bf16 training step's chunked backward on CPU torch, every plan stubbed as in test/torch/glue_copies.py
(fixed outputs by (plan, output), a part's copies honoured) and the decay terms kernel replaced by a torch stand-in of its
contract (decay-terms.ts: sum_K a1 c1 - sum_K a2 c2 per head, or per key row; an operand whose rev bit is set read at token
T - 1 - t). Counted under torch's dispatch (the stand-in's own ops left out): time reversals (flips) of float32 and of
bf16 tensors, conversions float32 -> bf16, of tensors of at least a quarter of B*T*H*K elements.
argv: <modules dir> <Model> [broken]: broken = a stand-in that ignores rev (the reversed dk read as if forward).
Prints one JSON line per path ("flip", "terms"): {path, counts, grads_equal_flip}.
"""

import json
import os
import sys
import zlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_cuda  # noqa: E402
import seqc_torch  # noqa: E402

H100 = {"name": "H100 (no driver)", "sm": 90, "multiprocessors": 132, "max_threads": 1024, "smem_optin": 232448}
C = seqc_torch._chunked
PAUSE = [False]


def main():
    mods, name = sys.argv[1], sys.argv[2]
    broken = len(sys.argv) > 3 and sys.argv[3] == "broken"
    seqc_torch._check_tensors = lambda m, named: (torch.bfloat16, torch.device("cpu"))
    torch.cuda.current_stream = lambda d=None: type("S", (), {"cuda_stream": 0})()
    m = seqc_torch.SeqcModel(os.path.join(mods, name + ".torch.json"), None, "auto", "chunked")
    m.graphs = False
    C.PER_KEY_TRANSPOSED = "matmul"
    C.module_kernels = lambda m_, device, key: object() if key == "decayTerms" else None
    calls = []

    def terms(km, plus, minus, B, T, H, K, per_key, rev=0):  # decay-terms.ts's contract in torch ops (float32 products)
        PAUSE[0] = True
        try:
            calls.append(rev)

            def op(x, bit):
                x = x.reshape(B, T, H, K).float()
                return torch.flip(x, [1]) if rev & bit and not broken else x
            out = None
            for j, (a1, c1) in enumerate(plus):
                p = op(a1, 1) * op(c1, 2)
                if j < len(minus):
                    q = op(minus[j][0], 4) * op(minus[j][1], 8)
                    p = p - q if per_key else p.sum(3) - q.sum(3)
                elif not per_key:
                    p = p.sum(3)
                out = p if out is None else out + p
            return out.reshape(B, T, H * K if per_key else H)
        finally:
            PAUSE[0] = False
    C.decay_terms_kernel = terms
    runners = {}

    def runner(key, device):
        if key not in runners:
            r = seqc_cuda.PlanRunner.__new__(seqc_cuda.PlanRunner)
            r.plan, r.ordinal, r.info, r._picks = m.meta["plans"][key], 0, H100, {}
            r.real, r.esize = "f32", 4
            runners[key] = r
        return runners[key]
    m.runner = runner
    n = m.chunked["names"]

    def execute(key, dims, b, t, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None):
        runner(key, device).pick(dims, b, t, form, io, out_io)
        odt = torch.bfloat16 if (out_io or io) == "bf16" else dtype
        plan = m.meta["plans"][key]
        part = key.split(":", 1)[-1]
        copies = (n.get(part) or {}).get("copies") or {} if part in ("postBw", "prepBw") else {}
        outs = {}
        for t_ in (x for x in plan["tensors"] if x["role"] == "output"):
            shape = [b, t] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]]
            if t_["name"] in copies and inputs.get(copies[t_["name"]]) is not None:
                outs[t_["name"]] = inputs[copies[t_["name"]]].to(odt).reshape(shape)
                continue
            g = torch.Generator().manual_seed(zlib.crc32((key + "/" + t_["name"]).encode()))
            outs[t_["name"]] = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.5).to(odt)
        final = {}
        for t_ in (x for x in plan["tensors"] if x["role"] == "state"):
            g = torch.Generator().manual_seed(zlib.crc32((key + "/final/" + t_["name"]).encode()))
            final[t_["name"]] = (torch.randn([b] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g, dtype=torch.float64) * 0.5).to(dtype)
        return outs, final, "stub"
    m.execute = execute
    B, T = 2, 128
    dims = {"H": 2, "K": 64, "V": 64} if name != "Mamba2" else {"H": 2, "P": 64, "N": 64}
    big = B * T * 2 * 64 // 4
    g = torch.Generator().manual_seed(3)
    x = {t_["name"]: (torch.randn([B, T] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g) * 0.3).to(torch.bfloat16) for t_ in m.inputs}
    pars = {t_["name"]: torch.randn([seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g) for t_ in m.params}
    cot, base = None, None
    for path in ("flip", "terms"):
        C.REVERSED_READS = path
        counts = {"flip f32": 0, "flip bf16": 0, "f32->bf16": 0}

        class Count(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                op = func.overloadpacket.__name__
                src = next((a for a in args if isinstance(a, torch.Tensor)), None)
                if not PAUSE[0] and src is not None and src.numel() >= big and isinstance(out, torch.Tensor):
                    if op == "flip":
                        counts["flip bf16" if src.dtype == torch.bfloat16 else "flip f32"] += 1
                    elif op in ("_to_copy", "copy_"):
                        frm, to = (args[1].dtype, args[0].dtype) if op == "copy_" else (src.dtype, out.dtype)
                        if (frm, to) == (torch.float32, torch.bfloat16):
                            counts["f32->bf16"] += 1
                return out
        leaves = {k: v.clone().requires_grad_(True) for k, v in list(x.items()) + list(pars.items())}
        del calls[:]
        outs = m.apply({t_["name"]: leaves[t_["name"]] for t_ in m.inputs}, {t_["name"]: leaves[t_["name"]] for t_ in m.params}, {})
        if cot is None:
            cot = (torch.randn(outs[0].shape, generator=g) * 0.3).to(torch.bfloat16)
        with Count():
            (outs[0] * cot).sum().backward()
        grads = {k: v.grad for k, v in leaves.items()}
        rec = {"path": path, "counts": counts, "revs": list(calls)}
        if base is None:
            base = grads
        else:
            rec["grads_equal_flip"] = {k: bool(torch.equal(grads[k], base[k])) and grads[k].dtype == base[k].dtype for k in grads}
        print(json.dumps(rec), flush=True)


main()
