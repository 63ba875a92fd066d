"""What the CPU-torch drivers test/torch/glue_copies.py, test/torch/terms_rev.py and test/torch/rows_rev.py share: a chunked
SeqcModel whose every plan is a stub (no kernels, no interpreter), one bf16 training step's inputs, the count of large flips
and conversions under torch's dispatch, and a torch stand-in of the decay terms kernel.

stub_model: a plan's outputs are fixed pseudo-random tensors of the plan's output dtype, seeded by (plan, output), except
a part's `copies` (<Model>.torch.json names), which are the inputs they equal (as the plans compute them), and, with
zeros=True, its `zeros`: 0 with ZERO_STORES "write", NaN with "skip". on_run(key, inputs) sees each plan run's inputs.
A GLA-family step's rows readout runs as torch ops (PER_KEY_TRANSPOSED "matmul": no kernel on CPU).
"""

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


def stub_model(mods, name, zeros=False, on_run=None):
    seqc_torch._check_tensors = lambda m, named: (torch.bfloat16, torch.device("cpu"))
    torch.cuda.current_stream = lambda d=None: type("S", (), {"cuda_stream": 0})()
    m = seqc_torch.SeqcModel(os.path.join(mods, name + ".torch.json"), None, "auto", "chunked")
    m.graphs = False
    C.PER_KEY_TRANSPOSED = "matmul"
    # (execute below keeps no workspaces: the forward's chunk states for the delta backward, LR_FWD_STATES "on" by
    # default since H200 call F14, are off here; that path is torch-delta-fwd-states')
    seqc_torch._chunked_lowrank.LR_FWD_STATES = "off"
    # (the counts of the drivers' steps are with the stateless parts' float32 outputs converted where read: STATELESS_OUT
    # "f32", the way before H200 call F15m made "bf16" the default; test/torch/stateless_out.py sets each value itself)
    C.STATELESS_OUT = "f32"
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
        f = runner(key, device).pick(dims, b, t, form, io, out_io)[0]
        odt = torch.bfloat16 if (out_io or io) == "bf16" else dtype
        if on_run is not None:
            on_run(key, inputs)
        plan = m.meta["plans"][key]
        part = key.split(":", 1)[-1]
        copies = (n.get(part) or {}).get("copies") or {} if part in ("postBw", "prepBw") else {}
        zs = (n.get(part) or {}).get("zeros") or [] if zeros and part in ("postBw", "prepBw") else []
        outs = {}
        for t_ in (x for x in plan["tensors"] if x["role"] == "output"):
            shape = [b, t] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]]
            if t_["name"] in zs:  # the literal zeros: written as 0 (ZERO_STORES "write"), else left unwritten (NaN here)
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
    return m


def step_inputs(m, name):
    """(big, g, x, pars) at B=2, T=128, two heads of 64: big is a quarter of B*T*H*K elements; g (seed 3) drew the
    bf16 inputs x and float32 params pars, and draws the cotangent next."""
    B, T = 2, 128
    dims = {"H": 2, "K": 64, "V": 64} if name != "Mamba2" else {"H": 2, "P": 64, "N": 64}
    g = torch.Generator().manual_seed(3)
    x = {t_["name"]: (torch.randn([B, T] + [seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g) * 0.3).to(torch.bfloat16) for t_ in m.inputs}
    pars = {t_["name"]: torch.randn([seqc_cuda.eval_size(s, dims) for s in t_["shape"]], generator=g) for t_ in m.params}
    return B * T * 2 * 64 // 4, g, x, pars


class Moves(TorchDispatchMode):
    """Calls tally("flip", (dtype,)) for each flip and tally("convert", (from, to)) for each dtype conversion (_to_copy,
    copy_) of a tensor of at least `big` elements, while paused() is false."""

    def __init__(self, big, tally, paused=lambda: False):
        super().__init__()
        self.big, self.tally, self.paused = big, tally, paused

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        op = func.overloadpacket.__name__
        src = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if not self.paused() and src is not None and src.numel() >= self.big and isinstance(out, torch.Tensor):
            if op == "flip":
                self.tally("flip", (src.dtype,))
            elif op in ("_to_copy", "copy_"):
                self.tally("convert", (args[1].dtype, args[0].dtype) if op == "copy_" else (src.dtype, out.dtype))
        return out


def grad_step(m, x, pars, cot, g, mode):
    """One step's gradients of sum(y * cot) for leaves cloned from x and pars, the backward run under `mode`; cot is
    drawn from g (bf16, scale 0.3) where None. Returns (grads, cot)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in list(x.items()) + list(pars.items())}
    outs = m.apply({t_["name"]: leaves[t_["name"]] for t_ in m.inputs}, {t_["name"]: leaves[t_["name"]] for t_ in m.params}, {})
    if cot is None:
        cot = (torch.randn(outs[0].shape, generator=g) * 0.3).to(torch.bfloat16)
    loss = (outs[0] * cot).sum()
    with mode:
        loss.backward()
    return {k: v.grad for k, v in leaves.items()}, cot


def decay_terms_standin(calls, pause, ignore_rev=False):
    """A stand-in for seqc_chunked.decay_terms_kernel: decay-terms.ts's contract in torch ops (float32 products):
    sum_K a1 c1 - sum_K a2 c2 per head, or per key row; an operand whose rev bit is set (a1 1, c1 2, a2 4, c2 8) read at
    token T - 1 - t. Each call appends its rev to `calls` and holds pause[0] True while it runs (its own ops uncounted);
    ignore_rev: a broken stand-in that reads every operand forward."""
    def terms(km, plus, minus, B, T, H, K, per_key, rev=0):
        pause[0] = True
        try:
            calls.append(rev)

            def op(x, bit):
                x = x.reshape(B, T, H, K).float()
                return torch.flip(x, [1]) if rev & bit and not ignore_rev else x
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
            pause[0] = False
    return terms
