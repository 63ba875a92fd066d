#!/usr/bin/env bash
# Run 22 (one call, <= 330 s): run 18's check of all 18 cases with HEAD's auto picks (build-run22.sh), after 73fed2c
# (phase A's Q unscaled with a scalar or no decay), 52671f6 (the readouts' copy helper) and the delta rule's new picks:
# bench/cuda/chunked/run9.sh with RUN=22, two seqc rounds (alone on the GPU), then the anchors alone, GPU checks of the
# 18 picks against float64 (B = 2, T = 70, initial state). $OUT keeps only run.log, the four JSON files and run22.txt
# (a per-case line of both rounds).
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run22.sh" timeout_s=330
#     carry=[".device", "dist/chunked-plans-run22", "dist/chunked-check-run22.mjs", ".anchors", ".whl"]
set -uo pipefail
RUN=22 ROUNDS=2 ALL=none \
  EXPECT='simple_gla:s1=splitd-bf16-k64-v32 simple_gla:s2=split-bf16-k128-v64 simple_gla:s3=split3-bf16-k128-v32-g4t
gla:s1=split-bf16-k64-v32-mw gla:s2=split-bf16-k128-v64-a512-mw gla:s3=split3-bf16-k128-v32-a512-mw-g4t
deltanet:s1=split-bf16-k64-v32-a512-iw deltanet:s2=split-bf16-k128-v64-a384-iw-w512 deltanet:s3=split3-bf16-k128-v16-a384-iw-wc
gated_deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s2=split-bf16-k128-v64-a384-iw-w512 gated_deltanet:s3=split3-bf16-k128-v16-a384-iw-wc
rwkv7:s1=split-bf16-k64-v32-mw rwkv7:s2=split-bf16-k128-v64-a512-mw rwkv7:s3=split3-bf16-k128-v8-a512-mw
mamba2:s1=fused-bf16-k64-v64 mamba2:s2=splitd-bf16-k64-v32 mamba2:s3=split3-bf16-k64-v64-g4t' \
  B_END=80 W_END=190 K_END=185 A_END=290 C_END=305 RP_TIMEOUT=318 RP_TAIL=45 RP_TXT=run22.txt RP_TABLE='--shape --width 42' exec bash "$(dirname "$0")/run-plans.sh"
