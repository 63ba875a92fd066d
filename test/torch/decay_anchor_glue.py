"""Driver for test/torch-decay-anchor.test.ts: chain_backward (runtime/torch/seqc_chunked.py) on numpy (the stand-in
torch of test/torch/fake) with the decay adjoint anchored at chunk boundaries (decay_anchor "chunk",
runtime/torch/seqc_decay_adjoint.py) or not ("none"), every chain model run by the test's float64 interpreter over
test/torch/chain_glue.py's line protocol. Input (first line of stdin): chain_glue.py's case plus "decayAnchor",
"anchorChunk" (tokens per chunk), "anchorGram" (seqc_chunked.DECAY_ANCHOR_GRAM: "stack" / "lean") and "reverseSum"
(seqc_chunked.REVERSE_SUM: "chunk" / "cumsum" / "flip"; absent: the default)."""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "fake"))
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import numpy as np  # noqa: E402
import seqc_chunked  # noqa: E402
from line_run import line_run  # noqa: E402


def arr(t):
    return None if t is None else np.array(t["data"], dtype=np.float64).reshape(t["shape"])


def enc(a):
    a = np.ascontiguousarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "data": a.reshape(-1).tolist()}


def main():
    case = json.loads(sys.stdin.readline())
    B, T = case["B"], case["T"]
    seqc_chunked.DECAY_ANCHOR_GRAM = case.get("anchorGram", "stack")
    gin, gpar, dS0 = seqc_chunked.chain_backward(
        case["names"], line_run(enc, arr), B, T, case["stateShape"], {k: arr(v) for k, v in case["given"].items()}, arr(case.get("S0")),
        {k: arr(v) for k, v in case["cotOutputs"].items()}, arr(case.get("cotState")),
        case["inputs"], case["params"], case["outputs"], np.float64, None, "matmul", "torch", arr(case.get("SN")),
        decay_anchor=case["decayAnchor"], anchor_chunk=case["anchorChunk"],
        reverse_sum=case.get("reverseSum"))
    sys.stdout.write(json.dumps({"done": True, "inputs": {k: enc(v) for k, v in gin.items()}, "params": {k: enc(v) for k, v in gpar.items()}, "dS0": enc(dS0)}) + "\n")


main()
