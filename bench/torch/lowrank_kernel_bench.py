"""The fused chunk transitions kernel alone (compiler/backends/cuda/lowrank-core.ts; seqc_chunked_lowrank.py LR_FUSED) on
the card: the lowRankCore kernels of one or more module directories (e.g. an earlier build's and this commit's), side by
side in one process on the same random delta-rule inputs at N chunks of C = K = V = 64, each decay mode (DeltaNet: none,
Gated DeltaNet: scalar, RWKV-7: per key). Per kernel: its time by CUDA events (median of --reps launches) and its
outputs (the reads in VV's slot 0, the end state) against ChunkCore's torch ops in float64 (max abs error over max abs
value, per output); beside them ChunkCore's own fp32 torch ops for the same transitions (LR_FUSED "torch": the solve and
end(), setup included) timed the same way.

usage: python3 bench/torch/lowrank_kernel_bench.py NAME=DIR [NAME=DIR ...] [--n 4224] [--reps 20] [--out FILE.json]
(the first DIR's seqc_chunked_lowrank.py / seqc_cuda.py run the reference and the launches)."""
import argparse
import json
import os
import sys
import time

import torch

MODELS = [("none", "DeltaNet"), ("scalar", "GatedDeltaNet"), ("key", "Rwkv7")]


def spec_of(d, model):
    with open(os.path.join(d, "%s.torch.json" % model)) as f:
        meta = json.load(f)
    return (meta.get("kernels") or {}).get("lowRankCore")


def inputs(mode, N, C, K, V, seed, device):
    g = torch.Generator(device="cpu").manual_seed(seed)
    k = torch.randn(N, C, K, generator=g, dtype=torch.float64)
    k = k / k.norm(dim=2, keepdim=True)
    beta = torch.rand(N, C, 1, generator=g, dtype=torch.float64)
    v = torch.randn(N, C, V, generator=g, dtype=torch.float64)
    ld = None
    if mode == "scalar":
        ld = -0.5 * torch.rand(N, C, 1, generator=g, dtype=torch.float64)
    elif mode == "key":
        ld = -torch.rand(N, C, K, generator=g, dtype=torch.float64)
    # the delta rule: S_s = D_s S_{s-1} - beta k (k^T S_{s-1}) + beta k [0 | v]^T: u = -beta k, w = k, pair (beta k, v)
    x = dict(u=-beta * k, w=k, k=beta * k, v=v, ld=ld)
    return {a: (b.to(device) if b is not None else None) for a, b in x.items()}


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def err(got, want):
    return ((got.double() - want).abs().max() / want.abs().max()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--n", type=int, default=4224)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out")
    a = ap.parse_args()
    named = [x.split("=", 1) for x in a.dirs]
    sys.path.insert(0, named[0][1])
    import seqc_chunked_lowrank as L
    import seqc_cuda
    dev = torch.device("cuda", 0)
    torch.cuda.set_device(dev)
    N, C, K, V = a.n, 64, 64, 64
    W = K + V
    rows = []
    t0 = time.time()
    print("%s, torch %s, N %d chunks of C %d, K %d, V %d" % (torch.cuda.get_device_name(dev), torch.__version__, N, C, K, V), flush=True)
    for mode, model in MODELS:
        x = inputs(mode, N, C, K, V, 7, dev)
        ref = L.ChunkCore(None, x["ld"], [(x["u"], x["w"])], [(x["k"], x["v"])], eye=W, lean=True)
        r_ref, end_ref = ref.r[0], ref.end()
        f = {a: (b.float().contiguous() if b is not None else None) for a, b in x.items()}

        def torch_ops():
            c = L.ChunkCore(None, f["ld"], [(f["u"], f["w"])], [(f["k"], f["v"])], eye=W, lean=True)
            return c.r[0], c.end()

        r32, e32 = torch_ops()
        ms = timed(torch_ops, a.reps)
        row = dict(mode=mode, way="torch ops (fp32)", ms=ms, err_r=err(r32, r_ref), err_end=err(e32, end_ref))
        rows.append(row)
        print("  %-6s %-34s %8.3f ms  reads %.1e  end %.1e" % (mode, row["way"], ms, row["err_r"], row["err_end"]), flush=True)
        KK = torch.stack([f["u"], f["k"]], 2).contiguous()
        Wq = f["w"].contiguous()
        VV = torch.zeros(N, C, 2, W, dtype=torch.float32, device=dev)
        VV[:, :, 1, K:] = f["v"]
        G = None
        if f["ld"] is not None:
            G = torch.zeros(N, C + 1, f["ld"].shape[2], dtype=torch.float32, device=dev)
            G[:, 1:] = torch.cumsum(f["ld"], 1)
        END = torch.empty(N, K, W, dtype=torch.float32, device=dev)
        for name, d in named:
            spec = spec_of(d, model)
            if spec is None:
                print("  %-6s %s: no lowRankCore in %s" % (mode, name, d), flush=True)
                continue
            km = seqc_cuda.KernelModule(spec, "%s %s lowRankCore" % (name, model), 0)
            k = next(k for k in km.kernels if k["decay"] == mode and (k["C"], k["K"], k["V"]) == (C, K, V))
            args = [("ptr", t.data_ptr()) for t in (KK, Wq, VV)] + [("ptr", G.data_ptr() if G is not None else 0), ("ptr", END.data_ptr()), ("u32", N)]

            def launch():
                km.launch(k, (N, 1), args, torch.cuda.current_stream(dev).cuda_stream)

            VV[:, :, 0].fill_(float("nan"))
            END.fill_(float("nan"))
            launch()
            torch.cuda.synchronize()
            e_r, e_end = err(VV[:, :, 0], r_ref), err(END, end_ref)
            ms = timed(launch, a.reps)
            row = dict(mode=mode, way="%s %s (%d B smem)" % (name, k["entry"], k["sharedBytes"]), ms=ms, err_r=e_r, err_end=e_end,
                       sharedBytes=k["sharedBytes"], dir=d, name=name)
            rows.append(row)
            print("  %-6s %-34s %8.3f ms  reads %.1e  end %.1e" % (mode, "%s (%d KB smem)" % (name, k["sharedBytes"] // 1024), ms, e_r, e_end), flush=True)
        del ref, r_ref, end_ref
        torch.cuda.empty_cache()
    print("kernel bench %.1f s" % (time.time() - t0), flush=True)
    if a.out:
        with open(a.out, "w") as fo:
            json.dump(dict(device=torch.cuda.get_device_name(dev), N=N, C=C, K=K, V=V, rows=rows), fo, indent=1)


if __name__ == "__main__":
    main()
