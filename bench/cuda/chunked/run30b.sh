#!/usr/bin/env bash
# Run 30b (one call on the H200, <= 220 s; not yet made): at (4, 8192, 16, 128) Gated DeltaNet's auto pick
# split-v64-a512-iw-ios-w512 beside -wc-w512 (the next record's copies on the warps without a Z tile), -qxi-w512 and
# -qxi-wc-w512, each after -iw-ios and -iw-ios-gf; DeltaNet's auto pick beside -wc-w512, -qxi-w512, -qxi-wc-w512; Simple
# GLA's auto pick; fla chunk_gated_delta_rule, chunk_delta_rule and chunk_simple_gla in the same call. As run30.sh:
# three seqc rounds (the second reversed), GPU checks beside fla's Triton precompile, fla alone, compare.py.
#   here:   bash bench/cuda/chunked/build-run30b.sh
#   device: run command="source .device/enter.sh && bash bench/cuda/chunked/run30b.sh" timeout_s=220
#     carry=[".device", "dist/chunked-plans-run30b", "dist/chunked-check-run30b.mjs", ".anchors", ".whl"]
set -uo pipefail
CASES=simple_gla:s2,gated_deltanet:s2,deltanet:s2
RUN=${RUN:-30b} ROUNDS=${ROUNDS:-3} REVERSE_EVEN=1 MODELS="simple_gla gated_deltanet deltanet" ALL=$CASES SEQC_ANCHOR_CASES=$CASES \
  CHECK_EXTRA='split-bf16-k128-v64-vi-w512|split-bf16-k128-v64-a512-iw-ios(-gf)?(-qxi)?(-wc)?-w512' \
  EXPECT='simple_gla:s2=split-bf16-k128-v64-vi-w512 gated_deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512 deltanet:s2=split-bf16-k128-v64-a512-iw-ios-w512' \
  B_END=110 W_END=145 K_END=145 A_END=190 C_END=200 RP_TIMEOUT=205 RP_TAIL=30 RP_GREP=1 RP_TXT=run30b.txt RP_TABLE='--summary --rel' exec bash "$(dirname "$0")/run-plans.sh"
