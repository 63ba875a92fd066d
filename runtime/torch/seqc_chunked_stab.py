"""The chunked backward's glue for stabilised forms and value columns, in torch ops (part of seqc's torch target;
copied next to the generated modules).

runtime/chunked-backward.ts (chainBackward) with runtime/chunked-backward-stab.ts on the device, for a chain whose
names carry a max-plus stabiliser ("stab": mLSTM's m) or value columns ("columns": mLSTM's normaliser n): the same
parts as seqc_chunked.py's chain (`chain:<part>` plans: prep, the four cores at value extent V0 + NC, post's and
prep's backward, the decay scan's algebra) plus the stabiliser's prep and its backward (parts "stab", "stabBw"), and
between them torch ops:
  pass      m_t = max(a_t + m_{t-1}, b_t) over all tokens at once in float64: m_t = A_t + max(m_{-1}, cummax_s<=t
            (b_s - A_s)), A the cumulative sum of a (the same max-plus recurrence as the host loop, no loop over T);
            prep and post read m_t and m_{t-1} as the pseudo inputs names["stab"]["mT"] / ["mPrev"], the cores start
            from the given state times exp(m_{-1} - m^);
  columns   each pair's value vector with its column values appended, each readout's cotangent with its column
            reads', the cores' outputs split back;
  adjoint   the stabiliser's adjoint in reverse time, also without a loop over T: mbar_t = e_t + [a-branch at t+1]
            mbar_{t+1} is a reverse sum restarted after every b-branch (a reverse cumulative minimum finds each
            token's next restart), float64; with the frame route (names["stab"]["frame"]) m_t's core adjoint is
            -sum_r <y_r, dy_r> (and -<dS_N, S_N> at the last token), else prep's adjoints of m_t and m_{t-1};
  decay     the log decays' adjoint a reverse cumulative sum of q.dq - k.dk from <dS_N, S_N> (seqc_chunked DECAY_WAY
            "torch", unanchored);
and the pieces' sums (seqc_chunked.sum_pieces). The chain's models run as compiler/grad builds them (no prep copies
left to the glue, no bf16 twins): bf16 tensors run it in float32 and get their gradients back in their own dtype.
seqc's tests run this on CPU torch with the float64 interpreter as `run` (test/torch-chunked-stab.test.ts).
"""

import torch

try:
    from . import seqc_chunked as _chunked
    from . import seqc_graphs as _graphs
except ImportError:  # loaded as a top-level module (the output directory on sys.path)
    import seqc_chunked as _chunked
    import seqc_graphs as _graphs

# Whether the backward runs as a CUDA graph per signature (seqc_graphs.graphed; m.graphs False or
# SEQC_TORCH_GRAPHS=0: eagerly every call).
STAB_GRAPHS = True


def applies(n):
    """Whether chain names `n` need this glue: a stabiliser or value columns."""
    return bool(n.get("stab")) or bool((n.get("columns") or {}).get("states"))


def declared(v):
    """A declared initial value as the names carry it (a number, or "Infinity" / "-Infinity" / "NaN")."""
    return float(v)


def stab_forward(a, b, m0):
    """The stabiliser's pass: a, b [B, T, H], m0 [B, H] (its initial value). Returns (m_t, m_{t-1} [B, T, H] with
    m^ = m_0 - a_0 at t = 0, log_scale [B, H] = m_{-1} - m^, final [B, H]), float64."""
    a, b, m0 = a.to(torch.float64), b.to(torch.float64), m0.to(torch.float64)
    A = torch.cumsum(a, 1)
    mt = A + torch.maximum(torch.cummax(b - A, 1).values, m0[:, None, :])
    mp = torch.cat([(mt[:, :1] - a[:, :1]), mt[:, :-1]], 1)
    return mt, mp, m0 - mp[:, 0], mt[:, -1]


