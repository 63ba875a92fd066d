#!/usr/bin/env bash
# Run 29's plans (bench/cuda/chunked/run29.sh): issue 5's two misses at (4, 8192, 16, 128). Simple GLA: auto's
# split-v64-w512, the 256-thread split-v64 before it, and split without alpha v in the record (chunked-split-vin.ts:
# -vi, -vi-w512, -vib-w512 over 64 and 32 values; the 32-value w512 / 256 split walks beside them). Gated DeltaNet:
# auto's split-v64-a512-iw-ios-w512 and the same with the -wq walk. Built in a clean worktree of a commit (REV, default
# HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run29.sh   -> dist/chunked-plans-run29, dist/chunked-check-run29.mjs
set -euo pipefail
RUN=${RUN:-29} BUILD='simple_gla,gated_deltanet ^chunked-(split-bf16-k128-v(64|32)(-vi|-vib)?(-w512)?|split-bf16-k128-v64-a512-iw-ios(-wq)?-w512)-r1$' \
  PTXAS_MODE=spills LIST=1 exec bash "$(dirname "$0")/build-plans.sh"
