"""The chunked backward's glue in torch ops (part of seqc's torch target; copied next to the generated modules).

runtime/chunked-backward.ts (chainBackward) on the device: the chain of compiler/grad/chunked-chain.ts (prep,
the forward core, post's backward, the transposed core for dq, the adjoint and transposed adjoint in reversed
time for dv and dk, the log-decay adjoint's reverse scan, prep's backward) runs as CUDA plans (`chain:<part>`
in <Model>.torch.json), and what ties them together is torch ops on the same stream: time reversal
(torch.flip), the decay shifted by one step, the state between the model's layout and the canonical
[B, H, K, V] (permute + reshape), dS_0 = D_1 G_1 and the pieces' sums. Nothing goes through host memory.

This file needs only the torch functions it names (flip, zeros, exp, permute); seqc's tests run it on a
numpy stand-in with the float64 interpreter as `run` (test/torch-chunked.test.ts).
"""

import torch

try:
    from . import seqc_cuda as _cuda
    from . import seqc_graphs as _graphs
except ImportError:  # loaded as a top-level module (the output directory on sys.path)
    import seqc_cuda as _cuda
    import seqc_graphs as _graphs
try:
    from .seqc_decay_adjoint import anchored_decay_adjoint as _anchored, reverse_sums as _reverse_sums, pad_tokens as _pad_tokens
except ImportError:
    from seqc_decay_adjoint import anchored_decay_adjoint as _anchored, reverse_sums as _reverse_sums, pad_tokens as _pad_tokens


def _prod(xs):
    n = 1
    for x in xs:
        n *= x
    return n


