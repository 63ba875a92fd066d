"""Driver for test/torch-rows-chunk-seg.test.ts: seqc_chunked.rows_readout_kernel with ROWS_CHUNK_SEGMENTS off and on, on CPU
torch, the rows chunk kernel's launches (the module's entries as given on stdin, JSON) run by a stand-in that reads and
writes the launch's pointers (ctypes) and walks the kernel's contract in float64 per launched batch: S from S0 where init,
S_t = diag(exp(ld_t)) S_{t-1} + a_t b_t^T, out_t = S_t c_t (split entries: slice g the value group g's part), rev bits
(ld 1 as ld[T - t], 0 at t = 0; a 2, b 4, c 8 at T - 1 - t; out 16). argv: [broken]: "noinit" a stand-in that starts every
batch from zero (ignores init and S0).
Prints one JSON line per case: {case, launches: [[grid x, grid y, B, T, init]...], err (on vs off, max abs / max abs of
off), ref (off vs a float64 walk of the whole sequence)}; then one line of rows_chunk_segments' picks."""

import ctypes
import json
import os
import sys
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked as sc  # noqa: E402

class _Dev:
    def __init__(self, d):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


torch.cuda.device = _Dev
torch.cuda.current_stream = lambda d=None: types.SimpleNamespace(cuda_stream=0)
BROKEN = len(sys.argv) > 1 and sys.argv[1] == "noinit"


def at(ptr, n, dtype):
    size = n * torch.tensor([], dtype=dtype).element_size()
    return torch.frombuffer((ctypes.c_char * size).from_address(ptr), dtype=dtype, count=n)


def walk(ld, a, b, c, S0, B, T, H, K, V, rev):
    """float64 outputs [B, T, H, K] of the contract (every tensor [B, T, H, w] float64)."""
    out = torch.zeros(B, T, H, K, dtype=torch.float64)
    S = S0.clone()
    for t in range(T):
        tt = T - 1 - t
        lt = (torch.zeros_like(ld[:, 0]) if t == 0 else ld[:, T - t]) if rev & 1 else ld[:, t]
        at_ = a[:, tt] if rev & 2 else a[:, t]
        bt = b[:, tt] if rev & 4 else b[:, t]
        ct = c[:, tt] if rev & 8 else c[:, t]
        S = torch.exp(lt)[..., None] * S + at_[..., None] * bt[:, :, None, :]
        out[:, tt if rev & 16 else t] = torch.einsum("bhkv,bhv->bhk", S, ct)
    return out


