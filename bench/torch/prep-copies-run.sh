#!/bin/bash
# One GPU call for the delta family's prep with and without its copies of inputs (chain-copies-lowrank.ts; issue 6,
# task E2): bench/torch/prep_copies_bench.py, DeltaNet and RWKV-7 bf16 at (8, 2048, 16, 64), the modules compiled
# before (dist/torch-e13c, as for bench/torch/stateless-lowrank-run.sh) and after, one process, this checkout's runtime.
# Prepared here (git-ignored):
#   npx tsx bench/torch/build-chunked.ts dist/torch-e2 deltanet,gated_deltanet,rwkv7 dist/torch-e13c
#   tar -C dist -czf dist/torch-e2.tgz torch-e2
# Device: run command="mkdir -p dist && tar -C dist -xzf dist/torch-e13c.tgz && tar -C dist -xzf dist/torch-e2.tgz && OUT=$OUT timeout 170 bash bench/torch/prep-copies-run.sh"
#   carry=["dist/torch-e13c.tgz", "dist/torch-e2.tgz"]
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/prep-copies-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${BENCH_S:-150}" python3 bench/torch/prep_copies_bench.py "${BEFORE:-dist/torch-e13c}" "${AFTER:-dist/torch-e2}" --out "$OUT" \
  --models "${MODELS:-deltanet,rwkv7}" --reps "${REPS:-10}" 2>&1 | tee "$OUT/bench.txt" | tail -12
echo "bench exit ${PIPESTATUS[0]}"
