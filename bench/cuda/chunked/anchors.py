"""Public anchors for the chunked form, on the GPU machine (sources brought along in .anchors/, never
committed): flash-linear-attention's Triton chunk kernels (chunk_gla, chunk_simple_gla, chunk_delta_rule,
chunk_gated_delta_rule, chunk_rwkv7) and Mamba-2's mamba_chunk_scan_combined, at the benchmark shapes.

  python3 anchors.py gen          inputs of every (model, shape) as raw bf16 in $SEQC_CHUNK_DIR (+ index.json)
  python3 anchors.py warm I N     Triton precompile: this worker compiles configs I, I+N, ... of every autotuned
                                  kernel at tiny T (the kernels specialise on H, K, V, not T), so the timed
                                  autotuning in `time` only benchmarks (its compiles hit the shared cache)
  python3 anchors.py time         autotune, check and time every anchor on the same inputs; outputs to
                                  $SEQC_CHUNK_DIR/<model>-<shape>.anchor.bin, timings to $OUT/anchors.json
SEQC_ANCHOR_CASES=model:shape,... restricts all three to those cases (same seeds, so the same inputs).
"""
import json, os, sys, statistics, functools

DIR = os.environ.get("SEQC_CHUNK_DIR", "/dev/shm/seqc-chunk")
OUT = os.environ.get("OUT", "out")
SHAPES = [("s1", 8, 2048, 16, 64), ("s2", 4, 8192, 16, 128), ("s3", 1, 32768, 8, 128)]
MAMBA_H, MAMBA_D = 32, 64
MODELS = ["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"]
CASES = {c for c in os.environ.get("SEQC_ANCHOR_CASES", "").split(",") if c}


def wanted(model, tag):
    return not CASES or f"{model}:{tag}" in CASES

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

dev = "cuda"


def shapes_of(model):
    for tag, B, T, H, K in SHAPES:
        if model == "mamba2":
            yield tag, B, T, MAMBA_H, MAMBA_D
        else:
            yield tag, B, T, H, K


def make_inputs(model, B, T, H, K, seed):
    """Inputs in the models' ranges (same conventions as test/helpers/chunk-inputs.ts), bf16 on the GPU."""
    g = torch.Generator(device=dev).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, device=dev, generator=g)
    bf = lambda x: x.to(torch.bfloat16).contiguous()
    V = K
    if model == "mamba2":
        x = {"x": bf(rn(B, T, H, V)), "dt": bf(F.softplus(rn(B, T, H) - 3.0)), "B": bf(rn(B, T, H, K) / K ** 0.5), "C": bf(rn(B, T, H, K) / K ** 0.5)}
        p = {"A": -torch.exp(rn(H) * 0.5).float(), "D": rn(H).float()}
        return x, p, {"H": H, "P": V, "N": K}
    q, k, v = rn(B, T, H, K), rn(B, T, H, K), rn(B, T, H, V)
    if model == "simple_gla":
        x = {"q": q, "k": k, "v": v, "g": F.logsigmoid(rn(B, T, H)) / 4}
    elif model == "gla":
        x = {"q": q, "k": k, "v": v, "gk": F.logsigmoid(rn(B, T, H, K)) / 4}
    elif model == "deltanet":
        x = {"q": q, "k": F.normalize(k, dim=-1), "v": v, "beta": torch.sigmoid(rn(B, T, H))}
    elif model == "gated_deltanet":
        x = {"q": q, "k": F.normalize(k, dim=-1), "v": v, "beta": torch.sigmoid(rn(B, T, H)), "g": F.logsigmoid(rn(B, T, H)) / 4}
    elif model == "rwkv7":
        kk = F.normalize(rn(B, T, H, K), dim=-1)
        x = {"r": q / K ** 0.5, "w": F.logsigmoid(rn(B, T, H, K)) / 4, "k": k / K ** 0.5, "v": v, "a": -kk, "b": kk * torch.sigmoid(rn(B, T, H, K))}
    return {n: bf(t) for n, t in x.items()}, {}, {"H": H, "K": K, "V": V}


def save(name, t):
    path = os.path.join(DIR, name)
    if t.dtype == torch.bfloat16:
        t.view(torch.int16).cpu().numpy().tofile(path)
    else:
        t.float().cpu().numpy().tofile(path)
    return name


def gen():
    os.makedirs(DIR, exist_ok=True)
    index = []
    for mi, model in enumerate(MODELS):
        for si, (tag, B, T, H, K) in enumerate(shapes_of(model)):
            if not wanted(model, tag):
                continue
            x, p, dims = make_inputs(model, B, T, H, K, 1000 * mi + si)
            index.append({"model": model, "shape": tag, "B": B, "T": T, "dims": dims,
                          "inputs": {n: save(f"{model}-{tag}.{n}.bin", t) for n, t in x.items()},
                          "params": {n: save(f"{model}-{tag}.{n}.param.bin", t) for n, t in p.items()}})
            del x
    with open(os.path.join(DIR, "index.json"), "w") as f:
        json.dump(index, f)
    print(f"gen: {len(index)} cases in {DIR}", flush=True)


