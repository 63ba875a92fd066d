#!/usr/bin/env bash
# Run 24's plans (bench/cuda/chunked/run24.sh): DeltaNet and Gated DeltaNet at (8, 2048, 16, 64) with auto's pick
# (split-bf16-k64-v32-a512-iw) beside the same variant with phase A software-pipelined over 2, 4, 8 and 16 items a block
# (-ap<M>, chunked-phase-a-pipe.ts; on request). Built in a clean worktree of a commit (REV, default HEAD) so that no
# uncommitted edit enters. RUN (default 24) names the outputs, AP (default '2|4|8|16') the item counts built
# (run 24b: RUN=24b AP='4|8|16', after alpha v's copies moved ahead of the scale pass).
#   here:   bash bench/cuda/chunked/build-run24.sh   -> dist/chunked-plans-run$RUN, dist/chunked-check-run$RUN.mjs
set -euo pipefail
RUN=${RUN:-24} AP=${AP:-2|4|8|16}
RUN=$RUN BUILD="deltanet,gated_deltanet ^chunked-split-bf16-k64-v32-a512-iw(-ap($AP))?-r1\$" PTXAS='.*phaseA' PTXAS_MODE=all \
  exec bash "$(dirname "$0")/build-plans.sh"
