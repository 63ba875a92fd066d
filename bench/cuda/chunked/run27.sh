#!/usr/bin/env bash
# Run 27 (one call on the H200, <= 330 s): all 18 issue-5 cases with HEAD's auto picks (build-run27.sh), two seqc rounds, a
# process per model and round, seqc alone on the GPU; at DeltaNet's and Gated DeltaNet's (8, 2048, 16, 64) also split
# -a512-iw-ios beside auto's -a512-iw in both rounds; GPU checks of all against float64 (B = 2, T = 70, initial state)
# beside the anchors' Triton precompile; then the anchors (fla, mamba_ssm) alone at the 18 cases, and compare.py.
# $OUT keeps run.log, the JSON files and run27.txt (the last table: floor, anchor, seqc rounds, anchor / seqc).
# EXPECT holds ee80139's picks, the plans' commit (since c7244bd auto takes -a512-iw-ios at K = 64: build with REV=ee80139).
#   here:   bash bench/cuda/chunked/build-run27.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run27.sh" timeout_s=330
#     carry=[".device", "dist/chunked-plans-run27", "dist/chunked-check-run27.mjs", ".anchors", ".whl"]
set -uo pipefail
RUN=${RUN:-27} ROUNDS=${ROUNDS:-2} ALL=deltanet:s1,gated_deltanet:s1 CHECK_EXTRA='split-bf16-k64-v32-a512-iw-ios' \
  EXPECT='simple_gla:s1=splitd-bf16-k64-v32 simple_gla:s2=split-bf16-k128-v64 simple_gla:s3=split3-bf16-k128-v32-g4t
gla:s1=split-bf16-k64-v32-mw gla:s2=split-bf16-k128-v64-a512-mw gla:s3=split3-bf16-k128-v32-a512-mw-g4t
deltanet:s1=split-bf16-k64-v32-a512-iw deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s3=split3-bf16-k128-v16-a512-iw-ios-wc
gated_deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 gated_deltanet:s3=split3-bf16-k128-v16-a512-iw-ios-wc
rwkv7:s1=split-bf16-k64-v32-mw rwkv7:s2=split-bf16-k128-v64-a512-mw rwkv7:s3=split3-bf16-k128-v8-a512-mw
mamba2:s1=fused-bf16-k64-v64 mamba2:s2=splitd-bf16-k64-v32 mamba2:s3=split3-bf16-k64-v64-g4t' \
  B_END=110 W_END=205 K_END=200 A_END=295 C_END=312 RP_TIMEOUT=318 RP_TAIL=30 RP_GREP=1 RP_TXT=run27.txt RP_TABLE=--summary exec bash "$(dirname "$0")/run-plans.sh"
