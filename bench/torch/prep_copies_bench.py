"""The delta family's prep with and without its copies of inputs (compiler/backends/torch/chain-copies-lowrank.ts: the
glue binds w = k, v (DeltaNet) or all six outputs (RWKV-7) to the inputs and adds their adjoints to the inputs'
gradients), bf16 tensors, the two modules of a model in one process (issue 6, task E2):
  - "before": modules compiled before the change (prep writes every output, its backward reads every adjoint);
  - "after": modules compiled with it; both run by this checkout's runtime (a module without prepAliases runs as before);
  - per model and module, one eager step under torch.profiler: the CUDA time of prep's, prep's backward's and post's
    backward's kernels (by name), of aten::copy_ (float32 copies and bf16 -> f32 conversions), the kernels' total; the
    forms picked and their floors (bytes bound at the copy rate measured here);
  - the whole step (fwd+bwd), CUDA events, eager and with graphs, before / after interleaved, median of the reps;
  - the gradients of "after" against "before" (max relative difference over the inputs).
  python3 bench/torch/prep_copies_bench.py BEFORE AFTER [--models deltanet,rwkv7] [--shape 8x2048x16x64] [--reps 10] [--out DIR]
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# this checkout's runtime for both modules (not the copies emitted beside them)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import lowrank_bench as lb  # noqa: E402  (inputs, seqc_step, drop_graphs, DEV)
import stateless_lowrank_bench as sb  # noqa: E402  (profiled, floor_ms, PARTS)
import train_bench as tb  # noqa: E402  (copy_rate, free_all)

MODULE = {"deltanet": "DeltaNet", "gated_deltanet": "GatedDeltaNet", "rwkv7": "Rwkv7"}
TAGS = ("before", "after")


def load(root, model):
    import seqc_torch
    return seqc_torch.SeqcModel(os.path.join(root, "%s.torch.json" % MODULE[model]), None, "auto", "chunked")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--models", default="deltanet,rwkv7")
    ap.add_argument("--shape", default="8x2048x16x64")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default="/tmp/prep-copies")
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
    t0 = time.time()
    import seqc_chunked as ch
    import seqc_chunked_lowrank as lr
    x = {k: v.to(torch.bfloat16) for k, v in lb.inputs(model, B, T, H, K, 7).items()}
    g = torch.Generator(device="cuda").manual_seed(8)
    cot = torch.randn(B, T, H, K, device="cuda", generator=g).to(torch.bfloat16)
    dims = {"H": H, "K": K, "V": K}
    row = {"parts": {}, "picked": {}, "floors": {}, "step": {}, "aliases": {}}
    sms, ones, grads = {}, {}, {}
    for tag, root in zip(TAGS, (args.before, args.after)):
        sm = sms[tag] = load(root, model)
        row["aliases"][tag] = sm.chunked["lowRank"].get("prepAliases") or {}
        one, leaves = lb.seqc_step(sm, x, cot)
        ones[tag] = one
        ch.TRIALS.clear()
        one()
        torch.cuda.synchronize()
        grads[tag] = {k: v.grad.float().clone() for k, v in leaves.items()}
        parts, copy, total, table = sb.profiled(one, lr)
        with open(os.path.join(args.out, "profile-%s-%s.txt" % (model, tag)), "w") as f:
            f.write(table)
        row["parts"][tag] = {p: round(v[0], 4) for p, v in parts.items()}
        row["kernels_" + tag] = {p: v[1] for p, v in parts.items()}
        row["copy_" + tag] = round(copy, 4)
        row["kernel_total_" + tag] = round(total, 4)
        for part in sb.PARTS:
            if "chain:" + part not in sm.meta["plans"]:
                row["picked"].setdefault(tag, {})[part] = None
                row["floors"].setdefault(tag, {})[part] = [0.0, 0]
                continue
            r = sm.runner("chain:" + part, lb.DEV)
            pick = next((v for k, v in r._picks.items() if isinstance(k, tuple) and k and k[0] == "tuned" and k[3] == 1 and k[4] == "bf16"), None)
            if pick is None or pick == "auto":
                pick = ch.stateless_form(r, dims, B * T, 1, None, io="bf16", out_io="f32")
                if pick == "auto":
                    pick = r.pick(dims, B * T, 1, "auto", "bf16", "f32")[0]["variant"]
            row["picked"].setdefault(tag, {})[part] = pick
            fm, nb = sb.floor_ms(sm, part, pick, dims, B, T, rate, True)
            row["floors"].setdefault(tag, {})[part] = [round(fm, 4), nb]
    d = max(((grads["after"][k] - grads["before"][k]).abs().max() / grads["before"][k].abs().max().clamp_min(1e-30)).item() for k in grads["before"])
    row["grad_after_vs_before"] = d
    for mode in ("eager", "graphs"):
        times = {t: [] for t in TAGS}
        old = lr.LR_GRAPHS
        lr.LR_GRAPHS = mode == "graphs"
        try:
            for t in TAGS:  # warm (graphs: capture)
                for _ in range(3):
                    ones[t]()
            torch.cuda.synchronize()
            for _ in range(args.reps):
                for t in TAGS:
                    ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
                    ones[t](ev)
                    ev[2].synchronize()
                    times[t].append(ev[0].elapsed_time(ev[2]))
        finally:
            lr.LR_GRAPHS = old
        row["step"][mode] = {t: {"median": statistics.median(v), "min": min(v), "max": max(v), "all": v} for t, v in times.items()}
    for sm in sms.values():
        lb.drop_graphs(sm)
    row["wall_s"] = round(time.time() - t0, 1)
    res["models"][model] = row
    with open(os.path.join(args.out, "prep-copies.json"), "w") as f:
        json.dump(res, f, indent=1)
    for t in TAGS:
        lines.append("%-9s %-6s prep %.4f (floor %.4f) prepBw %.4f (%.4f) postBw %.4f | copy_ %.3f kernels %.3f | eager %.3f graphs %.3f ms | aliases %s | %s" % (
            model, t, row["parts"][t]["prep"], row["floors"][t]["prep"][0], row["parts"][t]["prepBw"], row["floors"][t]["prepBw"][0],
            row["parts"][t]["postBw"], row["copy_" + t], row["kernel_total_" + t], row["step"]["eager"][t]["median"], row["step"]["graphs"][t]["median"],
            ",".join(sorted(row["aliases"][t])) or "-", " ".join("%s=%s" % kv for kv in row["picked"][t].items())))
    lines.append("%-9s grads after vs before %.1e, %.0f s" % (model, d, row["wall_s"]))
    print("\n".join(lines[-3:]), flush=True)


if __name__ == "__main__":
    main()
