#!/usr/bin/env bash
# Run 29b's plans (bench/cuda/chunked/run29b.sh): Simple GLA's auto pick since 9f4b7f1 (split-v64-vi-w512) beside the
# pick before it (split-v64-w512), confirming run 29 in a second lease; Gated DeltaNet (4, 8192, 16, 128)'s auto pick
# (split-v64-a512-iw-ios-w512) beside the forms of the plan that were not timed on the H200 at that shape: splitd after
# the -a512-iw phase A (its record leaves Q~ and X~ out, the walk reads q and k), split3 after -a512-iw-ios (-wk-w512,
# -wc), split's 256-thread walk and the -a384 / 256-thread -iw-ios phase A; DeltaNet's auto pick there, for the gate's
# cost per kernel in the same call. Built in a clean worktree of a commit (REV, default HEAD).
#   here:   bash bench/cuda/chunked/build-run29b.sh   -> dist/chunked-plans-run29b, dist/chunked-check-run29b.mjs
# SG / GD override the Simple GLA / delta-rule variant patterns, RUN the plans' name (the -gf phase A's first call:
#   RUN=29c GD='split-bf16-k128-v64-a512-iw-ios(-gf)?-w512' bash bench/cuda/chunked/build-run29b.sh).
set -euo pipefail
SG=${SG:-'split-bf16-k128-v64(-vi)?-w512'}
GD=${GD:-'split-bf16-k128-v64-a(512|384)-iw-ios(-w512)?|splitd-bf16-k128-v(64|32)-a512-iw|split3-bf16-k128-v(64-a512-iw-ios-wk-w512|32-a512-iw-ios-wc|16-a512-iw-ios-wc)'}
RUN=${RUN:-29b} BUILD="simple_gla,gated_deltanet,deltanet ^chunked-($SG|$GD)-r1\$" PTXAS_MODE=spills LIST=1 \
  exec bash "$(dirname "$0")/build-plans.sh"
