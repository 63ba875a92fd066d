"""Driver for test/cuda-rows-chunk-seg-emu.test.ts: seqc_chunked.rows_chunk_seg_states (the start states of the rows chunk
kernel's segments, ROWS_CHUNK_SEGMENTS) on CPU torch for the operands the test wrote, so that the test runs the g++
emulation of the kernel on the segments as batches from these states.
argv: <dir> <nseg> <rev> <B> <T> <H> <K> <V> <init> <lowA> [broken]. <dir> holds ld.bin, a.bin, b.bin (float32 raw; a and b
values that bf16 holds exactly where the kernel reads them bf16) and S0.bin (float32, with init 1). Writes st.bin: float32
[B nseg, H*K*V]. broken: "incl" the forward weights exp(sum ld[o .. end]) (the token's own decay counted), "enter" the
reversed walk without the decay entering a segment (ld[(j + 1) L]), "order" the states of each batch in reversed segment
order."""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked as sc  # noqa: E402


def main():
    d = sys.argv[1]
    nseg, rev, B, T, H, K, V, init, low_a = (int(x) for x in sys.argv[2:11])
    broken = sys.argv[11] if len(sys.argv) > 11 else None

    def rd(name):
        return torch.from_numpy(np.fromfile(os.path.join(d, name + ".bin"), dtype=np.float32).copy())
    ld = rd("ld").reshape(B, T, H * K)
    a = rd("a").reshape(B, T, H * K)
    b = rd("b").reshape(B, T, H * V).to(torch.bfloat16)
    if low_a:
        a = a.to(torch.bfloat16)
    S0 = rd("S0").reshape(B, H * K * V) if init else None
    if broken == "incl":  # the forward's weights with the token's own decay: a * exp(ld) is what the broken copy weighs
        a = (a.float() * torch.exp(ld)).to(a.dtype) if not rev else a
        st = sc.rows_chunk_seg_states(ld, [(a, b)], S0, B, T, H, K, V, nseg, rev)
    elif broken == "enter":  # the reversed walk: ld[jL] (the decay into segment j - 1) taken as 0
        ld2 = ld.reshape(B, nseg, T // nseg, H * K).clone()
        ld2[:, 1:, 0] = 0
        st = sc.rows_chunk_seg_states(ld2.reshape(B, T, H * K), [(a, b)], S0, B, T, H, K, V, nseg, rev)
    else:
        st = sc.rows_chunk_seg_states(ld, [(a, b)], S0, B, T, H, K, V, nseg, rev)
    if broken == "order":
        st = st.reshape(B, nseg, -1).flip(1).reshape(B * nseg, -1)
    assert st.dtype == torch.float32 and tuple(st.shape) == (B * nseg, H * K * V)
    st.contiguous().numpy().tofile(os.path.join(d, "st.bin"))


main()
