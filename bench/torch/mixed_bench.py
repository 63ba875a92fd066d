"""The transposed cores' mixed-I/O variants on the GPU (issue 6): bf16 tensors run coreT (dq) and adjointT (dk) of a
scalar-decay model on the chunked form's bf16-input, fp32-output kernels (runtime/torch/seqc_chunked.py TRANSPOSED_IO
"mixed") instead of the fp32 kernels on fp32 copies ("f32", the old path); and the decay adjoint with them either
summed over the whole sequence (DECAY_ANCHOR "none") or anchored every C tokens (DECAY_ANCHOR "mixed" with
DECAY_ANCHOR_CHUNK C: runtime/torch/seqc_decay_adjoint.py). One process, the paths side by side (PATHS).
The anchors' own cost: seqc_decay_adjoint.anchored_decay_adjoint alone at the bench shape per C (CUDA events, eager).

Accuracy, per model and path: bench/torch/bf16_run.py's checks (the reference cases vs seqc's float64 kernels at the
bf16-rounded values, and B=2 T=2048 at the bench's heads), limit 1e-2 per gradient.
Timing at (8, 2048, 16, 64) (Mamba-2 32 heads), bf16: per path the step with CUDA graphs (median, CUDA events), an
eager step's GPU time alone (graph_bench.gpu_only) and the chain's parts one by one (chunked_bench.phases, eager);
fp32 with graphs for scale; the anchor in bf16 (fla / mamba_ssm, as graph_bench.py). Gradients of the two paths
compared (relative, per gradient).

  python3 bench/torch/mixed_bench.py <modules dir> [--models simple_gla,mamba2] [--out mixed.json] [--timing-only | --accuracy-only]
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402
import chunked_bench as cb  # noqa: E402
import graph_bench as gb  # noqa: E402
import bf16_run as br  # noqa: E402

DEV = tb.DEV
# name: (TRANSPOSED_IO, DECAY_ANCHOR, DECAY_ANCHOR_CHUNK, DECAY_ANCHOR_GRAM, REVERSE_SUM, REVERSE_GLUE); the glue's
# reversals and reverse sums as they were timed before (flips, a cumsum over T) in all but "new*": "old" is the default
# before them (run 1 of bench/RESULTS.md "The glue's reversals and reverse sums"), "new" with them (the reverse sums per
# chunk as products, the reversals lean) and the stack Gram, "new-lean" with the anchors' lean Gram (the default now),
# "new-cumsum" the sums inside the chunks by torch.cumsum
# GLUE_COPIES (the 7th): "old" on every path before "copies-lean" (the default now: seqc_chunked.GLUE_COPIES); "copies-old"
# is the default before it (= "new-lean")
# STATELESS_IO (the 8th): "f32" on every path before "stateless-bf16" (the default now: seqc_chunked.STATELESS_IO, the
# stateless parts' bf16-input forms); "stateless-f32" is the default before it (= "copies-lean")
# ALIAS_IO (the 9th): "f32" on every path before "alias-bf16" (the default now: seqc_chunked.ALIAS_IO, prep's and post's
# copies of bf16 tensors handed on in bf16)
# FLIP_VIEW, ROWS_IO, PREP_IO, PART_INPUTS (the 10th to 13th): "plain", "f32", "bf16", "all" on every path before the s8
# ones: "s8-old" is the default before them (= "alias-bf16"), "s8-flip" the reversals on 8-byte views, "s8-read" also the
# stateless parts handed only the inputs their plans bind, "s8-new" also the rows readout's bf16 operands and prep's timed
# pick (the default now)
SWITCHES = ("TRANSPOSED_IO", "DECAY_ANCHOR", "DECAY_ANCHOR_CHUNK", "DECAY_ANCHOR_GRAM", "REVERSE_SUM", "REVERSE_GLUE", "GLUE_COPIES", "STATELESS_IO", "ALIAS_IO",
            "FLIP_VIEW", "ROWS_IO", "PREP_IO", "PART_INPUTS", "STATELESS_WARP", "IDLE_INPUTS", "ADJOINT_OUT", "RUN_COPIES", "CORE_RERUN", "ANCHOR_CHUNKS",
            "DECAY_TERMS", "ANCHOR_VEC", "GRAD_SUM", "GRAM_PRODUCTS", "ZERO_STORES", "ROWS_FORM", "ROWS_CHUNK_WARPS", "ROWS_CHUNK_PIPE")
PATHS = {"f32": ("f32", "none", 64, "stack", "flip", "flip", "old", "f32", "f32"), "mixed": ("mixed", "none", 64, "stack", "flip", "flip", "old", "f32", "f32"),
         "mixed+a64": ("mixed", "mixed", 64, "stack", "flip", "flip", "old", "f32", "f32"), "mixed+a32": ("mixed", "mixed", 32, "stack", "flip", "flip", "old", "f32", "f32"),
         "mixed+a16": ("mixed", "mixed", 16, "stack", "flip", "flip", "old", "f32", "f32"), "mixed+a64-lean": ("mixed", "mixed", 64, "lean", "flip", "flip", "old", "f32", "f32"),
         "old": ("mixed", "mixed", 64, "stack", "flip", "flip", "old", "f32", "f32"), "new": ("mixed", "mixed", 64, "stack", "chunk", "lean", "old", "f32", "f32"),
         "new-lean": ("mixed", "mixed", 64, "lean", "chunk", "lean", "old", "f32", "f32"), "new-cumsum": ("mixed", "mixed", 64, "stack", "cumsum", "lean", "old", "f32", "f32"),
         "new-f32": ("f32", "none", 64, "stack", "chunk", "lean", "old", "f32", "f32"),
         "copies-old": ("mixed", "mixed", 64, "lean", "chunk", "lean", "old", "f32", "f32"), "copies-lean": ("mixed", "mixed", 64, "lean", "chunk", "lean", "lean", "f32", "f32"),
         "stateless-f32": ("mixed", "mixed", 64, "lean", "chunk", "lean", "lean", "f32", "f32"), "stateless-bf16": ("mixed", "mixed", 64, "lean", "chunk", "lean", "lean", "bf16", "f32"),
         "alias-bf16": ("mixed", "mixed", 64, "lean", "chunk", "lean", "lean", "bf16", "bf16")}
PATHS = {k: v + ("plain", "f32", "bf16", "all") for k, v in PATHS.items()}
PATHS.update({"s8-old": PATHS["alias-bf16"], "s8-flip": PATHS["alias-bf16"][:9] + ("wide", "f32", "bf16", "all"),
              "s8-read": PATHS["alias-bf16"][:9] + ("wide", "f32", "bf16", "read"), "s8-new": PATHS["alias-bf16"][:9] + ("wide", "bf16", "timed", "read")})
# STATELESS_WARP (the 14th): False on every path before "s9-new" (the stateless bf16 twins' warp-split forms in the
# trial, the default now); "s9-old" = "s8-new"
PATHS = {k: v + (False,) for k, v in PATHS.items()}
PATHS.update({"s9-old": PATHS["s8-new"], "s9-new": PATHS["s8-new"][:13] + (True,)})
# IDLE_INPUTS, ADJOINT_OUT, RUN_COPIES, CORE_RERUN (the 15th to 18th): "all", "f32", "plan", "post" on every path before
# the s10 ones: "s10-old" = "s9-new" (the default before them), "s10-new" all four new (the default now), "s10-conv" the
# three that only drop conversions (IDLE_INPUTS, ADJOINT_OUT, RUN_COPIES) with the forward core rerun as before
PATHS = {k: v + ("all", "f32", "plan", "post") for k, v in PATHS.items()}
PATHS.update({"s10-old": PATHS["s9-new"], "s10-conv": PATHS["s9-new"][:14] + ("none", "low", "input", "post"),
              "s10-new": PATHS["s9-new"][:14] + ("none", "low", "input", "bound")})
# ANCHOR_CHUNKS (the 19th): "copies" on every path before the s11 ones: "s11-old" = "s10-new" (the default before it),
# "s11-new" the lean Gram's chunk products on the anchor chunks kernel (compiler/backends/cuda/anchor-chunks.ts)
PATHS = {k: v + ("copies",) for k, v in PATHS.items()}
PATHS.update({"s11-old": PATHS["s10-new"], "s11-new": PATHS["s10-new"][:18] + ("kernel",)})
# DECAY_TERMS, ANCHOR_VEC, GRAD_SUM, GRAM_PRODUCTS (the 20th to 23rd): "torch", "plain", "f32", "four" on every path before
# the s12 ones: "s12-old" = "s11-new" (the default before them), "s12-terms" the decay adjoint's terms on their kernel
# (decay-terms.ts), "s12-vec" the anchor chunks kernels' wide twins, "s12-sum" the multi-piece gradients' last sums written
# bf16, "s12-gram" the lean Gram's two products, "s12-new" all four
PATHS = {k: v + ("torch", "plain", "f32", "four") for k, v in PATHS.items()}
PATHS.update({"s12-old": PATHS["s11-new"], "s12-terms": PATHS["s11-new"][:19] + ("kernel", "plain", "f32", "four"),
              "s12-vec": PATHS["s11-new"][:19] + ("torch", "v4", "f32", "four"), "s12-sum": PATHS["s11-new"][:19] + ("torch", "plain", "low", "four"),
              "s12-gram": PATHS["s11-new"][:19] + ("torch", "plain", "f32", "two"), "s12-new": PATHS["s11-new"][:19] + ("kernel", "v4", "low", "two")})
# "s13-old" = the defaults after run s12 1 (d23e115: the terms kernel, bf16 sums, two Gram products, the plain anchor
# kernels), "s13-groups" the Gram in key-row groups (the default since). (Run s13 1 also timed "s13-rows4" / "s13-new",
# the terms kernel with four rows a warp, a TERMS_ROWS switch not kept: slower, bench/RESULTS.md.)
PATHS.update({"s13-old": PATHS["s11-new"][:19] + ("kernel", "plain", "low", "two"), "s13-groups": PATHS["s11-new"][:19] + ("kernel", "plain", "low", "groups")})
# ZERO_STORES (the 24th): "write" on every path before "s14-zeros" (a running stateless part's literal zeros left out of
# the sums, and its "-nz" forms, which write neither them nor its copies, in the trial); "s14-old" = "s13-groups"
PATHS = {k: v + ("write",) for k, v in PATHS.items()}
PATHS.update({"s14-old": PATHS["s13-groups"], "s14-zeros": PATHS["s13-groups"][:23] + ("skip",)})
# Run s15 (helper D): the stateless parts' row-major twins (STATELESS_ROWS), the trial's picks kept in graph capture
# (GRAPH_PICKS) and prep's bf16-input twin without its timed pick (PREP_IO "bf16"), set apart from SWITCHES (EXTRA: the
# switches a path sets past its tuple; every other path leaves them at the module's defaults before s15: False, "auto").
# "s15-old" = "s14-zeros" (the defaults before), "s15-rows" the twins in the trial, "s15-graph" also the picks in graphs,
# "s15-new" also PREP_IO "bf16".
EXTRA_DEFAULTS = {"STATELESS_ROWS": False, "GRAPH_PICKS": "auto"}
EXTRA = {"s15-old": {}, "s15-rows": {"STATELESS_ROWS": True}, "s15-graph": {"STATELESS_ROWS": True, "GRAPH_PICKS": "tuned"},
         "s15-new": {"STATELESS_ROWS": True, "GRAPH_PICKS": "tuned", "PREP_IO": "bf16"}}
PATHS.update({k: PATHS["s14-zeros"] for k in EXTRA})
# Run s16 (helper D): the terms kernel reading adjointT's dk in reversed time (REVERSED_READS "terms": SimpleGLA's and GLA's
# float32 flip of dk becomes a bf16 flip after dk's conversion; Mamba-2 unchanged). "s16-old" = "s15-new" (the defaults).
EXTRA_DEFAULTS["REVERSED_READS"] = "flip"
EXTRA.update({"s16-old": dict(EXTRA["s15-new"]), "s16-rev": dict(EXTRA["s15-new"], REVERSED_READS="terms")})
PATHS.update({k: PATHS["s14-zeros"] for k in ("s16-old", "s16-rev")})
# ROWS_FORM, ROWS_CHUNK_WARPS (the 25th, 26th): "walk", 4 on every path before the c15 ones: "c15-walk" = "s14-zeros" (the
# defaults before them), "c15-chunk" GLA's transposed cores in the chunked form on tensor cores (rows-chunk.ts, 4 warps a
# block), "c15-chunk8" the same with 8 warps
PATHS = {k: v + ("walk", 4) for k, v in PATHS.items()}
# ("c15-noterms": "c15-walk" with DECAY_TERMS "torch": GLA's default before decay-terms.ts had its float32 q / bf16 k entry)
PATHS.update({"c15-walk": PATHS["s14-zeros"], "c15-chunk": PATHS["s14-zeros"][:24] + ("chunk", 4), "c15-chunk8": PATHS["s14-zeros"][:24] + ("chunk", 8),
              "c15-noterms": PATHS["s14-zeros"][:19] + ("torch",) + PATHS["s14-zeros"][20:]})
# ROWS_CHUNK_PIPE (the 27th): False on every path before "c15-pipe" (the 8-warp chunked form's entries that load the next
# chunk while one computes, rows-chunk.ts pipe; not yet timed); "c15-chunk8" is the default since run c15 1
PATHS = {k: v + (False,) for k, v in PATHS.items()}
PATHS.update({"c15-pipe": PATHS["c15-chunk8"][:26] + (True,)})
# Run d12 (helper D, session 12): every path at the module's defaults of b94e6c1 (c15-chunk8's tuple, the s15 switches as the
# defaults now) and then: "d12-base" nothing more, "d12-pipe" ROWS_CHUNK_PIPE (the prefetching entries), "d12-terms"
# REVERSED_READS "terms", "d12-rev" ROWS_REVERSED "kernel" (GLA's adjointT reading reversed time: no flips for it or of dk, the
# shifted decays gathered in bf16), "d12-fused" also ROWS_TERMS "kernel" (the terms written beside dk, dk in bf16), "d12-all"
# also the prefetching entries. (New EXTRA switches left at the way before on every other path.)
EXTRA_DEFAULTS.update({"ROWS_REVERSED": "flip", "ROWS_TERMS": "apart"})
D12 = {"STATELESS_ROWS": True, "GRAPH_PICKS": "tuned", "PREP_IO": "bf16"}
EXTRA.update({"d12-base": dict(D12), "d12-pipe": dict(D12, ROWS_CHUNK_PIPE=True), "d12-terms": dict(D12, REVERSED_READS="terms"),
              "d12-rev": dict(D12, ROWS_REVERSED="kernel"), "d12-fused": dict(D12, ROWS_REVERSED="kernel", ROWS_TERMS="kernel"),
              "d12-all": dict(D12, ROWS_REVERSED="kernel", ROWS_TERMS="kernel", ROWS_CHUNK_PIPE=True)})
# "d12-new" the defaults after run d12 1 (the prefetching entries, ROWS_REVERSED "kernel", REVERSED_READS "terms"); "d12-new-t"
# with ROWS_TERMS "kernel" too (its entries' dq, k copied by cp.async since run d12 1: modules built after 2e126b0)
EXTRA.update({"d12-new": dict(D12, ROWS_CHUNK_PIPE=True, ROWS_REVERSED="kernel", REVERSED_READS="terms"),
              "d12-new-t": dict(D12, ROWS_CHUNK_PIPE=True, ROWS_REVERSED="kernel", REVERSED_READS="terms", ROWS_TERMS="kernel")})
PATHS.update({k: PATHS["c15-chunk8"] for k in ("d12-base", "d12-pipe", "d12-terms", "d12-rev", "d12-fused", "d12-all", "d12-new", "d12-new-t")})
PROFILE_PATHS = [p for p in os.environ.get("PROFILE_PATHS", "").split(",") if p]
ACC_PATHS = [p for p in os.environ.get("ACC_PATHS", "f32,mixed,mixed+a64,mixed+a32,mixed+a16,mixed+a64-lean").split(",")]
TIME_PATHS = [p for p in os.environ.get("TIME_PATHS", "f32,mixed,mixed+a64,mixed+a64-lean").split(",")]


def set_path(name):
    import seqc_chunked
    set_switches(PATHS[name])
    for k, v in dict(EXTRA_DEFAULTS, **EXTRA.get(name, {})).items():
        if hasattr(seqc_chunked, k):
            setattr(seqc_chunked, k, v)


def stateless_trials(log, res):
    """The stateless parts' trial times so far (seqc_chunked.TRIALS), logged and kept in res["trials"]."""
    import seqc_chunked
    rows = [{"model": k[0], "variant": k[1], "B": k[2], "T": k[3], "ms": v} for k, v in sorted(getattr(seqc_chunked, "TRIALS", {}).items(), key=lambda kv: str(kv[0]))]
    res["trials"] = rows
    for r in rows:
        log("trial %s %s B=%d T=%d: %s" % (r["model"], r["variant"], r["B"], r["T"], r["ms"]))


