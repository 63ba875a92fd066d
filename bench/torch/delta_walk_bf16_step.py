"""DeltaNet's and Gated DeltaNet's bf16 fwd+bwd step with the reverse walk as today (seqc_delta_bwd.WALK_BF16 "off") and
in bf16 ("on": M, NN^T bf16; "all": X, BM too), in one process (bench/torch/delta-walk-bf16-run.sh): GPU ms under CUDA
graphs (graph_bench.gpu_only, queued behind a sleep; each value its own captured graphs: the switch is in the graphed
backward's key) and eager, the walk and prep_bwd entries an eager step launched, and the gradients vs float64 at
--accuracy's shapes (bf16 inputs, each value; max relative L2 over the inputs, as lowrank_bench's accuracy), no fla;
--profile DIR: an eager profile (lowrank_bench.profile) of each model's first shape under each value.
  python3 delta_walk_bf16_step.py MODULE_DIR --shapes 4x8192x16x128,1x32768x8x128,8x2048x16x64 --accuracy 2x1024x16x64 --out step.json"""
import argparse
import json
import os
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--models", default="deltanet,gated_deltanet")
    ap.add_argument("--shapes", default="4x8192x16x128,1x32768x8x128,8x2048x16x64")
    ap.add_argument("--accuracy", default="2x1024x16x64")
    ap.add_argument("--values", default="off,on,all")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=1e9, help="seconds: skip what starts after this")
    ap.add_argument("--profile", default="", help="a folder: an eager profile of each model's first shape under each value")
    ap.add_argument("--out", default="step.json")
    a = ap.parse_args()
    t0 = time.time()
    root = os.path.abspath(a.root)
    sys.path.insert(0, os.path.join(root, "bench"))
    sys.path.insert(0, root)
    import lowrank_bench as lb
    import graph_bench as gb
    import train_bench as tb
    import seqc_chunked_lowrank as lr
    d = lr._delta
    seen = []
    real = d.kernel_launch

    def counted(km, *x, **y):
        class Km:
            kernels = km.kernels

            @staticmethod
            def launch(rec, grid, args, stream):
                if rec["op"] in ("walk", "prep_bwd"):
                    seen.append("%s %s" % (rec["entry"].replace("seqc_delta_", ""), "x".join(map(str, grid))))
                return km.launch(rec, grid, args, stream)
        return real(Km, *x, **y)
    d.kernel_launch = counted
    values = a.values.split(",")
    out = {"steps": [], "accuracy": {}}
    for model in a.models.split(","):
        sm = lb.seqc_model(root, model, "chunked")
        for B, T, H, K in lb.parse_shapes(a.accuracy) if a.accuracy else []:
            try:
                x = lb.inputs(model, B, T, H, K, 11)
                xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
                cot = torch.randn(B, T, H, K, device=lb.DEV, generator=torch.Generator(device=lb.DEV).manual_seed(12)).to(torch.bfloat16).float()
                sm.graphs = False
                one, l64 = lb.seqc_step(sm, {k: v.double() for k, v in xb.items()}, cot.double())
                one()
                g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
                del one, l64
                for wv in values:
                    d.WALK_BF16 = wv
                    seen.clear()
                    one, lv = lb.seqc_step(sm, xb, cot)
                    one()
                    errs = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
                    label = "%s %dx%dx%dx%d bf16 WALK_BF16 %s" % (model, B, T, H, K, wv)
                    out["accuracy"][label] = {"max": max(errs.values()), "each": errs, "entries": sorted(set(seen))}
                    print("accuracy %-44s max %.2e  %s; %s" % (label, max(errs.values()), " ".join("%s=%.1e" % kv for kv in errs.items()), "; ".join(sorted(set(seen)))), flush=True)
                    del one, lv
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                out["accuracy"]["%s %dx%dx%dx%d" % (model, B, T, H, K)] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            d.WALK_BF16 = "off"
        for B, T, H, K in lb.parse_shapes(a.shapes):
            x = lb.inputs(model, B, T, H, K, 7)
            cot = torch.randn(B, T, H, K, device=lb.DEV, generator=torch.Generator(device=lb.DEV).manual_seed(8))
            xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
            for wv in values:
                if time.time() - t0 > a.budget:
                    print("budget: skipped %s (%d, %d, %d, %d) %s" % (model, B, T, H, K, wv), flush=True)
                    continue
                d.WALK_BF16 = wv
                try:
                    one, leaves = lb.seqc_step(sm, xb, cot)
                    sm.graphs = False
                    seen.clear()
                    one()
                    torch.cuda.synchronize()
                    ents = sorted(set(seen))
                    eager = gb.gpu_only(one, 3)
                    sm.graphs = True
                    one()
                    one()
                    torch.cuda.synchronize()
                    graph = gb.gpu_only(one, a.reps)
                    out["steps"].append({"model": model, "shape": [B, T, H, K], "walk_bf16": wv, "gpu_graph_ms": graph, "gpu_eager_ms": eager, "entries": ents})
                    print("%s bf16 (%d, %d, %d, %d) WALK_BF16 %-3s GPU ms graphs %.3f eager %.3f; %s" % (model, B, T, H, K, wv, graph, eager, "; ".join(ents)), flush=True)
                    if a.profile and [B, T, H, K] == list(lb.parse_shapes(a.shapes)[0]):
                        sm.graphs = False
                        top = lb.profile(one, os.path.join(a.profile, "profile-%s-bf16-walkbf16-%s-%dx%dx%dx%d.txt" % (model, wv, B, T, H, K)))[:10]
                        print("   profile (eager, CUDA self ms): %s" % ", ".join("%s %.3f" % kv for kv in top), flush=True)
                    del one, leaves
                except Exception as e:  # noqa: BLE001
                    import traceback
                    traceback.print_exc()
                    out["steps"].append({"model": model, "shape": [B, T, H, K], "walk_bf16": wv, "error": "%s: %s" % (type(e).__name__, str(e)[:300])})
                lb.drop_graphs(sm)
            d.WALK_BF16 = "off"
            del x, xb, cot
            tb.free_all()
        json.dump(out, open(a.out, "w"), indent=1)
    json.dump(out, open(a.out, "w"), indent=1)
    print("\nsummary: graphs GPU ms, WALK_BF16 %s" % " / ".join(values))
    for model in a.models.split(","):
        for B, T, H, K in lb.parse_shapes(a.shapes):
            r = {s["walk_bf16"]: s.get("gpu_graph_ms") for s in out["steps"] if s["model"] == model and s["shape"] == [B, T, H, K]}
            print("  %-15s (%d, %d, %d, %d): %s" % (model, B, T, H, K, " / ".join("%.3f" % r[v] if r.get(v) else "-" for v in values)))
    for label, r in out["accuracy"].items():
        print("  accuracy %s: %s" % (label, "%.2e" % r["max"] if "max" in r else r.get("error")))


if __name__ == "__main__":
    main()
