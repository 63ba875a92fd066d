#!/bin/bash
# helper F, session 12: HEAD 1993d0a's torch defaults timed together at (8, 2048, 16, 64), one card call.
# 1) bench/torch/shapes-run.sh (HEAD's copy, in the modules' bench/): bf16 fwd+bwd eager GPU ms, every model beside its
#    anchor in one process, accuracy at 1x1024 vs float64 while workers precompile the anchors' Triton kernels;
# 2) lowrank_bench.py --variants 19 for DeltaNet: LR_EV_LINES off / on, bf16 and fp32, CUDA graphs, one process.
set -uo pipefail
MOD=dist/torch-head12
export MODULES=$MOD BENCH=$MOD/bench
R=$OUT
T0=$(date +%s)
S=8x2048x16x64
CASES="deltanet:$S,gated_deltanet:$S,rwkv7:$S,gla:$S,simple_gla:$S,mamba2:8x2048x32x64" ACC=1x1024 ACC_S=45 WARM_S=50 TIME_S=${TIME_S:-115} BUDGET=${BUDGET:-95} \
  OUT=$R/shapes timeout ${SHAPES_S:-180} bash $MOD/bench/shapes-run.sh
echo "t=$(( $(date +%s) - T0 ))s shapes-run done" | tee -a $R/run.log
left=$(( ${TOTAL_S:-250} - ($(date +%s) - T0) ))
echo "evlines: ${left}s left" | tee -a $R/run.log
if [ "$left" -gt 35 ]; then
  export PYTHONPATH=$PWD/.anchors TRITON_CACHE_DIR=/tmp/triton-cache FLA_CACHE_RESULTS=0 PYTHONUNBUFFERED=1
  timeout $(( left - 5 )) python3 $MOD/bench/lowrank_bench.py $MOD --models deltanet --shapes $S --variants 19 --reps 15 \
    --budget 20 --fla-max-configs 4 --out $R/evlines.json > $R/evlines.log 2>&1
  echo "evlines exit $?" | tee -a $R/run.log
  tail -12 $R/evlines.log
fi
echo "t=$(( $(date +%s) - T0 ))s all done" | tee -a $R/run.log
