#!/usr/bin/env bash
# Run 25's plans (bench/cuda/chunked/run25.sh): DeltaNet and Gated DeltaNet at (4, 8192, 16, 128) with split's 64-value
# 512-thread walk after phase A on 384 threads (run 23b's pick, -a384-iw-w512) and on 512 threads (auto's since this
# commit, -a512-iw-w512), and the walk that forms the readout's Q~ S0 beside Z (-a512-iw-wq-w512, chunked-walk-q.ts; on
# request). Built in a clean worktree of a commit (REV, default HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run25.sh   -> dist/chunked-plans-run25, dist/chunked-check-run25.mjs
set -euo pipefail
RUN=${RUN:-25} BUILD='deltanet,gated_deltanet ^chunked-split-bf16-k128-v64-a(384|512)-iw(-wq)?-w512-r1$' PTXAS='.*walk' PTXAS_MODE=lines \
  exec bash "$(dirname "$0")/build-plans.sh"
