#!/usr/bin/env bash
# Run 29b (one call on the H200, <= 200 s): run 29 again in a second lease for Simple GLA (4, 8192, 16, 128), auto's
# split-v64-vi-w512 (9f4b7f1) beside the pick before it (split-v64-w512), and Gated DeltaNet there: auto's
# split-v64-a512-iw-ios-w512 beside the untimed forms of build-run29b.sh's plan (splitd after -a512-iw, split3 after
# -a512-iw-ios, split's 256-thread walk, the -a384 -iw-ios phase A); DeltaNet's auto pick alone (the gate's cost per
# kernel, same call; no anchor). Three seqc rounds, a process per model and round, the second in reverse plan order;
# GPU checks of every variant against float64 (B = 2, T = 70, initial state) beside fla's Triton precompile; then fla
# chunk_simple_gla and chunk_gated_delta_rule alone, and compare.py. $OUT keeps run.log, the JSON files and run29b.txt.
#   here:   bash bench/cuda/chunked/build-run29b.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run29b.sh" timeout_s=200
#     carry=[".device", "dist/chunked-plans-run29b", "dist/chunked-check-run29b.mjs", ".anchors", ".whl"]
# The inputs come from anchors.py gen, restricted to SEQC_ANCHOR_CASES: DeltaNet is checked but not timed (run 29b).
# Next call (the -gf phase A, built as build-run29b.sh's header says): run command="source .device/enter.sh && RUN=29c
#   CHECK29='split-bf16-k128-v64(-vi)?-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?-w512' bash bench/cuda/chunked/run29b.sh"
#   carry=[".device", "dist/chunked-plans-run29c", "dist/chunked-check-run29c.mjs", ".anchors", ".whl"]
set -uo pipefail
RUN=${RUN:-29b} ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="simple_gla gated_deltanet deltanet" ALL=simple_gla:s2,gated_deltanet:s2 SEQC_ANCHOR_CASES=simple_gla:s2,gated_deltanet:s2 \
  CHECK_EXTRA="${CHECK29:-split-bf16-k128-v64(-vi)?-w512|split-bf16-k128-v64-a(512|384)-iw-ios(-w512)?|splitd-bf16-k128-v(64|32)-a512-iw|split3-bf16-k128-v(64-a512-iw-ios-wk-w512|32-a512-iw-ios-wc|16-a512-iw-ios-wc)}" \
  EXPECT='simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' \
  B_END=95 W_END=130 K_END=130 A_END=170 C_END=180 RP_TIMEOUT=185 RP_TAIL=30 RP_GREP=1 RP_TXT=run29b.txt RP_TABLE='--summary --rel' exec bash "$(dirname "$0")/run-plans.sh"
