"""The token-aligned delta backward (part of seqc's torch target; copied next to the generated modules).
seqc_chunked_lowrank.lowrank_backward calls it with LR_BWD "delta" where the chain is one delta step a token: one
low-rank pair (u, w), one input pair (k, v), a scalar log decay ld or none, one readout after the step. Per token t and
head (S [K, V]):

    r_t = S_{t-1}^T w_t,   S_t = d_t S_{t-1} + u_t r_t^T + k_t v_t^T   (d_t = exp(ld_t)),   y_t = S_t^T q_t

Chunks of C tokens aligned to t = 0 (chunk n = (b H + h) nC + c; slots past T are identity steps: zero vectors, zero
log decay, zero dy), G[a] = ld summed over slots 0..a, G[-1] = 0, G_C = G[C - 1]:

    Luu[a, f] = exp(G[a-1] - G[f]) w_a . u_f (f < a), Luk the same with k; Pu[a, f] = exp(G[a] - G[f]) q_a . u_f
    (f <= a), Pk with k; Wd = exp(G[a-1]) w, Qd = exp(G[a]) q, Ud = exp(G_C - G[f]) u, Kd likewise; Tinv = (I - Luu)^-1
    forward   R = Tinv (Wd S0 + Luk V),  S_C = exp(G_C) S0 + Ud^T R + Kd^T V
    backward  DR = Tinv^T (Pu^T dY + Ud LE),  dS0 = exp(G_C) LE + Qd^T dY + Wd^T DR  (LE = dL/dS_C)

then every per-token adjoint per chunk from R, S0, LE, DR (delta_torch; docs/delta-backward.md has the
whole derivation, all of it checked in float64 against autograd of the token loop). Two ways:
  torch ops  (delta_torch) batched over every chunk: the chunk transitions [A_c | B_c] (S_C = A_c S0 + B_c, and the
             adjoint's L_0 = A_c^T L_C + B'_c) as products, the walks over the chunks by the pass kernel (`passer`,
             seqc_chunked_lowrank.pass_launcher) where there is one, else a product a chunk;
  kernels    (delta_kernels) the five kernels of the module's "kernels"."deltaBwd" (compiler/backends/cuda/delta-bwd.ts):
             prep_fwd (per chunk: Tinv and the forward walk's M, X, BM, NN, A), the walk (forward: the chunk start
             states S0, the reads R, the final state), prep_bwd (the backward walk's M, X, BM, NN, A), the walk in
             reverse (each chunk's LE, the reads' adjoints DR, dS_init), adj (every per-token adjoint and dld), reading
             and writing the per-token tensors [B, T, H, w] directly; delta_launcher gives them.
"""

import os

import torch

try:
    from . import seqc_chunked as _chunked
except ImportError:  # loaded as a top-level module (the output directory on sys.path)
    import seqc_chunked as _chunked

# The ops of a module's delta kernels (the kernel records' "op").
DELTA_OPS = ("prep_fwd", "prep_bwd", "walk", "adj")


