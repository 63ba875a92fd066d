"""seqc models as torch autograd functions (part of seqc's torch target; copied next to the generated modules).

A generated module (`seqc compile model.seq --target torch`) holds a <Model>.torch.json with the
CUDA plans of one model, all compiled by seqc's CUDA backend:
  forward     the model's forward kernels in float32 (every form: sequential, scan, chunked, ...);
  record      the forward of the model with one extra output per state: its value before each step;
  backward    the backward model (compiler/grad/backward.ts): the adjoint recurrence over reversed time,
              recomputing each step from the saved previous state; it carries the state adjoints only;
  pass:<param>  per param its adjoint (compiler/grad/split.ts): a sum over the steps of what the backward
              wrote, run after it with time folded into the batch (pass_fold), partial sums added here;
  pass:<input>  per input whose adjoint is a contraction with a param (x_bar = W_ih^T pre_bar), that adjoint:
              a model without state run after the backward over every step at once (a matrix product);
  record64, backward64, pass64:<param>   the same in float64 (backend-neutral sequential kernels rendered
              in double), so torch.autograd.gradcheck can run;
  chain:<part>, chain64:<part>   where the model has a chunked backward (matrix-state models without
              low-rank terms: compiler/grad/chunked-chain.ts), the chain's models (prep, the four core
              models with their chunked forms, the log-decay scan, prep's and post's backward), run by
              seqc_chunked.py with torch ops as the glue (a stabilised form or value columns, mLSTM: also the
              stabiliser's prep and its backward, run by seqc_chunked_stab.py; low-rank cores:
              seqc_chunked_lowrank.py).
Which backward (SeqcModel's `backward`): "step" runs `record` and keeps every state before every step
([B, T, *state] per state); the backward reads them reversed and recomputes only the step itself
(B*T*|state| floats per state, no chunk checkpointing). "chunked" runs the plain forward and keeps only
the inputs and initial states; the backward recomputes the chain from them. "auto" (default): chunked
where the module has the chain and the float32 forward itself picks its chunked form for (B, T), else step.

Tensors are used in place (their data_ptr) when contiguous and of the right dtype, on torch's current
stream; dims, B and T come from the shapes. Errors name the tensor and the expected shape.
"""

import json
import os

import torch

try:
    from . import seqc_cuda as _cuda
    from . import seqc_chunked as _chunked
    from . import seqc_graphs as _graphs
    from . import seqc_chunked_lowrank as _chunked_lowrank
    from . import seqc_chunked_stab as _chunked_stab
except ImportError:  # loaded as a top-level module (the output directory on sys.path)
    import seqc_cuda as _cuda
    import seqc_chunked as _chunked
    import seqc_graphs as _graphs
    import seqc_chunked_lowrank as _chunked_lowrank
    import seqc_chunked_stab as _chunked_stab


# Element types of the CUDA forms' inputs and outputs other than f32 (runtime/cuda/plan.ts CudaFormPlan.io).
_IO_DTYPES = {"bf16": torch.bfloat16}

# How a pass the module marks `matmul` (compiler/backends/torch/pass-matmul.ts: dW = A^T X, dx = A P) runs:
# "torch" (default) one torch matrix product over all B*T steps (cuBLAS; TF32 only where the caller allows it in
# torch.backends.cuda.matmul); "torch-rows" the weight passes as one batched product per batch row (depth T each)
# and their sum; "kernel" its CUDA pass plan (the weight passes with time folded into the batch and the partial
# sums added here: the way before).
PASS_MATMUL = "torch"


def _shape_text(axes):
    return "[" + ", ".join(str(a) for a in axes) + "]"


