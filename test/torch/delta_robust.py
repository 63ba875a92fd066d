"""The delta kernels' launcher (runtime/torch/seqc_delta_bwd.py kernel_launch / delta_kernels / delta_backward) on a fake
kernel module (stdin: its records as JSON) on CPU, for test/torch-delta-robust.test.ts. Prints JSON:
  aligned:  per mode ("scalar", "key"), inputs that sit 4 bytes off 16 (views into a buffer at offset 1) and strided
            (transposed) ones, S_init, dS and ld included: every pointer a kernel gets % 16, and whether the memory at the
            walk's Z0 / prep's LD pointers holds S_init / ld (read back by ctypes: the copy, not another tensor)
  has:      launch.has for dtypes and shapes without kernels
  torch:    delta_backward with the launcher for those: kernel calls made (none) and the largest difference from
            delta_backward without kernels (the torch ops)"""

import contextlib
import ctypes
import json
import sys

sys.path.insert(0, "runtime/torch")
import torch  # noqa: E402
import seqc_delta_bwd as d  # noqa: E402

ks = json.loads(sys.stdin.read())
calls = []
reads = {}  # (op, reverse or None) -> (argument index, floats): read at launch (a copy lives only through its launch)


def read(p, n):
    return torch.tensor(list((ctypes.c_float * n).from_address(p)))


class KM:
    def __init__(self, kernels):
        self.kernels = kernels

    def launch(self, k, grid, args, stream):
        vals = [a[1] for a in args]
        key = (k["op"], vals[-1] if k["op"] == "walk" else None)
        got = {}
        if key in reads:
            i, n = reads[key]
            got = read(vals[i], n)
        calls.append((k, vals, got))


torch.cuda.device = lambda dev: contextlib.nullcontext()
torch.cuda.current_stream = lambda dev=None: type("S", (), {"cuda_stream": 0})()
launch = d.kernel_launch(KM(ks), torch.device("cpu"))
launch.tin = None
g = torch.Generator().manual_seed(5)
B, T, H, K = 2, 100, 3, 64


def off(*shape):
    """A float32 tensor of `shape` 4 bytes past a 16-byte boundary (a view at storage offset 1)."""
    n = 1
    for s in shape:
        n *= s
    buf = torch.randn(n + 4, generator=g)
    while buf.data_ptr() % 16 != 0:
        buf = torch.randn(n + 4, generator=g)
    return buf[1:n + 1].view(*shape)


def strided(*shape):
    """A non-contiguous float32 tensor of `shape` (B and T swapped in memory)."""
    return torch.randn([shape[1], shape[0]] + list(shape[2:]), generator=g).transpose(0, 1)


out = {"aligned": {}, "has": {}, "torch": {}}
for mode in ("scalar", "key"):
    calls.clear()
    u, w, q = off(B, T, H, K), strided(B, T, H, K), off(B, T, H, K)
    kk, vv, dY = strided(B, T, H, K), off(B, T, H, K), off(B, T, H, K)
    ld = off(B, T, H, K) if mode == "key" else off(B, T, H)
    S_init, dS = off(B, H, K, K), off(B, H, K, K)
    assert all(x.data_ptr() % 16 == 4 for x in (u, q, vv, dY, ld, S_init, dS))
    reads.clear()
    reads.update({("walk", 0): (5, B * H * K * K), ("walk", 1): (5, B * H * K * K), ("prep_fwd", None): (4, ld.numel())})
    d.delta_kernels(launch, u, w, kk, vv, q, ld, S_init, dY, dS)
    ops = [k["op"] for k, _, _ in calls]
    ptrs = [p for _, args, _ in calls for p in args[:-3] if isinstance(p, int) and p > 4096]  # (the u32 B, T, H / BH, nC, reverse left out)
    out["aligned"][mode] = {
        "ops": ops,
        "pointers": len(ptrs),
        "off16": sorted(set(p % 16 for p in ptrs)),
        "Z0": float((calls[1][2] - S_init.reshape(-1)).abs().max()),
        "dS": float((calls[3][2] - dS.reshape(-1)).abs().max()),
        "LD": float((calls[0][2] - ld.reshape(-1)).abs().max()),
    }

# shapes and dtypes without kernels: launch.has says no, delta_backward takes the torch ops (float64 never reaches an
# fp32 kernel)
cases = {
    "f64": ("scalar", 64, 64, 64, torch.float64), "f16": ("scalar", 64, 64, 64, torch.float16), "K64V128": ("scalar", 64, 64, 128, torch.float32),
    "K32": ("scalar", 64, 32, 32, torch.float32), "K96": ("scalar", 64, 96, 96, torch.float32), "V48": ("scalar", 64, 64, 48, torch.float32),
    "C32": ("scalar", 32, 64, 64, torch.float32), "f32": ("scalar", 64, 64, 64, torch.float32),
}
for name, (mode, C, Kc, Vc, dt) in cases.items():
    out["has"][name] = launch.has(mode, C, Kc, Vc, dt)
for name in ("f64", "K64V128", "K32", "V48"):
    mode, C, Kc, Vc, dt = cases[name]
    b, t, h = 1, 9, 2
    x = [torch.randn(b, t, h, n, generator=g, dtype=dt) for n in (Kc, Kc, Kc, Vc, Kc)]
    ld = -torch.rand(b, t, h, generator=g, dtype=dt)
    S0 = torch.randn(b, h, Kc, Vc, generator=g, dtype=dt)
    dY = torch.randn(b, t, h, Vc, generator=g, dtype=dt)
    calls.clear()
    got = d.delta_backward(*x, ld, S0, dY, None, C=C, kern=launch)
    want = d.delta_backward(*x, ld, S0, dY, None, C=C)
    out["torch"][name] = {"calls": len(calls), "diff": max(float((a - b_).abs().max()) for a, b_ in zip(got, want)), "dtype": str(got[0].dtype)}
print(json.dumps(out))
