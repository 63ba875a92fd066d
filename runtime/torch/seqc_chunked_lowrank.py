"""The low-rank chunked backward's glue in torch ops (part of seqc's torch target; copied next to the generated modules).

runtime/chunked-backward-lowrank.ts (lowRankChainBackward) on the device, for the delta-rule family (DeltaNet, Gated
DeltaNet, Gated DeltaProduct, RWKV-7): the chain of compiler/grad/chunked-chain-lowrank.ts runs as CUDA plans
(`chain:<part>` in <Model>.torch.json, names under "chunked"."lowRank"), and what ties them together is torch ops on
the same stream, batched over every token instead of the host loops:
  timeline  the core's micro-steps (N per token) behind one identity step: line tensors [B, H, Lp, w] (LR_LAYOUT
            "heads"; "tokens": [B, Lp, H, w]; Lp = the timeline's L = T N + 1 steps padded to whole chunks of C),
            filled from prep's outputs by strided slices;
  aug       the chunk transitions [A | B] of every chunk at once (chunked form, time folded into the batch:
            [B, Lp] is [B nC, C] in memory), from [I | 0] with value vectors [0; v] (LR_AUG "matmul": ChunkCore's
            end state instead; LR_FUSED "cuda": its solve and end state as one fused kernel per chunk,
            compiler/backends/cuda/lowrank-core.ts);
  pass      S_{c+1} = A_c S_c + B_c over the chunks (the chunk start states);
  read      per chunk from its start state: the low-rank reads r = S_{s-1}^T w and the readouts y;
  adjoint   the same on the reversed timeline (torch.flip; "heads": padded at its front, one flip of a line), with the next step's decay and the swapped low-rank
            pair: dv, the adjoint's low-rank reads a, dk, du; then fwd (dq, dw) from the forward's chunk states
            (LR_READ "matmul", the default: read, adjoint and fwd as ChunkCore's matrix products over every chunk at
            once; "plan": the sequential kernels over B x chunks rows);
  decay     the log decays' adjoint, a reverse cumulative sum from <dS_N, S_N>;
and the pieces mapped back onto prep's outputs (strided slices of the timeline), prep's backward, the sums.
Nothing goes through host memory.
"""

import inspect

import torch

try:
    from . import seqc_chunked as _chunked
    from . import seqc_graphs as _graphs
    from . import seqc_lowrank_wy as _wy
    from . import seqc_delta_bwd as _delta
except ImportError:  # loaded as a top-level module (the output directory on sys.path)
    import seqc_chunked as _chunked
    import seqc_graphs as _graphs
    import seqc_lowrank_wy as _wy
    import seqc_delta_bwd as _delta

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
# How the per-chunk readouts (read, adjoint, fwd) run: "matmul" (every chunk at once as matrix products from its start
# state: ChunkCore below, the low-rank reads by a triangular solve) or "plan" (chain:read / chain:adjoint /
# chain:fwd, the sequential kernels over B x chunks rows of C micro-steps).
LR_READ = "matmul"
# How the chunk transitions [A | B] are formed: "plan" (chain:augF / chain:augA, the chunked form), "matmul" (the end
# state of ChunkCore from [I | 0]) or "auto": "plan" for a per-key decay in LR_KEY "blocks" where its chunked form
# runs, else "matmul". On the H100 at B=8 T=2048 H=16 K=V=64 (bench/RESULTS.md) the products took DeltaNet 29.7 ->
# 23.3 ms, Gated DeltaNet 60.7 -> 47.6; RWKV-7 (per-key) 75.5 -> 81.5 with the sub-blocks, but 50.8 -> 45.7 with the
# halves (whose low-rank solve the products share); at K=V=128 RWKV-7's chunked form does not fit (its plan runs
# sequentially, 2.1 s each).
LR_AUG = "auto"
# The timeline's layout: "heads" (lines [B, H, Lp, w]: every (head, chunk) is a row of ChunkCore as a view, the
# reversed timeline padded at its front so that a reversal is one torch.flip of a line; the plans' folded runs get
# permuted copies) or "tokens" (lines [B, Lp, H, w], the plans' layout; ChunkCore's rows by a permuted copy per line
# and back, the reversal padded at its end). On the H100 at B=8 T=2048 H=16 K=V=64 (bench/RESULTS.md, "head-major
# timeline"; trsm): DeltaNet tokens 22.89 ms -> heads 19.93 (no sharing), 19.97 -> 17.56 (sharing); Gated DeltaNet
# 47.44 -> 42.28, 40.96 -> 36.46.
LR_LAYOUT = "heads"
# Whether the per-chunk readouts reuse the chunk transitions' ChunkCore (LR_AUG "matmul"): its keys, decays and cached
# ratios, and the low-rank reads by linearity from its [I | 0] start, r = r_I S_start + r_0 (one batched product
# instead of the scores and the triangular solve again). Measured with LR_LAYOUT above (DeltaNet heads 19.93 -> 17.56 ms).
LR_SHARE = True
# Whether the backward runs as a CUDA graph per signature (backward below; eager while LR_TIMES is set).
LR_GRAPHS = True
# A list to time the backward's sections in (bench/torch/lowrank_bench.py): (section, start event, end event) per
# section of each backward, CUDA events on the current stream; None: not timed.
LR_TIMES = None
# The operands of ChunkCore's large batched products (the scores, the readouts' and transitions' products with the
# events and the start states): "fp32" (the compute dtype: float32 for bf16 tensors too), "auto" (bf16 where the
# chain's tensors are bf16, else the compute dtype) or "bf16" (bf16 operands for fp32 tensors too; tests and benches).
# bf16 operands are products with fp32 accumulation and fp32 results (tensor cores: torch.bmm's out_dtype on CUDA; on
# CPU the operands rounded to bf16, then fp32 products); the triangular solve, the decay ratios, the states and the
# chunk pass stay in fp32, as fla's chunk kernels do. float64 never rounds. No TF32 anywhere. On the H100 at B=8 T=2048
# H=16 K=V=64 with bf16 tensors (bench/RESULTS.md, "bf16 operands"), bf16 operands were no faster (DeltaNet 15.82 ->
# 16.07 ms, Gated DeltaNet 33.24 -> 33.43, RWKV-7 33.32 -> 33.76: the casts cost what the tensor cores saved, the
# solve's and the pass's fp32 products remain) and the log decays' gradients at B=2 T=2048 went from 1.7e-3 to 1.7e-2
# (Gated DeltaNet dg) and 1.3e-2 (RWKV-7 dw) of float64, past the 1e-2 bar; so "fp32" is the default.
LR_MM = "fp32"
# Which of ChunkCore's products take LR_MM's bf16 operands: "scores" (queries . keys), "values" (scores . values, the
# mixes, queries . values), "state" (the products with the start states), "end" (the chunk transitions). With "values"
# too, the log decays' gradients went to 4.3e-2 (Gated DeltaNet) and 3.2e-2 (RWKV-7) at B=2 T=2048 (rounding the
# decayed scores); without it 1.7e-2 / 1.3e-2.
LR_MM_PARTS = ("scores", "state", "end")
# Fewer copies: the chunk transitions start from [I | 0] without forming it (no identity product, no [B nC, H, K,
# K + V] start tensor, no [0 | v] value lines of width K + V), the events' values are written once into one [N, C, m,
# w] buffer (the low-rank reads by the solve straight into it) instead of stacked and concatenated, the chunk start
# states are not zero-filled first. False: the old path. On the H100 at B=8 T=2048 H=16 K=V=64, fp32 tensors, graphs
# (bench/RESULTS.md): DeltaNet 17.02 -> 15.91 ms, Gated DeltaNet 35.26 -> 32.89, RWKV-7 35.76 -> 34.30; gradients
# within 4e-8 of the old path.
LR_LEAN = True

