"""Issue 6 at the chunked-form issue's other two shapes: each model's bf16 fwd+bwd through seqc's torch target beside
its anchor (fla's chunk kernels, mamba_ssm's mamba_chunk_scan_combined) in one process, at (B, T, H, K = V) =
(4, 8192, 16, 128) and (1, 32768, 8, 128) (Mamba-2: 32 heads, P = N = 64).

Per case: the IO floor (the step's bf16 tensors once each at the copy rate measured here: inputs read by the forward,
the output written, inputs and the output's cotangent read by the backward, the gradients written), seqc's first call
(form trials, graph-free), one eager step's GPU time (graph_bench.gpu_only: the step queued behind a sleep, median), its
peak memory beyond the inputs, the plans it ran (chunked_bench.phases) and, for the delta-rule family, the backward's
sections (seqc_chunked_lowrank.LR_TIMES) and the same step with the K = 128 kernels of this change switched off
(LR_FUSED / LR_FUSED_PASS "torch": the path before it); the anchor's step likewise. A case is skipped (and said so) once
the call's --budget is spent. Accuracy at a reduced size (--accuracy BxT at each model's heads and K): bf16 gradients vs
seqc's float64 step at the bf16-rounded values, seqc and the anchor.

  python3 bench/torch/shapes_bench.py <modules dir> [--cases model:BxTxHxK,...] [--out r.json] [--budget S] [--accuracy 1x1024]
  python3 bench/torch/shapes_bench.py <modules dir> --warm-fla I N     (Triton precompile share I of N)

--lr KEY=VALUE (repeatable) sets a seqc_chunked_lowrank switch for the whole run (the step timed as "seqc"); --old
KEY=VALUE (repeatable) replaces the "before" step's switches (default LR_FUSED / LR_FUSED_PASS "torch"), e.g. the
untimed K = 128 wy kernels and value-column walks against the defaults in one process:
  --lr LR_WY_K128=on --lr LR_PASS_COLS=32 --old LR_WY_K128=off --old LR_PASS_COLS=0
--profile DIR: per case one eager step of the defaults and of each --variant under the torch profiler (kernels and aten ops
by GPU time, DIR/profile-<model>-<shape>-<name>.txt).
--variant NAME:KEY=VALUE[,KEY=VALUE...] (repeatable): after the "seqc" step (the module's defaults), the same step again with
these seqc_chunked switches (e.g. GLA's wide rows chunk entries at K = 128: --variant wide:ROWS_CHUNK_WIDE=True), timed the
same way, its gradients against the first's; in the accuracy step too.
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
import graph_bench as gb  # noqa: E402
import lowrank_bench as lb  # noqa: E402

DEV = tb.DEV
LOWRANK = ("deltanet", "gated_deltanet", "rwkv7")
S2, S3 = "4x8192x16x128", "1x32768x8x128"
M2, M3 = "4x8192x32x64", "1x32768x32x64"
CASES = ",".join(["simple_gla:" + S2, "simple_gla:" + S3, "mamba2:" + M2, "mamba2:" + M3, "gla:" + S2, "gla:" + S3,
                  "deltanet:" + S2, "deltanet:" + S3, "gated_deltanet:" + S2, "gated_deltanet:" + S3, "rwkv7:" + S2, "rwkv7:" + S3])
ANCHOR = dict(tb.ANCHOR_NAME, **lb.ANCHOR)
ACC_VARIANTS = []  # (main: --variant's items, for accuracy())
# the path before this change at K = 128 (the delta-rule family's chunk transitions and walks by torch ops there)
OLD = {"LR_FUSED": "torch", "LR_FUSED_PASS": "torch"}


def inputs(model, B, T, H, K, seed):
    return lb.inputs(model, B, T, H, K, seed) if model in LOWRANK else tb.la_inputs(model, B, T, H, K, seed)


def anchor_fn(model, K):
    return lb.anchor_fn(model, K) if model in LOWRANK else tb.anchor_fn(model, K)


def model_of(root, model):
    return lb.seqc_model(root, model, "chunked") if model in LOWRANK else cb.seqc_model(root, model, "chunked")


def step(sm, x, cot):
    leaves = {n: v.clone().requires_grad_(True) for n, v in x.items()}

    def fwd():
        ins = {t["name"]: leaves[t["name"]] for t in sm.inputs if t["name"] in leaves}
        pars = {t["name"]: leaves[t["name"]] for t in sm.params if t["name"] in leaves}
        o = sm.apply(ins, pars, {})[0]
        return (o.float() * cot).sum(), o
    return tb.step_fn(fwd, list(leaves.values())), leaves


def anchor_step(model, K, x, cot):
    fn = anchor_fn(model, K)
    la = {n: v.clone().requires_grad_(True) for n, v in x.items()}

    def fa():
        o = fn(la)
        return (o.float() * cot).sum(), o
    return tb.step_fn(fa, list(la.values())), la


def low(x):
    return {n: (v if n in tb.LA_PARAMS else v.to(torch.bfloat16)) for n, v in x.items()}


def floor_ms(x, out_numel, rate):
    """The step's bf16 tensors once each (params float32): forward reads the inputs and writes the output; backward
    reads the inputs and the output's cotangent and writes the gradients."""
    n_in = sum(v.numel() * (4 if n in tb.LA_PARAMS else 2) for n, v in x.items())
    return (3 * n_in + 2 * 2 * out_numel) / (rate * 1e6)


