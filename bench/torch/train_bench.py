"""Forward + backward through seqc's torch target beside cuDNN and flash-linear-attention (issue 6, performance).

One step = forward, loss = sum(outputs * a fixed random cotangent), backward to every input, param and initial
state the model has; timed with CUDA events (median after warm-up), the forward part and the whole step.
Side by side in one process:
  lstm, gru       seqc's <Model>Function (recording forward + the backward model of compiler/grad) vs
                  torch.nn.LSTM / torch.nn.GRU on cuDNN, fp32, TF32 off, the same weights and initial states;
  deltanet, gated_deltanet, gla, simple_gla (and mamba2 with --models)
                  seqc's <Model>Function in fp32 vs flash-linear-attention's chunk kernels with their backward
                  (chunk_delta_rule, chunk_gated_delta_rule, chunk_gla, chunk_simple_gla; Mamba-2's
                  mamba_chunk_scan_combined) in bf16, the same values.
seqc's gradient path stores every state before every step (B*T*|state| floats per state); the backward
model carries the state adjoints and writes the per-step values the param-adjoint passes sum over the steps
(compiler/grad/split.ts; G*H floats a step for LSTM). T is reduced until that fits --mem-gb and one step stays
under --step-ms (probed at a short T first); the anchor is timed at that T and at the full T. Every reduction
is printed and recorded.
Before any seqc kernel runs, the plans say what it would launch (grid, threads, shared memory, waves on this
GPU); where the backward model's partition would walk more than --max-wave-steps waves x steps (before the
param adjoints left the recurrence its lanes multiplied with their indices: B*I*I*H for LSTM/GRU), seqc is not
run and the reason is recorded.
Also: the IO floor (inputs, output, cotangent and gradients once each, at the copy rate measured here; LSTM/GRU
also the fp32 FLOP floor at --fp32-tflops), the peak memory of one step beyond what was allocated before it
(torch.cuda.max_memory_allocated), and how far seqc's outputs and gradients are from the other side's.

  python3 bench/torch/train_bench.py <modules dir> [--out results.json] [--models a,b] [--budget S]
  python3 bench/torch/train_bench.py <modules dir> --warm-fla I N     (Triton precompile share I of N)
  python3 bench/torch/train_bench.py <modules dir> --warm-seqc        (driver JIT of the plans, tiny shapes)
<modules dir>: `seqc compile stdlib/{lstm,gru,deltanet,gated_deltanet,gla,simple_gla}.seq --target torch --out DIR`.
fla (and mamba_ssm) must be importable (PYTHONPATH), as bench/torch/train-run.sh arranges.
"""

import argparse
import functools
import importlib
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

DEV = torch.device("cuda", 0)
MODULE = {"lstm": "Lstm", "gru": "Gru", "deltanet": "DeltaNet", "gated_deltanet": "GatedDeltaNet", "gla": "Gla",
          "simple_gla": "SimpleGla", "mamba2": "Mamba2"}
# (B, T, H), I = H: the sequential-form shapes of RESULTS.md, and a small one where seqc's backward model can run
RNN_SHAPES = [(64, 2048, 256), (16, 1024, 1024), (64, 2048, 32)]
LA_SHAPE = (8, 2048, 16, 64)  # (B, T, H, K = V): the chunked-form issue's first shape
MAMBA2_HEADS = 32  # Mamba-2 at the same B, T with 32 heads, P = N = 64 (as the chunked-form runs)
ORDER = ["deltanet", "lstm:0", "gated_deltanet", "gru:0", "gla", "lstm:1", "gru:1", "lstm:2", "gru:2", "simple_gla", "mamba2"]


def pow2floor(n):
    return 0 if n < 1 else 1 << (int(n).bit_length() - 1)


def rel(a, b):
    a, b = a.detach().double().reshape(-1), b.detach().double().reshape(-1)
    d = b.norm().item()
    return (a - b).norm().item() / d if d else float((a - b).norm().item())


# ---- timing and memory -------------------------------------------------------------------------------


def step_fn(fwd, leaves):
    """One training step: clear the leaves' grads, forward (returns loss, outputs), backward."""
    def one(ev=None):
        for x in leaves:
            x.grad = None
        if ev:
            ev[0].record()
        loss, outs = fwd()
        if ev:
            ev[1].record()
        loss.backward()
        if ev:
            ev[2].record()
        return outs
    one.leaves = leaves
    return one


def timed(one, warm, reps, cap_s):
    """Median whole-step and forward-part ms over `reps` CUDA-event-timed steps (fewer if past cap_s, at least 3)."""
    for _ in range(warm):
        one()
    torch.cuda.synchronize()
    tot, fw, t0 = [], [], time.time()
    for i in range(reps):
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
        one(ev)
        ev[2].synchronize()
        tot.append(ev[0].elapsed_time(ev[2]))
        fw.append(ev[0].elapsed_time(ev[1]))
        if i >= 2 and time.time() - t0 > cap_s:
            break
    return {"ms": statistics.median(tot), "fwd_ms": statistics.median(fw), "n": len(tot), "all_ms": tot}


