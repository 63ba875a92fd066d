"""The delta adjoint's gradients in bf16 (seqc_delta_bwd.ADJ_OUT, LR_DELTA_ADJ_OUT; session 15 task C), one process:
1) the two kernels alone at each shape: the bf16-state adjoint (_zb, float32 dQ..dV) vs its _zb_ob sibling (bf16), and
   prep's backward's fastest row-major "-bf16in-...-bf16out" twin (float32 adjoints in) vs the fastest "-bf16bar-..."
   twin (bf16 adjoints in), GPU ms (graph_bench.gpu_only over 5 launches), beside their IO floors at the copy rate;
2) DeltaNet and Gated DeltaNet's bf16 fwd+bwd under CUDA graphs (GPU ms, graph_bench.gpu_only) with ADJ_OUT "f32" and
   "bf16", two rounds interleaved, and the gradients' difference between the two;
3) gradients vs seqc's float64 step at --accuracy BxT (H, K of the last shape), bf16 both ways.
  python3 bench/torch/delta_adj_out_bench.py <modules dir> [--shapes ...] [--models ...] [--accuracy 2x1024] [--out r.json]
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

DEV = tb.DEV


def adj_floor_bytes(B, T, H, K, ob):
    """The bf16-state adjoint's IO: six bf16 per-token inputs, bf16 R, DR [N, C, V] and S0, LE [N, K, V] (S0 once),
    SF, LD; dQ..dV written float32 (ob False) or bf16."""
    tok, N = B * T * H * K, B * H * -(-T // 64)
    return 6 * 2 * tok + 2 * 2 * N * 64 * K + 2 * 2 * N * K * K + 4 * B * H * K * K + 4 * B * T * H + (2 if ob else 4) * 5 * tok + 4 * B * T * H


def prepbw_floor_bytes(B, T, H, K, bars_bf16):
    """DeltaNet's prep backward: k bf16, beta, three adjoints (float32 or bf16) in; q__bar bf16, k__bar float32, beta__bar out."""
    tok = B * T * H * K
    return 2 * tok + 2 * B * T * H + (2 if bars_bf16 else 4) * 3 * tok + 2 * tok + 4 * tok + 4 * B * T * H


