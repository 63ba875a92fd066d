"""Forward + backward of the matrix-state models through seqc's torch target with the chunked backward
(runtime/torch/seqc_chunked.py: the chain's CUDA plans, glue in torch ops), beside flash-linear-attention's
chunk kernels (chunk_simple_gla, chunk_gla; mamba_ssm's mamba_chunk_scan_combined for Mamba-2) and seqc's
step backward, in one process (issue 6, performance).

One step = forward, loss = sum(output * a fixed random cotangent), backward to every input (and Mamba-2's
params); CUDA-event-timed (median), the forward part and the whole step. Per step of seqc's chunked backward
also the time of each plan it runs (forward, chain:<part>) from CUDA events around each launch sequence; what
is left of the backward is the torch glue (flip, shift, permute, sums) and launch overhead. Agreement: seqc's
chunked gradients vs seqc's step gradients (both fp32, the same values: the derived adjoint vs the chain) and
vs the anchor's (bf16). Inputs as bench/torch/train_bench.py (la_inputs), shapes (B, T, H, K = V).

  python3 bench/torch/chunked_bench.py <modules dir> [--out results.json] [--models simple_gla,gla,...]
      [--step-models simple_gla,gla] [--budget S]
  python3 bench/torch/chunked_bench.py <modules dir> --warm-fla I N     (Triton precompile share I of N)
<modules dir>: bench/torch/build-chunked.ts's output; fla / mamba_ssm importable (bench/torch/chunked-run.sh).
"""

import argparse
import importlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402  (la_inputs, anchor_fn, timing helpers)

DEV = tb.DEV
MODULE = {"simple_gla": "SimpleGla", "gla": "Gla", "linear_attention": "LinearAttention", "retnet": "RetNet", "mamba2": "Mamba2"}


def seqc_model(root, model, backward):
    if root not in sys.path:
        sys.path.insert(0, root)
    mod = importlib.import_module(MODULE[model])
    return mod._model(None, "auto", backward)


def seqc_step(sm, x, cot):
    """One training step through SeqcModel.apply with `x`'s tensors as leaves."""
    leaves = {n: v.clone().requires_grad_(True) for n, v in x.items()}

    def fwd():
        ins = {t["name"]: leaves[t["name"]] for t in sm.inputs if t["name"] in leaves}
        pars = {t["name"]: leaves[t["name"]] for t in sm.params if t["name"] in leaves}
        o = sm.apply(ins, pars, {})[0]
        return (o * cot).sum(), o
    return tb.step_fn(fwd, list(leaves.values())), leaves


def phases(sm, one):
    """ms per plan key in one step (CUDA events around each SeqcModel.execute), and which backward ran."""
    orig, marks = sm.execute, []

    def wrapped(key, *a, **kw):
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        ev[0].record()
        r = orig(key, *a, **kw)
        ev[1].record()
        marks.append((key, ev))
        return r
    sm.execute = wrapped
    try:
        outs = one()
        torch.cuda.synchronize()
    finally:
        del sm.execute
    out = {}
    for key, ev in marks:
        out[key] = out.get(key, 0.0) + ev[0].elapsed_time(ev[1])
    return out, getattr(outs.grad_fn, "chunked", None) if outs is not None and outs.grad_fn is not None else None


def la_case(model):
    """The linear-attention case the bench scripts time: (B, T, H, K, row, inputs, the output's cotangent)."""
    B, T, H, K = tb.LA_SHAPE
    if model == "mamba2":
        H = tb.MAMBA2_HEADS
    row = {"model": model, "B": B, "T": T, "H": H, "K": K, "V": K}
    x = tb.la_inputs(model, B, T, H, K, 7)
    g = torch.Generator(device=DEV).manual_seed(8)
    cot = torch.randn(B, T, H, K, device=DEV, generator=g)
    return B, T, H, K, row, x, cot