def peak_extra(one):
    """Bytes allocated at the peak of one step beyond what was allocated before it (the leaves' grads cleared)."""
    for x in one.leaves:
        x.grad = None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    one()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def copy_rate():
    n = 1 << 28
    a = torch.rand(n, device=DEV)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    ms = []
    for _ in range(10):
        e = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        e[0].record()
        b.copy_(a)
        e[1].record()
        e[1].synchronize()
        ms.append(e[0].elapsed_time(e[1]))
    del a, b
    return 2 * n * 4 / (statistics.median(ms) * 1e6)  # GB/s, bytes read + written


def free_all():
    import gc
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def profile_step(one, top=16):
    """One step under torch.profiler: GPU time per kernel name (self device time, ms), their sum, and the step's
    wall time on the GPU (CUDA events): the difference is time the GPU waited (launch gaps, host work)."""
    from torch.profiler import profile, ProfilerActivity
    one()
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        one(ev)
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        t = getattr(e, "self_cuda_time_total", 0) if t is None else t
        if t > 0:
            rows.append([e.key[:70], e.count, round(t / 1000, 4)])
    rows.sort(key=lambda r: -r[2])
    return {"step_ms": ev[0].elapsed_time(ev[2]), "fwd_ms": ev[0].elapsed_time(ev[1]), "gpu_sum_ms": round(sum(r[2] for r in rows), 4), "top": rows[:top]}


# ---- seqc ------------------------------------------------------------------------------------------


