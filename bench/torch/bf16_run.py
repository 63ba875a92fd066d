"""bf16 tensors through seqc's torch target (issue 6): the forward and the chunked backward's cores on the chunked
form's bf16 tensor-core kernels (fp32 accumulation; runtime/torch/seqc_chunked.py), checked and timed on the GPU.

Accuracy, per model:
  ref    the reference cases (<modules>/ref/<model>.json: seqc's float64 interpreter, gradients that agree with
         finite differences): bf16 inputs, fp32 params and initial states; every gradient vs the reference at the
         bf16-rounded inputs, which seqc's float64 kernels give (checked here against the reference at the
         unrounded inputs, <= 1e-9) -- limit 1e-2 relative (||got - ref|| / ||ref||);
  large  B=2, T=2048 at the benchmark's heads and K = V = 64: bf16 gradients vs seqc's float64 kernels (sequential
         double recording forward and chain64 parts) at the same rounded values, limit 1e-2.
Timing at (8, 2048, 16, 64) (Mamba-2 32 heads), one process, CUDA events, median: seqc fp32 (today's path), seqc bf16,
and the anchor in bf16 (fla chunk_simple_gla / chunk_gla, mamba_ssm mamba_chunk_scan_combined; as chunked_bench.py).
  python3 bench/torch/bf16_run.py <modules dir> [--models simple_gla,mamba2,gla] [--out bf16.json] [--timing-only]
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402
import chunked_bench as cb  # noqa: E402

DEV = tb.DEV
TOL = 1e-2


def grads_of(sm, ins, pars, sts, cot_out, cot_fin):
    outs = sm.apply(ins, pars, sts)
    loss = 0
    for t, o in zip(sm.outputs, outs[: len(sm.outputs)]):
        loss = loss + (o.double() * cot_out[t["name"]]).sum()
    for t, o in zip(sm.states, outs[len(sm.outputs):]):
        if t["name"] in cot_fin:
            loss = loss + (o.double() * cot_fin[t["name"]]).sum()
    loss.backward()
    ran = getattr(outs[0].grad_fn, "chunked", None)
    return {k: v.grad.detach() for d in (ins, pars, sts) for k, v in d.items()}, ran, {k: v.grad.dtype for d in (ins, pars, sts) for k, v in d.items()}


def accuracy(root, model, log, res, paths=None):
    """paths: [(name, setup())] to check one after the other against one float64 reference per case (setup sets the
    runtime's switches, e.g. seqc_chunked.TRANSPOSED_IO); None: the runtime as it is. Rows carry "path"."""
    paths = paths or [(None, lambda: None)]
    sm = cb.seqc_model(root, model, "auto")
    import seqc_cuda  # (on the path once seqc_model put the modules' directory there)
    cases = json.load(open(os.path.join(root, "ref", model + ".json")))
    for case in cases:
        full = dict(case["dims"], B=case["B"], T=case["T"])
        shape = lambda t, lead: [full[x] for x in lead] + [seqc_cuda.eval_size(s, full) for s in t["shape"]]  # noqa: E731

        def tensors(dt_in, dt_rest, rounded=True):
            """inputs rounded to bf16, params and initial states to fp32 (rounded=False: the reference's values)."""
            r_in, r_rest = (torch.bfloat16, torch.float32) if rounded else (torch.float64, torch.float64)
            ins = {t["name"]: torch.tensor(case["inputs"][t["name"]], dtype=torch.float64, device=DEV).reshape(shape(t, ["B", "T"])).to(r_in).to(dt_in).requires_grad_(True) for t in sm.inputs if t["name"] in case["inputs"]}
            pars = {t["name"]: torch.tensor(case["params"][t["name"]], dtype=torch.float64, device=DEV).reshape(shape(t, [])).to(r_rest).to(dt_rest).requires_grad_(True) for t in sm.params if t["name"] in case["params"]}
            sts = {t["name"]: torch.tensor(case["initialState"][t["name"]], dtype=torch.float64, device=DEV).reshape(shape(t, ["B"])).to(r_rest).to(dt_rest).requires_grad_(True) for t in sm.states if t["name"] in case["initialState"]}
            return ins, pars, sts
        cot_out = {t["name"]: torch.tensor(case["cotOutputs"][t["name"]], dtype=torch.float64, device=DEV).reshape(shape(t, ["B", "T"])) for t in sm.outputs}
        cot_fin = {t["name"]: torch.tensor(case["cotFinal"][t["name"]], dtype=torch.float64, device=DEV).reshape(shape(t, ["B"])) for t in sm.states if t["name"] in case["cotFinal"]}
        want, _, _ = grads_of(sm, *tensors(torch.float64, torch.float64), cot_out, cot_fin)
        # seqc's float64 at the unrounded values vs the interpreter's reference (the oracle's link)
        ref = {**case["grads"]["inputs"], **case["grads"]["params"], **case["grads"]["initialState"]}
        exact, _, _ = grads_of(sm, *tensors(torch.float64, torch.float64, False), cot_out, cot_fin)
        link = max(tb.rel(exact[k], torch.tensor(ref[k], dtype=torch.float64, device=DEV)) for k in exact if k in ref)
        for path, setup in paths:
            setup()
            got, ran, dts = grads_of(sm, *tensors(torch.bfloat16, torch.float32), cot_out, cot_fin)
            errs = {k: tb.rel(got[k], want[k]) for k in got}
            row = {"model": model, "case": "ref B=%d T=%d" % (case["B"], case["T"]), "path": path, "dims": case["dims"], "rel": errs, "fp64_vs_interpreter": link,
                   "chunked": ran, "grad_dtypes": {k: str(v) for k, v in dts.items()}}
            row["ok"] = ran is True and max(errs.values()) <= TOL and link <= 1e-9
            res["accuracy"].append(row)
            log("%s %s%s: bf16 grads vs float64 %s (max %.1e); fp64 vs interpreter %.1e; chunked=%s; %s" % (
                model, row["case"], "" if path is None else " [%s]" % path, " ".join("%s=%.1e" % kv for kv in errs.items()), max(errs.values()), link, ran, "ok" if row["ok"] else "FAIL"))
    # large: the benchmark's heads and K, B=2, T=2048
    B, T, H, K = 2, 2048, (tb.MAMBA2_HEADS if model == "mamba2" else tb.LA_SHAPE[2]), tb.LA_SHAPE[3]
    x = tb.la_inputs(model, B, T, H, K, 11)
    g = torch.Generator(device=DEV).manual_seed(12)
    name_out = sm.outputs[0]["name"]
    cot = {name_out: torch.randn(B, T, H, K, device=DEV, generator=g, dtype=torch.float64)}
    pn = {t["name"] for t in sm.params}

    def split(dt_in, dt_par):
        # fresh leaves every call: .to() of a tensor already in that dtype returns the tensor itself, whose .grad
        # (shared with an earlier call's detached result) a later backward would accumulate into
        ins = {n: v.detach().to(torch.bfloat16).to(dt_in).clone().requires_grad_(True) for n, v in x.items() if n not in pn}
        pars = {n: v.detach().to(dt_par).clone().requires_grad_(True) for n, v in x.items() if n in pn}
        return ins, pars, {}
    t0 = time.time()
    want, _, _ = grads_of(sm, *split(torch.float64, torch.float64), cot, {})
    t64 = time.time() - t0
    # the same values through today's fp32 path (its distance to float64, for scale)
    got32, _, _ = grads_of(sm, *split(torch.float32, torch.float32), cot, {})
    errs32 = {k: tb.rel(got32[k], want[k]) for k in got32}
    for path, setup in paths:
        setup()
        got, ran, dts = grads_of(sm, *split(torch.bfloat16, torch.float32), cot, {})
        errs = {k: tb.rel(got[k], want[k]) for k in got}
        row = {"model": model, "case": "large B=%d T=%d H=%d K=V=%d" % (B, T, H, K), "path": path, "rel": errs, "fp32_rel": errs32, "chunked": ran,
               "grad_dtypes": {k: str(v) for k, v in dts.items()}, "fp64_s": t64}
        row["ok"] = ran is True and max(errs.values()) <= TOL
        res["accuracy"].append(row)
        log("%s %s%s: bf16 grads vs float64 %s (max %.1e); fp32 path %.1e; %s" % (model, row["case"], "" if path is None else " [%s]" % path,
            " ".join("%s=%.1e" % kv for kv in errs.items()), max(errs.values()), max(errs32.values()), "ok" if row["ok"] else "FAIL"))
    tb.free_all()


def timing(args, root, model, log, res):
    B, T, H, K, row, x, cot = cb.la_case(model)
    smc = cb.seqc_model(root, model, "chunked")
    grads = {}
    for tag, xs in (("seqc_fp32", x), ("seqc_bf16", {n: (v if n in tb.LA_PARAMS else v.to(torch.bfloat16)) for n, v in x.items()})):
        one, leaves = cb.seqc_step(smc, xs, cot.to(xs[next(iter(xs))].dtype))
        one()
        torch.cuda.synchronize()
        row[tag] = tb.timed(one, 1, args.reps, args.cap_s)
        ph, ran = cb.phases(smc, one)
        row[tag]["phases_ms"], row[tag]["ran_chunked"] = ph, ran
        one()
        grads[tag] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
        log("%s: %s %.2f ms (fwd %.2f); phases %s" % (model, tag, row[tag]["ms"], row[tag]["fwd_ms"], ", ".join("%s %.2f" % kv for kv in ph.items())))
        del one, leaves
    row["bf16_vs_fp32_rel"] = {"d" + n: tb.rel(grads["seqc_bf16"][n], grads["seqc_fp32"][n]) for n in grads["seqc_fp32"]}
    fn = tb.anchor_fn(model, K)
    row["anchor_name"] = tb.ANCHOR_NAME[model]
    la = {n: (v.clone() if n in tb.LA_PARAMS else v.to(torch.bfloat16)).requires_grad_(True) for n, v in x.items()}
    cot16 = cot.to(torch.bfloat16)

    def fa():
        o = fn(la)
        return (o.float() * cot16.float()).sum(), o
    one_a = tb.step_fn(fa, list(la.values()))
    try:
        try:
            one_a()
        except RuntimeError as e:
            if model != "simple_gla":
                raise
            row["anchor_refused"] = str(e)[:300]  # fla #640: chunk_gla with g broadcast over K stands in (chunked_bench.py)
            row["anchor_name"] = "fla chunk_gla (g broadcast over K; chunk_simple_gla refused)"
            from fla.ops.gla import chunk_gla
            fn = lambda d: chunk_gla(d["q"], d["k"], d["v"], d["g"][..., None].expand_as(d["q"]).contiguous(), scale=K ** -0.5)[0]  # noqa: E731
            for v in la.values():
                v.grad = None
            one_a()
        torch.cuda.synchronize()
        row["anchor"] = tb.timed(one_a, 2, args.reps, args.cap_s)
        row["bf16_vs_anchor_rel"] = {"d" + n: tb.rel(grads["seqc_bf16"][n], la[n].grad.float()) for n in la}
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:400])
    a = row.get("anchor")
    log("%s: fp32 %.2f | bf16 %.2f (fwd %.2f) | %s %s | bf16/fp32 speed-up %.2fx | anchor/bf16 %s | bf16 vs fp32 grads %.1e" % (
        model, row["seqc_fp32"]["ms"], row["seqc_bf16"]["ms"], row["seqc_bf16"]["fwd_ms"], row["anchor_name"], "%.3f" % a["ms"] if a else row.get("anchor_error"),
        row["seqc_fp32"]["ms"] / row["seqc_bf16"]["ms"], "%.2fx" % (a["ms"] / row["seqc_bf16"]["ms"]) if a else "-", max(row["bf16_vs_fp32_rel"].values())))
    res["timing"].append(row)
    del one_a, la
    tb.free_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--models", default="simple_gla,mamba2,gla")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cap-s", type=float, default=2.0)
    ap.add_argument("--accuracy-only", action="store_true")
    ap.add_argument("--timing-only", action="store_true")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    torch.backends.cuda.matmul.allow_tf32 = False
    t_start = time.time()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "accuracy": [], "timing": []}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t_start, s), flush=True)

    def save():
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
    if not args.timing_only:
        for model in args.models.split(","):
            try:
                accuracy(root, model, log, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res["accuracy"].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:400]), "ok": False})
            save()
    if not args.accuracy_only:
        tb.patch_autotune(None, 6)
        for model in args.models.split(","):
            try:
                timing(args, root, model, log, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res["timing"].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:400])})
            save()
    if not args.timing_only:
        bad = [r for r in res["accuracy"] if not r.get("ok")]
        log("accuracy: %d checks, %d failed" % (len(res["accuracy"]), len(bad)))


if __name__ == "__main__":
    sys.exit(main())
