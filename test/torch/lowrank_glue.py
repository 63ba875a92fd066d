"""Driver for test/torch-chunked-lowrank.test.ts: runs runtime/torch/seqc_chunked_lowrank.py's lowrank_backward on
CPU torch (float64, the real torch ops) with every chain model run by the test's float64 interpreter over a line
protocol: this prints {"run": part, ...} and reads {"outputs", "final"} back; at the end it prints the gradients.
Input (first line of stdin): {"names", "B", "T", "stateShape", "given", "S0", "cotOutputs", "cotState", "inputs",
"params", "outputs", "chunk", "dtype", "decayWay", "passWay", "readWay",
"augWay", "keyWay", "layout", "share", "solve", "solveBlock", "mm", "lean", "fused", "readout", "bwd"} with tensors as {"shape": [...], "data": [...]}; dtype "float32" runs the glue in
float32 (the interpreter's results rounded to float32 on the way in); mm "bf16": ChunkCore's product operands rounded
to bf16 (fp32 sums, seqc_chunked_lowrank.LR_MM); lean: LR_LEAN (None: the default); fused "recurrence": ChunkCore's
`fused` launcher (seqc_chunked_lowrank.fused_launcher's contract) computed here by the recurrence itself, step by step in
torch ops (an implementation independent of ChunkCore's products, standing in for the CUDA kernel of
compiler/backends/cuda/lowrank-core.ts, which test/cuda-lowrank-core-emu.test.ts checks on its own); the output then
also has "fusedCalls", how many cores took it; readout "recurrence": ChunkCore's `readout` launcher
(seqc_chunked_lowrank.readout_launcher's contract: ChunkCore.read from a start state) by the recurrence from S_0 step by
step, standing in for compiler/backends/cuda/lowrank-readout.ts (test/cuda-lowrank-readout-emu.test.ts checks it);
"readoutCalls": how many reads took it; bwd: seqc_chunked_lowrank.LR_BWD ("chain" / "wy"; None: the default);
wyBreak: "walk" / "xI" / "a0", a term of the chunk-state backward dropped (wy_break); pass "recurrence": the walks over
the chunks' launcher (seqc_chunked_lowrank.pass_launcher's contract) by the recurrence, standing in for
compiler/backends/cuda/lowrank-pass.ts (test/cuda-lowrank-pass-emu.test.ts checks it); "passCalls": the directions it ran;
wyKern "recurrence": the chunk-state backward's per-chunk kernels (seqc_chunked_lowrank.wy_launcher's contract) from
their definitions, standing in for compiler/backends/cuda/lowrank-wy.ts (test/cuda-lowrank-wy-emu.test.ts checks it);
"wyCalls": the ops it ran; postBinds: a list, lowrank_backward's post_binds (the names post's backward binds; LR_Y_READ
"bound"), or None (all); copies: "lean" / "old" (seqc_chunked_lowrank.LR_COPIES; None: the default); merge: "decay" /
"off" (LR_MERGE; None: the default); mergeBreak: the merged steps' low-rank queries left unscaled (w, not exp(ld) w);
keyBwd: "chain" / "wy", whether bwd "wy" also takes a per-key decay (LR_BWD_KEY; None: the default); readKey
"recurrence": the readout launcher also takes a per-key decay (readout_key_launcher's contract, LR_READ_KEY "cuda") by
the recurrence, counted in "readoutCalls"; readKeyBreak: that stand-in with key 0's decay for every key; wyBreak "ld": the
per-key path's log decays dropped from the reversed chunks' ChunkCore (the adjoint then undecayed inside a chunk);
revRead: "flip" / "kernel" (seqc_chunked_lowrank.LR_REV_READ; None: the default): the readout stand-in honours the
launcher's rev (Q, EA, EB and OUT read and written in reversed time), "readoutRev" counts those calls; revBreak: a stand-in
that ignores rev (the test expects the gradients off); chainRev: "flip" / "kernel" (seqc_chunked_lowrank.LR_CHAIN_REV;
None: the default): the per-key stand-in honours the launcher's mirror, "readoutMirror" counts those calls; mirrorBreak: a
per-key stand-in that ignores it; "bigFlips": torch.flip calls on tensors of 4 or more dimensions
(the wy path's [N, C, m, w] events and reads, the chain's [B, H, Lp, w] lines; not the [N, C, 1] log decays); evLines:
"on" / "off" (seqc_chunked_lowrank.LR_EV_LINES; None: the default); wyDyStride: the wy stand-in says it reads a strided
dY (wy_launcher's dy_stride: the dy line then a slot of wy's events too); bwd "delta" (seqc_delta_bwd): deltaKern
"recurrence", its five kernels by test/torch/delta_kernels_standin.py ("deltaCalls": the ops launched); deltaBreak:
"aC" (the chunk end's <LE, S_C> dropped from the log decays' adjoint) or "walk" (the reverse walk without the chunk
transitions), a term dropped (the test expects the gradients off); givenBf16: "tensor" / "round", the forward's inputs
rounded to bf16 and given as bf16 tensors (as a bf16 step gives them, the glue in dtype) or as dtype tensors."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "torch"))
import seqc_chunked_lowrank  # noqa: E402
from line_run import line_run  # noqa: E402


DTYPE = [torch.float64]
TORCH_FLIP = torch.flip


def arr(t):
    return None if t is None else torch.tensor(t["data"], dtype=DTYPE[0]).reshape(t["shape"])


def enc(a):
    a = a.detach().double().contiguous()
    return {"shape": list(a.shape), "data": a.reshape(-1).tolist()}


def recurrence_transitions(calls):
    """A `fused` launcher for ChunkCore: the reads r_s = S_{s-1}^T w_s into VV's slot 0 and the end state into END, from
    S_0 = [I | 0] by S_s = diag(exp(G_s - G_{s-1})) S_{s-1} + u_s r_s^T + k_s [0 | v_s]^T, any C, K, V."""

    def launch(op, mode, C, K, V, KK, W, VV, G, END):
        assert op == "transitions"
        N, W_ = KK.shape[0], K + V
        S = torch.zeros([N, K, W_], dtype=KK.dtype)
        S[:, :, :K] = torch.eye(K, dtype=KK.dtype)
        for s in range(C):
            r = torch.einsum("nk,nkw->nw", W[:, s], S)
            if G is not None:
                S = S * torch.exp(G[:, s + 1] - G[:, s])[:, :, None]
            S = S + KK[:, s, 0, :, None] * r[:, None, :] + KK[:, s, 1, :, None] * VV[:, s, 1, None, :]
            VV[:, s, 0] = r
        END.copy_(S)
        calls.append(mode)
        return True
    return launch


def recurrence_readouts(calls, rev_break=False):
    """A `readout` launcher for ChunkCore: OUT[:, a, x] = S_{a+oq}^T Q[:, a, x] (key axis; EA the keys, EB the values) or
    S_{a+oq} Q[:, a, x] (value axis; EA the values, EB the keys) with S_t = exp(G_t - G_{t-1}) S_{t-1} + sum_y kk_{t,y}
    vv_{t,y}^T from S_0, any C, K, V, M; rev: step a's Q, EA, EB and OUT are their row C - 1 - a (G in step order);
    rev_break: rev ignored."""
    flip = torch.flip  # torch's, not main's counted one

    def launch(axis, oq, mode, C, K, V, M, Q, EA, EB, S0, G, OUT, rev=False):
        assert mode in ("none", "scalar") and (G is None) == (mode == "none")
        if rev:
            calls.append(axis + "-rev")
            if not rev_break:
                tmp = torch.empty_like(OUT)
                launch(axis, oq, mode, C, K, V, M, flip(Q, [1]), flip(EA, [1]), flip(EB, [1]), S0, G, tmp)
                calls.pop()
                OUT.copy_(flip(tmp, [1]))
                return True
        KK, VV = (EA, EB) if axis == "key" else (EB, EA)
        assert tuple(KK.shape[1:]) == (C, M, K) and tuple(VV.shape[1:]) == (C, M, V) and tuple(OUT.shape[:2]) == (Q.shape[0], C)
        S = S0.clone()

        def read(t):
            OUT[:, t] = torch.einsum("nxk,nkv->nxv", Q[:, t], S) if axis == "key" else torch.einsum("nxv,nkv->nxk", Q[:, t], S)
        for t in range(C):
            if oq == 0:
                read(t)
            if G is not None:
                S = S * torch.exp(G[:, t + 1] - G[:, t])[:, :, None]
            S = S + torch.einsum("nyk,nyv->nkv", KK[:, t], VV[:, t])
            if oq == 1:
                read(t)
        if not rev:
            calls.append(axis)
        return True
    return launch


def recurrence_readouts_key(base, calls, broken=False, mirror_break=False):
    """The readouts stand-in `base` (recurrence_readouts; None: none) that also takes a per-key decay
    (seqc_chunked_lowrank.readout_key_launcher's contract: mode "key", G [N, C + 1, K], S_t = diag(exp(G_t - G_{t-1}))
    S_{t-1} + sum_y kk_{t,y} vv_{t,y}^T from S_0, any C, K, V, M), standing in for compiler/backends/cuda/
    lowrank-readout-key.ts (test/cuda-lowrank-readout-key-emu.test.ts checks it); per_key set as the launcher's. calls:
    "key " + axis for each per-key read ("key " + axis + " mirror" for a mirrored one). broken: key 0's decay for every key
    (the test expects the gradients off). mirror=nC (LR_CHAIN_REV "kernel", ChunkCore.read_mirror): Q and OUT stored in the
    reversed order of lines of nC chunks (row n's step a is row n - n % nC + nC - 1 - n % nC's step C - 1 - a);
    mirror_break: that order ignored (the test expects the gradients off)."""
    flip = TORCH_FLIP  # torch's, not main's counted one (this stand-in is made after main replaces torch.flip)

    def launch(axis, oq, mode, C, K, V, M, Q, EA, EB, S0, G, OUT, *rest, mirror=0, **kw):
        if mode != "key":
            return not mirror and base is not None and base(axis, oq, mode, C, K, V, M, Q, EA, EB, S0, G, OUT, *rest, **kw)
        if mirror:
            def mir(x):
                return flip(x.reshape([x.shape[0] // mirror, mirror * C] + list(x.shape[2:])), [1]).reshape(x.shape)
            tmp = torch.empty_like(OUT)
            launch(axis, oq, mode, C, K, V, M, Q if mirror_break else mir(Q), EA, EB, S0, G, tmp)
            calls[-1] += " mirror"
            OUT.copy_(tmp if mirror_break else mir(tmp))
            return True
        assert G is not None and tuple(G.shape[1:]) == (C + 1, K) and not rest and not any(kw.values())
        KK, VV = (EA, EB) if axis == "key" else (EB, EA)
        assert tuple(KK.shape[1:]) == (C, M, K) and tuple(VV.shape[1:]) == (C, M, V) and tuple(OUT.shape[:2]) == (Q.shape[0], C)
        g = G[:, :, :1].expand(G.shape) if broken else G
        S = S0.clone()

        def read(t):
            OUT[:, t] = torch.einsum("nxk,nkv->nxv", Q[:, t], S) if axis == "key" else torch.einsum("nxv,nkv->nxk", Q[:, t], S)
        for t in range(C):
            if oq == 0:
                read(t)
            S = S * torch.exp(g[:, t + 1] - g[:, t])[:, :, None] + torch.einsum("nyk,nyv->nkv", KK[:, t], VV[:, t])
            if oq == 1:
                read(t)
        calls.append("key " + axis)
        return True
    launch.per_key = True
    return launch


def recurrence_pass(calls):
    """A `passer` for lowrank_backward (seqc_chunked_lowrank.pass_launcher's contract) by the recurrence in torch ops:
    dir "fwd" S_{c+1} = A_c S_c + B_c (OUT[c] = S_c), "adj" L_c = A_c^T L_{c+1} + B_c (OUT[c] = L_{c+1}); FIN the last."""

    def launch(dir, A, Bp, S0, OUT, FIN):
        K, nC = OUT.shape[3], OUT.shape[2]
        S = S0.clone()
        for s in range(nC):
            c = s if dir == "fwd" else nC - 1 - s
            OUT[:, :, c] = S
            Ac = A[:, :, c, :, :K]
            S = torch.einsum("bhil,bhlj->bhij", Ac if dir == "fwd" else Ac.transpose(-1, -2), S) + Bp[:, :, c]
        FIN.copy_(S)
        calls.append(dir)
        return True
    return launch


def recurrence_wy(calls):
    """A `wy_kern` for lowrank_backward (seqc_chunked_lowrank.wy_launcher's contract) from the definitions, in torch ops
    and a step loop for the solve: "pre" BQ = P1^T dY (P1[a, c] = exp(G_{a+1} - G_{c+1}) q_a . u_c, c <= a), BP = sum_a
    exp(G_{a+1}) q_a dy_a^T + XI^T BQ; "dr" DR_c = BQ_c + exp(G_C - G_{c+1}) L^T u_c + sum_{a > c} Luu[a, c] DR_a (Luu[a, c]
    = exp(G_a - G_{c+1}) w_a . u_c)."""

    def launch(op, C, K, V, mode, *ts):
        G = ts[-1][:, :, 0] if ts[-1] is not None else torch.zeros([ts[0].shape[0], C + 1], dtype=ts[0].dtype)
        a = torch.arange(C)
        if op == "pre":
            Q, U, DY, XI = ts[:4]
            mask = a[None, :] <= a[:, None]  # [a, c]: c <= a
            P1 = torch.where(mask, torch.exp(G[:, 1:, None] - G[:, None, 1:]), 0) * torch.einsum("nak,nck->nac", Q, U)
            BQ = torch.einsum("nac,nav->ncv", P1, DY)
            BP = torch.einsum("na,nak,nav->nkv", torch.exp(G[:, 1:]), Q, DY) + torch.einsum("nck,ncv->nkv", XI, BQ)
            calls.append(op)
            return BQ, BP
        W, U, BQ, L = ts[:4]
        mask = a[None, :] < a[:, None]  # c < a
        Luu = torch.where(mask, torch.exp(G[:, :C, None] - G[:, None, 1:]), 0) * torch.einsum("nak,nck->nac", W, U)
        rhs = BQ + torch.exp(G[:, C:] - G[:, 1:])[:, :, None] * torch.einsum("nck,nkv->ncv", U, L)
        DR = torch.zeros_like(rhs)
        for c in range(C - 1, -1, -1):
            DR[:, c] = rhs[:, c] + torch.einsum("na,nav->nv", Luu[:, c + 1 :, c], DR[:, c + 1 :])
        calls.append(op)
        return DR
    return launch


def wy_break(what):
    """Drops one term of the chunk-state backward (seqc_lowrank_wy): "walk" the transitions in the reverse walk
    (L_0 = B'_c only), "xI" the reads' dependence on the start state in B'_c, "a0" the chunk end's <L_end, S_C> in the
    log decays' adjoint."""
    import seqc_lowrank_wy as wy
    bw, dec = wy.wy_backward, wy.wy_decay
    if what == "walk":
        wy.wy_backward = lambda core, xI, A, *a, **k: bw(core, xI, torch.zeros_like(A), *a, **k)
    elif what == "xI":
        wy.wy_backward = lambda core, xI, *a, **k: bw(core, torch.zeros_like(xI), *a, **k)
    elif what == "a0":
        wy.wy_decay = lambda a0, *a: dec(torch.zeros_like(a0), *a)
    elif what == "ld":
        wy.wy_backward = lambda core, xI, A, ld, *a, **k: bw(core, xI, A, torch.zeros_like(ld), *a, **k)
    else:
        raise ValueError("wyBreak %r" % (what,))


def delta_break(what):
    """Drops one term of seqc_delta_bwd's torch path: "aC" <LE, S_C> in dld, "walk" A_c^T in the reverse walk."""
    import seqc_delta_bwd as d
    if what == "aC":
        d.chunk_end_adjoint = lambda LE, starts, SF: torch.zeros(list(LE.shape[:3]), dtype=LE.dtype)
        d.chunk_end_adjoint_key = lambda LE, starts, SF: torch.zeros(list(LE.shape[:4]), dtype=LE.dtype)  # (per key)
    elif what == "walk":
        walk = d._walk
        d._walk = lambda AB, Bp, Z0, reverse, passer=None: walk(torch.zeros_like(AB) if reverse else AB, Bp, Z0, reverse, passer)
    else:
        raise ValueError("deltaBreak %r" % (what,))


def main():
    case = json.loads(sys.stdin.readline())
    B, T = case["B"], case["T"]
    DTYPE[0] = getattr(torch, case.get("dtype", "float64"))
    run = line_run(enc, arr)
    if case.get("solve"):  # ChunkCore's triangular solve (seqc_chunked_lowrank.LR_SOLVE, SOLVE_BLOCK)
        seqc_chunked_lowrank.LR_SOLVE = case["solve"]
        seqc_chunked_lowrank.SOLVE_BLOCK = case.get("solveBlock") or seqc_chunked_lowrank.SOLVE_BLOCK

    if case.get("wyBreak"):  # a term of seqc_lowrank_wy dropped (the test expects the gradients off)
        wy_break(case["wyBreak"])
    if case.get("deltaBreak"):  # a term of seqc_delta_bwd dropped (the test expects the gradients off)
        delta_break(case["deltaBreak"])
    dcalls = []
    delta_kern = None
    if case.get("deltaKern") == "recurrence":
        from delta_kernels_standin import standin
        delta_kern = standin(dcalls, DTYPE[0])
    if case.get("mergeBreak"):  # the decay steps merged, their w not scaled (the test expects the gradients off)
        merge_steps = seqc_chunked_lowrank.merge_decay_steps

        def unscaled(steps, readouts):
            st, rd, merged = merge_steps(steps, readouts)
            return st, rd, [(ld, []) for ld, _ in merged]
        seqc_chunked_lowrank.merge_decay_steps = unscaled
    calls = []
    fused = recurrence_transitions(calls) if case.get("fused") == "recurrence" else None
    rcalls = []
    readout = recurrence_readouts(rcalls, bool(case.get("revBreak"))) if case.get("readout") == "recurrence" else None
    flips = []
    flip = torch.flip

    def counted_flip(x, dims):
        if x.dim() >= 4:
            flips.append(list(x.shape))
        return flip(x, dims)
    torch.flip = counted_flip
    if case.get("readKey") == "recurrence":  # the per-key readouts' stand-in (seqc_chunked_lowrank LR_READ_KEY "cuda")
        readout = recurrence_readouts_key(readout, rcalls, bool(case.get("readKeyBreak")), bool(case.get("mirrorBreak")))
    pcalls = []
    passer = recurrence_pass(pcalls) if case.get("pass") == "recurrence" else None
    wcalls = []
    wy_kern = recurrence_wy(wcalls) if case.get("wyKern") == "recurrence" else None
    if wy_kern is not None and case.get("wyDyStride"):  # the stand-in reads a strided dY (wy_launcher's dy_stride)
        wy_kern.dy_stride = True
    from torch.utils._python_dispatch import TorchDispatchMode
    big = max(v.numel() for v in (arr(x) for x in case["given"].values()) if v is not None)
    copies = []

    class Copies(TorchDispatchMode):  # copy_ / stack / cat into tensors of at least the largest input's size
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket.__name__ in ("copy_", "stack", "cat") and isinstance(out, torch.Tensor) and out.numel() >= big:
                copies.append(func.overloadpacket.__name__)
            return out
    with Copies():
        gin, gpar, dS0 = glue_backward(case, run, fused, readout, passer, wy_kern, delta_kern)
    torch.flip = flip
    sys.stdout.write(json.dumps({"done": True, "bigCopies": len(copies), "fusedCalls": len(calls), "readoutCalls": len(rcalls), "readoutRev": sum(1 for c in rcalls if c.endswith("-rev")), "readoutMirror": sum(1 for c in rcalls if c.endswith(" mirror")), "bigFlips": len(flips), "passCalls": pcalls, "wyCalls": wcalls, "deltaCalls": dcalls, "inputs": {k: enc(v) for k, v in gin.items()}, "params": {k: enc(v) for k, v in gpar.items()}, "dS0": enc(dS0)}) + "\n")


def glue_backward(case, run, fused, readout, passer, wy_kern, delta_kern=None):
    B, T = case["B"], case["T"]
    given = {k: arr(v) for k, v in case["given"].items()}
    if case.get("givenBf16"):  # the forward's inputs rounded to bf16: "tensor" as bf16 tensors (a
        # bf16 step's, the glue still in DTYPE), "round" as DTYPE tensors of the rounded values
        given = {k: v.to(torch.bfloat16) if case["givenBf16"] == "tensor" else v.to(torch.bfloat16).to(DTYPE[0]) for k, v in given.items()}
    return seqc_chunked_lowrank.lowrank_backward(
        case["names"], run, B, T, case["stateShape"], given, arr(case.get("S0")),
        {k: arr(v) for k, v in case["cotOutputs"].items()}, arr(case.get("cotState")),
        case["inputs"], case["params"], case["outputs"], DTYPE[0], torch.device("cpu"), case["chunk"], case.get("decayWay"), case.get("passWay"),
        case.get("readWay"), case.get("augWay"), key_way=case.get("keyWay"),
        layout=case.get("layout"), share=case.get("share"),
        mm=seqc_chunked_lowrank.mm_dtype([], DTYPE[0], case.get("mm") or "fp32"), lean=case.get("lean"), fused=fused, readout=readout, bwd_way=case.get("bwd"), passer=passer, wy_kern=wy_kern,
        post_binds=set(case["postBinds"]) if case.get("postBinds") is not None else None, copies=case.get("copies"), merge=case.get("merge"), key_bwd=case.get("keyBwd"),
        rev_read=case.get("revRead"), chain_rev=case.get("chainRev"), ev_lines=case.get("evLines"), delta_kern=delta_kern)


if __name__ == "__main__":
    main()
