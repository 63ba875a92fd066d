"""Forward + backward of the delta-rule family (DeltaNet, Gated DeltaNet, RWKV-7) through seqc's torch target with the
low-rank chunked backward (runtime/torch/seqc_chunked_lowrank.py: the low-rank chain's CUDA plans, glue in torch ops),
beside seqc's step backward and flash-linear-attention's chunk kernels (chunk_delta_rule, chunk_gated_delta_rule,
chunk_rwkv7, bf16 as in bench/torch/chunked_bench.py), in one process (issue 6).

One step = forward, loss = sum(output * a fixed random cotangent), backward to every input; CUDA-event-timed (median
of the reps), the forward part and the whole step. For seqc's chunked backward also the time of each plan it runs
(chain:<part>, CUDA events around each launch sequence); the rest of the backward is the torch glue and launch
overhead. Agreement: seqc chunked vs seqc step gradients (both fp32) and vs the anchor's (bf16).

  python3 bench/torch/lowrank_bench.py <modules dir> [--out results.json] [--models deltanet,gated_deltanet,rwkv7]
      [--shapes 8x2048x16x64,4x8192x16x128] [--step-shapes 8x2048x16x64] [--budget S]
  python3 bench/torch/lowrank_bench.py <modules dir> --warm-fla I N     (Triton precompile share I of N)
"""

import argparse
import importlib
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402  (step_fn, timed, peak_extra, copy_rate, rel, free_all, patch_autotune)
import chunked_bench as cb  # noqa: E402  (phases)

DEV = tb.DEV
MODULE = {"deltanet": "DeltaNet", "gated_deltanet": "GatedDeltaNet", "rwkv7": "Rwkv7"}
ANCHOR = {"deltanet": "fla chunk_delta_rule", "gated_deltanet": "fla chunk_gated_delta_rule", "rwkv7": "fla chunk_rwkv7"}


def inputs(model, B, T, H, K, seed):
    """fp32 inputs in the models' ranges (bench/cuda/chunked/anchors.py, test/helpers/chunk-inputs.ts); seqc's names."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
    q, k, v = rn(B, T, H, K), rn(B, T, H, K), rn(B, T, H, K)
    if model == "deltanet":
        return {"q": q, "k": F.normalize(k, dim=-1), "v": v, "beta": torch.sigmoid(rn(B, T, H))}
    if model == "gated_deltanet":
        return {"q": q, "k": F.normalize(k, dim=-1), "v": v, "beta": torch.sigmoid(rn(B, T, H)), "g": F.logsigmoid(rn(B, T, H)) / 4}
    if model == "rwkv7":
        kk = F.normalize(rn(B, T, H, K), dim=-1)
        return {"r": q / K ** 0.5, "w": F.logsigmoid(rn(B, T, H, K)) / 4, "k": k / K ** 0.5, "v": v, "a": -kk, "b": kk * torch.sigmoid(rn(B, T, H, K))}
    raise ValueError(model)


def anchor_fn(model, K):
    """The anchor's call on seqc-named tensors, returning the output [B, T, H, V] (seqc's DeltaNet / Gated DeltaNet
    scale q by K^-1/2, RWKV-7 has no scale)."""
    if model == "deltanet":
        from fla.ops.delta_rule import chunk_delta_rule
        return lambda d: chunk_delta_rule(d["q"], d["k"], d["v"], d["beta"], scale=K ** -0.5)[0]
    if model == "gated_deltanet":
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
        return lambda d: chunk_gated_delta_rule(d["q"], d["k"], d["v"], d["g"], d["beta"], scale=K ** -0.5)[0]
    if model == "rwkv7":
        from fla.ops.rwkv7 import chunk_rwkv7
        return lambda d: chunk_rwkv7(d["r"], d["w"], d["k"], d["v"], d["a"], d["b"], scale=1.0)[0]
    raise ValueError(model)


def anchor_step(model, K, x, cot):
    """The anchor's bf16 step (forward, loss against the cotangent, backward) on bf16 copies of the inputs x, and
    those copies (their .grad holds the anchor's gradients after a step)."""
    fn = anchor_fn(model, K)
    la = {n: v.to(torch.bfloat16).requires_grad_(True) for n, v in x.items()}
    cot16 = cot.to(torch.bfloat16)

    def fa():
        o = fn(la)
        return (o.float() * cot16.float()).sum(), o
    return tb.step_fn(fa, list(la.values())), la


def seqc_model(root, model, backward):
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(MODULE[model])._model(None, "auto", backward)


def seqc_step(sm, x, cot):
    leaves = {n: v.clone().requires_grad_(True) for n, v in x.items()}

    def fwd():
        o = sm.apply({t["name"]: leaves[t["name"]] for t in sm.inputs}, {}, {})[0]
        return (o * cot).sum(), o
    return tb.step_fn(fwd, list(leaves.values())), leaves


def case(args, root, model, shape, with_step, rate, log):
    B, T, H, K = shape
    row = {"model": model, "B": B, "T": T, "H": H, "K": K, "V": K}
    x = inputs(model, B, T, H, K, 7)
    g = torch.Generator(device=DEV).manual_seed(8)
    cot = torch.randn(B, T, H, K, device=DEV, generator=g)
    n_in = sum(v.numel() for v in x.values())
    row["floor_io_ms_fp32"] = 4 * (2 * n_in + 2 * B * T * H * K) / (rate * 1e6)
    # the chunked form's work per step of the forward (one pass over the chunk transitions and readouts; the backward is
    # a few times it): 2 B T H (K V + K K) per token-chunk product pair at chunk 64 is O(B T H K (K + V + 64))
    row["flops_fwd_chunk64"] = 2 * B * T * H * K * (2 * K + 2 * 64)

    smc = seqc_model(root, model, "chunked")
    one_c, lc = seqc_step(smc, x, cot)
    t0 = time.time()
    one_c()
    torch.cuda.synchronize()
    row["seqc_first_call_s"] = time.time() - t0
    dims, _, _ = smc.resolve({t["name"]: x[t["name"]] for t in smc.inputs}, {}, {})
    row["seqc_forward_variant"] = smc.runner("forward", DEV).pick(dims, B, T)[0]["variant"]
    row["seqc_chunked"] = tb.timed(one_c, 1, args.reps, args.cap_s)
    row["seqc_chunked"]["peak_extra_bytes"] = tb.peak_extra(one_c)
    ph, ran = cb.phases(smc, one_c)
    row["seqc_chunked_phases_ms"] = ph
    row["seqc_chunked_sections_ms"] = sections(one_c)
    log("%s %s: sections %s" % (model, shape, ", ".join("%s %.2f" % kv for kv in row["seqc_chunked_sections_ms"].items())))
    row["seqc_chunked_ran_chunked"] = ran
    bwd = row["seqc_chunked"]["ms"] - row["seqc_chunked"]["fwd_ms"]
    row["seqc_chunked_glue_ms"] = bwd - sum(v for k, v in ph.items() if k.startswith("chain"))
    log("%s %s: seqc chunked %.2f ms (fwd %.2f, %s), backward ran chunked=%s; phases %s; glue+launch %.2f ms; first call %.1fs" % (
        model, shape, row["seqc_chunked"]["ms"], row["seqc_chunked"]["fwd_ms"], row["seqc_forward_variant"], ran,
        ", ".join("%s %.2f" % kv for kv in ph.items()), row["seqc_chunked_glue_ms"], row["seqc_first_call_s"]))
    one_c()
    grads_c = {n: v.grad.detach().clone() for n, v in lc.items()}

    # the glue's choices, each measured in this process beside the default: the decay adjoint as torch.cumsum
    # (seqc_chunked_lowrank.LR_DECAY), other chunk lengths (LR_CHUNK)
    if args.variants and shape == tuple(parse_shapes(args.variants_at)[0]):
        import seqc_chunked_lowrank as lr
        row["variants"] = {}
        vs = [("chunk %d" % c, {"LR_CHUNK": c}) for c in (32, 128)] if args.variants == 1 else []
        if model != "deltanet" and args.variants == 1:
            vs.insert(0, ("decay cumsum", {"LR_DECAY": "cumsum"}))
        if args.variants == 3:  # the per-chunk readouts as the plans again, the chunk transitions as matrix products, sub-blocks
            vs = [("readouts plan", {"LR_READ": "plan"}), ("aug matmul", {"LR_AUG": "matmul"})] + [("chunk %d" % c, {"LR_CHUNK": c}) for c in (32, 128)]
            if model == "rwkv7":
                vs += [("block %d" % b, {"BLOCK": b}) for b in (8, 32)]
        if args.variants == 4:  # the old defaults (eager; RWKV-7 sub-blocks), graphs off, RWKV-7's transitions as products
            if model == "rwkv7":
                vs = [("old default (blocks, eager)", {"LR_KEY": "blocks", "LR_GRAPHS": False}), ("halves, eager", {"LR_GRAPHS": False}),
                      ("blocks, graphs", {"LR_KEY": "blocks"}), ("halves, aug matmul", {"LR_AUG": "matmul"})]
            else:
                vs = [("old default (eager)", {"LR_GRAPHS": False})]
        if args.variants == 5:  # the old layout without sharing (the old default), each change alone, the blocked solve
            vs = [("old default (tokens, no share)", {"LR_LAYOUT": "tokens", "LR_SHARE": False}), ("heads, no share", {"LR_SHARE": False}),
                  ("tokens, share", {"LR_LAYOUT": "tokens"}), ("solve blocks 16", {"LR_SOLVE": "blocks", "SOLVE_BLOCK": 16}),
                  ("solve blocks 32", {"LR_SOLVE": "blocks", "SOLVE_BLOCK": 32})]
            if model != "deltanet":
                vs.append(("decay cumsum", {"LR_DECAY": "cumsum"}))
        if args.variants == 2:  # the pass over chunks as torch.matmul, the per-chunk readouts' sequential variants
            vs = [("pass matmul", {"LR_PASS": "matmul"})] + [("pass matmul, readouts %s" % f, {"LR_PASS": "matmul", "LR_SEQ_FORM": f}) for f in ("workgroup", "global")]
            if model != "deltanet":
                vs.append(("pass matmul, decay cumsum", {"LR_PASS": "matmul", "LR_DECAY": "cumsum"}))
        base_graphs = set((getattr(smc, "_seqc_graphs", None) or {}).keys())
        for label, sets in vs:
            old = {k: getattr(lr, k) for k in sets}
            try:
                for k, v in sets.items():
                    setattr(lr, k, v)
                one_c()
                torch.cuda.synchronize()
                t = tb.timed(one_c, 1, args.reps, args.cap_s)
                ph_v, _ = cb.phases(smc, one_c)
                t["sections_ms"] = sections(one_c)
                one_c()
                t["phases_ms"] = ph_v
                t["grads_vs_default_rel"] = {"d" + n: tb.rel(v.grad, grads_c[n]) for n, v in lc.items()}
                row["variants"][label] = t
                log("%s %s: %s: %.2f ms (fwd %.2f; default %.2f); phases %s; sections %s; gradients vs default %.1e" % (
                    model, shape, label, t["ms"], t["fwd_ms"], row["seqc_chunked"]["ms"], ", ".join("%s %.2f" % kv for kv in ph_v.items()),
                    ", ".join("%s %.2f" % kv for kv in t["sections_ms"].items()), max(t["grads_vs_default_rel"].values())))
            except Exception as e:  # noqa: BLE001
                row["variants"][label] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
                log("%s %s: %s failed: %s" % (model, shape, label, row["variants"][label]["error"]))
            finally:
                for k, v in old.items():
                    setattr(lr, k, v)
                # the variant's graphs go (each holds a private memory pool: five variants' pools filled the H100 in run 5)
                cache = getattr(smc, "_seqc_graphs", None) or {}
                for k in [k for k in cache if k not in base_graphs]:
                    del cache[k]
                tb.free_all()
    import seqc_graphs
    row["graphs"] = [[str(k[0][0])] + [str(x) for x in v] for k, v in seqc_graphs.stats(smc).items()]
    log("%s %s: graphs (key, calls, graph/eager/failure, direct, replays) %s" % (model, shape, row["graphs"]))
    if args.profile and shape == tuple(parse_shapes(args.variants_at)[0]):
        row["profile_top"] = profile(one_c, os.path.join(args.profile, "profile-%s.txt" % model))
        log("%s %s: profile (one eager step, CUDA self ms) %s" % (model, shape, ", ".join("%s %.2f" % kv for kv in row["profile_top"][:10])))
    del one_c, lc
    drop_graphs(smc)

    if with_step:
        try:
            sms = seqc_model(root, model, "step")
            one_s, ls = seqc_step(sms, x, cot)
            one_s()
            torch.cuda.synchronize()
            row["seqc_step"] = tb.timed(one_s, 0, 3, args.cap_s)
            row["chunked_vs_step_rel"] = {"d" + n: tb.rel(grads_c[n], ls[n].grad) for n in ls}
            log("%s %s: seqc step %.2f ms (fwd %.2f); chunked/step gradients %s" % (
                model, shape, row["seqc_step"]["ms"], row["seqc_step"]["fwd_ms"], " ".join("%s=%.1e" % kv for kv in row["chunked_vs_step_rel"].items())))
            del one_s, ls
        except Exception as e:  # noqa: BLE001
            row["step_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
            log("%s %s: step failed: %s" % (model, shape, row["step_error"]))
        tb.free_all()

    row["anchor_name"] = ANCHOR[model]
    try:
        if args.no_anchor:
            raise RuntimeError("not run (--no-anchor)")
        one_a, la = anchor_step(model, K, x, cot)
        t0 = time.time()
        one_a()
        torch.cuda.synchronize()
        row["anchor_first_call_s"] = time.time() - t0
        row["seqc_vs_anchor_rel"] = {"d" + n: tb.rel(grads_c[n], la[n].grad.float()) for n in la}
        row["anchor"] = tb.timed(one_a, 2, args.reps, args.cap_s)
        a, c = row["anchor"], row["seqc_chunked"]
        log("%s %s: %s %.3f ms (fwd %.3f): anchor/seqc %.3f (fwd %.3f, bwd %.3f); seqc vs anchor grads %s" % (
            model, shape, row["anchor_name"], a["ms"], a["fwd_ms"], a["ms"] / c["ms"], a["fwd_ms"] / c["fwd_ms"], (a["ms"] - a["fwd_ms"]) / bwd,
            " ".join("%s=%.1e" % kv for kv in row["seqc_vs_anchor_rel"].items())))
        del one_a, la
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:500])
        log("%s %s: anchor failed: %s" % (model, shape, row["anchor_error"]))
    del grads_c, x
    tb.free_all()
    return row


