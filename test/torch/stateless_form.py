"""test/torch-chunked.test.ts: seqc_chunked.stateless_form, the form of a stateless chain part run over [B*T, 1], on
the module's real plans (a PlanRunner on a stand-in driver: an H100's 132 SMs).
  python3 test/torch/stateless_form.py <request.json>: {plans: {key: plan}, dims, sizes: [B...]}
Prints one JSON line: {"<key> B=<B>": form}."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake"))
import seqc_chunked  # noqa: E402
import seqc_cuda  # noqa: E402


class Driver:
    def use(self, ordinal):
        pass

    def info(self, ordinal):
        return {"name": "stand-in", "sm": 90, "multiprocessors": 132, "max_threads": 1024, "smem_optin": 227 * 1024}


req = json.load(open(sys.argv[1]))
out = {}
for key, plan in req["plans"].items():
    r = seqc_cuda.PlanRunner(plan, 0, "f32", drv=Driver())
    for B in req["sizes"]:
        out["%s B=%d" % (key, B)] = seqc_chunked.stateless_form(r, req["dims"], B, 1)
# with a trial run at hand: every applicable form timed once per (dims, B, T), the fastest kept (stand-in times: the
# variant's position in the plan, reversed, so the last applicable form is the fastest)
for key, plan in req["plans"].items():
    r = seqc_cuda.PlanRunner(plan, 0, "f32", drv=Driver())
    names = [f["variant"] for f, _ in r.applicable(req["dims"], req["sizes"][0], 1)]
    tried = []

    def trial(v):
        tried.append(v)
        if v == "global":
            raise seqc_cuda.CudaError("stand-in: this form fails to launch")
        return 10.0 - names.index(v)
    first = seqc_chunked.stateless_form(r, req["dims"], req["sizes"][0], 1, trial)
    again = seqc_chunked.stateless_form(r, req["dims"], req["sizes"][0], 1, trial)
    out["%s tuned" % key] = [first, again, tried]
# the bf16-input twins (io "bf16", out "f32"; trial as above): the row-major twins ("-rm<M>", stateless-rows.ts) tried
# only with STATELESS_ROWS, their vector twins ("-rv<M>", "-rf<M>": stateless-vec.ts) only with STATELESS_ROWS and STATELESS_VEC;
# without a trial run (a graph's capture) GRAPH_PICKS "tuned" takes the trial's pick for the same key, "auto" the plan's.
# Per (STATELESS_ROWS, STATELESS_VEC) (False, True) / (True, False) / (True, True): [pick, rm forms tried, tuned, auto,
# rv forms tried]
for key, plan in req["plans"].items():
    got = []
    for rows, vec in ((False, True), (True, False), (True, True)):
        seqc_chunked.STATELESS_ROWS = rows
        seqc_chunked.STATELESS_VEC = vec
        r = seqc_cuda.PlanRunner(plan, 0, "f32", drv=Driver())
        names = [f["variant"] for f, _ in r.applicable(req["dims"], req["sizes"][0], 1, "auto", "bf16", "f32")]
        tried = []

        def trial(v):
            tried.append(v)
            return 10.0 - names.index(v)
        pick = seqc_chunked.stateless_form(r, req["dims"], req["sizes"][0], 1, trial, io="bf16", out_io="f32")
        graph = []
        for g in ("tuned", "auto"):
            seqc_chunked.GRAPH_PICKS = g
            graph.append(seqc_chunked.stateless_form(r, req["dims"], req["sizes"][0], 1, None, io="bf16", out_io="f32"))
        got.append([pick, sum("-rm" in v for v in tried)] + graph + [sum("-rv" in v or "-rf" in v for v in tried)])
    out["%s bf16" % key] = got
print(json.dumps(out))