class SeqcModel:
    """One compiled model: tensor specs, dims, and its plans (loaded per device on first use)."""

    def __init__(self, path, dims=None, form="auto", backward="auto"):
        with open(path) as f:
            self.meta = json.load(f)
        self.name = self.meta["model"]
        self.dims = dict(dims or {})
        self.form = form
        if backward not in ("auto", "step", "chunked"):
            raise ValueError("%s: backward must be 'auto', 'step' or 'chunked', got %r" % (self.name, backward))
        ch = self.meta.get("chunked") or {"unavailable": "the module was compiled without the chunked backward"}
        if backward == "chunked" and "unavailable" in ch:
            raise ValueError("%s has no chunked backward: %s" % (self.name, ch["unavailable"]))
        self.backward = backward
        # CUDA graphs (seqc_graphs.py): the plain forward and the chunked backward captured per signature, replayed after
        self.graphs = True
        self.chunked = None if "unavailable" in ch else ch
        known = {d["name"] for d in self.meta["dims"]}
        for k in self.dims:
            if k not in known:
                raise ValueError("%s has no dim '%s' (dims: %s)" % (self.name, k, ", ".join(sorted(known)) or "none"))
        self.tensors = self.meta["tensors"]
        self.inputs = [t for t in self.tensors if t["role"] == "input"]
        self.params = [t for t in self.tensors if t["role"] == "param"]
        self.states = [t for t in self.tensors if t["role"] == "state"]
        self.outputs = [t for t in self.tensors if t["role"] == "output"]
        self._runners = {}

    # ---- shapes --------------------------------------------------------------------------

    def resolve(self, inputs, params, states):
        """dims (with B, T) from the given tensors; raises ValueError naming the tensor and expected shape."""
        val, src = {}, {}
        for d in self.meta["dims"]:
            if "fixed" in d:
                val[d["name"]], src[d["name"]] = d["fixed"], "the model"
        for k, v in self.dims.items():
            if k in val and val[k] != v:
                raise ValueError("%s: dim %s is fixed to %d by the model, got %d in dims=" % (self.name, k, val[k], v))
            val[k], src[k] = v, "dims="
        first = next((t for t in self.inputs if inputs.get(t["name"]) is not None), None)
        if first is None:
            raise ValueError("%s needs its inputs (%s)" % (self.name, ", ".join(t["name"] for t in self.inputs)))
        x = inputs[first["name"]]
        if x.dim() != 2 + len(first["shape"]):
            raise ValueError("%s: input '%s' has shape %s; expected [B, T, %s]" % (self.name, first["name"], tuple(x.shape), ", ".join(str(a) for a in first["axes"])))
        B, T = int(x.shape[0]), int(x.shape[1])
        val["B"], src["B"], val["T"], src["T"] = B, "input '%s'" % first["name"], T, "input '%s'" % first["name"]
        for d in self.meta["dims"]:
            if d.get("sequenceDefault") and d["name"] not in val:
                val[d["name"]], src[d["name"]] = T, "T"
        given = [("input", t, inputs.get(t["name"]), ["B", "T"]) for t in self.inputs]
        given += [("param", t, params.get(t["name"]), []) for t in self.params]
        given += [("initial state", t, states.get(t["name"]), ["B"]) for t in self.states]
        given = [g for g in given if g[2] is not None]

        def expected(lead, t):
            names = lead + list(t["axes"])
            known = ["%s=%d" % (n, val[n]) for n in names if isinstance(n, str) and n in val]
            return "%s%s" % (_shape_text(names), (" with " + ", ".join(known)) if known else "")

        for what, t, x, lead in given:
            if not isinstance(x, torch.Tensor):
                raise TypeError("%s: %s '%s' must be a torch.Tensor, got %s" % (self.name, what, t["name"], type(x).__name__))
            want = lead + list(t["shape"])
            if x.dim() != len(want):
                raise ValueError("%s: %s '%s' has shape %s; expected %s" % (self.name, what, t["name"], tuple(x.shape), expected(lead, t)))
            for axis, (w, n) in enumerate(zip(want, x.shape)):
                n = int(n)
                if isinstance(w, str) and w not in val:
                    val[w], src[w] = n, "%s '%s'" % (what, t["name"])
                    continue
                try:
                    e = _cuda.eval_size(w, val)
                except KeyError:
                    continue  # an expression of a dim not known yet: checked below
                if e != n:
                    name = w if isinstance(w, str) else "axis %d" % axis
                    raise ValueError("%s: %s '%s' has shape %s; expected %s (%s = %d from %s)" % (self.name, what, t["name"], tuple(x.shape), expected(lead, t), name, e, src.get(w, "the model") if isinstance(w, str) else "the model"))
        missing = [d["name"] for d in self.meta["dims"] if d["name"] not in val]
        if missing:
            raise ValueError("%s: dim %s is not determined by the given tensors: pass dims={%s}" % (self.name, ", ".join(missing), ", ".join("'%s': ..." % m for m in missing)))
        for what, t, x, lead in given:
            want = [val[w] if w in ("B", "T") else _cuda.eval_size(w, val) for w in lead + list(t["shape"])]
            if list(x.shape) != want:
                raise ValueError("%s: %s '%s' has shape %s; expected %s" % (self.name, what, t["name"], tuple(x.shape), expected(lead, t)))
        for k, v in self.meta.get("bakedDims", {}).items():
            if val.get(k) != v:
                raise ValueError("%s: this module was compiled with %s=%d (its backward unrolls a loop over %s); got %s=%s: recompile with --dims %s=%s" % (self.name, k, v, k, k, val.get(k), k, val.get(k)))
        dims = {d["name"]: val[d["name"]] for d in self.meta["dims"]}
        for d, v in dims.items():
            if v <= 0:
                raise ValueError("%s: dim %s must be positive, got %d" % (self.name, d, v))
        return dims, B, T

    def size(self, t, dims):
        n = 1
        for s in t["shape"]:
            n *= _cuda.eval_size(s, dims)
        return n

    # ---- running one plan ------------------------------------------------------------------

    def runner(self, key, device):
        k = (key, device.index)
        if k not in self._runners:
            real = "f64" if key in ("record64", "backward64") or key.startswith(("pass64:", "chain64:")) else "f32"
            self._runners[k] = _cuda.PlanRunner(self.meta["plans"][key], device.index, real)
        return self._runners[k]

    def execute(self, key, dims, B, T, inputs, params, states, dtype, device, form="auto", io="f32", out_io=None, workspaces=None):
        """Run plan `key` with inputs {name: [B, T, ...]}, params {name: [...]}, initial states {name: [B, ...]}.

        io "bf16": among the plan's bf16 forms (the chunked form's tensor-core variants), inputs and outputs
        torch.bfloat16, params and states `dtype` (float32); out_io "f32" with io "bf16": the mixed-I/O forms (bf16
        inputs, outputs `dtype`: runtime/cuda/plan.ts CudaFormPlan.out; None: outputs of `io`); a form with `bf16Inputs`
        reads only those inputs in bf16, the others in `dtype` (CudaFormPlan.bf16Inputs); likewise a form with `bf16Outputs`
        (out_io "bf16") writes only those outputs in bf16 (CudaFormPlan.bf16Outputs). Returns (outputs {name: [B, T, ...]}, final states
        {name: [B, ...]}, variant). workspaces: a dict, given, gets the form's workspaces {name: uint8 tensor}."""
        plan = self.meta["plans"][key]
        specs = plan["tensors"]
        r = self.runner(key, device)
        form_plan, env = r.pick(dims, B, T, form, io, out_io)
        iodt = _IO_DTYPES[io] if io != "f32" else dtype
        oio = out_io or io
        low_in = form_plan.get("bf16Inputs") if io != "f32" else None
        odt = _IO_DTYPES[oio] if oio != "f32" else dtype
        low_out = form_plan.get("bf16Outputs") if oio != "f32" else None  # (those in odt, the rest in `dtype`)

        def size(t):
            n = 1
            for s in t["shape"]:
                n *= _cuda.eval_size(s, dims)
            return n

        keep = []
        bufs, has = {}, set()
        dummy = torch.zeros(4, dtype=dtype, device=device)
        for t in (x for x in specs if x["role"] == "input"):
            v = inputs.get(t["name"])
            if v is None:
                if not t.get("optional"):
                    raise ValueError("%s needs input '%s' of shape [B, T, %s]" % (plan["model"], t["name"], ", ".join(str(a) for a in t["axes"])))
                bufs["input:" + t["name"]] = dummy.data_ptr()
                continue
            # a form with bf16Inputs (the chain's stateless parts) reads those in bf16 and every other input in `dtype`
            v = v.detach().to(iodt if low_in is None or t["name"] in low_in else dtype).contiguous()
            if v.data_ptr() % 16:  # a view at an odd offset: some kernels copy inputs with 16-byte cp.async
                v = v.clone()
            keep.append(v)
            bufs["input:" + t["name"]] = v.data_ptr()
            has.add(t["name"])
        parts = []
        for t in (x for x in specs if x["role"] == "param"):
            v = params.get(t["name"])
            if v is None:
                if not t.get("optional"):
                    raise ValueError("%s needs param '%s' of shape %s" % (plan["model"], t["name"], _shape_text(t["axes"])))
                parts.append(torch.zeros(size(t), dtype=dtype, device=device))
            else:
                parts.append(v.detach().to(dtype).reshape(-1))
                has.add(t["name"])
        packed = torch.cat(parts) if parts else dummy
        bufs["params"] = packed.data_ptr()
        offsets, sparts, init, total = {}, [], set(), 0
        for t in (x for x in specs if x["role"] == "state"):
            offsets[t["name"]] = total
            n = B * size(t)
            total += n
            v = states.get(t["name"])
            if v is not None:
                sparts.append(v.detach().to(dtype).reshape(-1))
                init.add(t["name"])
            else:
                sparts.append(torch.zeros(n, dtype=dtype, device=device))
        ibuf = torch.cat(sparts) if sparts else dummy.clone()
        sbuf = ibuf.clone()  # states written; the initial values stay apart in ibuf (read-only)
        keep.append(ibuf)
        bufs["initialStates"] = ibuf.data_ptr()
        bufs["states"] = sbuf.data_ptr()
        outs = {}
        for t in (x for x in specs if x["role"] == "output"):
            o = torch.empty([B, T] + [_cuda.eval_size(s, dims) for s in t["shape"]], dtype=odt if low_out is None or t["name"] in low_out else dtype, device=device)
            outs[t["name"]] = o
            bufs["output:" + t["name"]] = o.data_ptr()

        def alloc(n):
            w = torch.empty(n, dtype=torch.uint8, device=device)
            keep.append(w)
            if workspaces is not None:  # (run allocates them in the form's order)
                workspaces[form_plan["workspaces"][len(workspaces)]["name"]] = w
            return w.data_ptr()

        def zero(p, n):
            for w in keep:
                if w.dtype == torch.uint8 and w.data_ptr() == p:
                    w.zero_()
                    return
            raise _cuda.CudaError("zero: unknown workspace")

        stream = torch.cuda.current_stream(device).cuda_stream
        with torch.cuda.device(device):
            r.run(form_plan, env, B, T, bufs, has, init, offsets, alloc, zero, stream)
        final = {}
        for t in (x for x in specs if x["role"] == "state"):
            o = offsets[t["name"]]
            final[t["name"]] = sbuf[o : o + B * size(t)].view([B] + [_cuda.eval_size(s, dims) for s in t["shape"]])
        return outs, final, form_plan["variant"]

    # ---- the autograd entry ------------------------------------------------------------------

    def apply(self, inputs, params, states, form=None):
        """Outputs (model order) and final states (model order) as one tuple, differentiable."""
        flat = [inputs.get(t["name"]) for t in self.inputs] + [params.get(t["name"]) for t in self.params] + [states.get(t["name"]) for t in self.states]
        for k in inputs:
            if k not in {t["name"] for t in self.inputs}:
                raise ValueError("%s has no input '%s' (inputs: %s)" % (self.name, k, ", ".join(t["name"] for t in self.inputs)))
        for k in params:
            if k not in {t["name"] for t in self.params}:
                raise ValueError("%s has no param '%s' (params: %s)" % (self.name, k, ", ".join(t["name"] for t in self.params) or "none"))
        for k in states:
            if k not in {t["name"] for t in self.states}:
                raise ValueError("%s has no state '%s' (states: %s)" % (self.name, k, ", ".join(t["name"] for t in self.states)))
        return SeqcFunction.apply(_Call(self, form or self.form), *flat)