# --variants 6: the bf16 operands and the lean copies (seqc_chunked_lowrank LR_MM, LR_MM_PARTS, LR_LEAN), each with the
# inputs' dtype it is for: (label, input dtype, switches); the old default first. (Run 7, bench/RESULTS.md, ran these
# with LR_MM "auto" as the module's default, so its "fp32 new" / "bf16 new" / "bf16 new, all products bf16" are
# "fp32 lean" / "bf16 lean, bf16 products" / "bf16 lean, all products bf16" here.)
ALL_PARTS = ("scores", "values", "state", "end")
CONFIGS6 = [
    ("fp32 old (no lean)", torch.float32, {"LR_LEAN": False, "LR_MM": "fp32"}),
    ("fp32 lean", torch.float32, {"LR_LEAN": True, "LR_MM": "fp32"}),
    ("bf16 old (fp32 products, no lean)", torch.bfloat16, {"LR_LEAN": False, "LR_MM": "fp32"}),
    ("bf16 lean, fp32 products", torch.bfloat16, {"LR_LEAN": True, "LR_MM": "fp32"}),
    ("bf16 lean, bf16 products", torch.bfloat16, {"LR_LEAN": True, "LR_MM": "auto"}),
    ("bf16 lean, all products bf16", torch.bfloat16, {"LR_LEAN": True, "LR_MM": "auto", "LR_MM_PARTS": ALL_PARTS}),
]

