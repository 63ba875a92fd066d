"""RWKV-7 through the delta backward at K = 128 (session 14, task D: the per-key adjoint's K = 128 twin,
compiler/backends/cuda/delta-adjoint-key-mma-k128.ts): lowrank_bench.py's --variants 22 machinery with these configs,
bf16 under CUDA graphs (GPU ms, graphs and eager), fla's chunk_rwkv7 beside:
  "bf16 chain"        LR_BWD "wy", LR_BWD_KEY "chain": what "auto" took at K = 128 before (no per-key adjoint there);
                      timed at K = 128 only;
  "bf16 delta twins"  no switch (the defaults): "auto" takes the delta kernels where the module has every op for the
                      shape and dtype (now also at K = 128 for bf16 inputs).
--accuracy BxT: both vs float64 at the first shape's H, K (and fla bf16). --profile: one eager step of each config a
shape (the file names carry the shape).
  python3 rwkv7_k128_bench.py MOD --models rwkv7 --shapes 4x8192x16x128,1x32768x8x128,8x2048x16x64 --variants 22 ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import lowrank_bench as lb  # noqa: E402

K128 = [(4, 8192, 16, 128), (1, 32768, 8, 128), (2, 1024, 16, 128)]
lb.CONFIGS[22] = [
    ("bf16 chain", torch.bfloat16, {"LR_BWD": "wy", "LR_BWD_KEY": "chain"}),
    ("bf16 delta twins", torch.bfloat16, {}),
]
lb.ONLY_AT[22] = {"bf16 chain": K128}
lb.PROFILED[22] = ("bf16 chain", "bf16 delta twins")

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
