"""PyTorch anchors for the CUDA bench, run on the GPU machine after check.ts in the same call:
copy bandwidth, torch.nn.LSTM / torch.nn.GRU (cuDNN, fp32 with TF32 off, and torch's default), naive
PyTorch loops over time (the floor), and a float64 check of seqc's outputs at the benchmark shapes
(inputs and seqc's outputs were written by check.ts to $SEQC_BENCH_DIR). Writes $OUT/torch.json."""
import json, os, statistics, time
import numpy as np
import torch

OUT = os.environ.get("OUT", "out")
D = os.environ.get("SEQC_BENCH_DIR", "/tmp/seqc-bench")
dev = "cuda"
res = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(0), "rows": [], "errors": {}}


def load(name, shape):
    return torch.from_numpy(np.fromfile(os.path.join(D, name + ".f32"), dtype=np.float32).reshape(shape))


def timed(fn, reps=10, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    return statistics.median(ms), ms


def rel(a, ref):
    a, ref = a.double().flatten(), ref.double().flatten()
    if torch.isnan(a).any():
        return float("inf")
    return float(torch.linalg.vector_norm(a - ref) / torch.linalg.vector_norm(ref))


# ---- copy bandwidth ----
n = 1 << 28
x = torch.rand(n, device=dev)
y = torch.empty_like(x)
ms, all_ms = timed(lambda: y.copy_(x), reps=20)
res["rows"].append({"name": "copy", "variant": "torch copy_ 1 GiB", "ms": ms, "gbps": 2 * n * 4 / (ms * 1e6), "all": all_ms})
del x, y

# ---- hgrn: naive loop (floor) and float64 check of seqc's scan ----
B, Dm, T = 8, 1536, 16384
if os.path.exists(os.path.join(D, "hgrn.x.f32")):
    xs = load("hgrn.x", (B, T, Dm)).to(dev)
    gs = load("hgrn.g", (B, T, Dm)).to(dev)

    def hgrn_loop(xs, gs):
        h = torch.zeros(B, Dm, device=dev, dtype=xs.dtype)
        o = torch.empty_like(xs)
        a = gs.exp()
        for t in range(T):
            h = a[:, t] * h + xs[:, t]
            o[:, t] = h
        return o

    with torch.no_grad():
        ms, all_ms = timed(lambda: hgrn_loop(xs, gs), reps=3, warm=1)
        res["rows"].append({"name": "hgrn", "variant": "naive torch loop fp32", "ms": ms, "gbps": 3 * B * T * Dm * 4 / (ms * 1e6), "all": all_ms})
        ref = hgrn_loop(xs.double(), gs.double())
        if os.path.exists(os.path.join(D, "hgrn.out.o.f32")):
            res["errors"]["hgrn B=8 D=1536 T=16384 (scan vs fp64)"] = rel(load("hgrn.out.o", (B, T, Dm)).to(dev), ref)
    del xs, gs, ref

# ---- lstm / gru: cuDNN fp32 (TF32 off), cuDNN default, naive loop; fp64 check ----
def cell(kind, T, B, H):
    G = 4 if kind == "lstm" else 3
    tag = f"{kind}_T{T}_B{B}_H{H}"
    if not os.path.exists(os.path.join(D, tag + ".x.f32")):
        return
    x = load(tag + ".x", (B, T, H)).transpose(0, 1).contiguous().to(dev)  # torch layout [T, B, I]
    w = {n: load(f"{tag}.{n}", s).to(dev) for n, s in [("weight_ih_l0", (G * H, H)), ("weight_hh_l0", (G * H, H)), ("bias_ih_l0", (G * H,)), ("bias_hh_l0", (G * H,))]}
    mod = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(H, H).to(dev)
    with torch.no_grad():
        for n, v in w.items():
            getattr(mod, n).copy_(v)
        shape = f"T={T} B={B} H={H} I={H}"
        for tf32 in (False, True):
            torch.backends.cudnn.allow_tf32 = tf32
            ms, all_ms = timed(lambda: mod(x), reps=10)
            res["rows"].append({"name": kind, "variant": f"cuDNN fp32{' (TF32 on, torch default)' if tf32 else ''}", "shape": shape, "ms": ms, "all": all_ms})
        torch.backends.cudnn.allow_tf32 = False
        Wi, Wh, bi, bh = w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]

        def loop():
            xp = torch.addmm(bi, x.reshape(T * B, H), Wi.t()).reshape(T, B, G * H)
            h = torch.zeros(B, H, device=dev)
            c = torch.zeros(B, H, device=dev)
            out = torch.empty(T, B, H, device=dev)
            for t in range(T):
                hh = torch.addmm(bh, h, Wh.t())
                if kind == "lstm":
                    i, f, g, o = (xp[t] + hh).chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                else:
                    xr, xz, xn = xp[t].chunk(3, 1)
                    hr, hz, hn = hh.chunk(3, 1)
                    r = torch.sigmoid(xr + hr)
                    z = torch.sigmoid(xz + hz)
                    n_ = torch.tanh(xn + r * hn)
                    h = (1 - z) * n_ + z * h
                out[t] = h
            return out

        ms, all_ms = timed(loop, reps=3, warm=1)
        res["rows"].append({"name": kind, "variant": "naive torch loop fp32", "shape": shape, "ms": ms, "all": all_ms})
        mod64 = mod.double()
        ref, _ = mod64(x.double())
        ours = load(tag + ".out.output", (B, T, H)).transpose(0, 1).to(dev)
        res["errors"][f"{kind} {shape} (persistent vs fp64 torch)"] = rel(ours, ref)
        cud, _ = mod.float()(x)
        res["errors"][f"{kind} {shape} (cuDNN fp32 vs fp64 torch)"] = rel(cud, ref)


for kind in ("lstm", "gru"):
    cell(kind, 2048, 64, 256)
    cell(kind, 1024, 16, 1024)

json.dump(res, open(os.path.join(OUT, "torch.json"), "w"), indent=1)
for r in res["rows"]:
    print(f"torch {r['name']:5s} {r['variant']:40s} {r.get('shape', ''):26s} {r['ms']:9.3f} ms" + (f"  {r['gbps']:.0f} GB/s" if "gbps" in r else ""))
for k, v in res["errors"].items():
    print(f"fp64 check: {k}: rel {v:.2e}")