# --variants 7: the chunk transitions by ChunkCore's torch ops (LR_FUSED "torch", the default before) and by the fused
# kernel (compiler/backends/cuda/lowrank-core.ts, LR_FUSED "cuda"), fp32 and bf16 inputs; profiles and sections of the
# fp32 pair (DeltaNet).
CONFIGS7 = [
    ("fp32 torch transitions", torch.float32, {"LR_FUSED": "torch"}),
    ("fp32 fused transitions", torch.float32, {"LR_FUSED": "cuda"}),
    ("bf16 torch transitions", torch.bfloat16, {"LR_FUSED": "torch"}),
    ("bf16 fused transitions", torch.bfloat16, {"LR_FUSED": "cuda"}),
]
# --variants 8: the readouts from the chunk start states (read, adjoint, fwd) by ChunkCore's torch ops (LR_FUSED_READ
# "torch", the default before) and by the fused kernel (compiler/backends/cuda/lowrank-readout.ts, LR_FUSED_READ "cuda"),
# both with the fused transitions, fp32 and bf16 inputs; profiles and sections of the fp32 pair (DeltaNet).
CONFIGS8 = [
    ("fp32 torch readouts", torch.float32, {"LR_FUSED": "cuda", "LR_FUSED_READ": "torch"}),
    ("fp32 fused readouts", torch.float32, {"LR_FUSED": "cuda", "LR_FUSED_READ": "cuda"}),
    ("bf16 torch readouts", torch.bfloat16, {"LR_FUSED": "cuda", "LR_FUSED_READ": "torch"}),
    ("bf16 fused readouts", torch.bfloat16, {"LR_FUSED": "cuda", "LR_FUSED_READ": "cuda"}),
]
# --variants 9: the backward after the forward's readouts as the adjoint chain (LR_BWD "chain", the default) and in the
# chunk-state structure (LR_BWD "wy", runtime/torch/seqc_lowrank_wy.py), fp32 and bf16 inputs; profiles and sections of
# the fp32 pair (DeltaNet).
CONFIGS9 = [
    ("fp32 chain", torch.float32, {"LR_BWD": "chain"}),
    ("fp32 wy", torch.float32, {"LR_BWD": "wy"}),
    ("bf16 chain", torch.bfloat16, {"LR_BWD": "chain"}),
    ("bf16 wy", torch.bfloat16, {"LR_BWD": "wy"}),
]
# --variants 10: the walks over the chunks by torch products (LR_FUSED_PASS "torch") and by one kernel each
# (compiler/backends/cuda/lowrank-pass.ts, LR_FUSED_PASS "cuda"), with the chain and with wy, and wy's per-chunk products
# by its kernels too (compiler/backends/cuda/lowrank-wy.ts, LR_FUSED_WY "cuda"), fp32 and bf16.
CONFIGS10 = [
    ("fp32 chain", torch.float32, {"LR_BWD": "chain", "LR_FUSED_PASS": "torch"}),
    ("fp32 chain, pass kernel", torch.float32, {"LR_BWD": "chain", "LR_FUSED_PASS": "cuda"}),
    ("fp32 wy, pass kernel", torch.float32, {"LR_BWD": "wy", "LR_FUSED_PASS": "cuda"}),
    ("fp32 wy, pass + wy kernels", torch.float32, {"LR_BWD": "wy", "LR_FUSED_PASS": "cuda", "LR_FUSED_WY": "cuda"}),
    ("bf16 chain", torch.bfloat16, {"LR_BWD": "chain", "LR_FUSED_PASS": "torch"}),
    ("bf16 chain, pass kernel", torch.bfloat16, {"LR_BWD": "chain", "LR_FUSED_PASS": "cuda"}),
    ("bf16 wy, pass + wy kernels", torch.bfloat16, {"LR_BWD": "wy", "LR_FUSED_PASS": "cuda", "LR_FUSED_WY": "cuda"}),
]
# --variants 11: the fused readouts' tensor-core twins for bf16 tensors (seqc_chunked_lowrank LR_READ_MMA,
# compiler/backends/cuda/lowrank-readout-mma.ts) against the fp32 kernel (LR_READ_MMA "off"), beside fp32 tensors.
CONFIGS11 = [
    ("fp32 default", torch.float32, {}),
    ("bf16 fp32 readouts", torch.bfloat16, {"LR_READ_MMA": "off"}),
    ("bf16 tf32x3 readouts", torch.bfloat16, {"LR_READ_MMA": "tf32x3"}),
    ("bf16 tf32 readouts", torch.bfloat16, {"LR_READ_MMA": "tf32"}),
]
# --variants 12: the backward's run of the forward without the readouts y (LR_Y_READ "bound": post's backward binds no y),
# the glue's fewer copies and flips (LR_COPIES "lean") and Gated DeltaNet's decay step merged into its delta step
# (LR_MERGE "decay"), against the way before ("always", "old", "off"), fp32 and bf16.
OLD_GLUE = {"LR_Y_READ": "always", "LR_COPIES": "old", "LR_MERGE": "off"}
NEW_GLUE = {"LR_Y_READ": "bound", "LR_COPIES": "lean", "LR_MERGE": "off"}
CONFIGS12 = [
    ("fp32 old glue", torch.float32, OLD_GLUE),
    ("fp32 no y read", torch.float32, dict(OLD_GLUE, LR_Y_READ="bound")),
    ("fp32 new glue", torch.float32, NEW_GLUE),
    ("fp32 new glue + merge", torch.float32, dict(NEW_GLUE, LR_MERGE="decay")),
    ("bf16 old glue", torch.bfloat16, OLD_GLUE),
    ("bf16 new glue", torch.bfloat16, NEW_GLUE),
    ("bf16 new glue + merge", torch.bfloat16, dict(NEW_GLUE, LR_MERGE="decay")),
]
# --variants 13: a per-key decay (RWKV-7) in the chunk-state backward (LR_BWD_KEY "wy": seqc_lowrank_wy's per-key path,
# torch ops) against the adjoint chain it ran before (LR_BWD_KEY "chain"), fp32 and bf16.
CONFIGS13 = [
    ("fp32 chain", torch.float32, {"LR_BWD": "wy", "LR_BWD_KEY": "chain"}),
    ("fp32 wy", torch.float32, {"LR_BWD": "wy", "LR_BWD_KEY": "wy"}),
    ("bf16 chain", torch.bfloat16, {"LR_BWD": "wy", "LR_BWD_KEY": "chain"}),
    ("bf16 wy", torch.bfloat16, {"LR_BWD": "wy", "LR_BWD_KEY": "wy"}),
]
# --variants 14: the tensor-core twins still off by default for bf16 tensors, on top of the defaults (LR_READ_MMA "tf32",
# LR_Y_READ / LR_COPIES / LR_MERGE): wy's "pre" kernel (LR_WY_MMA), the chunk transitions (LR_CORE_MMA), both.
CONFIGS14 = [
    ("bf16 defaults", torch.bfloat16, {"LR_WY_MMA": "off", "LR_CORE_MMA": "off"}),
    ("bf16 + wy tf32", torch.bfloat16, {"LR_WY_MMA": "tf32", "LR_CORE_MMA": "off"}),
    ("bf16 + core tf32", torch.bfloat16, {"LR_WY_MMA": "off", "LR_CORE_MMA": "tf32"}),
    ("bf16 + wy + core tf32", torch.bfloat16, {"LR_WY_MMA": "tf32", "LR_CORE_MMA": "tf32"}),
]
# --variants 15: wy's reversed chunks read backwards by the fused readouts (LR_REV_READ "kernel": no torch.flip copies)
# against the flips (LR_REV_READ "flip"), bf16 and fp32; the profiles (DeltaNet) also list every copy-making op with its
# Python call stack (profile stacks=True).
CONFIGS15 = [
    ("bf16 flips", torch.bfloat16, {"LR_REV_READ": "flip"}),
    ("bf16 rev reads", torch.bfloat16, {"LR_REV_READ": "kernel"}),
    ("fp32 flips", torch.float32, {"LR_REV_READ": "flip"}),
    ("fp32 rev reads", torch.float32, {"LR_REV_READ": "kernel"}),
]
CONFIGS = {6: CONFIGS6, 7: CONFIGS7, 8: CONFIGS8, 9: CONFIGS9, 10: CONFIGS10, 11: CONFIGS11, 12: CONFIGS12, 13: CONFIGS13, 14: CONFIGS14, 15: CONFIGS15}
# --variants 16: a per-key decay (RWKV-7) in the fused readouts (LR_READ_KEY "cuda": compiler/backends/cuda/
# lowrank-readout-key.ts) against ChunkCore's per-key torch ops (LR_READ_KEY "torch"), on the chain (LR_BWD_KEY "chain"),
# fp32 and bf16; the fp32 pair sectioned and profiled (every model).
CONFIGS16 = [
    ("fp32 torch key reads", torch.float32, {"LR_READ_KEY": "torch"}),
    ("fp32 kernel key reads", torch.float32, {"LR_READ_KEY": "cuda"}),
    ("bf16 torch key reads", torch.bfloat16, {"LR_READ_KEY": "torch"}),
    ("bf16 kernel key reads", torch.bfloat16, {"LR_READ_KEY": "cuda"}),
]
CONFIGS[16] = CONFIGS16
# --variants 17: the per-key kernels in their pre-decayed forms (LR_READ_KEY_PRE "on": entries _pre, both axes) against the
# plain ones (LR_READ_KEY "cuda" both), fp32 and bf16; the fp32 pair sectioned and profiled (every model).
CONFIGS17 = [
    ("fp32 plain key reads", torch.float32, {"LR_READ_KEY": "cuda", "LR_READ_KEY_PRE": "off"}),
    ("fp32 pre key reads", torch.float32, {"LR_READ_KEY": "cuda", "LR_READ_KEY_PRE": "on"}),
    ("bf16 plain key reads", torch.bfloat16, {"LR_READ_KEY": "cuda", "LR_READ_KEY_PRE": "off"}),
    ("bf16 pre key reads", torch.bfloat16, {"LR_READ_KEY": "cuda", "LR_READ_KEY_PRE": "on"}),
]
CONFIGS[17] = CONFIGS17
# --variants 18: the chain's adjoint reading its reversed timeline through the per-key readouts (LR_CHAIN_REV "kernel": the
# kernels' mirror argument, the inputs read a step later and the decay plan's inputs by index_select; 16 flips and 4
# copies of a line a step -> 3 flips) against the flips
# (LR_CHAIN_REV "flip"), with the per-key kernels plain and pre-decayed (LR_READ_KEY_PRE off / on), fp32 and bf16; the
# fp32 pair sectioned and profiled (every model).
CONFIGS18 = [
    ("fp32 flips", torch.float32, {"LR_CHAIN_REV": "flip", "LR_READ_KEY_PRE": "off"}),
    ("fp32 mirror", torch.float32, {"LR_CHAIN_REV": "kernel", "LR_READ_KEY_PRE": "off"}),
    ("bf16 flips", torch.bfloat16, {"LR_CHAIN_REV": "flip", "LR_READ_KEY_PRE": "off"}),
    ("bf16 mirror", torch.bfloat16, {"LR_CHAIN_REV": "kernel", "LR_READ_KEY_PRE": "off"}),
    ("bf16 flips pre", torch.bfloat16, {"LR_CHAIN_REV": "flip", "LR_READ_KEY_PRE": "on"}),
    ("bf16 mirror pre", torch.bfloat16, {"LR_CHAIN_REV": "kernel", "LR_READ_KEY_PRE": "on"}),
]
CONFIGS[18] = CONFIGS18
# --variants 19: the timeline's lines as slots of the stacks that read them (LR_EV_LINES "on": no ChunkCore key stack, no
# [0 | v] put, wy's q and dy copies gone, the fp32 "pre" reading a strided dY) against separate lines ("off"), bf16 and
# fp32; the bf16 pair profiled (DeltaNet).
CONFIGS19 = [
    ("bf16 lines", torch.bfloat16, {"LR_EV_LINES": "off"}),
    ("bf16 slot lines", torch.bfloat16, {"LR_EV_LINES": "on"}),
    ("fp32 lines", torch.float32, {"LR_EV_LINES": "off"}),
    ("fp32 slot lines", torch.float32, {"LR_EV_LINES": "on"}),
]
CONFIGS[19] = CONFIGS19
# --variants 20: the token-aligned delta backward (LR_BWD "delta": runtime/torch/seqc_delta_bwd.py, no timeline) by torch
# ops (LR_FUSED_DELTA "torch") and by the module's five kernels (LR_FUSED_DELTA "cuda", where the module has them; else
# the torch ops again) against "wy" (the default), bf16 and fp32; each also its GPU time under the graphs and eager
# (graph_bench.gpu_only: queued behind a sleep), the anchor's eager GPU time beside; the delta steps sectioned and
# profiled (DeltaNet); bf16 also with the kernels' per-token inputs in bf16 (LR_DELTA_TIN "bf16"), and with the modules'
# tensor-core twins (LR_DELTA_MMA "tf32").
CONFIGS20 = [
    ("bf16 wy", torch.bfloat16, {"LR_BWD": "wy"}),
    ("bf16 delta torch", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "torch"}),
    ("bf16 delta kernels", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_TIN": "f32", "LR_DELTA_MMA": "off"}),
    ("bf16 delta kernels bf16-in", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_TIN": "bf16", "LR_DELTA_MMA": "off"}),
    ("bf16 delta kernels bf16-in tf32", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_TIN": "bf16", "LR_DELTA_MMA": "tf32"}),
    ("fp32 wy", torch.float32, {"LR_BWD": "wy"}),
    ("fp32 delta torch", torch.float32, {"LR_BWD": "delta", "LR_FUSED_DELTA": "torch"}),
    ("fp32 delta kernels", torch.float32, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_MMA": "off"}),
]
CONFIGS[20] = CONFIGS20
# --variants 21: the module's defaults (LR_BWD "auto": the delta kernels, bf16 inputs on the TF32 twins, the walks'
# 3xTF32 twins with LR_DELTA_MMA "tf32") beside "wy" and the fp32 delta kernels, bf16 and fp32, likewise.
CONFIGS21 = [
    ("bf16 wy", torch.bfloat16, {"LR_BWD": "wy"}),
    ("bf16 delta kernels", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_TIN": "f32", "LR_DELTA_MMA": "off"}),
    ("bf16 defaults", torch.bfloat16, {}),
    ("fp32 wy", torch.float32, {"LR_BWD": "wy"}),
    ("fp32 delta kernels", torch.float32, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_MMA": "off"}),
    ("fp32 defaults", torch.float32, {}),
]
CONFIGS[21] = CONFIGS21
# --variants 22: RWKV-7's per-key decay through the token-aligned delta backward (LR_BWD "delta", mode "key": the
# module's per-key kernels; bf16 also with bf16 inputs on the TF32 twins) against the adjoint chain (LR_BWD "wy" with
# LR_BWD_KEY "chain": what "auto" took for a per-key decay before), bf16 and fp32, likewise.
CONFIGS22 = [
    ("bf16 chain", torch.bfloat16, {"LR_BWD": "wy", "LR_BWD_KEY": "chain"}),
    ("bf16 delta kernels", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_TIN": "f32", "LR_DELTA_MMA": "off"}),
    ("bf16 delta twins", torch.bfloat16, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_TIN": "bf16", "LR_DELTA_MMA": "tf32"}),
    ("bf16 defaults", torch.bfloat16, {}),
    ("fp32 chain", torch.float32, {"LR_BWD": "wy", "LR_BWD_KEY": "chain"}),
    ("fp32 delta kernels", torch.float32, {"LR_BWD": "delta", "LR_FUSED_DELTA": "cuda", "LR_DELTA_MMA": "off"}),
]
CONFIGS[22] = CONFIGS22
# --variants 23: HEAD's defaults for the delta family (no switch set: LR_BWD "auto"), bf16 timed at every shape; "wy" (the
# old default) beside at the few-rows shape (1, 32768, 8, 128) only; fp32 defaults for --accuracy only (ONLY_AT).
CONFIGS23 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 wy", torch.bfloat16, {"LR_BWD": "wy"}),
    ("fp32 defaults", torch.float32, {}),
]
CONFIGS[23] = CONFIGS23
# --variants 24: the forward's chunk states for the delta backward (LR_FWD_STATES "on": the forward runs auto's pick with
# its walk also storing each chunk's start state (the -st twin; split3 where the pick has none) and keeps them, the
# backward forms R = X + M S0 per chunk instead of its forward walk) beside the defaults, bf16 at every shape; "split3"
# (the forward's split3 twin instead) at (4, 8192, 16, 128) only, where auto's pick is split; fp32 for --accuracy only.
CONFIGS24 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 fwd states", torch.bfloat16, {"LR_FWD_STATES": "on"}),
    ("bf16 fwd states split3", torch.bfloat16, {"LR_FWD_STATES": "split3"}),
    ("fp32 defaults", torch.float32, {}),
    ("fp32 fwd states", torch.float32, {"LR_FWD_STATES": "on"}),
]
CONFIGS[24] = CONFIGS24
# configs timed at the listed shapes only (absent: every shape; an empty list: --accuracy only)
ONLY_AT = {23: {"bf16 wy": [(1, 32768, 8, 128)], "fp32 defaults": []}}
ONLY_AT[24] = {"fp32 defaults": [], "fp32 fwd states": [], "bf16 fwd states split3": [(4, 8192, 16, 128)]}
# the configurations whose one eager step is profiled (DeltaNet) and, for 7 and 8, sectioned (LR_TIMES; every model)
PROFILED = {6: ("bf16 lean, fp32 products", "fp32 lean"), 7: ("fp32 torch transitions", "fp32 fused transitions"), 8: ("fp32 torch readouts", "fp32 fused readouts"), 9: ("fp32 chain", "fp32 wy"),
            10: ("fp32 chain, pass kernel", "fp32 wy, pass + wy kernels"), 11: ("bf16 fp32 readouts", "bf16 tf32x3 readouts", "bf16 tf32 readouts"),
            12: ("fp32 old glue", "fp32 new glue + merge"), 13: ("fp32 chain", "fp32 wy"), 14: ("bf16 defaults", "bf16 + wy + core tf32"),
            15: ("bf16 flips", "bf16 rev reads")}

PROFILED[16] = ("fp32 torch key reads", "fp32 kernel key reads")
PROFILED[17] = ("fp32 plain key reads", "fp32 pre key reads")
PROFILED[18] = ("fp32 flips", "fp32 mirror")
PROFILED[19] = ("bf16 lines", "bf16 slot lines")
PROFILED[20] = ("bf16 delta torch", "bf16 delta kernels", "bf16 delta kernels bf16-in tf32")
PROFILED[21] = ("bf16 defaults",)
PROFILED[22] = ("bf16 chain", "bf16 delta twins")
PROFILED[23] = ("bf16 defaults",)
PROFILED[24] = ("bf16 defaults", "bf16 fwd states")
# --variants 25: the delta step's glue without its bf16 conversion passes (LR_DELTA_GLUE "bf16": prep and prep's
# backward on their -bf16out twins, no post's backward, w' and k's gradient sum written bf16) beside the defaults, bf16 at
# every shape; fp32 defaults for --accuracy only (ONLY_AT: the switch leaves fp32 as it is).
CONFIGS25 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 glue bf16", torch.bfloat16, {"LR_DELTA_GLUE": "bf16"}),
    ("fp32 defaults", torch.float32, {}),
]
CONFIGS[25] = CONFIGS25
ONLY_AT[25] = {"fp32 defaults": []}
PROFILED[25] = ("bf16 defaults", "bf16 glue bf16")

# --variants 26 (session 14's final call): HEAD's defaults beside every switch this session left off until timed, all
# together ("bf16 new") at every shape and each alone at (4, 8192, 16, 128): LR_FWD_STATES "on" (the forward's chunk
# states; the backward's reads from them instead of its forward walk), LR_DELTA_GLUE "bf16" (no bf16 conversion passes),
# seqc_delta_bwd.ZBF16 "on" (the walks write R, S0, LE, DR as bf16 for the bf16 adjoint), seqc_delta_bwd.KEY_MMA "bf16"
# (RWKV-7's per-key adjoint on its bf16 twins), seqc_delta_bwd.KEY_WALK "many" (RWKV-7's per-key walk for many rows at
# K = 128); fp32 defaults for --accuracy only.
NEW26 = {"LR_FWD_STATES": "on", "LR_DELTA_GLUE": "bf16", "_delta.ZBF16": "on", "_delta.KEY_MMA": "bf16", "_delta.KEY_WALK": "many"}
CONFIGS26 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 new", torch.bfloat16, NEW26),
    ("bf16 fwd states", torch.bfloat16, {"LR_FWD_STATES": "on"}),
    ("bf16 glue bf16", torch.bfloat16, {"LR_DELTA_GLUE": "bf16"}),
    ("bf16 zbf16", torch.bfloat16, {"_delta.ZBF16": "on"}),
    ("bf16 key mma bf16", torch.bfloat16, {"_delta.KEY_MMA": "bf16"}),
    ("bf16 key walk many", torch.bfloat16, {"_delta.KEY_WALK": "many"}),
    ("fp32 defaults", torch.float32, {}),
]
CONFIGS[26] = CONFIGS26
_K128 = [(4, 8192, 16, 128)]
ONLY_AT[26] = {"fp32 defaults": [], "bf16 fwd states": _K128, "bf16 glue bf16": _K128, "bf16 zbf16": _K128, "bf16 key mma bf16": [(8, 2048, 16, 64), (4, 8192, 16, 128), (1, 32768, 8, 128)], "bf16 key walk many": _K128}
PROFILED[26] = ("bf16 defaults", "bf16 new")
# --variants 27 (session 14's second final call, after F14's defaults were taken): the defaults beside the session's
# switches set back (the delta step as at session 13's end but for prep's kernels, whose staged / bf16-score forms are
# module defaults, not switches), bf16 at every shape, the anchor's GPU time beside.
CONFIGS27 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 switches back", torch.bfloat16, {"LR_FWD_STATES": "off", "LR_DELTA_GLUE": "off", "LR_DELTA_MMA": "tf32", "_delta.ZBF16": "off",
                                            "_delta.KEY_MMA": "tf32", "_delta.KEY_WALK": "old", "_delta.WALK": "old"}),
]
CONFIGS[27] = CONFIGS27
PROFILED[27] = ("bf16 defaults",)
# --variants 28 (session 15 task A): R as prep_fwd's epilogue (seqc_delta_bwd.PREP_R "on": one kernel, delta-prep-r.ts,
# for prep_fwd and the reads from the forward's chunk states) beside the defaults, bf16 at every shape; its head-only
# product (PREP_R "bf16") for --accuracy only; with --no-anchor no fla.
CONFIGS28 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 prep_r", torch.bfloat16, {"_delta.PREP_R": "on"}),
    ("bf16 prep_r head-only", torch.bfloat16, {"_delta.PREP_R": "bf16"}),
]
CONFIGS[28] = CONFIGS28
ONLY_AT[28] = {"bf16 prep_r head-only": []}
PROFILED[28] = ("bf16 prep_r",)
# --variants 29 (session 15's final call): HEAD's defaults beside this session's defaults set back, singly at
# (4, 8192, 16, 128) and together ("bf16 s15 back") at every shape: seqc_delta_bwd.WALK_BF16 "off" (the reverse walk's
# tf32x3 operands, task B), seqc_delta_bwd.PREP_R "off" (prep_fwd and delta-r's kernels, task A), seqc_chunked.STATELESS_VEC
# False (the stateless parts' row-major twins, task E); and its switches still off, singly at (4, 8192, 16, 128) and
# together ("bf16 new on") at every shape: seqc_delta_bwd.ADJ_OUT "bf16" (the adjoint's gradients in bf16, task C),
# seqc_chunked_lowrank.LR_FWD_STATES_COPY "graph" (the forward graph's chunk states not copied out, task B2); singly at
# (4, 8192, 16, 128) only: seqc_delta_bwd.PREP_BWD_STORE "quad" (prep_bwd's bf16 products stored 16 bytes a lane, task B3)
# and "quad_bm16" (with BM as bf16 mma: DeltaNet; Gated DeltaNet as "quad"). bf16
# DeltaNet / Gated DeltaNet; --accuracy BxT every config vs float64; fla beside (anchor GPU ms) unless --no-anchor.
BACK29 = {"_delta.WALK_BF16": "off", "_delta.PREP_R": "off", "_chunked.STATELESS_VEC": False}
NEW29 = {"_delta.ADJ_OUT": "bf16", "LR_FWD_STATES_COPY": "graph"}
CONFIGS29 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 s15 back", torch.bfloat16, BACK29),
    ("bf16 walk_bf16 off", torch.bfloat16, {"_delta.WALK_BF16": "off"}),
    ("bf16 prep_r off", torch.bfloat16, {"_delta.PREP_R": "off"}),
    ("bf16 stateless vec off", torch.bfloat16, {"_chunked.STATELESS_VEC": False}),
    ("bf16 new on", torch.bfloat16, NEW29),
    ("bf16 adj_out bf16", torch.bfloat16, {"_delta.ADJ_OUT": "bf16"}),
    ("bf16 states graph", torch.bfloat16, {"LR_FWD_STATES_COPY": "graph"}),
    ("bf16 prep_bwd quad", torch.bfloat16, {"_delta.PREP_BWD_STORE": "quad"}),
    ("bf16 prep_bwd quad_bm16", torch.bfloat16, {"_delta.PREP_BWD_STORE": "quad_bm16"}),
]
CONFIGS[29] = CONFIGS29
ONLY_AT[29] = {k: _K128 for k in ("bf16 walk_bf16 off", "bf16 prep_r off", "bf16 stateless vec off", "bf16 adj_out bf16", "bf16 states graph", "bf16 prep_bwd quad", "bf16 prep_bwd quad_bm16")}
PROFILED[29] = ("bf16 defaults", "bf16 new on", "bf16 prep_bwd quad_bm16")  # (the last: prep_bwd's kernel time beside the defaults')
# --variants 30 (session 15's final call, the lead): HEAD's defaults beside session 14's ("bf16 s15 back": the bf16 walk,
# R in prep_fwd, the stateless vector twins and the factored per-key adjoint set back) and beside every switch of this
# session still off ("bf16 new on": the adjoint's gradients in bf16 (C), the forward graph's states uncopied (B2), the
# adjoint's loads by cp.async (C2), prep_bwd's quad stores with BM by bf16 mma (B3), RWKV-7's walks in bf16 (A2)), at
# every shape; the last three singly at (4, 8192, 16, 128).
BACK30 = {"_delta.WALK_BF16": "off", "_delta.PREP_R": "off", "_chunked.STATELESS_VEC": False, "_delta.KEY_MMA": "bf16"}
NEW30 = {"_delta.ADJ_OUT": "bf16", "LR_FWD_STATES_COPY": "graph", "_delta.ADJ_LOAD": "ca", "_delta.PREP_BWD_STORE": "quad_bm16", "_delta.KEY_WALK_BF16": "on"}
CONFIGS30 = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 s15 back", torch.bfloat16, BACK30),
    ("bf16 new on", torch.bfloat16, NEW30),
    ("bf16 adj_load ca", torch.bfloat16, {"_delta.ADJ_LOAD": "ca"}),
    ("bf16 prep_bwd quad_bm16", torch.bfloat16, {"_delta.PREP_BWD_STORE": "quad_bm16"}),
    ("bf16 key_walk_bf16 on", torch.bfloat16, {"_delta.KEY_WALK_BF16": "on"}),
]
CONFIGS[30] = CONFIGS30
ONLY_AT[30] = {k: _K128 for k in ("bf16 adj_load ca", "bf16 prep_bwd quad_bm16", "bf16 key_walk_bf16 on")}
PROFILED[30] = ("bf16 defaults", "bf16 new on")


