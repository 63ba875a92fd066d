#!/usr/bin/env bash
# Run 22's plans (bench/cuda/chunked/run22.sh): HEAD's auto picks at all 18 (model, shape) cases, as run 18, after
# 73fed2c (phase A keeps Q as bf16(q) with a scalar or no decay; rsqrt(K) in fp32 where Q is consumed), the readouts'
# copy helper (52671f6) and the new delta-rule picks (-a512-iw, -a384-iw-w512, -a384-iw-wc). Built in a clean worktree
# of a commit (REV, default HEAD) so that no uncommitted edit enters; only the variants auto picks, 3 per model.
#   here:   bash bench/cuda/chunked/build-run22.sh   -> dist/chunked-plans-run22, dist/chunked-check-run22.mjs
set -euo pipefail
RUN=22 REV_FILE=plain BUILD='simple_gla ^chunked-(splitd-bf16-k64-v32|split-bf16-k128-v64|split3-bf16-k128-v32-g4t)-r[12]$
gla ^chunked-(split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v32-a512-mw-g4t)-r[12]$
deltanet,gated_deltanet ^chunked-(split-bf16-k64-v32-a512-iw|split-bf16-k128-v64-a384-iw-w512|split3-bf16-k128-v16-a384-iw-wc)-r[12]$
rwkv7 ^chunked-(split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v8-a512-mw)-r[12]$
mamba2 ^chunked-(fused-bf16-k64-v64|splitd-bf16-k64-v32|split3-bf16-k64-v64-g4t)-r[12]$' \
  exec bash "$(dirname "$0")/build-plans.sh"