# How the chunk transitions (ChunkCore from [I | 0]: its scores, unit-lower solve, low-rank reads and end state) run:
# "cuda" (one fused kernel per chunk in shared memory, compiler/backends/cuda/lowrank-core.ts, the module's
# "kernels"."lowRankCore", where one of its configurations matches: fp32, C = K = V = 64, one low-rank pair and one pair,
# no / a scalar / a per-key decay; float32 tensors and bf16 tensors (the chain runs them in fp32); LR_MM "fp32") or
# "torch" (ChunkCore's torch ops, the reference; everything else, float64 included, always runs them).
LR_FUSED = "cuda"
# Which kernel the fused chunk transitions (LR_FUSED "cuda") take for bf16 / f16 tensors: "off" (the fp32 one) or its
# tensor-core twin (compiler/backends/cuda/lowrank-core-mma.ts, the module's entries with `math`, no or a scalar decay):
# "tf32" / "tf32x3" as LR_READ_MMA (the scores, A_k v and the end state by mma; the solve stays fp32). float32 tensors
# always take the fp32 kernel. Emulated vs float64 at C = K = V = 64: tf32 <= 4.7e-4, tf32x3 <= 3e-7. "tf32" is the
# default since H200 call A3 (bench/RESULTS.md "the chunk transitions on tensor cores"): at B=8 T=2048 H=16 K=V=64,
# graphs, bf16, the transitions kernel 0.583 -> 0.42 ms (DeltaNet, one eager step), DeltaNet 6.80 -> 6.80 ms, Gated
# DeltaNet 9.17 -> 8.62; gradients vs float64 at B=2 T=2048 unchanged (1.7e-3 DeltaNet, 1.9e-3 Gated DeltaNet).
LR_CORE_MMA = "tf32"
# How ChunkCore's readouts from known start states (read, adjoint, fwd: ChunkCore.read) run: "cuda" (one fused kernel
# per chunk and (axis, before / after) group, compiler/backends/cuda/lowrank-readout.ts, the module's
# "kernels"."lowRankReadout", where one of its configurations matches: fp32, C = K = V = 64, two events per step (one
# low-rank pair and one pair), no or a scalar decay; LR_MM "fp32") or "torch" (ChunkCore's torch ops, the reference;
# everything else, float64 included, always runs them; a per-key decay: LR_READ_KEY below). On the H200 at B=8 T=2048
# H=16 K=V=64, graphs (bench/RESULTS.md, "the per-chunk readouts as one fused CUDA kernel"): DeltaNet fp32 11.40 -> 10.79
# ms (bf16 11.03 -> 10.41), Gated DeltaNet 22.85 -> 19.86 (bf16 22.81 -> 19.77); DeltaNet's gradients bit-identical,
# Gated DeltaNet's within 2.3e-6 of the torch ops'.
LR_FUSED_READ = "cuda"
# Which kernel the fused readouts (LR_FUSED_READ "cuda") take for bf16 / f16 tensors: "off" (the fp32 one, the SIMT
# cores' FMAs), or the tensor-core twin (compiler/backends/cuda/lowrank-readout-mma.ts, the module's entries with `math`):
# "tf32" (mma.sync m16n8k8, TF32 operands, fp32 accumulators) or "tf32x3" (each operand a TF32 head and tail, three
# products: near fp32). float32 tensors always take the fp32 kernel. "tf32" is the default since H200 calls A1 / A2
# (bench/RESULTS.md "the fused readouts on tensor cores"): at B=8 T=2048 H=16 K=V=64, graphs, bf16, A2 (the twin with
# cp.async copies and ldmatrix A fragments): DeltaNet 8.52 -> 7.74 ms (its readout kernels 1.52 + 0.79 -> 0.69 + 0.37 ms),
# Gated DeltaNet 17.11 -> 14.34; gradients vs float64 at B=2 T=2048 1.7e-3 -> 1.7e-3 (DeltaNet), 1.7e-3 -> 1.8e-3 (Gated
# DeltaNet, dg); "tf32x3" 7.95 / 15.71 ms, 1.7e-3 both.
LR_READ_MMA = "tf32"
# Whether the fused readouts (LR_FUSED_READ "cuda") also take a per-key decay (RWKV-7): "cuda" (the module's
# "kernels"."lowRankReadoutKey", compiler/backends/cuda/lowrank-readout-key.ts: fp32 FMAs on the SIMT cores, C = K = V =
# 64, two events a step, both axes; every exp of a difference <= 0; float32 and bf16 tensors, the chain runs both in fp32)
# or "torch" (ChunkCore's per-key torch ops, LR_KEY's halves or sub-blocks; everything else always runs them). "cuda" is
# the default since one H200 call (bench/RESULTS.md, "RWKV-7's per-chunk readouts on a fused kernel"): RWKV-7 at B=8
# T=2048 H=16 K=V=64, graphs, on the chain: fp32 22.38 -> 16.56 ms, bf16 21.01 -> 15.05 (fla chunk_rwkv7 4.681 in the
# same process); one eager fp32 step's adjoint 7.44 -> 4.46 ms, fwd 4.80 -> 1.65; gradients vs float64 at B=2 T=2048
# fp32 3.2e-6 -> 3.1e-6, bf16 1.7e-3 both; check.py --only-chunked rwkv7 with it 33/33, gradcheck passed.
LR_READ_KEY = "cuda"
# Which form of the per-key kernels LR_READ_KEY "cuda" takes: "off" (the decays taken where they are used: timed above) or
# "on" (entries _pre, lowrank-readout-key.ts form "pre"; emulated vs float64 like the others; the plain key kernel
# took 2.60 ms and the value kernel 3.04 ms of the fp32 step; the _pre ones' own times not profiled). Key axis: Q and the events pre-decayed
# as they are loaded, one exp a key per off-diagonal score tile instead of eight, the diagonal tiles' rows on their own
# warps. Value axis: the keys pre-decayed to their 4-step tile's end, the Horner carry a tile at a time (4 exps a tile
# instead of 16). Modules built before it take the plain ones. "on" is the default since the H200 call of LR_CHAIN_REV below: RWKV-7 bf16
# at B=8 T=2048 H=16 K=V=64, graphs, 14.96 -> 14.69 ms with the flips, 14.36 -> 14.15 with LR_CHAIN_REV "kernel";
# gradients vs float64 at (2, 2048) bf16 1.7e-3 either way; check.py --only-chunked rwkv7 with both 33/33.
LR_READ_KEY_PRE = "on"
# How the backward proper runs once the forward's chunk states, reads and dy are known: "chain" (the adjoint chain on the
# reversed timeline: its chunk transitions augA, the pass, the adjoint's readouts, the forward's readouts fwd, the log
# decays' reverse sum over the timeline) or "wy" (seqc_lowrank_wy.py: the chunk-state structure of fla's chunk kernels;
# the adjoints of the chunk end states by one reverse walk with the forward's transitions transposed, then every
# gradient per chunk by products from the start state, the end state's adjoint, the reads and their adjoints; no
# reversed timeline). "wy" applies with no or a scalar decay and the default ways (LR_READ "matmul", the transitions
# as products, LR_LEAN, LR_SHARE); elsewhere (a per-key decay: RWKV-7) the chain runs. "wy" is the default since the
# H200 call of bench/RESULTS.md "the chunk-state backward ... timed with its kernels": with LR_FUSED_PASS and
# LR_FUSED_WY "cuda" at B=8 T=2048 H=16 K=V=64, graphs, DeltaNet bf16 10.19 -> 9.02 ms (fp32 10.23 -> 9.43), Gated
# DeltaNet bf16 19.74 -> 17.39 (fp32 19.80 -> 17.78); gradients vs float64 unchanged at B=2 T=2048 (fp32 4.5e-7 /
# 4.8e-7, the chain's 3.9e-7 / 5.0e-6; bf16 1.7e-3 both).
# "delta" (seqc_delta_bwd.py: the token-aligned delta backward, no timeline: chunks of the tokens themselves, prep's
# per-token outputs read and their adjoints written directly) where the chain is one delta step a token after LR_MERGE's
# merge (one step of one micro-step with one low-rank pair, one input pair, no, a scalar or a per-key decay (RWKV-7:
# seqc_delta_bwd.delta_torch_key, the kernels' mode "key"), the one readout after it) and post's backward reads no
# readout y (LR_Y_READ "bound"); elsewhere "wy" as above. "auto": "delta" where it
# applies and the module's delta kernels take the shape (LR_FUSED_DELTA "cuda"; a per-key decay: K = V = 64, the
# per-key adjoint's only shape), else "wy" (with a per-key decay: LR_BWD_KEY, the chain by default).
# "auto" is the default since H200 call D13 (bench/RESULTS.md "the token-aligned delta backward (LR_BWD "delta")
# timed"; one process, GPU ms under graphs): bf16 DeltaNet (8, 2048, 16, 64) 4.82 ("wy") -> 3.96 (kernels) -> 3.19
# (bf16 inputs on the TF32 twins), Gated DeltaNet 6.47 -> 4.64 -> 3.97, DeltaNet (4, 8192, 16, 128) 23.13 -> 20.35 ->
# 16.05, Gated DeltaNet 28.82 -> 23.14 -> 19.27; fp32 7.90 -> 5.78, 9.90 -> 6.59, 42.58 -> 30.63, 50.34 -> 34.08 (fla
# chunk_delta_rule 1.137 / 3.713 eager GPU). The torch ops ("delta" without kernels) are slower than "wy" there but for
# fp32 at K = 128 (bf16 7.09 / 8.72 / 29.91 / 34.71), so "auto" takes "delta" only with the kernels; on CPU it is "wy".
# Gradients vs float64 at (2, 1024): bf16 1.7e-3 with fp32 kernels as "wy", 2.6e-3 with the twins (fla 5.8e-3); fp32
# 4.1e-7 / 1.1e-6. A per-key decay (RWKV-7) takes "delta" with its kernels too since H200 call A13 (bench/RESULTS.md
# "RWKV-7's per-key decay through the delta backward"; GPU ms under graphs, (8, 2048, 16, 64)): bf16 12.31 (the chain)
# -> 7.18 (fp32 kernels) -> 6.17 (bf16 inputs on the TF32 twins), fp32 14.81 -> 9.49 (fla chunk_rwkv7 3.83 eager GPU);
# gradients vs float64 at (2, 1024) bf16 1.7e-3 both ways (fla 4.1e-3), fp32 2.2e-6 (chain) / 5.7e-7.
LR_BWD = "auto"
# Whether LR_BWD "wy" also takes a per-key decay (RWKV-7): "chain" (the adjoint chain runs for it, as before) or "wy"
# (seqc_lowrank_wy.py's per-key path: the forward core's per-key scores for P1_u and L_uu, the reversed chunks'
# ChunkCore with the flipped per-key log decays, torch ops only: the wy kernels and fused readouts take no per-key decay).
# "chain" stays the default: on the H200 (one call, RWKV-7 at B=8 T=2048 H=16 K=V=64, graphs) "wy" is slower, fp32 22.59
# -> 24.13 ms, bf16 21.65 -> 23.32 (fla chunk_rwkv7 4.953 in the same process); gradients vs float64 at (2, 2048) fp32
# 3.2e-6 -> 5.8e-7, bf16 1.7e-3 both; check.py --only-chunked with it 49/49, gradcheck passed (bench/RESULTS.md).
LR_BWD_KEY = "chain"
# How LR_BWD "delta" runs: "cuda" (the module's five kernels, "kernels"."deltaBwd", compiler/backends/cuda/delta-bwd.ts,
# where it has them for the shape: C = 64, the model's decay, K, V, float32 tensors) or "torch" (seqc_delta_bwd.delta_torch's
# batched products, the walks by LR_FUSED_PASS's kernel where it takes them).
LR_FUSED_DELTA = "cuda"
# Whether a forward that the delta backward will follow keeps each 64-token chunk's start state for it (docs/
# delta-backward.md "Chunk states from the forward"): "off", "on" or "split3": with "on" the forward runs its chunked
# form's auto pick with the walk that also stores every chunk's start state S0 to a workspace in the forward's operand
# type (the pick's "-st" twin, compiler/backends/cuda/chunked-walk-states.ts: split's walk, B H nC K V stores added),
# or where the pick has none (split3, fused) its split3 variant (fwd_states_form: the pick where it is split3, else the
# split3 variant with its phase A, whose walk stores them); "split3" always the latter; keeps that workspace and the final state (ctx.
# delta_states), and the backward computes the reads R = X + M S0 per chunk (kernels.deltaStates, compiler/backends/
# cuda/delta-r.ts) instead of its forward walk. Applies with no or a scalar decay (E = P = R = 1) and bf16 or float32
# forwards; the states are graph arguments of the backward (one copy on a replay that is not direct). Memory: B H nC K V
# elements of the forward's type kept from the forward to the backward (bf16 (4, 8192, 16, 128): 268 MB). Gradients
# then follow the forward's bf16 states (emulated at (2, 1024, 4, 64): du, dw, dq 2.5e-3 off float64 before their bf16
# rounding vs 0 with the walk's states; dk, dv unchanged). "on" is the default since H200 call F14 (session 14's final
# call, bench/RESULTS.md "session 14's switches timed together"): alone at (4, 8192, 16, 128) DeltaNet's bf16 step under
# graphs 9.403 -> 9.322 ms (eager 9.384 -> 8.753), Gated DeltaNet 10.968 -> 10.882; with the other four switches of that
# call (LR_DELTA_GLUE, seqc_delta_bwd ZBF16 / KEY_MMA / KEY_WALK) DeltaNet 2.131 -> 1.863 ms at (8, 2048, 16, 64), 6.918 ->
# 5.373 at (1, 32768, 8, 128), 9.403 -> 8.334 at (4, 8192, 16, 128); gradients vs float64 at (2, 1024) 3.4e-3 -> 4.3e-3
# (DeltaNet; fla 5.8e-3), Gated DeltaNet 3.2e-3 -> 5.0e-3 (dg).
LR_FWD_STATES = "on"
# How the backward gets those chunk states where the forward ran as a CUDA graph (seqc_graphs.graphed, read at each
# forward): "copy" (the default: each replay copies them out of the graph's memory, as every result: 268 MB of bf16 at
# (4, 8192, 16, 128), ~0.12 ms a step at the H200's copy rate (estimated; the eager profile of call F14b: aten::clone 0.20 ms a
# step for the forward graph's results), and as many bytes allocated a step) or "graph" (the graph's own
# tensors, not copied: its signature captures into the model's shared-results pool, seqc_graphs' `shared`; the
# backward takes them while no forward graph of that pool replayed since (fwd_states), else the forward walk as with
# no states: a second forward before the first's backward (gradient accumulation over micro-batches, a forward
# without gradients of the same shapes) costs that backward its states, not its gradients). Memory: the forward's graphs
# keep their intermediates in that pool, apart from the backward's. Untimed.
LR_FWD_STATES_COPY = "copy"
# The per-token inputs' type LR_FUSED_DELTA "cuda" gives its kernels where the forward's tensors are bf16 (the glue runs
# in float32): "f32" (prep's float32 outputs as they are: the _f32 entries) or "bf16" (rounded to bf16 once: the _bf16
# entries, half the reads). "bf16" is the default since H200 call D13, for LR_DELTA_MMA's twins (bf16 inputs only): alone
# it is slower than "f32" (DeltaNet bf16 (8, 2048, 16, 64) 3.96 -> 4.16 ms, the conversions 0.25 ms a step).
LR_DELTA_TIN = "bf16"
# Whether LR_FUSED_DELTA's kernels with bf16 per-token inputs (LR_DELTA_TIN "bf16") take the module's tensor-core twins
# (compiler/backends/cuda/delta-prep-mma.ts, delta-adjoint-mma.ts; records with math "tf32") where it has them: "off" or
# "tf32" (each op's twin where one exists for the shape, else its fp32 kernel), or "bf16" (seqc_delta_bwd.MATH_PREFS:
# the bf16 tensor-core twins, math "bf16", where the module has them, else the TF32 ones: the adjoints', decay
# none / scalar (compiler/backends/cuda/delta-adjoint-bf16.ts) and per key (seqc_delta_bwd.KEY_MMA)). "tf32" was the default from H200 call D13 (bf16 steps
# DeltaNet 4.16 -> 3.19 ms at (8, 2048, 16, 64), 21.72 -> 16.05 at (4, 8192, 16, 128); Gated DeltaNet 4.80 -> 3.97,
# 24.52 -> 19.27). "bf16" is the default since H200 call A1 (session 14, bench/RESULTS.md "the delta adjoint's bf16
# twin"): the adjoint alone 0.927 -> 0.283 ms (DeltaNet (8, 2048, 16, 64)), 4.874 -> 1.477 ((4, 8192, 16, 128)); DeltaNet's
# bf16 step under graphs 3.665 -> 3.121 ms and 15.990 -> 12.705; gradients vs float64 at (2, 1024) 2.6e-3 -> 3.4e-3
# (DeltaNet), 2.4e-3 -> 3.2e-3 (Gated DeltaNet): R, DR, S0, LE and the scores rounded to bf16, still below fla's 5.8e-3.
LR_DELTA_MMA = "bf16"
# The delta step's glue where LR_FUSED_DELTA's kernels take bf16 per-token inputs (LR_DELTA_TIN "bf16", bf16 tensors,
# the module's kernels for the shape): "off" (prep and post's backward write float32, which delta_kernels converts to
# bf16: a pass over each of u, k, q and dY, four of the bf16 conversions in the H200 D2 profiles, which took 0.20 ms of
# DeltaNet's (8, 2048, 16, 64) step and 0.75 ms (ten) at (4, 8192, 16, 128)) or "bf16": prep writes the tensors the
# kernels read in bf16 directly (its "-bf16out" twins, compiler/backends/torch/stateless-bf16.ts: stores rounded to
# nearest even, bitwise torch's conversion after a float32 store); post's backward does not run where its outputs are a
# copy and zeros (dY the cotangent as given: post_copies), else its "-bf16out" twin writes dY; prep's backward writes
# the gradients it alone makes (DeltaNet's q and beta) in bf16; a merged decay's w' = exp(ld) w is written in bf16 by its
# one product; an input's gradient pieces (k's two) are summed into bf16 (the gradient as returned). Where the stateless
# run or the plan has no such twins, as "off". "bf16" is the default since H200 call F14 (session 14's final call): alone
# at (4, 8192, 16, 128) bf16 steps under graphs DeltaNet 9.403 -> 9.149 ms, Gated DeltaNet 10.968 -> 10.428, RWKV-7
# 27.741 -> 27.494; gradients vs float64 unchanged (3.4e-3 / 3.2e-3 / 1.7e-3).
LR_DELTA_GLUE = "bf16"
# How the walks over the chunks run where they are products (LR_PASS "matmul": the chunk start states from the
# transitions, and LR_BWD "wy"'s reverse walk over the end states' adjoints): "torch" (one batched product per chunk,
# nC launches) or "cuda" (one kernel for the whole walk, a block per batch row and head, compiler/backends/cuda/
# lowrank-pass.ts, the module's "kernels"."lowRankPass", where a configuration matches: fp32, K = V = 64, the heads
# layout). "cuda" is the default since that H200 call: the chain alone went 10.23 -> 9.73 ms (DeltaNet fp32), 19.80 ->
# 18.71 (Gated DeltaNet fp32), bf16 10.19 -> 9.28 / 19.74 -> 18.16.
LR_FUSED_PASS = "cuda"
# How LR_BWD "wy"'s per-chunk products before and after its walk run (P1_u^T dY and B'; the reads' adjoints: the UT
# scores, the right-hand side and the back substitution): "torch" (batched products, the solve in blocks) or "cuda" (two
# kernels, a block per chunk, compiler/backends/cuda/lowrank-wy.ts, the module's "kernels"."lowRankWy", where one
# matches: fp32, C = K = V = 64, one low-rank pair and one readout, no or a scalar decay). "cuda" is the default since
# that H200 call: wy with the pass kernel 9.90 -> 9.43 ms with these kernels too (DeltaNet fp32), 18.78 -> 17.78 (Gated
# DeltaNet fp32).
LR_FUSED_WY = "cuda"
# Which "pre" kernel LR_FUSED_WY "cuda" takes for bf16 / f16 tensors: "off" (the fp32 one) or its tensor-core twin
# (compiler/backends/cuda/lowrank-wy-mma.ts, the module's entries with `math`): "tf32" / "tf32x3" as LR_READ_MMA. Not
# yet timed on the card, so "off"; float32 tensors always take the fp32 kernel. At K = V = 64 only "pre" has a twin;
# wider shapes take LR_WY_MMA_K128.
LR_WY_MMA = "off"
# Which kernels LR_FUSED_WY "cuda" takes for bf16 / f16 tensors wider than K = V = 64 (with LR_WY_K128 "on"): "off" (the
# fp32 kernels) or the tensor-core twins at K = V = 128, "pre" (lowrank-wy-mma.ts) and "dr" (lowrank-wy-dr-mma.ts: the
# scores and the right-hand side as m16n8k8 products, the back substitution in 16-step blocks whose updates run on the
# tensor cores): "tf32" / "tf32x3" as LR_READ_MMA. Emulated vs float64 (tf32 <= 6.1e-4, tf32x3 <= 3.6e-7). "tf32" is the
# default since H200 call A2w (bench/RESULTS.md "wy's pre and dr kernels at K = 128 on tensor cores"): bf16 eager steps
# DeltaNet (4, 8192, 16, 128) 30.82 -> 27.81 ms, (1, 32768, 8, 128) 19.81 -> 18.32; Gated DeltaNet 37.04 -> 33.71 and
# 23.04 -> 21.37 (kernels dr 2.95 -> 0.96 ms, pre 2.18 -> 1.21); gradients vs the fp32 kernels <= 1.2e-3.
LR_WY_MMA_K128 = "tf32"
# Which of wy's two ops take a twin where LR_WY_MMA / LR_WY_MMA_K128 give one: "both" (the default), "pre" or "dr" (the
# other op then takes its fp32 kernel; for timing the two apart).
LR_WY_MMA_OPS = "both"
# Whether LR_FUSED_WY "cuda" takes the module's kernels wider than K = V = 64 (compiler/backends/cuda/lowrank-wy.ts: C = 64,
# K = V = 128, 185,604 bytes of shared memory for either op, one block an SM; emulated vs float64 < 1e-5): "on" (the
# default since one H200 call, together with LR_PASS_COLS 32 (bench/RESULTS.md, "the delta rule's wy kernels at K = 128
# ... timed"): bf16 steps DeltaNet (4, 8192, 16, 128) 36.87 -> 35.14 ms, (1, 32768, 8, 128) 41.16 -> 24.45, Gated
# DeltaNet 43.60 -> 42.45 and 44.62 -> 28.22; gradients vs the old path <= 4.7e-5) or "off" (wy's torch products there).
LR_WY_K128 = "on"
# The walks over the chunks (LR_FUSED_PASS "cuda") in value-column groups (compiler/backends/cuda/lowrank-pass.ts, entries
# _g<G>: a (B * H, V / G) grid, each block G columns of a row's state; the module has G = 32 and 16 at K = V = 128): 0 (the
# old way: one block a row) or G, taken where B * H is below the card's SM count. 32 was the default from the H200 call
# quoted at LR_WY_K128 (timed together with it: the walks' section at (1, 32768, 8, 128) 12.70 -> 4.16 ms); or
# "auto" (the default since H200 call A12b, bench/RESULTS.md "the delta rule's K = 128 readouts and transitions on tensor
# cores"): the widest groups that give at least as many blocks as the card has SMs, else the narrowest (pass_pick): G = 32
# at (4, 8192, 16, 128) (64 rows, 256 blocks), G = 16 at (1, 32768, 8, 128) (8 rows, 64 blocks); DeltaNet bf16 at
# (1, 32768, 8, 128) 22.15 -> 19.82 ms (the walks 4.17 -> 3.03); G = 16 everywhere was slower at (4, 8192, 16, 128) in
# call A12a (DeltaNet 35.12 -> 37.00, Gated DeltaNet 42.46 -> 44.32) and faster at (1, 32768) (24.47 -> 22.16, 28.24 -> 25.96).
LR_PASS_COLS = "auto"
# Whether the fused readouts (LR_FUSED_READ "cuda") take the module's kernels wider than K = V = 64 (compiler/backends/cuda/
# lowrank-readout-cols.ts: the readouts' tensor-core twin holding G = 64 output columns of EB and S0 at a time, C = 64,
# K = V = 128, M = 2, for bf16 / f16 tensors with LR_READ_MMA; 172-175 KB of shared memory, one block an SM; emulated vs
# float64 within 1e-3 (tf32) / 1e-5 (tf32x3)): "off" (ChunkCore's torch ops there, the way before) or "on" (read_k128; the
# default since H200 call A12b, bench/RESULTS.md "the delta rule's K = 128 readouts and transitions on tensor cores": DeltaNet
# bf16 eager at (4, 8192, 16, 128) 35.15 -> 31.80 ms (wy's section 18.91 -> 15.59), (1, 32768, 8, 128) 24.48 -> 22.64;
# gradients vs the old path <= 1.1e-3 (TF32), vs float64 at (1, 1024, 16, 128) 1.7e-3 as before; Gated DeltaNet's accuracy
# 2.1e-3 (dg; 1.6e-3 before), its steps not timed).
LR_READ_K128 = "on"
# Whether the fused chunk transitions (LR_FUSED "cuda") take the tensor-core twin (LR_CORE_MMA) wider than K = V = 64 as
# well (compiler/backends/cuda/lowrank-core-mma.ts at C = 64, K = V = 128: 170 KB of shared memory, one block an SM, 96
# registers; emulated vs float64 as the K = 64 twins): "off" (the fp32 kernel there, the way before) or "on" (core_k128; the
# default since H200 call A12b, as LR_READ_K128: DeltaNet bf16 at (4, 8192, 16, 128) 35.15 -> 34.18 ms (the transitions
# 4.23 -> 3.25), (1, 32768, 8, 128) 24.48 -> 24.00; both switches 30.84 / 22.15; gradients vs the old path <= 9.8e-4).
LR_CORE_K128 = "on"
# Where the backward's run of the forward (the chunk transitions, the pass, the reads) also reads the readouts y again
# (LR_READ "matmul"; only post's backward takes them): "bound" (the default) only where some form of post's backward plan
# binds a readout's y (DeltaNet's and Gated DeltaNet's post backward, o = y, reads the cotangent alone: their y0 is in
# the plan's tensors but no kernel binds it; the key-axis readout of every chunk, its stack and the reshape for post were
# for nothing; post's backward then gets an unwritten buffer for y0, never read); "always" (the way before).
# seqc_chunked.py's CORE_RERUN is the same for the chains without low-rank terms. H200, B=8 T=2048 H=16 K=V=64, graphs
# (bench/RESULTS.md, "the backward's y read, copies and merged decay steps"): DeltaNet fp32 9.39 -> 8.88 ms, Gated
# DeltaNet fp32 17.62 -> 16.63; gradients bitwise the same.
LR_Y_READ = "bound"
# The glue's copies around the kernels: "lean" (the default) the timeline's lines zeroed only in the identity step and the
# padding where every token micro-step is written after (not a whole zero fill first), prep's adjoints with each slot's
# first piece copied (no zero fill, no add), and in LR_BWD "wy" no end-state copy (S_ends as the next chunks' start
# states), the reversed chunks' events as two stacked tensors (one copy per source, one flip each), the forward's events
# read reversed as one stacked flip and the outputs flipped back as one, no single-vector stacks for dw / dq; "old" (the
# way before). The same values either way (the same sums in the same order). H200, as above, after LR_Y_READ: DeltaNet
# fp32 8.88 -> 8.44 ms, Gated DeltaNet fp32 16.63 -> 16.14; both together bf16 8.78 -> 7.64 / 17.18 -> 15.73.
LR_COPIES = "lean"
# Whether LR_BWD "wy" runs a scalar decay's own micro-step merged into the next one (Gated DeltaNet: S' = exp(g) S, then
# the delta step on S'; two micro-steps a token, so twice the timeline and the chunks): "decay" (one micro-step a token:
# the decay on the state before the step, the next step's low-rank queries w scaled to exp(ld) w, since
# w^T (exp(ld) S) = (exp(ld) w)^T S; their adjoints mapped back, dw = exp(ld) dw' and d ld += w' . dw') where the
# decay's step has no events, the next has one micro-step and no decay of its own, and no readout reads between the two;
# "off" (the timeline of the chain's names as it is). On the H200 at B=8 T=2048 H=16 K=V=64, graphs, one process
# (bench/RESULTS.md, "the backward's y read, copies and merged decay steps"): Gated DeltaNet fp32 16.14 -> 10.30 ms, bf16
# 15.73 -> 9.61 (33 chunks a row instead of 65); gradients vs float64 at B=2 T=2048 fp32 4.8e-7 -> 6.2e-7 (dg), bf16 1.7e-3.
LR_MERGE = "decay"
# How LR_BWD "wy"'s reversed chunks (one ChunkCore from the end states' adjoints over each chunk backwards) are read,
# with LR_COPIES "lean": "flip" (their events, the forward's events they read and the outputs flipped in time by
# torch.flip, six copies of [N, C, m, 64] float32 tensors a step) or "kernel" (no flips: the fused readouts read the
# tensors stored in forward time backwards, compiler/backends/cuda/lowrank-readout.ts's rev argument, and the keys' read
# takes its one event slot as a strided view, the kernel's qs; where no kernel takes a read, ChunkCore.read_rev flips as
# "flip" does). The same values either way (the same sums in the same order). "kernel" is the default since one H200 call
# (bench/RESULTS.md, "wy's reversed chunks read backwards"): (8, 2048, 16, 64), graphs, DeltaNet bf16 6.46 -> 5.89 ms
# (fp32 8.66 -> 8.14; fla chunk_delta_rule 2.575), Gated DeltaNet bf16 8.22 -> 7.92 (fp32 10.61 -> 10.18); gradients
# bitwise the flips' (bf16), vs float64 unchanged.
LR_REV_READ = "kernel"
# How the chain's adjoint (LR_BWD "chain" or a per-key decay on LR_BWD_KEY "chain": RWKV-7) reads its reversed timeline with
# a per-key decay, the heads layout, LR_READ "matmul" and LR_DECAY "plan": "flip" (the adjoint's queries flipped in time, torch.flip of the
# forward's lines, and its outputs flipped back; the log decays' adjoint's inputs flipped, then permuted to the decay
# plan's layout) or "kernel" (the per-key readouts, lowrank-readout-key.ts's mirror argument, read the adjoint's queries
# from the forward's lines and write its outputs dv, a, dk, du in forward time; the decay plan's inputs taken reversed
# and permuted by one index_select each from forward-time tensors; where no kernel takes a read, ChunkCore.read_mirror
# flips as "flip" does; the adjoint's inputs read a step later, rev(a, 1), as one index_select instead of a flip and a
# copy). The same values either way (the same sums in the same order). RWKV-7: 16 flips and 4 copies of [B, H, Lp, K]
# lines a step -> 3 flips (and 11 index_selects for the 8 permuted copies and 3 shifted flips). "kernel" is the default
# since one H200 call (bench/RESULTS.md, "RWKV-7's chain adjoint reading its reversed timeline"): RWKV-7 at B=8 T=2048
# H=16 K=V=64, graphs, fp32 16.64 -> 16.06 ms, bf16 14.96 -> 14.36 (fla chunk_rwkv7 4.950 in the same process); one eager
# fp32 step's flips 0.84 -> 0.16 ms, copy_ 1.97 -> 1.30, index_select 0.72; gradients vs float64 at (2, 2048) unchanged
# (fp32 3.1e-6, bf16 1.7e-3); check.py --only-chunked rwkv7 with it 33/33, gradcheck passed.
LR_CHAIN_REV = "kernel"
# Where LR_BWD "wy" runs (LR_COPIES "lean", the heads layout, no per-key decay), whether the timeline's lines are made as
# slots of the stacks that read them: "on" (x_u / x_k as the forward's aug ChunkCore's keys [N, C, E + P, K], x_v as
# the value half of its [0 | v] slots, x_q / x_dy as slots :R of wy's event stacks evK / evV; prep's and post's outputs
# are written straight into them, so ChunkCore's key stack, its [0 | v] put and wy's two copies of q / dy are gone; x_dy
# only where wy's "pre" kernel reads a strided dY, else it stays its own line) or "off" (each line its own tensor, copied
# into the stacks, as before). The same values either way. One H200 call (bench/RESULTS.md, "lines as slots"), graphs,
# (8, 2048, 16, 64): fp32 DeltaNet 8.13 -> 7.86 ms, Gated DeltaNet 10.17 -> 9.91, Gated DeltaNet bf16 7.72 -> 7.55, but
# DeltaNet bf16 5.67 -> 5.81 (ranges overlap): "off" until a second call settles it.
LR_EV_LINES = "off"
# How bf16 tensors run the stateless parts (prep, prep's and post's backward, over [B*T, 1]): "twins" (the default) their
# plans' bf16-input twins (compiler/backends/torch/stateless-bf16.ts statelessTwins, the GLA family's: the given bf16
# inputs and cotangents read as they are, row sums over a warp's lanes, post's and prep's backward without their literal
# zeros, the global form row by row), the fastest timed once per shape (seqc_chunked.stateless_form; its TUNE_STATELESS,
# STATELESS_WARP, STATELESS_ROWS, ZERO_STORES and GRAPH_PICKS apply); "f32" (the way before) the float32 forms on the
# float32 copies, the plan's pick (the workgroup form: a block a token, one element a thread a phase).
LR_STATELESS = "twins"
# The spin ahead of each of LR_STATELESS's trial runs, in GPU clock cycles (torch.cuda._sleep; 0: none).
TRIAL_SPIN = 2_000_000


