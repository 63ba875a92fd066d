"""The bf16-state adjoint's cp.async loads (seqc_delta_bwd.ADJ_LOAD, LR_DELTA_ADJ_LOAD; session 15 task C2), the kernel
alone, one process: at each shape, DeltaNet's (decay none) and Gated DeltaNet's (scalar) _zb adjoint vs its _zb_ca
sibling (and, with ADJ_OUT "bf16", _zb_ob vs _zb_ob_ca), launched through seqc_delta_bwd.kernel_launch on random bf16
inputs, GPU ms (graph_bench.gpu_only over 5 launches, the two ways interleaved over --rounds), beside the IO floor at the
copy rate measured here; the outputs of the two ways compared bit for bit (the emulation says they are equal).
  python3 bench/torch/delta_adj_load_bench.py <modules dir> [--shapes 4x8192x16x128,...] [--rounds 3] [--out r.json]
The bf16 steps with the switch: lowrank_bench.py with LR_DELTA_ADJ_LOAD=ca in the environment.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402
import lowrank_bench as lb  # noqa: E402
import graph_bench as gb  # noqa: E402
from delta_adj_out_bench import adj_floor_bytes  # noqa: E402

DEV = tb.DEV


def run(root, shapes, rounds, rate, log, out, save):
    import seqc_delta_bwd as d
    import seqc_chunked as sc
    for model, mode in (("deltanet", "none"), ("gated_deltanet", "scalar")):
        sm = lb.seqc_model(root, model, "chunked")
        km = sc.module_kernels(sm, DEV, "deltaBwd")
        launch = d.kernel_launch(km, DEV, "bf16", torch.cuda.get_device_properties(0).multi_processor_count)
        for B, T, H, K in shapes:
            g = torch.Generator(device=DEV).manual_seed(5)
            rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
            N = B * H * -(-T // 64)
            tok = [(rn(B, T, H, K) * 0.1).to(torch.bfloat16) for _ in range(6)]
            ld = (-torch.rand(B, T, H, device=DEV, generator=g) * 0.1) if mode == "scalar" else None
            R, DR = (rn(N, 64, K) * 0.1).to(torch.bfloat16), (rn(N, 64, K) * 0.1).to(torch.bfloat16)
            S0, LE = (rn(N, K, K) * 0.1).to(torch.bfloat16), (rn(N, K, K) * 0.1).to(torch.bfloat16)
            SF = rn(B * H, K, K) * 0.1
            for ao in ("f32", "bf16"):
                row = {"model": model, "shape": [B, T, H, K], "adj_out": ao, "ms": {"plain": [], "ca": []}}
                res = {}
                d.ADJ_OUT = ao
                for _ in range(rounds):
                    for al in ("plain", "ca"):
                        d.ADJ_LOAD = al

                        def one():
                            for _ in range(5):
                                res[al] = launch("adj", mode, 64, K, K, tok[0], tok[1], tok[2], tok[3], tok[4], tok[5], ld, R, S0, SF, LE, DR, B, T, H)
                        one()
                        row["ms"][al].append(gb.gpu_only(one, 5) / 5)
                d.ADJ_LOAD, d.ADJ_OUT = "plain", "f32"
                row["plain"], row["ca"] = (statistics.median(row["ms"][w]) for w in ("plain", "ca"))
                row["bitwise"] = all(torch.equal(a, b) for a, b in zip(res["plain"], res["ca"]) if a is not None)
                row["floor"] = adj_floor_bytes(B, T, H, K, ao == "bf16") / (rate * 1e6)
                log("adj %s %s ADJ_OUT %s: plain %.3f -> ca %.3f ms (%.2fx; floor %.3f: %.2fx -> %.2fx of it); outputs bitwise %s" % (
                    model, (B, T, H, K), ao, row["plain"], row["ca"], row["plain"] / row["ca"], row["floor"],
                    row["plain"] / row["floor"], row["ca"] / row["floor"], row["bitwise"]))
                out.append(row)
                save()
            del tok, R, DR, S0, LE, SF, res
            tb.free_all()
        lb.drop_graphs(sm)
        del sm, km, launch
        tb.free_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--shapes", default="4x8192x16x128,1x32768x8x128,8x2048x16x64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    sys.path.insert(0, root)
    t0 = time.time()

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}

    def save():
        if args.out:
            json.dump(res, open(args.out, "w"), indent=1)
    rate = tb.copy_rate()
    res["copy_gbps"] = rate
    log("%s, torch %s, copy %.0f GB/s" % (res["device"], res["torch"], rate))
    run(root, lb.parse_shapes(args.shapes), args.rounds, rate, log, res.setdefault("adj", []), save)
    save()
    log("done")


if __name__ == "__main__":
    main()
