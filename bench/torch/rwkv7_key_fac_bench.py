"""RWKV-7's bf16 step with the per-key adjoint's factored twin (session 15 task D, seqc_delta_bwd KEY_MMA "bf16f":
compiler/backends/cuda/delta-adjoint-key-mma.ts DELTA_ADJ_KEY_FAC_CONFIGS and the K = 128 one) beside the defaults
(KEY_MMA "bf16"): lowrank_bench.py's --variants machinery (slot 22, as rwkv7_k128_bench.py) with these configs, bf16
under CUDA graphs (GPU ms, graphs and eager), fla's chunk_rwkv7 beside:
  "bf16 defaults"   no switch;
  "bf16 key fac"    seqc_delta_bwd.KEY_MMA "bf16f" (read at each launch; in launch_switches, the graphs' key);
  "fp32 defaults"   --accuracy only.
--accuracy BxT: each vs float64 at the first shape's H, K (and fla bf16). --profile: one eager step of "bf16 key fac"
a shape (the file names carry the shape).
  python3 rwkv7_key_fac_bench.py MOD --models rwkv7 --shapes 8x2048x16x64,4x8192x16x128 --variants 22 ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import lowrank_bench as lb  # noqa: E402

lb.CONFIGS[22] = [
    ("bf16 defaults", torch.bfloat16, {}),
    ("bf16 key fac", torch.bfloat16, {"_delta.KEY_MMA": "bf16f"}),
    ("fp32 defaults", torch.float32, {}),
]
lb.ONLY_AT[22] = {"fp32 defaults": []}
lb.PROFILED[22] = ("bf16 key fac",)

_case6, _profile, _shape = lb.case6, lb.profile, [None]


def case6(args, root, model, shape, rate, log):
    _shape[0] = shape
    return _case6(args, root, model, shape, rate, log)


def profile(one, path, stacks=False):
    base, ext = os.path.splitext(path)
    return _profile(one, "%s-%s%s" % (base, "x".join(str(v) for v in _shape[0]), ext), stacks)


lb.case6, lb.profile = case6, profile

if __name__ == "__main__":
    sys.exit(lb.main())