class _Call:
    def __init__(self, model, form):
        self.model, self.form = model, form


def _check_tensors(m, named):
    """The dtype and device of the tensors: one dtype, except that with bf16 inputs params and initial states may be
    float32 (the bf16 kernels keep both in fp32; their gradients come back in float32)."""
    dtype, device = None, None
    named = sorted(named, key=lambda n: n[0] != "input")  # inputs first: they set the dtype
    for what, name, x in named:
        if x is None:
            continue
        if x.dtype not in (torch.float32, torch.float64, torch.bfloat16):
            raise TypeError("%s: %s '%s' is %s; the seqc CUDA kernels take torch.float32, torch.bfloat16 (the chunked form's tensor-core kernels, fp32 accumulation; elsewhere fp32 kernels) or torch.float64 (sequential kernels, for gradcheck)" % (m.name, what, name, x.dtype))
        if not x.is_cuda:
            raise ValueError("%s: %s '%s' is on %s; the seqc kernels run on CUDA devices" % (m.name, what, name, x.device))
        if dtype is None:
            dtype, device, first = x.dtype, x.device, name
        elif x.dtype != dtype and not (what != "input" and dtype == torch.bfloat16 and x.dtype == torch.float32):  # bf16 inputs, fp32 params / states
            raise TypeError("%s: %s '%s' is %s but '%s' is %s: pass one dtype" % (m.name, what, name, x.dtype, first, dtype))
        elif x.device != device:
            raise ValueError("%s: %s '%s' is on %s but '%s' is on %s" % (m.name, what, name, x.device, first, device))
    return dtype, device


