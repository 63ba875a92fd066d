"""The low-rank family's backward in the chunk-state (WY) structure (part of seqc's torch target; copied next to the
generated modules). seqc_chunked_lowrank.lowrank_backward calls it with LR_BWD "wy".

The timeline of seqc_chunked_lowrank (the core's micro-steps behind an identity step, chunks of C steps) and, per chunk
from its start state S_0, with t = 1..C its steps:

    S_t = d_t S_{t-1} + sum_e u_{t,e} (w_{t,e}^T S_{t-1}) + sum_p k_{t,p} v_{t,p}^T,   y_{t,r} = S_t^T q_{t,r}

(d_t = exp(ld_t): no decay or a scalar one; G_t the log decays summed from the chunk start). The low-rank reads
r_{t,e} = S_{t-1}^T w_{t,e} and the pairs are the chunk's events (key kk_f, value vv_f): (u, r) and (k, v). The forward
has made, per chunk: the start state S_0, the reads R (r = x_I S_0 + r_0: x_I [C, E, K] the reads' dependence on the
start state, the chunk transitions' reads from [I | 0]), the transition A_c (S_C = A_c S_0 + B_c) and ChunkCore's keys,
values and decay ratios. With L_t = dL/dS_t (the adjoint after step t, the readouts at t included) and L_end the
adjoint of the chunk's end state from the chunks after it:

    L_f^T z = exp(G_C - G_f) L_end^T z + sum_{t >= f} exp(G_t - G_f) (q_t . z) dy_t + sum_{t > f} exp(G_{t-1} - G_f) (w_t . z) dR_t
    dR_f    = L_f^T u_f  (the reads' adjoints: a transposed unit-lower solve, (I - L_uu^T) dR = P1_u^T dY + U_end L_end)

with P1[t, f] = exp(G_t - G_f) (q_t . kk_f) (f <= t) and P0 / L_uu[t, f] = exp(G_{t-1} - G_f) (w_t . kk_f) (f < t)
ChunkCore's scores. The start state's adjoint is L_0 = A_c^T L_end + B'_c with
B'_c = sum_t exp(G_t) q_t dy_t^T + x_I^T (P1_u^T dY) (the reads' dependence on S_0 through the solve, x_I = T W_dec),
so one reverse walk over the chunks (a K x K by K x V product each) gives every L_end; then per chunk, in parallel:

    dv_f = (L_f^T k_f):  P1_k^T dY + P0_k^T dR + exp(G_C - G_f) L_end^T k_f
    dk_f = L_f v_f, du_f = L_f r_f:  sum_t exp(G_t - G_f) (dy_t . vv_f) q_t + sum_t exp(G_{t-1} - G_f) (dR_t . vv_f) w_t
                                     + exp(G_C - G_f) L_end vv_f
    dq_t = S_t dy_t, dw_t = S_{t-1} dR_t (ChunkCore.read on the value axis, the glue's)
    dld_t = a_C + sum_{s >= t} (q.dq + w.dw - u.du - k.dk)_s - (w.dw)_t,   a_C = <L_end, S_C>  (per key row; summed for a
            scalar decay): a reverse sum inside the chunk only, from <L_t, S_t> = <L_{t-1}, S_{t-1}> + the terms.

Every exponent is a difference G_a - G_b with a >= b.

A per-key decay (RWKV-7; the glue's LR_BWD_KEY "wy"): G_t is a vector over the keys and every score is
(q_t * exp(G_t - G_f)) . kk_f, which the forward's ChunkCore already forms in its per-key way (LR_KEY: recursive halves
through each pair of halves' boundary, or sub-blocks through a block's first time; every exp of a difference <= 0):
P1_u and L_uu are the u columns of core.scores(Q, 1) and core.scores(W, 0), dense per chunk, so P1_u^T dY and the
transposed solve are products as before; exp(G_t) q_t and exp(G_C - G_f) u_f are per key (<= 1). The reversed chunks'
ChunkCore takes the per-key log decays flipped (D_t is diagonal: its transpose is itself), and the log decays'
adjoint is wy_decay's per-key rows (the identity <L_t, S_t> = <L_{t-1}, S_{t-1}> + the terms holds row by row). A
chunk ChunkCore pads (halves: to a power of two) is run padded: zero vectors and zero log decays past its end are
identity steps, so the end state and L_end are the same; the outputs are cut back to the chunk. No kernels: the
"pre" / "dr" kernels (lowrank-wy.ts) and the fused readouts take no per-key decay, so this path is torch ops. Off by
default (LR_BWD_KEY "chain"): on the H200 it is slower than the chain for RWKV-7 (fp32 22.59 -> 24.13 ms, bf16 21.65 ->
23.32 at (8, 2048, 16, 64); one eager step's sections: wy 17.13 ms against the chain's augA, passA, adjoint, fwd and
decay, 14.70). P1_u and L_uu are two more score passes in ChunkCore's halves (six levels of batched products a chunk,
the pairs' columns formed and dropped) and a solve, in torch ops, where the chain's adjoint transitions take the fused
per-key transitions kernel (augA 1.29 ms); the reversed chunks' reads and dw, dq are halves as the chain's are.
"""

