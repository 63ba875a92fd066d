"""Driver for test/torch-glue-copies.test.ts: the float32 copies, dtype conversions and time reversals of one bf16
training step's chunked backward (runtime/torch/seqc_chunked.py), counted on CPU torch, per switch setting.

Every plan is replaced by a stub (test/torch/plan_stubs.py; no kernels, no interpreter): its outputs are fixed pseudo-random tensors of the plan's
output dtype, seeded by (plan, output), except a part's `copies` (<Model>.torch.json names), which are the inputs they
equal (as the plans compute them), and its `zeros`: 0 with ZERO_STORES "write", NaN with "skip" (a "-nz" form leaves
them unwritten: read anywhere, a gradient would differ from the old path's). Each plan run's inputs are recorded by value (float64 sums, plain and weighted by
position): the paths must hand every plan they both run the same values, and must return bitwise the same gradients.
Counted under torch's dispatch: conversions bf16 -> float32 and float32 -> bf16 and flips of tensors of at least a
quarter of B*T*H*K elements (the [B, T, H*K] ones). A GLA-family step's rows readout runs as torch ops here
(PER_KEY_TRANSPOSED "matmul": no kernel on CPU).
argv: <modules dir> <Model>. Prints one JSON line per path: {path, counts, runs, grads_equal_old, inputs_equal_old}.
"""

import json
import sys

import torch

import plan_stubs as S  # test/torch/plan_stubs.py: the stubbed model, the step, the count

C = S.C
# the switches of this test, old value first
SWITCHES = {"IDLE_INPUTS": ("all", "none"), "ADJOINT_OUT": ("f32", "low"), "RUN_COPIES": ("plan", "input"), "CORE_RERUN": ("post", "bound"), "GRAD_SUM": ("f32", "low"), "ZERO_STORES": ("write", "skip")}
PATHS = [("old", {k: v[0] for k, v in SWITCHES.items()})] + [(k, dict({j: v[0] for j, v in SWITCHES.items()}, **{k: v[1]})) for k, v in SWITCHES.items()] + [("new", {k: v[1] for k, v in SWITCHES.items()})]
CONVERSIONS = {(torch.bfloat16, torch.float32): "bf16->f32", (torch.float32, torch.bfloat16): "f32->bf16"}


def stamp(x):  # a tensor's values: float64 sums, plain and weighted by position
    d = x.detach().double().reshape(-1)
    return [float(d.sum()), float((d * torch.arange(1, d.numel() + 1, dtype=torch.float64)).sum())]


def main():
    mods, name = sys.argv[1], sys.argv[2]
    runs = []

    def on_run(key, inputs):
        runs.append([key, {k: stamp(v) for k, v in sorted(inputs.items()) if v is not None and not (key == "chain:postBw" and k in [r["y"] for r in n["readouts"]])}])
    m = S.stub_model(mods, name, zeros=True, on_run=on_run)
    n = m.chunked["names"]
    big, g, x, pars = S.step_inputs(m, name)
    cot = None
    base = None
    for path, sw in PATHS:
        for k, v in sw.items():
            setattr(C, k, v)
        counts = {"bf16->f32": 0, "f32->bf16": 0, "flip": 0}

        def tally(what, dtypes):
            key = "flip" if what == "flip" else CONVERSIONS.get(dtypes)
            if key:
                counts[key] += 1
        del runs[:]
        grads, cot = S.grad_step(m, x, pars, cot, g, S.Moves(big, tally))
        rec = {"path": path, "counts": counts, "runs": [r[0] for r in runs]}
        if base is None:
            base = (grads, dict((r[0], r[1]) for r in runs))
        else:
            rec["grads_equal_old"] = {k: bool(torch.equal(grads[k], base[0][k])) and grads[k].dtype == base[0][k].dtype for k in grads}
            rec["inputs_equal_old"] = {r[0]: r[1] == base[1].get(r[0]) for r in runs}
        print(json.dumps(rec), flush=True)


main()
