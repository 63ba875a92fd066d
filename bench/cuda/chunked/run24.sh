#!/usr/bin/env bash
# Run 24 (one call, <= 170 s): phase A software-pipelined (-ap<M>) at (8, 2048, 16, 64) for DeltaNet and Gated DeltaNet:
# bench/cuda/chunked/run9.sh with RUN=24, two rounds, every variant of build-run24.sh's plans (auto's
# split-bf16-k64-v32-a512-iw and its -ap2/-ap4/-ap8/-ap16), a process per model and round, seqc alone on the GPU; GPU
# checks of all of them against float64 (B = 2, T = 70, initial state); then fla's chunk_delta_rule and
# chunk_gated_delta_rule alone at the two cases. $OUT keeps run.log, the JSON files and run24.txt (a line per variant).
# RUN (default 24) and ROUNDS (default 2) as build-run24.sh's; run 24b: RUN=24b ROUNDS=3.
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run24.sh" timeout_s=180
#     carry=[".device", "dist/chunked-plans-run24", "dist/chunked-check-run24.mjs", ".anchors", ".whl"]
set -uo pipefail
C=deltanet:s1,gated_deltanet:s1
RUN=${RUN:-24} ROUNDS=${ROUNDS:-2} MODELS='deltanet gated_deltanet' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s1=split-bf16-k64-v32-a512-iw' \
  CHECK_EXTRA='split-bf16-k64-v32-a512-iw-ap[0-9]+' \
  B_END=60 W_END=110 K_END=105 A_END=150 C_END=160 RP_TIMEOUT=166 RP_TAIL=30 RP_TXT=run24.txt RP_TABLE='--width 46' exec bash "$(dirname "$0")/run-plans.sh"
