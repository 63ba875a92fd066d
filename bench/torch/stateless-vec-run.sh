#!/bin/bash
# One card call for the stateless parts' vector twins (compiler/backends/torch/stateless-vec.ts; issue 6, session 15
# task E): bench/torch/stateless_vec_bench.py, bf16, seqc_chunked.STATELESS_VEC False ("rm") vs True ("vec"), one process.
# Prepared here (git-ignored): the modules from a clean export of HEAD with bench/torch/build-chunked.ts (deltanet,
# gated_deltanet, rwkv7, gla), bench/torch/*.py and this script packed beside them (MOD/bench), then
# `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/stateless-vec-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/stateless-vec-out}
MOD=${MOD:-dist/torch-e15}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${BENCH_S:-100}" python3 "$MOD/bench/stateless_vec_bench.py" "$MOD" --out "$OUT" --reps "${REPS:-10}" --rounds "${ROUNDS:-2}" \
  --budget "${BUDGET:-80}" ${CASES:+--cases "$CASES"} 2>&1 | tee "$OUT/bench.txt" | tail -40
RC=${PIPESTATUS[0]}
# (the tool returns 8 files: the profiles and the json in one archive)
(cd "$OUT" && tar -czf profiles.tgz profile-*.txt vec.json && rm -f profile-*.txt)
echo "bench exit $RC"
