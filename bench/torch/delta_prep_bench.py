"""The delta backward's prep kernels (prep_fwd / prep_bwd, TF32 twins) before and after a change, two module builds in
one process (session 14 task C: the staged twins, compiler/backends/cuda/delta-prep-staged.ts; the per-key twins'
batched loads):
  - kernels alone: each of --models' deltaBwd module (DeltaNet: decay "none", Gated DeltaNet: "scalar", RWKV-7: "key")
    launched through
    seqc_delta_bwd.kernel_launch (math "tf32", bf16 inputs) at each shape, CUDA events over --kreps launches, median of
    5 such means; before / after interleaved; their floors (bytes at the copy rate measured here); the outputs after
    vs before (max |diff| / max |before| per output);
  - the --step-models' bf16 step (forward + backward; default DeltaNet) under CUDA graphs and eager, before / after
    interleaved, median of the reps, at --step-shapes (default --shapes); an eager profile of each (the prep kernels'
    GPU ms);
  - gradients vs float64 at (2, 1024) (H, K of the first shape) for --models, bf16 defaults.
  python3 delta_prep_bench.py BEFORE AFTER [--models deltanet,gated_deltanet] [--shapes 8x2048x16x64,4x8192x16x128]
      [--step-models deltanet] [--step-shapes ...] [--parts kernels,accuracy,steps] [--reps 10] [--out DIR]
Run with the AFTER directory's runtime first on sys.path (delta-prep-run.sh): both modules run by one runtime.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowrank_bench as lb  # noqa: E402
import train_bench as tb  # noqa: E402

MODULE = {"deltanet": "DeltaNet", "gated_deltanet": "GatedDeltaNet", "rwkv7": "Rwkv7"}
MODE = {"deltanet": "none", "gated_deltanet": "scalar", "rwkv7": "key"}
TAGS = ("before", "after")
DEV = tb.DEV


def load(root, model):
    import seqc_torch
    return seqc_torch.SeqcModel(os.path.join(root, "%s.torch.json" % MODULE[model]), None, "auto", "chunked")


def launcher(root, model):
    import seqc_cuda
    import seqc_delta_bwd as db
    with open(os.path.join(root, "%s.torch.json" % MODULE[model])) as f:
        spec = json.load(f)["kernels"]["deltaBwd"]
    km = seqc_cuda.KernelModule(spec, "%s deltaBwd" % model, 0)
    return db.kernel_launch(km, DEV, "tf32", torch.cuda.get_device_properties(0).multi_processor_count), km


def prep_inputs(model, B, T, H, K, seed):
    """bf16 u, w, k, v, q, dy [B, T, H, K] in DeltaNet's ranges (w = k normalized, u = -beta k), ld float32 [B, T, H]."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
    k = F.normalize(rn(B, T, H, K), dim=-1)
    beta = torch.sigmoid(rn(B, T, H, 1))
    bf = lambda x: x.to(torch.bfloat16).contiguous()  # noqa: E731
    d = {"u": bf(-beta * k), "w": bf(k), "kk": bf(beta * k), "vv": bf(rn(B, T, H, K)), "q": bf(rn(B, T, H, K) * K ** -0.5), "dy": bf(rn(B, T, H, K))}
    mode = MODE[model]
    d["ld"] = (F.logsigmoid(rn(B, T, H, K) if mode == "key" else rn(B, T, H)) / 4).contiguous() if mode != "none" else None
    return d


