#!/usr/bin/env bash
# Run 31 (one call on the H200, <= 220 s): at (4, 8192, 16, 128) Gated DeltaNet's and DeltaNet's auto pick
# split-v64-a512-iw-ios-w512 beside -nb (phase A's inverse warps and helpers on their own named barriers), -wc-w512 and
# -qxi, alone and combined (-iw-ios[-nb][-qxi][-wc]-w512); fla chunk_gated_delta_rule and chunk_delta_rule in the same
# call. As run30.sh: three seqc rounds (the second reversed), GPU checks beside fla's Triton precompile, fla alone,
# compare.py.
#   here:   bash bench/cuda/chunked/build-run31.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run31.sh" timeout_s=220
#     carry=[".device", "dist/chunked-plans-run31", "dist/chunked-check-run31.mjs", ".anchors", ".whl"]
set -uo pipefail
CASES=gated_deltanet:s2,deltanet:s2
RUN=${RUN:-31} ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="gated_deltanet deltanet" ALL=$CASES SEQC_ANCHOR_CASES=$CASES \
  CHECK_EXTRA='split-bf16-k128-v64-a512-iw-ios(-nb)?(-qxi)?(-wc)?-w512' \
  EXPECT='gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' \
  B_END=110 W_END=145 K_END=145 A_END=190 C_END=200 RP_TIMEOUT=205 RP_TAIL=30 RP_GREP=1 RP_TXT=run31.txt RP_TABLE='--summary --rel' exec bash "$(dirname "$0")/run-plans.sh"
