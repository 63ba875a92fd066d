"""The log decays' adjoint anchored at chunk boundaries (part of seqc's torch target; copied next to the generated modules).

For S_t = D_t S_{t-1} + sum_p k_t v_t^T (D_t = exp(ld_t), per head or per key row), y_t = S_t^T q_t, the adjoint
G_t = dL/dS_t and a_t = <G_t, S_t> (per head; per key row for a per-key decay), the decay's gradient is
  dld_t = a_t - k_t.dk_t,   a_t = a_{t+1} + q_t.dq_t - k_{t+1}.dk_{t+1}
(docs/training.md, "The chunked backward"). chain_backward (seqc_chunked.py) sums the terms q.dq - k.dk from the end:
dld_t = <dS_N, S_N> + sum_{u >= t} (q_u.dq_u - k_u.dk_u). The sum cancels: where dq and dk carry relative errors of
2^-9 (the transposed cores on bf16 operands, seqc_chunked.TRANSPOSED_IO "mixed"), 2048 of those errors add up to
1.6e-2 of Simple GLA's dg and 4.5e-2 of Mamba-2's dA (bench/RESULTS.md, "Mixed-I/O transposed cores").

Here the sum starts afresh at the end b of every chunk of C tokens from a value computed from the inputs alone:
  dld_t = alpha_b + sum_{u = t..b} (q_u.dq_u - k_u.dk_u),   alpha_b = <G^_b, S_b>,   G^_b = D_{b+1} G_{b+1}
(G^_b: the adjoint reaching S_b from after b, G^ = dS_N at the last token), so a term's error reaches at most the
C - 1 tokens before it. The boundary values come from the chunks' own products:
  S_b(j)  = sum_{i <= j} F[j, i] U_i,   U_i = sum_{s in chunk i} exp(g_end_i - g_s) k_s v_s^T   (U_-1 = S_0)
  G^_b(j) = sum_{i > j} W[j, i] R_i,    R_i = sum_{u in chunk i} exp(g_u) q_u dy_u^T             (R_n = dS_N)
with g the decays' inclusive cumulative sum inside a chunk and F, W the chunk totals' decay between chunks; so
alpha_j = sum_{i, i'} F[j, i] <U_i, R_i'> W[j, i'] (a Gram matrix of the chunks' products, [n + 1, n] per head or
key row). The exponents F and W are sums of the chunk totals over their exact ranges (masked matrix products), not
differences of a running sum: no cancellation in the exponents either.

Costs (matrix products): U and R 2 B T H K V multiply-adds, the Gram B H n^2 K V (n = T / C). The torch functions it
uses are those of test/torch/fake (a numpy stand-in): zeros, ones, tril, exp, cumsum, flip, permute, transpose, matmul.
"""

import torch

