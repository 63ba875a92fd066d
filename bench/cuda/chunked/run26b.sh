#!/usr/bin/env bash
# Run 26b (one call, <= 280 s): run 26's second call, after auto took -a512-iw-ios at K = 128 for the delta rule: DeltaNet and
# Gated DeltaNet at (8, 2048, 16, 64) (s1), (4, 8192, 16, 128) (s2) and (1, 32768, 8, 128) (s3); every variant of
# build-run26b.sh's plans at all three (auto's new picks, run 26's old ones on request, split's -wq walk after -a512-iw-ios,
# and at K = 64 -a512-iw-ios beside auto's -a512-iw), two rounds, phase A and walk also timed alone, a process per model
# and round, seqc alone on the GPU; GPU checks of all against float64 (B = 2, T = 70, initial state); then fla's
# chunk_delta_rule and chunk_gated_delta_rule alone at the six cases. $OUT keeps run.log, the JSON files and run26b.txt.
#   here:   bash bench/cuda/chunked/build-run26b.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run26b.sh" timeout_s=290
#     carry=[".device", "dist/chunked-plans-run26b", "dist/chunked-check-run26b.mjs", ".anchors", ".whl"]
set -uo pipefail
C=deltanet:s1,gated_deltanet:s1,deltanet:s2,gated_deltanet:s2,deltanet:s3,gated_deltanet:s3
RUN=${RUN:-26b} ROUNDS=${ROUNDS:-2} MODELS='deltanet gated_deltanet' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s1=split-bf16-k64-v32-a512-iw deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s3=split3-bf16-k128-v16-a512-iw-ios-wc gated_deltanet:s3=split3-bf16-k128-v16-a512-iw-ios-wc' \
  CHECK_EXTRA='split-bf16-k128-v64-a512-iw(-ios)?(-wq)?-w512|split3-bf16-k128-v16-a384-iw-wc|split-bf16-k64-v32-a512-iw-ios' \
  B_END=110 W_END=170 K_END=165 A_END=235 C_END=250 RP_TIMEOUT=255 RP_TAIL=40 RP_TXT=run26b.txt RP_TABLE='--shape --parts --width 50' exec bash "$(dirname "$0")/run-plans.sh"
