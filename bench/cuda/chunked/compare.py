"""After anchors.py and check.ts bench: per (model, shape) seqc's fastest bf16 variant (auto's pick where the bench
marked it) beside its anchor,
both checked against a float64 recurrence on a slice (batch 0, heads 0 and 1, the first 512 steps, which
depend on nothing later), plus the IO floor (inputs read once, output and final state written once, at
the copy rate measured in the same run). Prints the table and writes $OUT/chunked-summary.json."""
import json, os
import numpy as np
import torch

DIR = os.environ.get("SEQC_CHUNK_DIR", "/dev/shm/seqc-chunk")
OUT = os.environ.get("OUT", "out")
dev = "cuda"
TS = 512


def load(name, shape):
    return torch.from_numpy(np.fromfile(os.path.join(DIR, name), dtype=np.int16)).to(dev).view(torch.bfloat16).view(*shape)


def naive(model, x, p, K):
    """Float64 recurrence of the stdlib model on x (each [T, H', ...] for batch 0), outputs [T, H', V]."""
    d = {n: t.double() for n, t in x.items()}
    T, Hs = next(iter(d.values())).shape[:2]
    if model == "mamba2":
        P, N = d["x"].shape[-1], d["B"].shape[-1]
        h = torch.zeros(Hs, P, N, dtype=torch.float64, device=dev)
        A, D = p["A"][:Hs].double(), p["D"][:Hs].double()
        ys = []
        for t in range(T):
            dt = d["dt"][t]
            h = torch.exp(dt * A)[:, None, None] * h + (dt[:, None] * d["x"][t])[:, :, None] * d["B"][t][:, None, :]
            ys.append((h * d["C"][t][:, None, :]).sum(-1) + D[:, None] * d["x"][t])
        return torch.stack(ys)
    V = d["v"].shape[-1]
    S = torch.zeros(Hs, K, V, dtype=torch.float64, device=dev)
    ys = []
    for t in range(T):
        if model == "simple_gla":
            S = torch.exp(d["g"][t])[:, None, None] * S + d["k"][t][:, :, None] * d["v"][t][:, None, :]
            q = d["q"][t] * K ** -0.5
        elif model == "gla":
            S = torch.exp(d["gk"][t])[:, :, None] * S + d["k"][t][:, :, None] * d["v"][t][:, None, :]
            q = d["q"][t] * K ** -0.5
        elif model in ("deltanet", "gated_deltanet"):
            if model == "gated_deltanet":
                S = torch.exp(d["g"][t])[:, None, None] * S
            k = d["k"][t]
            u = d["beta"][t][:, None] * (d["v"][t] - (S * k[:, :, None]).sum(1))
            S = S + k[:, :, None] * u[:, None, :]
            q = d["q"][t] * K ** -0.5
        elif model == "rwkv7":
            aS = (d["a"][t][:, :, None] * S).sum(1)
            S = torch.exp(d["w"][t])[:, :, None] * S + d["k"][t][:, :, None] * d["v"][t][:, None, :] + d["b"][t][:, :, None] * aS[:, None, :]
            q = d["r"][t]
        ys.append((q[:, :, None] * S).sum(1))
    return torch.stack(ys)


def rel(a, ref):
    a, ref = a.double().flatten(), ref.double().flatten()
    if not torch.isfinite(a).all():
        return float("inf")
    return float(torch.linalg.vector_norm(a - ref) / torch.linalg.vector_norm(ref))