def switches():
    import seqc_chunked
    return tuple(getattr(seqc_chunked, k) for k in SWITCHES) + tuple(getattr(seqc_chunked, k, None) for k in EXTRA_DEFAULTS)


def set_switches(vals):
    import seqc_chunked
    for k, v in zip(SWITCHES + tuple(EXTRA_DEFAULTS), vals):
        if k in EXTRA_DEFAULTS and not hasattr(seqc_chunked, k):
            continue
        setattr(seqc_chunked, k, v)


def accuracy(root, model, log, res):
    cb.seqc_model(root, model, "auto")
    defaults = switches()
    sub = {"accuracy": []}
    br.accuracy(root, model, log, sub, [(p, (lambda p=p: set_path(p))) for p in ACC_PATHS])
    for r in sub["accuracy"]:
        r["transposed_io"] = r["path"]
    res["accuracy"] += sub["accuracy"]
    set_switches(defaults)


def anchor_cost(root, log, res):
    """anchored_decay_adjoint alone at the bench shapes (scalar decays; SimpleGLA H=16, Mamba-2 H=32, K=V=64), fp32,
    per C: ms (median of CUDA-event-timed calls), and the flops it does (U and R: 2 B T H K V multiply-adds, the Gram
    B H n^2 K V)."""
    if root not in sys.path:
        sys.path.insert(0, root)
    import seqc_decay_adjoint as da
    B, T, _, K = tb.LA_SHAPE
    V = K
    g = torch.Generator(device=DEV).manual_seed(5)
    for H in (tb.LA_SHAPE[2], tb.MAMBA2_HEADS):
        r = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
        terms, ld = r(B, T, H), -torch.rand(B, T, H, device=DEV, generator=g)
        k, v, q, dy = r(B, T, H * K), r(B, T, H * V), r(B, T, H * K), r(B, T, H * V)
        S0, dS = r(B, H * K * V), r(B, H * K * V)
        for C, gram in ((64, "stack"), (32, "stack"), (16, "stack"), (64, "lean"), (32, "lean")):
            def f():
                return da.anchored_decay_adjoint(terms, ld, [(k, v)], [(q, dy)], S0, dS, B, T, H, K, V, False, torch.float32, DEV, C, gram)
            for _ in range(3):
                f()
            ts = []
            for _ in range(15):
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                ev[0].record()
                f()
                ev[1].record()
                ev[1].synchronize()
                ts.append(ev[0].elapsed_time(ev[1]))
            n = -(-T // C)
            row = {"H": H, "C": C, "gram": gram, "ms": sorted(ts)[len(ts) // 2], "gflop": 2 * (2 * B * T * H * K * V + B * H * n * n * K * V) / 1e9}
            res["anchor_cost"].append(row)
            log("anchor cost B=%d T=%d H=%d K=V=%d C=%d gram %s: %.3f ms (%.2f GFLOP)" % (B, T, H, K, C, gram, row["ms"], row["gflop"]))
        tb.free_all()


def timing(args, root, model, log, res):
    B, T, H, K, row, x, cot = cb.la_case(model)
    sm = cb.seqc_model(root, model, "chunked")
    x16 = {n: (v if n in tb.LA_PARAMS else v.to(torch.bfloat16)) for n, v in x.items()}
    grads = {}
    defaults = switches()
    runs = [("bf16", p) for p in TIME_PATHS]
    for rnd in range(2):  # two rounds, interleaved: drift of the clocks shows as a difference between them
        for prec, path in runs:
            xs = x16 if prec == "bf16" else x
            set_path(path)
            one, leaves = cb.seqc_step(sm, xs, cot.to(xs["q"].dtype if "q" in xs else xs["x"].dtype))
            tag = "seqc_%s_%s" % (prec, path) if prec == "bf16" else "seqc_fp32"
            sm.graphs = True
            for _ in range(5):
                one()
            torch.cuda.synchronize()
            t = tb.timed(one, 1, args.reps, args.cap_s)
            row.setdefault(tag, {"ms_rounds": []})["ms_rounds"].append(t["ms"])
            row[tag]["ms"] = min(row[tag]["ms_rounds"])
            row[tag]["fwd_ms"] = t["fwd_ms"]
            if rnd == 0:
                one()
                grads[tag] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
                sm.graphs = False
                one()
                row[tag]["gpu_ms"] = gb.gpu_only(one)
                ph, ran = cb.phases(sm, one)
                row[tag]["phases_ms"], row[tag]["ran_chunked"] = ph, ran
                sm.graphs = True
            log("%s round %d: %s graphs %.3f ms (fwd %.3f); eager gpu-only %.3f; phases %s" % (
                model, rnd, tag, t["ms"], t["fwd_ms"], row[tag]["gpu_ms"], ", ".join("%s %.3f" % kv for kv in row[tag]["phases_ms"].items())))
            del one, leaves
            sm._seqc_graphs.clear()
            tb.free_all()
    set_switches(defaults)
    stateless_trials(log, res)
    base = "seqc_bf16_%s" % TIME_PATHS[0]
    row["vs_first_rel"] = {p: {"d" + n: tb.rel(grads["seqc_bf16_%s" % p][n], grads[base][n]) for n in grads[base]} for p in TIME_PATHS[1:]}
    log("%s: bf16 grads vs the %s path: %s" % (model, TIME_PATHS[0], row["vs_first_rel"]))
    for p in PROFILE_PATHS:
        try:
            profile(sm, x16, cot, p, model, log, res)
        except Exception as e:  # noqa: BLE001
            res.setdefault("profile_errors", []).append("%s %s: %s: %s" % (model, p, type(e).__name__, str(e)[:300]))
            log("profile error %s" % res["profile_errors"][-1])
        set_switches(defaults)
        sm._seqc_graphs.clear()
        tb.free_all()
    fn = tb.anchor_fn(model, K)
    row["anchor_name"] = tb.ANCHOR_NAME.get(model)
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
        row["anchor"]["gpu_ms"] = gb.gpu_only(one_a)
        log("%s anchor (%s): %.3f ms (gpu-only %.3f)" % (model, row["anchor_name"], row["anchor"]["ms"], row["anchor"]["gpu_ms"]))
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
        log("%s anchor error %s" % (model, row["anchor_error"]))
    res["timing"].append(row)
    tb.free_all()


def profile(sm, x16, cot, path, model, log, res):
    """One eager bf16 step of `path` under the torch profiler: its GPU kernels by total time, and the host-side ops that
    launched them (counts), written to $OUT/profile-<model>-<path>.txt (PROFILE_DIR)."""
    from torch.profiler import profile as prof, ProfilerActivity
    set_path(path)
    one, _ = cb.seqc_step(sm, x16, cot.to(torch.bfloat16))
    sm.graphs = False
    for _ in range(3):
        one()
    torch.cuda.synchronize()
    stacks = os.environ.get("PROFILE_STACKS", "1") == "1"
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=stacks) as p:
        one()
        torch.cuda.synchronize()
    sm.graphs = True
    DT = torch.autograd.DeviceType.CUDA
    tot = lambda e: getattr(e, "self_device_time_total", None) if hasattr(e, "self_device_time_total") else e.self_cuda_time_total  # noqa: E731
    avg = p.key_averages()
    ev = [e for e in avg if getattr(e, "device_type", None) == DT]
    rows = sorted(({"name": e.key[:120], "count": e.count, "ms": tot(e) / 1e3} for e in ev), key=lambda r: -r["ms"])
    ops = sorted(({"name": e.key[:80], "count": e.count, "cuda_ms": getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0)) / 1e3} for e in avg
                  if getattr(e, "device_type", None) != DT and e.key.startswith("aten::")), key=lambda r: -r["cuda_ms"])
    res.setdefault("profile", []).append({"model": model, "path": path, "total_ms": sum(r["ms"] for r in rows), "kernels": rows[:40], "ops": ops[:40]})
    d = os.environ.get("PROFILE_DIR")
    if d:
        with open(os.path.join(d, "profile-%s-%s.txt" % (model, path)), "w") as f:
            f.write("GPU kernels (self time)\n")
            for r in rows:
                f.write("%9.3f ms  x%-4d %s\n" % (r["ms"], r["count"], r["name"]))
            f.write("\naten ops (CUDA time incl. children)\n")
            for r in ops:
                f.write("%9.3f ms  x%-4d %s\n" % (r["cuda_ms"], r["count"], r["name"]))
            if stacks:  # the copies, conversions and flips by the glue's line that made them (the innermost frames of runtime/torch)
                f.write("\ncopy_ / _to_copy / flip / clone by caller (CUDA time incl. children)\n")
                by = {}
                try:
                    evs = list(p.events())
                except Exception as err:  # noqa: BLE001
                    evs = []
                    f.write("(no events: %s)\n" % err)
                for e in evs:
                    if e.name not in ("aten::copy_", "aten::_to_copy", "aten::flip", "aten::clone") or getattr(e, "device_type", None) == DT:
                        continue
                    par = e.cpu_parent
                    if par is not None and par.name in ("aten::to", "aten::_to_copy", "aten::clone", "aten::contiguous", "aten::reshape", "aten::flip"):
                        if e.name == "aten::copy_":
                            continue  # (counted as its parent)
                    frames = [fr for fr in (e.stack or []) if "seqc_" in fr or "mixed_bench" in fr or "chunked_bench" in fr or "train_bench" in fr]
                    where = " < ".join(fr.split("/")[-1] for fr in frames[:3]) or "(no Python frame)"
                    ms = getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0)) / 1e3
                    k = (e.name, where)
                    c = by.setdefault(k, [0, 0.0])
                    c[0] += 1
                    c[1] += ms
                for (name, where), (cnt, ms) in sorted(by.items(), key=lambda kv: -kv[1][1]):
                    f.write("%9.3f ms  x%-3d %-16s %s\n" % (ms, cnt, name.replace("aten::", ""), where[:220]))
    log("profile %s %s: GPU kernels %.3f ms in all; aten ops: %s" % (model, path, sum(r["ms"] for r in rows),
        "; ".join("%s x%d %.3f" % (r["name"].replace("aten::", ""), r["count"], r["cuda_ms"]) for r in ops[:16])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modules")
    ap.add_argument("--models", default="simple_gla,mamba2")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cap-s", type=float, default=2.0)
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--accuracy-only", action="store_true")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "accuracy": [], "timing": [], "anchor_cost": []}

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t0, s), flush=True)

    def save():
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
    if not args.accuracy_only and os.environ.get("ANCHOR_COST", "1") == "1":
        try:
            anchor_cost(root, log, res)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            res["anchor_cost"].append({"error": "%s: %s" % (type(e).__name__, str(e)[:400])})
        save()
    for model in args.models.split(","):
        for what in ("accuracy", "timing"):
            if (what == "accuracy" and args.timing_only) or (what == "timing" and args.accuracy_only):
                continue
            if what == "timing" and not getattr(main, "patched", False):
                tb.patch_autotune(None, 6)
                main.patched = True
            try:
                accuracy(root, model, log, res) if what == "accuracy" else timing(args, root, model, log, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res[what].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:400]), "ok": False})
                tb.free_all()
            save()
    print("\naccuracy (max rel per gradient, bf16 vs float64; limit 1e-2)")
    for r in res["accuracy"]:
        if "error" in r:
            print("%s ERROR %s" % (r["model"], r["error"][:200]))
            continue
        print("%-10s %-9s %-32s %s %s" % (r["model"], r["transposed_io"], r["case"], " ".join("%s=%.1e" % kv for kv in r["rel"].items()), "ok" if r["ok"] else "FAIL"))
    for r in res["anchor_cost"]:
        print("anchor cost %s" % r)
    print("\nms, (8, 2048, 16, 64) bf16 with graphs [eager gpu-only] | anchor | anchor/seqc")
    for r in res["timing"]:
        if "error" in r:
            print("%s ERROR %s" % (r["model"], r["error"][:200]))
            continue
        a = r.get("anchor")
        for tag in ["seqc_bf16_%s" % p for p in TIME_PATHS]:
            c = r.get(tag)
            if c:
                tr = {k: v for k, v in c.get("phases_ms", {}).items() if k in ("chain:coreT", "chain:adjointT")}
                print("%-10s %-16s %.3f %s [%.3f] coreT+adjointT %.3f | %s | %s" % (r["model"], tag, c["ms"], c["ms_rounds"], c["gpu_ms"], sum(tr.values()),
                      "%.3f" % a["ms"] if a else r.get("anchor_error", "-")[:60], "%.2f" % (a["ms"] / c["ms"]) if a else "-"))


if __name__ == "__main__":
    sys.exit(main())
