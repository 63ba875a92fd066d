"""The line protocol of test/torch/chain_glue.py and lowrank_glue.py: a chain model's run asked of the test's float64
interpreter (this prints {"run": part, ...} and reads {"outputs", "final"} back)."""

import json
import sys


def line_run(enc, arr):
    """run(part, dims, inputs, initial, b, t) -> (outputs, final states) over stdin / stdout; enc(tensor) -> its JSON,
    arr(JSON) -> the tensor."""
    def run(part, dims, inputs, initial, b, t):
        sys.stdout.write(json.dumps({"run": part, "dims": dims, "B": b, "T": t,
                                     "inputs": {k: enc(v) for k, v in inputs.items() if v is not None},
                                     "initial": {k: enc(v) for k, v in initial.items()}}) + "\n")
        sys.stdout.flush()
        r = json.loads(sys.stdin.readline())
        return {k: arr(v) for k, v in r["outputs"].items()}, {k: arr(v) for k, v in r["final"].items()}
    return run
