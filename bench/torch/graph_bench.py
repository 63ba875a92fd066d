"""The torch target's step through CUDA graphs (runtime/torch/seqc_graphs.py), checked and timed on the GPU (issue 6).

Check, per model: seqc_graphs replays vs the eager path (SeqcModel.graphs = False) on the same values, three steps
with fresh inputs each (new values and new pointers: the graph's static buffers are copied into every call), fp32
and bf16, at B=2 T=37 (T not a multiple of the chunk) and B=1 T=1 with the ref case's dims, and B=2 T=2048 at the
bench's heads; limit 1e-5 relative per gradient and output in fp32, 1e-4 in bf16 (TOL: the same kernels, only the
order of atomics and reductions may differ; the eager path run twice shows that spread).
The eager path is the one check.py / bf16_run.py compare with float64.

Timing at (8, 2048, 16, 64) (Mamba-2 32 heads, P = N = 64), one process, CUDA events, median of `reps` steps
(forward, loss = sum(out * cot), backward to every input and Mamba-2's params): per model and precision (fp32, bf16)
seqc "old" (the plans before compiler/backends/torch/chain-copies.ts, <modules>/old from old_parts.py, eager), "eager"
(today's plans, graphs off), "graphs", and the anchor (bf16, as chunked_bench.py); also "gpu": an eager step's GPU time alone
(the step enqueued behind a torch.cuda._sleep, so the host is ahead and the events see only the GPU's work), the
floor graphs can reach; and each stateless part's forms timed alone (GPU time, 5 runs) for the form choice.

  python3 bench/torch/graph_bench.py <modules dir> [--models simple_gla,mamba2,gla] [--out graphs.json] [--check-only | --timing-only]
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
import chunked_bench as cb  # noqa: E402

DEV = tb.DEV
# The same kernels: eager and graphs differ only where a kernel's atomics or a torch reduction add in another order
# (fp32: Mamba-2 at T = 2048 2.3e-7, the eager path run twice 2.5e-7). bf16 results are rounded to bf16 at the end,
# which turns such last-bit differences into 2^-8 flips of single elements (SimpleGLA at T = 2048: 2.8e-5 with given
# initial states; 9e-10 at the bench shape), hence the wider bf16 limit.
TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-4}


def step_grads(sm, x, cot, graphs):
    sm.graphs = graphs
    leaves = {n: v.clone().requires_grad_(True) for n, v in x.items()}
    ins = {t["name"]: leaves[t["name"]] for t in sm.inputs if t["name"] in leaves}
    pars = {t["name"]: leaves[t["name"]] for t in sm.params if t["name"] in leaves}
    sts = {t["name"]: leaves[t["name"]] for t in sm.states if t["name"] in leaves}
    outs = sm.apply(ins, pars, sts)
    loss = sum((o.float() * c).sum() for o, c in zip(outs, cot) if c is not None)
    loss.backward()
    return [o.detach().float().clone() for o in outs], {n: v.grad.detach().float().clone() for n, v in leaves.items()}


def check(root, model, log, res):
    sm = cb.seqc_model(root, model, "chunked")
    import seqc_cuda  # (on the path once seqc_model put the modules' directory there)
    import seqc_graphs
    case = json.load(open(os.path.join(root, "ref", model + ".json")))[0]
    dims = case["dims"]
    H = tb.MAMBA2_HEADS if model == "mamba2" else tb.LA_SHAPE[2]
    shapes = [(2, 37, dims), (1, 1, dims), (2, 2048, {k: (H if k == "H" else 64) for k in dims})]
    for B, T, d in shapes:
        full = dict(d, B=B, T=T)
        for dt in (torch.float32, torch.bfloat16):
            worst, noise = 0.0, 0.0
            for rep in range(3):
                g = torch.Generator(device=DEV).manual_seed(100 * rep + T)
                x = {}
                for t in sm.inputs + sm.params + sm.states:
                    lead = ["B", "T"] if t["role"] == "input" else (["B"] if t["role"] == "state" else [])
                    shp = [full[a] for a in lead] + [seqc_cuda.eval_size(s, full) for s in t["shape"]]
                    v = torch.randn(shp, device=DEV, generator=g)
                    if t["name"] in ("g", "gk"):
                        v = torch.nn.functional.logsigmoid(v) / 4
                    if t["name"] == "dt":
                        v = torch.nn.functional.softplus(v - 3.0)
                    if t["name"] == "A":
                        v = -torch.exp(v * 0.5)
                    if t["role"] in ("input", "state") and t["name"] in ("B", "C", "k", "q"):
                        v = v / shp[-1] ** 0.5
                    x[t["name"]] = v.to(dt) if (t["role"] == "input" and dt == torch.bfloat16) else v
                cot = []
                for t in sm.outputs + sm.states:
                    lead = [B, T] if t["role"] == "output" else [B]
                    cot.append(torch.randn(lead + [seqc_cuda.eval_size(s, full) for s in t["shape"]], device=DEV, generator=g))
                o_e, g_e = step_grads(sm, x, cot, False)
                o_g, g_g = step_grads(sm, x, cot, True)
                errs = [tb.rel(a, b) for a, b in zip(o_g, o_e)] + [tb.rel(g_g[n], g_e[n]) for n in g_e]
                worst = max([worst] + errs)
                o_2, g_2 = step_grads(sm, x, cot, False)  # eager again: the run-to-run spread of the kernels' atomics
                noise = max([noise] + [tb.rel(a, b) for a, b in zip(o_2, o_e)] + [tb.rel(g_2[n], g_e[n]) for n in g_e])
            st = seqc_graphs.stats(sm)
            ran = sorted({"%s:%s" % (k[0][0], v[1][:60]) for k, v in st.items()})
            replays = {k[0][0]: v[3] for k, v in st.items()}
            row = {"model": model, "B": B, "T": T, "dims": d, "dtype": str(dt), "graphs_vs_eager_rel": worst, "eager_vs_eager_rel": noise, "graphs": ran, "replays": replays,
                   "ok": worst <= TOL[dt] and all(r.endswith(":graph") for r in ran)}
            res["check"].append(row)
            log("check %s B=%d T=%d %s: graphs vs eager %.1e (eager vs eager %.1e); %s %s; %s" % (model, B, T, str(dt)[6:], worst, noise, ", ".join(ran), replays, "ok" if row["ok"] else "FAIL"))
            sm._seqc_graphs.clear()
    tb.free_all()


def gpu_only(one, reps=5):
    """The step's GPU time: enqueued behind a 50 ms sleep, so the host runs ahead and the events time only the GPU."""
    out = []
    for _ in range(reps):
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        torch.cuda._sleep(int(50e-3 * 1.98e9))
        ev[0].record()
        one()
        ev[1].record()
        ev[1].synchronize()
        out.append(ev[0].elapsed_time(ev[1]))
    return statistics.median(out)