def kernels_alone(root, shapes, rate, log, out, save):
    import seqc_delta_bwd as d
    import seqc_chunked as sc
    for model, mode in (("deltanet", "none"), ("gated_deltanet", "scalar")):
        sm = lb.seqc_model(root, model, "chunked")
        km = sc.module_kernels(sm, DEV, "deltaBwd")
        launch = d.kernel_launch(km, DEV, "bf16", torch.cuda.get_device_properties(0).multi_processor_count)
        for B, T, H, K in shapes:
            g = torch.Generator(device=DEV).manual_seed(5)
            rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
            nC = -(-T // 64)
            N = B * H * nC
            tok = [(rn(B, T, H, K) * 0.1).to(torch.bfloat16) for _ in range(6)]
            ld = (-torch.rand(B, T, H, device=DEV, generator=g) * 0.1) if mode == "scalar" else None
            R, DR = (rn(N, 64, K) * 0.1).to(torch.bfloat16), (rn(N, 64, K) * 0.1).to(torch.bfloat16)
            S0, LE = (rn(N, K, K) * 0.1).to(torch.bfloat16), (rn(N, K, K) * 0.1).to(torch.bfloat16)
            SF = rn(B * H, K, K) * 0.1
            row = {"model": model, "shape": [B, T, H, K]}
            res = {}
            for ao in ("f32", "bf16"):
                d.ADJ_OUT = ao

                def one():
                    for _ in range(5):
                        res[ao] = launch("adj", mode, 64, K, K, tok[0], tok[1], tok[2], tok[3], tok[4], tok[5], ld, R, S0, SF, LE, DR, B, T, H)
                one()
                row["adj_" + ao] = gb.gpu_only(one, 5) / 5
            d.ADJ_OUT = "f32"
            row["adj_out_diff"] = max(tb.rel(res["bf16"][i].float(), res["f32"][i]) for i in range(5))
            row["adj_dtype_bf16"] = str(res["bf16"][0].dtype)
            row["adj_floor_f32"] = adj_floor_bytes(B, T, H, K, False) / (rate * 1e6)
            row["adj_floor_bf16"] = adj_floor_bytes(B, T, H, K, True) / (rate * 1e6)
            # prep's backward (DeltaNet's and Gated DeltaNet's have the same inputs): the fastest row-major bf16-out twin each way
            key = "chain:prepBw"
            x1 = lb.inputs(model, 1, 1, H, K, 1)
            dims, _, _ = sm.resolve({t["name"]: x1[t["name"]] for t in sm.inputs}, {}, {})
            r = sm.runner(key, DEV)
            plan = sm.meta["plans"][key]
            ins = {}
            for t in plan["tensors"]:
                if t["role"] == "input":
                    import seqc_cuda
                    ins[t["name"]] = (torch.randn([B * T, 1] + [seqc_cuda.eval_size(s, dims) for s in t["shape"]], device=DEV, generator=g) * 0.1)
            bars = sorted({n for f in plan["forms"] for n in f.get("bf16Bars") or ()})
            low = {k: (v.to(torch.bfloat16) if k not in bars else v) for k, v in ins.items()}
            lowb = {k: v.to(torch.bfloat16) for k, v in ins.items()}
            for fam, xs in (("bf16in", low), ("bf16bar", lowb)):
                best = None
                for f, _ in r.applicable(dims, B * T, 1, "auto", "bf16", "bf16"):
                    v = f["variant"]
                    if not v.startswith("global-%s-wr-r" % fam):
                        continue

                    def step():
                        sm.execute(key, dims, B * T, 1, xs, {}, {}, torch.float32, DEV, v, io="bf16", out_io="bf16")
                    try:
                        step()
                        ms = gb.gpu_only(step, 5)
                    except Exception as e:  # noqa: BLE001
                        log("  %s %s: %s" % (model, v, e))
                        continue
                    row.setdefault("prepbw_forms", {})[v] = ms
                    if best is None or ms < best[1]:
                        best = (v, ms)
                row["prepbw_" + fam] = best
            row["prepbw_floor_f32"] = prepbw_floor_bytes(B, T, H, K, False) / (rate * 1e6)
            row["prepbw_floor_bf16"] = prepbw_floor_bytes(B, T, H, K, True) / (rate * 1e6)
            log("kernels %s %s: adj %.3f -> %.3f ms (floors %.3f -> %.3f; outputs %.1e off); prepBw %s -> %s (floors %.3f -> %.3f)" % (
                model, (B, T, H, K), row["adj_f32"], row["adj_bf16"], row["adj_floor_f32"], row["adj_floor_bf16"], row["adj_out_diff"],
                row["prepbw_bf16in"], row["prepbw_bf16bar"], row["prepbw_floor_f32"], row["prepbw_floor_bf16"]))
            out.append(row)
            save()
            del tok, R, DR, S0, LE, SF, res, ins, low, lowb
            tb.free_all()
        lb.drop_graphs(sm)
        del sm, km, launch
        tb.free_all()


def steps(root, models, shapes, log, out, save, rounds=2, profile_dir=""):
    import seqc_delta_bwd as d
    sms = {model: lb.seqc_model(root, model, "chunked") for model in models}
    for B, T, H, K in shapes:  # (shape by shape, every model at each: the largest shape first)
        for model in models:
            try:
                sm = sms[model]
                x = {k: v.to(torch.bfloat16) for k, v in lb.inputs(model, B, T, H, K, 7).items()}
                cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(8))
                one, leaves = lb.seqc_step(sm, x, cot)
                row = {"model": model, "shape": [B, T, H, K], "graphs_ms": {"f32": [], "bf16": []}}
                grads = {}
                for rnd in range(rounds):
                    for ao in ("f32", "bf16"):
                        d.ADJ_OUT = ao
                        sm.graphs = True
                        for _ in range(3):  # (captured on the signature's second call)
                            one()
                        torch.cuda.synchronize()
                        row["graphs_ms"][ao].append(gb.gpu_only(one, 5))
                        if rnd == 0:
                            one()
                            grads[ao] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
                if profile_dir and (B, T, H, K) == tuple(shapes[0]):  # one eager step each way, kernels by GPU time
                    sm.graphs = False
                    for ao in ("f32", "bf16"):
                        d.ADJ_OUT = ao
                        try:
                            row.setdefault("profile_top", {})[ao] = lb.profile(one, os.path.join(profile_dir, "profile-%s-adj-%s-%dx%dx%dx%d.txt" % ((model, ao) + tuple(shapes[0]))))
                        except Exception as e:  # noqa: BLE001
                            log("profile %s %s: %s" % (model, ao, e))
                d.ADJ_OUT = "f32"
                row["grad_diff"] = {n: tb.rel(grads["bf16"][n], grads["f32"][n]) for n in grads["f32"]}
                med = {ao: statistics.median(v) for ao, v in row["graphs_ms"].items()}
                row["median_ms"] = med
                log("step %s %s: graphs ADJ_OUT f32 %s -> bf16 %s ms (medians %.3f -> %.3f, %.3fx); grads bf16 vs f32 %s" % (
                    model, (B, T, H, K), ["%.3f" % v for v in row["graphs_ms"]["f32"]], ["%.3f" % v for v in row["graphs_ms"]["bf16"]],
                    med["f32"], med["bf16"], med["f32"] / med["bf16"], " ".join("%s %.1e" % kv for kv in row["grad_diff"].items())))
                out.append(row)
                save()
                del one, leaves, x, cot, grads
                lb.drop_graphs(sm)
            except Exception as e:  # noqa: BLE001
                log("step %s %s FAILED: %s" % (model, (B, T, H, K), e))
                lb.drop_graphs(sms[model])
    del sms
    tb.free_all()


