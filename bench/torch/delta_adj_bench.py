"""The delta backward's adjoint: the TF32 twin (math "tf32", delta-adjoint-mma.ts) vs the bf16 twin (math "bf16",
delta-adjoint-bf16.ts), one module build holding both (session 14 task A), in one process:
  - kernels alone: each model's deltaBwd module (DeltaNet: decay "none", Gated DeltaNet: "scalar") through
    seqc_delta_bwd.kernel_launch with math "tf32" and "bf16" (bf16 inputs; the other ops pick the same kernels either
    way), the adjoint's inputs from the real chain (prep_fwd, walk, prep_bwd, walk) at each shape; kreps launches
    captured in a CUDA graph, median of 5 means, interleaved; floors counted first: bytes at the copy rate measured
    here, flops (triangles counted) at the dense bf16 / TF32 tensor rates; the bf16 twin's outputs vs the TF32 twin's
    and vs the fp32 kernel's (max |diff| / max |ref| per output);
  - gradients vs float64 at (2, 1024) (H, K of the first shape), DeltaNet and Gated DeltaNet bf16, LR_DELTA_MMA
    "tf32" vs "bf16" (rel. L2 per gradient, the max);
  - DeltaNet's bf16 step (forward + backward) under CUDA graphs and eager, LR_DELTA_MMA "tf32" vs "bf16" interleaved,
    median of the reps; an eager profile of each (the adjoint's GPU ms and the kernels' total).
  python3 delta_adj_bench.py ROOT [--shapes 8x2048x16x64,4x8192x16x128] [--reps 10] [--out DIR]
ROOT: the modules and the runtime (first on sys.path: delta-adj-run.sh).
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

MODULE = {"deltanet": "DeltaNet", "gated_deltanet": "GatedDeltaNet"}
MODE = {"deltanet": "none", "gated_deltanet": "scalar"}
MATHS = ("tf32", "bf16")
DEV = tb.DEV
BF16_TFLOPS, TF32_TFLOPS = 989.0, 494.0  # H100 / H200 SXM dense tensor rates


def prep_inputs(model, B, T, H, K, seed):
    """bf16 u, w, k, v, q, dy [B, T, H, K] in DeltaNet's ranges (w = k normalized, u = -beta k), ld float32 [B, T, H]."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
    k = F.normalize(rn(B, T, H, K), dim=-1)
    beta = torch.sigmoid(rn(B, T, H, 1))
    bf = lambda x: x.to(torch.bfloat16).contiguous()  # noqa: E731
    d = {"u": bf(-beta * k), "w": bf(k), "kk": bf(beta * k), "vv": bf(rn(B, T, H, K)), "q": bf(rn(B, T, H, K) * K ** -0.5), "dy": bf(rn(B, T, H, K))}
    d["ld"] = (F.logsigmoid(rn(B, T, H)) / 4).contiguous() if MODE[model] == "scalar" else None
    return d


def launchers(root, model):
    import seqc_cuda
    import seqc_delta_bwd as db
    with open(os.path.join(root, "%s.torch.json" % MODULE[model])) as f:
        spec = json.load(f)["kernels"]["deltaBwd"]
    km = seqc_cuda.KernelModule(spec, "%s deltaBwd" % model, 0)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return {m: db.kernel_launch(km, DEV, m, sms) for m in MATHS + (None,)}, km


