"""GLA's bf16 fwd+bwd with the rows chunk kernel's segments (seqc_chunked.ROWS_CHUNK_SEGMENTS) beside the defaults and fla
chunk_gla, one process: per case the defaults, then each --variant (seqc_chunked switches), each timed eager (GPU only:
graph_bench.gpu_only, the step queued behind a sleep, median) and under CUDA graphs (sm.graphs True, captured, then the
median of CUDA-event-timed steps), gradients vs the defaults'; fla's step eager GPU only; an eager profile of the
defaults and of --profile-variant at the first case (kernels by GPU time); accuracy at --accuracy BxT (bf16 vs seqc's
float64 step, every variant and fla: shapes_bench.accuracy).

  python3 bench/torch/gla_seg_bench.py <modules dir> --cases 1x32768x8x128,4x8192x16x128 --variant NAME:KEY=VALUE,... \
      [--accuracy 1x1024] [--profile-variant NAME] [--profile-case BxTxHxK] [--out r.json] [--outdir DIR] [--no-fla]

--accuracy BxT takes H and K from the first case; BxTxHxK gives them. --profile-case: the case profiled (default the first).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_bench as sb  # noqa: E402
import train_bench as tb  # noqa: E402


def graphed_ms(sm, one, reps=10, cap_s=4.0):
    sm.graphs = True
    for _ in range(4):  # (the captures before timing)
        one()
    torch.cuda.synchronize()
    r = tb.timed(one, 1, reps, cap_s)
    sm.graphs = False
    return r["ms"], r["all_ms"]


def profile(one, path, log, label):
    from torch.profiler import ProfilerActivity, profile as prof
    one()
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CUDA]) as p:
        one()
        torch.cuda.synchronize()
    tab = p.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=90)
    if path:
        open(path, "w").write(tab)
    tot = sum(e.device_time_total for e in p.key_averages()) / 1e3
    log("profile %s: kernels' total %.3f ms (%s)" % (label, tot, path))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--cases", default="1x32768x8x128,4x8192x16x128")
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--accuracy", default="")
    ap.add_argument("--profile-variant", default="")
    ap.add_argument("--profile-case", default="", help="the case profiled (BxTxHxK; default the first)")
    ap.add_argument("--profile-graphs", action="store_true", help="also profile the graphed step of the profiled ways (CUDA graphs' kernels as CUPTI reports them)")
    ap.add_argument("--out")
    ap.add_argument("--outdir", default="")
    ap.add_argument("--no-fla", action="store_true", help="no fla step: neither timed nor in the accuracy (its Triton compile took 44 s in call A3)")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    sys.path.insert(0, root)
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": [], "accuracy": None}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)

    def save():
        if args.out:
            json.dump(res, open(args.out, "w"), indent=1)
    tb.patch_autotune(None, 4)
    rate = tb.copy_rate()
    res["copy_gbps"] = rate
    log("%s, torch %s, copy %.0f GB/s" % (res["device"], res["torch"], rate))
    variants = sb.parse_variants(args.variant)
    for ci, cs in enumerate(c for c in args.cases.split(",") if c):
        B, T, H, K = (int(v) for v in cs.split("x"))
        row = {"B": B, "T": T, "H": H, "K": K, "ways": {}}
        x16 = sb.low(sb.inputs("gla", B, T, H, K, 7))
        cot = torch.randn(B, T, H, K, device=tb.DEV, generator=torch.Generator(device=tb.DEV).manual_seed(8)).to(torch.bfloat16).float()
        row["floor_ms"] = sb.floor_ms(x16, B * T * H * K, rate)
        log("gla %s: floor %.3f ms" % (cs, row["floor_ms"]))
        sm = sb.model_of(root, "gla")
        sm.graphs = False
        one, leaves = sb.step(sm, x16, cot)
        base = None
        for name, sets in [("defaults", {})] + variants:
            old = sb.set_sc(sets)
            try:
                first = sb.call_s(one)
                w = {"switches": sets, "gpu_ms": sb.timed_gpu(one, sb.call_s(one))}
                w["graphs_ms"], w["graphs_all_ms"] = graphed_ms(sm, one)
                one()
                g = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
                if base is None:
                    base = g
                else:
                    w["vs_defaults_rel"] = {"d" + n: tb.rel(g[n], base[n]) for n in g}
                row["ways"][name] = w
                log("gla %s: %-10s eager GPU %.3f ms, graphs %.3f ms (first call %.2f s)%s" % (
                    cs, name, w["gpu_ms"], w["graphs_ms"], first, "" if base is g else "; grads vs defaults max %.1e" % max(w["vs_defaults_rel"].values())))
                if (cs == args.profile_case if args.profile_case else ci == 0) and args.outdir and name in ("defaults", args.profile_variant):
                    profile(one, os.path.join(args.outdir, "profile-gla-%s-%s.txt" % (name, cs)), log, name)
                    if args.profile_graphs:
                        sm.graphs = True
                        profile(one, os.path.join(args.outdir, "profile-gla-%s-graphs-%s.txt" % (name, cs)), log, name + " graphs")
                        sm.graphs = False
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                row["ways"][name] = {"switches": sets, "error": "%s: %s" % (type(e).__name__, str(e)[:300])}
                log("gla %s: %s failed: %s" % (cs, name, row["ways"][name]["error"]))
            finally:
                sb.set_sc(old)
                sm.graphs = False
        del one, leaves
        sm._seqc_graphs = None
        sm._seqc_pool = None
        tb.free_all()
        try:
            if args.no_fla:
                raise RuntimeError("--no-fla")
            one_a, la = sb.anchor_step("gla", K, x16, cot)
            row["fla_first_s"] = sb.call_s(one_a)
            row["fla_gpu_ms"] = sb.timed_gpu(one_a, sb.call_s(one_a))
            one_a()
            row["seqc_vs_fla_rel"] = {"d" + n: tb.rel(base[n], la[n].grad.float()) for n in la}
            log("gla %s: fla chunk_gla eager GPU %.3f ms (first call %.1f s)" % (cs, row["fla_gpu_ms"], row["fla_first_s"]))
            del one_a, la
        except Exception as e:  # noqa: BLE001
            row["fla_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
            log("gla %s: fla failed: %s" % (cs, row["fla_error"]))
        del x16
        tb.free_all()
        res["rows"].append(row)
        save()
    if args.accuracy:
        acc = [int(v) for v in args.accuracy.split("x")]
        aB, aT = acc[:2]
        sb.ACC_VARIANTS[:] = args.variant
        if args.no_fla:
            def no_fla(*a, **k):
                raise RuntimeError("--no-fla")
            sb.anchor_step = no_fla
        B, T, H, K = (int(v) for v in args.cases.split(",")[0].split("x"))
        if len(acc) == 4:
            H, K = acc[2:]
        try:
            res["accuracy"] = sb.accuracy(root, "gla", aB, aT, H, K, log)
        except Exception as e:  # noqa: BLE001
            res["accuracy"] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            log("accuracy failed: %s" % res["accuracy"]["error"])
        save()
    print("\nshape | floor | way | eager GPU ms | graphs ms | fla eager GPU ms | fla / graphs | grads vs defaults")
    for r in res["rows"]:
        for name, w in r["ways"].items():
            if "error" in w:
                print("%dx%dx%dx%d | %s | ERROR %s" % (r["B"], r["T"], r["H"], r["K"], name, w["error"][:120]))
                continue
            fla = r.get("fla_gpu_ms")
            print("%dx%dx%dx%d | %.3f | %s | %.3f | %.3f | %s | %s | %s" % (r["B"], r["T"], r["H"], r["K"], r["floor_ms"], name, w["gpu_ms"], w["graphs_ms"],
                  "%.3f" % fla if fla else "-", "%.3f" % (fla / w["graphs_ms"]) if fla else "-", "%.1e" % max(w["vs_defaults_rel"].values()) if "vs_defaults_rel" in w else "-"))
    if res["accuracy"] and "error" not in res["accuracy"]:
        for label, d in res["accuracy"].items():
            if isinstance(d, dict):
                print("accuracy %s: %s" % (label, "ERR " + d["error"][:100] if "error" in d else "max %.1e" % max(d.values())))


if __name__ == "__main__":
    main()