def merge_decay_steps(steps, readouts):
    """LR_MERGE "decay": the chain's steps with each event-free scalar decay step folded into the next step (one micro-step,
    no decay of its own, no readout between them). Returns (steps, readouts, [(ld name, [w names of the merged step])])."""
    out, merged, shift = [], [], []
    i = 0
    while i < len(steps):
        st = steps[i]
        nx = steps[i + 1] if i + 1 < len(steps) else None
        if st.get("ld") and not st["ld"]["perKey"] and st["count"] == 1 and not st["lowRank"] and not st["inputs"] and nx is not None and \
                not nx.get("ld") and nx["count"] == 1 and nx["lowRank"] and not any(r["after"] == i + 1 for r in readouts):
            out.append(dict(nx, ld=st["ld"]))
            merged.append((st["ld"]["name"], [lr_["w"] for lr_ in nx["lowRank"]]))
            shift.append(i + 1)  # the steps index i + 1 and on are one earlier
            i += 2
            continue
        out.append(st)
        i += 1
    new_reads = [dict(r, after=r["after"] - sum(1 for j in shift if r["after"] > j)) for r in readouts]
    return out, new_reads, merged


def delta_pattern(steps, readouts, decay):
    """Whether LR_BWD "delta" (seqc_delta_bwd) takes a chain of these steps and readouts (after merge_decay_steps): one
    step of one micro-step with one low-rank pair, one input pair and no, a scalar or a per-key log decay (RWKV-7), and
    one readout of the state after it."""
    if decay not in ("none", "scalar", "key") or len(steps) != 1 or len(readouts) != 1:
        return False
    st = steps[0]
    ld = st.get("ld")
    return st["count"] == 1 and len(st["lowRank"]) == 1 and len(st["inputs"]) == 1 and (ld is None) == (decay == "none") and \
        (ld is None or ld["perKey"] == (decay == "key")) and readouts[0]["after"] == 1


