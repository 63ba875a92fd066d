"""R as prep_fwd's epilogue alone (compiler/backends/cuda/delta-prep-r.ts; seqc_delta_bwd LR_DELTA_PREP_R) against the
two kernels it replaces on the LR_FWD_STATES + ZBF16 path: the staged prep_fwd (TI, M, X, BM, NN, A) then delta-r's
tensor-core twin writing bf16 R (seqc_delta_r_*_tf32x3_zb). DeltaNet (decay none) and Gated DeltaNet (scalar) modules;
per shape (B, T, H, K): bf16 per-token inputs (normalized keys, sigmoid betas, Gated DeltaNet's log decays
logsigmoid / 4), bf16 states S [N, K, K] in (-1, 1). Each way timed by CUDA events over --kreps launches captured in a
CUDA graph (median of 5 repeats), beside its floor (bytes read and written once at the copy rate measured here); TI
compared bit for bit, R (prep_r "on" and head-only "bf16") against the two kernels' R: the share of bf16 values that
differ and the largest difference over max |R|.
  python3 delta_prep_r_bench.py MODULE_DIR [--shapes 8x2048x16x64,1x32768x8x128,4x8192x16x128] [--kreps 20] [--out FILE]
"""

import argparse
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowrank_bench as lb  # noqa: E402
import train_bench as tb  # noqa: E402

DEV = tb.DEV


def timed(fn, kreps):
    """ms a call: fn captured kreps times in a CUDA graph, the median of 5 replays (after one)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    gr = torch.cuda.CUDAGraph()
    with torch.cuda.graph(gr):
        for _ in range(kreps):
            fn()
    gr.replay()
    ms = []
    for _ in range(5):
        e = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        e[0].record()
        gr.replay()
        e[1].record()
        torch.cuda.synchronize()
        ms.append(e[0].elapsed_time(e[1]) / kreps)
    return statistics.median(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--shapes", default="8x2048x16x64,1x32768x8x128,4x8192x16x128")
    ap.add_argument("--kreps", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.root))
    import seqc_cuda
    import seqc_delta_bwd as db
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rate = tb.copy_rate()
    res = {"card": torch.cuda.get_device_name(), "rate_gbs": rate, "rows": []}
    print("card %s, copy rate %.0f GB/s" % (res["card"], rate), flush=True)
    spec = lambda name, key: json.load(open(os.path.join(args.root, name + ".torch.json")))["kernels"][key]  # noqa: E731
    rk = db.r_launch(seqc_cuda.KernelModule(spec("DeltaNet", "deltaStates"), "DeltaNet deltaStates", 0), DEV)
    lines = []
    for model, mode in (("DeltaNet", "none"), ("GatedDeltaNet", "scalar")):
        km = seqc_cuda.KernelModule(spec(model, "deltaBwd"), model + " deltaBwd", 0)
        launch = db.kernel_launch(km, DEV, "bf16", sms)
        for B, T, H, K in lb.parse_shapes(args.shapes):
            C, nC = 64, -(-T // 64)
            N = B * H * nC
            g = torch.Generator(device=DEV).manual_seed(5)
            rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
            k = torch.nn.functional.normalize(rn(B, T, H, K), dim=-1)
            beta = torch.sigmoid(rn(B, T, H))[..., None]
            u, w, kk, vv = (x.to(torch.bfloat16).contiguous() for x in (-beta * k, k, beta * k, rn(B, T, H, K)))
            ld = torch.nn.functional.logsigmoid(rn(B, T, H)) / 4 if mode == "scalar" else None
            S = (torch.rand(N, K, K, device=DEV, generator=g) * 2 - 1).to(torch.bfloat16)
            db.ZBF16, db.R_MATH = "on", "tf32x3"

            def two():
                TI, M, X = launch("prep_fwd", mode, C, K, K, u, w, kk, vv, ld, B, T, H)[:3]
                return TI, rk(C, K, K, M, X, S, zout=True)[0]

            def one():
                return launch("prep_r", mode, C, K, K, u, w, kk, vv, ld, S, B, T, H)
            TI2, R2 = two()
            row = {"model": model, "B": B, "T": T, "H": H, "K": K, "N": N}
            rd = lambda R: ((R.float() - R2.float()).abs().max() / R2.float().abs().max()).item()  # noqa: E731
            inb = 4 * N * C * K * 2 + (B * T * H * 4 if ld is not None else 0)  # U, W, KK, VV bf16 (LD float32)
            row["two_ms"] = timed(two, args.kreps)
            row["two_floor_ms"] = (inb + N * C * C * 4 + 2 * N * C * K * 4 + N * C * K * 4 + N * K * K * 4 + N * 4 + 2 * N * C * K * 4 + N * K * K * 2 + N * C * K * 2) / rate / 1e6
            row["prep_fwd_ms"] = timed(lambda: launch("prep_fwd", mode, C, K, K, u, w, kk, vv, ld, B, T, H), args.kreps)
            row["one_floor_ms"] = (inb + N * K * K * 2 + N * C * C * 4 + N * C * K * 2) / rate / 1e6
            for way in ("on", "bf16"):
                db.PREP_R = way
                TI1, R1 = one()
                torch.cuda.synchronize()
                row["prep_r_%s_ms" % way] = timed(one, args.kreps)
                row["prep_r_%s_R_maxdiff" % way] = rd(R1)
                row["prep_r_%s_R_differ" % way] = (R1 != R2).float().mean().item()
                row["prep_r_%s_TI_equal" % way] = bool(torch.equal(TI1, TI2))
            db.PREP_R = "off"
            res["rows"].append(row)
            line = "%s (%d, %d, %d, %d) | prep_fwd %.3f + r = %.3f ms (floor %.3f) | prep_r %.3f (floor %.3f) %.2fx | head-only %.3f | R vs two: on %.1e (%.2f%% differ), bf16 %.1e (%.2f%%) | TI equal %s" % (
                model, B, T, H, K, row["prep_fwd_ms"], row["two_ms"], row["two_floor_ms"], row["prep_r_on_ms"], row["one_floor_ms"], row["two_ms"] / row["prep_r_on_ms"],
                row["prep_r_bf16_ms"], row["prep_r_on_R_maxdiff"], 100 * row["prep_r_on_R_differ"], row["prep_r_bf16_R_maxdiff"], 100 * row["prep_r_bf16_R_differ"], row["prep_r_on_TI_equal"])
            print(line, flush=True)
            lines.append(line)
            del u, w, kk, vv, S, TI2, R2
            tb.free_all()
    print("\n" + "\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
