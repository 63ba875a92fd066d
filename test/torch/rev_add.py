"""Driver for test/torch-rev-add.test.ts: runtime/torch/seqc_chunked.py REV_ADD "kernel" against "flip" (the way before)
in one bf16 training step's chunked backward on CPU torch, every plan stubbed by test/torch/plan_stubs.py, the
reversed-time add kernel replaced by a torch stand-in of its contract (rev-add.ts: a + c reversed in time, the float32
sum rounded once to the asked dtype). Counted under torch's dispatch (the stand-in's own ops left out): flips of float32
and of bf16 tensors, float32 -> bf16 conversions, adds, of tensors of at least a quarter of B*T*H*K elements.
argv: <modules dir> <Model> [broken]: broken = a stand-in that reads c forward (no reversal).
Prints one JSON line per path ("flip", "kernel"): {path, counts, calls, grads_equal_flip}.
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
    C.module_kernels = lambda m_, device, key: object() if key == "revAdd" else None
    calls = []

    def standin(km, a, c, B, T, od):
        PAUSE[0] = True
        try:
            calls.append([str(a.dtype), str(c.dtype), str(od), list(a.shape)])
            cc = c if broken else torch.flip(c.reshape(B, T, -1), [1]).reshape(c.shape)
            return torch.add(a, cc, out=torch.empty(a.shape, dtype=od))
        finally:
            PAUSE[0] = False
    C.rev_add_kernel = standin
    big, g, x, pars = S.step_inputs(m, name)
    cot, base = None, None
    for path in ("flip", "kernel"):
        C.REV_ADD = path
        counts = {"flip f32": 0, "flip bf16": 0, "f32->bf16": 0, "add": 0}

        def tally(what, dtypes):
            if what == "flip":
                counts["flip bf16" if dtypes[0] == torch.bfloat16 else "flip f32"] += 1
            elif dtypes == (torch.float32, torch.bfloat16):
                counts["f32->bf16"] += 1

        class Adds(S.Moves):  # (the flips and conversions as S.Moves counts them, and the large adds)
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.overloadpacket.__name__ == "add" and not PAUSE[0] and isinstance(args[0], torch.Tensor) and args[0].numel() >= big:
                    counts["add"] += 1
                return super().__torch_dispatch__(func, types, args, kwargs)
        del calls[:]
        grads, cot = S.grad_step(m, x, pars, cot, g, Adds(big, tally, lambda: PAUSE[0]))
        rec = {"path": path, "counts": counts, "calls": list(calls)}
        if base is None:
            base = grads
        else:
            rec["grads_equal_flip"] = {k: bool(torch.equal(grads[k], base[k])) and grads[k].dtype == base[k].dtype for k in grads}
        print(json.dumps(rec), flush=True)


main()
