#!/usr/bin/env bash
# Run 31's plans (bench/cuda/chunked/run31.sh) at (4, 8192, 16, 128): Gated DeltaNet's and DeltaNet's auto pick
# (split-v64-a512-iw-ios-w512) beside the overlapped phase A on named barriers (-nb, chunked-phase-a-nbar.ts), split's
# walk with the next record's copies on the warps without a Z tile (-wc-w512) and the record without Q~ and X~ (-qxi),
# alone and combined: -iw-ios[-nb][-qxi][-wc]-w512, 8 forms a model. Built in a clean worktree of a commit (REV,
# default HEAD).
#   here:   bash bench/cuda/chunked/build-run31.sh   -> dist/chunked-plans-run31, dist/chunked-check-run31.mjs
set -euo pipefail
RUN=${RUN:-31} BUILD="gated_deltanet,deltanet ^chunked-split-bf16-k128-v64-a512-iw-ios(-nb)?(-qxi)?(-wc)?-w512-r1\$" \
  PTXAS_MODE=spills LIST=1 exec bash "$(dirname "$0")/build-plans.sh"
