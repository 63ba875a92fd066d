"""The low-rank chunked backward's glue in torch ops (part of seqc's torch target; copied next to the generated modules).

runtime/chunked-backward-lowrank.ts (lowRankChainBackward) on the device, for the delta-rule family (DeltaNet, Gated
DeltaNet, Gated DeltaProduct, RWKV-7): the chain of compiler/grad/chunked-chain-lowrank.ts runs as CUDA plans
(`chain:<part>` in <Model>.torch.json, names under "chunked"."lowRank"), and what ties them together is torch ops on
the same stream, batched over every token instead of the host loops:
  timeline  the core's micro-steps (N per token) behind one identity step: line tensors [B, Lp, H, w] (Lp = the
            timeline's L = T N + 1 steps padded to whole chunks of C), filled from prep's outputs by strided slices;
  aug       the chunk transitions [A | B] of every chunk at once (chunked form, time folded into the batch:
            [B, Lp] is [B nC, C] in memory), from [I | 0] with value vectors [0; v];
  pass      S_{c+1} = A_c S_c + B_c over the chunks (the chunk start states);
  read      per chunk from its start state: the low-rank reads r = S_{s-1}^T w and the readouts y;
  adjoint   the same on the reversed timeline (torch.flip), with the next step's decay and the swapped low-rank
            pair: dv, the adjoint's low-rank reads a, dk, du; then fwd (dq, dw) from the forward's chunk states;
  decay     the log decays' adjoint, a reverse cumulative sum from <dS_N, S_N>;
and the pieces mapped back onto prep's outputs (strided slices of the timeline), prep's backward, the sums.
Nothing goes through host memory.
"""

import torch

try:
    from . import seqc_chunked as _chunked
except ImportError:  # loaded as a top-level module (the output directory on sys.path)
    import seqc_chunked as _chunked

# Micro-steps per chunk of the folded runs (runtime/chunked-backward-lowrank.ts LR_CHUNK).
LR_CHUNK = 64
# The parts that run the chunked form (the chunk transitions); the others take the runner's pick.
LR_CHUNKED_PARTS = ("augF", "augA")
# How the log decays' adjoint runs: "plan" (chain:decay, a sequential scan over the timeline per (batch, head[, key])
# lane) or "cumsum" (its per-step terms as elementwise torch ops, then torch.cumsum over the timeline).
LR_DECAY = "plan"
# How the chunk start states are chained: "matmul" (S_{c+1} = A_c S_c + B_c as one batched torch.matmul per chunk) or
# "plan" (chain:pass, the sequential kernel over the chunks). On the H100 at B=8 T=2048 H=16 K=V=64 the plan took 13.4 ms
# (26.4 with Gated DeltaNet's decay) of a 143 ms step; the products: DeltaNet 143.0 -> 130.6 ms, RWKV-7 155.1 -> 142.8,
# Gated DeltaNet 282.3 -> 258.0, gradients within 5e-8 of the plan's (bench/RESULTS.md).
LR_PASS = "matmul"
# The form of the per-chunk readout parts (read, fwd, adjoint) for float32: "auto" (the runner's pick) or a sequential
# variant ("thread", "workgroup", "global") where it applies.
LR_SEQ_FORM = "auto"
LR_SEQ_PARTS = ("read", "fwd", "adjoint")


