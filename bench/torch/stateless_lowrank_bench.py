"""The delta family's stateless parts (prep, prep's and post's backward) with their float32 forms and with their
bf16-input twins (seqc_chunked_lowrank.LR_STATELESS "f32" / "twins"), bf16 tensors, in one process (issue 6):
  - floors: the bytes each part's picked form binds (inputs read, outputs written; bf16 inputs 2 bytes) at the copy rate
    measured here;
  - per model, per setting, one eager step under torch.profiler: the CUDA time of each part's kernels (by name), of
    aten::copy_, and the step's self total;
  - the twins' trial times (seqc_chunked.TRIALS: every bf16 form of each part, best of two) and the forms picked;
  - the whole step (fwd+bwd), CUDA events, eager and with graphs, the two settings interleaved, median of the reps;
  - the gradients of "twins" against "f32" (max relative difference over the inputs).
  python3 bench/torch/stateless_lowrank_bench.py MODULES [--models deltanet,gated_deltanet,rwkv7] [--shape 8x2048x16x64]
      [--reps 10] [--out DIR]
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowrank_bench as lb  # noqa: E402  (inputs, seqc_model, seqc_step, switches, drop_graphs)
import train_bench as tb  # noqa: E402  (copy_rate, free_all)

PARTS = {"prep": "__prep_seq_", "prepBw": "__prep__backward_seq_", "postBw": "__post__backward_seq_"}
SETTINGS = ("f32", "twins")


def self_ms(e):
    t = getattr(e, "self_device_time_total", None)
    return (getattr(e, "self_cuda_time_total", 0) if t is None else t) / 1000.0


def profiled(one, lr):
    """One eager step (LR_GRAPHS off) under torch.profiler: {part: (ms, [kernel names])}, copy_ ms, self total ms, the table."""
    from torch.profiler import ProfilerActivity, profile
    old = lr.LR_GRAPHS
    lr.LR_GRAPHS = False
    try:
        one()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            one()
            torch.cuda.synchronize()
    finally:
        lr.LR_GRAPHS = old
    ka = p.key_averages()
    parts = {k: [0.0, []] for k in PARTS}
    copy, total = 0.0, 0.0
    for e in ka:
        ms = self_ms(e)
        if e.key == "aten::copy_":
            copy = ms
        if e.key.startswith(("aten::", "Seqc", "Activity", "cuda", "Memcpy", "Memset")):
            if e.key.startswith(("Memcpy", "Memset")):
                total += ms
            continue
        total += ms
        for part, pat in PARTS.items():
            if pat in e.key:
                parts[part][0] += ms
                parts[part][1].append("%s %.4f" % (e.key, ms))
    try:
        table = ka.table(sort_by="self_device_time_total", row_limit=40, max_name_column_width=70)
    except Exception:  # noqa: BLE001  (older torch)
        table = ka.table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=70)
    return parts, copy, total, table


def floor_ms(m, part, variant, dims, B, T, rate, low):
    """GB/s rate: the ms to read the inputs the form's launches bind (bf16 where the form reads them so, with `low`) and
    write the outputs they bind that the form writes (not its unwritten), once."""
    plan = m.meta["plans"]["chain:" + part]
    f = next(x for x in plan["forms"] if x["variant"] == variant)
    spec = {t["name"]: t for t in plan["tensors"]}
    env = dict(dims, B=B, T=T)
    seen, nbytes = set(), 0
    for st in f["steps"]:
        for b in st.get("buffers", []):
            if b["kind"] not in ("input", "output") or (b["kind"], b["name"]) in seen:
                continue
            seen.add((b["kind"], b["name"]))
            if b["kind"] == "output" and b["name"] in (f.get("unwritten") or ()):
                continue
            n = B * T
            for s in spec[b["name"]]["shape"]:
                n *= _eval(s, env)
            two = low and b["kind"] == "input" and b["name"] in (f.get("bf16Inputs") or ())
            nbytes += n * (2 if two else 4)
    return nbytes / (rate * 1e6), nbytes


def _eval(s, env):
    import seqc_cuda
    return seqc_cuda.eval_size(s, env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--models", default="deltanet,gated_deltanet,rwkv7")
    ap.add_argument("--shape", default="8x2048x16x64")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default="/tmp/stateless-lowrank")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    B, T, H, K = (int(x) for x in args.shape.split("x"))
    rate = tb.copy_rate()
    print("card %s, copy rate %.0f GB/s, (%d, %d, %d, %d) bf16" % (torch.cuda.get_device_name(), rate, B, T, H, K), flush=True)
    res = {"rate_gbs": rate, "shape": [B, T, H, K], "models": {}}
    lines = []
    for model in args.models.split(","):
        try:
            one_model(args, model, B, T, H, K, rate, res, lines)
        except Exception:  # noqa: BLE001  (the other models still run)
            import traceback
            traceback.print_exc()
            lines.append("%-15s FAILED (traceback above)" % model)
        tb.free_all()
    print("\n== summary (ms, GPU time; floors at %.0f GB/s)" % rate)
    print("\n".join(lines))


def one_model(args, model, B, T, H, K, rate, res, lines):
    """One model's rows (see the file's comment) into res and lines."""
    t0 = time.time()
    sm = lb.seqc_model(args.root, model, "chunked")
    import seqc_chunked as ch
    import seqc_chunked_lowrank as lr
    x = {k: v.to(torch.bfloat16) for k, v in lb.inputs(model, B, T, H, K, 7).items()}
    g = torch.Generator(device="cuda").manual_seed(8)
    cot = torch.randn(B, T, H, K, device="cuda", generator=g).to(torch.bfloat16)
    one, leaves = lb.seqc_step(sm, x, cot)
    row = {"parts": {}, "picked": {}, "floors": {}, "trials": {}, "step": {}}
    grads = {}
    dims = {"H": H, "K": K, "V": K}
    for s in SETTINGS:
        with lb.switches({"LR_STATELESS": s}):
            ch.TRIALS.clear()
            one()
            torch.cuda.synchronize()
            grads[s] = {k: v.grad.float().clone() for k, v in leaves.items()}
            parts, copy, total, table = profiled(one, lr)
            with open(os.path.join(args.out, "profile-%s-%s.txt" % (model, s)), "w") as f:
                f.write(table)
            row["parts"][s] = {p: round(v[0], 4) for p, v in parts.items()}
            row["kernels_" + s] = {p: v[1] for p, v in parts.items()}
            row["copy_" + s] = round(copy, 4)
            row["kernel_total_" + s] = round(total, 4)
            row["trials"][s] = {"%s %s" % (k[0], k[1]): round(v, 4) for k, v in ch.TRIALS.items() if isinstance(v, float)}
            # the forms picked (the runners' cached picks) and their floors
            for part in PARTS:
                r = sm.runner("chain:" + part, lb.DEV)
                pick = None
                if s == "twins":
                    pick = next((v for k, v in r._picks.items() if isinstance(k, tuple) and k and k[0] == "tuned" and k[3] == 1 and k[4] == "bf16"), None)
                if pick is None or pick == "auto":
                    pick = ch.stateless_form(r, dims, B * T, 1, None, **({"io": "bf16", "out_io": "f32"} if s == "twins" else {}))
                    if pick == "auto":
                        pick = r.pick(dims, B * T, 1, "auto", *(("bf16", "f32") if s == "twins" else ()))[0]["variant"]
                row["picked"].setdefault(s, {})[part] = pick
                fm, nb = floor_ms(sm, part, pick, dims, B, T, rate, s == "twins")
                row["floors"].setdefault(s, {})[part] = [round(fm, 4), nb]
    d = max(((grads["twins"][k] - grads["f32"][k]).abs().max() / grads["f32"][k].abs().max().clamp_min(1e-30)).item() for k in grads["f32"])
    row["grad_twins_vs_f32"] = d
    # the whole step, the settings interleaved, eager then graphs
    for mode in ("eager", "graphs"):
        lr_graphs = mode == "graphs"
        times = {s: [] for s in SETTINGS}
        old = lr.LR_GRAPHS
        lr.LR_GRAPHS = lr_graphs
        try:
            for s in SETTINGS:  # warm (graphs: capture)
                with lb.switches({"LR_STATELESS": s}):
                    for _ in range(3):
                        one()
            torch.cuda.synchronize()
            for _ in range(args.reps):
                for s in SETTINGS:
                    with lb.switches({"LR_STATELESS": s}):
                        ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
                        one(ev)
                        ev[2].synchronize()
                        times[s].append(ev[0].elapsed_time(ev[2]))
        finally:
            lr.LR_GRAPHS = old
        row["step"][mode] = {s: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v} for s, v in times.items()}
    lb.drop_graphs(sm)
    row["wall_s"] = round(time.time() - t0, 1)
    res["models"][model] = row
    with open(os.path.join(args.out, "stateless.json"), "w") as f:
        json.dump(res, f, indent=1)
    for s in SETTINGS:
        lines.append("%-15s %-6s prep %.4f (floor %.4f) prepBw %.4f (%.4f) postBw %.4f (%.4f) | copy_ %.3f kernels %.3f | eager %.3f graphs %.3f ms | %s" % (
            model, s, row["parts"][s]["prep"], row["floors"][s]["prep"][0], row["parts"][s]["prepBw"], row["floors"][s]["prepBw"][0],
            row["parts"][s]["postBw"], row["floors"][s]["postBw"][0], row["copy_" + s], row["kernel_total_" + s],
            row["step"]["eager"][s]["median"], row["step"]["graphs"][s]["median"], " ".join("%s=%s" % kv for kv in row["picked"][s].items())))
    lines.append("%-15s grads twins vs f32 %.1e, %.0f s" % (model, d, row["wall_s"]))
    print("\n".join(lines[-3:]), flush=True)


if __name__ == "__main__":
    main()
