"""RWKV-7's per-key adjoint alone (session 15 task D): the bf16 twin (math "bf16", seqc_delta_adj_key_c64k*_bf16_bf16)
vs the factored twin (math "bf16f": the diagonal 16-slot blocks by TF32 mma where a chunk's decays allow,
compiler/backends/cuda/delta-adjoint-key-mma.ts / -k128.ts), launched through seqc_delta_bwd.kernel_launch (math
"bf16") with KEY_MMA "bf16" vs "bf16f", from Rwkv7.torch.json's deltaBwd module, one process:
  - per shape: bf16 q, u, w, k, v, dy (k, w unit rows; u = -0.5 w; q, v, dy N(0, 1) scaled), log decays a key
    ld = -exp(-0.5) sigmoid(N(0, 1)) (RWKV-7's range [-0.6065, 0]; every block's decay under the twin's span of 40:
    its mma path), and "fallback" ld = -3 (every chunk over the span: the twin's diagonal passes); R, S0, SF, LE, DR
    float32 N(0, 1) scaled; kreps launches captured in a CUDA graph a way, median of 5 means, interleaved;
  - the floor counted first: bytes read and written once (inputs bf16, R / DR / S0 / LE float32, outputs float32) at
    the copy rate measured here;
  - the factored twin's outputs vs the bf16 twin's (max |diff| / max |ref| per output) at both decay ranges.
  python3 key_fac_kernel_bench.py MOD [--shapes 8x2048x16x64,4x8192x16x128] [--kreps 20] [--out FILE]
"""
import argparse
import json
import os
import statistics
import sys

import torch

DEV = torch.device("cuda", 0)


def copy_rate():
    x = torch.empty(256 << 20, dtype=torch.uint8, device=DEV)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(10):
        y.copy_(x)
    e1.record()
    torch.cuda.synchronize()
    return 2 * x.numel() * 10 / (e0.elapsed_time(e1) * 1e-3) / 1e9  # GB/s


