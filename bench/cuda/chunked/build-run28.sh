#!/usr/bin/env bash
# Run 28's plans (bench/cuda/chunked/run28.sh): Simple GLA only, the bf16 K = 128 variants that can take
# (4, 8192, 16, 128) (issue 5's miss in run 27): auto's split-v64 and 13 candidates among the existing variants (split
# over 64 / 32 / 16 values, split's 512-thread walks, splitd, split3 and grouped split3 -g2t / -g4t, fused). Built in a
# clean worktree of a commit (REV, default HEAD) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run28.sh   -> dist/chunked-plans-run28, dist/chunked-check-run28.mjs
set -euo pipefail
RUN=${RUN:-28} BUILD='simple_gla ^chunked-(split-bf16-k128-v(64|32)(-w512)?|split-bf16-k128-v16|splitd-bf16-k128-v(64|32)|split3-bf16-k128-v(64|32)(-g2t)?|split3-bf16-k128-v32-g4t|fused-bf16-k128-v(64|32))-r1$' \
  PTXAS_MODE=spills LIST=1 exec bash "$(dirname "$0")/build-plans.sh"