def stab_backward(a, b, m0, mt, e, final, scale):
    """The stabiliser's adjoint: a, b [B, T, H], m0 [B, H], mt from stab_forward; e [B, T, H] the adjoint reaching m_t
    from the pieces (m_t's, and m_{t+1}'s previous-value adjoint at t), final dL/dm_T [B, H] or None, scale <dS^, S^>
    [B, H]. Returns (a's adjoint, b's adjoint [B, T, H], the initial m's [B, H]), float64. Per (b, h), in reverse time:
    g = final; g += e_t; a-branch at t (a_t + m_{t-1} >= b_t): a_bar_t = g, else b_bar_t = g and g = 0; initial = g +
    scale. As sums: with e_T = final (always carried into T - 1), mbar_t = sum_{s = t}^{r_t - 1} e_s, r_t the first
    index after t whose token took the b-branch (T + 1 if none)."""
    a, b, m0, e = a.to(torch.float64), b.to(torch.float64), m0.to(torch.float64), e.to(torch.float64)
    B, T, H = a.shape
    prev = torch.cat([m0[:, None, :], mt[:, :-1]], 1)
    alpha = (a + prev >= b).to(torch.float64)
    fin = final.to(torch.float64).reshape(B, 1, H) if final is not None else torch.zeros([B, 1, H], dtype=torch.float64, device=a.device)
    ee = torch.cat([e, fin], 1)  # [B, T + 1, H]
    al = torch.cat([alpha, torch.ones([B, 1, H], dtype=torch.float64, device=a.device)], 1)
    R = torch.flip(torch.cumsum(torch.flip(ee, [1]), 1), [1])  # R_t = sum_{s >= t} e_s
    Rp = torch.cat([R, torch.zeros([B, 1, H], dtype=torch.float64, device=a.device)], 1)  # R_{T + 1} = 0
    pos = torch.arange(T + 1, device=a.device).reshape(1, T + 1, 1).expand(B, T + 1, H)
    idx = torch.where(al == 0, pos, torch.full_like(pos, T + 1))
    nxt = torch.flip(torch.cummin(torch.flip(idx, [1]), 1).values, [1])  # min over r >= t of the restarts
    r = torch.cat([nxt[:, 1:], torch.full([B, 1, H], T + 1, dtype=nxt.dtype, device=a.device)], 1)[:, :T]  # first after t
    h = R[:, :T] - torch.gather(Rp, 1, r)
    return alpha * h, (1 - alpha) * h, alpha[:, 0] * h[:, 0] + scale.to(torch.float64)


