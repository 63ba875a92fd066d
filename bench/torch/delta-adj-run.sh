#!/bin/bash
# One card call for the delta backward's adjoint twins (session 14 task A): bench/torch/delta_adj_bench.py, one process,
# one module build holding both the TF32 twin (math "tf32", delta-adjoint-mma.ts) and the bf16 twin (math "bf16",
# delta-adjoint-bf16.ts): the adjoint alone (DeltaNet decay "none", Gated DeltaNet "scalar") at (8, 2048, 16, 64) and
# (4, 8192, 16, 128), gradients vs float64 at (2, 1024) with LR_DELTA_MMA "tf32" vs "bf16", DeltaNet's bf16 step under
# CUDA graphs and eager with each.
# Prepared here (git-ignored), from a clean export of HEAD (git archive) at the commit that added the bf16 twin:
#   npx tsx bench/torch/build-chunked.ts dist/torch-s14a deltanet,gated_deltanet <cache dirs>   (in the export)
#   dist/s14a/{mod: dist/torch-s14a's modules and runtime, bench: delta_adj_bench.py, lowrank_bench.py, train_bench.py,
#              chunked_bench.py, this script};  tar -C dist -czf dist/s14a.tgz s14a
# Device: carry=["dist/s14a.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/s14a.tgz && OUT=$OUT bash dist/s14a/bench/delta-adj-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/delta-adj-out}
D=${D:-dist/s14a}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
export PYTHONPATH=$PWD/$D/mod
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${BENCH_S:-170}" python3 "$D/bench/delta_adj_bench.py" "$D/mod" --out "$OUT" --reps "${REPS:-10}" 2>&1 | tee "$OUT/bench.txt" | tail -14
echo "bench exit ${PIPESTATUS[0]}"
