#!/usr/bin/env bash
# Run 25 (one call, <= 190 s): DeltaNet and Gated DeltaNet at (4, 8192, 16, 128): split's 64-value 512-thread walk after
# phase A on 384 threads (run 23b's pick), on 512 threads (auto's, -a512-iw-w512) and the walk that forms Q~ S0 beside Z
# (-a512-iw-wq-w512): bench/cuda/chunked/run9.sh with RUN=25, two rounds, every variant of build-run25.sh's plans
# (phase A and walk also timed alone), a process per model and round, seqc alone on the GPU; GPU checks of all three
# against float64 (B = 2, T = 70, initial state); then fla's chunk_delta_rule and chunk_gated_delta_rule alone at the
# two cases. $OUT keeps run.log, the JSON files and run25.txt (a line per variant: forward ms per round [phase A, walk]).
#   here:   bash bench/cuda/chunked/build-run25.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run25.sh" timeout_s=200
#     carry=[".device", "dist/chunked-plans-run25", "dist/chunked-check-run25.mjs", ".anchors", ".whl"]
set -uo pipefail
C=deltanet:s2,gated_deltanet:s2
RUN=${RUN:-25} ROUNDS=${ROUNDS:-2} MODELS='deltanet gated_deltanet' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='deltanet:s2=split-bf16-k128-v64-a512-iw-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-w512' \
  CHECK_EXTRA='split-bf16-k128-v64-a(384|512)-iw(-wq)?-w512' \
  B_END=75 W_END=125 K_END=120 A_END=170 C_END=180 RP_TIMEOUT=186 RP_TAIL=30 RP_TXT=run25.txt RP_TABLE='--parts --width 48' exec bash "$(dirname "$0")/run-plans.sh"