class Seqc:
    """A generated module: flat (inputs, params, initial states) by name -> (*outputs, *final states)."""

    def __init__(self, root, model):
        if root not in sys.path:
            sys.path.insert(0, root)
        self.mod = importlib.import_module(MODULE[model])
        self.fn = getattr(self.mod, MODULE[model] + "Function")
        self.sm = self.mod._model(None, "auto")
        self.order = [t["name"] for t in self.sm.inputs + self.sm.params + self.sm.states]

    def __call__(self, named):
        unknown = set(named) - set(self.order)
        if unknown:
            raise ValueError("%s has no tensors %s (it takes %s)" % (self.sm.name, sorted(unknown), self.order))
        return self.fn.apply(*[named.get(n) for n in self.order])

    def _dims(self, named):
        ins = {t["name"]: named[t["name"]] for t in self.sm.inputs if t["name"] in named}
        pars = {t["name"]: named[t["name"]] for t in self.sm.params if t["name"] in named}
        sts = {t["name"]: named[t["name"]] for t in self.sm.states if t["name"] in named}
        return self.sm.resolve(ins, pars, sts)

    def variants(self, named):
        """The variants the recording forward and the backward model run at these shapes."""
        dims, B, T = self._dims(named)
        return {k: self.sm.runner(k, DEV).pick(dims, B, T)[0]["variant"] for k in ("record", "backward")}

    def force(self, named, variant):
        """Make the recording forward and the backward model run `variant` at these shapes (the cells side by side
        in one process); raises where it does not apply. unforce() gives the choice back to the plans."""
        dims, B, T = self._dims(named)
        for key in ("record", "backward"):
            r = self.sm.runner(key, DEV)
            cands = r.applicable(dims, B, T, variant)
            if not cands:
                raise ValueError("%s: %s does not apply at B=%d T=%d %s" % (key, variant, B, T, dims))
            r.pick = lambda *a, _c=cands[0], **k: _c

    def pass_way(self, way):
        """Set seqc_torch.PASS_MATMUL (the passes marked `matmul` as torch products, "torch", or their plans,
        "kernel"); returns the way before."""
        rt = sys.modules[self.sm.__class__.__module__]
        old, rt.PASS_MATMUL = rt.PASS_MATMUL, way
        return old

    def unforce(self):
        for key in ("record", "backward"):
            self.sm.runner(key, DEV).__dict__.pop("pick", None)

    def phases(self, one):
        """ms per plan key (record, backward, pass:<param>, ...) in one step: CUDA events around each execute."""
        orig, marks = self.sm.execute, []

        def wrapped(key, *a, **kw):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ev[0].record()
            r = orig(key, *a, **kw)
            ev[1].record()
            marks.append((key, ev))
            return r
        self.sm.execute = wrapped
        try:
            one()
            torch.cuda.synchronize()
        finally:
            del self.sm.execute
        out = {}
        for key, ev in marks:
            out[key] = out.get(key, 0.0) + ev[0].elapsed_time(ev[1])
        return out

    def launch_cost(self, named):
        """What the recording forward and the backward model launch at these shapes (from the plans, nothing runs):
        per kernel its grid, threads, shared bytes and waves (blocks / (SMs x blocks resident per SM)); the
        sequential variants walk all T steps in every block, so a launch takes about waves x T steps."""
        cuda = sys.modules[self.sm.__class__.__module__]._cuda
        dims, B, T = self._dims(named)
        out = {}
        for key in ("record", "backward"):
            r = self.sm.runner(key, DEV)
            form, env = r.pick(dims, B, T)
            launches = []
            for st in form["steps"]:
                if st["kind"] != "launch":
                    continue
                grid, threads = cuda.eval_size(st["grid"], env), cuda.eval_size(st["threads"], env)
                shared = cuda.eval_size(st["sharedBytes"], env)
                per_sm = max(1, min(2048 // max(1, threads), 32, r.info["smem_optin"] // shared if shared else 32))
                launches.append({"entry": st["entry"], "grid": grid, "threads": threads, "shared": shared,
                                 "waves": -(-grid // (r.info["multiprocessors"] * per_sm))})
            out[key] = {"variant": form["variant"], "lanes": env.get("$BP"), "lanes_per_batch_row": env.get("$P"), "launches": launches}
        out["wave_steps"] = T * max([1] + [x["waves"] for k in ("record", "backward") for x in out[k]["launches"]])
        return out


def infeasible(args, cost, log, what):
    """A reason not to run seqc's gradient path (its kernels would walk too many waves of T steps), or None."""
    if cost["wave_steps"] <= args.max_wave_steps:
        return None
    b = cost["backward"]
    big = max(b["launches"], key=lambda x: x["waves"])
    why = ("%s: the backward model's %s variant launches %s with %d blocks of %d threads (%s lanes, %s per batch row), "
           "%d waves on this GPU, each walking the steps: %d wave-steps > %d (--max-wave-steps); not run" % (
               what, b["variant"], big["entry"], big["grid"], big["threads"], b["lanes"], b["lanes_per_batch_row"],
               big["waves"], cost["wave_steps"], args.max_wave_steps))
    log(why)
    return why


# ---- LSTM / GRU vs cuDNN ---------------------------------------------------------------------------


def rnn_case(args, root, kind, B, T_full, H, rate, log):
    I = H
    G = 4 if kind == "lstm" else 3
    torch.manual_seed(1)
    ref = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(I, H, batch_first=True).to(DEV)
    pnames = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    pshape = {"weight_ih_l0": (G, H, I), "weight_hh_l0": (G, H, H), "bias_ih_l0": (G, H), "bias_hh_l0": (G, H)}
    P = sum(getattr(ref, n).numel() for n in pnames)
    states = ["h", "c"] if kind == "lstm" else ["h"]
    seqc = Seqc(root, kind)
    row = {"model": kind, "B": B, "T_full": T_full, "H": H, "I": I, "params": P}

    def data(T):
        g = torch.Generator(device=DEV).manual_seed(T)
        x = torch.randn(B, T, I, device=DEV, generator=g)
        s0 = {s: 0.5 * torch.randn(B, H, device=DEV, generator=g) for s in states}
        cot = torch.randn(B, T, H, device=DEV, generator=g)
        return x, s0, cot

    def seqc_side(x, s0, cot):
        leaves = {"x": x.clone().requires_grad_(True)}
        leaves.update({n: getattr(ref, n).detach().reshape(pshape[n]).clone().requires_grad_(True) for n in pnames})
        leaves.update({s: v.clone().requires_grad_(True) for s, v in s0.items()})

        def fwd():
            outs = seqc(leaves)
            return (outs[0] * cot).sum(), outs[0]
        return step_fn(fwd, list(leaves.values())), leaves

    def cudnn_side(x, s0, cot):
        leaves = {"x": x.clone().requires_grad_(True)}
        leaves.update({s: v[None].clone().requires_grad_(True) for s, v in s0.items()})
        ps = [getattr(ref, n) for n in pnames]

        def fwd():
            st = (leaves["h"], leaves["c"]) if kind == "lstm" else leaves["h"]
            out, _ = ref(leaves["x"], st)
            return (out * cot).sum(), out
        return step_fn(fwd, list(leaves.values()) + ps), leaves

    def floors(T):
        # fp32: x, output, cotangent, dx once each; params read, their grads written; initial states and their grads
        io = 4 * (2 * B * T * I + 2 * B * T * H + 3 * P + 2 * len(states) * B * H)
        flops = 3 * 2 * B * T * G * H * (I + H)  # forward matvecs, and twice that in the backward (dx/dh and dW)
        return {"floor_io_ms": io / (rate * 1e6), "floor_flop_ms": flops / (args.fp32_tflops * 1e9)}

    def cudnn_full():
        x, s0, cot = data(T_full)
        one_c, lc = cudnn_side(x, s0, cot)
        r = timed(one_c, 2, args.reps, args.cap_s)
        r["peak_extra_bytes"] = peak_extra(one_c)
        del one_c, lc, x, s0, cot
        free_all()
        return r

    # can seqc's gradient path run here at all? (the plans say how many blocks walk the steps)
    T_probe = min(T_full, 16)
    x, s0, cot = data(T_probe)
    _, ls = seqc_side(x, s0, cot)
    cost = seqc.launch_cost(ls)
    row["seqc_launch_cost_T_probe"] = cost
    del ls
    why = infeasible(args, cost, log, "%s B=%d H=I=%d T=%d" % (kind, B, H, T_probe))
    if why:
        row.update(seqc_skipped=why, T=T_full, **floors(T_full))
        row["cudnn_full_T"] = cudnn_full()
        log("%s B=%d T=%d H=%d: cuDNN %.2f ms (fwd %.2f), peak extra %.2f GB; floor %.3f ms" % (
            kind, B, T_full, H, row["cudnn_full_T"]["ms"], row["cudnn_full_T"]["fwd_ms"],
            row["cudnn_full_T"]["peak_extra_bytes"] / 1e9, max(row["floor_io_ms"], row["floor_flop_ms"])))
        return row

    # T: what seqc keeps per step (saved states and their flipped copies, flipped x and cotangent, the output, the
    # backward's per-step gate adjoints that the param passes sum: G*H for LSTM, 2*G*H for GRU) and one step's time
    # must fit; the param adjoints themselves are sums (compiler/grad/split.ts), no longer B x T x |params|
    per_step_bytes = B * (4 * len(states) * H + 2 * I + 3 * H + 2 * G * H) * 4 * 1.25  # 25% slack
    T_mem = pow2floor(args.mem_gb * 1e9 / per_step_bytes)
    T_probe = min(T_probe, max(T_mem, 1))
    x, s0, cot = data(T_probe)
    one, _ = seqc_side(x, s0, cot)
    t0 = time.time()
    one()
    torch.cuda.synchronize()
    row["first_call_s"] = time.time() - t0
    pr = timed(one, 0, 2, 5)
    per_step = pr["ms"] / T_probe
    T_time = pow2floor(args.step_ms / per_step)
    T = max(T_probe, min(T_full, T_mem, T_time))
    row.update(T=T, T_probe=T_probe, probe_ms=pr["ms"], T_mem_limit=T_mem, T_time_limit=T_time)
    why = [w for w, lim in (("memory", T_mem), ("time", T_time)) if lim < T_full]
    row["T_reduced_by"] = why
    log("%s B=%d H=%d: probe T=%d %.2f ms (%.3f ms/step); T=%d (full %d%s)" % (
        kind, B, H, T_probe, pr["ms"], per_step, T, T_full, "; reduced by " + " and ".join(why) if why else ""))
    del one, x, s0, cot
    free_all()

    x, s0, cot = data(T)
    one_s, ls = seqc_side(x, s0, cot)
    one_c, lc = cudnn_side(x, s0, cot)
    row["seqc_launch_cost"] = seqc.launch_cost(ls)
    row["seqc_variants"] = seqc.variants(ls)

    def vs_cudnn(out, want):
        """seqc's output against want, and the gradients of seqc's last step against cuDNN's (relative errors)."""
        err = {"output": rel(out, want), "dx": rel(ls["x"].grad, lc["x"].grad)}
        for n in pnames:
            err["d" + n] = rel(ls[n].grad.reshape(-1), getattr(ref, n).grad.reshape(-1))
        for s in states:
            err["d%s0" % s] = rel(ls[s].grad, lc[s].grad[0])
        return err

    # agreement: one step each from the same values
    out_s = one_s()
    out_c = one_c()
    torch.cuda.synchronize()
    row["seqc_vs_cudnn_rel"] = err = vs_cudnn(out_s, out_c)
    ref_out = out_c.detach()
    del out_s, out_c
    row["seqc"] = timed(one_s, 1, args.reps_slow, args.cap_s)
    row["seqc"]["peak_extra_bytes"] = peak_extra(one_s)
    row["seqc_phases_ms"] = seqc.phases(one_s)
    log("seqc phases (ms): " + ", ".join("%s %.2f" % kv for kv in row["seqc_phases_ms"].items()))
    # the same step with the recording forward and the backward core forced to other cell variants (--cell-variants)
    for v in [v for v in args.cell_variants.split(",") if v]:
        try:
            seqc.force(ls, v)
            got = one_s()
            torch.cuda.synchronize()
            e = vs_cudnn(got, ref_out)
            f = {"variants": seqc.variants(ls), "rel_vs_cudnn": e}
            f.update(timed(one_s, 1, args.reps_slow, args.cap_s))
            f["phases_ms"] = seqc.phases(one_s)
            row.setdefault("seqc_forced", {})[v] = f
            log("  forced %s: %.2f ms (fwd %.2f), phases %s, worst rel vs cuDNN %.1e" % (
                v, f["ms"], f["fwd_ms"], ", ".join("%s %.2f" % kv for kv in f["phases_ms"].items()), max(e.values())))
            del got
        except Exception as ex:  # noqa: BLE001  (recorded; the case goes on)
            row.setdefault("seqc_forced", {})[v] = {"error": "%s: %s" % (type(ex).__name__, str(ex)[:300])}
            log("  forced %s: %s" % (v, row["seqc_forced"][v]["error"]))
        finally:
            seqc.unforce()
    # the same step with seqc_torch.PASS_MATMUL set to other ways (--pass-ways: "kernel" = the pass plans)
    for w in [w for w in args.pass_ways.split(",") if w]:
        old = seqc.pass_way(w)
        try:
            got = one_s()
            torch.cuda.synchronize()
            e = vs_cudnn(got, ref_out)
            f = {"rel_vs_cudnn": e}
            f.update(timed(one_s, 1, args.reps_slow, args.cap_s))
            f["phases_ms"] = seqc.phases(one_s)
            if args.profile:
                f["profile"] = profile_step(one_s)
            row.setdefault("seqc_pass_ways", {})[w] = f
            log("  PASS_MATMUL=%s: %.2f ms (fwd %.2f), phases %s, worst rel vs cuDNN %.1e" % (
                w, f["ms"], f["fwd_ms"], ", ".join("%s %.2f" % kv for kv in f["phases_ms"].items()), max(e.values())))
            del got
        except Exception as ex:  # noqa: BLE001  (recorded; the case goes on)
            row.setdefault("seqc_pass_ways", {})[w] = {"error": "%s: %s" % (type(ex).__name__, str(ex)[:300])}
            log("  PASS_MATMUL=%s: %s" % (w, row["seqc_pass_ways"][w]["error"]))
        finally:
            seqc.pass_way(old)
    if args.profile:  # the default way again (after the others, so that both ran warm), and cuDNN
        for who, fn in (("seqc", one_s), ("cudnn", one_c)):
            try:
                row["profile_" + who] = p = profile_step(fn)
                log("  profile %s: step %.2f ms, GPU kernels %.2f ms; top: %s" % (who, p["step_ms"], p["gpu_sum_ms"],
                    "; ".join("%s x%d %.3f" % tuple(r) for r in p["top"][:10])))
            except Exception as ex:  # noqa: BLE001
                row["profile_" + who] = {"error": "%s: %s" % (type(ex).__name__, str(ex)[:300])}
                log("  profile %s: %s" % (who, row["profile_" + who]["error"]))
    row["cudnn"] = timed(one_c, 2, args.reps, args.cap_s)
    row["cudnn"]["peak_extra_bytes"] = peak_extra(one_c)
    del one_s, ls, one_c, lc, x, s0, cot, ref_out
    free_all()
    if T < T_full:
        row["cudnn_full_T"] = cudnn_full()
    row.update(floors(T))
    log("%s B=%d T=%d H=%d: seqc %.2f ms (fwd %.2f), cuDNN %.2f ms (fwd %.2f): cuDNN/seqc %.4f; floor %.3f ms; err %s" % (
        kind, B, T, H, row["seqc"]["ms"], row["seqc"]["fwd_ms"], row["cudnn"]["ms"], row["cudnn"]["fwd_ms"],
        row["cudnn"]["ms"] / row["seqc"]["ms"], max(row["floor_io_ms"], row["floor_flop_ms"]),
        " ".join("%s=%.1e" % kv for kv in err.items())))
    return row


# ---- linear attention vs flash-linear-attention ----------------------------------------------------------


def la_inputs(model, B, T, H, K, seed):
    """fp32 inputs in the models' ranges (as bench/cuda/chunked/anchors.py): seqc's names."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=DEV, generator=g)  # noqa: E731
    if model == "mamba2":
        P = N = K
        x = {"x": rn(B, T, H, P), "dt": F.softplus(rn(B, T, H) - 3.0), "B": rn(B, T, H, N) / N ** 0.5,
             "C": rn(B, T, H, N) / N ** 0.5, "A": -torch.exp(rn(H) * 0.5), "D": rn(H)}
        return x
    x = {"q": rn(B, T, H, K), "k": rn(B, T, H, K), "v": rn(B, T, H, K)}
    if model in ("deltanet", "gated_deltanet"):
        x["k"] = F.normalize(x["k"], dim=-1)
        x["beta"] = torch.sigmoid(rn(B, T, H))
    if model in ("gated_deltanet", "simple_gla"):
        x["g"] = F.logsigmoid(rn(B, T, H)) / 4
    if model == "gla":
        x["gk"] = F.logsigmoid(rn(B, T, H, K)) / 4
    return x


def anchor_fn(model, K):
    """The anchor's call on seqc-named tensors, returning the output [B, T, H, V]."""
    scale = K ** -0.5
    if model == "deltanet":
        from fla.ops.delta_rule import chunk_delta_rule
        return lambda d: chunk_delta_rule(d["q"], d["k"], d["v"], d["beta"], scale=scale)[0]
    if model == "gated_deltanet":
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
        return lambda d: chunk_gated_delta_rule(d["q"], d["k"], d["v"], d["g"], d["beta"], scale=scale)[0]
    if model == "gla":
        from fla.ops.gla import chunk_gla
        return lambda d: chunk_gla(d["q"], d["k"], d["v"], d["gk"], scale=scale)[0]
    if model == "simple_gla":
        from fla.ops.simple_gla import chunk_simple_gla
        return lambda d: chunk_simple_gla(d["q"], d["k"], d["v"], g=d["g"], scale=scale)[0]
    if model == "mamba2":
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
        return lambda d: mamba_chunk_scan_combined(d["x"], d["dt"], d["A"], d["B"], d["C"], chunk_size=256, D=d["D"])
    raise ValueError(model)


ANCHOR_NAME = {"deltanet": "fla chunk_delta_rule", "gated_deltanet": "fla chunk_gated_delta_rule", "gla": "fla chunk_gla",
               "simple_gla": "fla chunk_simple_gla", "mamba2": "mamba_ssm mamba_chunk_scan_combined"}
LA_PARAMS = {"A", "D"}  # mamba2's params: fp32 on both sides


def la_case(args, root, model, B, T_full, H, K, rate, log):
    seqc = Seqc(root, model)
    fn = anchor_fn(model, K)
    row = {"model": model, "B": B, "T_full": T_full, "H": H, "K": K, "V": K, "anchor_name": ANCHOR_NAME[model]}

    def sides(T):
        x = la_inputs(model, B, T, H, K, 7)
        g = torch.Generator(device=DEV).manual_seed(8)
        cot = torch.randn(B, T, H, K, device=DEV, generator=g)
        ls = {n: v.clone().requires_grad_(True) for n, v in x.items()}
        la = {n: (v.clone() if n in LA_PARAMS else v.to(torch.bfloat16)).requires_grad_(True) for n, v in x.items()}
        cot16 = cot.to(torch.bfloat16)

        def fs():
            o = seqc(ls)[0]
            return (o * cot).sum(), o

        def fa():
            o = fn(la)
            return (o.float() * cot16.float()).sum(), o
        return step_fn(fs, list(ls.values())), ls, step_fn(fa, list(la.values())), la, x

    # T: the recorded states (B*T*H*K*V floats, and their time-reversed copy) and one step's time must fit
    state_bytes = B * H * K * K * 4
    T_mem = pow2floor(args.mem_gb * 1e9 / (3 * state_bytes))
    T_probe = min(T_full, 16, T_mem)
    one_s, ls, _, _, _ = sides(T_probe)
    cost = seqc.launch_cost(ls)
    row["seqc_launch_cost_T_probe"] = cost
    why = infeasible(args, cost, log, "%s B=%d H=%d K=V=%d T=%d" % (model, B, H, K, T_probe))
    if why:
        del one_s, ls
        free_all()
        _, _, one_a, la, x = sides(T_full)
        row.update(seqc_skipped=why, T=T_full)
        try:
            row["anchor_full_T"] = timed(one_a, 2, args.reps, args.cap_s)
            row["anchor_full_T"]["peak_extra_bytes"] = peak_extra(one_a)
        except Exception as e:  # noqa: BLE001
            row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:500])
        n_in = sum(v.numel() for n, v in x.items() if n not in LA_PARAMS)
        row["floor_io_ms_bf16"] = 2 * (2 * n_in + 2 * B * T_full * H * K) / (rate * 1e6)
        row["floor_io_ms_fp32"] = 2 * row["floor_io_ms_bf16"]
        del one_a, la, x
        free_all()
        return row
    t0 = time.time()
    one_s()
    torch.cuda.synchronize()
    row["first_call_s"] = time.time() - t0
    pr = timed(one_s, 0, 2, 5)
    per_step = pr["ms"] / T_probe
    T_time = pow2floor(args.step_ms / per_step)
    T = max(T_probe, min(T_full, T_mem, T_time))
    why = [w for w, lim in (("memory", T_mem), ("time", T_time)) if lim < T_full]
    row.update(T=T, T_probe=T_probe, probe_ms=pr["ms"], T_mem_limit=T_mem, T_time_limit=T_time, T_reduced_by=why,
               seqc_record_bytes=B * T * H * K * K * 4)
    log("%s: probe T=%d %.2f ms; T=%d (full %d%s)" % (model, T_probe, pr["ms"], T, T_full, "; reduced by " + " and ".join(why) if why else ""))
    del one_s, ls
    free_all()

    one_s, ls, one_a, la, x = sides(T)
    row["seqc_launch_cost"] = seqc.launch_cost(ls)
    row["seqc_variants"] = seqc.variants(ls)
    out_s = one_s()
    torch.cuda.synchronize()
    try:  # the anchor's first step autotunes its kernels; an anchor that refuses is recorded, seqc is still timed
        t0 = time.time()
        out_a = one_a()
        torch.cuda.synchronize()
        row["anchor_first_call_s"] = time.time() - t0
        err = {"output": rel(out_s, out_a.float())}
        for n in x:
            err["d" + n] = rel(ls[n].grad, la[n].grad.float())
        row["seqc_vs_anchor_rel"] = err
        del out_a
    except Exception as e:  # noqa: BLE001
        row["anchor_error"] = "%s: %s" % (type(e).__name__, str(e)[:500])
        log("%s: %s failed: %s" % (model, ANCHOR_NAME[model], row["anchor_error"]))
    del out_s
    row["seqc"] = timed(one_s, 1, args.reps_slow, args.cap_s)
    row["seqc"]["peak_extra_bytes"] = peak_extra(one_s)
    row["seqc_phases_ms"] = seqc.phases(one_s)
    log("seqc phases (ms): " + ", ".join("%s %.2f" % kv for kv in row["seqc_phases_ms"].items()))
    if "anchor_error" not in row:
        row["anchor"] = timed(one_a, 2, args.reps, args.cap_s)
        row["anchor"]["peak_extra_bytes"] = peak_extra(one_a)
    del one_s, ls, one_a, la
    free_all()
    if T < T_full and "anchor_error" not in row:
        _, _, one_a, la, _ = sides(T_full)
        row["anchor_full_T"] = timed(one_a, 2, args.reps, args.cap_s)
        row["anchor_full_T"]["peak_extra_bytes"] = peak_extra(one_a)
        del one_a, la
        free_all()
    # IO floor per element type: inputs read, output written, cotangent read, input gradients written, once each
    n_in = sum(v.numel() for n, v in x.items() if n not in LA_PARAMS)
    n_out = B * T * H * K
    row["floor_io_ms_fp32"] = 4 * (2 * n_in + 2 * n_out) / (rate * 1e6)
    row["floor_io_ms_bf16"] = 2 * (2 * n_in + 2 * n_out) / (rate * 1e6)
    if "anchor" in row:
        log("%s B=%d T=%d H=%d K=V=%d: seqc fp32 %.2f ms (fwd %.2f), %s bf16 %.3f ms (fwd %.3f): anchor/seqc %.4f; floor fp32 %.3f / bf16 %.3f ms; err %s" % (
            model, B, T, H, K, row["seqc"]["ms"], row["seqc"]["fwd_ms"], row["anchor_name"], row["anchor"]["ms"], row["anchor"]["fwd_ms"],
            row["anchor"]["ms"] / row["seqc"]["ms"], row["floor_io_ms_fp32"], row["floor_io_ms_bf16"],
            " ".join("%s=%.1e" % kv for kv in row["seqc_vs_anchor_rel"].items())))
    else:
        log("%s B=%d T=%d H=%d K=V=%d: seqc fp32 %.2f ms (fwd %.2f); no anchor; floor fp32 %.3f ms" % (
            model, B, T, H, K, row["seqc"]["ms"], row["seqc"]["fwd_ms"], row["floor_io_ms_fp32"]))
    del x
    free_all()
    return row


# ---- Triton precompile and driver JIT (run beside the checks, before the timed process) ----------------------


def patch_autotune(worker=None, max_configs=0):
    """Every autotuned kernel keeps at most `max_configs` of its configs (evenly spaced through its list; 0: all).
    Workers: compile only their share of those, no benchmarking.
    Main: Triton's own autotune over them with a shorter benchmark per config (warmup 5 ms, 20 ms of repetitions)."""
    import triton
    from triton.runtime.autotuner import Autotuner
    orig = Autotuner.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)
        try:
            cfgs = list(self.configs)
            if max_configs and len(cfgs) > max_configs:
                step = len(cfgs) / max_configs
                self.configs = [cfgs[int(i * step)] for i in range(max_configs)]
            if worker is not None:
                i, n = worker
                self.configs = self.configs[i::n] or self.configs[:1]

                def one(fn, **_):
                    fn()
                    return [1.0, 1.0, 1.0]
                self.do_bench = one
            else:
                self.do_bench = functools.partial(triton.testing.do_bench, warmup=5, rep=20)
        except Exception as e:  # noqa: BLE001  (an Autotuner without these attributes keeps its defaults)
            print("autotune patch skipped: %s" % e, flush=True)
    Autotuner.__init__ = init


def warm_fla(models, i, n, max_configs):
    os.environ["FLA_CACHE_RESULTS"] = "0"
    patch_autotune((i, n), max_configs)
    B, T, H, K = LA_SHAPE
    for model in models:
        if model not in ANCHOR_NAME:
            continue
        h = MAMBA2_HEADS if model == "mamba2" else H
        try:
            fn = anchor_fn(model, K)
            x = la_inputs(model, 2, T, h, K, 3)  # B=2: Triton specialises ints equal to 1, not 2 vs 8
            la = {k: (v if k in LA_PARAMS else v.to(torch.bfloat16)).requires_grad_(True) for k, v in x.items()}
            fn(la).float().sum().backward()
            torch.cuda.synchronize()
            print("warm %d/%d: %s ok" % (i, n, model), flush=True)
        except Exception as e:  # noqa: BLE001
            print("warm %d/%d: %s: %s: %s" % (i, n, model, type(e).__name__, str(e)[:300]), flush=True)


def warm_seqc(root, models):
    """One tiny forward + backward per model: the driver JIT-compiles the plans' PTX into its cache."""
    for model in models:
        t0 = time.time()
        try:
            s = Seqc(root, model)
            if model in ("lstm", "gru"):
                G, H = (4 if model == "lstm" else 3), 8
                named = {"x": torch.randn(1, 3, H, device=DEV), "weight_ih_l0": torch.randn(G, H, H, device=DEV),
                         "weight_hh_l0": torch.randn(G, H, H, device=DEV)}
            else:
                named = la_inputs(model, 1, 3, 2, 8, 1)
            named = {k: v.requires_grad_(True) for k, v in named.items()}
            s(named)[0].sum().backward()
            torch.cuda.synchronize()
            print("warm-seqc %s: %.1fs" % (model, time.time() - t0), flush=True)
        except Exception as e:  # noqa: BLE001
            print("warm-seqc %s: %s: %s" % (model, type(e).__name__, str(e)[:300]), flush=True)


# ---- main -----------------------------------------------------------------------------------------------


def summary(res):
    lines = ["", "case | T (full) | seqc fwd+bwd ms (fwd) | other side ms (fwd) | other/seqc | other at full T ms | floor ms | peak extra GB seqc / other | max rel diff"]
    for r in res["rows"]:
        if "error" in r:
            lines.append("%s | ERROR %s" % (r.get("case"), r["error"][:200]))
            continue
        if "seqc_skipped" in r and "anchor_error" in r:
            lines.append("%s | neither side ran: seqc skipped, anchor %s" % (r["case"], r["anchor_error"][:120]))
            continue
        if "anchor_error" in r:
            lines.append("%s | %d (%d) | %.2f (%.2f) | anchor failed: %s" % (
                r["case"], r["T"], r["T_full"], r["seqc"]["ms"], r["seqc"]["fwd_ms"], r["anchor_error"][:120]))
            continue
        if "seqc_skipped" in r:
            full = r.get("cudnn_full_T") or r.get("anchor_full_T")
            floor = max(r["floor_io_ms"], r["floor_flop_ms"]) if "floor_io_ms" in r else r["floor_io_ms_bf16"]
            lines.append("%s | %d | seqc not run (see seqc_skipped) | - | - | %.3f (fwd %.3f) | %.3f | - / %.2f | -" % (
                r["case"], r["T"], full["ms"], full["fwd_ms"], floor, full["peak_extra_bytes"] / 1e9))
            continue
        other = r.get("cudnn") or r.get("anchor")
        full = r.get("cudnn_full_T") or r.get("anchor_full_T")
        err = r.get("seqc_vs_cudnn_rel") or r.get("seqc_vs_anchor_rel")
        floor = max(r["floor_io_ms"], r["floor_flop_ms"]) if "floor_io_ms" in r else r["floor_io_ms_fp32"]
        lines.append("%s | %d (%d) | %.2f (%.2f) | %.3f (%.3f) | %.4f | %s | %.3f | %.2f / %.2f | %.1e" % (
            r["case"], r["T"], r["T_full"], r["seqc"]["ms"], r["seqc"]["fwd_ms"], other["ms"], other["fwd_ms"],
            other["ms"] / r["seqc"]["ms"], "%.3f" % full["ms"] if full else "-", floor,
            r["seqc"]["peak_extra_bytes"] / 1e9, other["peak_extra_bytes"] / 1e9, max(err.values())))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules")
    ap.add_argument("--out")
    ap.add_argument("--models", default="lstm,gru,deltanet,gated_deltanet,gla,simple_gla")
    ap.add_argument("--budget", type=float, default=100.0, help="seconds: no new case starts after this")
    ap.add_argument("--mem-gb", type=float, default=24.0, help="seqc's saved states / param adjoints at most this")
    ap.add_argument("--step-ms", type=float, default=600.0, help="one seqc step at most about this long (T reduced)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--reps-slow", type=int, default=5)
    ap.add_argument("--cap-s", type=float, default=4.0, help="stop a case's repetitions after this (at least 3)")
    ap.add_argument("--max-wave-steps", type=float, default=2e5,
                    help="seqc's gradient path is not run where its kernels would walk more waves x steps than this")
    ap.add_argument("--fp32-tflops", type=float, default=67.0, help="fp32 FMA rate for the FLOP floor (H100 SXM datasheet)")
    ap.add_argument("--fla-max-configs", type=int, default=6,
                    help="the anchors' autotune keeps at most this many configs per kernel (0: all of fla's list)")
    ap.add_argument("--cases", default=",".join(ORDER), help="cases in the order they run (model or model:shape index)")
    ap.add_argument("--cell-variants", default="",
                    help="LSTM/GRU: also time the step with record and backward forced to each of these variants (comma-separated)")
    ap.add_argument("--pass-ways", default="",
                    help="LSTM/GRU: also time the step with seqc_torch.PASS_MATMUL set to each of these (comma-separated; 'kernel': the pass plans)")
    ap.add_argument("--profile", action="store_true", help="LSTM/GRU: one step of seqc (each pass way) and cuDNN under torch.profiler")
    ap.add_argument("--warm-fla", nargs=2, type=int)
    ap.add_argument("--warm-seqc", action="store_true")
    args = ap.parse_args()
    root = os.path.abspath(args.modules)
    models = args.models.split(",")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.warm_fla:
        return warm_fla(models, *args.warm_fla, args.fla_max_configs)
    if args.warm_seqc:
        return warm_seqc(root, models)

    t_start = time.time()
    patch_autotune(None, args.fla_max_configs)
    res = {"fla_max_configs": args.fla_max_configs, "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
           "tf32": {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}, "rows": [], "skipped": []}
    try:
        import triton
        res["triton"] = triton.__version__
        import fla
        res["fla"] = getattr(fla, "__version__", "?")
    except Exception as e:  # noqa: BLE001
        res["anchor_import_error"] = str(e)[:200]
    rate = copy_rate()
    res["copy_gbps"] = rate

    def log(s):
        print("[%5.1fs] %s" % (time.time() - t_start, s), flush=True)
    log("%s, torch %s, cuDNN %s, copy %.0f GB/s" % (res["device"], res["torch"], res["cudnn"], rate))

    def save():
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)

    for case in args.cases.split(","):
        model, _, si = case.partition(":")
        if model not in models:
            continue
        if time.time() - t_start > args.budget:
            res["skipped"].append(case)
            log("%s: skipped (time budget %.0f s spent)" % (case, args.budget))
            continue
        try:
            if model in ("lstm", "gru"):
                B, T, H = RNN_SHAPES[int(si)]
                row = rnn_case(args, root, model, B, T, H, rate, log)
            else:
                B, T, H, K = LA_SHAPE
                row = la_case(args, root, model, B, T, MAMBA2_HEADS if model == "mamba2" else H, K, rate, log)
        except Exception as e:  # noqa: BLE001  (recorded; the other cases still run)
            import traceback
            traceback.print_exc()
            row = {"model": model, "error": "%s: %s" % (type(e).__name__, str(e)[:500])}
            free_all()
        row["case"] = "%s B=%d H=%d" % (model, B, H) if "error" not in row else case
        row["elapsed_s"] = time.time() - t_start
        res["rows"].append(row)
        save()
    res["summary"] = summary(res)
    print(res["summary"], flush=True)
    save()


if __name__ == "__main__":
    sys.exit(main())
