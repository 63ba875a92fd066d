"""Driver for test/torch-glue-copies.test.ts: the float32 copies, dtype conversions and time reversals of one bf16
training step's chunked backward (runtime/torch/seqc_chunked.py), counted on CPU torch, per switch setting.

Every plan is replaced by a stub (no kernels, no interpreter): its outputs are fixed pseudo-random tensors of the plan's
output dtype, seeded by (plan, output), except a part's `copies` (<Model>.torch.json names), which are the inputs they
equal (as the plans compute them), and its `zeros`: 0 with ZERO_STORES "write", NaN with "skip" (a "-nz" form leaves
them unwritten: read anywhere, a gradient would differ from the old path's). Each plan run's inputs are recorded by value (float64 sums, plain and weighted by
position): the paths must hand every plan they both run the same values, and must return bitwise the same gradients.
Counted under torch's dispatch: conversions bf16 -> float32 and float32 -> bf16 and flips of tensors of at least a
quarter of B*T*H*K elements (the [B, T, H*K] ones). A GLA-family step's rows readout runs as torch ops here
(PER_KEY_TRANSPOSED "matmul": no kernel on CPU).
argv: <modules dir> <Model>. Prints one JSON line per path: {path, counts, runs, grads_equal_old, inputs_equal_old}.
"""

import contextlib
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
# the switches of this test, old value first
SWITCHES = {"IDLE_INPUTS": ("all", "none"), "ADJOINT_OUT": ("f32", "low"), "RUN_COPIES": ("plan", "input"), "CORE_RERUN": ("post", "bound"), "GRAD_SUM": ("f32", "low"), "ZERO_STORES": ("write", "skip")}
PATHS = [("old", {k: v[0] for k, v in SWITCHES.items()})] + [(k, dict({j: v[0] for j, v in SWITCHES.items()}, **{k: v[1]})) for k, v in SWITCHES.items()] + [("new", {k: v[1] for k, v in SWITCHES.items()})]


def main():
    mods, name = sys.argv[1], sys.argv[2]
    seqc_torch._check_tensors = lambda m, named: (torch.bfloat16, torch.device("cpu"))
    torch.cuda.current_stream = lambda d=None: type("S", (), {"cuda_stream": 0})()
    m = seqc_torch.SeqcModel(os.path.join(mods, name + ".torch.json"), None, "auto", "chunked")
    m.graphs = False
    C.PER_KEY_TRANSPOSED = "matmul"
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
    runs = []

    def stamp(x):  # a tensor's values: float64 sums, plain and weighted by position
        d = x.detach().double().reshape(-1)
        return [float(d.sum()), float((d * torch.arange(1, d.numel() + 1, dtype=torch.float64)).sum())]

    def execute(key, dims, b, t, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None):
        f = runner(key, device).pick(dims, b, t, form, io, out_io)[0]
        odt = torch.bfloat16 if (out_io or io) == "bf16" else dtype
        runs.append([key, {k: stamp(v) for k, v in sorted(inputs.items()) if v is not None and not (key == "chain:postBw" and k in [r["y"] for r in n["readouts"]])}])
        plan = m.meta["plans"][key]
        part = key.split(":", 1)[1] if ":" in key else key
        copies = (n.get(part) or {}).get("copies") or {} if part in ("postBw", "prepBw") else {}
        zeros = (n.get(part) or {}).get("zeros") or [] if part in ("postBw", "prepBw") else []
        outs = {}
        for t_ in (x for x in plan["tensors"] if x["role"] == "output"):
            shape = [b, t] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]]
            if t_["name"] in zeros:  # the literal zeros: written as 0 (ZERO_STORES "write"), else left unwritten (NaN here)
                outs[t_["name"]] = torch.full(shape, 0.0 if C.ZERO_STORES == "write" else float("nan"), dtype=odt)
                continue
            if t_["name"] in copies and inputs.get(copies[t_["name"]]) is not None:
                outs[t_["name"]] = inputs[copies[t_["name"]]].to(odt).reshape(shape)
                continue
            g = torch.Generator().manual_seed(zlib.crc32((key + "/" + t_["name"]).encode()))
            outs[t_["name"]] = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.5).to(odt)
        final = {}
        for t_ in (x for x in plan["tensors"] if x["role"] == "state"):
            g = torch.Generator().manual_seed(zlib.crc32((key + "/final/" + t_["name"]).encode()))
            final[t_["name"]] = (torch.randn([b] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g, dtype=torch.float64) * 0.5).to(dtype)
        return outs, final, f["variant"]
    m.execute = execute
    B, T = 2, 128
    dims = {"H": 2, "K": 64, "V": 64} if name != "Mamba2" else {"H": 2, "P": 64, "N": 64}
    big = B * T * 2 * 64 // 4
    g = torch.Generator().manual_seed(3)
    x = {}
    for t_ in m.inputs:
        x[t_["name"]] = (torch.randn([B, T] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g) * 0.3).to(torch.bfloat16)
    pars = {t_["name"]: torch.randn([seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g) for t_ in m.params}
    cot = None
    base = None
    for path, sw in PATHS:
        for k, v in sw.items():
            setattr(C, k, v)
        counts = {"bf16->f32": 0, "f32->bf16": 0, "flip": 0}

        class Count(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                op = func.overloadpacket.__name__
                src = next((a for a in args if isinstance(a, torch.Tensor)), None)
                if src is not None and src.numel() >= big and isinstance(out, torch.Tensor):
                    if op == "flip":
                        counts["flip"] += 1
                    elif op in ("_to_copy", "copy_"):
                        frm, to = (args[1].dtype, args[0].dtype) if op == "copy_" else (src.dtype, out.dtype)
                        if (frm, to) == (torch.bfloat16, torch.float32):
                            counts["bf16->f32"] += 1
                        elif (frm, to) == (torch.float32, torch.bfloat16):
                            counts["f32->bf16"] += 1
                return out
        leaves = {k: v.clone().requires_grad_(True) for k, v in list(x.items()) + list(pars.items())}
        del runs[:]
        outs = m.apply({t_["name"]: leaves[t_["name"]] for t_ in m.inputs}, {t_["name"]: leaves[t_["name"]] for t_ in m.params}, {})
        if cot is None:
            cot = (torch.randn(outs[0].shape, generator=g) * 0.3).to(torch.bfloat16)
        loss = (outs[0] * cot).sum()
        with Count():
            loss.backward()
        grads = {k: v.grad for k, v in leaves.items()}
        rec = {"path": path, "counts": counts, "runs": [r[0] for r in runs]}
        if base is None:
            base = (grads, dict((r[0], r[1]) for r in runs))
        else:
            rec["grads_equal_old"] = {k: bool(torch.equal(grads[k], base[0][k])) and grads[k].dtype == base[0][k].dtype for k in grads}
            rec["inputs_equal_old"] = {r[0]: r[1] == base[1].get(r[0]) for r in runs}
        print(json.dumps(rec), flush=True)


main()