def _flip(x):
    return torch.flip(x, [1]).contiguous()


def forward(ctx, m, form, flat, offset=0):
    """The body of a seqc torch.autograd.Function's forward: flat = (*inputs, *params, *initial states), None where absent.

    `offset`: arguments of the Function before `flat` (ctx.needs_input_grad[offset + i] is flat[i]'s;
    a generated Function called with fewer arguments than it declares has no entry for the rest)."""
    ni, npar = len(m.inputs), len(m.params)
    if len(flat) != ni + npar + len(m.states):
        raise TypeError("%s takes %d tensors (inputs %s, params %s, initial states %s), got %d" % (m.name, ni + npar + len(m.states), [t["name"] for t in m.inputs], [t["name"] for t in m.params], [t["name"] for t in m.states], len(flat)))
    ins = {t["name"]: x for t, x in zip(m.inputs, flat[:ni]) if x is not None}
    pars = {t["name"]: x for t, x in zip(m.params, flat[ni : ni + npar]) if x is not None}
    sts = {t["name"]: x for t, x in zip(m.states, flat[ni + npar :]) if x is not None}
    named = [("input", k, v) for k, v in ins.items()] + [("param", k, v) for k, v in pars.items()] + [("initial state", k, v) for k, v in sts.items()]
    given_dtype, device = _check_tensors(m, named)
    # bf16 tensors: the forward and the chunked backward's cores run the chunked form's bf16 kernels where they
    # apply (fp32 accumulation), everything else (glue, decay sums, other forms) in float32; results in bf16
    dtype = torch.float32 if given_dtype == torch.bfloat16 else given_dtype
    dims, B, T = m.resolve(ins, pars, sts)
    need = [offset + i < len(ctx.needs_input_grad) and bool(ctx.needs_input_grad[offset + i]) for i in range(len(flat))]
    needs = any(need)
    f64 = dtype == torch.float64
    chunked = needs and _chunked.use_chunked(m, dims, B, T, given_dtype, device)
    if chunked:  # the plain forward (the chain recomputes what it needs from the inputs)
        key = "record64" if f64 else "forward"
    else:
        key = ("record64" if f64 else "record") if needs else ("record64" if f64 else "forward")
    io = _chunked.bf16_io(m, key, dims, B, T, device) if given_dtype == torch.bfloat16 and form in ("auto", "chunked") else "f32"
    fm = "auto" if ((needs and not chunked) or f64) else form
    iokw = {} if io == "f32" else {"io": io}
    # LR_FWD_STATES: the form whose walk stores its chunk start states (the pick's -st twin or split3), kept for the delta
    # backward (seqc_chunked_lowrank.fwd_states_form)
    fs = _chunked_lowrank.fwd_states_form(m, dims, B, T, io, device, fm) if chunked and key == "forward" and "lowRank" in m.chunked else None
    if fs is not None:
        fm = fs
    if key == "forward":  # the plain forward: a CUDA graph per signature (seqc_graphs.graphed; the recording forwards stay eager)
        variant = m.runner(key, device).pick(dims, B, T, fm, io)[0]["variant"]
        names = [t["name"] for t in m.outputs] + [t["name"] for t in m.states]

        def body(*args):
            ws = {} if fs else None
            o, f, _ = m.execute(key, dims, B, T, {t["name"]: x for t, x in zip(m.inputs, args[:ni]) if x is not None},
                                {t["name"]: x for t, x in zip(m.params, args[ni : ni + npar]) if x is not None},
                                {t["name"]: x for t, x in zip(m.states, args[ni + npar :]) if x is not None}, dtype, device, fm, **iokw, **({"workspaces": ws} if fs else {}))
            return [o[t["name"]] for t in m.outputs] + [f[t["name"]].clone() for t in m.states] + ([f[keep]] if keep else []) + \
                ([ws["chunkS"], f[m.chunked["lowRank"]["state"]]] if fs else [])
        # (a chunked backward's matrix state: its final value in the compute dtype too, so the chain need not recompute it)
        keep = m.chunked["names"]["state"] if chunked and "names" in m.chunked else None
        # (LR_FWD_STATES_COPY "graph": the chunk states and final state left in the graph's memory, valid until its pool's next replay)
        nr = len(names) + (1 if keep else 0)
        if _chunked_lowrank.LR_FWD_STATES_COPY not in ("copy", "graph"):
            raise ValueError("LR_FWD_STATES_COPY %r: one of copy, graph" % (_chunked_lowrank.LR_FWD_STATES_COPY,))
        shared = (nr, nr + 1) if fs and _chunked_lowrank.LR_FWD_STATES_COPY == "graph" else ()
        stamp = [] if shared else None
        res = _graphs.graphed(m, ("forward", B, T, tuple(sorted(dims.items())), fm, io, dtype, keep), body, list(flat), [given_dtype] * len(names) + ([None] if keep else []) + ([None, None] if fs else []), getattr(m, "graphs", True),
                              shared=shared, stamp=stamp)
        if fs:  # (the workspace's bytes in the forward's operand type; the final state in the compute dtype)
            ctx.delta_states = (res[-2].view(torch.bfloat16 if io == "bf16" else dtype), res[-1])
            if stamp:
                ctx.delta_states_valid = stamp[0]
        outs = dict(zip(names[: len(m.outputs)], res[: len(m.outputs)]))
        final = dict(zip(names[len(m.outputs) :], res[len(m.outputs) : len(names)]))
        if keep:
            ctx.chain_SN = res[len(names)]
    else:
        outs, final, variant = m.execute(key, dims, B, T, ins, pars, sts, dtype, device, fm, **iokw)
        if chunked and "names" in m.chunked:
            ctx.chain_SN = final[m.chunked["names"]["state"]].clone()
    ctx.seqc_model, ctx.dims, ctx.B, ctx.T, ctx.dtype, ctx.device = m, dims, B, T, dtype, device
    ctx.given_dtype = given_dtype
    ctx.flat_dtypes = [x.dtype if x is not None else None for x in flat]
    ctx.present = [x is not None for x in flat]
    ctx.need = need
    ctx.variant = variant
    ctx.offset = offset
    ctx.chunked = chunked
    if chunked:
        ctx.save_for_backward(*[x for x in flat if x is not None])
    elif needs:
        ctx.rec = {s["name"]: outs[s["name"] + m.meta["recordSuffix"]] for s in m.states}
        ctx.save_for_backward(*[x for x in flat if x is not None])
    if key == "forward":  # (in the given dtype, the final states copies, already)
        return tuple([outs[t["name"]] for t in m.outputs] + [final[t["name"]] for t in m.states])
    if given_dtype != dtype:
        return tuple([outs[t["name"]].to(given_dtype) for t in m.outputs] + [final[t["name"]].to(given_dtype) for t in m.states])
    return tuple([outs[t["name"]] for t in m.outputs] + [final[t["name"]].clone() for t in m.states])