def make(B, T, H, K, seed, ld_kind):
    g = torch.Generator(device=DEV).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
    C, V = 64, K
    nC = -(-T // C)
    N = B * H * nC
    bf = lambda x: x.to(torch.bfloat16).contiguous()  # noqa: E731
    w = torch.nn.functional.normalize(rn(B, T, H, K), dim=-1)
    k = torch.nn.functional.normalize(rn(B, T, H, K), dim=-1)
    d = {"q": bf(rn(B, T, H, K) * K ** -0.5), "u": bf(-0.5 * w), "w": bf(w), "kk": bf(k), "vv": bf(rn(B, T, H, V)), "dy": bf(rn(B, T, H, V))}
    if ld_kind == "rwkv7":
        d["ld"] = (-torch.exp(torch.tensor(-0.5)) * torch.sigmoid(rn(B, T, H, K))).contiguous()
    else:
        d["ld"] = torch.full((B, T, H, K), -3.0, device=DEV)
    d.update({"R": rn(N, C, V), "S0": rn(N, K, V) * 0.1, "SF": rn(B * H, K, V) * 0.1, "LE": rn(N, K, V) * 0.1, "DR": rn(N, C, V)})
    return d


def floor_bytes(B, T, H, K):
    C, V = 64, K
    N = B * H * (-(-T // C))
    tok = B * T * H
    return tok * (4 * K + 2 * V) * 2 + tok * K * 4 + N * (2 * C * V + 2 * K * V) * 4 + tok * (4 * K + V + K) * 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mod")
    ap.add_argument("--shapes", default="8x2048x16x64,4x8192x16x128")
    ap.add_argument("--kreps", type=int, default=20)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    root = os.path.abspath(a.mod)
    sys.path.insert(0, root)
    import seqc_cuda
    import seqc_delta_bwd as db
    with open(os.path.join(root, "Rwkv7.torch.json")) as f:
        spec = json.load(f)["kernels"]["deltaBwd"]
    km = seqc_cuda.KernelModule(spec, "rwkv7 deltaBwd", 0)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    launch = db.kernel_launch(km, DEV, "bf16", sms)
    rate = copy_rate()
    print("%s, copy %.0f GB/s, adjoint records: %s" % (torch.cuda.get_device_name(0), rate, ", ".join(k["entry"] for k in km.kernels if k["op"] == "adj" and k["decay"] == "key")))
    res = []
    for sh in a.shapes.split(","):
        B, T, H, K = (int(v) for v in sh.split("x"))
        fl = floor_bytes(B, T, H, K) / (rate * 1e9) * 1e3
        print("(%d, %d, %d, %d): floor %.3f ms (%.2f GB at %.0f GB/s)" % (B, T, H, K, fl, floor_bytes(B, T, H, K) / 1e9, rate))
        for ld_kind in ("rwkv7", "fallback"):
            d = make(B, T, H, K, 5, ld_kind)
            args = ("adj", "key", 64, K, K, d["q"], d["u"], d["w"], d["kk"], d["vv"], d["dy"], d["ld"], d["R"], d["S0"], d["SF"], d["LE"], d["DR"], B, T, H)
            outs, graphs, ents = {}, {}, {}
            for way in ("bf16", "bf16f"):
                db.KEY_MMA = way
                o = launch(*args)
                torch.cuda.synchronize()
                outs[way] = o
                ents[way] = db.delta_pick(km.kernels, "adj", "key", 64, K, K, "bf16", way)
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    launch(*args)
                torch.cuda.current_stream().wait_stream(s)
                gr = torch.cuda.CUDAGraph()
                with torch.cuda.graph(gr):
                    for _ in range(a.kreps):
                        launch(*args)
                graphs[way] = gr
            db.KEY_MMA = "bf16"
            times = {w: [] for w in graphs}
            for _ in range(5):
                for w, gr in graphs.items():
                    gr.replay()
                    torch.cuda.synchronize()
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    gr.replay()
                    e1.record()
                    torch.cuda.synchronize()
                    times[w].append(e0.elapsed_time(e1) / a.kreps)
            names = ("dQ", "dU", "dW", "dK", "dV", "dLD")
            diff = {n: ((x.float() - y.float()).abs().max() / y.float().abs().max().clamp_min(1e-30)).item() for n, x, y in zip(names, outs["bf16f"], outs["bf16"])}
            finite = all(torch.isfinite(x).all().item() for x in outs["bf16f"])
            row = {"shape": [B, T, H, K], "ld": ld_kind, "floor_ms": fl, "ms": {w: statistics.median(v) for w, v in times.items()},
                   "entries": {w: (e or {}).get("entry") for w, e in ents.items()}, "diff_vs_bf16": diff, "finite": finite}
            res.append(row)
            print("(%d, %d, %d, %d) ld %-8s bf16 twin %.3f ms, factored %.3f ms (%.2fx), floor %.3f; %s; factored vs bf16 twin: %s%s" % (
                B, T, H, K, ld_kind, row["ms"]["bf16"], row["ms"]["bf16f"], row["ms"]["bf16"] / row["ms"]["bf16f"], fl,
                " / ".join(str(e) for e in row["entries"].values()), " ".join("%s %.1e" % kv for kv in diff.items()), "" if finite else " NON-FINITE"))
            del graphs, outs, d
            torch.cuda.empty_cache()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    print("\nshape | ld | floor ms | bf16 twin ms | factored ms | speedup | max rel diff")
    for r in res:
        print("%s | %s | %.3f | %.3f | %.3f | %.2fx | %.1e" % (tuple(r["shape"]), r["ld"], r["floor_ms"], r["ms"]["bf16"], r["ms"]["bf16f"], r["ms"]["bf16"] / r["ms"]["bf16f"], max(r["diff_vs_bf16"].values())))


if __name__ == "__main__":
    main()
