"""A kernel module stand-in for the torch launchers' tests on CPU torch (test/torch-delta-r-pick, torch-delta-zbf16,
torch-delta-key-walk): KM(records).launch appends [entry, grid, args] to calls instead of running a kernel (an argument
as a u32's value, 'null' for a null pointer, else 'ptr'). Importing it makes torch.cuda.device and
torch.cuda.current_stream no-ops, so the launchers run on CPU tensors."""
import contextlib

import torch

calls = []


def arg(a):
    return 'null' if a[0] == 'ptr' and a[1] == 0 else a[1] if a[0] == 'u32' else 'ptr'


class KM:
    def __init__(self, kernels):
        self.kernels = kernels

    def launch(self, k, grid, args, stream):
        calls.append([k['entry'], list(grid), [arg(a) for a in args]])


torch.cuda.device = lambda d: contextlib.nullcontext()
torch.cuda.current_stream = lambda d=None: type('S', (), {'cuda_stream': 0})()
