#!/bin/bash
# The GPU run of seqc's torch target: bench/torch/check.py (outputs and gradients vs seqc's float64
# reference, gradcheck) and the parity experiment (examples/parity/train.py). Prepared here with
#   npx seqc compile stdlib/{deltanet,gated_deltanet,gla,mamba,lstm,gru,hgrn,mamba2}.seq --target torch --out dist/torch
#   npx tsx bench/torch/make-reference.ts dist/torch/ref
# and run on the GPU machine with dist/torch carried: bash bench/torch/run.sh   (logs and JSON in $OUT)
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/seqc-torch-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
if [ "${CHECK:-1}" = 1 ]; then
  timeout ${CHECK_S:-240} python3 bench/torch/check.py dist/torch --out "$OUT/check.json" 2>&1 | tee "$OUT/check.log"
  echo "check exit $?"
fi
timeout ${PARITY_S:-330} python3 examples/parity/train.py --modules dist/torch --steps ${STEPS:-2000} --budget ${BUDGET:-40} --seeds ${SEEDS:-0,1,2} --out "$OUT/parity.json" 2>&1 | tee "$OUT/parity.log"
echo "parity exit $?"