def call_s(fn):
    """Wall seconds of one call of fn, to the end of its GPU work."""
    t0 = time.time()
    fn()
    torch.cuda.synchronize()
    return time.time() - t0


def timed_gpu(one, first_s):
    """gpu_only with fewer reps for long steps."""
    reps = 5 if first_s < 0.5 else (3 if first_s < 2 else 1)
    return gb.gpu_only(one, reps)


def set_lr(sets):
    import seqc_chunked_lowrank as lr
    old = {k: getattr(lr, k) for k in sets}
    for k, v in sets.items():
        setattr(lr, k, v)
    return old


def set_sc(sets):
    import seqc_chunked as sc
    old = {k: getattr(sc, k) for k in sets}
    for k, v in sets.items():
        setattr(sc, k, v)
    return old


def parse_variants(items):
    """--variant NAME:KEY=VALUE,KEY=VALUE -> [(name, {KEY: value})] (True / False / ints / strings)."""
    conv = lambda v: True if v == "True" else False if v == "False" else int(v) if v.lstrip("-").isdigit() else v  # noqa: E731
    out = []
    for it in items:
        name, sets = it.split(":", 1)
        out.append((name, {k: conv(v) for k, v in (x.split("=", 1) for x in sets.split(",") if x)}))
    return out


def profile_step(one, path):
    """One eager step of one() under the torch profiler (CUDA activity): its GPU kernels by self time and the aten ops
    (CUDA time incl. children), written to path as mixed_bench.profile's tables (no stacks)."""
    from torch.profiler import profile as prof, ProfilerActivity
    one()
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        one()
        torch.cuda.synchronize()
    DT = torch.autograd.DeviceType.CUDA
    tot = lambda e: e.self_device_time_total if hasattr(e, "self_device_time_total") else e.self_cuda_time_total  # noqa: E731
    avg = p.key_averages()
    rows = sorted(((e.key[:120], e.count, tot(e) / 1e3) for e in avg if getattr(e, "device_type", None) == DT), key=lambda r: -r[2])
    ops = sorted(((e.key[:80], e.count, getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0)) / 1e3) for e in avg
                  if getattr(e, "device_type", None) != DT and e.key.startswith("aten::")), key=lambda r: -r[2])
    with open(path, "w") as f:
        f.write("GPU kernels (self time), total %.3f ms\n" % sum(r[2] for r in rows))
        for name, n, ms in rows[:60]:
            f.write("%9.3f ms  x%-4d %s\n" % (ms, n, name))
        f.write("\naten ops (CUDA time incl. children)\n")
        for name, n, ms in ops[:30]:
            f.write("%9.3f ms  x%-4d %s\n" % (ms, n, name))