def flip_time(x, way=None):
    """x [B, T, ...] reversed along dim 1 (FLIP_VIEW's way; `way` overrides it): torch.flip, of a wide view where it applies."""
    if (way or FLIP_VIEW) == "wide" and getattr(x, "is_cuda", False) and x.dim() >= 2 and x.is_contiguous():
        row = x.numel() // max(1, x.shape[0] * x.shape[1]) * x.element_size()  # bytes per token
        if row > 0 and row % 8 == 0 and x.storage_offset() * x.element_size() % 8 == 0 and x.dtype != torch.int64:
            w = x.reshape(x.shape[0], x.shape[1], row // x.element_size()).view(torch.int64)
            return torch.flip(w, [1]).view(x.dtype).reshape(x.shape)
    if (way or FLIP_VIEW) not in ("wide", "plain"):
        raise ValueError("seqc_chunked: FLIP_VIEW is %r; expected 'wide' or 'plain'" % (way or FLIP_VIEW,))
    return torch.flip(x, [1])


def shift_rev(x, way=None):
    """x [B, T, ...] with token t's value moved to t - 1 (nothing after the last token: 0), then reversed in time: token t
    of the result is x[:, T - t] for t >= 1 and 0 at t = 0 (the adjoint's decays from the forward's). One gather, of a view
    of each token's row as 8-byte words where FLIP_VIEW's "wide" applies (bitwise the same tensor)."""
    B, T = int(x.shape[0]), int(x.shape[1])
    idx = torch.arange(T, 0, -1, device=x.device) % T
    if (way or FLIP_VIEW) == "wide" and getattr(x, "is_cuda", False) and x.dim() >= 2 and x.is_contiguous():
        row = x.numel() // max(1, B * T) * x.element_size()
        if row > 0 and row % 8 == 0 and x.storage_offset() * x.element_size() % 8 == 0 and x.dtype != torch.int64:
            w = x.reshape(B, T, row // x.element_size()).view(torch.int64)[:, idx]
            w[:, 0] = 0
            return w.view(x.dtype).reshape(x.shape)
    r = x[:, idx]
    r[:, 0] = 0
    return r


def chain_dims(n, state_shape):
    """Sizes of the canonical core: heads flattened to H, key K, value V (runtime/chunked-backward.ts chainDims)."""
    return {"H": _prod(state_shape[a] for a in n["heads"]), "K": state_shape[n["key"]], "V": state_shape[n["value"]]}


# How the log decays' adjoint runs: "torch" (the default) as torch ops in forward time (the per-step terms q.dq - k.dk
# from the forward-time tensors, one reverse cumulative sum over [B, T, L]); "plan" as the chain's decay scan
# (chain:decay) over the reversed tensors (on the H100 at B=8 T=2048 H=16 K=V=64: 0.28 ms, Mamba-2 0.55, plus a
# reversal of dq).
DECAY_WAY = "torch"
# Where DECAY_WAY "torch" starts the reverse sums of q.dq - k.dk: "mixed" (the default) anchored where the transposed
# cores ran on bf16 operands (TRANSPOSED_IO "mixed" took effect), else "none"; "chunk" always anchored: every
# DECAY_ANCHOR_CHUNK tokens from <G^, S> at the chunk's end, computed in fp32 from the inputs
# (runtime/torch/seqc_decay_adjoint.py: a term's error then reaches at most its chunk's tokens, not all before it);
# "none" one sum over the whole sequence from <dS_N, S_N>.
DECAY_ANCHOR = "mixed"
DECAY_ANCHOR_CHUNK = 64
# How the anchors' Gram matrix is formed: "lean" (the default: fewer copies) or "stack": seqc_decay_adjoint.ANCHOR_GRAM. On
# the H100 at (8, 2048, 16, 64) the bf16 step with graphs: SimpleGLA 3.69 ms (stack) / 3.37 (lean), Mamba-2 10.01 / 9.37
# (bench/RESULTS.md "The glue's reversals and reverse sums").
DECAY_ANCHOR_GRAM = "lean"
# How the lean Gram's chunk products U_i, R_i (sum over a chunk of (a w) b^T) are formed: "kernel" (the default where the
# module holds one) the anchor chunks kernel (<Model>.torch.json "kernels"."anchorChunks",
# compiler/backends/cuda/anchor-chunks.ts: a, b read where they are, bf16 or float32, w applied as the tiles load,
# float32 FMA; float32 compute on CUDA only, else as "copies"); "copies" (the way before) head-major float32 copies of
# the inputs and batched float32 GEMMs (seqc_decay_adjoint._gram_lean).
ANCHOR_CHUNKS = "kernel"
# Which of the anchor chunks kernels: "plain" (the way before: one element a load, one float a store) or "v4" their
# twins (anchor-chunks.ts vec: four neighbouring elements a load where the feature stride is 1 and K, V, the other
# strides and the base are multiples of 4, else one; float4 stores where V is a multiple of 4; the same sums in the same
# order: bitwise the same output). A module without the twins: the plain ones. Not faster on the H200 (run s12 1: SimpleGLA's
# two launches 0.207 -> 0.201 ms, Mamba-2's 0.408 -> 0.393; the steps within noise): "plain" stays. "r8": the twins on 8 x 4
# register tiles, 128 threads a 64 x 64 tile (anchor-chunks.ts ANCHOR_CHUNKS_R8_CONFIGS: a token's step 3 shared float4
# reads for 32 FMA where the plain kernel has 2 for 16; bitwise the plain output); untimed (session 15 task G: the plain
# kernel 0.415 ms a launch at Mamba-2 (1, 32768, 32, 64), ~31% of the float32 FMA peak).
ANCHOR_VEC = "plain"
# Where an input's gradient is the sum of several pieces (Mamba-2's x, B, C: post's backward's adjoint plus the adjoint
# core's dv / the transposed core's dq / prep's backward's) and the input is bf16: "low" the last addition writes the
# float32 sum as bf16 (torch.add with a bf16 out: bitwise the conversion of the float32 sum, which then is not made);
# "f32" (the way before) the sum in float32, converted to bf16 after the chain. On the H200 (bench/RESULTS.md "SimpleGLA's
# bf16 step past fla", run s12 1) Mamba-2's eager bf16 step's GPU time 4.528 -> 4.364 ms, gradients bitwise the same.
GRAD_SUM = "low"
# The anchors' lean Gram's products with the readouts' side (seqc_decay_adjoint.GRAM_PRODUCTS): "four" (the way before),
# "two" (dS_N in R_0's unused row: U read once; on the H200 the eager bf16 step's GPU time SimpleGLA 1.991 -> 1.955 ms,
# Mamba-2 4.528 -> 4.463, bench/RESULTS.md "SimpleGLA's bf16 step past fla", run s12 1) or "groups" (the default: as "two" per
# group of K / 8 key rows, a scalar decay's U and R written so by the anchor chunks kernel, the groups' Grams summed:
# B H 8 short products in place of B H long ones; run s13 1: SimpleGLA 1.760 -> 1.686 ms, Mamba-2 3.906 -> 3.861, the
# decays' gradients 5.6e-5 / 2.9e-5 off the old path's; a per-key decay as "two").
GRAM_PRODUCTS = "groups"
# How the anchors alpha = <G^, S> at the chunk ends are formed from the chunk products (seqc_decay_adjoint.ANCHOR_ALPHA):
# "gram" (the way before) the Gram matrix of all chunks' products (GRAM_PRODUCTS), B H n^2 K V multiply-adds and B H n^3
# exponent products for n = T / DECAY_ANCHOR_CHUNK chunks: at (1, 32768, 32, 64) (Mamba-2, n = 512) ~95 GFLOP of float32,
# 16x (4, 8192)'s for the same tokens; "segments" the chunk states' scan in segments of ANCHOR_SEGMENT chunks (each
# segment's own Gram, the states between segments by one small product: U and R read twice, B H n m K V multiply-adds;
# the lean Gram's products only, in the rows layout: GRAM_PRODUCTS does not apply); "auto" (the default) "segments" where
# n >= ANCHOR_AUTO_CHUNKS, else "gram". H200 call G15 (bench/RESULTS.md "Mamba-2's anchors in segments"), bf16 step, eager
# GPU ms, gram / 32-chunk segments / 16: Mamba-2 (1, 32768, 32, 64) 9.995 / 8.124 / 8.350 (mamba_ssm 6.880),
# (4, 8192, 32, 64) 7.247 / 7.278 / 7.520 (n = 128: even), (8, 2048, 32, 64) 3.627 / 3.885 / 4.001 (n = 32: the Gram's
# products are small there, the segments' extra passes are not); SimpleGLA (1, 32768, 8, 128) 5.905 / 5.102 / 5.057;
# gradients vs the Gram way's <= 3.1e-5 (Mamba-2), 9.5e-5 (SimpleGLA).
ANCHOR_ALPHA = "auto"
ANCHOR_SEGMENT = 32
ANCHOR_AUTO_CHUNKS = 256


def anchor_alpha(T, C, mode=None):
    """ANCHOR_ALPHA's way ("gram" / "segments", or `mode`) for T tokens anchored every C."""
    mode = mode or ANCHOR_ALPHA
    if mode == "auto":
        return "segments" if -(-T // max(1, min(C, T))) >= ANCHOR_AUTO_CHUNKS else "gram"
    return mode
# How the decay adjoint's per-token terms q.dq - k.dk (summed over K for a scalar decay) are formed: "torch" (the way
# before) a multiply per operand pair (a bf16 q times the float32 dq: a float32 [B, T, H*K] tensor), a sum over K each
# and their difference (on the H200 at (8, 2048, 16, 64) two multiplies 0.132 ms and the sums 0.09 ms in SimpleGLA's
# step: bench/torch/results/s10-run1-profile-simple_gla-s10-new.txt); "kernel" the decay terms kernel of the module
# (<Model>.torch.json "kernels"."decayTerms", compiler/backends/cuda/decay-terms.ts: the four operands read once where
# they are, bf16 or float32, only the terms written; float32 compute on CUDA only, else as "torch"). The products are
# rounded as torch's multiply rounds them; the sum over K runs in another order (float32 either way). On the H200 at
# (8, 2048, 16, 64) the eager bf16 step's GPU time: SimpleGLA 1.991 -> 1.813 ms, Mamba-2 (32 heads) 4.528 -> 4.191; the
# decays' gradients 4.7e-5 (SimpleGLA dg), 1.1e-5 (Mamba-2 ddt) off the torch ops' (bench/RESULTS.md "SimpleGLA's
# bf16 step past fla"). GLA (a float32 q, a bf16 k) takes the entry with its own a2 type (decay-terms.ts "f32_f32_kbf16").
DECAY_TERMS = "kernel"
# How the decay adjoint's reverse sums over time run (anchored or not): "chunk" (the default) per chunk of
# REVERSE_CHUNK tokens (DECAY_ANCHOR_CHUNK where anchored) as a product with a triangular ones matrix on a [B, n, C, L]
# view, the chunks' totals summed from the end by one small product (seqc_decay_adjoint.reverse_sums); "cumsum" the same
# with torch.cumsum inside the chunks; "flip" (the old way) torch.flip, torch.cumsum over all T tokens, torch.flip (GLA's
# bf16 step on the H100: the cumsum over T alone 0.78 ms, bench/RESULTS.md "The rows readout in segments"). With the
# anchors (SimpleGLA, Mamba-2 in bf16) the sums are inside chunks of 64 either way: "chunk" and "cumsum" timed alike.
REVERSE_SUM = "chunk"
REVERSE_CHUNK = 64
# The glue's time reversals: "lean" (the default) the decays shifted and reversed by one gather, and the reversed inputs
# that only bf16-reading cores take (the adjoint, adjointT where it runs as a core on bf16 inputs) reversed from their
# bf16 copies (no float32 reversal, no conversion after it); "flip" (the old way) every reversal a torch.flip of the
# float32 tensor (the decays: zeros, a shifted copy, a flip). With REVERSE_SUM "chunk", on the H100 (SimpleGLA's bf16
# step): 9 float32 flips 0.35 ms -> 4 bf16 flips 0.19 + 2 float32 0.11; bf16 conversions 11 -> 7 (0.28 -> 0.14 ms).
REVERSE_GLUE = "lean"
# The glue's copies of bf16 tensors (bf16 inputs, where the chain runs in float32): "lean" (the default) the decay
# adjoint's terms q.dq - k.dk take q and k as the transposed cores read them without a float32 copy of that (the float32
# tensor itself where it is the exact value of a bf16 input or cotangent, else its bf16 copy multiplied with the fp32 dq
# or dk in one op, the upcast inside it); the adjoint cores' bf16 outputs (dv, and dk where adjointT runs bf16 out)
# reversed in bf16, then converted once; the anchors' lean Gram copies the bf16 inputs themselves where the float32
# ones are their exact values (the copy's conversion in the same pass). "old": float32 copies first (seen(x) a bf16 ->
# float32 conversion per q and k, the cores' outputs converted, then reversed in float32).
GLUE_COPIES = "lean"
# How bf16 tensors reach the stateless parts (prep, prep's and post's backward models, which run in float32): "bf16" (the
# default) their plans' bf16-input forms (compiler/backends/torch/stateless-bf16.ts: the forward's inputs and the outputs'
# cotangents read as bf16 and widened in registers, float32 arithmetic, the adjoints of prep's outputs and every output
# float32), and the float32 copies of the bf16 inputs and cotangents made only where the glue itself reads them
# (_Converted); "f32" (the old way) every bf16 input and cotangent converted to float32 first, the float32 forms.
STATELESS_IO = "bf16"
# With STATELESS_IO "bf16", what prep's copies of bf16 inputs (prepAliases: SimpleGLA's k, v; Mamba-2's x, C) and post's
# backward's copies of a cotangent (dy = the output's cotangent) hand on: "bf16" (the default) the bf16 tensors themselves
# (the cores read them as they are, the decay adjoint's terms upcast inside their products, the anchors' lean Gram
# copies them; never the log decays, which stay float32, nor a per-key decay's unless its transposed cores run on the
# rows readout kernel's bf16-operand twins (ROWS_IO "bf16"; GLA's k, v, dy), nor where a core runs float32 kernels, e.g.
# TRANSPOSED_IO "f32"); "f32" their float32 copies.
ALIAS_IO = "bf16"
# With STATELESS_IO "bf16", how prep (whose inputs are the forward's alone) picks between its bf16-input twin and its float32
# form on float32 copies: "timed" where a trial run is at hand (a CUDA device, not capturing), both timed once per
# (dims, B, T) (the best of two runs each; the float32 side with the conversions of the inputs the twin reads in bf16) and
# the faster kept (on the H100 at (8, 2048, 32, 64) Mamba-2's twin took 0.291 ms against 0.162 for the float32 form, its
# 2-byte loads of dt and B coalescing worse: bench/RESULTS.md "The stateless parts read bf16"); "bf16" (the default again
# since run s15 1) the twin wherever it applies. With the row-major twins (STATELESS_ROWS) the twin runs at 0.161 ms
# (Mamba-2's prep, global-bf16in-rm) and the float32 form needs its copies (3 x 0.036 ms); the timed pick measured the
# launches' host time more than the kernels' (0.41 / 0.32 ms for kernels of 0.16 / 0.27) and took either from one process to
# the next. H200 run s15 1 (bench/RESULTS.md "Mamba-2's stateless parts row by row"): Mamba-2's eager bf16 step 3.504 ->
# 3.415 ms with "bf16".
PREP_IO = "bf16"
# Which of the forward's inputs the glue hands each stateless part (prep, prep's and post's backward): "read" (the default)
# those its plan binds (and its copies' sources), so a float32 copy of a bf16 input is made only for a plan that reads it
# (Mamba-2's prep reads dt and B alone; handed x and C too, the float32 forms' lookup made float32 copies of both, each
# [8, 2048, 2048] on the bench); "all" every input (the way before; the plan ignores the ones it does not bind).
PART_INPUTS = "read"
# With PART_INPUTS "read", what a stateless part that does not run is handed (a backward model whose outputs are all
# zeros or copies has no plan: SimpleGLA's and GLA's post backward, n["postBw"]["skip"]): "none" (the default) only its
# copies' sources (a cotangent), no input; "all" every input of the forward (the way before: with bf16 inputs a float32
# copy of each, made for nothing: SimpleGLA's q, k, v and GLA's q, k, v, each [8, 2048, 1024] on the bench).
IDLE_INPUTS = "none"
# How the glue reverses a contiguous CUDA tensor [B, T, ...] in time (the adjoint cores' reversed inputs, their reversed
# outputs): "wide" (the default) torch.flip of a view of each token's row as 8-byte words (int64; a row of H*K bf16 or
# float32 values is a whole number of words): the same bytes in the same places (bitwise the same tensor), a quarter
# (bf16) or half (float32) of the elements for the flip kernel's per-element index arithmetic; "plain" torch.flip of the
# tensor as it is (the way before). On the H100 the bf16 flips of [8, 2048, 1024] ran at ~0.048 ms each (2-byte opaque
# elements) against a floor of 0.02 (134 MB moved). Not CUDA, not contiguous, or a row that is no whole number of words:
# plain.
FLIP_VIEW = "wide"
# What the adjoint cores' bf16 outputs (with GLUE_COPIES "lean": dv, and dk where adjointT runs bf16 out) are handed on
# as once reversed: "low" (the default) the reversed bf16 tensor itself: where it is an input's whole gradient (a prep
# copy's adjoint: SimpleGLA's and GLA's dv) it comes back as it is, no float32 round trip (the float32 copy was rounded
# back to bf16 at the end: the same bits); added to another piece (Mamba-2's dx = dv + post's dx) the sum upcasts inside
# the add; prep's backward and the decay adjoint's terms get float32 copies (as before); "f32" (the way before) a
# float32 copy of each right after the reversal.
ADJOINT_OUT = "low"
# A stateless part that runs (has outputs other than zeros and copies) but has copies (<Model>.torch.json names it
# `copies` without `skip`: Mamba-2's post backward, y0__bar = y__bar): "input" (the default) the glue takes each copy
# from the input it equals (with ALIAS_IO "bf16" the bf16 cotangent itself: the cores read it without a bf16 copy of
# the plan's float32 output, the anchors' Gram copies it in its own pass); "plan" (the way before) the plan's output.
# (Parts that do not run take their copies from the inputs either way.)
RUN_COPIES = "input"
# A stateless part that runs but has outputs that are the literal 0 (<Model>.torch.json `zeros` of prepBw / postBw:
# Mamba-2's post backward's dt__bar, B__bar, C__bar, A__bar; its prep backward's D__bar): "skip" the glue leaves them
# out of the gradients' sums (adding 0.0 changes no value), and the forms that do not write them nor the part's copies
# ("<variant>-nz", CudaFormPlan.unwritten: compiler/backends/torch/stateless-nz.ts; with RUN_COPIES "input" only) join
# the trial timing (TUNE_STATELESS); "write" (the way before) every output written and added. H200, bf16 step at
# (8, 2048, 32, 64): Mamba-2 eager GPU-only 4.011 -> 3.819 ms (mamba_ssm 3.337 in the same process), post's backward
# 0.421 -> 0.215 ms (profiles of runs s13 1 / s14 1), gradients bitwise the same; SimpleGLA (no zeros) 1.691 both
# (bench/RESULTS.md, run s14 1).
ZERO_STORES = "skip"
# Where an input's gradient is post's backward's piece plus the adjoint core's dv, which comes out in reversed time
# (Mamba-2's x: vv2 = x; no other piece): "kernel" (the default since H200 call F15m) one pass of the reversed-time add
# (compiler/backends/cuda/rev-add.ts, <Model>.torch.json "kernels"."revAdd": out[b, t] = a[b, t] + c[b, T - 1 - t], the float32 sum rounded once to the
# gradient's dtype, bitwise the way before) reads dv where the core wrote it: no flip of dv and no mixed-dtype torch add
# (on the H200 the flip 0.08 ms and the add 0.237 ms at (1, 32768, 32, 64), bench/RESULTS.md "Mamba-2's anchors in
# segments"); "flip" (the way before) flips dv and adds it. H200 call F15m (session 15, bench/torch/results/
# final-h200-f15m-mamba-*), Mamba-2's eager bf16 step's GPU time: (1, 32768, 32, 64) 7.814 -> 7.641 ms, (4, 8192, 32, 64)
# 6.960 -> 6.782, (8, 2048, 32, 64) 3.487 -> 3.397, gradients bitwise. Where the module has no revAdd kernel (modules
# built before it), for other dtypes or another device: as "flip".
REV_ADD = "kernel"
# The stateless parts' outputs the glue would convert to bf16, written as bf16 by their "-bf16out" twins (the chain plans'
# bf16Outputs, compiler/backends/torch/chain-plans.ts diagonalBf16Outputs: stores rounded to nearest even, bitwise the
# float32 output converted by torch), where the part reads bf16 inputs (STATELESS_IO "bf16") and the plan has them (a
# scalar or no decay, no value columns): "grads" prep's backward's whole gradients of bf16 inputs (Mamba-2's dB, ddt,
# SimpleGLA's dq: returned as they are, no conversion after; gradients bitwise "f32"'s); "bf16" also prep's outputs but
# the log decay (Mamba-2's kk1, SimpleGLA's q3), where every chunked core reads them in bf16 (no bf16 copy of them; the
# decay adjoint's terms and anchors then read the rounded values the cores read, not the float32 ones: gradients within
# bf16 rounding of "f32"'s; the default since H200 call F15m); "f32" (the way before) the float32 forms' outputs,
# converted where read. Modules without the twins run as "f32". H200 call F15m (bench/torch/results/final-h200-f15m-mamba-*),
# Mamba-2's eager bf16 step's GPU time with REV_ADD "kernel" / + "grads" / + "bf16": (1, 32768, 32, 64) 7.641 / 7.578 /
# 7.498 ms (mamba_ssm 6.868), (4, 8192, 32, 64) 6.782 / 6.710 / 6.640 (6.853), (8, 2048, 32, 64) 3.397 / 3.342 / 3.305
# (3.553); "bf16"'s gradients 2.6e-3..3.8e-3 off "f32"'s (kk1 rounded), vs float64 at (1, 1024) 8.4e-3 -> 7.2e-3 (dA).
STATELESS_OUT = "bf16"
# Where the forward's final state is at hand (seqc_torch keeps it: ctx.chain_SN), when the chain's forward core runs again
# (only for post's backward's y): "bound" (the default) only where some form of post's backward plan binds a readout's y
# (Mamba-2's post backward, y = y0 + D x, reads x and the cotangent alone: its y0 is in the plan's tensors but no kernel
# binds it; the core's bf16 run and the float32 copy of its y were for nothing; post's backward then gets an unwritten
# buffer for y0, never read); "post" (the way before) wherever post's backward runs.
CORE_RERUN = "bound"

# How a per-key decay's transposed cores (coreT's dq, adjointT's dk) run: "kernel" (the default) the rows readout
# kernel of the module (<Model>.torch.json "kernels", compiler/backends/cuda/rows-readout.ts: fp32, each key row's
# recurrence walked in order; float32 CUDA tensors only, else as "matmul"; at B=8 T=2048 H=16 K=V=64 on the H100 about
# 0.6-0.7 ms each, GLA's bf16 step with graphs 15.3 -> 4.8 ms: bench/RESULTS.md "GLA's transposed products"); "matmul"
# in torch ops with the chunk-local decays factored out (rows_decayed_readout: 5.9-6.1 ms each there); "plans" as the
# chain's CUDA plans, where each key row of S is a head of its own (H K heads of rank-one updates, the same dy.v
# product once per key: 18.9 ms each there).
PER_KEY_TRANSPOSED = "kernel"
# The rows readout kernel's tile (an entry's suffix such as "k32_t8_v8_n32", rows-readout.ts ROWS_READOUT_TILES) or
# None: the first in the module's order whose value slice covers V (else the widest).
ROWS_TILE = None
# Tokens per segment of the rows readout (rows-readout.ts "Segments": T split into segments walked in parallel from
# their start states: an end-state pass, a scan of start states, the readout pass). 0 (the default): one segment, the
# plain walk of all T tokens per key-row block; None: segments of at least ROWS_MIN_SEGMENT tokens (a multiple of the
# tile's) so that the readout's grid has about ROWS_BLOCKS_PER_SM blocks per multiprocessor; an int: that many tokens.
# On the H100 at B=8 T=2048 H=16 K=V=64 the one-segment walk took 0.604 ms alone (k64 t4 v16), segments 0.672-0.69 ms
# (the readout 0.39 + the ends 0.22 + the scan 0.01): bench/RESULTS.md "The rows readout in segments".
ROWS_SEGMENT = 0
ROWS_MIN_SEGMENT = 64
ROWS_BLOCKS_PER_SM = 8
# What the rows readout kernel reads for bf16 tensors: "bf16" (the default) the bf16 operands as they are, where the
# module has the kernel's bf16-operand twins (rows-readout.ts ROWS_READOUT_LOW: "abc" a, b and c bf16; "bc" b and c, a
# float32): each bf16 word widened to float32 as the tiles load (exact: the same float32 walk on the same values), and
# then a per-key decay's prep copies and post's backward's cotangent copies stay bf16 too (ALIAS_IO: GLA's k, v, dy reach
# the cores, the readouts and the decay terms without float32 copies); "f32" every operand float32 (the way before:
# the glue made float32 copies of GLA's k, v, dy for the kernel and the per-key terms).
ROWS_IO = "bf16"
# Which kernel a per-key decay's transposed cores take where b and c are bf16 (ROWS_IO "bf16" in the bf16 step: GLA's dq
# reads k, v, dy; its dk q (float32), dy, v), one pair and one readout, K, V <= 64, one segment: "chunk" the chunked form on
# tensor cores (<Model>.torch.json kernels.rowsChunk, compiler/backends/cuda/rows-chunk.ts: per chunk of 64 tokens the
# products c b^T, the earlier sub-chunks' decayed a, the state's readout and update as bf16 mma with fp32 accumulation, the
# operands that are not bf16 values as hi + lo bf16 words (about 2^-16 relative), the diagonal sub-chunks in fp32; one
# block per (batch, head)); "walk" (the way before) the rows readout kernel's walk of every token. Elsewhere (float32
# operands, a module without it, larger K or V) the walk. H200 at (8, 2048, 16, 64), GLA's eager bf16 step's GPU time:
# walk 2.676 ms, chunk 4 warps 2.563, 8 warps 2.213 (fla chunk_gla 1.769 in the same process: 0.66x -> 0.80x); the two
# products 0.636 + 0.558 ms walked, 0.543 + 0.537 in chunks with 4 warps; gradients 6e-5 (dq, dk), 3.3e-4 (dgk) off the
# walk's, bf16 vs float64 unchanged (bench/RESULTS.md "GLA's transposed cores in the chunked form", run c15 1).
ROWS_FORM = "chunk"
# The chunked form's warps per block (rows-chunk.ts ROWS_CHUNK_CONFIGS: 4, 8 or 16), read at each launch. 16 (session 15, task F):
# the same block with four warps a sub-chunk of 16 tokens in place of two (each warp half the columns of the 8-warp entries'
# products and of the state: 16 or 32 floats of it a thread, <= 128 registers, no spills), the decays' sums in the same 4
# parts and each diagonal column's rows over two threads: outputs bit for bit the 8-warp entries' (test/cuda-rows-chunk-emu).
# Shared memory as with 8 (one block an SM at K = 128 and with terms), so each SM runs 16 warps in place of 8 where the
# rows fill the card with one block each (GLA at (4, 8192, 16, 128) and (8, 2048, 16, 64): 128 blocks). Entries: the
# prefetching ones (_p, _p_la, _p_t; wide _v128_p, _p_la, _p_t) and the plain and _la twins (64 and wide); no split entry:
# where 16 has no entry for the operands (split, a module built before them), the 8-warp entry is taken.
ROWS_CHUNK_WARPS = 8
# Where the decay adjoint's terms read adjointT's dk (DECAY_TERMS "kernel"): "terms" the terms kernel reads dk where the
# adjoint core wrote it, in reversed time (decay-terms.ts rev: token t's term takes dk's token T - 1 - t), and where that
# dk is nothing but an input's whole gradient (prep's copy of a bf16 input with no other piece: SimpleGLA's and GLA's k),
# it is converted to the input's dtype first and reversed after (the same bits as reversing the float32 dk and converting
# it at the end: a bf16 flip of [B, T, H*K] in place of a float32 one); "flip" (the way before) dk reversed first, the
# terms read the reversed copy. Elsewhere (Mamba-2's kk1, which prep's backward reads; a module whose terms kernel has no
# rev argument; no terms kernel) as "flip". Gradients bitwise the same (test/torch-terms-rev.test.ts). H200 run d12 1 at
# (8, 2048, 16, 64), eager bf16 step's GPU time: SimpleGLA 1.599 -> 1.581 ms, GLA 2.236 -> 2.217 (about 1%, the floor's
# 0.031 ms; gradients bitwise): "terms" the default (GLA with ROWS_REVERSED "kernel" has no dk flip to save).
REVERSED_READS = "terms"
# With 8 warps, the chunked form's entries that load the next chunk while this one computes (rows-chunk.ts pipe: 16-byte
# loads into registers, K = V = 64 and 16-byte aligned operands, else the entry without): True (the default) takes them;
# False the entries that wait for each chunk's loads. H200 run d12 1 at (8, 2048, 16, 64): GLA's eager bf16 step 2.236 ->
# 1.873 ms (dq's product 0.423 -> 0.242 ms), gradients bitwise the same (bench/RESULTS.md "GLA's chunked products
# prefetched").
ROWS_CHUNK_PIPE = True
# How a per-key decay's transposed adjoint (adjointT's dk = G v in reversed time) gets its reversed operands where the
# chunked form takes it (ROWS_FORM "chunk") and the module's entries read reversed time (rows-chunk.ts rev): "kernel" the
# kernel reads q, dy, v where the forward stored them, the adjoint's decays as ld[T - t] (0 at t = 0) from the forward's log
# decays, and stores dk in forward time (rev = 31, RC_REV_BITS): no float32 flip of q for it, no flip of dk after it (nor
# REVERSED_READS' bf16 one), no float32 gather of the shifted decays where the adjoint core reads them in bf16 from a bf16
# input (GLA's gk: a gather of the bf16 tensor's 8-byte words instead, then no conversion); the adjoint core's reversed q
# then is its bf16 copy's flip. Gradients bitwise the same (the same values in the same order: test/cuda-rows-chunk-emu,
# test/torch-rows-rev). "flip" (the way before): the glue's flips and gather first. Elsewhere (the walk, a module whose
# entries have no rev argument) as "flip". H200 run d12 1 at (8, 2048, 16, 64): GLA's eager bf16 step 2.236 -> 2.093 ms
# (with the prefetching entries and ROWS_TERMS "kernel" 1.781; fla chunk_gla 1.766), gradients bitwise the same.
ROWS_REVERSED = "kernel"
# With ROWS_REVERSED "kernel", where the decay adjoint's terms would run on the decay terms kernel (DECAY_TERMS "kernel", a
# per-key decay, one pair and one readout, q as the cores read it) and dk is an input's whole gradient in bf16 (GLA's k):
# "kernel" the transposed adjoint's chunked entry that also writes the terms q.dq - k.dk (rows-chunk.ts terms, entries _t:
# dq and k read at dk's token as dk is stored, bitwise the terms kernel's products and difference) and dk as bf16 (the
# gradient as returned: the same rounding as the conversion after); no terms launch, no float32 dk written, no conversion of
# it. "apart" (the way before): dk float32, then the terms kernel, then the conversion. H200 run d12 1: slower, GLA's eager
# bf16 step 2.093 (ROWS_REVERSED "kernel") -> 2.134 ms; the prefetching _p_t entry took 0.395 ms against 0.242 for dq's
# _p_la (its epilogue's loads of q, dq, k waited at each chunk's end). Since then the entries take q from the chunk's a in
# shared memory and, at K = 64 and 128, copy dq and k to shared memory by cp.async at the chunk's start (16-byte aligned
# dq and k, else as "apart"). H200 run d2 1 (bench/RESULTS.md "GLA at K = 128"), same process: (8, 2048, 16, 64) 1.866 ->
# 1.837 ms, (4, 8192, 16, 128) with the wide entries 7.296 -> 7.307 (even), gradients bitwise: "kernel" the default (until
# "scan", call F15). Not with the split entries (ROWS_CHUNK_WIDE resolving to "split": none has the terms; the wide _t beside split's dq was
# slower, 10.727 -> 12.310 ms at (1, 32768, 8, 128)): there as "apart".
# "scan" (session 15, task F; the default since H200 call F15): where "kernel" applies and no decay anchors run
# (DECAY_ANCHOR resolving to "none"), the entry that writes the terms' running sums along its reversed walk in place of the terms
# (rows-chunk.ts scan, _ts: from a_T = <dS_N, S_N> per key row as carry0): the decay adjoint's reverse sums
# dld_t = a_T + sum_{s >= t} (q.dq - k.dk)_s come out of the kernel, and seqc_decay_adjoint.reverse_sums (at (4, 8192, 16,
# 128) on the H200, call F15: two transposed float32 copies 0.13 ms each, a float32 FFMA product 0.30 ms and an add 0.10 ms
# of a 7.3 ms step) does not run. Sums in another order than reverse_sums' (per chunk of 64 in 4 parts, then the carry):
# dgk within float32 rounding of it, dq, dk, dv bitwise. With segments (the few-rows shape) each segment's sums run from zero
# and one pass adds a_T and the later segments' totals. Elsewhere (anchors, an entry missing) as "kernel". H200 call F15
# (bench/torch/results/final-h200-f15-gla-*), GLA's bf16 step, eager / graphs GPU ms: (4, 8192, 16, 128) 7.298 -> 6.768 /
# 7.622 -> 7.474 (fla chunk_gla eager 7.418), (1, 32768, 8, 128) 5.408 -> 5.248 / 5.589 -> 5.460 (fla 5.963); gradients
# 9.8e-5 / 1.4e-4 off "kernel"'s, vs float64 at (1, 1024, 8, 128) 3.7e-3 both (fla 1.9e-3).
ROWS_TERMS = "scan"
# Where K or V is past 64 (GLA at K = V = 128): "wide" (or True) takes the chunked form's wide entries (rows-chunk.ts wide,
# _v128: 128 value columns a block, a block per group of 64 key rows, grid (B H, ceil(K / 64)); K, V <= 128; their
# prefetching form at K = 128 (or 64), V = 128) with the same pipe / rev / terms picks as at K = 64; "split" the split
# entries (rows-chunk.ts split, _vs: a block per group of 64 keys and of 64 values, grid (B H, ceil(K / 64) ceil(V / 64)),
# the value groups' partial outputs summed after: 4 blocks a head, for few heads; no terms entry: the terms apart); "auto"
# (the default) per shape (rows_chunk_mode): "split" where its grid fits one wave of the card's SMs, else "wide"; False (the
# way before) the rows readout kernel's walk there. H200 run d2 1, GLA's eager bf16 step, same process (bench/RESULTS.md
# "GLA at K = 128"): (1, 32768, 8, 128) walk 21.936 ms, wide 11.681, split 10.727 (fla chunk_gla 5.911: 0.269x -> 0.551x);
# (4, 8192, 16, 128) walk 13.254, wide 7.296, split 9.212 (fla 7.488: 0.565x -> 1.026x); gradients vs the walk's 6e-5 (dq,
# dk), 7e-4 (dgk); bf16 vs float64 unchanged (3.7e-3).
ROWS_CHUNK_WIDE = "auto"


def rows_chunk_mode(B, H, K, V, sms, mode=None):
    """ROWS_CHUNK_WIDE (or `mode`) for this shape: "auto" -> "split" where B H ceil(K / 64) ceil(V / 64) blocks fit the sms
    (one block an SM), else "wide"; any other value as it is."""
    mode = ROWS_CHUNK_WIDE if mode is None else mode
    if mode == "auto":
        return "split" if B * H * -(-K // 64) * -(-V // 64) <= sms else "wide"
    return mode


# The chunked form's sequences in segments walked in parallel (a per-key decay is diagonal, so a segment's transition is
# diag(exp(sum of its log decays))): 0 (the default, the way before) one block walks all T tokens of its head; an int n: T
# cut into n segments of T / n tokens (where n divides T, else one), each run as a batch of its own (the same tensors as
# [B n, T / n, ...] views: no copy) from its true start state, which torch ops give first (rows_chunk_seg_states: each
# segment's end state from zero as one float32 product (a weighted by the decays to the segment's end)^T b, then the scan
# over segments); "auto" (the default): segments only where at least two fit one wave of the card's SMs (2 per <= sms, per
# = B H ceil(K / 64) blocks a segment on the wide grid; the split entries' B H ceil(K / 64) ceil(V / 64) only under
# ROWS_CHUNK_WIDE "split"), i.e. where the rows alone leave half the card idle; then the most segments of whole chunks
# (T / n a multiple of 64) whose grid fits `waves` waves (n per <= waves sms): two waves where the segments' end states
# come from the rowsSegStates kernel (ROWS_SEG_STATES "cuda" and the module has it), else one. ROWS_CHUNK_WIDE then picks
# on B n batches (at the few-rows shape below: wide). Forward time (rev 0) and the adjoint's reversed time (rev 31) only;
# other rev bits one segment. Why two waves with the kernel's states: H200 call A4 (bench/RESULTS.md "segments' end
# states in one kernel"), GLA's bf16 step at (1, 32768, 8, 128) (16 wide blocks a segment), graphs ms with "cuda" states:
# 8 segments (128 blocks, one wave: the rule before) 6.137, 16 (256 blocks, two waves: this rule) 5.613, 32 (512) 5.862;
# with the torch states (call A3 below) one wave won (8 wide 7.007 vs 16 wide 7.406), so "torch" keeps one. The gate keeps
# (4, 8192, 16, 128) and (8, 2048, 16, 64) (128 blocks a segment: the rows fill the card) at no segments, where call A3
# timed 8-32 segments at 13.2-16.8 ms vs 8.0 without (two segments there untimed). Between them, e.g. (2, 8192, 16, 128)
# (64 blocks a segment) takes 4 segments (untimed); the split entries' counts under "cuda" states are untimed too.
# H200 call A3 (bench/RESULTS.md "faster states"), GLA's bf16 step under graphs, ms, with 2abbea0 + 8d1832b's states:
# (1, 32768, 8, 128) no segments 11.052, 4 split segments (auto's earlier rule, counted on the split grid) 7.705, 8 wide
# (128 blocks, this rule) 7.007, 8 split 8.289, 16 wide 7.406, 32 wide 7.466 (fla chunk_gla 5.868: 0.531x -> 0.837x);
# (4, 8192, 16, 128) auto gives no segments (64 x 2 wide blocks fill the card): 8.078 / 8.041, 8-32 segments 13.2-16.8
# (fla 7.448). bf16 vs float64 at (1, 1024, 8, 128) 3.7e-3 every way (fla 1.9e-3). 0: off (the way before).
ROWS_CHUNK_SEGMENTS = "auto"


def rows_chunk_segments(B, T, H, K, V, sms, n=None, mode=None, waves=None):
    """Segments for the chunked form (ROWS_CHUNK_SEGMENTS, or `n`; `mode` ROWS_CHUNK_WIDE's value) at these sizes: 1 for none.
    waves: the waves of SMs "auto" fills (None: 2 under ROWS_SEG_STATES "cuda", else 1; the caller passes 1 where the
    module has no rowsSegStates kernel)."""
    n = ROWS_CHUNK_SEGMENTS if n is None else n
    if not n:
        return 1
    if n == "auto":
        mode = ROWS_CHUNK_WIDE if mode is None else mode
        waves = (2 if ROWS_SEG_STATES == "cuda" else 1) if waves is None else waves
        per = max(B * H * -(-K // 64) * (-(-V // 64) if mode == "split" else 1), 1)  # (call A3: 8 wide beat 4 split)
        if 2 * per > sms:  # (the rows fill more than half the card: no segments)
            return 1
        for s in range(min(waves * sms // per, T // 64), 1, -1):
            if T % (64 * s) == 0:
                return s
        return 1
    n = int(n)
    return n if 1 < n <= T and T % n == 0 else 1


# The segments' end states (rows_chunk_seg_states' products: each feeding segment's E and its transition Q) formed by: "torch"
# (the torch ops below: the decays' scan, the weights, per head a batched float32 bmm) or "cuda" (the default): one kernel
# (<Model>.torch.json kernels.rowsSegStates, compiler/backends/cuda/rows-seg-states.ts: a block per (batch, segment, head,
# 64 x 64 tile) walks its segment once, the weights' running sums and the products in float32 FMA), where the module has it,
# one pair, ld float32, a float32 or bf16 and b bf16 (else torch). The scan over segments stays in torch (rows_chunk_seg_scan).
# H200 call A4 (bench/RESULTS.md "segments' end states in one kernel"), GLA's bf16 step at (1, 32768, 8, 128), 8 wide segments
# ("auto"), same process: graphs 6.908 ms "torch" -> 6.137 "cuda" (eager GPU 6.813 -> 5.960; the two states kernels 0.879 +
# 0.840 ms in place of ~2.2 ms of torch ops), gradients bitwise "torch"'s there; bf16 vs float64 at (1, 1024, 8, 128) 3.7e-3
# both ways. 16 segments with "cuda" 5.613, 32: 5.862 (ROWS_CHUNK_SEGMENTS "auto" now takes 16 there: two waves with "cuda").
ROWS_SEG_STATES = "cuda"


def rows_chunk_seg_ends(ld, pairs, B, T, H, K, V, nseg, rev, ks):
    """E [B, nseg - 1, H, K, V] and Q [B, nseg - 1, H, K] (float32) of rows_chunk_seg_states' feeding segments on the
    rowsSegStates kernel (ks: its seqc_cuda.KernelModule), or None where it does not take the operands (several pairs, other
    dtypes, non-contiguous tensors, no entry for a's dtype)."""
    f, h = torch.float32, torch.bfloat16
    if ks is None or len(pairs) != 1:
        return None
    a, b = pairs[0]
    if ld.dtype != f or b.dtype != h or a.dtype not in (f, h) or not all(x.is_contiguous() for x in (ld, a, b)):
        return None
    if ld.numel() != B * T * H * K or a.numel() != B * T * H * K or b.numel() != B * T * H * V:
        return None
    k = next((k for k in ks.kernels if bool(k["lowA"]) == (a.dtype == h)), None)
    if k is None:
        return None
    ns, dev = nseg - 1, ld.device
    E = torch.empty([B, ns, H, K, V], dtype=f, device=dev)
    Q = torch.empty([B, ns, H, K], dtype=f, device=dev)
    if ns > 0:
        t = k["tile"]
        with torch.cuda.device(dev):
            stream = torch.cuda.current_stream(dev).cuda_stream
            ks.launch(k, (B * ns * H, -(-K // t) * -(-V // t)), [("ptr", x.data_ptr()) for x in (ld, a, b, E, Q)] + [("u32", v) for v in (B, T, H, K, V, nseg, rev)], stream)
    return E, Q


def rows_chunk_seg_states(ld, pairs, S0, B, T, H, K, V, nseg, rev=0, ks=None):
    """The start states [B nseg, H*K*V] (float32) of rows_decayed_readout's recurrence S_t = diag(exp(ld_t)) S_{t-1} +
    sum_p a_p,t b_p,t^T cut into nseg segments of L = T / nseg tokens, batch b nseg + j being segment j of batch b, as
    the chunked form reads them: rev 0 forward time (segment j's kernel decays its start state by ld at its first token,
    jL); rev 31 the adjoint's reversed time (a, b read at T - 1 - t, ld[T - t], 0 at t = 0 of each batch: the decay
    ld[(j + 1) L] that enters segment j from segment j + 1 is applied here). Per segment, from a zero state: end state
    E_j = sum_o diag(exp(sum of ld after o to the segment's end in its walk's order)) a_o b_o^T (one float32 product), and
    its transition diag(P_j); then start_0 = S0 (or 0), start_{j+1} = P_j start_j + E_j in the walk's order.
    ks: the rowsSegStates kernel module (ROWS_SEG_STATES "cuda"): E_j and P_j from it where it takes the operands
    (rows_chunk_seg_ends), else from the torch ops here."""
    L = T // nseg
    ld5 = ld.reshape(B, nseg, L, H, K)
    got = rows_chunk_seg_ends(ld, pairs, B, T, H, K, V, nseg, rev, ks) if ks is not None else None
    E, Q = got if got is not None else _rows_chunk_seg_ends_torch(ld, pairs, B, T, H, K, V, nseg, rev)
    return rows_chunk_seg_scan(E, Q, ld5, S0, B, H, K, V, nseg, rev)


def _rows_chunk_seg_ends_torch(ld, pairs, B, T, H, K, V, nseg, rev):
    """rows_chunk_seg_states' E [B, nseg - 1, H, K, V] and Q [B, nseg - 1, H, K] (float32) in torch ops."""
    f = torch.float32
    L = T // nseg
    ns = nseg - 1
    dev = ld.device
    ld5 = ld.reshape(B, nseg, L, H, K)
    # The segments whose end states feed others (rev: 1 .. nseg-1, else 0 .. nseg-2), their log decays with the tokens last,
    # [B, ns, H, K, L] (the scan along the contiguous last dimension: torch's scan over an outer dimension took 5.9 ms at
    # (1, 32768, 8, 128) with 4 segments on the H200, call A2). Forward time walks the tokens in reversed order (the suffix
    # sums as prefix sums; the product below sums over tokens, in any order).
    if rev:  # weights exp(sum ld[jL+1 .. o]), the segment's own order
        segs = slice(1, nseg)
        g = torch.empty([B, ns, H, K, L], dtype=f, device=dev)  # (a copy: ld itself is never written)
        g.copy_(ld5[:, segs].permute(0, 1, 3, 4, 2))
        g[..., 0] = 0
        g = torch.cumsum(g, -1)
        Q = torch.exp(g[..., L - 1])  # [B, ns, H, K]: sum ld[jL+1 .. jL+L-1]
        w = torch.exp(g)
        a_of = lambda a: a.reshape(B, nseg, L, H, K)[:, segs]  # noqa: E731
        b_of = lambda b: b.reshape(B, nseg, L, H, V)[:, segs].to(f)  # noqa: E731
    else:  # weights exp(sum ld[o+1 .. end]); token m of the reversed order is o = L - 1 - m
        segs = slice(0, ns)
        g = torch.cumsum(torch.flip(ld5[:, segs], [2]).permute(0, 1, 3, 4, 2).to(f).contiguous(), -1)  # sum ld[L-1-m .. L-1]
        Q = torch.exp(g[..., L - 1])
        w = torch.empty_like(g)
        w[..., 0] = 1
        w[..., 1:] = torch.exp(g[..., : L - 1])
        a_of = lambda a: torch.flip(a.reshape(B, nseg, L, H, K)[:, segs], [2])  # noqa: E731
        b_of = lambda b: torch.flip(b.reshape(B, nseg, L, H, V)[:, segs], [2]).to(f)  # noqa: E731
    del g
    # E [B, ns, H, K, V] = sum over the tokens of (a w)^T b: per head a batched float32 product over (B, ns, token blocks of
    # Lc) with a w and b as they lie ([B, ns, L, H, K] / [.., V]: strided operands, no copies), then the blocks summed
    Lc = 512 if L % 512 == 0 and L > 512 else L
    nb = B * ns * (L // Lc)
    E = torch.zeros([B, ns, H, K, V], dtype=f, device=dev)
    for a, b in pairs:
        aw = torch.empty([B, ns, L, H, K], dtype=f, device=dev)
        torch.mul(a_of(a), w.permute(0, 1, 4, 2, 3), out=aw)
        bf = b_of(b).contiguous()
        av, bv = aw.view(nb, Lc, H, K), bf.view(nb, Lc, H, V)
        for h in range(H):
            E[:, :, h] += torch.bmm(av[:, :, h].transpose(1, 2), bv[:, :, h]).view(B, ns, L // Lc, K, V).sum(2)
        del aw, bf
    del w
    return E, Q


def rows_chunk_seg_scan(E, Q, ld5, S0, B, H, K, V, nseg, rev):
    """rows_chunk_seg_states' scan over the segments in torch: start states [B nseg, H*K*V] float32 from the feeding
    segments' E [B, nseg - 1, H, K, V], Q [B, nseg - 1, H, K], the log decays ld5 [B, nseg, L, H, K] (rev: each segment's
    first decay ld[jL] enters segment j - 1) and S0 [B, H*K*V] or None."""
    f = torch.float32
    st = torch.empty([B, nseg, H, K, V], dtype=f, device=E.device)
    if rev:
        Gd = torch.exp(ld5[:, 1:, 0].to(f))  # ld[jL], the decay into segment j - 1
    first = nseg - 1 if rev else 0
    if S0 is None:
        st[:, first] = 0
    else:
        st[:, first] = S0.reshape(B, H, K, V).to(f)
    if rev:
        for j in range(nseg - 1, 0, -1):  # E, Q, Gd index j - 1 for segment j
            st[:, j - 1] = Gd[:, j - 1, :, :, None] * (Q[:, j - 1, :, :, None] * st[:, j] + E[:, j - 1])
    else:
        for j in range(nseg - 1):
            st[:, j + 1] = Q[:, j, :, :, None] * st[:, j] + E[:, j]
    return st.reshape(B * nseg, H * K * V)


def rows_segment(k, B, T, H, K, V, sms, segment=None):
    """Tokens per segment for kernel k at these sizes (ROWS_SEGMENT's rule; `segment` overrides it): T for one segment."""
    seg = ROWS_SEGMENT if segment is None else segment
    if seg is None:
        blocks = B * H * -(-K // k["kr"]) * -(-V // k["vs"])
        nseg = min(-(-ROWS_BLOCKS_PER_SM * sms // blocks), max(1, T // ROWS_MIN_SEGMENT))
        if nseg <= 1:
            return T
        tt = k["tt"]
        seg = max(ROWS_MIN_SEGMENT, -(-(-(-T // nseg)) // tt) * tt)
    return T if seg <= 0 or seg >= T else int(seg)


def rows_chunk_pick(kc, low, np_, nr, K, V, segment=None, pipe=None, terms=False, wide=None, scan=False):
    """The chunked form's kernel (ROWS_FORM "chunk") for these operands, or None where it does not apply: b and c bf16
    (low "bc": a float32, "abc": a bf16), one pair and one readout, K and V within its tile, one segment; the prefetching
    entry where ROWS_CHUNK_PIPE (or `pipe`) asks for it and K = V = 64 (else the one without); terms: an entry that writes the
    decay adjoint's terms beside its bf16 output (rows-chunk.ts _t), else one that does not. K or V past 64: the wide
    entries (keyGroup) where ROWS_CHUNK_WIDE (or `wide`) is "wide" / True (their prefetching form at K = 64 or 128, V = 128),
    the split ones (valueGroup) where it is "split" (prefetching at K, V in (64, 128); None for terms), else None. scan (with
    terms): the entry writing the terms' running sums (rows-chunk.ts scan, _ts), or None."""
    seg = ROWS_SEGMENT if segment is None else segment
    if kc is None or ROWS_FORM != "chunk" or low is None or np_ != 1 or nr != 1 or seg is None or seg != 0:
        return None
    big = K > 64 or V > 64
    mode = ROWS_CHUNK_WIDE if wide is None else wide
    if big and mode in (False, None, "off"):
        return None
    if big and mode == "split" and terms:  # (no split terms entry: the terms apart)
        return None
    if scan and not terms:
        return None
    split = big and mode == "split"
    want = (ROWS_CHUNK_PIPE if pipe is None else pipe) and ((K in (64, 128) and V in ((64, 128) if split else (128,))) if big else (K == 64 and V == 64))

    def fits(k, p, warps=ROWS_CHUNK_WARPS):
        return (k["warps"] == warps and k["lowA"] == (low == "abc") and bool(k.get("pipe")) == p and bool(k.get("terms")) == bool(terms) and bool(k.get("scan")) == bool(scan) and K <= k["maxK"] and V <= k["maxV"]
                and bool(k.get("keyGroup")) == big and bool(k.get("valueGroup")) == split)
    got = next((k for k in kc.kernels if fits(k, want)), None) or next((k for k in kc.kernels if fits(k, False)), None)
    if got is None and ROWS_CHUNK_WARPS == 16:  # (no 16-warp entry for these operands: the 8-warp one)
        got = next((k for k in kc.kernels if fits(k, want, 8)), None) or next((k for k in kc.kernels if fits(k, False, 8)), None)
    return got


def rows_readout_kernel(km, ld, pairs, readouts, S0, B, T, H, K, V, tile=None, segment=None, kc=None, rev=0, terms=None, ks=None, scan=None):
    """rows_decayed_readout's contract (out_r,t = S_t c_r,t, S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T) on the
    rows readout kernel: km a seqc_cuda.KernelModule of "rowsReadout", every tensor float32 on its device; S0 [B, H*K*V]
    or None (zero). Grid: B H ceil(K / kr) blocks by segments x ceil(V / vs) value slices (per slice a partial sum,
    added here). Several segments (rows_segment; `segment` overrides ROWS_SEGMENT): first the segments' end states and
    decay products (kernel k["ends"]), their start states (k["scan"]), then the readout from each segment's start
    (k["segments"]); one segment: the kernel k itself from S0. kc: the module's chunked form (rowsChunk), taken where
    rows_chunk_pick finds a kernel (grid B H, by ceil(K / 64) for the wide entries; one output). rev: the chunked form's reversed-time bits (rows-chunk.ts
    RC_REV_BITS: ld as the adjoint's shifted reversed decays 1, a 2, b 4, c 8, out 16); with rev set, None where the chunked
    form does not take the operands or its entry has no rev argument (the caller then flips). terms: (dq float32, k bf16),
    [B, T, H*K] stored as out is: the chunked form's terms entry (rows-chunk.ts _t), returning [out as bf16, the terms
    a dq - k out as float32 [B, T, H*K]], or None where it does not apply (a bf16 a, a and out stored in opposite
    directions, no such entry). ks: the rowsSegStates module: the segments' end states on it under ROWS_SEG_STATES "cuda".
    scan (with terms): True or carry0 ([B, H*K] float32): the terms entry's scan twin (rows-chunk.ts _ts), returning [out as
    bf16, carry0 + the terms' running sums along the walk], or None where it does not apply (no such entry; segments but
    for rev 31, where each segment's sums start from zero and carry0 and the later segments' totals are added after)."""
    np_, nr = len(pairs), len(readouts)
    tile = tile or ROWS_TILE

    def bf(x):
        return x.dtype == torch.bfloat16
    low = None  # the operands the kernel reads as bf16 (ROWS_IO "bf16": every b and c bf16, also every a: "abc")
    if ROWS_IO == "bf16" and all(bf(b) for _, b in pairs) and all(bf(c) for c in readouts):
        low = "abc" if all(bf(a) for a, _ in pairs) else "bc"

    if terms is not None and (low != "bc" or bool(rev & 2) != bool(rev & 16) or any(x.dtype != want or not x.is_contiguous() or x.numel() != B * T * H * K for x, want in zip(terms, (torch.float32, torch.bfloat16)))):
        return None
    sms = (kc.info or {}).get("multiprocessors", 132) if kc is not None and hasattr(kc, "info") else 132
    waves = None if ks is not None else 1  # (no rowsSegStates module: the torch ops' states, one wave)
    nseg = rows_chunk_segments(B, T, H, K, V, sms, waves=waves) if rev in (0, 31) else 1  # (ROWS_CHUNK_SEGMENTS: segments as batches)
    wide = rows_chunk_mode(B * nseg, H, K, V, sms)
    if scan is not None and (terms is None or (nseg > 1 and rev != 31)):
        return None
    kck = rows_chunk_pick(kc, low, np_, nr, K, V, segment, terms=terms is not None, wide=wide, scan=scan is not None)
    if (rev or terms is not None) and (kck is None or not kck.get("rev")):
        return None

    def fits(k, low):
        return k["pairs"] == np_ and k["readouts"] == nr and k.get("low") == low and (tile is None or k["entry"].endswith("_" + tile) or k["entry"].endswith("_%s_l%s" % (tile, low)))
    k = None  # the walk's kernel, where the chunked form does not take these operands
    if kck is None:
        cands = [k for k in km.kernels if fits(k, low)] if low else []
        if not cands:  # float32 operands (bf16 ones converted: ROWS_IO "f32", mixed dtypes, or a module without the twins)
            low = None
            cands = [k for k in km.kernels if fits(k, None)]
        if not cands:
            raise _cuda.CudaError("the rows readout module has no kernel for %d pairs and %d readouts%s (it has %s)" % (
                np_, nr, "" if tile is None else " with tile " + tile, ", ".join(k["entry"] for k in km.kernels)))
        k = next((c for c in cands if c["vs"] >= V), None) or max(cands, key=lambda c: c["vs"])
    dev = ld.device

    def arg(x, what, n, lows=False):
        if lows and x.dtype == torch.bfloat16 and x.device == dev:
            pass
        elif x.dtype == torch.bfloat16 and x.device == dev:  # a bf16 operand of a float32 kernel: its exact float32 copy
            x = x.to(torch.float32)
        elif x.dtype != torch.float32 or x.device != dev:
            raise TypeError("rows readout: %s is %s on %s; the kernel takes float32%s on %s" % (what, x.dtype, x.device, " or bf16" if lows else "", dev))
        if x.numel() != n:
            raise ValueError("rows readout: %s has %d elements; expected %d (B=%d, T=%d, H=%d, K=%d, V=%d)" % (what, x.numel(), n, B, T, H, K, V))
        return x.contiguous()
    nk, nv = B * T * H * K, B * T * H * V
    ins = [arg(ld, "ld [B, T, H*K]", nk)] + [arg(a, "a%d [B, T, H*K]" % i, nk, low == "abc") for i, (a, _) in enumerate(pairs)]
    ins += [arg(b, "b%d [B, T, H*V]" % i, nv, low is not None) for i, (_, b) in enumerate(pairs)] + [arg(c, "c%d [B, T, H*V]" % i, nv, low is not None) for i, c in enumerate(readouts)]
    s0 = arg(S0, "S0 [B, H*K*V]", B * H * K * V) if S0 is not None else torch.zeros(4, dtype=torch.float32, device=dev)
    if terms is not None and kck is not None and K in (64, 128) and any(x.data_ptr() % 16 for x in terms):  # (its cp.async copies of dq, k)
        return None
    if kck is not None and kck.get("pipe") and any(x.data_ptr() % 16 for x in ins):  # its 16-byte loads need aligned rows
        kck = rows_chunk_pick(kc, low, np_, nr, K, V, segment, pipe=False, terms=terms is not None, wide=wide, scan=scan is not None)
        if kck is None and scan is not None:  # (no scan entry without prefetch there)
            return None
    if kck is not None:  # the chunked form: one block per (batch, head), every output element written
        nvg = -(-V // kck["valueGroup"]) if kck.get("valueGroup") else 1  # (split entries: a slice of partial outputs per value group)
        out = torch.empty([nvg, B, T, H * K] if nvg > 1 else [B, T, H * K], dtype=torch.bfloat16 if terms is not None else torch.float32, device=dev)
        extra = [("u32", int(rev))] if kck.get("rev") else []  # (a module built before the rev argument: none)
        tt = None
        if terms is not None:
            tt = torch.empty([B, T, H * K], dtype=torch.float32, device=dev)
            extra += [("ptr", x.data_ptr()) for x in (terms[0], terms[1], tt)]
            c0 = None
            if scan is not None:  # carry0: [B, H*K] float32 (or none: 0); with segments none (the segments' offsets below)
                c0 = None if scan is True else arg(scan, "carry0 [B, H*K]", B * H * K)
                extra += [("ptr", c0.data_ptr() if c0 is not None and nseg == 1 else 0)]
        Bk, Tk, init = B, T, 1 if S0 is not None else 0
        if nseg > 1:  # segments as batches of their own ([B nseg, T / nseg] views of the same tensors) from their start states
            if ks is not None and ROWS_SEG_STATES == "cuda":  # (the kernel reads the operands as the chunked form does)
                s0 = rows_chunk_seg_states(ins[0], [(ins[1], ins[2])], S0, B, T, H, K, V, nseg, rev, ks=ks)
            else:
                s0 = rows_chunk_seg_states(ld, pairs, S0, B, T, H, K, V, nseg, rev)
            Bk, Tk, init = B * nseg, T // nseg, 1
        with torch.cuda.device(dev):
            stream = torch.cuda.current_stream(dev).cuda_stream
            kc.launch(kck, (Bk * H, (-(-K // kck["keyGroup"]) if kck.get("keyGroup") else 1) * nvg), [("ptr", x.data_ptr()) for x in ins + [s0, out]] + [("u32", v) for v in (Bk, Tk, H, K, V, init)] + extra, stream)
        if scan is not None and nseg > 1:  # (rev 31) each segment's sums from zero: add carry0 and the later segments' totals
            v = tt.view(B, nseg, T // nseg, H * K)
            tot = v[:, :, 0, :]  # (a segment's total: its first stored token, the last it walked)
            off = torch.flip(torch.cumsum(torch.flip(tot, [1]), 1), [1]) - tot
            if c0 is not None:
                off = off + c0.reshape(B, 1, H * K)
            v += off.unsqueeze(2)
        if nvg > 1:  # the value groups' partial sums, added in order
            acc = out[0] + out[1]
            for g in range(2, nvg):
                acc += out[g]
            out = acc
        return [out] if tt is None else [out, tt]
    slices = -(-V // k["vs"])
    outs = [torch.empty([slices, B, T, H * K], dtype=torch.float32, device=dev) for _ in readouts]
    seg = rows_segment(k, B, T, H, K, V, km.info["multiprocessors"], segment)
    nseg = -(-T // seg)
    init = 1 if S0 is not None else 0
    gx = B * H * (-(-K // k["kr"]))
    with torch.cuda.device(dev):
        stream = torch.cuda.current_stream(dev).cuda_stream
        if nseg > 1:
            n = B * H * K * V
            St = torch.empty([nseg, n], dtype=torch.float32, device=dev)
            P = torch.empty([nseg, B * H * K], dtype=torch.float32, device=dev)
            e_args = [("ptr", x.data_ptr()) for x in ins[: 1 + 2 * np_] + [St, P]] + [("u32", v) for v in (B, T, H, K, V, seg)]
            km.launch(k["ends"], (gx, (nseg - 1) * slices), e_args, stream)
            km.launch(k["scan"], (-(-n // k["scan"]["threads"]), 1), [("ptr", St.data_ptr()), ("ptr", P.data_ptr()), ("ptr", s0.data_ptr())] + [("u32", v) for v in (B, H, K, V, nseg, init)], stream)
            s0, init = St, 1
        args = [("ptr", x.data_ptr()) for x in ins + [s0] + outs] + [("u32", v) for v in (B, T, H, K, V, init)]
        if nseg > 1:
            km.launch(k["segments"], (gx, nseg * slices), args + [("u32", seg)], stream)
        else:
            km.launch(k, (gx, slices), args, stream)
    return [(o[0] if slices == 1 else o.sum(0)).reshape(B, T, H * K) for o in outs]


_ANCHOR_TYPES = {"bfloat16": "bf16", "float32": "f32"}


def anchor_chunks_kernel(km, xs, w, kg=None):
    """seqc_decay_adjoint's products(xs, w) on the anchor chunks kernel (compiler/backends/cuda/anchor-chunks.ts):
    sum over (a, b) in xs of sum_(s in chunk i) (a_s w_s) b_s^T as float32 [B, H, Kd, n, R] (Kd = 1, R = K V for a
    scalar decay; Kd = K, R = V per key row), a [B, T, H*K] and b [B, T, H*V] read as they are (bf16 or float32, any
    strides as [B, T, H, K] / [B, T, H, V] views), w [B, H, n, C, Kd] float32. kg: key rows per output row (None: K for a
    scalar decay, 1 per key row; a scalar decay's groups: out [B, H, K / kg, n, kg V]). None where the kernel does not
    apply (another dtype or device, no entry for the operands' types, strides past 32 bits, kg not dividing K or not 1
    with a per-key decay): the caller then copies."""
    if km is None or not xs or w.dtype != torch.float32 or w.device.type != "cuda":
        return None
    B, H, n, C, Kd = (int(d) for d in w.shape)
    T = int(xs[0][0].shape[1])
    dev = w.device
    views = []
    for a, b in xs:
        if a.device != dev or b.device != dev or int(a.shape[0]) != B or int(a.shape[1]) != T or int(b.shape[0]) != B or int(b.shape[1]) != T:
            return None
        K, V = a.numel() // (B * T * H), b.numel() // (B * T * H)
        a3, b3 = a.reshape(B, T, H, K), b.reshape(B, T, H, V)  # views (a head broadcast by stride 0 stays one)
        ta, tb = _ANCHOR_TYPES.get(str(a.dtype).replace("torch.", "")), _ANCHOR_TYPES.get(str(b.dtype).replace("torch.", ""))
        fits = [k for k in km.kernels if k["a"] == ta and k["b"] == tb]
        k = next((k for k in fits if bool(k.get("vec")) == (ANCHOR_VEC == "v4") and bool(k.get("r8")) == (ANCHOR_VEC == "r8")), None) or next(iter(fits), None)
        if k is None or (Kd != 1 and Kd != K) or max(list(a3.stride()) + list(b3.stride())) >= 2 ** 32:
            return None
        views.append((k, a3, b3, K, V))
    K, V = views[0][3], views[0][4]
    if any(v[3] != K or v[4] != V for v in views):
        return None
    kg = kg or (K if Kd == 1 else 1)
    if K % kg or (Kd != 1 and kg != 1):
        return None
    w = w.contiguous()
    out = torch.empty([B, H, K // kg, n, kg * V], dtype=torch.float32, device=dev)
    with torch.cuda.device(dev):
        stream = torch.cuda.current_stream(dev).cuda_stream
        for j, (k, a3, b3, _, _) in enumerate(views):
            grid = (B * H * n, -(-K // k["kt"]) * -(-V // k["vt"]))
            args = [("ptr", x.data_ptr()) for x in (a3, b3, w, out)] + [("u32", int(v)) for v in (B, T, H, K, V, C, n, Kd) + tuple(a3.stride()) + tuple(b3.stride()) + (1 if j else 0, kg)]
            km.launch(k, grid, args, stream)
    return out


_TERMS_TYPES = {torch.float32: "f32"}
if hasattr(torch, "bfloat16"):
    _TERMS_TYPES[torch.bfloat16] = "bf16"


_REV_ADD_TYPES = {torch.float32: "f32", getattr(torch, "bfloat16", None): "bf16"}


def rev_add_kernel(km, a, c, B, T, out_dtype):
    """a + c reversed in time, [B, T, ...] each (a [b, t] + c [b, T - 1 - t]), as out_dtype (the float32 sum rounded once:
    bitwise torch.add(a, flip_time(c), out=<out_dtype>)) on the reversed-time add kernel (compiler/backends/cuda/rev-add.ts:
    km the module's "revAdd"), or None where it does not apply (no module or entry for the types, another device, the
    sizes past 32 bits): the caller then flips and adds."""
    if km is None or a.device.type != "cuda" or c.device != a.device or a.numel() != c.numel() or B * T == 0 or a.numel() % (B * T):
        return None
    ta, tc, to = _REV_ADD_TYPES.get(a.dtype), _REV_ADD_TYPES.get(c.dtype), _REV_ADD_TYPES.get(out_dtype)
    k = next((k for k in km.kernels if k.get("op") == "revAdd" and k["a"] == ta and k["c"] == tc and k["o"] == to), None)
    W = a.numel() // (B * T)
    if k is None or W >= 2 ** 32 or B * T >= 2 ** 32:
        return None
    a, c = a.contiguous(), c.contiguous()
    out = torch.empty(a.shape, dtype=out_dtype, device=a.device)
    vec = W % 8 == 0 and all(x.data_ptr() % 16 == 0 for x in (a, c, out))
    groups = -(-a.numel() // 8)  # (8 elements a thread; a grid-stride loop past 2^31 - 1 blocks)
    grid = max(1, min(-(-groups // k["threads"]), 2 ** 31 - 1))
    with torch.cuda.device(a.device):
        km.launch(k, (grid, 1), [("ptr", x.data_ptr()) for x in (a, c, out)] + [("u32", int(v)) for v in (B, T, W, 1 if vec else 0)],
                  torch.cuda.current_stream(a.device).cuda_stream)
    return out


def decay_terms_kernel(km, plus, minus, B, T, H, K, per_key, rev=0):
    """The decay adjoint's terms sum_(a, c) in plus a.c - sum_(a, c) in minus a.c on the decay terms kernel
    (compiler/backends/cuda/decay-terms.ts): a.c summed over K per head ([B, T, H] float32) or, per_key, per key row
    ([B, T, H*K]); every operand [B, T, H*K] (bf16 or float32, any token and head strides as a [B, T, H, K] view, the
    feature stride 1), the plus side's a's of one dtype, the minus side's of one (the same or another: an entry with its a2),
    the c's of one. None where the kernel does not apply (another dtype or
    device, no entry for the types, a feature stride other than 1, strides past 32 bits, more minus than plus pairs):
    the caller then computes them in torch ops. rev: operands stored in reversed time, as the kernel's rev bits (decay-terms.ts
    REV_BITS: a1 1, c1 2, a2 4, c2 8; every launch); None where rev is set and the module's kernel has no rev argument."""
    if km is None or not plus or len(minus) > len(plus):
        return None
    xs = [x for pair in list(plus) + list(minus) for x in pair]
    dev = xs[0].device
    if dev.type != "cuda" or any(x.device != dev for x in xs):
        return None
    ta = {_TERMS_TYPES.get(a.dtype) for a, _ in plus}
    ta2 = {_TERMS_TYPES.get(a.dtype) for a, _ in minus} or set(ta)  # the minus side's a (k) may be of another type (GLA: q float32, k bf16)
    tc = {_TERMS_TYPES.get(c.dtype) for _, c in list(plus) + list(minus)}
    if len(ta) != 1 or len(ta2) != 1 or len(tc) != 1 or None in ta or None in ta2 or None in tc:
        return None
    ta, ta2, tc = ta.pop(), ta2.pop(), tc.pop()
    k = next((k for k in km.kernels if k.get("op") == "decayTerms" and k["a"] == ta and k.get("a2", k["a"]) == ta2 and k["c"] == tc), None)
    if k is None or (rev and not k.get("rev")):
        return None
    views = []
    for x in xs:
        if x.numel() != B * T * H * K:
            return None
        v = x.reshape(B, T, H, K)
        st = list(v.stride())
        if (st[3] != 1 and K > 1) or min(st) < 0 or max(st) >= 2 ** 32:
            return None
        views.append(v)
    vec = K % 2 == 0 and all(v.stride(j) % 2 == 0 for v in views for j in range(3)) and all(v.data_ptr() % (2 * v.element_size()) == 0 for v in views)
    out = torch.empty([B, T, H * K if per_key else H], dtype=torch.float32, device=dev)
    rows = B * T * H
    with torch.cuda.device(dev):
        stream = torch.cuda.current_stream(dev).cuda_stream
        for j in range(len(plus)):
            a1, c1 = views[2 * j], views[2 * j + 1]
            two = j < len(minus)
            a2, c2 = (views[2 * len(plus) + 2 * j], views[2 * len(plus) + 2 * j + 1]) if two else (a1, c1)
            args = [("ptr", x.data_ptr()) for x in (a1, c1, a2, c2, out)] + [("u32", int(v)) for v in (B, T, H, K, 1 if per_key else 0, 1 if two else 0, 1 if j else 0, 1 if vec else 0)]
            args += [("u32", int(x.stride(d))) for x in (a1, c1, a2, c2) for d in range(3)]
            if k.get("rev"):  # (a module built before the rev argument: none)
                args.append(("u32", int(rev)))
            km.launch(k, (-(-rows // k["rows"]), 1), args, stream)
    return out


def module_kernels(m, device, key):
    """The module's "kernels".<key> (a kernel module of compiler/backends/cuda: rowsReadout, anchorChunks, lowRankCore,
    lowRankReadout) loaded on `device` (seqc_cuda.KernelModule, cached on m per key and device), or None where the
    module has none or the device is not CUDA."""
    spec = ((getattr(m, "meta", None) or {}).get("kernels") or {}).get(key)
    if spec is None or device.type != "cuda":
        return None
    cache = m.__dict__.setdefault("_seqc_kernels", {})
    if (key, device.index) not in cache:
        cache[(key, device.index)] = _cuda.KernelModule(spec, "%s %s" % (m.name, key), device.index)
    return cache[(key, device.index)]


def rows_decayed_readout(ld, pairs, readouts, S0, B, T, H, K, V, dtype, device, C=16):
    """out_r,t = S_t c_r,t for S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T (per head, S_0 = S0), in torch ops.

    The per-key decay's transposed core (dq = S dy with a = k, b = v, c = dy) and transposed adjoint (dk = G v in
    reversed time with a = q, b = dy, c = v, ld the shifted reversed decays). ld, a: [B, T, H*K]; b, c: [B, T, H*V];
    S0: [B, H*K*V] (canonical [H, K, V]). Chunks of C tokens, g = the decays' cumulative sum inside a chunk:
      intra  out_t[i] = sum_{s<=t} exp(g_t[i] - g_s[i]) a_s[i] (b_s . c_t)   (only differences of g with s <= t
             are exponentiated: no overflow whatever the decays' sizes)
      inter  out_t[i] += exp(g_t[i]) (S_c c_t)[i], S_c the state before the chunk: S_{c+1} = exp(g_end) S_c +
             sum_s exp(g_end - g_s) a_s b_s^T (matrix products, then one multiply-add per chunk in order).
    Returns [out_r: [B, T, H*K]] in the readouts' order."""
    n = -(-T // C)
    Tp = n * C

    def blocks(x, w):
        """[B, T, H*w] -> [n, B, H, C, w] (zero-padded to n C tokens: no decay, no update, no readout)."""
        return torch.permute(_pad_tokens(x, Tp, dtype, device).reshape(B, n, C, H, w), [1, 0, 3, 2, 4])

    g = torch.cumsum(blocks(ld, K), 3)  # [n, B, H, C, K]
    g_end = g[:, :, :, C - 1 : C, :]  # [n, B, H, 1, K]
    A = [blocks(a, K) for a, _ in pairs]
    Bv = [blocks(b, V) for _, b in pairs]
    Cv = [blocks(c, V) for c in readouts]
    # intra-chunk first (the bulk of the GPU work, queued while the host then walks the chunks below):
    # exp(g_t - g_s) for s <= t, zero above the diagonal
    mask = torch.tril(torch.ones([C, C], dtype=dtype, device=device)) > 0  # [t, s]
    E = torch.exp(torch.where(mask[:, :, None], g[:, :, :, :, None, :] - g[:, :, :, None, :, :], float("-inf")))  # [n, B, H, C(t), C(s), K]
    W = [E * a[:, :, :, None, :, :] for a in A]
    del E
    intra = []
    for c in Cv:
        o = None
        for w, b in zip(W, Bv):
            m = torch.matmul(c, torch.transpose(b, 3, 4))  # (b_s . c_t): [n, B, H, C(t), C(s)]
            t = torch.matmul(m[:, :, :, :, None, :], w)[:, :, :, :, 0, :]  # [n, B, H, C, K]
            o = t if o is None else o + t
        intra.append(o)
    del W
    # the states before each chunk: S_{c+1} = exp(g_end) S_c + sum_p (a_p exp(g_end - g))^T b_p
    tail = torch.exp(g_end - g)  # [n, B, H, C, K]
    dS = None
    for a, b in zip(A, Bv):
        t = torch.matmul(torch.transpose(a * tail, 3, 4), b)  # [n, B, H, K, V]
        dS = t if dS is None else dS + t
    dec = torch.transpose(torch.exp(g_end), 3, 4)  # [n, B, H, K, 1]
    starts = torch.zeros([n, B, H, K, V], dtype=dtype, device=device)
    starts[0] = S0.reshape(B, H, K, V)
    for c in range(n - 1):
        torch.addcmul(dS[c], dec[c], starts[c], out=starts[c + 1])
    outs = []
    eg = torch.exp(g)
    for c, o in zip(Cv, intra):
        o = o + eg * torch.transpose(torch.matmul(starts, torch.transpose(c, 3, 4)), 3, 4)  # inter: exp(g_t) S_c c_t
        o = torch.permute(o, [1, 0, 3, 2, 4]).reshape(B, Tp, H * K)
        outs.append(o[:, :T])
    return outs


def chain_backward(n, run, B, T, state_shape, given, S0, cot_outputs, cot_state, inputs, params, outputs, dtype, device, per_key_t=None, decay_way=None, S_N=None, seen=None, rows=None, decay_anchor=None, anchor_chunk=None, rev_low=None, reverse_sum=None, reverse_glue=None, low_out=False, exact_low=None, low_in=None, low_alias=False, part_reads=None, low_bars=False, run_copies=False, post_binds=None, anchor_products=None, decay_terms=None, sum_low=None, drop_zeros=False, rev_add=None, terms_rev=False, rows_rev=None, low_reads=None, rows_terms=False, rows_scan=False):
    """Gradients of the forward's inputs, params and the matrix state's initial value through the chain.

    n: the chain's names (<Model>.torch.json "chunked".names); run(part, dims, inputs, initial_state, B, T)
    -> (outputs, final states) runs plan chain:<part> (dims None: the model's dims and params, else the core's
    {H, K, V} or the decay scan's {H, K}; the stateless parts get [B*T, 1]); given: the forward's inputs [B, T, ...]; S0: the matrix state's
    initial value [B, *state_shape] or None (the declared value); cot_outputs: {output: dL/d output or None};
    cot_state: dL/d(final state) or None; inputs / params / outputs: [(name, per-step shape)].
    per_key_t: how a per-key decay's transposed cores run ("kernel" / "matmul" / "plans"; None: PER_KEY_TRANSPOSED).
    rows(ld, pairs, readouts, S0) -> outs: rows_decayed_readout on the rows readout kernel (rows_readout_kernel), or None
    (then "kernel" runs as "matmul").
    decay_way: how the log decays' adjoint runs ("torch" / "plan"; None: DECAY_WAY).
    decay_anchor: "chunk" / "none" / "mixed" (as "none" here) or a function giving one when the decay adjoint runs
    (None: DECAY_ANCHOR); anchor_chunk: its tokens per chunk (None: DECAY_ANCHOR_CHUNK).
    S_N: the matrix state's final value as the forward computed it ([B, *state_shape]) or None: with it, the forward
    core does not run again where post's backward does not run (n["postBw"]["skip"]: nothing reads y).
    seen(x) -> the values of q or k as the transposed cores read them (bf16-rounded where they ran with bf16 inputs) or
    None (as given): the decay adjoint's terms q.dq - k.dk cancel, so they take q and k as dq and dk were computed with
    (the bf16 rounding of a scaled q against the float32 one came out as 6e-3 of Simple GLA's dg at K = 5, 2e-3 with
    the rounded one, on the interpreter: test/torch-bf16.test.ts).
    rev_low(x, parts) -> x reversed in time as the cores `parts` read it (their bf16 copy) or None (then torch.flip of x):
    for the reversed inputs only the adjoint cores read. reverse_sum: REVERSE_SUM's choice (None: REVERSE_SUM);
    reverse_glue: REVERSE_GLUE's (None: REVERSE_GLUE).
    anchor_products(xs, w) -> the anchors' lean Gram's chunk products without its copies, or None
    (seqc_decay_adjoint.anchored_decay_adjoint's products; ANCHOR_CHUNKS "kernel": anchor_chunks_kernel).
    sum_low: the dtype an input's gradient summed from several pieces is written in by its last addition (sum_pieces'
    low; GRAD_SUM "low": bf16 where the inputs are), or None (float32).
    terms_rev: decay_terms takes rev= (its operands' reversed-time bits): where every pair's k is prep's copy of a bf16 input
    whose gradient has no other piece, the terms read adjointT's dk in reversed time and dk is converted to the input's
    dtype before its reversal (REVERSED_READS "terms"; where decay_terms returns None, as before).
    rows_rev(ld, pairs, readouts, S0, rev, terms=None) -> rows(...)'s outputs with the operands read in reversed time as the
    bits rev say (rows_readout_kernel's rev, terms), or None where the kernel does not take them (ROWS_REVERSED "kernel"): a
    per-key decay's transposed adjoint then reads the forward-time ld, q, dy, v and writes dk in forward time (no flips for
    it or after it). rows_terms: the decay adjoint's terms are asked of it (ROWS_TERMS "kernel": [dk in bf16, the terms]).
    rows_scan: with rows_terms, where the decay anchors resolve to none, their reverse sums from a_T (ROWS_TERMS "scan":
    rows_rev(..., scan=a_T) -> [dk in bf16, dld]; where it returns None, the terms as rows_terms asks).
    rev_add(a, c, dtype) -> a + c reversed in time as dtype (REV_ADD "kernel": rev_add_kernel), or None: where the
    adjoint's dv is prep's copy of an input whose one other piece is post's backward's, that sum without dv's flip.
    low_reads(parts) -> whether every core in parts reads bf16 (then the adjoint's shifted decays are gathered from a bf16
    input they equal, where rows_rev took adjointT), or None.
    decay_terms(plus, minus) -> the decay adjoint's per-token terms sum a.c over plus - over minus ([(q, dq)] and
    [(k, dk)] as the torch ops below take them) as [B, T, L], or None (then the torch ops; DECAY_TERMS "kernel":
    decay_terms_kernel).
    low_out: run accepts low_out=True for the adjoint cores (their outputs then in the cores' dtype, bf16 where they ran
    bf16 out: reversed here before the conversion to dtype); exact_low(x) -> a bf16 tensor whose values x holds exactly,
    or None: what the anchors' lean Gram copies in place of x (GLUE_COPIES "lean").
    low_in(part) -> the inputs of stateless part `part` ("prep", "postBw", "prepBw") its plan reads in bf16 (run gets them
    as given.low(name) / cot_outputs.low(name): the bf16 tensors themselves) or None (every input from given /
    cot_outputs, in dtype): STATELESS_IO "bf16". given and cot_outputs then are _Converted (dtype copies made where read).
    low_alias: prep's copies of inputs (but the log decays) and post's backward's copies of cotangents are the bf16 tensors
    themselves (given.low / cot_outputs.low) where there are some (ALIAS_IO "bf16"; a per-key decay only with ROWS_IO "bf16":
    its rows readouts then take bf16 operands, and its terms k * dk upcast inside the product).
    part_reads(part) -> the names of the forward's inputs stateless part `part`'s plan binds, or None (all): the others are
    not handed to it (PART_INPUTS "read": no float32 copy of an input made for a plan that does not read it).
    low_bars: with low_out, the adjoint cores' outputs stay in the cores' dtype after the reversal (ADJOINT_OUT "low"):
    converted to dtype only where prep's backward or the decay adjoint reads them; an input's gradient may come back bf16.
    run_copies: a part that runs takes its `copies` from their inputs too (RUN_COPIES "input"), not from its plan.
    drop_zeros: a part that runs leaves its `zeros` out of the sums (ZERO_STORES "skip": its form may not write them).
    post_binds: the inputs some form of post's backward plan binds (CORE_RERUN "bound"), or None: with S_N, the forward
    core does not run again where none of the readouts' y is among them.
    Returns ({input: grad}, {param: grad}, dS0)."""
    cd = chain_dims(n, state_shape)
    rsum = reverse_sum or REVERSE_SUM
    lean = (reverse_glue or REVERSE_GLUE) == "lean"
    H, K, V = cd["H"], cd["K"], cd["V"]
    per_key = n["decay"] == "key"
    way_t = per_key_t or PER_KEY_TRANSPOSED
    matmul_t = per_key and (way_t == "matmul" or way_t == "kernel")

    def readout(ld, pairs, readouts, S0):
        if way_t == "kernel" and rows is not None:
            return rows(ld, pairs, readouts, S0)
        return rows_decayed_readout(ld, pairs, readouts, S0, B, T, H, K, V, dtype, device)
    L = H * K if per_key else H  # log decays per token
    heads = [1 + a for a in n["heads"]]
    perm = [0] + heads + [1 + n["key"], 1 + n["value"]]
    perm_t = [0] + heads + [1 + n["value"], 1 + n["key"]]

    def canon(S, transpose):
        """The model's state layout [B, *state_shape] -> [B, H, K, V] (or [B, H, V, K])."""
        return torch.permute(S, perm_t if transpose else perm).reshape(B, H * K * V)

    def tok(a, w):
        return a.reshape(B, T, w)

    def rev(a):
        return flip_time(a)

    def rev_out(a):  # an adjoint core's output reversed, in dtype (reversed first where it came in another dtype;
        r = rev(a)  # with low_bars left in that dtype)
        return r.to(dtype) if low_out and r.dtype != dtype and not low_bars else r

    def full(x):  # x in dtype (an adjoint kept in bf16 by low_bars, where the glue computes with it)
        return x.to(dtype) if x is not None and x.dtype != dtype else x

    def pointwise(part, inputs, full=None):
        """prep and the backward models of prep and post are stateless, so [B, T] runs as [B*T, 1]: one step over
        every token at once (the sequential forms walk the steps; at T = 2048 that was 99% of the backward).
        A backward model's `copies` (outputs equal to one of its inputs: compiler/backends/torch/chain-copies.ts) are
        those inputs; `skip`: nothing else to compute, the plan does not run."""
        names = n.get(part) if part != "prep" else None
        res = {}
        if names and not names.get("skip") and not run_copies:
            names = dict(names, copies=None)
        if not (names and names.get("skip")):
            folded = {k: v.reshape([B * T, 1] + list(v.shape[2:])) for k, v in inputs.items() if v is not None}
            res = {k: v.reshape([B, T] + list(v.shape[2:])) for k, v in run(part, None, folded, {}, B * T, 1)[0].items()}
            if drop_zeros:  # its literal zeros (a "-nz" form leaves them unwritten): no piece of any sum
                for o in (names or {}).get("zeros") or ():
                    res.pop(o, None)
        for o, i in ((names or {}).get("copies") or {}).items():
            if inputs.get(i) is not None:
                res[o] = full(i) if full is not None else inputs[i]  # (in dtype: the glue reads it)
        return res

    def low_names(part):
        return (low_in(part) if low_in is not None else None) or ()

    def given_in(part):  # the forward's inputs as part's plan reads them: in bf16 where it reads them so, else in dtype
        low = low_names(part)
        reads = part_reads(part) if part_reads is not None else None
        if reads is not None:  # and the sources of the part's copies (which its plan need not bind)
            reads = set(reads) | set(((n.get(part) or {}).get("copies") or {}).values())
        return {k: (given.low(k) if k in low else given[k]) for k in given.keys() if reads is None or k in reads}

    if S0 is None:
        S0 = torch.zeros([B] + list(state_shape), dtype=dtype, device=device) + n["stateInit"]
    dS = cot_state if cot_state is not None else torch.zeros([B] + list(state_shape), dtype=dtype, device=device)

    prep = pointwise("prep", given_in("prep"))
    aliases = n.get("prepAliases") or {}  # prep's copies of inputs (compiler/backends/torch/chain-copies.ts): the inputs themselves
    for o, src in aliases.items():
        lv = given.low(src) if low_alias and o != n.get("ld") else None
        prep[o] = lv if lv is not None else given[src]
    ld = tok(prep[n["ld"]], L) if n.get("ld") else None
    kv, qs = {}, {}
    for i, p in enumerate(n["pairs"]):
        kv["x_k%d" % i] = tok(prep[p["k"]], H * K)
        kv["x_v%d" % i] = tok(prep[p["v"]], H * V)
    for i, r in enumerate(n["readouts"]):
        qs["x_q%d" % i] = tok(prep[r["q"]], H * K)

    def with_ld(t, l):
        if l is not None:
            t = dict(t)
            t["x_ld"] = l
        return t

    # forward core: y for post, S_N for the decay adjoint's start. Where post's backward does not run (it needs no y)
    # and the forward's final state S_N is given, there is nothing left for it to compute
    unbound = post_binds is not None and not any(r["y"] in post_binds for r in n["readouts"])
    if S_N is not None and (n["postBw"].get("skip") or unbound):
        core_out, core_fin = {}, {"S": canon(S_N, False)}
    else:
        core_out, core_fin = run("core", cd, with_ld(dict(kv, **qs), ld), {"S": canon(S0, False)}, B, T)

    # post's backward: dL/dy and post's own contributions
    post_in = given_in("postBw")
    post_low = low_names("postBw")
    for i, r in enumerate(n["readouts"]):
        post_in[r["y"]] = core_out.get("o_y%d" % i)
        if post_in[r["y"]] is None and not n["postBw"].get("skip"):  # no kernel reads it (unbound): on CUDA unwritten,
            if getattr(device, "type", None) == "cuda":  # elsewhere (the tests' interpreter) 1e30, which would show if read
                post_in[r["y"]] = torch.empty([B, T, H * V], dtype=dtype, device=device)
            else:
                post_in[r["y"]] = torch.zeros([B, T, H * V], dtype=dtype, device=device) + 1e30
    cot_of = {}  # postBw's cotangent input -> the output it is the cotangent of
    for name, shape in outputs:
        bar = n["postBw"]["outputBar"][name]
        cot_of[bar] = name
        use_low = bar in post_low or (low_alias and n["postBw"].get("skip"))
        g = cot_outputs.low(name) if use_low and cot_outputs.low(name) is not None else cot_outputs.get(name)
        post_in[bar] = g if g is not None else torch.zeros([B, T] + list(shape), dtype=dtype, device=device)

    def post_full(i):  # a copy's source in dtype (postBw's copies of a cotangent or an input)
        v = post_in[i]
        if v is None or v.dtype == dtype:
            return v
        return cot_outputs.get(cot_of[i]) if i in cot_of else given[i]
    post_g = pointwise("postBw", post_in, None if low_alias else post_full)
    dys = {"x_dy%d" % i: tok(post_g[n["postBw"]["inputBar"][r["y"]]], H * V) for i, r in enumerate(n["readouts"])}

    # dq = S dy (the transposed core, forward time); a per-key decay keeps S's layout (its key rows are heads)
    if matmul_t:
        dqs = readout(ld, [(kv["x_k%d" % i], kv["x_v%d" % i]) for i in range(len(n["pairs"]))], [dys["x_dy%d" % i] for i in range(len(n["readouts"]))], canon(S0, False))
        coret_out = {"o_dq%d" % i: d for i, d in enumerate(dqs)}
    else:
        coret_out = run("coreT", cd, with_ld(dict(kv, **dys), ld), {"S": canon(S0, not per_key)}, B, T)[0]

    def whole_low(o):  # the dtype of the bf16 input whose whole gradient o's adjoint is (prep's copy, no other piece), or None
        src = aliases.get(o)
        if src is None or o in n["prepOutputs"] or not hasattr(given, "low") or given.low(src) is None:
            return None
        if any(src in ((n.get(part) or {}).get("inputBar") or {}) for part in ("postBw", "prepBw")):
            return None
        return given.low(src).dtype
    sv = seen or (lambda x: x)
    # ROWS_REVERSED "kernel": adjointT (dk = G v in reversed time) on the forward-time tensors, dk stored in forward time;
    # ROWS_TERMS "kernel": with the decay adjoint's terms (where the terms kernel would take them) and dk in bf16
    dks_fwd, fused_terms, fused_sums = None, None, None

    def start_sums():  # a_T = <dS_N, S_N> per key row as [B, H*K] float32 (the reverse sums' value after the last token)
        a0 = (canon(dS, False) * core_fin["S"].reshape(B, H * K * V)).reshape(B, H, K, V).sum(3)
        return a0.reshape(B, H * K).to(torch.float32).contiguous()
    if matmul_t and way_t == "kernel" and rows_rev is not None and ld is not None:
        args = (ld, [(qs["x_q%d" % i], dys["x_dy%d" % i]) for i in range(len(n["readouts"]))], [kv["x_v%d" % i] for i in range(len(n["pairs"]))], canon(dS, False), 31)
        if (rows_terms and per_key and decay_terms is not None and (decay_way or DECAY_WAY) == "torch" and len(n["pairs"]) == 1 and len(n["readouts"]) == 1
                and whole_low(n["pairs"][0]["k"]) == getattr(torch, "bfloat16", None) and sv(qs["x_q0"]) is qs["x_q0"] and sv(kv["x_k0"]).dtype == torch.bfloat16):
            got = None
            if rows_scan:  # the reverse sums from the kernel, where no anchors would read the terms
                anchor_early = decay_anchor() if callable(decay_anchor) else (decay_anchor or DECAY_ANCHOR)
                if anchor_early != "chunk":
                    got = rows_rev(*args, terms=(tok(coret_out["o_dq0"], H * K), sv(kv["x_k0"])), scan=start_sums())
                    if got is not None:
                        dks_fwd, fused_sums = got[:1], got[1].reshape(B, T, L)
            if got is None:
                got = rows_rev(*args, terms=(tok(coret_out["o_dq0"], H * K), sv(kv["x_k0"])))
                if got is not None:
                    dks_fwd, fused_terms = got[:1], got[1].reshape(B, T, L)
        if dks_fwd is None:
            dks_fwd = rows_rev(*args)
    # the adjoint in reversed time: token t's decay moved to t - 1 (none after the last token), then reversed
    ldn = None
    ld_low = given.low(aliases[n["ld"]]) if dks_fwd is not None and lean and n.get("ld") in aliases and hasattr(given, "low") else None
    if ld_low is not None and low_reads is not None and low_reads(("adjoint",)):
        # only the adjoint core reads them, in bf16: gathered from the bf16 input ld copies (the same values, no conversion)
        ldn = shift_rev(ld_low.reshape(B, T, L))
    elif ld is not None and lean and hasattr(torch, "arange"):
        # ldn_t = ld_{T - t} for t >= 1, 0 at t = 0: one gather (index T - t mod T) and the first token zeroed
        ldn = ld[:, torch.arange(T, 0, -1, device=device) % T]
        ldn[:, 0] = 0
    elif ld is not None:
        shifted = torch.zeros([B, T, L], dtype=dtype, device=device)
        shifted[:, :-1] = ld[:, 1:]
        ldn = rev(shifted)
    # the parts that read each reversed input: the adjoint always; adjointT where it runs as a core (not the per-key
    # readout, which reads q, dy and v in float32); the decay plan q and k
    decay_plan = n.get("ld") and (decay_way or DECAY_WAY) != "torch"
    core_parts = ("adjoint",) if matmul_t else ("adjoint", "adjointT")

    def rev_in(k, a):  # (adjointT on the forward-time tensors, dks_fwd: only the adjoint core reads them reversed)
        only_cores = not (matmul_t and dks_fwd is None and not k.startswith("x_k")) and not (decay_plan and (k.startswith("x_q") or k.startswith("x_k")))
        r = rev_low(a, core_parts) if lean and rev_low is not None and only_cores else None
        return r if r is not None else rev(a)
    r_in = {k: rev_in(k, a) for k, a in list(qs.items()) + list(kv.items()) + list(dys.items())}
    lo = {"low_out": True} if low_out else {}
    adj_out, adj_fin = run("adjoint", cd, with_ld(r_in, ldn), {"G": canon(dS, False)}, B, T, **lo)
    if matmul_t:
        dks = dks_fwd or readout(ldn, [(r_in["x_q%d" % i], r_in["x_dy%d" % i]) for i in range(len(n["readouts"]))], [r_in["x_v%d" % i] for i in range(len(n["pairs"]))], canon(dS, False))
        adjt_out = {"o_dk%d" % i: d for i, d in enumerate(dks)}
    else:
        adjt_out = run("adjointT", cd, with_ld(r_in, ldn), {"G": canon(dS, not per_key)}, B, T, **({} if decay_plan else lo))[0]

    # the adjoints of prep's outputs
    bars = {}
    summed = {}  # REV_ADD "kernel": inputs whose gradient rev_add summed (post's piece + the reversed dv)

    def rev_sum(o, c):  # o's adjoint c (reversed time) added to its input's one other piece, post's backward's; False: not here
        a = aliases.get(o)
        pb = ((n.get("postBw") or {}).get("inputBar") or {}).get(a) if a is not None else None
        if (pb is None or (post_g or {}).get(pb) is None or o in (n.get("prepOutputs") or ()) or a in ((n.get("prepBw") or {}).get("inputBar") or {})
                or sum(1 for x in aliases.values() if x == a) != 1):
            return False
        piece = post_g[pb].reshape(c.shape)
        cdt = dtype if low_out and c.dtype != dtype and not low_bars else c.dtype  # (what rev_out hands on)
        bf = getattr(torch, "bfloat16", None)
        od = sum_low if sum_low is not None else torch.float32 if piece.dtype == bf and cdt == bf else torch.promote_types(piece.dtype, cdt)
        got = rev_add(piece, c, od)  # (sum_pieces' sum: post's piece first, then dv; the last addition in sum_low)
        if got is None:
            return False
        summed[a] = got
        return True
    # REVERSED_READS "terms": each pair's dk as adjointT wrote it (reversed time) and the dtype it is returned in, where dk is
    # an input's whole gradient (prep's copy of a bf16 input, no other piece); reversed below, after the terms read it
    dk_raw = {}
    if terms_rev and dks_fwd is None and decay_terms is not None and n.get("ld") and (decay_way or DECAY_WAY) == "torch" and all(whole_low(p["k"]) is not None for p in n["pairs"]):
        dk_raw = {i: (tok(adjt_out["o_dk%d" % i], H * K), whole_low(p["k"])) for i, p in enumerate(n["pairs"])}
    for i, p in enumerate(n["pairs"]):
        if dks_fwd is not None:  # written in forward time
            bars[p["k"]] = tok(adjt_out["o_dk%d" % i], H * K)
        elif i not in dk_raw:
            bars[p["k"]] = rev_out(tok(adjt_out["o_dk%d" % i], H * K))
        dv_rev = tok(adj_out["o_dv%d" % i], H * V)
        if rev_add is None or not rev_sum(p["v"], dv_rev):
            bars[p["v"]] = rev_out(dv_rev)
    for i, r in enumerate(n["readouts"]):
        bars[r["q"]] = tok(coret_out["o_dq%d" % i], H * K)
    def start():  # a_T = <dS_N, S_N> per head (per key row): where the reverse sums run over the whole sequence
        a0 = (canon(dS, False) * core_fin["S"].reshape(B, H * K * V)).reshape(B, H, K, V).sum(3)
        return a0.reshape(B, H * K) if per_key else a0.sum(2)
    if n.get("ld") and (decay_way or DECAY_WAY) == "torch":
        # dld_t = a_T + sum_{s >= t} (q_s . dq_s - k_s . dk_s) (per head; per key row: the products unsummed), in
        # forward time: the terms from the forward-time tensors, then a reverse cumulative sum (over [B, T, L] only)

        def dot(a, b):
            if per_key:
                return a * b
            if a.dtype != b.dtype:  # a bf16 operand: the product upcast inside the multiply (fp32 out), summed over K
                return (a * b).reshape(B, T, H, K).sum(3)
            return torch.linalg.vecdot(a.reshape(B, T, H, K), b.reshape(B, T, H, K))
        prod_sub = per_key and rsum != "flip" and hasattr(torch, "addcmul")
        terms = fused_terms  # (ROWS_TERMS "kernel": written beside dk)
        if fused_sums is not None:  # (ROWS_TERMS "scan": the reverse sums themselves; no terms to form)
            terms = fused_sums
        if dk_raw:  # dk read where adjointT wrote it (reversed time: the c2 bit), then converted and reversed
            terms = decay_terms([(sv(qs["x_q%d" % i]), bars[r["q"]]) for i, r in enumerate(n["readouts"])],
                                [(sv(kv["x_k%d" % i]), full(dk_raw[i][0])) for i in range(len(n["pairs"]))], rev=8)
            for i, p in enumerate(n["pairs"]):
                raw, low = dk_raw[i]
                bars[p["k"]] = rev(raw.to(low)) if terms is not None else rev_out(raw)
        if decay_terms is not None and terms is None:  # the terms in one kernel where it applies
            terms = decay_terms([(sv(qs["x_q%d" % i]), bars[r["q"]]) for i, r in enumerate(n["readouts"])],
                                [(sv(kv["x_k%d" % i]), full(bars[p["k"]])) for i, p in enumerate(n["pairs"])])
        ops = terms is None  # else the torch ops: the readouts' terms, then the pairs' subtracted
        for i, r in enumerate(n["readouts"] if ops else ()):
            t = dot(sv(qs["x_q%d" % i]), bars[r["q"]])
            terms = t if terms is None else terms + t
        for i, p in enumerate(n["pairs"] if ops else ()):
            dk = full(bars[p["k"]])
            if prod_sub and sv(kv["x_k%d" % i]).dtype == dk.dtype:  # terms - k * dk in one pass (a bf16 k: as below)
                terms = torch.addcmul(terms, sv(kv["x_k%d" % i]), dk, value=-1)
            else:
                terms = terms - dot(sv(kv["x_k%d" % i]), dk)
        terms = terms.reshape(B, T, L)
        anchor = decay_anchor() if callable(decay_anchor) else (decay_anchor or DECAY_ANCHOR)
        if fused_sums is not None:  # (decided before the adjoint ran, with the anchors resolving to none)
            bars[n["ld"]] = fused_sums
        elif anchor == "chunk":  # the sums restarted every chunk from <G^, S> at its end (seqc_decay_adjoint.py)
            ex = (lambda x: x) if exact_low is None or DECAY_ANCHOR_GRAM != "lean" else (lambda x: _first(exact_low(x), x))
            bars[n["ld"]] = _anchored(terms, ld, [(ex(kv["x_k%d" % i]), ex(kv["x_v%d" % i])) for i in range(len(n["pairs"]))],
                                      [(ex(qs["x_q%d" % i]), ex(dys["x_dy%d" % i])) for i in range(len(n["readouts"]))],
                                      canon(S0, False), canon(dS, False), B, T, H, K, V, per_key, dtype, device, anchor_chunk or DECAY_ANCHOR_CHUNK,
                                      DECAY_ANCHOR_GRAM, rsum, anchor_products, GRAM_PRODUCTS, alpha=anchor_alpha(T, anchor_chunk or DECAY_ANCHOR_CHUNK), segment=ANCHOR_SEGMENT)
        else:
            bars[n["ld"]] = _reverse_sums(terms, B, T, L, REVERSE_CHUNK, rsum, dtype, device, after=start())
    elif n.get("ld"):
        # the reverse cumulative sum of q.dq - k.dk from a_T as the chain's decay scan
        d_in = {}
        for i in range(len(n["readouts"])):
            d_in["x_q%d" % i] = r_in["x_q%d" % i]
            d_in["x_dq%d" % i] = rev(tok(coret_out["o_dq%d" % i], H * K))
        for i in range(len(n["pairs"])):
            d_in["x_k%d" % i] = r_in["x_k%d" % i]
            d_in["x_dk%d" % i] = tok(adjt_out["o_dk%d" % i], H * K)
        dec = run("decay", {"H": H, "K": K}, d_in, {"a": start()}, B, T)[0]
        bars[n["ld"]] = rev(tok(dec["o_dld"], L))

    # dS_0 = D_1 G_1: the adjoint's final state through the first token's decay, back in the model's layout
    g1 = adj_fin["G"].reshape(B, H, K, V)
    if ld is not None:
        g1 = g1 * torch.exp(ld[:, 0].reshape(B, H, K, 1) if per_key else ld[:, 0].reshape(B, H, 1, 1))
    inv = [perm.index(a) for a in range(len(perm))]
    dS0 = torch.permute(g1.reshape([B] + [state_shape[a - 1] for a in perm[1:]]), inv)

    # prep's backward
    prep_in = given_in("prepBw")
    for o in n["prepOutputs"]:
        b = full(bars.get(o))
        prep_in[n["prepBw"]["outputBar"][o]] = b.reshape(prep[o].shape) if b is not None else torch.zeros(prep[o].shape, dtype=dtype, device=device)
    prep_g = pointwise("prepBw", prep_in)

    # the pieces' input adjoints added (a copy's backward: the output's adjoint is the input's), param adjoints summed
    post_p = post_g
    if summed:  # (REV_ADD "kernel": those inputs' pieces as one, the sum; their dv no copied piece)
        post_p = dict(post_g)
        for a, g in summed.items():
            post_p[n["postBw"]["inputBar"][a]] = g
    gin, gpar = sum_pieces([(post_p, n["postBw"]), (prep_g, n["prepBw"])], B, T, inputs, params,
                           lambda shape: torch.zeros(shape, dtype=dtype, device=device), [(bars.get(o), a) for o, a in aliases.items() if a not in summed], low=sum_low)
    return gin, gpar, dS0


def _first(a, b):
    return a if a is not None else b


def sum_pieces(pieces, B, T, inputs, params, zeros, copied=(), low=None):
    """The input adjoints of the pieces (prep's and post's backward) added, then those of copied: [(adjoint or None,
    input)]; param adjoints (per step) summed over batch and time. zeros(shape): where nothing reaches a gradient.
    low: a dtype (bf16) the last addition of an input's pieces writes its float32 sum in (the gradient as returned:
    GRAD_SUM "low"; the same rounding as converting the sum afterwards), or None (every sum float32)."""
    gin, gpar = {}, {}
    bf = getattr(torch, "bfloat16", None)
    for name, shape in inputs:
        g = None
        srcs = [src for src in [out.get(names["inputBar"].get(name)) for out, names in pieces] + [b for b, a in copied if a == name] if src is not None]
        for j, src in enumerate(srcs):
            src = src.reshape([B, T] + list(shape))
            if g is not None and bf is not None and g.dtype == bf and src.dtype == bf:
                g = g.float()  # two bf16 pieces (ADJOINT_OUT "low"): added in float32, as before
            if g is not None and low is not None and j == len(srcs) - 1:  # the last sum written in `low` directly
                g = torch.add(g, src, out=torch.empty(list(g.shape), dtype=low, device=g.device))
            else:
                g = src if g is None else g + src
        gin[name] = g if g is not None else zeros([B, T] + list(shape))
    for name, shape in params:
        g = None
        for out, names in pieces:
            src = out.get(names["paramBar"].get(name))
            if src is not None:
                src = src.reshape([B * T] + list(shape)).sum(0)
                g = src if g is None else g + src
        gpar[name] = g if g is not None else zeros(list(shape))
    return gin, gpar


# The stateless parts over [B*T, 1]: where the plan's pick (its 'thread' form) starts fewer threads than this (a
# step that reduces over its row runs one thread per row: GLA's / Mamba-2's postBw and Mamba-2's prepBw got 16384
# threads at B*T = 16384, each walking its row's thousands of values), the 'workgroup' form (a block per row, its
# threads over the row) runs instead. About the resident threads of a large GPU (H100: 132 SMs x 2048).
WIDE_THREADS = 1 << 18
STATELESS_WIDE = True


# Where a trial run is at hand (a CUDA device, not capturing a graph), each applicable form of a stateless part is
# timed once per (dims, B, T) (the best of two runs) and the fastest kept: which one wins depends on the model's thread
# layout (SimpleGLA's prep: thread 0.086 ms, workgroup 0.088; Mamba-2's prep backward without prep's copies: thread
# 2.06, workgroup 0.65; its post backward: thread 2.7, workgroup 0.47, on the H100 at B*T = 16384).
TUNE_STATELESS = True
# The bf16-input twins' warp-split forms ("<variant>-bf16in-wr", compiler/backends/torch/stateless-warp.ts: a row's sum
# over a warp's lanes, Mamba-2's prep and post backward) join the trial above; False leaves them out (the way before).
STATELESS_WARP = True
# The global forms' row-major twins ("<variant>-rm<M>", compiler/backends/torch/stateless-rows.ts: each phase's items
# walked row by row, 4 items a thread a pass, M = 1, 4, 16 times the rows a block; bitwise the forms they copy) join the
# trial above; False leaves them out (the way before). H200 run s15 1 (bench/RESULTS.md "Mamba-2's stateless parts row by
# row"), eager bf16 step at (8, 2048, 32, 64): Mamba-2 3.664 -> 3.503 ms (prep's backward 0.332 -> 0.179 ms, post's
# backward 0.217 -> 0.206), SimpleGLA (16 heads) 1.694 -> 1.606 (prep 0.082 -> 0.033, prep's backward 0.082 -> 0.037).
STATELESS_ROWS = True
# The row-major twins' vector twins ("<variant>-rv<M>", compiler/backends/torch/stateless-vec.ts: each thread 4
# consecutive elements of a row a chunk, the loads and stores indexed by the element as one float4 / bf16 quad where the
# sizes and the buffers' alignment allow, else the row-major twin's code; bitwise the twins they copy) and their fused
# twins ("<variant>-rf<M>": consecutive phases that share no buffer as one, without the barriers) join the trial
# above with STATELESS_ROWS; False leaves them out (the way before). H200 call E15 (bench/RESULTS.md "The stateless
# parts' vector twins"), bf16, the trial's pick's GPU ms (profile) without / with them: DeltaNet (4, 8192, 16, 128)
# prep 0.601 -> 0.248 (floor 0.160), prep's backward 0.574 -> 0.411 (floor 0.320); Gated DeltaNet the same; GLA
# (1, 32768, 8, 128) 0.061 -> 0.057 / 0.074 -> 0.069; gradients bitwise the same. With them the warp-fused twins of
# the warp splits ("<variant>-rw<M>", compiler/backends/torch/stateless-wfuse.ts: the elementwise phases run in the warp
# phase's walk of each row, its sums merged, so DeltaNet / Gated DeltaNet's prep backward reads kk2__bar and u0__bar
# once; bitwise the row-major twins; appended last; untimed: session 15's final call times the trial with them).
STATELESS_VEC = True
# What a stateless part runs while a CUDA graph is captured (no trial run is possible then): "tuned" (the default) the
# form the trial above picked for the same key where it has run (the graph's first, eager call runs it), else as "auto";
# "auto" (the way before) the plan's pick (the first applicable form: the thread form, or the workgroup form for a
# narrow one). H200 run s15 1, the bf16 step with CUDA graphs: Mamba-2 5.552 / 5.630 -> 3.751 / 3.919 ms (two rounds;
# mamba_ssm 5.502 as called), SimpleGLA 2.369 / 2.371 -> 2.332 / 2.245.
GRAPH_PICKS = "tuned"
# The trial's times, {(plan model, variant, B, T): ms} (read by bench/torch/mixed_bench.py).
TRIALS = {}


def stateless_switches():
    """The switches stateless_form reads (which forms the trial times, what runs without one, GRAPH_PICKS' pick in a
    capture), for the key of a captured backward graph (seqc_chunked's, seqc_chunked_lowrank's, seqc_chunked_stab's): a
    switch flipped between steps must not replay the kernels the old one picked."""
    return (STATELESS_WIDE, WIDE_THREADS, TUNE_STATELESS, STATELESS_WARP, STATELESS_ROWS, STATELESS_VEC, GRAPH_PICKS, ZERO_STORES, RUN_COPIES)


def unwritten_ok():
    """Whether forms that leave a part's zeros and copies unwritten may run (ZERO_STORES "skip", RUN_COPIES "input")."""
    if ZERO_STORES not in ("skip", "write"):
        raise ValueError("seqc_chunked: ZERO_STORES is %r; expected 'skip' or 'write'" % (ZERO_STORES,))
    return ZERO_STORES == "skip" and RUN_COPIES == "input"


def stateless_form(runner, dims, B, T, trial=None, io="f32", out_io=None, bars=False):
    """The form for a stateless part's run over [B, T] (time folded into the batch) among its `io` forms (out_io as in
    PlanRunner.applicable; "bf16" / "f32": the bf16-input twins, variants "<variant>-bf16in"). trial(variant) -> ms where
    a trial run is possible: the fastest applicable form (cached on the runner). Else "auto" (the plan's pick), or
    the 'workgroup' form where the pick is the 'thread' form with fewer than WIDE_THREADS threads (see above).
    bars: among the forms reading adjoints as bf16 too (bf16Bars, prep's backward's "-bf16bar" twins: the caller has
    them in bf16) only, the first applicable one without a trial; else those are left out."""
    if bars:
        return _bars_form(runner, dims, B, T, trial, io, out_io)
    if not STATELESS_WIDE:
        return "auto"
    sfx = "" if io == "f32" else "-bf16in"
    if GRAPH_PICKS not in ("tuned", "auto"):
        raise ValueError("seqc_chunked: GRAPH_PICKS is %r; expected 'tuned' or 'auto'" % (GRAPH_PICKS,))
    key = ("tuned", tuple(sorted(dims.items())), B, T, io, out_io, STATELESS_WARP, unwritten_ok(), STATELESS_ROWS, STATELESS_VEC)
    if trial is not None and TUNE_STATELESS:
        hit = runner._picks.get(key)
        if hit is None:
            times = {}
            for f, _ in runner.applicable(dims, B, T, "auto", io, out_io):
                if f.get("bf16Bars"):  # (only where asked for: stateless_form's bars)
                    continue
                if not STATELESS_WARP and "-wr" in f["variant"]:
                    continue
                if not STATELESS_ROWS and "-rm" in f["variant"]:
                    continue
                if not (STATELESS_ROWS and STATELESS_VEC) and any(x in f["variant"] for x in ("-rv", "-rf", "-rw")):
                    continue
                if f.get("unwritten") and not unwritten_ok():
                    continue
                try:
                    times[f["variant"]] = trial(f["variant"])
                except _cuda.CudaError:
                    pass
                else:
                    TRIALS[(runner.plan["model"], f["variant"], B, T)] = times[f["variant"]]
            hit = runner._picks[key] = min(times, key=times.get) if times else "auto"
        return hit
    if trial is None and TUNE_STATELESS and GRAPH_PICKS == "tuned" and runner._picks.get(key) is not None:
        return runner._picks[key]
    f, env = runner.pick(dims, B, T, "auto", io, out_io)
    if f["variant"] != "thread" + sfx:
        return "auto"
    n = max([_cuda.eval_size(st["grid"], env) * _cuda.eval_size(st["threads"], env) for st in f["steps"] if st["kind"] == "launch"] or [0])
    if n >= WIDE_THREADS or not runner.applicable(dims, B, T, "workgroup" + sfx):
        return "auto"
    return "workgroup" + sfx


def _bars_form(runner, dims, B, T, trial, io, out_io):
    """stateless_form with bars: the fastest of the applicable bf16Bars forms where a trial is possible (TUNE_STATELESS),
    else the one the trial picked for the key (GRAPH_PICKS "tuned"), else the first applicable one; None: none applies."""
    key = ("tuned-bars", tuple(sorted(dims.items())), B, T, io, out_io, STATELESS_WARP, unwritten_ok(), STATELESS_ROWS, STATELESS_VEC)
    fs = [f for f, _ in runner.applicable(dims, B, T, "auto", io, out_io) if f.get("bf16Bars") and (STATELESS_WARP or "-wr" not in f["variant"])
          and (STATELESS_ROWS or "-rm" not in f["variant"]) and (STATELESS_ROWS and STATELESS_VEC or not any(x in f["variant"] for x in ("-rv", "-rf", "-rw")))
          and (not f.get("unwritten") or unwritten_ok())]
    if not fs:
        return None
    if trial is not None and TUNE_STATELESS and runner._picks.get(key) is None:
        times = {}
        for f in fs:
            try:
                times[f["variant"]] = trial(f["variant"])
            except _cuda.CudaError:
                pass
            else:
                TRIALS[(runner.plan["model"], f["variant"], B, T)] = times[f["variant"]]
        runner._picks[key] = min(times, key=times.get) if times else fs[0]["variant"]
    if TUNE_STATELESS and (trial is not None or GRAPH_PICKS == "tuned") and runner._picks.get(key) is not None:
        return runner._picks[key]
    return fs[0]["variant"]


class _Converted:
    """{name: tensor} read as {name: tensor in dtype}, each converted on first read (then kept): the float32 copies of
    bf16 inputs and cotangents made only where the glue reads them (STATELESS_IO "bf16"); low(name): the tensor as
    given (bf16), or None. after(converted, given) runs once per conversion (backward_eager's seed); eager: every
    tensor converted now (not STATELESS_IO "bf16": the glue and the float32 forms read them all)."""

    def __init__(self, src, dtype, after=None, eager=False):
        self.src, self.dtype, self.after, self.done = src, dtype, after, {}
        if eager:
            for k in src:
                self[k]

    def __contains__(self, k):
        return k in self.src

    def keys(self):
        return self.src.keys()

    def __getitem__(self, k):
        if k not in self.done:
            x = self.src[k]
            v = x.to(self.dtype) if x is not None else None
            if v is not None and self.after is not None:
                self.after(v, x)
            self.done[k] = v
        return self.done[k]

    def get(self, k, default=None):
        v = self[k] if k in self.src else None
        return default if v is None else v

    def low(self, k):
        x = self.src.get(k)
        return x if x is not None and x.dtype == torch.bfloat16 else None


def use_chunked(m, dims, B, T, dtype, device):
    """Whether a forward with gradients at these sizes runs for the chunked backward: m.backward "chunked", or
    "auto" where the module has the chain and the float32 forward itself picks its chunked form for (B, T)."""
    if m.chunked is None or m.backward == "step":
        return False
    if m.backward == "chunked":
        return True
    r = m.runner("forward", device)
    if dtype == torch.bfloat16 and r.has_io("bf16"):  # bf16 forms are chunked forms: chunked where one applies
        return r.can_run(dims, B, T, "auto", "bf16")
    return dtype in (torch.float32, torch.bfloat16) and r.pick(dims, B, T, "auto")[0]["form"] == "chunked"


# The chain's parts that run the chunked form (bf16 variants for bf16 tensors where the plan has them); the
# decay adjoint's scan, prep's and post's parts and the glue stay float32 (cumulative sums of log decays, the
# decay adjoint's <dS, S> and its reverse sums need fp32's range and precision).
CORE_PARTS = ("core", "coreT", "adjoint", "adjointT")
# Which cores bf16 tensors run in bf16 where the model has a log decay: the transposed cores' dq and dk feed the
# decay adjoint, whose q.dq - k.dk sums cancel (their bf16 rounding, 2^-9 relative, came out as 1.0-1.6e-2 of the
# scalar decays' gradients at T = 37 on the interpreter; test/torch-bf16.test.ts), so by default they stay fp32.
BF16_DECAY_PARTS = ("core", "adjoint")
# How bf16 tensors run the transposed cores (coreT's dq, adjointT's dk) where the model has a scalar log decay: "mixed"
# (the default) the chunked form's mixed-I/O variants (bf16 inputs, fp32 accumulation, fp32 outputs: runtime/cuda/plan.ts
# CudaFormPlan.out; compiler/backends/torch/chain-plans.ts emits them), dq and dk reaching the decay adjoint in fp32
# without conversions, the decay adjoint then anchored every DECAY_ANCHOR_CHUNK tokens (DECAY_ANCHOR "mixed"); "f32"
# the fp32 kernels on fp32 copies of the inputs. The cores' bf16 operands perturb dq and dk at 2^-9 relative, and the
# decay adjoint's sums q.dq - k.dk over the whole sequence cancel: at B=2 T=2048 the decays' gradients came out 1.6e-2
# (SimpleGLA dg) and 4.5e-2 (Mamba-2 dA) off float64 unanchored, 4.0e-3 and 2.3e-3 anchored (f32: 2.3e-3, 6.4e-4). On the
# H100 at B=8 T=2048 H=16 K=V=64 the bf16 step with graphs: SimpleGLA f32 3.83 ms, mixed unanchored 3.30, mixed anchored
# 3.74; Mamba-2 10.25 / 8.70 / 10.18 (bench/RESULTS.md, "The decay adjoint anchored at chunk boundaries"): the anchors
# cost most of what the mixed cores save.
TRANSPOSED_IO = "mixed"
TRANSPOSED_PARTS = ("coreT", "adjointT")


def backward(ctx, m, flat, grads):
    """The body of a seqc Function's backward through the chain (ctx from seqc_torch.forward with ctx.chunked; flat: the saved
    (*inputs, *params, *initial states), None where absent): gradients as seqc_torch.backward returns them.

    On CUDA the chain's whole launch sequence runs as a CUDA graph per signature (seqc_graphs.graphed: captured on a
    signature's second call, replayed after; m.graphs False or SEQC_TORCH_GRAPHS=0: eagerly every call)."""
    switches = (PER_KEY_TRANSPOSED, ROWS_TILE, ROWS_SEGMENT, ROWS_IO, ROWS_FORM, ROWS_CHUNK_WARPS, ROWS_CHUNK_PIPE, PREP_IO, PART_INPUTS, STATELESS_WIDE, STATELESS_WARP, BF16_DECAY_PARTS, DECAY_WAY, TRANSPOSED_IO, DECAY_ANCHOR, DECAY_ANCHOR_CHUNK, DECAY_ANCHOR_GRAM, ANCHOR_CHUNKS, ANCHOR_VEC, DECAY_TERMS, GRAD_SUM, GRAM_PRODUCTS, REVERSE_SUM, REVERSE_CHUNK, REVERSE_GLUE, GLUE_COPIES, STATELESS_IO, ALIAS_IO, FLIP_VIEW, IDLE_INPUTS, ADJOINT_OUT, RUN_COPIES, CORE_RERUN, ZERO_STORES)
    switches += (STATELESS_ROWS, STATELESS_VEC, GRAPH_PICKS, REVERSED_READS, ROWS_REVERSED, ROWS_TERMS, ROWS_CHUNK_WIDE, ROWS_CHUNK_SEGMENTS, ROWS_SEG_STATES)
    switches += (ANCHOR_ALPHA, ANCHOR_SEGMENT, ANCHOR_AUTO_CHUNKS)
    switches += (REV_ADD,)
    switches += (STATELESS_OUT,)
    switches += stateless_switches()
    return _graphs.graphed_backward(ctx, m, "chunked-backward", switches, flat, grads, lambda f, g, S_N: backward_eager(ctx, m, f, g, convert=False, S_N=S_N),
                                    extra=[getattr(ctx, "chain_SN", None)])


def backward_eager(ctx, m, flat, grads, convert=True, S_N=None):
    """backward without a graph; convert=False leaves the gradients in the compute dtype (float32 for bf16 tensors).
    S_N: the forward's final matrix state in the compute dtype (seqc_torch.forward keeps it as ctx.chain_SN), or None."""
    B, T, dims, dtype, device = ctx.B, ctx.T, ctx.dims, ctx.dtype, ctx.device
    n = m.chunked["names"]
    ni, npar = len(m.inputs), len(m.params)
    # (bf16 inputs converted once, where read: with STATELESS_IO "bf16" prep and the backward models of prep and post read
    # them as they are)
    lazy = STATELESS_IO == "bf16" and getattr(ctx, "given_dtype", dtype) == torch.bfloat16 and dtype == torch.float32
    if STATELESS_IO not in ("bf16", "f32") or ALIAS_IO not in ("bf16", "f32"):
        raise ValueError("seqc_chunked: STATELESS_IO is %r, ALIAS_IO %r; expected 'bf16' or 'f32'" % (STATELESS_IO, ALIAS_IO))
    given_src = {t["name"]: x.detach() for t, x in zip(m.inputs, flat[:ni]) if x is not None}
    pars = {t["name"]: x.detach() for t, x in zip(m.params, flat[ni : ni + npar]) if x is not None}
    sts = {t["name"]: x.detach() for t, x in zip(m.states, flat[ni + npar :]) if x is not None}
    prefix = "chain64:" if dtype == torch.float64 else "chain:"
    given_dtype = getattr(ctx, "given_dtype", dtype)
    # bf16 copies of the cores' inputs by (address, size) of the float32 tensor, each kept alive with its copy (core and
    # coreT share q, k, v; adjoint and adjointT their reversals; views of one tensor share its copy)
    low = {}
    exact = set()  # the keys of low whose float32 tensor is the bf16 one's exact value (seeded)
    copies = GLUE_COPIES
    if copies not in ("lean", "old"):
        raise ValueError("seqc_chunked: GLUE_COPIES is %r; expected 'lean' or 'old'" % (copies,))

    def seed(x32, x):  # x32 = x (bf16) in float32: a core that reads x32 in bf16 reads x itself (no conversion)
        if x is not None and x.dtype == torch.bfloat16 and x32.is_contiguous():
            low[(x32.data_ptr(), x32.numel())] = (x32, x.contiguous().reshape(-1))
            exact.add((x32.data_ptr(), x32.numel()))

    def exact_low(v):  # the bf16 tensor v holds exactly (a seeded input or cotangent, as v's view), or None
        if not v.is_contiguous() or (v.data_ptr(), v.numel()) not in exact:
            return None
        return low[(v.data_ptr(), v.numel())][1].view(v.shape)

    def bf16_of(v):
        if not v.is_contiguous():
            return v.to(torch.bfloat16)
        key = (v.data_ptr(), v.numel())
        hit = low.get(key)
        if hit is None:
            hit = low[key] = (v, v.to(torch.bfloat16).reshape(-1))
        return hit[1].view(v.shape)
    # (prep's copies and the cotangents post's backward copies reach the cores as is: seeded when converted)
    given = _Converted(given_src, dtype, seed, eager=not lazy)

    lows = {}

    def low_in(part):  # the inputs stateless part `part` reads in bf16 (its bf16-input form applies), or None
        if part not in lows:
            r = None
            if lazy and part in ("prep", "postBw", "prepBw") and prefix + part in m.meta["plans"]:
                run_ = m.runner(prefix + part, device)
                if run_.can_run(dims, B * T, 1, "auto", "bf16", "f32"):
                    r = set(run_.pick(dims, B * T, 1, "auto", "bf16", "f32")[0].get("bf16Inputs") or ()) or None
            if r and part == "prep" and PREP_IO == "timed" and not prep_twin(r):
                r = None
            lows[part] = r
        return lows[part]

    def best_ms(f):  # f's time (CUDA events, the best of two runs)
        best = None
        for _ in range(2):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ev[0].record()
            f()
            ev[1].record()
            ev[1].synchronize()
            ms = ev[0].elapsed_time(ev[1])
            best = ms if best is None else min(best, ms)
        return best

    def prep_twin(names):  # PREP_IO "timed": whether prep's bf16-input twin (reading `names` in bf16) beats its float32 form
        if prep_io is not None:
            return prep_io
        if device.type != "cuda" or torch.cuda.is_current_stream_capturing():
            return True
        key = prefix + "prep"
        runner = m.runner(key, device)
        pick = ("prep-io", tuple(sorted(dims.items())), B, T, tuple(sorted(names)))
        if pick not in runner._picks:
            def fold(v):
                return v.reshape([B * T, 1] + list(v.shape[2:]))
            reads = part_reads("prep") if PART_INPUTS == "read" else None
            keys = [k for k in given.keys() if given.src.get(k) is not None and (reads is None or k in reads)]
            low_ins = {k: fold(given.low(k) if k in names else given[k]) for k in keys}

            def f32_ins():  # the float32 copies the float32 form reads (made in the timed run, as they would be)
                return {k: fold(given.low(k).to(dtype) if k in names else given[k]) for k in keys}

            def form(io, ins):
                st = {"io": "bf16", "out_io": "f32"} if io == "bf16" else {}
                return stateless_form(runner, dims, B * T, 1, lambda v: best_ms(lambda: m.execute(key, dims, B * T, 1, ins(), pars, {}, dtype, device, v, **st)), **st)
            fb, ff = form("bf16", lambda: low_ins), form("f32", f32_ins)
            tb = best_ms(lambda: m.execute(key, dims, B * T, 1, low_ins, pars, {}, dtype, device, fb, io="bf16", out_io="f32"))
            tf = best_ms(lambda: m.execute(key, dims, B * T, 1, f32_ins(), pars, {}, dtype, device, ff))
            TRIALS[(runner.plan["model"], "prep-io bf16 %s / f32 %s (with its copies)" % (fb, ff), B, T)] = (tb, tf)
            runner._picks[pick] = tb <= tf
        return runner._picks[pick]
    prep_io = None if PREP_IO == "timed" else True
    if PREP_IO not in ("timed", "bf16"):
        raise ValueError("seqc_chunked: PREP_IO is %r; expected 'timed' or 'bf16'" % (PREP_IO,))

    reads = {}

    def reads_bf16(part):  # whether core `part` runs on bf16 inputs here (run's choice below, without running it)
        if part not in reads:
            key, r = prefix + part, False
            if given_dtype == torch.bfloat16 and part in (BF16_DECAY_PARTS if n.get("ld") else CORE_PARTS):
                r = bf16_io(m, key, cd, B, T, device) == "bf16"
            elif given_dtype == torch.bfloat16 and n.get("ld") and part in TRANSPOSED_PARTS and TRANSPOSED_IO == "mixed" and dtype == torch.float32:
                r = m.runner(key, device).can_run(cd, B, T, "auto", "bf16", "f32")
            reads[part] = r
        return reads[part]

    def rev_low(x, parts):  # x reversed from its bf16 copy, where every core in parts reads bf16
        if not all(reads_bf16(p) for p in parts):
            return None
        return flip_time(bf16_of(x))

    def out_low(part, b, t):  # STATELESS_OUT: stateless part `part` runs its "-bf16out" twins (bf16Outputs written as bf16)
        if STATELESS_OUT == "f32" or part not in ("prep", "prepBw") or (part == "prep" and STATELESS_OUT != "bf16"):
            return False
        if part == "prep" and (n.get("decay") == "key" or not all(reads_bf16(p) for p in (BF16_DECAY_PARTS + TRANSPOSED_PARTS if n.get("ld") else CORE_PARTS))):
            return False  # (a core reading them in float32 would read the rounded values)
        r = m.runner(prefix + part, device)
        return r.can_run(dims, b, t, "auto", "bf16", "bf16") and set(r.pick(dims, b, t, "auto", "bf16", "bf16")[0].get("bf16Inputs") or ()) == set(low_in(part) or ())

    def run(part, cdims, inputs, initial, b, t, low_out=False):
        key = prefix + part
        form = "auto"
        st_io = {"io": "bf16", "out_io": "f32"} if cdims is None and low_in(part) else {}
        if st_io and dtype == torch.float32 and out_low(part, b, t):
            st_io = {"io": "bf16", "out_io": "bf16"}
        if cdims is None and dtype == torch.float32:
            trial = None
            if device.type == "cuda" and not torch.cuda.is_current_stream_capturing():
                def trial(v):
                    best = None
                    for _ in range(2):
                        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                        ev[0].record()
                        m.execute(key, dims, b, t, inputs, pars, initial, dtype, device, v, **st_io)
                        ev[1].record()
                        ev[1].synchronize()
                        ms = ev[0].elapsed_time(ev[1])
                        best = ms if best is None else min(best, ms)
                    return best
            form = stateless_form(m.runner(key, device), dims, b, t, trial, **st_io)
        io, out_io = "f32", None
        if given_dtype == torch.bfloat16 and part in (BF16_DECAY_PARTS if n.get("ld") else CORE_PARTS):
            io = bf16_io(m, key, cdims, b, t, device)
        elif given_dtype == torch.bfloat16 and n.get("ld") and part in TRANSPOSED_PARTS and TRANSPOSED_IO == "mixed" and dtype == torch.float32:
            # bf16 in, fp32 out where the plan has the mixed variants and one applies
            if m.runner(key, device).can_run(cdims, b, t, "auto", "bf16", "f32"):
                io, out_io = "bf16", "f32"
                mixed.append(part)
        if io == "bf16":
            conv = {}
            for k, v in inputs.items():
                conv[k] = bf16_of(v) if v is not None and v.dtype != torch.bfloat16 else v
            inputs = conv
        kw = st_io if io == "f32" else {"io": io} if out_io is None else {"io": io, "out_io": out_io}
        outs, final, _ = m.execute(key, cdims or dims, b, t, inputs, pars if cdims is None else {}, initial, dtype, device, form, **kw)
        if (out_io or io) != "f32" and not low_out:
            outs = {k: v.to(dtype) for k, v in outs.items()}
        return outs, final

    def shape(t):
        return [_cuda.eval_size(s, dims) for s in t["shape"]]

    mixed = []  # the transposed cores that ran with bf16 inputs (fp32 outputs)

    def seen(x):  # q or k as those cores read them (the same bf16 copy), for the decay adjoint's terms
        if not mixed:
            return x
        if copies == "lean":  # x itself where it holds its bf16 copy's values, else that copy (the upcast in the product)
            return x if exact_low(x) is not None else bf16_of(x)
        return bf16_of(x).to(dtype)

    def part_reads(part):  # the forward's inputs part's plan binds (where the part has no plan, it does not run:
        plan = m.meta["plans"].get(prefix + part)  # none with IDLE_INPUTS "none", else None: all)
        if plan is None:
            return set() if IDLE_INPUTS == "none" else None
        return {t["name"] for t in plan["tensors"] if t.get("role") == "input"}
    if PART_INPUTS not in ("read", "all"):
        raise ValueError("seqc_chunked: PART_INPUTS is %r; expected 'read' or 'all'" % (PART_INPUTS,))
    if IDLE_INPUTS not in ("none", "all"):
        raise ValueError("seqc_chunked: IDLE_INPUTS is %r; expected 'none' or 'all'" % (IDLE_INPUTS,))
    if ADJOINT_OUT not in ("low", "f32"):
        raise ValueError("seqc_chunked: ADJOINT_OUT is %r; expected 'low' or 'f32'" % (ADJOINT_OUT,))
    if RUN_COPIES not in ("input", "plan"):
        raise ValueError("seqc_chunked: RUN_COPIES is %r; expected 'input' or 'plan'" % (RUN_COPIES,))
    if ANCHOR_ALPHA not in ("gram", "segments", "auto"):
        raise ValueError("seqc_chunked: ANCHOR_ALPHA is %r; expected 'gram', 'segments' or 'auto'" % (ANCHOR_ALPHA,))
    if GRAM_PRODUCTS not in ("four", "two", "groups"):
        raise ValueError("seqc_chunked: GRAM_PRODUCTS is %r; expected 'four', 'two' or 'groups'" % (GRAM_PRODUCTS,))
    if GRAD_SUM not in ("low", "f32"):
        raise ValueError("seqc_chunked: GRAD_SUM is %r; expected 'low' or 'f32'" % (GRAD_SUM,))
    if REV_ADD not in ("flip", "kernel"):
        raise ValueError("seqc_chunked: REV_ADD is %r; expected 'flip' or 'kernel'" % (REV_ADD,))
    if STATELESS_OUT not in ("f32", "grads", "bf16"):
        raise ValueError("seqc_chunked: STATELESS_OUT is %r; expected 'f32', 'grads' or 'bf16'" % (STATELESS_OUT,))
    if ANCHOR_VEC not in ("plain", "v4", "r8"):
        raise ValueError("seqc_chunked: ANCHOR_VEC is %r; expected 'plain', 'v4' or 'r8'" % (ANCHOR_VEC,))
    if DECAY_TERMS not in ("kernel", "torch"):
        raise ValueError("seqc_chunked: DECAY_TERMS is %r; expected 'kernel' or 'torch'" % (DECAY_TERMS,))
    if ANCHOR_CHUNKS not in ("kernel", "copies"):
        raise ValueError("seqc_chunked: ANCHOR_CHUNKS is %r; expected 'kernel' or 'copies'" % (ANCHOR_CHUNKS,))
    if ROWS_FORM not in ("chunk", "walk"):
        raise ValueError("seqc_chunked: ROWS_FORM is %r; expected 'chunk' or 'walk'" % (ROWS_FORM,))
    if ROWS_TERMS not in ("kernel", "apart", "scan"):
        raise ValueError("seqc_chunked: ROWS_TERMS is %r; expected 'kernel', 'apart' or 'scan'" % (ROWS_TERMS,))
    if ROWS_REVERSED not in ("kernel", "flip"):
        raise ValueError("seqc_chunked: ROWS_REVERSED is %r; expected 'kernel' or 'flip'" % (ROWS_REVERSED,))
    if REVERSED_READS not in ("terms", "flip"):
        raise ValueError("seqc_chunked: REVERSED_READS is %r; expected 'terms' or 'flip'" % (REVERSED_READS,))
    if CORE_RERUN not in ("bound", "post"):
        raise ValueError("seqc_chunked: CORE_RERUN is %r; expected 'bound' or 'post'" % (CORE_RERUN,))

    def binds(part):  # the inputs some form of part's plan binds (None: no plan, or a form that is not launches alone)
        plan = m.meta["plans"].get(prefix + part)
        if plan is None or any(f.get("module") or any(st.get("kind") != "launch" for st in f["steps"]) for f in plan["forms"]):
            return None
        return {b["name"] for f in plan["forms"] for st in f["steps"] for b in st.get("buffers", []) if b.get("kind") == "input"}

    state = next(s for s in m.states if s["name"] == n["state"])
    no = len(m.outputs)
    cot_out = _Converted({t["name"]: g for t, g in zip(m.outputs, grads[:no])}, dtype, lambda v, g: seed(v, g) if g.is_contiguous() else None, eager=not lazy)
    cot_state = None
    for s, g in zip(m.states, grads[no:]):
        if s["name"] == n["state"] and g is not None:
            cot_state = g.to(dtype)
    km = module_kernels(m, device, "rowsReadout") if dtype == torch.float32 and n.get("decay") == "key" else None
    kc = module_kernels(m, device, "rowsChunk") if km is not None and ROWS_FORM == "chunk" else None
    ks = module_kernels(m, device, "rowsSegStates") if kc is not None and ROWS_SEG_STATES == "cuda" else None
    ak = module_kernels(m, device, "anchorChunks") if dtype == torch.float32 and ANCHOR_CHUNKS == "kernel" else None
    tk = module_kernels(m, device, "decayTerms") if dtype == torch.float32 and DECAY_TERMS == "kernel" else None
    ra = module_kernels(m, device, "revAdd") if REV_ADD == "kernel" else None
    cd = chain_dims(n, shape(state))

    def rows(ld, pairs, readouts, S0):
        return rows_readout_kernel(km, ld, pairs, readouts, S0, B, T, cd["H"], cd["K"], cd["V"], kc=kc, ks=ks)

    def rows_rev(ld, pairs, readouts, S0, rev, terms=None, scan=None):  # ROWS_REVERSED "kernel": the chunked form reading reversed time, or None
        return rows_readout_kernel(km, ld, pairs, readouts, S0, B, T, cd["H"], cd["K"], cd["V"], kc=kc, rev=rev, terms=terms, ks=ks, **({"scan": scan} if scan is not None else {}))
    # a per-key decay's transposed cores on the rows readout kernel reading bf16 operands (ROWS_IO "bf16"): then prep's and
    # post's backward's copies may stay bf16 (low_alias) where the forward and adjoint cores read bf16
    rows_low = km is not None and ROWS_IO == "bf16" and PER_KEY_TRANSPOSED == "kernel" and any(k.get("low") for k in km.kernels)
    alias_parts = ("core", "adjoint") if rows_low else CORE_PARTS
    gin, gpar, dS0 = chain_backward(
        n, run, B, T, shape(state), given, sts.get(n["state"]), cot_out, cot_state,
        [(t["name"], shape(t)) for t in m.inputs if t["name"] in given], [(t["name"], shape(t)) for t in m.params], [(t["name"], shape(t)) for t in m.outputs], dtype, device,
        S_N=S_N, seen=seen, rows=rows if km is not None else None, rev_low=rev_low if dtype == torch.float32 else None,
        low_out=copies == "lean", exact_low=exact_low if copies == "lean" and given_dtype == torch.bfloat16 else None,
        decay_anchor=lambda: ("chunk" if mixed else "none") if DECAY_ANCHOR == "mixed" else DECAY_ANCHOR, low_in=low_in if lazy else None,
        low_alias=lazy and ALIAS_IO == "bf16" and copies == "lean" and (n.get("decay") != "key" or rows_low) and all(reads_bf16(p) for p in alias_parts),
        part_reads=part_reads if PART_INPUTS == "read" else None, low_bars=ADJOINT_OUT == "low", run_copies=RUN_COPIES == "input",
        post_binds=binds("postBw") if CORE_RERUN == "bound" else None,
        anchor_products=(lambda xs, w, kg=None: anchor_chunks_kernel(ak, xs, w, kg)) if ak is not None else None,
        sum_low=torch.bfloat16 if GRAD_SUM == "low" and given_dtype == torch.bfloat16 and dtype == torch.float32 else None,
        drop_zeros=ZERO_STORES == "skip",
        rev_add=(lambda a, c, od: rev_add_kernel(ra, a, c, B, T, od)) if ra is not None else None,
        decay_terms=(lambda plus, minus, rev=0: decay_terms_kernel(tk, plus, minus, B, T, cd["H"], cd["K"], n.get("decay") == "key", rev)) if tk is not None else None,
        terms_rev=REVERSED_READS == "terms", rows_rev=rows_rev if km is not None and kc is not None and ROWS_REVERSED == "kernel" else None,
        low_reads=lambda parts: all(reads_bf16(p) for p in parts), rows_terms=ROWS_TERMS in ("kernel", "scan"), rows_scan=ROWS_TERMS == "scan")
    need = ctx.need
    res = []
    for i, t in enumerate(m.inputs):
        res.append(gin[t["name"]] if need[i] and flat[i] is not None else None)
    for j, t in enumerate(m.params):
        i = ni + j
        res.append(gpar[t["name"]].to(flat[i].dtype) if need[i] and flat[i] is not None else None)
    for j, s in enumerate(m.states):
        i = ni + npar + j
        res.append(dS0.contiguous() if need[i] and flat[i] is not None else None)
    given_n = len(ctx.needs_input_grad) - ctx.offset
    res = res[:given_n]
    if convert and given_dtype != dtype:  # bf16 tensors: gradients computed in float32, returned in each tensor's dtype
        res = [g.to(x.dtype) if g is not None else None for g, x in zip(res, flat)]
    return tuple(res)


def bf16_io(m, key, dims, B, T, device):
    """"bf16" where plan `key` has a bf16 form that runs (dims, B, T) (the chunked form's tensor-core variants, fp32
    accumulation), else "f32" (bf16 tensors then run the fp32 kernels, converted on the way in and out)."""
    return "bf16" if m.runner(key, device).can_run(dims, B, T, "auto", "bf16") else "f32"