def backward(ctx, grads):
    """The body of the backward: gradients for (*inputs, *params, *initial states), None where not needed
    (as many as the Function's forward was given: trailing ones it was not given are dropped)."""
    m = ctx.seqc_model
    names = m.meta["backwardNames"]
    saved = iter(ctx.saved_tensors)
    flat = [next(saved) if p else None for p in ctx.present]
    if ctx.chunked:  # the low-rank chain (the delta-rule family: "lowRank" names), the transposed-core chain of a
        # stabilised form or one with value columns (mLSTM: seqc_chunked_stab.py), or the transposed-core chain
        if "lowRank" in m.chunked:
            return _chunked_lowrank.backward(ctx, m, flat, grads)
        return (_chunked_stab if _chunked_stab.applies(m.chunked["names"]) else _chunked).backward(ctx, m, flat, grads)
    ni, npar = len(m.inputs), len(m.params)
    B, T, dims, dtype, device = ctx.B, ctx.T, ctx.dims, ctx.dtype, ctx.device
    bins, bst = {}, {}
    for t, x in zip(m.inputs, flat[:ni]):
        if x is not None:
            bins[t["name"]] = _flip(x.detach().to(dtype))
    pars = {t["name"]: x.detach() for t, x in zip(m.params, flat[ni : ni + npar]) if x is not None}
    for s in m.states:
        bins[names["statePrev"][s["name"]]] = _flip(ctx.rec[s["name"]])
    no = len(m.outputs)
    for t, g in zip(m.outputs, grads[:no]):
        shape = [B, T] + [_cuda.eval_size(s, dims) for s in t["shape"]]
        bins[names["outputBar"][t["name"]]] = _flip(g.to(dtype)) if g is not None else torch.zeros(shape, dtype=dtype, device=device)
    for s, g in zip(m.states, grads[no:]):
        if g is not None:
            bst[names["stateBar"][s["name"]]] = g.to(dtype).contiguous()
    key = "backward64" if dtype == torch.float64 else "backward"
    outs, final, _ = m.execute(key, dims, B, T, bins, pars, bst, dtype, device)
    need = ctx.need
    res = []
    inpasses = {p["input"]: p for p in names.get("inputPasses", [])}
    for i, t in enumerate(m.inputs):
        if not (need[i] and flat[i] is not None):
            res.append(None)
        elif t["name"] in inpasses:
            res.append(_flip(_input_pass(m, inpasses[t["name"]], "pass64:" if dtype == torch.float64 else "pass:", dims, B, T, bins, outs, pars, dtype, device)))
        else:
            res.append(_flip(outs[names["inputBar"][t["name"]]]))
    passes = {p["param"]: p for p in names.get("passes", [])}
    done = {}
    for j, t in enumerate(m.params):
        i = ni + j
        if not (need[i] and flat[i] is not None):
            res.append(None)
        elif t["name"] in passes:
            p = passes[t["name"]]
            if p.get("sameAs") in done:  # the same sum as an earlier param's adjoint (compiler/grad/split.ts passShapes)
                res.append(done[p["sameAs"]].clone())
            else:
                res.append(_param_pass(m, p, "pass64:" if dtype == torch.float64 else "pass:", dims, B, T, bins, outs, pars, dtype, device))
            done[t["name"]] = res[-1]
        else:
            res.append(outs[names["paramBar"][t["name"]]].sum((0, 1)))
    for j, s in enumerate(m.states):
        i = ni + npar + j
        res.append(final[names["stateBar"][s["name"]]].clone() if need[i] and flat[i] is not None else None)
    given = len(ctx.needs_input_grad) - ctx.offset
    return tuple(_as_given(ctx, res[:given]))