def stab_chain_backward(n, run, B, T, state_shape, given, init_states, cot_outputs, cot_states, inputs, params, outputs, dtype, device, break_term=None):
    """Gradients of the forward's inputs, params and every state's initial value through the chain of a stabilised
    form or one with value columns (runtime/chunked-backward.ts chainBackward).

    n: the chain's names (<Model>.torch.json "chunked".names); run(part, dims, inputs, initial_state, B, T) -> (outputs,
    final states) runs plan chain:<part> (dims None: the model's dims and params; the stateless parts, prep, post's and
    prep's backward, "stab" and "stabBw", get [B*T, 1]); given: the forward's inputs [B, T, ...]; init_states {state:
    [B, ...]} (absent: declared); cot_outputs {output: dL/d output or None}; cot_states {state: dL/d final or None};
    inputs / params / outputs: [(name, per-step shape)]. break_term: a term left out, for the tests only ("frame":
    frame_bar's <dS_N, S_N>, "scale": the initial state's scale adjoint, "columns": the readouts' column cotangents).
    Returns ({input: grad}, {param: grad}, {state: grad of its initial value}: the matrix state [B, *state_shape], a
    column [B, H*K], the stabiliser [B, H])."""
    cd = _chunked.chain_dims(n, state_shape)
    H, K, V0 = cd["H"], cd["K"], cd["V"]
    cols = n.get("columns") or None
    NC = len(cols["states"]) if cols else 0
    V = V0 + NC
    cdims = {"H": H, "K": K, "V": V}
    per_key = n["decay"] == "key"
    L = H * K if per_key else H
    heads = [1 + a for a in n["heads"]]
    perm = [0] + heads + [1 + n["key"], 1 + n["value"]]

    def zeros(shape):
        return torch.zeros(shape, dtype=dtype, device=device)

    def canon(S, cs, transpose, log_scale=None):
        """The matrix state [B, *state_shape] and the columns [B, H*K] each -> canonical [B, H*K*V] (columns at values
        V0.., transposed [B, H, V, K]), each (b, h) slice times exp(log_scale) where given; None reads 0."""
        x = torch.permute(S, perm).reshape(B, H, K, V0) if S is not None else zeros([B, H, K, V0])
        if NC:
            x = torch.cat([x] + [(c.reshape(B, H, K, 1) if c is not None else zeros([B, H, K, 1])) for c in cs], 3)
        if log_scale is not None:
            x = x * torch.exp(log_scale).to(dtype).reshape(B, H, 1, 1)
        if transpose:
            x = torch.transpose(x, 2, 3)
        return x.reshape(B, H * K * V)

    def with_cols(v, cs):  # [B, T, H*V0] values and [B, T, H] columns -> [B, T, H*V]
        if not NC:
            return v.reshape(B, T, H * V0)
        parts = [v.reshape(B, T, H, V0)] + [(c.reshape(B, T, H, 1) if c is not None else zeros([B, T, H, 1])) for c in cs]
        return torch.cat(parts, 3).reshape(B, T, H * V)

    def split_cols(y):  # [B, T, H*V] -> ([B, T, H*V0], [[B, T, H]] per column)
        if not NC:
            return y.reshape(B, T, H * V0), []
        y4 = y.reshape(B, T, H, V)
        return y4[:, :, :, :V0].reshape(B, T, H * V0), [y4[:, :, :, V0 + k] for k in range(NC)]

    def pointwise(part, ins):  # a stateless part over [B*T, 1] (seqc_chunked.py pointwise)
        folded = {k: v.reshape([B * T, 1] + list(v.shape[2:])) for k, v in ins.items() if v is not None}
        return {k: v.reshape([B, T] + list(v.shape[2:])) for k, v in run(part, None, folded, {}, B * T, 1)[0].items()}

    def flip(x):
        return torch.flip(x, [1])

    st = n.get("stab")
    S0 = init_states.get(n["state"])
    if S0 is None:
        S0 = zeros([B] + list(state_shape)) + declared(n["stateInit"])
    dS = cot_states.get(n["state"])
    C0 = [init_states.get(c) if init_states.get(c) is not None else zeros([B, H * K]) + declared(cols["inits"][k]) for k, c in enumerate(cols["states"])] if NC else []
    dC = [cot_states.get(c) for c in cols["states"]] if NC else []
    has_cot = dS is not None or any(c is not None for c in dC)

    # the stabiliser: a, b from its prep, the pass in float64; m_t and m_{t-1} are prep's and post's pseudo inputs
    ab, sf, m0, g_in = None, None, None, dict(given)
    if st:
        ab = pointwise("stab", given)
        sa, sb = ab[st["a"]].reshape(B, T, H), ab[st["b"]].reshape(B, T, H)
        m0 = init_states.get(st["state"])
        m0 = m0.reshape(B, H) if m0 is not None else torch.full([B, H], declared(st["init"]), dtype=torch.float64, device=device)
        sf = stab_forward(sa, sb, m0)
        g_in[st["mT"]] = sf[0].to(dtype)
        g_in[st["mPrev"]] = sf[1].to(dtype)
    log_scale = sf[2] if sf is not None else None

    prep = pointwise("prep", g_in)
    ld = prep[n["ld"]].reshape(B, T, L) if n.get("ld") else None
    kv, qs = {}, {}
    for i, p in enumerate(n["pairs"]):
        kv["x_k%d" % i] = prep[p["k"]].reshape(B, T, H * K)
        pc = (cols["pairs"][i] or []) if NC else []
        kv["x_v%d" % i] = with_cols(prep[p["v"]], [prep.get(c) for c in pc] + [None] * (NC - len(pc)))
    for i, r in enumerate(n["readouts"]):
        qs["x_q%d" % i] = prep[r["q"]].reshape(B, T, H * K)

    def with_ld(t, l):
        return dict(t, x_ld=l) if l is not None else t
    Sinit = canon(S0, C0, False, log_scale)

    # forward core: y for post, S_N for the decay adjoint's start
    core_out, core_fin = run("core", cdims, with_ld(dict(kv, **qs), ld), {"S": Sinit}, B, T)

    # post's backward: dL/dy (and the column reads') and post's own contributions
    post_in = dict(g_in)
    for i, r in enumerate(n["readouts"]):
        yv, yc = split_cols(core_out["o_y%d" % i])
        post_in[r["y"]] = yv
        for k, c in enumerate(cols["readouts"][i] if NC else []):
            post_in[c] = yc[k]
    for name, shape in outputs:
        g = cot_outputs.get(name)
        post_in[n["postBw"]["outputBar"][name]] = g if g is not None else zeros([B, T] + list(shape))
    post_g = pointwise("postBw", post_in)
    ib = n["postBw"]["inputBar"]
    dys = {}
    for i, r in enumerate(n["readouts"]):
        rc = cols["readouts"][i] if NC else []
        dys["x_dy%d" % i] = with_cols(post_g[ib[r["y"]]], [None if break_term == "columns" else post_g.get(ib.get(c)) for c in rc] + [None] * (NC - len(rc)))

    # dq = S dy (the transposed core, forward time)
    coret = run("coreT", cdims, with_ld(dict(kv, **dys), ld), {"S": canon(S0, C0, not per_key, log_scale)}, B, T)[0]

    # the adjoint in reversed time: token t's decay moved to t - 1 (none after the last), then reversed
    ldn = None
    if ld is not None:
        shifted = torch.cat([ld[:, 1:], torch.zeros_like(ld[:, :1])], 1)
        ldn = flip(shifted)
    r_in = {k: flip(a) for k, a in list(qs.items()) + list(kv.items()) + list(dys.items())}
    adj_out, adj_fin = run("adjoint", cdims, with_ld(r_in, ldn), {"G": canon(dS, dC, False)}, B, T)
    adjt = run("adjointT", cdims, with_ld(r_in, ldn), {"G": canon(dS, dC, not per_key)}, B, T)[0]

    # the adjoints of prep's outputs
    bars = {}

    def add(name, g):
        bars[name] = g if name not in bars else bars[name] + g
    for i, p in enumerate(n["pairs"]):
        bars[p["k"]] = flip(adjt["o_dk%d" % i].reshape(B, T, H * K))
        dv, dc = split_cols(flip(adj_out["o_dv%d" % i].reshape(B, T, H * V)))
        add(p["v"], dv)
        for k, c in enumerate((cols["pairs"][i] or []) if NC else []):
            add(c, dc[k])
    for i, r in enumerate(n["readouts"]):
        bars[r["q"]] = coret["o_dq%d" % i].reshape(B, T, H * K)
    SN = core_fin["S"].reshape(B, H * K * V)
    dSc = canon(dS, dC, False) if has_cot else None
    if ld is not None:
        # dld_t = <dS_N, S_N> + sum_{s >= t} (q_s . dq_s - k_s . dk_s), per head (per key row: unsummed)
        def dot(x, y):
            return x * y if per_key else (x * y).reshape(B, T, H, K).sum(3)
        terms = None
        for i, r in enumerate(n["readouts"]):
            t_ = dot(qs["x_q%d" % i], bars[r["q"]])
            terms = t_ if terms is None else terms + t_
        for i, p in enumerate(n["pairs"]):
            terms = terms - dot(kv["x_k%d" % i], bars[p["k"]])
        a0 = zeros([B, L])
        if dSc is not None:
            a0 = (dSc * SN).reshape(B, H, K, V).sum(3)
            a0 = a0.reshape(B, H * K) if per_key else a0.sum(2)
        bars[n["ld"]] = flip(torch.cumsum(flip(terms.reshape(B, T, L)), 1)) + a0.reshape(B, 1, L)

    # dS_0 = D_1 G_1, back in the model's layout (stabilised: times the initial state's scale; <dS^, S^> is the initial
    # m's adjoint through that scale)
    g1 = adj_fin["G"].reshape(B, H, K, V)
    if ld is not None:
        g1 = g1 * torch.exp(ld[:, 0].reshape(B, H, K, 1) if per_key else ld[:, 0].reshape(B, H, 1, 1))
    scale_bar = (g1 * Sinit.reshape(B, H, K, V)).sum((2, 3)) if sf is not None else None
    if sf is not None:
        g1 = g1 * torch.exp(log_scale).to(dtype).reshape(B, H, 1, 1)
    inv = [perm.index(x) for x in range(len(perm))]
    initial = {n["state"]: torch.permute(g1[:, :, :, :V0].reshape([B] + [state_shape[x - 1] for x in perm[1:]]), inv)}
    for k, c in enumerate(cols["states"] if NC else []):
        initial[c] = g1[:, :, :, V0 + k].reshape(B, H * K)

    # prep's backward
    prep_in = dict(g_in)
    for o in n["prepOutputs"]:
        b_ = bars.get(o)
        prep_in[n["prepBw"]["outputBar"][o]] = b_.reshape(prep[o].shape) if b_ is not None else torch.zeros_like(prep[o])
    prep_g = pointwise("prepBw", prep_in)
    pieces = [(post_g, n["postBw"]), (prep_g, n["prepBw"])]

    if st:
        # the stabiliser's adjoint, then its prep's backward
        fb = None
        if st.get("frame"):
            fb = zeros([B, T, H])
            for i in range(len(n["readouts"])):
                fb = fb - (core_out["o_y%d" % i].reshape(B, T, H, V) * dys["x_dy%d" % i].reshape(B, T, H, V)).sum(3)
            if dSc is not None and break_term != "frame":
                fb = torch.cat([fb[:, :-1], fb[:, -1:] - (dSc * SN).reshape(B, 1, H, K * V).sum(3)], 1)
        e = torch.zeros([B, T, H], dtype=torch.float64, device=device)
        for x in (post_g.get(ib.get(st["mT"])), fb if fb is not None else prep_g.get(n["prepBw"]["inputBar"].get(st["mT"]))):
            if x is not None:
                e = e + x.reshape(B, T, H).to(torch.float64)
        mprev = None if fb is not None else prep_g.get(n["prepBw"]["inputBar"].get(st["mPrev"]))
        if mprev is not None and T > 1:  # m_{t+1}'s previous-value adjoint reaches m_t (the first token's m^ is free)
            e = e + torch.cat([mprev.reshape(B, T, H)[:, 1:].to(torch.float64), torch.zeros([B, 1, H], dtype=torch.float64, device=device)], 1)
        fin = cot_states.get(st["state"])
        scale = scale_bar if break_term != "scale" else torch.zeros_like(scale_bar)
        a_bar, b_bar, m_bar = stab_backward(sa, sb, m0, sf[0], e, fin.reshape(B, H) if fin is not None else None, scale)
        stab_in = dict(given)
        stab_in[st["stabBw"]["outputBar"][st["a"]]] = a_bar.to(dtype).reshape(ab[st["a"]].shape)
        stab_in[st["stabBw"]["outputBar"][st["b"]]] = b_bar.to(dtype).reshape(ab[st["b"]].shape)
        pieces.append((pointwise("stabBw", stab_in), st["stabBw"]))
        initial[st["state"]] = m_bar.to(dtype)

    gin, gpar = _chunked.sum_pieces(pieces, B, T, inputs, params, zeros)
    return gin, gpar, initial


