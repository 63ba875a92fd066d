"""Driver for test/torch-terms-rev.test.ts: runtime/torch/seqc_chunked.py REVERSED_READS "terms" against "flip" (the way
before) in one bf16 training step's chunked backward on CPU torch, every plan stubbed by test/torch/plan_stubs.py
(fixed outputs by (plan, output), a part's copies honoured) and the decay terms kernel replaced by a torch stand-in of its
contract (decay-terms.ts: sum_K a1 c1 - sum_K a2 c2 per head, or per key row; an operand whose rev bit is set read at token
T - 1 - t). Counted under torch's dispatch (the stand-in's own ops left out): time reversals (flips) of float32 and of
bf16 tensors, conversions float32 -> bf16, of tensors of at least a quarter of B*T*H*K elements.
argv: <modules dir> <Model> [broken]: broken = a stand-in that ignores rev (the reversed dk read as if forward).
Prints one JSON line per path ("flip", "terms"): {path, counts, grads_equal_flip}.
"""

import json
import sys

import torch

import plan_stubs as S  # test/torch/plan_stubs.py: the stubbed model, the step, the count

C = S.C
PAUSE = [False]


def main():
    mods, name = sys.argv[1], sys.argv[2]
    broken = len(sys.argv) > 3 and sys.argv[3] == "broken"
    m = S.stub_model(mods, name)
    C.module_kernels = lambda m_, device, key: object() if key == "decayTerms" else None
    calls = []

    C.decay_terms_kernel = S.decay_terms_standin(calls, PAUSE, ignore_rev=broken)
    big, g, x, pars = S.step_inputs(m, name)
    cot, base = None, None
    for path in ("flip", "terms"):
        C.REVERSED_READS = path
        counts = {"flip f32": 0, "flip bf16": 0, "f32->bf16": 0}

        def tally(what, dtypes):
            if what == "flip":
                counts["flip bf16" if dtypes[0] == torch.bfloat16 else "flip f32"] += 1
            elif dtypes == (torch.float32, torch.bfloat16):
                counts["f32->bf16"] += 1
        del calls[:]
        grads, cot = S.grad_step(m, x, pars, cot, g, S.Moves(big, tally, lambda: PAUSE[0]))
        rec = {"path": path, "counts": counts, "revs": list(calls)}
        if base is None:
            base = grads
        else:
            rec["grads_equal_flip"] = {k: bool(torch.equal(grads[k], base[k])) and grads[k].dtype == base[k].dtype for k in grads}
        print(json.dumps(rec), flush=True)


main()
