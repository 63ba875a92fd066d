#!/usr/bin/env bash
# Run 27's plans (bench/cuda/chunked/run27.sh): HEAD's auto picks at all 18 (model, shape) cases (test/cuda-chunked.test.ts,
# after e574f3c: the delta rule's -a512-iw-ios at K = 128) plus, at K = 64, DeltaNet's and Gated DeltaNet's split
# -a512-iw-ios (on request; faster than auto's -a512-iw in run 26b's one call). Built in a clean worktree of a commit
# (REV, default HEAD) so that no uncommitted edit enters; only these variants.
#   here:   bash bench/cuda/chunked/build-run27.sh   -> dist/chunked-plans-run27, dist/chunked-check-run27.mjs
set -euo pipefail
RUN=${RUN:-27} BUILD='simple_gla ^chunked-(splitd-bf16-k64-v32|split-bf16-k128-v64|split3-bf16-k128-v32-g4t)-r[12]$
gla ^chunked-(split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v32-a512-mw-g4t)-r[12]$
deltanet,gated_deltanet ^chunked-(split-bf16-k64-v32-a512-iw(-ios)?|split-bf16-k128-v64-a512-iw-ios-w512|split3-bf16-k128-v16-a512-iw-ios-wc)-r[12]$
rwkv7 ^chunked-(split-bf16-k64-v32-mw|split-bf16-k128-v64-a512-mw|split3-bf16-k128-v8-a512-mw)-r[12]$
mamba2 ^chunked-(fused-bf16-k64-v64|splitd-bf16-k64-v32|split3-bf16-k64-v64-g4t)-r[12]$' \
  PTXAS='.*\(walk\|phaseA\)' PTXAS_MODE=spills LIST=1 exec bash "$(dirname "$0")/build-plans.sh"
