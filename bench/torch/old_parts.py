"""The parts of a torch module that the chain's copies and zeros (compiler/backends/torch/chain-copies.ts) changed, taken
from a build before them, so one GPU process can time the module before and after side by side without carrying both
whole (the chunked cores' plans, most of the bytes, are the same in both).

  python3 bench/torch/old_parts.py <old modules dir> <new modules dir> [Model ...]
writes <new dir>/old/<Model>.json: {"chunked": the old names and parts, "plans": the old chain(64):prep / prepBw / postBw};
bench/torch/graph_bench.py merges it into the new <Model>.torch.json on the device (old_model)."""

import json
import os
import sys

old_dir, new_dir = sys.argv[1], sys.argv[2]
models = sys.argv[3:] or [f[: -len(".torch.json")] for f in os.listdir(new_dir) if f.endswith(".torch.json")]
os.makedirs(os.path.join(new_dir, "old"), exist_ok=True)
for m in models:
    old = json.load(open(os.path.join(old_dir, m + ".torch.json")))
    keys = [p + part for p in ("chain:", "chain64:") for part in ("prep", "prepBw", "postBw") if p + part in old["plans"]]
    json.dump({"chunked": old["chunked"], "plans": {k: old["plans"][k] for k in keys}}, open(os.path.join(new_dir, "old", m + ".json"), "w"))
    print(m, keys)