class _section:
    """Times a section of the backward into LR_TIMES (nothing when it is None)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        if LR_TIMES is not None:
            self.ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            self.ev[0].record()

    def __exit__(self, *exc):
        if LR_TIMES is not None:
            self.ev[1].record()
            LR_TIMES.append((self.name, self.ev[0], self.ev[1]))


# The readouts each chain model gives (compiler/grad/chunked-chain-lowrank.ts lowRankModels): (output, input, axis,
# after the step), per pair / low-rank pair / readout index.
LR_READS = {
    "read": lambda P, E, R: [("o_y%d" % r, "x_q%d" % r, "key", True) for r in range(R)],
    "fwd": lambda P, E, R: [("o_dw%d" % e, "x_a%d" % e, "value", False) for e in range(E)] + [("o_dq%d" % r, "x_dy%d" % r, "value", True) for r in range(R)],
    "adjoint": lambda P, E, R: [("o_dv%d" % p, "x_kq%d" % p, "key", True) for p in range(P)] + [("o_a%d" % e, "x_uq%d" % e, "key", True) for e in range(E)] +
    [("o_dk%d" % p, "x_vz%d" % p, "value", True) for p in range(P)] + [("o_du%d" % e, "x_rz%d" % e, "value", True) for e in range(E)],
}


# ChunkCore: every chunk of a matrix-state core at once, as matrix products: the torch form of chunkPass
# (compiler/forms/matrix-core-backward.ts).
#
# The core, per batch row n (a chunk of C steps of one head) from a known start state S_0 [K, V]:
#
#     S_s = D_s S_{s-1} + sum_e u_{s,e} (w_{s,e}^T S_{s-1}) + sum_p k_{s,p} v_{s,p}^T,   D_s = diag(exp(ld_s))
#
# (no decay, a scalar or a per-key log decay). With r_{s,e} = S_{s-1}^T w_{s,e} the low-rank reads, every
# step adds "events" (key kk, value vv): (u_e, r_e) and (k_p, v_p). With G_t the log decay summed over the
# chunk's first t steps:
#
#     key-axis read   y = S_t^T q = (exp(G_t) q)^T S_0 + sum_{f <= t} (q . exp(G_t - G_f) kk_f) vv_f
#     value-axis read x = S_t z   = exp(G_t) (S_0 z)   + sum_{f <= t} exp(G_t - G_f) kk_f (vv_f . z)
#     end state       S_C = exp(G_C) S_0 + sum_f exp(G_C - G_f) kk_f vv_f^T
#
# where a read of step s sees t = s (after the step) or t = s - 1 (before it). The low-rank reads are
# key-axis reads before their step whose values are events themselves: (I - A_rr) r = (exp(G_{s-1}) w)^T S_0
# + A_rv v with A_rr strictly lower triangular in step order, one batched unit-lower triangular solve (the UT
# transform of the chunked kernels).
#
# Decays are exponentiated only as differences exp(G_a - G_b), a >= b (<= 1 for log decays <= 0; underflow to
# 0 is harmless): a scalar decay as a C x C ratio matrix; a per-key decay (LR_KEY below) in recursive halves
# (through each pair of halves' boundary, a product per level) or in sub-blocks of `block` steps, between blocks
# through the query block's first time as reference (exp(G_t - G_ref) exp(G_ref - G_f), both <= 1, a matrix product
# per query block), inside a block elementwise ([b, b, K] ratios).

# Steps per sub-block of a per-key decay in LR_KEY "blocks" (the elementwise ratios are [C, BLOCK, K] per chunk, the
# reference-scaled keys [C / BLOCK, C, K]). RWKV-7 at B=8 T=2048 H=16 K=V=64 on the H100: 8: 65.0 ms, 16: 75.5, 32: 101.5.
BLOCK = 8
# How a per-key decay's scores and mixes are formed: "blocks" (sub-blocks of BLOCK steps: between blocks through the
# query block's first time, inside a block elementwise with [C, BLOCK, K] ratio temporaries) or "halves" (no elementwise
# ratios: the chunk, padded to a power of two, split in halves recursively; at each level every query of a second half
# sees every key of its first half, exp(G_t - G_f) = exp(G_t - G_m) exp(G_m - G_f) through the halves' boundary m, both
# factors <= 1, one batched product per level; the single steps left are the diagonal, seen after the step only).
# RWKV-7 at B=8 T=2048 H=16 K=V=64 on the H100 (bench/RESULTS.md, "recursive halves"): blocks of 8 67.8 ms, halves 51.5
# (both eager, the transitions' plan), halves with the transitions as products and the graph 45.7.
LR_KEY = "halves"
# How the low-rank reads' unit-lower triangular systems (I - A) r = rhs are solved: "trsm" (torch.linalg.solve_triangular,
# cuBLAS's batched trsm) or "blocks" (diagonal blocks of SOLVE_BLOCK rows inverted by doubling, (I - D)^-1 =
# (I + D)(I + D^2)(I + D^4)..., then a block substitution of batched products). On the H100 at B=8 T=2048 H=16 K=V=64
# (bench/RESULTS.md, "head-major timeline"), with the heads layout and sharing: DeltaNet 17.56 -> 17.02 ms, Gated
# DeltaNet 36.46 -> 35.43 (blocks of 32: DeltaNet 17.06).
LR_SOLVE = "blocks"
SOLVE_BLOCK = 16


def unit_lower_solve(A, rhs, way=None, bs=None, out=None):
    """X with (I - A) X = rhs for A [N, n, n] strictly lower triangular, rhs [N, n, V] (LR_SOLVE); out: a [N, n, V]
    tensor (a view may be strided) to write X into (returned), else a new one."""
    way = way or LR_SOLVE
    bs = bs or SOLVE_BLOCK
    if way not in ("trsm", "blocks"):
        raise ValueError("LR_SOLVE %r: one of trsm, blocks" % (way,))
    N, n = A.shape[0], A.shape[1]
    if way == "trsm" or n <= 1:
        X = torch.linalg.solve_triangular(-A, rhs, upper=False, unitriangular=True)
        if out is None:
            return X
        out.copy_(X)
        return out
    A, rhs, inv, bs, nb, npad = _wy.diagonal_block_inverses(A, rhs, bs)
    X = out if out is not None and npad == n else torch.empty_like(rhs)
    for i in range(nb):
        lo, hi = i * bs, (i + 1) * bs
        r = rhs[:, lo:hi]
        if i:
            r = torch.baddbmm(r, A[:, lo:hi, :lo], X[:, :lo])
        X[:, lo:hi] = torch.matmul(inv[:, i], r)
    if out is not None and X is not out:
        out.copy_(X[:, :n])
        return out
    return X[:, :n]


_OUT_DTYPE = [None]  # whether torch.bmm takes out_dtype (CUDA, torch >= 2.8): found on the first bf16 product


def bmm(a, b, mm=None):
    """a @ b for 3-D a, b; mm (LR_MM): None, products in the operands' dtype; a half dtype: the operands rounded to it,
    products accumulated in fp32, an fp32 result (on CUDA torch.bmm's out_dtype, tensor cores; elsewhere, or where
    torch has no out_dtype, the rounded operands multiplied in fp32: the same operands, the same fp32 sums)."""
    if mm is None:
        return torch.matmul(a, b)
    a, b = a.to(mm), b.to(mm)
    if a.is_cuda and _OUT_DTYPE[0] is not False:
        try:
            y = torch.bmm(a, b, out_dtype=torch.float32)
            _OUT_DTYPE[0] = True
            return y
        except (TypeError, RuntimeError, NotImplementedError):  # no out_dtype here: the emulation below (fp32 products)
            _OUT_DTYPE[0] = False
    return torch.matmul(a.float(), b.float())


def baddbmm(c, a, b, mm=None):
    """c + a @ b (bmm's operands; c and the result in the compute dtype)."""
    if mm is None:
        return torch.baddbmm(c, a, b)
    y = bmm(a, b, mm)
    y += c
    return y


def _same_view(x, y):
    """Whether x is y (the same memory, shape and strides)."""
    return x.data_ptr() == y.data_ptr() and x.shape == y.shape and x.stride() == y.stride()


class ChunkCore:
    """The core over N chunks of C steps at once (module docstring).

    S0: [N, K, V] the start states; ld: None, [N, C, 1] (scalar) or [N, C, K] (per key) the steps' log decays;
    low_rank: [(u, w)] each [N, C, K]; pairs: [(k [N, C, K], v [N, C, V])]; block: steps per sub-block (None: BLOCK) and key_way: "halves" /
    "blocks" (None: LR_KEY), how a per-key decay is formed; mm: the products' operand dtype (bmm; None: the
    tensors'); eye: S0 None and the start state [I | 0] of width `eye` (the chunk transitions; its products folded
    away); a pair's values narrower than the state are [0 | v] (zeros in front); fused: None or a launcher of the
    fused chunk transitions (fused_launcher: with eye, lean, one low-rank pair and one pair, no bf16 operands, the reads
    and the end state come from its kernel where it has a matching one); readout: None or a launcher of the fused
    readouts (readout_launcher: read() from a start state, no bf16 operands, where it has a matching kernel; kept by
    restart()); events: None or the events' keys and values already stacked, (KK [N, Cp, mk, K], VV [N, Cp, mk, V]) in
    the order of low_rank's then pairs' (lean, a start state, no [0 | v] values; taken as they are, no copies: the
    pairs then give only the shapes). Steps past a chunk's end are zero vectors with
    zero log decay. .r: the low-rank reads; .read(axis, after, vecs) the readouts; .end() the end states."""

    def __init__(self, S0, ld, low_rank, pairs, block=None, key_way=None, mm=None, eye=None, lean=None, fused=None, readout=None, events=None, slots=None):
        first = low_rank[0][0] if low_rank else pairs[0][0]
        if S0 is None:
            if eye is None:
                raise ValueError("ChunkCore: no start state and no [I | 0] width")
            N, K, V = first.shape[0], first.shape[2], eye
        else:
            N, K, V = S0.shape
        C = first.shape[1]
        self.N, self.K, self.V, self.C = N, K, V, C
        self.dtype, self.device = first.dtype, first.device
        self.mm = mm if mm is not None and self.dtype != torch.float64 and mm != self.dtype else None
        self.S0 = S0
        self.readout = readout
        self._lo = {}
        self.mode = "none" if ld is None else ("scalar" if ld.shape[2] == 1 else "key")
        key_way = key_way or LR_KEY
        if key_way not in ("blocks", "halves"):
            raise ValueError("key_way %r: one of blocks, halves" % (key_way,))
        self.halves = self.mode == "key" and key_way == "halves"
        b = C
        if self.mode == "key":
            b = min(block or BLOCK, C)
        if self.halves:  # the chunk padded to a power of two; b, nb unused
            b = 1 << (C - 1).bit_length()
        self.b = b
        self.nb = -(-C // b)
        Cp = self.nb * b
        self.Cp = Cp
        self.E, self.P = len(low_rank), len(pairs)
        self.mk = self.E + self.P
        pad = self._pad
        if ld is not None:
            G = torch.zeros([N, Cp + 1, ld.shape[2]], dtype=self.dtype, device=self.device)
            G[:, 1 : C + 1] = torch.cumsum(ld, 1)
            G[:, C + 1 :] = G[:, C : C + 1]
            self.G = G
        if events is not None and (S0 is None or tuple(events[0].shape) != (N, Cp, self.mk, K) or tuple(events[1].shape) != (N, Cp, self.mk, V)):
            raise ValueError("ChunkCore: events must be [N, Cp, mk, K] and [N, Cp, mk, V] with a start state")
        if slots is not None:  # the keys and the pairs' values made where ChunkCore stacks them (LR_EV_LINES "on")
            KKs, VVs = slots
            if not (lean or (lean is None and LR_LEAN)) or S0 is not None or Cp != C or not KKs.is_contiguous() or not VVs.is_contiguous() or \
                    tuple(KKs.shape) != (N, C, self.mk, K) or tuple(VVs.shape) != (N, C, self.mk, V) or \
                    not all(_same_view(x, KKs[:, :, i]) for i, x in enumerate([u for u, _ in low_rank] + [k for k, _ in pairs])) or \
                    not all(_same_view(v, VVs[:, :, self.E + p, V - v.shape[2] :]) for p, (_, v) in enumerate(pairs)):
                raise ValueError("ChunkCore: slots must be [N, C, mk, K] and [N, C, mk, K + V] holding the keys and the pairs' values as their slots (lean, [I | 0] start, Cp = C)")
        self.KK = events[0] if events is not None else slots[0] if slots is not None else torch.stack([pad(u) for u, _ in low_rank] + [pad(k) for k, _ in pairs], 2)  # [N, Cp, mk, K]
        self._ratio, self._qfac, self._ed, self._half = {}, {}, {}, {}
        if self.mode == "key" and not self.halves:
            self._key_setup()
        self.lean = LR_LEAN if lean is None else lean
        self._end = None  # the end state, where the fused kernel made it
        self._evflip = False  # read_rev: the events flipped in time (a read no kernel took)
        if not self.lean:
            if S0 is None or any(v.shape[2] != V for _, v in pairs):
                raise ValueError("ChunkCore: [I | 0] starts and [0 | v] values only with lean")
            Vin = torch.stack([pad(v) for _, v in pairs], 2) if pairs else None  # [N, Cp, P, V]
            r = self._solve([pad(w) for _, w in low_rank], Vin)
            self._r = r
            self.VV = torch.cat(([torch.stack(r, 2)] if r else []) + ([Vin] if Vin is not None else []), 2)  # [N, Cp, mk, V]
            return
        # the events' values [N, Cp, mk, V]: the low-rank reads (solved into it), then the pairs' values
        E = self.E
        if events is not None:
            self.VV = events[1]
            self._r = self._solve([pad(w) for _, w in low_rank]) if low_rank else []
            return
        VV = slots[1] if slots is not None else torch.empty([N, Cp, self.mk, V], dtype=self.dtype, device=self.device)

        def put(e, x):
            """x [N, n, w] (n <= Cp, w <= V) into event slot e as [0 | x] over its first n steps, zeros past them."""
            n, w = x.shape[1], x.shape[2]
            if w < V:
                VV[:, :, e, : V - w] = 0
            VV[:, :n, e, V - w :] = x
            if n < Cp:
                VV[:, n:, e] = 0

        for p, (_, v) in enumerate(pairs if slots is None else []):  # (slots: [0 | v] already there)
            put(E + p, v)
        self.VV = VV
        if fused is not None and S0 is None and E == 1 and self.P == 1 and self.mm is None and pairs[0][1].shape[2] == V - K and self._fused(fused, pad(low_rank[0][1])):
            self._r = [VV[:, :, 0]]
        else:
            self._r = self._solve([pad(w) for _, w in low_rank]) if low_rank else []

    def _fused(self, fused, W):
        """The reads (into VV's slot 0) and the end state by the fused transitions kernel; False where it has none for this core."""
        end = torch.empty([self.N, self.K, self.V], dtype=self.dtype, device=self.device)
        G = self.G if self.mode != "none" else None
        if not fused("transitions", self.mode, self.Cp, self.K, self.V - self.K, self.KK, W.contiguous(), self.VV, G, end):
            return False
        self._end = end
        return True

    def restart(self, S0):
        """This core (an aug core: start [I | 0], pair values [0 | v] of width K + V) from the start states S0
        [N, K, V]: the same keys, decays and cached ratios; the low-rank reads by linearity, r = r_I S0 + r_0."""
        K, E = self.K, self.E
        c = ChunkCore.__new__(ChunkCore)
        c.__dict__.update(self.__dict__)
        c.S0, c.V = S0, S0.shape[2]
        c._lo = {}
        c._end = None
        if not self.lean:
            c._r = [baddbmm(x[:, :, K:], x[:, :, :K], S0, self.m("state")) for x in self._r]
            c.VV = torch.cat(([torch.stack(c._r, 2)] if c._r else []) + ([self.VV[:, :, E:, K:]] if self.P else []), 2)
            return c
        VV = torch.empty([self.N, self.Cp, self.mk, c.V], dtype=self.dtype, device=self.device)
        for e, x in enumerate(self._r):
            VV[:, :, e] = baddbmm(x[:, :, K:], x[:, :, :K], S0, self.m("state"))
        if self.P:
            VV[:, :, E:] = self.VV[:, :, E:, K:]
        c.VV = VV
        c._r = [VV[:, :, e] for e in range(E)]
        return c

    def release(self):
        """Drops the cached decay ratios and operand copies (they are made again when a later read needs them)."""
        self._ratio, self._qfac, self._ed, self._half, self._lo = {}, {}, {}, {}, {}

    def m(self, kind):
        """The operand dtype of the products of a kind (LR_MM_PARTS): self.mm or None."""
        return self.mm if kind in LR_MM_PARTS else None

    def lo(self, name, kind, x):
        """x (this core's KK, VV, S0, ...) as an operand of a product of `kind`, cast once per core (bmm does the rest)."""
        if self.m(kind) is None:
            return x
        if name not in self._lo:
            self._lo[name] = x.to(self.mm)
        return self._lo[name]

    def _start_prod(self, Qs):
        """[N, rows, V]: Qs [N, rows, K] times the start state (with eye: [Qs | 0], no product)."""
        if self.S0 is None:
            return torch.nn.functional.pad(Qs, (0, self.V - self.K))
        return bmm(Qs, self.lo("S0", "state", self.S0), self.m("state"))

    @property
    def r(self):
        return [x[:, : self.C] for x in self._r]

    def _pad(self, x):
        if x.shape[1] == self.Cp:
            return x
        y = torch.zeros([x.shape[0], self.Cp] + list(x.shape[2:]), dtype=x.dtype, device=x.device)
        y[:, : x.shape[1]] = x
        return y

    def _tri(self, n, oq):
        """[n, n] bool: key slot c (time c + 1) is seen by query slot a (time a + oq): c < a + oq."""
        i = torch.arange(n, device=self.device)
        return i[None, :] < i[:, None] + oq

    # -- no decay / a scalar decay: one [Cp, Cp] ratio matrix per chunk ---------------------------------------
    def ratio(self, oq):
        if oq not in self._ratio:
            tri = self._tri(self.Cp, oq)
            if self.mode == "none":
                self._ratio[oq] = tri.to(self.dtype)[None]
            else:
                g = self.G[:, :, 0]
                d = g[:, oq : oq + self.Cp, None] - g[:, None, 1 : self.Cp + 1]
                self._ratio[oq] = torch.exp(torch.where(tri, d, float("-inf")))
        return self._ratio[oq]

    # -- a per-key decay: sub-blocks ------------------------------------------------------------------------
    def _key_setup(self):
        N, Cp, b, nb, K = self.N, self.Cp, self.b, self.nb, self.K
        G = self.G
        self.Gref = G[:, 0:Cp:b]  # [N, nb, K]: block j's reference time j b
        Gk = G[:, 1 : Cp + 1]  # [N, Cp, K]: the events' times
        slot = torch.arange(Cp, device=self.device)
        before = slot[None, :] < (torch.arange(nb, device=self.device) * b)[:, None]  # [nb, Cp]: key slot in an earlier block
        d = torch.where(before[None, :, :, None], self.Gref[:, :, None, :] - Gk[:, None, :, :], float("-inf"))
        # the keys seen from block j's reference: exp(G_ref - G_f) kk_f, zero unless f's block precedes j
        self.Ks = (torch.exp(d)[:, :, :, None, :] * self.KK[:, None]).reshape(N, nb, Cp * self.mk, K)

    def qfac(self, oq):
        """[N, Cp, 1, K]: exp(G_t - G_ref) of each query slot's time from its block's reference."""
        if oq not in self._qfac:
            b, Cp = self.b, self.Cp
            self._qfac[oq] = torch.exp(self.G[:, oq : oq + Cp] - torch.repeat_interleave(self.Gref, b, 1))[:, :, None]
        return self._qfac[oq]

    def ed(self, oq):
        """[N, nb, b(query), b(key), K]: exp(G_t - G_f) inside each block where the key is seen, else 0."""
        if oq not in self._ed:
            N, Cp, b, nb = self.N, self.Cp, self.b, self.nb
            gq = self.G[:, oq : oq + Cp].reshape(N, nb, b, 1, -1)
            gk = self.G[:, 1 : Cp + 1].reshape(N, nb, 1, b, -1)
            self._ed[oq] = torch.exp(torch.where(self._tri(b, oq)[None, None, :, :, None], gq - gk, float("-inf")))
        return self._ed[oq]

    # -- a per-key decay in halves -----------------------------------------------------------------------------
    def _levels(self):
        """The half lengths s = Cp/2, Cp/4, ..., 1 (np = Cp / 2s parents of two halves each)."""
        s = self.Cp // 2
        while s >= 1:
            yield s
            s //= 2

    def _half_keys(self, s):
        """[N, np, s, mk, K]: the first halves' events decayed to their boundary m: exp(G_m - G_f) kk_f."""
        key = ("k", s)
        if key not in self._half:
            N, Cp, K, mk = self.N, self.Cp, self.K, self.mk
            np_ = Cp // (2 * s)
            Gm = self.G[:, s:Cp:2 * s]  # [N, np, K]: the boundary times p 2s + s
            Gk = self.G[:, 1 : Cp + 1].view(N, np_, 2, s, K)[:, :, 0]  # the first halves' event times
            self._half[key] = self.KK.view(N, np_, 2, s, mk, K)[:, :, 0] * torch.exp(Gm[:, :, None] - Gk)[:, :, :, None]
        return self._half[key]

    def _half_qfac(self, s, oq):
        """[N, np, s, 1, K]: exp(G_t - G_m) of the second halves' query times from their boundary."""
        key = ("q", s, oq)
        if key not in self._half:
            N, Cp, K = self.N, self.Cp, self.K
            np_ = Cp // (2 * s)
            Gm = self.G[:, s:Cp:2 * s]
            Gq = self.G[:, oq : oq + Cp].reshape(N, np_, 2, s, K)[:, :, 1]
            self._half[key] = torch.exp(Gq - Gm[:, :, None])[:, :, :, None]
        return self._half[key]

    def _scores_halves(self, Q, oq):
        N, Cp, mk, K = self.N, self.Cp, self.mk, self.K
        mq = Q.shape[2]
        A = torch.zeros([N, Cp, mq, Cp, mk], dtype=self.dtype, device=self.device)
        for s in self._levels():
            np_ = Cp // (2 * s)
            q = Q.view(N, np_, 2, s, mq, K)[:, :, 1] * self._half_qfac(s, oq)  # [N, np, s, mq, K]
            blk = bmm(q.reshape(N * np_, s * mq, K), self.lo(("hk", s), "scores", self._half_keys(s)).reshape(N * np_, s * mk, K).transpose(1, 2), self.m("scores"))
            # parent p's block: query rows (p, second half), key columns (p, first half)
            dst = torch.diagonal(A.view(N, np_, 2, s, mq, np_, 2, s, mk), 0, 1, 5)[:, 1, :, :, 0]  # [N, s, mq, s, mk, np]
            dst.copy_(blk.view(N, np_, s, mq, s, mk).permute(0, 2, 3, 4, 5, 1))
        if oq == 1:  # a step's own event, seen after it (ratio 1)
            torch.diagonal(A, 0, 1, 3).copy_(torch.einsum("ncxk,ncyk->nxyc", Q, self.KK))
        return A.view(N, Cp * mq, Cp * mk)

    def _mix_halves(self, M, oq):
        N, Cp, mk, K = self.N, self.Cp, self.mk, self.K
        mq = M.shape[1] // Cp
        x = torch.zeros([N, Cp, mq, K], dtype=self.dtype, device=self.device)
        for s in self._levels():
            np_ = Cp // (2 * s)
            src = torch.diagonal(M.view(N, np_, 2, s, mq, np_, 2, s, mk), 0, 1, 5)[:, 1, :, :, 0]  # [N, s, mq, s, mk, np]
            m = src.permute(0, 5, 1, 2, 3, 4).reshape(N * np_, s * mq, s * mk)
            y = bmm(m, self.lo(("hk", s), "values", self._half_keys(s)).reshape(N * np_, s * mk, K), self.m("values")).view(N, np_, s, mq, K)
            x.view(N, np_, 2, s, mq, K)[:, :, 1] += y * self._half_qfac(s, oq)
        if oq == 1:
            x += torch.einsum("nxyc,ncyk->ncxk", torch.diagonal(M.view(N, Cp, mq, Cp, mk), 0, 1, 3), self.KK)
        return x

    # -- the two contractions with the events ---------------------------------------------------------------
    def scores(self, Q, oq):
        """[N, Cp mq, Cp mk]: (q . exp(G_t - G_f) kk_f) for every query row q (Q [N, Cp, mq, K]) and event f seen."""
        N, Cp, mk, K = self.N, self.Cp, self.mk, self.K
        mq = Q.shape[2]
        if self.halves:
            return self._scores_halves(Q, oq)
        if self.mode != "key":
            raw = bmm(Q.reshape(N, Cp * mq, K), self.lo("KK", "scores", self.KK).reshape(N, Cp * mk, K).transpose(1, 2), self.m("scores"))
            return (raw.view(N, Cp, mq, Cp, mk) * self.ratio(oq)[:, :, None, :, None]).view(N, Cp * mq, Cp * mk)
        b, nb = self.b, self.nb
        A = torch.matmul((Q * self.qfac(oq)).reshape(N, nb, b * mq, K), self.Ks.transpose(2, 3))  # between blocks
        A = A.view(N, nb, b, mq, nb, b, mk)
        X = Q.reshape(N, nb, b, 1, mq, K) * self.ed(oq)[:, :, :, :, None, :]  # [N, nb, a, c, mq, K]
        D = torch.einsum("njacxi,njcyi->njaxcy", X, self.KK.reshape(N, nb, b, mk, K))
        torch.diagonal(A, 0, 1, 4).add_(D.permute(0, 2, 3, 4, 5, 1))  # inside blocks
        return A.view(N, Cp * mq, Cp * mk)

    def mix(self, M, oq):
        """[N, Cp, mq, K]: sum_f M[q, f] exp(G_t - G_f) kk_f over the events f each query row sees (M [N, Cp mq, Cp mk])."""
        N, Cp, mk, K = self.N, self.Cp, self.mk, self.K
        mq = M.shape[1] // Cp
        if self.halves:
            return self._mix_halves(M, oq)
        if self.mode != "key":
            M = (M.view(N, Cp, mq, Cp, mk) * self.ratio(oq)[:, :, None, :, None]).view(N, Cp * mq, Cp * mk)
            return bmm(M, self.lo("KK", "values", self.KK).reshape(N, Cp * mk, K), self.m("values")).view(N, Cp, mq, K)
        b, nb = self.b, self.nb
        x = torch.matmul(M.view(N, nb, b * mq, Cp * mk), self.Ks).view(N, Cp, mq, K) * self.qfac(oq)  # between blocks
        Md = torch.diagonal(M.view(N, nb, b, mq, nb, b, mk), 0, 1, 4).permute(0, 5, 1, 2, 3, 4)  # [N, nb, a, mq, c, mk]
        inner = torch.einsum("njaxcy,njcyi->njaxci", Md, self.KK.reshape(N, nb, b, mk, K))
        x = x + (inner * self.ed(oq)[:, :, :, None]).sum(4).reshape(N, Cp, mq, K)  # inside blocks
        return x

    def _start(self, oq):
        """[N, Cp, 1, LW]: exp(G_t) of each slot's time (the start state's decay to it)."""
        return torch.exp(self.G[:, oq : oq + self.Cp])[:, :, None]

    def _fused_read_key(self, axis, oq, Q, mirror=0):
        """read()'s [N, Cp, mq, w] with a per-key decay by the fused readouts' per-key kernels (self.readout where its
        per_key attribute says it takes them: readout_key_launcher); None where it does not take this read. mirror:
        read_mirror's chunks per line (Q and the output in the line's reversed order), 0 none."""
        if self.readout is None or not getattr(self.readout, "per_key", False) or self.S0 is None or self.mm is not None:
            return None
        N, Cp, K, V = self.N, self.Cp, self.K, self.V
        EA, EB = (self.KK, self.VV) if axis == "key" else (self.VV, self.KK)
        out = torch.empty([N, Cp, Q.shape[2], V if axis == "key" else K], dtype=self.dtype, device=self.device)
        kw = {"mirror": mirror} if mirror else {}  # (launchers before the mirror argument take no such keyword)
        if not self.readout(axis, oq, "key", Cp, K, V, self.mk, Q.contiguous(), EA, EB, self.S0, self.G, out, **kw):
            return None
        return out

    def _key_read(self, Q, oq):
        N, Cp, K, V = self.N, self.Cp, self.K, self.V
        mq = Q.shape[2]
        Qs = Q * self._start(oq) if self.mode != "none" else Q
        y = self._start_prod(Qs.reshape(N, Cp * mq, K))
        return baddbmm(y, self.scores(Q, oq), self.lo("VV", "values", self.VV).reshape(N, Cp * self.mk, V), self.m("values")).view(N, Cp, mq, V)

    def _solve(self, W, Vin=None):
        """The low-rank reads r_e = S_{s-1}^T w_e by forward substitution (W: E tensors [N, Cp, K]); lean: into
        self.VV[:, :, :E] (the pairs' values already in its other slots), else from the pairs' values Vin [N, Cp, P, V]."""
        N, Cp, E, P, V = self.N, self.Cp, self.E, self.P, self.V
        Q = torch.stack(W, 2)  # [N, Cp, E, K]
        A = self.scores(Q, 0).view(N, Cp, E, Cp, self.mk)
        Qs = Q * self._start(0) if self.mode != "none" else Q
        rhs = self._start_prod(Qs.reshape(N, Cp * E, self.K))
        if P:
            vals = self.VV[:, :, E:] if self.lean else Vin
            rhs = baddbmm(rhs, A[..., E:].reshape(N, Cp * E, Cp * P), self.lo("Vin", "values", vals).reshape(N, Cp * P, V), self.m("values"))
        if self.lean and E == self.mk:  # no pairs: VV is R itself
            out = self.VV.view(N, Cp * E, V)
        elif self.lean:
            out = self.VV[:, :, 0] if E == 1 else None  # a strided view
        else:
            out = None
        R = unit_lower_solve(A[..., :E].reshape(N, Cp * E, Cp * E), rhs, out=out).view(N, Cp, E, V)  # A strictly lower
        if self.lean and out is None:
            self.VV[:, :, :E] = R
        if self.lean:
            return [self.VV[:, :, e] for e in range(E)]
        return [R[:, :, e] for e in range(E)]

    def read(self, axis, after, vecs):
        """Readouts of the state before (after=False) or after each step: axis "key" y = S^T q (vecs [N, C, K], out
        [N, C, V]) or "value" x = S z (vecs [N, C, V], out [N, C, K]); one output per vector."""
        if not vecs:
            return []
        out = self.read_stacked(axis, after, torch.stack([self._pad(v) for v in vecs], 2))
        return [out[:, : self.C, i] for i in range(len(vecs))]

    def read_stacked(self, axis, after, Q):
        """read() with the vectors already stacked, Q [N, C or Cp, mq, w] (no stack copy; a view where it is one): the
        outputs as one tensor [N, Cp, mq, K or V]."""
        oq = 1 if after else 0
        Q = self._pad(Q)
        out = self._fused_read_key(axis, oq, Q) if self.mode == "key" else self._fused_read(axis, oq, Q)
        if out is None and axis == "key":
            out = self._key_read(Q, oq)
        elif out is None:
            N, Cp, K, V, mq = self.N, self.Cp, self.K, self.V, Q.shape[2]
            if self.S0 is None:  # [I | 0]: x = z's first K entries
                x = Q[..., :K]
            else:
                x = bmm(Q.reshape(N, Cp * mq, V), self.lo("S0", "state", self.S0).transpose(1, 2), self.m("state")).view(N, Cp, mq, K)
            if self.mode != "none":
                x = x * self._start(oq)
            M = bmm(Q.reshape(N, Cp * mq, V), self.lo("VV", "values", self.VV).reshape(N, Cp * self.mk, V).transpose(1, 2), self.m("values"))
            out = x + self.mix(M, oq)
        return out

    def read_rev(self, axis, after, Q):
        """read_stacked for a core whose steps run backwards over its tensors (LR_REV_READ "kernel"): its events (KK, VV,
        given as `events`) and Q [N, Cp, mq, w] stored in forward time, its step j their row Cp - 1 - j, its log decays in its
        own (reversed) order; the outputs [N, Cp, mq, K or V] in forward time. The fused readouts read the rows backwards
        (their rev argument; no copies); where they do not take the read, the events are flipped (once) and Q and the
        outputs flipped around read_stacked."""
        if Q.shape[1] != self.Cp or self.mode == "key":
            raise ValueError("ChunkCore.read_rev: Q of Cp = %d steps and no per-key decay (Q %s, mode %s)" % (self.Cp, list(Q.shape), self.mode))
        if not self._evflip:
            out = self._fused_read(axis, 1 if after else 0, Q, rev=True)
            if out is not None:
                return out
            self.KK, self.VV = torch.flip(self.KK, [1]), torch.flip(self.VV, [1])
            self._evflip = True
        return torch.flip(self.read_stacked(axis, after, torch.flip(Q, [1])), [1])

    def read_mirror(self, axis, after, Q, nC):
        """read_stacked for a core over a reversed timeline (the chain's adjoint, rows [B H nC, C] of lines of nC chunks)
        whose queries Q [N, C, mq, w] and outputs are stored in forward time: this core's row n step j is their row
        n - n % nC + nC - 1 - n % nC, step C - 1 - j (LR_CHAIN_REV "kernel"). The per-key readouts read and write them so
        (their mirror argument; no copies); elsewhere Q and the outputs are flipped around read_stacked. Returns
        [N, C, mq, K or V] in forward time."""
        C = self.C
        if Q.shape[1] != C or Q.shape[0] % nC:
            raise ValueError("ChunkCore.read_mirror: Q %s, not [N, C = %d, mq, w] with N a multiple of %d" % (list(Q.shape), C, nC))
        if self.mode == "key" and self.Cp == C:
            out = self._fused_read_key(axis, 1 if after else 0, Q, mirror=nC)
            if out is not None:
                return out

        def flip(x):
            return torch.flip(x.reshape([x.shape[0] // nC, nC * C] + list(x.shape[2:])), [1]).reshape(x.shape)
        return flip(self.read_stacked(axis, after, flip(Q))[:, :C])

    def _fused_read(self, axis, oq, Q, rev=False):
        """read()'s [N, Cp, mq, w] by the fused readouts kernel (self.readout); None where it does not take this read. Q may
        be a view (the launcher copies what its kernel cannot read as it is); rev: read_rev's backwards read."""
        if self.readout is None or self.S0 is None or self.mode == "key" or self.mm is not None:
            return None
        N, Cp, K, V = self.N, self.Cp, self.K, self.V
        EA, EB = (self.KK, self.VV) if axis == "key" else (self.VV, self.KK)
        out = torch.empty([N, Cp, Q.shape[2], V if axis == "key" else K], dtype=self.dtype, device=self.device)
        G = self.G if self.mode != "none" else None
        kw = {"rev": True} if rev else {}  # (launchers before the rev argument take no such keyword)
        if not self.readout(axis, oq, self.mode, Cp, K, V, self.mk, Q, EA, EB, self.S0, G, out, **kw):
            return None
        return out

    def end(self):
        """[N, K, V]: the state after the chunk's C steps."""
        if self._end is not None:
            return self._end
        N, Cp, K, V, mk = self.N, self.Cp, self.K, self.V, self.mk
        KK = self.lo("KK", "end", self.KK)
        S = self.S0
        if self.mode != "none":
            gC = self.G[:, Cp : Cp + 1]  # [N, 1, LW]
            KK = self.KK * torch.exp(gC - self.G[:, 1 : Cp + 1])[:, :, None]
            if S is None:  # [I | 0] decayed: diag(exp(G_C)) in the first K columns
                S = torch.nn.functional.pad(torch.diag_embed(torch.exp(gC[:, 0]).expand(N, K)), (0, V - K))
            else:
                S = S * torch.exp(gC).transpose(1, 2)
        elif S is None:
            S = torch.nn.functional.pad(torch.eye(K, dtype=self.dtype, device=self.device).expand(N, K, K), (0, V - K))
        return baddbmm(S, KK.reshape(N, Cp * mk, K).transpose(1, 2), self.lo("VV", "end", self.VV).reshape(N, Cp * mk, V), self.m("end"))


def lowrank_backward(n, run, B, T, state_shape, given, S0, cot_outputs, cot_state, inputs, params, outputs, dtype, device, chunk=None, decay_way=None, pass_way=None, read_way=None, aug_way=None, can_chunk=None, key_way=None, layout=None, share=None, mm=None, lean=None, fused=None, readout=None, bwd_way=None, passer=None, wy_kern=None, post_binds=None, copies=None, merge=None, key_bwd=None, rev_read=None, chain_rev=None, ev_lines=None, delta_kern=None, fwd_states=None, delta_glue=None):
    """Gradients of the forward's inputs, params and the matrix state's initial value through the low-rank chain.

    n: the chain's names (<Model>.torch.json "chunked"."lowRank"); run(part, dims, inputs, initial_state, B, T)
    -> (outputs, final states) runs plan chain:<part> (dims None: the model's dims and params, the stateless parts
    over [B*T, 1]; else the generated models' {H, K, V} or the decay's {H, K}); given: the forward's inputs
    [B, T, ...]; S0: the matrix state's initial value [B, *state_shape] or None (the declared value); cot_outputs:
    {output: dL/d output or None}; cot_state: dL/d(final state) or None; inputs / params / outputs: [(name,
    per-step shape)]; chunk: micro-steps per folded chunk (None: LR_CHUNK); decay_way: "plan" / "cumsum" (None: LR_DECAY);
    pass_way: "plan" / "matmul" (None: LR_PASS); read_way: "plan" / "matmul" (None: LR_READ); aug_way: "plan" / "matmul"
    / "auto" (None: LR_AUG); can_chunk(part, dims, b, t): whether plan chain:<part> runs its chunked form there (None:
    assumed; "auto" asks it); key_way: "halves" / "blocks", how ChunkCore forms a per-key decay (None: LR_KEY);
    layout: "heads" / "tokens", the timeline's layout (None: LR_LAYOUT); share: whether the readouts reuse the
    transitions' ChunkCore (None: LR_SHARE); mm: the dtype of ChunkCore's product operands (None: dtype; see LR_MM and
    mm_dtype); lean: LR_LEAN's fewer copies (None: LR_LEAN); fused: the fused chunk transitions' launcher (fused_launcher;
    None: ChunkCore's torch ops); readout: the fused readouts' launcher (readout_launcher; None: ChunkCore's torch ops);
    bwd_way: "chain" / "wy", the backward after the forward's readouts (None: LR_BWD; "wy" where it applies); passer:
    the walks' launcher (pass_launcher; None: torch products); wy_kern: the chunk-state backward's per-chunk kernels
    (wy_launcher; None: torch products); post_binds: the names post's backward plan binds (plan_binds; LR_Y_READ
    "bound"), or None (all): where it binds no readout's y, the forward's readouts y are not read again (read_way
    "matmul") and post's backward gets an unwritten buffer for each (on CPU 1e30, which would show if read); copies:
    "lean" / "old", LR_COPIES (None: LR_COPIES); merge: "decay" / "off", LR_MERGE (None: LR_MERGE; "decay" only where
    "wy" runs); key_bwd: "chain" / "wy", whether "wy" also takes a per-key decay (None: LR_BWD_KEY); rev_read: "flip" /
    "kernel", how "wy"'s reversed chunks are read with copies "lean" (None: LR_REV_READ); chain_rev: "flip" / "kernel", how
    the chain's adjoint reads its reversed timeline with a per-key decay (None: LR_CHAIN_REV); ev_lines: "on" / "off", the
    lines as slots of the stacks that read them where "wy" runs (None: LR_EV_LINES); bwd_way "delta": the token-aligned
    delta backward (seqc_delta_bwd) where delta_pattern holds, else "wy" ("auto": "delta" only where delta_kern takes the
    shape); delta_kern: its kernels (seqc_delta_bwd.delta_launcher; None: torch ops); delta_glue: "off" / "bf16",
    LR_DELTA_GLUE (None: LR_DELTA_GLUE; "bf16" where "delta" runs on kernels taking bf16 per-token inputs and `run` takes
    out_io "bf16", its attribute bf16_out).
    fwd_states: (S, SF) the forward's chunk start states and final state (LR_FWD_STATES; seqc_delta_bwd.delta_backward's
    states, where "delta" runs) or None.
    Returns ({input: grad}, {param: grad}, dS0)."""
    chunk = LR_CHUNK if chunk is None else chunk
    read_way, aug_way, key_way, layout = read_way or LR_READ, aug_way or LR_AUG, key_way or LR_KEY, layout or LR_LAYOUT
    share = LR_SHARE if share is None else share
    lean = LR_LEAN if lean is None else lean
    bwd_way = bwd_way or LR_BWD
    copies = copies or LR_COPIES
    if copies not in ("lean", "old"):
        raise ValueError("copies %r: one of lean, old" % (copies,))
    lean_copies = copies == "lean"
    rev_read = rev_read or LR_REV_READ
    if rev_read not in ("flip", "kernel"):
        raise ValueError("rev_read %r: one of flip, kernel" % (rev_read,))
    chain_rev = chain_rev or LR_CHAIN_REV
    if chain_rev not in ("flip", "kernel"):
        raise ValueError("chain_rev %r: one of flip, kernel" % (chain_rev,))
    ev_lines = ev_lines or LR_EV_LINES
    if ev_lines not in ("on", "off"):
        raise ValueError("ev_lines %r: one of on, off" % (ev_lines,))
    if bwd_way not in ("chain", "wy", "delta", "auto"):
        raise ValueError("bwd_way %r: one of chain, wy, delta, auto" % (bwd_way,))
    key_bwd = key_bwd or LR_BWD_KEY
    if key_bwd not in ("chain", "wy"):
        raise ValueError("key_bwd %r: one of chain, wy" % (key_bwd,))
    for what, way in (("layout", layout), ("read_way", read_way), ("aug_way", aug_way), ("pass_way", pass_way or LR_PASS), ("decay_way", decay_way or LR_DECAY), ("key_way", key_way)):
        ways = ("plan", "cumsum") if what == "decay_way" else ("plan", "matmul", "auto") if what == "aug_way" else ("blocks", "halves") if what == "key_way" else ("heads", "tokens") if what == "layout" else ("plan", "matmul")
        if way not in ways:
            raise ValueError("%s %r: one of %s" % (what, way, ", ".join(ways)))
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError("chunk %r: a chunk is a positive number of micro-steps" % (chunk,))
    cd = _chunked.chain_dims(n, state_shape)
    H, K, V = cd["H"], cd["K"], cd["V"]
    KV = K + V
    steps, readouts = n["steps"], n["readouts"]
    P, E, R = n["P"], n["E"], n["R"]
    merge = merge or LR_MERGE
    if merge not in ("decay", "off"):
        raise ValueError("merge %r: one of decay, off" % (merge,))
    merged = []  # (ld name, [w names]): the decay steps folded into the next (LR_MERGE "decay", only where wy or delta runs)
    delta = False
    if bwd_way == "auto" and not (delta_kern is not None and delta_kern.has(n["decay"], chunk, K, V, getattr(delta_kern, "tin", None) or dtype)):
        bwd_way = "wy"
    if bwd_way in ("delta", "auto"):  # the token-aligned delta backward where the (merged) chain is one delta step a token
        st_, rd_, mg_ = merge_decay_steps(steps, readouts) if merge == "decay" and n["decay"] == "scalar" else (steps, readouts, [])
        delta = delta_pattern(st_, rd_, n["decay"]) and post_binds is not None and not any(ro["y"] in post_binds for ro in rd_)
        if delta:
            steps, readouts, merged = st_, rd_, mg_
        else:
            bwd_way = "wy"
    if merge == "decay" and bwd_way == "wy" and n["decay"] == "scalar" and E >= 1 and read_way == "matmul" and aug_way in ("auto", "matmul") and lean and share:
        steps, readouts, merged = merge_decay_steps(steps, readouts)
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
    if aug_way == "auto":
        chunks = can_chunk is None or all(can_chunk(p, {"H": H, "K": K, "V": KV}, B * nC, C) for p in ("augF", "augA"))
        aug_way = "plan" if n["decay"] == "key" and key_way == "blocks" and chunks else "matmul"
    wy = bwd_way == "wy" and (n["decay"] != "key" or key_bwd == "wy") and E >= 1 and read_way == "matmul" and aug_way == "matmul" and lean and share
    y_bound = post_binds is None or any(ro["y"] in post_binds for ro in readouts)
    if merged and not (wy or delta):
        raise ValueError("lowrank_backward: merged decay steps without the chunk-state backward")
    delta_glue = delta_glue or LR_DELTA_GLUE
    if delta_glue not in ("off", "bf16"):
        raise ValueError("delta_glue %r: one of off, bf16" % (delta_glue,))
    # LR_DELTA_GLUE "bf16": the delta kernels' per-token tensors written in bf16 by the parts that make them (below)
    low_glue = delta and delta_glue == "bf16" and getattr(run, "bf16_out", False) and delta_kern is not None and \
        getattr(delta_kern, "tin", None) == torch.bfloat16 and delta_kern.has(n["decay"], chunk, K, V, torch.bfloat16)

    def zeros(shape):
        return torch.zeros(shape, dtype=dtype, device=device)

    heads = layout == "heads"
    # LR_EV_LINES "on": the lines as slots of the stacks that read them (the aug core's keys / [0 | v] values, wy's events)
    slot_lines = ev_lines == "on" and wy and lean_copies and heads and n["decay"] != "key" and (P or E)
    if slot_lines:
        NR = B * H * nC
        aug_slots = (torch.empty([NR, C, E + P, K], dtype=dtype, device=device), torch.empty([NR, C, E + P, KV], dtype=dtype, device=device))
        aug_slots[1][:, :, E:, :K] = 0  # the pairs' [0 | v] zeros (ChunkCore's put)
        ev_slots = (torch.empty([NR, C, R + E, K], dtype=dtype, device=device), torch.empty([NR, C, R + E, V], dtype=dtype, device=device))
        dy_slot = wy_kern is None or getattr(wy_kern, "dy_stride", False)  # (a "pre" kernel that reads DY contiguous only: its own line)

    def slot(buf, i, lo=0):
        """Slot i of a stack [B H nC, C, m, w'] (its columns lo:) as a line [B, H, Lp, w] (a view)."""
        x = buf[:, :, i, lo:]
        return x.view(B, H, Lp, x.shape[2])

    def line(w, full=False, into=None):
        """A timeline line: [B, H, Lp, w] (layout "heads") or [B, Lp, H, w] ("tokens"); zeros, or with full (every
        token micro-step is written after) and LR_COPIES "lean" zeros in the identity step and the padding only. into: the
        line's memory (a view, LR_EV_LINES), zeroed as the new line would be."""
        if not (full and lean_copies):
            if into is not None:
                return into.zero_()
            return zeros([B, H, Lp, w] if heads else [B, Lp, H, w])
        out = torch.empty([B, H, Lp, w] if heads else [B, Lp, H, w], dtype=dtype, device=device) if into is None else into
        ends = out[:, :, 0] if heads else out[:, 0]
        ends.zero_()
        if 1 + T * N < Lp:
            (out[:, :, 1 + T * N :] if heads else out[:, 1 + T * N :]).zero_()
        return out

    def micro(a):
        """The token micro-steps of a timeline line as a view [B, T, N, H, w] (step 0, the identity, left out)."""
        if heads:
            return a[:, :, 1 : 1 + T * N].view(B, H, T, N, a.shape[3]).permute(0, 2, 3, 1, 4)
        return a[:, 1 : 1 + T * N].view(B, T, N, H, a.shape[3])

    def read_off(r):
        """Readout r of token t reads the state after timeline step t N + read_off(r)."""
        after = readouts[r]["after"]
        return base[after] if after < len(steps) else N

    def at_reads(a, r):
        """[B, T, H, w]: the timeline line a at readout r's steps (a strided slice)."""
        o = read_off(r)
        if heads:
            return a[:, :, o : o + (T - 1) * N + 1 : N].permute(0, 2, 1, 3)
        return a[:, o : o + (T - 1) * N + 1 : N]

    def rev(a, shift=0):
        """The reversed timeline (tau = L - 1 - m) of a line, read `shift` steps later. "tokens": zero past the end and in
        the padding. "heads": the reversed timeline padded at its front by Lp - L identity steps (the flip of the whole
        line; the adjoint's state passes them unchanged), so rev is its own inverse and one flip."""
        if heads:
            if shift == 0:
                return torch.flip(a, [2])
            out = torch.empty_like(a)
            out[:, :, :shift] = 0
            out[:, :, shift:] = torch.flip(a[:, :, shift:], [2])
            return out
        out = torch.zeros_like(a)
        out[:, shift:L] = torch.flip(a[:, shift:L], [1])
        return out

    def fold(t):
        """Lines as [B nC, C, H, w] (the plans' folded runs): every chunk a batch row of its own."""
        if heads:
            return {k: v.permute(0, 2, 1, 3).reshape(B * nC, C, H, v.shape[3]) for k, v in t.items()}
        return {k: v.reshape(B * nC, C, H, v.shape[3]) for k, v in t.items()}

    def lines(outs):
        """A folded run's outputs [B nC, C, H, w] back as lines."""
        if heads:
            return {k: v.reshape(B, Lp, H, -1).permute(0, 2, 1, 3).contiguous() for k, v in outs.items()}
        return {k: v.reshape(B, Lp, H, -1) for k, v in outs.items()}

    def rows(a):
        """A line as ChunkCore's rows [B nC H, C, w] ("tokens"; a permuted copy) or [B H nC, C, w] ("heads"; a view)."""
        if heads:
            return a.reshape(B * H * nC, C, a.shape[3])
        return a.reshape(B * nC, C, H, a.shape[3]).permute(0, 2, 1, 3).reshape(B * nC * H, C, a.shape[3])

    def unrows(x):
        """ChunkCore's rows back as a line."""
        if heads:
            return x.reshape(B, H, Lp, x.shape[2])
        return x.reshape(B * nC, H, C, x.shape[2]).permute(0, 2, 1, 3).reshape(B, Lp, H, x.shape[2])

    def by_heads(x):
        """[B, nC, H, ...] as a view [B, H, nC, ...]."""
        return x.permute(0, 2, 1, *range(3, x.dim()))

    def tok_states(S):
        """Chunk start states in the rows' order as the plans' [B nC, H, K, V]."""
        if heads:
            return S.reshape(B, H, nC, K, V).permute(0, 2, 1, 3, 4).reshape(B * nC, H, K, V)
        return S

    def core_of(ins, S_starts, pairs, eye=None, slots=None):
        """ChunkCore over every chunk of a timeline (ins: its lines; pairs input pairs x_k<p>/x_v<p>) from its start states
        (None: [I | 0] of width eye; the chunk transitions, fused where `fused` has a kernel for them); slots: the lines'
        stacks (LR_EV_LINES)."""
        ld = rows(ins["x_ld"]) if "x_ld" in ins else None
        S = S_starts.reshape(B * nC * H, S_starts.shape[-2], S_starts.shape[-1]) if S_starts is not None else None
        return ChunkCore(S, ld, [(rows(ins["x_u%d" % e]), rows(ins["x_w%d" % e])) for e in range(E)],
                         [(rows(ins["x_k%d" % p]), rows(ins["x_v%d" % p])) for p in range(pairs)], key_way=key_way, mm=mm, eye=eye, lean=lean,
                         fused=fused if eye is not None else None, readout=readout, slots=slots)

    def readouts_of(part, cc, ins):
        """Part `part`'s outputs (LR_READS) from ChunkCore cc, as lines; reads of one axis and side in one product."""
        out = {}
        specs = LR_READS[part](P, E, R)
        for axis in ("key", "value"):
            for after in (False, True):
                sel = [sp for sp in specs if sp[2] == axis and sp[3] == after]
                for sp, o in zip(sel, cc.read(axis, after, [rows(ins[sp[1]]) for sp in sel])):
                    out[sp[0]] = unrows(o)
        cc.release()
        return out

    def canon(S):
        return torch.permute(S, perm).reshape(B, H, K, V)

    def pointwise(part, ins, out_io="f32"):
        """The stateless parts over [B*T, 1] (one step over every token at once); out_io "bf16": the outputs the delta
        kernels read in bf16 (the run's "-bf16out" twins, where it has them; LR_DELTA_GLUE)."""
        folded = {k: v.reshape([B * T, 1] + list(v.shape[2:])) for k, v in ins.items() if v is not None}
        kw = {"out_io": out_io} if out_io != "f32" else {}
        return {k: v.reshape([B, T] + list(v.shape[2:])) for k, v in run(part, None, folded, {}, B * T, 1, **kw)[0].items()}

    # the timeline's inputs from prep's outputs; prep's copies of inputs (prepAliases, compiler/backends/torch/
    # chain-copies-lowrank.ts: DeltaNet's w = k, v; all of RWKV-7's) are the given inputs themselves (views, bf16 where
    # given so: every reader below converts them where it needs the glue's dtype), their adjoints added to the inputs'
    # gradients in finish (no prep or prep's backward runs where prep is all copies)
    aliases = n.get("prepAliases") or {}
    low_io = "bf16" if low_glue else "f32"
    prep = dict(pointwise("prep", given, low_io)) if n["prepOutputs"] else {}
    for o, src in aliases.items():
        prep[o] = given[src]
    prep_all = list(n["prepOutputs"]) + [o for o in aliases if o not in n["prepOutputs"]]

    def bar_zeros(o):  # a zero adjoint of prep output o, in the glue's dtype
        return zeros(prep[o].shape)
    merge_scale = {}  # exp(ld) of each merged decay step, for w' here and dw below
    merge_w = {}  # LR_DELTA_GLUE "bf16": the merged steps' w before the scaling (w' is bf16 then)
    if merged:  # the merged steps' low-rank queries w' = exp(ld) w (the decay's step folded into theirs)
        for ldn, wns in merged:
            a = merge_scale[ldn] = torch.exp(prep[ldn].reshape(B, T, -1, H, 1).to(dtype))
            for wn in wns:
                w = prep[wn].reshape(B, T, -1, H, K)
                if low_glue:  # written in bf16 by its one product (the kernels' dtype)
                    merge_w[wn] = prep[wn]
                    prep[wn] = torch.mul(w, a, out=torch.empty(list(w.shape), dtype=torch.bfloat16, device=w.device)).reshape(prep[wn].shape)
                else:
                    prep[wn] = (w * a).reshape(prep[wn].shape)

    def per_step(name, w):
        """Prep output `name` as [B, T, loop index, H, w]."""
        return prep[name].reshape(B, T, -1, H, w)

    def post_backward(ys, out_io="f32"):
        """Post's backward from the readouts ys {r: y [B, T, H, V]} (those it reads) and the outputs' cotangents; out_io
        as pointwise's."""
        post_in = dict(given)
        for r, ro in enumerate(readouts):
            if r in ys:
                post_in[ro["y"]] = ys[r]
            elif getattr(device, "type", None) == "cuda":  # no kernel of post's backward reads it: unwritten
                post_in[ro["y"]] = torch.empty([B, T, H, V], dtype=dtype, device=device)
            else:  # elsewhere (the tests' interpreter) 1e30, which would show if read
                post_in[ro["y"]] = zeros([B, T, H, V]) + 1e30
        for name, shape in outputs:
            g = cot_outputs.get(name)
            post_in[n["postBw"]["outputBar"][name]] = g if g is not None else zeros([B, T] + list(shape))
        return pointwise("postBw", post_in, out_io)

    def post_copies(ro):
        """LR_DELTA_GLUE "bf16": post's backward's outputs without running it, where its names (chain-copies-lowrank.ts)
        say each is a copy of one of its inputs or a literal zero and readout ro's adjoint is a copy (the delta family's
        y0__bar = o__bar: dY the outputs' cotangent as given, bf16 in a bf16 step); {output: tensor} of the copies (the
        zeros no piece of any sum), else None."""
        pb = n["postBw"]
        cp, zs = pb.get("copies") or {}, set(pb.get("zeros") or ())
        outs = set(pb["inputBar"].values()) | set(pb["paramBar"].values())
        if pb["inputBar"].get(ro["y"]) not in cp or not outs <= set(cp) | zs:
            return None
        cot = {pb["outputBar"][name]: (name, shape) for name, shape in outputs}
        got = {}
        for o, src in cp.items():
            if src in cot:
                g = cot_outputs.get(cot[src][0])
                got[o] = g if g is not None else zeros([B, T] + list(cot[src][1]))
            elif src in given:
                got[o] = given[src]
            else:
                return None
        return got

    def finish(bars, G_last, post_g):
        """The merged decay steps' adjoints mapped back, dS_0 in the model's layout, prep's backward and the sums."""
        if merged:  # back through w' = exp(ld) w: dw = exp(ld) dw', d ld += w' . dw'
            for ldn, wns in merged:
                a = merge_scale[ldn]
                bl = bars[ldn].view(B, T, -1, H, 1)
                for wn in wns:
                    if bars[wn].dtype != dtype:  # (dw' in bf16, seqc_delta_bwd.ADJ_OUT: the products below in float32)
                        bars[wn] = bars[wn].to(dtype)
                    bw = bars[wn].view(B, T, -1, H, K)
                    if wn in merge_w:  # (w' . dw' = exp(ld) (w . dw'), w as given)
                        bl += a * (merge_w[wn].reshape(B, T, -1, H, K) * bw).sum(4, keepdim=True)
                    else:
                        bl += (prep[wn].reshape(B, T, -1, H, K) * bw).sum(4, keepdim=True)
                    bw *= a
        # dS_0: the adjoint after the identity step, in the model's layout
        inv = [perm.index(a) for a in range(len(perm))]
        dS0 = torch.permute(G_last.reshape([B] + [state_shape[a - 1] for a in perm[1:]]), inv)
        prep_in = dict(given)
        for o in n["prepOutputs"]:
            prep_in[n["prepBw"]["outputBar"][o]] = bars[o]
        # (LR_DELTA_GLUE "bf16": the inputs' adjoints that are whole gradients written in bf16, its "-bf16out" twins)
        prep_g = pointwise("prepBw", prep_in, low_io) if n["prepOutputs"] else {}
        # (LR_DELTA_GLUE "bf16": an input's pieces summed into bf16, the gradient as returned, where every input is bf16)
        low = torch.bfloat16 if low_glue and all(given[nm].dtype == torch.bfloat16 for nm, _ in inputs if given.get(nm) is not None) else None
        gin, gpar = _chunked.sum_pieces([(post_g, n["postBw"]), (prep_g, n["prepBw"])], B, T, inputs, params, zeros, [(bars.get(o), src) for o, src in aliases.items()], low=low)
        return gin, gpar, dS0

    if S0 is None:
        S0 = zeros([B] + list(state_shape)) + n["stateInit"]
    if delta:  # LR_BWD "delta": prep's per-token outputs in, their adjoints out (no timeline)
        st, ro = steps[0], readouts[0]
        lr, pr, ldn = st["lowRank"][0], st["inputs"][0], st.get("ld")
        post_g = post_copies(ro) if low_glue else None
        if post_g is None:
            post_g = post_backward({}, low_io)
        dY = post_g[n["postBw"]["inputBar"][ro["y"]]].reshape(B, T, H, V)
        with _section("delta"):
            grads = _delta.delta_backward(
                per_step(lr["u"], K)[:, :, 0], per_step(lr["w"], K)[:, :, 0], per_step(pr["k"], K)[:, :, 0], per_step(pr["v"], V)[:, :, 0],
                per_step(ro["q"], K)[:, :, 0], (per_step(ldn["name"], K)[:, :, 0] if ldn["perKey"] else per_step(ldn["name"], 1)[:, :, 0, :, 0]).to(dtype) if ldn else None, canon(S0),
                dY, canon(cot_state) if cot_state is not None else None, C=chunk, kern=delta_kern, passer=passer if heads else None,
                lower_solve=unit_lower_solve, upper_t_solve=_wy.upper_t_solve, states=fwd_states and (fwd_states[0], canon(fwd_states[1])))
        bars = {}
        for name, g in zip([lr["u"], lr["w"], pr["k"], pr["v"], ro["q"]] + ([ldn["name"]] if ldn else []), grads[:6]):
            g = g.reshape(prep[name].shape)
            if name in bars:  # (one prep output in two roles; bf16 pieces, seqc_delta_bwd.ADJ_OUT: added in float32)
                bars[name] = bars[name].to(dtype) + g.to(dtype)
            else:
                bars[name] = g.contiguous()
        for o in prep_all:
            if o not in bars:
                bars[o] = bar_zeros(o)
        return finish(bars, grads[6], post_g)

    def gather(pick, w, into=None):
        out = line(w, full=all(pick(st) for st in steps), into=into)
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
        ld = line(LW, full=all(st.get("ld") for st in steps))
        mv = micro(ld)
        for s, st in enumerate(steps):
            d = st.get("ld")
            if d:
                src = per_step(d["name"], K if d["perKey"] else 1)
                for c in range(st["count"]):
                    mv[:, :, base[s] + c] = src[:, :, c]  # a scalar decay broadcasts over a per-key line
        fwd["x_ld"] = ld
    for e in range(E):
        fwd["x_u%d" % e] = gather(lambda st: st["lowRank"][e]["u"] if e < len(st["lowRank"]) else None, K, slot(aug_slots[0], e) if slot_lines else None)
        fwd["x_w%d" % e] = gather(lambda st: st["lowRank"][e]["w"] if e < len(st["lowRank"]) else None, K)
    for p in range(P):
        fwd["x_k%d" % p] = gather(lambda st: st["inputs"][p]["k"] if p < len(st["inputs"]) else None, K, slot(aug_slots[0], E + p) if slot_lines else None)
        fwd["x_v%d" % p] = gather(lambda st: st["inputs"][p]["v"] if p < len(st["inputs"]) else None, V, slot(aug_slots[1], E + p, K) if slot_lines else None)
    for r, ro in enumerate(readouts):
        q = line(K, full=N == 1, into=slot(ev_slots[0], r) if slot_lines else None)
        at_reads(q, r)[:] = per_step(ro["q"], K)[:, :, 0]
        fwd["x_q%d" % r] = q

    # chunk start states of a timeline: the chunk transitions [A | B] (aug, folded, from [I | 0]), then the pass
    eye = torch.eye(K, dtype=dtype, device=device)

    def chunk_states(part, ins, pairs, S0c):
        if lean and aug_way == "matmul":  # [I | 0] and the [0 | v] values folded into ChunkCore
            with _section(part):
                cc = core_of(ins, None, pairs, eye=KV, slots=aug_slots if slot_lines and part == "augF" else None)
                fin = cc.end()
                fin = fin.reshape(B, H, nC, K, KV) if heads else by_heads(fin.reshape(B, nC, H, K, KV))  # [B, H, nC, K, KV]
                if not share:
                    cc = None
            return chunk_pass(part, fin, S0c, cc)
        a = dict(ins)
        a["x_n"] = line(K)
        for p in range(pairs):
            v = line(KV)
            v[:, :, :, K:] = ins["x_v%d" % p]
            a["x_v%d" % p] = v
        init = zeros([B * nC, H, K, KV])
        init[:, :, :, :K] = eye
        cc = None
        with _section(part):
            if aug_way == "matmul":
                cc = core_of(a, init, pairs)
                fin = cc.end()
                fin = fin.reshape(B, H, nC, K, KV) if heads else by_heads(fin.reshape(B, nC, H, K, KV))  # [B, H, nC, K, KV]
                if not share:
                    cc = None
            else:
                fin = by_heads(run(part, {"H": H, "K": K, "V": KV}, fold(a), {"S": init}, B * nC, C)[1]["S"].reshape(B, nC, H, K, KV))
        return chunk_pass(part, fin, S0c, cc)

    trans = {}

    def chunk_pass(part, fin, S0c, cc):
        """The chunk start states from the transitions fin [B, H, nC, K, K + V] and the first start state."""
        trans[part] = fin
        with _section("pass" + part[3:]):
            if (pass_way or LR_PASS) == "matmul":
                if passer is not None and heads:
                    starts = torch.empty([B, H, nC, K, V], dtype=dtype, device=device)
                    last = torch.empty([B, H, K, V], dtype=dtype, device=device)
                    if passer("fwd", fin, fin[..., K:], S0c.contiguous(), starts, last):
                        return starts.reshape(B * H * nC, K, V), last, cc
                shp = [B, H, nC, K, V] if heads else [B, nC, H, K, V]
                starts = torch.empty(shp, dtype=dtype, device=device) if lean else zeros(shp)  # every chunk's written
                S = S0c
                for c in range(nC):
                    if heads:
                        starts[:, :, c] = S
                    else:
                        starts[:, c] = S
                    S = torch.matmul(fin[:, :, c, :, :K], S) + fin[:, :, c, :, K:]
                return (starts.reshape(B * H * nC, K, V) if heads else starts.reshape(B * nC, H, K, V)), S, cc
            fin = by_heads(fin)  # [B, nC, H, K, KV]
            outs, last = run("pass", cd, {"x_A": fin[..., :K].contiguous(), "x_B": fin[..., K:].contiguous()}, {"S": S0c}, B, nC)
            o = outs["o_S"].reshape(B, nC, H, K, V)
            return (by_heads(o).reshape(B * H * nC, K, V) if heads else o.reshape(B * nC, H, K, V)), last["S"].reshape(B, H, K, V), cc

    # forward: the chunk start states, then per chunk y and the low-rank reads r; post's backward (dy)
    S_starts, S_last, aug_f = chunk_states("augF", fwd, P, canon(S0))
    with _section("read"):
        if read_way == "matmul":
            core_f = aug_f.restart(S_starts.reshape(-1, K, V)) if aug_f is not None else core_of(fwd, S_starts, P)
            if wy:  # the reads' dependence on the start state: the transitions' reads from [I | 0]
                xI = aug_f._r[0][:, :C, :K].unsqueeze(2) if E == 1 else torch.stack([x[:, :C, :K] for x in aug_f._r], 2) if E else None
            del aug_f
            # the readouts y only for post's backward: not where no form of its plan binds them (LR_Y_READ "bound")
            core = readouts_of("read", core_f, fwd) if y_bound else {}
            for e, r in enumerate(core_f.r):
                core["o_r%d" % e] = unrows(r)
        else:
            core = lines(run("read", cd, fold(fwd), {"S": tok_states(S_starts)}, B * nC, C)[0])
    post_g = post_backward({r: at_reads(core["o_y%d" % r], r) for r in range(len(readouts)) if "o_y%d" % r in core})
    for r, ro in enumerate(readouts):
        dy = line(V, full=N == 1, into=slot(ev_slots[1], r) if slot_lines and dy_slot else None)
        at_reads(dy, r)[:] = post_g[n["postBw"]["inputBar"][ro["y"]]].reshape(B, T, H, V)
        fwd["x_dy%d" % r] = dy

    fwd_time = {}
    if wy:
        with _section("wy"):
            def stk(pre, m):  # [N, C, m, w] (one: a view)
                return rows(fwd[pre % 0]).unsqueeze(2) if m == 1 else torch.stack([rows(fwd[pre % i]) for i in range(m)], 2)

            def cat2(xs):
                return xs[0].unsqueeze(2) if len(xs) == 1 else torch.stack(xs, 2)
            if heads:
                def bhc(x):
                    return x.reshape([B, H, nC] + list(x.shape[1:]))

                def unbhc(x):
                    return x.reshape([B * H * nC] + list(x.shape[3:]))
            else:
                def bhc(x):
                    return x.reshape([B, nC, H] + list(x.shape[1:])).transpose(1, 2)

                def unbhc(x):
                    return x.transpose(1, 2).reshape([B * nC * H] + list(x.shape[3:]))
            A_f = trans["augF"][..., :K]  # [B, H, nC, K, K]
            Sb = S_starts.reshape(-1, K, V)
            if lean_copies:  # the end states as the next chunks' starts and the last (read only for a decay's a0)
                S_ends = (bhc(Sb), S_last)
            else:
                S_ends = torch.empty([B, H, nC, K, V], dtype=dtype, device=device)
                S_ends[:, :, :-1] = bhc(Sb)[:, :, 1:]
                S_ends[:, :, -1] = S_last
            dS = canon(cot_state) if cot_state is not None else zeros([B, H, K, V])
            W, Q, DY = stk("x_w%d", E), stk("x_q%d", R), stk("x_dy%d", R)
            ev = None
            if slot_lines:  # the events' first R slots are the q (and dy) lines already
                Q = ev_slots[0][:, :, :R]
                if dy_slot:
                    DY = ev_slots[1][:, :, :R]
                ev = (ev_slots[0], ev_slots[1], dy_slot)
            ld_rows = rows(fwd["x_ld"]) if "x_ld" in fwd else None

            def chunk_core(S0c, ldc, pairs, events=None):
                return ChunkCore(S0c, ldc, [], pairs, key_way=key_way, mm=mm, lean=lean, readout=readout, events=events)
            def walk(Bp, dSc):  # the reverse walk by the pass kernel: A_c^T from the forward's transitions
                if passer is None or not heads:
                    return None
                Lend = torch.empty([B, H, nC, K, V], dtype=dtype, device=device)
                L0 = torch.empty([B, H, K, V], dtype=dtype, device=device)
                return (Lend, L0) if passer("adj", trans["augF"], Bp, dSc.contiguous(), Lend, L0) else None
            o = _wy.wy_backward(core_f, xI, A_f, ld_rows, W, Q, DY, dS, S_ends, bhc, unbhc, chunk_core, walk, wy_kern, lean=lean_copies, rev=rev_read == "kernel", ev=ev)
            dR = o["dR"]
            if lean_copies:  # dR [N, C, E, V] and DY as they are (no single-vector stacks)
                dW = core_f.read_stacked("value", False, dR)[:, :C]
                dQ = core_f.read_stacked("value", True, DY)[:, :C]
            else:
                dW = cat2(core_f.read("value", False, [dR[:, :, e] for e in range(E)]))
                dQ = cat2(core_f.read("value", True, [DY[:, :, r] for r in range(R)]))
            KKf = core_f.KK[:, :C]
            del core_f
            fw = {}
            for e in range(E):
                fw["o_dw%d" % e] = unrows(dW[:, :, e])
                fwd_time["o_du%d" % e] = unrows(o["du"][:, :, e])
            for r in range(R):
                fw["o_dq%d" % r] = unrows(dQ[:, :, r])
            for p in range(P):
                fwd_time["o_dk%d" % p] = unrows(o["dk"][:, :, p])
                fwd_time["o_dv%d" % p] = unrows(o["dv"][:, :, p])
            dld = None
            if n["decay"] != "none":
                dKK = torch.cat([o["du"], o["dk"]], 2) if P else o["du"]
                dld = unrows(_wy.wy_decay(o["a0"], Q, dQ, W, dW, KKf, dKK, n["decay"] == "scalar"))
            G_last = o["dS0"]
    if not wy:
        # the adjoint on the reversed timeline: step tau = L - 1 - m takes G_{m+1} to G_m (the decay and swapped low-rank
        # pair of step m + 1, the readouts at m)
        # (LR_CHAIN_REV "kernel": its readouts' queries are the forward's lines read backwards and its outputs come back in
        # forward time, read_mirror; the pieces' adjoints then need no flip back)
        mirror = chain_rev == "kernel" and n["decay"] == "key" and heads and read_way == "matmul" and (decay_way or LR_DECAY) == "plan"

        def rev_index(sh):
            """The reversed timeline read `sh` steps later as indices into a line's steps: tau reads m = Lp - 1 + sh - tau
            (the steps before sh, zeros, read step 0 and are zeroed after)."""
            idx = torch.arange(Lp - 1 + sh, sh - 1, -1, device=device)
            if sh:
                idx[:sh] = 0
            return idx

        def rev_shift(a, sh):
            """rev(a, sh) (heads) as one index_select, not a flip and a copy into the shifted slice (LR_CHAIN_REV "kernel")."""
            if not mirror or not sh:
                return rev(a, sh)
            out = torch.index_select(a, 2, rev_index(sh))
            out[:, :, :sh] = 0
            return out
        adj = {}
        if "x_ld" in fwd:
            adj["x_ld"] = rev_shift(fwd["x_ld"], 1)
        for e in range(E):
            adj["x_u%d" % e] = rev_shift(fwd["x_w%d" % e], 1)
            adj["x_w%d" % e] = rev_shift(fwd["x_u%d" % e], 1)
            if not mirror:
                adj["x_uq%d" % e] = rev(fwd["x_u%d" % e])
                adj["x_rz%d" % e] = rev(core["o_r%d" % e])
        for r in range(R):
            adj["x_k%d" % r] = rev(fwd["x_q%d" % r])
            adj["x_v%d" % r] = rev(fwd["x_dy%d" % r])
        for p in range(P):
            if not mirror:
                adj["x_kq%d" % p] = rev(fwd["x_k%d" % p])
                adj["x_vz%d" % p] = rev(fwd["x_v%d" % p])
        dS = canon(cot_state) if cot_state is not None else zeros([B, H, K, V])
        G_starts, G_last, aug_a = chunk_states("augA", adj, R, dS)
        with _section("adjoint"):
            if mirror:  # the queries in forward time: x_kq = k, x_uq = u, x_vz = v, x_rz = r; the outputs in forward time
                cc = aug_a.restart(G_starts.reshape(-1, K, V)) if aug_a is not None else core_of(adj, G_starts, R)
                src = {}
                for e in range(E):
                    src["x_uq%d" % e], src["x_rz%d" % e] = fwd["x_u%d" % e], core["o_r%d" % e]
                for p in range(P):
                    src["x_kq%d" % p], src["x_vz%d" % p] = fwd["x_k%d" % p], fwd["x_v%d" % p]
                ad_fwd = {}
                specs = LR_READS["adjoint"](P, E, R)
                for axis in ("key", "value"):
                    for after in (False, True):
                        sel = [sp for sp in specs if sp[2] == axis and sp[3] == after]
                        if sel:
                            Qs = rows(src[sel[0][1]]).unsqueeze(2) if len(sel) == 1 else torch.stack([rows(src[sp[1]]) for sp in sel], 2)
                            o = cc.read_mirror(axis, after, Qs, nC)
                            for i, sp in enumerate(sel):
                                ad_fwd[sp[0]] = unrows(o[:, :, i])
                cc.release()
                del cc
                ad = None
            elif read_way == "matmul":
                ad = readouts_of("adjoint", aug_a.restart(G_starts.reshape(-1, K, V)) if aug_a is not None else core_of(adj, G_starts, R), adj)
            else:
                ad = lines(run("adjoint", cd, fold(adj), {"S": tok_states(G_starts)}, B * nC, C)[0])
            del aug_a
        if mirror:
            fwd_time.update(ad_fwd)

        # the forward again per chunk from its start states: dq = S dy, dw = S_{s-1} a (a: the adjoint's low-rank reads)
        fwd2 = dict(fwd)
        for e in range(E):
            fwd2["x_a%d" % e] = ad_fwd["o_a%d" % e] if mirror else rev(ad["o_a%d" % e])
        with _section("fwd"):
            if read_way == "matmul":
                fw = readouts_of("fwd", core_f, fwd2)  # the forward's ChunkCore again (its low-rank reads r known)
                del core_f
            else:
                fw = lines(run("fwd", cd, fold(fwd2), {"S": tok_states(S_starts)}, B * nC, C)[0])

        # the log decays' adjoint: a reverse cumulative sum from <dS_N, S_N>
        dld = None
        with _section("decay"):
            if n["decay"] != "none":
                a0 = (dS * S_last).sum(3)
                a0 = a0.reshape(B, H * K) if n["decay"] == "key" else a0.sum(2)
                d_in = {}
                if mirror:  # the inputs in reversed time from forward-time lines (x_w, x_dw a step later)
                    fsrc = {}
                    for r in range(R):
                        fsrc["x_q%d" % r], fsrc["x_dq%d" % r] = (fwd["x_q%d" % r], 0), (fw["o_dq%d" % r], 0)
                    for p in range(P):
                        fsrc["x_k%d" % p], fsrc["x_dk%d" % p] = (fwd["x_k%d" % p], 0), (ad_fwd["o_dk%d" % p], 0)
                    for e in range(E):
                        fsrc["x_u%d" % e], fsrc["x_du%d" % e] = (fwd["x_u%d" % e], 0), (ad_fwd["o_du%d" % e], 0)
                        fsrc["x_w%d" % e], fsrc["x_dw%d" % e] = (fwd["x_w%d" % e], 1), (fw["o_dw%d" % e], 1)
                    # the decay plan's layout [B, Lp, H, w] reversed by one index_select each (heads only): tau reads m =
                    # Lp - 1 + shift - tau, zeros before `shift`
                    for k_, (a, sh) in fsrc.items():
                        t_ = torch.index_select(a.permute(0, 2, 1, 3), 1, rev_index(sh))
                        if sh:
                            t_[:, :sh] = 0
                        d_in[k_] = t_.contiguous()  # (index_select's output is; kept as the plan needs it)
                for r in range(R if not mirror else 0):
                    d_in["x_q%d" % r] = adj["x_k%d" % r]
                    d_in["x_dq%d" % r] = rev(fw["o_dq%d" % r])
                for p in range(P if not mirror else 0):
                    d_in["x_k%d" % p] = adj["x_kq%d" % p]
                    d_in["x_dk%d" % p] = ad["o_dk%d" % p]
                for e in range(E if not mirror else 0):
                    d_in["x_u%d" % e] = adj["x_uq%d" % e]
                    d_in["x_du%d" % e] = ad["o_du%d" % e]
                    d_in["x_w%d" % e] = adj["x_u%d" % e]  # rev(fwd x_w, 1)
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
                    dld = rev(torch.cumsum(terms, 2) + a0.reshape(B, H, 1, LW)) if heads else rev(torch.cumsum(terms, 1) + a0.reshape(B, 1, H, LW))
                else:
                    if heads and not mirror:  # the plan's timeline layout [B, Lp, H, w] (mirror: made so above)
                        d_in = {k: v.permute(0, 2, 1, 3).contiguous() for k, v in d_in.items()}
                    dld = run("decay", {"H": H, "K": K}, d_in, {"a": a0}, B, Lp)[0]["o_dld"].reshape(B, Lp, H, LW)
                    dld = rev(dld.permute(0, 2, 1, 3) if heads else dld)

    # the adjoints of prep's outputs, from the timeline (the adjoint's pieces back in forward time)
    # (LR_COPIES "lean": each slot's first piece copied into an empty tensor, later ones added; slots no piece reaches
    # zeroed at the end; "old": zeros, every piece added)
    bars = {} if lean_copies else {o: bar_zeros(o) for o in prep_all}
    bar_w, bar_set = {}, {}

    def bar_add(name, w, c, x):
        """Adds x into slot c of prep output `name`'s adjoint, viewed [B, T, loop index, H, w]."""
        if name not in bars:
            bars[name] = torch.empty(prep[name].shape, dtype=dtype, device=device)
            bar_set[name] = set()
        bar_w[name] = w
        dst = bars[name].view(B, T, -1, H, w)[:, :, c]
        if not lean_copies or c in bar_set[name]:
            dst += x
        else:
            dst.copy_(x)
            bar_set[name].add(c)

    def back(key):
        if key not in fwd_time:
            fwd_time[key] = rev(ad[key])
        return fwd_time[key]

    def put(name, src, s, c, w):
        bar_add(name, w, c, micro(src)[:, :, base[s] + c])

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
                    bar_add(d["name"], 1, c, micro(dld)[:, :, base[s] + c].sum(3, keepdim=True))
    for r, ro in enumerate(readouts):
        bar_add(ro["q"], K, 0, at_reads(fw["o_dq%d" % r], r))
    if lean_copies:  # the slots no piece reached (and outputs none reached) are zeros
        for o in prep_all:
            if o not in bars:
                bars[o] = bar_zeros(o)
                continue
            v = bars[o].view(B, T, -1, H, bar_w[o])
            for c in range(v.shape[2]):
                if c not in bar_set[o]:
                    v[:, :, c] = 0

    return finish(bars, G_last, post_g)


def plan_binds(m, key):
    """The names some form of plan `key` binds as inputs (every form's launches' input buffers), or None where the plan is
    missing or a form is not launches alone (then every input counts as read)."""
    plan = m.meta["plans"].get(key)
    if plan is None or any(f.get("module") or any(st.get("kind") != "launch" for st in f["steps"]) for f in plan["forms"]):
        return None
    return {b["name"] for f in plan["forms"] for st in f["steps"] for b in st.get("buffers", []) if b.get("kind") == "input"}


def switch_kernels(m, device, way, switch, key):
    """The launchers' common start: `way` (the switch's value, "cuda" or "torch") checked, then the module's kernels
    <key> on `device` (seqc_chunked.module_kernels) for "cuda", None for "torch"."""
    if way not in ("cuda", "torch"):
        raise ValueError("%s %r: one of cuda, torch" % (switch, way))
    return None if way == "torch" else _chunked.module_kernels(m, device, key)


def fused_launcher(m, device, way=None, math="fp32"):
    """The fused chunk transitions of module m on `device` (LR_FUSED, or way, "cuda"; the module's "kernels"."lowRankCore",
    compiler/backends/cuda/lowrank-core.ts) as ChunkCore's `fused`: launch(op, mode, C, K, V, KK, W, VV, G, END) -> True
    where a kernel of the module matches (op, decay mode, C, K, V; float32 contiguous tensors), after launching it on the
    current stream; False where none does (ChunkCore then runs its torch ops). None: no kernels (LR_FUSED "torch", not
    CUDA, or a module built without them). math: "fp32" or the twin's "tf32" / "tf32x3" (core_math), taken where the
    module has one (else fp32)."""
    km = switch_kernels(m, device, way or LR_FUSED, "LR_FUSED", "lowRankCore")
    if km is None:
        return None

    def launch(op, mode, C, K, V, KK, W, VV, G, END):
        ks = [k for k in km.kernels if k["op"] == op and k["decay"] == mode and (k["C"], k["K"], k["V"], k["E"], k["P"]) == (C, K, V, 1, 1)]
        k = math_pick(ks, math)
        ts = [KK, W, VV, END] + ([G] if G is not None else [])
        if k is None or any(x.dtype != torch.float32 or not x.is_contiguous() or x.device != device for x in ts):
            return False
        N = KK.shape[0]
        if tuple(KK.shape) != (N, C, 2, K) or tuple(W.shape) != (N, C, K) or tuple(VV.shape) != (N, C, 2, K + V) or tuple(END.shape) != (N, K, K + V) or \
                (G is not None and tuple(G.shape) != (N, C + 1, K if mode == "key" else 1)):
            raise ValueError("lowRankCore %s: shapes KK %s W %s VV %s G %s END %s, expected [N, C, 2, K], [N, C, K], [N, C, 2, K + V], [N, C + 1, LW], [N, K, K + V] with N %d C %d K %d V %d" % (
                k["entry"], list(KK.shape), list(W.shape), list(VV.shape), None if G is None else list(G.shape), list(END.shape), N, C, K, V))
        with torch.cuda.device(device):
            km.launch(k, (N, 1), [("ptr", x.data_ptr()) for x in (KK, W, VV)] + [("ptr", G.data_ptr() if G is not None else 0), ("ptr", END.data_ptr()), ("u32", N)],
                      torch.cuda.current_stream(device).cuda_stream)
        return True
    return launch


def read_key_pick(kernels, axis, C, K, V, M, pre):
    """The kernel readout_key_launcher takes from a module's "lowRankReadoutKey" kernels for a per-key read (axis, C, K, V,
    M): with pre (LR_READ_KEY_PRE "on") the pre-decayed form where the module has one, else the plain kernel; None where
    none matches."""
    ks = [k for k in kernels if k["op"] == "readout" and k["axis"] == axis and (k["C"], k["K"], k["V"], k["M"]) == (C, K, V, M)]
    return (next((k for k in ks if k.get("form") == "pre"), None) if pre else None) or next((k for k in ks if not k.get("form")), None)


def readout_key_launcher(base, m, device, way=None):
    """ChunkCore's `readout` launcher `base` (readout_launcher's; None: none) that also takes a per-key decay by module m's
    per-key kernels on `device` (LR_READ_KEY, or way, "cuda"; the module's "kernels"."lowRankReadoutKey", compiler/backends/
    cuda/lowrank-readout-key.ts): launch(axis, oq, "key", C, K, V, M, Q, EA, EB, S0, G, OUT) -> True where one matches
    (axis, C, K, V, M; float32 tensors, G [N, C + 1, K]), after launching it on the current stream; False where none does;
    other decay modes go to base (its extra arguments passed on; a per-key read with any is refused). per_key = True on the
    launcher tells ChunkCore it takes a per-key decay. Returns base where there are no per-key kernels (LR_READ_KEY
    "torch", not CUDA, or a module built without them). Each axis takes its pre-decayed form where LR_READ_KEY_PRE is "on"
    and the module has it (read_key_pick). mirror=nC (ChunkCore.read_mirror, LR_CHAIN_REV "kernel"): Q and OUT in the
    reversed order of lines of nC chunks, taken by kernels with the mirror argument (modules built before it: False)."""
    km = switch_kernels(m, device, way or LR_READ_KEY, "LR_READ_KEY", "lowRankReadoutKey")
    if km is None:
        return base
    if LR_READ_KEY_PRE not in ("off", "on"):
        raise ValueError("LR_READ_KEY_PRE %r: one of off, on" % (LR_READ_KEY_PRE,))
    pre = LR_READ_KEY_PRE == "on"

    def launch(axis, oq, mode, C, K, V, M, Q, EA, EB, S0, G, OUT, *rest, mirror=0, **kw):
        if mode != "key":
            return not mirror and base is not None and base(axis, oq, mode, C, K, V, M, Q, EA, EB, S0, G, OUT, *rest, **kw)
        k = read_key_pick(km.kernels, axis, C, K, V, M, pre)
        if k is None or G is None or rest or any(kw.values()) or (mirror and (not k.get("mirror") or Q.shape[0] % mirror)):
            return False
        A, W = (K, V) if axis == "key" else (V, K)
        N, mq = Q.shape[0], Q.shape[2]
        ts = [Q, EA, EB, S0, G, OUT]
        if any(x.dtype != torch.float32 or x.device != device for x in ts):
            return False
        Q, EA, EB, S0, G, OUT_c = [x.contiguous() for x in ts]
        if OUT_c is not OUT:
            raise ValueError("lowRankReadoutKey %s: OUT must be contiguous" % k["entry"])
        if tuple(Q.shape) != (N, C, mq, A) or tuple(EA.shape) != (N, C, M, A) or tuple(EB.shape) != (N, C, M, W) or tuple(S0.shape) != (N, K, V) or \
                tuple(OUT.shape) != (N, C, mq, W) or tuple(G.shape) != (N, C + 1, K) or oq not in (0, 1):
            raise ValueError("lowRankReadoutKey %s: shapes Q %s EA %s EB %s S0 %s G %s OUT %s oq %r, expected [N, C, mq, %d], [N, C, M, %d], [N, C, M, %d], [N, K, V], [N, C + 1, K], [N, C, mq, %d] with N %d C %d K %d V %d M %d" % (
                k["entry"], list(Q.shape), list(EA.shape), list(EB.shape), list(S0.shape), list(G.shape), list(OUT.shape), oq, A, A, W, W, N, C, K, V, M))
        with torch.cuda.device(device):
            km.launch(k, (N, 1), [("ptr", x.data_ptr()) for x in (Q, EA, EB, S0, G, OUT)] + [("u32", N), ("u32", oq), ("u32", mq)] + ([("u32", mirror)] if k.get("mirror") else []),
                      torch.cuda.current_stream(device).cuda_stream)
        return True
    launch.per_key = True
    return launch


def mma_math(given_dtypes, way, switch):
    """A tensor-core twin's math for the given tensors' dtypes under switch `switch` (LR_READ_MMA, LR_WY_MMA, LR_CORE_MMA)
    of value `way`: "fp32", or the switch's "tf32" / "tf32x3" where one of them is bfloat16 or float16."""
    if way not in ("off", "tf32", "tf32x3"):
        raise ValueError("%s %r: one of off, tf32, tf32x3" % (switch, way))
    return way if way != "off" and any(d in (torch.bfloat16, torch.float16) for d in given_dtypes) else "fp32"


def read_math(given_dtypes, way=None):
    """The fused readouts' math (LR_READ_MMA, or way; mma_math)."""
    return mma_math(given_dtypes, way or LR_READ_MMA, "LR_READ_MMA")


def wy_math(given_dtypes, way=None):
    """wy's kernels' math at K = V = 64 (LR_WY_MMA, or way; mma_math)."""
    return mma_math(given_dtypes, way or LR_WY_MMA, "LR_WY_MMA")


def wy_math_k128(given_dtypes, way=None):
    """wy's kernels' math wider than K = V = 64 (LR_WY_MMA_K128, or way; mma_math)."""
    return mma_math(given_dtypes, way or LR_WY_MMA_K128, "LR_WY_MMA_K128")


def wy_op_math(op, K, math, math128, ops=None):
    """The math wy_launcher asks wy_pick for: math128 where K > 64, else math; "fp32" where op is not among
    LR_WY_MMA_OPS (or ops): "both", "pre" or "dr"."""
    ops = ops or LR_WY_MMA_OPS
    if ops not in ("both", "pre", "dr"):
        raise ValueError("LR_WY_MMA_OPS %r: one of both, pre, dr" % (ops,))
    if ops != "both" and ops != op:
        return "fp32"
    return math128 if K > 64 else math


def core_math(given_dtypes, way=None):
    """The fused chunk transitions' math (LR_CORE_MMA, or way; mma_math)."""
    return mma_math(given_dtypes, way or LR_CORE_MMA, "LR_CORE_MMA")


def math_pick(ks, math):
    """Of the kernels ks that match a launch, the one of `math` (a twin's "tf32" / "tf32x3"), else the fp32 one, else None."""
    return next((k for k in ks if k.get("math", "fp32") == math), None) or next((k for k in ks if k.get("math", "fp32") == "fp32"), None)


def readout_launcher(m, device, way=None, math="fp32"):
    """The fused readouts of module m on `device` (LR_FUSED_READ, or way, "cuda"; the module's "kernels"."lowRankReadout",
    compiler/backends/cuda/lowrank-readout.ts) as ChunkCore's `readout`: launch(axis, oq, mode, C, K, V, M, Q, EA, EB, S0,
    G, OUT, rev=False) -> True where a kernel of the module matches (axis, decay mode, C, K, V, M; float32 tensors), after
    launching it on the current stream (OUT [N, C, mq, w] written); False where none does (ChunkCore then runs its torch
    ops). rev: the kernel's step a reads and writes row C - 1 - a of Q, EA, EB, OUT (ChunkCore.read_rev; False where the
    module's kernels have no rev argument, as modules built before it). Q may be a view whose vectors are contiguous and
    16-byte aligned with a step stride qs (a multiple of 4 floats; strides [C qs, qs, A, 1]): kernels with rev read it as it
    is; other Q, and every other tensor, are made contiguous (OUT must be).
    math: "fp32" or a tensor-core twin's "tf32" / "tf32x3" (read_math), taken where the module has one (else fp32).
    None: no kernels (LR_FUSED_READ "torch", not CUDA, or a module built without them)."""
    km = switch_kernels(m, device, way or LR_FUSED_READ, "LR_FUSED_READ", "lowRankReadout")
    if km is None:
        return None

    def launch(axis, oq, mode, C, K, V, M, Q, EA, EB, S0, G, OUT, rev=False):
        ks = [k for k in km.kernels if k["op"] == "readout" and k["axis"] == axis and k["decay"] == mode and (k["C"], k["K"], k["V"], k["M"]) == (C, K, V, M)]
        k = math_pick(ks, math)
        if k is None or (rev and not k.get("rev")):
            return False
        A, W = (K, V) if axis == "key" else (V, K)
        N, mq = Q.shape[0], Q.shape[2]
        ts = [Q, EA, EB, S0, OUT] + ([G] if G is not None else [])
        if any(x.dtype != torch.float32 or x.device != device for x in ts):
            return False
        qs = Q.stride(1) if Q.dim() == 4 else 0
        if not (k.get("rev") and Q.dim() == 4 and Q.stride(3) == 1 and (mq == 1 or Q.stride(2) == A) and qs >= mq * A and qs % 4 == 0 and
                (N == 1 or Q.stride(0) == C * qs) and Q.data_ptr() % 16 == 0):
            Q = Q.contiguous()
            qs = mq * A
        ts = [Q] + [x.contiguous() for x in ts[1:]]
        Q, EA, EB, S0, OUT_c = ts[:5]
        if OUT_c is not OUT:
            raise ValueError("lowRankReadout %s: OUT must be contiguous" % k["entry"])
        G = ts[5] if G is not None else None
        if tuple(Q.shape) != (N, C, mq, A) or tuple(EA.shape) != (N, C, M, A) or tuple(EB.shape) != (N, C, M, W) or tuple(S0.shape) != (N, K, V) or \
                tuple(OUT.shape) != (N, C, mq, W) or (G is not None and tuple(G.shape) != (N, C + 1, 1)) or oq not in (0, 1):
            raise ValueError("lowRankReadout %s: shapes Q %s EA %s EB %s S0 %s G %s OUT %s oq %r, expected [N, C, mq, %d], [N, C, M, %d], [N, C, M, %d], [N, K, V], [N, C + 1, 1], [N, C, mq, %d] with N %d C %d K %d V %d M %d" % (
                k["entry"], list(Q.shape), list(EA.shape), list(EB.shape), list(S0.shape), None if G is None else list(G.shape), list(OUT.shape), oq, A, A, W, W, N, C, K, V, M))
        with torch.cuda.device(device):
            km.launch(k, (N, 1), [("ptr", x.data_ptr()) for x in (Q, EA, EB, S0)] + [("ptr", G.data_ptr() if G is not None else 0), ("ptr", OUT.data_ptr()), ("u32", N), ("u32", oq), ("u32", mq)] +
                      ([("u32", 1 if rev else 0), ("u32", qs)] if k.get("rev") else []), torch.cuda.current_stream(device).cuda_stream)
        return True
    return launch


def core_k128(launch, launch32, way=None):
    """The fused transitions' launch (fused_launcher of core_math's math) where LR_CORE_K128 (or way) is "on"; where "off",
    the transitions wider than K = 64 go to launch32 (fused_launcher's fp32 kernel) instead. None stays None."""
    way = way or LR_CORE_K128
    if way not in ("off", "on"):
        raise ValueError("LR_CORE_K128 %r: one of off, on" % (way,))
    if launch is None or way == "on":
        return launch

    def launch64(op, mode, C, K, V, *args):
        return (launch if K <= 64 else launch32)(op, mode, C, K, V, *args)
    return launch64


def read_k128(launch, way=None):
    """readout_launcher's launch as it is where LR_READ_K128 (or way) is "on"; where "off", one that refuses the reads
    wider than K = V = 64 (ChunkCore then runs its torch ops for them). None stays None. The K = 128 kernels take the
    launch arguments rev and qs: a launch without a rev parameter (a launcher that passes neither) is treated as "off"."""
    way = way or LR_READ_K128
    if way not in ("off", "on"):
        raise ValueError("LR_READ_K128 %r: one of off, on" % (way,))
    if launch is None or (way == "on" and "rev" in inspect.signature(launch).parameters):
        return launch

    def launch64(axis, oq, mode, C, K, V, *args, **kw):
        return False if K > 64 or V > 64 else launch(axis, oq, mode, C, K, V, *args, **kw)
    return launch64


def pass_pick(kernels, dir, K, V, rows, sms, cols=None):
    """The kernel pass_launcher takes from a module's "lowRankPass" kernels for (dir, K, V) and rows = B * H walks on a
    card of `sms` SMs: with LR_PASS_COLS (or cols) G > 0 and rows < sms, the value-column groups' kernel of width G where
    the module has one; with "auto" and rows < sms, the widest groups' kernel that gives at least `sms` blocks (rows V / G),
    else the narrowest groups' one; else the whole-row kernel; None where none matches. Returns (kernel, groups a row)."""
    cols = LR_PASS_COLS if cols is None else cols
    ks = [k for k in kernels if k["op"] == "pass" and k["dir"] == dir and (k["K"], k["V"]) == (K, V)]
    if cols == "auto":
        gs = sorted((k for k in ks if k.get("G")), key=lambda k: -k["G"])
        k = next((k for k in gs if rows * (V // k["G"]) >= sms), gs[-1] if gs else None) if rows < sms else None
        if k is not None:
            return k, V // k["G"]
    elif cols and rows < sms:
        k = next((k for k in ks if k.get("G") == cols), None)
        if k is not None:
            return k, V // cols
    return next((k for k in ks if k.get("G") is None), None), 1


def pass_launcher(m, device, way=None):
    """The walks over the chunks of module m on `device` (LR_FUSED_PASS, or way, "cuda"; the module's
    "kernels"."lowRankPass", compiler/backends/cuda/lowrank-pass.ts) as lowrank_backward's `passer`: launch(dir, A, Bp,
    S0, OUT, FIN) -> True where a kernel matches (dir "fwd": S_{c+1} = A_c S_c + B_c, OUT the start states; "adj":
    L_c = A_c^T L_{c+1} + B_c, OUT the end states' adjoints; FIN the last; A [B, H, nC, K, wa] with A_c its first K
    columns, Bp [B, H, nC, K, V] rows of stride wb (a view of A's columns K.. or a contiguous tensor), S0 / FIN [B, H,
    K, V], OUT [B, H, nC, K, V]; float32), after launching it on the current stream; False where none does (the glue
    then runs its torch products). None: no kernels (LR_FUSED_PASS "torch", not CUDA, or a module without them)."""
    km = switch_kernels(m, device, way or LR_FUSED_PASS, "LR_FUSED_PASS", "lowRankPass")
    if km is None:
        return None
    sms = torch.cuda.get_device_properties(device).multi_processor_count

    def launch(dir, A, Bp, S0, OUT, FIN):
        Bn, H, nC, K, V = OUT.shape
        k, groups = pass_pick(km.kernels, dir, K, V, Bn * H, sms)
        ts = [A, Bp, S0, OUT, FIN]
        if k is None or any(x.dtype != torch.float32 or x.device != device for x in ts):
            return False
        wa, wb = A.shape[-1], Bp.stride(-2)
        if not (A.is_contiguous() and S0.is_contiguous() and OUT.is_contiguous() and FIN.is_contiguous()) or tuple(A.shape[:4]) != (Bn, H, nC, K) or wa < K or \
                tuple(Bp.shape) != (Bn, H, nC, K, V) or Bp.stride(-1) != 1 or Bp.stride(-3) != K * wb or Bp.stride(-4) != nC * K * wb or Bp.stride(-5) != H * nC * K * wb or \
                wb % 4 or Bp.data_ptr() % 16 or tuple(S0.shape) != (Bn, H, K, V) or tuple(FIN.shape) != (Bn, H, K, V):
            return False
        with torch.cuda.device(device):
            km.launch(k, (Bn * H, groups), [("ptr", A.data_ptr()), ("u32", wa), ("ptr", Bp.data_ptr()), ("u32", wb), ("ptr", S0.data_ptr()), ("ptr", OUT.data_ptr()), ("ptr", FIN.data_ptr()),
                                      ("u32", Bn * H), ("u32", nC)], torch.cuda.current_stream(device).cuda_stream)
        return True
    return launch


def wy_pick(kernels, op, mode, C, K, V, math="fp32", k128=None):
    """The kernel wy_launcher takes from a module's "lowRankWy" kernels for (op, decay mode, C, K, V): the one of `math`,
    else the fp32 one; None where none matches, or where K > 64 and LR_WY_K128 (or k128) is "off"."""
    k128 = k128 or LR_WY_K128
    if k128 not in ("off", "on"):
        raise ValueError("LR_WY_K128 %r: one of off, on" % (k128,))
    if K > 64 and k128 == "off":
        return None
    ks = [k for k in kernels if k["op"] == op and k["decay"] == mode and (k["C"], k["K"], k["V"]) == (C, K, V)]
    return math_pick(ks, math)


def wy_rows_aligned(ts):
    """Whether the twins' 16-byte row copies (cp.async) can read tensors ts ([N, C, w] rows, w a multiple of 4): every
    one 16-byte aligned with a row stride of a multiple of 4 floats. wy_launcher takes the fp32 kernel where not."""
    return all(x.data_ptr() % 16 == 0 and x.stride(1) % 4 == 0 and x.shape[2] % 4 == 0 for x in ts)


def wy_launcher(m, device, way=None, math="fp32", math128="fp32"):
    """The chunk-state backward's per-chunk kernels of module m on `device` (LR_FUSED_WY, or way, "cuda"; the module's
    "kernels"."lowRankWy", compiler/backends/cuda/lowrank-wy.ts) as wy_backward's `kern`: launch("pre", C, K, V, mode,
    Q, U, DY, XI, G) -> (BQ [N, C, V], BP [N, K, V]) and launch("dr", C, K, V, mode, W, U, BQ, L, G) -> DR [N, C, V]
    (Q, U, XI, W: [N, C, K] rows with a row stride of their own and C rows a chunk; DY [N, C, V] too where the "pre"
    kernel says dyStride (else made contiguous); BQ [N, C, V] and L [N, K, V] contiguous; G [N, C + 1, 1] or None), launched on the current stream; None where no kernel matches (wy_backward then
    runs its torch products). math: "fp32" or the twins' "tf32" / "tf32x3" at K = 64 (wy_math), math128 wider
    (wy_math_k128), each op's taken where LR_WY_MMA_OPS names it and the module has one (wy_op_math; else fp32), and
    where its rows are aligned for the twins' 16-byte copies (wy_rows_aligned; else the fp32 kernel). None: no kernels (LR_FUSED_WY "torch", not CUDA, or a module without them)."""
    km = switch_kernels(m, device, way or LR_FUSED_WY, "LR_FUSED_WY", "lowRankWy")
    if km is None:
        return None

    def rows_ok(x, N, C, w):
        return x.dtype == torch.float32 and x.device == device and tuple(x.shape) == (N, C, w) and x.stride(2) == 1 and x.stride(0) == C * x.stride(1)

    def launch(op, C, K, V, mode, *ts):
        k = wy_pick(km.kernels, op, mode, C, K, V, wy_op_math(op, K, math, math128))
        if k is None:
            return None
        if k.get("math", "fp32") != "fp32" and not wy_rows_aligned(ts[:4]):
            k = wy_pick(km.kernels, op, mode, C, K, V, "fp32")
        G = ts[-1]
        N = ts[0].shape[0]
        if G is not None and (G.dtype != torch.float32 or G.device != device or not G.is_contiguous() or tuple(G.shape) != (N, C + 1, 1)):
            return None
        g = ("ptr", G.data_ptr() if G is not None else 0)
        stream = torch.cuda.current_stream(device).cuda_stream
        if op == "pre":
            Q, U, DY, XI = ts[:4]
            if rows_ok(DY, N, C, V) and not DY.is_contiguous() and not k.get("dyStride"):  # (a twin: its rows contiguous)
                DY = DY.contiguous()
            if not (rows_ok(Q, N, C, K) and rows_ok(U, N, C, K) and rows_ok(XI, N, C, K) and rows_ok(DY, N, C, V) and (DY.is_contiguous() or k.get("dyStride"))):
                return None
            BQ = torch.empty([N, C, V], dtype=torch.float32, device=device)
            BP = torch.empty([N, K, V], dtype=torch.float32, device=device)
            with torch.cuda.device(device):
                km.launch(k, (N, 1), [("ptr", Q.data_ptr()), ("u32", Q.stride(1)), ("ptr", U.data_ptr()), ("u32", U.stride(1)), ("ptr", DY.data_ptr())] +
                          ([("u32", DY.stride(1))] if k.get("dyStride") else []) +
                          [("ptr", XI.data_ptr()), ("u32", XI.stride(1)), g, ("ptr", BQ.data_ptr()), ("ptr", BP.data_ptr()), ("u32", N)], stream)
            return BQ, BP
        W, U, BQ, L = ts[:4]
        if not (rows_ok(W, N, C, K) and rows_ok(U, N, C, K) and BQ.is_contiguous() and rows_ok(BQ, N, C, V) and L.is_contiguous() and tuple(L.shape) == (N, K, V) and L.dtype == torch.float32):
            return None
        DR = torch.empty([N, C, V], dtype=torch.float32, device=device)
        with torch.cuda.device(device):
            km.launch(k, (N, 1), [("ptr", W.data_ptr()), ("u32", W.stride(1)), ("ptr", U.data_ptr()), ("u32", U.stride(1)), ("ptr", BQ.data_ptr()), ("ptr", L.data_ptr()), g,
                                  ("ptr", DR.data_ptr()), ("u32", N)], stream)
        return DR
    # whether "pre" reads a strided dY (lowrank-wy.ts's dyStride, the fp32 kernels; LR_EV_LINES then makes the dy line a
    # slot of wy's events; a twin picked later copies it contiguous, as the events were copied before)
    launch.dy_stride = any(k["op"] == "pre" and k.get("dyStride") for k in km.kernels)
    return launch


def mm_dtype(given_dtypes, dtype, way=None):
    """The dtype of ChunkCore's product operands (LR_MM, or way): None (the compute dtype `dtype`) or torch.bfloat16;
    given_dtypes: the dtypes of the tensors given to the forward (None where absent)."""
    way = way or LR_MM
    if way not in ("auto", "fp32", "bf16"):
        raise ValueError("LR_MM %r: one of auto, fp32, bf16" % (way,))
    if dtype == torch.float64 or way == "fp32":
        return None
    if way == "bf16" or any(d == torch.bfloat16 for d in given_dtypes):
        return torch.bfloat16
    return None


def backward(ctx, m, flat, grads):
    """The body of a seqc Function's backward through the low-rank chain (ctx from seqc_torch.forward with ctx.chunked;
    flat: the saved (*inputs, *params, *initial states), None where absent): gradients as seqc_torch.backward returns
    them. bfloat16 tensors run the chain in float32 (its plans have fp32 forms only) and get their gradients back in
    their own dtype.

    On CUDA with LR_GRAPHS (and m.graphs, SEQC_TORCH_GRAPHS not 0, LR_TIMES None) the whole launch sequence (the plans'
    launches and the torch glue) runs as a CUDA graph per signature (seqc_graphs.graphed: captured on a signature's
    second call, replayed after; a capture that fails leaves that signature eager)."""
    if not LR_GRAPHS or LR_TIMES is not None:
        return backward_eager(ctx, m, flat, grads)
    switches = (LR_CHUNK, LR_DECAY, LR_PASS, LR_SEQ_FORM, LR_READ, LR_AUG, LR_KEY, BLOCK, LR_LAYOUT, LR_SHARE, LR_SOLVE, SOLVE_BLOCK,
                LR_MM, tuple(LR_MM_PARTS), LR_LEAN, LR_FUSED, LR_FUSED_READ, LR_BWD, LR_FUSED_PASS, LR_FUSED_WY, LR_Y_READ, LR_COPIES, LR_MERGE, LR_BWD_KEY, LR_WY_K128, LR_PASS_COLS, LR_REV_READ)
    given_dtypes = [x.dtype if x is not None else None for x in flat[: len(m.inputs)]]
    switches += (read_math(given_dtypes), wy_math(given_dtypes), core_math(given_dtypes))
    switches += (LR_READ_K128, LR_CORE_K128)
    switches += (wy_math_k128(given_dtypes), LR_WY_MMA_OPS)
    switches += (LR_READ_KEY, LR_READ_KEY_PRE, LR_CHAIN_REV)
    switches += (LR_EV_LINES, LR_FUSED_DELTA, delta_tin(given_dtypes), LR_DELTA_MMA)
    switches += (LR_STATELESS, LR_DELTA_GLUE, _delta.launch_switches())
    switches += _chunked.stateless_switches()  # (the stateless parts' picks: STATELESS_ROWS, STATELESS_VEC, ...)
    states = fwd_states(ctx)  # (LR_FWD_STATES: the forward's chunk states, graph arguments)
    switches += (LR_FWD_STATES, states is not None)
    return _graphs.graphed_backward(ctx, m, "lowrank-backward", switches, flat, grads, lambda f, g, *x: backward_eager(ctx, m, f, g, convert=False, states=x or None),
                                     extra=list(states or ()), given_dtype=False)


def delta_tin(given_dtypes, way=None):
    """The dtype LR_FUSED_DELTA's kernels take the per-token inputs in (LR_DELTA_TIN, or way): torch.bfloat16 with "bf16"
    where a given tensor is bf16, else None (float32, the glue's)."""
    way = way or LR_DELTA_TIN
    if way not in ("f32", "bf16"):
        raise ValueError("LR_DELTA_TIN %r: one of f32, bf16" % (way,))
    return torch.bfloat16 if way == "bf16" and any(d == torch.bfloat16 for d in given_dtypes) else None


def delta_math(way=None):
    """delta_launcher's math (LR_DELTA_MMA, or way): None ("off"), "tf32" or "bf16" (seqc_delta_bwd.MATH_PREFS)."""
    way = way or LR_DELTA_MMA
    if way not in ("off", "tf32", "bf16"):
        raise ValueError("LR_DELTA_MMA %r: one of off, tf32, bf16" % (way,))
    return None if way == "off" else way


def split3_twin(v, names):
    """LR_FWD_STATES' forward variant for the auto pick v among the variant names that apply (names): v where it is a
    split3 variant; else split3 with v's io, key size, value tile and phase A options (the walk's options and -nb
    dropped; a fused variant's io, key size and value tile), else the first split3 variant of v's io and key size in
    plan order; None where there is none or v is no split or fused variant of one row a token (-r1: its chunks are the 64
    tokens the delta backward's are)."""
    if not ((v.startswith("chunked-split") or v.startswith("chunked-fused-")) and v.endswith("-r1")):
        return None
    if v.startswith("chunked-split3-"):
        return v
    parts = v.split("-")
    walk = {"w512", "wc", "wk", "wq", "wcp", "vi", "vib", "qi", "qxi", "nb", "st"}
    cand = "-".join(["chunked", "split3"] + [p for p in parts[2:-1] if p not in walk] + ["r1"])
    if cand in names:
        return cand
    pre = "chunked-split3-%s-%s-" % (parts[2], parts[3])
    return next((x for x in names if x.startswith(pre) and x.endswith("-r1")), None)


def states_twin(v, names):
    """LR_FWD_STATES "on"'s forward variant for the auto pick v among the variant names that apply (names): v's twin whose
    split walk also stores each chunk's start state (v with "-st" before "-r1": chunked-walk-states.ts; the same phase A,
    walk and outputs, plus the stores) where names has it, else split3_twin(v, names)."""
    if v.endswith("-st-r1"):
        return v
    if v.endswith("-r1") and v[:-3] + "-st-r1" in names:
        return v[:-3] + "-st-r1"
    return split3_twin(v, names)


def fwd_states_form(m, dims, B, T, io, device, form="auto", way=None):
    """LR_FWD_STATES (or way) "on" / "split3": the forward variant whose walk keeps the chunk start states (workspace
    "chunkS") for the delta backward (states_twin / split3_twin of the forward's pick), where the chain is one delta step a
    token with no or a scalar decay and the module has kernels.deltaStates; else None (and always with "off")."""
    way = way or LR_FWD_STATES
    if way not in ("off", "on", "split3"):
        raise ValueError("LR_FWD_STATES %r: one of off, on, split3" % (way,))
    n = (m.chunked or {}).get("lowRank")
    if way == "off" or n is None or io not in ("bf16", "f32") or form not in ("auto", "chunked"):
        return None
    if not (n["E"] == 1 and n["P"] == 1 and n["R"] == 1) or n["decay"] == "key" or "deltaStates" not in (m.meta.get("kernels") or {}):
        return None
    r = m.runner("forward", device)
    cache = r.__dict__.setdefault("_fwd_states", {})  # (applicable evaluates every form: once a shape)
    key = (tuple(sorted(dims.items())), B, T, form, io, way)
    if key not in cache:
        v = (states_twin if way == "on" else split3_twin)(r.pick(dims, B, T, form, io)[0]["variant"], [f["variant"] for f, _ in r.applicable(dims, B, T, "auto", io)])
        f = next((f for f in r.plan["forms"] if f["variant"] == v), None)
        cache[key] = v if f is not None and any(w["name"] == "chunkS" for w in f["workspaces"]) else None
    return cache[key]


def y_binds(m, prefix, way=None):
    """lowrank_backward's post_binds for module m (LR_Y_READ, or way): with "bound" the names post's backward plan
    (prefix + "postBw") binds (plan_binds), with "always" None."""
    way = way or LR_Y_READ
    if way not in ("bound", "always"):
        raise ValueError("LR_Y_READ %r: one of bound, always" % (way,))
    return plan_binds(m, prefix + "postBw") if way == "bound" else None


def stateless_run(m, prefix, dims, pars, dtype, device, run):
    """run (seqc_graphs.chain_runner's) with the stateless parts (cdims None) on their bf16-input twins (LR_STATELESS
    "twins"): where dtype is float32, the plan has them and each input a twin reads in bf16 is given in bf16, the form is
    trial-timed (seqc_chunked.stateless_form) and the outputs it leaves unwritten (literal zeros: no piece of any sum) are
    left out. Else run as it is (its float32 forms convert bf16 inputs as they read them: seqc_torch.execute)."""
    if LR_STATELESS not in ("twins", "f32"):
        raise ValueError("LR_STATELESS %r: one of twins, f32" % (LR_STATELESS,))

    def best_ms(f):  # f's GPU time (CUDA events, the best of two runs)
        best = None
        for _ in range(2):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            # a spin kernel ahead (~1 ms), so that f's launches queue behind it and the events time its kernels, not the
            # host's launching (seqc_chunked's trials time both: 0.3-0.4 ms for kernels of 0.2 ms)
            if TRIAL_SPIN and hasattr(torch.cuda, "_sleep"):
                torch.cuda._sleep(TRIAL_SPIN)
            ev[0].record()
            f()
            ev[1].record()
            ev[1].synchronize()
            ms = ev[0].elapsed_time(ev[1])
            best = ms if best is None else min(best, ms)
        return best

    def twin(part, cdims, inputs, initial, b, t, out_io="f32"):
        key = prefix + part
        if cdims is not None or LR_STATELESS != "twins" or dtype != torch.float32 or key not in m.meta["plans"]:
            return run(part, cdims, inputs, initial, b, t)
        r = m.runner(key, device)
        if out_io != "f32" and not r.can_run(dims, b, t, "auto", "bf16", out_io):
            out_io = "f32"  # (no twin writing bf16 outputs: the float32 ones)
        if not r.can_run(dims, b, t, "auto", "bf16", out_io):
            return run(part, cdims, inputs, initial, b, t)
        ins = inputs
        if any(inputs.get(k) is not None and inputs[k].dtype != torch.bfloat16 for k in r.pick(dims, b, t, "auto", "bf16", out_io)[0].get("bf16Inputs") or ()):
            return run(part, cdims, inputs, initial, b, t)  # (one of them computed in float32: the float32 forms)
        st = {"io": "bf16", "out_io": out_io}
        trial = None
        if device.type == "cuda" and not torch.cuda.is_current_stream_capturing():
            def trial(v):
                return best_ms(lambda: m.execute(key, dims, b, t, ins, pars, initial, dtype, device, v, **st))
        # prep's backward given the delta adjoint's gradients in bf16 (seqc_delta_bwd.ADJ_OUT "bf16"): its twins reading
        # them as they are ("-bf16bar", bf16Bars), where the plan has them and every one of them came in bf16
        bars = {n for f in r.plan["forms"] for n in f.get("bf16Bars") or ()}
        form = None
        if bars and all(inputs.get(n) is not None and inputs[n].dtype == torch.bfloat16 for n in bars):
            form = _chunked.stateless_form(r, dims, b, t, trial, bars=True, **st)
        if form is None:
            form = _chunked.stateless_form(r, dims, b, t, trial, **st)
        outs, final, variant = m.execute(key, dims, b, t, ins, pars, initial, dtype, device, form, **st)
        for o in next((f.get("unwritten") or () for f in r.plan["forms"] if f["variant"] == variant), ()):
            outs.pop(o, None)
        return outs, final
    # lowrank_backward's pointwise may ask for bf16 outputs (out_io "bf16": the "-bf16out" twins, LR_DELTA_GLUE)
    twin.bf16_out = True
    return twin


def fwd_states(ctx):
    """The forward's chunk states kept for the backward (ctx.delta_states, LR_FWD_STATES), or None: none kept, or kept in
    the forward graph's memory (LR_FWD_STATES_COPY "graph") and written over since by a replay (ctx.delta_states_valid)."""
    states = getattr(ctx, "delta_states", None)
    ok = getattr(ctx, "delta_states_valid", None)
    return states if states is None or ok is None or ok() else None


def backward_eager(ctx, m, flat, grads, convert=True, states=None):
    """backward without a graph; convert=False leaves the gradients in the compute dtype (float32 for bf16 tensors);
    states: the forward's chunk states (None: ctx.delta_states where the forward kept them, LR_FWD_STATES)."""
    states = states if states is not None else fwd_states(ctx)
    B, T, dims, dtype, device = ctx.B, ctx.T, ctx.dims, ctx.dtype, ctx.device
    n = m.chunked["lowRank"]
    ni, npar = len(m.inputs), len(m.params)
    given, pars, sts, prefix = _graphs.saved_by_name(m, [None] * ni + list(flat[ni:]), dtype)  # (the inputs below)

    def form(part, key, cdims, b, t):
        if dtype == torch.float32:
            r = m.runner(key, device)
            if cdims is None:
                return _chunked.stateless_form(r, dims, b, t)
            if part in LR_CHUNKED_PARTS and r.can_run(cdims, b, t, "chunked"):
                return "chunked"
            if part in LR_SEQ_PARTS and LR_SEQ_FORM != "auto" and r.can_run(cdims, b, t, LR_SEQ_FORM):
                return LR_SEQ_FORM
        return "auto"
    run = stateless_run(m, prefix, dims, pars, dtype, device, _graphs.chain_runner(m, prefix, dims, pars, dtype, device, form))
    # with LR_STATELESS "twins" bf16 inputs and cotangents stay bf16: the glue reads them only through the stateless parts,
    # whose twins read them as they are (their float32 forms convert them where they run)
    twins = LR_STATELESS == "twins" and dtype == torch.float32

    def low(x):
        return x.detach() if twins and x.dtype == torch.bfloat16 else x.detach().to(dtype)
    given.update({t["name"]: low(x) for t, x in zip(m.inputs, flat[:ni]) if x is not None})

    def shape(t):
        return [_chunked._cuda.eval_size(s, dims) for s in t["shape"]]

    state = next(s for s in m.states if s["name"] == n["state"])
    no = len(m.outputs)
    cot_out = {t["name"]: (low(g) if g is not None else None) for t, g in zip(m.outputs, grads[:no])}
    cot_state = None
    for s, g in zip(m.states, grads[no:]):
        if s["name"] == n["state"] and g is not None:
            cot_state = g.to(dtype)
    given_dtypes = [x.dtype if x is not None else None for x in flat[:ni]]
    mm = mm_dtype(given_dtypes, dtype)
    gin, gpar, dS0 = lowrank_backward(
        n, run, B, T, shape(state), given, sts.get(n["state"]), cot_out, cot_state,
        [(t["name"], shape(t)) for t in m.inputs if t["name"] in given], [(t["name"], shape(t)) for t in m.params], [(t["name"], shape(t)) for t in m.outputs], dtype, device,
        can_chunk=lambda part, cdims, b, t: dtype == torch.float32 and m.runner(prefix + part, device).can_run(cdims, b, t, "chunked"), mm=mm,
        fused=core_k128(fused_launcher(m, device, math=core_math(given_dtypes)), fused_launcher(m, device)) if dtype == torch.float32 else None, readout=readout_key_launcher(read_k128(readout_launcher(m, device, math=read_math(given_dtypes))), m, device) if dtype == torch.float32 else None,
        passer=pass_launcher(m, device) if dtype == torch.float32 else None, wy_kern=wy_launcher(m, device, math=wy_math(given_dtypes), math128=wy_math_k128(given_dtypes)) if dtype == torch.float32 else None,
        post_binds=y_binds(m, prefix), delta_kern=_delta.delta_launcher(m, device, LR_FUSED_DELTA, tin=delta_tin(given_dtypes), math=delta_math()) if dtype == torch.float32 else None, fwd_states=states)
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
    if not convert:
        return list(res)
    return tuple(g.to(x.dtype) if g is not None and g.dtype != x.dtype else g for g, x in zip(res, flat))
