"""The fused readouts kernel alone (compiler/backends/cuda/lowrank-readout.ts; seqc_chunked_lowrank.py LR_FUSED_READ) on
the card: ChunkCore.read from random start states at N chunks of C = K = V = 64 with two events a step (the delta rule's
low-rank pair and pair), for the reads the backward makes (key axis after the step with one and two query vectors: read
and adjoint; value axis after with two: adjoint; value axis before and after with one: fwd), no and a scalar decay.
Per read: ChunkCore's fp32 torch ops (LR_FUSED_READ "torch": the scores, ratios and products; the cached ratios dropped
each time, as readouts_of does) and the kernel (through readout_launcher, the stack of the queries included), by CUDA
events (median of --reps), each against ChunkCore's float64 torch ops (max abs error over max abs value), and the
kernel's floors: its FMAs at the card's fp32 FMA rate (--tflops, dense fp32 non-tensor) and its global bytes at the
measured copy rate.

usage: python3 bench/torch/lowrank_readout_bench.py DIR [NAME=DIR ...] [--n 4224] [--reps 20] [--tflops 67] [--out FILE.json]
(DIR: a module directory with DeltaNet and GatedDeltaNet .torch.json carrying "kernels"."lowRankReadout"; its
seqc_chunked_lowrank.py runs everything; each NAME=DIR's kernels are timed beside it on the same inputs, e.g. a
module patched with LR_READ_LOADS=vec4)."""
import argparse
import json
import os
import sys
import time

import torch


def inputs(mode, N, C, K, V, seed, device):
    g = torch.Generator(device="cpu").manual_seed(seed)
    k = torch.randn(N, C, K, generator=g, dtype=torch.float64)
    k = k / k.norm(dim=2, keepdim=True)
    beta = torch.rand(N, C, 1, generator=g, dtype=torch.float64)
    x = dict(u=-beta * k, w=k, k=beta * k, v=torch.randn(N, C, V, generator=g, dtype=torch.float64),
             S0=torch.randn(N, K, V, generator=g, dtype=torch.float64) / 8,
             ld=-0.5 * torch.rand(N, C, 1, generator=g, dtype=torch.float64) if mode == "scalar" else None,
             qk=torch.randn(N, C, 2, K, generator=g, dtype=torch.float64), qv=torch.randn(N, C, 2, V, generator=g, dtype=torch.float64))
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


def copy_rate(dev):
    x = torch.empty(1 << 28, dtype=torch.uint8, device=dev)
    y = torch.empty_like(x)
    ms = timed(lambda: y.copy_(x), 10)
    return 2 * x.numel() / (ms * 1e6)  # GB/s


class _Module:
    def __init__(self, d, model):
        with open(os.path.join(d, "%s.torch.json" % model)) as f:
            self.meta = json.load(f)
        self.name = model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("also", nargs="*", help="NAME=DIR: other builds' lowRankReadout kernels, timed beside")
    ap.add_argument("--n", type=int, default=4224)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--tflops", type=float, default=67.0, help="the card's dense fp32 (non-tensor) TFLOP/s for the FMA floor")
    ap.add_argument("--out")
    a = ap.parse_args()
    sys.path.insert(0, a.dir)
    import seqc_chunked_lowrank as L
    dev = torch.device("cuda", 0)
    torch.cuda.set_device(dev)
    N, C, K, V = a.n, 64, 64, 64
    gbps = copy_rate(dev)
    rows = []
    t0 = time.time()
    print("%s, torch %s, N %d chunks of C %d, K %d, V %d, M 2; copy %.0f GB/s, fp32 %.0f TFLOP/s assumed" % (
        torch.cuda.get_device_name(dev), torch.__version__, N, C, K, V, gbps, a.tflops), flush=True)
    for mode, model in (("none", "DeltaNet"), ("scalar", "GatedDeltaNet")):
        launcher = L.readout_launcher(_Module(a.dir, model), dev, "cuda")
        if launcher is None:
            print("  %s: no lowRankReadout in %s" % (model, a.dir), flush=True)
            continue
        x = inputs(mode, N, C, K, V, 7, dev)
        f = {k: (v.float().contiguous() if v is not None else None) for k, v in x.items()}

        def core(t, readout):
            return L.ChunkCore(t["S0"], t["ld"], [(t["u"], t["w"])], [(t["k"], t["v"])], lean=True, readout=readout)
        c64, c_t, c_k = core(x, None), core(f, None), core(f, launcher)
        ways = [("torch ops", c_t), ("kernel", c_k)]
        for name, d in (s.split("=", 1) for s in a.also):
            la = L.readout_launcher(_Module(d, model), dev, "cuda")
            if la is not None:
                ways.append(("kernel " + name, core(f, la)))
        for axis, after, mq in (("key", True, 1), ("key", True, 2), ("value", True, 2), ("value", False, 1), ("value", True, 1)):
            qn = "qk" if axis == "key" else "qv"
            want = c64.read(axis, after, [x[qn][:, :, i] for i in range(mq)])
            vq = [f[qn][:, :, i] for i in range(mq)]
            for way, cc in ways:
                def fn():
                    out = cc.read(axis, after, vq)
                    cc.release()
                    return out
                got = fn()
                e = max(((g.double() - w).abs().max() / w.abs().max()).item() for g, w in zip(got, want))
                ms = timed(fn, a.reps)
                fma = N * mq * (C * C * 2 * K / 2 + C * C * 2 * K / 2 + C * K * V)  # causal scores, mix, start (per the kernel's work)
                byt = 4 * N * (C * mq * K + C * 2 * K + C * 2 * V + K * V + C * mq * V)
                row = dict(mode=mode, axis=axis, after=after, mq=mq, way=way, ms=ms, err=e,
                           floor_fma_ms=2 * fma / (a.tflops * 1e9), floor_io_ms=byt / (gbps * 1e6))
                rows.append(row)
                print("  %-6s %-5s %-6s mq %d  %-12s %7.3f ms  err %.1e   floors: fma %.3f ms, io %.3f ms" % (
                    mode, axis, "after" if after else "before", mq, way, ms, e, row["floor_fma_ms"], row["floor_io_ms"]), flush=True)
        del c64, c_t, c_k, ways, x, f
        torch.cuda.empty_cache()
    print("readout bench %.1f s" % (time.time() - t0), flush=True)
    if a.out:
        with open(a.out, "w") as fo:
            json.dump(dict(device=torch.cuda.get_device_name(dev), N=N, C=C, K=K, V=V, copy_gbps=gbps, tflops=a.tflops, rows=rows), fo, indent=1)


if __name__ == "__main__":
    main()
