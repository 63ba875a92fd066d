"""Driver for test/torch-flip-view.test.ts: seqc_chunked.flip_time (FLIP_VIEW "wide": a time reversal of a contiguous
CUDA tensor as a flip of each token's row viewed as 8-byte words) on numpy arrays dressed as CUDA tensors (the numpy
stand-in of test/torch/fake; numpy's view(dtype) reinterprets the bytes as torch's does). Prints one JSON line per case:
whether the wide view was taken (a flip of int64 words) and whether the result equals np.flip along time bitwise."""

import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "fake"))
sys.path.insert(0, os.path.join(here, "..", "..", "runtime", "torch"))
import numpy as np  # noqa: E402
import torch  # noqa: E402  (the stand-in)
import seqc_chunked  # noqa: E402


class Cuda(np.ndarray):
    """An ndarray with the few tensor methods flip_time reads, on "cuda"."""
    is_cuda = True

    def dim(self):
        return self.ndim

    def is_contiguous(self):
        return self.flags["C_CONTIGUOUS"]

    def numel(self):
        return self.size

    def element_size(self):
        return self.itemsize

    def storage_offset(self):  # elements from the base's start
        base = self.base if self.base is not None else self
        return (self.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // self.itemsize

    def view(self, dtype=None):
        return np.ndarray.view(np.ndarray.view(self, np.ndarray), dtype).view(Cuda)


flips = []
plain_flip = torch.flip


def counting_flip(x, dims):
    flips.append(str(np.asarray(x).dtype))
    return plain_flip(np.asarray(x), dims).view(Cuda)


torch.flip = counting_flip
torch.int64 = np.int64


def case(name, x, way="wide"):
    flips.clear()
    want = np.flip(np.asarray(x), 1)
    got = seqc_chunked.flip_time(x, way)
    same = got.shape == want.shape and got.dtype == want.dtype and np.asarray(got).tobytes() == np.ascontiguousarray(want).tobytes()
    print(json.dumps({"case": name, "wide": flips == ["int64"], "flips": list(flips), "same": bool(same)}))


rng = np.random.default_rng(3)
f16 = lambda *s: rng.standard_normal(s).astype(np.float16).view(np.ndarray).view(Cuda)  # noqa: E731  (a 2-byte dtype, as bf16)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32).view(Cuda)  # noqa: E731
case("2-byte [3, 37, 12]", f16(3, 37, 12))
case("2-byte [2, 1, 8] (T = 1)", f16(2, 1, 8))
case("4-byte [2, 11, 4, 6]", f32(2, 11, 4, 6))
case("2-byte row of 6 bytes [2, 9, 3]: plain", f16(2, 9, 3))
case("4-byte, not contiguous: plain", f32(2, 10, 8)[:, :, ::2])
case("2-byte [3, 37, 12], way plain", f16(3, 37, 12), "plain")
big = f16(4, 20, 12)
case("2-byte view 480 bytes in", big[1:3])
case("2-byte view 240 bytes in, [2, 10, 12]", big.reshape(8, 10, 12)[1:3])
odd = f16(1, 5 * 4 * 8 + 1)[:, 1:].reshape(5, 4, 8)
case("2-byte view at a 2-byte offset: plain", odd)