def variants(args, one, leaves, grads, row, model, shape, log):
    """The step again under each --variant's seqc_chunked switches: GPU time, gradients vs the defaults' (grads)."""
    for name, sets in parse_variants(args.variant):
        old = set_sc(sets)
        try:
            call_s(one)
            v = {"switches": sets, "gpu_ms": timed_gpu(one, call_s(one))}
            one()
            v["vs_seqc_rel"] = {"d" + n: tb.rel(x.grad.float(), grads[n]) for n, x in leaves.items()}
            row.setdefault("variants", {})[name] = v
            if args.profile:
                profile_step(one, os.path.join(args.profile, "profile-%s-%s-%s.txt" % (model, "x".join(str(d) for d in shape), name)))
            log("%s %s: variant %s (%s) %.3f ms GPU (defaults %.3f: x%.3f); grads vs the defaults' max %.1e" % (
                model, shape, name, sets, v["gpu_ms"], row["seqc_gpu_ms"], row["seqc_gpu_ms"] / v["gpu_ms"], max(v["vs_seqc_rel"].values())))
        except Exception as e:  # noqa: BLE001
            row.setdefault("variants", {})[name] = {"switches": sets, "error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            log("%s %s: variant %s failed: %s" % (model, shape, name, row["variants"][name]["error"]))
        finally:
            set_sc(old)


def case(args, root, model, shape, rate, log):
    B, T, H, K = shape
    row = {"model": model, "B": B, "T": T, "H": H, "K": K}
    x = inputs(model, B, T, H, K, 7)
    cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(8)).to(torch.bfloat16).float()
    x16 = low(x)
    del x
    row["floor_ms"] = floor_ms(x16, B * T * H * K, rate)
    sm = model_of(root, model)
    sm.graphs = False
    one, leaves = step(sm, x16, cot)
    row["first_call_s"] = call_s(one)
    row["second_call_s"] = call_s(one)
    row["seqc_gpu_ms"] = timed_gpu(one, row["second_call_s"])
    row["seqc_peak_extra_gb"] = tb.peak_extra(one) / 1e9
    ph, ran = cb.phases(sm, one)
    row["phases_ms"] = {k: round(v, 3) for k, v in ph.items()}
    dims, _, _ = sm.resolve({t["name"]: x16[t["name"]] for t in sm.inputs}, {}, {})
    try:
        row["forward_variant"] = sm.runner("forward", DEV).pick(dims, B, T, "auto", "bf16")[0]["variant"]
    except Exception as e:  # noqa: BLE001
        row["forward_variant"] = "?: %s" % str(e)[:80]
    if model in LOWRANK:
        row["sections_ms"] = {k: round(v, 3) for k, v in lb.sections(one).items()}
    one()
    grads = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
    if args.profile:
        profile_step(one, os.path.join(args.profile, "profile-%s-%s-defaults.txt" % (model, "x".join(str(d) for d in shape))))
    variants(args, one, leaves, grads, row, model, shape, log)
    log("%s %s: seqc %.3f ms GPU (first call %.1f s, second %.2f s), peak extra %.2f GB, fwd %s; phases %s%s" % (
        model, shape, row["seqc_gpu_ms"], row["first_call_s"], row["second_call_s"], row["seqc_peak_extra_gb"], row["forward_variant"],
        ", ".join("%s %.2f" % kv for kv in row["phases_ms"].items()),
        "; sections " + ", ".join("%s %.2f" % kv for kv in row["sections_ms"].items()) if "sections_ms" in row else ""))
    if model in LOWRANK and K == 128 and not args.no_old:
        old = set_lr(OLD)
        try:
            call_s(one)
            row["old_gpu_ms"] = timed_gpu(one, call_s(one))
            row["old_sections_ms"] = {k: round(v, 3) for k, v in lb.sections(one).items()}
            one()
            row["new_vs_old_rel"] = {"d" + n: tb.rel(grads[n], v.grad.float()) for n, v in leaves.items()}
            log("%s %s: before (%s) %.3f ms GPU; sections %s; new vs old grads max %.1e" % (
                model, shape, ", ".join("%s %s" % kv for kv in OLD.items()), row["old_gpu_ms"], ", ".join("%s %.2f" % kv for kv in row["old_sections_ms"].items()), max(row["new_vs_old_rel"].values())))
        except Exception as e:  # noqa: BLE001
            row["old_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
            log("%s %s: old path failed: %s" % (model, shape, row["old_error"]))
        finally:
            set_lr(old)
    del one, leaves
    sm._seqc_graphs = None
    sm._seqc_pool = None
    tb.free_all()
    row["anchor_name"] = ANCHOR[model]
    try:
        one_a, la = anchor_step(model, K, x16, cot)
        row["anchor_first_call_s"] = call_s(one_a)
        row["anchor_gpu_ms"] = timed_gpu(one_a, call_s(one_a))
        row["anchor_peak_extra_gb"] = tb.peak_extra(one_a) / 1e9
        one_a()
        row["seqc_vs_anchor_rel"] = {"d" + n: tb.rel(grads[n], la[n].grad.float()) for n in la}
        row["anchor_over_seqc"] = row["anchor_gpu_ms"] / row["seqc_gpu_ms"]
        log("%s %s: %s %.3f ms GPU (first call %.1f s), peak extra %.2f GB: anchor / seqc %.3f; floor %.3f ms (anchor %.1fx, seqc %.1fx); seqc vs anchor grads max %.1e" % (
            model, shape, row["anchor_name"], row["anchor_gpu_ms"], row["anchor_first_call_s"], row["anchor_peak_extra_gb"], row["anchor_over_seqc"], row["floor_ms"],
            row["anchor_gpu_ms"] / row["floor_ms"], row["seqc_gpu_ms"] / row["floor_ms"], max(row["seqc_vs_anchor_rel"].values())))
        del one_a, la
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
        log("%s %s: anchor failed: %s" % (model, shape, row["anchor_error"]))
    del grads, x16
    tb.free_all()
    return row


def accuracy(root, model, B, T, H, K, log):
    """bf16 gradients (seqc, anchor) vs seqc's float64 step at the bf16-rounded values: relative error per gradient."""
    x = {n: v.to(torch.bfloat16).to(v.dtype) if n not in tb.LA_PARAMS else v for n, v in inputs(model, B, T, H, K, 11).items()}
    cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(12)).to(torch.bfloat16).float()
    sm = model_of(root, model)
    sm.graphs = False
    out = {"model": model, "B": B, "T": T, "H": H, "K": K}
    one, l64 = step(sm, {n: v.double() for n, v in x.items()}, cot.double())
    one()
    g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
    del one, l64
    one, lv = step(sm, low(x), cot)
    one()
    out["seqc bf16"] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
    for name, sets in parse_variants(ACC_VARIANTS):
        old = set_sc(sets)
        try:
            one()
            out["seqc bf16, " + name] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
        except Exception as e:  # noqa: BLE001
            out["seqc bf16, " + name] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
        finally:
            set_sc(old)
    if model in LOWRANK and K == 128:
        old = set_lr(OLD)
        try:
            one()
            out["seqc bf16, before"] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
        finally:
            set_lr(old)
    del one, lv
    try:
        one, la = anchor_step(model, K, low(x), cot)
        one()
        out["anchor bf16"] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in la.items()}
        del one, la
    except Exception as e:  # noqa: BLE001
        out["anchor bf16"] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
    for label, d in out.items():
        if isinstance(d, dict):
            log("accuracy %s (%d, %d, %d, %d): %-18s %s" % (model, B, T, H, K, label, "ERR " + d["error"] if "error" in d else "max %.1e  %s" % (
                max(d.values()), " ".join("%s=%.1e" % kv for kv in d.items()))))
    tb.free_all()
    return out


