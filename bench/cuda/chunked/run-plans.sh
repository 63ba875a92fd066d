#!/usr/bin/env bash
# One device call of the chunked bench over a plan set (the skeleton of runs 20-29b; each runNN.sh is a wrapper that
# sets the parameters and calls this): bench/cuda/chunked/run9.sh (inputs, seqc rounds alone on the GPU, GPU checks
# beside the anchors' Triton precompile, the anchors alone, compare.py) under `timeout`, then the run's log lines, the
# last table (run-table.py) and a listing of $OUT.
# run9.sh's own parameters pass through the environment as set by the wrapper (unset ones stay unset): RUN (the plans
# dist/chunked-plans-run$RUN and bundle dist/chunked-check-run$RUN.mjs), ROUNDS, REVERSE_EVEN (even rounds in reverse plan
# order), MODELS, ALL (cases timed with every variant), SEQC_ANCHOR_CASES, EXPECT (auto's expected picks,
# model:shape=variant), CHECK_EXTRA (more variants checked), B_END W_END K_END A_END C_END (deadlines, s). This script's:
#   RP_TIMEOUT  seconds for run9.sh (required)
#   RP_TAIL     lines of run9.sh's output shown (unset: its output is not redirected, and nothing follows it)
#   RP_GREP=1   show only the lines with auto's picks, checks, errors and times (before the tail)
#   RP_EXIT=0   no "run9.sh exit" line
#   RP_TXT      the table's file under $OUT (run27.txt); RP_TABLE: run-table.py's options (--shape --parts --width N,
#               --summary [--rel])
#   RP_LS=0     no `ls -la $OUT` at the end (the wrapper adds steps first)
# bench/cuda/chunked/check-run-wrappers.sh checks that every wrapper runs the commands its copy ran before.
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/runNN.sh" (each wrapper's header)
set -uo pipefail
HERE=$(dirname "${BASH_SOURCE[0]}")
export OUT=${OUT:-$PWD/out}
if [ -z "${RP_TAIL:-}" ]; then
  timeout "$RP_TIMEOUT" bash bench/cuda/chunked/run9.sh
  exit
fi
timeout "$RP_TIMEOUT" bash bench/cuda/chunked/run9.sh > /tmp/run$RUN.out 2>&1
rc=$?
[ "${RP_EXIT:-1}" = 0 ] || echo "run9.sh exit $rc"
if [ "${RP_GREP:-0}" = 1 ]; then
  grep -E "auto pick|checks|ERROR|exited|t=[0-9]+s" /tmp/run$RUN.out | tail -$RP_TAIL
else
  tail -$RP_TAIL /tmp/run$RUN.out
fi
# shellcheck disable=SC2086
python3 "$HERE/run-table.py" $RP_TABLE "$OUT" 2>&1 | tee "$OUT/$RP_TXT"
[ "${RP_LS:-1}" = 0 ] || ls -la "$OUT"
