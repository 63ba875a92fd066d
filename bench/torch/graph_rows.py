"""GLA's transposed products (dq = S dy in forward time, dk = G v in reversed time) on the rows readout kernel
(runtime/torch/seqc_chunked.py PER_KEY_TRANSPOSED "kernel", compiler/backends/cuda/rows-readout.ts), one segment (the
plain walk, ROWS_SEGMENT 0) against segments walked in parallel (ROWS_SEGMENT None or a length), in one process (issue 6).

kernel: the primitive alone at (B, T, H, K = V) = (8, 2048, 16, 64), one pair and one readout, an initial state: every
  tile configuration of the module in one segment, in the automatic segments and at fixed segment lengths (64 .. 512
  tokens), and the torch-ops path, each in fp32 against rows_decayed_readout in float64 (GLA's range of log decays,
  logsigmoid(randn) / 4, and a stress case with decays uniform in [-20, 0]); GPU time (CUDA events, median of 20) beside
  the floor (bytes at 3.35 TB/s, FMAs at 67 TFLOP/s fp32). The fastest (tile, segment) of the GLA range is kept for timing.
accuracy: bf16_run.accuracy per variant (bf16 gradients vs seqc's float64 kernels, limit 1e-2).
timing: the bf16 and fp32 steps (forward + loss + backward) with CUDA graphs per variant (one segment = the old path,
  automatic segments = the new default, the fastest alone where it differs), two interleaved rounds (the better kept);
  per variant in round 0 an eager step's GPU time (graph_bench.gpu_only) and the two readouts' GPU time in an eager
  step; the gradients of the variants compared; fla chunk_gla (bf16) beside; then a torch profiler table of one eager
  bf16 step of the new default (the step's parts by GPU time).

  python3 bench/torch/graph_rows.py <modules dir> [--out rows.json] [--only kernel,accuracy,timing] [--profile file]
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
import train_bench as tb  # noqa: E402
import chunked_bench as cb  # noqa: E402
import graph_bench as gb  # noqa: E402
import bf16_run as br  # noqa: E402

DEV = tb.DEV
# (name, seqc_chunked switches): one segment (the default), automatic segments
VARIANTS = [("1seg", {"PER_KEY_TRANSPOSED": "kernel", "ROWS_SEGMENT": 0, "ROWS_TILE": None}),
            ("segs", {"PER_KEY_TRANSPOSED": "kernel", "ROWS_SEGMENT": None, "ROWS_TILE": None})]
DEFAULTS = {"PER_KEY_TRANSPOSED": "kernel", "ROWS_SEGMENT": 0, "ROWS_TILE": None}
FIXED_SEGMENTS = (64, 128, 256, 512)


def switch(sc, settings):
    for k, v in settings.items():
        setattr(sc, k, v)
HBM = 3.35e12  # H100 SXM bytes/s
FP32 = 67e12  # H100 SXM fp32 FMA flop/s (non-tensor)


def events(fn, reps=20):
    out = []
    for _ in range(reps):
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        ev[0].record()
        fn()
        ev[1].record()
        ev[1].synchronize()
        out.append(ev[0].elapsed_time(ev[1]))
    return statistics.median(out)


def kernel_alone(root, log, res):
    sm = cb.seqc_model(root, "gla", "chunked")
    import seqc_chunked as sc
    km = sc.module_kernels(sm, DEV, "rowsReadout")
    B, T, H, K = tb.LA_SHAPE
    V = K
    floor_bytes = 4 * B * T * H * (2 * K + 2 * V + K)  # ld, a, b, c read once, out written once (fp32)
    floor_flops = 2 * 3 * B * T * H * K * V  # per token and key row: V for the decay, V for the update, V for the readout
    floor_ms = max(floor_bytes / HBM, floor_flops / FP32) * 1e3
    rows = []
    for label, stress in (("gla range", False), ("decays in [-20, 0]", True)):
        g = torch.Generator(device=DEV).manual_seed(21 + stress)
        rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
        ld = (-20 * torch.rand(B, T, H * K, device=DEV, generator=g)) if stress else F.logsigmoid(rn(B, T, H * K)) / 4
        a, b, c = rn(B, T, H * K) / K ** 0.5, rn(B, T, H * V), rn(B, T, H * V)
        S0 = rn(B, H * K * V) * 0.1
        ref = sc.rows_decayed_readout(ld.double(), [(a.double(), b.double())], [c.double()], S0.double(), B, T, H, K, V, torch.float64, DEV)[0]
        ways = [("matmul fp32", None, None, lambda: sc.rows_decayed_readout(ld, [(a, b)], [c], S0, B, T, H, K, V, torch.float32, DEV))]
        for k in km.kernels:
            if k["pairs"] == 1 and k["readouts"] == 1:
                tile = k["entry"].split("_r1_")[1]
                for seg in (0, None) + FIXED_SEGMENTS:
                    used = sc.rows_segment(k, B, T, H, K, V, km.info["multiprocessors"], seg)
                    ways.append(("kernel %s seg %s" % (tile, "auto=%d" % used if seg is None else seg or "1x%d" % T), tile, seg,
                                 (lambda tile, seg: lambda: sc.rows_readout_kernel(km, ld, [(a, b)], [c], S0, B, T, H, K, V, tile=tile, segment=seg))(tile, seg)))
        for name, tile, seg, fn in ways:
            try:
                out = fn()[0]
                torch.cuda.synchronize()
                err = tb.rel(out, ref)
                finite = bool(torch.isfinite(out).all())
                ms = events(fn, 20 if stress is False else 3)
                row = {"case": label, "way": name, "tile": tile, "segment": seg, "rel_vs_f64": err, "finite": finite, "ms": ms, "floor_ms": floor_ms}
            except Exception as e:  # noqa: BLE001
                row = {"case": label, "way": name, "error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            rows.append(row)
            log("kernel alone [%s] %s: %s" % (label, name, "rel %.1e finite %s %.3f ms (floor %.3f: %.0f MB, %.1f GFLOP)" % (
                row["rel_vs_f64"], row["finite"], row["ms"], floor_ms, floor_bytes / 1e6, floor_flops / 1e9) if "ms" in row else row["error"]))
        del ref
        tb.free_all()
    res["kernel"] = rows
    ok = [r for r in rows if r["case"] == "gla range" and r.get("tile") and r.get("finite") and r["rel_vs_f64"] < 1e-5]
    if ok:
        best = min(ok, key=lambda r: r["ms"])
        res["best_alone"] = {"tile": best["tile"], "segment": best["segment"], "ms": best["ms"], "way": best["way"]}
        log("fastest alone: %s %.3f ms" % (best["way"], best["ms"]))


def accuracy(root, log, res):
    cb.seqc_model(root, "gla", "auto")
    import seqc_chunked as sc
    br.accuracy(root, "gla", log, res, [(name, (lambda st: lambda: switch(sc, st))(st)) for name, st in VARIANTS])
    switch(sc, DEFAULTS)


def readout_ms(sc, one):
    """GPU ms of the two transposed products in one eager step (CUDA events around each readout call)."""
    marks = []
    orig = {"rows_readout_kernel": sc.rows_readout_kernel, "rows_decayed_readout": sc.rows_decayed_readout}

    def wrap(f):
        def w(*a, **kw):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ev[0].record()
            r = f(*a, **kw)
            ev[1].record()
            marks.append(ev)
            return r
        return w
    for n, f in orig.items():
        setattr(sc, n, wrap(f))
    try:
        one()
        torch.cuda.synchronize()
    finally:
        for n, f in orig.items():
            setattr(sc, n, f)
    return [ev[0].elapsed_time(ev[1]) for ev in marks]


def timing(args, root, log, res):
    B, T, H, K, row, x, cot = cb.la_case("gla")
    sm = cb.seqc_model(root, "gla", "chunked")
    import seqc_chunked as sc
    x16 = {n: v.to(torch.bfloat16) for n, v in x.items()}
    grads = {}
    variants = list(VARIANTS)
    best = res.get("best_alone")
    if best:  # the fastest alone, where it is neither the one-segment nor the automatic default
        km = sc.module_kernels(sm, DEV, "rowsReadout")
        first = next(k["entry"].split("_r1_")[1] for k in km.kernels if k["pairs"] == 1 and k["readouts"] == 1)
        if not (best["tile"] == first and best["segment"] in (0, None)):
            variants.append(("best", {"PER_KEY_TRANSPOSED": "kernel", "ROWS_SEGMENT": best["segment"], "ROWS_TILE": best["tile"]}))
    row["variants"] = {n: st for n, st in variants}
    paths = [n for n, _ in variants]
    runs = [(p, n, st) for p in ("bf16", "fp32") for n, st in variants]
    for rnd in range(2):
        for prec, path, st in runs:
            xs = x16 if prec == "bf16" else x
            switch(sc, st)
            one, leaves = cb.seqc_step(sm, xs, cot.to(xs["q"].dtype))
            tag = "seqc_%s_%s" % (prec, path)
            sm.graphs = True
            for _ in range(5):
                one()
            torch.cuda.synchronize()
            t = tb.timed(one, 1, args.reps, args.cap_s)
            r = row.setdefault(tag, {"ms_rounds": []})
            r["ms_rounds"].append(t["ms"])
            r["ms"] = min(r["ms_rounds"])
            r["fwd_ms"] = t["fwd_ms"]
            if rnd == 0:
                one()
                grads[tag] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
                sm.graphs = False
                one()
                r["gpu_ms"] = gb.gpu_only(one)
                r["readouts_ms"] = readout_ms(sc, one)
                sm.graphs = True
            log("gla round %d: %s graphs %.3f ms (fwd %.3f); eager gpu-only %.3f; readouts %s" % (
                rnd, tag, t["ms"], t["fwd_ms"], r["gpu_ms"], " + ".join("%.3f" % v for v in r["readouts_ms"])))
            del one, leaves
            sm._seqc_graphs.clear()
            tb.free_all()
    switch(sc, DEFAULTS)
    row["vs_1seg_rel"] = {"%s %s" % (p, v): {"d" + n: tb.rel(grads["seqc_%s_%s" % (p, v)][n], grads["seqc_%s_1seg" % p][n]) for n in grads["seqc_fp32_1seg"]} for p in ("bf16", "fp32") for v in paths[1:]}
    log("gla: grads vs the one-segment path %s" % row["vs_1seg_rel"])
    fn = tb.anchor_fn("gla", K)
    row["anchor_name"] = tb.ANCHOR_NAME["gla"]
    la = {n: v.to(torch.bfloat16).requires_grad_(True) for n, v in x.items()}
    cot16 = cot.to(torch.bfloat16)

    def fa():
        o = fn(la)
        return (o.float() * cot16.float()).sum(), o
    one_a = tb.step_fn(fa, list(la.values()))
    try:
        one_a()
        torch.cuda.synchronize()
        row["anchor"] = tb.timed(one_a, 2, args.reps, args.cap_s)
        row["anchor"]["gpu_ms"] = gb.gpu_only(one_a)
        row["bf16_vs_anchor_rel"] = {p: max(tb.rel(grads["seqc_bf16_%s" % p][n], la[n].grad.float()) for n in la) for p in paths}
        log("gla anchor (%s): %.3f ms (gpu-only %.3f); bf16 grads vs the anchor's %s" % (row["anchor_name"], row["anchor"]["ms"], row["anchor"]["gpu_ms"], row["bf16_vs_anchor_rel"]))
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
        log("gla anchor error %s" % row["anchor_error"])
    res["timing"].append(row)
    a = row.get("anchor")
    for prec in ("bf16", "fp32"):
        for path in paths:
            r = row["seqc_%s_%s" % (prec, path)]
            log("SUMMARY gla %s %-5s graphs %.3f ms (rounds %s) gpu-only %.3f readouts %.3f ms anchor/seqc %s" % (
                prec, path, r["ms"], ", ".join("%.3f" % v for v in r["ms_rounds"]), r["gpu_ms"], sum(r["readouts_ms"]), "%.2f" % (a["ms"] / r["ms"]) if a else "-"))
    tb.free_all()
    if args.profile:
        try:
            profile(sm, sc, x16, cot, args.profile, log, res)
        except Exception as e:  # noqa: BLE001
            res["profile_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
            log("profile error %s" % res["profile_error"])


def profile(sm, sc, x16, cot, path, log, res):
    """One eager bf16 step of the default under the torch profiler: its GPU kernels by total time (the step's parts)."""
    from torch.profiler import profile as prof, ProfilerActivity
    switch(sc, DEFAULTS)
    one, _ = cb.seqc_step(sm, x16, cot.to(torch.bfloat16))
    sm.graphs = False
    for _ in range(3):
        one()
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        one()
        torch.cuda.synchronize()
    sm.graphs = True
    DT = torch.autograd.DeviceType.CUDA
    tot = lambda e: getattr(e, "self_device_time_total", None) if hasattr(e, "self_device_time_total") else e.self_cuda_time_total  # noqa: E731
    ev = [e for e in p.key_averages() if getattr(e, "device_type", None) == DT]
    rows = sorted(({"name": e.key[:120], "count": e.count, "ms": tot(e) / 1e3} for e in ev), key=lambda r: -r["ms"])
    res["profile"] = {"total_ms": sum(r["ms"] for r in rows), "kernels": rows[:40]}
    with open(path, "w") as f:
        for r in rows:
            f.write("%9.3f ms  x%-4d %s\n" % (r["ms"], r["count"], r["name"]))
    log("profile of one eager bf16 step (default): GPU kernels %.3f ms in all; top: %s" % (res["profile"]["total_ms"], "; ".join("%s x%d %.3f" % (r["name"][:60], r["count"], r["ms"]) for r in rows[:14])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--out")
    ap.add_argument("--only", default="kernel,accuracy,timing")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cap-s", type=float, default=2.0)
    ap.add_argument("--profile", help="write a torch profiler table of one eager bf16 step here (after timing)")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "kernel": [], "accuracy": [], "timing": []}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)

    def save():
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
    for what in args.only.split(","):
        if what == "timing" and not getattr(main, "patched", False):
            tb.patch_autotune(None, 6)
            main.patched = True
        try:
            {"kernel": lambda: kernel_alone(root, log, res), "accuracy": lambda: accuracy(root, log, res), "timing": lambda: timing(args, root, log, res)}[what]()
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res.setdefault("errors", []).append({"what": what, "error": "%s: %s" % (type(e).__name__, str(e)[:400])})
            tb.free_all()
        save()
    bad = [r for r in res["accuracy"] if not r.get("ok")]
    log("accuracy rows %d, failed %d" % (len(res["accuracy"]), len(bad)))


if __name__ == "__main__":
    sys.exit(main())
