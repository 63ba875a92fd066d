"""LR_FWD_STATES' plumbing on CPU for test/torch-delta-fwd-states.test.ts: seqc_torch.forward on a module stand-in (its
forward plan's runner and execute stubbed; the graphs' eager path, as on CPU) and seqc_chunked_lowrank.backward with
backward_eager captured. With "on": the forward runs the pick's -st twin (its walk storing the chunk states; "split3":
the pick's split3 twin), asks execute for its workspaces and keeps
chunkS (viewed in the forward's element type) and the final state as ctx.delta_states; the backward hands both to
backward_eager (the graph's extra arguments). With "off": the pick as it is, no workspaces asked, no states. Prints JSON."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked_lowrank as lr  # noqa: E402
import seqc_torch  # noqa: E402

B, T, H, K = 2, 100, 2, 4
nC = -(-T // 64)
PICK, TWIN, ST = "chunked-split-f32-k32-v16-r1", "chunked-split3-f32-k32-v16-r1", "chunked-split-f32-k32-v16-st-r1"


class Runner:
    plan = {"forms": [{"variant": PICK, "workspaces": [{"name": "chunk"}]}, {"variant": TWIN, "workspaces": [{"name": "chunk"}, {"name": "chunkS"}]},
                      {"variant": ST, "workspaces": [{"name": "chunk"}, {"name": "chunkS"}]}]}

    def pick(self, dims, b, t, choice="auto", io="f32", out_io=None):
        return next(f for f in self.plan["forms"] if f["variant"] == (PICK if choice == "auto" else choice)), {}

    def applicable(self, dims, b, t, choice="auto", io="f32", out_io=None):
        return [(f, {}) for f in self.plan["forms"]]


class Model:
    name = "Fake"
    backward = "chunked"
    graphs = True
    inputs = [{"name": "q", "shape": ["H", "K"]}]
    params = []
    states = [{"name": "S", "shape": ["H", "K", "K"]}]
    outputs = [{"name": "o", "shape": ["H", "K"]}]
    chunked = {"lowRank": {"E": 1, "P": 1, "R": 1, "decay": "none", "state": "S"}}
    meta = {"kernels": {"deltaBwd": {}, "deltaStates": {}}}

    def __init__(self):
        self.calls = []
        self.r = Runner()

    def resolve(self, ins, pars, sts):
        return {"H": H, "K": K}, B, T

    def runner(self, key, device):
        return self.r

    def execute(self, key, dims, b, t, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None, **kw):
        self.calls.append({"key": key, "form": form, "workspaces asked": "workspaces" in kw})
        ws = kw.get("workspaces")
        if ws is not None:
            ws["chunk"] = torch.zeros(16, dtype=torch.uint8)
            ws["chunkS"] = torch.arange(B * H * nC * K * K, dtype=torch.float32).view(torch.uint8)  # (float32: io "f32")
        return {"o": inputs["q"] * 2}, {"S": torch.full([b, H, K, K], 7.0)}, form


class Ctx:
    def __init__(self, n):
        self.needs_input_grad = (True,) * n

    def save_for_backward(self, *ts):
        self.saved_tensors = ts


def main():
    seqc_torch._check_tensors = lambda m, named: (torch.float32, torch.device("cpu"))
    got = {}
    real_eager = lr.backward_eager
    for way in ("off", "on", "split3"):
        lr.LR_FWD_STATES = way
        m = Model()
        flat = [torch.randn(B, T, H, K), None]  # q, the initial state S
        ctx = Ctx(len(flat))
        outs = seqc_torch.forward(ctx, m, "auto", flat)
        st = getattr(ctx, "delta_states", None)
        seen = {}

        def eager(ctx_, m_, f, g, convert=True, states=None):
            seen["states"] = states
            return [None] * len(f)
        lr.backward_eager = eager
        try:
            lr.backward(ctx, m, flat, [torch.ones_like(outs[0]), None])
        finally:
            lr.backward_eager = real_eager
        s = seen.get("states")
        got[way] = {
            "calls": m.calls,
            "states": None if st is None else [str(st[0].dtype), st[0].numel(), bool(torch.equal(st[0], torch.arange(B * H * nC * K * K, dtype=torch.float32))), st[1].tolist() == torch.full([B, H, K, K], 7.0).tolist()],
            "backward got": None if s is None else [len(s), bool(s[0] is st[0] or torch.equal(s[0], st[0])), bool(torch.equal(s[1], st[1]))],
        }
    print(json.dumps(got))


if __name__ == "__main__":  # (test/torch/fwd_states_shared.py imports the stand-in)
    main()