def drop_graphs(sm):
    """Frees a model's CUDA graphs and their memory pool (lowrank_bench kept every model's before: RWKV-7 ran out of
    memory after the others in runs 5 and 6)."""
    sm._seqc_graphs = None
    sm._seqc_pool = None
    sm._seqc_spool = None  # (LR_FWD_STATES_COPY "graph": the forward's shared-results pool)
    tb.free_all()


class switches:
    """Sets seqc_chunked_lowrank's switches for a block, then puts the old values back."""

    def __init__(self, sets):
        import seqc_chunked_lowrank as lr
        self.lr, self.sets = lr, sets

    def at(self, k):  # "X": seqc_chunked_lowrank.X; "_delta.X": an attribute of a module it imported (seqc_delta_bwd's switches)
        return (getattr(self.lr, k.split(".")[0]), k.split(".")[1]) if "." in k else (self.lr, k)

    def __enter__(self):
        self.old = {k: getattr(*self.at(k)) for k in self.sets}
        for k, v in self.sets.items():
            setattr(*self.at(k), v)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            setattr(*self.at(k), v)


def case6(args, root, model, shape, rate, log):
    """fwd+bwd of CONFIGS[args.variants] (fp32 and bf16 inputs, old and new switches) and the anchor in one process; the
    graphs of each config dropped before the next; a profile of one eager step of the PROFILED configs (DeltaNet) and,
    with --variants 7, their sections (every model); gradients vs the first config."""
    B, T, H, K = shape
    row = {"model": model, "B": B, "T": T, "H": H, "K": K, "V": K, "configs": {}}
    x = inputs(model, B, T, H, K, 7)
    cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(8))
    n_in = sum(v.numel() for v in x.values())
    row["floor_io_ms_bf16"] = 2 * (2 * n_in + 2 * B * T * H * K) / (rate * 1e6)
    smc = seqc_model(root, model, "chunked")
    configs = CONFIGS[args.variants]
    for label, dt, sets in configs:
        at = ONLY_AT.get(args.variants, {}).get(label)
        if at is not None and tuple(shape) not in at:
            continue
        try:
            with switches(sets):
                one, leaves = seqc_step(smc, {k: v.to(dt) for k, v in x.items()}, cot)
                one()
                one()  # the graph's capture
                torch.cuda.synchronize()
                t = tb.timed(one, 1, args.reps, args.cap_s)
                one()
                t["grads"] = {n: v.grad.detach().float().clone() for n, v in leaves.items()}
                if args.variants in (20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30):  # GPU time alone, under the graphs and eager
                    import graph_bench as gb
                    t["gpu_graph_ms"] = gb.gpu_only(one, 5)
                    smc.graphs = False
                    try:
                        one()
                        t["gpu_eager_ms"] = gb.gpu_only(one, 5)
                    finally:
                        smc.graphs = True
                    log("%s %s: %s GPU ms: graphs %.3f, eager %.3f" % (model, shape, label, t["gpu_graph_ms"], t["gpu_eager_ms"]))
                if args.variants in (7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30) and label in PROFILED[args.variants]:
                    t["sections_ms"] = sections(one)
                    log("%s %s: %s sections (eager) %s" % (model, shape, label, ", ".join("%s %.2f" % kv for kv in t["sections_ms"].items())))
                if args.profile and (model == "deltanet" or args.variants in (13, 16, 17, 18, 22)) and label in PROFILED[args.variants]:
                    t["profile_top"] = profile(one, os.path.join(args.profile, "profile-%s-%s%s.txt" % (model, label.replace(" ", "-"), "-%dx%dx%dx%d" % shape if args.variants in (23, 24, 25, 26, 27, 28, 29, 30) else "")), stacks=args.variants in (15, 18))
                    log("%s %s: %s profile (one eager step, CUDA self ms) %s" % (model, shape, label, ", ".join("%s %.2f" % kv for kv in t["profile_top"][:14])))
            import seqc_chunked_lowrank as lr
            t["bmm_out_dtype"] = lr._OUT_DTYPE[0]
            row["configs"][label] = t
            log("%s %s: %s: %.2f ms (fwd %.2f); bmm out_dtype %s" % (model, shape, label, t["ms"], t["fwd_ms"], lr._OUT_DTYPE[0]))
            del one, leaves
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            row["configs"][label] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            log("%s %s: %s failed: %s" % (model, shape, label, row["configs"][label]["error"]))
        drop_graphs(smc)
    ref = row["configs"].get(configs[0][0], {}).get("grads")
    for label, t in row["configs"].items():
        if ref is not None and "grads" in t:
            t["grads_vs_fp32_old_rel"] = {"d" + n: tb.rel(g, ref[n]) for n, g in t["grads"].items()}  # vs the first config
    row["anchor_name"] = ANCHOR[model]
    try:
        if args.no_anchor:
            raise RuntimeError("left out (--no-anchor)")
        one_a, la = anchor_step(model, K, x, cot)
        one_a()
        torch.cuda.synchronize()
        row["anchor"] = tb.timed(one_a, 2, args.reps, args.cap_s)
        if args.variants in (20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30):
            import graph_bench as gb
            row["anchor_gpu_ms"] = gb.gpu_only(one_a, 5)
            log("%s %s: %s GPU ms %.3f" % (model, shape, ANCHOR[model], row["anchor_gpu_ms"]))
        if ref is not None:
            row["anchor_vs_fp32_old_rel"] = {"d" + n: tb.rel(la[n].grad.float(), ref[n]) for n in la}
        log("%s %s: %s %.3f ms (fwd %.3f)" % (model, shape, row["anchor_name"], row["anchor"]["ms"], row["anchor"]["fwd_ms"]))
        del one_a, la
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
        log("%s %s: anchor failed: %s" % (model, shape, row["anchor_error"]))
    for t in row["configs"].values():
        t.pop("grads", None)
    del smc, x
    tb.free_all()
    return row


