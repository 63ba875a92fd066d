#!/usr/bin/env bash
# Run 21 (one call, <= 150 s): the second measurement of phase A on 512 threads at K = 64 (auto's pick since run 21):
# bench/cuda/chunked/run9.sh with RUN=21, two rounds, every variant of build-run21.sh's plans at (8, 2048, 16, 64) for
# DeltaNet, Gated DeltaNet and RWKV-7 (old pick -a384-iw / -mw beside the new -a512-iw / -a512-mw, and -a384-mw), a
# process per model and round; GPU checks of all of them against float64; the anchors at the three cases. $OUT is kept
# to run.log, a short table (run21.txt) and one archive of the JSON (run 20 lost its files to the call's file count).
#   device: run command="bash bench/cuda/chunked/run21.sh" timeout_s=150
#     carry=[".device", "dist/chunked-plans-run21", "dist/chunked-check-run21.mjs", ".anchors", ".whl"]
set -uo pipefail
export OUT=${OUT:-$PWD/out}
C=deltanet:s1,gated_deltanet:s1,rwkv7:s1
RUN=21 ROUNDS=2 MODELS='deltanet gated_deltanet rwkv7' ALL=$C SEQC_ANCHOR_CASES=$C \
  EXPECT='deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s1=split-bf16-k64-v32-a512-iw rwkv7:s1=split-bf16-k64-v32-a512-mw' \
  CHECK_EXTRA='split-bf16-k64-v32(-a384-iw|-mw|-a384-mw)' \
  B_END=50 W_END=95 K_END=90 A_END=125 C_END=132 RP_TIMEOUT=138 RP_TAIL=30 RP_EXIT=0 RP_TXT=run21.txt RP_TABLE='--width 42' RP_LS=0 bash "$(dirname "$0")/run-plans.sh"
cd "$OUT" && tar czf run21-json.tgz $(ls | grep -v -e '^run.log$' -e '^run21.txt$' -e '^run21-json.tgz$') 2>/dev/null && ls | grep -v -e '^run.log$' -e '^run21.txt$' -e '^run21-json.tgz$' | xargs -r rm -rf
ls -la "$OUT"
