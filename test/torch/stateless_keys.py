"""test/torch-stateless-keys.test.ts (CPU torch, stand-ins): the stateless parts' switches in the captured backward
graphs' keys, and _bars_form following STATELESS_ROWS / STATELESS_VEC.

(1) keys: seqc_chunked's, seqc_chunked_lowrank's and seqc_chunked_stab's backward on a stand-in ctx and model, with
seqc_graphs.graphed replaced by a recorder of the signature key graphed_backward builds; each stateless switch flipped
from its default: whether the key differs (a key without the switch would replay the graph captured with the old picks).
(2) bars: seqc_chunked.stateless_form(..., bars=True) on a stand-in runner whose bf16Bars forms are a plain twin and its
row-major / vector / fused / warp-fused twins (the last fastest): per (STATELESS_ROWS, STATELESS_VEC) the pick, the forms tried and,
after the trial with both on, the pick without a trial (a capture, GRAPH_PICKS "tuned") once a switch is off.
Prints one JSON line."""

import json
import os
import sys
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked  # noqa: E402
import seqc_chunked_lowrank  # noqa: E402
import seqc_chunked_stab  # noqa: E402
import seqc_graphs  # noqa: E402

keys = []


def recorder(m, key, body, args, dtypes, enabled=True, **kw):
    keys.append(key)
    return []


seqc_graphs.graphed = recorder
ctx = types.SimpleNamespace(B=2, T=128, dims={"H": 2, "K": 64, "V": 64}, dtype=torch.float32, given_dtype=torch.bfloat16,
                            need=[True, True], needs_input_grad=[True, True, True], offset=1, device=torch.device("cpu"))
m = types.SimpleNamespace(inputs=[{"name": "q"}, {"name": "k"}], params=[], states=[], graphs=True)
flat = [torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.bfloat16)]
grads = [torch.zeros(2)]
chunk = seqc_chunked


def key_of(mod):
    keys.clear()
    mod.backward(ctx, m, flat, grads)
    assert len(keys) == 1, keys
    return keys[0]


flips = {"STATELESS_ROWS": False, "STATELESS_VEC": False, "STATELESS_WARP": False, "TUNE_STATELESS": False,
         "GRAPH_PICKS": "auto", "STATELESS_WIDE": False, "ZERO_STORES": "write", "RUN_COPIES": "run"}
out = {}
for name, mod in (("chunked", seqc_chunked), ("lowrank", seqc_chunked_lowrank), ("stab", seqc_chunked_stab)):
    base = key_of(mod)
    got = {}
    for sw, val in flips.items():
        old = getattr(chunk, sw)
        setattr(chunk, sw, val)
        try:
            got[sw] = key_of(mod) != base
        finally:
            setattr(chunk, sw, old)
        got[sw] = got[sw] and key_of(mod) == base  # (and back as it was with the switch restored)
    out[name] = got


class Runner:
    """A PlanRunner stand-in: the applicable forms, _picks (stateless_form's cache), plan's model."""

    def __init__(self, variants):
        self.forms = [{"variant": v, "bf16Bars": ["k__bar", "q__bar"]} for v in variants]
        self._picks = {}
        self.plan = {"model": "stand-in"}

    def applicable(self, dims, B, T, form="auto", io="f32", out_io=None):
        return [(f, {}) for f in self.forms]


names = ["global-bf16bar", "global-bf16bar-rm4", "global-bf16bar-rv4", "global-bf16bar-rf4", "global-bf16bar-rw4"]
bars = {}
for rows, vec in ((True, True), (True, False), (False, True), (False, False)):
    chunk.STATELESS_ROWS, chunk.STATELESS_VEC = rows, vec
    r = Runner(names)
    tried = []

    def trial(v):
        tried.append(v)
        return 10.0 - names.index(v)
    pick = chunk.stateless_form(r, {"H": 2}, 256, 1, trial, io="bf16", out_io="f32", bars=True)
    bars["%s %s" % (rows, vec)] = [pick, tried]
# a capture after the trial with both on: the trial's pick only while the switches are as they were
r = Runner(names)
chunk.STATELESS_ROWS, chunk.STATELESS_VEC = True, True
chunk.stateless_form(r, {"H": 2}, 256, 1, lambda v: 10.0 - names.index(v), io="bf16", out_io="f32", bars=True)
capture = {}
for rows, vec in ((True, True), (True, False), (False, True)):
    chunk.STATELESS_ROWS, chunk.STATELESS_VEC = rows, vec
    capture["%s %s" % (rows, vec)] = chunk.stateless_form(r, {"H": 2}, 256, 1, None, io="bf16", out_io="f32", bars=True)
out["bars"] = bars
out["capture"] = capture
print(json.dumps(out))