def _chunks(x, C):
    """[B, T, H, w] (or [B, T, H]: w = 1) -> [B H nC, C, w] chunk rows, zero past T."""
    if x.dim() == 3:
        x = x.unsqueeze(3)
    B, T, H, w = x.shape
    nC = -(-T // C)
    out = torch.empty([B, H, nC * C, w], dtype=x.dtype, device=x.device)
    out[:, :, :T] = x.permute(0, 2, 1, 3)
    if nC * C > T:
        out[:, :, T:] = 0
    return out.view(B * H * nC, C, w)


def _tokens(x, B, T, H):
    """[B H nC, C, w] chunk rows -> [B, T, H, w] (a view)."""
    w = x.shape[2]
    return x.view(B, H, -1, w)[:, :, :T].permute(0, 2, 1, 3)


def _walk(AB, Bp, Z0, reverse, passer=None):
    """The walk over the chunks of every (b, h): forward Z_{c+1} = A_c Z_c + B_c, reverse Z_c = A_c^T Z_{c+1} + B_c;
    AB [B, H, nC, K, wa] with A_c its first K columns, Bp [B, H, nC, K, V] (a view of AB's columns K.. or its own
    tensor), Z0 [B, H, K, V] the first Z. Returns (ZS [B, H, nC, K, V]: the Z each chunk starts from in walk order (the
    forward's start states; the reverse's end states' adjoints), the last Z). passer: seqc_chunked_lowrank.pass_launcher's
    walks (one kernel) where it takes them, else one product a chunk."""
    B, H, nC, K = AB.shape[:4]
    V = Bp.shape[4]
    ZS = torch.empty([B, H, nC, K, V], dtype=Bp.dtype, device=Bp.device)
    if passer is not None:
        fin = torch.empty([B, H, K, V], dtype=Bp.dtype, device=Bp.device)
        if passer("adj" if reverse else "fwd", AB, Bp, Z0.contiguous(), ZS, fin):
            return ZS, fin
    Z = Z0.reshape(B * H, K, V)
    for i in range(nC):
        c = nC - 1 - i if reverse else i
        ZS[:, :, c] = Z.view(B, H, K, V)
        A = AB[:, :, c, :, :K].reshape(B * H, K, K)
        Z = torch.baddbmm(Bp[:, :, c].reshape(B * H, K, V), A.transpose(1, 2) if reverse else A, Z)
    return ZS, Z.view(B, H, K, V)


def _decay_factors(ldc, C, dtype, device):
    """The chunk's decay factors from its log decays ldc [N, C, 1] (None: no decay): (E0 [N, C, C] exp(G[a-1] - G[f])
    for f < a, E1 exp(G[a] - G[f]) for f <= a (zero elsewhere; only differences of the masked entries exponentiated),
    eG exp(G[a]), eGm exp(G[a-1]), eC exp(G_C - G[a]) each [N, C, 1], A exp(G_C) [N]); without a decay the masks and
    None for the rest."""
    a = torch.arange(C, device=device)
    lt, le = a[:, None] > a[None, :], a[:, None] >= a[None, :]
    if ldc is None:
        return lt.to(dtype), le.to(dtype), None, None, None, None
    G = torch.cumsum(ldc[:, :, 0], 1)  # [N, C]
    Gm = torch.nn.functional.pad(G[:, :-1], (1, 0))  # G[a - 1], G[-1] = 0
    GC = G[:, -1:]

    def masked(d, m):
        return torch.exp(torch.where(m, d, torch.zeros((), dtype=dtype, device=device))) * m

    E0 = masked(Gm[:, :, None] - G[:, None, :], lt)
    E1 = masked(G[:, :, None] - G[:, None, :], le)
    return E0, E1, torch.exp(G)[:, :, None], torch.exp(Gm)[:, :, None], torch.exp(GC - G)[:, :, None], torch.exp(GC[:, 0])


def chunk_end_adjoint(LE, starts, SF):
    """aC = <LE, S_C> per chunk [B, H, nC] (the log decays' adjoint at a chunk's end): LE [B, H, nC, K, V] the end
    states' adjoints, S_C the next chunk's start state (starts [B, H, nC, K, V]), the final state SF [B, H, K, V] for
    the last chunk."""
    aC = torch.empty(list(LE.shape[:3]), dtype=LE.dtype, device=LE.device)
    aC[:, :, :-1] = (LE[:, :, :-1] * starts[:, :, 1:]).sum((3, 4))
    aC[:, :, -1] = (LE[:, :, -1] * SF).sum((2, 3))
    return aC


def _lower_solve(A, rhs):
    """X with (I - A) X = rhs, A [N, C, C] strictly lower triangular (delta_torch's default solve)."""
    return torch.linalg.solve_triangular(-A, rhs, upper=False, unitriangular=True)


def _upper_t_solve(A, rhs):
    """X with (I - A^T) X = rhs, A [N, C, C] strictly lower triangular."""
    return torch.linalg.solve_triangular(-A.transpose(1, 2), rhs, upper=True, unitriangular=True)


def delta_torch(u, w, kk, vv, q, ld, S_init, dY, dS, C=64, passer=None, lower_solve=None, upper_t_solve=None, states=None):
    """delta_backward in torch ops batched over every chunk (the module docstring); passer: the walks' kernel
    (seqc_chunked_lowrank.pass_launcher) or None; lower_solve(A, rhs) -> X with (I - A) X = rhs and upper_t_solve(A, rhs)
    -> X with (I - A^T) X = rhs for A [N, C, C] strictly lower triangular (None: torch.linalg.solve_triangular); states:
    the forward's chunk start states and final state (delta_backward's), which replace the forward walk."""
    B, T, H, K = u.shape
    V = vv.shape[3]
    nC = -(-T // C)
    N = B * H * nC
    dtype, device = u.dtype, u.device
    lower_solve, upper_t_solve = lower_solve or _lower_solve, upper_t_solve or _upper_t_solve
    U, W, Kc, Q, Vc, DY = (_chunks(x, C) for x in (u, w, kk, q, vv, dY))
    E0, E1, eG, eGm, eC, Ad = _decay_factors(_chunks(ld, C) if ld is not None else None, C, dtype, device)
    Luu = torch.bmm(W, U.transpose(1, 2)) * E0
    Luk = torch.bmm(W, Kc.transpose(1, 2)) * E0
    Pu = torch.bmm(Q, U.transpose(1, 2)) * E1
    Pk = torch.bmm(Q, Kc.transpose(1, 2)) * E1
    Wd, Qd, Ud, Kd = (W * eGm, Q * eG, U * eC, Kc * eC) if ld is not None else (W, Q, U, Kc)
    # forward: [M | X] = Tinv [Wd | Luk V] (R = X + M S0), the transitions [A_c | B_c] = Ud^T [M | X] + [exp(G_C) I | Kd^T V]
    MX = lower_solve(Luu, torch.cat([Wd, torch.bmm(Luk, Vc)], 2))  # [N, C, K + V]
    M, X = MX[:, :, :K], MX[:, :, K:]
    AB = torch.bmm(Ud.transpose(1, 2), MX)  # [N, K, K + V]
    AB[:, :, :K].diagonal(dim1=1, dim2=2).add_(Ad[:, None] if ld is not None else 1)
    AB[:, :, K:].baddbmm_(Kd.transpose(1, 2), Vc)
    AB = AB.view(B, H, nC, K, K + V)
    S0 = torch.zeros([B, H, K, V], dtype=dtype, device=device) if S_init is None else S_init
    if states is not None:  # the forward's (LR_FWD_STATES): no forward walk
        starts, SF = states[0].reshape(B, H, nC, K, V).to(dtype), states[1].reshape(B, H, K, V).to(dtype)
    else:
        starts, SF = _walk(AB, AB[..., K:], S0, False, passer)
    S0s = starts.reshape(N, K, V)
    R = torch.baddbmm(X, M, S0s)  # the reads [N, C, V]
    # backward: B'_c = Qd^T dY + M^T Pu^T dY (the start state's adjoint from the chunk's own readouts), the reverse walk
    # with A_c^T, then DR = Tinv^T (Pu^T dY + Ud LE)
    PdY = torch.bmm(Pu.transpose(1, 2), DY)  # [N, C, V]
    Bp = torch.baddbmm(torch.bmm(Qd.transpose(1, 2), DY), M.transpose(1, 2), PdY).view(B, H, nC, K, V)
    dSF = torch.zeros([B, H, K, V], dtype=dtype, device=device) if dS is None else dS
    LEs, dS_init = _walk(AB, Bp, dSF, True, passer)
    LE = LEs.view(N, K, V)
    DR = upper_t_solve(Luu, torch.baddbmm(PdY, Ud, LE))  # [N, C, V]
    # the adjoint per chunk
    Ay = torch.bmm(DY, Vc.transpose(1, 2)) * E1
    Ar = torch.bmm(DR, Vc.transpose(1, 2)) * E0
    By = torch.bmm(DY, R.transpose(1, 2)) * E1
    Br = torch.bmm(DR, R.transpose(1, 2)) * E0
    LEk, LEv, LEr = torch.bmm(Kc, LE), torch.bmm(Vc, LE.transpose(1, 2)), torch.bmm(R, LE.transpose(1, 2))
    dV = torch.baddbmm(torch.bmm(Pk.transpose(1, 2), DY), Luk.transpose(1, 2), DR)
    dK = torch.baddbmm(torch.bmm(Ay.transpose(1, 2), Q), Ar.transpose(1, 2), W)
    dU = torch.baddbmm(torch.bmm(By.transpose(1, 2), Q), Br.transpose(1, 2), W)
    Sq = torch.bmm(DY, S0s.transpose(1, 2))
    Sw = torch.bmm(DR, S0s.transpose(1, 2))
    if ld is not None:
        dV += eC * LEk
        dK += eC * LEv
        dU += eC * LEr
        Sq *= eG
        Sw *= eGm
    else:
        dV += LEk
        dK += LEv
        dU += LEr
    dQ = torch.baddbmm(torch.baddbmm(Sq, By, U), Ay, Kc)
    dW = torch.baddbmm(torch.baddbmm(Sw, Br, U), Ar, Kc)
    dLD = None
    if ld is not None:
        # aC = <LE, S_C> (S_C the next chunk's start state, the final state for the last), then
        # dld_a = aC + sum_{s >= a} terms_s - w_a . dw_a, terms = q.dq + w.dw - u.du - k.dk
        aC = chunk_end_adjoint(LEs, starts, SF).view(N)
        wdw = (W * dW).sum(2)
        terms = (Q * dQ).sum(2) + wdw - (U * dU).sum(2) - (Kc * dK).sum(2)  # [N, C]
        rc = terms.sum(1, keepdim=True) - torch.cumsum(terms, 1) + terms
        dLD = _tokens((aC[:, None] + rc - wdw).unsqueeze(2), B, T, H)[..., 0]
    return tuple(_tokens(x, B, T, H) for x in (dU, dW, dK, dV, dQ)) + (dLD, dS_init)


def _key_factors(ldc, C):
    """A per-key decay's factors from the chunks' log decays ldc [N, C, K]: (G [N, C, K] summed over slots 0..a, Gm
    G[a - 1] (G[-1] = 0), D0 [N, C, C, K] exp(G[a-1] - G[f]) a key for f < a, D1 exp(G[a] - G[f]) for f <= a, zero
    elsewhere; only differences of the masked entries exponentiated: every exponent <= 0)."""
    G = torch.cumsum(ldc, 1)
    Gm = torch.nn.functional.pad(G[:, :-1], (0, 0, 1, 0))
    a = torch.arange(C, device=ldc.device)
    lt, le = (a[:, None] > a[None, :])[:, :, None], (a[:, None] >= a[None, :])[:, :, None]
    zero = torch.zeros((), dtype=ldc.dtype, device=ldc.device)
    D0 = torch.exp(torch.where(lt, Gm[:, :, None] - G[:, None], zero)) * lt
    D1 = torch.exp(torch.where(le, G[:, :, None] - G[:, None], zero)) * le
    return G, Gm, D0, D1


def chunk_end_adjoint_key(LE, starts, SF):
    """chunk_end_adjoint per key: aC[i] = sum_v LE[i, v] S_C[i, v] per chunk [B, H, nC, K]."""
    SC = torch.cat([starts[:, :, 1:], SF[:, :, None]], 2)
    return (LE * SC).sum(4)


def delta_torch_key(u, w, kk, vv, q, ld, S_init, dY, dS, C=64, passer=None, lower_solve=None, upper_t_solve=None):
    """delta_torch with a per-key log decay ld [B, T, H, K] (RWKV-7; docs/delta-backward.md "A per-key decay"): the
    scores and the adjoint's mixes with the decay a key, exp(G[a] - G[f]) per (a, f, i) taken directly ([N, C, C, K]
    factors: the CPU reference and fallback, not a fast path); the chunk transitions A_c = diag(exp(G_C)) + Ud^T M, the
    walks as delta_torch's; dld [B, T, H, K]. Same arguments and returns as delta_torch."""
    B, T, H, K = u.shape
    V = vv.shape[3]
    nC = -(-T // C)
    N = B * H * nC
    dtype, device = u.dtype, u.device
    lower_solve, upper_t_solve = lower_solve or _lower_solve, upper_t_solve or _upper_t_solve
    U, W, Kc, Q, Vc, DY = (_chunks(x, C) for x in (u, w, kk, q, vv, dY))
    G, Gm, D0, D1 = _key_factors(_chunks(ld.to(dtype), C), C)
    eC = torch.exp(G[:, -1:] - G)  # exp(G_C - G[a]) [N, C, K]

    def score(x, y, D):  # [a, f] = sum_i x[a, i] y[f, i] D[a, f, i]
        return torch.einsum("nai,nfi,nafi->naf", x, y, D)

    def mix_f(A, x, D):  # [f, i] = sum_a A[a, f] x[a, i] D[a, f, i]
        return torch.einsum("naf,nai,nafi->nfi", A, x, D)

    def mix_a(A, y, D):  # [a, i] = sum_f A[a, f] y[f, i] D[a, f, i]
        return torch.einsum("naf,nfi,nafi->nai", A, y, D)
    Luu, Luk, Pu, Pk = score(W, U, D0), score(W, Kc, D0), score(Q, U, D1), score(Q, Kc, D1)
    Wd, Qd, Ud, Kd = W * torch.exp(Gm), Q * torch.exp(G), U * eC, Kc * eC
    MX = lower_solve(Luu, torch.cat([Wd, torch.bmm(Luk, Vc)], 2))  # [N, C, K + V]
    M, X = MX[:, :, :K], MX[:, :, K:]
    AB = torch.bmm(Ud.transpose(1, 2), MX)  # [N, K, K + V]
    AB[:, :, :K].diagonal(dim1=1, dim2=2).add_(torch.exp(G[:, -1]))
    AB[:, :, K:].baddbmm_(Kd.transpose(1, 2), Vc)
    AB = AB.view(B, H, nC, K, K + V)
    S0 = torch.zeros([B, H, K, V], dtype=dtype, device=device) if S_init is None else S_init
    starts, SF = _walk(AB, AB[..., K:], S0, False, passer)
    S0s = starts.view(N, K, V)
    R = torch.baddbmm(X, M, S0s)
    PdY = torch.bmm(Pu.transpose(1, 2), DY)
    Bp = torch.baddbmm(torch.bmm(Qd.transpose(1, 2), DY), M.transpose(1, 2), PdY).view(B, H, nC, K, V)
    dSF = torch.zeros([B, H, K, V], dtype=dtype, device=device) if dS is None else dS
    LEs, dS_init = _walk(AB, Bp, dSF, True, passer)
    LE = LEs.view(N, K, V)
    DR = upper_t_solve(Luu, torch.baddbmm(PdY, Ud, LE))
    a = torch.arange(C, device=device)
    lt, le = (a[:, None] > a[None, :]).to(dtype), (a[:, None] >= a[None, :]).to(dtype)
    Ay = torch.bmm(DY, Vc.transpose(1, 2)) * le
    Ar = torch.bmm(DR, Vc.transpose(1, 2)) * lt
    By = torch.bmm(DY, R.transpose(1, 2)) * le
    Br = torch.bmm(DR, R.transpose(1, 2)) * lt
    dV = torch.baddbmm(torch.baddbmm(torch.bmm(Pk.transpose(1, 2), DY), Luk.transpose(1, 2), DR), Kd, LE)
    dK = mix_f(Ay, Q, D1) + mix_f(Ar, W, D0) + eC * torch.bmm(Vc, LE.transpose(1, 2))
    dU = mix_f(By, Q, D1) + mix_f(Br, W, D0) + eC * torch.bmm(R, LE.transpose(1, 2))
    dQ = torch.exp(G) * torch.bmm(DY, S0s.transpose(1, 2)) + mix_a(By, U, D1) + mix_a(Ay, Kc, D1)
    dW = torch.exp(Gm) * torch.bmm(DR, S0s.transpose(1, 2)) + mix_a(Br, U, D0) + mix_a(Ar, Kc, D0)
    # dld_a = aC + sum_{s >= a} terms_s - w_a o dw_a a key, terms = q o dq + w o dw - u o du - k o dk, aC = <LE, S_C> over V
    aC = chunk_end_adjoint_key(LEs, starts, SF).view(N, 1, K)
    wdw = W * dW
    terms = Q * dQ + wdw - U * dU - Kc * dK  # [N, C, K]
    rc = terms.sum(1, keepdim=True) - torch.cumsum(terms, 1) + terms
    dLD = _tokens(aC + rc - wdw, B, T, H)
    return tuple(_tokens(x, B, T, H) for x in (dU, dW, dK, dV, dQ)) + (dLD, dS_init)


def delta_kernels(kern, u, w, kk, vv, q, ld, S_init, dY, dS, C=64, states=None):
    """delta_backward by the five kernels of `kern` (delta_launcher's launch): prep_fwd, the forward walk, prep_bwd, the
    reverse walk, adj. None where kern has no kernel for the shape (mode, C, K, V, the per-token inputs' dtype: kern.tin
    where it says one, else dY's, the glue's (a per-token input may be a bf16 input itself, where prep's output is a copy
    of it: seqc_chunked_lowrank's prepAliases); they are converted to it once here). states: delta_backward's; with
    kern.r (the module's deltaStates kernels) for the shape and the states' dtype, R = X + M S0 per chunk instead of the
    forward walk (prep_fwd still gives TI, M, X)."""
    B, T, H, K = u.shape
    V = vv.shape[3]
    mode = "none" if ld is None else "key" if ld.dim() == 4 else "scalar"
    tin = getattr(kern, "tin", None) or dY.dtype
    if not kern.has(mode, C, K, V, tin):
        return None
    u, w, kk, vv, q, dY = (x.to(tin) for x in (u, w, kk, vv, q, dY))
    nC = -(-T // C)
    # LR_DELTA_PREP_R (kern.prep_r: the bf16-state path with the forward's bf16 chunk states): one kernel gives TI and the
    # reads R = X + M S0 (bf16), prep_fwd's epilogue; M, X, BM, NN, A are not formed
    pr = getattr(kern, "prep_r", None)
    pr = pr is not None and states is not None and mode != "key" and pr(mode, C, K, V, tin, B * H, states[0])
    # LR_DELTA_WALK_BF16 / LR_DELTA_KEY_WALK_BF16 (kern.walk_bf16, picked once a step): prep_bwd writes the reverse walk's
    # operands as bf16 and the walk takes them as bf16 mma operands (on the bf16-state path only, below); per key
    # prep_fwd writes the forward walk's operands as bf16 too, and the forward walk takes them as the reverse walk does
    wk = getattr(kern, "walk_bf16", None)
    wk = wk(mode, C, K, V, tin, B * H) if wk is not None else None
    wf = wk if mode == "key" else None
    if pr:
        TI, R = kern("prep_r", mode, C, K, V, u, w, kk, vv, ld, states[0].reshape(B * H * nC, K, V), B, T, H)
        M = X = BM = NN = A = None
    else:
        TI, M, X, BM, NN, A = kern("prep_fwd", mode, C, K, V, u, w, kk, vv, ld, B, T, H, **({"wout": wf} if wf else {}))
    rk = getattr(kern, "r", None)
    # LR_DELTA_ZBF16 "on" (kern.zbf16): the walks (and the reads from saved states) write R, S0, LE, DR as bf16 for the
    # bf16 adjoint twin's sibling reading them so
    zb = getattr(kern, "zbf16", None)
    zo = {"zout": True} if zb is not None and zb(mode, C, K, V, tin, B * H) else {}
    if states is not None and mode != "key" and (pr or rk is not None and rk.has(C, K, V, states[0].dtype, **zo)):
        R, S0s = (R, states[0].reshape(B * H * nC, K, V).contiguous()) if pr else rk(C, K, V, M, X, states[0].reshape(B * H * nC, K, V), **zo)
        SF = states[1].reshape(B * H, K, V).to(torch.float32 if R.dtype == torch.bfloat16 else R.dtype).contiguous()  # (float32 beside bf16 R)
    else:
        S0s, R, SF = kern("walk", mode, C, K, V, M, X, BM, NN, A, S_init, B * H, nC, 0, **zo, **({"win": wf} if wf else {}))
    wb = wk if zo or mode == "key" else None  # (per key: KEY_WALK_BF16, float32 ZS / Y)
    M, X, BM, NN, A = kern("prep_bwd", mode, C, K, V, q, u, w, dY, ld, TI, B, T, H, **({"wout": wb} if wb else {}))
    LE, DR, dS_init = kern("walk", mode, C, K, V, M, X, BM, NN, A, dS, B * H, nC, 1, **zo, **({"win": wb} if wb else {}))
    dQ, dU, dW, dK, dV, dLD = kern("adj", mode, C, K, V, q, u, w, kk, vv, dY, ld, R, S0s, SF, LE, DR, B, T, H)
    return dU, dW, dK, dV, dQ, dLD, dS_init.view(B, H, K, V)


def delta_backward(u, w, kk, vv, q, ld, S_init, dY, dS, C=64, kern=None, passer=None, lower_solve=None, upper_t_solve=None, states=None):
    """The delta step's backward over every token (module docstring): u, w, kk, q [B, T, H, K], vv, dY [B, T, H, V]
    (per-token tensors, views allowed); ld [B, T, H] (scalar), [B, T, H, K] (per key: delta_torch_key, the kernels'
    mode "key") or None (no decay); S_init [B, H, K, V] or None (zero); dS
    [B, H, K, V] the final state's cotangent or None. kern: delta_launcher's launch (the five kernels where it has them
    for the shape; None: torch ops); passer, lower_solve, upper_t_solve: delta_torch's. states: (S [B H nC, K, V] each
    chunk's start state, SF [B H, K, V] the final state) from the forward (LR_FWD_STATES; any float dtype: the forward's
    bf16 operand rounding where it ran in bf16), or None: the forward walk computes them (no or a scalar decay only; a
    per-key decay ignores them). Returns (du, dw, dk, dv, dq [B, T, H, w], dld [B, T, H] (per key [B, T, H, K]) or None,
    dS_init [B, H, K, V])."""
    B, T, H, K = u.shape
    if states is not None and states[0].numel() != B * H * -(-T // C) * K * vv.shape[3]:
        states = None  # (not this shape's chunks: the forward walk)
    if kern is not None:
        out = delta_kernels(kern, u, w, kk, vv, q, ld, S_init, dY, dS, C, states)
        if out is not None:
            return out
    # torch ops in dY's dtype, the glue's (a per-token input may be a bf16 input itself: delta_kernels)
    u, w, kk, vv, q = (x.to(dY.dtype) for x in (u, w, kk, vv, q))
    ld = ld.to(dY.dtype) if ld is not None else None
    if ld is not None and ld.dim() == 4:
        return delta_torch_key(u, w, kk, vv, q, ld, S_init, dY, dS, C, passer, lower_solve, upper_t_solve)
    return delta_torch(u, w, kk, vv, q, ld, S_init, dY, dS, C, passer, lower_solve, upper_t_solve, states)


def delta_pick(kernels, op, mode, C, K, V, tin, math="fp32"):
    """The kernel record of a module's "deltaBwd" kernels for a per-chunk op ("prep_fwd", "prep_bwd", "adj") at (decay
    mode, C, K, V, tin "f32" / "bf16", math: "fp32" or a tensor-core twin's, records without one being fp32), or None.
    (The walks: kernel_launch's walk_pick.)"""
    for k in kernels:
        if k["op"] == op and (k["C"], k["K"], k["V"]) == (C, K, V) and k["decay"] == mode and k["tin"] == tin and k.get("math", "fp32") == math and not k.get("zin") and not k.get("wout"):
            return k
    return None


TIN = {torch.float32: "f32", torch.bfloat16: "bf16"}


def tin_name(tin):
    """A per-token input type as the records name it ("f32" / "bf16"), from a torch dtype or the name itself."""
    return tin if isinstance(tin, str) else TIN.get(tin, tin)


# R as prep_fwd's epilogue (read at each launch; LR_DELTA_PREP_R at import; in launch_switches): "on" where delta_kernels
# has the forward's bf16 chunk states (LR_FWD_STATES) and takes the bf16-state path (ZBF16), one kernel in place of
# prep_fwd and the reads from saved states (compiler/backends/cuda/delta-prep-r.ts, op "prep_r": TI and bf16 R = X + M S0,
# M S0 as bf16 head and tail products, fp32-accurate; no M, X, BM, NN, A written); "bf16" its head-only sibling (mprod
# "bf16", entry _m1: M rounded to bf16); "off" prep_fwd and delta-r's kernel as before. "on" is the default since H200
# call A1 (session 15; bench/RESULTS.md "R as prep_fwd's epilogue"): the kernel alone vs prep_fwd + the reads 0.264 -> 0.155
# ms at (8, 2048, 16, 64), 0.608 -> 0.290 at (1, 32768, 8, 128), 1.179 -> 0.562 at (4, 8192, 16, 128) (DeltaNet; Gated
# DeltaNet 0.307 -> 0.203, 0.678 -> 0.343, 1.308 -> 0.671); bf16 steps under graphs DeltaNet 1.655 -> 1.544, 4.403 ->
# 4.089, 7.316 -> 6.692 ms, Gated DeltaNet 2.145 -> 2.046, 5.122 -> 4.821, 8.361 -> 8.127; gradients vs float64 at
# (2, 1024, 16, 64) 4.29e-3 / 4.66e-3 either way (head-only "bf16": 4.34e-3 / 4.66e-3).
PREP_R = os.environ.get("LR_DELTA_PREP_R", "on")
# delta_launcher's math -> the twins' math an op takes, most preferred first (then its fp32 kernel): "bf16" asks for the
# bf16 tensor-core twins (mma m16n8k16, bf16 operands, fp32 accumulators) where the module has them, else the TF32 ones.
MATH_PREFS = {"tf32": ("tf32",), "bf16": ("bf16", "tf32")}
# The per-key adjoint (decay "key", RWKV-7) under math "bf16" (read at each launch; LR_DELTA_KEY_MMA at import): "tf32"
# (default) skips its bf16 twins (math "bf16", K = 64 and 128: seqc_delta_adj_key_c64k{64,128}v*_bf16_bf16,
# delta-adjoint-key-mma.ts / delta-adjoint-key-mma-k128.ts) for the TF32 twins, as before the bf16 twins existed; "bf16"
# takes a bf16 twin where the module has one. "bf16" was the default from H200 call F14 (session 14's final call): RWKV-7's
# bf16 step under graphs 5.719 -> 5.471 ms at (8, 2048, 16, 64), 16.498 -> 16.189 at (1, 32768, 8, 128), 27.741 -> 27.118 at
# (4, 8192, 16, 128); gradients vs float64 at (2, 1024) 1.7e-3 either way (fla 4.1e-3).
# "bf16f" takes the factored twin (math "bf16f": the bf16 twin with the diagonal 16-slot blocks by TF32 mma too where a
# chunk's decays allow, compiler/backends/cuda/delta-adjoint-key-mma.ts DELTA_ADJ_KEY_FAC_CONFIGS) where the module has
# one (K = 64 and 128; the K = 128 one spills 4 bytes on sm_90, accepted for the gain below), else as "bf16". "bf16f" is the default
# since H200 call D15 (session 15, bench/RESULTS.md "the per-key adjoint with its diagonal blocks by mma"): the adjoint
# alone 2.591 -> 1.484 ms at (8, 2048, 16, 64), RWKV-7's bf16 step under graphs 5.550 -> 4.441 ms there (fla 3.857);
# gradients vs float64 at (2, 1024) 3.7e-3 -> 3.8e-3 (fla 4.1e-3). (With the K = 128 one: 12.645 -> 8.398 ms
# alone at (4, 8192, 16, 128), the step 26.327 -> 22.094 there and 16.151 -> 14.003 at (1, 32768, 8, 128).)
KEY_MMA = os.environ.get("LR_DELTA_KEY_MMA", "bf16f")
# The walk a launcher with math takes at K = V = 128 for many (b, h) rows (read at each launch; LR_DELTA_WALK at import):
# "default" the 3xTF32 walk for many rows (a record with walkFor "many": 64 value columns a block over 8 warps,
# delta-walk-mma.ts DELTA_WALK_WIDE_CONFIGS) where its grid B H (V / cols) is at least half the SMs (B H >= 33 on 132),
# "tf32" the plain TF32 one there (not the default: 1.7e-4 relative error on a bounded walk vs 5.8e-6), "old" neither
# (the rule before: the 16-column 3xTF32 twin). H200 call B14, the two walks alone at (4, 8192, 16, 128): 3.366 ms
# (16 columns) -> 2.599 (3xTF32, 64 columns) / 1.944 (plain TF32); the step and gradients there were measured with its
# two-accumulator sibling (2.738 alone): DeltaNet bf16 eager GPU 15.802 -> 15.210 ms, gradients vs float64 3.0e-3 both.
# Other shapes, and without math (the fp32 walks), the rule below: the default walk's twin, the split fp32 walk for few rows.
WALK = os.environ.get("LR_DELTA_WALK", "default")
# The reverse walk with bf16 operands (read at each launch; LR_DELTA_WALK_BF16 at import): "on" prep_bwd's staged twin
# writes M and NN^T as bf16 (a record with wout "mn", entry <its entry>_wb; compiler/backends/cuda/delta-prep-staged.ts) and
# the walk takes them as mma m16n8k16 bf16 operands (a record with win "mn", delta-walk-bf16.ts; Z and Yc rounded to bf16
# as operands, fp32 accumulators, ZS / Y bf16); "all" X and BM bf16 too (wout / win "all", _wbx / _bf16x); "off" the
# walks above. Only on the bf16-state path (ZBF16) with math, decay none / scalar, where the module has both records;
# the walk for many rows where its grid B H (V / cols) 2 >= the SM count, else the one for few rows (8 columns). "all" is
# the default since H200 call W2 (session 15; bench/RESULTS.md "the reverse walk in bf16", W1 took "on" first): DeltaNet's
# bf16 step under graphs off / on / all 8.346 / 7.853 / 7.660 ms at (4, 8192, 16, 128), 5.594 / 4.870 / 4.756 at
# (1, 32768, 8, 128), 1.863 / 1.790 / 1.758 at (8, 2048, 16, 64) (Gated DeltaNet 9.815 / 9.321 / 9.151, 6.345 / 5.629 /
# 5.523, 2.348 / 2.279 / 2.245); the reverse walk alone 1.144 -> 0.537, 1.506 -> 0.684, 0.203 -> 0.108 ms; gradients vs
# float64 at (2, 1024, 16, 64) 4.29e-3 / 4.29e-3 / 4.65e-3 (DeltaNet; fla 5.8e-3), 4.66e-3 / 4.66e-3 / 4.68e-3 (Gated).
WALK_BF16 = os.environ.get("LR_DELTA_WALK_BF16", "all")
# prep_bwd's stores of its bf16 products under WALK_BF16 (read at each launch; LR_DELTA_PREP_BWD_STORE at import): "quad"
# launches the wout record's sibling with wstore "quad" (entry <its entry>q: _wbq / _wbxq; delta-prep-mma.ts mmaProduct's
# quad form: the quad's 4 lanes swap their packed pairs by shuffles, each lane one 16-byte store; the same values at the
# same addresses) where the module has it, else the wout record; "pair" the wout record (4-byte pair stores, as before);
# "quad_bm16" (default) the quad sibling with BM = Q^T dY as bf16 mma m16n8k16 (bmMma "bf16", entry <quad entry>_bm16;
# decay none only: DeltaNet; else as "quad"). "quad_bm16" is the default since H200 call F15 (session 15): bf16 step at
# (4, 8192, 16, 128) graphs / eager DeltaNet 6.296 / 5.553 -> 6.142 / 5.409 ms (-2.4% / -2.6%), Gated DeltaNet (= quad)
# 7.297 / 6.999 -> 7.625 / 6.938 (eager -0.9%; Gated's graph times spread ~6% in that call); gradients vs float64 at
# (2, 1024) the defaults' (DeltaNet 4.7e-3, Gated 4.7e-3; fla 5.8e-3).
PREP_BWD_STORE = os.environ.get("LR_DELTA_PREP_BWD_STORE", "quad_bm16")
# The per-key decay's (mode "key", RWKV-7) walk for many rows (read at each launch; LR_DELTA_KEY_WALK at import): "many"
# takes the module's per-key 3xTF32 walk for many rows (delta-walk-mma.ts DELTA_WALK_KEY_WIDE_CONFIGS, K = V = 128) by
# WALK's grid rule; "old": the rule before it, the 16-column twin. "many" is the default since H200 call F14: RWKV-7's bf16
# step under graphs at (4, 8192, 16, 128) 27.741 -> 27.092 ms (other shapes: the same walk either way).
KEY_WALK = os.environ.get("LR_DELTA_KEY_WALK", "many")
# The per-key decay's (mode "key", RWKV-7) reverse walk with bf16 operands (read at each launch; LR_DELTA_KEY_WALK_BF16 at
# import): "on" (with math "bf16", where the module has the records) launches prep_bwd's and prep_fwd's per-key twins' wout "mn" siblings
# (M [N, C, K] and NN^T [N, K, C] bfloat16; X, BM, A [N, K] float32; entry <its entry>_wb, delta-prep-mma.ts) and the
# per-key bf16 walk (delta-walk-bf16.ts DELTA_WALK_BF16_KEY_CONFIGS: mma m16n8k16 bf16 operands, fp32 accumulators, ZS and Y
# float32 for the per-key adjoint; the one for many rows where B H (V / cols) 2 >= the SM count, else 8 columns) in place
# of the 3xTF32 / fp32 walks, both directions (RWKV-7's forward keeps no chunk states: the forward walk runs in its
# backward); "off": the 3xTF32 / fp32 walks, as before. "on" is the default since H200 call F15 (session 15): RWKV-7's
# bf16 step graphs / eager at (4, 8192, 16, 128) 21.417 / 21.377 -> 20.628 / 20.090 ms (-3.7% / -6.0%); with call F15's
# other new switches 13.847 -> 12.158 at (1, 32768, 8, 128), 4.420 -> 4.267 at (8, 2048, 16, 64); gradients vs float64 at
# (2, 1024) the defaults' (3.8e-3; fla 4.1e-3). DeltaNet / Gated DeltaNet take the same path either way.
KEY_WALK_BF16 = os.environ.get("LR_DELTA_KEY_WALK_BF16", "on")
# The bf16-state path (read at each launch; LR_DELTA_ZBF16 at import): "on" where the adjoint a launcher picks is a bf16
# twin (math "bf16") with a sibling reading bf16 R, S0, LE, DR (a record with zin, entry <its entry>_zb) and the walk it
# picks for the shape has a sibling writing bf16 ZS and Y (zout, <entry>_zb): both walks (and the reads from saved
# states, delta-r.ts's _zb) write those four as bf16, which the twin rounds to bf16 as it stages them anyway (round to
# nearest even both ways: the same adjoint but aC, now from the bf16 LE and S_C); half the four's bytes. "off": float32
# as before. "on" is the default since H200 call F14 (session 14's final call): alone at (4, 8192, 16, 128) bf16 steps
# under graphs DeltaNet 9.403 -> 9.285 ms, Gated DeltaNet 10.968 -> 10.466; gradients vs float64 unchanged (3.4e-3 / 3.2e-3).
ZBF16 = os.environ.get("LR_DELTA_ZBF16", "on")
# The reads from saved chunk states' kernel (LR_FWD_STATES; read at each launch, LR_DELTA_R at import): "tf32x3"
# (default) the tensor-core twin (delta-r-mma.ts, math "tf32x3": mma m16n8k8 on split operands, fp32 accuracy: 4e-8..1e-7
# vs float64 on the emulation as the FMA kernel) where the module has it, else the FMA kernel; "fp32" the FMA kernel
# (delta-r.ts, as before the twins). Only the LR_FWD_STATES path runs either.
R_MATH = os.environ.get("LR_DELTA_R", "tf32x3")
# The adjoint's per-token gradients dQ, dU, dW, dK, dV (read at each launch; LR_DELTA_ADJ_OUT at import): "bf16" where the
# adjoint a launch picks has a sibling storing them as bf16 (a record with aout, entry <its entry>_ob: the bf16-state
# adjoints, compiler/backends/cuda/delta-adjoint-bf16.ts DELTA_ADJ_BF16_OUT_CONFIGS; each value the float32 one rounded to
# nearest even, dLD float32): half their bytes, and prep's backward reads them as they are (its "-bf16bar" twins,
# seqc_chunked_lowrank's stateless twin), dv and dw' (the copies' adjoints) summed into the gradients as returned; "f32"
# float32 as before. The per-key adjoint (RWKV-7) has no such sibling: float32 either way.
ADJ_OUT = os.environ.get("LR_DELTA_ADJ_OUT", "f32")
# The bf16-state adjoint's loads (read at each launch; LR_DELTA_ADJ_LOAD at import; in launch_switches): "ca" launches the
# pick's sibling loading every chunk input by cp.async (a record with load "ca", entry <its entry>_ca after ZBF16's _zb and
# ADJ_OUT's _ob: compiler/backends/cuda/delta-adjoint-bf16.ts DELTA_ADJ_BF16_CA_CONFIGS; R, LE, S0, DR copied as bf16 words
# in two cp.async groups where the _zb twin stages them through registers in dependent rounds; outputs bit for bit the
# _zb / _zb_ob twin's) where the module has it; "plain" as before. "ca" is the default since H200 call F15 (session 15):
# bf16 step at (4, 8192, 16, 128) graphs / eager DeltaNet 6.296 / 5.553 -> 6.016 / 5.314 ms (-4.5% / -4.3%), Gated DeltaNet
# 7.297 / 6.999 -> 7.500 / 6.791 (eager -3.0%; Gated's graph times spread ~6% in that call); gradients vs float64 at
# (2, 1024) the defaults' (bit for bit the same outputs).
ADJ_LOAD = os.environ.get("LR_DELTA_ADJ_LOAD", "ca")


def delta_launcher(m, device, way=None, switch="LR_FUSED_DELTA", tin=None, math=None):
    """The delta backward's five kernels of module m on `device` (way "cuda"; the module's "kernels"."deltaBwd",
    compiler/backends/cuda/delta-bwd.ts) as delta_backward's `kern`; None: no kernels (way "torch", not CUDA, or a
    module without them). launch.has(mode, C, K, V, dtype): whether every op has a kernel there (the per-token inputs'
    dtype: float32 "f32", bfloat16 "bf16"); then, each launched on the current stream with its outputs made here
    (float32; per-chunk tensors chunk-major, N = B H nC):
      launch("prep_fwd", mode, C, K, V, U, W, KK, VV, LD, B, T, H) -> (TI [N, C, C], M [N, C, K], X [N, C, V], BM [N, K, V],
             NN [N, C, K], A [N])                                                                     grid N
      launch("prep_bwd", mode, C, K, V, Q, U, W, DY, LD, TI, B, T, H) -> (M, X, BM, NN, A)            grid N
      launch("walk", mode, C, K, V, M, X, BM, NN, A, Z0, BH, nC, reverse) -> (ZS [N, K, V], Y [N, C, V], ZF [BH, K, V])
             (Z0 [BH, K, V] or None: zeros; zout=True: ZS and Y bfloat16, the walk's _zb sibling)     grid (BH, V / cols)
      launch("adj", mode, C, K, V, Q, U, W, KK, VV, DY, LD, R, S0, SF, LE, DR, B, T, H) -> (dQ, dU, dW, dK [B, T, H, K],
             dV [B, T, H, V], dLD [B, T, H] or None)                                                  grid N
    Per-token inputs [B, T, H, w] are made contiguous in the dtype of U (DY and the rest converted to it), LD float32
    [B, T, H] contiguous (None with mode "none"; mode "key", a per-key decay: LD [B, T, H, K], A [N, K] for prep's outputs
    and the walk, dLD [B, T, H, K]). tin: launch.tin, the dtype delta_kernels gives the per-token inputs
    (None: their own; torch.bfloat16: the _bf16 entries). math: None or a tensor-core twin's ("tf32"): each op's twin
    where the module has one for the shape and tin, else its fp32 kernel. launch.zbf16(mode, C, K, V, dtype, BH): whether
    delta_kernels takes the bf16-state path (ZBF16); adj with bfloat16 R, S0, LE, DR takes its pick's _zb sibling."""
    way = way or "cuda"
    if way not in ("cuda", "torch"):
        raise ValueError("%s %r: one of cuda, torch" % (switch, way))
    km = _chunked.module_kernels(m, device, "deltaBwd") if way == "cuda" else None
    if km is None:
        return None
    launch = kernel_launch(km, device, math, torch.cuda.get_device_properties(device).multi_processor_count)
    launch.tin = tin
    rm = _chunked.module_kernels(m, device, "deltaStates")
    launch.r = r_launch(rm, device) if rm is not None else None
    return launch


def launch_switches():
    """The launchers' switches read at each launch (KEY_MMA, WALK, WALK_BF16, KEY_WALK, ZBF16, R_MATH, ADJ_OUT, PREP_BWD_STORE, KEY_WALK_BF16), for the key of a
    captured backward graph (seqc_chunked_lowrank: a switch changed between steps must not replay the old kernels)."""
    return (PREP_BWD_STORE, KEY_MMA, WALK, WALK_BF16, KEY_WALK, ZBF16, R_MATH, ADJ_OUT, ADJ_LOAD, PREP_R, KEY_WALK_BF16)


def zb_sibling(kernels, k):
    """Record k's bf16-state sibling among kernels (zout / zin: entry <k's entry>_zb, LR_DELTA_ZBF16), or None (also for
    k None)."""
    return next((x for x in kernels if x["entry"] == k["entry"] + "_zb"), None) if k is not None else None


def r_launch(km, device):
    """The reads from saved chunk states (module "deltaStates", compiler/backends/cuda/delta-r.ts) as delta_kernels' kern.r:
    r(C, K, V, M, X, S) -> (R [N, C, V] = X + M S per chunk, S0: S as float32 [N, K, V], a copy the kernel writes for
    bf16 S, S itself for float32), M [N, C, K], X [N, C, V] float32, S [N, K, V] bfloat16 or float32; r.has(C, K, V,
    dtype). zout=True (LR_DELTA_ZBF16; r.has(..., zout=True) says whether the module has it): R and S0 as bfloat16 (the
    record's _zb sibling; bf16 S is S0 itself, no copy)."""
    def pick(C, K, V, dt, zout=False):
        ks = [k for k in km.kernels if k["op"] == "r" and (k["C"], k["K"], k["V"]) == (C, K, V) and k["sin"] == TIN.get(dt) and not k.get("zout")]
        # R_MATH's twin first (LR_DELTA_R "tf32x3"), then the FMA kernel (no math)
        k = next((k for k in ks if k.get("math") == R_MATH), None) or next((k for k in ks if not k.get("math")), None)
        if k is not None and zout:  # R and S0 as bf16 (LR_DELTA_ZBF16): the sibling _zb
            k = zb_sibling(km.kernels, k)
        return k

    def r(C, K, V, M, X, S, zout=False):
        k = pick(C, K, V, S.dtype, zout)
        N = S.shape[0]
        S = S.contiguous()
        M, X = M.contiguous(), X.contiguous()
        zt = torch.bfloat16 if zout else torch.float32
        R = torch.empty([N, C, V], dtype=zt, device=device)
        S0 = torch.empty([N, K, V], dtype=zt, device=device) if S.dtype != zt else S
        with torch.cuda.device(device):
            km.launch(k, (N, 1), [("ptr", M.data_ptr()), ("ptr", X.data_ptr()), ("ptr", S.data_ptr()), ("ptr", R.data_ptr()),
                                  ("ptr", S0.data_ptr() if S0 is not S else 0), ("u32", N)], torch.cuda.current_stream(device).cuda_stream)
        return R, S0
    r.has = lambda C, K, V, dt, zout=False: pick(C, K, V, dt, zout) is not None
    return r


def kernel_launch(km, device, math=None, sms=None):
    """delta_launcher's launch over a loaded kernel module km (km.kernels the records; km.launch(record, grid, args,
    stream)); math: delta_launcher's (given: the walk for many rows where WALK and the grid say so, else the default
    walk's 3xTF32 twin, a record with math "tf32x3", where the module has it); sms: the card's SM count: the walk of a
    shape for few rows (a record with split, fp32) where the default walk's grid B H (V / cols) is below it (None: the
    default walk)."""
    prefs = MATH_PREFS.get(math, (math,)) if math else ()

    def pick(op, mode, C, K, V, tin):
        for m in prefs:  # the twins asked for, most preferred first, then the fp32 kernel
            if m == "bf16" and op == "adj" and mode == "key" and KEY_MMA == "bf16f":
                k = delta_pick(km.kernels, op, mode, C, K, V, tin, "bf16f")  # the factored twin first, where the module has it
                if k is not None:
                    return k
            if m == "bf16" and op == "adj" and mode == "key" and KEY_MMA not in ("bf16", "bf16f"):
                continue  # the per-key adjoint's bf16 twin only under KEY_MMA "bf16" (or "bf16f" where no factored twin)
            k = delta_pick(km.kernels, op, mode, C, K, V, tin, m)
            if k is not None:
                return k
        return delta_pick(km.kernels, op, mode, C, K, V, tin)

    def walk_pick(mode, C, K, V, BH):
        ws = [k for k in km.kernels if k["op"] == "walk" and (k["C"], k["K"], k["V"]) == (C, K, V) and k.get("decay", mode) == mode and not k.get("zout")]
        if math and WALK in ("default", "tf32") and (mode != "key" or KEY_WALK == "many"):  # the walk for many rows (64 columns a block) where the module has it
            want = "tf32" if WALK == "tf32" else "tf32x3"
            many = next((w for w in ws if w.get("walkFor") == "many" and w.get("math") == want), None)
            if many is not None and (not sms or BH * (V // many["cols"]) * 2 >= sms):
                return many
        ws = [k for k in ws if not k.get("walkFor")]
        fp = [k for k in ws if not k.get("math")]
        k = next((k for k in fp if not k.get("split")), fp[0] if fp else None)
        if k is not None and sms and BH * (V // k["cols"]) < sms:
            k = next((w for w in fp if w.get("split")), k)
        elif k is not None and math:  # math asked for: the default walk's twin (delta-walk-mma.ts: 3xTF32) where the module has it
            k = next((w for m in prefs + ("tf32x3",) for w in ws if w.get("math") == m and w["cols"] == k["cols"]), k)
        return k

    def bf16_walk(mode, C, K, V, BH, win):
        """The bf16 walk (a record with win "mn" / "all") for the shape: the one for many rows where its grid B H (V / cols) 2
        >= the SM count (or no SM count is given, or no walk for few rows), else the one for few rows; None: neither."""
        ws = [k for k in km.kernels if k["op"] == "walk" and k.get("win") == win and (k["C"], k["K"], k["V"]) == (C, K, V) and k.get("decay", mode) == mode]
        many = next((w for w in ws if w.get("walkFor") == "many"), None)
        few = next((w for w in ws if w.get("walkFor") == "few"), None)
        return many if many is not None and (few is None or not sms or BH * (V // many["cols"]) * 2 >= sms) else few

    def wout_sibling(k, win):  # prep_bwd's record writing the bf16 walk's operands (entry <its entry>_wb / _wbx), or None
        e = k["entry"] + ("_wbx" if win == "all" else "_wb")
        for sfx, bm in (("q_bm16", "bf16"), ("q", None)) if PREP_BWD_STORE == "quad_bm16" else (("q", None),) if PREP_BWD_STORE == "quad" else ():
            # its sibling with 16-byte stores (_wbq / _wbxq; with BM as bf16 mma _wbq_bm16 / _wbxq_bm16), where the module has it
            q = next((x for x in km.kernels if x["entry"] == e + sfx and x.get("wout") == win and x.get("wstore") == "quad" and x.get("bmMma") == bm), None)
            if q is not None:
                return q
        return next((x for x in km.kernels if x["entry"] == e and x.get("wout") == win and not x.get("wstore")), None)

    def walk_bf16(mode, C, K, V, tin, BH):
        """The reverse walk's bf16 operands delta_kernels takes for the shape ("mn" / "all": WALK_BF16 "on" / "all"), or None
        (WALK_BF16 "off", no math, or the module lacks prep_bwd's wout sibling or the bf16 walk)."""
        win = ("mn" if KEY_WALK_BF16 == "on" and math == "bf16" else None) if mode == "key" else {"on": "mn", "all": "all"}.get(WALK_BF16)
        if win is None or not math:
            return None
        p = pick("prep_bwd", mode, C, K, V, tin_name(tin))
        f = pick("prep_fwd", mode, C, K, V, tin_name(tin)) if mode == "key" else None  # (per key: both walks)
        if mode == "key" and (f is None or wout_sibling(f, win) is None):
            return None
        return win if p is not None and wout_sibling(p, win) is not None and bf16_walk(mode, C, K, V, BH, win) is not None else None

    def zsib(k):  # a record's bf16-state sibling (zout / zin, entry <its entry>_zb), or None
        return zb_sibling(km.kernels, k)

    def zbf16(mode, C, K, V, tin, BH):
        """Whether delta_kernels takes the bf16-state path for the shape: ZBF16 "on", the adjoint picked a bf16 twin with a
        zin sibling and the walk picked with a zout sibling."""
        if ZBF16 != "on":
            return False
        a = pick("adj", mode, C, K, V, tin_name(tin))
        return a is not None and a.get("math") == "bf16" and zsib(a) is not None and zsib(walk_pick(mode, C, K, V, BH)) is not None

    def prep_r_pick(mode, C, K, V, tin):
        """The prep_r record (LR_DELTA_PREP_R: "on" head and tail, "bf16" head only: mprod) for the shape, or None."""
        want = "bf16" if PREP_R == "bf16" else None
        return next((k for k in km.kernels if k["op"] == "prep_r" and (k["C"], k["K"], k["V"]) == (C, K, V) and k["decay"] == mode and k["tin"] == tin and k.get("mprod") == want), None)

    def prep_r(mode, C, K, V, tin, BH, S):
        """Whether delta_kernels takes prep_r for the shape with the forward's chunk states S: PREP_R "on" / "bf16", S
        bfloat16, the bf16-state path (zbf16) and the module's record."""
        if PREP_R not in ("on", "bf16") or S.dtype != torch.bfloat16 or not zbf16(mode, C, K, V, tin, BH):
            return False
        return prep_r_pick(mode, C, K, V, tin_name(tin)) is not None

    def tok(x, dt):
        x = x.to(dt).contiguous()
        return x if x.data_ptr() % 16 == 0 else x.clone()  # (the kernels' vector loads)

    def f32(x):  # Z0 (the fp32 walks' float4 loads) and LD (per key: prep's float4 loads) as tok's: a view may sit off 16 bytes
        return tok(x, torch.float32) if x is not None else None

    def ptr(x):
        return ("ptr", x.data_ptr() if x is not None else 0)

    def out(*shape, dtype=torch.float32):
        return torch.empty(list(shape), dtype=dtype, device=device)

    def go(k, grid, args):
        with torch.cuda.device(device):
            km.launch(k, grid, args, torch.cuda.current_stream(device).cuda_stream)

    def launch(op, mode, C, K, V, *ts, zout=False, wout=None, win=None):
        if op == "walk":
            M, X, BM, NN, A, Z0, BH, nC, reverse = ts
            k = walk_pick(mode, C, K, V, BH)
            if win:  # prep_bwd's bf16 operands (wout, LR_DELTA_WALK_BF16): the bf16 walk, writing bf16 ZS and Y
                k = bf16_walk(mode, C, K, V, BH, win)
                if k is None or not (zout or k.get("zout") == "f32"):
                    raise ValueError("delta walk: no bf16 walk (win %s) for %s C %d K %d V %d, or zout not asked for" % (win, mode, C, K, V))
                zout = False  # (the record writes bf16 itself; the per-key ones, zout "f32", float32)
                zb = k.get("zout") != "f32"
            else:
                zb = zout
            if zout:  # ZS and Y as bf16 (LR_DELTA_ZBF16): the walk's sibling
                k = zsib(k)
                if k is None:
                    raise ValueError("delta walk: no bf16-state (zout) sibling for %s C %d K %d V %d" % (mode, C, K, V))
            N = BH * nC
            zt = torch.bfloat16 if zb else torch.float32
            ZS, Y, ZF = out(N, K, V, dtype=zt), out(N, C, V, dtype=zt), out(BH, K, V)
            Z0 = f32(Z0.reshape(BH, K, V) if Z0 is not None else None)
            go(k, (BH, V // k["cols"]), [ptr(M), ptr(X), ptr(BM), ptr(NN), ptr(A), ptr(Z0), ptr(ZS), ptr(Y), ptr(ZF), ("u32", BH), ("u32", nC), ("u32", reverse)])
            return ZS, Y, ZF
        B, T, H = ts[-3:]
        nC = -(-T // C)
        N = B * H * nC
        ins = ts[:-3]
        dt = ins[0].dtype
        k = pick(op, mode, C, K, V, TIN[dt])
        LD = ins[4] if op in ("prep_fwd", "prep_bwd", "prep_r") else ins[6]
        LD = f32(LD)
        dims = [("u32", B), ("u32", T), ("u32", H)]
        an = (N, K) if mode == "key" else (N,)  # A: exp(G_C) a chunk, a key with mode "key"
        if op == "prep_r":  # (U, W, KK, VV, LD, S): TI float32, R bfloat16 [N, C, V] (S bf16 [N, K, V], the forward's states)
            k = prep_r_pick(mode, C, K, V, TIN[dt])
            U, W, KK, VV = (tok(x, dt) for x in ins[:4])
            S = ins[5]
            if k is None or S.dtype != torch.bfloat16 or S.shape[0] != N:
                raise ValueError("delta prep_r: no record for %s C %d K %d V %d, or states not bf16 [N, K, V]" % (mode, C, K, V))
            S = tok(S, torch.bfloat16)
            TI, R = out(N, C, C), out(N, C, V, dtype=torch.bfloat16)
            go(k, (N, 1), [ptr(U), ptr(W), ptr(KK), ptr(VV), ptr(LD), ptr(S)] + dims + [ptr(TI), ptr(R)])
            return TI, R
        if op == "prep_fwd":
            U, W, KK, VV = (tok(x, dt) for x in ins[:4])
            if wout:  # (per key, LR_DELTA_KEY_WALK_BF16) the forward walk's M, NN^T [N, K, C] bf16
                k = wout_sibling(k, wout)
                if k is None:
                    raise ValueError("delta prep_fwd: no wout %s sibling for %s C %d K %d V %d" % (wout, mode, C, K, V))
                TI, M, X, BM, NN, A = out(N, C, C), out(N, C, K, dtype=torch.bfloat16), out(N, C, V), out(N, K, V), out(N, K, C, dtype=torch.bfloat16), out(*an)
            else:
                TI, M, X, BM, NN, A = out(N, C, C), out(N, C, K), out(N, C, V), out(N, K, V), out(N, C, K), out(*an)
            go(k, (N, 1), [ptr(U), ptr(W), ptr(KK), ptr(VV), ptr(LD)] + dims + [ptr(TI), ptr(M), ptr(X), ptr(BM), ptr(NN), ptr(A)])
            return TI, M, X, BM, NN, A
        if op == "prep_bwd":
            Q, U, W, DY = (tok(x, dt) for x in ins[:4])
            TI = ins[5]
            if wout:  # the bf16 walk's operands (LR_DELTA_WALK_BF16): M, NN^T [N, K, C] bf16 (X, BM too with "all")
                k = wout_sibling(k, wout)
                if k is None:
                    raise ValueError("delta prep_bwd: no wout %s sibling for %s C %d K %d V %d" % (wout, mode, C, K, V))
                xt = torch.bfloat16 if wout == "all" else torch.float32
                M, X, BM, NN, A = out(N, C, K, dtype=torch.bfloat16), out(N, C, V, dtype=xt), out(N, K, V, dtype=xt), out(N, K, C, dtype=torch.bfloat16), out(*an)
            else:
                M, X, BM, NN, A = out(N, C, K), out(N, C, V), out(N, K, V), out(N, C, K), out(*an)
            go(k, (N, 1), [ptr(Q), ptr(U), ptr(W), ptr(DY), ptr(LD), ptr(TI)] + dims + [ptr(M), ptr(X), ptr(BM), ptr(NN), ptr(A)])
            return M, X, BM, NN, A
        Q, U, W, KK, VV, DY = (tok(x, dt) for x in ins[:6])
        R, S0, SF, LE, DR = ins[7:12]
        if R.dtype == torch.bfloat16:  # the bf16-state path: the adjoint's sibling reading bf16 R, S0, LE, DR (SF float32)
            k = zsib(k)
            if k is None or not all(x.dtype == torch.bfloat16 and x.is_contiguous() for x in (R, S0, LE, DR)):
                raise ValueError("delta adj: bf16 R needs a zin sibling and contiguous bf16 R, S0, LE, DR")
            SF = SF.to(torch.float32).contiguous()
        ob = next((x for x in km.kernels if x["entry"] == k["entry"] + "_ob"), None) if ADJ_OUT == "bf16" else None
        if ob is not None:  # the gradients as bf16 (ADJ_OUT): the pick's sibling storing them rounded
            k = ob
        ca = next((x for x in km.kernels if x["entry"] == k["entry"] + "_ca" and x.get("load") == "ca"), None) if ADJ_LOAD == "ca" and R.dtype == torch.bfloat16 else None
        if ca is not None:  # every chunk input by cp.async (ADJ_LOAD): the same outputs
            k = ca
        gt = torch.bfloat16 if ob is not None else torch.float32
        dQ, dU, dW, dK, dV = (out(B, T, H, w, dtype=gt) for w in (K, K, K, K, V))
        dLD = out(B, T, H) if mode == "scalar" else out(B, T, H, K) if mode == "key" else None
        go(k, (N, 1), [ptr(Q), ptr(U), ptr(W), ptr(KK), ptr(VV), ptr(DY), ptr(LD), ptr(R), ptr(S0), ptr(SF), ptr(LE), ptr(DR)] + dims +
           [ptr(dQ), ptr(dU), ptr(dW), ptr(dK), ptr(dV), ptr(dLD)])
        return dQ, dU, dW, dK, dV, dLD

    def has(mode, C, K, V, dtype):
        tin = TIN.get(dtype)
        return tin is not None and walk_pick(mode, C, K, V, 1) is not None and all(pick(op, mode, C, K, V, tin) is not None for op in DELTA_OPS if op != "walk")
    launch.has = has
    launch.prep_r = prep_r
    launch.zbf16 = zbf16
    launch.walk_bf16 = walk_bf16
    return launch