def accuracy(args, root, model, B, T, H, K, log):
    """Gradients at bf16-rounded inputs (B, T, H, K = V) vs seqc's float64 chunked backward at the same values: each
    CONFIGS[args.variants] config (and fla, bf16) as max over the inputs of the relative error."""
    x = inputs(model, B, T, H, K, 11)
    xb = {k: v.to(torch.bfloat16) for k, v in x.items()}
    cot = torch.randn(B, T, H, K, device=DEV, generator=torch.Generator(device=DEV).manual_seed(12)).to(torch.bfloat16).float()
    smc = seqc_model(root, model, "chunked")
    out = {"model": model, "B": B, "T": T, "H": H, "K": K}
    one, l64 = seqc_step(smc, {k: v.double() for k, v in xb.items()}, cot.double())
    one()
    g64 = {n: v.grad.detach().clone() for n, v in l64.items()}
    del one, l64
    for label, dt, sets in CONFIGS[args.variants]:
        try:
            with switches(sets):
                one, lv = seqc_step(smc, {k: v.to(dt) for k, v in xb.items()}, cot)
                one()
            out[label] = {"d" + n: tb.rel(v.grad, g64[n]) for n, v in lv.items()}
            del one, lv
        except Exception as e:  # noqa: BLE001
            out[label] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
    try:
        if args.no_anchor:
            raise RuntimeError("left out (--no-anchor)")
        fn = anchor_fn(model, K)
        la = {n: v.clone().requires_grad_(True) for n, v in xb.items()}
        (fn(la).float() * cot).sum().backward()
        out["fla bf16"] = {"d" + n: tb.rel(la[n].grad, g64[n]) for n in la}
    except Exception as e:  # noqa: BLE001
        out["fla bf16"] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
    drop_graphs(smc)
    for label, d in out.items():
        if isinstance(d, dict):
            log("accuracy %s B=%d T=%d: %-36s %s" % (model, B, T, label, "ERR " + d["error"] if "error" in d else "max %.1e  %s" % (max(d.values()), " ".join("%s=%.1e" % kv for kv in d.items()))))
    return out


