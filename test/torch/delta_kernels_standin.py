"""A stand-in for the delta backward's five CUDA kernels (runtime/torch/seqc_delta_bwd.py delta_launcher's launch
contract; compiler/backends/cuda/delta-*.ts, each checked on its own by its emulation test) in torch ops on CPU, from the
kernels' definitions (docs/delta-backward.md): per chunk of C tokens the scores and Tinv = (I - Luu)^-1 as
an explicit inverse, the walk a chunk at a time (Z = A Z + BM + NN^T (X + M Z)), the adjoint's formulas. Used by
test/torch/lowrank_glue.py (deltaKern "recurrence"); outputs in the inputs' dtype (float64 there)."""

import torch


def chunk_rows(x, C):
    """[B, T, H, w] or [B, T, H] -> [B H nC, C, w], zero past T."""
    if x.dim() == 3:
        x = x.unsqueeze(3)
    B, T, H, w = x.shape
    nC = -(-T // C)
    y = torch.zeros([B, H, nC * C, w], dtype=x.dtype)
    y[:, :, :T] = x.permute(0, 2, 1, 3)
    return y.reshape(B * H * nC, C, w)


def token_rows(x, B, T, H):
    return x.reshape(B, H, -1, x.shape[2])[:, :, :T].permute(0, 2, 1, 3).contiguous()


def chunk_setup(C, LD, B, T, H, dtype, N):
    """G [N, C], Gm (G[a-1]), GC [N, 1], E0 (f < a) and E1 (f <= a) decay factors."""
    G = torch.cumsum(chunk_rows(LD.to(dtype), C)[:, :, 0], 1) if LD is not None else torch.zeros([N, C], dtype=dtype)
    Gm = torch.cat([torch.zeros([N, 1], dtype=dtype), G[:, :-1]], 1)
    a = torch.arange(C)
    lt, le = (a[:, None] > a[None, :]), (a[:, None] >= a[None, :])
    E0 = torch.where(lt, torch.exp(torch.where(lt, Gm[:, :, None] - G[:, None, :], 0)), 0)
    E1 = torch.where(le, torch.exp(torch.where(le, G[:, :, None] - G[:, None, :], 0)), 0)
    return G, Gm, G[:, -1:], E0, E1


def key_op(op, C, ts, dtype):
    """The per-token ops with a per-key decay (mode "key": LD [B, T, H, K], A [N, K], dLD [B, T, H, K]) from the
    definitions (docs/delta-backward.md "A per-key decay"), every factor exp(G[a] - G[f]) a key taken directly."""
    B, T, H = ts[-3:]
    LD = ts[4] if op in ("prep_fwd", "prep_bwd") else ts[6]
    G = torch.cumsum(chunk_rows(LD.to(dtype), C), 1)  # [N, C, K]
    Gm = torch.cat([torch.zeros_like(G[:, :1]), G[:, :-1]], 1)
    GC = G[:, -1:]
    eC = torch.exp(GC - G)
    a = torch.arange(C)
    lt, le = (a[:, None] > a[None, :]).to(dtype), (a[:, None] >= a[None, :]).to(dtype)
    D0 = torch.exp((Gm[:, :, None] - G[:, None]).clamp(max=0)) * lt[:, :, None]  # [N, a, f, K]
    D1 = torch.exp((G[:, :, None] - G[:, None]).clamp(max=0)) * le[:, :, None]

    def sc(x, y, D):
        return torch.einsum("nai,nfi,nafi->naf", x, y, D)

    def rows(x):
        return chunk_rows(x, C)
    if op == "prep_fwd":
        U, W, KK, VV = (rows(x) for x in ts[:4])
        TI = torch.linalg.inv(torch.eye(C, dtype=dtype) - sc(W, U, D0))
        return TI, TI @ (torch.exp(Gm) * W), TI @ (sc(W, KK, D0) @ VV), (eC * KK).transpose(1, 2) @ VV, eC * U, torch.exp(GC[:, 0])
    if op == "prep_bwd":
        Q, U, W, DY = (rows(x) for x in ts[:4])
        TT = ts[5].transpose(1, 2)
        return TT @ (eC * U), TT @ (sc(Q, U, D1).transpose(1, 2) @ DY), (torch.exp(G) * Q).transpose(1, 2) @ DY, torch.exp(Gm) * W, torch.exp(GC[:, 0])
    Q, U, W, KK, VV, DY = (rows(x) for x in ts[:6])
    R, S0, SF, LE, DR = ts[7:12]
    K, V = Q.shape[2], VV.shape[2]
    N = Q.shape[0]
    nC = N // (B * H)
    yv, rv = (DY @ VV.transpose(1, 2)) * le, (DR @ VV.transpose(1, 2)) * lt
    yr, rr = (DY @ R.transpose(1, 2)) * le, (DR @ R.transpose(1, 2)) * lt

    def mf(A, x, D):
        return torch.einsum("naf,nai,nafi->nfi", A, x, D)

    def ma(A, y, D):
        return torch.einsum("naf,nfi,nafi->nai", A, y, D)
    dV = sc(Q, KK, D1).transpose(1, 2) @ DY + sc(W, KK, D0).transpose(1, 2) @ DR + (eC * KK) @ LE
    dK = mf(yv, Q, D1) + mf(rv, W, D0) + eC * (VV @ LE.transpose(1, 2))
    dU = mf(yr, Q, D1) + mf(rr, W, D0) + eC * (R @ LE.transpose(1, 2))
    dQ = torch.exp(G) * (DY @ S0.transpose(1, 2)) + ma(yr, U, D1) + ma(yv, KK, D1)
    dW = torch.exp(Gm) * (DR @ S0.transpose(1, 2)) + ma(rr, U, D0) + ma(rv, KK, D0)
    SC = torch.cat([S0.reshape(B * H, nC, K, V)[:, 1:], SF.reshape(B * H, 1, K, V)], 1).reshape(N, K, V)
    aC = (LE * SC).sum(2)  # [N, K]
    terms = Q * dQ + W * dW - U * dU - KK * dK
    rc = torch.flip(torch.cumsum(torch.flip(terms, [1]), 1), [1])
    dLD = token_rows(aC[:, None] + rc - W * dW, B, T, H)
    return tuple(token_rows(x, B, T, H) for x in (dQ, dU, dW, dK, dV)) + (dLD,)


def standin(calls, dtype, tin=None, seen=None, adj_out=None):
    """launch(op, mode, C, K, V, *ts) as delta_launcher's; launch.has(mode, C, K, V, dt): any shape, dt == dtype (or tin).
    calls: the ops launched, in order. tin (torch.bfloat16): launch.tin, the per-token inputs' dtype delta_kernels gives
    (the real launcher's _bf16 kernels: computed in dtype here, from the bf16 values); seen: a list that gets each op's
    per-token tensors' dtypes ([op, [dtype names]]); adj_out (torch.bfloat16): adj's dQ, dU, dW, dK, dV in it (the
    launcher's _ob siblings, seqc_delta_bwd.ADJ_OUT: the values rounded), dLD in dtype."""

    def launch(op, mode, C, K, V, *ts):
        out = launch_(op, mode, C, K, V, *ts)
        if op == "adj" and adj_out is not None:
            out = tuple(x.to(adj_out) for x in out[:5]) + out[5:]
        return out

    def launch_(op, mode, C, K, V, *ts):
        calls.append(op)
        if seen is not None and op != "walk":
            seen.append([op, [str(x.dtype).split(".")[-1] for x in ts[: (4 if op in ("prep_fwd", "prep_bwd") else 6)]]])
        if tin is not None:  # (bf16 per-token inputs: their values in dtype)
            ts = tuple(x.to(dtype) if isinstance(x, torch.Tensor) and x.dtype == tin else x for x in ts)
        if op == "walk":
            M, X, BM, NN, A, Z0, BH, nC, reverse = ts
            ZS, Y = torch.empty([BH * nC, K, V], dtype=dtype), torch.empty([BH * nC, C, V], dtype=dtype)
            ZF = torch.empty([BH, K, V], dtype=dtype)
            for bh in range(BH):
                Z = Z0.reshape(BH, K, V)[bh].clone() if Z0 is not None else torch.zeros([K, V], dtype=dtype)
                for i in range(nC):
                    n = bh * nC + (nC - 1 - i if reverse else i)
                    ZS[n] = Z
                    Y[n] = X[n] + M[n] @ Z
                    Z = (A[n][:, None] if A.dim() == 2 else A[n]) * Z + BM[n] + NN[n].T @ Y[n]  # (A [N, K]: mode "key")
                ZF[bh] = Z
            return ZS, Y, ZF
        if mode == "key":
            return key_op(op, C, ts, dtype)
        B, T, H = ts[-3:]
        nC = -(-T // C)
        N = B * H * nC
        LD = ts[4] if op in ("prep_fwd", "prep_bwd") else ts[6]
        assert (LD is None) == (mode == "none")
        G, Gm, GC, E0, E1 = chunk_setup(C, LD, B, T, H, dtype, N)
        eC = torch.exp(GC - G)[:, :, None]

        def rows(x):
            return chunk_rows(x, C)

        def tinv(U, W):
            return torch.linalg.inv(torch.eye(C, dtype=dtype) - (W @ U.transpose(1, 2)) * E0)
        if op == "prep_fwd":
            U, W, KK, VV = (rows(x) for x in ts[:4])
            TI = tinv(U, W)
            Luk = (W @ KK.transpose(1, 2)) * E0
            return TI, TI @ (torch.exp(Gm)[:, :, None] * W), TI @ (Luk @ VV), (eC * KK).transpose(1, 2) @ VV, eC * U, torch.exp(GC[:, 0])
        if op == "prep_bwd":
            Q, U, W, DY = (rows(x) for x in ts[:4])
            TI = ts[5]
            Pu = (Q @ U.transpose(1, 2)) * E1
            TT = TI.transpose(1, 2)
            return TT @ (eC * U), TT @ (Pu.transpose(1, 2) @ DY), (torch.exp(G)[:, :, None] * Q).transpose(1, 2) @ DY, torch.exp(Gm)[:, :, None] * W, torch.exp(GC[:, 0])
        Q, U, W, KK, VV, DY = (rows(x) for x in ts[:6])
        R, S0, SF, LE, DR = ts[7:12]
        Luk, Pk = (W @ KK.transpose(1, 2)) * E0, (Q @ KK.transpose(1, 2)) * E1
        Ay, Ar = (DY @ VV.transpose(1, 2)) * E1, (DR @ VV.transpose(1, 2)) * E0
        By, Br = (DY @ R.transpose(1, 2)) * E1, (DR @ R.transpose(1, 2)) * E0
        dV = Pk.transpose(1, 2) @ DY + Luk.transpose(1, 2) @ DR + eC * (KK @ LE)
        dK = Ay.transpose(1, 2) @ Q + Ar.transpose(1, 2) @ W + eC * (VV @ LE.transpose(1, 2))
        dU = By.transpose(1, 2) @ Q + Br.transpose(1, 2) @ W + eC * (R @ LE.transpose(1, 2))
        dQ = torch.exp(G)[:, :, None] * (DY @ S0.transpose(1, 2)) + By @ U + Ay @ KK
        dW = torch.exp(Gm)[:, :, None] * (DR @ S0.transpose(1, 2)) + Br @ U + Ar @ KK
        dLD = None
        if mode == "scalar":
            # S_C: the next chunk's S0, the final state for each row's last chunk (the one holding token T - 1)
            SC = torch.cat([S0.reshape(B * H, nC, K, V)[:, 1:], SF.reshape(B * H, 1, K, V)], 1).reshape(N, K, V)
            aC = (LE * SC).sum((1, 2))
            wdw = (W * dW).sum(2)
            terms = (Q * dQ).sum(2) + wdw - (U * dU).sum(2) - (KK * dK).sum(2)
            rc = torch.flip(torch.cumsum(torch.flip(terms, [1]), 1), [1])
            dLD = token_rows((aC[:, None] + rc - wdw)[:, :, None], B, T, H)[..., 0]
        return tuple(token_rows(x, B, T, H) for x in (dQ, dU, dW, dK, dV)) + (dLD,)

    launch.has = lambda mode, C, K, V, dt: dt == dtype or (tin is not None and dt == tin)
    launch.tin = tin
    return launch
