"""Driver for test/torch-decay-anchor.test.ts: chain_backward (runtime/torch/seqc_chunked.py) on numpy (the stand-in
torch of test/torch/fake) with the decay adjoint anchored at chunk boundaries (decay_anchor "chunk",
runtime/torch/seqc_decay_adjoint.py) or not ("none"), every chain model run by the test's float64 interpreter over
test/torch/chain_glue.py's line protocol. Input (first line of stdin): chain_glue.py's case plus "decayAnchor",
"anchorChunk" (tokens per chunk), "anchorGram" (seqc_chunked.DECAY_ANCHOR_GRAM: "stack" / "lean") and "reverseSum"
(seqc_chunked.REVERSE_SUM: "chunk" / "cumsum" / "flip"; absent: the default)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chain_glue import run_case  # noqa: E402

case = json.loads(sys.stdin.readline())
# this driver's fixed choices: the per-key transposed products as torch ops, the decay adjoint's terms as torch ops,
# the stack Gram unless the case names one
case.update(perKeyT="matmul", decayWay="torch", anchorGram=case.get("anchorGram", "stack"))
run_case(case)
