#!/bin/bash
# One card call for the delta backward's prep kernels before and after the staged TF32 twins (session 14 task C,
# compiler/backends/cuda/delta-prep-staged.ts): bench/torch/delta_prep_bench.py, one process, one runtime (HEAD's, from
# the after directory): prep_fwd / prep_bwd alone (DeltaNet decay "none", Gated DeltaNet "scalar") at (8, 2048, 16, 64)
# and (4, 8192, 16, 128), gradients vs float64 at (2, 1024), DeltaNet's bf16 step under CUDA graphs and eager.
# Prepared here (git-ignored), from a clean export of HEAD (git archive) with DELTA_PREP_MMA_CONFIGS given staged: true:
#   npx tsx bench/torch/build-chunked.ts dist/torch-s14c-after deltanet,gated_deltanet dist/torch-d2   (in the export)
#   dist/s14c/{before: dist/torch-d2's DeltaNet / GatedDeltaNet .torch.json (HEAD's twins, call D2's build),
#              after: dist/torch-s14c-after's modules and runtime, bench: delta_prep_bench.py, lowrank_bench.py,
#              train_bench.py, chunked_bench.py, this script};  tar -C dist -czf dist/s14c.tgz s14c
# Device: carry=["dist/s14c.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/s14c.tgz && OUT=$OUT bash dist/s14c/bench/delta-prep-run.sh"
# RWKV-7's per-key twins with batched loads and bf16 V / dY (6defe7a, 55b565c; prepared, not run): dist/s14c-key/{before:
# the Rwkv7 module of a clean export of HEAD 55b565c, after: the same with DELTA_PREP_KEY_MMA_CONFIGS given batched: true,
# its runtime, bench} (8.4 MB);
#   carry=["dist/s14c-key.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/s14c-key.tgz && D=dist/s14c-key OUT=$OUT
#   ARGS='--models rwkv7 --step-models rwkv7 --step-shapes 8x2048x16x64' bash dist/s14c-key/bench/delta-prep-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/delta-prep-out}
D=${D:-dist/s14c}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
export PYTHONPATH=$PWD/$D/after
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${BENCH_S:-170}" python3 "$D/bench/delta_prep_bench.py" "$D/before" "$D/after" --out "$OUT" --reps "${REPS:-10}" ${ARGS:-} 2>&1 | tee "$OUT/bench.txt" | tail -14
echo "bench exit ${PIPESTATUS[0]}"
