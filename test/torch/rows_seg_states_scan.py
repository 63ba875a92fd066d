"""Driver for test/cuda-rows-seg-states-emu.test.ts: the start states of the rows chunk kernel's segments both ways
(seqc_chunked.ROWS_SEG_STATES) on CPU torch for the operands the test wrote: "cuda" as the runtime forms them from the
rowsSegStates kernel's E and Q (here the g++ emulation's outputs, read from files) and its scan over segments in torch
(rows_chunk_seg_scan); "torch" as rows_chunk_seg_states forms them in torch ops.
argv: <dir> <nseg> <rev> <B> <T> <H> <K> <V> <init> <lowA>. <dir> holds ld.bin, a.bin, b.bin (float32 raw; a and b values
that bf16 holds exactly where the kernel reads them bf16), S0.bin (float32, with init 1), E.out [B, nseg - 1, H, K, V] and
Q.out [B, nseg - 1, H, K] (float32). Writes st_cuda.bin and st_torch.bin: float32 [B nseg, H*K*V]."""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked as sc  # noqa: E402


def main():
    d = sys.argv[1]
    nseg, rev, B, T, H, K, V, init, low_a = (int(x) for x in sys.argv[2:11])

    def rd(name, ext="bin"):
        return torch.from_numpy(np.fromfile(os.path.join(d, "%s.%s" % (name, ext)), dtype=np.float32).copy())
    ld = rd("ld").reshape(B, T, H * K)
    a = rd("a").reshape(B, T, H * K)
    b = rd("b").reshape(B, T, H * V).to(torch.bfloat16)
    if low_a:
        a = a.to(torch.bfloat16)
    S0 = rd("S0").reshape(B, H * K * V) if init else None
    ns = nseg - 1
    E = rd("E", "out").reshape(B, ns, H, K, V)
    Q = rd("Q", "out").reshape(B, ns, H, K)
    L = T // nseg
    st = sc.rows_chunk_seg_scan(E, Q, ld.reshape(B, nseg, L, H, K), S0, B, H, K, V, nseg, rev)
    assert st.dtype == torch.float32 and tuple(st.shape) == (B * nseg, H * K * V)
    st.contiguous().numpy().tofile(os.path.join(d, "st_cuda.bin"))
    ld0 = ld.clone()
    st = sc.rows_chunk_seg_states(ld, [(a, b)], S0, B, T, H, K, V, nseg, rev)
    assert torch.equal(ld, ld0)
    st.contiguous().numpy().tofile(os.path.join(d, "st_torch.bin"))


main()
