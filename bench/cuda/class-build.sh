#!/usr/bin/env bash
# Builds what bench/cuda/class-check.ts needs on the GPU machine: the CUDA plans of a few stdlib models
# (`seqc compile --target cuda`: <Model>.cuda.json and <Model>.grad.cuda.json with PTX from nvcc) in
# dist/class-check, their generated classes (--target ts) in dist/class-check-src, and the check bundled
# with the classes into dist/class-check.mjs. Then, on the device (carry .device, dist/class-check,
# dist/class-check.mjs):  source .device/enter.sh && node dist/class-check.mjs
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
rm -rf dist/class-check dist/class-check-src && mkdir -p dist/class-check dist/class-check-src
models="Lstm:lstm Gru:gru Hgrn:hgrn Mamba:mamba Gla:gla"
files=$(for m in $models; do echo stdlib/${m#*:}.seq; done)
npx tsx compiler/cli/main.ts compile $files --target cuda --out dist/class-check >/dev/null
npx tsx compiler/cli/main.ts compile $files --target ts --out dist/class-check-src >/dev/null
rm -f dist/class-check/*.cu
{
  echo 'import { run } from "../../bench/cuda/class-check.ts";'
  for m in $models; do echo "import { ${m%%:*} } from \"./${m%%:*}.ts\";"; done
  echo "await run({ $(for m in $models; do printf '%s, ' "${m%%:*}"; done) });"
} > dist/class-check-src/entry.ts
npx esbuild dist/class-check-src/entry.ts --bundle --platform=node --format=esm --target=node20 --external:koffi --external:webgpu \
  --alias:seqc/runtime=./runtime/index.ts \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile=dist/class-check.mjs --log-level=warning
du -sh dist/class-check dist/class-check.mjs