# Tokens per chunk: the longest run of terms q.dq - k.dk summed without an anchor.
ANCHOR_CHUNK = 64
# How the Gram matrix of the chunk products is formed: "lean" (the default) the inputs copied once into head-major chunk
# blocks (the decay weights applied in the same pass), U and R by products on those without copies, the Gram in four
# products (U R, U dS_N, S_0 R, S_0 dS_N) without the stacks; "stack" U and R from permuted views of the token-major
# inputs (matmul copies them), then copied with S_0 and dS_N into two stacks, one product. At (8, 2048, 16, 64) "stack"
# moves about 1.75 GB, "lean" about 1.1 GB (read from the code); on the H100 the bf16 step with graphs took 0.32 ms
# (SimpleGLA) and 0.64 ms (Mamba-2) less with "lean" (bench/RESULTS.md "The glue's reversals and reverse sums").
ANCHOR_GRAM = "lean"
# How the reverse sums inside a chunk run (chunk_reverse_sums): "chunk" (the default) a product with a triangular ones
# matrix; "cumsum" a torch.cumsum along the chunk; "flip" a cumsum between two torch.flip (the old way).
REVERSE_SUM = "chunk"
# How the lean Gram's products with the readouts' side run: "four" (the way before) U R^T, U dS_N, S_0 R^T, S_0 dS_N
# (U read twice: a batched GEMM and a GEMV); "two" dS_N written into R_0's row (R_0 is never used: R'_b = R_{b+1}), then
# U [dS_N, R_1 .. R_{n-1}]^T and S_0 [..]^T (U read once; the same dot products, summed by one GEMM). (The chain passes
# seqc_chunked.GRAM_PRODUCTS; this default is for direct callers.)
GRAM_PRODUCTS = "four"
# ("groups", a scalar decay only: U and R as GRAM_GROUPS groups of K / GRAM_GROUPS key rows each (the anchor chunks
# kernel's kg; the copies' products viewed so), the "two" products per group, summed over the groups: a batched GEMM of
# B H GRAM_GROUPS small products in place of B H long ones (cuBLAS ran U [dS_N, R]^T, 128 products of 32 x 4096 x 32, as
# 128 blocks: 0.07 ms each on the H200 in SimpleGLA's step, bench/torch/results/s12-run1-profile-simple_gla-s12-new.txt).)
GRAM_GROUPS = 8
# How the anchors alpha_j = <G^_j, S_j> are formed from the chunk products U and R: "gram" (the way before) the Gram matrix
# of all chunks' products, B H n^2 K V multiply-adds (n = T / C) and three B H n^3 exponent / weight products: at
# (1, 32768, 32, 64) with n = 512 about 95 GFLOP in float32, 16 times (4, 8192)'s for the same tokens; "segments" the
# chunk states' scan in segments of ANCHOR_SEGMENT chunks (_alpha_segments): each segment's end state and its first
# chunk's adjoint from one weighted sum per segment and a scan over the n / m segments, then per segment the Gram of its
# own m chunks only (B H n m K V), the states entering and leaving it folded into its first U and last R: U and R read
# twice each, no [n, n] matrix. (The chain passes seqc_chunked.ANCHOR_ALPHA; this default is for direct callers.)
ANCHOR_ALPHA = "gram"
# Chunks per segment of ANCHOR_ALPHA "segments".
ANCHOR_SEGMENT = 16


class _Fp32Products:
    """Matrix products in full fp32 inside (not TF32, whatever torch.backends.cuda.matmul.allow_tf32 says): the
    anchors' point is fp32's precision."""

    def __enter__(self):
        mm = getattr(getattr(getattr(torch, "backends", None), "cuda", None), "matmul", None)
        self.mm, self.old = mm, getattr(mm, "allow_tf32", None)
        if self.old:
            mm.allow_tf32 = False

    def __exit__(self, *exc):
        if self.old:
            self.mm.allow_tf32 = self.old
        return False


