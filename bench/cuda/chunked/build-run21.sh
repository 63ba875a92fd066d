#!/usr/bin/env bash
# Run 21's plans (bench/cuda/chunked/run21.sh), built in a clean worktree of a commit (REV, default HEAD) so that no
# uncommitted edit enters: the delta rule's (8, 2048, 16, 64) cases with auto's new phase A on 512 threads (-a512-iw,
# -a512-mw; default plans since run 21) beside the old picks (-a384-iw, RWKV-7's 256-thread -mw) and -a384-mw
#   -> dist/chunked-plans-run21 and dist/chunked-check-run21.mjs
#   here:   bash bench/cuda/chunked/build-run21.sh
set -euo pipefail
RUN=21 REV_FILE=0 DU_BUNDLE=0 \
  BUILD='deltanet,gated_deltanet,rwkv7 ^chunked-split-bf16-k64-v32(-a384-iw|-a512-iw|-mw|-a384-mw|-a512-mw)-r[12]$' \
  exec bash "$(dirname "$0")/build-plans.sh"