def floors(B, T, H, K, rate, mode="none"):
    C = 64
    nC = -(-T // C)
    N = B * H * nC
    tok = B * T * H * K * 2
    ld = B * T * H * (K if mode == "key" else 1) * 4 if mode != "none" else 0
    a = K if mode == "key" else 1
    fwd = 4 * tok + ld + N * (C * C + 2 * C * K + C * K + K * K + a) * 4
    bwd = 4 * tok + ld + N * C * C * 4 + N * (2 * C * K + C * K + K * K + a) * 4
    return fwd / rate / 1e6, bwd / rate / 1e6


def time_kernels(args, res, lines, rate):
    for model in args.models.split(","):
        mode = MODE[model]
        L = {t: launcher(r, model) for t, r in zip(TAGS, (args.before, args.after))}
        for B, T, H, K in lb.parse_shapes(args.shapes):
            x = prep_inputs(model, B, T, H, K, 3)
            outs, times = {}, {t: {"prep_fwd": [], "prep_bwd": []} for t in TAGS}
            entries = {}
            for t in TAGS:
                la, km = L[t]
                fw = la("prep_fwd", mode, 64, K, K, x["u"], x["w"], x["kk"], x["vv"], x["ld"], B, T, H)
                bw = la("prep_bwd", mode, 64, K, K, x["q"], x["u"], x["w"], x["dy"], x["ld"], fw[0], B, T, H)
                outs[t] = (fw, bw)
                entries[t] = [k["entry"] + (" %d B" % k["sharedBytes"]) for k in km.kernels if k["op"] in ("prep_fwd", "prep_bwd") and k["K"] == K and k.get("math") == "tf32"]
            torch.cuda.synchronize()
            names = {"prep_fwd": ("TI", "M", "X", "BM", "NN", "A"), "prep_bwd": ("M", "X", "BM", "NN", "A")}
            diff = {}
            for i, op in enumerate(("prep_fwd", "prep_bwd")):
                for n, a, b in zip(names[op], outs["after"][i], outs["before"][i]):
                    diff["%s.%s" % (op, n)] = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
            TI = outs["before"][0][0]
            del outs
            tb.free_all()

            def call(t, op):
                la = L[t][0]
                if op == "prep_fwd":
                    return la("prep_fwd", mode, 64, K, K, x["u"], x["w"], x["kk"], x["vv"], x["ld"], B, T, H)
                return la("prep_bwd", mode, 64, K, K, x["q"], x["u"], x["w"], x["dy"], x["ld"], TI, B, T, H)
            # each (tag, op): kreps launches captured in a CUDA graph (no launch overhead; the outputs' memory reused by
            # the graph's pool), else launched eagerly
            graphs = {}
            for t in TAGS:
                for op in ("prep_fwd", "prep_bwd"):
                    try:
                        s = torch.cuda.Stream()
                        s.wait_stream(torch.cuda.current_stream())
                        with torch.cuda.stream(s):
                            call(t, op)
                        torch.cuda.current_stream().wait_stream(s)
                        g = torch.cuda.CUDAGraph()
                        with torch.cuda.graph(g):
                            for _ in range(args.kreps):
                                call(t, op)
                        graphs[(t, op)] = g
                    except Exception as e:  # noqa: BLE001
                        print("graph capture failed (%s %s): %s; eager launches" % (t, op, e), flush=True)
            row_graphs = sorted("%s/%s" % k for k in graphs)
            for _ in range(5):
                for t in TAGS:
                    for op in ("prep_fwd", "prep_bwd"):
                        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                        ev[0].record()
                        if (t, op) in graphs:
                            graphs[(t, op)].replay()
                        else:
                            for _ in range(args.kreps):
                                call(t, op)
                        ev[1].record()
                        ev[1].synchronize()
                        times[t][op].append(ev[0].elapsed_time(ev[1]) / args.kreps)
            del graphs
            ff, fb = floors(B, T, H, K, rate, mode)
            row = {"model": model, "mode": mode, "shape": [B, T, H, K], "floor_ms": {"prep_fwd": ff, "prep_bwd": fb}, "entries": entries,
                   "ms": {t: {op: statistics.median(v) for op, v in times[t].items()} for t in TAGS}, "all": times, "after_vs_before": diff, "graphed": row_graphs}
            res["kernels"].append(row)
            m = row["ms"]
            lines.append("%-14s (%d, %d, %d, %d) prep_fwd %.4f -> %.4f ms (%.2fx, floor %.4f) prep_bwd %.4f -> %.4f (%.2fx, floor %.4f); after vs before max %.1e (%s)" % (
                model, B, T, H, K, m["before"]["prep_fwd"], m["after"]["prep_fwd"], m["before"]["prep_fwd"] / m["after"]["prep_fwd"], ff,
                m["before"]["prep_bwd"], m["after"]["prep_bwd"], m["before"]["prep_bwd"] / m["after"]["prep_bwd"], fb, max(diff.values()), max(diff, key=diff.get)))
            print(lines[-1], flush=True)
            del x, TI
            tb.free_all()


def profiled(one):
    from torch.profiler import ProfilerActivity, profile
    one()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        one()
        torch.cuda.synchronize()
    ka = prof.key_averages()
    dev = lambda e: getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)  # noqa: E731  (older torch)
    try:
        table = ka.table(sort_by="self_device_time_total", row_limit=40, max_name_column_width=70)
    except Exception:  # noqa: BLE001
        table = ka.table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=70)
    tot = sum(dev(e) for e in ka) / 1e3
    prep = {e.key: dev(e) / 1e3 for e in ka if "seqc_delta_prep" in e.key}
    return tot, prep, table