def stateless_forms(sm, dims, B, T, x, log):
    """Each stateless part's applicable forms, GPU time alone at [B*T, 1]."""
    import seqc_cuda
    out = {}
    for part in ("prep", "postBw", "prepBw"):
        key = "chain:" + part
        if key not in sm.meta["plans"]:
            continue
        plan = sm.meta["plans"][key]
        r = sm.runner(key, DEV)
        ins = {}
        for t in plan["tensors"]:
            if t["role"] == "input":
                ins[t["name"]] = torch.randn([B * T, 1] + [seqc_cuda.eval_size(s, dims) for s in t["shape"]], device=DEV) * 0.1
        pars = {t["name"]: x[t["name"]] for t in sm.params if t["name"] in x}
        row = {}
        for f, _ in r.applicable(dims, B * T, 1):
            v = f["variant"]

            def one():
                sm.execute(key, dims, B * T, 1, ins, pars, {}, torch.float32, DEV, v)
            try:
                one()
                row[v] = gpu_only(one)
            except Exception as e:  # noqa: BLE001
                row[v] = "%s: %s" % (type(e).__name__, str(e)[:100])
        out[part] = row
        log("  %s forms (gpu ms): %s" % (part, ", ".join("%s %s" % (k, "%.3f" % v if isinstance(v, float) else v) for k, v in row.items())))
    return out


