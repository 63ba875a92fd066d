"""GPU check of seqc's torch target against seqc's float64 reference.

For each model compiled into <dir> (`seqc compile --target torch --out <dir>`) with reference data in
<dir>/ref/<name>.json (`npx tsx bench/torch/make-reference.ts <dir>/ref`: inputs, params, initial
states, cotangents, and the interpreter's outputs, final states and gradients, which agree with
finite differences to 1e-6), runs <Model>Function on the GPU and compares
  - float32 with gradients (recording forward + backward model): outputs, final states, and the
    gradients of sum(out * cot) + sum(final * cot_final) w.r.t. every input, param and initial state;
  - float32 without gradients: every forward form of the plan that can run the shape (auto and each
    of sequential / scan / chunked present), outputs and final states;
  - float64 (double kernels) with gradients, same comparisons;
  - torch.autograd.gradcheck in float64 on the first 4 steps of batch row 0;
  - for modules with the chunked backward (runtime/torch/seqc_chunked.py): the same gradients with
    backward="chunked" forced, in float32 (the chain's chunked kernels) and float64 (its double kernels),
    and gradcheck through it (--only-chunked: just these, and the auto forward).
Relative error is ||got - ref|| / ||ref|| per tensor; limits: 1e-4 (fp32), 1e-9 (fp64).

  python3 bench/torch/check.py dist/torch [--out results.json] [--only-chunked] [model ...]
"""

import importlib
import json
import os
import sys
import time

import torch

F32_TOL, F64_TOL = 1e-4, 1e-9


def rel(a, b):
    a, b = a.detach().double().reshape(-1).cpu(), b.double().reshape(-1).cpu()
    den = b.norm().item()
    num = (a - b).norm().item()
    return 0.0 if den == 0 and num == 0 else (num / den if den else float("inf"))


