"""Diagnostic: per-gradient distances between seqc's torch-target backwards (step vs chunked, float64 vs fp32) at
a large shape, to tell which path a param-gradient mismatch comes from.
  python3 bench/torch/diag_params.py <modules dir> mamba2 [B] [T]"""
import sys, os, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_bench as tb  # noqa: E402
import chunked_bench as cb  # noqa: E402
from bf16_run import grads_of  # noqa: E402

root, model = sys.argv[1], sys.argv[2]
B, T = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (2, 2048)
H, K = (tb.MAMBA2_HEADS if model == "mamba2" else tb.LA_SHAPE[2]), tb.LA_SHAPE[3]
x = tb.la_inputs(model, B, T, H, K, 11)
g = torch.Generator(device=tb.DEV).manual_seed(12)
runs = {}
for bw in ("step", "chunked"):
    sm = cb.seqc_model(root, model, bw)
    pn = {t["name"] for t in sm.params}
    cot = {sm.outputs[0]["name"]: torch.randn(B, T, H, K, device=tb.DEV, generator=torch.Generator(device=tb.DEV).manual_seed(12), dtype=torch.float64)}
    for dt in (torch.float64, torch.float32):
        ins = {n: v.detach().to(torch.bfloat16).to(dt).clone().requires_grad_(True) for n, v in x.items() if n not in pn}
        pars = {n: v.detach().to(dt).clone().requires_grad_(True) for n, v in x.items() if n in pn}
        got, ran, _ = grads_of(sm, ins, pars, {}, cot, {})
        runs[(bw, str(dt))] = got
        print(bw, dt, "chunked ran:", ran, {k: float(v.double().norm()) for k, v in got.items() if k in pn}, flush=True)
base = runs[("step", "torch.float64")]
for key, got in runs.items():
    print(key, " ".join("%s=%.1e" % (k, tb.rel(got[k], base[k])) for k in got), flush=True)