def sections(one):
    """ms per section of the low-rank backward in one step (seqc_chunked_lowrank.LR_TIMES: aug, pass, read, adjoint,
    fwd, decay, whichever way each ran)."""
    import seqc_chunked_lowrank as lr
    lr.LR_TIMES = []
    try:
        one()
        torch.cuda.synchronize()
        out = {}
        for name, a, b in lr.LR_TIMES:
            out[name] = out.get(name, 0.0) + a.elapsed_time(b)
        return out
    finally:
        lr.LR_TIMES = None


# the ops that make copies, listed with their call stacks by profile(stacks=True)
COPY_OPS = ("aten::copy_", "aten::flip", "aten::cat", "aten::stack", "aten::clone", "aten::contiguous", "aten::constant_pad_nd", "aten::zero_", "aten::fill_", "aten::index_put_", "aten::index_select")


def profile(one, path, stacks=False):
    """One eager step (no graphs, LR_GRAPHS off) under torch.profiler: the CUDA ops by self time to `path`; the top ones.
    stacks: a second eager step profiled with Python stacks, the copy-making ops (COPY_OPS) grouped by their call stack
    (the innermost 8 frames) with CUDA self time to `path` -stacks.txt."""
    import seqc_chunked_lowrank as lr
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof
    old = lr.LR_GRAPHS
    lr.LR_GRAPHS = False
    try:
        one()
        torch.cuda.synchronize()
        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            one()
            torch.cuda.synchronize()
    finally:
        lr.LR_GRAPHS = old
    ka = p.key_averages()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        try:
            f.write(ka.table(sort_by="self_device_time_total", row_limit=40, max_name_column_width=70))
        except Exception:  # noqa: BLE001  (older torch names it self_cuda_time_total)
            f.write(ka.table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=70))
    dev = lambda e: getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)  # noqa: E731
    if stacks:
        try:
            stack_table(one, path, lr, prof, ProfilerActivity)
        except Exception as e:  # noqa: BLE001  (the stacks are extra: the timings and the table above stand)
            with open(path.replace(".txt", "-stacks.txt"), "w") as f:
                f.write("stacks failed: %s: %s\n" % (type(e).__name__, e))
    top = sorted(((e.key, dev(e) / 1000.0) for e in ka), key=lambda kv: -kv[1])
    return [kv for kv in top if kv[1] > 0][:20]