def _as_given(ctx, res):
    """Gradients in the dtype of the tensor each belongs to (bf16 runs compute them in float32)."""
    gd = getattr(ctx, "given_dtype", ctx.dtype)
    return res if gd == ctx.dtype else [g.to(d) if g is not None else None for g, d in zip(res, ctx.flat_dtypes)]


def pass_fold(B, T, elems, budget=1 << 24):
    """Steps per param-pass run with time folded into the batch (runtime/train.ts passFold): the fewest C
    (C divides T) whose B*T/C rows of partial sums of `elems` floats stay within `budget` elements."""
    for C in range(1, T):
        if T % C == 0 and B * (T // C) * elems <= budget:
            return C
    return T


def _param_pass(m, p, prefix, dims, B, T, bins, outs, pars, dtype, device):
    """A param's adjoint outside the recurrence (compiler/grad/split.ts): its pass sums over the steps what
    the backward read and wrote, with [B, T] folded to [B*T/C, C]; the partial sums are added here. A pass whose
    adjoint is one per-step value summed over batch and steps (p["sum"], a bias) is that reduction, no kernel."""
    t = next(x for x in m.params if x["name"] == p["param"])
    if p.get("sum"):
        x = _pass_read(p, p["sum"], bins, outs)
        return x.reshape(B * T, -1).sum(0).reshape([_cuda.eval_size(s, dims) for s in t["shape"]])
    mm = p.get("matmul") if PASS_MATMUL in ("torch", "torch-rows") else None
    if mm:  # W_bar = A^T X over every (row, step): both read over the same reversed steps
        a, x = (_pass_read(p, mm[k], bins, outs) for k in ("a", "b"))
        if a is not None and x is not None:
            shape = [_cuda.eval_size(s, dims) for s in t["shape"]]
            if PASS_MATMUL == "torch-rows":
                return torch.bmm(a.reshape(B, T, -1).transpose(1, 2), x.reshape(B, T, -1)).sum(0).reshape(shape)
            return torch.mm(a.reshape(B * T, -1).t(), x.reshape(B * T, -1)).reshape(shape)
    C = pass_fold(B, T, m.size(t, dims))
    rows = B * (T // C)
    ins = {}
    for name in p["reads"]:
        x = _pass_read(p, name, bins, outs)
        if x is not None:
            ins[name] = x.reshape([rows, C] + list(x.shape[2:]))
    _, final, _ = m.execute(prefix + p["param"], dims, rows, C, ins, pars, {}, dtype, device)
    return final[p["bar"]].sum(0)


def _input_pass(m, p, prefix, dims, B, T, bins, outs, pars, dtype, device):
    """An input's adjoint outside the recurrence (compiler/grad/split.ts): a model without state over the
    same reversed [B, T] as the backward, reading what the backward read and wrote (one matrix product)."""
    mm = p.get("matmul") if PASS_MATMUL in ("torch", "torch-rows") else None
    if mm and pars.get(mm["param"]) is not None:  # x_bar = A P over every (row, step), rows in the order read
        a = _pass_read(p, mm["a"], bins, outs)
        if a is not None:
            w = pars[mm["param"]].to(dtype).reshape(a[0, 0].numel(), -1)
            return torch.mm(a.reshape(B * T, -1), w).reshape([B, T] + [_cuda.eval_size(s, dims) for s in next(x for x in m.inputs if x["name"] == p["input"])["shape"]])
    ins = {}
    for name in p["reads"]:
        x = _pass_read(p, name, bins, outs)
        if x is not None:
            ins[name] = x
    o, _, _ = m.execute(prefix + p["input"], dims, B, T, ins, pars, {}, dtype, device)
    return o[p["bar"]]


def _pass_read(p, name, bins, outs):
    """The array the backward run has for pass input `name` (None where absent)."""
    src = p["reads"][name]
    return bins.get(src) if src in bins else outs.get(src)


class SeqcFunction(torch.autograd.Function):
    """Any compiled model: apply(_Call(model, form), *inputs, *params, *initial states) -> (*outputs, *final states)."""

    @staticmethod
    def forward(ctx, call, *flat):
        return forward(ctx, call.model, call.form, flat, offset=1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        return (None,) + backward(ctx, grads)


def default_path(module_file, model):
    return os.path.join(os.path.dirname(os.path.abspath(module_file)), "%s.torch.json" % model)