def floors(B, T, H, K, mode, rate):
    """The adjoint's bytes (reads: six bf16 per-token inputs, R and DR [N, C, V], S0 and LE [N, K, V] fp32, with a decay
    S_C [N, K, V] and ld; writes: five fp32 gradients and dld) and flops (multiply-adds x 2: LE's three C K V products,
    a side's C K V product, three score triangles and five triangular products of C C K / 2 each)."""
    C = 64
    nC = -(-T // C)
    N = B * H * nC
    tok = B * T * H * K
    dec = mode != "none"
    byts = 6 * tok * 2 + 2 * N * C * K * 4 + (3 if dec else 2) * N * K * K * 4 + 5 * tok * 4 + (2 * B * T * H * 4 if dec else 0)
    flops = 2 * N * (3 * C * K * K + 2 * (C * K * K + 8 * C * C * K // 2))
    return {"bytes": byts, "io_ms": byts / rate / 1e6, "flops": flops, "bf16_ms": flops / BF16_TFLOPS / 1e9, "tf32_ms": flops / TF32_TFLOPS / 1e9}


def time_kernels(args, res, lines, rate):
    for model in args.models.split(","):
        mode = MODE[model]
        L, km = launchers(args.root, model)
        for B, T, H, K in lb.parse_shapes(args.shapes):
            x = prep_inputs(model, B, T, H, K, 3)
            la = L["tf32"]
            nC = -(-T // 64)
            TI, M, X, BM, NN, A = la("prep_fwd", mode, 64, K, K, x["u"], x["w"], x["kk"], x["vv"], x["ld"], B, T, H)
            S0s, R, SF = la("walk", mode, 64, K, K, M, X, BM, NN, A, None, B * H, nC, 0)
            M, X, BM, NN, A = la("prep_bwd", mode, 64, K, K, x["q"], x["u"], x["w"], x["dy"], x["ld"], TI, B, T, H)
            LE, DR, _ = la("walk", mode, 64, K, K, M, X, BM, NN, A, None, B * H, nC, 1)
            del TI, M, X, BM, NN, A
            args_adj = (x["q"], x["u"], x["w"], x["kk"], x["vv"], x["dy"], x["ld"], R, S0s, SF, LE, DR, B, T, H)

            def call(m):
                return L[m]("adj", mode, 64, K, K, *args_adj)
            outs = {m: call(m) for m in MATHS + (None,)}
            torch.cuda.synchronize()
            names = ("dQ", "dU", "dW", "dK", "dV", "dLD")
            diff = {}
            for ref in ("tf32", None):
                for n, a, b in zip(names, outs["bf16"], outs[ref]):
                    if a is not None:
                        diff["%s.%s" % (ref or "fp32", n)] = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
            entries = {m: [k["entry"] + " %d thr %d B" % (k["threads"], k["sharedBytes"]) for k in km.kernels if k["op"] == "adj" and k["K"] == K and k.get("math") == m] for m in MATHS}
            del outs
            tb.free_all()
            graphs = {}
            for m in MATHS:
                try:
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):
                        call(m)
                    torch.cuda.current_stream().wait_stream(s)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g):
                        for _ in range(args.kreps):
                            call(m)
                    graphs[m] = g
                except Exception as e:  # noqa: BLE001
                    print("graph capture failed (%s): %s; eager launches" % (m, e), flush=True)
            times = {m: [] for m in MATHS}
            for _ in range(5):
                for m in MATHS:
                    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                    ev[0].record()
                    if m in graphs:
                        graphs[m].replay()
                    else:
                        for _ in range(args.kreps):
                            call(m)
                    ev[1].record()
                    ev[1].synchronize()
                    times[m].append(ev[0].elapsed_time(ev[1]) / args.kreps)
            del graphs
            fl = floors(B, T, H, K, mode, rate)
            ms = {m: statistics.median(v) for m, v in times.items()}
            row = {"model": model, "mode": mode, "shape": [B, T, H, K], "floors": fl, "entries": entries, "ms": ms, "all": times, "bf16_vs": diff}
            res["kernels"].append(row)
            lines.append("%-14s adj (%d, %d, %d, %d): floors io %.4f ms (%.0f MB), bf16 mma %.4f, tf32 %.4f | tf32 twin %.4f ms -> bf16 twin %.4f (%.2fx; %.1fx io floor) | bf16 vs tf32 max %.1e, vs fp32 max %.1e" % (
                model, B, T, H, K, fl["io_ms"], fl["bytes"] / 1e6, fl["bf16_ms"], fl["tf32_ms"], ms["tf32"], ms["bf16"], ms["tf32"] / ms["bf16"], ms["bf16"] / fl["io_ms"],
                max(v for k, v in diff.items() if k.startswith("tf32")), max(v for k, v in diff.items() if k.startswith("fp32"))))
            print(lines[-1], flush=True)
            del x, R, S0s, SF, LE, DR, args_adj
            tb.free_all()


def profiled(one):
    from torch.profiler import ProfilerActivity, profile
    one()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        one()
        torch.cuda.synchronize()
    ka = prof.key_averages()
    dev = lambda e: getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)  # noqa: E731
    try:
        table = ka.table(sort_by="self_device_time_total", row_limit=40, max_name_column_width=70)
    except Exception:  # noqa: BLE001
        table = ka.table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=70)
    tot = sum(dev(e) for e in ka) / 1e3
    adj = {e.key: dev(e) / 1e3 for e in ka if "seqc_delta_adj" in e.key}
    return tot, adj, table