def lowrank_backward(n, run, B, T, state_shape, given, S0, cot_outputs, cot_state, inputs, params, outputs, dtype, device, chunk=None, decay_way=None, pass_way=None):
    """Gradients of the forward's inputs, params and the matrix state's initial value through the low-rank chain.

    n: the chain's names (<Model>.torch.json "chunked"."lowRank"); run(part, dims, inputs, initial_state, B, T)
    -> (outputs, final states) runs plan chain:<part> (dims None: the model's dims and params, the stateless parts
    over [B*T, 1]; else the generated models' {H, K, V} or the decay's {H, K}); given: the forward's inputs
    [B, T, ...]; S0: the matrix state's initial value [B, *state_shape] or None (the declared value); cot_outputs:
    {output: dL/d output or None}; cot_state: dL/d(final state) or None; inputs / params / outputs: [(name,
    per-step shape)]; chunk: micro-steps per folded chunk (None: LR_CHUNK); decay_way: "plan" / "cumsum" (None: LR_DECAY);
    pass_way: "plan" / "matmul" (None: LR_PASS).
    Returns ({input: grad}, {param: grad}, dS0)."""
    chunk = LR_CHUNK if chunk is None else chunk
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError("chunk %r: a chunk is a positive number of micro-steps" % (chunk,))
    cd = _chunked.chain_dims(n, state_shape)
    H, K, V = cd["H"], cd["K"], cd["V"]
    KV = K + V
    steps, readouts = n["steps"], n["readouts"]
    P, E, R = n["P"], n["E"], n["R"]
    base, N = [], 0
    for s in steps:
        base.append(N)
        N += s["count"]
    L = T * N + 1
    C = min(chunk, L)
    nC = -(-L // C)
    Lp = nC * C
    LW = K if n["decay"] == "key" else 1
    perm = [0] + [1 + a for a in n["heads"]] + [1 + n["key"], 1 + n["value"]]

    def zeros(shape):
        return torch.zeros(shape, dtype=dtype, device=device)

    def line(w):
        return zeros([B, Lp, H, w])

    def micro(a):
        """The token micro-steps of a timeline line [B, Lp, H, w] as a view [B, T, N, H, w] (step 0, the identity, left out)."""
        return a[:, 1 : 1 + T * N].view(B, T, N, H, a.shape[3])

    def read_off(r):
        """Readout r of token t reads the state after timeline step t N + read_off(r)."""
        after = readouts[r]["after"]
        return base[after] if after < len(steps) else N

    def at_reads(a, r):
        """[B, T, H, w]: the timeline line a at readout r's steps (a strided slice)."""
        o = read_off(r)
        return a[:, o : o + (T - 1) * N + 1 : N]

    def rev(a, shift=0):
        """The reversed timeline (tau = L - 1 - m) of a line, read `shift` steps later (zero past the end and in the padding)."""
        out = torch.zeros_like(a)
        out[:, shift:L] = torch.flip(a[:, shift:L], [1])
        return out

    def fold(t):
        """Lines [B, Lp, H, w] as [B nC, C, H, w]: every chunk a batch row of its own."""
        return {k: v.reshape(B * nC, C, H, v.shape[3]) for k, v in t.items()}

    def lines(outs):
        """A folded run's outputs [B nC, C, H, w] back as lines [B, Lp, H, w]."""
        return {k: v.reshape(B, Lp, H, -1) for k, v in outs.items()}

    def canon(S):
        return torch.permute(S, perm).reshape(B, H, K, V)

    def pointwise(part, ins):
        """The stateless parts over [B*T, 1] (one step over every token at once)."""
        folded = {k: v.reshape([B * T, 1] + list(v.shape[2:])) for k, v in ins.items() if v is not None}
        return {k: v.reshape([B, T] + list(v.shape[2:])) for k, v in run(part, None, folded, {}, B * T, 1)[0].items()}

    # the timeline's inputs from prep's outputs
    prep = pointwise("prep", given)

    def per_step(name, w):
        """Prep output `name` as [B, T, loop index, H, w]."""
        return prep[name].reshape(B, T, -1, H, w)

    def gather(pick, w):
        out = line(w)
        mv = micro(out)
        for s, st in enumerate(steps):
            name = pick(st)
            if name:
                src = per_step(name, w)
                for c in range(st["count"]):
                    mv[:, :, base[s] + c] = src[:, :, c]
        return out

    fwd = {}
    if n["decay"] != "none":
        ld = line(LW)
        mv = micro(ld)
        for s, st in enumerate(steps):
            d = st.get("ld")
            if d:
                src = per_step(d["name"], K if d["perKey"] else 1)
                for c in range(st["count"]):
                    mv[:, :, base[s] + c] = src[:, :, c]  # a scalar decay broadcasts over a per-key line
        fwd["x_ld"] = ld
    for e in range(E):
        fwd["x_u%d" % e] = gather(lambda st: st["lowRank"][e]["u"] if e < len(st["lowRank"]) else None, K)
        fwd["x_w%d" % e] = gather(lambda st: st["lowRank"][e]["w"] if e < len(st["lowRank"]) else None, K)
    for p in range(P):
        fwd["x_k%d" % p] = gather(lambda st: st["inputs"][p]["k"] if p < len(st["inputs"]) else None, K)
        fwd["x_v%d" % p] = gather(lambda st: st["inputs"][p]["v"] if p < len(st["inputs"]) else None, V)
    for r, ro in enumerate(readouts):
        q = line(K)
        at_reads(q, r)[:] = per_step(ro["q"], K)[:, :, 0]
        fwd["x_q%d" % r] = q

    # chunk start states of a timeline: the chunk transitions [A | B] (aug, folded, from [I | 0]), then the pass
    eye = torch.eye(K, dtype=dtype, device=device)

    def chunk_states(part, ins, pairs, S0c):
        a = dict(ins)
        a["x_n"] = line(K)
        for p in range(pairs):
            v = line(KV)
            v[:, :, :, K:] = ins["x_v%d" % p]
            a["x_v%d" % p] = v
        init = zeros([B * nC, H, K, KV])
        init[:, :, :, :K] = eye
        fin = run(part, {"H": H, "K": K, "V": KV}, fold(a), {"S": init}, B * nC, C)[1]["S"].reshape(B, nC, H, K, KV)
        if (pass_way or LR_PASS) == "matmul":
            starts = zeros([B, nC, H, K, V])
            S = S0c
            for c in range(nC):
                starts[:, c] = S
                S = torch.matmul(fin[:, c, :, :, :K], S) + fin[:, c, :, :, K:]
            return starts.reshape(B * nC, H, K, V), S
        outs, last = run("pass", cd, {"x_A": fin[..., :K].contiguous(), "x_B": fin[..., K:].contiguous()}, {"S": S0c}, B, nC)
        return outs["o_S"].reshape(B * nC, H, K, V), last["S"].reshape(B, H, K, V)

    # forward: the chunk start states, then per chunk y and the low-rank reads r; post's backward (dy)
    if S0 is None:
        S0 = zeros([B] + list(state_shape)) + n["stateInit"]
    S_starts, S_last = chunk_states("augF", fwd, P, canon(S0))
    core = lines(run("read", cd, fold(fwd), {"S": S_starts}, B * nC, C)[0])
    post_in = dict(given)
    for r, ro in enumerate(readouts):
        post_in[ro["y"]] = at_reads(core["o_y%d" % r], r)
    for name, shape in outputs:
        g = cot_outputs.get(name)
        post_in[n["postBw"]["outputBar"][name]] = g if g is not None else zeros([B, T] + list(shape))
    post_g = pointwise("postBw", post_in)
    for r, ro in enumerate(readouts):
        dy = line(V)
        at_reads(dy, r)[:] = post_g[n["postBw"]["inputBar"][ro["y"]]].reshape(B, T, H, V)
        fwd["x_dy%d" % r] = dy

    # the adjoint on the reversed timeline: step tau = L - 1 - m takes G_{m+1} to G_m (the decay and swapped low-rank
    # pair of step m + 1, the readouts at m)
    adj = {}
    if "x_ld" in fwd:
        adj["x_ld"] = rev(fwd["x_ld"], 1)
    for e in range(E):
        adj["x_u%d" % e] = rev(fwd["x_w%d" % e], 1)
        adj["x_w%d" % e] = rev(fwd["x_u%d" % e], 1)
        adj["x_uq%d" % e] = rev(fwd["x_u%d" % e])
        adj["x_rz%d" % e] = rev(core["o_r%d" % e])
    for r in range(R):
        adj["x_k%d" % r] = rev(fwd["x_q%d" % r])
        adj["x_v%d" % r] = rev(fwd["x_dy%d" % r])
    for p in range(P):
        adj["x_kq%d" % p] = rev(fwd["x_k%d" % p])
        adj["x_vz%d" % p] = rev(fwd["x_v%d" % p])
    dS = canon(cot_state) if cot_state is not None else zeros([B, H, K, V])
    G_starts, G_last = chunk_states("augA", adj, R, dS)
    ad = lines(run("adjoint", cd, fold(adj), {"S": G_starts}, B * nC, C)[0])

    # the forward again per chunk from its start states: dq = S dy, dw = S_{s-1} a (a: the adjoint's low-rank reads)
    fwd2 = dict(fwd)
    for e in range(E):
        fwd2["x_a%d" % e] = rev(ad["o_a%d" % e])
    fw = lines(run("fwd", cd, fold(fwd2), {"S": S_starts}, B * nC, C)[0])

    # the log decays' adjoint: a reverse cumulative sum from <dS_N, S_N>
    dld = None
    if n["decay"] != "none":
        a0 = (dS * S_last).sum(3)
        a0 = a0.reshape(B, H * K) if n["decay"] == "key" else a0.sum(2)
        d_in = {}
        for r in range(R):
            d_in["x_q%d" % r] = adj["x_k%d" % r]
            d_in["x_dq%d" % r] = rev(fw["o_dq%d" % r])
        for p in range(P):
            d_in["x_k%d" % p] = adj["x_kq%d" % p]
            d_in["x_dk%d" % p] = ad["o_dk%d" % p]
        for e in range(E):
            d_in["x_u%d" % e] = adj["x_uq%d" % e]
            d_in["x_du%d" % e] = ad["o_du%d" % e]
            d_in["x_w%d" % e] = rev(fwd["x_w%d" % e], 1)
            d_in["x_dw%d" % e] = rev(fw["o_dw%d" % e], 1)
        if (decay_way or LR_DECAY) == "cumsum":
            # a_tau = a_0 + sum_{s <= tau} (q.dq + w.dw - k.dk - u.du)_s: the chain:decay model's update, unrolled
            terms = None
            for x, dx, sign in [("x_q%d" % r, "x_dq%d" % r, 1) for r in range(R)] + [("x_k%d" % p, "x_dk%d" % p, -1) for p in range(P)] + \
                    [("x_u%d" % e, "x_du%d" % e, -1) for e in range(E)] + [("x_w%d" % e, "x_dw%d" % e, 1) for e in range(E)]:
                t = d_in[x] * d_in[dx] if sign > 0 else -(d_in[x] * d_in[dx])
                terms = t if terms is None else terms + t
            if n["decay"] != "key":
                terms = terms.sum(3, keepdim=True)
            dld = rev(torch.cumsum(terms, 1) + a0.reshape(B, 1, H, LW))
        else:
            dld = rev(run("decay", {"H": H, "K": K}, d_in, {"a": a0}, B, Lp)[0]["o_dld"].reshape(B, Lp, H, LW))

    # the adjoints of prep's outputs, from the timeline (the adjoint's pieces back in forward time)
    bars = {o: torch.zeros_like(prep[o]) for o in n["prepOutputs"]}
    fwd_time = {}

    def back(key):
        if key not in fwd_time:
            fwd_time[key] = rev(ad[key])
        return fwd_time[key]

    def put(name, src, s, c, w):
        bars[name].view(B, T, -1, H, w)[:, :, c] += micro(src)[:, :, base[s] + c]

    for s, st in enumerate(steps):
        for c in range(st["count"]):
            for i, p in enumerate(st["inputs"]):
                put(p["k"], back("o_dk%d" % i), s, c, K)
                put(p["v"], back("o_dv%d" % i), s, c, V)
            for e, p in enumerate(st["lowRank"]):
                put(p["u"], back("o_du%d" % e), s, c, K)
                put(p["w"], fw["o_dw%d" % e], s, c, K)
            d = st.get("ld")
            if d and dld is not None:
                if d["perKey"]:
                    put(d["name"], dld, s, c, K)
                else:
                    bars[d["name"]].view(B, T, -1, H, 1)[:, :, c] += micro(dld)[:, :, base[s] + c].sum(3, keepdim=True)
    for r, ro in enumerate(readouts):
        bars[ro["q"]].view(B, T, -1, H, K)[:, :, 0] += at_reads(fw["o_dq%d" % r], r)

    # dS_0: the adjoint after the identity step, in the model's layout
    inv = [perm.index(a) for a in range(len(perm))]
    dS0 = torch.permute(G_last.reshape([B] + [state_shape[a - 1] for a in perm[1:]]), inv)

    prep_in = dict(given)
    for o in n["prepOutputs"]:
        prep_in[n["prepBw"]["outputBar"][o]] = bars[o]
    prep_g = pointwise("prepBw", prep_in)
    gin, gpar = _chunked.sum_pieces([(post_g, n["postBw"]), (prep_g, n["prepBw"])], B, T, inputs, params, zeros)
    return gin, gpar, dS0


def backward(ctx, m, flat, grads):
    """The body of a seqc Function's backward through the low-rank chain (ctx from seqc_torch.forward with ctx.chunked;
    flat: the saved (*inputs, *params, *initial states), None where absent): gradients as seqc_torch.backward returns
    them. bfloat16 tensors run the chain in float32 (its plans have fp32 forms only) and get their gradients back in
    their own dtype."""
    B, T, dims, dtype, device = ctx.B, ctx.T, ctx.dims, ctx.dtype, ctx.device
    n = m.chunked["lowRank"]
    ni, npar = len(m.inputs), len(m.params)
    given = {t["name"]: x.detach().to(dtype) for t, x in zip(m.inputs, flat[:ni]) if x is not None}
    pars = {t["name"]: x.detach().to(dtype) for t, x in zip(m.params, flat[ni : ni + npar]) if x is not None}
    sts = {t["name"]: x.detach().to(dtype) for t, x in zip(m.states, flat[ni + npar :]) if x is not None}
    prefix = "chain64:" if dtype == torch.float64 else "chain:"

    def run(part, cdims, inputs, initial, b, t):
        key = prefix + part
        form = "auto"
        if dtype == torch.float32:
            r = m.runner(key, device)
            if cdims is None:
                form = _chunked.stateless_form(r, dims, b, t)
            elif part in LR_CHUNKED_PARTS and r.can_run(cdims, b, t, "chunked"):
                form = "chunked"
            elif part in LR_SEQ_PARTS and LR_SEQ_FORM != "auto" and r.can_run(cdims, b, t, LR_SEQ_FORM):
                form = LR_SEQ_FORM
        outs, final, _ = m.execute(key, cdims or dims, b, t, inputs, pars if cdims is None else {}, initial, dtype, device, form)
        return outs, final

    def shape(t):
        return [_chunked._cuda.eval_size(s, dims) for s in t["shape"]]

    state = next(s for s in m.states if s["name"] == n["state"])
    no = len(m.outputs)
    cot_out = {t["name"]: (g.to(dtype) if g is not None else None) for t, g in zip(m.outputs, grads[:no])}
    cot_state = None
    for s, g in zip(m.states, grads[no:]):
        if s["name"] == n["state"] and g is not None:
            cot_state = g.to(dtype)
    gin, gpar, dS0 = lowrank_backward(
        n, run, B, T, shape(state), given, sts.get(n["state"]), cot_out, cot_state,
        [(t["name"], shape(t)) for t in m.inputs if t["name"] in given], [(t["name"], shape(t)) for t in m.params], [(t["name"], shape(t)) for t in m.outputs], dtype, device)
    need = ctx.need
    res = []
    for i, t in enumerate(m.inputs):
        res.append(gin[t["name"]] if need[i] and flat[i] is not None else None)
    for j, t in enumerate(m.params):
        i = ni + j
        res.append(gpar[t["name"]] if need[i] and flat[i] is not None else None)
    for j, s in enumerate(m.states):
        i = ni + npar + j
        res.append(dS0.contiguous() if need[i] and flat[i] is not None and s["name"] == n["state"] else None)
    res = res[: len(ctx.needs_input_grad) - ctx.offset]
    return tuple(g.to(x.dtype) if g is not None and g.dtype != x.dtype else g for g, x in zip(res, flat))
