#!/usr/bin/env bash
# Run 20's plans (bench/cuda/chunked/run20.sh), each built in a clean worktree of a commit so that no uncommitted edit
# enters. REV (default HEAD) -> dist/chunked-plans-run20 and dist/chunked-check-run20.mjs: the grouped split3 readouts'
# picks at (1, 32768) (Simple GLA, GLA, Mamba-2: -g4t), the delta rule's (8, 2048, 16, 64) picks beside phase A on 512
# threads (-a512, -a512-iw, -a512-mw) and 384 (RWKV-7's -a384-mw). OLD=<rev> -> dist/chunked-plans-run20old: the grouped
# picks only, at the commit before the readouts' shared helpers (the old text).
#   here:   bash bench/cuda/chunked/build-run20.sh && OLD=52671f6^ bash bench/cuda/chunked/build-run20.sh
set -euo pipefail
H=$(dirname "$0")
G3='simple_gla,gla,mamba2 ^chunked-(split3-bf16-k128-v32-g4t|split3-bf16-k128-v32-a512-mw-g4t|split3-bf16-k64-v64-g4t)-r1$'
if [ -n "${OLD:-}" ]; then RUN=20old REV=$OLD REV_FILE=0 BUNDLE=0 BUILD=$G3 exec bash "$H/build-plans.sh"; fi
RUN=20 REV_FILE=0 DU_BUNDLE=0 BUILD="$G3
deltanet,gated_deltanet,rwkv7 ^chunked-split-bf16-k64-v32(-a384-iw|-a512-iw|-mw|-a384-mw|-a512-mw)-r[12]\$" exec bash "$H/build-plans.sh"
