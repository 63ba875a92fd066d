#!/usr/bin/env bash
# Run 28 (one call on the H200, <= 170 s): Simple GLA at (4, 8192, 16, 128) only (issue 5's miss in run 27): auto's
# split-v64 and every other variant of build-run28.sh's plan, two seqc rounds, a process per round, seqc alone on the
# GPU; GPU checks of all of them against float64 (B = 2, T = 70, initial state) beside fla's Triton precompile; then fla
# chunk_simple_gla alone at that case, and compare.py. $OUT keeps run.log, the JSON files and run28.txt (every variant's
# rounds and parts, then floor, anchor, auto's rounds, anchor / seqc).
#   here:   bash bench/cuda/chunked/build-run28.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run28.sh" timeout_s=170
#     carry=[".device", "dist/chunked-plans-run28", "dist/chunked-check-run28.mjs", ".anchors", ".whl"]
set -uo pipefail
RUN=${RUN:-28} ROUNDS=${ROUNDS:-2} MODELS=simple_gla ALL=simple_gla:s2 SEQC_ANCHOR_CASES=simple_gla:s2 \
  CHECK_EXTRA='split-bf16-k128-v(64|32)(-w512)?|split-bf16-k128-v16|splitd-bf16-k128-v(64|32)|split3-bf16-k128-v(64|32)(-g2t)?|split3-bf16-k128-v32-g4t|fused-bf16-k128-v(64|32)' \
  EXPECT='simple_gla:s2=split-bf16-k128-v64' \
  B_END=60 W_END=105 K_END=100 A_END=135 C_END=145 RP_TIMEOUT=150 RP_TAIL=30 RP_GREP=1 RP_TXT=run28.txt RP_TABLE=--summary exec bash "$(dirname "$0")/run-plans.sh"