def case(args, root, model, rate, log):
    B, T, H, K, row, x, cot = la_case(model)
    n_in = sum(v.numel() for n, v in x.items() if n not in tb.LA_PARAMS)
    n_out = B * T * H * K
    row["floor_io_ms_fp32"] = 4 * (2 * n_in + 2 * n_out) / (rate * 1e6)

    smc = seqc_model(root, model, "chunked")
    one_c, lc = seqc_step(smc, x, cot)
    t0 = time.time()
    one_c()
    torch.cuda.synchronize()
    row["seqc_first_call_s"] = time.time() - t0
    dims, _, _ = smc.resolve({t["name"]: x[t["name"]] for t in smc.inputs}, {}, {})
    row["seqc_forward_variant"] = smc.runner("forward", DEV).pick(dims, B, T)[0]["variant"]
    row["seqc_chunked"] = tb.timed(one_c, 1, args.reps, args.cap_s)
    row["seqc_chunked"]["peak_extra_bytes"] = tb.peak_extra(one_c)
    ph, ran = phases(smc, one_c)
    row["seqc_chunked_phases_ms"] = ph
    row["seqc_chunked_ran_chunked"] = ran
    bwd = row["seqc_chunked"]["ms"] - row["seqc_chunked"]["fwd_ms"]
    row["seqc_chunked_glue_ms"] = bwd - sum(v for k, v in ph.items() if k.startswith("chain"))
    log("%s: seqc chunked %.2f ms (fwd %.2f, %s), backward ran chunked=%s; phases %s; glue+launch %.2f ms" % (
        model, row["seqc_chunked"]["ms"], row["seqc_chunked"]["fwd_ms"], row["seqc_forward_variant"], ran,
        ", ".join("%s %.2f" % kv for kv in ph.items()), row["seqc_chunked_glue_ms"]))
    one_c()
    grads_c = {n: v.grad.detach().clone() for n, v in lc.items()}

    # the same step with this session's changes undone one at a time, and all together (the state before them), so
    # each change's share is measured in this process: the form choice's cache (seqc_cuda.PlanRunner.pick), the
    # stateless parts' wide form (seqc_chunked.STATELESS_WIDE), a per-key decay's transposed cores as torch matrix
    # products (seqc_chunked.PER_KEY_TRANSPOSED)
    import seqc_chunked
    import seqc_cuda
    cached_pick = seqc_cuda.PlanRunner.pick
    per_key = (smc.chunked or {}).get("names", {}).get("decay") == "key"

    def uncached(self, dims, B, T, choice="auto"):
        return self._pick_uncached(dims, B, T, choice)
    undo = {"pick uncached": ["pick"], "stateless thread form": ["wide"]}
    if per_key:
        undo["transposed cores as plans"] = ["plans"]
    undo["before (all undone)"] = ["pick", "wide"] + (["plans"] if per_key else [])
    row["undone"] = {}
    for label, what in undo.items():
        seqc_cuda.PlanRunner.pick = uncached if "pick" in what else cached_pick
        seqc_chunked.STATELESS_WIDE = "wide" not in what
        seqc_chunked.PER_KEY_TRANSPOSED = "plans" if "plans" in what else "matmul"
        try:
            one_c()
            torch.cuda.synchronize()
            t = tb.timed(one_c, 1, args.reps, args.cap_s)
            ph_u, _ = phases(smc, one_c)
            one_c()
            t["phases_ms"] = ph_u
            t["grads_vs_default_rel"] = {"d" + n: tb.rel(v.grad, grads_c[n]) for n, v in lc.items()}
            row["undone"][label] = t
            log("%s: %s: %.2f ms (fwd %.2f); phases %s; gradients vs default %.1e" % (
                model, label, t["ms"], t["fwd_ms"], ", ".join("%s %.2f" % kv for kv in ph_u.items()), max(t["grads_vs_default_rel"].values())))
        except Exception as e:  # noqa: BLE001
            row["undone"][label] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            log("%s: %s failed: %s" % (model, label, row["undone"][label]["error"]))
        finally:
            seqc_cuda.PlanRunner.pick = cached_pick
            seqc_chunked.STATELESS_WIDE = True
            seqc_chunked.PER_KEY_TRANSPOSED = "matmul"

    if model in args.step_models.split(","):
        sms = seqc_model(root, model, "step")
        one_s, ls = seqc_step(sms, x, cot)
        one_s()
        torch.cuda.synchronize()
        row["seqc_step"] = tb.timed(one_s, 0, 3, args.cap_s)
        row["chunked_vs_step_rel"] = {"d" + n: tb.rel(grads_c[n], ls[n].grad) for n in ls}
        log("%s: seqc step %.2f ms (fwd %.2f); chunked/step gradients %s" % (
            model, row["seqc_step"]["ms"], row["seqc_step"]["fwd_ms"], " ".join("%s=%.1e" % kv for kv in row["chunked_vs_step_rel"].items())))
        del one_s, ls
        tb.free_all()

    if model in tb.ANCHOR_NAME:
        row["anchor_name"] = tb.ANCHOR_NAME[model]
        fn = tb.anchor_fn(model, K)
        la = {n: (v.clone() if n in tb.LA_PARAMS else v.to(torch.bfloat16)).requires_grad_(True) for n, v in x.items()}
        cot16 = cot.to(torch.bfloat16)

        def fa():
            o = fn(la)
            return (o.float() * cot16.float()).sum(), o
        one_a = tb.step_fn(fa, list(la.values()))
        try:
            t0 = time.time()
            try:
                one_a()
            except RuntimeError as e:
                if model != "simple_gla":
                    raise
                # fla's chunk_simple_gla refuses its backward on Hopper with Triton < 3.7.1 (wrong results, fla #640);
                # the same model through chunk_gla, the scalar decay broadcast over the keys, stands in
                row["anchor_refused"] = str(e)[:300]
                row["anchor_name"] = "fla chunk_gla (g broadcast over K; chunk_simple_gla refused)"
                from fla.ops.gla import chunk_gla
                fn = lambda d: chunk_gla(d["q"], d["k"], d["v"], d["g"][..., None].expand_as(d["q"]).contiguous(), scale=K ** -0.5)[0]  # noqa: E731
                log("%s: %s; timing %s instead" % (model, row["anchor_refused"][:120], row["anchor_name"]))
                for v in la.values():
                    v.grad = None
                one_a()
            torch.cuda.synchronize()
            row["anchor_first_call_s"] = time.time() - t0
            row["seqc_vs_anchor_rel"] = {"d" + n: tb.rel(grads_c[n], la[n].grad.float()) for n in la}
            row["anchor"] = tb.timed(one_a, 2, args.reps, args.cap_s)
            row["anchor"]["peak_extra_bytes"] = tb.peak_extra(one_a)
            log("%s: %s %.3f ms (fwd %.3f): anchor/seqc %.3f (fwd %.3f, bwd %.3f); seqc vs anchor grads %s" % (
                model, row["anchor_name"], row["anchor"]["ms"], row["anchor"]["fwd_ms"], row["anchor"]["ms"] / row["seqc_chunked"]["ms"],
                row["anchor"]["fwd_ms"] / row["seqc_chunked"]["fwd_ms"], (row["anchor"]["ms"] - row["anchor"]["fwd_ms"]) / bwd,
                " ".join("%s=%.1e" % kv for kv in row["seqc_vs_anchor_rel"].items())))
        except Exception as e:  # noqa: BLE001
            row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:500])
            log("%s: anchor failed: %s" % (model, row["anchor_error"]))
        del one_a, la
    del one_c, lc, grads_c, x
    tb.free_all()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules")
    ap.add_argument("--out")
    ap.add_argument("--models", default="simple_gla,gla,linear_attention,retnet,mamba2")
    ap.add_argument("--step-models", default="simple_gla,gla")
    ap.add_argument("--budget", type=float, default=100.0)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cap-s", type=float, default=3.0)
    ap.add_argument("--fla-max-configs", type=int, default=6)
    ap.add_argument("--warm-fla", nargs=2, type=int)
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    models = args.models.split(",")
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.warm_fla:
        return tb.warm_fla(models, *args.warm_fla, args.fla_max_configs)
    t_start = time.time()
    tb.patch_autotune(None, args.fla_max_configs)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "shape": tb.LA_SHAPE, "rows": [], "skipped": []}
    rate = tb.copy_rate()
    res["copy_gbps"] = rate

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t_start, s), flush=True)
    log("%s, torch %s, copy %.0f GB/s" % (res["device"], res["torch"], rate))
    for model in models:
        if time.time() - t_start > args.budget:
            res["skipped"].append(model)
            log("%s: skipped (budget)" % model)
            continue
        try:
            row = case(args, root, model, rate, log)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            row = {"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:500])}
            tb.free_all()
        res["rows"].append(row)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
    print("\nmodel | seqc chunked ms (fwd / bwd) | seqc step ms | anchor ms (fwd / bwd) | anchor/seqc (fwd, bwd) | chunked vs step | vs anchor")
    for r in res["rows"]:
        if "error" in r:
            print("%s | ERROR %s" % (r["model"], r["error"][:200]))
            continue
        c, a = r["seqc_chunked"], r.get("anchor")
        print("%s | %.2f (%.2f / %.2f) | %s | %s | %s | %s | %s" % (
            r["model"], c["ms"], c["fwd_ms"], c["ms"] - c["fwd_ms"],
            "%.2f" % r["seqc_step"]["ms"] if "seqc_step" in r else "-",
            "%.3f (%.3f / %.3f)" % (a["ms"], a["fwd_ms"], a["ms"] - a["fwd_ms"]) if a else "-",
            "%.3f (%.3f, %.3f)" % (a["ms"] / c["ms"], a["fwd_ms"] / c["fwd_ms"], (a["ms"] - a["fwd_ms"]) / (c["ms"] - c["fwd_ms"])) if a else "-",
            "%.1e" % max(r["chunked_vs_step_rel"].values()) if "chunked_vs_step_rel" in r else "-",
            "%.1e" % max(r["seqc_vs_anchor_rel"].values()) if "seqc_vs_anchor_rel" in r else "-"), flush=True)
    print_undone(res)


def print_undone(res):
    print("\nmodel | seqc chunked ms now | " + " | ".join(["pick uncached", "stateless thread form", "transposed cores as plans", "before (all undone)"]) + " (ms; now/that)")
    for r in res["rows"]:
        if "undone" not in r:
            continue
        now = r["seqc_chunked"]["ms"]
        cells = []
        for k in ["pick uncached", "stateless thread form", "transposed cores as plans", "before (all undone)"]:
            u = r["undone"].get(k)
            cells.append("-" if not u else "ERR" if "error" in u else "%.2f (%.2fx)" % (u["ms"], u["ms"] / now))
        print("%s | %.2f | %s" % (r["model"], now, " | ".join(cells)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
