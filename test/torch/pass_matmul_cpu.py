"""Driver for test/torch-pass-matmul.test.ts: test/torch/autograd_cpu.py (seqc_torch's autograd path on CPU torch
in float64, every plan run by the test's interpreter) with seqc_torch.PASS_MATMUL set from argv[2] ("torch":
the passes the module marks `matmul` as torch products; "kernel": their plans). argv[1]: <Model>.torch.json."""

import os
import runpy
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import seqc_torch  # noqa: E402  (the module object autograd_cpu.py imports too)

seqc_torch.PASS_MATMUL = sys.argv.pop(2)
runpy.run_path(os.path.join(here, "autograd_cpu.py"), run_name="__main__")
