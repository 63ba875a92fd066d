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

Every exponent is a difference G_a - G_b with a >= b. A per-key decay is not here (its reverse mixes need the halves
of ChunkCore in the other direction): the glue keeps the chain for it.
"""

import torch


def rev_solve(A, rhs, solve):
    """X with (I - A^T) X = rhs for A [N, n, n] strictly lower triangular (an upper system): the lower one in reversed
    order, solve(A', rhs') the glue's unit-lower solve."""
    return solve(A.transpose(1, 2).flip(1).flip(2).contiguous(), rhs.flip(1).contiguous()).flip(1)


def revcumsum(x, dim):
    """sum_{s >= t} x_s along dim."""
    return torch.flip(torch.cumsum(torch.flip(x, [dim]), dim), [dim])


def wy_backward(core, xI, A, W, Q, DY, dS, S_ends, bhc, unbhc, solve):
    """The chunk-state backward's reverse walk and per-chunk adjoints (module docstring).

    core: the forward's ChunkCore from the chunk start states (N rows = chunks x heads, no or a scalar decay, C = Cp);
    xI [N, C, E, K]: the low-rank reads' dependence on the start state; A [B, H, nC, K, K]: the chunk transitions;
    W [N, C, E, K]: the low-rank queries; Q [N, C, R, K]: the readouts' queries; DY [N, C, R, V]: their cotangents;
    dS [B, H, K, V]: the final state's cotangent; S_ends [B, H, nC, K, V]: each chunk's end state; bhc(x [N, ...]) ->
    [B, H, nC, ...] and unbhc its inverse (the rows' order); solve(A, rhs): X with (I - A) X = rhs, A strictly lower.
    Returns {"dR" [N, C, E, V], "dv" [N, C, P, V], "dk" [N, C, P, K], "du" [N, C, E, K], "dS0" [B, H, K, V],
    "a0" [N, K] (<L_end, S_C> per key row)}."""
    N, C, mk, K, V = core.N, core.C, core.mk, core.K, core.V
    if core.mode == "key" or core.Cp != C:
        raise ValueError("wy_backward: no or a scalar decay (ChunkCore mode %r, Cp %d, C %d)" % (core.mode, core.Cp, C))
    E, R = xI.shape[2], Q.shape[2]
    P = mk - E
    KK, VV = core.KK, core.VV  # [N, C, mk, K], [N, C, mk, V]: (u, r) then (k, v)
    if core.mode == "scalar":
        g = core.G[:, :, 0]  # [N, C + 1]
        e_t = torch.exp(g[:, 1:])[:, :, None, None]  # exp(G_t)
        e_end = torch.exp(g[:, C : C + 1] - g[:, 1:])[:, :, None, None]  # exp(G_C - G_f)
        Qd, Kend, VVend = Q * e_t, KK * e_end, VV * e_end
    else:
        Qd, Kend, VVend = Q, KK, VV
    DYf = DY.reshape(N, C * R, V)
    Qf = Q.reshape(N, C * R, K)
    # the readouts' part of every event value's adjoint: P1^T dY [N, C, mk, V]
    Bq = torch.bmm(core.scores(Q, 1).transpose(1, 2), DYf).view(N, C, mk, V)
    Bqu = Bq[:, :, :E].reshape(N, C * E, V)
    # B'_c: the start state's adjoint from the chunk's own readouts (directly and through the reads' solve)
    Bp = torch.bmm(Qd.reshape(N, C * R, K).transpose(1, 2), DYf)
    Bp = torch.baddbmm(Bp, xI.reshape(N, C * E, K).transpose(1, 2), Bqu)
    # the reverse walk: L_0 = A_c^T L_end + B'_c, the next chunk's L_end
    Bp = bhc(Bp)  # [B, H, nC, K, V]
    nC = Bp.shape[2]
    Lend = torch.empty_like(Bp)
    L = dS
    for c in range(nC - 1, -1, -1):
        Lend[:, :, c] = L
        L = torch.matmul(A[:, :, c].transpose(-1, -2), L) + Bp[:, :, c]
    dS0 = L
    a0 = (Lend * S_ends).sum(-1)  # [B, H, nC, K]
    Lend = unbhc(Lend)  # [N, K, V]
    # the reads' adjoints: (I - L_uu^T) dR = Bq_u + U_end L_end
    rhs = torch.baddbmm(Bqu, Kend[:, :, :E].reshape(N, C * E, K), Lend)
    P0 = core.scores(W, 0).view(N, C * E, C, mk)
    dR = rev_solve(P0[..., :E].reshape(N, C * E, C * E), rhs, solve)  # [N, C E, V]
    out = {"dR": dR.view(N, C, E, V), "dS0": dS0, "a0": unbhc(a0)}
    # dv: the pairs' values
    if P:
        dv = torch.baddbmm(Bq[:, :, E:].reshape(N, C * P, V), P0[..., E:].reshape(N, C * E, C * P).transpose(1, 2), dR)
        out["dv"] = torch.baddbmm(dv, Kend[:, :, E:].reshape(N, C * P, K), Lend).view(N, C, P, V)
    # dk, du: every event's L_f vv_f
    VVf = VV.reshape(N, C * mk, V)
    M1 = (torch.bmm(DYf, VVf.transpose(1, 2)).view(N, C, R, C, mk) * core.ratio(1)[:, :, None, :, None]).view(N, C * R, C * mk)
    M0 = (torch.bmm(dR, VVf.transpose(1, 2)).view(N, C, E, C, mk) * core.ratio(0)[:, :, None, :, None]).view(N, C * E, C * mk)
    DK = torch.bmm(M1.transpose(1, 2), Qf)
    DK = torch.baddbmm(DK, M0.transpose(1, 2), W.reshape(N, C * E, K))
    DK = torch.baddbmm(DK, VVend.reshape(N, C * mk, V), Lend.transpose(1, 2)).view(N, C, mk, K)
    out["du"] = DK[:, :, :E]
    out["dk"] = DK[:, :, E:]
    return out


def wy_decay(a0, Q, dQ, W, dW, KK, dKK, scalar):
    """The log decays' adjoint per chunk [N, C, 1] (scalar) or [N, C, K]: a0 [N, K] (<L_end, S_C> per key row),
    Q / dQ [N, C, R, K] the readouts' queries and dq, W / dW [N, C, E, K] the low-rank queries and dw, KK / dKK
    [N, C, mk, K] the events' keys (u, k) and their adjoints (du, dk)."""
    wdw = (W * dW).sum(2)
    terms = (Q * dQ).sum(2) + wdw - (KK * dKK).sum(2)  # [N, C, K]
    if scalar:
        return a0.sum(1)[:, None, None] + revcumsum(terms.sum(2, keepdim=True), 1) - wdw.sum(2, keepdim=True)
    return a0[:, None] + revcumsum(terms, 1) - wdw
