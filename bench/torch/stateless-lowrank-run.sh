#!/bin/bash
# One GPU call for the delta family's stateless parts (prep, prep's and post's backward) with their float32 forms and
# with their bf16-input twins (seqc_chunked_lowrank.LR_STATELESS "f32" / "twins"; issue 6):
# bench/torch/stateless_lowrank_bench.py, DeltaNet, Gated DeltaNet and RWKV-7 bf16 at (8, 2048, 16, 64), one process.
# Prepared here (git-ignored):
#   npx tsx bench/torch/build-chunked.ts dist/torch-e13c deltanet,gated_deltanet,rwkv7 <cache dirs>
#   tar -C dist -czf dist/torch-e13c.tgz torch-e13c
# Device: run command="mkdir -p dist && tar -C dist -xzf dist/torch-e13c.tgz && OUT=$OUT timeout 200 bash bench/torch/stateless-lowrank-run.sh"
#   carry=["dist/torch-e13c.tgz"]
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/stateless-lowrank-out}
MOD=${MODULES:-dist/torch-e13c}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${BENCH_S:-180}" python3 bench/torch/stateless_lowrank_bench.py "$MOD" --out "$OUT" --models "${MODELS:-deltanet,gated_deltanet,rwkv7}" \
  --reps "${REPS:-10}" 2>&1 | tee "$OUT/bench.txt" | tail -25
echo "bench exit ${PIPESTATUS[0]}"
