"""The delta backward's walks alone on the card (bench/torch/delta-walk-run.sh): every walk of a module built by
bench/torch/delta-walk-module.ts (today's fp32 and 3xTF32 walks, the wider twins and their neighbours) at each shape's
B H rows and nC chunks, both directions, on one bounded random walk a shape (M, NN uniform in (-0.5, 0.5) / sqrt(K), X,
BM, Z0 in (-1, 1), A in [0.8, 1]): GPU ms (CUDA events, median of reps, forward + reverse = the step's two walks), the
traffic floor at the measured copy rate (per chunk M, NN [C, K], X, Y [C, V], BM, ZS [K, V] fp32), and the largest
relative error (Frobenius) of ZS, Y, ZF vs the walk in float64.
  python3 delta_walk_bench.py SPEC RUNTIME_DIR --shapes 4x8192x16x128,1x32768x8x128,8x2048x16x64 --out walks.json"""
import argparse
import json
import statistics
import sys

import torch

DEV = torch.device("cuda", 0)


def copy_rate():
    a = torch.rand(1 << 28, device=DEV)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    ms = []
    for _ in range(10):
        e = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        e[0].record()
        b.copy_(a)
        e[1].record()
        e[1].synchronize()
        ms.append(e[0].elapsed_time(e[1]))
    return 2 * a.numel() * 4 / (statistics.median(ms) * 1e6)  # GB/s


def data(BH, nC, C, K, V, seed):
    g = torch.Generator(device=DEV).manual_seed(seed)
    u = lambda *s: 2 * torch.rand(*s, device=DEV, generator=g) - 1  # noqa: E731
    N = BH * nC
    return {"M": u(N, C, K) * 0.5 / K ** 0.5, "X": u(N, C, V), "BM": u(N, K, V), "NN": u(N, C, K) * 0.5 / K ** 0.5,
            "A": 0.8 + 0.2 * torch.rand(N, device=DEV, generator=g), "Z0": u(BH, K, V)}


def reference(d, BH, nC, reverse):
    M, X, BM, NN, A = (d[k].double().reshape(BH, nC, *d[k].shape[1:]) for k in ("M", "X", "BM", "NN", "A"))
    Z = d["Z0"].double().clone()
    ZS, Y = torch.empty_like(BM), torch.empty_like(X)
    for s in range(nC):
        c = nC - 1 - s if reverse else s
        ZS[:, c] = Z
        Yc = X[:, c] + M[:, c] @ Z
        Y[:, c] = Yc
        Z = A[:, c, None, None] * Z + BM[:, c] + NN[:, c].transpose(1, 2) @ Yc
    return ZS.reshape(BH * nC, *ZS.shape[2:]), Y.reshape(BH * nC, *Y.shape[2:]), Z


def rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("runtime")
    ap.add_argument("--shapes", default="4x8192x16x128,1x32768x8x128,8x2048x16x64")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default="walks.json")
    a = ap.parse_args()
    sys.path.insert(0, a.runtime)
    import seqc_cuda
    spec = json.load(open(a.spec))
    km = seqc_cuda.KernelModule(spec, "walks", 0)
    rate = copy_rate()
    sms = torch.cuda.get_device_properties(DEV).multi_processor_count
    print("copy rate %.0f GB/s, %d SMs" % (rate, sms), flush=True)
    out = {"rate_GBs": rate, "sms": sms, "shapes": []}
    C = 64
    for sh in a.shapes.split(","):
        B, T, H, K = (int(v) for v in sh.split("x"))
        V, BH, nC = K, B * H, -(-T // C)
        N = BH * nC
        floor_ms = 2 * N * 4 * (2 * C * K + 2 * C * V + 2 * K * V) / (rate * 1e6)  # two walks
        d = data(BH, nC, C, K, V, 5)
        refs = [reference(d, BH, nC, r) for r in (0, 1)]
        ZS, Y, ZF = torch.empty(N, K, V, device=DEV), torch.empty(N, C, V, device=DEV), torch.empty(BH, K, V, device=DEV)
        row = {"shape": [B, T, H, K], "BH": BH, "nC": nC, "floor_two_walks_ms": floor_ms, "walks": []}
        print("shape (%d, %d, %d, %d): B H %d, nC %d, floor (two walks) %.3f ms" % (B, T, H, K, BH, nC, floor_ms), flush=True)
        for k in spec["kernels"]:
            if k["K"] != K:
                continue
            grid = (BH, V // k["cols"])
            ms, err = [], 0.0
            for rv in (0, 1):
                args = [("ptr", d[n].data_ptr()) for n in ("M", "X", "BM", "NN", "A", "Z0")] + [("ptr", ZS.data_ptr()), ("ptr", Y.data_ptr()), ("ptr", ZF.data_ptr()), ("u32", BH), ("u32", nC), ("u32", rv)]
                for t in (ZS, Y, ZF):
                    t.fill_(float("nan"))
                st = torch.cuda.current_stream(DEV).cuda_stream
                km.launch(k, grid, args, st)
                torch.cuda.synchronize()
                err = max(err, rel(ZS, refs[rv][0]), rel(Y, refs[rv][1]), rel(ZF, refs[rv][2]))
                ts = []
                for _ in range(a.reps):
                    e = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                    e[0].record()
                    km.launch(k, grid, args, st)
                    e[1].record()
                    e[1].synchronize()
                    ts.append(e[0].elapsed_time(e[1]))
                ms.append(statistics.median(ts))
            w = {"entry": k["entry"], "label": k["label"], "cols": k["cols"], "threads": k["threads"], "smem": k["sharedBytes"], "grid": list(grid),
                 "fwd_ms": ms[0], "rev_ms": ms[1], "two_ms": ms[0] + ms[1], "err": err}
            row["walks"].append(w)
            print("  %-14s %-48s grid %-10s %4d thr %6d B: fwd %.3f rev %.3f two %.3f ms (floor x%.1f), err %.1e" % (
                k["label"], k["entry"], "(%d,%d)" % grid, k["threads"], k["sharedBytes"], ms[0], ms[1], ms[0] + ms[1], (ms[0] + ms[1]) / floor_ms, err), flush=True)
        out["shapes"].append(row)
        del d, refs, ZS, Y, ZF
        torch.cuda.empty_cache()
    json.dump(out, open(a.out, "w"), indent=1)
    print("\nsummary (two walks, GPU ms; best of each label)")
    for row in out["shapes"]:
        best = {}
        for w in row["walks"]:
            if w["label"] not in best or w["two_ms"] < best[w["label"]]["two_ms"]:
                best[w["label"]] = w
        print("(%s) floor %.3f: %s" % (", ".join(map(str, row["shape"])), row["floor_two_walks_ms"], "; ".join("%s %s %.3f" % (l, w["entry"].replace("seqc_delta_walk_", ""), w["two_ms"]) for l, w in best.items())))


if __name__ == "__main__":
    main()
