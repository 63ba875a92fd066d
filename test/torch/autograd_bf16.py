"""Driver for test/torch-bf16.test.ts: seqc's torch autograd path on torch.bfloat16 tensors (CPU torch), every plan
replaced by the test's float64 interpreter over a line protocol, as in autograd_cpu.py. What it checks on the Python
side: which plans run with which element type (SeqcModel.execute's `io`: "bf16" for the forward and the chunked
backward's cores where the plan has a bf16 form that applies, the rest "f32" on float32 tensors), and that gradients
come back in bf16. The plans' form choice is the real one (seqc_cuda.PlanRunner.pick with an H100's limits, no
driver). Each run's inputs are rounded to the element type the kernels would read (bf16 for io "bf16", float32
else) before the interpreter sees them, and outputs come back in it.
argv: <Model>.torch.json. stdin, first line: {"inputs", "params", "initialState", "cotOutputs", "cotFinal", "B",
"T", "dims", "backward", "transposedIo"?, "anchorChunk"?, "lrStateless"?, "deltaKern"?: "standin" (the delta kernels'
stand-in, test/torch/delta_kernels_standin.py, as the module's launcher with bf16 per-token inputs), "deltaGlue"?
(seqc_chunked_lowrank.LR_DELTA_GLUE), "deltaAdjOut"? ("bf16": the stand-in's adjoint gradients in bf16)}. Prints {"done", "runs": [[key, io, variant, input dtypes, outputs' io]],
"deltaCalls", "deltaSeen" (the stand-in's ops and their per-token tensors' dtypes), "chunked", "dtypes", gradients}."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_cuda  # noqa: E402
import seqc_torch  # noqa: E402

H100 = {"name": "H100 (no driver)", "sm": 90, "multiprocessors": 132, "max_threads": 1024, "smem_optin": 232448}


def main():
    case = json.loads(sys.stdin.readline())
    B, T = case["B"], case["T"]
    def check(m, named):  # every tensor bf16 (the real check also wants them on a CUDA device)
        dts = {x.dtype for _, _, x in named if x is not None}
        assert dts == {torch.bfloat16}, dts
        return torch.bfloat16, torch.device("cpu")

    seqc_torch._check_tensors = check
    m = seqc_torch.SeqcModel(sys.argv[1], None, "auto", case["backward"])
    if case.get("transposedIo"):  # seqc_chunked.TRANSPOSED_IO ("mixed" by default, "f32": the old path)
        seqc_torch._chunked.TRANSPOSED_IO = case["transposedIo"]
    if case.get("anchorChunk"):  # seqc_chunked.DECAY_ANCHOR_CHUNK (the decay adjoint's anchors where the transposed cores ran mixed)
        seqc_torch._chunked.DECAY_ANCHOR_CHUNK = case["anchorChunk"]
    if case.get("glue") == "old":  # the glue before seqc_chunked.REVERSE_SUM / REVERSE_GLUE, the stack Gram
        seqc_torch._chunked.REVERSE_SUM, seqc_torch._chunked.REVERSE_GLUE, seqc_torch._chunked.DECAY_ANCHOR_GRAM = "flip", "flip", "stack"
        seqc_torch._chunked.GLUE_COPIES = "old"
    if case.get("glue") == "copies-old":  # only the glue's copies as before seqc_chunked.GLUE_COPIES "lean"
        seqc_torch._chunked.GLUE_COPIES = "old"
    if case.get("glue") == "stateless-f32":  # the stateless parts on float32 copies (seqc_chunked.STATELESS_IO "f32", the old way)
        seqc_torch._chunked.STATELESS_IO = "f32"
    if case.get("lrStateless"):  # seqc_chunked_lowrank.LR_STATELESS ("twins" by default, "f32": the old way)
        seqc_torch._chunked_lowrank.LR_STATELESS = case["lrStateless"]
    if case.get("glue") == "stateless-out-f32":  # the stateless parts' float32 outputs (seqc_chunked.STATELESS_OUT "f32", the old way)
        seqc_torch._chunked.STATELESS_OUT = "f32"
    if case.get("glue") == "alias-f32":  # prep's and post's copies of bf16 tensors in float32 (seqc_chunked.ALIAS_IO "f32")
        seqc_torch._chunked.ALIAS_IO = "f32"
    runners = {}

    def runner(key, device):
        if key not in runners:
            r = seqc_cuda.PlanRunner.__new__(seqc_cuda.PlanRunner)
            r.plan, r.ordinal, r.info, r._picks = m.meta["plans"][key], 0, H100, {}
            r.real = "f64" if key.startswith(("chain64:", "pass64:")) or key in ("record64", "backward64") else "f32"
            r.esize = 8 if r.real == "f64" else 4
            runners[key] = r
        return runners[key]

    m.runner = runner
    runs = []

    def execute(key, dims, b, t, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None, workspaces=None):
        f = runner(key, device).pick(dims, b, t, form, io, out_io)[0]
        variant = f["variant"]
        iodt = torch.bfloat16 if io == "bf16" else dtype
        odt = torch.bfloat16 if (out_io or io) == "bf16" else dtype
        low_out = f.get("bf16Outputs") if (out_io or io) == "bf16" else None  # (seqc_torch.execute: only these in bf16)
        low = f.get("bf16Inputs") if io == "bf16" else None  # a form reading only these inputs in bf16 (seqc_torch.execute)
        # (6th: the inputs that came in bf16, 7th: the form's bf16Inputs or None)
        runs.append([key, io, variant, sorted({str(v.dtype).split(".")[-1] for v in inputs.values() if v is not None}), out_io or io,
                     sorted(k for k, v in inputs.items() if v is not None and v.dtype == torch.bfloat16), low])
        flat = lambda d, dt: {k: v.detach().to(dt).to(torch.float64).reshape(-1).tolist() for k, v in d.items() if v is not None}  # noqa: E731
        ins = {k: v.detach().to(iodt if low is None or k in low else dtype).to(torch.float64).reshape(-1).tolist() for k, v in inputs.items() if v is not None}
        sys.stdout.write(json.dumps({"run": key, "dims": dims, "B": b, "T": t, "inputs": ins, "params": flat(params, dtype), "initial": flat(states, dtype)}) + "\n")
        sys.stdout.flush()
        r = json.loads(sys.stdin.readline())
        # (bf16Outputs: rounded from float32, as the kernels' stores of their float32 values)
        outs = {k: torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"]).to(odt if low_out is None else dtype) for k, v in r["outputs"].items()}
        if low_out is not None:
            outs = {k: v.to(odt) if k in low_out else v for k, v in outs.items()}
        final = {k: torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"]).to(dtype) for k, v in r["final"].items()}
        return outs, final, variant

    m.execute = execute
    # (the execute stand-in above keeps no workspaces: the forward's chunk states for the delta backward, LR_FWD_STATES
    # "on" by default since H200 call F14, are off here; the path with them is torch-delta-fwd-states')
    seqc_torch._chunked_lowrank.LR_FWD_STATES = "off"
    seen, dcalls = [], []
    if case.get("deltaKern") == "standin":  # the delta kernels' stand-in (delta_kernels_standin.py) as the module's launcher,
        # its per-token inputs bf16 (LR_DELTA_TIN "bf16"); LR_DELTA_GLUE from deltaGlue
        from delta_kernels_standin import standin
        lr = seqc_torch._chunked_lowrank
        # (deltaAdjOut "bf16": the adjoint's gradients in bf16, as the kernels' _ob siblings under seqc_delta_bwd.ADJ_OUT)
        ao = torch.bfloat16 if case.get("deltaAdjOut") == "bf16" else None
        lr._delta.delta_launcher = lambda m_, device, way=None, switch=None, tin=None, math=None: standin(dcalls, torch.float32, tin, seen, ao) if tin is not None else None
        lr.LR_DELTA_GLUE = case.get("deltaGlue") or lr.LR_DELTA_GLUE

    def shaped(t, lead, v):
        full = dict(case["dims"], B=B, T=T)
        return torch.tensor(v, dtype=torch.float64).reshape([full[x] for x in lead] + [seqc_cuda.eval_size(s, full) for s in t["shape"]]).to(torch.bfloat16).requires_grad_(True)

    ins = {t["name"]: shaped(t, ["B", "T"], case["inputs"][t["name"]]) for t in m.inputs if t["name"] in case["inputs"]}
    pars = {t["name"]: shaped(t, [], case["params"][t["name"]]) for t in m.params if t["name"] in case["params"]}
    sts = {t["name"]: shaped(t, ["B"], case["initialState"][t["name"]]) for t in m.states if t["name"] in case["initialState"]}
    outs = m.apply(ins, pars, sts)
    chunked = outs[0].grad_fn.chunked
    loss = 0
    for t, o in zip(m.outputs, outs[: len(m.outputs)]):
        loss = loss + (o.double() * torch.tensor(case["cotOutputs"][t["name"]], dtype=torch.float64).reshape(o.shape)).sum()
    for t, o in zip(m.states, outs[len(m.outputs):]):
        if t["name"] in case["cotFinal"]:
            loss = loss + (o.double() * torch.tensor(case["cotFinal"][t["name"]], dtype=torch.float64).reshape(o.shape)).sum()
    loss.backward()
    g = lambda d: {k: v.grad.double().reshape(-1).tolist() for k, v in d.items()}  # noqa: E731
    dts = sorted({str(v.grad.dtype).split(".")[-1] for d in (ins, pars, sts) for v in d.values()} | {str(o.dtype).split(".")[-1] for o in outs})
    sys.stdout.write(json.dumps({"done": True, "runs": runs, "deltaCalls": dcalls, "deltaSeen": seen, "chunked": chunked, "dtypes": dts, "inputs": g(ins), "params": g(pars), "initialState": g(sts)}) + "\n")


main()