def anchored_decay_adjoint(terms, ld, pairs, readouts, S0, dS, B, T, H, K, V, per_key, dtype, device, C=None, gram=None, reverse=None, products=None, gram_products=None, alpha=None, segment=None):
    """dld [B, T, L] (L = H, or H K for a per-key decay) from the per-token terms q.dq - k.dk (terms [B, T, L], summed
    over the readouts and pairs), re-anchored every C tokens (None: ANCHOR_CHUNK; C >= T: one anchor, as the plain
    sum from <dS_N, S_N>).
    ld: the log decays [B, T, L]; pairs [(k [B, T, H*K], v [B, T, H*V])]; readouts [(q [B, T, H*K], dy [B, T, H*V])]
    (the float values, not a bf16 copy); S0, dS: the initial state and the final state's adjoint [B, H*K*V]
    (canonical [H, K, V]). gram: "stack" / "lean" (None: ANCHOR_GRAM); reverse: how the sums inside the chunks run
    ("chunk" / "cumsum" / "flip": chunk_reverse_sums; None: REVERSE_SUM).
    products(xs, w, kg=None) -> the chunk products sum_(a, b) in xs sum_(s in chunk) (a_s w_s) b_s^T in the Gram's row
    layout [B, H, Kd, n, R] (xs the pairs or readouts as given, w tail or head [B, H, n, C, Kd]; kg: in groups of kg key
    rows, [B, H, K / kg, n, kg V], GRAM_PRODUCTS "groups"), or None where it does not
    apply: the lean Gram's products without its copies (seqc_chunked.ANCHOR_CHUNKS "kernel": the anchor chunks kernel);
    None (the default): the lean Gram's copies and products. gram_products: "four" / "two" (the lean Gram's products
    with the readouts' side; None: GRAM_PRODUCTS). alpha: "gram" / "segments" (how the anchors are formed from U and R;
    None: ANCHOR_ALPHA; "segments" with the lean products only, "stack" keeps the Gram), segment: its chunks per segment
    (None: ANCHOR_SEGMENT)."""
    C = max(1, min(C or ANCHOR_CHUNK, T))
    n = -(-T // C)
    Tp = n * C
    Kd = K if per_key else 1  # decays per head
    R = V if per_key else K * V  # the values one decay scales
    way = gram or ANCHOR_GRAM
    if way not in ("stack", "lean"):
        raise ValueError("seqc_decay_adjoint: gram is %r; expected 'stack' or 'lean'" % (way,))
    # (a bf16 initial state reaches here as given: the Gram's products take the compute dtype)
    S0, dS = [x.to(dtype) if hasattr(x, "to") else x for x in (S0, dS)]

    def blocks(x, w):
        """[B, T, H*w] -> [B, H, n, C, w] (a view where T = n C), zero-padded to n C tokens (no decay, no update, no
        readout)."""
        return torch.permute(pad_tokens(x, Tp, dtype, device).reshape(B, n, C, H, w), [0, 3, 1, 2, 4])

    def blocks_c(x, w, weight=None):
        """[B, T, H*w] -> [B, H, n, C, w] in that memory order (one copy; times weight [B, H, n, C, 1 | w] in the same pass)."""
        out = (torch.zeros if Tp != T or not hasattr(torch, "empty") else torch.empty)([B, H, n, C, w], dtype=dtype, device=device)
        dst = torch.permute(out, [0, 2, 3, 1, 4])  # [B, n, C, H, w]: the token-major view of out
        wt = torch.permute(weight, [0, 2, 3, 1, 4]) if weight is not None else None
        nf, rem = T // C, T % C
        parts = [(dst[:, :nf], x[:, : nf * C].reshape(B, nf, C, H, w), wt[:, :nf] if wt is not None else None)] if nf else []
        if rem:
            parts.append((dst[:, nf, :rem], x[:, nf * C :].reshape(B, rem, H, w), wt[:, nf, :rem] if wt is not None else None))
        for d, src, f in parts:
            if f is None:
                d[...] = src
            elif hasattr(torch, "mul"):
                torch.mul(src, f, out=d)
            else:
                d[...] = src * f
        return out

    alpha_way = alpha or ANCHOR_ALPHA
    if alpha_way not in ("gram", "segments"):
        raise ValueError("seqc_decay_adjoint: alpha is %r; expected 'gram' or 'segments'" % (alpha_way,))
    with _Fp32Products():
        g = torch.cumsum(blocks(ld, Kd), 3)  # [B, H, n, C, Kd]
        g_end = g[:, :, :, C - 1 : C, :]  # [B, H, n, 1, Kd]
        tail, head = torch.exp(g_end - g), torch.exp(g)  # <= 1 for log decays <= 0
        if alpha_way == "segments" and way == "lean":
            lc = torch.permute(g_end.reshape(B, H, n, Kd), [0, 1, 3, 2])  # [B, H, Kd, n]
            U = _lean_sums(blocks_c, pairs, tail, B, H, K, n, Kd, R, products)
            Rr = _lean_sums(blocks_c, readouts, head, B, H, K, n, Kd, R, products)
            al = _alpha_segments(U, Rr, lc, S0.reshape(B, H, Kd, R), dS.reshape(B, H, Kd, R), segment or ANCHOR_SEGMENT, dtype, device)
            return reverse_sums(terms, B, T, H * Kd, C, reverse or REVERSE_SUM, dtype, device, anchors=torch.permute(al, [0, 3, 1, 2]))
        if way == "stack":
            gram = _gram_stack(blocks, pairs, readouts, tail, head, S0, dS, B, H, K, V, n, Kd, R, per_key, dtype, device)
        else:
            gram = _gram_lean(blocks_c, pairs, readouts, tail, head, S0, dS, B, H, K, V, n, Kd, R, dtype, device, products, gram_products or GRAM_PRODUCTS)

        # exponents over exact ranges of the chunk totals lc_l (l = 0..n-1):
        #   F[j, a] = exp(sum_{a <= l <= j} lc_l) for a <= j + 1 (U'_a = U_{a-1}: a = j + 1 is chunk j's own, weight 1)
        #   W[j, b] = exp(sum_{j < l <= b} lc_l) for b >= j     (R'_b = R_{b+1}: b = j is chunk j + 1's, weight 1)
        lc = torch.permute(g_end.reshape(B, H, n, Kd), [0, 1, 3, 2])  # [B, H, Kd, n]
        low = torch.tril(torch.ones([n + 1, n + 1], dtype=dtype, device=device))  # low[r, c] = (c <= r)
        le = low[:n, :n]  # le[j, l] = (l <= j)
        rng = lc.reshape(B, H, Kd, 1, n)
        f_exp = torch.matmul(rng * le, low[:n, :])  # sum_l lc_l (l <= j)(a <= l): [B, H, Kd, n, n + 1]
        w_exp = torch.matmul(rng * (1 - le), torch.transpose(le, 0, 1))  # sum_l lc_l (l > j)(l <= b): [.., n, n]
        F = torch.exp(f_exp) * low[1:, :]  # (a <= j + 1)
        W = torch.exp(w_exp) * torch.transpose(le, 0, 1)  # (b >= j)
        alpha = (torch.matmul(F, gram) * W).sum(4)  # [B, H, Kd, n]

    # dld_t = alpha_(t's chunk) + the terms' reverse cumulative sum inside the chunk
    return reverse_sums(terms, B, T, H * Kd, C, reverse or REVERSE_SUM, dtype, device, anchors=torch.permute(alpha, [0, 3, 1, 2]))


def _lean_sums(blocks_c, xs, w, B, H, K, n, Kd, R, products=None):
    """sum over (a, b) in xs of sum_(s in chunk i) (a_s w_s) b_s^T as [B, H, Kd, n, R] (products(xs, w), else the lean
    copies and products as _gram_lean's): a tensor of its own (the caller may write into it)."""
    got = products(xs, w) if products is not None else None
    if got is not None:
        return got
    out = None
    for a, b in xs:
        t = torch.matmul(torch.transpose(blocks_c(a, K, w), 3, 4), blocks_c(b, R // K if Kd == 1 else R))
        out = t if out is None else out + t
    return torch.permute(out.reshape(B, H, n, Kd, R), [0, 1, 3, 2, 4])  # [B, H, n, K, V] -> [B, H, Kd, n, R]


def _alpha_segments(U, Rr, lc, S0, dS, m, dtype, device):
    """alpha_j = <S_j, G^_j> [B, H, Kd, n] (ANCHOR_ALPHA "segments") from the chunk products U [B, H, Kd, n, R] (U_j:
    chunk j's updates decayed to its end), Rr [B, H, Kd, n, R] (R_j: chunk j's readouts' adjoint decayed to its start;
    R_0 unused), the chunk totals lc [B, H, Kd, n], S0 and dS [B, H, Kd, R]. U and Rr are written into.

    S_j = e^lc_j S_{j-1} + U_j (S_-1 = S0) is the state at chunk j's end; Y_j = e^lc_j Y_{j+1} + R_j (Y_n = dS) the
    adjoint at chunk j's start, so G^_j = Y_{j+1}. In segments of m chunks (n padded with empty chunks, lc 0): each
    segment's end state from zero, sum_i exp(sum_{i < l} lc_l) U_i, and its first Y from zero, sum_k exp(sum_{l < k} lc_l)
    R_k (one weighted sum each), then the scan over segments as one product with exact-range exponents (the Gram way's
    F); the state entering segment s (Z_s-1) goes into its first U as e^lc_first Z_s-1, the adjoint after it (Y at the
    next segment's first chunk) into its last R as e^lc_last Y; then inside a segment S_j = sum_{i <= j} F[j, i] U'_i and
    G^_j = sum_{k > j} W[j, k] R'_k, so alpha_j = sum_{i, k} F[j, i] P[i, k] W[j, k] with P = U' R'^T the segment's own
    Gram; the segment's last chunk: <Z_s, Y_first(s + 1)>. Exponents are sums of lc over their exact ranges."""
    B, H, Kd, n, R = (int(d) for d in U.shape)
    m = max(1, min(int(m), n))
    ns = -(-n // m)
    npad = ns * m
    if npad != n:  # empty chunks at the end: no update, no readout, no decay (S and Y pass through)
        Up, Rp, lp = (torch.zeros([B, H, Kd, npad] + ([R] if x is not lc else []), dtype=dtype, device=device) for x in (U, Rr, lc))
        Up[:, :, :, :n] = U
        Rp[:, :, :, :n] = Rr
        lp[:, :, :, :n] = lc
        U, Rr, lc = Up, Rp, lp
    Us = U.reshape(B, H, Kd, ns, m, R)
    Rs = Rr.reshape(B, H, Kd, ns, m, R)
    ls = lc.reshape(B, H, Kd, ns, 1, m)
    le = torch.tril(torch.ones([m, m], dtype=dtype, device=device))  # le[j, l] = (l <= j)
    gt = 1 - le  # gt[j, l] = (l > j)
    # F[j, i] = exp(sum_{i < l <= j} lc_l) (i <= j), W[j, k] = exp(sum_{j < l < k} lc_l) (k > j): [B, H, Kd, ns, m, m]
    F = torch.exp(torch.matmul(ls * le, torch.transpose(gt, 0, 1))) * le
    W = torch.exp(torch.matmul(ls * gt, gt)) * gt
    first = torch.exp(torch.matmul(ls, gt))  # exp(sum_{l < k} lc_l): [B, H, Kd, ns, 1, m]
    Zl = torch.matmul(F[:, :, :, :, m - 1 :, :], Us).reshape(B, H, Kd, ns, R)  # each segment's end state from zero
    Yl = torch.matmul(first, Rs).reshape(B, H, Kd, ns, R)  # its first chunk's Y from zero after it
    # the scan over segments (segment totals tot_s): Zall[s] the state entering segment s (Zall[0] = S0, Zall[ns] = S at
    # the last chunk), Yall[s] Y at segment s's first chunk (Yall[ns] = dS)
    rng = ls.reshape(B, H, Kd, ns, m).sum(4).reshape(B, H, Kd, 1, ns)
    low = torch.tril(torch.ones([ns + 1, ns + 1], dtype=dtype, device=device))  # low[r, c] = (c <= r)
    le2 = low[:ns, :ns]
    F2 = torch.exp(torch.matmul(rng * le2, low[:ns, :])) * low[1:, :]  # exp(sum_{a <= s' <= s} tot): [.., ns, ns + 1]
    W2 = torch.exp(torch.matmul(rng * torch.transpose(le2, 0, 1), 1 - low[:ns, :])) * torch.transpose(low, 0, 1)[:ns, :]  # exp(sum_{s <= s' < b} tot)
    st = torch.zeros([B, H, Kd, ns + 1, R], dtype=dtype, device=device)
    st[:, :, :, 0] = S0
    st[:, :, :, 1:] = Zl
    Zall = torch.zeros([B, H, Kd, ns + 1, R], dtype=dtype, device=device)
    Zall[:, :, :, 0] = S0
    Zall[:, :, :, 1:] = torch.matmul(F2, st)
    st[:, :, :, :ns] = Yl
    st[:, :, :, ns] = dS
    Yall = torch.zeros([B, H, Kd, ns + 1, R], dtype=dtype, device=device)
    Yall[:, :, :, :ns] = torch.matmul(W2, st)
    Yall[:, :, :, ns] = dS
    # the states entering and leaving each segment folded into its first U and last R
    Us[:, :, :, :, 0] = Us[:, :, :, :, 0] + torch.exp(ls[:, :, :, :, 0, :1]) * Zall[:, :, :, :ns]
    Rs[:, :, :, :, m - 1] = Rs[:, :, :, :, m - 1] + torch.exp(ls[:, :, :, :, 0, m - 1 :]) * Yall[:, :, :, 1:]
    P = torch.matmul(Us, torch.transpose(Rs, 4, 5))  # [B, H, Kd, ns, m, m]
    al = (torch.matmul(F, P) * W).sum(5)  # [B, H, Kd, ns, m] (the last chunk's row of W is 0)
    al[:, :, :, :, m - 1] = al[:, :, :, :, m - 1] + (Zall[:, :, :, 1:] * Yall[:, :, :, 1:]).sum(4)
    return al.reshape(B, H, Kd, npad)[:, :, :, :n]


def chunk_reverse_sums(tb, way):
    """tb [B, n, C, L] -> out[:, :, t] = sum_{u >= t} tb[:, :, u] inside each chunk (along dim 2). way: "chunk" a product
    with the triangular ones matrix (full fp32 products), "cumsum" one torch.cumsum along the chunk (the chunk's total
    minus the sum before t), "flip" the cumsum between two flips (the old way)."""
    C = tb.shape[2]
    if way == "flip":
        return torch.flip(torch.cumsum(torch.flip(tb, [2]), 2), [2])
    if way == "cumsum":
        cs = torch.cumsum(tb, 2)
        return cs[:, :, C - 1 : C] - cs + tb
    if way != "chunk":
        raise ValueError("seqc_decay_adjoint: reverse sum way is %r; expected 'chunk', 'cumsum' or 'flip'" % (way,))
    up = torch.transpose(torch.tril(torch.ones([C, C], dtype=tb.dtype, device=tb.device)), 0, 1)  # up[t, u] = (u >= t)
    with _Fp32Products():
        return torch.matmul(up, tb)


def pad_tokens(x, Tp, dtype, device):
    """x [B, T, w] zero-padded to [B, Tp, w] (Tp >= T; x itself where Tp = T)."""
    B, T = x.shape[0], x.shape[1]
    if Tp == T:
        return x
    y = torch.zeros([B, Tp] + list(x.shape[2:]), dtype=dtype, device=device)
    y[:, :T] = x
    return y


def reverse_sums(terms, B, T, L, C, way, dtype, device, after=None, anchors=None):
    """out_t = sum_{u >= t} terms_u over [B, T, L] from the end, as [B, T, L]: per chunk of C tokens (chunk_reverse_sums;
    no pass over the whole sequence: a reduction over T walks T tokens per thread, slow for small L), then per chunk
    either its anchor (anchors [B, n, L]: the sum restarts at every chunk's end, seqc_decay_adjoint's anchored adjoint)
    or the chunks after it and `after` ([B, L]: the value after the last token), the chunks' totals summed from the end
    by one product with a strictly triangular ones matrix. way "flip" without anchors: the old torch.flip, cumsum over
    T, flip. T not a multiple of C: the terms copied into zero-padded chunks."""
    C = max(1, min(C, T))
    n = -(-T // C)
    Tp = n * C
    terms = terms.reshape(B, T, L)
    if way == "flip" and anchors is None:
        out = torch.flip(torch.cumsum(torch.flip(terms, [1]), 1), [1])
        return out if after is None else out + after.reshape(B, 1, L)
    inner = chunk_reverse_sums(pad_tokens(terms, Tp, dtype, device).reshape(B, n, C, L), way)
    if anchors is not None:
        add = anchors.reshape(B, n, 1, L)
    else:
        add = None
        if n > 1:  # the chunks after chunk c: sum_{c' > c} total_c'
            tot = inner[:, :, 0, :]  # [B, n, L]
            su = 1 - torch.tril(torch.ones([n, n], dtype=dtype, device=device))  # su[c, c'] = (c' > c)
            with _Fp32Products():
                add = torch.matmul(su, tot)
        if after is not None:
            a = after.reshape(B, 1, L)
            add = a if add is None else add + a
        if add is None:
            return inner.reshape(B, Tp, L)[:, :T]
        add = add.reshape(B, -1, 1, L)
    return (inner + add).reshape(B, Tp, L)[:, :T]


def _gram_stack(blocks, pairs, readouts, tail, head, S0, dS, B, H, K, V, n, Kd, R, per_key, dtype, device):
    """<U'_a, R'_b> [B, H, Kd, n + 1, n] with U'_a = [S_0, U_0 .. U_{n-1}], R'_b = [R_1 .. R_{n-1}, dS_N], from two
    stacks (the measured way)."""
    Ue = torch.zeros([B, H, Kd, n + 1, R], dtype=dtype, device=device)
    Re = torch.zeros([B, H, Kd, n, R], dtype=dtype, device=device)
    Ue[:, :, :, 0] = S0.reshape(B, H, Kd, R)
    Re[:, :, :, n - 1] = dS.reshape(B, H, Kd, R)

    def chunk_sum(xs, w):  # sum over (a, b) of (a * w)^T b per chunk: [B, H, n, K, V]
        out = None
        for a, b in xs:
            t = torch.matmul(torch.transpose(blocks(a, K) * w, 3, 4), blocks(b, V))
            out = t if out is None else out + t
        return out

    def rows(x):  # [B, H, n, K, V] -> [B, H, Kd, n, R]
        if per_key:
            return torch.permute(x, [0, 1, 3, 2, 4])
        return x.reshape(B, H, 1, n, R)
    Ue[:, :, :, 1:] = rows(chunk_sum(pairs, tail))
    if n > 1:
        Re[:, :, :, : n - 1] = rows(chunk_sum(readouts, head))[:, :, :, 1:]
    return torch.matmul(Ue, torch.transpose(Re, 3, 4))


def _gram_lean(blocks_c, pairs, readouts, tail, head, S0, dS, B, H, K, V, n, Kd, R, dtype, device, products=None, fold="four"):
    """_gram_stack's result from head-major copies of the inputs (the decay weights applied in the copy), U and R by
    products without further copies, the Gram in four products (not timed yet: ANCHOR_GRAM). products(xs, w): U and R
    in the rows layout [B, H, Kd, n, R] without the copies (anchored_decay_adjoint), or None: the copies and products."""
    def chunk_sum(xs, w):  # [B, H, n, K, V], contiguous
        out = None
        for a, b in xs:
            t = torch.matmul(torch.transpose(blocks_c(a, K, w), 3, 4), blocks_c(b, V))
            out = t if out is None else out + t
        return out

    def rows(x):  # [B, H, n, K, V] -> [B, H, Kd, n, R] (a view for a scalar decay)
        return torch.permute(x.reshape(B, H, n, Kd, R), [0, 1, 3, 2, 4])
    def sums(xs, w):  # [B, H, Kd, n, R]
        got = products(xs, w) if products is not None else None
        return got if got is not None else rows(chunk_sum(xs, w))
    if fold not in ("four", "two", "groups"):
        raise ValueError("seqc_decay_adjoint: gram_products is %r; expected 'four', 'two' or 'groups'" % (fold,))
    G = min(GRAM_GROUPS, K)
    if fold == "groups" and Kd == 1 and G > 1 and K % G == 0:  # U, R in G groups of kg key rows; the groups' Grams summed
        kg = K // G
        Rg = kg * V

        def gsums(xs, w):  # [B, H, G, n, kg V]
            got = products(xs, w, kg) if products is not None else None
            return got if got is not None else torch.permute(chunk_sum(xs, w).reshape(B, H, n, G, Rg), [0, 1, 3, 2, 4])
        Ug = gsums(pairs, tail)
        if n > 1:  # dS_N in R_0's row (unused), as "two"
            Rs = gsums(readouts, head)
            Rs[:, :, :, 0] = dS.reshape(B, H, G, Rg)
        else:
            Rs = dS.reshape(B, H, G, 1, Rg)
        Rt = torch.transpose(Rs, 3, 4)  # [B, H, G, kg V, n]: dS_N, R_1 .. R_{n-1}
        P = torch.matmul(Ug, Rt).sum(2)  # [B, H, n, n]
        P0 = torch.matmul(S0.reshape(B, H, G, 1, Rg), Rt).sum(2)  # [B, H, 1, n]
        M = torch.zeros([B, H, 1, n + 1, n], dtype=dtype, device=device)
        for src, dst in ((P, slice(1, None)), (P0, slice(0, 1))):
            M[:, :, 0, dst, : n - 1] = src[:, :, :, 1:]
            M[:, :, 0, dst, n - 1 :] = src[:, :, :, :1]
        return M
    U = sums(pairs, tail)
    s0 = S0.reshape(B, H, Kd, 1, R)
    ds = torch.transpose(dS.reshape(B, H, Kd, 1, R), 3, 4)  # [B, H, Kd, R, 1]
    M = torch.zeros([B, H, Kd, n + 1, n], dtype=dtype, device=device)
    if n > 1 and fold == "two":  # dS_N in R_0's row (unused), then one product each for U and S_0
        Rs = sums(readouts, head)  # [B, H, Kd, n, R]
        Rs[:, :, :, 0] = dS.reshape(B, H, Kd, R)
        Rt = torch.transpose(Rs, 3, 4)  # [B, H, Kd, R, n]: dS_N, R_1 .. R_{n-1}
        for rows_, dst in ((U, slice(1, None)), (s0, slice(0, 1))):
            P = torch.matmul(rows_, Rt)  # [B, H, Kd, rows, n]
            M[:, :, :, dst, : n - 1] = P[:, :, :, :, 1:]
            M[:, :, :, dst, n - 1 :] = P[:, :, :, :, :1]
        return M
    M[:, :, :, 1:, n - 1 :] = torch.matmul(U, ds)
    M[:, :, :, :1, n - 1 :] = torch.matmul(s0, ds)
    if n > 1:
        Rt = torch.transpose(sums(readouts, head)[:, :, :, 1:], 3, 4)  # R_1 .. R_{n-1}: [B, H, Kd, R, n - 1]
        M[:, :, :, 1:, : n - 1] = torch.matmul(U, Rt)
        M[:, :, :, :1, : n - 1] = torch.matmul(s0, Rt)
    return M
