"""Where the delta rule's bf16 training step goes at K = 128 (issue 6): one eager fwd+bwd of DeltaNet / Gated DeltaNet
through seqc's torch target at (B, T, H, K = V), its GPU time (graph_bench.gpu_only), the backward's sections
(seqc_chunked_lowrank.LR_TIMES) and one step under torch.profiler: the CUDA self time by kernel, and by section x
aten op x kernel (each section also pushed as a record_function "lr:<name>", so every kernel is charged to the
innermost section that launched it; "-" outside the sections: the forward, prep / post and the glue).

  python3 bench/torch/k128_profile.py <modules dir> [--cases deltanet:4x8192x16x128,...] [--profile deltanet:4x8192x16x128]
      [--lr KEY=VALUE ...] [--sets "label:KEY=VALUE;KEY=VALUE,label2:..."] [--anchor] [--out DIR]

--sets: named switch sets (seqc_chunked_lowrank attributes), each case timed under each in one process, the
gradients compared to the first set's (max relative error per input); the profile runs under the first set. --anchor:
then the anchor's step (fla chunk_delta_rule / chunk_gated_delta_rule) on the same bf16 tensors, its gradients against
the first set's; fla's autotune kept to --fla-max-configs configs (4) as shapes_bench.py's timing does.
Files under --out: k128-profile-<model>-<shape>[-<set>].txt (the profiler's table, then the section table), k128.json.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402
import graph_bench as gb  # noqa: E402
import lowrank_bench as lb  # noqa: E402
import shapes_bench as sb  # noqa: E402


def kv(items):
    return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in (x.split("=", 1) for x in items if x)}


def parse_sets(s):
    out = []
    for part in (s or "").split(","):
        if part:
            label, _, body = part.partition(":")
            out.append((label, kv(body.split(";"))))
    return out or [("defaults", {})]


def sectioned(lr):
    """_section also as a record_function (so the profiler charges kernels to it)."""
    cls = lr._section
    if getattr(cls, "_k128", False):
        return
    enter, exit_ = cls.__enter__, cls.__exit__

    def e(self):
        self.rf = torch.profiler.record_function("lr:" + self.name)
        self.rf.__enter__()
        return enter(self)

    def x(self, *exc):
        r = exit_(self, *exc)
        self.rf.__exit__(None, None, None)
        return r
    cls.__enter__, cls.__exit__, cls._k128 = e, x, True


def profile(one, path, lr):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof
    old_g, old_t = lr.LR_GRAPHS, lr.LR_TIMES
    lr.LR_GRAPHS = False
    lr.LR_TIMES = []  # eager, and the sections' record_functions / events active
    try:
        one()
        torch.cuda.synchronize()
        lr.LR_TIMES = []
        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            one()
            torch.cuda.synchronize()
    finally:
        lr.LR_GRAPHS, lr.LR_TIMES = old_g, old_t
    ka = p.key_averages()
    dev = lambda e: getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)  # noqa: E731
    by_kernel = sorted(((e.key, dev(e) / 1000.0, e.count) for e in ka if dev(e) > 0), key=lambda r: -r[1])
    # section x op x kernel from the CPU events' kernels
    rows = {}
    sec_tot = {}
    try:
        for e in p.events():
            ks = getattr(e, "kernels", None) or []
            if not ks:
                continue
            sec, a = "-", e
            while a is not None:
                if a.name.startswith("lr:"):
                    sec = a.name[3:]
                    break
                a = a.cpu_parent
            for k in ks:
                key = (sec, e.name, k.name)
                r = rows.setdefault(key, [0.0, 0])
                r[0] += k.duration / 1000.0
                r[1] += 1
                sec_tot[sec] = sec_tot.get(sec, 0.0) + k.duration / 1000.0
    except Exception as ex:  # noqa: BLE001
        rows = {("error", type(ex).__name__, str(ex)[:200]): [0.0, 0]}
    with open(path, "w") as f:
        try:
            f.write(ka.table(sort_by="self_device_time_total", row_limit=50, max_name_column_width=80))
        except Exception:  # noqa: BLE001
            f.write(ka.table(sort_by="self_cuda_time_total", row_limit=50, max_name_column_width=80))
        f.write("\n\nkernel time by section (ms): %s\n\n" % ", ".join("%s %.3f" % kvp for kvp in sorted(sec_tot.items(), key=lambda r: -r[1])))
        f.write("section | op | kernel | ms | launches\n")
        for (sec, op, kn), (ms, n) in sorted(rows.items(), key=lambda r: -r[1][0]):
            f.write("%s | %s | %s | %.3f | %d\n" % (sec, op, kn[:110], ms, n))
    return by_kernel[:25], {k: round(v, 3) for k, v in sec_tot.items()}, [(s, o, k[:90], round(v[0], 3), v[1]) for (s, o, k), v in sorted(rows.items(), key=lambda r: -r[1][0])[:40]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules")
    ap.add_argument("--cases", default="deltanet:4x8192x16x128")
    ap.add_argument("--profile", default="deltanet:4x8192x16x128", help="cases (comma-separated) to profile under the first set")
    ap.add_argument("--lr", action="append", default=[])
    ap.add_argument("--sets", default="")
    ap.add_argument("--profile-set", default="", help="the sets (comma-separated) whose step is profiled (default: the first)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=150.0)
    ap.add_argument("--out", default="/tmp/k128")
    ap.add_argument("--anchor", action="store_true", help="also the anchor's step (fla) per case, after the sets, on the same tensors")
    ap.add_argument("--fla-max-configs", type=int, default=4, help="with --anchor: fla's autotuned kernels keep at most this many configs, as shapes_bench.py's main (0: all)")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    if root not in sys.path:
        sys.path.insert(0, root)
    import seqc_chunked_lowrank as lr
    sectioned(lr)
    for k, v in kv(args.lr).items():
        setattr(lr, k, v)
    sets = parse_sets(args.sets)
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.anchor:
        tb.patch_autotune(None, args.fla_max_configs)  # as shapes_bench.py: the warm workers compiled these configs
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "lr": kv(args.lr), "sets": sets, "rows": []}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)

    def save():
        json.dump(res, open(os.path.join(args.out, "k128.json"), "w"), indent=1)
    prof_cases = set(args.profile.split(","))
    for c in args.cases.split(","):
        if not c:
            continue
        if time.time() - t0 > args.budget:
            log("%s: skipped (budget)" % c)
            res["rows"].append({"case": c, "skipped": True})
            continue
        model, sh = c.split(":")
        B, T, H, K = (int(v) for v in sh.split("x"))
        x = sb.inputs(model, B, T, H, K, 7)
        cot = torch.randn(B, T, H, K, device=tb.DEV, generator=torch.Generator(device=tb.DEV).manual_seed(8)).to(torch.bfloat16).float()
        x16 = sb.low(x)
        del x
        sm = sb.model_of(root, model)
        sm.graphs = False
        one, leaves = sb.step(sm, x16, cot)
        row = {"case": c, "sets": {}}
        g0 = None
        for label, sw in sets:
            old = {k: getattr(lr, k) for k in sw}
            try:
                for k, v in sw.items():
                    setattr(lr, k, v)
                r = {"first_s": sb.call_s(one)}
                r["gpu_ms"] = gb.gpu_only(one, args.reps)
                r["sections_ms"] = {k: round(v, 3) for k, v in lb.sections(one).items()}
                one()
                g = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
                if g0 is None:
                    g0 = g
                else:
                    r["grads_vs_first"] = {"d" + n: tb.rel(g[n], g0[n]) for n in g}
                del g
                log("%s [%s]: %.3f ms GPU (first call %.1f s); sections %s%s" % (c, label, r["gpu_ms"], r["first_s"], ", ".join("%s %.2f" % p for p in r["sections_ms"].items()),
                                                                          "; grads vs %s max %.1e" % (sets[0][0], max(r["grads_vs_first"].values())) if "grads_vs_first" in r else ""))
                if c in prof_cases and label in (args.profile_set or sets[0][0]).split(","):
                    top, secs, rows = profile(one, os.path.join(args.out, "k128-profile-%s-%s-%s.txt" % (model, sh, label)), lr)
                    r["profile_top"], r["profile_sections"], r["profile_rows"] = top, secs, rows
                    log("%s profile: kernels %s" % (c, ", ".join("%s %.2f" % (k[:60], ms) for k, ms, _ in top[:16])))
                    log("%s profile: by section %s" % (c, ", ".join("%s %.2f" % p for p in sorted(secs.items(), key=lambda q: -q[1]))))
                    for s, o, k, ms, n in rows[:24]:
                        log("   %s | %s | %s | %.3f ms x%d" % (s, o, k, ms, n))
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                r = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
                log("%s [%s] failed: %s" % (c, label, r["error"]))
            finally:
                for k, v in old.items():
                    setattr(lr, k, v)
            row["sets"][label] = r
            save()
        del one, leaves
        sm._seqc_graphs = None
        sm._seqc_pool = None
        tb.free_all()
        if args.anchor:
            try:
                one_a, la = sb.anchor_step(model, K, x16, cot)
                a = {"name": sb.ANCHOR[model], "first_s": sb.call_s(one_a)}
                a["gpu_ms"] = gb.gpu_only(one_a, args.reps)
                one_a()
                if g0 is not None:
                    a["seqc_vs_anchor_rel"] = {"d" + n: tb.rel(g0[n], la[n].grad.float()) for n in la}
                row["anchor"] = a
                log("%s anchor %s: %.3f ms GPU (first call %.1f s)%s" % (c, a["name"], a["gpu_ms"], a["first_s"], "; %s vs anchor grads max %.1e" % (sets[0][0], max(a["seqc_vs_anchor_rel"].values())) if "seqc_vs_anchor_rel" in a else ""))
                del one_a, la
            except Exception as e:  # noqa: BLE001
                row["anchor"] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
                log("%s anchor failed: %s" % (c, row["anchor"]["error"]))
        res["rows"].append(row)
        del g0, x16
        sm._seqc_graphs = None
        sm._seqc_pool = None
        tb.free_all()
        save()
    print("\ncase | " + " | ".join(l for l, _ in sets) + " | anchor")
    for row in res["rows"]:
        if row.get("skipped"):
            print("%s | skipped" % row["case"])
            continue
        an = row.get("anchor", {})
        print("%s | %s | %s" % (row["case"], " | ".join("%.3f" % row["sets"][l]["gpu_ms"] if "gpu_ms" in row["sets"].get(l, {}) else "ERR" for l, _ in sets),
                                "%.3f" % an["gpu_ms"] if "gpu_ms" in an else ("refused" if "error" in an else "-")))
    save()


if __name__ == "__main__":
    main()
