#!/usr/bin/env bash
# Run 30b's plans (bench/cuda/chunked/run30b.sh) at (4, 8192, 16, 128): Gated DeltaNet's auto pick
# (split-v64-a512-iw-ios-w512) beside split's low-rank walk with the next record's copies on the warps without a Z tile
# (-wc-w512, chunked-split-qin.ts seqc_chunk_walk_c) after the core's record and after -qxi's (no Q~ or X~), each after
# -iw-ios and -iw-ios-gf, and -qxi-w512 (run 30's); DeltaNet's auto pick beside -wc-w512 and -qxi(-wc)-w512; Simple GLA's
# auto pick (split-v64-vi-w512) alone. Built in a clean worktree of a commit (REV, default HEAD).
#   here:   bash bench/cuda/chunked/build-run30b.sh   -> dist/chunked-plans-run30b, dist/chunked-check-run30b.mjs
set -euo pipefail
RUN=${RUN:-30b} BUILD="simple_gla,gated_deltanet,deltanet ^chunked-(split-bf16-k128-v64-vi-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?(-qxi)?(-wc)?-w512)-r1\$" \
  PTXAS_MODE=spills LIST=1 exec bash "$(dirname "$0")/build-plans.sh"