def split_flat(sm, flat):
    """(*inputs, *params, *initial states) -> the dicts SeqcModel.apply takes (None left out)."""
    ni, npar = len(sm.inputs), len(sm.params)
    pick = lambda specs, xs: {t["name"]: x for t, x in zip(specs, xs) if x is not None}  # noqa: E731
    return pick(sm.inputs, flat[:ni]), pick(sm.params, flat[ni : ni + npar]), pick(sm.states, flat[ni + npar :])


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out_path = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    if out_path in args:
        args.remove(out_path)
    only_chunked = "--only-chunked" in sys.argv
    root = args[0]
    names = args[1:] or sorted(f[:-5] for f in os.listdir(os.path.join(root, "ref")) if f.endswith(".json"))
    sys.path.insert(0, root)
    dev = torch.device("cuda", 0)
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    rows, failures = [], []

    def record(model, what, tensor, err, tol):
        ok = err <= tol
        rows.append({"model": model, "check": what, "tensor": tensor, "rel": err, "tol": tol, "ok": ok})
        if not ok:
            failures.append("%s %s %s: %.3e > %.0e" % (model, what, tensor, err, tol))
        return err

    for name in names:
        cases = json.load(open(os.path.join(root, "ref", name + ".json")))
        M = importlib.import_module(cases[0]["model"])
        Fn = getattr(M, cases[0]["model"] + "Function")
        sm = M._model(None, "auto")
        for case in cases:
            dims, B, T = case["dims"], case["B"], case["T"]
            full = dict(dims, B=B, T=T)

            def shape_of(t, lead):
                return [full[x] for x in lead] + [int(__import__("seqc_cuda").eval_size(s, full)) for s in t["shape"]]

            def tensors(dtype, grad):
                flat, names_ = [], []
                for t in sm.inputs:
                    v = case["inputs"].get(t["name"])
                    flat.append(None if v is None else torch.tensor(v, dtype=dtype, device=dev).reshape(shape_of(t, ["B", "T"])).requires_grad_(grad))
                    names_.append(("input", t["name"]))
                for t in sm.params:
                    v = case["params"].get(t["name"])
                    flat.append(None if v is None else torch.tensor(v, dtype=dtype, device=dev).reshape(shape_of(t, [])).requires_grad_(grad))
                    names_.append(("param", t["name"]))
                for t in sm.states:
                    v = case["initialState"].get(t["name"])
                    flat.append(None if v is None else torch.tensor(v, dtype=dtype, device=dev).reshape(shape_of(t, ["B"])).requires_grad_(grad))
                    names_.append(("initialState", t["name"]))
                return flat, names_

            def compare(tag, outs, tol):
                no = len(sm.outputs)
                for t, o in zip(sm.outputs, outs[:no]):
                    record(name, tag, "output " + t["name"], rel(o, torch.tensor(case["outputs"][t["name"]], dtype=torch.float64)), tol)
                for t, o in zip(sm.states, outs[no:]):
                    record(name, tag, "final " + t["name"], rel(o, torch.tensor(case["finalState"][t["name"]], dtype=torch.float64)), tol)

            label = "B=%d T=%d" % (B, T)
            if sm.chunked is not None:
                smc = M._model(None, "auto", "chunked")
                for dtype, tol, tag in ((torch.float32, F32_TOL, "fp32"), (torch.float64, F64_TOL, "fp64")):
                    flat, nm = tensors(dtype, True)
                    t0 = time.time()
                    outs = smc.apply(*split_flat(sm, flat))
                    ran = getattr(outs[0].grad_fn, "chunked", None)
                    loss = 0
                    for t, o in zip(sm.outputs, outs[: len(sm.outputs)]):
                        loss = loss + (o * torch.tensor(case["cotOutputs"][t["name"]], dtype=dtype, device=dev).reshape(o.shape)).sum()
                    for t, o in zip(sm.states, outs[len(sm.outputs):]):
                        loss = loss + (o * torch.tensor(case["cotFinal"][t["name"]], dtype=dtype, device=dev).reshape(o.shape)).sum()
                    loss.backward()
                    torch.cuda.synchronize()
                    dt = time.time() - t0
                    if ran is not True:
                        failures.append("%s %s chunked %s: the chunked backward did not run (ctx.chunked=%r)" % (name, tag, label, ran))
                    for (kind, tname), x in zip(nm, flat):
                        if x is None:
                            continue
                        ref = case["grads"][{"input": "inputs", "param": "params", "initialState": "initialState"}[kind]].get(tname)
                        record(name, "%s chunked-backward %s" % (tag, label), "d/d %s %s" % (kind, tname), rel(x.grad, torch.tensor(ref, dtype=torch.float64)), tol)
                    print("%-15s %-4s %-10s chunked fwd+bwd %.3fs" % (name, tag, label, dt), flush=True)
            for dtype, tol, tag in (() if only_chunked else ((torch.float32, F32_TOL, "fp32"), (torch.float64, F64_TOL, "fp64"))):
                flat, nm = tensors(dtype, True)
                t0 = time.time()
                outs = Fn.apply(*flat)
                no = len(sm.outputs)
                loss = 0
                for t, o in zip(sm.outputs, outs[:no]):
                    loss = loss + (o * torch.tensor(case["cotOutputs"][t["name"]], dtype=dtype, device=dev).reshape(o.shape)).sum()
                for t, o in zip(sm.states, outs[no:]):
                    loss = loss + (o * torch.tensor(case["cotFinal"][t["name"]], dtype=dtype, device=dev).reshape(o.shape)).sum()
                loss.backward()
                torch.cuda.synchronize()
                dt = time.time() - t0
                rv = sm.runner("record64" if tag == "fp64" else "record", dev).pick(dims, B, T)[0]["variant"]
                bv = sm.runner("backward64" if tag == "fp64" else "backward", dev).pick(dims, B, T)[0]["variant"]
                compare("%s grad-forward %s (record %s)" % (tag, label, rv), outs, tol)
                for (kind, tname), x in zip(nm, flat):
                    if x is None:
                        continue
                    ref = case["grads"][{"input": "inputs", "param": "params", "initialState": "initialState"}[kind]].get(tname)
                    record(name, "%s backward %s (%s)" % (tag, label, bv), "d/d %s %s" % (kind, tname), rel(x.grad, torch.tensor(ref, dtype=torch.float64)), tol)
                print("%-15s %-4s %-10s fwd+bwd %.3fs (record %s, backward %s)" % (name, tag, label, dt, rv, bv), flush=True)
            # no-grad forwards: auto and each form of the forward plan that can run this shape
            flat, _ = tensors(torch.float32, False)
            runner = sm.runner("forward", dev)
            forms = ["auto"] + ([] if only_chunked else [f for f in ("sequential", "scan", "chunked") if runner.applicable(dims, B, T, f)])
            for form in forms:
                variant = runner.pick(dims, B, T, form)[0]["variant"]
                m = M._model(None, form)
                with torch.no_grad():
                    outs = m.apply({t["name"]: x for t, x in zip(sm.inputs, flat[: len(sm.inputs)]) if x is not None},
                                   {t["name"]: x for t, x in zip(sm.params, flat[len(sm.inputs): len(sm.inputs) + len(sm.params)]) if x is not None},
                                   {t["name"]: x for t, x in zip(sm.states, flat[len(sm.inputs) + len(sm.params):]) if x is not None})
                compare("fp32 forward %s form=%s (%s)" % (label, form, variant), outs, F32_TOL)
        # gradcheck (float64 kernels) on the first 4 steps of batch row 0 of the first case
        case = cases[0]
        full = dict(case["dims"], B=case["B"], T=case["T"])
        import seqc_cuda

        flat = []
        for t in sm.inputs:
            v = case["inputs"].get(t["name"])
            x = torch.tensor(v, dtype=torch.float64, device=dev).reshape([full["B"], full["T"]] + [seqc_cuda.eval_size(s, full) for s in t["shape"]])
            flat.append(x[:1, :4].clone().requires_grad_(True))
        for t in sm.params:
            v = case["params"].get(t["name"])
            flat.append(None if v is None else torch.tensor(v, dtype=torch.float64, device=dev).reshape([seqc_cuda.eval_size(s, full) for s in t["shape"]]).requires_grad_(True))
        for t in sm.states:
            v = case["initialState"].get(t["name"])
            x = torch.tensor(v, dtype=torch.float64, device=dev).reshape([full["B"]] + [seqc_cuda.eval_size(s, full) for s in t["shape"]])
            flat.append(x[:1].clone().requires_grad_(True))
        fns = [] if only_chunked else [("gradcheck fp64 B=1 T=4", lambda *xs: Fn.apply(*xs))]
        if sm.chunked is not None:
            smc = M._model(None, "auto", "chunked")
            fns.append(("gradcheck fp64 B=1 T=4 chunked-backward", lambda *xs: smc.apply(*split_flat(sm, xs))))
        for what, f in fns:
            t0 = time.time()
            try:
                ok = torch.autograd.gradcheck(f, tuple(flat))
                err = ""
            except Exception as e:  # gradcheck raises with the mismatching Jacobian
                ok, err = False, str(e)[:400]
            rows.append({"model": name, "check": what, "tensor": "all", "rel": 0.0 if ok else 1.0, "tol": 0, "ok": ok, "error": err})
            if not ok:
                failures.append("%s %s: %s" % (name, what, err))
            print("%-15s %s: %s (%.1fs)" % (name, what, "passed" if ok else "FAILED", time.time() - t0), flush=True)

    # summary: worst relative error per model and check kind
    print("\nworst relative error per model (fp32 limit %.0e, fp64 %.0e)" % (F32_TOL, F64_TOL))
    print("%-15s %12s %12s %12s %12s %12s %12s %12s  %s" % ("model", "fp32 fwd", "fp32 grads", "fp32 nograd", "fp64 fwd", "fp64 grads", "fp32 chunked", "fp64 chunked", "gradcheck"))
    for name in names:
        r = [x for x in rows if x["model"] == name]

        def worst(pred):
            v = [x["rel"] for x in r if pred(x["check"])]
            return "%.2e" % max(v) if v else "-"

        gc = [x for x in r if x["check"].startswith("gradcheck")]
        print("%-15s %12s %12s %12s %12s %12s %12s %12s  %s" % (
            name,
            worst(lambda c: c.startswith("fp32 grad-forward")),
            worst(lambda c: c.startswith("fp32 backward")),
            worst(lambda c: c.startswith("fp32 forward")),
            worst(lambda c: c.startswith("fp64 grad-forward")),
            worst(lambda c: c.startswith("fp64 backward")),
            worst(lambda c: c.startswith("fp32 chunked-backward")),
            worst(lambda c: c.startswith("fp64 chunked-backward")),
            "passed" if gc and all(x["ok"] for x in gc) else "FAILED",
        ))
    print("\n%d checks, %d failed" % (len(rows), len(failures)))
    for f in failures:
        print("FAIL", f)
    if out_path:
        with open(out_path, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows, "failures": failures}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