import torch


def diagonal_block_inverses(A, rhs, bs):
    """The blocked solves' common start (unit_lower_solve "blocks" in seqc_chunked_lowrank, upper_t_solve below) for A
    [N, n, n] strictly lower triangular, rhs [N, n, V]: A and rhs padded to whole blocks of bs rows (zero rows and
    columns: identity rows of I - A), and the inverses of I - D for the diagonal blocks D by doubling, (I - D)^-1 =
    (I + D)(I + D^2)(I + D^4)... (D^bs = 0). Returns (A, rhs, inv [N, nb, bs, bs], bs, nb, npad)."""
    N, n = A.shape[0], A.shape[1]
    bs = min(bs, n)
    nb = -(-n // bs)
    npad = nb * bs
    if npad != n:
        A = torch.nn.functional.pad(A, (0, npad - n, 0, npad - n))
        rhs = torch.nn.functional.pad(rhs, (0, 0, 0, npad - n))
    D = torch.diagonal(A.view(N, nb, bs, nb, bs), 0, 1, 3).permute(0, 3, 1, 2)  # [N, nb, bs, bs], strictly lower
    inv = torch.eye(bs, dtype=A.dtype, device=A.device) + D
    P = D
    k = 2
    while k < bs:  # D^bs = 0
        P = torch.matmul(P, P)
        inv = torch.baddbmm(inv.reshape(N * nb, bs, bs), inv.reshape(N * nb, bs, bs), P.reshape(N * nb, bs, bs)).view(N, nb, bs, bs)
        k *= 2
    return A, rhs, inv, bs, nb, npad


def upper_t_solve(A, rhs, bs=16):
    """X with (I - A^T) X = rhs for A [N, n, n] strictly lower triangular (an upper system), rhs [N, n, V]: the diagonal
    blocks of bs rows inverted by doubling as seqc_chunked_lowrank.unit_lower_solve does, (I - D)^-1 = (I + D)(I + D^2)
    ..., then a block back substitution with A's blocks read transposed (no copies of A)."""
    n = A.shape[1]
    A, rhs, inv, bs, nb, npad = diagonal_block_inverses(A, rhs, bs)
    X = torch.empty_like(rhs)
    for i in range(nb - 1, -1, -1):
        lo, hi = i * bs, (i + 1) * bs
        r = rhs[:, lo:hi]
        if hi < npad:
            r = torch.baddbmm(r, A[:, hi:, lo:hi].transpose(1, 2), X[:, hi:])
        X[:, lo:hi] = torch.matmul(inv[:, i].transpose(1, 2), r)
    return X[:, :n]


def revcumsum(x, dim):
    """sum_{s >= t} x_s along dim."""
    return torch.flip(torch.cumsum(torch.flip(x, [dim]), dim), [dim])


def flip_next(x):
    """[N, C, ...] -> y with y[:, j] = x[:, C - j] (j >= 1), y[:, 0] = 0: the chunk reversed, each slot holding the next
    step's value (zero past the chunk's end)."""
    y = torch.empty_like(x)
    y[:, 0] = 0
    y[:, 1:] = torch.flip(x[:, 1:], [1])
    return y


def wy_backward(core, xI, A, ld, W, Q, DY, dS, S_ends, bhc, unbhc, chunk_core, walk=None, kern=None, lean=False, rev=False, ev=None):
    """The chunk-state backward's reverse walk and per-chunk adjoints (module docstring).

    core: the forward's ChunkCore from the chunk start states (N rows = chunks x heads; C = Cp but for a per-key decay);
    xI [N, C, E, K]: the low-rank reads' dependence on the start state; A [B, H, nC, K, K]: the chunk transitions;
    ld [N, C, 1] / [N, C, K] (per key) or None: the steps' log decays; W [N, C, E, K]: the low-rank queries; Q [N, C, R, K]: the readouts'
    queries; DY [N, C, R, V]: their cotangents; dS [B, H, K, V]: the final state's cotangent; S_ends [B, H, nC, K, V]:
    each chunk's end state, or a pair (starts [B, H, nC, K, V], last [B, H, K, V]): the end states as the next chunks'
    start states and the last (no copy; read only for a decay's a0); bhc(x [N, ...]) -> [B, H, nC, ...] and unbhc its
    inverse (the rows' order);
    chunk_core(S0, ld, pairs): a ChunkCore of the glue's (its readouts' launcher) without low-rank pairs; walk(B', dS):
    the reverse walk by a kernel, (L_end [B, H, nC, K, V], L_0) or None where it has none (None: torch products);
    kern: the per-chunk kernels' launcher (seqc_chunked_lowrank.wy_launcher: "pre" P1_u^T dY and B', "dr" the reads'
    adjoints; None: torch products); lean (seqc_chunked_lowrank LR_COPIES "lean"): the reversed chunks' events built
    as two stacked tensors, each one copy per source and one flip (chunk_core then takes them as `events`), the reads
    of the forward's events flipped as one stacked tensor and their outputs flipped back as one, no single-vector
    stacks; False: a flip per vector and ChunkCore's stacks (the way before; the same values). rev (with lean, no per-key
    decay; seqc_chunked_lowrank LR_REV_READ "kernel"): none of those flips: the events stay in the chunk's order and the
    reversed chunks' core reads them, the forward's events and its outputs backwards (ChunkCore.read_rev: the fused
    readouts' rev argument, or its flips where no kernel takes a read); the same values.
    Returns {"dR" [N, C, E, V], "dv" [N, C, P, V], "dk" [N, C, P, K], "du" [N, C, E, K], "dS0" [B, H, K, V],
    "a0" [N, K] (<L_end, S_C> per key row)}.

    The adjoints L_f read by the events' vectors run as one more ChunkCore, on each chunk reversed: from L_end, with the
    events (q_s, dy_s) and (w_{s+1}, dR_{s+1}) at step s (the next step's low-rank pair, zero at the chunk's end; its
    decay exp(G_s - G_f) is the next step's), the next step's log decay: L_f = that core's state after the reversed step
    of f, dv = L_f^T k (key axis), du = L_f r, dk = L_f v (value axis), both read after the step."""
    N, C, mk, K, V = core.N, core.C, core.mk, core.K, core.V
    key = core.mode == "key"
    if not key and core.Cp != C:
        raise ValueError("wy_backward: a chunk padded only with a per-key decay (ChunkCore mode %r, Cp %d, C %d)" % (core.mode, core.Cp, C))
    C0 = C
    if key and core.Cp != C:  # run as the padded chunk: zero vectors and log decays past its end (identity steps)
        C = core.Cp

        def padc(x):
            if x is None:
                return None
            y = torch.zeros([x.shape[0], C] + list(x.shape[2:]), dtype=x.dtype, device=x.device)
            y[:, :C0] = x
            return y
        xI, W, Q, DY, ld = padc(xI), padc(W), padc(Q), padc(DY), padc(ld)
    E, R = xI.shape[2], Q.shape[2]
    P = mk - E
    U = core.KK[:, :, :E]  # [N, C, E, K]: the low-rank pairs' keys
    if core.mode == "scalar":
        g = core.G[:, :, 0]  # [N, C + 1]
        Qd = Q * torch.exp(g[:, 1:])[:, :, None, None]  # exp(G_t) q_t
        Ud = U * torch.exp(g[:, C : C + 1] - g[:, 1:])[:, :, None, None]  # exp(G_C - G_f) u_f
    elif key:  # per key: exp(G_t) q_t and exp(G_C - G_f) u_f elementwise over the keys
        g = core.G  # [N, C + 1, K]
        Qd = Q * torch.exp(g[:, 1:])[:, :, None]
        Ud = U * torch.exp(g[:, C : C + 1] - g[:, 1:])[:, :, None]
    else:
        Qd, Ud = Q, U
    DYf = DY.reshape(N, C * R, V)
    Uf = U.reshape(N, C * E, K)
    G = core.G if core.mode == "scalar" else None
    one = E == 1 and R == 1 and kern is not None and not key  # the kernels take no per-key decay
    pre = kern("pre", C, K, V, core.mode, Q[:, :, 0], U[:, :, 0], DY[:, :, 0], xI[:, :, 0], G) if one else None
    if pre is not None:  # the kernel: BQ [N, C, V], BP [N, K, V]
        Bqu, Bp = pre
    else:
        # the readouts' part of the reads' adjoints: P1_u^T dY, P1[t, f] = exp(G_t - G_f) (q_t . u_f), f <= t
        if key:  # the forward core's per-key scores, their u columns
            P1 = core.scores(Q, 1)
            P1 = P1.view(N, C * R, C, mk)[..., :E].reshape(N, C * R, C * E) if P else P1
        else:
            P1 = (torch.bmm(Q.reshape(N, C * R, K), Uf.transpose(1, 2)).view(N, C, R, C, E) * core.ratio(1)[:, :, None, :, None]).view(N, C * R, C * E)
        Bqu = torch.bmm(P1.transpose(1, 2), DYf)  # [N, C E, V]
        # B'_c: the start state's adjoint from the chunk's own readouts (directly and through the reads' solve)
        Bp = torch.bmm(Qd.reshape(N, C * R, K).transpose(1, 2), DYf)
        Bp = torch.baddbmm(Bp, xI.reshape(N, C * E, K).transpose(1, 2), Bqu)
    # the reverse walk: L_0 = A_c^T L_end + B'_c, the next chunk's L_end
    Bp = bhc(Bp)  # [B, H, nC, K, V]
    nC = Bp.shape[2]
    walked = walk(Bp, dS) if walk is not None else None
    if walked is not None:
        Lend, dS0 = walked
    else:
        Lend = torch.empty_like(Bp)
        L = dS
        for c in range(nC - 1, -1, -1):
            Lend[:, :, c] = L
            L = torch.baddbmm(Bp[:, :, c].reshape(-1, K, V), A[:, :, c].reshape(-1, K, K).transpose(1, 2), L.reshape(-1, K, V)).view(L.shape)
        dS0 = L
    a0 = None
    if core.mode != "none" and isinstance(S_ends, tuple):  # the end states: the next chunks' starts, then the last
        starts, last = S_ends
        a0 = torch.empty(list(Lend.shape[:4]), dtype=Lend.dtype, device=Lend.device)  # [B, H, nC, K]
        a0[:, :, :-1] = (Lend[:, :, :-1] * starts[:, :, 1:]).sum(-1)
        a0[:, :, -1] = (Lend[:, :, -1] * last).sum(-1)
    elif core.mode != "none":
        a0 = (Lend * S_ends).sum(-1)  # [B, H, nC, K]
    Lend = unbhc(Lend)  # [N, K, V]
    # the reads' adjoints: (I - L_uu^T) dR = P1_u^T dY + U_end L_end, L_uu[t, f] = exp(G_{t-1} - G_f) (w_t . u_f), f < t
    dR = kern("dr", C, K, V, core.mode, W[:, :, 0], U[:, :, 0], Bqu.reshape(N, C, V), Lend, G) if pre is not None else None
    if dR is not None:
        dR = dR.view(N, C, E, V)
    else:
        rhs = torch.baddbmm(Bqu.reshape(N, C * E, V), Ud.reshape(N, C * E, K), Lend)
        if key:
            Luu = core.scores(W, 0)
            Luu = Luu.view(N, C * E, C, mk)[..., :E].reshape(N, C * E, C * E) if P else Luu
        else:
            Luu = (torch.bmm(W.reshape(N, C * E, K), Uf.transpose(1, 2)).view(N, C, E, C, E) * core.ratio(0)[:, :, None, :, None]).view(N, C * E, C * E)
        dR = upper_t_solve(Luu, rhs).view(N, C, E, V)
    # L_f's reads: one ChunkCore on the reversed chunks from L_end
    VV, KK = core.VV[:, :C], core.KK[:, :C]
    if lean:
        # the events (q_s, dy_s) then (w_{s+1}, dR_{s+1}) in the chunk's order, copied once into [N, C, R + E, w], then
        # one flip of each: the reversed chunks' keys and values as ChunkCore takes them (no per-vector flips or stacks)
        if ev is not None:  # (evK, evV, dy): the stacks made by the glue, Q (and with dy DY) their first R slots already
            evK, evV, dy = ev
            if tuple(evK.shape) != (N, C, R + E, K) or tuple(evV.shape) != (N, C, R + E, V) or not evK.is_contiguous() or not evV.is_contiguous() or \
                    Q.data_ptr() != evK.data_ptr() or Q.stride() != evK[:, :, :R].stride() or (dy and (DY.data_ptr() != evV.data_ptr() or DY.stride() != evV[:, :, :R].stride())):
                raise ValueError("wy_backward: ev must be [N, C, R + E, K] and [N, C, R + E, V] stacks with Q (and DY) as their first R slots")
            if not dy:
                evV[:, :, :R] = DY
        else:
            evK = torch.empty([N, C, R + E, K], dtype=Q.dtype, device=Q.device)
            evV = torch.empty([N, C, R + E, V], dtype=Q.dtype, device=Q.device)
            evK[:, :, :R] = Q
            evV[:, :, :R] = DY
        evK[:, : C - 1, R:] = W[:, 1:]
        evV[:, : C - 1, R:] = dR[:, 1:]
        evK[:, C - 1, R:] = 0
        evV[:, C - 1, R:] = 0
        if rev and not key:  # read backwards where they are: no flips (ChunkCore.read_rev)
            rc = chunk_core(Lend, flip_next(ld) if ld is not None else None, [(evK[:, :, i], evV[:, :, i]) for i in range(R + E)], events=(evK, evV))
            vals = rc.read_rev("value", True, VV)[:, :C0]  # [N, C0, mk, K]: du (the reads r), dk (the values v)
            keys = rc.read_rev("key", True, KK[:, :, E:])[:, :C0] if P else None  # dv
            return {"dR": dR[:, :C0], "dS0": dS0, "a0": unbhc(a0) if a0 is not None else None, "du": vals[:, :, :E], "dk": vals[:, :, E:] if P else None, "dv": keys}
        evK, evV = torch.flip(evK, [1]), torch.flip(evV, [1])
        rc = chunk_core(Lend, flip_next(ld) if ld is not None else None, [(evK[:, :, i], evV[:, :, i]) for i in range(R + E)], events=(evK, evV))
        vals = rc.read_stacked("value", True, torch.flip(VV, [1]))[:, :C]  # [N, C, mk, K] reversed: du (the reads r), dk (the values v)
        vals = torch.flip(vals, [1])[:, :C0]
        keys = torch.flip(rc.read_stacked("key", True, torch.flip(KK[:, :, E:], [1]))[:, :C], [1])[:, :C0] if P else None  # dv
        return {"dR": dR[:, :C0], "dS0": dS0, "a0": unbhc(a0) if a0 is not None else None, "du": vals[:, :, :E], "dk": vals[:, :, E:] if P else None, "dv": keys}
    rc = chunk_core(Lend, flip_next(ld) if ld is not None else None,
                    [(torch.flip(Q[:, :, r], [1]), torch.flip(DY[:, :, r], [1])) for r in range(R)] + [(flip_next(W[:, :, e]), flip_next(dR[:, :, e])) for e in range(E)])
    vals = rc.read("value", True, [torch.flip(VV[:, :, i], [1]) for i in range(mk)])  # du (the reads r), dk (the values v)
    keys = rc.read("key", True, [torch.flip(KK[:, :, E + p], [1]) for p in range(P)])  # dv

    def back(xs):  # [N, C, m, w] in the chunk's order
        return torch.flip(xs[0].unsqueeze(2) if len(xs) == 1 else torch.stack(xs, 2), [1])[:, :C0] if xs else None
    return {"dR": dR[:, :C0], "dS0": dS0, "a0": unbhc(a0) if a0 is not None else None, "du": back(vals[:E]), "dk": back(vals[E:]), "dv": back(keys)}

def wy_decay(a0, Q, dQ, W, dW, KK, dKK, scalar):
    """The log decays' adjoint per chunk [N, C, 1] (scalar) or [N, C, K]: a0 [N, K] (<L_end, S_C> per key row),
    Q / dQ [N, C, R, K] the readouts' queries and dq, W / dW [N, C, E, K] the low-rank queries and dw, KK / dKK
    [N, C, mk, K] the events' keys (u, k) and their adjoints (du, dk)."""
    wdw = (W * dW).sum(2)
    terms = (Q * dQ).sum(2) + wdw - (KK * dKK).sum(2)  # [N, C, K]
    if scalar:
        return a0.sum(1)[:, None, None] + revcumsum(terms.sum(2, keepdim=True), 1) - wdw.sum(2, keepdim=True)
    return a0[:, None] + revcumsum(terms, 1) - wdw