class Kc:
    def __init__(self, kernels, sms):
        self.kernels, self.info, self.launches = kernels, {"multiprocessors": sms}, []

    def launch(self, k, grid, args, stream):
        p = [v for t, v in args if t == "ptr"]
        u = [v for t, v in args if t == "u32"]
        B, T, H, K, V, init = u[:6]
        rev = u[6] if k.get("rev") else 0
        self.launches.append([grid[0], grid[1], B, T, init])
        nk, nv = B * T * H * K, B * T * H * V
        f, h = torch.float32, torch.bfloat16
        ld = at(p[0], nk, f).double().reshape(B, T, H, K)
        a = at(p[1], nk, h if k["lowA"] else f).double().reshape(B, T, H, K)
        b = at(p[2], nv, h).double().reshape(B, T, H, V)
        c = at(p[3], nv, h).double().reshape(B, T, H, V)
        S0 = at(p[4], B * H * K * V, f).double().reshape(B, H, K, V) if init and not BROKEN else torch.zeros(B, H, K, V, dtype=torch.float64)
        nvg = -(-V // k["valueGroup"]) if k.get("valueGroup") else 1
        if k.get("terms"):  # (the _t / _ts entries: out as bf16; terms = a dq - k out at out's rows, or their running sums
            # along the walk from carry0 (null: 0); each product and sum in float64 here, stored as float32)
            o = walk(ld, a, b, c, S0, B, T, H, K, V, rev)
            at(p[5], nk, h).copy_(o.reshape(-1).to(h))
            dq, kk = at(p[6], nk, f).double().reshape(B, T, H, K), at(p[7], nk, h).double().reshape(B, T, H, K)
            t = a * dq - kk * o
            if k.get("scan"):
                c0 = at(p[9], B * H * K, f).double().reshape(B, 1, H, K) if p[9] else 0.0
                w = torch.flip(t, [1]) if rev & 16 else t
                w = torch.cumsum(w, 1) + c0
                t = torch.flip(w, [1]) if rev & 16 else w
            at(p[8], nk, f).copy_(t.reshape(-1).float())
            return
        out = at(p[5], nvg * nk, f).reshape(nvg, B, T, H, K)
        for g in range(nvg):
            vs = slice(64 * g, 64 * g + 64) if nvg > 1 else slice(0, V)
            out[g] = walk(ld, a, b[..., vs], c[..., vs], S0[..., vs], B, T, H, K, b[..., vs].shape[-1], rev).float()


class Ks:
    """Stand-in for the rowsSegStates module (ROWS_SEG_STATES "cuda"): reads the launch's pointers and writes E, Q of the
    feeding segments by their definition in float64 (rows-seg-states.ts), checking the grid."""
    def __init__(self, kernels):
        self.kernels, self.launches = kernels, []

    def launch(self, k, grid, args, stream):
        p = [v for t, v in args if t == "ptr"]
        B, T, H, K, V, nseg, rev = [v for t, v in args if t == "u32"]
        ns, L = nseg - 1, T // nseg
        self.launches.append([grid[0], grid[1], nseg, rev, k["entry"]])
        assert grid == (B * ns * H, -(-K // k["tile"]) * -(-V // k["tile"]))
        f, h = torch.float32, torch.bfloat16
        ld = at(p[0], B * T * H * K, f).double().reshape(B, nseg, L, H, K)
        a = at(p[1], B * T * H * K, h if k["lowA"] else f).double().reshape(B, nseg, L, H, K)
        b = at(p[2], B * T * H * V, h).double().reshape(B, nseg, L, H, V)
        if rev:
            d = ld[:, 1:].clone()
            d[:, :, 0] = 0
            g = torch.cumsum(d, 2)  # sum ld[jL+1 .. o]
            a, b = a[:, 1:], b[:, 1:]
        else:
            d = ld[:, :ns]
            g = torch.flip(torch.cumsum(torch.flip(d, [2]), 2), [2]) - d  # sum ld[o+1 .. end]
            a, b = a[:, :ns], b[:, :ns]
        at(p[3], B * ns * H * K * V, f).copy_(torch.einsum("bjlhk,bjlhv->bjhkv", torch.exp(g) * a, b).reshape(-1).float())
        at(p[4], B * ns * H * K, f).copy_(torch.exp(d.sum(2)).reshape(-1).float())


def main():
    spec = json.load(sys.stdin)
    kernels, ks_kernels = spec["rowsChunk"], spec["rowsSegStates"]
    default = sc.ROWS_CHUNK_SEGMENTS  # (the module's default, before the cases set it)
    seg_default = sc.ROWS_SEG_STATES
    g = torch.Generator().manual_seed(5)
    cases = [  # (name, B, T, H, K, V, lowA, rev, init, minLd, wide, segments)
        ("split K128 dk rev", 1, 150, 2, 128, 128, False, 31, False, -20.0, "split", [2, 3, 5]),
        ("split K128 dq", 1, 256, 2, 128, 128, True, 0, True, -0.3, "split", [3, "auto"]),
        ("wide K128 dq", 2, 130, 1, 128, 128, True, 0, False, -1.0, "wide", [2, 5]),
        ("wide K128 dk rev init", 2, 256, 1, 128, 128, False, 31, True, -0.3, "wide", [2, "auto"]),
        ("K64 ragged T 195", 2, 195, 1, 48, 40, False, 0, True, -0.5, "auto", [3, 5, 4]),
        ("K64 T 2048 (token blocks of 512)", 1, 2048, 2, 64, 64, True, 0, True, -0.02, "auto", [2]),
        ("K64 T 2048 rev (token blocks of 512)", 1, 2048, 2, 64, 64, False, 31, False, -0.02, "auto", [2]),
        ("one-token segments rev", 1, 5, 2, 64, 64, False, 31, True, -0.5, "auto", [5]),
        ("auto K128 dq (wide segments)", 1, 512, 2, 128, 128, True, 0, True, -0.3, "auto", ["auto"]),
        ("auto K128 dk rev (two waves with the kernel's states)", 1, 1024, 2, 128, 128, False, 31, True, -0.3, "auto", ["auto"]),
    ]
    for name, B, T, H, K, V, low_a, rev, init, min_ld, wide, segs in cases:
        ld = (torch.rand(B, T, H * K, generator=g) * min_ld).float()
        a = (torch.rand(B, T, H * K, generator=g) * 2 - 1).float()
        a = a.to(torch.bfloat16) if low_a else a
        b = (torch.rand(B, T, H * V, generator=g) * 2 - 1).to(torch.bfloat16)
        c = (torch.rand(B, T, H * V, generator=g) * 2 - 1).to(torch.bfloat16)
        S0 = (torch.rand(B, H * K * V, generator=g) * 2 - 1).float() if init else None
        sc.ROWS_CHUNK_WIDE, sc.ROWS_CHUNK_PIPE = wide, True
        res = {}
        for n in [0] + segs:
            sc.ROWS_CHUNK_SEGMENTS = n
            kc = Kc(kernels, 32)
            out = sc.rows_readout_kernel(None, ld, [(a, b)], [c], S0, B, T, H, K, V, kc=kc, rev=rev)[0]
            res[n] = (out.double(), kc.launches)
            if n:  # the segments' end states on the rowsSegStates stand-in (ROWS_SEG_STATES "cuda"); "torch" leaves it unlaunched
                for way in ("torch", "cuda"):
                    sc.ROWS_SEG_STATES = way
                    kc, ks = Kc(kernels, 32), Ks(ks_kernels)
                    out = sc.rows_readout_kernel(None, ld, [(a, b)], [c], S0, B, T, H, K, V, kc=kc, rev=rev, ks=ks)[0]
                    res["%s:%s" % (n, way)] = (out.double(), kc.launches + ks.launches)
                sc.ROWS_SEG_STATES = seg_default
        sc.ROWS_CHUNK_SEGMENTS = 0
        off = res[0][0]
        r64 = walk(ld.double().reshape(B, T, H, K), a.double().reshape(B, T, H, K), b.double().reshape(B, T, H, V), c.double().reshape(B, T, H, V),
                   S0.double().reshape(B, H, K, V) if init else torch.zeros(B, H, K, V, dtype=torch.float64), B, T, H, K, V, rev).reshape(B, T, H * K)
        scale = off.abs().max().item()
        print(json.dumps({"case": name, "ref": (off - r64).abs().max().item() / scale,
                          "runs": {str(n): {"launches": res[n][1], "err": (res[n][0] - off).abs().max().item() / scale} for n in res}}), flush=True)
    # the terms' running sums (ROWS_TERMS "scan", rows-chunk.ts _ts) with segments: each segment's sums from zero, then carry0
    # and the later segments' totals added; against no segments (one launch from carry0) and a float64 reverse sum
    for name, B, T, H, K, V, init, wide, segs in (("scan wide K128 dk rev", 2, 256, 1, 128, 128, True, "wide", [2, 4, "auto"]),
                                                   ("scan K64 dk rev", 1, 320, 2, 64, 64, False, "auto", [5])):
        ld = (torch.rand(B, T, H * K, generator=g) * -0.3).float()
        a = (torch.rand(B, T, H * K, generator=g) * 2 - 1).float()
        b = (torch.rand(B, T, H * V, generator=g) * 2 - 1).to(torch.bfloat16)
        c = (torch.rand(B, T, H * V, generator=g) * 2 - 1).to(torch.bfloat16)
        S0 = (torch.rand(B, H * K * V, generator=g) * 2 - 1).float() if init else None
        dq = (torch.rand(B, T, H * K, generator=g) * 2 - 1).float()
        kk = (torch.rand(B, T, H * K, generator=g) * 2 - 1).to(torch.bfloat16)
        c0 = (torch.rand(B, H * K, generator=g) * 2 - 1).float()
        sc.ROWS_CHUNK_WIDE, sc.ROWS_CHUNK_PIPE = wide, True
        res = {}
        for n in [0] + segs:
            sc.ROWS_CHUNK_SEGMENTS = n
            kc = Kc(kernels, 32)
            got = sc.rows_readout_kernel(None, ld, [(a, b)], [c], S0, B, T, H, K, V, kc=kc, rev=31, terms=(dq, kk), scan=c0)
            res[n] = (got[1].double(), kc.launches, str(got[0].dtype))
        sc.ROWS_CHUNK_SEGMENTS = 0
        o = walk(ld.double().reshape(B, T, H, K), a.double().reshape(B, T, H, K), b.double().reshape(B, T, H, V), c.double().reshape(B, T, H, V),
                 S0.double().reshape(B, H, K, V) if init else torch.zeros(B, H, K, V, dtype=torch.float64), B, T, H, K, V, 31).reshape(B, T, H * K)
        tm = a.double() * dq.double() - kk.double() * o
        r64 = torch.flip(torch.cumsum(torch.flip(tm, [1]), 1), [1]) + c0.double().reshape(B, 1, H * K)
        off = res[0][0]
        scale = off.abs().max().item()
        print(json.dumps({"case": name, "ref": (off - r64).abs().max().item() / scale,
                          "runs": {str(n): {"launches": res[n][1], "err": (res[n][0] - off).abs().max().item() / scale, "out": res[n][2]} for n in res}}), flush=True)
    picks = {}
    sc.ROWS_CHUNK_WIDE = "auto"
    for key, args, kw in (("1x32768x8x128", (1, 32768, 8, 128, 128, 132), {}), ("1x32768x8x128 wide", (1, 32768, 8, 128, 128, 132), {"mode": "wide"}),
                          ("1x32768x8x128 split", (1, 32768, 8, 128, 128, 132), {"mode": "split"}),
                          ("4x8192x16x128", (4, 8192, 16, 128, 128, 132), {}), ("8x2048x16x64", (8, 2048, 16, 64, 64, 132), {}),
                          ("1x32769x8x128", (1, 32769, 8, 128, 128, 132), {}), ("1x1024x8x128", (1, 1024, 8, 128, 128, 132), {}),
                          ("1x192x8x128", (1, 192, 8, 128, 128, 132), {}),
                          ("2x8192x16x128", (2, 8192, 16, 128, 128, 132), {}), ("3x8192x16x128", (3, 8192, 16, 128, 128, 132), {}),
                          ("1x32768x8x128 one wave", (1, 32768, 8, 128, 128, 132), {"waves": 1}),
                          ("2x8192x16x128 one wave", (2, 8192, 16, 128, 128, 132), {"waves": 1})):
        picks[key] = sc.rows_chunk_segments(*args, n="auto", **kw)
    sc.ROWS_SEG_STATES = "torch"  # (waves None: one wave with the torch ops' states)
    picks["1x32768x8x128 torch states"] = sc.rows_chunk_segments(1, 32768, 8, 128, 128, 132, n="auto")
    sc.ROWS_SEG_STATES = seg_default
    picks["n 3 of T 150"] = sc.rows_chunk_segments(1, 150, 8, 128, 128, 132, n=3)
    picks["n 4 of T 150"] = sc.rows_chunk_segments(1, 150, 8, 128, 128, 132, n=4)
    picks["off"] = sc.rows_chunk_segments(1, 32768, 8, 128, 128, 132, n=0)
    picks["default 1x32768x8x128"] = sc.rows_chunk_segments(1, 32768, 8, 128, 128, 132, n=default)
    picks["default 4x8192x16x128"] = sc.rows_chunk_segments(4, 8192, 16, 128, 128, 132, n=default)
    picks["default 8x2048x16x64"] = sc.rows_chunk_segments(8, 2048, 16, 64, 64, 132, n=default)
    picks["ROWS_SEG_STATES"] = seg_default
    print(json.dumps(picks), flush=True)


main()
