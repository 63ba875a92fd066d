#!/bin/bash
# One card call for the delta adjoint's gradients in bf16 (seqc_delta_bwd.ADJ_OUT, LR_DELTA_ADJ_OUT; session 15 task C):
# bench/torch/delta_adj_out_bench.py over MOD's DeltaNet and Gated DeltaNet modules: the adjoint and prep's backward
# alone old vs new, gradients vs float64 at 2x1024, the bf16 steps under CUDA graphs with the switch off / on.
# Prepared here (git-ignored): the modules from an export of HEAD (bench/torch/build-chunked.ts deltanet,gated_deltanet),
# runtime/torch/seqc_*.py and bench/torch/*.py beside them (MOD/bench), `tar -C dist -czf dist/<name>.tgz <name>`.
# Device: carry=["dist/<name>.tgz"], command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MOD=dist/<name> OUT=$OUT bash dist/<name>/bench/delta-adj-out-run.sh"
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/seqc-delta-adj-out}
MOD=${MOD:-dist/torch-c15adj}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${TIME_S:-130}" python3 "$MOD/bench/delta_adj_out_bench.py" "$MOD" --parts "${PARTS:-kernels,accuracy,steps}" --shapes "${SHAPES:-4x8192x16x128,1x32768x8x128,8x2048x16x64}" \
  --profile "$OUT" --out "$OUT/adj-out.json" > "$OUT/adj-out.log" 2>&1
echo "bench exit $?"
tail -40 "$OUT/adj-out.log"
