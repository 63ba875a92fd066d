#!/usr/bin/env bash
# Run 26's plans (bench/cuda/chunked/run26.sh): DeltaNet and Gated DeltaNet at K = 128 with phase A's record copies and
# alpha v's load beside the inverse (-iw-io, and -iw-ios with M and U0 stored 16 bytes a thread; chunked-phase-a-ovl.ts,
# on request) against auto's picks: split's 512-thread 64-value walk after -a512-iw (auto's at (4, 8192, 16, 128)) and
# split3's 16-value -wc walk after -a384-iw (auto's at (1, 32768, 8, 128)), and split3 -wc after -a512-iw-ios.
# Built in a clean worktree of a commit (REV, default HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run26.sh   -> dist/chunked-plans-run26, dist/chunked-check-run26.mjs
set -euo pipefail
RUN=${RUN:-26} BUILD='deltanet,gated_deltanet ^chunked-(split-bf16-k128-v64-a512-iw(-ios?)?-w512|split3-bf16-k128-v16-a384-iw(-ios?)?-wc|split3-bf16-k128-v16-a512-iw-ios-wc)-r1$' \
  PTXAS='.*\(walk\|phaseA\)' PTXAS_MODE=lines exec bash "$(dirname "$0")/build-plans.sh"
