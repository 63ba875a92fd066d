"""Driver for test/torch-rows-scan.test.ts's launch case: seqc_chunked.rows_readout_kernel's launches of the rows chunk
kernel's terms entries (rows-chunk.ts _t / _ts) with the module's kernel records from stdin (JSON list), recorded by
test/torch/fake_kernels.py on CPU tensors: GLA's dk at (4, 256, 16, 128), rev 31, terms (dq, k), without scan, scan=True
(carry0 null) and scan=a_T (carry0 a pointer, the entry's last argument); with segments ((1, 1024, 8, 128): 8 on 132 SMs
with the torch states) carry0 null (added after, with the later segments' totals). Prints one JSON object: case -> [[entry, grid, args], ...] or null."""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import torch  # noqa: E402
import fake_kernels as F  # noqa: E402
import seqc_chunked as sc  # noqa: E402

kc = F.KM(json.load(sys.stdin))
kc.info = {"multiprocessors": 132}
out = {}


def case(name, B, T, H, K, V, **kw):
    F.calls.clear()
    ld, a = torch.zeros(B, T, H * K), torch.zeros(B, T, H * K)
    b, c = torch.zeros(B, T, H * V, dtype=torch.bfloat16), torch.zeros(B, T, H * V, dtype=torch.bfloat16)
    dq, k = torch.zeros(B, T, H * K), torch.zeros(B, T, H * K, dtype=torch.bfloat16)
    r = sc.rows_readout_kernel(F.KM([]), ld, [(a, b)], [c], torch.zeros(B, H * K * V), B, T, H, K, V, kc=kc, rev=31, terms=(dq, k), **kw)
    out[name] = None if r is None else {"dtypes": [str(x.dtype) for x in r], "calls": list(F.calls)}


sc.ROWS_SEG_STATES = "torch"
case("terms", 4, 256, 16, 128, 128)
case("scan, no carry0", 4, 256, 16, 128, 128, scan=True)
case("scan, carry0", 4, 256, 16, 128, 128, scan=torch.zeros(4, 16 * 128))
case("scan K 64", 8, 256, 16, 64, 64, scan=torch.zeros(8, 16 * 64))
case("scan with segments", 1, 1024, 8, 128, 128, scan=torch.zeros(1, 8 * 128))
print(json.dumps(out))
