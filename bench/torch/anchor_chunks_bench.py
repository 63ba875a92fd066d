"""The decay adjoint's anchors with and without the anchor chunks kernel (runtime/torch/seqc_chunked.py ANCHOR_CHUNKS;
compiler/backends/cuda/anchor-chunks.ts), alone, on one GPU: seqc_decay_adjoint.anchored_decay_adjoint at the bench
shapes with bf16 q, k, v, dy (as the bf16 step hands them with GLUE_COPIES "lean"), the lean Gram's copies and GEMMs
("copies") against the kernel ("kernel"): dld's difference, the chunk products against float64, CUDA-event medians
of the whole anchored adjoint and of the chunk products alone (U and R: two launches against two copies-and-GEMMs).
  python3 bench/torch/anchor_chunks_bench.py <modules dir with SimpleGla.torch.json and the runtime> [out.json]"""

import json
import os
import sys

import torch

MOD = sys.argv[1]
sys.path.insert(0, MOD)
import seqc_chunked as sc  # noqa: E402
import seqc_cuda  # noqa: E402
import seqc_decay_adjoint as da  # noqa: E402

dev = torch.device("cuda:0")
spec = json.load(open(os.path.join(MOD, "SimpleGla.torch.json")))["kernels"]["anchorChunks"]
km = seqc_cuda.KernelModule(spec, "anchorChunks", 0)


def med(f, n=20):
    for _ in range(3):
        f()
    ts = []
    for _ in range(n):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    return sorted(ts)[n // 2]


# (name, B, T, H, K, V, per_key, k broadcast over heads)
CASES = [("simple_gla", 8, 2048, 16, 64, 64, False, False), ("mamba2", 8, 2048, 32, 64, 64, False, True),
         ("per_key", 8, 2048, 16, 64, 64, True, False), ("ragged", 2, 1000, 4, 48, 80, False, False)]
res = {"card": torch.cuda.get_device_name(0), "cases": []}
print("%-10s %8s %8s %9s %9s %10s %10s" % ("case", "full old", "full new", "prod old", "prod new", "dld diff", "U err f64"))
for name, B, T, H, K, V, per_key, bcast in CASES:
    g = torch.Generator(device=dev).manual_seed(1)
    L = H * (K if per_key else 1)

    def r(*s):
        return torch.randn(*s, device=dev, generator=g)
    q = (r(B, T, H * K) / K ** 0.5).bfloat16()
    k = (r(B, T, 1, K) / K ** 0.5).bfloat16().expand(B, T, H, K) if bcast else (r(B, T, H * K) / K ** 0.5).bfloat16()
    v, dy = r(B, T, H * V).bfloat16(), r(B, T, H * V).bfloat16()
    ld = -torch.rand(B, T, L, device=dev, generator=g) * 0.1
    S0, dS, terms = r(B, H * K * V), r(B, H * K * V), r(B, T, L)
    pairs, readouts = [(k, v)], [(q, dy)]
    calls = []

    def prod(xs, w):
        out = sc.anchor_chunks_kernel(km, xs, w)
        calls.append(out is not None)
        return out

    def full(p):
        return da.anchored_decay_adjoint(terms, ld, pairs, readouts, S0, dS, B, T, H, K, V, per_key, torch.float32, dev, 64, "lean", None, p)
    old, new = full(None), full(prod)
    diff = ((new - old).norm() / old.norm()).item()
    # the chunk products alone: U from (k, v) with the tail weights, against float64 and against the copies' products
    C = 64
    n = -(-T // C)
    Kd = K if per_key else 1
    w = torch.rand(B, H, n, C, Kd, device=dev, generator=g)
    U = sc.anchor_chunks_kernel(km, [(k, v)], w)
    Tp = n * C
    kp = torch.zeros(B, Tp, H, K, device=dev, dtype=torch.float64)
    kp[:, :T] = k.reshape(B, T, H, K).double()
    vp = torch.zeros(B, Tp, H, V, device=dev, dtype=torch.float64)
    vp[:, :T] = v.reshape(B, T, H, V).double()
    kc = kp.reshape(B, n, C, H, K).permute(0, 3, 1, 2, 4) * w.double()
    vc = vp.reshape(B, n, C, H, V).permute(0, 3, 1, 2, 4)
    U64 = torch.einsum("bhics,bhicv->bhisv", kc, vc).reshape(B, H, n, Kd, -1).permute(0, 1, 3, 2, 4)
    uerr = ((U.double() - U64).norm() / U64.norm()).item()

    # the copies and GEMMs of U and R as the lean Gram runs them (blocks_c + matmul; full chunks only), against the kernel's two launches
    def copies_products():
        for a, b, ww in ((k, v, w), (q, dy, w)):
            ac = torch.empty(B, H, n, C, K, dtype=torch.float32, device=dev)
            bc = torch.empty(B, H, n, C, V, dtype=torch.float32, device=dev)
            if Tp != T:
                ac.zero_()
                bc.zero_()
            nf = T // C
            torch.mul(a.reshape(B, T, H, K)[:, : nf * C].reshape(B, nf, C, H, K), torch.permute(ww, [0, 2, 3, 1, 4])[:, :nf], out=torch.permute(ac, [0, 2, 3, 1, 4])[:, :nf])
            torch.permute(bc, [0, 2, 3, 1, 4])[:, :nf] = b.reshape(B, T, H, V)[:, : nf * C].reshape(B, nf, C, H, V)
            torch.matmul(torch.transpose(ac, 3, 4), bc)

    def kernel_products():
        sc.anchor_chunks_kernel(km, [(k, v)], w)
        sc.anchor_chunks_kernel(km, [(q, dy)], w)
    with da._Fp32Products():
        t_po, t_pn = med(copies_products), med(kernel_products)
    t_fo, t_fn = med(lambda: full(None)), med(lambda: full(prod))
    row = {"case": name, "B": B, "T": T, "H": H, "K": K, "V": V, "per_key": per_key, "k_broadcast": bcast, "full_old_ms": t_fo, "full_new_ms": t_fn,
           "products_old_ms": t_po, "products_new_ms": t_pn, "dld_rel_diff": diff, "U_rel_err_f64": uerr, "kernel_used": all(calls) and bool(calls)}
    res["cases"].append(row)
    print("%-10s %8.3f %8.3f %9.3f %9.3f %10.2e %10.2e%s" % (name, t_fo, t_fn, t_po, t_pn, diff, uerr, "" if row["kernel_used"] else "  (kernel NOT used)"), flush=True)
    del q, k, v, dy, ld, S0, dS, terms, kp, vp, kc, vc, U64, U, old, new
    torch.cuda.empty_cache()
if len(sys.argv) > 2:
    json.dump(res, open(sys.argv[2], "w"), indent=1)
