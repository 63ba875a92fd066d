"""Driver for test/torch-chunked.test.ts: seqc's torch autograd path with the chunked backward on CPU torch in
float64 (runtime/torch/seqc_torch.py forward/backward and seqc_chunked.py, the real torch ops), every plan
replaced by the test's float64 interpreter over a line protocol (SeqcModel.execute prints {"run": key, ...} and
reads {"outputs", "final"} back; no CUDA). Prints the gradients of sum(out * cot) + sum(final * cot_final).
argv: <Model>.torch.json. stdin, first line: {"inputs", "params", "initialState", "cotOutputs", "cotFinal"}
(flat lists), B and T, and "backward" (the SeqcModel's choice)."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_cuda  # noqa: E402
import seqc_torch  # noqa: E402


def main():
    case = json.loads(sys.stdin.readline())
    B, T = case["B"], case["T"]
    seqc_torch._check_tensors = lambda m, named: (torch.float64, torch.device("cpu"))
    m = seqc_torch.SeqcModel(sys.argv[1], None, "auto", case["backward"])
    keys = []

    def execute(key, dims, b, t, inputs, params, states, dtype, device, form="auto"):
        keys.append(key)
        flat = lambda d: {k: v.detach().reshape(-1).tolist() for k, v in d.items() if v is not None}  # noqa: E731
        sys.stdout.write(json.dumps({"run": key, "dims": dims, "B": b, "T": t, "inputs": flat(inputs), "params": flat(params), "initial": flat(states)}) + "\n")
        sys.stdout.flush()
        r = json.loads(sys.stdin.readline())
        outs = {k: torch.tensor(v["data"], dtype=dtype).reshape(v["shape"]) for k, v in r["outputs"].items()}
        final = {k: torch.tensor(v["data"], dtype=dtype).reshape(v["shape"]) for k, v in r["final"].items()}
        return outs, final, "interpreter"
    m.execute = execute

    def shaped(t, lead, v):
        full = dict(case["dims"], B=B, T=T)
        return torch.tensor(v, dtype=torch.float64).reshape([full[x] for x in lead] + [seqc_cuda.eval_size(s, full) for s in t["shape"]]).requires_grad_(True)

    ins = {t["name"]: shaped(t, ["B", "T"], case["inputs"][t["name"]]) for t in m.inputs if t["name"] in case["inputs"]}
    pars = {t["name"]: shaped(t, [], case["params"][t["name"]]) for t in m.params if t["name"] in case["params"]}
    sts = {t["name"]: shaped(t, ["B"], case["initialState"][t["name"]]) for t in m.states if t["name"] in case["initialState"]}
    outs = m.apply(ins, pars, sts)
    chunked = outs[0].grad_fn.chunked
    loss = 0
    for t, o in zip(m.outputs, outs[: len(m.outputs)]):
        loss = loss + (o * torch.tensor(case["cotOutputs"][t["name"]], dtype=torch.float64).reshape(o.shape)).sum()
    for t, o in zip(m.states, outs[len(m.outputs):]):
        if t["name"] in case["cotFinal"]:
            loss = loss + (o * torch.tensor(case["cotFinal"][t["name"]], dtype=torch.float64).reshape(o.shape)).sum()
    loss.backward()
    g = lambda d: {k: v.grad.reshape(-1).tolist() for k, v in d.items()}  # noqa: E731
    sys.stdout.write(json.dumps({"done": True, "keys": keys, "chunked": chunked, "inputs": g(ins), "params": g(pars), "initialState": g(sts)}) + "\n")


main()
