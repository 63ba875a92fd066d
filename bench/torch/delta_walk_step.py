"""DeltaNet's bf16 fwd+bwd step with the delta backward's walks as today (seqc_delta_bwd.WALK "default": the 3xTF32
twin, the fp32 split walk for few rows) and the wider twins (WALK "wide" / "wide2" (two sets of buffers where the module
has them): delta-walk-mma.ts DELTA_WALK_WIDE_CONFIGS),
in one process (bench/torch/delta-walk-run.sh): GPU ms under CUDA graphs and eager (graph_bench.gpu_only), the walk
entries one eager step launched, the backward kernels' eager profile (CUDA self ms), and the gradients vs float64 at
--accuracy's shapes (bf16 and fp32 inputs, each WALK), no fla (its numbers: RESULTS "D2").
Call B14 ran it with that call's runtime, whose WALK values were "default" (the rule before), "wide" and "wide2"; today's
seqc_delta_bwd.WALK takes "old" (the rule before), "default" (the 64-column walk at K = 128 for many rows) and "tf32":
pass --walks old,default,tf32.
  python3 delta_walk_step.py MODULE_DIR --shapes 4x8192x16x128,1x32768x8x128,8x2048x16x64 --accuracy 2x1024x16x64,2x1024x8x128,8x1024x16x128 --out step.json"""
import argparse
import json
import os
import sys

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--shapes", default="4x8192x16x128,1x32768x8x128,8x2048x16x64")
    ap.add_argument("--accuracy", default="2x1024x16x64,2x1024x8x128,8x1024x16x128")
    ap.add_argument("--walks", default="default,wide,wide2")
    ap.add_argument("--profile", default="")
    ap.add_argument("--out", default="step.json")
    a = ap.parse_args()
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
                if rec["op"] == "walk":
                    seen.append("%s grid %s" % (rec["entry"], tuple(grid)))
                return km.launch(rec, grid, args, stream)
        return real(Km, *x, **y)
    d.kernel_launch = counted
    walks = a.walks.split(",")
    out = {"steps": [], "accuracy": {}}
    sm = lb.seqc_model(root, "deltanet", "chunked")
    for B, T, H, K in lb.parse_shapes(a.shapes):
        x = lb.inputs("deltanet", B, T, H, K, 7)
        cot = torch.randn(B, T, H, K, device=lb.DEV, generator=torch.Generator(device=lb.DEV).manual_seed(8))
        xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
        for wk in walks:
            d.WALK = wk
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
                graph = gb.gpu_only(one, 5)
                r = {"shape": [B, T, H, K], "walk": wk, "gpu_graph_ms": graph, "gpu_eager_ms": eager, "walk_entries": ents}
                if a.profile:
                    sm.graphs = False
                    r["profile_top"] = lb.profile(one, os.path.join(a.profile, "profile-deltanet-bf16-walk-%s-%dx%dx%dx%d.txt" % (wk, B, T, H, K)))[:12]
                    sm.graphs = True
                out["steps"].append(r)
                print("deltanet bf16 (%d, %d, %d, %d) walk %-8s GPU ms graphs %.3f eager %.3f; walks %s" % (B, T, H, K, wk, graph, eager, "; ".join(ents)), flush=True)
                if a.profile:
                    print("   profile (eager, CUDA self ms): %s" % ", ".join("%s %.3f" % kv for kv in r["profile_top"][:10]), flush=True)
                del one, leaves
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                out["steps"].append({"shape": [B, T, H, K], "walk": wk, "error": "%s: %s" % (type(e).__name__, str(e)[:300])})
            lb.drop_graphs(sm)
        del x, xb, cot
        tb.free_all()
    d.WALK = "default"
    for B, T, H, K in lb.parse_shapes(a.accuracy) if a.accuracy else []:
        try:
            x = lb.inputs("deltanet", B, T, H, K, 11)
            xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
            cot = torch.randn(B, T, H, K, device=lb.DEV, generator=torch.Generator(device=lb.DEV).manual_seed(12)).to(torch.bfloat16).float()
            sm.graphs = False
            one, l64 = lb.seqc_step(sm, {k: v.double() for k, v in xb.items()}, cot.double())
            one()
            g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
            del one, l64
            for dt in (torch.bfloat16, torch.float32):
                for wk in walks:
                    d.WALK = wk
                    seen.clear()
                    one, lv = lb.seqc_step(sm, {k: v.to(dt) for k, v in xb.items()}, cot)
                    one()
                    errs = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
                    label = "%dx%dx%dx%d %s walk %s" % (B, T, H, K, "bf16" if dt == torch.bfloat16 else "fp32", wk)
                    out["accuracy"][label] = {"max": max(errs.values()), "each": errs, "walk_entries": sorted(set(seen))}
                    print("accuracy deltanet (%d, %d, %d, %d) %-24s max %.2e  %s; walks %s" % (B, T, H, K, label, max(errs.values()), " ".join("%s=%.1e" % kv for kv in errs.items()), "; ".join(sorted(set(seen)))), flush=True)
                    del one, lv
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            out["accuracy"]["%dx%dx%dx%d" % (B, T, H, K)] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
        d.WALK = "default"
        sm.graphs = True
    json.dump(out, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
