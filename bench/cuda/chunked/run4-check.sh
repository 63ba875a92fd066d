#!/usr/bin/env bash
# The checks of run 4 again (run4.sh's check hit its 170 s limit while the Triton precompile shared the CPU, and
# its log did not come back): the same plans, a process per model set in parallel, nothing else on the machine.
# $OUT gets check.log and chunked-check.json only (the device tool returns at most eight files).
#   device: run  command="bash bench/cuda/chunked/run4-check.sh"  carry=[".device", "dist/chunked-plans", "dist/chunked-check.mjs"]
set -uo pipefail
source .device/enter.sh
export OUT=${OUT:-$PWD/out} SEQC_CHECK_QUICK=1
export SEQC_CHECK_VARIANTS='split3|fused-bf16-k(64|128)-v64|split-bf16-k(64|128)-v16'
mkdir -p "$OUT"
i=0
for set in linear_attention retnet simple_gla deltanet gla mamba2 gated_deltanet rwkv7 gated_deltaproduct; do
  SEQC_CHECK_JSON=/tmp/check$i.json timeout 150 node dist/chunked-check.mjs check $set > /tmp/check$i.log 2>&1 || echo "check $set exited with $?" >> /tmp/check$i.log &
  i=$((i + 1))
done
wait
cat /tmp/check*.log > "$OUT/check.log"
grep -h "^check FAIL\|exited" /tmp/check*.log | head -40
python3 -c "
import json,glob
rows=[]; dev=None
for f in sorted(glob.glob('/tmp/check*.json')):
    d=json.load(open(f)); rows+=d['rows']; dev=d['device']
json.dump({'device':dev,'rows':rows}, open('$OUT/chunked-check.json','w'), indent=1)
bad=[r for r in rows if not r['ok']]
print(f'check summary: {len(rows)-len(bad)} of {len(rows)} passed')
worst={}
for r in rows:
    io=[x for x in ('f32','bf16','f16') if '-'+x+'-' in r['variant']][0]
    k=(r['model'],io+(' stress' if 'stress' in r['shape'] else ''),r['variant'].split('-')[1])
    worst[k]=max(worst.get(k,0),r['worst'])
for k in sorted(worst): print('worst', *k, '%.2e' % worst[k])
print('stress finite:', all(r['finite'] for r in rows if 'stress' in r['shape']), sum(1 for r in rows if 'stress' in r['shape']), 'cases')
"
