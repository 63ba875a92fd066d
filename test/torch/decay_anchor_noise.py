"""Driver for test/torch-decay-anchor.test.ts: the anchored decay adjoint (runtime/torch/seqc_decay_adjoint.py) on
numpy (the stand-in torch of test/torch/fake) against a direct float64 recurrence, and under noise.

For S_t = diag(exp(ld_t)) S_{t-1} + k_t v_t^T, y_t = S_t^T q_t, L = sum_t dy_t . y_t + <dS, S_T> (per head; ld per
head or per key row) the recurrence gives dq_t = S_t dy_t, G_t = D_{t+1} G_{t+1} + q_t dy_t^T (G_T = dS + q_T dy_T^T),
dk_t = G_t v_t and dld_t = <G_t, D_t S_{t-1}> (summed over the key rows for a scalar decay) directly.
Then dq and dk get relative errors of 2^-9 (each element times 1 + 2^-9 u, u uniform in [-1, 1]: a bf16 operand's
rounding) and dld is rebuilt from the noisy terms q.dq - k.dk: once as one sum over the whole sequence from <dS, S_T>
(the plain way), once anchored every C tokens. stdin: {"T", "H", "K", "V", "perKey", "C", "seed", "decay": [lo, hi],
"init", "gram"?}; prints {"exact_plain", "exact_anchored", "noisy_plain", "noisy_anchored"}: relative errors against the direct dld."""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "fake"))
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import numpy as np  # noqa: E402
from seqc_decay_adjoint import anchored_decay_adjoint  # noqa: E402


def main():
    c = json.loads(sys.stdin.readline())
    T, H, K, V, per_key, C = c["T"], c["H"], c["K"], c["V"], c["perKey"], c["C"]
    r = np.random.default_rng(c["seed"])
    B = 2
    Kd = K if per_key else 1
    lo, hi = c["decay"]
    ld = r.uniform(lo, hi, size=(B, T, H, Kd))
    q, k = r.standard_normal((B, T, H, K)) / np.sqrt(K), r.standard_normal((B, T, H, K))
    v, dy = r.standard_normal((B, T, H, V)), r.standard_normal((B, T, H, V))
    S0 = r.standard_normal((B, H, K, V)) if c["init"] else np.zeros((B, H, K, V))
    dS = r.standard_normal((B, H, K, V))
    D = np.exp(ld)[..., None]  # [B, T, H, Kd, 1]: scales the state's rows
    S = np.zeros((B, T + 1, H, K, V))
    S[:, 0] = S0
    for t in range(T):
        S[:, t + 1] = D[:, t] * S[:, t] + k[:, t, :, :, None] * v[:, t, :, None, :]
    G = np.zeros((B, T, H, K, V))
    nxt = dS
    for t in range(T - 1, -1, -1):
        G[:, t] = nxt + q[:, t, :, :, None] * dy[:, t, :, None, :]
        nxt = D[:, t] * G[:, t]
    dq = np.einsum("bthkv,bthv->bthk", S[:, 1:], dy)
    dk = np.einsum("bthkv,bthv->bthk", G, v)
    rows = (G * D * S[:, :-1]).sum(4)  # [B, T, H, K]
    dld = rows if per_key else rows.sum(3, keepdims=True)

    def rebuild(dq_, dk_, anchored):
        t_ = q * dq_ - k * dk_
        t_ = (t_ if per_key else t_.sum(3, keepdims=True)).reshape(B, T, H * Kd)
        if anchored:
            return anchored_decay_adjoint(t_, ld.reshape(B, T, H * Kd), [(k.reshape(B, T, H * K), v.reshape(B, T, H * V))],
                                          [(q.reshape(B, T, H * K), dy.reshape(B, T, H * V))], S0.reshape(B, -1), dS.reshape(B, -1),
                                          B, T, H, K, V, per_key, np.float64, None, C, c.get("gram"))
        a0 = (dS * S[:, T]).sum(3)
        a0 = a0 if per_key else a0.sum(2, keepdims=True)
        return np.flip(np.cumsum(np.flip(t_, 1), 1), 1) + a0.reshape(B, 1, H * Kd)

    want = dld.reshape(B, T, H * Kd)

    def rel(x):
        return float(np.linalg.norm(x - want) / np.linalg.norm(want))
    e = 2.0 ** -9
    dq_n = dq * (1 + e * r.uniform(-1, 1, dq.shape))
    dk_n = dk * (1 + e * r.uniform(-1, 1, dk.shape))
    print(json.dumps({"exact_plain": rel(rebuild(dq, dk, False)), "exact_anchored": rel(rebuild(dq, dk, True)),
                      "noisy_plain": rel(rebuild(dq_n, dk_n, False)), "noisy_anchored": rel(rebuild(dq_n, dk_n, True))}))


main()
