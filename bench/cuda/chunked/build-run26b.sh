#!/usr/bin/env bash
# Run 26b's plans (bench/cuda/chunked/run26b.sh), run 26's second call after auto took -a512-iw-ios at K = 128 (low rank, a
# scalar or no decay): DeltaNet and Gated DeltaNet with auto's new picks (split -a512-iw-ios-w512, split3 -a512-iw-ios-wc),
# the old ones on request (split -a512-iw-w512, split3 -a384-iw-wc), split's -wq walk after -a512-iw-ios, and at K = 64
# auto's split -a512-iw (v32) beside -a512-iw-ios (on request there). Built in a clean worktree of a commit (REV, default
# HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run26b.sh   -> dist/chunked-plans-run26b, dist/chunked-check-run26b.mjs
set -euo pipefail
RUN=${RUN:-26b} BUILD='deltanet,gated_deltanet ^chunked-(split-bf16-k128-v64-a512-iw(-ios)?(-wq)?-w512|split3-bf16-k128-v16-a(384-iw|512-iw-ios)-wc|split-bf16-k64-v32-a512-iw(-ios)?)-r1$' \
  PTXAS='.*\(walk\|phaseA\)' PTXAS_MODE=lines exec bash "$(dirname "$0")/build-plans.sh"
