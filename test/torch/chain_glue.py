"""Driver for test/torch-chunked.test.ts: runs runtime/torch/seqc_chunked.py's chain_backward on numpy (the
stand-in torch of test/torch/fake) with every chain model run by the test's float64 interpreter over a line
protocol: this prints {"run": part, ...} and reads {"outputs", "final"} back; at the end it prints the gradients.
Input (first line of stdin): {"names", "B", "T", "stateShape", "given", "S0", "cotOutputs", "cotState",
"inputs", "params", "outputs", "perKeyT"?, "decayWay"?, "SN"?, "partReads"?: {part: the inputs its model binds}} with tensors as {"shape": [...], "data": [...]}."""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "fake"))
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import numpy as np  # noqa: E402
import seqc_chunked  # noqa: E402
from line_run import line_run  # noqa: E402


def arr(t):
    return None if t is None else np.array(t["data"], dtype=np.float64).reshape(t["shape"])


def enc(a):
    a = np.ascontiguousarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "data": a.reshape(-1).tolist()}


def anchor_standin(broken=False):
    """The anchor chunks kernel's contract (seqc_chunked.anchor_chunks_kernel, compiler/backends/cuda/anchor-chunks.ts)
    in numpy, from the tensors as given: out[b, h, kd, i, r] = sum over (a, b) of sum_(s in chunk i, token < T)
    (a_s w_s) b_s^T in the Gram's row layout (kg: in groups of kg key rows). broken: the weights' last token of every
    chunk dropped (must fail)."""
    def products(xs, w, kg=None):
        B, H, n, C, Kd = w.shape
        out = None
        for a, b in xs:
            T = a.shape[1]
            K, V = a.size // (B * T * H), b.size // (B * T * H)
            Tp = n * C
            ap = np.zeros([B, Tp, H, K]); ap[:, :T] = np.asarray(a).reshape(B, T, H, K)
            bp = np.zeros([B, Tp, H, V]); bp[:, :T] = np.asarray(b).reshape(B, T, H, V)
            ww = np.array(w, dtype=np.float64)
            if broken:
                ww[:, :, :, C - 1] = 0
            ac = ap.reshape(B, n, C, H, K).transpose(0, 3, 1, 2, 4) * ww  # [B, H, n, C, K]
            bc = bp.reshape(B, n, C, H, V).transpose(0, 3, 1, 2, 4)
            p = np.einsum("bhics,bhicv->bhisv", ac, bc)  # [B, H, n, K, V]
            g = K // (kg or K // Kd)  # key-row groups (kg key rows each: the scalar decay's Gram in groups)
            p = p.reshape(B, H, n, g, (K // g) * V).transpose(0, 1, 3, 2, 4)
            out = p if out is None else out + p
        return np.ascontiguousarray(out)
    return products


def terms_standin(B, T, names, broken=False):
    """The decay terms kernel's contract (seqc_chunked.decay_terms_kernel, compiler/backends/cuda/decay-terms.ts) in
    numpy: sum over plus of a.c minus sum over minus of a.c, summed over K per head ([B, T, H]) or per key row
    ([B, T, H*K]) for a per-key decay. broken: each a.c's last key dropped (must fail)."""
    def terms(plus, minus):
        out = 0
        for sign, xs in ((1, plus), (-1, minus)):
            for a, c in xs:
                p = np.asarray(a, dtype=np.float64).reshape(B, T, -1) * np.asarray(c, dtype=np.float64).reshape(B, T, -1)
                H = p.shape[2] // names["K"]
                p = p.reshape(B, T, H, names["K"])
                if broken:
                    p = p.copy()
                    p[..., -1] = 0
                out = out + sign * (p.reshape(B, T, H * names["K"]) if names["perKey"] else p.sum(3))
        return out
    return terms


def run_case(case):
    """chain_backward over the case; the decay adjoint's anchors ("decayAnchor", "anchorChunk", "anchorGram",
    "anchorProducts": "standin" / "broken", anchor_standin as the chunk products; "decayTerms": "standin" / "broken",
    terms_standin as the decay adjoint's terms) where the case names them
    (test/torch/decay_anchor_glue.py), else seqc_chunked's defaults."""
    B, T = case["B"], case["T"]
    run = line_run(enc, arr)
    if case.get("reverseChunk"):
        seqc_chunked.REVERSE_CHUNK = case["reverseChunk"]
    if case.get("anchorGram"):
        seqc_chunked.DECAY_ANCHOR_GRAM = case["anchorGram"]
    if case.get("gramProducts"):
        seqc_chunked.GRAM_PRODUCTS = case["gramProducts"]
    if case.get("anchorAlpha"):  # (seqc_chunked.ANCHOR_ALPHA, ANCHOR_SEGMENT; "alphaBroken": the segments' scan started from
        seqc_chunked.ANCHOR_ALPHA = case["anchorAlpha"]  # a zero state in place of S0, must fail)
        seqc_chunked.ANCHOR_SEGMENT = case.get("anchorSegment", seqc_chunked.ANCHOR_SEGMENT)
        seqc_chunked.ANCHOR_AUTO_CHUNKS = case.get("anchorAutoChunks", seqc_chunked.ANCHOR_AUTO_CHUNKS)
        if case.get("alphaBroken"):
            import seqc_decay_adjoint as da
            real = da._alpha_segments
            da._alpha_segments = lambda U, Rr, lc, S0, dS, m, dtype, device: real(U, Rr, lc, S0 * 0, dS, m, dtype, device)

    gin, gpar, dS0 = seqc_chunked.chain_backward(
        case["names"], run, B, T, case["stateShape"], {k: arr(v) for k, v in case["given"].items()}, arr(case.get("S0")),
        {k: arr(v) for k, v in case["cotOutputs"].items()}, arr(case.get("cotState")),
        case["inputs"], case["params"], case["outputs"], np.float64, None, case.get("perKeyT"), case.get("decayWay"), arr(case.get("SN")),
        decay_anchor=case.get("decayAnchor"), anchor_chunk=case.get("anchorChunk"),
        reverse_sum=case.get("reverseSum"), reverse_glue=case.get("reverseGlue"),
        part_reads=(lambda part: set(case["partReads"][part]) if part in case["partReads"] else None) if case.get("partReads") else None,
        anchor_products=anchor_standin(case["anchorProducts"] == "broken") if case.get("anchorProducts") else None,
        decay_terms=terms_standin(B, T, {"K": case["stateShape"][case["names"]["key"]], "perKey": case["names"]["decay"] == "key"}, case["decayTerms"] == "broken") if case.get("decayTerms") else None)
    sys.stdout.write(json.dumps({"done": True, "inputs": {k: enc(v) for k, v in gin.items()}, "params": {k: enc(v) for k, v in gpar.items()}, "dS0": enc(dS0)}) + "\n")


if __name__ == "__main__":
    run_case(json.loads(sys.stdin.readline()))