index = json.load(open(os.path.join(DIR, "index.json")))
anchors = json.load(open(os.path.join(OUT, "anchors.json"))) if os.path.exists(os.path.join(OUT, "anchors.json")) else {"rows": []}
bench = json.load(open(os.path.join(OUT, "chunked-bench.json"))) if os.path.exists(os.path.join(OUT, "chunked-bench.json")) else {"rows": []}
gbps = anchors.get("copy_gbps", 3000.0)
rows = []
for meta in index:
    model, tag, B, T, dims = meta["model"], meta["shape"], meta["B"], meta["T"], meta["dims"]
    H = dims["H"]
    K = dims.get("K", dims.get("N"))
    V = dims.get("V", dims.get("P"))
    ours = [r for r in bench["rows"] if r["model"] == model and r["shape"] == tag and r["ms"] == r["ms"]]
    fastest = min(ours, key=lambda r: r["ms"]) if ours else None
    # a bench with auto's pick marked (SEQC_BENCH_AUTO_ONLY=1): seqc's time is auto's, the fastest is kept beside it
    best = next((r for r in ours if r.get("auto")), fastest)
    anc = next((r for r in anchors["rows"] if r["model"] == model and r["shape"] == tag), None)
    nbytes = sum(os.path.getsize(os.path.join(DIR, f)) for f in meta["inputs"].values()) + B * T * H * V * 2 + B * H * K * V * 4
    row = {"model": model, "shape": tag, "B": B, "T": T, "H": H, "K": K, "V": V, "floor_ms": nbytes / (gbps * 1e6),
           "seqc_ms": best["ms"] if best else None, "seqc_variant": best["variant"] if best else None,
           "fastest_ms": fastest["ms"] if fastest else None, "fastest_variant": fastest["variant"] if fastest else None,
           "anchor_ms": anc.get("ms") if anc else None, "anchor_error": anc.get("error") if anc else "not run"}
    x = {n: load(f, (B, T, H, -1))[0, :TS, :2] for n, f in meta["inputs"].items()}
    x = {n: (t.squeeze(-1) if t.shape[-1] == 1 else t) for n, t in x.items()}
    p = {n: torch.from_numpy(np.fromfile(os.path.join(DIR, f), dtype=np.float32)).to(dev) for n, f in meta["params"].items()}
    ref = naive(model, x, p, K)
    for who, fname in (("seqc", f"{model}-{tag}.seqc.bin"), ("anchor", f"{model}-{tag}.anchor.bin")):
        if os.path.exists(os.path.join(DIR, fname)):
            o = load(fname, (B, T, H, V))
            row[f"{who}_err_slice"] = rel(o[0, :TS, :2], ref)
            row[f"{who}_finite"] = bool(torch.isfinite(o.float()).all())
            if who == "anchor" and os.path.exists(os.path.join(DIR, f"{model}-{tag}.seqc.bin")):
                row["seqc_vs_anchor"] = rel(load(f"{model}-{tag}.seqc.bin", (B, T, H, V)), o)
    rows.append(row)
json.dump({"copy_gbps": gbps, "rows": rows, "device": anchors.get("device")}, open(os.path.join(OUT, "chunked-summary.json"), "w"), indent=1)
print(f"\n{'model':15s} {'shape':26s} {'floor':>7s} {'anchor':>8s} {'seqc':>8s} {'x anchor':>8s} {'seqc/floor':>10s} {'err seqc':>9s} {'err anch':>9s} {'s vs a':>8s}  variant")
for r in rows:
    sh = f"B={r['B']} T={r['T']} H={r['H']} K={r['K']}"
    f = lambda v, d=3: f"{v:.{d}f}" if isinstance(v, (int, float)) and v == v else "-"
    e = lambda v: f"{v:.1e}" if isinstance(v, float) else "-"
    sp = r["anchor_ms"] / r["seqc_ms"] if r["anchor_ms"] and r["seqc_ms"] else None
    print(f"{r['model']:15s} {sh:26s} {f(r['floor_ms'])} {f(r['anchor_ms'])} {f(r['seqc_ms'])} {f(sp, 2):>8s} {f(r['seqc_ms'] / r['floor_ms'] if r['seqc_ms'] else None, 2):>10s} {e(r.get('seqc_err_slice')):>9s} {e(r.get('anchor_err_slice')):>9s} {e(r.get('seqc_vs_anchor')):>8s}  {r['seqc_variant'] or r.get('anchor_error') or ''}"
          + (f"  (fastest {r['fastest_variant']} {r['fastest_ms']:.3f}: x anchor {r['anchor_ms'] / r['fastest_ms']:.2f})" if r.get("fastest_variant") and r["fastest_variant"] != r["seqc_variant"] and r["anchor_ms"] else ""))
