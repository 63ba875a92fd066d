"""The delta backward's reverse walk alone on the card, old vs bf16 (bench/torch/delta-walk-bf16-run.sh): every walk of a
module built by bench/torch/delta-walk-bf16-module.ts (today's `_zb` walks: 3xTF32 / fp32 split; the bf16 walks of
delta-walk-bf16.ts, win "mn" = M, NN^T bf16 or "all" = X, BM bf16 too) at each shape's B H rows and nC chunks, the
reverse direction (the only one the bf16 walk runs), on one bounded random walk a shape (M, NN uniform in (-0.5, 0.5) /
sqrt(K), X, BM, Z0 in (-1, 1), A in [0.8, 1]; the bf16 walks get them rounded, NN transposed): GPU ms (CUDA events,
median of reps), the traffic floor at the measured copy rate (each kernel's own operand bytes once, ZS and Y bf16
written), and the largest relative error (Frobenius) of ZS, Y, ZF vs the walk in float64 on the unrounded inputs.
  python3 delta_walk_bf16_bench.py SPEC RUNTIME_DIR --shapes 4x8192x16x128,1x32768x8x128,8x2048x16x64 --out walks.json"""
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


def reference(d, BH, nC):  # the reverse walk in float64
    M, X, BM, NN, A = (d[k].double().reshape(BH, nC, *d[k].shape[1:]) for k in ("M", "X", "BM", "NN", "A"))
    Z = d["Z0"].double().clone()
    ZS, Y = torch.empty_like(BM), torch.empty_like(X)
    for s in range(nC):
        c = nC - 1 - s
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
        d = data(BH, nC, C, K, V, 5)
        ref = reference(d, BH, nC)
        bf = torch.bfloat16
        ops = {None: [d[n] for n in ("M", "X", "BM", "NN")],
               "mn": [d["M"].to(bf), d["X"], d["BM"], d["NN"].transpose(1, 2).contiguous().to(bf)],
               "all": [d["M"].to(bf), d["X"].to(bf), d["BM"].to(bf), d["NN"].transpose(1, 2).contiguous().to(bf)]}
        ZS, Y, ZF = torch.empty(N, K, V, device=DEV, dtype=bf), torch.empty(N, C, V, device=DEV, dtype=bf), torch.empty(BH, K, V, device=DEV)
        row = {"shape": [B, T, H, K], "BH": BH, "nC": nC, "walks": []}
        print("shape (%d, %d, %d, %d): B H %d, nC %d" % (B, T, H, K, BH, nC), flush=True)
        for k in spec["kernels"]:
            if k["K"] != K:
                continue
            win = k.get("win")
            o = ops[win]
            byts = sum(t.numel() * t.element_size() for t in o) + (ZS.numel() + Y.numel()) * 2
            floor = byts / (rate * 1e6)
            grid = (BH, V // k["cols"])
            args = [("ptr", t.data_ptr()) for t in o] + [("ptr", d["A"].data_ptr()), ("ptr", d["Z0"].data_ptr()), ("ptr", ZS.data_ptr()), ("ptr", Y.data_ptr()), ("ptr", ZF.data_ptr()), ("u32", BH), ("u32", nC), ("u32", 1)]
            for t in (ZS, Y, ZF):
                t.fill_(float("nan"))
            st = torch.cuda.current_stream(DEV).cuda_stream
            km.launch(k, grid, args, st)
            torch.cuda.synchronize()
            err = max(rel(ZS, ref[0]), rel(Y, ref[1]), rel(ZF, ref[2]))
            ts = []
            for _ in range(a.reps):
                e = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                e[0].record()
                km.launch(k, grid, args, st)
                e[1].record()
                e[1].synchronize()
                ts.append(e[0].elapsed_time(e[1]))
            ms = statistics.median(ts)
            w = {"entry": k["entry"], "label": k["label"], "cols": k["cols"], "threads": k["threads"], "smem": k["sharedBytes"], "grid": list(grid),
                 "rev_ms": ms, "floor_ms": floor, "us_per_chunk": 1e3 * ms / nC, "err": err}
            row["walks"].append(w)
            print("  %-16s %-46s grid %-9s %3d thr %6d B: rev %.3f ms (%.2f us a chunk; floor %.3f, x%.1f), err %.1e" % (
                k["label"], k["entry"].replace("seqc_delta_walk_", ""), "(%d,%d)" % grid, k["threads"], k["sharedBytes"], ms, w["us_per_chunk"], floor, ms / floor, err), flush=True)
        out["shapes"].append(row)
        del d, ref, ops, ZS, Y, ZF
        torch.cuda.empty_cache()
    json.dump(out, open(a.out, "w"), indent=1)
    print("\nsummary (reverse walk, GPU ms; best of each label)")
    for row in out["shapes"]:
        best = {}
        for w in row["walks"]:
            if w["label"] not in best or w["rev_ms"] < best[w["label"]]["rev_ms"]:
                best[w["label"]] = w
        print("(%s): %s" % (", ".join(map(str, row["shape"])), "; ".join("%s %s %.3f (%.0e)" % (l, w["entry"].replace("seqc_delta_walk_", ""), w["rev_ms"], w["err"]) for l, w in best.items())))


if __name__ == "__main__":
    main()