def steps(args, res, lines):
    import seqc_chunked_lowrank as lr
    for model, (B, T, H, K) in [(m, s) for m in args.step_models.split(",") for s in lb.parse_shapes(args.step_shapes or args.shapes)]:
        x = {k: v.to(torch.bfloat16) for k, v in lb.inputs(model, B, T, H, K, 7).items()}
        cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(8)).to(torch.bfloat16)
        sms, ones, row = {}, {}, {"shape": [B, T, H, K], "step": {}, "profile": {}}
        grads = {}
        for tag, root in zip(TAGS, (args.before, args.after)):
            sm = sms[tag] = load(root, model)
            ones[tag], leaves = lb.seqc_step(sm, x, cot)
            old = lr.LR_GRAPHS
            lr.LR_GRAPHS = False
            try:
                ones[tag]()
                torch.cuda.synchronize()
                grads[tag] = {k: v.grad.float().clone() for k, v in leaves.items()}
                tot, prep, table = profiled(ones[tag])
            finally:
                lr.LR_GRAPHS = old
            with open(os.path.join(args.out, "profile-%s-%s-%dx%dx%dx%d.txt" % (model, tag, B, T, H, K)), "w") as f:
                f.write(table)
            row["profile"][tag] = {"kernels_ms": tot, "prep": prep}
        row["grad_after_vs_before"] = max(((grads["after"][k] - grads["before"][k]).abs().max() / grads["before"][k].abs().max().clamp_min(1e-30)).item() for k in grads["before"])
        for mode in ("eager", "graphs"):
            times = {t: [] for t in TAGS}
            old = lr.LR_GRAPHS
            lr.LR_GRAPHS = mode == "graphs"
            try:
                for t in TAGS:
                    for _ in range(3):
                        ones[t]()
                torch.cuda.synchronize()
                for _ in range(args.reps):
                    for t in TAGS:
                        ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
                        ones[t](ev)
                        ev[2].synchronize()
                        times[t].append(ev[0].elapsed_time(ev[2]))
            finally:
                lr.LR_GRAPHS = old
            row["step"][mode] = {t: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v} for t, v in times.items()}
        for sm in sms.values():
            lb.drop_graphs(sm)
        row["model"] = model
        res["steps"].append(row)
        s, p = row["step"], row["profile"]
        lines.append(model + " bf16 (%d, %d, %d, %d) step graphs %.3f -> %.3f ms (%.3fx; min %.3f / %.3f) eager %.3f -> %.3f | prep kernels (eager profile) %s -> %s | grads after vs before %.1e" % (
            B, T, H, K, s["graphs"]["before"]["median"], s["graphs"]["after"]["median"], s["graphs"]["before"]["median"] / s["graphs"]["after"]["median"],
            s["graphs"]["before"]["min"], s["graphs"]["after"]["min"], s["eager"]["before"]["median"], s["eager"]["after"]["median"],
            "+".join("%.3f" % v for v in p["before"]["prep"].values()), "+".join("%.3f" % v for v in p["after"]["prep"].values()), row["grad_after_vs_before"]))
        print(lines[-1], flush=True)
        del sms, ones, grads
        tb.free_all()


def accuracy(args, res, lines):
    B, T = 2, 1024
    _, _, H, K = lb.parse_shapes(args.shapes)[0]
    for model in args.models.split(","):
        x = lb.inputs(model, B, T, H, K, 11)
        xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
        cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(12)).to(torch.bfloat16).float()
        out = {"model": model}
        for tag, root in zip(TAGS, (args.before, args.after)):
            sm = load(root, model)
            if tag == "before":
                one, l64 = lb.seqc_step(sm, {k: v.double() for k, v in xb.items()}, cot.double())
                one()
                g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
                del one, l64
            one, lv = lb.seqc_step(sm, xb, cot)
            one()
            out[tag] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
            lb.drop_graphs(sm)
        res["accuracy"].append(out)
        lines.append("accuracy %-14s bf16 (%d, %d, %d, %d) vs float64: before max %.1e, after max %.1e (%s)" % (
            model, B, T, H, K, max(out["before"].values()), max(out["after"].values()), " ".join("%s=%.1e" % kv for kv in out["after"].items())))
        print(lines[-1], flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--models", default="deltanet,gated_deltanet")
    ap.add_argument("--shapes", default="8x2048x16x64,4x8192x16x128")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--kreps", type=int, default=20)
    ap.add_argument("--step-models", default="deltanet")
    ap.add_argument("--step-shapes", default="", help="the steps' shapes (default --shapes)")
    ap.add_argument("--parts", default="kernels,accuracy,steps")
    ap.add_argument("--out", default="/tmp/delta-prep")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rate = tb.copy_rate()
    res = {"card": torch.cuda.get_device_name(), "rate_gbs": rate, "kernels": [], "steps": [], "accuracy": []}
    lines = []
    print("card %s, copy rate %.0f GB/s" % (res["card"], rate), flush=True)
    for part, fn in (("kernels", lambda: time_kernels(args, res, lines, rate)), ("accuracy", lambda: accuracy(args, res, lines)), ("steps", lambda: steps(args, res, lines))):
        if part not in args.parts.split(","):
            continue
        t0 = time.time()
        try:
            fn()
        except Exception:  # noqa: BLE001  (the other parts still run)
            import traceback
            traceback.print_exc()
            lines.append("%s FAILED (traceback above)" % part)
        res["%s_s" % part] = round(time.time() - t0, 1)
        with open(os.path.join(args.out, "delta-prep.json"), "w") as f:
            json.dump(res, f, indent=1)
    print("\n== summary (GPU ms; floors at %.0f GB/s)" % rate)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
