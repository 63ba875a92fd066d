#!/usr/bin/env bash
# Run 30 (one call on the H200, <= 220 s): at (4, 8192, 16, 128) Gated DeltaNet's auto pick split-v64-a512-iw-ios-w512
# beside -iw-ios-gf (the decays' prefix beside the load's scale pass), -qi (no Q~ in the record) and -qxi (no Q~ or X~),
# each after -iw-ios and -iw-ios-gf; DeltaNet's auto pick beside its -qi and -qxi; Simple GLA's auto pick (-vi-w512).
# fla chunk_gated_delta_rule, chunk_delta_rule and chunk_simple_gla in the same call (DeltaNet's inputs now generated:
# SEQC_ANCHOR_CASES holds deltanet:s2). Three seqc rounds, a process per model and round, the second in reverse plan
# order; GPU checks of every variant against float64 (B = 2, T = 70, initial state) beside fla's Triton precompile;
# then fla alone, and compare.py. $OUT keeps run.log, the JSON files and run30.txt.
#   here:   bash bench/cuda/chunked/build-run30.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run30.sh" timeout_s=220
#     carry=[".device", "dist/chunked-plans-run30", "dist/chunked-check-run30.mjs", ".anchors", ".whl"]
set -uo pipefail
CASES=simple_gla:s2,gated_deltanet:s2,deltanet:s2
RUN=${RUN:-30} ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="simple_gla gated_deltanet deltanet" ALL=$CASES SEQC_ANCHOR_CASES=$CASES \
  CHECK_EXTRA='split-bf16-k128-v64-vi-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?(-qx?i)?-w512' \
  EXPECT='simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' \
  B_END=110 W_END=145 K_END=145 A_END=190 C_END=200 RP_TIMEOUT=205 RP_TAIL=30 RP_GREP=1 RP_TXT=run30.txt RP_TABLE='--summary --rel' exec bash "$(dirname "$0")/run-plans.sh"
