#!/usr/bin/env bash
# Run 30's plans (bench/cuda/chunked/run30.sh) at (4, 8192, 16, 128): Gated DeltaNet's auto pick
# (split-v64-a512-iw-ios-w512) beside the -gf phase A (4d9e4bf, never timed) and the records without Q~ (-qi) and without
# Q~ and X~ (-qxi, chunked-split-qin.ts), after -iw-ios and after -iw-ios-gf; DeltaNet's auto pick (the same kernels)
# beside -qi and -qxi (no -gf: no decay); Simple GLA's auto pick (split-v64-vi-w512) alone. Built in a clean worktree
# of a commit (REV, default HEAD).
#   here:   bash bench/cuda/chunked/build-run30.sh   -> dist/chunked-plans-run30, dist/chunked-check-run30.mjs
set -euo pipefail
RUN=${RUN:-30} BUILD="simple_gla,gated_deltanet,deltanet ^chunked-(split-bf16-k128-v64-vi-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?(-qx?i)?-w512)-r1\$" \
  PTXAS_MODE=spills LIST=1 exec bash "$(dirname "$0")/build-plans.sh"
