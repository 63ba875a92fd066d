"""Where a training step of seqc's chunked backward spends its time (issue 6): host vs GPU, per plan.

Per model at the bench shape (bench/torch/train_bench.py LA_SHAPE), one step = forward + loss + backward as in
chunked_bench.py, with the plan runner's form choice (seqc_cuda.PlanRunner.pick) uncached (as before the
cache: every form's vars evaluated per execute) and cached:
  - step ms (CUDA events, median) and the host time to enqueue one step (wall clock of the Python call with the
    GPU idle before it, synchronized after);
  - torch.profiler (CPU + CUDA activity) of 3 cached steps: the GPU time of every kernel (seqc's kernels come
    through the driver API and show by entry name, torch's glue kernels by theirs), the GPU busy time per step,
    and per plan (record_function around SeqcModel.execute) its host time;
  - cProfile of one cached step: the Python functions with the most cumulative time.

  python3 bench/torch/chunked_profile.py <modules dir> [--models simple_gla,gla,mamba2] [--out profile.json]
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402
import chunked_bench as cb  # noqa: E402

DEV = tb.DEV


def host_ms(one, n=5):
    """Wall ms of the Python call of one step with the GPU idle before it (enqueue cost), and to completion."""
    enq, full = [], []
    for _ in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        one()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        enq.append((t1 - t0) * 1e3)
        full.append((t2 - t0) * 1e3)
    return statistics.median(enq), statistics.median(full)


def profile_case(root, model, log):
    B, T, H, K = tb.LA_SHAPE
    if model == "mamba2":
        H = tb.MAMBA2_HEADS
    x = tb.la_inputs(model, B, T, H, K, 7)
    g = torch.Generator(device=DEV).manual_seed(8)
    cot = torch.randn(B, T, H, K, device=DEV, generator=g)
    smc = cb.seqc_model(root, model, "chunked")
    import seqc_cuda as C
    one, _ = cb.seqc_step(smc, x, cot)
    one()
    torch.cuda.synchronize()
    row = {"model": model, "B": B, "T": T, "H": H, "K": K}
    cached_pick = C.PlanRunner.pick

    def uncached(self, dims, B, T, choice="auto"):
        return self._pick_uncached(dims, B, T, choice)
    for mode in ("uncached", "cached"):
        C.PlanRunner.pick = uncached if mode == "uncached" else cached_pick
        t = tb.timed(one, 2, 10, 3.0)
        enq, full = host_ms(one)
        row[mode] = {"ms": t["ms"], "fwd_ms": t["fwd_ms"], "host_enqueue_ms": enq, "host_to_done_ms": full}
        ph, _ = cb.phases(smc, one)
        row[mode]["phases_ms"] = ph
        log("%s %s: step %.2f ms (fwd %.2f), enqueue %.2f ms, to done %.2f ms; phases %s" % (
            model, mode, t["ms"], t["fwd_ms"], enq, full, ", ".join("%s %.2f" % kv for kv in ph.items())))
    C.PlanRunner.pick = cached_pick

    # torch.profiler over 3 steps, plans marked
    orig = smc.execute

    def marked(key, *a, **kw):
        with torch.profiler.record_function("plan " + key):
            return orig(key, *a, **kw)
    smc.execute = marked
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            one()
        torch.cuda.synchronize()
    del smc.execute
    kern, plans = {}, {}
    busy = 0.0
    for e in prof.events():
        if e.name.startswith("plan "):
            plans[e.name[5:]] = plans.get(e.name[5:], 0.0) + e.cpu_time_total / 1e3 / 3
    for ka in prof.key_averages():
        d = getattr(ka, "device_time_total", None)
        if d is None:
            d = getattr(ka, "cuda_time_total", 0)
        self_d = getattr(ka, "self_device_time_total", None)
        if self_d is None:
            self_d = getattr(ka, "self_cuda_time_total", 0)
        if self_d and self_d > 0 and not ka.key.startswith("plan "):
            kern[ka.key] = {"gpu_ms_per_step": self_d / 1e3 / 3, "calls_per_step": ka.count / 3}
            busy += self_d / 1e3 / 3
    row["kernels"] = dict(sorted(kern.items(), key=lambda kv: -kv[1]["gpu_ms_per_step"]))
    row["gpu_busy_ms_per_step"] = busy
    row["plan_host_ms_per_step"] = plans
    log("%s: GPU busy %.2f ms/step (step %.2f ms); plan host ms %s" % (model, busy, row["cached"]["ms"], ", ".join("%s %.2f" % kv for kv in plans.items())))
    for k, v in list(row["kernels"].items())[:14]:
        log("   %8.3f ms x%4.1f  %s" % (v["gpu_ms_per_step"], v["calls_per_step"], k[:110]))

    pr = cProfile.Profile()
    torch.cuda.synchronize()
    pr.enable()
    one()
    torch.cuda.synchronize()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18)
    row["cprofile_tottime"] = s.getvalue()
    log("%s cProfile (tottime):\n%s" % (model, "\n".join(s.getvalue().splitlines()[:40])))
    del one, x
    tb.free_all()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--models", default="simple_gla,gla,mamba2")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    root = os.path.abspath(args.modules)
    t0 = time.time()

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
    for m in args.models.split(","):
        try:
            res["rows"].append(profile_case(root, m, log))
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res["rows"].append({"model": m, "error": str(e)[:500]})
        if args.out:
            json.dump(res, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
