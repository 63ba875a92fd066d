"""Dry run of runtime/torch/seqc_cuda.py's PlanRunner with a fake driver: prints the launches as JSON.

  python3 test/torch/launches.py <runtime dir> <request.json>
request: {plan, dims, B, T, has: [...], init: [...], form, real}
Pointers are fake addresses of named buffers; each launch argument is reported by buffer name.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import seqc_cuda  # noqa: E402

req = json.load(open(sys.argv[2]))
events = []


class FakeDriver:
    def use(self, ordinal):
        pass

    def info(self, ordinal):
        return {"name": "fake", "sm": 90, "multiprocessors": 132, "max_threads": 1024, "smem_optin": 227 * 1024}

    def load_module(self, image):
        return "module"

    def function(self, module, name):
        return name

    def set_max_dynamic_shared(self, fn, n):
        events.append({"kind": "maxShared", "entry": fn, "bytes": n})

    def max_active_blocks(self, fn, threads, shared):
        return 4

    def launch(self, fn, name, grid, block, shared, stream, args, cooperative=False):
        out = []
        for kind, v in args:
            out.append({"ptr": names.get(v, "?")} if kind == "ptr" else {"u32": v} if kind == "u32" else {"struct": list(v)})
        events.append({"kind": "launch", "entry": name, "grid": list(grid), "block": block, "shared": shared, "cooperative": bool(cooperative), "args": out})


names = {}
bufs = {}
for i, key in enumerate(["params", "states", "initialStates"] + ["input:" + t["name"] for t in req["plan"]["tensors"] if t["role"] == "input"] + ["output:" + t["name"] for t in req["plan"]["tensors"] if t["role"] == "output"]):
    bufs[key] = 0x10000 * (i + 1)
    names[bufs[key]] = key
ws = [0]


def alloc(n):
    ws[0] += 1
    p = 0x1000000 * ws[0]
    names[p] = "workspace%d" % ws[0]
    events.append({"kind": "alloc", "bytes": n})
    return p


def zero(p, n):
    events.append({"kind": "zero", "buffer": names[p], "bytes": n})


# the plans come without PTX (no nvcc needed here): a stand-in image for the fake driver
req["plan"]["ptx"] = {"90": "fake"}
for m in (req["plan"].get("modules") or {}).values():
    m["ptx"] = {"90": "fake"}
r = seqc_cuda.PlanRunner(req["plan"], 0, req.get("real", "f32"), drv=FakeDriver())
form, env = r.pick(req["dims"], req["B"], req["T"], req.get("form", "auto"))
offsets, total = {}, 0
for t in req["plan"]["tensors"]:
    if t["role"] == "state":
        offsets[t["name"]] = total
        n = req["B"]
        for s in t["shape"]:
            n *= seqc_cuda.eval_size(s, req["dims"])
        total += n
r.run(form, env, req["B"], req["T"], bufs, set(req["has"]), set(req["init"]), offsets, alloc, zero, 0)
print(json.dumps({"variant": form["variant"], "events": events}))
