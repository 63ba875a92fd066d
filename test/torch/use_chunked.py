"""test/torch-chunked.test.ts: seqc_chunked.use_chunked, the choice between the step and the chunked backward
(SeqcModel's backward="auto" | "step" | "chunked"), on stand-ins for the model and its forward plan's pick.
Prints one JSON line: {case: chosen}."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked  # noqa: E402


class Runner:
    def __init__(self, form):
        self.form = form

    def pick(self, dims, B, T, choice="auto"):
        return {"form": self.form, "variant": self.form}, {}


class Model:
    def __init__(self, backward, chain, forward_form):
        self.backward, self.chunked, self.forward_form = backward, ({"names": {}} if chain else None), forward_form

    def runner(self, key, device):
        assert key == "forward", key
        return Runner(self.forward_form)


out = {}
for backward in ("auto", "step", "chunked"):
    for chain in (True, False):
        for form in ("chunked", "sequential"):
            for dtype in (torch.float32, torch.float64):
                if backward == "chunked" and not chain:
                    continue  # SeqcModel refuses it at construction
                key = "%s chain=%s forward=%s %s" % (backward, str(chain).lower(), form, str(dtype).split(".")[-1])
                out[key] = seqc_chunked.use_chunked(Model(backward, chain, form), {}, 2, 5, dtype, None)
print(json.dumps(out))
