#!/usr/bin/env bash
# Run 23b's plans (bench/cuda/chunked/run23b.sh, the H200's second call): run 22's plans (build-run22.sh, HEAD's 18
# auto picks, f722c6d) plus, for DeltaNet and Gated DeltaNet, the K = 128 candidates at (4, 8192, 16, 128) and
# (1, 32768, 8, 128): split's 64- and 32-value walks with phase A on 384 / 512 threads, with and without the 512-thread
# walk (-w512), and split3's 8-, 16- and 32-value walks with and without the copies on the idle warps (-wc) or split-K
# (-wk). Run 23 (H200) found Gated DeltaNet (4, 8192) slower than fla (0.87) with run 22's pick (tuned on the H100).
# Built in a clean worktree of REV (default f722c6d, run 22's commit) so that no uncommitted edit enters.
#   here:   bash bench/cuda/chunked/build-run22.sh && bash bench/cuda/chunked/build-run23b.sh
#           -> dist/chunked-plans-run23b, dist/chunked-check-run23b.mjs
set -euo pipefail
RUN=23b REV=${REV:-f722c6d} REV_FILE=0 COPY_PLANS='chunked-plans-run22/SimpleGla.* chunked-plans-run22/Gla.* chunked-plans-run22/Rwkv7.* chunked-plans-run22/Mamba2.*' \
  BUILD='deltanet,gated_deltanet ^chunked-(split-bf16-k64-v32-a512-iw|split-bf16-k128-v(64|32)-a(384|512)-iw(-w512)?|split3-bf16-k128-v(8|16|32)-a384-iw(-wc|-wk)?)-r1$' \
  exec bash "$(dirname "$0")/build-plans.sh"
