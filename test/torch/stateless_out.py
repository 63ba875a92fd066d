"""Driver for test/torch-stateless-out.test.ts: runtime/torch/seqc_chunked.py STATELESS_OUT ("f32", "grads", "bf16") in one
bf16 training step's chunked backward on CPU torch, every plan stubbed by test/torch/plan_stubs.py. A "-bf16out" twin's
run is the stub's float32 form run (the same outputs) with its bf16Outputs converted by torch (their contract,
stateless-bf16.ts: rounded to nearest even, bitwise the float32 output converted), or, broken, truncated to bf16.
Counted under torch's dispatch: float32 -> bf16 conversions of tensors of at least a quarter of B*T*H*K elements (the
twins' own conversions left out). argv: <modules dir> <Model> [broken].
Prints one JSON line per switch value: {out, conversions, runs: [[part, variant, bf16 outputs]], dtypes, grads_equal_f32,
max_rel_f32, prep_bw_in_equal_f32, prep_bw_in_rel_f32}: the stubs' outputs do not depend on their inputs, so the gradients
compare the glue's sums and conversions; prep's backward's inputs (the adjoints the glue computes: the log decay's from
the decay adjoint's terms and anchors, which read k) show what reading prep's bf16 outputs changes.
"""

import json
import sys

import torch

import plan_stubs as S  # test/torch/plan_stubs.py

C = S.C
PAUSE = [False]


def main():
    mods, name = sys.argv[1], sys.argv[2]
    broken = len(sys.argv) > 3 and sys.argv[3] == "broken"
    m = S.stub_model(mods, name)
    stub = m.execute
    runs = []

    seen = {}  # prep's backward's inputs as the glue handed them (the adjoints of prep's outputs among them)

    def execute(key, dims, b, t, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None):
        if key.split(":", 1)[-1] == "prepBw":
            seen.update({k: v.detach().clone() for k, v in inputs.items() if v is not None})
        if out_io != "bf16" or key.split(":", 1)[-1] not in ("prep", "prepBw"):
            return stub(key, dims, b, t, inputs, params, states, dtype, device, form, io, out_io)
        f = m.runner(key, device).pick(dims, b, t, form, io, out_io)[0]
        low = f.get("bf16Outputs") or []
        PAUSE[0] = True
        try:
            outs, final, _ = stub(key, dims, b, t, inputs, params, states, dtype, device, "auto", io, "f32")
            for o in low:
                v = outs[o]
                if broken:  # the float's upper half as it is (no rounding)
                    outs[o] = (v.float().contiguous().view(torch.int32) & -65536).view(torch.float32).to(torch.bfloat16)
                else:
                    outs[o] = v.to(torch.bfloat16)
        finally:
            PAUSE[0] = False
        runs.append([key.split(":", 1)[-1], f["variant"], sorted(low)])
        return outs, final, f["variant"]
    m.execute = execute
    big, g, x, pars = S.step_inputs(m, name)
    cot, base, base_in = None, None, None
    for out in ("f32", "grads", "bf16"):
        C.STATELESS_OUT = out
        counts = {"f32->bf16": 0}

        def tally(what, dtypes):
            if what == "convert" and dtypes == (torch.float32, torch.bfloat16):
                counts["f32->bf16"] += 1
        del runs[:]
        seen.clear()
        grads, cot = S.grad_step(m, x, pars, cot, g, S.Moves(big, tally, lambda: PAUSE[0]))
        rec = {"out": out, "conversions": counts["f32->bf16"], "runs": list(runs), "dtypes": {k: str(v.dtype) for k, v in grads.items()}}
        if base is None:
            base, base_in = grads, dict(seen)
        else:
            rec["prep_bw_in_equal_f32"] = {k: bool(torch.equal(seen[k].float(), base_in[k].float())) for k in base_in}
            rec["prep_bw_in_rel_f32"] = {k: float((seen[k].double() - base_in[k].double()).abs().max() / base_in[k].double().abs().max().clamp_min(1e-30)) for k in base_in}
            rec["grads_equal_f32"] = {k: bool(torch.equal(grads[k], base[k])) and grads[k].dtype == base[k].dtype for k in grads}
            rec["max_rel_f32"] = {k: float((grads[k].double() - base[k].double()).abs().max() / base[k].double().abs().max().clamp_min(1e-30)) for k in grads}
        print(json.dumps(rec), flush=True)


main()