def parse_cases(s):
    out = []
    for c in s.split(","):
        if c:
            m, sh = c.split(":")
            out.append((m, tuple(int(v) for v in sh.split("x"))))
    return out


def warm_fla(cases, i, n, max_configs):
    os.environ["FLA_CACHE_RESULTS"] = "0"
    tb.patch_autotune((i, n), max_configs)
    seen = set()
    for model, (B, T, H, K) in cases:
        for b in (2, 1):  # Triton specialises ints equal to 1
            if (model, K, b) in seen:
                continue
            seen.add((model, K, b))
            try:
                x = low(inputs(model, b, 1024, H, K, 3))
                la = {k: v.requires_grad_(True) for k, v in x.items()}
                anchor_fn(model, K)(la).float().sum().backward()
                torch.cuda.synchronize()
                print("warm %d/%d: %s B=%d K=%d ok" % (i, n, model, b, K), flush=True)
            except Exception as e:  # noqa: BLE001
                print("warm %d/%d: %s K=%d: %s: %s" % (i, n, model, K, type(e).__name__, str(e)[:300]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules")
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--out")
    ap.add_argument("--budget", type=float, default=150.0, help="seconds: cases not started by then are skipped")
    ap.add_argument("--accuracy", default="", help="BxT: bf16 vs float64 at each model's (H, K) of its first case")
    ap.add_argument("--accuracy-only", action="store_true")
    ap.add_argument("--no-old", action="store_true")
    ap.add_argument("--fla-max-configs", type=int, default=4)
    ap.add_argument("--warm-fla", nargs=2, type=int)
    ap.add_argument("--lr", action="append", default=[], help="KEY=VALUE: a seqc_chunked_lowrank switch for the whole run")
    ap.add_argument("--old", action="append", default=[], help="KEY=VALUE: the 'before' step's switches (replace the default OLD)")
    ap.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE[,KEY=VALUE]: the step again with these seqc_chunked switches")
    ap.add_argument("--profile", default="", help="DIR: one eager step of the defaults and of each --variant under the torch profiler, per case")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    if args.variant and root not in sys.path:
        sys.path.insert(0, root)  # the modules' runtime (seqc_chunked) beside them
    ACC_VARIANTS[:] = args.variant
    kv = lambda items: {k: int(v) if v.lstrip("-").isdigit() else v for k, v in (x.split("=", 1) for x in items)}  # noqa: E731
    if args.lr or args.old:
        if root not in sys.path:
            sys.path.insert(0, root)  # the modules' runtime (seqc_chunked_lowrank) beside them, as the loaders add it
        set_lr(kv(args.lr))
        if args.old:
            OLD.clear()
            OLD.update(kv(args.old))
    cases = parse_cases(args.cases)
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.warm_fla:
        return warm_fla(cases, *args.warm_fla, args.fla_max_configs)
    t_start = time.time()
    tb.patch_autotune(None, args.fla_max_configs)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": [], "skipped": [], "accuracy": [], "lr": kv(args.lr), "old": dict(OLD)}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t_start, s), flush=True)

    def save():
        if args.out:
            json.dump(res, open(args.out, "w"), indent=1)
    if args.accuracy:
        aB, aT = (int(v) for v in args.accuracy.split("x"))
        done = set()
        for model, (B, T, H, K) in cases:
            if model in done:
                continue
            done.add(model)
            try:
                res["accuracy"].append(accuracy(root, model, aB, aT, H, K, log))
            except Exception as e:  # noqa: BLE001
                res["accuracy"].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:300])})
                log("accuracy %s failed: %s" % (model, res["accuracy"][-1]["error"]))
            save()
        if args.accuracy_only:
            return
    rate = tb.copy_rate()
    res["copy_gbps"] = rate
    log("%s, torch %s, copy %.0f GB/s" % (res["device"], res["torch"], rate))
    for model, shape in cases:
        if time.time() - t_start > args.budget:
            res["skipped"].append({"model": model, "shape": shape, "why": "the call's budget (%.0f s) was spent" % args.budget})
            log("%s %s: skipped (budget)" % (model, shape))
            continue
        try:
            res["rows"].append(case(args, root, model, shape, rate, log))
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res["rows"].append({"model": model, "shape": shape, "error": "%s: %s" % (type(e).__name__, str(e)[:400])})
            log("%s %s failed: %s" % (model, shape, res["rows"][-1]["error"]))
            tb.free_all()
        save()
    for r in res["rows"]:
        for name, v in r.get("variants", {}).items():
            print("%s %dx%dx%dx%d variant %s: %s" % (r["model"], r["B"], r["T"], r["H"], r["K"], name, "ERROR " + v["error"][:100] if "error" in v else "%.3f ms (defaults %.3f), anchor / variant %s, grads vs defaults %.1e" % (
                v["gpu_ms"], r["seqc_gpu_ms"], "%.3f" % (r["anchor_gpu_ms"] / v["gpu_ms"]) if "anchor_gpu_ms" in r else "-", max(v["vs_seqc_rel"].values()))))
    print("\ncase | floor ms | seqc GPU ms | before ms | anchor ms | anchor/seqc | seqc/floor | peak GB seqc / anchor")
    for r in res["rows"]:
        if "error" in r:
            print("%s %s | ERROR %s" % (r["model"], r.get("shape"), r["error"][:100]))
            continue
        print("%s %dx%dx%dx%d | %.3f | %.3f | %s | %s | %s | %.1f | %.1f / %s" % (
            r["model"], r["B"], r["T"], r["H"], r["K"], r["floor_ms"], r["seqc_gpu_ms"], "%.3f" % r["old_gpu_ms"] if "old_gpu_ms" in r else "-",
            "%.3f" % r["anchor_gpu_ms"] if "anchor_gpu_ms" in r else "ERR", "%.3f" % r["anchor_over_seqc"] if "anchor_over_seqc" in r else "-",
            r["seqc_gpu_ms"] / r["floor_ms"], r["seqc_peak_extra_gb"], "%.1f" % r["anchor_peak_extra_gb"] if "anchor_peak_extra_gb" in r else "-"))
    for s in res["skipped"]:
        print("%s %s | skipped: %s" % (s["model"], s["shape"], s["why"]))
    save()


if __name__ == "__main__":
    main()
