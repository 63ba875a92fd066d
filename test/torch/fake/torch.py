"""A numpy stand-in for the few torch functions runtime/torch/seqc_chunked.py's chain_backward uses
(test/torch-chunked.test.ts runs that glue without torch). Tensors are float64 numpy arrays."""

import numpy as np

float32 = np.float32
float64 = np.float64


def flip(x, dims):
    return np.flip(x, axis=tuple(dims)).copy()


def zeros(shape, dtype=None, device=None):
    return np.zeros(shape, dtype=np.float64)


def exp(x):
    return np.exp(x)


def permute(x, dims):
    return np.transpose(x, dims)


def cumsum(x, dim):
    return np.cumsum(x, axis=dim)


def transpose(x, d0, d1):
    return np.swapaxes(x, d0, d1)


def matmul(a, b):
    return np.matmul(a, b)


def addcmul(x, t1, t2, value=1, out=None):
    r = x + value * (t1 * t2)
    if out is None:
        return r
    out[...] = r
    return out


def arange(*args, device=None, dtype=None):
    return np.arange(*args)


def ones(shape, dtype=None, device=None):
    return np.ones(shape, dtype=np.float64)


def tril(x):
    return np.tril(x)


def where(cond, x, y):
    return np.where(cond, x, y)


class linalg:
    @staticmethod
    def vecdot(a, b, dim=-1):
        return (a * b).sum(axis=dim)
