"""The stateless parts' vector twins (compiler/backends/torch/stateless-vec.ts, "-rv<M>") against today's forms, bf16
tensors, one process (issue 6, session 15 task E). Per model and shape, with seqc_chunked.STATELESS_VEC False ("rm":
today's trial) and True ("vec": the vector twins in the trial too):
  - the trial's times of every form of each stateless part (seqc_chunked.TRIALS, best of two; the best row-major "rm",
    vector "rv" and fused vector "rf" twin beside) and the form it picks, and
    that form's floor: the bytes its launches bind (inputs read, bf16 where it reads them so; outputs written, bf16 where
    it writes them so, not its unwritten ones) at the copy rate measured here;
  - one eager step under torch.profiler: each part's kernels' GPU time;
  - the gradients of "vec" against "rm" (the twins are bitwise their row-major forms: 0 expected);
  - the whole bf16 step under CUDA graphs, the settings alternated (graphs dropped at each switch), median of the reps.
  python3 bench/torch/stateless_vec_bench.py MODULES [--cases deltanet:4x8192x16x128,...] [--reps 10] [--budget S] [--out DIR]
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_bench as sb  # noqa: E402  (inputs, model_of, step, low)
import train_bench as tb  # noqa: E402  (copy_rate, free_all, timed)
import lowrank_bench as lb  # noqa: E402  (drop_graphs)

PARTS = {"prep": "__prep_seq_", "prepBw": "__prep__backward_seq_", "postBw": "__post__backward_seq_"}
SETTINGS = ("rm", "vec")


def self_ms(e):
    t = getattr(e, "self_device_time_total", None)
    return (getattr(e, "self_cuda_time_total", 0) if t is None else t) / 1000.0


def eager(sm, on):
    import seqc_chunked_lowrank as lr
    sm.graphs = not on
    lr.LR_GRAPHS = not on


def profiled(sm, one):
    """One eager step under torch.profiler: {part: [ms, [kernel ms]]}, the table."""
    from torch.profiler import ProfilerActivity, profile
    eager(sm, True)
    one()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        one()
        torch.cuda.synchronize()
    ka = p.key_averages()
    parts = {k: [0.0, []] for k in PARTS}
    for e in ka:
        for part, pat in PARTS.items():
            if pat in e.key:
                parts[part][0] += self_ms(e)
                parts[part][1].append("%s %.4f" % (e.key, self_ms(e)))
    return parts, ka.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=80)


def floor(sm, part, variant, dims, B, T, rate):
    """(ms at `rate` GB/s, bytes) of form `variant` of chain:<part> over [B*T, 1] (see the file's comment)."""
    import seqc_cuda
    plan = sm.meta["plans"]["chain:" + part]
    f = next(x for x in plan["forms"] if x["variant"] == variant)
    spec = {t["name"]: t for t in plan["tensors"]}
    env = dict(dims, B=B * T, T=1)
    seen, nbytes = set(), 0
    low_in = set(f.get("bf16Inputs") or ()) if f.get("io") == "bf16" else set()
    low_in |= set(f.get("bf16Bars") or ())
    low_out = set(f.get("bf16Outputs") or ()) if f.get("out") == "bf16" else set()
    for st in f["steps"]:
        for b in st.get("buffers", []):
            if b["kind"] not in ("input", "output") or (b["kind"], b["name"]) in seen:
                continue
            seen.add((b["kind"], b["name"]))
            if b["kind"] == "output" and b["name"] in (f.get("unwritten") or ()):
                continue
            n = B * T
            for s in spec[b["name"]]["shape"]:
                n *= seqc_cuda.eval_size(s, env)
            two = b["name"] in (low_in if b["kind"] == "input" else low_out)
            nbytes += n * (2 if two else 4)
    return nbytes / (rate * 1e6), nbytes


def graphs_ms(sm, one, reps):
    lb.drop_graphs(sm)
    eager(sm, False)
    r = tb.timed(one, 4, reps, 3.0)
    lb.drop_graphs(sm)
    return r["all_ms"]


def case(args, root, model, shape, rate, res, lines):
    import seqc_chunked as ch
    B, T, H, K = (int(v) for v in shape.split("x"))
    t0 = time.time()
    x16 = sb.low(sb.inputs(model, B, T, H, K, 7))
    cot = torch.randn(B, T, H, K, device=tb.DEV, generator=torch.Generator(device=tb.DEV).manual_seed(8)).to(torch.bfloat16).float()
    sm = sb.model_of(root, model)
    one, leaves = sb.step(sm, x16, cot)
    dims = {"H": H, "K": K, "V": K}
    parts_of = {sm.meta["plans"]["chain:" + p]["model"]: p for p in PARTS if "chain:" + p in sm.meta["plans"]}
    row = {"trials": {}, "picked": {}, "floors": {}, "parts": {}, "kernels": {}}
    grads = {}
    for s in SETTINGS:
        ch.STATELESS_VEC = s == "vec"
        ch.TRIALS.clear()
        eager(sm, True)
        one()
        torch.cuda.synchronize()
        grads[s] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
        trials = {}
        for (pm, v, b, t), ms in ch.TRIALS.items():
            if pm in parts_of and isinstance(ms, float):
                trials.setdefault(parts_of[pm], {})[v] = round(ms, 4)
        row["trials"][s] = trials
        for part, ts in trials.items():
            # the trial runs once per (io, out_io): the pick among the forms of the out_io the step asked for
            outs = {v for v in ts if v.endswith("-bf16out")}
            group = outs if outs else set(ts)
            pick = min(group, key=ts.get)
            row["picked"].setdefault(s, {})[part] = [pick, ts[pick]]
            # the best of each kind in the trial (row-major, vector, fused vector)
            for kind in ("-rm", "-rv", "-rf"):
                best = min((v for v in group if kind in v), key=ts.get, default=None)
                row.setdefault("best", {}).setdefault(s, {}).setdefault(part, {})[kind[1:]] = [best, ts[best]] if best else None
            fm, nb = floor(sm, part, pick, dims, B, T, rate)
            row["floors"].setdefault(s, {})[part] = [round(fm, 4), nb]
        parts, table = profiled(sm, one)
        with open(os.path.join(args.out, "profile-%s-%s-%s.txt" % (model, shape, s)), "w") as f:
            f.write(table)
        row["parts"][s] = {p: round(v[0], 4) for p, v in parts.items()}
        row["kernels"][s] = {p: v[1] for p, v in parts.items()}
    row["grads_vec_vs_rm"] = max(tb.rel(grads["vec"][n], grads["rm"][n]) for n in grads["rm"])
    times = {s: [] for s in SETTINGS}
    for _ in range(args.rounds):
        for s in SETTINGS:
            ch.STATELESS_VEC = s == "vec"
            times[s] += graphs_ms(sm, one, args.reps)
    row["graphs"] = {s: {"median": statistics.median(v), "min": min(v), "all": v} for s, v in times.items()}
    ch.STATELESS_VEC = False
    eager(sm, True)
    row["wall_s"] = round(time.time() - t0, 1)
    res["cases"]["%s %s" % (model, shape)] = row
    for part in PARTS:
        if part not in row["picked"].get("rm", {}):
            continue
        a, b = row["picked"]["rm"][part], row["picked"]["vec"][part]
        kinds = row.get("best", {}).get("vec", {}).get(part, {})
        lines.append("%-15s %-15s %-7s floor %.4f | trial rm %.4f (%s) vec %.4f (%s) | profile rm %.4f vec %.4f | trial best %s" % (
            model, shape, part, row["floors"]["vec"][part][0], a[1], a[0], b[1], b[0], row["parts"]["rm"][part], row["parts"]["vec"][part],
            " ".join("%s %.4f" % (k, v[1]) for k, v in kinds.items() if v)))
    lines.append("%-15s %-15s graphs step rm %.3f vec %.3f ms (median; min %.3f / %.3f) | grads vec vs rm %.1e | %.0f s" % (
        model, shape, row["graphs"]["rm"]["median"], row["graphs"]["vec"]["median"], row["graphs"]["rm"]["min"], row["graphs"]["vec"]["min"], row["grads_vec_vs_rm"], row["wall_s"]))
    print("\n".join(lines[-4:]), flush=True)
    lb.drop_graphs(sm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--cases", default="deltanet:4x8192x16x128,deltanet:8x2048x16x64,deltanet:1x32768x8x128,gated_deltanet:4x8192x16x128,gla:1x32768x8x128,rwkv7:8x2048x16x64")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--budget", type=float, default=1e9, help="seconds: no case starts after")
    ap.add_argument("--out", default="/tmp/stateless-vec")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    root = os.path.abspath(args.root)
    sys.path.insert(0, root)
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    rate = tb.copy_rate()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rate_gbs": rate, "cases": {}}
    print("%s, copy rate %.0f GB/s" % (res["device"], rate), flush=True)
    lines = []
    for c in args.cases.split(","):
        if time.time() - t0 > args.budget:
            lines.append("%s: not run (budget)" % c)
            continue
        model, shape = c.split(":")
        try:
            case(args, root, model, shape, rate, res, lines)
        except Exception:  # noqa: BLE001  (the other cases still run)
            import traceback
            traceback.print_exc()
            lines.append("%s FAILED (traceback above)" % c)
        tb.free_all()
        with open(os.path.join(args.out, "vec.json"), "w") as f:
            json.dump(res, f, indent=1)
    print("\n== summary (ms GPU; floors at %.0f GB/s; trial = best of two, the pick's)" % rate)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