def steps(args, res, lines):
    import seqc_chunked_lowrank as lr
    model = "deltanet"
    sm = lb.seqc_model(args.root, model, "chunked")
    for B, T, H, K in lb.parse_shapes(args.shapes):
        x = {k: v.to(torch.bfloat16) for k, v in lb.inputs(model, B, T, H, K, 7).items()}
        cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(8)).to(torch.bfloat16)
        one, leaves = lb.seqc_step(sm, x, cot)
        row = {"shape": [B, T, H, K], "step": {}, "profile": {}}
        grads = {}
        for m in MATHS:
            with lb.switches({"LR_DELTA_MMA": m, "LR_GRAPHS": False}):
                one()
                torch.cuda.synchronize()
                grads[m] = {k: v.grad.float().clone() for k, v in leaves.items()}
                tot, adj, table = profiled(one)
            with open(os.path.join(args.out, "profile-deltanet-%s-%dx%dx%dx%d.txt" % (m, B, T, H, K)), "w") as f:
                f.write(table)
            row["profile"][m] = {"kernels_ms": tot, "adj": adj}
        row["grad_bf16_vs_tf32"] = max(tb.rel(grads["bf16"][k], grads["tf32"][k]) for k in grads["tf32"])
        del grads
        for mode in ("eager", "graphs"):
            times = {m: [] for m in MATHS}
            for m in MATHS:
                with lb.switches({"LR_DELTA_MMA": m, "LR_GRAPHS": mode == "graphs"}):
                    for _ in range(3):
                        one()
            torch.cuda.synchronize()
            for _ in range(args.reps):
                for m in MATHS:
                    with lb.switches({"LR_DELTA_MMA": m, "LR_GRAPHS": mode == "graphs"}):
                        ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
                        one(ev)
                        ev[2].synchronize()
                        times[m].append(ev[0].elapsed_time(ev[2]))
            row["step"][mode] = {m: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v} for m, v in times.items()}
        lb.drop_graphs(sm)
        res["steps"].append(row)
        s, p = row["step"], row["profile"]
        lines.append("deltanet bf16 (%d, %d, %d, %d) step graphs tf32 %.3f -> bf16 %.3f ms (%.3fx; min %.3f / %.3f) eager %.3f -> %.3f | adj (eager profile) %s -> %s, kernels %.3f -> %.3f | grads bf16 vs tf32 %.1e" % (
            B, T, H, K, s["graphs"]["tf32"]["median"], s["graphs"]["bf16"]["median"], s["graphs"]["tf32"]["median"] / s["graphs"]["bf16"]["median"],
            s["graphs"]["tf32"]["min"], s["graphs"]["bf16"]["min"], s["eager"]["tf32"]["median"], s["eager"]["bf16"]["median"],
            "+".join("%.3f" % v for v in p["tf32"]["adj"].values()), "+".join("%.3f" % v for v in p["bf16"]["adj"].values()), p["tf32"]["kernels_ms"], p["bf16"]["kernels_ms"], row["grad_bf16_vs_tf32"]))
        print(lines[-1], flush=True)
        del one, leaves, x, cot
        tb.free_all()


def accuracy(args, res, lines):
    B, T = 2, 1024
    _, _, H, K = lb.parse_shapes(args.shapes)[0]
    for model in args.models.split(","):
        x = lb.inputs(model, B, T, H, K, 11)
        xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
        cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(12)).to(torch.bfloat16).float()
        sm = lb.seqc_model(args.root, model, "chunked")
        one, l64 = lb.seqc_step(sm, {k: v.double() for k, v in xb.items()}, cot.double())
        one()
        g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
        del one, l64
        out = {"model": model}
        for m in MATHS:
            with lb.switches({"LR_DELTA_MMA": m}):
                one, lv = lb.seqc_step(sm, xb, cot)
                one()
                out[m] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
        lb.drop_graphs(sm)
        res["accuracy"].append(out)
        lines.append("accuracy %-14s bf16 (%d, %d, %d, %d) vs float64: LR_DELTA_MMA tf32 max %.2e, bf16 max %.2e (%s)" % (
            model, B, T, H, K, max(out["tf32"].values()), max(out["bf16"].values()), " ".join("%s=%.1e" % kv for kv in out["bf16"].items())))
        print(lines[-1], flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--models", default="deltanet,gated_deltanet")
    ap.add_argument("--shapes", default="8x2048x16x64,4x8192x16x128")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--kreps", type=int, default=20)
    ap.add_argument("--parts", default="kernels,accuracy,steps")
    ap.add_argument("--out", default="/tmp/delta-adj")
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
        with open(os.path.join(args.out, "delta-adj.json"), "w") as f:
            json.dump(res, f, indent=1)
    print("\n== summary (GPU ms; floors at %.0f GB/s, %.0f / %.0f TFLOPS bf16 / tf32)" % (rate, BF16_TFLOPS, TF32_TFLOPS))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