def stack_table(one, path, lr, prof, ProfilerActivity):
    """profile(stacks=True)'s second eager step: COPY_OPS by call stack to `path` -stacks.txt."""
    old = lr.LR_GRAPHS
    lr.LR_GRAPHS = False
    try:
        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=True) as ps:
            one()
            torch.cuda.synchronize()
    finally:
        lr.LR_GRAPHS = old
    rows = []
    for e in ps.key_averages(group_by_stack_n=8):
        if e.key in COPY_OPS:
            # an op's device time is its kernels' (children of the op): total, not self
            t = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
            st = list(e.stack or [])
            rows.append((t / 1000.0, e.count, e.key, st[:1] + [f for f in st[1:] if "seqc_" in f or "lowrank" in f]))
    rows.sort(key=lambda r: -r[0])
    with open(path.replace(".txt", "-stacks.txt"), "w") as f:
        f.write("copy-making ops of one eager step by call stack (device ms, calls, op, stack innermost first)\n")
        for t, c, k, st in rows:
            f.write("%8.3f ms %3d  %-24s %s\n" % (t, c, k, " <- ".join(st)))


def parse_shapes(s):
    return [tuple(int(v) for v in x.split("x")) for x in s.split(",") if x]


def warm_fla(models, shapes, i, n, max_configs):
    os.environ["FLA_CACHE_RESULTS"] = "0"
    tb.patch_autotune((i, n), max_configs)
    for model in models:
        for B, T, H, K in shapes:
            try:
                fn = anchor_fn(model, K)
                x = inputs(model, 2, min(T, 2048), H, K, 3)  # B=2: Triton specialises ints equal to 1, not 2 vs 8
                la = {k: v.to(torch.bfloat16).requires_grad_(True) for k, v in x.items()}
                fn(la).float().sum().backward()
                torch.cuda.synchronize()
                print("warm %d/%d: %s K=%d ok" % (i, n, model, K), flush=True)
            except Exception as e:  # noqa: BLE001
                print("warm %d/%d: %s K=%d: %s: %s" % (i, n, model, K, type(e).__name__, str(e)[:300]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules")
    ap.add_argument("--out")
    ap.add_argument("--models", default="deltanet,gated_deltanet,rwkv7")
    ap.add_argument("--shapes", default="8x2048x16x64,4x8192x16x128")
    ap.add_argument("--step-shapes", default="8x2048x16x64")
    ap.add_argument("--budget", type=float, default=100.0)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cap-s", type=float, default=3.0)
    ap.add_argument("--fla-max-configs", type=int, default=6)
    ap.add_argument("--warm-fla", nargs=2, type=int)
    ap.add_argument("--variants", type=int, default=1, help="1: also time the glue's choices (decay cumsum, chunk 32 / 128); 2: pass as torch.matmul, readout parts' sequential variants; 3: readouts as the plans, aug as matrix products, chunk 32 / 128, RWKV-7's sub-blocks 8 / 32; 4: the old defaults (eager, RWKV-7's sub-blocks), graphs off, RWKV-7's aug as products; 5: the old layout without sharing (LR_LAYOUT, LR_SHARE), each alone, the blocked solve (LR_SOLVE), the decay as cumsum; 6: fp32 and bf16 inputs with the old and new LR_MM / LR_MM_PARTS / LR_LEAN (CONFIGS6) beside the anchor, --accuracy; 7: the chunk transitions by torch ops and by the fused kernel (LR_FUSED, CONFIGS7), fp32 and bf16, beside the anchor, sections, --accuracy; 8: the readouts by torch ops and by the fused kernel (LR_FUSED_READ, CONFIGS8), likewise; 9: the backward as the adjoint chain and in the chunk-state structure (LR_BWD, CONFIGS9), likewise; 10: the walks over the chunks by torch products and by the pass kernel (LR_FUSED_PASS), wy's per-chunk kernels (LR_FUSED_WY; CONFIGS10), likewise; 11: the fused readouts' tensor-core twins for bf16 (LR_READ_MMA tf32 / tf32x3 / off; CONFIGS11), likewise; 12: the backward's y read left out where post's backward binds no y, the glue's fewer copies and flips, a decay step merged into the next (LR_Y_READ, LR_COPIES, LR_MERGE; CONFIGS12), likewise; 13: a per-key decay (RWKV-7) in the chunk-state backward vs the chain (LR_BWD_KEY; CONFIGS13), likewise; 16: a per-key decay (RWKV-7) in the fused readouts vs ChunkCore's torch ops (LR_READ_KEY; CONFIGS16), likewise; 17: the per-key kernels' pre-decayed forms vs the plain ones (LR_READ_KEY_PRE; CONFIGS17), likewise; 18: the chain's adjoint reading its reversed timeline through the per-key kernels vs flips (LR_CHAIN_REV), plain and pre-decayed (CONFIGS18), likewise, the profiles with the copies' call stacks; 14: the tensor-core twins off by default, bf16: wy's pre (LR_WY_MMA), the chunk transitions (LR_CORE_MMA), both (CONFIGS14), likewise; 15: wy's reversed chunks read backwards by the readouts kernel vs torch.flip copies (LR_REV_READ; CONFIGS15), bf16 and fp32, likewise, the profiles with the copies' call stacks; 19: the timeline's lines as slots of the stacks that read them vs separate lines (LR_EV_LINES; CONFIGS19), bf16 and fp32, likewise; 20: the token-aligned delta backward by torch ops and by its kernels vs wy (LR_BWD delta, LR_FUSED_DELTA; CONFIGS20), bf16 and fp32, GPU times under graphs and eager, likewise; 21: the defaults vs wy and the fp32 delta kernels (CONFIGS21), likewise; 22: RWKV-7's per-key decay through the delta kernels (fp32, bf16 inputs on the TF32 twins) vs the adjoint chain and the defaults (CONFIGS22), likewise; 23: the defaults (no switch) bf16 at every shape, wy beside at (1, 32768, 8, 128), fp32 defaults in --accuracy only (CONFIGS23, ONLY_AT), likewise")
    ap.add_argument("--skip", default="", help="model@BxTxHxK,...: cases left out (e.g. rwkv7@1x32768x8x128)")
    ap.add_argument("--no-anchor", action="store_true")
    ap.add_argument("--variants-at", default="8x2048x16x64")
    ap.add_argument("--accuracy", default="", help="BxT: --variants 6's accuracy at bf16-rounded inputs vs float64 (at the shapes' H, K)")
    ap.add_argument("--profile", help="a folder for one eager step's torch.profiler table per model (at --variants-at)")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    models = args.models.split(",")
    shapes, step_shapes = parse_shapes(args.shapes), parse_shapes(args.step_shapes)
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.warm_fla:
        return warm_fla(models, shapes, *args.warm_fla, args.fla_max_configs)
    t_start = time.time()
    tb.patch_autotune(None, args.fla_max_configs)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": [], "skipped": []}
    rate = tb.copy_rate()
    res["copy_gbps"] = rate

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t_start, s), flush=True)
    log("%s, torch %s, copy %.0f GB/s" % (res["device"], res["torch"], rate))
    if args.variants in CONFIGS:
        res["accuracy"] = []
        if args.accuracy:
            aB, aT = (int(v) for v in args.accuracy.split("x"))
            for model in models:
                try:
                    res["accuracy"].append(accuracy(args, root, model, aB, aT, shapes[0][2], shapes[0][3], log))
                except Exception as e:  # noqa: BLE001
                    import traceback
                    traceback.print_exc()
                    res["accuracy"].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:300])})
                tb.free_all()
        skip = {tuple([c.split("@")[0]] + [int(v) for v in c.split("@")[1].split("x")]) for c in args.skip.split(",") if c}
        for shape in shapes:
            for model in models:
                if (model,) + tuple(shape) in skip:
                    continue
                if time.time() - t_start > args.budget:
                    res["skipped"].append([model, shape])
                    continue
                try:
                    res["rows"].append(case6(args, root, model, shape, rate, log))
                except Exception as e:  # noqa: BLE001
                    import traceback
                    traceback.print_exc()
                    res["rows"].append({"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:500])})
                    tb.free_all()
                if args.out:
                    with open(args.out, "w") as f:
                        json.dump(res, f, indent=1)
        labels = [c[0] for c in CONFIGS[args.variants] if ONLY_AT.get(args.variants, {}).get(c[0]) != []]
        fast = {15: "bf16 rev reads", 19: "bf16 slot lines", 20: "bf16 delta kernels", 21: "bf16 defaults", 22: "bf16 delta twins", 23: "bf16 defaults", 24: "bf16 fwd states"}.get(args.variants, labels[-1]) if args.variants in (7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 15, 19, 20, 21, 22, 23, 24) else "bf16 lean, fp32 products"
        fast32 = {7: "fp32 fused transitions", 8: "fp32 fused readouts", 9: "fp32 wy", 10: "fp32 wy, pass + wy kernels", 11: "bf16 fp32 readouts", 12: "fp32 new glue + merge", 13: "fp32 wy", 16: "fp32 kernel key reads", 17: "fp32 pre key reads", 14: "bf16 defaults", 15: "bf16 flips", 19: "fp32 slot lines", 20: "fp32 delta kernels", 21: "fp32 defaults", 22: "fp32 delta kernels", 23: "bf16 wy", 24: "bf16 defaults"}.get(args.variants, "fp32 lean")
        print("\nmodel (B, T, H, K=V) | " + " | ".join(labels) + " | anchor | anchor / %s | anchor / %s" % (fast, fast32))
        for r in res["rows"]:
            if "error" in r:
                print("%s | ERROR %s" % (r["model"], r["error"][:200]))
                continue
            ms = lambda k: r["configs"].get(k, {}).get("ms")  # noqa: E731
            a = r.get("anchor", {}).get("ms")
            print("%s (%d, %d, %d, %d) | %s | %s | %s | %s" % (r["model"], r["B"], r["T"], r["H"], r["K"],
                  " | ".join("%.2f" % ms(k) if ms(k) else "ERR" if k in r["configs"] else "-" for k in labels), "%.3f" % a if a else "-",
                  "%.3f" % (a / ms(fast)) if a and ms(fast) else "-", "%.3f" % (a / ms(fast32)) if a and ms(fast32) else "-"))
        if args.variants in (20, 21, 22, 23, 24, 28, 29, 30):
            print("\nGPU ms (graphs / eager) | " + " | ".join(labels) + " | anchor eager GPU ms")
            for r in res["rows"]:
                if "error" not in r:
                    g = lambda k, f: r["configs"].get(k, {}).get(f)  # noqa: E731
                    print("%s (%d, %d, %d, %d) | %s | %s" % (r["model"], r["B"], r["T"], r["H"], r["K"], " | ".join(
                        "%.3f / %.3f" % (g(k, "gpu_graph_ms"), g(k, "gpu_eager_ms")) if g(k, "gpu_eager_ms") else "ERR" if k in r["configs"] else "-" for k in labels),
                        "%.3f" % r["anchor_gpu_ms"] if r.get("anchor_gpu_ms") else "-"))
        print("\ngradients vs %s (same process, same inputs): max rel" % labels[0])
        for r in res["rows"]:
            for k, t in r.get("configs", {}).items():
                if "grads_vs_fp32_old_rel" in t:
                    print("  %s %-36s %.1e" % (r["model"], k, max(t["grads_vs_fp32_old_rel"].values())))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
        return 0
    for shape in shapes:
        for model in models:
            if time.time() - t_start > args.budget:
                res["skipped"].append([model, shape])
                log("%s %s: skipped (budget)" % (model, shape))
                continue
            try:
                row = case(args, root, model, shape, shape in step_shapes, rate, log)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                row = {"model": model, "B": shape[0], "T": shape[1], "H": shape[2], "K": shape[3], "error": "%s: %s" % (type(e).__name__, str(e)[:500])}
                tb.free_all()
            res["rows"].append(row)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump(res, f, indent=1)
    labels = sorted({k for r in res["rows"] for k in r.get("variants", {})})
    print("\nmodel (B, T, H, K=V) | seqc chunked ms now | " + " | ".join(labels) + " (ms; gradients vs default)")
    for r in res["rows"]:
        if "variants" in r:
            cells = []
            for k in labels:
                u = r["variants"].get(k)
                cells.append("-" if not u else "ERR" if "error" in u else "%.2f (%.1e)" % (u["ms"], max(u["grads_vs_default_rel"].values())))
            print("%s (%d, %d, %d, %d) | %.2f | %s" % (r["model"], r["B"], r["T"], r["H"], r["K"], r["seqc_chunked"]["ms"], " | ".join(cells)))
    print("\nmodel (B, T, H, K=V) | seqc chunked ms (fwd / bwd) | seqc step ms | anchor bf16 ms (fwd / bwd) | anchor/seqc | chunked vs step | vs anchor")
    for r in res["rows"]:
        lab = "%s (%d, %d, %d, %d)" % (r["model"], r["B"], r["T"], r["H"], r["K"])
        if "error" in r:
            print("%s | ERROR %s" % (lab, r["error"][:200]))
            continue
        c, a = r["seqc_chunked"], r.get("anchor")
        print("%s | %.2f (%.2f / %.2f) | %s | %s | %s | %s | %s" % (
            lab, c["ms"], c["fwd_ms"], c["ms"] - c["fwd_ms"],
            "%.2f" % r["seqc_step"]["ms"] if "seqc_step" in r else "-",
            "%.3f (%.3f / %.3f)" % (a["ms"], a["fwd_ms"], a["ms"] - a["fwd_ms"]) if a else "-",
            "%.3f" % (a["ms"] / c["ms"]) if a else "-",
            "%.1e" % max(r["chunked_vs_step_rel"].values()) if "chunked_vs_step_rel" in r else "-",
            "%.1e" % max(r["seqc_vs_anchor_rel"].values()) if "seqc_vs_anchor_rel" in r else "-"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
