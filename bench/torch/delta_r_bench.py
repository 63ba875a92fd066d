"""The delta backward's reads from saved chunk states alone (LR_FWD_STATES; compiler/backends/cuda/delta-r.ts FMA kernels
and delta-r-mma.ts tensor-core twins, math "tf32x3"; session 14 task G3): R = X + M S per 64-token chunk, S0 = S as the
adjoint reads it. For each shape (B, T, H, K): N = B H ceil(T / 64) chunks, M [N, 64, K], X [N, 64, K] float32, S
[N, K, K] bf16 and float32; each kernel (LR_DELTA_R "fp32" / "tf32x3" through seqc_delta_bwd.r_launch, R float32 or
zout bf16) timed by CUDA events over --kreps launches captured in a CUDA graph (median of 5), its floor (bytes read and
written once at the copy rate measured here: M, X 4 B, S its type, R 4 / 2 B, S0 4 B where written (bf16 S, no zout),
2 B (f32 S with zout)); R vs float64 (max |diff| / max |ref| on the first 64 chunks) and the twin's R vs the FMA's.
  python3 delta_r_bench.py MODULE_DIR [--shapes 8x2048x16x64,1x32768x8x128,4x8192x16x128] [--kreps 20] [--out FILE]
Run with MODULE_DIR's runtime on sys.path (MODULE_DIR holds DeltaNet.torch.json with kernels.deltaStates).
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
    with open(os.path.join(args.root, "DeltaNet.torch.json")) as f:
        spec = json.load(f)["kernels"]["deltaStates"]
    km = seqc_cuda.KernelModule(spec, "DeltaNet deltaStates", 0)
    r = db.r_launch(km, DEV)
    rate = tb.copy_rate()
    res = {"card": torch.cuda.get_device_name(), "rate_gbs": rate, "rows": []}
    print("card %s, copy rate %.0f GB/s" % (res["card"], rate), flush=True)
    lines = []
    for B, T, H, K in lb.parse_shapes(args.shapes):
        C, N = 64, B * H * (-(-T // 64))
        g = torch.Generator(device=DEV).manual_seed(3)
        M = (torch.rand(N, C, K, device=DEV, generator=g) * 2 - 1) / K ** 0.5
        X = torch.rand(N, C, K, device=DEV, generator=g) * 2 - 1
        S32 = torch.rand(N, K, K, device=DEV, generator=g) * 2 - 1
        n0 = min(N, 64)
        for sdt in (torch.bfloat16, torch.float32):
            S = S32.to(sdt).contiguous()
            ref = (X[:n0].double() + M[:n0].double() @ S[:n0].double())
            Rs = {}
            for zout in (False, True):
                for rm in ("fp32", "tf32x3"):
                    db.R_MATH = rm
                    entry = [x["entry"] for x in km.kernels if x["op"] == "r" and x["K"] == K and x["sin"] == {torch.bfloat16: "bf16", torch.float32: "f32"}[sdt]
                             and bool(x.get("zout")) == zout and (x.get("math") or "fp32") == rm]
                    R, S0 = r(C, K, K, M, X, S, zout=zout)
                    torch.cuda.synchronize()
                    err = ((R[:n0].double() - ref).abs().max() / ref.abs().max()).item()
                    Rs[(zout, rm)] = R
                    s_b = 2 if sdt == torch.bfloat16 else 4
                    s0_b = 0 if S0 is S else (2 if zout else 4)
                    nbytes = N * C * K * 4 * 2 + N * K * K * s_b + N * C * K * (2 if zout else 4) + N * K * K * s0_b
                    floor = nbytes / rate / 1e6
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):
                        r(C, K, K, M, X, S, zout=zout)
                    torch.cuda.current_stream().wait_stream(s)
                    gr = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(gr):
                        for _ in range(args.kreps):
                            r(C, K, K, M, X, S, zout=zout)
                    ms = []
                    for _ in range(6):
                        e = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                        e[0].record()
                        gr.replay()
                        e[1].record()
                        e[1].synchronize()
                        ms.append(e[0].elapsed_time(e[1]) / args.kreps)
                    t = statistics.median(ms[1:])
                    del gr
                    vs = ((R.float() - Rs[(zout, "fp32")].float()).abs().max() / Rs[(zout, "fp32")].float().abs().max()).item() if rm == "tf32x3" else 0.0
                    row = {"shape": [B, T, H, K], "N": N, "S": str(sdt)[6:], "zout": zout, "R_MATH": rm, "entry": entry[0] if entry else None, "ms": t,
                           "floor_ms": floor, "bytes": nbytes, "err_vs_f64": err, "vs_fp32_kernel": vs}
                    res["rows"].append(row)
                    line = "%-16s S %-8s %-4s %-6s %-45s %7.3f ms floor %6.3f (%.2fx) err %.1e vs fma %.1e" % (
                        "x".join(map(str, (B, T, H, K))), row["S"], "zb" if zout else "f32", rm, row["entry"], t, floor, floor / t, err, vs)
                    lines.append(line)
                    print(line, flush=True)
            del Rs, S, ref
            tb.free_all()
        del M, X, S32
        tb.free_all()
    print("\n".join(["", "delta R kernels (GPU ms a launch, graph of %d):" % args.kreps] + lines))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
