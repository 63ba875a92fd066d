"""Driver for test/torch-rows-chunk-pick.test.ts: seqc_chunked.rows_chunk_pick (which rows-chunk.ts entry a per-key decay's
transposed core takes: ROWS_FORM, ROWS_CHUNK_WARPS, ROWS_CHUNK_PIPE, ROWS_CHUNK_WIDE) over the module's kernels as given on stdin (JSON
list), on the numpy stand-in for torch. Prints one JSON object: case name -> the entry picked (or null)."""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "fake"))
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import seqc_chunked as sc  # noqa: E402


class Km:
    def __init__(self, kernels):
        self.kernels = kernels


km = Km(json.load(sys.stdin))
out = {}


def case(name, low, np_=1, nr=1, K=64, V=64, segment=None, form="chunk", warps=8, pipe=False, wide=False, **kw):
    sc.ROWS_FORM, sc.ROWS_CHUNK_WARPS, sc.ROWS_CHUNK_PIPE, sc.ROWS_CHUNK_WIDE = form, warps, pipe, wide
    k = sc.rows_chunk_pick(km, low, np_, nr, K, V, segment, **kw)
    out[name] = k["entry"] if k else None


case("abc", "abc")
case("bc", "bc")
case("w4 bc", "bc", warps=4)
case("f32 operands", None)
case("walk", "abc", form="walk")
case("two pairs", "abc", np_=2)
case("K 128", "abc", K=128)
case("K 16 V 7", "bc", K=16, V=7)
case("pipe abc", "abc", pipe=True)
case("pipe bc", "bc", pipe=True)
case("pipe K 16", "bc", K=16, pipe=True)
sc.ROWS_CHUNK_PIPE = True
out["pipe, argument False"] = sc.rows_chunk_pick(km, "bc", 1, 1, 64, 64, None, pipe=False)["entry"]
case("pipe w4 (no such entry)", "bc", warps=4, pipe=True)
case("segments", "abc", segment=256)
case("wide K 128 abc", "abc", K=128, V=128, wide=True)
case("wide pipe K 128 abc", "abc", K=128, V=128, wide=True, pipe=True)
case("wide pipe K 128 bc terms", "bc", K=128, V=128, wide=True, pipe=True, terms=True)
case("wide K 128 bc terms", "bc", K=128, V=128, wide=True, terms=True)
case("wide pipe K 100 V 72", "bc", K=100, V=72, wide=True, pipe=True)
case("wide pipe K 128 V 64", "bc", K=128, V=64, wide=True, pipe=True)
case("wide pipe K 64 V 64 (the 64 entries)", "abc", wide=True, pipe=True)
case("wide K 256", "abc", K=256, V=128, wide=True)
case("wide w4 K 128 (no such entry)", "abc", K=128, V=128, wide=True, warps=4)
case("wide off K 128 pipe", "abc", K=128, V=128, pipe=True)
case("split K 128 abc", "abc", K=128, V=128, wide="split")
case("split pipe K 128 bc", "bc", K=128, V=128, wide="split", pipe=True)
case("split pipe K 128 V 64", "bc", K=128, V=64, wide="split", pipe=True)
case("split pipe K 100 V 72", "bc", K=100, V=72, wide="split", pipe=True)
case("split pipe K 128 bc terms (none: the terms apart)", "bc", K=128, V=128, wide="split", pipe=True, terms=True)
case("split pipe K 64 V 64 (the 64 entries)", "bc", wide="split", pipe=True)
case("w16 pipe bc terms", "bc", warps=16, pipe=True, terms=True)
case("w16 pipe abc", "abc", warps=16, pipe=True)
case("w16 pipe K 16 V 7", "bc", K=16, V=7, warps=16, pipe=True)
case("w16 bc terms (no such entry: 8 warps)", "bc", warps=16, terms=True)
case("w16 wide pipe K 128 bc terms", "bc", K=128, V=128, wide=True, pipe=True, terms=True, warps=16)
case("w16 wide pipe K 128 abc", "abc", K=128, V=128, wide=True, pipe=True, warps=16)
case("w16 wide pipe K 100 V 72", "bc", K=100, V=72, wide=True, pipe=True, warps=16)
case("w16 split pipe K 128 bc (no such entry: 8 warps)", "bc", K=128, V=128, wide="split", pipe=True, warps=16)
sc.ROWS_CHUNK_WARPS = 8
case("scan pipe bc terms", "bc", pipe=True, terms=True, scan=True)
case("scan bc terms", "bc", terms=True, scan=True)
case("scan wide pipe K 128 bc terms", "bc", K=128, V=128, wide=True, pipe=True, terms=True, scan=True)
case("scan wide K 128 bc terms (no such entry)", "bc", K=128, V=128, wide=True, terms=True, scan=True)
case("scan without terms", "bc", pipe=True, scan=True)
sc.ROWS_CHUNK_WIDE = "auto"
for B, H in ((1, 8), (4, 16), (2, 16)):
    out["auto mode B %d H %d K 128, 132 SMs" % (B, H)] = sc.rows_chunk_mode(B, H, 128, 128, 132)
out["auto mode, argument wide"] = sc.rows_chunk_mode(1, 8, 128, 128, 132, "wide")
sc.ROWS_CHUNK_WIDE = False
out["wide off, argument True"] = sc.rows_chunk_pick(km, "abc", 1, 1, 128, 128, None, pipe=False, wide=True)["entry"]
print(json.dumps(out))