def old_model(root, sm):
    """The module as built before chain-copies.ts (<root>/old/<Model>.json from old_parts.py merged in), or None."""
    part = os.path.join(root, "old", sm.name + ".json")
    if not os.path.exists(part):
        return None
    import seqc_torch
    meta = json.load(open(os.path.join(root, sm.name + ".torch.json")))
    o = json.load(open(part))
    meta["chunked"] = o["chunked"]
    for k in [k for k in meta["plans"] if k.split(":")[0] in ("chain", "chain64") and k.split(":")[1] in ("prep", "prepBw", "postBw")]:
        del meta["plans"][k]
    meta["plans"].update(o["plans"])
    path = "/tmp/%s.old.torch.json" % sm.name
    json.dump(meta, open(path, "w"))
    return seqc_torch.SeqcModel(path, None, "auto", "chunked")


def timing(args, root, model, log, res):
    B, T, H, K, row, x, cot = cb.la_case(model)
    smc = cb.seqc_model(root, model, "chunked")
    import seqc_chunked
    import seqc_graphs
    old = old_model(root, smc)
    grads = {}
    for prec, xs in (("fp32", x), ("bf16", {n: (v if n in tb.LA_PARAMS else v.to(torch.bfloat16)) for n, v in x.items()})):
        c = cot.to(xs[next(iter(xs))].dtype)
        # old: the plans before chain-copies.ts, eager (the state before this work); eager / graphs: today's plans
        for mode, sm in (("old", old), ("eager", smc), ("graphs", smc)):
            if sm is None:
                continue
            one, leaves = cb.seqc_step(sm, xs, c)
            sm.graphs = mode == "graphs"
            # (old: the stateless parts' form by the thread-count rule and the decay adjoint as the chain's scan, as before)
            seqc_chunked.TUNE_STATELESS = mode != "old"
            seqc_chunked.DECAY_WAY = "plan" if mode == "old" else "torch"
            for _ in range(5 if mode == "graphs" else 2):  # (graphs: the captures, direct ones included, before timing)
                one()
            torch.cuda.synchronize()
            tag = "seqc_%s_%s" % (prec, mode)
            row[tag] = tb.timed(one, 1, args.reps, args.cap_s)
            one()
            grads[tag] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
            if mode != "graphs":
                row[tag]["gpu_ms"] = gpu_only(one)
            else:
                row[tag]["graphs"] = [list(v[1:]) for v in seqc_graphs.stats(sm).values()]
            log("%s: %s %.2f ms (fwd %.2f)%s" % (model, tag, row[tag]["ms"], row[tag]["fwd_ms"], " gpu-only %.2f" % row[tag]["gpu_ms"] if "gpu_ms" in row[tag] else " %s" % row[tag]["graphs"]))
            del one, leaves
        smc._seqc_graphs.clear()
        tb.free_all()
    row["graphs_vs_eager_rel"] = {p: max(tb.rel(grads["seqc_%s_graphs" % p][n], grads["seqc_%s_eager" % p][n]) for n in grads["seqc_fp32_eager"]) for p in ("fp32", "bf16")}
    if old is not None:
        row["new_vs_old_rel"] = {p: max(tb.rel(grads["seqc_%s_eager" % p][n], grads["seqc_%s_old" % p][n]) for n in grads["seqc_fp32_eager"]) for p in ("fp32", "bf16")}
    row["bf16_vs_fp32_rel"] = max(tb.rel(grads["seqc_bf16_graphs"][n], grads["seqc_fp32_eager"][n]) for n in grads["seqc_fp32_eager"])
    dims, _, _ = smc.resolve({t["name"]: x[t["name"]] for t in smc.inputs}, {}, {})
    if not args.no_forms:
        row["stateless_forms_gpu_ms"] = stateless_forms(smc, dims, B, T, x, log)
    fn = tb.anchor_fn(model, K)
    row["anchor_name"] = tb.ANCHOR_NAME[model] if model in tb.ANCHOR_NAME else None
    if row["anchor_name"]:
        la = {n: (v.clone() if n in tb.LA_PARAMS else v.to(torch.bfloat16)).requires_grad_(True) for n, v in x.items()}
        cot16 = cot.to(torch.bfloat16)

        def fa():
            o = fn(la)
            return (o.float() * cot16.float()).sum(), o
        one_a = tb.step_fn(fa, list(la.values()))
        try:
            try:
                one_a()
            except RuntimeError as e:
                if model != "simple_gla":
                    raise
                row["anchor_name"] = "fla chunk_gla (g broadcast over K; chunk_simple_gla refused: %s)" % str(e)[:80]
                from fla.ops.gla import chunk_gla
                fn = lambda d: chunk_gla(d["q"], d["k"], d["v"], d["g"][..., None].expand_as(d["q"]).contiguous(), scale=K ** -0.5)[0]  # noqa: E731
                for v in la.values():
                    v.grad = None
                one_a()
            torch.cuda.synchronize()
            row["anchor"] = tb.timed(one_a, 2, args.reps, args.cap_s)
            row["anchor"]["gpu_ms"] = gpu_only(one_a)
            row["bf16_vs_anchor_rel"] = max(tb.rel(grads["seqc_bf16_graphs"][n], la[n].grad.float()) for n in la)
        except Exception as e:  # noqa: BLE001
            row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
        del one_a, la
    res["timing"].append(row)
    print_row(row, log)
    tb.free_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--models", default="simple_gla,mamba2,gla")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cap-s", type=float, default=2.0)
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--no-forms", action="store_true", help="skip timing each stateless part's forms alone")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "check": [], "timing": []}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)

    def save():
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
    for model in args.models.split(","):
        for what, fn in (("check", check), ("timing", timing)):
            if (what == "check" and args.timing_only) or (what == "timing" and args.check_only):
                continue
            if what == "timing":
                tb.patch_autotune(None, 6) if not getattr(main, "patched", False) else None
                main.patched = True
            try:
                fn(*((root, model, log, res) if what == "check" else (args, root, model, log, res)))
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res[what].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:400]), "ok": False})
                tb.free_all()
            save()
    bad = [r for r in res["check"] if not r.get("ok")]
    log("graph checks: %d, failed %d" % (len(res["check"]), len(bad)))
    print("\nms (gpu-only) | old eager | eager | graphs | anchor/seqc: old eager, graphs")
    for r in res["timing"]:
        if "error" in r:
            print("%s | ERROR %s" % (r["model"], r["error"][:200]))
            continue
        print_row(r, lambda t: print(t, flush=True))


def print_row(r, out):
    a = r.get("anchor")
    out("%s anchor %s" % (r["model"], "%.3f (%.3f)" % (a["ms"], a["gpu_ms"]) if a else r.get("anchor_error", "-")))
    for p in ("fp32", "bf16"):
        cell = lambda k: "%.2f%s" % (r[k]["ms"], " (%.2f)" % r[k]["gpu_ms"] if "gpu_ms" in r[k] else "") if k in r else "-"  # noqa: E731
        ratio = lambda k: "%.2f" % (a["ms"] / r[k]["ms"]) if a and k in r else "-"  # noqa: E731
        out("%s %s | %s | %s | %s | %s, %s" % (r["model"], p, cell("seqc_%s_old" % p), cell("seqc_%s_eager" % p), cell("seqc_%s_graphs" % p),
                                            ratio("seqc_%s_old" % p), ratio("seqc_%s_graphs" % p)))


if __name__ == "__main__":
    sys.exit(main())
