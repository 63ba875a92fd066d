#!/usr/bin/env bash
# Run 23b (one call on the H200, <= 310 s): run 23 again (all 18 cases with run 22's auto picks, two seqc rounds, the
# anchors alone after them; a second measurement of the anchors on this card) plus every K = 128 candidate of
# build-run23b.sh at DeltaNet's and Gated DeltaNet's (4, 8192, 16, 128) and (1, 32768, 8, 128) in both rounds.
#   here:   bash bench/cuda/chunked/build-run22.sh && bash bench/cuda/chunked/build-run23b.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run23b.sh" timeout_s=320
#     carry=[".device", "dist/chunked-plans-run23b", "dist/chunked-check-run23b.mjs", ".anchors", ".whl"]
set -uo pipefail
RUN=23b ROUNDS=2 ALL=deltanet:s2,deltanet:s3,gated_deltanet:s2,gated_deltanet:s3 \
  EXPECT='simple_gla:s1=splitd-bf16-k64-v32 simple_gla:s2=split-bf16-k128-v64 simple_gla:s3=split3-bf16-k128-v32-g4t
gla:s1=split-bf16-k64-v32-mw gla:s2=split-bf16-k128-v64-a512-mw gla:s3=split3-bf16-k128-v32-a512-mw-g4t
deltanet:s1=split-bf16-k64-v32-a512-iw deltanet:s2=split-bf16-k128-v64-a384-iw-w512 deltanet:s3=split3-bf16-k128-v16-a384-iw-wc
gated_deltanet:s1=split-bf16-k64-v32-a512-iw gated_deltanet:s2=split-bf16-k128-v64-a384-iw-w512 gated_deltanet:s3=split3-bf16-k128-v16-a384-iw-wc
rwkv7:s1=split-bf16-k64-v32-mw rwkv7:s2=split-bf16-k128-v64-a512-mw rwkv7:s3=split3-bf16-k128-v8-a512-mw
mamba2:s1=fused-bf16-k64-v64 mamba2:s2=splitd-bf16-k64-v32 mamba2:s3=split3-bf16-k64-v64-g4t' \
  B_END=115 W_END=205 K_END=200 A_END=285 C_END=298 RP_TIMEOUT=305 RP_TAIL=24 RP_TXT=run23b.txt RP_TABLE='--shape --width 44' exec bash "$(dirname "$0")/run-plans.sh"