def accuracy(root, models, B, T, H, K, log, out, save):
    import seqc_delta_bwd as d
    for model in models:
        x = lb.inputs(model, B, T, H, K, 11)
        xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
        cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(12)).to(torch.bfloat16).float()
        sm = lb.seqc_model(root, model, "chunked")
        sm.graphs = False
        one, l64 = lb.seqc_step(sm, {k: v.double() for k, v in xb.items()}, cot.double())
        one()
        g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
        row = {"model": model, "B": B, "T": T, "H": H, "K": K}
        for ao in ("f32", "bf16"):
            d.ADJ_OUT = ao
            one, lv = lb.seqc_step(sm, xb, cot)
            one()
            row[ao] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
        d.ADJ_OUT = "f32"
        log("accuracy %s (%d, %d, %d, %d) vs float64: ADJ_OUT f32 max %.1e (%s), bf16 max %.1e (%s)" % (
            model, B, T, H, K, max(row["f32"].values()), " ".join("%s=%.1e" % kv for kv in row["f32"].items()),
            max(row["bf16"].values()), " ".join("%s=%.1e" % kv for kv in row["bf16"].items())))
        out.append(row)
        save()
        del sm
        tb.free_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--shapes", default="4x8192x16x128,1x32768x8x128,8x2048x16x64")
    ap.add_argument("--models", default="deltanet,gated_deltanet")
    ap.add_argument("--accuracy", default="2x1024")
    ap.add_argument("--parts", default="kernels,steps,accuracy")
    ap.add_argument("--out")
    ap.add_argument("--profile", default="", help="a folder for one eager step's profile each way at the first shape")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    sys.path.insert(0, root)
    torch.backends.cuda.matmul.allow_tf32 = False
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
    shapes = lb.parse_shapes(args.shapes)
    models = args.models.split(",")
    parts = args.parts.split(",")
    import traceback
    for part in parts:  # (in the order given; a part that fails is logged and the next runs)
        try:
            if part == "kernels":
                kernels_alone(root, shapes, rate, log, res.setdefault("kernels", []), save)
            elif part == "steps":
                steps(root, models, shapes, log, res.setdefault("steps", []), save, profile_dir=args.profile)
            elif part == "accuracy" and args.accuracy:
                aB, aT = (int(v) for v in args.accuracy.split("x"))
                accuracy(root, models, aB, aT, shapes[-1][2], shapes[-1][3], log, res.setdefault("accuracy", []), save)
        except Exception as e:  # noqa: BLE001
            log("%s FAILED: %s\n%s" % (part, e, traceback.format_exc()[-2000:]))
            res[part + "_error"] = str(e)
        save()
    log("done")


if __name__ == "__main__":
    main()
