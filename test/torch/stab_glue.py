"""Driver for test/torch-chunked-stab.test.ts: runs runtime/torch/seqc_chunked_stab.py's stab_chain_backward on CPU
torch (the real torch ops) with every chain model run by the test's float64 interpreter over a line protocol: this
prints {"run": part, ...} and reads {"outputs", "final"} back; at the end it prints the gradients.
Input (first line of stdin): {"names", "B", "T", "stateShape", "given", "initStates", "cotOutputs", "cotStates",
"inputs", "params", "outputs", "dtype", "breakTerm"?} with tensors as {"shape": [...], "data": [...]} (non-finite
numbers as "Infinity" / "-Infinity"); dtype "float32" runs the glue in float32 (the interpreter's results rounded to
float32 on the way in); breakTerm: stab_chain_backward's break_term (a term left out: must fail)."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked_stab  # noqa: E402
from line_run import line_run  # noqa: E402

DTYPE = [torch.float64]


def arr(t):
    return None if t is None else torch.tensor([float(x) for x in t["data"]], dtype=DTYPE[0]).reshape(t["shape"])


def enc(a):
    a = a.detach().double().contiguous()
    def num(x):  # JSON has no infinities: the names JavaScript's Number() reads
        return x if x == x and abs(x) != float("inf") else ("NaN" if x != x else "Infinity" if x > 0 else "-Infinity")
    return {"shape": list(a.shape), "data": [num(x) for x in a.reshape(-1).tolist()]}


def main():
    case = json.loads(sys.stdin.readline())
    DTYPE[0] = torch.float32 if case.get("dtype") == "float32" else torch.float64
    run = line_run(enc, arr)
    B, T = case["B"], case["T"]
    gin, gpar, init = seqc_chunked_stab.stab_chain_backward(
        case["names"], run, B, T, case["stateShape"], {k: arr(v) for k, v in case["given"].items()}, {k: arr(v) for k, v in case["initStates"].items()},
        {k: arr(v) for k, v in case["cotOutputs"].items()}, {k: arr(v) for k, v in case["cotStates"].items()},
        case["inputs"], case["params"], case["outputs"], DTYPE[0], torch.device("cpu"), break_term=case.get("breakTerm"))
    sys.stdout.write(json.dumps({"done": True, "inputs": {k: enc(v) for k, v in gin.items()}, "params": {k: enc(v) for k, v in gpar.items()},
                                 "initial": {k: enc(v) for k, v in init.items()}, "dtypes": sorted({str(v.dtype) for v in list(gin.values()) + list(init.values())})}) + "\n")


main()
