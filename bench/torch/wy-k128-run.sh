#!/bin/bash
# One GPU call for wy's tensor-core twins at K = V = 128 (issue 6; compiler/backends/cuda/lowrank-wy-mma.ts "pre",
# lowrank-wy-dr-mma.ts "dr"; seqc_chunked_lowrank.LR_WY_MMA_K128 / LR_WY_MMA_OPS): DeltaNet's and Gated DeltaNet's bf16
# eager fwd+bwd at (4, 8192, 16, 128) under the defaults ("off": wy's fp32 kernels), "pre" alone, "dr" alone and both,
# in one process (bench/torch/k128_profile.py --sets: GPU time, the backward's sections, gradients against "off"), one
# profiled step of "off" and "both" for DeltaNet (the wy kernels' own times side by side). No fla here (its Triton
# kernels are not warmed in this short call; fla chunk_delta_rule took 3.520 ms at this shape in call A12b).
# Prepared here (git-ignored): modules from a clean export of HEAD (bench/torch/build-chunked.ts <dir>
# deltanet,gated_deltanet), bench/torch/*.py *.sh beside them in <dir>/bench/, packed as dist/<name>.tgz.
# Device: run carry=["dist/<name>.tgz"] timeout_s=200 command="mkdir -p dist && tar -C dist -xzf dist/<name>.tgz &&
#   MODULES=dist/<name> OUT=$OUT timeout 190 bash dist/<name>/bench/wy-k128-run.sh"
# $OUT gets card.txt, k128.json, wy.log, k128-profile-*.txt.
set -uo pipefail
export PYTHONUNBUFFERED=1 CUDA_CACHE_MAXSIZE=4294967296
OUT=${OUT:-/tmp/seqc-wyk128-out}
MOD=${MODULES:-dist/torch-a2w}
BENCH=${BENCH:-$MOD/bench}
CASES=${CASES:-deltanet:4x8192x16x128,gated_deltanet:4x8192x16x128}
SETS=${SETS:-"off:LR_WY_MMA_K128=off,pre:LR_WY_MMA_K128=tf32;LR_WY_MMA_OPS=pre,dr:LR_WY_MMA_K128=tf32;LR_WY_MMA_OPS=dr,both:LR_WY_MMA_K128=tf32;LR_WY_MMA_OPS=both"}
mkdir -p "$OUT"
T0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv,noheader 2>&1 | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$OUT/card.txt"
timeout "${SETS_S:-170}" python3 "$BENCH/k128_profile.py" "$MOD" --cases "$CASES" --sets "$SETS" --profile "${PROFILE:-deltanet:4x8192x16x128}" \
  --profile-set "${SETS_PROFILE:-off,both}" --budget "${BUDGET:-120}" --out "$OUT" > "$OUT/wy.log" 2>&1
echo "t=$(( $(date +%s) - T0 ))s sets exit $?"
grep -v "^\[.*\]    \|Warning\|warn" "$OUT/wy.log" | grep -v 'profile: ' | tail -14
python3 - "$OUT/k128.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("%-30s %-5s %9s %8s %9s" % ("case", "set", "gpu_ms", "wy_ms", "grads"))
for row in r["rows"]:
    for label, s in row.get("sets", {}).items():
        sec = s.get("sections_ms", {})
        wy = sec.get("wy", float("nan"))
        g = max(s["grads_vs_first"].values()) if "grads_vs_first" in s else 0.0
        print("%-30s %-5s %9.3f %8.2f %9.1e" % (row["case"], label, s.get("gpu_ms", float("nan")), wy, g) if "gpu_ms" in s else "%-30s %-5s %s" % (row["case"], label, s.get("error")))
    for label, s in row.get("sets", {}).items():
        for k, ms, _ in (s.get("profile_top") or []):
            if "seqc_lr_wy" in k:
                print("  %s [%s] %s %.3f ms" % (row["case"], label, k, ms))
EOF