def load_case(meta):
    import numpy as np
    x = {}
    for n, f in meta["inputs"].items():
        a = np.fromfile(os.path.join(DIR, f), dtype=np.int16)
        shape = (meta["B"], meta["T"], meta["dims"]["H"], -1)
        t = torch.from_numpy(a).to(dev).view(torch.bfloat16).view(*shape)
        x[n] = t.squeeze(-1) if t.shape[-1] == 1 else t
    p = {n: torch.from_numpy(np.fromfile(os.path.join(DIR, f), dtype=np.float32)).to(dev) for n, f in meta["params"].items()}
    return x, p


def anchor_fn(model, x, p, K):
    """The anchor's forward for these inputs, returning its output o [B, T, H, V]."""
    scale = K ** -0.5
    if model == "simple_gla":
        from fla.ops.simple_gla import chunk_simple_gla
        return lambda: chunk_simple_gla(x["q"], x["k"], x["v"], g=x["g"], scale=scale, output_final_state=True)[0]
    if model == "gla":
        from fla.ops.gla import chunk_gla
        return lambda: chunk_gla(x["q"], x["k"], x["v"], x["gk"], scale=scale, output_final_state=True)[0]
    if model == "deltanet":
        from fla.ops.delta_rule import chunk_delta_rule
        return lambda: chunk_delta_rule(x["q"], x["k"], x["v"], x["beta"], scale=scale, output_final_state=True)[0]
    if model == "gated_deltanet":
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
        return lambda: chunk_gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], scale=scale, output_final_state=True)[0]
    if model == "rwkv7":
        from fla.ops.rwkv7 import chunk_rwkv7
        return lambda: chunk_rwkv7(x["r"], x["w"], x["k"], x["v"], x["a"], x["b"], scale=1.0, output_final_state=True)[0]
    if model == "mamba2":
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
        return lambda: mamba_chunk_scan_combined(x["x"], x["dt"], p["A"], x["B"], x["C"], chunk_size=256, D=p["D"], return_final_states=True)[0]


def patch_autotune(worker=None):
    """Workers: compile only their share of every autotuned kernel's configs and skip benchmarking.
    Main: shorter benchmark per config (warmup 5 ms, 20 ms of repetitions) than Triton's 25/100 ms."""
    import triton
    from triton.runtime.autotuner import Autotuner
    orig = Autotuner.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)
        try:
            if worker is not None:
                i, n = worker
                self.configs = self.configs[i::n] or self.configs[:1]

                def one(fn, **_):
                    fn()
                    return [1.0, 1.0, 1.0]
                self.do_bench = one
            else:
                self.do_bench = functools.partial(triton.testing.do_bench, warmup=5, rep=20)
        except Exception as e:  # noqa: BLE001  (an Autotuner without these attributes: keep its defaults)
            print(f"autotune patch skipped: {e}", flush=True)
    Autotuner.__init__ = init


def warm(i, n):
    os.environ["FLA_CACHE_RESULTS"] = "0"
    patch_autotune((i, n))
    for model in MODELS:
        seen = set()
        for tag, B, T, H, K in shapes_of(model):
            if (H, K) in seen or not wanted(model, tag):
                continue
            seen.add((H, K))
            x, p, _ = make_inputs(model, 1, 512, H, K, 7)
            try:
                anchor_fn(model, x, p, K)()
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                print(f"warm {i}: {model} {tag}: {type(e).__name__}: {str(e)[:200]}", flush=True)


def timed(fn, reps=15):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    return statistics.median(ms), ms


def time_all():
    patch_autotune()
    with open(os.path.join(DIR, "index.json")) as f:
        index = json.load(f)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
    try:
        import triton
        res["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        pass
    n = 1 << 28
    a = torch.rand(n, device=dev)
    b = torch.empty_like(a)
    ms, _ = timed(lambda: b.copy_(a), reps=20)
    res["copy_gbps"] = 2 * n * 4 / (ms * 1e6)
    del a, b
    print(f"copy {res['copy_gbps']:.0f} GB/s", flush=True)
    for meta in index:
        model, tag = meta["model"], meta["shape"]
        if not wanted(model, tag):
            continue
        x, p = load_case(meta)
        K = meta["dims"].get("K", meta["dims"].get("N"))
        row = {"model": model, "shape": tag, "B": meta["B"], "T": meta["T"], "dims": meta["dims"]}
        try:
            fn = anchor_fn(model, x, p, K)
            with torch.no_grad():
                o = fn()
                torch.cuda.synchronize()
                ms, all_ms = timed(fn)
            row.update(ms=ms, all=all_ms)
            save(f"{model}-{tag}.anchor.bin", o.to(torch.bfloat16).contiguous())
            print(f"anchor {model:16s} {tag} {ms:.3f} ms", flush=True)
        except Exception as e:  # noqa: BLE001
            row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            print(f"anchor {model} {tag} ERROR {row['error']}", flush=True)
        res["rows"].append(row)
        del x, p
        torch.cuda.empty_cache()
        # after every case, so that a run stopped by its time limit keeps the cases it timed
        with open(os.path.join(OUT, "anchors.json"), "w") as f:
            json.dump(res, f, indent=1)
    with open(os.path.join(OUT, "anchors.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen()
    elif cmd == "warm":
        warm(int(sys.argv[2]), int(sys.argv[3]))
    else:
        time_all()