def backward(ctx, m, flat, grads):
    """The body of a seqc Function's backward through the stabilised chain (ctx from seqc_torch.forward with
    ctx.chunked; flat: the saved (*inputs, *params, *initial states), None where absent): gradients as
    seqc_torch.backward returns them. On CUDA with STAB_GRAPHS a CUDA graph per signature (seqc_graphs.graphed)."""
    if not STAB_GRAPHS:
        return backward_eager(ctx, m, flat, grads)
    return _graphs.graphed_backward(ctx, m, "stab-backward", (tuple(g is not None for g in grads),) + _chunked.stateless_switches(), flat, grads,
                                     lambda f, g: backward_eager(ctx, m, f, g, convert=False))


def backward_eager(ctx, m, flat, grads, convert=True):
    """backward without a graph; convert=False leaves the gradients in the compute dtype (float32 for bf16 tensors)."""
    B, T, dims, dtype, device = ctx.B, ctx.T, ctx.dims, ctx.dtype, ctx.device
    n = m.chunked["names"]
    ni, npar = len(m.inputs), len(m.params)
    given, pars, sts, prefix = _graphs.saved_by_name(m, flat, dtype)

    def form(part, key, cdims, b, t):
        if cdims is None and dtype == torch.float32 and getattr(device, "type", None) == "cuda":
            return _chunked.stateless_form(m.runner(key, device), dims, b, t)
        return "auto"
    run = _graphs.chain_runner(m, prefix, dims, pars, dtype, device, form)

    def shape(t):
        return [_chunked._cuda.eval_size(s, dims) for s in t["shape"]]
    state = next(s for s in m.states if s["name"] == n["state"])
    no = len(m.outputs)
    cot_out = {t["name"]: (g.to(dtype) if g is not None else None) for t, g in zip(m.outputs, grads[:no])}
    cot_states = {s["name"]: g.to(dtype) for s, g in zip(m.states, grads[no:]) if g is not None}
    gin, gpar, initial = stab_chain_backward(
        n, run, B, T, shape(state), given, sts, cot_out, cot_states,
        [(t["name"], shape(t)) for t in m.inputs if t["name"] in given], [(t["name"], shape(t)) for t in m.params], [(t["name"], shape(t)) for t in m.outputs], dtype, device)
    need = ctx.need
    res = []
    for i, t in enumerate(m.inputs):
        res.append(gin[t["name"]] if need[i] and flat[i] is not None else None)
    for j, t in enumerate(m.params):
        i = ni + j
        res.append(gpar[t["name"]].to(flat[i].dtype) if need[i] and flat[i] is not None else None)
    for j, s in enumerate(m.states):
        i = ni + npar + j
        g = initial.get(s["name"])
        res.append((g.reshape(flat[i].shape).contiguous() if g is not None else torch.zeros_like(flat[i], dtype=dtype)) if need[i] and flat[i] is not None else None)
    given_n = len(ctx.needs_input_grad) - ctx.offset
    res = res[:given_n]
    if convert and getattr(ctx, "given_dtype", dtype) != dtype:  # bf16 tensors: gradients computed in float32, returned in each tensor's dtype
        res = [g.to(x.dtype) if g is not None else None for g, x in zip(res, flat)]
    return tuple(res)
