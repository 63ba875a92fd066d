#!/usr/bin/env bash
# Run 29 (one call on the H200, <= 240 s): issue 5's two misses at (4, 8192, 16, 128), every variant of
# build-run29.sh's plans (Simple GLA: auto's split-v64-w512 against split without alpha v in the record, -vi /
# -vi-w512 / -vib-w512; Gated DeltaNet: auto's split-v64-a512-iw-ios-w512 and its -wq walk), three seqc rounds, a process
# per model and round, the second round in reverse plan order; GPU checks of all of them against float64 (B = 2, T = 70,
# initial state) beside fla's Triton precompile; then fla chunk_simple_gla and chunk_gated_delta_rule alone at those
# cases, and compare.py. $OUT keeps run.log, the JSON files and run29.txt (every variant's rounds and parts, then floor,
# anchor, auto's rounds, anchor / seqc).
#   here:   bash bench/cuda/chunked/build-run29.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run29.sh" timeout_s=240
#     carry=[".device", "dist/chunked-plans-run29", "dist/chunked-check-run29.mjs", ".anchors", ".whl"]
# Run 29b (the second call): plans of 9f4b7f1 (auto's -vi-w512), RUN=29b bash bench/cuda/chunked/build-run29.sh here, then
#   run command="source .device/enter.sh && RUN=29b EXPECT29='simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' bash bench/cuda/chunked/run29.sh"
#     carry=[".device", "dist/chunked-plans-run29b", "dist/chunked-check-run29b.mjs", ".anchors", ".whl"]
set -uo pipefail
RUN=${RUN:-29} ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="simple_gla gated_deltanet" ALL=simple_gla:s2,gated_deltanet:s2 SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 \
  CHECK_EXTRA='split-bf16-k128-v(64|32)(-vi|-vib)?(-w512)?|split-bf16-k128-v64-a512-iw-ios(-wq)?-w512' \
  EXPECT="${EXPECT29:-simple_gla:s2=split-bf16-k128-v64-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512}" \
  B_END=100 W_END=150 K_END=150 A_END=200 C_END=215 RP_TIMEOUT=220 RP_TAIL=30 RP_GREP=1 RP_TXT=run29.txt RP_TABLE='--summary --rel' exec bash "$(dirname "$0")/run-plans.sh"
